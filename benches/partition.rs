//! Partitioned steps on this machine: one step's work split into 1, 2 and 8 local
//! partitions (key ranges), each partition a step execution of its own on a task of
//! its own, in interleaved rounds (see `common/rounds.rs`).
//!
//! - **cpu**: 400,000 items, each through a processor doing 400 rounds of a 64-bit mix
//!   (no I/O), chunks of 1,000: the speed-up is bounded by the cores;
//! - **io**: 8,000 items in chunks of 100 whose writer waits 5 ms per chunk (a remote
//!   service, a slow disk): the partitions overlap their waits.
//!
//! ```text
//! cargo bench --bench partition            # both
//! cargo bench --bench partition -- io      # one of them
//! ```
//!
//! In-memory repository, so that what is measured is the partitioning, not a
//! database's commits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use batch::prelude::*;
use batch::repository::BoxFuture;
use batch::step::StepBuilder;
use batch::step::partition::{MAX_VALUE, MIN_VALUE, Partition, Partitioner};
use batch::step::scope::StepScope;

use common::rounds::{Variant, interleaved};

/// `0..items` cut into `grid` ranges of equal size.
struct Ranges {
    items: i64,
}

impl Partitioner for Ranges {
    fn partition<'a>(
        &'a self,
        _scope: &'a StepScope,
        grid: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionContext>>> {
        Box::pin(async move {
            let grid = grid as i64;
            (0..grid)
                .map(|i| {
                    let mut c = ExecutionContext::new();
                    c.put(MIN_VALUE, &(self.items * i / grid))?;
                    c.put(MAX_VALUE, &(self.items * (i + 1) / grid - 1))?;
                    Ok(c)
                })
                .collect()
        })
    }
}

fn burn(seed: u64, rounds: u32) -> u64 {
    let mut h = std::hint::black_box(seed) | 1;
    for _ in 0..rounds {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

#[derive(Clone, Copy)]
struct Workload {
    items: i64,
    chunk: u64,
    rounds: u32,
    wait: Duration,
}

const CPU: Workload = Workload {
    items: 400_000,
    chunk: 1_000,
    rounds: 400,
    wait: Duration::ZERO,
};
const IO: Workload = Workload {
    items: 8_000,
    chunk: 100,
    rounds: 0,
    wait: Duration::from_millis(5),
};

fn job(w: Workload, partitions: usize, sink: Arc<AtomicU64>) -> Job {
    let worker = StepBuilder::new("range")
        .chunk_size(w.chunk)
        .chunk(move |scope| {
            let sink = sink.clone();
            async move {
                let mut next: i64 = scope.step_context().get(MIN_VALUE)?.unwrap_or(0);
                let last: i64 = scope.step_context().get(MAX_VALUE)?.unwrap_or(-1);
                let read = reader(move || {
                    let item = (next <= last).then_some(next);
                    next += 1;
                    Ok(item)
                });
                let process = processor(move |n: &i64| Ok(Some(burn(*n as u64, w.rounds))));
                let write = async_writer(move |items: &[u64], _| {
                    let sum = items.iter().fold(0u64, |a, b| a.wrapping_add(*b));
                    let sink = sink.clone();
                    Box::pin(async move {
                        if !w.wait.is_zero() {
                            tokio::time::sleep(w.wait).await;
                        }
                        sink.fetch_add(sum, Ordering::Relaxed);
                        Ok(())
                    })
                });
                Ok(chunk(read, process, write))
            }
        });
    let manager =
        Partition::new("partitioned", worker, Ranges { items: w.items }).grid_size(partitions);
    Job::new("partitionBench", Flow::start(manager).build())
}

/// CPU time (user and system) this process has used so far, from `/proc/self/stat`
/// (in clock ticks of 10 ms); zero where there is no such file.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rfind(')').map_or("", |at| &stat[at + 1..]);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn compare(runtime: &tokio::runtime::Runtime, name: &str, w: Workload) {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let run = Arc::new(AtomicU64::new(0));
    // Cores the run kept busy (CPU time over wall time): how much of the machine the
    // partitions got, which other processes' load decides as much as the partitions.
    let cores: std::collections::HashMap<&str, std::sync::Mutex<Vec<f64>>> = ["1", "2", "8"]
        .into_iter()
        .map(|l| (l, std::sync::Mutex::new(Vec::new())))
        .collect();
    let variant = |label: &'static str, partitions: usize| {
        let (launcher, run, cores) = (launcher.clone(), run.clone(), &cores);
        Variant::new(label, move || {
            let id = run.fetch_add(1, Ordering::Relaxed) as i64;
            let sink = Arc::new(AtomicU64::new(0));
            let job = job(w, partitions, sink);
            let (started, cpu) = (Instant::now(), cpu_time());
            let e = runtime
                .block_on(launcher.run(job, JobParameters::new().with("run.id", id)))
                .unwrap();
            let took = started.elapsed();
            let busy = (cpu_time() - cpu).as_secs_f64() / took.as_secs_f64();
            cores[label].lock().unwrap().push(busy);
            assert_eq!(e.status, BatchStatus::Completed);
            assert_eq!(e.step_executions[0].counts.write, w.items as u64);
            took
        })
    };
    let t = interleaved(5, vec![variant("1", 1), variant("2", 2), variant("8", 8)]);
    let busy = |l: &str| median(cores[l].lock().unwrap().clone());
    println!(
        "{name}: {} items, median of {} rounds: 1 partition {:.3} s, 2 {:.3} s, 8 {:.3} s; speed-up at 2 {:.2}x, at 8 {:.2}x; cores busy {:.2}, {:.2}, {:.2}",
        w.items,
        t.rounds(),
        t.median("1").as_secs_f64(),
        t.median("2").as_secs_f64(),
        t.median("8").as_secs_f64(),
        t.ratio("1", "2").median,
        t.ratio("1", "8").median,
        busy("1"),
        busy("2"),
        busy("8"),
    );
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{} cores available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wanted("cpu") {
        compare(&runtime, "cpu", CPU);
    }
    if wanted("io") {
        compare(&runtime, "io", IO);
    }
}
