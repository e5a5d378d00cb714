//! The chunk-oriented step: read a chunk, process it, write it, commit, repeat.
//!
//! Two repeat loops, as in Spring Batch: the step loop runs one chunk per iteration
//! until the reader is exhausted; inside it, the chunk loop reads one item per
//! iteration until the completion policy says the chunk is full. Each chunk is one
//! transaction on the repository database: the writer writes in it (when it writes to
//! that database), then the step's counters and ExecutionContext are saved in it, and
//! it commits. A chunk that fails rolls back; its reads, writes and filters do not
//! count, ROLLBACK_COUNT does.
//!
//! Each chunk's transaction boundary is `step::boundary::ChunkBoundary`, shared with
//! tasklet steps (and with the fault-tolerant chunk loop, which reuses it per attempt
//! and per scanned item).

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::context::{ContextNotOpened, ExecutionContext};
use crate::error::{Error, Result};
use crate::execution::Contribution;
use crate::fault::FaultTolerance;
use crate::item::{
    IntoItemWriter, ItemProcessor, ItemReader, ItemWriter, WriteContext, writer_form,
};
use crate::repeat::{
    CompletionPolicy, CompositeCompletionPolicy, RepeatContext, RepeatStatus, RepeatTemplate,
    SimpleCompletionPolicy, TimeoutTerminationPolicy,
};
use crate::repository::{BoxFuture, ChunkTx};
use crate::step::boundary::{
    ChunkBoundary, StepIteration, StepRunner, StepRuntime, StreamCloser, repeat_step,
};
use crate::step::output::StepOutput;
use crate::step::scope::{StepFactory, StepScope};

mod fault_tolerant;
pub(crate) mod listened;
mod read;

/// The parts of a chunk step: a reader of `I`, a processor from `I` to `O` (or none,
/// when `I` is written as read) and a writer of `O`. Made by [`chunk`] or
/// [`read_write`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chunk step from `{I}` to `{O}`",
    label = "this must implement `ChunkStep<{I}, {O}>`",
    note = "build it with `chunk(reader, processor, writer)` or `read_write(reader, writer)`: the reader reads `{I}`, the processor turns `{I}` into `{O}`, the writer writes `{O}`; a tasklet step is a `#[step]` without `chunk = N`"
)]
pub trait ChunkStep<I, O>: StepOutput + Send {
    /// Where the items come from.
    type Reader: ItemReader<I>;
    /// What becomes of each item (the identity for [`read_write`]).
    type Processor: ChunkProcessor<I, O>;
    /// Where each chunk goes.
    type Writer: ItemWriter<O>;
    /// Takes the step apart when it starts.
    fn into_parts(self) -> (Self::Reader, Self::Processor, Self::Writer);
}

/// Reader, processor and writer of one chunk step.
pub struct ChunkSpec<R, P, W, Form = writer_form::Writer> {
    /// Reads the items, one at a time.
    pub reader: R,
    /// Turns each item read into the item written, or filters it.
    pub processor: P,
    /// Writes each chunk in the chunk's transaction: an [`ItemWriter`], or a closure
    /// that takes the write context too (see [`IntoItemWriter`]).
    pub writer: W,
    /// Which form of writer `writer` is; inferred from the step's item types.
    pub form: PhantomData<fn() -> Form>,
}

impl<R, P, W, Form> StepOutput for ChunkSpec<R, P, W, Form> {}

/// A processor given to [`chunk`].
pub struct WithProcessor<P>(pub P);

/// No processor: items are written as read.
pub struct NoProcessor;

/// A chunk step that reads with `reader`, turns each item into zero or one output with
/// `processor`, and writes each chunk with `writer`.
pub fn chunk<R, P, W, Form>(
    reader: R,
    processor: P,
    writer: W,
) -> ChunkSpec<R, WithProcessor<P>, W, Form> {
    ChunkSpec {
        reader,
        processor: WithProcessor(processor),
        writer,
        form: PhantomData,
    }
}

