use batch::prelude::*;

#[step(start_limit = 0)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
