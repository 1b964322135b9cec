//! Bad input: every kind gets a clear error (an error frame or JSON with a status), the connection
//! survives what it should survive, nothing panics.

use crate::helpers::{public_room, spawn_app, spawn_with};
use lockstep_client::Viewer;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use serde_json::json;

fn error_code(f: &ServerFrame) -> Option<&str> {
    match f {
        ServerFrame::Error { code, .. } => Some(code),
        _ => None,
    }
}

async fn still_alive(v: &mut Viewer) {
    v.send(&ClientFrame::Ping {
        id: Some(999),
        client_time: 1.5,
    })
    .await
    .unwrap();
    let pong = v
        .wait_for(|f| matches!(f, ServerFrame::Pong { .. }))
        .await
        .unwrap();
    assert!(matches!(pong, ServerFrame::Pong { client_time, .. } if client_time == 1.5));
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_error_frames_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let mut v = ann.viewer(room).await.unwrap();
    // Before hello: commands are refused, pings answered.
    v.send_raw(r#"{"t":"play","id":1}"#).await.unwrap();
    let e = v.recv().await.unwrap();
    assert_eq!(error_code(&e), Some("not_joined"));
    still_alive(&mut v).await;
    v.hello().await.unwrap();

    for (raw, code, id) in [
        ("not json at all", "bad_frame", None),
        (r#"{"t":"dance","id":4}"#, "unknown_type", Some(4)),
        (
            r#"{"t":"seek","id":5,"position":"later"}"#,
            "bad_frame",
            Some(5),
        ),
        (r#"{"t":"seek","id":6}"#, "bad_frame", Some(6)),
        (r#"{"id":7}"#, "bad_frame", Some(7)),
        (r#"[1,2,3]"#, "bad_frame", None),
        (r#"{"t":"hello","v":1}"#, "already_joined", None),
        (r#"{"t":"chat","id":8,"text":"   "}"#, "chat_empty", Some(8)),
        (r#"{"t":"rate","id":9,"rate":5}"#, "invalid_rate", Some(9)),
        (r#"{"t":"play","id":10}"#, "nothing_playing", Some(10)),
        (
            r#"{"t":"queue_remove","id":11,"item_id":"0192d0d8-7e4f-7000-8000-000000000000"}"#,
            "item_not_found",
            Some(11),
        ),
        (
            r#"{"t":"kick","id":12,"user_id":"not-a-uuid"}"#,
            "bad_frame",
            Some(12),
        ),
    ] {
        v.send_raw(raw).await.unwrap();
        let f = v
            .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
            .await
            .unwrap();
        let ServerFrame::Error {
            code: got,
            id: got_id,
            message,
            ..
        } = &f
        else {
            unreachable!()
        };
        assert_eq!((got.as_str(), *got_id), (code, id), "{raw} -> {message}");
        assert!(!message.is_empty());
    }
    // A 1001-character chat line.
    let long = "x".repeat(1001);
    assert_eq!(
        v.refused(|id| ClientFrame::Chat { id, text: long })
            .await
            .unwrap(),
        "chat_too_long"
    );
    // Binary frames are not the protocol.
    v.send_binary(vec![0, 1, 2]).await.unwrap();
    let e = v
        .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
        .await
        .unwrap();
    assert_eq!(error_code(&e), Some("bad_frame"));
    still_alive(&mut v).await;
}

/// Found by the outside test: invalid UTF-8 in a text frame dropped the TCP connection; RFC 6455
/// asks for close code 1007, and the client deserves to know why.
#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007_before_and_after_hello() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let mut early = ann.viewer(room).await.unwrap();
    early
        .send_text_bytes(vec![b'{', 0xff, 0xfe, b'}'])
        .await
        .unwrap();
    assert_eq!(early.closed().await.unwrap().code, 1007);
    let (mut v, _) = ann.join(room).await.unwrap();
    v.send_text_bytes(b"{\"t\":\"chat\",\"id\":1,\"text\":\"\xc3\x28\"}".to_vec())
        .await
        .unwrap();
    let closed = v.closed().await.unwrap();
    assert_eq!(closed.code, 1007);
    assert!(
        v.drain_backlog()
            .iter()
            .any(|f| error_code(f) == Some("bad_frame"))
    );
    // The room is fine.
    let (mut again, _) = ann.join(room).await.unwrap();
    still_alive(&mut again).await;
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    let big = format!(
        r#"{{"t":"chat","id":1,"text":"{}"}}"#,
        "y".repeat(70 * 1024)
    );
    v.send_raw(&big).await.unwrap();
    assert_eq!(v.closed().await.unwrap().code, 1009);
    // The server is fine and the room still works.
    let (mut again, _) = ann.join(room).await.unwrap();
    again
        .ok(|id| ClientFrame::Chat {
            id,
            text: "ok".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn cross_site_websocket_upgrades_and_requests_are_refused() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    ann.get("/api/me").await.unwrap();
    let err = Viewer::connect(
        &ann.ws_url(room),
        ann.cookie_header().as_deref(),
        Some("https://evil.example"),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let err = Viewer::connect(
        &ann.ws_url(room),
        ann.cookie_header().as_deref(),
        Some("null"),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    // The site's own origin is fine (that is what `ann.viewer` sends).
    ann.viewer(room).await.unwrap();

    // A cross-site POST (a form or fetch from another site) is refused too.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/rooms", app.base))
        .header("origin", "https://evil.example")
        .header("cookie", ann.cookie_header().unwrap())
        .json(&json!({ "name": "pwned" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross_origin");
}

#[tokio::test]
async fn unknown_rooms_are_404_json() {
    let app = spawn_app().await;
    let api = app.api();
    for path in [
        "/api/rooms/0192d0d8-7e4f-7000-8000-000000000000",
        "/api/rooms/not-a-uuid",
        "/api/rooms/0192d0d8-7e4f-7000-8000-000000000000/chat",
        "/api/invites/AAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = api.get(path).await.unwrap();
        assert_eq!(r.status.as_u16(), 404, "{path}");
        assert!(
            r.error_code().is_some_and(|c| c.ends_with("not_found")),
            "{path}: {:?}",
            r.body
        );
        assert!(r.body["error"]["message"].is_string());
    }
    let err = api
        .viewer("0192d0d8-7e4f-7000-8000-000000000000".parse().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn media_urls_that_are_not_http_are_refused() {
    let app = spawn_with(|c| c.allow_private_media = false).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.com/a.mp4",
        "not a url",
        "https://www.youtube.com/channel/UC123",
        "http://127.0.0.1:8080/a.mp4",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let code = v
            .refused(|id| ClientFrame::QueueAdd {
                id,
                url: url.into(),
            })
            .await
            .unwrap();
        assert_eq!(code, "invalid_media_url", "{url}");
    }
    assert!(v.backlog().iter().all(|f| !matches!(
        f,
        ServerFrame::QueueAdded { .. } | ServerFrame::NowPlaying { .. }
    )));
}

#[tokio::test]
async fn rest_errors_are_json_with_the_right_status() {
    let app = spawn_app().await;
    let api = app.api();
    let http = reqwest::Client::new();
    let post = |body: &'static str, ctype: Option<&'static str>| {
        let mut req = http.post(format!("{}/api/rooms", app.base)).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        req
    };
    let cases = [
        (post(r#"{"name":"x"}"#, None), 415, "unsupported_media_type"),
        (
            post(r#"{"name":"x""#, Some("application/json")),
            400,
            "bad_request",
        ),
        (
            post(r#"{"name":""}"#, Some("application/json")),
            422,
            "invalid_input",
        ),
        (
            post(
                r#"{"name":"x","visibility":"secret"}"#,
                Some("application/json"),
            ),
            422,
            "invalid_input",
        ),
        (
            post(r#"{"name":"x","password":""}"#, Some("application/json")),
            422,
            "invalid_password",
        ),
        (
            http.get(format!("{}/api/nothing/here", app.base)),
            404,
            "not_found",
        ),
        (
            http.put(format!("{}/api/rooms", app.base))
                .header("content-type", "application/json")
                .body("{}"),
            405,
            "method_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{code}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A body over the API's limit.
    let huge = json!({ "name": "x".repeat(100 * 1024) });
    let resp = http
        .post(format!("{}/api/rooms", app.base))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // Nothing was stored by any of it.
    assert_eq!(api.get("/api/rooms").await.unwrap().body["total"], 0);
}

#[tokio::test]
async fn chat_over_the_rate_limit_gets_an_error_frame_not_a_disconnect() {
    let app = spawn_app().await; // default: 5 lines per 5 s
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    for n in 0..5 {
        v.ok(|id| ClientFrame::Chat {
            id,
            text: format!("{n}"),
        })
        .await
        .unwrap();
    }
    let refusal = v
        .command(|id| ClientFrame::Chat {
            id,
            text: "one more".into(),
        })
        .await
        .unwrap()
        .unwrap_err();
    let ServerFrame::Error {
        code,
        retry_after_ms,
        ..
    } = refusal
    else {
        unreachable!()
    };
    assert_eq!(code, "rate_limited");
    assert!(retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 5000));
    still_alive(&mut v).await;
}

/// Waits for a `rate_limited` error frame and checks that it says when to retry.
async fn expect_rate_limited(v: &mut Viewer) {
    let limited = v
        .wait_for(|f| matches!(f, ServerFrame::Error { code, .. } if code == "rate_limited"))
        .await
        .unwrap();
    assert!(matches!(
        limited,
        ServerFrame::Error {
            retry_after_ms: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn flooding_frames_is_rate_limited_per_connection() {
    let app = spawn_with(|c| {
        c.ws_frames_per_sec = 2;
        c.ws_frames_burst = 5;
    })
    .await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    for id in 0..20 {
        v.send(&ClientFrame::Seek { id, position: 1.0 })
            .await
            .unwrap();
    }
    expect_rate_limited(&mut v).await;
}

#[tokio::test]
async fn pings_before_hello_are_rate_limited_too_and_hello_still_joins() {
    let app = spawn_with(|c| {
        c.ws_frames_per_sec = 2;
        c.ws_frames_burst = 5;
    })
    .await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let mut v = ann.viewer(room).await.unwrap();
    for _ in 0..20 {
        v.send_raw(r#"{"t":"ping","client_time":1.0}"#)
            .await
            .unwrap();
    }
    expect_rate_limited(&mut v).await;
    v.send_raw(r#"{"t":"hello","v":1}"#).await.unwrap();
    v.wait_for(|f| matches!(f, ServerFrame::Welcome(_)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unsupported_protocol_version_is_refused() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let mut v = ann.viewer(room).await.unwrap();
    v.send_raw(r#"{"t":"hello","v":2}"#).await.unwrap();
    let e = v.recv().await.unwrap();
    assert_eq!(error_code(&e), Some("unsupported_version"));
    assert_eq!(v.closed().await.unwrap().code, 1008);
}
