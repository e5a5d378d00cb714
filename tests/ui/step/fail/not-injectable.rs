use batch::prelude::*;

struct Pool;

#[step]
fn load(#[param] region: Vec<u8>, pool: Pool) -> impl Tasklet {
    let _ = (region, pool);
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
