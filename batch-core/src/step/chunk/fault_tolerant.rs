//! The fault-tolerant chunk loop (Spring Batch's `FaultTolerantChunkProvider` and
//! `FaultTolerantChunkProcessor`).
//!
//! A chunk is read once and kept in a buffer until it commits. Each attempt at it is
//! one transaction: process the buffered items, write the outputs, commit. An attempt
//! that fails rolls back and the next attempt starts again from the buffer; the reader
//! is not called again. Retry state is kept per item for the processor and per chunk
//! for the writer, and survives the rollbacks. When an item's retries are used up (or
//! its error is not retryable), the next attempt recovers it without calling the
//! processor: it is skipped if skippable, otherwise the step fails. When a write
//! cannot be retried any more and its error is skippable, the chunk is scanned: each
//! item is processed again and written alone, one item per transaction, so the item
//! that fails can be skipped and the others written.
//!
//! The buffer holds a slot per item (its input, a kept output, its retry state) only
//! once the chunk has failed: a chunk's first attempt reads, processes and writes as
//! the plain loop does, and its items move into slots when it fails. Retry and skip
//! cost nothing until something fails.
//!
//! Skips are reported to the skip listeners just before the transaction that found
//! them commits (never for a transaction that rolls back).

use std::marker::PhantomData;
use std::sync::Arc;

use super::read::{ReadSink, read_chunk};
use super::{ChunkProcessor, ErasedSkipListener, Parts};
use crate::error::{Cause, Error, Result};
use crate::execution::Contribution;
use crate::fault::{
    AttemptFailed, FaultTolerance, NonSkippableProcess, NonSkippableRead, RetryContext,
    RetryExhausted, RetrySubject, SkipLimitExceeded, SkipListener,
};
use crate::item::{ItemReader, ItemWriter, WriteContext};
use crate::repeat::{CompletionPolicy, RepeatContext, RepeatStatus, RepeatTemplate};
use crate::repository::ChunkTx;
use crate::step::boundary::{
    ChunkBoundary, LeaseLost, StepInterrupted, StepIteration, StepRuntime, repeat_step,
};

/// The skip listeners registered for the step, checked against its item types.
pub(crate) fn typed_skip_listeners<I: 'static, O: 'static>(
    erased: &[ErasedSkipListener],
    step: &str,
) -> Result<Vec<Arc<dyn SkipListener<I, O>>>> {
    crate::step::chunk::listened::typed::<dyn SkipListener<I, O>, I, O>(
        erased,
        step,
        "skip listener",
    )
}

/// The skip limit was reached; see [`Engine::may_skip`].
struct SkipLimitReached(u64);

impl SkipLimitReached {
    fn error(self, cause: impl Into<Cause>) -> Error {
        Error::new(SkipLimitExceeded {
            limit: self.0,
            cause: cause.into(),
        })
    }
}

/// How many attempts failed for one item or chunk, and the last error.
#[derive(Default)]
struct RetryState {
    failures: u32,
    last: Option<Arc<Error>>,
    /// What the last failed attempt was, for the message when retries run out.
    subject: Option<RetrySubject>,
    /// The last write error was marked no-rollback, but a failed write must still
    /// roll back so the failing item can be located: such a failure is retried and
    /// then scanned whatever the policies say (Spring's
    /// `ForceRollbackForWriteSkipException`).
    forced: bool,
}

impl RetryState {
    /// Whether another attempt is allowed (Spring's `canRetry`): always before the
    /// first failure, then only for a retryable error within the attempt limit.
    #[inline]
    fn can_retry(&self, fault: &FaultTolerance) -> bool {
        match &self.last {
            None => true,
            Some(e) => {
                let retryable =
                    self.forced || (fault.retry.is_retryable(e) && !e.is::<NonSkippableProcess>());
                retryable && self.failures < fault.retry.attempts()
            }
        }
    }
}

/// One item of the buffered chunk.
struct Slot<I, O> {
    input: Option<I>,
    /// The output kept between attempts: always for a step without processor (the
    /// input is its own output), and for a non-transactional processor.
    cached: Option<O>,
    /// Made at the item's first failure; most items never need one.
    retry: Option<Box<RetryState>>,
    removed: bool,
}

/// A skip found in the current chunk, reported when a transaction commits.
enum PendingSkip<O> {
    Read(Error),
    Process(usize, Arc<Error>),
    Write(O, Arc<Error>),
}

/// Where a buffered chunk stands between its attempts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Nothing read yet: the next attempt is the chunk's first.
    Fresh,
    /// Reading stopped at an error before the chunk was complete; the next attempt
    /// reads on into the slots.
    Reading,
    /// Read whole; each attempt processes and writes the chunk.
    Buffered,
    /// Read whole; each attempt writes one item alone, to find the one that fails.
    Scanning,
}

