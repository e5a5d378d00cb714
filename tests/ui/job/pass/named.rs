use batch::prelude::*;

#[step]
fn settle() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job(name = "nightlySettlement")]
pub fn nightly_settlement() -> Flow {
    Flow::start(settle {}).build()
}

#[job]
fn r#default() -> Flow {
    Flow::start(settle {}).build()
}

#[tokio::main]
async fn main() {
    assert_eq!(nightly_settlement {}.into_job().name(), "nightlySettlement");
    assert_eq!(r#default {}.into_job().name(), "default");
    // The function is still an ordinary function.
    let _flow: Flow = nightly_settlement();

    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(nightly_settlement {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
}
