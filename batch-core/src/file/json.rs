//! JSON lines: one JSON value per line, with serde_json.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::csv::skip_raw_lines;
use super::error::abbreviate;
use super::error::{FileError, MalformedRecord};
use super::input::Input;
use super::reader::FormatName;
use super::reader::{FileReader, Position, RecordFormat};
use super::writer::Encoding;
use super::writer::FileWriter;
use crate::error::Result;

/// The lines of one file with their positions: what the line-based formats (JSON
/// lines, fixed width) read through.
#[derive(Default)]
pub(super) struct Lines {
    pub(super) path: PathBuf,
    input: Option<BufReader<Input>>,
    pub(super) at: Position,
    pub(super) buf: Vec<u8>,
}

impl Lines {
    pub(super) fn begin(
        &mut self,
        mut input: Input,
        skip_lines: u64,
        resume: Option<Position>,
    ) -> Result<()> {
        self.path = input.path().to_owned();
        let start = match resume {
            Some(p) => p,
            None if skip_lines > 0 => {
                skip_raw_lines(&mut input, skip_lines).map_err(|e| self.read_error(e))?
            }
            None => Position::START,
        };
        let mut reader = BufReader::with_capacity(64 * 1024, input);
        reader
            .seek(SeekFrom::Start(start.offset))
            .map_err(|e| self.read_error(e))?;
        self.at = start;
        self.input = Some(reader);
        Ok(())
    }

    fn read_error(&self, e: std::io::Error) -> FileError {
        FileError::Read {
            path: self.path.clone(),
            line: self.at.line,
            source: Box::new(e),
        }
    }

    /// The next line into `buf` (without its line end), and its number; `None` at the
    /// end of the file.
    pub(super) fn next_line(&mut self) -> Result<Option<u64>> {
        let Some(input) = self.input.as_mut() else {
            return Ok(None);
        };
        self.buf.clear();
        let n = match input.read_until(b'\n', &mut self.buf) {
            Ok(n) => n,
            Err(e) => return Err(self.read_error(e).into()),
        };
        if n == 0 {
            return Ok(None);
        }
        let line = self.at.line;
        self.at.offset += n as u64;
        self.at.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some(line))
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.input.as_ref().map_or(0, |i| i.get_ref().bytes_read())
    }

    pub(super) fn end(&mut self) {
        self.input = None;
    }
}

/// A reader of JSON-lines files (one JSON object per line) into any
/// `T: DeserializeOwned`; blank lines are passed over. The step context keeps
/// `{name}.offset`, `{name}.line`, `{name}.read.count` and the file (default name
/// `jsonl`). A line that does not parse into `T` is a [`MalformedRecord`] naming the
/// file, the line, and the field and value where the parser stopped.
pub type JsonLinesReader<T> = FileReader<T, JsonLines>;

/// The format of a [`JsonLinesReader`].
#[derive(Default)]
pub struct JsonLines {
    lines: Lines,
    skip_lines: u64,
}

impl FormatName for JsonLines {
    const NAME: &'static str = "jsonl";
}

impl<T> FileReader<T, JsonLines> {
    /// Lines at the start of each file to pass over, whatever they hold.
    pub fn skip_lines(mut self, lines: u64) -> Self {
        self.format.skip_lines = lines;
        self
    }
}

impl<T: DeserializeOwned> RecordFormat<T> for JsonLines {
    fn begin(&mut self, input: Input, resume: Option<Position>) -> Result<()> {
        self.lines.begin(input, self.skip_lines, resume)
    }

    fn next(&mut self) -> Result<Option<T>> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            let text = &self.lines.buf;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return match serde_json::from_slice::<T>(text) {
                Ok(item) => Ok(Some(item)),
                Err(e) => Err(malformed(&self.lines.path, line, text, e).into()),
            };
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

/// Names the field of a JSON line where serde_json stopped: the innermost key whose
/// value the error's column falls in, and that value's text.
fn malformed(path: &Path, line: u64, text: &[u8], error: serde_json::Error) -> MalformedRecord {
    let (field, value) = match missing_field(&error) {
        Some(missing) => (Some(missing), None),
        None if error.is_data() => match field_at(text, error.column().saturating_sub(1)) {
            Some((key, value)) => (Some(key), Some(abbreviate(value))),
            None => (None, Some(abbreviate(text))),
        },
        None => (None, Some(abbreviate(text))),
    };
    MalformedRecord {
        file: path.to_owned(),
        line,
        field,
        value,
        source: Box::new(error),
    }
}

fn missing_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// The key and the value's bytes of the object member whose value spans (or ends just
/// before) byte `at` of `text`, at any depth; `None` when `at` is not in a member's
/// value. A small scanner over JSON that serde_json already found well-formed up to
/// there: strings (with escapes), `"key":` pairs, nesting.
fn field_at(text: &[u8], at: usize) -> Option<(String, &[u8])> {
    // (key, start of its value) for each open object member, innermost last.
    let mut members: Vec<(String, usize, usize)> = Vec::new(); // key, value start, depth
    let mut depth = 0usize;
    let mut i = 0;
    let mut last_string: Option<(usize, usize)> = None;
    let mut best: Option<(String, usize)> = None;
    while i < text.len() && i <= at {
        match text[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                last_string = Some((start, i.min(text.len())));
            }
            b':' => {
                if let Some((s, e)) = last_string.take() {
                    let key = String::from_utf8_lossy(&text[s..e]).into_owned();
                    members.retain(|m| m.2 < depth);
                    members.push((key, i + 1, depth));
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                members.retain(|m| m.2 < depth);
            }
            b',' => {
                members.retain(|m| m.2 < depth);
                last_string = None;
            }
            _ => {}
        }
        if let Some((key, start, _)) = members.last() {
            best = Some((key.clone(), *start));
        }
        i += 1;
    }
    let (key, start) = best?;
    let value = text.get(start..value_end(text, start))?;
    Some((key, value.trim_ascii()))
}

/// Where the JSON value that starts at (or after whitespace from) `start` ends: past
/// its closing quote or bracket, or at the `,`, `}` or `]` after a scalar.
fn value_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < text.len() && text[i].is_ascii_whitespace() {
        i += 1;
    }
    let (mut depth, mut in_string) = (0usize, false);
    while i < text.len() {
        let c = text[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    text.len()
}

/// A transactional writer of JSON-lines files: each item as one line of JSON (a struct
/// as an object whose keys are its field names). The step context keeps
/// `{name}.offset` (the committed length) and `{name}.written` (default name `jsonl`).
pub type JsonLinesWriter<T> = FileWriter<T, JsonLinesEncoding>;

/// How a [`JsonLinesWriter`] turns items into bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLinesEncoding;

impl FormatName for JsonLinesEncoding {
    const NAME: &'static str = "jsonl";
}

impl<T: Serialize> Encoding<T> for JsonLinesEncoding {
    fn reset(&mut self, _at_start: bool) {}

    fn encode(&mut self, items: &[T], out: &mut Vec<u8>) -> Result<()> {
        for item in items {
            serde_json::to_writer(&mut *out, item)?;
            out.push(b'\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::field_at;

    #[test]
    fn the_field_under_a_column() {
        let line = br#"{"id":7,"name":"Ann","age":"old"}"#;
        // serde_json reports the column after the bad value.
        let at = line.iter().rposition(|&b| b == b'}').unwrap();
        let (key, value) = field_at(line, at).unwrap();
        assert_eq!(key, "age");
        assert_eq!(value, br#""old""#);
    }
}
