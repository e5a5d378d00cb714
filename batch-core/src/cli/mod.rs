//! The command-line runner every example uses:
//!
//! ```text
//! cargo run --example NAME -- [--db URL] [--next] [name=value[,type[,identifying]] ...]
//! cargo run --example NAME -- [--db URL] jobs | executions [--job J] [--status S] [--limit N]
//!     | show ID | stop ID | abandon ID | restart ID | recover ID
//!     | purge --older-than DURATION [--status S ...] [--job J] [--include-restartable]
//!     | console [--bind ADDR:PORT] [--token TOKEN] [--read-only] [--public-read]
//!     | worker [--exit-when-idle [--idle-wait DURATION]]
//! ```
//!
//! It opens the job repository (default `sqlite:batch.db` in the working directory;
//! `--db postgres://USER:PASSWORD@HOST/DB` and `--db mysql://USER:PASSWORD@HOST/DB`
//! for a server), hands steps the repository database's pool (`Res<DbPool>`, and the
//! pool of its own type: `Res<SqlitePool>`, `Res<PgPool>` or `Res<MySqlPool>`),
//! launches the job with the parameters (with `--next`: the last instance's
//! parameters through the job's incrementer, `run.id` + 1), shows progress on a
//! terminal, prints the job execution and its step executions, and exits with a
//! status a scheduler can act on. The subcommands operate on every job of the
//! repository (unless `--job` narrows them); `--json` after one prints one JSON
//! document instead of a table.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | COMPLETED; a subcommand done |
//! | 1 | FAILED or STOPPED (restart by running the same command again) |
//! | 2 | usage or parameter error, or the repository cannot be used |
//! | 3 | the job instance is already complete, or was abandoned |
//! | 4 | the job instance is already running |
//! | 5 | no such job execution |
//! | 6 | the execution's state does not allow the subcommand |
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
use crate::operator::JobOperator;
use crate::params::JobParameters;
use crate::repository::{DbKind, DbPool, LaunchError, open_repository, parse_duration};
use crate::step::listener::ChunkListener;

mod operate;
pub mod worker;

use operate::Operation;

/// The environment variable the `console` subcommand takes its token from when
/// `--token` is not given.
#[cfg(feature = "console")]
const CONSOLE_TOKEN_VAR: &str = "BATCH_CONSOLE_TOKEN";

