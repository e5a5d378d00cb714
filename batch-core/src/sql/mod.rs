//! SQL items for SQLite, PostgreSQL and MySQL/MariaDB: a keyset-paging reader and a
//! batched insert/upsert writer, written once for the three databases.
//!
//! A job maps rows to items and items to columns with two closures, and never names
//! the database: the reader gets a [`SqlRow`] (any of the three kinds of row), the
//! writer fills a [`SqlBinds`] (the values of one row of a multi-row INSERT). So the
//! same step runs on whichever database the job repository is on, with the writer in
//! the chunk's transaction.
//!
//! ```rust,no_run
//! use batch_core::prelude::*;
//! use batch_core::sql::{KeysetReader, SqlRow, SqlWriter};
//!
//! struct Order { id: i64, amount: i64 }
//!
//! // With the macros: `#[step(chunk = 100)] fn copy_orders(pool: Res<DbPool>) -> …`.
//! fn copy_orders(pool: DbPool) -> impl ChunkStep<Order, Order> {
//!     chunk(
//!         // Pages of 1000 rows, in `id` order; the last id read is kept in the step
//!         // context under `orders.last.key`, so a restart goes on after it.
//!         KeysetReader::select(pool, "SELECT id, amount FROM orders", "id")
//!             .page_size(1000)
//!             .name("orders")
//!             .map(
//!                 |row: &SqlRow| Ok(Order { id: row.get("id")?, amount: row.get("amount")? }),
//!                 |order: &Order| order.id,
//!             ),
//!         |o: &Order| Ok::<_, Error>(Some(Order { id: o.id, amount: o.amount * 2 })),
//!         // One INSERT of up to 1000 rows per statement, in the chunk's transaction;
//!         // a row whose `id` exists is updated instead.
//!         SqlWriter::insert("doubled", ["id", "amount"], |o: &Order, row| {
//!             row.bind(o.id).bind(o.amount);
//!         })
//!         .upsert(["id"]),
//!     )
//! }
//! ```
//!
//! Page size and chunk size are separate, as seed 004 explains: the reader fetches a
//! page when it has handed out the last one, whatever the chunk boundaries are.
//!
//! Column names in [`SqlRow::get`] are the names the database reports: PostgreSQL
//! folds unquoted names to lower case (`SELECT ID` comes back as `id`), so write them
//! in lower case, or read by position (`row.get(0)`).
mod keyset;
mod query;
mod value;
mod writer;

pub use keyset::{KeysetQuery, KeysetReader};
pub use query::{FromSqlRow, MappedWriter, TypedQuery};
#[doc(hidden)]
pub use value::{
    DecodeMySql, DecodePostgres, DecodeSqlite, EncodeMySql, EncodePostgres, EncodeSqlite,
    IndexMySql, IndexPostgres, IndexSqlite,
};
pub use value::{FromSqlValue, SqlIndex, SqlRow, SqlValue};
pub use writer::{SqlBinds, SqlWriter, SqlWriterError};
