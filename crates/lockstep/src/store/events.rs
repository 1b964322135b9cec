//! Writes a room event to the tables it changes, inside a transaction of the event writer
//! ([`super::writer`], group commit), before anyone hears of the event: what a client has seen
//! (and what was acknowledged) is in the store.

use super::{Backend, Store, flag, to_json};
use lockstep_core::ids::RoomId;
use lockstep_core::room::Event;
use lockstep_core::time::ServerTime;
use sqlx::AnyConnection;

impl Store {
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

    /// Writes `event` of `room` on `conn` (a transaction of the event writer); returns the id of
    /// the chat line it stored, if any.
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
            Event::Visited { user_id } => {
                Self::record_visit_on(conn, room, *user_id, now).await?;
            }
            // The user's name is written where the rename starts (it applies to every room).
            Event::Renamed { .. }
            | Event::Presence { .. }
            | Event::MemberUpdated { .. }
            | Event::Votes { .. }
            | Event::Removed { .. }
            | Event::SyncQuality { .. } => {}
        }
        Ok(None)
    }
}
