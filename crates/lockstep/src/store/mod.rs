//! The store: users, sessions, rooms, queues and chat, in SQL.
//!
//! One SQL text serves SQLite (the default, a file in the data directory) and PostgreSQL (for
//! several nodes) through sqlx's `Any` driver, so ids are UUID text and times BIGINT. SQLite runs
//! in WAL mode with `synchronous=NORMAL`: a committed write survives the process being killed
//! (kill -9), which is the durability the product promises; only a power cut can lose the last
//! commits.
//!
//! # Layout
//! - [`users`] and [`sessions`]: anonymous users and their rotating session tokens.
//! - [`rooms`]: rooms, their settings, playback and lobby listing.
//! - [`members`]: a user's standing in a room (moderator, muted, banned, admitted, visited).
//! - [`queue`]: the current and upcoming items of a room.
//! - [`chat`]: chat lines and history pages.
//! - [`uploads`] and [`jobs`]: uploaded videos and the media jobs made from them.
//! - [`library`]: the personal library and playlists.
//! - [`link_media`]: poster frames of direct links, and keyframe times of those to MP4 files.
//! - [`events`]: writing a room [`Event`](lockstep_core::room::Event) to the tables it touches.
//! - [`writer`]: group commit, the task that writes every room's events, many per transaction.

pub mod chat;
pub mod events;
pub mod jobs;
pub mod library;
pub mod link_media;
pub mod members;
pub mod queue;
pub mod rooms;
pub mod sessions;
pub mod uploads;
pub mod users;
pub mod writer;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// A handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Which database a store talks to. Nearly every query is the same text for both; the few that
/// differ (taking a job: `FOR UPDATE SKIP LOCKED`) ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: one node.
    Sqlite,
    /// PostgreSQL: one node or several sharing it.
    Postgres,
}

/// Per-connection SQLite settings. `synchronous = NORMAL` in WAL mode commits without an fsync
/// (a commit survives the process being killed, not a power cut); FULL, the default, would fsync
/// every chat line. Foreign keys make deletes cascade. Statement journals (a multi-row insert in
/// a transaction keeps one) stay in memory instead of a temporary file. No connection
/// checkpoints the WAL as part of a commit (by default the commit that fills 1,000 pages does,
/// with an fsync, holding up every room waiting on the group commit behind it): the event
/// writer checkpoints in the background instead (see [`writer`]).
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA wal_autocheckpoint = 0",
    "PRAGMA cache_size = -16384",
    "PRAGMA mmap_size = 268435456",
];

impl Backend {
    /// The database a URL names, or an error naming the schemes this build knows.
    pub fn of_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            )
        }
    }
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time anyway; a few connections let reads proceed
            // alongside a write in WAL mode. One more than that on SQLite: the event writer
            // keeps one for itself (its page cache stays warm).
            .max_connections(if sqlite { 5 } else { 16 })
            // SQLite waits out a busy writer (busy_timeout). PostgreSQL's pool retries a
            // refused connection until this runs out: a database that is down must turn into
            // an error frame for the user within seconds, not a command left unanswered.
            .acquire_timeout(Duration::from_secs(if sqlite { 10 } else { 3 }))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        // One statement per call: the Any driver runs only the first statement
                        // of a string.
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(*pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("cannot open the database at {}", redact(url)))?;
        if sqlite {
            // Persistent in the file; set once.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .context("cannot switch SQLite to WAL mode")?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&pool)
                .await
                .context("cannot migrate the SQLite database")?;
        } else {
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .context("cannot migrate the PostgreSQL database")?;
        }
        Ok(Store { pool, backend })
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for queries in the submodules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction on a connection of the pool, whatever becomes of the caller.
    ///
    /// sqlx 0.9's `Pool::begin` is not cancel-safe on PostgreSQL (transact-rs/sqlx#4393, fixed
    /// upstream after 0.9.0). Suppose a caller is dropped while `BEGIN` is in flight. Then the
    /// session stays inside a transaction that nothing rolls back, and the pool hands that
    /// connection on. Every later statement on it runs inside that transaction and holds its
    /// locks. Here, the end of a media job waited 30 s behind a progress report aborted in its
    /// `BEGIN`.
    ///
    /// Begun in a task of its own, the `BEGIN` always completes. If the caller has gone, the
    /// transaction is dropped in that task and rolled back.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let pool = self.pool.clone();
        #[allow(
            clippy::disallowed_methods,
            reason = "the one use, made cancel-safe by its own task"
        )]
        let begun = tokio::spawn(async move { pool.begin().await });
        begun
            .await
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
    }

    /// Copies what the SQLite WAL holds into the database file, without waiting for readers or
    /// writers (a passive checkpoint); nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Waits for queries in flight and closes every connection (SQLite then checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL fit for a log or an error message: without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Appends the placeholders of a multi-row VALUES list to `sql`: `rows` tuples of `columns`
