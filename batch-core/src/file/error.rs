//! What goes wrong with a file: one that cannot be opened, read or written, and a
//! record that cannot be parsed.

use std::fmt;
use std::io;
use std::path::PathBuf;

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
pub(super) fn abbreviate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(120).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}
