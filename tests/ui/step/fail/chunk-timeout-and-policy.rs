use batch::prelude::*;
use batch::repeat::SimpleCompletionPolicy;

#[step(chunk(size = 100, timeout = "30s", policy = SimpleCompletionPolicy::new(50)))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
