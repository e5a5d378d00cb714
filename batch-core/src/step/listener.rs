//! Hooks around a step execution and around each of its chunks.

use std::sync::Arc;

use crate::error::Error;
use crate::execution::{ExitStatus, StepExecution};

/// Hooks around a step execution.
pub trait StepExecutionListener: Send + Sync {
    /// Before the step's first chunk, once the execution is STARTED.
    fn before_step(&self, _step: &mut StepExecution) {}
    /// May replace the exit status (it is combined with the step's by `ExitStatus::and`).
    fn after_step(&self, _step: &mut StepExecution) -> Option<ExitStatus> {
        None
    }
}

/// Hooks around each chunk (each transaction of a step).
pub trait ChunkListener: Send + Sync {
    /// Before each chunk's transaction begins.
    fn before_chunk(&self, _step: &StepExecution) {}
    /// After the chunk committed.
    fn after_chunk(&self, _step: &StepExecution) {}
    /// After the chunk rolled back.
    fn after_chunk_error(&self, _step: &StepExecution, _error: &Error) {}
}

/// The listeners a step runs with: its own and the launcher's.
#[derive(Clone, Default)]
pub(crate) struct StepListeners {
    pub(crate) step: Vec<Arc<dyn StepExecutionListener>>,
    pub(crate) chunk: Vec<Arc<dyn ChunkListener>>,
}

impl StepListeners {
    pub(crate) fn merged(&self, other: &StepListeners) -> StepListeners {
        StepListeners {
            step: self.step.iter().chain(&other.step).cloned().collect(),
            chunk: self.chunk.iter().chain(&other.chunk).cloned().collect(),
        }
    }
}
