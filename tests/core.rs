//! The core against real repositories: launch rules, counters, restart with the failed
//! step's context, the 2500 rule, optimistic locking, the writer in the chunk
//! transaction, flows. Each test opens its own SQLite file.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use batch::chunk::read_write;
use batch::execution::{BatchStatus, JobExecution, StepExecution};
use batch::prelude::*;
use batch::repository::LaunchError;
use batch::step::{ChunkListener, StepBuilder, StepDef, StepExecutionListener};
use sqlx::{Row, SqlitePool};

struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("batch.db").display());
    Db { _dir: dir, url }
}

async fn open(db: &Db) -> SqliteJobRepository {
    SqliteJobRepository::open(&db.url).await.unwrap()
}

async fn pool(db: &Db) -> SqlitePool {
    SqlitePool::connect(&db.url).await.unwrap()
}

use support::{job, list_step, only_step, step_names};

#[tokio::test]
async fn commit_count_includes_the_final_empty_chunk() {
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    for (n, chunk, commits) in [
        (4usize, 2u64, 3u64),
        (0, 2, 1),
        (5, 2, 3),
        (6, 2, 4),
        (3, 10, 1),
    ] {
        let items: Vec<&'static str> = ["a", "b", "c", "d", "e", "f"][..n].to_vec();
        let exec = launcher
            .run(
                job("counting", vec![list_step("s", chunk, items, None)]),
                JobParameters::new()
                    .with("n", n as i64)
                    .with("chunk", chunk as i64),
            )
            .await
            .unwrap();
        assert_eq!(exec.status, BatchStatus::Completed);
        let s = only_step(&exec);
        assert_eq!(
            (s.counts.read, s.counts.write, s.counts.commit),
            (n as u64, n as u64, commits),
            "{n} items, chunk {chunk}"
        );
    }
    // The persisted row says the same.
    let p = pool(&db).await;
    let row = sqlx::query(
        "SELECT S.COMMIT_COUNT, S.READ_COUNT, S.WRITE_COUNT FROM BATCH_STEP_EXECUTION S \
         JOIN BATCH_JOB_EXECUTION_PARAMS P ON P.JOB_EXECUTION_ID = S.JOB_EXECUTION_ID \
         WHERE P.PARAMETER_NAME = 'n' AND P.PARAMETER_VALUE = '4'",
    )
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(
        (
            row.get::<i64, _>(0),
            row.get::<i64, _>(1),
            row.get::<i64, _>(2)
        ),
        (3, 4, 4)
    );
}

#[tokio::test]
async fn restart_hands_the_failed_step_its_context_and_skips_completed_steps() {
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
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
    let items = vec!["A", "B", "C", "D", "E"];
    let make = |fail: Option<&'static str>| {
        job(
            "restartable",
            vec![first.clone(), list_step("second", 2, items.clone(), fail)],
        )
    };

    let failed = launcher
        .run(make(Some("C")), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(failed.exit_status.code, "FAILED");
    let second = failed.step("second").unwrap();
    assert_eq!(second.status, BatchStatus::Failed);
    assert_eq!(
        (
            second.counts.commit,
            second.counts.read,
            second.counts.write,
            second.counts.rollback
        ),
        (1, 2, 2, 1)
    );
    assert!(
        second.exit_status.description.contains("failed on C"),
        "{:?}",
        second.exit_status
    );
    // The context as it stood at the failure is in the table.
    let p = pool(&db).await;
    let short: String = sqlx::query_scalar(
        "SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID = ?1",
    )
    .bind(second.id)
    .fetch_one(&p)
    .await
    .unwrap();
    let saved: serde_json::Value = serde_json::from_str(&short).unwrap();
    assert_eq!(saved["list.read.count"], 2);

    let restarted = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    assert_eq!(restarted.instance.id, failed.instance.id, "same instance");
    assert_ne!(restarted.id, failed.id, "a second execution");
    assert!(
        restarted.step("first").is_none(),
        "a completed step is not run again"
    );
    assert_eq!(first_runs.load(Ordering::SeqCst), 1);
    let second = only_step(&restarted);
    assert_eq!(
        (
            second.counts.read,
            second.counts.write,
            second.counts.commit
        ),
        (3, 3, 2)
    );
    assert_eq!(
        second.context.get::<u64>("list.read.count").unwrap(),
        Some(5)
    );

    let err = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::AlreadyComplete { .. }));
}

#[tokio::test]
async fn allow_start_if_complete_and_start_limit() {
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let always = StepBuilder::new("always")
        .allow_start_if_complete(true)
        .tasklet(move |_| {
            let counter = counter.clone();
            async move {
                Ok(move |_: &mut TaskletContext<'_>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Error>(RepeatStatus::Finished)
                })
            }
        });
    let limited = |fail| {
        StepBuilder::new("limited")
            .start_limit(2)
            .tasklet(move |_| async move {
                Ok(move |_: &mut TaskletContext<'_>| {
                    if fail {
                        Err(Error::msg("boom"))
                    } else {
                        Ok(RepeatStatus::Finished)
                    }
                })
            })
    };
    let make = |fail| job("limits", vec![always.clone(), limited(fail)]);
    assert_eq!(
        launcher
            .run(make(true), JobParameters::new())
            .await
            .unwrap()
            .status,
        BatchStatus::Failed
    );
    assert_eq!(
        launcher
            .run(make(true), JobParameters::new())
            .await
            .unwrap()
            .status,
        BatchStatus::Failed
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "allow_start_if_complete runs the completed step again"
    );
    let third = launcher
        .run(make(false), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(third.status, BatchStatus::Failed);
    assert!(
        third.exit_status.description.contains("start limit is 2"),
        "{:?}",
        third.exit_status
    );
    assert!(
        third.step("limited").is_none(),
        "no third execution of the limited step"
    );
}

/// Writes each item into `out` inside the chunk transaction; fails on `fail_on` after
/// writing the items before it.
struct TableWriter {
    fail_on: Option<i64>,
}

