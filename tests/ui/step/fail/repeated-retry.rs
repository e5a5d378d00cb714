use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[derive(Debug, thiserror::Error)]
#[error("busy")]
struct Busy;

// `retry(...)` is given once, with every type in it: a second one could contradict
// the first's limit.
#[step(chunk = 2, retry(Timeout, limit = 3), retry(Busy, limit = 3))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
