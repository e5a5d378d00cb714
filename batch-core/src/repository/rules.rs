//! The launch rules, decided in one place from the executions an implementation finds:
//! already complete, already running (unless its owner is dead), not restartable.

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::execution::{BatchStatus, JobInstance};
use crate::params::JobParameters;
use crate::repository::error::LaunchError;
use crate::repository::owner;

/// What the launch rules need to know of an earlier execution of the instance.
#[derive(Debug, Clone)]
pub struct ExecutionSummary {
    /// JOB_EXECUTION_ID.
    pub id: i64,
    /// STATUS.
    pub status: BatchStatus,
    /// EXIT_MESSAGE (the owner of a running execution).
    pub exit_message: String,
    /// LAST_UPDATED (the owner's heartbeat).
    pub last_updated: Option<NaiveDateTime>,
    /// The step executions of this execution; only those of the instance's last
    /// execution are looked at (and need to be read).
    pub steps: Vec<StepSummary>,
}

/// What the launch rules need to know of a step execution of the last execution.
#[derive(Debug, Clone)]
pub struct StepSummary {
    /// STEP_EXECUTION_ID.
    pub id: i64,
    /// STEP_NAME.
    pub name: String,
    /// STATUS.
    pub status: BatchStatus,
    /// EXIT_MESSAGE (the owner of a running step).
    pub exit_message: String,
    /// LAST_UPDATED (each commit, and the owner's heartbeat).
    pub last_updated: Option<NaiveDateTime>,
}

/// The runs a launch found dead, with the reason: the caller marks them FAILED in the
/// same transaction before recording the restart.
#[derive(Debug, Default)]
pub struct DeadRuns {
    /// Running job executions whose owner is dead (their running steps with them).
    pub executions: Vec<(i64, String)>,
    /// Running steps of the last execution, itself ended, whose owner is dead.
    pub steps: Vec<(i64, String)>,
}

/// Applies the launch rules to the executions of an existing instance: a running one
/// refuses the launch (already running) unless its owner is dead, a COMPLETED one
/// refuses it (already complete, with or without identifying parameters), an
/// ABANDONED one refuses it (abandoned by an operator), an UNKNOWN one cannot be
/// restarted. In the last execution, as Spring's `SimpleJobLauncher` checks, a step
/// still running refuses the launch too (unless its owner is dead: an execution ended
/// by hand while its step's process died), and a step that ended UNKNOWN cannot be
/// restarted. Otherwise the instance restarts.
///
/// Returns the runs found dead, which the caller marks FAILED.
pub fn check_restartable(
    instance: &JobInstance,
    parameters: &JobParameters,
    executions: &[ExecutionSummary],
    now: NaiveDateTime,
    lease: Duration,
) -> std::result::Result<DeadRuns, LaunchError> {
    let mut dead = DeadRuns::default();
    for e in executions.iter().filter(|e| e.status.is_running()) {
        match owner::dead_owner_reason(&e.exit_message, e.last_updated, now, lease) {
            Some(reason) => dead.executions.push((e.id, reason)),
            None => {
                return Err(LaunchError::AlreadyRunning {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    execution_id: e.id,
                    status: e.status,
                });
            }
        }
    }
    for e in executions {
        match e.status {
            BatchStatus::Abandoned => {
                return Err(LaunchError::Abandoned {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    execution_id: e.id,
                });
            }
            BatchStatus::Completed => {
                return Err(LaunchError::AlreadyComplete {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    parameters: match parameters.identifying() {
                        p if p.is_empty() => "no identifying parameters".to_owned(),
                        p => format!("identifying parameters [{p}]"),
                    },
                });
            }
            BatchStatus::Unknown => {
                return Err(LaunchError::NotRestartable {
                    job_name: instance.job_name.clone(),
                    instance_id: instance.id,
                    reason: format!(
                        "execution {} ended in status UNKNOWN; mark it ABANDONED or FAILED first",
                        e.id
                    ),
                });
            }
            _ => {}
        }
    }
    let last = executions
        .iter()
        .max_by_key(|e| e.id)
        .filter(|e| !e.status.is_running());
    for step in last.iter().flat_map(|e| &e.steps) {
        let execution_id = last.map_or(0, |e| e.id);
        if step.status.is_running() {
            match owner::dead_owner_reason(&step.exit_message, step.last_updated, now, lease) {
                Some(reason) => dead.steps.push((step.id, reason)),
                None => {
                    return Err(LaunchError::StepStillRunning {
                        job_name: instance.job_name.clone(),
                        instance_id: instance.id,
                        execution_id,
                        step: step.name.clone(),
                        status: step.status,
                    });
                }
            }
        } else if step.status == BatchStatus::Unknown {
            return Err(LaunchError::NotRestartable {
                job_name: instance.job_name.clone(),
                instance_id: instance.id,
                reason: format!(
                    "step `{}` of execution {execution_id} ended in status UNKNOWN; mark it FAILED once its data is checked",
                    step.name
                ),
            });
        }
    }
    Ok(dead)
}

/// The exit message of an execution found dead at a launch.
pub(crate) fn died_message(reason: &str) -> String {
    format!(
        "the run was found dead at the next launch ({reason}); marked FAILED so the instance can restart"
    )
}
