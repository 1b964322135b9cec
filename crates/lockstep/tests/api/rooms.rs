//! Rooms over REST: create, read, update, delete, the lobby, invites and passwords, history.

use crate::helpers::{public_room, spawn_app, spawn_with};
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use serde_json::json;

#[tokio::test]
async fn create_read_update_delete() {
    let app = spawn_app().await;
    let (owner, other) = (app.api(), app.api());
    let r = owner
        .post("/api/rooms", &json!({ "name": "  Friday films  " }))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["name"], "Friday films");
    assert_eq!(r.body["role"], "owner");
    assert_eq!(r.body["settings"]["visibility"], "public");
    assert_eq!(r.body["settings"]["has_password"], false);
    let key = r.body["invite_key"].as_str().unwrap();
    assert_eq!(key.len(), 24, "144 random bits, URL-safe");
    assert!(
        key.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );

    let r = other.get(&format!("/api/rooms/{id}")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["role"].as_str()),
        (200, Some("viewer"))
    );

    // Settings: owner and moderators only; values are validated.
    let path = format!("/api/rooms/{id}");
    let r = other
        .patch(&path, &json!({ "name": "Mine now" }))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("forbidden"))
    );
    let r = owner
        .patch(&path, &json!({ "name": "Saturday films", "chat_slow_mode_secs": 5, "wait_for_everyone": true }))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "Saturday films");
    assert_eq!(r.body["settings"]["chat_slow_mode_secs"], 5);
    for (bad, code) in [
        (json!({ "vote_skip_ratio": 0 }), "invalid_settings"),
        (json!({ "name": "" }), "invalid_settings"),
        (json!({ "playback": "nobody" }), "invalid_settings"),
        (json!({ "colour": "red" }), "invalid_settings"),
        (json!({ "password": "" }), "invalid_password"),
        (json!({ "password": 5 }), "invalid_password"),
    ] {
        let r = owner.patch(&path, &bad).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (422, Some(code)),
            "{bad}"
        );
    }
    let r = owner.patch(&path, &json!([1, 2])).await.unwrap();
    assert_eq!(r.status.as_u16(), 422);

    // Delete: owner only; connected viewers are told; the room is gone.
    let (mut v, _) = other.join(id.parse().unwrap()).await.unwrap();
    let r = other.delete(&path).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("forbidden"))
    );
    let r = owner.delete(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 204);
    assert!(matches!(
        v.wait_for(|f| matches!(f, ServerFrame::Closed { .. }))
            .await
            .unwrap(),
        ServerFrame::Closed { .. }
    ));
    assert_eq!(v.closed().await.unwrap().code, 1008);
    let r = owner.get(&path).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (404, Some("room_not_found"))
    );
}

