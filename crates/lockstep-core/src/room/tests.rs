use super::*;
use crate::ids::UploadId;
use crate::media::Media;
use crate::names::RoomName;
use crate::queue::UploadMedia;
use crate::settings::{Visibility, Who};
use proptest::prelude::*;
use uuid::Uuid;

const OWNER: UserId = UserId(Uuid::from_u128(1));
const MOD: UserId = UserId(Uuid::from_u128(2));
const ANN: UserId = UserId(Uuid::from_u128(3));
const BOB: UserId = UserId(Uuid::from_u128(4));

fn t(secs: f64) -> ServerTime {
    ServerTime(1_700_000_000_000_000).plus_seconds(secs)
}

fn name(s: &str) -> DisplayName {
    DisplayName::parse(s).unwrap()
}

fn room_with(rules: RoomRules) -> Room {
    let settings = RoomSettings::new(RoomName::parse("Films").unwrap(), Visibility::Public, 0.5);
    Room::new(
        RoomInit {
            id: RoomId(Uuid::from_u128(99)),
            owner: OWNER,
            settings,
            has_password: false,
            standings: vec![(
                MOD,
                Standing {
                    moderator: true,
                    ..Default::default()
                },
            )],
            current: None,
            playback: PlaybackState::paused_at(0.0, t(0.0)),
            queue: vec![],
        },
        rules,
    )
}

fn room() -> Room {
    room_with(RoomRules {
        leave_grace: Duration::ZERO,
        presence_batch: Duration::ZERO,
        ..RoomRules::default()
    })
}

fn item(n: u128, duration: Option<f64>, by: UserId) -> QueueItem {
    let mut it = QueueItem::new(
        ItemId(Uuid::from_u128(1000 + n)),
        &Media::parse(&format!("https://cdn.test/v{n}.mp4")).unwrap(),
        by,
        &name("someone"),
        t(0.0),
    );
    it.duration = duration;
    it
}

fn joined(users: &[UserId]) -> Room {
    let mut r = room();
    for (i, &u) in users.iter().enumerate() {
        r.connect(u, name(&format!("user{i}")), false, t(0.0))
            .unwrap();
    }
    r
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            Event::Playback { .. } => "playback",
            Event::NowPlaying { .. } => "now_playing",
            Event::QueueAdded { .. } => "queue_added",
            Event::QueueRemoved { .. } => "queue_removed",
            Event::QueueMoved { .. } => "queue_moved",
            Event::ItemUpdated { .. } => "item_updated",
            Event::Votes { .. } => "votes",
            Event::Chat { .. } => "chat",
            Event::Presence { .. } => "presence",
            Event::Visited { .. } => "visited",
            Event::MemberUpdated { .. } => "member_updated",
            Event::Settings { .. } => "settings",
            Event::Renamed { .. } => "renamed",
            Event::StandingChanged { .. } => "standing",
            Event::Removed { .. } => "removed",
            Event::SyncQuality { .. } => "sync_quality",
        })
        .collect()
}

#[test]
fn tabs_of_one_user_are_one_member_and_leave_waits_for_grace() {
    let mut r = room_with(RoomRules::default()); // 5 s grace
    let ev = r.connect(ANN, name("Ann"), false, t(0.0)).unwrap();
    assert_eq!(kinds(&ev), ["presence", "chat"]);
    assert!(
        r.connect(ANN, name("Ann"), false, t(1.0))
            .unwrap()
            .is_empty()
    );
    assert_eq!(r.member_count(), 1);
    assert!(r.disconnect(ANN, t(2.0)).is_empty());
    assert!(r.disconnect(ANN, t(3.0)).is_empty());
    assert_eq!(r.next_deadline(), Some(t(8.0)));
    // Reconnecting within the grace cancels the leave.
    assert!(
        r.connect(ANN, name("Ann"), false, t(4.0))
            .unwrap()
            .is_empty()
    );
    assert!(r.tick(t(9.0)).is_empty());
    assert_eq!(r.member_count(), 1);
    r.disconnect(ANN, t(10.0));
    assert!(r.tick(t(14.9)).is_empty());
    assert_eq!(kinds(&r.tick(t(15.0))), ["presence", "chat"]);
    assert_eq!(r.member_count(), 0);
}

#[test]
fn a_member_back_after_a_restart_is_present_again_without_a_join_line() {
    let mut r = room_with(RoomRules::default());
    let ev = r.reconnect(ANN, name("Ann"), false, t(0.0)).unwrap();
    assert_eq!(kinds(&ev), ["presence"]);
    assert_eq!(r.member_count(), 1);
    // Leaving later is announced as usual.
    r.disconnect(ANN, t(1.0));
    assert_eq!(kinds(&r.tick(t(6.0))), ["presence", "chat"]);
}

fn viewer(n: u128) -> UserId {
    UserId(Uuid::from_u128(10_000 + n))
}

fn presence_of(events: &[Event]) -> Option<(Vec<UserId>, Vec<UserId>, usize)> {
    events.iter().find_map(|e| match e {
        Event::Presence {
            joined,
            left,
            count,
        } => Some((
            joined.iter().map(|m| m.user_id).collect(),
            left.clone(),
            *count,
        )),
        _ => None,
    })
}

#[test]
fn joins_within_a_batch_are_told_together_when_it_ends() {
    let mut r = room_with(RoomRules {
        leave_grace: Duration::ZERO,
        ..RoomRules::default() // 200 ms batches
    });
    // The first change after a quiet spell goes out at once.
    let ev = r.connect(viewer(1), name("One"), false, t(0.0)).unwrap();
    assert_eq!(presence_of(&ev), Some((vec![viewer(1)], vec![], 1)));
    // The next ones wait for the end of the batch...
    for n in 2..=50 {
        let ev = r
            .connect(viewer(n), name("Some"), false, t(0.001 * n as f64))
            .unwrap();
        assert!(ev.is_empty(), "join {n} waits, line and all");
    }
    r.disconnect(viewer(2), t(0.1));
    assert_eq!(r.next_deadline(), Some(t(0.2)));
    assert!(r.tick(t(0.19)).is_empty());
    // ...and go out together, with their join and leave lines: viewer 2 came and went within
    // the batch, so the list never shows them (their lines are kept).
    let batch = r.tick(t(0.2));
    let kinds = kinds(&batch);
    assert_eq!(kinds[0], "presence");
    assert_eq!(kinds[1..], ["chat"; 50], "49 joins, one leave");
    let (joined, left, count) = presence_of(&batch).unwrap();
    assert_eq!(joined, (3..=50).map(viewer).collect::<Vec<_>>());
    assert!(left.is_empty());
    assert_eq!(count, 49);
    assert_eq!(r.next_deadline(), None);
    assert_eq!(r.member_window().0.len(), 49);
}

