//! `/api/jobs`: my media jobs, cancelling one, and their live progress as Server-Sent Events.
//!
//! `GET /api/jobs/events` streams every change of my jobs and uploads (`event: job` or `event:
//! upload`, `data:` the job or upload as JSON); `GET /api/jobs/{id}/events` streams one job. Every
//! event carries `id:`, a number that only grows. A browser that reconnects sends the last one
//! it saw as `Last-Event-ID` and gets exactly the events after it (kept for a day), then live
//! ones. Without `Last-Event-ID`, a stream starts with the current state of every job (and
//! upload) and continues live. A page that opens a new stream itself (a browser's `EventSource`
//! gives up for good on an error answer: a proxy's 502 while the server restarts) says where it
//! got to as `?last_event_id=`, which the header, newer once the browser reconnects, overrides.

use super::extract::{ApiQuery, path_id};
use crate::auth::CurrentUser;
use crate::bus::backplane::Delivery;
use crate::error::ApiError;
use crate::media::jobs::{MEDIA_TOPIC, MediaNotice};
use crate::state::AppState;
use crate::store::jobs::{MediaChange, MediaEvent};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use lockstep_core::ids::{JobId, UserId};
use std::convert::Infallible;
use tokio::sync::broadcast;

/// Routes that answer at once (under the request timeout).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/{id}", get(read))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/retry", post(retry))
}

/// The streams (long-lived: outside the request timeout).
pub fn streams() -> Router<AppState> {
    Router::new()
        .route("/jobs/events", get(all_events))
        .route("/jobs/{id}/events", get(job_events))
}

/// With several nodes, how long a stream waits for an announcement before it looks at the
/// store anyway.
const SHARED_STREAM_LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

fn not_found() -> ApiError {
    ApiError::not_found("job_not_found", "no such job")
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let jobs = state.store.jobs_of(user.id).await?;
    Ok(Json(serde_json::json!({ "jobs": jobs })))
}

