//! Readers, processors and writers: what a chunk step is made of.
//!
//! The traits are async and generic, so a chunk step over concrete types compiles to a
//! loop with no boxing per item. Synchronous closures implement them directly:
//! `|| -> Result<Option<T>, E>` reads, `|item: &I| -> Result<Option<O>, E>` processes
//! (`None` filters the item out), `|items: &[T]| -> Result<(), E>` writes.
//!
//! Spring Batch's `ItemStream` (open / update / close with the step's
//! ExecutionContext) is the set of provided `open`, `update` and `close` methods on
//! [`ItemReader`] and [`ItemWriter`]: a reader that keeps its position overrides them,
//! every other reader ignores them.

use std::collections::VecDeque;
use std::future::Future;

use crate::context::ExecutionContext;
use crate::error::{Error, Result};
use crate::repository::{ChunkTx, JobRepository};

/// Reads items one at a time; `Ok(None)` is the end of input.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an item reader of `{T}`",
    label = "this must implement `ItemReader<{T}>`",
    note = "implement `ItemReader<{T}>`, or use a closure `|| -> Result<Option<{T}>, E>`, `async_reader(|| Box::pin(async move {{ … }}))` for async work, or `ListReader`"
)]
pub trait ItemReader<T>: Send {
    /// The next item, or `Ok(None)` at the end of input; a restarted step's reader
    /// continues from where [`open`](Self::open) put it.
    fn read(&mut self) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Restores the position from the step's ExecutionContext (on restart it holds
    /// what `update` saved at the last commit).
    fn open(&mut self, _ctx: &ExecutionContext) -> Result<()> {
        Ok(())
    }
    /// Saves the position; called just before each chunk commits.
    fn update(&mut self, _ctx: &mut ExecutionContext) -> Result<()> {
        Ok(())
    }
    /// Releases what the reader holds; called once when the step ends, also on failure.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// [`open`](Self::open) for a reader whose opening does async work (opening a
    /// cursor, fetching a first page): the step calls this one, which by default calls
    /// `open`. Implement one of the two.
    fn open_async(&mut self, ctx: &ExecutionContext) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.open(ctx))
    }
    /// [`update`](Self::update), async; the step calls this one, by default `update`.
    fn update_async(
        &mut self,
        ctx: &mut ExecutionContext,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.update(ctx))
    }
    /// [`close`](Self::close), async (closing a cursor, a connection); the step calls
    /// this one, by default `close`.
    fn close_async(&mut self) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.close())
    }

    /// How many more items the reader will return, when it can tell; asked once,
    /// after [`open`](Self::open). A chunk step records it in its context (see
    /// [`crate::telemetry::SIZE_HINT_KEY`]), from which the console shows a running
    /// step's percent done and time left.
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

/// Turns an input item into an output item, or `None` to filter it out.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an item processor from `{I}` to `{O}`",
    label = "this must implement `ItemProcessor<{I}, {O}>`",
    note = "implement `ItemProcessor<{I}, {O}>`, or use a closure: `processor(|item: &{I}| Ok(Some(…)))`, or `async_processor(|item: &{I}| Box::pin(async move {{ … }}))` for async work"
)]
pub trait ItemProcessor<I, O>: Send {
    /// The output for `item`, or `Ok(None)` to filter it (counted in FILTER_COUNT).
    /// With fault tolerance it may be called again for the same item on a retry or scan.
    fn process(&mut self, item: &I) -> impl Future<Output = Result<Option<O>>> + Send;
}

