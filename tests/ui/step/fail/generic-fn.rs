use batch::prelude::*;

#[step(chunk = 2)]
fn copy<T: Clone + Send + Sync + 'static>(items: Vec<T>) -> impl ChunkStep<T, T> {
    chunk(ListReader::new(items), |t: &T| Ok::<_, Error>(Some(t.clone())), |_: &[T]| Ok::<_, Error>(()))
}

fn main() {}
