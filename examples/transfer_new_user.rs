//! Seed 002's `transferNewUserJob`: users registered on `targetDate` are read two at a
//! time from a `users` table in the job repository's own SQLite file, filtered by a
//! processor, and "saved" by a writer that logs them.
//!
//! ```text
//! cargo run --example transfer_new_user -- targetDate=2024-01-02,date
//! ```
//!
//! The table is created when missing and, when empty, filled with six users registered
//! on `targetDate`. The first run reads 6, writes 6, filters 0 and commits 4 times
//! (three chunks of two and the final empty chunk). The same command again exits 3:
//! that instance is complete. Another date is a new instance, which filters all six.

use std::collections::VecDeque;

use batch::cli::Runner;
use batch::prelude::*;
use chrono::{NaiveDate, NaiveDateTime};
use sqlx::{Row, SqlitePool};

const CHUNK_SIZE: u64 = 2;

/// A row of `users`.
#[derive(Debug, Clone)]
pub struct User {
    /// The key the reader pages by.
    pub id: i64,
    /// The user's name.
    pub name: String,
    /// When the user registered; the processor compares its date with `targetDate`.
    pub registered_at: NaiveDateTime,
}

/// Where the reader is: the id of the last user handed out.
#[derive(ExecutionContext, Default)]
#[context(prefix = "reader.")]
struct ReaderPosition {
    last_id: i64,
}

/// Reads `users` in id order, one page of `page_size` rows per query (keyset paging:
/// `WHERE id > last`), and keeps its position in the step context so a restart goes
/// on from the last committed chunk.
pub struct UserPagingReader {
    pool: SqlitePool,
    page_size: i64,
    page: VecDeque<User>,
    last_id: i64,
    exhausted: bool,
}

impl UserPagingReader {
    /// A reader starting at the first user, `page_size` rows per query.
    pub fn new(pool: SqlitePool, page_size: i64) -> Self {
        Self {
            pool,
            page_size,
            page: VecDeque::new(),
            last_id: 0,
            exhausted: false,
        }
    }

    async fn fetch_page(&mut self) -> Result<()> {
        let rows = sqlx::query(
            "SELECT id, name, registered_at FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .bind(self.last_id)
        .bind(self.page_size)
        .fetch_all(&self.pool)
        .await
        .context("reading a page of users")?;
        self.exhausted = (rows.len() as i64) < self.page_size;
        for row in rows {
            self.page.push_back(User {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                registered_at: row.try_get("registered_at")?,
            });
        }
        Ok(())
    }
}

impl ItemReader<User> for UserPagingReader {
    async fn read(&mut self) -> Result<Option<User>> {
        if self.page.is_empty() && !self.exhausted {
            self.fetch_page().await?;
        }
        let user = self.page.pop_front();
        if let Some(u) = &user {
            self.last_id = u.id;
        }
        Ok(user)
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.last_id = ctx.load::<ReaderPosition>()?.last_id;
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        ctx.store(&ReaderPosition {
            last_id: self.last_id,
        })?;
        Ok(())
    }
}

#[step(name = "transferNewUserStep", chunk = 2)]
fn transfer_new_user_step(
    #[param("targetDate")] target_date: NaiveDate,
    pool: Res<SqlitePool>,
) -> impl ChunkStep<User, User> {
    chunk(
        UserPagingReader::new(pool.0, CHUNK_SIZE as i64),
        processor(move |user: &User| {
            if user.registered_at.date() == target_date {
                println!("targetDate => {target_date}");
                Ok(Some(user.clone()))
            } else {
                Ok(None)
            }
        }),
        writer(|users: &[User]| {
            for user in users {
                println!("saving user => id: {}, name: {}", user.id, user.name);
            }
            Ok(())
        }),
    )
}

#[job(name = "transferNewUserJob", required = ["targetDate"])]
fn transfer_new_user_job() -> Flow {
    Flow::start(transfer_new_user_step {}).build()
}

/// Creates `users` when missing and, when empty, fills it with six users registered on
/// `targetDate`.
pub async fn prepare_users(pool: &SqlitePool, target_date: NaiveDate) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            registered_at TIMESTAMP NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?;
    if count == 0 {
        let names = ["kim", "lee", "park", "choi", "jung", "kang"];
        for (i, name) in names.iter().enumerate() {
            let at = target_date.and_hms_opt(9, i as u32, 0).expect("valid time");
            sqlx::query("INSERT INTO users (name, registered_at) VALUES (?1, ?2)")
                .bind(*name)
                .bind(at)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    Runner::new()
        .about(
            "Seed 002: transfers the users registered on targetDate (targetDate=YYYY-MM-DD,date)",
        )
        .setup(|setup| async move {
            let target_date: NaiveDate = setup.parameters.get_as("targetDate")?;
            prepare_users(&setup.pool, target_date).await
        })
        .run(transfer_new_user_job {})
}
