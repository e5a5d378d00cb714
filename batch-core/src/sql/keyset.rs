//! The keyset-paging reader.

use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(feature = "mysql")]
use sqlx::MySql;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;
use sqlx::{Encode, Pool, Type};

use super::value::{SqlRow, SqlValue};
use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::item::ItemReader;
use crate::repository::{DbPool, Dialect};

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
