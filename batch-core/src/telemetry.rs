//! What the runtime tells the outside about its runs: metrics through the `metrics`
//! facade, named as Spring Batch's Micrometer metrics are (`spring.batch.job`,
//! `spring.batch.step`, `spring.batch.item.read`, `spring.batch.chunk.write`, …), and
//! `tracing` spans per job, step and chunk carrying their ids, so that an
//! OpenTelemetry subscriber shows a run as one trace.
//!
//! Nothing is recorded unless the program installs a recorder (the console installs
//! a Prometheus one); without one each call is a check of a global and returns.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `spring.batch.job` | histogram, seconds | `job`, `status` |
//! | `spring.batch.job.active` | gauge | `job` |
//! | `spring.batch.step` | histogram, seconds | `job`, `step`, `status` |
//! | `spring.batch.item.read`, `.write`, `.filter`, `.skip` | counter, items | `job`, `step` |
//! | `spring.batch.chunk.write` | histogram, seconds (one chunk's transaction) | `job`, `step`, `status` (SUCCESS, FAILURE) |
//! | `spring.batch.chunk.commit`, `spring.batch.chunk.rollback` | counter | `job`, `step` |
//! | `spring.batch.retry` | counter (failed attempts that may be retried) | `job`, `step` |

use std::time::Instant;

use tracing::Span;

use crate::execution::{Contribution, JobExecution, StepExecution};
use crate::item::StepIdentity;

/// The span a job execution runs in.
pub(crate) fn job_span(execution: &JobExecution) -> Span {
    tracing::info_span!(
        "job",
        job.name = %execution.instance.job_name,
        job.instance_id = execution.instance.id,
        job.execution_id = execution.id,
    )
}

/// Counts a job as running until dropped; [`ActiveJob::ended`] records its duration.
pub(crate) struct ActiveJob {
    job: String,
}

impl ActiveJob {
    pub(crate) fn start(job: &str) -> Self {
        metrics::gauge!("spring.batch.job.active", "job" => job.to_owned()).increment(1.0);
        Self {
            job: job.to_owned(),
        }
    }

    /// Records the run's duration by its final status.
    pub(crate) fn ended(self, execution: &JobExecution) {
        if let Some(d) = execution.duration() {
            metrics::histogram!(
                "spring.batch.job",
                "job" => self.job.clone(),
                "status" => execution.status.as_str(),
            )
            .record(seconds(d));
        }
    }
}

impl Drop for ActiveJob {
    fn drop(&mut self) {
        metrics::gauge!("spring.batch.job.active", "job" => self.job.clone()).decrement(1.0);
    }
}

/// The span a step execution runs in (a child of its job's).
pub(crate) fn step_span(identity: &StepIdentity) -> Span {
    tracing::info_span!(
        "step",
        step.name = %identity.step_name,
        step.execution_id = identity.step_execution_id,
        job.execution_id = identity.job_execution_id,
    )
}

/// Records a step's duration by its final status.
pub(crate) fn step_ended(identity: &StepIdentity, execution: &StepExecution) {
    if let Some(d) = execution.duration() {
        metrics::histogram!(
            "spring.batch.step",
            "job" => identity.job_name.clone(),
            "step" => identity.step_name.clone(),
            "status" => execution.status.as_str(),
        )
        .record(seconds(d));
    }
}

/// One chunk from its beginning to its commit or rollback: its span (open for as
/// long as the chunk, a child of the step's) and its clock.
pub(crate) struct ChunkObservation {
    span: Span,
    started: Instant,
    job: String,
    step: String,
}

impl ChunkObservation {
    pub(crate) fn begin(identity: &StepIdentity, execution: &StepExecution) -> Self {
        Self {
            span: tracing::info_span!(
                "chunk",
                chunk = execution.counts.commit + execution.counts.rollback + 1,
                step.execution_id = identity.step_execution_id,
                job.execution_id = identity.job_execution_id,
            ),
            started: Instant::now(),
            job: identity.job_name.clone(),
            step: identity.step_name.clone(),
        }
    }

    /// The chunk committed what it contributed.
    pub(crate) fn committed(self, contribution: &Contribution) {
        self.ended("SUCCESS", contribution);
        metrics::counter!("spring.batch.chunk.commit", "job" => self.job.clone(), "step" => self.step.clone())
            .increment(1);
    }

    /// The chunk rolled back; what it read, filtered or skipped still counts, as in
    /// the step's counters.
    pub(crate) fn rolled_back(self, contribution: &Contribution) {
        let attempt = Contribution {
            write: 0,
            ..*contribution
        };
        self.ended("FAILURE", &attempt);
        metrics::counter!("spring.batch.chunk.rollback", "job" => self.job.clone(), "step" => self.step.clone())
            .increment(1);
    }

    fn ended(&self, status: &'static str, c: &Contribution) {
        let _in_chunk = self.span.enter();
        let (job, step) = (self.job.clone(), self.step.clone());
        metrics::histogram!("spring.batch.chunk.write", "job" => job.clone(), "step" => step.clone(), "status" => status)
            .record(self.started.elapsed().as_secs_f64());
        for (name, n) in [
            ("spring.batch.item.read", c.read),
            ("spring.batch.item.write", c.write),
            ("spring.batch.item.filter", c.filter),
            (
                "spring.batch.item.skip",
                c.read_skip + c.process_skip + c.write_skip,
            ),
        ] {
            if n > 0 {
                metrics::counter!(name, "job" => job.clone(), "step" => step.clone()).increment(n);
            }
        }
        tracing::debug!(status, read = c.read, write = c.write, "chunk ended");
    }
}

/// The labels of a step's metrics, made once per step.
pub(crate) struct StepLabels {
    job: String,
    step: String,
}

impl StepLabels {
    pub(crate) fn of(identity: &StepIdentity) -> Self {
        Self {
            job: identity.job_name.clone(),
            step: identity.step_name.clone(),
        }
    }

    /// A retryable attempt failed (it is retried while the retry limit allows).
    pub(crate) fn attempt_failed(&self) {
        metrics::counter!("spring.batch.retry", "job" => self.job.clone(), "step" => self.step.clone())
            .increment(1);
    }
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The step-context key under which a chunk step records its reader's total
/// ([`crate::item::ItemReader::size_hint`]), for progress shown from the repository:
/// percent done and time left, from any process.
pub const SIZE_HINT_KEY: &str = "batch.reader.size_hint";

/// Records what the reader said it will still return (nothing when it cannot tell).
pub(crate) fn record_size_hint(context: &mut crate::context::ExecutionContext, hint: Option<u64>) {
    if let Some(total) = hint {
        context.put_value(SIZE_HINT_KEY, serde_json::Value::from(total));
    }
}
