//! Synchronised playback: commands from one viewer reach every viewer, positions follow the
//! server clock, late joiners get the right snapshot, the server moves on when an item ends.

use crate::helpers::{media, public_room, serve_dir, spawn_app};
use lockstep_core::permissions::Role;
use lockstep_core::playback::{PlaybackState, START_LEAD_SECS};
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use lockstep_core::queue::ItemStatus;
use lockstep_core::room::{ItemChangeCause, PlaybackCause};
use lockstep_core::time::ServerTime;

const EPS: f64 = 1e-6;

fn playback(frame: &ServerFrame) -> (PlaybackState, PlaybackCause) {
    match frame {
        ServerFrame::Playback { state, cause, .. } => (*state, *cause),
        other => panic!("expected playback, got {other:?}"),
    }
}

fn is_playback(f: &ServerFrame) -> bool {
    matches!(f, ServerFrame::Playback { .. })
}

/// Matches the playback event with this cause.
fn caused(cause: PlaybackCause) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Playback { cause: c, .. } if *c == cause)
}

#[tokio::test]
async fn two_viewers_follow_play_pause_seek_and_rate_by_the_server_clock() {
    let app = spawn_app().await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();

    // Nothing answers at this address: the duration stays unknown, so the item cannot end
    // under the test however slow the machine is.
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/film.mp4".into(),
    })
    .await
    .unwrap();
    let started = b
        .wait_for(|f| matches!(f, ServerFrame::NowPlaying { .. }))
        .await
        .unwrap();
    let ServerFrame::NowPlaying {
        state: start,
        cause,
        ..
    } = started
    else {
        unreachable!()
    };
    assert_eq!(cause, ItemChangeCause::Added);
    assert!(!start.paused, "adding to an empty room starts playing");

    // Ann pauses; both see the same state, computed from the server clock.
    a.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    let (pa, _) = playback(&a.wait_for(is_playback).await.unwrap());
    let (pb, cause) = playback(&b.wait_for(is_playback).await.unwrap());
    assert_eq!(pa, pb);
    assert_eq!(cause, PlaybackCause::Pause);
    assert!(pa.paused);
    let expected = start.position + pa.at.seconds_since(start.at) * start.rate;
    assert!((pa.position - expected).abs() < EPS, "{pa:?} vs {expected}");

    // Bob seeks; the position is taken as asked, paused stays paused.
    b.ok(|id| ClientFrame::Seek { id, position: 1.25 })
        .await
        .unwrap();
    let (sa, cause) = playback(&a.wait_for(is_playback).await.unwrap());
    assert_eq!(
        (sa.position, sa.paused, cause),
        (1.25, true, PlaybackCause::Seek)
    );
    b.wait_for(is_playback).await.unwrap();

    // Rate 0.5, then play: the position advances at half speed of server time.
    a.ok(|id| ClientFrame::Rate { id, rate: 0.5 })
        .await
        .unwrap();
    let (ra, _) = playback(&b.wait_for(caused(PlaybackCause::Rate)).await.unwrap());
    assert_eq!(ra.rate, 0.5);
    let sent = app.state.clock.now();
    a.ok(|id| ClientFrame::Play { id }).await.unwrap();
    let (play, _) = playback(&b.wait_for(caused(PlaybackCause::Play)).await.unwrap());
    assert!(!play.paused);
    assert!(
        (play.position - 1.25).abs() < EPS,
        "playing resumes where it was paused"
    );
    // The start is scheduled a moment after the command, for every viewer to start on time.
    let ahead = play.at.seconds_since(sent);
    assert!(
        (START_LEAD_SECS..START_LEAD_SECS + 5.0).contains(&ahead),
        "starts {ahead} s after the command was sent"
    );
    tokio::time::sleep(std::time::Duration::from_secs_f64(START_LEAD_SECS + 0.1)).await;
    b.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    let (paused, _) = playback(&a.wait_for(caused(PlaybackCause::Pause)).await.unwrap());
    // Ann saw the same play event as Bob.
    let (play_a, _) = playback(&a.wait_for(caused(PlaybackCause::Play)).await.unwrap());
    assert_eq!(play_a, play);
    let advanced = paused.position - play.position;
    let server_elapsed = paused.at.seconds_since(play.at);
    assert!(server_elapsed > 0.0);
    assert!(
        (advanced - server_elapsed * 0.5).abs() < EPS,
        "{advanced} vs {server_elapsed}"
    );

    // The events carry server time: `at` lies between the server clock before and after.
    let now = app.state.clock.now();
    assert!(paused.at <= now && paused.at > ServerTime(now.micros() - 60_000_000));
}

