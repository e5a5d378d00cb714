//! The job repository in a SQLite file: the embedded default.
//!
//! The file is created with the Spring Batch 5 schema on first use and runs in WAL
//! mode, so readers (a paging reader over a table of the same file) never wait for a
//! chunk's commit. Launches take the write lock (`BEGIN IMMEDIATE`) before they look
//! for running executions, so two processes launching the same instance at once are
//! serialized by the database: one runs, the other sees it running.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, SqliteConnection, Transaction};

use super::dao::{CatalogColumn, ColumnTypes, Dialect, SqlJobRepository, run_queries};
use crate::repository::database::DbKind;
use crate::repository::error::RepositoryError;
use crate::repository::timeouts::Timeouts;

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
    // An execution's parameters, and the console's filter by a parameter's value.
    "CREATE INDEX IF NOT EXISTS BATCH_JOB_EXECUTION_PARAMS_IX ON BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID)",
];

/// See the module documentation.
pub type SqliteJobRepository = SqlJobRepository<Sqlite>;

impl SqlJobRepository<Sqlite> {
    /// Opens (creating when missing) the database at `url` (`sqlite:batch.db`,
    /// `sqlite://path/to/file.db`, or a bare file path) and makes sure the batch
    /// tables are there with the right columns.
    pub async fn open(url: &str) -> Result<Self, RepositoryError> {
        let (driver_url, timeouts) = Timeouts::from_url(url)?;
        let url_owned = if driver_url.starts_with("sqlite:") {
            driver_url
        } else {
            format!("sqlite:{driver_url}")
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
            // A statement waits for another process's write lock as long as an
            // operation may take.
            .busy_timeout(timeouts.statement);
        let pool_options = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(timeouts.connect.max(timeouts.statement));
        // Processes opening a new file at once (a launch and a console, say) race to
        // switch it to WAL and to set up its WAL index, and SQLite answers the loser
        // SQLITE_BUSY at once, without its busy handler: the open is tried again,
        // within the statement timeout.
        let deadline = std::time::Instant::now() + timeouts.statement;
        let mut pause = std::time::Duration::from_millis(5);
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && std::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(unreachable(e)),
            }
        };
        Self::from_pool_bounded(pool, timeouts.statement).await
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED (primary result codes 5 and 6, any extended code).
fn is_busy(error: &sqlx::Error) -> bool {
    let code = match error {
        sqlx::Error::Database(e) => e.code(),
        _ => None,
    };
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
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

    fn sum_of_millis(from: &str, to: &str) -> String {
        format!("SUM(CAST(ROUND((julianday({to}) - julianday({from})) * 86400000.0) AS INTEGER))")
    }

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

    fn advance_sequence(sequence: &str, to: i64) -> String {
        format!("INSERT INTO {sequence} (ID) VALUES ({to})")
    }

    async fn columns(
        conn: &mut SqliteConnection,
        table: &'static str,
    ) -> sqlx::Result<Vec<CatalogColumn>> {
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?)",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, data_type, not_null, default, pk)| CatalogColumn {
                name,
                nullable: not_null == 0,
                // SQLite does not enforce declared lengths.
                max_length: None,
                // An INTEGER PRIMARY KEY is the row id, filled when left out.
                has_default: default != 0 || (pk != 0 && data_type.eq_ignore_ascii_case("INTEGER")),
                data_type: data_type.to_lowercase(),
            })
            .collect())
    }

    run_queries!(Sqlite);
}
