//! What the read side of a job repository is asked: which executions, newest first.

use chrono::NaiveDateTime;

use crate::execution::BatchStatus;

/// A page of job executions, newest first (by JOB_EXECUTION_ID), narrowed by job,
/// instance, status and creation time. Every filter is optional; each query is one
/// indexed statement whose cost follows the page, not the history.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionQuery {
    /// Only executions of this job.
    pub job_name: Option<String>,
    /// Only executions of this instance.
    pub instance_id: Option<i64>,
    /// Only executions in one of these statuses (all when empty).
    pub statuses: Vec<BatchStatus>,
    /// Only executions created at or after this time.
    pub created_from: Option<NaiveDateTime>,
    /// Only executions created before this time.
    pub created_until: Option<NaiveDateTime>,
    /// Only executions older than this one (the next page after it).
    pub before_id: Option<i64>,
    /// Only executions launched with this parameter (name, value as stored in
    /// PARAMETER_VALUE: ISO text for dates, `true`/`false`, digits).
    pub parameter: Option<(String, String)>,
    /// At most this many executions.
    pub limit: usize,
}

impl Default for ExecutionQuery {
    fn default() -> Self {
        Self {
            job_name: None,
            instance_id: None,
            statuses: Vec::new(),
            created_from: None,
            created_until: None,
            before_id: None,
            parameter: None,
            limit: 20,
        }
    }
}

impl ExecutionQuery {
    /// The 20 newest executions of every job.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only executions of `job_name`.
    pub fn job(mut self, job_name: impl Into<String>) -> Self {
        self.job_name = Some(job_name.into());
        self
    }

    /// Only executions of the instance `instance_id`.
    pub fn instance(mut self, instance_id: i64) -> Self {
        self.instance_id = Some(instance_id);
        self
    }

    /// Only executions in `status` (call again to allow more statuses).
    pub fn status(mut self, status: BatchStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only running executions (STARTING, STARTED, STOPPING).
    pub fn running(mut self) -> Self {
        self.statuses = vec![
            BatchStatus::Starting,
            BatchStatus::Started,
            BatchStatus::Stopping,
        ];
        self
    }

    /// Only executions created in `[from, until)`.
    pub fn created_between(mut self, from: NaiveDateTime, until: NaiveDateTime) -> Self {
        self.created_from = Some(from);
        self.created_until = Some(until);
        self
    }

    /// The page after the execution `id` (executions older than it).
    pub fn before(mut self, id: i64) -> Self {
        self.before_id = Some(id);
        self
    }

    /// Only executions launched with the parameter `name` of value `value` (as stored).
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameter = Some((name.into(), value.into()));
        self
    }

    /// At most `limit` executions.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether an execution with these attributes is in the page's filter (the
    /// in-memory repository's way of answering).
    pub(crate) fn matches(
        &self,
        job_name: &str,
        instance_id: i64,
        status: BatchStatus,
        created: NaiveDateTime,
        id: i64,
        parameters: &crate::params::JobParameters,
    ) -> bool {
        self.job_name.as_deref().is_none_or(|j| j == job_name)
            && self.instance_id.is_none_or(|i| i == instance_id)
            && (self.statuses.is_empty() || self.statuses.contains(&status))
            && self.created_from.is_none_or(|t| created >= t)
            && self.created_until.is_none_or(|t| created < t)
            && self.before_id.is_none_or(|b| id < b)
            && self.parameter.as_ref().is_none_or(|(name, value)| {
                parameters
                    .get(name)
                    .is_some_and(|p| p.value.to_iso_text() == *value)
            })
    }
}
