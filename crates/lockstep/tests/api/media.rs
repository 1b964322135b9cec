//! Media metadata: YouTube through a local stand-in that answers in YouTube's format, direct
//! URLs through the real ffprobe.

use crate::helpers::{
    clip_ts, media, oembed_body, public_room, serve, serve_dir, spawn_with, videos_list_body,
};
use lockstep_client::Viewer;
use lockstep_core::media::DirectFormat;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use lockstep_core::queue::{ItemSource, ItemStatus, QueueItem};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VIDEO: &str = "dQw4w9WgXcQ";

async fn updated(v: &mut Viewer) -> QueueItem {
    match v
        .wait_for_within(lockstep_client::LOOKUP_TIMEOUT, |f| {
            matches!(f, ServerFrame::ItemUpdated { .. })
        })
        .await
        .unwrap()
    {
        ServerFrame::ItemUpdated { item, .. } => item,
        _ => unreachable!(),
    }
}

/// Adds `url`; returns the chat line that says it is unavailable and was removed.
async fn added_unavailable(v: &mut Viewer, url: &str) -> String {
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: url.to_owned(),
    })
    .await
    .unwrap();
    match v
        .wait_for_within(
            lockstep_client::LOOKUP_TIMEOUT,
            |f| matches!(f, ServerFrame::Chat { line, .. } if line.text.contains("unavailable")),
        )
        .await
        .unwrap()
    {
        ServerFrame::Chat { line, .. } => line.text,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn youtube_links_get_title_and_thumbnail_from_oembed_and_duration_from_the_first_player() {
    let yt = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oembed"))
        .and(query_param(
            "url",
            format!("https://www.youtube.com/watch?v={VIDEO}"),
        ))
        .and(query_param("format", "json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(oembed_body(VIDEO, "Never Gonna Give You Up")),
        )
        .expect(1)
        .mount(&yt)
        .await;
    let oembed = format!("{}/oembed", yt.uri());
    let app = spawn_with(move |c| c.youtube_oembed_url = oembed.parse().unwrap()).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("https://youtu.be/{VIDEO}?t=1m30s"),
    })
    .await
    .unwrap();
    let started = v
        .wait_for(|f| matches!(f, ServerFrame::NowPlaying { .. }))
        .await
        .unwrap();
    let ServerFrame::NowPlaying {
        item: Some(item),
        state,
        ..
    } = started
    else {
        panic!()
    };
    assert_eq!(
        item.source,
        ItemSource::Youtube {
            video_id: VIDEO.into()
        }
    );
    assert_eq!(item.url, format!("https://www.youtube.com/watch?v={VIDEO}"));
    assert_eq!(
        (item.start, state.position),
        (90.0, 90.0),
        "t= is where playback starts"
    );
    assert_eq!(item.status, ItemStatus::Pending);

    let item = updated(&mut v).await;
    assert_eq!(item.title, "Never Gonna Give You Up");
    assert_eq!(
        item.thumbnail.as_deref(),
        Some("https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg")
    );
    assert_eq!((item.duration, item.status), (None, ItemStatus::Ready));

    // The first player to know the duration reports it; it is accepted once.
    v.ok(|id| ClientFrame::Duration {
        id,
        item_id: item.id,
        duration: 213.0,
    })
    .await
    .unwrap();
    assert_eq!(updated(&mut v).await.duration, Some(213.0));
    let code = v
        .refused(|id| ClientFrame::Duration {
            id,
            item_id: item.id,
            duration: 1.0,
        })
        .await
        .unwrap();
    assert_eq!(code, "duration_known");
    // Nonsense durations are refused for an item whose duration is still unknown.
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/unknown.mp4".into(),
    })
    .await
    .unwrap();
    let unknown = updated(&mut v).await;
    assert_eq!(unknown.duration, None);
    for bad in [0.0, -5.0, 1e12] {
        let code = v
            .refused(|id| ClientFrame::Duration {
                id,
                item_id: unknown.id,
                duration: bad,
            })
            .await
            .unwrap();
        assert_eq!(code, "invalid_duration", "{bad}");
    }
}