/// The buffered chunk and everything that must survive its rollbacks.
struct Buffered<I, O> {
    /// The items of a chunk's first attempt, read and processed without per-item
    /// slots: nothing has failed yet, so there is no retry state to keep. They move
    /// into `slots` when the attempt fails (see [`Buffered::move_into_slots`]).
    inputs: Vec<I>,
    slots: Vec<Slot<I, O>>,
    /// Slots not removed yet.
    alive: usize,
    /// The reader is exhausted: this is the step's last chunk.
    end: bool,
    phase: Phase,
    /// Filters found so far; added to FILTER_COUNT by every attempt that gets as far as
    /// writing, and reset while scanning (Spring's `UserData.filterCount`, whose
    /// re-counting on write retries is Spring's behaviour too).
    filtered: u64,
    /// Bumped whenever an item leaves the chunk: the chunk's content, as far as the
    /// write's retry state is concerned (Spring keys it by the chunk's content).
    generation: u64,
    /// Retry state of the write, for the chunk as it was at that generation.
    write_retry: Option<(u64, RetryState)>,
    skips: Vec<PendingSkip<O>>,
}

impl<I, O> Buffered<I, O> {
    fn new() -> Self {
        Self {
            inputs: Vec::new(),
            slots: Vec::new(),
            alive: 0,
            end: false,
            phase: Phase::Fresh,
            filtered: 0,
            generation: 0,
            write_retry: None,
            skips: Vec::new(),
        }
    }

    /// Ready for the next chunk, keeping the allocations.
    fn reset(&mut self) {
        self.inputs.clear();
        self.slots.clear();
        self.alive = 0;
        self.skips.clear();
        self.end = false;
        self.phase = Phase::Fresh;
        self.filtered = 0;
        self.generation = 0;
        self.write_retry = None;
    }

    fn remove(&mut self, pos: usize) {
        let slot = &mut self.slots[pos];
        if !slot.removed {
            slot.removed = true;
            self.alive -= 1;
            self.generation += 1;
        }
    }

    fn push(&mut self, slot: Slot<I, O>) {
        self.slots.push(slot);
        self.alive += 1;
    }

    /// A first attempt failed: its items become slots, so the retry state of what
    /// failed can be kept. The outputs go back to their slots only when there is no
    /// processor (the item is its own output); a processor's outputs are made again by
    /// the next attempt, as a rolled-back transaction's would be. `filtered` are the
    /// positions the processor filtered, which leave the chunk as in the slot loop.
    fn move_into_slots(&mut self, outputs: &mut Vec<O>, filtered: &[usize], passes_through: bool) {
        if passes_through {
            for out in outputs.drain(..) {
                self.push(Slot {
                    input: None,
                    cached: Some(out),
                    retry: None,
                    removed: false,
                });
            }
        } else {
            outputs.clear();
            let inputs = std::mem::take(&mut self.inputs);
            for input in inputs {
                self.push(Slot {
                    input: Some(input),
                    cached: None,
                    retry: None,
                    removed: false,
                });
            }
        }
        for &pos in filtered {
            self.remove(pos);
        }
        self.filtered = filtered.len() as u64;
    }

    /// The chunk has been read whole.
    fn is_read(&self) -> bool {
        matches!(self.phase, Phase::Buffered | Phase::Scanning)
    }

    fn is_scanning(&self) -> bool {
        self.phase == Phase::Scanning
    }

    /// No attempt has begun on this chunk.
    fn is_fresh(&self) -> bool {
        self.phase == Phase::Fresh
    }

    /// The write's retry state for the chunk as it is now.
    fn write_state(&self) -> Option<&RetryState> {
        self.write_retry
            .as_ref()
            .filter(|(g, _)| *g == self.generation)
            .map(|(_, s)| s)
    }

    /// The write's retry state for the chunk as it is now, made when missing.
    fn write_state_mut(&mut self) -> &mut RetryState {
        if self.write_state().is_none() {
            self.write_retry = Some((self.generation, RetryState::default()));
        }
        &mut self.write_retry.as_mut().expect("just set").1
    }

    /// Nothing is left to write and no skip waits to be reported.
    fn is_done(&self) -> bool {
        self.is_read() && self.alive == 0 && self.skips.is_empty()
    }
}

struct Engine<'f, I, O> {
    fault: &'f FaultTolerance,
    skip_listeners: &'f [Arc<dyn SkipListener<I, O>>],
    /// A chunk's first attempt may run without slots: no retry listener wants to hear
    /// each item's attempt open, every failure rolls back (so none is skipped in the
    /// middle of an attempt), and no output is kept across attempts.
    first_attempt_without_slots: bool,
    /// The `job` and `step` labels of the retry metric.
    labels: crate::telemetry::StepLabels,
}

