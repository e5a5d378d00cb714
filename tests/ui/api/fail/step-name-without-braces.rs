use batch::prelude::*;

#[step]
fn validate() -> impl Tasklet {
    tasklet(|_: &mut TaskletContext<'_>| Ok(RepeatStatus::Finished))
}

#[job]
fn my_job() -> Flow {
    Flow::start(validate).build()
}

fn main() {}
