//! Rooms: settings, access, playback, and the lobby listing.

use super::members::Membership;
use super::{Store, flag, get_flag, parse_id, parse_json, to_json};
use lockstep_core::ids::{ItemId, RoomId, UserId};
use lockstep_core::invite::InviteKey;
use lockstep_core::playback::PlaybackState;
use lockstep_core::queue::QueueItem;
use lockstep_core::settings::{RoomSettings, Visibility};
use lockstep_core::syncplay::ShortName;
use lockstep_core::time::ServerTime;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A room as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRow {
    pub id: RoomId,
    pub owner: UserId,
    pub settings: RoomSettings,
    /// argon2 PHC string, when the room has a password.
    pub password_hash: Option<String>,
    pub invite_key: InviteKey,
    pub current_item_id: Option<ItemId>,
    /// Playback as of the last save: `position` at the instant `active` (every save of the
    /// playback sets both), so a reloaded room that was playing continues by the wall clock.
    pub paused: bool,
    pub position: f64,
    pub rate: f64,
    pub created: ServerTime,
    pub active: ServerTime,
}

impl RoomRow {
    /// The playback as saved, continued to `now`. The store holds a position at a server
    /// instant (`position` as of `active`), so a playing room reloaded after a restart, a crash
    /// or a failover to another node goes on where the wall clock says and its viewers never
    /// jump back by the length of the outage.
    pub fn playback_at(&self, now: ServerTime) -> PlaybackState {
        PlaybackState {
            paused: self.paused,
            position: self.position,
            at: self.active,
            rate: self.rate,
        }
        .rebased(now)
    }
}

/// A room as the lobby lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRoom {
    pub id: RoomId,
    pub name: String,
    pub has_password: bool,
    pub current: Option<QueueItem>,
    pub active: ServerTime,
}

fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

/// The columns `room_from_row` reads, as a literal for `concat!` (sqlx refuses SQL built at run time).
macro_rules! room_columns {
    () => {
        "id, owner_id, settings, password_hash, invite_key, current_item_id, paused, position, \
         rate, created_ms, active_ms"
    };
}

fn room_from_row(r: &AnyRow) -> Result<RoomRow, sqlx::Error> {
    let key: String = r.try_get("invite_key")?;
    Ok(RoomRow {
        id: parse_id(&r.try_get::<String, _>("id")?)?,
        owner: parse_id(&r.try_get::<String, _>("owner_id")?)?,
        settings: parse_json(&r.try_get::<String, _>("settings")?)?,
        password_hash: r.try_get("password_hash")?,
        invite_key: InviteKey::parse(&key).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        current_item_id: r
            .try_get::<Option<String>, _>("current_item_id")?
            .map(|s| parse_id(&s))
            .transpose()?,
        paused: get_flag(r, "paused")?,
        position: r.try_get("position")?,
        rate: r.try_get("rate")?,
        created: ServerTime::from_millis(r.try_get("created_ms")?),
        active: ServerTime::from_millis(r.try_get("active_ms")?),
    })
}

/// The start of a query for room cards: the room and its current item (`r` and `q`), read by
/// `listed_from_row`.
macro_rules! listed_select {
    () => {
        "SELECT r.id, r.name, r.password_hash, r.active_ms, q.data AS item FROM rooms r \
         LEFT JOIN queue_items q ON q.id = r.current_item_id "
    };
}

fn listed_from_row(r: &AnyRow) -> Result<ListedRoom, sqlx::Error> {
    Ok(ListedRoom {
        id: parse_id(&r.try_get::<String, _>("id")?)?,
        name: r.try_get("name")?,
        has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
        current: r
            .try_get::<Option<String>, _>("item")?
            .map(|s| parse_json(&s))
            .transpose()?,
        active: ServerTime::from_millis(r.try_get("active_ms")?),
    })
}

