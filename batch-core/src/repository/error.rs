//! What can go wrong in the job repository and at a launch.

use crate::context::ContextError;
use crate::execution::BatchStatus;
use crate::params::ParameterError;
use crate::repository::database::DbKind;

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