#[tokio::test]
async fn with_an_api_key_the_data_api_gives_the_duration_and_failures_fall_back_to_oembed() {
    let yt = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", VIDEO))
        .and(query_param("key", "test-key"))
        .and(query_param("part", "snippet,contentDetails,status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(videos_list_body(
            VIDEO,
            "From the API",
            "PT3M33S",
        )))
        .mount(&yt)
        .await;
    // Another video: the API is over quota (YouTube's real error shape), oEmbed answers.
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "aaaaaaaaaaa"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": { "code": 403, "message": "The request cannot be completed because you have exceeded your quota.",
                       "errors": [{ "message": "quota", "domain": "youtube.quota", "reason": "quotaExceeded" }] }
        })))
        .mount(&yt)
        .await;
    Mock::given(method("GET"))
        .and(path("/oembed"))
        .and(query_param(
            "url",
            "https://www.youtube.com/watch?v=aaaaaaaaaaa",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(oembed_body("aaaaaaaaaaa", "From oEmbed")),
        )
        .mount(&yt)
        .await;
    // A third: does not exist (the API returns no items).
    Mock::given(method("GET"))
        .and(path("/youtube/v3/videos"))
        .and(query_param("id", "bbbbbbbbbbb"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "youtube#videoListResponse", "etag": "x", "items": [],
            "pageInfo": { "totalResults": 0, "resultsPerPage": 0 }
        })))
        .mount(&yt)
        .await;
    let base = yt.uri();
    let app = spawn_with(move |c| {
        c.youtube_api_key = Some("test-key".into());
        c.youtube_api_url = format!("{base}/youtube/v3/").parse().unwrap();
        c.youtube_oembed_url = format!("{base}/oembed").parse().unwrap();
    })
    .await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();

    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("https://www.youtube.com/watch?v={VIDEO}"),
    })
    .await
    .unwrap();
    let item = updated(&mut v).await;
    assert_eq!(
        (item.title.as_str(), item.duration),
        ("From the API", Some(213.0))
    );
    assert_eq!(
        item.thumbnail.as_deref(),
        Some("https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg")
    );

    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "https://www.youtube.com/shorts/aaaaaaaaaaa".into(),
    })
    .await
    .unwrap();
    let item = updated(&mut v).await;
    assert_eq!((item.title.as_str(), item.duration), ("From oEmbed", None));

    // An unavailable video leaves the queue with a line in the chat that says why.
    let line = added_unavailable(&mut v, "https://www.youtube.com/embed/bbbbbbbbbbb").await;
    assert!(
        line.ends_with("is unavailable and was removed: the video does not exist or is private"),
        "{line}"
    );
    v.wait_for(|f| matches!(f, ServerFrame::QueueRemoved { by: None, .. }))
        .await
        .unwrap();
}

/// Serves `file` as a host that ignores Range does: the whole file, `200 OK`, every time (the
/// default of `python3 -m http.server`, and of many small servers). With `advertise`, it still
/// sends the whole file but says `Accept-Ranges: bytes`, which Chromium takes as seekable.
async fn serve_without_ranges(file: std::path::PathBuf, advertise: bool) -> String {
    use axum::http::header;
    let app = axum::Router::new().fallback(move || {
        let file = file.clone();
        async move {
            let body = tokio::fs::read(&file).await.unwrap();
            let mut headers = vec![(header::CONTENT_TYPE, "video/mp4")];
            if advertise {
                headers.push((header::ACCEPT_RANGES, "bytes"));
            }
            (
                axum::http::StatusCode::OK,
                axum::http::HeaderMap::from_iter(
                    headers
                        .into_iter()
                        .map(|(k, v)| (k, header::HeaderValue::from_static(v))),
                ),
                body,
            )
        }
    });
    serve(app).await
}