/// Writes a whole chunk at once, inside the chunk's transaction.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an item writer of `{T}`",
    label = "this must implement `ItemWriter<{T}>`",
    note = "implement `ItemWriter<{T}>`, or use a closure: `writer(|items: &[{T}]| Ok(()))`; a writer that needs the chunk's transaction takes the write context: `|items: &[{T}], cx: &mut WriteContext<'_>| …` in `chunk`/`read_write`, `async_writer(|items: &[{T}], cx| Box::pin(async move {{ … }}))` for async work, or `SqlWriter`"
)]
pub trait ItemWriter<T>: Send {
    /// Writes the chunk's items; `cx` holds the chunk's transaction, so rows written
    /// through it commit with the chunk or not at all.
    fn write(
        &mut self,
        items: &[T],
        cx: &mut WriteContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether the writer takes part in the chunk's transaction (the default). A writer
    /// whose effects are outside the database (calls to other systems) says `false`:
    /// the transaction then begins only when the chunk commits, so no database lock is
    /// held while the writer waits on others.
    fn joins_transaction(&self) -> bool {
        true
    }

    /// Restores state from the step's ExecutionContext before the first chunk.
    fn open(&mut self, _ctx: &ExecutionContext) -> Result<()> {
        Ok(())
    }
    /// Saves state; called just before each chunk commits.
    fn update(&mut self, _ctx: &mut ExecutionContext) -> Result<()> {
        Ok(())
    }
    /// Releases what the writer holds; called once when the step ends, also on failure.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// [`open`](Self::open) for a writer whose opening does async work (a connection,
    /// a remote file): the step calls this one, which by default calls `open`.
    /// Implement one of the two.
    fn open_async(&mut self, ctx: &ExecutionContext) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.open(ctx))
    }
    /// [`update`](Self::update), async; the step calls this one, by default `update`.
    fn update_async(
        &mut self,
        ctx: &mut ExecutionContext,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.update(ctx))
    }
    /// [`close`](Self::close), async (flushing to a remote store); the step calls
    /// this one, by default `close`.
    fn close_async(&mut self) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self.close())
    }

    /// Called after a chunk attempt failed and its transaction rolled back (or never
    /// began), before the writer is asked anything else. A writer whose effects are
    /// outside the database but must follow the transaction (the transactional file
    /// writers of [`file`](crate::file)) drops what it buffered for the chunk here and
    /// takes back what it wrote for it in [`update`](Self::update).
    fn after_rollback(&mut self) {}
}

/// Who is writing, for writers that need to know (idempotency keys, logging).
#[derive(Debug, Clone)]
pub struct StepIdentity {
    /// The job's name.
    pub job_name: String,
    /// JOB_INSTANCE_ID: the same on every restart of the instance.
    pub job_instance_id: i64,
    /// JOB_EXECUTION_ID: new on each run.
    pub job_execution_id: i64,
    /// The step's name.
    pub step_name: String,
    /// STEP_EXECUTION_ID: new on each run of the step.
    pub step_execution_id: i64,
}

/// What a writer is handed besides the items: the chunk's transaction on the
/// repository database, the step's ExecutionContext, who is writing, and the durable
/// per-item progress of the step.
pub struct WriteContext<'a> {
    tx: &'a mut ChunkTx,
    identity: &'a StepIdentity,
    context: &'a mut ExecutionContext,
    repository: &'a dyn JobRepository,
}

impl<'a> WriteContext<'a> {
    pub(crate) fn new(
        tx: &'a mut ChunkTx,
        identity: &'a StepIdentity,
        context: &'a mut ExecutionContext,
        repository: &'a dyn JobRepository,
    ) -> Self {
        Self {
            tx,
            identity,
            context,
            repository,
        }
    }

    /// The step's ExecutionContext, live: what is put here is saved when the chunk
    /// commits, and also when the step fails (as Spring Batch saves a failed step's
    /// context), so it can hold a cursor of work done outside the transaction.
    pub fn step_context(&mut self) -> &mut ExecutionContext {
        self.context
    }

    /// The item keys this step of this job instance recorded as done with
    /// [`record_done`](Self::record_done), in any execution.
    pub async fn done_keys(&self) -> Result<Vec<String>> {
        let id = self.identity;
        Ok(self
            .repository
            .item_progress(id.job_instance_id, &id.step_name)
            .await?)
    }

    /// Records an item key as done, in a transaction of its own that is committed when
    /// this returns: neither a rollback of the chunk nor a crash undoes it.
    pub async fn record_done(&self, key: &str) -> Result<()> {
        let id = self.identity;
        Ok(self
            .repository
            .record_item_progress(id.job_instance_id, &id.step_name, key)
            .await?)
    }

