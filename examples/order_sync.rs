//! Seed 000's order sync: a step sends each pending order to a partner's write-only
//! API (`POST /orders`), which refuses a second order of a user in the same month with
//! 409. What a restart after a failure at item 96 of 100 does, three ways:
//!
//! - `mode=as-is`: nothing remembered; the restart starts again at order 1, gets 409,
//!   and fails again, every time (the seed's AS-IS).
//! - `mode=cursor`: the key of the last successful call is kept in the step
//!   ExecutionContext (a typed context accessor); the restart resumes after it (the
//!   seed's TO-BE). A crash (`kill -9`) between two commits loses the cursor's latest
//!   moves and re-sends those orders: the partner answers 409, counted here as
//!   duplicates.
//! - `mode=durable` (the default): the framework's `DurableCalls`: each successful call
//!   is recorded in the repository and carries a deterministic Idempotency-Key; a
//!   restart skips what was sent, even after `kill -9`. `concurrency=N,long` keeps up
//!   to N calls of a chunk in flight at once (one by default); their records are
//!   written in groups, so a slow partner costs its latency once per group of calls,
//!   not once per order.
//!
//! ```text
//! cargo run --example order_sync                     # the whole story, three tables
//! cargo run --example order_sync -- mode=cursor fail.at=96,long,false
//! cargo run --example order_sync -- --api http://127.0.0.1:8080 mode=durable orders=1000,long chunk=10,long
//! cargo run --example order_sync -- orders=1000,long chunk=100,long concurrency=16,long latency.ms=5,long,false
//! ```
//!
//! Without `--api` a partner API is started in this process, on a free loopback port,
//! with its own temporary SQLite file. `orders=N` (default 100) sets how many pending
//! orders the table `order_sync_pending` is filled with when it is empty; `chunk=N`
//! (default 10) is the chunk size; `fail.at=N` (non-identifying) makes the call for
//! order N fail as an outage would; `latency.ms=N` (non-identifying) makes the
//! in-process partner wait N milliseconds before each answer (for a partner given with
//! `--api`, start `thirdparty_api --latency-ms N` instead).

#[path = "thirdparty_api/partner.rs"]
pub(crate) mod partner;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use batch::calls::{DurableCalls, ItemCall};
use batch::cli::Runner;
use batch::prelude::*;
use batch::step::{StepBuilder, StepDef};
use batch::validate::ParameterRules;
use serde_json::json;
use sqlx::{Row, SqlitePool};

/// The table of orders to send.
pub const PENDING: &str = "order_sync_pending";

/// A row of the pending table: one order to send.
#[derive(Debug, Clone)]
pub struct PendingOrder {
    /// The order's key, in sending order.
    pub id: i64,
    /// Who ordered; the partner accepts one order per user and month.
    pub username: String,
    /// What the order costs.
    pub total_price: i64,
    /// The month the order counts for (`2024-05`).
    pub applied_year_month: String,
}

/// The seed's TO-BE cursor: the id of the last order the partner accepted.
#[derive(ExecutionContext, Default)]
pub struct Cursor {
    /// `None` until the first order is accepted.
    #[context(key = "cursor.last.sent.id")]
    pub last_sent_id: Option<i64>,
}

/// Where the partner API is.
#[derive(Debug, Clone)]
pub struct PartnerUrl(pub String);

/// The partner refused a user's second order in a month.
#[derive(Debug, thiserror::Error)]
#[error("the partner answered 409: {0} already applied this month")]
pub struct AlreadyApplied(String);

/// The outage `fail.at` injects before the call for that order.
#[derive(Debug, thiserror::Error)]
#[error("the partner is unavailable for order {0} (an injected outage: fail.at)")]
pub struct Outage(i64);

/// Any other answer the partner should not give.
#[derive(Debug, thiserror::Error)]
#[error("the partner answered {status}: {body}")]
pub struct PartnerError {
    status: u16,
    body: String,
}

