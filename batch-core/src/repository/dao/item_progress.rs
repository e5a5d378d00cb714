//! Statements on BATCH_STEP_ITEM_PROGRESS (durable per-item progress; not a Spring
//! Batch table).

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository, corrupt, query};
use crate::execution::now;
use crate::repository::error::RepositoryError;

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
    ) -> Result<Vec<String>, RepositoryError> {
        let q = query::<DB>(
            "SELECT ITEM_KEY FROM BATCH_STEP_ITEM_PROGRESS WHERE JOB_INSTANCE_ID = ? AND STEP_NAME = ?",
        )
        .bind(instance_id)
        .bind(step_name.to_owned());
        let rows = DB::fetch_all(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the progress of step `{step_name}`"
            )))?;
        rows.iter()
            .map(|r| DB::get::<String>(r, 0).map_err(corrupt("BATCH_STEP_ITEM_PROGRESS")))
            .collect()
    }

    pub(super) async fn record_item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_key: &'a str,
    ) -> Result<(), RepositoryError> {
        let q = query::<DB>(
            "INSERT INTO BATCH_STEP_ITEM_PROGRESS (JOB_INSTANCE_ID, STEP_NAME, ITEM_KEY, CREATE_TIME) VALUES (?, ?, ?, ?)",
        )
        .bind(instance_id)
        .bind(step_name.to_owned())
        .bind(item_key.to_owned())
        .bind(now());
        match DB::execute(&mut *self.connection().await?, q).await {
            Ok(_) => Ok(()),
            // Recorded already (by an attempt that then failed): done is done.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
            Err(e) => Err(RepositoryError::db(format!(
                "recording item `{item_key}` of step `{step_name}` as done"
            ))(e)),
        }
    }

    pub(super) async fn record_items_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_keys: &'a [String],
    ) -> Result<(), RepositoryError> {
        if item_keys.is_empty() {
            return Ok(());
        }
        let failed = || {
            RepositoryError::db(format!(
                "recording {} items of step `{step_name}` as done",
                item_keys.len()
            ))
        };
        let created = now();
        let mut tx = DB::begin(&self.pool).await.map_err(failed())?;
        for group in item_keys.chunks(ROWS_PER_INSERT) {
            let rows = vec!["(?, ?, ?, ?)"; group.len()].join(", ");
            let mut q = query::<DB>(format!(
                "INSERT INTO BATCH_STEP_ITEM_PROGRESS (JOB_INSTANCE_ID, STEP_NAME, ITEM_KEY, CREATE_TIME) VALUES {rows}"
            ));
            for key in group {
                q = q
                    .bind(instance_id)
                    .bind(step_name.to_owned())
                    .bind(key.clone())
                    .bind(created);
            }
            match DB::execute(&mut tx, q).await {
                Ok(_) => {}
                // Some key was recorded already (by an attempt that then failed); the
                // statement is refused whole and, on PostgreSQL, so is the transaction:
                // the keys go one by one, each ignoring its own duplicate.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    drop(tx);
                    for key in item_keys {
                        self.record_item_progress(instance_id, step_name, key)
                            .await?;
                    }
                    return Ok(());
                }
                Err(e) => return Err(failed()(e)),
            }
        }
        tx.commit().await.map_err(failed())
    }
}

/// Rows per INSERT when many keys are recorded at once: four parameters a row stay
/// far below every database's limit on the parameters of one statement (SQLite's
/// 32,766 is the lowest).
const ROWS_PER_INSERT: usize = 500;
