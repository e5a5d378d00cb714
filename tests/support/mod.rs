//! What the server-backed suites share: which servers the environment names, a fresh
//! database per test, a few queries that read the same on the three databases.
//!
//! `BATCH_TEST_POSTGRES_URL` and `BATCH_TEST_MYSQL_URL` name the servers (`.ci/run`
//! sets them). Unset, a server's tests pass after saying on stderr that they were
//! skipped and how to run them; unset while `CI` is set, they fail.

#![allow(dead_code, unused_macros)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use batch::chunk::read_write;
use batch::prelude::*;
use batch::repository::{DbKind, open_repository};
use batch::step::{StepBuilder, StepDef};

/// BATCH_STEP_EXECUTION's columns in Spring Batch 5's order: what every suite checks
/// the created table against, written out here rather than taken from the code.
pub(crate) const STEP_EXECUTION_COLUMNS: [&str; 19] = [
    "STEP_EXECUTION_ID",
    "VERSION",
    "STEP_NAME",
    "JOB_EXECUTION_ID",
    "CREATE_TIME",
    "START_TIME",
    "END_TIME",
    "STATUS",
    "COMMIT_COUNT",
    "READ_COUNT",
    "FILTER_COUNT",
    "WRITE_COUNT",
    "READ_SKIP_COUNT",
    "WRITE_SKIP_COUNT",
    "PROCESS_SKIP_COUNT",
    "ROLLBACK_COUNT",
    "EXIT_CODE",
    "EXIT_MESSAGE",
    "LAST_UPDATED",
];

/// Rows of the Spring tables (and item progress) whose parent row is gone: each query
/// counts them, and a purge must leave every count 0.
pub(crate) const ORPHAN_QUERIES: [&str; 6] = [
    "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_INSTANCE I WHERE I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID)",
    "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_PARAMS P WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_EXECUTION_ID = P.JOB_EXECUTION_ID)",
    "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION_CONTEXT C WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_EXECUTION_ID = C.JOB_EXECUTION_ID)",
    "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION S WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION E WHERE E.JOB_EXECUTION_ID = S.JOB_EXECUTION_ID)",
    "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION_CONTEXT C WHERE NOT EXISTS (SELECT 1 FROM BATCH_STEP_EXECUTION S WHERE S.STEP_EXECUTION_ID = C.STEP_EXECUTION_ID)",
    "SELECT COUNT(*) FROM BATCH_STEP_ITEM_PROGRESS P WHERE NOT EXISTS (SELECT 1 FROM BATCH_JOB_INSTANCE I WHERE I.JOB_INSTANCE_ID = P.JOB_INSTANCE_ID)",
];

/// One test function per database and case: `mod sqlite { fn CASE }` and so on, each
/// calling `run(kind, "CASE", CASE)` of the test file.
macro_rules! on_databases {
    ($run:ident; [$($db:ident => $kind:ident),*]; $cases:tt) => {
        $( on_databases!(@one $run, $db, $kind, $cases); )*
    };
    (@one $run:ident, $db:ident, $kind:ident, [$($case:ident),* $(,)?]) => {
        mod $db {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$run(batch::repository::DbKind::$kind, stringify!($case), super::$case)
                        .await
                }
            )*
        }
    };
}

/// A fresh database for one test, with its job repository (tables created) and pool.
pub(crate) struct Fresh {
    pub kind: DbKind,
    pub url: String,
    pub repo: Arc<dyn JobRepository>,
    pub pool: DbPool,
    _dir: tempfile::TempDir,
}

/// See [`fresh`]; `None` when `kind`'s server is not configured.
pub(crate) async fn open_fresh(kind: DbKind, name: &str) -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh(kind, name, &dir).await?;
    let repo = open_repository(&url).await.unwrap();
    let pool = repo.pool().expect("a SQL repository has a pool");
    Some(Fresh {
        kind,
        url,
        repo,
        pool,
        _dir: dir,
    })
}

/// The variable that names `kind`'s server.
pub(crate) fn variable(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgres => "BATCH_TEST_POSTGRES_URL",
        DbKind::MySql => "BATCH_TEST_MYSQL_URL",
        DbKind::Sqlite => "",
    }
}

/// The URL of `kind`'s server, or `None` (after saying so once) when the environment
/// names none. Panics when it names none in CI.
pub(crate) fn server(kind: DbKind) -> Option<String> {
    static SAID: Mutex<Vec<DbKind>> = Mutex::new(Vec::new());
    let var = variable(kind);
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{var} is not set, but CI is: the {kind} suite must run in CI (.ci/run starts the server and sets {var})"
        ),
        _ => {
            let mut said = SAID.lock().unwrap();
            if !said.contains(&kind) {
                said.push(kind);
                let example = match kind {
                    DbKind::Postgres => "postgres://postgres:postgres@127.0.0.1:5432/batch",
                    _ => "mysql://batch:batch@127.0.0.1:3306/batch",
                };
                // Straight to stderr: the test harness would hide a print of a
                // passing test.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: the {kind} tests of {} ran nothing: {var} is not set. Run them with {var}={example} cargo test --test {} (the README says how to start a server)",
                    module_path!().split("::").next().unwrap_or("this suite"),
                    module_path!().split("::").next().unwrap_or("NAME"),
                );
            }
            None
        }
    }
}

