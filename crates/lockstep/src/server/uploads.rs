//! `/api/uploads`: resumable uploads with the tus 1.0 protocol (core, plus the creation and
//! termination extensions), and the upload's own endpoints.
//!
//! - `POST /api/uploads` with `Upload-Length` and `Upload-Metadata` (`filename <base64>`) creates
//!   an upload (201, `Location`). Too large: 413 `upload_too_large`; over the quota: 413
//!   `quota_exceeded`.
//! - `HEAD /api/uploads/{id}` says how much arrived (`Upload-Offset`).
//! - `PATCH /api/uploads/{id}` with `Upload-Offset` (which must equal what arrived) and a body of
//!   `Content-Type: application/offset+octet-stream` appends. Bytes go straight to disk. If the
//!   connection drops, what arrived is kept and the client resumes from the new offset. A body
//!   that goes beyond `Upload-Length` is stopped while streaming and the upload is deleted (413).
//! - When the last byte arrives the file is checked with ffprobe; then jobs start.
//! - `DELETE /api/uploads/{id}` deletes it. `GET /api/uploads` lists mine; `GET
//!   /api/uploads/{id}` describes one; `POST /api/uploads/{id}/thumbnails {at}` asks for a
//!   thumbnail at a time.
//!
//! Every request but OPTIONS carries `Tus-Resumable: 1.0.0` (412 otherwise, on tus endpoints).

use super::client::ClientAddr;
use super::extract::{ApiJson, path_id};
use super::tus::{
    TUS_VERSION, clean_file_name, header_u64, metadata_file_name, require_tus, tus_headers,
};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::jobs::{JobKind, JobPayload, JobRow};
use crate::store::uploads::{UploadRow, UploadState};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use lockstep_core::ids::UploadId;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Thumbnail requests a user may have waiting or running at once (each is an ffmpeg run).
const MAX_UNFINISHED_JOBS: u64 = 20;
/// How often the received offset is saved while streaming (and always at the end).
const SAVE_EVERY: u64 = 8 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/uploads", post(create).get(list).options(options))
        .route(
            "/uploads/{id}",
            get(read)
                .head(offset)
                .patch(append)
                .delete(remove)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads/{id}/thumbnails", post(thumbnail))
}

async fn options(State(state): State<AppState>) -> Response {
    let mut h = HeaderMap::new();
    tus_headers(&mut h);
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,termination"),
    );
    if let Ok(v) = HeaderValue::from_str(&state.config.upload_max_bytes.to_string()) {
        h.insert("tus-max-size", v);
    }
    (StatusCode::NO_CONTENT, h).into_response()
}

/// An upload as its owner sees it.
#[derive(Debug, Serialize)]
pub struct UploadView {
    #[serde(flatten)]
    pub upload: UploadRow,
    /// Where it can be fetched once playable, and what was made from it.
    pub video: Option<String>,
    pub poster: Option<String>,
    pub storyboard: Option<String>,
    pub jobs: Vec<JobRow>,
}

async fn view(state: &AppState, mut upload: UploadRow) -> Result<UploadView, ApiError> {
    let files = state.jobs.files(upload.id);
    let jobs = state.store.jobs_of_upload(upload.id).await?;
    let done = |kind: JobKind| {
        jobs.iter()
            .any(|j| j.kind == kind && j.state == crate::store::jobs::JobState::Done)
    };
    // The playable copy's job ends in the transaction that marks the upload playable; the upload
    // was read before its jobs, so a job read done means playable even if the row said not yet.
    upload.playable |= done(JobKind::Playable);
    Ok(UploadView {
        video: upload
            .playable
            .then(|| format!("{}/video", files.url_base())),
        poster: done(JobKind::Poster).then(|| files.poster_url()),
        storyboard: done(JobKind::Storyboard).then(|| files.storyboard_vtt_url()),
        upload,
        jobs,
    })
}

