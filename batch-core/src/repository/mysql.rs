//! The job repository on MySQL and MariaDB.
//!
//! The tables are Spring Batch 5.2's `schema-mysql.sql` (InnoDB, DATETIME(6),
//! EXIT_CODE VARCHAR(2500), SERIALIZED_CONTEXT TEXT), created on first use when
//! missing. Ids come from Spring's `*_SEQ` tables, one row each, advanced with
//! `UPDATE … SET ID = LAST_INSERT_ID(ID + 1)` and read back with `LAST_INSERT_ID()`
//! on the same connection, as Spring's MySQL incrementer does; the row's UNIQUE_KEY
//! keeps a second row from being added when several processes create the tables.
//!
//! The pool's sessions run in READ COMMITTED rather than InnoDB's default REPEATABLE
//! READ: a launch locks the instance's row (`SELECT … FOR UPDATE`) and must then see
//! what the launch before it committed, which a snapshot taken earlier in the
//! transaction would hide; chunk transactions also take fewer gap locks. They also
//! run with `STRICT_ALL_TABLES` added to the server's `sql_mode`, so that a value too
//! long for its column is refused rather than truncated.

use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Executor, MySql, MySqlConnection, Pool, Transaction};

use super::dao::{
    CatalogColumn, ColumnTypes, Dialect, SqlJobRepository, connect_server, run_queries,
};
use crate::repository::database::DbKind;
use crate::repository::error::RepositoryError;

/// Spring Batch 5.2's `schema-mysql.sql` emulates each sequence with a one-row table,
/// whose UNIQUE_KEY keeps processes that create the tables together from adding a
/// second row. (InnoDB indexes the foreign key columns by itself.)
const SEQUENCE_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {seq} (ID BIGINT NOT NULL, UNIQUE_KEY CHAR(1) NOT NULL, constraint UNIQUE_KEY_UN unique (UNIQUE_KEY)) ENGINE=InnoDB",
    "INSERT IGNORE INTO {seq} (ID, UNIQUE_KEY) SELECT 0, '0' FROM DUAL WHERE NOT EXISTS (SELECT * FROM {seq})",
];

/// See the module documentation.
pub type MySqlJobRepository = SqlJobRepository<MySql>;

impl SqlJobRepository<MySql> {
    /// Connects to `url` (`mysql://USER:PASSWORD@HOST:PORT/DATABASE`, also for
    /// MariaDB) and makes sure the batch tables are there with the right columns.
    pub async fn open(url: &str) -> Result<Self, RepositoryError> {
        let options = |timeouts: super::timeouts::Timeouts| {
            // A client cut off with a transaction open (a network partition) would
            // leave its session holding its locks until TCP gives up, hours later:
            // the server closes a session idle that long, which rolls it back. The
            // pool's idle connections are checked before use, so one the server
            // closed is replaced.
            let idle = timeouts.server_idle().as_secs().max(1);
            MySqlPoolOptions::new().after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    // Strict: a value too long for its column is an error, never
                    // silently truncated (a lax sql_mode truncates with a warning).
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES'), wait_timeout = {idle}"
                    )))
                    .await?;
                    Ok(())
                })
            })
        };
        let (pool, timeouts) = connect_server(url, options).await?;
        Self::from_pool_bounded(pool, timeouts.statement).await
    }
}

impl Dialect for MySql {
    const KIND: DbKind = DbKind::MySql;
    const TYPES: ColumnTypes = ColumnTypes {
        id_key: "BIGINT NOT NULL PRIMARY KEY",
        big: "BIGINT",
        time: "DATETIME(6)",
        exit_code: "VARCHAR(2500)",
        long_text: "TEXT",
        table_options: " ENGINE=InnoDB",
    };
    const SEQUENCE_DDL: &'static [&'static str] = SEQUENCE_DDL;
    const MORE_DDL: &'static [&'static str] = &[];
    const SEQUENCE_COLUMNS: &'static [&'static str] = &["ID", "UNIQUE_KEY"];
    const LOCK_ROW: &'static str = " FOR UPDATE";
    // The foreign key's index keeps rows of one execution in insertion order.
    const PARAMETER_ORDER: &'static str = "";

    fn sum_of_millis(from: &str, to: &str) -> String {
        format!("CAST(SUM(TIMESTAMPDIFF(MICROSECOND, {from}, {to}) DIV 1000) AS SIGNED)")
    }

    async fn begin(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        pool.begin().await
    }

    /// DDL commits implicitly in MySQL, so no transaction can hold it together; it
    /// needs none: `CREATE TABLE IF NOT EXISTS` is safe to run concurrently, and the
    /// sequences' first rows are inserted once thanks to their unique key.
    async fn begin_schema(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        pool.begin().await
    }

    async fn next_id(conn: &mut MySqlConnection, sequence: &'static str) -> sqlx::Result<i64> {
        let update = format!("UPDATE {sequence} SET ID = LAST_INSERT_ID(ID + 1)");
        let done = sqlx::query(sqlx::AssertSqlSafe(update))
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            return Err(sqlx::Error::RowNotFound);
        }
        let id: u64 = sqlx::query_scalar("SELECT LAST_INSERT_ID()")
            .fetch_one(conn)
            .await?;
        Ok(id as i64)
    }

    fn advance_sequence(sequence: &str, to: i64) -> String {
        format!("UPDATE {sequence} SET ID = {to}")
    }

    async fn columns(
        conn: &mut MySqlConnection,
        table: &'static str,
    ) -> sqlx::Result<Vec<CatalogColumn>> {
        let rows: Vec<(String, String, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR), \
             CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), \
             CAST(COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%' AS SIGNED) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(table)
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, data_type, nullable, max_length, has_default)| CatalogColumn {
                    name,
                    data_type: data_type.to_lowercase(),
                    nullable: nullable == "YES",
                    max_length,
                    has_default: has_default != 0,
                },
            )
            .collect())
    }

    run_queries!(MySql);
}
