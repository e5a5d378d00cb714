use batch::prelude::*;

#[step]
fn load(#[param] (from, to): (String, String)) -> impl Tasklet {
    let _ = (from, to);
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
