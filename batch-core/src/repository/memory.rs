//! A job repository kept in memory: for tests and benchmarks. It follows the same
//! rules as the database repositories (launch checks, VERSION), but nothing survives
//! the process.

use std::sync::Mutex;

use crate::context::ExecutionContext;
use crate::execution::{BatchStatus, ExitStatus, JobExecution, JobInstance, StepExecution, now};
use crate::params::JobParameters;
use crate::repository::contract::{BoxFuture, JobRepository, REMOTE_OWNER_PREFIX};
use crate::repository::database::ChunkTx;
use crate::repository::error::{LaunchError, RepositoryError};
use crate::repository::query::ExecutionQuery;
use crate::repository::retention::{PurgeReport, PurgeRequest};
use crate::repository::rules::{ExecutionSummary, StepSummary, check_restartable, died_message};

#[derive(Default)]
struct State {
    instances: Vec<JobInstance>,
    executions: Vec<JobExecution>,
    steps: Vec<StepExecution>,
    progress: std::collections::HashSet<(i64, String, String)>,
    /// The last ids given, as the databases' sequences keep them (a purge never
    /// makes an id come back).
    sequences: [i64; 3],
}

impl State {
    fn next_id(&mut self, sequence: usize) -> i64 {
        self.sequences[sequence] += 1;
        self.sequences[sequence]
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct InMemoryJobRepository {
    state: Mutex<State>,
}

impl InMemoryJobRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("in-memory repository lock"))
    }
}

fn update_versioned<T>(
    rows: &mut [T],
    id_of: impl Fn(&T) -> i64,
    version_of: impl Fn(&T) -> i64,
    updated: &T,
    what: &str,
) -> Result<usize, RepositoryError> {
    let id = id_of(updated);
    let pos = rows
        .iter()
        .position(|r| id_of(r) == id)
        .ok_or_else(|| RepositoryError::NotFound(format!("{what} {id}")))?;
    if version_of(&rows[pos]) != version_of(updated) {
        return Err(RepositoryError::OptimisticLock {
            what: format!("{what} {id}"),
            expected: version_of(updated),
        });
    }
    Ok(pos)
}

impl State {
    fn mark_dead(&mut self, execution_id: i64, message: &str) {
        let end = now();
        for e in self.executions.iter_mut().filter(|e| e.id == execution_id) {
            e.status = BatchStatus::Failed;
            e.exit_status = ExitStatus::failed().with_description(message);
            e.end_time = Some(end);
            e.version += 1;
        }
        for st in self
            .steps
            .iter_mut()
            .filter(|st| st.job_execution_id == execution_id && st.status.is_running())
        {
            st.status = BatchStatus::Failed;
            st.exit_status = ExitStatus::failed().with_description(message);
            st.end_time = Some(end);
            st.version += 1;
        }
    }

    fn mark_step_dead(&mut self, step_execution_id: i64, message: &str) {
        let end = now();
        for st in self
            .steps
            .iter_mut()
            .filter(|st| st.id == step_execution_id)
        {
            st.status = BatchStatus::Failed;
            st.exit_status = ExitStatus::failed().with_description(message);
            st.end_time = Some(end);
            st.last_updated = Some(end);
            st.version += 1;
        }
    }

    fn save_step(
        &mut self,
        step: &mut StepExecution,
        with_context: bool,
    ) -> Result<(), RepositoryError> {
        let pos = update_versioned(
            &mut self.steps,
            |s| s.id,
            |s| s.version,
            step,
            "step execution",
        )?;
        step.version += 1;
        step.last_updated = Some(now());
        let context = if with_context {
            step.context.clone()
        } else {
            self.steps[pos].context.clone()
        };
        self.steps[pos] = StepExecution {
            context,
            ..step.clone()
        };
        Ok(())
    }
}

