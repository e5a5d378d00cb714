//! The runtime of the batch framework: chunk-oriented and tasklet steps, jobs and their
//! flows, the job repository in the Spring Batch 5 tables, restart where a run stopped.
//!
//! Users depend on the `batch` facade crate; this crate holds the machinery.

pub mod adapt;
pub mod calls;
pub mod classify;
pub mod compose;
pub mod context;
pub mod error;
pub mod execution;
pub mod fault;
pub mod file;
pub mod incrementer;
pub mod item;
pub mod job;
pub mod launch;
pub mod operator;
pub mod params;
pub mod repeat;
pub mod repository;
pub mod split;
pub mod sql;
pub mod step;
pub mod telemetry;
pub mod testing;
pub mod validate;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "console")]
pub mod console;

#[cfg(test)]
mod module_cycles;

pub use error::{Error, Result};
/// The chunk-oriented step; also at [`step::chunk`].
pub use step::chunk;
/// The tasklet step; also at [`step::tasklet`].
pub use step::tasklet;

/// The traits and types most jobs use.
pub mod prelude {
    pub use crate::adapt::{
        async_processor, async_reader, async_tasklet, async_writer, processor, reader, tasklet,
        writer,
    };
    pub use crate::context::{ContextState, ExecutionContext, JobContext};
    pub use crate::error::{Context as _, Error, Result};
    pub use crate::execution::{BatchStatus, ExitStatus, JobExecution, StepExecution};
    pub use crate::fault::{RetryListener, SkipListener};
    pub use crate::item::{
        ItemProcessor, ItemReader, ItemWriter, ListReader, StepIdentity, WriteContext,
    };
    pub use crate::job::{Flow, IntoJob, Job, JobExecutionListener};
    pub use crate::launch::JobLauncher;
    pub use crate::params::JobParameters;
    pub use crate::repeat::RepeatStatus;
    #[cfg(feature = "mysql")]
    pub use crate::repository::MySqlJobRepository;
    #[cfg(feature = "postgres")]
    pub use crate::repository::PostgresJobRepository;
    #[cfg(feature = "sqlite")]
    pub use crate::repository::SqliteJobRepository;
    pub use crate::repository::{DbPool, InMemoryJobRepository, JobRepository};
    pub use crate::step::chunk::{ChunkStep, chunk, read_write};
    pub use crate::step::tasklet::{Tasklet, TaskletContext};
    pub use crate::step::{
        ChunkListener, IntoStep, ItemProcessListener, ItemReadListener, ItemWriteListener, Res,
        State, StepExecutionListener,
    };
}