#[test]
fn clients_hold_a_window_of_the_first_members_and_page_through_the_rest() {
    let mut r = room();
    r.connect(ANN, name("Ann"), false, t(0.0)).unwrap();
    for n in 0..150 {
        let ev = r.connect(viewer(n), name("Viewer"), false, t(1.0)).unwrap();
        let (joined, _, count) = presence_of(&ev).unwrap();
        // Past the window, a join only changes the count.
        assert_eq!(
            joined.is_empty(),
            n >= MEMBER_WINDOW as u128 - 1,
            "join {n}"
        );
        assert_eq!(count, n as usize + 2);
    }
    // The owner and moderators come first, whenever they arrive.
    let ev = r.connect(MOD, name("Mod"), false, t(2.0)).unwrap();
    let (joined, left, _) = presence_of(&ev).unwrap();
    assert_eq!(joined, [MOD]);
    assert_eq!(left, [viewer(98)], "the last of the window makes room");
    let ev = r.connect(OWNER, name("Owner"), false, t(2.0)).unwrap();
    assert_eq!(presence_of(&ev).unwrap().0, [OWNER]);
    let page = r.member_page(0, 4);
    let ids: Vec<UserId> = page.iter().map(|m| m.user_id).collect();
    assert_eq!(ids, [OWNER, MOD, ANN, viewer(0)]);
    assert_eq!(r.member_page(150, 10).len(), 3);
    assert_eq!(r.members().len(), 153);
    let (window, count) = r.member_window();
    assert_eq!((window.len(), count), (MEMBER_WINDOW, 153));
    // Readiness is told only of members clients hold (it flips for everyone when a video
    // starts); a member who enters the window later comes with theirs.
    let ev = r
        .apply(
            viewer(140),
            Command::Ready {
                ready: false,
                cannot_play: false,
            },
            t(2.5),
        )
        .unwrap();
    assert!(kinds(&ev).iter().all(|k| *k != "member_updated"), "{ev:?}");
    let ev = r
        .apply(
            viewer(3),
            Command::Ready {
                ready: false,
                cannot_play: false,
            },
            t(2.5),
        )
        .unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    // A member of the window who leaves lets the next one in.
    let ev = r.disconnect(ANN, t(3.0));
    let (joined, left, count) = presence_of(&ev).unwrap();
    assert_eq!((joined, left, count), (vec![viewer(97)], vec![ANN], 152));
    // Promoting a viewer from outside brings them into the window.
    let ev = r
        .apply(
            OWNER,
            Command::Promote {
                user_id: viewer(140),
            },
            t(4.0),
        )
        .unwrap();
    let (joined, left, _) = presence_of(&ev).unwrap();
    assert_eq!((joined, left), (vec![viewer(140)], vec![viewer(97)]));
}

#[test]
fn only_a_visit_not_yet_recorded_and_what_the_store_keeps_need_a_write() {
    let mut r = room();
    let ev = r.connect(ANN, name("Ann"), true, t(0.0)).unwrap();
    assert_eq!(kinds(&ev), ["visited", "presence", "chat"]);
    let stored: Vec<&str> = ev
        .iter()
        .filter(|e| e.is_stored())
        .map(|e| kinds(std::slice::from_ref(e))[0])
        .collect();
    assert_eq!(stored, ["visited", "chat"]);
    // A second tab of a returning member writes nothing at all.
    let ev = r.connect(ANN, name("Ann"), false, t(1.0)).unwrap();
    assert!(ev.is_empty());
    // In a big room a returning member's join needs no write (no join line).
    for n in 0..PRESENCE_LINES_MAX_MEMBERS as u128 {
        r.connect(viewer(n), name("Viewer"), false, t(2.0)).unwrap();
    }
    let ev = r.connect(BOB, name("Bob"), false, t(3.0)).unwrap();
    assert!(ev.iter().all(|e| !e.is_stored()), "{ev:?}");
}

