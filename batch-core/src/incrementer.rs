//! The next parameters of a job, for `--next` and [`JobOperator::start_next`]
//! (Spring's `JobParametersIncrementer`): from the last instance's parameters to a
//! new instance's.
//!
//! [`JobOperator::start_next`]: crate::operator::JobOperator::start_next

use crate::params::{JobParameter, JobParameters};

/// Gives the parameters of the next instance of a job from those of its last one.
pub trait JobParametersIncrementer: Send + Sync {
    /// The next parameters; `last` is `None` when the job never ran.
    fn next(&self, last: Option<&JobParameters>) -> JobParameters;

    /// The keys it sets, which the job's parameter rules accept without declaring.
    fn keys(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Spring's `RunIdIncrementer`: the last parameters with `run.id` (a long,
/// identifying) one more than the last one's, 1 the first time.
#[derive(Debug, Clone)]
pub struct RunIdIncrementer {
    key: String,
}

impl Default for RunIdIncrementer {
    fn default() -> Self {
        Self {
            key: "run.id".into(),
        }
    }
}

impl RunIdIncrementer {
    /// The incrementer of `run.id`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An incrementer of another key.
    pub fn with_key(key: impl Into<String>) -> Self {
        Self { key: key.into() }
    }
}

impl JobParametersIncrementer for RunIdIncrementer {
    fn next(&self, last: Option<&JobParameters>) -> JobParameters {
        let mut next = last.cloned().unwrap_or_default();
        let id = last
            .and_then(|p| p.get_as::<i64>(&self.key).ok())
            .unwrap_or(0)
            + 1;
        next.insert(self.key.clone(), JobParameter::new(id, true));
        next
    }

    fn keys(&self) -> Vec<String> {
        vec![self.key.clone()]
    }
}
