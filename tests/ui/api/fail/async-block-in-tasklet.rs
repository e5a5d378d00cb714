use batch::prelude::*;

#[step]
fn call() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| async move { Ok::<_, Error>(RepeatStatus::Finished) }
}

fn main() {}
