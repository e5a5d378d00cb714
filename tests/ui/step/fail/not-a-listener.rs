use batch::fault::{RetryContext, RetryListener};
use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[derive(Default)]
struct Metrics;

#[step(chunk = 2, retry(Timeout, limit = 3), listener(Metrics::default()))]
fn tolerant() -> impl ChunkStep<u32, String> {
    chunk(
        ListReader::new(vec![1, 2, 3]),
        |n: &u32| Ok::<_, Error>(Some(n.to_string())),
        |_: &[String]| Ok::<_, Error>(()),
    )
}

/// Only a retry listener: a step without fault tolerance never calls it.
struct RetryLog;

impl RetryListener for RetryLog {
    fn on_error(&self, _: &RetryContext, _: &Error) {}
}

#[step(chunk = 2, listener(RetryLog))]
fn plain() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
