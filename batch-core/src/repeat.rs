//! Repeat loops: the machinery under both the step loop (one chunk per iteration) and
//! the chunk loop (one read per iteration), as in Spring Batch's `RepeatTemplate`.
//!
//! A loop asks three things after each iteration: did the callback say
//! [`RepeatStatus::Finished`], does the [`CompletionPolicy`] say the loop is complete,
//! and, when the callback failed, does the [`ExceptionHandler`] rethrow. The step
//! engine drives the loop one iteration at a time through [`RepeatTemplate::start`],
//! [`RepeatTemplate::before`] and [`RepeatTemplate::after`], so the per-item chunk loop
//! costs no allocation; [`RepeatTemplate::iterate`] runs a whole loop over a callback.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::classify::{Classifier, ErrorMatcher};
use crate::error::{Error, Result};

/// What an iteration says about the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatStatus {
    /// There is more work.
    Continuable,
    /// Nothing more to do.
    Finished,
}

impl RepeatStatus {
    /// `Continuable` when `more`, else `Finished`.
    pub fn continue_if(more: bool) -> Self {
        if more {
            Self::Continuable
        } else {
            Self::Finished
        }
    }

    /// Whether there is more work.
    pub fn is_continuable(self) -> bool {
        self == Self::Continuable
    }

    /// Continuable only if both are.
    pub fn and(self, other: bool) -> Self {
        Self::continue_if(self.is_continuable() && other)
    }
}

struct ContextInner {
    parent: Option<RepeatContext>,
    /// Shared by a context and all contexts nested in it: set once any of them is asked
    /// to complete or terminate, so the per-item check is a single load until then.
    any_marked: Arc<AtomicBool>,
    started: AtomicU64,
    complete_only: AtomicBool,
    terminate_only: AtomicBool,
    start_time: Instant,
    attributes: Mutex<HashMap<String, Value>>,
}

/// The state of one loop: how many iterations started, whether it was asked to
/// stop, attributes, and the context of the enclosing loop. Cheap to clone (shared).
#[derive(Clone)]
pub struct RepeatContext {
    inner: Arc<ContextInner>,
}

impl fmt::Debug for RepeatContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepeatContext")
            .field("started", &self.started_count())
            .field("complete_only", &self.is_complete_only())
            .finish()
    }
}

impl RepeatContext {
    /// A fresh context, nested in `parent` when given (so that completing the outer
    /// loop also completes this one).
    pub fn new(parent: Option<&RepeatContext>) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                any_marked: parent
                    .map(|p| p.inner.any_marked.clone())
                    .unwrap_or_else(|| Arc::new(AtomicBool::new(false))),
                parent: parent.cloned(),
                started: AtomicU64::new(0),
                complete_only: AtomicBool::new(false),
                terminate_only: AtomicBool::new(false),
                start_time: Instant::now(),
                attributes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The context of the enclosing loop.
    pub fn parent(&self) -> Option<&RepeatContext> {
        self.inner.parent.as_ref()
    }

