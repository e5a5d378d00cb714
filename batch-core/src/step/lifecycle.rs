//! Running a step in a job execution: whether it runs at all (restart rules, start
//! limit), and the lifecycle every step shares.

use crate::context::{ExecutionContext, JobContext};
use crate::error::{Cause, Error, Result};
use crate::execution::{BatchStatus, ExitStatus, JobExecution, StepCounts, StepExecution, now};
use crate::item::StepIdentity;
use crate::repository::JobRepository;
use crate::step::boundary::{CloseLater, StepInterrupted, StepRuntime, StopSignal};
use crate::step::builder::StepDef;
use crate::step::listener::StepListeners;
use crate::step::scope::{Resources, StepScope};
use crate::telemetry;
use tracing::Instrument;

/// The step would exceed its start limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "step `{step}` has already been started {count} time(s) in this job instance; its start limit is {limit}"
)]
pub struct StartLimitExceeded {
    /// The step's name.
    pub step: String,
    /// How many times it has started in the job instance.
    pub count: u64,
    /// Its start limit.
    pub limit: u32,
}

/// The step ended UNKNOWN in the instance's last execution: what the repository holds
/// may not be what happened, so it is not run again until someone marks it FAILED.
/// (Launches refuse such an instance before this; a repository that does not is
/// still caught here.)
#[derive(Debug, thiserror::Error)]
#[error(
    "step `{step}` of the last execution ended in status UNKNOWN; it cannot be restarted safely"
)]
pub struct StepUnknown {
    /// The step.
    pub step: String,
}

/// What happened to a step in a job run.
pub(crate) enum StepOutcome {
    /// The step ran; here is its execution.
    Ran(StepExecution),
    /// The step completed in an earlier execution and was not run again.
    AlreadyComplete(StepExecution),
}

/// Decides whether the step runs in this job execution (Spring's `SimpleStepHandler`),
/// creates its execution and runs it.
pub(crate) async fn handle_step(
    def: &StepDef,
    job: &mut JobExecution,
    repository: &dyn JobRepository,
    resources: &Resources,
    extra: &StepListeners,
    stop: &StopSignal,
) -> Result<StepOutcome> {
    let last = repository
        .last_step_execution(&job.instance, &def.name)
        .await?;
    if let Some(last) = &last {
        if last.status == BatchStatus::Unknown {
            return Err(Error::new(StepUnknown {
                step: def.name.to_string(),
            }));
        }
        if last.status == BatchStatus::Completed && !def.allow_start_if_complete {
            tracing::info!(step = %def.name, "step already complete in this job instance; not run again");
            return Ok(StepOutcome::AlreadyComplete(last.clone()));
        }
    }
    let started = repository
        .step_execution_count(&job.instance, &def.name)
        .await?;
    if started >= u64::from(def.start_limit) {
        return Err(Error::new(StartLimitExceeded {
            step: def.name.to_string(),
            count: started,
            limit: def.start_limit,
        }));
    }
    let restart = last
        .as_ref()
        .is_some_and(|l| l.status != BatchStatus::Completed);
    let context = match (&last, restart) {
        (Some(l), true) => {
            let mut c = l.context.clone();
            c.clear_dirty();
            c
        }
        _ => ExecutionContext::new(),
    };
    let mut execution = StepExecution {
        id: 0,
        version: 0,
        step_name: def.name.to_string(),
        job_execution_id: job.id,
        create_time: now(),
        start_time: None,
        end_time: None,
        status: BatchStatus::Starting,
        counts: StepCounts::default(),
        exit_status: ExitStatus::executing(),
        last_updated: None,
        context,
        failures: Vec::new(),
    };
    repository.add_step_execution(&mut execution).await?;
    let identity = StepIdentity {
        job_name: job.instance.job_name.clone(),
        job_instance_id: job.instance.id,
        job_execution_id: job.id,
        step_name: def.name.to_string(),
        step_execution_id: execution.id,
    };
    let job_context = JobContext::new(job.context.clone());
    let scope = StepScope::new(
        identity.clone(),
        job.parameters.clone(),
        job_context.clone(),
        execution.context.clone(),
        resources.clone(),
        restart,
    );
    let listeners = def.listeners.merged(extra);
    let ran = execute_step(
        def,
        scope,
        &mut execution,
        repository,
        &listeners,
        &identity,
        stop,
    )
    .instrument(telemetry::step_span(&identity))
    .await;
    // What the step wrote to the job context counts however it ended; the flow saves
    // the job context after each step.
    job.context = job_context.snapshot();
    ran?;
    telemetry::step_ended(&identity, &execution);
    // Promotion, as Spring's `ExecutionContextPromotionListener` with its default
    // statuses: only a step that exits COMPLETED hands its keys on. The job context is
    // saved by the flow after each step.
    if execution.exit_status.code == ExitStatus::COMPLETED {
        for key in def.promote.iter() {
            if let Some(value) = execution.context.get_value(key) {
                job.context.put_value(key.clone(), value.clone());
            }
        }
    }
    Ok(StepOutcome::Ran(execution))
}