impl Store {
    pub async fn create_room(&self, room: &RoomRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO rooms (id, owner_id, visibility, password_hash, invite_key, settings, name, \
             paused, position, rate, created_ms, active_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(room.id.to_string())
        .bind(room.owner.to_string())
        .bind(visibility_str(room.settings.visibility))
        .bind(room.password_hash.clone())
        .bind(room.invite_key.as_str())
        .bind(to_json(&room.settings)?)
        .bind(room.settings.name.as_str())
        .bind(flag(room.paused))
        .bind(room.position)
        .bind(room.rate)
        .bind(room.created.millis())
        .bind(room.active.millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn room(&self, id: RoomId) -> Result<Option<RoomRow>, sqlx::Error> {
        sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(room_from_row)
        .transpose()
    }

    /// What the door of a room needs to let `user` from `addr` in, in one query (a join reads
    /// nothing else): the room, the user's member row (default when none), and until when a ban
    /// bars the address, if one does.
    pub async fn room_door(
        &self,
        id: RoomId,
        user: UserId,
        addr: &str,
        now: ServerTime,
    ) -> Result<Option<(RoomRow, Membership, Option<ServerTime>)>, sqlx::Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            ", COALESCE(m.moderator, 0) AS moderator, COALESCE(m.muted, 0) AS muted, \
             COALESCE(m.banned, 0) AS banned, m.admitted_ms, m.visited_ms, \
             (SELECT MAX(until_ms) FROM room_address_bans b \
              WHERE b.room_id = r.id AND b.addr = $3 AND b.until_ms > $4) AS barred_until \
             FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
             WHERE r.id = $1"
        ))
        .bind(id.to_string())
        .bind(user.to_string())
        .bind(addr)
        .bind(now.millis())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                room_from_row(&r)?,
                super::members::membership_from_row(&r)?,
                r.try_get::<Option<i64>, _>("barred_until")?
                    .map(ServerTime::from_millis),
            ))
        })
        .transpose()
    }

    pub async fn room_by_invite(&self, key: &InviteKey) -> Result<Option<RoomRow>, sqlx::Error> {
        sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE invite_key = $1"
        ))
        .bind(key.as_str())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(room_from_row)
        .transpose()
    }

    pub async fn save_settings(
        &self,
        id: RoomId,
        settings: &RoomSettings,
    ) -> Result<(), sqlx::Error> {
        Self::save_settings_on(&mut *self.pool().acquire().await?, id, settings).await
    }

    pub(crate) async fn save_settings_on(
        conn: &mut sqlx::AnyConnection,
        id: RoomId,
        settings: &RoomSettings,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET settings = $1, name = $2, visibility = $3 WHERE id = $4")
            .bind(to_json(settings)?)
            .bind(settings.name.as_str())
            .bind(visibility_str(settings.visibility))
            .bind(id.to_string())
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn set_password_hash(
        &self,
        id: RoomId,
        hash: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET password_hash = $1 WHERE id = $2")
            .bind(hash.map(str::to_owned))
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The room with this short Syncplay name, if any.
    pub async fn room_by_syncplay_name(
        &self,
        name: &ShortName,
    ) -> Result<Option<RoomRow>, sqlx::Error> {
        sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms WHERE syncplay_name = $1"
        ))
        .bind(name.as_str())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(room_from_row)
        .transpose()
    }

    /// The room's short Syncplay name, if it has one.
    pub async fn syncplay_name(&self, id: RoomId) -> Result<Option<ShortName>, sqlx::Error> {
        let name: Option<Option<String>> =
            sqlx::query_scalar("SELECT syncplay_name FROM rooms WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(name.flatten().and_then(|n| ShortName::parse(&n).ok()))
    }

    /// Gives the room a short Syncplay name (`None` takes it away). False when another room has
    /// that name.
    pub async fn set_syncplay_name(
        &self,
        id: RoomId,
        name: Option<&ShortName>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE rooms SET syncplay_name = $1 WHERE id = $2")
            .bind(name.map(|n| n.as_str().to_owned()))
            .bind(id.to_string())
            .execute(self.pool())
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn set_invite_key(&self, id: RoomId, key: &InviteKey) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET invite_key = $1 WHERE id = $2")
            .bind(key.as_str())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes a room with its queue, chat and memberships.
    pub async fn delete_room(&self, id: RoomId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records that the lease holder with fencing token `token` now writes the room; false when
    /// a holder with a newer token already does.
    pub async fn take_room_fence(&self, id: RoomId, token: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE rooms SET fence = $1 WHERE id = $2 AND fence < $1")
            .bind(token)
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The fencing token of the room's current writer (`None`: no such room).
    pub async fn room_fence(&self, id: RoomId) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT fence FROM rooms WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
    }

    /// Saves what is playing and where, as of `now`.
    pub async fn save_playback(
        &self,
        id: RoomId,
        current: Option<ItemId>,
        state: &PlaybackState,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        Self::save_playback_on(&mut *self.pool().acquire().await?, id, current, state, now).await
    }

    pub(crate) async fn save_playback_on(
        conn: &mut sqlx::AnyConnection,
        id: RoomId,
        current: Option<ItemId>,
        state: &PlaybackState,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE rooms SET current_item_id = $1, paused = $2, position = $3, rate = $4, \
             active_ms = $5 WHERE id = $6",
        )
        .bind(current.map(|i| i.to_string()))
        .bind(flag(state.paused))
        .bind(state.position_at(now))
        .bind(state.rate)
        .bind(now.millis())
        .bind(id.to_string())
        .execute(conn)
        .await?;
        Ok(())
    }

    /// [`Store::save_playback_on`] for several rooms with one statement (group commit).
    pub(crate) async fn save_playbacks_on(
        conn: &mut sqlx::AnyConnection,
        backend: super::Backend,
        rooms: &[(RoomId, Option<ItemId>, PlaybackState, ServerTime)],
    ) -> Result<(), sqlx::Error> {
        // VALUES columns are named column1.. on both databases.
        let mut sql = String::from(
            "UPDATE rooms SET current_item_id = v.column2, paused = v.column3, \
             position = v.column4, rate = v.column5, active_ms = v.column6 FROM (VALUES ",
        );
        super::push_values(&mut sql, backend, rooms.len(), 6);
        sql.push_str(") AS v WHERE rooms.id = v.column1");
        // Only placeholders are generated; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, current, state, now) in rooms {
            query = query
                .bind(id.to_string())
                .bind(current.map(|i| i.to_string()))
                .bind(flag(state.paused))
                .bind(state.position_at(*now))
                .bind(state.rate)
                .bind(now.millis());
        }
        query.execute(conn).await?;
        Ok(())
    }

    /// Public rooms, most recently active first, with what they are playing.
    pub async fn public_rooms(&self, limit: i64) -> Result<Vec<ListedRoom>, sqlx::Error> {
        let query = sqlx::query(concat!(
            listed_select!(),
            "WHERE r.visibility = 'public' ORDER BY r.active_ms DESC LIMIT $1"
        ))
        .bind(limit);
        self.listed(query).await
    }

    /// The public rooms among `ids` (any order). The lobby asks for the rooms that have
    /// viewers right now, whatever their age, so a flood of new empty rooms cannot push them out.
    pub async fn public_rooms_among(&self, ids: &[RoomId]) -> Result<Vec<ListedRoom>, sqlx::Error> {
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "{}WHERE r.visibility = 'public' AND r.id IN ({})",
                listed_select!(),
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            found.extend(self.listed(query).await?);
        }
        Ok(found)
    }

    /// Rooms `user` owns, newest first.
    pub async fn owned_rooms(
        &self,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<ListedRoom>, sqlx::Error> {
        let query = sqlx::query(concat!(
            listed_select!(),
            "WHERE r.owner_id = $1 ORDER BY r.created_ms DESC LIMIT $2"
        ))
        .bind(user.to_string())
        .bind(limit);
        self.listed(query).await
    }

    /// Rooms `user` visited and may still enter, most recent first.
    pub async fn visited_rooms(
        &self,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<ListedRoom>, sqlx::Error> {
        let query = sqlx::query(concat!(
            listed_select!(),
            "JOIN room_members m ON m.room_id = r.id \
             WHERE m.user_id = $1 AND m.visited_ms IS NOT NULL AND m.banned = 0 \
             ORDER BY m.visited_ms DESC LIMIT $2"
        ))
        .bind(user.to_string())
        .bind(limit);
        self.listed(query).await
    }

    async fn listed(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<Vec<ListedRoom>, sqlx::Error> {
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(listed_from_row)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing::store;
    use crate::store::users::User;
    use lockstep_core::names::{DisplayName, RoomName};
    use uuid::Uuid;

    pub async fn user(s: &Store) -> User {
        let u = User {
            id: UserId(Uuid::now_v7()),
            name: DisplayName::parse("Ann").unwrap(),
        };
        s.create_user(&u, ServerTime(0)).await.unwrap();
        u
    }

    pub fn room_row(owner: UserId, visibility: Visibility) -> RoomRow {
        let mut key = [0u8; 18];
        key[..16].copy_from_slice(Uuid::now_v7().as_bytes());
        RoomRow {
            id: RoomId(Uuid::now_v7()),
            owner,
            settings: RoomSettings::new(RoomName::parse("Films").unwrap(), visibility, 0.5),
            password_hash: None,
            invite_key: InviteKey::from_bytes(key),
            current_item_id: None,
            paused: true,
            position: 0.0,
            rate: 1.0,
            created: ServerTime::from_millis(1),
            active: ServerTime::from_millis(1),
        }
    }

    #[tokio::test]
    async fn create_read_update_delete() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let mut room = room_row(owner.id, Visibility::Public);
        s.create_room(&room).await.unwrap();
        assert_eq!(s.room(room.id).await.unwrap(), Some(room.clone()));
        assert_eq!(
            s.room_by_invite(&room.invite_key)
                .await
                .unwrap()
                .map(|r| r.id),
            Some(room.id)
        );
        room.settings.name = RoomName::parse("Docs").unwrap();
        room.settings.visibility = Visibility::Private;
        s.save_settings(room.id, &room.settings).await.unwrap();
        s.set_password_hash(room.id, Some("$argon2id$x"))
            .await
            .unwrap();
        let back = s.room(room.id).await.unwrap().unwrap();
        assert_eq!(back.settings, room.settings);
        assert_eq!(back.password_hash.as_deref(), Some("$argon2id$x"));
        assert!(s.public_rooms(10).await.unwrap().is_empty());
        let state = PlaybackState::paused_at(0.0, ServerTime(0)).play(ServerTime(0));
        s.save_playback(room.id, None, &state, ServerTime(2_000_000))
            .await
            .unwrap();
        let back = s.room(room.id).await.unwrap().unwrap();
        assert_eq!((back.paused, back.position), (false, 2.0));
        s.delete_room(room.id).await.unwrap();
        assert_eq!(s.room(room.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_short_syncplay_name_belongs_to_one_room_at_a_time() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let a = room_row(owner.id, Visibility::Public);
        let b = room_row(owner.id, Visibility::Private);
        s.create_room(&a).await.unwrap();
        s.create_room(&b).await.unwrap();
        let name = ShortName::parse("movienight").unwrap();
        assert_eq!(s.syncplay_name(a.id).await.unwrap(), None);
        assert!(s.set_syncplay_name(a.id, Some(&name)).await.unwrap());
        assert!(
            !s.set_syncplay_name(b.id, Some(&name)).await.unwrap(),
            "taken"
        );
        assert_eq!(s.syncplay_name(a.id).await.unwrap(), Some(name.clone()));
        let found = s.room_by_syncplay_name(&name).await.unwrap().unwrap();
        assert_eq!(found.id, a.id);
        // Given up, it is free for another room; rooms without one do not clash.
        assert!(s.set_syncplay_name(a.id, None).await.unwrap());
        assert!(s.set_syncplay_name(b.id, Some(&name)).await.unwrap());
        assert_eq!(
            s.room_by_syncplay_name(&name).await.unwrap().unwrap().id,
            b.id
        );
        assert_eq!(s.syncplay_name(a.id).await.unwrap(), None);
    }
}
