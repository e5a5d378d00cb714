//! A database-to-database job on any of the three databases: copies the rows of
//! `source` into `target` with a transform, reading with the keyset-paging reader and
//! writing with the batched writer in each chunk's transaction.
//!
//! ```text
//! cargo run --example copy_rows -- rows=10000,long,false
//! cargo run --example copy_rows -- --db postgres://postgres:postgres@127.0.0.1/batch rows=10000,long,false
//! cargo run --example copy_rows -- --db mysql://batch:batch@127.0.0.1/batch rows=10000,long,false
//! ```
//!
//! The tables are created when missing; an empty `source` is filled with `rows` rows
//! (default 1000). Each row `(id, name, amount)` becomes `(id, NAME, 3 × amount + 1)`
//! in `target`, which has no key, so a row written twice would show. Kill the process
//! at any moment (`kill -9`) and run the same command again: the next launch finds the
//! dead run, marks it FAILED and restarts after the last committed chunk, so `target`
//! ends with every row exactly once.
//!
//! Parameters besides `rows`: `run` (identifying: another value is another instance),
//! `pause.ms` (non-identifying: a pause before each chunk, which stretches a run so that
//! tests can kill it at many moments), `work` (non-identifying: rounds of hashing per
//! row, a CPU-bound transform for the benchmarks).
//!
//! Partitioned: `partitions=N,long` splits the copy into N key ranges of `source.id`
//! (steps `partitionedCopy:partition0` …), run concurrently in this process;
//! `remote=true,bool` leaves them to workers, any number, started on any machine that
//! reaches the database (PostgreSQL or MySQL/MariaDB):
//!
//! ```text
//! cargo run --example copy_rows -- --db postgres://… worker --exit-when-idle   # N times
//! cargo run --example copy_rows -- --db postgres://… partitions=4,long remote=true,bool
//! ```

use std::time::Duration;

use batch::cli::{Runner, Setup};
use batch::job::decider;
use batch::prelude::*;
use batch::sql::{KeysetReader, SqlRow, SqlWriter};
use batch::step::partition::{KeyRange, KeyRangePartitioner};

const CHUNK: u64 = 100;
const PAGE: usize = 500;

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    name: String,
    amount: i64,
}

/// The transform: what the test checks in `target`.
fn transform(row: &Row) -> Row {
    Row {
        id: row.id,
        name: row.name.to_uppercase(),
        amount: row.amount * 3 + 1,
    }
}

#[step(chunk = 100, name = "copyStep")] // CHUNK
fn copy_step(
    pool: Res<DbPool>,
    #[param("pause.ms")] pause_ms: Option<i64>,
    #[param("work")] work: Option<i64>,
) -> impl ChunkStep<Row, Row> {
    copy(
        "SELECT id, name, amount FROM source".to_owned(),
        pool.0,
        pause_ms,
        work,
    )
}

/// A partition's share of the copy: the key range its context names.
#[step(chunk = 100, name = "copyRange")] // CHUNK
fn copy_range(
    pool: Res<DbPool>,
    range: KeyRange,
    #[param("pause.ms")] pause_ms: Option<i64>,
    #[param("work")] work: Option<i64>,
) -> impl ChunkStep<Row, Row> {
    let KeyRange { min, max } = range;
    let select = format!("SELECT id, name, amount FROM source WHERE id BETWEEN {min} AND {max}");
    copy(select, pool.0, pause_ms, work)
}

/// The partitioned copy: key ranges of `source.id`, as many as `partitions` says, run
/// here or, with `remote=true`, by workers.
#[step(
    name = "partitionedCopy",
    partition(worker = copy_range {}, grid_size_param = "partitions", remote_param = "remote")
)]
fn partitioned_copy() -> KeyRangePartitioner {
    KeyRangePartitioner::new("source", "id")
}