/// A chunk step with no processor.
pub fn read_write<R, W, Form>(reader: R, writer: W) -> ChunkSpec<R, NoProcessor, W, Form> {
    ChunkSpec {
        reader,
        processor: NoProcessor,
        writer,
        form: PhantomData,
    }
}

impl<I, O, R, P, W, Form> ChunkStep<I, O> for ChunkSpec<R, WithProcessor<P>, W, Form>
where
    R: ItemReader<I>,
    P: ItemProcessor<I, O>,
    W: IntoItemWriter<O, Form>,
    I: Send + Sync,
    O: Send + Sync,
    Self: Send,
{
    type Reader = R;
    type Processor = WithProcessor<P>;
    type Writer = W::Writer;
    fn into_parts(self) -> (R, WithProcessor<P>, W::Writer) {
        (self.reader, self.processor, self.writer.into_item_writer())
    }
}

impl<I, R, W, Form> ChunkStep<I, I> for ChunkSpec<R, NoProcessor, W, Form>
where
    R: ItemReader<I>,
    W: IntoItemWriter<I, Form>,
    I: Send + Sync,
    Self: Send,
{
    type Reader = R;
    type Processor = NoProcessor;
    type Writer = W::Writer;
    fn into_parts(self) -> (R, NoProcessor, W::Writer) {
        (self.reader, self.processor, self.writer.into_item_writer())
    }
}

/// How a chunk's inputs become the items written. Implemented for [`WithProcessor`]
/// and [`NoProcessor`]; the latter hands the inputs to the writer without copying.
#[doc(hidden)]
pub trait ChunkProcessor<I, O>: Send {
    fn process_chunk<'a>(
        &'a mut self,
        inputs: &'a [I],
        outputs: &'a mut Vec<O>,
        filtered: &'a mut u64,
    ) -> impl Future<Output = Result<&'a [O]>> + Send + 'a;

    /// One item, for the fault-tolerant loop (never called when `pass_through` hands
    /// every item over as its own output).
    fn process_item<'a>(
        &'a mut self,
        item: &'a I,
    ) -> impl Future<Output = Result<Option<O>>> + Send + 'a
    where
        O: 'a;

    /// Whether every item is its own output (no processor): no process listener is
    /// called then, as in Spring.
    const PASSES_THROUGH: bool = false;

    /// `Ok(output)` when the item is its own output (no processor), `Err(item)` when
    /// it must be processed.
    fn pass_through(item: I) -> std::result::Result<O, I>;
}

impl<I: Sync, O: Send + Sync, P: ItemProcessor<I, O>> ChunkProcessor<I, O> for WithProcessor<P> {
    async fn process_chunk<'a>(
        &'a mut self,
        inputs: &'a [I],
        outputs: &'a mut Vec<O>,
        filtered: &'a mut u64,
    ) -> Result<&'a [O]> {
        outputs.clear();
        for item in inputs {
            match self.0.process(item).await? {
                Some(out) => outputs.push(out),
                None => *filtered += 1,
            }
        }
        Ok(outputs.as_slice())
    }

    fn process_item<'a>(
        &'a mut self,
        item: &'a I,
    ) -> impl Future<Output = Result<Option<O>>> + Send + 'a
    where
        O: 'a,
    {
        self.0.process(item)
    }

    fn pass_through(item: I) -> std::result::Result<O, I> {
        Err(item)
    }
}

impl<I: Sync + Send> ChunkProcessor<I, I> for NoProcessor {
    fn process_chunk<'a>(
        &'a mut self,
        inputs: &'a [I],
        _outputs: &'a mut Vec<I>,
        _filtered: &'a mut u64,
    ) -> impl Future<Output = Result<&'a [I]>> + Send + 'a {
        std::future::ready(Ok(inputs))
    }

    // Never called: without a processor every item is its own output
    // (`PASSES_THROUGH`), kept as such across attempts.
    async fn process_item<'a>(&'a mut self, _item: &'a I) -> Result<Option<I>>
    where
        I: 'a,
    {
        unreachable!("a step without processor has no item to process")
    }

    const PASSES_THROUGH: bool = true;

    fn pass_through(item: I) -> std::result::Result<I, I> {
        Ok(item)
    }
}

