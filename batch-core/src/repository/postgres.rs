//! The job repository on PostgreSQL.
//!
//! The tables are Spring Batch 5.2's `schema-postgresql.sql` (BIGINT ids and counters,
//! EXIT_CODE VARCHAR(2500), SERIALIZED_CONTEXT TEXT) and ids come from Spring's three
//! sequences; they are created on first use when missing, under an advisory lock so
//! that processes starting together do not race on the DDL. A launch locks the
//! instance's row (`SELECT … FOR UPDATE`): launches of one instance run one after the
//! other, each seeing what the one before committed (READ COMMITTED, the default).

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, Pool, Postgres, Transaction};
use std::borrow::Cow;

use super::dao::{
    CatalogColumn, ColumnTypes, Dialect, SqlJobRepository, connect_server, run_queries,
};
use crate::repository::database::DbKind;
use crate::repository::error::RepositoryError;

/// Spring Batch 5.2's `schema-postgresql.sql` has real sequences. (PostgreSQL does not
/// index foreign keys by itself: see `MORE_DDL`.)
const SEQUENCE_DDL: &[&str] =
    &["CREATE SEQUENCE IF NOT EXISTS {seq} MAXVALUE 9223372036854775807 NO CYCLE"];

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

/// The key of the advisory lock held while the schema is checked and created.
const SCHEMA_LOCK: i64 = 0x5350_4241_5443_4835; // "SPBATCH5"

/// See the module documentation.
pub type PostgresJobRepository = SqlJobRepository<Postgres>;

impl SqlJobRepository<Postgres> {
    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`; add
    /// `?options[search_path]=SCHEMA` to use another schema) and makes sure the batch
    /// tables are there with the right columns.
    pub async fn open(url: &str) -> Result<Self, RepositoryError> {
        let (pool, timeouts) = connect_server(url, |timeouts| {
            // A client cut off with a transaction open (a network partition) would
            // leave its session `idle in transaction`, holding its locks until TCP
            // gives up, hours later: the server ends such a session itself.
            let idle = timeouts.server_idle().as_millis();
            PgPoolOptions::new().after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(
                        conn,
                        sqlx::AssertSqlSafe(format!(
                            "SET idle_in_transaction_session_timeout = {idle}"
                        )),
                    )
                    .await?;
                    Ok(())
                })
            })
        })
        .await?;
        Self::from_pool_bounded(pool, timeouts.statement).await
    }
}

impl Dialect for Postgres {
    const KIND: DbKind = DbKind::Postgres;
    const TYPES: ColumnTypes = ColumnTypes {
        id_key: "BIGINT NOT NULL PRIMARY KEY",
        big: "BIGINT",
        time: "TIMESTAMP",
        exit_code: "VARCHAR(2500)",
        long_text: "TEXT",
        table_options: "",
    };
    const SEQUENCE_DDL: &'static [&'static str] = SEQUENCE_DDL;
    const MORE_DDL: &'static [&'static str] = MORE_DDL;
    const SEQUENCE_COLUMNS: &'static [&'static str] = &[];
    const LOCK_ROW: &'static str = " FOR UPDATE";
    // The table has no key; rows inserted together and never updated keep their
    // physical order.
    const PARAMETER_ORDER: &'static str = " ORDER BY ctid";

    fn sum_of_millis(from: &str, to: &str) -> String {
        format!("CAST(SUM(ROUND(EXTRACT(EPOCH FROM ({to} - {from})) * 1000)) AS BIGINT)")
    }

    /// Numbers the placeholders: `?` is `$1`, `$2`, … in order.
    fn sql(text: Cow<'static, str>) -> Cow<'static, str> {
        if !text.contains('?') {
            return text;
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    async fn begin(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        pool.begin().await
    }

    async fn begin_schema(pool: &Pool<Self>) -> sqlx::Result<Transaction<'static, Self>> {
        let mut tx = pool.begin().await?;
        // Concurrent `CREATE … IF NOT EXISTS` of one name can still fail on a catalog
        // unique index; the lock makes the check-and-create one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn next_id(conn: &mut PgConnection, sequence: &'static str) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT nextval($1::regclass)")
            .bind(sequence)
            .fetch_one(conn)
            .await
    }

    fn advance_sequence(sequence: &str, to: i64) -> String {
        format!("SELECT setval('{}', {to})", sequence.to_lowercase())
    }

    /// Unquoted names are folded to lower case: Spring's tables are `batch_job_instance`
    /// and so on in the catalog.
    async fn columns(
        conn: &mut PgConnection,
        table: &'static str,
    ) -> sqlx::Result<Vec<CatalogColumn>> {
        let rows: Vec<(String, String, String, Option<i64>, bool)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text, character_maximum_length::int8, \
             (column_default IS NOT NULL OR is_identity = 'YES') FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = lower($1) ORDER BY ordinal_position",
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
                    has_default,
                },
            )
            .collect())
    }

    run_queries!(Postgres);
}
