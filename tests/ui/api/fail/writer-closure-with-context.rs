use batch::prelude::*;

#[step(chunk = 2)]
fn copy() -> impl ChunkStep<i32, i32> {
    chunk(
        ListReader::new(vec![1, 2, 3]),
        processor(|n: &i32| Ok(Some(*n))),
        |_items: &[i32], _cx: &mut WriteContext<'_>| Ok::<_, Error>(()),
    )
}

fn main() {}