#[tokio::test]
async fn private_rooms_are_reachable_only_through_their_invite_and_regenerating_it_revokes_the_link()
 {
    let app = spawn_app().await;
    let (owner, friend, stranger, late) = (app.api(), app.api(), app.api(), app.api());
    let r = owner
        .post(
            "/api/rooms",
            &json!({ "name": "Secret", "visibility": "private" }),
        )
        .await
        .unwrap();
    let id = r.body["id"].as_str().unwrap().to_owned();
    let key = r.body["invite_key"].as_str().unwrap().to_owned();
    assert_eq!(r.body["link"], format!("/i/{key}"));

    // Without the key, the room does not exist: REST and WebSocket.
    let r = stranger.get(&format!("/api/rooms/{id}")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (404, Some("room_not_found"))
    );
    let err = stranger
        .viewer(id.parse().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("404"), "{err}");
    // Not in the lobby either.
    let lobby = stranger.get("/api/rooms").await.unwrap();
    assert!(
        lobby.body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != id.as_str())
    );

    // With it: look, join, connect.
    let r = friend.get(&format!("/api/invites/{key}")).await.unwrap();
    assert_eq!(
        (r.body["room_id"].as_str(), r.body["has_password"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    let r = friend
        .post(&format!("/api/invites/{key}/join"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    friend.join(id.parse().unwrap()).await.unwrap();

    // The owner regenerates: the old link is dead, the new one works; admitted friends stay in.
    let r = owner
        .post(&format!("/api/rooms/{id}/invite"), &json!({}))
        .await
        .unwrap();
    let new_key = r.body["invite_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    let r = late.get(&format!("/api/invites/{key}")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (404, Some("invite_not_found"))
    );
    let r = late
        .post(&format!("/api/invites/{key}/join"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);
    let r = late
        .post(&format!("/api/invites/{new_key}/join"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(
        friend
            .get(&format!("/api/rooms/{id}"))
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );
    // Only the owner regenerates.
    let r = friend
        .post(&format!("/api/rooms/{id}/invite"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403);
    // Malformed keys are simply unknown.
    for bad in [
        "short",
        "..%2F..%2Fetc%2Fpasswd",
        "AAAAAAAAAAAAAAAAAAAAAAA!",
    ] {
        let r = late.get(&format!("/api/invites/{bad}")).await.unwrap();
        assert_eq!(r.status.as_u16(), 404, "{bad}");
    }
}

/// Found by the outside test: a public room's invite key, shown to anyone who opens the room,
/// kept admitting people after the room was made private.
#[tokio::test]
async fn making_a_room_private_replaces_the_invite_key_anyone_could_see() {
    let app = spawn_app().await;
    let (owner, member, passer_by, stranger) = (app.api(), app.api(), app.api(), app.api());
    let id = public_room(&owner).await;
    member.join(id).await.unwrap();
    let seen = passer_by.get(&format!("/api/rooms/{id}")).await.unwrap();
    let old_key = seen.body["invite_key"].as_str().unwrap().to_owned();

    let r = owner
        .patch(
            &format!("/api/rooms/{id}"),
            &json!({ "visibility": "private" }),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let new_key = r.body["invite_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(r.body["link"], format!("/i/{new_key}"));
    for path in [
        format!("/api/invites/{old_key}"),
        format!("/api/invites/{old_key}/join"),
    ] {
        let r = if path.ends_with("join") {
            stranger.post(&path, &json!({})).await.unwrap()
        } else {
            stranger.get(&path).await.unwrap()
        };
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (404, Some("invite_not_found"))
        );
    }
    let r = stranger.get(&format!("/api/rooms/{id}")).await.unwrap();
    assert_eq!(r.status.as_u16(), 404);
    // Who was in stays in; the new key admits.
    member.join(id).await.unwrap();
    let r = stranger
        .post(&format!("/api/invites/{new_key}/join"), &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
}

#[tokio::test]
async fn passwords_gate_rooms() {
    let app = spawn_app().await;
    let (owner, guest) = (app.api(), app.api());
    let r = owner
        .post(
            "/api/rooms",
            &json!({ "name": "Locked", "password": "open sesame" }),
        )
        .await
        .unwrap();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["settings"]["has_password"], true);
    // Visible, but not enterable without the password.
    let r = guest.get(&format!("/api/rooms/{id}")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["admitted"].as_bool()),
        (200, Some(false))
    );
    assert!(r.body["invite_key"].is_null());
    let err = guest
        .viewer(id.parse().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let r = guest.get(&format!("/api/rooms/{id}/chat")).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("password_required"))
    );
    let join = format!("/api/rooms/{id}/join");
    let r = guest.post(&join, &json!({})).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("password_required"))
    );
    let r = guest
        .post(&join, &json!({ "password": "open says me" }))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("wrong_password"))
    );
    let r = guest
        .post(&join, &json!({ "password": "open sesame" }))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["admitted"].as_bool()),
        (200, Some(true))
    );
    guest.join(id.parse().unwrap()).await.unwrap();
    // The owner clears the password; only the owner may.
    let r = guest
        .patch(&format!("/api/rooms/{id}"), &json!({ "password": null }))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 403);
    let r = owner
        .patch(&format!("/api/rooms/{id}"), &json!({ "password": null }))
        .await
        .unwrap();
    assert_eq!(r.body["settings"]["has_password"], false, "{:?}", r.body);
    let r = app.api().get(&format!("/api/rooms/{id}")).await.unwrap();
    assert_eq!(r.body["admitted"], true);

    // A private room with a password needs both: the invite key and the password.
    let r = owner
        .post(
            "/api/rooms",
            &json!({ "name": "Both", "visibility": "private", "password": "pw" }),
        )
        .await
        .unwrap();
    let key = r.body["invite_key"].as_str().unwrap().to_owned();
    let private_id = r.body["id"].as_str().unwrap().to_owned();
    let visitor = app.api();
    let r = visitor.get(&format!("/api/invites/{key}")).await.unwrap();
    assert_eq!(
        (
            r.body["has_password"].as_bool(),
            r.body["admitted"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let r = visitor
        .post(&format!("/api/invites/{key}/join"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("password_required"))
    );
    let r = visitor
        .post(
            &format!("/api/invites/{key}/join"),
            &json!({ "password": "nope" }),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, Some("wrong_password"))
    );
    let r = visitor
        .get(&format!("/api/rooms/{private_id}"))
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404, "still invisible without both");
    let r = visitor
        .post(
            &format!("/api/invites/{key}/join"),
            &json!({ "password": "pw" }),
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    visitor.join(private_id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn the_lobby_lists_public_rooms_with_live_viewers_and_what_plays() {
    let app = spawn_app().await;
    let (a, b) = (app.api(), app.api());
    let quiet = public_room(&a).await;
    let busy = a.create_room(&json!({ "name": "Busy" })).await.unwrap();
    a.create_room(&json!({ "name": "Hidden", "visibility": "private" }))
        .await
        .unwrap();
    let (mut va, _) = a.join(busy).await.unwrap();
    let _vb = b.join(busy).await.unwrap();
    va.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/Cat%20video.mp4".into(),
    })
    .await
    .unwrap();

    let lobby = b.get("/api/rooms").await.unwrap().body;
    let rooms = lobby["rooms"].as_array().unwrap();
    assert_eq!(lobby["total"], 2);
    assert_eq!(
        rooms[0]["id"],
        busy.to_string(),
        "the busy room comes first"
    );
    assert_eq!(rooms[0]["viewers"], 2);
    assert_eq!(rooms[0]["now_playing"]["title"], "Cat video");
    assert_eq!(rooms[1]["id"], quiet.to_string());
    assert_eq!(rooms[1]["viewers"], 0);
    assert!(rooms[1]["now_playing"].is_null());

    // Random: a room with viewers when there is one.
    for _ in 0..5 {
        let r = b.get("/api/rooms/random").await.unwrap();
        assert_eq!(r.body["id"], busy.to_string());
    }
    let mine = a.get("/api/me/rooms").await.unwrap().body;
    assert_eq!(mine["owned"].as_array().unwrap().len(), 3);
    let visited = b.get("/api/me/rooms").await.unwrap().body;
    assert_eq!(visited["recent"][0]["id"], busy.to_string());

    let empty = spawn_app().await;
    let r = empty.api().get("/api/rooms/random").await.unwrap();
    assert_eq!((r.status.as_u16(), r.error_code()), (404, Some("no_rooms")));
}

#[tokio::test]
async fn chat_history_pages_backwards() {
    let app = spawn_with(|c| {
        c.chat_rate_lines = 1000;
        c.ws_frames_per_sec = 1000;
        c.ws_frames_burst = 1000;
        c.limit_chat = lockstep::throttle::Rate::OFF;
    })
    .await;
    let ann = app.api();
    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    for n in 0..130 {
        a.ok(|id| ClientFrame::Chat {
            id,
            text: format!("line {n}"),
        })
        .await
        .unwrap();
    }
    // The welcome carries the last 100 lines.
    let (_b, welcome) = app.api().join(room).await.unwrap();
    assert_eq!(welcome.chat.len(), 100);
    let last_said = welcome
        .chat
        .iter()
        .rev()
        .find(|l| l.system.is_none())
        .unwrap();
    assert_eq!(last_said.text, "line 129");
    // Older ones come from the history endpoint, oldest first within a page.
    let oldest_shown = welcome.chat[0].id;
    let page = ann
        .get(&format!(
            "/api/rooms/{room}/chat?before={oldest_shown}&limit=20"
        ))
        .await
        .unwrap();
    let lines = page.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 20);
    assert_eq!(page.body["has_more"], true);
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );
    assert!(lines.last().unwrap()["id"].as_i64().unwrap() < oldest_shown);
    let all = ann
        .get(&format!("/api/rooms/{room}/chat?limit=200"))
        .await
        .unwrap();
    assert_eq!(all.body["has_more"], false);
    assert!(
        all.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"] == "line 0")
    );
    let r = ann
        .get(&format!("/api/rooms/{room}/chat?before=abc"))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (422, Some("invalid_query"))
    );
}

