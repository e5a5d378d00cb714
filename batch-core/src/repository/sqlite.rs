//! The job repository in a SQLite file: the embedded default.
//!
//! The file is created with the Spring Batch 5 schema on first use and runs in WAL
//! mode, so readers (a paging reader over a table of the same file) never wait for a
//! chunk's commit. Launches take the write lock (`BEGIN IMMEDIATE`) before they look
//! for running executions, so two processes launching the same instance at once are
//! serialized by the database: one runs, the other sees it running.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, SqliteConnection, Transaction};

use super::dao::{ColumnTypes, Dialect, SqlJobRepository, run_queries};
use crate::repository::database::DbKind;
use crate::repository::error::RepositoryError;

/// Spring Batch 5.2's `schema-sqlite.sql` emulates each sequence with a table.
const SEQUENCE_DDL: &[&str] =
    &["CREATE TABLE IF NOT EXISTS {seq} (ID INTEGER PRIMARY KEY AUTOINCREMENT)"];

/// Indexes that keep the cost of a launch, of the explorer's pages and of a purge
/// independent of history (they change nothing a Java reader sees).
const MORE_DDL: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS BATCH_JOB_EXECUTION_INSTANCE_IX ON BATCH_JOB_EXECUTION (JOB_INSTANCE_ID)",
    "CREATE INDEX IF NOT EXISTS BATCH_STEP_EXECUTION_JOB_IX ON BATCH_STEP_EXECUTION (JOB_EXECUTION_ID, STEP_NAME)",
    "CREATE INDEX IF NOT EXISTS BATCH_JOB_EXECUTION_STATUS_IX ON BATCH_JOB_EXECUTION (STATUS, JOB_EXECUTION_ID)",
    "CREATE INDEX IF NOT EXISTS BATCH_JOB_EXECUTION_END_IX ON BATCH_JOB_EXECUTION (END_TIME)",
];

/// See the module documentation.
pub type SqliteJobRepository = SqlJobRepository<Sqlite>;

impl SqlJobRepository<Sqlite> {
    /// Opens (creating when missing) the database at `url` (`sqlite:batch.db`,
    /// `sqlite://path/to/file.db`, or a bare file path) and makes sure the batch
    /// tables are there with the right columns.
    pub async fn open(url: &str) -> Result<Self, RepositoryError> {
        let url_owned = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite:{url}")
        };
        let unreachable = |source| RepositoryError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(&url_owned)
            .map_err(unreachable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        Self::from_pool(pool).await
    }
}

impl Dialect for Sqlite {
    const KIND: DbKind = DbKind::Sqlite;
    const TYPES: ColumnTypes = ColumnTypes {
        id_key: "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
        big: "INTEGER",
        time: "TIMESTAMP",
        exit_code: "VARCHAR(100)",
        long_text: "CLOB",
        table_options: "",
    };
    const SEQUENCE_DDL: &'static [&'static str] = SEQUENCE_DDL;
    const MORE_DDL: &'static [&'static str] = MORE_DDL;
    const SEQUENCE_COLUMNS: &'static [&'static str] = &["ID"];
    // The launch transaction holds the database's write lock from its first statement.
    const LOCK_ROW: &'static str = "";
    const PARAMETER_ORDER: &'static str = " ORDER BY rowid";

    // `BEGIN IMMEDIATE` takes the write lock at once: a transaction that would only
    // take it at its first write could find, at that write, that another process wrote
    // since it read (SQLITE_BUSY, with no waiting).
    async fn begin(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn begin_schema(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Spring's SQLite sequences are AUTOINCREMENT tables: insert a row, keep its id,
    /// delete the rows below it.
    async fn next_id(conn: &mut SqliteConnection, sequence: &'static str) -> sqlx::Result<i64> {
        let insert = format!("INSERT INTO {sequence} (ID) VALUES (NULL) RETURNING ID");
        let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(insert))
            .fetch_one(&mut *conn)
            .await?;
        let delete = format!("DELETE FROM {sequence} WHERE ID < ?");
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    async fn columns(
        conn: &mut SqliteConnection,
        table: &'static str,
    ) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(table)
            .fetch_all(conn)
            .await
    }

    run_queries!(Sqlite);
}