    /// Iterations started so far.
    #[inline]
    pub fn started_count(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Counts an iteration as started; a policy's `update` calls it as each one starts.
    #[inline]
    pub fn increment(&self) {
        // One loop drives its context, so a plain load and store suffice (no locked
        // read-modify-write on the per-item path).
        let n = self.inner.started.load(Ordering::Relaxed);
        self.inner.started.store(n + 1, Ordering::Relaxed);
    }

    /// Finish after the current iteration, normally.
    pub fn set_complete_only(&self) {
        self.inner.complete_only.store(true, Ordering::Relaxed);
        self.inner.any_marked.store(true, Ordering::Relaxed);
    }

    /// Whether [`set_complete_only`](Self::set_complete_only) was called.
    pub fn is_complete_only(&self) -> bool {
        self.inner.complete_only.load(Ordering::Relaxed)
    }

    /// Finish after the current iteration, abnormally.
    pub fn set_terminate_only(&self) {
        self.inner.terminate_only.store(true, Ordering::Relaxed);
        self.inner.any_marked.store(true, Ordering::Relaxed);
    }

    /// Whether [`set_terminate_only`](Self::set_terminate_only) was called.
    pub fn is_terminate_only(&self) -> bool {
        self.inner.terminate_only.load(Ordering::Relaxed)
    }

    /// Time since the loop started.
    pub fn elapsed(&self) -> Duration {
        self.inner.start_time.elapsed()
    }

    /// Whether this loop or any enclosing loop was asked to complete.
    #[inline]
    pub fn is_marked_complete(&self) -> bool {
        if !self.inner.any_marked.load(Ordering::Relaxed) {
            return false;
        }
        let mut ctx = Some(self);
        while let Some(c) = ctx {
            if c.is_complete_only() || c.is_terminate_only() {
                return true;
            }
            ctx = c.parent();
        }
        false
    }

    /// Sets a value for policies and handlers that keep state in the loop (counts).
    pub fn set_attribute(&self, key: impl Into<String>, value: Value) {
        self.inner
            .attributes
            .lock()
            .expect("attributes lock")
            .insert(key.into(), value);
    }

    /// The value set under `key`.
    pub fn attribute(&self, key: &str) -> Option<Value> {
        self.inner
            .attributes
            .lock()
            .expect("attributes lock")
            .get(key)
            .cloned()
    }

    /// Removes and returns the value set under `key`.
    pub fn remove_attribute(&self, key: &str) -> Option<Value> {
        self.inner
            .attributes
            .lock()
            .expect("attributes lock")
            .remove(key)
    }
}

/// Decides when a loop is complete.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a completion policy",
    label = "this must implement `CompletionPolicy`",
    note = "use SimpleCompletionPolicy, TimeoutTerminationPolicy, CountingCompletionPolicy, CompositeCompletionPolicy, or implement `CompletionPolicy`"
)]
pub trait CompletionPolicy: Send + Sync {
    /// A fresh context for a new loop.
    fn start(&self, parent: Option<&RepeatContext>) -> RepeatContext {
        RepeatContext::new(parent)
    }
    /// Complete given the result of the last iteration.
    fn is_complete_with(&self, ctx: &RepeatContext, result: RepeatStatus) -> bool {
        !result.is_continuable() || self.is_complete(ctx)
    }
    /// Complete without waiting for a result.
    fn is_complete(&self, ctx: &RepeatContext) -> bool;
    /// Called as each iteration starts.
    fn update(&self, ctx: &RepeatContext) {
        ctx.increment();
    }
    /// `Some(n)` for a policy that completes after exactly `n` iterations, or on
    /// FINISHED, and looks at nothing else: a loop may then count for itself.
    fn fixed_count(&self) -> Option<u64> {
        None
    }
}

impl<P: CompletionPolicy + ?Sized> CompletionPolicy for Box<P> {
    fn start(&self, parent: Option<&RepeatContext>) -> RepeatContext {
        (**self).start(parent)
    }
    fn is_complete_with(&self, ctx: &RepeatContext, result: RepeatStatus) -> bool {
        (**self).is_complete_with(ctx, result)
    }
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        (**self).is_complete(ctx)
    }
    fn update(&self, ctx: &RepeatContext) {
        (**self).update(ctx)
    }
    fn fixed_count(&self) -> Option<u64> {
        (**self).fixed_count()
    }
}

impl<P: CompletionPolicy + ?Sized> CompletionPolicy for Arc<P> {
    fn start(&self, parent: Option<&RepeatContext>) -> RepeatContext {
        (**self).start(parent)
    }
    fn is_complete_with(&self, ctx: &RepeatContext, result: RepeatStatus) -> bool {
        (**self).is_complete_with(ctx, result)
    }
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        (**self).is_complete(ctx)
    }
    fn update(&self, ctx: &RepeatContext) {
        (**self).update(ctx)
    }
    fn fixed_count(&self) -> Option<u64> {
        (**self).fixed_count()
    }
}

