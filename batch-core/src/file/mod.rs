//! Flat files: restartable readers of CSV, fixed-width and JSON-lines files (one file,
//! a list, or a pattern, optionally gzipped), and transactional CSV and JSON-lines
//! writers.
//!
//! Readers parse with the `csv` crate and serde into any `T: DeserializeOwned`. At each
//! commit a reader saves where it stands in the step context (the byte offset and line
//! number of the next record, the file it is in, the records read), and on restart it
//! seeks there: the part of the file already committed is not read again.
//!
//! Writers serialize any `T: Serialize`. Their bytes reach the file when the chunk
//! commits: they are buffered while the chunk is written, appended to the file (and
//! synced) just before the chunk's transaction commits, and the file's new length is
//! saved in the step context in that same transaction. A restart truncates the file to
//! the length last committed, and a chunk that rolls back has its bytes taken back at
//! once, so neither a crash nor a rollback leaves a partial line or a line twice
//! (Spring's `FlatFileItemWriter` with `transactional`).
//!
//! ```rust,no_run
//! use batch_core::prelude::*;
//! use batch_core::file::{CsvReader, ExistingFile, JsonLinesWriter};
//!
//! #[derive(serde::Deserialize, serde::Serialize)]
//! struct Customer { id: i64, name: String, email: String, age: u32 }
//!
//! fn import() -> impl ChunkStep<Customer, Customer> {
//!     read_write(
//!         // A header row names the columns; position kept under `customers.*`.
//!         CsvReader::<Customer>::new("customers.csv").name("customers"),
//!         JsonLinesWriter::<Customer>::new("customers.jsonl")
//!             .name("out")
//!             .if_exists(ExistingFile::Replace),
//!     )
//! }
//! ```
//!
//! What each keeps in the step context, under the name given with `.name(...)`:
//!
//! | reader or writer | keys |
//! |---|---|
//! | [`CsvReader`], [`JsonLinesReader`], [`FixedWidthReader`] | `{name}.read.count`, `{name}.file.index`, `{name}.file.name`, `{name}.offset`, `{name}.line` |
//! | [`CsvWriter`], [`JsonLinesWriter`] | `{name}.offset` (committed length in bytes), `{name}.written` |
//!
//! The files are read and written with blocking calls from the step's task, as local
//! files are everywhere in tokio's ecosystem short of a thread per call.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod csv;
mod fixed;
mod json;
mod reader;
mod writer;

pub use self::csv::{Csv, CsvEncoding, CsvReader, CsvWriter};
pub use self::fixed::{FixedWidth, FixedWidthReader};
pub use self::json::{JsonLines, JsonLinesEncoding, JsonLinesReader, JsonLinesWriter};
pub use self::reader::{FileReader, FormatName, Position, RecordFormat};
pub use self::writer::{Encoding, ExistingFile, FileWriter};

/// A file that cannot be opened, read or written as the job needs.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be opened (or created).
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Reading failed (an I/O error, or bytes the parser cannot take).
    #[error("cannot read {} at line {line}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The line the reader was on.
        line: u64,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing, truncating or syncing failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A new job instance found its output file in place, and the writer was told to
    /// refuse it.
    #[error(
        "{} already exists; to write it anyway, configure the writer with `.if_exists(ExistingFile::Append)` or `ExistingFile::Replace`",
        path.display()
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// On restart, the output file is shorter than what the last commit wrote: it was
    /// changed outside the job.
    #[error(
        "{} holds {found} bytes, fewer than the {committed} the last commit left: it was changed outside the job",
        path.display()
    )]
    Shorter {
        /// The file.
        path: PathBuf,
        /// Its length now.
        found: u64,
        /// The length the step context holds.
        committed: u64,
    },
    /// On restart, the list of input files no longer has the file the last commit was
    /// reading at its place.
    #[error(
        "the input files changed since the last run: file {index} was {expected}, it is now {}",
        found.as_deref().unwrap_or("missing")
    )]
    FilesChanged {
        /// The position in the list (from 0).
        index: usize,
        /// The name saved in the step context.
        expected: String,
        /// The name at that position now.
        found: Option<String>,
    },
}

/// A record that cannot be parsed into the item type: a read error, skippable with
/// `skip(MalformedRecord, limit = N)` like any read error. It names the file, the line
/// where the record starts, and, when the parser can tell, the field and its value;
/// its [`source`](std::error::Error::source) says what is wrong with them.
#[derive(Debug, thiserror::Error)]
#[error("malformed record in {} at line {line}{}", file.display(), Describe(field, value))]
pub struct MalformedRecord {
    /// The file.
    pub file: PathBuf,
    /// The line (from 1) where the record starts.
    pub line: u64,
    /// The field that could not be read (its column name, or `column N`).
    pub field: Option<String>,
    /// The field's value as it is in the file (the whole line when there is no field).
    pub value: Option<String>,
    /// What is wrong.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

struct Describe<'a>(&'a Option<String>, &'a Option<String>);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(field), Some(value)) => write!(f, ": field `{field}` = {value:?}"),
            (Some(field), None) => write!(f, ": field `{field}`"),
            (None, Some(value)) => write!(f, ": {value:?}"),
            (None, None) => Ok(()),
        }
    }
}

