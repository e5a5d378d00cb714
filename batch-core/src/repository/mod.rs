//! The job repository: where every run is recorded, in the Spring Batch 5 tables.
//!
//! [`JobRepository`] is object-safe so a launcher can hold any implementation:
//! [`SqliteJobRepository`] (the embedded default, a file), [`PostgresJobRepository`],
//! [`MySqlJobRepository`] (MySQL and MariaDB) and [`InMemoryJobRepository`] (tests).
//! [`open_repository`] picks one by the URL's scheme. The three databases share one
//! implementation, [`SqlJobRepository`], whose dialect differences (DDL, sequences,
//! how a launch locks the instance) are the few items of [`Dialect`]. The launch rules
//! (already complete, already running, restart) are decided in one place,
//! [`check_restartable`], from the executions an implementation finds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::context::ContextError;
use crate::error::{Error, Result};
use crate::execution::{BatchStatus, JobExecution, JobInstance, StepExecution};
use crate::params::{JobParameters, ParameterError};

mod common;
mod memory;
#[cfg(feature = "mysql")]
mod mysql;
pub mod owner;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "the batch framework needs a database for its job repository: enable at least one of the features `sqlite`, `postgres`, `mysql`"
);

pub use common::{Column, Dialect, SqlJobRepository};
pub use memory::InMemoryJobRepository;
#[cfg(feature = "mysql")]
pub use mysql::MySqlJobRepository;
#[cfg(feature = "postgres")]
pub use postgres::PostgresJobRepository;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteJobRepository;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of the job repository itself.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("cannot open the job repository at `{url}`")]
    Unreachable {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("job repository: {action} failed")]
    Database {
        action: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{what} was changed by someone else: expected version {expected}, the repository holds a newer one (optimistic locking)"
    )]
    OptimisticLock { what: String, expected: i64 },
    #[error(
        "table {table} of the job repository does not have the Spring Batch 5 layout: {problem}"
    )]
    SchemaMismatch { table: String, problem: String },
    #[error("corrupt row in the job repository")]
    Context(#[from] ContextError),
    #[error("corrupt row in the job repository")]
    Parameter(#[from] ParameterError),
    #[error("corrupt row in the job repository: {what}: {problem}")]
    Corrupt { what: String, problem: String },
    #[error("{0} does not exist in the job repository")]
    NotFound(String),
    #[error(
        "`{url}` is not a job repository URL; use sqlite:FILE, postgres://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB"
    )]
    UnsupportedUrl { url: String },
    #[error(
        "`{url}` names a {kind} job repository, but this program was built without {kind} support; enable the `{feature}` feature of the `batch` crate"
    )]
    DriverNotBuilt {
        url: String,
        kind: DbKind,
        feature: &'static str,
    },
}

impl RepositoryError {
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let action = action.into();
        move |source| Self::Database { action, source }
    }
}

/// Why a job could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "job instance {instance_id} of `{job_name}` with {parameters} is already complete; launch it with other identifying parameters to start a new instance"
    )]
    AlreadyComplete {
        job_name: String,
        instance_id: i64,
        parameters: String,
    },
    #[error(
        "job instance {instance_id} of `{job_name}` is already running (execution {execution_id}, status {status}); wait for it, stop it, or recover it if its process died"
    )]
    AlreadyRunning {
        job_name: String,
        instance_id: i64,
        execution_id: i64,
        status: BatchStatus,
    },
    #[error("job instance {instance_id} of `{job_name}` cannot be restarted: {reason}")]
    NotRestartable {
        job_name: String,
        instance_id: i64,
        reason: String,
    },
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// What the launch rules need to know of an earlier execution of the instance.
#[derive(Debug, Clone)]
pub struct ExecutionSummary {
    pub id: i64,
    pub status: BatchStatus,
    pub exit_message: String,
    pub last_updated: Option<NaiveDateTime>,
}

