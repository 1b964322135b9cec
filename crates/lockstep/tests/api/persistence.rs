//! Nothing acknowledged is lost: across kill -9, graceful restarts and idle unloads. Plus the
//! operations endpoints.

use crate::helpers::{public_room, spawn_in, spawn_with, start_binary};
use lockstep_client::Api;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use std::time::Duration;

/// The position of the pause event (the seek before it was made while playing, so the pause lands
/// a little after the seek target).
async fn paused_position(v: &mut lockstep_client::Viewer) -> f64 {
    let frame = v
        .wait_for(|f| matches!(f, ServerFrame::Playback { state, .. } if state.paused))
        .await
        .unwrap();
    let ServerFrame::Playback { state, .. } = frame else {
        unreachable!()
    };
    state.position
}

#[tokio::test]
async fn chat_queue_and_playback_survive_kill_9_and_restart_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_binary(dir.path()).await;
    let api = Api::new(&base).unwrap();
    let me = api.get("/api/me").await.unwrap().body["id"].clone();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    for n in 0..3 {
        v.ok(|id| ClientFrame::QueueAdd {
            id,
            url: format!("http://127.0.0.1:9/film{n}.mp4"),
        })
        .await
        .unwrap();
    }
    for n in 0..3 {
        v.ok(|id| ClientFrame::Chat {
            id,
            text: format!("acknowledged {n}"),
        })
        .await
        .unwrap();
    }
    v.ok(|id| ClientFrame::Seek { id, position: 42.0 })
        .await
        .unwrap();
    v.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    let paused_at = paused_position(&mut v).await;
    let moved = {
        let (_w, w) = api.join(room).await.unwrap();
        w.queue[1].id
    };
    v.ok(|id| ClientFrame::QueueMove {
        id,
        item_id: moved,
        index: 0,
    })
    .await
    .unwrap();

    // No warning, no flush: SIGKILL.
    server.kill().await.unwrap();
    server.wait().await.unwrap();

    let (_server, base) = start_binary(dir.path()).await;
    let api = api.rebased(&base);
    assert_eq!(
        api.get("/api/me").await.unwrap().body["id"],
        me,
        "the cookie key and session survived"
    );
    let (_v, welcome) = api.join(room).await.unwrap();
    let texts: Vec<&str> = welcome
        .chat
        .iter()
        .filter(|l| l.system.is_none())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        texts,
        ["acknowledged 0", "acknowledged 1", "acknowledged 2"]
    );
    assert_eq!(
        welcome.current.as_ref().unwrap().url,
        "http://127.0.0.1:9/film0.mp4"
    );
    let queue: Vec<&str> = welcome.queue.iter().map(|i| i.url.as_str()).collect();
    assert_eq!(
        queue,
        [
            "http://127.0.0.1:9/film2.mp4",
            "http://127.0.0.1:9/film1.mp4"
        ]
    );
    assert!(welcome.playback.paused);
    assert_eq!(
        welcome.playback.position, paused_at,
        "exactly where the acknowledged pause left it"
    );
    assert!(paused_at >= 42.0);
}

#[tokio::test]
async fn a_playing_room_killed_with_sigkill_plays_on_where_the_wall_clock_says() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_binary(dir.path()).await;
    let api = Api::new(&base).unwrap();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/long.mp4".into(),
    })
    .await
    .unwrap();
    let seek_sent = std::time::Instant::now();
    v.ok(|id| ClientFrame::Seek { id, position: 30.0 })
        .await
        .unwrap();
    let seek_acked = std::time::Instant::now();
    server.kill().await.unwrap();
    server.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (_server, base) = start_binary(dir.path()).await;
    let api = api.rebased(&base);
    plays_on_by_the_wall_clock(&api, room, 30.0, seek_sent, seek_acked).await;
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_to_reconnect_and_the_room_resumes_where_it_was() {
    let app = spawn_with(|_| {}).await;
    let dir = app.dir.clone();
    let api = app.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/long.mp4".into(),
    })
    .await
    .unwrap();
    let seek_sent = std::time::Instant::now();
    v.ok(|id| ClientFrame::Seek { id, position: 10.0 })
        .await
        .unwrap();
    let seek_acked = std::time::Instant::now();
    app.stop().await;
    let told = v
        .wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
        .await
        .unwrap();
    assert!(
        matches!(told, ServerFrame::Reconnect { ref reason, retry_after_ms } if reason == "server_shutdown" && retry_after_ms > 0)
    );
    assert_eq!(v.closed().await.unwrap().code, 1012);

    // An outage long enough to see: the room must not jump back by it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let app = spawn_in(dir, |_| {}).await;
    let api = api.rebased(&app.base);
    plays_on_by_the_wall_clock(&api, room, 10.0, seek_sent, seek_acked).await;
}

