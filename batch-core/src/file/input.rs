//! The files a reader reads: a list or a name pattern, each opened plain or gzipped,
//! with the bytes read from the disk counted.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::FileError;

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
pub(crate) enum Files {
    List(Vec<PathBuf>),
    Pattern(PathBuf),
}

impl Files {
    /// The files now, sorted by name (Spring's `MultiResourceItemReader` order).
    pub(crate) fn resolve(&self) -> Result<Vec<PathBuf>, FileError> {
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

pub(super) fn is_gzip(path: &Path) -> bool {
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
