//! The batched INSERT (or upsert) writer, in the chunk's transaction.

use std::marker::PhantomData;

#[cfg(feature = "mysql")]
use sqlx::MySql;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
use sqlx::QueryBuilder;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;
use sqlx::query_builder::Separated;

use super::value::SqlValue;
use crate::error::{Error, Result};
use crate::item::{ItemWriter, WriteContext};
use crate::repository::{ChunkTx, DbKind, Dialect};

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
    /// [`DbPool::begin`](crate::repository::DbPool::begin) (to seed a table outside a job, say).
    pub async fn write_in(&self, tx: &mut ChunkTx, items: &[T]) -> Result<()> {
        let Some(kind) = tx.kind() else {
            return Err(Error::new(SqlWriterError::NoDatabase {
                table: self.table.clone(),
            }));
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
        return Err(Error::new(SqlWriterError::BindCount {
            table: writer.table.clone(),
            bound,
            columns: writer.columns.clone(),
        }));
    }
    builder.push(tail);
    DB::execute(conn, builder.build()).await?;
    Ok(())
}

/// What a [`SqlWriter`] refuses before it writes a row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlWriterError {
    /// The job repository is kept in memory: there is no database to write into.
    #[error("writing into `{table}` needs a database, but the job repository is kept in memory")]
    NoDatabase {
        /// The writer's table.
        table: String,
    },
    /// The bind function bound another number of values than the row has columns.
    #[error(
        "the writer into `{table}` bound {bound} value(s) for a row of {} column(s) ({})",
        columns.len(),
        columns.join(", ")
    )]
    BindCount {
        /// The writer's table.
        table: String,
        /// How many values it bound for one row.
        bound: usize,
        /// The row's columns.
        columns: Vec<String>,
    },
}

impl<T: Sync> ItemWriter<T> for SqlWriter<T> {
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        self.write_in(cx.transaction(), items).await
    }
}
