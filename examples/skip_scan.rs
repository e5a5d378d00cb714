//! Seed 004's caution, measured: a writer that pushes each item to a side-effecting
//! service (think push notifications), which rejects item 3. With `skip` the chunk is
//! rolled back and rescanned one item per transaction, so the pushes of the items
//! before 3 happen twice. The job runs the same chunk four ways and counts, per item,
//! how often the processor ran and how often the service was reached:
//!
//! 1. `rescan`: skip only. The processor runs again for every rescanned item, and
//!    the service sees items 1 and 2 twice.
//! 2. `non_transactional`: plus `processor_non_transactional`. The processor runs once
//!    per item; the service still sees 1 and 2 twice.
//! 3. `no_rollback`: plus `no_rollback(PushRejected)`. A failed write must still roll
//!    back to find the failing item, so the service still sees duplicates; during the
//!    rescan the rejection no longer rolls back.
//! 4. `durable`: the push is an `ItemCall` made through `DurableCalls`, which records
//!    each delivered item (in a transaction of its own, apart from the chunk's) and
//!    never calls for it again (also across restarts): what actually stops the
//!    duplicates.
//!
//! ```text
//! cargo run --example skip_scan
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use batch::calls::{DurableCalls, ItemCall};
use batch::cli::Runner;
use batch::prelude::*;

const ITEMS: u32 = 6;
const REJECTED: u32 = 3;

/// The service's answer for item `REJECTED`.
#[derive(Debug, thiserror::Error)]
#[error("PushRejected: the service refused item {0}")]
pub struct PushRejected(u32);

/// What the service and the processor saw, per item.
#[derive(Default)]
pub struct Tally {
    processed: BTreeMap<u32, u32>,
    pushed: BTreeMap<u32, u32>,
    delivered: BTreeSet<u32>,
}

/// The side-effecting service: every call is a push that cannot be taken back.
#[derive(Clone, Default)]
pub struct PushService(Arc<Mutex<Tally>>);

impl PushService {
    fn push(&self, item: u32) -> std::result::Result<(), PushRejected> {
        let mut t = self.0.lock().unwrap();
        *t.pushed.entry(item).or_default() += 1;
        if item == REJECTED {
            return Err(PushRejected(item));
        }
        t.delivered.insert(item);
        Ok(())
    }

    fn processed(&self, item: u32) {
        *self.0.lock().unwrap().processed.entry(item).or_default() += 1;
    }

    fn report(&self, variant: &str) {
        let t = self.0.lock().unwrap();
        println!("\n{variant}");
        println!("  item  processed  reached the service  delivered");
        for item in 1..=ITEMS {
            println!(
                "  {item:>4}  {:>9}  {:>19}  {:>9}",
                t.processed.get(&item).copied().unwrap_or(0),
                t.pushed.get(&item).copied().unwrap_or(0),
                if t.delivered.contains(&item) {
                    "yes"
                } else {
                    "no"
                },
            );
        }
        let repeated: u32 = t.pushed.values().map(|n| n - 1).sum();
        let again: u32 = t
            .pushed
            .iter()
            .filter(|(item, _)| t.delivered.contains(item))
            .map(|(_, n)| n - 1)
            .sum();
        println!("  repeated calls: {repeated}, of which to items already delivered: {again}");
    }
}

/// Enriches an item (imagine a lookup that costs a call).
pub struct Enrich(PushService);

impl ItemProcessor<u32, u32> for Enrich {
    async fn process(&mut self, item: &u32) -> Result<Option<u32>> {
        self.0.processed(*item);
        Ok(Some(*item))
    }
}

/// Pushes each item of the chunk.
pub struct Pusher(PushService);

impl ItemWriter<u32> for Pusher {
    async fn write(&mut self, items: &[u32], _cx: &mut WriteContext<'_>) -> Result<()> {
        for &item in items {
            self.0.push(item)?;
        }
        Ok(())
    }
}

/// The same push as one call per item, for `DurableCalls`.
pub struct PushCall(PushService);

impl ItemCall<u32> for PushCall {
    fn key(&self, item: &u32) -> String {
        item.to_string()
    }

    async fn call(&self, item: &u32, _idempotency_key: &str) -> Result<()> {
        Ok(self.0.push(*item)?)
    }
}

/// Prints what the service saw when the step closes its writer.
pub struct Reported<W> {
    writer: W,
    service: PushService,
    variant: &'static str,
}

impl<W: ItemWriter<u32>> ItemWriter<u32> for Reported<W> {
    async fn write(&mut self, items: &[u32], cx: &mut WriteContext<'_>) -> Result<()> {
        self.writer.write(items, cx).await
    }

    fn joins_transaction(&self) -> bool {
        self.writer.joins_transaction()
    }

    fn close(&mut self) -> Result<()> {
        self.service.report(self.variant);
        Ok(())
    }
}

fn parts(variant: &'static str, durable: bool) -> impl ChunkStep<u32, u32> {
    let service = PushService::default();
    let writer = if durable {
        Either::Durable(DurableCalls::new(PushCall(service.clone())))
    } else {
        Either::Plain(Pusher(service.clone()))
    };
    chunk(
        ListReader::new(1..=ITEMS),
        Enrich(service.clone()),
        Reported {
            writer,
            service,
            variant,
        },
    )
}

/// One writer type for both kinds of steps.
pub enum Either {
    /// Calls the service for each item on every write, rescans included.
    Plain(Pusher),
    /// Calls the service once per item; later attempts skip recorded items.
    Durable(DurableCalls<PushCall>),
}

impl ItemWriter<u32> for Either {
    async fn write(&mut self, items: &[u32], cx: &mut WriteContext<'_>) -> Result<()> {
        match self {
            Either::Plain(w) => w.write(items, cx).await,
            Either::Durable(w) => w.write(items, cx).await,
        }
    }

    fn joins_transaction(&self) -> bool {
        match self {
            Either::Plain(w) => w.joins_transaction(),
            Either::Durable(w) => w.joins_transaction(),
        }
    }
}

#[step(chunk = 6, skip(PushRejected, limit = 10))]
fn rescan() -> impl ChunkStep<u32, u32> {
    parts("1. skip: rollback, then one item per transaction", false)
}

#[step(chunk = 6, skip(PushRejected, limit = 10), processor_non_transactional)]
fn non_transactional() -> impl ChunkStep<u32, u32> {
    parts("2. skip + processor_non_transactional", false)
}

#[step(
    chunk = 6,
    skip(PushRejected, limit = 10),
    no_rollback(PushRejected),
    processor_non_transactional
)]
fn no_rollback() -> impl ChunkStep<u32, u32> {
    parts("3. skip + no_rollback + processor_non_transactional", false)
}

#[step(chunk = 6, skip(PushRejected, limit = 10), processor_non_transactional)]
fn durable() -> impl ChunkStep<u32, u32> {
    parts("4. skip + DurableCalls", true)
}

#[job(name = "skipScanJob", optional = [])]
fn skip_scan_job() -> Flow {
    Flow::start(rescan {})
        .next(non_transactional {})
        .next(no_rollback {})
        .next(durable {})
        .build()
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Seed 004: what a skip in the writer costs a side-effecting service, four ways")
        .run(skip_scan_job {})
}