impl<I, O> Engine<'_, I, O> {
    /// Whether `error` may be skipped now, counting the step's skips so far; when the
    /// skip limit is reached, the caller makes the error with [`SkipLimitReached::error`]
    /// from the error it owns, so the user's error stays the cause.
    fn may_skip(
        &self,
        error: &Error,
        rt: &StepRuntime<'_>,
        c: &Contribution,
    ) -> std::result::Result<bool, SkipLimitReached> {
        if !self.fault.skip.is_skippable(error) {
            return Ok(false);
        }
        let skipped = rt.execution.counts.skip() + c.read_skip + c.process_skip + c.write_skip;
        if skipped < self.fault.skip.limit {
            Ok(true)
        } else {
            Err(SkipLimitReached(self.fault.skip.limit))
        }
    }

    fn rolls_back(&self, error: &Error) -> bool {
        !self.fault.no_rollback.classify(error)
    }

    /// Whether a slot's output is kept between attempts rather than made again: when
    /// there is no processor (the input is its own output) or the processor is
    /// non-transactional.
    fn keeps_output(&self, slot: &Slot<I, O>) -> bool {
        slot.input.is_none() || self.fault.processor_non_transactional
    }

    fn opened(&self, subject: RetrySubject, state: &RetryState) -> Result<()> {
        let ctx = RetryContext {
            subject,
            retry_count: state.failures,
        };
        if self.fault.retry_listeners.iter().all(|l| l.open(&ctx)) {
            Ok(())
        } else {
            Err(Error::new(crate::fault::RetryRefused { subject }))
        }
    }

    /// Records a failed attempt; returns the error for the attempt's rollback.
    fn failed(&self, subject: RetrySubject, state: &mut RetryState, error: Error) -> Error {
        state.failures += 1;
        state.subject = Some(subject);
        self.labels.attempt_failed();
        let ctx = RetryContext {
            subject,
            retry_count: state.failures,
        };
        for l in &self.fault.retry_listeners {
            l.on_error(&ctx, &error);
        }
        let error = Arc::new(error);
        for l in &self.fault.retry_listeners {
            l.close(&ctx, Some(&error));
        }
        state.last = Some(error.clone());
        Error::new(AttemptFailed {
            subject,
            cause: Cause::from(error),
        })
    }

    fn succeeded(&self, subject: RetrySubject, state: &RetryState) {
        let ctx = RetryContext {
            subject,
            retry_count: state.failures,
        };
        for l in &self.fault.retry_listeners {
            l.on_success(&ctx);
            l.close(&ctx, None);
        }
    }

    /// Records a failed write of the whole chunk in the chunk's retry state and waits
    /// out the backoff; returns the error for the attempt's rollback.
    async fn chunk_write_failed(
        &self,
        chunk: &mut Buffered<I, O>,
        subject: RetrySubject,
        e: Error,
    ) -> Error {
        let state = chunk.write_state_mut();
        state.forced = !self.rolls_back(&e);
        let failure = self.failed(subject, state, e);
        let exhausted = !state.can_retry(self.fault);
        self.backoff(state).await;
        if exhausted {
            // Set now, so the next attempt processes only the item it will write.
            chunk.phase = Phase::Scanning;
        }
        failure
    }

    /// Waits before the next attempt when there will be one.
    async fn backoff(&self, state: &RetryState) {
        if state.can_retry(self.fault) {
            let delay = self.fault.retry.backoff.delay(state.failures);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Whether an error that ended an attempt ends the step too (Spring's list of
    /// errors the step loop never retries). Every other failure rolls the attempt back
    /// and the buffered chunk is tried again, where retry state and recovery decide
    /// what becomes of the failing item.
    fn ends_step(&self, error: &Error) -> bool {
        error.is::<SkipLimitExceeded>()
            || error.is::<RetryExhausted>()
            || error.is::<NonSkippableRead>()
            || error.is::<StepInterrupted>()
            || error.is::<LeaseLost>()
            || error.is::<crate::repository::RepositoryError>()
    }

    /// Reports the chunk's skips, in Spring's order: process, write, read.
    fn report_skips(&self, chunk: &mut Buffered<I, O>) {
        let skips = std::mem::take(&mut chunk.skips);
        if self.skip_listeners.is_empty() {
            return;
        }
        for skip in &skips {
            if let PendingSkip::Process(pos, e) = skip
                && let Some(input) = chunk.slots[*pos].input.as_ref()
            {
                self.skip_listeners
                    .iter()
                    .for_each(|l| l.on_skip_in_process(input, e));
            }
        }
        for skip in &skips {
            if let PendingSkip::Write(out, e) = skip {
                self.skip_listeners
                    .iter()
                    .for_each(|l| l.on_skip_in_write(out, e));
            }
        }
        for skip in &skips {
            if let PendingSkip::Read(e) = skip {
                self.skip_listeners
                    .iter()
                    .for_each(|l| l.on_skip_in_read(e));
            }
        }
    }
}

/// Where a chunk stood when a scan transaction committed in its middle: how many of
/// its items (from its start) are settled. The reader's own position is saved only at
/// chunk boundaries, so on restart it resumes at the chunk's start and these items are
/// read past, neither lost nor written twice (Spring's `ChunkMonitor`).
const CHUNK_OFFSET: &str = "batch.chunk.offset";

/// Reads past the items a scan committed before the step stopped.
async fn reposition<I, O, R, P, W>(
    parts: &mut Parts<I, O, R, P, W>,
    rt: &mut StepRuntime<'_>,
) -> Result<()>
where
    R: ItemReader<I>,
{
    let Some(offset) = rt.execution.context.get::<u64>(CHUNK_OFFSET)? else {
        return Ok(());
    };
    for _ in 0..offset {
        if parts.reader.read().await?.is_none() {
            break;
        }
    }
    rt.execution.context.remove(CHUNK_OFFSET);
    Ok(())
}

/// Runs the fault-tolerant chunk loop until the reader is exhausted or the step fails.
pub(crate) async fn run<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    capacity: usize,
    fault: &FaultTolerance,
    skip_listeners: &[Arc<dyn SkipListener<I, O>>],
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
    reposition(parts, &mut rt).await?;
    parts.save_initial_state(&mut rt).await?;
    let engine = Engine {
        fault,
        skip_listeners,
        first_attempt_without_slots: fault.retry_listeners.is_empty()
            && fault.no_rollback.is_empty()
            && !fault.processor_non_transactional,
        labels: crate::telemetry::StepLabels::of(rt.identity),
    };
    let mut attempts = Attempts {
        engine,
        parts,
        chunk_loop,
        chunk: Buffered::new(),
        work: Work {
            outputs: Vec::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
        },
    };
    repeat_step(&mut attempts, &mut rt).await
}

/// The fault-tolerant step's turns of the step loop: one attempt at the buffered chunk
/// each. An attempt that rolls back is followed by another at the same chunk, unless
/// its error ends the step.
struct Attempts<'a, 'f, I, O, R, P, W, C> {
    engine: Engine<'f, I, O>,
    parts: &'a mut Parts<I, O, R, P, W>,
    chunk_loop: &'a RepeatTemplate<C>,
    chunk: Buffered<I, O>,
    work: Work<O>,
}

impl<I, O, R, P, W, C> StepIteration for Attempts<'_, '_, I, O, R, P, W, C>
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
        let Self {
            engine,
            parts,
            chunk_loop,
            chunk,
            work,
        } = self;
        match attempt(engine, parts, chunk_loop, step_ctx, chunk, work, rt).await {
            Ok(()) if chunk.is_done() => {
                let end = chunk.end;
                chunk.reset();
                Ok(RepeatStatus::continue_if(!end))
            }
            Ok(()) => Ok(RepeatStatus::Continuable),
            Err(e) => {
                parts.writer.after_rollback();
                if engine.ends_step(&e) {
                    Err(e)
                } else {
                    // The attempt rolled back; the buffered chunk is tried again.
                    Ok(RepeatStatus::Continuable)
                }
            }
        }
    }
}

