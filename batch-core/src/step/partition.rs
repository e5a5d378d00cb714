//! Partitioned steps (Spring's `PartitionStep`): a [`Partitioner`] splits the work
//! into partitions, each its own step execution named `STEP:partitionN` with its own
//! context (the partitioner's keys, then the worker step's reader state) and counters;
//! the manager step execution, `STEP`, sums their counters and fails when one fails.
//!
//! The partitions run on tasks of this process, at most the concurrency at once
//! (local), or are left to worker processes sharing the job repository (remote): the
//! manager then creates them waiting for a worker, polls their statuses without
//! holding a transaction, and sums them once all have ended. A worker (the runner's
//! `worker` subcommand) claims one with `SELECT … FOR UPDATE SKIP LOCKED`, runs the
//! partition's step from the same binary, heartbeats it; a worker that dies loses its
//! partition once its process is seen gone or its heartbeat is older than the lease,
//! and the next claim resumes that same step execution from its last commit, its
//! committed counters included.
//!
//! A restart runs only the partitions whose last execution did not complete, each
//! with the context its last commit left: the manager keeps the number of partitions in
//! its own context (`batch.partition.count`), so a restart never asks the partitioner
//! again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::context::{ExecutionContext, JobContext};
use crate::error::{Cause, Error, Result};
use crate::execution::{BatchStatus, ExitStatus, JobInstance, StepCounts, StepExecution, now};
use crate::file::input::Files;
use crate::item::StepIdentity;
use crate::job::Job;
use crate::params::JobParameters;
use crate::repository::{AWAITING_WORKER, BoxFuture, DbPool, JobRepository};
use crate::step::boundary::{StepInterrupted, StepRunner, StepRuntime, StopSignal};
use crate::step::builder::{IntoStep, StepDef};
use crate::step::lifecycle::execute_step;
use crate::step::listener::StepListeners;
use crate::step::scope::{FromStepScope, InjectionError, ResourceNeed, Resources, StepScope};

/// The manager's context key holding how many partitions the step was split into.
pub const PARTITION_COUNT: &str = "batch.partition.count";
/// [`KeyRangePartitioner`]'s context key: the smallest key of the partition.
pub const MIN_VALUE: &str = "minValue";
/// [`KeyRangePartitioner`]'s context key: the largest key of the partition.
pub const MAX_VALUE: &str = "maxValue";
/// [`FilePartitioner`]'s context key: the partition's file.
pub const FILE_NAME: &str = "fileName";

/// How often a remote manager reads its partitions' statuses.
const POLL: Duration = Duration::from_millis(250);

/// The name of partition `index` of step `step` (Spring's `step:partition0`).
pub fn partition_name(step: &str, index: usize) -> String {
    format!("{step}:partition{index}")
}

/// Splits a step's work into partitions, each described by its step context (Spring's
/// `Partitioner`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a partitioner",
    label = "this is not a partitioner",
    note = "a partitioned step is given its partitioner: `KeyRangePartitioner::new(table, column)`, `FilePartitioner::pattern(…)`, or a type implementing `Partitioner`"
)]
pub trait Partitioner: Send + Sync {
    /// The contexts of the partitions, from the step's scope and the grid size asked
    /// for (a hint: a partitioner may give fewer, one per file, say).
    fn partition<'a>(
        &'a self,
        scope: &'a StepScope,
        grid_size: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionContext>>>;

    /// The shared resources it takes from the launcher.
    fn needs(&self) -> Vec<ResourceNeed> {
        Vec::new()
    }
}

/// Key ranges over an integer column of a table (Spring's `ColumnRangePartitioner`
/// sample): `MIN..=MAX` of the column cut into `grid_size` ranges of equal width, each
/// partition's bounds in its context as [`MIN_VALUE`] and [`MAX_VALUE`] (inclusive).
/// The table is read through the launcher's [`DbPool`]. An empty table gives no
/// partition.
#[derive(Debug, Clone)]
pub struct KeyRangePartitioner {
    table: String,
    column: String,
}

