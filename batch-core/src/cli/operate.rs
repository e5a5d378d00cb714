//! The runner's operating subcommands: `jobs`, `executions`, `show`, `stop`,
//! `abandon`, `recover`, `purge` (and the report of `restart`), each printing an
//! aligned table for a terminal or, with `--json`, one JSON document with stable field
//! names for scripts.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;
use crate::execution::{BatchStatus, JobExecution, StepExecution};
use crate::launch::JobLauncher;
use crate::operator::{JobOperator, OperatorError};
use crate::repository::{ExecutionQuery, PurgeRequest};

/// `show ID` and the others: no execution of that id.
pub(super) const NO_SUCH_EXECUTION: u8 = 5;
/// `stop ID` and the others: the execution's state does not allow it.
pub(super) const NOT_ALLOWED: u8 = 6;

/// A subcommand other than a run.
#[derive(Debug)]
pub(super) enum Operation {
    Jobs,
    Executions {
        job: Option<String>,
        statuses: Vec<BatchStatus>,
        limit: usize,
    },
    Show(i64),
    Stop(i64),
    Abandon(i64),
    Recover(i64),
    Purge {
        older_than: Duration,
        statuses: Vec<BatchStatus>,
        job: Option<String>,
        include_restartable: bool,
    },
}

/// The exit code of an operator error, after printing it.
pub(super) fn failed(error: OperatorError) -> ExitCode {
    let code = match &error {
        OperatorError::NoSuchExecution(_) => NO_SUCH_EXECUTION,
        OperatorError::NotAllowed { .. } | OperatorError::OtherJob { .. } => NOT_ALLOWED,
        OperatorError::Launch(e) => match e {
            crate::repository::LaunchError::Repository(_) => 2,
            crate::repository::LaunchError::EndNotSaved { .. } => 1,
            crate::repository::LaunchError::InvalidParameters { .. } => 2,
            _ => NOT_ALLOWED,
        },
        OperatorError::Repository(_) => 2,
    };
    eprintln!("error: {}", Error::new(error).report());
    ExitCode::from(code)
}