#[tokio::test]
async fn a_file_whose_host_ignores_range_requests_leaves_the_queue_saying_why() {
    let media = media();
    let ignores = serve_without_ranges(media.dir.join("clip2s.mp4"), false).await;
    let advertises = serve_without_ranges(media.dir.join("clip2s.mp4"), true).await;
    let app = spawn_with(|_| {}).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    // ffprobe reads it without a word; a browser could not seek in it: it leaves the queue.
    let line = added_unavailable(&mut v, &format!("{ignores}/clip.mp4")).await;
    assert!(
        line.contains("its host does not answer range requests"),
        "{line}"
    );
    let welcome = ann.join(room).await.unwrap().1;
    assert!(
        welcome.current.is_none() && welcome.queue.is_empty(),
        "{welcome:?}"
    );
    // The same behind a redirect from another host (a CDN's signed link): followed and checked.
    let to = format!("{ignores}/clip.mp4");
    let redirect = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move { axum::response::Redirect::temporary(&to) }
    });
    let moved = serve(redirect).await;
    let line = added_unavailable(&mut v, &format!("{moved}/film.mp4")).await;
    assert!(
        line.contains("its host does not answer range requests"),
        "{line}"
    );
    // A stream without an end (a radio's, an MPEG-TS feed) cannot be seeked by anyone and is
    // played live: not checked, it stays.
    let chunk = bytes::Bytes::from(std::fs::read(clip_ts()).unwrap());
    let live = axum::Router::new().fallback(move || {
        let chunk = chunk.clone();
        async move {
            // The same two seconds over and over, with no length: as a live feed comes.
            let feed = futures_util::stream::repeat_with(move || {
                Ok::<_, std::convert::Infallible>(chunk.clone())
            });
            (
                [(axum::http::header::CONTENT_TYPE, "video/mp2t")],
                axum::body::Body::from_stream(feed),
            )
        }
    });
    let feed = serve(live).await;
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{feed}/live.ts"),
    })
    .await
    .unwrap();
    let item = updated(&mut v).await;
    assert_eq!((item.status, item.duration), (ItemStatus::Ready, None));
    // A host that says it takes ranges is believed, as Chromium does: the item plays.
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{advertises}/clip.mp4"),
    })
    .await
    .unwrap();
    let item = updated(&mut v).await;
    assert_eq!(
        item.source,
        ItemSource::Url {
            format: DirectFormat::Mp4
        }
    );
    assert!(
        (item.duration.unwrap() - 2.0).abs() < 0.15,
        "{:?}",
        item.duration
    );
}

#[tokio::test]
async fn direct_urls_are_probed_with_ffprobe() {
    let media = media();
    // An HLS rendition of the clip, made with the real ffmpeg.
    let hls = media.dir.join("hls");
    if !hls.join("clip.m3u8").exists() {
        std::fs::create_dir_all(&hls).unwrap();
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(media.dir.join("clip2s.mp4"))
            .args([
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "1",
                "-hls_playlist_type",
                "vod",
            ])
            .arg(hls.join("clip.m3u8"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let files = serve_dir(&media.dir).await;
    let app = spawn_with(|_| {}).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    let cases = [
        ("clip2s.mp4", DirectFormat::Mp4, 2.0, "Test Pattern"),
        // Without a title tag: the file's name without its extension.
        ("clip3s.webm", DirectFormat::Webm, 3.0, "clip3s"),
        ("hls/clip.m3u8", DirectFormat::Hls, 2.0, "clip"),
    ];
    let mut posters = Vec::new();
    for (file, format, duration, title) in cases {
        v.ok(|id| ClientFrame::QueueAdd {
            id,
            url: format!("{files}/{file}"),
        })
        .await
        .unwrap();
        let item = updated(&mut v).await;
        assert_eq!(item.source, ItemSource::Url { format }, "{file}");
        assert!(
            (item.duration.unwrap() - duration).abs() < 0.15,
            "{file}: {:?}",
            item.duration
        );
        assert_eq!(item.title, title);
        // A poster frame, taken by ffmpeg through the proxy and served by the server.
        let poster = item.thumbnail.clone().expect("a poster frame");
        assert!(poster.starts_with("/media/posters/"), "{poster}");
        let answer = ann.raw(reqwest::Method::GET, &poster).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{file}");
        assert_eq!(answer.headers()["content-type"], "image/jpeg");
        let jpeg = answer.bytes().await.unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8]), "{file}: not a JPEG");
        posters.push(poster);
    }
    posters.dedup();
    assert_eq!(posters.len(), 3, "one poster per link");
    // The same link again: the cached poster, the same name.
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{files}/clip2s.mp4"),
    })
    .await
    .unwrap();
    assert_eq!(updated(&mut v).await.thumbnail.as_ref(), Some(&posters[0]));
    // Only names the cache gives are served.
    for bad in [
        "nothere.jpg",
        "..%2F..%2Fetc%2Fpasswd",
        "0123456789abcdef0123456789abcdef.jpg",
    ] {
        let code = ann
            .raw(reqwest::Method::GET, &format!("/media/posters/{bad}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(code, 404, "{bad}");
    }
    // Not a video: still playable, duration unknown, the first player's report is taken.
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{files}/notvideo.mp4"),
    })
    .await
    .unwrap();
    let item = updated(&mut v).await;
    assert_eq!((item.status, item.duration), (ItemStatus::Ready, None));
    assert_eq!(item.thumbnail, None);
    v.ok(|id| ClientFrame::Duration {
        id,
        item_id: item.id,
        duration: 12.5,
    })
    .await
    .unwrap();
    assert_eq!(updated(&mut v).await.duration, Some(12.5));
}