impl KeyRangePartitioner {
    /// Ranges of `column` of `table` (both SQL identifiers, written as they are).
    pub fn new(table: impl Into<String>, column: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            column: column.into(),
        }
    }

    /// Cuts `min..=max` into at most `grid` ranges of equal width.
    fn ranges(min: i64, max: i64, grid: usize) -> Vec<(i64, i64)> {
        let grid = grid.max(1) as i128;
        let span = max as i128 - min as i128 + 1;
        let width = (span + grid - 1) / grid;
        let mut ranges = Vec::new();
        let mut lo = min as i128;
        while lo <= max as i128 {
            let hi = (lo + width - 1).min(max as i128);
            ranges.push((lo as i64, hi as i64));
            lo = hi + 1;
        }
        ranges
    }
}

impl Partitioner for KeyRangePartitioner {
    fn partition<'a>(
        &'a self,
        scope: &'a StepScope,
        grid_size: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionContext>>> {
        Box::pin(async move {
            let pool: DbPool = scope.resource()?;
            let sql = format!(
                "SELECT MIN({c}), MAX({c}) FROM {t}",
                c = self.column,
                t = self.table
            );
            let bounds = min_max(&pool, &sql).await.map_err(|e| {
                Error::new(PartitionError::Bounds {
                    table: self.table.clone(),
                    column: self.column.clone(),
                    cause: Cause::from(e),
                })
            })?;
            let Some((min, max)) = bounds else {
                return Ok(Vec::new());
            };
            Self::ranges(min, max, grid_size)
                .into_iter()
                .map(|(lo, hi)| {
                    let mut context = ExecutionContext::new();
                    context.put(MIN_VALUE, &lo)?;
                    context.put(MAX_VALUE, &hi)?;
                    Ok(context)
                })
                .collect()
        })
    }

    fn needs(&self) -> Vec<ResourceNeed> {
        vec![ResourceNeed::of::<DbPool>()]
    }
}

/// `SELECT MIN(..), MAX(..)` on whichever database: `None` for an empty table.
async fn min_max(pool: &DbPool, sql: &str) -> Result<Option<(i64, i64)>> {
    type Bounds = (Option<i64>, Option<i64>);
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let (min, max): Bounds = match pool {
        #[cfg(feature = "sqlite")]
        DbPool::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await?,
        #[cfg(feature = "postgres")]
        DbPool::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await?,
        #[cfg(feature = "mysql")]
        DbPool::MySql(p) => sqlx::query_as(sql).fetch_one(p).await?,
    };
    Ok(min.zip(max))
}

/// One partition per file of a multi-file input (Spring's `MultiResourcePartitioner`):
/// the files of a list or of a pattern (`in/orders-*.csv`), in name order, each
/// partition's path in its context as [`FILE_NAME`]. No file gives no partition.
#[derive(Debug, Clone)]
pub struct FilePartitioner {
    files: Files,
}

impl FilePartitioner {
    /// The files matching `pattern` (`*` and `?` in the file name).
    pub fn pattern(pattern: impl Into<PathBuf>) -> Self {
        Self {
            files: Files::Pattern(pattern.into()),
        }
    }

    /// These files.
    pub fn files<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Self {
        Self {
            files: Files::List(paths.into_iter().map(Into::into).collect()),
        }
    }
}

impl Partitioner for FilePartitioner {
    fn partition<'a>(
        &'a self,
        _scope: &'a StepScope,
        _grid_size: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionContext>>> {
        Box::pin(async move {
            self.files
                .resolve()?
                .into_iter()
                .map(|path| {
                    let mut context = ExecutionContext::new();
                    context.put(FILE_NAME, &path.to_string_lossy())?;
                    Ok(context)
                })
                .collect()
        })
    }
}

/// The key range of a partition that [`KeyRangePartitioner`] made, read from the
/// partition's context: the worker step takes it as an argument (`range: KeyRange`)
/// instead of reading [`MIN_VALUE`] and [`MAX_VALUE`] itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// The smallest key of the partition.
    pub min: i64,
    /// The largest key of the partition (inclusive).
    pub max: i64,
}

