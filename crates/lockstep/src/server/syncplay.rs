//! The Syncplay front door (`--syncplay-listen`): desktop players (mpv, VLC, MPC-HC through the
//! Syncplay client) join a Lockstep room as members like any browser viewer.
//!
//! A client opens with Syncplay's `Hello`; its room name is the Lockstep room's invite key and its
//! server password the room's password, if it has one. The connection then gets a user of its
//! own, named after the Syncplay user name, and joins through the same [`Dispatch`] as a
//! WebSocket: its pauses, plays, seeks, chat and readiness become protocol v1 frames under the
//! same rules and rate limits; the room's playback and chat go back as Syncplay `State` and `Chat`
//! messages. The protocol itself (parsing, pings, the "ignoring on the fly" handshake) is pure, in
//! `lockstep_core::syncplay`.
//!
//! Bounded like every other door: at most 1,024 connections, 8 from one address; lines of at most
//! 16 KiB, a `Hello` within 10 s, a client silent for 12.5 s is dropped, new users are
//! rate-limited per address, every frame goes through the connection's frame limit, and a ban
//! bars the connection's address as it does a browser's.

use crate::rooms::dispatch::{Dispatch, JoinRefusal};
use crate::server::client::{ClientAddr, ClientKey};
use crate::state::AppState;
use crate::store::users::User;
use futures_util::{SinkExt, StreamExt};
use lockstep_core::ids::UserId;
use lockstep_core::invite::InviteKey;
use lockstep_core::names::DisplayName;
use lockstep_core::playback::PlaybackState;
use lockstep_core::protocol::ServerFrame;
use lockstep_core::room::PlaybackCause;
use lockstep_core::syncplay::{
    self, ClientMessage, Hello, Intent, MAX_LINE, RoomPlay, Session, Setting,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Framed, LinesCodec};
use uuid::Uuid;

/// How long a client has to say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Syncplay connections at once, in all (each holds a socket, a task and a room member).
const MAX_CONNECTIONS: usize = 1024;
/// Syncplay connections at once from one client address.
const MAX_PER_ADDRESS: usize = 8;

/// Counts the open connections of each client address; a connection gives its place back when
/// dropped.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<ClientKey, usize>>>);

struct Place {
    counts: PerAddress,
    key: ClientKey,
}