fn copy(
    select: String,
    pool: DbPool,
    pause_ms: Option<i64>,
    work: Option<i64>,
) -> impl ChunkStep<Row, Row> {
    let reader = KeysetReader::select(pool, select, "id")
        .page_size(PAGE)
        .name("source")
        .map(
            |row: &SqlRow| {
                Ok(Row {
                    id: row.get("id")?,
                    name: row.get("name")?,
                    amount: row.get("amount")?,
                })
            },
            |row: &Row| row.id,
        );
    let writer = SqlWriter::insert("target", ["id", "name", "amount"], |r: &Row, b| {
        b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
    });
    // The transform, pausing once per chunk before the chunk's transaction begins
    // (so a pause holds no lock: on SQLite, other launches get the write lock
    // meanwhile).
    let pause = Duration::from_millis(pause_ms.unwrap_or(0).max(0) as u64);
    let rounds = work.unwrap_or(0).max(0) as u64;
    let mut seen = 0u64;
    let transform = async_processor(move |row: &Row| {
        let wait = seen.is_multiple_of(CHUNK) && !pause.is_zero();
        seen += 1;
        Box::pin(async move {
            if wait {
                tokio::time::sleep(pause).await;
            }
            let mut out = transform(row);
            if rounds > 0 {
                // The result depends on the rounds, so the work cannot be skipped; the
                // row is unchanged.
                let h = burn(out.id as u64, rounds);
                out.amount += i64::from(h == u64::MAX);
            }
            Ok(Some(out))
        })
    });
    chunk(reader, transform, writer)
}

/// `rounds` rounds of a 64-bit mix: CPU work whose result the compiler cannot know.
fn burn(seed: u64, rounds: u64) -> u64 {
    let mut h = std::hint::black_box(seed) | 1;
    for _ in 0..rounds {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

#[job(
    name = "copyRowsJob",
    optional = ["rows", "run", "pause.ms", "work", "partitions", "remote"]
)]
fn copy_rows_job() -> Flow {
    // `partitions` decides which of the two copies runs.
    let partitioned = decider("partitionsGiven", |job, _| {
        let code = if job.parameters.get("partitions").is_some() {
            "PARTITIONED"
        } else {
            "ONE_STEP"
        };
        code.to_owned()
    });
    Flow::start_decider(partitioned.clone())
        .on("PARTITIONED")
        .to(partitioned_copy {})
        .from_decider(&partitioned)
        .on("*")
        .to(copy_step {})
        .build()
}

/// Creates the tables when missing and fills an empty `source` with `rows` rows.
async fn prepare(setup: Setup<DbPool>) -> Result<()> {
    let pool = setup.pool;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS source (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL, amount BIGINT NOT NULL)",
    )
    .await?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS target (id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, amount BIGINT NOT NULL)",
    )
    .await?;
    let rows: i64 = match setup.parameters.get("rows") {
        Some(_) => setup.parameters.get_as("rows")?,
        None => 1000,
    };
    let mut probe = KeysetReader::select(pool.clone(), "SELECT id FROM source", "id")
        .page_size(1)
        .map(|row: &SqlRow| row.get::<i64, _>("id"), |id: &i64| *id);
    if probe.read().await?.is_none() {
        seed(&pool, rows).await?;
    }
    Ok(())
}

/// Writes `rows` rows into `source` in one transaction.
pub async fn seed(pool: &DbPool, rows: i64) -> Result<()> {
    let writer = SqlWriter::insert("source", ["id", "name", "amount"], |r: &Row, b| {
        b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
    });
    let all: Vec<Row> = (1..=rows)
        .map(|id| Row {
            id,
            name: format!("row-{id}"),
            amount: id % 1000,
        })
        .collect();
    let mut tx = pool.begin().await?;
    writer.write_in(&mut tx, &all).await?;
    tx.commit().await
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Copies `source` into `target` with a transform, exactly once across crashes")
        .setup(prepare)
        .run(copy_rows_job {})
}
