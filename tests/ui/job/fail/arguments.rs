use batch::prelude::*;

#[step]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job]
fn nightly(region: String) -> Flow {
    let _ = region;
    Flow::start(load {}).build()
}

fn main() {}