/// The caller's upload, or 404 (also for other people's: ids are not to be probed).
async fn mine(
    state: &AppState,
    raw: &str,
    user: lockstep_core::ids::UserId,
) -> Result<UploadRow, ApiError> {
    let not_found = || ApiError::not_found("upload_not_found", "no such upload");
    let id: UploadId = path_id(raw, not_found)?;
    let upload = state.store.upload(id).await?.ok_or_else(not_found)?;
    if upload.owner != user {
        return Err(not_found());
    }
    Ok(upload)
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let addr = client.key().as_text();
    state
        .throttles
        .uploads
        .check(&client.key())
        .map_err(|wait| ApiError::rate_limited("too_many_uploads", "new uploads", wait))?;
    let now = state.clock.now();
    let min_age = std::time::Duration::from_secs(state.config.upload_min_account_age_secs);
    let created = state.store.user_created(user.id).await?.unwrap_or(now);
    let age = now - created;
    if age < min_age {
        let wait = (min_age - age).as_secs().max(1);
        // 429 with Retry-After: the uploads page waits it out and starts by itself.
        return Err(ApiError::RateLimited {
            code: "account_too_new",
            message: format!(
                "new visitors can upload {} s after their first visit",
                min_age.as_secs()
            ),
            retry_after: std::time::Duration::from_secs(wait),
        });
    }
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::BadRequest(
            "Upload-Defer-Length is not supported: send Upload-Length".into(),
        ));
    }
    let size = header_u64(&headers, "upload-length")?;
    let limit = state.config.upload_max_bytes;
    if size > limit {
        return Err(ApiError::TooLarge {
            code: "upload_too_large",
            message: format!("files may be at most {limit} bytes; this one is {size}"),
        });
    }
    // The user's quota, and the address's, which throwaway users share.
    let mine = state.store.upload_bytes_of(user.id).await?;
    within_quota(mine, size, state.config.upload_quota_bytes, "your uploads")?;
    let from_here = state.store.upload_bytes_from(&addr).await?;
    let address_quota = state.config.upload_quota_per_address_bytes;
    within_quota(from_here, size, address_quota, "uploads from your address")?;
    let upload = UploadRow {
        id: UploadId(Uuid::now_v7()),
        owner: user.id,
        file_name: clean_file_name(&metadata_file_name(&headers).unwrap_or_default()),
        size,
        received: 0,
        state: UploadState::Receiving,
        error: None,
        media: None,
        playable: false,
        created: now,
        updated: now,
    };
    let files = state.jobs.files(upload.id);
    tokio::fs::create_dir_all(&files.dir)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    tokio::fs::File::create(files.partial())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    state.store.create_upload(&upload, Some(&addr)).await?;
    tracing::info!(upload = %upload.id, size, "upload created");
    if size == 0 {
        finish(&state, &upload).await?;
    }
    let mut response = (
        StatusCode::CREATED,
        Json(view(&state, upload.clone()).await?),
    )
        .into_response();
    let h = response.headers_mut();
    tus_headers(h);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/uploads/{}", upload.id)) {
        h.insert("location", v);
    }
    h.insert("upload-offset", HeaderValue::from_static("0"));
    Ok(response)
}

/// 413 `quota_exceeded` when `size` more bytes would take `used` past `quota`.
fn within_quota(used: u64, size: u64, quota: u64, whose: &str) -> Result<(), ApiError> {
    let total = used.saturating_add(size);
    if total > quota {
        return Err(ApiError::TooLarge {
            code: "quota_exceeded",
            message: format!("{whose} would take {total} of {quota} bytes"),
        });
    }
    Ok(())
}