pub(super) async fn operate(launcher: JobLauncher, operation: Operation, json: bool) -> ExitCode {
    let repository = launcher.repository().clone();
    let operator = JobOperator::new(launcher);
    let outcome: Result<String, OperatorError> = async {
        Ok(match operation {
            Operation::Jobs => {
                let names = repository.job_names().await?;
                if json {
                    json!({ "jobs": names }).to_string()
                } else {
                    names.iter().map(|n| format!("{n}\n")).collect()
                }
            }
            Operation::Executions {
                job,
                statuses,
                limit,
            } => {
                let mut query = ExecutionQuery::new().limit(limit);
                query.job_name = job;
                query.statuses = statuses;
                let executions = repository.find_job_executions(&query).await?;
                if json {
                    let list: Vec<Value> = executions.iter().map(execution_json).collect();
                    json!({ "executions": list }).to_string()
                } else {
                    table(&executions)
                }
            }
            Operation::Show(id) => {
                let execution = repository
                    .job_execution(id)
                    .await?
                    .ok_or(OperatorError::NoSuchExecution(id))?;
                if json {
                    detail_json(&execution).to_string()
                } else {
                    detail(&execution)
                }
            }
            Operation::Stop(id) => done(json, "stop", &operator.stop(id).await?),
            Operation::Abandon(id) => done(json, "abandon", &operator.abandon(id).await?),
            Operation::Recover(id) => done(json, "recover", &operator.recover(id).await?),
            Operation::Purge {
                older_than,
                statuses,
                job,
                include_restartable,
            } => {
                let mut request =
                    PurgeRequest::older_than(older_than).include_restartable(include_restartable);
                request.statuses = statuses;
                request.job_name = job;
                let report = operator.purge(&request).await?;
                if json {
                    json!({ "purged": report }).to_string()
                } else {
                    format!(
                        "purged {} job execution(s) and {} job instance(s)",
                        report.executions, report.instances
                    )
                }
            }
        })
    }
    .await;
    match outcome {
        Ok(text) => {
            if text.ends_with('\n') {
                print!("{text}");
            } else {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

fn done(json: bool, action: &str, execution: &JobExecution) -> String {
    if json {
        json!({ "action": action, "execution": execution_json(execution) }).to_string()
    } else {
        format!(
            "job execution {} of `{}`: {}",
            execution.id, execution.instance.job_name, execution.status
        )
    }
}

fn time(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
    })
}

fn text_time(t: Option<chrono::NaiveDateTime>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// One execution as the `executions` document lists it.
fn execution_json(e: &JobExecution) -> Value {
    json!({
        "execution_id": e.id,
        "instance_id": e.instance.id,
        "job_name": e.instance.job_name,
        "job_key": e.instance.job_key,
        "status": e.status.as_str(),
        "exit_code": e.exit_status.code,
        "exit_description": e.exit_status.description,
        "create_time": time(Some(e.create_time)),
        "start_time": time(e.start_time),
        "end_time": time(e.end_time),
        "last_updated": time(e.last_updated),
        "version": e.version,
    })
}

fn step_json(s: &StepExecution) -> Value {
    let c = &s.counts;
    json!({
        "step_execution_id": s.id,
        "step_name": s.step_name,
        "status": s.status.as_str(),
        "exit_code": s.exit_status.code,
        "exit_description": s.exit_status.description,
        "read_count": c.read,
        "write_count": c.write,
        "filter_count": c.filter,
        "commit_count": c.commit,
        "rollback_count": c.rollback,
        "read_skip_count": c.read_skip,
        "process_skip_count": c.process_skip,
        "write_skip_count": c.write_skip,
        "start_time": time(s.start_time),
        "end_time": time(s.end_time),
        "last_updated": time(s.last_updated),
        "version": s.version,
        "context": s.context.to_json(),
    })
}

/// One execution with everything `show` prints.
fn detail_json(e: &JobExecution) -> Value {
    let mut value = execution_json(e);
    let parameters: Vec<Value> = e
        .parameters
        .iter()
        .map(|(name, p)| {
            json!({
                "name": name,
                "type": p.value.param_type().short_name(),
                "value": p.value.to_iso_text(),
                "identifying": p.identifying,
            })
        })
        .collect();
    value["parameters"] = Value::Array(parameters);
    value["context"] = e.context.to_json();
    value["steps"] = Value::Array(e.step_executions.iter().map(step_json).collect());
    value
}

/// Rows aligned in columns, the first row the header.
fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn table(executions: &[JobExecution]) -> String {
    let mut rows = vec![
        [
            "execution",
            "instance",
            "job",
            "status",
            "exit",
            "started",
            "ended",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for e in executions {
        rows.push(vec![
            e.id.to_string(),
            e.instance.id.to_string(),
            e.instance.job_name.clone(),
            e.status.to_string(),
            e.exit_status.code.clone(),
            text_time(e.start_time),
            text_time(e.end_time),
        ]);
    }
    align(&rows)
}

fn detail(e: &JobExecution) -> String {
    let mut out = align(&[
        vec!["execution".into(), e.id.to_string()],
        vec!["job".into(), e.instance.job_name.clone()],
        vec!["instance".into(), e.instance.id.to_string()],
        vec!["status".into(), e.status.to_string()],
        vec!["exit".into(), e.exit_status.code.clone()],
        vec!["created".into(), text_time(Some(e.create_time))],
        vec!["started".into(), text_time(e.start_time)],
        vec!["ended".into(), text_time(e.end_time)],
        vec!["parameters".into(), e.parameters.to_string()],
        vec!["context".into(), e.context.to_json().to_string()],
    ]);
    if !e.exit_status.description.is_empty() {
        out.push_str(&format!(
            "exit description: {}\n",
            e.exit_status.description
        ));
    }
    let mut rows = vec![
        [
            "step", "id", "status", "exit", "read", "write", "filter", "commit", "rollback",
            "r.skip", "p.skip", "w.skip", "started", "ended",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for s in &e.step_executions {
        let c = &s.counts;
        rows.push(vec![
            s.step_name.clone(),
            s.id.to_string(),
            s.status.to_string(),
            s.exit_status.code.clone(),
            c.read.to_string(),
            c.write.to_string(),
            c.filter.to_string(),
            c.commit.to_string(),
            c.rollback.to_string(),
            c.read_skip.to_string(),
            c.process_skip.to_string(),
            c.write_skip.to_string(),
            text_time(s.start_time),
            text_time(s.end_time),
        ]);
    }
    out.push('\n');
    out.push_str(&align(&rows));
    for s in &e.step_executions {
        if !s.context.is_empty() {
            out.push_str(&format!(
                "context of {}: {}\n",
                s.step_name,
                s.context.to_json()
            ));
        }
    }
    out
}
