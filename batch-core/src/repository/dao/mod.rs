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

mod chunk;
mod context;
mod explore;
mod item_progress;
mod job_execution;
mod launch;
mod partition;
mod purge;
mod schema;
mod step_execution;

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::query::Query;
use sqlx::{Database, Decode, Encode, Pool, Transaction, Type};

use crate::execution::{BatchStatus, JobExecution, JobInstance, StepExecution};
use crate::params::JobParameters;
use crate::repository::contract::{BoxFuture, JobRepository};
use crate::repository::database::{ChunkTx, DbKind, DbPool};
use crate::repository::error::{LaunchError, RepositoryError};
use crate::repository::owner;
use crate::repository::query::ExecutionQuery;
use crate::repository::retention::{PurgeReport, PurgeRequest};
use crate::repository::timeouts::{DEFAULT_STATEMENT_TIMEOUT, bounded};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::repository::timeouts::{Timeouts, connect_timed_out};

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

    /// The sum, as a BIGINT, of the milliseconds between the TIMESTAMP columns `from`
    /// and `to` over a group (NULL where either is NULL).
    #[doc(hidden)]
    fn sum_of_millis(from: &str, to: &str) -> String;

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

    /// A statement that sets `sequence` so that the next id it gives is above `to`.
    #[doc(hidden)]
    fn advance_sequence(sequence: &str, to: i64) -> String;

    /// The columns of a table as its catalogue describes them, in order; empty when
    /// there is no such table.
    #[doc(hidden)]
    fn columns(
        conn: &mut Self::Connection,
        table: &'static str,
    ) -> impl Future<Output = sqlx::Result<Vec<CatalogColumn>>> + Send;

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
        fn wrap_tx(tx: sqlx::Transaction<'static, Self>) -> $crate::repository::database::ChunkTx {
            $crate::repository::database::ChunkTx::from_inner(
                $crate::repository::database::TxInner::$variant(tx),
            )
        }

        fn unwrap_tx(
            tx: $crate::repository::database::ChunkTx,
        ) -> Result<Option<sqlx::Transaction<'static, Self>>, $crate::repository::database::ChunkTx>
        {
            match tx.into_inner() {
                $crate::repository::database::TxInner::$variant(tx) => Ok(Some(tx)),
                $crate::repository::database::TxInner::None => Ok(None),
                // Reachable when more than one database is built.
                #[allow(unreachable_patterns)]
                other => Err($crate::repository::database::ChunkTx::from_inner(other)),
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

        fn wrap_pool(pool: sqlx::Pool<Self>) -> $crate::repository::database::DbPool {
            pool.into()
        }
    };
}
pub(crate) use run_queries;

/// A column as a database's catalogue describes it, for the schema check.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct CatalogColumn {
    pub name: String,
    /// The declared type, in lower case (`bigint`, `character varying`, `VARCHAR(100)`
    /// on SQLite, which keeps the declaration as written).
    pub data_type: String,
    pub nullable: bool,
    /// The declared length of a text column, where the database enforces one.
    pub max_length: Option<i64>,
    /// Whether an insert that leaves the column out still fills it (a default, an
    /// identity, the SQLite row id).
    pub has_default: bool,
}

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

/// The job repository on a SQL database; see the module documentation. Use it as
/// [`SqliteJobRepository`](super::SqliteJobRepository),
/// [`PostgresJobRepository`](super::PostgresJobRepository) or
/// [`MySqlJobRepository`](super::MySqlJobRepository).
pub struct SqlJobRepository<DB: Dialect> {
    pool: Pool<DB>,
    lease: Duration,
    /// The bound on one operation (see `repository::timeouts`).
    statement_timeout: Duration,
}

impl<DB: Dialect> Clone for SqlJobRepository<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            lease: self.lease,
            statement_timeout: self.statement_timeout,
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

    /// How long one operation of the repository (a launch, a chunk's commit, a
    /// heartbeat) may wait for the database before it fails; see
    /// [`timeouts`](crate::repository::timeouts).
    pub fn with_statement_timeout(mut self, limit: Duration) -> Self {
        self.statement_timeout = limit;
        self
    }

    /// The connection pool of the repository's database, for steps whose data lives in
    /// the same database.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A pool on the server at `url` (whose `connect_timeout` and `statement_timeout`
