//! Statements on BATCH_STEP_EXECUTION, and its rows as [`StepExecution`]s.

use chrono::NaiveDateTime;
use sqlx::query::Query;

use super::{Column, Dialect, SqlJobRepository, corrupt, query, status_of};
use crate::context::ExecutionContext;
use crate::execution::{ExitStatus, JobInstance, StepCounts, StepExecution, now};
use crate::repository::contract::exit_message;
use crate::repository::error::RepositoryError;

/// The update of a step's row at each commit, under its optimistic lock.
macro_rules! step_update {
    () => {
        "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?, END_TIME = ?, STATUS = ?, \
         COMMIT_COUNT = ?, READ_COUNT = ?, FILTER_COUNT = ?, WRITE_COUNT = ?, \
         READ_SKIP_COUNT = ?, WRITE_SKIP_COUNT = ?, PROCESS_SKIP_COUNT = ?, ROLLBACK_COUNT = ?, \
         EXIT_CODE = ?, EXIT_MESSAGE = ?, VERSION = ?, LAST_UPDATED = ? \
         WHERE STEP_EXECUTION_ID = ? AND VERSION = ?"
    };
}

const STEP_UPDATE: &str = step_update!();

/// [`STEP_UPDATE`], returning the STATUS of the step's job execution.
const STEP_UPDATE_RETURNING_JOB_STATUS: &str = concat!(
    step_update!(),
    " RETURNING (SELECT STATUS FROM BATCH_JOB_EXECUTION WHERE JOB_EXECUTION_ID = ?)"
);

