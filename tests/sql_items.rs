//! The SQL items on the three databases: the keyset-paging reader (pages apart from
//! chunks, the last key in the step context, a restart that reads nothing twice) and
//! the batched writer (multi-row INSERT in the chunk's transaction, rolled back with
//! a failed chunk; upsert), the typed reader and mapped writer, and the composed items
//! (a validating and a mapping processor in a chain, writers chosen per item), and
//! `DurableCalls` with several calls in flight, whose records are kept in the
//! repository's database.
//!
//! `sqlite::CASE` always runs; `postgres::CASE` and `mysql::CASE` when
//! `BATCH_TEST_POSTGRES_URL` / `BATCH_TEST_MYSQL_URL` name a server.

#[macro_use]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use batch::prelude::*;
use batch::repository::DbKind;
use batch::sql::{KeysetReader, SqlRow, SqlWriter};
use batch::step::StepBuilder;

on_databases!(run; [sqlite => Sqlite, postgres => Postgres, mysql => MySql]; [
    keyset_paging_restarts_after_the_last_commit,
    writer_rows_per_statement_and_upsert,
    typed_rows_mapped_writes_and_composed_items,
    durable_calls_in_flight_record_each_success_once,
    durable_call_failure_keeps_records_restart_sends_rest,
    item_progress_in_groups_keeps_what_was_recorded,
]);

async fn run<F, Fut>(kind: DbKind, name: &str, case: F)
where
    F: FnOnce(Arc<dyn JobRepository>, DbPool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = support::open_fresh(kind, name).await else {
        return;
    };
    for table in ["items", "copies"] {
        let ddl = format!(
            "CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY, label VARCHAR(50) NOT NULL)"
        );
        db.pool.execute(&ddl).await.unwrap();
    }
    case(db.repo.clone(), db.pool.clone()).await;
}

#[derive(Debug, Clone)]
struct Item {
    id: i64,
    label: String,
}

fn writer(table: &str) -> SqlWriter<Item> {
    SqlWriter::insert(table, ["id", "label"], |i: &Item, row| {
        row.bind(i.id).bind(i.label.clone());
    })
}

async fn fill(pool: &DbPool, table: &str, items: &[Item]) {
    let mut tx = pool.begin().await.unwrap();
    writer(table).write_in(&mut tx, items).await.unwrap();
    tx.commit().await.unwrap();
}

fn numbered(ids: std::ops::RangeInclusive<i64>, label: &str) -> Vec<Item> {
    ids.map(|id| Item {
        id,
        label: format!("{label}{id}"),
    })
    .collect()
}

/// Writes, then fails when the chunk holds `fail_on`: the rows it wrote go back with
/// the chunk.
struct FailAfterWriting {
    inner: SqlWriter<Item>,
    fail_on: Option<i64>,
}

impl ItemWriter<Item> for FailAfterWriting {
    async fn write(&mut self, items: &[Item], cx: &mut WriteContext<'_>) -> Result<()> {
        self.inner.write(items, cx).await?;
        match self.fail_on {
            Some(id) if items.iter().any(|i| i.id == id) => {
                Err(Error::msg(format!("failed after writing {id}")))
            }
            _ => Ok(()),
        }
    }
}

fn copy_job(pool: &DbPool, mapped: &Arc<AtomicUsize>, fail_on: Option<i64>) -> Job {
    let (pool, mapped) = (pool.clone(), mapped.clone());
    let step = StepBuilder::new("copy").chunk_size(4).chunk(move |_| {
        let (pool, mapped) = (pool.clone(), mapped.clone());
        async move {
            // Pages of 10 under chunks of 4, over a SELECT with a WHERE of its own.
            let reader =
                KeysetReader::select(pool, "SELECT id, label FROM items WHERE id > 0", "id")
                    .page_size(10)
                    .name("items")
                    .map(
                        move |row: &SqlRow| {
                            mapped.fetch_add(1, Ordering::SeqCst);
                            Ok(Item {
                                id: row.get("id")?,
                                label: row.get(1)?,
                            })
                        },
                        |i: &Item| i.id,
                    );
            let writer = FailAfterWriting {
                inner: writer("copies").upsert(["id"]),
                fail_on,
            };
            Ok(batch::chunk::chunk(
                reader,
                |i: &Item| {
                    Ok::<_, Error>(Some(Item {
                        id: i.id,
                        label: i.label.to_uppercase(),
                    }))
                },
                writer,
            ))
        }
    });
    Job::new("copy", Flow::start(step))
}

