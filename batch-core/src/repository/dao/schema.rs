//! The Spring Batch 5 tables in each dialect: their DDL, the check that an existing
//! database has them as Spring defines them, and their creation when missing.

use chrono::NaiveDateTime;

use super::{Column, ColumnTypes, Dialect, SqlJobRepository};
use crate::repository::error::RepositoryError;

/// Spring Batch 5's six tables, in the words of [`ColumnTypes`]: `{id_key}`, `{big}`,
/// `{time}`, `{exit_code}`, `{long_text}`, `{table_options}`.
const TABLE_DDL: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_INSTANCE (
        JOB_INSTANCE_ID {id_key},
        VERSION {big},
        JOB_NAME VARCHAR(100) NOT NULL,
        JOB_KEY VARCHAR(32) NOT NULL,
        constraint JOB_INST_UN unique (JOB_NAME, JOB_KEY)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION (
        JOB_EXECUTION_ID {id_key},
        VERSION {big},
        JOB_INSTANCE_ID {big} NOT NULL,
        CREATE_TIME {time} NOT NULL,
        START_TIME {time} DEFAULT NULL,
        END_TIME {time} DEFAULT NULL,
        STATUS VARCHAR(10),
        EXIT_CODE {exit_code},
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED {time},
        constraint JOB_INST_EXEC_FK foreign key (JOB_INSTANCE_ID)
        references BATCH_JOB_INSTANCE(JOB_INSTANCE_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_PARAMS (
        JOB_EXECUTION_ID {big} NOT NULL,
        PARAMETER_NAME VARCHAR(100) NOT NULL,
        PARAMETER_TYPE VARCHAR(100) NOT NULL,
        PARAMETER_VALUE VARCHAR(2500),
        IDENTIFYING CHAR(1) NOT NULL,
        constraint JOB_EXEC_PARAMS_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION (
        STEP_EXECUTION_ID {id_key},
        VERSION {big} NOT NULL,
        STEP_NAME VARCHAR(100) NOT NULL,
        JOB_EXECUTION_ID {big} NOT NULL,
        CREATE_TIME {time} NOT NULL,
        START_TIME {time} DEFAULT NULL,
        END_TIME {time} DEFAULT NULL,
        STATUS VARCHAR(10),
        COMMIT_COUNT {big},
        READ_COUNT {big},
        FILTER_COUNT {big},
        WRITE_COUNT {big},
        READ_SKIP_COUNT {big},
        WRITE_SKIP_COUNT {big},
        PROCESS_SKIP_COUNT {big},
        ROLLBACK_COUNT {big},
        EXIT_CODE {exit_code},
        EXIT_MESSAGE VARCHAR(2500),
        LAST_UPDATED {time},
        constraint JOB_EXEC_STEP_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_STEP_EXECUTION_CONTEXT (
        STEP_EXECUTION_ID {big} NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT {long_text},
        constraint STEP_EXEC_CTX_FK foreign key (STEP_EXECUTION_ID)
        references BATCH_STEP_EXECUTION(STEP_EXECUTION_ID)
    ){table_options}",
    "CREATE TABLE IF NOT EXISTS BATCH_JOB_EXECUTION_CONTEXT (
        JOB_EXECUTION_ID {big} NOT NULL PRIMARY KEY,
        SHORT_CONTEXT VARCHAR(2500) NOT NULL,
        SERIALIZED_CONTEXT {long_text},
        constraint JOB_EXEC_CTX_FK foreign key (JOB_EXECUTION_ID)
        references BATCH_JOB_EXECUTION(JOB_EXECUTION_ID)
    ){table_options}",
];

/// Not a Spring Batch table: the durable per-item progress of steps that call outside
/// systems (see `crate::calls`). Java tooling ignores it.
const PROGRESS_DDL: &str = "CREATE TABLE IF NOT EXISTS BATCH_STEP_ITEM_PROGRESS (
        JOB_INSTANCE_ID {big} NOT NULL,
        STEP_NAME VARCHAR(100) NOT NULL,
        ITEM_KEY VARCHAR(250) NOT NULL,
        CREATE_TIME {time} NOT NULL,
        constraint STEP_ITEM_PROGRESS_PK primary key (JOB_INSTANCE_ID, STEP_NAME, ITEM_KEY)
    ){table_options}";

/// The six tables in `types`' dialect.
fn table_ddl(types: &ColumnTypes) -> impl Iterator<Item = String> + '_ {
    TABLE_DDL.iter().chain([&PROGRESS_DDL]).map(|ddl| {
        ddl.replace("{id_key}", types.id_key)
            .replace("{big}", types.big)
            .replace("{time}", types.time)
            .replace("{exit_code}", types.exit_code)
            .replace("{long_text}", types.long_text)
            .replace("{table_options}", types.table_options)
    })
}

/// The tables every dialect has, with the columns each must have (Spring Batch 5).
const TABLES: &[(&str, &[&str])] = &[
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
];

const SEQUENCES: [&str; 3] = [
    "BATCH_STEP_EXECUTION_SEQ",
    "BATCH_JOB_EXECUTION_SEQ",
    "BATCH_JOB_SEQ",
];

impl<DB: Dialect> SqlJobRepository<DB>
where
    i64: Column<DB>,
    String: Column<DB>,
    NaiveDateTime: Column<DB>,
    Option<String>: Column<DB>,
    Option<NaiveDateTime>: Column<DB>,
{
    pub(super) async fn ensure_schema(&self) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_schema(&self.pool)
            .await
            .map_err(RepositoryError::db(
                "opening a transaction to check the schema",
            ))?;
        // Spring's `*_SEQ` tables, where the dialect has them.
        let mut checked: Vec<(&str, &[&str])> = TABLES.to_vec();
        if !DB::SEQUENCE_COLUMNS.is_empty() {
            checked.extend(SEQUENCES.iter().map(|s| (*s, DB::SEQUENCE_COLUMNS)));
        }
        for (table, expected) in checked {
            let found = DB::columns(&mut tx, table)
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
                    table: table.to_owned(),
                    problem: format!(
                        "missing column(s) {} (found {}); the database was made by something else or by Spring Batch 4, which needs its 5.0 migration",
                        missing.join(", "),
                        found.join(", ")
                    ),
                });
            }
        }
        let mut statements: Vec<String> = table_ddl(&DB::TYPES).collect();
        for seq in SEQUENCES {
            statements.extend(DB::SEQUENCE_DDL.iter().map(|ddl| ddl.replace("{seq}", seq)));
        }
        statements.extend(DB::MORE_DDL.iter().map(|ddl| ddl.to_string()));
        for ddl in statements {
            DB::execute(&mut tx, sqlx::query(sqlx::AssertSqlSafe(ddl)))
                .await
                .map_err(RepositoryError::db("creating the Spring Batch tables"))?;
        }
        tx.commit()
            .await
            .map_err(RepositoryError::db("committing the schema"))
    }
}