/// Applies the launch rules to the executions of an existing instance: a running one
/// refuses the launch (already running) unless its owner is dead, a COMPLETED or
/// ABANDONED one refuses it (already complete, with or without identifying
/// parameters), an UNKNOWN one cannot be restarted; otherwise the instance restarts.
///
/// Returns the running executions whose owner is dead, with the reason: the caller
/// marks them FAILED in the same transaction before recording the restart.
pub fn check_restartable(
    instance: &JobInstance,
    parameters: &JobParameters,
    executions: &[ExecutionSummary],
    now: NaiveDateTime,
    lease: Duration,
) -> std::result::Result<Vec<(i64, String)>, LaunchError> {
    let mut dead = Vec::new();
    for e in executions.iter().filter(|e| e.status.is_running()) {
        match owner::dead_owner_reason(&e.exit_message, e.last_updated, now, lease) {
            Some(reason) => dead.push((e.id, reason)),
            None => {
                return Err(LaunchError::AlreadyRunning {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    execution_id: e.id,
                    status: e.status,
                });
            }
        }
    }
    for e in executions {
        match e.status {
            BatchStatus::Completed | BatchStatus::Abandoned => {
                return Err(LaunchError::AlreadyComplete {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    parameters: match parameters.identifying() {
                        p if p.is_empty() => "no identifying parameters".to_owned(),
                        p => format!("identifying parameters [{p}]"),
                    },
                });
            }
            BatchStatus::Unknown => {
                return Err(LaunchError::NotRestartable {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    reason: format!(
                        "execution {} ended in status UNKNOWN; mark it ABANDONED or FAILED first",
                        e.id
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(dead)
}

/// The exit message of an execution found dead at a launch.
pub(crate) fn died_message(reason: &str) -> String {
    format!(
        "the run was found dead at the next launch ({reason}); marked FAILED so the instance can restart"
    )
}

/// The database a job repository lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
    MySql,
}

impl DbKind {
    /// Which database a URL names: `sqlite:` (or a bare file path), `postgres://` /
    /// `postgresql://`, `mysql://` / `mariadb://`.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s);
        match scheme {
            Some("sqlite") => Some(Self::Sqlite),
            Some("postgres" | "postgresql") => Some(Self::Postgres),
            Some("mysql" | "mariadb") => Some(Self::MySql),
            // A bare path (`batch.db`, `./dir/batch.db`) is a SQLite file.
            None => Some(Self::Sqlite),
            Some(_) if !url.contains("://") => Some(Self::Sqlite),
            Some(_) => None,
        }
    }

    /// The database's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL/MariaDB",
        }
    }

    /// The cargo feature that builds this database's driver.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// Whether this program was built with the database's driver.
    pub fn is_built(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
            Self::MySql => cfg!(feature = "mysql"),
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The connection pool of a repository's database, whichever database it is: what
/// the command-line runner hands to steps and setup hooks (`Res<DbPool>`), and what
/// the SQL items of [`crate::sql`] read and write through.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// A SQLite database (a file).
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// A MySQL or MariaDB server.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl DbPool {
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

    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Option<&sqlx::SqlitePool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Option<&sqlx::PgPool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => Some(p),
            _ => None,
        }
    }

    #[cfg(feature = "mysql")]
    pub fn mysql(&self) -> Option<&sqlx::MySqlPool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "mysql")]
            Self::MySql(p) => Some(p),
            _ => None,
        }
    }

    /// Runs one statement without parameters (DDL, say) and returns the rows it
    /// affected. The text must be valid in this pool's dialect.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let done = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
            #[cfg(feature = "mysql")]
            Self::MySql(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
        };
        Ok(done)
    }

    /// Begins a transaction on this pool, for writing with the SQL items outside a
    /// chunk (seeding a table, say); finish it with [`ChunkTx::commit`].
    pub async fn begin(&self) -> Result<ChunkTx> {
        let inner = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => TxInner::Postgres(p.begin().await?),
            #[cfg(feature = "mysql")]
            Self::MySql(p) => TxInner::MySql(p.begin().await?),
        };
        Ok(ChunkTx { inner })
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => p.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => p.close().await,
            #[cfg(feature = "mysql")]
            Self::MySql(p) => p.close().await,
        }
    }
}