/// A chunk step that cannot start as configured; nothing of it ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepSetupError {
    /// The job parameter that sets the chunk size gave 0.
    #[error("job parameter `{parameter}`: a chunk size must be at least 1")]
    ZeroChunkSize {
        /// The parameter.
        parameter: String,
    },
    /// A typed listener (skip, item read, process or write) was registered for other
    /// item types than the step reads and writes.
    #[error(
        "step `{step}`: a {kind} was registered for other item types than the step's `{reads}` → `{writes}`"
    )]
    ListenerItemTypes {
        /// The step.
        step: String,
        /// Which kind of listener.
        kind: &'static str,
        /// The type the step reads.
        reads: &'static str,
        /// The type it writes.
        writes: &'static str,
    },
}

/// When a chunk is complete.
#[derive(Clone)]
pub(crate) enum Completion {
    /// After the chunk size (the default).
    Size,
    /// After the chunk size, or once the chunk has taken this long.
    SizeOrTimeout(Duration),
    /// As a custom policy says.
    Policy(Arc<dyn CompletionPolicy>),
}

/// A `SkipListener<I, O>` whose item types are checked when the step is built for
/// its reader and writer (the builder itself does not know them).
pub(crate) type ErasedSkipListener = Arc<dyn Any + Send + Sync>;

/// Names the spec and item types a runner works with, without owning any.
type Marker<S, I, O> = PhantomData<fn() -> (S, I, O)>;

/// How a chunk step runs: its chunk size and completion, and its fault tolerance.
pub(crate) struct ChunkConfig {
    pub(crate) size: u64,
    /// A job parameter that, when given, sets the chunk size for the execution.
    pub(crate) size_param: Option<String>,
    pub(crate) completion: Completion,
    pub(crate) fault: Option<FaultTolerance>,
    pub(crate) skip_listeners: Vec<ErasedSkipListener>,
    pub(crate) item_listeners: listened::ItemListeners,
}

impl ChunkConfig {
    /// The chunk size of this execution.
    fn size(&self, scope: &StepScope) -> Result<u64> {
        match &self.size_param {
            None => Ok(self.size),
            Some(name) => match scope.param::<Option<u64>>(name)? {
                Some(0) => Err(Error::new(StepSetupError::ZeroChunkSize {
                    parameter: name.clone(),
                })),
                Some(n) => Ok(n),
                None => Ok(self.size),
            },
        }
    }

    /// The chunk loop's completion policy.
    fn policy(&self, size: u64) -> Box<dyn CompletionPolicy> {
        let size = SimpleCompletionPolicy::new(size);
        match &self.completion {
            Completion::Size => Box::new(size),
            Completion::SizeOrTimeout(t) => Box::new(CompositeCompletionPolicy::new(vec![
                Box::new(size),
                Box::new(TimeoutTerminationPolicy::new(*t)),
            ])),
            Completion::Policy(p) => Box::new(p.clone()),
        }
    }
}

/// Builds the parts from the scope when the step starts and runs the chunk loop.
pub(crate) struct ChunkRunner<F, S, I, O> {
    factory: StepFactory<F>,
    config: ChunkConfig,
    _types: Marker<S, I, O>,
}

impl<F, S, I, O> ChunkRunner<F, S, I, O> {
    pub(crate) fn new(factory: F, config: ChunkConfig) -> Self {
        Self {
            factory: StepFactory::new(factory),
            config,
            _types: PhantomData,
        }
    }
}

