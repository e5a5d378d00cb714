//! The read loop of every chunk step, plain or fault-tolerant: one item per turn of the
//! chunk's completion policy, until the policy ends the chunk or the reader its input.

use crate::error::{Error, Result};
use crate::execution::Contribution;
use crate::item::ItemReader;
use crate::repeat::{CompletionPolicy, Next, RepeatContext, RepeatStatus, RepeatTemplate};

use super::Parts;

/// Where a chunk's items go as they are read, and what becomes of a read error.
pub(super) trait ReadSink<I> {
    /// An item read.
    fn take(&mut self, item: I);
    /// A read error: `Ok(())` leaves it behind (a skip, an error marked no-rollback)
    /// and reading goes on, the item taking no room in the chunk; `Err` ends the
    /// chunk's reading with that error. `contribution` is the chunk's so far.
    fn read_failed(&mut self, error: Error, contribution: &mut Contribution) -> Result<()>;
}

/// The plain step's sink: items are kept, any read error fails the chunk.
impl<I> ReadSink<I> for Vec<I> {
    fn take(&mut self, item: I) {
        self.push(item);
    }

    fn read_failed(&mut self, error: Error, _: &mut Contribution) -> Result<()> {
        Err(error)
    }
}

/// Reads one chunk into `sink`. Returns whether the reader is exhausted.
pub(super) async fn read_chunk<I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    contribution: &mut Contribution,
    sink: &mut impl ReadSink<I>,
) -> Result<bool>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
{
    // Made once with the read listeners and once without, so the loop without them
    // calls the reader directly, with no branch per item.
    if parts.listens_to_reads() {
        read_loop::<true, _, _, _, _, _, _>(parts, chunk_loop, step_ctx, contribution, sink).await
    } else {
        read_loop::<false, _, _, _, _, _, _>(parts, chunk_loop, step_ctx, contribution, sink).await
    }
}

async fn read_loop<const HEARD: bool, I, O, R, P, W, C>(
    parts: &mut Parts<I, O, R, P, W>,
    chunk_loop: &RepeatTemplate<C>,
    step_ctx: &RepeatContext,
    contribution: &mut Contribution,
    sink: &mut impl ReadSink<I>,
) -> Result<bool>
where
    C: CompletionPolicy,
    R: ItemReader<I>,
{
    if let Some(size) = chunk_loop.counted() {
        // At least one item per chunk, as the policy's own loop would take.
        let size = size.max(1);
        return counted_read_loop::<HEARD, _, _, _, _, _>(parts, size, contribution, sink).await;
    }
    let ctx = chunk_loop.start(Some(step_ctx));
    let mut end = false;
    let outcome = loop {
        if chunk_loop.before(&ctx) == Next::Stop {
            break Ok(());
        }
        let read = loop {
            let item = if HEARD {
                parts.read().await
            } else {
                parts.reader.read().await
            };
            match item {
                Ok(Some(item)) => {
                    contribution.read += 1;
                    sink.take(item);
                    break Ok(RepeatStatus::Continuable);
                }
                Ok(None) => {
                    end = true;
                    break Ok(RepeatStatus::Finished);
                }
                Err(e) => {
                    if let Err(e) = sink.read_failed(e, contribution) {
                        break Err(e);
                    }
                }
            }
        };
        match chunk_loop.after(&ctx, read) {
            Ok(Next::Continue) => {}
            Ok(Next::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    chunk_loop.close(&ctx);
    outcome.map(|()| end)
}

/// The read loop of a chunk of a fixed size (the common `chunk = N`), which needs no
/// loop context: up to `size` items, ended early by the end of input or an error the
/// sink does not leave behind (see [`RepeatTemplate::counted`]).
async fn counted_read_loop<const HEARD: bool, I, O, R, P, W>(
    parts: &mut Parts<I, O, R, P, W>,
    size: u64,
    contribution: &mut Contribution,
    sink: &mut impl ReadSink<I>,
) -> Result<bool>
where
    R: ItemReader<I>,
{
    let mut taken = 0;
    while taken < size {
        let item = if HEARD {
            parts.read().await
        } else {
            parts.reader.read().await
        };
        match item {
            Ok(Some(item)) => {
                contribution.read += 1;
                sink.take(item);
                taken += 1;
            }
            Ok(None) => return Ok(true),
            Err(e) => sink.read_failed(e, contribution)?,
        }
    }
    Ok(false)
}
