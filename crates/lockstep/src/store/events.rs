//! Writes a room event to the tables it changes. The room actor calls this before it tells anyone
//! about the event, so what a client has seen (and what was acknowledged) is in the store.

use super::{Backend, Store, flag, to_json};
use lockstep_core::ids::RoomId;
use lockstep_core::room::Event;
use lockstep_core::time::ServerTime;
use sqlx::AnyConnection;

/// The room has a newer writer than the one that tried to write (see
/// [`Store::persist_event_fenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenced;

impl Store {
    /// Persists `event` of `room`; returns the id of the chat line it stored, if any.
    pub async fn persist_event(
        &self,
        room: RoomId,
        event: &Event,
        now: ServerTime,
    ) -> Result<Option<i64>, sqlx::Error> {
        Self::persist_on(&mut *self.pool().acquire().await?, room, event, now).await
    }

    /// [`Store::persist_event`] for a room written by the holder of fencing token `fence`
    /// (several nodes): the check that the room's row still holds that token and the event's
    /// writes are one transaction, and on PostgreSQL the row stays locked until it commits, so a
    /// node that took the room meanwhile waits for it, and one that took it before is seen.
    pub async fn persist_event_fenced(
        &self,
        room: RoomId,
        fence: i64,
        event: &Event,
        now: ServerTime,
    ) -> Result<Result<Option<i64>, Fenced>, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        if Self::room_fence_locked(&mut tx, self.backend(), room).await? != Some(fence) {
            return Ok(Err(Fenced));
        }
        let chat_id = Self::persist_on(&mut tx, room, event, now).await?;
        tx.commit().await?;
        Ok(Ok(chat_id))
    }

    /// The room's fencing token, its row locked until the transaction `conn` is in ends (on
    /// PostgreSQL; SQLite has one writer anyway).
    pub(crate) async fn room_fence_locked(
        conn: &mut AnyConnection,
        backend: Backend,
        room: RoomId,
    ) -> Result<Option<i64>, sqlx::Error> {
        let lock = match backend {
            Backend::Postgres => "SELECT fence FROM rooms WHERE id = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT fence FROM rooms WHERE id = $1",
        };
        sqlx::query_scalar::<_, i64>(lock)
            .bind(room.to_string())
            .fetch_optional(conn)
            .await
    }

    pub(crate) async fn persist_on(
        conn: &mut AnyConnection,
        room: RoomId,
        event: &Event,
        now: ServerTime,
    ) -> Result<Option<i64>, sqlx::Error> {
        match event {
            Event::Playback { item_id, state, .. } => {
                Self::save_playback_on(conn, room, *item_id, state, now).await?;
            }
            Event::NowPlaying {
                item,
                previous,
                state,
                ..
            } => {
                // One transaction (a savepoint within a caller's), so that a crash cannot leave
                // the room pointing at a deleted item.
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                if let Some(previous) = previous {
                    sqlx::query("DELETE FROM queue_items WHERE id = $1")
                        .bind(previous.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(item) = item {
                    sqlx::query(
                        "INSERT INTO queue_items (id, room_id, ord, data, upload_id) VALUES ($1, $2, -1, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET ord = -1, data = $3",
                    )
                    .bind(item.id.to_string())
                    .bind(room.to_string())
                    .bind(to_json(item)?)
                    .bind(item.upload_id().map(|u| u.to_string()))
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE rooms SET current_item_id = $1, paused = $2, position = $3, rate = $4, \
                     active_ms = $5 WHERE id = $6",
                )
                .bind(item.as_ref().map(|i| i.id.to_string()))
                .bind(flag(state.paused))
                .bind(state.position_at(now))
                .bind(state.rate)
                .bind(now.millis())
                .bind(room.to_string())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            Event::QueueAdded { item, .. } | Event::ItemUpdated { item } => {
                Self::upsert_item_on(conn, room, item).await?;
            }
            Event::QueueRemoved { item_id, .. } => Self::delete_item_on(conn, *item_id).await?,
            Event::QueueMoved { order, .. } => Self::reorder_queue_on(conn, room, order).await?,
            Event::Chat { line } => {
                return Self::insert_chat_line_on(conn, room, line).await.map(Some);
            }
            Event::Settings { settings, .. } => {
                Self::save_settings_on(conn, room, settings).await?
            }
            Event::StandingChanged { user_id, standing } => {
                Self::set_standing_on(conn, room, *user_id, *standing).await?;
            }
            Event::MemberJoined { member } => {
                Self::record_visit_on(conn, room, member.user_id, now).await?;
            }
            // The user's name is written where the rename starts (it applies to every room).
            Event::Renamed { .. }
            | Event::MemberLeft { .. }
            | Event::MemberUpdated { .. }
            | Event::Votes { .. }
            | Event::Removed { .. } => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::tests::{room_row, user};
    use crate::store::testing::store;
    use lockstep_core::room::NewChatLine;
    use lockstep_core::settings::Visibility;

    fn chat(text: &str) -> Event {
        Event::Chat {
            line: NewChatLine {
                user_id: None,
                name: None,
                text: text.into(),
                system: None,
                at: ServerTime(1),
            },
        }
    }

    /// A writer whose token is no longer the room's writes nothing, in the same transaction as
    /// the check.
    #[tokio::test]
    async fn a_fenced_write_happens_only_with_the_rooms_current_token() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let room = room_row(owner.id, Visibility::Public);
        s.create_room(&room).await.unwrap();
        assert!(s.take_room_fence(room.id, 1).await.unwrap());
        let written = s
            .persist_event_fenced(room.id, 1, &chat("by the owner"), ServerTime(1))
            .await
            .unwrap();
        assert!(matches!(written, Ok(Some(_))));
        // Another node takes the room.
        assert!(s.take_room_fence(room.id, 2).await.unwrap());
        assert!(
            !s.take_room_fence(room.id, 2).await.unwrap(),
            "only newer tokens"
        );
        let refused = s
            .persist_event_fenced(room.id, 1, &chat("by a node that lost it"), ServerTime(2))
            .await
            .unwrap();
        assert_eq!(refused, Err(Fenced));
        let texts: Vec<String> = s
            .chat_lines(room.id, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["by the owner"]);
    }
}
