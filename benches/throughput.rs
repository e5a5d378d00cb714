//! Throughput of the framework against a hand-written loop doing the same work, side by
//! side in one process. Run with:
//!
//! ```text
//! cargo bench --bench throughput            # everything
//! cargo bench --bench throughput -- b1 b3   # some of B1..B6 and "statements"
//! ```
//!
//! Each figure is the best of a few runs (the least disturbed by the rest of the
//! machine). B6 measures peak memory in child processes so the runs do not share a
//! high-water mark.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use batch::classify::ErrorMatcher;
use batch::prelude::*;
use batch::step::StepBuilder;
use sqlx::SqlitePool;

const CHUNK: u64 = 1000;

/// The item: an id and a short string, made by the reader.
#[derive(Debug, Clone)]
struct Record {
    id: u64,
    name: String,
}

/// What the processor makes of it.
#[derive(Debug)]
struct Summary {
    id: u64,
    len: usize,
}

fn make(id: u64) -> Record {
    Record {
        id,
        name: format!("record-{id}"),
    }
}

fn transform(r: &Record) -> Summary {
    Summary {
        id: r.id.wrapping_mul(31),
        len: r.name.len(),
    }
}

fn consume(items: &[Summary], sink: &AtomicU64) {
    let mut acc = 0u64;
    for s in items {
        acc = acc.wrapping_add(s.id ^ s.len as u64);
    }
    sink.fetch_add(black_box(acc), Ordering::Relaxed);
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

struct Sink(Arc<AtomicU64>);

impl ItemWriter<Summary> for Sink {
    async fn write(&mut self, items: &[Summary], _cx: &mut WriteContext<'_>) -> Result<()> {
        consume(items, &self.0);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("transient")]
struct Transient;

fn step(
    n: u64,
    fault_tolerant: bool,
    fail_at: Option<u64>,
    sink: Arc<AtomicU64>,
) -> batch::step::StepDef {
    let mut b = StepBuilder::new("throughput").chunk_size(CHUNK);
    if fault_tolerant {
        b = b
            .retry(ErrorMatcher::of::<Transient>())
            .retry_limit(3)
            .skip(ErrorMatcher::of::<Transient>())
            .skip_limit(10);
    }
    b.chunk(move |_| {
        let sink = sink.clone();
        async move {
            Ok(chunk(
                Generator {
                    next: 0,
                    end: n,
                    fail_at,
                },
                |r: &Record| Ok::<_, Error>(Some(transform(r))),
                Sink(sink),
            ))
        }
    })
}

fn job(n: u64, fault_tolerant: bool, fail_at: Option<u64>, sink: Arc<AtomicU64>) -> Job {
    Job::new(
        "throughput",
        Flow::start(step(n, fault_tolerant, fail_at, sink)).build(),
    )
}

/// The same reads, transforms, chunked writes and per-chunk "commits", by hand.
fn hand_written(n: u64, sink: &AtomicU64) -> u64 {
    let mut next = 0u64;
    let mut inputs: Vec<Record> = Vec::with_capacity(CHUNK as usize);
    let mut outputs: Vec<Summary> = Vec::with_capacity(CHUNK as usize);
    let mut commits = 0;
    loop {
        inputs.clear();
        while inputs.len() < CHUNK as usize && next < n {
            inputs.push(make(next));
            next += 1;
        }
        outputs.clear();
        outputs.extend(inputs.iter().map(transform));
        consume(&outputs, sink);
        commits += 1;
        if inputs.len() < CHUNK as usize {
            return black_box(commits);
        }
    }
}

fn best_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().expect("at least one run")
}

fn rate(n: u64, d: Duration) -> String {
    format!("{:.2} M items/s", n as f64 / d.as_secs_f64() / 1e6)
}

struct Figure {
    name: String,
    framework: Duration,
    baseline: Duration,
    items: u64,
    target: f64,
}

impl Figure {
    fn print(&self) {
        let ratio = self.framework.as_secs_f64() / self.baseline.as_secs_f64();
        println!(
            "{:<34} framework {:>9.3} s ({:>15})  hand-written {:>9.3} s ({:>15})  ratio {:>5.3}  target <= {:.2}  {}",
            self.name,
            self.framework.as_secs_f64(),
            rate(self.items, self.framework),
            self.baseline.as_secs_f64(),
            rate(self.items, self.baseline),
            ratio,
            self.target,
            if ratio <= self.target {
                "met"
            } else {
                "NOT MET"
            },
        );
    }
}

async fn run_framework(
    launcher: &JobLauncher,
    n: u64,
    ft: bool,
    params: JobParameters,
) -> Duration {
    let sink = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let e = launcher
        .run(job(n, ft, None, sink), params)
        .await
        .expect("launch");
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

async fn b1_b3(sizes: &[u64], which: &[&str]) {
    for &n in sizes {
        let launcher = JobLauncher::new(InMemoryJobRepository::new());
        let mut i = 0;
        let mut framework = |ft: bool, tag: &str| {
            i += 1;
            let p = params(tag, i);
            let launcher = launcher.clone();
            async move { run_framework(&launcher, n, ft, p).await }
        };
        let mut b1 = Duration::MAX;
        for _ in 0..3 {
            b1 = b1.min(framework(false, "b1").await);
        }
        let sink = AtomicU64::new(0);
        let hand = best_of(3, || {
            let start = Instant::now();
            hand_written(n, &sink);
            start.elapsed()
        });
        if which.contains(&"b1") {
            Figure {
                name: format!("B1 in memory, {n} items"),
                framework: b1,
                baseline: hand,
                items: n,
                target: 1.2,
            }
            .print();
        }
        if which.contains(&"b3") {
            let mut b3 = Duration::MAX;
            for _ in 0..3 {
                b3 = b3.min(framework(true, "b3").await);
            }
            Figure {
                name: format!("B3 retry+skip configured, {n} items"),
                framework: b3,
                baseline: b1,
                items: n,
                target: 1.05,
            }
            .print();
        }
    }
}

async fn temp_sqlite(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite:{}", dir.path().join(name).display())
}

async fn b2(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let repo = SqliteJobRepository::open(&temp_sqlite(&dir, "repo.db").await)
        .await
        .unwrap();
    let launcher = JobLauncher::new(repo);
    let mut framework = Duration::MAX;
    for i in 0..3 {
        framework = framework.min(run_framework(&launcher, n, false, params("b2", i)).await);
    }
    // By hand: the same work, one transaction per chunk saving counters and position
    // in a SQLite file with the same settings (WAL, synchronous FULL).
    let url = temp_sqlite(&dir, "hand.db").await;
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let pool = SqlitePool::connect_with(
        opts.create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
    )
    .await
    .unwrap();
    sqlx::query("CREATE TABLE progress (id INTEGER PRIMARY KEY, read INTEGER, written INTEGER, position INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO progress VALUES (1, 0, 0, 0)")
        .execute(&pool)
        .await
        .unwrap();
    let sink = AtomicU64::new(0);
    let mut hand = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut next = 0u64;
        let mut inputs = Vec::with_capacity(CHUNK as usize);
        let mut outputs = Vec::with_capacity(CHUNK as usize);
        loop {
            inputs.clear();
            while inputs.len() < CHUNK as usize && next < n {
                inputs.push(make(next));
                next += 1;
            }
            outputs.clear();
            outputs.extend(inputs.iter().map(transform));
            consume(&outputs, &sink);
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("UPDATE progress SET read = ?1, written = ?1, position = ?1 WHERE id = 1")
                .bind(next as i64)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            if inputs.len() < CHUNK as usize {
                break;
            }
        }
        hand = hand.min(start.elapsed());
    }
    Figure {
        name: format!("B2 SQLite repository, {n} items"),
        framework,
        baseline: hand,
        items: n,
        target: 1.3,
    }
    .print();
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

async fn b4(n: i64) {
    use batch::sql::{KeysetReader, SqlRow, SqlWriter};
    let dir = tempfile::tempdir().unwrap();
    let repo = SqliteJobRepository::open(&temp_sqlite(&dir, "b4.db").await)
        .await
        .unwrap();
    let pool = repo.pool().clone();
    let launcher = JobLauncher::new(repo);
    let mut framework = Duration::MAX;
    for i in 0..2 {
        seed_rows(&pool, n).await;
        let p = pool.clone();
        let step = StepBuilder::new("copy").chunk_size(CHUNK).chunk(move |_| {
            let p = p.clone();
            async move {
                let reader = KeysetReader::select(p, "SELECT id, name, amount FROM source", "id")
                    .page_size(CHUNK as usize)
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
                let writer = SqlWriter::insert("target", ["id", "name", "amount"], |r: &Row, b| {
                    b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
                });
                Ok(chunk(
                    reader,
                    |r: &Row| Ok::<_, Error>(Some(transform_row(r))),
                    writer,
                ))
            }
        });
        let start = Instant::now();
        let e = launcher
            .run(Job::new("b4", Flow::start(step).build()), params("b4", i))
            .await
            .unwrap();
        framework = framework.min(start.elapsed());
        assert_eq!(e.step_executions[0].counts.write, n as u64);
    }
    let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM target")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(written, n);
    // By hand: the same keyset pages, transform, one multi-row INSERT and a progress
    // update per chunk, one transaction per chunk, same SQLite settings.
    let hand_pool = sqlite_file(&temp_sqlite(&dir, "b4-hand.db").await).await;
    sqlx::query("CREATE TABLE progress (id INTEGER PRIMARY KEY, last_id INTEGER, written INTEGER)")
        .execute(&hand_pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO progress VALUES (1, 0, 0)")
        .execute(&hand_pool)
        .await
        .unwrap();
    let mut hand = Duration::MAX;
    for _ in 0..2 {
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
            if rows.len() < CHUNK as usize {
                break;
            }
        }
        hand = hand.min(start.elapsed());
        assert_eq!(total, n);
    }
    Figure {
        name: format!("B4 SQLite table to table, {n} rows"),
        framework,
        baseline: hand,
        items: n as u64,
        target: 1.2,
    }
    .print();
}

async fn b5(n: u64) {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let fail_at = n - 10_000;
    let sink = Arc::new(AtomicU64::new(0));
    let full = run_framework(&launcher, n, false, params("b5-full", 0)).await;
    let p = params("b5-restart", 0);
    let failed = launcher
        .run(job(n, false, Some(fail_at), sink.clone()), p.clone())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let start = Instant::now();
    let done = launcher.run(job(n, false, None, sink), p).await.unwrap();
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
                .run(job(n, false, None, sink), params("statements", i))
                .await
                .unwrap();
            statements::now() - before
        }
    };
    // 10 and 20 chunks (plus the final empty one): the difference is 10 chunk commits.
    let ten = run(10 * CHUNK, 0).await;
    let twenty = run(20 * CHUNK, 1).await;
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

fn main() {
    if let Ok(n) = std::env::var("BENCH_PEAK_MEMORY_OF") {
        let n: u64 = n.parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let launcher = JobLauncher::new(InMemoryJobRepository::new());
            // BENCH_FAULT_TOLERANT=1 profiles B3's step instead.
            let ft = std::env::var_os("BENCH_FAULT_TOLERANT").is_some();
            run_framework(&launcher, n, ft, params("b6", 0)).await;
        });
        println!("{}", peak_rss_kib());
        return;
    }
    let _ = tracing::subscriber::set_global_default(statements::Counter);
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["b1", "b2", "b3", "b4", "b5", "b6", "statements"];
    let which: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        all.iter()
            .copied()
            .filter(|w| args.iter().any(|a| a == w))
            .collect()
    };
    println!(
        "machine: {} cores; chunk size {CHUNK}; best of 3 runs each",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if which.contains(&"b1") || which.contains(&"b3") {
            b1_b3(&[1_000_000, 10_000_000], &which).await;
        }
        if which.contains(&"b2") {
            b2(1_000_000).await;
        }
        if which.contains(&"b4") {
            b4(1_000_000).await;
        }
        if which.contains(&"b5") {
            b5(10_000_000).await;
        }
        if which.contains(&"statements") {
            statement_counts().await;
        }
    });
    if which.contains(&"b6") {
        b6(&[1_000_000, 10_000_000]);
    }
}