/// A setup hook was given, but the job repository is kept in memory, so there is no
/// database pool to hand it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the job's setup hook needs the job repository's database, but the repository is kept in memory"
)]
pub struct SetupWithoutDatabase;

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
                    // A pool type that takes no pool of its own kind names one.
                    let error = Error::new(crate::repository::WrongDatabase {
                        needs: "this job's setup is written for",
                        wanted: P::kind().unwrap_or(pool.kind()),
                        found: Some(pool.kind()),
                    });
                    Box::pin(std::future::ready(Err(error)))
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

    /// Parses the command line, runs the job (or the subcommand) and returns the exit
    /// status. Starts its own async runtime: from code already inside one, use
    /// [`run_async`](Self::run_async).
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
        let invocation = match self.parse(&job, args) {
            Ok(i) => i,
            Err(code) => return code,
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
        runtime.block_on(self.execute(job, invocation))
    }

    /// [`run`](Self::run) for a caller already inside a tokio runtime (an async
    /// `main`, a service): the same command line, on the caller's runtime.
    pub async fn run_async(self, job: impl IntoJob) -> ExitCode {
        self.run_async_with_args(job, std::env::args()).await
    }

    /// [`run_async`](Self::run_async) with the command line given.
    pub async fn run_async_with_args(
        self,
        job: impl IntoJob,
        args: impl IntoIterator<Item = String>,
    ) -> ExitCode {
        let job = job.into_job();
        match self.parse(&job, args) {
            Ok(invocation) => self.execute(job, invocation).await,
            Err(code) => code,
        }
    }

    fn parse(
        &self,
        job: &crate::job::Job,
        args: impl IntoIterator<Item = String>,
    ) -> std::result::Result<Invocation, ExitCode> {
        let about = self
            .about
            .clone()
            .unwrap_or_else(|| format!("Runs the batch job `{}`.", job.name()));
        let matches = match command(job.name(), about).try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                let _ = e.print();
                return Err(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
            }
        };
        init_logging();
        let db = matches
            .get_one::<String>("db")
            .cloned()
            .unwrap_or_else(|| DEFAULT_DB.into());
        let usage = |e: &dyn std::fmt::Display| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        };
        let id = |m: &clap::ArgMatches| *m.get_one::<i64>("id").expect("required");
        let statuses = |m: &clap::ArgMatches| -> std::result::Result<Vec<BatchStatus>, ExitCode> {
            m.get_many::<String>("status")
                .into_iter()
                .flatten()
                .map(|s| {
                    s.to_uppercase()
                        .parse::<BatchStatus>()
                        .map_err(|e| usage(&e))
                })
                .collect()
        };
        let job_filter = |m: &clap::ArgMatches| m.get_one::<String>("job").cloned();
        let (action, json) = match matches.subcommand() {
            None => {
                let raw: Vec<String> = matches
                    .get_many::<String>("params")
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let parameters = JobParameters::parse_args(&raw).map_err(|e| usage(&e))?;
                let next = matches.get_flag("next");
                (Action::Run { parameters, next }, false)
            }
            Some((name, m)) => {
                let operation = match name {
                    "jobs" => Operation::Jobs,
                    "executions" => Operation::Executions {
                        job: job_filter(m),
                        statuses: statuses(m)?,
                        limit: *m.get_one::<usize>("limit").expect("defaulted"),
                    },
                    "show" => Operation::Show(id(m)),
                    "stop" => Operation::Stop(id(m)),
                    "abandon" => Operation::Abandon(id(m)),
                    "recover" => Operation::Recover(id(m)),
                    "restart" => {
                        return Ok(Invocation {
                            db,
                            action: Action::Restart(id(m)),
                            json: m.get_flag("json"),
                        });
                    }
                    #[cfg(feature = "console")]
                    "console" => {
                        let bind = m.get_one::<String>("bind").expect("defaulted");
                        let bind = bind.parse().map_err(|e| {
                            usage(&format!(
                                "--bind `{bind}` is not an address and port such as 127.0.0.1:8080: {e}"
                            ))
                        })?;
                        let config = crate::console::ConsoleConfig {
                            bind,
                            // From the environment when not given as a flag, so that
                            // it need not show in the process list.
                            token: m.get_one::<String>("token").cloned().or_else(|| {
                                std::env::var(CONSOLE_TOKEN_VAR)
                                    .ok()
                                    .filter(|t| !t.is_empty())
                            }),
                            read_only: m.get_flag("read-only"),
                            public_read: m.get_flag("public-read"),
                        };
                        return Ok(Invocation {
                            db,
                            action: Action::Console(config),
                            json: false,
                        });
                    }
                    "worker" => {
                        return Ok(Invocation {
                            db,
                            action: Action::Worker(worker::Idle {
                                exit: m.get_flag("exit-when-idle"),
                                first_wait: parse_duration(
                                    m.get_one::<String>("idle-wait").expect("has a default"),
                                )
                                .map_err(|e| usage(&e))?,
                            }),
                            json: false,
                        });
                    }
                    "purge" => {
                        let text = m.get_one::<String>("older-than").expect("required");
                        Operation::Purge {
                            older_than: parse_duration(text).map_err(|e| usage(&e))?,
                            statuses: statuses(m)?,
                            job: job_filter(m),
                            include_restartable: m.get_flag("include-restartable"),
                        }
                    }
                    other => unreachable!("subcommand {other} is declared"),
                };
                (Action::Operate(operation), m.get_flag("json"))
            }
        };
        Ok(Invocation { db, action, json })
    }

    async fn execute(self, job: crate::job::Job, invocation: Invocation) -> ExitCode {
        let Invocation { db, action, json } = invocation;
        // The URL as it may be printed: a password given to connect is never shown.
        let shown = crate::repository::redact_url(&db);
        if matches!(action, Action::Worker(_)) && DbKind::of_url(&db) == Some(DbKind::Sqlite) {
            let refusal = crate::repository::RepositoryError::RemoteWorkersUnsupported {
                database: DbKind::Sqlite.to_string(),
            };
            eprintln!("error: --db `{shown}`: {refusal}");
            return ExitCode::from(2);
        }
        let repository = match open_repository(&db).await {
            Ok(r) => r,
            Err(e) => {
                let report = Error::new(e).report();
                // Most open errors name the URL already; it is then not repeated.
                if report.contains(&shown) {
                    eprintln!("error: --db: {report}");
                } else {
                    eprintln!("error: --db `{shown}`: {report}");
                }
                return ExitCode::from(2);
            }
        };
        let code = self.dispatch(job, repository.clone(), action, json).await;
        // Closed on every way out: on SQLite the last connection to close checkpoints
        // the write-ahead log into the database file, so a copy of `batch.db` alone
        // holds the whole history.
        if let Some(pool) = repository.pool() {
            pool.close().await;
        }
        code
    }

    async fn dispatch(
        self,
        job: crate::job::Job,
        repository: std::sync::Arc<dyn crate::repository::JobRepository>,
        action: Action,
        json: bool,
    ) -> ExitCode {
        let parameters = match action {
            Action::Operate(operation) => {
                return operate::operate(JobLauncher::with_repository(repository), operation, json)
                    .await;
            }
            Action::Worker(idle) => {
                let mut launcher = JobLauncher::with_repository(repository);
                if let Some(configure) = self.configure {
                    launcher = configure(launcher);
                }
                return worker::work(launcher, job, idle).await;
            }
            Action::Run { parameters, next } if next => {
                let operator = JobOperator::new(JobLauncher::with_repository(repository.clone()));
                match operator.next_parameters(&job, parameters).await {
                    Ok(p) => p,
                    Err(e) => return operate::failed(e),
                }
            }
            Action::Run { parameters, .. } => parameters,
            #[cfg(feature = "console")]
            Action::Console(config) => {
                return console(job, repository, self.configure, config).await;
            }
            Action::Restart(id) => {
                let launcher = JobLauncher::with_repository(repository.clone());
                match repository.job_execution(id).await {
                    Ok(Some(e))
                        if e.instance.job_name == job.name()
                            && matches!(e.status, BatchStatus::Failed | BatchStatus::Stopped) =>
                    {
                        e.parameters
                    }
                    Ok(_) => {
                        // The operator says why not.
                        let refusal = JobOperator::new(launcher).restart(job, id).await;
                        return match refusal {
                            Err(e) => operate::failed(e),
                            Ok(execution) => finished(&execution),
                        };
                    }
                    Err(e) => return operate::failed(e.into()),
                }
            }
        };
        // Refused before the setup hook or any row is written.
        if let Err(source) = job.validate(&parameters) {
            let e = LaunchError::InvalidParameters {
                job_name: job.name().to_owned(),
                source,
            };
            eprintln!("error: {}", Error::new(e).report());
            return ExitCode::from(2);
        }
        self.launch(job, repository, parameters).await
    }

    async fn launch(
        self,
        job: crate::job::Job,
        repository: std::sync::Arc<dyn crate::repository::JobRepository>,
        parameters: JobParameters,
    ) -> ExitCode {
        let pool = repository.pool();
        if let Some(setup) = self.setup {
            let outcome = match pool.clone() {
                Some(pool) => setup(pool, parameters.clone()).await,
                None => Err(Error::new(SetupWithoutDatabase)),
            };
            if let Err(e) = outcome {
                eprintln!("error: preparing the job's data failed: {}", e.report());
                return ExitCode::from(2);
            }
        }
        let progress = Arc::new(Progress::new());
        let launcher = launcher_with_resources(
            JobLauncher::with_repository(repository).chunk_listener(progress.clone()),
            pool,
            self.configure,
        );
        let stop = launcher.stop_signal();
        let signals = tokio::spawn(async move {
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
        signals.abort();
        progress.finish();
        match outcome {
            Ok(execution) => finished(&execution),
            Err(e) => {
                let code = match e {
                    LaunchError::AlreadyComplete { .. } | LaunchError::Abandoned { .. } => 3,
                    LaunchError::AlreadyRunning { .. } | LaunchError::StepStillRunning { .. } => 4,
                    // It did not complete; the same command restarts it.
                    LaunchError::EndNotSaved { .. } => 1,
                    LaunchError::NotRestartable { .. }
                    | LaunchError::MissingResource { .. }
                    | LaunchError::InvalidParameters { .. }
                    | LaunchError::Repository(_) => 2,
                };
                eprintln!("error: {}", Error::new(e).report());
                ExitCode::from(code)
            }
        }
    }
}

/// The launcher of a run: the repository database's pool as a resource (as
/// `DbPool` and as the pool of its own type), then the program's configuration.
fn launcher_with_resources(
    mut launcher: JobLauncher,
    pool: Option<DbPool>,
    configure: Option<Box<dyn FnOnce(JobLauncher) -> JobLauncher>>,
) -> JobLauncher {
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
    if let Some(configure) = configure {
        launcher = configure(launcher);
    }
    launcher
}

/// `console`: serves the web console over the repository until a stop signal;
/// restarts from it run here, with the program's launcher configuration.
#[cfg(feature = "console")]
async fn console(
    job: crate::job::Job,
    repository: std::sync::Arc<dyn crate::repository::JobRepository>,
    configure: Option<Box<dyn FnOnce(JobLauncher) -> JobLauncher>>,
    config: crate::console::ConsoleConfig,
) -> ExitCode {
    let pool = repository.pool();
    let launcher =
        launcher_with_resources(JobLauncher::with_repository(repository), pool, configure);
    let console = match crate::console::Console::bind(config, launcher, Some(job)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", Error::new(e).report());
            return ExitCode::from(2);
        }
    };
    match console.local_addr() {
        Ok(addr) => println!("console on http://{addr}/ (Ctrl-C stops it)"),
        Err(e) => eprintln!("warning: the console's address is unknown: {e}"),
    }
    let shutdown = async {
        let _ = stop_request().await;
    };
    match console.serve(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", Error::new(e).report());
            ExitCode::from(2)
        }
    }
}

