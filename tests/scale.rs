//! Past one task: split flows, partitioned steps, remote workers.
//!
//! - a split runs its flows concurrently; one failing flow fails the job once the other
//!   has finished, and the restart runs only what did not complete;
//! - a partitioned copy (key ranges of `source.id`) fails in one partition: the restart
//!   runs only that partition, from its last commit, the others' rows untouched;
//! - 100,000 rows copied by four `copy_rows worker` processes, one killed with SIGKILL
//!   while it holds a partition: another worker reclaims that partition, every row is
//!   copied once and the manager counts 100,000 (PostgreSQL and MySQL/MariaDB only:
//!   on SQLite `worker` is refused, which is checked too).
//!
//! SQLite runs always; PostgreSQL and MySQL when `BATCH_TEST_POSTGRES_URL` /
//! `BATCH_TEST_MYSQL_URL` name a server (see `tests/support`).

#[macro_use]
mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batch::prelude::*;
use batch::repository::DbKind;
use batch::sql::{KeysetReader, SqlRow, SqlWriter};
use batch::step::partition::{
    FilePartitioner, KeyRange, KeyRangePartitioner, Partition, PartitionFile,
};
use batch::step::{FromStepScope, StepBuilder, StepDef};

on_databases!(run; [sqlite => Sqlite, postgres => Postgres, mysql => MySql]; [
    a_failed_split_flow_fails_the_job_and_restarts_alone,
    a_failed_partition_restarts_alone_from_its_commit,
    a_stopped_partitioned_step_resumes_every_partition,
]);

/// The servers only: workers need `FOR UPDATE SKIP LOCKED`.
mod workers {
    use super::*;
    on_databases!(run; [postgres => Postgres, mysql => MySql]; [
        four_workers_one_killed_copy_every_row_once,
        a_worker_stopped_by_sigterm_hands_its_partition_back,
        a_worker_started_before_its_launcher_waits_for_it,
    ]);
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(support::Fresh) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = support::open_fresh(kind, name).await else {
        return;
    };
    // The process test takes the machine's cores; the others wait for it.
    let _turn = ONE_AT_A_TIME.lock().await;
    support::create_copy_tables(&db.pool).await;
    case(db).await;
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    name: String,
    amount: i64,
}

/// Every row of `source` is in `target` exactly once.
async fn assert_copied_once(pool: &DbPool, rows: i64) {
    let count = support::int(pool, "SELECT COUNT(*) FROM target").await;
    let distinct = support::int(pool, "SELECT COUNT(DISTINCT id) FROM target").await;
    let right = support::int(
        pool,
        "SELECT COUNT(*) FROM target t JOIN source s ON s.id = t.id AND t.amount = s.amount * 3 + 1",
    )
    .await;
    assert_eq!((count, distinct, right), (rows, rows, rows));
}

/// A tasklet step that records its name in `ran`, fails while `fail` is set, and
/// first waits at `meet` (when given) for the other flow of the split.
fn tasklet_step(
    name: &'static str,
    ran: Arc<Mutex<Vec<String>>>,
    fail: Option<Arc<AtomicBool>>,
    meet: Option<Arc<tokio::sync::Barrier>>,
) -> StepDef {
    StepBuilder::new(name).tasklet(move |_| {
        let (ran, fail, meet) = (ran.clone(), fail.clone(), meet.clone());
        async move {
            if let Some(meet) = meet {
                // Both flows must be here at once: a split running its flows one after
                // the other never gets past this (the guard fails the test instead).
                tokio::time::timeout(Duration::from_secs(60), meet.wait())
                    .await
                    .map_err(|_| Error::msg("the flows of the split did not run concurrently"))?;
            }
            Ok(move |_: &mut TaskletContext<'_>| {
                ran.lock().unwrap().push(name.to_owned());
                if fail.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    return Err(Error::msg(format!("{name} fails")));
                }
                Ok::<_, Error>(RepeatStatus::Finished)
            })
        }
    })
}