    /// Records several item keys as done in one transaction of its own, committed
    /// when this returns: what [`record_done`](Self::record_done) does for each, for
    /// one commit instead of one per key.
    pub async fn record_done_all(&self, keys: &[String]) -> Result<()> {
        let id = self.identity;
        Ok(self
            .repository
            .record_items_progress(id.job_instance_id, &id.step_name, keys)
            .await?)
    }

    /// How long the writer may take over one chunk inside the chunk's transaction:
    /// the repository's statement timeout, when there is a database transaction.
    pub(crate) fn transaction_bound(&self) -> Option<std::time::Duration> {
        self.tx.kind()?;
        self.repository.statement_timeout()
    }

    /// The chunk's transaction: statements run here commit together with the chunk's
    /// metadata, or not at all.
    pub fn transaction(&mut self) -> &mut ChunkTx {
        self.tx
    }

    /// The chunk's transaction as a SQLite connection; an error when the job
    /// repository is not on SQLite.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        self.tx.sqlite()
    }

    /// The chunk's transaction as a PostgreSQL connection; an error when the job
    /// repository is not on PostgreSQL.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        self.tx.postgres()
    }

    /// The chunk's transaction as a MySQL/MariaDB connection; an error when the job
    /// repository is not on MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection> {
        self.tx.mysql()
    }

    /// Who is writing.
    pub fn identity(&self) -> &StepIdentity {
        self.identity
    }
}

// Not recommended in errors (as the writer's below): a closure returning an async
// block is reported with the trait's note, which names `async_reader`.
#[diagnostic::do_not_recommend]
impl<T, F, E> ItemReader<T> for F
where
    F: FnMut() -> std::result::Result<Option<T>, E> + Send,
    E: Into<Error>,
    T: Send,
{
    fn read(&mut self) -> impl Future<Output = Result<Option<T>>> + Send {
        std::future::ready(self().map_err(Into::into))
    }
}

// Not recommended in errors: a closure returning an async block is reported with the
// trait's note, which names `async_processor`.
#[diagnostic::do_not_recommend]
impl<I, O, F, E> ItemProcessor<I, O> for F
where
    F: FnMut(&I) -> std::result::Result<Option<O>, E> + Send,
    E: Into<Error>,
    O: Send,
    I: Sync,
{
    fn process(&mut self, item: &I) -> impl Future<Output = Result<Option<O>>> + Send {
        std::future::ready(self(item).map_err(Into::into))
    }
}

// Not recommended in errors: a closure of the wrong shape (two arguments, an async
// block) is then reported as "not an item writer", with the trait's note naming the
// fix, rather than as rustc's bare arity or return-type mismatch.
#[diagnostic::do_not_recommend]
impl<T, F, E> ItemWriter<T> for F
where
    F: FnMut(&[T]) -> std::result::Result<(), E> + Send,
    E: Into<Error>,
    T: Sync,
{
    fn write(
        &mut self,
        items: &[T],
        _cx: &mut WriteContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(self(items).map_err(Into::into))
    }
}

/// What [`chunk`](crate::chunk::chunk) and [`read_write`](crate::chunk::read_write) take as the writer of
/// `T`: any [`ItemWriter`] (a closure given the chunk, `|items: &[T]| …`, is one), or a
/// closure given the chunk and its [`WriteContext`], `|items: &[T], cx: &mut
/// WriteContext<'_>| …`, which can write in the chunk's transaction.
///
/// `Form` tells the two apart so that both can be implemented for closures; it is
/// inferred, never written.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an item writer of `{T}`",
    label = "this must write items of `{T}`",
    note = "a writer closure takes the chunk, `|items: &[{T}]| …`, or the chunk and its write context, `|items: &[{T}], cx: &mut WriteContext<'_>| …`; for async work use `async_writer(|items: &[{T}], cx| Box::pin(async move {{ … }}))`; or implement `ItemWriter<{T}>`"
)]
pub trait IntoItemWriter<T, Form> {
    /// The writer the step runs.
    type Writer: ItemWriter<T>;
    /// Makes the writer.
    fn into_item_writer(self) -> Self::Writer;
}

