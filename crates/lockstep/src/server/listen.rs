//! Accepting connections, with the bounds a server on the open internet needs.
//!
//! axum's `serve` cannot set hyper's header-read timeout (it needs a timer, which axum does not
//! give hyper) or cap connections, and an outside test showed what that costs: 1,100 silent or
//! half-sent connections from one address, under a 1,024-file limit, made every request time out.
//! So this module runs the accept loop itself, with hyper's HTTP/1.1 server:
//!
//! - **Caps**: at most `max_connections` in total and `max_per_address` from one client address
//!   (an IPv4 address or an IPv6 /64; trusted proxies are exempt, as many clients share them).
//!   A connection over a cap gets a `503` with a JSON error and is closed at once, before hyper
//!   sees it. The total defaults to what the process's file limit leaves room for.
//! - **Headers in time**: a request's headers must arrive within `header_timeout`, also between
//!   requests on a kept-alive connection (hyper starts the same timer while it waits for the
//!   next request), so silent, slow and half-sent requests are closed.
//! - **Writes that stall**: a write that makes no progress for `write_stall` fails the
//!   connection, so a client that stops reading (an event stream, a download, a WebSocket)
//!   cannot hold its connection and buffers forever.
//! - **Out of file descriptors**: accept errors such as `EMFILE` back off (10 ms doubling to
//!   1 s) instead of spinning, and are counted in the metrics.
//!
//! Each connection's count is held by its socket, so an upgraded WebSocket keeps its place
//! until it closes. Shutdown asks every HTTP connection to finish its request and close;
//! WebSockets watch the server's shutdown token themselves.

use super::client::{ClientKey, canonical};
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use std::collections::HashMap;
use std::io;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// What bounds the connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections from one client address (0: no limit).
    pub max_per_address: usize,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Longest a write may make no progress.
    pub write_stall: Duration,
    /// Peers exempt from the per-address cap.
    pub trusted_proxies: Vec<IpNet>,
}

/// Refused connections waiting for their 503 to be read; beyond this they are just closed, so
/// that a flood cannot hold file descriptors in refusals.
const MAX_LINGERING: usize = 64;
/// How long a refused connection waits for the client to read the 503.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// Accept-error back-off: first and longest wait.
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Who holds how many connections.
#[derive(Default)]
struct Counts {
    total: AtomicUsize,
    by_address: Mutex<HashMap<ClientKey, usize>>,
    lingering: AtomicUsize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Total,
    PerAddress,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerAddress => "per_address",
        }
    }
}

impl Counts {
    fn by_address(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        // Every operation under this lock is a single update of the map.
        self.by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for a connection from `key` (`None`: exempt from the per-address cap).
    fn admit(
        self: &Arc<Self>,
        key: Option<ClientKey>,
        limits: &ConnectionLimits,
    ) -> Result<Place, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        if let Some(key) = key.filter(|_| limits.max_per_address > 0) {
            let mut by_address = self.by_address();
            let held = by_address.entry(key).or_insert(0);
            if *held >= limits.max_per_address {
                if *held == 0 {
                    by_address.remove(&key);
                }
                drop(by_address);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerAddress);
            }
            *held += 1;
        }
        Ok(Place {
            counts: self.clone(),
            key: key.filter(|_| limits.max_per_address > 0),
        })
    }
}

/// A connection's place in the counts, given back when the socket is dropped.
pub(crate) struct Place {
    counts: Arc<Counts>,
    key: Option<ClientKey>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut by_address = self.counts.by_address();
            if let Some(held) = by_address.get_mut(&key) {
                *held -= 1;
                if *held == 0 {
                    by_address.remove(&key);
                }
            }
        }
        self.counts.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client socket that holds its place in the counts and fails writes that stall. It is
/// `Unpin` (hyper needs that to hand it to a WebSocket), so the stall timer is boxed; it exists
/// only while a write is pending.
pub(crate) struct Guarded {
    stream: TcpStream,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    write_stall: Duration,
    _place: Place,
}

impl Guarded {
    fn new(stream: TcpStream, place: Place, write_stall: Duration) -> Self {
        Guarded {
            stream,
            stall: None,
            write_stall,
            _place: place,
        }
    }

    /// The socket, its place in the counts (to keep while the socket is open) and the longest a
    /// write may stall: a WebSocket writes to the socket itself (see `server::ws::out`).
    pub(crate) fn into_parts(self) -> (TcpStream, Place, Duration) {
        (self.stream, self._place, self.write_stall)
    }

