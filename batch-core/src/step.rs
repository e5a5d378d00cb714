//! Steps: how a step is defined, what it can be given, and the lifecycle every step
//! shares (Spring Batch's `AbstractStep`).
//!
//! A step is defined by a factory that builds its parts when the step starts, from a
//! [`StepScope`]: the job parameters, the restored contexts and shared resources (what
//! `@StepScope` beans get in Spring). `#[step]` writes that factory from a function's
//! arguments; [`StepBuilder`] is the same thing by hand.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::chunk::{ChunkConfig, ChunkRunner, ChunkStep};
use crate::classify::ErrorMatcher;
use crate::context::{ContextState, ExecutionContext};
use crate::error::{Error, Result};
use crate::execution::{BatchStatus, ExitStatus, JobExecution, StepCounts, StepExecution, now};
use crate::fault::{Backoff, FaultToleranceSpec, RetryListener, SkipListener};
use crate::item::StepIdentity;
use crate::params::{FromParamValue, JobParameters};
use crate::repeat::CompletionPolicy;
use crate::repository::{BoxFuture, JobRepository};
use crate::tasklet::{Tasklet, TaskletRunner};

/// Shared values a launcher hands to every step (a connection pool, an HTTP client),
/// looked up by type.
#[derive(Clone, Default)]
pub struct Resources {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("count", &self.map.len())
            .finish()
    }
}

impl Resources {
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }
}

struct ScopeInner {
    identity: StepIdentity,
    parameters: JobParameters,
    job_context: ExecutionContext,
    step_context: ExecutionContext,
    resources: Resources,
    restart: bool,
}

/// What a step's factory can draw on when the step starts.
#[derive(Clone)]
pub struct StepScope {
    inner: Arc<ScopeInner>,
}

impl fmt::Debug for StepScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepScope")
            .field("step", &self.inner.identity.step_name)
            .finish()
    }
}

/// A step argument was not available or not convertible.
#[derive(Debug, thiserror::Error)]
#[error("step `{step}`: {problem}")]
pub struct InjectionError {
    pub step: String,
    pub problem: String,
}

impl StepScope {
    pub(crate) fn new(
        identity: StepIdentity,
        parameters: JobParameters,
        job_context: ExecutionContext,
        step_context: ExecutionContext,
        resources: Resources,
        restart: bool,
    ) -> Self {
        Self {
            inner: Arc::new(ScopeInner {
                identity,
                parameters,
                job_context,
                step_context,
                resources,
                restart,
            }),
        }
    }

    /// The job parameter `name` as a `T`; a missing or unconvertible parameter is an
    /// error naming the step, the parameter, its value and what was expected.
    pub fn param<T: FromParamValue>(&self, name: &str) -> Result<T> {
        self.inner.parameters.get_as(name).map_err(|e| {
            Error::new(InjectionError {
                step: self.inner.identity.step_name.clone(),
                problem: e.to_string(),
            })
        })
    }

    pub fn parameters(&self) -> &JobParameters {
        &self.inner.parameters
    }

    /// The step ExecutionContext as the step starts: on a restart, what the failed
    /// execution saved.
    pub fn step_context(&self) -> &ExecutionContext {
        &self.inner.step_context
    }

    pub fn job_context(&self) -> &ExecutionContext {
        &self.inner.job_context
    }

    pub fn identity(&self) -> &StepIdentity {
        &self.inner.identity
    }

    /// Whether this execution restarts a failed or stopped one.
    pub fn is_restart(&self) -> bool {
        self.inner.restart
    }

    pub fn resource<T: Clone + Send + Sync + 'static>(&self) -> Result<T> {
        self.inner.resources.get::<T>().ok_or_else(|| {
            Error::new(InjectionError {
                step: self.inner.identity.step_name.clone(),
                problem: format!(
                    "needs a shared resource of type `{}`, but the launcher has none; add it with `JobLauncher::resource`",
                    type_name::<T>()
                ),
            })
        })
    }
}