#[tokio::test]
async fn a_late_joiner_gets_the_room_as_it_is() {
    let app = spawn_app().await;
    let (ann, cat) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    // Items with unknown metadata are still playable (nothing answers at this address).
    for n in 0..3 {
        a.ok(|id| ClientFrame::QueueAdd {
            id,
            url: format!("http://127.0.0.1:9/v{n}.mp4"),
        })
        .await
        .unwrap();
    }
    a.ok(|id| ClientFrame::Seek { id, position: 42.0 })
        .await
        .unwrap();
    a.ok(|id| ClientFrame::Chat {
        id,
        text: "hello there".into(),
    })
    .await
    .unwrap();
    let before = app.state.clock.now();
    let (_c, welcome) = cat.join(room).await.unwrap();
    let after = app.state.clock.now();

    assert_eq!(welcome.room_id, room);
    assert_eq!(
        welcome.current.as_ref().unwrap().url,
        "http://127.0.0.1:9/v0.mp4"
    );
    assert_eq!(welcome.queue.len(), 2);
    assert!(!welcome.playback.paused);
    // Where the late joiner should be: 42 s plus the server time since the seek.
    let pos = welcome.playback.position_at(welcome.server_time);
    assert!(pos >= 42.0);
    assert!(welcome.server_time >= before && welcome.server_time <= after);
    // Both are counted at once; the late joiner is listed with the next presence batch.
    assert_eq!(welcome.member_count, 2, "both members are counted");
    assert!(welcome.members.iter().any(|m| m.role == Role::Owner));
    assert!(
        welcome
            .chat
            .iter()
            .any(|l| l.text == "hello there" && l.system.is_none())
    );
    assert!(
        welcome.chat.iter().any(|l| l.system.is_some()),
        "system lines too"
    );
    assert_eq!(
        welcome.you.user_id,
        cat.get("/api/me").await.unwrap().body["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    );
}

#[tokio::test]
async fn the_server_starts_the_next_item_when_the_current_one_ends() {
    let app = spawn_app().await;
    let files = serve_dir(&media().dir).await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{files}/clip2s.mp4"),
    })
    .await
    .unwrap();
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: format!("{files}/clip3s.webm"),
    })
    .await
    .unwrap();
    // ffprobe learns both durations.
    let mut durations = Vec::new();
    while durations.len() < 2 {
        if let ServerFrame::ItemUpdated { item, .. } = a
            .wait_for_within(lockstep_client::LOOKUP_TIMEOUT, |f| {
                matches!(f, ServerFrame::ItemUpdated { .. })
            })
            .await
            .unwrap()
        {
            assert_eq!(item.status, ItemStatus::Ready);
            durations.push((item.url.clone(), item.duration.unwrap()));
        }
    }
    durations.sort_by(|x, y| x.0.cmp(&y.0));
    assert!((durations[0].1 - 2.0).abs() < 0.1, "{durations:?}");
    assert!((durations[1].1 - 3.0).abs() < 0.1, "{durations:?}");

    // No client says anything: the server ends the first item and starts the second.
    let next = a
        .wait_for(|f| {
            matches!(
                f,
                ServerFrame::NowPlaying {
                    cause: ItemChangeCause::Ended,
                    ..
                }
            )
        })
        .await
        .unwrap();
    let ServerFrame::NowPlaying {
        item,
        previous,
        state,
        ..
    } = next
    else {
        unreachable!()
    };
    assert!(item.unwrap().url.ends_with("clip3s.webm"));
    assert!(previous.is_some());
    assert_eq!((state.position, state.paused), (0.0, false));
    // And after the last one, nothing plays.
    let end = a
        .wait_for(|f| {
            matches!(
                f,
                ServerFrame::NowPlaying {
                    cause: ItemChangeCause::Ended,
                    ..
                }
            )
        })
        .await
        .unwrap();
    let ServerFrame::NowPlaying { item, state, .. } = end else {
        unreachable!()
    };
    assert!(item.is_none() && state.paused);
}

