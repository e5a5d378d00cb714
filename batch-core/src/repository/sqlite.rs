//! The job repository in a SQLite file: the embedded default.
//!
//! The file is created with the Spring Batch 5 schema on first use and runs in WAL
//! mode, so readers (a paging reader over a table of the same file) never wait for a
//! chunk's commit. Launches take the write lock (`BEGIN IMMEDIATE`) before they look
//! for running executions, so two processes launching the same instance at once are
//! serialized by the database: one runs, the other sees it running.

use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::{
    BoxFuture, ChunkTx, ExecutionSummary, JobRepository, LaunchError, RepositoryError, TxInner,
    check_restartable, died_message, exit_message,
};
use crate::context::ExecutionContext;
use crate::execution::{
    BatchStatus, ExitStatus, JobExecution, JobInstance, StepCounts, StepExecution, now,
};
use crate::params::JobParameters;

/// The Spring Batch 5.2 SQLite schema (`schema-sqlite.sql`), plus two indexes that keep
/// launch cost independent of history (they change nothing a Java reader sees).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_INSTANCE (
        JOB_INSTANCE_ID INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        VERSION INTEGER,
        JOB_NAME VARCHAR(100) NOT NULL,
        JOB_KEY VARCHAR(32) NOT NULL,
        constraint JOB_INST_UN unique (JOB_NAME, JOB_KEY)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION (
        JOB_EXECUTION_ID INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        VERSION INTEGER,
        JOB_INSTANCE_ID INTEGER NOT NULL,
        CREATE_TIME TIMESTAMP NOT NULL,
        START_TIME TIMESTAMP DEFAULT NULL,
        END_TIME TIMESTAMP DEFAULT NULL,
        STATUS VARCHAR(10),
        EXIT_CODE VARCHAR(100),
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED TIMESTAMP,
        constraint JOB_INST_EXEC_FK foreign key (JOB_INSTANCE_ID)
        references BATCH_JOB_INSTANCE(JOB_INSTANCE_ID)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_PARAMS (
        JOB_EXECUTION_ID INTEGER NOT NULL,
        PARAMETER_NAME VARCHAR(100) NOT NULL,
        PARAMETER_TYPE VARCHAR(100) NOT NULL,
        PARAMETER_VALUE VARCHAR(2500),
        IDENTIFYING CHAR(1) NOT NULL,
        constraint JOB_EXEC_PARAMS_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION (
        STEP_EXECUTION_ID INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        VERSION INTEGER NOT NULL,
        STEP_NAME VARCHAR(100) NOT NULL,
        JOB_EXECUTION_ID INTEGER NOT NULL,
        CREATE_TIME TIMESTAMP NOT NULL,
        START_TIME TIMESTAMP DEFAULT NULL,
        END_TIME TIMESTAMP DEFAULT NULL,
        STATUS VARCHAR(10),
        COMMIT_COUNT INTEGER,
        READ_COUNT INTEGER,
        FILTER_COUNT INTEGER,
        WRITE_COUNT INTEGER,
        READ_SKIP_COUNT INTEGER,
        WRITE_SKIP_COUNT INTEGER,
        PROCESS_SKIP_COUNT INTEGER,
        ROLLBACK_COUNT INTEGER,
        EXIT_CODE VARCHAR(100),
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED TIMESTAMP,
        constraint JOB_EXEC_STEP_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION_CONTEXT (
        STEP_EXECUTION_ID INTEGER NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT CLOB,
        constraint STEP_EXEC_CTX_FK foreign key (STEP_EXECUTION_ID)
        references BATCH_STEP_EXECUTION(STEP_EXECUTION_ID)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_CONTEXT (
        JOB_EXECUTION_ID INTEGER NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT CLOB,
        constraint JOB_EXEC_CTX_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    )",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION_SEQ (ID INTEGER PRIMARY KEY AUTOINCREMENT)",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_SEQ (ID INTEGER PRIMARY KEY AUTOINCREMENT)",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_SEQ (ID INTEGER PRIMARY KEY AUTOINCREMENT)",
    "CREATE INDEX IF NOT EXISTS BATCH_JOB_EXECUTION_INSTANCE_IX ON BATCH_JOB_EXECUTION (JOB_INSTANCE_ID)",
    "CREATE INDEX IF NOT EXISTS BATCH_STEP_EXECUTION_JOB_IX ON BATCH_STEP_EXECUTION (JOB_EXECUTION_ID, STEP_NAME)",
];

/// The columns each table must have, in Spring Batch 5 order.
const COLUMNS: &[(&str, &[&str])] = &[
    (
        "BATCH_JOB_INSTANCE",
        &["JOB_INSTANCE_ID", "VERSION", "JOB_NAME", "JOB_KEY"],
    ),
    (
        "BATCH_JOB_EXECUTION",
        &[
            "JOB_EXECUTION_ID",
            "VERSION",
            "JOB_INSTANCE_ID",
            "CREATE_TIME",
            "START_TIME",
            "END_TIME",
            "STATUS",
            "EXIT_CODE",
            "EXIT_MESSAGE",
            "LAST_UPDATED",
        ],
    ),
    (
        "BATCH_JOB_EXECUTION_PARAMS",
        &[
            "JOB_EXECUTION_ID",
            "PARAMETER_NAME",
            "PARAMETER_TYPE",
            "PARAMETER_VALUE",
            "IDENTIFYING",
        ],
    ),
    (
        "BATCH_STEP_EXECUTION",
        &[
            "STEP_EXECUTION_ID",
            "VERSION",
            "STEP_NAME",
            "JOB_EXECUTION_ID",
            "CREATE_TIME",
            "START_TIME",
            "END_TIME",
            "STATUS",
            "COMMIT_COUNT",
            "READ_COUNT",
            "FILTER_COUNT",
            "WRITE_COUNT",
            "READ_SKIP_COUNT",
            "WRITE_SKIP_COUNT",
            "PROCESS_SKIP_COUNT",
            "ROLLBACK_COUNT",
            "EXIT_CODE",
            "EXIT_MESSAGE",
            "LAST_UPDATED",
        ],
    ),
    (
        "BATCH_STEP_EXECUTION_CONTEXT",
        &["STEP_EXECUTION_ID", "SHORT_CONTEXT", "SERIALIZED_CONTEXT"],
    ),
    (
        "BATCH_JOB_EXECUTION_CONTEXT",
        &["JOB_EXECUTION_ID", "SHORT_CONTEXT", "SERIALIZED_CONTEXT"],
    ),
    ("BATCH_STEP_EXECUTION_SEQ", &["ID"]),
    ("BATCH_JOB_EXECUTION_SEQ", &["ID"]),
    ("BATCH_JOB_SEQ", &["ID"]),
];

/// See the module documentation.
#[derive(Clone)]
pub struct SqliteJobRepository {
    pool: SqlitePool,
    lease: Duration,
}

impl SqliteJobRepository {
    /// Opens (creating when missing) the database at `url` (`sqlite:batch.db`,
    /// `sqlite://path/to/file.db`, or a bare file path) and makes sure the batch
    /// tables are there with the right columns.
    pub async fn open(url: &str) -> Result<Self, RepositoryError> {
        let url_owned = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite:{url}")
        };
        let unreachable = |source| RepositoryError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(&url_owned)
            .map_err(unreachable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        let repo = Self {
            pool,
            lease: super::owner::DEFAULT_LEASE,
        };
        repo.ensure_schema().await?;
        Ok(repo)
    }

    /// How long a running execution on another host may go without a heartbeat before
    /// a launch presumes it dead.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The connection pool of the repository's database, for steps whose data lives in
    /// the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn ensure_schema(&self) -> Result<(), RepositoryError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(RepositoryError::db(
                "opening a transaction to check the schema",
            ))?;
        for (table, expected) in COLUMNS {
            let found: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                .bind(*table)
                .fetch_all(&mut *tx)
                .await
                .map_err(RepositoryError::db(format!(
                    "reading the columns of {table}"
                )))?;
            if found.is_empty() {
                continue;
            }
            let missing: Vec<&str> = expected
                .iter()
                .copied()
                .filter(|c| !found.iter().any(|f| f.eq_ignore_ascii_case(c)))
                .collect();
            if !missing.is_empty() {
                return Err(RepositoryError::SchemaMismatch {
                    table: (*table).to_owned(),
                    problem: format!(
                        "missing column(s) {} (found {}); the database was made by something else or by Spring Batch 4, which needs its 5.0 migration",
                        missing.join(", "),
                        found.join(", ")
                    ),
                });
            }
        }
        for ddl in SCHEMA {
            sqlx::query(*ddl)
                .execute(&mut *tx)
                .await
                .map_err(RepositoryError::db("creating the Spring Batch tables"))?;
        }
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the schema"))
    }
}

