//! `listener(...)` registers a value as every listener kind it implements, sharing one
//! `Arc`; it takes the value or an `Arc` of it.
#![deny(warnings)]
use batch::fault::{RetryContext, RetryListener, SkipListener};
use batch::prelude::*;
use batch::step::{ChunkListener, StepExecutionListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Implements all seven kinds and writes down what it hears.
#[derive(Default)]
struct Audit {
    events: Mutex<Vec<String>>,
}

impl Audit {
    fn hear(&self, event: impl Into<String>) {
        self.events.lock().unwrap().push(event.into());
    }
}

impl StepExecutionListener for Audit {
    fn before_step(&self, step: &mut StepExecution) {
        self.hear(format!("before {}", step.step_name));
    }
}

impl ChunkListener for Audit {
    fn after_chunk(&self, _: &StepExecution) {
        self.hear("chunk");
    }
}

impl RetryListener for Audit {
    fn on_error(&self, ctx: &RetryContext, error: &Error) {
        self.hear(format!("attempt {} failed: {error}", ctx.retry_count));
    }
}

impl ItemReadListener<u32> for Audit {
    fn after_read(&self, item: &u32) {
        self.hear(format!("read {item}"));
    }
}

impl ItemProcessListener<u32, String> for Audit {
    fn after_process(&self, item: &u32, result: Option<&String>) {
        self.hear(format!("processed {item} -> {result:?}"));
    }
}

impl ItemWriteListener<String> for Audit {
    fn after_write(&self, items: &[String]) {
        self.hear(format!("wrote {items:?}"));
    }
}

impl SkipListener<u32, String> for Audit {
    fn on_skip_in_process(&self, item: &u32, _: &Error) {
        self.hear(format!("skipped {item}"));
    }
}

static AUDIT: LazyLock<Arc<Audit>> = LazyLock::new(Arc::default);

/// Only a step listener, counting the steps it saw start.
struct Starts(Arc<AtomicUsize>);

impl StepExecutionListener for Starts {
    fn before_step(&self, _: &mut StepExecution) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

static STARTS: LazyLock<Arc<AtomicUsize>> = LazyLock::new(Arc::default);

#[derive(Debug, thiserror::Error)]
#[error("flaky")]
struct Flaky;

#[derive(Debug, thiserror::Error)]
#[error("bad {0}")]
struct Bad(u32);

static FLAKY_ONCE: AtomicUsize = AtomicUsize::new(0);

#[step(
    chunk = 2,
    retry(Flaky, limit = 2),
    skip(Bad),
    listener(AUDIT.clone()),
    listener(Starts(STARTS.clone())),
)]
fn tolerant() -> Result<impl ChunkStep<u32, String>, Error> {
    Ok(chunk(
        ListReader::new(1..=4u32),
        |n: &u32| match n {
            1 if FLAKY_ONCE.fetch_add(1, Ordering::SeqCst) == 0 => Err(Error::new(Flaky)),
            3 => Err(Error::new(Bad(3))),
            n => Ok(Some(n.to_string())),
        },
        |_: &[String]| Ok::<_, Error>(()),
    ))
}

// No fault tolerance: the same value is a step and chunk listener here.
#[step(chunk = 10, listener(AUDIT.clone()), listener(Starts(STARTS.clone())))]
fn plain() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1u32]), |_: &[u32]| Ok::<_, Error>(()))
}

#[step(listener(AUDIT.clone()))]
fn tasklet() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[job]
fn audited() -> Flow {
    Flow::start(tolerant {}).next(plain {}).next(tasklet {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher.run(audited {}, JobParameters::new()).await.unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{:?}", execution.exit_status);
    assert_eq!(execution.step_executions[0].counts.process_skip, 1);

    let events = AUDIT.events.lock().unwrap().clone();
    let count = |event: &str| events.iter().filter(|e| *e == event).count();
    // Registered once per kind: each step starts once, not once per kind.
    assert_eq!(count("before tolerant"), 1, "{events:?}");
    assert_eq!(count("before plain"), 1, "{events:?}");
    assert_eq!(count("before tasklet"), 1, "{events:?}");
    // Every failed attempt in the processor is heard, retryable or not (as in Spring).
    assert_eq!(count("attempt 1 failed: flaky"), 1, "{events:?}");
    assert_eq!(count("attempt 1 failed: bad 3"), 1, "{events:?}");
    assert_eq!(count("skipped 3"), 1, "{events:?}");
    assert!(count("chunk") >= 5, "{events:?}");
    // Item listeners where the types fit: reads of u32 on both chunk steps, processing
    // and writes only on the tolerant step (the plain one writes u32, not String).
    assert_eq!(count("read 4"), 1, "{events:?}");
    assert_eq!(count("read 1"), 2, "{events:?}");
    assert_eq!(count("processed 4 -> Some(\"4\")"), 1, "{events:?}");
    assert!(count("wrote [\"4\"]") == 1, "{events:?}");
    assert_eq!(STARTS.load(Ordering::SeqCst), 2);
}
