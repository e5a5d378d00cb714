//! Throughput of the framework against hand-written loops doing the same work, side by
//! side in one process. Run with:
//!
//! ```text
//! cargo bench --bench throughput            # everything (about two minutes on 2 cores)
//! cargo bench --bench throughput -- b1 b3   # some of them, by these names:
//! ```
//!
//! - `b1`: the summary workload (a generator reader, a processor making a small
//!   summary, a summing writer) in memory, against the hand-written loop; 1M and 10M
//!   items.
//! - `b7`: the owned workload (a `ListReader` over a pre-built `Vec<Record>`, a
//!   processor returning an owned upper-case `String` and `id * 2`, a writer summing
//!   ids and lengths) in memory, against the hand-written loop; 1M and 10M items.
//! - `b3`: both workloads with retry and skip configured and nothing failing, against
//!   the plain step; 1M and 10M items.
//! - `b2`: the summary workload with the SQLite repository (WAL, synchronous FULL),
//!   against a hand-written loop that commits the same transaction per chunk (the same
//!   two UPDATEs of the step execution and its context); 1M items.
//! - `b4`: a SQLite table copied to another (`KeysetReader`, `SqlWriter`), against
//!   the same keyset queries, INSERTs and progress row by hand; 1M rows.
//! - `b5`: restart cost of a 10M-item job failed near its end.
//! - `b6`: peak memory of `b1` (in child processes, so runs do not share a high-water
//!   mark).
//! - `statements`: SQL statements per chunk commit and per launch.
//!
//! Every comparison runs its variants in interleaved rounds (each round runs each
//! variant once, in an order that rotates from round to round, after one untimed
//! warm-up round) and reports the median of the per-round ratios with their range, so
//! a slow spell of the machine falls on all variants alike. The lines at the end say
//! for each target whether it is met, with its ratio.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batch::classify::ErrorMatcher;
use batch::prelude::*;
use batch::step::StepBuilder;
use sqlx::SqlitePool;
use tokio::runtime::Runtime;

mod common;

use common::rounds::{Ratio, Timings, Variant, interleaved, mega};
use common::workloads::{
    CHUNK, Record, Shouted, Summary, hand_owned, hand_summary, make, records, shout, summarize,
    write_shouted, write_summaries,
};

/// Rounds per comparison: more where a run is short.
fn rounds_for(n: u64) -> usize {
    if n <= 1_000_000 { 21 } else { 7 }
}

/// Generates records `next..end`; keeps its position in the step context, so a restart
/// costs nothing for the items already done.
struct Generator {
    next: u64,
    end: u64,
    fail_at: Option<u64>,
}

impl ItemReader<Record> for Generator {
    async fn read(&mut self) -> Result<Option<Record>> {
        if self.next >= self.end {
            return Ok(None);
        }
        if Some(self.next) == self.fail_at {
            return Err(Error::msg(format!(
                "injected failure at item {}",
                self.next
            )));
        }
        let r = make(self.next);
        self.next += 1;
        Ok(Some(r))
    }
    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        if let Some(n) = ctx.get::<u64>("gen.next")? {
            self.next = n;
        }
        Ok(())
    }
    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        Ok(ctx.put("gen.next", &self.next)?)
    }
}

struct SummarySink(Arc<AtomicU64>);

impl ItemWriter<Summary> for SummarySink {
    async fn write(&mut self, items: &[Summary], _cx: &mut WriteContext<'_>) -> Result<()> {
        write_summaries(items, &self.0);
        Ok(())
    }
}

struct ShoutedSink(Arc<AtomicU64>);

