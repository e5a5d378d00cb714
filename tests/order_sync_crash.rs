//! `kill -9` against the order sync: the partner API runs in this test process, the job
//! (`examples/order_sync`) in a child process over 1,000 orders, killed with SIGKILL at
//! random moments and launched again until it completes.
//!
//! The kill moments follow the job's progress, not the clock: each run is killed once
//! the partner has received a random number (1 to 40) of its requests. Twenty kills
//! then cover at most 800 of the 1,000 orders, so every run of the test makes its 20
//! kills before the job can complete, on a quiet machine as on a busy one.
//!
//! - `mode=durable` must end with exactly 1,000 orders at the partner, none created
//!   twice and no 409 answered, one COMPLETED execution and none left STARTED; the
//!   same with eight calls in flight at once (`concurrency=8`), killed with calls
//!   still in flight.
//! - `mode=cursor` completes too, but re-sends the orders its cursor had not yet
//!   committed when killed: the partner's 409s measure those duplicates.

#[path = "../examples/thirdparty_api/partner.rs"]
#[allow(dead_code)]
mod partner;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

const ORDERS: u64 = 1000;
const KILLS: u32 = 20;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

/// A small xorshift generator, seeded from the clock: kill moments differ per run.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self(seed | 1)
    }
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

async fn partner_stats(p: &partner::Partner) -> partner::Stats {
    reqwest::get(format!("{}/stats", p.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the partner has received `requests` requests in all: true then, with the
/// child still running; false when the child exits first. A run that makes no progress
/// for a minute fails the test rather than hanging it.
async fn wait_for_requests(
    p: &partner::Partner,
    requests: u64,
    child: &mut std::process::Child,
) -> bool {
    let since = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if partner_stats(p).await.requests >= requests {
            return true;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no partner request for a minute while the job runs"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Outcome {
    kills: u32,
    launches: u32,
    stats: partner::Stats,
    held: usize,
    distinct_users: usize,
    statuses: Vec<String>,
}

async fn crash_until_complete(mode: &str, concurrency: u32, dir: &Path) -> Outcome {
    let label = format!("{mode}-{concurrency}");
    let partner_db = format!(
        "sqlite:{}",
        dir.join(format!("partner-{label}.db")).display()
    );
    let p = partner::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &partner_db,
        partner::Behaviour::default(),
    )
    .await
    .unwrap();
    let repo = format!("sqlite:{}", dir.join(format!("batch-{label}.db")).display());
    let args = [
        "--api".to_owned(),
        p.url(),
        "--db".to_owned(),
        repo.clone(),
        format!("mode={mode}"),
        format!("orders={ORDERS},long"),
        "chunk=10,long".to_owned(),
        format!("concurrency={concurrency},long"),
    ];
    let mut random = Random::new();
    let (mut kills, mut launches) = (0, 0);
    let mut baseline = 0;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{mode}: no completion after {launches} launches"
        );
        launches += 1;
        let mut child = Command::new(example("order_sync"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kills < KILLS {
            let requests = random.between(1, 41);
            if wait_for_requests(&p, baseline + requests, &mut child).await {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                baseline = partner_stats(&p).await.requests;
                continue;
            }
        }
        let status = child.wait().unwrap();
        baseline = partner_stats(&p).await.requests;
        match status.code() {
            Some(0) | Some(3) => break,
            // Failed runs (a partner answer the job refuses) are restarted like crashes.
            _ => continue,
        }
    }
    // Requests of killed runs may still be finishing in the partner (one may even
    // have answered the last run's request by replay): let them land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = partner_stats(&p).await;
    let orders: Vec<partner::StoredOrder> = reqwest::get(format!("{}/orders", p.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut users: Vec<&str> = orders.iter().map(|o| o.username.as_str()).collect();
    users.sort();
    users.dedup();
    let pool = SqlitePool::connect(&repo).await.unwrap();
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT STATUS FROM BATCH_JOB_EXECUTION ORDER BY JOB_EXECUTION_ID")
            .fetch_all(&pool)
            .await
            .unwrap();
    let instances: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM BATCH_JOB_INSTANCE")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(instances, 1, "every launch was the same instance");
    Outcome {
        kills,
        launches,
        stats,
        held: orders.len(),
        distinct_users: users.len(),
        statuses,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_never_duplicates_a_durable_call_and_measures_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (mode, concurrency) in [("durable", 1), ("durable", 8), ("cursor", 1)] {
        let o = crash_until_complete(mode, concurrency, dir.path()).await;
        let mode = &format!("mode={mode} concurrency={concurrency}");
        let completed = o.statuses.iter().filter(|s| *s == "COMPLETED").count();
        let running = o
            .statuses
            .iter()
            .filter(|s| matches!(s.as_str(), "STARTING" | "STARTED" | "STOPPING"))
            .count();
        report.push(format!(
            "{mode}: {} kills, {} launches; partner: {} requests, {} created, {} duplicates refused with 409, {} idempotent replays; holds {} orders",
            o.kills, o.launches, o.stats.requests, o.stats.created, o.stats.conflicts, o.stats.replays, o.held
        ));
        assert!(o.kills >= KILLS, "{mode}: only {} kills", o.kills);
        assert_eq!(
            o.held as u64, ORDERS,
            "{mode}: the partner holds every order"
        );
        assert_eq!(
            o.distinct_users, o.held,
            "{mode}: no order was created twice"
        );
        assert_eq!(o.stats.created, ORDERS, "{mode}: {:?}", o.stats);
        assert_eq!(
            completed, 1,
            "{mode}: one COMPLETED execution: {:?}",
            o.statuses
        );
        assert_eq!(
            running, 0,
            "{mode}: no execution left running: {:?}",
            o.statuses
        );
        if mode.starts_with("mode=durable") {
            assert_eq!(
                o.stats.conflicts, 0,
                "durable never sends an order twice without its idempotency key"
            );
        }
    }
    // Written to the handle itself, not through `println!`, so that `cargo test` shows
    // the figures of a passing run too.
    use std::io::Write;
    let mut err = std::io::stderr();
    for line in &report {
        let _ = writeln!(err, "order-sync crash test: {line}");
    }
}

/// The partner refuses what it cannot store as sent: a blank or over-long username (on
/// MariaDB two names sharing their first 100 characters were once taken for one user),
/// a negative price; an idempotency key reused for another request gets 422; an
/// unknown path gets a 404 that says what is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_refuses_orders_it_cannot_store_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![format!(
        "sqlite:{}",
        dir.path().join("partner.db").display()
    )];
    if let Ok(url) = std::env::var("BATCH_TEST_MYSQL_URL") {
        let admin = sqlx::MySqlPool::connect(&url).await.unwrap();
        for sql in [
            "DROP DATABASE IF EXISTS batch_t_partner",
            "CREATE DATABASE batch_t_partner",
        ] {
            sqlx::raw_sql(sql).execute(&admin).await.unwrap();
        }
        let at = url.rfind('/').unwrap();
        stores.push(format!("{}/batch_t_partner", &url[..at]));
    }
    let client = reqwest::Client::new();
    for store in stores {
        let p = partner::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            &store,
            partner::Behaviour::default(),
        )
        .await
        .unwrap();
        let post = |body: serde_json::Value, key: Option<&str>| {
            let mut request = client.post(format!("{}/orders", p.url())).json(&body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            request.send()
        };
        let order = |name: &str, price: i64| serde_json::json!({ "username": name, "totalPrice": price, "appliedYearMonth": "2024-05" });
        let long = "a".repeat(100);
        assert_eq!(post(order(&long, 1), None).await.unwrap().status(), 201);
        for (body, says) in [
            (order(&format!("{long}x"), 1), "at most 100"),
            (order("   ", 1), "blank"),
            (order(&"b".repeat(1_000_000), 1), "at most 100"),
            (order("carol", -5), "negative"),
        ] {
            let answer = post(body, None).await.unwrap();
            assert_eq!(answer.status(), 400, "{store}");
            let text = answer.text().await.unwrap();
            assert!(text.contains(says), "{store}: {text}");
        }
        assert_eq!(
            post(order("dave", 7), Some("k-1")).await.unwrap().status(),
            201
        );
        assert_eq!(
            post(order("dave", 7), Some("k-1")).await.unwrap().status(),
            201,
            "a replay"
        );
        let reused = post(order("erin", 9), Some("k-1")).await.unwrap();
        assert_eq!(reused.status(), 422, "{store}");
        assert!(reused.text().await.unwrap().contains("another request"));
        let missing = client
            .get(format!("{}/nothing", p.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert!(missing.text().await.unwrap().contains("POST /orders"));
        let stored = partner_stats(&p).await;
        assert_eq!(stored.created, 2, "{store}: {stored:?}");
    }
}
