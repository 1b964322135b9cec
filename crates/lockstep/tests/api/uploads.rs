//! Own videos: tus uploads, checking, media jobs with progress over SSE, serving with access
//! control, rooms told when an upload becomes playable.

use crate::helpers::{TestApp, media, public_room, spawn_with};
use bytes::Bytes;
use futures_util::StreamExt;
use lockstep_client::Api;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use lockstep_core::queue::ItemStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Creates an upload of `len` bytes named `name`; returns its id.
pub(crate) async fn create(api: &Api, len: usize, name: &str) -> reqwest::Response {
    api.raw(Method::POST, "/api/uploads")
        .header(TUS.0, TUS.1)
        .header("upload-length", len.to_string())
        .header(
            "upload-metadata",
            format!("filename {},filetype {}", b64(name), b64("video/mp4")),
        )
        .send()
        .await
        .unwrap()
}

async fn patch(
    api: &Api,
    id: &str,
    offset: usize,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    api.raw(Method::PATCH, &format!("/api/uploads/{id}"))
        .header(TUS.0, TUS.1)
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn head_offset(api: &Api, id: &str) -> usize {
    let r = api
        .raw(Method::HEAD, &format!("/api/uploads/{id}"))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Uploads `bytes` in one go; returns the upload id.
pub(crate) async fn upload(api: &Api, bytes: Vec<u8>, name: &str) -> String {
    let r = create(api, bytes.len(), name).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if !bytes.is_empty() {
        let r = patch(api, &id, 0, bytes.clone()).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            r.headers()["upload-offset"].to_str().unwrap(),
            bytes.len().to_string()
        );
    }
    id
}

/// The job of `kind` in an upload's view `v` (the first, if several).
pub(crate) fn job_of<'a>(v: &'a Value, kind: &str) -> &'a Value {
    v["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} job: {v}"))
}

