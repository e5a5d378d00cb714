//! A stop request as the job repository records it: the execution's STATUS becomes
//! STOPPING (VERSION bumped, as Spring's `JobOperator.stop` does). The process that
//! runs it reads the status each time it saves a step and stops at that boundary.

use crate::execution::{BatchStatus, JobExecution};
use crate::repository::contract::JobRepository;
use crate::repository::error::RepositoryError;

/// What became of a stop request.
#[derive(Debug)]
pub enum StopOutcome {
    /// The execution is STOPPING now (or was already).
    Stopping(JobExecution),
    /// The execution is not running: its status.
    NotRunning(JobExecution),
    /// There is no such execution.
    NotFound,
}

/// Marks a running execution STOPPING; see the module documentation. A concurrent
/// update of the execution (its owner saving it) is met by reading it again.
pub async fn request_stop(
    repository: &dyn JobRepository,
    execution_id: i64,
) -> Result<StopOutcome, RepositoryError> {
    let mut attempts = 0;
    loop {
        let Some(mut execution) = repository.job_execution(execution_id).await? else {
            return Ok(StopOutcome::NotFound);
        };
        match execution.status {
            BatchStatus::Stopping => return Ok(StopOutcome::Stopping(execution)),
            BatchStatus::Starting | BatchStatus::Started => {}
            _ => return Ok(StopOutcome::NotRunning(execution)),
        }
        execution.status = BatchStatus::Stopping;
        match repository.update_job_execution(&mut execution).await {
            Ok(()) => return Ok(StopOutcome::Stopping(execution)),
            Err(RepositoryError::OptimisticLock { .. }) if attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}