#[tokio::test]
async fn chat_and_queue_changes_reach_everyone_and_tabs_count_once() {
    let app = spawn_app().await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut a2, w2) = ann.join(room).await.unwrap(); // a second tab
    assert_eq!(w2.members.len(), 1, "two tabs of one user are one member");
    let (mut b, bob_welcome) = bob.join(room).await.unwrap();
    let bob_id = bob_welcome.you.user_id;
    a.wait_for(|f| {
        matches!(f, ServerFrame::Presence { joined, count: 2, .. }
            if joined.iter().any(|m| m.user_id == bob_id))
    })
    .await
    .unwrap();
    assert_eq!(app.state.rooms.viewers(room), 2);

    b.ok(|id| ClientFrame::Chat {
        id,
        text: "<b>hi</b>".into(),
    })
    .await
    .unwrap();
    for v in [&mut a, &mut a2] {
        let line = v
            .wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.system.is_none()))
            .await
            .unwrap();
        let ServerFrame::Chat { line, .. } = line else {
            unreachable!()
        };
        assert_eq!(line.text, "<b>hi</b>", "text is passed through as text");
    }
    for n in 0..3 {
        b.ok(|id| ClientFrame::QueueAdd {
            id,
            url: format!("http://127.0.0.1:9/{n}.mp4"),
        })
        .await
        .unwrap();
    }
    // Items 1 and 2 are upcoming; move 2 to the front, remove 1.
    let welcome = {
        let (_v, w) = bob.join(room).await.unwrap();
        w
    };
    let (one, two) = (welcome.queue[0].id, welcome.queue[1].id);
    a.ok(|id| ClientFrame::QueueMove {
        id,
        item_id: two,
        index: 0,
    })
    .await
    .unwrap();
    b.wait_for(
        |f| matches!(f, ServerFrame::QueueMoved { item_id, index: 0, .. } if *item_id == two),
    )
    .await
    .unwrap();
    b.ok(|id| ClientFrame::QueueRemove { id, item_id: one })
        .await
        .unwrap();
    a2.wait_for(|f| matches!(f, ServerFrame::QueueRemoved { item_id, .. } if *item_id == one))
        .await
        .unwrap();

    // Closing one tab is not leaving; closing both is.
    a2.close().await;
    b.ok(|id| ClientFrame::Chat {
        id,
        text: "still here?".into(),
    })
    .await
    .unwrap();
    assert!(
        b.drain_backlog()
            .iter()
            .all(|f| !matches!(f, ServerFrame::Presence { left, .. } if !left.is_empty()))
    );
    a.close().await;
    b.wait_for(|f| matches!(f, ServerFrame::Presence { left, count: 1, .. } if left.len() == 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn vote_skip_passes_at_the_configured_share() {
    let app = spawn_app().await;
    let (ann, bob, cat) = (app.api(), app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    let (mut c, _) = cat.join(room).await.unwrap();
    // Three members at ratio 0.6: ceil(1.8) = two votes needed.
    let r = ann
        .patch(
            &format!("/api/rooms/{room}"),
            &serde_json::json!({ "vote_skip_ratio": 0.6 }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/a.mp4".into(),
    })
    .await
    .unwrap();
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/b.mp4".into(),
    })
    .await
    .unwrap();
    b.ok(|id| ClientFrame::VoteSkip { id }).await.unwrap();
    let votes = c
        .wait_for(|f| matches!(f, ServerFrame::Votes { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            votes,
            ServerFrame::Votes {
                votes: 1,
                needed: 2,
                ..
            }
        ),
        "{votes:?}"
    );
    c.ok(|id| ClientFrame::VoteSkip { id }).await.unwrap();
    let skipped = a
        .wait_for(|f| {
            matches!(
                f,
                ServerFrame::NowPlaying {
                    cause: ItemChangeCause::VoteSkip,
                    ..
                }
            )
        })
        .await
        .unwrap();
    let ServerFrame::NowPlaying { item, .. } = skipped else {
        unreachable!()
    };
    assert_eq!(item.unwrap().url, "http://127.0.0.1:9/b.mp4");
}

#[tokio::test]
async fn wait_for_everyone_waits_for_a_buffering_viewer_not_one_that_cannot_play() {
    let app = spawn_app().await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    // Bob's readiness report.
    let ready = |ready, cannot_play| {
        move |id| ClientFrame::Ready {
            id,
            ready,
            cannot_play,
        }
    };
    a.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/film.mp4".into(),
    })
    .await
    .unwrap();
    // Off by default: Bob buffering does not stop Ann.
    b.ok(ready(false, false)).await.unwrap();
    // Ann hears it as an update, or (Bob having joined within the presence batch that tells
    // of him) with Bob himself.
    a.wait_for(|f| match f {
        ServerFrame::MemberUpdated { member, .. } => !member.ready,
        ServerFrame::Presence { joined, .. } => joined.iter().any(|m| !m.ready),
        _ => false,
    })
    .await
    .unwrap();
    assert!(
        a.drain_backlog()
            .iter()
            .all(|f| !matches!(f, ServerFrame::Playback { .. }))
    );

    // On: the room pauses for Bob; a late joiner's welcome says it is waiting.
    let r = ann
        .patch(
            &format!("/api/rooms/{room}"),
            &serde_json::json!({ "wait_for_everyone": true }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let (held, _) = playback(&a.wait_for(caused(PlaybackCause::Buffering)).await.unwrap());
    assert!(held.paused);
    let (_c, welcome) = app.api().join(room).await.unwrap();
    assert!(welcome.waiting && welcome.playback.paused);

    // Bob is ready: it plays on, from where it stopped.
    b.ok(ready(true, false)).await.unwrap();
    let (resumed, _) = playback(&a.wait_for(caused(PlaybackCause::Ready)).await.unwrap());
    assert!(!resumed.paused);
    assert_eq!(resumed.position, held.position);

    // Bob buffers again, then his player says it cannot play the item at all (YouTube refuses
    // it to him): the room plays on without him, and Ann sees why.
    b.ok(ready(false, false)).await.unwrap();
    let (held, _) = playback(&a.wait_for(caused(PlaybackCause::Buffering)).await.unwrap());
    assert!(held.paused);
    b.ok(ready(false, true)).await.unwrap();
    a.wait_for(|f| matches!(f, ServerFrame::MemberUpdated { member, .. } if member.ready && member.cannot_play))
        .await
        .unwrap();
    let (resumed, _) = playback(&a.wait_for(caused(PlaybackCause::Ready)).await.unwrap());
    assert!(!resumed.paused);
}

/// Viewers report how far they are from the room; everyone is told, and `/metrics` counts it.
#[tokio::test]
async fn sync_reports_reach_every_viewer_and_the_metrics() {
    let app = crate::helpers::spawn_with(|c| c.metrics_token = Some("scrape".into())).await;
    let ann = app.api();
    let bob = app.api();
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    let report = |p50_ms: f64, p95_ms: f64| {
        move |id| ClientFrame::SyncReport {
            id: Some(id),
            p50_ms,
            p95_ms,
        }
    };

    // Nonsense is refused with its own code; a second report within 2 s is rate limited.
    assert_eq!(
        a.refused(report(9.0, 3.0)).await.unwrap(),
        "invalid_sync_report"
    );
    assert_eq!(
        a.refused(report(-1.0, 3.0)).await.unwrap(),
        "invalid_sync_report"
    );
    a.ok(report(3.0, 8.5)).await.unwrap();
    assert_eq!(a.refused(report(3.0, 8.5)).await.unwrap(), "rate_limited");

    // The other viewer is told: Ann's figures and the room's worst p95.
    let told = b
        .wait_for(|f| matches!(f, ServerFrame::SyncQuality { .. }))
        .await
        .unwrap();
    let ServerFrame::SyncQuality {
        members,
        worst_p95_ms,
        ..
    } = told
    else {
        unreachable!()
    };
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].p50_ms, members[0].p95_ms), (3.0, 8.5));
    assert_eq!(worst_p95_ms, Some(8.5));

    // Bob's report, within 2 s of the last `sync_quality`, is told when those 2 s are up,
    // though nobody reports after it.
    b.ok(report(1.0, 12.0)).await.unwrap();
    let told = a
        .wait_for(|f| matches!(f, ServerFrame::SyncQuality { members, .. } if members.len() == 2))
        .await
        .unwrap();
    let ServerFrame::SyncQuality { worst_p95_ms, .. } = told else {
        unreachable!()
    };
    assert_eq!(worst_p95_ms, Some(12.0));

    // The node's histogram holds the accepted reports only (p50 and p95).
    let metrics = ann
        .with_header("authorization", "Bearer scrape")
        .get_text("/metrics")
        .await;
    assert!(
        metrics.contains(r#"lockstep_viewer_sync_error_ms_count{quantile="p95"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"lockstep_viewer_sync_error_ms_count{quantile="p50"} 2"#),
        "{metrics}"
    );
}

