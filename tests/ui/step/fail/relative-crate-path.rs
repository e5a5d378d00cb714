use batch::prelude::*;

#[step(crate = batch)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
