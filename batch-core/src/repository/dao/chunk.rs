//! The chunk transaction: begun, committed with the step execution, rolled back.

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository, status_of};
use crate::execution::{BatchStatus, StepExecution};
use crate::repository::DbKind;
use crate::repository::contract::status_for_stop_check;
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
        self.commit_step(tx, step, false).await.map(drop)
    }

    /// Commits the chunk and tells its job execution's status. Where the dialect has
    /// `UPDATE … RETURNING` (SQLite, PostgreSQL), the update of the step's row returns
    /// it, read in the chunk's transaction: no statement more than the commit needs.
    /// MariaDB reads it after the commit.
    pub(super) async fn commit_chunk_and_read_status<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> Result<Option<BatchStatus>, RepositoryError> {
        let read = if DB::KIND == DbKind::MySql {
            self.commit_step(tx, step, false).await?;
            self.job_execution_status(step.job_execution_id)
                .await
                .map(|found| found.map(|(s, _)| s))
        } else {
            let status = self.commit_step(tx, step, true).await?;
            status_of(status, &format!("job execution {}", step.job_execution_id)).map(Some)
        };
        Ok(status_for_stop_check(read))
    }

    /// Saves the step (and its context when dirty) in the chunk's transaction and
    /// commits; with `read_status`, the step's update returns its job's STATUS.
    async fn commit_step(
        &self,
        tx: ChunkTx,
        step: &mut StepExecution,
        read_status: bool,
    ) -> Result<Option<String>, RepositoryError> {
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
        let status = if read_status {
            Self::update_step_row_returning_job_status(&mut tx, step).await?
        } else {
            Self::update_step_row(&mut tx, step).await?;
            None
        };
        if step.context.is_dirty() {
            Self::write_context(&mut tx, true, step.id, &step.context, false).await?;
        }
        tx.commit().await.map_err(RepositoryError::db(format!(
            "committing a chunk of step `{}`",
            step.step_name
        )))?;
        step.context.clear_dirty();
        Ok(status)
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
