//! The job repository's contract, tested once and run on every implementation: the
//! launch rules, restart with the failed step's context, optimistic locking, recovery
//! from a dead owner and concurrent launches of one instance on the in-memory
//! repository, SQLite, PostgreSQL and MySQL/MariaDB; the 2500 rule and Spring's tables
//! (with the refusal of a wrong schema) on the three databases.
//!
//! Each case runs once per repository, as `memory::CASE`, `sqlite::CASE`,
//! `postgres::CASE` and `mysql::CASE`, on a fresh file, schema (PostgreSQL) or
//! database (MySQL) of its own. The servers come from `BATCH_TEST_POSTGRES_URL` and
//! `BATCH_TEST_MYSQL_URL` (see `tests/support`).

#[macro_use]
mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use batch::chunk::read_write;
use batch::execution::{JobExecution, StepExecution};
use batch::operator::{JobOperator, OperatorError};
use batch::prelude::*;
use batch::repository::{
    DbKind, ExecutionQuery, JobStatistics, LaunchError, PurgeRequest, RepositoryError,
    open_repository,
};
use batch::step::{StepBuilder, StepDef};

/// The repository under test: in memory, or on a fresh database.
struct Db {
    repo: Arc<dyn JobRepository>,
    fresh: Option<support::Fresh>,
}

impl Db {
    fn memory() -> Self {
        Self {
            repo: Arc::new(InMemoryJobRepository::new()),
            fresh: None,
        }
    }

    /// Another repository on the same store, standing for another process: a new
    /// pool on the database; the same store for the in-memory repository.
    async fn another(&self) -> Arc<dyn JobRepository> {
        match &self.fresh {
            Some(fresh) => open_repository(&fresh.url).await.unwrap(),
            None => self.repo.clone(),
        }
    }

    /// The database's pool, for checks of what the tables hold (`None` in memory).
    fn sql(&self) -> Option<&DbPool> {
        self.fresh.as_ref().map(|f| &f.pool)
    }

    fn database(&self) -> &support::Fresh {
        self.fresh.as_ref().expect("a case of the SQL repositories")
    }
}

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(fresh) = support::open_fresh(kind, name).await {
        let repo = fresh.repo.clone();
        case(Db {
            repo,
            fresh: Some(fresh),
        })
        .await;
    }
}

/// The cases every repository passes.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Db::memory()).await
                }
            )*
        }
        on_databases!(run; [sqlite => Sqlite]; [
            $($case,)*
            the_2500_rule,
            an_inconsistent_context_row_is_refused_by_table_and_id,
            a_spring_batch_4_schema_is_refused_before_any_write,
            parameters_too_long_are_refused_before_any_write,
            a_sequence_behind_its_table_says_how_to_mend_it,
            a_locked_database_fails_within_the_statement_timeout,
            a_run_whose_heartbeat_cannot_renew_its_lease_fails,
        ]);
        // SQLite's tables are checked through its own catalogue in `tests/core.rs`.
        on_databases!(run; [postgres => Postgres, mysql => MySql]; [
            $($case,)*
            the_2500_rule,
            an_inconsistent_context_row_is_refused_by_table_and_id,
            a_spring_batch_4_schema_is_refused_before_any_write,
            parameters_too_long_are_refused_before_any_write,
            a_sequence_behind_its_table_says_how_to_mend_it,
            spring_tables_and_schema_refusal,
            a_server_that_never_answers_fails,
            a_partition_mid_chunk_fails_the_run_and_leaves_no_locks,
        ]);
    };
}

contract!(
    launch_rules,
    restart_with_context,
    optimistic_locking,
    dead_owner_recovery,
    an_owner_in_another_pid_namespace_keeps_its_lease,
    a_running_step_in_the_last_execution_counts_as_running,
    a_context_of_the_wrong_shape_names_its_row,
    concurrent_launches,
    explorer_pages_and_details,
    statistics_and_the_parameter_filter,
    stop_through_the_repository,
    abandon_recover_and_refusals,
    start_next_and_purge,
);

use support::{job, only_step};

/// A chunk step of 2 over `items` whose reader fails on `fail_on` (see
/// `support::list_step`).
fn list_step(name: &str, items: &[&'static str], fail_on: Option<&'static str>) -> StepDef {
    support::list_step(name, 2, items.to_vec(), fail_on)
}

/// A step execution of `s` as a step starting in `job_execution_id` would record.
fn new_step(job_execution_id: i64, status: BatchStatus) -> StepExecution {
    let now = batch::execution::now();
    StepExecution {
        id: 0,
        version: 0,
        step_name: "s".into(),
        job_execution_id,
        create_time: now,
        start_time: Some(now),
        end_time: None,
        status,
        counts: Default::default(),
        exit_status: ExitStatus::executing(),
        last_updated: None,
        context: ExecutionContext::new(),
        failures: Vec::new(),
    }
}

async fn launch_rules(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let make = || job("once", vec![list_step("s", &["a", "b", "c"], None)]);
    let first = launcher
        .run(make(), JobParameters::new().with_non_identifying("x", 1i64))
        .await
        .unwrap();
    assert_eq!(first.status, BatchStatus::Completed);
    let s = only_step(&first);
    assert_eq!((s.counts.read, s.counts.write, s.counts.commit), (3, 3, 2));
    let err = launcher
        .run(make(), JobParameters::new().with_non_identifying("x", 2i64))
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::AlreadyComplete { .. }), "{err}");

    let dated = JobParameters::new().with("date", "2024-01-01");
    launcher.run(make(), dated.clone()).await.unwrap();
    let err = launcher.run(make(), dated.clone()).await.unwrap_err();
    assert!(matches!(err, LaunchError::AlreadyComplete { .. }), "{err}");
    let other = launcher
        .run(make(), JobParameters::new().with("date", "2024-01-02"))
        .await
        .unwrap();
    assert_eq!(other.status, BatchStatus::Completed);
    assert_ne!(other.instance.id, first.instance.id);

    // Two repositories on one database stand for two processes.
    let second = db.another().await;
    let params = JobParameters::new().with("k", "running");
    let running = db.repo.create_job_execution("j", &params).await.unwrap();
    assert_eq!(running.status, BatchStatus::Starting);
    match second.create_job_execution("j", &params).await {
        Err(LaunchError::AlreadyRunning { execution_id, .. }) => {
            assert_eq!(execution_id, running.id)
        }
        other => panic!("expected already running, got {other:?}"),
    }

    let found = db.repo.find_job_instance("once", &dated).await.unwrap();
    assert_eq!(found.map(|i| i.job_key), Some(dated.job_key()));
    if let Some(pool) = db.sql() {
        let stored = support::texts(
            pool,
            "SELECT PARAMETER_TYPE FROM BATCH_JOB_EXECUTION_PARAMS WHERE PARAMETER_NAME = 'x'",
        )
        .await;
        assert_eq!(stored[0].as_deref(), Some("java.lang.Long"));
    }
}

