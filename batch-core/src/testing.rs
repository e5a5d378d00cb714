//! A test kit for jobs and steps, in the spirit of Spring Batch's
//! `JobLauncherTestUtils`: launch a job, or one step alone, against an in-memory
//! repository or a temporary SQLite file, with parameters and a prepared step context,
//! then check what the run recorded with one call each.
//!
//! ```
//! # use batch_core::prelude::*;
//! # use batch_core::step::StepBuilder;
//! use batch_core::testing::{Counts, TestKit};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let kit = TestKit::in_memory();
//! let step = StepBuilder::new("double").chunk_size(2).chunk(|_| async {
//!     Ok(chunk(
//!         ListReader::new(vec![1, 2, 3]),
//!         |n: &i32| Ok::<_, Error>(Some(n * 2)),
//!         |_: &[i32]| Ok::<_, Error>(()),
//!     ))
//! });
//! let run = kit.run_step(step, JobParameters::new()).await?;
//! run.assert_completed()
//!     .assert_counts("double", Counts { read: 3, write: 3, commit: 2, ..Counts::default() });
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::context::ExecutionContext;
use crate::error::Result;
use crate::execution::{BatchStatus, ExitStatus, JobExecution, StepCounts, StepExecution, now};
use crate::job::{Flow, IntoJob, Job};
use crate::launch::JobLauncher;
use crate::params::JobParameters;
use crate::repository::{InMemoryJobRepository, JobRepository};
use crate::step::IntoStep;

/// The eight counters of a step execution, as [`TestRun::assert_counts`] compares them
/// (`Counts { read: 3, ..Counts::default() }`).
pub type Counts = StepCounts;

/// A job repository for one test, and the launcher on it. Resources for the steps'
/// `Res<T>` arguments are given with [`resource`](Self::resource).
pub struct TestKit {
    repository: Arc<dyn JobRepository>,
    resources: Vec<Box<dyn Fn(JobLauncher) -> JobLauncher + Send + Sync>>,
    _dir: Option<TempDir>,
}

impl TestKit {
    /// A kit on a fresh in-memory repository.
    pub fn in_memory() -> Self {
        Self {
            repository: Arc::new(InMemoryJobRepository::new()),
            resources: Vec::new(),
            _dir: None,
        }
    }

