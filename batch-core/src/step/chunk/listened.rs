//! Item listeners, heard around each call of a chunk step's reader, processor and
//! writer: both chunk loops (plain and fault-tolerant) make those calls through the
//! step's `Parts`, so each is heard where it happens (a retried item's every attempt,
//! a scanned chunk's one-item writes).
//!
//! Before-hooks run in the order of registration, after- and error-hooks in reverse,
//! as Spring's composite listeners.

use std::any::Any;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::item::{ItemReader, ItemWriter, WriteContext};
use crate::repository::timeouts::bounded;
use crate::step::chunk::{ChunkProcessor, Parts, StepSetupError};
use crate::step::listener::{ItemProcessListener, ItemReadListener, ItemWriteListener};

/// A listener of a kind whose item types the builder does not know: an
/// `Arc<dyn Listener<…>>` inside, checked against the step's types when it starts.
pub(crate) type Erased = Arc<dyn Any + Send + Sync>;

/// The listeners of `erased` as the step's types `L` (an `Arc<dyn …Listener<I, O>>`
/// inside each), or an error naming the step and the types it reads and writes.
pub(crate) fn typed<L: ?Sized + 'static, I, O>(
    erased: &[Erased],
    step: &str,
    kind: &'static str,
) -> Result<Vec<Arc<L>>> {
    erased
        .iter()
        .map(|l| {
            l.downcast_ref::<Arc<L>>().cloned().ok_or_else(|| {
                Error::new(StepSetupError::ListenerItemTypes {
                    step: step.to_owned(),
                    kind,
                    reads: std::any::type_name::<I>(),
                    writes: std::any::type_name::<O>(),
                })
            })
        })
        .collect()
}

/// The item listeners a chunk step was built with, not yet typed.
#[derive(Clone, Default)]
pub(crate) struct ItemListeners {
    pub(crate) read: Vec<Erased>,
    pub(crate) process: Vec<Erased>,
    pub(crate) write: Vec<Erased>,
}

impl ItemListeners {
    /// The listeners as the step's item types, or an error naming the step and both
    /// types when one was registered for others.
    pub(crate) fn typed<I: 'static, O: 'static>(&self, step: &str) -> Result<Typed<I, O>> {
        Ok(Typed {
            read: typed::<dyn ItemReadListener<I>, I, O>(&self.read, step, "read listener")?,
            process: typed::<dyn ItemProcessListener<I, O>, I, O>(
                &self.process,
                step,
                "process listener",
            )?,
            write: typed::<dyn ItemWriteListener<O>, I, O>(&self.write, step, "write listener")?,
        })
    }
}

/// A chunk step's item listeners, of its item types.
pub(crate) struct Typed<I, O> {
    read: Vec<Arc<dyn ItemReadListener<I>>>,
    pub(crate) process: Vec<Arc<dyn ItemProcessListener<I, O>>>,
    pub(crate) write: Vec<Arc<dyn ItemWriteListener<O>>>,
}

impl<I, O> Default for Typed<I, O> {
    fn default() -> Self {
        Self {
            read: Vec::new(),
            process: Vec::new(),
            write: Vec::new(),
        }
    }
}

impl<I, O, R: ItemReader<I>, P, W> Parts<I, O, R, P, W> {
    /// Whether any read listener is registered.
    pub(crate) fn listens_to_reads(&self) -> bool {
        !self.listeners.read.is_empty()
    }

    /// The next item, heard by the read listeners.
    pub(crate) async fn read(&mut self) -> Result<Option<I>> {
        let listeners = &self.listeners.read;
        if listeners.is_empty() {
            return self.reader.read().await;
        }
        listeners.iter().for_each(|l| l.before_read());
        let read = self.reader.read().await;
        match &read {
            Ok(Some(item)) => listeners.iter().rev().for_each(|l| l.after_read(item)),
            Ok(None) => {}
            Err(e) => listeners.iter().rev().for_each(|l| l.on_read_error(e)),
        }
        read
    }
}