/// Complete only when an iteration says FINISHED (the step loop's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResultCompletionPolicy;

impl CompletionPolicy for DefaultResultCompletionPolicy {
    fn is_complete(&self, _ctx: &RepeatContext) -> bool {
        false
    }
}

/// Complete after a fixed number of iterations, or on FINISHED (the chunk size).
#[derive(Debug, Clone, Copy)]
pub struct SimpleCompletionPolicy {
    /// Iterations per loop.
    pub chunk_size: u64,
}

impl SimpleCompletionPolicy {
    /// Complete after `chunk_size` iterations.
    pub fn new(chunk_size: u64) -> Self {
        Self { chunk_size }
    }
}

impl CompletionPolicy for SimpleCompletionPolicy {
    #[inline]
    fn is_complete_with(&self, ctx: &RepeatContext, result: RepeatStatus) -> bool {
        !result.is_continuable() || self.is_complete(ctx)
    }
    #[inline]
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        ctx.started_count() >= self.chunk_size
    }
    fn fixed_count(&self) -> Option<u64> {
        Some(self.chunk_size)
    }
}

/// Complete once the loop has run longer than a timeout, or on FINISHED.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutTerminationPolicy {
    /// How long the loop may run.
    pub timeout: Duration,
}

impl TimeoutTerminationPolicy {
    /// Complete once `timeout` has passed.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl CompletionPolicy for TimeoutTerminationPolicy {
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        ctx.elapsed() >= self.timeout
    }
}

/// Complete when any delegate is; a composite with no delegates never completes.
#[derive(Default)]
pub struct CompositeCompletionPolicy {
    policies: Vec<Box<dyn CompletionPolicy>>,
}

impl CompositeCompletionPolicy {
    /// Complete when any of `policies` is.
    pub fn new(policies: Vec<Box<dyn CompletionPolicy>>) -> Self {
        Self { policies }
    }
}

impl CompletionPolicy for CompositeCompletionPolicy {
    fn is_complete_with(&self, ctx: &RepeatContext, result: RepeatStatus) -> bool {
        self.policies
            .iter()
            .any(|p| p.is_complete_with(ctx, result))
    }
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        self.policies.iter().any(|p| p.is_complete(ctx))
    }
}

/// Complete once a count reaches `max`. Each iteration adds what `delta` says (1 by
/// default, or e.g. the bytes an iteration handled); the count lives in the loop's
/// context, or with [`use_parent`](Self::use_parent) in the enclosing loop's, where it
/// carries over from one inner loop to the next.
pub struct CountingCompletionPolicy {
    max: u64,
    use_parent: bool,
    delta: Box<dyn Fn(&RepeatContext) -> u64 + Send + Sync>,
}

impl fmt::Debug for CountingCompletionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingCompletionPolicy")
            .field("max", &self.max)
            .field("use_parent", &self.use_parent)
            .finish()
    }
}

const COUNT_KEY: &str = "CountingCompletionPolicy.COUNT";

impl CountingCompletionPolicy {
    /// Complete once the count reaches `max` (each iteration adds 1 unless
    /// [`counting`](Self::counting) says otherwise).
    pub fn new(max: u64) -> Self {
        Self {
            max,
            use_parent: false,
            delta: Box::new(|_| 1),
        }
    }

    /// Keep the count in the enclosing loop's context, so it carries over from one inner
    /// loop to the next.
    pub fn use_parent(mut self, use_parent: bool) -> Self {
        self.use_parent = use_parent;
        self
    }

    /// How much each iteration adds to the count.
    pub fn counting(
        mut self,
        delta: impl Fn(&RepeatContext) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.delta = Box::new(delta);
        self
    }

    fn holder<'a>(&self, ctx: &'a RepeatContext) -> &'a RepeatContext {
        if self.use_parent {
            ctx.parent().unwrap_or(ctx)
        } else {
            ctx
        }
    }

    /// The count so far.
    pub fn count(&self, ctx: &RepeatContext) -> u64 {
        self.holder(ctx)
            .attribute(COUNT_KEY)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }
}

