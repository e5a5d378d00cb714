//! The seed-002 examples run as a user runs them (the compiled example binaries, in a
//! fresh directory), their exit statuses and the Spring Batch tables read back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::{Row, SqlitePool};

/// `cargo test` builds the examples next to the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

fn run(dir: &Path, name: &str, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(example(name))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        status.code().expect("exited normally"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

async fn open(dir: &Path) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite:{}", dir.join("batch.db").display()))
        .await
        .unwrap()
}

#[derive(Debug, PartialEq)]
struct StepRow {
    name: String,
    status: String,
    read: i64,
    write: i64,
    filter: i64,
    commit: i64,
    rollback: i64,
}

async fn steps(pool: &SqlitePool) -> Vec<StepRow> {
    sqlx::query(
        "SELECT STEP_NAME, STATUS, READ_COUNT, WRITE_COUNT, FILTER_COUNT, COMMIT_COUNT, ROLLBACK_COUNT \
         FROM BATCH_STEP_EXECUTION ORDER BY STEP_EXECUTION_ID",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| StepRow {
        name: r.get(0),
        status: r.get(1),
        read: r.get(2),
        write: r.get(3),
        filter: r.get(4),
        commit: r.get(5),
        rollback: r.get(6),
    })
    .collect()
}

fn row(name: &str, status: &str, [read, write, filter, commit, rollback]: [i64; 5]) -> StepRow {
    StepRow {
        name: name.into(),
        status: status.into(),
        read,
        write,
        filter,
        commit,
        rollback,
    }
}

#[tokio::test]
async fn transfer_new_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(d, "transfer_new_user", &["targetDate=2024-01-02,date"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("saving user =>").count(), 6, "{out}");

    let (code, _, err) = run(d, "transfer_new_user", &["targetDate=2024-01-02,date"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already complete"), "{err}");

    let (code, out, _) = run(d, "transfer_new_user", &["targetDate=2024-01-03,date"]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("saving user =>").count(), 0, "{out}");

    let pool = open(d).await;
    assert_eq!(
        steps(&pool).await,
        [
            row("transferNewUserStep", "COMPLETED", [6, 6, 0, 4, 0]),
            row("transferNewUserStep", "COMPLETED", [6, 0, 6, 4, 0]),
        ]
    );
    let instances: Vec<(String, String)> =
        sqlx::query("SELECT JOB_NAME, JOB_KEY FROM BATCH_JOB_INSTANCE ORDER BY JOB_INSTANCE_ID")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(instances.len(), 2, "another date is another instance");
    assert_eq!(
        instances[0].1,
        batch::params::JobParameters::parse_args(["targetDate=2024-01-02,date"])
            .unwrap()
            .job_key()
    );
    let statuses: Vec<(String, String)> =
        sqlx::query("SELECT STATUS, EXIT_CODE FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        statuses,
        [
            ("COMPLETED".into(), "COMPLETED".into()),
            ("COMPLETED".into(), "COMPLETED".into())
        ]
    );
}

#[tokio::test]
async fn transfer_new_user_names_a_bad_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        dir.path(),
        "transfer_new_user",
        &["targetDate=2024-13-01,date"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("targetDate") && err.contains("2024-13-01") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
    let (code, _, err) = run(dir.path(), "transfer_new_user", &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("targetDate") && err.contains("required"),
        "{err}"
    );
    let (code, _, err) = run(
        dir.path(),
        "transfer_new_user",
        &["--db", "postgres://x/y", "targetDate=2024-01-01,date"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--db"), "{err}");
}

/// A repository the runner cannot open is named with its password masked, whether
/// nothing listens or the server refuses the password (PostgreSQL and MariaDB, when
/// their URLs are set).
#[tokio::test]
async fn the_runner_never_prints_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![
        "postgres://batch:s3cret-pw@127.0.0.1:9/batch".to_owned(),
        "mysql://batch:s3cret-pw@127.0.0.1:9/batch".to_owned(),
    ];
    for var in ["BATCH_TEST_POSTGRES_URL", "BATCH_TEST_MYSQL_URL"] {
        if let Ok(url) = std::env::var(var) {
            let (head, tail) = url.split_once('@').expect("a URL with credentials");
            let user = head.rsplit_once(':').expect("user:password").0;
            urls.push(format!("{user}:s3cret-pw@{tail}"));
        }
    }
    for url in &urls {
        let (code, out, err) = run(
            dir.path(),
            "transfer_new_user",
            &["--db", url, "targetDate=2024-01-01,date"],
        );
        assert_eq!(code, 2, "{url}: {err}");
        assert!(
            err.contains(":***@"),
            "{url}: the URL is named, masked: {err}"
        );
        assert!(
            !err.contains("s3cret-pw") && !out.contains("s3cret-pw"),
            "{url}: the password is printed: {err}"
        );
    }
}

/// Starts `copy_rows` with `args` on the SQLite file `db`, and returns it with a
/// read-only pool on the file once `ready` (a query of one number) gives more than 0;
/// fails the test if the run ends first.
async fn copy_rows_until(
    args: &[&str],
    db: &str,
    ready: &'static str,
) -> (std::process::Child, SqlitePool) {
    let mut child = std::process::Command::new(example("copy_rows"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Ok(pool) = SqlitePool::connect(&format!("{db}?mode=ro")).await {
            let seen: Option<i64> = sqlx::query_scalar(ready)
                .fetch_one(&pool)
                .await
                .ok()
                .flatten();
            if seen.unwrap_or(0) > 0 {
                return (child, pool);
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was ready: {ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The first SIGTERM asks for a stop at the next chunk boundary; a second one, while
/// the step is still inside its chunk, exits at once (130). The run is then left
/// STOPPING, as a `kill -9` after a stop request leaves it, and the next launch finds
/// its process gone and restarts it to completion.
#[tokio::test]
async fn a_second_signal_exits_at_once_and_the_next_launch_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("batch.db").display());
    // Three chunks of 100, each a second long: the second signal lands inside one.
    let args = [
        "--db",
        db.as_str(),
        "rows=300,long,false",
        "pause.ms=1000,long,false",
    ];
    let (child, pool) = copy_rows_until(
        &args,
        &db,
        "SELECT COUNT(*) FROM BATCH_STEP_EXECUTION WHERE STATUS = 'STARTED'",
    )
    .await;
    let term = || {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    term();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    term();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("a second signal kills"), "{stderr}");
    let status: String = sqlx::query_scalar("SELECT STATUS FROM BATCH_JOB_EXECUTION")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The stop was recorded, but the run was killed before it reached the boundary.
    assert_eq!(status, "STOPPING", "killed, not stopped");
    pool.close().await;
    let (code, _, stderr) = run(dir.path(), "copy_rows", &args[..3]);
    assert_eq!(code, 0, "the next launch recovers the run: {stderr}");
    let pool = open(dir.path()).await;
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT STATUS FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["FAILED", "COMPLETED"]);
    let copied: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT id) FROM target")
        .fetch_one(&pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM target")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((rows, copied), (300, 300), "every row once");
}

#[tokio::test]
async fn execution_context_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(d, "execution_context_restart", &["fail.on=C,string,false"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(r#"Writing items: ["a", "b"]"#), "{out}");
    assert!(out.contains("Processing failed for item: C"), "{out}");

    let pool = open(d).await;
    assert_eq!(steps(&pool).await, [row("STEP", "FAILED", [2, 2, 0, 1, 1])]);
    let job_status: String = sqlx::query_scalar("SELECT STATUS FROM BATCH_JOB_EXECUTION")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(job_status, "FAILED");
    let ctx: String = sqlx::query_scalar("SELECT SHORT_CONTEXT FROM BATCH_STEP_EXECUTION_CONTEXT")
        .fetch_one(&pool)
        .await
        .unwrap();
    let ctx: serde_json::Value = serde_json::from_str(&ctx).unwrap();
    assert_eq!(ctx["current.index"], 2);

    let (code, out, err) = run(d, "execution_context_restart", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(r#"Writing items: ["c", "d"]"#) && out.contains(r#"Writing items: ["e"]"#),
        "{out}"
    );
    assert!(
        !out.contains(r#""a""#),
        "a restart does not repeat committed items: {out}"
    );
    let executions: Vec<(i64, i64, String)> = sqlx::query(
        "SELECT JOB_EXECUTION_ID, JOB_INSTANCE_ID, STATUS FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(executions.len(), 2);
    assert_eq!(
        executions[0].1, executions[1].1,
        "the same instance, restarted"
    );
    assert_eq!(executions[1].2, "COMPLETED");
    assert_eq!(
        steps(&pool).await,
        [
            row("STEP", "FAILED", [2, 2, 0, 1, 1]),
            row("STEP", "COMPLETED", [3, 3, 0, 2, 0])
        ]
    );

    let (code, _, err) = run(d, "execution_context_restart", &[]);
    assert_eq!(code, 3, "{err}");
}

#[tokio::test]
async fn termination_retry_reproduces_seed_001() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let processed = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix("[ItemProcessor]: execution target = "))
            .map(|s| s.split('_').next().unwrap().to_owned())
            .collect()
    };
    let (code, out, err) = run(d, "termination_retry", &["mode=processor", "patience=1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        processed(&out),
        ["1", "2", "3", "1", "2", "3", "4", "5", "6"]
    );
    assert_eq!(out.matches("(attempts so far = 1)").count(), 1, "{out}");

    let (code, out, _) = run(d, "termination_retry", &["mode=processor", "patience=3"]);
    assert_eq!(code, 1, "fails at the retry limit: {out}");
    assert_eq!(
        processed(&out),
        ["1", "2", "3", "1", "2", "3", "1", "2", "3", "1", "2"]
    );

    let (code, out, err) = run(d, "termination_retry", &["mode=writer", "patience=2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches("[ItemWriter]: recording starts").count(),
        4,
        "{out}"
    );
    assert_eq!(
        processed(&out).len(),
        12,
        "the processor runs again for every write attempt: {out}"
    );

    let pool = open(d).await;
    let rows = steps(&pool).await;
    assert_eq!(
        rows[0],
        row("terminationRetryStep", "COMPLETED", [6, 6, 0, 3, 1])
    );
    assert_eq!(
        rows[1],
        row("terminationRetryStep", "FAILED", [3, 0, 0, 0, 4])
    );
    assert_eq!(
        rows[2],
        row("terminationRetryStep", "COMPLETED", [6, 6, 0, 3, 2])
    );
}

#[tokio::test]
async fn skip_scan_counts_what_reached_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(dir.path(), "skip_scan", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let summaries: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("repeated calls"))
        .collect();
    assert_eq!(
        summaries,
        [
            "  repeated calls: 3, of which to items already delivered: 2",
            "  repeated calls: 3, of which to items already delivered: 2",
            "  repeated calls: 3, of which to items already delivered: 2",
            "  repeated calls: 1, of which to items already delivered: 0",
        ],
        "{out}"
    );
}

#[tokio::test]
async fn repeat_shows_the_three_loops() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(dir.path(), "repeat", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("[processor] apple: pass").count(), 3, "{out}");
    assert!(out.contains(r#"[writer] ["apple***", "pear***"]"#), "{out}");
    assert!(out.contains("[timeout] stopped after"), "{out}");
    assert_eq!(
        out.matches("[limit] call").count(),
        3,
        "two errors swallowed, the third ends it: {out}"
    );
}

/// SIGTERM and SIGHUP stop a run as Ctrl-C does: at the next chunk boundary, the step
/// and job STOPPED (restartable), exit status 1; then the same command completes.
#[tokio::test]
async fn sigterm_and_sighup_stop_at_a_chunk_boundary() {
    for signal in ["TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:{}", dir.path().join("batch.db").display());
        let args = [
            "--db",
            db.as_str(),
            "rows=3000,long,false",
            "pause.ms=20,long,false",
        ];
        // Signal once a chunk has committed: the run is then surely inside the step.
        let (child, pool) = copy_rows_until(
            &args,
            &db,
            "SELECT MAX(COMMIT_COUNT) FROM BATCH_STEP_EXECUTION WHERE STATUS = 'STARTED'",
        )
        .await;
        let killed = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal}: stop requested")),
            "{stderr}"
        );
        let statuses: Vec<(String, String)> = sqlx::query_as(
            "SELECT J.STATUS, S.STATUS FROM BATCH_JOB_EXECUTION J \
             JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            statuses,
            [("STOPPED".to_owned(), "STOPPED".to_owned())],
            "SIG{signal}"
        );
        let (code, _, stderr) = run(dir.path(), "copy_rows", &args);
        assert_eq!(code, 0, "the stopped run restarts and completes: {stderr}");
    }
}

/// The runner closes the repository on its way out: on SQLite the write-ahead log is
/// checkpointed into `batch.db`, so a copy of that file alone holds the whole history.
#[tokio::test]
async fn the_runner_leaves_the_history_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(d, "transfer_new_user", &["targetDate=2024-01-02,date"]);
    assert_eq!(code, 0, "{out}{err}");
    let wal = d.join("batch.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the log was checkpointed and removed"
    );
    let copy = d.join("copy.db");
    std::fs::copy(d.join("batch.db"), &copy).unwrap();
    let pool = SqlitePool::connect(&format!("sqlite:{}", copy.display()))
        .await
        .unwrap();
    let executions: Vec<String> = sqlx::query_scalar("SELECT STATUS FROM BATCH_JOB_EXECUTION")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(executions, ["COMPLETED"]);
}

async fn recorded_orders(pool: &SqlitePool) -> Vec<i64> {
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT ITEM_KEY FROM BATCH_STEP_ITEM_PROGRESS WHERE STEP_NAME = 'sendOrders'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut ids: Vec<i64> = keys.iter().map(|k| k.parse().unwrap()).collect();
    ids.sort();
    ids
}

/// order_sync's durable mode with eight calls in flight against a slow partner: every
/// order recorded once; an outage at order 25 keeps the records of the calls in flight
/// with it (21 to 28 start together), and the restart completes the instance.
#[tokio::test]
async fn order_sync_sends_concurrently_and_a_restart_completes_after_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["orders=60,long", "chunk=20,long", "concurrency=8,long"];
    let with = |more: &[&'static str]| -> Vec<&str> {
        common.iter().copied().chain(more.iter().copied()).collect()
    };
    let (code, out, err) = run(
        dir.path(),
        "order_sync",
        &with(&["latency.ms=2,long,false", "fail.at=25,long,false"]),
    );
    assert_eq!(code, 1, "{out}{err}");
    let pool = open(dir.path()).await;
    let expected: Vec<i64> = (1..=24).chain(26..=28).collect();
    assert_eq!(recorded_orders(&pool).await, expected);
    let (code, out, err) = run(
        dir.path(),
        "order_sync",
        &with(&["latency.ms=2,long,false"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(recorded_orders(&pool).await, (1..=60).collect::<Vec<_>>());
    assert_eq!(
        steps(&pool).await,
        vec![
            row("sendOrders", "FAILED", [40, 20, 0, 1, 1]),
            row("sendOrders", "COMPLETED", [40, 40, 0, 3, 0]),
        ]
    );
}

/// Concurrency and latency values that cannot work are refused before the launch,
/// with the parameter named, and leave no execution behind.
#[tokio::test]
async fn order_sync_refuses_bad_concurrency_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["concurrency=0,long"][..], "give 1 or more"),
        (
            &["mode=cursor", "concurrency=4,long"][..],
            "need mode=durable",
        ),
        (&["latency.ms=-1,long,false"][..], "is negative"),
        (
            &["--api", "http://127.0.0.1:9", "latency.ms=5,long,false"][..],
            "thirdparty_api --latency-ms",
        ),
    ] {
        let (code, out, err) = run(dir.path(), "order_sync", args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains("concurrency") || err.contains("latency.ms"),
            "{err}"
        );
    }
    let pool = open(dir.path()).await;
    let executions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM BATCH_JOB_EXECUTION")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(executions, 0);
}
