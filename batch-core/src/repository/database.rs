//! The repository's database: which one a URL names, its pool, and the transaction of
//! one chunk on it.

use std::fmt;

use crate::error::{Error, Result};

/// The database a job repository lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// SQLite, a file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl DbKind {
    /// Which database a URL names: `sqlite:` (or a bare file path), `postgres://` /
    /// `postgresql://`, `mysql://` / `mariadb://`.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s);
        match scheme {
            Some("sqlite") => Some(Self::Sqlite),
            Some("postgres" | "postgresql") => Some(Self::Postgres),
            Some("mysql" | "mariadb") => Some(Self::MySql),
            // A bare path (`batch.db`, `./dir/batch.db`) is a SQLite file; any other
            // scheme is refused rather than taken for a file name.
            None => Some(Self::Sqlite),
            Some(_) => None,
        }
    }

    /// The database's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL/MariaDB",
        }
    }

    /// The cargo feature that builds this database's driver.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// Whether this program was built with the database's driver.
    pub fn is_built(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
            Self::MySql => cfg!(feature = "mysql"),
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The connection pool of a repository's database, whichever database it is: what
/// the command-line runner hands to steps and setup hooks (`Res<DbPool>`), and what
/// the SQL items of [`crate::sql`] read and write through.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// A SQLite database (a file).
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// A MySQL or MariaDB server.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl DbPool {
    /// Which database the pool is on.
    pub fn kind(&self) -> DbKind {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => DbKind::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => DbKind::Postgres,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => DbKind::MySql,
        }
    }

    /// The SQLite pool, when the database is SQLite.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Option<&sqlx::SqlitePool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    /// The PostgreSQL pool, when the database is PostgreSQL.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Option<&sqlx::PgPool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => Some(p),
            _ => None,
        }
    }

    /// The MySQL/MariaDB pool, when the database is MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    pub fn mysql(&self) -> Option<&sqlx::MySqlPool> {
        #[allow(unreachable_patterns)]
        match self {
            #[cfg(feature = "mysql")]
            Self::MySql(p) => Some(p),
            _ => None,
        }
    }

    /// Runs one statement without parameters (DDL, say) and returns the rows it
    /// affected. The text must be valid in this pool's dialect.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let done = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
            #[cfg(feature = "mysql")]
            Self::MySql(p) => sqlx::raw_sql(sql).execute(p).await?.rows_affected(),
        };
        Ok(done)
    }

    /// Begins a transaction on this pool, for writing with the SQL items outside a
    /// chunk (seeding a table, say); finish it with [`ChunkTx::commit`].
    pub async fn begin(&self) -> Result<ChunkTx> {
        let inner = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => TxInner::Postgres(p.begin().await?),
            #[cfg(feature = "mysql")]
            Self::MySql(p) => TxInner::MySql(p.begin().await?),
        };
        Ok(ChunkTx { inner })
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => p.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => p.close().await,
            #[cfg(feature = "mysql")]
            Self::MySql(p) => p.close().await,
        }
    }
}

/// The transaction of one chunk on the repository database. A writer that writes to
/// the same database takes part in it (see [`crate::item::WriteContext`]); the chunk's
/// metadata update commits in it too.
pub struct ChunkTx {
    inner: TxInner,
}

pub(crate) enum TxInner {
    /// A repository with no database (in memory): the chunk commits in memory only.
    None,
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl TxInner {
    fn kind(&self) -> Option<DbKind> {
        match self {
            Self::None => None,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Some(DbKind::Sqlite),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Some(DbKind::Postgres),
            #[cfg(feature = "mysql")]
            Self::MySql(_) => Some(DbKind::MySql),
        }
    }
}

impl fmt::Debug for ChunkTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.inner.kind().map_or("none", DbKind::name);
        f.debug_struct("ChunkTx").field("database", &kind).finish()
    }
}

impl ChunkTx {
    /// A chunk with no database transaction.
    pub fn none() -> Self {
        Self {
            inner: TxInner::None,
        }
    }

    pub(crate) fn from_inner(inner: TxInner) -> Self {
        Self { inner }
    }

    pub(crate) fn into_inner(self) -> TxInner {
        self.inner
    }

    /// Which database the transaction is on (`None` for a repository in memory).
    pub fn kind(&self) -> Option<DbKind> {
        self.inner.kind()
    }

    /// The transaction's SQLite connection.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        match &mut self.inner {
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::Sqlite, other.kind())),
        }
    }

    /// The transaction's PostgreSQL connection.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        match &mut self.inner {
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::Postgres, other.kind())),
        }
    }

    /// The transaction's MySQL/MariaDB connection.
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection> {
        match &mut self.inner {
            #[cfg(feature = "mysql")]
            TxInner::MySql(tx) => Ok(&mut *tx),
            other => Err(wrong_database(DbKind::MySql, other.kind())),
        }
    }

    /// Commits a transaction begun by [`DbPool::begin`]. (A chunk's transaction is
    /// committed by the step, with the chunk's metadata.)
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::None => {}
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(tx) => tx.commit().await?,
            #[cfg(feature = "postgres")]
            TxInner::Postgres(tx) => tx.commit().await?,
            #[cfg(feature = "mysql")]
            TxInner::MySql(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

fn wrong_database(wanted: DbKind, found: Option<DbKind>) -> Error {
    Error::new(WrongDatabase {
        needs: "this writer needs the chunk's transaction on",
        wanted,
        found,
    })
}

/// Code written for one database met a job repository on another (or in memory): a
/// writer that uses the chunk's transaction, a job's setup.
#[derive(Debug, thiserror::Error)]
#[error(
    "{needs} {wanted}, but the job repository is {} (run with {})",
    found.map_or("kept in memory", DbKind::name),
    wanted.url_form()
)]
pub struct WrongDatabase {
    /// What needed the database, as the message's first words.
    pub needs: &'static str,
    /// The database it needs.
    pub wanted: DbKind,
    /// The repository's database; `None` in memory.
    pub found: Option<DbKind>,
}

impl DbKind {
    /// How a `--db` URL of this database begins, as a hint.
    fn url_form(self) -> &'static str {
        match self {
            DbKind::Sqlite => "--db sqlite:FILE",
            DbKind::Postgres => "--db postgres://…",
            DbKind::MySql => "--db mysql://…",
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for DbPool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for DbPool {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for DbPool {
    fn from(pool: sqlx::MySqlPool) -> Self {
        Self::MySql(pool)
    }
}

/// `url` with its password masked (`postgres://batch:***@host/db`), for every message
/// and log line that names a repository URL: a password in a URL is given to connect,
/// never to be printed. A `password=` query parameter is masked too.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let from = authority_start + colon + 1;
                out.replace_range(from..authority_start + at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query);
        let masked: Vec<String> = tail[1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}?{}", masked.join("&"));
    }
    out
}