impl CompletionPolicy for CountingCompletionPolicy {
    fn is_complete(&self, ctx: &RepeatContext) -> bool {
        self.count(ctx) >= self.max
    }

    fn update(&self, ctx: &RepeatContext) {
        ctx.increment();
        let count = self.count(ctx) + (self.delta)(ctx);
        self.holder(ctx).set_attribute(COUNT_KEY, count.into());
    }
}

/// Decides what an error from an iteration does to the loop: `Err` ends the loop
/// with that error, `Ok` swallows it and the loop goes on.
pub trait ExceptionHandler: Send + Sync {
    /// Decides on `error`, raised in the loop whose context is `ctx`.
    fn handle(&self, ctx: &RepeatContext, error: Error) -> Result<()>;
}

/// Rethrows every error (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultExceptionHandler;

impl ExceptionHandler for DefaultExceptionHandler {
    fn handle(&self, _ctx: &RepeatContext, error: Error) -> Result<()> {
        Err(error)
    }
}

/// Counts errors per kind and rethrows one once its kind has been seen more often
/// than its threshold. Kinds without a threshold are rethrown at once. The counts live
/// in the loop's context (or, with [`use_parent`](Self::use_parent), in the enclosing
/// loop's, so they carry over from one inner loop to the next).
#[derive(Clone, Debug)]
pub struct RethrowOnThresholdExceptionHandler {
    classifier: Classifier<Option<usize>>,
    thresholds: Vec<u64>,
    use_parent: bool,
}

impl Default for RethrowOnThresholdExceptionHandler {
    fn default() -> Self {
        Self {
            classifier: Classifier::new(None),
            thresholds: Vec::new(),
            use_parent: false,
        }
    }
}

impl RethrowOnThresholdExceptionHandler {
    /// A handler that rethrows every error until thresholds are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Errors matching `matcher` are tolerated `threshold` times.
    pub fn threshold(mut self, matcher: ErrorMatcher, threshold: u64) -> Self {
        self.classifier.push(matcher, Some(self.thresholds.len()));
        self.thresholds.push(threshold);
        self
    }

    /// Count in the enclosing loop's context, so the counts carry over from one inner
    /// loop to the next.
    pub fn use_parent(mut self, use_parent: bool) -> Self {
        self.use_parent = use_parent;
        self
    }
}

impl ExceptionHandler for RethrowOnThresholdExceptionHandler {
    fn handle(&self, ctx: &RepeatContext, error: Error) -> Result<()> {
        let Some(kind) = self.classifier.classify(&error) else {
            return Err(error);
        };
        let holder = if self.use_parent {
            ctx.parent().unwrap_or(ctx)
        } else {
            ctx
        };
        let key = format!("RethrowOnThresholdExceptionHandler.{kind}");
        let count = holder.attribute(&key).and_then(|v| v.as_u64()).unwrap_or(0) + 1;
        holder.set_attribute(key, count.into());
        if count > self.thresholds[kind] {
            Err(error)
        } else {
            Ok(())
        }
    }
}

/// Swallows up to `limit` errors of the listed kinds (any error by default) and
/// rethrows the next; `fatal` kinds are rethrown at once.
#[derive(Clone, Debug)]
pub struct SimpleLimitExceptionHandler {
    limit: u64,
    kinds: Vec<ErrorMatcher>,
    fatal: Vec<ErrorMatcher>,
    use_parent: bool,
}

