//! What chunk and tasklet steps share while they run: the runtime a step works with,
//! the stop request it checks at each boundary, the step loop that turns until the
//! step finishes ([`repeat_step`]), and the transaction boundary of each turn.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::execution::{BatchStatus, Contribution, StepExecution};
use crate::item::StepIdentity;
use crate::repeat::{Next, RepeatContext, RepeatStatus, RepeatTemplate};
use crate::repository::{BoxFuture, ChunkTx, JobRepository};
use crate::step::listener::StepListeners;
use crate::step::scope::StepScope;
use crate::telemetry::ChunkObservation;

/// Asks running steps to stop at their next chunk boundary. The launcher records the
/// request in the job repository (STATUS=STOPPING, as a stop from another process
/// does), so that both take the same path; steps also see the signal itself.
#[derive(Clone, Default, Debug)]
pub struct StopSignal(Arc<StopState>);

#[derive(Default, Debug)]
struct StopState {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
    /// Since when the run's heartbeat has failed to renew its lease (the time of the
    /// last renewal), and the lease; `None` while it renews.
    unrenewed: Mutex<Option<(Instant, Duration)>>,
}

impl StopSignal {
    /// Asks for the stop; steps see it at their next chunk boundary.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Forgets a stop asked for: a stop belongs to the run it stopped (or to the next
    /// one, when asked between runs), not to the launcher forever.
    pub(crate) fn clear(&self) {
        self.0.stopped.store(false, Ordering::SeqCst);
        self.heartbeat_renewed();
    }

    /// The run's heartbeat renewed its lease.
    pub(crate) fn heartbeat_renewed(&self) {
        *self.0.unrenewed.lock().expect("lease state") = None;
    }

    /// The run's heartbeat failed; it last renewed the lease at `renewed`.
    pub(crate) fn heartbeat_failed(&self, renewed: Instant, lease: Duration) {
        self.0
            .unrenewed
            .lock()
            .expect("lease state")
            .get_or_insert((renewed, lease));
    }

    /// How long the lease has gone unrenewed, with the lease, once that is longer than
    /// the lease.
    fn lease_lost(&self) -> Option<(Duration, Duration)> {
        let state = *self.0.unrenewed.lock().expect("lease state");
        state
            .map(|(since, lease)| (since.elapsed(), lease))
            .filter(|(silent, lease)| silent > lease)
    }

    /// Whether the stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Waits until the stop is asked for.
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// What a running step works with besides its parts.
pub(crate) struct StepRuntime<'a> {
    pub(crate) execution: &'a mut StepExecution,
    pub(crate) repository: &'a dyn JobRepository,
    pub(crate) listeners: &'a StepListeners,
    pub(crate) identity: &'a StepIdentity,
    pub(crate) stop: &'a StopSignal,
    /// The job execution was found STOPPING when the step was last saved.
    pub(crate) stopping: bool,
    /// Where a chunk step leaves the closing of its reader and writer, which the
    /// lifecycle runs after the step listeners' `after_step`, as Spring does (`None`
    /// once taken).
    pub(crate) close_later: Option<&'a CloseLater>,
}

/// Closes a step's reader and writer.
pub(crate) type StreamCloser = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// The slot a chunk step leaves its [`StreamCloser`] in (a mutex only so that the
/// runtime that refers to it stays `Sync`).
pub(crate) type CloseLater = Mutex<Option<StreamCloser>>;

impl StepRuntime<'_> {
    /// Whether the step should stop at this boundary: the in-process signal, or a
    /// stop recorded in the repository (seen when the step was last saved).
    pub(crate) fn stop_requested(&self) -> bool {
        self.stopping || self.stop.is_stopped()
    }

    /// Why the step must not begin another chunk, if it must not: its heartbeat lost
    /// the lease (the step fails), or a stop was asked for (the step stops).
    pub(crate) fn interruption(&self) -> Option<Error> {
        let step = || self.execution.step_name.clone();
        if let Some((silent, lease)) = self.stop.lease_lost() {
            return Some(Error::new(LeaseLost {
                step: step(),
                silent_s: silent.as_secs(),
                lease_s: lease.as_secs_f64(),
            }));
        }
        self.stop_requested()
            .then(|| Error::new(StepInterrupted(step())))
    }
}

/// A step stopped on request at a chunk boundary.
#[derive(Debug, thiserror::Error)]
#[error("step `{0}` was stopped on request")]
pub struct StepInterrupted(pub String);

/// The run's heartbeat could not renew its lease for longer than the lease: a launch
/// elsewhere may already judge the run dead and restart it, so the step fails before
/// another chunk rather than work on beside that restart. (A commit it had in flight
/// is fenced anyway: marking the run dead bumps the step's VERSION.)
#[derive(Debug, thiserror::Error)]
#[error(
    "step `{step}` stops: its heartbeat has not renewed the run's lease for {silent_s} s, longer than the lease ({lease_s} s), so another launch may judge the run dead and restart it"
)]
pub struct LeaseLost {
    /// The step.
    pub step: String,
    /// How long the lease went unrenewed, in seconds.
    pub silent_s: u64,
    /// The lease, in seconds.
    pub lease_s: f64,
}

/// The part of a step that differs between kinds: building the parts from the scope
/// and running the chunk or tasklet loop.
pub(crate) trait StepRunner: Send + Sync {
    fn run<'a>(&'a self, scope: StepScope, rt: StepRuntime<'a>) -> BoxFuture<'a, Result<()>>;