async fn a_failed_split_flow_fails_the_job_and_restarts_alone(db: support::Fresh) {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicBool::new(true));
    let meet = Arc::new(tokio::sync::Barrier::new(2));
    let job = || {
        let left = Flow::start(tasklet_step("left1", ran.clone(), None, Some(meet.clone())))
            .next(tasklet_step("left2", ran.clone(), None, None))
            .build();
        let right = Flow::start(tasklet_step(
            "right",
            ran.clone(),
            Some(fail.clone()),
            Some(meet.clone()),
        ))
        .build();
        let flow = Flow::start(tasklet_step("before", ran.clone(), None, None))
            .split("parallel", [left, right])
            .next(tasklet_step("after", ran.clone(), None, None))
            .build();
        Job::new("splitJob", flow)
    };
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let first = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(first.status, BatchStatus::Failed, "{first:?}");
    let status_of = |e: &JobExecution, name: &str| {
        e.step_executions
            .iter()
            .find(|s| s.step_name == name)
            .map(|s| s.status)
    };
    // The failing flow did not cut the other short, and nothing after the split ran.
    assert_eq!(status_of(&first, "left2"), Some(BatchStatus::Completed));
    assert_eq!(status_of(&first, "right"), Some(BatchStatus::Failed));
    assert_eq!(status_of(&first, "after"), None);
    let mut names = support::step_names(&first);
    names.sort();
    assert_eq!(names, ["before", "left1", "left2", "right"]);

    ran.lock().unwrap().clear();
    fail.store(false, Ordering::SeqCst);
    // The restart's `right` meets no other flow: let it pass the barrier alone.
    let restart_meet = meet.clone();
    tokio::spawn(async move { restart_meet.wait().await });
    let second = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(second.status, BatchStatus::Completed, "{second:?}");
    assert_eq!(support::step_names(&second), ["right", "after"]);
    assert_eq!(*ran.lock().unwrap(), ["right", "after"]);
    assert_eq!(
        support::int(
            &db.pool,
            "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = 'left2'"
        )
        .await,
        1
    );
}

/// The copy of one key range: rows of `source` between the partition's bounds into
/// `target`, failing on row `fail_at` while `fail` is set.
fn copy_range(fail: Arc<AtomicBool>, fail_at: i64, meet: Arc<tokio::sync::Barrier>) -> StepDef {
    StepBuilder::new("copyRange")
        .chunk_size(10)
        .chunk(move |scope| {
            let (fail, meet) = (fail.clone(), meet.clone());
            async move {
                let pool: DbPool = scope.resource()?;
                let select = select_range(&scope)?;
                if fail.load(Ordering::SeqCst) {
                    // The four partitions of the first run all start before any ends.
                    tokio::time::timeout(Duration::from_secs(60), meet.wait())
                        .await
                        .map_err(|_| Error::msg("the partitions did not run concurrently"))?;
                }
                let reader = KeysetReader::select(pool, select, "id")
                    .page_size(25)
                    .name("source")
                    .map(source_row, |row: &Row| row.id);
                let processor = move |row: &Row| {
                    if row.id == fail_at && fail.load(Ordering::SeqCst) {
                        return Err(Error::msg(format!("row {fail_at} fails")));
                    }
                    Ok(Some(Row {
                        amount: row.amount * 3 + 1,
                        ..row.clone()
                    }))
                };
                Ok(chunk(reader, processor, target_writer()))
            }
        })
}

/// The SELECT of the rows of `source` between the partition's bounds, which the
/// partitioner put in its step context.
fn select_range(scope: &batch::step::StepScope) -> Result<String> {
    let KeyRange { min, max } = KeyRange::from_scope(scope)?;
    Ok(format!(
        "SELECT id, name, amount FROM source WHERE id BETWEEN {min} AND {max}"
    ))
}

fn source_row(row: &SqlRow) -> Result<Row> {
    Ok(Row {
        id: row.get("id")?,
        name: row.get("name")?,
        amount: row.get("amount")?,
    })
}

fn target_writer() -> SqlWriter<Row> {
    SqlWriter::insert("target", ["id", "name", "amount"], |r: &Row, b| {
        b.bind(r.id).bind(r.name.as_str()).bind(r.amount);
    })
}

