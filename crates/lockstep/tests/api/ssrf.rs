//! Server-side request forgery: the server must not read what is on its own network for someone
//! who pastes a link. An outside test got ffprobe to read a file on 127.0.0.1 through a name that
//! resolves there, the machine's own public address, a redirect, and HLS segments listed by a
//! playlist on an allowed host; the internal file's title and duration came back to the room.
//!
//! Here the "internet" is 127.0.0.1 (allowed with `--media-allow-networks 127.0.0.1/32`) and the
//! "internal network" is 127.0.0.2, which is loopback like the rest of 127.0.0.0/8 and so refused.

use crate::helpers::{clip_ts, media, public_room, serve, serve_on, spawn_with};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use lockstep_client::Viewer;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use lockstep_core::room::ItemChangeCause;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Serves the test media on `ip`, counting requests; returns its base URL and the count.
async fn internal_server(ip: &str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .fallback_service(tower_http::services::ServeDir::new(&media().dir))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            },
        ));
    (serve_on(ip, app).await, hits)
}

/// An allowed server that redirects to, and lists HLS segments on, `internal`.
async fn front_server(internal: String) -> String {
    clip_ts();
    let to = internal.clone();
    let ranged_to = internal.clone();
    let playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXTINF:2.0,\n{internal}/clip-segment.ts\n#EXT-X-ENDLIST\n"
    );
    let app = Router::new()
        .route(
            "/redirect.mp4",
            axum::routing::get(move || {
                let to = to.clone();
                async move {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("{to}/clip2s.mp4"))],
                    )
                        .into_response()
                }
            }),
        )
        // The file itself for ffprobe, a redirect to the internal address for the range check's
        // request of one byte.
        .route(
            "/ranged.mp4",
            axum::routing::get(move |request: axum::extract::Request| {
                let to = ranged_to.clone();
                async move {
                    if request
                        .headers()
                        .get(header::RANGE)
                        .is_some_and(|r| r == "bytes=0-0")
                    {
                        return (
                            StatusCode::FOUND,
                            [(header::LOCATION, format!("{to}/clip2s.mp4"))],
                        )
                            .into_response();
                    }
                    let file = tower_http::services::ServeFile::new(media().dir.join("clip2s.mp4"));
                    match tower::ServiceExt::oneshot(file, request).await {
                        Ok(answer) => answer.into_response(),
                        Err(never) => match never {},
                    }
                }
            }),
        )
        .route(
            "/list.m3u8",
            axum::routing::get(move || {
                let playlist = playlist.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
                        playlist,
                    )
                }
            }),
        )
        .fallback_service(tower_http::services::ServeDir::new(&media().dir));
    serve(app).await
}

/// Adds `url`; returns the error code if refused at once.
async fn add(v: &mut Viewer, url: &str) -> Result<(), String> {
    match v
        .command(|id| ClientFrame::QueueAdd {
            id,
            url: url.to_owned(),
        })
        .await
        .unwrap()
    {
        Ok(_) => Ok(()),
        Err(ServerFrame::Error { code, .. }) => Err(code),
        Err(other) => panic!("{other:?}"),
    }
}

/// Waits for the lookup of the last item added: `Ok(title)` when resolved, `Err(())` when it
/// left the queue as unavailable, or stopped playing as such (it is the current item when the
/// one before had ended: the 2 s control item does while its lookup waits on a busy machine).
/// A lookup may take longer than a frame is waited for (`LOOKUP_TIMEOUT`).
async fn looked_up(v: &mut Viewer) -> Result<(String, Option<f64>), ()> {
    let frame = v
        .wait_for_within(lockstep_client::LOOKUP_TIMEOUT, |f| {
            matches!(
                f,
                ServerFrame::ItemUpdated { .. }
                    | ServerFrame::QueueRemoved { by: None, .. }
                    | ServerFrame::NowPlaying {
                        cause: ItemChangeCause::Unavailable,
                        ..
                    }
            )
        })
        .await
        .unwrap();
    match frame {
        ServerFrame::ItemUpdated { item, .. } => Ok((item.title, item.duration)),
        _ => Err(()),
    }
}

#[tokio::test]
async fn the_server_reads_nothing_on_its_own_network_for_a_pasted_link() {
    let (internal, hits) = internal_server("127.0.0.2").await;
    let front = front_server(internal.clone()).await;
    let app = spawn_with(|c| {
        c.allow_private_media = false;
        c.media_allow_networks = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let api = app.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();

    // An allowed host is read, through the proxy (control).
    add(&mut v, &format!("{front}/clip2s.mp4")).await.unwrap();
    let (title, duration) = looked_up(&mut v).await.expect("resolved");
    assert_eq!(title, "Test Pattern");
    assert!((duration.unwrap() - 2.0).abs() < 0.15);

    // A redirect to the internal address, an HLS playlist whose segments are there, and a file
    // whose range check is redirected there: the items leave the queue as unavailable, and
    // nothing internal was read.
    for path in ["redirect.mp4", "list.m3u8", "ranged.mp4"] {
        add(&mut v, &format!("{front}/{path}")).await.unwrap();
        assert_eq!(looked_up(&mut v).await, Err(()), "{path}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal server was never asked"
    );

    // Refused at once: the internal address itself, and this machine's own addresses
    // (including a public one, if it has one: the outside test used 192.0.2.2 here).
    assert_eq!(
        add(&mut v, &format!("{internal}/clip2s.mp4")).await,
        Err("invalid_media_url".into())
    );
    let own: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback())
        .collect();
    for ip in &own {
        let host = match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        assert_eq!(
            add(&mut v, &format!("http://{host}:9/secret.mp4")).await,
            Err("invalid_media_url".into()),
            "{ip}"
        );
    }
    // The room never heard the internal file's title: only the control item has one.
    let (_w, welcome) = api.join(room).await.unwrap();
    for item in welcome.current.iter().chain(welcome.queue.iter()) {
        assert!(
            item.title != "Test Pattern" || item.url == format!("{front}/clip2s.mp4"),
            "{item:?}"
        );
    }

    // With no network allowed, a name that resolves to this machine (its own name, from
    // /etc/hosts) is refused at once when it resolves here, or left unavailable by the proxy
    // when it does not; it is never read.
    let strict = spawn_with(|c| c.allow_private_media = false).await;
    let api = strict.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let port = front.rsplit(':').next().unwrap();
    for url in [
        format!("http://{}:{port}/clip2s.mp4", hostname.trim()),
        format!("http://localhost:{port}/clip2s.mp4"),
        format!("http://127.0.0.1:{port}/clip2s.mp4"),
    ] {
        match add(&mut v, &url).await {
            Err(code) => assert_eq!(code, "invalid_media_url", "{url}"),
            Ok(()) => assert_eq!(looked_up(&mut v).await, Err(()), "{url}"),
        }
    }
}
