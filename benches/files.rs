//! File benchmarks, each through the framework and as a hand-written loop with the same
//! batching (chunks of 1000, one transaction per chunk on a SQLite file in WAL mode with
//! synchronous FULL, a position saved in each commit):
//!
//! - F1: 1,000,000 CSV rows into a SQLite table: `CsvReader` and `SqlWriter::mapped`
//!   against `csv` + serde and a multi-row INSERT by hand;
//! - F2: the same table exported as JSON lines: `KeysetReader::query_as` and the
//!   transactional `JsonLinesWriter` against keyset pages and `serde_json` by hand,
//!   each appending a chunk's lines and syncing the file before its commit.
//!
//! ```text
//! cargo bench --bench files            # 1,000,000 rows
//! cargo bench --bench files -- 100000  # fewer
//! ```
//!
//! Best of 2 runs each.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use batch::file::{CsvReader, ExistingFile, JsonLinesWriter};
use batch::prelude::*;
use batch::sql::{KeysetReader, SqlWriter};
use batch::step::StepBuilder;
use sqlx::SqlitePool;

const CHUNK: u64 = 1000;

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, sqlx::FromRow)]
struct Customer {
    id: i64,
    name: String,
    email: String,
    age: i64,
}

fn write_input(path: &Path, n: i64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,name,email,age").unwrap();
    for id in 1..=n {
        writeln!(
            out,
            "{id},Customer {id},customer{id}@example.com,{}",
            18 + id % 70
        )
        .unwrap();
    }
    out.flush().unwrap();
}

async fn sqlite_file(path: &Path) -> SqlitePool {
    let opts: sqlx::sqlite::SqliteConnectOptions =
        format!("sqlite:{}", path.display()).parse().unwrap();
    SqlitePool::connect_with(
        opts.create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
    )
    .await
    .unwrap()
}

async fn reset_table(pool: &SqlitePool) {
    for ddl in [
        "DROP TABLE IF EXISTS customers",
        "CREATE TABLE customers (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, age INTEGER NOT NULL)",
    ] {
        sqlx::query(ddl).execute(pool).await.unwrap();
    }
}

async fn progress_table(pool: &SqlitePool) {
    sqlx::query("CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY, position INTEGER, written INTEGER)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT OR REPLACE INTO progress VALUES (1, 0, 0)")
        .execute(pool)
        .await
        .unwrap();
}

fn insert_writer() -> SqlWriter<Customer> {
    SqlWriter::mapped("customers")
        .column("id", |c: &Customer| c.id)
        .column("name", |c: &Customer| c.name.clone())
        .column("email", |c: &Customer| c.email.clone())
        .column("age", |c: &Customer| c.age)
        .build()
}

async fn count(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn report(name: &str, n: i64, framework: Duration, hand: Duration) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{name}: framework {:.3} s ({:.3} M rows/s), hand-written {:.3} s ({:.3} M rows/s), ratio {:.2} (target 1.1)",
        framework.as_secs_f64(),
        rate(framework),
        hand.as_secs_f64(),
        rate(hand),
        framework.as_secs_f64() / hand.as_secs_f64()
    );
}

