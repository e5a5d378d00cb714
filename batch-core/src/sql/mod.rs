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

mod query;

pub use query::{FromSqlRow, MappedWriter, TypedQuery};

use std::collections::VecDeque;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(feature = "mysql")]
use sqlx::MySql;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;
#[cfg(feature = "mysql")]
use sqlx::mysql::MySqlRow;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgRow;
use sqlx::query_builder::Separated;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;
use sqlx::{Encode, Pool, QueryBuilder, Type};

use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::item::{ItemReader, ItemWriter, WriteContext};
use crate::repository::{ChunkTx, DbKind, DbPool, Dialect};

/// Declares, for one database, a trait that every value binding to (or read from) a
/// parameter on it has, and that every type has when the database's feature is off: so
/// [`SqlValue`] asks for the databases this program is built with, and no others.
macro_rules! per_database {
    ($feature:literal, $db:ty, $row:ty, $encode:ident, $decode:ident, $index:ident) => {
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $encode: for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db> {}
        #[cfg(feature = $feature)]
        impl<T: for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db>> $encode for T {}
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $decode: for<'r> sqlx::Decode<'r, $db> + sqlx::Type<$db> {}
        #[cfg(feature = $feature)]
        impl<T: for<'r> sqlx::Decode<'r, $db> + sqlx::Type<$db>> $decode for T {}
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $index: sqlx::ColumnIndex<$row> {}
        #[cfg(feature = $feature)]
        impl<T: sqlx::ColumnIndex<$row>> $index for T {}

        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $encode {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $encode for T {}
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $decode {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $decode for T {}
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $index {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $index for T {}
    };
}

per_database!(
    "sqlite",
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    EncodeSqlite,
    DecodeSqlite,
    IndexSqlite
);
per_database!(
    "postgres",
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    EncodePostgres,
    DecodePostgres,
    IndexPostgres
);
per_database!(
    "mysql",
    sqlx::MySql,
    sqlx::mysql::MySqlRow,
    EncodeMySql,
    DecodeMySql,
    IndexMySql
);

/// A Rust value that binds to a parameter on each database this program is built for:
/// integers, `f64`, `bool`, `String` and `&str`, the chrono date and time types, and
/// `Option`s of owned ones.
pub trait SqlValue: EncodeSqlite + EncodePostgres + EncodeMySql + Send {}

impl<T> SqlValue for T where T: EncodeSqlite + EncodePostgres + EncodeMySql + Send {}

/// A Rust value that a column of each database this program is built for can be read
/// into.
pub trait FromSqlValue: DecodeSqlite + DecodePostgres + DecodeMySql {}

impl<T> FromSqlValue for T where T: DecodeSqlite + DecodePostgres + DecodeMySql {}

/// How a column is named in [`SqlRow::get`]: by name (`&str`) or position (`usize`).
pub trait SqlIndex: IndexSqlite + IndexPostgres + IndexMySql + std::fmt::Debug {}

impl<I> SqlIndex for I where I: IndexSqlite + IndexPostgres + IndexMySql + std::fmt::Debug {}

/// A row read by [`KeysetReader`], from whichever database.
pub enum SqlRow {
    /// A SQLite row.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteRow),
    /// A PostgreSQL row.
    #[cfg(feature = "postgres")]
    Postgres(PgRow),
    /// A MySQL/MariaDB row.
    #[cfg(feature = "mysql")]
    MySql(MySqlRow),
}

impl SqlRow {
    /// The value of a column, by name or position.
    pub fn get<T: FromSqlValue, I: SqlIndex>(&self, index: I) -> Result<T> {
        use sqlx::Row;
        let value = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(r) => r.try_get(&index),
            #[cfg(feature = "postgres")]
            Self::Postgres(r) => r.try_get(&index),
            #[cfg(feature = "mysql")]
            Self::MySql(r) => r.try_get(&index),
        };
        value.map_err(|e| Error::new(e).context(format!("reading column {index:?}")))
    }

    /// The database the row came from.
    pub fn kind(&self) -> DbKind {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => DbKind::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => DbKind::Postgres,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => DbKind::MySql,
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteRow> for SqlRow {
    fn from(row: SqliteRow) -> Self {
        Self::Sqlite(row)
    }
}

#[cfg(feature = "postgres")]
impl From<PgRow> for SqlRow {
    fn from(row: PgRow) -> Self {
        Self::Postgres(row)
    }
}

#[cfg(feature = "mysql")]
impl From<MySqlRow> for SqlRow {
    fn from(row: MySqlRow) -> Self {
        Self::MySql(row)
    }
}

/// The query of a [`KeysetReader`] before it knows its item type; see
/// [`KeysetReader::select`].
pub struct KeysetQuery {
    pool: DbPool,
    select: String,
    key_column: String,
    page_size: usize,
    name: String,
}

impl KeysetQuery {
    /// How many rows one query fetches (default 100). Independent of the chunk size.
    pub fn page_size(mut self, rows: usize) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// The prefix of the reader's key in the step context (default `keyset`): the last
    /// key read is kept under `{name}.last.key`. Two keyset readers in one step need
    /// two names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Maps each row to an item with `map`, and each item to its key with `key` (the
    /// value of the key column: what the next page starts after, and what the step
    /// context keeps).
    pub fn map<T, K, M, F>(self, map: M, key: F) -> KeysetReader<T, K>
    where
        M: Fn(&SqlRow) -> Result<T> + Send + Sync + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        KeysetReader {
            query: self,
            map: Box::new(map),
            key: Box::new(key),
            page: VecDeque::new(),
            last_key: None,
            exhausted: false,
            read: 0,
        }
    }
}

type MapRow<T> = Box<dyn Fn(&SqlRow) -> Result<T> + Send + Sync>;
type KeyOf<T, K> = Box<dyn Fn(&T) -> K + Send + Sync>;

/// Reads the rows of a SELECT in pages ordered by a key column, each page starting
/// after the last key read (keyset paging: no OFFSET, so a page costs the same at the
/// end of a table as at its start).
///
/// The last key handed out is saved in the step context at each commit and restored
/// when the step opens, so a restart reads on from the first row not yet committed
/// and reads nothing twice. The key must be unique and must not change while the job
/// runs; the rows it orders are read on the repository's pool, outside the chunk's
/// transaction.
pub struct KeysetReader<T, K> {
    query: KeysetQuery,
    map: MapRow<T>,
    key: KeyOf<T, K>,
    page: VecDeque<T>,
    last_key: Option<K>,
    exhausted: bool,
    read: u64,
}

impl KeysetReader<(), ()> {
    /// A reader of `select` (any SELECT of the database, with joins and a WHERE of its
    /// own), ordered by `key_column`, one of its output columns. Give it its item type
    /// with [`KeysetQuery::map`].
    ///
    /// Each page runs `SELECT * FROM ({select}) AS keyset_page WHERE {key_column} > ?
    /// ORDER BY {key_column} LIMIT {page_size}`.
    pub fn select(
        pool: impl Into<DbPool>,
        select: impl Into<String>,
        key_column: impl Into<String>,
    ) -> KeysetQuery {
        KeysetQuery {
            pool: pool.into(),
            select: select.into(),
            key_column: key_column.into(),
            page_size: 100,
            name: "keyset".into(),
        }
    }
}

impl<T, K> KeysetReader<T, K> {
    fn context_key(&self) -> String {
        format!("{}.last.key", self.query.name)
    }

    /// Rows handed out by this reader since it opened.
    pub fn read_count(&self) -> u64 {
        self.read
    }

    fn page_sql(&self) -> String {
        let q = &self.query;
        let after = if self.last_key.is_some() {
            format!(" WHERE {} > ?", q.key_column)
        } else {
            String::new()
        };
        format!(
            "SELECT * FROM ({}) AS keyset_page{after} ORDER BY {} LIMIT {}",
            q.select, q.key_column, q.page_size
        )
    }
}

impl<T, K> KeysetReader<T, K>
where
    T: Send,
    K: SqlValue + Clone + Sync,
{
    async fn fetch_page(&mut self) -> Result<()> {
        let sql = self.page_sql();
        let key = self.last_key.clone();
        let rows = match &self.query.pool {
            #[cfg(feature = "sqlite")]
            DbPool::Sqlite(p) => fetch::<Sqlite, K>(p, sql, key).await,
            #[cfg(feature = "postgres")]
            DbPool::Postgres(p) => fetch::<Postgres, K>(p, sql, key).await,
            #[cfg(feature = "mysql")]
            DbPool::MySql(p) => fetch::<MySql, K>(p, sql, key).await,
        }
        .map_err(|e| {
            Error::new(e).context(format!(
                "reading a page of `{}` after {} {}",
                self.query.select,
                self.query.key_column,
                if self.last_key.is_some() {
                    "the last key read"
                } else {
                    "the start"
                }
            ))
        })?;
        self.exhausted = rows.len() < self.query.page_size;
        for row in &rows {
            self.page.push_back((self.map)(row)?);
        }
        Ok(())
    }
}

/// One page of rows, after `key` when there is one.
async fn fetch<DB, K>(pool: &Pool<DB>, sql: String, key: Option<K>) -> sqlx::Result<Vec<SqlRow>>
where
    DB: Dialect,
    K: for<'q> Encode<'q, DB> + Type<DB> + Send,
    SqlRow: From<DB::Row>,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(DB::sql(sql.into())));
    if let Some(key) = key {
        query = query.bind(key);
    }
    let mut conn = pool.acquire().await?;
    let rows = DB::fetch_all(&mut conn, query).await?;
    Ok(rows.into_iter().map(SqlRow::from).collect())
}

impl<T, K> ItemReader<T> for KeysetReader<T, K>
where
    T: Send,
    K: SqlValue + Serialize + DeserializeOwned + Clone + Sync,
{
    async fn read(&mut self) -> Result<Option<T>> {
        if self.page.is_empty() && !self.exhausted {
            self.fetch_page().await?;
        }
        let item = self.page.pop_front();
        if let Some(item) = &item {
            self.last_key = Some((self.key)(item));
            self.read += 1;
        }
        Ok(item)
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.last_key = ctx.get::<K>(&self.context_key())?;
        self.page.clear();
        self.exhausted = false;
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        if let Some(key) = &self.last_key {
            ctx.put(self.context_key(), key)?;
        }
        Ok(())
    }
}

/// The values of one row being written by [`SqlWriter`]: bind one value per column,
/// in the order of the writer's columns.
pub struct SqlBinds<'q> {
    inner: BindsInner<'q>,
    count: usize,
}

