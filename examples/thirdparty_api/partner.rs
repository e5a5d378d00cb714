//! The partner's write-only order API from seed 000 (`thirdparty-api`): applying twice
//! in the same month is refused with 409, and nothing can be taken back. Shared by the
//! `thirdparty_api` example (which serves it), `order_sync` (which starts it in-process)
//! and the order-sync crash test.
//!
//! - `POST /orders` with `{"username", "totalPrice", "appliedYearMonth"}`: 201 with the
//!   order id and creation time; 409 "already applied" when that user already applied
//!   that month; 400 naming what is wrong with a malformed body or order (a blank
//!   username, one over 100 characters, a negative price, a month not YYYY-MM). With an
//!   `Idempotency-Key` header, a repeated key with the same request gets the original
//!   response again and the order is stored once; the key reused for another request
//!   gets 422. Any other path gets 404 with a body naming the paths served.
//! - `GET /orders`: what it stored. `GET /stats`: counts of requests received, orders
//!   created, 409s answered and idempotent replays.
//! - A fault mode fails one request (by its number) with 503, or stores the order and
//!   then drops the connection before answering (the client cannot know it went
//!   through).
//! - A latency delays each answer to `POST /orders` by a fixed time, as a slow
//!   partner's would be; requests are handled concurrently, so the delays overlap.
//! - It can ignore `Idempotency-Key` headers, as a partner without that support does
//!   (and without the cost of storing each answer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{MySqlPool, Row, SqlitePool};

/// How a chosen request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// Answer 503 without storing anything.
    Unavailable,
    /// Store the order, then drop the connection without an answer.
    Drop,
}

/// How the partner behaves besides storing orders.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Behaviour {
    /// The request to fail, if any.
    pub fault: Option<Fault>,
    /// How long each answer to `POST /orders` waits.
    pub latency: Duration,
    /// Treat requests as if they carried no `Idempotency-Key`.
    pub ignore_idempotency_keys: bool,
}

/// Fail request number `request` (1 for the first POST /orders) this way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub request: u64,
    pub kind: FaultKind,
}

#[derive(Clone)]
enum Store {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    created: AtomicU64,
    conflicts: AtomicU64,
    replays: AtomicU64,
    malformed: AtomicU64,
    faults: AtomicU64,
}

struct Shared {
    store: Store,
    counters: Counters,
    behaviour: Behaviour,
}

/// A running partner API.
pub(crate) struct Partner {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Partner {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderRequest {
    username: String,
    total_price: i64,
    applied_year_month: String,
}

/// One stored order, as `GET /orders` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredOrder {
    pub order_id: i64,
    pub username: String,
    pub total_price: i64,
    pub applied_year_month: String,
    pub created_at: String,
}

/// What `GET /stats` answers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Stats {
    pub requests: u64,
    pub created: u64,
    pub conflicts: u64,
    pub replays: u64,
    pub malformed: u64,
    pub faults: u64,
}

/// Opens the partner's own database (`sqlite:FILE` or `mysql://…`), creating its tables.
async fn open_store(url: &str) -> Result<Store, sqlx::Error> {
    if url.starts_with("mysql:") {
        let pool = MySqlPool::connect(url).await?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS partner_orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
             username VARCHAR(100) NOT NULL, total_price BIGINT NOT NULL, applied_year_month VARCHAR(7) NOT NULL, \
             created_at VARCHAR(32) NOT NULL, UNIQUE KEY one_per_month (username, applied_year_month))",
            "CREATE TABLE IF NOT EXISTS partner_idempotency (idem_key VARCHAR(250) PRIMARY KEY, \
             status INT NOT NULL, body TEXT NOT NULL, request TEXT NOT NULL)",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        return Ok(Store::MySql(pool));
    }
    let options: SqliteConnectOptions = url.parse()?;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            options
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                // The partner stands in for someone else's service: what it costs is
                // set by `latency`, not by a disk sync per order (WAL without a sync at
                // each commit still survives the death of a client, or of itself).
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
        )
        .await?;
    for ddl in [
        "CREATE TABLE IF NOT EXISTS partner_orders (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         username TEXT NOT NULL, total_price INTEGER NOT NULL, applied_year_month TEXT NOT NULL, \
         created_at TEXT NOT NULL, UNIQUE (username, applied_year_month))",
        "CREATE TABLE IF NOT EXISTS partner_idempotency (idem_key TEXT PRIMARY KEY, \
         status INTEGER NOT NULL, body TEXT NOT NULL, request TEXT NOT NULL)",
    ] {
        sqlx::query(ddl).execute(&pool).await?;
    }
    Ok(Store::Sqlite(pool))
}