/// The outputs of one attempt and the chunk positions they came from (buffers reused
/// from attempt to attempt).
struct Work<O> {
    outputs: Vec<O>,
    keys: Vec<usize>,
}

/// One transaction over the buffered chunk.
async fn attempt<I, O, R, P, W, C>(
    engine: &Engine<'_, I, O>,
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    chunk: &mut Buffered<I, O>,
    work: &mut Work<O>,
    rt: &mut StepRuntime<'_>,
) -> Result<()>
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
    let mut tx: Option<ChunkTx> = None;
    let produced = async {
        if engine.first_attempt_without_slots && chunk.is_fresh() {
            return first_attempt(
                engine,
                parts,
                chunk_loop,
                step_ctx,
                chunk,
                work,
                &mut contribution,
                &mut tx,
                rt,
            )
            .await;
        }
        if !chunk.is_read() {
            chunk.phase = Phase::Reading;
            let mut sink = SlotReads {
                engine,
                chunk: &mut *chunk,
                rt,
                processor: PhantomData::<fn() -> P>,
            };
            chunk.end = provide(parts, chunk_loop, step_ctx, &mut sink, &mut contribution).await?;
            chunk.phase = Phase::Buffered;
        }
        if chunk.alive == 0 && chunk.skips.is_empty() {
            return Ok(());
        }
        transform(engine, parts, chunk, work, &mut contribution, rt).await?;
        contribution.filter += chunk.filtered;
        let mut detached = ChunkTx::none();
        let t = if parts.writer.joins_transaction() {
            tx.insert(rt.repository.begin_chunk().await?)
        } else {
            &mut detached
        };
        write(engine, parts, chunk, work, &mut contribution, t, rt).await
    }
    .await;
    // Outputs kept between attempts go back to their slots, whatever happened.
    for (out, pos) in work.outputs.drain(..).zip(work.keys.drain(..)) {
        let slot = &mut chunk.slots[pos];
        if !slot.removed && engine.keeps_output(slot) {
            slot.cached = Some(out);
        }
    }
    match produced {
        Ok(()) => {
            engine.report_skips(chunk);
            let tx = match tx {
                Some(tx) => tx,
                None => rt.repository.begin_chunk().await?,
            };
            let finished = chunk.alive == 0;
            let settled = if finished {
                chunk.slots.len()
            } else {
                chunk.slots.iter().take_while(|s| s.removed).count()
            };
            let ctx = &mut rt.execution.context;
            let updated = if finished {
                ctx.remove(CHUNK_OFFSET);
                parts.update(ctx).await
            } else {
                // A scan transaction commits items written alone: the writer saves its
                // state with them (a file writer its length), the reader keeps its
                // chunk-start position.
                match ctx.put(CHUNK_OFFSET, &settled) {
                    Ok(()) => parts.writer.update_async(ctx).await,
                    Err(e) => Err(e.into()),
                }
            };
            boundary.commit(rt, tx, &contribution, updated).await
        }
        Err(e) => Err(boundary.rollback(rt, tx, &contribution, e).await),
    }
}

