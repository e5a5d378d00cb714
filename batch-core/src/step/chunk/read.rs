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
