//! The job repository: where every run is recorded, in the Spring Batch 5 tables.
//!
//! [`JobRepository`] is object-safe so a launcher can hold any implementation:
//! [`SqliteJobRepository`] (the embedded default, a file) and
//! [`InMemoryJobRepository`] (tests). The launch rules (already complete, already
//! running, restart) are decided in one place, [`check_restartable`], from the
//! executions an implementation finds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::context::ContextError;
use crate::error::{Error, Result};
use crate::execution::{BatchStatus, JobExecution, JobInstance, StepExecution};
use crate::params::{JobParameters, ParameterError};

mod memory;
pub mod owner;
mod sqlite;

pub use memory::InMemoryJobRepository;
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

/// The transaction of one chunk on the repository database. A writer that writes to
/// the same database takes part in it (see [`crate::item::WriteContext`]); the chunk's
/// metadata update commits in it too.
pub struct ChunkTx {
    inner: TxInner,
}

pub(crate) enum TxInner {
    /// A repository with no database (in memory): the chunk commits in memory only.
    None,
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl fmt::Debug for ChunkTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            TxInner::None => "none",
            TxInner::Sqlite(_) => "sqlite",
        };
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

    pub(crate) fn from_sqlite(tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> Self {
        Self {
            inner: TxInner::Sqlite(tx),
        }
    }

    pub(crate) fn into_inner(self) -> TxInner {
        self.inner
    }

    /// The transaction's SQLite connection.
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Ok(&mut *tx),
            TxInner::None => Err(Error::msg(
                "this writer needs the chunk's SQLite transaction, but the job repository is not a SQLite database (run with --db sqlite:FILE)",
            )),
        }
    }
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