/// Marks a dead run and its running steps FAILED.
async fn mark_dead(
    conn: &mut SqliteConnection,
    execution_id: i64,
    message: &str,
) -> Result<(), RepositoryError> {
    let end = now();
    let message = exit_message(message);
    sqlx::query(
        "UPDATE BATCH_JOB_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?1, \
         END_TIME = ?2, LAST_UPDATED = ?2, VERSION = VERSION + 1 WHERE JOB_EXECUTION_ID = ?3",
    )
    .bind(&message)
    .bind(end)
    .bind(execution_id)
    .execute(&mut *conn)
    .await
    .map_err(RepositoryError::db(format!("marking dead job execution {execution_id} FAILED")))?;
    sqlx::query(
        "UPDATE BATCH_STEP_EXECUTION SET STATUS = 'FAILED', EXIT_CODE = 'FAILED', EXIT_MESSAGE = ?1, \
         END_TIME = ?2, LAST_UPDATED = ?2, VERSION = VERSION + 1 \
         WHERE JOB_EXECUTION_ID = ?3 AND STATUS IN ('STARTING', 'STARTED', 'STOPPING')",
    )
    .bind(&message)
    .bind(end)
    .bind(execution_id)
    .execute(&mut *conn)
    .await
    .map_err(RepositoryError::db(format!("marking the steps of dead job execution {execution_id} FAILED")))?;
    Ok(())
}

