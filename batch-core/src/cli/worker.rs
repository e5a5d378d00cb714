//! The `worker` subcommand: runs remote partitions of this binary's job, claimed from
//! the job repository, until asked to stop (or, with `--exit-when-idle`, until
//! nothing is left to do).
//!
//! Each claim is one short transaction (see `JobRepository::claim_partition`); the
//! partition then runs with the step of this very binary, through the lifecycle every
//! step shares, its row's LAST_UPDATED refreshed a few times per lease. SIGTERM (or
//! Ctrl-C, SIGHUP) lets the current chunk finish, then hands the partition back to
//! the other workers, waiting again with its counters and context as its last commit
//! left them. Idle means: nothing to claim, and no execution of the job running
//! (whose partitions may still come or whose workers may still die), for a few
//! seconds in a row once the worker has seen an execution of its job; before that,
//! for the whole `--idle-wait`, since workers and their launcher start in any order
//! (pods of two Kubernetes Jobs are scheduled and pulled independently).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::execution::{BatchStatus, ExitStatus};
use crate::job::Job;
use crate::launch::JobLauncher;
use crate::repository::{AWAITING_WORKER, JobRepository, PartitionClaim, owner};
use crate::step::StopSignal;
use crate::step::partition::{PartitionRun, worker_of};

/// How long a worker waits between claims that found nothing.
const POLL: Duration = Duration::from_millis(500);
/// How long `--exit-when-idle` must find nothing to do, once the worker has seen an
/// execution of its job, before it exits.
const IDLE_SETTLE: Duration = Duration::from_secs(3);

/// When a worker exits on its own (`--exit-when-idle`, `--idle-wait`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    /// Exit once nothing is left to do, rather than wait for the next execution.
    pub(super) exit: bool,
    /// How long to wait for a first execution of the job before exiting.
    pub(super) first_wait: Duration,
}

/// Claims and runs partitions until stopped or idle; the exit status.
pub(super) async fn work(launcher: JobLauncher, job: Job, idle: Idle) -> ExitCode {
    let stop = launcher.stop_signal();
    let signals = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Some(name) = super::stop_request().await {
                eprintln!(
                    "\n{name}: stop requested; the worker finishes its current chunk and hands the partition back (a second signal kills)"
                );
                stop.stop();
                if super::stop_request().await.is_some() {
                    std::process::exit(130);
                }
            }
        })
    };
    let outcome = claim_loop(&launcher, &job, &stop, idle).await;
    signals.abort();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.report());
            ExitCode::from(1)
        }
    }
}

async fn claim_loop(
    launcher: &JobLauncher,
    job: &Job,
    stop: &StopSignal,
    idle: Idle,
) -> Result<()> {
    let repository = launcher.repository().clone();
    let me = owner::current_owner();
    let mut idle_since: Option<Instant> = None;
    // Until the worker has seen its job running, an empty repository may only mean
    // that the launcher has not started yet.
    let mut seen_the_job = false;
    while !stop.is_stopped() {
        match repository.claim_partition(job.name(), &me).await? {
            PartitionClaim::Claimed {
                step_execution_id,
                job_execution_id,
                reclaimed_from,
            } => {
                idle_since = None;
                seen_the_job = true;
                if let Some(reason) = &reclaimed_from {
                    println!(
                        "reclaimed step execution {step_execution_id}: its worker is dead ({reason})"
                    );
                }
                run_claimed(
                    launcher,
                    job,
                    stop,
                    job_execution_id,
                    step_execution_id,
                    reclaimed_from.is_some(),
                )
                .await?;
            }
            PartitionClaim::Nothing { running_executions } => {
                if running_executions > 0 {
                    seen_the_job = true;
                    idle_since = None;
                } else if idle.exit {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    let settle = if seen_the_job {
                        IDLE_SETTLE
                    } else {
                        idle.first_wait
                    };
                    if since.elapsed() >= settle {
                        if seen_the_job {
                            println!(
                                "no partition left and no execution of `{}` running: the worker exits",
                                job.name()
                            );
                        } else {
                            println!(
                                "no execution of `{}` started within {}s (--idle-wait): the worker exits",
                                job.name(),
                                idle.first_wait.as_secs()
                            );
                        }
                        return Ok(());
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.stopped() => {}
                }
            }
        }
    }
    Ok(())
}

/// Why a worker could not run a partition it claimed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The execution the claim names is no longer in the repository.
    #[error("{what} execution {id} disappeared from the job repository after it was claimed")]
    ExecutionGone {
        /// `job` or `step`.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The claimed partition belongs to a step this binary's job does not have.
    #[error(
        "claimed partition `{partition}` (step execution {step_execution_id}), but this binary's job `{job}` has no partitioned step of that name: run the workers from the binary that launched the job"
    )]
    UnknownPartition {
        /// The partition's step name.
        partition: String,
        /// Its step execution.
        step_execution_id: i64,
        /// This binary's job.
        job: String,
    },
}

