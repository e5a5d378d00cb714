//! Calls to outside systems that a restart never repeats.
//!
//! A chunk's transaction can roll back the database, not a call already made to a
//! partner's API. [`DurableCalls`] turns a per-item call ([`ItemCall`]) into a writer
//! that records the key of each item whose call succeeded as done, in a transaction of
//! its own, and skips items recorded as done — in later attempts of the chunk and in
//! later executions of the job instance, even after `kill -9`. Each call also carries
//! an idempotency key that is the same for the item on every attempt and restart (job,
//! instance, step, item key), for the window no local record can close: calls that
//! succeeded just before the process died, before their record was written. A partner
//! that honours idempotency keys answers such a repeat with its first answer.
//!
//! Up to [`concurrency`](DurableCalls::concurrency) calls of a chunk are in flight at
//! once (one by default), so a slow partner costs its latency once per group of calls
//! rather than once per item. The successes of a chunk are recorded together, in one
//! transaction written when the chunk's calls have ended and before the chunk commits:
//! one commit per chunk, not one per call. When a call fails no new call starts, the
//! calls in flight finish, and every success among them is recorded before the chunk
//! fails: a restart re-sends only what was not recorded. A process killed in the middle
//! of a chunk leaves that chunk's successes unrecorded; the restart repeats them with
//! their idempotency keys, so the chunk size bounds how many calls a partner can see
//! twice.
//!
//! The writer does not join the chunk's transaction, so no database lock is held while
//! it waits on the partner.
//!
//! ```rust
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use batch_core::calls::{DurableCalls, ItemCall};
//! use batch_core::prelude::*;
//!
//! /// Sends one order; counts what it sent. A real one posts `order` with the key
//! /// in an `Idempotency-Key` header.
//! #[derive(Default)]
//! struct SendOrder {
//!     sent: AtomicU64,
//! }
//!
//! impl ItemCall<i64> for SendOrder {
//!     fn key(&self, order: &i64) -> String {
//!         order.to_string()
//!     }
//!
//!     async fn call(&self, _order: &i64, _idempotency_key: &str) -> Result<()> {
//!         self.sent.fetch_add(1, Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! fn send() -> impl ChunkStep<i64, i64> {
//!     read_write(
//!         ListReader::new(1..=1000i64).restartable("orders"),
//!         // Sixteen calls in flight at once; a chunk's successes recorded together.
//!         DurableCalls::new(SendOrder::default()).concurrency(16),
//!     )
//! }
//! # let _ = send();
//! ```

use std::collections::HashSet;
use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::error::{Error, Result};
use crate::item::{ItemWriter, WriteContext};

/// One call per item to a system outside the job repository's transaction.
///
/// `call` takes `&self` because several calls may be in flight at once: state the call
/// changes (counters, a client's pool) lives behind atomics or a lock.
pub trait ItemCall<T>: Send + Sync {
    /// The item's stable identity (its primary key, say): what its progress is
    /// recorded under. At most 250 characters.
    fn key(&self, item: &T) -> String;

    /// Makes the call. `idempotency_key` is the same for this item in every attempt
    /// and execution of the step: hand it to the partner (an `Idempotency-Key`
    /// header).
    fn call(&self, item: &T, idempotency_key: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A writer that makes each item's call once. See the module documentation.
pub struct DurableCalls<C> {
    call: C,
    concurrency: usize,
    done: Option<HashSet<String>>,
    skipped: u64,
}

impl<C> DurableCalls<C> {
    /// Wraps `call`, one call at a time; which items were called already is read from
    /// the step's progress at the first write.
    pub fn new(call: C) -> Self {
        Self {
            call,
            concurrency: 1,
            done: None,
            skipped: 0,
        }
    }

    /// Up to `limit` calls of a chunk in flight at once (0 counts as 1). A chunk
    /// smaller than `limit` has all its calls in flight together.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Items not called because an earlier attempt or execution had called them, or
    /// because an item with the same key came earlier in the chunk.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The wrapped call, for inspecting its state after a run.
    pub fn inner(&self) -> &C {
        &self.call
    }
}

/// The idempotency key of an item: the same on every attempt and restart.
pub fn idempotency_key(cx: &WriteContext<'_>, item_key: &str) -> String {
    let id = cx.identity();
    format!(
        "{}/{}/{}/{}",
        id.job_name, id.job_instance_id, id.step_name, item_key
    )
}

impl<T: Sync, C: ItemCall<T>> ItemWriter<T> for DurableCalls<C> {
    async fn write(&mut self, items: &[T], cx: &mut WriteContext<'_>) -> Result<()> {
        if self.done.is_none() {
            self.done = Some(cx.done_keys().await?.into_iter().collect());
        }
        let done = self.done.as_mut().expect("loaded above");
        let cx: &WriteContext<'_> = cx;
        let call = &self.call;
        let mut in_chunk = HashSet::new();
        let mut queued = Vec::with_capacity(items.len());
        for item in items {
            let key = call.key(item);
            if done.contains(&key) || !in_chunk.insert(key.clone()) {
                self.skipped += 1;
                continue;
            }
            queued.push((item, key));
        }
        let mut queued = queued.into_iter();
        let mut in_flight = FuturesUnordered::new();
        let mut succeeded = Vec::new();
        let mut failure = Failure::default();
        loop {
            while failure.first.is_none() && in_flight.len() < self.concurrency {
                let Some((item, key)) = queued.next() else {
                    break;
                };
                let idempotency = idempotency_key(cx, &key);
                in_flight.push(async move {
                    let result = call.call(item, &idempotency).await;
                    (key, result)
                });
            }
            let Some((key, result)) = in_flight.next().await else {
                break;
            };
            match result {
                Ok(()) => succeeded.push(key),
                Err(e) => failure.note(e),
            }
        }
        if !succeeded.is_empty() {
            match cx.record_done_all(&succeeded).await {
                Ok(()) => done.extend(succeeded),
                Err(e) => failure.note(e),
            }
        }
        match failure.first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn joins_transaction(&self) -> bool {
        false
    }
}

/// The first problem of a chunk's calls, which fails the chunk; later ones (calls in
/// flight that fail while the others drain) are logged, not lost.
#[derive(Default)]
struct Failure {
    first: Option<Error>,
}

impl Failure {
    fn note(&mut self, e: Error) {
        match &self.first {
            Some(_) => tracing::warn!(
                "another call failed while the chunk's calls drained: {}",
                e.report()
            ),
            None => self.first = Some(e),
        }
    }
}