/// A report without an id, as a page sends it, is answered only when refused: an `error`
/// without an id; one the room takes gets no `ack`, and still reaches the others.
#[tokio::test]
async fn a_sync_report_without_an_id_is_answered_only_when_refused() {
    let app = crate::helpers::spawn_app().await;
    let ann = app.api();
    let bob = app.api();
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    let report = |p50_ms: f64, p95_ms: f64| ClientFrame::SyncReport {
        id: None,
        p50_ms,
        p95_ms,
    };

    assert_eq!(
        refused_without_id(&mut a, &report(9.0, 3.0)).await,
        "invalid_sync_report"
    );

    a.send(&report(3.0, 8.5)).await.unwrap();
    // A ping sent after it is answered after it: nothing came for the report before.
    a.send(&ClientFrame::Ping {
        id: Some(1),
        client_time: 0.0,
    })
    .await
    .unwrap();
    a.wait_for(|f| matches!(f, ServerFrame::Pong { .. }))
        .await
        .unwrap();
    assert!(
        !a.backlog()
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. })),
        "{:?}",
        a.backlog()
    );
    let told = b
        .wait_for(|f| matches!(f, ServerFrame::SyncQuality { .. }))
        .await
        .unwrap();
    let ServerFrame::SyncQuality { members, .. } = told else {
        unreachable!()
    };
    assert_eq!((members[0].p50_ms, members[0].p95_ms), (3.0, 8.5));

    // Beyond one a member per 2 s, it is refused all the same.
    assert_eq!(
        refused_without_id(&mut a, &report(3.0, 8.5)).await,
        "rate_limited"
    );
}