async fn restart_with_context(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let first_runs = Arc::new(AtomicUsize::new(0));
    let counter = first_runs.clone();
    let first = StepBuilder::new("first").tasklet(move |_| {
        let counter = counter.clone();
        async move {
            Ok(move |_: &mut TaskletContext<'_>| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(RepeatStatus::Finished)
            })
        }
    });
    let items = ["A", "B", "C", "D", "E"];
    let make = |fail| {
        job(
            "restartable",
            vec![first.clone(), list_step("second", &items, fail)],
        )
    };
    let failed = launcher
        .run(make(Some("C")), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let second = failed.step("second").unwrap();
    assert_eq!(
        (
            second.counts.commit,
            second.counts.read,
            second.counts.rollback
        ),
        (1, 2, 1)
    );
    if let Some(pool) = db.sql() {
        let saved = support::texts(
            pool,
            &format!(
                "SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = {}",
                second.id
            ),
        )
        .await;
        let saved: serde_json::Value = serde_json::from_str(saved[0].as_deref().unwrap()).unwrap();
        assert_eq!(saved["list.read.count"], 2);
    }

    let restarted = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    assert_eq!(restarted.instance.id, failed.instance.id);
    assert!(
        restarted.step("first").is_none(),
        "completed steps are skipped"
    );
    assert_eq!(first_runs.load(Ordering::SeqCst), 1);
    let second = only_step(&restarted);
    assert_eq!((second.counts.read, second.counts.write), (3, 3));

    let history = db.repo.job_executions(&restarted.instance).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].status, BatchStatus::Completed);
    assert_eq!(history[1].step_executions.len(), 2);
    let err = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::AlreadyComplete { .. }), "{err}");
}

async fn optimistic_locking(db: Db) {
    let repo = &db.repo;
    let mut execution = repo
        .create_job_execution("locking", &JobParameters::new())
        .await
        .unwrap();
    let mut stale = execution.clone();
    repo.update_job_execution(&mut execution).await.unwrap();
    let err = repo.update_job_execution(&mut stale).await.unwrap_err();
    assert!(
        matches!(err, RepositoryError::OptimisticLock { .. }),
        "{err}"
    );

    let mut step = new_step(execution.id, BatchStatus::Starting);
    repo.add_step_execution(&mut step).await.unwrap();
    let mut stale = step.clone();
    repo.update_step_execution(&mut step).await.unwrap();
    let err = repo.update_step_execution(&mut stale).await.unwrap_err();
    assert!(
        matches!(err, RepositoryError::OptimisticLock { .. }),
        "{err}"
    );
    assert_eq!(step.version, 1);
    if let Some(pool) = db.sql() {
        let version = support::int(
            pool,
            &format!(
                "SELECT VERSION FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = {}",
                step.id
            ),
        )
        .await;
        assert_eq!(version, 1);
    }
}

async fn the_2500_rule(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let big = StepBuilder::new("big").tasklet(|_| async {
        Ok(|cx: &mut TaskletContext<'_>| {
            cx.step_context().put("blob", &"x".repeat(3000))?;
            Ok::<_, Error>(RepeatStatus::Finished)
        })
    });
    let small = StepBuilder::new("small").tasklet(|_| async {
        Ok(|cx: &mut TaskletContext<'_>| {
            cx.step_context().put("n", &1)?;
            Ok::<_, Error>(RepeatStatus::Finished)
        })
    });
    let exec = launcher
        .run(job("big", vec![big, small]), JobParameters::new())
        .await
        .unwrap();
    let id = |name| exec.step(name).unwrap().id;
    let columns = |id: i64| {
        let pool = db.database().pool.clone();
        async move {
            let short = support::texts(
                &pool,
                &format!("SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = {id}"),
            )
            .await;
            let long = support::texts(
                &pool,
                &format!("SELECT SERIALIZED_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = {id}"),
            )
            .await;
            (short[0].clone().unwrap(), long[0].clone())
        }
    };
    let (short, long) = columns(id("big")).await;
    assert_eq!(short.chars().count(), 2496);
    assert!(short.ends_with(" ..."));
    let v: serde_json::Value = serde_json::from_str(&long.unwrap()).unwrap();
    assert_eq!(v["blob"].as_str().unwrap().len(), 3000);
    let (short, long) = columns(id("small")).await;
    assert_eq!(short, r#"{"n":1}"#);
    assert_eq!(
        long, None,
        "a short context leaves SERIALIZED_CONTEXT empty"
    );
}

