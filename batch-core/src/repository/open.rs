//! Opening the job repository a URL names, on whichever database it is.

use crate::repository::contract::JobRepository;
use crate::repository::database::{DbKind, redact_url};
use crate::repository::error::RepositoryError;
#[cfg(feature = "mysql")]
use crate::repository::mysql::MySqlJobRepository;
#[cfg(feature = "postgres")]
use crate::repository::postgres::PostgresJobRepository;
#[cfg(feature = "sqlite")]
use crate::repository::sqlite::SqliteJobRepository;

/// Opens the job repository a URL names (see [`DbKind::of_url`]), creating the Spring
/// Batch tables when they are missing.
pub async fn open_repository(
    url: &str,
) -> std::result::Result<std::sync::Arc<dyn JobRepository>, RepositoryError> {
    let Some(kind) = DbKind::of_url(url) else {
        return Err(RepositoryError::UnsupportedUrl {
            url: redact_url(url),
        });
    };
    Ok(match kind {
        #[cfg(feature = "sqlite")]
        DbKind::Sqlite => std::sync::Arc::new(SqliteJobRepository::open(url).await?),
        #[cfg(feature = "postgres")]
        DbKind::Postgres => std::sync::Arc::new(PostgresJobRepository::open(url).await?),
        #[cfg(feature = "mysql")]
        DbKind::MySql => std::sync::Arc::new(MySqlJobRepository::open(url).await?),
        #[allow(unreachable_patterns)]
        kind => {
            return Err(RepositoryError::DriverNotBuilt {
                url: redact_url(url),
                kind,
                feature: kind.feature(),
            });
        }
    })
}