#[tokio::test]
async fn a_rooms_view_tells_what_plays_only_to_those_let_in() {
    let app = spawn_app().await;
    let (owner, guest) = (app.api(), app.api());
    let r = owner
        .post("/api/rooms", &json!({ "name": "Films", "password": "pw" }))
        .await
        .unwrap();
    let id: lockstep_core::ids::RoomId = r.body["id"].as_str().unwrap().parse().unwrap();
    assert!(
        r.body["current"].is_null(),
        "nothing plays yet: {:?}",
        r.body
    );
    let (mut v, _) = owner.join(id).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/Cat%20video.mp4".into(),
    })
    .await
    .unwrap();
    v.ok(|id| ClientFrame::Seek { id, position: 42.0 })
        .await
        .unwrap();

    // The page loads the video while it connects: the owner's view names it and where it is
    // (as the event writer saved it, within moments).
    let path = format!("/api/rooms/{id}");
    let mut view = serde_json::Value::Null;
    for _ in 0..100 {
        view = owner.get(&path).await.unwrap().body;
        if view["playback"]["position"].as_f64() >= Some(42.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(view["current"]["title"], "Cat video", "{view:?}");
    assert_eq!(
        view["current"]["url"], "http://127.0.0.1:9/Cat%20video.mp4",
        "{view:?}"
    );
    assert!(view["current"]["id"].is_string(), "{view:?}");
    let position = view["playback"]["position"].as_f64().unwrap();
    assert!((42.0..43.0).contains(&position), "{view:?}");
    assert!(view["playback"]["at"].is_number() && view["playback"]["rate"] == 1.0);

    // Not to someone who has not given the password: neither what plays nor where.
    let r = guest.get(&path).await.unwrap();
    assert_eq!(r.body["admitted"], false);
    assert!(
        r.body["current"].is_null() && r.body["playback"].is_null(),
        "{:?}",
        r.body
    );
    guest
        .post(&format!("{path}/join"), &json!({ "password": "pw" }))
        .await
        .unwrap();
    let r = guest.get(&path).await.unwrap();
    assert_eq!(r.body["current"]["title"], "Cat video", "{:?}", r.body);
}
