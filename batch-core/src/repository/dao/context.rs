//! Statements on the two `…_EXECUTION_CONTEXT` tables, with the 2500 rule.

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository, corrupt, query};
use crate::context::ExecutionContext;
use crate::execution::{JobExecution, StepExecution};
use crate::repository::error::RepositoryError;

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn write_context(
        conn: &mut DB::Connection,
        table_is_step: bool,
        id: i64,
        ctx: &ExecutionContext,
        insert: bool,
    ) -> Result<(), RepositoryError> {
        let (short, long) = ctx.to_columns();
        let sql = match (table_is_step, insert) {
            (true, true) => {
                "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, STEP_EXECUTION_ID) VALUES (?, ?, ?)"
            }
            (true, false) => {
                "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = ? WHERE STEP_EXECUTION_ID = ?"
            }
            (false, true) => {
                "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, JOB_EXECUTION_ID) VALUES (?, ?, ?)"
            }
            (false, false) => {
                "UPDATE BATCH_JOB_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?, SERIALIZED_CONTEXT = ? WHERE JOB_EXECUTION_ID = ?"
            }
        };
        let owner = if table_is_step { "step" } else { "job" };
        DB::execute(conn, query::<DB>(sql).bind(short).bind(long).bind(id))
            .await
            .map_err(RepositoryError::db(format!(
                "saving the context of {owner} execution {id}"
            )))?;
        Ok(())
    }

    pub(super) async fn read_context(
        conn: &mut DB::Connection,
        execution_id: i64,
    ) -> Result<ExecutionContext, RepositoryError> {
        let q = query::<DB>(
            "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?",
        )
        .bind(execution_id);
        let row = DB::fetch_optional(conn, q)
            .await
            .map_err(RepositoryError::db("reading the job context"))?;
        let what = format!("job execution {execution_id}");
        Ok(match row {
            Some(r) => ExecutionContext::from_columns(
                &what,
                &DB::get::<String>(&r, 0).map_err(corrupt(&what))?,
                DB::get::<Option<String>>(&r, 1)
                    .map_err(corrupt(&what))?
                    .as_deref(),
            )?,
            None => ExecutionContext::new(),
        })
    }

    pub(super) async fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> Result<(), RepositoryError> {
        let mut conn = self.connection().await?;
        Self::write_context(&mut conn, false, execution.id, &execution.context, false).await
    }

    pub(super) async fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> Result<(), RepositoryError> {
        let mut conn = self.connection().await?;
        Self::write_context(&mut conn, true, step.id, &step.context, false).await
    }
}
