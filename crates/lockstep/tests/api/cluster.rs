//! Several nodes on one PostgreSQL database, one Redis and one media directory: what each node
//! must hear from the others reaches it, and no node takes over what another is doing.
//!
//! These tests always run on PostgreSQL (a cluster shares one database), on this process's
//! throwaway server, and each starts its own redis-server.

use crate::helpers::{TestApp, spawn_with};
use crate::uploads::{clip, read_events, upload};
use base64::Engine;
use lockstep_testkit::redis::Redis;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use tempfile::TempDir;

/// What the nodes of one cluster share.
struct Shared {
    database_url: String,
    redis: Redis,
    media: TempDir,
    cookie_key: String,
    _db_dir: TempDir,
}

impl Shared {
    fn new() -> Shared {
        let db_dir = tempfile::tempdir().unwrap();
        Shared {
            database_url: lockstep_testkit::postgres::database_for(db_dir.path()),
            redis: Redis::start(),
            media: tempfile::tempdir().unwrap(),
            cookie_key: base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
            _db_dir: db_dir,
        }
    }

    /// A node of the cluster as the real binary (for kill -9), with its own data directory
    /// (returned: it must outlive the node) and `extra` settings.
    async fn binary_node(&self, extra: &[&str]) -> (tokio::process::Child, String, TempDir) {
        let redis_url = self.redis.url();
        let media = self.media.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "--database-url",
            self.database_url.as_str(),
            "--redis-url",
            redis_url.as_str(),
            "--media-dir",
            media.as_str(),
            "--cookie-key",
            self.cookie_key.as_str(),
        ];
        args.extend_from_slice(extra);
        let dir = tempfile::tempdir().unwrap();
        let (child, base) = crate::helpers::start_binary_with(dir.path(), &args).await;
        (child, base, dir)
    }

    /// A node of the cluster, with its own data directory.
    async fn node(&self) -> TestApp {
        self.node_with(|_| {}).await
    }

    /// [`Shared::node`] with more settings.
    async fn node_with(&self, tweak: impl FnOnce(&mut lockstep::Config)) -> TestApp {
        spawn_with(|c| {
            c.database_url = Some(self.database_url.clone());
            c.redis_url = Some(self.redis.url());
            c.media_dir = Some(self.media.path().to_owned());
            c.cookie_key = Some(self.cookie_key.clone());
            tweak(c);
        })
        .await
    }
}

