//! `promote("key", …)`: keys of a completed step's context handed to the job context,
//! where the next step reads them.
#![deny(warnings)]
use batch::prelude::*;

#[step(promote("letters.count"))]
fn count() -> impl Tasklet {
    tasklet(|cx: &mut TaskletContext<'_>| {
        cx.step_context().put("letters.count", &3)?;
        cx.step_context().put("scratch", &true)?;
        Ok(RepeatStatus::Finished)
    })
}

#[step]
fn report(scope: batch::step::StepScope) -> impl Tasklet {
    let count: Option<i64> = scope.job_context().get("letters.count").unwrap();
    let scratch: Option<bool> = scope.job_context().get("scratch").unwrap();
    tasklet(move |_: &mut TaskletContext<'_>| {
        assert_eq!((count, scratch), (Some(3), None), "only the promoted key");
        Ok(RepeatStatus::Finished)
    })
}

#[job]
fn promoted() -> Flow {
    Flow::start(count {}).next(report {}).build()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let execution = JobLauncher::new(InMemoryJobRepository::new())
        .run(promoted {}, JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
    assert_eq!(execution.context.get::<i64>("letters.count").unwrap(), Some(3));
}