impl FromStepScope for KeyRange {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(Self {
            min: partition_key(scope, MIN_VALUE, "KeyRange", "KeyRangePartitioner")?,
            max: partition_key(scope, MAX_VALUE, "KeyRange", "KeyRangePartitioner")?,
        })
    }
}

/// The file of a partition that [`FilePartitioner`] made, read from the partition's
/// context: the worker step takes it as an argument (`file: PartitionFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFile(pub PathBuf);

impl FromStepScope for PartitionFile {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        let path: String = partition_key(scope, FILE_NAME, "PartitionFile", "FilePartitioner")?;
        Ok(Self(PathBuf::from(path)))
    }
}

impl std::ops::Deref for PartitionFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

/// A key a partitioner put in the partition's context; its absence means the step
/// does not run as a partition of that partitioner.
fn partition_key<T: serde::de::DeserializeOwned>(
    scope: &StepScope,
    key: &'static str,
    argument: &'static str,
    partitioner: &'static str,
) -> Result<T> {
    let step = || scope.identity().step_name.clone();
    match scope.step_context().get::<T>(key) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Error::new(PartitionError::NotAPartition {
            step: step(),
            argument,
            key,
            partitioner,
        })),
        Err(cause) => Err(Error::new(InjectionError {
            step: step(),
            problem: format!("its `{argument}` argument: {cause}"),
        })),
    }
}

/// The job repository, shared with the tasks that run partitions (the launcher adds
/// it to every step's resources).
#[derive(Clone)]
pub(crate) struct SharedRepository(pub(crate) Arc<dyn JobRepository>);

/// A number given in the builder or by a job parameter.
#[derive(Debug, Clone)]
struct Setting<T> {
    value: T,
    param: Option<String>,
}

impl<T: crate::params::FromParamValue + Clone> Setting<T> {
    fn get(&self, parameters: &JobParameters, what: &str) -> Result<T> {
        match &self.param {
            Some(name) if parameters.get(name).is_some() => parameters.get_as(name).map_err(|e| {
                Error::new(PartitionError::Setting {
                    what: what.to_string(),
                    cause: e,
                })
            }),
            _ => Ok(self.value.clone()),
        }
    }
}

/// Builds a partitioned step: the manager named `name`, whose partitions run `worker`
/// (its reader, processor and writer built from each partition's context, e.g.
/// [`MIN_VALUE`] through `scope.step_context()`).
///
/// ```
/// # use batch_core::prelude::*;
/// # use batch_core::step::partition::{KeyRangePartitioner, Partition};
/// # use batch_core::step::StepBuilder;
/// # let copy_range = StepBuilder::new("copyRange").tasklet(|_| async { Ok(|_: &mut TaskletContext| Ok::<_, Error>(RepeatStatus::Finished)) });
/// let step = Partition::new("copyStep", copy_range, KeyRangePartitioner::new("source", "id"))
///     .grid_size(4)
///     .grid_size_param("partitions")
///     .remote_param("remote");
/// ```
pub struct Partition {
    name: String,
    worker: StepDef,
    partitioner: Arc<dyn Partitioner>,
    grid: Setting<i64>,
    concurrency: Option<usize>,
    remote: Setting<bool>,
}

impl Partition {
    /// A manager step `name` splitting its work with `partitioner`, each partition
    /// running `worker`; grid size 1, local, until said otherwise.
    pub fn new(name: &str, worker: impl IntoStep, partitioner: impl Partitioner + 'static) -> Self {
        Self {
            name: name.to_owned(),
            worker: worker.into_step(),
            partitioner: Arc::new(partitioner),
            grid: Setting {
                value: 1,
                param: None,
            },
            concurrency: None,
            remote: Setting {
                value: false,
                param: None,
            },
        }
    }

    /// How many partitions to ask the partitioner for (Spring's `gridSize`).
    pub fn grid_size(mut self, size: usize) -> Self {
        self.grid.value = size.max(1) as i64;
        self
    }

