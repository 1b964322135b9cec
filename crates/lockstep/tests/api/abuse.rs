//! Strangers on the internet: password guessing, throwaway identities, floods. Each test here
//! repeats an attack an outside tester made against a release (issue 9) and checks that it now
//! fails politely (429/503 with a JSON error) while everyone else is still served.

use crate::helpers::{memory_of, spawn_app, spawn_with, start_binary_with};
use lockstep_client::Api;
use lockstep_core::ids::RoomId;
use serde_json::json;

/// A browser that says it comes from `addr` (through a proxy the server trusts).
fn from(base: &str, addr: &str) -> Api {
    Api::new(base)
        .expect("a client")
        .with_header("x-forwarded-for", addr)
}

/// 200 wrong passwords at once took the server from 129 MiB to 6.2 GiB (argon2's 19 MiB per
/// check, on up to 512 blocking threads, none of it given back). Now at most one check per core
/// runs, a short queue waits, the rest are told "busy", and memory stays flat.
#[tokio::test]
async fn two_hundred_parallel_wrong_passwords_keep_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    // Rate limits off: this is about what reaches argon2.
    let (server, base) = start_binary_with(
        dir.path(),
        &[
            "--limit-password-guesses",
            "off",
            "--limit-password-guesses-per-room",
            "off",
            "--limit-new-users",
            "off",
        ],
    )
    .await;
    let pid = server.id().expect("the server runs");
    let owner = Api::new(&base).unwrap();
    let r = owner
        .post(
            "/api/rooms",
            &json!({ "name": "Locked", "visibility": "public", "password": "right" }),
        )
        .await
        .unwrap();
    let room: RoomId = r.body["id"].as_str().unwrap().parse().unwrap();
    let (before, _) = memory_of(pid);

    let guesses = (0..200).map(|n| {
        let base = base.clone();
        tokio::spawn(async move {
            let guesser = Api::new(&base).unwrap();
            guesser
                .post(
                    &format!("/api/rooms/{room}/join"),
                    &json!({ "password": format!("guess {n}") }),
                )
                .await
                .unwrap()
        })
    });
    let mut wrong = 0;
    let mut busy = 0;
    for guess in futures_util::future::join_all(guesses).await {
        let answer = guess.unwrap();
        match (answer.status.as_u16(), answer.error_code()) {
            (403, Some("wrong_password")) => wrong += 1,
            (503, Some("busy")) => busy += 1,
            other => panic!("unexpected answer {other:?}: {:?}", answer.body),
        }
    }
    let (peak, _) = memory_of(pid);
    assert!(
        wrong >= 2,
        "some guesses were checked ({wrong} wrong, {busy} busy)"
    );
    let grown = peak.saturating_sub(before);
    // One argon2 block (19 MiB) per hashing thread, one thread per core, and some slack for
    // 200 connections. Before the fix this attack grew the server by gigabytes.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    assert!(
        grown < cores * (19 << 20) + (64 << 20),
        "peak memory grew by {} MiB (from {} MiB)",
        grown >> 20,
        before >> 20
    );
    // The right password still works afterwards.
    let friend = Api::new(&base).unwrap();
    let r = friend
        .post(
            &format!("/api/rooms/{room}/join"),
            &json!({ "password": "right" }),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
}