#[test]
fn adding_to_an_empty_room_starts_playing_and_autoplay_moves_on() {
    let mut r = joined(&[ANN]);
    let ev = r
        .apply(
            ANN,
            Command::QueueAdd {
                item: item(1, Some(10.0), ANN),
            },
            t(1.0),
        )
        .unwrap();
    assert_eq!(kinds(&ev), ["now_playing", "chat"]);
    assert!(!r.playback().paused);
    let ev = r
        .apply(
            ANN,
            Command::QueueAdd {
                item: item(2, Some(5.0), ANN),
            },
            t(2.0),
        )
        .unwrap();
    assert_eq!(kinds(&ev), ["queue_added"]);
    assert_eq!(r.next_deadline(), Some(t(11.0)));
    assert!(r.tick(t(10.9)).is_empty());
    let ev = r.tick(t(11.0));
    assert_eq!(kinds(&ev), ["now_playing", "chat"]);
    let Event::NowPlaying {
        item,
        previous,
        cause,
        state,
        ..
    } = &ev[0]
    else {
        unreachable!()
    };
    assert_eq!(item.as_ref().unwrap().id, ItemId(Uuid::from_u128(1002)));
    assert_eq!(*previous, Some(ItemId(Uuid::from_u128(1001))));
    assert_eq!(*cause, ItemChangeCause::Ended);
    assert_eq!(
        (state.paused, state.position, state.at),
        (false, 0.0, t(11.0))
    );
    assert!(r.queue().is_empty());
    // The last item ends: nothing plays, paused at zero.
    let ev = r.tick(t(16.0));
    assert_eq!(kinds(&ev), ["now_playing"]);
    assert!(r.current().is_none() && r.playback().paused);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn autoplay_respects_rate_and_pause_and_unknown_durations() {
    let mut r = joined(&[ANN]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, Some(10.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(ANN, Command::SetRate { rate: 2.0 }, t(0.0))
        .unwrap();
    assert_eq!(r.next_deadline(), Some(t(5.0)));
    r.apply(ANN, Command::Pause, t(1.0)).unwrap();
    assert_eq!(r.next_deadline(), None);
    assert!(r.tick(t(100.0)).is_empty());
    // Unknown duration: the server cannot end it until a viewer reports one.
    let mut r = joined(&[ANN]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, None, ANN),
        },
        t(0.0),
    )
    .unwrap();
    assert_eq!(r.next_deadline(), None);
    let ev = r
        .apply(
            ANN,
            Command::ReportDuration {
                item_id: ItemId(Uuid::from_u128(1001)),
                duration: 3.0,
            },
            t(1.0),
        )
        .unwrap();
    assert_eq!(kinds(&ev), ["item_updated"]);
    assert_eq!(r.next_deadline(), Some(t(3.0)));
    // Accepted once.
    let err = r
        .apply(
            ANN,
            Command::ReportDuration {
                item_id: ItemId(Uuid::from_u128(1001)),
                duration: 9.0,
            },
            t(1.0),
        )
        .unwrap_err();
    assert_eq!(err.code(), "duration_known");
}

#[test]
fn playback_commands_compute_positions_from_the_server_clock() {
    let mut r = joined(&[ANN]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, Some(100.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(ANN, Command::Pause, t(4.0)).unwrap();
    assert_eq!(r.playback().position, 4.0);
    // Pausing again changes nothing.
    assert!(r.apply(ANN, Command::Pause, t(5.0)).unwrap().is_empty());
    r.apply(ANN, Command::Seek { position: 500.0 }, t(6.0))
        .unwrap();
    assert_eq!(r.playback().position, 100.0, "clamped to the duration");
    assert_eq!(
        r.apply(ANN, Command::Seek { position: -1.0 }, t(6.0))
            .unwrap_err()
            .code(),
        "invalid_position"
    );
    assert_eq!(
        r.apply(ANN, Command::SetRate { rate: 3.0 }, t(6.0))
            .unwrap_err()
            .code(),
        "invalid_rate"
    );
    // A play starts moving START_LEAD_SECS after the command, from where the room paused.
    r.apply(ANN, Command::Play, t(7.0)).unwrap();
    let started = r.playback();
    assert!(!started.paused);
    assert_eq!(
        (started.position, started.at),
        (100.0, t(7.0).plus_seconds(START_LEAD_SECS))
    );
    r.apply(ANN, Command::Seek { position: 20.0 }, t(8.0))
        .unwrap();
    r.apply(ANN, Command::Pause, t(9.0)).unwrap();
    r.apply(ANN, Command::Play, t(10.0)).unwrap();
    assert_eq!(
        r.playback()
            .position_at(t(10.0).plus_seconds(START_LEAD_SECS)),
        21.0
    );
    assert!((r.playback().position_at(t(11.0)) - (22.0 - START_LEAD_SECS)).abs() < 1e-6);
    // Played again before it starts: nothing changes.
    assert!(r.apply(ANN, Command::Play, t(10.1)).unwrap().is_empty());
    let empty = &mut joined(&[ANN]);
    assert_eq!(
        empty.apply(ANN, Command::Play, t(0.0)).unwrap_err().code(),
        "nothing_playing"
    );
}

#[test]
fn vote_skip_passes_at_the_configured_share() {
    let mut r = joined(&[OWNER, ANN, BOB, MOD]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, Some(100.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    // 4 members at 0.5: two votes needed.
    let ev = r.apply(ANN, Command::VoteSkip, t(1.0)).unwrap();
    assert_eq!(
        ev,
        vec![Event::Votes {
            item_id: ItemId(Uuid::from_u128(1001)),
            votes: 1,
            needed: 2
        }]
    );
    assert!(
        r.apply(ANN, Command::VoteSkip, t(1.0)).unwrap().is_empty(),
        "one vote per user"
    );
    let ev = r.apply(BOB, Command::VoteSkip, t(2.0)).unwrap();
    assert_eq!(kinds(&ev), ["votes", "now_playing"]);
    assert!(r.current().is_none());
    assert_eq!(r.votes(), (0, 2));

    // A voter leaving lowers the bar: 3 members, ratio 1.0 needs 3; two vote, the third leaves.
    let mut r = joined(&[OWNER, ANN, BOB]);
    r.update_settings(
        OWNER,
        &SettingsPatch {
            vote_skip_ratio: Some(1.0),
            ..Default::default()
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, Some(100.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(ANN, Command::VoteSkip, t(1.0)).unwrap();
    r.apply(BOB, Command::VoteSkip, t(1.0)).unwrap();
    assert!(r.current().is_some());
    let ev = r.disconnect(OWNER, t(2.0));
    assert!(kinds(&ev).contains(&"now_playing"), "{:?}", kinds(&ev));
}

#[test]
fn permissions_are_enforced_for_every_command_under_moderators_only_settings() {
    let mut r = joined(&[OWNER, MOD, ANN, BOB]);
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(1, Some(100.0), OWNER),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(2, Some(100.0), OWNER),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(3, Some(100.0), OWNER),
        },
        t(0.0),
    )
    .unwrap();
    let closed = SettingsPatch {
        playback: Some(Who::Moderators),
        queue: Some(Who::Moderators),
        skip_requires_vote: Some(true),
        ..Default::default()
    };
    assert_eq!(
        r.update_settings(ANN, &closed, t(0.0)).unwrap_err().code(),
        "forbidden"
    );
    r.update_settings(MOD, &closed, t(0.0)).unwrap();
    let it2 = ItemId(Uuid::from_u128(1002));
    let viewer_forbidden = [
        Command::Play,
        Command::Pause,
        Command::Seek { position: 1.0 },
        Command::SetRate { rate: 1.5 },
        Command::QueueAdd {
            item: item(9, None, ANN),
        },
        Command::QueueRemove { item_id: it2 },
        Command::QueueMove {
            item_id: it2,
            index: 1,
        },
        Command::Skip,
        Command::Promote { user_id: BOB },
        Command::Demote { user_id: MOD },
        Command::Kick { user_id: BOB },
        Command::Ban { user_id: BOB },
        Command::Unban { user_id: BOB },
        Command::Mute { user_id: BOB },
        Command::Unmute { user_id: BOB },
    ];
    for cmd in viewer_forbidden.clone() {
        assert_eq!(
            r.apply(ANN, cmd.clone(), t(1.0)).unwrap_err().code(),
            "forbidden",
            "{cmd:?}"
        );
    }
    // The moderator may do all of it except managing moderators and acting on the owner.
    for cmd in [
        Command::Pause,
        Command::Play,
        Command::Seek { position: 1.0 },
        Command::SetRate { rate: 1.5 },
        Command::QueueMove {
            item_id: it2,
            index: 1,
        },
        Command::Mute { user_id: BOB },
        Command::Unmute { user_id: BOB },
    ] {
        r.apply(MOD, cmd.clone(), t(1.0))
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    }
    for cmd in [
        Command::Promote { user_id: BOB },
        Command::Kick { user_id: OWNER },
        Command::Mute { user_id: OWNER },
        Command::Ban { user_id: OWNER },
    ] {
        assert_eq!(
            r.apply(MOD, cmd.clone(), t(1.0)).unwrap_err().code(),
            "forbidden",
            "{cmd:?}"
        );
    }
    // Everyone may vote and chat; a non-member may do nothing.
    r.apply(ANN, Command::VoteSkip, t(1.0)).unwrap();
    r.apply(
        ANN,
        Command::Chat {
            text: ChatText::parse("hi").unwrap(),
        },
        t(1.0),
    )
    .unwrap();
    let stranger = UserId(Uuid::from_u128(77));
    assert_eq!(
        r.apply(stranger, Command::VoteSkip, t(1.0))
            .unwrap_err()
            .code(),
        "not_joined"
    );
    // The owner does anything.
    r.apply(OWNER, Command::Promote { user_id: BOB }, t(2.0))
        .unwrap();
    assert_eq!(r.role_of(BOB), Role::Moderator);
    r.apply(OWNER, Command::Kick { user_id: MOD }, t(2.0))
        .unwrap();
    assert!(!r.is_member(MOD));
}

#[test]
fn own_items_can_be_taken_back_in_an_open_room() {
    let mut r = joined(&[ANN, BOB]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, Some(100.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(2, Some(100.0), ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        BOB,
        Command::QueueAdd {
            item: item(3, Some(100.0), BOB),
        },
        t(0.0),
    )
    .unwrap();
    let (i2, i3) = (ItemId(Uuid::from_u128(1002)), ItemId(Uuid::from_u128(1003)));
    assert_eq!(
        r.apply(BOB, Command::QueueRemove { item_id: i2 }, t(1.0))
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert_eq!(
        kinds(
            &r.apply(BOB, Command::QueueRemove { item_id: i3 }, t(1.0))
                .unwrap()
        ),
        ["queue_removed"]
    );
    assert_eq!(
        r.apply(BOB, Command::QueueRemove { item_id: i3 }, t(1.0))
            .unwrap_err()
            .code(),
        "item_not_found"
    );
    // Removing the current item moves on.
    let ev = r
        .apply(
            ANN,
            Command::QueueRemove {
                item_id: ItemId(Uuid::from_u128(1001)),
            },
            t(2.0),
        )
        .unwrap();
    assert_eq!(kinds(&ev), ["now_playing", "chat"]);
    assert_eq!(r.current().unwrap().id, i2);
}

#[test]
fn moving_reports_the_new_order() {
    let mut r = joined(&[ANN]);
    for n in 0..4 {
        r.apply(
            ANN,
            Command::QueueAdd {
                item: item(n, None, ANN),
            },
            t(0.0),
        )
        .unwrap();
    }
    let id = |n: u128| ItemId(Uuid::from_u128(1000 + n));
    let ev = r
        .apply(
            ANN,
            Command::QueueMove {
                item_id: id(3),
                index: 0,
            },
            t(0.0),
        )
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::QueueMoved {
            item_id: id(3),
            index: 0,
            order: vec![id(3), id(1), id(2)]
        }]
    );
    // Out of range moves to the end.
    let ev = r
        .apply(
            ANN,
            Command::QueueMove {
                item_id: id(3),
                index: 99,
            },
            t(0.0),
        )
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::QueueMoved {
            item_id: id(3),
            index: 2,
            order: vec![id(1), id(2), id(3)]
        }]
    );
    assert!(
        r.apply(
            ANN,
            Command::QueueMove {
                item_id: id(3),
                index: 2
            },
            t(0.0)
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn chat_limits_mutes_and_slow_mode() {
    let mut r = joined(&[OWNER, ANN]);
    let line = || Command::Chat {
        text: ChatText::parse("hello").unwrap(),
    };
    for i in 0..5 {
        r.apply(ANN, line(), t(f64::from(i) * 0.1)).unwrap();
    }
    let err = r.apply(ANN, line(), t(1.0)).unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
    r.apply(ANN, line(), t(5.01)).unwrap();

    r.apply(OWNER, Command::Mute { user_id: ANN }, t(6.0))
        .unwrap();
    assert_eq!(r.apply(ANN, line(), t(20.0)).unwrap_err().code(), "muted");
    assert!(r.member(ANN).unwrap().muted);
    r.apply(OWNER, Command::Unmute { user_id: ANN }, t(20.0))
        .unwrap();

    r.update_settings(
        OWNER,
        &SettingsPatch {
            chat_slow_mode_secs: Some(10),
            ..Default::default()
        },
        t(20.0),
    )
    .unwrap();
    r.apply(ANN, line(), t(30.0)).unwrap();
    let err = r.apply(ANN, line(), t(35.0)).unwrap_err();
    assert_eq!(
        (err.code(), err.retry_after()),
        ("slow_mode", Some(Duration::from_secs(5)))
    );
    // Moderators and the owner are exempt from slow mode.
    r.apply(OWNER, line(), t(35.0)).unwrap();
    r.apply(OWNER, line(), t(35.5)).unwrap();
}

#[test]
fn kick_ban_unban() {
    let mut r = joined(&[OWNER, ANN, BOB]);
    let ev = r
        .apply(OWNER, Command::Kick { user_id: ANN }, t(1.0))
        .unwrap();
    assert_eq!(kinds(&ev), ["removed", "presence", "chat"]);
    assert!(!r.is_banned(ANN));
    // Ann's connections close afterwards; that is not a second leave.
    assert!(r.disconnect(ANN, t(1.0)).is_empty());
    r.connect(ANN, name("Ann"), false, t(2.0)).unwrap();
    let ev = r
        .apply(OWNER, Command::Ban { user_id: ANN }, t(3.0))
        .unwrap();
    assert_eq!(kinds(&ev), ["standing", "removed", "presence", "chat"]);
    assert_eq!(
        r.connect(ANN, name("Ann"), false, t(4.0))
            .unwrap_err()
            .code(),
        "banned"
    );
    // Banning an absent user works too, and unban lifts it.
    let carol = UserId(Uuid::from_u128(5));
    assert_eq!(
        kinds(
            &r.apply(OWNER, Command::Ban { user_id: carol }, t(4.0))
                .unwrap()
        ),
        ["standing"]
    );
    assert_eq!(
        kinds(
            &r.apply(OWNER, Command::Unban { user_id: ANN }, t(5.0))
                .unwrap()
        ),
        ["standing"]
    );
    r.connect(ANN, name("Ann"), false, t(6.0)).unwrap();
    assert_eq!(
        r.apply(OWNER, Command::Kick { user_id: carol }, t(6.0))
            .unwrap_err()
            .code(),
        "user_not_found"
    );
    // Muting is for members, as the protocol document says (it answered `ack` before).
    assert_eq!(
        r.apply(OWNER, Command::Mute { user_id: carol }, t(6.0))
            .unwrap_err()
            .code(),
        "user_not_found"
    );
    assert!(
        r.apply(OWNER, Command::Unmute { user_id: carol }, t(6.0))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unavailable_items_leave_the_queue() {
    let mut r = joined(&[ANN]);
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(1, None, ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(2, None, ANN),
        },
        t(0.0),
    )
    .unwrap();
    r.apply(
        ANN,
        Command::QueueAdd {
            item: item(3, None, ANN),
        },
        t(0.0),
    )
    .unwrap();
    let ev = r.item_unavailable(ItemId(Uuid::from_u128(1003)), None, t(1.0));
    assert_eq!(kinds(&ev), ["chat", "queue_removed"]);
    let ev = r.item_unavailable(
        ItemId(Uuid::from_u128(1001)),
        Some("the video cannot be embedded"),
        t(1.0),
    );
    let Event::Chat { line } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(
        line.text
            .ends_with("is unavailable and was removed: the video cannot be embedded"),
        "{}",
        line.text
    );
    assert_eq!(kinds(&ev), ["chat", "now_playing", "chat"]);
    assert!(
        r.item_unavailable(ItemId(Uuid::from_u128(1001)), None, t(1.0))
            .is_empty()
    );
    let ev = r.item_resolved(
        ItemId(Uuid::from_u128(1002)),
        ItemMetadata {
            title: Some("Real title".into()),
            duration: Some(30.0),
            ..Default::default()
        },
    );
    assert_eq!(kinds(&ev), ["item_updated"]);
    assert_eq!(r.current().unwrap().title, "Real title");
}

#[test]
fn renames_and_settings_are_announced() {
    let mut r = joined(&[OWNER, ANN]);
    let ev = r.rename(ANN, name("Annie"), t(1.0));
    assert_eq!(kinds(&ev), ["renamed", "member_updated", "chat"]);
    assert!(r.rename(ANN, name("Annie"), t(1.0)).is_empty());
    let ev = r.set_has_password(OWNER, true).unwrap();
    assert_eq!(
        ev,
        vec![Event::Settings {
            settings: r.settings().clone(),
            has_password: true
        }]
    );
    assert_eq!(
        r.set_has_password(MOD, false).unwrap_err().code(),
        "forbidden"
    );
    let vis = SettingsPatch {
        visibility: Some(Visibility::Private),
        ..Default::default()
    };
    assert_eq!(
        r.update_settings(MOD, &vis, t(1.0)).unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        kinds(&r.update_settings(OWNER, &vis, t(1.0)).unwrap()),
        ["settings"]
    );
    assert!(r.update_settings(OWNER, &vis, t(1.0)).unwrap().is_empty());
}

#[test]
fn wait_for_everyone_holds_the_room_while_a_member_buffers() {
    let mut r = joined(&[OWNER, ANN, BOB]);
    let ready = |r: bool| Command::Ready {
        ready: r,
        cannot_play: false,
    };
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(1, Some(100.0), OWNER),
        },
        t(0.0),
    )
    .unwrap();
    // Without the setting, buffering is shown but does not stop anyone.
    let ev = r.apply(ANN, ready(false), t(1.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    assert!(!r.member(ANN).unwrap().ready);
    assert!(!r.playback().paused);
    // Turning it on while Ann buffers pauses the room (held).
    let on = SettingsPatch {
        wait_for_everyone: Some(true),
        ..Default::default()
    };
    let ev = r.update_settings(OWNER, &on, t(2.0)).unwrap();
    assert_eq!(kinds(&ev), ["settings", "playback"]);
    let Event::Playback {
        cause, state, by, ..
    } = &ev[1]
    else {
        unreachable!()
    };
    assert_eq!(
        (*cause, state.paused, state.position, *by),
        (PlaybackCause::Buffering, true, 2.0, None)
    );
    assert!(r.waiting());
    // Bob buffers too; Ann is ready: still held.
    r.apply(BOB, ready(false), t(3.0)).unwrap();
    let ev = r.apply(ANN, ready(true), t(4.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    assert!(r.playback().paused);
    // Everyone ready: it plays on from where it stopped.
    let ev = r.apply(BOB, ready(true), t(5.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated", "playback"]);
    let Event::Playback { cause, state, .. } = &ev[1] else {
        unreachable!()
    };
    assert_eq!(
        (*cause, state.paused, state.position),
        (PlaybackCause::Ready, false, 2.0)
    );
    assert!(
        state.starts_after(t(5.0)),
        "a held room's release is scheduled like a play"
    );
    assert!(!r.waiting());

    // A play while someone buffers is held, and starts when they are ready.
    r.apply(OWNER, Command::Pause, t(6.0)).unwrap();
    r.apply(ANN, ready(false), t(6.0)).unwrap();
    let ev = r.apply(OWNER, Command::Play, t(7.0)).unwrap();
    assert_eq!(kinds(&ev), ["playback"]);
    assert!(r.playback().paused && r.waiting());
    // A pause while held cancels the wish to play.
    r.apply(OWNER, Command::Pause, t(7.5)).unwrap();
    assert!(!r.waiting());
    assert!(
        r.apply(ANN, ready(true), t(8.0))
            .unwrap()
            .iter()
            .all(|e| !matches!(e, Event::Playback { .. }))
    );
    assert!(r.playback().paused);

    // A buffering member who leaves (or is kicked) no longer holds the room.
    r.apply(OWNER, Command::Play, t(9.0)).unwrap();
    r.apply(BOB, ready(false), t(10.0)).unwrap();
    assert!(r.waiting());
    let ev = r
        .apply(OWNER, Command::Kick { user_id: BOB }, t(11.0))
        .unwrap();
    assert!(kinds(&ev).contains(&"playback"));
    assert!(!r.playback().paused && !r.waiting());
    r.apply(ANN, ready(false), t(12.0)).unwrap();
    let ev = r.disconnect(ANN, t(13.0));
    assert!(kinds(&ev).contains(&"playback"));
    assert!(!r.playback().paused);
}

#[test]
fn a_member_whose_player_cannot_play_is_shown_so_and_not_waited_for() {
    let mut r = joined(&[OWNER, ANN]);
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(1, Some(100.0), OWNER),
        },
        t(0.0),
    )
    .unwrap();
    let on = SettingsPatch {
        wait_for_everyone: Some(true),
        ..Default::default()
    };
    r.update_settings(OWNER, &on, t(0.5)).unwrap();
    let report = |ready, cannot_play| Command::Ready { ready, cannot_play };
    // Ann's player buffers: the room holds for her.
    r.apply(ANN, report(false, false), t(1.0)).unwrap();
    assert!(r.waiting() && r.playback().paused);
    // It cannot play the item (YouTube refuses it to her): everyone sees so, and the room plays
    // on without her, even when her client says it is not ready.
    let ev = r.apply(ANN, report(false, true), t(2.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated", "playback"]);
    let Event::MemberUpdated { member } = &ev[0] else {
        unreachable!()
    };
    assert_eq!((member.ready, member.cannot_play), (true, true));
    assert!(!r.waiting() && !r.playback().paused);
    let told = serde_json::to_value(r.member(ANN).unwrap()).unwrap();
    assert_eq!(told["cannot_play"], true);
    // Said again: nothing to tell.
    assert!(r.apply(ANN, report(true, true), t(2.5)).unwrap().is_empty());
    // The next item plays for her: the mark goes, and the field is left out of her member.
    let ev = r.apply(ANN, report(true, false), t(3.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    assert!(!r.member(ANN).unwrap().cannot_play);
    let told = serde_json::to_value(r.member(ANN).unwrap()).unwrap();
    assert!(
        told.get("cannot_play").is_none(),
        "absent unless set: {told}"
    );
    // The next item: no one is marked until their page says so again.
    r.apply(
        OWNER,
        Command::QueueAdd {
            item: item(2, Some(100.0), OWNER),
        },
        t(3.5),
    )
    .unwrap();
    r.apply(ANN, report(true, true), t(3.6)).unwrap();
    let ev = r.apply(OWNER, Command::Skip, t(3.7)).unwrap();
    assert!(kinds(&ev).contains(&"member_updated"), "{:?}", kinds(&ev));
    assert!(!r.member(ANN).unwrap().cannot_play);
    // A member who leaves takes the mark with them.
    r.apply(ANN, report(true, true), t(4.0)).unwrap();
    r.disconnect(ANN, t(5.0));
    r.connect(ANN, name("Ann"), false, t(6.0)).unwrap();
    assert!(!r.member(ANN).unwrap().cannot_play);
}

#[test]
fn an_upload_that_is_not_playable_yet_holds_the_room_until_it_is() {
    let mut r = joined(&[OWNER, ANN]);
    let upload = UploadMedia {
        upload_id: UploadId(Uuid::from_u128(9)),
        title: "holiday.mov".into(),
        duration: Some(60.0),
        poster: None,
        ready: false,
    };
    let it = QueueItem::for_upload(
        ItemId(Uuid::from_u128(77)),
        &upload,
        ANN,
        &name("Ann"),
        t(0.0),
    );
    assert!(it.awaits_media());
    let ev = r
        .apply(ANN, Command::QueueAdd { item: it }, t(0.0))
        .unwrap();
    assert_eq!(kinds(&ev), ["now_playing", "chat", "playback"]);
    assert!(r.playback().paused && r.waiting());
    assert_eq!(r.next_deadline(), None, "nothing ends while it waits");
    assert_eq!(r.upload_ids(), vec![upload.upload_id]);
    let ready = UploadMedia {
        poster: Some("/media/uploads/x/poster.jpg".into()),
        ready: true,
        ..upload
    };
    let ev = r.upload_ready(&ready, t(5.0));
    assert_eq!(kinds(&ev), ["item_updated", "playback"]);
    assert!(!r.playback().paused && !r.waiting());
    assert_eq!(r.playback().position, 0.0, "it starts from the beginning");
    assert_eq!(
        r.current().unwrap().thumbnail.as_deref(),
        Some("/media/uploads/x/poster.jpg")
    );
    assert!(r.upload_ready(&ready, t(6.0)).is_empty());
}

#[test]
fn an_upload_that_will_never_play_leaves_the_queue_and_the_room_moves_on() {
    let mut r = joined(&[OWNER, ANN]);
    let upload = UploadMedia {
        upload_id: UploadId(Uuid::from_u128(9)),
        title: "broken.mov".into(),
        duration: Some(60.0),
        poster: None,
        ready: false,
    };
    for n in [77, 78] {
        let it = QueueItem::for_upload(
            ItemId(Uuid::from_u128(n)),
            &upload,
            ANN,
            &name("Ann"),
            t(0.0),
        );
        r.apply(ANN, Command::QueueAdd { item: it }, t(0.0))
            .unwrap();
    }
    let other = item(79, Some(30.0), ANN);
    let other_id = other.id;
    r.apply(ANN, Command::QueueAdd { item: other }, t(0.0))
        .unwrap();
    assert!(r.waiting());
    let ev = r.upload_gone(upload.upload_id, t(3.0));
    assert!(
        kinds(&ev).contains(&"now_playing") && kinds(&ev).contains(&"queue_removed"),
        "{:?}",
        kinds(&ev)
    );
    assert_eq!(r.current().map(|i| i.id), Some(other_id));
    assert!(r.upload_ids().is_empty() && !r.waiting());
    assert!(r.upload_gone(upload.upload_id, t(4.0)).is_empty());
}

// ---- Model-based property test ----------------------------------------------------------------

/// What a client knows, built only from the broadcast events, the way the web client builds it.
#[derive(Debug, Default, Clone, PartialEq)]
struct ClientModel {
    current: Option<QueueItem>,
    playback: Option<PlaybackState>,
    queue: Vec<QueueItem>,
    members: BTreeMap<UserId, MemberView>,
}

impl ClientModel {
    fn from_room(r: &Room) -> Self {
        ClientModel {
            current: r.current().cloned(),
            playback: Some(*r.playback()),
            queue: r.queue().to_vec(),
            members: r
                .member_window()
                .0
                .into_iter()
                .map(|m| (m.user_id, m))
                .collect(),
        }
    }

    fn apply(&mut self, e: &Event) {
        match e {
            Event::Playback { state, .. } => self.playback = Some(*state),
            Event::NowPlaying { item, state, .. } => {
                if let Some(item) = item {
                    self.queue.retain(|i| i.id != item.id);
                }
                self.current = item.clone();
                self.playback = Some(*state);
            }
            Event::QueueAdded { item, index } => self.queue.insert(*index, item.clone()),
            Event::QueueRemoved { item_id, .. } => self.queue.retain(|i| i.id != *item_id),
            Event::QueueMoved { item_id, index, .. } => {
                let from = self.queue.iter().position(|i| i.id == *item_id).unwrap();
                let it = self.queue.remove(from);
                self.queue.insert(*index, it);
            }
            Event::ItemUpdated { item } => {
                if let Some(c) = self.current.as_mut().filter(|c| c.id == item.id) {
                    *c = item.clone();
                }
                for q in self.queue.iter_mut().filter(|q| q.id == item.id) {
                    *q = item.clone();
                }
            }
            Event::Presence { joined, left, .. } => {
                for id in left {
                    self.members.remove(id);
                }
                for member in joined {
                    self.members.insert(member.user_id, member.clone());
                }
            }
            Event::MemberUpdated { member } => {
                // Members outside the window are not held.
                if let Some(held) = self.members.get_mut(&member.user_id) {
                    *held = member.clone();
                }
            }
            Event::Votes { .. }
            | Event::Chat { .. }
            | Event::Settings { .. }
            | Event::SyncQuality { .. } => {}
            Event::Renamed { .. }
            | Event::StandingChanged { .. }
            | Event::Removed { .. }
            | Event::Visited { .. } => {
                panic!("not broadcast: {e:?}")
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Connect(usize),
    Disconnect(usize),
    Cmd(usize, u8, f64),
    Tick,
    WaitForEveryone(bool),
    UploadReady(u128),
    UploadGone(u128),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..5usize).prop_map(Step::Connect),
        (0..5usize).prop_map(Step::Disconnect),
        (0..5usize, 0u8..28, 0.0..50.0f64).prop_map(|(u, c, x)| Step::Cmd(u, c, x)),
        Just(Step::Tick),
        any::<bool>().prop_map(Step::WaitForEveryone),
        (0..3u128).prop_map(Step::UploadReady),
        (0..3u128).prop_map(Step::UploadGone),
    ]
}

fn users() -> [UserId; 5] {
    [OWNER, MOD, ANN, BOB, UserId(Uuid::from_u128(5))]
}

fn command(room: &Room, kind: u8, x: f64, next_item: &mut u128, by: UserId) -> Command {
    let pick_item = || {
        let ids: Vec<ItemId> = room
            .current()
            .into_iter()
            .chain(room.queue())
            .map(|i| i.id)
            .collect();
        ids.get(x as usize % ids.len().max(1))
            .copied()
            .unwrap_or(ItemId(Uuid::from_u128(4242)))
    };
    let pick_user = users()[x as usize % 5];
    match kind {
        0 => Command::Play,
        1 => Command::Pause,
        2 => Command::Seek {
            position: x * 3.0 - 10.0,
        },
        3 => Command::SetRate {
            rate: 0.2 + x / 25.0,
        },
        4..=6 => {
            *next_item += 1;
            let duration = (x > 5.0).then_some(x);
            Command::QueueAdd {
                item: item(*next_item, duration, by),
            }
        }
        7 => Command::QueueRemove {
            item_id: pick_item(),
        },
        8 => Command::QueueMove {
            item_id: pick_item(),
            index: x as usize % 4,
        },
        9 => Command::Skip,
        10 | 11 => Command::VoteSkip,
        12 => Command::Chat {
            text: ChatText::parse("hi").unwrap(),
        },
        13 => Command::Promote { user_id: pick_user },
        14 => Command::Demote { user_id: pick_user },
        15 => Command::Kick { user_id: pick_user },
        16 => Command::Ban { user_id: pick_user },
        17 => Command::Unban { user_id: pick_user },
        18 => Command::Mute { user_id: pick_user },
        20 => Command::Ready {
            ready: x > 25.0,
            cannot_play: x > 45.0,
        },
        27 => Command::SyncReport {
            p50_ms: x,
            p95_ms: x * 2.0,
        },
        26 => Command::Desktop {
            desktop: Desktop {
                client: "Syncplay".into(),
                file: Some(DesktopFile {
                    name: "film.mkv".into(),
                    duration: Some(x),
                    size: None,
                }),
            },
        },
        24 => {
            *next_item += 1;
            let upload = UploadMedia {
                upload_id: UploadId(Uuid::from_u128(500 + (x as u128 % 3))),
                title: "upload".into(),
                duration: Some(20.0),
                poster: None,
                ready: x > 40.0,
            };
            Command::QueueAdd {
                item: QueueItem::for_upload(
                    ItemId(Uuid::from_u128(1000 + *next_item)),
                    &upload,
                    by,
                    &name("up"),
                    t(0.0),
                ),
            }
        }
        21 => Command::Ready {
            ready: true,
            cannot_play: false,
        },
        22 => Command::SetRate { rate: 1.0 },
        23 => Command::Play,
        _ => Command::ReportDuration {
            item_id: pick_item(),
            duration: x,
        },
    }
}

proptest! {
    // 400 cases by default; PROPTEST_CASES=20000 for a deeper run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400)
    ))]

    /// Any sequence of presence changes, commands and ticks keeps the room consistent, and a
    /// client that starts from a snapshot and applies the broadcast events ends up exactly where
    /// the server is.
    #[test]
    fn room_invariants_and_event_replay(
        steps in prop::collection::vec((step(), 0u32..3_000_000), 1..120),
        grace in prop_oneof![Just(0u64), Just(2u64)],
    ) {
        let mut r = room_with(RoomRules { leave_grace: Duration::from_secs(grace), ..RoomRules::default() });
        let mut client = ClientModel::from_room(&r);
        let mut now = t(0.0);
        let mut conns = [0u32; 5];
        let mut next_item = 0u128;
        for (step, gap) in steps {
            now = ServerTime(now.0 + i64::from(gap));
            let events = match step {
                Step::Connect(u) => match r.connect(users()[u], name(&format!("u{u}")), false, now) {
                    Ok(ev) => { conns[u] += 1; ev }
                    Err(e) => { prop_assert_eq!(e.code(), "banned"); vec![] }
                },
                Step::Disconnect(u) if conns[u] > 0 => { conns[u] -= 1; r.disconnect(users()[u], now) }
                Step::Disconnect(_) => vec![],
                Step::Cmd(u, kind, x) => {
                    let by = users()[u];
                    let cmd = command(&r, kind, x, &mut next_item, by);
                    r.apply(by, cmd, now).unwrap_or_default()
                }
                Step::Tick => r.tick(now),
                Step::UploadReady(k) => {
                    let media = UploadMedia {
                        upload_id: UploadId(Uuid::from_u128(500 + k)),
                        title: "upload".into(),
                        duration: Some(20.0),
                        poster: Some("/poster.jpg".into()),
                        ready: true,
                    };
                    r.upload_ready(&media, now)
                }
                Step::UploadGone(k) => r.upload_gone(UploadId(Uuid::from_u128(500 + k)), now),
                Step::WaitForEveryone(on) => {
                    let patch = SettingsPatch { wait_for_everyone: Some(on), ..Default::default() };
                    r.update_settings(OWNER, &patch, now).unwrap()
                }
            };
            for e in &events {
                if let Event::Removed { user_id, .. } = e {
                    // The server closes all connections of a removed member.
                    let u = users().iter().position(|x| x == user_id).unwrap();
                    conns[u] = 0;
                }
                if e.is_broadcast() { client.apply(e); }
            }
            // Invariants.
            prop_assert_eq!(&client, &ClientModel::from_room(&r));
            // A tick at the next deadline does what was due: the actor, which sleeps until it,
            // never wakes again and again for the same instant.
            if let Some(due) = r.next_deadline() {
                let mut woken = r.clone();
                let at = due.max(now);
                woken.tick(at);
                prop_assert!(woken.next_deadline().is_none_or(|d| d > at), "{:?} still due after a tick at {:?}", woken.next_deadline(), at);
            }
            // Joins and leaves reach clients within one presence batch: once it is out, clients
            // hold every member (five users: the window is all of them) as the room has them.
            let mut settled = r.clone();
            let mut told = client.clone();
            let mut at = now;
            for _ in 0..10 {
                if !settled.presence_pending { break; }
                // (A tick can make more changes, such as a leave whose grace ran out.)
                let due = settled.presence_due().unwrap().max(at);
                prop_assert!(due <= at + Duration::from_millis(200), "a presence change waits one batch at most");
                for e in settled.tick(due) {
                    if e.is_broadcast() { told.apply(&e); }
                }
                at = due;
            }
            prop_assert!(!settled.presence_pending);
            let everyone: BTreeMap<UserId, MemberView> =
                settled.members().into_iter().map(|m| (m.user_id, m)).collect();
            prop_assert_eq!(&told.members, &everyone);
            let p = r.playback();
            prop_assert!(p.position >= 0.0 && p.rate >= 0.25 && p.rate <= 2.0);
            if r.current().is_none() { prop_assert!(p.paused); }
            // "Wait for everyone": never playing while a member buffers; held means paused, and
            // only while there is someone to wait for.
            let someone_buffering = r.members().iter().any(|m| !m.ready);
            // A player that cannot play is never waited for.
            prop_assert!(r.members().iter().all(|m| m.ready || !m.cannot_play), "waiting for a player that cannot play");
            if r.settings().wait_for_everyone && someone_buffering {
                prop_assert!(p.paused, "playing while a member buffers");
            }
            let awaits_upload = r.current().is_some_and(QueueItem::awaits_media);
            if awaits_upload {
                prop_assert!(p.paused, "playing an upload that is not ready");
            }
            if r.waiting() {
                prop_assert!(p.paused);
                prop_assert!(
                    (r.settings().wait_for_everyone && someone_buffering) || awaits_upload,
                    "held for nothing"
                );
            }
            let mut ids: Vec<ItemId> = r.queue().iter().map(|i| i.id).collect();
            ids.extend(r.current().map(|c| c.id));
            let n = ids.len();
            ids.sort(); ids.dedup();
            prop_assert_eq!(ids.len(), n, "item ids are unique");
            for u in users() {
                if r.is_banned(u) { prop_assert!(!r.is_member(u)); }
            }
            let (votes, needed) = r.votes();
            prop_assert!(votes < needed || r.current().is_none() || votes == 0);
            if let Some(deadline) = r.next_deadline() {
                // Once ticked at its deadline, an item never plays past its end.
                let mut probe = r.clone();
                let mut later = deadline.max(now);
                probe.tick(later);
                later = ServerTime(later.0 + 1);
                if let Some(d) = probe.current().and_then(|c| c.duration)
                    && probe.next_deadline().is_some_and(|nd| nd > later) {
                    prop_assert!(probe.playback().position_at(later) <= d + 1e-6);
                }
            }
        }
    }
}

#[test]
fn a_desktop_player_and_its_file_are_on_the_member_and_go_with_them() {
    let mut r = joined(&[OWNER, ANN]);
    let desktop = |name: &str, duration: f64| Command::Desktop {
        desktop: Desktop {
            client: "  Syncplay 1.6.9\u{7}".into(),
            file: Some(DesktopFile {
                name: name.into(),
                duration: Some(duration),
                size: Some(1234),
            }),
        },
    };
    let ev = r.apply(ANN, desktop("film.mkv", 100.0), t(1.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    let seen = r.member(ANN).unwrap().desktop.unwrap();
    assert_eq!(
        seen.client, "Syncplay 1.6.9",
        "trimmed, control characters dropped"
    );
    assert_eq!(seen.file.as_ref().unwrap().duration, Some(100.0));
    // The same report again is no news.
    assert!(
        r.apply(ANN, desktop("film.mkv", 100.0), t(2.0))
            .unwrap()
            .is_empty()
    );
    // A long name is cut; a duration that is no length is dropped, not refused.
    r.apply(ANN, desktop(&"x".repeat(1000), f64::NAN), t(3.0))
        .unwrap();
    let file = r.member(ANN).unwrap().desktop.unwrap().file.unwrap();
    assert_eq!(file.name.chars().count(), DESKTOP_FILE_NAME_MAX_CHARS);
    assert_eq!(file.duration, None);
    // Browser members have none; a member who leaves takes theirs along.
    assert!(r.member(OWNER).unwrap().desktop.is_none());
    r.disconnect(ANN, t(4.0));
    r.connect(ANN, name("ann"), false, t(5.0)).unwrap();
    assert!(r.member(ANN).unwrap().desktop.is_none());
    // Only members may say it.
    assert_eq!(
        r.apply(BOB, desktop("a", 1.0), t(6.0)),
        Err(CommandError::NotAMember)
    );
}

#[test]
fn a_desktop_file_mismatches_only_on_two_known_durations_a_second_apart() {
    let with = |duration: Option<f64>| Desktop {
        client: "Syncplay".into(),
        file: Some(DesktopFile {
            name: "f".into(),
            duration,
            size: None,
        }),
    };
    assert!(!with(Some(100.0)).mismatch(Some(100.9)));
    assert!(!with(Some(100.0)).mismatch(Some(101.0)));
    assert!(with(Some(100.0)).mismatch(Some(101.5)));
    assert!(with(Some(100.0)).mismatch(Some(98.0)));
    assert!(!with(None).mismatch(Some(98.0)));
    assert!(!with(Some(100.0)).mismatch(None));
    let no_file = Desktop {
        client: "Syncplay".into(),
        file: None,
    };
    assert!(!no_file.mismatch(Some(5.0)));
}

/// The one `SyncQuality` of `ev`: its members and worst p95.
fn quality(ev: &[Event]) -> (&[MemberSync], Option<f64>) {
    match ev {
        [
            Event::SyncQuality {
                members,
                worst_p95_ms,
            },
        ] => (members, *worst_p95_ms),
        _ => panic!("{ev:?}"),
    }
}

#[test]
fn sync_reports_are_checked_limited_and_told_at_most_every_two_seconds() {
    let mut r = joined(&[OWNER, ANN, BOB]);
    let report = |p50: f64, p95: f64| Command::SyncReport {
        p50_ms: p50,
        p95_ms: p95,
    };
    // Nonsense is refused.
    for (p50, p95) in [
        (-1.0, 2.0),
        (5.0, 2.0),
        (f64::NAN, 1.0),
        (1.0, f64::INFINITY),
        (1.0, 1e9),
    ] {
        assert_eq!(
            r.apply(ANN, report(p50, p95), t(1.0)),
            Err(CommandError::InvalidSyncReport),
            "{p50} {p95}"
        );
    }
    // The first report goes out at once, with the worst p95.
    let ev = r.apply(ANN, report(3.0, 9.0), t(1.0)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].user_id, members[0].p95_ms), (ANN, 9.0));
    assert_eq!(worst_p95_ms, Some(9.0));
    // Another member's, within 2 s of it: kept, told when those 2 s are up (not with whichever
    // report comes after them).
    assert_eq!(
        r.next_deadline(),
        Some(t(16.0)),
        "when Ann's report goes stale"
    );
    assert!(r.apply(BOB, report(1.0, 20.0), t(1.5)).unwrap().is_empty());
    assert_eq!(r.next_deadline(), Some(t(3.0)));
    // One member may not report more often than every 2 s.
    assert!(matches!(
        r.apply(ANN, report(1.0, 2.0), t(2.0)),
        Err(CommandError::RateLimited { .. })
    ));
    assert!(r.tick(t(2.9)).is_empty());
    let ev = r.tick(t(3.0));
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(members.len(), 2);
    assert_eq!(worst_p95_ms, Some(20.0));
    assert_eq!(
        r.next_deadline(),
        Some(t(16.0)),
        "nothing more to tell until then"
    );
    assert!(r.tick(t(5.0)).is_empty());
    let ev = r.apply(OWNER, report(2.0, 4.0), t(5.1)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(members.len(), 3);
    assert_eq!(worst_p95_ms, Some(20.0));
    // Stale reports (15 s) and members who left no longer count.
    r.disconnect(BOB, t(4.0));
    let ev = r.apply(ANN, report(1.0, 2.0), t(21.0)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(
        members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![ANN]
    );
    assert_eq!(worst_p95_ms, Some(2.0));
    // Told, not stored.
    assert!(ev.iter().all(|e| e.is_broadcast() && !e.is_stored()));
}

#[test]
fn a_report_that_goes_stale_drops_out_when_it_does() {
    let mut r = joined(&[OWNER, ANN]);
    let report = |p50: f64, p95: f64| Command::SyncReport {
        p50_ms: p50,
        p95_ms: p95,
    };
    let ids = |members: &[MemberSync]| members.iter().map(|m| m.user_id).collect::<Vec<_>>();
    r.apply(OWNER, report(1.0, 4.0), t(1.0)).unwrap();
    r.apply(ANN, report(2.0, 9.0), t(4.0)).unwrap();
    // The room pauses; Ann's player stops reporting first. Each figure drops out 15 s after it
    // came, without anyone reporting.
    assert_eq!(r.next_deadline(), Some(t(16.0)));
    let ev = r.tick(t(16.0));
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(ids(members), [ANN]);
    assert_eq!(worst_p95_ms, Some(9.0));
    assert_eq!(r.next_deadline(), Some(t(19.0)));
    let ev = r.tick(t(19.0));
    let (members, worst_p95_ms) = quality(&ev);
    assert!(members.is_empty());
    assert_eq!(worst_p95_ms, None);
    assert_eq!(r.next_deadline(), None, "nothing left to go stale");
    // Two going stale within the room's interval go out together, when it ends.
    r.apply(OWNER, report(1.0, 4.0), t(30.0)).unwrap();
    r.apply(ANN, report(1.0, 4.0), t(30.5)).unwrap();
    r.tick(t(32.0));
    assert_eq!(r.next_deadline(), Some(t(45.0)));
    r.tick(t(45.0));
    assert_eq!(r.next_deadline(), Some(t(47.0)));
    let ev = r.tick(t(47.0));
    assert!(quality(&ev).0.is_empty());
    assert_eq!(r.next_deadline(), None);
    // A member who reports again is not dropped when the report before goes stale: the room
    // wakes then (it does not look at every report after every message), and tells nothing.
    r.apply(OWNER, report(1.0, 4.0), t(60.0)).unwrap();
    r.apply(OWNER, report(1.0, 5.0), t(65.0)).unwrap();
    assert!(r.tick(t(75.0)).is_empty());
    assert_eq!(r.next_deadline(), Some(t(80.0)));
    assert_eq!(quality(&r.tick(t(80.0))).1, None);
}

#[test]
fn a_sync_report_is_withdrawn_while_its_player_does_not_play_the_room() {
    let mut r = joined(&[OWNER, ANN, BOB]);
    let report = |p50: f64, p95: f64| Command::SyncReport {
        p50_ms: p50,
        p95_ms: p95,
    };
    let ready = |ready, cannot_play| Command::Ready { ready, cannot_play };
    let ids = |members: &[MemberSync]| members.iter().map(|m| m.user_id).collect::<Vec<_>>();
    r.apply(BOB, report(1.0, 4.0), t(1.0)).unwrap();
    r.apply(ANN, report(3.0, 9.0), t(1.5)).unwrap();
    // Ann's player buffers: her offset and her p95 are told no more (the room's quality goes
    // out with it, 2 s after the last).
    let ev = r.apply(ANN, ready(false, false), t(3.5)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated", "sync_quality"]);
    let (members, worst_p95_ms) = quality(&ev[1..]);
    assert_eq!(ids(members), [BOB]);
    assert_eq!(worst_p95_ms, Some(4.0));
    // A report of hers on its way meanwhile counts for nothing, and keeps her rate limit.
    r.apply(ANN, report(2.0, 2.0), t(4.0)).unwrap();
    assert!(matches!(
        r.apply(ANN, report(2.0, 2.0), t(4.5)),
        Err(CommandError::RateLimited { .. })
    ));
    let ev = r.apply(BOB, report(1.0, 5.0), t(6.0)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(ids(members), [BOB]);
    assert_eq!(worst_p95_ms, Some(5.0));
    // She plays again: her next report counts.
    r.apply(ANN, ready(true, false), t(6.5)).unwrap();
    let ev = r.apply(ANN, report(2.0, 7.0), t(8.5)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(members.len(), 2);
    assert_eq!(worst_p95_ms, Some(7.0));
    // Her player cannot play the next item: withdrawn again (told 2 s after the last quality).
    let ev = r.apply(ANN, ready(true, true), t(9.0)).unwrap();
    assert_eq!(kinds(&ev), ["member_updated"]);
    assert_eq!(r.next_deadline(), Some(t(10.5)));
    let ev = r.tick(t(10.5));
    let (members, worst_p95_ms) = quality(&ev);
    assert_eq!(ids(members), [BOB]);
    assert_eq!(worst_p95_ms, Some(5.0));
    // A desktop viewer's "not ready" is its user's choice in Syncplay, which plays on: kept.
    let desktop = Command::Desktop {
        desktop: Desktop {
            client: "Syncplay 1.7.3".into(),
            file: None,
        },
    };
    r.apply(OWNER, desktop, t(11.0)).unwrap();
    r.apply(OWNER, report(2.0, 6.0), t(11.0)).unwrap();
    r.apply(OWNER, ready(false, false), t(12.0)).unwrap();
    let ev = r.apply(OWNER, report(2.0, 8.0), t(13.0)).unwrap();
    let (members, worst_p95_ms) = quality(&ev);
    assert!(
        members
            .iter()
            .any(|m| m.user_id == OWNER && m.p95_ms == 8.0)
    );
    assert_eq!(worst_p95_ms, Some(8.0));
}

#[test]
fn a_big_room_is_told_its_sync_quality_less_often() {
    // 2 s while the entries delivered stay within 2,500 a second, then as long as that takes,
    // at most 10 s.
    assert_eq!(sync_quality_interval(0, 0), SYNC_QUALITY_INTERVAL);
    assert_eq!(sync_quality_interval(3, 3), SYNC_QUALITY_INTERVAL);
    assert_eq!(sync_quality_interval(50, 50), SYNC_QUALITY_INTERVAL);
    assert_eq!(sync_quality_interval(100, 100), Duration::from_secs(4));
    assert_eq!(sync_quality_interval(1000, 100), SYNC_QUALITY_INTERVAL_MAX);
    assert_eq!(
        sync_quality_interval(usize::MAX, usize::MAX),
        SYNC_QUALITY_INTERVAL_MAX
    );
    // A room of 100, each member reporting every 5 s, one report every 50 ms in all.
    let users: Vec<UserId> = (0..100)
        .map(|i| UserId(Uuid::from_u128(1000 + i)))
        .collect();
    let mut r = joined(&users);
    let mut told = Vec::new();
    for k in 0..600u32 {
        let at = f64::from(k) * 0.05;
        let report = Command::SyncReport {
            p50_ms: 1.0,
            p95_ms: 4.0 + f64::from(k % 7),
        };
        let ev = r.apply(users[k as usize % 100], report, t(at)).unwrap();
        if !ev.is_empty() {
            told.push((at, quality(&ev).0.len()));
        }
    }
    // Every 2 s while few have reported, then every 4 s with all 100 in it.
    let gaps: Vec<f64> = told.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|g| *g >= 2.0 - 1e-9), "{told:?}");
    assert!(told.iter().skip(3).all(|(_, n)| *n == 100), "{told:?}");
    assert!(
        gaps.iter()
            .skip(3)
            .all(|g| (4.0 - 1e-9..4.0 + 0.05 + 1e-9).contains(g)),
        "{told:?}"
    );
    assert!(told.len() >= 8, "{told:?}");
}
