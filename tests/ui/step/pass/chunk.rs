//! An async chunk step with every key of `#[step]`.
use batch::prelude::*;
use std::sync::Mutex;

static WRITTEN: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());

#[step(chunk = 2, name = "double", start_limit = 3, allow_start_if_complete = false)]
async fn doubling(#[param] count: u32) -> impl ChunkStep<u32, u32> {
    chunk(
        ListReader::new(1..=count),
        |n: &u32| Ok::<_, Error>(Some(n * 2)),
        |items: &[u32]| Ok::<_, Error>(WRITTEN.lock().unwrap().push(items.to_vec())),
    )
}

#[step(chunk = 10, allow_start_if_complete)]
pub(crate) fn last() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(Vec::<u32>::new()), |_: &[u32]| Ok::<_, Error>(()))
}

#[job]
fn doubler() -> Flow {
    Flow::start(doubling {}).next(last {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(doubler {}, JobParameters::new().with("count", 5u32)).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    let step = &execution.step_executions[0];
    assert_eq!(step.step_name, "double");
    assert_eq!(step.counts.write, 5);
    assert_eq!(*WRITTEN.lock().unwrap(), [vec![2, 4], vec![6, 8], vec![10]]);
}
