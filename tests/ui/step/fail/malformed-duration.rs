use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[step(
    chunk(size = 100, timeout = "30 secs"),
    retry(Timeout, limit = 3, backoff = exponential(initial = "1.5s", max = 5)),
)]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
