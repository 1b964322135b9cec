//! The HTTP side: REST API, WebSocket endpoint, operations endpoints.
//!
//! # Layout
//! - [`rooms`] serves `/api/rooms` and `/api/invites`.
//! - [`users`] serves `/api/me`.
//! - [`ws`] serves `/api/rooms/{id}/ws`, protocol v1.
//! - [`upgrade`] has the WebSocket handshake.
//! - [`uploads`] serves `/api/uploads` (tus resumable uploads); [`tus`] parses its headers.
//! - [`ops`] serves `/healthz` and `/metrics`.
//! - [`jobs`] serves `/api/jobs` and their Server-Sent Events.
//! - [`media`] serves an upload's files at `/media/uploads/...`.
//! - [`library`] serves `/api/library` and `/api/playlists`.
//! - [`listen`] accepts connections: caps, header and write time limits, accept back-off.
//! - [`pages`] serves the web client: pages and embedded static files.
//! - [`extract`] has extractors that answer bad input with JSON errors.
//! - [`client`] works out the client's address (through trusted proxies).
//! - [`origin`] has the same-origin check (CSRF, cross-site WebSocket hijacking).
//! - [`host`] refuses host names the server was not told about (DNS rebinding).

pub mod client;
pub mod extract;
pub mod host;
pub mod jobs;
pub mod library;
pub mod listen;
pub mod media;
pub mod ops;
pub mod origin;
pub mod pages;
pub mod rooms;
pub mod syncplay;
pub mod tus;
pub mod upgrade;
pub mod uploads;
pub mod users;
pub mod ws;

use crate::auth::session_middleware;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::X_CONTENT_TYPE_OPTIONS;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use origin::same_origin_middleware;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest JSON body the API accepts.
const API_BODY_LIMIT: usize = 64 * 1024;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let timeout = TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(state.config.request_timeout_secs),
    );
    // Requests that answer at once get a time limit; uploads and event streams last as long as
    // they need.
    let quick = Router::new()
        .merge(rooms::router())
        .merge(users::router())
        .merge(jobs::router())
        .merge(library::router())
        .route("/client-config", axum::routing::get(pages::client_config))
        .layer(timeout);
    let long = Router::new()
        .merge(uploads::router())
        .merge(jobs::streams());
    let api = Router::new()
        .merge(quick)
        .merge(long)
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run outside-in from the last added: the address's request rate first, then
        // the origin check (a refused request creates no user), then the session.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session_middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_middleware,
        ))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::request_rate_middleware,
        ));
    // Pages and media count against the address's request rate (each looks up a session);
    // static assets, served from memory without one, do not.
    let site = pages::pages()
        .layer(timeout)
        .merge(media::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session_middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::request_rate_middleware,
        ));
    // The clock's samples: counted, but with no session (a page's first may come before it has
    // one, and a sample must not wait for the database).
    let clock = Router::new()
        .route("/api/clock", axum::routing::get(ops::clock))
        .layer(timeout)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::request_rate_middleware,
        ));
    let assets = pages::assets()
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(timeout);
    Router::new()
        .nest("/api", api)
        .merge(site)
        .merge(clock)
        .merge(assets)
        .merge(ops::router().layer(timeout))
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::client_middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            host::host_middleware,
        ))
        // Browsers must never guess a type: an upload's name or a chat line is never a script.
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A handler that panicked answers a JSON 500; the panic is logged, its text is not sent.
fn on_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
