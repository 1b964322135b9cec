//! A user's lasting relation to a room: moderator, muted, banned, admitted through its gate, and
//! when they last visited.

use super::{Store, flag, get_flag, parse_id};
use lockstep_core::ids::{RoomId, UserId};
use lockstep_core::room::Standing;
use lockstep_core::time::ServerTime;
use sqlx::Row;

/// What the store knows about one user in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Membership {
    pub standing: Standing,
    /// Passed the invite link or the password.
    pub admitted: bool,
    /// When a visit was last recorded.
    pub visited: Option<ServerTime>,
}

/// A member row's standing and times (the columns of [`Store::membership`]).
pub(crate) fn membership_from_row(r: &sqlx::any::AnyRow) -> Result<Membership, sqlx::Error> {
    Ok(Membership {
        standing: Standing {
            moderator: get_flag(r, "moderator")?,
            muted: get_flag(r, "muted")?,
            banned: get_flag(r, "banned")?,
        },
        admitted: r.try_get::<Option<i64>, _>("admitted_ms")?.is_some(),
        visited: r
            .try_get::<Option<i64>, _>("visited_ms")?
            .map(ServerTime::from_millis),
    })
}

impl Store {
    /// Every user with a moderator, mute or ban flag in the room.
    pub async fn standings(&self, room: RoomId) -> Result<Vec<(UserId, Standing)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT user_id, moderator, muted, banned FROM room_members \
             WHERE room_id = $1 AND (moderator <> 0 OR muted <> 0 OR banned <> 0)",
        )
        .bind(room.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id(&r.try_get::<String, _>("user_id")?)?,
                    Standing {
                        moderator: get_flag(r, "moderator")?,
                        muted: get_flag(r, "muted")?,
                        banned: get_flag(r, "banned")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn membership(&self, room: RoomId, user: UserId) -> Result<Membership, sqlx::Error> {
        let row = sqlx::query(
            "SELECT moderator, muted, banned, admitted_ms, visited_ms FROM room_members \
             WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room.to_string())
        .bind(user.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(membership_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub async fn set_standing(
        &self,
        room: RoomId,
        user: UserId,
        standing: Standing,
    ) -> Result<(), sqlx::Error> {
        Self::set_standing_on(&mut *self.pool().acquire().await?, room, user, standing).await
    }

    pub(crate) async fn set_standing_on(
        conn: &mut sqlx::AnyConnection,
        room: RoomId,
        user: UserId,
        standing: Standing,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, moderator, muted, banned) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET moderator = $3, muted = $4, banned = $5",
        )
        .bind(room.to_string())
        .bind(user.to_string())
        .bind(flag(standing.moderator))
        .bind(flag(standing.muted))
        .bind(flag(standing.banned))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records that `user` passed the room's gate (invite link, password).
    pub async fn admit(
        &self,
        room: RoomId,
        user: UserId,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO room_members (room_id, user_id, admitted_ms) VALUES ($1, $2, $3) \
                   ON CONFLICT (room_id, user_id) DO UPDATE SET admitted_ms = $3";
        self.stamp_member(sql, room, user, now).await
    }

    /// Bars from `room`, until `until`, the addresses `user` made or rotated sessions from.
    /// Returns how many addresses.
    pub async fn bar_session_addresses(
        &self,
        room: RoomId,
        user: UserId,
        until: ServerTime,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO room_address_bans (room_id, addr, user_id, until_ms) \
             SELECT DISTINCT $1, addr, $2, $3 FROM sessions WHERE user_id = $2 AND addr IS NOT NULL \
             ON CONFLICT (room_id, addr, user_id) DO UPDATE SET until_ms = $3",
        )
        .bind(room.to_string())
        .bind(user.to_string())
        .bind(until.millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Bars `addr` (a client address key) from `room` until `until`, for `user`'s ban.
    pub async fn bar_address(
        &self,
        room: RoomId,
        user: UserId,
        addr: &str,
        until: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_address_bans (room_id, addr, user_id, until_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, addr, user_id) DO UPDATE SET until_ms = $4",
        )
        .bind(room.to_string())
        .bind(addr)
        .bind(user.to_string())
        .bind(until.millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Lifts the address bars of `user`'s ban in `room` (they were unbanned).
    pub async fn lift_address_bars(&self, room: RoomId, user: UserId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM room_address_bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.to_string())
            .bind(user.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Until when `addr` is barred from `room`, if it is now.
    pub async fn address_barred(
        &self,
        room: RoomId,
        addr: &str,
        now: ServerTime,
    ) -> Result<Option<ServerTime>, sqlx::Error> {
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(until_ms) FROM room_address_bans \
             WHERE room_id = $1 AND addr = $2 AND until_ms > $3",
        )
        .bind(room.to_string())
        .bind(addr)
        .bind(now.millis())
        .fetch_one(self.pool())
        .await?;
        Ok(until.map(ServerTime::from_millis))
    }

    /// Forgets address bars that have run out.
    pub async fn purge_address_bars(&self, now: ServerTime) -> Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM room_address_bans WHERE until_ms <= $1")
                .bind(now.millis())
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Records a visit, for "rooms I visited recently". Someone who came in passed the room's
    /// gate as it was then, so a visit also admits: viewers of a public room keep their place
    /// when it is made private.
    pub async fn record_visit(
        &self,
        room: RoomId,
        user: UserId,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        Self::record_visit_on(&mut *self.pool().acquire().await?, room, user, now).await
    }

    pub(crate) async fn record_visit_on(
        conn: &mut sqlx::AnyConnection,
        room: RoomId,
        user: UserId,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO room_members (room_id, user_id, visited_ms, admitted_ms) \
                   VALUES ($1, $2, $3, $3) ON CONFLICT (room_id, user_id) \
                   DO UPDATE SET visited_ms = $3, \
                   admitted_ms = COALESCE(room_members.admitted_ms, $3)";
        sqlx::query(sql)
            .bind(room.to_string())
            .bind(user.to_string())
            .bind(now.millis())
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Runs one of the upserts above, which set a time column of a member row.
    async fn stamp_member(
        &self,
        sql: &'static str,
        room: RoomId,
        user: UserId,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(sql)
            .bind(room.to_string())
            .bind(user.to_string())
            .bind(now.millis())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::tests::{room_row, user};
    use crate::store::testing::store;
    use lockstep_core::settings::Visibility;

    #[tokio::test]
    async fn standings_admission_and_visits() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let ann = user(&s).await;
        let room = room_row(owner.id, Visibility::Private);
        s.create_room(&room).await.unwrap();
        assert_eq!(
            s.membership(room.id, ann.id).await.unwrap(),
            Membership::default()
        );
        s.admit(room.id, ann.id, ServerTime(0)).await.unwrap();
        s.record_visit(room.id, ann.id, ServerTime(0))
            .await
            .unwrap();
        let banned = Standing {
            banned: true,
            ..Default::default()
        };
        s.set_standing(room.id, ann.id, banned).await.unwrap();
        let m = s.membership(room.id, ann.id).await.unwrap();
        assert_eq!((m.standing, m.admitted), (banned, true));
        assert_eq!(s.standings(room.id).await.unwrap(), vec![(ann.id, banned)]);
        // Banned users do not see the room among their visits.
        assert!(s.visited_rooms(ann.id, 10).await.unwrap().is_empty());
        s.set_standing(room.id, ann.id, Standing::default())
            .await
            .unwrap();
        assert_eq!(s.visited_rooms(ann.id, 10).await.unwrap().len(), 1);
        assert!(s.standings(room.id).await.unwrap().is_empty());
    }
}