impl SimpleLimitExceptionHandler {
    /// Swallows up to `limit` errors of any kind.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            kinds: vec![ErrorMatcher::any()],
            fatal: Vec::new(),
            use_parent: false,
        }
    }

    /// Only these kinds are counted; others are rethrown at once.
    pub fn kinds(mut self, kinds: Vec<ErrorMatcher>) -> Self {
        self.kinds = kinds;
        self
    }

    /// Kinds rethrown at once, even when [`kinds`](Self::kinds) also lists them.
    pub fn fatal(mut self, fatal: Vec<ErrorMatcher>) -> Self {
        self.fatal = fatal;
        self
    }

    /// Count in the enclosing loop's context.
    pub fn use_parent(mut self, use_parent: bool) -> Self {
        self.use_parent = use_parent;
        self
    }

    fn delegate(&self) -> RethrowOnThresholdExceptionHandler {
        let mut d = RethrowOnThresholdExceptionHandler::new().use_parent(self.use_parent);
        for k in &self.kinds {
            d = d.threshold(k.clone(), self.limit);
        }
        for f in &self.fatal {
            d = d.threshold(f.clone(), 0);
        }
        d
    }
}

impl ExceptionHandler for SimpleLimitExceptionHandler {
    fn handle(&self, ctx: &RepeatContext, error: Error) -> Result<()> {
        self.delegate().handle(ctx, error)
    }
}

/// What [`LogOrRethrowExceptionHandler`] does with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOrRethrow {
    /// End the loop with the error.
    Rethrow,
    /// Log at ERROR and go on.
    Error,
    /// Log at WARN and go on.
    Warn,
    /// Log at DEBUG and go on.
    Debug,
}

/// Rethrows errors the classifier says to rethrow (and unclassified ones); logs the
/// others at the level it names and lets the loop go on.
#[derive(Clone, Debug)]
pub struct LogOrRethrowExceptionHandler {
    classifier: Classifier<LogOrRethrow>,
}

impl Default for LogOrRethrowExceptionHandler {
    fn default() -> Self {
        Self {
            classifier: Classifier::new(LogOrRethrow::Rethrow),
        }
    }
}

impl LogOrRethrowExceptionHandler {
    /// A handler that rethrows every error until rules are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Errors `matcher` matches get `action`; a later rule wins over an earlier one.
    pub fn on(mut self, matcher: ErrorMatcher, action: LogOrRethrow) -> Self {
        self.classifier.push(matcher, action);
        self
    }
}

impl ExceptionHandler for LogOrRethrowExceptionHandler {
    fn handle(&self, _ctx: &RepeatContext, error: Error) -> Result<()> {
        match self.classifier.classify(&error) {
            LogOrRethrow::Rethrow => return Err(error),
            LogOrRethrow::Error => tracing::error!(error = %error.report(), "error in repeat loop"),
            LogOrRethrow::Warn => tracing::warn!(error = %error.report(), "error in repeat loop"),
            LogOrRethrow::Debug => tracing::debug!(error = %error.report(), "error in repeat loop"),
        }
        Ok(())
    }
}

/// Hooks around each iteration of a loop.
pub trait RepeatListener: Send + Sync {
    /// When the loop starts.
    fn open(&self, _ctx: &RepeatContext) {}
    /// Before each iteration.
    fn before(&self, _ctx: &RepeatContext) {}
    /// After each iteration that succeeded.
    fn after(&self, _ctx: &RepeatContext, _result: RepeatStatus) {}
    /// After each iteration that failed, before the exception handler decides.
    fn on_error(&self, _ctx: &RepeatContext, _error: &Error) {}
    /// When the loop ends, however it ends.
    fn close(&self, _ctx: &RepeatContext) {}
}

/// A loop: completion policy, exception handler and listeners. The policy type is a
/// parameter so that a loop over a known policy (the chunk loop's fixed size) is
/// dispatched statically on its per-item path; `RepeatTemplate` alone holds any policy.
pub struct RepeatTemplate<P = Box<dyn CompletionPolicy>> {
    policy: P,
    handler: Box<dyn ExceptionHandler>,
    /// The handler is the default one, which rethrows every error.
    rethrows: bool,
    listeners: Vec<Arc<dyn RepeatListener>>,
}

impl Default for RepeatTemplate {
    fn default() -> Self {
        RepeatTemplate::new(Box::new(DefaultResultCompletionPolicy) as Box<dyn CompletionPolicy>)
    }
}

