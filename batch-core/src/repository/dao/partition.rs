//! Remote partitions on BATCH_STEP_EXECUTION: a worker's claim, its heartbeat, and
//! what a manager polls.
//!
//! A remote partition is a step execution row like any other (Spring's tables are
//! unchanged); its EXIT_MESSAGE says whose it is, as a job execution's does while it
//! runs: [`AWAITING_WORKER`] while no worker has it, then
//! [`REMOTE_OWNER_PREFIX`] and the worker's owner record. A claim locks the candidate
//! rows with `FOR UPDATE SKIP LOCKED` in one short transaction, so two workers never
//! take one partition and none waits for another's lock; a row whose worker is alive
//! and committing is skipped, not waited for.

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository, corrupt, query, status_of};
use crate::execution::now;
use crate::repository::contract::{
    AWAITING_WORKER, JobRepository, PartitionClaim, REMOTE_OWNER_PREFIX, exit_message,
};
use crate::repository::database::DbKind;
use crate::repository::error::RepositoryError;
use crate::repository::owner;

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn claim_partition(
        &self,
        job_name: &str,
        worker: &str,
    ) -> Result<PartitionClaim, RepositoryError> {
        if DB::KIND == DbKind::Sqlite {
            return Err(self.remote_unsupported());
        }
        let mut tx = DB::begin(self.pool())
            .await
            .map_err(RepositoryError::db("opening the claim transaction"))?;
        // The subquery is read without locks (only the outer table's rows are locked,
        // on both servers), so the running job execution's own updates never wait.
        let candidates = query::<DB>(
            "SELECT S.STEP_EXECUTION_ID, S.JOB_EXECUTION_ID, S.STATUS, S.EXIT_MESSAGE, S.LAST_UPDATED \
             FROM BATCH_STEP_EXECUTION S \
             WHERE S.STATUS IN ('STARTING', 'STARTED') AND S.EXIT_MESSAGE LIKE ? \
             AND S.JOB_EXECUTION_ID IN (SELECT E.JOB_EXECUTION_ID FROM BATCH_JOB_EXECUTION E \
             JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID \
             WHERE I.JOB_NAME = ? AND E.STATUS IN ('STARTING', 'STARTED', 'STOPPING')) \
             ORDER BY S.STEP_EXECUTION_ID FOR UPDATE SKIP LOCKED",
        )
        .bind(format!("{REMOTE_OWNER_PREFIX}%"))
        .bind(job_name.to_owned());
        let rows = DB::fetch_all(&mut tx, candidates)
            .await
            .map_err(RepositoryError::db("looking for a partition to claim"))?;
        let at = now();
        let mut chosen = None;
        for row in &rows {
            let id: i64 = DB::get(row, 0).map_err(corrupt("step execution"))?;
            let what = format!("step execution {id}");
            let job_execution_id: i64 = DB::get(row, 1).map_err(corrupt(&what))?;
            let status = status_of(DB::get(row, 2).map_err(corrupt(&what))?, &what)?;
            let message: String = DB::get::<Option<String>>(row, 3)
                .map_err(corrupt(&what))?
                .unwrap_or_default();
            let last_updated: Option<NaiveDateTime> = DB::get(row, 4).map_err(corrupt(&what))?;
            if status == crate::execution::BatchStatus::Starting && message == AWAITING_WORKER {
                chosen = Some((id, job_execution_id, None));
                break;
            }
            let record = message.strip_prefix(REMOTE_OWNER_PREFIX).unwrap_or("");
            if chosen.is_none()
                && let Some(reason) = owner::dead_owner_reason(record, last_updated, at, self.lease)
            {
                chosen = Some((id, job_execution_id, Some(reason)));
            }
        }
        let claim = match chosen {
            Some((id, job_execution_id, reclaimed_from)) => {
                let q = query::<DB>(
                    "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'STARTED', EXIT_MESSAGE = ?, \
                     LAST_UPDATED = ?, VERSION = VERSION + 1 WHERE STEP_EXECUTION_ID = ?",
                )
                .bind(exit_message(&format!("{REMOTE_OWNER_PREFIX}{worker}")))
                .bind(at)
                .bind(id);
                DB::execute(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db(format!("claiming step execution {id}")))?;
                PartitionClaim::Claimed {
                    step_execution_id: id,
                    job_execution_id,
                    reclaimed_from,
                }
            }
            None => {
                let q = query::<DB>(
                    "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION E \
                     JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID \
                     WHERE I.JOB_NAME = ? AND E.STATUS IN ('STARTING', 'STARTED', 'STOPPING')",
                )
                .bind(job_name.to_owned());
                let row = DB::fetch_optional(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db("counting the running executions"))?;
                let running = match row {
                    Some(row) => DB::get::<i64>(&row, 0).map_err(corrupt("a count"))?,
                    None => 0,
                };
                PartitionClaim::Nothing {
                    running_executions: running.max(0) as u64,
                }
            }
        };
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the claim"))?;
        Ok(claim)
    }

    pub(super) async fn step_heartbeat(
        &self,
        step_execution_id: i64,
    ) -> Result<(), RepositoryError> {
        let q = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET LAST_UPDATED = ? WHERE STEP_EXECUTION_ID = ? AND STATUS = 'STARTED'",
        )
        .bind(now())
        .bind(step_execution_id);
        DB::execute(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "refreshing the heartbeat of step execution {step_execution_id}"
            )))?;
        Ok(())
    }

    pub(super) async fn step_statuses(
        &self,
        job_execution_id: i64,
    ) -> Result<Vec<(i64, crate::execution::BatchStatus)>, RepositoryError> {
        let q = query::<DB>(
            "SELECT STEP_EXECUTION_ID, STATUS FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ? \
             ORDER BY STEP_EXECUTION_ID",
        )
        .bind(job_execution_id);
        let rows = DB::fetch_all(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the step statuses of job execution {job_execution_id}"
            )))?;
        rows.iter()
            .map(|row| {
                let id: i64 = DB::get(row, 0).map_err(corrupt("step execution"))?;
                let what = format!("step execution {id}");
                Ok((
                    id,
                    status_of(DB::get(row, 1).map_err(corrupt(&what))?, &what)?,
                ))
            })
            .collect()
    }
}