impl JobRepository for InMemoryJobRepository {
    fn create_job_execution<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<JobExecution, LaunchError>> {
        Box::pin(async move {
            self.with(|s| {
                let key = parameters.job_key();
                let existing = s
                    .instances
                    .iter()
                    .find(|i| i.job_name == job_name && i.job_key == key)
                    .cloned();
                let (instance, context) = match existing {
                    Some(instance) => {
                        let summaries: Vec<_> = s
                            .executions
                            .iter()
                            .filter(|e| e.instance.id == instance.id)
                            .map(|e| ExecutionSummary {
                                id: e.id,
                                status: e.status,
                                exit_message: e.exit_status.description.clone(),
                                last_updated: e.last_updated,
                                steps: s
                                    .steps
                                    .iter()
                                    .filter(|st| st.job_execution_id == e.id)
                                    .map(|st| StepSummary {
                                        id: st.id,
                                        name: st.step_name.clone(),
                                        status: st.status,
                                        exit_message: st.exit_status.description.clone(),
                                        last_updated: st.last_updated,
                                    })
                                    .collect(),
                            })
                            .collect();
                        let dead = check_restartable(
                            &instance,
                            parameters,
                            &summaries,
                            now(),
                            self.lease(),
                        )?;
                        for (id, reason) in dead.executions {
                            s.mark_dead(id, &died_message(&reason));
                        }
                        for (id, reason) in dead.steps {
                            s.mark_step_dead(id, &died_message(&reason));
                        }
                        let context = s
                            .executions
                            .iter()
                            .filter(|e| e.instance.id == instance.id)
                            .max_by_key(|e| e.id)
                            .map(|e| e.context.clone())
                            .unwrap_or_default();
                        (instance, context)
                    }
                    None => {
                        let instance = JobInstance {
                            id: s.next_id(0),
                            version: 0,
                            job_name: job_name.to_owned(),
                            job_key: key,
                        };
                        s.instances.push(instance.clone());
                        (instance, ExecutionContext::new())
                    }
                };
                let execution = JobExecution {
                    id: s.next_id(1),
                    version: 0,
                    instance,
                    parameters: parameters.clone(),
                    create_time: now(),
                    start_time: None,
                    end_time: None,
                    status: BatchStatus::Starting,
                    exit_status: ExitStatus::unknown(),
                    last_updated: Some(now()),
                    context,
                    step_executions: Vec::new(),
                    failures: Vec::new(),
                };
                s.executions.push(execution.clone());
                Ok(execution)
            })
        })
    }

