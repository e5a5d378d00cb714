//! The Spring Batch 5 tables in each dialect: their DDL, the check that an existing
//! database has them as Spring defines them, and their creation when missing.

use chrono::NaiveDateTime;

use super::{CatalogColumn, Column, ColumnTypes, Dialect, SqlJobRepository};
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

/// What a column of Spring's tables must be for the repository to write it: its kind
/// of type and, for text, the length it needs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Ids, VERSION, counters.
    Int,
    /// CREATE_TIME, START_TIME, END_TIME, LAST_UPDATED.
    Time,
    /// VARCHAR of at least this many characters (0: any text, as SERIALIZED_CONTEXT).
    Text(i64),
}

/// `(name, kind, nullable)`: Spring Batch 5 lets the column hold NULL, and the
/// repository writes NULL there (START_TIME of a new execution, say).
type Spec = (&'static str, Kind, bool);

use Kind::{Int, Text, Time};

/// The tables every dialect has, with the columns each must have (Spring Batch 5).
const TABLES: &[(&str, &[Spec])] = &[
    (
        "BATCH_JOB_INSTANCE",
        &[
            ("JOB_INSTANCE_ID", Int, false),
            ("VERSION", Int, true),
            ("JOB_NAME", Text(100), false),
            ("JOB_KEY", Text(32), false),
        ],
    ),
    (
        "BATCH_JOB_EXECUTION",
        &[
            ("JOB_EXECUTION_ID", Int, false),
            ("VERSION", Int, true),
            ("JOB_INSTANCE_ID", Int, false),
            ("CREATE_TIME", Time, false),
            ("START_TIME", Time, true),
            ("END_TIME", Time, true),
            ("STATUS", Text(10), true),
            ("EXIT_CODE", Text(100), true),
            ("EXIT_MESSAGE", Text(2500), true),
            ("LAST_UPDATED", Time, true),
        ],
    ),
    (
        "BATCH_JOB_EXECUTION_PARAMS",
        &[
            ("JOB_EXECUTION_ID", Int, false),
            ("PARAMETER_NAME", Text(100), false),
            ("PARAMETER_TYPE", Text(100), false),
            ("PARAMETER_VALUE", Text(2500), true),
            ("IDENTIFYING", Text(1), false),
        ],
    ),
    (
        "BATCH_STEP_EXECUTION",
        &[
            ("STEP_EXECUTION_ID", Int, false),
            ("VERSION", Int, false),
            ("STEP_NAME", Text(100), false),
            ("JOB_EXECUTION_ID", Int, false),
            ("CREATE_TIME", Time, false),
            ("START_TIME", Time, true),
            ("END_TIME", Time, true),
            ("STATUS", Text(10), true),
            ("COMMIT_COUNT", Int, true),
            ("READ_COUNT", Int, true),
            ("FILTER_COUNT", Int, true),
            ("WRITE_COUNT", Int, true),
            ("READ_SKIP_COUNT", Int, true),
            ("WRITE_SKIP_COUNT", Int, true),
            ("PROCESS_SKIP_COUNT", Int, true),
            ("ROLLBACK_COUNT", Int, true),
            ("EXIT_CODE", Text(100), true),
            ("EXIT_MESSAGE", Text(2500), true),
            ("LAST_UPDATED", Time, true),
        ],
    ),
    (
        "BATCH_STEP_EXECUTION_CONTEXT",
        &[
            ("STEP_EXECUTION_ID", Int, false),
            ("SHORT_CONTEXT", Text(2500), false),
            ("SERIALIZED_CONTEXT", Text(0), true),
        ],
    ),
    (
        "BATCH_JOB_EXECUTION_CONTEXT",
        &[
            ("JOB_EXECUTION_ID", Int, false),
            ("SHORT_CONTEXT", Text(2500), false),
            ("SERIALIZED_CONTEXT", Text(0), true),
        ],
    ),
];

/// What is wrong with one column found in the catalogue, if anything.
fn column_problem(spec: &Spec, found: &CatalogColumn) -> Option<String> {
    let (name, kind, nullable) = *spec;
    let t = found.data_type.as_str();
    // SQLite keeps any declaration, even none; the others name their types.
    let kind_ok = t.is_empty()
        || match kind {
            Int => t.contains("int") || t.contains("numeric") || t.contains("decimal"),
            Time => t.contains("time") || t.contains("date"),
            Text(_) => t.contains("char") || t.contains("text") || t.contains("clob"),
        };
    if !kind_ok {
        let wanted = match kind {
            Int => "an integer",
            Time => "a timestamp",
            Text(_) => "a text",
        };
        return Some(format!("{name} is {t}, not {wanted} column"));
    }
    if let (Text(min), Some(len)) = (kind, found.max_length)
        && len < min
    {
        return Some(format!(
            "{name} holds {len} characters, Spring Batch 5 needs {min}"
        ));
    }
    if nullable && !found.nullable {
        return Some(format!(
            "{name} is NOT NULL, but Spring Batch 5 stores NULL there"
        ));
    }
    None
}

/// The problems of one table: missing columns, columns of the wrong type, length or
/// nullability, and columns Spring Batch 5 does not have that refuse an insert which
/// leaves them out (NOT NULL without a default: a Spring Batch 4 column, say).
fn table_problems(expected: &[Spec], found: &[CatalogColumn]) -> Vec<String> {
    let mut problems = Vec::new();
    let find = |name: &str| found.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(name, ..)| find(name).is_none())
        .map(|(name, ..)| *name)
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        problems.push(format!(
            "missing column(s) {} (found {})",
            missing.join(", "),
            names.join(", ")
        ));
    }
    for spec in expected {
        if let Some(problem) = find(spec.0).and_then(|f| column_problem(spec, f)) {
            problems.push(problem);
        }
    }
    for extra in found.iter().filter(|f| {
        !expected
            .iter()
            .any(|(name, ..)| f.name.eq_ignore_ascii_case(name))
            && !f.nullable
            && !f.has_default
    }) {
        problems.push(format!(
            "{} is not a Spring Batch 5 column and is NOT NULL without a default, so every insert would fail",
            extra.name.to_uppercase()
        ));
    }
    problems
}

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
        let sequence_columns: Vec<Spec> = DB::SEQUENCE_COLUMNS
            .iter()
            .map(|c| (*c, if *c == "ID" { Int } else { Text(1) }, false))
            .collect();
        let mut checked: Vec<(&str, &[Spec])> = TABLES.to_vec();
        checked.extend(SEQUENCES.iter().map(|s| (*s, sequence_columns.as_slice())));
        let mut refused: Vec<(&str, Vec<String>)> = Vec::new();
        for (table, expected) in checked {
            let found = DB::columns(&mut tx, table)
                .await
                .map_err(RepositoryError::db(format!(
                    "reading the columns of {table}"
                )))?;
            if found.is_empty() || expected.is_empty() {
                continue;
            }
            let problems = table_problems(expected, &found);
            if !problems.is_empty() {
                refused.push((table, problems));
            }
        }
        // Refused before anything is written: a run would fail at its first insert.
        if let Some(((table, problems), others)) = refused.split_first() {
            let mut problem = problems.join("; ");
            for (other, problems) in others {
                problem.push_str(&format!("; and table {other}: {}", problems.join("; ")));
            }
            problem.push_str("; the database was made by something else or by Spring Batch 4, which needs its 5.0 migration");
            return Err(RepositoryError::SchemaMismatch {
                table: (*table).to_owned(),
                problem,
            });
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