/// One user guessed 75 passwords a second. Guesses are now limited per client address and per
/// room, with `Retry-After`.
#[tokio::test]
async fn password_guesses_are_limited_per_address_and_per_room() {
    let app = spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.limit_password_guesses = "3/min".parse().unwrap();
        c.limit_password_guesses_per_room = "5/min".parse().unwrap();
    })
    .await;
    let owner = app.api();
    let r = owner
        .post(
            "/api/rooms",
            &json!({ "name": "Locked", "password": "right" }),
        )
        .await
        .unwrap();
    let room = r.body["id"].as_str().unwrap().to_owned();
    let join = format!("/api/rooms/{room}/join");
    let guess = |api: &Api, password: &str| {
        let api = api.clone();
        let join = join.clone();
        let body = json!({ "password": password });
        async move { api.post(&join, &body).await.unwrap() }
    };
    let mallory = from(&app.base, "203.0.113.66");
    for _ in 0..3 {
        assert_eq!(
            guess(&mallory, "nope").await.error_code(),
            Some("wrong_password")
        );
    }
    let refused = guess(&mallory, "right").await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code()),
        (429, Some("too_many_guesses"))
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    // Another address has its own allowance, until the room's runs out too.
    let eve = from(&app.base, "198.51.100.7");
    assert_eq!(
        guess(&eve, "nope").await.error_code(),
        Some("wrong_password")
    );
    assert_eq!(
        guess(&eve, "nope").await.error_code(),
        Some("wrong_password")
    );
    let carol = from(&app.base, "192.0.2.44");
    let r = guess(&carol, "right").await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (429, Some("too_many_guesses"))
    );
    // A client cannot pick its own address when the proxy is not trusted: the peer counts.
    let untrusted = spawn_with(|c| c.limit_password_guesses = "1/min".parse().unwrap()).await;
    let r = untrusted
        .api()
        .post("/api/rooms", &json!({ "name": "L", "password": "x" }))
        .await
        .unwrap();
    let join = format!("/api/rooms/{}/join", r.body["id"].as_str().unwrap());
    let first = from(&untrusted.base, "203.0.113.1");
    let second = from(&untrusted.base, "203.0.113.2");
    let body = json!({ "password": "no" });
    assert_eq!(first.post(&join, &body).await.unwrap().status.as_u16(), 403);
    assert_eq!(
        second.post(&join, &body).await.unwrap().status.as_u16(),
        429
    );
}

/// A trusted proxy in front, so that each test browser can say which address it comes from.
fn behind_proxy(c: &mut lockstep::Config) {
    c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// One cookieless request made a user and a 30-day session, 452 a second. New users, rooms and
/// uploads are now limited per address; other addresses are not affected.
#[tokio::test]
async fn new_users_rooms_and_uploads_are_limited_per_address() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.limit_new_users = "3/h".parse().unwrap();
        c.limit_rooms = "2/h".parse().unwrap();
        c.limit_uploads = "1/h".parse().unwrap();
    })
    .await;
    for _ in 0..3 {
        let r = from(&app.base, "203.0.113.5").get("/api/me").await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
    }
    let r = from(&app.base, "203.0.113.5").get("/api/me").await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (429, Some("too_many_new_users"))
    );
    assert!(r.headers.contains_key("retry-after"));
    let elsewhere = from(&app.base, "198.51.100.5");
    assert_eq!(elsewhere.get("/api/me").await.unwrap().status.as_u16(), 200);
    // Operators see refusals in the metrics.
    assert!(
        app.state
            .metrics
            .render()
            .contains("lockstep_rate_limited_total{limit=\"new_users\"} 1")
    );
    // A user who has a cookie is not a new user.
    assert_eq!(elsewhere.get("/api/me").await.unwrap().status.as_u16(), 200);

    for _ in 0..2 {
        let r = elsewhere
            .post("/api/rooms", &json!({ "name": "Mine" }))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 201);
    }
    let r = elsewhere
        .post("/api/rooms", &json!({ "name": "Spam" }))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (429, Some("too_many_rooms"))
    );

    use crate::uploads::create;
    assert_eq!(
        create(&elsewhere, 100, "a.mp4").await.status().as_u16(),
        201
    );
    assert_eq!(
        create(&elsewhere, 100, "b.mp4").await.status().as_u16(),
        429
    );
}

/// 196 MB were accepted against a 10 MB quota by uploading as many throwaway users. The bytes
/// started from one address are bounded too; and a brand-new user waits before uploading.
#[tokio::test]
async fn throwaway_users_cannot_multiply_the_upload_quota() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.upload_quota_bytes = 10_000_000;
        c.upload_quota_per_address_bytes = 15_000_000;
    })
    .await;
    let start = |api: Api, size: usize| async move {
        let r = crate::uploads::create(&api, size, "clip.mp4").await;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    let here = "203.0.113.9";
    assert_eq!(start(from(&app.base, here), 6_000_000).await.0, 201);
    assert_eq!(start(from(&app.base, here), 6_000_000).await.0, 201);
    assert_eq!(
        start(from(&app.base, here), 6_000_000).await,
        (413, "quota_exceeded".into())
    );
    assert_eq!(
        start(from(&app.base, "198.51.100.9"), 6_000_000).await.0,
        201
    );

    let waiting = spawn_with(|c| c.upload_min_account_age_secs = 3600).await;
    let (status, code) = start(waiting.api(), 100).await;
    assert_eq!((status, code.as_str()), (429, "account_too_new"));
}

