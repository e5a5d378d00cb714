//! How long the job repository waits for its database: to connect, and for each of its
//! operations (a launch, a chunk's commit, a heartbeat, …).
//!
//! Without a bound, a server that accepts the connection but never answers (a hung
//! server, a network partition, a full disk on the far side) makes a launch wait
//! forever with no output. Both bounds are options of the repository URL, read and
//! removed before the URL reaches the driver:
//!
//! - `connect_timeout=SECONDS` (default 10): making a connection, including the
//!   server's handshake and authentication, and waiting for one from the pool;
//! - `statement_timeout=SECONDS` (default 60): one operation of the repository, from
//!   its first statement to its commit. On SQLite it is also the time a statement
//!   waits for another process's write lock (the busy timeout).
//!
//! For example `postgres://batch:***@db/batch?connect_timeout=5&statement_timeout=30`.
//! An operation that runs out of time fails with [`RepositoryError::TimedOut`]; its
//! transaction is not committed, so the run fails and can be restarted.
//!
//! The statement timeout also bounds a writer's work of one chunk inside the chunk's
//! transaction (its own statements included), and the server is told to end a session
//! left idle in a transaction for longer than both bounds together
//! (`idle_in_transaction_session_timeout` on PostgreSQL, the session's `wait_timeout`
//! on MySQL), so a client cut off mid-chunk leaves no locks behind.

use std::future::Future;
use std::time::Duration;

use crate::repository::database::redact_url;
use crate::repository::error::RepositoryError;

/// The default bound on connecting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default bound on one operation of the repository.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The two bounds; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Making a connection (and waiting for one from the pool).
    pub connect: Duration,
    /// One operation of the repository.
    pub statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            statement: DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// How long the server lets a session of the repository sit idle inside a
    /// transaction (PostgreSQL) or idle at all (MySQL's `wait_timeout`) before it
    /// ends the session and rolls its transaction back: what frees the locks of a
    /// client cut off by a network partition. Longer than the client's own bounds, so
    /// that the client reports a timeout first whenever it still can.
    pub fn server_idle(&self) -> Duration {
        self.statement + self.connect
    }

    /// Reads `connect_timeout` and `statement_timeout` from the URL's query and returns
    /// the URL without them, for the driver (which would refuse or ignore them).
    pub fn from_url(url: &str) -> Result<(String, Self), RepositoryError> {
        let mut timeouts = Self::default();
        let Some((head, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), timeouts));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "connect_timeout" => &mut timeouts.connect,
                "statement_timeout" => &mut timeouts.statement,
                _ => {
                    kept.push(pair);
                    continue;
                }
            };
            *slot = value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| RepositoryError::InvalidUrlOption {
                    url: redact_url(url),
                    option: key.to_owned(),
                    problem: format!("`{value}` is not a positive number of seconds"),
                })?;
        }
        let url = if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
        Ok((url, timeouts))
    }
}

/// Runs one operation of the repository within `limit`.
pub(crate) async fn bounded<T, E: From<RepositoryError>>(
    limit: Duration,
    action: &str,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(limit, operation).await {
        Ok(outcome) => outcome,
        Err(_) => Err(RepositoryError::TimedOut {
            action: action.to_owned(),
            after: limit,
        }
        .into()),
    }
}

/// The driver's error for a connection that got no answer in time.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn connect_timed_out(limit: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "no answer within {} s of connecting (`connect_timeout=SECONDS` in the URL sets this bound)",
            limit.as_secs_f64()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_read_from_the_url_and_removed() {
        let (url, t) = Timeouts::from_url("postgres://u:p@h/db").unwrap();
        assert_eq!(
            (url.as_str(), t),
            ("postgres://u:p@h/db", Timeouts::default())
        );
        let (url, t) = Timeouts::from_url(
            "postgres://u:p@h/db?connect_timeout=2&sslmode=disable&statement_timeout=0.5",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@h/db?sslmode=disable");
        assert_eq!(t.connect, Duration::from_secs(2));
        assert_eq!(t.statement, Duration::from_millis(500));
        let (url, _) = Timeouts::from_url("sqlite:batch.db?statement_timeout=3").unwrap();
        assert_eq!(url, "sqlite:batch.db");
        for bad in ["0", "-1", "soon", "", "inf"] {
            let err = Timeouts::from_url(&format!("mysql://u:secret@h/db?connect_timeout={bad}"))
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("connect_timeout") && !text.contains("secret"),
                "{text}"
            );
        }
    }
}