    /// Takes the grid size from the job parameter `name` when the launch gives it
    /// (`partitions=8,long`).
    pub fn grid_size_param(mut self, name: &str) -> Self {
        self.grid.param = Some(name.to_owned());
        self
    }

    /// How many partitions run at once in this process (default: the grid size).
    pub fn concurrency(mut self, tasks: usize) -> Self {
        self.concurrency = Some(tasks.max(1));
        self
    }

    /// Leaves the partitions to worker processes (`NAME --db URL worker`) instead of
    /// running them here.
    pub fn remote(mut self, remote: bool) -> Self {
        self.remote.value = remote;
        self
    }

    /// Takes [`remote`](Self::remote) from the job parameter `name` when the launch
    /// gives it (`remote=true,bool`).
    pub fn remote_param(mut self, name: &str) -> Self {
        self.remote.param = Some(name.to_owned());
        self
    }

    /// The configured step.
    pub fn build(self) -> StepDef {
        let mut needs: Vec<ResourceNeed> = self.worker.needs().to_vec();
        for need in self.partitioner.needs() {
            if !needs.contains(&need) {
                needs.push(need);
            }
        }
        StepDef {
            name: self.name.as_str().into(),
            start_limit: u32::MAX,
            allow_start_if_complete: false,
            listeners: StepListeners::default(),
            runner: Arc::new(PartitionRunner {
                worker: self.worker,
                partitioner: self.partitioner,
                grid: self.grid,
                concurrency: self.concurrency,
                remote: self.remote,
            }),
            promote: Arc::from(Vec::<String>::new()),
            needs: needs.into(),
        }
    }
}

impl IntoStep for Partition {
    fn into_step(self) -> StepDef {
        self.build()
    }
}

/// Partitions of a partitioned step that failed.
#[derive(Debug, thiserror::Error)]
#[error("partitioned step `{step}`: {} of its partitions failed: {}", .failed.len(), .failed.join("; "))]
pub struct PartitionsFailed {
    /// The manager step.
    pub step: String,
    /// Each failed partition's name and exit description.
    pub failed: Vec<String>,
}

struct PartitionRunner {
    worker: StepDef,
    partitioner: Arc<dyn Partitioner>,
    grid: Setting<i64>,
    concurrency: Option<usize>,
    remote: Setting<bool>,
}

/// A partition this run executes: its step execution, created, and whether it
/// resumes an earlier one's context.
struct Planned {
    execution: StepExecution,
    restart: bool,
}

impl StepRunner for PartitionRunner {
    fn run<'a>(&'a self, scope: StepScope, rt: StepRuntime<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.manage(scope, rt))
    }

    fn partition_worker(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(&self.worker)
    }
}

