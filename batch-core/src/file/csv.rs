//! CSV and other delimited files, on the `csv` crate.

use std::io::{self, Read, SeekFrom};
use std::path::{Path, PathBuf};

use ::csv::{ByteRecord, ReaderBuilder, Trim, WriterBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::abbreviate;
use super::error::{FieldCount, FileError, MalformedRecord};
use super::input::Input;
use super::reader::FormatName;
use super::reader::RecordFormat;
use super::reader::{FileReader, Position};
use super::writer::Encoding;
use super::writer::FileWriter;
use crate::error::{Error, Result};

/// A reader of CSV (or other delimited) files into any `T: DeserializeOwned`, by the
/// header row's column names (the default), by [`columns`](FileReader::columns) given
/// here, or by position into a tuple. The step context keeps `{name}.offset`,
/// `{name}.line`, `{name}.read.count` and the file (default name `csv`).
///
/// ```rust,no_run
/// use batch_core::file::CsvReader;
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: i64, amount: f64 }
///
/// let orders = CsvReader::<Order>::new("orders.csv")
///     .delimiter(b';')
///     .comment(b'#')
///     .skip_lines(2) // two lines of preamble before the header
///     .name("orders");
/// # let _ = orders;
/// ```
///
/// A record that does not parse is a [`MalformedRecord`] (file, line, field, value),
/// a read error that `skip(MalformedRecord, limit = N)` skips; reading goes on with
/// the next record.
pub type CsvReader<T> = FileReader<T, Csv>;

/// The CSV format of a [`CsvReader`]: its settings and the parser of the current file.
pub struct Csv {
    delimiter: u8,
    quote: u8,
    quoting: bool,
    comment: Option<u8>,
    header: bool,
    columns: Option<ByteRecord>,
    skip_lines: u64,
    trim: bool,
    path: PathBuf,
    reader: Option<::csv::Reader<Input>>,
    headers: Option<ByteRecord>,
    record: ByteRecord,
}

impl Default for Csv {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            quoting: true,
            comment: None,
            header: true,
            columns: None,
            skip_lines: 0,
            trim: false,
            path: PathBuf::new(),
            reader: None,
            headers: None,
            record: ByteRecord::new(),
        }
    }
}

impl FormatName for Csv {
    const NAME: &'static str = "csv";
}

impl<T> FileReader<T, Csv> {
    /// The field delimiter (default `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.format.delimiter = delimiter;
        self
    }

    /// The quote character (default `"`); a doubled quote inside a quoted field is one.
    pub fn quote(mut self, quote: u8) -> Self {
        self.format.quote = quote;
        self
    }

    /// Turns quoting off: quote characters are ordinary.
    pub fn no_quoting(mut self) -> Self {
        self.format.quoting = false;
        self
    }

    /// Lines starting with this byte are comments, and skipped.
    pub fn comment(mut self, comment: u8) -> Self {
        self.format.comment = Some(comment);
        self
    }

    /// The file has no header row: fields map by position (into a tuple), or by the
    /// names given with [`columns`](Self::columns).
    pub fn no_header(mut self) -> Self {
        self.format.header = false;
        self
    }

    /// Names the columns, for a file without a header row (implies
    /// [`no_header`](Self::no_header)).
    pub fn columns<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = columns.into_iter().map(|c| c.as_ref().to_owned()).collect();
        self.format.columns = Some(ByteRecord::from(names));
        self.format.header = false;
        self
    }

    /// Lines at the start of each file to pass over before the header (or the first
    /// record), whatever they hold (Spring's `linesToSkip`).
    pub fn skip_lines(mut self, lines: u64) -> Self {
        self.format.skip_lines = lines;
        self
    }

    /// Trims the whitespace around each field (and header).
    pub fn trim(mut self, trim: bool) -> Self {
        self.format.trim = trim;
        self
    }
}

fn csv_position(p: Position) -> ::csv::Position {
    let mut pos = ::csv::Position::new();
    pos.set_byte(p.offset).set_line(p.line);
    pos
}

/// Passes over `lines` lines of `input` from its start: where the next line starts.
pub(super) fn skip_raw_lines(input: &mut Input, lines: u64) -> io::Result<Position> {
    let mut at = Position::START;
    let mut buf = [0u8; 8192];
    while at.line <= lines {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if at.line > lines {
                break;
            }
            at.offset += 1;
            if b == b'\n' {
                at.line += 1;
            }
        }
    }
    Ok(at)
}

fn read_error(path: &Path, line: u64, e: ::csv::Error) -> Error {
    FileError::Read {
        path: path.to_owned(),
        line,
        source: Box::new(e),
    }
    .into()
}

/// What a field's value could not become.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidField(String);

