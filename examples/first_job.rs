//! A first job, as the README's DSL page shows it, with the two things a real job does
//! first: an async call per item (to a price service, here a small axum server started
//! by the example on a free loopback port) written as a closure, and a writer that
//! inserts into the job's own table in the chunk's transaction, also a closure.
//!
//! ```text
//! cargo run --example first_job                 # 50 orders, one with an unknown SKU
//! cargo run --example first_job -- run=2,long   # another instance
//! sqlite3 batch.db 'select * from priced_orders limit 5'
//! ```
//!
//! The order with an unknown SKU is skipped (`skip(UnknownSku, limit = 5)`); every other
//! order is priced and stored once. Its unit test (`cargo test --example first_job`)
//! runs the step with the test kit on a temporary SQLite file.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use batch::cli::Runner;
use batch::prelude::*;

/// An order to price.
#[derive(Debug, Clone)]
struct Order {
    id: i64,
    sku: String,
    quantity: i64,
}

/// An order with its price, as stored in `priced_orders`.
#[derive(Debug, Clone)]
struct PricedOrder {
    id: i64,
    sku: String,
    total_cents: i64,
}

/// The price service does not know the SKU (it answered 404).
#[derive(Debug, thiserror::Error)]
#[error("the price service knows no SKU `{0}`")]
struct UnknownSku(String);

/// The client of the price service, shared by the steps (`Res<PriceApi>`).
#[derive(Clone)]
struct PriceApi {
    http: reqwest::Client,
    url: String,
}

impl PriceApi {
    /// The unit price of `sku`, in cents.
    async fn unit_price(&self, sku: &str) -> Result<i64> {
        let response = self
            .http
            .get(format!("{}/prices/{sku}", self.url))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(UnknownSku(sku.to_owned()).into());
        }
        let body: serde_json::Value = response.error_for_status()?.json().await?;
        Ok(body["cents"].as_i64().unwrap_or_default())
    }
}

/// The orders of the day: 50, the 17th with a SKU the service does not know.
fn orders() -> Vec<Order> {
    (1..=50)
        .map(|id| Order {
            id,
            sku: if id == 17 {
                "X-999".to_owned()
            } else {
                format!("A-{}", id % 5)
            },
            quantity: id % 3 + 1,
        })
        .collect()
}

#[step(chunk = 10, skip(UnknownSku, limit = 5))]
fn price_orders(prices: Res<PriceApi>) -> impl ChunkStep<Order, PricedOrder> {
    let prices = prices.0;
    chunk(
        ListReader::new(orders()).restartable("orders"),
        // One call per item; the future borrows the order, the client is cloned in.
        async_processor(move |order: &Order| {
            let prices = prices.clone();
            Box::pin(async move {
                let unit = prices.unit_price(&order.sku).await?;
                Ok(Some(PricedOrder {
                    id: order.id,
                    sku: order.sku.clone(),
                    total_cents: unit * order.quantity,
                }))
            })
        }),
        // The whole chunk, in the chunk's transaction: the rows commit with the chunk.
        async_writer(|priced: &[PricedOrder], cx: &mut WriteContext<'_>| {
            Box::pin(async move {
                for order in priced {
                    sqlx::query(
                        "INSERT INTO priced_orders (id, sku, total_cents) VALUES (?1, ?2, ?3)",
                    )
                    .bind(order.id)
                    .bind(&order.sku)
                    .bind(order.total_cents)
                    .execute(&mut *cx.sqlite()?)
                    .await?;
                }
                Ok(())
            })
        }),
    )
}

#[job(name = "firstJob")]
fn first_job() -> Flow {
    Flow::start(price_orders {}).build()
}

/// The job's own table, created when missing.
async fn create_table(pool: &DbPool) -> Result<()> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS priced_orders \
         (id INTEGER NOT NULL PRIMARY KEY, sku TEXT NOT NULL, total_cents INTEGER NOT NULL)",
    )
    .await?;
    Ok(())
}

/// Starts the price service on a free loopback port: `GET /prices/{sku}` answers
/// `{"cents": N}` for the SKUs `A-0` to `A-4`, 404 for any other.
async fn start_price_service() -> Result<String> {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::get;
    async fn price(Path(sku): Path<String>) -> Result<axum::Json<serde_json::Value>, StatusCode> {
        let n: i64 = sku
            .strip_prefix("A-")
            .and_then(|n| n.parse().ok())
            .filter(|n| (0..5).contains(n))
            .ok_or(StatusCode::NOT_FOUND)?;
        Ok(axum::Json(serde_json::json!({ "cents": 100 + 25 * n })))
    }
    let app = axum::Router::new().route("/prices/{sku}", get(price));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

fn main() -> std::process::ExitCode {
    let service: Arc<Mutex<Option<String>>> = Arc::default();
    let for_setup = service.clone();
    Runner::new()
        .about("A first job: price 50 orders through a local price service")
        .setup(move |setup: batch::cli::Setup<DbPool>| async move {
            create_table(&setup.pool).await?;
            *for_setup.lock().unwrap() = Some(start_price_service().await?);
            Ok(())
        })
        .configure(move |launcher| {
            let url = service
                .lock()
                .unwrap()
                .clone()
                .expect("started by the setup");
            launcher.resource(PriceApi {
                http: reqwest::Client::new(),
                url,
            })
        })
        .run(first_job {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch::testing::{Counts, TestKit};

    #[tokio::test]
    async fn prices_every_known_order_once_and_skips_the_unknown_one() {
        let url = start_price_service().await.unwrap();
        let kit = TestKit::sqlite().await.unwrap().resource(PriceApi {
            http: reqwest::Client::new(),
            url,
        });
        let pool = kit.repository().pool().expect("a SQLite repository");
        create_table(&pool).await.unwrap();
        kit.run(first_job {}, JobParameters::new())
            .await
            .unwrap()
            .assert_completed()
            .assert_counts(
                "price_orders",
                Counts {
                    read: 50,
                    write: 49,
                    commit: 6,
                    // The processor's error rolls its chunk back once (Spring's rule);
                    // the chunk is then processed again without the skipped order.
                    rollback: 1,
                    process_skip: 1,
                    ..Counts::default()
                },
            )
            .assert_context("price_orders", "orders.read.count", 50);
        let sqlx_pool = pool.sqlite().unwrap();
        let (rows, total): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), SUM(total_cents) FROM priced_orders")
                .fetch_one(sqlx_pool)
                .await
                .unwrap();
        let expected: i64 = orders()
            .iter()
            .filter(|o| o.id != 17)
            .map(|o| (100 + 25 * (o.id % 5)) * o.quantity)
            .sum();
        assert_eq!((rows, total), (49, expected));
    }
}
