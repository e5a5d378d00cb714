//! `/metrics`: Prometheus text built from the job repository, so that it covers the
//! runs of every process that records there (executions by job and status, last and
//! average durations, the counters of each job's latest and running step executions),
//! followed by the runtime metrics of this process (see [`crate::telemetry`]), from
//! the Prometheus recorder the console installs.

use std::fmt::Write;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::execution::JobExecution;
use crate::repository::{ExecutionQuery, JobRepository, JobStatistics, RepositoryError};

/// The recorder of this process's runtime metrics, installed on first use; `None`
/// when the program installed another recorder (its metrics go there).
pub(crate) fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn steps(out: &mut String, executions: &[JobExecution]) {
    header(
        out,
        "batch_step_items",
        "gauge",
        "Counters of the step executions of each job's latest execution and of every running one.",
    );
    let mut durations = String::new();
    for e in executions {
        for s in &e.step_executions {
            let labels = format!(
                r#"job="{}",step="{}",job_execution_id="{}",step_execution_id="{}",status="{}""#,
                label(&e.instance.job_name),
                label(&s.step_name),
                e.id,
                s.id,
                s.status.as_str()
            );
            let c = &s.counts;
            for (counter, n) in [
                ("read", c.read),
                ("write", c.write),
                ("filter", c.filter),
                ("commit", c.commit),
                ("rollback", c.rollback),
                ("read_skip", c.read_skip),
                ("process_skip", c.process_skip),
                ("write_skip", c.write_skip),
            ] {
                let _ = writeln!(
                    out,
                    r#"batch_step_items{{{labels},counter="{counter}"}} {n}"#
                );
            }
            if let Some(d) = s.duration() {
                let _ = writeln!(
                    durations,
                    "batch_step_duration_seconds{{{labels}}} {}",
                    d.num_milliseconds() as f64 / 1000.0
                );
            }
        }
    }
    header(
        out,
        "batch_step_duration_seconds",
        "gauge",
        "Duration of those step executions (so far, for a running one).",
    );
    out.push_str(&durations);
}

/// The whole `/metrics` text.
pub(crate) async fn render(repository: &dyn JobRepository) -> Result<String, RepositoryError> {
    let rows = repository.execution_statistics().await?;
    let jobs = JobStatistics::by_job(&rows);
    let mut out = String::new();
    header(
        &mut out,
        "batch_job_executions",
        "gauge",
        "Job executions in the job repository, by job and status.",
    );
    for row in &rows {
        let _ = writeln!(
            out,
            r#"batch_job_executions{{job="{}",status="{}"}} {}"#,
            label(&row.job_name),
            row.status.as_str(),
            row.executions
        );
    }
    header(
        &mut out,
        "batch_job_average_duration_seconds",
        "gauge",
        "Mean duration of the job's executions that ended.",
    );
    for job in &jobs {
        if let Some(avg) = job.average_seconds {
            let _ = writeln!(
                out,
                r#"batch_job_average_duration_seconds{{job="{}"}} {avg}"#,
                label(&job.job_name)
            );
        }
    }
    let mut shown: Vec<JobExecution> = Vec::new();
    let mut last = String::new();
    for job in &jobs {
        let latest = repository
            .find_job_executions(&ExecutionQuery::new().job(&job.job_name).limit(1))
            .await?;
        if let Some(e) = latest.first() {
            if let (Some(d), Some(_)) = (e.duration(), e.end_time) {
                let _ = writeln!(
                    last,
                    r#"batch_job_last_duration_seconds{{job="{}",job_execution_id="{}",status="{}"}} {}"#,
                    label(&job.job_name),
                    e.id,
                    e.status.as_str(),
                    d.num_milliseconds() as f64 / 1000.0
                );
            }
            if let Some(full) = repository.job_execution(e.id).await? {
                shown.push(full);
            }
        }
    }
    header(
        &mut out,
        "batch_job_last_duration_seconds",
        "gauge",
        "Duration of the job's latest execution, when it ended.",
    );
    out.push_str(&last);
    let running = repository
        .find_job_executions(&ExecutionQuery::new().running().limit(100))
        .await?;
    for e in running {
        if !shown.iter().any(|s| s.id == e.id)
            && let Some(full) = repository.job_execution(e.id).await?
        {
            shown.push(full);
        }
    }
    header(
        &mut out,
        "batch_job_running",
        "gauge",
        "Job executions running (STARTING, STARTED, STOPPING), by job.",
    );
    let mut running_by_job: Vec<(&str, u64)> = Vec::new();
    for row in rows.iter().filter(|r| r.status.is_running()) {
        match running_by_job.iter_mut().find(|(j, _)| *j == row.job_name) {
            Some((_, n)) => *n += row.executions,
            None => running_by_job.push((&row.job_name, row.executions)),
        }
    }
    for (job, n) in running_by_job {
        let _ = writeln!(out, r#"batch_job_running{{job="{}"}} {n}"#, label(job));
    }
    steps(&mut out, &shown);
    match recorder() {
        Some(handle) => {
            handle.run_upkeep();
            out.push_str("# Runtime metrics of this process\n");
            out.push_str(&handle.render());
        }
        None => out.push_str(
            "# The runtime metrics of this process go to the recorder the program installed.\n",
        ),
    }
    Ok(out)
}
