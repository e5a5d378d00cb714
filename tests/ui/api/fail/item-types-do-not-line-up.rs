use batch::prelude::*;

#[step(chunk = 2)]
fn copy() -> impl ChunkStep<i32, String> {
    chunk(
        ListReader::new(vec![1, 2, 3]),
        processor(|n: &i32| Ok(Some(n * 2))),
        writer(|_: &[String]| Ok(())),
    )
}

fn main() {}