impl PerAddress {
    fn take(&self, key: ClientKey) -> Option<Place> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_default();
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Place {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Listens for Syncplay clients on `address` until shutdown.
pub async fn listen(address: SocketAddr, state: &AppState) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for Syncplay clients on {address}: {e}"))?;
    tracing::info!(%address, "Syncplay clients on {address}");
    let state = state.clone();
    let tasks = state.tasks.clone();
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = PerAddress::default();
    tasks.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = state.shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    // Over either cap the connection is closed at once, before anything is read.
                    let Ok(permit) = open.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "too many Syncplay connections; refused");
                        continue;
                    };
                    let Some(place) = per_address.take(ClientAddr(peer.ip()).key()) else {
                        tracing::info!(%peer, "too many Syncplay connections from one address; refused");
                        continue;
                    };
                    let state = state.clone();
                    state.tasks.clone().spawn(async move {
                        let _held = (permit, place);
                        if let Err(err) = serve(state, stream, peer).await {
                            tracing::debug!(%peer, error = %err, "Syncplay connection ended");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Syncplay accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

type Lines = Framed<TcpStream, LinesCodec>;

async fn send(lines: &mut Lines, message: &Value) -> anyhow::Result<()> {
    let mut text = syncplay::line(message);
    text.pop(); // the codec adds the "\n" of "\r\n"
    lines.send(text).await?;
    Ok(())
}

/// Sends Syncplay's `Error`; the connection ends with the error this returns.
async fn refuse<T>(lines: &mut Lines, message: &str) -> anyhow::Result<T> {
    send(lines, &syncplay::error(message)).await?;
    anyhow::bail!("refused: {message}")
}

/// Seconds on the server's clock, as Syncplay's ping fields carry them.
fn seconds(state: &AppState) -> f64 {
    state.clock.now().0 as f64 / 1e6
}

/// Waits for the client's `Hello`, answering a TLS inquiry on the way.
async fn hello(lines: &mut Lines) -> anyhow::Result<Hello> {
    loop {
        let Some(line) = lines.next().await else {
            anyhow::bail!("closed before Hello");
        };
        let Ok(line) = line else {
            return refuse(lines, "line too long or not UTF-8").await;
        };
        let messages = match syncplay::parse_line(&line) {
            Ok(m) => m,
            Err(e) => return refuse(lines, &e.to_string()).await,
        };
        for message in messages {
            match message {
                ClientMessage::Hello(hello) => return Ok(hello),
                ClientMessage::Tls => send(lines, &syncplay::tls_refused()).await?,
                _ => return refuse(lines, "say Hello first").await,
            }
        }
    }
}

/// One Syncplay connection, from `Hello` to the end.
async fn serve(state: AppState, stream: TcpStream, peer: SocketAddr) -> anyhow::Result<()> {
    let client = ClientAddr(peer.ip());
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, hello(&mut lines)).await {
        Ok(hello) => hello?,
        Err(_) => return refuse(&mut lines, "no Hello in time").await,
    };

    // The room: its invite key is the Syncplay room name.
    let Ok(key) = InviteKey::parse(&hello.room) else {
        return refuse(
            &mut lines,
            "no such room: use the room's invite key as the room name",
        )
        .await;
    };
    let Some(room) = state.store.room_by_invite(&key).await? else {
        return refuse(
            &mut lines,
            "no such room: use the room's invite key as the room name",
        )
        .await;
    };
    // A user of its own, named after the Syncplay user (new users are limited per address).
    if state.throttles.new_users.check(&client.key()).is_err() {
        return refuse(
            &mut lines,
            "too many new users from your address; try again later",
        )
        .await;
    }
    // Too long a name is cut to fit (the client takes the name the Hello answer gives it);
    // one that cannot be a display name at all gets a random one.
    let cut: String = hello
        .username
        .chars()
        .take(lockstep_core::limits::DISPLAY_NAME_MAX)
        .collect();
    let name = DisplayName::parse(cut.trim())
        .unwrap_or_else(|_| crate::auth::names::random_name(&mut rand::rng()));
    let user = User {
        id: UserId(Uuid::now_v7()),
        name,
    };
    state.store.create_user(&user, state.clock.now()).await?;
    if let Err(e) = crate::server::rooms::at_the_door(&state, &room, user.id, client).await {
        return refuse(&mut lines, &e.to_string()).await;
    }
    if let Err(e) =
        crate::server::rooms::admit(&state, &room, user.id, hello.password.clone(), client).await
    {
        return refuse(&mut lines, &e.to_string()).await;
    }

    let mut dispatch = Dispatch::new(state.clone(), user.clone(), client);
    let (handle, mut joined) = match dispatch.join(room.id, None, true).await {
        Ok(joined) => joined,
        Err(JoinRefusal::NoSuchRoom) => return refuse(&mut lines, "no such room").await,
        Err(JoinRefusal::Banned) => {
            return refuse(&mut lines, "you are banned from this room").await;
        }
        Err(JoinRefusal::Unavailable) => {
            return refuse(&mut lines, "the room is unavailable; try again shortly").await;
        }
    };
    let result = bridge(
        &state,
        &mut dispatch,
        &handle,
        &mut joined,
        &mut lines,
        &hello,
        &user,
    )
    .await;
    handle.leave(user.id).await;
    result
}

/// Who is who in the room, for `setBy` and chat names.
#[derive(Default)]
struct Names(HashMap<UserId, String>);

impl Names {
    fn of(&self, id: Option<UserId>) -> Option<&str> {
        id.and_then(|id| self.0.get(&id)).map(String::as_str)
    }
}

/// Relays between the joined room and the Syncplay client until either side ends.
async fn bridge(
    state: &AppState,
    dispatch: &mut Dispatch,
    handle: &crate::rooms::RoomHandle,
    joined: &mut crate::rooms::Joined,
    lines: &mut Lines,
    hello: &Hello,
    user: &User,
) -> anyhow::Result<()> {
    let mut playback = PlaybackState {
        paused: true,
        position: 0.0,
        at: state.clock.now(),
        rate: 1.0,
    };
    let mut names = Names::default();
    for frame in &joined.frames {
        if let Ok(ServerFrame::Welcome(w)) = serde_json::from_str::<ServerFrame>(frame.as_str()) {
            playback = w.playback;
            for m in &w.members {
                names.0.insert(m.user_id, m.name.as_str().to_owned());
            }
        }
    }
    let mut session = Session::new(seconds(state));
    let room_name = hello.room.clone();
    send(
        lines,
        &syncplay::hello_answer(hello, user.name.as_str(), &room_name, "Lockstep"),
    )
    .await?;
    for set in syncplay::empty_playlist(&room_name) {
        send(lines, &set).await?;
    }
    let play = |p: &PlaybackState| RoomPlay {
        paused: p.paused,
        position: p.position_at(state.clock.now()),
    };
    send(
        lines,
        &session.state(play(&playback), true, false, None, seconds(state)),
    )
    .await?;
    let mut next_id = 1u64;
    // Who made the last change: every state names them, as Syncplay's own server does (its
    // clients print "<setBy> paused" from whichever state shows the change first).
    let mut set_by: Option<String> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(syncplay::STATE_INTERVAL_SECS));
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                return refuse(lines, "the server is restarting; reconnect in a moment").await;
            }
            _ = ticker.tick() => {
                let now = seconds(state);
                if now - session.last_heard > syncplay::SILENT_SECS {
                    return refuse(lines, "no state from your client for too long").await;
                }
                send(lines, &session.state(play(&playback), false, false, set_by.as_deref(), now)).await?;
            }
            line = lines.next() => {
                let line = match line {
                    None => return Ok(()),
                    Some(Ok(line)) => line,
                    Some(Err(_)) => return refuse(lines, "line too long or not UTF-8").await,
                };
                let messages = match syncplay::parse_line(&line) {
                    Ok(m) => m,
                    Err(e) => return refuse(lines, &e.to_string()).await,
                };
                for message in messages {
                    let frame = match message {
                        ClientMessage::State(s) => {
                            match session.on_state(&s, play(&playback), seconds(state)) {
                                Some(Intent::Pause) => Some(json!({"t": "pause"})),
                                Some(Intent::Play) => Some(json!({"t": "play"})),
                                Some(Intent::Seek(position)) => Some(json!({"t": "seek", "position": position})),
                                None => None,
                            }
                        }
                        ClientMessage::Chat(text) => Some(json!({"t": "chat", "text": text})),
                        ClientMessage::Set(items) => {
                            let mut ready = None;
                            for item in items {
                                match item {
                                    Setting::Ready(r) => ready = Some(r),
                                    Setting::Room(other) if other != room_name => {
                                        return refuse(lines, "this connection stays in its room; reconnect to change rooms").await;
                                    }
                                    _ => {}
                                }
                            }
                            ready.map(|r| json!({"t": "ready", "ready": r}))
                        }
                        ClientMessage::List => {
                            send(lines, &list(&room_name, &names)).await?;
                            None
                        }
                        ClientMessage::Tls => {
                            send(lines, &syncplay::tls_refused()).await?;
                            None
                        }
                        ClientMessage::Hello(_) => return refuse(lines, "Hello was already said").await,
                        ClientMessage::Error(_) => return Ok(()),
                    };
                    if let Some(mut frame) = frame {
                        frame["id"] = json!(next_id);
                        next_id += 1;
                        let answer = dispatch.text(handle, &frame.to_string(), state.clock.now()).await;
                        if let ServerFrame::Error { message, .. } = answer {
                            // Syncplay has no per-command refusal: say it in the chat.
                            send(lines, &syncplay::chat("Lockstep", &message)).await?;
                            // Put the client back where the room is.
                            send(lines, &session.state(play(&playback), true, true, None, seconds(state))).await?;
                        }
                    }
                }
            }
            event = joined.events.recv() => {
                use crate::bus::{Outbound, Recv};
                match event {
                    Ok(Outbound::Event { seq, .. }) if seq <= joined.after_seq => {}
                    Ok(Outbound::Event { frame, .. }) => {
                        let Ok(frame) = serde_json::from_str::<ServerFrame>(frame.as_str()) else { continue };
                        match frame {
                            ServerFrame::Playback { state: p, by, cause, .. } => {
                                if cause == PlaybackCause::Rate && p.rate != playback.rate {
                                    // Syncplay has no playback rate: say so rather than let the
                                    // player drift and jump without a word.
                                    let note = format!(
                                        "The room now plays at {}x. Syncplay players have no speed setting: yours plays at 1x and jumps to keep up.",
                                        p.rate
                                    );
                                    send(lines, &syncplay::chat("Lockstep", &note)).await?;
                                }
                                playback = p;
                                // A pause or play keeps the players where they are; a seek moves them.
                                let jump = matches!(cause, PlaybackCause::Seek);
                                set_by = Some(names.of(by).unwrap_or("Lockstep").to_owned());
                                send(lines, &session.state(play(&playback), jump, true, set_by.as_deref(), seconds(state))).await?;
                            }
                            ServerFrame::NowPlaying { state: p, by, .. } => {
                                playback = p;
                                set_by = Some(names.of(by).unwrap_or("Lockstep").to_owned());
                                send(lines, &session.state(play(&playback), true, true, set_by.as_deref(), seconds(state))).await?;
                            }
                            // Others' lines (its own it has shown already; system lines are the room's).
                            ServerFrame::Chat { line, .. }
                                if line.system.is_none() && line.user_id != Some(user.id) =>
                            {
                                let who = line.name.as_deref().unwrap_or("?");
                                send(lines, &syncplay::chat(who, &line.text)).await?;
                            }
                            ServerFrame::Presence { joined: came, left, .. } => {
                                for m in came {
                                    names.0.insert(m.user_id, m.name.as_str().to_owned());
                                }
                                for id in left {
                                    names.0.remove(&id);
                                }
                            }
                            _ => {}
                        }
                    }
                    Ok(Outbound::Removed { user_id, banned }) if user_id == user.id => {
                        if banned {
                            // Its address is barred for a while too, as a banned browser's is:
                            // a Syncplay connection is a new user each time.
                            dispatch.banned_from(handle.id).await;
                        }
                        let why = if banned { "you were banned from this room" } else { "you were removed from this room" };
                        return refuse(lines, why).await;
                    }
                    Ok(Outbound::Removed { .. }) => {}
                    Ok(Outbound::Closed) => return refuse(lines, "the room was deleted").await,
                    Ok(Outbound::Reconnect) | Err(Recv::Closed) => {
                        return refuse(lines, "the room is restarting; reconnect in a moment").await;
                    }
                    Err(Recv::Lagged(_)) => {
                        // Too far behind to follow event by event: the next state puts it right.
                        send(lines, &session.state(play(&playback), true, true, None, seconds(state))).await?;
                    }
                }
            }
        }
    }
}

/// Syncplay's `List`: who is in the room.
fn list(room: &str, names: &Names) -> Value {
    let users: serde_json::Map<String, Value> = names
        .0
        .values()
        .map(|name| {
            (
                name.clone(),
                json!({"position": 0, "file": {}, "controller": false, "isReady": true, "features": {}}),
            )
        })
        .collect();
    json!({"List": {room: users}})
}