/// A record whose number of fields is not the header's.
#[derive(Debug, thiserror::Error)]
#[error("{found} fields where {expected} were expected")]
pub struct FieldCount {
    /// Fields of the header (or of the configured columns).
    pub expected: usize,
    /// Fields of the record.
    pub found: usize,
}

/// Cuts a value for an error message.
fn abbreviate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(120).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// Counts the bytes read from a file.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Source {
    Plain(Counting<File>),
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<Counting<File>>>>),
}

/// One input file opened for reading, plain or gzipped, with the count of bytes read
/// from the disk. Positions are in the file's content (decompressed for gzip): a plain
/// file seeks; a gzipped one reads forward to the position (from its start again to
/// go back), since a gzip stream can only be read in order.
pub struct Input {
    path: PathBuf,
    source: Source,
    /// Position in the content.
    pos: u64,
    /// Bytes read from disk by earlier openings (a gzip input reopened to go back).
    earlier: u64,
}

impl Input {
    /// Opens `path`; `gzip` decompresses it.
    pub fn open(path: &Path, gzip: bool) -> Result<Self, FileError> {
        let source = Self::source(path, gzip)?;
        Ok(Self {
            path: path.to_owned(),
            source,
            pos: 0,
            earlier: 0,
        })
    }

    fn source(path: &Path, gzip: bool) -> Result<Source, FileError> {
        let file = File::open(path).map_err(|source| FileError::Open {
            path: path.to_owned(),
            source,
        })?;
        let counting = Counting {
            inner: file,
            bytes: 0,
        };
        Ok(if gzip {
            Source::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::with_capacity(64 * 1024, counting),
            )))
        } else {
            Source::Plain(counting)
        })
    }

    /// Bytes read from the disk since the file was opened.
    pub fn bytes_read(&self) -> u64 {
        self.earlier
            + match &self.source {
                Source::Plain(c) => c.bytes,
                Source::Gzip(d) => d.get_ref().get_ref().bytes,
            }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.source {
            Source::Plain(c) => c.read(buf)?,
            Source::Gzip(d) => d.read(buf)?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Input {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")
            })?,
            SeekFrom::End(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "an input file seeks from its start only",
                ));
            }
        };
        match &mut self.source {
            Source::Plain(c) => {
                c.inner.seek(SeekFrom::Start(target))?;
            }
            Source::Gzip(_) => {
                if target < self.pos {
                    self.earlier = self.bytes_read();
                    self.source = Self::source(&self.path, true).map_err(io::Error::other)?;
                    self.pos = 0;
                }
                let skip = target - self.pos;
                let copied = io::copy(&mut self.by_ref().take(skip), &mut io::sink())?;
                if copied < skip {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the gzipped file ends before the position to resume at",
                    ));
                }
            }
        }
        self.pos = target;
        Ok(target)
    }
}

/// The files a reader reads, in name order: `dir/*.csv` style patterns (wildcards `*`
/// and `?` in the file name only), or a list.
#[derive(Debug, Clone)]
enum Files {
    List(Vec<PathBuf>),
    Pattern(PathBuf),
}

impl Files {
    /// The files now, sorted by name (Spring's `MultiResourceItemReader` order).
    fn resolve(&self) -> Result<Vec<PathBuf>, FileError> {
        let mut files = match self {
            Self::List(list) => list.clone(),
            Self::Pattern(pattern) => {
                let dir = match pattern.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                    _ => PathBuf::from("."),
                };
                let name = pattern
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let entries = std::fs::read_dir(&dir).map_err(|source| FileError::Open {
                    path: dir.clone(),
                    source,
                })?;
                let mut found = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| FileError::Open {
                        path: dir.clone(),
                        source,
                    })?;
                    let file_name = entry.file_name().to_string_lossy().into_owned();
                    if wildcard(name.as_bytes(), file_name.as_bytes())
                        && entry.file_type().is_ok_and(|t| t.is_file())
                    {
                        found.push(dir.join(file_name));
                    }
                }
                found
            }
        };
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
        Ok(files)
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` one.
/// Enough for the file-name patterns batch inputs use (`orders-*.csv.gz`), without a
/// dependency.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn is_gzip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.csv", b"a.csv"));
        assert!(wildcard(b"orders-*.csv.gz", b"orders-2024-01.csv.gz"));
        assert!(!wildcard(b"*.csv", b"a.csv.gz"));
        assert!(wildcard(b"part-??.txt", b"part-01.txt"));
        assert!(!wildcard(b"part-??.txt", b"part-1.txt"));
        assert!(wildcard(b"*", b"x"));
    }
}
