//! Closures as readers, processors, writers and tasklets, with the error type fixed to
//! [`Error`](crate::error::Error): `Ok(Some(x))` needs no turbofish, and `?` still converts the step's own
//! errors (their types stay in the source chain, where `retry(…)` and `skip(…)` find
//! them).
//!
//! The `async_…` forms take a closure that returns `Box::pin(async move { … })`. The
//! future may borrow what the closure is handed (the item, the chunk, the write
//! context with the chunk's transaction); what it needs from the closure's own
//! captures is cloned into it first (`let client = client.clone();`), as a future
//! cannot borrow from the closure that made it. This is the form that gives `Send`
//! futures on stable Rust: an `async |item| …` closure cannot promise that its future
//! is `Send`, which every step's future must be.
//!
//! ```
//! use batch_core::prelude::*;
//!
//! let double = processor(|n: &i64| Ok(Some(n * 2)));
//! let lookup = async_processor(|id: &i64| {
//!     Box::pin(async move {
//!         tokio::task::yield_now().await; // an HTTP call, a query …
//!         Ok(Some(format!("customer {id}")))
//!     })
//! });
//! let store = async_writer(|names: &[String], cx: &mut WriteContext<'_>| {
//!     Box::pin(async move {
//!         cx.step_context().put("last", &names.last())?;
//!         Ok(())
//!     })
//! });
//! # fn is_step(_: impl ChunkStep<i64, String>) {}
//! # let _ = double;
//! # is_step(chunk(ListReader::new(vec![1i64]), lookup, store));
//! ```

use std::future::Future;
use std::marker::PhantomData;

use crate::error::Result;
use crate::item::{ItemProcessor, ItemReader, ItemWriter, WriteContext};
use crate::repeat::RepeatStatus;
use crate::repository::BoxFuture;
use crate::step::tasklet::{Tasklet, TaskletContext};

/// A reader from a closure returning `Ok(Some(item))`, or `Ok(None)` at the end.
pub fn reader<T, F>(read: F) -> Reader<F>
where
    F: FnMut() -> Result<Option<T>> + Send,
{
    Reader(read)
}

/// A reader whose closure does async work, returning `Box::pin(async move { … })`.
pub fn async_reader<T, F>(read: F) -> AsyncReader<F>
where
    F: FnMut() -> BoxFuture<'static, Result<Option<T>>> + Send,
{
    AsyncReader(read)
}

/// A processor from a closure returning `Ok(Some(output))`, or `Ok(None)` to filter.
pub fn processor<I, O, F>(process: F) -> Processor<F, I>
where
    F: FnMut(&I) -> Result<Option<O>> + Send,
{
    Processor(process, PhantomData)
}

/// A processor whose closure does async work (an HTTP call, a query), returning
/// `Box::pin(async move { … })`; the future may borrow the item.
pub fn async_processor<I, O, F>(process: F) -> AsyncProcessor<F, I>
where
    F: for<'a> FnMut(&'a I) -> BoxFuture<'a, Result<Option<O>>> + Send,
{
    AsyncProcessor(process, PhantomData)
}

/// A writer from a closure given the whole chunk.
pub fn writer<T, F>(write: F) -> Writer<F, T>
where
    F: FnMut(&[T]) -> Result<()> + Send,
{
    Writer(write, PhantomData)
}

