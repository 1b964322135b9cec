//! `/media/posters/{hash}.jpg`: the cached poster frame of a direct link (anyone may see it: it
//! is a frame of a public URL, named by a hash of that URL).
//!
//! `/media/keyframes?url=<link>`: the keyframe times of a direct link to an MP4, read from its
//! `moov` box when it was queued (`media::moov`), as an upload's `keyframes.json` (anyone may see
//! them, as a poster: they are facts of a public URL, kept only for links that were queued).
//!
//! `/media/uploads/{id}/...`: an upload's files, with Range requests (206), content types and
//! caching headers, only for its owner and for members of rooms whose queue holds it (and its
//! poster for anyone when a public room queues it, as the lobby shows that room's video).
//!
//! Paths are matched against the names the jobs produce (`video`, `poster.jpg`,
//! `keyframes.json`, `storyboard.vtt`, `storyboard/sheet-NNN.jpg`, `thumbs/<job id>.jpg`,
//! `subtitles.json`, `subtitles/<n>.vtt`); anything else, a
//! traversal attempt included, is 404, as is an upload the caller may not see (ids are not to be
//! probed).

use super::extract::{ApiQuery, path_id};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::media::poster;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lockstep_core::ids::{JobId, UploadId};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/media/uploads/{id}/{*path}", get(serve))
        .route("/media/posters/{name}", get(serve_poster))
        .route("/media/keyframes", get(serve_link_keyframes))
}

fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such file")
}

/// Whether `name` is a storyboard sheet as the storyboard job names them.
fn is_sheet(name: &str) -> bool {
    name.strip_prefix("sheet-")
        .and_then(|n| n.strip_suffix(".jpg"))
        .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

async fn serve_poster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !poster::is_file_name(&name) {
        return Err(not_found());
    }
    let jpeg = state.store.poster(&name).await?.ok_or_else(not_found)?;
    // A poster never changes for its URL: a day of caching, shared caches included.
    Ok(kept_for_anyone("image/jpeg", "public, max-age=86400", jpeg))
}

/// What is kept of a direct link, served to anyone as `content_type` with `cache_control`.
fn kept_for_anyone(
    content_type: &'static str,
    cache_control: &'static str,
    body: impl IntoResponse,
) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static(cache_control)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    url: String,
}

async fn serve_link_keyframes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LinkQuery>,
) -> Result<Response, ApiError> {
    let json = state
        .store
        .link_keyframes(&poster::url_key(&query.url))
        .await?
        .ok_or_else(not_found)?;
    // A link's file may be replaced at its URL: an hour, as an upload's list.
    Ok(kept_for_anyone(
        "application/json",
        "public, max-age=3600",
        json,
    ))
}

async fn serve(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let id: UploadId = path_id(&id, not_found)?;
    let upload = state.store.upload(id).await?.ok_or_else(not_found)?;
    // The poster of a video queued in a public room is shown in the lobby, to anyone.
    let public_poster =
        path == "poster.jpg" && state.store.upload_in_public_room(upload.id).await?;
    if !public_poster && !state.store.upload_visible_to(&upload, user.id).await? {
        return Err(not_found());
    }
    let files = state.jobs.files(id);
    let (file, mime, max_age) = match path.as_str() {
        "video" => {
            if !upload.playable {
                return Err(ApiError::not_found(
                    "not_playable_yet",
                    "this video is still being prepared",
                ));
            }
            let copy = files.playable();
            if tokio::fs::try_exists(&copy).await.unwrap_or(false) {
                (copy, "video/mp4", 3600)
            } else {
                // Playable as uploaded (WebM).
                (files.original(), "video/webm", 3600)
            }
        }
        "poster.jpg" => (files.poster(), "image/jpeg", 300),
        "storyboard.vtt" => (files.storyboard_vtt(), "text/vtt; charset=utf-8", 300),
        "keyframes.json" => (files.keyframes(), "application/json", 3600),
        "subtitles.json" => return Ok(subtitles_list(&upload, &files.url_base())),
        other => {
            let mut parts = other.splitn(2, '/');
            match (parts.next(), parts.next()) {
                (Some("storyboard"), Some(sheet)) if is_sheet(sheet) => {
                    (files.storyboard_dir().join(sheet), "image/jpeg", 300)
                }
                (Some("subtitles"), Some(name)) => {
                    let n: usize = name
                        .strip_suffix(".vtt")
                        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(not_found)?;
                    let tracks = upload.media.as_ref().map_or(0, |m| m.subtitles.len());
                    if n >= tracks {
                        return Err(not_found());
                    }
                    (
                        files.subtitles_dir().join(format!("{n}.vtt")),
                        "text/vtt; charset=utf-8",
                        3600,
                    )
                }
                (Some("thumbs"), Some(name)) => {
                    let job: JobId = name
                        .strip_suffix(".jpg")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(not_found)?;
                    (files.thumbnail(job), "image/jpeg", 3600)
                }
                _ => return Err(not_found()),
            }
        }
    };
    if !tokio::fs::try_exists(&file).await.unwrap_or(false) {
        return Err(not_found());
    }
    let mime = HeaderValue::from_static(mime);
    let mut response = ServeFile::new_with_mime(
        file,
        &"application/octet-stream"
            .parse()
            .expect("a valid MIME type"),
    )
    .oneshot(request)
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("serving a file: {e}")))?
    .into_response();
    let h = response.headers_mut();
    h.insert("content-type", mime);
    if let Ok(v) = HeaderValue::from_str(&format!("private, max-age={max_age}")) {
        h.insert(CACHE_CONTROL, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// The upload's text subtitle tracks, for the room's player: `[{src, language, title, default,
/// forced}]`, empty when it has none (or was checked before they were extracted).
fn subtitles_list(upload: &crate::store::uploads::UploadRow, base: &str) -> Response {
    let tracks: Vec<serde_json::Value> = upload
        .media
        .iter()
        .flat_map(|m| m.subtitles.iter().enumerate())
        .map(|(n, t)| {
            serde_json::json!({
                "src": format!("{base}/subtitles/{n}.vtt"),
                "language": t.language,
                "title": t.title,
                "default": t.default,
                "forced": t.forced,
            })
        })
        .collect();
    let mut response = axum::Json(tracks).into_response();
    let h = response.headers_mut();
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::is_sheet;

    #[test]
    fn only_sheet_names() {
        assert!(is_sheet("sheet-000.jpg"));
        assert!(is_sheet("sheet-123.jpg"));
        assert!(!is_sheet("sheet-1.jpg"));
        assert!(!is_sheet("../sheet-000.jpg"));
        assert!(!is_sheet("sheet-000.jpg/.."));
        assert!(!is_sheet("sheet-00a.jpg"));
    }
}