/// Waits until the upload is checked and every job has ended; returns the upload's view.
pub(crate) async fn settled(app: &TestApp, api: &Api, id: &str) -> Value {
    for _ in 0..300 {
        app.state.jobs.run_pending_jobs().await.unwrap();
        let v = api.get(&format!("/api/uploads/{id}")).await.unwrap().body;
        let state = v["state"].as_str().unwrap_or_default();
        let jobs_done = v["jobs"].as_array().is_some_and(|j| {
            j.iter().all(|j| {
                ["done", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or_default())
            })
        });
        // A playable copy's job ends in the transaction that marks the upload playable: never
        // one without the other.
        let playable_done = v["jobs"].as_array().is_some_and(|j| {
            j.iter()
                .any(|j| j["kind"] == "playable" && j["state"] == "done")
        });
        assert!(
            !playable_done || v["playable"] == true,
            "the playable job is done but the upload is not playable: {v}"
        );
        if state == "rejected"
            || (state == "ready" && jobs_done && !v["jobs"].as_array().unwrap().is_empty())
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("upload {id} did not settle");
}

pub(crate) fn clip() -> Vec<u8> {
    std::fs::read(media().dir.join("clip2s.mp4")).unwrap()
}

/// An ffmpeg wrapper for tests: runs the real one, after `prelude` (shell) has had its say.
pub(crate) fn fake_ffmpeg(dir: &std::path::Path, prelude: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("ffmpeg-wrapper.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{prelude}\nexec ffmpeg \"$@\"\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn an_interrupted_upload_resumes_then_is_checked_and_its_jobs_run() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let bytes = clip();
    let r = create(&api, bytes.len(), "../../etc/Holiday\u{7} clip.mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/uploads/{id}"));
    assert_eq!(
        created["file_name"], "Holiday clip.mp4",
        "path and control characters removed"
    );

    // The connection drops after the first half: the server keeps what arrived.
    let half = bytes.len() / 2;
    let first = Bytes::copy_from_slice(&bytes[..half]);
    // The first half goes out; a moment later the network fails.
    let broken = futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(first)]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err(std::io::Error::other("network gone"))
        }),
    );
    let _ = api
        .raw(Method::PATCH, &location)
        .header(TUS.0, TUS.1)
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    let mut offset = 0;
    for _ in 0..50 {
        offset = head_offset(&api, &id).await;
        if offset == half {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(offset, half, "the first half was kept");
    // Resuming from the wrong offset is refused; from the right one it completes.
    assert_eq!(
        patch(&api, &id, 0, bytes[half..].to_vec()).await.status(),
        StatusCode::CONFLICT
    );
    let r = patch(&api, &id, half, bytes[half..].to_vec()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let v = settled(&app, &api, &id).await;
    assert_eq!(v["state"], "ready", "{v}");
    let m = &v["media"];
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        (m["video_codec"].as_str(), m["audio_codec"].as_str()),
        (Some("h264"), Some("aac"))
    );
    assert!((m["duration"].as_f64().unwrap() - 2.0).abs() < 0.1);
    let mut kinds: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["playable", "poster", "storyboard"]);
    assert!(
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] == "done" && j["progress"] == 1.0),
        "{v}"
    );
    assert_eq!(v["playable"], true);

    // What was made is served to the owner: the video with Range requests, images, the track.
    let video = api
        .raw(Method::GET, &format!("/media/uploads/{id}/video"))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(video.headers()["content-type"], "video/mp4");
    assert!(
        video.headers()["content-range"]
            .to_str()
            .unwrap()
            .starts_with("bytes 0-99/")
    );
    assert!(
        video.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(video.bytes().await.unwrap().len(), 100);
    let poster = api
        .raw(Method::GET, v["poster"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            poster.status(),
            poster.headers()["content-type"].to_str().unwrap()
        ),
        (StatusCode::OK, "image/jpeg")
    );
    let vtt = api
        .raw(Method::GET, v["storyboard"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vtt.starts_with("WEBVTT"));
    let sheet = vtt
        .lines()
        .find(|l| l.contains("#xywh="))
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_owned();
    let r = api.raw(Method::GET, &sheet).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{sheet}");
    assert!(
        r.bytes().await.unwrap().starts_with(&[0xFF, 0xD8]),
        "a JPEG sprite sheet"
    );

    // A thumbnail at a chosen time; a time past the end is refused.
    let r = api
        .post(
            &format!("/api/uploads/{id}/thumbnails"),
            &json!({ "at": 1.5 }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = api
        .post(
            &format!("/api/uploads/{id}/thumbnails"),
            &json!({ "at": 5.0 }),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (422, Some("thumbnail_past_end"))
    );
    let v = settled(&app, &api, &id).await;
    let thumb = job_of(&v, "thumbnail");
    assert_eq!(thumb["state"], "done");
    let r = api
        .raw(Method::GET, thumb["result"]["thumbnail"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn files_that_are_not_whole_videos_are_rejected_and_removed() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let png = {
        let path = media().dir.join("still.png");
        if !path.exists() {
            let ok = std::process::Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=320x240",
                    "-frames:v",
                    "1",
                ])
                .arg(&path)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        std::fs::read(path).unwrap()
    };
    let full = clip();
    let truncated = full[..full.len() * 2 / 3].to_vec();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("notes.mp4", b"this is just text\n".to_vec(), "not a video"),
        ("still.png", png, "still image"),
        ("empty.mp4", Vec::new(), "empty"),
        ("cut.mp4", truncated, "damaged or incomplete"),
    ];
    for (name, bytes, why) in cases {
        let id = upload(&api, bytes, name).await;
        let v = settled(&app, &api, &id).await;
        assert_eq!(v["state"], "rejected", "{name}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(why),
            "{name}: {}",
            v["error"]
        );
        assert!(
            !app.dir.path().join("uploads").join(&id).exists(),
            "{name}: files removed"
        );
        // Nothing of it can be fetched.
        let r = api
            .raw(Method::GET, &format!("/media/uploads/{id}/video"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn limits_and_protocol_errors() {
    let app = spawn_with(|c| {
        c.upload_max_bytes = 1000;
        c.upload_quota_bytes = 1500;
    })
    .await;
    let api = app.api();
    // Over the size limit: refused before a byte is sent.
    let r = create(&api, 1001, "big.mp4").await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "upload_too_large"
    );
    // Declaring 1000 bytes and sending 50,000: stopped while streaming, deleted.
    let r = create(&api, 1000, "liar.mp4").await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = patch(&api, &id, 0, vec![0u8; 50_000]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!app.dir.path().join("uploads").join(&id).exists());
    assert_eq!(
        api.raw(Method::HEAD, &format!("/api/uploads/{id}"))
            .header(TUS.0, TUS.1)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The quota counts unfinished uploads at their full size.
    assert_eq!(
        create(&api, 1000, "a.mp4").await.status(),
        StatusCode::CREATED
    );
    let r = create(&api, 600, "b.mp4").await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "quota_exceeded"
    );

    // Protocol: OPTIONS advertises, the version header is required, bodies are octet streams.
    let r = api
        .raw(Method::OPTIONS, "/api/uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert_eq!(r.headers()["tus-max-size"], "1000");
    let r = api
        .raw(Method::POST, "/api/uploads")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = create(&api, 100, "c.mp4").await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api
        .raw(Method::PATCH, &format!("/api/uploads/{id}"))
        .header(TUS.0, TUS.1)
        .header("upload-offset", "0")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Someone else's upload does not exist for me; a cross-site PATCH is refused.
    let other = app.api();
    assert_eq!(
        patch(&other, &id, 0, vec![1u8; 10]).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = reqwest::Client::new()
        .patch(format!("{}/api/uploads/{id}", app.base))
        .header("origin", "https://evil.example")
        .header("cookie", api.cookie_header().unwrap())
        .header(TUS.0, TUS.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Terminating deletes.
    let r = api
        .raw(Method::DELETE, &format!("/api/uploads/{id}"))
        .header(TUS.0, TUS.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/api/uploads/{id}")).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_upload_never_resumed_is_cleaned_up_after_the_expiry() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let r = create(&api, 10_000, "abandoned.mp4").await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        patch(&api, &id, 0, vec![7u8; 4000]).await.status(),
        StatusCode::NO_CONTENT
    );
    let dir = app.dir.path().join("uploads").join(&id);
    assert!(dir.exists());
    // Not yet: it was touched just now.
    let now = app.state.clock.now();
    assert_eq!(
        app.state
            .jobs
            .expire_stale_uploads(now - Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    // As if the expiry had passed.
    assert_eq!(
        app.state
            .jobs
            .expire_stale_uploads(now + Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    assert!(!dir.exists());
    assert_eq!(
        api.get(&format!("/api/uploads/{id}")).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
}

/// A transcoded upload has a keyframe every second, whatever its source had: a browser seeks by
/// decoding from the keyframe before the point, and a viewer's landing seeks paused within the
/// buffer, timed to tens of ms (x264's own spacing, 250 frames, made such a seek take 171-462 ms
/// in Chromium: bench/RESULTS.md).
#[tokio::test]
async fn a_transcoded_upload_has_a_keyframe_every_second() {
    // An AVI (it needs a transcode) whose only keyframe is its first frame.
    let avi = crate::bombs::made(
        "one-keyframe.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=5:size=320x240:rate=25",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-g",
            "250",
        ],
    );
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, avi, "one-keyframe.avi").await;
    let v = settled(&app, &api, &id).await;
    assert_eq!(v["playable"], true, "{v}");
    let playable = app
        .dir
        .path()
        .join("uploads")
        .join(&id)
        .join("playable.mp4");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(&playable)
        .output()
        .expect("ffprobe is installed (./scripts/test installs it)");
    assert!(out.status.success(), "ffprobe read {}", playable.display());
    let keyframes: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split(['\n', ','])
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    assert_eq!(keyframes.len(), 5, "keyframes at {keyframes:?}");
    for pair in keyframes.windows(2) {
        assert!(
            pair[1] - pair[0] <= 1.0 + 0.04 + 1e-6,
            "keyframes at {keyframes:?}"
        );
    }
    // The pages are told the same times, to plan their seeks by.
    assert_eq!(served_keyframes(&api, &id).await, keyframes);
}

/// How an upload's playable copy was made ("remuxed", "transcoded"), or None when there is no
/// such job (served as uploaded).
fn playable_how(upload: &Value) -> Option<String> {
    upload["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["kind"] == "playable")
        .and_then(|j| j["result"]["how"].as_str())
        .map(str::to_owned)
}

/// The keyframe times an upload's pages are served (`keyframes.json`).
async fn served_keyframes(api: &Api, id: &str) -> Vec<f64> {
    let r = api
        .raw(Method::GET, &format!("/media/uploads/{id}/keyframes.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    v["keyframes"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_upload_served_with_its_own_keyframes_lists_them_for_the_pages() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    // An MP4 remuxed as it is (H.264), and a WebM served as uploaded: keyframes every 2 s.
    let mp4 = crate::bombs::made(
        "keyframes-every-2s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=7:size=160x120:rate=25",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            // From testsrc's RGB, x264 would pick 4:4:4, which is transcoded.
            "-pix_fmt",
            "yuv420p",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
        ],
    );
    let webm = crate::bombs::made(
        "keyframes-every-2s.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=7:size=160x120:rate=25",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-g",
            "50",
            "-keyint_min",
            "50",
        ],
    );
    for (bytes, name, how) in [
        (mp4, "sparse.mp4", Some("remuxed")),
        (webm, "sparse.webm", None),
    ] {
        let id = upload(&api, bytes, name).await;
        let v = settled(&app, &api, &id).await;
        assert_eq!(v["playable"], true, "{v}");
        assert_eq!(playable_how(&v).as_deref(), how, "{v}");
        assert_eq!(
            served_keyframes(&api, &id).await,
            [0.0, 2.0, 4.0, 6.0],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_short_upload_whose_keyframes_are_far_apart_is_transcoded() {
    // H.264 in MP4 (remuxed otherwise) and VP8 in WebM (served as uploaded otherwise), each with
    // one keyframe in 7 s, as a browser's own recording may have. Transcoded by default (up to
    // 600 s); kept as they are where only videos up to 6 s are.
    let sparse = |name: &str, codec: &[&str]| {
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=7:size=160x120:rate=25",
        ];
        args.extend(codec);
        args.extend(["-g", "250", "-keyint_min", "250"]);
        crate::bombs::made(name, &args)
    };
    let mp4 = sparse(
        "one-keyframe-in-7s.mp4",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-sc_threshold",
            "0",
        ],
    );
    let webm = sparse(
        "one-keyframe-in-7s.webm",
        &["-c:v", "libvpx", "-deadline", "realtime"],
    );
    for keep in [false, true] {
        let app = spawn_with(move |c| {
            if keep {
                c.upload_transcode_sparse_max_secs = 6;
            }
        })
        .await;
        let api = app.api();
        for (bytes, name, kept_as) in [
            (mp4.clone(), "sparse.mp4", Some("remuxed")),
            (webm.clone(), "sparse.webm", None),
        ] {
            let id = upload(&api, bytes, name).await;
            let v = settled(&app, &api, &id).await;
            assert_eq!(v["playable"], true, "{v}");
            assert_eq!(v["media"]["keyframe_spacing"], 7.0, "{v}");
            // The uploads page says "keyframes 7 s apart" past the server's own threshold.
            let config = api.get("/api/client-config").await.unwrap().body;
            assert_eq!(config["sparse_keyframes_secs"], 3.0, "{config}");
            let how = playable_how(&v);
            let how = how.as_deref();
            let keyframes = served_keyframes(&api, &id).await;
            let video = api
                .raw(Method::GET, &format!("/media/uploads/{id}/video"))
                .send()
                .await
                .unwrap();
            assert_eq!(video.status(), StatusCode::OK);
            let mime = video.headers()["content-type"].to_str().unwrap().to_owned();
            if keep {
                assert_eq!(how, kept_as, "{name}: {v}");
                assert_eq!(keyframes, [0.0], "{name}");
                let kept_mime = if kept_as.is_some() {
                    "video/mp4"
                } else {
                    "video/webm"
                };
                assert_eq!(mime, kept_mime, "{name}");
            } else {
                assert_eq!(how, Some("transcoded"), "{name}: {v}");
                assert_eq!(keyframes.len(), 7, "{name}: {keyframes:?}");
                assert!(
                    keyframes
                        .windows(2)
                        .all(|w| w[1] - w[0] <= 1.0 + 0.04 + 1e-6),
                    "{name}: {keyframes:?}"
                );
                assert_eq!(mime, "video/mp4", "{name}");
            }
        }
    }
}

/// What ffprobe says of each stream of an upload's playable copy: `codec_name,pix_fmt` for the
/// video, `codec_name,channels` for the audio.
fn playable_streams(app: &TestApp, id: &str) -> Vec<String> {
    let playable = app.dir.path().join("uploads").join(id).join("playable.mp4");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,pix_fmt,channels",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&playable)
        .output()
        .expect("ffprobe is installed (./scripts/test installs it)");
    assert!(out.status.success(), "ffprobe read {}", playable.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches(',').to_owned())
        .collect()
}

/// Matroska with H.264 (what OBS records, what most films come in) is copied into an MP4 in
/// seconds rather than transcoded for about its length: as it is with AAC, with its audio
/// transcoded to AAC when that is AC-3 (or DTS, FLAC...); VP9 with AAC too (yt-dlp's Matroska),
/// transcoded before. H.264 or VP9 that browsers do not all decode (10 bits, here) is transcoded
/// to 8-bit 4:2:0 H.264, in an MP4 too. Transcoded audio is stereo: AAC
/// in 5.1(side), which Matroska gives back as "6 channels", failed every transcode before.
#[tokio::test]
async fn matroska_is_copied_into_an_mp4_and_h264_or_vp9_in_10_bits_is_transcoded() {
    // Three seconds of testsrc and a tone, in the codecs `codecs` names.
    let made = |name: &str, codecs: &[&[&str]]| {
        let inputs = [
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=160x120:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3:sample_rate=48000",
        ];
        crate::bombs::made(name, &[&inputs[..], &codecs.concat()].concat())
    };
    let h264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"];
    // VP9 as yt-dlp puts it in Matroska with AAC.
    let vp9: &[&str] = &[
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-g",
        "25",
        "-keyint_min",
        "25",
    ];
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    // AC-3 and AAC in 5.1(side), as films have it.
    let side: &[&str] = &["-af", "aformat=channel_layouts=5.1(side)"];
    let aac: &[&str] = &["-c:a", "aac"];
    let mpeg4 = made(
        "mpeg4-aac-side.mkv",
        &[&["-c:v", "mpeg4", "-g", "25"], aac, side],
    );
    for (bytes, name, audio, pixels, how, streams) in [
        (
            made("vp9-aac.mkv", &[vp9, &["-pix_fmt", "yuv420p"], aac]),
            "downloaded.mkv",
            "aac",
            "yuv420p",
            "remuxed",
            ["vp9,yuv420p", "aac,1"],
        ),
        (
            made(
                "vp9-10bit-aac.mkv",
                &[vp9, &["-pix_fmt", "yuv420p10le"], aac],
            ),
            "downloaded-hdr.mkv",
            "aac",
            "yuv420p10le",
            "transcoded",
            ["h264,yuv420p", "aac,2"],
        ),
        (
            made("h264-aac.mkv", &[h264, &["-pix_fmt", "yuv420p"], aac]),
            "film.mkv",
            "aac",
            "yuv420p",
            "remuxed",
            ["h264,yuv420p", "aac,1"],
        ),
        (
            made(
                "h264-ac3.mkv",
                &[h264, &["-pix_fmt", "yuv420p"], side, &["-c:a", "ac3"]],
            ),
            "film.mkv",
            "ac3",
            "yuv420p",
            "audio transcoded",
            ["h264,yuv420p", "aac,2"],
        ),
        (
            made("h264-10bit.mp4", &[h264, &["-pix_fmt", "yuv420p10le"], aac]),
            "ten-bits.mp4",
            "aac",
            "yuv420p10le",
            "transcoded",
            ["h264,yuv420p", "aac,2"],
        ),
        (
            mpeg4,
            "old.mkv",
            "aac",
            "yuv420p",
            "transcoded",
            ["h264,yuv420p", "aac,2"],
        ),
    ] {
        let id = upload(&api, bytes, name).await;
        let v = settled(&app, &api, &id).await;
        assert_eq!(v["playable"], true, "{name}: {v}");
        let m = &v["media"];
        assert_eq!(m["audio_codec"], audio, "{v}");
        assert_eq!(m["pixel_format"], pixels, "{v}");
        assert_eq!(
            playable_how(&v).as_deref(),
            Some(how),
            "{name} with {audio}: {v}"
        );
        assert_eq!(playable_streams(&app, &id), streams, "{name} with {audio}");
        let video = api
            .raw(Method::GET, &format!("/media/uploads/{id}/video"))
            .send()
            .await
            .unwrap();
        assert_eq!(video.status(), StatusCode::OK);
        assert_eq!(video.headers()["content-type"], "video/mp4");
        // A copy keeps the original's keyframes (one a second here), and the pages are told them.
        // Matroska starts the video 21 ms in, after the AAC encoder's priming: a copy keeps that.
        if how == "transcoded" {
            continue;
        }
        let keyframes = served_keyframes(&api, &id).await;
        assert_eq!(keyframes.len(), 3, "{name} with {audio}: {keyframes:?}");
        for (n, at) in keyframes.iter().enumerate() {
            assert!(
                (at - n as f64).abs() < 0.05,
                "{name} with {audio}: {keyframes:?}"
            );
        }
    }
}

/// The colour (R, G, B) of a picture or video's first frame where `crop` (a 2x2 or 4x4 `crop`
/// filter) says, averaged.
fn colour_at(file: &std::path::Path, crop: &str) -> [u8; 3] {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("{crop},scale=1:1"))
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed (./scripts/test installs it)");
    assert!(out.status.success(), "ffmpeg read {}", file.display());
    out.stdout
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("{:?}", out.stdout))
}

/// HDR video (PQ, as phones record it, here in H.264 10 bits) is tone-mapped to SDR in its
/// transcode, poster and storyboard: converted as it is, testsrc2's red bar (255, 0, 0) came out
/// brown (124, 73, 49); tone-mapped, red (168, 0, 10).
#[tokio::test]
async fn an_hdr_upload_is_tone_mapped_to_sdr() {
    let hdr = crate::bombs::made(
        "pq.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=2",
            "-vf",
            "zscale=tin=bt709:t=smpte2084:pin=bt709:p=bt2020:min=bt709:m=bt2020nc:npl=100,format=yuv420p10le",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
    );
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, hdr, "phone.mp4").await;
    let v = settled(&app, &api, &id).await;
    assert_eq!(v["playable"], true, "{v}");
    assert_eq!(v["media"]["color_transfer"], "smpte2084", "{v}");
    assert_eq!(playable_how(&v).as_deref(), Some("transcoded"), "{v}");
    let dir = app.dir.path().join("uploads").join(&id);
    let red = |what: &str, [r, g, b]: [u8; 3]| {
        assert!(
            r > 140 && g < 40 && b < 40,
            "{what}: ({r}, {g}, {b}) is not testsrc2's red"
        );
    };
    // testsrc2's red bar: at the left edge, halfway down.
    for file in ["playable.mp4", "poster.jpg"] {
        red(file, colour_at(&dir.join(file), "crop=2:2:iw/32:ih/2"));
    }
    // The storyboard's first thumbnail (160x90) is its first sheet's top left corner.
    red(
        "the first thumbnail",
        colour_at(&dir.join("storyboard/sheet-000.jpg"), "crop=4:4:8:40"),
    );
    // The copy says it is SDR.
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=color_transfer", "-of", "csv=p=0"])
        .arg(dir.join("playable.mp4"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bt709");
}

/// ffmpeg's `idet` over a whole video: its multi-frame counts of (interlaced, progressive) frames.
fn fields_detected(video: &std::path::Path) -> (u32, u32) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(video)
        .args(["-vf", "idet", "-an", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("Multi frame detection:"))
        .unwrap_or_else(|| panic!("idet said nothing: {log}"));
    let count = |label: &str| -> u32 {
        let after = line.split(label).nth(1).unwrap_or_else(|| panic!("{line}"));
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    (count("TFF:") + count("BFF:"), count("Progressive:"))
}

/// Interlaced H.264 (a TV recording, a camcorder's 1080i) was copied, and browsers showed every
/// moving edge combed: it is transcoded, deinterlaced.
#[tokio::test]
async fn an_interlaced_upload_is_deinterlaced() {
    let interlaced = crate::bombs::made(
        "interlaced.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=50:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            // Two moving pictures 1/50 s apart woven into each frame, top field first.
            "-vf",
            "tinterlace=interleave_top,fieldorder=tff",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-flags",
            "+ildct+ilme",
            "-x264-params",
            "tff=1",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, interlaced, "camcorder.mp4").await;
    let v = settled(&app, &api, &id).await;
    assert_eq!(v["playable"], true, "{v}");
    assert_eq!(v["media"]["field_order"], "tt", "{v}");
    assert_eq!(playable_how(&v).as_deref(), Some("transcoded"), "{v}");
    let dir = app.dir.path().join("uploads").join(&id);
    let (woven, _) = fields_detected(&dir.join("original"));
    assert!(
        woven >= 40,
        "the original is interlaced: {woven} of 50 frames"
    );
    let (woven, progressive) = fields_detected(&dir.join("playable.mp4"));
    assert!(
        progressive >= 40 && woven <= 10,
        "the copy is progressive: {progressive} progressive, {woven} interlaced of 50 frames"
    );
    assert!(dir.join("poster.jpg").exists());
    assert!(dir.join("storyboard/sheet-000.jpg").exists());
}

/// 4 s in Matroska with two SRT tracks: English, titled "English (SDH)", and French, marked
/// default.
fn subtitled_film() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let srt = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let en = srt(
        "en.srt",
        "1\n00:00:00,500 --> 00:00:02,500\nHello <i>there</i>\n\n2\n00:00:02,600 --> 00:00:03,500\nSecond line\n",
    );
    let fr = srt("fr.srt", "1\n00:00:00,500 --> 00:00:03,500\nBonjour\n");
    let film = dir.path().join("film.mkv");
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=4:size=320x180:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=duration=4", "-i"])
        .arg(&en)
        .arg("-i")
        .arg(&fr)
        .args(["-map", "0", "-map", "1", "-map", "2", "-map", "3"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-c:s", "srt", "-shortest"])
        .args([
            "-metadata:s:s:0",
            "language=eng",
            "-metadata:s:s:0",
            "title=English (SDH)",
        ])
        .args([
            "-metadata:s:s:1",
            "language=fre",
            "-disposition:s:1",
            "default",
        ])
        .arg(&film)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::read(&film).unwrap()
}

/// A film's text subtitles (SRT, ASS in Matroska; mov_text in MP4) are extracted to WebVTT,
/// listed and served with the upload's other files, to whoever may see it; pictures of text
/// (PGS, VobSub) are not.
#[tokio::test]
async fn text_subtitles_are_extracted_to_webvtt_and_served_with_the_upload() {
    let film = subtitled_film();
    let app = spawn_with(|_| {}).await;
    let (owner, stranger) = (app.api(), app.api());
    let id = upload(&owner, film, "film.mkv").await;
    let v = settled(&app, &owner, &id).await;
    assert_eq!(v["playable"], true, "{v}");
    let subtitles = &v["media"]["subtitles"];
    assert_eq!(subtitles.as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(subtitles[0]["language"], "eng");
    assert_eq!(subtitles[0]["title"], "English (SDH)");
    assert_eq!(subtitles[1]["default"], true);

    let list = owner
        .get(&format!("/media/uploads/{id}/subtitles.json"))
        .await
        .unwrap();
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body,
        json!([
            {"src": format!("/media/uploads/{id}/subtitles/0.vtt"), "language": "eng", "title": "English (SDH)", "default": false, "forced": false},
            {"src": format!("/media/uploads/{id}/subtitles/1.vtt"), "language": "fre", "title": null, "default": true, "forced": false},
        ])
    );
    let r = owner
        .raw(Method::GET, &format!("/media/uploads/{id}/subtitles/0.vtt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/vtt; charset=utf-8");
    let vtt = r.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    assert!(vtt.contains("Hello <i>there</i>"), "{vtt}");
    assert!(vtt.contains("Second line"), "{vtt}");
    // Not the stranger's to see; no third track; nothing but the names the server makes.
    for path in ["subtitles.json", "subtitles/0.vtt"] {
        let r = stranger
            .raw(Method::GET, &format!("/media/uploads/{id}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "subtitles/2.vtt",
        "subtitles/0.srt",
        "subtitles/-1.vtt",
        "subtitles/../original",
    ] {
        let r = owner
            .raw(Method::GET, &format!("/media/uploads/{id}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // An upload without subtitles lists none.
    let plain = upload(&owner, clip(), "plain.mp4").await;
    settled(&app, &owner, &plain).await;
    let list = owner
        .get(&format!("/media/uploads/{plain}/subtitles.json"))
        .await
        .unwrap();
    assert_eq!((list.status, list.body), (StatusCode::OK, json!([])));
}

/// An MPEG-TS has no index: seeking its input past its last keyframe decoded nothing, ffmpeg
/// said "Output file is empty" and succeeded, and the poster failed every attempt. The frame is
/// then decoded from the start.
#[tokio::test]
async fn a_poster_and_a_thumbnail_past_the_last_keyframe_of_an_mpeg_ts_are_made() {
    // x264 puts a keyframe every 250 frames: this one has a single keyframe, at 0.
    let ts = crate::bombs::made(
        "one-keyframe.ts",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=6:size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-f",
            "mpegts",
        ],
    );
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, ts, "recording.ts").await;
    settled(&app, &api, &id).await;
    let v = thumbnail_made(&app, &api, &id, 3.0).await;
    for kind in ["poster", "thumbnail"] {
        let job = job_of(&v, kind);
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
    let dir = app.dir.path().join("uploads").join(&id);
    assert!(
        std::fs::read(dir.join("poster.jpg"))
            .unwrap()
            .starts_with(&[0xFF, 0xD8])
    );
}

/// Asks for a thumbnail of upload `id` at `at` s; the upload's view once its jobs have settled.
async fn thumbnail_made(app: &TestApp, api: &Api, id: &str, at: f64) -> Value {
    let r = api
        .post(
            &format!("/api/uploads/{id}/thumbnails"),
            &json!({ "at": at }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    settled(app, api, id).await
}

/// How alike two pictures of one size are: ffmpeg's PSNR over all planes, in dB (`inf` for the
/// same picture). testsrc2's frames 40 ms apart are about 25 dB alike, seconds apart 16-17 dB.
fn psnr(a: &std::path::Path, b: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let average = log
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("psnr said nothing: {log}"));
    average.parse().unwrap()
}

/// MPEG-TS has no index: seeked to a thumbnail's time, ffmpeg jumped to the next keyframe, and
/// a thumbnail asked at 13 s of a recording with a keyframe every 10 s showed 21 s. It is the
/// picture at 13 s now.
#[tokio::test]
async fn a_thumbnail_of_an_mpeg_ts_is_the_picture_at_its_time_not_the_next_keyframes() {
    // x264's default: a keyframe every 250 frames, 10 s here.
    ts_thumbnail_is_the_picture_at_its_time("keyframe-every-10s.ts", &[], 30, 13.0, 20.0).await;
}

/// Keyframes further apart than the near seek's 12 s (a screen recording at 15 frames a second
/// with x264's 250 frames has one every 16.7 s): the seek reaches back past the keyframe spacing
/// measured when the upload was checked. With 12 s, a thumbnail at 30 s showed 32 s.
#[tokio::test]
async fn a_thumbnail_of_an_mpeg_ts_with_sparse_keyframes_is_the_picture_at_its_time() {
    let every_16s = ["-g", "400", "-keyint_min", "400", "-sc_threshold", "0"];
    ts_thumbnail_is_the_picture_at_its_time("keyframe-every-16s.ts", &every_16s, 40, 30.0, 32.0)
        .await;
}

/// Uploads an MPEG-TS of `secs` s at 25 frames a second (x264 with `keyframes`' arguments),
/// asks for a thumbnail at `at` s, and compares it with the pictures at `at` and at `not_at` (the
/// keyframe a seek to `at` would land on) decoded from the start, as a thumbnail is made.
async fn ts_thumbnail_is_the_picture_at_its_time(
    name: &str,
    keyframes: &[&str],
    secs: u32,
    at: f64,
    not_at: f64,
) {
    let source = format!("testsrc2=duration={secs}:size=320x180:rate=25");
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        &source,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ];
    args.extend_from_slice(keyframes);
    args.extend_from_slice(&["-pix_fmt", "yuv420p", "-f", "mpegts"]);
    let ts = crate::bombs::made(name, &args);
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, ts.clone(), "recording.ts").await;
    settled(&app, &api, &id).await;
    let v = thumbnail_made(&app, &api, &id, at).await;
    let job = job_of(&v, "thumbnail");
    assert_eq!(job["state"], "done", "{job}");
    let made = app
        .dir
        .path()
        .join("uploads")
        .join(&id)
        .join("thumbs")
        .join(format!("{}.jpg", job["id"].as_str().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("recording.ts");
    std::fs::write(&source, &ts).unwrap();
    let reference = |at: f64| {
        let out = dir.path().join(format!("{at}.jpg"));
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
            .arg(&source)
            .args([
                "-ss",
                &at.to_string(),
                "-frames:v",
                "1",
                "-vf",
                "scale=-2:360",
            ])
            .args(["-q:v", "3"])
            .arg(&out)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg made the picture at {at} s");
        out
    };
    let like_at = psnr(&made, &reference(at));
    assert!(
        like_at >= 30.0,
        "the thumbnail is {like_at} dB like the picture at {at} s"
    );
    // And not the next keyframe's, as it was.
    let like_next = psnr(&made, &reference(not_at));
    assert!(
        like_next < 30.0,
        "the thumbnail is {like_next} dB like the picture at {not_at} s"
    );
}

/// A copy that ffmpeg refuses (here: every `-c copy` or `-c:v copy` run fails, as one of a file
/// whose H.264 lacks what an MP4 needs would) is transcoded on the retry, and the upload plays.
#[tokio::test]
async fn a_copy_that_fails_is_transcoded_on_the_retry() {
    let tools = tempfile::tempdir().unwrap();
    let ffmpeg = fake_ffmpeg(
        tools.path(),
        "case \"$*\" in *'-c copy'*|*'-c:v copy'*) echo 'Could not write header (incorrect codec parameters ?)' >&2; exit 1 ;; esac",
    );
    let app = spawn_with(move |c| {
        c.ffmpeg = ffmpeg;
        c.job_retry_base_ms = 0;
    })
    .await;
    let api = app.api();
    let id = upload(&api, clip(), "stubborn.mp4").await;
    let v = settled(&app, &api, &id).await;
    assert_eq!(v["playable"], true, "{v}");
    assert_eq!(playable_how(&v).as_deref(), Some("transcoded"), "{v}");
    let job = job_of(&v, "playable");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(playable_streams(&app, &id), ["h264,yuv420p", "aac,2"]);
}

/// ffmpeg giving up on the file with an error of its own would give up again: the job fails at
/// once, with ffmpeg's words, where a machine's fault (a full disk) is retried.
#[tokio::test]
async fn a_job_that_ffmpeg_refuses_fails_at_once_and_a_full_disk_is_retried() {
    for (words, attempts) in [
        ("Invalid data found when processing input", 1),
        ("av_interleaved_write_frame(): No space left on device", 3),
    ] {
        let tools = tempfile::tempdir().unwrap();
        // Checking the upload works; the poster's and the storyboard's runs fail.
        let ffmpeg = fake_ffmpeg(
            tools.path(),
            &format!(
                "case \"$*\" in *poster.tmp*|*storyboard.tmp*) echo '{words}' >&2; exit 1 ;; esac"
            ),
        );
        let app = spawn_with(move |c| {
            c.ffmpeg = ffmpeg;
            c.job_max_attempts = 3;
            c.job_retry_base_ms = 0;
        })
        .await;
        let api = app.api();
        let id = upload(&api, clip(), "refused.mp4").await;
        let v = settled(&app, &api, &id).await;
        for kind in ["poster", "storyboard"] {
            let job = job_of(&v, kind);
            assert_eq!(job["state"], "failed", "{job}");
            assert_eq!(job["attempts"], attempts, "{words}: {job}");
            assert!(job["error"].as_str().unwrap().contains(words), "{job}");
        }
        // The video itself plays: its own job, if it has one, was not refused.
        assert_eq!(v["playable"], true, "{v}");
    }
}

#[tokio::test]
async fn a_job_whose_ffmpeg_crashes_is_retried_then_stays_failed_with_the_error() {
    let tools = tempfile::tempdir().unwrap();
    // Checking the upload works; every job run (they report -progress) crashes with SIGSEGV.
    let broken = tools.path().join("broken");
    std::fs::write(&broken, "").unwrap();
    let ffmpeg = fake_ffmpeg(
        tools.path(),
        &format!(
            "[ -e '{}' ] && case \"$*\" in *-progress*|*poster.tmp*) echo 'Segmentation fault' >&2; kill -SEGV $$ ;; esac",
            broken.display()
        ),
    );
    let app = spawn_with(move |c| {
        c.ffmpeg = ffmpeg;
        c.job_max_attempts = 2;
        c.job_retry_base_ms = 0;
    })
    .await;
    let api = app.api();
    let id = upload(&api, clip(), "crash.mp4").await;
    let v = settled(&app, &api, &id).await;
    let jobs = v["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty());
    for job in jobs {
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["attempts"], 2, "retried once: {job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains("signal") || error.contains("Segmentation"),
            "{error}"
        );
    }
    // Mended (here: ffmpeg stops crashing), a failed job can be run again by its owner.
    std::fs::remove_file(&broken).unwrap();
    let poster = jobs.iter().find(|j| j["kind"] == "poster").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .api()
        .post(&format!("/api/jobs/{poster}/retry"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not someone else's");
    let r = api
        .post(&format!("/api/jobs/{poster}/retry"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Queued again from its first attempt (a worker may already have taken it).
    assert!(r.body["attempts"].as_u64() <= Some(1), "{}", r.body);
    let v = settled(&app, &api, &id).await;
    let job = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == poster.as_str())
        .unwrap();
    assert_eq!(job["state"], "done", "{job}");
    assert!(job["error"].is_null());
    assert_eq!(v["poster"], format!("/media/uploads/{id}/poster.jpg"));
    let r = api
        .post(&format!("/api/jobs/{poster}/retry"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT, "a done job is not retried");
}

#[tokio::test]
async fn a_running_job_can_be_cancelled() {
    let tools = tempfile::tempdir().unwrap();
    // The storyboard's ffmpeg writes a sheet into its temporary folder, then hangs.
    let ffmpeg = fake_ffmpeg(
        tools.path(),
        "case \"$*\" in *storyboard*) for a; do last=$a; done; \
         head -c 1000000 /dev/zero > \"$(dirname \"$last\")/sheet-000.jpg\"; sleep 30 ;; esac",
    );
    let app = spawn_with(move |c| c.ffmpeg = ffmpeg).await;
    let api = app.api();
    let id = upload(&api, clip(), "slow.mp4").await;
    // Wait for the storyboard job to run.
    let mut job = Value::Null;
    for _ in 0..200 {
        let v = api.get(&format!("/api/uploads/{id}")).await.unwrap().body;
        if let Some(j) = v["jobs"].as_array().and_then(|j| {
            j.iter()
                .find(|j| j["kind"] == "storyboard" && j["state"] == "running")
        }) {
            job = j.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job_id = job["id"]
        .as_str()
        .expect("the storyboard job runs")
        .to_owned();
    let r = api
        .post(&format!("/api/jobs/{job_id}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // Cancelling twice: it has ended.
    let r = api
        .post(&format!("/api/jobs/{job_id}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT);
    // It stays cancelled (the killed ffmpeg does not turn it into a failure or a retry).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = api.get(&format!("/api/jobs/{job_id}")).await.unwrap();
    assert_eq!(r.body["state"], "cancelled");
    // What it half-wrote is gone (an outside test found 231 MB left behind by a cancel).
    let left = temporaries_after(&app.dir.path().join("uploads").join(&id), 50).await;
    assert!(left.is_empty(), "temporaries left: {left:?}");
}

/// The half-written files (`.tmp`) left in an upload's folder once they are all gone or
/// `tries` looks 100 ms apart have passed.
pub(crate) async fn temporaries_after(dir: &std::path::Path, tries: usize) -> Vec<String> {
    let mut left = Vec::new();
    for _ in 0..tries {
        left = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    left
}

/// Reads Server-Sent Events from a response until `until` says stop.
pub(crate) async fn read_events(
    response: reqwest::Response,
    mut until: impl FnMut(&[(i64, String, Value)]) -> bool,
) -> Vec<(i64, String, Value)> {
    let mut events = Vec::new();
    let mut buf = String::new();
    let mut stream = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !until(&events) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events in time")
            .expect("the stream stays open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut name, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let (Some(id), false) = (id, data.is_empty()) {
                events.push((id, name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn job_progress_streams_over_sse_and_a_reconnection_misses_nothing() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let stream = api
        .raw(Method::GET, "/api/jobs/events")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = upload(&api, clip(), "watched.mp4").await;
    // Everything about the upload and its three jobs, until they are all done.
    let events = read_events(stream, |ev| {
        let done: std::collections::HashSet<&str> = ev
            .iter()
            .filter(|(_, name, v)| name == "job" && v["state"] == "done")
            .filter_map(|(_, _, v)| v["kind"].as_str())
            .collect();
        done.len() == 3
    })
    .await;
    // A fresh stream starts with the snapshot (nothing yet) and its end, numbered.
    assert_eq!(events[0].1, "snapshot", "{:?}", events[0]);
    assert_eq!(events[0].2["last_event_id"].as_i64(), Some(events[0].0));
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert!(
        events.iter().any(|(_, name, v)| name == "upload"
            && v["id"] == id.as_str()
            && v["state"] == "ready")
    );
    assert!(
        events
            .iter()
            .any(|(_, name, v)| name == "job" && v["state"] == "running")
    );
    // Progress went from 0 to 1 for some job along the way.
    assert!(events.iter().any(
        |(_, _, v)| v["progress"].as_f64().is_some_and(|p| p > 0.0 && p < 1.0)
            || v["state"] == "done"
    ));

    // Reconnecting with Last-Event-ID gets exactly what came after.
    let middle = events[events.len() / 2].0;
    let expected: Vec<i64> = events.iter().map(|e| e.0).filter(|&i| i > middle).collect();
    let again = api
        .raw(Method::GET, "/api/jobs/events")
        .header("last-event-id", middle.to_string())
        .send()
        .await
        .unwrap();
    let replay = read_events(again, |ev| ev.len() >= expected.len()).await;
    assert_eq!(replay.iter().map(|e| e.0).collect::<Vec<_>>(), expected);
    // So does a page's new stream saying where it got to (a browser's EventSource gives up for
    // good on an error answer, and cannot set the header), unless the header says later.
    let by_query = api
        .raw(
            Method::GET,
            &format!("/api/jobs/events?last_event_id={middle}"),
        )
        .send()
        .await
        .unwrap();
    let replay = read_events(by_query, |ev| ev.len() >= expected.len()).await;
    assert_eq!(replay.iter().map(|e| e.0).collect::<Vec<_>>(), expected);
    let newest = *expected.last().unwrap();
    let both = api
        .raw(Method::GET, "/api/jobs/events?last_event_id=0")
        .header("last-event-id", expected[expected.len() - 2].to_string())
        .send()
        .await
        .unwrap();
    let replay = read_events(both, |ev| !ev.is_empty()).await;
    assert_eq!(replay.iter().map(|e| e.0).collect::<Vec<_>>(), vec![newest]);
    let bad = api
        .get("/api/jobs/events?last_event_id=yesterday")
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["code"], "invalid_query");

    // One job's stream.
    let job = &events
        .iter()
        .find(|(_, name, v)| name == "job" && v["kind"] == "poster")
        .unwrap()
        .2;
    let one = api
        .raw(
            Method::GET,
            &format!("/api/jobs/{}/events", job["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let first = read_events(one, |ev| !ev.is_empty()).await;
    assert!(first.iter().all(|(_, _, v)| v["id"] == job["id"]));
    // Other people cannot watch it.
    let r = app
        .api()
        .get(&format!("/api/jobs/{}/events", job["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn media_is_served_only_to_the_owner_and_members_of_rooms_that_queue_it() {
    let tools = tempfile::tempdir().unwrap();
    // The playable copy takes a moment, so the upload can be queued before it is ready.
    let ffmpeg = fake_ffmpeg(
        tools.path(),
        "case \"$*\" in *playable.tmp*) sleep 2 ;; esac",
    );
    let app = spawn_with(move |c| c.ffmpeg = ffmpeg).await;
    let (owner, friend, stranger) = (app.api(), app.api(), app.api());
    let id = upload(&owner, clip(), "home.mp4").await;
    // Checked (ready) but not playable yet.
    let mut ready = false;
    for _ in 0..200 {
        if owner.get(&format!("/api/uploads/{id}")).await.unwrap().body["state"] == "ready" {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready);
    let room = public_room(&owner).await;
    let (mut o, _) = owner.join(room).await.unwrap();
    let (mut f, _) = friend.join(room).await.unwrap();
    let upload_id = id.parse().unwrap();
    // Only the owner may queue it.
    assert_eq!(
        f.refused(|cid| ClientFrame::QueueAddUpload { id: cid, upload_id })
            .await
            .unwrap(),
        "upload_not_found"
    );
    o.ok(|cid| ClientFrame::QueueAddUpload { id: cid, upload_id })
        .await
        .unwrap();
    let started = f
        .wait_for(|fr| matches!(fr, ServerFrame::NowPlaying { .. }))
        .await
        .unwrap();
    let ServerFrame::NowPlaying {
        item: Some(item), ..
    } = started
    else {
        panic!()
    };
    assert_eq!(item.status, ItemStatus::Pending, "not playable yet");
    assert_eq!(item.url, format!("/media/uploads/{id}/video"));
    // The room holds until it is.
    f.wait_for(|fr| {
        matches!(
            fr,
            ServerFrame::Playback {
                cause: lockstep_core::room::PlaybackCause::Buffering,
                ..
            }
        )
    })
    .await
    .unwrap();
    // Then the room is told, and plays.
    let updated = f
        .wait_for(|fr| matches!(fr, ServerFrame::ItemUpdated { .. }))
        .await
        .unwrap();
    let ServerFrame::ItemUpdated { item, .. } = updated else {
        unreachable!()
    };
    assert_eq!(item.status, ItemStatus::Ready);
    f.wait_for(|fr| {
        matches!(
            fr,
            ServerFrame::Playback {
                cause: lockstep_core::room::PlaybackCause::Ready,
                ..
            }
        )
    })
    .await
    .unwrap();

    // The friend (a member of the room) may fetch it; a stranger may not, nor a guessed id.
    let video = format!("/media/uploads/{id}/video");
    let fetched = friend
        .raw(Method::GET, &video)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    let status = fetched.status();
    // The body says why, if refused (`not_found`, `not_playable_yet`).
    let body = fetched.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{body}");
    // And its keyframe times.
    assert_eq!(served_keyframes(&friend, &id).await.first(), Some(&0.0));
    stranger.get("/api/me").await.unwrap();
    assert_eq!(
        stranger
            .raw(Method::GET, &video)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let guessed = format!("/media/uploads/{}/video", uuid::Uuid::now_v7());
    assert_eq!(
        owner
            .raw(Method::GET, &guessed)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    for bad in [
        "original",
        "..%2f..%2fcookie.key",
        "storyboard/..%2f..%2foriginal",
        "thumbs/x.jpg",
        "storyboard/sheet-1.jpg",
    ] {
        let r = owner
            .raw(Method::GET, &format!("/media/uploads/{id}/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }

    // The lobby shows a public room's video with its poster: that one file is anyone's.
    settled(&app, &owner, &id).await;
    let poster = format!("/media/uploads/{id}/poster.jpg");
    let r = stranger.raw(Method::GET, &poster).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for other in ["storyboard.vtt", "video", "keyframes.json"] {
        let r = stranger
            .raw(Method::GET, &format!("/media/uploads/{id}/{other}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{other}");
    }
    // Once the stranger joins, its files are theirs from the welcome on: a first visit to a room
    // playing an upload is committed before the welcome, since the page asks for the video as
    // soon as it hears what plays.
    let (_s, _) = stranger.join(room).await.unwrap();
    for other in ["video", "keyframes.json"] {
        let r = stranger
            .raw(Method::GET, &format!("/media/uploads/{id}/{other}"))
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{other}: {}", r.status());
    }
    // Queued only in a private room, not even the poster.
    let other = upload(&owner, clip(), "private.mp4").await;
    assert_eq!(settled(&app, &owner, &other).await["state"], "ready");
    let private = owner
        .create_room(&json!({ "name": "Just us", "visibility": "private" }))
        .await
        .unwrap();
    let (mut p, _) = owner.join(private).await.unwrap();
    let upload_id = other.parse().unwrap();
    p.ok(|cid| ClientFrame::QueueAddUpload { id: cid, upload_id })
        .await
        .unwrap();
    let r = owner
        .raw(Method::GET, &format!("/media/uploads/{other}/poster.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the owner sees it");
    let r = stranger
        .raw(Method::GET, &format!("/media/uploads/{other}/poster.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_made_before_keyframes_were_listed_get_them_on_start_up() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = crate::helpers::spawn_in(dir.clone(), |_| {}).await;
    let api = app.api();
    let id = upload(&api, clip(), "older.mp4").await;
    settled(&app, &api, &id).await;
    let listed = served_keyframes(&api, &id).await;
    // As an upload made by an earlier version has it: no keyframes file.
    let file = dir.path().join("uploads").join(&id).join("keyframes.json");
    std::fs::remove_file(&file).unwrap();
    let cookie = api.cookie_header().unwrap();
    app.stop().await;

    let app = crate::helpers::spawn_in(dir.clone(), |_| {}).await;
    let api = app.api();
    let path = format!("/media/uploads/{id}/keyframes.json");
    let mut served = None;
    for _ in 0..200 {
        let r = api
            .raw(Method::GET, &path)
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            served = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = served.expect("the keyframes were listed after the restart");
    let times: Vec<f64> = served["keyframes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    assert_eq!(times, listed);
    // Nothing half-written is left.
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}

/// An upload checked before subtitles were extracted (no `subtitles` folder, none in its media
/// info) gets them on the next start; one without any is marked looked at, with an empty folder.
#[tokio::test]
async fn uploads_checked_before_subtitles_were_extracted_get_them_on_start_up() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = crate::helpers::spawn_in(dir.clone(), |_| {}).await;
    let api = app.api();
    let id = upload(&api, subtitled_film(), "older.mkv").await;
    settled(&app, &api, &id).await;
    let plain = upload(&api, clip(), "plain.mp4").await;
    settled(&app, &api, &plain).await;
    let folder = |upload: &str| dir.path().join("uploads").join(upload).join("subtitles");
    assert_eq!(
        std::fs::read_dir(folder(&plain)).unwrap().count(),
        0,
        "looked at, none"
    );
    // As an upload checked by an earlier version has it.
    std::fs::remove_dir_all(folder(&id)).unwrap();
    let row = app
        .state
        .store
        .upload(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut media = row.media.unwrap();
    media.subtitles.clear();
    assert!(
        app.state
            .store
            .set_upload_media(row.id, &media)
            .await
            .unwrap()
    );
    let cookie = api.cookie_header().unwrap();
    app.stop().await;

    let app = crate::helpers::spawn_in(dir.clone(), |_| {}).await;
    let api = app.api();
    let path = format!("/media/uploads/{id}/subtitles.json");
    let mut listed = Value::Null;
    for _ in 0..200 {
        let r = api
            .raw(Method::GET, &path)
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        listed = r.json::<Value>().await.unwrap();
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["language"], "eng");
    let r = api
        .raw(Method::GET, &format!("/media/uploads/{id}/subtitles/1.vtt"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Bonjour"));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("uploads").join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}

#[tokio::test]
async fn a_job_interrupted_by_a_stop_runs_again_on_start_up() {
    let tools = tempfile::tempdir().unwrap();
    // The storyboard hangs on the first server, so the stop finds it running.
    let ffmpeg = fake_ffmpeg(
        tools.path(),
        "case \"$*\" in *storyboard.tmp*) exec sleep 60 ;; esac",
    );
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = crate::helpers::spawn_in(dir.clone(), move |c| c.ffmpeg = ffmpeg).await;
    let api = app.api();
    let id = upload(&api, clip(), "long.mp4").await;
    let mut running = false;
    for _ in 0..400 {
        let v = api.get(&format!("/api/uploads/{id}")).await.unwrap().body;
        let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
        if jobs
            .iter()
            .any(|j| j["kind"] == "storyboard" && j["state"] == "running")
        {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(running, "the storyboard job started");
    let cookie = api.cookie_header().unwrap();
    app.stop().await;

    // A new server on the same data: the job is queued again and runs to the end.
    let app = crate::helpers::spawn_in(dir, |_| {}).await;
    let api = app.api();
    let r = api
        .raw(Method::GET, &format!("/api/uploads/{id}"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut done = None;
    for _ in 0..300 {
        let v: Value = api
            .raw(Method::GET, &format!("/api/uploads/{id}"))
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let job = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == "storyboard")
            .cloned()
            .unwrap();
        if job["state"] == "done" {
            done = Some(job);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = done.expect("the interrupted job finished after the restart");
    assert_eq!(
        job["attempts"], 2,
        "the interrupted run counts as an attempt: {job}"
    );
    assert_eq!(job["progress"], 1.0);
}