impl ItemWriter<Shouted> for ShoutedSink {
    async fn write(&mut self, items: &[Shouted], _cx: &mut WriteContext<'_>) -> Result<()> {
        write_shouted(items, &self.0);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("transient")]
struct Transient;

fn builder(name: &str, fault_tolerant: bool) -> StepBuilder {
    let b = StepBuilder::new(name).chunk_size(CHUNK as u64);
    if fault_tolerant {
        b.retry(ErrorMatcher::of::<Transient>())
            .retry_limit(3)
            .skip(ErrorMatcher::of::<Transient>())
            .skip_limit(10)
    } else {
        b
    }
}

/// The summary workload as a one-step job.
fn summary_job(n: u64, fault_tolerant: bool, fail_at: Option<u64>, sink: Arc<AtomicU64>) -> Job {
    let step = builder("summary", fault_tolerant).chunk(move |_| {
        let sink = sink.clone();
        async move {
            Ok(chunk(
                Generator {
                    next: 0,
                    end: n,
                    fail_at,
                },
                |r: &Record| Ok::<_, Error>(Some(summarize(r))),
                SummarySink(sink),
            ))
        }
    });
    Job::new("throughput", Flow::start(step).build())
}

/// The owned workload as a one-step job over `items` (it can run once).
fn owned_job(items: Vec<Record>, fault_tolerant: bool, sink: Arc<AtomicU64>) -> Job {
    let items = Mutex::new(Some(items));
    let step = builder("owned", fault_tolerant).chunk(move |_| {
        let items = items
            .lock()
            .unwrap()
            .take()
            .expect("an owned job runs once");
        let sink = sink.clone();
        async move {
            Ok(chunk(
                ListReader::new(items),
                |r: &Record| Ok::<_, Error>(Some(shout(r))),
                ShoutedSink(sink),
            ))
        }
    });
    Job::new("throughput", Flow::start(step).build())
}

/// Runs `job` to completion and returns how long the launch took.
async fn time_job(launcher: &JobLauncher, job: Job, params: JobParameters, n: u64) -> Duration {
    let start = Instant::now();
    let e = launcher.run(job, params).await.expect("launch");
    let d = start.elapsed();
    assert_eq!(e.status, BatchStatus::Completed);
    assert_eq!(e.step_executions[0].counts.write, n);
    d
}

fn params(tag: &str, i: usize) -> JobParameters {
    JobParameters::new()
        .with("bench", tag)
        .with("run", i as i64)
}

/// A target: one variant's time over another's, and the limit it should stay within.
struct Target {
    name: String,
    of: String,
    ratio: Ratio,
    limit: f64,
}

impl Target {
    fn verdict(&self) -> &'static str {
        if self.ratio.median <= self.limit {
            "met"
        } else {
            "NOT met"
        }
    }
}

/// Prints one comparison and keeps it as a target.
fn compare(
    targets: &mut Vec<Target>,
    t: &Timings,
    name: String,
    (a, b): (&str, &str),
    items: u64,
    limit: f64,
) {
    let ratio = t.ratio(a, b);
    let target = Target {
        name,
        of: format!("{a} / {b}"),
        ratio,
        limit,
    };
    println!(
        "{}: {a} {} ({:.3} s), {b} {} ({:.3} s); {a} / {b} = {:.3} (rounds {:.3}..{:.3}, {} rounds); target <= {:.2}: {}",
        target.name,
        mega(t.rate(a, items)),
        t.median(a).as_secs_f64(),
        mega(t.rate(b, items)),
        t.median(b).as_secs_f64(),
        ratio.median,
        ratio.low,
        ratio.high,
        t.rounds(),
        limit,
        target.verdict(),
    );
    targets.push(target);
}

