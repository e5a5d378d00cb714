use batch::prelude::*;

// Not a `std::error::Error`, so it cannot become the framework's error.
#[derive(Debug)]
struct Missing;

#[step]
fn load() -> Result<impl Tasklet, Missing> {
    Ok(|_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished))
}

fn main() {}