/// A banned user cleared cookies and walked back in, to a public room and to a private one
/// with the old invite link. A ban now bars their address for a while too (moderators and the
/// owner are exempt); unbanning lifts it; other addresses are not affected.
#[tokio::test]
async fn a_ban_bars_the_address_so_clearing_cookies_does_not_help() {
    let app = spawn_with(behind_proxy).await;
    let owner = from(&app.base, "192.0.2.1");
    for visibility in ["public", "private"] {
        let r = owner
            .post(
                "/api/rooms",
                &json!({ "name": "Ours", "visibility": visibility }),
            )
            .await
            .unwrap();
        let room: RoomId = r.body["id"].as_str().unwrap().parse().unwrap();
        let key = r.body["invite_key"].as_str().unwrap().to_owned();
        let troll = from(&app.base, "203.0.113.13");
        let r = troll
            .post(&format!("/api/invites/{key}/join"), &json!({}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        let (mut troll_ws, welcome) = troll.join(room).await.unwrap();
        let (mut owner_ws, _) = owner.join(room).await.unwrap();
        owner_ws
            .ok(|id| lockstep_core::protocol::ClientFrame::Ban {
                id,
                user_id: welcome.you.user_id,
            })
            .await
            .unwrap();
        assert_eq!(troll_ws.closed().await.unwrap().code, 1008);

        // Cookies cleared: a new user from the same address.
        let again = from(&app.base, "203.0.113.13");
        let r = again
            .post(&format!("/api/invites/{key}/join"), &json!({}))
            .await
            .unwrap();
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (403, Some("banned")),
            "{visibility}"
        );
        let r = again.get(&format!("/api/rooms/{room}")).await.unwrap();
        assert_eq!(r.status.as_u16(), 403, "{visibility}");
        assert!(again.viewer(room).await.is_err());
        // Someone else is welcome.
        let friend = from(&app.base, "198.51.100.13");
        let r = friend
            .post(&format!("/api/invites/{key}/join"), &json!({}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        // Unban lifts the bar.
        owner_ws
            .ok(|id| lockstep_core::protocol::ClientFrame::Unban {
                id,
                user_id: welcome.you.user_id,
            })
            .await
            .unwrap();
        let r = again
            .post(&format!("/api/invites/{key}/join"), &json!({}))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{visibility}: {:?}", r.body);
    }
}

/// Many throwaway users from one address share one chat allowance.
#[tokio::test]
async fn chat_is_limited_per_address_across_users() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.limit_chat = "4/min".parse().unwrap();
    })
    .await;
    let owner = from(&app.base, "192.0.2.1");
    let room = crate::helpers::public_room(&owner).await;
    let mut said = 0;
    let mut refused = 0;
    for _ in 0..3 {
        let (mut v, _) = from(&app.base, "203.0.113.77").join(room).await.unwrap();
        for _ in 0..2 {
            match v
                .command(|id| lockstep_core::protocol::ClientFrame::Chat {
                    id,
                    text: "spam".into(),
                })
                .await
                .unwrap()
            {
                Ok(_) => said += 1,
                Err(lockstep_core::protocol::ServerFrame::Error {
                    code,
                    retry_after_ms,
                    ..
                }) => {
                    assert_eq!(code, "rate_limited");
                    assert!(retry_after_ms.is_some());
                    refused += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    assert_eq!((said, refused), (4, 2));
    let (mut other, _) = from(&app.base, "198.51.100.77").join(room).await.unwrap();
    other
        .ok(|id| lockstep_core::protocol::ClientFrame::Chat {
            id,
            text: "hello".into(),
        })
        .await
        .unwrap();
}

/// One address could read the API as fast as it could send: the lobby, pages of chat history,
/// posters, each a session lookup and a database read. Every API, page and media request now
/// counts against its address's request rate; other addresses are served meanwhile, and static
/// assets are not counted.
#[tokio::test]
async fn api_page_and_media_requests_are_limited_per_address() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.limit_requests = "6/h".parse().unwrap();
    })
    .await;
    let flood = from(&app.base, "203.0.113.9");
    let get = |path: &'static str| {
        let request = flood.raw(reqwest::Method::GET, path);
        async move { request.send().await.unwrap() }
    };
    let mut answered = Vec::new();
    for path in [
        "/api/rooms",
        "/api/me",
        "/",
        "/media/posters/nothing.jpg",
        "/api/rooms/nothing/chat",
        "/api/no-such-endpoint",
    ] {
        answered.push(get(path).await.status().as_u16());
    }
    assert!(
        !answered.contains(&429),
        "within the allowance: {answered:?}"
    );
    for path in ["/api/rooms", "/", "/media/posters/nothing.jpg"] {
        let r = get(path).await;
        assert_eq!(r.status().as_u16(), 429, "{path}");
        assert!(r.headers().contains_key("retry-after"), "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests", "{path}");
    }
    // A write is refused the same way, and makes nothing.
    let refused = flood
        .post("/api/rooms", &json!({ "name": "Refused" }))
        .await
        .unwrap();
    assert_eq!(refused.status.as_u16(), 429);
    // The page's scripts and styles are not counted.
    assert_eq!(get("/static/style.css").await.status().as_u16(), 200);
    let elsewhere = from(&app.base, "198.51.100.9");
    let lobby = elsewhere.get("/api/rooms").await.unwrap();
    assert_eq!(lobby.status.as_u16(), 200);
    assert_eq!(lobby.body["rooms"], json!([]));
    assert!(
        app.state
            .metrics
            .render()
            .contains("lockstep_rate_limited_total{limit=\"requests\"} 4")
    );
}

