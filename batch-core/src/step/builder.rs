//! Configuring a step by hand (what `#[step]` expands to) and the configured step a
//! flow holds.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::classify::ErrorMatcher;
use crate::error::Result;
use crate::fault::{Backoff, FaultToleranceSpec, RetryListener, SkipListener};
use crate::repeat::CompletionPolicy;
use crate::step::boundary::StepRunner;
use crate::step::chunk::listened::ItemListeners;
use crate::step::chunk::{ChunkConfig, ChunkRunner, ChunkStep, Completion, ErasedSkipListener};
use crate::step::listener::{
    ChunkListener, ItemProcessListener, ItemReadListener, ItemWriteListener, StepExecutionListener,
    StepListeners,
};
use crate::step::scope::{ResourceNeed, StepScope};
use crate::step::tasklet::{Tasklet, TaskletRunner};

/// A configured step, ready to be placed in a flow.
#[derive(Clone)]
pub struct StepDef {
    pub(crate) name: Arc<str>,
    pub(crate) start_limit: u32,
    pub(crate) allow_start_if_complete: bool,
    pub(crate) listeners: StepListeners,
    pub(crate) runner: Arc<dyn StepRunner>,
    /// Step context keys copied into the job context when the step completes.
    pub(crate) promote: Arc<[String]>,
    /// The shared resources its factory needs from the launcher.
    pub(crate) needs: Arc<[ResourceNeed]>,
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
    /// The shared resources the step needs from its launcher.
    pub fn needs(&self) -> &[ResourceNeed] {
        &self.needs
    }

    /// The step's name (STEP_NAME).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// How many times the step may start in one job instance.
    pub fn start_limit(&self) -> u32 {
        self.start_limit
    }
    /// Whether the step runs again in a restart after it completed.
    pub fn allow_start_if_complete(&self) -> bool {
        self.allow_start_if_complete
    }
}

/// Anything that gives a step: a [`StepDef`], or the companion of a `#[step]` function.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step",
    label = "a step is expected here",
    note = "a `#[step] fn name` gives its step as the value `name {{}}`: write `Flow::start(name {{}})` or `.next(name {{}})`, with the braces",
    note = "a step built by hand is a `StepDef`: `StepBuilder::new(\"name\")…chunk(…)` or `…tasklet(…)`"
)]
pub trait IntoStep {
    /// The configured step.
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
    item_listeners: ItemListeners,
    promote: Vec<String>,
    needs: Vec<ResourceNeed>,
}

impl StepBuilder {
    /// A step named `name`: chunk size 1, no start limit, not fault tolerant.
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
            item_listeners: ItemListeners::default(),
            promote: Vec::new(),
            needs: Vec::new(),
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

    /// The pause before each retry (`retry` and `retry_limit` say what is retried).
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

    /// An item read listener for a chunk step reading `I` (a step of other item
    /// types fails when it starts, naming both).
    pub fn item_read_listener<I: 'static>(
        mut self,
        listener: Arc<dyn ItemReadListener<I>>,
    ) -> Self {
        self.item_listeners.read.push(Arc::new(listener));
        self
    }

    /// An item process listener for a chunk step processing `I` into `O`.
    pub fn item_process_listener<I: 'static, O: 'static>(
        mut self,
        listener: Arc<dyn ItemProcessListener<I, O>>,
    ) -> Self {
        self.item_listeners.process.push(Arc::new(listener));
        self
    }

    /// An item write listener for a chunk step writing `O`.
    pub fn item_write_listener<O: 'static>(
        mut self,
        listener: Arc<dyn ItemWriteListener<O>>,
    ) -> Self {
        self.item_listeners.write.push(Arc::new(listener));
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

    /// Adds a listener to this step's executions.
    pub fn listener(mut self, listener: Arc<dyn StepExecutionListener>) -> Self {
        self.listeners.step.push(listener);
        self
    }

    /// Adds a listener to this step's chunks.
    pub fn chunk_listener(mut self, listener: Arc<dyn ChunkListener>) -> Self {
        self.listeners.chunk.push(listener);
        self
    }

    /// A chunk-oriented step whose reader, processor and writer `factory` builds. The
    /// factory is `FnMut`: it may move an input into the first run (see
    /// [`Once`](crate::step::Once)).
    pub fn chunk<F, Fut, S, I, O>(self, factory: F) -> StepDef
    where
        F: FnMut(StepScope) -> Fut + Send + 'static,
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
                item_listeners: self.item_listeners.clone(),
            },
        );
        self.finish(Arc::new(runner))
    }

    /// A tasklet step: `factory` builds the tasklet, which is called until it says
    /// FINISHED, each call in its own transaction.
    pub fn tasklet<F, Fut, T>(self, factory: F) -> StepDef
    where
        F: FnMut(StepScope) -> Fut + Send + 'static,
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
            promote: self.promote.into(),
            needs: self.needs.into(),
        }
    }

    /// Declares a shared resource the step's factory takes from the launcher
    /// (`#[step]` declares each `Res<T>` argument): a launch without it is refused
    /// before anything is written. `None` declares nothing.
    pub fn requires(mut self, need: Option<ResourceNeed>) -> Self {
        if let Some(need) = need
            && !self.needs.contains(&need)
        {
            self.needs.push(need);
        }
        self
    }

    /// Copies these keys of the step context into the job context when the step
    /// completes (Spring's `ExecutionContextPromotionListener`): later steps read them
    /// from the job context (`scope.job_context()`), and a restart finds them there.
    /// A key the step context does not hold is left out.
    pub fn promote<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.promote.extend(keys.into_iter().map(Into::into));
        self
    }
}
