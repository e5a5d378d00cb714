//! Mistakes anywhere in the attribute, even after one that breaks its syntax, are
//! all reported by one build.
use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

#[step(chunk_sise = 2, retry(Timeout, limits = 3), skip(limit = 10), start_limit = 0)]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
