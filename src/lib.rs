//! Restartable, fault-tolerant batch jobs: Spring Batch's model, native to Rust.
//!
//! Mark plain functions as steps and jobs; the runtime runs them in chunks, each chunk
//! one transaction, and records every run in the Spring Batch metadata tables, so a
//! failed job restarts exactly where it stopped.
//!
//! ```no_run
//! use batch::prelude::*;
//!
//! #[step(chunk = 2)]
//! fn shout(#[param] prefix: String) -> impl ChunkStep<String, String> {
//!     chunk(
//!         ListReader::new(["a", "b", "c"].map(String::from)).restartable("letters"),
//!         processor(move |s: &String| Ok(Some(format!("{prefix}{}", s.to_uppercase())))),
//!         writer(|items: &[String]| Ok(println!("{items:?}"))),
//!     )
//! }
//!
//! #[job]
//! fn shout_job() -> Flow {
//!     Flow::start(shout {}).build()
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     batch::cli::run(shout_job {})
//! }
//! ```

pub use batch_core::*;

/// The attribute and derive macros.
pub use batch_macros::{ExecutionContext, job, step};

/// What most jobs need: `use batch::prelude::*;`.
pub mod prelude {
    pub use batch_core::prelude::*;
    pub use batch_macros::{ExecutionContext, job, step};
}

/// Builds a sequential flow from `#[step]` functions (or anything `IntoStep`):
/// `flow![a, b, c]` is `Flow::start(a {}).next(b {}).next(c {}).build()`.
#[macro_export]
macro_rules! flow {
    ($first:ident $(, $rest:ident)* $(,)?) => {
        $crate::job::Flow::start($first {}) $( .next($rest {}) )* .build()
    };
}

/// The README's Rust code is compiled as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// What macro expansions name; not for direct use.
#[doc(hidden)]
#[deprecated = "implementation detail of the batch macros"]
pub mod __private {
    pub use batch_core::chunk::ChunkStep;
    pub use batch_core::classify::ErrorMatcher;
    pub use batch_core::context::{ContextError, ContextState, ExecutionContext};
    pub use batch_core::error::{Error, Result};
    pub use batch_core::fault::{Backoff, RetryListener, SkipListener};
    pub use batch_core::job::{Flow, IntoJob, Job};
    pub use batch_core::params::FromParamValue;
    pub use batch_core::repeat::CompletionPolicy;
    pub use batch_core::step::partition::Partition;
    pub use batch_core::step::{
        ChunkListener, ItemProcessListener, ItemReadListener, ItemWriteListener,
        StepExecutionListener,
    };
    pub use batch_core::step::{
        FromStepScope, IntoStep, IntoStepOutput, ResourceNeed, StepBuilder, StepDef, StepScope,
    };
    pub use batch_core::tasklet::Tasklet;
    pub use batch_core::validate::ParameterRules;
    pub use serde::Serialize;
    pub use serde::de::DeserializeOwned;
    pub use std::sync::Arc;
    pub use std::time::Duration;
}
