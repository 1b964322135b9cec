//! What is kept of direct links, in the database so that every node serves it: their poster
//! frames (see `media::poster`) and the keyframe times of MP4 files (see `media::moov`), each by
//! a hash of the URL. Only the newest few thousand of each are kept: the oldest go as new ones
//! come.

use super::Store;
use lockstep_core::time::ServerTime;
use sqlx::{Any, Decode, Encode, Type};

/// Posters kept (about 15 KB each at 320 px wide: some 60 MB in all).
pub const POSTERS_KEPT: i64 = 4_000;
/// Keyframe lists kept: a few kilobytes each for a film with a keyframe every few seconds, at most
/// about 200 KB (`media::moov::MAX_KEYFRAMES` times).
pub const KEYFRAMES_KEPT: i64 = 2_000;

/// One table of things kept by name: its statements (static text, one table each) and how many
/// it keeps.
struct Kept {
    select: &'static str,
    count: &'static str,
    insert: &'static str,
    prune: &'static str,
    limit: i64,
}

/// The statements of table `$table`, whose things are in column `$column`.
macro_rules! kept {
    ($table:literal, $column:literal, $limit:expr) => {
        Kept {
            select: concat!("SELECT ", $column, " FROM ", $table, " WHERE name = $1"),
            count: concat!("SELECT COUNT(*) FROM ", $table, " WHERE name = $1"),
            insert: concat!(
                "INSERT INTO ",
                $table,
                " (name, ",
                $column,
                ", created_ms) VALUES ($1, $2, $3) ",
                "ON CONFLICT (name) DO NOTHING"
            ),
            prune: concat!(
                "DELETE FROM ",
                $table,
                " WHERE created_ms < (SELECT created_ms FROM ",
                $table,
                " ORDER BY created_ms DESC LIMIT 1 OFFSET $1)"
            ),
            limit: $limit,
        }
    };
}

const POSTERS: Kept = kept!("posters", "jpeg", POSTERS_KEPT);
const KEYFRAMES: Kept = kept!("link_keyframes", "json", KEYFRAMES_KEPT);

impl Store {
    /// A poster's JPEG, if it is kept.
    pub async fn poster(&self, name: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.kept(&POSTERS, name).await
    }

    /// Whether a poster is kept, without reading it.
    pub async fn has_poster(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.is_kept(&POSTERS, name).await
    }

    /// Keeps a poster (a second copy of the same name is ignored), then drops the oldest past
    /// [`POSTERS_KEPT`].
    pub async fn save_poster(
        &self,
        name: &str,
        jpeg: &[u8],
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        self.keep(&POSTERS, name, jpeg, now).await
    }

    /// A link's keyframes JSON, if it is kept.
    pub async fn link_keyframes(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        self.kept(&KEYFRAMES, name).await
    }

    /// Whether a link's keyframes are kept, without reading them.
    pub async fn has_link_keyframes(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.is_kept(&KEYFRAMES, name).await
    }

    /// Keeps a link's keyframes (a second copy of the same name is ignored), then drops the
    /// oldest past [`KEYFRAMES_KEPT`].
    pub async fn save_link_keyframes(
        &self,
        name: &str,
        json: &str,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        self.keep(&KEYFRAMES, name, json, now).await
    }

    async fn kept<T>(&self, table: &Kept, name: &str) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> Decode<'r, Any> + Type<Any> + Send + Unpin,
    {
        sqlx::query_scalar(table.select)
            .bind(name)
            .fetch_optional(self.pool())
            .await
    }

    async fn is_kept(&self, table: &Kept, name: &str) -> Result<bool, sqlx::Error> {
        let found: i64 = sqlx::query_scalar(table.count)
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(found > 0)
    }

    async fn keep<'q, T>(
        &self,
        table: &Kept,
        name: &'q str,
        value: T,
        now: ServerTime,
    ) -> Result<(), sqlx::Error>
    where
        T: 'q + Encode<'q, Any> + Type<Any> + Send,
    {
        sqlx::query(table.insert)
            .bind(name)
            .bind(value)
            .bind(now.millis())
            .execute(self.pool())
            .await?;
        self.prune(table, table.limit).await
    }

    /// Drops the oldest of `table` past `kept`.
    async fn prune(&self, table: &Kept, kept: i64) -> Result<(), sqlx::Error> {
        sqlx::query(table.prune)
            .bind(kept - 1)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{KEYFRAMES, POSTERS};
    use crate::store::testing::store;
    use lockstep_core::time::ServerTime;

    #[tokio::test]
    async fn posters_are_kept_once_and_the_oldest_go() {
        let (s, _dir) = store().await;
        assert_eq!(s.poster("a.jpg").await.unwrap(), None);
        assert!(!s.has_poster("a.jpg").await.unwrap());
        s.save_poster(
            "a.jpg",
            &[0xFF, 0xD8, 1, 0xFF, 0xD9],
            ServerTime::from_millis(1),
        )
        .await
        .unwrap();
        // The same name again changes nothing.
        s.save_poster("a.jpg", &[9], ServerTime::from_millis(2))
            .await
            .unwrap();
        assert_eq!(
            s.poster("a.jpg").await.unwrap(),
            Some(vec![0xFF, 0xD8, 1, 0xFF, 0xD9])
        );
        assert!(s.has_poster("a.jpg").await.unwrap());
        for (i, name) in ["b.jpg", "c.jpg", "d.jpg"].iter().enumerate() {
            s.save_poster(name, &[1], ServerTime::from_millis(10 + i as i64))
                .await
                .unwrap();
        }
        s.prune(&POSTERS, 2).await.unwrap();
        for (name, kept) in [
            ("a.jpg", false),
            ("b.jpg", false),
            ("c.jpg", true),
            ("d.jpg", true),
        ] {
            assert_eq!(s.has_poster(name).await.unwrap(), kept, "{name}");
        }
    }

    #[tokio::test]
    async fn link_keyframes_are_kept_once_and_the_oldest_go() {
        let (s, _dir) = store().await;
        assert_eq!(s.link_keyframes("a").await.unwrap(), None);
        assert!(!s.has_link_keyframes("a").await.unwrap());
        let at = ServerTime::from_millis;
        s.save_link_keyframes("a", r#"{"keyframes":[0,10]}"#, at(1))
            .await
            .unwrap();
        // The same name again changes nothing.
        s.save_link_keyframes("a", r#"{"keyframes":[]}"#, at(2))
            .await
            .unwrap();
        assert_eq!(
            s.link_keyframes("a").await.unwrap().as_deref(),
            Some(r#"{"keyframes":[0,10]}"#)
        );
        for (i, name) in ["b", "c", "d"].iter().enumerate() {
            s.save_link_keyframes(name, "{}", at(10 + i as i64))
                .await
                .unwrap();
        }
        s.prune(&KEYFRAMES, 2).await.unwrap();
        for (name, kept) in [("a", false), ("b", false), ("c", true), ("d", true)] {
            assert_eq!(s.has_link_keyframes(name).await.unwrap(), kept, "{name}");
        }
        // A poster of the same name is another table's.
        assert!(!s.has_poster("c").await.unwrap());
    }
}
