//! Queue items: the current item (named by `rooms.current_item_id`) and the upcoming ones in
//! `ord` order.

use super::{Store, parse_json, to_json};
use lockstep_core::ids::{ItemId, RoomId};
use lockstep_core::queue::QueueItem;
use sqlx::AnyConnection;
use sqlx::Row;

impl Store {
    /// The room's items, current one included, in queue order.
    pub async fn queue_items(&self, room: RoomId) -> Result<Vec<QueueItem>, sqlx::Error> {
        sqlx::query("SELECT data FROM queue_items WHERE room_id = $1 ORDER BY ord, id")
            .bind(room.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| parse_json(&r.try_get::<String, _>("data")?))
            .collect()
    }

    /// One of the room's items (the room's current one, say), if it is there.
    pub async fn queue_item(
        &self,
        room: RoomId,
        item: ItemId,
    ) -> Result<Option<QueueItem>, sqlx::Error> {
        sqlx::query("SELECT data FROM queue_items WHERE id = $1 AND room_id = $2")
            .bind(item.to_string())
            .bind(room.to_string())
            .fetch_optional(self.pool())
            .await?
            .map(|r| parse_json(&r.try_get::<String, _>("data")?))
            .transpose()
    }

    /// Adds an item after every other (or rewrites it when it exists, as when an item that was
    /// added straight to "now playing" is saved again).
    pub async fn upsert_item(&self, room: RoomId, item: &QueueItem) -> Result<(), sqlx::Error> {
        Self::upsert_item_on(&mut *self.pool().acquire().await?, room, item).await
    }

    pub(crate) async fn upsert_item_on(
        conn: &mut AnyConnection,
        room: RoomId,
        item: &QueueItem,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO queue_items (id, room_id, ord, data, upload_id) VALUES ($1, $2, \
             (SELECT COALESCE(MAX(ord), 0) + 1 FROM queue_items WHERE room_id = $2), $3, $4) \
             ON CONFLICT (id) DO UPDATE SET data = $3",
        )
        .bind(item.id.to_string())
        .bind(room.to_string())
        .bind(to_json(item)?)
        .bind(item.upload_id().map(|u| u.to_string()))
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn delete_item(&self, item: ItemId) -> Result<(), sqlx::Error> {
        Self::delete_item_on(&mut *self.pool().acquire().await?, item).await
    }

    pub(crate) async fn delete_item_on(
        conn: &mut AnyConnection,
        item: ItemId,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM queue_items WHERE id = $1")
            .bind(item.to_string())
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Renumbers the upcoming items in the given order, in one transaction.
    pub async fn reorder_queue(&self, room: RoomId, order: &[ItemId]) -> Result<(), sqlx::Error> {
        Self::reorder_queue_on(&mut *self.pool().acquire().await?, room, order).await
    }

    pub(crate) async fn reorder_queue_on(
        conn: &mut AnyConnection,
        room: RoomId,
        order: &[ItemId],
    ) -> Result<(), sqlx::Error> {
        // Within a caller's transaction this is a savepoint.
        let mut tx = sqlx::Connection::begin(conn).await?;
        for (ord, id) in order.iter().enumerate() {
            sqlx::query("UPDATE queue_items SET ord = $1 WHERE id = $2 AND room_id = $3")
                .bind(i64::try_from(ord).unwrap_or(i64::MAX))
                .bind(id.to_string())
                .bind(room.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}

impl Store {
    /// Marks the stored items of `media.upload_id` ready in every room (for rooms not loaded;
    /// live rooms are told by their actor, which writes the same).
    pub async fn mark_upload_items_ready(
        &self,
        media: &lockstep_core::queue::UploadMedia,
    ) -> Result<(), sqlx::Error> {
        let rows = sqlx::query("SELECT id, data FROM queue_items WHERE upload_id = $1")
            .bind(media.upload_id.to_string())
            .fetch_all(self.pool())
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let mut item: QueueItem = parse_json(&row.try_get::<String, _>("data")?)?;
            item.status = lockstep_core::queue::ItemStatus::Ready;
            item.duration = media.duration.or(item.duration);
            item.thumbnail = media.poster.clone().or(item.thumbnail);
            sqlx::query("UPDATE queue_items SET data = $1 WHERE id = $2")
                .bind(to_json(&item)?)
                .bind(id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }
}
