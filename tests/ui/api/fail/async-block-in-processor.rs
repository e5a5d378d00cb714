use batch::prelude::*;

#[step(chunk = 2)]
fn double() -> impl ChunkStep<i32, i32> {
    chunk(
        ListReader::new(vec![1, 2, 3]),
        |n: &i32| async move { Ok::<_, Error>(Some(n * 2)) },
        batch::adapt::writer(|_: &[i32]| Ok(())),
    )
}

fn main() {}