async fn f1(dir: &Path, n: i64) -> SqlitePool {
    let input = dir.join("customers.csv");
    write_input(&input, n);
    let repo = SqliteJobRepository::open(&format!("sqlite:{}", dir.join("f1.db").display()))
        .await
        .unwrap();
    let pool = repo.pool().clone();
    let launcher = JobLauncher::new(repo);
    let mut framework = Duration::MAX;
    for run in 0..2i64 {
        reset_table(&pool).await;
        let input = input.clone();
        let step = StepBuilder::new("import")
            .chunk_size(CHUNK)
            .chunk(move |_| {
                let reader = CsvReader::<Customer>::new(&input).name("customers");
                async move { Ok(read_write(reader, insert_writer())) }
            });
        let start = Instant::now();
        let e = launcher
            .run(
                Job::new("f1", Flow::start(step)),
                JobParameters::new().with("run", run),
            )
            .await
            .unwrap();
        framework = framework.min(start.elapsed());
        assert_eq!(e.status, BatchStatus::Completed);
    }
    assert_eq!(count(&pool).await, n);

    let hand_pool = sqlite_file(&dir.join("f1-hand.db")).await;
    progress_table(&hand_pool).await;
    let mut hand = Duration::MAX;
    for _ in 0..2 {
        reset_table(&hand_pool).await;
        let start = Instant::now();
        let mut rdr = csv::ReaderBuilder::new()
            .buffer_capacity(64 * 1024)
            .from_path(&input)
            .unwrap();
        let mut rows = rdr.deserialize::<Customer>();
        let mut total = 0i64;
        loop {
            let chunk: Vec<Customer> = rows
                .by_ref()
                .take(CHUNK as usize)
                .map(|r| r.unwrap())
                .collect();
            let mut tx = hand_pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            if !chunk.is_empty() {
                let mut q =
                    sqlx::QueryBuilder::new("INSERT INTO customers (id, name, email, age) ");
                q.push_values(&chunk, |mut b, c| {
                    b.push_bind(c.id)
                        .push_bind(c.name.as_str())
                        .push_bind(c.email.as_str())
                        .push_bind(c.age);
                });
                q.build().execute(&mut *tx).await.unwrap();
                total += chunk.len() as i64;
            }
            let position = rows.reader().position().byte() as i64;
            sqlx::query("UPDATE progress SET position = ?1, written = ?2 WHERE id = 1")
                .bind(position)
                .bind(total)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            if chunk.len() < CHUNK as usize {
                break;
            }
        }
        hand = hand.min(start.elapsed());
        assert_eq!(total, n);
    }
    report(&format!("F1 CSV into SQLite, {n} rows"), n, framework, hand);
    pool
}

async fn f2(dir: &Path, n: i64, source: SqlitePool) {
    let repo = SqliteJobRepository::open(&format!("sqlite:{}", dir.join("f2.db").display()))
        .await
        .unwrap();
    let launcher = JobLauncher::new(repo);
    let out = dir.join("customers.jsonl");
    let mut framework = Duration::MAX;
    for run in 0..2i64 {
        let (out, pool) = (out.clone(), source.clone());
        let step = StepBuilder::new("export")
            .chunk_size(CHUNK)
            .chunk(move |_| {
                let reader = KeysetReader::query_as::<Customer>(
                    pool.clone(),
                    "SELECT id, name, email, age FROM customers",
                    "id",
                )
                .page_size(CHUNK as usize)
                .key(|c: &Customer| c.id);
                let writer =
                    JsonLinesWriter::<Customer>::new(&out).if_exists(ExistingFile::Replace);
                async move { Ok(read_write(reader, writer)) }
            });
        let start = Instant::now();
        let e = launcher
            .run(
                Job::new("f2", Flow::start(step)),
                JobParameters::new().with("run", run),
            )
            .await
            .unwrap();
        framework = framework.min(start.elapsed());
        assert_eq!(e.status, BatchStatus::Completed);
    }
    let lines = std::fs::read(&out)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    assert_eq!(lines as i64, n);

    let hand_pool = sqlite_file(&dir.join("f2-hand.db")).await;
    progress_table(&hand_pool).await;
    let hand_out = dir.join("hand.jsonl");
    let mut hand = Duration::MAX;
    for _ in 0..2 {
        let start = Instant::now();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&hand_out)
            .unwrap();
        let (mut last, mut length, mut total) = (0i64, 0u64, 0i64);
        let mut buf = Vec::new();
        loop {
            let rows: Vec<Customer> = sqlx::query_as(
                "SELECT id, name, email, age FROM customers WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .bind(last)
            .bind(CHUNK as i64)
            .fetch_all(&source)
            .await
            .unwrap();
            buf.clear();
            for c in &rows {
                serde_json::to_writer(&mut buf, c).unwrap();
                buf.push(b'\n');
            }
            if !buf.is_empty() {
                file.seek(SeekFrom::Start(length)).unwrap();
                file.write_all(&buf).unwrap();
                file.sync_data().unwrap();
                length += buf.len() as u64;
                last = rows.last().unwrap().id;
                total += rows.len() as i64;
            }
            let mut tx = hand_pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("UPDATE progress SET position = ?1, written = ?2 WHERE id = 1")
                .bind(length as i64)
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
    report(
        &format!("F2 SQLite to JSON lines, {n} rows"),
        n,
        framework,
        hand,
    );
}

fn main() {
    let n: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let source = f1(dir.path(), n).await;
        f2(dir.path(), n, source).await;
    });
}