/// A value a step function can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a step function",
    note = "mark a job parameter with `#[param]`, or take `ExecutionContext`, `State<T>`, `Res<T>`, `JobParameters`, `StepIdentity` or `StepScope`"
)]
pub trait FromStepScope: Sized {
    fn from_scope(scope: &StepScope) -> Result<Self>;
}

impl FromStepScope for StepScope {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.clone())
    }
}

impl FromStepScope for JobParameters {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.parameters().clone())
    }
}

/// The step ExecutionContext as the step starts.
impl FromStepScope for ExecutionContext {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.step_context().clone())
    }
}

impl FromStepScope for StepIdentity {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.identity().clone())
    }
}

/// Typed state restored from the step ExecutionContext (see `#[derive(ExecutionContext)]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State<T>(pub T);

impl<T: ContextState> FromStepScope for State<T> {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(State(scope.step_context().load::<T>()?))
    }
}

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A shared resource registered with the launcher.
#[derive(Debug, Clone)]
pub struct Res<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromStepScope for Res<T> {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        scope.resource::<T>().map(Res)
    }
}

impl<T> std::ops::Deref for Res<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a step function builds: the parts of a chunk step or a tasklet. It keeps
/// [`IntoStepOutput`] unambiguous (a `Result` is never a step's parts), and needs no
/// implementing by hand: every [`Tasklet`] and every chunk spec has it.
pub trait StepOutput {}

impl<T: Tasklet> StepOutput for T {}

/// Lets a step function return its parts either plainly or in a `Result`.
#[diagnostic::on_unimplemented(
    message = "a step function must return its parts (a chunk step or a tasklet), or a `Result` of them whose error converts into `batch::Error`",
    label = "`{Self}` is neither",
    note = "an error type converts when it implements `std::error::Error + Send + Sync + 'static`"
)]
pub trait IntoStepOutput<X> {
    fn into_step_output(self) -> Result<X>;
}

impl<X: StepOutput> IntoStepOutput<X> for X {
    fn into_step_output(self) -> Result<X> {
        Ok(self)
    }
}

impl<X: StepOutput, E: Into<Error>> IntoStepOutput<X> for std::result::Result<X, E> {
    fn into_step_output(self) -> Result<X> {
        self.map_err(Into::into)
    }
}

/// Hooks around a step execution.
pub trait StepExecutionListener: Send + Sync {
    fn before_step(&self, _step: &mut StepExecution) {}
    /// May replace the exit status (it is combined with the step's by `ExitStatus::and`).
    fn after_step(&self, _step: &mut StepExecution) -> Option<ExitStatus> {
        None
    }
}

/// Hooks around each chunk (each transaction of a step).
pub trait ChunkListener: Send + Sync {
    fn before_chunk(&self, _step: &StepExecution) {}
    /// After the chunk committed.
    fn after_chunk(&self, _step: &StepExecution) {}
    /// After the chunk rolled back.
    fn after_chunk_error(&self, _step: &StepExecution, _error: &Error) {}
}

/// The listeners a step runs with: its own and the launcher's.
#[derive(Clone, Default)]
pub struct StepListeners {
    pub step: Vec<Arc<dyn StepExecutionListener>>,
    pub chunk: Vec<Arc<dyn ChunkListener>>,
}

impl StepListeners {
    pub(crate) fn merged(&self, other: &StepListeners) -> StepListeners {
        StepListeners {
            step: self.step.iter().chain(&other.step).cloned().collect(),
            chunk: self.chunk.iter().chain(&other.chunk).cloned().collect(),
        }
    }
}

/// Asks running steps to stop at their next chunk boundary.
#[derive(Clone, Default, Debug)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a running step works with besides its parts.
pub struct StepRuntime<'a> {
    pub execution: &'a mut StepExecution,
    pub repository: &'a dyn JobRepository,
    pub listeners: &'a StepListeners,
    pub identity: &'a StepIdentity,
    pub stop: &'a StopSignal,
}

