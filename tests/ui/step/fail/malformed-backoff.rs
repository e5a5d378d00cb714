use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[step(chunk = 2, retry(Timeout, limit = 3, backoff = linear("100ms")))]
fn linear() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

#[step(chunk = 2, retry(Timeout, limit = 3, backoff = exponential(initial = "1s", multiplier = 0.5, max = "100ms")))]
fn shrinking() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

#[step(chunk = 2, retry(Timeout, limit = 3, backoff = random(max = "1s")))]
fn half_random() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
