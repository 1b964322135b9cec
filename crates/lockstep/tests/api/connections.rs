//! Connections from strangers: silent and half-sent ones are closed in time, caps per address and
//! in total answer 503 without harming anyone else, stalled upload bodies end. An outside test
//! held 1,100 such connections from one address and every request timed out.

use crate::helpers::{public_room, spawn_with, start_binary_under};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The longest any test here waits for the server to act (far above the configured limits, so
/// a slow machine does not fail them; it only bounds a hang).
const PATIENCE: Duration = Duration::from_secs(20);

fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to the server from a chosen loopback address (Linux routes all of
/// 127.0.0.0/8 to the loopback interface).
async fn connect_from(server: SocketAddr, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the server closes; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

async fn get(server: SocketAddr, from: &str, path: &str) -> String {
    let mut s = connect_from(server, from).await;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    until_closed(&mut s).await
}

#[tokio::test]
async fn silent_and_half_sent_requests_are_closed_after_the_header_timeout() {
    let app = spawn_with(|c| c.header_timeout_secs = 1).await;
    let server = address(&app.base);
    let room = public_room(&app.api()).await;
    let mut silent = connect_from(server, "127.0.0.1").await;
    let mut half_headers = connect_from(server, "127.0.0.1").await;
    half_headers
        .write_all(b"GET /api/rooms HTTP/1.1\r\nHost: x\r\nAccept: app")
        .await
        .unwrap();
    let mut half_upgrade = connect_from(server, "127.0.0.1").await;
    half_upgrade
        .write_all(
            format!("GET /api/rooms/{room}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    // A kept-alive connection that goes quiet after one request is closed too.
    let mut kept_alive = connect_from(server, "127.0.0.1").await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (what, stream) in [
        ("silent", &mut silent),
        ("half-sent headers", &mut half_headers),
        ("half-sent upgrade", &mut half_upgrade),
        ("kept alive", &mut kept_alive),
    ] {
        let said = until_closed(stream).await;
        assert!(!said.contains(" 101 "), "{what}: {said}");
    }
    assert!(app.api().get("/healthz").await.unwrap().status.is_success());
}

#[tokio::test]
async fn connections_over_the_caps_get_503_and_others_are_still_served() {
    let app = spawn_with(|c| {
        c.header_timeout_secs = 60;
        c.max_connections = 8;
        c.max_connections_per_address = 5;
    })
    .await;
    let server = address(&app.base);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(server, "127.0.0.1").await);
    }
    let refused = get(server, "127.0.0.1", "/healthz").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("\"too_many_connections\""), "{refused}");
    // Someone else is served.
    let fine = get(server, "127.0.0.2", "/healthz").await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    // The total cap: 5 + 3 more from another address fill it.
    for _ in 0..3 {
        held.push(connect_from(server, "127.0.0.3").await);
    }
    let full = get(server, "127.0.0.4", "/healthz").await;
    assert!(full.starts_with("HTTP/1.1 503"), "{full}");
    // Places come back when connections close.
    held.clear();
    let mut served = false;
    for _ in 0..50 {
        if get(server, "127.0.0.1", "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "closed connections gave their places back");
}

/// A PATCH that declares 1,000 bytes, sends 10 and stops: the server ends it after the idle
/// time, keeps the 10 bytes, and the upload can resume from there.
#[tokio::test]
async fn a_stalled_upload_body_is_ended_and_what_arrived_is_kept() {
    let app = spawn_with(|c| c.idle_timeout_secs = 1).await;
    let api = app.api();
    let r = crate::uploads::create(&api, 1000, "stalled.mp4").await;
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let server = address(&app.base);
    let mut s = TcpStream::connect(server).await.unwrap();
    let cookie = api.cookie_header().unwrap();
    s.write_all(
        format!(
            "PATCH {location} HTTP/1.1\r\nHost: {server}\r\nOrigin: {}\r\nCookie: {cookie}\r\n\
             Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789",
            api.origin()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let said = until_closed(&mut s).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    let head = api
        .raw(reqwest::Method::HEAD, &location)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["upload-offset"], "10");
}

/// The outside test's attack: 1,100 silent connections from one address against a server with
/// a 1,024-file limit made every request time out ("Too many open files"). Now the address hits
/// its cap long before the file limit, gets 503s, and everyone else is served.
#[tokio::test]
async fn one_address_cannot_exhaust_the_file_limit() {
    // The test process holds 1,100 sockets itself.
    rlimit::increase_nofile_limit(4096).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_binary_under(
        &["prlimit", "--nofile=1024:1024", "--"],
        dir.path(),
        &["--header-timeout-secs", "60"],
    )
    .await;
    let addr = address(&base);
    let mut sockets = Vec::new();
    for _ in 0..1100 {
        sockets.push(connect_from(addr, "127.0.0.1").await);
    }
    // A refused connection is answered and closed at once; an accepted one stays silent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut held = Vec::new();
    let mut refused = 0;
    for s in sockets {
        let mut buf = [0u8; 16];
        match s.try_read(&mut buf) {
            Ok(n) if n > 0 => {
                assert!(buf.starts_with(b"HTTP/1.1 503"), "{:?}", &buf[..n]);
                refused += 1;
            }
            _ => held.push(s),
        }
    }
    assert!(
        refused >= 1100 - 256,
        "{refused} refused, {} held",
        held.len()
    );
    for from in ["127.0.0.2", "127.0.0.3"] {
        let answer = get(addr, from, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{from}: {answer}");
    }
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server is still running"
    );
}

/// A WebSocket whose peer vanished without closing (no FIN: a laptop lid, a dead NAT) used to
/// stay until a write failed. The server pings a silent client after half the silence allowed
/// and drops it when nothing comes back; a client that answers pings stays.
#[tokio::test]
async fn silent_websockets_are_pinged_and_dead_ones_dropped() {
    let app = spawn_with(|c| c.ws_silence_secs = 2).await;
    let (owner, other) = (app.api(), app.api());
    let room = public_room(&owner).await;
    let (mut alive, _) = owner.join(room).await.unwrap();
    let (mut dead, _) = other.join(room).await.unwrap();
    // `alive` keeps reading (and so answers pings) for twice the idle time; `dead` reads nothing.
    let waited = tokio::time::timeout(
        Duration::from_secs(4),
        alive.wait_for(|f| matches!(f, lockstep_core::protocol::ServerFrame::Closed { .. })),
    )
    .await;
    assert!(waited.is_err(), "nothing closed the live viewer");
    alive
        .ok(|id| lockstep_core::protocol::ClientFrame::Chat {
            id,
            text: "still here".into(),
        })
        .await
        .unwrap();
    let closed = dead.closed().await.unwrap();
    assert_eq!(closed.code, 1006, "dropped without a close handshake");
}
