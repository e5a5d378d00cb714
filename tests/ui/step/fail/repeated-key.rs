use batch::prelude::*;

#[step(start_limit = 2, name = "load", start_limit = 3)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
