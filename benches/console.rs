//! Page times of the web console on a repository of 10,000 job executions (SQLite):
//! each page requested 50 times over loopback after 5 warm-up requests, median and
//! slowest reported. The history is 10 jobs × 1,000 executions, each with a step and
//! two parameters, in every ended status, written with SQL in one transaction; a few
//! real runs on top give the in-process metrics something to show.
//!
//! ```text
//! cargo bench --bench console
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use batch::chunk::read_write;
use batch::console::{Console, ConsoleConfig};
use batch::prelude::*;
use batch::repository::open_repository;
use batch::step::StepBuilder;

const REQUESTS: usize = 50;
const WARM_UP: usize = 5;

/// 10,000 executions of 10 jobs, each with its instance, two parameters and a step.
const HISTORY: [&str; 4] = [
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
     INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY) \
     SELECT 100000 + i, 0, 'job' || (i % 10), 'history-' || i FROM n",
    "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, START_TIME, END_TIME, STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) \
     SELECT JOB_INSTANCE_ID, 2, JOB_INSTANCE_ID, \
       datetime('2026-01-01', '+' || (JOB_INSTANCE_ID - 100000) || ' minutes'), \
       datetime('2026-01-01', '+' || (JOB_INSTANCE_ID - 100000) || ' minutes'), \
       datetime('2026-01-01', '+' || (JOB_INSTANCE_ID - 100000) || ' minutes', '+' || (JOB_INSTANCE_ID % 97) || ' seconds'), \
       CASE JOB_INSTANCE_ID % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'STOPPED' WHEN 2 THEN 'ABANDONED' ELSE 'COMPLETED' END, \
       CASE JOB_INSTANCE_ID % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'STOPPED' WHEN 2 THEN 'ABANDONED' ELSE 'COMPLETED' END, \
       '', datetime('2026-01-01', '+' || (JOB_INSTANCE_ID - 100000) || ' minutes', '+' || (JOB_INSTANCE_ID % 97) || ' seconds') \
     FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID > 100000",
    "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING) \
     SELECT JOB_EXECUTION_ID, 'run', 'java.lang.Long', CAST(JOB_EXECUTION_ID AS TEXT), 'Y' FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID > 100000 \
     UNION ALL SELECT JOB_EXECUTION_ID, 'region', 'java.lang.String', 'region-' || (JOB_EXECUTION_ID % 7), 'N' FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID > 100000",
    "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, CREATE_TIME, START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) \
     SELECT JOB_EXECUTION_ID, 3, 'step', JOB_EXECUTION_ID, CREATE_TIME, START_TIME, END_TIME, STATUS, 4, 25, 0, 25, 0, 0, 0, 0, EXIT_CODE, '', END_TIME FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID > 100000",
];

fn list_job(name: &str) -> Job {
    let items: Vec<u32> = (0..100).collect();
    let step = StepBuilder::new("s").chunk_size(10).chunk(move |_scope| {
        let items = items.clone();
        async move {
            Ok(read_write(ListReader::new(items), |_: &[u32]| {
                Ok::<_, Error>(())
            }))
        }
    });
    Job::new(name, Flow::start(step))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("batch.db").display());
    let repo: Arc<dyn JobRepository> = open_repository(&url).await.unwrap();
    let Some(DbPool::Sqlite(pool)) = repo.pool() else {
        unreachable!("a SQLite repository")
    };
    let started = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    for sql in HISTORY {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let console = Console::bind(
        ConsoleConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..ConsoleConfig::default()
        },
        JobLauncher::with_repository(repo.clone()),
        None,
    )
    .await
    .unwrap();
    let base = format!("http://{}", console.local_addr().unwrap());
    tokio::spawn(console.serve(std::future::pending()));
    let launcher = JobLauncher::with_repository(repo.clone());
    for run in 0..5_i64 {
        launcher
            .run(list_job("job3"), JobParameters::new().with("run", run))
            .await
            .unwrap();
    }
    let (executions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM BATCH_JOB_EXECUTION")
        .fetch_one(&pool)
        .await
        .unwrap();
    // One of the real runs (their ids come from the sequence, below the history's).
    let real: (i64,) = sqlx::query_as(
        "SELECT MAX(JOB_EXECUTION_ID) FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID < 100000",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "console pages on SQLite with {executions} job executions (filled in {:.1} s); {REQUESTS} requests each",
        started.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    let pages = [
        "/".to_owned(),
        "/executions".to_owned(),
        "/executions?job=job0&status=FAILED".to_owned(),
        "/executions?param=region%3Dregion-3&job=job5".to_owned(),
        "/executions?param=run%3D105000".to_owned(),
        "/executions?before=105000".to_owned(),
        "/executions?from=2026-01-03T00:00&until=2026-01-04".to_owned(),
        "/executions/104321".to_owned(),
        format!("/executions/{}", real.0),
        "/metrics".to_owned(),
        "/health".to_owned(),
    ];
    println!(
        "{:<52} {:>10} {:>10} {:>9}",
        "page", "median", "slowest", "bytes"
    );
    for page in &pages {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut bytes = 0;
        for i in 0..WARM_UP + REQUESTS {
            let t = Instant::now();
            let response = http.get(format!("{base}{page}")).send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{page}: {}",
                response.status()
            );
            bytes = response.bytes().await.unwrap().len();
            if i >= WARM_UP {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{page:<52} {:>10} {:>10} {bytes:>9}",
            ms(times[times.len() / 2]),
            ms(*times.last().unwrap())
        );
    }
}