impl<F, Fut, S, I, O> StepRunner for ChunkRunner<F, S, I, O>
where
    F: FnMut(StepScope) -> Fut + Send + 'static,
    Fut: Future<Output = Result<S>> + Send + 'static,
    S: ChunkStep<I, O> + 'static,
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    fn run<'a>(&'a self, scope: StepScope, mut rt: StepRuntime<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let size = self.config.size(&scope)?;
            let opened = |e| ContextNotOpened::wrap(e, rt.execution.id);
            let spec = self.factory.call(scope).await.map_err(opened)?;
            let listeners = self
                .config
                .item_listeners
                .typed::<I, O>(&rt.execution.step_name)?;
            let (reader, processor, writer) = spec.into_parts();
            let mut parts = Parts {
                reader,
                processor,
                writer,
                listeners,
                _types: PhantomData,
            };
            parts.open(&rt.execution.context).await.map_err(opened)?;
            crate::telemetry::record_size_hint(&mut rt.execution.context, parts.reader.size_hint());
            let close_later = rt.close_later.take();
            // A fixed chunk size, the common case, gets a statically dispatched loop.
            let capacity = size.min(1 << 16) as usize;
            let outcome = match &self.config.completion {
                Completion::Size => {
                    let policy = SimpleCompletionPolicy::new(size);
                    self.drive(&mut parts, &RepeatTemplate::new(policy), capacity, rt)
                        .await
                }
                _ => {
                    let policy = RepeatTemplate::new(self.config.policy(size));
                    self.drive(&mut parts, &policy, capacity, rt).await
                }
            };
            match close_later {
                Some(slot) => {
                    let closer: StreamCloser =
                        Box::new(move || Box::pin(async move { parts.close().await }));
                    *slot.lock().expect("close slot") = Some(closer);
                    outcome
                }
                None => {
                    let closed = parts.close().await;
                    outcome.and(closed)
                }
            }
        })
    }
}

impl<F, S, I, O> ChunkRunner<F, S, I, O>
where
    S: ChunkStep<I, O>,
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    /// The plain or the fault-tolerant chunk loop.
    async fn drive<C: CompletionPolicy>(
        &self,
        parts: &mut Parts<I, O, S::Reader, S::Processor, S::Writer>,
        chunk_loop: &RepeatTemplate<C>,
        capacity: usize,
        rt: StepRuntime<'_>,
    ) -> Result<()> {
        match &self.config.fault {
            None => run_chunks(parts, chunk_loop, capacity, rt).await,
            Some(fault) => {
                let skip_listeners = fault_tolerant::typed_skip_listeners::<I, O>(
                    &self.config.skip_listeners,
                    &rt.execution.step_name,
                )?;
                fault_tolerant::run(parts, chunk_loop, capacity, fault, &skip_listeners, rt).await
            }
        }
    }
}

/// A chunk step's reader, processor and writer with its item listeners; the loops
/// call the three through `read`, `process_item`/`process_chunk` and `write` (see
/// `listened`), which the listeners hear.
pub(crate) struct Parts<I, O, R, P, W> {
    pub(crate) reader: R,
    pub(crate) processor: P,
    pub(crate) writer: W,
    listeners: listened::Typed<I, O>,
    _types: PhantomData<fn() -> (I, O)>,
}

impl<I, O, R: ItemReader<I>, P, W: ItemWriter<O>> Parts<I, O, R, P, W> {
    async fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.reader.open_async(ctx).await?;
        self.writer.open_async(ctx).await
    }

    async fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        self.reader.update_async(ctx).await?;
        self.writer.update_async(ctx).await
    }

    /// Closes both, even when the reader's close fails; the first error is returned.
    async fn close(&mut self) -> Result<()> {
        let r = self.reader.close_async().await;
        let w = self.writer.close_async().await;
        r.and(w)
    }

    /// Saves the streams' starting state, so even a step that fails in its first chunk
    /// leaves a context a restart can use.
    async fn save_initial_state(&mut self, rt: &mut StepRuntime<'_>) -> Result<()> {
        self.update(&mut rt.execution.context).await?;
        if rt.execution.context.is_dirty() {
            rt.repository.update_step_context(rt.execution).await?;
            rt.execution.context.clear_dirty();
        }
        Ok(())
    }
}

