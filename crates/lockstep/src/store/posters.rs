//! Poster frames of direct links (see `media::poster`), kept in the database so that every node
//! serves every poster. At most [`KEPT`] are kept: the oldest go as new ones come.

use super::Store;
use lockstep_core::time::ServerTime;

/// Posters kept (about 15 KB each at 320 px wide: some 60 MB in all).
pub const KEPT: i64 = 4_000;

impl Store {
    /// A poster's JPEG, if it is kept.
    pub async fn poster(&self, name: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        sqlx::query_scalar("SELECT jpeg FROM posters WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
    }

    /// Whether a poster is kept, without reading it.
    pub async fn has_poster(&self, name: &str) -> Result<bool, sqlx::Error> {
        let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM posters WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(found > 0)
    }

    /// Keeps a poster (a second copy of the same name is ignored), then drops the oldest past
    /// [`KEPT`].
    pub async fn save_poster(
        &self,
        name: &str,
        jpeg: &[u8],
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO posters (name, jpeg, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(jpeg)
        .bind(now.millis())
        .execute(self.pool())
        .await?;
        self.prune_posters(KEPT).await
    }

    /// Drops the oldest posters past `kept`.
    pub(crate) async fn prune_posters(&self, kept: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM posters WHERE created_ms < \
             (SELECT created_ms FROM posters ORDER BY created_ms DESC LIMIT 1 OFFSET $1)",
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
        s.prune_posters(2).await.unwrap();
        for (name, kept) in [
            ("a.jpg", false),
            ("b.jpg", false),
            ("c.jpg", true),
            ("d.jpg", true),
        ] {
            assert_eq!(s.has_poster(name).await.unwrap(), kept, "{name}");
        }
    }
}
