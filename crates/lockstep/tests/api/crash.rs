//! Crash recovery under load: rooms are flooded with chat, queue changes and uploads while the
//! real server is killed with SIGKILL at random moments, 20 times, and restarted on the same data.
//! Every acknowledged chat line and queue change, and every upload whose last byte was
//! acknowledged, must be there afterwards, exactly once. Several rooms are flooded at once, so
//! that the group commit writes many rooms' events per transaction when the kill comes.

use crate::helpers::start_binary_with;
use crate::uploads::clip;
use lockstep_client::Api;
use lockstep_core::ids::{ItemId, RoomId};
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KILLS: usize = 20;

/// Rooms flooded at once.
const ROOMS: usize = 4;

/// The server's limits lifted: the flood is one user, as fast as the server acknowledges.
const UNLIMITED: &[&str] = &[
    "--chat-rate-lines",
    "1000000",
    "--limit-chat",
    "off",
    "--ws-frames-per-sec",
    "100000",
    "--ws-frames-burst",
    "100000",
    "--limit-uploads",
    "off",
    "--limit-requests",
    "off",
];

/// What the server acknowledged.
#[derive(Default)]
struct Acked {
    chat: Vec<String>,
    added: Vec<ItemId>,
    /// Removals sent: applied or not, when the server died before answering.
    removing: HashSet<ItemId>,
    removed: HashSet<ItemId>,
    uploads: Vec<String>,
}

/// Sends chat lines and queue changes until the connection dies; records what was acked.
async fn flood(api: Api, room: RoomId, round: usize, acked: Arc<Mutex<Acked>>) {
    let Ok((mut v, _)) = api.join(room).await else {
        return;
    };
    for n in 0.. {
        let outcome = match n % 6 {
            // Queue changes: add, and remove an upcoming item added earlier.
            2 => {
                let url = format!("http://127.0.0.1:9/r{round}-{n}.mp4");
                v.command(|id| ClientFrame::QueueAdd { id, url }).await
            }
            5 => {
                let target = {
                    let a = acked.lock().unwrap();
                    // Never the first item ever added: it is the current one.
                    a.added
                        .iter()
                        .skip(1)
                        .find(|i| !a.removing.contains(i))
                        .copied()
                };
                let Some(item_id) = target else { continue };
                acked.lock().unwrap().removing.insert(item_id);
                match v
                    .command(|id| ClientFrame::QueueRemove { id, item_id })
                    .await
                {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().removed.insert(item_id);
                        continue;
                    }
                    Ok(Err(_)) => continue,
                    Err(_) => return,
                }
            }
            _ => {
                let text = format!("round {round} line {n}");
                match v
                    .command(|id| ClientFrame::Chat {
                        id,
                        text: text.clone(),
                    })
                    .await
                {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().chat.push(text);
                        continue;
                    }
                    Ok(Err(_)) => continue,
                    Err(_) => return,
                }
            }
        };
        match outcome {
            Ok(Ok(ServerFrame::Ack {
                item_id: Some(item),
                ..
            })) => acked.lock().unwrap().added.push(item),
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Uploads the clip in one PATCH; records it when the server acknowledged the last byte.
async fn upload(api: Api, acked: Arc<Mutex<Acked>>) {
    let bytes = clip();
    let Ok(r) = api
        .raw(reqwest::Method::POST, "/api/uploads")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", bytes.len().to_string())
        .send()
        .await
    else {
        return;
    };
    let Some(location) = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
    else {
        return;
    };
    let done = api
        .raw(reqwest::Method::PATCH, &location)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await;
    if let Ok(done) = done
        && done.status().as_u16() == 204
        && done.headers()["upload-offset"] == bytes.len().to_string().as_str()
    {
        let id = location.rsplit('/').next().unwrap().to_owned();
        acked.lock().unwrap().uploads.push(id);
    }
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_or_doubled_across_twenty_kill_9s_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_binary_with(dir.path(), UNLIMITED).await;
    let mut api = Api::new(&base).unwrap();
    let mut rooms = Vec::new();
    for _ in 0..ROOMS {
        rooms.push((
            crate::helpers::public_room(&api).await,
            Arc::new(Mutex::new(Acked::default())),
        ));
    }
    let uploaded = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::rng();
    for round in 0..KILLS {
        let floods: Vec<_> = rooms
            .iter()
            .map(|(room, acked)| tokio::spawn(flood(api.clone(), *room, round, acked.clone())))
            .collect();
        let files = tokio::spawn(upload(api.clone(), uploaded.clone()));
        // A random moment: anywhere from the first frames to well into the flood.
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..700))).await;
        server.kill().await.unwrap();
        server.wait().await.unwrap();
        for flood in floods {
            let _ = tokio::time::timeout(Duration::from_secs(20), flood).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), files).await;
        let (restarted, base) = start_binary_with(dir.path(), UNLIMITED).await;
        server = restarted;
        api = api.rebased(&base);
    }
    for (room, acked) in &rooms {
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        eprintln!(
            "crash test, room {room}: {} chat lines, {} queue additions, {} removals acknowledged across {KILLS} kills",
            acked.chat.len(),
            acked.added.len(),
            acked.removed.len(),
        );
        assert!(
            acked.chat.len() >= KILLS && acked.added.len() >= 2,
            "the flood got going: {} lines, {} items",
            acked.chat.len(),
            acked.added.len()
        );
        check_room(&api, *room, &acked).await;
    }
    let acked = std::mem::take(&mut *uploaded.lock().unwrap());
    eprintln!("crash test: {} uploads acknowledged", acked.uploads.len());

    // Uploads: every one whose last byte was acknowledged is there, once, and not receiving.
    let listed = api.get("/api/uploads").await.unwrap().body;
    let uploads = listed["uploads"].as_array().unwrap();
    for id in &acked.uploads {
        let found: Vec<_> = uploads.iter().filter(|u| u["id"] == id.as_str()).collect();
        assert_eq!(found.len(), 1, "upload {id}");
        assert_ne!(found[0]["state"], "receiving", "upload {id}: {}", found[0]);
    }
}

