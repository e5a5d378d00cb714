//! One job repository for the three SQL databases.
//!
//! [`SqlJobRepository`] holds every rule of the repository once: the launch
//! transaction, optimistic locking through VERSION, the 2500 rule, the schema check.
//! What differs between SQLite, PostgreSQL and MySQL/MariaDB is a short list, the items
//! of [`Dialect`]: the DDL, how an id is taken from a Spring sequence, how a launch
//! locks the instance, and how a statement's placeholders are spelled. The SQL below
//! is written once with `?` placeholders, each bound once and in order, which SQLite
//! and MySQL read as they are and [`Dialect::sql`] numbers for PostgreSQL.
//!
//! Launches of one instance are serialized by the database: SQLite takes the write
//! lock when the launch transaction begins (`BEGIN IMMEDIATE`); the servers lock the
//! instance's row (`SELECT … FOR UPDATE`, in READ COMMITTED, so that what the launch
//! reads after the lock is what the previous launch committed). A new instance is the
//! one case a row lock cannot cover, as there is no row yet: when two processes insert
//! it at once, the unique constraint JOB_INST_UN refuses the second, which then starts
//! its launch again, finds the row, waits for its lock and sees the first launch's
//! execution running.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::query::Query;
use sqlx::{Database, Decode, Encode, Pool, Transaction, Type};

use super::{
    BoxFuture, ChunkTx, DbKind, DbPool, ExecutionSummary, JobRepository, LaunchError,
    RepositoryError, check_restartable, died_message, exit_message, owner,
};
use crate::context::ExecutionContext;
use crate::execution::{
    BatchStatus, ExitStatus, JobExecution, JobInstance, StepCounts, StepExecution, now,
};
use crate::params::JobParameters;

/// A Rust type that binds to and reads from columns of `DB`.
pub trait Column<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

impl<DB: Database, T> Column<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "sqlite")]
    impl Sealed for sqlx::Sqlite {}
    #[cfg(feature = "postgres")]
    impl Sealed for sqlx::Postgres {}
    #[cfg(feature = "mysql")]
    impl Sealed for sqlx::MySql {}
}