/// Sends `frame` and returns the code of the `error` that answers it, which has no id.
async fn refused_without_id(v: &mut lockstep_client::Viewer, frame: &ClientFrame) -> String {
    v.send(frame).await.unwrap();
    match v
        .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
        .await
        .unwrap()
    {
        ServerFrame::Error { id: None, code, .. } => code,
        other => panic!("an error without an id, not {other:?}"),
    }
}

/// The pong's two times from a ping sent now.
async fn pong_times(v: &mut lockstep_client::Viewer) -> (ServerTime, ServerTime) {
    v.send(&ClientFrame::Ping {
        id: None,
        client_time: 0.0,
    })
    .await
    .unwrap();
    match v
        .wait_for(|f| matches!(f, ServerFrame::Pong { .. }))
        .await
        .unwrap()
    {
        ServerFrame::Pong {
            server_recv,
            server_send,
            ..
        } => (server_recv, server_send),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn the_clock_over_http_reads_the_clock_pongs_read_never_cached_and_without_a_session() {
    let app = spawn_app().await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let mut v = ann.viewer(room).await.unwrap();
    let (_, before) = pong_times(&mut v).await;
    // No cookie: a page's first sample may go before it has a session, and makes none.
    let answer = reqwest::get(format!("{}/api/clock", app.base))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    assert!(answer.headers().get("set-cookie").is_none());
    let body: serde_json::Value = answer.json().await.unwrap();
    let recv = ServerTime(body["server_recv"].as_i64().expect("server_recv"));
    let send = ServerTime(body["server_send"].as_i64().expect("server_send"));
    let (after, _) = pong_times(&mut v).await;
    // The same clock as the pongs', in the order things happened.
    assert!(
        before <= recv && recv <= send && send <= after,
        "{before:?} {recv:?} {send:?} {after:?}"
    );
}
