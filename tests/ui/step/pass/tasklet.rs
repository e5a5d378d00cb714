//! A sync tasklet step with job parameters, named by argument and explicitly.
use batch::prelude::*;
use std::sync::Mutex;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[step]
fn greet(
    #[param] region: String,
    #[param("targetDate")] date: String,
    #[param(name = "retries")] retries: Option<i64>,
) -> impl Tasklet {
    move |_: &mut TaskletContext<'_>| {
        SEEN.lock().unwrap().push(format!("{region} {date} {retries:?}"));
        Ok::<_, Error>(RepeatStatus::Finished)
    }
}

#[job]
fn greeting() -> Flow {
    Flow::start(greet {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let params = JobParameters::new().with("region", "eu").with("targetDate", "2024-05-01");
    let execution = launcher.run(greeting {}, params).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    assert_eq!(execution.step_executions[0].step_name, "greet");
    assert_eq!(*SEEN.lock().unwrap(), ["eu 2024-05-01 None"]);
}