#[tokio::test]
async fn viewers_back_after_a_restart_are_not_announced_as_joining_again() {
    let app = spawn_with(|_| {}).await;
    let dir = app.dir.clone();
    let api = app.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "before".into(),
    })
    .await
    .unwrap();
    app.stop().await;
    v.wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
        .await
        .unwrap();

    let app = spawn_in(dir, |_| {}).await;
    let api = api.rebased(&app.base);
    // The page reconnects as the web client does: a hello with the epoch and sequence it had.
    let mut back = api.viewer(room).await.unwrap();
    back.epoch = v.epoch.clone();
    back.last_seq = v.last_seq;
    let first = back.resume().await.unwrap();
    let ServerFrame::Welcome(welcome) = first else {
        unreachable!()
    };
    assert_eq!(welcome.member_count, 1, "a member again");
    // A line of its own: a join line would have been stored before it.
    back.ok(|id| ClientFrame::Chat {
        id,
        text: "after".into(),
    })
    .await
    .unwrap();
    let lines = api
        .get(&format!("/api/rooms/{room}/chat?limit=50"))
        .await
        .unwrap()
        .body;
    let texts: Vec<&str> = lines["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let joins = texts.iter().filter(|t| t.ends_with(" joined")).count();
    assert_eq!(
        joins, 1,
        "one join line, from before the restart: {texts:?}"
    );
    assert_eq!(texts.last(), Some(&"after"), "{texts:?}");
}

/// Joins `room` and checks that it is playing where the wall clock says: `sought` seconds plus
/// the time since the seek, outage included (bounded by what this side saw of it, with 50 ms for
/// the clocks' reading), so viewers do not jump back by the outage.
async fn plays_on_by_the_wall_clock(
    api: &Api,
    room: lockstep_core::ids::RoomId,
    sought: f64,
    seek_sent: std::time::Instant,
    seek_acked: std::time::Instant,
) {
    let join_sent = std::time::Instant::now();
    let (_v, welcome) = api.join(room).await.unwrap();
    let welcomed = std::time::Instant::now();
    assert!(!welcome.playback.paused, "it was playing, it plays on");
    let at_least = sought + join_sent.duration_since(seek_acked).as_secs_f64() - 0.05;
    let at_most = sought + welcomed.duration_since(seek_sent).as_secs_f64() + 0.05;
    let position = welcome.playback.position;
    assert!(
        (at_least..=at_most).contains(&position),
        "{position} not in {at_least}..={at_most}: viewers would jump back by the outage"
    );
}

#[tokio::test]
async fn idle_rooms_unload_and_come_back_with_their_state() {
    let app = spawn_with(|c| {
        c.room_idle_secs = 1;
        c.metrics_token = Some("scrape".into());
    })
    .await;
    let api = app.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/a.mp4".into(),
    })
    .await
    .unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/b.mp4".into(),
    })
    .await
    .unwrap();
    v.ok(|id| ClientFrame::Seek { id, position: 5.0 })
        .await
        .unwrap();
    v.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    let paused_at = paused_position(&mut v).await;
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "see you".into(),
    })
    .await
    .unwrap();
    v.close().await;
    assert!(
        app.state.rooms.loaded(room).is_some(),
        "an empty room keeps running for a while"
    );
    // Then it is unloaded.
    let mut unloaded = false;
    for _ in 0..100 {
        if app.state.rooms.loaded(room).is_none() {
            unloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unloaded, "the idle room was unloaded");
    let metrics = api
        .with_header("authorization", "Bearer scrape")
        .get_text("/metrics")
        .await;
    assert!(metrics.contains("lockstep_rooms_loaded 0"), "{metrics}");
    // And back on the next join.
    let (_v, welcome) = api.join(room).await.unwrap();
    assert_eq!(welcome.current.unwrap().url, "http://127.0.0.1:9/a.mp4");
    assert_eq!(welcome.queue.len(), 1);
    assert_eq!(
        (welcome.playback.paused, welcome.playback.position),
        (true, paused_at)
    );
    assert!(welcome.chat.iter().any(|l| l.text == "see you"));
}