/// Joins `room` as `api`, trying again while the room is moving to another node.
async fn rejoin(
    api: &lockstep_client::Api,
    room: lockstep_core::ids::RoomId,
) -> (lockstep_client::Viewer, lockstep_core::protocol::Welcome) {
    for _ in 0..100 {
        if let Ok(joined) = api.join(room).await {
            return joined;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the room did not come back");
}

/// The kinds of the jobs seen done in a stream of events.
fn jobs_done(events: &[(i64, String, serde_json::Value)]) -> usize {
    events
        .iter()
        .filter(|(_, name, v)| name == "job" && v["state"] == "done")
        .filter_map(|(_, _, v)| v["kind"].as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[tokio::test]
async fn an_upload_on_one_node_streams_its_jobs_progress_to_the_owner_on_another() {
    let shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let on_a = a.api();
    // The same browser (one cookie jar, one session) through another node.
    let on_b = on_a.rebased(&b.base);
    let me_a = on_a.get("/api/me").await.unwrap().body;
    let me_b = on_b.get("/api/me").await.unwrap().body;
    assert_eq!(me_a["id"], me_b["id"], "a session is good on every node");

    let stream = on_b
        .raw(Method::GET, "/api/jobs/events")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let id = upload(&on_a, clip(), "on-a.mp4").await;
    // Jobs run on whichever node's workers take them; every change reaches node B's stream,
    // in order, with nothing twice.
    let events = read_events(stream, |ev| jobs_done(ev) == 3).await;
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert!(
        events.iter().any(|(_, name, v)| name == "upload"
            && v["id"] == id.as_str()
            && v["state"] == "ready")
    );
    // The made files are in the shared media directory: node B serves the poster.
    let upload_b = on_b.get(&format!("/api/uploads/{id}")).await.unwrap().body;
    let poster = upload_b["poster"]
        .as_str()
        .unwrap_or_else(|| panic!("a poster: {upload_b}"));
    let image = on_b.raw(Method::GET, poster).send().await.unwrap();
    assert_eq!(image.status(), StatusCode::OK);
}

#[tokio::test]
async fn after_a_redis_restart_the_nodes_resubscribe_by_themselves() {
    let mut shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let on_a = a.api();
    let on_b = on_a.rebased(&b.base);
    on_a.get("/api/me").await.unwrap();

    shared.redis.restart();
    // Let the nodes notice and reconnect (they retry at most 2 s apart).
    let stream = on_b
        .raw(Method::GET, "/api/jobs/events")
        .send()
        .await
        .unwrap();
    // Wait until they have (rather than for a time, which a loaded machine overran): B hears
    // what A publishes.
    let mut back = false;
    for attempt in 0..300 {
        // A new topic each time: a subscription Redis refused is not retried by itself.
        let topic = format!("test-probe-{attempt}");
        if let Ok(mut probe) = b.state.backplane.subscribe(&topic).await {
            let _ = a
                .state
                .backplane
                .publish(&topic, bytes::Bytes::from_static(b"x"))
                .await;
            if tokio::time::timeout(Duration::from_millis(100), probe.recv())
                .await
                .is_ok()
            {
                back = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the nodes came back to Redis");
    upload(&on_a, clip(), "after-restart.mp4").await;
    let events = read_events(stream, |ev| jobs_done(ev) == 3).await;
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
}

#[tokio::test]
async fn a_job_cancelled_through_another_node_stops_where_it_runs() {
    let tools = tempfile::tempdir().unwrap();
    // The storyboard's ffmpeg writes a sheet into its temporary folder, then hangs.
    let ffmpeg = crate::uploads::fake_ffmpeg(
        tools.path(),
        "case \"$*\" in *storyboard*) for a; do last=$a; done; \
         head -c 1000000 /dev/zero > \"$(dirname \"$last\")/sheet-000.jpg\"; sleep 30 ;; esac",
    );
    let shared = Shared::new();
    let a = shared.node_with(|c| c.ffmpeg = ffmpeg).await;
    let on_a = a.api();
    let id = upload(&on_a, clip(), "slow.mp4").await;
    let mut job = serde_json::Value::Null;
    for _ in 0..200 {
        let v = on_a.get(&format!("/api/uploads/{id}")).await.unwrap().body;
        if let Some(j) = v["jobs"].as_array().and_then(|j| {
            j.iter()
                .find(|j| j["kind"] == "storyboard" && j["state"] == "running")
        }) {
            job = j.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job_id = job["id"].as_str().expect("the storyboard job runs on A");
    // Node B joins the cluster now (so the running job is A's) and the owner cancels there.
    let b = shared.node().await;
    let on_b = on_a.rebased(&b.base);
    let r = on_b
        .post(
            &format!("/api/jobs/{job_id}/cancel"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // Node A notices at its next heartbeat (every 5 s), kills its ffmpeg (which would hang
    // for 30 s) and deletes what it half-wrote.
    let left = crate::uploads::temporaries_after(&shared.media.path().join(&id), 100).await;
    assert!(left.is_empty(), "still running on A: {left:?}");
    let r = on_a.get(&format!("/api/jobs/{job_id}")).await.unwrap();
    assert_eq!(r.body["state"], "cancelled");
}

#[tokio::test]
async fn a_rename_through_one_node_reaches_the_rooms_of_another() {
    let shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let on_a = a.api();
    let on_b = on_a.rebased(&b.base);
    on_a.get("/api/me").await.unwrap();
    let room = crate::helpers::public_room(&on_b).await;
    // The room lives on node B, where its viewer is.
    let (mut viewer, _) = on_b.join(room).await.unwrap();
    let r = on_a
        .patch("/api/me", &serde_json::json!({ "name": "Renamed On A" }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    viewer
        .wait_for(|f| {
            matches!(f, lockstep_core::protocol::ServerFrame::MemberUpdated { member, .. }
                if member.name.as_str() == "Renamed On A")
        })
        .await
        .expect("node B's room hears of the rename");
}

/// The viewers node A's lobby counts for `room`.
async fn lobby_viewers(api: &lockstep_client::Api, room: lockstep_core::ids::RoomId) -> i64 {
    let lobby = api.get("/api/rooms").await.unwrap().body;
    lobby["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room.to_string())
        .and_then(|r| r["viewers"].as_i64())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_nodes_lobby_counts_the_viewers_of_every_node() {
    let shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let on_a = a.api();
    let on_b = b.api();
    let room = crate::helpers::public_room(&on_b).await;
    let (_viewer, _) = on_b.join(room).await.unwrap();
    let mut seen = 0;
    for _ in 0..100 {
        seen = lobby_viewers(&on_a, room).await;
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "node A's lobby counts node B's viewer");
    // Node B stops: its viewers are no longer counted anywhere.
    b.stop().await;
    for _ in 0..100 {
        seen = lobby_viewers(&on_a, room).await;
        if seen == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 0, "node B's viewers left with it");
}

#[tokio::test]
async fn viewers_of_one_room_on_two_nodes_share_one_room() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let ann = a.api();
    let room = crate::helpers::public_room(&ann).await;
    // Ann on node A loads the room there (A takes its lease); Bob joins through node B.
    let (mut on_a, _) = ann.join(room).await.unwrap();
    let bob = b.api();
    let (mut on_b, welcome) = bob.join(room).await.unwrap();
    assert_eq!(
        welcome.member_count, 2,
        "Bob's welcome comes from the one room"
    );
    assert!(
        a.state.rooms.loaded(room).is_some() && b.state.rooms.loaded(room).is_some(),
        "A runs the room, B relays it"
    );
    // A page of the member list is read from the owner through B.
    let Ok(ServerFrame::MembersPage { count, members, .. }) = on_b
        .command(|id| ClientFrame::Members {
            id,
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap()
    else {
        panic!("a members page")
    };
    assert_eq!((count, members.len()), (2, 2));
    assert_eq!(members[1].user_id, welcome.you.user_id, "Bob came second");
    // Bob's line, through B to the owner and back to both.
    on_b.ok(|id| ClientFrame::Chat {
        id,
        text: "hello from B".into(),
    })
    .await
    .unwrap();
    for v in [&mut on_a, &mut on_b] {
        v.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "hello from B"))
            .await
            .unwrap();
    }
    // Ann's queue addition and seek reach Bob.
    on_a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/film.mp4".into(),
    })
    .await
    .unwrap();
    on_a.ok(|id| ClientFrame::Seek { id, position: 42.0 })
        .await
        .unwrap();
    let playback = on_b
        .wait_for(|f| matches!(f, ServerFrame::Playback { state, .. } if state.position == 42.0))
        .await
        .unwrap();
    assert!(matches!(playback, ServerFrame::Playback { .. }));
    // And the other way: Bob pauses through B.
    on_b.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    on_a.wait_for(|f| matches!(f, ServerFrame::Playback { state, .. } if state.paused))
        .await
        .unwrap();
    // Refusals cross too: Bob may not kick the room's owner.
    let ann_id: lockstep_core::ids::UserId =
        serde_json::from_value(ann.get("/api/me").await.unwrap().body["id"].clone()).unwrap();
    let code = on_b
        .refused(|id| ClientFrame::Kick {
            id,
            user_id: ann_id,
        })
        .await
        .unwrap();
    assert_eq!(code, "forbidden");
}

#[tokio::test]
async fn when_the_rooms_node_is_killed_another_takes_the_room_and_nothing_acknowledged_is_lost() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let (mut node_a, base_a, _dir_a) = shared.binary_node(&["--limit-chat", "off"]).await;
    let (_node_b, base_b, _dir_b) = shared.binary_node(&["--limit-chat", "off"]).await;
    let ann = lockstep_client::Api::new(&base_a).unwrap();
    let room = crate::helpers::public_room(&ann).await;
    let (_ann_on_a, _) = ann.join(room).await.unwrap();
    let bob = lockstep_client::Api::new(&base_b).unwrap();
    let (mut bob_on_b, _) = bob.join(room).await.unwrap();
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let text = format!("before the crash {n}");
        bob_on_b
            .ok(|id| ClientFrame::Chat {
                id,
                text: text.clone(),
            })
            .await
            .unwrap();
        acknowledged.push(text);
    }
    bob_on_b
        .ok(|id| ClientFrame::QueueAdd {
            id,
            url: "http://127.0.0.1:9/kept.mp4".into(),
        })
        .await
        .unwrap();

    // No warning: SIGKILL the room's node.
    node_a.kill().await.unwrap();
    let killed = std::time::Instant::now();
    let told = bob_on_b
        .wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
        .await
        .expect("Bob's node tells him to reconnect");
    assert!(matches!(told, ServerFrame::Reconnect { .. }));
    // Bob reconnects to his node, which now takes the room.
    let (mut bob_again, welcome) = rejoin(&bob, room).await;
    let back_after = killed.elapsed();
    let texts: Vec<&str> = welcome
        .chat
        .iter()
        .filter(|l| l.system.is_none())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, acknowledged, "every acknowledged line, once");
    let queued: Vec<&str> = welcome
        .current
        .iter()
        .chain(welcome.queue.iter())
        .map(|i| i.url.as_str())
        .collect();
    assert_eq!(queued, ["http://127.0.0.1:9/kept.mp4"]);
    bob_again
        .ok(|id| ClientFrame::Chat {
            id,
            text: "after the crash".into(),
        })
        .await
        .unwrap();
    // Expected within the lease (3 s) and the relay's check (1 s), plus the reconnection;
    // printed, not asserted (no wall-clock assertions in tests).
    eprintln!("room back on another node {back_after:?} after its node was killed");
}

#[tokio::test]
async fn a_node_that_lost_the_room_to_another_writes_nothing_more() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let a = shared.node().await;
    let ann = a.api();
    let room = crate::helpers::public_room(&ann).await;
    let (mut on_a, _) = ann.join(room).await.unwrap();
    on_a.ok(|id| ClientFrame::Chat {
        id,
        text: "written by A".into(),
    })
    .await
    .unwrap();
    // As if node A froze past its lease and another node took the room: a newer fencing token
    // is in the room's row.
    assert!(
        a.state
            .store
            .take_room_fence(room, 1_000_000)
            .await
            .unwrap()
    );
    let refused = on_a
        .command(|id| ClientFrame::Chat {
            id,
            text: "written by a node that lost the room".into(),
        })
        .await
        .unwrap();
    assert!(refused.is_err(), "not acknowledged: {refused:?}");
    on_a.wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
        .await
        .expect("A's viewers are sent to the room's new node");
    let lines = a.state.store.chat_lines(room, None, 50).await.unwrap();
    let texts: Vec<&str> = lines
        .iter()
        .filter(|l| l.system.is_none())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, ["written by A"]);
}

#[tokio::test]
async fn when_a_relaying_node_is_killed_the_room_goes_on_and_its_viewers_leave() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let (_node_a, base_a, _dir_a) = shared.binary_node(&[]).await;
    let (mut node_b, base_b, _dir_b) = shared.binary_node(&[]).await;
    let ann = lockstep_client::Api::new(&base_a).unwrap();
    let room = crate::helpers::public_room(&ann).await;
    let (mut on_a, _) = ann.join(room).await.unwrap();
    let bob = lockstep_client::Api::new(&base_b).unwrap();
    let (_bob_on_b, welcome) = bob.join(room).await.unwrap();
    let bob_id = welcome.you.user_id;
    on_a.wait_for(
        |f| matches!(f, ServerFrame::Presence { joined, .. } if joined.iter().any(|m| m.user_id == bob_id)),
    )
    .await
    .unwrap();

    node_b.kill().await.unwrap();
    // Nothing else notices: Ann's room goes on.
    on_a.ok(|id| ClientFrame::Chat {
        id,
        text: "still here".into(),
    })
    .await
    .unwrap();
    // Bob's node stops appearing in the presence exchange (10 s), and the room lets him go.
    let mut left = false;
    for _ in 0..3 {
        if on_a
            .wait_for(|f| matches!(f, ServerFrame::Presence { left, .. } if left.contains(&bob_id)))
            .await
            .is_ok()
        {
            left = true;
            break;
        }
    }
    assert!(left, "the dead node's viewer left the room");
}

#[tokio::test]
async fn a_viewer_whose_rooms_node_died_resumes_on_another_without_a_fresh_welcome() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let (mut node_a, base_a, _dir_a) = shared.binary_node(&[]).await;
    let (_node_b, base_b, _dir_b) = shared.binary_node(&[]).await;
    let ann = lockstep_client::Api::new(&base_a).unwrap();
    let room = crate::helpers::public_room(&ann).await;
    let (mut on_a, welcome_a) = ann.join(room).await.unwrap();
    let bob = lockstep_client::Api::new(&base_b).unwrap();
    let (mut bob_on_b, welcome) = bob.join(room).await.unwrap();
    assert_eq!(welcome.epoch, welcome_a.epoch, "one room, one numbering");
    on_a.ok(|id| ClientFrame::Chat {
        id,
        text: "seen by Bob".into(),
    })
    .await
    .unwrap();
    bob_on_b
        .wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "seen by Bob"))
        .await
        .unwrap();

    node_a.kill().await.unwrap();
    bob_on_b
        .wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
        .await
        .unwrap();
    // Node B takes the room: Bob resumes where he was, in the same epoch.
    let mut first = None;
    for _ in 0..50 {
        match bob_on_b.resume().await {
            Ok(frame @ (ServerFrame::Resumed { .. } | ServerFrame::Welcome(_))) => {
                first = Some(frame);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    match first.expect("Bob gets back in") {
        ServerFrame::Resumed { epoch, .. } => assert_eq!(epoch, welcome.epoch),
        other => panic!("a fresh start instead of a resume: {other:?}"),
    }
    bob_on_b
        .ok(|id| ClientFrame::Chat {
            id,
            text: "after the change of node".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn conflicting_commands_through_three_nodes_end_in_one_state_everywhere() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    let nodes = [
        shared.node().await,
        shared.node().await,
        shared.node().await,
    ];
    let owner = nodes[0].api();
    let room = crate::helpers::public_room(&owner).await;
    // Everyone may play, seek and queue (the defaults); the owner's node loads the room first.
    let (mut owner_v, _) = owner.join(room).await.unwrap();
    let mut viewers = Vec::new();
    for node in &nodes {
        let api = node.api();
        let (v, _) = api.join(room).await.unwrap();
        viewers.push(v);
    }
    // Every viewer fires a burst of conflicting commands at once.
    let bursts = viewers.into_iter().enumerate().map(|(n, mut v)| {
        tokio::spawn(async move {
            let mut added = Vec::new();
            for k in 0..12u32 {
                let url = format!("http://127.0.0.1:9/n{n}-k{k}.mp4");
                let queued = url.clone();
                let frame = move |id| match k % 5 {
                    0 => ClientFrame::Seek {
                        id,
                        position: f64::from(n as u32 * 100 + k),
                    },
                    1 => ClientFrame::Play { id },
                    2 => ClientFrame::Pause { id },
                    3 => ClientFrame::QueueAdd { id, url: queued },
                    _ => ClientFrame::Chat {
                        id,
                        text: format!("line {n}-{k}"),
                    },
                };
                if let Ok(Ok(_)) = v.command(frame).await
                    && k % 5 == 3
                {
                    added.push(url);
                }
            }
            (v, added)
        })
    });
    let mut viewers = Vec::new();
    let mut added = Vec::new();
    for burst in bursts {
        let (v, urls) = burst.await.unwrap();
        viewers.push(v);
        added.extend(urls);
    }
    assert!(!added.is_empty(), "some additions were acknowledged");
    // A last acknowledged command marks the end; then every viewer's view is compared.
    owner_v
        .ok(|id| ClientFrame::Seek { id, position: 7.0 })
        .await
        .unwrap();
    let final_state = |frames: &[ServerFrame]| {
        frames.iter().rev().find_map(|f| match f {
            ServerFrame::Playback { state, .. } => Some((state.paused, state.position, state.at)),
            _ => None,
        })
    };
    let mut seen = Vec::new();
    let mut chats = Vec::new();
    for v in viewers.iter_mut() {
        // Everything this viewer was sent, in order, up to the marker.
        let mut lines = Vec::new();
        let last = loop {
            let frame = v.recv().await.unwrap();
            match &frame {
                ServerFrame::Chat { line, .. } if line.system.is_none() => {
                    lines.push(line.text.clone());
                }
                ServerFrame::Playback { state, .. } if state.position == 7.0 => break frame,
                _ => {}
            }
        };
        seen.push(final_state(&[last]));
        chats.push(lines);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "one state: {seen:?}");
    assert!(!chats[0].is_empty());
    assert!(
        chats.windows(2).all(|w| w[0] == w[1]),
        "one chat, one order: {chats:?}"
    );
    // A fresh look through every node, and the database, agree.
    let mut queues = Vec::new();
    for node in &nodes {
        let (_v, w) = node.api().join(room).await.unwrap();
        assert_eq!(
            Some((w.playback.paused, w.playback.position, w.playback.at)),
            seen[0]
        );
        queues.push(
            w.current
                .iter()
                .chain(w.queue.iter())
                .map(|i| i.url.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        queues.windows(2).all(|w| w[0] == w[1]),
        "one queue: {queues:?}"
    );
    let mut in_queue = queues[0].clone();
    in_queue.sort();
    added.sort();
    assert_eq!(in_queue, added, "every acknowledged addition, once");
    let row = nodes[0].state.store.room(room).await.unwrap().unwrap();
    assert_eq!(
        Some((row.paused, row.position)),
        seen[0].map(|(p, pos, _)| (p, pos))
    );
}

#[tokio::test]
async fn after_a_redis_restart_rooms_come_back_on_their_own() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let mut shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let ann = a.api();
    let room = crate::helpers::public_room(&ann).await;
    let (mut on_a, _) = ann.join(room).await.unwrap();
    let bob = b.api();
    let (mut on_b, _) = bob.join(room).await.unwrap();
    on_a.ok(|id| ClientFrame::Chat {
        id,
        text: "before".into(),
    })
    .await
    .unwrap();

    // Redis restarts empty: leases, fencing counters, histories, subscriptions are gone.
    shared.redis.restart();
    for v in [&mut on_a, &mut on_b] {
        v.wait_for(|f| matches!(f, ServerFrame::Reconnect { .. }))
            .await
            .expect("viewers are told to reconnect");
    }
    // They come back through their own nodes, to one room again.
    let (mut on_a, welcome) = rejoin(&ann, room).await;
    assert!(welcome.chat.iter().any(|l| l.text == "before"));
    let (mut on_b, _) = rejoin(&bob, room).await;
    on_b.ok(|id| ClientFrame::Chat {
        id,
        text: "after".into(),
    })
    .await
    .unwrap();
    on_a.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "after"))
        .await
        .expect("one room again across the two nodes");
}

#[tokio::test]
async fn a_driver_sending_through_another_node_while_the_rooms_node_is_killed_loses_nothing_acknowledged()
 {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let shared = Shared::new();
    // One driver sends as fast as it is answered: no chat or frame limit.
    let unlimited = [
        "--limit-chat",
        "off",
        "--chat-rate-lines",
        "100000",
        "--ws-frames-per-sec",
        "10000",
        "--ws-frames-burst",
        "10000",
    ];
    let (mut node_a, base_a, _dir_a) = shared.binary_node(&unlimited).await;
    let (_node_b, base_b, _dir_b) = shared.binary_node(&unlimited).await;
    let ann = lockstep_client::Api::new(&base_a).unwrap();
    let room = crate::helpers::public_room(&ann).await;
    let (_ann_on_a, _) = ann.join(room).await.unwrap();
    let bob = lockstep_client::Api::new(&base_b).unwrap();
    let (bob_on_b, _) = bob.join(room).await.unwrap();

    // Bob drives chat lines and queue additions through node B, across the kill.
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let after_kill = killed.clone();
    let driver = tokio::spawn(async move {
        let mut viewer = bob_on_b;
        let (mut lines, mut items) = (Vec::new(), Vec::new());
        let mut n = 0;
        let mut after_crash = 0;
        while after_crash < 5 {
            n += 1;
            let answer = if n % 5 == 0 {
                let url = format!("http://127.0.0.1:9/item{n}.mp4");
                let sent = url.clone();
                let a = viewer
                    .command(move |id| ClientFrame::QueueAdd { id, url: sent })
                    .await;
                if let Ok(Ok(_)) = &a {
                    items.push(url);
                }
                a
            } else {
                let text = format!("line {n}");
                let sent = text.clone();
                let a = viewer
                    .command(move |id| ClientFrame::Chat { id, text: sent })
                    .await;
                if let Ok(Ok(_)) = &a {
                    lines.push(text);
                }
                a
            };
            tokio::time::sleep(Duration::from_millis(10)).await;
            match answer {
                Ok(Ok(_)) if after_kill.load(std::sync::atomic::Ordering::SeqCst) => {
                    after_crash += 1
                }
                Ok(Ok(_)) => {}
                // Refused, told to reconnect, or the connection dropped: come back through B.
                Ok(Err(ServerFrame::Error { .. })) => {}
                _ => viewer = rejoin(&bob, room).await.0,
            }
        }
        (lines, items)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    node_a.kill().await.unwrap();
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (lines, items) = driver.await.unwrap();
    assert!(lines.len() > 10, "the driver got going: {lines:?}");
    eprintln!(
        "acknowledged across the kill: {} lines, {} queue additions",
        lines.len(),
        items.len()
    );

    // In PostgreSQL: every acknowledged line and addition, exactly once.
    let store = lockstep::store::Store::connect(&shared.database_url)
        .await
        .unwrap();
    let stored: Vec<String> = store
        .chat_lines(room, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.system.is_none())
        .map(|l| l.text)
        .collect();
    for line in &lines {
        assert_eq!(
            stored.iter().filter(|s| *s == line).count(),
            1,
            "{line} once in {stored:?}"
        );
    }
    let queued: Vec<String> = store
        .queue_items(room)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.url)
        .collect();
    for item in &items {
        assert_eq!(
            queued.iter().filter(|q| *q == item).count(),
            1,
            "{item} once"
        );
    }
    // And on a viewer: a fresh welcome through node B has the latest acknowledged lines.
    let (_v, welcome) = rejoin(&lockstep_client::Api::new(&base_b).unwrap(), room).await;
    let seen: Vec<&str> = welcome.chat.iter().map(|l| l.text.as_str()).collect();
    assert!(seen.contains(&lines.last().unwrap().as_str()));
}

#[tokio::test]
async fn a_direct_links_poster_made_on_one_node_is_served_by_another() {
    use lockstep_core::protocol::{ClientFrame, ServerFrame};
    let files = crate::helpers::serve_dir(&crate::helpers::media().dir).await;
    let shared = Shared::new();
    let a = shared.node().await;
    let b = shared.node().await;
    let ann = a.api();
    let room = crate::helpers::public_room(&ann).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{files}/clip2s.mp4"),
    })
    .await
    .unwrap();
    let ServerFrame::ItemUpdated { item, .. } = v
        .wait_for_within(lockstep_client::LOOKUP_TIMEOUT, |f| {
            matches!(f, ServerFrame::ItemUpdated { .. })
        })
        .await
        .unwrap()
    else {
        unreachable!()
    };
    let poster = item.thumbnail.expect("a poster frame");
    // Node A made it; node B, behind the same load balancer, serves it from the store.
    let answer = b
        .api()
        .raw(reqwest::Method::GET, &poster)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.bytes().await.unwrap().starts_with(&[0xFF, 0xD8]));
}
