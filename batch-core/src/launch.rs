//! Launching jobs: a new instance, or the restart of a failed or stopped one.

use std::sync::Arc;

use crate::error::Error;
use crate::execution::{BatchStatus, ExitStatus, JobExecution, now};
use crate::job::{Flow, IntoJob, Job, JobExecutionListener, NodeKind, RESTART_AT, Target};
use crate::params::JobParameters;
use crate::repository::{
    BoxFuture, DbPool, JobRepository, LaunchError, RepositoryError, owner, request_stop,
};
use crate::split;
use crate::step::listener::{ChunkListener, StepExecutionListener, StepListeners};
use crate::step::partition::SharedRepository;
use crate::step::scope::Resources;
use crate::step::{StepEndNotSaved, StopSignal};
use crate::step::{StepOutcome, handle_step};
use crate::telemetry;
use tracing::Instrument;

/// Clears the launcher's stop signal when a run ends, so that the next run starts.
struct StopForOneRun<'a>(&'a StopSignal);

impl Drop for StopForOneRun<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// Stops a run's background task (its heartbeat, its stop forwarding) when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs jobs against a repository, handing steps the shared resources.
#[derive(Clone)]
pub struct JobLauncher {
    repository: Arc<dyn JobRepository>,
    resources: Resources,
    listeners: StepListeners,
    job_listeners: Vec<Arc<dyn JobExecutionListener>>,
    stop: StopSignal,
}

impl JobLauncher {
    /// A launcher recording in `repository`.
    pub fn new(repository: impl JobRepository) -> Self {
        Self::with_repository(Arc::new(repository))
    }

    /// A launcher recording in a repository that is shared already (with a test, say).
    /// The repository's pool, when it has one, is a resource already: steps take it as
    /// `Res<DbPool>` or as the database's own pool type (`Res<SqlitePool>`, …).
    pub fn with_repository(repository: Arc<dyn JobRepository>) -> Self {
        let mut resources = Resources::default();
        if let Some(pool) = repository.pool() {
            match &pool {
                #[cfg(feature = "sqlite")]
                DbPool::Sqlite(p) => resources.insert(p.clone()),
                #[cfg(feature = "postgres")]
                DbPool::Postgres(p) => resources.insert(p.clone()),
                #[cfg(feature = "mysql")]
                DbPool::MySql(p) => resources.insert(p.clone()),
            }
            resources.insert(pool);
        }
        // Partitioned steps run their partitions on tasks of their own.
        resources.insert(SharedRepository(repository.clone()));
        Self {
            repository,
            resources,
            listeners: StepListeners::default(),
            job_listeners: Vec::new(),
            stop: StopSignal::default(),
        }
    }

    /// A value every step can take as `Res<T>` (a pool, a client).
    pub fn resource<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// A listener for every step of every job this launcher runs.
    pub fn step_listener(mut self, listener: Arc<dyn StepExecutionListener>) -> Self {
        self.listeners.step.push(listener);
        self
    }

    /// A chunk listener for every step of every job this launcher runs.
    pub fn chunk_listener(mut self, listener: Arc<dyn ChunkListener>) -> Self {
        self.listeners.chunk.push(listener);
        self
    }

    /// A listener for every job this launcher runs.
    pub fn job_listener(mut self, listener: Arc<dyn JobExecutionListener>) -> Self {
        self.job_listeners.push(listener);
        self
    }

    /// The signal that stops running steps at their next chunk boundary (status
    /// STOPPED, restartable).
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// The repository the launcher records in.
    pub fn repository(&self) -> &Arc<dyn JobRepository> {
        &self.repository
    }

