//! Resuming: a client that reconnects with its last sequence number gets exactly the events it
//! missed, in order, once; when they are gone from the ring, a fresh snapshot.

use crate::helpers::{public_room, spawn_with};
use lockstep_core::protocol::{ClientFrame, ServerFrame};

#[tokio::test]
async fn resume_after_a_dropped_connection_delivers_each_missed_event_once() {
    let app = spawn_with(|c| c.chat_rate_lines = 100).await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    a.wait_for(|f| matches!(f, ServerFrame::Presence { count: 2, .. }))
        .await
        .unwrap();
    a.ok(|id| ClientFrame::Chat {
        id,
        text: "before".into(),
    })
    .await
    .unwrap();
    b.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "before"))
        .await
        .unwrap();
    // Ann has seen everything so far (her own line is the latest event); note where she is.
    a.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "before"))
        .await
        .unwrap();
    let seen = a.last_seq;

    // Ann's network drops (no close frame); Bob carries on.
    let mut sent = Vec::new();
    for n in 0..5 {
        let text = format!("missed {n}");
        b.ok(|id| ClientFrame::Chat {
            id,
            text: text.clone(),
        })
        .await
        .unwrap();
        sent.push(text);
    }
    b.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/x.mp4".into(),
    })
    .await
    .unwrap();

    let first = a.resume().await.unwrap();
    let ServerFrame::Resumed {
        after_seq,
        seq: upto,
        ..
    } = first
    else {
        panic!("expected resumed, got {first:?}");
    };
    assert_eq!(after_seq, seen);
    let mut replayed = Vec::new();
    while replayed.len() < (upto - after_seq) as usize {
        replayed.push(a.recv().await.unwrap());
    }
    let seqs: Vec<u64> = replayed.iter().map(|f| f.seq().unwrap()).collect();
    let expected: Vec<u64> = (after_seq + 1..=upto).collect();
    assert_eq!(seqs, expected, "consecutive, in order, no gaps");
    let texts: Vec<&str> = replayed
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Chat { line, .. } if line.system.is_none() => Some(line.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, sent.iter().map(String::as_str).collect::<Vec<_>>());

    // After the replay, live events continue with the next number: nothing is delivered twice.
    b.ok(|id| ClientFrame::Chat {
        id,
        text: "live".into(),
    })
    .await
    .unwrap();
    let mut after = Vec::new();
    loop {
        let f = a.recv().await.unwrap();
        let done = matches!(&f, ServerFrame::Chat { line, .. } if line.text == "live");
        if let Some(seq) = f.seq() {
            after.push(seq);
        }
        if done {
            break;
        }
    }
    assert_eq!(after[0], upto + 1, "{after:?}");
    assert!(after.windows(2).all(|w| w[1] == w[0] + 1), "{after:?}");
}

#[tokio::test]
async fn too_old_or_foreign_positions_get_a_fresh_snapshot() {
    let app = spawn_with(|c| {
        c.event_ring = 4;
        c.chat_rate_lines = 100;
    })
    .await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    a.wait_for(|f| matches!(f, ServerFrame::Presence { count: 2, .. }))
        .await
        .unwrap();
    for n in 0..10 {
        b.ok(|id| ClientFrame::Chat {
            id,
            text: format!("{n}"),
        })
        .await
        .unwrap();
    }
    // More events than the ring holds were missed: a welcome, whose chat has everything.
    let first = a.resume().await.unwrap();
    let ServerFrame::Welcome(w) = first else {
        panic!("expected welcome, got {first:?}")
    };
    assert!(w.chat.iter().any(|l| l.text == "9"));

    // A position from another run of the room (wrong epoch) also gets a welcome.
    a.epoch = Some("0000000000000000".into());
    let first = a.resume().await.unwrap();
    assert!(matches!(first, ServerFrame::Welcome(_)), "{first:?}");
    // And one from the future, in the right epoch.
    let ServerFrame::Welcome(w) = first else {
        unreachable!()
    };
    assert_eq!(a.epoch.as_deref(), Some(w.epoch.as_str()));
    a.last_seq += 1000;
    let first = a.resume().await.unwrap();
    assert!(matches!(first, ServerFrame::Welcome(_)), "{first:?}");
}

/// A viewer that stops reading fills its socket and then what the server keeps for it (1 MiB);
/// the room does not wait for it: it is told to reconnect (`too_slow`) after whole events only,
/// and resumes like after any other `reconnect`.
#[tokio::test]
async fn a_viewer_too_slow_for_its_room_is_told_to_reconnect_and_resumes() {
    let app = spawn_with(|c| {
        c.chat_rate_lines = 100_000;
        c.ws_frames_per_sec = 100_000;
        c.ws_frames_burst = 100_000;
        c.limit_chat = "off".parse().unwrap();
    })
    .await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    a.wait_for(|f| matches!(f, ServerFrame::Presence { count: 2, .. }))
        .await
        .unwrap();
    let from = b.last_seq;

    // Bob reads nothing while Ann chats, until the room no longer counts him: the kernel's
    // buffers on loopback (several MB here) and the server's 1 MiB for him are full.
    let line = "x".repeat(980);
    let mut sent = 0;
    let mut gone = false;
    while !gone {
        assert!(sent < 30_000, "Bob was never cut off");
        a.ok(|id| ClientFrame::Chat {
            id,
            text: format!("{sent:05}{line}"),
        })
        .await
        .unwrap();
        sent += 1;
        gone = a
            .drain_backlog()
            .iter()
            .any(|f| matches!(f, ServerFrame::Presence { count: 1, .. }));
    }

    let closed = b.closed().await.unwrap();
    assert_eq!(closed.code, 1012, "reconnect and resume");
    let frames = b.drain_backlog();
    let Some(ServerFrame::Reconnect { reason, .. }) = frames.last() else {
        panic!("the last frame is reconnect, got {:?}", frames.last());
    };
    assert_eq!(reason, "too_slow");
    // Everything before it is whole events, in order, from where Bob was.
    let seqs: Vec<u64> = frames.iter().filter_map(ServerFrame::seq).collect();
    assert!(!seqs.is_empty(), "Bob got the first events");
    let expected: Vec<u64> = (from + 1..=from + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "consecutive, from where he was");
    assert!(
        seqs.len() < sent,
        "he was cut off before the end ({} of {sent} events)",
        seqs.len()
    );

    // He resumes: too far behind for the ring, so a fresh snapshot, then live events.
    let first = b.resume().await.unwrap();
    assert!(
        matches!(first, ServerFrame::Welcome(_) | ServerFrame::Resumed { .. }),
        "got {first:?}"
    );
    a.ok(|id| ClientFrame::Chat {
        id,
        text: "after".into(),
    })
    .await
    .unwrap();
    b.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "after"))
        .await
        .unwrap();
}
