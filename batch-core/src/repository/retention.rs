//! Retention: which ended executions a purge deletes, and what it deleted.

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::execution::BatchStatus;

/// Which executions a purge deletes: those that ended before `ended_before`, never a
/// running one, and (unless `include_restartable`) none of an instance that can still
/// be restarted (its last execution FAILED or STOPPED), whose history a restart
/// resumes from. A job instance goes once none of its executions is left, with its
/// item progress.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeRequest {
    /// Executions that ended at or before this time.
    pub ended_before: NaiveDateTime,
    /// Only executions in one of these statuses (every ended status when empty).
    pub statuses: Vec<BatchStatus>,
    /// Only executions of this job.
    pub job_name: Option<String>,
    /// Also the executions of instances that can still be restarted.
    pub include_restartable: bool,
    /// How many executions each transaction deletes.
    pub batch_size: usize,
}

impl PurgeRequest {
    /// Executions that ended more than `age` ago.
    pub fn older_than(age: Duration) -> Self {
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        let now = crate::execution::now();
        Self {
            ended_before: now.checked_sub_signed(age).unwrap_or(NaiveDateTime::MIN),
            statuses: Vec::new(),
            job_name: None,
            include_restartable: false,
            batch_size: 200,
        }
    }

    /// Only executions in `status` (call again to allow more statuses).
    pub fn status(mut self, status: BatchStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only executions of `job_name`.
    pub fn job(mut self, job_name: impl Into<String>) -> Self {
        self.job_name = Some(job_name.into());
        self
    }

    /// Also purge instances that can still be restarted.
    pub fn include_restartable(mut self, yes: bool) -> Self {
        self.include_restartable = yes;
        self
    }

    /// Whether an ended execution in `status` is among the statuses asked for.
    pub(crate) fn wants(&self, status: BatchStatus) -> bool {
        !status.is_running() && (self.statuses.is_empty() || self.statuses.contains(&status))
    }
}

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Job executions, with their parameters, contexts and step executions.
    pub executions: u64,
    /// Job instances left without executions, with their item progress.
    pub instances: u64,
}

/// A duration as written on the command line: a number and a unit, `30d`, `12h`,
/// `90m`, `45s` (`0s` is now).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: write a number and a unit, as in 30d, 12h, 90m or 0s")]
pub struct BadDuration(pub String);

/// Parses `30d`, `12h`, `90m`, `45s`.
pub fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_owned());
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "d", "30", "3x", "-1d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
