use batch::prelude::*;

struct Steps;

impl Steps {
    #[step]
    fn load(&self) -> impl Tasklet {
        |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
    }
}

fn main() {}
