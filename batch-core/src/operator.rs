//! The operator side (Spring's `JobOperator`): stop, abandon, restart, recover and
//! start the next instance of a job, each through the job repository alone, so that
//! they work from any process on any host.

use crate::execution::{BatchStatus, ExitStatus, JobExecution, now};
use crate::job::IntoJob;
use crate::launch::JobLauncher;
use crate::params::JobParameters;
use crate::repository::{
    ExecutionQuery, JobRepository, LaunchError, PurgeReport, PurgeRequest, RepositoryError,
    StopOutcome, owner, request_stop,
};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// There is no execution of that id (the runner exits 5).
    #[error("job execution {0} does not exist")]
    NoSuchExecution(i64),
    /// The execution's state does not allow the operation (the runner exits 6).
    #[error("cannot {action} job execution {execution_id}: it is {status}{}", reason_text(.reason))]
    NotAllowed {
        /// What was asked.
        action: &'static str,
        /// The execution.
        execution_id: i64,
        /// Its status.
        status: BatchStatus,
        /// Why not, beyond the status.
        reason: Option<String>,
    },
    /// The execution belongs to another job than the one given.
    #[error("job execution {execution_id} is an execution of `{found}`, not of `{expected}`")]
    OtherJob {
        /// The execution.
        execution_id: i64,
        /// Its job.
        found: String,
        /// The job given.
        expected: String,
    },
    /// The launch of a restart or of the next instance was refused or failed.
    #[error("the launch failed")]
    Launch(#[from] LaunchError),
    /// The repository failed.
    #[error("the job repository failed")]
    Repository(#[from] RepositoryError),
}

fn reason_text(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// See the module documentation.
#[derive(Clone)]
pub struct JobOperator {
    launcher: JobLauncher,
}

impl JobOperator {
    /// An operator on the launcher's repository; restarts and next instances run
    /// through the launcher.
    pub fn new(launcher: JobLauncher) -> Self {
        Self { launcher }
    }

    fn repository(&self) -> &dyn JobRepository {
        self.launcher.repository().as_ref()
    }

    async fn execution(&self, execution_id: i64) -> Result<JobExecution, OperatorError> {
        self.repository()
            .job_execution(execution_id)
            .await?
            .ok_or(OperatorError::NoSuchExecution(execution_id))
    }

    /// Marks a running execution STOPPING; its process stops at its next chunk
    /// boundary (or between tasklet calls) and ends it STOPPED, restartable. Refused,
    /// with its status, for an execution that is not running.
    pub async fn stop(&self, execution_id: i64) -> Result<JobExecution, OperatorError> {
        match request_stop(self.repository(), execution_id).await? {
            StopOutcome::Stopping(execution) => Ok(execution),
            StopOutcome::NotFound => Err(OperatorError::NoSuchExecution(execution_id)),
            StopOutcome::NotRunning(execution) => Err(OperatorError::NotAllowed {
                action: "stop",
                execution_id,
                status: execution.status,
                reason: Some("only a running execution can be stopped".into()),
            }),
        }
    }

    /// Marks a STOPPED or FAILED execution (or a running one whose process is dead)
    /// ABANDONED, with an end time: its instance is not launched again.
    pub async fn abandon(&self, execution_id: i64) -> Result<JobExecution, OperatorError> {
        let mut execution = self.execution(execution_id).await?;
        match execution.status {
            BatchStatus::Stopped | BatchStatus::Failed | BatchStatus::Unknown => {}
            status if status.is_running() => {
                if let Err(reason) = self.owner_is_dead(&execution) {
                    return Err(OperatorError::NotAllowed {
                        action: "abandon",
                        execution_id,
                        status,
                        reason: Some(reason),
                    });
                }
            }
            status => {
                return Err(OperatorError::NotAllowed {
                    action: "abandon",
                    execution_id,
                    status,
                    reason: Some(
                        "only a stopped, failed or crashed execution can be abandoned".into(),
                    ),
                });
            }
        }
        let end = now();
        for step in execution
            .step_executions
            .iter_mut()
            .filter(|s| s.status.is_running())
        {
            step.status = BatchStatus::Abandoned;
            step.end_time = Some(end);
            self.repository().update_step_execution(step).await?;
        }
        execution.status = BatchStatus::Abandoned;
        execution.end_time = execution.end_time.or(Some(end));
        self.repository()
            .update_job_execution(&mut execution)
            .await?;
        Ok(execution)
    }

    /// Marks a STARTED execution left behind by a dead process (no owner recorded and
    /// an old heartbeat, as Spring Batch leaves one; or an owner known to be gone)
    /// FAILED, with its running steps, so that its instance can restart. Refused while
    /// its process is alive or its heartbeat fresh.
    pub async fn recover(&self, execution_id: i64) -> Result<JobExecution, OperatorError> {
        let mut execution = self.execution(execution_id).await?;
        if !execution.status.is_running() {
            return Err(OperatorError::NotAllowed {
                action: "recover",
                execution_id,
                status: execution.status,
                reason: Some("only an execution left running can be recovered".into()),
            });
        }
        let why = self
            .owner_is_dead(&execution)
            .map_err(|reason| OperatorError::NotAllowed {
                action: "recover",
                execution_id,
                status: execution.status,
                reason: Some(reason),
            })?;
        let message =
            format!("recovered by an operator: {why}; marked FAILED so the instance can restart");
        let end = now();
        for step in execution
            .step_executions
            .iter_mut()
            .filter(|s| s.status.is_running())
        {
            step.status = BatchStatus::Failed;
            step.exit_status = ExitStatus::failed().with_description(message.clone());
            step.end_time = Some(end);
            self.repository().update_step_execution(step).await?;
        }
        execution.status = BatchStatus::Failed;
        execution.exit_status = ExitStatus::failed().with_description(message);
        execution.end_time = Some(end);
        self.repository()
            .update_job_execution(&mut execution)
            .await?;
        Ok(execution)
    }

    /// `Ok(why)` when the execution's owner is known dead, `Err(why not)` otherwise.
    fn owner_is_dead(&self, execution: &JobExecution) -> Result<String, String> {
        owner::dead_owner_reason(
            &execution.exit_status.description,
            execution.last_updated,
            now(),
            self.repository().lease(),
        )
        .ok_or_else(|| {
            "its process may still be running: it is alive, or its heartbeat is fresh".to_owned()
        })
    }

    /// Relaunches the instance of the execution `execution_id` with that execution's
    /// parameters. `job` must be the execution's job.
    pub async fn restart(
        &self,
        job: impl IntoJob,
        execution_id: i64,
    ) -> Result<JobExecution, OperatorError> {
        let job = job.into_job();
        let execution = self.execution(execution_id).await?;
        if execution.instance.job_name != job.name() {
            return Err(OperatorError::OtherJob {
                execution_id,
                found: execution.instance.job_name,
                expected: job.name().to_owned(),
            });
        }
        match execution.status {
            BatchStatus::Failed | BatchStatus::Stopped => {}
            status => {
                return Err(OperatorError::NotAllowed {
                    action: "restart",
                    execution_id,
                    status,
                    reason: Some("only a failed or stopped execution can be restarted".into()),
                });
            }
        }
        Ok(self.launcher.run(job, execution.parameters).await?)
    }

    /// Launches the next instance of `job`: the parameters of its last execution
    /// through the job's incrementer (`run.id` + 1 by default), then `extra` over them.
    pub async fn start_next(
        &self,
        job: impl IntoJob,
        extra: JobParameters,
    ) -> Result<JobExecution, OperatorError> {
        let job = job.into_job();
        let parameters = self.next_parameters(&job, extra).await?;
        Ok(self.launcher.run(job, parameters).await?)
    }

    /// The parameters [`start_next`](Self::start_next) launches with.
    pub async fn next_parameters(
        &self,
        job: &crate::job::Job,
        extra: JobParameters,
    ) -> Result<JobParameters, OperatorError> {
        let last = self
            .repository()
            .find_job_executions(&ExecutionQuery::new().job(job.name()).limit(1))
            .await?;
        let last = match last.first() {
            Some(e) => self
                .repository()
                .job_execution(e.id)
                .await?
                .map(|e| e.parameters),
            None => None,
        };
        let mut parameters = job.next_parameters(last.as_ref());
        for (name, p) in extra.iter() {
            parameters.insert(name, p.clone());
        }
        Ok(parameters)
    }

    /// Deletes ended executions as [`PurgeRequest`] says.
    pub async fn purge(&self, request: &PurgeRequest) -> Result<PurgeReport, OperatorError> {
        Ok(self.repository().purge(request).await?)
    }
}
