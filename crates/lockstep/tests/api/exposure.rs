//! What a stranger can read or make us answer: `/metrics`, other host names (DNS rebinding),
//! response headers. Each was found open by an outside test.

use crate::helpers::spawn_with;
use lockstep_client::Api;
use std::time::Duration;

/// `/metrics` answered anyone on the public listener. Now: 404 there without the token, and a
/// separate address serves it to a scraper.
#[tokio::test]
async fn metrics_need_the_token_or_the_separate_address() {
    let metrics_addr: std::net::SocketAddr = ([127, 0, 0, 1], lockstep_testkit::free_port()).into();
    let app = spawn_with(|c| {
        c.metrics_token = Some("let-me-see".into());
        c.metrics_listen = Some(metrics_addr);
    })
    .await;
    let stranger = app.api();
    let r = stranger.get("/metrics").await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (404, Some("not_found"))
    );
    let wrong = stranger.with_header("authorization", "Bearer let-me-in");
    assert_eq!(wrong.get("/metrics").await.unwrap().status.as_u16(), 404);
    let scraper = stranger.with_header("authorization", "Bearer let-me-see");
    assert!(
        scraper
            .get_text("/metrics")
            .await
            .contains("lockstep_tcp_connections")
    );
    let separate = Api::new(&format!("http://{metrics_addr}")).unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        text = separate.get_text("/metrics").await;
        if text.contains("lockstep_") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("lockstep_rooms_loaded"), "{text}");
    // Without a token configured, the main address has no /metrics at all.
    let plain = spawn_with(|_| {}).await;
    assert_eq!(
        plain.api().get("/metrics").await.unwrap().status.as_u16(),
        404
    );
}

/// Without `--public-url` the Origin check compared with the Host header, so a page that
/// rebinds its own name to this server passed. Unknown host names are refused before anything.
#[tokio::test]
async fn requests_for_unknown_host_names_are_refused() {
    let app = spawn_with(|c| c.allowed_hosts = vec!["watch.example.org".into()]).await;
    let http = reqwest::Client::new();
    let send = |host: &str, origin: &str| {
        http.post(format!("{}/api/rooms", app.base))
            .header("host", host)
            .header("origin", origin)
            .json(&serde_json::json!({ "name": "rebound" }))
            .send()
    };
    let r = send("evil.example:8080", "http://evil.example:8080")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_host");
    // A page could also just read: refused too.
    let r = http
        .get(format!("{}/api/me", app.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    // Our names, IP addresses and localhost are served.
    for (host, origin) in [
        ("watch.example.org", "http://watch.example.org"),
        ("localhost:1", "http://localhost:1"),
    ] {
        let r = send(host, origin).await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{host}");
    }
    assert_eq!(app.api().get("/api/me").await.unwrap().status.as_u16(), 200);
}

/// API answers lacked `X-Content-Type-Options: nosniff`.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    for path in [
        "/api/me",
        "/api/rooms",
        "/api/nothing-here",
        "/healthz",
        "/",
        "/static/style.css",
    ] {
        let r = api.raw(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(
            r.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}