async fn spring_tables_and_schema_refusal(db: Db) {
    let db = db.database();
    // The columns, in Spring's order, and the types that differ by dialect.
    let (columns_sql, type_sql) = match db.kind {
        DbKind::Postgres => (
            "SELECT upper(column_name::text) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'batch_step_execution' ORDER BY ordinal_position",
            "SELECT data_type::text || '(' || coalesce(character_maximum_length::text, '') || ')' FROM information_schema.columns WHERE table_schema = current_schema() AND table_name IN ('batch_job_execution', 'batch_step_execution') AND column_name IN ('exit_code', 'create_time') ORDER BY table_name, column_name",
        ),
        _ => (
            "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'BATCH_STEP_EXECUTION' ORDER BY ORDINAL_POSITION",
            "SELECT CAST(COLUMN_TYPE AS CHAR) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('BATCH_JOB_EXECUTION', 'BATCH_STEP_EXECUTION') AND COLUMN_NAME IN ('EXIT_CODE', 'CREATE_TIME') ORDER BY TABLE_NAME, COLUMN_NAME",
        ),
    };
    let columns: Vec<String> = support::texts(&db.pool, columns_sql)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(columns, support::STEP_EXECUTION_COLUMNS);
    let types: Vec<String> = support::texts(&db.pool, type_sql)
        .await
        .into_iter()
        .flatten()
        .collect();
    let expected = match db.kind {
        DbKind::Postgres => ["timestamp without time zone()", "character varying(2500)"],
        _ => ["datetime(6)", "varchar(2500)"],
    };
    assert_eq!(types, [expected, expected].concat());
    // The sequences: Spring's names, and ids taken from them.
    let sequences = match db.kind {
        DbKind::Postgres => {
            "SELECT COUNT(*) FROM information_schema.sequences WHERE sequence_schema = current_schema() AND sequence_name IN ('batch_job_seq', 'batch_job_execution_seq', 'batch_step_execution_seq')"
        }
        _ => {
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('BATCH_JOB_SEQ', 'BATCH_JOB_EXECUTION_SEQ', 'BATCH_STEP_EXECUTION_SEQ') AND COLUMN_NAME IN ('ID', 'UNIQUE_KEY')"
        }
    };
    let expected = if db.kind == DbKind::Postgres { 3 } else { 6 };
    assert_eq!(support::int(&db.pool, sequences).await, expected);
    let first = db
        .repo
        .create_job_execution("ids", &JobParameters::new())
        .await
        .unwrap();
    assert_eq!((first.instance.id, first.id), (1, 1));
    // Opening again finds the tables and leaves them as they are.
    drop(open_repository(&db.url).await.unwrap());

    // A table of the same name without Spring's columns is refused, by name.
    db.pool
        .execute("DROP TABLE BATCH_STEP_EXECUTION_CONTEXT")
        .await
        .unwrap();
    db.pool
        .execute(
            "CREATE TABLE BATCH_STEP_EXECUTION_CONTEXT (STEP_EXECUTION_ID BIGINT, CONTEXT TEXT)",
        )
        .await
        .unwrap();
    let err = open_repository(&db.url).await.err().expect("refused");
    assert!(
        matches!(err, RepositoryError::SchemaMismatch { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("BATCH_STEP_EXECUTION_CONTEXT") && text.contains("SHORT_CONTEXT"),
        "{text}"
    );
}

async fn dead_owner_recovery(db: Db) {
    let params = JobParameters::new().with("k", "crash");
    // A run owned by a process that has exited, left STARTED as `kill -9` leaves it.
    let (pid, record) = support::exited_owner();
    let mut dead = db
        .repo
        .create_job_execution("crashy", &params)
        .await
        .unwrap();
    dead.status = BatchStatus::Started;
    dead.exit_status = ExitStatus::executing().with_description(record);
    db.repo.update_job_execution(&mut dead).await.unwrap();
    let mut step = new_step(dead.id, BatchStatus::Started);
    step.context.put("list.read.count", &1u64).unwrap();
    db.repo.add_step_execution(&mut step).await.unwrap();

    let launcher = JobLauncher::with_repository(db.repo.clone());
    let restarted = launcher
        .run(
            job("crashy", vec![list_step("s", &["a", "b", "c"], None)]),
            params,
        )
        .await
        .unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    assert_eq!(restarted.instance.id, dead.instance.id);
    assert_eq!(
        only_step(&restarted).counts.read,
        2,
        "the dead run's step context is restored"
    );
    let history = db.repo.job_executions(&dead.instance).await.unwrap();
    let old = history.iter().find(|e| e.id == dead.id).unwrap();
    assert_eq!(old.status, BatchStatus::Failed);
    assert!(
        old.exit_status
            .description
            .contains(&format!("process {pid}"))
            && old.exit_status.description.contains("gone"),
        "{:?}",
        old.exit_status
    );
    assert_eq!(old.step_executions[0].status, BatchStatus::Failed);
}

async fn concurrent_launches(db: Db) {
    // Eight repositories (eight pools) race to create one new instance.
    let params = JobParameters::new().with("k", "race");
    let mut handles = Vec::new();
    for _ in 0..8 {
        let repo = db.another().await;
        let params = params.clone();
        handles.push(tokio::spawn(async move {
            repo.create_job_execution("race", &params).await
        }));
    }
    let (mut ok, mut running) = (0, 0);
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LaunchError::AlreadyRunning { .. }) => running += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, running), (1, 7));
    if let Some(pool) = db.sql() {
        let executions = support::int(pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
        assert_eq!(executions, 1);
    }
}

/// A TCP proxy on loopback in front of `target` (`host:port`): it forwards both ways
/// until `freeze` is set, then holds every byte, as a hung server or a network
/// partition does. Returns its port.
async fn freezing_proxy(target: String, freeze: Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut from, mut to) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                ),
                (Box::new(sr), Box::new(cw)),
            ] {
                let freeze = freeze.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        while freeze.load(Ordering::SeqCst) {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    port
}

/// `url` with its `host:port` replaced by `127.0.0.1:port`, and `options` appended.
fn through(url: &str, port: u16, options: &str) -> (String, String) {
    let start = url
        .find('@')
        .map(|i| i + 1)
        .unwrap_or_else(|| url.find("://").unwrap() + 3);
    let end = start + url[start..].find('/').unwrap();
    let target = url[start..end].to_owned();
    let rebuilt = format!("{}127.0.0.1:{port}{}", &url[..start], &url[end..]);
    let sep = if rebuilt.contains('?') { '&' } else { '?' };
    (format!("{rebuilt}{sep}{options}"), target)
}

/// Item: a server that accepts the connection but never answers fails the launch
/// within bounded time, with an error that says so, instead of hanging.
async fn a_server_that_never_answers_fails(db: Db) {
    let db = db.database();
    // 1. It accepts the connection and never answers: connecting fails.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let (url, _) = through(&db.url, port, "connect_timeout=1");
    let opened = tokio::time::timeout(std::time::Duration::from_secs(30), open_repository(&url))
        .await
        .expect("opening must not hang");
    let err = opened.err().expect("no answer, no repository");
    assert!(matches!(err, RepositoryError::Unreachable { .. }), "{err}");
    let report = Error::from(err).report();
    assert!(
        report.contains("no answer within 1 s of connecting"),
        "{report}"
    );
    held.abort();

    // 2. It answers, then stops answering (a partition): the next operation fails.
    let freeze = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (_, target) = through(&db.url, 0, "");
    let port = freezing_proxy(target, freeze.clone()).await;
    let (url, _) = through(&db.url, port, "connect_timeout=2&statement_timeout=1");
    let repo = open_repository(&url).await.unwrap();
    freeze.store(true, Ordering::SeqCst);
    let launched = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        repo.create_job_execution("hung", &JobParameters::new()),
    )
    .await
    .expect("the launch must not hang");
    match launched {
        Err(LaunchError::Repository(RepositoryError::TimedOut { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let text = launched.unwrap_err().to_string();
    assert!(
        text.contains("no answer from the database within 1 s"),
        "{text}"
    );
}

/// Item: a network partition while a chunk's transaction is open, in the middle of
/// the writer's own statements. The run fails within bounded time instead of hanging,
/// and the server ends the cut-off session, so the chunk is rolled back and its locks
/// are freed (before, PostgreSQL kept it `idle in transaction` and MySQL kept it open,
/// holding the rows' locks until TCP gave up).
async fn a_partition_mid_chunk_fails_the_run_and_leaves_no_locks(db: Db) {
    let db = db.database();
    db.pool
        .execute("CREATE TABLE held (id BIGINT NOT NULL PRIMARY KEY)")
        .await
        .unwrap();
    let freeze = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (_, target) = through(&db.url, 0, "");
    let port = freezing_proxy(target, freeze.clone()).await;
    let (url, _) = through(&db.url, port, "connect_timeout=1&statement_timeout=1");
    let repo = open_repository(&url).await.unwrap();

    // Chunks [1, 2] and [3, 4]: the second is cut off after its insert of 3 reached
    // the server and before its insert of 4 does.
    let cut = freeze.clone();
    let step = StepBuilder::new("cut").chunk_size(2).chunk(move |_| {
        let cut = cut.clone();
        async move {
            let writer =
                batch::adapt::async_writer(move |items: &[i64], cx: &mut WriteContext<'_>| {
                    let cut = cut.clone();
                    Box::pin(async move {
                        for &id in items {
                            if id == 4 {
                                cut.store(true, Ordering::SeqCst);
                            }
                            insert_held(cx, id).await?;
                        }
                        Ok(())
                    })
                });
            Ok(read_write(ListReader::new(vec![1i64, 2, 3, 4]), writer))
        }
    });
    let launcher = JobLauncher::with_repository(repo);
    let ran = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        launcher.run(job("partitioned", vec![step]), JobParameters::new()),
    )
    .await
    .expect("the run must not hang");
    let report = match ran {
        Ok(execution) => {
            assert_ne!(execution.status, BatchStatus::Completed, "{execution:?}");
            execution
                .all_failures()
                .map(|e| e.report())
                .collect::<Vec<_>>()
                .join("\n")
        }
        // The outage also kept the run's end from being saved: the error says how
        // the run ended, the step's failure with it.
        Err(e @ LaunchError::EndNotSaved { .. }) => Error::from(e).report(),
        Err(other) => panic!("the run ended before its end was saved: {other:?}"),
    };
    assert!(
        report.contains("writing a chunk in its transaction"),
        "the writer's statement was cut off: {report}"
    );

    // The cut chunk's row 3 is locked until the server ends its session: an insert
    // of the same key from another session waits for that, then succeeds (the
    // servers' own lock waits are longer than this bound).
    let inserted = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        db.pool.execute("INSERT INTO held (id) VALUES (3)"),
    )
    .await
    .expect("the cut-off session's locks are freed");
    inserted.expect("its chunk was rolled back, row 3 with it");
    let ids = support::int(&db.pool, "SELECT COUNT(*) FROM held").await;
    assert_eq!(
        ids, 3,
        "rows 1 and 2 of the committed chunk, and the 3 inserted here"
    );
}

/// Inserts `id` into `held` in the chunk's transaction, on whichever server.
async fn insert_held(cx: &mut WriteContext<'_>, id: i64) -> Result<()> {
    match cx.transaction().kind() {
        Some(DbKind::Postgres) => {
            sqlx::query("INSERT INTO held (id) VALUES ($1)")
                .bind(id)
                .execute(cx.postgres()?)
                .await?;
        }
        _ => {
            sqlx::query("INSERT INTO held (id) VALUES (?)")
                .bind(id)
                .execute(cx.mysql()?)
                .await?;
        }
    }
    Ok(())
}

/// Processes opening a new SQLite file at once (a launch and a console started
/// together) all get the repository: the losers of the race to set the file up wait
/// for it rather than fail with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_opened_at_once_by_many_opens_for_all() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let url = format!(
            "sqlite:{}",
            dir.path().join(format!("race{round}.db")).display()
        );
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { open_repository(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            let opened = open.await.unwrap();
            assert!(opened.is_ok(), "round {round}: {:?}", opened.err());
        }
    }
}