/// A step stopped on request at a chunk boundary.
#[derive(Debug, thiserror::Error)]
#[error("step `{0}` was stopped on request")]
pub struct StepInterrupted(pub String);

/// The part of a step that differs between kinds: building the parts from the scope
/// and running the chunk or tasklet loop.
pub trait StepRunner: Send + Sync {
    fn run<'a>(&'a self, scope: StepScope, rt: StepRuntime<'a>) -> BoxFuture<'a, Result<()>>;
}

/// A configured step, ready to be placed in a flow.
#[derive(Clone)]
pub struct StepDef {
    pub(crate) name: Arc<str>,
    pub(crate) start_limit: u32,
    pub(crate) allow_start_if_complete: bool,
    pub(crate) listeners: StepListeners,
    pub(crate) runner: Arc<dyn StepRunner>,
}

impl fmt::Debug for StepDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepDef")
            .field("name", &self.name)
            .field("start_limit", &self.start_limit)
            .field("allow_start_if_complete", &self.allow_start_if_complete)
            .finish()
    }
}

impl StepDef {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn start_limit(&self) -> u32 {
        self.start_limit
    }
    pub fn allow_start_if_complete(&self) -> bool {
        self.allow_start_if_complete
    }
}

/// Anything that gives a step: a [`StepDef`], or the companion of a `#[step]` function.
pub trait IntoStep {
    fn into_step(self) -> StepDef;
}

impl IntoStep for StepDef {
    fn into_step(self) -> StepDef {
        self
    }
}

/// Builds a step by hand (what `#[step]` expands to).
///
/// ```
/// # use batch_core::prelude::*;
/// # use batch_core::step::StepBuilder;
/// let step = StepBuilder::new("copy")
///     .chunk_size(100)
///     .chunk(|_scope| async {
///         Ok(chunk(ListReader::new(vec![1, 2, 3]), |n: &i32| Ok::<_, Error>(Some(n * 2)), |_: &[i32]| Ok::<_, Error>(())))
///     });
/// assert_eq!(step.name(), "copy");
/// ```
pub struct StepBuilder {
    name: String,
    chunk_size: u64,
    chunk_size_param: Option<String>,
    completion: Completion,
    start_limit: u32,
    allow_start_if_complete: bool,
    listeners: StepListeners,
    fault: FaultToleranceSpec,
    skip_listeners: Vec<ErasedSkipListener>,
}

/// When a chunk is complete.
#[derive(Clone)]
pub(crate) enum Completion {
    /// After the chunk size (the default).
    Size,
    /// After the chunk size, or once the chunk has taken this long.
    SizeOrTimeout(Duration),
    /// As a custom policy says.
    Policy(Arc<dyn CompletionPolicy>),
}

/// A `SkipListener<I, O>` whose item types are checked when the step is built for
/// its reader and writer (the builder itself does not know them).
pub(crate) type ErasedSkipListener = Arc<dyn Any + Send + Sync>;