enum BindsInner<'q> {
    #[cfg(feature = "sqlite")]
    Sqlite(Separated<'q, Sqlite, &'static str>),
    #[cfg(feature = "postgres")]
    Postgres(Separated<'q, Postgres, &'static str>),
    #[cfg(feature = "mysql")]
    MySql(Separated<'q, MySql, &'static str>),
}

impl SqlBinds<'_> {
    /// Binds the next column's value.
    pub fn bind<V: SqlValue>(&mut self, value: V) -> &mut Self {
        match &mut self.inner {
            #[cfg(feature = "sqlite")]
            BindsInner::Sqlite(s) => {
                s.push_bind(value);
            }
            #[cfg(feature = "postgres")]
            BindsInner::Postgres(s) => {
                s.push_bind(value);
            }
            #[cfg(feature = "mysql")]
            BindsInner::MySql(s) => {
                s.push_bind(value);
            }
        }
        self.count += 1;
        self
    }
}

#[cfg(feature = "sqlite")]
impl<'q> From<Separated<'q, Sqlite, &'static str>> for SqlBinds<'q> {
    fn from(s: Separated<'q, Sqlite, &'static str>) -> Self {
        Self {
            inner: BindsInner::Sqlite(s),
            count: 0,
        }
    }
}

#[cfg(feature = "postgres")]
impl<'q> From<Separated<'q, Postgres, &'static str>> for SqlBinds<'q> {
    fn from(s: Separated<'q, Postgres, &'static str>) -> Self {
        Self {
            inner: BindsInner::Postgres(s),
            count: 0,
        }
    }
}