/// On SQLite the statement timeout is also the wait for another process's write lock:
/// a launch blocked by a held lock fails within it.
async fn a_locked_database_fails_within_the_statement_timeout(db: Db) {
    let db = db.database();
    let DbPool::Sqlite(pool) = &db.pool else {
        unreachable!()
    };
    let mut holder = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO BATCH_JOB_SEQ (ID) VALUES (NULL)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let url = format!("{}?statement_timeout=1", db.url);
    let repo = open_repository(&url).await;
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        match repo {
            Ok(repo) => repo
                .create_job_execution("locked", &JobParameters::new())
                .await
                .map(|_| ())
                .map_err(Error::from),
            Err(e) => Err(Error::from(e)),
        }
    })
    .await
    .expect("the launch must end within the statement timeout, not the default 60 s");
    let report = outcome.expect_err("the database is locked").report();
    assert!(
        report.contains("locked") || report.contains("no answer"),
        "{report}"
    );
    holder.rollback().await.unwrap();
}

/// Containers on one host may share its host name, each with its own pids: the owner
/// record names the boot and PID namespace, and an owner in another one is judged by
/// its heartbeat only, never by this host's /proc.
async fn an_owner_in_another_pid_namespace_keeps_its_lease(db: Db) {
    let params = JobParameters::new().with("k", "container");
    let mut running = db
        .repo
        .create_job_execution("contained", &params)
        .await
        .unwrap();
    // What a launch stores: this process, its boot and its PID namespace.
    let stored = db.repo.job_executions(&running.instance).await.unwrap();
    let record = stored[0].exit_status.description.clone();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = ns.to_string_lossy();
    let inode = ns.trim_start_matches("pid:[").trim_end_matches(']');
    // (The in-memory repository names no owner at creation.)
    assert!(
        db.sql().is_none()
            || record.contains(&format!("(boot {}, pid namespace {inode})", boot.trim())),
        "{record}"
    );
    // The same host name, a pid that does not exist here, another PID namespace, and
    // a fresh heartbeat: alive.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    running.status = BatchStatus::Started;
    running.exit_status = ExitStatus::executing().with_description(format!(
        "running in process {pid} (started 99) on {} (boot {}, pid namespace 1{inode})",
        host.trim(),
        boot.trim()
    ));
    db.repo.update_job_execution(&mut running).await.unwrap();
    let again = db.repo.create_job_execution("contained", &params).await;
    assert!(
        matches!(again, Err(LaunchError::AlreadyRunning { .. })),
        "{again:?}"
    );
}

