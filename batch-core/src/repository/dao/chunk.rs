//! The chunk transaction: begun, committed with the step execution, rolled back.

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository};
use crate::execution::StepExecution;
use crate::repository::database::ChunkTx;
use crate::repository::error::RepositoryError;

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn begin_chunk(&self) -> Result<ChunkTx, RepositoryError> {
        let tx = DB::begin(&self.pool)
            .await
            .map_err(RepositoryError::db("beginning a chunk transaction"))?;
        Ok(DB::wrap_tx(tx))
    }

    pub(super) async fn commit_chunk<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> Result<(), RepositoryError> {
        let mut tx = match DB::unwrap_tx(tx) {
            Ok(Some(tx)) => tx,
            Ok(None) => DB::begin(&self.pool)
                .await
                .map_err(RepositoryError::db("beginning a chunk transaction"))?,
            Err(other) => {
                return Err(RepositoryError::Corrupt {
                    what: format!("the chunk of step `{}`", step.step_name),
                    problem: format!(
                        "its transaction is on another database ({other:?}) than the job repository ({})",
                        DB::KIND
                    ),
                });
            }
        };
        Self::update_step_row(&mut tx, step).await?;
        if step.context.is_dirty() {
            Self::write_context(&mut tx, true, step.id, &step.context, false).await?;
        }
        tx.commit().await.map_err(RepositoryError::db(format!(
            "committing a chunk of step `{}`",
            step.step_name
        )))?;
        step.context.clear_dirty();
        Ok(())
    }

    pub(super) async fn rollback_chunk(&self, tx: ChunkTx) -> Result<(), RepositoryError> {
        match DB::unwrap_tx(tx) {
            Ok(Some(tx)) => tx
                .rollback()
                .await
                .map_err(RepositoryError::db("rolling a chunk back")),
            // Dropping a transaction of another database rolls it back too.
            Ok(None) | Err(_) => Ok(()),
        }
    }
}
