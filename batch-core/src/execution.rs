//! What the job repository records: instances, executions, their statuses.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

use crate::context::ExecutionContext;
use crate::params::JobParameters;

/// The state of an execution, as Spring Batch's `BatchStatus` (declaration order is
/// the order `upgrade_to` uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BatchStatus {
    Completed,
    Starting,
    Started,
    Stopping,
    Stopped,
    Failed,
    Abandoned,
    Unknown,
}

impl BatchStatus {
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
    pub code: String,
    pub description: String,
}

impl ExitStatus {
    pub const UNKNOWN: &'static str = "UNKNOWN";
    pub const EXECUTING: &'static str = "EXECUTING";
    pub const COMPLETED: &'static str = "COMPLETED";
    pub const NOOP: &'static str = "NOOP";
    pub const FAILED: &'static str = "FAILED";
    pub const STOPPED: &'static str = "STOPPED";

    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            description: String::new(),
        }
    }

    pub fn unknown() -> Self {
        Self::new(Self::UNKNOWN)
    }
    pub fn executing() -> Self {
        Self::new(Self::EXECUTING)
    }
    pub fn completed() -> Self {
        Self::new(Self::COMPLETED)
    }
    pub fn noop() -> Self {
        Self::new(Self::NOOP)
    }
    pub fn failed() -> Self {
        Self::new(Self::FAILED)
    }
    pub fn stopped() -> Self {
        Self::new(Self::STOPPED)
    }

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
    pub id: i64,
    pub version: i64,
    pub job_name: String,
    pub job_key: String,
}

/// The eight counters of BATCH_STEP_EXECUTION.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    pub read: u64,
    pub write: u64,
    pub filter: u64,
    pub commit: u64,
    pub rollback: u64,
    pub read_skip: u64,
    pub process_skip: u64,
    pub write_skip: u64,
}

impl StepCounts {
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
    pub read: u64,
    pub write: u64,
    pub filter: u64,
    pub read_skip: u64,
    pub process_skip: u64,
    pub write_skip: u64,
}

/// One run of one step (BATCH_STEP_EXECUTION and its context).
#[derive(Debug, Clone)]
pub struct StepExecution {
    pub id: i64,
    pub version: i64,
    pub step_name: String,
    pub job_execution_id: i64,
    pub create_time: NaiveDateTime,
    pub start_time: Option<NaiveDateTime>,
    pub end_time: Option<NaiveDateTime>,
    pub status: BatchStatus,
    pub counts: StepCounts,
    pub exit_status: ExitStatus,
    pub last_updated: Option<NaiveDateTime>,
    pub context: ExecutionContext,
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
    pub id: i64,
    pub version: i64,
    pub instance: JobInstance,
    pub parameters: JobParameters,
    pub create_time: NaiveDateTime,
    pub start_time: Option<NaiveDateTime>,
    pub end_time: Option<NaiveDateTime>,
    pub status: BatchStatus,
    pub exit_status: ExitStatus,
    pub last_updated: Option<NaiveDateTime>,
    pub context: ExecutionContext,
    /// The step executions of this job execution, in the order they started.
    pub step_executions: Vec<StepExecution>,
}

impl JobExecution {
    pub fn duration(&self) -> Option<chrono::Duration> {
        let start = self.start_time?;
        Some(self.end_time.unwrap_or_else(now) - start)
    }

    pub fn step(&self, name: &str) -> Option<&StepExecution> {
        self.step_executions
            .iter()
            .rev()
            .find(|s| s.step_name == name)
    }
}

/// The current local time, at millisecond precision (what a TIMESTAMP column keeps
/// everywhere), as Spring's `LocalDateTime.now()`.
pub fn now() -> NaiveDateTime {
    let t = chrono::Local::now().naive_local();
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