/// placeholders, `($1, $2), ($3, $4)` on PostgreSQL and `(?, ?), (?, ?)` on SQLite. SQLite
/// finds a numbered parameter's name by a linear scan, and sqlx asks for every parameter's
/// name: with `$n`, a statement of 1,536 parameters spent 7% of the server's CPU there.
pub(crate) fn push_values(sql: &mut String, backend: Backend, rows: usize, columns: usize) {
    use std::fmt::Write;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let sep = if column == 0 { "" } else { ", " };
            match backend {
                Backend::Sqlite => {
                    let _ = write!(sql, "{sep}?");
                }
                Backend::Postgres => {
                    let _ = write!(sql, "{sep}${}", row * columns + column + 1);
                }
            }
        }
        sql.push(')');
    }
}

/// A flag as stored: INTEGER 0 or 1.
pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Reads an INTEGER flag column.
pub(crate) fn get_flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Parses a UUID column into one of the typed ids.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, sqlx::Error> {
    raw.parse()
        .map_err(|_| sqlx::Error::Decode(format!("bad id in the database: {raw:?}").into()))
}

/// Parses a JSON column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(raw).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Serialises a value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(e.into()))
}

#[cfg(test)]
mod tests {
    use super::testing::store;
    use super::{Backend, redact};
    use sqlx::Row;

    #[test]
    fn the_url_names_the_database() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn values_lists_number_their_placeholders_row_by_row() {
        let mut sql = String::from("VALUES ");
        super::push_values(&mut sql, Backend::Postgres, 2, 3);
        assert_eq!(sql, "VALUES ($1, $2, $3), ($4, $5, $6)");
        let mut sql = String::from("VALUES ");
        super::push_values(&mut sql, Backend::Sqlite, 2, 2);
        assert_eq!(sql, "VALUES (?, ?), (?, ?)");
    }

    #[test]
    fn errors_never_show_the_database_password() {
        assert_eq!(
            redact("postgres://lockstep:s3cret@db:5432/lockstep"),
            "postgres://lockstep:***@db:5432/lockstep"
        );
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[tokio::test]
    async fn every_pooled_connection_has_the_pragmas() {
        let (s, _dir) = store().await;
        if s.backend() != Backend::Sqlite {
            return; // SQLite's settings; PostgreSQL has none of these.
        }
        // Hold several connections at once so that more than one is opened.
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(s.pool().acquire().await.unwrap());
        }
        for conn in &mut conns {
            let sync: i64 = sqlx::query("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .unwrap()
                .get(0);
            let fk: i64 = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(&mut **conn)
                .await
                .unwrap()
                .get(0);
            let mode: String = sqlx::query("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .unwrap()
                .get(0);
            assert_eq!((sync, fk, mode.as_str()), (1, 1, "wal"));
        }
    }

    /// A caller dropped in the middle of `begin` leaves no session inside a transaction: the
    /// pool would hand it on, and every later statement on it would run inside that
    /// transaction, hold its locks and never be committed (sqlx 0.9's `Pool::begin` did, on
    /// PostgreSQL: a job's end then waited behind an aborted progress report).
    #[tokio::test]
    async fn a_begin_cut_short_leaves_no_transaction_open() {
        let (other, dir) = store().await;
        // One connection, so that every statement goes where the cut-short `BEGIN` went; the
        // other store sees only what is committed.
        let s = super::Store {
            pool: sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&super::testing::url(&dir))
                .await
                .unwrap(),
            backend: other.backend(),
        };
        sqlx::query("CREATE TABLE begin_probe (n BIGINT NOT NULL)")
            .execute(s.pool())
            .await
            .unwrap();
        for round in 0..40_i64 {
            // Dropped after one to four polls a moment apart (taking a connection, which is
            // pinged first, then `BEGIN`): at some of them `BEGIN` is on its way and its answer
            // not read yet.
            {
                let mut begin = std::pin::pin!(s.begin());
                for _ in 0..=round % 4 {
                    let done = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(begin.as_mut().poll(cx).is_ready())
                    })
                    .await;
                    if done {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            // A statement through the pool, as the rest of the server makes them, is committed.
            sqlx::query("INSERT INTO begin_probe (n) VALUES ($1)")
                .bind(round)
                .execute(s.pool())
                .await
                .unwrap();
            let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM begin_probe")
                .fetch_one(other.pool())
                .await
                .unwrap();
            assert_eq!(
                seen,
                round + 1,
                "a write after round {round} is not committed"
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    /// A store on a fresh SQLite file that lives as long as the returned directory, or on a
    /// fresh database of a throwaway PostgreSQL server when the tests run against PostgreSQL
    /// (`LOCKSTEP_TEST_DATABASE=postgres`).
    pub async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = reopen(&dir).await;
        (store, dir)
    }

    /// Another store on the database of `dir` (as a second node would have).
    pub async fn reopen(dir: &tempfile::TempDir) -> Store {
        Store::connect(&url(dir))
            .await
            .expect("the test database opens")
    }

    /// The URL of the test database of `dir`.
    pub fn url(dir: &tempfile::TempDir) -> String {
        if lockstep_testkit::use_postgres() {
            lockstep_testkit::postgres::database_for(dir.path())
        } else {
            format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())
        }
    }
}