/// Every acknowledged chat line and queue change of `room` is stored exactly once.
async fn check_room(api: &Api, room: RoomId, acked: &Acked) {
    // Chat: every acknowledged line exactly once (and no line twice at all).
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/rooms/{room}/chat?limit=200&before={b}"),
            None => format!("/api/rooms/{room}/chat?limit=200"),
        };
        let page = api.get(&path).await.unwrap().body;
        let lines = page["lines"].as_array().unwrap().clone();
        for line in &lines {
            if line["system"].is_null() {
                *seen
                    .entry(line["text"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        if !page["has_more"].as_bool().unwrap() || lines.is_empty() {
            break;
        }
        before = lines[0]["id"].as_i64();
    }
    for text in &acked.chat {
        assert_eq!(seen.get(text), Some(&1), "acknowledged line {text:?}");
    }
    assert!(seen.values().all(|n| *n == 1), "a line stored twice");

    // Queue: every acknowledged addition present once, unless its removal was acknowledged
    // (then gone) or sent without an answer (then either).
    let (_v, welcome) = api.join(room).await.unwrap();
    let mut items: HashMap<ItemId, usize> = HashMap::new();
    for item in welcome.current.iter().chain(welcome.queue.iter()) {
        *items.entry(item.id).or_default() += 1;
    }
    for id in &acked.added {
        let present = items.get(id).copied().unwrap_or(0);
        if acked.removed.contains(id) {
            assert_eq!(present, 0, "item {id} was removed");
        } else if !acked.removing.contains(id) {
            assert_eq!(present, 1, "item {id}");
        }
    }
    assert!(items.values().all(|n| *n == 1), "an item stored twice");
}
