use batch::prelude::*;

#[step(chunk(size = 0, timeout = "30s"))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