#[tokio::test]
async fn a_media_server_that_never_answers_times_out_and_the_item_stays_playable() {
    // Accepts connections and says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let app = spawn_with(|c| c.probe_timeout_secs = 1).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("http://{addr}/stuck.mp4"),
    })
    .await
    .unwrap();
    // The probe gives up (its 1 s timeout kills ffprobe); the item is ready, duration unknown.
    let item = updated(&mut v).await;
    assert_eq!((item.status, item.duration), (ItemStatus::Ready, None));
    // Meanwhile the room kept working.
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "still fine".into(),
    })
    .await
    .unwrap();
}

/// A test video made once: 8 s at 30 fps, a keyframe every 2 s, B-frames (so composition
/// offsets and an edit list), written as `args` say (`-movflags` and the like).
fn gop2_mp4(name: &str, args: &[&str]) -> std::path::PathBuf {
    // Two tests may ask for the same file at once.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = media().dir.join(name);
    if !file.exists() {
        let tmp = media()
            .dir
            .join(format!("{name}.{}.tmp.mp4", std::process::id()));
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=duration=8:size=320x180:rate=30",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=8"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"])
            .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-shortest"])
            .args(args)
            .arg(&tmp)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg made {name}");
        std::fs::rename(&tmp, &file).unwrap();
    }
    file
}

