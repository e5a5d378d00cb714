//! Step functions returning `Result<impl …, E>` with the user's error or the crate's.
use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("no such region: {0}")]
struct UnknownRegion(String);

#[step(chunk = 3)]
async fn load(#[param] region: String) -> Result<impl ChunkStep<String, String>, UnknownRegion> {
    if region != "eu" {
        return Err(UnknownRegion(region));
    }
    Ok(read_write(ListReader::new(vec![region]), |_: &[String]| Ok::<_, Error>(())))
}

#[step]
fn announce() -> batch::Result<impl Tasklet> {
    Ok(|_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished))
}

#[job]
fn regional() -> Flow {
    Flow::start(load {}).next(announce {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let ok = launcher.run(regional {}, JobParameters::new().with("region", "eu")).await.unwrap();
    assert_eq!(ok.status, BatchStatus::Completed);
    assert_eq!(ok.step_executions.len(), 2);

    let failed = launcher.run(regional {}, JobParameters::new().with("region", "mars")).await.unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert!(failed.exit_status.description.contains("no such region: mars"), "{:?}", failed.exit_status);
}
