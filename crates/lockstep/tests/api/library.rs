//! The library ("library" and "watch later") and playlists, and queueing a playlist into a room.

use crate::helpers::{public_room, spawn_app};
use crate::uploads::{clip, settled, upload};
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use lockstep_core::queue::ItemSource;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn yt(id: &str) -> String {
    format!("https://www.youtube.com/watch?v={id}")
}

#[tokio::test]
async fn saving_to_the_library_and_watch_later() {
    let app = spawn_app().await;
    let (me, other) = (app.api(), app.api());
    let r = me
        .post("/api/library", &json!({ "list": "library", "item": { "url": "https://youtu.be/dQw4w9WgXcQ?t=5", "title": "Never\u{7} Gonna" } }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["kind"], "youtube");
    assert_eq!(
        r.body["url"],
        yt("dQw4w9WgXcQ"),
        "saved under its canonical URL"
    );
    assert_eq!(r.body["title"], "Never Gonna", "control characters dropped");
    let first = r.body["id"].clone();
    // Saving it again keeps one entry.
    let again = me
        .post(
            "/api/library",
            &json!({ "list": "library", "item": { "url": yt("dQw4w9WgXcQ") } }),
        )
        .await
        .unwrap();
    assert_eq!(again.body["id"], first);
    me.post("/api/library", &json!({ "list": "watch_later", "item": { "url": "https://example.com/film.mp4", "title": "Film" } }))
        .await
        .unwrap();
    let lists = me.get("/api/library").await.unwrap().body;
    assert_eq!(lists["library"].as_array().unwrap().len(), 1);
    assert_eq!(lists["watch_later"][0]["kind"], "url");
    // Nobody else sees them, or can delete them.
    let theirs = other.get("/api/library").await.unwrap().body;
    assert!(theirs["library"].as_array().unwrap().is_empty());
    let r = other
        .delete(&format!("/api/library/{}", first.as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let r = me
        .delete(&format!("/api/library/{}", first.as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        me.get("/api/library").await.unwrap().body["library"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Bad input.
    for (body, code) in [
        (
            json!({ "list": "library", "item": { "url": "ftp://example.com/a.mp4" } }),
            "invalid_media_url",
        ),
        (json!({ "list": "library", "item": {} }), "invalid_input"),
        (
            json!({ "list": "favourites", "item": { "url": yt("dQw4w9WgXcQ") } }),
            "invalid_input",
        ),
        (
            json!({ "list": "library", "item": { "upload_id": uuid::Uuid::now_v7() } }),
            "upload_not_found",
        ),
    ] {
        let r = me.post("/api/library", &body).await.unwrap();
        assert!(r.status.is_client_error(), "{body}");
        assert_eq!(r.error_code(), Some(code), "{body}: {}", r.body);
    }
    let r = me.delete("/api/library/not-an-id").await.unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn playlists_are_created_renamed_reordered_and_deleted() {
    let app = spawn_app().await;
    let (me, other) = (app.api(), app.api());
    let r = me
        .post("/api/playlists", &json!({ "name": "  Friday night  " }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "Friday night");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let base = format!("/api/playlists/{id}");
    for v in ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"] {
        let r = me
            .post(
                &format!("{base}/items"),
                &json!({ "item": { "url": yt(v) } }),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let list = me.get(&base).await.unwrap().body;
    let ids: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    // Reorder: every entry once.
    let r = me
        .send(
            reqwest::Method::PUT,
            &format!("{base}/order"),
            Some(&json!({ "items": [ids[2], ids[0], ids[1]] })),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let urls: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [yt("ccccccccccc"), yt("aaaaaaaaaaa"), yt("bbbbbbbbbbb")]
    );
    let r = me
        .send(
            reqwest::Method::PUT,
            &format!("{base}/order"),
            Some(&json!({ "items": [ids[0], ids[1]] })),
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some("invalid_order"));
    // Remove one; rename.
    let r = me
        .delete(&format!("{base}/items/{}", ids[0].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = me
        .patch(&base, &json!({ "name": "Saturday" }))
        .await
        .unwrap();
    assert_eq!(r.body["name"], "Saturday");
    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(200) }),
        json!({ "name": "a\u{200b}" }),
    ] {
        let r = me.patch(&base, &bad).await.unwrap();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(r.error_code().is_some());
    }
    let all = me.get("/api/playlists").await.unwrap().body;
    assert_eq!(all["playlists"][0]["name"], "Saturday");
    // Another user sees none of it.
    assert!(
        other.get("/api/playlists").await.unwrap().body["playlists"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for r in [
        other.get(&base).await.unwrap(),
        other
            .patch(&base, &json!({ "name": "mine" }))
            .await
            .unwrap(),
        other.delete(&base).await.unwrap(),
        other
            .post(
                &format!("{base}/items"),
                &json!({ "item": { "url": yt("ddddddddddd") } }),
            )
            .await
            .unwrap(),
    ] {
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::NOT_FOUND, Some("playlist_not_found"))
        );
    }
    assert_eq!(
        me.delete(&base).await.unwrap().status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me.get(&base).await.unwrap().status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_playlist_with_an_upload_is_queued_into_a_room_in_order() {
    let app = spawn_app().await;
    let me = app.api();
    let upload_id = upload(&me, clip(), "clip.mp4").await;
    assert_eq!(settled(&app, &me, &upload_id).await["state"], "ready");
    let list = me
        .post("/api/playlists", &json!({ "name": "Mix" }))
        .await
        .unwrap()
        .body;
    let base = format!("/api/playlists/{}", list["id"].as_str().unwrap());
    for item in [
        json!({ "url": yt("aaaaaaaaaaa") }),
        json!({ "upload_id": upload_id }),
        json!({ "url": yt("bbbbbbbbbbb") }),
    ] {
        let r = me
            .post(&format!("{base}/items"), &json!({ "item": item }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // Uploads are saved with their poster and duration.
    let saved = &me.get(&base).await.unwrap().body["items"][1];
    assert_eq!(saved["kind"], "upload");
    assert!(saved["duration"].as_f64().unwrap() > 1.5);

    let room = public_room(&me).await;
    let (mut v, _) = me.join(room).await.unwrap();
    let playlist_id = list["id"].as_str().unwrap().parse().unwrap();
    let ack = v
        .ok(|id| ClientFrame::QueueAddPlaylist { id, playlist_id })
        .await
        .unwrap();
    let ServerFrame::Ack {
        item_id: Some(first),
        ..
    } = ack
    else {
        panic!("{ack:?}")
    };
    let (_, welcome) = app.api().join(room).await.unwrap();
    let current = welcome.current.expect("something plays");
    assert_eq!(current.id, first);
    assert_eq!(current.url, yt("aaaaaaaaaaa"));
    let kinds: Vec<ItemSource> = welcome.queue.iter().map(|i| i.source.clone()).collect();
    assert!(
        matches!(
            kinds[..],
            [ItemSource::Upload { .. }, ItemSource::Youtube { .. }]
        ),
        "{kinds:?}"
    );

    // Someone else's playlist, or none, is refused.
    let other = app.api();
    let (mut o, _) = other.join(room).await.unwrap();
    assert_eq!(
        o.refused(|id| ClientFrame::QueueAddPlaylist { id, playlist_id })
            .await
            .unwrap(),
        "playlist_not_found"
    );
    // An upload deleted since is left out of a later enqueue.
    assert_eq!(
        me.delete(&format!("/api/uploads/{upload_id}"))
            .await
            .unwrap()
            .status,
        StatusCode::NO_CONTENT
    );
    // The room dropped the queued upload.
    let removed = v
        .wait_for(|f| matches!(f, ServerFrame::QueueRemoved { by: None, .. }))
        .await
        .unwrap();
    assert!(matches!(removed, ServerFrame::QueueRemoved { .. }));
    v.ok(|id| ClientFrame::QueueAddPlaylist { id, playlist_id })
        .await
        .unwrap();
    let (_, welcome) = app.api().join(room).await.unwrap();
    let kinds: Vec<ItemSource> = welcome.queue.iter().map(|i| i.source.clone()).collect();
    assert!(
        matches!(
            kinds[..],
            [
                ItemSource::Youtube { .. },
                ItemSource::Youtube { .. },
                ItemSource::Youtube { .. }
            ]
        ),
        "{kinds:?}"
    );
}
