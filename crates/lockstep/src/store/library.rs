//! The personal library ("library" and "watch later") and playlists. Entries are media
//! references: enough to show them and to queue them again.

use super::{Store, parse_id, parse_json, to_json};
use lockstep_core::ids::{ListId, UploadId, UserId};
use lockstep_core::names::ListName;
use lockstep_core::time::ServerTime;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

/// A saved video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    /// `youtube`, `url` or `upload`.
    pub kind: String,
    pub url: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<UploadId>,
}

/// The two lists of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LibraryList {
    Library,
    WatchLater,
}

impl LibraryList {
    fn as_str(self) -> &'static str {
        match self {
            LibraryList::Library => "library",
            LibraryList::WatchLater => "watch_later",
        }
    }
}

/// An entry of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListEntry {
    pub id: ListId,
    #[serde(flatten)]
    pub item: MediaRef,
    pub added_at: ServerTime,
}

/// A playlist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Playlist {
    pub id: ListId,
    pub name: String,
    pub created_at: ServerTime,
    pub updated_at: ServerTime,
    pub items: Vec<ListEntry>,
}

fn entry(r: &sqlx::any::AnyRow) -> Result<ListEntry, sqlx::Error> {
    Ok(ListEntry {
        id: parse_id(&r.try_get::<String, _>("id")?)?,
        item: parse_json(&r.try_get::<String, _>("data")?)?,
        added_at: ServerTime::from_millis(r.try_get("created_ms")?),
    })
}

impl Store {
    /// Saves to a list (saving the same URL twice keeps one entry); returns the entry.
    pub async fn save_to_library(
        &self,
        owner: UserId,
        list: LibraryList,
        item: &MediaRef,
        now: ServerTime,
    ) -> Result<ListEntry, sqlx::Error> {
        sqlx::query(
            "INSERT INTO library_items (id, owner_id, list, url, data, created_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (owner_id, list, url) DO NOTHING",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(owner.to_string())
        .bind(list.as_str())
        .bind(item.url.as_str())
        .bind(to_json(item)?)
        .bind(now.millis())
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT id, data, created_ms FROM library_items WHERE owner_id = $1 AND list = $2 AND url = $3")
            .bind(owner.to_string())
            .bind(list.as_str())
            .bind(item.url.as_str())
            .fetch_one(self.pool())
            .await?;
        entry(&row)
    }

    pub async fn library(
        &self,
        owner: UserId,
        list: LibraryList,
    ) -> Result<Vec<ListEntry>, sqlx::Error> {
        sqlx::query("SELECT id, data, created_ms FROM library_items WHERE owner_id = $1 AND list = $2 ORDER BY created_ms DESC, id DESC")
            .bind(owner.to_string())
            .bind(list.as_str())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(entry)
            .collect()
    }

    pub async fn remove_from_library(
        &self,
        owner: UserId,
        id: ListId,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM library_items WHERE id = $1 AND owner_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn create_playlist(
        &self,
        owner: UserId,
        name: &ListName,
        now: ServerTime,
    ) -> Result<ListId, sqlx::Error> {
        let id = ListId(Uuid::now_v7());
        sqlx::query("INSERT INTO playlists (id, owner_id, name, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $4)")
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(name.as_str())
            .bind(now.millis())
            .execute(self.pool())
            .await?;
        Ok(id)
    }

    /// `owner`'s playlist, with its items in order (None when it is not theirs).
    pub async fn playlist(
        &self,
        owner: UserId,
        id: ListId,
    ) -> Result<Option<Playlist>, sqlx::Error> {
        let Some(row) = sqlx::query("SELECT id, name, created_ms, updated_ms FROM playlists WHERE id = $1 AND owner_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let items = sqlx::query("SELECT id, data, created_ms FROM playlist_items WHERE playlist_id = $1 ORDER BY ord, id")
            .bind(id.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(entry)
            .collect::<Result<_, _>>()?;
        Ok(Some(Playlist {
            id,
            name: row.try_get("name")?,
            created_at: ServerTime::from_millis(row.try_get("created_ms")?),
            updated_at: ServerTime::from_millis(row.try_get("updated_ms")?),
            items,
        }))
    }

    pub async fn playlists_of(&self, owner: UserId) -> Result<Vec<Playlist>, sqlx::Error> {
        let ids: Vec<ListId> =
            sqlx::query("SELECT id FROM playlists WHERE owner_id = $1 ORDER BY created_ms, id")
                .bind(owner.to_string())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| parse_id(&r.try_get::<String, _>("id")?))
                .collect::<Result<_, _>>()?;
        let mut lists = Vec::new();
        for id in ids {
            if let Some(p) = self.playlist(owner, id).await? {
                lists.push(p);
            }
        }
        Ok(lists)
    }

    pub async fn rename_playlist(
        &self,
        owner: UserId,
        id: ListId,
        name: &ListName,
        now: ServerTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE playlists SET name = $1, updated_ms = $2 WHERE id = $3 AND owner_id = $4",
        )
        .bind(name.as_str())
        .bind(now.millis())
        .bind(id.to_string())
        .bind(owner.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_playlist(&self, owner: UserId, id: ListId) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM playlists WHERE id = $1 AND owner_id = $2")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends to a playlist (the caller checked it is the owner's).
    pub async fn add_to_playlist(
        &self,
        playlist: ListId,
        item: &MediaRef,
        now: ServerTime,
    ) -> Result<ListId, sqlx::Error> {
        let id = ListId(Uuid::now_v7());
        sqlx::query(
            "INSERT INTO playlist_items (id, playlist_id, ord, data, created_ms) VALUES ($1, $2, \
             (SELECT COALESCE(MAX(ord), 0) + 1 FROM playlist_items WHERE playlist_id = $2), $3, $4)",
        )
        .bind(id.to_string())
        .bind(playlist.to_string())
        .bind(to_json(item)?)
        .bind(now.millis())
        .execute(self.pool())
        .await?;
        self.touch_playlist(playlist, now).await?;
        Ok(id)
    }

    pub async fn remove_from_playlist(
        &self,
        playlist: ListId,
        item: ListId,
        now: ServerTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM playlist_items WHERE id = $1 AND playlist_id = $2")
            .bind(item.to_string())
            .bind(playlist.to_string())
            .execute(self.pool())
            .await?;
        self.touch_playlist(playlist, now).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts the playlist's items in `order` (which the caller checked is a permutation).
    pub async fn reorder_playlist(
        &self,
        playlist: ListId,
        order: &[ListId],
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        for (ord, id) in order.iter().enumerate() {
            sqlx::query("UPDATE playlist_items SET ord = $1 WHERE id = $2 AND playlist_id = $3")
                .bind(i64::try_from(ord).unwrap_or(i64::MAX))
                .bind(id.to_string())
                .bind(playlist.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.touch_playlist(playlist, now).await
    }

    async fn touch_playlist(&self, playlist: ListId, now: ServerTime) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE playlists SET updated_ms = $1 WHERE id = $2")
            .bind(now.millis())
            .bind(playlist.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