/// Spring's launcher looks at the last execution's steps too: one still running (its
/// execution ended by hand, say) refuses the launch while its owner lives, and is
/// marked FAILED once its owner is dead; one that ended UNKNOWN cannot be restarted.
async fn a_running_step_in_the_last_execution_counts_as_running(db: Db) {
    let params = JobParameters::new().with("k", "ended-by-hand");
    let mut ended = db
        .repo
        .create_job_execution("handy", &params)
        .await
        .unwrap();
    ended.status = BatchStatus::Failed;
    ended.exit_status = ExitStatus::failed();
    ended.end_time = Some(batch::execution::now());
    db.repo.update_job_execution(&mut ended).await.unwrap();
    // This very process owns the step: alive.
    let mut step = new_step(ended.id, BatchStatus::Started);
    step.exit_status =
        ExitStatus::executing().with_description(batch::repository::owner::current_owner());
    db.repo.add_step_execution(&mut step).await.unwrap();
    db.repo.update_step_execution(&mut step).await.unwrap();
    let refused = db.repo.create_job_execution("handy", &params).await;
    match &refused {
        Err(e @ LaunchError::StepStillRunning { step, status, .. }) => {
            assert_eq!((step.as_str(), *status), ("s", BatchStatus::Started));
            assert!(e.to_string().contains("already running"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Its process gone, the step is marked FAILED and the instance restarts.
    let (pid, record) = support::exited_owner();
    step.exit_status = ExitStatus::executing().with_description(record);
    db.repo.update_step_execution(&mut step).await.unwrap();
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let restarted = launcher
        .run(job("handy", vec![list_step("s", &["a"], None)]), params)
        .await
        .unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    let history = db.repo.job_executions(&ended.instance).await.unwrap();
    let old = &history
        .iter()
        .find(|e| e.id == ended.id)
        .unwrap()
        .step_executions[0];
    assert_eq!(old.status, BatchStatus::Failed);
    assert!(
        old.exit_status
            .description
            .contains(&format!("process {pid}"))
            && old.exit_status.description.contains("found dead"),
        "{:?}",
        old.exit_status
    );
    // A step of the finished run names no owner any more.
    let done = only_step(&restarted);
    assert_eq!(done.exit_status.description, "", "{:?}", done.exit_status);

    // A step that ended UNKNOWN in the last execution: not restartable.
    let params = JobParameters::new().with("k", "unknown-step");
    let mut last = db
        .repo
        .create_job_execution("handy", &params)
        .await
        .unwrap();
    last.status = BatchStatus::Failed;
    db.repo.update_job_execution(&mut last).await.unwrap();
    let mut step = new_step(last.id, BatchStatus::Unknown);
    db.repo.add_step_execution(&mut step).await.unwrap();
    db.repo.update_step_execution(&mut step).await.unwrap();
    let refused = db.repo.create_job_execution("handy", &params).await;
    assert!(
        matches!(&refused, Err(LaunchError::NotRestartable { reason, .. }) if reason.contains("step `s`") && reason.contains("UNKNOWN")),
        "{refused:?}"
    );
}

/// A run whose heartbeat cannot renew its lease (the database refuses it, as when the
/// heartbeat's connection is cut off while the run works on) must not work on beside
/// the restart another host may start once the lease has run out: its step fails at
/// the next chunk, and the instance restarts from the last commit.
async fn a_run_whose_heartbeat_cannot_renew_its_lease_fails(db: Db) {
    let pool = db.sql().unwrap().clone();
    // The heartbeat alone changes LAST_UPDATED without a new VERSION.
    for ddl in [
        "CREATE TABLE heartbeat_block (x INTEGER)",
        "CREATE TRIGGER refuse_heartbeat BEFORE UPDATE OF LAST_UPDATED ON BATCH_JOB_EXECUTION \
         WHEN NEW.VERSION = OLD.VERSION AND EXISTS (SELECT 1 FROM heartbeat_block) \
         BEGIN SELECT RAISE(ABORT, 'the heartbeat is refused'); END",
    ] {
        pool.execute(ddl).await.unwrap();
    }
    let lease = std::time::Duration::from_millis(400);
    let repo: Arc<dyn JobRepository> = Arc::new(
        batch::repository::SqliteJobRepository::open(&db.database().url)
            .await
            .unwrap()
            .with_lease(lease),
    );
    let step = || {
        StepBuilder::new("slow").chunk_size(1).chunk(|_| async {
            let next = Arc::new(AtomicUsize::new(0));
            let reader = batch::adapt::async_reader(move || {
                let next = next.clone();
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    Ok((i < 60).then_some(i))
                })
            });
            Ok(read_write(
                reader,
                batch::adapt::writer(|_: &[usize]| Ok(())),
            ))
        })
    };
    let launcher = JobLauncher::with_repository(repo.clone());
    let params = JobParameters::new().with("k", "lease");
    let block = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            pool.execute("INSERT INTO heartbeat_block VALUES (1)")
                .await
                .unwrap();
        })
    };
    let failed = launcher
        .run(Job::new("leased", Flow::start(step())), params.clone())
        .await
        .unwrap();
    block.await.unwrap();
    let s = only_step(&failed);
    assert_eq!(
        (failed.status, s.status),
        (BatchStatus::Failed, BatchStatus::Failed),
        "{:?}",
        s.exit_status
    );
    assert!(
        s.exit_status
            .description
            .contains("has not renewed the run's lease"),
        "{:?}",
        s.exit_status
    );
    assert!(
        s.counts.write < 60,
        "it stopped before the end: {:?}",
        s.counts
    );
    pool.execute("DELETE FROM heartbeat_block").await.unwrap();
    let done = launcher
        .run(Job::new("leased", Flow::start(step())), params)
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
}

/// A step that stores `value` as `list.read.count` and fails: what a bad deployment
/// or a hand-edited row leaves behind.
fn bad_shape_step(value: serde_json::Value) -> StepDef {
    StepBuilder::new("s").tasklet(move |_| {
        let value = value.clone();
        async move {
            Ok(move |cx: &mut TaskletContext<'_>| {
                cx.step_context()
                    .put_value("list.read.count", value.clone());
                Err::<RepeatStatus, _>(Error::msg("stop here"))
            })
        }
    })
}

/// The text of a launch's failure: its error, or the failed step's exit description.
fn failure_text(outcome: std::result::Result<JobExecution, LaunchError>) -> String {
    match outcome {
        Err(e) => Error::from(e).report(),
        Ok(exec) => {
            assert_ne!(exec.status, BatchStatus::Completed, "{exec:?}");
            let steps: Vec<String> = exec
                .step_executions
                .iter()
                .map(|s| s.exit_status.description.clone())
                .collect();
            format!("{} {}", exec.exit_status.description, steps.join(" "))
        }
    }
}

/// A context of the wrong shape (`"two"` where the reader keeps a count) names its
/// table and row; the failed restart does not save it again, and mending the named
/// row is enough for the next restart.
async fn a_context_of_the_wrong_shape_names_its_row(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let params = JobParameters::new().with("k", "shape");
    let first = launcher
        .run(
            job("shape", vec![bad_shape_step(serde_json::json!("two"))]),
            params.clone(),
        )
        .await
        .unwrap();
    assert_eq!(first.status, BatchStatus::Failed);
    let restart = || job("shape", vec![list_step("s", &["a", "b", "c"], None)]);
    let second = launcher.run(restart(), params.clone()).await.unwrap();
    assert_eq!(second.status, BatchStatus::Failed);
    let step = only_step(&second);
    let text = &step.exit_status.description;
    assert!(
        text.contains(&format!(
            "BATCH_STEP_EXECUTION_CONTEXT with STEP_EXECUTION_ID = {}",
            step.id
        )) && text.contains("list.read.count"),
        "{text}"
    );
    let Some(pool) = db.sql() else { return };
    // Mend the named row: the next restart reads it.
    pool.execute(&format!(
        "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = '{{\"list.read.count\":1}}' WHERE STEP_EXECUTION_ID = {}",
        step.id
    ))
    .await
    .unwrap();
    let third = launcher.run(restart(), params).await.unwrap();
    assert_eq!(third.status, BatchStatus::Completed, "{third:?}");
    assert_eq!(only_step(&third).counts.read, 2);
}

