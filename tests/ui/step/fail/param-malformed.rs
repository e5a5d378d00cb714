use batch::prelude::*;

#[step]
fn load(
    #[param = "targetDate"] date: String,
    #[param(42)] count: i64,
    #[param("region", "zone")] region: String,
    #[param(key = "mode")] mode: String,
) -> impl Tasklet {
    let _ = (date, count, region, mode);
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

fn main() {}
