use batch::prelude::*;

#[step(chunk = 2)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