/// A writer whose closure is also given the [`WriteContext`] (the chunk's transaction,
/// the live step context) and does async work, returning `Box::pin(async move { … })`:
/// `cx.sqlite()?` (or `postgres()`, `mysql()`) writes in the chunk's transaction.
pub fn async_writer<T, F>(write: F) -> AsyncWriter<F, T>
where
    F: for<'a, 'c> FnMut(&'a [T], &'a mut WriteContext<'c>) -> BoxFuture<'a, Result<()>> + Send,
{
    AsyncWriter(write, PhantomData)
}

/// A tasklet from a closure called until it returns `Ok(RepeatStatus::Finished)`.
pub fn tasklet<F>(call: F) -> FnTasklet<F>
where
    F: FnMut(&mut TaskletContext<'_>) -> Result<RepeatStatus> + Send,
{
    FnTasklet(call)
}

/// A tasklet whose closure does async work, returning `Box::pin(async move { … })`;
/// the future may use the [`TaskletContext`] (the call's transaction, the step context).
pub fn async_tasklet<F>(call: F) -> AsyncTasklet<F>
where
    F: for<'a, 'c> FnMut(&'a mut TaskletContext<'c>) -> BoxFuture<'a, Result<RepeatStatus>> + Send,
{
    AsyncTasklet(call)
}

/// See [`reader`].
pub struct Reader<F>(F);
/// See [`async_reader`].
pub struct AsyncReader<F>(F);
/// See [`processor`].
pub struct Processor<F, I>(F, PhantomData<fn(&I)>);
/// See [`async_processor`].
pub struct AsyncProcessor<F, I>(F, PhantomData<fn(&I)>);
/// See [`writer`].
pub struct Writer<F, T>(F, PhantomData<fn(&[T])>);
/// See [`async_writer`].
pub struct AsyncWriter<F, T>(F, PhantomData<fn(&[T])>);
/// See [`tasklet`].
pub struct FnTasklet<F>(F);
/// See [`async_tasklet`].
pub struct AsyncTasklet<F>(F);

impl<T: Send, F> ItemReader<T> for Reader<F>
where
    F: FnMut() -> Result<Option<T>> + Send,
{
    fn read(&mut self) -> impl Future<Output = Result<Option<T>>> + Send {
        std::future::ready((self.0)())
    }
}

impl<T: Send, F> ItemReader<T> for AsyncReader<F>
where
    F: FnMut() -> BoxFuture<'static, Result<Option<T>>> + Send,
{
    fn read(&mut self) -> impl Future<Output = Result<Option<T>>> + Send {
        (self.0)()
    }
}

impl<I: Sync, O: Send, F> ItemProcessor<I, O> for Processor<F, I>
where
    F: FnMut(&I) -> Result<Option<O>> + Send,
{
    fn process(&mut self, item: &I) -> impl Future<Output = Result<Option<O>>> + Send {
        std::future::ready((self.0)(item))
    }
}

impl<I: Sync, O: Send, F> ItemProcessor<I, O> for AsyncProcessor<F, I>
where
    F: for<'a> FnMut(&'a I) -> BoxFuture<'a, Result<Option<O>>> + Send,
{
    fn process(&mut self, item: &I) -> impl Future<Output = Result<Option<O>>> + Send {
        (self.0)(item)
    }
}

impl<T: Sync, F> ItemWriter<T> for Writer<F, T>
where
    F: FnMut(&[T]) -> Result<()> + Send,
{
    fn write(
        &mut self,
        items: &[T],
        _cx: &mut WriteContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready((self.0)(items))
    }
}

impl<T: Sync, F> ItemWriter<T> for AsyncWriter<F, T>
where
    F: for<'a, 'c> FnMut(&'a [T], &'a mut WriteContext<'c>) -> BoxFuture<'a, Result<()>> + Send,
{
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        (self.0)(items, cx).await
    }
}

impl<F> Tasklet for FnTasklet<F>
where
    F: FnMut(&mut TaskletContext<'_>) -> Result<RepeatStatus> + Send,
{
    fn execute(
        &mut self,
        cx: &mut TaskletContext<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send {
        std::future::ready((self.0)(cx))
    }
}

impl<F> Tasklet for AsyncTasklet<F>
where
    F: for<'a, 'c> FnMut(&'a mut TaskletContext<'c>) -> BoxFuture<'a, Result<RepeatStatus>> + Send,
{
    fn execute(
        &mut self,
        cx: &mut TaskletContext<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send {
        (self.0)(cx)
    }
}