impl PartitionRunner {
    async fn manage(&self, scope: StepScope, rt: StepRuntime<'_>) -> Result<()> {
        let parameters = scope.parameters();
        let grid = self.grid.get(parameters, "grid size")?.max(1) as usize;
        let remote = self.remote.get(parameters, "remote setting")?;
        let repository = rt.repository;
        if remote
            && repository
                .pool()
                .is_none_or(|p| p.kind() == crate::repository::DbKind::Sqlite)
        {
            return Err(repository.remote_unsupported().into());
        }
        let manager = rt.execution.step_name.clone();
        let planned = self
            .plan(&scope, &mut *rt.execution, repository, grid, remote)
            .await?;
        let ended = if remote {
            wait_for_workers(&planned, &rt, repository).await?
        } else {
            let shared: SharedRepository = scope.resource()?;
            let concurrency = self.concurrency.unwrap_or(grid);
            self.run_here(planned, &scope, &rt, shared, concurrency)
                .await?
        };
        let mut counts = StepCounts::default();
        for e in &ended {
            add(&mut counts, &e.counts);
        }
        rt.execution.counts = counts;
        let failed: Vec<String> = ended
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    BatchStatus::Failed | BatchStatus::Unknown | BatchStatus::Abandoned
                )
            })
            .map(|e| {
                format!(
                    "{} ({}): {}",
                    e.step_name, e.status, e.exit_status.description
                )
            })
            .collect();
        if !failed.is_empty() {
            return Err(Error::new(PartitionsFailed {
                step: manager,
                failed,
            }));
        }
        if ended.iter().any(|e| e.status != BatchStatus::Completed) {
            return Err(Error::new(StepInterrupted(manager)));
        }
        Ok(())
    }

    /// Creates the step executions of the partitions this run executes: all of them
    /// on the first run, those that did not complete on a restart.
    async fn plan(
        &self,
        scope: &StepScope,
        manager: &mut StepExecution,
        repository: &dyn JobRepository,
        grid: usize,
        remote: bool,
    ) -> Result<Vec<Planned>> {
        let identity = scope.identity();
        let instance = JobInstance {
            id: identity.job_instance_id,
            version: 0,
            job_name: identity.job_name.clone(),
            job_key: String::new(),
        };
        let mut planned = Vec::new();
        let exit = if remote {
            ExitStatus::executing().with_description(AWAITING_WORKER)
        } else {
            ExitStatus::executing()
        };
        let new_execution = |name: String, context: ExecutionContext| StepExecution {
            id: 0,
            version: 0,
            step_name: name,
            job_execution_id: manager.job_execution_id,
            create_time: now(),
            start_time: None,
            end_time: None,
            status: BatchStatus::Starting,
            counts: StepCounts::default(),
            exit_status: exit.clone(),
            last_updated: None,
            context,
            failures: Vec::new(),
        };
        match manager.context.get::<u64>(PARTITION_COUNT)? {
            Some(count) => {
                for i in 0..count as usize {
                    let name = partition_name(&manager.step_name, i);
                    let last = repository.last_step_execution(&instance, &name).await?;
                    match last {
                        Some(last) if last.status == BatchStatus::Completed => {
                            tracing::info!(partition = %name, "partition already complete; not run again");
                        }
                        Some(last) if last.status == BatchStatus::Unknown => {
                            return Err(Error::new(crate::step::lifecycle::StepUnknown {
                                step: name,
                            }));
                        }
                        Some(last) => {
                            let mut context = last.context.clone();
                            context.clear_dirty();
                            planned.push(Planned {
                                execution: new_execution(name, context),
                                restart: true,
                            });
                        }
                        None => {
                            return Err(Error::new(PartitionError::Missing {
                                partition: name.clone(),
                                count,
                            }));
                        }
                    }
                }
            }
            None => {
                let contexts = self.partitioner.partition(scope, grid).await?;
                for (i, context) in contexts.into_iter().enumerate() {
                    let name = partition_name(&manager.step_name, i);
                    planned.push(Planned {
                        execution: new_execution(name, context),
                        restart: false,
                    });
                }
                // Saved once the partitions exist, so that a restart finds them all.
                manager
                    .context
                    .put(PARTITION_COUNT, &(planned.len() as u64))?;
            }
        }
        for p in &mut planned {
            repository.add_step_execution(&mut p.execution).await?;
        }
        repository.update_step_context(manager).await?;
        Ok(planned)
    }

    /// Runs the partitions on tasks of this process, at most `concurrency` at once.
    async fn run_here(
        &self,
        planned: Vec<Planned>,
        scope: &StepScope,
        rt: &StepRuntime<'_>,
        shared: SharedRepository,
        concurrency: usize,
    ) -> Result<Vec<StepExecution>> {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for p in planned {
            let run = PartitionRun {
                worker: self.worker.clone(),
                parameters: scope.parameters().clone(),
                job_context: scope.job_context().clone(),
                resources: scope.resources().clone(),
                repository: shared.0.clone(),
                listeners: rt.listeners.clone(),
                stop: rt.stop.clone(),
                job_name: scope.identity().job_name.clone(),
                job_instance_id: scope.identity().job_instance_id,
            };
            // Taken before the task starts, so that partitions start in their order.
            let permit = permits.clone().acquire_owned().await;
            tasks.spawn(async move {
                let _permit = permit;
                run.execute(p.execution, p.restart).await
            });
        }
        let mut ended = Vec::new();
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(execution)) => ended.push(execution),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(Error::new(PartitionError::TaskFailed(e)));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                ended.sort_by_key(|e| e.id);
                Ok(ended)
            }
        }
    }
}

