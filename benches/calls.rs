//! Durable calls against a partner API: the `order_sync` job (its durable and cursor
//! modes) sending 1,000 orders to its partner, both in this process over loopback
//! HTTP, with the job repository on a SQLite file (WAL, synchronous FULL). Run with:
//!
//! ```text
//! cargo bench --bench calls            # both (about a minute and a half on 2 cores)
//! cargo bench --bench calls -- c1 c2   # some of them, by these names:
//! ```
//!
//! - `c1`: a partner whose answers take 5 ms; durable mode with concurrency 1 against
//!   concurrency 16 (chunks of 100, so that 16 calls can be in flight).
//! - `c2`: a partner that answers at once; durable mode against cursor mode, one call
//!   at a time, with chunks of 10 (the example's default) and of 100; the partner
//!   first storing the answer under each idempotency key (work only durable mode asks
//!   of it), then ignoring the keys, which leaves the framework's own cost.
//!
//! Each run starts from a fresh repository file and a fresh partner (setup outside the
//! time). Variants run in interleaved rounds (see `common/rounds.rs`); a ratio is the
//! median of the per-round ratios, with their range.

use std::sync::Arc;
use std::time::{Duration, Instant};

use batch::prelude::*;
use tokio::runtime::Runtime;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/order_sync.rs"]
mod order_sync;

mod common;

use common::rounds::{Timings, Variant, interleaved};
use order_sync::partner::Behaviour;
use order_sync::{PartnerUrl, Sent, order_sync_job, prepare, start_partner};

const ORDERS: i64 = 1000;

const NAMES: &[&str] = &["c1", "c2"];

/// One launch of the job over `ORDERS` fresh orders against a fresh partner; the time
/// of the launch alone.
fn run_once(rt: &Runtime, partner: Behaviour, params: &[(&str, &str)]) -> Duration {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:{}", dir.path().join("batch.db").display());
        let repository = SqliteJobRepository::open(&db).await.unwrap();
        let pool = repository.pool().clone();
        prepare(&pool, ORDERS).await.unwrap();
        let (partner, _partner_dir) = start_partner(partner).await.unwrap();
        let launcher = JobLauncher::new(repository)
            .resource(pool)
            .resource(PartnerUrl(partner.url()));
        let mut parameters = JobParameters::new();
        for (name, value) in params {
            parameters = parameters.with(*name, *value);
        }
        let sent = Arc::new(Sent::default());
        let started = Instant::now();
        let execution = launcher
            .run(order_sync_job(sent.clone()), parameters)
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(execution.status, BatchStatus::Completed, "{params:?}");
        assert_eq!(
            sent.calls.load(std::sync::atomic::Ordering::SeqCst),
            ORDERS as u64,
            "one call per order"
        );
        took
    })
}

fn report(t: &Timings, names: &[&str]) {
    for name in names {
        let median = t.median(name);
        println!(
            "  {name:<28} {:>8.3} s  {:>7.0} orders/s",
            median.as_secs_f64(),
            ORDERS as f64 / median.as_secs_f64()
        );
    }
}

fn c1(rt: &Runtime, verdicts: &mut Vec<String>) {
    let slow = Behaviour {
        latency: Duration::from_millis(5),
        ..Behaviour::default()
    };
    let durable = |concurrency: &'static str| {
        move || {
            run_once(
                rt,
                slow,
                &[
                    ("mode", "durable"),
                    ("chunk", "100"),
                    ("concurrency", concurrency),
                ],
            )
        }
    };
    let t = interleaved(
        5,
        vec![
            Variant::new("durable, concurrency 1", durable("1")),
            Variant::new("durable, concurrency 16", durable("16")),
        ],
    );
    println!(
        "c1: {ORDERS} orders, partner answers after 5 ms, chunks of 100 ({} rounds)",
        t.rounds()
    );
    report(&t, &["durable, concurrency 1", "durable, concurrency 16"]);
    let r = t.ratio("durable, concurrency 1", "durable, concurrency 16");
    println!(
        "  concurrency 16 is {:.1}x faster (range {:.1}-{:.1})",
        r.median, r.low, r.high
    );
    verdicts.push(format!(
        "c1 concurrency 16 at least 10x faster than 1: {:.1}x, {}",
        r.median,
        if r.median >= 10.0 { "met" } else { "NOT met" }
    ));
}

fn c2(rt: &Runtime, verdicts: &mut Vec<String>) {
    let partners = [
        ("storing each key's answer", Behaviour::default()),
        (
            "ignoring idempotency keys",
            Behaviour {
                ignore_idempotency_keys: true,
                ..Behaviour::default()
            },
        ),
    ];
    for (partner_is, partner) in partners {
        for chunk in ["10", "100"] {
            let mode = |mode: &'static str| {
                move || {
                    run_once(
                        rt,
                        partner,
                        &[("mode", mode), ("chunk", chunk), ("concurrency", "1")],
                    )
                }
            };
            let t = interleaved(
                15,
                vec![
                    Variant::new("cursor", mode("cursor")),
                    Variant::new("durable, concurrency 1", mode("durable")),
                ],
            );
            println!(
                "c2: {ORDERS} orders, partner answering at once and {partner_is}, chunks of {chunk} ({} rounds)",
                t.rounds()
            );
            report(&t, &["cursor", "durable, concurrency 1"]);
            let r = t.ratio("durable, concurrency 1", "cursor");
            println!(
                "  durable takes {:.2}x the cursor's time (range {:.2}-{:.2})",
                r.median, r.low, r.high
            );
            verdicts.push(format!(
                "c2 durable within 1.1x of cursor (partner {partner_is}, chunks of {chunk}): {:.2}x, {}",
                r.median,
                if r.median <= 1.1 { "met" } else { "NOT met" }
            ));
        }
    }
}

fn main() {
    let args = common::chosen(NAMES);
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!(
        "machine: {} cores; interleaved rounds, medians of per-round ratios",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rt = Runtime::new().unwrap();
    let mut verdicts = Vec::new();
    if wanted("c1") {
        c1(&rt, &mut verdicts);
    }
    if wanted("c2") {
        c2(&rt, &mut verdicts);
    }
    println!("targets:");
    for v in verdicts {
        println!("  {v}");
    }
}
