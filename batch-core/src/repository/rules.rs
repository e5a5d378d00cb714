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
}

/// Applies the launch rules to the executions of an existing instance: a running one
/// refuses the launch (already running) unless its owner is dead, a COMPLETED one
/// refuses it (already complete, with or without identifying parameters), an
/// ABANDONED one refuses it (abandoned by an operator), an UNKNOWN one cannot be restarted; otherwise the instance restarts.
///
/// Returns the running executions whose owner is dead, with the reason: the caller
/// marks them FAILED in the same transaction before recording the restart.
pub fn check_restartable(
    instance: &JobInstance,
    parameters: &JobParameters,
    executions: &[ExecutionSummary],
    now: NaiveDateTime,
    lease: Duration,
) -> std::result::Result<Vec<(i64, String)>, LaunchError> {
    let mut dead = Vec::new();
    for e in executions.iter().filter(|e| e.status.is_running()) {
        match owner::dead_owner_reason(&e.exit_message, e.last_updated, now, lease) {
            Some(reason) => dead.push((e.id, reason)),
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
    Ok(dead)
}

/// The exit message of an execution found dead at a launch.
pub(crate) fn died_message(reason: &str) -> String {
    format!(
        "the run was found dead at the next launch ({reason}); marked FAILED so the instance can restart"
    )
}