/// The lifecycle every step shares (Spring's `AbstractStep.execute`): mark it
/// STARTED, run it, set status and exit status from the outcome, let the listeners
/// have their say, save the context as it stands (also after a failure, so a restart
/// resumes from it), then the execution itself.
pub(crate) async fn execute_step(
    def: &StepDef,
    scope: StepScope,
    execution: &mut StepExecution,
    repository: &dyn JobRepository,
    listeners: &StepListeners,
    identity: &StepIdentity,
    stop: &StopSignal,
) -> Result<()> {
    execution.start_time = Some(now());
    execution.status = BatchStatus::Started;
    // While the step runs, its EXIT_MESSAGE names its owner, as the job execution's
    // does: a launch that finds the step running in an execution ended by hand can
    // tell whether its process is still there (see `repository::rules`).
    // A step given an owner already (a remote partition, claimed by its worker under
    // its own record) keeps it.
    if execution.exit_status.description.is_empty() {
        execution.exit_status =
            ExitStatus::executing().with_description(crate::repository::owner::current_owner());
    }
    let owner = execution.exit_status.description.clone();
    repository.update_step_execution(execution).await?;
    let before = catch_panic(|| {
        for l in &listeners.step {
            l.before_step(execution);
        }
    });
    let close_later = CloseLater::default();
    let outcome = match before {
        Ok(()) => {
            CatchPanic(def.runner.run(
                scope,
                StepRuntime {
                    execution: &mut *execution,
                    repository,
                    listeners,
                    identity,
                    stop,
                    stopping: false,
                    close_later: Some(&close_later),
                },
            ))
            .await
        }
        Err(panicked) => Err(panicked.into()),
    };
    let mut exit = match &outcome {
        Ok(()) => {
            execution.status = BatchStatus::Completed;
            ExitStatus::completed()
        }
        Err(e) if e.is::<StepInterrupted>() => {
            execution.status = BatchStatus::Stopped;
            ExitStatus::stopped().with_description(e.report())
        }
        Err(e) => {
            // A warning: the flow may route the failure on; the job logs an error only
            // when it ends FAILED.
            tracing::warn!(step = %def.name, error = %e.report(), "step failed");
            execution.status = BatchStatus::Failed;
            ExitStatus::failed().with_description(e.report())
        }
    };
    // The owner record was for the run only; what a listener or tasklet added to it
    // stays.
    if let Some(rest) = execution
        .exit_status
        .description
        .strip_prefix(owner.as_str())
    {
        execution.exit_status.description = rest.trim_start_matches("; ").to_owned();
    }
    // A listener may have set a custom code during the run; it counts when it is more
    // severe (Spring combines them the same way).
    if execution.exit_status.code != ExitStatus::EXECUTING {
        exit = exit.and(execution.exit_status.clone());
    }
    execution.exit_status = exit;
    let after = catch_panic(|| {
        // After-hooks run in the reverse order of registration, as Spring's composite
        // listeners do: the first registered wraps the others.
        for l in listeners.step.iter().rev() {
            if let Some(s) = l.after_step(execution) {
                execution.exit_status = execution.exit_status.clone().and(s);
            }
        }
    });
    if let Err(panicked) = after {
        tracing::error!(step = %def.name, error = %panicked, "a step listener panicked");
        execution.status = BatchStatus::Failed;
        execution.exit_status = execution
            .exit_status
            .clone()
            .and(ExitStatus::failed().with_description(panicked.to_string()));
        execution
            .failures
            .push(std::sync::Arc::new(panicked.into()));
    }
    // The reader and writer are closed after the listeners' `after_step`, as Spring
    // does, and before the end is saved: a close that fails (a file's last bytes not
    // on disk) fails the step.
    let closer = close_later.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(close) = closer
        && let Err(e) = CatchPanic(close()).await
    {
        tracing::warn!(step = %def.name, error = %e.report(), "closing the step's reader or writer failed");
        execution.status = BatchStatus::Failed;
        execution.exit_status =
            execution
                .exit_status
                .clone()
                .and(ExitStatus::failed().with_description(format!(
                    "closing the reader or writer failed: {}",
                    e.report()
                )));
        execution.failures.push(std::sync::Arc::new(e));
    }
    // A context the step could not open stays as it was read, in the row its error
    // names.
    let opened = !matches!(&outcome, Err(e) if e.is::<crate::context::ContextNotOpened>());
    if let Err(e) = outcome
        && !e.is::<StepInterrupted>()
    {
        execution.failures.push(std::sync::Arc::new(e));
    }
    let saved_context = if opened {
        repository.update_step_context(execution).await
    } else {
        Ok(())
    };
    execution.end_time = Some(now());
    let saved = match saved_context {
        Ok(()) => repository.update_step_execution(execution).await,
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        // What the repository holds may not be what happened: Spring's UNKNOWN, never
        // a COMPLETED that was not saved. The status is saved once more if it can be.
        let cause = Error::new(e);
        let report = cause.report();
        tracing::error!(step = %def.name, error = %report, "saving the step's end failed");
        // How the step ended, before UNKNOWN replaces it: often the same outage's
        // first symptom (a writer cut off mid-chunk), which the error must not hide.
        let ended = match execution.exit_status.description.as_str() {
            "" => execution.status.to_string(),
            description => format!("{}: {description}", execution.status),
        };
        execution.status = BatchStatus::Unknown;
        execution.exit_status = ExitStatus::unknown().with_description(format!(
            "the end of the step could not be saved, so the job repository may not hold what happened: {report}"
        ));
        let _ = repository.update_step_execution(execution).await;
        // Typed in the job execution's failures, where this error ends up.
        return Err(Error::new(StepEndNotSaved {
            step: def.name.to_string(),
            ended,
            cause: Cause::from(cause),
        }));
    }
    execution.context.clear_dirty();
    Ok(())
}