async fn run_chunks<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    capacity: usize,
    mut rt: StepRuntime<'_>,
) -> Result<()>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
    P: ChunkProcessor<I, O>,
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    parts.save_initial_state(&mut rt).await?;
    let mut chunks = Chunks {
        parts,
        chunk_loop,
        inputs: Vec::with_capacity(capacity),
        outputs: Vec::with_capacity(capacity),
    };
    repeat_step(&mut chunks, &mut rt).await
}

/// The plain step's turns of the step loop: one chunk each, its buffers reused.
struct Chunks<'a, I, O, R, P, W, C> {
    parts: &'a mut Parts<I, O, R, P, W>,
    chunk_loop: &'a RepeatTemplate<C>,
    inputs: Vec<I>,
    outputs: Vec<O>,
}

impl<I, O, R, P, W, C> StepIteration for Chunks<'_, I, O, R, P, W, C>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
    P: ChunkProcessor<I, O>,
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    async fn iterate(
        &mut self,
        step_ctx: &RepeatContext,
        rt: &mut StepRuntime<'_>,
    ) -> Result<RepeatStatus> {
        let result = one_chunk(
            self.parts,
            self.chunk_loop,
            step_ctx,
            &mut self.inputs,
            &mut self.outputs,
            rt,
        )
        .await;
        if result.is_err() {
            // The chunk rolled back: writers that follow the transaction from outside
            // the database (file writers) take back what they did for it.
            self.parts.writer.after_rollback();
        }
        result
    }
}

async fn one_chunk<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    inputs: &mut Vec<I>,
    outputs: &mut Vec<O>,
    rt: &mut StepRuntime<'_>,
) -> Result<RepeatStatus>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
    P: ChunkProcessor<I, O>,
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    let boundary = ChunkBoundary::begin(rt);
    let mut contribution = Contribution::default();
    let mut tx = None;
    let produced = provide_process_write(
        parts,
        chunk_loop,
        step_ctx,
        inputs,
        outputs,
        &mut contribution,
        &mut tx,
        rt,
    )
    .await;
    match produced {
        Ok(status) => {
            let tx = match tx {
                Some(tx) => tx,
                None => rt.repository.begin_chunk().await?,
            };
            let updated = parts.update(&mut rt.execution.context).await;
            boundary.commit(rt, tx, &contribution, updated).await?;
            Ok(status)
        }
        Err(e) => Err(boundary.rollback(rt, tx, &contribution, e).await),
    }
}

#[allow(clippy::too_many_arguments)]
async fn provide_process_write<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    inputs: &mut Vec<I>,
    outputs: &mut Vec<O>,
    contribution: &mut Contribution,
    tx: &mut Option<ChunkTx>,
    rt: &mut StepRuntime<'_>,
) -> Result<RepeatStatus>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
    P: ChunkProcessor<I, O>,
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    inputs.clear();
    let end = read::read_chunk(parts, chunk_loop, step_ctx, contribution, inputs).await?;
    if inputs.is_empty() {
        return Ok(RepeatStatus::continue_if(!end));
    }
    let items = listened::process_chunk(
        &mut parts.processor,
        &parts.listeners.process,
        inputs,
        outputs,
        &mut contribution.filter,
    )
    .await?;
    if !items.is_empty() {
        let mut detached = ChunkTx::none();
        let chunk_tx = if parts.writer.joins_transaction() {
            tx.insert(rt.repository.begin_chunk().await?)
        } else {
            &mut detached
        };
        let execution = &mut *rt.execution;
        let mut cx =
            WriteContext::new(chunk_tx, rt.identity, &mut execution.context, rt.repository);
        listened::write(&mut parts.writer, &parts.listeners.write, items, &mut cx).await?;
        contribution.write += items.len() as u64;
    }
    Ok(RepeatStatus::continue_if(!end))
}
