use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[step(chunk = 2, retry(Timeout, limit = 3), no_retry(Timeout))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
