//! The Syncplay front door (`--syncplay-listen`): desktop players (mpv, VLC, MPC-HC through the
//! Syncplay client) join a Lockstep room as members like any browser viewer.
//!
//! A client opens with Syncplay's `Hello` (after upgrading to TLS when it asks and the server has
//! a certificate: `--syncplay-tls-cert`); its room name is the Lockstep room's invite key or the
//! short Syncplay name its owner chose, and its server password the room's password, if it has
//! one. The connection then gets a user of its
//! own, named after the Syncplay user name, and joins through the same [`Dispatch`] as a
//! WebSocket: its pauses, plays, seeks, chat and readiness become protocol v1 frames under the
//! same rules and rate limits; the room's playback and chat go back as Syncplay `State` and `Chat`
//! messages. The member list shows it as a desktop player with the file it has open; it is told
//! the room's item (title, length, a link it can open) and warned when its file is not as long.
//! The protocol itself (parsing, pings, the "ignoring on the fly" handshake, these texts) is pure,
//! in `lockstep_core::syncplay`.
//!
//! Bounded like every other door: at most 1,024 connections, 8 from one address; lines of at most
//! 16 KiB, a `Hello` (TLS handshake included) within 10 s, a client silent for 12.5 s is dropped, new users are
//! rate-limited per address, each `Hello` counts against the address's request rate, every
//! frame goes through the connection's frame limit, and a ban
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
use lockstep_core::queue::QueueItem;
use lockstep_core::room::{DesktopFile, MemberView, PlaybackCause};
use lockstep_core::settings::Visibility;
use lockstep_core::syncplay::{
    self, ClientMessage, Hello, Intent, MAX_LINE, RoomPlay, Session, Setting, ShortName,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
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
    let tls = match (
        &state.config.syncplay_tls_cert,
        &state.config.syncplay_tls_key,
    ) {
        (Some(cert), Some(key)) => Some(acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for Syncplay clients on {address}: {e}"))?;
    tracing::info!(%address, tls = tls.is_some(), "Syncplay clients on {address}");
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
                    let tls = tls.clone();
                    state.tasks.clone().spawn(async move {
                        let _held = (permit, place);
                        if let Err(err) = serve(state, stream, peer, tls).await {
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

/// Reads the certificate chain and key of Syncplay's TLS upgrade (PEM files).
fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the Syncplay TLS certificate {}: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read the Syncplay TLS key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| anyhow::anyhow!("the Syncplay TLS certificate and key do not fit: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connection's lines, in the clear or, after Syncplay's TLS upgrade, encrypted.
type Lines<S> = Framed<S, LinesCodec>;

fn lines_of<S: AsyncRead + AsyncWrite>(io: S) -> Lines<S> {
    Framed::new(io, LinesCodec::new_with_max_length(MAX_LINE))
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<S>,
    message: &Value,
) -> anyhow::Result<()> {
    let mut text = syncplay::line(message);
    text.pop(); // the codec adds the "\n" of "\r\n"
    lines.send(text).await?;
    Ok(())
}

/// Sends Syncplay's `Error`; the connection ends with the error this returns.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin, T>(
    lines: &mut Lines<S>,
    message: &str,
) -> anyhow::Result<T> {
    send(lines, &syncplay::error(message)).await?;
    anyhow::bail!("refused: {message}")
}

/// Waits until `at`, or for ever when there is nothing to wait for.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Seconds on the server's clock, as Syncplay's ping fields carry them.
fn seconds(state: &AppState) -> f64 {
    state.clock.now().0 as f64 / 1e6
}

/// How a client opens.
enum Opening {
    Hello(Hello),
    /// It asks for TLS and this server has it.
    StartTls,
}

/// Waits for the client's `Hello`, answering a TLS inquiry on the way: with "true" (the
/// caller then upgrades) when `tls` is offered, else "false" (the client goes on in the clear).
async fn opening<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<S>,
    tls: bool,
) -> anyhow::Result<Opening> {
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
                ClientMessage::Hello(hello) => return Ok(Opening::Hello(hello)),
                ClientMessage::Tls if tls => {
                    send(lines, &syncplay::tls_accepted()).await?;
                    return Ok(Opening::StartTls);
                }
                ClientMessage::Tls => send(lines, &syncplay::tls_refused()).await?,
                _ => return refuse(lines, "say Hello first").await,
            }
        }
    }
}

/// One Syncplay connection: its opening (with TLS when asked and configured), then the room.
/// The opening, TLS handshake included, must be done within [`HELLO_TIMEOUT`].
async fn serve(
    state: AppState,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let mut lines = lines_of(stream);
    let opened = tokio::time::timeout_at(deadline, opening(&mut lines, tls.is_some())).await;
    let hello = match opened {
        Err(_) => return refuse(&mut lines, "no Hello in time").await,
        Ok(opened) => match opened? {
            Opening::Hello(hello) => hello,
            Opening::StartTls => {
                let Some(tls) = tls else {
                    anyhow::bail!("TLS without an acceptor");
                };
                let parts = lines.into_parts();
                if !parts.read_buf.is_empty() {
                    // Bytes sent after the inquiry but before the handshake: not a client.
                    anyhow::bail!("data before the TLS handshake");
                }
                let stream = tokio::time::timeout_at(deadline, tls.accept(parts.io))
                    .await
                    .map_err(|_| anyhow::anyhow!("TLS handshake timed out"))??;
                let mut lines = lines_of(stream);
                let opened = tokio::time::timeout_at(deadline, opening(&mut lines, false)).await;
                let hello = match opened {
                    Err(_) => return refuse(&mut lines, "no Hello in time").await,
                    Ok(opened) => match opened? {
                        Opening::Hello(hello) => hello,
                        // Never offered twice; said for completeness.
                        Opening::StartTls => {
                            return refuse(&mut lines, "TLS was already started").await;
                        }
                    },
                };
                return enter(state, lines, peer, hello).await;
            }
        },
    };
    enter(state, lines, peer, hello).await
}

/// Takes a client that said `Hello` into its room, and relays until either side ends.
async fn enter<S: AsyncRead + AsyncWrite + Unpin>(
    state: AppState,
    mut lines: Lines<S>,
    peer: SocketAddr,
    hello: Hello,
) -> anyhow::Result<()> {
    let client = ClientAddr(peer.ip());
    // A Hello is a request like a WebSocket's upgrade: it counts against the address's request
    // rate before the room is looked up, which also bounds how fast short names can be tried.
    if state.throttles.requests.check(&client.key()).is_err() {
        return refuse(
            &mut lines,
            "too many requests from your address; try again later",
        )
        .await;
    }
    // The room: the Syncplay room name is its invite key, or the short name its owner chose.
    let no_room =
        "no such room: use the room's invite key (or its short Syncplay name) as the room name";
    let room = if let Ok(key) = InviteKey::parse(&hello.room) {
        state.store.room_by_invite(&key).await?
    } else if let Ok(short) = ShortName::parse(&hello.room) {
        match state.store.room_by_syncplay_name(&short).await? {
            // A short name can be guessed where an invite key cannot: a private room is
            // reached by it only behind its password (the owner is asked for one when
            // choosing the name; this holds if the password was removed since).
            Some(room)
                if room.settings.visibility == Visibility::Private
                    && room.password_hash.is_none() =>
            {
                None
            }
            found => found,
        }
    } else {
        None
    };
    let Some(room) = room else {
        return refuse(&mut lines, no_room).await;
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

/// Who is who in the room, for `setBy`, chat names and Syncplay's user list.
#[derive(Default)]
struct Names(HashMap<UserId, MemberView>);

impl Names {
    fn of(&self, id: Option<UserId>) -> Option<&str> {
        id.and_then(|id| self.0.get(&id)).map(|m| m.name.as_str())
    }
}

/// Relays between the joined room and the Syncplay client until either side ends.
async fn bridge<S: AsyncRead + AsyncWrite + Unpin>(
    state: &AppState,
    dispatch: &mut Dispatch,
    handle: &crate::rooms::RoomHandle,
    joined: &mut crate::rooms::Joined,
    lines: &mut Lines<S>,
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
    let mut current: Option<QueueItem> = None;
    for frame in &joined.frames {
        if let Ok(ServerFrame::Welcome(w)) = serde_json::from_str::<ServerFrame>(frame.as_str()) {
            playback = w.playback;
            current = w.current;
            for m in w.members {
                names.0.insert(m.user_id, m);
            }
        }
    }
    // The member list shows it as a desktop player; its file follows once the client says.
    let mut mine = syncplay::desktop(hello, None);
    let _ = dispatch.desktop(handle, mine.clone()).await;
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
    let mut chats = Chats::new(seconds(state) + CHAT_GATE_SECS);
    chats
        .send(
            lines,
            syncplay::chat("Lockstep", &syncplay::now_playing(current.as_ref())),
        )
        .await?;
    // A start scheduled a moment ahead (a play: START_LEAD_SECS) is told as paused until it
    // happens: a Syncplay player starts when it hears, and would otherwise run that much ahead
    // for good (Syncplay lets up to 1.5 s be).
    let play = |p: &PlaybackState| {
        let now = state.clock.now();
        RoomPlay {
            paused: p.paused || p.starts_after(now),
            position: p.position_at(now),
        }
    };
    send(
        lines,
        &session.state(play(&playback), true, false, None, seconds(state)),
    )
    .await?;
    let mut next_id = 1u64;
    let mut report_at = seconds(state) + SYNC_REPORT_SECS;
    // Who made the last change: every state names them, as Syncplay's own server does (its
    // clients print "<setBy> paused" from whichever state shows the change first).
    let mut set_by: Option<String> = None;
    // When the room's scheduled start happens, to tell the client then.
    let start_of = |p: &PlaybackState| {
        p.starts_after(state.clock.now())
            .then(|| state.clock.instant_at(p.at))
    };
    let mut start_at = start_of(&playback);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(syncplay::STATE_INTERVAL_SECS));
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                return refuse(lines, "the server is restarting; reconnect in a moment").await;
            }
            () = sleep_until(start_at) => {
                start_at = None;
                send(lines, &session.state(play(&playback), false, true, set_by.as_deref(), seconds(state))).await?;
            }
            _ = ticker.tick() => {
                let now = seconds(state);
                if now >= chats.opens_at {
                    chats.open(lines).await?;
                }
                // Its sync quality, from its own reports, as a browser viewer's page sends it.
                if now >= report_at {
                    report_at = now + SYNC_REPORT_SECS;
                    if let Some((p50, p95)) = session.take_errors() {
                        let round = |ms: f64| (ms * 10.0).round() / 10.0;
                        let frame = json!({"t": "sync_report", "p50_ms": round(p50), "p95_ms": round(p95)});
                        let _ = dispatch.text(handle, &frame.to_string(), state.clock.now()).await;
                    }
                }
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
                                Some(Intent::Resync) => {
                                    send(lines, &session.state(play(&playback), true, true, set_by.as_deref(), seconds(state))).await?;
                                    None
                                }
                                None => None,
                            }
                        }
                        ClientMessage::Chat(text) => Some(json!({"t": "chat", "text": text})),
                        ClientMessage::Set(items) => {
                            let mut ready = None;
                            for item in items {
                                match item {
                                    Setting::Ready(r) => ready = Some(r),
                                    Setting::File { name, duration, size } => {
                                        // Its player is up: chat can be shown now.
                                        chats.open(lines).await?;
                                        session.file_opened(seconds(state));
                                        let file = DesktopFile { name, duration, size };
                                        let now = syncplay::desktop(hello, Some(file));
                                        if now != mine {
                                            mine = now;
                                            if let Err(e) = dispatch.desktop(handle, mine.clone()).await {
                                                chats.send(lines, syncplay::chat("Lockstep", &e.to_string())).await?;
                                            }
                                            if let Some(note) = syncplay::mismatch_note(&mine, current.as_ref()) {
                                                chats.send(lines, syncplay::chat("Lockstep", &note)).await?;
                                            }
                                        }
                                    }
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
                        if let Some(ServerFrame::Error { message, .. }) = answer {
                            // Syncplay has no per-command refusal: say it in the chat.
                            chats.send(lines, syncplay::chat("Lockstep", &message)).await?;
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
                                    chats.send(lines, syncplay::chat("Lockstep", &note)).await?;
                                }
                                playback = p;
                                // A pause or play keeps the players where they are; a seek moves them.
                                let jump = matches!(cause, PlaybackCause::Seek);
                                set_by = Some(names.of(by).unwrap_or("Lockstep").to_owned());
                                // Forced at once, as every change (the client's states from before it
                                // are then ignored: a Syncplay client that just opened its file
                                // rewinds to 0), and once more when a scheduled start happens.
                                start_at = start_of(&playback);
                                send(lines, &session.state(play(&playback), jump, true, set_by.as_deref(), seconds(state))).await?;
                            }
                            ServerFrame::NowPlaying { state: p, by, item, .. } => {
                                playback = p;
                                set_by = Some(names.of(by).unwrap_or("Lockstep").to_owned());
                                let changed = item.as_ref().map(|i| i.id) != current.as_ref().map(|i| i.id);
                                current = item;
                                if changed {
                                    chats.send(lines, syncplay::chat("Lockstep", &syncplay::now_playing(current.as_ref()))).await?;
                                    if let Some(note) = syncplay::mismatch_note(&mine, current.as_ref()) {
                                        chats.send(lines, syncplay::chat("Lockstep", &note)).await?;
                                    }
                                }
                                send(lines, &session.state(play(&playback), true, true, set_by.as_deref(), seconds(state))).await?;
                            }
                            ServerFrame::ItemUpdated { item, .. } if current.as_ref().is_some_and(|c| c.id == item.id) => {
                                // The room's item got its length: the desktop's file may now
                                // be seen not to match.
                                let learnt = current.as_ref().is_some_and(|c| c.duration.is_none()) && item.duration.is_some();
                                current = Some(item);
                                if learnt && let Some(note) = syncplay::mismatch_note(&mine, current.as_ref()) {
                                    chats.send(lines, syncplay::chat("Lockstep", &note)).await?;
                                }
                            }
                            // Others' lines (its own it has shown already; system lines are the room's).
                            ServerFrame::Chat { line, .. }
                                if line.system.is_none() && line.user_id != Some(user.id) =>
                            {
                                let who = line.name.as_deref().unwrap_or("?");
                                chats.send(lines, syncplay::chat(who, &line.text)).await?;
                            }
                            ServerFrame::Presence { joined: came, left, .. } => {
                                // Told as Syncplay's own server tells them, so the player
                                // says who came and went.
                                for m in came {
                                    if m.user_id != user.id && !names.0.contains_key(&m.user_id) {
                                        send(lines, &syncplay::user_event(&room_name, m.name.as_str(), true)).await?;
                                        if m.desktop.as_ref().is_some_and(|d| d.file.is_some()) {
                                            send(lines, &syncplay::user_file(&room_name, m.name.as_str(), m.desktop.as_ref())).await?;
                                        }
                                    }
                                    names.0.insert(m.user_id, m);
                                }
                                for id in left {
                                    if let Some(m) = names.0.remove(&id) && id != user.id {
                                        send(lines, &syncplay::user_event(&room_name, m.name.as_str(), false)).await?;
                                    }
                                }
                            }
                            ServerFrame::MemberUpdated { member, .. } => {
                                let file_changed = names.0.get(&member.user_id).is_some_and(|old| {
                                    old.desktop.as_ref().map(|d| &d.file) != member.desktop.as_ref().map(|d| &d.file)
                                });
                                if file_changed && member.user_id != user.id {
                                    send(lines, &syncplay::user_file(&room_name, member.name.as_str(), member.desktop.as_ref())).await?;
                                }
                                names.0.insert(member.user_id, member);
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

/// How often the door reports a desktop viewer's sync quality for it (as browser pages do).
const SYNC_REPORT_SECS: f64 = 5.0;
/// How long after joining chat is held for a client whose player has opened no file yet.
const CHAT_GATE_SECS: f64 = 10.0;
/// Chat messages held at most, meanwhile (the oldest go first).
const CHAT_HELD_MAX: usize = 20;

/// Chat for the client, held until its player is up. Syncplay 1.6's client shows a chat message
/// on its player and fails (dropping the connection) on one that arrives before it has a
/// player. Its player is up once it reports a file; a client that opens none gets chat after
/// [`CHAT_GATE_SECS`].
struct Chats {
    opens_at: f64,
    open: bool,
    held: std::collections::VecDeque<Value>,
}

impl Chats {
    fn new(opens_at: f64) -> Self {
        Chats {
            opens_at,
            open: false,
            held: std::collections::VecDeque::new(),
        }
    }

    async fn send<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        lines: &mut Lines<S>,
        message: Value,
    ) -> anyhow::Result<()> {
        if self.open {
            return send(lines, &message).await;
        }
        if self.held.len() == CHAT_HELD_MAX {
            self.held.pop_front();
        }
        self.held.push_back(message);
        Ok(())
    }

    async fn open<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        lines: &mut Lines<S>,
    ) -> anyhow::Result<()> {
        if !self.open {
            self.open = true;
            while let Some(message) = self.held.pop_front() {
                send(lines, &message).await?;
            }
        }
        Ok(())
    }
}

/// Syncplay's `List`: who is in the room, with desktop viewers' files (browser viewers have
/// none) and readiness.
fn list(room: &str, names: &Names) -> Value {
    let users: serde_json::Map<String, Value> = names
        .0
        .values()
        .map(|m| {
            (
                m.name.as_str().to_owned(),
                json!({
                    "position": 0,
                    "file": syncplay::file_of(m.desktop.as_ref()),
                    "controller": false,
                    "isReady": m.ready,
                    "features": {},
                }),
            )
        })
        .collect();
    json!({"List": {room: users}})
}
