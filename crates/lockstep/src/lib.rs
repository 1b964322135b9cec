//! Lockstep: watch videos together, in sync.
//!
//! This crate is the server: HTTP API, WebSocket protocol v1, room actors, the store and media
//! lookups. The rules themselves (playback clock, room state machine, permissions) live in
//! `lockstep-core`, which does no I/O.
//!
//! [`run`] serves on a listener it is given and stops when the given future completes; it never
//! binds a port itself, so tests pass a listener on port 0. [`app`] builds the router alone.
//!
//! # Layout
//! - [`config`]: flags and `LOCKSTEP_*` variables.
//! - [`server`]: routes, REST handlers, the WebSocket connection, operations endpoints.
//! - [`auth`]: anonymous users, session cookies, room passwords.
//! - [`rooms`]: the registry of live rooms and the room actor.
//! - [`bus`]: fan-out of room events to connections.
//! - [`store`]: SQL persistence (SQLite by default).
//! - [`media`]: YouTube metadata, ffprobe, and the child-process wrapper.
//! - [`clock`]: the server clock.
//! - [`metrics`]: Prometheus metrics.
//! - [`throttle`]: rate limits per client address (and per room).
//! - [`error`]: the API's error type.
//! - [`state`]: the state handlers share.

pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod error;
pub mod media;
pub mod metrics;
pub mod rooms;
pub mod server;
pub mod state;
pub mod store;
pub mod throttle;

pub use config::Config;
pub use server::app;
pub use state::AppState;

use anyhow::Context;
use clock::ServerClock;
use lockstep_core::room::RoomRules;
use metrics::Metrics;
use rooms::{RoomEnv, Rooms};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often expired sessions, abandoned uploads, idle users and old rate-limit state are
/// cleaned up.
const UPKEEP_EVERY: Duration = Duration::from_secs(600);
/// Most idle users deleted per upkeep (one short transaction; more go next time).
const PURGE_BATCH: i64 = 10_000;

/// Opens the store and builds the shared state.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::connect(&config.database_url()).await?;
    let backplane = match &config.redis_url {
        Some(url) => bus::backplane::Backplane::redis(url).await?,
        None => bus::backplane::Backplane::local(),
    };
    // Subscribed once, before anything is announced: each stream's own subscription is then
    // live at once (on Redis, a subscription takes a round trip to confirm).
    backplane.subscribe(media::jobs::MEDIA_TOPIC).await?;
    let cookie_key = auth::key::load_or_create(config.cookie_key.as_deref(), &config.data_dir)?;
    let clock = ServerClock::new();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let media = Arc::new(
        media::MediaResolver::start(&config, store.clone(), clock, shutdown.clone()).await?,
    );
    let rooms = Rooms::new(RoomEnv {
        store: store.clone(),
        backplane: backplane.clone(),
        clock,
        metrics: metrics.clone(),
        media: media.clone(),
        rules: RoomRules {
            leave_grace: Duration::from_millis(config.leave_grace_ms),
            chat_lines: config.chat_rate_lines,
            chat_window: Duration::from_secs(config.chat_rate_window_secs),
            ..RoomRules::default()
        },
        ring_size: config.event_ring,
        fanout_window: Duration::from_millis(config.fanout_window_ms),
        idle: config.room_idle(),
        bar_addresses_for: Duration::from_secs(config.ban_address_secs),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        fence: None,
        writer: store::writer::EventWriter::start(store.clone(), metrics.clone()),
    });
    let jobs = media::jobs::Jobs::new(
        store.clone(),
        clock,
        rooms.clone(),
        backplane.clone(),
        media::jobs::JobsConfig {
            ffmpeg: config.ffmpeg.clone(),
            ffprobe: config.ffprobe.clone(),
            root: config.uploads_dir(),
            workers: config.job_workers(),
            max_attempts: config.job_max_attempts,
            retry_base: Duration::from_millis(config.job_retry_base_ms),
            timeout: Duration::from_secs(config.job_timeout_secs),
            media_limits: config.media_limits(),
            memory_bytes: config.job_memory_bytes,
            cpu_secs: config.job_cpu_secs,
            quota_bytes: config.upload_quota_bytes,
            transcode_sparse_max_secs: config.upload_transcode_sparse_max_secs as f64,
        },
    );
    std::fs::create_dir_all(config.uploads_dir()).with_context(|| {
        format!(
            "cannot create the uploads directory {}",
            config.uploads_dir().display()
        )
    })?;
    rooms.listen_to_other_nodes().await?;
    let passwords = auth::password::Passwords::per_core()?;
    let throttles = Arc::new(throttle::Throttles::new(config.rates(), &metrics));
    Ok(AppState::new(crate::state::Shared {
        backplane,
        media,
        passwords,
        throttles,
        config: Arc::new(config),
        store,
        clock,
        rooms,
        metrics,
        cookie_key,
        shutdown,
        tasks,
        jobs,
    }))
}