    /// The step each partition runs (a `StepDef`), when this is a partitioned step's
    /// manager; untyped here, as the step definition's module builds on this one.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    fn partition_worker(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

/// One turn of a step's loop, in its own transaction: a chunk, an attempt at one (the
/// fault-tolerant loop tries a chunk again after a rollback), or a tasklet call.
pub(crate) trait StepIteration {
    /// Runs the turn; `Ok(RepeatStatus::Finished)` ends the step, an error fails it.
    fn iterate(
        &mut self,
        step_ctx: &RepeatContext,
        rt: &mut StepRuntime<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send;
}

/// The step loop of every kind of step (Spring's step-level `RepeatTemplate`): turns
/// until one finishes or fails, checking for a stop or a lost lease before each.
pub(crate) async fn repeat_step(
    iteration: &mut impl StepIteration,
    rt: &mut StepRuntime<'_>,
) -> Result<()> {
    let step_loop = RepeatTemplate::default();
    let step_ctx = step_loop.start(None);
    let outcome = loop {
        if step_loop.before(&step_ctx) == Next::Stop {
            break Ok(());
        }
        if let Some(interrupted) = rt.interruption() {
            break Err(interrupted);
        }
        let result = iteration.iterate(&step_ctx, rt).await;
        match step_loop.after(&step_ctx, result) {
            Ok(Next::Continue) => {}
            Ok(Next::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    step_loop.close(&step_ctx);
    outcome
}

/// The transaction boundary of one chunk (or one tasklet call), with Spring Batch's
/// accounting: what a failed attempt read, filtered or skipped still counts (its
/// contribution is applied before the rollback, as `TaskletStep` does), ROLLBACK_COUNT
/// goes up by one; when the commit itself fails, the version, the write, filter and
/// commit counters and the context go back to what they were when the chunk began.
pub(crate) struct ChunkBoundary {
    version: i64,
    write: u64,
    filter: u64,
    commit: u64,
    context: ExecutionContext,
    observation: ChunkObservation,
}

impl ChunkBoundary {
    pub(crate) fn begin(rt: &StepRuntime<'_>) -> Self {
        for l in &rt.listeners.chunk {
            l.before_chunk(rt.execution);
        }
        let e = &rt.execution;
        Self {
            version: e.version,
            write: e.counts.write,
            filter: e.counts.filter,
            commit: e.counts.commit,
            context: e.context.clone(),
            observation: ChunkObservation::begin(rt.identity, e),
        }
    }

    /// Applies the contribution and commits the step execution and context in `tx`,
    /// once the streams have saved their state in the context (`streams_updated`, the
    /// outcome of their `update`; a failed one rolls the chunk back).
    pub(crate) async fn commit(
        self,
        rt: &mut StepRuntime<'_>,
        tx: ChunkTx,
        contribution: &Contribution,
        streams_updated: Result<()>,
    ) -> Result<()> {
        let execution = &mut *rt.execution;
        execution.counts.apply(contribution);
        let outcome = match streams_updated {
            Ok(()) => {
                execution.counts.commit += 1;
                rt.repository
                    .commit_chunk_and_read_status(tx, execution)
                    .await
                    .map_err(Error::from)
            }
            Err(e) => {
                report_rollback_failure(rt.repository.rollback_chunk(tx).await);
                Err(e)
            }
        };
        match outcome {
            Ok(job_status) => {
                self.observation.committed(contribution);
                // In reverse order of registration, as Spring's composite listener.
                for l in rt.listeners.chunk.iter().rev() {
                    l.after_chunk(rt.execution);
                }
                // A stop asked for by another process is seen at this boundary.
                if job_status == Some(BatchStatus::Stopping) {
                    rt.stopping = true;
                }
                Ok(())
            }
            Err(e) => {
                let e_counts = &mut rt.execution.counts;
                e_counts.write = self.write;
                e_counts.filter = self.filter;
                e_counts.commit = self.commit;
                rt.execution.version = self.version;
                rt.execution.context = self.context;
                self.observation.rolled_back(contribution);
                Err(rolled_back(rt, e))
            }
        }
    }

    /// Rolls `tx` back (when there is one), applies what the attempt contributed and
    /// counts the rollback.
    pub(crate) async fn rollback(
        self,
        rt: &mut StepRuntime<'_>,
        tx: Option<ChunkTx>,
        contribution: &Contribution,
        error: Error,
    ) -> Error {
        if let Some(tx) = tx {
            report_rollback_failure(rt.repository.rollback_chunk(tx).await);
        }
        rt.execution.counts.apply(contribution);
        self.observation.rolled_back(contribution);
        rolled_back(rt, error)
    }
}

/// A rollback that fails is reported, never dropped, and never replaces the error that
/// caused it: the transaction is not committed either way (the database discards it
/// with its connection).
fn report_rollback_failure(outcome: std::result::Result<(), crate::repository::RepositoryError>) {
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "rolling a chunk back failed; the database discards it anyway");
    }
}

fn rolled_back(rt: &mut StepRuntime<'_>, error: Error) -> Error {
    rt.execution.counts.rollback += 1;
    for l in rt.listeners.chunk.iter().rev() {
        l.after_chunk_error(rt.execution, &error);
    }
    error
}
