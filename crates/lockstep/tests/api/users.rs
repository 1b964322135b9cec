//! Anonymous users, session cookies and their rotation, display names.

use crate::helpers::{public_room, spawn_app, spawn_with};
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// A GET with an explicit cookie (or none): the user's id and the new cookie, if one was set.
async fn me(base: &str, cookie: Option<&str>) -> (String, Option<String>, String) {
    let mut req = reqwest::Client::new().get(format!("{base}/api/me"));
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("lockstep_session={c}"));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let token = set.as_deref().map(|s| {
        s.split(';')
            .next()
            .unwrap()
            .trim_start_matches("lockstep_session=")
            .to_owned()
    });
    let body: Value = resp.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        token,
        set.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_first_visit_creates_an_anonymous_user_with_a_safe_cookie() {
    let app = spawn_app().await;
    let (id, token, set_cookie) = me(&app.base, None).await;
    assert!(token.is_some());
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain http has no Secure cookies"
    );
    let api = app.api();
    let body = api.get("/api/me").await.unwrap().body;
    assert_ne!(
        body["id"].as_str().unwrap(),
        id,
        "another browser is another user"
    );
    let name = body["name"].as_str().unwrap();
    assert!(
        name.contains(' ') && name.len() <= 32,
        "a generated name: {name}"
    );
    // The same browser stays the same user.
    assert_eq!(api.get("/api/me").await.unwrap().body, body);
}

#[tokio::test]
async fn tokens_rotate_on_use_without_logging_out_a_second_tab() {
    let app = spawn_with(|c| c.session_rotate_secs = 0).await;
    let (user, t0, _) = me(&app.base, None).await;
    let t0 = t0.unwrap();
    // Tab 1 uses the token: it is replaced by a new one.
    let (u1, t1, _) = me(&app.base, Some(&t0)).await;
    let t1 = t1.expect("a rotated token");
    assert_eq!(u1, user);
    assert_ne!(t1, t0);
    // Tab 2 sent the old token at the same moment: still the same user, no new cookie.
    let (u2, none, _) = me(&app.base, Some(&t0)).await;
    assert_eq!((u2.as_str(), none), (user.as_str(), None));
    // The new token keeps working (and rotates in turn).
    let (u3, t2, _) = me(&app.base, Some(&t1)).await;
    assert_eq!(u3, user);
    assert!(t2.is_some());
}

#[tokio::test]
async fn an_old_token_after_its_grace_tampered_or_expired_cookies_get_a_fresh_user() {
    let app = spawn_with(|c| {
        c.session_rotate_secs = 0;
        c.session_grace_secs = 0;
    })
    .await;
    let (user, t0, _) = me(&app.base, None).await;
    let t0 = t0.unwrap();
    let (_, t1, _) = me(&app.base, Some(&t0)).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (stale, fresh, _) = me(&app.base, Some(&t0)).await;
    assert_ne!(
        stale, user,
        "a replaced token past its grace is not accepted"
    );
    assert!(fresh.is_some());

    // Flip one character of the encrypted cookie: decryption fails, a new user, no error page.
    let t1 = t1.unwrap();
    let mut tampered: Vec<char> = t1.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let (other, new_cookie, _) = me(&app.base, Some(&tampered)).await;
    assert_ne!(other, user);
    assert!(new_cookie.is_some());
    let (garbage_user, _, _) = me(&app.base, Some("not-even-base64")).await;
    assert_ne!(garbage_user, user);

    // Expired sessions too.
    let short = spawn_with(|c| c.session_ttl_secs = 1).await;
    let (u, t, _) = me(&short.base, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (later, _, _) = me(&short.base, Some(&t.unwrap())).await;
    assert_ne!(later, u);
}

#[tokio::test]
async fn display_names_are_validated_and_renames_reach_rooms() {
    let app = spawn_app().await;
    let (ann, bob) = (app.api(), app.api());
    let r = ann
        .patch("/api/me", &json!({ "name": "  Zoë  " }))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.body["name"].as_str()),
        (200, Some("Zoë"))
    );
    for bad in ["", "   ", "a\u{7}b", &"x".repeat(33)] {
        let r = ann.patch("/api/me", &json!({ "name": bad })).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (422, Some("invalid_name")),
            "{bad:?}"
        );
    }
    let r = ann.patch("/api/me", &json!({ "nom": "x" })).await.unwrap();
    assert_eq!(r.status.as_u16(), 422);

    let room = public_room(&ann).await;
    let (mut a, _) = ann.join(room).await.unwrap();
    let (mut b, _) = bob.join(room).await.unwrap();
    a.ok(|id| ClientFrame::SetName {
        id,
        name: "Annie".into(),
    })
    .await
    .unwrap();
    let updated = b
        .wait_for(|f| matches!(f, ServerFrame::MemberUpdated { member, .. } if member.name.as_str() == "Annie"))
        .await
        .unwrap();
    assert!(matches!(updated, ServerFrame::MemberUpdated { .. }));
    assert_eq!(
        a.refused(|id| ClientFrame::SetName {
            id,
            name: " ".into()
        })
        .await
        .unwrap(),
        "invalid_name"
    );
    // A rename over REST reaches the room too.
    ann.patch("/api/me", &json!({ "name": "Ann B." }))
        .await
        .unwrap();
    b.wait_for(|f| matches!(f, ServerFrame::MemberUpdated { member, .. } if member.name.as_str() == "Ann B."))
        .await
        .unwrap();
    assert_eq!(ann.get("/api/me").await.unwrap().body["name"], "Ann B.");
}
