use batch::prelude::*;

#[step(chunk = 0)]
fn copy() -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(vec![1, 2, 3]), |n: &u32| Ok::<_, Error>(Some(*n)), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
