//! The web console of the runner's `console` subcommand: server-rendered pages over
//! the job repository (every run of every process and host that records there), the
//! operator's actions as HTML forms, `/metrics` in Prometheus text and `/health`.
//!
//! One job per module: `routes` (the URLs and what each does), `pages` (the HTML),
//! `charts` (the SVG pictures), `html` (escaping), `security` (who may see and act),
//! `prometheus` (the metrics text), `assets` (the stylesheet and script, embedded).
//! Modules here import each other by path, never this one.

mod assets;
mod charts;
mod html;
mod pages;
mod prometheus;
mod routes;
mod security;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::job::Job;
use crate::launch::JobLauncher;

/// How the console is served.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Where it listens (127.0.0.1:8080 by default).
    pub bind: SocketAddr,
    /// The token that actions (and pages, unless `public_read`) need. Required when
    /// `bind` is not a loopback address.
    pub token: Option<String>,
    /// No actions are shown and every POST is refused (405).
    pub read_only: bool,
    /// With a token: pages, `/metrics` and `/health` are served without it; actions
    /// still need it.
    pub public_read: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            read_only: false,
            public_read: false,
        }
    }
}

/// Why the console did not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the console on {0} without a token: anyone who can reach that address could stop or restart jobs; pass --token TOKEN or set BATCH_CONSOLE_TOKEN (or bind to 127.0.0.1)"
    )]
    TokenNeeded(SocketAddr),
    /// The token cannot be used (empty, or with characters a cookie cannot carry).
    #[error(
        "the console's token must be 8 or more printable ASCII characters without spaces, quotes, commas, semicolons or backslashes"
    )]
    BadToken,
    /// The operating system gave no random bytes for the session secret.
    #[error("no random bytes for the console's session secret: {0}")]
    Random(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the console's server failed")]
    Serve(#[source] std::io::Error),
}

/// A console bound to its address, ready to serve.
pub struct Console {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    state: Arc<routes::AppState>,
}

impl Console {
    /// Checks the configuration (a token beyond loopback), binds the address and
    /// prepares the pages over the launcher's repository. `job`, when given, is the
    /// job this process can restart; executions of other jobs show no restart.
    pub async fn bind(
        config: ConsoleConfig,
        launcher: JobLauncher,
        job: Option<Job>,
    ) -> Result<Self, ConsoleError> {
        security::check_config(&config)?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| ConsoleError::Bind {
                addr: config.bind,
                source,
            })?;
        let secrets = security::Secrets::new(&config)?;
        // Installed before any job of this process runs, so that its metrics are
        // recorded from the first.
        let _ = prometheus::recorder();
        let state = routes::AppState::new(config, secrets, launcher, job.map(Arc::new));
        Ok(Self {
            listener,
            router: routes::router(state.clone()),
            state,
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then the restarts it runs are stopped at
    /// their next chunk boundary (STOPPED, restartable) before it returns.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ConsoleError::Serve);
        self.state.stop_runs().await;
        served
    }
}
