//! The web console (`NAME --db URL console`): its pages against what the tables hold,
//! on SQLite, PostgreSQL and MySQL/MariaDB; injection attempts in every field that
//! comes from the repository rendered as text; the security rules (403 without the
//! token, the form field, the Origin check, 405 when read-only, the refusal of a
//! non-loopback bind without a token); `/metrics` after a run of `transfer_new_user`
//! in another process; and, in headless Chromium, the pages, a running job's progress
//! changing live, a stop pressed until the execution ends STOPPED, and a restart.
//!
//! The browser case needs Debian's `chromium` and `chromium-driver` (`.ci/run`
//! installs them): with `CI` set a missing browser fails the suite, elsewhere the case
//! says it was skipped. Its screenshots go to `target/tmp/console-screenshots/`, and
//! to `docs/` with `BATCH_SCREENSHOTS_TO_DOCS=1` (how the README's pictures are made).
//! The example binaries are not rebuilt by `cargo test --test console`: run
//! `cargo build --examples` first.

#[macro_use]
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use batch::chunk::chunk;
use batch::console::{Console, ConsoleConfig, ConsoleError};
use batch::prelude::*;
use batch::repository::{DbKind, ExecutionQuery, InMemoryJobRepository};
use batch::step::{StepBuilder, StepDef};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use support::{Fresh, int, job, list_step};

/// Script that marks the page as hijacked if it ever runs.
const EVIL: &str = "<script>window.__pwned=1</script>";
const EVIL_JOB: &str = "<img src=x onerror=\"window.__pwned=2\">";

