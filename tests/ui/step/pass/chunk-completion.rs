//! `chunk(size = N, timeout = "…")` and `chunk(policy = …)` next to `chunk = N`.
#![deny(warnings)]
use batch::prelude::*;
use batch::repeat::SimpleCompletionPolicy;
use std::sync::Mutex;

static CHUNKS: Mutex<Vec<(&str, Vec<u32>)>> = Mutex::new(Vec::new());

fn record(step: &'static str) -> impl FnMut(&[u32]) -> Result<(), Error> + Send {
    move |items: &[u32]| Ok(CHUNKS.lock().unwrap().push((step, items.to_vec())))
}

#[step(chunk(size = 2, timeout = "30s"))]
fn timed() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(1..=3), record("timed"))
}

// The policy alone decides when a chunk is full; `size` only sizes its buffer.
#[step(chunk(size = 10, policy = SimpleCompletionPolicy::new(3)))]
fn by_policy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(1..=4), record("by_policy"))
}

#[step(chunk(policy = SimpleCompletionPolicy::new(4)))]
fn policy_only() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(1..=5), record("policy_only"))
}

#[job]
fn completion() -> Flow {
    batch::flow![timed, by_policy, policy_only]
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(completion {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
    assert_eq!(
        *CHUNKS.lock().unwrap(),
        [
            ("timed", vec![1, 2]),
            ("timed", vec![3]),
            ("by_policy", vec![1, 2, 3]),
            ("by_policy", vec![4]),
            ("policy_only", vec![1, 2, 3, 4]),
            ("policy_only", vec![5]),
        ]
    );
}
