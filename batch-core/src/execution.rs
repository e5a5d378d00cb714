//! What the job repository records: instances, executions, their statuses.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::context::ExecutionContext;
use crate::error::Error;
use crate::params::JobParameters;

/// The state of an execution, as Spring Batch's `BatchStatus` (declaration order is
/// the order `upgrade_to` uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BatchStatus {
    /// Finished successfully.
    Completed,
    /// Created, not yet running.
    Starting,
    /// Running.
    Started,
    /// Asked to stop; running until its next chunk boundary.
    Stopping,
    /// Stopped on request; restartable.
    Stopped,
    /// Ended with an error; restartable.
    Failed,
    /// Given up on by an operator; not restarted.
    Abandoned,
    /// Ended in a state that cannot be known (a commit failed after the work was
    /// done); refused on restart, as it cannot be resumed safely.
    Unknown,
}

impl BatchStatus {
    /// The name stored in the STATUS columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Starting => "STARTING",
            Self::Started => "STARTED",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
            Self::Abandoned => "ABANDONED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// STARTING, STARTED or STOPPING.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Starting | Self::Started | Self::Stopping)
    }

    /// FAILED or worse.
    pub fn is_unsuccessful(self) -> bool {
        self >= Self::Failed
    }

    /// Spring's `upgradeTo`: past STARTED the worse status wins; below it COMPLETED
    /// wins over the running states.
    pub fn upgrade_to(self, other: Self) -> Self {
        if self > Self::Started || other > Self::Started {
            self.max(other)
        } else if self == Self::Completed || other == Self::Completed {
            Self::Completed
        } else {
            self.max(other)
        }
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STATUS column held a name that is no batch status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a batch status (expected COMPLETED, STARTING, STARTED, STOPPING, STOPPED, FAILED, ABANDONED or UNKNOWN)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for BatchStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "COMPLETED" => Self::Completed,
            "STARTING" => Self::Starting,
            "STARTED" => Self::Started,
            "STOPPING" => Self::Stopping,
            "STOPPED" => Self::Stopped,
            "FAILED" => Self::Failed,
            "ABANDONED" => Self::Abandoned,
            "UNKNOWN" => Self::Unknown,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

/// How an execution ended, as the user or the framework describes it: a code that flow
/// transitions match on, and a description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    /// What flow transitions match on: one of the constants below or a custom code.
    pub code: String,
    /// Free text for people (an error's report, say); may be empty.
    pub description: String,
}

impl ExitStatus {
    /// The outcome is not known.
    pub const UNKNOWN: &'static str = "UNKNOWN";
    /// Still running.
    pub const EXECUTING: &'static str = "EXECUTING";
    /// Finished successfully.
    pub const COMPLETED: &'static str = "COMPLETED";
    /// Nothing was done (a step already complete, not run again).
    pub const NOOP: &'static str = "NOOP";
    /// Ended with an error.
    pub const FAILED: &'static str = "FAILED";
    /// Stopped on request.
    pub const STOPPED: &'static str = "STOPPED";