/// Reads the chunk into `sink` (slots, or a first attempt's plain buffers); read
/// errors are never retried: a skippable one is skipped (and reading goes on, the
/// skipped item taking no room in the chunk), one marked no-rollback is ignored, any
/// other fails the step. Returns whether the reader is exhausted.
async fn provide<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    sink: &mut impl ReadSink<I>,
    contribution: &mut Contribution,
) -> Result<bool>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
{
    read_chunk(parts, chunk_loop, step_ctx, contribution, sink).await
}

/// What the fault-tolerant loop does with a read error (see [`provide`]).
fn read_failed<I, O>(
    engine: &Engine<'_, I, O>,
    skips: &mut Vec<PendingSkip<O>>,
    rt: &StepRuntime<'_>,
    e: Error,
    contribution: &mut Contribution,
) -> Result<()> {
    match engine.may_skip(&e, rt, contribution) {
        Err(limit) => Err(limit.error(e)),
        Ok(true) => {
            contribution.read_skip += 1;
            skips.push(PendingSkip::Read(e));
            Ok(())
        }
        Ok(false) if !engine.rolls_back(&e) => {
            tracing::debug!(error = %e.report(), "read error marked no_rollback: ignored");
            Ok(())
        }
        Ok(false) => Err(Error::new(NonSkippableRead(e.into()))),
    }
}

/// Reads into the chunk's slots.
struct SlotReads<'a, 'f, 'r, I, O, P> {
    engine: &'a Engine<'f, I, O>,
    chunk: &'a mut Buffered<I, O>,
    rt: &'a StepRuntime<'r>,
    processor: PhantomData<fn() -> P>,
}

impl<I, O, P: ChunkProcessor<I, O>> ReadSink<I> for SlotReads<'_, '_, '_, I, O, P> {
    fn take(&mut self, item: I) {
        let (input, cached) = match P::pass_through(item) {
            Ok(out) => (None, Some(out)),
            Err(item) => (Some(item), None),
        };
        self.chunk.push(Slot {
            input,
            cached,
            retry: None,
            removed: false,
        });
    }

    fn read_failed(&mut self, e: Error, contribution: &mut Contribution) -> Result<()> {
        read_failed(self.engine, &mut self.chunk.skips, self.rt, e, contribution)
    }
}

/// Reads a first attempt's items plainly: inputs to process, or outputs when there is
/// no processor.
struct FirstReads<'a, 'f, 'r, I, O, P> {
    engine: &'a Engine<'f, I, O>,
    inputs: &'a mut Vec<I>,
    outputs: &'a mut Vec<O>,
    skips: &'a mut Vec<PendingSkip<O>>,
    rt: &'a StepRuntime<'r>,
    processor: PhantomData<fn() -> P>,
}

