//! Items made of items: a composite writer (several writers in order, in the chunk's
//! transaction), a classifier writer (each item to one of several writers), a
//! composite processor (a chain) and a validating processor.
//!
//! ```rust,no_run
//! use batch_core::prelude::*;
//! use batch_core::compose::{ClassifierWriter, CompositeProcessor, CompositeWriter, ValidatingProcessor};
//! use batch_core::file::{CsvWriter, JsonLinesWriter};
//!
//! #[derive(Clone, serde::Serialize)]
//! struct Order { id: i64, amount: i64 }
//!
//! # fn f() {
//! // Every order to both files, in order, each with its own place in the step context.
//! let both = CompositeWriter::new()
//!     .with(CsvWriter::<Order>::new("orders.csv").name("csv"))
//!     .with(JsonLinesWriter::<Order>::new("orders.jsonl").name("jsonl"));
//! // Large orders to one file, the others to another.
//! let routed = ClassifierWriter::new(|o: &Order| o.amount >= 1000)
//!     .route(true, CsvWriter::<Order>::new("large.csv").name("large"))
//!     .route(false, CsvWriter::<Order>::new("small.csv").name("small"));
//! // Validate, then transform; a failed validation filters the order out.
//! let process: CompositeProcessor<_, _, Order> = CompositeProcessor::new(
//!     ValidatingProcessor::new(|o: &Order| {
//!         if o.amount < 0 { Err("negative amount") } else { Ok(()) }
//!     })
//!     .filter(),
//!     |o: &Order| Ok::<_, Error>(Some(Order { id: o.id, amount: o.amount * 100 })),
//! );
//! # let _ = (both, routed, process);
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::item::{ItemProcessor, ItemWriter, WriteContext};
use crate::repository::BoxFuture;

/// An [`ItemWriter`] behind a pointer, so that writers of different types can sit in
/// one list.
trait DynWriter<T>: Send {
    fn write_dyn<'a, 'b: 'a>(
        &'a mut self,
        items: &'a [T],
        cx: &'a mut WriteContext<'b>,
    ) -> BoxFuture<'a, Result<()>>;
    fn joins_dyn(&self) -> bool;
    fn open_dyn<'a>(&'a mut self, ctx: &'a ExecutionContext) -> BoxFuture<'a, Result<()>>;
    fn update_dyn<'a>(&'a mut self, ctx: &'a mut ExecutionContext) -> BoxFuture<'a, Result<()>>;
    fn close_dyn(&mut self) -> BoxFuture<'_, Result<()>>;
    fn after_rollback_dyn(&mut self);
}

impl<T: Sync + 'static, W: ItemWriter<T>> DynWriter<T> for W {
    fn write_dyn<'a, 'b: 'a>(
        &'a mut self,
        items: &'a [T],
        cx: &'a mut WriteContext<'b>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write(items, cx))
    }
    fn joins_dyn(&self) -> bool {
        self.joins_transaction()
    }
    fn open_dyn<'a>(&'a mut self, ctx: &'a ExecutionContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.open_async(ctx))
    }
    fn update_dyn<'a>(&'a mut self, ctx: &'a mut ExecutionContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.update_async(ctx))
    }
    fn close_dyn(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.close_async())
    }
    fn after_rollback_dyn(&mut self) {
        self.after_rollback()
    }
}

type Writers<T> = Vec<Box<dyn DynWriter<T>>>;

async fn open_all<T>(writers: &mut Writers<T>, ctx: &ExecutionContext) -> Result<()> {
    for writer in writers.iter_mut() {
        writer.open_dyn(ctx).await?;
    }
    Ok(())
}

async fn update_all<T>(writers: &mut Writers<T>, ctx: &mut ExecutionContext) -> Result<()> {
    for writer in writers.iter_mut() {
        writer.update_dyn(ctx).await?;
    }
    Ok(())
}

/// Closes every writer, even after one fails; the first error is returned.
async fn close_all<T>(writers: &mut Writers<T>) -> Result<()> {
    let mut outcome = Ok(());
    for writer in writers.iter_mut() {
        let closed = writer.close_dyn().await;
        if outcome.is_ok() {
            outcome = closed;
        }
    }
    outcome
}

