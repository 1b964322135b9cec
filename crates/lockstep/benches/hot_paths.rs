//! Micro-benchmarks of the hot paths, so that a regression shows without a full load test:
//! encoding a room event, handing one to 500 attached viewers (without the sockets' `send`s),
//! and the group commit of 1,000 events (500 rooms, a chat line and a seek each) into SQLite.
//!
//! `cargo bench -p lockstep --bench hot_paths`

use criterion::{Criterion, criterion_group, criterion_main};
use lockstep::bus::{Deliver, Outbound, RoomBus};
use lockstep::metrics::Metrics;
use lockstep::store::Store;
use lockstep::store::rooms::RoomRow;
use lockstep::store::users::User;
use lockstep::store::writer::EventWriter;
use lockstep_core::ids::{RoomId, UserId};
use lockstep_core::invite::InviteKey;
use lockstep_core::names::{DisplayName, RoomName};
use lockstep_core::playback::PlaybackState;
use lockstep_core::protocol::{ChatLine, ServerFrame};
use lockstep_core::room::{Event, NewChatLine, PlaybackCause};
use lockstep_core::settings::{RoomSettings, Visibility};
use lockstep_core::time::ServerTime;
use std::hint::black_box;
use std::sync::Arc;
use uuid::Uuid;

fn chat_frame(seq: u64) -> ServerFrame {
    ServerFrame::Chat {
        seq,
        line: ChatLine {
            id: seq as i64,
            user_id: Some(UserId(Uuid::now_v7())),
            name: Some("Ann".into()),
            text: "that scene was something else".into(),
            system: None,
            at: ServerTime(1_764_460_000_000_000),
        },
    }
}

fn encode(c: &mut Criterion) {
    let frame = chat_frame(41);
    c.bench_function("encode a chat event", |b| {
        b.iter(|| serde_json::to_string(black_box(&frame)).unwrap())
    });
}

/// A viewer's socket that takes everything (the bench measures the room's side: framing once,
/// each subscription's lock and hand-off; the `send` itself is the kernel's).
struct Taker(std::sync::atomic::AtomicUsize);

impl Deliver for Taker {
    fn events(&self, wire: &bytes::Bytes) -> bool {
        self.0
            .fetch_add(wire.len(), std::sync::atomic::Ordering::Relaxed);
        true
    }
    fn control(&self, _: Outbound) {}
}

fn broadcast(c: &mut Criterion) {
    let bus = RoomBus::new();
    let viewers: Vec<_> = (0..500)
        .map(|_| {
            let subscription = bus.subscribe();
            subscription
                .attach(Arc::new(Taker(Default::default())), 0)
                .unwrap();
            subscription
        })
        .collect();
    let text: tungstenite::Utf8Bytes = serde_json::to_string(&chat_frame(1)).unwrap().into();
    let mut seq = 0;
    c.bench_function("broadcast one event to 500 viewers", |b| {
        b.iter(|| {
            seq += 1;
            black_box(bus.send_events(&[(seq, text.clone())], std::time::Instant::now()))
        })
    });
    drop(viewers);
}

fn group_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let (writer, rooms) = runtime.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        let owner = User {
            id: UserId(Uuid::now_v7()),
            name: DisplayName::parse("Ann").unwrap(),
        };
        store.create_user(&owner, ServerTime(0)).await.unwrap();
        let mut rooms = Vec::new();
        for n in 0..500u32 {
            let mut key = [0u8; 18];
            key[..16].copy_from_slice(Uuid::now_v7().as_bytes());
            let row = RoomRow {
                id: RoomId(Uuid::now_v7()),
                owner: owner.id,
                settings: RoomSettings::new(
                    RoomName::parse(&format!("room {n}")).unwrap(),
                    Visibility::Public,
                    0.5,
                ),
                password_hash: None,
                invite_key: InviteKey::from_bytes(key),
                current_item_id: None,
                paused: true,
                position: 0.0,
                rate: 1.0,
                created: ServerTime::from_millis(1),
                active: ServerTime::from_millis(1),
            };
            store.create_room(&row).await.unwrap();
            rooms.push(row.id);
        }
        (EventWriter::start(store, Metrics::new()), rooms)
    });
    let mut group = c.benchmark_group("group commit");
    group.sample_size(20);
    group.bench_function("1,000 events from 500 rooms", |b| {
        b.to_async(&runtime).iter(|| async {
            let writes = rooms.iter().map(|&room| {
                let events = vec![
                    Event::Chat {
                        line: NewChatLine {
                            user_id: None,
                            name: Some("Ann".into()),
                            text: "that scene was something else".into(),
                            system: None,
                            at: ServerTime(1),
                        },
                    },
                    Event::Playback {
                        item_id: None,
                        state: PlaybackState::paused_at(12.5, ServerTime::from_millis(5)),
                        cause: PlaybackCause::Seek,
                        by: None,
                    },
                ];
                writer.write(room, None, events, ServerTime::from_millis(5))
            });
            for (_, written) in futures_util::future::join_all(writes).await {
                written.unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, encode, broadcast, group_commit);
criterion_main!(benches);
