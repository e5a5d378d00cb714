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

/// Hooks around each read of a chunk step (Spring's `ItemReadListener`). Registered
/// with [`StepBuilder::item_read_listener`](crate::step::StepBuilder::item_read_listener)
/// or `#[step(listener(…))]`.
pub trait ItemReadListener<I>: Send + Sync {
    /// Before each read.
    fn before_read(&self) {}
    /// After a read that returned an item (not after the end of input).
    fn after_read(&self, _item: &I) {}
    /// After a read that failed.
    fn on_read_error(&self, _error: &Error) {}
}

/// Hooks around each item a chunk step's processor handles (Spring's
/// `ItemProcessListener`); a step without a processor calls none. With fault
/// tolerance an item may be processed again, on a retry or a scan, and each call is
/// heard.
pub trait ItemProcessListener<I, O>: Send + Sync {
    /// Before the item is processed.
    fn before_process(&self, _item: &I) {}
    /// After it was processed: `None` when the processor filtered it.
    fn after_process(&self, _item: &I, _result: Option<&O>) {}
    /// After processing it failed.
    fn on_process_error(&self, _item: &I, _error: &Error) {}
}

/// Hooks around each write of a chunk step (Spring's `ItemWriteListener`): a whole
/// chunk, or one item at a time while a fault-tolerant step scans a failed chunk.
pub trait ItemWriteListener<O>: Send + Sync {
    /// Before the items are written.
    fn before_write(&self, _items: &[O]) {}
    /// After they were written, before the chunk commits.
    fn after_write(&self, _items: &[O]) {}
    /// After writing them failed.
    fn on_write_error(&self, _error: &Error, _items: &[O]) {}
}
