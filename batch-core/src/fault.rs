//! Fault tolerance: which errors are retried, which items are skipped, which errors
//! leave the chunk's transaction alone, and who hears about it.
//!
//! A step configured with any of these runs the fault-tolerant chunk loop (see
//! `chunk::fault_tolerant`), with Spring Batch 5's semantics: the reader is never
//! retried; the processor is retried per item and the writer per chunk, each retry a
//! new transaction over the buffered input chunk; exhausted or non-retryable items are
//! skipped when skippable, else the step fails; a write failure that cannot be retried
//! is located by writing the chunk one item per transaction.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::classify::{Classifier, ErrorMatcher};
use crate::error::{Cause, Error};

/// How long to wait before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Backoff {
    /// Retry at once.
    #[default]
    None,
    /// The same pause before every retry.
    Fixed(Duration),
    /// `initial`, then times `multiplier` per retry, never more than `max`.
    Exponential {
        /// The first pause.
        initial: Duration,
        /// Growth per retry (values below 1 count as 1).
        multiplier: f64,
        /// The longest pause.
        max: Duration,
    },
    /// A pause drawn uniformly between `min` and `max`.
    Random {
        /// The shortest pause.
        min: Duration,
        /// The longest pause.
        max: Duration,
    },
}

impl Backoff {
    /// The pause before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let factor = multiplier.max(1.0).powi(retry.saturating_sub(1) as i32);
                initial.mul_f64(factor).min(max)
            }
            Backoff::Random { min, max } => {
                if max <= min {
                    return min;
                }
                let span = (max - min).as_nanos() as u64;
                min + Duration::from_nanos(pseudo_random() % span.max(1))
            }
        }
    }
}

/// A cheap, non-cryptographic random number (backoff jitter needs no more).
fn pseudo_random() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Which errors are retried and how often: `limit` counts every attempt, the first
/// included (3 = one try and two retries; 0 and 1 both mean a single attempt).
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub(crate) retryable: Classifier<bool>,
    pub(crate) limit: u32,
    pub(crate) backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retryable: Classifier::new(false),
            limit: 0,
            backoff: Backoff::None,
        }
    }
}

impl RetryPolicy {
    /// Total attempts allowed.
    pub(crate) fn attempts(&self) -> u32 {
        self.limit.max(1)
    }

    pub(crate) fn is_retryable(&self, error: &Error) -> bool {
        self.retryable.classify(error)
    }
}

/// Which errors skip the item, and how many skips the step tolerates in all.
#[derive(Debug, Clone)]
pub(crate) struct SkipPolicy {
    pub(crate) skippable: Classifier<bool>,
    pub(crate) limit: u64,
}

/// Spring Batch's default skip limit.
pub const DEFAULT_SKIP_LIMIT: u64 = 10;

impl Default for SkipPolicy {
    fn default() -> Self {
        Self {
            skippable: Classifier::new(false),
            limit: DEFAULT_SKIP_LIMIT,
        }
    }
}

impl SkipPolicy {
    pub(crate) fn is_skippable(&self, error: &Error) -> bool {
        self.skippable.classify(error)
    }
}

/// A read error that may not be skipped ended the step (its cause is the reader's
/// error).
#[derive(Debug, thiserror::Error)]
#[error("non-skippable error while reading")]
pub struct NonSkippableRead(#[source] pub Cause);

/// A processor error marked no-rollback that may not be skipped either. It rolls the
/// chunk back like any failure; the next attempt then fails the step in recovery.
#[derive(Debug, thiserror::Error)]
#[error("non-skippable error in the processor; an error marked no_rollback must also be skippable")]
pub struct NonSkippableProcess(#[source] pub Cause);

/// The step's skip limit was reached.
#[derive(Debug, thiserror::Error)]
#[error(
    "skip limit of {limit} exceeded: the step already skipped {limit} item(s) and cannot skip another"
)]
pub struct SkipLimitExceeded {
    /// The limit that was reached.
    pub limit: u64,
    /// The error of the item that could not be skipped.
    #[source]
    pub cause: Cause,
}

/// An error that may not be skipped ended the step after its retries were used up.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed after {attempts} attempt(s) and is not skippable")]
pub struct RetryExhausted {
    /// What failed ("processing item 3 of a chunk of 500").
    pub what: String,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// The last attempt's error.
    #[source]
    pub cause: Cause,
}

/// One attempt at processing an item or writing a chunk failed, and the chunk rolls
/// back: what chunk listeners' `after_chunk_error` hear while the step retries, skips
/// or scans. Its cause is the user's error.
#[derive(Debug, thiserror::Error)]
#[error("{subject} failed")]
pub struct AttemptFailed {
    /// What failed.
    pub subject: RetrySubject,
    /// The attempt's error.
    #[source]
    pub cause: Cause,
}

/// A retry listener's `open` refused the attempt (Spring's `RetryListener.open`
/// returning false): the attempt is not made and the step fails.
#[derive(Debug, thiserror::Error)]
#[error("a retry listener refused {subject}")]
pub struct RetryRefused {
    /// What was to be attempted.
    pub subject: RetrySubject,
}

/// What is being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySubject {
    /// Processing one item of the chunk.
    Process {
        /// Its position in the chunk, 0-based.
        item: usize,
        /// The items the chunk read.
        of: usize,
    },
    /// Writing the chunk's outputs.
    Write {
        /// The outputs written together.
        items: usize,
    },
    /// Writing one output alone, while the chunk is scanned after a failed write.
    WriteAlone {
        /// Its position in the chunk, 0-based.
        item: usize,
        /// The items the chunk read.
        of: usize,
    },
}