/// Opens the job repository a URL names (see [`DbKind::of_url`]), creating the Spring
/// Batch tables when they are missing.
pub async fn open_repository(
    url: &str,
) -> std::result::Result<std::sync::Arc<dyn JobRepository>, RepositoryError> {
    let Some(kind) = DbKind::of_url(url) else {
        return Err(RepositoryError::UnsupportedUrl {
            url: url.to_owned(),
        });
    };
    Ok(match kind {
        #[cfg(feature = "sqlite")]
        DbKind::Sqlite => std::sync::Arc::new(SqliteJobRepository::open(url).await?),
        #[cfg(feature = "postgres")]
        DbKind::Postgres => std::sync::Arc::new(PostgresJobRepository::open(url).await?),
        #[cfg(feature = "mysql")]
        DbKind::MySql => std::sync::Arc::new(MySqlJobRepository::open(url).await?),
        #[allow(unreachable_patterns)]
        kind => {
            return Err(RepositoryError::DriverNotBuilt {
                url: url.to_owned(),
                kind,
                feature: kind.feature(),
            });
        }
    })
}

/// The transaction of one chunk on the repository database. A writer that writes to
/// the same database takes part in it (see [`crate::item::WriteContext`]); the chunk's
/// metadata update commits in it too.
pub struct ChunkTx {
    inner: TxInner,
}

pub(crate) enum TxInner {
    /// A repository with no database (in memory): the chunk commits in memory only.
    None,
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl TxInner {
    fn kind(&self) -> Option<DbKind> {
        match self {
            Self::None => None,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Some(DbKind::Sqlite),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Some(DbKind::Postgres),
            #[cfg(feature = "mysql")]
            Self::MySql(_) => Some(DbKind::MySql),
        }
    }
}

impl fmt::Debug for ChunkTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.inner.kind().map_or("none", DbKind::name);
        f.debug_struct("ChunkTx").field("database", &kind).finish()
    }
}

impl ChunkTx {
    /// A chunk with no database transaction.
    pub fn none() -> Self {
        Self {
            inner: TxInner::None,
        }
    }

    pub(crate) fn from_inner(inner: TxInner) -> Self {
        Self { inner }
    }

    pub(crate) fn into_inner(self) -> TxInner {
        self.inner
    }

    /// Which database the transaction is on (`None` for a repository in memory).
    pub fn kind(&self) -> Option<DbKind> {
        self.inner.kind()
    }