/// Creates the pending orders when the table is missing or empty.
pub async fn prepare(pool: &SqlitePool, orders: i64) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS order_sync_pending (id INTEGER PRIMARY KEY, username TEXT NOT NULL, \
         total_price INTEGER NOT NULL, applied_year_month TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_sync_pending")
        .fetch_one(pool)
        .await?;
    if count == 0 {
        let mut tx = pool.begin().await?;
        for id in 1..=orders {
            sqlx::query("INSERT INTO order_sync_pending VALUES (?1, ?2, ?3, '2025-02')")
                .bind(id)
                .bind(format!("user{id:05}"))
                .bind(10_000 + id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// How the reader keeps its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing remembered: a restart starts again at the first order.
    AsIs,
    /// The last accepted id kept in the step context (the seed's TO-BE).
    Cursor,
    /// Each call recorded by `DurableCalls`, with an idempotency key.
    Durable,
}

impl Mode {
    /// The `mode` parameter: `as-is`, `cursor` or `durable`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "as-is" => Ok(Mode::AsIs),
            "cursor" => Ok(Mode::Cursor),
            "durable" => Ok(Mode::Durable),
            other => Err(Error::msg(format!(
                "job parameter `mode`: `{other}` is not one of as-is, cursor, durable"
            ))),
        }
    }
}

/// Reads pending orders by primary key, a page at a time. As-is it remembers
/// nothing; in cursor mode it starts after the cursor the writer keeps; in durable
/// mode it saves its own position at each commit.
pub struct PendingReader {
    pool: SqlitePool,
    mode: Mode,
    after: i64,
    page: VecDeque<PendingOrder>,
    exhausted: bool,
}

impl ItemReader<PendingOrder> for PendingReader {
    async fn read(&mut self) -> Result<Option<PendingOrder>> {
        if self.page.is_empty() && !self.exhausted {
            let rows = sqlx::query(
                "SELECT id, username, total_price, applied_year_month FROM order_sync_pending \
                 WHERE id > ?1 ORDER BY id LIMIT 50",
            )
            .bind(self.after)
            .fetch_all(&self.pool)
            .await?;
            self.exhausted = rows.len() < 50;
            for r in rows {
                self.page.push_back(PendingOrder {
                    id: r.try_get(0)?,
                    username: r.try_get(1)?,
                    total_price: r.try_get(2)?,
                    applied_year_month: r.try_get(3)?,
                });
            }
        }
        let order = self.page.pop_front();
        if let Some(o) = &order {
            self.after = o.id;
        }
        Ok(order)
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.after = match self.mode {
            Mode::AsIs => 0,
            Mode::Cursor => ctx.load::<Cursor>()?.last_sent_id.unwrap_or(0),
            Mode::Durable => ctx.get::<i64>("reader.after")?.unwrap_or(0),
        };
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        if self.mode == Mode::Durable {
            ctx.put("reader.after", &self.after)?;
        }
        Ok(())
    }
}

/// What the job saw of the partner, for the story's tables.
#[derive(Default)]
pub struct Sent {
    /// Requests sent to the partner, whatever the answer.
    pub calls: AtomicU64,
}

/// Sends one order; `idempotency_key` goes in the header when given.
async fn post(
    http: &reqwest::Client,
    url: &str,
    order: &PendingOrder,
    idempotency_key: Option<&str>,
    fail_at: Option<i64>,
    sent: &Sent,
) -> Result<u16> {
    if fail_at == Some(order.id) {
        return Err(Outage(order.id).into());
    }
    let mut request = http.post(format!("{url}/orders")).json(&json!({
        "username": order.username,
        "totalPrice": order.total_price,
        "appliedYearMonth": order.applied_year_month,
    }));
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    sent.calls.fetch_add(1, Ordering::SeqCst);
    let response = request.send().await?;
    let status = response.status().as_u16();
    // Reading the body confirms the partner's answer arrived whole.
    let body = response.text().await?;
    match status {
        201 | 409 => Ok(status),
        _ => Err(PartnerError { status, body }.into()),
    }
}

/// As-is and cursor: one call per order, no idempotency key.
pub struct PlainSender {
    http: reqwest::Client,
    url: String,
    mode: Mode,
    fail_at: Option<i64>,
    sent: Arc<Sent>,
}

/// The `concurrency` parameter: calls in flight at once, durable mode only.
pub fn concurrency(mode: Mode, given: Option<i64>) -> Result<usize> {
    match (mode, given) {
        (_, None) => Ok(1),
        (Mode::Durable, Some(n)) if n >= 1 => usize::try_from(n)
            .map_err(|_| Error::msg(format!("job parameter `concurrency`: {n} is too large"))),
        (Mode::Durable, Some(n)) => Err(Error::msg(format!(
            "job parameter `concurrency`: {n} calls in flight is not possible; give 1 or more"
        ))),
        (_, Some(1)) => Ok(1),
        (_, Some(n)) => Err(Error::msg(format!(
            "job parameter `concurrency`: {n} concurrent calls need mode=durable (as-is and cursor send one order at a time, in order)"
        ))),
    }
}

/// The `latency.ms` parameter: how long the in-process partner waits before each
/// answer.
pub fn latency(given: Option<i64>) -> Result<Duration> {
    match given {
        None => Ok(Duration::ZERO),
        Some(ms) => u64::try_from(ms).map(Duration::from_millis).map_err(|_| {
            Error::msg(format!(
                "job parameter `latency.ms`: {ms} is negative; give the partner's delay in milliseconds, 0 or more"
            ))
        }),
    }
}

impl ItemWriter<PendingOrder> for PlainSender {
    async fn write(&mut self, orders: &[PendingOrder], cx: &mut WriteContext<'_>) -> Result<()> {
        for order in orders {
            let status = post(&self.http, &self.url, order, None, self.fail_at, &self.sent).await?;
            if status == 409 && self.mode == Mode::AsIs {
                return Err(AlreadyApplied(order.username.clone()).into());
            }
            if self.mode == Mode::Cursor {
                // A 409 here means an earlier run sent it and then lost the cursor's
                // move (a crash between commits): a duplicate, but the order is there.
                cx.step_context().store(&Cursor {
                    last_sent_id: Some(order.id),
                })?;
            }
        }
        Ok(())
    }

    fn joins_transaction(&self) -> bool {
        false
    }
}

/// Durable: the same call, made through `DurableCalls`.
pub struct OrderCall {
    http: reqwest::Client,
    url: String,
    fail_at: Option<i64>,
    sent: Arc<Sent>,
}

impl ItemCall<PendingOrder> for OrderCall {
    fn key(&self, order: &PendingOrder) -> String {
        order.id.to_string()
    }

    async fn call(&self, order: &PendingOrder, idempotency_key: &str) -> Result<()> {
        match post(
            &self.http,
            &self.url,
            order,
            Some(idempotency_key),
            self.fail_at,
            &self.sent,
        )
        .await?
        {
            409 => Err(AlreadyApplied(order.username.clone()).into()),
            _ => Ok(()),
        }
    }
}

/// The writer of either kind.
pub enum Sender {
    /// As-is and cursor: every chunk's orders are sent.
    Plain(PlainSender),
    /// Durable: orders already sent are skipped.
    Durable(DurableCalls<OrderCall>),
}

impl ItemWriter<PendingOrder> for Sender {
    async fn write(&mut self, orders: &[PendingOrder], cx: &mut WriteContext<'_>) -> Result<()> {
        match self {
            Sender::Plain(w) => w.write(orders, cx).await,
            Sender::Durable(w) => w.write(orders, cx).await,
        }
    }

    fn joins_transaction(&self) -> bool {
        false
    }
}

/// The step: chunk size from `chunk` (default 10).
pub fn send_orders(sent: Arc<Sent>) -> StepDef {
    StepBuilder::new("sendOrders")
        .chunk_size(10)
        .chunk_size_param("chunk")
        .chunk(move |scope| {
            let sent = sent.clone();
            async move {
                let mode = Mode::parse(
                    &scope
                        .param::<Option<String>>("mode")?
                        .unwrap_or_else(|| "durable".into()),
                )?;
                let fail_at = scope.param::<Option<i64>>("fail.at")?;
                let concurrency = concurrency(mode, scope.param::<Option<i64>>("concurrency")?)?;
                let pool = scope.resource::<SqlitePool>()?;
                let url = scope.resource::<PartnerUrl>()?.0;
                let http = reqwest::Client::new();
                let reader = PendingReader {
                    pool,
                    mode,
                    after: 0,
                    page: VecDeque::new(),
                    exhausted: false,
                };
                let writer = match mode {
                    Mode::Durable => Sender::Durable(
                        DurableCalls::new(OrderCall {
                            http,
                            url,
                            fail_at,
                            sent,
                        })
                        .concurrency(concurrency),
                    ),
                    _ => Sender::Plain(PlainSender {
                        http,
                        url,
                        mode,
                        fail_at,
                        sent,
                    }),
                };
                Ok(read_write(reader, writer))
            }
        })
}

/// The job: one chunk step sending the pending orders.
pub fn order_sync_job(sent: Arc<Sent>) -> Job {
    Job::new("orderSyncJob", Flow::start(send_orders(sent)).build()).parameters(
        ParameterRules::new().optional([
            "mode",
            "fail.at",
            "orders",
            "chunk",
            "story",
            "concurrency",
            "latency.ms",
        ]),
    )
}

/// A partner API in this process, on a free loopback port, with its own temporary
/// SQLite file.
pub(crate) async fn start_partner(
    behaviour: partner::Behaviour,
) -> Result<(partner::Partner, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("partner.db").display());
    let p = partner::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), &db, behaviour)
        .await
        .map_err(|e| Error::msg(format!("cannot start the partner API: {e}")))?;
    Ok((p, dir))
}