/// A fresh, empty database for the test `name` on `kind`: a SQLite file in `dir`, a
/// schema of its own on PostgreSQL, a database of its own on MySQL (the server's user
/// needs the right to create databases named `batch…`). `None` when the server is not
/// configured.
pub(crate) async fn fresh(kind: DbKind, name: &str, dir: &tempfile::TempDir) -> Option<String> {
    match kind {
        DbKind::Sqlite => Some(format!(
            "sqlite:{}",
            dir.path().join(format!("{name}.db")).display()
        )),
        DbKind::Postgres => {
            let base = server(kind)?;
            let schema = format!("t_{name}");
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            let reset = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(reset))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            Some(format!("{base}{sep}options[search_path]={schema}"))
        }
        DbKind::MySql => {
            let base = server(kind)?;
            let database = format!("batch_t_{name}");
            let admin = sqlx::MySqlPool::connect(&base).await.unwrap();
            for sql in [
                format!("DROP DATABASE IF EXISTS {database}"),
                format!("CREATE DATABASE {database}"),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .unwrap();
            }
            admin.close().await;
            let (head, query) = match base.split_once('?') {
                Some((h, q)) => (h, format!("?{q}")),
                None => (base.as_str(), String::new()),
            };
            let at = head.rfind('/').expect("a mysql:// URL names a database");
            Some(format!("{}/{database}{query}", &head[..at]))
        }
    }
}

/// The first column of each row, read as text.
pub(crate) async fn texts(pool: &DbPool, sql: &str) -> Vec<Option<String>> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match pool {
        DbPool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        DbPool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        DbPool::MySql(p) => sqlx::query_scalar(sql).fetch_all(p).await,
    }
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The first column of the first row, a BIGINT (COUNT(*), an id, a counter).
pub(crate) async fn int(pool: &DbPool, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match pool {
        DbPool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        DbPool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        DbPool::MySql(p) => sqlx::query_scalar(sql).fetch_one(p).await,
    }
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A built example (`cargo test` builds them next to the test binaries).
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

#[derive(Debug, thiserror::Error)]
#[error("failed on {0}")]
pub(crate) struct FailedOn(pub(crate) String);

/// A chunk step over `items` whose reader fails on `fail_on`; the reader keeps its
/// position under `list.read.count`.
pub(crate) fn list_step(
    name: &str,
    chunk: u64,
    items: Vec<&'static str>,
    fail_on: Option<&'static str>,
) -> StepDef {
    let items: Vec<String> = items.into_iter().map(String::from).collect();
    StepBuilder::new(name)
        .chunk_size(chunk)
        .chunk(move |_scope| {
            let items = items.clone();
            async move {
                let reader = FailingReader {
                    inner: ListReader::new(items).restartable("list"),
                    fail_on,
                };
                Ok(read_write(reader, |_: &[String]| Ok::<_, Error>(())))
            }
        })
}

pub(crate) struct FailingReader {
    inner: ListReader<String>,
    fail_on: Option<&'static str>,
}

impl ItemReader<String> for FailingReader {
    async fn read(&mut self) -> Result<Option<String>> {
        let item = self.inner.read().await?;
        match item {
            Some(i) if Some(i.as_str()) == self.fail_on => Err(FailedOn(i).into()),
            other => Ok(other),
        }
    }
    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.inner.open(ctx)
    }
    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        self.inner.update(ctx)
    }
}

pub(crate) fn job(name: &str, steps: Vec<StepDef>) -> Job {
    let mut it = steps.into_iter();
    let mut flow = Flow::start(it.next().unwrap());
    for s in it {
        flow = flow.next(s);
    }
    Job::new(name, flow)
}

pub(crate) fn only_step(e: &JobExecution) -> &StepExecution {
    assert_eq!(e.step_executions.len(), 1, "{e:?}");
    &e.step_executions[0]
}

/// A small xorshift generator: the test prints its seed, so a failing sequence of
/// kill moments can be replayed with `BATCH_TEST_SEED`.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new() -> Self {
        let seed = std::env::var("BATCH_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("kill moments from BATCH_TEST_SEED={seed}");
        Self(seed)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The names of the steps a job execution ran, in order.
pub(crate) fn step_names(e: &JobExecution) -> Vec<&str> {
    e.step_executions
        .iter()
        .map(|s| s.step_name.as_str())
        .collect()
}

/// The owner record of a process that has exited, on this host: its pid and record.
pub(crate) fn exited_owner() -> (u32, String) {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    child.wait().unwrap();
    let ticks: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let record = format!(
        "running in process {pid} (started {ticks}) on {}",
        host.trim()
    );
    (pid, record)
}

/// The tables of the `copy_rows` example: `source` (see [`seed_source`]) and an empty
/// `target`, created by the suites that copy rows between them.
pub(crate) async fn create_copy_tables(pool: &DbPool) {
    for ddl in [
        "CREATE TABLE source (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL, amount BIGINT NOT NULL)",
        "CREATE TABLE target (id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, amount BIGINT NOT NULL)",
    ] {
        pool.execute(ddl).await.unwrap();
    }
}

/// Fills `source` with rows 1 to `rows` (`row-{id}`, amount `id % 1000`) in one
/// transaction.
pub(crate) async fn seed_source(pool: &DbPool, rows: i64) {
    struct Source {
        id: i64,
        name: String,
        amount: i64,
    }
    let writer =
        batch::sql::SqlWriter::insert("source", ["id", "name", "amount"], |r: &Source, b| {
            b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
        });
    let all: Vec<Source> = (1..=rows)
        .map(|id| Source {
            id,
            name: format!("row-{id}"),
            amount: id % 1000,
        })
        .collect();
    let mut tx = pool.begin().await.unwrap();
    writer.write_in(&mut tx, &all).await.unwrap();
    tx.commit().await.unwrap();
}
