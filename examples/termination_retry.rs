//! Seed 001's Scream job: retry in the processor (per item) and in the writer (per
//! chunk), with a transcript of what the reader, processor, writer and retry listener
//! do, in the order they do it.
//!
//! ```text
//! cargo run --example termination_retry -- mode=processor patience=1   # completes
//! cargo run --example termination_retry -- mode=processor patience=3   # fails at the retry limit
//! cargo run --example termination_retry -- mode=writer patience=2      # completes
//! ```
//!
//! The step retries `TerminationFailed` with a limit of 3 attempts (one try, two
//! retries). Item 3 resists `patience` times. In processor mode the chunk is rolled back
//! and processed again from its buffered items (the reader is not called again) and
//! the retry count is kept per item: with patience 3 the fourth pass does not call the
//! processor for item 3 at all but goes to recovery, which is not a skip, so the step
//! fails. In writer mode the retry count is kept per chunk and every retry processes
//! the whole chunk again before writing it.

use std::fmt;

use batch::cli::Runner;
use batch::fault::{RetryContext, RetryListener};
use batch::prelude::*;

/// An item of the seed's input.
#[derive(Debug, Clone)]
pub struct Scream {
    /// Its position, 1 to 6.
    pub id: u32,
    /// What it says.
    pub scream: &'static str,
    /// What the processor prints about it.
    pub process_msg: &'static str,
}

impl fmt::Display for Scream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.id, self.scream)
    }
}

fn screams() -> Vec<Scream> {
    [
        (1, "stop", "told to stop, did not listen."),
        (2, "please", "the begging is tiresome."),
        (3, "help me", "rescue request ignored."),
        (4, "argh", "howls as the disk bursts."),
        (5, "aaargh", "memory collapse scream."),
        (6, "System.exit(-666)", "instant-kill protocol engaged."),
    ]
    .into_iter()
    .map(|(id, scream, process_msg)| Scream {
        id,
        scream,
        process_msg,
    })
    .collect()
}

/// The seed's transient error, retried by the step.
#[derive(Debug, thiserror::Error)]
#[error("TerminationFailed: {0}")]
pub struct TerminationFailed(String);

/// Prints each item as it is read.
pub struct ScreamReader(std::vec::IntoIter<Scream>);

impl ItemReader<Scream> for ScreamReader {
    async fn read(&mut self) -> Result<Option<Scream>> {
        let item = self.0.next();
        if let Some(s) = &item {
            println!("[ItemReader]: execution target = {s}");
        }
        Ok(item)
    }
}

/// Fails on item 3 until it has failed `patience` times (when it resists in this mode).
pub struct Terminator {
    resists: bool,
    patience: u32,
    mercy: u32,
}

impl ItemProcessor<Scream, Scream> for Terminator {
    async fn process(&mut self, item: &Scream) -> Result<Option<Scream>> {
        println!("[ItemProcessor]: execution target = {item}");
        if self.resists && item.id == 3 && self.mercy < self.patience {
            self.mercy += 1;
            println!("-> execution failed");
            return Err(TerminationFailed(format!("resisted execution = {item}")).into());
        }
        if self.resists {
            println!("-> executed ({})", item.process_msg);
        }
        Ok(Some(item.clone()))
    }
}

/// Records the chunk; fails on item 3 until it has failed `patience` times (when it
/// resists in this mode).
pub struct Recorder {
    resists: bool,
    patience: u32,
    mercy: u32,
}

impl ItemWriter<Scream> for Recorder {
    async fn write(&mut self, items: &[Scream], _cx: &mut WriteContext<'_>) -> Result<()> {
        let list: Vec<String> = items.iter().map(ToString::to_string).collect();
        println!(
            "[ItemWriter]: recording starts. targets = [{}]",
            list.join(", ")
        );
        for item in items {
            if self.resists && item.id == 3 && self.mercy < self.patience {
                self.mercy += 1;
                println!("[ItemWriter]: recording failed, a resisting item = {item}");
                return Err(TerminationFailed(format!("refused the record = {item}")).into());
            }
            println!("[ItemWriter]: recorded. executed item = {item}");
        }
        Ok(())
    }
}

/// Speaks up after every failed attempt, with the attempts so far.
pub struct Announcer;

impl RetryListener for Announcer {
    fn on_error(&self, ctx: &RetryContext, error: &Error) {
        println!(
            "SYSTEM: look at that, it will not die? {error} (attempts so far = {}). Executing again.\n",
            ctx.retry_count
        );
    }
}

#[step(
    name = "terminationRetryStep",
    chunk = 3,
    retry(TerminationFailed, limit = 3),
    listener(Announcer)
)]
fn termination_retry_step(
    #[param] mode: Option<String>,
    #[param] patience: Option<i64>,
) -> Result<impl ChunkStep<Scream, Scream>> {
    let mode = mode.unwrap_or_else(|| "processor".into());
    let in_writer = match mode.as_str() {
        "processor" => false,
        "writer" => true,
        other => {
            return Err(Error::msg(format!(
                "job parameter `mode`: `{other}` is neither `processor` nor `writer`"
            )));
        }
    };
    let patience = patience.unwrap_or(1).max(0) as u32;
    Ok(chunk(
        ScreamReader(screams().into_iter()),
        Terminator {
            resists: !in_writer,
            patience,
            mercy: 0,
        },
        Recorder {
            resists: in_writer,
            patience,
            mercy: 0,
        },
    ))
}

#[job(name = "terminationRetryJob", optional = ["mode", "patience"])]
fn termination_retry_job() -> Flow {
    Flow::start(termination_retry_step {}).build()
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Seed 001: retry in the processor or the writer (mode=processor|writer patience=N,long)")
        .run(termination_retry_job {})
}