/// options are read here, see `repository::timeouts`). One connection is made first,
/// so that a server that refuses or a wrong password is reported as it is, not as the
/// pool's timeout after its retries; it gets `connect_timeout` to answer.
///
/// `pool` makes the pool's options from the bounds, so that each session can be told
/// the server's side of them (see [`Timeouts::server_idle`]).
pub(super) async fn connect_server<DB: Dialect>(
    url: &str,
    pool: impl FnOnce(Timeouts) -> sqlx::pool::PoolOptions<DB>,
) -> Result<(Pool<DB>, Timeouts), RepositoryError> {
    use sqlx::{ConnectOptions, Connection};
    let (driver_url, timeouts) = Timeouts::from_url(url)?;
    let pool = pool(timeouts);
    let unreachable = |source| RepositoryError::Unreachable {
        url: crate::repository::database::redact_url(url),
        source,
    };
    let options: <DB::Connection as Connection>::Options =
        driver_url.parse().map_err(unreachable)?;
    let limit = timeouts.connect;
    let probe = tokio::time::timeout(limit, options.connect())
        .await
        .map_err(|_| unreachable(connect_timed_out(limit)))?
        .map_err(unreachable)?;
    probe.close().await.map_err(unreachable)?;
    let pool = pool
        .max_connections(8)
        .acquire_timeout(limit)
        .connect_with(options);
    let pool = tokio::time::timeout(limit, pool)
        .await
        .map_err(|_| unreachable(connect_timed_out(limit)))?
        .map_err(unreachable)?;
    Ok((pool, timeouts))
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
        Self::from_pool_bounded(pool, DEFAULT_STATEMENT_TIMEOUT).await
    }

    /// [`from_pool`](Self::from_pool), each operation bounded by `statement_timeout`.
    pub(crate) async fn from_pool_bounded(
        pool: Pool<DB>,
        statement_timeout: Duration,
    ) -> Result<Self, RepositoryError> {
        let repo = Self {
            pool,
            lease: owner::DEFAULT_LEASE,
            statement_timeout,
        };
        bounded(
            statement_timeout,
            "checking the Spring Batch tables",
            repo.ensure_schema(),
        )
        .await?;
        Ok(repo)
    }

    /// Runs one operation within the statement timeout.
    fn bounded<'a, T: 'a, E: From<RepositoryError> + 'a>(
        &'a self,
        action: &'a str,
        operation: impl Future<Output = Result<T, E>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, E>> {
        Box::pin(bounded(self.statement_timeout, action, operation))
    }

    pub(super) async fn connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<DB>, RepositoryError> {
        self.pool
            .acquire()
            .await
            .map_err(RepositoryError::db("connecting"))
    }

    pub(super) async fn next_id(
        conn: &mut DB::Connection,
        sequence: &'static str,
    ) -> Result<i64, RepositoryError> {
        let id = DB::next_id(conn, sequence)
            .await
            .map_err(RepositoryError::db(format!("taking an id from {sequence}")))?;
        // A sequence behind its table (restored from an older backup, rows copied in
        // by hand) would hand out taken ids forever: each insert failing on the
        // primary key, retried as if another launch had got in the way. One lookup by
        // key tells it apart and says how to mend it.
        let (table, column) = match sequence {
            "BATCH_JOB_SEQ" => ("BATCH_JOB_INSTANCE", "JOB_INSTANCE_ID"),
            "BATCH_JOB_EXECUTION_SEQ" => ("BATCH_JOB_EXECUTION", "JOB_EXECUTION_ID"),
            _ => ("BATCH_STEP_EXECUTION", "STEP_EXECUTION_ID"),
        };
        let taken = query::<DB>(format!(
            "SELECT {column}, (SELECT MAX({column}) FROM {table}) FROM {table} WHERE {column} = ?"
        ))
        .bind(id);
        let taken = DB::fetch_optional(conn, taken)
            .await
            .map_err(RepositoryError::db(format!("checking id {id} of {table}")))?;
        if let Some(row) = taken {
            let max = DB::get::<Option<i64>>(&row, 1)
                .map_err(corrupt(table))?
                .unwrap_or(id);
            return Err(RepositoryError::SequenceBehind {
                sequence: sequence.to_owned(),
                table: table.to_owned(),
                id,
                max,
                fix: DB::advance_sequence(sequence, max),
            });
        }
        Ok(id)
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
        Box::pin(self.create_job_execution(job_name, parameters))
    }

    fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded(
            "saving the job execution",
            self.update_job_execution(execution),
        )
    }

    fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded("saving the job context", self.update_job_context(execution))
    }

    fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded("creating the step execution", self.add_step_execution(step))
    }

    fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded(
            "saving the step execution",
            self.update_step_execution(step),
        )
    }

    fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded("saving the step context", self.update_step_context(step))
    }

    fn begin_chunk(&self) -> BoxFuture<'_, Result<ChunkTx, RepositoryError>> {
        self.bounded("beginning a chunk", self.begin_chunk())
    }

    fn commit_chunk<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded("committing a chunk", self.commit_chunk(tx, step))
    }

    fn commit_chunk_and_read_status<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<Option<BatchStatus>, RepositoryError>> {
        self.bounded(
            "committing a chunk",
            self.commit_chunk_and_read_status(tx, step),
        )
    }

    fn rollback_chunk(&self, tx: ChunkTx) -> BoxFuture<'_, Result<(), RepositoryError>> {
        self.bounded("rolling back a chunk", self.rollback_chunk(tx))
    }

    fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StepExecution>, RepositoryError>> {
        self.bounded(
            "reading the last step execution",
            self.last_step_execution(instance, step_name),
        )
    }

    fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<u64, RepositoryError>> {
        self.bounded(
            "counting step executions",
            self.step_execution_count(instance, step_name),
        )
    }

    fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<Option<JobInstance>, RepositoryError>> {
        self.bounded(
            "finding the job instance",
            self.find_job_instance(job_name, parameters),
        )
    }

    fn item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RepositoryError>> {
        self.bounded(
            "reading item progress",
            self.item_progress(instance_id, step_name),
        )
    }

    fn record_item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_key: &'a str,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded(
            "recording item progress",
            self.record_item_progress(instance_id, step_name, item_key),
        )
    }

    fn record_items_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        self.bounded(
            "recording item progress",
            self.record_items_progress(instance_id, step_name, item_keys),
        )
    }

    fn heartbeat(&self, execution_id: i64) -> BoxFuture<'_, Result<(), RepositoryError>> {
        self.bounded("saving the heartbeat", self.heartbeat(execution_id))
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn statement_timeout(&self) -> Option<Duration> {
        Some(self.statement_timeout)
    }

    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        self.bounded(
            "reading the job executions",
            self.read_job_executions(instance),
        )
    }

    fn job_names(&self) -> BoxFuture<'_, Result<Vec<String>, RepositoryError>> {
        Box::pin(self.job_names())
    }

    fn find_job_executions<'a>(
        &'a self,
        query: &'a ExecutionQuery,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        Box::pin(self.find_job_executions(query))
    }

    fn job_execution(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, Result<Option<JobExecution>, RepositoryError>> {
        Box::pin(self.job_execution(execution_id))
    }

    fn execution_statistics(
        &self,
    ) -> BoxFuture<'_, Result<Vec<crate::repository::statistics::StatusStatistics>, RepositoryError>>
    {
        Box::pin(self.execution_statistics())
    }

    fn job_execution_status(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, Result<Option<(BatchStatus, i64)>, RepositoryError>> {
        Box::pin(self.job_execution_status(execution_id))
    }

    fn purge<'a>(
        &'a self,
        request: &'a PurgeRequest,
    ) -> BoxFuture<'a, Result<PurgeReport, RepositoryError>> {
        Box::pin(self.purge(request))
    }

    fn pool(&self) -> Option<DbPool> {
        Some(DB::wrap_pool(self.pool.clone()))
    }

    fn claim_partition<'a>(
        &'a self,
        job_name: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<crate::repository::contract::PartitionClaim, RepositoryError>> {
        self.bounded(
            "claiming a partition",
            self.claim_partition(job_name, owner),
        )
    }

    fn step_heartbeat(&self, step_execution_id: i64) -> BoxFuture<'_, Result<(), RepositoryError>> {
        self.bounded(
            "saving the partition's heartbeat",
            self.step_heartbeat(step_execution_id),
        )
    }

    fn step_statuses(
        &self,
        job_execution_id: i64,
    ) -> BoxFuture<'_, Result<Vec<(i64, BatchStatus)>, RepositoryError>> {
        self.bounded(
            "reading the step statuses",
            self.step_statuses(job_execution_id),
        )
    }
}