/// 520 rooms made in 0.4 s pushed a real public room out of the lobby. Rooms with viewers are
/// listed first, busiest first, whatever their age and however many rooms are newer.
#[tokio::test]
async fn empty_rooms_cannot_push_a_busy_room_out_of_the_lobby() {
    let app = spawn_with(|c| c.limit_rooms = lockstep::throttle::Rate::OFF).await;
    let host = app.api();
    let busy = crate::helpers::public_room(&host).await;
    let (_viewer, _) = host.join(busy).await.unwrap();
    let spammer = app.api();
    for n in 0..520 {
        let r = spammer
            .post("/api/rooms", &json!({ "name": format!("spam {n}") }))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 201);
    }
    let lobby = app.api().get("/api/rooms?limit=10").await.unwrap();
    assert_eq!(lobby.body["rooms"][0]["id"], busy.to_string());
    assert_eq!(lobby.body["rooms"][0]["viewers"], 1);
}

/// Users made by cookieless requests who never did anything are deleted; anyone who did
/// something (made a room, visited one) is kept.
#[tokio::test]
async fn users_who_never_did_anything_are_purged() {
    let app = spawn_app().await;
    let idle: Vec<Api> = (0..5).map(|_| app.api()).collect();
    for api in &idle {
        api.get("/api/me").await.unwrap();
    }
    let host = app.api();
    let room = crate::helpers::public_room(&host).await;
    let visitor = app.api();
    visitor.join(room).await.unwrap();
    // Everyone above is "before" a cutoff a second from now.
    let later = app.state.clock.now() + std::time::Duration::from_secs(1);
    let purged = app.state.store.purge_idle_users(later, 1000).await.unwrap();
    assert_eq!(purged, 5);
    let me = idle[0].get("/api/me").await.unwrap();
    assert_eq!(me.status.as_u16(), 200, "a purged user just gets a new one");
    assert_eq!(
        host.get(&format!("/api/rooms/{room}")).await.unwrap().body["role"],
        "owner"
    );
}