async fn partner_state(url: &str) -> Result<(partner::Stats, usize)> {
    let stats = reqwest::get(format!("{url}/stats"))
        .await?
        .json::<partner::Stats>()
        .await?;
    let orders = reqwest::get(format!("{url}/orders"))
        .await?
        .json::<Vec<partner::StoredOrder>>()
        .await?;
    Ok((stats, orders.len()))
}

/// No arguments: each mode fails at order 96 and is restarted, against a fresh partner.
async fn story() -> Result<()> {
    let repository = SqliteJobRepository::open(batch::cli::DEFAULT_DB).await?;
    let pool = repository.pool().clone();
    prepare(&pool, 100).await?;
    let launcher = JobLauncher::new(repository).resource(pool);
    let story = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f").to_string();
    println!("100 pending orders; the partner refuses a user's second order in a month (409).");
    println!("Each mode: run 1 fails at order 96 (an outage), run 2 is the restart.\n");
    for mode in ["as-is", "cursor", "durable"] {
        let (partner, _dir) = start_partner(partner::Behaviour::default()).await?;
        let launcher = launcher.clone().resource(PartnerUrl(partner.url()));
        println!("mode={mode}");
        println!("  run  status     calls sent  201s  409s  replays  partner holds  duplicates");
        let mut seen = partner::Stats::default();
        for (run, fail) in [(1, true), (2, false)] {
            let sent = Arc::new(Sent::default());
            let mut params = JobParameters::new()
                .with("mode", mode)
                .with("story", story.as_str());
            if fail {
                params = params.with_non_identifying("fail.at", 96i64);
            }
            let execution = launcher.run(order_sync_job(sent.clone()), params).await?;
            let (stats, held) = partner_state(&partner.url()).await?;
            let calls = sent.calls.load(Ordering::SeqCst);
            let created = stats.created - seen.created;
            let conflicts = stats.conflicts - seen.conflicts;
            let replays = stats.replays - seen.replays;
            println!(
                "  {run:>3}  {:<9}  {calls:>10}  {created:>4}  {conflicts:>4}  {replays:>7}  {held:>13}  {:>10}",
                execution.status.as_str(),
                conflicts + replays,
            );
            seen = stats;
        }
        println!();
    }
    println!("as-is cannot finish: every restart sends order 1 again and the partner refuses it.");
    println!("cursor and durable finish with every order sent once. Under kill -9 only durable");
    println!("stays at zero duplicates (see the order-sync crash test).");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() == 1 {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        return match rt.block_on(story()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", e.report());
                std::process::ExitCode::from(1)
            }
        };
    }
    let api = match args.iter().position(|a| a == "--api") {
        Some(i) if i + 1 < args.len() => {
            let url = args.remove(i + 1);
            args.remove(i);
            Some(url)
        }
        Some(_) => {
            eprintln!("error: --api needs a URL, e.g. --api http://127.0.0.1:8080");
            return std::process::ExitCode::from(2);
        }
        None => None,
    };
    // A partner started here lives until the job is done.
    type Started = Arc<std::sync::Mutex<Option<(partner::Partner, tempfile::TempDir)>>>;
    let started: Started = Arc::default();
    let for_setup = started.clone();
    let for_launcher = started.clone();
    let needs_partner = api.is_none();
    let code = Runner::new()
        .about("Seed 000: send pending orders to a partner API (mode=as-is|cursor|durable orders=N chunk=N concurrency=N fail.at=N latency.ms=N)")
        .setup(move |setup: batch::cli::Setup<SqlitePool>| async move {
            let orders = setup.parameters.get_as::<Option<i64>>("orders")?.unwrap_or(100);
            // Checked before the launch, so a wrong value leaves no failed execution.
            let mode = Mode::parse(
                &setup
                    .parameters
                    .get_as::<Option<String>>("mode")?
                    .unwrap_or_else(|| "durable".into()),
            )?;
            concurrency(mode, setup.parameters.get_as::<Option<i64>>("concurrency")?)?;
            let latency = latency(setup.parameters.get_as::<Option<i64>>("latency.ms")?)?;
            if !needs_partner && !latency.is_zero() {
                return Err(Error::msg(
                    "job parameter `latency.ms` delays the partner this example starts itself; \
                     with --api, start that partner with `thirdparty_api --latency-ms N`",
                ));
            }
            prepare(&setup.pool, orders).await?;
            if needs_partner {
                *for_setup.lock().unwrap() = Some(
                    start_partner(partner::Behaviour {
                        latency,
                        ..partner::Behaviour::default()
                    })
                    .await?,
                );
            }
            Ok(())
        })
        .configure(move |launcher| {
            let url = api.unwrap_or_else(|| {
                let started = for_launcher.lock().unwrap();
                started.as_ref().map(|(p, _)| p.url()).unwrap_or_default()
            });
            launcher.resource(PartnerUrl(url))
        })
        .run_with_args(order_sync_job(Arc::new(Sent::default())), args);
    drop(started);
    code
}
