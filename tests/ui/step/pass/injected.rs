//! Arguments without `#[param]` come from `FromStepScope`.
use batch::prelude::*;
use batch::item::StepIdentity;
use batch::step::StepScope;

#[derive(ExecutionContext, Default, Debug)]
struct Cursor {
    #[context(key = "current.index")]
    index: u64,
}

#[derive(Clone)]
struct Greeting(&'static str);

#[step]
fn inspect(
    scope: StepScope,
    parameters: JobParameters,
    context: ExecutionContext,
    cursor: State<Cursor>,
    identity: StepIdentity,
    greeting: Res<Greeting>,
) -> impl Tasklet {
    assert!(!scope.is_restart());
    assert!(parameters.is_empty());
    assert!(context.is_empty());
    assert_eq!(cursor.index, 0);
    assert_eq!(identity.step_name, "inspect");
    assert_eq!(greeting.0.0, "hello");
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job]
fn inspection() -> Flow {
    Flow::start(inspect {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new()).resource(Greeting("hello"));
    let execution = launcher.run(inspection {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
}