/// Deserializes one record with the `csv` crate's serde support, naming the field and
/// value that fail.
pub(super) fn deserialize<T: DeserializeOwned>(
    record: &ByteRecord,
    headers: Option<&ByteRecord>,
    path: &Path,
    line: u64,
) -> Result<T> {
    if let Some(h) = headers
        && h.len() != record.len()
    {
        return Err(MalformedRecord {
            file: path.to_owned(),
            line,
            field: None,
            value: Some(abbreviate(&record.iter().collect::<Vec<_>>().join(&b','))),
            source: Box::new(FieldCount {
                expected: h.len(),
                found: record.len(),
            }),
        }
        .into());
    }
    record.deserialize(headers).map_err(|e| {
        let (field, value, reason) = match e.kind() {
            ::csv::ErrorKind::Deserialize { err, .. } => {
                let reason = err.kind().to_string();
                match err.field() {
                    Some(i) => {
                        let i = i as usize;
                        let name = headers
                            .and_then(|h| h.get(i))
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .unwrap_or_else(|| format!("column {}", i + 1));
                        (Some(name), record.get(i).map(abbreviate), reason)
                    }
                    None => (None, None, reason),
                }
            }
            other => (None, None, format!("{other:?}")),
        };
        Error::new(MalformedRecord {
            file: path.to_owned(),
            line,
            field,
            value,
            source: Box::new(InvalidField(reason)),
        })
    })
}

impl Csv {
    fn parser(&self, capacity: usize, input: Input) -> ::csv::Reader<Input> {
        let mut rdr = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .quoting(self.quoting)
            .comment(self.comment)
            .trim(if self.trim { Trim::All } else { Trim::None })
            .buffer_capacity(capacity)
            .from_reader(input);
        rdr.set_byte_headers(ByteRecord::new());
        rdr
    }
}

impl<T: DeserializeOwned> RecordFormat<T> for Csv {
    fn begin(&mut self, mut input: Input, resume: Option<Position>) -> Result<()> {
        self.path = input.path().to_owned();
        let path = self.path.clone();
        let start = skip_raw_lines(&mut input, self.skip_lines).map_err(|e| FileError::Read {
            path: path.clone(),
            line: 1,
            source: Box::new(e),
        })?;
        // Headers are handled here, not by the parser, so that seeking never makes it
        // read or replay a header row. The header is read with a small buffer, so that
        // a restart reads little more than the rest of the file.
        let mut rdr = self.parser(8 * 1024, input);
        rdr.seek_raw(SeekFrom::Start(start.offset), csv_position(start))
            .map_err(|e| read_error(&path, start.line, e))?;
        self.headers = match &self.columns {
            Some(columns) => Some(columns.clone()),
            None if self.header => {
                let mut header = ByteRecord::new();
                let found = rdr
                    .read_byte_record(&mut header)
                    .map_err(|e| read_error(&path, start.line, e))?;
                found.then_some(header)
            }
            None => None,
        };
        let after_header = Position {
            offset: rdr.position().byte(),
            line: rdr.position().line(),
        };
        let at = match resume {
            Some(p) if p.offset > after_header.offset => p,
            _ => after_header,
        };
        let mut rdr = self.parser(64 * 1024, rdr.into_inner());
        rdr.seek_raw(SeekFrom::Start(at.offset), csv_position(at))
            .map_err(|e| read_error(&path, at.line, e))?;
        self.reader = Some(rdr);
        Ok(())
    }

    fn next(&mut self) -> Result<Option<T>> {
        let Some(rdr) = self.reader.as_mut() else {
            return Ok(None);
        };
        let line = rdr.position().line();
        let found = rdr
            .read_byte_record(&mut self.record)
            .map_err(|e| read_error(&self.path, line, e))?;
        if !found {
            return Ok(None);
        }
        let line = self.record.position().map_or(line, |p| p.line());
        deserialize(&self.record, self.headers.as_ref(), &self.path, line).map(Some)
    }

    fn position(&self) -> Position {
        match &self.reader {
            Some(r) => Position {
                offset: r.position().byte(),
                line: r.position().line(),
            },
            None => Position::START,
        }
    }

    fn bytes_read(&self) -> u64 {
        self.reader.as_ref().map_or(0, |r| r.get_ref().bytes_read())
    }

    fn end(&mut self) {
        self.reader = None;
    }
}

/// A transactional writer of CSV files from any `T: Serialize` (a struct's fields are
/// its columns). With [`headers`](FileWriter::headers), a file that starts empty gets
/// a header row of the field names. The step context keeps `{name}.offset` (the
/// committed length) and `{name}.written` (default name `csv`).
pub type CsvWriter<T> = FileWriter<T, CsvEncoding>;

/// How a [`CsvWriter`] turns items into bytes.
pub struct CsvEncoding {
    delimiter: u8,
    headers: bool,
    header_due: bool,
}

impl Default for CsvEncoding {
    fn default() -> Self {
        Self {
            delimiter: b',',
            headers: false,
            header_due: false,
        }
    }
}

impl FormatName for CsvEncoding {
    const NAME: &'static str = "csv";
}

impl<T> FileWriter<T, CsvEncoding> {
    /// The field delimiter (default `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.encoding.delimiter = delimiter;
        self
    }

    /// Starts a file that is empty with a header row of the item's field names.
    pub fn headers(mut self) -> Self {
        self.encoding.headers = true;
        self
    }
}

impl<T: Serialize> Encoding<T> for CsvEncoding {
    fn reset(&mut self, at_start: bool) {
        self.header_due = self.headers && at_start;
    }

    fn encode(&mut self, items: &[T], out: &mut Vec<u8>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        // One small writer per chunk, over the chunk's buffer.
        let mut writer = WriterBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(self.header_due)
            .from_writer(out);
        for item in items {
            writer.serialize(item)?;
        }
        writer.flush()?;
        self.header_due = false;
        Ok(())
    }
}
