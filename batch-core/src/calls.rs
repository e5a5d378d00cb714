//! Calls to outside systems that a restart never repeats.
//!
//! A chunk's transaction can roll back the database, not a call already made to a
//! partner's API. [`DurableCalls`] turns a per-item call ([`ItemCall`]) into a writer
//! that, after each successful call, records the item's key as done in a transaction
//! of its own, and skips items recorded as done — in later attempts of the chunk and in
//! later executions of the job instance, even after `kill -9`. Each call also carries
//! an idempotency key that is the same for the item on every attempt and restart (job,
//! instance, step, item key), for the one window no local record can close: a call
//! that succeeded just before the process died, before its record was written. A
//! partner that honours idempotency keys answers that repeat with its first answer.
//!
//! The writer does not join the chunk's transaction, so no database lock is held while
//! it waits on the partner.

use std::collections::HashSet;
use std::future::Future;

use crate::error::Result;
use crate::item::{ItemWriter, WriteContext};

/// One call per item to a system outside the job repository's transaction.
pub trait ItemCall<T>: Send {
    /// The item's stable identity (its primary key, say): what its progress is
    /// recorded under. At most 250 characters.
    fn key(&self, item: &T) -> String;

    /// Makes the call. `idempotency_key` is the same for this item in every attempt
    /// and execution of the step: hand it to the partner (an `Idempotency-Key`
    /// header).
    fn call(&mut self, item: &T, idempotency_key: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A writer that makes each item's call once. See the module documentation.
pub struct DurableCalls<C> {
    call: C,
    done: Option<HashSet<String>>,
    skipped: u64,
}

impl<C> DurableCalls<C> {
    /// Wraps `call`; which items were called already is read from the step's progress
    /// at the first write.
    pub fn new(call: C) -> Self {
        Self {
            call,
            done: None,
            skipped: 0,
        }
    }

    /// Items not called because an earlier attempt or execution had called them.
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
        for item in items {
            let key = self.call.key(item);
            if done.contains(&key) {
                self.skipped += 1;
                continue;
            }
            let idempotency = idempotency_key(cx, &key);
            self.call.call(item, &idempotency).await?;
            cx.record_done(&key).await?;
            done.insert(key);
        }
        Ok(())
    }

    fn joins_transaction(&self) -> bool {
        false
    }
}