/// What differs between the databases the job repository runs on. Implemented for
/// `sqlx::Sqlite`, `sqlx::Postgres` and `sqlx::MySql` (which is also MariaDB), and
/// sealed: its items are the repository's business.
pub trait Dialect: Database + sealed::Sealed {
    #[doc(hidden)]
    const KIND: DbKind;
    /// How this dialect spells the column types of Spring Batch's tables.
    #[doc(hidden)]
    const TYPES: ColumnTypes;
    /// What creates one of Spring's three sequences, named `{seq}`. Each statement is
    /// harmless when its object exists.
    #[doc(hidden)]
    const SEQUENCE_DDL: &'static [&'static str];
    /// The statements that follow: indexes.
    #[doc(hidden)]
    const MORE_DDL: &'static [&'static str];
    /// The columns of Spring's `*_SEQ` tables, where sequences are tables (none on
    /// PostgreSQL, which has sequences).
    #[doc(hidden)]
    const SEQUENCE_COLUMNS: &'static [&'static str];
    /// Ends the SELECT that finds the instance at a launch: the row lock that
    /// serializes launches of one instance.
    #[doc(hidden)]
    const LOCK_ROW: &'static str;
    /// Orders an execution's parameters as they were stored (the table has no key).
    #[doc(hidden)]
    const PARAMETER_ORDER: &'static str;

    /// A statement written with `?` placeholders, in this dialect.
    #[doc(hidden)]
    fn sql(text: Cow<'static, str>) -> Cow<'static, str> {
        text
    }

    /// Begins a transaction that writes.
    #[doc(hidden)]
    fn begin(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send;

    /// Begins the transaction that checks and creates the schema, excluding other
    /// processes doing the same.
    #[doc(hidden)]
    fn begin_schema(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send;

    /// Takes the next value of one of Spring's sequences.
    #[doc(hidden)]
    fn next_id(
        conn: &mut Self::Connection,
        sequence: &'static str,
    ) -> impl Future<Output = sqlx::Result<i64>> + Send;

    /// The columns of a table, in order; empty when there is no such table.
    #[doc(hidden)]
    fn columns(
        conn: &mut Self::Connection,
        table: &'static str,
    ) -> impl Future<Output = sqlx::Result<Vec<String>>> + Send;

    #[doc(hidden)]
    fn execute(
        conn: &mut Self::Connection,
        query: Query<'_, Self, Self::Arguments>,
    ) -> impl Future<Output = sqlx::Result<u64>> + Send;

    #[doc(hidden)]
    fn fetch_all(
        conn: &mut Self::Connection,
        query: Query<'_, Self, Self::Arguments>,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send;

    #[doc(hidden)]
    fn fetch_optional(
        conn: &mut Self::Connection,
        query: Query<'_, Self, Self::Arguments>,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send;

    /// Column `index` of a row (by position: PostgreSQL folds unquoted names to lower
    /// case, the others do not).
    #[doc(hidden)]
    fn get<T: for<'r> Decode<'r, Self> + Type<Self>>(
        row: &Self::Row,
        index: usize,
    ) -> sqlx::Result<T>;

    #[doc(hidden)]
    fn wrap_tx(tx: Transaction<'static, Self>) -> ChunkTx;

    /// The transaction inside a chunk's [`ChunkTx`]: `Ok(None)` for a chunk with no
    /// transaction, `Err` for a transaction on another database.
    #[doc(hidden)]
    #[allow(clippy::result_large_err)]
    fn unwrap_tx(tx: ChunkTx) -> Result<Option<Transaction<'static, Self>>, ChunkTx>;

    #[doc(hidden)]
    fn wrap_pool(pool: Pool<Self>) -> DbPool;
}

/// Implements the items of [`Dialect`] that are the same code for each database, only
/// with other types: running a query, reading a column, and moving the transaction in
/// and out of [`ChunkTx`] (whose variant for this database is `$variant`).
macro_rules! run_queries {
    ($variant:ident) => {
        fn wrap_tx(tx: sqlx::Transaction<'static, Self>) -> $crate::repository::ChunkTx {
            $crate::repository::ChunkTx::from_inner($crate::repository::TxInner::$variant(tx))
        }

        fn unwrap_tx(
            tx: $crate::repository::ChunkTx,
        ) -> Result<Option<sqlx::Transaction<'static, Self>>, $crate::repository::ChunkTx> {
            match tx.into_inner() {
                $crate::repository::TxInner::$variant(tx) => Ok(Some(tx)),
                $crate::repository::TxInner::None => Ok(None),
                // Reachable when more than one database is built.
                #[allow(unreachable_patterns)]
                other => Err($crate::repository::ChunkTx::from_inner(other)),
            }
        }

        async fn execute(
            conn: &mut Self::Connection,
            query: sqlx::query::Query<'_, Self, Self::Arguments>,
        ) -> sqlx::Result<u64> {
            Ok(query.execute(conn).await?.rows_affected())
        }

        async fn fetch_all(
            conn: &mut Self::Connection,
            query: sqlx::query::Query<'_, Self, Self::Arguments>,
        ) -> sqlx::Result<Vec<Self::Row>> {
            query.fetch_all(conn).await
        }

        async fn fetch_optional(
            conn: &mut Self::Connection,
            query: sqlx::query::Query<'_, Self, Self::Arguments>,
        ) -> sqlx::Result<Option<Self::Row>> {
            query.fetch_optional(conn).await
        }

        fn get<T: for<'r> sqlx::Decode<'r, Self> + sqlx::Type<Self>>(
            row: &Self::Row,
            index: usize,
        ) -> sqlx::Result<T> {
            sqlx::Row::try_get(row, index)
        }

        fn wrap_pool(pool: sqlx::Pool<Self>) -> $crate::repository::DbPool {
            pool.into()
        }
    };
}
pub(crate) use run_queries;

/// How a dialect spells the column types of Spring Batch's tables (the differences
/// between Spring's `schema-*.sql` files).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ColumnTypes {
    /// An id column that is its table's primary key and takes the sequence's values.
    pub id_key: &'static str,
    /// Other ids, VERSION and the counters.
    pub big: &'static str,
    pub time: &'static str,
    /// EXIT_CODE (VARCHAR(100) on SQLite, VARCHAR(2500) elsewhere).
    pub exit_code: &'static str,
    /// SERIALIZED_CONTEXT.
    pub long_text: &'static str,
    /// What ends a CREATE TABLE (the storage engine on MySQL).
    pub table_options: &'static str,
}

/// Spring Batch 5's six tables, in the words of [`ColumnTypes`]: `{id_key}`, `{big}`,
/// `{time}`, `{exit_code}`, `{long_text}`, `{table_options}`.
const TABLE_DDL: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_INSTANCE (
        JOB_INSTANCE_ID {id_key},
        VERSION {big},
        JOB_NAME VARCHAR(100) NOT NULL,
        JOB_KEY VARCHAR(32) NOT NULL,
        constraint JOB_INST_UN unique (JOB_NAME, JOB_KEY)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION (
        JOB_EXECUTION_ID {id_key},
        VERSION {big},
        JOB_INSTANCE_ID {big} NOT NULL,
        CREATE_TIME {time} NOT NULL,
        START_TIME {time} DEFAULT NULL,
        END_TIME {time} DEFAULT NULL,
        STATUS VARCHAR(10),
        EXIT_CODE {exit_code},
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED {time},
        constraint JOB_INST_EXEC_FK foreign key (JOB_INSTANCE_ID)
        references BATCH_JOB_INSTANCE(JOB_INSTANCE_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_PARAMS (
        JOB_EXECUTION_ID {big} NOT NULL,
        PARAMETER_NAME VARCHAR(100) NOT NULL,
        PARAMETER_TYPE VARCHAR(100) NOT NULL,
        PARAMETER_VALUE VARCHAR(2500),
        IDENTIFYING CHAR(1) NOT NULL,
        constraint JOB_EXEC_PARAMS_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION (
        STEP_EXECUTION_ID {id_key},
        VERSION {big} NOT NULL,
        STEP_NAME VARCHAR(100) NOT NULL,
        JOB_EXECUTION_ID {big} NOT NULL,
        CREATE_TIME {time} NOT NULL,
        START_TIME {time} DEFAULT NULL,
        END_TIME {time} DEFAULT NULL,
        STATUS VARCHAR(10),
        COMMIT_COUNT {big},
        READ_COUNT {big},
        FILTER_COUNT {big},
        WRITE_COUNT {big},
        READ_SKIP_COUNT {big},
        WRITE_SKIP_COUNT {big},
        PROCESS_SKIP_COUNT {big},
        ROLLBACK_COUNT {big},
        EXIT_CODE {exit_code},
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED {time},
        constraint JOB_EXEC_STEP_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION_CONTEXT (
        STEP_EXECUTION_ID {big} NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT {long_text},
        constraint STEP_EXEC_CTX_FK foreign key (STEP_EXECUTION_ID)
        references BATCH_STEP_EXECUTION(STEP_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_CONTEXT (
        JOB_EXECUTION_ID {big} NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT {long_text},
        constraint JOB_EXEC_CTX_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
];

/// Not a Spring Batch table: the durable per-item progress of steps that call outside
/// systems (see `crate::calls`). Java tooling ignores it.
const PROGRESS_DDL: &str = "CREATE TABLE IF NOT EXISTS BATCH_STEP_ITEM_PROGRESS (
        JOB_INSTANCE_ID {big} NOT NULL,
        STEP_NAME VARCHAR(100) NOT NULL,
        ITEM_KEY VARCHAR(250) NOT NULL,
        CREATE_TIME {time} NOT NULL,
        constraint STEP_ITEM_PROGRESS_PK primary key (JOB_INSTANCE_ID, STEP_NAME, ITEM_KEY)
    ){table_options}";

/// The six tables in `types`' dialect.
fn table_ddl(types: &ColumnTypes) -> impl Iterator<Item = String> + '_ {
    TABLE_DDL.iter().chain([&PROGRESS_DDL]).map(|ddl| {
        ddl.replace("{id_key}", types.id_key)
            .replace("{big}", types.big)
            .replace("{time}", types.time)
            .replace("{exit_code}", types.exit_code)
            .replace("{long_text}", types.long_text)
            .replace("{table_options}", types.table_options)
    })
}

/// The tables every dialect has, with the columns each must have (Spring Batch 5).
const TABLES: &[(&str, &[&str])] = &[
    (
        "BATCH_JOB_INSTANCE",
        &["JOB_INSTANCE_ID", "VERSION", "JOB_NAME", "JOB_KEY"],
    ),
    (
        "BATCH_JOB_EXECUTION",
        &[
            "JOB_EXECUTION_ID",
            "VERSION",
            "JOB_INSTANCE_ID",
            "CREATE_TIME",
            "START_TIME",
            "END_TIME",
            "STATUS",
            "EXIT_CODE",
            "EXIT_MESSAGE",
            "LAST_UPDATED",
        ],
    ),
    (
        "BATCH_JOB_EXECUTION_PARAMS",
        &[
            "JOB_EXECUTION_ID",
            "PARAMETER_NAME",
            "PARAMETER_TYPE",
            "PARAMETER_VALUE",
            "IDENTIFYING",
        ],
    ),
    (
        "BATCH_STEP_EXECUTION",
        &[
            "STEP_EXECUTION_ID",
            "VERSION",
            "STEP_NAME",
            "JOB_EXECUTION_ID",
            "CREATE_TIME",
            "START_TIME",
            "END_TIME",
            "STATUS",
            "COMMIT_COUNT",
            "READ_COUNT",
            "FILTER_COUNT",
            "WRITE_COUNT",
            "READ_SKIP_COUNT",
            "WRITE_SKIP_COUNT",
            "PROCESS_SKIP_COUNT",
            "ROLLBACK_COUNT",
            "EXIT_CODE",
            "EXIT_MESSAGE",
            "LAST_UPDATED",
        ],
    ),
    (
        "BATCH_STEP_EXECUTION_CONTEXT",
        &["STEP_EXECUTION_ID", "SHORT_CONTEXT", "SERIALIZED_CONTEXT"],
    ),
    (
        "BATCH_JOB_EXECUTION_CONTEXT",
        &["JOB_EXECUTION_ID", "SHORT_CONTEXT", "SERIALIZED_CONTEXT"],
    ),
];

const SEQUENCES: [&str; 3] = [
    "BATCH_STEP_EXECUTION_SEQ",
    "BATCH_JOB_EXECUTION_SEQ",
    "BATCH_JOB_SEQ",
];

/// The job repository on a SQL database; see the module documentation. Use it as
/// [`SqliteJobRepository`](super::SqliteJobRepository),
/// [`PostgresJobRepository`](super::PostgresJobRepository) or
/// [`MySqlJobRepository`](super::MySqlJobRepository).
pub struct SqlJobRepository<DB: Dialect> {
    pool: Pool<DB>,
    lease: Duration,
}

impl<DB: Dialect> Clone for SqlJobRepository<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            lease: self.lease,
        }
    }
}

impl<DB: Dialect> SqlJobRepository<DB> {
    /// How long a running execution on another host may go without a heartbeat before
    /// a launch presumes it dead.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The connection pool of the repository's database, for steps whose data lives in
    /// the same database.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A pool on the server at `url`. One connection is made first, so that a server that
/// refuses or a wrong password is reported as it is, not as the pool's timeout after
/// its retries.
pub(super) async fn connect_server<DB: Dialect>(
    url: &str,
    pool: sqlx::pool::PoolOptions<DB>,
) -> Result<Pool<DB>, RepositoryError> {
    use sqlx::{ConnectOptions, Connection};
    let unreachable = |source| RepositoryError::Unreachable {
        url: url.to_owned(),
        source,
    };
    let options: <DB::Connection as Connection>::Options = url.parse().map_err(unreachable)?;
    let probe = options.connect().await.map_err(unreachable)?;
    probe.close().await.map_err(unreachable)?;
    pool.max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(unreachable)
}

/// Whether a failed launch met another launch and should simply be tried again: the
/// unique constraint on a new instance, a deadlock, a serialization failure.
fn is_contention(error: &LaunchError) -> bool {
    let LaunchError::Repository(RepositoryError::Database { source, .. }) = error else {
        return false;
    };
    source.as_database_error().is_some_and(|e| {
        e.is_unique_violation() || matches!(e.code().as_deref(), Some("40001" | "40P01"))
    })
}

fn status_of(text: Option<String>, what: &str) -> Result<BatchStatus, RepositoryError> {
    let text = text.unwrap_or_else(|| "UNKNOWN".into());
    text.parse().map_err(
        |e: crate::execution::UnknownStatus| RepositoryError::Corrupt {
            what: what.to_owned(),
            problem: e.to_string(),
        },
    )
}

fn corrupt(what: &str) -> impl FnOnce(sqlx::Error) -> RepositoryError + '_ {
    move |e| RepositoryError::Corrupt {
        what: what.to_owned(),
        problem: e.to_string(),
    }
}

/// A statement written with `?` placeholders, ready to bind, in `DB`'s dialect.
fn query<DB: Dialect>(sql: impl Into<Cow<'static, str>>) -> Query<'static, DB, DB::Arguments> {
    sqlx::query(sqlx::AssertSqlSafe(DB::sql(sql.into())))
}

const STEP_COLUMNS: &str = "S.STEP_EXECUTION_ID, S.VERSION, S.STEP_NAME, S.JOB_EXECUTION_ID, S.CREATE_TIME, \
    S.START_TIME, S.END_TIME, S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, S.FILTER_COUNT, S.WRITE_COUNT, \
    S.READ_SKIP_COUNT, S.WRITE_SKIP_COUNT, S.PROCESS_SKIP_COUNT, S.ROLLBACK_COUNT, S.EXIT_CODE, \
    S.EXIT_MESSAGE, S.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT";

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    /// A repository on an open pool: checks the batch tables, creating them when
    /// missing, and refuses a database whose batch tables lack columns.
    ///
    /// On MySQL the pool's sessions must run in READ COMMITTED, as
    /// [`MySqlJobRepository::open`](super::MySqlJobRepository) sets them up (see
    /// `repository::mysql`): in InnoDB's default REPEATABLE READ a launch could read
    /// an instance's executions from a snapshot older than its row lock.
    pub async fn from_pool(pool: Pool<DB>) -> Result<Self, RepositoryError> {
        let repo = Self {
            pool,
            lease: owner::DEFAULT_LEASE,
        };
        repo.ensure_schema().await?;
        Ok(repo)
    }

    async fn ensure_schema(&self) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_schema(&self.pool)
            .await
            .map_err(RepositoryError::db(
                "opening a transaction to check the schema",
            ))?;
        // Spring's `*_SEQ` tables, where the dialect has them.
        let mut checked: Vec<(&str, &[&str])> = TABLES.to_vec();
        if !DB::SEQUENCE_COLUMNS.is_empty() {
            checked.extend(SEQUENCES.iter().map(|s| (*s, DB::SEQUENCE_COLUMNS)));
        }
        for (table, expected) in checked {
            let found = DB::columns(&mut tx, table)
                .await
                .map_err(RepositoryError::db(format!(
                    "reading the columns of {table}"
                )))?;
            if found.is_empty() {
                continue;
            }
            let missing: Vec<&str> = expected
                .iter()
                .copied()
                .filter(|c| !found.iter().any(|f| f.eq_ignore_ascii_case(c)))
                .collect();
            if !missing.is_empty() {
                return Err(RepositoryError::SchemaMismatch {
                    table: table.to_owned(),
                    problem: format!(
                        "missing column(s) {} (found {}); the database was made by something else or by Spring Batch 4, which needs its 5.0 migration",
                        missing.join(", "),
                        found.join(", ")
                    ),
                });
            }
        }
        let mut statements: Vec<String> = table_ddl(&DB::TYPES).collect();
        for seq in SEQUENCES {
            statements.extend(DB::SEQUENCE_DDL.iter().map(|ddl| ddl.replace("{seq}", seq)));
        }
        statements.extend(DB::MORE_DDL.iter().map(|ddl| ddl.to_string()));
        for ddl in statements {
            DB::execute(&mut tx, sqlx::query(sqlx::AssertSqlSafe(ddl)))
                .await
                .map_err(RepositoryError::db("creating the Spring Batch tables"))?;
        }
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the schema"))
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<DB>, RepositoryError> {
        self.pool
            .acquire()
            .await
            .map_err(RepositoryError::db("connecting"))
    }

    async fn next_id(
        conn: &mut DB::Connection,
        sequence: &'static str,
    ) -> Result<i64, RepositoryError> {
        DB::next_id(conn, sequence)
            .await
            .map_err(RepositoryError::db(format!("taking an id from {sequence}")))
    }

    /// Marks a dead run and its running steps FAILED.
    async fn mark_dead(
        conn: &mut DB::Connection,
        execution_id: i64,
        message: &str,
    ) -> Result<(), RepositoryError> {
        let end = now();
        let message = exit_message(message);
        let job = query::<DB>(
            "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?, \
             END_TIME = ?, LAST_UPDATED = ?, VERSION = VERSION + 1 WHERE JOB_EXECUTION_ID = ?",
        );
        let steps = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?, \
             END_TIME = ?, LAST_UPDATED = ?, VERSION = VERSION + 1 \
             WHERE JOB_EXECUTION_ID = ? AND STATUS IN ('STARTING', 'STARTED', 'STOPPING')",
        );
        for (what, q) in [("job execution", job), ("steps of job execution", steps)] {
            let q = q
                .bind(message.clone())
                .bind(end)
                .bind(end)
                .bind(execution_id);
            DB::execute(conn, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "marking the dead {what} {execution_id} FAILED"
                )))?;
        }
        Ok(())
    }

    fn step_from_row(row: &DB::Row) -> Result<StepExecution, RepositoryError> {
        let id: i64 = DB::get(row, 0).map_err(corrupt("step execution"))?;
        let what = format!("step execution {id}");
        let w = what.as_str();
        let get_i64 = |i| DB::get::<Option<i64>>(row, i).map_err(corrupt(w));
        let count = |i| Ok::<_, RepositoryError>(get_i64(i)?.unwrap_or(0).max(0) as u64);
        let text = |i| DB::get::<Option<String>>(row, i).map_err(corrupt(w));
        let time = |i| DB::get::<Option<NaiveDateTime>>(row, i).map_err(corrupt(w));
        let context = match text(19)? {
            Some(short) => ExecutionContext::from_columns(w, &short, text(20)?.as_deref())?,
            None => ExecutionContext::new(),
        };
        Ok(StepExecution {
            id,
            version: get_i64(1)?.unwrap_or(0),
            step_name: text(2)?.unwrap_or_default(),
            job_execution_id: get_i64(3)?.unwrap_or(0),
            create_time: DB::get(row, 4).map_err(corrupt(w))?,
            start_time: time(5)?,
            end_time: time(6)?,
            status: status_of(text(7)?, w)?,
            counts: StepCounts {
                commit: count(8)?,
                read: count(9)?,
                filter: count(10)?,
                write: count(11)?,
                read_skip: count(12)?,
                write_skip: count(13)?,
                process_skip: count(14)?,
                rollback: count(15)?,
            },
            exit_status: ExitStatus {
                code: text(16)?.unwrap_or_default(),
                description: text(17)?.unwrap_or_default(),
            },
            last_updated: time(18)?,
            context,
        })
    }

    /// Binds what a step execution's row says of its state, in this order: START_TIME,
    /// END_TIME, STATUS, the eight counters (COMMIT, READ, FILTER, WRITE, READ_SKIP,
    /// WRITE_SKIP, PROCESS_SKIP, ROLLBACK), EXIT_CODE, EXIT_MESSAGE.
    fn bind_step_state<'q>(
        q: Query<'q, DB, DB::Arguments>,
        step: &StepExecution,
    ) -> Query<'q, DB, DB::Arguments> {
        let c = &step.counts;
        let counts = [
            c.commit,
            c.read,
            c.filter,
            c.write,
            c.read_skip,
            c.write_skip,
            c.process_skip,
            c.rollback,
        ];
        let q = q
            .bind(step.start_time)
            .bind(step.end_time)
            .bind(step.status.as_str().to_owned());
        counts
            .into_iter()
            .fold(q, |q, n| q.bind(n as i64))
            .bind(step.exit_status.code.clone())
            .bind(exit_message(&step.exit_status.description))
    }

    async fn update_step_row(
        conn: &mut DB::Connection,
        step: &mut StepExecution,
    ) -> Result<(), RepositoryError> {
        let last_updated = now();
        let q = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?, END_TIME = ?, STATUS = ?, \
             COMMIT_COUNT = ?, READ_COUNT = ?, FILTER_COUNT = ?, WRITE_COUNT = ?, \
             READ_SKIP_COUNT = ?, WRITE_SKIP_COUNT = ?, PROCESS_SKIP_COUNT = ?, ROLLBACK_COUNT = ?, \
             EXIT_CODE = ?, EXIT_MESSAGE = ?, VERSION = ?, LAST_UPDATED = ? \
             WHERE STEP_EXECUTION_ID = ? AND VERSION = ?",
        );
        let q = Self::bind_step_state(q, step)
            .bind(step.version + 1)
            .bind(last_updated)
            .bind(step.id)
            .bind(step.version);
        let done = DB::execute(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "updating step execution {}",
                step.id
            )))?;
        if done == 0 {
            return Err(RepositoryError::OptimisticLock {
                what: format!("step execution {} ({})", step.id, step.step_name),
                expected: step.version,
            });
        }
        step.version += 1;
        step.last_updated = Some(last_updated);
        Ok(())
    }

    async fn write_context(
        conn: &mut DB::Connection,
        table_is_step: bool,
        id: i64,
        ctx: &ExecutionContext,
        insert: bool,
    ) -> Result<(), RepositoryError> {
        let (short, long) = ctx.to_columns();
        let sql = match (table_is_step, insert) {
            (true, true) => {
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, STEP_EXECUTION_ID) VALUES (?, ?, ?)"
            }
            (true, false) => {
                "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = ? WHERE STEP_EXECUTION_ID = ?"
            }
            (false, true) => {
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, JOB_EXECUTION_ID) VALUES (?, ?, ?)"
            }
            (false, false) => {
                "UPDATE BATCH_JOB_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = ? WHERE JOB_EXECUTION_ID = ?"
            }
        };
        let owner = if table_is_step { "step" } else { "job" };
        DB::execute(conn, query::<DB>(sql).bind(short).bind(long).bind(id))
            .await
            .map_err(RepositoryError::db(format!(
                "saving the context of {owner} execution {id}"
            )))?;
        Ok(())
    }

    async fn read_context(
        conn: &mut DB::Connection,
        execution_id: i64,
    ) -> Result<ExecutionContext, RepositoryError> {
        let q = query::<DB>(
            "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?",
        )
        .bind(execution_id);
        let row = DB::fetch_optional(conn, q)
            .await
            .map_err(RepositoryError::db("reading the job context"))?;
        let what = format!("job execution {execution_id}");
        Ok(match row {
            Some(r) => ExecutionContext::from_columns(
                &what,
                &DB::get::<String>(&r, 0).map_err(corrupt(&what))?,
                DB::get::<Option<String>>(&r, 1)
                    .map_err(corrupt(&what))?
                    .as_deref(),
            )?,
            None => ExecutionContext::new(),
        })
    }

    async fn read_params(
        conn: &mut DB::Connection,
        execution_id: i64,
    ) -> Result<JobParameters, RepositoryError> {
        let sql = format!(
            "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING \
             FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?{}",
            DB::PARAMETER_ORDER
        );
        let q = query::<DB>(sql).bind(execution_id);
        let rows = DB::fetch_all(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the parameters of job execution {execution_id}"
            )))?;
        let what = format!("parameters of job execution {execution_id}");
        let mut params = JobParameters::new();
        for row in rows {
            let text = |i| DB::get::<Option<String>>(&row, i).map_err(corrupt(&what));
            let name = text(0)?.unwrap_or_default();
            let ty = text(1)?.unwrap_or_default();
            let identifying = text(3)?.as_deref() == Some("Y");
            let (name, p) =
                JobParameters::from_stored(&name, &ty, text(2)?.as_deref(), identifying)?;
            params.insert(name, p);
        }
        Ok(params)
    }

    /// One attempt at a launch, in one transaction; see the module documentation.
    async fn launch(
        &self,
        job_name: &str,
        parameters: &JobParameters,
    ) -> Result<JobExecution, LaunchError> {
        let key = parameters.job_key();
        let mut tx = DB::begin(&self.pool)
            .await
            .map_err(RepositoryError::db("opening the launch transaction"))?;
        let find = format!(
            "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ? AND JOB_KEY = ?{}",
            DB::LOCK_ROW
        );
        let found = DB::fetch_optional(
            &mut tx,
            query::<DB>(find)
                .bind(job_name.to_owned())
                .bind(key.clone()),
        )
        .await
        .map_err(RepositoryError::db("looking up the job instance"))?;
        let (instance, context) = match found {
            Some(row) => {
                let instance = JobInstance {
                    id: DB::get(&row, 0).map_err(corrupt("job instance"))?,
                    version: DB::get::<Option<i64>>(&row, 1)
                        .map_err(corrupt("job instance"))?
                        .unwrap_or(0),
                    job_name: job_name.to_owned(),
                    job_key: key.clone(),
                };
                let q = query::<DB>(
                    "SELECT JOB_EXECUTION_ID, STATUS, EXIT_MESSAGE, LAST_UPDATED FROM BATCH_JOB_EXECUTION \
                     WHERE JOB_INSTANCE_ID = ? ORDER BY JOB_EXECUTION_ID DESC",
                )
                .bind(instance.id);
                let rows = DB::fetch_all(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db(
                        "reading the executions of the instance",
                    ))?;
                let mut summaries = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = DB::get(row, 0).map_err(corrupt("job execution"))?;
                    let what = format!("job execution {id}");
                    summaries.push(ExecutionSummary {
                        id,
                        status: status_of(DB::get(row, 1).map_err(corrupt(&what))?, &what)?,
                        exit_message: DB::get::<Option<String>>(row, 2)
                            .map_err(corrupt(&what))?
                            .unwrap_or_default(),
                        last_updated: DB::get(row, 3).map_err(corrupt(&what))?,
                    });
                }
                let dead = check_restartable(&instance, parameters, &summaries, now(), self.lease)?;
                for (id, reason) in dead {
                    Self::mark_dead(&mut tx, id, &died_message(&reason)).await?;
                }
                let context = match summaries.first() {
                    Some(last) => Self::read_context(&mut tx, last.id).await?,
                    None => ExecutionContext::new(),
                };
                (instance, context)
            }
            None => {
                let id = Self::next_id(&mut tx, "BATCH_JOB_SEQ").await?;
                let q = query::<DB>(
                    "INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, JOB_NAME, JOB_KEY, VERSION) VALUES (?, ?, ?, 0)",
                )
                .bind(id)
                .bind(job_name.to_owned())
                .bind(key.clone());
                // Another launch may have inserted it since the SELECT: the unique
                // constraint refuses this one, and the caller tries again.
                DB::execute(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db("creating the job instance"))?;
                let instance = JobInstance {
                    id,
                    version: 0,
                    job_name: job_name.to_owned(),
                    job_key: key,
                };
                (instance, ExecutionContext::new())
            }
        };
        let id = Self::next_id(&mut tx, "BATCH_JOB_EXECUTION_SEQ").await?;
        let created = now();
        // The owner is named from the first commit on, so that a process killed before
        // it writes anything else still leaves an execution a launch can judge.
        let exit = ExitStatus::unknown().with_description(owner::current_owner());
        let q = query::<DB>(
            "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, JOB_INSTANCE_ID, START_TIME, END_TIME, \
             STATUS, EXIT_CODE, EXIT_MESSAGE, VERSION, CREATE_TIME, LAST_UPDATED) \
             VALUES (?, ?, NULL, NULL, ?, ?, ?, 0, ?, ?)",
        )
        .bind(id)
        .bind(instance.id)
        .bind(BatchStatus::Starting.as_str().to_owned())
        .bind(exit.code.clone())
        .bind(exit_message(&exit.description))
        .bind(created)
        .bind(created);
        DB::execute(&mut tx, q)
            .await
            .map_err(RepositoryError::db("creating the job execution"))?;
        for (name, p) in parameters.iter() {
            let q = query::<DB>(
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, \
                 PARAMETER_VALUE, IDENTIFYING) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(name.to_owned())
            .bind(p.value.param_type().java_class().to_owned())
            .bind(p.value.to_iso_text())
            .bind(if p.identifying { "Y" } else { "N" }.to_owned());
            DB::execute(&mut tx, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "saving job parameter `{name}`"
                )))?;
        }
        Self::write_context(&mut tx, false, id, &context, true).await?;
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the launch"))?;
        Ok(JobExecution {
            id,
            version: 0,
            instance,
            parameters: parameters.clone(),
            create_time: created,
            start_time: None,
            end_time: None,
            status: BatchStatus::Starting,
            exit_status: exit,
            last_updated: Some(created),
            context,
            step_executions: Vec::new(),
        })
    }

    async fn read_job_executions(
        &self,
        instance: &JobInstance,
    ) -> Result<Vec<JobExecution>, RepositoryError> {
        let mut conn = self.connection().await?;
        let q = query::<DB>(
            "SELECT E.JOB_EXECUTION_ID, E.VERSION, E.CREATE_TIME, E.START_TIME, E.END_TIME, E.STATUS, \
             E.EXIT_CODE, E.EXIT_MESSAGE, E.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT \
             FROM BATCH_JOB_EXECUTION E \
             LEFT JOIN BATCH_JOB_EXECUTION_CONTEXT C ON C.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID \
             WHERE E.JOB_INSTANCE_ID = ? ORDER BY E.JOB_EXECUTION_ID DESC",
        )
        .bind(instance.id);
        let rows = DB::fetch_all(&mut conn, q)
            .await
            .map_err(RepositoryError::db("reading job executions"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = DB::get(&row, 0).map_err(corrupt("job execution"))?;
            let what = format!("job execution {id}");
            let text = |i| DB::get::<Option<String>>(&row, i).map_err(corrupt(&what));
            let time = |i| DB::get::<Option<NaiveDateTime>>(&row, i).map_err(corrupt(&what));
            let context = match text(9)? {
                Some(s) => ExecutionContext::from_columns(&what, &s, text(10)?.as_deref())?,
                None => ExecutionContext::new(),
            };
            let parameters = Self::read_params(&mut conn, id).await?;
            let sql = format!(
                "SELECT {STEP_COLUMNS} FROM BATCH_STEP_EXECUTION S \
                 LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
                 WHERE S.JOB_EXECUTION_ID = ? ORDER BY S.STEP_EXECUTION_ID"
            );
            let q = query::<DB>(sql).bind(id);
            let steps = DB::fetch_all(&mut conn, q)
                .await
                .map_err(RepositoryError::db("reading step executions"))?
                .iter()
                .map(Self::step_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            out.push(JobExecution {
                id,
                version: DB::get::<Option<i64>>(&row, 1)
                    .map_err(corrupt(&what))?
                    .unwrap_or(0),
                instance: instance.clone(),
                parameters,
                create_time: DB::get(&row, 2).map_err(corrupt(&what))?,
                start_time: time(3)?,
                end_time: time(4)?,
                status: status_of(text(5)?, &what)?,
                exit_status: ExitStatus {
                    code: text(6)?.unwrap_or_default(),
                    description: text(7)?.unwrap_or_default(),
                },
                last_updated: time(8)?,
                context,
                step_executions: steps,
            });
        }
        Ok(out)
    }
}

impl<DB: Dialect> JobRepository for SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    fn create_job_execution<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<JobExecution, LaunchError>> {
        Box::pin(async move {
            let mut attempt = 0u32;
            loop {
                match self.launch(job_name, parameters).await {
                    Err(e) if attempt < 20 && is_contention(&e) => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "a concurrent launch got in the way; trying again");
                        // A little jitter keeps retrying launches from meeting again.
                        let jitter = (std::process::id() as u64
                            + now().and_utc().timestamp_subsec_micros() as u64)
                            % 7;
                        tokio::time::sleep(Duration::from_millis(2 * attempt as u64 + jitter))
                            .await;
                    }
                    outcome => return outcome,
                }
            }
        })
    }

    fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let last_updated = now();
            let q = query::<DB>(
                "UPDATE BATCH_JOB_EXECUTION SET START_TIME = ?, END_TIME = ?, STATUS = ?, EXIT_CODE = ?, \
                 EXIT_MESSAGE = ?, VERSION = ?, CREATE_TIME = ?, LAST_UPDATED = ? \
                 WHERE JOB_EXECUTION_ID = ? AND VERSION = ?",
            )
            .bind(execution.start_time)
            .bind(execution.end_time)
            .bind(execution.status.as_str().to_owned())
            .bind(execution.exit_status.code.clone())
            .bind(exit_message(&execution.exit_status.description))
            .bind(execution.version + 1)
            .bind(execution.create_time)
            .bind(last_updated)
            .bind(execution.id)
            .bind(execution.version);
            let done = DB::execute(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "updating job execution {}",
                    execution.id
                )))?;
            if done == 0 {
                return Err(RepositoryError::OptimisticLock {
                    what: format!("job execution {}", execution.id),
                    expected: execution.version,
                });
            }
            execution.version += 1;
            execution.last_updated = Some(last_updated);
            Ok(())
        })
    }

    fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            Self::write_context(&mut conn, false, execution.id, &execution.context, false).await
        })
    }

    fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut tx = DB::begin(&self.pool).await.map_err(RepositoryError::db(
                "opening a transaction for a new step execution",
            ))?;
            let id = Self::next_id(&mut tx, "BATCH_STEP_EXECUTION_SEQ").await?;
            let q = query::<DB>(
                "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, \
                 START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, \
                 READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, \
                 EXIT_MESSAGE, LAST_UPDATED, CREATE_TIME) \
                 VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(step.step_name.clone())
            .bind(step.job_execution_id);
            let q = Self::bind_step_state(q, step)
                .bind(now())
                .bind(step.create_time);
            DB::execute(&mut tx, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "creating the execution of step `{}`",
                    step.step_name
                )))?;
            Self::write_context(&mut tx, true, id, &step.context, true).await?;
            tx.commit()
                .await
                .map_err(RepositoryError::db("committing a new step execution"))?;
            step.id = id;
            step.version = 0;
            step.context.clear_dirty();
            Ok(())
        })
    }

    fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move { Self::update_step_row(&mut *self.connection().await?, step).await })
    }

    fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            Self::write_context(&mut conn, true, step.id, &step.context, false).await
        })
    }

    fn begin_chunk(&self) -> BoxFuture<'_, Result<ChunkTx, RepositoryError>> {
        Box::pin(async move {
            let tx = DB::begin(&self.pool)
                .await
                .map_err(RepositoryError::db("beginning a chunk transaction"))?;
            Ok(DB::wrap_tx(tx))
        })
    }

    fn commit_chunk<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut tx = match DB::unwrap_tx(tx) {
                Ok(Some(tx)) => tx,
                Ok(None) => DB::begin(&self.pool)
                    .await
                    .map_err(RepositoryError::db("beginning a chunk transaction"))?,
                Err(other) => {
                    return Err(RepositoryError::Corrupt {
                        what: format!("the chunk of step `{}`", step.step_name),
                        problem: format!(
                            "its transaction is on another database ({other:?}) than the job repository ({})",
                            DB::KIND
                        ),
                    });
                }
            };
            Self::update_step_row(&mut tx, step).await?;
            if step.context.is_dirty() {
                Self::write_context(&mut tx, true, step.id, &step.context, false).await?;
            }
            tx.commit().await.map_err(RepositoryError::db(format!(
                "committing a chunk of step `{}`",
                step.step_name
            )))?;
            step.context.clear_dirty();
            Ok(())
        })
    }

    fn rollback_chunk(&self, tx: ChunkTx) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            match DB::unwrap_tx(tx) {
                Ok(Some(tx)) => tx
                    .rollback()
                    .await
                    .map_err(RepositoryError::db("rolling a chunk back")),
                // Dropping a transaction of another database rolls it back too.
                Ok(None) | Err(_) => Ok(()),
            }
        })
    }

    fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StepExecution>, RepositoryError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {STEP_COLUMNS} FROM BATCH_JOB_EXECUTION J \
                 JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
                 LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
                 WHERE J.JOB_INSTANCE_ID = ? AND S.STEP_NAME = ? \
                 ORDER BY S.CREATE_TIME DESC, S.STEP_EXECUTION_ID DESC LIMIT 1"
            );
            let q = query::<DB>(sql)
                .bind(instance.id)
                .bind(step_name.to_owned());
            let row = DB::fetch_optional(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "finding the last execution of step `{step_name}`"
                )))?;
            row.as_ref().map(Self::step_from_row).transpose()
        })
    }

    fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<u64, RepositoryError>> {
        Box::pin(async move {
            let q = query::<DB>(
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION J \
                 JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
                 WHERE J.JOB_INSTANCE_ID = ? AND S.STEP_NAME = ?",
            )
            .bind(instance.id)
            .bind(step_name.to_owned());
            let what = format!("counting the executions of step `{step_name}`");
            let rows = DB::fetch_all(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db(what.clone()))?;
            let n: i64 = match rows.first() {
                Some(row) => DB::get(row, 0).map_err(corrupt(&what))?,
                None => 0,
            };
            Ok(n.max(0) as u64)
        })
    }

    fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<Option<JobInstance>, RepositoryError>> {
        Box::pin(async move {
            let key = parameters.job_key();
            let q = query::<DB>(
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ? AND JOB_KEY = ?",
            )
            .bind(job_name.to_owned())
            .bind(key.clone());
            let row = DB::fetch_optional(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db("looking up the job instance"))?;
            row.map(|r| {
                Ok(JobInstance {
                    id: DB::get(&r, 0).map_err(corrupt("job instance"))?,
                    version: DB::get::<Option<i64>>(&r, 1)
                        .map_err(corrupt("job instance"))?
                        .unwrap_or(0),
                    job_name: job_name.to_owned(),
                    job_key: key,
                })
            })
            .transpose()
        })
    }

    fn item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RepositoryError>> {
        Box::pin(async move {
            let q = query::<DB>(
                "SELECT ITEM_KEY FROM BATCH_STEP_ITEM_PROGRESS WHERE JOB_INSTANCE_ID = ? AND STEP_NAME = ?",
            )
            .bind(instance_id)
            .bind(step_name.to_owned());
            let rows = DB::fetch_all(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "reading the progress of step `{step_name}`"
                )))?;
            rows.iter()
                .map(|r| DB::get::<String>(r, 0).map_err(corrupt("BATCH_STEP_ITEM_PROGRESS")))
                .collect()
        })
    }

    fn record_item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_key: &'a str,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let q = query::<DB>(
                "INSERT INTO BATCH_STEP_ITEM_PROGRESS (JOB_INSTANCE_ID, STEP_NAME, ITEM_KEY, CREATE_TIME) VALUES (?, ?, ?, ?)",
            )
            .bind(instance_id)
            .bind(step_name.to_owned())
            .bind(item_key.to_owned())
            .bind(now());
            match DB::execute(&mut *self.connection().await?, q).await {
                Ok(_) => Ok(()),
                // Recorded already (by an attempt that then failed): done is done.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
                Err(e) => Err(RepositoryError::db(format!(
                    "recording item `{item_key}` of step `{step_name}` as done"
                ))(e)),
            }
        })
    }

    fn heartbeat(&self, execution_id: i64) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            let q = query::<DB>(
                "UPDATE BATCH_JOB_EXECUTION SET LAST_UPDATED = ? WHERE JOB_EXECUTION_ID = ?",
            )
            .bind(now())
            .bind(execution_id);
            DB::execute(&mut *self.connection().await?, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "refreshing the heartbeat of job execution {execution_id}"
                )))?;
            Ok(())
        })
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        Box::pin(self.read_job_executions(instance))
    }

    fn pool(&self) -> Option<DbPool> {
        Some(DB::wrap_pool(self.pool.clone()))
    }
}