async fn copied(pool: &DbPool) -> Vec<String> {
    support::texts(pool, "SELECT label FROM copies ORDER BY id")
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn keyset_paging_restarts_after_the_last_commit(repo: Arc<dyn JobRepository>, pool: DbPool) {
    fill(&pool, "items", &numbered(1..=25, "item-")).await;
    let launcher = JobLauncher::with_repository(repo);
    let mapped = Arc::new(AtomicUsize::new(0));

    let failed = launcher
        .run(copy_job(&pool, &mapped, Some(14)), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let step = &failed.step_executions[0];
    assert_eq!((step.counts.commit, step.counts.rollback), (3, 1));
    assert_eq!(
        step.context.get::<i64>("items.last.key").unwrap(),
        Some(12),
        "the context as of the last commit"
    );
    // Chunks [1-4] [5-8] [9-12] committed; [13-16] wrote, failed and rolled back.
    let expected: Vec<String> = (1..=12).map(|id| format!("ITEM-{id}")).collect();
    assert_eq!(copied(&pool).await, expected);
    assert_eq!(mapped.load(Ordering::SeqCst), 20, "two pages of ten");

    // A row the restart will meet again: the writer's upsert replaces it.
    fill(&pool, "copies", &numbered(20..=20, "stale-")).await;
    mapped.store(0, Ordering::SeqCst);
    let done = launcher
        .run(copy_job(&pool, &mapped, None), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(done.instance.id, failed.instance.id);
    assert_eq!(
        mapped.load(Ordering::SeqCst),
        13,
        "the restart reads from 13 on, nothing before it"
    );
    let step = &done.step_executions[0];
    assert_eq!((step.counts.read, step.counts.write), (13, 13));
    assert_eq!(step.context.get::<i64>("items.last.key").unwrap(), Some(25));
    let expected: Vec<String> = (1..=25).map(|id| format!("ITEM-{id}")).collect();
    assert_eq!(copied(&pool).await, expected);
}

async fn writer_rows_per_statement_and_upsert(_repo: Arc<dyn JobRepository>, pool: DbPool) {
    // More rows than one statement takes, over several statements in one transaction.
    let many = numbered(1..=2500, "a-");
    let mut tx = pool.begin().await.unwrap();
    writer("items")
        .rows_per_statement(1000)
        .write_in(&mut tx, &many)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        support::int(&pool, "SELECT COUNT(*) FROM items").await,
        2500
    );

    // Upsert: existing keys are updated, new ones inserted.
    let mut tx = pool.begin().await.unwrap();
    writer("items")
        .upsert(["id"])
        .write_in(&mut tx, &numbered(2400..=2600, "b-"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        support::int(&pool, "SELECT COUNT(*) FROM items").await,
        2600
    );
    let labels = support::texts(
        &pool,
        "SELECT label FROM items WHERE id IN (2399, 2400, 2600) ORDER BY id",
    )
    .await;
    assert_eq!(
        labels,
        [
            Some("a-2399".into()),
            Some("b-2400".into()),
            Some("b-2600".into())
        ]
    );

    // A plain insert of an existing key fails, and its transaction writes nothing.
    let mut tx = pool.begin().await.unwrap();
    let err = writer("items")
        .write_in(&mut tx, &numbered(2600..=2601, "c-"))
        .await
        .unwrap_err();
    drop(tx);
    assert!(
        err.report().contains("writing 2 rows into `items`"),
        "{}",
        err.report()
    );
    assert_eq!(
        support::int(&pool, "SELECT COUNT(*) FROM items").await,
        2600
    );

    // Binding fewer values than columns is named before anything is sent.
    let mut tx = pool.begin().await.unwrap();
    let err = SqlWriter::insert("items", ["id", "label"], |i: &Item, row| {
        row.bind(i.id);
    })
    .write_in(&mut tx, &numbered(1..=1, "d-"))
    .await
    .unwrap_err();
    assert!(
        err.report()
            .contains("bound 1 value(s) for a row of 2 column(s)"),
        "{}",
        err.report()
    );
    // Typed, so a caller can match it.
    assert!(
        matches!(
            err.find::<batch::sql::SqlWriterError>(),
            Some(batch::sql::SqlWriterError::BindCount { bound: 1, .. })
        ),
        "{err:?}"
    );
}

/// A row of `items`, built by `sqlx::FromRow` on each database.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ItemRow {
    id: i64,
    label: String,
}

#[derive(Debug, thiserror::Error)]
#[error("item {0} is a multiple of 7")]
struct MultipleOfSeven(i64);

#[derive(Debug, thiserror::Error)]
#[error("the writer failed once at item {0}")]
struct FailedOnce(i64);

/// A writer that fails the first chunk holding `fail_on`, once.
struct FailsOnce<W> {
    inner: W,
    fail_on: i64,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl<W: ItemWriter<ItemRow>> ItemWriter<ItemRow> for FailsOnce<W> {
    async fn write(&mut self, items: &[ItemRow], cx: &mut WriteContext<'_>) -> Result<()> {
        self.inner.write(items, cx).await?;
        if items.iter().any(|i| i.id == self.fail_on) && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(FailedOnce(self.fail_on).into());
        }
        Ok(())
    }
}

/// `query_as` reads `items` into `ItemRow`s, a `CompositeProcessor` chains a
/// validation that skips multiples of 7 (`skip(ValidationFailed)`) and filters
/// multiples of 10 with an upper-casing step, and a `ClassifierWriter` sends even ids
/// to `copies` and odd ones to `odds` through `SqlWriter::mapped`, all in the chunk's
/// transaction. A failure in the third chunk rolls back both writers' rows; the restart
/// reads on after the last committed key, so every kept row is in its table once.
async fn typed_rows_mapped_writes_and_composed_items(repo: Arc<dyn JobRepository>, pool: DbPool) {
    use batch::compose::{
        ClassifierWriter, CompositeProcessor, ValidatingProcessor, ValidationFailed,
    };
    pool.execute("CREATE TABLE odds (id BIGINT NOT NULL PRIMARY KEY, label VARCHAR(50) NOT NULL)")
        .await
        .unwrap();
    fill(&pool, "items", &numbered(1..=30, "item-")).await;
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let make = |pool: DbPool, failed: Arc<std::sync::atomic::AtomicBool>| {
        let step = StepBuilder::new("typed")
            .chunk_size(4)
            .skip(batch::classify::ErrorMatcher::of::<ValidationFailed>())
            .skip_limit(10)
            .chunk(move |_| {
                let (pool, failed) = (pool.clone(), failed.clone());
                async move {
                    let reader = KeysetReader::query_as::<ItemRow>(
                        pool,
                        "SELECT id, label FROM items",
                        "id",
                    )
                    .page_size(5)
                    .name("typed")
                    .key(|r: &ItemRow| r.id);
                    let not_seven = ValidatingProcessor::new(|r: &ItemRow| {
                        if r.id % 7 == 0 {
                            Err(MultipleOfSeven(r.id))
                        } else {
                            Ok(())
                        }
                    });
                    let not_ten = ValidatingProcessor::new(|r: &ItemRow| {
                        if r.id % 10 == 0 {
                            Err(MultipleOfSeven(r.id))
                        } else {
                            Ok(())
                        }
                    })
                    .filter();
                    let upper = |r: &ItemRow| {
                        Ok::<_, Error>(Some(ItemRow {
                            id: r.id,
                            label: r.label.to_uppercase(),
                        }))
                    };
                    let processor = CompositeProcessor::new(not_seven, not_ten).then(upper);
                    let mapped = |table: &str| {
                        SqlWriter::mapped(table)
                            .column("id", |r: &ItemRow| r.id)
                            .column("label", |r: &ItemRow| r.label.clone())
                            .build()
                    };
                    let writer = ClassifierWriter::new(|r: &ItemRow| r.id % 2 == 0)
                        .route(true, mapped("copies"))
                        .route(false, mapped("odds"));
                    let writer = FailsOnce {
                        inner: writer,
                        fail_on: 11,
                        failed,
                    };
                    Ok(batch::chunk::chunk(reader, processor, writer))
                }
            });
        Job::new("typed", Flow::start(step))
    };
    let launcher = JobLauncher::with_repository(repo);
    let first = launcher
        .run(make(pool.clone(), failed.clone()), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(first.status, BatchStatus::Failed);
    let second = launcher
        .run(make(pool.clone(), failed.clone()), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(
        second.status,
        BatchStatus::Completed,
        "{:?}",
        second.exit_status
    );
    let kept = |r: i64| r % 7 != 0 && r % 10 != 0;
    let expected_even: Vec<String> = (1..=30)
        .filter(|r| r % 2 == 0 && kept(*r))
        .map(|r| format!("ITEM-{r}"))
        .collect();
    let expected_odd: Vec<String> = (1..=30)
        .filter(|r| r % 2 == 1 && kept(*r))
        .map(|r| format!("ITEM-{r}"))
        .collect();
    assert_eq!(copied(&pool).await, expected_even);
    let odds: Vec<String> = support::texts(&pool, "SELECT label FROM odds ORDER BY id")
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(odds, expected_odd);
    let s = &second.step_executions[0];
    // The restart reads from item 9 (after the chunk 5..8 that committed): 22 items,
    // 7 of them skipped or filtered in all (14, 21, 28 skipped; 10, 20, 30 filtered).
    assert_eq!(
        (s.counts.read, s.counts.process_skip, s.counts.filter),
        (22, 3, 3),
        "{:?}",
        s.counts
    );
}

/// A pretend partner for `DurableCalls`: notes each successful call with its
/// idempotency key, how many calls were in flight at most, and fails item `fail_on`
/// once the others of its group have started; with `fail_on` set, the other calls end
/// only after that failure, so they are in flight when it happens.
#[derive(Default)]
struct Partner {
    succeeded: std::sync::Mutex<Vec<(i64, String)>>,
    started: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    fail_on: Option<(i64, usize)>,
    failed: std::sync::atomic::AtomicBool,
}

/// The call `DurableCalls` makes, shared with the test that inspects it.
struct Calls(Arc<Partner>);

impl batch::calls::ItemCall<i64> for Calls {
    fn key(&self, item: &i64) -> String {
        format!("order-{item}")
    }

    async fn call(&self, item: &i64, idempotency_key: &str) -> Result<()> {
        let partner = &*self.0;
        partner.started.fetch_add(1, Ordering::SeqCst);
        let now = partner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        partner.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Yielding lets the writer's other calls run: all of a group start before
        // any of them ends.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let outcome = match partner.fail_on {
            Some((fail, group)) if fail == *item => {
                while partner.started.load(Ordering::SeqCst) < group {
                    tokio::task::yield_now().await;
                }
                partner.failed.store(true, Ordering::SeqCst);
                Err(Error::msg(format!("the partner is unavailable for {item}")))
            }
            Some(_) => {
                while !partner.failed.load(Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                }
                Ok(())
            }
            None => Ok(()),
        };
        if outcome.is_ok() {
            partner
                .succeeded
                .lock()
                .unwrap()
                .push((*item, idempotency_key.to_owned()));
        }
        partner.in_flight.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

fn durable_job(partner: &Arc<Partner>, items: i64, chunk: u64, concurrency: usize) -> Job {
    let partner = partner.clone();
    let step = StepBuilder::new("send").chunk_size(chunk).chunk(move |_| {
        let partner = partner.clone();
        async move {
            Ok(batch::chunk::read_write(
                ListReader::new(1..=items).restartable("orders"),
                batch::calls::DurableCalls::new(Calls(partner)).concurrency(concurrency),
            ))
        }
    });
    Job::new("sync", Flow::start(step))
}

async fn recorded(pool: &DbPool) -> Vec<i64> {
    let mut ids: Vec<i64> = support::texts(
        pool,
        "SELECT ITEM_KEY FROM BATCH_STEP_ITEM_PROGRESS WHERE STEP_NAME = 'send'",
    )
    .await
    .into_iter()
    .map(|k| k.unwrap()["order-".len()..].parse().unwrap())
    .collect();
    ids.sort();
    ids
}

fn sorted_ids(calls: &[(i64, String)]) -> Vec<i64> {
    let mut ids: Vec<i64> = calls.iter().map(|(i, _)| *i).collect();
    ids.sort();
    ids
}

async fn durable_calls_in_flight_record_each_success_once(
    repo: Arc<dyn JobRepository>,
    pool: DbPool,
) {
    let launcher = JobLauncher::with_repository(repo);
    let partner = Arc::new(Partner::default());
    let done = launcher
        .run(durable_job(&partner, 45, 20, 8), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(
        partner.most_in_flight.load(Ordering::SeqCst),
        8,
        "eight calls in flight at once, never more"
    );
    let calls = partner.succeeded.lock().unwrap().clone();
    assert_eq!(
        sorted_ids(&calls),
        (1..=45).collect::<Vec<_>>(),
        "each item called once"
    );
    let instance = done.instance.id;
    for (item, key) in &calls {
        assert_eq!(key, &format!("sync/{instance}/send/order-{item}"));
    }
    assert_eq!(recorded(&pool).await, (1..=45).collect::<Vec<_>>());
    let step = &done.step_executions[0];
    assert_eq!((step.counts.write, step.counts.commit), (45, 3));
}

async fn durable_call_failure_keeps_records_restart_sends_rest(
    repo: Arc<dyn JobRepository>,
    pool: DbPool,
) {
    let launcher = JobLauncher::with_repository(repo);
    // Chunks of 10, four calls in flight: orders 1 to 4 start together; 2 fails
    // while 1, 3 and 4 are in flight. No call starts after the failure.
    let first = Arc::new(Partner {
        fail_on: Some((2, 4)),
        ..Partner::default()
    });
    let failed = launcher
        .run(durable_job(&first, 20, 10, 4), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert!(
        failed.exit_status.description.contains("unavailable for 2"),
        "{:?}",
        failed.exit_status
    );
    assert_eq!(first.started.load(Ordering::SeqCst), 4);
    assert_eq!(sorted_ids(&first.succeeded.lock().unwrap()), vec![1, 3, 4]);
    assert_eq!(
        recorded(&pool).await,
        vec![1, 3, 4],
        "the calls that ended after the failure are recorded"
    );

    let second = Arc::new(Partner::default());
    let done = launcher
        .run(durable_job(&second, 20, 10, 4), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(done.instance.id, failed.instance.id);
    let resent = sorted_ids(&second.succeeded.lock().unwrap());
    let expected: Vec<i64> = std::iter::once(2).chain(5..=20).collect();
    assert_eq!(
        resent, expected,
        "the restart sends only what was not recorded"
    );
    assert_eq!(recorded(&pool).await, (1..=20).collect::<Vec<_>>());
    let instance = done.instance.id;
    let keys = second.succeeded.lock().unwrap().clone();
    assert!(keys.contains(&(2, format!("sync/{instance}/send/order-2"))));
}

/// Many keys at once take several INSERTs of one transaction; a group holding a key
/// recorded before (an attempt that failed after its record) is recorded whole, the
/// old key once.
async fn item_progress_in_groups_keeps_what_was_recorded(
    repo: Arc<dyn JobRepository>,
    pool: DbPool,
) {
    let launcher = JobLauncher::with_repository(repo.clone());
    let instance = launcher
        .run(
            durable_job(&Arc::new(Partner::default()), 3, 10, 1),
            JobParameters::new(),
        )
        .await
        .unwrap()
        .instance
        .id;
    let many: Vec<String> = (1000..2200).map(|i| format!("order-{i}")).collect();
    repo.record_items_progress(instance, "send", &many)
        .await
        .unwrap();
    let again: Vec<String> = ["order-2", "order-2200", "order-1500"]
        .map(String::from)
        .to_vec();
    repo.record_items_progress(instance, "send", &again)
        .await
        .unwrap();
    repo.record_items_progress(instance, "send", &[])
        .await
        .unwrap();
    let expected: Vec<i64> = (1..=3).chain(1000..=2200).collect();
    assert_eq!(recorded(&pool).await, expected);
    let mut keys = repo.item_progress(instance, "send").await.unwrap();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), expected.len(), "each key once");
}
