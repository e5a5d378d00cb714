//! The restartable reader shared by every format: which file, where in it, and what the
//! step context keeps.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::FileError;
use super::input::{Files, Input, is_gzip};
use crate::context::ExecutionContext;
use crate::error::Result;
use crate::item::ItemReader;

/// Where the next record of a file starts: a byte offset in the file's content and the
/// line number (from 1) there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Bytes from the start of the content (decompressed, for a gzipped file).
    pub offset: u64,
    /// The line number at `offset`.
    pub line: u64,
}

impl Position {
    /// The start of a file.
    pub const START: Position = Position { offset: 0, line: 1 };
}

impl Default for Position {
    fn default() -> Self {
        Self::START
    }
}

/// How a file's records become items: the part of a reader that knows the format
/// ([`Csv`](super::Csv), [`JsonLines`](super::JsonLines),
/// [`FixedWidth`](super::FixedWidth)).
pub trait RecordFormat<T>: Send {
    /// Starts reading a file opened at its start; `resume` is where a restart goes on
    /// (a header row, if any, is read first).
    fn begin(&mut self, input: Input, resume: Option<Position>) -> Result<()>;
    /// The next record, `Ok(None)` at the end of the file. A malformed record is an
    /// error after which reading goes on with the next one.
    fn next(&mut self) -> Result<Option<T>>;
    /// Where the next record starts.
    fn position(&self) -> Position;
    /// Bytes read from the disk in the current file.
    fn bytes_read(&self) -> u64;
    /// Closes the current file.
    fn end(&mut self);
}

/// A restartable reader of one or more files in one format: [`CsvReader`],
/// [`JsonLinesReader`] and [`FixedWidthReader`] are this with their format.
///
/// Several files (a list, or a pattern such as `in/orders-*.csv`) are read one after
/// the other in name order; the step context keeps the file being read (its index in
/// that order and its name, checked on restart) and the position in it.
///
/// [`CsvReader`]: super::CsvReader
/// [`JsonLinesReader`]: super::JsonLinesReader
/// [`FixedWidthReader`]: super::FixedWidthReader
pub struct FileReader<T, F> {
    files: Files,
    resolved: Vec<PathBuf>,
    index: usize,
    begun: bool,
    resume: Option<Position>,
    gzip: Option<bool>,
    pub(super) format: F,
    name: String,
    read: u64,
    bytes_before: u64,
    _item: PhantomData<fn() -> T>,
}

impl<T, F> FileReader<T, F> {
    pub(super) fn with_format(files: Files, format: F, name: &str) -> Self {
        Self {
            files,
            resolved: Vec::new(),
            index: 0,
            begun: false,
            resume: None,
            gzip: None,
            format,
            name: name.to_owned(),
            read: 0,
            bytes_before: 0,
            _item: PhantomData,
        }
    }

    /// A reader of one file.
    pub fn new(path: impl Into<PathBuf>) -> Self
    where
        F: Default + FormatName,
    {
        Self::with_format(Files::List(vec![path.into()]), F::default(), F::NAME)
    }

    /// A reader of several files, read one after the other in name order.
    pub fn files<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Self
    where
        F: Default + FormatName,
    {
        let list = paths.into_iter().map(Into::into).collect();
        Self::with_format(Files::List(list), F::default(), F::NAME)
    }

    /// A reader of the files matching `pattern` (`*` and `?` in the file name, as in
    /// `input/orders-*.csv`), in name order; the directory is listed when the step
    /// opens.
    pub fn pattern(pattern: impl Into<PathBuf>) -> Self
    where
        F: Default + FormatName,
    {
        Self::with_format(Files::Pattern(pattern.into()), F::default(), F::NAME)
    }

    /// The prefix of the reader's keys in the step context (the default is the
    /// format's: `csv`, `jsonl`, `fixed`). Two file readers in one step need two names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Reads the files as gzip (`true`) or plain (`false`); by default a file whose
    /// name ends in `.gz` is gzipped. A restart in a gzipped file decompresses it from
    /// its start up to the position (a gzip stream cannot be entered in its middle).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = Some(gzip);
        self
    }

    /// Records handed out (on restart, counting those of earlier runs).
    pub fn read_count(&self) -> u64 {
        self.read
    }

    /// Bytes read from the disk since the step opened (all files).
    pub fn bytes_read(&self) -> u64
    where
        F: RecordFormat<T>,
    {
        self.bytes_before
            + if self.begun {
                self.format.bytes_read()
            } else {
                0
            }
    }

    /// The file being read, if any.
    pub fn current_file(&self) -> Option<&Path> {
        self.resolved.get(self.index).map(PathBuf::as_path)
    }

    fn key(&self, what: &str) -> String {
        format!("{}.{what}", self.name)
    }
}

/// The default context name of a format.
#[doc(hidden)]
pub trait FormatName {
    /// The prefix of the keys when the reader is not named.
    const NAME: &'static str;
}

impl<T, F> ItemReader<T> for FileReader<T, F>
where
    F: RecordFormat<T>,
    T: Send,
{
    async fn read(&mut self) -> Result<Option<T>> {
        loop {
            let Some(path) = self.resolved.get(self.index) else {
                return Ok(None);
            };
            if !self.begun {
                let gzip = self.gzip.unwrap_or_else(|| is_gzip(path));
                let input = Input::open(path, gzip)?;
                let resume = self.resume.take();
                self.begun = true;
                self.format.begin(input, resume)?;
            }
            match self.format.next()? {
                Some(item) => {
                    self.read += 1;
                    return Ok(Some(item));
                }
                None => {
                    self.bytes_before += self.format.bytes_read();
                    self.format.end();
                    self.begun = false;
                    self.index += 1;
                }
            }
        }
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.resolved = self.files.resolve()?;
        self.index = 0;
        self.begun = false;
        self.resume = None;
        self.read = ctx.get::<u64>(&self.key("read.count"))?.unwrap_or(0);
        let Some(index) = ctx.get::<usize>(&self.key("file.index"))? else {
            return Ok(());
        };
        let expected: String = ctx.get(&self.key("file.name"))?.unwrap_or_default();
        let found = self.resolved.get(index).map(|p| p.display().to_string());
        let all_read = index >= self.resolved.len() && expected.is_empty();
        if !all_read && found.as_deref() != Some(expected.as_str()) {
            return Err(FileError::FilesChanged {
                index,
                expected,
                found,
            }
            .into());
        }
        self.index = index;
        let offset = ctx.get::<u64>(&self.key("offset"))?.unwrap_or(0);
        let line = ctx.get::<u64>(&self.key("line"))?.unwrap_or(1);
        self.resume = Some(Position { offset, line }).filter(|p| *p != Position::START);
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        let position = if self.begun {
            self.format.position()
        } else {
            self.resume.unwrap_or(Position::START)
        };
        let name = self
            .resolved
            .get(self.index)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        ctx.put(self.key("read.count"), &self.read)?;
        ctx.put(self.key("file.index"), &self.index)?;
        ctx.put(self.key("file.name"), &name)?;
        ctx.put(self.key("offset"), &position.offset)?;
        ctx.put(self.key("line"), &position.line)?;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if self.begun {
            self.bytes_before += self.format.bytes_read();
            self.format.end();
            self.begun = false;
        }
        Ok(())
    }
}