    /// What the launcher hands steps, for a worker running partitions with them.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn step_resources(&self) -> &Resources {
        &self.resources
    }

    /// The launcher's step and chunk listeners, for a worker running partitions.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn step_listeners(&self) -> &StepListeners {
        &self.listeners
    }

    /// Launches `job`: a new instance for new identifying parameters, a restart of the
    /// instance when its last execution failed or stopped. A job that fails is not an
    /// error here: the returned execution says FAILED. Errors are refusals to launch
    /// (already complete, already running) and failures of the repository.
    pub async fn run(
        &self,
        job: impl IntoJob,
        parameters: JobParameters,
    ) -> Result<JobExecution, LaunchError> {
        let job = job.into_job();
        // A missing resource is the caller's mistake: refused before any row is written.
        for step in job.flow.steps() {
            if let Some(need) = step.needs().iter().find(|n| !self.resources.has(n.type_id)) {
                return Err(LaunchError::MissingResource {
                    step: step.name().to_owned(),
                    type_name: need.type_name,
                });
            }
        }
        job.validate(&parameters)
            .map_err(|source| LaunchError::InvalidParameters {
                job_name: job.name.clone(),
                source,
            })?;
        let mut execution = self
            .repository
            .create_job_execution(&job.name, &parameters)
            .await?;
        execution.start_time = Some(now());
        execution.status = BatchStatus::Started;
        // Until the run ends, EXIT_MESSAGE names its owner, so that a launch finding it
        // STARTED after this process died can tell (see `repository::owner`).
        execution.exit_status = ExitStatus::executing().with_description(owner::current_owner());
        self.save(&mut execution).await?;
        let _heartbeat = self.start_heartbeat(execution.id);
        let _stop = self.forward_stop(execution.id);
        // Whatever way the run ends, a stop asked for it ends with it.
        let _one_run = StopForOneRun(&self.stop);
        tracing::info!(job = %job.name, instance = execution.instance.id, execution = execution.id, parameters = %parameters, "job started");

        let listeners: Vec<_> = job
            .listeners
            .iter()
            .chain(&self.job_listeners)
            .cloned()
            .collect();
        for l in &listeners {
            l.before_job(&mut execution);
        }
        let active = telemetry::ActiveJob::start(&job.name);
        let span = telemetry::job_span(&execution);
        let (status, exit) = match self.run_flow(&job, &mut execution).instrument(span).await {
            Ok(end) => end,
            Err(e) => {
                // A step whose end was not saved leaves the job's state unknown too.
                let end = if e.is::<StepEndNotSaved>() {
                    (
                        BatchStatus::Unknown,
                        ExitStatus::unknown().with_description(e.report()),
                    )
                } else {
                    (
                        BatchStatus::Failed,
                        ExitStatus::failed().with_description(e.report()),
                    )
                };
                execution.failures.push(std::sync::Arc::new(e));
                end
            }
        };
        execution.status = status;
        execution.exit_status = exit;
        // In reverse order of registration, as Spring's composite listener.
        for l in listeners.iter().rev() {
            l.after_job(&mut execution);
        }
        execution.end_time = Some(now());
        let saved = match self.repository.update_job_context(&execution).await {
            Ok(()) => self.save(&mut execution).await,
            Err(e) => Err(e),
        };
        if let Err(cause) = saved {
            // The run's own outcome (a step cut off by the same outage, say) would be
            // lost behind the repository's error: both are reported.
            tracing::error!(job = %job.name, execution = execution.id, status = %execution.status, error = %cause, "saving the job's end failed");
            return Err(LaunchError::EndNotSaved {
                job_name: job.name.clone(),
                execution_id: execution.id,
                status: execution.status,
                exit_description: execution.exit_status.description.clone(),
                cause: Box::new(cause),
            });
        }
        if matches!(execution.status, BatchStatus::Failed | BatchStatus::Unknown) {
            tracing::error!(job = %job.name, execution = execution.id, status = %execution.status, exit = %execution.exit_status.description, "job failed");
        } else {
            tracing::info!(job = %job.name, execution = execution.id, status = %execution.status, "job finished");
        }
        active.ended(&execution);
        Ok(execution)
    }

    /// Saves the job execution after taking the stored VERSION and a STOPPING status
    /// written by an operator (Spring's `synchronizeStatus`): a stop from another
    /// process bumps VERSION, and must not make this update fail.
    async fn save(&self, execution: &mut JobExecution) -> Result<(), RepositoryError> {
        let mut attempts = 0;
        loop {
            if let Some((status, version)) =
                self.repository.job_execution_status(execution.id).await?
            {
                execution.version = version;
                if status == BatchStatus::Stopping
                    && matches!(
                        execution.status,
                        BatchStatus::Starting | BatchStatus::Started
                    )
                {
                    execution.status = BatchStatus::Stopping;
                }
            }
            match self.repository.update_job_execution(execution).await {
                Err(RepositoryError::OptimisticLock { .. }) if attempts < 10 => attempts += 1,
                outcome => return outcome,
            }
        }
    }

    /// Records the in-process stop signal (Ctrl-C, [`StopSignal::stop`]) in the
    /// repository as a stop from another process would be, so that both take one
    /// path; the task ends with the returned guard.
    fn forward_stop(&self, execution_id: i64) -> Heartbeat {
        let repository = self.repository.clone();
        let stop = self.stop.clone();
        Heartbeat(tokio::spawn(async move {
            stop.stopped().await;
            if let Err(e) = request_stop(repository.as_ref(), execution_id).await {
                tracing::warn!(error = %e, "recording the stop request failed; the step still sees the signal");
            }
        }))
    }

    /// Refreshes the execution's LAST_UPDATED a few times per lease while it runs; the
    /// heartbeat stops when the returned guard is dropped, on every way out of a run.
    fn start_heartbeat(&self, execution_id: i64) -> Heartbeat {
        let repository = self.repository.clone();
        let stop = self.stop.clone();
        let lease = repository.lease();
        let every = (lease / 4).max(std::time::Duration::from_millis(50));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            // The launch's commit wrote LAST_UPDATED.
            let mut renewed = std::time::Instant::now();
            loop {
                tick.tick().await;
                match repository.heartbeat(execution_id).await {
                    Ok(()) => {
                        renewed = std::time::Instant::now();
                        stop.heartbeat_renewed();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed");
                        // Past the lease, the steps stop beginning chunks (`LeaseLost`).
                        stop.heartbeat_failed(renewed, lease);
                    }
                }
            }
        });
        Heartbeat(task)
    }

    async fn run_flow(
        &self,
        job: &Job,
        execution: &mut JobExecution,
    ) -> Result<(BatchStatus, ExitStatus), Error> {
        let flow = &job.flow;
        // A job stopped by `stop_and_restart` begins its restart at the node it named.
        let node = match execution.context.get::<String>(RESTART_AT)? {
            Some(name) => {
                execution.context.remove(RESTART_AT);
                flow.node_named(&name).unwrap_or(0)
            }
            None => 0,
        };
        self.run_nodes(flow, node, execution).await
    }

    /// Runs `flow` from `node` on; a split's flows come back here, each on its own
    /// task.
    fn run_nodes<'a>(
        &'a self,
        flow: &'a Flow,
        mut node: usize,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, Result<(BatchStatus, ExitStatus), Error>> {
        Box::pin(async move {
            loop {
                let (status, exit) = match &flow.nodes[node].kind {
                    NodeKind::Split(_, flows) => self.run_split(flows, execution).await?,
                    NodeKind::Decider(decider) => {
                        let code = decider.decide(execution, execution.step_executions.last());
                        (BatchStatus::Completed, ExitStatus::new(code))
                    }
                    NodeKind::Step(def) => {
                        let outcome = handle_step(
                            def,
                            execution,
                            self.repository.as_ref(),
                            &self.resources,
                            &self.listeners,
                            &self.stop,
                        )
                        .await?;
                        let step = match outcome {
                            StepOutcome::Ran(step) => {
                                execution.step_executions.push(step);
                                execution.step_executions.last().expect("just pushed")
                            }
                            StepOutcome::AlreadyComplete(step) => &step.clone(),
                        };
                        let (status, exit) = (step.status, step.exit_status.clone());
                        // Steps may share state through the job context; keep it saved as
                        // it goes.
                        self.repository.update_job_context(execution).await?;
                        (status, exit)
                    }
                };
                let name = flow.nodes[node].kind.name();
                match flow.target(node, status, &exit) {
                    (Target::Step(next), _) => {
                        if status == BatchStatus::Failed {
                            tracing::warn!(
                                step = %name,
                                exit_code = %exit.code,
                                next = %flow.nodes[next].kind.name(),
                                "step failed; the flow goes on"
                            );
                        }
                        node = next
                    }
                    (Target::StopAndRestart(at), _) => {
                        let at = flow.nodes[at].kind.name().to_owned();
                        execution.context.put(RESTART_AT, &at)?;
                        self.repository.update_job_context(execution).await?;
                        return Ok((BatchStatus::Stopped, ExitStatus::stopped()));
                    }
                    // A declared end names the job's exit code itself.
                    (Target::End(end, code), true) => {
                        let exit = match code {
                            Some(code) => ExitStatus::new(code),
                            None => ExitStatus::for_status(end),
                        };
                        return Ok((end, exit));
                    }
                    // Ending by default, the job exits as its last step did.
                    (Target::End(end, _), false) => {
                        return Ok((end, ExitStatus::for_status(end).and(exit)));
                    }
                }
            }
        })
    }

    /// Runs the flows of a split concurrently, each on its own task with a copy of the
    /// job execution, waits for all of them, takes back what each did and ends as
    /// [`split::aggregate`] says. An error of one flow (a repository failure) is
    /// returned once every flow has ended.
    async fn run_split(
        &self,
        flows: &[Flow],
        execution: &mut JobExecution,
    ) -> Result<(BatchStatus, ExitStatus), Error> {
        let base = execution.step_executions.len();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, flow) in flows.iter().enumerate() {
            let launcher = self.clone();
            let flow = flow.clone();
            let mut copy = execution.clone();
            tasks.spawn(async move {
                let end = launcher.run_nodes(&flow, 0, &mut copy).await;
                (i, end, copy)
            });
        }
        let mut ends = Vec::new();
        let mut branches = Vec::new();
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            // A flow whose task panicked is reported once the others have ended: they
            // are not cut short.
            let (i, end, copy) = match joined {
                Ok(done) => done,
                Err(e) => {
                    first_error.get_or_insert(Error::new(split::SplitFlowPanicked(e)));
                    continue;
                }
            };
            match end {
                Ok(end) => ends.push(end),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            branches.push((i, copy));
        }
        // In the flows' declared order, so that a key two flows set ends as the later
        // flow left it whatever order they finished in.
        branches.sort_by_key(|(i, _)| *i);
        for (_, copy) in branches {
            split::merge(execution, copy, base);
        }
        self.repository.update_job_context(execution).await?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(split::aggregate(&ends)),
        }
    }
}