    /// A custom code (`"COMPLETED WITH SKIPS"`), with no description.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            description: String::new(),
        }
    }

    /// [`UNKNOWN`](Self::UNKNOWN), with no description.
    pub fn unknown() -> Self {
        Self::new(Self::UNKNOWN)
    }
    /// [`EXECUTING`](Self::EXECUTING), with no description.
    pub fn executing() -> Self {
        Self::new(Self::EXECUTING)
    }
    /// [`COMPLETED`](Self::COMPLETED), with no description.
    pub fn completed() -> Self {
        Self::new(Self::COMPLETED)
    }
    /// [`NOOP`](Self::NOOP), with no description.
    pub fn noop() -> Self {
        Self::new(Self::NOOP)
    }
    /// [`FAILED`](Self::FAILED), with no description.
    pub fn failed() -> Self {
        Self::new(Self::FAILED)
    }
    /// [`STOPPED`](Self::STOPPED), with no description.
    pub fn stopped() -> Self {
        Self::new(Self::STOPPED)
    }

    /// Replaces the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Spring's severity order: EXECUTING < COMPLETED < NOOP < STOPPED < FAILED <
    /// UNKNOWN < any custom code.
    pub fn severity(&self) -> u8 {
        match self.code.as_str() {
            Self::EXECUTING => 1,
            Self::COMPLETED => 2,
            Self::NOOP => 3,
            Self::STOPPED => 4,
            Self::FAILED => 5,
            Self::UNKNOWN => 6,
            _ => 7,
        }
    }

    /// Whether the code says the work is still going on or its end is not known
    /// (Spring's `isRunning`: EXECUTING or UNKNOWN).
    pub fn is_running(&self) -> bool {
        matches!(self.code.as_str(), Self::EXECUTING | Self::UNKNOWN)
    }

    /// The same description with another code (Spring's `replaceExitCode`).
    pub fn replace_exit_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    /// The description with `description` appended after "; " (Spring's
    /// `addExitDescription`); an empty one or a repeat of the last adds nothing.
    pub fn add_exit_description(mut self, description: impl AsRef<str>) -> Self {
        let description = description.as_ref();
        if description.is_empty() || self.description.ends_with(description) {
            return self;
        }
        if !self.description.is_empty() {
            self.description.push_str("; ");
        }
        self.description.push_str(description);
        self
    }

    /// Spring's `and`: the more severe code wins; descriptions are joined.
    pub fn and(self, other: ExitStatus) -> ExitStatus {
        let description = match (self.description.is_empty(), other.description.is_empty()) {
            (_, true) => self.description.clone(),
            (true, false) => other.description.clone(),
            (false, false) if self.description == other.description => self.description.clone(),
            (false, false) => format!("{}; {}", self.description, other.description),
        };
        let code = if (self.severity(), &self.code) < (other.severity(), &other.code) {
            other.code
        } else {
            self.code
        };
        ExitStatus { code, description }
    }

    /// The exit status matching a batch status (FAILED → FAILED, …).
    pub fn for_status(status: BatchStatus) -> Self {
        match status {
            BatchStatus::Completed => Self::completed(),
            BatchStatus::Failed => Self::failed(),
            BatchStatus::Stopped | BatchStatus::Stopping => Self::stopped(),
            BatchStatus::Starting | BatchStatus::Started => Self::executing(),
            BatchStatus::Abandoned | BatchStatus::Unknown => Self::unknown(),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        Ok(())
    }
}

/// A job with one set of identifying parameters (BATCH_JOB_INSTANCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInstance {
    /// JOB_INSTANCE_ID.
    pub id: i64,
    /// Optimistic-lock version of the row.
    pub version: i64,
    /// The job's name.
    pub job_name: String,
    /// MD5 of the identifying parameters, as Spring computes it.
    pub job_key: String,
}

/// The eight counters of BATCH_STEP_EXECUTION.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Items read (READ_COUNT).
    pub read: u64,
    /// Items written (WRITE_COUNT).
    pub write: u64,
    /// Items the processor filtered out (FILTER_COUNT).
    pub filter: u64,
    /// Committed chunks, the final empty one included (COMMIT_COUNT).
    pub commit: u64,
    /// Rolled-back chunk attempts (ROLLBACK_COUNT).
    pub rollback: u64,
    /// Items skipped because reading them failed (READ_SKIP_COUNT).
    pub read_skip: u64,
    /// Items skipped because processing them failed (PROCESS_SKIP_COUNT).
    pub process_skip: u64,
    /// Items skipped because writing them failed (WRITE_SKIP_COUNT).
    pub write_skip: u64,
}

impl StepCounts {
    /// Skips of all three kinds, which the skip limit counts.
    pub fn skip(&self) -> u64 {
        self.read_skip + self.process_skip + self.write_skip
    }

    /// Adds what one chunk contributed.
    pub fn apply(&mut self, c: &Contribution) {
        self.read += c.read;
        self.write += c.write;
        self.filter += c.filter;
        self.read_skip += c.read_skip;
        self.process_skip += c.process_skip;
        self.write_skip += c.write_skip;
    }
}

/// What one chunk adds to the step's counters once it commits (Spring's
/// `StepContribution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contribution {
    /// Items read.
    pub read: u64,
    /// Items written.
    pub write: u64,
    /// Items filtered out.
    pub filter: u64,
    /// Items skipped in the reader.
    pub read_skip: u64,
    /// Items skipped in the processor.
    pub process_skip: u64,
    /// Items skipped in the writer.
    pub write_skip: u64,
}

/// One run of one step (BATCH_STEP_EXECUTION and its context).
#[derive(Debug, Clone)]
pub struct StepExecution {
    /// STEP_EXECUTION_ID.
    pub id: i64,
    /// Optimistic-lock version of the row.
    pub version: i64,
    /// The step's name.
    pub step_name: String,
    /// The job execution this step ran in.
    pub job_execution_id: i64,
    /// When the execution was created.
    pub create_time: NaiveDateTime,
    /// When it started running.
    pub start_time: Option<NaiveDateTime>,
    /// When it ended; `None` while it runs.
    pub end_time: Option<NaiveDateTime>,
    /// Where it stands.
    pub status: BatchStatus,
    /// The counters.
    pub counts: StepCounts,
    /// How it ended, for flow transitions.
    pub exit_status: ExitStatus,
    /// When the row was last written (each commit, each heartbeat).
    pub last_updated: Option<NaiveDateTime>,
    /// The step ExecutionContext, saved at each commit.
    pub context: ExecutionContext,
    /// The errors the step failed with, typed (Spring's `getFailureExceptions`): test
    /// one with [`Error::is`] or [`Error::find`]. Known to the process that ran the
    /// step; the repository keeps their text in EXIT_MESSAGE, so an execution read
    /// back from it has none.
    pub failures: Vec<Arc<Error>>,
}