async fn offset(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let upload = mine(&state, &id, user.id).await?;
    let mut h = HeaderMap::new();
    tus_headers(&mut h);
    for (name, value) in [
        ("upload-offset", upload.received),
        ("upload-length", upload.size),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
    Ok((StatusCode::OK, h).into_response())
}

/// The last byte arrived: move the file into place and check it in the background.
async fn finish(state: &AppState, upload: &UploadRow) -> Result<(), ApiError> {
    let files = state.jobs.files(upload.id);
    tokio::fs::rename(files.partial(), files.original())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    state
        .store
        .set_upload_state(
            upload.id,
            UploadState::Probing,
            None,
            None,
            state.clock.now(),
        )
        .await?;
    state.jobs.upload_complete(&state.tasks, upload.id);
    Ok(())
}

async fn append(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let upload = mine(&state, &id, user.id).await?;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/offset+octet-stream" {
        return Err(ApiError::UnsupportedMediaType);
    }
    if upload.state != UploadState::Receiving {
        return Err(ApiError::Conflict("this upload is complete".into()));
    }
    let offset = header_u64(&headers, "upload-offset")?;
    if offset != upload.received {
        return Err(ApiError::Conflict(format!(
            "Upload-Offset {offset} does not match the {} bytes received; resume from there",
            upload.received
        )));
    }
    let files = state.jobs.files(upload.id);
    let mut raw = tokio::fs::OpenOptions::new()
        .write(true)
        .open(files.partial())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    // Bytes written after the last saved offset (a crash mid-write) are dropped.
    raw.set_len(offset)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    {
        use tokio::io::AsyncSeekExt;
        raw.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let mut file = tokio::io::BufWriter::with_capacity(256 * 1024, raw);
    let mut received = offset;
    let mut saved = offset;
    let mut stream = body.into_data_stream();
    let mut too_much = false;
    let mut dropped = false;
    let idle = state.config.idle_timeout();
    let mut stalled = false;
    loop {
        // A body that sends nothing for the idle time ends here, like a dropped one: an outside
        // test held half-sent bodies open for minutes, each with a file and a connection.
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                // The client went away: keep what arrived, it may resume.
                dropped = true;
                break;
            }
            Err(_) => {
                stalled = true;
                break;
            }
        };
        if received + chunk.len() as u64 > upload.size {
            too_much = true;
            break;
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        received += chunk.len() as u64;
        if received - saved >= SAVE_EVERY {
            file.flush()
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            state
                .store
                .set_upload_received(upload.id, received, state.clock.now())
                .await?;
            saved = received;
        }
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    drop(file);
    if too_much {
        tracing::warn!(upload = %upload.id, "more bytes than declared; upload deleted");
        files.remove().await;
        state.store.delete_upload(upload.id).await?;
        return Err(ApiError::TooLarge {
            code: "upload_too_large",
            message: format!(
                "more data than the {} bytes declared; the upload was deleted",
                upload.size
            ),
        });
    }
    state
        .store
        .set_upload_received(upload.id, received, state.clock.now())
        .await?;
    if dropped {
        tracing::info!(upload = %upload.id, received, "upload interrupted; it can resume");
    }
    if stalled {
        tracing::info!(upload = %upload.id, received, "upload body stalled; closing it");
        return Err(ApiError::Timeout(format!(
            "nothing arrived for {} s; resume from offset {received}",
            idle.as_secs()
        )));
    }
    if received == upload.size {
        finish(&state, &upload).await?;
    }
    let mut h = HeaderMap::new();
    tus_headers(&mut h);
    if let Ok(v) = HeaderValue::from_str(&received.to_string()) {
        h.insert("upload-offset", v);
    }
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let upload = mine(&state, &id, user.id).await?;
    for job in state.store.jobs_of_upload(upload.id).await? {
        if !job.state.is_final() {
            state.jobs.cancel(job.id).await?;
        }
    }
    state.jobs.files(upload.id).remove().await;
    state.store.delete_upload(upload.id).await?;
    // Rooms that queue it drop it (a room loaded later finds the upload gone on its own).
    state.rooms.upload_gone(upload.id).await;
    let mut h = HeaderMap::new();
    tus_headers(&mut h);
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut uploads = Vec::new();
    for upload in state.store.uploads_of(user.id).await? {
        uploads.push(view(&state, upload).await?);
    }
    Ok(Json(serde_json::json!({ "uploads": uploads })))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<UploadView>, ApiError> {
    let upload = mine(&state, &id, user.id).await?;
    Ok(Json(view(&state, upload).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThumbnailAt {
    at: f64,
}

async fn thumbnail(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ThumbnailAt>,
) -> Result<(StatusCode, Json<JobRow>), ApiError> {
    let upload = mine(&state, &id, user.id).await?;
    let Some(media) = upload
        .media
        .as_ref()
        .filter(|_| upload.state == UploadState::Ready)
    else {
        return Err(ApiError::Conflict("the upload is not ready yet".into()));
    };
    if state.store.unfinished_jobs_of(user.id).await? >= MAX_UNFINISHED_JOBS {
        return Err(ApiError::RateLimited {
            code: "too_many_jobs",
            message: format!("you have {MAX_UNFINISHED_JOBS} jobs waiting or running"),
            retry_after: std::time::Duration::from_secs(10),
        });
    }
    if !(body.at.is_finite() && body.at >= 0.0 && body.at < media.duration) {
        return Err(ApiError::invalid(
            "thumbnail_past_end",
            format!("pick a time from 0 to {:.1} s", media.duration),
        ));
    }
    let job = state
        .jobs
        .enqueue(
            &upload,
            JobKind::Thumbnail,
            JobPayload { at: Some(body.at) },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}
