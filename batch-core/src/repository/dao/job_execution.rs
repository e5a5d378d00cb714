//! Statements on BATCH_JOB_INSTANCE, BATCH_JOB_EXECUTION and its parameters.

use chrono::NaiveDateTime;

use super::step_execution::STEP_COLUMNS;
use super::{Column, Dialect, SqlJobRepository, corrupt, query, status_of};
use crate::context::ExecutionContext;
use crate::execution::{ExitStatus, JobExecution, JobInstance, now};
use crate::params::JobParameters;
use crate::repository::contract::{REMOTE_OWNER_PREFIX, exit_message};
use crate::repository::error::RepositoryError;

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn read_params(
        conn: &mut DB::Connection,
        execution_id: i64,
    ) -> Result<JobParameters, RepositoryError> {
        let sql = format!(
            "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING \
             FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?{}",
            DB::PARAMETER_ORDER
        );
        let q = query::<DB>(sql).bind(execution_id);
        let rows = DB::fetch_all(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the parameters of job execution {execution_id}"
            )))?;
        let what = format!("parameters of job execution {execution_id}");
        let mut params = JobParameters::new();
        for row in rows {
            let text = |i| DB::get::<Option<String>>(&row, i).map_err(corrupt(&what));
            let name = text(0)?.unwrap_or_default();
            let ty = text(1)?.unwrap_or_default();
            let identifying = text(3)?.as_deref() == Some("Y");
            let (name, p) =
                JobParameters::from_stored(&name, &ty, text(2)?.as_deref(), identifying)?;
            params.insert(name, p);
        }
        Ok(params)
    }

    pub(super) async fn read_job_executions(
        &self,
        instance: &JobInstance,
    ) -> Result<Vec<JobExecution>, RepositoryError> {
        let mut conn = self.connection().await?;
        let q = query::<DB>(
            "SELECT E.JOB_EXECUTION_ID, E.VERSION, E.CREATE_TIME, E.START_TIME, E.END_TIME, E.STATUS, \
             E.EXIT_CODE, E.EXIT_MESSAGE, E.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT \
             FROM BATCH_JOB_EXECUTION E \
             LEFT JOIN BATCH_JOB_EXECUTION_CONTEXT C ON C.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID \
             WHERE E.JOB_INSTANCE_ID = ? ORDER BY E.JOB_EXECUTION_ID DESC",
        )
        .bind(instance.id);
        let rows = DB::fetch_all(&mut conn, q)
            .await
            .map_err(RepositoryError::db("reading job executions"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = DB::get(&row, 0).map_err(corrupt("job execution"))?;
            let what = format!("job execution {id}");
            let text = |i| DB::get::<Option<String>>(&row, i).map_err(corrupt(&what));
            let time = |i| DB::get::<Option<NaiveDateTime>>(&row, i).map_err(corrupt(&what));
            let context = match text(9)? {
                Some(s) => ExecutionContext::from_columns(&what, &s, text(10)?.as_deref())?,
                None => ExecutionContext::new(),
            };
            let parameters = Self::read_params(&mut conn, id).await?;
            let sql = format!(
                "SELECT {STEP_COLUMNS} FROM BATCH_STEP_EXECUTION S \
                 LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
                 WHERE S.JOB_EXECUTION_ID = ? ORDER BY S.STEP_EXECUTION_ID"
            );
            let q = query::<DB>(sql).bind(id);
            let steps = DB::fetch_all(&mut conn, q)
                .await
                .map_err(RepositoryError::db("reading step executions"))?
                .iter()
                .map(Self::step_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            out.push(JobExecution {
                id,
                version: DB::get::<Option<i64>>(&row, 1)
                    .map_err(corrupt(&what))?
                    .unwrap_or(0),
                instance: instance.clone(),
                parameters,
                create_time: DB::get(&row, 2).map_err(corrupt(&what))?,
                start_time: time(3)?,
                end_time: time(4)?,
                status: status_of(text(5)?, &what)?,
                exit_status: ExitStatus {
                    code: text(6)?.unwrap_or_default(),
                    description: text(7)?.unwrap_or_default(),
                },
                last_updated: time(8)?,
                context,
                step_executions: steps,
                failures: Vec::new(),
            });
        }
        Ok(out)
    }

    pub(super) async fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> Result<(), RepositoryError> {
        let last_updated = now();
        let q = query::<DB>(
            "UPDATE BATCH_JOB_EXECUTION SET START_TIME = ?, END_TIME = ?, STATUS = ?, EXIT_CODE = ?, \
             EXIT_MESSAGE = ?, VERSION = ?, CREATE_TIME = ?, LAST_UPDATED = ? \
             WHERE JOB_EXECUTION_ID = ? AND VERSION = ?",
        )
        .bind(execution.start_time)
        .bind(execution.end_time)
        .bind(execution.status.as_str().to_owned())
        .bind(execution.exit_status.code.clone())
        .bind(exit_message(&execution.exit_status.description))
        .bind(execution.version + 1)
        .bind(execution.create_time)
        .bind(last_updated)
        .bind(execution.id)
        .bind(execution.version);
        let done = DB::execute(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "updating job execution {}",
                execution.id
            )))?;
        if done == 0 {
            return Err(RepositoryError::OptimisticLock {
                what: format!("job execution {}", execution.id),
                expected: execution.version,
            });
        }
        execution.version += 1;
        execution.last_updated = Some(last_updated);
        Ok(())
    }

    pub(super) async fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> Result<Option<JobInstance>, RepositoryError> {
        let key = parameters.job_key();
        let q = query::<DB>(
            "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ? AND JOB_KEY = ?",
        )
        .bind(job_name.to_owned())
        .bind(key.clone());
        let row = DB::fetch_optional(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db("looking up the job instance"))?;
        row.map(|r| {
            Ok(JobInstance {
                id: DB::get(&r, 0).map_err(corrupt("job instance"))?,
                version: DB::get::<Option<i64>>(&r, 1)
                    .map_err(corrupt("job instance"))?
                    .unwrap_or(0),
                job_name: job_name.to_owned(),
                job_key: key,
            })
        })
        .transpose()
    }

    pub(super) async fn heartbeat(&self, execution_id: i64) -> Result<(), RepositoryError> {
        // The running steps' LAST_UPDATED too: a step whose execution was ended by hand
        // is judged by its own lease (see `rules`). Not a remote partition's: its
        // worker's heartbeat is its lease, and the manager's must not keep a dead
        // worker's partition looking alive. VERSION stays: a heartbeat is not a change
        // an optimistic lock should see.
        let at = now();
        let job = query::<DB>(
            "UPDATE BATCH_JOB_EXECUTION SET LAST_UPDATED = ? WHERE JOB_EXECUTION_ID = ?",
        )
        .bind(at)
        .bind(execution_id);
        let steps = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET LAST_UPDATED = ? \
             WHERE JOB_EXECUTION_ID = ? AND STATUS IN ('STARTING', 'STARTED', 'STOPPING') \
             AND (EXIT_MESSAGE IS NULL OR EXIT_MESSAGE NOT LIKE ?)",
        )
        .bind(at)
        .bind(execution_id)
        .bind(format!("{REMOTE_OWNER_PREFIX}%"));
        let mut conn = self.connection().await?;
        for q in [job, steps] {
            DB::execute(&mut *conn, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "refreshing the heartbeat of job execution {execution_id}"
                )))?;
        }
        Ok(())
    }
}