/// Prints the end-of-run report; the exit status of a run that ended.
fn finished(execution: &JobExecution) -> ExitCode {
    print!("{}", summary(execution));
    match execution.status {
        BatchStatus::Completed => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// What the command line asked for.
struct Invocation {
    db: String,
    action: Action,
    json: bool,
}

enum Action {
    /// A run (the default): with these parameters, or the next ones after them.
    Run {
        parameters: JobParameters,
        next: bool,
    },
    /// `restart ID`.
    Restart(i64),
    /// `console`.
    #[cfg(feature = "console")]
    Console(crate::console::ConsoleConfig),
    /// `worker [--exit-when-idle [--idle-wait DURATION]]`: run remote partitions.
    Worker(worker::Idle),
    /// The other subcommands.
    Operate(Operation),
}

/// The command line: a run by default, or one of the subcommands.
fn command(name: &str, about: String) -> Command {
    let json = || {
        Arg::new("json")
            .long("json")
            .action(ArgAction::SetTrue)
            .help("print one JSON document (stable field names) instead of a table")
    };
    let id = || {
        Arg::new("id")
            .value_name("ID")
            .required(true)
            .value_parser(clap::value_parser!(i64))
            .help("the job execution's id (JOB_EXECUTION_ID)")
    };
    let job = || {
        Arg::new("job")
            .long("job")
            .value_name("J")
            .help("only executions of this job")
    };
    let status = || {
        Arg::new("status")
            .long("status")
            .value_name("S")
            .action(ArgAction::Append)
            .num_args(1..)
            .help("only executions in this status (COMPLETED, FAILED, STOPPED, ...)")
    };
    Command::new(name.to_owned())
        .about(about)
        .arg(
            Arg::new("db")
                .long("db")
                .value_name("URL")
                .global(true)
                .default_value(DEFAULT_DB)
                .help("job repository database: sqlite:FILE, postgres://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB"),
        )
        .arg(
            Arg::new("next")
                .long("next")
                .action(ArgAction::SetTrue)
                .help("run the next instance: the last parameters through the job's incrementer (run.id + 1), then the ones given"),
        )
        .arg(
            Arg::new("params")
                .value_name("name=value[,type[,identifying]]")
                .action(ArgAction::Append)
                .help("job parameters; type is string (default), long, double, date, datetime or bool; identifying is true (default) or false"),
        )
        .subcommand(Command::new("jobs").about("lists the jobs in the repository").arg(json()))
        .subcommand(
            Command::new("executions")
                .about("lists job executions, newest first")
                .arg(job())
                .arg(status())
                .arg(
                    Arg::new("limit")
                        .long("limit")
                        .value_name("N")
                        .default_value("20")
                        .value_parser(clap::value_parser!(usize))
                        .help("at most N executions"),
                )
                .arg(json()),
        )
        .subcommand(Command::new("show").about("shows one job execution with its parameters, contexts and steps").arg(id()).arg(json()))
        .subcommand(Command::new("stop").about("asks a running execution to stop at its next chunk boundary").arg(id()).arg(json()))
        .subcommand(Command::new("abandon").about("abandons a stopped, failed or crashed execution: its instance does not run again").arg(id()).arg(json()))
        .subcommand(Command::new("restart").about("restarts the instance of a failed or stopped execution with its parameters").arg(id()).arg(json()))
        .subcommand(Command::new("recover").about("marks a run left STARTED by a dead process FAILED, so that it can restart").arg(id()).arg(json()))
        .subcommands(console_command())
        .subcommand(
            Command::new("worker")
                .about("runs remote partitions of this job, claimed from the repository (PostgreSQL or MySQL/MariaDB), until stopped")
                .arg(
                    Arg::new("exit-when-idle")
                        .long("exit-when-idle")
                        .action(ArgAction::SetTrue)
                        .help("exit once no partition is left to claim and no execution of the job is running"),
                )
                .arg(
                    Arg::new("idle-wait")
                        .long("idle-wait")
                        .value_name("DURATION")
                        .default_value("60s")
                        .requires("exit-when-idle")
                        .help("with --exit-when-idle: how long a worker that has not yet seen an execution of the job waits for its launcher (30s, 5m)"),
                ),
        )
        .subcommand(
            Command::new("purge")
                .about("deletes executions that ended more than DURATION ago (never running ones, nor instances that can still restart)")
                .arg(
                    Arg::new("older-than")
                        .long("older-than")
                        .value_name("DURATION")
                        .required(true)
                        .help("30d, 12h, 90m, 0s"),
                )
                .arg(status())
                .arg(job())
                .arg(
                    Arg::new("include-restartable")
                        .long("include-restartable")
                        .action(ArgAction::SetTrue)
                        .help("also delete instances whose last execution failed or stopped"),
                )
                .arg(json()),
        )
}

/// The `console` subcommand, when the console is built.
fn console_command() -> Option<Command> {
    #[cfg(not(feature = "console"))]
    return None;
    #[cfg(feature = "console")]
    Some(
        Command::new("console")
            .about("serves the web console over the job repository: every job and execution, live progress, stop, restart and abandon, /metrics and /health")
            .arg(
                Arg::new("bind")
                    .long("bind")
                    .value_name("ADDR:PORT")
                    .default_value("127.0.0.1:8080")
                    .help("where to listen; beyond loopback --token is required"),
            )
            .arg(
                Arg::new("token")
                    .long("token")
                    .value_name("TOKEN")
                    .help("what actions (and pages, unless --public-read) need: Authorization: Bearer TOKEN, or ?token=TOKEN once (sets a cookie); default: the environment variable BATCH_CONSOLE_TOKEN, which keeps it out of the process list"),
            )
            .arg(
                Arg::new("read-only")
                    .long("read-only")
                    .action(ArgAction::SetTrue)
                    .help("show no action and refuse every POST (405)"),
            )
            .arg(
                Arg::new("public-read")
                    .long("public-read")
                    .action(ArgAction::SetTrue)
                    .help("with --token: pages without the token; actions still need it"),
            ),
    )
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
