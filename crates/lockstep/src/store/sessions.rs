//! Session tokens, stored as SHA-256 hashes so a leaked database does not leak live sessions.

use super::users::stored_name;
use super::{Store, parse_id};
use crate::store::users::User;
use lockstep_core::time::ServerTime;
use sqlx::Row;

/// A stored session, with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: User,
    pub created: ServerTime,
    pub expires: ServerTime,
    /// When the token was replaced by a newer one.
    pub replaced: Option<ServerTime>,
}

impl Store {
    /// A new session; `addr` is the client's address key, when known.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &User,
        now: ServerTime,
        expires: ServerTime,
        addr: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, addr) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user.id.to_string())
        .bind(now.millis())
        .bind(expires.millis())
        .bind(addr)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.user_id, u.display_name, s.created_ms, s.expires_ms, s.replaced_ms \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                user: User {
                    id: parse_id(&r.try_get::<String, _>("user_id")?)?,
                    name: stored_name(&r.try_get::<String, _>("display_name")?),
                },
                created: ServerTime::from_millis(r.try_get("created_ms")?),
                expires: ServerTime::from_millis(r.try_get("expires_ms")?),
                replaced: r
                    .try_get::<Option<i64>, _>("replaced_ms")?
                    .map(ServerTime::from_millis),
            })
        })
        .transpose()
    }

    /// Replaces `old` by `new` for the same user. Returns false (and writes nothing) when another
    /// request rotated `old` first; that request's new token is the one the browser will keep.
    pub async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        user: &User,
        now: ServerTime,
        expires: ServerTime,
        addr: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin().await?;
        let marked = sqlx::query(
            "UPDATE sessions SET replaced_ms = $1 WHERE token_hash = $2 AND replaced_ms IS NULL",
        )
        .bind(now.millis())
        .bind(old_hash)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, addr) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_hash)
        .bind(user.id.to_string())
        .bind(now.millis())
        .bind(expires.millis())
        .bind(addr)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes expired sessions and replaced ones past their grace. Returns how many went.
    pub async fn purge_sessions(
        &self,
        now: ServerTime,
        replaced_before: ServerTime,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_ms < $1 OR (replaced_ms IS NOT NULL AND replaced_ms < $2)",
        )
        .bind(now.millis())
        .bind(replaced_before.millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;
    use lockstep_core::ids::UserId;
    use lockstep_core::names::DisplayName;
    use uuid::Uuid;

    #[tokio::test]
    async fn rotation_happens_once() {
        let (s, _dir) = store().await;
        let u = User {
            id: UserId(Uuid::now_v7()),
            name: DisplayName::parse("Ann").unwrap(),
        };
        s.create_user(&u, ServerTime(0)).await.unwrap();
        let exp = ServerTime::from_millis(10_000);
        s.create_session("a", &u, ServerTime(0), exp, Some("192.0.2.1"))
            .await
            .unwrap();
        let now = ServerTime::from_millis(5);
        assert!(
            s.rotate_session("a", "b", &u, now, exp, None)
                .await
                .unwrap()
        );
        // A concurrent request that also tries to rotate "a" loses and writes nothing.
        assert!(
            !s.rotate_session("a", "c", &u, now, exp, None)
                .await
                .unwrap()
        );
        assert!(s.session("c").await.unwrap().is_none());
        let a = s.session("a").await.unwrap().unwrap();
        assert_eq!((a.user.id, a.replaced), (u.id, Some(now)));
        assert_eq!(s.session("b").await.unwrap().unwrap().replaced, None);
        // Purging removes the replaced one once its grace is over, keeps the live one.
        assert_eq!(
            s.purge_sessions(ServerTime::from_millis(6), ServerTime::from_millis(6))
                .await
                .unwrap(),
            1
        );
        assert!(s.session("b").await.unwrap().is_some());
    }
}
