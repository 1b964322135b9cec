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
//! - [`events`]: writing a room [`Event`](lockstep_core::room::Event) to the tables it touches.

pub mod chat;
pub mod events;
pub mod jobs;
pub mod library;
pub mod members;
pub mod queue;
pub mod rooms;
pub mod sessions;
pub mod uploads;
pub mod users;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// A handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

/// Per-connection SQLite settings. `synchronous = NORMAL` in WAL mode commits without an fsync
/// (a commit survives the process being killed, not a power cut); FULL, the default, would fsync
/// every chat line. Foreign keys make deletes cascade.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

/// Which SQL dialect a URL names.
fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = is_sqlite(url);
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time anyway; a few connections let reads proceed
            // alongside a write in WAL mode.
            .max_connections(if sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
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
            .with_context(|| format!("cannot open the database at {url}"))?;
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
            anyhow::bail!(
                "unsupported database URL {url:?}: this build supports sqlite: URLs only"
            );
        }
        Ok(Store { pool })
    }

    /// The connection pool, for queries in the submodules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
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
    use sqlx::Row;

    #[tokio::test]
    async fn every_pooled_connection_has_the_pragmas() {
        let (s, _dir) = store().await;
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
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    /// A store on a fresh SQLite file that lives as long as the returned directory.
    pub async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.expect("the test database opens");
        (store, dir)
    }
}
