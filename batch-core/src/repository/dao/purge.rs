//! Retention: deletes ended executions and what hangs off them, in batches, in the
//! order of the foreign keys (step contexts, steps, job context, parameters,
//! executions; then item progress and instances left without executions). Each batch
//! is one transaction of eight statements, whatever its size.

use chrono::NaiveDateTime;

use super::explore::placeholders;
use super::{Column, Dialect, SqlJobRepository, corrupt, query};
use crate::execution::BatchStatus;
use crate::repository::error::RepositoryError;
use crate::repository::retention::{PurgeReport, PurgeRequest};

const RUNNING: &str = "('STARTING', 'STARTED', 'STOPPING')";

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn purge(
        &self,
        request: &PurgeRequest,
    ) -> Result<PurgeReport, RepositoryError> {
        let statuses: Vec<BatchStatus> = if request.statuses.is_empty() {
            [
                BatchStatus::Completed,
                BatchStatus::Failed,
                BatchStatus::Stopped,
                BatchStatus::Abandoned,
                BatchStatus::Unknown,
            ]
            .into()
        } else {
            request
                .statuses
                .iter()
                .copied()
                .filter(|s| request.wants(*s))
                .collect()
        };
        let mut report = PurgeReport::default();
        if statuses.is_empty() {
            return Ok(report);
        }
        let mut select = format!(
            "SELECT E.JOB_EXECUTION_ID, E.JOB_INSTANCE_ID FROM BATCH_JOB_EXECUTION E \
             JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID \
             WHERE E.END_TIME <= ? AND E.STATUS IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION R \
                 WHERE R.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID AND R.STATUS IN {RUNNING})",
            placeholders(statuses.len())
        );
        if request.job_name.is_some() {
            select.push_str(" AND I.JOB_NAME = ?");
        }
        if !request.include_restartable {
            // The instance's last execution failed or stopped: it can restart, and
            // its history is what the restart resumes from.
            select.push_str(
                " AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION L \
                 WHERE L.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID AND L.STATUS IN ('FAILED', 'STOPPED') \
                 AND NOT EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION N \
                     WHERE N.JOB_INSTANCE_ID = L.JOB_INSTANCE_ID AND N.JOB_EXECUTION_ID > L.JOB_EXECUTION_ID))",
            );
        }
        select.push_str(&format!(
            " ORDER BY E.JOB_EXECUTION_ID LIMIT {}",
            request.batch_size.max(1)
        ));
        loop {
            let mut tx = DB::begin(&self.pool)
                .await
                .map_err(RepositoryError::db("opening the purge transaction"))?;
            let mut q = query::<DB>(select.clone()).bind(request.ended_before);
            for s in &statuses {
                q = q.bind(s.as_str().to_owned());
            }
            if let Some(job) = &request.job_name {
                q = q.bind(job.clone());
            }
            let rows = DB::fetch_all(&mut tx, q)
                .await
                .map_err(RepositoryError::db("choosing the executions to purge"))?;
            if rows.is_empty() {
                tx.commit()
                    .await
                    .map_err(RepositoryError::db("committing the purge"))?;
                return Ok(report);
            }
            let mut executions = Vec::with_capacity(rows.len());
            let mut instances = Vec::with_capacity(rows.len());
            for row in &rows {
                executions.push(DB::get::<i64>(row, 0).map_err(corrupt("job execution"))?);
                let instance = DB::get::<i64>(row, 1).map_err(corrupt("job execution"))?;
                if !instances.contains(&instance) {
                    instances.push(instance);
                }
            }
            let e = placeholders(executions.len());
            let i = placeholders(instances.len());
            let by_execution = [
                format!(
                    "DELETE FROM BATCH_STEP_EXECUTION_CONTEXT WHERE STEP_EXECUTION_ID IN \
                     (SELECT STEP_EXECUTION_ID FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN ({e}))"
                ),
                format!("DELETE FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID IN ({e})"),
                format!("DELETE FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID IN ({e})"),
                format!("DELETE FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID IN ({e})"),
                format!("DELETE FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID IN ({e})"),
            ];
            for (n, sql) in by_execution.into_iter().enumerate() {
                let mut q = query::<DB>(sql);
                for id in &executions {
                    q = q.bind(*id);
                }
                let done = DB::execute(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db("purging job executions"))?;
                if n == 4 {
                    report.executions += done;
                }
            }
            let by_instance = [
                format!(
                    "DELETE FROM BATCH_STEP_ITEM_PROGRESS WHERE JOB_INSTANCE_ID IN ({i}) AND NOT EXISTS \
                     (SELECT 1 FROM BATCH_JOB_EXECUTION X WHERE X.JOB_INSTANCE_ID = BATCH_STEP_ITEM_PROGRESS.JOB_INSTANCE_ID)"
                ),
                format!(
                    "DELETE FROM BATCH_JOB_INSTANCE WHERE JOB_INSTANCE_ID IN ({i}) AND NOT EXISTS \
                     (SELECT 1 FROM BATCH_JOB_EXECUTION X WHERE X.JOB_INSTANCE_ID = BATCH_JOB_INSTANCE.JOB_INSTANCE_ID)"
                ),
            ];
            for (n, sql) in by_instance.into_iter().enumerate() {
                let mut q = query::<DB>(sql);
                for id in &instances {
                    q = q.bind(*id);
                }
                let done = DB::execute(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db("purging job instances"))?;
                if n == 1 {
                    report.instances += done;
                }
            }
            tx.commit()
                .await
                .map_err(RepositoryError::db("committing the purge"))?;
        }
    }
}