    /// Runs a write; a write that stays pending longer than `write_stall` fails with TimedOut.
    fn poll_writing<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match write(Pin::new(&mut self.stream), cx) {
            Poll::Ready(result) => {
                self.stall = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.write_stall)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_writing(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writing(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_writing(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The answer to a connection over a cap, written before hyper ever sees it.
fn refusal_response(why: Refusal) -> Vec<u8> {
    let message = match why {
        Refusal::Total => "the server has too many connections open; try again shortly",
        Refusal::PerAddress => "too many connections from your address; close some and try again",
    };
    let body = serde_json::json!({
        "error": { "code": "too_many_connections", "message": message }
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accept errors that concern one connection (the next accept is fine) rather than the process.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The wait after `failures` accept errors in a row (1 for the first).
fn backoff(failures: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(BACKOFF_MAX)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then asks every connection to
/// finish and waits for them (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let counts = Arc::new(Counts::default());
    let connections = TaskTracker::new();
    let mut failures = 0u32;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                failures = 0;
                accepted
            }
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                failures += 1;
                metrics.accept_error();
                let wait = backoff(failures);
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %err, ?wait, failures, "cannot accept connections (out of file descriptors?); backing off");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let ip = canonical(peer.ip());
        let key = (!limits.trusted_proxies.iter().any(|net| net.contains(&ip)))
            .then(|| ClientKey::of(ip));
        let place = match counts.admit(key, &limits) {
            Ok(place) => place,
            Err(why) => {
                metrics.connection_refused(why.label());
                refuse(stream, why, &counts);
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            // Frames are small and latency-bound; without TCP_NODELAY they still arrive.
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(Guarded::new(stream, place, limits.write_stall));
        // Requests get the peer's address, as axum's `ConnectInfo`.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let header_timeout = limits.header_timeout;
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            metrics.tcp_connection_opened();
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    if let Err(err) = conn.await {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                }
            }
            metrics.tcp_connection_closed();
        });
    }
    connections.close();
    connections.wait().await;
}

/// Answers an over-cap connection with 503 and closes it. The answer fits any socket buffer, so
/// one non-blocking write sends it; the socket then lingers briefly (a few at a time) so that
/// the client reads the answer rather than a reset.
fn refuse(stream: TcpStream, why: Refusal, counts: &Arc<Counts>) {
    let _ = stream.try_write(&refusal_response(why));
    if counts.lingering.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
        counts.lingering.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let counts = counts.clone();
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            use tokio::io::AsyncReadExt;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        counts.lingering.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The default cap on connections: what the file limit leaves after a reserve for the
/// database, upload files, ffmpeg's pipes and the media proxy.
pub fn default_max_connections(file_limit: u64) -> usize {
    let reserve = (file_limit / 20).max(256);
    usize::try_from(file_limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(16)
}

/// Raises the soft limit on open files to the hard limit and returns it.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read or raise the open files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_per_address: per,
            header_timeout: Duration::from_secs(1),
            write_stall: Duration::from_secs(1),
            trusted_proxies: Vec::new(),
        }
    }

    #[test]
    fn places_are_counted_per_address_and_in_total_and_given_back() {
        let counts = Arc::new(Counts::default());
        let l = limits(3, 2);
        let a_key = ClientKey::of("192.0.2.1".parse().unwrap());
        let a = Some(a_key);
        let b = Some(ClientKey::of("192.0.2.2".parse().unwrap()));
        let a1 = counts.admit(a, &l).unwrap();
        let _a2 = counts.admit(a, &l).unwrap();
        assert_eq!(counts.admit(a, &l).err(), Some(Refusal::PerAddress));
        let _b1 = counts.admit(b, &l).unwrap();
        assert_eq!(counts.admit(b, &l).err(), Some(Refusal::Total));
        // Trusted proxies skip the per-address cap, not the total.
        assert_eq!(counts.admit(None, &l).err(), Some(Refusal::Total));
        drop(a1);
        let a3 = counts.admit(a, &l).unwrap();
        assert_eq!(counts.total.load(Ordering::Acquire), 3);
        drop(a3);
        assert_eq!(counts.total.load(Ordering::Acquire), 2);
        assert_eq!(counts.by_address().get(&a_key), Some(&1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_after_the_stall_time() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let counts = Arc::new(Counts::default());
        let place = counts.admit(None, &limits(1, 0)).unwrap();
        let mut guarded = Guarded::new(server, place, Duration::from_secs(30));
        // The client reads nothing: the socket buffers fill, then the write stalls.
        let chunk = vec![0u8; 64 * 1024];
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(err) = guarded.write_all(&chunk).await {
                break err;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(30));
        drop(guarded);
        assert_eq!(
            counts.total.load(Ordering::Acquire),
            0,
            "the place was given back"
        );
        drop(client);
    }

    #[test]
    fn accept_backoff_doubles_to_a_second() {
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(2), Duration::from_millis(20));
        assert_eq!(backoff(8), Duration::from_millis(1000));
        assert_eq!(backoff(100), Duration::from_secs(1));
        let emfile = io::Error::from_raw_os_error(24);
        assert!(!is_connection_error(&emfile));
        assert!(is_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_under_the_file_limit() {
        assert_eq!(default_max_connections(1024), 768);
        assert_eq!(default_max_connections(20_000), 19_000);
        assert_eq!(default_max_connections(100), 16);
    }

    #[test]
    fn refusals_are_json_503s() {
        let text = String::from_utf8(refusal_response(Refusal::PerAddress)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }
}
