//! The command-line runner every example uses:
//!
//! ```text
//! cargo run --example NAME -- [--db URL] [name=value[,type[,identifying]] ...]
//! ```
//!
//! It opens the job repository (default `sqlite:batch.db` in the working directory;
//! `--db postgres://USER:PASSWORD@HOST/DB` and `--db mysql://USER:PASSWORD@HOST/DB`
//! for a server), hands steps the repository database's pool (`Res<DbPool>`, and the
//! pool of its own type: `Res<SqlitePool>`, `Res<PgPool>` or `Res<MySqlPool>`),
//! launches the job with the parameters, shows progress on a terminal, prints the job
//! execution and its step executions, and exits with a status a scheduler can act on:
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | COMPLETED |
//! | 1 | FAILED or STOPPED (restart by running the same command again) |
//! | 2 | usage or parameter error, or the repository cannot be used |
//! | 3 | the job instance is already complete |
//! | 4 | the job instance is already running |
//!
//! Ctrl-C asks the running step to stop at its next chunk boundary: the job ends
//! STOPPED and the same command restarts it.

use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Arg, ArgAction, Command};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
use crate::execution::{BatchStatus, JobExecution, StepExecution};
use crate::job::IntoJob;
use crate::launch::JobLauncher;
use crate::params::JobParameters;
use crate::repository::{DbKind, DbPool, LaunchError, open_repository};
use crate::step::listener::ChunkListener;

/// The default repository: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "sqlite:batch.db";

/// What a [`Setup`] hook gets when it names no pool type: the SQLite pool when SQLite
/// is built (the embedded default), else the pool of whichever database.
#[cfg(feature = "sqlite")]
type DefaultSetupPool = sqlx::SqlitePool;
#[cfg(not(feature = "sqlite"))]
type DefaultSetupPool = DbPool;

/// What a setup hook gets before the launch: the repository database's pool, as the
/// hook asks for it (`P`): `SqlitePool`, `PgPool` or `MySqlPool` for a job written for
/// one database, [`DbPool`] for a job that runs on any.
#[derive(Debug, Clone)]
pub struct Setup<P = DefaultSetupPool> {
    /// The repository database's pool (steps also get it as `Res<P>`).
    pub pool: P,
    /// The launch's job parameters, as parsed from the command line.
    pub parameters: JobParameters,
}

/// A pool type a [`Setup`] hook can ask for.
pub trait SetupPool: Sized + 'static {
    /// The pool, when the repository's database is one this type stands for.
    fn from_pool(pool: &DbPool) -> Option<Self>;
    /// The database this type stands for (`None`: any).
    fn kind() -> Option<DbKind>;
}

macro_rules! setup_pool {
    ($($feature:literal: $pool:ty => $kind:ident, $get:ident;)*) => {$(
        #[cfg(feature = $feature)]
        impl SetupPool for $pool {
            fn from_pool(pool: &DbPool) -> Option<Self> {
                pool.$get().cloned()
            }
            fn kind() -> Option<DbKind> {
                Some(DbKind::$kind)
            }
        }
    )*};
}

setup_pool! {
    "sqlite": sqlx::SqlitePool => Sqlite, sqlite;
    "postgres": sqlx::PgPool => Postgres, postgres;
    "mysql": sqlx::MySqlPool => MySql, mysql;
}

impl SetupPool for DbPool {
    fn from_pool(pool: &DbPool) -> Option<Self> {
        Some(pool.clone())
    }
    fn kind() -> Option<DbKind> {
        None
    }
}

type SetupFn = Box<dyn FnOnce(DbPool, JobParameters) -> Pin<Box<dyn Future<Output = Result<()>>>>>;

/// Waits for a request to stop: Ctrl-C (SIGINT), SIGTERM (what systemd, Docker and
/// Kubernetes send) or SIGHUP (a closed terminal). Returns the signal's name, or `None`
/// when no signal can be listened for.
async fn stop_request() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return tokio::signal::ctrl_c().await.ok().map(|()| "SIGINT");
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.ok().map(|()| "SIGINT"),
            _ = term.recv() => Some("SIGTERM"),
            _ = hup.recv() => Some("SIGHUP"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| "SIGINT")
    }
}

