use batch::prelude::*;

#[step(chunk = 3, chunk_size = 10)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