impl fmt::Display for RetrySubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RetrySubject::Process { item, of } => {
                write!(f, "processing item {} of a chunk of {of}", item + 1)
            }
            RetrySubject::Write { items } => write!(f, "writing a chunk of {items} item(s)"),
            RetrySubject::WriteAlone { item, of } => {
                write!(f, "writing item {} of a chunk of {of} alone", item + 1)
            }
        }
    }
}

/// What a retry listener is told about: what is retried and how many attempts failed
/// so far.
#[derive(Debug, Clone, Copy)]
pub struct RetryContext {
    /// What is retried.
    pub subject: RetrySubject,
    /// Attempts that failed so far (1 after the first failure).
    pub retry_count: u32,
}

/// Hooks around retried work, as Spring Retry's `RetryListener`.
pub trait RetryListener: Send + Sync {
    /// Before an attempt; `false` refuses it (the error is then final).
    fn open(&self, _ctx: &RetryContext) -> bool {
        true
    }
    /// After each failed attempt.
    fn on_error(&self, _ctx: &RetryContext, _error: &Error) {}
    /// After an attempt that succeeded.
    fn on_success(&self, _ctx: &RetryContext) {}
    /// After the last attempt, successful or not.
    fn close(&self, _ctx: &RetryContext, _error: Option<&Error>) {}
}

/// Told about each skipped item, just before the chunk that skipped it commits (and
/// only if it commits).
pub trait SkipListener<I, O>: Send + Sync {
    /// An item the reader failed on was skipped (there is no item to show).
    fn on_skip_in_read(&self, _error: &Error) {}
    /// An input item was skipped because processing it failed.
    fn on_skip_in_process(&self, _item: &I, _error: &Error) {}
    /// An output item was skipped because writing it failed (found by the scan).
    fn on_skip_in_write(&self, _item: &O, _error: &Error) {}
}

/// The fault-tolerance configuration of a chunk step.
#[derive(Clone, Default)]
pub(crate) struct FaultTolerance {
    pub(crate) retry: RetryPolicy,
    pub(crate) skip: SkipPolicy,
    /// Errors that do not roll the chunk's transaction back.
    pub(crate) no_rollback: Classifier<bool>,
    /// `processor_non_transactional`: the processor's output is cached per item and
    /// reused on retries and scans, so each item is processed once.
    pub(crate) processor_non_transactional: bool,
    pub(crate) retry_listeners: Vec<Arc<dyn RetryListener>>,
}

impl fmt::Debug for FaultTolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultTolerance")
            .field("retry", &self.retry)
            .field("skip", &self.skip)
            .field("no_rollback", &self.no_rollback)
            .field(
                "processor_non_transactional",
                &self.processor_non_transactional,
            )
            .field("retry_listeners", &self.retry_listeners.len())
            .finish()
    }
}

/// The lists as a builder collects them; turned into classifiers once.
#[derive(Clone, Default)]
pub(crate) struct FaultToleranceSpec {
    pub(crate) enabled: bool,
    pub(crate) retry: Vec<ErrorMatcher>,
    pub(crate) no_retry: Vec<ErrorMatcher>,
    pub(crate) retry_limit: Option<u32>,
    pub(crate) backoff: Backoff,
    pub(crate) skip: Vec<ErrorMatcher>,
    pub(crate) no_skip: Vec<ErrorMatcher>,
    pub(crate) skip_limit: Option<u64>,
    pub(crate) no_rollback: Vec<ErrorMatcher>,
    pub(crate) processor_non_transactional: bool,
    pub(crate) retry_listeners: Vec<Arc<dyn RetryListener>>,
}

impl FaultToleranceSpec {
    pub(crate) fn build(&self) -> Option<FaultTolerance> {
        self.enabled.then(|| FaultTolerance {
            retry: RetryPolicy {
                retryable: Classifier::binary(&self.retry, &self.no_retry),
                limit: self.retry_limit.unwrap_or(0),
                backoff: self.backoff,
            },
            skip: SkipPolicy {
                skippable: Classifier::binary(&self.skip, &self.no_skip),
                limit: self.skip_limit.unwrap_or(DEFAULT_SKIP_LIMIT),
            },
            no_rollback: Classifier::binary(&self.no_rollback, &[]),
            processor_non_transactional: self.processor_non_transactional,
            retry_listeners: self.retry_listeners.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoffs() {
        let ms = Duration::from_millis;
        assert_eq!(Backoff::None.delay(3), Duration::ZERO);
        assert_eq!(Backoff::Fixed(ms(5)).delay(7), ms(5));
        let exp = Backoff::Exponential {
            initial: ms(10),
            multiplier: 2.0,
            max: ms(50),
        };
        assert_eq!(
            [1, 2, 3, 4].map(|n| exp.delay(n)),
            [ms(10), ms(20), ms(40), ms(50)]
        );
        let r = Backoff::Random {
            min: ms(10),
            max: ms(20),
        };
        for n in 1..50 {
            let d = r.delay(n);
            assert!(d >= ms(10) && d < ms(20), "{d:?}");
        }
    }

    #[test]
    fn limits() {
        let p = RetryPolicy {
            limit: 0,
            ..Default::default()
        };
        assert_eq!(p.attempts(), 1);
        assert_eq!(
            RetryPolicy {
                limit: 1,
                ..Default::default()
            }
            .attempts(),
            1
        );
        assert_eq!(
            RetryPolicy {
                limit: 3,
                ..Default::default()
            }
            .attempts(),
            3
        );
        assert_eq!(SkipPolicy::default().limit, 10);
    }
}