    /// A kit on a fresh SQLite file in a temporary directory, removed when the kit is
    /// dropped: the real tables, as a job binary writes them.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite() -> Result<Self> {
        let dir = TempDir::new()?;
        let url = format!("sqlite:{}", dir.path().join("batch.db").display());
        let repository = crate::repository::SqliteJobRepository::open(&url).await?;
        Ok(Self {
            repository: Arc::new(repository),
            resources: Vec::new(),
            _dir: Some(dir),
        })
    }

    /// A kit on a repository of the test's own.
    pub fn with_repository(repository: Arc<dyn JobRepository>) -> Self {
        Self {
            repository,
            resources: Vec::new(),
            _dir: None,
        }
    }

    /// A resource handed to every run's steps (`Res<T>`), as
    /// [`JobLauncher::resource`] registers it.
    pub fn resource<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources
            .push(Box::new(move |launcher| launcher.resource(value.clone())));
        self
    }

    /// The repository, for checks of what it holds.
    pub fn repository(&self) -> &Arc<dyn JobRepository> {
        &self.repository
    }

    /// The launcher on the kit's repository, with its resources.
    pub fn launcher(&self) -> JobLauncher {
        self.resources.iter().fold(
            JobLauncher::with_repository(self.repository.clone()),
            |launcher, add| add(launcher),
        )
    }

    /// Launches `job` with `parameters` (a restart when the instance's last run failed).
    pub async fn run(&self, job: impl IntoJob, parameters: JobParameters) -> Result<TestRun> {
        let execution = self.launcher().run(job, parameters).await?;
        Ok(TestRun { execution })
    }

    /// Launches one step alone, as a job of that step only (named after the step).
    pub async fn run_step(
        &self,
        step: impl IntoStep,
        parameters: JobParameters,
    ) -> Result<TestRun> {
        let step = step.into_step();
        let job = Job::new(&format!("{}.test", step.name()), Flow::start(step));
        self.run(job, parameters).await
    }

    /// Launches one step alone, as [`run_step`](Self::run_step), with its step context
    /// prepared as a restart would find it: the step starts from `context`, as it would
    /// after an earlier run that failed with that context saved.
    pub async fn run_step_with_context(
        &self,
        step: impl IntoStep,
        parameters: JobParameters,
        context: ExecutionContext,
    ) -> Result<TestRun> {
        let step = step.into_step();
        let job_name = format!("{}.test", step.name());
        self.failed_run_with(&job_name, step.name(), &parameters, context)
            .await?;
        let job = Job::new(&job_name, Flow::start(step));
        self.run(job, parameters).await
    }

    /// Records a failed execution of `job_name` whose step `step_name` failed with
    /// `context` saved, so that the next launch restarts that step from it.
    async fn failed_run_with(
        &self,
        job_name: &str,
        step_name: &str,
        parameters: &JobParameters,
        context: ExecutionContext,
    ) -> Result<()> {
        let repo = &self.repository;
        let mut job = repo.create_job_execution(job_name, parameters).await?;
        let started = now();
        let mut step = StepExecution {
            id: 0,
            version: 0,
            step_name: step_name.to_owned(),
            job_execution_id: job.id,
            create_time: started,
            start_time: Some(started),
            end_time: Some(started),
            status: BatchStatus::Failed,
            counts: StepCounts::default(),
            exit_status: ExitStatus::failed().with_description("prepared by the test kit"),
            last_updated: None,
            context,
            failures: Vec::new(),
        };
        repo.add_step_execution(&mut step).await?;
        repo.update_step_execution(&mut step).await?;
        job.start_time = Some(started);
        job.end_time = Some(started);
        job.status = BatchStatus::Failed;
        job.exit_status = ExitStatus::failed().with_description("prepared by the test kit");
        repo.update_job_execution(&mut job).await?;
        Ok(())
    }
}

/// What one launch recorded, with assertions that name what differs.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The job execution, with its step executions.
    pub execution: JobExecution,
}

impl TestRun {
    /// The job's status.
    pub fn status(&self) -> BatchStatus {
        self.execution.status
    }

    /// The step execution named `name` (its latest, when the step ran twice).
    ///
    /// # Panics
    /// When no step of that name ran, naming the ones that did.
    pub fn step(&self, name: &str) -> &StepExecution {
        self.execution.step(name).unwrap_or_else(|| {
            let ran: Vec<&str> = self
                .execution
                .step_executions
                .iter()
                .map(|s| s.step_name.as_str())
                .collect();
            panic!("no step `{name}` ran; the steps that ran: {ran:?}")
        })
    }

    /// Asserts the job's status.
    #[track_caller]
    pub fn assert_status(&self, status: BatchStatus) -> &Self {
        assert_eq!(
            self.execution.status,
            status,
            "job `{}` ended {} ({}), not {status}",
            self.execution.instance.job_name,
            self.execution.status,
            self.execution.exit_status.description
        );
        self
    }

    /// Asserts that the job completed, showing its exit description when it did not.
    #[track_caller]
    pub fn assert_completed(&self) -> &Self {
        self.assert_status(BatchStatus::Completed)
    }

    /// Asserts the eight counters of step `name`.
    #[track_caller]
    pub fn assert_counts(&self, name: &str, counts: Counts) -> &Self {
        assert_eq!(
            self.step(name).counts,
            counts,
            "the counters of step `{name}`"
        );
        self
    }

    /// Asserts that the step context of step `name` holds `value` under `key`.
    #[track_caller]
    pub fn assert_context<T: Serialize>(&self, name: &str, key: &str, value: T) -> &Self {
        let expected = serde_json::to_value(value).expect("a value that serializes");
        let found = self.step(name).context.get_value(key);
        assert_eq!(
            found,
            Some(&expected),
            "step `{name}`'s context under `{key}`"
        );
        self
    }
}

/// A directory removed when dropped, for the kit's SQLite file.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
struct TempDir(PathBuf);

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
impl TempDir {
    fn new() -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "batch-testkit-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            now().and_utc().timestamp_nanos_opt().unwrap_or_default()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
