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
}
