//! The job repository: where every run is recorded, in the Spring Batch 5 tables.
//!
//! [`JobRepository`] is object-safe so a launcher can hold any implementation:
//! [`SqliteJobRepository`] (the embedded default, a file), [`PostgresJobRepository`],
//! [`MySqlJobRepository`] (MySQL and MariaDB) and [`InMemoryJobRepository`] (tests).
//! [`open_repository`] picks one by the URL's scheme. The three databases share one
//! implementation, [`SqlJobRepository`], whose dialect differences (DDL, sequences,
//! how a launch locks the instance) are the few items of [`Dialect`]. The launch rules
//! (already complete, already running, restart) are decided in one place,
//! [`check_restartable`], from the executions an implementation finds.
//!
//! One concept per module: `contract` (the trait), `error`, `rules` (the launch
//! rules), `query` (what the read side is asked), `retention` (what a purge deletes), `statistics` (what the read side adds up), `stop` (a stop request), `database` (which database, its pool, a chunk's transaction), `dao` (the SQL
//! implementation, one module per table), the three dialects, `memory`, and `owner`
//! (who runs an execution, for crashed runs), `timeouts` (how long it waits for its
//! database). Modules here import each other by path,
//! never this one.

mod contract;
mod dao;
mod database;
mod error;
mod memory;
#[cfg(feature = "mysql")]
mod mysql;
mod open;
pub mod owner;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod retention;
mod rules;
#[cfg(feature = "sqlite")]
mod sqlite;
mod statistics;
mod stop;
pub mod timeouts;

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "the batch framework needs a database for its job repository: enable at least one of the features `sqlite`, `postgres`, `mysql`"
);

pub use contract::{
    AWAITING_WORKER, BoxFuture, JobRepository, PartitionClaim, REMOTE_OWNER_PREFIX,
};
pub use dao::{Column, Dialect, SqlJobRepository};
pub use database::{ChunkTx, DbKind, DbPool, WrongDatabase, redact_url};
pub use error::{LaunchError, RepositoryError};
pub use memory::InMemoryJobRepository;
#[cfg(feature = "mysql")]
pub use mysql::MySqlJobRepository;
pub use open::open_repository;
#[cfg(feature = "postgres")]
pub use postgres::PostgresJobRepository;
pub use query::ExecutionQuery;
pub use retention::{BadDuration, PurgeReport, PurgeRequest, parse_duration};
pub use rules::{DeadRuns, ExecutionSummary, StepSummary, check_restartable};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteJobRepository;
pub use statistics::{JobStatistics, StatusStatistics};
pub use stop::{StopOutcome, request_stop};

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `cargo test -p batch-core --no-default-features --features sqlite` (in
    /// `.ci/run`): a URL of a database whose driver was not built names the feature.
    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn a_url_of_a_driver_not_built_names_the_feature() {
        let error = open_repository("postgres://batch:secret@127.0.0.1:5432/batch")
            .await
            .err()
            .expect("no PostgreSQL driver in this build");
        assert!(matches!(
            error,
            RepositoryError::DriverNotBuilt {
                kind: DbKind::Postgres,
                ..
            }
        ));
        assert!(
            error.to_string().contains("enable the `postgres` feature"),
            "{error}"
        );
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact_url("postgres://batch:s3cret@db.example:5432/batch"),
            "postgres://batch:***@db.example:5432/batch"
        );
        assert_eq!(
            redact_url("mysql://batch:p@ss:w@127.0.0.1/batch?ssl-mode=disabled"),
            "mysql://batch:***@127.0.0.1/batch?ssl-mode=disabled"
        );
        assert_eq!(
            redact_url("postgres://127.0.0.1/batch?user=u&password=s3cret"),
            "postgres://127.0.0.1/batch?user=u&password=***"
        );
        assert_eq!(redact_url("sqlite:batch.db"), "sqlite:batch.db");
        assert_eq!(
            redact_url("postgres://batch@host/db"),
            "postgres://batch@host/db"
        );
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn an_unreachable_server_is_named_without_its_password() {
        // Port 9 (discard) on loopback: nothing listens there.
        let error = open_repository("postgres://batch:s3cret@127.0.0.1:9/batch")
            .await
            .err()
            .expect("nothing listens on port 9");
        let report = crate::error::Error::from(error).report();
        assert!(report.contains("127.0.0.1:9"), "{report}");
        assert!(!report.contains("s3cret"), "{report}");
    }

    #[tokio::test]
    async fn a_url_of_an_unknown_scheme_is_refused_not_opened_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        for url in ["oracle:thin:@host:1521:db", "ftp:foo", "http://host/db"] {
            let error = open_repository(url).await.err().expect("refused");
            assert!(
                matches!(error, RepositoryError::UnsupportedUrl { .. }),
                "{url}: {error}"
            );
            let text = error.to_string();
            assert!(
                text.contains("sqlite:FILE") && text.contains("postgres://"),
                "{text}"
            );
        }
        assert!(!cwd.join("ftp:foo").exists() && !dir.path().join("ftp:foo").exists());
        assert_eq!(DbKind::of_url("batch.db"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::of_url("./dir/batch.db"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::of_url("sqlite:batch.db"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::of_url("mariadb://h/db"), Some(DbKind::MySql));
    }

    #[test]
    fn each_database_names_its_feature() {
        for kind in [DbKind::Sqlite, DbKind::Postgres, DbKind::MySql] {
            assert_eq!(
                kind.is_built(),
                match kind.feature() {
                    "sqlite" => cfg!(feature = "sqlite"),
                    "postgres" => cfg!(feature = "postgres"),
                    "mysql" => cfg!(feature = "mysql"),
                    other => panic!("unknown feature {other}"),
                }
            );
        }
    }
}