impl<I, O, P: ChunkProcessor<I, O>> ReadSink<I> for FirstReads<'_, '_, '_, I, O, P> {
    fn take(&mut self, item: I) {
        match P::pass_through(item) {
            Ok(out) => self.outputs.push(out),
            Err(item) => self.inputs.push(item),
        }
    }

    fn read_failed(&mut self, e: Error, contribution: &mut Contribution) -> Result<()> {
        read_failed(self.engine, self.skips, self.rt, e, contribution)
    }
}

/// A chunk's first attempt, while nothing has failed: read, process and write with no
/// slot, retry state or classification per item, as the plain chunk loop does. At the
/// first failure the items move into slots and the failure is recorded exactly as the
/// slot loop records it, so the next attempt goes on from there with Spring's
/// semantics.
#[allow(clippy::too_many_arguments)]
async fn first_attempt<I, O, R, P, W, C>(
    engine: &Engine<'_, I, O>,
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    chunk: &mut Buffered<I, O>,
    work: &mut Work<O>,
    contribution: &mut Contribution,
    tx: &mut Option<ChunkTx>,
    rt: &mut StepRuntime<'_>,
) -> Result<()>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
    P: ChunkProcessor<I, O>,
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    let outputs = &mut work.outputs;
    let mut sink = FirstReads {
        engine,
        inputs: &mut chunk.inputs,
        outputs: &mut *outputs,
        skips: &mut chunk.skips,
        rt,
        processor: PhantomData::<fn() -> P>,
    };
    match provide(parts, chunk_loop, step_ctx, &mut sink, contribution).await {
        Ok(end) => chunk.end = end,
        Err(e) => {
            chunk.move_into_slots(outputs, &[], P::PASSES_THROUGH);
            chunk.phase = Phase::Reading;
            return Err(e);
        }
    }
    chunk.phase = Phase::Buffered;
    if chunk.inputs.is_empty() && outputs.is_empty() {
        return Ok(());
    }
    let mut filtered = Vec::new();
    let processed = if parts.listens_to_processing() {
        process_all::<true, _, _, _, _, _>(parts, &chunk.inputs, outputs, &mut filtered).await
    } else {
        process_all::<false, _, _, _, _, _>(parts, &chunk.inputs, outputs, &mut filtered).await
    };
    if let Err((pos, e)) = processed {
        let subject = RetrySubject::Process {
            item: pos,
            of: chunk.inputs.len(),
        };
        chunk.move_into_slots(outputs, &filtered, P::PASSES_THROUGH);
        let retry = chunk.slots[pos].retry.get_or_insert_default();
        let failure = engine.failed(subject, retry, e);
        engine.backoff(retry).await;
        return Err(failure);
    }
    contribution.filter += filtered.len() as u64;
    let mut detached = ChunkTx::none();
    let t = if parts.writer.joins_transaction() {
        tx.insert(rt.repository.begin_chunk().await?)
    } else {
        &mut detached
    };
    if outputs.is_empty() {
        chunk.inputs.clear();
        return Ok(());
    }
    match parts.write(outputs, &mut write_context(t, rt)).await {
        Ok(()) => {
            contribution.write += outputs.len() as u64;
            outputs.clear();
            chunk.inputs.clear();
            Ok(())
        }
        Err(e) => {
            let subject = RetrySubject::Write {
                items: outputs.len(),
            };
            chunk.move_into_slots(outputs, &filtered, P::PASSES_THROUGH);
            Err(engine.chunk_write_failed(chunk, subject, e).await)
        }
    }
}

/// Processes a first attempt's inputs in one tight loop, made once with the item
/// listeners and once without, so the loop without them has no branch for them; a
/// failure names its position.
async fn process_all<const HEARD: bool, I, O, R, P, W>(
    parts: &mut Parts<I, O, R, P, W>,
    inputs: &[I],
    outputs: &mut Vec<O>,
    filtered: &mut Vec<usize>,
) -> std::result::Result<(), (usize, Error)>
where
    P: ChunkProcessor<I, O>,
    I: Send + Sync,
    O: Send + Sync,
{
    for (pos, input) in inputs.iter().enumerate() {
        let processed = if HEARD {
            parts.process_item(input).await
        } else {
            parts.processor.process_item(input).await
        };
        match processed {
            Ok(Some(out)) => outputs.push(out),
            Ok(None) => filtered.push(pos),
            Err(e) => return Err((pos, e)),
        }
    }
    Ok(())
}

