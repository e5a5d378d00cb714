//! The transactional file writer shared by every format.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use super::error::FileError;
use super::reader::FormatName;
use crate::context::ExecutionContext;
use crate::error::Result;
use crate::item::{ItemWriter, WriteContext};

/// How items become bytes: the part of a [`FileWriter`] that knows the format
/// ([`CsvEncoding`](super::CsvEncoding), [`JsonLinesEncoding`](super::JsonLinesEncoding)).
pub trait Encoding<T>: Send {
    /// Forgets what was encoded since the last commit (after a rollback, and when the
    /// writer opens); `at_start` says the file is empty, so a header belongs first.
    fn reset(&mut self, at_start: bool);
    /// Appends the bytes of `items` to `out`.
    fn encode(&mut self, items: &[T], out: &mut Vec<u8>) -> Result<()>;
}

/// What a writer of a new job instance does with an output file already in place (a
/// restart of the same instance always goes on with its file, truncated to the last
/// commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingFile {
    /// The step fails with [`FileError::Exists`] (the default).
    #[default]
    Refuse,
    /// The items are written after what the file holds.
    Append,
    /// The file is emptied first.
    Replace,
}

type Footer = Box<dyn Fn(u64) -> String + Send + Sync>;

/// A transactional writer of one file in one format: [`CsvWriter`] and
/// [`JsonLinesWriter`] are this with their encoding.
///
/// Bytes reach the file only for chunks that commit. While a chunk is written its
/// items are encoded into a buffer; just before the chunk's transaction commits the
/// buffer is appended to the file and synced, and the file's new length is saved in
/// the step context (`{name}.offset`, with the record count in `{name}.written`) in
/// that same transaction. A chunk that rolls back has its buffer dropped, and if its
/// bytes had reached the file already (its commit failed), the file is cut back at
/// once. After a crash, the restart cuts the file to the length the last commit saved
/// before writing, so the file never holds a partial line or a line twice.
///
/// A header line ([`header`](Self::header)) starts a file that is empty; a footer
/// ([`footer`](Self::footer)) is written when the step ends well (it is not part of
/// any chunk: a restart after a failure finds none, since a failing step writes none).
///
/// [`CsvWriter`]: super::CsvWriter
/// [`JsonLinesWriter`]: super::JsonLinesWriter
pub struct FileWriter<T, E> {
    path: PathBuf,
    name: String,
    pub(super) encoding: E,
    if_exists: ExistingFile,
    header: Option<String>,
    footer: Option<Footer>,
    sync: bool,
    file: Option<File>,
    /// The file's length as the last commit left it.
    committed: u64,
    committed_records: u64,
    /// Bytes encoded for the chunk being written.
    pending: Vec<u8>,
    pending_records: u64,
    /// Written to the file for the chunk now committing: the length and records after
    /// it, taken as committed unless a rollback follows.
    flushed: Option<(u64, u64)>,
    /// The file's length on disk as this writer last left it.
    on_disk: u64,
    last_rolled_back: bool,
    _item: PhantomData<fn(&T)>,
}

impl<T, E: Default + FormatName> FileWriter<T, E> {
    /// A writer of `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            name: E::NAME.to_owned(),
            encoding: E::default(),
            if_exists: ExistingFile::default(),
            header: None,
            footer: None,
            sync: true,
            file: None,
            committed: 0,
            committed_records: 0,
            pending: Vec::new(),
            pending_records: 0,
            flushed: None,
            on_disk: 0,
            last_rolled_back: false,
            _item: PhantomData,
        }
    }
}

impl<T, E> FileWriter<T, E> {
    /// The prefix of the writer's keys in the step context (the default is the
    /// format's: `csv`, `jsonl`). Two file writers in one step need two names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What a new job instance does with a file already in place (default
    /// [`ExistingFile::Refuse`]).
    pub fn if_exists(mut self, policy: ExistingFile) -> Self {
        self.if_exists = policy;
        self
    }

    /// A line written first into a file that is empty (a line end is added).
    pub fn header(mut self, line: impl Into<String>) -> Self {
        self.header = Some(line.into());
        self
    }

    /// A line written last when the step ends well, made from the number of records
    /// in the file (a line end is added).
    pub fn footer(mut self, line: impl Fn(u64) -> String + Send + Sync + 'static) -> Self {
        self.footer = Some(Box::new(line));
        self
    }

    /// Whether the file is synced to the disk before each commit (default `true`).
    /// Without it a `kill -9` still loses nothing (the bytes are in the system's
    /// cache), but a power failure may lose the end of the file while the database
    /// says it was written.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records in the file as the last commit left it.
    pub fn written(&self) -> u64 {
        self.flushed.map_or(self.committed_records, |f| f.1)
    }

    fn key(&self, what: &str) -> String {
        format!("{}.{what}", self.name)
    }