/// A context row whose SHORT_CONTEXT and SERIALIZED_CONTEXT disagree is refused with
/// its table and id, rather than read from one of them.
async fn an_inconsistent_context_row_is_refused_by_table_and_id(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let params = JobParameters::new().with("k", "torn");
    let big = serde_json::json!({ "n": 2, "pad": "x".repeat(3000) });
    let first = launcher
        .run(job("torn", vec![bad_shape_step(big)]), params.clone())
        .await
        .unwrap();
    let id = only_step(&first).id;
    // SERIALIZED_CONTEXT changed behind the repository's back.
    db.database()
        .pool
        .execute(&format!(
            "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SERIALIZED_CONTEXT = '{{\"list.read.count\":2}}' WHERE STEP_EXECUTION_ID = {id}"
        ))
        .await
        .unwrap();
    let outcome = launcher
        .run(
            job("torn", vec![list_step("s", &["a", "b", "c"], None)]),
            params,
        )
        .await;
    let text = failure_text(outcome);
    assert!(
        text.contains(&format!(
            "BATCH_STEP_EXECUTION_CONTEXT with STEP_EXECUTION_ID = {id}"
        )) && text.contains("inconsistent"),
        "{text}"
    );
}

/// A Spring Batch 4.x schema whose columns were renamed to 5's names by hand (no 5.0
/// migration): the names are all there, but START_TIME is still NOT NULL, TYPE_CD's
/// VARCHAR(6) became PARAMETER_TYPE and 4.x's NOT NULL JOB_CONFIGURATION_LOCATION-like
/// columns remain. Refused when the repository opens, before any row is written.
async fn a_spring_batch_4_schema_is_refused_before_any_write(db: Db) {
    let db = db.database();
    for table in [
        "BATCH_STEP_EXECUTION_CONTEXT",
        "BATCH_JOB_EXECUTION_CONTEXT",
        "BATCH_STEP_EXECUTION",
        "BATCH_JOB_EXECUTION_PARAMS",
    ] {
        db.pool
            .execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
    let time = if db.kind == DbKind::MySql {
        "DATETIME(6)"
    } else {
        "TIMESTAMP"
    };
    db.pool
        .execute(
            "CREATE TABLE BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID BIGINT NOT NULL, \
             PARAMETER_TYPE VARCHAR(6) NOT NULL, PARAMETER_NAME VARCHAR(100) NOT NULL, \
             PARAMETER_VALUE VARCHAR(250), DATE_VAL TIMESTAMP NULL, LONG_VAL BIGINT, \
             DOUBLE_VAL DOUBLE PRECISION, IDENTIFYING CHAR(1) NOT NULL)",
        )
        .await
        .unwrap();
    db.pool
        .execute(&format!(
            "CREATE TABLE BATCH_STEP_EXECUTION (STEP_EXECUTION_ID BIGINT NOT NULL PRIMARY KEY, \
             VERSION BIGINT NOT NULL, STEP_NAME VARCHAR(100) NOT NULL, JOB_EXECUTION_ID BIGINT NOT NULL, \
             CREATE_TIME {time} NOT NULL, START_TIME {time} NOT NULL, END_TIME {time} NULL, \
             STATUS VARCHAR(10), COMMIT_COUNT BIGINT, READ_COUNT BIGINT, FILTER_COUNT BIGINT, \
             WRITE_COUNT BIGINT, READ_SKIP_COUNT BIGINT, WRITE_SKIP_COUNT BIGINT, \
             PROCESS_SKIP_COUNT BIGINT, ROLLBACK_COUNT BIGINT, EXIT_CODE VARCHAR(2500), \
             EXIT_MESSAGE VARCHAR(2500), LAST_UPDATED {time} NULL, JOB_CONFIGURATION_NAME VARCHAR(100) NOT NULL)"
        ))
        .await
        .unwrap();
    let err = open_repository(&db.url).await.err().expect("refused");
    assert!(
        matches!(err, RepositoryError::SchemaMismatch { .. }),
        "{err}"
    );
    let text = err.to_string();
    for expected in [
        "START_TIME is NOT NULL",
        "JOB_CONFIGURATION_NAME is not a Spring Batch 5 column",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    if db.kind != DbKind::Sqlite {
        // The servers enforce lengths: java.lang.String does not fit in 6.
        assert!(text.contains("PARAMETER_TYPE holds 6 characters"), "{text}");
        assert!(text.contains("PARAMETER_VALUE holds 250"), "{text}");
    }
    assert_eq!(
        support::int(&db.pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await,
        0,
        "nothing was written"
    );
}

/// A parameter name over 100 characters or a value over 2,500 is refused before any
/// row is written, naming the parameter and the limit, on every database alike
/// (SQLite stored them, PostgreSQL refused at run time, a lax MariaDB truncated).
async fn parameters_too_long_are_refused_before_any_write(db: Db) {
    let long_name = "n".repeat(101);
    let cases = [
        (
            JobParameters::new().with(long_name.as_str(), "v"),
            "at most 100",
        ),
        (
            JobParameters::new().with("blob", "x".repeat(2501).as_str()),
            "at most 2500",
        ),
    ];
    for (params, limit) in cases {
        let err = db
            .repo
            .create_job_execution("long", &params)
            .await
            .expect_err("too long");
        assert!(
            matches!(
                err,
                LaunchError::Repository(RepositoryError::InvalidParameters(_))
            ),
            "{err}"
        );
        let report = Error::from(err).report();
        let name = params.iter().next().unwrap().0.to_owned();
        assert!(
            report.contains(&format!("`{name}`")) && report.contains(limit),
            "{report}"
        );
    }
    let pool = &db.database().pool;
    assert_eq!(
        support::int(pool, "SELECT COUNT(*) FROM BATCH_JOB_INSTANCE").await,
        0
    );
    // The limits themselves fit, whole.
    let fits = JobParameters::new().with("n".repeat(100).as_str(), "x".repeat(2500).as_str());
    db.repo.create_job_execution("long", &fits).await.unwrap();
    let stored = support::texts(
        pool,
        "SELECT PARAMETER_VALUE FROM BATCH_JOB_EXECUTION_PARAMS",
    )
    .await;
    assert_eq!(stored[0].as_deref().map(str::len), Some(2500));
    if db.database().kind == DbKind::MySql {
        let mode = support::texts(pool, "SELECT CAST(@@SESSION.sql_mode AS CHAR)").await;
        let mode = mode[0].clone().unwrap_or_default();
        assert!(mode.contains("STRICT_ALL_TABLES"), "{mode}");
    }
}

/// A sequence behind its table's ids (a restore, rows copied in by hand) is named,
/// with a statement that mends it, instead of 20 silent retries and a unique-key error.
async fn a_sequence_behind_its_table_says_how_to_mend_it(db: Db) {
    let fresh = db.database();
    for k in ["a", "b"] {
        let params = JobParameters::new().with("k", k);
        db.repo.create_job_execution("seq", &params).await.unwrap();
    }
    let reset: &[&str] = match fresh.kind {
        DbKind::Sqlite => &[
            "DELETE FROM BATCH_JOB_SEQ",
            "DELETE FROM sqlite_sequence WHERE name = 'BATCH_JOB_SEQ'",
        ],
        DbKind::Postgres => &["ALTER SEQUENCE batch_job_seq RESTART WITH 1"],
        DbKind::MySql => &["UPDATE BATCH_JOB_SEQ SET ID = 0"],
    };
    for sql in reset {
        fresh.pool.execute(sql).await.unwrap();
    }
    let params = JobParameters::new().with("k", "c");
    let err = db
        .repo
        .create_job_execution("seq", &params)
        .await
        .expect_err("the sequence gives a taken id");
    let LaunchError::Repository(RepositoryError::SequenceBehind { max, fix, .. }) = &err else {
        panic!("{err}");
    };
    assert_eq!(*max, 2);
    let text = err.to_string();
    assert!(
        text.contains("BATCH_JOB_SEQ is behind BATCH_JOB_INSTANCE") && text.contains(fix.as_str()),
        "{text}"
    );
    // The statement it gives mends it.
    fresh.pool.execute(fix).await.unwrap();
    let mended = db.repo.create_job_execution("seq", &params).await.unwrap();
    assert_eq!(mended.instance.id, 3);
}

fn operator(db: &Db) -> JobOperator {
    JobOperator::new(JobLauncher::with_repository(db.repo.clone()))
}

async fn explorer_pages_and_details(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    for (name, run, fail) in [("b", 1, None), ("a", 2, Some("c")), ("b", 3, None)] {
        launcher
            .run(
                job(name, vec![list_step("s", &["a", "b", "c"], fail)]),
                JobParameters::new().with("run", run as i64),
            )
            .await
            .unwrap();
    }
    assert_eq!(db.repo.job_names().await.unwrap(), ["a", "b"]);
    let all = db
        .repo
        .find_job_executions(&ExecutionQuery::new())
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2, 1]);
    let b = db
        .repo
        .find_job_executions(&ExecutionQuery::new().job("b"))
        .await
        .unwrap();
    assert_eq!(b.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 1]);
    let failed = ExecutionQuery::new().status(BatchStatus::Failed);
    let failed = db.repo.find_job_executions(&failed).await.unwrap();
    assert_eq!(
        (failed.len(), failed[0].instance.job_name.as_str()),
        (1, "a")
    );
    let page = ExecutionQuery::new().limit(1).before(3);
    let page = db.repo.find_job_executions(&page).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [2]);
    let running = ExecutionQuery::new().running();
    assert!(
        db.repo
            .find_job_executions(&running)
            .await
            .unwrap()
            .is_empty()
    );
    let one = db
        .repo
        .job_execution(2)
        .await
        .unwrap()
        .expect("execution 2");
    assert_eq!(one.status, BatchStatus::Failed);
    assert_eq!(one.parameters.get_as::<i64>("run").unwrap(), 2);
    let step = only_step(&one);
    assert_eq!((step.counts.read, step.status), (2, BatchStatus::Failed));
    assert!(
        step.exit_status.description.contains("failed on c"),
        "{:?}",
        step.exit_status
    );
    assert_eq!(step.context.get::<u64>("list.read.count").unwrap(), Some(2));
    assert!(db.repo.job_execution(99).await.unwrap().is_none());
    assert_eq!(
        db.repo.job_execution_status(1).await.unwrap(),
        Some((BatchStatus::Completed, 2))
    );
}

