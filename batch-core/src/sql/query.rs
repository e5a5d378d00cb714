//! Typed SQL items: a keyset reader whose rows become the user's type through
//! `sqlx::FromRow`, and a writer built from a type and a column mapping.
//!
//! ```rust,no_run
//! use batch_core::prelude::*;
//! use batch_core::sql::{KeysetReader, SqlWriter};
//!
//! #[derive(sqlx::FromRow)]
//! struct Customer { id: i64, name: String, age: i64 }
//!
//! fn copy(pool: DbPool) -> impl ChunkStep<Customer, Customer> {
//!     read_write(
//!         // Any SELECT; rows mapped by column name; restart after the last committed id.
//!         KeysetReader::query_as::<Customer>(pool, "SELECT id, name, age FROM customers", "id")
//!             .name("customers")
//!             .key(|c: &Customer| c.id),
//!         // One column per accessor, in the chunk's transaction.
//!         SqlWriter::mapped("customer_copies")
//!             .column("id", |c: &Customer| c.id)
//!             .column("name", |c: &Customer| c.name.clone())
//!             .column("age", |c: &Customer| c.age)
//!             .build(),
//!     )
//! }
//! ```

use std::marker::PhantomData;

use sqlx::FromRow;

use super::keyset::{KeysetQuery, KeysetReader};
use super::value::{SqlRow, SqlValue};
use super::writer::{SqlBinds, SqlWriter};
use crate::error::{Error, Result};
use crate::repository::DbPool;

/// A type that `sqlx::FromRow` builds from a row of each of the three databases (what
/// `#[derive(sqlx::FromRow)]` gives a struct of [`FromSqlValue`](super::FromSqlValue)
/// fields).
pub trait FromSqlRow: RowSqlite + RowPostgres + RowMySql {}

impl<T> FromSqlRow for T where T: RowSqlite + RowPostgres + RowMySql {}

/// For one database, a trait every type built by `FromRow` from its rows has, and
/// every type has when the database's feature is off (see `per_database!` in
/// [`super`]).
macro_rules! row_per_database {
    ($feature:literal, $row:ty, $name:ident) => {
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $name: for<'r> FromRow<'r, $row> {}
        #[cfg(feature = $feature)]
        impl<T: for<'r> FromRow<'r, $row>> $name for T {}
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $name {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $name for T {}
    };
}

row_per_database!("sqlite", sqlx::sqlite::SqliteRow, RowSqlite);
row_per_database!("postgres", sqlx::postgres::PgRow, RowPostgres);
row_per_database!("mysql", sqlx::mysql::MySqlRow, RowMySql);

/// Builds `T` from a row of whichever database.
fn from_row<T: FromSqlRow>(row: &SqlRow) -> Result<T> {
    let built = match row {
        #[cfg(feature = "sqlite")]
        SqlRow::Sqlite(r) => T::from_row(r),
        #[cfg(feature = "postgres")]
        SqlRow::Postgres(r) => T::from_row(r),
        #[cfg(feature = "mysql")]
        SqlRow::MySql(r) => T::from_row(r),
    };
    built.map_err(|e| {
        Error::new(e).context(format!("mapping a row into {}", std::any::type_name::<T>()))
    })
}

/// The query of a typed [`KeysetReader`]; see [`KeysetReader::query_as`].
pub struct TypedQuery<T> {
    query: KeysetQuery,
    _item: PhantomData<fn() -> T>,
}

impl KeysetReader<(), ()> {
    /// A reader of `select` (any SELECT the database runs) whose rows become `T`
    /// through `sqlx::FromRow`, in pages ordered by `key_column` (keyset paging, as
    /// [`select`](Self::select)). Give it the key of an item with
    /// [`TypedQuery::key`]: the last committed key is kept in the step context, and a
    /// restart reads on after it.
    pub fn query_as<T: FromSqlRow>(
        pool: impl Into<DbPool>,
        select: impl Into<String>,
        key_column: impl Into<String>,
    ) -> TypedQuery<T> {
        TypedQuery {
            query: Self::select(pool, select, key_column),
            _item: PhantomData,
        }
    }
}

impl<T: FromSqlRow + 'static> TypedQuery<T> {
    /// Rows fetched per query (default 100), independent of the chunk size.
    pub fn page_size(mut self, rows: usize) -> Self {
        self.query = self.query.page_size(rows);
        self
    }

    /// The prefix of the reader's key in the step context (default `keyset`): the last
    /// key read is kept under `{name}.last.key`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.query = self.query.name(name);
        self
    }

    /// The reader, given the key of an item: the value of the key column.
    pub fn key<K, F>(self, key: F) -> KeysetReader<T, K>
    where
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.query.map(from_row::<T>, key)
    }
}

type Column<T> = Box<dyn Fn(&T, &mut SqlBinds<'_>) + Send + Sync>;

/// A [`SqlWriter`] being built from a type and its column mapping; see
/// [`SqlWriter::mapped`].
pub struct MappedWriter<T> {
    table: String,
    columns: Vec<String>,
    binds: Vec<Column<T>>,
}

impl<T: 'static> SqlWriter<T> {
    /// A writer into `table` whose columns are given one by one with
    /// [`MappedWriter::column`], each with the accessor of its value, instead of a
    /// bind closure written by hand.
    pub fn mapped(table: impl Into<String>) -> MappedWriter<T> {
        MappedWriter {
            table: table.into(),
            columns: Vec::new(),
            binds: Vec::new(),
        }
    }
}

impl<T: 'static> MappedWriter<T> {
    /// A column and the value an item gives it.
    pub fn column<V, F>(mut self, name: impl Into<String>, value: F) -> Self
    where
        V: SqlValue + 'static,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        self.columns.push(name.into());
        self.binds.push(Box::new(move |item, row| {
            row.bind(value(item));
        }));
        self
    }

    /// The writer (then [`upsert`](SqlWriter::upsert) and
    /// [`rows_per_statement`](SqlWriter::rows_per_statement) as for any).
    pub fn build(self) -> SqlWriter<T> {
        let binds = self.binds;
        SqlWriter::insert(self.table, self.columns, move |item: &T, row| {
            for bind in &binds {
                bind(item, row);
            }
        })
    }
}