#[tokio::test]
async fn healthz_and_metrics() {
    let app = spawn_with(|c| c.metrics_token = Some("scrape".into())).await;
    let api = app.api();
    let r = api.get("/healthz").await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("ok"))
    );
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "x".into(),
    })
    .await
    .unwrap();
    let text = api
        .with_header("authorization", "Bearer scrape")
        .get_text("/metrics")
        .await;
    for needle in [
        "lockstep_ws_connections 1",
        "lockstep_rooms_loaded 1",
        "lockstep_ws_frames_in_total",
        "lockstep_ws_frames_out_total",
        "lockstep_broadcast_latency_seconds_bucket",
        "lockstep_process_resident_memory_bytes",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

/// PostgreSQL stops for 5 s under a live room: commands meanwhile are refused (never
/// acknowledged and lost), and the room continues with everything acknowledged once it is back.
#[tokio::test]
async fn a_postgresql_outage_refuses_commands_and_the_room_continues_after() {
    let mut pg = lockstep_testkit::postgres::Postgres::start_own();
    let url = pg.create_database();
    let app = spawn_with(|c| c.database_url = Some(url)).await;
    let api = app.api();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "before the outage".into(),
    })
    .await
    .unwrap();

    pg.stop();
    let asked = std::time::Instant::now();
    let answer = v
        .command(|id| ClientFrame::Chat {
            id,
            text: "during the outage".into(),
        })
        .await;
    assert!(
        matches!(
            answer,
            Ok(Err(
                ServerFrame::Error { .. } | ServerFrame::Reconnect { .. }
            ))
        ),
        "an error, not an acknowledgement or silence, while the database is down: {answer:?}"
    );
    eprintln!(
        "answered in {:?} while the database was down",
        asked.elapsed()
    );
    // Five seconds without the database in all.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(asked.elapsed())).await;
    pg.start_again();

    // The viewer comes back (its client retries) and the room goes on.
    let mut back = None;
    for _ in 0..100 {
        if let Ok(joined) = api.join(room).await {
            back = Some(joined);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut v, welcome) = back.expect("the room is back with the database");
    let texts: Vec<&str> = welcome
        .chat
        .iter()
        .filter(|l| l.system.is_none())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, ["before the outage"]);
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "after the outage".into(),
    })
    .await
    .unwrap();
}

/// SIGTERM stops the real binary once its rooms have written through the group commit: the
/// event writer lets go of its database connection, so closing the store does not wait forever
/// (it did: a server that had written an event never exited).
#[tokio::test]
async fn the_binary_exits_on_sigterm_after_its_rooms_wrote_events() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_binary(dir.path()).await;
    let api = Api::new(&base).unwrap();
    let room = public_room(&api).await;
    let (mut v, _) = api.join(room).await.unwrap();
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "before the end".into(),
    })
    .await
    .unwrap();
    let pid = server.id().expect("the server runs");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::time::timeout(Duration::from_secs(30), server.wait()).await;
    assert!(exited.is_ok(), "the server still runs 30 s after SIGTERM");
    let (_server, base) = start_binary(dir.path()).await;
    let lines = api
        .rebased(&base)
        .get(&format!("/api/rooms/{room}/chat?limit=10"))
        .await
        .unwrap()
        .body;
    assert!(
        lines["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"] == "before the end")
    );
}