/// Waits, without holding a transaction, until every remote partition has ended; on a
/// stop of the job, partitions no worker has claimed yet end STOPPED. Returns the
/// partitions as they ended.
async fn wait_for_workers(
    planned: &[Planned],
    rt: &StepRuntime<'_>,
    repository: &dyn JobRepository,
) -> Result<Vec<StepExecution>> {
    let job_execution_id = rt.execution.job_execution_id;
    let ids: Vec<i64> = planned.iter().map(|p| p.execution.id).collect();
    tracing::info!(step = %rt.execution.step_name, partitions = ids.len(), "partitions left to workers");
    let mut stopped_unclaimed = false;
    loop {
        let statuses = repository.step_statuses(job_execution_id).await?;
        let ours: Vec<&(i64, BatchStatus)> =
            statuses.iter().filter(|(id, _)| ids.contains(id)).collect();
        if ours.iter().all(|(_, s)| !s.is_running()) {
            break;
        }
        if !stopped_unclaimed && stop_asked(rt, repository).await {
            stopped_unclaimed = true;
            stop_unclaimed(job_execution_id, &ids, repository).await?;
        }
        tokio::time::sleep(POLL).await;
    }
    let execution = repository
        .job_execution(job_execution_id)
        .await?
        .ok_or(PartitionError::JobExecutionGone(job_execution_id))?;
    Ok(execution
        .step_executions
        .into_iter()
        .filter(|e| ids.contains(&e.id))
        .collect())
}

async fn stop_asked(rt: &StepRuntime<'_>, repository: &dyn JobRepository) -> bool {
    rt.stop.is_stopped()
        || matches!(
            repository
                .job_execution_status(rt.execution.job_execution_id)
                .await,
            Ok(Some((BatchStatus::Stopping, _)))
        )
}

/// Ends STOPPED the partitions still waiting for a worker. A worker claiming one
/// meanwhile bumps its VERSION, so this update is refused and that worker, seeing the
/// job STOPPING at its first commit, stops it itself.
async fn stop_unclaimed(
    job_execution_id: i64,
    ids: &[i64],
    repository: &dyn JobRepository,
) -> Result<()> {
    let Some(execution) = repository.job_execution(job_execution_id).await? else {
        return Ok(());
    };
    for mut step in execution.step_executions {
        if ids.contains(&step.id)
            && step.status == BatchStatus::Starting
            && step.exit_status.description == AWAITING_WORKER
        {
            step.status = BatchStatus::Stopped;
            step.exit_status = ExitStatus::stopped()
                .with_description("the job was stopped before a worker claimed this partition");
            step.end_time = Some(now());
            if let Err(e) = repository.update_step_execution(&mut step).await {
                tracing::info!(partition = %step.step_name, error = %e, "a worker claimed the partition first");
            }
        }
    }
    Ok(())
}

fn add(sum: &mut StepCounts, c: &StepCounts) {
    sum.commit += c.commit;
    sum.read += c.read;
    sum.filter += c.filter;
    sum.write += c.write;
    sum.read_skip += c.read_skip;
    sum.write_skip += c.write_skip;
    sum.process_skip += c.process_skip;
    sum.rollback += c.rollback;
}

/// What running one partition takes, owned so that it runs on a task of its own.
pub(crate) struct PartitionRun {
    pub(crate) worker: StepDef,
    pub(crate) parameters: JobParameters,
    /// The job context the partition's step sees: the manager's own handle for a
    /// local partition (what it writes joins the job's), a copy read from the
    /// repository in a remote worker (what it writes stays there).
    pub(crate) job_context: JobContext,
    pub(crate) resources: Resources,
    pub(crate) repository: Arc<dyn JobRepository>,
    pub(crate) listeners: StepListeners,
    pub(crate) stop: StopSignal,
    pub(crate) job_name: String,
    pub(crate) job_instance_id: i64,
}

