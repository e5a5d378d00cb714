//! The three backoffs of `retry(...)`, with durations read by the macro.
#![deny(warnings)]
use batch::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("try again")]
struct TryAgain;

static FAILURES: AtomicU32 = AtomicU32::new(0);

/// Fails every first attempt of every item.
fn flaky(n: &u32) -> Result<Option<u32>, Error> {
    if FAILURES.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
        Err(TryAgain.into())
    } else {
        Ok(Some(*n))
    }
}

#[step(chunk = 1, retry(TryAgain, limit = 2, backoff = fixed("1ms")))]
fn fixed_pause() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(1..=2), flaky, |_: &[u32]| Ok::<_, Error>(()))
}

#[step(
    chunk = 1,
    retry(TryAgain, limit = 4, backoff = exponential(initial = "1ms", multiplier = 1.5, max = "1s"))
)]
fn exponential_pause() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(1..=2), flaky, |_: &[u32]| Ok::<_, Error>(()))
}

#[step(chunk = 1, retry(TryAgain, limit = 2, backoff = exponential(initial = "1ms", max = "2ms")))]
fn default_multiplier() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(1..=2), flaky, |_: &[u32]| Ok::<_, Error>(()))
}

#[step(chunk = 1, retry(TryAgain, limit = 2, backoff = random(min = "1ms", max = "3ms")))]
fn random_pause() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(1..=2), flaky, |_: &[u32]| Ok::<_, Error>(()))
}

#[job]
fn pauses() -> Flow {
    batch::flow![fixed_pause, exponential_pause, default_multiplier, random_pause]
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(pauses {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
    for step in &execution.step_executions {
        assert_eq!(step.counts.write, 2, "{}", step.step_name);
        assert_eq!(step.counts.rollback, 2, "{}", step.step_name);
    }
}
