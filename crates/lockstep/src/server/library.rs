//! `/api/library` and `/api/playlists`: saved videos ("library", "watch later") and playlists.
//!
//! An entry is saved from anything a queue can hold: a YouTube link, a media URL, or an upload
//! (one the saver can see). Playlists are queued into a room with the `queue_add_playlist` frame.

use super::extract::{ApiJson, path_id};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::library::{LibraryList, ListEntry, MediaRef, Playlist};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use lockstep_core::ids::{ListId, UploadId, UserId};
use lockstep_core::media::{Media, MediaSource};
use lockstep_core::names::ListName;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/library", get(library).post(save))
        .route("/library/{id}", delete(unsave))
        .route("/playlists", get(playlists).post(create_playlist))
        .route(
            "/playlists/{id}",
            get(playlist).patch(rename_playlist).delete(delete_playlist),
        )
        .route("/playlists/{id}/items", post(add_item))
        .route("/playlists/{id}/items/{item}", delete(remove_item))
        .route("/playlists/{id}/order", put(reorder))
}

/// What a client sends to save something: a URL, or an upload, with what it knows about it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveItem {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    upload_id: Option<UploadId>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    thumbnail: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(code, message)
}

/// Checks what the client sent and makes it a media reference.
async fn media_ref(state: &AppState, user: UserId, item: SaveItem) -> Result<MediaRef, ApiError> {
    let clean_title = |t: Option<String>, fallback: &str| {
        let t: String = t
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        if t.trim().is_empty() {
            fallback.to_owned()
        } else {
            t.trim().to_owned()
        }
    };
    if let Some(upload_id) = item.upload_id {
        let upload = state
            .store
            .upload(upload_id)
            .await?
            .ok_or_else(|| ApiError::not_found("upload_not_found", "no such upload"))?;
        if !state.store.upload_visible_to(&upload, user).await? {
            return Err(ApiError::not_found("upload_not_found", "no such upload"));
        }
        let media = state.jobs.upload_media(&upload).await;
        return Ok(MediaRef {
            kind: "upload".into(),
            url: lockstep_core::queue::upload_video_url(upload_id),
            title: upload.file_name,
            thumbnail: media.poster,
            duration: media.duration,
            upload_id: Some(upload_id),
        });
    }
    let raw = item
        .url
        .ok_or_else(|| invalid("invalid_input", "send a url or an upload_id"))?;
    let media = Media::parse(&raw).map_err(|e| invalid("invalid_media_url", e.to_string()))?;
    let kind = match media.source {
        MediaSource::YouTube { .. } => "youtube",
        MediaSource::Direct { .. } => "url",
    };
    let url = media.canonical_url();
    let thumbnail = item.thumbnail.filter(|t| {
        t.len() <= 2048
            && (t.starts_with("https://") || t.starts_with("http://") || t.starts_with("/media/"))
    });
    Ok(MediaRef {
        kind: kind.into(),
        title: clean_title(item.title, &url),
        url,
        thumbnail,
        duration: item.duration.filter(|d| d.is_finite() && *d > 0.0),
        upload_id: None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Save {
    list: LibraryList,
    item: SaveItem,
}

async fn library(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let library = state.store.library(user.id, LibraryList::Library).await?;
    let later = state
        .store
        .library(user.id, LibraryList::WatchLater)
        .await?;
    Ok(Json(
        serde_json::json!({ "library": library, "watch_later": later }),
    ))
}

async fn save(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<Save>,
) -> Result<(StatusCode, Json<ListEntry>), ApiError> {
    let item = media_ref(&state, user.id, body.item).await?;
    let entry = state
        .store
        .save_to_library(user.id, body.list, &item, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn unsave(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such entry");
    let id: ListId = path_id(&id, not_found)?;
    if !state.store.remove_from_library(user.id, id).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

fn playlist_not_found() -> ApiError {
    ApiError::not_found("playlist_not_found", "no such playlist")
}

async fn my_playlist(state: &AppState, user: UserId, raw: &str) -> Result<Playlist, ApiError> {
    let id: ListId = path_id(raw, playlist_not_found)?;
    state
        .store
        .playlist(user, id)
        .await?
        .ok_or_else(playlist_not_found)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: ListName,
}

async fn playlists(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::json!({ "playlists": state.store.playlists_of(user.id).await? }),
    ))
}

async fn create_playlist(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<Named>,
) -> Result<(StatusCode, Json<Playlist>), ApiError> {
    let id = state
        .store
        .create_playlist(user.id, &body.name, state.clock.now())
        .await?;
    let list = state
        .store
        .playlist(user.id, id)
        .await?
        .ok_or_else(playlist_not_found)?;
    Ok((StatusCode::CREATED, Json(list)))
}

async fn playlist(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Playlist>, ApiError> {
    Ok(Json(my_playlist(&state, user.id, &id).await?))
}

async fn rename_playlist(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Named>,
) -> Result<Json<Playlist>, ApiError> {
    let list = my_playlist(&state, user.id, &id).await?;
    state
        .store
        .rename_playlist(user.id, list.id, &body.name, state.clock.now())
        .await?;
    Ok(Json(my_playlist(&state, user.id, &id).await?))
}

async fn delete_playlist(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let list = my_playlist(&state, user.id, &id).await?;
    state.store.delete_playlist(user.id, list.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddItem {
    item: SaveItem,
}

/// Longest playlist.
const PLAYLIST_MAX: usize = 500;

async fn add_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddItem>,
) -> Result<(StatusCode, Json<Playlist>), ApiError> {
    let list = my_playlist(&state, user.id, &id).await?;
    if list.items.len() >= PLAYLIST_MAX {
        return Err(invalid(
            "playlist_full",
            format!("a playlist holds at most {PLAYLIST_MAX} videos"),
        ));
    }
    let item = media_ref(&state, user.id, body.item).await?;
    state
        .store
        .add_to_playlist(list.id, &item, state.clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(my_playlist(&state, user.id, &id).await?),
    ))
}

async fn remove_item(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((id, item)): Path<(String, String)>,
) -> Result<Json<Playlist>, ApiError> {
    let list = my_playlist(&state, user.id, &id).await?;
    let not_found = || ApiError::not_found("not_found", "no such entry in the playlist");
    let item: ListId = path_id(&item, not_found)?;
    if !state
        .store
        .remove_from_playlist(list.id, item, state.clock.now())
        .await?
    {
        return Err(not_found());
    }
    Ok(Json(my_playlist(&state, user.id, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    items: Vec<ListId>,
}

async fn reorder(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Order>,
) -> Result<Json<Playlist>, ApiError> {
    let list = my_playlist(&state, user.id, &id).await?;
    let mut have: Vec<ListId> = list.items.iter().map(|i| i.id).collect();
    let mut want = body.items.clone();
    have.sort();
    want.sort();
    if have != want {
        return Err(invalid(
            "invalid_order",
            "send every entry of the playlist once, in the new order",
        ));
    }
    state
        .store
        .reorder_playlist(list.id, &body.items, state.clock.now())
        .await?;
    Ok(Json(my_playlist(&state, user.id, &id).await?))
}
