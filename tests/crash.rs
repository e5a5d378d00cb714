//! Real processes against the three databases, with `examples/copy_rows` as the job:
//!
//! - eight processes launching the same instance at once: exactly one runs, the seven
//!   others exit 4 (already running);
//! - exactly-once under crashes: 100,000 rows copied from `source` to `target` (which
//!   has no key, so a row written twice would show) by a process killed with SIGKILL at
//!   ten or more random moments and restarted each time, until a run completes; every
//!   row must then be in `target` once, transformed.
//!
//! SQLite runs always; PostgreSQL and MySQL when `BATCH_TEST_POSTGRES_URL` /
//! `BATCH_TEST_MYSQL_URL` name a server (see `tests/support`). The cases of one
//! database run one at a time (a lock), so that process timings do not depend on what
//! else the suite runs.

#[macro_use]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use batch::prelude::*;
use batch::repository::DbKind;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

on_databases!(run; [sqlite => Sqlite, postgres => Postgres, mysql => MySql]; [
    eight_processes_one_run,
    exactly_once_under_sigkill,
    times_are_utc_in_every_time_zone,
]);

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(String, DbPool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // The job repository's tables, then the job's own, filled by the test (the
    // example's setup would fill an empty `source` too, but from each process).
    let Some(db) = support::open_fresh(kind, name).await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    support::create_copy_tables(&db.pool).await;
    case(db.url.clone(), db.pool.clone()).await;
}

fn copy_rows(url: &str, args: &[&str]) -> Child {
    copy_rows_in(url, args, None)
}

/// `copy_rows` in the time zone `tz` (a POSIX TZ string), or in this process's.
fn copy_rows_in(url: &str, args: &[&str], tz: Option<&str>) -> Child {
    let mut command = Command::new(support::example("copy_rows"));
    if let Some(tz) = tz {
        command.env("TZ", tz);
    }
    command
        .arg("--db")
        .arg(url)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every row of `source` is in `target` once, transformed as the example does.
async fn assert_copied_once(pool: &DbPool, rows: i64) {
    let count = support::int(pool, "SELECT COUNT(*) FROM target").await;
    let distinct = support::int(pool, "SELECT COUNT(DISTINCT id) FROM target").await;
    let right = support::int(
        pool,
        "SELECT COUNT(*) FROM target t JOIN source s ON s.id = t.id \
         WHERE t.amount = s.amount * 3 + 1 AND t.name = UPPER(s.name)",
    )
    .await;
    assert_eq!((count, distinct, right), (rows, rows, rows));
}

async fn eight_processes_one_run(url: String, pool: DbPool) {
    let rows = 3000;
    support::seed_source(&pool, rows).await;
    // 30 chunks with a 30 ms pause before each: the winner runs for a second at least,
    // while the others start.
    let children: Vec<Child> = (0..8)
        .map(|_| copy_rows(&url, &["run=race", "pause.ms=30,long,false"]))
        .collect();
    let mut codes = Vec::new();
    let mut errors = String::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        codes.push(out.status.code().expect("exited"));
        errors.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // One run; each other launch is refused: "already running" (4) while the run
    // lives, or "already complete" (3) if a loaded machine started it after the run
    // ended. Either way it wrote nothing.
    codes.sort();
    assert_eq!(codes[0], 0, "{errors}");
    assert!(
        codes[1..].iter().all(|c| *c == 3 || *c == 4),
        "{codes:?}: {errors}"
    );
    let running = codes.iter().filter(|c| **c == 4).count();
    let complete = codes.iter().filter(|c| **c == 3).count();
    assert_eq!(
        errors.matches("already running").count(),
        running,
        "{errors}"
    );
    assert_eq!(
        errors.matches("already complete").count(),
        complete,
        "{errors}"
    );
    eprintln!("one run; {running} launches refused as running, {complete} as complete");
    assert_eq!(
        support::int(&pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await,
        1
    );
    assert_copied_once(&pool, rows).await;
}

use support::Random;

async fn exactly_once_under_sigkill(url: String, pool: DbPool) {
    let rows = 100_000;
    support::seed_source(&pool, rows).await;
    let mut random = Random::new();
    let started = Instant::now();
    let (mut kills, mut launches) = (0, 0);
    // 1000 chunks of 100 with a 3 ms pause before each: a run needs 3 s at least, on any
    // machine, and a run killed at most 250 ms in has copied at most 84 chunks, so ten
    // kills always land before the end, however fast the machine. A kill lands in a
    // chunk's open transaction, between two, or before the launch has committed.
    let args = ["run=crash", "pause.ms=3,long,false"];
    loop {
        let mut child = copy_rows(&url, &args);
        launches += 1;
        if kills < 10 {
            let moment = Duration::from_millis(20 + random.below(230));
            tokio::time::sleep(moment).await;
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "launch {launches} after {kills} kills: {stderr}"
        );
        break;
    }
    eprintln!(
        "{kills} kills, {launches} launches, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 10, "the job ended before ten kills: {kills}");
    assert_copied_once(&pool, rows).await;
    // Each killed run that had started was found dead and marked FAILED by the next
    // launch; the last one completed.
    let statuses: Vec<String> = support::texts(
        &pool,
        "SELECT STATUS FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID",
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    let (last, before) = statuses.split_last().unwrap();
    assert_eq!(last, "COMPLETED");
    assert!(before.iter().all(|s| s == "FAILED"), "{statuses:?}");
    assert!(statuses.len() <= kills + 1, "{statuses:?}");
    let dead = support::int(
        &pool,
        "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE EXIT_MESSAGE LIKE '%found dead%'",
    )
    .await;
    assert_eq!(dead as usize, before.len());
}

/// Hosts in other time zones share one repository: every time a run writes is UTC, so
/// a heartbeat written 14 hours ahead (or 12 behind) of this process's clock is never
/// read as stale or as from the future.
async fn times_are_utc_in_every_time_zone(url: String, pool: DbPool) {
    support::seed_source(&pool, 300).await;
    // POSIX TZ strings need no time zone database: `XYZ-14` is UTC+14.
    for (run, tz) in [("east", "XYZ-14"), ("west", "XYZ+12")] {
        let out = copy_rows_in(&url, &[&format!("run={run}")], Some(tz))
            .wait_with_output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let repo = batch::repository::open_repository(&url).await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let near = |what: &str, t: Option<chrono::NaiveDateTime>| {
        let t = t.unwrap_or_else(|| panic!("{what} is set"));
        let off = (t - now).num_minutes().abs();
        assert!(off < 10, "{what} is {t}, {off} minutes from UTC now {now}");
    };
    let page = repo
        .find_job_executions(&batch::repository::ExecutionQuery::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    for summary in page {
        let e = repo.job_execution(summary.id).await.unwrap().unwrap();
        near("CREATE_TIME", Some(e.create_time));
        near("START_TIME", e.start_time);
        near("END_TIME", e.end_time);
        near("LAST_UPDATED", e.last_updated);
        for s in &e.step_executions {
            near("step START_TIME", s.start_time);
            near("step END_TIME", s.end_time);
            near("step LAST_UPDATED", s.last_updated);
        }
    }
}
