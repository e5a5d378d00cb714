//! Exports the rows of `customers` to a JSON-lines file, one object per row with the
//! table's column names as keys, exactly once across crashes.
//!
//! ```text
//! cargo run --example export_jsonl -- output=customers.jsonl rows=100000,long
//! ```
//!
//! `customers(id, name, email, age)` is created when missing and, when empty, filled
//! with `rows` generated rows (default 1000). `output` (default `customers.jsonl`) is
//! written by the transactional JSON-lines writer: a chunk's lines reach the file just
//! before its transaction commits, and the file's committed length is saved in the same
//! commit. Kill the process at any moment (`kill -9`) and run the same command again:
//! the restart cuts the file back to the last commit and goes on after the last
//! committed key, so the file ends with every row exactly once and no partial line.
//! A new job instance (another `output`) replaces a file already there.
//!
//! `pause.ms` (non-identifying) pauses before each chunk, which stretches a run so that
//! tests can kill it at many moments.

use std::time::Duration;

use batch::cli::{Runner, Setup};
use batch::file::{ExistingFile, JsonLinesWriter};
use batch::prelude::*;
use batch::sql::{KeysetReader, SqlWriter};

const CHUNK: u64 = 100;

/// A row of `customers`; its field names are the column names, and so the keys of the
/// JSON objects.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
struct Customer {
    id: i64,
    name: String,
    email: String,
    age: i64,
}

#[step(chunk = 100, name = "exportStep")] // CHUNK
fn export_step(
    pool: Res<DbPool>,
    #[param] output: Option<String>,
    #[param("pause.ms")] pause_ms: Option<i64>,
) -> impl ChunkStep<Customer, Customer> {
    // Rows mapped by their column names (sqlx::FromRow), in pages after the last
    // committed id.
    let reader = KeysetReader::query_as::<Customer>(
        pool.0,
        "SELECT id, name, email, age FROM customers",
        "id",
    )
    .page_size(1000)
    .name("customers")
    .key(|c: &Customer| c.id);
    let writer = JsonLinesWriter::<Customer>::new(output.unwrap_or("customers.jsonl".into()))
        .name("export")
        .if_exists(ExistingFile::Replace);
    // Passes rows on, pausing once per chunk before the chunk's transaction begins.
    let pause = Duration::from_millis(pause_ms.unwrap_or(0).max(0) as u64);
    let mut seen = 0u64;
    let pause = async_processor(move |row: &Customer| {
        let wait = seen.is_multiple_of(CHUNK) && !pause.is_zero();
        seen += 1;
        Box::pin(async move {
            if wait {
                tokio::time::sleep(pause).await;
            }
            Ok(Some(row.clone()))
        })
    });
    chunk(reader, pause, writer)
}

#[job(name = "exportJsonlJob", optional = ["output", "rows", "pause.ms"])]
fn export_jsonl_job() -> Flow {
    Flow::start(export_step {}).build()
}

/// Creates `customers` when missing and fills it with `rows` rows when empty.
async fn prepare(setup: Setup<DbPool>) -> Result<()> {
    let pool = setup.pool;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS customers (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, age BIGINT NOT NULL)",
    )
    .await?;
    let rows: i64 = match setup.parameters.get("rows") {
        Some(_) => setup.parameters.get_as("rows")?,
        None => 1000,
    };
    let mut probe = KeysetReader::query_as::<Customer>(
        pool.clone(),
        "SELECT id, name, email, age FROM customers",
        "id",
    )
    .page_size(1)
    .key(|c: &Customer| c.id);
    if probe.read().await?.is_none() {
        let writer = SqlWriter::mapped("customers")
            .column("id", |c: &Customer| c.id)
            .column("name", |c: &Customer| c.name.clone())
            .column("email", |c: &Customer| c.email.clone())
            .column("age", |c: &Customer| c.age)
            .build();
        let all: Vec<Customer> = (1..=rows)
            .map(|id| Customer {
                id,
                name: format!("Customer {id}"),
                email: format!("customer{id}@example.com"),
                age: 18 + id % 70,
            })
            .collect();
        let mut tx = pool.begin().await?;
        writer.write_in(&mut tx, &all).await?;
        tx.commit().await?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Exports `customers` to a JSON-lines file, every row exactly once across crashes")
        .setup(prepare)
        .run(export_jsonl_job {})
}