async fn next_id(conn: &mut SqliteConnection, seq: &'static str) -> Result<i64, RepositoryError> {
    let (insert, delete) = match seq {
        "BATCH_JOB_SEQ" => (
            "INSERT INTO BATCH_JOB_SEQ (ID) VALUES (NULL) RETURNING ID",
            "DELETE FROM BATCH_JOB_SEQ WHERE ID < ?1",
        ),
        "BATCH_JOB_EXECUTION_SEQ" => (
            "INSERT INTO BATCH_JOB_EXECUTION_SEQ (ID) VALUES (NULL) RETURNING ID",
            "DELETE FROM BATCH_JOB_EXECUTION_SEQ WHERE ID < ?1",
        ),
        _ => (
            "INSERT INTO BATCH_STEP_EXECUTION_SEQ (ID) VALUES (NULL) RETURNING ID",
            "DELETE FROM BATCH_STEP_EXECUTION_SEQ WHERE ID < ?1",
        ),
    };
    let id: i64 = sqlx::query_scalar(insert)
        .fetch_one(&mut *conn)
        .await
        .map_err(RepositoryError::db(format!("taking an id from {seq}")))?;
    sqlx::query(delete)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(RepositoryError::db(format!("trimming {seq}")))?;
    Ok(id)
}

fn status_of(text: Option<String>, what: &str) -> Result<BatchStatus, RepositoryError> {
    let text = text.unwrap_or_else(|| "UNKNOWN".into());
    text.parse().map_err(
        |e: crate::execution::UnknownStatus| RepositoryError::Corrupt {
            what: what.to_owned(),
            problem: e.to_string(),
        },
    )
}

fn corrupt(what: &str) -> impl FnOnce(sqlx::Error) -> RepositoryError + '_ {
    move |e| RepositoryError::Corrupt {
        what: what.to_owned(),
        problem: e.to_string(),
    }
}

