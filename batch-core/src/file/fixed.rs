//! Fixed-width files: each field at a range of byte columns.

use std::ops::Range;

use ::csv::ByteRecord;
use serde::de::DeserializeOwned;

use super::csv::deserialize;
use super::input::Input;
use super::json::Lines;
use super::reader::FormatName;
use super::reader::{FileReader, Position, RecordFormat};
use crate::error::Result;

/// A reader of fixed-width files into any `T: DeserializeOwned`: each field is a range
/// of byte columns of the line (from 0, end excluded), trimmed of spaces, and
/// deserialized by the field's name with the `csv` crate's serde support. A line
/// shorter than a range gives what it has (empty past its end). The step context keeps
/// `{name}.offset`, `{name}.line`, `{name}.read.count` and the file (default name
/// `fixed`).
///
/// ```rust,no_run
/// use batch_core::file::FixedWidthReader;
///
/// #[derive(serde::Deserialize)]
/// struct Payment { account: String, amount: i64 }
///
/// let payments = FixedWidthReader::<Payment>::new("payments.txt")
///     .field("account", 0..10)
///     .field("amount", 10..22);
/// # let _ = payments;
/// ```
pub type FixedWidthReader<T> = FileReader<T, FixedWidth>;

/// The format of a [`FixedWidthReader`]: its field ranges.
#[derive(Default)]
pub struct FixedWidth {
    ranges: Vec<Range<usize>>,
    headers: ByteRecord,
    skip_lines: u64,
    comment: Option<Vec<u8>>,
    lines: Lines,
    record: ByteRecord,
}

impl FormatName for FixedWidth {
    const NAME: &'static str = "fixed";
}

impl<T> FileReader<T, FixedWidth> {
    /// A field: its name (the item's field it fills) and its byte columns.
    pub fn field(mut self, name: impl Into<String>, columns: Range<usize>) -> Self {
        let name = name.into();
        self.format.headers.push_field(name.as_bytes());
        self.format.ranges.push(columns);
        self
    }

    /// Lines at the start of each file to pass over, whatever they hold.
    pub fn skip_lines(mut self, lines: u64) -> Self {
        self.format.skip_lines = lines;
        self
    }

    /// Lines starting with this text are comments, and skipped.
    pub fn comment(mut self, prefix: impl Into<String>) -> Self {
        self.format.comment = Some(prefix.into().into_bytes());
        self
    }
}

impl<T: DeserializeOwned> RecordFormat<T> for FixedWidth {
    fn begin(&mut self, input: Input, resume: Option<Position>) -> Result<()> {
        self.lines.begin(input, self.skip_lines, resume)
    }

    fn next(&mut self) -> Result<Option<T>> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            let text = &self.lines.buf;
            if text.is_empty() || self.comment.as_ref().is_some_and(|c| text.starts_with(c)) {
                continue;
            }
            self.record.clear();
            for range in &self.ranges {
                let start = range.start.min(text.len());
                let end = range.end.min(text.len()).max(start);
                self.record.push_field(text[start..end].trim_ascii());
            }
            return deserialize(&self.record, Some(&self.headers), &self.lines.path, line)
                .map(Some);
        }
    }

    fn position(&self) -> Position {
        self.lines.at
    }

    fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }

    fn end(&mut self) {
        self.lines.end();
    }
}
