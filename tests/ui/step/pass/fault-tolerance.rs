//! Every fault-tolerance key of `#[step]`, run: a transient error is retried, an enum
//! variant named as a pattern is retried, a bad record is skipped, and
//! `processor_non_transactional` keeps the processor from running twice for an item.
#![deny(warnings)]
use batch::prelude::*;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("busy")]
    Busy,
    #[error("status {0}")]
    Status(u16, String),
    #[error("bad request: {reason}")]
    BadRequest { reason: String },
}

#[derive(Debug, thiserror::Error)]
#[error("bad record {0}")]
struct BadRecord(u32);

#[derive(Debug, thiserror::Error)]
#[error("corrupted")]
struct Corrupted;

#[derive(Debug, thiserror::Error)]
#[error("minor")]
struct Minor;

/// Every processor call, by item.
static CALLS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static WRITTEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn process(n: &u32) -> Result<Option<u32>, Error> {
    let calls = {
        let mut calls = CALLS.lock().unwrap();
        calls.push(*n);
        calls.iter().filter(|c| *c == n).count()
    };
    match (*n, calls) {
        (2, 1) => Err(Timeout.into()),
        (3, 1) => Err(ApiError::Status(503, "unavailable".into()).into()),
        (4, 1 | 2) => Err(ApiError::Busy.into()),
        (5, _) => Err(BadRecord(5).into()),
        _ => Ok(Some(n * 10)),
    }
}

#[step(
    chunk = 3,
    retry(Timeout, ApiError::Busy { .. }, ApiError::Status(503, ..), limit = 3, backoff = fixed("1ms")),
    no_retry(ApiError::BadRequest { .. }),
    skip(BadRecord, ApiError, limit = 2),
    no_skip(Corrupted),
    no_rollback(Minor),
    processor_non_transactional,
)]
fn tolerant() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(1..=6), process, |items: &[u32]| {
        Ok::<_, Error>(WRITTEN.lock().unwrap().extend_from_slice(items))
    })
}

#[tokio::main]
async fn main() {
    // Never raised here, but the variant with named fields and the unused types must
    // still type-check as error matchers.
    let _ = ApiError::BadRequest { reason: String::new() };
    let _ = (Corrupted, Minor);

    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let job = Job::new("tolerant", Flow::start(tolerant {}).build());
    let execution = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
    let step = &execution.step_executions[0];
    assert_eq!(*WRITTEN.lock().unwrap(), [10, 20, 30, 40, 60]);
    assert_eq!(step.counts.process_skip, 1);
    let calls = CALLS.lock().unwrap();
    let count = |n: u32| calls.iter().filter(|c| **c == n).count();
    // `processor_non_transactional`: item 1 succeeded once and was not processed again
    // when item 2 rolled its chunk back.
    assert_eq!(count(1), 1, "{calls:?}");
    assert_eq!(count(2), 2, "{calls:?}");
    assert_eq!(count(3), 2, "{calls:?}");
    // `limit = 3`: two failed attempts and a third that succeeds.
    assert_eq!(count(4), 3, "{calls:?}");
}
