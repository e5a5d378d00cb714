//! What can go wrong in the job repository and at a launch.

use crate::context::ContextError;
use crate::execution::BatchStatus;
use crate::params::ParameterError;
use crate::repository::database::DbKind;

/// A failure of the job repository itself.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The database could not be reached or opened.
    #[error("cannot open the job repository at `{url}`")]
    Unreachable {
        /// The URL, its password masked.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement or transaction failed.
    #[error("job repository: {action} failed")]
    Database {
        /// What the repository was doing.
        action: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{what} was changed by someone else: expected version {expected}, the repository holds a newer one (optimistic locking)"
    )]
    /// An update made from a stale copy (its VERSION is behind the row's).
    OptimisticLock {
        /// The execution that was updated.
        what: String,
        /// The version the copy had.
        expected: i64,
    },
    #[error(
        "table {table} of the job repository does not have the Spring Batch 5 layout: {problem}"
    )]
    /// A batch table exists but not as Spring Batch 5 defines it.
    SchemaMismatch {
        /// The table.
        table: String,
        /// What differs.
        problem: String,
    },
    /// A context row that cannot be read.
    #[error("corrupt row in the job repository")]
    Context(#[from] ContextError),
    /// A parameter row that cannot be read.
    #[error("corrupt row in the job repository")]
    Parameter(#[from] ParameterError),
    #[error("corrupt row in the job repository: {what}: {problem}")]
    /// Another row that cannot be read.
    Corrupt {
        /// The row.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database gave no answer in time (see `repository::timeouts`).
    #[error(
        "job repository: no answer from the database within {} s while {action}; the server may be hung or unreachable (`statement_timeout=SECONDS` in the repository URL sets this bound)",
        .after.as_secs_f64()
    )]
    TimedOut {
        /// What the repository was doing.
        action: String,
        /// The bound that ran out.
        after: std::time::Duration,
    },
    /// An option of the repository URL has a value it cannot take.
    #[error("`{url}`: option `{option}`: {problem}")]
    InvalidUrlOption {
        /// The URL, its password masked.
        url: String,
        /// The option.
        option: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// The job parameters cannot be stored as Spring Batch's columns allow.
    #[error("the job parameters cannot be stored in the job repository")]
    InvalidParameters(#[source] ParameterError),
    /// A Spring sequence hands out ids its table already holds.
    #[error(
        "{sequence} is behind {table}: it gave id {id}, which {table} already holds (its highest id is {max}); advance the sequence past {max}, for instance with `{fix}`"
    )]
    SequenceBehind {
        /// The sequence.
        sequence: String,
        /// The table whose ids it gives.
        table: String,
        /// The id it gave.
        id: i64,
        /// The table's highest id.
        max: i64,
        /// A statement that mends it, in the database's dialect.
        fix: String,
    },
    /// An execution or instance asked for by id is not there.
    #[error("{0} does not exist in the job repository")]
    NotFound(String),
    /// Remote partitions need row locks that skip locked rows (`FOR UPDATE SKIP
    /// LOCKED`), which this repository's database does not have.
    #[error(
        "remote workers need a PostgreSQL or MySQL/MariaDB job repository (they claim partitions with `SELECT … FOR UPDATE SKIP LOCKED`); this one is {database}: run the partitions in one process instead (remote=false)"
    )]
    RemoteWorkersUnsupported {
        /// The repository's database.
        database: String,
    },
    #[error(
        "`{url}` is not a job repository URL; use sqlite:FILE, postgres://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB"
    )]
    /// A URL of no database the repository runs on.
    UnsupportedUrl {
        /// The URL, its password masked.
        url: String,
    },
    #[error(
        "`{url}` names a {kind} job repository, but this program was built without {kind} support; enable the `{feature}` feature of the `batch` crate"
    )]
    /// A URL of a database whose driver this program was built without.
    DriverNotBuilt {
        /// The URL, its password masked.
        url: String,
        /// The database it names.
        kind: DbKind,
        /// The cargo feature that builds its driver.
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
    /// The instance completed (Spring's `JobInstanceAlreadyCompleteException`).
    AlreadyComplete {
        /// The job.
        job_name: String,
        /// The instance.
        instance_id: i64,
        /// Its identifying parameters, as text.
        parameters: String,
    },
    #[error(
        "job instance {instance_id} of `{job_name}` is already running (execution {execution_id}, status {status}); wait for it, stop it, or recover it if its process died"
    )]
    /// An execution of the instance is running and its owner is alive (Spring's
    /// `JobExecutionAlreadyRunningException`).
    AlreadyRunning {
        /// The job.
        job_name: String,
        /// The instance.
        instance_id: i64,
        /// The running execution.
        execution_id: i64,
        /// Its status.
        status: BatchStatus,
    },
    #[error(
        "job instance {instance_id} of `{job_name}` is already running: step `{step}` of execution {execution_id} is {status}, and its process is alive or its heartbeat fresh, though the execution was ended; wait for the step to end"
    )]
    /// A step of the instance's last execution is still running and its owner is
    /// alive, though the execution itself has ended (Spring's launcher refuses this
    /// with `JobExecutionAlreadyRunningException`).
    StepStillRunning {
        /// The job.
        job_name: String,
        /// The instance.
        instance_id: i64,
        /// The last execution.
        execution_id: i64,
        /// The running step.
        step: String,
        /// Its status.
        status: BatchStatus,
    },
    #[error(
        "job instance {instance_id} of `{job_name}` was abandoned (execution {execution_id}); it is not run again: launch it with other identifying parameters to start a new instance"
    )]
    /// An operator abandoned an execution of the instance.
    Abandoned {
        /// The job.
        job_name: String,
        /// The instance.
        instance_id: i64,
        /// The abandoned execution.
        execution_id: i64,
    },
    /// The parameters break the job's parameter rules (a usage error: nothing was
    /// written).
    #[error("the job parameters are not valid for `{job_name}`")]
    InvalidParameters {
        /// The job.
        job_name: String,
        /// What is wrong.
        #[source]
        source: crate::validate::InvalidParameters,
    },
    #[error("job instance {instance_id} of `{job_name}` cannot be restarted: {reason}")]
    /// The instance may not be restarted.
    NotRestartable {
        /// The job.
        job_name: String,
        /// The instance.
        instance_id: i64,
        /// Why not.
        reason: String,
    },
    /// A step needs a shared resource the launcher was not given; nothing was written.
    #[error(
        "step `{step}` takes a shared resource of type `{type_name}` (a `Res<{type_name}>` argument), but none was given: add it with `Runner::configure(|launcher| launcher.resource(value))` in a job binary, or `JobLauncher::resource(value)`"
    )]
    MissingResource {
        /// The step.
        step: String,
        /// The resource's type.
        type_name: &'static str,
    },
    /// The run ended, but the repository failed as its end was saved: what the run
    /// found (its status and exit description, the step's own failure among them) is
    /// kept here, since the repository may still show the execution running. The next
    /// launch of the instance finds it so and recovers it once this process is gone.
    #[error(
        "job execution {execution_id} of `{job_name}` ended {status} ({exit_description}), but saving its end failed"
    )]
    EndNotSaved {
        /// The job.
        job_name: String,
        /// The execution.
        execution_id: i64,
        /// How it ended, as this process saw it.
        status: BatchStatus,
        /// Its exit description, as this process saw it.
        exit_description: String,
        /// The repository's error.
        #[source]
        cause: Box<RepositoryError>,
    },
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}