/// The keyframe times ffprobe reads from `file`'s packets (what an upload's list holds).
fn ffprobe_keyframes(file: &std::path::Path) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=print_section=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(','))
        .filter(|(_, flags)| flags.starts_with('K'))
        .map(|(t, _)| (t.parse::<f64>().unwrap() * 1000.0).round() / 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

#[tokio::test]
async fn a_linked_mp4s_keyframes_are_read_from_its_moov_and_served_to_the_pages() {
    let media = media();
    // A recording's layout (the moov after the media data), and a fragmented file's.
    let last = gop2_mp4("gop2-moov-last.mp4", &[]);
    gop2_mp4(
        "gop2-fragmented.mp4",
        &["-movflags", "frag_keyframe+empty_moov"],
    );
    let files = serve_dir(&media.dir).await;
    let app = spawn_with(|_| {}).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    let expected = ffprobe_keyframes(&last);
    assert_eq!(expected, [0.0, 2.0, 4.0, 6.0]);
    let cases: [(&str, Option<Vec<f64>>); 4] = [
        ("gop2-moov-last.mp4", Some(expected)),
        // Made for the web (moov first), one keyframe in its 2 s.
        (
            "clip2s.mp4",
            Some(ffprobe_keyframes(&media.dir.join("clip2s.mp4"))),
        ),
        // Not an MP4; an MP4 whose samples are in its fragments: no list.
        ("clip3s.webm", None),
        ("gop2-fragmented.mp4", None),
    ];
    let stranger = app.api();
    for (file, expected) in cases {
        let url = format!("{files}/{file}");
        v.ok(|id| ClientFrame::QueueAdd {
            id,
            url: url.clone(),
        })
        .await
        .unwrap();
        // Kept before the item is ready, so a page that sees it ready finds them.
        assert_eq!(updated(&mut v).await.status, ItemStatus::Ready, "{file}");
        let answer = stranger
            .raw(reqwest::Method::GET, "/media/keyframes")
            .query(&[("url", &url)])
            .send()
            .await
            .unwrap();
        match expected {
            Some(times) => {
                assert_eq!(answer.status(), 200, "{file}");
                assert_eq!(answer.headers()["content-type"], "application/json");
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body, json!({ "keyframes": times }), "{file}");
            }
            None => {
                assert_eq!(answer.status(), 404, "{file}");
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["error"]["code"], "not_found", "{file}");
            }
        }
    }
    // A link no one queued has none; a request without a link is told what it lacks.
    let never = format!("{files}/elsewhere.mp4");
    let answer = stranger
        .raw(reqwest::Method::GET, "/media/keyframes")
        .query(&[("url", &never)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let answer = stranger
        .raw(reqwest::Method::GET, "/media/keyframes")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_query");
}

/// A host that serves `gop2-moov-last.mp4` properly to ffprobe, ffmpeg and the range check, and
/// lies to the `moov` reading (the server's own requests after its `bytes=0-0`) as each path says:
/// `/wrong-start.mp4` answers every range as if it began at 0, `/whole.mp4` sends the whole file
/// with `200`, `/huge-moov.mp4` has a `moov` that claims 1 GiB.
async fn lying_host() -> String {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let dir = media().dir.clone();
    gop2_mp4("gop2-moov-last.mp4", &[]);
    let app = axum::Router::new().fallback(move |mut request: Request<Body>| {
        let dir = dir.clone();
        async move {
            let header_of = |request: &Request<Body>, name| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let ours = header_of(&request, header::USER_AGENT).starts_with("lockstep/");
            let range = header_of(&request, header::RANGE);
            if !ours || range == "bytes=0-0" {
                let path = request.uri().path().to_owned();
                *request.uri_mut() = "/gop2-moov-last.mp4".parse().unwrap();
                let served = tower_http::services::ServeDir::new(&dir)
                    .oneshot(request)
                    .await
                    .unwrap();
                assert!(served.status().is_success(), "{path}");
                return served.into_response();
            }
            let bytes = tokio::fs::read(dir.join("gop2-moov-last.mp4"))
                .await
                .unwrap();
            let size = bytes.len();
            match request.uri().path() {
                "/wrong-start.mp4" => (
                    StatusCode::PARTIAL_CONTENT,
                    [(header::CONTENT_RANGE, format!("bytes 0-65535/{size}"))],
                    bytes[..size.min(65_536)].to_vec(),
                )
                    .into_response(),
                "/whole.mp4" => (StatusCode::OK, bytes).into_response(),
                _ => {
                    let mut file = [&[0, 0, 0, 16][..], b"ftypisom", &[0; 4]].concat();
                    file.extend_from_slice(&[0, 0, 0, 1]);
                    file.extend_from_slice(b"moov");
                    file.extend_from_slice(&(1u64 << 30).to_be_bytes());
                    (
                        StatusCode::PARTIAL_CONTENT,
                        [(header::CONTENT_RANGE, format!("bytes 0-31/{}", file.len()))],
                        file,
                    )
                        .into_response()
                }
            }
        }
    });
    serve(app).await
}

#[tokio::test]
async fn a_host_that_lies_to_the_moov_reading_leaves_the_link_playable_without_keyframes() {
    let host = lying_host().await;
    let app = spawn_with(|_| {}).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    for file in ["wrong-start.mp4", "whole.mp4", "huge-moov.mp4"] {
        let url = format!("{host}/{file}");
        v.ok(|id| ClientFrame::QueueAdd {
            id,
            url: url.clone(),
        })
        .await
        .unwrap();
        let item = updated(&mut v).await;
        // Looked up (probed, a poster) and playable, only without a list.
        assert_eq!(item.status, ItemStatus::Ready, "{file}");
        assert_eq!(
            item.source,
            ItemSource::Url {
                format: DirectFormat::Mp4
            },
            "{file}"
        );
        assert!(item.thumbnail.is_some(), "{file}");
        let answer = ann
            .raw(reqwest::Method::GET, "/media/keyframes")
            .query(&[("url", &url)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{file}");
    }
}
