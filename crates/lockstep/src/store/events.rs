//! Writes a room event to the tables it changes. The room actor calls this before it tells anyone
//! about the event, so what a client has seen (and what was acknowledged) is in the store.

use super::{Store, flag, to_json};
use lockstep_core::ids::RoomId;
use lockstep_core::room::Event;
use lockstep_core::time::ServerTime;

impl Store {
    /// Persists `event` of `room`; returns the id of the chat line it stored, if any.
    pub async fn persist_event(
        &self,
        room: RoomId,
        event: &Event,
        now: ServerTime,
    ) -> Result<Option<i64>, sqlx::Error> {
        match event {
            Event::Playback { item_id, state, .. } => {
                self.save_playback(room, *item_id, state, now).await?;
            }
            Event::NowPlaying {
                item,
                previous,
                state,
                ..
            } => {
                // One transaction, so that a crash cannot leave the room pointing at a deleted item.
                let mut tx = self.pool().begin().await?;
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
                self.upsert_item(room, item).await?;
            }
            Event::QueueRemoved { item_id, .. } => self.delete_item(*item_id).await?,
            Event::QueueMoved { order, .. } => self.reorder_queue(room, order).await?,
            Event::Chat { line } => return self.insert_chat_line(room, line).await.map(Some),
            Event::Settings { settings, .. } => self.save_settings(room, settings).await?,
            Event::StandingChanged { user_id, standing } => {
                self.set_standing(room, *user_id, *standing).await?;
            }
            Event::MemberJoined { member } => {
                self.record_visit(room, member.user_id, now).await?;
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