/// The forms of [`IntoItemWriter`].
pub mod writer_form {
    /// An [`ItemWriter`](super::ItemWriter), taken as it is.
    pub enum Writer {}
    /// A closure given the chunk and its [`WriteContext`](super::WriteContext).
    pub enum ClosureWithContext {}
}

impl<T, W: ItemWriter<T>> IntoItemWriter<T, writer_form::Writer> for W {
    type Writer = W;
    fn into_item_writer(self) -> W {
        self
    }
}

// The closure's error type is fixed, so `Ok(())` needs no turbofish; `?` converts the
// step's own errors as everywhere else.
impl<T, F> IntoItemWriter<T, writer_form::ClosureWithContext> for F
where
    F: for<'a, 'c> FnMut(&'a [T], &'a mut WriteContext<'c>) -> Result<()> + Send,
    T: Sync,
{
    type Writer = ContextWriter<F, T>;
    fn into_item_writer(self) -> Self::Writer {
        ContextWriter(self, std::marker::PhantomData)
    }
}

/// A writer from a closure given the chunk and its [`WriteContext`]; made when such a
/// closure is given to [`chunk`](crate::chunk::chunk) or [`read_write`](crate::chunk::read_write).
pub struct ContextWriter<F, T>(F, std::marker::PhantomData<fn(&[T])>);

impl<T, F> ItemWriter<T> for ContextWriter<F, T>
where
    F: for<'a, 'c> FnMut(&'a [T], &'a mut WriteContext<'c>) -> Result<()> + Send,
    T: Sync,
{
    fn write(
        &mut self,
        items: &[T],
        cx: &mut WriteContext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready((self.0)(items, cx))
    }
}

/// Reads the items of a list or any iterator, in order.
///
/// On its own it starts from the beginning on every run. Made [`restartable`]
/// (`ListReader::new(items).restartable("reader")`), it keeps how many items it has
/// returned under `reader.read.count` and skips them on restart, as Spring's
/// `AbstractItemCountingItemStreamItemReader` does.
///
/// [`restartable`]: ListReader::restartable
pub struct ListReader<T> {
    items: VecDeque<T>,
    read: u64,
    count_key: Option<String>,
}

impl<T> ListReader<T> {
    /// A reader of `items`, in order; not restartable until given a key with
    /// [`restartable`](Self::restartable).
    pub fn new(items: impl IntoIterator<Item = T>) -> Self {
        Self {
            items: items.into_iter().collect(),
            read: 0,
            count_key: None,
        }
    }

    /// Keeps the count of items returned in the step context under `{name}.read.count`.
    pub fn restartable(mut self, name: &str) -> Self {
        self.count_key = Some(format!("{name}.read.count"));
        self
    }

    /// Items returned so far (on restart, counting those of earlier runs).
    pub fn read_count(&self) -> u64 {
        self.read
    }
}

impl<T: Send> ItemReader<T> for ListReader<T> {
    fn read(&mut self) -> impl Future<Output = Result<Option<T>>> + Send {
        let item = self.items.pop_front();
        self.read += item.is_some() as u64;
        std::future::ready(Ok(item))
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        if let Some(key) = &self.count_key
            && let Some(done) = ctx.get::<u64>(key)?
        {
            let skip = (done as usize).min(self.items.len());
            self.items.drain(..skip);
            self.read = done;
        }
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        if let Some(key) = &self.count_key {
            ctx.put(key.as_str(), &self.read)?;
        }
        Ok(())
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.items.len() as u64)
    }
}

/// A writer that drops what it gets: for steps whose processor does the work.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopWriter;

impl<T: Sync> ItemWriter<T> for NoopWriter {
    async fn write(&mut self, _items: &[T], _cx: &mut WriteContext<'_>) -> Result<()> {
        Ok(())
    }
}
