use batch::prelude::*;

#[step]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job]
async fn nightly() -> Flow {
    Flow::start(load {}).build()
}

fn main() {}
