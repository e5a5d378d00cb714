//! What a job repository does: the contract every implementation keeps.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::execution::{BatchStatus, JobExecution, JobInstance, StepExecution};
use crate::params::JobParameters;
use crate::repository::database::{ChunkTx, DbPool};
use crate::repository::error::{LaunchError, RepositoryError};
use crate::repository::owner;
use crate::repository::query::ExecutionQuery;
use crate::repository::retention::{PurgeReport, PurgeRequest};
use crate::repository::statistics::StatusStatistics;

/// The boxed future a [`JobRepository`] method returns (the trait is object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The status a step's stop check goes by: one that could not be read is reported and
/// taken as unknown, since the chunk it follows has committed either way.
pub(crate) fn status_for_stop_check(
    read: std::result::Result<Option<BatchStatus>, RepositoryError>,
) -> Option<BatchStatus> {
    read.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "reading the job execution's status failed");
        None
    })
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

    /// Commits the chunk as [`commit_chunk`](Self::commit_chunk) does, then tells the
    /// status its job execution has in the repository, as
    /// [`job_execution_status`](Self::job_execution_status) would (Spring's
    /// `synchronizeStatus`, by which a step notices a stop asked for by another
    /// process). `Ok(None)` when the status could not be read: that is reported, and is
    /// not the chunk's failure. A repository may read it within the chunk's own
    /// statements; by default it is read after the commit.
    fn commit_chunk_and_read_status<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, std::result::Result<Option<BatchStatus>, RepositoryError>> {
        Box::pin(async move {
            self.commit_chunk(tx, step).await?;
            let read = self.job_execution_status(step.job_execution_id).await;
            Ok(status_for_stop_check(
                read.map(|found| found.map(|(s, _)| s)),
            ))
        })
    }

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

    /// Records several item keys as done in one transaction, committed when this
    /// returns: one commit for all of them instead of one each. Keys recorded already
    /// stay recorded. By default each key goes through
    /// [`record_item_progress`](Self::record_item_progress), for repositories that have
    /// nothing better.
    fn record_items_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_keys: &'a [String],
    ) -> BoxFuture<'a, std::result::Result<(), RepositoryError>> {
        Box::pin(async move {
            for key in item_keys {
                self.record_item_progress(instance_id, step_name, key)
                    .await?;
            }
            Ok(())
        })
    }

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

    /// The bound on one operation of the repository (see
    /// [`timeouts`](crate::repository::timeouts)), which also bounds a writer's work
    /// inside a chunk's transaction; `None` for a repository with no database.
    fn statement_timeout(&self) -> Option<Duration> {
        None
    }

    /// Every execution of an instance, newest first, with their step executions.
    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, std::result::Result<Vec<JobExecution>, RepositoryError>>;

    /// The names of the jobs the repository holds, sorted.
    fn job_names(&self) -> BoxFuture<'_, std::result::Result<Vec<String>, RepositoryError>>;

    /// A page of job executions, newest first, as the query narrows them: each with
    /// its instance, status, times and exit status, but without its parameters,
    /// contexts and step executions (see [`job_execution`](Self::job_execution)).
    fn find_job_executions<'a>(
        &'a self,
        query: &'a ExecutionQuery,
    ) -> BoxFuture<'a, std::result::Result<Vec<JobExecution>, RepositoryError>>;

    /// One job execution with its instance, parameters, job context and every step
    /// execution (with its context); `None` when there is no such execution.
    fn job_execution(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, std::result::Result<Option<JobExecution>, RepositoryError>>;

    /// The STATUS and VERSION of a job execution as stored: what a running process
    /// reads when it saves a step, to notice a stop asked for by another process and
    /// to keep its copy's version current (Spring's `synchronizeStatus`).
    fn job_execution_status(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, std::result::Result<Option<(BatchStatus, i64)>, RepositoryError>>;

    /// The executions of each job in each status, with the total duration of those
    /// that ended: one grouped statement (see [`crate::repository::JobStatistics`]).
    fn execution_statistics(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Vec<StatusStatistics>, RepositoryError>>;

    /// Deletes the executions the request names (see [`PurgeRequest`]) with their
    /// parameters, contexts and step executions, and the instances left without
    /// executions with their item progress: in batches, each one transaction with the
    /// same statements whatever its size.
    fn purge<'a>(
        &'a self,
        request: &'a PurgeRequest,
    ) -> BoxFuture<'a, std::result::Result<PurgeReport, RepositoryError>>;

    /// The pool of the repository's database, for steps whose data lives there
    /// (`None` for a repository with no database).
    fn pool(&self) -> Option<DbPool> {
        None
    }

    /// Claims one remote partition of a running execution of `job_name` for the worker
    /// `owner` (an owner record, see [`owner::current_owner`]), in one short
    /// transaction that locks the candidates with `FOR UPDATE SKIP LOCKED`: a partition
    /// waiting for a worker, else one whose worker died (its process gone, or its
    /// heartbeat older than the lease). The claimed row is STARTED and names its new
    /// owner; its counters and context stay as its last commit left them. Only the
    /// PostgreSQL and MySQL/MariaDB repositories have it.
    fn claim_partition<'a>(
        &'a self,
        job_name: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, std::result::Result<PartitionClaim, RepositoryError>> {
        let _ = (job_name, owner);
        Box::pin(std::future::ready(Err(self.remote_unsupported())))
    }

    /// Refreshes LAST_UPDATED of a running step execution (a remote partition's
    /// heartbeat), without touching its VERSION.
    fn step_heartbeat(
        &self,
        step_execution_id: i64,
    ) -> BoxFuture<'_, std::result::Result<(), RepositoryError>> {
        let _ = step_execution_id;
        Box::pin(std::future::ready(Err(self.remote_unsupported())))
    }

    /// The id and STATUS of each step execution of a job execution, read without a
    /// transaction: what a manager polls while workers run its partitions.
    fn step_statuses(
        &self,
        job_execution_id: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<(i64, BatchStatus)>, RepositoryError>> {
        let _ = job_execution_id;
        Box::pin(std::future::ready(Err(self.remote_unsupported())))
    }

    /// The refusal of remote partitions by a repository without them.
    #[doc(hidden)]
    fn remote_unsupported(&self) -> RepositoryError {
        RepositoryError::RemoteWorkersUnsupported {
            database: match self.pool() {
                Some(pool) => pool.kind().to_string(),
                None => "an in-memory repository".to_owned(),
            },
        }
    }
}

/// What a worker's [`JobRepository::claim_partition`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionClaim {
    /// This partition's step execution is now the worker's.
    Claimed {
        /// Its STEP_EXECUTION_ID.
        step_execution_id: i64,
        /// Its JOB_EXECUTION_ID.
        job_execution_id: i64,
        /// Why its previous worker counts as dead, when it had one (a reclaim).
        reclaimed_from: Option<String>,
    },
    /// Nothing to claim now.
    Nothing {
        /// How many executions of the job are running (whose partitions may still
        /// come, or whose workers may still die).
        running_executions: u64,
    },
}

/// The EXIT_MESSAGE of a remote partition waiting for a worker.
pub const AWAITING_WORKER: &str = "remote partition: awaiting a worker";

/// What precedes a worker's owner record in the EXIT_MESSAGE of a remote partition it
/// runs.
pub const REMOTE_OWNER_PREFIX: &str = "remote partition: ";

/// Truncates an exit message to the 2500 characters EXIT_MESSAGE holds.
pub(crate) fn exit_message(description: &str) -> String {
    const MAX: usize = 2500;
    if description.chars().count() <= MAX {
        description.to_owned()
    } else {
        description.chars().take(MAX).collect()
    }
}