impl PartitionRun {
    /// Runs the partition's step execution through the lifecycle every step shares
    /// (its context restored, its counters going on from what they hold).
    pub(crate) async fn execute(
        self,
        mut execution: StepExecution,
        restart: bool,
    ) -> Result<StepExecution> {
        let identity = StepIdentity {
            job_name: self.job_name,
            job_instance_id: self.job_instance_id,
            job_execution_id: execution.job_execution_id,
            step_name: execution.step_name.clone(),
            step_execution_id: execution.id,
        };
        let scope = StepScope::new(
            identity.clone(),
            self.parameters,
            self.job_context,
            execution.context.clone(),
            self.resources,
            restart,
        );
        let listeners = self.worker.listeners.merged(&self.listeners);
        execute_step(
            &self.worker,
            scope,
            &mut execution,
            self.repository.as_ref(),
            &listeners,
            &identity,
            &self.stop,
        )
        .await?;
        Ok(execution)
    }
}

/// The step a partition named `STEP:partitionN` runs, from the job's partitioned step
/// `STEP` (what the runner's `worker` subcommand runs).
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn worker_of<'a>(job: &'a Job, partition: &str) -> Option<&'a StepDef> {
    let (manager, _) = partition.rsplit_once(":partition")?;
    job.flow()
        .steps()
        .find(|s| s.name() == manager)
        .and_then(|s| s.runner.partition_worker())
        .and_then(|worker| worker.downcast_ref::<StepDef>())
}

/// Why a partitioned step could not split, run or gather its partitions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The key range of the table could not be read.
    #[error("partitioning `{table}` by `{column}`")]
    Bounds {
        /// The table.
        table: String,
        /// The key column.
        column: String,
        /// What the database said.
        #[source]
        cause: Cause,
    },
    /// A setting taken from a job parameter (grid size, ...) is malformed.
    #[error("the {what} of a partitioned step")]
    Setting {
        /// Which setting.
        what: String,
        /// The parameter's problem.
        #[source]
        cause: crate::params::ParameterError,
    },
    /// A restart found fewer partitions than the first run made.
    #[error(
        "partition `{partition}` is missing from the job repository, though the step's context says it was split into {count}; it cannot be restarted"
    )]
    Missing {
        /// The partition's step name.
        partition: String,
        /// How many partitions the first run made.
        count: u64,
    },
    /// A local partition's task panicked or was cancelled.
    #[error("a partition's task failed: {0}")]
    TaskFailed(#[source] tokio::task::JoinError),
    /// A step takes a partition's share ([`KeyRange`], [`PartitionFile`]) but its
    /// context has none: it does not run as a partition of that partitioner.
    #[error(
        "step `{step}` takes a `{argument}`, but its context has no `{key}`: run it as the worker step of a `Partition` with a `{partitioner}`"
    )]
    NotAPartition {
        /// The step.
        step: String,
        /// The argument's type.
        argument: &'static str,
        /// The context key the partitioner writes.
        key: &'static str,
        /// The partitioner that writes it.
        partitioner: &'static str,
    },
    /// The job execution the step runs in is no longer in the repository.
    #[error("job execution {0} disappeared from the job repository while its partitions ran")]
    JobExecutionGone(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_cover_every_key_once() {
        assert_eq!(
            KeyRangePartitioner::ranges(1, 100, 4),
            vec![(1, 25), (26, 50), (51, 75), (76, 100)]
        );
        assert_eq!(
            KeyRangePartitioner::ranges(1, 10, 3),
            vec![(1, 4), (5, 8), (9, 10)]
        );
        // Fewer keys than the grid: one partition per key.
        assert_eq!(KeyRangePartitioner::ranges(5, 6, 8), vec![(5, 5), (6, 6)]);
        assert_eq!(
            KeyRangePartitioner::ranges(i64::MIN, i64::MAX, 2),
            vec![(i64::MIN, -1), (0, i64::MAX)]
        );
        assert_eq!(partition_name("copyStep", 3), "copyStep:partition3");
    }
}