/// Starts the API on `addr` (port 0 picks a free one) with its database at `db_url`.
pub(crate) async fn start(
    addr: SocketAddr,
    db_url: &str,
    behaviour: Behaviour,
) -> Result<Partner, Box<dyn std::error::Error + Send + Sync>> {
    let store = open_store(db_url).await?;
    let shared = Arc::new(Shared {
        store,
        counters: Counters::default(),
        behaviour,
    });
    let app = Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .route("/stats", get(stats))
        .fallback(not_found)
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("partner API stopped: {e}");
        }
    });
    Ok(Partner { addr, task })
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn create_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A client that goes away must not cut an order off halfway (stored but not
    // counted): each order is handled to its end in a task of its own.
    match tokio::spawn(handle_order(shared, headers, body)).await {
        Ok(response) => response,
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("handler failed: {e}") }),
        ),
    }
}

async fn handle_order(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let c = &shared.counters;
    let number = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if !shared.behaviour.latency.is_zero() {
        tokio::time::sleep(shared.behaviour.latency).await;
    }
    let fault = shared
        .behaviour
        .fault
        .filter(|f| f.request == number)
        .map(|f| f.kind);
    if fault == Some(FaultKind::Unavailable) {
        c.faults.fetch_add(1, Ordering::SeqCst);
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "temporarily unavailable", "request": number }),
        );
    }
    let order: OrderRequest = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            c.malformed.fetch_add(1, Ordering::SeqCst);
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "error": format!("malformed order: {e}; expected {{\"username\": text, \"totalPrice\": integer, \"appliedYearMonth\": \"YYYY-MM\"}}") }),
            );
        }
    };
    if let Err(problem) = validate(&order) {
        c.malformed.fetch_add(1, Ordering::SeqCst);
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("malformed order: {problem}") }),
        );
    }
    let key = headers
        .get("idempotency-key")
        .filter(|_| !shared.behaviour.ignore_idempotency_keys)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = match apply(&shared.store, &order, key.as_deref()).await {
        Ok(Outcome::Replayed(status, body)) => {
            c.replays.fetch_add(1, Ordering::SeqCst);
            (status, body)
        }
        Ok(Outcome::Created(body)) => {
            c.created.fetch_add(1, Ordering::SeqCst);
            (StatusCode::CREATED, body)
        }
        Ok(Outcome::Conflict(body)) => {
            c.conflicts.fetch_add(1, Ordering::SeqCst);
            (StatusCode::CONFLICT, body)
        }
        Ok(Outcome::KeyReused(body)) => {
            c.malformed.fetch_add(1, Ordering::SeqCst);
            (StatusCode::UNPROCESSABLE_ENTITY, body)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("storage failed: {e}") }),
        ),
    };
    if fault == Some(FaultKind::Drop) {
        c.faults.fetch_add(1, Ordering::SeqCst);
        // The order is stored; the answer never arrives: the body fails as soon as it
        // is read and hyper closes the connection.
        let dropped = futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::other(
                "connection dropped by the fault mode",
            ))
        });
        return Response::builder()
            .status(status)
            .body(Body::from_stream(dropped))
            .expect("a valid response");
    }
    answer(status, body)
}

/// The longest username the partner stores (its column is VARCHAR(100)): a longer one
/// is refused rather than cut, since two names sharing their first 100 characters
/// would otherwise be taken for one user.
const MAX_USERNAME: usize = 100;

/// What an order must be before it is stored: a username that is not blank and fits,
/// a price that is not negative, a month as YYYY-MM.
fn validate(order: &OrderRequest) -> Result<(), String> {
    let name = order.username.trim();
    if name.is_empty() {
        return Err("username must not be blank".to_owned());
    }
    let length = order.username.chars().count();
    if length > MAX_USERNAME {
        return Err(format!(
            "username has {length} characters; at most {MAX_USERNAME} are accepted"
        ));
    }
    if order.total_price < 0 {
        return Err(format!(
            "totalPrice must not be negative, got {}",
            order.total_price
        ));
    }
    if !valid_year_month(&order.applied_year_month) {
        return Err(format!(
            "appliedYearMonth must be YYYY-MM, got `{}`",
            order.applied_year_month
        ));
    }
    Ok(())
}