    fn update_job_execution<'a>(
        &'a self,
        execution: &'a mut JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let pos = update_versioned(
                    &mut s.executions,
                    |e| e.id,
                    |e| e.version,
                    execution,
                    "job execution",
                )?;
                execution.version += 1;
                execution.last_updated = Some(now());
                let context = s.executions[pos].context.clone();
                s.executions[pos] = JobExecution {
                    context,
                    step_executions: Vec::new(),
                    ..execution.clone()
                };
                Ok(())
            })
        })
    }

    fn update_job_context<'a>(
        &'a self,
        execution: &'a JobExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let row = s
                    .executions
                    .iter_mut()
                    .find(|e| e.id == execution.id)
                    .ok_or_else(|| {
                        RepositoryError::NotFound(format!("job execution {}", execution.id))
                    })?;
                row.context = execution.context.clone();
                Ok(())
            })
        })
    }

    fn add_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                step.id = s.next_id(2);
                step.version = 0;
                s.steps.push(step.clone());
                Ok(())
            })
        })
    }

    fn update_step_execution<'a>(
        &'a self,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move { self.with(|s| s.save_step(step, false)) })
    }

    fn update_step_context<'a>(
        &'a self,
        step: &'a StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let row = s
                    .steps
                    .iter_mut()
                    .find(|r| r.id == step.id)
                    .ok_or_else(|| {
                        RepositoryError::NotFound(format!("step execution {}", step.id))
                    })?;
                row.context = step.context.clone();
                Ok(())
            })
        })
    }

    fn begin_chunk(&self) -> BoxFuture<'_, Result<ChunkTx, RepositoryError>> {
        Box::pin(async { Ok(ChunkTx::none()) })
    }

    fn commit_chunk<'a>(
        &'a self,
        _tx: ChunkTx,
        step: &'a mut StepExecution,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            let dirty = step.context.is_dirty();
            self.with(|s| s.save_step(step, dirty))?;
            step.context.clear_dirty();
            Ok(())
        })
    }

    fn rollback_chunk(&self, _tx: ChunkTx) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async { Ok(()) })
    }

    fn last_step_execution<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StepExecution>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let executions: Vec<i64> = s
                    .executions
                    .iter()
                    .filter(|e| e.instance.id == instance.id)
                    .map(|e| e.id)
                    .collect();
                Ok(s.steps
                    .iter()
                    .filter(|st| {
                        st.step_name == step_name && executions.contains(&st.job_execution_id)
                    })
                    .max_by_key(|st| (st.create_time, st.id))
                    .cloned())
            })
        })
    }

    fn step_execution_count<'a>(
        &'a self,
        instance: &'a JobInstance,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<u64, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                Ok(s.steps
                    .iter()
                    .filter(|st| {
                        st.step_name == step_name
                            && s.executions.iter().any(|e| {
                                e.id == st.job_execution_id && e.instance.id == instance.id
                            })
                    })
                    .count() as u64)
            })
        })
    }

    fn find_job_instance<'a>(
        &'a self,
        job_name: &'a str,
        parameters: &'a JobParameters,
    ) -> BoxFuture<'a, Result<Option<JobInstance>, RepositoryError>> {
        Box::pin(async move {
            let key = parameters.job_key();
            self.with(|s| {
                Ok(s.instances
                    .iter()
                    .find(|i| i.job_name == job_name && i.job_key == key)
                    .cloned())
            })
        })
    }

    fn item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, RepositoryError>> {
        Box::pin(async move {
            Ok(self.with(|s| {
                s.progress
                    .iter()
                    .filter(|(i, st, _)| *i == instance_id && st == step_name)
                    .map(|(_, _, k)| k.clone())
                    .collect()
            }))
        })
    }

    fn record_item_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_key: &'a str,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                s.progress
                    .insert((instance_id, step_name.to_owned(), item_key.to_owned()))
            });
            Ok(())
        })
    }

    fn record_items_progress<'a>(
        &'a self,
        instance_id: i64,
        step_name: &'a str,
        item_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                for key in item_keys {
                    s.progress
                        .insert((instance_id, step_name.to_owned(), key.clone()));
                }
            });
            Ok(())
        })
    }

    fn heartbeat(&self, execution_id: i64) -> BoxFuture<'_, Result<(), RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                for e in s.executions.iter_mut().filter(|e| e.id == execution_id) {
                    e.last_updated = Some(now());
                }
                for st in s
                    .steps
                    .iter_mut()
                    .filter(|st| st.job_execution_id == execution_id && st.status.is_running())
                    .filter(|st| !st.exit_status.description.starts_with(REMOTE_OWNER_PREFIX))
                {
                    st.last_updated = Some(now());
                }
            });
            Ok(())
        })
    }

    fn job_executions<'a>(
        &'a self,
        instance: &'a JobInstance,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let mut out: Vec<JobExecution> = s
                    .executions
                    .iter()
                    .filter(|e| e.instance.id == instance.id)
                    .cloned()
                    .collect();
                out.sort_by_key(|e| std::cmp::Reverse(e.id));
                for e in &mut out {
                    e.step_executions = s
                        .steps
                        .iter()
                        .filter(|st| st.job_execution_id == e.id)
                        .cloned()
                        .collect();
                }
                Ok(out)
            })
        })
    }

    fn job_names(&self) -> BoxFuture<'_, Result<Vec<String>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let mut names: Vec<String> =
                    s.instances.iter().map(|i| i.job_name.clone()).collect();
                names.sort();
                names.dedup();
                Ok(names)
            })
        })
    }

    fn find_job_executions<'a>(
        &'a self,
        query: &'a ExecutionQuery,
    ) -> BoxFuture<'a, Result<Vec<JobExecution>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                Ok(s.executions
                    .iter()
                    .rev()
                    .filter(|e| {
                        query.matches(
                            &e.instance.job_name,
                            e.instance.id,
                            e.status,
                            e.create_time,
                            e.id,
                            &e.parameters,
                        )
                    })
                    .take(query.limit)
                    .map(|e| JobExecution {
                        parameters: JobParameters::new(),
                        context: ExecutionContext::new(),
                        step_executions: Vec::new(),
                        ..e.clone()
                    })
                    .collect())
            })
        })
    }

    fn job_execution(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, Result<Option<JobExecution>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                Ok(s.executions
                    .iter()
                    .find(|e| e.id == execution_id)
                    .map(|e| JobExecution {
                        step_executions: s
                            .steps
                            .iter()
                            .filter(|st| st.job_execution_id == e.id)
                            .cloned()
                            .collect(),
                        ..e.clone()
                    }))
            })
        })
    }

    fn execution_statistics(
        &self,
    ) -> BoxFuture<'_, Result<Vec<crate::repository::statistics::StatusStatistics>, RepositoryError>>
    {
        use crate::repository::statistics::StatusStatistics;
        Box::pin(async move {
            self.with(|s| {
                let mut rows: Vec<StatusStatistics> = Vec::new();
                for e in &s.executions {
                    let row = match rows
                        .iter_mut()
                        .find(|r| r.job_name == e.instance.job_name && r.status == e.status)
                    {
                        Some(row) => row,
                        None => {
                            rows.push(StatusStatistics {
                                job_name: e.instance.job_name.clone(),
                                status: e.status,
                                executions: 0,
                                timed: 0,
                                total_millis: 0,
                            });
                            rows.last_mut().expect("pushed")
                        }
                    };
                    row.executions += 1;
                    if let (Some(start), Some(end)) = (e.start_time, e.end_time) {
                        row.timed += 1;
                        row.total_millis += (end - start).num_milliseconds();
                    }
                }
                rows.sort_by(|a, b| (&a.job_name, a.status).cmp(&(&b.job_name, b.status)));
                Ok(rows)
            })
        })
    }

    fn job_execution_status(
        &self,
        execution_id: i64,
    ) -> BoxFuture<'_, Result<Option<(BatchStatus, i64)>, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                Ok(s.executions
                    .iter()
                    .find(|e| e.id == execution_id)
                    .map(|e| (e.status, e.version)))
            })
        })
    }

    fn purge<'a>(
        &'a self,
        request: &'a PurgeRequest,
    ) -> BoxFuture<'a, Result<PurgeReport, RepositoryError>> {
        Box::pin(async move {
            self.with(|s| {
                let kept_instance = |s: &State, instance: i64| {
                    let mut of_instance = s.executions.iter().filter(|e| e.instance.id == instance);
                    let running = of_instance.clone().any(|e| e.status.is_running());
                    let last = of_instance.by_ref().max_by_key(|e| e.id).map(|e| e.status);
                    running
                        || (!request.include_restartable
                            && matches!(last, Some(BatchStatus::Failed | BatchStatus::Stopped)))
                };
                let doomed: Vec<(i64, i64)> = s
                    .executions
                    .iter()
                    .filter(|e| {
                        request.wants(e.status)
                            && e.end_time.is_some_and(|t| t <= request.ended_before)
                            && request
                                .job_name
                                .as_deref()
                                .is_none_or(|j| j == e.instance.job_name)
                            && !kept_instance(s, e.instance.id)
                    })
                    .map(|e| (e.id, e.instance.id))
                    .collect();
                let mut report = PurgeReport::default();
                for (id, _) in &doomed {
                    s.executions.retain(|e| e.id != *id);
                    s.steps.retain(|st| st.job_execution_id != *id);
                    report.executions += 1;
                }
                for (_, instance) in &doomed {
                    if s.instances.iter().any(|i| i.id == *instance)
                        && !s.executions.iter().any(|e| e.instance.id == *instance)
                    {
                        s.instances.retain(|i| i.id != *instance);
                        s.progress.retain(|(i, _, _)| i != instance);
                        report.instances += 1;
                    }
                }
                Ok(report)
            })
        })
    }
}
