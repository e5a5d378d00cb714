//! Imports a CSV file of customers into the table `customers(id, name, email, age)`
//! of the job repository's database, skipping malformed rows, restartable where it
//! stopped.
//!
//! ```text
//! cargo run --example csv_import                                # generates customers.csv
//! cargo run --example csv_import -- input=customers.csv fail.at=50000,long,false
//! cargo run --example csv_import -- input=customers.csv         # the restart
//! ```
//!
//! Without `input`, a file `customers.csv` of 100,000 rows is generated next to the
//! database (SQLite; in the working directory for a server), 1% of them malformed (an
//! age that is not a number, a row with a field missing, an age out of range). Rows are
//! parsed into a struct by the CSV reader and inserted in each chunk's transaction;
//! malformed rows are read errors, skipped up to a limit of 2,000 (`skip`), each named
//! by file, line, field and value. `fail.at=N` (non-identifying) makes the writer fail
//! once, in the first run of the instance, when its chunk holds the N-th record of the
//! file (counting every record, well-formed or not): run the same command again and the
//! import goes on from the last commit, reading only the rest of the file. At the end it
//! prints the rows read, skipped (with the first reasons) and written.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use batch::cli::{Runner, Setup};
use batch::fault::SkipListener;
use batch::file::{CsvReader, MalformedRecord};
use batch::prelude::*;
use batch::sql::SqlWriter;
use batch::step::{StepExecutionListener, StepScope};

const ROWS: u64 = 100_000;

/// A row of the file.
#[derive(Debug, Clone, serde::Deserialize)]
struct Customer {
    id: i64,
    name: String,
    email: String,
    age: u8,
}

/// A customer and its record number in the file (from 1, malformed records counted).
type Numbered = (u64, Customer);

/// Numbers the records the CSV reader meets, well-formed or not (a read error has
/// consumed its record too); the count is kept in the step context next to the
/// reader's position.
struct NumberedReader {
    inner: CsvReader<Customer>,
    records: u64,
}

impl ItemReader<Numbered> for NumberedReader {
    async fn read(&mut self) -> Result<Option<Numbered>> {
        let read = self.inner.read().await;
        if !matches!(read, Ok(None)) {
            self.records += 1;
        }
        Ok(read?.map(|c| (self.records, c)))
    }
    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.records = ctx.get("customers.records")?.unwrap_or(0);
        self.inner.open(ctx)
    }
    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        ctx.put("customers.records", &self.records)?;
        self.inner.update(ctx)
    }
    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("an injected failure: the chunk holds record {0} (fail.at)")]
struct InjectedFailure(u64);

/// Inserts the customers in the chunk's transaction; fails once on `fail.at`.
struct Insert {
    sql: SqlWriter<Numbered>,
    fail_at: Option<u64>,
}

impl ItemWriter<Numbered> for Insert {
    async fn write(&mut self, items: &[Numbered], cx: &mut WriteContext<'_>) -> Result<()> {
        // The chunk holds record N when N is within its records (a malformed N-th
        // record was skipped, but its chunk still covers it).
        let (first, last) = (items.first().map(|i| i.0), items.last().map(|i| i.0));
        if let (Some(n), Some(first), Some(last)) = (self.fail_at, first, last)
            && (first..=last).contains(&n)
        {
            self.fail_at = None;
            return Err(Error::new(InjectedFailure(n)));
        }
        self.sql.write(items, cx).await
    }
}

/// Keeps the first reasons for skipped rows and prints the totals when the step ends.
#[derive(Default)]
struct Report {
    reasons: Mutex<Vec<String>>,
}

impl SkipListener<Numbered, Numbered> for Report {
    fn on_skip_in_read(&self, error: &Error) {
        let mut reasons = self.reasons.lock().unwrap();
        if reasons.len() < 5 {
            reasons.push(error.report());
        }
    }
}

impl StepExecutionListener for Report {
    fn after_step(&self, step: &mut StepExecution) -> Option<ExitStatus> {
        let c = &step.counts;
        println!(
            "rows read {}, skipped {}, written {} (this run)",
            c.read + c.read_skip,
            c.read_skip,
            c.write
        );
        for reason in self.reasons.lock().unwrap().iter() {
            println!("  skipped: {reason}");
        }
        None
    }
}

/// Where the generated file goes: next to a SQLite database, else here.
fn default_input(pool: &DbPool) -> PathBuf {
    let dir = pool
        .sqlite()
        .map(|p| p.connect_options().get_filename().to_owned())
        .and_then(|f| f.parent().map(Path::to_owned))
        .unwrap_or_default();
    dir.join("customers.csv")
}

#[step(
    chunk = 1000,
    name = "importStep",
    skip(MalformedRecord, limit = 2000),
    listener(Report::default())
)]
fn import_step(
    pool: Res<DbPool>,
    scope: StepScope,
    #[param] input: Option<String>,
    #[param("fail.at")] fail_at: Option<u64>,
) -> impl ChunkStep<Numbered, Numbered> {
    let input = input.map_or_else(|| default_input(&pool.0), PathBuf::from);
    let reader = NumberedReader {
        inner: CsvReader::new(input).name("customers"),
        records: 0,
    };
    let sql = SqlWriter::mapped("customers")
        .column("id", |(_, c): &Numbered| c.id)
        .column("name", |(_, c): &Numbered| c.name.clone())
        .column("email", |(_, c): &Numbered| c.email.clone())
        .column("age", |(_, c): &Numbered| i64::from(c.age))
        .build();
    let writer = Insert {
        sql,
        fail_at: fail_at.filter(|_| !scope.is_restart()),
    };
    read_write(reader, writer)
}

#[job(name = "csvImportJob", optional = ["input", "fail.at"])]
fn csv_import_job() -> Flow {
    Flow::start(import_step {}).build()
}

/// The generated file: 100,000 rows, every 100th malformed in one of three ways.
fn generate(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "id,name,email,age")?;
    for id in 1..=ROWS {
        let age = 18 + id % 70;
        match (id % 100 == 0).then_some(id / 100 % 3) {
            Some(0) => writeln!(out, "{id},Customer {id},customer{id}@example.com,unknown")?,
            Some(1) => writeln!(out, "{id},Customer {id},{age}")?,
            Some(_) => writeln!(
                out,
                "{id},Customer {id},customer{id}@example.com,{}",
                300 + id % 100
            )?,
            None => writeln!(
                out,
                "{id},\"Customer, {id}\",customer{id}@example.com,{age}"
            )?,
        }
    }
    out.flush()
}

/// Creates the table, and the input file when none is given and none is there.
async fn prepare(setup: Setup<DbPool>) -> Result<()> {
    setup
        .pool
        .execute(
            "CREATE TABLE IF NOT EXISTS customers (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, age BIGINT NOT NULL)",
        )
        .await?;
    if setup.parameters.get("input").is_none() {
        let path = default_input(&setup.pool);
        if !path.exists() {
            generate(&path).with_context(|| format!("generating {}", path.display()))?;
            println!("generated {} ({ROWS} rows, 1% malformed)", path.display());
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    Runner::new()
        .about("Imports customers.csv into `customers`, skipping malformed rows (input=FILE fail.at=N,long,false)")
        .setup(prepare)
        .run(csv_import_job {})
}
