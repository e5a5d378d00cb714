//! What chunk and tasklet steps share while they run: the runtime a step works with,
//! the stop request it checks at each boundary, and the transaction boundary itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::execution::{BatchStatus, Contribution, StepExecution};
use crate::item::StepIdentity;
use crate::repository::{BoxFuture, ChunkTx, JobRepository};
use crate::step::listener::StepListeners;
use crate::step::scope::StepScope;

/// Asks running steps to stop at their next chunk boundary. The launcher records the
/// request in the job repository (STATUS=STOPPING, as a stop from another process
/// does), so that both take the same path; steps also see the signal itself.
#[derive(Clone, Default, Debug)]
pub struct StopSignal(Arc<StopState>);

#[derive(Default, Debug)]
struct StopState {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
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
}

impl StepRuntime<'_> {
    /// Whether the step should stop at this boundary: the in-process signal, or a
    /// stop recorded in the repository (seen when the step was last saved).
    pub(crate) fn stop_requested(&self) -> bool {
        self.stopping || self.stop.is_stopped()
    }

    /// Reads the job execution's status, as Spring's step update does, to notice a
    /// stop asked for by another process (or by this one through the repository).
    async fn check_for_stop(&mut self) {
        match self
            .repository
            .job_execution_status(self.execution.job_execution_id)
            .await
        {
            Ok(Some((BatchStatus::Stopping, _))) => self.stopping = true,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the job execution's status failed"),
        }
    }
}

/// A step stopped on request at a chunk boundary.
#[derive(Debug, thiserror::Error)]
#[error("step `{0}` was stopped on request")]
pub struct StepInterrupted(pub String);

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
        }
    }

    /// Applies the contribution, lets the streams save their state, and commits the
    /// step execution and context in `tx`.
    pub(crate) async fn commit(
        self,
        rt: &mut StepRuntime<'_>,
        tx: ChunkTx,
        contribution: &Contribution,
        update_streams: impl FnOnce(&mut ExecutionContext) -> Result<()>,
    ) -> Result<()> {
        let execution = &mut *rt.execution;
        execution.counts.apply(contribution);
        let outcome = match update_streams(&mut execution.context) {
            Ok(()) => {
                execution.counts.commit += 1;
                rt.repository
                    .commit_chunk(tx, execution)
                    .await
                    .map_err(Error::from)
            }
            Err(e) => {
                let _ = rt.repository.rollback_chunk(tx).await;
                Err(e)
            }
        };
        match outcome {
            Ok(()) => {
                // In reverse order of registration, as Spring's composite listener.
                for l in rt.listeners.chunk.iter().rev() {
                    l.after_chunk(rt.execution);
                }
                rt.check_for_stop().await;
                Ok(())
            }
            Err(e) => {
                let e_counts = &mut rt.execution.counts;
                e_counts.write = self.write;
                e_counts.filter = self.filter;
                e_counts.commit = self.commit;
                rt.execution.version = self.version;
                rt.execution.context = self.context;
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
        if let Some(tx) = tx
            && let Err(e) = rt.repository.rollback_chunk(tx).await
        {
            tracing::warn!(error = %e, "rolling a chunk back failed; the database discards it anyway");
        }
        rt.execution.counts.apply(contribution);
        rolled_back(rt, error)
    }
}

fn rolled_back(rt: &mut StepRuntime<'_>, error: Error) -> Error {
    rt.execution.counts.rollback += 1;
    for l in rt.listeners.chunk.iter().rev() {
        l.after_chunk_error(rt.execution, &error);
    }
    error
}
