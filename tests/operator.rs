//! Operating jobs from another process, through the job repository alone, on SQLite,
//! PostgreSQL and MariaDB: a `copy_rows` run in a child process is stopped by
//! `stop ID` and ends STOPPED within two chunks of the request (the one in flight and
//! the next), then `restart ID` completes it with every row written once; `abandon`
//! then a launch is refused with "abandoned"; `--next` gives run.id 1, 2, 3;
//! `executions --json` lists what the tables hold; `purge` leaves no orphan row and
//! keeps running executions.
//!
//! Timing follows the job's progress (a pause per chunk, `pause.ms`, and polling the
//! repository), never the wall clock: no assertion depends on how fast the machine is.

#[macro_use]
mod support;

use std::process::{Command, Stdio};

use batch::prelude::*;
use batch::repository::{DbKind, ExecutionQuery};
use serde_json::Value;

const CHUNK: i64 = 100;

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(support::Fresh) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(fresh) = support::open_fresh(kind, &format!("op_{name}")).await {
        case(fresh).await;
    }
}

on_databases!(run; [sqlite => Sqlite, postgres => Postgres, mysql => MySql]; [
    stop_from_another_process_then_restart,
    abandon_next_executions_and_purge,
]);

/// Runs an example to its end: exit code, stdout, stderr.
fn cli(example: &str, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::example(example))
        .arg("--db")
        .arg(url)
        .args(args)
        .env("BATCH_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn stop_from_another_process_then_restart(db: support::Fresh) {
    let rows = 5000;
    let mut child = Command::new(support::example("copy_rows"))
        .arg("--db")
        .arg(&db.url)
        .args([&format!("rows={rows},long,false"), "pause.ms=40,long,false"])
        .env("BATCH_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has committed two chunks (progress, not time).
    let id = loop {
        let running = db
            .repo
            .find_job_executions(&ExecutionQuery::new().running())
            .await
            .unwrap();
        if let Some(e) = running.first() {
            let e = db.repo.job_execution(e.id).await.unwrap().unwrap();
            if e.step_executions
                .first()
                .is_some_and(|s| s.counts.write >= 2 * CHUNK as u64)
            {
                break e.id;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the stop"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let (code, out, err) = cli("copy_rows", &db.url, &["stop", &id.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let at_request = db.repo.job_execution(id).await.unwrap().unwrap();
    assert_eq!(at_request.status, BatchStatus::Stopping);
    let written_at_request = at_request.step_executions[0].counts.write;
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a STOPPED run exits 1");
    let (code, out, err) = cli("copy_rows", &db.url, &["show", &id.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let shown = json(&out);
    assert_eq!(shown["status"], "STOPPED", "{shown}");
    assert_eq!(shown["steps"][0]["status"], "STOPPED", "{shown}");
    let written = shown["steps"][0]["write_count"].as_u64().unwrap();
    // The step reads its job's status in each chunk's transaction, as Spring's
    // `synchronizeStatus` does: a stop that commits while a chunk's transaction is
    // open is seen by the next chunk, so at most the chunk in flight at the request and
    // the one after it are written.
    assert!(
        written <= written_at_request + 2 * CHUNK as u64 && (written as i64) < rows,
        "stopped within two chunks of the request: {written} written, {written_at_request} at the request"
    );
    let (code, out, err) = cli("copy_rows", &db.url, &["restart", &id.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let total = support::int(&db.pool, "SELECT COUNT(*) FROM target").await;
    let distinct = support::int(&db.pool, "SELECT COUNT(DISTINCT id) FROM target").await;
    assert_eq!((total, distinct), (rows, rows), "every row written once");
}

async fn abandon_next_executions_and_purge(db: support::Fresh) {
    let url = &db.url;
    // A failed run, abandoned: the instance is not launched again.
    let (code, ..) = cli(
        "execution_context_restart",
        url,
        &["fail.on=C,string,false"],
    );
    assert_eq!(code, 1);
    let (code, _, err) = cli("execution_context_restart", url, &["abandon", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli("execution_context_restart", url, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("abandoned"), "{err}");
    let (code, _, err) = cli("execution_context_restart", url, &["abandon", "1"]);
    assert_eq!(code, 6, "{err}");
    let (code, _, err) = cli("execution_context_restart", url, &["stop", "999"]);
    assert_eq!(code, 5, "{err}");
    // A misspelled parameter: a usage error, nothing written.
    let (code, _, err) = cli("execution_context_restart", url, &["failon=C"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `fail.on`?"), "{err}");

    // --next: run.id 1, 2, 3.
    for expected in 1..=3 {
        let (code, out, err) = cli("copy_rows", url, &["--next", "rows=10,long,false"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("run.id={expected},long")), "{out}");
    }
    // executions --json lists what the tables hold, newest first.
    let (code, out, err) = cli(
        "copy_rows",
        url,
        &["executions", "--json", "--limit", "100"],
    );
    assert_eq!(code, 0, "{err}");
    let listed: Vec<i64> = json(&out)["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_i64().unwrap())
        .collect();
    let stored: Vec<i64> = support::texts(
        &db.pool,
        "SELECT CAST(JOB_EXECUTION_ID AS CHAR(20)) FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID DESC",
    )
    .await
    .into_iter()
    .map(|t| t.unwrap().trim().parse().unwrap())
    .collect();
    assert_eq!(listed, stored);
    let (code, out, _) = cli(
        "copy_rows",
        url,
        &["executions", "--job", "copyRowsJob", "--json"],
    );
    assert_eq!(code, 0);
    assert_eq!(json(&out)["executions"].as_array().unwrap().len(), 3);

    // A running execution is kept; everything else ended and goes.
    let running = db
        .repo
        .create_job_execution("busy", &JobParameters::new())
        .await
        .unwrap();
    let (code, out, err) = cli("copy_rows", url, &["purge", "--older-than", "0s", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["purged"]["executions"], 4, "{out}");
    for orphan in support::ORPHAN_QUERIES {
        assert_eq!(support::int(&db.pool, orphan).await, 0, "{orphan}");
    }
    let left = support::int(&db.pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
    assert_eq!(left, 1);
    assert!(db.repo.job_execution(running.id).await.unwrap().is_some());
    let (code, _, err) = cli("copy_rows", url, &["purge", "--older-than", "soon"]);
    assert_eq!(code, 2, "{err}");
}