/// Serves Lockstep on `listener` until `shutdown` completes, then shuts down gracefully: clients
/// are told to reconnect, rooms save their playback, the store is closed.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build_state(config).await?;
    serve(listener, state, shutdown).await
}

/// Like [`run`], with state built beforehand (tests keep a clone to look inside).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    spawn_maintenance(&state);
    state
        .jobs
        .start(&state.tasks, state.shutdown.clone())
        .await
        .context("cannot start the media jobs")?;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(
        %address,
        data = %state.config.data_dir.display(),
        "Lockstep is listening on http://{address}"
    );
    let token = state.shutdown.clone();
    let grace = state.config.shutdown_grace();
    let file_limit = server::listen::raise_file_limit();
    let limits = connection_limits(&state.config, file_limit);
    tracing::info!(
        max_connections = limits.max_connections,
        per_address = limits.max_per_address,
        file_limit,
        "connection limits"
    );
    if let Some(address) = state.config.metrics_listen {
        serve_metrics(address, &state).await?;
    }
    if let Some(address) = state.config.syncplay_listen {
        server::syncplay::listen(address, &state).await?;
    }
    let stop = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: telling clients to reconnect and saving rooms");
        token.cancel();
    });
    let serving = server::listen::serve(
        listener,
        app(state.clone()),
        limits,
        state.metrics.clone(),
        state.shutdown.clone(),
    );
    // Connections get the shutdown grace to finish their requests once shutdown begins.
    tokio::pin!(serving);
    tokio::select! {
        () = &mut serving => {}
        () = async { state.shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "some HTTP connections did not finish in time");
        }
    }
    stop.abort();
    // WebSocket connections and room actors run outside hyper's connection tracking; they watch
    // the token and finish on their own.
    state.tasks.close();
    if tokio::time::timeout(grace, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "some connections or rooms did not finish in time");
    }
    state.rooms.writer().stop().await;
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `/metrics` alone on its own address until shutdown.
async fn serve_metrics(address: std::net::SocketAddr, state: &AppState) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    tracing::info!(%address, "metrics on http://{address}/metrics");
    let app = server::ops::metrics_router(state.clone());
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    });
    Ok(())
}

/// The connection caps and time limits from configuration; a cap above what the open-files
/// limit allows is lowered to it (with a warning), since past it every request would fail.
pub fn connection_limits(config: &Config, file_limit: u64) -> server::listen::ConnectionLimits {
    let fits = server::listen::default_max_connections(file_limit);
    let max_connections = match config.max_connections {
        0 => fits,
        n if n > fits => {
            tracing::warn!(
                configured = n,
                file_limit,
                "--max-connections is above what the open-files limit allows; using {fits}"
            );
            fits
        }
        n => n,
    };
    server::listen::ConnectionLimits {
        max_connections,
        max_per_address: config.max_connections_per_address,
        header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
        write_stall: config.idle_timeout(),
        trusted_proxies: config.trusted_proxies.clone(),
    }
}

fn spawn_maintenance(state: &AppState) {
    let state = state.clone();
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                _ = every.tick() => {
                    let now = state.clock.now();
                    let replaced_before = now - Duration::from_secs(state.config.session_grace_secs);
                    match state.store.purge_sessions(now, replaced_before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sessions = n, "purged old sessions"),
                        Err(err) => tracing::warn!(error = %err, "purging sessions failed"),
                    }
                    state.throttles.prune();
                    let idle_users = Duration::from_secs(state.config.purge_idle_users_secs);
                    match state.store.purge_idle_users(now - idle_users, PURGE_BATCH).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(users = n, "purged users who never did anything"),
                        Err(err) => tracing::warn!(error = %err, "purging idle users failed"),
                    }
                    if let Err(err) = state.store.purge_address_bars(now).await {
                        tracing::warn!(error = %err, "purging expired address bars failed");
                    }
                    let expiry = Duration::from_secs(state.config.upload_expiry_secs);
                    if let Err(err) = state.jobs.expire_stale_uploads(now - expiry).await {
                        tracing::warn!(error = %err, "cleaning up abandoned uploads failed");
                    }
                }
            }
        }
    });
}

/// Sets up logging: `RUST_LOG` filters (default `info`), in the configured format.
pub fn init_tracing(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Pretty => builder.try_init(),
    };
}
