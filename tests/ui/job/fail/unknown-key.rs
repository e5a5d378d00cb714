use batch::prelude::*;

#[step]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job(name = "nightly", restartable = false)]
fn nightly() -> Flow {
    Flow::start(load {}).build()
}

fn main() {}