/// Processes the items still in the chunk (only the first while scanning), with retry
/// state per item: an item whose retries are used up is recovered without calling the
/// processor (skipped, or the step fails).
async fn transform<I, O, R, P, W>(
    engine: &Engine<'_, I, O>,
    parts: &mut Parts<I, O, R, P, W>,
    chunk: &mut Buffered<I, O>,
    work: &mut Work<O>,
    contribution: &mut Contribution,
    rt: &StepRuntime<'_>,
) -> Result<()>
where
    P: ChunkProcessor<I, O>,
    I: Send + Sync,
    O: Send + Sync,
{
    if chunk.is_scanning() {
        chunk.filtered = 0;
    }
    let limit = if chunk.is_scanning() { 1 } else { usize::MAX };
    let mut pos = 0;
    let mut taken = 0;
    let chunk_items = chunk.slots.len();
    while pos < chunk.slots.len() && taken < limit {
        let here = pos;
        pos += 1;
        let slot = &mut chunk.slots[here];
        if slot.removed {
            continue;
        }
        taken += 1;
        if let Some(cached) = slot.cached.take() {
            work.outputs.push(cached);
            work.keys.push(here);
            continue;
        }
        let subject = RetrySubject::Process {
            item: here,
            of: chunk_items,
        };
        if let Some(retry) = &slot.retry
            && !retry.can_retry(engine.fault)
        {
            // Recovery: the processor is not called again for this item.
            let error = retry.last.clone().expect("a failed item has its error");
            let may_skip = engine
                .may_skip(&error, rt, contribution)
                .map_err(|limit| limit.error(error.clone()))?;
            if may_skip {
                contribution.process_skip += 1;
                chunk.remove(here);
                chunk.skips.push(PendingSkip::Process(here, error));
                continue;
            }
            let attempts = retry.failures;
            return Err(Error::new(RetryExhausted {
                what: subject.to_string(),
                attempts,
                cause: Cause::from(error),
            }));
        }
        if !engine.fault.retry_listeners.is_empty() {
            engine.opened(
                subject,
                slot.retry.as_deref().unwrap_or(&RetryState::default()),
            )?;
        }
        let input = slot
            .input
            .as_ref()
            .expect("an item to process keeps its input");
        let processed = if parts.listens_to_processing() {
            parts.process_item(input).await
        } else {
            parts.processor.process_item(input).await
        };
        match processed {
            Ok(output) => {
                if slot.retry.is_some() || !engine.fault.retry_listeners.is_empty() {
                    let retry = slot.retry.take().unwrap_or_default();
                    engine.succeeded(subject, &retry);
                }
                match output {
                    Some(out) => {
                        work.outputs.push(out);
                        work.keys.push(here);
                    }
                    None => {
                        chunk.filtered += 1;
                        chunk.remove(here);
                    }
                }
            }
            Err(e) if !engine.rolls_back(&e) => {
                let may_skip = match engine.may_skip(&e, rt, contribution) {
                    Ok(may_skip) => may_skip,
                    Err(limit) => return Err(limit.error(e)),
                };
                if may_skip {
                    // Skipped without a rollback: reported at once, as Spring does.
                    contribution.process_skip += 1;
                    for l in engine.skip_listeners {
                        l.on_skip_in_process(input, &e);
                    }
                    chunk.remove(here);
                } else {
                    let e = Error::new(NonSkippableProcess(e.into()));
                    let retry = slot.retry.get_or_insert_default();
                    return Err(engine.failed(subject, retry, e));
                }
            }
            Err(e) => {
                let retry = slot.retry.get_or_insert_default();
                let failure = engine.failed(subject, retry, e);
                engine.backoff(retry).await;
                return Err(failure);
            }
        }
    }
    Ok(())
}

/// Writes the outputs: the whole chunk in one call with retry state per chunk, or,
/// while scanning, the first item alone.
#[allow(clippy::too_many_arguments)]
async fn write<I, O, R, P, W>(
    engine: &Engine<'_, I, O>,
    parts: &mut Parts<I, O, R, P, W>,
    chunk: &mut Buffered<I, O>,
    work: &mut Work<O>,
    contribution: &mut Contribution,
    tx: &mut ChunkTx,
    rt: &mut StepRuntime<'_>,
) -> Result<()>
where
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    let subject = RetrySubject::Write {
        items: work.outputs.len(),
    };
    if let Some(state) = chunk.write_state()
        && !state.can_retry(engine.fault)
    {
        // Recovery: the chunk's retries are used up.
        let error = state.last.clone().expect("a failed write has its error");
        if !state.forced && !engine.fault.skip.is_skippable(&error) {
            return Err(Error::new(RetryExhausted {
                what: state.subject.map_or(subject, |s| s).to_string(),
                attempts: state.failures,
                cause: Cause::from(error),
            }));
        }
        chunk.write_retry = None;
        chunk.phase = Phase::Scanning;
        return scan(engine, parts, chunk, work, contribution, tx, rt, true).await;
    }
    if work.outputs.is_empty() {
        chunk.phase = Phase::Buffered;
        return Ok(());
    }
    if !engine.fault.retry_listeners.is_empty() {
        engine.opened(subject, chunk.write_state_mut())?;
    }
    if chunk.is_scanning() {
        return scan(engine, parts, chunk, work, contribution, tx, rt, false).await;
    }
    let state = chunk.write_state_mut();
    match parts.write(&work.outputs, &mut write_context(tx, rt)).await {
        Ok(()) => {
            if state.failures > 0 || !engine.fault.retry_listeners.is_empty() {
                engine.succeeded(subject, state);
            }
            contribution.write += work.outputs.len() as u64;
            for &pos in &work.keys {
                chunk.remove(pos);
            }
            // Written: nothing of them goes back to the buffer.
            work.outputs.clear();
            work.keys.clear();
            chunk.write_retry = None;
            Ok(())
        }
        Err(e) => Err(engine.chunk_write_failed(chunk, subject, e).await),
    }
}

