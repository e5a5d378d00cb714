//! Steps: how a step is defined, what it can be given, and the lifecycle every step
//! shares (Spring Batch's `AbstractStep`).
//!
//! A step is defined by a factory that builds its parts when the step starts, from a
//! [`StepScope`]: the job parameters, the restored contexts and shared resources (what
//! `@StepScope` beans get in Spring). `#[step]` writes that factory from a function's
//! arguments; [`StepBuilder`] is the same thing by hand.
//!
//! One concept per module: [`scope`] (what a step's factory draws on), [`output`] (what
//! a step function returns), [`listener`] (hooks around steps and chunks), `boundary`
//! (the transaction boundary and runtime that chunk and tasklet steps share),
//! [`builder`] (configuring a step), `lifecycle` (running one in a job), the two
//! kinds of step, [`chunk`] and [`tasklet`], and [`partition`] (a step whose work is
//! split into partitions, run here or by workers). Modules below import their siblings by
//! path, never this module, so no import leads back to where it started.

mod boundary;
pub mod builder;
pub mod chunk;
mod lifecycle;
pub mod listener;
pub mod output;
pub mod partition;
pub mod scope;
pub mod tasklet;

pub use boundary::{LeaseLost, StepInterrupted, StopSignal};
pub use builder::{IntoStep, StepBuilder, StepDef};
pub use chunk::StepSetupError;
pub use lifecycle::{StartLimitExceeded, StepEndNotSaved, StepPanicked, StepUnknown};
pub use listener::{
    ChunkListener, ItemProcessListener, ItemReadListener, ItemWriteListener, StepExecutionListener,
};
pub use output::{IntoStepOutput, StepOutput};
pub use scope::{
    FromStepScope, InjectionError, InputTaken, Once, Res, ResourceNeed, Resources, State, StepScope,
};

pub(crate) use lifecycle::{StepOutcome, handle_step};
