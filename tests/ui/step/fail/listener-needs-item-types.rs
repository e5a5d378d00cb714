use batch::chunk::{ChunkSpec, NoProcessor};
use batch::item::NoopWriter;
use batch::prelude::*;
use batch::step::ChunkListener;

#[derive(Debug, thiserror::Error)]
#[error("bad record")]
struct BadRecord;

struct Progress;

impl ChunkListener for Progress {}

// A fault-tolerant step also registers a listener as its `SkipListener<I, O>` when it
// is one, which needs `I` and `O` from an `impl ChunkStep<I, O>` return type.
#[step(chunk = 2, skip(BadRecord), listener(Progress))]
fn copy() -> ChunkSpec<ListReader<u32>, NoProcessor, NoopWriter> {
    read_write(ListReader::new(vec![1, 2, 3]), NoopWriter)
}

fn main() {}