/// A console serving in this process until dropped.
struct Served {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(repo: Arc<dyn JobRepository>, config: ConsoleConfig, job: Option<Job>) -> Served {
    let config = ConsoleConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    let console = Console::bind(config, JobLauncher::with_repository(repo), job)
        .await
        .unwrap();
    let addr = console.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(console.serve(async {
        let _ = stopped.await;
    }));
    Served {
        base: format!("http://{addr}"),
        stop: Some(stop),
    }
}

/// The default console configuration with `token`.
fn with_token(token: &str) -> ConsoleConfig {
    ConsoleConfig {
        token: Some(token.into()),
        ..ConsoleConfig::default()
    }
}

/// A client that shows redirects and cookies as they are.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str) -> (StatusCode, String) {
    let r = client().get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The row of the table whose opening tag has `marker`.
fn row<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

/// The cells of a table row, their tags removed.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = true;
            for c in cell.split("</td>").next().unwrap().chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// Neither the script nor the image tag reached the page as markup.
fn assert_inert(html: &str) {
    assert!(!html.contains("<script>window"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(Fresh) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(fresh) = support::open_fresh(kind, name).await {
        case(fresh).await;
    }
}

on_databases!(run; [sqlite => Sqlite, postgres => Postgres, mysql => MySql]; [
    pages_show_the_tables_and_escape_everything,
]);

async fn pages_show_the_tables_and_escape_everything(db: Fresh) {
    // Bound first: its recorder takes this process's runtime metrics from here on.
    let served = serve(db.repo.clone(), ConsoleConfig::default(), None).await;
    let base = &served.base;
    let launcher = JobLauncher::with_repository(db.repo.clone());
    for run in [1_i64, 2] {
        launcher
            .run(
                job("copy", vec![list_step("s", 2, vec!["a", "b", "c"], None)]),
                JobParameters::new().with("run", run).with("label", EVIL),
            )
            .await
            .unwrap();
    }
    let failed = launcher
        .run(
            job(
                EVIL_JOB,
                vec![list_step("<b>step</b>", 2, vec!["a", EVIL], Some(EVIL))],
            ),
            JobParameters::new().with("run", 3_i64),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let mut stored = db.repo.job_execution(failed.id).await.unwrap().unwrap();
    stored.context.put_value("note", serde_json::json!(EVIL));
    db.repo.update_job_context(&stored).await.unwrap();

    // `/`: each job's count as the table holds it, its latest status.
    let (status, html) = get(&format!("{base}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_inert(&html);
    let copy = cells(row(&html, r#"data-job="copy""#));
    let count = int(
        &db.pool,
        "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE I \
         ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE I.JOB_NAME = 'copy'",
    )
    .await;
    assert_eq!(copy[0], "copy");
    assert_eq!(copy[1], "COMPLETED");
    assert_eq!(copy[2], count.to_string());
    assert!(
        copy[3].ends_with(" s") && copy[4].ends_with(" s"),
        "{copy:?}"
    );
    assert!(
        html.contains(r#"<svg class="sparkline""#),
        "two runs draw a line"
    );
    let evil = cells(row(
        &html,
        r#"data-job="&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;""#,
    ));
    assert_eq!(evil[1], "FAILED");

    // `/executions` and its filters.
    let ids = |html: &str| -> Vec<i64> {
        html.split(r#"<tr data-id=""#)
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let (status, html) = get(&format!("{base}/executions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_inert(&html);
    let total = int(&db.pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
    assert_eq!(ids(&html).len() as i64, total);
    assert_eq!(ids(&html), [3, 2, 1]);
    let (_, html) = get(&format!("{base}/executions?job=copy")).await;
    assert_eq!(ids(&html), [2, 1]);
    let (_, html) = get(&format!("{base}/executions?status=FAILED")).await;
    assert_eq!(ids(&html), [3]);
    let (_, html) = get(&format!("{base}/executions?param=run%3D2")).await;
    assert_eq!(ids(&html), [2]);
    let (_, html) = get(&format!(
        "{base}/executions?param=label%3D%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E&job=copy"
    ))
    .await;
    assert_eq!(ids(&html), [2, 1]);
    let (_, html) = get(&format!(
        "{base}/executions?from=2000-01-01&until=2000-01-02"
    ))
    .await;
    assert!(ids(&html).is_empty() && html.contains("No execution matches"));
    let (status, html) = get(&format!("{base}/executions?status=BOGUS")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("BOGUS"), "{html}");
    let (status, html) = get(&format!("{base}/executions?from=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("`from` must be a time"), "{html}");
    let (status, html) = get(&format!("{base}/executions?param=run")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("name=value"), "{html}");

    // `/executions/{id}`: the counters as BATCH_STEP_EXECUTION holds them, escaped
    // parameters, exit messages, step names and contexts.
    let (status, html) = get(&format!("{base}/executions/{}", failed.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_inert(&html);
    let step = cells(row(&html, "<tr data-step="));
    let read = int(
        &db.pool,
        &format!(
            "SELECT READ_COUNT FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = {}",
            failed.id
        ),
    )
    .await;
    assert_eq!(
        step[1],
        "<b>step</b>".replace('<', "&lt;").replace('>', "&gt;")
    );
    assert_eq!(step[2], "FAILED");
    assert_eq!(step[3], read.to_string());
    assert!(
        html.contains("failed on &lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        "the exit message, escaped: {html}"
    );
    assert!(
        html.contains(
            "&quot;note&quot;: &quot;&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;"
        ),
        "the job context, escaped"
    );
    assert!(html.contains(r#"<svg class="timeline""#));
    assert!(
        html.contains(r#"id="abandon""#),
        "a failed execution can be abandoned"
    );
    assert!(
        !html.contains(r#"id="restart""#),
        "no job of this process to restart"
    );
    let (_, html) = get(&format!("{base}/executions/1")).await;
    assert!(html.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"));
    assert_inert(&html);
    let (status, _) = get(&format!("{base}/executions/999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // `/metrics`: the repository's counts, and this process's runtime metrics.
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"batch_job_executions{job="copy",status="COMPLETED"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"batch_job_executions{job="<img src=x onerror=\"window.__pwned=2\">",status="FAILED"} 1"#),
        "a label value escaped as the text format wants: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("spring_batch_item_read{") && l.contains(r#"job="copy""#)),
        "{text}"
    );
    for name in [
        "spring_batch_job_count{",
        "spring_batch_step_count{",
        "spring_batch_chunk_write_count{",
        "spring_batch_chunk_commit{",
        "spring_batch_item_write{",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(r#"job="copy""#)),
            "{name}: {text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("spring_batch_job_count{") && l.contains(r#"status="FAILED""#)),
        "the failed run by its status: {text}"
    );
    let (status, body) = get(&format!("{base}/health")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

#[derive(Debug, thiserror::Error)]
#[error("flaky")]
struct Flaky;

#[derive(Debug, thiserror::Error)]
#[error("bad record")]
struct BadRecord;

/// Item 3 fails once and is retried; item 5 always fails and is skipped.
#[step(chunk = 2, retry(Flaky, limit = 3), skip(BadRecord, limit = 5))]
fn faulty() -> impl ChunkStep<i64, i64> {
    let mut failed_once = false;
    chunk(
        ListReader::new(1..=6i64),
        processor(move |n: &i64| match *n {
            3 if !failed_once => {
                failed_once = true;
                Err(Flaky.into())
            }
            5 => Err(BadRecord.into()),
            n => Ok(Some(n)),
        }),
        writer(|_: &[i64]| Ok(())),
    )
}

#[job(name = "faultyJob")]
fn faulty_job() -> Flow {
    Flow::start(faulty {}).build()
}

/// The runtime's fault-tolerance metrics, by job and step, in `/metrics` of a console
/// whose process ran the job: retries, rollbacks, skips.
#[tokio::test]
async fn retries_rollbacks_and_skips_are_in_the_metrics() {
    let repo: Arc<dyn JobRepository> = Arc::new(InMemoryJobRepository::new());
    let served = serve(repo.clone(), ConsoleConfig::default(), None).await;
    let execution = JobLauncher::with_repository(repo)
        .run(faulty_job {}, JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed, "{execution:?}");
    let counts = &execution.step_executions[0].counts;
    assert_eq!((counts.write, counts.process_skip), (5, 1), "{counts:?}");
    let (status, text) = get(&format!("{}/metrics", served.base)).await;
    assert_eq!(status, StatusCode::OK);
    let labelled = r#"job="faultyJob",step="faulty""#;
    for name in [
        "spring_batch_retry{",
        "spring_batch_chunk_rollback{",
        "spring_batch_item_skip{",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l.contains(labelled))
            .unwrap_or_else(|| panic!("{name}{labelled}: {text}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 1.0, "{line}");
    }
}

/// An execution left STARTED in `repo`, for the actions.
async fn running(repo: &Arc<dyn JobRepository>, run: i64) -> i64 {
    let mut e = repo
        .create_job_execution("held", &JobParameters::new().with("run", run))
        .await
        .unwrap();
    e.status = BatchStatus::Started;
    e.start_time = Some(batch::execution::now());
    repo.update_job_execution(&mut e).await.unwrap();
    e.id
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `name=value` of a Set-Cookie.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A console without a token serves only requests addressed to loopback: a page of
/// another site whose name was rebound to 127.0.0.1 neither reads it nor acts on it.
#[tokio::test]
async fn a_console_without_a_token_answers_only_to_loopback_names() {
    let repo: Arc<dyn JobRepository> = Arc::new(InMemoryJobRepository::new());
    let id = running(&repo, 1).await;
    let served = serve(repo.clone(), ConsoleConfig::default(), None).await;
    let base = &served.base;
    let http = client();
    let port = base.rsplit(':').next().unwrap();
    for host in [
        format!("rebound.example:{port}"),
        "rebound.example".to_owned(),
    ] {
        let page = http
            .get(format!("{base}/executions/{id}"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{host}");
        assert!(page.text().await.unwrap().contains("--token"));
        let stop = http
            .post(format!("{base}/executions/{id}/stop"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .send()
            .await
            .unwrap();
        assert_eq!(stop.status(), StatusCode::FORBIDDEN, "{host}");
    }
    let stored = repo.job_execution(id).await.unwrap().unwrap();
    assert_eq!(stored.status, BatchStatus::Started, "nothing was stopped");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let page = http
            .get(format!("{base}/executions/{id}"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{host}");
    }
}

/// The execution ids a page links to, in the order shown.
fn linked_executions(html: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = html
        .split(r#"href="/executions/"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect();
    ids.dedup();
    ids
}

/// `/executions` pages 25 at a time, newest first, with a link to the older ones;
/// an abandon posted with the bearer token ends the execution ABANDONED.
#[tokio::test]
async fn executions_are_paged_and_an_abandon_is_posted() {
    let repo: Arc<dyn JobRepository> = Arc::new(InMemoryJobRepository::new());
    let mut ids = Vec::new();
    for run in 1..=30 {
        let id = running(&repo, run).await;
        let mut e = repo.job_execution(id).await.unwrap().unwrap();
        e.status = BatchStatus::Failed;
        e.end_time = Some(batch::execution::now());
        repo.update_job_execution(&mut e).await.unwrap();
        ids.push(id);
    }
    const TOKEN: &str = "paging-token";
    let served = serve(repo.clone(), with_token(TOKEN), None).await;
    let base = &served.base;
    let http = client();
    let page = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let first = page(format!("{base}/executions")).await;
    let newest: Vec<i64> = ids.iter().rev().take(25).copied().collect();
    assert_eq!(linked_executions(&first), newest);
    let older = first
        .split(r#"id="older" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the older executions")
        .replace("&amp;", "&");
    let second = page(format!("{base}{older}")).await;
    let oldest: Vec<i64> = ids.iter().rev().skip(25).copied().collect();
    assert_eq!(linked_executions(&second), oldest);
    assert!(!second.contains(r#"id="older""#), "the last page");

    let abandoned = http
        .post(format!("{base}/executions/{}/abandon", ids[0]))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(abandoned.status(), StatusCode::SEE_OTHER);
    let stored = repo.job_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.status, BatchStatus::Abandoned);
    let shown = page(format!("{base}/executions/{}", ids[0])).await;
    assert!(shown.contains("ABANDONED"), "{shown}");
    assert!(!shown.contains(r#"id="abandon""#), "abandoned once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_forms_origins_and_read_only() {
    let repo: Arc<dyn JobRepository> = Arc::new(InMemoryJobRepository::new());
    let id = running(&repo, 1).await;
    const TOKEN: &str = "s3cret-token";
    let served = serve(repo.clone(), with_token(TOKEN), None).await;
    let base = &served.base;
    let http = client();
    let page = format!("{base}/executions/{id}");
    let stop = format!("{base}/executions/{id}/stop");

    // Pages need the token; /health does not.
    assert_eq!(get(&format!("{base}/")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&format!("{base}/metrics")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&format!("{base}/health")).await.0, StatusCode::OK);
    let bearer = http
        .get(format!("{base}/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let wrong = http
        .get(format!("{base}/?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    // ?token= once: a same-site, http-only cookie, and the URL without the token.
    let once = http
        .get(format!("{base}/executions/{id}?token={TOKEN}&x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(once.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        once.headers()["location"].to_str().unwrap(),
        format!("/executions/{id}?x=1")
    );
    let token_cookie = set_cookies(once.headers())
        .into_iter()
        .find(|c| c.starts_with("batch_console_token="))
        .expect("the token cookie");
    assert!(
        token_cookie.contains("HttpOnly") && token_cookie.contains("SameSite=Strict"),
        "{token_cookie}"
    );
    let token_cookie = cookie_pair(&token_cookie);
    let with_cookie = http
        .get(&page)
        .header("cookie", &token_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let session = cookie_pair(
        &set_cookies(with_cookie.headers())
            .into_iter()
            .find(|c| c.starts_with("batch_console_session="))
            .expect("a session cookie"),
    );
    let html = with_cookie.text().await.unwrap();
    let field = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .expect("the stop form's field")
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let status_of = || {
        let repo = repo.clone();
        async move { repo.job_execution(id).await.unwrap().unwrap().status }
    };
    let post = |cookies: Option<String>, form: Option<String>, origin: Option<&'static str>| {
        let http = http.clone();
        let stop = stop.clone();
        async move {
            let mut request = http.post(&stop);
            if let Some(cookies) = cookies {
                request = request.header("cookie", cookies);
            }
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(form) = form {
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
            }
            request.send().await.unwrap().status()
        }
    };
    let both = format!("{token_cookie}; {session}");
    let form = format!("csrf={field}");
    // A GET changes nothing.
    let get_stop = http
        .get(&stop)
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(get_stop.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Without the token, without the field, with a field of another session, from
    // another site: refused, and the execution still runs.
    assert_eq!(
        post(Some(session.clone()), Some(form.clone()), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(both.clone()), None, None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(both.clone()), Some("csrf=0123".into()), None).await,
        StatusCode::FORBIDDEN
    );
    let other_session = "batch_console_session=00000000000000000000000000000000";
    assert_eq!(
        post(
            Some(format!("{token_cookie}; {other_session}")),
            Some(form.clone()),
            None
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            Some(both.clone()),
            Some(form.clone()),
            Some("http://evil.example")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of().await, BatchStatus::Started);
    // With all of it, from the console's own page: the stop is recorded.
    let origin: &'static str = Box::leak(base.clone().into_boxed_str());
    assert_eq!(
        post(Some(both.clone()), Some(form.clone()), Some(origin)).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(status_of().await, BatchStatus::Stopping);
    // A refusal by the operator is a page that says why.
    let again = http
        .post(format!("{base}/executions/{id}/restart"))
        .header("cookie", &both)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(
        again.text().await.unwrap().contains("another job"),
        "no restart of a job this process does not run"
    );
    // A bearer token needs no form field (no browser adds that header by itself).
    let second = running(&repo, 2).await;
    let bearer = http
        .post(format!("{base}/executions/{second}/stop"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::SEE_OTHER);
    drop(served);

    // --public-read: pages without the token, actions still with it.
    let public = serve(
        repo.clone(),
        ConsoleConfig {
            public_read: true,
            ..with_token(TOKEN)
        },
        None,
    )
    .await;
    let third = running(&repo, 3).await;
    assert_eq!(get(&format!("{}/", public.base)).await.0, StatusCode::OK);
    let anonymous = http
        .post(format!("{}/executions/{third}/stop", public.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    drop(public);

    // --read-only: no action on the page, every POST 405.
    let read_only = serve(
        repo.clone(),
        ConsoleConfig {
            read_only: true,
            ..ConsoleConfig::default()
        },
        None,
    )
    .await;
    let (status, html) = get(&format!("{}/executions/{third}", read_only.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(r#"method="post""#), "{html}");
    let refused = http
        .post(format!("{}/executions/{third}/stop", read_only.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        repo.job_execution(third).await.unwrap().unwrap().status,
        BatchStatus::Started
    );

    // Beyond loopback, a token is required before anything is served.
    let refused = Console::bind(
        ConsoleConfig {
            bind: "0.0.0.0:0".parse().unwrap(),
            ..ConsoleConfig::default()
        },
        JobLauncher::with_repository(repo.clone()),
        None,
    )
    .await
    .err()
    .expect("refused");
    assert!(matches!(refused, ConsoleError::TokenNeeded(_)));
    assert!(refused.to_string().contains("--token"), "{refused}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for a console process to answer `/health`.
async fn healthy(base: &str) {
    for _ in 0..600 {
        if let Ok(r) = client().get(format!("{base}/health")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the console at {base} did not answer");
}

/// `exe --db DB console` on a free loopback port, in `dir`, once it answers: the
/// process (killed when dropped) and its base URL.
async fn console_process(
    exe: &std::path::Path,
    dir: &std::path::Path,
    db: &str,
) -> (Child, String) {
    let port = free_port();
    let console = Child(
        std::process::Command::new(exe)
            .current_dir(dir)
            .env_remove("BATCH_CONSOLE_TOKEN")
            .args([
                "--db",
                db,
                "console",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    healthy(&base).await;
    (console, base)
}

/// Kills the child when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_transfer_new_user_run_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let exe = support::example("transfer_new_user");
    let db = format!("sqlite:{}", dir.path().join("batch.db").display());
    let out = std::process::Command::new(&exe)
        .current_dir(dir.path())
        .args(["--db", &db, "targetDate=2024-01-02,date"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let refused = std::process::Command::new(&exe)
        .current_dir(dir.path())
        .args(["--db", &db, "console", "--bind", "0.0.0.0:0"])
        .env_remove("BATCH_CONSOLE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--token") && err.contains("0.0.0.0"), "{err}");

    // The token may come from the environment, out of the process list: then pages
    // need it as they do with --token.
    let port = free_port();
    let _with_env_token = Child(
        std::process::Command::new(&exe)
            .current_dir(dir.path())
            .env("BATCH_CONSOLE_TOKEN", "from-the-environment")
            .args([
                "--db",
                &db,
                "console",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let guarded = format!("http://127.0.0.1:{port}");
    healthy(&guarded).await;
    assert_eq!(
        get(&format!("{guarded}/")).await.0,
        StatusCode::FORBIDDEN,
        "the environment's token is required"
    );
    let with_token = client()
        .get(format!("{guarded}/"))
        .bearer_auth("from-the-environment")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), StatusCode::OK);

    let (_console, base) = console_process(&exe, dir.path(), &db).await;
    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let repo = batch::repository::open_repository(&db).await.unwrap();
    let e = repo.job_execution(1).await.unwrap().unwrap();
    let step = &e.step_executions[0];
    let value = |counter: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with("batch_step_items{")
                    && l.contains(r#"job="transferNewUserJob""#)
                    && l.contains(r#"step="transferNewUserStep""#)
                    && l.contains(&format!(r#"counter="{counter}""#))
            })
            .unwrap_or_else(|| panic!("no {counter} count: {text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("read"), step.counts.read);
    assert_eq!(value("write"), step.counts.write);
    assert!(step.counts.read > 0);
    assert!(
        text.contains(
            r#"batch_step_duration_seconds{job="transferNewUserJob",step="transferNewUserStep""#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"batch_job_last_duration_seconds{job="transferNewUserJob""#),
        "{text}"
    );
    assert!(
        text.contains(r#"batch_job_executions{job="transferNewUserJob",status="COMPLETED"} 1"#),
        "{text}"
    );
}

/// A step that takes its time: `items` numbers, each processed after `pause`, in
/// chunks of 5, restartable (its reader tells its total, for the percent shown).
fn slow_step(items: u32, pause: Duration) -> StepDef {
    StepBuilder::new("slowStep")
        .chunk_size(5)
        .chunk(move |_scope| async move {
            Ok(chunk(
                ListReader::new(0..items).restartable("slow"),
                async_processor(move |n: &u32| {
                    let n = *n;
                    Box::pin(async move {
                        tokio::time::sleep(pause).await;
                        Ok(Some(n))
                    })
                }),
                writer(|_: &[u32]| Ok(())),
            ))
        })
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &webdriver::Browser, name: &str) {
    let path = screenshots().join(name);
    browser.screenshot(&path).await;
    if std::env::var_os("BATCH_SCREENSHOTS_TO_DOCS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(name)).unwrap();
    }
}

/// Waits until `check` gives `Some`, reading the page again and again (the page
/// itself refreshes); panics with `what` when it never does.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// The id of a running execution in `repo`, if there is one.
async fn first_running(repo: Arc<dyn JobRepository>) -> Option<i64> {
    let found = repo
        .find_job_executions(&ExecutionQuery::new().running())
        .await
        .unwrap();
    found.first().map(|e| e.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_the_pages_live_progress_a_stop_and_a_restart() {
    if !webdriver::installed() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "Chromium and chromedriver are not installed, but CI is set: the browser suite must run (.ci/run installs chromium and chromium-driver)"
            );
        }
        eprintln!(
            "SKIPPED: console browser suite: install Debian's chromium and chromium-driver to run it"
        );
        return;
    }
    let db = support::open_fresh(DbKind::Sqlite, "console_browser")
        .await
        .expect("SQLite needs no server");
    let slow = job(
        "importOrders",
        vec![slow_step(400, Duration::from_millis(25))],
    );
    let served = serve(
        db.repo.clone(),
        ConsoleConfig::default(),
        Some(slow.clone()),
    )
    .await;
    let base = served.base.clone();
    let launcher = JobLauncher::with_repository(db.repo.clone());
    for run in 1..=6_i64 {
        let fail = (run == 4).then_some("c");
        launcher
            .run(
                job(
                    "copyCustomers",
                    vec![list_step("copyStep", 2, vec!["a", "b", "c", "d"], fail)],
                ),
                JobParameters::new().with("run", run).with("note", EVIL),
            )
            .await
            .unwrap();
    }
    let running = {
        let launcher = launcher.clone();
        let slow = slow.clone();
        tokio::spawn(async move {
            launcher
                .run(slow, JobParameters::new().with("day", "2026-12-01"))
                .await
        })
    };
    let id = until("the slow job runs", || first_running(db.repo.clone())).await;

    let browser = webdriver::Browser::start().await;

    // The jobs page against the tables.
    browser.goto(&format!("{base}/")).await;
    let cells = browser
        .script(
            "return Array.from(document.querySelectorAll('tr[data-job=\"copyCustomers\"] td')).map(function (c) { return c.textContent; });",
        )
        .await;
    let count = int(
        &db.pool,
        "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E JOIN BATCH_JOB_INSTANCE I \
         ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE I.JOB_NAME = 'copyCustomers'",
    )
    .await;
    assert_eq!(cells[0], "copyCustomers");
    assert_eq!(cells[1], "COMPLETED");
    assert_eq!(cells[2], count.to_string());
    screenshot(&browser, "console-jobs.png").await;

    // The executions page: one row per execution the table holds, newest first.
    browser.goto(&format!("{base}/executions")).await;
    let rows = browser
        .script("return Array.from(document.querySelectorAll('#executions tbody tr')).map(function (r) { return Number(r.dataset.id); });")
        .await;
    let total = int(&db.pool, "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION").await;
    let max = int(
        &db.pool,
        "SELECT MAX(JOB_EXECUTION_ID) FROM BATCH_JOB_EXECUTION",
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len() as i64, total);
    assert_eq!(rows[0], max);
    screenshot(&browser, "console-executions.png").await;

    // An execution with a hostile parameter: shown as text, never run.
    browser.goto(&format!("{base}/executions/1")).await;
    assert_eq!(
        browser
            .script("return typeof window.__pwned;")
            .await
            .as_str(),
        Some("undefined")
    );
    let value = browser
        .script("return document.querySelector('#parameters tbody tr:nth-child(2) td:nth-child(2)').textContent;")
        .await;
    assert_eq!(value.as_str(), Some(EVIL));

    // The running execution: its progress changes while the page stays open.
    browser.goto(&format!("{base}/executions/{id}")).await;
    let first: u64 = until("progress shows", || async {
        browser
            .text(".items-done")
            .await
            .and_then(|t| t.parse().ok())
    })
    .await;
    let later: u64 = until("progress moves on", || async {
        browser
            .text(".items-done")
            .await
            .and_then(|t| t.parse().ok())
            .filter(|n| *n > first)
    })
    .await;
    assert!(later > first);
    assert!(
        browser.text(".percent").await.is_some(),
        "the reader's total gives a percent"
    );
    screenshot(&browser, "console-running.png").await;

    // Stop, pressed as a person would; the page follows the execution to STOPPED.
    browser.click("#stop").await;
    until("the execution ends STOPPED", || async {
        (browser.text("#status").await.as_deref() == Some("STOPPED")).then_some(())
    })
    .await;
    let stopped = running.await.unwrap().unwrap();
    assert_eq!(stopped.status, BatchStatus::Stopped);
    let stored = support::texts(
        &db.pool,
        &format!("SELECT STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = {id}"),
    )
    .await;
    assert_eq!(stored, [Some("STOPPED".to_owned())]);
    screenshot(&browser, "console-stopped.png").await;

    // Restart: a new execution of the instance, run by the console's process, which
    // carries on from the stopped one's last commit.
    browser.click("#restart").await;
    // The click posts the form; the browser is on the new execution's page once the
    // redirect has been followed, which the click does not wait for.
    let new_id: i64 = until("the new execution's page opens", || async {
        let url = browser.url().await;
        url.split("/executions/")
            .nth(1)
            .and_then(|s| s.split(['?', '/']).next())
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|shown| *shown != id)
    })
    .await;
    assert!(new_id > id);
    let restarted = db.repo.job_execution(new_id).await.unwrap().unwrap();
    assert_eq!(restarted.instance.id, stopped.instance.id);
    until("the restarted execution runs", || async {
        browser.text("#stop").await.map(|_| ())
    })
    .await;
    browser.click("#stop").await;
    until("the restarted execution ends STOPPED", || async {
        (browser.text("#status").await.as_deref() == Some("STOPPED")).then_some(())
    })
    .await;
    browser.quit().await;
    drop(served);
    let by_status: HashMap<String, i64> = HashMap::from([(
        "STOPPED".to_owned(),
        int(
            &db.pool,
            "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION WHERE STATUS = 'STOPPED'",
        )
        .await,
    )]);
    assert_eq!(by_status["STOPPED"], 2);
}

/// The console of one process stops a run of another: `copy_rows console` presses
/// Stop (its form, with the session's field) on a `copy_rows` run, which ends STOPPED
/// at its next chunk boundary and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_from_the_console_reaches_a_run_of_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let exe = support::example("copy_rows");
    let db = format!("sqlite:{}", dir.path().join("batch.db").display());
    let run = std::process::Command::new(&exe)
        .current_dir(dir.path())
        .args([
            "--db",
            &db,
            "rows=3000,long,false",
            "pause.ms=100,long,false",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();
    let mut run = Child(run);
    let (_console, base) = console_process(&exe, dir.path(), &db).await;
    let repo = batch::repository::open_repository(&db).await.unwrap();
    let id = until("the run of the other process starts", || {
        if let Some(status) = run.0.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(dir.path().join("run.err")).unwrap();
            panic!("the run ended ({status}) before it was seen running: {stderr}");
        }
        first_running(repo.clone())
    })
    .await;
    let page = client()
        .get(format!("{base}/executions/{id}"))
        .send()
        .await
        .unwrap();
    let session = cookie_pair(
        &set_cookies(page.headers())
            .into_iter()
            .find(|c| c.starts_with("batch_console_session="))
            .unwrap(),
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("items/s"),
        "a running step shows its rate: {html}"
    );
    let field = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .expect("the stop form")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let stop = client()
        .post(format!("{base}/executions/{id}/stop"))
        .header("cookie", &session)
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={field}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), StatusCode::SEE_OTHER);
    let status = tokio::task::spawn_blocking(move || run.0.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "a STOPPED run exits 1");
    let stored = repo.job_execution(id).await.unwrap().unwrap();
    assert_eq!(stored.status, BatchStatus::Stopped);
    let (_, html) = get(&format!("{base}/executions/{id}")).await;
    assert!(
        html.contains(r#"<span id="status"><span class="status status-STOPPED">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="restart""#),
        "copy_rows restarts its own job"
    );
}