pub(super) const STEP_COLUMNS: &str = "S.STEP_EXECUTION_ID, S.VERSION, S.STEP_NAME, S.JOB_EXECUTION_ID, S.CREATE_TIME, \
    S.START_TIME, S.END_TIME, S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, S.FILTER_COUNT, S.WRITE_COUNT, \
    S.READ_SKIP_COUNT, S.WRITE_SKIP_COUNT, S.PROCESS_SKIP_COUNT, S.ROLLBACK_COUNT, S.EXIT_CODE, \
    S.EXIT_MESSAGE, S.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT";

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) fn step_from_row(row: &DB::Row) -> Result<StepExecution, RepositoryError> {
        let id: i64 = DB::get(row, 0).map_err(corrupt("step execution"))?;
        let what = format!("step execution {id}");
        let w = what.as_str();
        let get_i64 = |i| DB::get::<Option<i64>>(row, i).map_err(corrupt(w));
        let count = |i| Ok::<_, RepositoryError>(get_i64(i)?.unwrap_or(0).max(0) as u64);
        let text = |i| DB::get::<Option<String>>(row, i).map_err(corrupt(w));
        let time = |i| DB::get::<Option<NaiveDateTime>>(row, i).map_err(corrupt(w));
        let context = match text(19)? {
            Some(short) => ExecutionContext::from_columns(w, &short, text(20)?.as_deref())?,
            None => ExecutionContext::new(),
        };
        Ok(StepExecution {
            id,
            version: get_i64(1)?.unwrap_or(0),
            step_name: text(2)?.unwrap_or_default(),
            job_execution_id: get_i64(3)?.unwrap_or(0),
            create_time: DB::get(row, 4).map_err(corrupt(w))?,
            start_time: time(5)?,
            end_time: time(6)?,
            status: status_of(text(7)?, w)?,
            counts: StepCounts {
                commit: count(8)?,
                read: count(9)?,
                filter: count(10)?,
                write: count(11)?,
                read_skip: count(12)?,
                write_skip: count(13)?,
                process_skip: count(14)?,
                rollback: count(15)?,
            },
            exit_status: ExitStatus {
                code: text(16)?.unwrap_or_default(),
                description: text(17)?.unwrap_or_default(),
            },
            last_updated: time(18)?,
            context,
            failures: Vec::new(),
        })
    }

    /// Binds what a step execution's row says of its state, in this order: START_TIME,
    /// END_TIME, STATUS, the eight counters (COMMIT, READ, FILTER, WRITE, READ_SKIP,
    /// WRITE_SKIP, PROCESS_SKIP, ROLLBACK), EXIT_CODE, EXIT_MESSAGE.
    pub(super) fn bind_step_state<'q>(
        q: Query<'q, DB, DB::Arguments>,
        step: &StepExecution,
    ) -> Query<'q, DB, DB::Arguments> {
        let c = &step.counts;
        let counts = [
            c.commit,
            c.read,
            c.filter,
            c.write,
            c.read_skip,
            c.write_skip,
            c.process_skip,
            c.rollback,
        ];
        let q = q
            .bind(step.start_time)
            .bind(step.end_time)
            .bind(step.status.as_str().to_owned());
        counts
            .into_iter()
            .fold(q, |q, n| q.bind(n as i64))
            .bind(step.exit_status.code.clone())
            .bind(exit_message(&step.exit_status.description))
    }

    pub(super) async fn update_step_row(
        conn: &mut DB::Connection,
        step: &mut StepExecution,
    ) -> Result<(), RepositoryError> {
        let last_updated = now();
        let q = Self::bind_step_update(query::<DB>(STEP_UPDATE), step, last_updated);
        let done = DB::execute(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "updating step execution {}",
                step.id
            )))?;
        Self::step_row_updated(step, done > 0, last_updated)
    }

    /// [`update_step_row`](Self::update_step_row), returning the STATUS of the step's
    /// job execution from the same statement (`UPDATE … RETURNING`, on the dialects
    /// that have it): `Some(None)` when the row was updated but the status is NULL.
    pub(super) async fn update_step_row_returning_job_status(
        conn: &mut DB::Connection,
        step: &mut StepExecution,
    ) -> Result<Option<String>, RepositoryError> {
        let last_updated = now();
        let q = Self::bind_step_update(
            query::<DB>(STEP_UPDATE_RETURNING_JOB_STATUS),
            step,
            last_updated,
        )
        .bind(step.job_execution_id);
        let row = DB::fetch_optional(conn, q)
            .await
            .map_err(RepositoryError::db(format!(
                "updating step execution {}",
                step.id
            )))?;
        let status = match &row {
            Some(r) => DB::get::<Option<String>>(r, 0)
                .map_err(corrupt(&format!("job execution {}", step.job_execution_id)))?,
            None => None,
        };
        Self::step_row_updated(step, row.is_some(), last_updated)?;
        Ok(status)
    }

    fn bind_step_update<'q>(
        q: Query<'q, DB, DB::Arguments>,
        step: &StepExecution,
        last_updated: NaiveDateTime,
    ) -> Query<'q, DB, DB::Arguments> {
        Self::bind_step_state(q, step)
            .bind(step.version + 1)
            .bind(last_updated)
            .bind(step.id)
            .bind(step.version)
    }

    /// Checks the optimistic lock of an update of the step's row and, when it held,
    /// brings the execution in line with the row.
    fn step_row_updated(
        step: &mut StepExecution,
        updated: bool,
        last_updated: NaiveDateTime,
    ) -> Result<(), RepositoryError> {
        if !updated {
            return Err(RepositoryError::OptimisticLock {
                what: format!("step execution {} ({})", step.id, step.step_name),
                expected: step.version,
            });
        }
        step.version += 1;
        step.last_updated = Some(last_updated);
        Ok(())
    }

    pub(super) async fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> Result<(), RepositoryError> {
        let mut tx = DB::begin(&self.pool).await.map_err(RepositoryError::db(
            "opening a transaction for a new step execution",
        ))?;
        let id = Self::next_id(&mut tx, "BATCH_STEP_EXECUTION_SEQ").await?;
        let q = query::<DB>(
            "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, \
             START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, \
             READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, EXIT_CODE, \
             EXIT_MESSAGE, LAST_UPDATED, CREATE_TIME) \
             VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(step.step_name.clone())
        .bind(step.job_execution_id);
        let q = Self::bind_step_state(q, step)
            .bind(now())
            .bind(step.create_time);
        DB::execute(&mut tx, q)
            .await
            .map_err(RepositoryError::db(format!(
                "creating the execution of step `{}`",
                step.step_name
            )))?;
        Self::write_context(&mut tx, true, id, &step.context, true).await?;
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing a new step execution"))?;
        step.id = id;
        step.version = 0;
        step.context.clear_dirty();
        Ok(())
    }

    pub(super) async fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> Result<(), RepositoryError> {
        Self::update_step_row(&mut *self.connection().await?, step).await
    }

    pub(super) async fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> Result<Option<StepExecution>, RepositoryError> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM BATCH_JOB_EXECUTION J \
             JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
             LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
             WHERE J.JOB_INSTANCE_ID = ? AND S.STEP_NAME = ? \
             ORDER BY S.CREATE_TIME DESC, S.STEP_EXECUTION_ID DESC LIMIT 1"
        );
        let q = query::<DB>(sql)
            .bind(instance.id)
            .bind(step_name.to_owned());
        let row = DB::fetch_optional(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(format!(
                "finding the last execution of step `{step_name}`"
            )))?;
        row.as_ref().map(Self::step_from_row).transpose()
    }

    pub(super) async fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> Result<u64, RepositoryError> {
        let q = query::<DB>(
            "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION J \
             JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
             WHERE J.JOB_INSTANCE_ID = ? AND S.STEP_NAME = ?",
        )
        .bind(instance.id)
        .bind(step_name.to_owned());
        let what = format!("counting the executions of step `{step_name}`");
        let rows = DB::fetch_all(&mut *self.connection().await?, q)
            .await
            .map_err(RepositoryError::db(what.clone()))?;
        let n: i64 = match rows.first() {
            Some(row) => DB::get(row, 0).map_err(corrupt(&what))?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }
}