    fn write_error(&self, source: std::io::Error) -> FileError {
        FileError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// No rollback came after the last flush: it committed.
    fn settle_mut(&mut self) {
        if let Some((length, records)) = self.flushed.take() {
            self.committed = length;
            self.committed_records = records;
        }
    }

    fn file(&mut self) -> Result<&mut File, FileError> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(|source| FileError::Open {
                    path: self.path.clone(),
                    source,
                })?;
            self.on_disk = file.metadata().map_err(|e| self.write_error(e))?.len();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Cuts the file to the committed length, when it is longer.
    fn cut_back(&mut self) -> Result<(), FileError> {
        let committed = self.committed;
        let sync = self.sync;
        if self.file.is_none() && !self.path.exists() {
            return Ok(());
        }
        let on_disk = {
            self.file()?;
            self.on_disk
        };
        if on_disk != committed {
            let file = self.file.as_mut().expect("opened");
            let cut = file
                .set_len(committed)
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
            cut.map_err(|e| self.write_error(e))?;
            self.on_disk = committed;
        }
        Ok(())
    }

    /// Appends `bytes` at the committed end of the file.
    fn append(&mut self, at: u64, bytes: &[u8]) -> Result<(), FileError> {
        let sync = self.sync;
        let file = self.file()?;
        let written = file
            .seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(bytes))
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        written.map_err(|e| self.write_error(e))?;
        self.on_disk = at + bytes.len() as u64;
        Ok(())
    }
}

impl<T, E> ItemWriter<T> for FileWriter<T, E>
where
    T: Sync,
    E: Encoding<T>,
{
    async fn write(&mut self, items: &[T], _cx: &mut WriteContext<'_>) -> Result<()> {
        self.settle_mut();
        self.last_rolled_back = false;
        if self.pending.is_empty()
            && self.committed == 0
            && let Some(header) = &self.header
        {
            self.pending.extend_from_slice(header.as_bytes());
            self.pending.push(b'\n');
        }
        self.encoding.encode(items, &mut self.pending)?;
        self.pending_records += items.len() as u64;
        Ok(())
    }

    /// The file writer needs no database transaction: its bytes are written when the
    /// chunk commits, in [`update`](ItemWriter::update).
    fn joins_transaction(&self) -> bool {
        false
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.file = None;
        self.pending.clear();
        self.pending_records = 0;
        self.flushed = None;
        self.last_rolled_back = false;
        let exists = self.path.exists();
        match ctx.get::<u64>(&self.key("offset"))? {
            Some(committed) => {
                // A restart: go on from the last commit.
                let found = if exists {
                    std::fs::metadata(&self.path)
                        .map_err(|e| self.write_error(e))?
                        .len()
                } else {
                    0
                };
                if found < committed {
                    return Err(FileError::Shorter {
                        path: self.path.clone(),
                        found,
                        committed,
                    }
                    .into());
                }
                self.committed = committed;
                self.committed_records = ctx.get::<u64>(&self.key("written"))?.unwrap_or(0);
                self.cut_back()?;
            }
            None => {
                self.committed_records = 0;
                self.committed = match (exists, self.if_exists) {
                    (false, _) => 0,
                    (true, ExistingFile::Refuse) => {
                        return Err(FileError::Exists {
                            path: self.path.clone(),
                        }
                        .into());
                    }
                    (true, ExistingFile::Append) => std::fs::metadata(&self.path)
                        .map_err(|e| self.write_error(e))?
                        .len(),
                    (true, ExistingFile::Replace) => 0,
                };
                if exists {
                    self.cut_back()?;
                }
            }
        }
        self.encoding.reset(self.committed == 0);
        Ok(())
    }

    /// Called just before the chunk's transaction commits: appends the chunk's bytes to
    /// the file, syncs it, and saves the new length in the context being committed.
    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        self.settle_mut();
        let (mut length, mut records) = (self.committed, self.committed_records);
        if !self.pending.is_empty() {
            self.cut_back()?;
            let pending = std::mem::take(&mut self.pending);
            let appended = self.append(self.committed, &pending);
            self.pending = pending;
            appended?;
            length += self.pending.len() as u64;
            records += self.pending_records;
            self.pending.clear();
            self.pending_records = 0;
            self.flushed = Some((length, records));
        }
        ctx.put(self.key("offset"), &length)?;
        ctx.put(self.key("written"), &records)?;
        Ok(())
    }

    fn after_rollback(&mut self) {
        self.pending.clear();
        self.pending_records = 0;
        self.last_rolled_back = true;
        if self.flushed.take().is_some()
            && let Err(e) = self.cut_back()
        {
            // The restart cuts the file back in any case (the context holds the
            // committed length); until then the file shows the rolled-back chunk.
            tracing::warn!(error = %crate::error::Error::new(e).report(), "cutting back a rolled-back chunk failed");
        }
        self.encoding.reset(self.committed == 0);
    }

    fn close(&mut self) -> Result<()> {
        self.settle_mut();
        if !self.last_rolled_back && (self.footer.is_some() || self.header.is_some()) {
            let mut tail = Vec::new();
            if self.committed == 0
                && let Some(header) = &self.header
            {
                tail.extend_from_slice(header.as_bytes());
                tail.push(b'\n');
            }
            if let Some(footer) = &self.footer {
                tail.extend_from_slice(footer(self.committed_records).as_bytes());
                tail.push(b'\n');
            }
            if !tail.is_empty() {
                self.cut_back()?;
                self.append(self.committed, &tail)?;
            }
        }
        self.file = None;
        Ok(())
    }
}
