//! The state every request handler shares.

use crate::clock::ServerClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::store::Store;
use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared server state: one pointer, so that a clone (every request and every connection keeps
/// one) costs one reference count and 8 bytes rather than a copy of each part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// The database: users, sessions, rooms, queues, chat.
    pub store: Store,
    /// Server time, the reference for every playback position.
    pub clock: ServerClock,
    /// The live rooms and their actors.
    pub rooms: Rooms,
    /// Prometheus metrics served at `/metrics`.
    pub metrics: Metrics,
    /// Encrypts and authenticates session cookies.
    pub cookie_key: Key,
    /// Cancelled when shutdown begins; connections and rooms watch it.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket connections and room actors, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The media pipeline: checks uploads, runs their jobs, streams their progress.
    pub jobs: crate::media::jobs::Jobs,
    /// Media lookups, and which addresses media may be fetched from.
    pub media: Arc<crate::media::MediaResolver>,
    /// The threads that hash and check room passwords (bounded: argon2 takes 19 MiB a run).
    pub passwords: crate::auth::password::Passwords,
    /// What every node must hear (media job changes): in process, or through Redis.
    pub backplane: crate::bus::backplane::Backplane,
    /// Rate limits per client address and per room.
    pub throttles: Arc<crate::throttle::Throttles>,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Self {
        state.cookie_key.clone()
    }
}