impl StepBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            chunk_size: 1,
            chunk_size_param: None,
            completion: Completion::Size,
            start_limit: u32::MAX,
            allow_start_if_complete: false,
            listeners: StepListeners::default(),
            fault: FaultToleranceSpec::default(),
            skip_listeners: Vec::new(),
        }
    }

    /// Takes the chunk size from the job parameter `name` when the launch gives it
    /// (`chunk=50,long`), else uses [`chunk_size`](Self::chunk_size).
    pub fn chunk_size_param(mut self, name: &str) -> Self {
        self.chunk_size_param = Some(name.to_owned());
        self
    }

    /// A chunk is also complete once it has taken `timeout`, full or not.
    pub fn chunk_timeout(mut self, timeout: Duration) -> Self {
        self.completion = Completion::SizeOrTimeout(timeout);
        self
    }

    /// A custom policy decides when a chunk is complete (the chunk size still sets how
    /// much room a chunk's buffer starts with).
    pub fn completion_policy(mut self, policy: impl CompletionPolicy + 'static) -> Self {
        self.completion = Completion::Policy(Arc::new(policy));
        self
    }

    fn fault_tolerant(mut self, f: impl FnOnce(&mut FaultToleranceSpec)) -> Self {
        self.fault.enabled = true;
        f(&mut self.fault);
        self
    }

    /// Retry errors that match (found anywhere in the source chain).
    pub fn retry(self, matcher: ErrorMatcher) -> Self {
        self.fault_tolerant(|f| f.retry.push(matcher))
    }

    /// Never retry errors that match, even when `retry` matches them too.
    pub fn no_retry(self, matcher: ErrorMatcher) -> Self {
        self.fault_tolerant(|f| f.no_retry.push(matcher))
    }

    /// Total attempts per item (processor) or chunk (writer), the first included.
    pub fn retry_limit(self, limit: u32) -> Self {
        self.fault_tolerant(|f| f.retry_limit = Some(limit))
    }

    pub fn backoff(self, backoff: Backoff) -> Self {
        self.fault_tolerant(|f| f.backoff = backoff)
    }

    /// Skip items whose errors match.
    pub fn skip(self, matcher: ErrorMatcher) -> Self {
        self.fault_tolerant(|f| f.skip.push(matcher))
    }

    /// Never skip errors that match, even when `skip` matches them too.
    pub fn no_skip(self, matcher: ErrorMatcher) -> Self {
        self.fault_tolerant(|f| f.no_skip.push(matcher))
    }

    /// How many items the step may skip in all (default 10).
    pub fn skip_limit(self, limit: u64) -> Self {
        self.fault_tolerant(|f| f.skip_limit = Some(limit))
    }

    /// Errors that leave the chunk's transaction to commit.
    pub fn no_rollback(self, matcher: ErrorMatcher) -> Self {
        self.fault_tolerant(|f| f.no_rollback.push(matcher))
    }

    /// Cache each item's processor output across retries and scans, so each item is
    /// processed once (for processors with side effects or high cost).
    pub fn processor_non_transactional(self) -> Self {
        self.fault_tolerant(|f| f.processor_non_transactional = true)
    }

    /// A retry listener (it hears nothing unless the step retries, i.e. is configured
    /// with `retry`).
    pub fn retry_listener(mut self, listener: Arc<dyn RetryListener>) -> Self {
        self.fault.retry_listeners.push(listener);
        self
    }

    /// A skip listener for a step reading `I` and writing `O` (it hears nothing unless
    /// the step skips, i.e. is configured with `skip`).
    pub fn skip_listener<I: 'static, O: 'static>(
        mut self,
        listener: Arc<dyn SkipListener<I, O>>,
    ) -> Self {
        self.skip_listeners.push(Arc::new(listener));
        self
    }

    /// Items per chunk (the commit interval).
    pub fn chunk_size(mut self, size: u64) -> Self {
        self.chunk_size = size.max(1);
        self
    }

    /// How many times the step may be started within one job instance.
    pub fn start_limit(mut self, limit: u32) -> Self {
        self.start_limit = limit;
        self
    }

    /// Run the step again on restart even when it completed before.
    pub fn allow_start_if_complete(mut self, allow: bool) -> Self {
        self.allow_start_if_complete = allow;
        self
    }

    pub fn listener(mut self, listener: Arc<dyn StepExecutionListener>) -> Self {
        self.listeners.step.push(listener);
        self
    }

    pub fn chunk_listener(mut self, listener: Arc<dyn ChunkListener>) -> Self {
        self.listeners.chunk.push(listener);
        self
    }

    /// A chunk-oriented step whose reader, processor and writer `factory` builds.
    pub fn chunk<F, Fut, S, I, O>(self, factory: F) -> StepDef
    where
        F: Fn(StepScope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S>> + Send + 'static,
        S: ChunkStep<I, O> + 'static,
        I: Send + Sync + 'static,
        O: Send + Sync + 'static,
    {
        let runner = ChunkRunner::new(
            factory,
            ChunkConfig {
                size: self.chunk_size,
                size_param: self.chunk_size_param.clone(),
                completion: self.completion.clone(),
                fault: self.fault.build(),
                skip_listeners: self.skip_listeners.clone(),
            },
        );
        self.finish(Arc::new(runner))
    }

    /// A tasklet step: `factory` builds the tasklet, which is called until it says
    /// FINISHED, each call in its own transaction.
    pub fn tasklet<F, Fut, T>(self, factory: F) -> StepDef
    where
        F: Fn(StepScope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Tasklet + 'static,
    {
        if self.fault.enabled {
            // `#[step]` refuses this at compile time; a step built by hand is told here.
            tracing::warn!(
                step = %self.name,
                "retry, skip and no_rollback apply to chunk steps only; this tasklet step ignores them"
            );
        }
        self.finish(Arc::new(TaskletRunner::new(factory)))
    }

    fn finish(self, runner: Arc<dyn StepRunner>) -> StepDef {
        StepDef {
            name: self.name.into(),
            start_limit: self.start_limit,
            allow_start_if_complete: self.allow_start_if_complete,
            listeners: self.listeners,
            runner,
        }
    }
}

/// The step would exceed its start limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "step `{step}` has already been started {count} time(s) in this job instance; its start limit is {limit}"
)]
pub struct StartLimitExceeded {
    pub step: String,
    pub count: u64,
    pub limit: u32,
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
            return Err(Error::msg(format!(
                "step `{}` of the last execution ended in status UNKNOWN; it cannot be restarted safely",
                def.name
            )));
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
    };
    repository.add_step_execution(&mut execution).await?;
    let identity = StepIdentity {
        job_name: job.instance.job_name.clone(),
        job_instance_id: job.instance.id,
        job_execution_id: job.id,
        step_name: def.name.to_string(),
        step_execution_id: execution.id,
    };
    let scope = StepScope::new(
        identity.clone(),
        job.parameters.clone(),
        job.context.clone(),
        execution.context.clone(),
        resources.clone(),
        restart,
    );
    let listeners = def.listeners.merged(extra);
    execute_step(
        def,
        scope,
        &mut execution,
        repository,
        &listeners,
        &identity,
        stop,
    )
    .await?;
    Ok(StepOutcome::Ran(execution))
}