/// Several writers that each write the whole chunk, in the order given, all in the
/// chunk's transaction: a failure in any one fails the chunk, which rolls back for all
/// (Spring's `CompositeItemWriter`). Each keeps its own state in the step context
/// under its own name.
pub struct CompositeWriter<T> {
    writers: Writers<T>,
}

impl<T> Default for CompositeWriter<T> {
    fn default() -> Self {
        Self {
            writers: Vec::new(),
        }
    }
}

impl<T: Sync + 'static> CompositeWriter<T> {
    /// A composite of no writers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a writer after the others.
    pub fn with(mut self, writer: impl ItemWriter<T> + 'static) -> Self {
        self.writers.push(Box::new(writer));
        self
    }
}

impl<T: Sync> ItemWriter<T> for CompositeWriter<T> {
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        for writer in &mut self.writers {
            writer.write_dyn(items, cx).await?;
        }
        Ok(())
    }

    fn joins_transaction(&self) -> bool {
        self.writers.iter().any(|w| w.joins_dyn())
    }

    async fn open_async(&mut self, ctx: &ExecutionContext) -> Result<()> {
        open_all(&mut self.writers, ctx).await
    }

    async fn update_async(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        update_all(&mut self.writers, ctx).await
    }

    async fn close_async(&mut self) -> Result<()> {
        close_all(&mut self.writers).await
    }

    fn after_rollback(&mut self) {
        self.writers.iter_mut().for_each(|w| w.after_rollback_dyn());
    }
}

/// An item the [`ClassifierWriter`]'s function sent to no route.
#[derive(Debug, thiserror::Error)]
#[error("the classifier sent an item to route {route}, which has no writer")]
pub struct NoRoute {
    /// The route the function gave, as debug text.
    pub route: String,
}

/// Sends each item to one of several writers, chosen by a function of the item (Spring's
/// `ClassifierCompositeItemWriter`). Each writer gets, in one call per chunk, the items
/// routed to it, in their order; writers with no item in a chunk are not called. All
/// write in the chunk's transaction. An item routed where no writer is fails the chunk
/// with [`NoRoute`], unless a [`fallback`](Self::fallback) takes it.
pub struct ClassifierWriter<T, K> {
    classify: Box<dyn Fn(&T) -> K + Send + Sync>,
    routes: Vec<K>,
    writers: Writers<T>,
    fallback: Option<usize>,
    buckets: Vec<Vec<T>>,
}

impl<T: Clone + Sync + Send + 'static, K: PartialEq + fmt::Debug + Send + Sync>
    ClassifierWriter<T, K>
{
    /// A writer that routes by `classify`; give it its routes with
    /// [`route`](Self::route).
    pub fn new(classify: impl Fn(&T) -> K + Send + Sync + 'static) -> Self {
        Self {
            classify: Box::new(classify),
            routes: Vec::new(),
            writers: Vec::new(),
            fallback: None,
            buckets: Vec::new(),
        }
    }

    /// Items for which the function gives `route` go to `writer`.
    pub fn route(mut self, route: K, writer: impl ItemWriter<T> + 'static) -> Self {
        self.routes.push(route);
        self.writers.push(Box::new(writer));
        self.buckets.push(Vec::new());
        self
    }

    /// Items of any route without a writer go to `writer`.
    pub fn fallback(mut self, writer: impl ItemWriter<T> + 'static) -> Self {
        self.fallback = Some(self.writers.len());
        self.writers.push(Box::new(writer));
        self.buckets.push(Vec::new());
        self
    }
}