/// Runs one claimed partition to its end, or hands it back when the worker is asked
/// to stop.
async fn run_claimed(
    launcher: &JobLauncher,
    job: &Job,
    stop: &StopSignal,
    job_execution_id: i64,
    step_execution_id: i64,
    reclaimed: bool,
) -> Result<()> {
    let repository = launcher.repository().clone();
    let execution =
        repository
            .job_execution(job_execution_id)
            .await?
            .ok_or(WorkerError::ExecutionGone {
                what: "job",
                id: job_execution_id,
            })?;
    let step = execution
        .step_executions
        .iter()
        .find(|s| s.id == step_execution_id)
        .cloned()
        .ok_or(WorkerError::ExecutionGone {
            what: "step",
            id: step_execution_id,
        })?;
    let Some(worker) = worker_of(job, &step.step_name) else {
        let problem = WorkerError::UnknownPartition {
            partition: step.step_name.clone(),
            step_execution_id,
            job: job.name().to_string(),
        };
        hand_back(repository.as_ref(), step).await?;
        return Err(Error::new(problem));
    };
    let _heartbeat = heartbeat(repository.clone(), step_execution_id);
    let restart = reclaimed || step.counts.commit > 0;
    let run = PartitionRun {
        worker: worker.clone(),
        parameters: execution.parameters.clone(),
        job_context: crate::context::JobContext::new(execution.context.clone()),
        resources: launcher.step_resources().clone(),
        repository: repository.clone(),
        listeners: launcher.step_listeners().clone(),
        stop: stop.clone(),
        job_name: execution.instance.job_name.clone(),
        job_instance_id: execution.instance.id,
    };
    let name = step.step_name.clone();
    let ended = match run.execute(step, restart).await {
        Ok(ended) => ended,
        // The partition's end could not be saved (its row changed under it: the job's
        // launcher died and a new launch marked it FAILED, say): the repository says
        // what happened to it, and the worker goes on with the next claim.
        Err(e) => {
            eprintln!("{name}: {}", e.report());
            return Ok(());
        }
    };
    if ended.status == BatchStatus::Stopped && stop.is_stopped() {
        let name = ended.step_name.clone();
        hand_back(repository.as_ref(), ended).await?;
        println!("{name}: handed back at its last commit; another worker resumes it there");
        return Ok(());
    }
    let c = &ended.counts;
    println!(
        "{} (step execution {}): {} read={} write={} filter={} commit={}",
        ended.step_name, ended.id, ended.status, c.read, c.write, c.filter, c.commit
    );
    Ok(())
}

/// Makes a partition wait for a worker again, its counters and context kept.
async fn hand_back(
    repository: &dyn JobRepository,
    mut step: crate::execution::StepExecution,
) -> Result<()> {
    step.status = BatchStatus::Starting;
    step.end_time = None;
    step.exit_status = ExitStatus::executing().with_description(AWAITING_WORKER);
    repository.update_step_execution(&mut step).await?;
    Ok(())
}

/// Stops the heartbeat task when dropped.
struct Beating(tokio::task::JoinHandle<()>);

impl Drop for Beating {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn heartbeat(repository: Arc<dyn JobRepository>, step_execution_id: i64) -> Beating {
    let every = (repository.lease() / 4).max(Duration::from_millis(50));
    Beating(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = repository.step_heartbeat(step_execution_id).await {
                tracing::warn!(error = %e, "the partition's heartbeat failed");
            }
        }
    }))
}
