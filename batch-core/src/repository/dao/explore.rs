//! The read side (Spring's `JobExplorer`): job names, pages of executions, one
//! execution with everything it holds. Each statement is answered by an index (the
//! primary keys, JOB_INST_UN, and the indexes of each dialect's `MORE_DDL`), and a
//! page costs the same statements whatever the history.

use chrono::NaiveDateTime;

use super::step_execution::STEP_COLUMNS;
use super::{Column, Dialect, SqlJobRepository, corrupt, query, status_of};
use crate::context::ExecutionContext;
use crate::execution::{BatchStatus, ExitStatus, JobExecution, JobInstance};
use crate::repository::error::RepositoryError;
use crate::repository::query::ExecutionQuery;
use crate::repository::statistics::StatusStatistics;

/// The columns [`SqlJobRepository::execution_from_row`] reads, in its order.
const EXECUTION_COLUMNS: &str = "E.JOB_EXECUTION_ID, E.VERSION, E.CREATE_TIME, E.START_TIME, \
     E.END_TIME, E.STATUS, E.EXIT_CODE, E.EXIT_MESSAGE, E.LAST_UPDATED, I.JOB_INSTANCE_ID, \
     I.VERSION, I.JOB_NAME, I.JOB_KEY";

/// `?, ?, ?` for `n` values.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    /// A job execution from a row of [`EXECUTION_COLUMNS`], without its parameters,
    /// contexts and steps.
    fn execution_from_row(row: &DB::Row) -> Result<JobExecution, RepositoryError> {
        let id: i64 = DB::get(row, 0).map_err(corrupt("job execution"))?;
        let what = format!("job execution {id}");
        let text = |i| DB::get::<Option<String>>(row, i).map_err(corrupt(&what));
        let time = |i| DB::get::<Option<NaiveDateTime>>(row, i).map_err(corrupt(&what));
        let version = |i| {
            DB::get::<Option<i64>>(row, i)
                .map_err(corrupt(&what))
                .map(Option::unwrap_or_default)
        };
        Ok(JobExecution {
            id,
            version: version(1)?,
            instance: JobInstance {
                id: DB::get(row, 9).map_err(corrupt(&what))?,
                version: version(10)?,
                job_name: text(11)?.unwrap_or_default(),
                job_key: text(12)?.unwrap_or_default(),
            },
            parameters: Default::default(),
            create_time: DB::get(row, 2).map_err(corrupt(&what))?,
            start_time: time(3)?,
            end_time: time(4)?,
            status: status_of(text(5)?, &what)?,
            exit_status: ExitStatus {
                code: text(6)?.unwrap_or_default(),
                description: text(7)?.unwrap_or_default(),
            },
            last_updated: time(8)?,
            context: ExecutionContext::new(),
            step_executions: Vec::new(),
            failures: Vec::new(),
        })
    }

    pub(super) async fn job_names(&self) -> Result<Vec<String>, RepositoryError> {
        let q = query::<DB>("SELECT DISTINCT JOB_NAME FROM BATCH_JOB_INSTANCE ORDER BY JOB_NAME");
        let rows = DB::fetch_all(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db("reading the job names"))?;
        rows.iter()
            .map(|r| DB::get::<String>(r, 0).map_err(corrupt("job instance")))
            .collect()
    }

    pub(super) async fn find_job_executions(
        &self,
        filter: &ExecutionQuery,
    ) -> Result<Vec<JobExecution>, RepositoryError> {
        let mut sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM BATCH_JOB_EXECUTION E \
             JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID WHERE 1 = 1"
        );
        if filter.job_name.is_some() {
            sql.push_str(" AND I.JOB_NAME = ?");
        }
        if filter.instance_id.is_some() {
            sql.push_str(" AND E.JOB_INSTANCE_ID = ?");
        }
        if !filter.statuses.is_empty() {
            sql.push_str(&format!(
                " AND E.STATUS IN ({})",
                placeholders(filter.statuses.len())
            ));
        }
        if filter.created_from.is_some() {
            sql.push_str(" AND E.CREATE_TIME >= ?");
        }
        if filter.created_until.is_some() {
            sql.push_str(" AND E.CREATE_TIME < ?");
        }
        if filter.before_id.is_some() {
            sql.push_str(" AND E.JOB_EXECUTION_ID < ?");
        }
        if filter.parameter.is_some() {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM BATCH_JOB_EXECUTION_PARAMS P \
                 WHERE P.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID \
                 AND P.PARAMETER_NAME = ? AND P.PARAMETER_VALUE = ?)",
            );
        }
        sql.push_str(&format!(
            " ORDER BY E.JOB_EXECUTION_ID DESC LIMIT {}",
            filter.limit
        ));
        let mut q = query::<DB>(sql);
        if let Some(job) = &filter.job_name {
            q = q.bind(job.clone());
        }
        if let Some(instance) = filter.instance_id {
            q = q.bind(instance);
        }
        for status in &filter.statuses {
            q = q.bind(status.as_str().to_owned());
        }
        if let Some(t) = filter.created_from {
            q = q.bind(t);
        }
        if let Some(t) = filter.created_until {
            q = q.bind(t);
        }
        if let Some(id) = filter.before_id {
            q = q.bind(id);
        }
        if let Some((name, value)) = &filter.parameter {
            q = q.bind(name.clone()).bind(value.clone());
        }
        let rows = DB::fetch_all(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db("reading job executions"))?;
        rows.iter().map(Self::execution_from_row).collect()
    }

    pub(super) async fn job_execution(
        &self,
        execution_id: i64,
    ) -> Result<Option<JobExecution>, RepositoryError> {
        let mut conn = self.connection().await?;
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM BATCH_JOB_EXECUTION E \
             JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID \
             WHERE E.JOB_EXECUTION_ID = ?"
        );
        let row = DB::fetch_optional(&mut conn, query::<DB>(sql).bind(execution_id))
            .await
            .map_err(RepositoryError::db(format!(
                "reading job execution {execution_id}"
            )))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut execution = Self::execution_from_row(&row)?;
        execution.parameters = Self::read_params(&mut conn, execution_id).await?;
        execution.context = Self::read_context(&mut conn, execution_id).await?;
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM BATCH_STEP_EXECUTION S \
             LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
             WHERE S.JOB_EXECUTION_ID = ? ORDER BY S.STEP_EXECUTION_ID"
        );
        execution.step_executions = DB::fetch_all(&mut conn, query::<DB>(sql).bind(execution_id))
            .await
            .map_err(RepositoryError::db("reading step executions"))?
            .iter()
            .map(Self::step_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(execution))
    }

    pub(super) async fn job_execution_status(
        &self,
        execution_id: i64,
    ) -> Result<Option<(BatchStatus, i64)>, RepositoryError> {
        let q = query::<DB>(
            "SELECT STATUS, VERSION FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?",
        )
        .bind(execution_id);
        let row = DB::fetch_optional(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the status of job execution {execution_id}"
            )))?;
        let what = format!("job execution {execution_id}");
        row.map(|r| {
            Ok((
                status_of(DB::get(&r, 0).map_err(corrupt(&what))?, &what)?,
                DB::get::<Option<i64>>(&r, 1)
                    .map_err(corrupt(&what))?
                    .unwrap_or_default(),
            ))
        })
        .transpose()
    }

    pub(super) async fn execution_statistics(
        &self,
    ) -> Result<Vec<StatusStatistics>, RepositoryError> {
        let sql = format!(
            "SELECT I.JOB_NAME, E.STATUS, COUNT(*), \
             COUNT(CASE WHEN E.START_TIME IS NOT NULL AND E.END_TIME IS NOT NULL THEN 1 END), \
             {} FROM BATCH_JOB_EXECUTION E \
             JOIN BATCH_JOB_INSTANCE I ON I.JOB_INSTANCE_ID = E.JOB_INSTANCE_ID \
             GROUP BY I.JOB_NAME, E.STATUS ORDER BY I.JOB_NAME, E.STATUS",
            DB::sum_of_millis("E.START_TIME", "E.END_TIME")
        );
        let rows = DB::fetch_all(&mut *self.connection().await?, query::<DB>(sql))
            .await
            .map_err(RepositoryError::db("adding up the job executions"))?;
        rows.iter()
            .map(|row| {
                let what = "job execution statistics";
                let job_name: String = DB::get(row, 0).map_err(corrupt(what))?;
                let count = |i| {
                    DB::get::<i64>(row, i)
                        .map_err(corrupt(what))
                        .map(|n| u64::try_from(n).unwrap_or_default())
                };
                Ok(StatusStatistics {
                    status: status_of(DB::get(row, 1).map_err(corrupt(what))?, what)?,
                    executions: count(2)?,
                    timed: count(3)?,
                    total_millis: DB::get::<Option<i64>>(row, 4)
                        .map_err(corrupt(what))?
                        .unwrap_or_default(),
                    job_name,
                })
            })
            .collect()
    }
}