async fn mine(
    state: &AppState,
    raw: &str,
    user: UserId,
) -> Result<crate::store::jobs::JobRow, ApiError> {
    let id: JobId = path_id(raw, not_found)?;
    let job = state.store.job(id).await?.ok_or_else(not_found)?;
    if job.owner != user {
        return Err(not_found());
    }
    Ok(job)
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<crate::store::jobs::JobRow>, ApiError> {
    Ok(Json(mine(&state, &id, user.id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<crate::store::jobs::JobRow>, ApiError> {
    let job = mine(&state, &id, user.id).await?;
    if !state.jobs.cancel(job.id).await? {
        return Err(ApiError::Conflict(format!(
            "the job is already {}",
            job.state.as_str()
        )));
    }
    let job = state.store.job(job.id).await?.ok_or_else(not_found)?;
    Ok(Json(job))
}

async fn retry(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<crate::store::jobs::JobRow>, ApiError> {
    let job = mine(&state, &id, user.id).await?;
    if !state.jobs.retry(job.id).await? {
        return Err(ApiError::Conflict(format!(
            "only failed or cancelled jobs can be retried; this one is {}",
            job.state.as_str()
        )));
    }
    let job = state.store.job(job.id).await?.ok_or_else(not_found)?;
    Ok(Json(job))
}

fn sse_event(event: &MediaEvent) -> Event {
    let (name, data) = match &event.change {
        MediaChange::Job(job) => ("job", serde_json::to_string(job)),
        MediaChange::Upload(upload) => ("upload", serde_json::to_string(upload)),
    };
    Event::default()
        .id(event.id.to_string())
        .event(name)
        .data(data.unwrap_or_default())
}

/// Where a stream resumes from, given by a page that opens a new one itself.
#[derive(Debug, serde::Deserialize)]
struct Resume {
    last_event_id: Option<i64>,
}

/// The event a stream resumes after: the browser's `Last-Event-ID` (it sends the newest it saw
/// when it reconnects), else the page's `?last_event_id=`.
fn last_event_id(headers: &HeaderMap, resume: &Resume) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(resume.last_event_id)
}

/// The stream for `user`, about `job` alone if given.
async fn stream_for(
    state: &AppState,
    user: UserId,
    job: Option<JobId>,
    headers: &HeaderMap,
    resume: &Resume,
) -> Result<Response, ApiError> {
    // Subscribe first, then read the backlog: an event stored in between is announced after
    // the subscription, and is read then unless the backlog already had it.
    let live = state
        .backplane
        .subscribe(MEDIA_TOPIC)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let subject = job.map(|j| j.to_string());
    // On a fresh stream, the event id the snapshot is as of.
    let mut fresh_at = None;
    let backlog: Vec<MediaEvent> = match last_event_id(headers, resume) {
        Some(after) => {
            state
                .store
                .media_events_after(user, subject.as_deref(), after)
                .await?
        }
        None => {
            // A fresh stream: the current state, numbered with the newest event id so that a
            // reconnection resumes from here.
            let id = state.store.last_job_event_id().await?;
            fresh_at = Some(id);
            let mut now = Vec::new();
            match job {
                Some(job) => {
                    if let Some(row) = state.store.job(job).await? {
                        now.push(MediaEvent {
                            id,
                            change: MediaChange::Job(row),
                        });
                    }
                }
                None => {
                    for upload in state.store.uploads_of(user).await?.into_iter().rev() {
                        now.push(MediaEvent {
                            id,
                            change: MediaChange::Upload(upload),
                        });
                    }
                    for row in state.store.jobs_of(user).await?.into_iter().rev() {
                        now.push(MediaEvent {
                            id,
                            change: MediaChange::Job(row),
                        });
                    }
                }
            }
            now
        }
    };
    let last = backlog
        .iter()
        .map(|e| e.id)
        .chain(fresh_at)
        .max()
        .unwrap_or(0);
    let mut first: Vec<Result<Event, Infallible>> =
        backlog.iter().map(|e| Ok(sse_event(e))).collect();
    if let Some(id) = fresh_at {
        // The end of the snapshot, with its id: even a user with nothing yet has a Last-Event-ID
        // to come back with, so a reconnection replays rather than starts over.
        first.push(Ok(Event::default()
            .id(id.to_string())
            .event("snapshot")
            .data(serde_json::json!({ "last_event_id": id }).to_string())));
    }
    let shutdown = state.shutdown.clone();
    let store = state.store.clone();
    // Live: each announcement that concerns this stream (or a gap in announcements) is a cue to
    // read the user's events after the last one sent, from the store: announcements from several
    // nodes may arrive out of order or not at all, the store's order is the truth.
    // With several nodes an announcement can be lost without a gap (the announcing node could
    // not reach Redis): the stream also looks at the store every few seconds, so a lost one
    // delays an event and never loses it. One node announces in process: nothing to lose.
    let look_every = state
        .backplane
        .is_shared()
        .then_some(SHARED_STREAM_LOOK_EVERY);
    let live = stream::unfold(
        (live, last, store, subject),
        move |(mut live, mut last, store, subject)| async move {
            loop {
                let delivery = match look_every {
                    None => live.recv().await,
                    Some(every) => match tokio::time::timeout(every, live.recv()).await {
                        Ok(delivery) => delivery,
                        Err(_) => Ok(Delivery::Gap),
                    },
                };
                let cue = match delivery {
                    Ok(Delivery::Message(bytes)) => serde_json::from_slice::<MediaNotice>(&bytes)
                        .is_ok_and(|n| {
                            n.owner == user
                                && n.id > last
                                && subject.as_deref().is_none_or(|s| s == n.subject)
                        }),
                    Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                if !cue {
                    continue;
                }
                // A failed read ends the stream; the browser reconnects with Last-Event-ID.
                let events = store
                    .media_events_after(user, subject.as_deref(), last)
                    .await
                    .ok()?;
                if let Some(newest) = events.last() {
                    last = newest.id;
                    return Some((events, (live, last, store, subject)));
                }
            }
        },
    )
    .flat_map(|events| stream::iter(events.iter().map(|e| Ok(sse_event(e))).collect::<Vec<_>>()))
    .take_until(async move { shutdown.cancelled().await });
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(stream::iter(first).chain(live));
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn all_events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(resume): ApiQuery<Resume>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    stream_for(&state, user.id, None, &headers, &resume).await
}

async fn job_events(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiQuery(resume): ApiQuery<Resume>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = mine(&state, &id, user.id).await?;
    stream_for(&state, user.id, Some(job.id), &headers, &resume).await
}