/// What the console's pages and `/metrics` add up: executions by job and status with
/// their total duration, from one grouped statement; and executions found by the value
/// of a parameter.
async fn statistics_and_the_parameter_filter(db: Db) {
    let launcher = JobLauncher::with_repository(db.repo.clone());
    for (name, run, fail) in [
        ("b", 1, None),
        ("a", 2, Some("c")),
        ("b", 3, None),
        ("b", 4, Some("b")),
    ] {
        launcher
            .run(
                job(name, vec![list_step("s", &["a", "b", "c"], fail)]),
                JobParameters::new()
                    .with("run", run as i64)
                    .with("label", format!("<b>{run}</b>")),
            )
            .await
            .unwrap();
    }
    let rows = db.repo.execution_statistics().await.unwrap();
    let mut expected = Vec::new();
    for id in 1..=4 {
        let e = db.repo.job_execution(id).await.unwrap().unwrap();
        let millis = (e.end_time.unwrap() - e.start_time.unwrap()).num_milliseconds();
        expected.push((e.instance.job_name, e.status, millis));
    }
    let find = |job: &str, status| {
        rows.iter()
            .find(|r| r.job_name == job && r.status == status)
            .unwrap_or_else(|| panic!("a row for {job} {status}: {rows:?}"))
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (job, status, count) in [
        ("a", BatchStatus::Failed, 1),
        ("b", BatchStatus::Completed, 2),
        ("b", BatchStatus::Failed, 1),
    ] {
        let row = find(job, status);
        let total: i64 = expected
            .iter()
            .filter(|(j, s, _)| j == job && *s == status)
            .map(|(_, _, m)| m)
            .sum();
        assert_eq!((row.executions, row.timed), (count, count), "{row:?}");
        assert!(
            (row.total_millis - total).abs() <= count as i64,
            "{row:?} vs {total} ms"
        );
    }
    let jobs = JobStatistics::by_job(&rows);
    assert_eq!(
        jobs.iter()
            .map(|j| (j.job_name.as_str(), j.executions))
            .collect::<Vec<_>>(),
        [("a", 1), ("b", 3)]
    );
    let by = |name: &str, value: &str| {
        let q = ExecutionQuery::new().parameter(name, value);
        let db = db.repo.clone();
        async move {
            db.find_job_executions(&q)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by("run", "3").await, [3]);
    assert_eq!(by("label", "<b>2</b>").await, [2]);
    assert!(by("run", "5").await.is_empty());
    assert!(by("other", "3").await.is_empty());
    let q = ExecutionQuery::new().job("b").parameter("run", "2");
    assert!(db.repo.find_job_executions(&q).await.unwrap().is_empty());
}

async fn stop_through_the_repository(db: Db) {
    // Before reading its second chunk (no transaction open), the step waits, without
    // blocking a thread, until the test has asked for the stop from another
    // repository (another process).
    struct Held {
        inner: ListReader<String>,
        reads: usize,
        reached: Arc<tokio::sync::Notify>,
        go: Arc<tokio::sync::Notify>,
    }
    impl ItemReader<String> for Held {
        async fn read(&mut self) -> Result<Option<String>> {
            self.reads += 1;
            if self.reads == 3 {
                self.reached.notify_one();
                self.go.notified().await;
            }
            self.inner.read().await
        }
        fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
            self.inner.open(ctx)
        }
        fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
            self.inner.update(ctx)
        }
    }
    let reached = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(tokio::sync::Notify::new());
    let written = Arc::new(AtomicUsize::new(0));
    let (w, r, g) = (written.clone(), reached.clone(), go.clone());
    let step = StepBuilder::new("s").chunk_size(2).chunk(move |_| {
        let (w, reached, go) = (w.clone(), r.clone(), g.clone());
        async move {
            let reader = Held {
                inner: ListReader::new((1..=6).map(|i| i.to_string()).collect::<Vec<_>>())
                    .restartable("list"),
                reads: 0,
                reached,
                go,
            };
            Ok(read_write(reader, move |items: &[String]| {
                w.fetch_add(items.len(), Ordering::SeqCst);
                Ok::<_, Error>(())
            }))
        }
    });
    let stoppable = Job::new("stoppable", Flow::start(step));
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let run = {
        let stoppable = stoppable.clone();
        tokio::spawn(async move { launcher.run(stoppable, JobParameters::new()).await })
    };
    reached.notified().await;
    let other = JobOperator::new(JobLauncher::with_repository(db.another().await));
    let running = db
        .repo
        .find_job_executions(&ExecutionQuery::new().running())
        .await
        .unwrap();
    let id = running[0].id;
    assert_eq!(other.stop(id).await.unwrap().status, BatchStatus::Stopping);
    go.notify_one();
    let stopped = run.await.unwrap().unwrap();
    assert_eq!(
        stopped.status,
        BatchStatus::Stopped,
        "{:?}",
        stopped.exit_status
    );
    let step = only_step(&stopped);
    // The stop came while the second chunk was being read: that chunk commits, and
    // the step stops at its boundary.
    assert_eq!((step.status, step.counts.write), (BatchStatus::Stopped, 4));
    let err = other.stop(id).await.unwrap_err();
    assert!(matches!(err, OperatorError::NotAllowed { .. }), "{err}");
    assert!(err.to_string().contains("STOPPED"), "{err}");
    // The restart's reader waits at its third read too: let it through.
    go.notify_one();
    let restarted = other.restart(stoppable, id).await.unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    assert_eq!(written.load(Ordering::SeqCst), 6, "every item written once");
}

