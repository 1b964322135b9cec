//! Users. Everyone starts anonymous with a generated name.

use super::{Store, parse_id};
use lockstep_core::ids::UserId;
use lockstep_core::names::DisplayName;
use lockstep_core::time::ServerTime;
use sqlx::Row;

/// A user as the server knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: DisplayName,
}

/// A name read back from the store; names were validated when written, but a hand-edited
/// database should not make requests fail.
pub(crate) fn stored_name(raw: &str) -> DisplayName {
    DisplayName::parse(raw)
        .unwrap_or_else(|_| DisplayName::parse("Someone").expect("a valid literal name"))
}

impl Store {
    pub async fn create_user(&self, user: &User, now: ServerTime) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO users (id, display_name, created_ms) VALUES ($1, $2, $3)")
            .bind(user.id.to_string())
            .bind(user.name.as_str())
            .bind(now.millis())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT id, display_name FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(User {
                id: parse_id(&r.try_get::<String, _>("id")?)?,
                name: stored_name(&r.try_get::<String, _>("display_name")?),
            })
        })
        .transpose()
    }

    /// When `id` was created, if it exists.
    pub async fn user_created(&self, id: UserId) -> Result<Option<ServerTime>, sqlx::Error> {
        let created: Option<i64> = sqlx::query_scalar("SELECT created_ms FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(created.map(ServerTime::from_millis))
    }

    /// Deletes users made before `before` who never did anything: no session used since then (a
    /// used session is rotated every few minutes, so a recent one means a recent visit), and no
    /// room, membership, upload, saved video, playlist or chat line. A request without cookies
    /// makes a user, so crawlers and throwaway clients leave many. Deletes at most `batch`;
    /// returns how many went.
    pub async fn purge_idle_users(
        &self,
        before: ServerTime,
        batch: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM users WHERE id IN (SELECT u.id FROM users u WHERE u.created_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.created_ms >= $1) \
             AND NOT EXISTS (SELECT 1 FROM rooms r WHERE r.owner_id = u.id) \
             AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.user_id = u.id) \
             AND NOT EXISTS (SELECT 1 FROM uploads up WHERE up.owner_id = u.id) \
             AND NOT EXISTS (SELECT 1 FROM library_items l WHERE l.owner_id = u.id) \
             AND NOT EXISTS (SELECT 1 FROM playlists p WHERE p.owner_id = u.id) \
             AND NOT EXISTS (SELECT 1 FROM chat_lines c WHERE c.user_id = u.id) \
             LIMIT $2)",
        )
        .bind(before.millis())
        .bind(batch)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn rename_user(&self, id: UserId, name: &DisplayName) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;
    use uuid::Uuid;

    #[tokio::test]
    async fn create_read_rename() {
        let (s, _dir) = store().await;
        let u = User {
            id: UserId(Uuid::now_v7()),
            name: DisplayName::parse("Ann").unwrap(),
        };
        s.create_user(&u, ServerTime(0)).await.unwrap();
        assert_eq!(s.user(u.id).await.unwrap(), Some(u.clone()));
        let bo = DisplayName::parse("Bo").unwrap();
        s.rename_user(u.id, &bo).await.unwrap();
        assert_eq!(s.user(u.id).await.unwrap().unwrap().name, bo);
        assert_eq!(s.user(UserId(Uuid::now_v7())).await.unwrap(), None);
    }
}