/// Saving a step's end (its context or its execution) failed: the step and its job
/// end UNKNOWN, since the repository may not hold what happened.
#[derive(Debug, thiserror::Error)]
#[error("the end of step `{step}` ({ended}) could not be saved")]
pub struct StepEndNotSaved {
    /// The step.
    pub step: String,
    /// How the step ended, as this process saw it: its status and exit description.
    pub ended: String,
    /// The repository's error.
    #[source]
    pub cause: Cause,
}

/// A step's code panicked: the step fails with the panic's message, like any error,
/// instead of the panic leaving the execution STARTED and the launcher unwound.
#[derive(Debug, thiserror::Error)]
#[error("the step panicked: {0}")]
pub struct StepPanicked(pub String);

impl StepPanicked {
    fn from_payload(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(text) => *text,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(text) => (*text).to_owned(),
                Err(_) => "a panic without a message".to_owned(),
            },
        };
        Self(message)
    }
}

fn catch_panic(f: impl FnOnce()) -> std::result::Result<(), StepPanicked> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(StepPanicked::from_payload)
}

/// Runs a step's future, turning a panic while it is polled into [`StepPanicked`].
/// The step's parts are dropped with the future afterwards; their state is not reused
/// (the step has failed), which is what makes catching the unwind sound here.
struct CatchPanic<'a>(crate::repository::BoxFuture<'a, Result<()>>);

impl std::future::Future for CatchPanic<'_> {
    type Output = Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        let future = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => std::task::Poll::Ready(Err(StepPanicked::from_payload(payload).into())),
        }
    }
}