async fn a_failed_partition_restarts_alone_from_its_commit(db: support::Fresh) {
    support::seed_source(&db.pool, 400).await;
    let fail = Arc::new(AtomicBool::new(true));
    let meet = Arc::new(tokio::sync::Barrier::new(4));
    let worker = copy_range(fail.clone(), 237, meet.clone());
    let job = || {
        let manager = Partition::new(
            "copy",
            worker.clone(),
            KeyRangePartitioner::new("source", "id"),
        )
        .grid_size(4);
        Job::new("partitionedJob", Flow::start(manager).build())
    };
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let first = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(first.status, BatchStatus::Failed, "{first:?}");
    let stored = db.repo.job_execution(first.id).await.unwrap().unwrap();
    let row = |e: &JobExecution, name: &str| {
        e.step_executions
            .iter()
            .find(|s| s.step_name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {e:?}"))
    };
    let manager = row(&stored, "copy");
    assert_eq!(manager.status, BatchStatus::Failed);
    assert!(
        manager.exit_status.description.contains("copy:partition2"),
        "{}",
        manager.exit_status.description
    );
    for i in [0, 1, 3] {
        let p = row(&stored, &format!("copy:partition{i}"));
        assert_eq!(
            (p.status, p.counts.read, p.counts.write),
            (BatchStatus::Completed, 100, 100)
        );
    }
    // Rows 201..=230 were committed in three chunks before row 237 failed the fourth.
    let failed = row(&stored, "copy:partition2");
    assert_eq!(
        (failed.status, failed.counts.write),
        (BatchStatus::Failed, 30)
    );
    assert_eq!(manager.counts.write, 330);

    fail.store(false, Ordering::SeqCst);
    let second = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(second.status, BatchStatus::Completed, "{second:?}");
    let stored_again = db.repo.job_execution(second.id).await.unwrap().unwrap();
    let mut names = support::step_names(&stored_again);
    names.sort();
    assert_eq!(names, ["copy", "copy:partition2"]);
    // The partition went on from its last commit: the 70 rows left, read once.
    let resumed = row(&stored_again, "copy:partition2");
    assert_eq!((resumed.counts.read, resumed.counts.write), (70, 70));
    assert_eq!(row(&stored_again, "copy").counts.write, 70);
    // The other partitions' rows are as the first run left them.
    let after = db.repo.job_execution(first.id).await.unwrap().unwrap();
    for i in [0, 1, 3] {
        let name = format!("copy:partition{i}");
        let (before, now) = (row(&stored, &name), row(&after, &name));
        assert_eq!((before.counts, before.version), (now.counts, now.version));
        let runs = support::int(
            &db.pool,
            &format!("SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = '{name}'"),
        )
        .await;
        assert_eq!(runs, 1, "{name}");
    }
    assert_copied_once(&db.pool, 400).await;
}

async fn a_stopped_partitioned_step_resumes_every_partition(db: support::Fresh) {
    support::seed_source(&db.pool, 400).await;
    let launcher = JobLauncher::with_repository(db.repo.clone());
    let stop = launcher.stop_signal();
    let stop_at = Arc::new(AtomicBool::new(true));
    let worker = {
        let (stop, stop_at) = (stop.clone(), stop_at.clone());
        StepBuilder::new("copyRange")
            .chunk_size(10)
            .chunk(move |scope| {
                let (stop, stop_at) = (stop.clone(), stop_at.clone());
                async move {
                    let pool: DbPool = scope.resource()?;
                    let select = select_range(&scope)?;
                    let reader = KeysetReader::select(pool, select, "id")
                        .name("source")
                        .map(source_row, |row: &Row| row.id);
                    let processor = move |row: &Row| {
                        // Row 150 (in the second partition) asks for the stop.
                        if row.id == 150 && stop_at.swap(false, Ordering::SeqCst) {
                            stop.stop();
                        }
                        Ok::<_, Error>(Some(Row {
                            amount: row.amount * 3 + 1,
                            ..row.clone()
                        }))
                    };
                    Ok(chunk(reader, processor, target_writer()))
                }
            })
    };
    // One partition at a time: the first completes, the second stops at its chunk
    // boundary, the last two stop before they read anything.
    let job = || {
        let manager = Partition::new(
            "copy",
            worker.clone(),
            KeyRangePartitioner::new("source", "id"),
        )
        .grid_size(4)
        .concurrency(1);
        Job::new("stoppedJob", Flow::start(manager).build())
    };
    let first = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(first.status, BatchStatus::Stopped, "{first:?}");
    let stored = db.repo.job_execution(first.id).await.unwrap().unwrap();
    let status = |name: &str| {
        stored
            .step_executions
            .iter()
            .find(|s| s.step_name == name)
            .map(|s| (s.status, s.counts.write))
    };
    assert_eq!(status("copy").map(|s| s.0), Some(BatchStatus::Stopped));
    assert_eq!(
        status("copy:partition0"),
        Some((BatchStatus::Completed, 100))
    );
    assert_eq!(status("copy:partition1"), Some((BatchStatus::Stopped, 50)));
    assert_eq!(status("copy:partition3"), Some((BatchStatus::Stopped, 0)));
    let second = launcher.run(job(), JobParameters::new()).await.unwrap();
    assert_eq!(second.status, BatchStatus::Completed, "{second:?}");
    let stored = db.repo.job_execution(second.id).await.unwrap().unwrap();
    let mut names = support::step_names(&stored);
    names.sort();
    assert_eq!(
        names,
        [
            "copy",
            "copy:partition1",
            "copy:partition2",
            "copy:partition3"
        ]
    );
    let copy = stored
        .step_executions
        .iter()
        .find(|s| s.step_name == "copy")
        .unwrap();
    assert_eq!(copy.counts.write, 300 - 50);
    assert_copied_once(&db.pool, 400).await;
}

fn copy_rows(url: &str, args: &[&str], out: &std::path::Path) -> Child {
    Command::new(support::example("copy_rows"))
        .arg("--db")
        .arg(url)
        .args(args)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`, failing the test if it has not exited after `limit` (a guard
/// against a hang, not a measure of speed).
fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("a process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn four_workers_one_killed_copy_every_row_once(db: support::Fresh) {
    let rows = 100_000;
    support::seed_source(&db.pool, rows).await;
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("worker{i}.log")))
        .collect();
    let mut workers: Vec<Child> = logs
        .iter()
        .map(|log| copy_rows(&db.url, &["worker", "--exit-when-idle"], log))
        .collect();
    // 1,000 chunks with a 2 ms pause before each: each partition runs for half a
    // second at least, however fast the machine.
    let mut manager = copy_rows(
        &db.url,
        &[
            "partitions=4,long",
            "remote=true,bool",
            "pause.ms=2,long,false",
        ],
        &dir.path().join("manager.log"),
    );
    // Kill the worker of a partition that has committed a few chunks, mid-run.
    let started = Instant::now();
    let (victim, partition) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no partition got going"
        );
        let owners = support::texts(
            &db.pool,
            "SELECT EXIT_MESSAGE FROM BATCH_STEP_EXECUTION WHERE STATUS = 'STARTED' \
             AND STEP_NAME LIKE '%:partition%' AND COMMIT_COUNT >= 5 ORDER BY STEP_EXECUTION_ID",
        )
        .await;
        let pid = owners.iter().flatten().find_map(|m| {
            let rest = m.split("running in process ").nth(1)?;
            rest.split(' ').next()?.parse::<u32>().ok()
        });
        if let Some(pid) = pid
            && let Some(i) = workers.iter().position(|w| w.id() == pid)
        {
            let id = support::int(
                &db.pool,
                &format!(
                    "SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION WHERE EXIT_MESSAGE LIKE '%running in process {pid} %'"
                ),
            )
            .await;
            break (i, id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    workers[victim].kill().unwrap();
    workers[victim].wait().unwrap();

    let code = wait(&mut manager, Duration::from_secs(600));
    let mut errors = String::new();
    if let Some(mut e) = manager.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut errors);
    }
    assert_eq!(code, 0, "the manager: {errors}");
    let mut said = String::new();
    for (i, w) in workers.iter_mut().enumerate() {
        if i != victim {
            assert_eq!(wait(w, Duration::from_secs(120)), 0, "worker {i}");
            said.push_str(&std::fs::read_to_string(&logs[i]).unwrap());
        }
    }
    assert!(
        said.contains(&format!("reclaimed step execution {partition}:")),
        "no survivor reclaimed step execution {partition}: {said}"
    );
    assert_copied_once(&db.pool, rows).await;
    let job_status = support::texts(&db.pool, "SELECT STATUS FROM BATCH_JOB_EXECUTION").await;
    assert_eq!(job_status, [Some("COMPLETED".to_owned())]);
    let manager_counts = |column: &str| {
        format!("SELECT {column} FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = 'partitionedCopy'")
    };
    assert_eq!(
        support::int(&db.pool, &manager_counts("READ_COUNT")).await,
        rows
    );
    assert_eq!(
        support::int(&db.pool, &manager_counts("WRITE_COUNT")).await,
        rows
    );
    // The reclaimed partition kept what the killed worker had committed: one step
    // execution for the whole range, as many rows read as written.
    let reclaimed = support::int(
        &db.pool,
        &format!(
            "SELECT READ_COUNT FROM BATCH_STEP_EXECUTION WHERE STEP_EXECUTION_ID = {partition}"
        ),
    )
    .await;
    assert_eq!(reclaimed, rows / 4);
    assert_eq!(
        support::int(&db.pool, "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION").await,
        5
    );
}

async fn a_worker_stopped_by_sigterm_hands_its_partition_back(db: support::Fresh) {
    let rows = 3_000;
    support::seed_source(&db.pool, rows).await;
    let dir = tempfile::tempdir().unwrap();
    let first_log = dir.path().join("first.log");
    let mut first = copy_rows(&db.url, &["worker"], &first_log);
    // One partition of 30 chunks, a 20 ms pause before each.
    let mut manager = copy_rows(
        &db.url,
        &[
            "partitions=1,long",
            "remote=true,bool",
            "pause.ms=20,long,false",
        ],
        &dir.path().join("manager.log"),
    );
    let started = Instant::now();
    let commits = "SELECT COALESCE(MAX(COMMIT_COUNT), 0) FROM BATCH_STEP_EXECUTION \
                   WHERE STEP_NAME = 'partitionedCopy:partition0'";
    while support::int(&db.pool, commits).await < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the partition did not get going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert_eq!(wait(&mut first, Duration::from_secs(120)), 0);
    let said = std::fs::read_to_string(&first_log).unwrap();
    assert!(said.contains("handed back at its last commit"), "{said}");
    // Waiting again, with what it had committed.
    let state = support::texts(
        &db.pool,
        "SELECT STATUS FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = 'partitionedCopy:partition0'",
    )
    .await;
    assert_eq!(state, [Some("STARTING".to_owned())]);
    let written = support::int(
        &db.pool,
        "SELECT WRITE_COUNT FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = 'partitionedCopy:partition0'",
    )
    .await;
    assert!(written >= 300, "{written}");
    assert_eq!(
        support::int(&db.pool, "SELECT COUNT(*) FROM target").await,
        written
    );

    let mut second = copy_rows(
        &db.url,
        &["worker", "--exit-when-idle"],
        &dir.path().join("second.log"),
    );
    assert_eq!(wait(&mut manager, Duration::from_secs(300)), 0);
    assert_eq!(wait(&mut second, Duration::from_secs(120)), 0);
    assert_copied_once(&db.pool, rows).await;
    let counts = support::int(
        &db.pool,
        "SELECT READ_COUNT FROM BATCH_STEP_EXECUTION WHERE STEP_NAME = 'partitionedCopy:partition0'",
    )
    .await;
    assert_eq!(counts, rows);
}

/// Workers and their launcher start in any order (two Kubernetes Jobs): a worker
/// with `--exit-when-idle` that has not seen its job yet waits `--idle-wait` (60 s by
/// default) for it, not the few seconds that end its wait once the job has run.
async fn a_worker_started_before_its_launcher_waits_for_it(db: support::Fresh) {
    let rows = 2_000;
    support::seed_source(&db.pool, rows).await;
    let dir = tempfile::tempdir().unwrap();
    let mut early = copy_rows(
        &db.url,
        &["worker", "--exit-when-idle"],
        &dir.path().join("early.log"),
    );
    // Longer than the settle after a run (3 s): a worker that took an empty
    // repository for the end of its job would have exited by now.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        early.try_wait().unwrap().is_none(),
        "the worker exited before its launcher started: {}",
        std::fs::read_to_string(dir.path().join("early.log")).unwrap()
    );
    let mut manager = copy_rows(
        &db.url,
        &["partitions=2,long", "remote=true,bool"],
        &dir.path().join("manager.log"),
    );
    assert_eq!(wait(&mut manager, Duration::from_secs(300)), 0);
    assert_eq!(wait(&mut early, Duration::from_secs(120)), 0);
    assert_copied_once(&db.pool, rows).await;
    let early_log = std::fs::read_to_string(dir.path().join("early.log")).unwrap();
    assert!(early_log.contains("no partition left"), "{early_log}");

    // A worker that never sees an execution of its job gives up after --idle-wait.
    let late_log = dir.path().join("late.log");
    let mut late = copy_rows(
        &db.url,
        &["worker", "--exit-when-idle", "--idle-wait", "1s"],
        &late_log,
    );
    assert_eq!(wait(&mut late, Duration::from_secs(120)), 0);
    let late_log = std::fs::read_to_string(late_log).unwrap();
    assert!(late_log.contains("within 1s (--idle-wait)"), "{late_log}");
}

/// One partition per file, in name order, each with its path in its context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partition_per_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.csv", "a.csv", "c.csv", "notes.txt"] {
        std::fs::write(dir.path().join(name), "x\n").unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let worker = StepBuilder::new("importFile").tasklet(move |scope| {
        let record = record.clone();
        async move {
            let file = PartitionFile::from_scope(&scope)?
                .to_string_lossy()
                .into_owned();
            let partition = scope.identity().step_name.clone();
            Ok(move |_: &mut TaskletContext<'_>| {
                record
                    .lock()
                    .unwrap()
                    .push((partition.clone(), file.clone()));
                Ok::<_, Error>(RepeatStatus::Finished)
            })
        }
    });
    let pattern = dir.path().join("*.csv");
    let manager = Partition::new("import", worker, FilePartitioner::pattern(&pattern)).grid_size(2);
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let e = launcher
        .run(
            Job::new("files", Flow::start(manager).build()),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(e.status, BatchStatus::Completed, "{e:?}");
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expected: Vec<(String, String)> = ["a.csv", "b.csv", "c.csv"]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                format!("import:partition{i}"),
                dir.path().join(f).to_string_lossy().into_owned(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
}

/// On SQLite the subcommand is refused with the reason, before anything is written.
#[test]
fn a_worker_on_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("batch.db");
    let out = Command::new(support::example("copy_rows"))
        .arg("--db")
        .arg(format!("sqlite:{}", db.display()))
        .arg("worker")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("remote workers need a PostgreSQL or MySQL/MariaDB job repository"),
        "{text}"
    );
    assert!(!db.exists());
}

/// A malformed grid size from a job parameter fails the partitioned step before any
/// partition is made, with a typed error naming the setting and keeping the
/// parameter's own error as its source.
#[tokio::test]
async fn a_malformed_grid_size_parameter_is_a_typed_error() {
    use batch::step::partition::PartitionError;
    let worker = StepBuilder::new("part").tasklet(|_| async {
        Ok(|_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished))
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "x\n").unwrap();
    let manager = Partition::new(
        "import",
        worker,
        FilePartitioner::pattern(dir.path().join("*.csv")),
    )
    .grid_size_param("grid");
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let parameters = JobParameters::new().with("grid", "many");
    let e = launcher
        .run(Job::new("files", Flow::start(manager).build()), parameters)
        .await
        .unwrap();
    assert_eq!(e.status, BatchStatus::Failed, "{e:?}");
    assert_eq!(e.step_executions.len(), 1, "no partition was made: {e:?}");
    let failure = &e.step_executions[0].failures[0];
    match failure.find::<PartitionError>() {
        Some(PartitionError::Setting { what, cause }) => {
            assert_eq!(what, "grid size");
            assert!(cause.to_string().contains("grid"), "{cause}");
        }
        other => panic!("expected a PartitionError::Setting, got {other:?} in {failure:?}"),
    }
    assert!(
        failure.find::<batch::params::ParameterError>().is_some(),
        "the parameter's error is in the chain: {}",
        failure.report()
    );
}

/// A step that takes a partition's share but runs outside a partitioned step fails
/// with a typed error naming the step, the missing key and the partitioner to use.
#[tokio::test]
async fn a_share_outside_a_partition_is_a_typed_error() {
    use batch::step::partition::PartitionError;
    let alone = StepBuilder::new("alone").tasklet(|scope| async move {
        let _range = KeyRange::from_scope(&scope)?;
        Ok(|_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished))
    });
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let e = launcher
        .run(
            Job::new("notPartitioned", Flow::start(alone).build()),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(e.status, BatchStatus::Failed, "{e:?}");
    let failure = &e.step_executions[0].failures[0];
    match failure.find::<PartitionError>() {
        Some(PartitionError::NotAPartition {
            step,
            key,
            partitioner,
            ..
        }) => {
            assert_eq!(
                (step.as_str(), *key, *partitioner),
                ("alone", "minValue", "KeyRangePartitioner")
            );
        }
        other => panic!("expected PartitionError::NotAPartition, got {other:?} in {failure:?}"),
    }
    assert!(
        e.step_executions[0]
            .exit_status
            .description
            .contains("takes a `KeyRange`"),
        "{}",
        e.step_executions[0].exit_status.description
    );
}
