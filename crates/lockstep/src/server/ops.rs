//! Operations endpoints: `/healthz` and `/metrics`; and `/api/clock`, the server's clock read over
//! HTTP (see [`clock`]).
//!
//! `/metrics` tells how busy the server is, what it runs and how much memory it holds: not for
//! strangers. On the main address it answers only with `Authorization: Bearer <--metrics-token>`
//! (404 otherwise, as if it did not exist); `--metrics-listen` serves it on a separate address
//! (loopback, say) for a scraper, without a token.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_with_token))
}

/// The router of the separate metrics address.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Whether `headers` carry `Authorization: Bearer <token>`. Compared as SHA-256 digests, so the
/// time taken says nothing about how much of the token was right.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

async fn metrics_with_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match state.config.metrics_token.as_deref() {
        Some(token) if !token.is_empty() && bearer_matches(&headers, token) => {
            Ok(metrics(State(state)).await.into_response())
        }
        _ => Err(ApiError::not_found("not_found", "no such endpoint")),
    }
}

/// `GET /api/clock`: when the server read the request and when it answered, on the clock the
/// room's playback is stamped with, as a pong gives them (microseconds since the Unix epoch).
///
/// A room page takes its first clock samples here as well as by pinging over its socket, because
/// the browser's network stack times an HTTP request (Resource Timing's `requestStart` and
/// `responseStart`) without waiting for the page's main thread. A pong is timed when the page
/// gets round to reading it: a joining page is busy loading, and its first pongs were read up to
/// 440 ms late (bench/RESULTS.md), so the clock was unsure, or ready late, or 36 ms off.
/// No session and no database: it is counted against the address's request rate only.
pub async fn clock(State(state): State<AppState>) -> Response {
    let server_recv = state.clock.now();
    let body = serde_json::json!({ "server_recv": server_recv, "server_send": state.clock.now() });
    ([(CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// 200 while the server runs and its database answers; 503 once shutdown has begun.
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    state.store.ping().await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