impl<I: Sync, O: Send + Sync, R, P: ChunkProcessor<I, O>, W> Parts<I, O, R, P, W> {
    /// Whether any process listener is registered.
    pub(crate) fn listens_to_processing(&self) -> bool {
        !self.listeners.process.is_empty()
    }

    /// One item processed, heard by the process listeners (none without a processor).
    pub(crate) async fn process_item(&mut self, item: &I) -> Result<Option<O>> {
        let listeners = &self.listeners.process;
        if listeners.is_empty() || P::PASSES_THROUGH {
            return self.processor.process_item(item).await;
        }
        listeners.iter().for_each(|l| l.before_process(item));
        let processed = self.processor.process_item(item).await;
        match &processed {
            Ok(out) => listeners
                .iter()
                .rev()
                .for_each(|l| l.after_process(item, out.as_ref())),
            Err(e) => listeners
                .iter()
                .rev()
                .for_each(|l| l.on_process_error(item, e)),
        }
        processed
    }
}

/// The chunk's inputs processed into `outputs` (or handed over as they are), each
/// heard by the process listeners. (A function of the parts it uses, so that the items
/// it returns leave the writer free.)
pub(crate) async fn process_chunk<'a, I: Sync, O: Send + Sync, P: ChunkProcessor<I, O>>(
    processor: &'a mut P,
    listeners: &[Arc<dyn ItemProcessListener<I, O>>],
    inputs: &'a [I],
    outputs: &'a mut Vec<O>,
    filtered: &'a mut u64,
) -> Result<&'a [O]> {
    if listeners.is_empty() || P::PASSES_THROUGH {
        return processor.process_chunk(inputs, outputs, filtered).await;
    }
    outputs.clear();
    for item in inputs {
        listeners.iter().for_each(|l| l.before_process(item));
        let processed = processor.process_item(item).await;
        match processed {
            Ok(out) => {
                listeners
                    .iter()
                    .rev()
                    .for_each(|l| l.after_process(item, out.as_ref()));
                match out {
                    Some(out) => outputs.push(out),
                    None => *filtered += 1,
                }
            }
            Err(e) => {
                listeners
                    .iter()
                    .rev()
                    .for_each(|l| l.on_process_error(item, &e));
                return Err(e);
            }
        }
    }
    Ok(outputs.as_slice())
}

/// Writes `items`, heard by the write listeners.
pub(crate) async fn write<O: Sync, W: ItemWriter<O>>(
    writer: &mut W,
    listeners: &[Arc<dyn ItemWriteListener<O>>],
    items: &[O],
    cx: &mut WriteContext<'_>,
) -> Result<()> {
    // Inside the chunk's transaction the writer holds the database's locks: a writer
    // stuck on a server that stopped answering (a network partition) fails the chunk
    // within the statement timeout, which rolls it back, rather than hang the run.
    let bound = cx.transaction_bound();
    if listeners.is_empty() {
        return within(bound, writer.write(items, cx)).await;
    }
    listeners.iter().for_each(|l| l.before_write(items));
    let written = within(bound, writer.write(items, cx)).await;
    match &written {
        Ok(()) => listeners.iter().rev().for_each(|l| l.after_write(items)),
        Err(e) => listeners
            .iter()
            .rev()
            .for_each(|l| l.on_write_error(e, items)),
    }
    written
}

/// `write`, failing with the repository's timeout error once `bound` has passed.
async fn within(
    bound: Option<std::time::Duration>,
    write: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    match bound {
        None => write.await,
        Some(limit) => bounded(limit, "writing a chunk in its transaction", write).await,
    }
}

impl<I, O: Sync, R, P, W: ItemWriter<O>> Parts<I, O, R, P, W> {
    /// Writes `items`, heard by the write listeners.
    pub(crate) async fn write(&mut self, items: &[O], cx: &mut WriteContext<'_>) -> Result<()> {
        write(&mut self.writer, &self.listeners.write, items, cx).await
    }
}
