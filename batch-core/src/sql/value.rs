//! Values and rows on whichever database: what binds to a parameter, what a column is
//! read into, and a row read from any of them.

#[cfg(feature = "mysql")]
use sqlx::mysql::MySqlRow;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgRow;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;

use crate::error::{Error, Result};
use crate::repository::DbKind;

/// Declares, for one database, a trait that every value binding to (or read from) a
/// parameter on it has, and that every type has when the database's feature is off: so
/// [`SqlValue`] asks for the databases this program is built with, and no others.
macro_rules! per_database {
    ($feature:literal, $db:ty, $row:ty, $encode:ident, $decode:ident, $index:ident) => {
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $encode: for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db> {}
        #[cfg(feature = $feature)]
        impl<T: for<'q> sqlx::Encode<'q, $db> + sqlx::Type<$db>> $encode for T {}
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $decode: for<'r> sqlx::Decode<'r, $db> + sqlx::Type<$db> {}
        #[cfg(feature = $feature)]
        impl<T: for<'r> sqlx::Decode<'r, $db> + sqlx::Type<$db>> $decode for T {}
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        pub trait $index: sqlx::ColumnIndex<$row> {}
        #[cfg(feature = $feature)]
        impl<T: sqlx::ColumnIndex<$row>> $index for T {}

        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $encode {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $encode for T {}
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $decode {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $decode for T {}
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        pub trait $index {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $index for T {}
    };
}

per_database!(
    "sqlite",
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    EncodeSqlite,
    DecodeSqlite,
    IndexSqlite
);
per_database!(
    "postgres",
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    EncodePostgres,
    DecodePostgres,
    IndexPostgres
);
per_database!(
    "mysql",
    sqlx::MySql,
    sqlx::mysql::MySqlRow,
    EncodeMySql,
    DecodeMySql,
    IndexMySql
);

/// A Rust value that binds to a parameter on each database this program is built for:
/// integers, `f64`, `bool`, `String` and `&str`, the chrono date and time types, and
/// `Option`s of owned ones.
pub trait SqlValue: EncodeSqlite + EncodePostgres + EncodeMySql + Send {}

impl<T> SqlValue for T where T: EncodeSqlite + EncodePostgres + EncodeMySql + Send {}

/// A Rust value that a column of each database this program is built for can be read
/// into.
pub trait FromSqlValue: DecodeSqlite + DecodePostgres + DecodeMySql {}

impl<T> FromSqlValue for T where T: DecodeSqlite + DecodePostgres + DecodeMySql {}

/// How a column is named in [`SqlRow::get`]: by name (`&str`) or position (`usize`).
pub trait SqlIndex: IndexSqlite + IndexPostgres + IndexMySql + std::fmt::Debug {}

impl<I> SqlIndex for I where I: IndexSqlite + IndexPostgres + IndexMySql + std::fmt::Debug {}

/// A row read by [`KeysetReader`](super::KeysetReader), from whichever database.
pub enum SqlRow {
    /// A SQLite row.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteRow),
    /// A PostgreSQL row.
    #[cfg(feature = "postgres")]
    Postgres(PgRow),
    /// A MySQL/MariaDB row.
    #[cfg(feature = "mysql")]
    MySql(MySqlRow),
}

impl SqlRow {
    /// The value of a column, by name or position.
    pub fn get<T: FromSqlValue, I: SqlIndex>(&self, index: I) -> Result<T> {
        use sqlx::Row;
        let value = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(r) => r.try_get(&index),
            #[cfg(feature = "postgres")]
            Self::Postgres(r) => r.try_get(&index),
            #[cfg(feature = "mysql")]
            Self::MySql(r) => r.try_get(&index),
        };
        value.map_err(|e| Error::new(e).context(format!("reading column {index:?}")))
    }

    /// The database the row came from.
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
}

#[cfg(feature = "sqlite")]
impl From<SqliteRow> for SqlRow {
    fn from(row: SqliteRow) -> Self {
        Self::Sqlite(row)
    }
}

#[cfg(feature = "postgres")]
impl From<PgRow> for SqlRow {
    fn from(row: PgRow) -> Self {
        Self::Postgres(row)
    }
}

#[cfg(feature = "mysql")]
impl From<MySqlRow> for SqlRow {
    fn from(row: MySqlRow) -> Self {
        Self::MySql(row)
    }
}