/// The lifecycle every step shares (Spring's `AbstractStep.execute`): mark it
/// STARTED, run it, set status and exit status from the outcome, let the listeners
/// have their say, save the context as it stands (also after a failure, so a restart
/// resumes from it), then the execution itself.
async fn execute_step(
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
    repository.update_step_execution(execution).await?;
    for l in &listeners.step {
        l.before_step(execution);
    }
    let outcome = def
        .runner
        .run(
            scope,
            StepRuntime {
                execution: &mut *execution,
                repository,
                listeners,
                identity,
                stop,
            },
        )
        .await;
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
            tracing::error!(step = %def.name, error = %e.report(), "step failed");
            execution.status = BatchStatus::Failed;
            ExitStatus::failed().with_description(e.report())
        }
    };
    // A listener may have set a custom code during the run; it counts when it is more
    // severe (Spring combines them the same way).
    if execution.exit_status.code != ExitStatus::EXECUTING {
        exit = exit.and(execution.exit_status.clone());
    }
    execution.exit_status = exit;
    for l in &listeners.step {
        if let Some(s) = l.after_step(execution) {
            execution.exit_status = execution.exit_status.clone().and(s);
        }
    }
    let saved_context = repository.update_step_context(execution).await;
    execution.end_time = Some(now());
    repository.update_step_execution(execution).await?;
    saved_context?;
    execution.context.clear_dirty();
    Ok(())
}