/// A configurable runner; [`run`] is `Runner::new().run(job)`.
#[derive(Default)]
pub struct Runner {
    setup: Option<SetupFn>,
    configure: Option<Box<dyn FnOnce(JobLauncher) -> JobLauncher>>,
    about: Option<String>,
}

/// Runs `job` from the command line. See the module documentation.
pub fn run(job: impl IntoJob) -> ExitCode {
    Runner::new().run(job)
}

impl Runner {
    /// A runner with no setup hook and no extra launcher configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// A line of help text describing the job.
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// Prepares the database before the launch (creating the job's own tables, say).
    /// The hook names the pool type it wants in [`Setup`]; a repository on another
    /// database is refused with a message that says which one the job needs.
    pub fn setup<P, F, Fut>(mut self, f: F) -> Self
    where
        P: SetupPool,
        F: FnOnce(Setup<P>) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        self.setup = Some(Box::new(
            move |pool: DbPool, parameters| match P::from_pool(&pool) {
                Some(pool) => Box::pin(f(Setup { pool, parameters })),
                None => {
                    let wanted = P::kind().map_or("another", DbKind::name);
                    let message = format!(
                        "this job is written for a {wanted} database, but the job repository is on {}",
                        pool.kind()
                    );
                    Box::pin(std::future::ready(Err(Error::msg(message))))
                }
            },
        ));
        self
    }

    /// Adjusts the launcher (resources, listeners) before the launch.
    pub fn configure(mut self, f: impl FnOnce(JobLauncher) -> JobLauncher + 'static) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Parses the command line, runs the job and returns the exit status.
    pub fn run(self, job: impl IntoJob) -> ExitCode {
        self.run_with_args(job, std::env::args())
    }

    /// [`run`](Self::run) with the command line given (the program name first), for a
    /// program that takes options of its own before handing the rest over.
    pub fn run_with_args(
        self,
        job: impl IntoJob,
        args: impl IntoIterator<Item = String>,
    ) -> ExitCode {
        let job = job.into_job();
        let about = self
            .about
            .clone()
            .unwrap_or_else(|| format!("Runs the batch job `{}`.", job.name()));
        let cmd = Command::new(job.name().to_owned())
            .about(about)
            .arg(
                Arg::new("db")
                    .long("db")
                    .value_name("URL")
                    .default_value(DEFAULT_DB)
                    .help("job repository database: sqlite:FILE, postgres://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB"),
            )
            .arg(
                Arg::new("params")
                    .value_name("name=value[,type[,identifying]]")
                    .action(ArgAction::Append)
                    .help("job parameters; type is string (default), long, double, date, datetime or bool; identifying is true (default) or false"),
            );
        let matches = match cmd.try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
        init_logging();
        let db = matches
            .get_one::<String>("db")
            .cloned()
            .unwrap_or_else(|| DEFAULT_DB.into());
        let raw: Vec<String> = matches
            .get_many::<String>("params")
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let parameters = match JobParameters::parse_args(&raw) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::from(2);
            }
        };
        runtime.block_on(self.launch(job, db, parameters))
    }

    async fn launch(self, job: crate::job::Job, db: String, parameters: JobParameters) -> ExitCode {
        let repository = match open_repository(&db).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: --db `{db}`: {}", Error::new(e).report());
                return ExitCode::from(2);
            }
        };
        let pool = repository.pool();
        if let Some(setup) = self.setup {
            let outcome = match pool.clone() {
                Some(pool) => setup(pool, parameters.clone()).await,
                None => Err(Error::msg("the job repository has no database")),
            };
            if let Err(e) = outcome {
                eprintln!("error: preparing the job's data failed: {}", e.report());
                return ExitCode::from(2);
            }
        }
        let progress = Arc::new(Progress::new());
        let mut launcher =
            JobLauncher::with_repository(repository).chunk_listener(progress.clone());
        if let Some(pool) = pool {
            launcher = match &pool {
                #[cfg(feature = "sqlite")]
                DbPool::Sqlite(p) => launcher.resource(p.clone()),
                #[cfg(feature = "postgres")]
                DbPool::Postgres(p) => launcher.resource(p.clone()),
                #[cfg(feature = "mysql")]
                DbPool::MySql(p) => launcher.resource(p.clone()),
            }
            .resource(pool);
        }
        if let Some(configure) = self.configure {
            launcher = configure(launcher);
        }
        let stop = launcher.stop_signal();
        tokio::spawn(async move {
            if let Some(name) = stop_request().await {
                eprintln!(
                    "\n{name}: stop requested; the step stops at its next chunk boundary (a second signal kills)"
                );
                stop.stop();
                if stop_request().await.is_some() {
                    std::process::exit(130);
                }
            }
        });
        let outcome = launcher.run(job, parameters).await;
        progress.finish();
        match outcome {
            Ok(execution) => {
                print!("{}", summary(&execution));
                match execution.status {
                    BatchStatus::Completed => ExitCode::SUCCESS,
                    _ => ExitCode::from(1),
                }
            }
            Err(e) => {
                let code = match e {
                    LaunchError::AlreadyComplete { .. } => 3,
                    LaunchError::AlreadyRunning { .. } => 4,
                    LaunchError::NotRestartable { .. }
                    | LaunchError::MissingResource { .. }
                    | LaunchError::Repository(_) => 2,
                };
                eprintln!("error: {}", Error::new(e).report());
                ExitCode::from(code)
            }
        }
    }
}

fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = match std::env::var("BATCH_LOG").as_deref() {
        Ok("trace") => LevelFilter::TRACE,
        Ok("debug") => LevelFilter::DEBUG,
        Ok("info") => LevelFilter::INFO,
        Ok("error") => LevelFilter::ERROR,
        Ok("off") => LevelFilter::OFF,
        _ => LevelFilter::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Shows, on a terminal, how far the running step is.
struct Progress {
    bar: Mutex<Option<(String, ProgressBar)>>,
    enabled: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

impl ChunkListener for Progress {
    fn after_chunk(&self, step: &StepExecution) {
        if !self.enabled {
            return;
        }
        let mut slot = self.bar.lock().expect("progress lock");
        if slot
            .as_ref()
            .is_none_or(|(name, _)| *name != step.step_name)
        {
            if let Some((_, old)) = slot.take() {
                old.finish_and_clear();
            }
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(step.step_name.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            *slot = Some((step.step_name.clone(), bar));
        }
        if let Some((_, bar)) = slot.as_ref() {
            let c = &step.counts;
            bar.set_message(format!(
                "read {} written {} filtered {} skipped {} commits {}",
                c.read,
                c.write,
                c.filter,
                c.skip(),
                c.commit
            ));
        }
    }
}

fn seconds(d: Option<chrono::Duration>) -> String {
    match d {
        Some(d) => format!("{:.3} s", d.num_milliseconds() as f64 / 1000.0),
        None => "-".into(),
    }
}

/// The end-of-run report: the job execution and each step execution.
pub fn summary(execution: &JobExecution) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "job `{}` instance {} execution {}: {} (exit {}) in {}",
        execution.instance.job_name,
        execution.instance.id,
        execution.id,
        execution.status,
        execution.exit_status.code,
        seconds(execution.duration()),
    );
    if !execution.parameters.is_empty() {
        let _ = writeln!(out, "  parameters: {}", execution.parameters);
    }
    let name_width = execution
        .step_executions
        .iter()
        .map(|s| s.step_name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "  {:<name_width$}  {:<9}  {:<9}  {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6}  duration",
        "step",
        "status",
        "exit",
        "read",
        "write",
        "filter",
        "commit",
        "rollback",
        "r.skip",
        "p.skip",
        "w.skip"
    );
    for s in &execution.step_executions {
        let c = &s.counts;
        let _ = writeln!(
            out,
            "  {:<name_width$}  {:<9}  {:<9}  {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6}  {}",
            s.step_name,
            s.status.as_str(),
            s.exit_status.code,
            c.read,
            c.write,
            c.filter,
            c.commit,
            c.rollback,
            c.read_skip,
            c.process_skip,
            c.write_skip,
            seconds(s.duration()),
        );
    }
    if execution.status != BatchStatus::Completed && !execution.exit_status.description.is_empty() {
        let _ = writeln!(
            out,
            "  exit description: {}",
            execution.exit_status.description
        );
    }
    if execution.step_executions.is_empty() && execution.status == BatchStatus::Completed {
        let _ = writeln!(
            out,
            "  (every step had already completed in an earlier execution)"
        );
    }
    out
}