fn count(row: &SqliteRow, column: &str, what: &str) -> Result<u64, RepositoryError> {
    let v: Option<i64> = row.try_get(column).map_err(corrupt(what))?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

const STEP_COLUMNS: &str = "S.STEP_EXECUTION_ID, S.VERSION, S.STEP_NAME, S.JOB_EXECUTION_ID, S.CREATE_TIME, \
    S.START_TIME, S.END_TIME, S.STATUS, S.COMMIT_COUNT, S.READ_COUNT, S.FILTER_COUNT, S.WRITE_COUNT, \
    S.READ_SKIP_COUNT, S.WRITE_SKIP_COUNT, S.PROCESS_SKIP_COUNT, S.ROLLBACK_COUNT, S.EXIT_CODE, \
    S.EXIT_MESSAGE, S.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT";

fn step_from_row(row: &SqliteRow) -> Result<StepExecution, RepositoryError> {
    let id: i64 = row
        .try_get("STEP_EXECUTION_ID")
        .map_err(corrupt("step execution"))?;
    let what = format!("step execution {id}");
    let w = what.as_str();
    let short: Option<String> = row.try_get("SHORT_CONTEXT").map_err(corrupt(w))?;
    let long: Option<String> = row.try_get("SERIALIZED_CONTEXT").map_err(corrupt(w))?;
    let context = match short {
        Some(short) => ExecutionContext::from_columns(w, &short, long.as_deref())?,
        None => ExecutionContext::new(),
    };
    Ok(StepExecution {
        id,
        version: row
            .try_get::<Option<i64>, _>("VERSION")
            .map_err(corrupt(w))?
            .unwrap_or(0),
        step_name: row.try_get("STEP_NAME").map_err(corrupt(w))?,
        job_execution_id: row.try_get("JOB_EXECUTION_ID").map_err(corrupt(w))?,
        create_time: row.try_get("CREATE_TIME").map_err(corrupt(w))?,
        start_time: row.try_get("START_TIME").map_err(corrupt(w))?,
        end_time: row.try_get("END_TIME").map_err(corrupt(w))?,
        status: status_of(row.try_get("STATUS").map_err(corrupt(w))?, w)?,
        counts: StepCounts {
            read: count(row, "READ_COUNT", w)?,
            write: count(row, "WRITE_COUNT", w)?,
            filter: count(row, "FILTER_COUNT", w)?,
            commit: count(row, "COMMIT_COUNT", w)?,
            rollback: count(row, "ROLLBACK_COUNT", w)?,
            read_skip: count(row, "READ_SKIP_COUNT", w)?,
            process_skip: count(row, "PROCESS_SKIP_COUNT", w)?,
            write_skip: count(row, "WRITE_SKIP_COUNT", w)?,
        },
        exit_status: ExitStatus {
            code: row
                .try_get::<Option<String>, _>("EXIT_CODE")
                .map_err(corrupt(w))?
                .unwrap_or_default(),
            description: row
                .try_get::<Option<String>, _>("EXIT_MESSAGE")
                .map_err(corrupt(w))?
                .unwrap_or_default(),
        },
        last_updated: row.try_get("LAST_UPDATED").map_err(corrupt(w))?,
        context,
    })
}

async fn update_step_row(
    conn: &mut SqliteConnection,
    step: &mut StepExecution,
) -> Result<(), RepositoryError> {
    let last_updated = now();
    let c = &step.counts;
    let done = sqlx::query(
        "UPDATE BATCH_STEP_EXECUTION SET START_TIME = ?1, END_TIME = ?2, STATUS = ?3, \
         COMMIT_COUNT = ?4, READ_COUNT = ?5, FILTER_COUNT = ?6, WRITE_COUNT = ?7, \
         EXIT_CODE = ?8, EXIT_MESSAGE = ?9, VERSION = ?10 + 1, READ_SKIP_COUNT = ?11, \
         PROCESS_SKIP_COUNT = ?12, WRITE_SKIP_COUNT = ?13, ROLLBACK_COUNT = ?14, \
         LAST_UPDATED = ?15 WHERE STEP_EXECUTION_ID = ?16 AND VERSION = ?10",
    )
    .bind(step.start_time)
    .bind(step.end_time)
    .bind(step.status.as_str())
    .bind(c.commit as i64)
    .bind(c.read as i64)
    .bind(c.filter as i64)
    .bind(c.write as i64)
    .bind(step.exit_status.code.clone())
    .bind(exit_message(&step.exit_status.description))
    .bind(step.version)
    .bind(c.read_skip as i64)
    .bind(c.process_skip as i64)
    .bind(c.write_skip as i64)
    .bind(c.rollback as i64)
    .bind(last_updated)
    .bind(step.id)
    .execute(&mut *conn)
    .await
    .map_err(RepositoryError::db(format!(
        "updating step execution {}",
        step.id
    )))?;
    if done.rows_affected() == 0 {
        return Err(RepositoryError::OptimisticLock {
            what: format!("step execution {} ({})", step.id, step.step_name),
            expected: step.version,
        });
    }
    step.version += 1;
    step.last_updated = Some(last_updated);
    Ok(())
}

async fn write_context(
    conn: &mut SqliteConnection,
    table_is_step: bool,
    id: i64,
    ctx: &ExecutionContext,
    insert: bool,
) -> Result<(), RepositoryError> {
    let (short, long) = ctx.to_columns();
    let sql = match (table_is_step, insert) {
        (true, true) => {
            "INSERT INTO BATCH_STEP_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, STEP_EXECUTION_ID) VALUES (?1, ?2, ?3)"
        }
        (true, false) => {
            "UPDATE BATCH_STEP_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?1, SERIALIZED_CONTEXT = ?2 WHERE STEP_EXECUTION_ID = ?3"
        }
        (false, true) => {
            "INSERT INTO BATCH_JOB_EXECUTION_CONTEXT (SHORT_CONTEXT, SERIALIZED_CONTEXT, JOB_EXECUTION_ID) VALUES (?1, ?2, ?3)"
        }
        (false, false) => {
            "UPDATE BATCH_JOB_EXECUTION_CONTEXT SET SHORT_CONTEXT = ?1, SERIALIZED_CONTEXT = ?2 WHERE JOB_EXECUTION_ID = ?3"
        }
    };
    let owner = if table_is_step { "step" } else { "job" };
    sqlx::query(sql)
        .bind(short)
        .bind(long)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(RepositoryError::db(format!(
            "saving the context of {owner} execution {id}"
        )))?;
    Ok(())
}

async fn read_params(
    conn: &mut SqliteConnection,
    execution_id: i64,
) -> Result<JobParameters, RepositoryError> {
    let rows = sqlx::query(
        "SELECT PARAMETER_NAME, PARAMETER_TYPE, PARAMETER_VALUE, IDENTIFYING \
         FROM BATCH_JOB_EXECUTION_PARAMS WHERE JOB_EXECUTION_ID = ?1 ORDER BY rowid",
    )
    .bind(execution_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(RepositoryError::db(format!(
        "reading the parameters of job execution {execution_id}"
    )))?;
    let mut params = JobParameters::new();
    for row in rows {
        let what = format!("parameters of job execution {execution_id}");
        let name: String = row.try_get("PARAMETER_NAME").map_err(corrupt(&what))?;
        let ty: String = row.try_get("PARAMETER_TYPE").map_err(corrupt(&what))?;
        let value: Option<String> = row.try_get("PARAMETER_VALUE").map_err(corrupt(&what))?;
        let identifying: String = row.try_get("IDENTIFYING").map_err(corrupt(&what))?;
        let (name, p) =
            JobParameters::from_stored(&name, &ty, value.as_deref(), identifying == "Y")?;
        params.insert(name, p);
    }
    Ok(params)
}

impl JobRepository for SqliteJobRepository {
    fn create_job_execution<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<JobExecution, LaunchError>> {
        Box::pin(async move {
            let key = parameters.job_key();
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(RepositoryError::db("opening the launch transaction"))?;
            let found = sqlx::query(
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2",
            )
            .bind(job_name)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(RepositoryError::db("looking up the job instance"))?;
            let (instance, context) = match found {
                Some(row) => {
                    let instance = JobInstance {
                        id: row.get(0),
                        version: row.get::<Option<i64>, _>(1).unwrap_or(0),
                        job_name: job_name.to_owned(),
                        job_key: key.clone(),
                    };
                    let rows = sqlx::query(
                        "SELECT JOB_EXECUTION_ID, STATUS, EXIT_MESSAGE, LAST_UPDATED FROM BATCH_JOB_EXECUTION \
                         WHERE JOB_INSTANCE_ID = ?1 ORDER BY JOB_EXECUTION_ID DESC",
                    )
                    .bind(instance.id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(RepositoryError::db(
                        "reading the executions of the instance",
                    ))?;
                    let mut summaries = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let id: i64 = row.get(0);
                        let what = format!("job execution {id}");
                        summaries.push(ExecutionSummary {
                            id,
                            status: status_of(row.get(1), &what)?,
                            exit_message: row
                                .try_get::<Option<String>, _>(2)
                                .map_err(corrupt(&what))?
                                .unwrap_or_default(),
                            last_updated: row.try_get(3).map_err(corrupt(&what))?,
                        });
                    }
                    let dead =
                        check_restartable(&instance, parameters, &summaries, now(), self.lease)?;
                    for (id, reason) in dead {
                        mark_dead(&mut tx, id, &died_message(&reason)).await?;
                    }
                    let context = match summaries.first() {
                        Some(&ExecutionSummary { id: last, .. }) => {
                            let row = sqlx::query(
                                "SELECT SHORT_CONTEXT, SERIALIZED_CONTEXT FROM BATCH_JOB_EXECUTION_CONTEXT WHERE JOB_EXECUTION_ID = ?1",
                            )
                            .bind(last)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(RepositoryError::db("reading the job context"))?;
                            match row {
                                Some(r) => ExecutionContext::from_columns(
                                    &format!("job execution {last}"),
                                    &r.get::<String, _>(0),
                                    r.get::<Option<String>, _>(1).as_deref(),
                                )
                                .map_err(RepositoryError::from)?,
                                None => ExecutionContext::new(),
                            }
                        }
                        None => ExecutionContext::new(),
                    };
                    (instance, context)
                }
                None => {
                    let id = next_id(&mut tx, "BATCH_JOB_SEQ").await?;
                    sqlx::query(
                        "INSERT INTO BATCH_JOB_INSTANCE (JOB_INSTANCE_ID, JOB_NAME, JOB_KEY, VERSION) VALUES (?1, ?2, ?3, 0)",
                    )
                    .bind(id)
                    .bind(job_name)
                    .bind(&key)
                    .execute(&mut *tx)
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
            let id = next_id(&mut tx, "BATCH_JOB_EXECUTION_SEQ").await?;
            let created = now();
            let exit = ExitStatus::unknown();
            sqlx::query(
                "INSERT INTO BATCH_JOB_EXECUTION (JOB_EXECUTION_ID, JOB_INSTANCE_ID, START_TIME, END_TIME, \
                 STATUS, EXIT_CODE, EXIT_MESSAGE, VERSION, CREATE_TIME, LAST_UPDATED) \
                 VALUES (?1, ?2, NULL, NULL, ?3, ?4, ?5, 0, ?6, ?6)",
            )
            .bind(id)
            .bind(instance.id)
            .bind(BatchStatus::Starting.as_str())
            .bind(exit.code.clone())
            .bind("")
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(RepositoryError::db("creating the job execution"))?;
            for (name, p) in parameters.iter() {
                sqlx::query(
                    "INSERT INTO BATCH_JOB_EXECUTION_PARAMS (JOB_EXECUTION_ID, PARAMETER_NAME, PARAMETER_TYPE, \
                     PARAMETER_VALUE, IDENTIFYING) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .bind(id)
                .bind(name)
                .bind(p.value.param_type().java_class())
                .bind(p.value.to_iso_text())
                .bind(if p.identifying { "Y" } else { "N" })
                .execute(&mut *tx)
                .await
                .map_err(RepositoryError::db(format!("saving job parameter `{name}`")))?;
            }
            write_context(&mut tx, false, id, &context, true).await?;
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
            })
        })
    }

    fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let last_updated = now();
            let done = sqlx::query(
                "UPDATE BATCH_JOB_EXECUTION SET START_TIME = ?1, END_TIME = ?2, STATUS = ?3, EXIT_CODE = ?4, \
                 EXIT_MESSAGE = ?5, VERSION = ?6 + 1, CREATE_TIME = ?7, LAST_UPDATED = ?8 \
                 WHERE JOB_EXECUTION_ID = ?9 AND VERSION = ?6",
            )
            .bind(execution.start_time)
            .bind(execution.end_time)
            .bind(execution.status.as_str())
            .bind(execution.exit_status.code.clone())
            .bind(exit_message(&execution.exit_status.description))
            .bind(execution.version)
            .bind(execution.create_time)
            .bind(last_updated)
            .bind(execution.id)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::db(format!("updating job execution {}", execution.id)))?;
            if done.rows_affected() == 0 {
                return Err(RepositoryError::OptimisticLock {
                    what: format!("job execution {}", execution.id),
                    expected: execution.version,
                });
            }
            execution.version += 1;
            execution.last_updated = Some(last_updated);
            Ok(())
        })
    }

    fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(RepositoryError::db("connecting"))?;
            write_context(&mut conn, false, execution.id, &execution.context, false).await
        })
    }

    fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut tx =
                self.pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(RepositoryError::db(
                        "opening a transaction for a new step execution",
                    ))?;
            let id = next_id(&mut tx, "BATCH_STEP_EXECUTION_SEQ").await?;
            let c = &step.counts;
            sqlx::query(
                "INSERT INTO BATCH_STEP_EXECUTION (STEP_EXECUTION_ID, VERSION, STEP_NAME, JOB_EXECUTION_ID, \
                 START_TIME, END_TIME, STATUS, COMMIT_COUNT, READ_COUNT, FILTER_COUNT, WRITE_COUNT, EXIT_CODE, \
                 EXIT_MESSAGE, READ_SKIP_COUNT, WRITE_SKIP_COUNT, PROCESS_SKIP_COUNT, ROLLBACK_COUNT, \
                 LAST_UPDATED, CREATE_TIME) \
                 VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )
            .bind(id)
            .bind(step.step_name.clone())
            .bind(step.job_execution_id)
            .bind(step.start_time)
            .bind(step.end_time)
            .bind(step.status.as_str())
            .bind(c.commit as i64)
            .bind(c.read as i64)
            .bind(c.filter as i64)
            .bind(c.write as i64)
            .bind(step.exit_status.code.clone())
            .bind(exit_message(&step.exit_status.description))
            .bind(c.read_skip as i64)
            .bind(c.write_skip as i64)
            .bind(c.process_skip as i64)
            .bind(c.rollback as i64)
            .bind(now())
            .bind(step.create_time)
            .execute(&mut *tx)
            .await
            .map_err(RepositoryError::db(format!("creating the execution of step `{}`", step.step_name)))?;
            write_context(&mut tx, true, id, &step.context, true).await?;
            tx.commit()
                .await
                .map_err(RepositoryError::db("committing a new step execution"))?;
            step.id = id;
            step.version = 0;
            step.context.clear_dirty();
            Ok(())
        })
    }

    fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(RepositoryError::db("connecting"))?;
            update_step_row(&mut conn, step).await
        })
    }

    fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(RepositoryError::db("connecting"))?;
            write_context(&mut conn, true, step.id, &step.context, false).await
        })
    }

    fn begin_chunk(&self) -> BoxFuture<'_, Result<ChunkTx, RepositoryError>> {
        Box::pin(async move {
            let tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(RepositoryError::db("beginning a chunk transaction"))?;
            Ok(ChunkTx::from_sqlite(tx))
        })
    }

    fn commit_chunk<'a>(
        &'a self,
        tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let mut tx = match tx.into_inner() {
                TxInner::Sqlite(tx) => tx,
                TxInner::None => self
                    .pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(RepositoryError::db("beginning a chunk transaction"))?,
            };
            update_step_row(&mut tx, step).await?;
            if step.context.is_dirty() {
                write_context(&mut tx, true, step.id, &step.context, false).await?;
            }
            tx.commit().await.map_err(RepositoryError::db(format!(
                "committing a chunk of step `{}`",
                step.step_name
            )))?;
            step.context.clear_dirty();
            Ok(())
        })
    }

    fn rollback_chunk(&self, tx: ChunkTx) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            match tx.into_inner() {
                TxInner::Sqlite(tx) => tx
                    .rollback()
                    .await
                    .map_err(RepositoryError::db("rolling a chunk back")),
                TxInner::None => Ok(()),
            }
        })
    }

    fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StepExecution>, RepositoryError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {STEP_COLUMNS} FROM BATCH_JOB_EXECUTION J \
                 JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
                 LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
                 WHERE J.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2 \
                 ORDER BY S.CREATE_TIME DESC, S.STEP_EXECUTION_ID DESC LIMIT 1"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(instance.id)
                .bind(step_name)
                .fetch_optional(&self.pool)
                .await
                .map_err(RepositoryError::db(format!(
                    "finding the last execution of step `{step_name}`"
                )))?;
            row.as_ref().map(step_from_row).transpose()
        })
    }

    fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<u64, RepositoryError>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM BATCH_JOB_EXECUTION J \
                 JOIN BATCH_STEP_EXECUTION S ON S.JOB_EXECUTION_ID = J.JOB_EXECUTION_ID \
                 WHERE J.JOB_INSTANCE_ID = ?1 AND S.STEP_NAME = ?2",
            )
            .bind(instance.id)
            .bind(step_name)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::db(format!(
                "counting the executions of step `{step_name}`"
            )))?;
            Ok(n as u64)
        })
    }

    fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<Option<JobInstance>, RepositoryError>> {
        Box::pin(async move {
            let key = parameters.job_key();
            let row = sqlx::query(
                "SELECT JOB_INSTANCE_ID, VERSION FROM BATCH_JOB_INSTANCE WHERE JOB_NAME = ?1 AND JOB_KEY = ?2",
            )
            .bind(job_name)
            .bind(&key)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::db("looking up the job instance"))?;
            Ok(row.map(|r| JobInstance {
                id: r.get(0),
                version: r.get::<Option<i64>, _>(1).unwrap_or(0),
                job_name: job_name.to_owned(),
                job_key: key,
            }))
        })
    }

    fn heartbeat(&self, execution_id: i64) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE BATCH_JOB_EXECUTION SET LAST_UPDATED = ?1 WHERE JOB_EXECUTION_ID = ?2",
            )
            .bind(now())
            .bind(execution_id)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::db(format!(
                "refreshing the heartbeat of job execution {execution_id}"
            )))?;
            Ok(())
        })
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        Box::pin(async move {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(RepositoryError::db("connecting"))?;
            let rows = sqlx::query(
                "SELECT E.JOB_EXECUTION_ID, E.VERSION, E.CREATE_TIME, E.START_TIME, E.END_TIME, E.STATUS, \
                 E.EXIT_CODE, E.EXIT_MESSAGE, E.LAST_UPDATED, C.SHORT_CONTEXT, C.SERIALIZED_CONTEXT \
                 FROM BATCH_JOB_EXECUTION E \
                 LEFT JOIN BATCH_JOB_EXECUTION_CONTEXT C ON C.JOB_EXECUTION_ID = E.JOB_EXECUTION_ID \
                 WHERE E.JOB_INSTANCE_ID = ?1 ORDER BY E.JOB_EXECUTION_ID DESC",
            )
            .bind(instance.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(RepositoryError::db("reading job executions"))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.get("JOB_EXECUTION_ID");
                let what = format!("job execution {id}");
                let short: Option<String> = row.get("SHORT_CONTEXT");
                let context = match short {
                    Some(s) => ExecutionContext::from_columns(
                        &what,
                        &s,
                        row.get::<Option<String>, _>("SERIALIZED_CONTEXT")
                            .as_deref(),
                    )?,
                    None => ExecutionContext::new(),
                };
                let parameters = read_params(&mut conn, id).await?;
                let sql = format!(
                    "SELECT {STEP_COLUMNS} FROM BATCH_STEP_EXECUTION S \
                     LEFT JOIN BATCH_STEP_EXECUTION_CONTEXT C ON C.STEP_EXECUTION_ID = S.STEP_EXECUTION_ID \
                     WHERE S.JOB_EXECUTION_ID = ?1 ORDER BY S.STEP_EXECUTION_ID"
                );
                let steps = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(RepositoryError::db("reading step executions"))?
                    .iter()
                    .map(step_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(JobExecution {
                    id,
                    version: row
                        .try_get::<Option<i64>, _>("VERSION")
                        .map_err(corrupt(&what))?
                        .unwrap_or(0),
                    instance: instance.clone(),
                    parameters,
                    create_time: row
                        .try_get::<NaiveDateTime, _>("CREATE_TIME")
                        .map_err(corrupt(&what))?,
                    start_time: row.try_get("START_TIME").map_err(corrupt(&what))?,
                    end_time: row.try_get("END_TIME").map_err(corrupt(&what))?,
                    status: status_of(row.try_get("STATUS").map_err(corrupt(&what))?, &what)?,
                    exit_status: ExitStatus {
                        code: row
                            .try_get::<Option<String>, _>("EXIT_CODE")
                            .map_err(corrupt(&what))?
                            .unwrap_or_default(),
                        description: row
                            .try_get::<Option<String>, _>("EXIT_MESSAGE")
                            .map_err(corrupt(&what))?
                            .unwrap_or_default(),
                    },
                    last_updated: row.try_get("LAST_UPDATED").map_err(corrupt(&what))?,
                    context,
                    step_executions: steps,
                });
            }
            Ok(out)
        })
    }
}
