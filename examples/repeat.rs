//! Seed 003's repeat loops, each printing what happened:
//!
//! 1. a processor that runs an inner `RepeatTemplate` three times per item under a
//!    `SimpleCompletionPolicy(3)`;
//! 2. a tasklet whose loop is stopped by a `TimeoutTerminationPolicy`;
//! 3. a tasklet whose loop tolerates two errors with a `SimpleLimitExceptionHandler`
//!    and ends with the third.
//!
//! ```text
//! cargo run --example repeat
//! ```

use std::time::Duration;

use batch::cli::Runner;
use batch::prelude::*;
use batch::repeat::{
    RepeatTemplate, SimpleCompletionPolicy, SimpleLimitExceptionHandler, TimeoutTerminationPolicy,
};

/// Polishes each item three times, in a repeat loop of its own.
pub struct Polisher;

impl ItemProcessor<String, String> for Polisher {
    async fn process(&mut self, item: &String) -> Result<Option<String>> {
        let mut polished = item.clone();
        RepeatTemplate::new(SimpleCompletionPolicy::new(3)).iterate_sync(None, |ctx| {
            polished.push('*');
            println!(
                "  [processor] {item}: pass {} -> {polished}",
                ctx.started_count()
            );
            Ok(RepeatStatus::Continuable)
        })?;
        Ok(Some(polished))
    }
}

#[step(chunk = 2)]
fn inner_loop_per_item() -> impl ChunkStep<String, String> {
    chunk(
        ListReader::new(["apple", "pear", "plum"].map(String::from)),
        Polisher,
        writer(|items: &[String]| {
            println!("  [writer] {items:?}");
            Ok(())
        }),
    )
}

/// Polls (pretend) until 60 ms have passed, however many polls that takes.
#[step]
fn loop_stopped_by_a_timeout() -> impl Tasklet {
    Poller
}

/// A tasklet that runs an inner loop until its timeout.
pub struct Poller;

impl Tasklet for Poller {
    async fn execute(&mut self, cx: &mut TaskletContext<'_>) -> Result<RepeatStatus> {
        let mut polls = 0u64;
        let status = RepeatTemplate::new(TimeoutTerminationPolicy::new(Duration::from_millis(60)))
            .iterate(None, |_| {
                polls += 1;
                async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(RepeatStatus::Continuable)
                }
            })
            .await?;
        println!("  [timeout] stopped after {polls} polls of 10 ms (last status {status:?})");
        cx.step_context().put("polls", &polls)?;
        Ok(RepeatStatus::Finished)
    }
}

/// The error every call of the flaky service raises, numbered.
#[derive(Debug, thiserror::Error)]
#[error("flaky call number {0} failed")]
pub struct Flaky(u32);

/// Every call fails; the loop tolerates two failures and ends with the third.
#[step]
fn loop_tolerating_two_errors() -> impl Tasklet {
    ToleratingTasklet
}

/// A tasklet whose inner loop gives up on the third error.
pub struct ToleratingTasklet;

impl Tasklet for ToleratingTasklet {
    async fn execute(&mut self, _cx: &mut TaskletContext<'_>) -> Result<RepeatStatus> {
        let mut calls = 0;
        let outcome = RepeatTemplate::new(SimpleCompletionPolicy::new(10))
            .exception_handler(SimpleLimitExceptionHandler::new(2))
            .iterate_sync(None, |_| {
                calls += 1;
                println!("  [limit] call {calls} fails");
                Err(Flaky(calls).into())
            });
        match outcome {
            Ok(_) => println!("  [limit] the loop ended without a third error"),
            Err(e) => {
                println!("  [limit] two errors were swallowed; the third ended the loop: {e}")
            }
        }
        Ok(RepeatStatus::Finished)
    }
}

#[job(name = "repeatJob", optional = [])]
fn repeat_job() -> Flow {
    Flow::start(inner_loop_per_item {})
        .next(loop_stopped_by_a_timeout {})
        .next(loop_tolerating_two_errors {})
        .build()
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Seed 003: an inner repeat loop per item, a timeout, an exception limit")
        .run(repeat_job {})
}