impl<P> fmt::Debug for RepeatTemplate<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepeatTemplate")
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// What [`RepeatTemplate::after`] says about the next iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run another iteration.
    Continue,
    /// The loop is complete.
    Stop,
}

impl<P: CompletionPolicy> RepeatTemplate<P> {
    /// A loop run by `policy`, rethrowing every error, with no listeners.
    pub fn new(policy: P) -> Self {
        Self {
            policy,
            handler: Box::new(DefaultExceptionHandler),
            rethrows: true,
            listeners: Vec::new(),
        }
    }

    /// Decides which errors end the loop.
    pub fn exception_handler(mut self, handler: impl ExceptionHandler + 'static) -> Self {
        self.handler = Box::new(handler);
        self.rethrows = false;
        self
    }

    /// `Some(n)` when a loop of this template is exactly "up to `n` iterations, ended
    /// early by FINISHED or by the first error": a fixed-count policy, the default
    /// handler, no listeners. Such a loop can be run as a plain counted loop, with no
    /// context kept per iteration.
    pub(crate) fn counted(&self) -> Option<u64> {
        if self.rethrows && self.listeners.is_empty() {
            self.policy.fixed_count()
        } else {
            None
        }
    }

    /// Adds a listener to each loop.
    pub fn listener(mut self, listener: Arc<dyn RepeatListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Opens a loop: a fresh context from the policy, listeners opened.
    pub fn start(&self, parent: Option<&RepeatContext>) -> RepeatContext {
        let ctx = self.policy.start(parent);
        for l in &self.listeners {
            l.open(&ctx);
        }
        ctx
    }

    /// Before an iteration: listeners, then whether it may run at all.
    #[inline(always)]
    pub fn before(&self, ctx: &RepeatContext) -> Next {
        if !self.listeners.is_empty() {
            self.listeners_before(ctx);
        }
        if ctx.is_marked_complete() {
            return Next::Stop;
        }
        self.policy.update(ctx);
        Next::Continue
    }

    /// After an iteration: listeners, the exception handler for an error (its `Err`
    /// ends the loop with that error), then the completion decision.
    #[inline(always)]
    pub fn after(&self, ctx: &RepeatContext, result: Result<RepeatStatus>) -> Result<Next> {
        let status = match result {
            Ok(status) => {
                if !self.listeners.is_empty() {
                    self.listeners_after(ctx, status);
                }
                status
            }
            Err(error) => self.handle_error(ctx, error)?,
        };
        if self.policy.is_complete_with(ctx, status) || ctx.is_marked_complete() {
            Ok(Next::Stop)
        } else {
            Ok(Next::Continue)
        }
    }

    // The per-item path stays small: listeners and errors are handled out of line.

    #[cold]
    #[inline(never)]
    fn listeners_before(&self, ctx: &RepeatContext) {
        for l in &self.listeners {
            l.before(ctx);
        }
    }

    #[cold]
    #[inline(never)]
    fn listeners_after(&self, ctx: &RepeatContext, status: RepeatStatus) {
        for l in &self.listeners {
            l.after(ctx, status);
        }
    }

    #[cold]
    #[inline(never)]
    fn handle_error(&self, ctx: &RepeatContext, error: Error) -> Result<RepeatStatus> {
        for l in &self.listeners {
            l.on_error(ctx, &error);
        }
        self.handler.handle(ctx, error)?;
        Ok(RepeatStatus::Continuable)
    }

    /// Closes a loop.
    pub fn close(&self, ctx: &RepeatContext) {
        for l in self.listeners.iter().rev() {
            l.close(ctx);
        }
    }

    /// Runs `callback` until the loop completes; returns FINISHED when the last
    /// iteration said so, CONTINUABLE when the policy ended the loop first.
    ///
    /// The callback does its synchronous work and returns a future for the rest; the
    /// future owns what it uses, so the loop can run inside any `Send` task (a
    /// processor, a tasklet). For synchronous work alone, see
    /// [`iterate_sync`](Self::iterate_sync).
    pub async fn iterate<F, Fut>(
        &self,
        parent: Option<&RepeatContext>,
        mut callback: F,
    ) -> Result<RepeatStatus>
    where
        F: FnMut(&RepeatContext) -> Fut,
        Fut: Future<Output = Result<RepeatStatus>>,
    {
        let ctx = self.start(parent);
        let mut last = RepeatStatus::Continuable;
        let outcome = loop {
            if self.before(&ctx) == Next::Stop {
                break Ok(last);
            }
            let result = callback(&ctx).await;
            if let Ok(s) = result {
                last = s;
            }
            match self.after(&ctx, result) {
                Ok(Next::Continue) => {}
                Ok(Next::Stop) => break Ok(last),
                Err(e) => break Err(e),
            }
        };
        self.close(&ctx);
        outcome
    }

    /// [`iterate`](Self::iterate) for a synchronous callback.
    pub fn iterate_sync(
        &self,
        parent: Option<&RepeatContext>,
        mut callback: impl FnMut(&RepeatContext) -> Result<RepeatStatus>,
    ) -> Result<RepeatStatus> {
        let looped = self.iterate(parent, |ctx| std::future::ready(callback(ctx)));
        let mut looped = std::pin::pin!(looped);
        // Every future inside is ready at once, so one poll runs the whole loop.
        match looped
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => unreachable!("a loop over ready futures never waits"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn simple_policy_stops_after_n_and_on_finished() {
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(5));
        let mut n = 0;
        let s = t
            .iterate(None, |_| {
                n += 1;
                std::future::ready(Ok(RepeatStatus::Continuable))
            })
            .await
            .unwrap();
        assert_eq!((n, s), (5, RepeatStatus::Continuable));
        let mut n = 0;
        let s = t
            .iterate_sync(None, |_| {
                n += 1;
                Ok(RepeatStatus::continue_if(n < 2))
            })
            .unwrap();
        assert_eq!((n, s), (2, RepeatStatus::Finished));
    }

    #[tokio::test]
    async fn simple_limit_handler_swallows_up_to_the_limit() {
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(10))
            .exception_handler(SimpleLimitExceptionHandler::new(3));
        let mut calls = 0;
        let r = t.iterate_sync(None, |_| {
            calls += 1;
            Err(Error::msg("boom"))
        });
        assert_eq!(r.unwrap_err().to_string(), "boom");
        assert_eq!(calls, 4, "three errors swallowed, the fourth rethrown");
    }

    #[tokio::test]
    async fn default_handler_returns_the_first_error_at_once() {
        let t = RepeatTemplate::default();
        let mut calls = 0;
        let r = t.iterate_sync(None, |_| {
            calls += 1;
            Err(Error::msg("first"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn complete_only_on_parent_stops_inner_loop_before_it_runs() {
        let outer = RepeatContext::new(None);
        outer.set_complete_only();
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(3));
        let mut calls = 0;
        t.iterate_sync(Some(&outer), |_| {
            calls += 1;
            Ok(RepeatStatus::Continuable)
        })
        .unwrap();
        assert_eq!(calls, 0);

        let mut calls = 0;
        RepeatTemplate::default()
            .iterate_sync(None, |ctx| {
                calls += 1;
                ctx.set_complete_only();
                Ok(RepeatStatus::Continuable)
            })
            .unwrap();
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn simple_limit_counts_per_loop_unless_kept_in_the_parent() {
        let handler = SimpleLimitExceptionHandler::new(1);
        let t =
            RepeatTemplate::new(SimpleCompletionPolicy::new(1)).exception_handler(handler.clone());
        // Each loop tolerates one error: the count starts afresh.
        for _ in 0..2 {
            let r = t.iterate_sync(None, |_| Err(Error::msg("once")));
            assert!(r.is_ok(), "one error per loop is tolerated");
        }
        let outer = RepeatContext::new(None);
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(1))
            .exception_handler(handler.use_parent(true));
        assert!(
            t.iterate_sync(Some(&outer), |_| Err(Error::msg("1")))
                .is_ok()
        );
        assert!(
            t.iterate_sync(Some(&outer), |_| Err(Error::msg("2")))
                .is_err()
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("fatal")]
    struct Fatal;

    #[tokio::test]
    async fn fatal_kinds_are_rethrown_at_once_and_thresholds_are_per_kind() {
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(10)).exception_handler(
            SimpleLimitExceptionHandler::new(5).fatal(vec![ErrorMatcher::of::<Fatal>()]),
        );
        let mut calls = 0;
        let r = t.iterate_sync(None, |_| {
            calls += 1;
            Err(Fatal.into())
        });
        assert!(r.unwrap_err().is::<Fatal>());
        assert_eq!(calls, 1);

        let h = RethrowOnThresholdExceptionHandler::new().threshold(ErrorMatcher::of::<Fatal>(), 2);
        let ctx = RepeatContext::new(None);
        assert!(h.handle(&ctx, Fatal.into()).is_ok());
        assert!(h.handle(&ctx, Fatal.into()).is_ok());
        assert!(h.handle(&ctx, Fatal.into()).is_err());
        assert!(h.handle(&ctx, Error::msg("unclassified")).is_err());
    }

    #[tokio::test]
    async fn log_or_rethrow_logs_what_it_is_told_to() {
        let t = RepeatTemplate::new(SimpleCompletionPolicy::new(3)).exception_handler(
            LogOrRethrowExceptionHandler::new().on(ErrorMatcher::any(), LogOrRethrow::Warn),
        );
        let mut calls = 0;
        let r = t.iterate_sync(None, |_| {
            calls += 1;
            Err(Error::msg("logged"))
        });
        assert!(r.is_ok());
        assert_eq!(calls, 3);
        let rethrow = LogOrRethrowExceptionHandler::new()
            .on(ErrorMatcher::of::<Fatal>(), LogOrRethrow::Debug);
        assert!(
            rethrow
                .handle(&RepeatContext::new(None), Error::msg("other"))
                .is_err()
        );
    }

    #[tokio::test]
    async fn counting_policy_completes_at_max_and_carries_over_in_the_parent() {
        let p = CountingCompletionPolicy::new(2);
        let ctx = p.start(None);
        p.update(&ctx);
        assert!(!p.is_complete(&ctx));
        p.update(&ctx);
        assert!(p.is_complete(&ctx));

        let outer = RepeatContext::new(None);
        let t = RepeatTemplate::new(CountingCompletionPolicy::new(2).use_parent(true));
        let mut calls = 0;
        t.iterate_sync(Some(&outer), |_| {
            calls += 1;
            Ok(RepeatStatus::Continuable)
        })
        .unwrap();
        assert_eq!(calls, 2);
        t.iterate_sync(Some(&outer), |_| {
            calls += 1;
            Ok(RepeatStatus::Continuable)
        })
        .unwrap();
        assert_eq!(
            calls, 3,
            "the count kept in the parent completes the next loop after one iteration"
        );
    }

    #[test]
    fn simple_policy_counts_updates() {
        let p = SimpleCompletionPolicy::new(5);
        let ctx = p.start(None);
        for _ in 0..4 {
            p.update(&ctx);
        }
        assert!(!p.is_complete(&ctx));
        p.update(&ctx);
        assert!(p.is_complete(&ctx));
        let fresh = p.start(None);
        assert!(p.is_complete_with(&fresh, RepeatStatus::Finished));
    }

    #[test]
    fn timeout_and_composite() {
        let ctx = RepeatContext::new(None);
        let p = TimeoutTerminationPolicy::new(Duration::from_millis(20));
        assert!(!p.is_complete(&ctx));
        std::thread::sleep(Duration::from_millis(50));
        assert!(p.is_complete(&ctx));
        let none = CompositeCompletionPolicy::default();
        assert!(!none.is_complete(&ctx));
        assert!(!none.is_complete_with(&ctx, RepeatStatus::Finished));
    }
}