fn valid_year_month(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(
            &s[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

enum Outcome {
    Created(serde_json::Value),
    Conflict(serde_json::Value),
    Replayed(StatusCode, serde_json::Value),
    /// The key was used before for another request: refused, as payment APIs do.
    KeyReused(serde_json::Value),
}

/// Stores the order (and the answer under its idempotency key) in one transaction, or
/// replays the answer already given for that key.
async fn apply(
    store: &Store,
    order: &OrderRequest,
    key: Option<&str>,
) -> Result<Outcome, sqlx::Error> {
    match store {
        Store::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            if let Some(k) = key
                && let Some(row) = sqlx::query(
                    "SELECT status, body, request FROM partner_idempotency WHERE idem_key = ?",
                )
                .bind(k)
                .fetch_optional(&mut *tx)
                .await?
            {
                return Ok(replayed(
                    k,
                    order,
                    row.get::<i64, _>(0),
                    &row.get::<String, _>(1),
                    &row.get::<String, _>(2),
                ));
            }
            let created_at = now();
            let inserted = sqlx::query(
                "INSERT INTO partner_orders (username, total_price, applied_year_month, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (username, applied_year_month) DO NOTHING",
            )
            .bind(&order.username)
            .bind(order.total_price)
            .bind(&order.applied_year_month)
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
            let outcome = outcome(
                order,
                inserted.rows_affected(),
                inserted.last_insert_rowid(),
                &created_at,
            );
            if let Some((k, status, body, request)) = remembered(key, order, &outcome) {
                sqlx::query(REMEMBER)
                    .bind(k)
                    .bind(status)
                    .bind(body)
                    .bind(request)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(outcome)
        }
        Store::MySql(pool) => {
            let mut tx = pool.begin().await?;
            if let Some(k) = key
                && let Some(row) = sqlx::query(
                    "SELECT status, body, request FROM partner_idempotency WHERE idem_key = ? FOR UPDATE",
                )
                .bind(k)
                .fetch_optional(&mut *tx)
                .await?
            {
                return Ok(replayed(
                    k,
                    order,
                    row.get::<i32, _>(0) as i64,
                    &row.get::<String, _>(1),
                    &row.get::<String, _>(2),
                ));
            }
            let created_at = now();
            let inserted = sqlx::query(
                "INSERT IGNORE INTO partner_orders (username, total_price, applied_year_month, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(&order.username)
            .bind(order.total_price)
            .bind(&order.applied_year_month)
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
            let outcome = outcome(
                order,
                inserted.rows_affected(),
                inserted.last_insert_id() as i64,
                &created_at,
            );
            if let Some((k, status, body, request)) = remembered(key, order, &outcome) {
                sqlx::query(REMEMBER)
                    .bind(k)
                    .bind(status)
                    .bind(body)
                    .bind(request)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(outcome)
        }
    }
}

fn now() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

fn outcome(order: &OrderRequest, rows: u64, id: i64, created_at: &str) -> Outcome {
    if rows == 1 {
        Outcome::Created(json!({ "orderId": id, "createdAt": created_at }))
    } else {
        Outcome::Conflict(json!({
            "error": "already applied",
            "message": format!("{} already applied for {}", order.username, order.applied_year_month),
        }))
    }
}

/// The answer given before under `key`, when `order` is the request made then; a
/// refusal when the key was used for another request.
fn replayed(key: &str, order: &OrderRequest, status: i64, body: &str, request: &str) -> Outcome {
    if request != fingerprint(order) {
        return Outcome::KeyReused(json!({
            "error": "idempotency key reused",
            "message": format!("Idempotency-Key `{key}` was used for another request; use a new key for a new request"),
        }));
    }
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Outcome::Replayed(
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The request as the partner compares it under an idempotency key.
fn fingerprint(order: &OrderRequest) -> String {
    serde_json::to_string(order).expect("an order serializes")
}

/// The row that remembers the answer given under an idempotency key, and the request.
fn remembered(
    key: Option<&str>,
    order: &OrderRequest,
    outcome: &Outcome,
) -> Option<(String, i32, String, String)> {
    let (status, body) = match outcome {
        Outcome::Created(b) => (201, b),
        Outcome::Conflict(b) => (409, b),
        Outcome::Replayed(..) | Outcome::KeyReused(_) => return None,
    };
    Some((
        key?.to_owned(),
        status,
        body.to_string(),
        fingerprint(order),
    ))
}

const REMEMBER: &str =
    "INSERT INTO partner_idempotency (idem_key, status, body, request) VALUES (?, ?, ?, ?)";

async fn list_orders(State(shared): State<Arc<Shared>>) -> Response {
    const SQL: &str = "SELECT id, username, total_price, applied_year_month, created_at FROM partner_orders ORDER BY id";
    let rows: Result<Vec<StoredOrder>, sqlx::Error> = match &shared.store {
        Store::Sqlite(pool) => sqlx::query(SQL).fetch_all(pool).await.map(|rows| {
            rows.iter()
                .map(|r| StoredOrder {
                    order_id: r.get(0),
                    username: r.get(1),
                    total_price: r.get(2),
                    applied_year_month: r.get(3),
                    created_at: r.get(4),
                })
                .collect()
        }),
        Store::MySql(pool) => sqlx::query(SQL).fetch_all(pool).await.map(|rows| {
            rows.iter()
                .map(|r| StoredOrder {
                    order_id: r.get(0),
                    username: r.get(1),
                    total_price: r.get(2),
                    applied_year_month: r.get(3),
                    created_at: r.get(4),
                })
                .collect()
        }),
    };
    match rows {
        Ok(orders) => answer(StatusCode::OK, json!(orders)),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("storage failed: {e}") }),
        ),
    }
}

/// Any other path: 404 with a body that says which paths there are.
async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({
            "error": "not found",
            "message": format!("no {method} {}; the partner serves POST /orders, GET /orders and GET /stats", uri.path()),
        }),
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let c = &shared.counters;
    let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
    let stats = Stats {
        requests: load(&c.requests),
        created: load(&c.created),
        conflicts: load(&c.conflicts),
        replays: load(&c.replays),
        malformed: load(&c.malformed),
        faults: load(&c.faults),
    };
    answer(StatusCode::OK, json!(stats))
}