impl StepExecution {
    /// Wall-clock time between start and end (or now).
    pub fn duration(&self) -> Option<chrono::Duration> {
        let start = self.start_time?;
        Some(self.end_time.unwrap_or_else(now) - start)
    }
}

/// One run of one job instance (BATCH_JOB_EXECUTION, its parameters and context).
#[derive(Debug, Clone)]
pub struct JobExecution {
    /// JOB_EXECUTION_ID.
    pub id: i64,
    /// Optimistic-lock version of the row.
    pub version: i64,
    /// The instance this execution runs.
    pub instance: JobInstance,
    /// Every parameter of the launch, identifying or not.
    pub parameters: JobParameters,
    /// When the execution was created.
    pub create_time: NaiveDateTime,
    /// When it started running.
    pub start_time: Option<NaiveDateTime>,
    /// When it ended; `None` while it runs.
    pub end_time: Option<NaiveDateTime>,
    /// Where it stands.
    pub status: BatchStatus,
    /// How it ended, as the command-line runner's exit status reports it.
    pub exit_status: ExitStatus,
    /// When the row was last written (the heartbeat keeps this fresh while it runs).
    pub last_updated: Option<NaiveDateTime>,
    /// The job ExecutionContext, shared by its steps.
    pub context: ExecutionContext,
    /// The step executions of this job execution, in the order they started.
    pub step_executions: Vec<StepExecution>,
    /// The errors that ended the job itself (a repository failure, an invalid flow),
    /// typed; the steps' own are in theirs (see [`all_failures`](Self::all_failures)).
    /// Known to the process that ran the job, as [`StepExecution::failures`].
    pub failures: Vec<Arc<Error>>,
}

impl JobExecution {
    /// Every error of the run: the job's own, then each step's, in the order the
    /// steps ran (Spring's `getAllFailureExceptions`).
    pub fn all_failures(&self) -> impl Iterator<Item = &Arc<Error>> {
        self.failures
            .iter()
            .chain(self.step_executions.iter().flat_map(|s| &s.failures))
    }

    /// Wall-clock time between start and end (or now).
    pub fn duration(&self) -> Option<chrono::Duration> {
        let start = self.start_time?;
        Some(self.end_time.unwrap_or_else(now) - start)
    }

    /// The latest execution of the step named `name` in this job execution.
    pub fn step(&self, name: &str) -> Option<&StepExecution> {
        self.step_executions
            .iter()
            .rev()
            .find(|s| s.step_name == name)
    }
}

/// The current time in UTC, at millisecond precision (what a TIMESTAMP column keeps
/// everywhere). Spring writes `LocalDateTime.now()`, the host's local time; UTC
/// throughout means that hosts in different time zones (or one crossing a daylight
/// saving change) share one repository without a heartbeat looking hours stale or
/// hours ahead.
pub fn now() -> NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

use chrono::Timelike;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_and_keeps_the_more_severe_code() {
        let s = ExitStatus::completed().and(ExitStatus::failed().with_description("boom"));
        assert_eq!(s.code, "FAILED");
        assert_eq!(s.description, "boom");
        let s = ExitStatus::failed().and(ExitStatus::completed());
        assert_eq!(s.code, "FAILED");
        let s = ExitStatus::completed().and(ExitStatus::new("COMPLETED WITH SKIPS"));
        assert_eq!(s.code, "COMPLETED WITH SKIPS");
        assert_eq!(
            ExitStatus::executing().and(ExitStatus::completed()).code,
            "COMPLETED"
        );
    }

    #[test]
    fn batch_status_upgrade() {
        use BatchStatus::*;
        assert_eq!(Started.upgrade_to(Completed), Completed);
        assert_eq!(Completed.upgrade_to(Failed), Failed);
        assert_eq!(Failed.upgrade_to(Completed), Failed);
        assert_eq!(Starting.upgrade_to(Started), Started);
        assert!(Failed.is_unsuccessful() && !Stopped.is_unsuccessful());
        assert_eq!("STOPPING".parse::<BatchStatus>().unwrap(), Stopping);
        assert!("RUNNING".parse::<BatchStatus>().is_err());
    }
}
