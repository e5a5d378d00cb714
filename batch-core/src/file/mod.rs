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

mod csv;
mod error;
mod fixed;
pub(crate) mod input;
mod json;
mod reader;
mod writer;

pub use self::csv::{Csv, CsvEncoding, CsvReader, CsvWriter};
pub use self::error::{FieldCount, FileError, MalformedRecord};
pub use self::fixed::{FixedWidth, FixedWidthReader};
pub use self::input::Input;
pub use self::json::{JsonLines, JsonLinesEncoding, JsonLinesReader, JsonLinesWriter};
pub use self::reader::{FileReader, FormatName, Position, RecordFormat};
pub use self::writer::{Encoding, ExistingFile, FileWriter};