impl ItemWriter<i64> for TableWriter {
    async fn write(&mut self, items: &[i64], cx: &mut WriteContext<'_>) -> Result<()> {
        let conn = cx.sqlite()?;
        for &n in items {
            if Some(n) == self.fail_on {
                return Err(Error::msg(format!("cannot write {n}")));
            }
            sqlx::query("INSERT INTO out (n) VALUES (?1)")
                .bind(n)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_writer_commits_with_the_chunk_or_not_at_all() {
    let db = db();
    let repo = open(&db).await;
    let p = repo.pool().clone();
    sqlx::query("CREATE TABLE out (n INTEGER NOT NULL)")
        .execute(&p)
        .await
        .unwrap();
    let launcher = JobLauncher::new(repo);
    let step = |fail_on| {
        StepBuilder::new("copy")
            .chunk_size(3)
            .chunk(move |_| async move {
                Ok(read_write(
                    ListReader::new(1..=8i64).restartable("numbers"),
                    TableWriter { fail_on },
                ))
            })
    };
    let failed = launcher
        .run(job("copy", vec![step(Some(5))]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let written: Vec<i64> = sqlx::query_scalar("SELECT n FROM out ORDER BY n")
        .fetch_all(&p)
        .await
        .unwrap();
    assert_eq!(
        written,
        vec![1, 2, 3],
        "4 was written in the failed chunk and rolled back with it"
    );
    let s = only_step(&failed);
    // As in Spring Batch, what the failed chunk read still counts; what it wrote does not.
    assert_eq!(
        (
            s.counts.read,
            s.counts.write,
            s.counts.commit,
            s.counts.rollback
        ),
        (6, 3, 1, 1)
    );

    let done = launcher
        .run(job("copy", vec![step(None)]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    let written: Vec<i64> = sqlx::query_scalar("SELECT n FROM out ORDER BY n")
        .fetch_all(&p)
        .await
        .unwrap();
    assert_eq!(
        written,
        (1..=8).collect::<Vec<_>>(),
        "nothing lost, nothing repeated"
    );
}

#[tokio::test]
async fn the_tables_and_columns_are_spring_batch_5s() {
    let db = db();
    let _repo = open(&db).await;
    let p = pool(&db).await;
    let columns = |table: &'static str| {
        let p = p.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM pragma_table_info(?1)")
                .bind(table)
                .fetch_all(&p)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        columns("BATCH_JOB_INSTANCE").await,
        ["JOB_INSTANCE_ID", "VERSION", "JOB_NAME", "JOB_KEY"]
    );
    assert_eq!(
        columns("BATCH_STEP_EXECUTION").await,
        support::STEP_EXECUTION_COLUMNS
    );
    assert_eq!(
        columns("BATCH_JOB_EXECUTION_PARAMS").await,
        [
            "JOB_EXECUTION_ID",
            "PARAMETER_NAME",
            "PARAMETER_TYPE",
            "PARAMETER_VALUE",
            "IDENTIFYING"
        ]
    );
    for t in [
        "BATCH_JOB_EXECUTION_CONTEXT",
        "BATCH_STEP_EXECUTION_CONTEXT",
    ] {
        assert_eq!(
            columns(t).await[1..],
            ["SHORT_CONTEXT", "SERIALIZED_CONTEXT"]
        );
    }
    for t in [
        "BATCH_JOB_SEQ",
        "BATCH_JOB_EXECUTION_SEQ",
        "BATCH_STEP_EXECUTION_SEQ",
    ] {
        assert_eq!(columns(t).await, ["ID"]);
    }
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn parameters_and_job_key_are_stored_as_spring_does() {
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    let params =
        JobParameters::parse_args(["targetDate=2024-01-02,date", "run=3,long,false"]).unwrap();
    launcher
        .run(
            job("keyed", vec![list_step("s", 1, vec![], None)]),
            params.clone(),
        )
        .await
        .unwrap();
    let p = pool(&db).await;
    let key: String = sqlx::query_scalar("SELECT JOB_KEY FROM BATCH_JOB_INSTANCE")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(key, params.job_key());
    let rows = sqlx::query("SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING FROM BATCH_JOB_EXECUTION_PARAMS ORDER BY PARAMETER_NAME")
        .fetch_all(&p)
        .await
        .unwrap();
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            (
                "run".into(),
                "java.lang.Long".into(),
                "3".into(),
                "N".into()
            ),
            (
                "targetDate".into(),
                "java.time.LocalDate".into(),
                "2024-01-02".into(),
                "Y".into()
            ),
        ]
    );
}

#[tokio::test]
async fn a_wrong_schema_and_a_corrupt_context_are_named() {
    let db = db();
    {
        let p = SqlitePool::connect(&format!("{}?mode=rwc", db.url))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE BATCH_STEP_EXECUTION (STEP_EXECUTION_ID INTEGER, STEP_NAME TEXT)",
        )
        .execute(&p)
        .await
        .unwrap();
        p.close().await;
    }
    let err = SqliteJobRepository::open(&db.url)
        .await
        .err()
        .expect("a wrong schema is refused");
    drop(db);
    let text = err.to_string();
    assert!(
        text.contains("BATCH_STEP_EXECUTION") && text.contains("COMMIT_COUNT"),
        "{text}"
    );

    let fresh = self::db();
    let launcher = JobLauncher::new(open(&fresh).await);
    let make = |fail| {
        job(
            "corrupt",
            vec![list_step("s", 2, vec!["A", "B", "C"], fail)],
        )
    };
    launcher
        .run(make(Some("C")), JobParameters::new())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = '{\"list.read.count\": 2'",
    )
    .execute(&pool(&fresh).await)
    .await
    .unwrap();
    // The restart fails with the row named; the row itself is left as it is.
    let exec = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(exec.status, BatchStatus::Failed);
    let text = &exec.exit_status.description;
    assert!(
        text.contains("not valid JSON") && text.contains("step execution 1"),
        "{text}"
    );
    assert_eq!(
        text.matches("not valid JSON").count(),
        1,
        "each cause once: {text}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_named() {
    let err = SqliteJobRepository::open("sqlite:/nonexistent-dir/sub/batch.db")
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/nonexistent-dir/sub/batch.db"),
        "{err}"
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl StepExecutionListener for Recorder {
    fn before_step(&self, step: &mut StepExecution) {
        self.0
            .lock()
            .unwrap()
            .push(format!("before {}", step.step_name));
    }
    fn after_step(&self, step: &mut StepExecution) -> Option<ExitStatus> {
        self.0
            .lock()
            .unwrap()
            .push(format!("after {} {}", step.step_name, step.status));
        (step.step_name == "check").then(|| ExitStatus::new("NOOP"))
    }
}

impl ChunkListener for Recorder {
    fn after_chunk(&self, step: &StepExecution) {
        self.0
            .lock()
            .unwrap()
            .push(format!("chunk {} {}", step.step_name, step.counts.commit));
    }
    fn after_chunk_error(&self, step: &StepExecution, error: &Error) {
        self.0
            .lock()
            .unwrap()
            .push(format!("rollback {} {error}", step.step_name));
    }
}

#[tokio::test]
async fn transitions_follow_exit_codes_and_listeners_see_each_chunk() {
    let launcher_rec = Arc::new(Recorder::default());
    let launcher = JobLauncher::new(InMemoryJobRepository::new())
        .step_listener(launcher_rec.clone())
        .chunk_listener(launcher_rec.clone());
    let ok = |name: &str| list_step(name, 2, vec!["a", "b", "c"], None);
    // check exits NOOP (from its listener) → skip_load; FAILED → cleanup; otherwise load.
    let flow = Flow::start(ok("check"))
        .on("NOOP")
        .to(ok("skip_load"))
        .from(ok("check"))
        .on("FAILED")
        .to(ok("cleanup"))
        .from(ok("check"))
        .next(ok("load"))
        .build();
    let exec = launcher
        .run(Job::new("routing", flow), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(exec.status, BatchStatus::Completed);
    let names = step_names(&exec);
    assert_eq!(names, ["check", "skip_load"]);
    assert_eq!(exec.step_executions[0].exit_status.code, "NOOP");
    let log = launcher_rec.0.lock().unwrap().clone();
    assert_eq!(
        &log[..5],
        [
            "before check",
            "chunk check 1",
            "chunk check 2",
            "after check COMPLETED",
            "before skip_load"
        ]
    );

    // A failing step with no transition for FAILED ends the job FAILED.
    let flow = Flow::start(list_step("a", 2, vec!["x", "y", "z"], Some("z")))
        .next(ok("b"))
        .build();
    let exec = launcher
        .run(Job::new("failing", flow), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(exec.status, BatchStatus::Failed);
    assert_eq!(exec.step_executions.len(), 1);
    let log = launcher_rec.0.lock().unwrap().clone();
    assert!(log.iter().any(|l| l == "rollback a failed on z"), "{log:?}");
}

#[tokio::test]
async fn a_tasklet_is_called_until_finished_each_call_committing() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let step = StepBuilder::new("countdown").tasklet(|_| async {
        let mut left = 3;
        Ok(move |cx: &mut TaskletContext<'_>| {
            left -= 1;
            cx.contribution().write += 1;
            cx.step_context().put("left", &left)?;
            Ok::<_, Error>(RepeatStatus::continue_if(left > 0))
        })
    });
    let exec = launcher
        .run(job("countdown", vec![step]), JobParameters::new())
        .await
        .unwrap();
    let s = only_step(&exec);
    assert_eq!((s.counts.commit, s.counts.write), (3, 3));
    assert_eq!(s.context.get::<i32>("left").unwrap(), Some(0));
}

#[tokio::test]
async fn a_run_whose_process_died_does_not_block_the_restart() {
    let db = db();
    let repo = open(&db).await;
    let params = JobParameters::new().with("k", "crash");
    // A run owned by a process that has exited, left STARTED as `kill -9` leaves it.
    let (pid, record) = support::exited_owner();
    let mut dead = repo.create_job_execution("crashy", &params).await.unwrap();
    dead.status = BatchStatus::Started;
    dead.exit_status = ExitStatus::executing().with_description(record);
    repo.update_job_execution(&mut dead).await.unwrap();

    // A run owned by this live process blocks a second launch.
    let mut live = repo
        .create_job_execution("crashy", &JobParameters::new().with("k", "live"))
        .await
        .unwrap();
    live.status = BatchStatus::Started;
    live.exit_status =
        ExitStatus::executing().with_description(batch::repository::owner::current_owner());
    repo.update_job_execution(&mut live).await.unwrap();
    let err = repo
        .create_job_execution("crashy", &JobParameters::new().with("k", "live"))
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::AlreadyRunning { .. }), "{err}");

    let launcher = JobLauncher::new(repo);
    let restarted = launcher
        .run(
            job("crashy", vec![list_step("s", 2, vec!["a", "b"], None)]),
            params,
        )
        .await
        .unwrap();
    assert_eq!(restarted.status, BatchStatus::Completed);
    assert_eq!(restarted.instance.id, dead.instance.id);
    let p = pool(&db).await;
    let (status, message): (String, String) = sqlx::query_as(
        "SELECT STATUS, EXIT_MESSAGE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?1",
    )
    .bind(dead.id)
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(status, "FAILED");
    assert!(
        message.contains(&format!("process {pid}")) && message.contains("gone"),
        "{message}"
    );
}

/// Calls a pretend partner for each number; fails on `fail_on` the first time.
struct Partner {
    calls: Arc<Mutex<Vec<(i64, String)>>>,
    fail_on: Mutex<Option<i64>>,
}

impl batch::calls::ItemCall<i64> for Partner {
    fn key(&self, item: &i64) -> String {
        item.to_string()
    }

    async fn call(&self, item: &i64, idempotency_key: &str) -> Result<()> {
        {
            let mut fail_on = self.fail_on.lock().unwrap();
            if Some(*item) == *fail_on {
                *fail_on = None;
                return Err(Error::msg(format!("partner unavailable for {item}")));
            }
        }
        self.calls
            .lock()
            .unwrap()
            .push((*item, idempotency_key.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn durable_calls_are_made_once_across_a_rolled_back_chunk_and_a_restart() {
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let make = |fail_on: Option<i64>| {
        let calls = calls.clone();
        let step = StepBuilder::new("send").chunk_size(5).chunk(move |_| {
            let calls = calls.clone();
            async move {
                Ok(read_write(
                    ListReader::new(1..=12i64).restartable("orders"),
                    batch::calls::DurableCalls::new(Partner {
                        calls,
                        fail_on: Mutex::new(fail_on),
                    }),
                ))
            }
        });
        job("sync", vec![step])
    };
    // Items 6 and 7 are called, 8 fails: the chunk [6..10] rolls back, but 6 and 7
    // stay recorded as done.
    let failed = launcher
        .run(make(Some(8)), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let done = launcher
        .run(make(None), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    let calls = calls.lock().unwrap().clone();
    let items: Vec<i64> = calls.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        items,
        (1..=12).collect::<Vec<_>>(),
        "every item called exactly once"
    );
    let instance = done.instance.id;
    assert_eq!(
        calls[0].1,
        format!("sync/{instance}/send/1"),
        "a deterministic idempotency key"
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM BATCH_STEP_ITEM_PROGRESS WHERE STEP_NAME = 'send'",
    )
    .fetch_one(&pool(&db).await)
    .await
    .unwrap();
    assert_eq!(recorded, 12);
}

/// A panic in a processor, a writer, a tasklet or a step listener fails the step and
/// the job like any error, and the next launch in the same process restarts.
#[tokio::test]
async fn a_panic_in_a_step_fails_it_and_the_instance_restarts() {
    struct PanicsBefore;
    impl StepExecutionListener for PanicsBefore {
        fn before_step(&self, _: &mut StepExecution) {
            panic!("listener broke");
        }
    }
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    let cases: Vec<(&str, StepDef)> =
        vec![
            (
                "processor broke",
                StepBuilder::new("p").chunk_size(2).chunk(|_| async {
                    Ok(chunk(
                        ListReader::new(vec![1, 2, 3]),
                        |n: &i32| -> Result<Option<i32>> {
                            if *n == 2 {
                                panic!("processor broke");
                            }
                            Ok(Some(*n))
                        },
                        |_: &[i32]| Ok::<_, Error>(()),
                    ))
                }),
            ),
            (
                "writer broke",
                StepBuilder::new("w").chunk_size(2).chunk(|_| async {
                    Ok(read_write(
                        ListReader::new(vec![1, 2, 3]),
                        |_: &[i32]| -> Result<()> { panic!("writer broke") },
                    ))
                }),
            ),
            (
                "tasklet broke",
                StepBuilder::new("t").tasklet(|_| async {
                    Ok(|_: &mut TaskletContext<'_>| -> Result<RepeatStatus> {
                        panic!("tasklet broke")
                    })
                }),
            ),
            (
                "listener broke",
                StepBuilder::new("l")
                    .listener(Arc::new(PanicsBefore))
                    .tasklet(|_| async {
                        Ok(|_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished))
                    }),
            ),
        ];
    for (message, step) in cases {
        let name = format!("panics-{}", step.name());
        let params = JobParameters::new().with("case", message);
        for attempt in 0..2 {
            let execution = launcher
                .run(job(&name, vec![step.clone()]), params.clone())
                .await
                .unwrap_or_else(|e| panic!("{message}, attempt {attempt}: {e}"));
            assert_eq!(execution.status, BatchStatus::Failed, "{message}");
            let s = only_step(&execution);
            assert_eq!(s.status, BatchStatus::Failed, "{message}");
            assert!(
                s.exit_status.description.contains(message)
                    && execution.exit_status.description.contains(message),
                "{message}: {:?} / {:?}",
                s.exit_status,
                execution.exit_status
            );
            assert!(
                s.failures.len() == 1 && s.failures[0].is::<batch::step::StepPanicked>(),
                "{message}: {:?}",
                s.failures
            );
        }
    }
}

/// A fault-tolerant step's failure keeps the user's error: chunk listeners receive it
/// (found by type), and the step's exit description reads effect then cause, with the
/// item's position and the chunk's size as they were in the chunk.
#[tokio::test]
async fn a_fault_tolerant_failure_keeps_the_users_error() {
    #[derive(Debug, thiserror::Error)]
    #[error("the terminator refused item {0}")]
    struct TerminationFailed(i32);
    #[derive(Default)]
    struct Heard(Mutex<Vec<(bool, String)>>);
    impl ChunkListener for Heard {
        fn after_chunk_error(&self, _: &StepExecution, error: &Error) {
            let found = error
                .find::<TerminationFailed>()
                .map(|e| e.0 == 3)
                .unwrap_or(false);
            self.0.lock().unwrap().push((found, error.report()));
        }
    }
    let heard = Arc::new(Heard::default());
    let step = StepBuilder::new("terminate")
        .chunk_size(5)
        .retry(batch::classify::ErrorMatcher::of::<TerminationFailed>())
        .retry_limit(3)
        .chunk_listener(heard.clone())
        .chunk(|_| async {
            Ok(chunk(
                ListReader::new(vec![1, 2, 3, 4, 5]),
                |n: &i32| match *n {
                    3 => Err(TerminationFailed(3)),
                    n => Ok(Some(n)),
                },
                |_: &[i32]| Ok::<_, Error>(()),
            ))
        });
    let db = db();
    let execution = JobLauncher::new(open(&db).await)
        .run(job("terminate", vec![step]), JobParameters::new())
        .await
        .unwrap();
    let s = only_step(&execution);
    assert_eq!(s.status, BatchStatus::Failed);
    assert_eq!(
        s.exit_status.description,
        "processing item 3 of a chunk of 5 failed after 3 attempt(s) and is not skippable: \
         the terminator refused item 3"
    );
    // The step keeps its failure typed (Spring's getFailureExceptions): the retries'
    // end, with the user's error inside it.
    assert_eq!(s.failures.len(), 1, "{:?}", s.failures);
    let failure = &s.failures[0];
    assert!(failure.is::<batch::fault::RetryExhausted>(), "{failure:?}");
    assert_eq!(failure.find::<TerminationFailed>().map(|e| e.0), Some(3));
    assert_eq!(execution.all_failures().count(), 1);
    assert!(execution.failures.is_empty(), "the job itself did not fail");
    let heard = heard.0.lock().unwrap();
    assert!(heard.len() >= 3, "{heard:?}");
    for (found, report) in heard.iter() {
        assert!(
            *found,
            "the listener finds the user's error by type: {report}"
        );
        // Each failed attempt, then the final failure once the retries are used up.
        assert!(
            report.starts_with("processing item 3 of a chunk of 5 failed")
                && report.ends_with(": the terminator refused item 3"),
            "{report}"
        );
    }
}

/// The test kit: a job or one step launched on an in-memory repository or a
/// temporary SQLite file, a prepared step context, and assertions on what ran.
#[tokio::test]
async fn the_test_kit_runs_steps_with_prepared_contexts() {
    use batch::testing::{Counts, TestKit};
    for kit in [TestKit::in_memory(), TestKit::sqlite().await.unwrap()] {
        let letters = || list_step("letters", 2, vec!["A", "B", "C", "D"], None);
        kit.run_step(letters(), JobParameters::new().with("run", 1i64))
            .await
            .unwrap()
            .assert_completed()
            .assert_counts(
                "letters",
                Counts {
                    read: 4,
                    write: 4,
                    commit: 3,
                    ..Counts::default()
                },
            )
            .assert_context("letters", "list.read.count", 4);
        // A step context as a failed run would have left it: the step reads on from C.
        let mut saved = ExecutionContext::new();
        saved.put("list.read.count", &2).unwrap();
        let run = kit
            .run_step_with_context(letters(), JobParameters::new().with("run", 2i64), saved)
            .await
            .unwrap();
        run.assert_completed().assert_counts(
            "letters",
            Counts {
                read: 2,
                write: 2,
                commit: 2,
                ..Counts::default()
            },
        );
        // A failing job is reported, not panicked on, and says why.
        let failing = kit
            .run(
                job(
                    "failing",
                    vec![list_step("s", 2, vec!["A", "B"], Some("B"))],
                ),
                JobParameters::new(),
            )
            .await
            .unwrap();
        failing.assert_status(BatchStatus::Failed);
        assert!(
            failing
                .step("s")
                .exit_status
                .description
                .contains("failed on B")
        );
    }
}

/// Closures with async work and no turbofish: a processor awaiting per item (the future
/// borrows the item), a writer inserting in the chunk's transaction from a closure, an
/// async tasklet; a user's error converted by `?` keeps its type for `skip(…)`.
#[tokio::test]
async fn async_closures_read_process_write_and_run_tasklets() {
    #[derive(Debug, thiserror::Error)]
    #[error("odd number {0}")]
    struct Odd(i64);
    let db = db();
    let repo = open(&db).await;
    let pool = pool(&db).await;
    sqlx::query("CREATE TABLE doubled (n INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let step = StepBuilder::new("async")
        .chunk_size(3)
        .skip(batch::classify::ErrorMatcher::of::<Odd>())
        .skip_limit(10)
        .chunk(move |_| {
            let next = next.clone();
            async move {
                Ok(chunk(
                    reader(move || {
                        let n = next.fetch_add(1, Ordering::SeqCst) as i64;
                        Ok((n < 10).then_some(n))
                    }),
                    async_processor(|n: &i64| {
                        Box::pin(async move {
                            tokio::task::yield_now().await;
                            if n % 2 == 1 {
                                Err(Odd(*n))?;
                            }
                            Ok(Some(n * 2))
                        })
                    }),
                    async_writer(|items: &[i64], cx: &mut WriteContext<'_>| {
                        Box::pin(async move {
                            for n in items {
                                sqlx::query("INSERT INTO doubled (n) VALUES (?1)")
                                    .bind(n)
                                    .execute(&mut *cx.sqlite()?)
                                    .await?;
                            }
                            cx.step_context().put("last", &items.last())?;
                            Ok(())
                        })
                    }),
                ))
            }
        });
    let report = StepBuilder::new("report").tasklet(|_| async {
        Ok(async_tasklet(|cx: &mut TaskletContext<'_>| {
            Box::pin(async move {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM doubled")
                    .fetch_one(&mut *cx.sqlite()?)
                    .await?;
                cx.step_context().put("rows", &count)?;
                Ok(RepeatStatus::Finished)
            })
        }))
    });
    let execution = JobLauncher::new(repo)
        .run(job("async", vec![step, report]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        execution.status,
        BatchStatus::Completed,
        "{:?}",
        execution.exit_status
    );
    let s = execution.step("async").unwrap();
    assert_eq!(
        (s.counts.read, s.counts.write, s.counts.process_skip),
        (10, 5, 5)
    );
    assert_eq!(s.context.get::<i64>("last").unwrap(), Some(16));
    let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM doubled ORDER BY n")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows, [0, 4, 8, 12, 16]);
    let r = execution.step("report").unwrap();
    assert_eq!(r.context.get::<i64>("rows").unwrap(), Some(5));
}

/// A step factory is `FnMut`: it moves a non-`Clone` input into the first run, and a
/// second run of the same step in the process fails saying the input was taken.
#[tokio::test]
async fn a_step_factory_moves_its_input_into_the_first_run() {
    struct NotClone(Vec<i64>);
    let mut input = batch::step::Once::new("sum", NotClone(vec![1, 2, 3]));
    let total = Arc::new(AtomicUsize::new(0));
    let seen = total.clone();
    let step = StepBuilder::new("sum").chunk_size(2).chunk(move |_| {
        let input = input.take();
        let seen = seen.clone();
        async move {
            Ok(read_write(
                ListReader::new(input?.0),
                writer(move |items: &[i64]| {
                    seen.fetch_add(items.iter().sum::<i64>() as usize, Ordering::SeqCst);
                    Ok(())
                }),
            ))
        }
    });
    let db = db();
    let launcher = JobLauncher::new(open(&db).await);
    let first = launcher
        .run(
            job("sum", vec![step.clone()]),
            JobParameters::new().with("run", 1i64),
        )
        .await
        .unwrap();
    assert_eq!(first.status, BatchStatus::Completed);
    assert_eq!(total.load(Ordering::SeqCst), 6);
    let second = launcher
        .run(
            job("sum", vec![step]),
            JobParameters::new().with("run", 2i64),
        )
        .await
        .unwrap();
    assert_eq!(second.status, BatchStatus::Failed);
    assert!(
        only_step(&second)
            .exit_status
            .description
            .contains("step `sum` was given its input once"),
        "{:?}",
        second.exit_status
    );
}

/// Spring's transition rules: an empty pattern matches every exit code, and among
/// matching patterns the most specific wins in Spring's order (`?` over `*`), whatever
/// the order they were declared in.
#[tokio::test]
async fn an_empty_pattern_matches_all_and_the_most_specific_pattern_wins() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let failing = || list_step("a", 2, vec!["x", "y"], Some("y"));
    let ok = |name: &str| list_step(name, 2, vec!["a"], None);
    let flow = Flow::start(failing())
        .on("F?ILED")
        .to(ok("question"))
        .from(failing())
        .on("F*ILED")
        .to(ok("star"))
        .from(failing())
        .on("")
        .to(ok("any"))
        .build();
    let exec = launcher
        .run(Job::new("specific", flow), JobParameters::new())
        .await
        .unwrap();
    let names = step_names(&exec);
    assert_eq!(names, ["a", "question"]);

    let flow = Flow::start(failing()).on("").to(ok("any")).build();
    let exec = launcher
        .run(Job::new("empty", flow), JobParameters::new())
        .await
        .unwrap();
    let names = step_names(&exec);
    assert_eq!(names, ["a", "any"]);
    assert_eq!(exec.status, BatchStatus::Completed);
}

/// The same step twice in a row (`.next(b).next(b)`) ran forever; such a flow is
/// refused when it is built. Joining a step again from another branch is not a loop.
#[test]
fn the_same_step_twice_in_a_row_is_refused_when_the_flow_is_built() {
    let step = |name: &str| list_step(name, 2, vec!["a"], None);
    let built = std::panic::catch_unwind(|| {
        Flow::start(step("a"))
            .next(step("b"))
            .next(step("b"))
            .build()
    });
    let message = built.expect_err("refused");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("loop that never ends") && message.contains("`b`"),
        "{message}"
    );
    assert!(
        std::panic::catch_unwind(|| Flow::start(step("a"))
            .next(step("b"))
            .next(step("a"))
            .build())
        .is_err()
    );
    // Two branches meeting at one step, and a loop a transition can leave, are fine.
    let _ = Flow::start(step("a"))
        .on("FAILED")
        .to(step("fix"))
        .next(step("b"))
        .from(step("a"))
        .next(step("b"))
        .build();
    let _ = Flow::start(step("a"))
        .on("COMPLETED")
        .to(step("b"))
        .from(step("b"))
        .next(step("a"))
        .build();
}

/// A tasklet sets its step's exit status; a custom code routes the flow (Spring's
/// `contribution.setExitStatus`), and Spring's `ExitStatus` helpers behave as there.
#[tokio::test]
async fn a_tasklet_sets_its_exit_status_and_the_flow_follows_it() {
    let check = StepBuilder::new("check").tasklet(|_| async {
        Ok(tasklet(|cx: &mut TaskletContext<'_>| {
            cx.set_exit_status(ExitStatus::new("NOTHING_TO_DO").with_description("no file today"));
            Ok(RepeatStatus::Finished)
        }))
    });
    let import = list_step("import", 2, vec!["a"], None);
    let idle = list_step("idle", 2, vec![], None);
    let flow = Flow::start(check)
        .on("NOTHING_TO_DO")
        .to(idle)
        .from(StepBuilder::new("check").tasklet(|_| async {
            Ok(tasklet(|_: &mut TaskletContext<'_>| {
                Ok(RepeatStatus::Finished)
            }))
        }))
        .next(import)
        .build();
    let execution = JobLauncher::new(InMemoryJobRepository::new())
        .run(Job::new("exit", flow), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    let check = execution.step("check").unwrap();
    assert_eq!(check.status, BatchStatus::Completed);
    assert_eq!(check.exit_status.code, "NOTHING_TO_DO");
    assert_eq!(check.exit_status.description, "no file today");
    assert!(execution.step("idle").is_some() && execution.step("import").is_none());

    let status = ExitStatus::completed()
        .add_exit_description("first")
        .add_exit_description("second")
        .add_exit_description("second");
    assert_eq!(status.description, "first; second");
    assert_eq!(status.clone().replace_exit_code("DONE").code, "DONE");
    assert!(ExitStatus::executing().is_running() && ExitStatus::unknown().is_running());
    assert!(!status.is_running());
}

/// After-hooks run in the reverse order of registration (Spring's composite
/// listeners): the first listener registered wraps the others.
#[tokio::test]
async fn after_listeners_run_in_reverse_order() {
    struct Named(&'static str, Arc<Mutex<Vec<String>>>);
    impl StepExecutionListener for Named {
        fn before_step(&self, _: &mut StepExecution) {
            self.1
                .lock()
                .unwrap()
                .push(format!("before step {}", self.0));
        }
        fn after_step(&self, _: &mut StepExecution) -> Option<ExitStatus> {
            self.1
                .lock()
                .unwrap()
                .push(format!("after step {}", self.0));
            None
        }
    }
    impl ChunkListener for Named {
        fn before_chunk(&self, _: &StepExecution) {
            self.1
                .lock()
                .unwrap()
                .push(format!("before chunk {}", self.0));
        }
        fn after_chunk(&self, _: &StepExecution) {
            self.1
                .lock()
                .unwrap()
                .push(format!("after chunk {}", self.0));
        }
    }
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (a, b) = (
        Arc::new(Named("a", heard.clone())),
        Arc::new(Named("b", heard.clone())),
    );
    let step = StepBuilder::new("s")
        .listener(a.clone())
        .listener(b.clone())
        .chunk_listener(a)
        .chunk_listener(b)
        .tasklet(|_| async {
            Ok(tasklet(|_: &mut TaskletContext<'_>| {
                Ok(RepeatStatus::Finished)
            }))
        });
    JobLauncher::new(InMemoryJobRepository::new())
        .run(job("order", vec![step]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [
            "before step a",
            "before step b",
            "before chunk a",
            "before chunk b",
            "after chunk b",
            "after chunk a",
            "after step b",
            "after step a",
        ]
    );
}

/// A repository failure while saving a step's end is never reported as success: the
/// step and the job end UNKNOWN (Spring's status for "the metadata may not be what
/// happened"), and the instance is then not restarted blindly.
#[tokio::test]
async fn a_step_whose_end_cannot_be_saved_ends_unknown() {
    // The step's context row can be created but not updated: the save at its end fails.
    let (launcher, execution) = run_with_refused_end(
        "CREATE TRIGGER no_context_update BEFORE UPDATE ON BATCH_STEP_EXECUTION_CONTEXT \
         BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
    )
    .await;
    assert_eq!(execution.exit_status.code, "UNKNOWN");
    assert!(
        execution.failures.len() == 1 && execution.failures[0].is::<batch::step::StepEndNotSaved>(),
        "{:?}",
        execution.failures
    );
    let again = launcher
        .run(
            job("unknown", vec![finished_tasklet("s")]),
            JobParameters::new(),
        )
        .await
        .unwrap_err();
    assert!(again.to_string().contains("UNKNOWN"), "{again}");
}

/// Runs job `unknown`, one tasklet step `s`, on a fresh SQLite repository where the
/// trigger `refusal` refuses the step's end with "the disk is full": the job and the
/// step end UNKNOWN, in the execution and in the tables, the refusal named.
async fn run_with_refused_end(refusal: &str) -> (JobLauncher, JobExecution) {
    let db = db();
    let repo = open(&db).await;
    let p = pool(&db).await;
    sqlx::query(sqlx::AssertSqlSafe(refusal.to_owned()))
        .execute(&p)
        .await
        .unwrap();
    let launcher = JobLauncher::new(repo);
    let execution = launcher
        .run(
            job("unknown", vec![finished_tasklet("s")]),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Unknown, "{execution:?}");
    assert!(
        execution
            .exit_status
            .description
            .contains("the disk is full"),
        "{:?}",
        execution.exit_status
    );
    assert_eq!(
        job_and_step_statuses(&p).await,
        [("UNKNOWN".to_owned(), "UNKNOWN".to_owned())]
    );
    (launcher, execution)
}

/// A tasklet step that finishes at once.
fn finished_tasklet(name: &str) -> StepDef {
    StepBuilder::new(name).tasklet(|_| async {
        Ok(tasklet(|_: &mut TaskletContext<'_>| {
            Ok(RepeatStatus::Finished)
        }))
    })
}

/// The STATUS of each job execution and of each of its step executions, as stored.
async fn job_and_step_statuses(p: &sqlx::SqlitePool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT J.STATUS, S.STATUS FROM BATCH_JOB_EXECUTION J \
         JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID",
    )
    .fetch_all(p)
    .await
    .unwrap()
}

/// The same when the step execution's row, not its context, refuses the step's end:
/// the step and the job end UNKNOWN, never COMPLETED, and the error says the step
/// had completed before its end could not be saved.
#[tokio::test]
async fn a_step_whose_execution_row_refuses_its_end_ends_unknown() {
    let (_, execution) = run_with_refused_end(
        "CREATE TRIGGER no_step_end BEFORE UPDATE OF STATUS ON BATCH_STEP_EXECUTION \
         WHEN NEW.STATUS = 'COMPLETED' BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
    )
    .await;
    let not_saved = execution.failures[0]
        .find::<batch::step::StepEndNotSaved>()
        .expect("the step's end not saved");
    assert_eq!(not_saved.ended, "COMPLETED", "how the step had ended");
}

/// A step failure the flow routes on is a warning naming where the flow goes; an
/// error is logged only when the job ends FAILED.
#[tokio::test]
async fn a_routed_step_failure_is_a_warning_and_a_failed_job_an_error() {
    use tracing::field::{Field, Visit};
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<(tracing::Level, String)>>>);
    struct Message(String);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), message.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let routed = Flow::start(list_step("a", 2, vec!["x"], Some("x")))
        .on("FAILED")
        .to(list_step("recover", 2, vec!["y"], None))
        .build();
    let done = launcher
        .run(Job::new("routed", routed), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    let errors = |r: &Recorder| {
        r.0.lock()
            .unwrap()
            .iter()
            .filter(|(level, _)| *level == tracing::Level::ERROR)
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        errors(&recorder),
        Vec::<String>::new(),
        "a routed failure is no error"
    );
    assert!(
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(level, m)| *level == tracing::Level::WARN && m.contains("the flow goes on")),
        "the transition taken is a warning"
    );
    let failed = launcher
        .run(
            job("ends", vec![list_step("b", 2, vec!["x"], Some("x"))]),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(errors(&recorder), ["job failed"]);
}

/// Spring's flow endings and deciders: `end`, `fail` and `stop` with a custom exit code,
/// `stop_and_restart` (the restart begins at the named step), and a decider whose code
/// picks the transition.
#[tokio::test]
async fn custom_endings_stop_and_restart_and_deciders() {
    use batch::job::decider;
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let ok = |name: &str| list_step(name, 2, vec!["a"], None);
    let failing = || list_step("f", 2, vec!["x"], Some("x"));

    let ended = Flow::start(ok("a"))
        .on("COMPLETED")
        .end_with("ALL_DONE")
        .build();
    let e = launcher
        .run(Job::new("end_with", ended), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        (e.status, e.exit_status.code.as_str()),
        (BatchStatus::Completed, "ALL_DONE")
    );

    let failed = Flow::start(failing())
        .on("FAILED")
        .fail_with("BAD_INPUT")
        .build();
    let e = launcher
        .run(Job::new("fail_with", failed), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        (e.status, e.exit_status.code.as_str()),
        (BatchStatus::Failed, "BAD_INPUT")
    );

    let stopped = Flow::start(ok("a")).on("*").stop_with("PAUSED").build();
    let e = launcher
        .run(Job::new("stop_with", stopped), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        (e.status, e.exit_status.code.as_str()),
        (BatchStatus::Stopped, "PAUSED")
    );

    // Stop after `first`; the restart begins at `second`, and `first` does not run again.
    let make = || {
        Flow::start(ok("first"))
            .on("COMPLETED")
            .stop_and_restart(ok("second"))
            .build()
    };
    let params = JobParameters::new().with("run", "stop-and-restart");
    let e = launcher
        .run(Job::new("restart_at", make()), params.clone())
        .await
        .unwrap();
    assert_eq!(e.status, BatchStatus::Stopped);
    assert_eq!(e.step_executions.len(), 1);
    let e = launcher
        .run(Job::new("restart_at", make()), params)
        .await
        .unwrap();
    assert_eq!(e.status, BatchStatus::Completed);
    let ran = step_names(&e);
    assert_eq!(ran, ["second"]);

    // A decider after a step: its code picks the transition.
    let weekday = decider("weekday", |job, last| {
        assert_eq!(last.map(|s| s.step_name.as_str()), Some("load"));
        match job
            .parameters
            .get_as::<Option<String>>("day")
            .unwrap()
            .as_deref()
        {
            Some("sunday") => "SKIP".to_owned(),
            _ => "RUN".to_owned(),
        }
    });
    for (day, expected) in [("monday", vec!["load", "report"]), ("sunday", vec!["load"])] {
        let flow = Flow::start(ok("load"))
            .next_decider(weekday.clone())
            .on("RUN")
            .to(ok("report"))
            .from_decider(&weekday)
            .on("SKIP")
            .end()
            .end();
        let e = launcher
            .run(
                Job::new("decided", flow),
                JobParameters::new().with("day", day),
            )
            .await
            .unwrap();
        assert_eq!(e.status, BatchStatus::Completed, "{day}");
        let ran = step_names(&e);
        assert_eq!(ran, expected, "{day}");
    }
}

#[derive(Clone)]
struct PriceClient;

#[batch::step]
fn needs_a_client(client: Res<PriceClient>) -> impl Tasklet {
    let _ = client;
    tasklet(|_: &mut TaskletContext<'_>| Ok(RepeatStatus::Finished))
}

/// A `Res<T>` no launcher was given is a usage error before any row is written, naming
/// `Runner::configure` for job binaries and `JobLauncher::resource` for the API.
#[tokio::test]
async fn a_missing_resource_is_refused_before_anything_is_written() {
    let db = db();
    let repo = open(&db).await;
    let p = pool(&db).await;
    let flow = || Flow::start(needs_a_client {}).build();
    let err = JobLauncher::new(repo.clone())
        .run(Job::new("needs", flow()), JobParameters::new())
        .await
        .unwrap_err();
    assert!(matches!(err, LaunchError::MissingResource { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("needs_a_client")
            && text.contains("PriceClient")
            && text.contains("Runner::configure")
            && text.contains("JobLauncher::resource"),
        "{text}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM BATCH_JOB_INSTANCE")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing was written");
    let done = JobLauncher::new(repo)
        .resource(PriceClient)
        .run(Job::new("needs", flow()), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
}

/// A stop belongs to the run it stopped: the launcher's next run starts and completes.
#[tokio::test]
async fn a_stop_signal_belongs_to_one_run() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let stop = launcher.stop_signal();
    stop.stop();
    let stopped = launcher
        .run(
            job("once", vec![list_step("s", 1, vec!["a", "b"], None)]),
            JobParameters::new().with("run", 1i64),
        )
        .await
        .unwrap();
    assert_eq!(stopped.status, BatchStatus::Stopped);
    assert!(!stop.is_stopped(), "cleared when the run ended");
    let next = launcher
        .run(
            job("once", vec![list_step("s", 1, vec!["a", "b"], None)]),
            JobParameters::new().with("run", 2i64),
        )
        .await
        .unwrap();
    assert_eq!(next.status, BatchStatus::Completed);
}

/// Steps write the job's ExecutionContext while they run (Spring's
/// `getJobExecution().getExecutionContext()`): a tasklet's write is seen by the next
/// step's factory, a writer's write is saved when its step fails, and the restart
/// finds both.
#[tokio::test]
async fn steps_write_the_job_context_and_a_restart_finds_it() {
    let count = StepBuilder::new("count").tasklet(|_| async {
        Ok(tasklet(|tc: &mut TaskletContext<'_>| {
            tc.job_context().put("seen", &3i64)?;
            Ok(RepeatStatus::Finished)
        }))
    });
    let seen_by_factory = Arc::new(Mutex::new(Vec::new()));
    let seen = seen_by_factory.clone();
    let write = StepBuilder::new("write").chunk_size(2).chunk(move |scope| {
        let seen = seen.clone();
        async move {
            let job_context = scope.job_context().clone();
            seen.lock().unwrap().push(job_context.get::<i64>("seen")?);
            let failing = job_context.get::<bool>("fixed")?.is_none();
            Ok(read_write(
                ListReader::new(vec!["a", "b", "c"]).restartable("letters"),
                batch::adapt::writer(move |items: &[&str]| {
                    if failing && items.contains(&"c") {
                        return Err(Error::msg("c cannot be written"));
                    }
                    let before = job_context.get::<i64>("written")?.unwrap_or(0);
                    job_context.put("written", &(before + items.len() as i64))?;
                    Ok(())
                }),
            ))
        }
    });
    let db = db();
    let repo = open(&db).await;
    let launcher = JobLauncher::new(repo.clone());
    let failed = launcher
        .run(
            job("shares", vec![count.clone(), write.clone()]),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(failed.context.get::<i64>("seen").unwrap(), Some(3));
    assert_eq!(failed.context.get::<i64>("written").unwrap(), Some(2));
    // As stored, not only in this process's copy.
    let stored = repo.job_execution(failed.id).await.unwrap().unwrap();
    assert_eq!(stored.context.get::<i64>("written").unwrap(), Some(2));
    assert_eq!(stored.context.get::<i64>("seen").unwrap(), Some(3));

    // The restart skips the completed tasklet, yet its write is there; the writer
    // goes on from its last commit and from the count it left.
    let mut mended = stored.context.clone();
    mended.put("fixed", &true).unwrap();
    repo.update_job_context(&JobExecution {
        context: mended,
        ..stored.clone()
    })
    .await
    .unwrap();
    let done = launcher
        .run(job("shares", vec![count, write]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(done.context.get::<i64>("written").unwrap(), Some(3));
    assert_eq!(*seen_by_factory.lock().unwrap(), [Some(3), Some(3)]);
}

/// A reader and a writer whose open, update and close are async (a cursor opened, a
/// page fetched, a flush): the step awaits them, and closes both after the step
/// listeners' `after_step`, as Spring does, before the step's end is saved.
#[tokio::test]
async fn async_stream_lifecycle_and_close_after_the_listeners() {
    type Log = Arc<Mutex<Vec<String>>>;
    struct Paged {
        log: Log,
        page: Vec<i32>,
    }
    impl batch::item::ItemReader<i32> for Paged {
        async fn read(&mut self) -> Result<Option<i32>> {
            Ok(self.page.pop())
        }
        async fn open_async(&mut self, ctx: &ExecutionContext) -> Result<()> {
            tokio::task::yield_now().await;
            let from = ctx.get::<i32>("paged.next")?.unwrap_or(1);
            self.page = (from..=5).rev().collect();
            self.log.lock().unwrap().push(format!("open from {from}"));
            Ok(())
        }
        async fn update_async(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
            tokio::task::yield_now().await;
            let next = self.page.last().copied().unwrap_or(6);
            ctx.put("paged.next", &next)?;
            self.log.lock().unwrap().push(format!("update {next}"));
            Ok(())
        }
        async fn close_async(&mut self) -> Result<()> {
            tokio::task::yield_now().await;
            self.log.lock().unwrap().push("close reader".into());
            Ok(())
        }
    }
    struct Flushing(Log);
    impl batch::item::ItemWriter<i32> for Flushing {
        async fn write(
            &mut self,
            items: &[i32],
            _: &mut batch::item::WriteContext<'_>,
        ) -> Result<()> {
            self.0.lock().unwrap().push(format!("write {items:?}"));
            Ok(())
        }
        async fn close_async(&mut self) -> Result<()> {
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push("close writer".into());
            Ok(())
        }
    }
    struct After(Log);
    impl StepExecutionListener for After {
        fn after_step(&self, _: &mut StepExecution) -> Option<ExitStatus> {
            self.0.lock().unwrap().push("after_step".into());
            None
        }
    }
    let log: Log = Arc::default();
    let (l, after) = (log.clone(), Arc::new(After(log.clone())));
    let step = StepBuilder::new("paged")
        .chunk_size(3)
        .listener(after)
        .chunk(move |_| {
            let log = l.clone();
            async move {
                Ok(read_write(
                    Paged {
                        log: log.clone(),
                        page: Vec::new(),
                    },
                    Flushing(log),
                ))
            }
        });
    let db = db();
    let execution = JobLauncher::new(open(&db).await)
        .run(job("paged", vec![step]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "open from 1",
            "update 1",
            "write [1, 2, 3]",
            "update 4",
            "write [4, 5]",
            "update 6",
            "after_step",
            "close reader",
            "close writer",
        ]
    );
    assert_eq!(
        only_step(&execution)
            .context
            .get::<i32>("paged.next")
            .unwrap(),
        Some(6)
    );
}

/// Item listeners (Spring's `ItemReadListener`, `ItemProcessListener`,
/// `ItemWriteListener`) hear each read, process and write, before-hooks in the order
/// of registration and after-hooks in reverse; on a fault-tolerant step they hear the
/// failed attempt and its retry.
#[tokio::test]
async fn item_listeners_hear_each_read_process_and_write() {
    type Log = Arc<Mutex<Vec<String>>>;
    struct Heard(&'static str, Log);
    impl Heard {
        fn say(&self, what: String) {
            self.1.lock().unwrap().push(format!("{} {what}", self.0));
        }
    }
    impl ItemReadListener<i32> for Heard {
        fn before_read(&self) {
            self.say("before_read".into());
        }
        fn after_read(&self, item: &i32) {
            self.say(format!("after_read {item}"));
        }
    }
    impl ItemProcessListener<i32, i32> for Heard {
        fn before_process(&self, item: &i32) {
            self.say(format!("before_process {item}"));
        }
        fn after_process(&self, item: &i32, result: Option<&i32>) {
            self.say(format!("after_process {item} -> {result:?}"));
        }
    }
    impl ItemWriteListener<i32> for Heard {
        fn before_write(&self, items: &[i32]) {
            self.say(format!("before_write {items:?}"));
        }
        fn after_write(&self, items: &[i32]) {
            self.say(format!("after_write {items:?}"));
        }
        fn on_write_error(&self, error: &Error, items: &[i32]) {
            self.say(format!("on_write_error {error} {items:?}"));
        }
    }
    #[derive(Debug, thiserror::Error)]
    #[error("busy")]
    struct Busy;

    let log: Log = Arc::default();
    let (a, b) = (
        Arc::new(Heard("A", log.clone())),
        Arc::new(Heard("B", log.clone())),
    );
    let failures = Arc::new(AtomicUsize::new(1));
    let f = failures.clone();
    let step = StepBuilder::new("heard")
        .chunk_size(3)
        .item_read_listener::<i32>(a.clone())
        .item_read_listener::<i32>(b)
        .item_process_listener::<i32, i32>(a.clone())
        .item_write_listener::<i32>(a)
        .retry(batch::classify::ErrorMatcher::of::<Busy>())
        .retry_limit(2)
        .chunk(move |_| {
            let f = f.clone();
            async move {
                Ok(chunk(
                    ListReader::new(vec![1, 2, 3]),
                    batch::adapt::processor(|n: &i32| Ok((*n != 2).then_some(n * 10))),
                    batch::adapt::writer(move |_: &[i32]| {
                        if f.fetch_sub(1, Ordering::SeqCst) == 1 {
                            return Err(Busy.into());
                        }
                        Ok(())
                    }),
                ))
            }
        });
    let db = db();
    let execution = JobLauncher::new(open(&db).await)
        .run(job("heard", vec![step]), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    let log = log.lock().unwrap();
    let reads: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|e| e.contains("read"))
        .collect();
    let mut expected = Vec::new();
    for n in 1..=3 {
        expected.extend([
            "A before_read".to_owned(),
            "B before_read".to_owned(),
            format!("B after_read {n}"),
            format!("A after_read {n}"),
        ]);
    }
    // The end of input: before-hooks only.
    expected.extend(["A before_read".to_owned(), "B before_read".to_owned()]);
    assert_eq!(reads, expected);
    let rest: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|e| !e.contains("read"))
        .collect();
    let processed = [
        "A before_process 1",
        "A after_process 1 -> Some(10)",
        "A before_process 2",
        "A after_process 2 -> None",
        "A before_process 3",
        "A after_process 3 -> Some(30)",
    ];
    // The failed write, then the retry of the chunk, processed again (the processor
    // is transactional) but for the filtered item, which left the chunk, as in
    // Spring; then written.
    let mut expected: Vec<&str> = processed.to_vec();
    expected.extend(["A before_write [10, 30]", "A on_write_error busy [10, 30]"]);
    expected.extend(
        processed
            .iter()
            .filter(|e| !e.contains("process 2"))
            .copied(),
    );
    expected.extend(["A before_write [10, 30]", "A after_write [10, 30]"]);
    assert_eq!(rest, expected);
}

/// A chunk size of 0 from the job parameter that sets it is a typed error the caller
/// can match, found in the step's failures.
#[tokio::test]
async fn a_zero_chunk_size_parameter_is_a_typed_setup_error() {
    let step = StepBuilder::new("sized")
        .chunk_size_param("chunk")
        .chunk(|_| async {
            Ok(read_write(
                ListReader::new(vec![1, 2]),
                batch::adapt::writer(|_: &[i32]| Ok(())),
            ))
        });
    let execution = JobLauncher::new(InMemoryJobRepository::new())
        .run(
            job("sized", vec![step]),
            JobParameters::new().with("chunk", 0i64),
        )
        .await
        .unwrap();
    let s = only_step(&execution);
    assert_eq!(s.status, BatchStatus::Failed);
    assert!(
        matches!(
            s.failures[0].find::<batch::step::StepSetupError>(),
            Some(batch::step::StepSetupError::ZeroChunkSize { parameter }) if parameter == "chunk"
        ),
        "{:?}",
        s.failures
    );
}

/// A span as the subscriber saw it: id, name, fields, parent.
type SeenSpan = (u64, String, String, Option<u64>);

/// What a subscriber sees of a run: each span's name, fields and parent.
#[derive(Default)]
struct SpanLog {
    next: AtomicUsize,
    spans: Mutex<Vec<SeenSpan>>,
    entered: Mutex<Vec<u64>>,
}

struct Spans(Arc<SpanLog>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => self.0.entered.lock().unwrap().last().copied(),
            None => None,
        };
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        self.0.spans.lock().unwrap().push((
            id,
            attrs.metadata().name().to_owned(),
            fields.0,
            parent,
        ));
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, span: &tracing::span::Id) {
        self.0.entered.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &tracing::span::Id) {
        self.0.entered.lock().unwrap().pop();
    }
}

/// A run is one trace: a `job` span with the execution's ids, a `step` span inside it
/// with the step execution's id, and one `chunk` span per chunk inside that.
#[test]
fn a_run_is_a_trace_of_job_step_and_chunk_spans_with_their_ids() {
    let log = Arc::new(SpanLog::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let execution = tracing::subscriber::with_default(Spans(log.clone()), || {
        runtime.block_on(async {
            let launcher = JobLauncher::with_repository(Arc::new(InMemoryJobRepository::new()));
            launcher
                .run(
                    job(
                        "traced",
                        vec![list_step("s", 2, vec!["a", "b", "c", "d", "e"], None)],
                    ),
                    JobParameters::new(),
                )
                .await
                .unwrap()
        })
    });
    assert_eq!(execution.status, BatchStatus::Completed);
    let step = only_step(&execution);
    let spans = log.spans.lock().unwrap();
    let named = |name: &str| spans.iter().filter(|s| s.1 == name).collect::<Vec<_>>();
    let jobs = named("job");
    assert_eq!(jobs.len(), 1, "{spans:?}");
    assert!(
        jobs[0].2.contains("job.name=traced")
            && jobs[0]
                .2
                .contains(&format!("job.execution_id={}", execution.id))
            && jobs[0]
                .2
                .contains(&format!("job.instance_id={}", execution.instance.id)),
        "{:?}",
        jobs[0]
    );
    let steps = named("step");
    assert_eq!(steps.len(), 1, "{spans:?}");
    assert_eq!(
        steps[0].3,
        Some(jobs[0].0),
        "the step's span is inside the job's"
    );
    assert!(
        steps[0]
            .2
            .contains(&format!("step.execution_id={}", step.id)),
        "{:?}",
        steps[0]
    );
    let chunks = named("chunk");
    assert_eq!(chunks.len() as u64, step.counts.commit, "{spans:?}");
    assert!(chunks.iter().all(|c| c.3 == Some(steps[0].0)), "{chunks:?}");
    assert!(chunks[0].2.contains("chunk=1"), "{:?}", chunks[0]);
}