impl<T, K> ItemWriter<T> for ClassifierWriter<T, K>
where
    T: Clone + Send + Sync,
    K: PartialEq + fmt::Debug + Send + Sync,
{
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        self.buckets.iter_mut().for_each(Vec::clear);
        for item in items {
            let route = (self.classify)(item);
            let at = self
                .routes
                .iter()
                .position(|r| *r == route)
                .or(self.fallback)
                .ok_or_else(|| {
                    Error::new(NoRoute {
                        route: format!("{route:?}"),
                    })
                })?;
            self.buckets[at].push(item.clone());
        }
        for (writer, bucket) in self.writers.iter_mut().zip(&self.buckets) {
            if !bucket.is_empty() {
                writer.write_dyn(bucket, cx).await?;
            }
        }
        Ok(())
    }

    fn joins_transaction(&self) -> bool {
        self.writers.iter().any(|w| w.joins_dyn())
    }

    async fn open_async(&mut self, ctx: &ExecutionContext) -> Result<()> {
        open_all(&mut self.writers, ctx).await
    }

    async fn update_async(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        update_all(&mut self.writers, ctx).await
    }

    async fn close_async(&mut self) -> Result<()> {
        close_all(&mut self.writers).await
    }

    fn after_rollback(&mut self) {
        self.buckets.iter_mut().for_each(Vec::clear);
        self.writers.iter_mut().for_each(|w| w.after_rollback_dyn());
    }
}

/// Two processors in a chain: the first's output is the second's input, and an item
/// the first filters out goes no further (Spring's `CompositeItemProcessor`). Chain
/// more with [`then`](Self::then).
pub struct CompositeProcessor<P, Q, M> {
    first: P,
    second: Q,
    _middle: PhantomData<fn(M) -> M>,
}

impl<P, Q, M> CompositeProcessor<P, Q, M> {
    /// `first`, then `second`.
    pub fn new(first: P, second: Q) -> Self {
        Self {
            first,
            second,
            _middle: PhantomData,
        }
    }

    /// This chain, then `next`.
    pub fn then<R, N>(self, next: R) -> CompositeProcessor<Self, R, N> {
        CompositeProcessor::new(self, next)
    }
}

impl<I, M, O, P, Q> ItemProcessor<I, O> for CompositeProcessor<P, Q, M>
where
    P: ItemProcessor<I, M>,
    Q: ItemProcessor<M, O>,
    I: Sync,
    M: Send + Sync,
    O: Send,
{
    async fn process(&mut self, item: &I) -> Result<Option<O>> {
        match self.first.process(item).await? {
            Some(middle) => self.second.process(&middle).await,
            None => Ok(None),
        }
    }
}

/// An item that failed validation, when the [`ValidatingProcessor`] is not set to
/// filter: a process error, skippable with `skip(ValidationFailed, limit = N)`. The
/// validator's error is its source.
#[derive(Debug, thiserror::Error)]
#[error("the item failed validation")]
pub struct ValidationFailed {
    /// What the validator said.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Checks each item with a validator and passes it on unchanged (Spring's
/// `ValidatingItemProcessor`). An item the validator refuses is, as configured, a
/// [`ValidationFailed`] error (the default, which `skip(...)` can skip) or filtered
/// out ([`filter`](Self::filter)).
pub struct ValidatingProcessor<F> {
    validate: F,
    filter: bool,
}

impl<F> ValidatingProcessor<F> {
    /// A processor that validates with `validate`: `Ok(())` passes the item on, an
    /// error refuses it.
    pub fn new(validate: F) -> Self {
        Self {
            validate,
            filter: false,
        }
    }

    /// Refused items are filtered out (counted in FILTER_COUNT) instead of failing.
    pub fn filter(mut self) -> Self {
        self.filter = true;
        self
    }
}

impl<T, F, E> ItemProcessor<T, T> for ValidatingProcessor<F>
where
    F: FnMut(&T) -> std::result::Result<(), E> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: Clone + Send + Sync,
{
    fn process(&mut self, item: &T) -> impl Future<Output = Result<Option<T>>> + Send {
        let outcome = match (self.validate)(item) {
            Ok(()) => Ok(Some(item.clone())),
            Err(_) if self.filter => Ok(None),
            Err(e) => Err(Error::new(ValidationFailed { source: e.into() })),
        };
        std::future::ready(outcome)
    }
}
