//! The keyframe times of direct links to MP4 files (see `media::moov`), kept in the database so
//! that every node serves them, as the JSON the room page reads. At most [`KEPT`] are kept: the
//! oldest go as new ones come.

use super::Store;
use lockstep_core::time::ServerTime;

/// Lists kept: a few kilobytes each for a film with a keyframe every few seconds, at most about
/// 200 KB (`media::moov::MAX_KEYFRAMES` times).
pub const KEPT: i64 = 2_000;

impl Store {
    /// A link's keyframes JSON, if it is kept.
    pub async fn link_keyframes(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT json FROM link_keyframes WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
    }

    /// Whether a link's keyframes are kept, without reading them.
    pub async fn has_link_keyframes(&self, name: &str) -> Result<bool, sqlx::Error> {
        let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM link_keyframes WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(found > 0)
    }

    /// Keeps a link's keyframes (a second copy of the same name is ignored), then drops the
    /// oldest past [`KEPT`].
    pub async fn save_link_keyframes(
        &self,
        name: &str,
        json: &str,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO link_keyframes (name, json, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(json)
        .bind(now.millis())
        .execute(self.pool())
        .await?;
        self.prune_link_keyframes(KEPT).await
    }

    /// Drops the oldest lists past `kept`.
    pub(crate) async fn prune_link_keyframes(&self, kept: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM link_keyframes WHERE created_ms < \
             (SELECT created_ms FROM link_keyframes ORDER BY created_ms DESC LIMIT 1 OFFSET $1)",
        )
        .bind(kept - 1)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store;
    use lockstep_core::time::ServerTime;

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
        s.prune_link_keyframes(2).await.unwrap();
        for (name, kept) in [("a", false), ("b", false), ("c", true), ("d", true)] {
            assert_eq!(s.has_link_keyframes(name).await.unwrap(), kept, "{name}");
        }
    }
}
