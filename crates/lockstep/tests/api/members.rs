//! The member list of a big room: a window of the first members kept live by `presence`, the
//! count, and the rest a page at a time.

use crate::helpers::{public_room, spawn_with};
use lockstep_core::ids::UserId;
use lockstep_core::limits::MEMBER_WINDOW;
use lockstep_core::permissions::Role;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use std::collections::BTreeSet;

#[tokio::test]
async fn a_big_room_tells_a_window_of_members_and_pages_through_the_rest() {
    // 121 new users from one address.
    let app = spawn_with(|c| c.limit_new_users = lockstep::throttle::Rate::OFF).await;
    let owner = app.api();
    let room = public_room(&owner).await;
    let (mut o, welcome) = owner.join(room).await.unwrap();
    let mut window: BTreeSet<UserId> = welcome.members.iter().map(|m| m.user_id).collect();
    let mut viewers = Vec::new();
    for _ in 0..119 {
        let (v, _) = app.api().join(room).await.unwrap();
        viewers.push(v);
    }
    // The owner hears of them in presence batches: the window stops at 100, the count goes on.
    let mut frames = 0;
    loop {
        let ServerFrame::Presence {
            joined,
            left,
            count,
            ..
        } = o
            .wait_for(|f| matches!(f, ServerFrame::Presence { .. }))
            .await
            .unwrap()
        else {
            unreachable!()
        };
        frames += 1;
        for id in left {
            window.remove(&id);
        }
        window.extend(joined.iter().map(|m| m.user_id));
        assert!(window.len() <= MEMBER_WINDOW);
        if count == 120 {
            break;
        }
    }
    assert_eq!(window.len(), MEMBER_WINDOW);
    assert!(frames <= 119, "{frames} presence frames for 119 joins");

    // A late joiner's welcome carries the window and the count, not the whole room.
    let (mut late, w) = app.api().join(room).await.unwrap();
    assert_eq!(w.member_count, 121);
    assert_eq!(w.members.len(), MEMBER_WINDOW);
    assert_eq!(
        w.members.iter().filter(|m| m.role == Role::Owner).count(),
        1
    );
    let told: BTreeSet<UserId> = w.members.iter().map(|m| m.user_id).collect();
    assert_eq!(told, window, "the welcome's window is the one events keep");

    // The whole list, in pages: the owner first, the window, then the rest by arrival.
    let page = |offset, limit| move |id| ClientFrame::Members { id, offset, limit };
    let Ok(ServerFrame::MembersPage { count, members, .. }) =
        late.command(page(0, 200)).await.unwrap()
    else {
        panic!("a page")
    };
    assert_eq!((count, members.len()), (121, 121));
    assert_eq!(
        members[0].user_id, welcome.you.user_id,
        "the owner comes first"
    );
    let first: BTreeSet<UserId> = members[..MEMBER_WINDOW].iter().map(|m| m.user_id).collect();
    assert_eq!(first, window);
    let Ok(ServerFrame::MembersPage {
        offset, members, ..
    }) = late.command(page(100, 50)).await.unwrap()
    else {
        panic!("a page")
    };
    assert_eq!((offset, members.len()), (100, 21));
    assert!(members.iter().all(|m| !window.contains(&m.user_id)));
    let Ok(ServerFrame::MembersPage { members, .. }) = late.command(page(5000, 10)).await.unwrap()
    else {
        panic!("a page")
    };
    assert!(members.is_empty(), "past the end: an empty page");

    // Bad page sizes are refused with a clear code.
    assert_eq!(late.refused(page(0, 0)).await.unwrap(), "invalid_page");
    assert_eq!(late.refused(page(0, 201)).await.unwrap(), "invalid_page");
    late.send_raw(r#"{"t":"members","id":99,"offset":-1,"limit":5}"#)
        .await
        .unwrap();
    let err = late
        .wait_for(|f| matches!(f, ServerFrame::Error { id: Some(99), .. }))
        .await
        .unwrap();
    assert!(matches!(err, ServerFrame::Error { code, .. } if code == "bad_frame"));
}

#[tokio::test]
async fn a_returning_viewer_is_not_written_again() {
    let app = spawn_with(|_| {}).await;
    let (ann, bob) = (app.api(), app.api());
    let room = public_room(&ann).await;
    let (_a, _) = ann.join(room).await.unwrap();
    let (b, welcome) = bob.join(room).await.unwrap();
    let bob_id = welcome.you.user_id;
    // The visit goes with the next commit, which nobody waits for.
    let mut first = app.state.store.membership(room, bob_id).await.unwrap();
    for _ in 0..100 {
        if first.visited.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        first = app.state.store.membership(room, bob_id).await.unwrap();
    }
    assert!(
        first.admitted && first.visited.is_some(),
        "the first visit is recorded"
    );
    b.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Back within the refresh time: the join writes nothing, so the visit keeps its time.
    let (_b, _) = bob.join(room).await.unwrap();
    let again = app.state.store.membership(room, bob_id).await.unwrap();
    assert_eq!(again.visited, first.visited);
}