async fn abandon_recover_and_refusals(db: Db) {
    let op = operator(&db);
    let failing = || {
        job(
            "abandoned",
            vec![list_step("s", &["a", "b", "c"], Some("b"))],
        )
    };
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let failed = launcher.run(failing(), JobParameters::new()).await.unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let abandoned = op.abandon(failed.id).await.unwrap();
    assert_eq!(abandoned.status, BatchStatus::Abandoned);
    let stored = db.repo.job_execution(failed.id).await.unwrap().unwrap();
    assert_eq!(stored.status, BatchStatus::Abandoned);
    assert!(stored.end_time.is_some());
    let err = launcher
        .run(failing(), JobParameters::new())
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::Abandoned { .. }), "{err}");
    assert!(err.to_string().contains("abandoned"), "{err}");
    assert!(matches!(
        op.abandon(99).await.unwrap_err(),
        OperatorError::NoSuchExecution(99)
    ));
    let done = launcher
        .run(
            job("done", vec![list_step("s", &["a"], None)]),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert!(matches!(
        op.abandon(done.id).await.unwrap_err(),
        OperatorError::NotAllowed {
            status: BatchStatus::Completed,
            ..
        }
    ));

    // Left STARTED as Spring Batch leaves it: no owner, a fresh heartbeat: refused.
    let params = JobParameters::new().with("k", "left");
    let mut left = db.repo.create_job_execution("left", &params).await.unwrap();
    left.status = BatchStatus::Started;
    left.exit_status = ExitStatus::executing();
    db.repo.update_job_execution(&mut left).await.unwrap();
    let err = op.recover(left.id).await.unwrap_err();
    assert!(matches!(err, OperatorError::NotAllowed { .. }), "{err}");
    // Owned by a process that has exited: recovered.
    let (_, record) = support::exited_owner();
    let mut left = db.repo.job_execution(left.id).await.unwrap().unwrap();
    left.exit_status = ExitStatus::executing().with_description(record);
    db.repo.update_job_execution(&mut left).await.unwrap();
    let mut step = new_step(left.id, BatchStatus::Started);
    db.repo.add_step_execution(&mut step).await.unwrap();
    let recovered = op.recover(left.id).await.unwrap();
    assert_eq!(recovered.status, BatchStatus::Failed);
    let stored = db.repo.job_execution(left.id).await.unwrap().unwrap();
    assert!(
        stored
            .exit_status
            .description
            .contains("recovered by an operator"),
        "{:?}",
        stored.exit_status
    );
    assert_eq!(stored.step_executions[0].status, BatchStatus::Failed);
}

async fn start_next_and_purge(db: Db) {
    let op = operator(&db);
    let next = || job("nightly", vec![list_step("s", &["a", "b"], None)]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = op.start_next(next(), JobParameters::new()).await.unwrap();
        assert_eq!(e.status, BatchStatus::Completed);
        ids.push(e.parameters.get_as::<i64>("run.id").unwrap());
    }
    assert_eq!(ids, [1, 2, 3]);
    // A failed instance (restartable), a running execution.
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let failed = launcher
        .run(
            job("flaky", vec![list_step("s", &["a", "b"], Some("b"))]),
            JobParameters::new(),
        )
        .await
        .unwrap();
    let running = db
        .repo
        .create_job_execution("busy", &JobParameters::new())
        .await
        .unwrap();
    db.repo.record_item_progress(1, "s", "key-1").await.unwrap();
    let report = op
        .purge(&PurgeRequest::older_than(std::time::Duration::ZERO))
        .await
        .unwrap();
    assert_eq!((report.executions, report.instances), (3, 3));
    assert!(db.repo.job_execution(failed.id).await.unwrap().is_some());
    assert!(db.repo.job_execution(running.id).await.unwrap().is_some());
    assert!(db.repo.item_progress(1, "s").await.unwrap().is_empty());
    let report = op
        .purge(&PurgeRequest::older_than(std::time::Duration::ZERO).include_restartable(true))
        .await
        .unwrap();
    assert_eq!((report.executions, report.instances), (1, 1));
    assert!(db.repo.job_execution(running.id).await.unwrap().is_some());
    if let Some(pool) = db.sql() {
        for orphan in support::ORPHAN_QUERIES {
            assert_eq!(support::int(pool, orphan).await, 0, "{orphan}");
        }
        let executions = support::int(pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
        assert_eq!(executions, 1);
    }
}