#[cfg(feature = "mysql")]
impl<'q> From<Separated<'q, MySql, &'static str>> for SqlBinds<'q> {
    fn from(s: Separated<'q, MySql, &'static str>) -> Self {
        Self {
            inner: BindsInner::MySql(s),
            count: 0,
        }
    }
}

type BindRow<T> = Box<dyn Fn(&T, &mut SqlBinds<'_>) + Send + Sync>;

/// Writes each chunk into a table with multi-row INSERTs (up to
/// [`rows_per_statement`](Self::rows_per_statement) rows each), in the chunk's
/// transaction: the rows commit with the chunk's metadata or not at all, which is what
/// makes a database-to-database job exactly-once across crashes.
///
/// With [`upsert`](Self::upsert), a row whose key exists updates the other columns
/// instead (`ON CONFLICT … DO UPDATE` on SQLite and PostgreSQL, `ON DUPLICATE KEY
/// UPDATE` on MySQL, where the key columns must be the table's primary or a unique
/// key).
pub struct SqlWriter<T> {
    table: String,
    columns: Vec<String>,
    upsert_keys: Vec<String>,
    rows_per_statement: usize,
    bind: BindRow<T>,
    _item: PhantomData<fn(&T)>,
}

impl<T> SqlWriter<T> {
    /// A writer into `table`'s `columns`; `bind` binds one value per column for an
    /// item, in the same order.
    pub fn insert<C, F>(table: impl Into<String>, columns: C, bind: F) -> Self
    where
        C: IntoIterator,
        C::Item: Into<String>,
        F: Fn(&T, &mut SqlBinds<'_>) + Send + Sync + 'static,
    {
        Self {
            table: table.into(),
            columns: columns.into_iter().map(Into::into).collect(),
            upsert_keys: Vec::new(),
            rows_per_statement: 1000,
            bind: Box::new(bind),
            _item: PhantomData,
        }
    }

    /// Updates the row instead when one with the same `keys` exists.
    pub fn upsert<C>(mut self, keys: C) -> Self
    where
        C: IntoIterator,
        C::Item: Into<String>,
    {
        self.upsert_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Rows per INSERT statement (default 1000; fewer when the columns times the rows
    /// would pass the databases' limit on bound parameters).
    pub fn rows_per_statement(mut self, rows: usize) -> Self {
        self.rows_per_statement = rows.max(1);
        self
    }

    fn statement_rows(&self) -> usize {
        // SQLite allows 32766 parameters, the servers 65535.
        let cap = (30_000 / self.columns.len().max(1)).max(1);
        self.rows_per_statement.min(cap)
    }

    /// The end of the statement for an upsert, in `kind`'s dialect.
    fn conflict_clause(&self, kind: DbKind) -> String {
        if self.upsert_keys.is_empty() {
            return String::new();
        }
        let others: Vec<&String> = self
            .columns
            .iter()
            .filter(|c| !self.upsert_keys.contains(c))
            .collect();
        match kind {
            DbKind::Sqlite | DbKind::Postgres => {
                let keys = self.upsert_keys.join(", ");
                if others.is_empty() {
                    format!(" ON CONFLICT ({keys}) DO NOTHING")
                } else {
                    let set: Vec<String> = others
                        .iter()
                        .map(|c| format!("{c} = excluded.{c}"))
                        .collect();
                    format!(" ON CONFLICT ({keys}) DO UPDATE SET {}", set.join(", "))
                }
            }
            DbKind::MySql => {
                let set: Vec<String> = if others.is_empty() {
                    let k = &self.upsert_keys[0];
                    vec![format!("{k} = {k}")]
                } else {
                    others
                        .iter()
                        .map(|c| format!("{c} = VALUES({c})"))
                        .collect()
                };
                format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
        }
    }

    /// Writes `items` in `tx`: the chunk's transaction, or one begun with
    /// [`DbPool::begin`] (to seed a table outside a job, say).
    pub async fn write_in(&self, tx: &mut ChunkTx, items: &[T]) -> Result<()> {
        let Some(kind) = tx.kind() else {
            return Err(Error::msg(format!(
                "writing into `{}` needs a database, but the job repository is kept in memory",
                self.table
            )));
        };
        let head = format!("INSERT INTO {} ({}) ", self.table, self.columns.join(", "));
        let tail = self.conflict_clause(kind);
        for rows in items.chunks(self.statement_rows()) {
            let outcome = match kind {
                #[cfg(feature = "sqlite")]
                DbKind::Sqlite => insert::<Sqlite, T>(tx.sqlite()?, self, &head, &tail, rows).await,
                #[cfg(feature = "postgres")]
                DbKind::Postgres => {
                    insert::<Postgres, T>(tx.postgres()?, self, &head, &tail, rows).await
                }
                #[cfg(feature = "mysql")]
                DbKind::MySql => insert::<MySql, T>(tx.mysql()?, self, &head, &tail, rows).await,
                // A transaction exists only on a database whose driver was built.
                #[allow(unreachable_patterns)]
                _ => unreachable!("a {kind} transaction without the {kind} driver"),
            };
            outcome.map_err(|e| {
                e.context(format!("writing {} rows into `{}`", rows.len(), self.table))
            })?;
        }
        Ok(())
    }
}

/// One multi-row INSERT of `rows` on `conn`.
async fn insert<DB, T>(
    conn: &mut DB::Connection,
    writer: &SqlWriter<T>,
    head: &str,
    tail: &str,
    rows: &[T],
) -> Result<()>
where
    DB: Dialect,
    for<'q> SqlBinds<'q>: From<Separated<'q, DB, &'static str>>,
{
    let mut builder = QueryBuilder::<DB>::new(head);
    let mut wrong = None;
    builder.push_values(rows, |separated, item| {
        let mut binds = SqlBinds::from(separated);
        (writer.bind)(item, &mut binds);
        if binds.count != writer.columns.len() && wrong.is_none() {
            wrong = Some(binds.count);
        }
    });
    if let Some(bound) = wrong {
        return Err(Error::msg(format!(
            "the writer into `{}` bound {bound} value(s) for a row of {} column(s) ({})",
            writer.table,
            writer.columns.len(),
            writer.columns.join(", ")
        )));
    }
    builder.push(tail);
    DB::execute(conn, builder.build()).await?;
    Ok(())
}

impl<T: Sync> ItemWriter<T> for SqlWriter<T> {
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        self.write_in(cx.transaction(), items).await
    }
}