    /// The transaction's SQLite connection.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        match &mut self.inner {
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::Sqlite, other.kind())),
        }
    }

    /// The transaction's PostgreSQL connection.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        match &mut self.inner {
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::Postgres, other.kind())),
        }
    }

    /// The transaction's MySQL/MariaDB connection.
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection> {
        match &mut self.inner {
            #[cfg(feature = "mysql")]
            TxInner::MySql(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::MySql, other.kind())),
        }
    }

    /// Commits a transaction begun by [`DbPool::begin`]. (A chunk's transaction is
    /// committed by the step, with the chunk's metadata.)
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::None => {}
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(tx) => tx.commit().await?,
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => tx.commit().await?,
            #[cfg(feature = "mysql")]
            TxInner::MySql(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

fn wrong_database(wanted: DbKind, found: Option<DbKind>) -> Error {
    let scheme = match wanted {
        DbKind::Sqlite => "--db sqlite:FILE",
        DbKind::Postgres => "--db postgres://…",
        DbKind::MySql => "--db mysql://…",
    };
    let found = found.map_or("kept in memory", DbKind::name);
    Error::msg(format!(
        "this writer needs the chunk's {wanted} transaction, but the job repository is {found} (run with {scheme})"
    ))
}

/// Where jobs record their runs. Implementations must make
/// [`create_job_execution`](Self::create_job_execution) atomic across processes, and
/// must refuse an update made from a stale copy (VERSION).
pub trait JobRepository: Send + Sync + 'static {
    /// Finds or creates the instance of `job_name` with these identifying parameters,
    /// applies the launch rules, and records a new execution (status STARTING) with
    /// all the parameters. On a restart the new execution starts with the job
    /// ExecutionContext of the last one.
    fn create_job_execution<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, std::result::Result<JobExecution, LaunchError>>;

    /// Saves status, times and exit status; increments VERSION.
    fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Saves the job ExecutionContext.
    fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Records a new step execution with its context; assigns its id.
    fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Saves status, counters, times, exit status; increments VERSION.
    fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Saves the step ExecutionContext.
    fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Begins the transaction of one chunk.
    fn begin_chunk(&self) -> BoxFuture<'_, std::result::Result<ChunkTx, RepositoryError>>;

    /// Saves the step execution (and its context when dirty) inside the chunk's
    /// transaction and commits it.
    fn commit_chunk<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Rolls the chunk's transaction back.
    fn rollback_chunk(
        &self,
        tx: ChunkTx,
    ) -> BoxFuture<'_, std::result::Result<(), RepositoryError>>;

    /// The latest execution of `step_name` in any execution of the instance.
    fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Option<StepExecution>, RepositoryError>>;

    /// How many times `step_name` was started in the instance.
    fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, std::result::Result<u64, RepositoryError>>;

    /// The instance of `job_name` with these identifying parameters, if any.
    fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, std::result::Result<Option<JobInstance>, RepositoryError>>;

    /// The item keys a step of this instance recorded as done (see
    /// [`crate::calls::DurableCalls`]): calls that were made and must not be made again.
    fn item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Vec<String>, RepositoryError>>;

    /// Records an item key as done, in a transaction of its own, committed when this
    /// returns: it survives a rollback of the chunk and a crash of the process.
    fn record_item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_key: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>>;

    /// Refreshes LAST_UPDATED of a running execution (its owner's heartbeat), without
    /// touching its VERSION.
    fn heartbeat(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, std::result::Result<(), RepositoryError>>;

    /// How long a running execution may go without a heartbeat before a launch
    /// presumes its owner dead (when the owner cannot be checked directly).
    fn lease(&self) -> Duration {
        owner::DEFAULT_LEASE
    }

    /// Every execution of an instance, newest first, with their step executions.
    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, std::result::Result<Vec<JobExecution>, RepositoryError>>;

    /// The pool of the repository's database, for steps whose data lives there
    /// (`None` for a repository with no database).
    fn pool(&self) -> Option<DbPool> {
        None
    }
}

/// Truncates an exit message to the 2500 characters EXIT_MESSAGE holds.
pub(crate) fn exit_message(description: &str) -> String {
    const MAX: usize = 2500;
    if description.chars().count() <= MAX {
        description.to_owned()
    } else {
        description.chars().take(MAX).collect()
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for DbPool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for DbPool {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for DbPool {
    fn from(pool: sqlx::MySqlPool) -> Self {
        Self::MySql(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `cargo test -p batch-core --no-default-features --features sqlite` (in
    /// `.ci/run`): a URL of a database whose driver was not built names the feature.
    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn a_url_of_a_driver_not_built_names_the_feature() {
        let error = open_repository("postgres://batch:secret@127.0.0.1:5432/batch")
            .await
            .err()
            .expect("no PostgreSQL driver in this build");
        assert!(matches!(
            error,
            RepositoryError::DriverNotBuilt {
                kind: DbKind::Postgres,
                ..
            }
        ));
        assert!(
            error.to_string().contains("enable the `postgres` feature"),
            "{error}"
        );
    }

    #[test]
    fn each_database_names_its_feature() {
        for kind in [DbKind::Sqlite, DbKind::Postgres, DbKind::MySql] {
            assert_eq!(
                kind.is_built(),
                match kind.feature() {
                    "sqlite" => cfg!(feature = "sqlite"),
                    "postgres" => cfg!(feature = "postgres"),
                    "mysql" => cfg!(feature = "mysql"),
                    other => panic!("unknown feature {other}"),
                }
            );
        }
    }
}