fn label(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else {
        n.to_string()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Summary,
    Owned,
}

/// B1, B7 and B3: each workload in memory, by hand, as a plain step and as a
/// fault-tolerant one, in the same rounds.
fn in_memory(rt: &Runtime, sizes: &[u64], which: &[&str], targets: &mut Vec<Target>) {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let run = std::cell::Cell::new(0usize);
    for &n in sizes {
        for workload in [Workload::Summary, Workload::Owned] {
            let (bench, hand_too) = match workload {
                Workload::Summary => ("b1", which.contains(&"b1")),
                Workload::Owned => ("b7", which.contains(&"b7")),
            };
            let ft_too = which.contains(&"b3");
            if !hand_too && !ft_too {
                continue;
            }
            let sink = Arc::new(AtomicU64::new(0));
            let framework = |ft: bool| {
                let sink = sink.clone();
                let launcher = &launcher;
                let run = &run;
                move || {
                    run.set(run.get() + 1);
                    let p = params(bench, run.get());
                    let job = match workload {
                        Workload::Summary => summary_job(n, ft, None, sink.clone()),
                        Workload::Owned => owned_job(records(n), ft, sink.clone()),
                    };
                    rt.block_on(time_job(launcher, job, p, n))
                }
            };
            let mut variants = vec![Variant::new("plain step", framework(false))];
            if hand_too {
                let sink = sink.clone();
                variants.push(Variant::new("hand loop", move || match workload {
                    Workload::Summary => {
                        let start = Instant::now();
                        hand_summary(n, &sink);
                        start.elapsed()
                    }
                    Workload::Owned => {
                        let items = records(n);
                        let start = Instant::now();
                        hand_owned(items, &sink);
                        start.elapsed()
                    }
                }));
            }
            if ft_too {
                variants.push(Variant::new("fault-tolerant step", framework(true)));
            }
            let t = interleaved(rounds_for(n), variants);
            let what = match workload {
                Workload::Summary => "summary",
                Workload::Owned => "owned",
            };
            if hand_too {
                compare(
                    targets,
                    &t,
                    format!("{} {what} workload, {}", bench.to_uppercase(), label(n)),
                    ("plain step", "hand loop"),
                    n,
                    1.05,
                );
            }
            if ft_too {
                compare(
                    targets,
                    &t,
                    format!(
                        "B3 retry and skip, nothing failing, {what} workload, {}",
                        label(n)
                    ),
                    ("fault-tolerant step", "plain step"),
                    n,
                    1.05,
                );
            }
            assert!(sink.load(Ordering::Relaxed) != 0);
        }
    }
}

async fn temp_sqlite(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite:{}", dir.path().join(name).display())
}

/// The statements the SQLite repository runs in each chunk's transaction.
const UPDATE_STEP: &str = "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?, END_TIME = ?, STATUS = ?, \
     COMMIT_COUNT = ?, READ_COUNT = ?, FILTER_COUNT = ?, WRITE_COUNT = ?, \
     READ_SKIP_COUNT = ?, WRITE_SKIP_COUNT = ?, PROCESS_SKIP_COUNT = ?, ROLLBACK_COUNT = ?, \
     EXIT_CODE = ?, EXIT_MESSAGE = ?, VERSION = ?, LAST_UPDATED = ? \
     WHERE STEP_EXECUTION_ID = ? AND VERSION = ?";
const UPDATE_CONTEXT: &str = "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = ? WHERE STEP_EXECUTION_ID = ?";

fn now() -> chrono::NaiveDateTime {
    chrono::Local::now().naive_local()
}

/// The summary workload by hand with one SQLite transaction per chunk that saves the
/// step execution's row (counters, version) and its context (the reader's position,
/// as JSON), as the repository does, on a step execution row made beforehand.
async fn hand_sqlite(pool: &SqlitePool, step_id: i64, version: &mut i64, n: u64, sink: &AtomicU64) {
    let start_time = now();
    let mut next = 0u64;
    let mut commits = 0i64;
    let mut inputs: Vec<Record> = Vec::with_capacity(CHUNK);
    let mut outputs: Vec<Summary> = Vec::with_capacity(CHUNK);
    loop {
        inputs.clear();
        while inputs.len() < CHUNK && next < n {
            inputs.push(make(next));
            next += 1;
        }
        outputs.clear();
        outputs.extend(inputs.iter().map(summarize));
        write_summaries(&outputs, sink);
        commits += 1;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let counts = [commits, next as i64, 0, next as i64, 0, 0, 0, 0];
        let q = sqlx::query(UPDATE_STEP)
            .bind(Some(start_time))
            .bind(None::<chrono::NaiveDateTime>)
            .bind("STARTED");
        let done = counts
            .into_iter()
            .fold(q, |q, c| q.bind(c))
            .bind("EXECUTING")
            .bind("")
            .bind(*version + 1)
            .bind(now())
            .bind(step_id)
            .bind(*version)
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        *version += 1;
        sqlx::query(UPDATE_CONTEXT)
            .bind(format!("{{\"gen.next\":{next}}}"))
            .bind(None::<String>)
            .bind(step_id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        if inputs.len() < CHUNK {
            break;
        }
    }
}

/// B2: the summary workload with the SQLite repository, against the same work and the
/// same per-chunk transaction by hand.
fn b2(rt: &Runtime, n: u64, targets: &mut Vec<Target>) {
    let dir = tempfile::tempdir().unwrap();
    let (launcher, hand_pool, step_id, version) = rt.block_on(async {
        let repo = SqliteJobRepository::open(&temp_sqlite(&dir, "repo.db").await)
            .await
            .unwrap();
        // The hand-written loop works on the same database through the same pool, on
        // the step execution of an empty job run first, whose two rows it updates.
        let pool = repo.pool().clone();
        let launcher = JobLauncher::new(repo);
        launcher
            .run(
                summary_job(0, false, None, Arc::new(AtomicU64::new(0))),
                params("b2-hand", 0),
            )
            .await
            .unwrap();
        let (id, version): (i64, i64) = sqlx::query_as(
            "SELECT STEP_EXECUTION_ID, VERSION FROM BATCH_STEP_EXECUTION ORDER BY STEP_EXECUTION_ID DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (launcher, pool, id, version)
    });
    let sink = Arc::new(AtomicU64::new(0));
    let mut run = 0;
    let mut version = version;
    let t = interleaved(
        21,
        vec![
            Variant::new("SQLite step", || {
                run += 1;
                let job = summary_job(n, false, None, sink.clone());
                rt.block_on(time_job(&launcher, job, params("b2", run), n))
            }),
            Variant::new("hand loop", || {
                rt.block_on(async {
                    let start = Instant::now();
                    hand_sqlite(&hand_pool, step_id, &mut version, n, &sink).await;
                    start.elapsed()
                })
            }),
        ],
    );
    compare(
        targets,
        &t,
        format!("B2 SQLite repository, summary workload, {}", label(n)),
        ("SQLite step", "hand loop"),
        n,
        1.05,
    );
}
/// A row of B4's source and target tables.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    name: String,
    amount: i64,
}

fn transform_row(r: &Row) -> Row {
    Row {
        id: r.id,
        name: r.name.to_uppercase(),
        amount: r.amount * 3 + 1,
    }
}

async fn sqlite_file(url: &str) -> SqlitePool {
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    SqlitePool::connect_with(
        opts.create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
    )
    .await
    .unwrap()
}

/// Creates `source` with `n` rows and an empty `target`.
async fn seed_rows(pool: &SqlitePool, n: i64) {
    for ddl in [
        "DROP TABLE IF EXISTS source",
        "DROP TABLE IF EXISTS target",
        "CREATE TABLE source (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, amount INTEGER NOT NULL)",
        "CREATE TABLE target (id INTEGER NOT NULL, name TEXT NOT NULL, amount INTEGER NOT NULL)",
    ] {
        sqlx::query(ddl).execute(pool).await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    for start in (1..=n).step_by(1000) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO source (id, name, amount) ");
        q.push_values(start..(start + 1000).min(n + 1), |mut b, id| {
            b.push_bind(id)
                .push_bind(format!("row-{id}"))
                .push_bind(id % 1000);
        });
        q.build().execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// B4: a SQLite table copied to another through `KeysetReader` and `SqlWriter`,
/// against the same keyset pages, transform, one multi-row INSERT and a progress
/// update per chunk by hand, one transaction per chunk, same SQLite settings.
fn b4(rt: &Runtime, n: i64, targets: &mut Vec<Target>) {
    use batch::sql::{KeysetReader, SqlRow, SqlWriter};
    let dir = tempfile::tempdir().unwrap();
    let (launcher, pool, hand_pool) = rt.block_on(async {
        let repo = SqliteJobRepository::open(&temp_sqlite(&dir, "b4.db").await)
            .await
            .unwrap();
        let pool = repo.pool().clone();
        let hand_pool = sqlite_file(&temp_sqlite(&dir, "b4-hand.db").await).await;
        sqlx::query(
            "CREATE TABLE progress (id INTEGER PRIMARY KEY, last_id INTEGER, written INTEGER)",
        )
        .execute(&hand_pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO progress VALUES (1, 0, 0)")
            .execute(&hand_pool)
            .await
            .unwrap();
        (JobLauncher::new(repo), pool, hand_pool)
    });
    let mut run = 0;
    let framework = || {
        run += 1;
        rt.block_on(async {
            seed_rows(&pool, n).await;
            let p = pool.clone();
            let step = StepBuilder::new("copy")
                .chunk_size(CHUNK as u64)
                .chunk(move |_| {
                    let p = p.clone();
                    async move {
                        let reader =
                            KeysetReader::select(p, "SELECT id, name, amount FROM source", "id")
                                .page_size(CHUNK)
                                .name("source")
                                .map(
                                    |r: &SqlRow| {
                                        Ok(Row {
                                            id: r.get("id")?,
                                            name: r.get("name")?,
                                            amount: r.get("amount")?,
                                        })
                                    },
                                    |r: &Row| r.id,
                                );
                        let writer =
                            SqlWriter::insert("target", ["id", "name", "amount"], |r: &Row, b| {
                                b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
                            });
                        Ok(chunk(
                            reader,
                            |r: &Row| Ok::<_, Error>(Some(transform_row(r))),
                            writer,
                        ))
                    }
                });
            let d = time_job(
                &launcher,
                Job::new("b4", Flow::start(step).build()),
                params("b4", run),
                n as u64,
            )
            .await;
            let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM target")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(written, n);
            d
        })
    };
    let hand = || {
        rt.block_on(async {
            seed_rows(&hand_pool, n).await;
            let start = Instant::now();
            let mut last = 0i64;
            let mut total = 0i64;
            loop {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT id, name, amount FROM source WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .bind(last)
                .bind(CHUNK as i64)
                .fetch_all(&hand_pool)
                .await
                .unwrap();
                let out: Vec<Row> = rows
                    .iter()
                    .map(|(id, name, amount)| {
                        transform_row(&Row {
                            id: *id,
                            name: name.clone(),
                            amount: *amount,
                        })
                    })
                    .collect();
                let mut tx = hand_pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                if !out.is_empty() {
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO target (id, name, amount) ");
                    q.push_values(&out, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.name.as_str())
                            .push_bind(r.amount);
                    });
                    q.build().execute(&mut *tx).await.unwrap();
                    last = out.last().unwrap().id;
                    total += out.len() as i64;
                }
                sqlx::query("UPDATE progress SET last_id = ?1, written = ?2 WHERE id = 1")
                    .bind(last)
                    .bind(total)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                if rows.len() < CHUNK {
                    break;
                }
            }
            let d = start.elapsed();
            assert_eq!(total, n);
            d
        })
    };
    let t = interleaved(
        3,
        vec![
            Variant::new("SQL step", framework),
            Variant::new("hand loop", hand),
        ],
    );
    compare(
        targets,
        &t,
        format!("B4 SQLite table to table, {} rows", label(n as u64)),
        ("SQL step", "hand loop"),
        n as u64,
        1.2,
    );
}

async fn b5(n: u64) {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let fail_at = n - 10_000;
    let sink = Arc::new(AtomicU64::new(0));
    let full = time_job(
        &launcher,
        summary_job(n, false, None, sink.clone()),
        params("b5-full", 0),
        n,
    )
    .await;
    let p = params("b5-restart", 0);
    let failed = launcher
        .run(
            summary_job(n, false, Some(fail_at), sink.clone()),
            p.clone(),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let start = Instant::now();
    let done = launcher
        .run(summary_job(n, false, None, sink), p)
        .await
        .unwrap();
    let restart = start.elapsed();
    assert_eq!(done.status, BatchStatus::Completed);
    let left = done.step_executions[0].counts.read;
    println!(
        "B5 restart of a {n}-item job failed at item {fail_at}: full run {:.3} s, restart {:.4} s for the {left} items left; restart / full = {:.5} (items left / all = {:.5})",
        full.as_secs_f64(),
        restart.as_secs_f64(),
        restart.as_secs_f64() / full.as_secs_f64(),
        left as f64 / n as f64,
    );
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn b6(sizes: &[u64]) {
    let exe = std::env::current_exe().unwrap();
    for &n in sizes {
        let out = std::process::Command::new(&exe)
            .env("BENCH_PEAK_MEMORY_OF", n.to_string())
            .output()
            .expect("child bench process");
        let kib = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        println!("B6 peak memory of B1 with {n} items: {kib} KiB");
    }
}

/// Counts statements sqlx runs (its `sqlx::query` events; BEGIN and COMMIT are not
/// among them and are reported separately).
mod statements {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber, span};

    pub(crate) static COUNT: AtomicU64 = AtomicU64::new(0);

    pub(crate) struct Counter;

    impl Subscriber for Counter {
        fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
            if meta.target() == "sqlx::query" {
                Interest::always()
            } else {
                Interest::never()
            }
        }
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            meta.target() == "sqlx::query"
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, _: &Event<'_>) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    pub(crate) fn now() -> u64 {
        COUNT.load(Ordering::Relaxed)
    }
}

async fn statement_counts() {
    let dir = tempfile::tempdir().unwrap();
    let repo = SqliteJobRepository::open(&temp_sqlite(&dir, "count.db").await)
        .await
        .unwrap();
    let launcher = JobLauncher::new(repo);
    let sink = Arc::new(AtomicU64::new(0));
    let run = |n: u64, i: usize| {
        let launcher = launcher.clone();
        let sink = sink.clone();
        async move {
            let before = statements::now();
            launcher
                .run(summary_job(n, false, None, sink), params("statements", i))
                .await
                .unwrap();
            statements::now() - before
        }
    };
    // 10 and 20 chunks (plus the final empty one): the difference is 10 chunk commits.
    let ten = run(10 * CHUNK as u64, 0).await;
    let twenty = run(20 * CHUNK as u64, 1).await;
    let per_chunk = (twenty - ten) as f64 / 10.0;
    let launch_overhead = ten as f64 - 11.0 * per_chunk;
    println!("statements per chunk commit: {per_chunk} (plus BEGIN IMMEDIATE and COMMIT)");
    // Launch cost against the history: run many tiny jobs, compare the first and last.
    let mut costs = Vec::new();
    for i in 0..200 {
        let c = run(0, 100 + i).await;
        if i == 0 || i == 199 {
            costs.push(c);
        }
    }
    println!(
        "statements per job launch and finish (one step, no items): {} with 2 earlier executions, {} with 201 (launch and step bookkeeping of the 10-chunk job: {launch_overhead})",
        costs[0], costs[1]
    );
}

const NAMES: [&str; 8] = ["b1", "b7", "b3", "b2", "b4", "b5", "b6", "statements"];

fn main() {
    if let Ok(n) = std::env::var("BENCH_PEAK_MEMORY_OF") {
        let n: u64 = n.parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let launcher = JobLauncher::new(InMemoryJobRepository::new());
            // BENCH_FAULT_TOLERANT=1 measures B3's step instead.
            let ft = std::env::var_os("BENCH_FAULT_TOLERANT").is_some();
            let job = summary_job(n, ft, None, Arc::new(AtomicU64::new(0)));
            time_job(&launcher, job, params("b6", 0), n).await;
        });
        println!("{}", peak_rss_kib());
        return;
    }
    let _ = tracing::subscriber::set_global_default(statements::Counter);
    let args = common::chosen(&NAMES);
    let which: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|w| args.is_empty() || args.iter().any(|a| a == w))
        .collect();
    println!(
        "machine: {} cores; chunk size {CHUNK}; interleaved rounds, medians of per-round ratios",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut targets = Vec::new();
    if ["b1", "b7", "b3"].iter().any(|w| which.contains(w)) {
        in_memory(&rt, &[1_000_000, 10_000_000], &which, &mut targets);
    }
    if which.contains(&"b2") {
        b2(&rt, 1_000_000, &mut targets);
    }
    if which.contains(&"b4") {
        b4(&rt, 1_000_000, &mut targets);
    }
    if which.contains(&"b5") {
        rt.block_on(b5(10_000_000));
    }
    if which.contains(&"statements") {
        rt.block_on(statement_counts());
    }
    if which.contains(&"b6") {
        b6(&[1_000_000, 10_000_000]);
    }
    if !targets.is_empty() {
        println!();
        println!("targets (median of per-round ratios; lowest..highest round):");
        for t in &targets {
            println!(
                "  {:<64} {:<34} {:.3} ({:.3}..{:.3})  <= {:.2}  {}",
                t.name,
                t.of,
                t.ratio.median,
                t.ratio.low,
                t.ratio.high,
                t.limit,
                t.verdict()
            );
        }
    }
}
