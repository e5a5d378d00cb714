//! Seed 002's ExecutionContext example: a reader that keeps `current.index` in the step
//! context, fails on "C", and on restart resumes from the index it saved.
//!
//! ```text
//! cargo run --example execution_context_restart -- fail.on=C,string,false   # FAILED, exit 1
//! cargo run --example execution_context_restart                             # restarts: c, d, e
//! cargo run --example execution_context_restart                             # exit 3: complete
//! ```
//!
//! `fail.on` is not identifying, so both runs belong to the same job instance: the
//! second is a restart. The first commits [a, b] (COMMIT 1, READ 2, WRITE 2) and fails
//! reading C with `current.index` = 2 saved; the second starts at index 2.

use batch::cli::Runner;
use batch::prelude::*;

/// The reader's position, as the seed names it.
#[derive(ExecutionContext, Default)]
pub struct ReaderState {
    /// Index of the next item to read.
    #[context(key = "current.index")]
    pub current_index: usize,
}

/// The failure `fail.on` injects, naming the item.
#[derive(Debug, thiserror::Error)]
#[error("Processing failed for item: {0}")]
pub struct ProcessingFailed(pub String);

/// Reads the seed's letters from `current.index` on, failing on `fail.on`.
pub struct LetterReader {
    data: Vec<&'static str>,
    current_index: usize,
    fail_on: Option<String>,
}

impl ItemReader<String> for LetterReader {
    async fn read(&mut self) -> Result<Option<String>> {
        let Some(item) = self.data.get(self.current_index) else {
            return Ok(None);
        };
        if self.fail_on.as_deref() == Some(*item) {
            return Err(ProcessingFailed(item.to_string()).into());
        }
        self.current_index += 1;
        Ok(Some(item.to_string()))
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.current_index = ctx.load::<ReaderState>()?.current_index;
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        ctx.store(&ReaderState {
            current_index: self.current_index,
        })?;
        Ok(())
    }
}

#[step(name = "STEP", chunk = 2)]
fn letters(#[param("fail.on")] fail_on: Option<String>) -> impl ChunkStep<String, String> {
    chunk(
        LetterReader {
            data: vec!["A", "B", "C", "D", "E"],
            current_index: 0,
            fail_on,
        },
        processor(|item: &String| Ok(Some(item.to_lowercase()))),
        writer(|items: &[String]| {
            println!("Writing items: {items:?}");
            Ok(())
        }),
    )
}

#[job(name = "EXECUTION_CONTEXT_TEST_JOB", optional = ["fail.on"])]
fn execution_context_job() -> Flow {
    Flow::start(letters {}).build()
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Seed 002: restart from current.index kept in the step context (fail.on=C,string,false to fail)")
        .run(execution_context_job {})
}
