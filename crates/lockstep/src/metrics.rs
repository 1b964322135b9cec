//! Prometheus metrics, served at `/metrics`.
//!
//! Each app owns its registry (prometheus-client has no global recorder), so several servers in
//! one test process do not mix their numbers. Histograms have fixed buckets and record with one
//! short lock, instead of keeping every sample until the next scrape.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    /// Open WebSocket connections.
    connections: Gauge,
    /// Rooms with a live actor in memory.
    rooms_loaded: Gauge,
    /// WebSocket frames received from clients.
    frames_in: Counter,
    /// WebSocket frames sent to clients.
    frames_out: Counter,
    /// Seconds from a room event being published to it being written to a client's socket: one
    /// sample per write, of the oldest event the write carried.
    broadcast_latency: Histogram,
    /// Seconds a room actor took to handle one message, store writes included.
    actor_busy: Histogram,
    /// Seconds one group commit of room events took (see `store::writer`).
    commit_seconds: Histogram,
    /// Rooms written by one group commit.
    commit_rooms: Histogram,
    /// Process resident memory, read at each scrape.
    resident_bytes: Gauge,
    /// Open TCP connections (HTTP, and WebSockets upgraded from them).
    tcp_connections: Gauge,
    /// Connections refused over a cap, by `reason` (`total`, `per_address`).
    connections_refused: Family<Vec<(String, String)>, Counter>,
    /// Failed accepts (out of file descriptors, mostly).
    accept_errors: Counter,
    /// Requests refused by a rate limit, by `limit`.
    rate_limited: Family<Vec<(String, String)>, Counter>,
    /// Viewers' sync error as they report it every few seconds (ms), by `quantile` of their
    /// window (`p50`, `p95`): the sync quality real viewers get.
    viewer_sync_error: Family<Vec<(String, String)>, Histogram>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lockstep");
        let connections = Gauge::default();
        let rooms_loaded = Gauge::default();
        let frames_in = Counter::default();
        let frames_out = Counter::default();
        // 50 µs .. ~1.6 s, doubling.
        let latency_buckets: Vec<f64> =
            prometheus_client::metrics::histogram::exponential_buckets(5e-5, 2.0, 16).collect();
        let broadcast_latency = Histogram::new(latency_buckets.clone());
        let actor_busy = Histogram::new(latency_buckets.clone());
        let commit_seconds = Histogram::new(latency_buckets);
        // 1 .. 512 rooms, doubling.
        let commit_rooms = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 10),
        );
        let resident_bytes = Gauge::default();
        let tcp_connections = Gauge::default();
        let connections_refused = Family::<Vec<(String, String)>, Counter>::default();
        let accept_errors = Counter::default();
        let rate_limited = Family::<Vec<(String, String)>, Counter>::default();
        // 1 ms .. ~16 s, doubling.
        let viewer_sync_error =
            Family::<Vec<(String, String)>, Histogram>::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    1.0, 2.0, 15,
                ))
            });
        registry.register(
            "viewer_sync_error_ms",
            "Viewers' distance from the room's position as they report it (ms), by quantile of each report's window",
            viewer_sync_error.clone(),
        );
        registry.register(
            "tcp_connections",
            "Open TCP connections, WebSockets included",
            tcp_connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused over a cap, by reason",
            connections_refused.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts (out of file descriptors, mostly)",
            accept_errors.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by limit",
            rate_limited.clone(),
        );
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "rooms_loaded",
            "Rooms with a live actor in memory",
            rooms_loaded.clone(),
        );
        registry.register(
            "ws_frames_in",
            "WebSocket frames received",
            frames_in.clone(),
        );
        registry.register("ws_frames_out", "WebSocket frames sent", frames_out.clone());
        registry.register(
            "broadcast_latency_seconds",
            "Time from publishing a room event to writing it to a client's socket",
            broadcast_latency.clone(),
        );
        registry.register(
            "room_actor_busy_seconds",
            "Time a room actor spent on one message, store writes included",
            actor_busy.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time one group commit of room events took",
            commit_seconds.clone(),
        );
        registry.register(
            "store_commit_rooms",
            "Rooms whose events one group commit wrote",
            commit_rooms.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            resident_bytes.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                connections,
                rooms_loaded,
                frames_in,
                frames_out,
                broadcast_latency,
                actor_busy,
                commit_seconds,
                commit_rooms,
                resident_bytes,
                tcp_connections,
                connections_refused,
                accept_errors,
                rate_limited,
                viewer_sync_error,
            }),
        }
    }

    pub fn connection_opened(&self) {
        self.inner.connections.inc();
    }
    pub fn connection_closed(&self) {
        self.inner.connections.dec();
    }
    pub fn tcp_connection_opened(&self) {
        self.inner.tcp_connections.inc();
    }
    pub fn tcp_connection_closed(&self) {
        self.inner.tcp_connections.dec();
    }
    pub fn connection_refused(&self, reason: &str) {
        self.inner
            .connections_refused
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }
    pub fn accept_error(&self) {
        self.inner.accept_errors.inc();
    }
    pub fn rate_limited(&self, limit: &str) {
        self.inner
            .rate_limited
            .get_or_create(&vec![("limit".to_owned(), limit.to_owned())])
            .inc();
    }
    pub fn room_loaded(&self) {
        self.inner.rooms_loaded.inc();
    }
    pub fn room_unloaded(&self) {
        self.inner.rooms_loaded.dec();
    }
    pub fn frame_in(&self) {
        self.inner.frames_in.inc();
    }
    pub fn frame_out(&self) {
        self.inner.frames_out.inc();
    }
    pub fn frames_out(&self, n: u64) {
        if n > 0 {
            self.inner.frames_out.inc_by(n);
        }
    }
    pub fn delivered(&self, latency_secs: f64) {
        self.inner.broadcast_latency.observe(latency_secs);
    }
    pub fn committed(&self, secs: f64, rooms: usize) {
        self.inner.commit_seconds.observe(secs);
        self.inner.commit_rooms.observe(rooms as f64);
    }
    pub fn actor_busy(&self, secs: f64) {
        self.inner.actor_busy.observe(secs);
    }

    /// The Prometheus text exposition of every metric.
    /// A viewer's sync report (ms).
    pub fn sync_report(&self, p50_ms: f64, p95_ms: f64) {
        for (quantile, value) in [("p50", p50_ms), ("p95", p95_ms)] {
            self.inner
                .viewer_sync_error
                .get_or_create(&vec![("quantile".to_owned(), quantile.to_owned())])
                .observe(value);
        }
    }

    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.inner
                .resident_bytes
                .set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Resident memory of this process, from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // 4 KiB pages on every Linux target we ship for.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.connection_opened();
        m.frame_in();
        m.delivered(0.001);
        let text = m.render();
        assert!(text.contains("lockstep_ws_connections 1"), "{text}");
        assert!(text.contains("lockstep_ws_frames_in_total 1"), "{text}");
        assert!(
            text.contains("lockstep_broadcast_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("lockstep_process_resident_memory_bytes"),
            "{text}"
        );
    }
}