fn write_context<'a>(tx: &'a mut ChunkTx, rt: &'a mut StepRuntime<'_>) -> WriteContext<'a> {
    let execution = &mut *rt.execution;
    WriteContext::new(tx, rt.identity, &mut execution.context, rt.repository)
}

/// Writes the first output alone. Success: counted and done with. Failure: a
/// skippable error skips the item (and, unless marked no-rollback, rolls the
/// transaction back, the skip still counted); a non-skippable error marked no-rollback
/// drops the item; a non-skippable one that rolls back fails the step, at once when
/// scanning in recovery, else after one more attempt.
#[allow(clippy::too_many_arguments)]
async fn scan<I, O, R, P, W>(
    engine: &Engine<'_, I, O>,
    parts: &mut Parts<I, O, R, P, W>,
    chunk: &mut Buffered<I, O>,
    work: &mut Work<O>,
    contribution: &mut Contribution,
    tx: &mut ChunkTx,
    rt: &mut StepRuntime<'_>,
    recovery: bool,
) -> Result<()>
where
    W: ItemWriter<O>,
    I: Send + Sync,
    O: Send + Sync,
{
    // Only the first output is written now; the others wait in the buffer.
    while work.outputs.len() > 1 {
        let out = work.outputs.pop().expect("more than one output");
        let pos = work.keys.pop().expect("keys follow outputs");
        let slot = &mut chunk.slots[pos];
        if engine.keeps_output(slot) {
            slot.cached = Some(out);
        }
    }
    let Some(&pos) = work.keys.first() else {
        chunk.phase = Phase::Buffered;
        return Ok(());
    };
    let written = parts
        .write(&work.outputs[..1], &mut write_context(tx, rt))
        .await;
    let done_with = |chunk: &mut Buffered<I, O>, work: &mut Work<O>| -> Option<O> {
        chunk.remove(pos);
        chunk.slots[pos].cached = None;
        if chunk.alive == 0 {
            chunk.phase = Phase::Buffered;
        }
        work.keys.clear();
        work.outputs.pop()
    };
    let e = match written {
        Ok(()) => {
            contribution.write += 1;
            done_with(chunk, work);
            return Ok(());
        }
        Err(e) => e,
    };
    let rolls_back = engine.rolls_back(&e);
    if !engine.fault.skip.is_skippable(&e) && !rolls_back {
        done_with(chunk, work);
        return Ok(());
    }
    let subject = RetrySubject::WriteAlone {
        item: pos,
        of: chunk.slots.len(),
    };
    let may_skip = match engine.may_skip(&e, rt, contribution) {
        Ok(may_skip) => may_skip,
        Err(limit) => return Err(limit.error(e)),
    };
    if !may_skip {
        if recovery {
            return Err(Error::new(RetryExhausted {
                what: subject.to_string(),
                attempts: 1,
                cause: Cause::from(e),
            }));
        }
        // Not skippable: recorded against the chunk, whose recovery in the next
        // attempt fails the step.
        return Err(engine.failed(subject, chunk.write_state_mut(), e));
    }
    contribution.write_skip += 1;
    let out = done_with(chunk, work).expect("the scanned output");
    let e = Arc::new(e);
    chunk.skips.push(PendingSkip::Write(out, e.clone()));
    if !rolls_back {
        return Ok(());
    }
    // The skip is counted, the transaction rolls back. A scan run as a retry (not as
    // recovery) leaves the failure in the chunk's retry state, under the chunk as it is
    // without the item, as Spring's stateful retry does.
    if !recovery {
        let state = chunk.write_state_mut();
        state.failures += 1;
        state.last = Some(e.clone());
    }
    // Skipped, and its transaction rolls back: the chunk listeners hear the item's error.
    Err(Error::new(AttemptFailed {
        subject,
        cause: Cause::from(e),
    }))
}
