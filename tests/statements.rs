//! The read side and the launch cost the same statements whatever the history: a
//! repository holding 10 executions and the same one holding 10,000 more answer
//! `executions --limit 20`, `show ID` and a launch with the same number of statements
//! (counted from sqlx's `sqlx::query` events, as the benchmark's counter does).

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use batch::chunk::read_write;
use batch::prelude::*;
use batch::repository::{DbKind, ExecutionQuery};
use batch::step::StepBuilder;

static COUNT: AtomicU64 = AtomicU64::new(0);

struct Counter;

impl tracing::Subscriber for Counter {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if meta.target() == "sqlx::query" {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        COUNT.fetch_add(1, Ordering::SeqCst);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn job() -> Job {
    let step = StepBuilder::new("s").chunk_size(10).chunk(|_| async {
        Ok(read_write(
            ListReader::new((0..25).collect::<Vec<i64>>()),
            |_: &[i64]| Ok::<_, Error>(()),
        ))
    });
    Job::new("counted", Flow::start(step))
}

/// The fewest statements, over three rounds, of each of [`costs_once`]: a statement
/// that only sometimes joins a round (the pool opening a connection, whose setup is
/// a statement of its own, when two tasks of a run need one at once) is not the
/// history's doing, while a cost that grows with the history grows in every round.
async fn costs(repo: &std::sync::Arc<dyn JobRepository>, run: i64) -> [u64; 3] {
    let mut fewest = [u64::MAX; 3];
    for round in 0..3 {
        let cost = costs_once(repo, run * 10 + round).await;
        for (f, c) in fewest.iter_mut().zip(cost) {
            *f = (*f).min(c);
        }
    }
    fewest
}

/// Statements of: a page of 20 executions, one execution in full, one launch.
async fn costs_once(repo: &std::sync::Arc<dyn JobRepository>, run: i64) -> [u64; 3] {
    let count = || COUNT.load(Ordering::SeqCst);
    let before = count();
    let page = repo
        .find_job_executions(&ExecutionQuery::new().limit(20))
        .await
        .unwrap();
    assert_eq!(page.len(), 20.min(page.len()));
    let page_cost = count() - before;
    let before = count();
    assert!(repo.job_execution(1).await.unwrap().is_some());
    let show_cost = count() - before;
    let before = count();
    let launched = JobLauncher::with_repository(repo.clone())
        .run(job(), JobParameters::new().with("run", run))
        .await
        .unwrap();
    assert_eq!(launched.status, BatchStatus::Completed);
    [page_cost, show_cost, count() - before]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_do_not_grow_with_history() {
    tracing::subscriber::set_global_default(Counter).expect("the only subscriber");
    let fresh = support::open_fresh(DbKind::Sqlite, "statements")
        .await
        .unwrap();
    let launcher = JobLauncher::with_repository(fresh.repo.clone());
    for run in 0..10 {
        launcher
            .run(job(), JobParameters::new().with("run", run))
            .await
            .unwrap();
    }
    let small = costs(&fresh.repo, 100).await;
    // 10,000 more executions, each with its instance, a parameter and a step.
    let history = [
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, VERSION, JOB_NAME, JOB_KEY) \
         SELECT 100000 + i, 0, 'counted', 'history-' || i FROM n",
        "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, VERSION, JOB_INSTANCE_ID, CREATE_TIME, START_TIME, END_TIME, STATUS, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) \
         SELECT JOB_INSTANCE_ID, 2, JOB_INSTANCE_ID, '2020-01-01 00:00:00', '2020-01-01 00:00:00', '2020-01-01 00:00:01', 'COMPLETED', 'COMPLETED', '', '2020-01-01 00:00:01' \
         FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID > 100000",
        "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING) \
         SELECT JOB_EXECUTION_ID, 'run', 'java.lang.Long', CAST(JOB_EXECUTION_ID AS TEXT), 'Y' FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID > 100000",
        "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, CREATE_TIME, START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, EXIT_MESSAGE, LAST_UPDATED) \
         SELECT JOB_EXECUTION_ID, 3, 's', JOB_EXECUTION_ID, CREATE_TIME, START_TIME, END_TIME, 'COMPLETED', 4, 25, 0, 25, 0, 0, 0, 0, 'COMPLETED', '', END_TIME FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID > 100000",
    ];
    let DbPool::Sqlite(pool) = &fresh.pool else {
        unreachable!("a SQLite repository")
    };
    let mut tx = pool.begin().await.unwrap();
    for sql in history {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let executions = support::int(&fresh.pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
    assert_eq!(executions, 10_013);
    let large = costs(&fresh.repo, 101).await;
    eprintln!(
        "statements (executions --limit 20, show ID, a launch): {small:?} with a dozen executions, {large:?} with {executions}"
    );
    assert_eq!(small, large);
}
