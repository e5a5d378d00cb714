//! The launch transaction: find or create the instance, apply the launch rules, mark
//! dead runs FAILED, record the new execution; retried when it meets another launch.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::{Column, Dialect, SqlJobRepository, corrupt, query, status_of};
use crate::context::ExecutionContext;
use crate::execution::{BatchStatus, ExitStatus, JobExecution, JobInstance, now};
use crate::params::JobParameters;
use crate::repository::contract::exit_message;
use crate::repository::error::{LaunchError, RepositoryError};
use crate::repository::owner;
use crate::repository::rules::{ExecutionSummary, StepSummary, check_restartable, died_message};
use crate::repository::timeouts::bounded;

/// Whether a failed launch met another launch and should simply be tried again: the
/// unique constraint on a new instance, a deadlock, a serialization failure.
fn is_contention(error: &LaunchError) -> bool {
    let LaunchError::Repository(RepositoryError::Database { source, .. }) = error else {
        return false;
    };
    source.as_database_error().is_some_and(|e| {
        e.is_unique_violation() || matches!(e.code().as_deref(), Some("40001" | "40P01"))
    })
}

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    /// Marks a dead run and its running steps FAILED.
    pub(super) async fn mark_dead(
        conn: &mut DB::Connection,
        execution_id: i64,
        message: &str,
    ) -> Result<(), RepositoryError> {
        let end = now();
        let message = exit_message(message);
        let job = query::<DB>(
            "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?, \
             END_TIME = ?, LAST_UPDATED = ?, VERSION = VERSION + 1 WHERE JOB_EXECUTION_ID = ?",
        );
        let steps = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?, \
             END_TIME = ?, LAST_UPDATED = ?, VERSION = VERSION + 1 \
             WHERE JOB_EXECUTION_ID = ? AND STATUS IN ('STARTING', 'STARTED', 'STOPPING')",
        );
        for (what, q) in [("job execution", job), ("steps of job execution", steps)] {
            let q = q
                .bind(message.clone())
                .bind(end)
                .bind(end)
                .bind(execution_id);
            DB::execute(conn, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "marking the dead {what} {execution_id} FAILED"
                )))?;
        }
        Ok(())
    }

    /// Marks a running step FAILED whose execution had already ended and whose owner
    /// is dead.
    async fn mark_step_dead(
        conn: &mut DB::Connection,
        step_execution_id: i64,
        message: &str,
    ) -> Result<(), RepositoryError> {
        let end = now();
        let q = query::<DB>(
            "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?, \
             END_TIME = ?, LAST_UPDATED = ?, VERSION = VERSION + 1 WHERE STEP_EXECUTION_ID = ?",
        )
        .bind(exit_message(message))
        .bind(end)
        .bind(end)
        .bind(step_execution_id);
        DB::execute(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "marking the dead step execution {step_execution_id} FAILED"
            )))?;
        Ok(())
    }

    /// The step executions of `execution_id`, as the launch rules need them.
    async fn step_summaries(
        conn: &mut DB::Connection,
        execution_id: i64,
    ) -> Result<Vec<StepSummary>, RepositoryError> {
        let q = query::<DB>(
            "SELECT STEP_EXECUTION_ID, STEP_NAME, STATUS, EXIT_MESSAGE, LAST_UPDATED \
             FROM BATCH_STEP_EXECUTION WHERE JOB_EXECUTION_ID = ? ORDER BY STEP_EXECUTION_ID",
        )
        .bind(execution_id);
        let rows = DB::fetch_all(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "reading the steps of job execution {execution_id}"
            )))?;
        let mut steps = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = DB::get(row, 0).map_err(corrupt("step execution"))?;
            let what = format!("step execution {id}");
            steps.push(StepSummary {
                id,
                name: DB::get(row, 1).map_err(corrupt(&what))?,
                status: status_of(DB::get(row, 2).map_err(corrupt(&what))?, &what)?,
                exit_message: DB::get::<Option<String>>(row, 3)
                    .map_err(corrupt(&what))?
                    .unwrap_or_default(),
                last_updated: DB::get(row, 4).map_err(corrupt(&what))?,
            });
        }
        Ok(steps)
    }

    /// One attempt at a launch, in one transaction; see the module documentation.
    pub(super) async fn launch(
        &self,
        job_name: &str,
        parameters: &JobParameters,
    ) -> Result<JobExecution, LaunchError> {
        let key = parameters.job_key();
        let mut tx = DB::begin(&self.pool)
            .await
            .map_err(RepositoryError::db("opening the launch transaction"))?;
        let find = format!(
            "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ? AND JOB_KEY = ?{}",
            DB::LOCK_ROW
        );
        let found = DB::fetch_optional(
            &mut tx,
            query::<DB>(find)
                .bind(job_name.to_owned())
                .bind(key.clone()),
        )
        .await
        .map_err(RepositoryError::db("looking up the job instance"))?;
        let (instance, context) = match found {
            Some(row) => {
                let instance = JobInstance {
                    id: DB::get(&row, 0).map_err(corrupt("job instance"))?,
                    version: DB::get::<Option<i64>>(&row, 1)
                        .map_err(corrupt("job instance"))?
                        .unwrap_or(0),
                    job_name: job_name.to_owned(),
                    job_key: key.clone(),
                };
                let q = query::<DB>(
                    "SELECT JOB_EXECUTION_ID, STATUS, EXIT_MESSAGE, LAST_UPDATED FROM BATCH_JOB_EXECUTION \
                     WHERE JOB_INSTANCE_ID = ? ORDER BY JOB_EXECUTION_ID DESC",
                )
                .bind(instance.id);
                let rows = DB::fetch_all(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db(
                        "reading the executions of the instance",
                    ))?;
                let mut summaries = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = DB::get(row, 0).map_err(corrupt("job execution"))?;
                    let what = format!("job execution {id}");
                    summaries.push(ExecutionSummary {
                        id,
                        status: status_of(DB::get(row, 1).map_err(corrupt(&what))?, &what)?,
                        exit_message: DB::get::<Option<String>>(row, 2)
                            .map_err(corrupt(&what))?
                            .unwrap_or_default(),
                        last_updated: DB::get(row, 3).map_err(corrupt(&what))?,
                        steps: Vec::new(),
                    });
                }
                // Newest first: the last execution's steps are the ones the rules read.
                if let Some(last) = summaries.first_mut() {
                    last.steps = Self::step_summaries(&mut tx, last.id).await?;
                }
                let dead = check_restartable(&instance, parameters, &summaries, now(), self.lease)?;
                for (id, reason) in dead.executions {
                    Self::mark_dead(&mut tx, id, &died_message(&reason)).await?;
                }
                for (id, reason) in dead.steps {
                    Self::mark_step_dead(&mut tx, id, &died_message(&reason)).await?;
                }
                let context = match summaries.first() {
                    Some(last) => Self::read_context(&mut tx, last.id).await?,
                    None => ExecutionContext::new(),
                };
                (instance, context)
            }
            None => {
                let id = Self::next_id(&mut tx, "BATCH_JOB_SEQ").await?;
                let q = query::<DB>(
                    "INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, JOB_NAME, JOB_KEY, VERSION) VALUES (?, ?, ?, 0)",
                )
                .bind(id)
                .bind(job_name.to_owned())
                .bind(key.clone());
                // Another launch may have inserted it since the SELECT: the unique
                // constraint refuses this one, and the caller tries again.
                DB::execute(&mut tx, q)
                    .await
                    .map_err(RepositoryError::db("creating the job instance"))?;
                let instance = JobInstance {
                    id,
                    version: 0,
                    job_name: job_name.to_owned(),
                    job_key: key,
                };
                (instance, ExecutionContext::new())
            }
        };
        let id = Self::next_id(&mut tx, "BATCH_JOB_EXECUTION_SEQ").await?;
        let created = now();
        // The owner is named from the first commit on, so that a process killed before
        // it writes anything else still leaves an execution a launch can judge.
        let exit = ExitStatus::unknown().with_description(owner::current_owner());
        let q = query::<DB>(
            "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, JOB_INSTANCE_ID, START_TIME, END_TIME, \
             STATUS, EXIT_CODE, EXIT_MESSAGE, VERSION, CREATE_TIME, LAST_UPDATED) \
             VALUES (?, ?, NULL, NULL, ?, ?, ?, 0, ?, ?)",
        )
        .bind(id)
        .bind(instance.id)
        .bind(BatchStatus::Starting.as_str().to_owned())
        .bind(exit.code.clone())
        .bind(exit_message(&exit.description))
        .bind(created)
        .bind(created);
        DB::execute(&mut tx, q)
            .await
            .map_err(RepositoryError::db("creating the job execution"))?;
        for (name, p) in parameters.iter() {
            let q = query::<DB>(
                "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, \
                 PARAMETER_VALUE, IDENTIFYING) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(name.to_owned())
            .bind(p.value.param_type().java_class().to_owned())
            .bind(p.value.to_iso_text())
            .bind(if p.identifying { "Y" } else { "N" }.to_owned());
            DB::execute(&mut tx, q)
                .await
                .map_err(RepositoryError::db(format!(
                    "saving job parameter `{name}`"
                )))?;
        }
        Self::write_context(&mut tx, false, id, &context, true).await?;
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the launch"))?;
        Ok(JobExecution {
            id,
            version: 0,
            instance,
            parameters: parameters.clone(),
            create_time: created,
            start_time: None,
            end_time: None,
            status: BatchStatus::Starting,
            exit_status: exit,
            last_updated: Some(created),
            context,
            step_executions: Vec::new(),
            failures: Vec::new(),
        })
    }

    pub(super) async fn create_job_execution<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> Result<JobExecution, LaunchError> {
        // Checked before any row is written: SQLite would store what the servers
        // refuse, and a lax MySQL would truncate it.
        parameters
            .check_storable()
            .map_err(RepositoryError::InvalidParameters)?;
        let mut attempt = 0u32;
        loop {
            let attempt_once = self.launch(job_name, parameters);
            match bounded(self.statement_timeout, "launching the job", attempt_once).await {
                Err(e) if attempt < 20 && is_contention(&e) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "a concurrent launch got in the way; trying again");
                    // A little jitter keeps retrying launches from meeting again.
                    let jitter = (std::process::id() as u64
                        + now().and_utc().timestamp_subsec_micros() as u64)
                        % 7;
                    tokio::time::sleep(Duration::from_millis(2 * attempt as u64 + jitter)).await;
                }
                outcome => return outcome,
            }
        }
    }
}
