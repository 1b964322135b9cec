//! One WebSocket connection to a room: protocol v1 (see `docs/protocol.md`).
//!
//! The connection waits for `hello`, joins the room (welcome or resume), then runs one task that
//! `select!`s over the socket, the room's broadcast, and shutdown. It is one task rather than a
//! send task and a receive task because an idle viewer then costs one future and one broadcast
//! subscription, which is what lets a node hold many of them; a slow write simply delays reading
//! that client's next frame. Clock pings are answered here, not by the room, so their timestamps
//! are not delayed by the room's work.

use super::client::ClientAddr;
use super::rooms::{Access, access};
use super::upgrade::{Socket, WsUpgrade};
use crate::auth::CurrentUser;
use crate::bus::Outbound;
use crate::error::ApiError;
use crate::rooms::{JoinError, Joined, Resume, RoomHandle};
use crate::state::AppState;
use crate::store::users::User;
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lockstep_core::chat::{ChatText, ChatTextError};
use lockstep_core::ids::{RoomId, UserId};
use lockstep_core::protocol::{
    CLOSE_BAD_DATA, CLOSE_POLICY, CLOSE_RESTART, CLOSE_TOO_BIG, ClientFrame, CommandId,
    MAX_CLIENT_FRAME_BYTES, PROTOCOL_VERSION, ServerFrame, parse_client_frame,
};
use lockstep_core::room::{Command, CommandError};
use lockstep_core::time::ServerTime;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::sync::broadcast;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, Message};

/// How long a new connection may take to send `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to a client may take before the connection is dropped as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// tungstenite's read buffer per connection. Its default, 128 KiB, is far too much: clients send
/// frames of a few hundred bytes (a larger one grows the buffer as needed). Measured with
/// lockstep-loadgen: 4 KiB read buffer and 4 KiB fragments cost 15.5 KiB per idle connection,
/// 1 KiB and 2 KiB cost 10.9 KiB.
const READ_BUFFER: usize = 1024;
/// Outgoing bytes a connection may have queued before it counts as stuck.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Messages longer than this go out as fragments of this size. tungstenite's write buffer keeps
/// the capacity of the largest frame it wrote, so this is what an idle connection keeps, instead
/// of the size of its welcome.
const FRAGMENT: usize = 2 * 1024;
/// How long the server waits for the client's reply to its close frame before dropping the
/// socket. Dropping a socket with unread input makes the kernel send a reset, which can destroy
/// the close frame (and its code) before the client reads it, as with an oversized frame whose
/// payload was never read.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// `GET /api/rooms/{id}/ws`.
pub async fn upgrade(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
    ws: WsUpgrade,
) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let room_id: RoomId = super::extract::path_id(&id, ApiError::room_not_found)?;
    let room = state
        .store
        .room(room_id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    if access(&state, &room, user.id, client).await? == Access::NeedsPassword {
        return Err(ApiError::PasswordRequired);
    }
    let tasks = state.tasks.clone();
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Frames gather up to one fragment before a write; `flush` sends the rest.
        .write_buffer_size(FRAGMENT)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_CLIENT_FRAME_BYTES))
        .max_frame_size(Some(MAX_CLIENT_FRAME_BYTES));
    Ok(ws.respond(config, move |socket| {
        tasks.track_future(run(socket, state, room_id, user, client))
    }))
}

/// What reading the socket gave.
enum Incoming {
    Text(Utf8Bytes),
    Binary,
    /// Control frames (ping/pong) that tungstenite answers itself.
    Control,
    TooBig,
    /// A text frame that is not UTF-8: tungstenite stops reading after it.
    BadUtf8,
    Gone,
}

/// How a connection ends.
enum End {
    /// The client left or the socket failed; nothing more to send.
    Gone,
    /// Send this frame, then close with this code.
    Close(Box<ServerFrame>, u16),
}

impl End {
    fn close(frame: ServerFrame, code: u16) -> End {
        End::Close(Box::new(frame), code)
    }
}

/// The end of a connection whose user was kicked or banned.
fn kicked(banned: bool) -> End {
    let message = if banned {
        "you were banned from this room"
    } else {
        "you were removed from this room"
    };
    End::close(
        ServerFrame::Kicked {
            banned,
            message: message.into(),
        },
        CLOSE_POLICY,
    )
}

/// The end of a connection to a room that was deleted.
fn room_deleted() -> End {
    End::close(
        ServerFrame::Closed {
            message: "the room was deleted".into(),
        },
        CLOSE_POLICY,
    )
}

fn classify(msg: Option<Result<Message, tungstenite::Error>>) -> Incoming {
    match msg {
        Some(Ok(Message::Text(text))) => Incoming::Text(text),
        Some(Ok(Message::Binary(_))) => Incoming::Binary,
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Incoming::Control,
        Some(Ok(Message::Close(_))) | None => Incoming::Gone,
        Some(Err(tungstenite::Error::Capacity(_))) => Incoming::TooBig,
        Some(Err(tungstenite::Error::Utf8(_))) => Incoming::BadUtf8,
        Some(Err(_)) => Incoming::Gone,
    }
}

/// Queues `text` as one frame, or as fragments of [`FRAGMENT`] bytes when it is longer (the
/// receiver reassembles them into the same message). The caller flushes.
async fn feed_message(socket: &mut Socket, text: Utf8Bytes) -> Result<(), tungstenite::Error> {
    if text.len() <= FRAGMENT {
        return socket.feed(Message::Text(text)).await;
    }
    let bytes = Bytes::from(text);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT).min(bytes.len());
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let frame = Frame::message(
            bytes.slice(start..end),
            OpCode::Data(opcode),
            end == bytes.len(),
        );
        socket.feed(Message::Frame(frame)).await?;
        start = end;
    }
    Ok(())
}

/// Room events a connection writes in one go when several are already waiting.
const BATCH: usize = 32;

struct Connection {
    socket: Socket,
    state: AppState,
    user: User,
    /// Where the client connects from (chat is limited per address; a ban bars it).
    client: ClientAddr,
    limiter: DefaultDirectRateLimiter,
}

/// Keeps the connection gauge right however the connection ends.
struct Gauge(crate::metrics::Metrics);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

async fn run(socket: Socket, state: AppState, room_id: RoomId, user: User, client: ClientAddr) {
    state.metrics.connection_opened();
    let _gauge = Gauge(state.metrics.clone());
    let per_sec = NonZeroU32::new(state.config.ws_frames_per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(state.config.ws_frames_burst).unwrap_or(per_sec);
    let mut conn = Connection {
        socket,
        state: state.clone(),
        user,
        client,
        limiter: RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst)),
    };
    // The one-time steps (hello, join, close) and the handling of a client frame are boxed, so
    // that the future an idle connection keeps alive is only the small `serve` loop.
    let end = match Box::pin(conn.await_hello()).await {
        Err(end) => end,
        Ok(resume) => match Box::pin(conn.join(room_id, resume)).await {
            Err(end) => end,
            Ok((handle, events)) => {
                let end = conn.serve(&handle, events).await;
                handle.leave(conn.user.id).await;
                if let End::Close(frame, _) = &end
                    && matches!(**frame, ServerFrame::Kicked { banned: true, .. })
                {
                    bar_address(&state, room_id, conn.user.id, conn.client).await;
                }
                end
            }
        },
    };
    if let End::Close(frame, code) = end {
        Box::pin(conn.close(*frame, code)).await;
    }
}

/// A connection's user was banned: its address is barred from the room for a while too (the
/// room's actor bars the addresses of their sessions).
async fn bar_address(state: &AppState, room: RoomId, user: UserId, client: ClientAddr) {
    let bar = std::time::Duration::from_secs(state.config.ban_address_secs);
    if bar.is_zero() {
        return;
    }
    let until = state.clock.now() + bar;
    let addr = client.key().as_text();
    if let Err(err) = state.store.bar_address(room, user, &addr, until).await {
        tracing::error!(%room, error = %err, "cannot bar a banned connection's address");
    }
}

impl Connection {
    /// Sends a frame; `false` when the socket is gone or stuck.
    async fn send_text(&mut self, text: Utf8Bytes) -> bool {
        let send = async {
            feed_message(&mut self.socket, text).await?;
            self.socket.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(())) => {
                self.state.metrics.frame_out();
                true
            }
            _ => false,
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> bool {
        match serde_json::to_string(frame) {
            Ok(text) => self.send_text(text.into()).await,
            Err(_) => false,
        }
    }

    async fn error(
        &mut self,
        id: Option<CommandId>,
        code: &str,
        message: impl Into<String>,
    ) -> bool {
        self.send(&ServerFrame::error(id, code, message)).await
    }

    async fn close(&mut self, frame: ServerFrame, code: u16) {
        self.send(&frame).await;
        let reason = match &frame {
            ServerFrame::Error { code, .. } => code.clone(),
            ServerFrame::Kicked { .. } => "kicked".into(),
            ServerFrame::Closed { .. } => "room deleted".into(),
            ServerFrame::Reconnect { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        let _ = tokio::time::timeout(
            SEND_TIMEOUT,
            self.socket.send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }))),
        )
        .await;
        // Linger until the client answers the close (or gives up), reading and discarding what
        // it still sends. After an oversized or non-UTF-8 frame the read side is dead
        // (tungstenite ends the stream on its error), so just keep the socket open while the
        // client reads our close.
        let linger = tokio::time::sleep(CLOSE_LINGER);
        tokio::pin!(linger);
        if code == CLOSE_TOO_BIG || code == CLOSE_BAD_DATA {
            linger.await;
            return;
        }
        loop {
            tokio::select! {
                () = &mut linger => return,
                msg = self.socket.next() => match msg {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    fn reconnect_frame(&self, reason: &str) -> End {
        End::close(
            ServerFrame::Reconnect {
                reason: reason.into(),
                retry_after_ms: self.state.config.reconnect_after_ms,
            },
            CLOSE_RESTART,
        )
    }

    fn too_big() -> End {
        End::close(
            ServerFrame::error(
                None,
                "frame_too_big",
                format!("frames may be at most {MAX_CLIENT_FRAME_BYTES} bytes"),
            ),
            CLOSE_TOO_BIG,
        )
    }

    fn bad_utf8() -> End {
        End::close(
            ServerFrame::error(None, "bad_frame", "text frames must be UTF-8"),
            CLOSE_BAD_DATA,
        )
    }

    /// Reads frames until `hello`; answers pings meanwhile.
    async fn await_hello(&mut self) -> Result<Option<Resume>, End> {
        let deadline = tokio::time::sleep(HELLO_TIMEOUT);
        tokio::pin!(deadline);
        let shutdown = self.state.shutdown.clone();
        loop {
            let msg = tokio::select! {
                () = &mut deadline => {
                    return Err(End::close(ServerFrame::error(None, "hello_timeout", "send hello first"), CLOSE_POLICY));
                }
                () = shutdown.cancelled() => return Err(self.reconnect_frame("server_shutdown")),
                msg = self.socket.next() => msg,
            };
            let received = self.state.clock.now();
            let text = match classify(msg) {
                Incoming::Text(text) => text,
                Incoming::Binary => {
                    self.error(None, "bad_frame", "frames are JSON text").await;
                    continue;
                }
                Incoming::Control => continue,
                Incoming::TooBig => return Err(Self::too_big()),
                Incoming::BadUtf8 => return Err(Self::bad_utf8()),
                Incoming::Gone => return Err(End::Gone),
            };
            self.state.metrics.frame_in();
            match parse_client_frame(&text) {
                Ok(ClientFrame::Hello { v, last_seq, epoch }) => {
                    if v != PROTOCOL_VERSION {
                        return Err(End::close(
                            ServerFrame::error(
                                None,
                                "unsupported_version",
                                format!("this server speaks protocol v{PROTOCOL_VERSION}"),
                            ),
                            CLOSE_POLICY,
                        ));
                    }
                    return Ok(match (epoch, last_seq) {
                        (Some(epoch), Some(last_seq)) => Some(Resume { epoch, last_seq }),
                        _ => None,
                    });
                }
                Ok(ClientFrame::Ping { id, client_time }) => {
                    self.pong(id, client_time, received).await;
                }
                Ok(other) => {
                    self.error(other.id(), "not_joined", "send hello first")
                        .await;
                }
                Err(e) => {
                    self.error(e.id, e.code, e.message).await;
                }
            }
        }
    }

    /// Joins the room and sends the welcome or the missed events.
    async fn join(
        &mut self,
        room_id: RoomId,
        resume: Option<Resume>,
    ) -> Result<(RoomHandle, broadcast::Receiver<Outbound>), End> {
        // An actor that is unloading answers "gone"; the next `get` loads a fresh one.
        for _ in 0..3 {
            let handle = match self.state.rooms.get(room_id).await {
                Ok(handle) => handle,
                Err(crate::rooms::RoomError::NotFound) => {
                    return Err(End::close(
                        ServerFrame::Closed {
                            message: "this room no longer exists".into(),
                        },
                        CLOSE_POLICY,
                    ));
                }
                Err(err) => {
                    tracing::warn!(room = %room_id, error = %err, "cannot load room");
                    return Err(self.reconnect_frame("room_unavailable"));
                }
            };
            match handle.join(self.user.clone(), resume.clone()).await {
                Ok(Joined { events, frames }) => {
                    for frame in frames {
                        if !self.send_text(frame).await {
                            handle.leave(self.user.id).await;
                            return Err(End::Gone);
                        }
                    }
                    return Ok((handle, events));
                }
                Err(JoinError::Banned) => {
                    return Err(End::close(
                        ServerFrame::Kicked {
                            banned: true,
                            message: "you are banned from this room".into(),
                        },
                        CLOSE_POLICY,
                    ));
                }
                Err(JoinError::Gone) => continue,
                Err(JoinError::Internal) => return Err(self.reconnect_frame("room_unavailable")),
            }
        }
        Err(self.reconnect_frame("room_unavailable"))
    }

    async fn serve(
        &mut self,
        handle: &RoomHandle,
        mut events: broadcast::Receiver<Outbound>,
    ) -> End {
        let shutdown = self.state.shutdown.clone();
        // Liveness: after half the idle time without a frame from the client, ping it (browsers
        // answer WebSocket pings themselves); with nothing by the idle time, it is gone. Our
        // web client pings the clock every few seconds, so only dead peers get here.
        let half_idle = self.state.config.idle_timeout() / 2;
        let silence = tokio::time::sleep(half_idle);
        tokio::pin!(silence);
        let mut pinged = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return self.reconnect_frame("server_shutdown"),
                () = &mut silence => {
                    if pinged {
                        tracing::debug!(user = %self.user.id, "connection silent; closing it");
                        return End::Gone;
                    }
                    pinged = true;
                    silence.as_mut().reset(tokio::time::Instant::now() + half_idle);
                    let ping = self.socket.send(Message::Ping(Bytes::new()));
                    if !matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(()))) {
                        return End::Gone;
                    }
                }
                out = events.recv() => match out {
                    Ok(Outbound::Event { frame, published, .. }) => {
                        if let Err(end) = self.send_events(frame, published, &mut events).await {
                            return end;
                        }
                    }
                    Ok(Outbound::Removed { user_id, banned }) if user_id == self.user.id => {
                        return kicked(banned);
                    }
                    Ok(Outbound::Removed { .. }) => {}
                    Ok(Outbound::Closed) => return room_deleted(),
                    Ok(Outbound::Reconnect) | Err(broadcast::error::RecvError::Closed) => {
                        return self.reconnect_frame("room_restarting");
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // Too far behind to catch up event by event: start over from a snapshot.
                        tracing::debug!(user = %self.user.id, missed, "connection lagged; sending a fresh snapshot");
                        let Some(Joined { events: fresh, frames }) = handle.resync(self.user.id).await else {
                            return self.reconnect_frame("room_restarting");
                        };
                        events = fresh;
                        for frame in frames {
                            if !self.send_text(frame).await {
                                return End::Gone;
                            }
                        }
                    }
                },
                msg = self.socket.next() => {
                    let received = self.state.clock.now();
                    pinged = false;
                    silence.as_mut().reset(tokio::time::Instant::now() + half_idle);
                    match classify(msg) {
                        Incoming::Text(text) => {
                            if !Box::pin(self.on_text(handle, &text, received)).await {
                                return End::Gone;
                            }
                        }
                        Incoming::Binary => {
                            if !self.error(None, "bad_frame", "frames are JSON text").await {
                                return End::Gone;
                            }
                        }
                        Incoming::Control => {}
                        Incoming::TooBig => return Self::too_big(),
                        Incoming::BadUtf8 => return Self::bad_utf8(),
                        Incoming::Gone => return End::Gone,
                    }
                }
            }
        }
    }

    /// Writes `first` and the events already waiting behind it (up to [`BATCH`]) with a single
    /// flush, so that a busy room costs one write per batch rather than one per event. A control
    /// message met while draining ends the batch and is acted on here.
    async fn send_events(
        &mut self,
        first: Utf8Bytes,
        published: std::time::Instant,
        events: &mut broadcast::Receiver<Outbound>,
    ) -> Result<(), End> {
        let mut sent = vec![published];
        let mut pending = None;
        let write = async {
            feed_message(&mut self.socket, first).await?;
            while sent.len() < BATCH {
                match events.try_recv() {
                    Ok(Outbound::Event {
                        frame, published, ..
                    }) => {
                        feed_message(&mut self.socket, frame).await?;
                        sent.push(published);
                    }
                    Ok(other) => {
                        pending = Some(other);
                        break;
                    }
                    // Empty, or lagged: the next `recv` reports the lag.
                    Err(_) => break,
                }
            }
            self.socket.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            _ => return Err(End::Gone),
        }
        for published in sent {
            self.state.metrics.frame_out();
            self.state
                .metrics
                .delivered(published.elapsed().as_secs_f64());
        }
        match pending {
            Some(Outbound::Removed { user_id, banned }) if user_id == self.user.id => {
                Err(kicked(banned))
            }
            Some(Outbound::Closed) => Err(room_deleted()),
            Some(Outbound::Reconnect) => Err(self.reconnect_frame("room_restarting")),
            Some(Outbound::Removed { .. } | Outbound::Event { .. }) | None => Ok(()),
        }
    }

    /// Adds every entry of one of my playlists, in order; stops at the first refusal (the queue
    /// is full, I may not add).
    async fn add_playlist(
        &mut self,
        handle: &RoomHandle,
        id: CommandId,
        playlist: lockstep_core::ids::ListId,
    ) -> bool {
        let user = self.user.id;
        let list = match self.state.store.playlist(user, playlist).await {
            Ok(Some(list)) => list,
            Ok(None) => {
                return self
                    .error(Some(id), "playlist_not_found", "no such playlist of yours")
                    .await;
            }
            Err(_) => {
                return self
                    .error(Some(id), "internal", "the playlist could not be read")
                    .await;
            }
        };
        let mut first = None;
        for entry in &list.items {
            let item = match super::library::new_item(&self.state, user, &entry.item).await {
                Ok(item) => item,
                // A saved entry that cannot be queued (an upload deleted since) is skipped.
                Err(_) => continue,
            };
            match handle.queue_add(user, item).await {
                Ok(item_id) => {
                    first.get_or_insert(item_id);
                }
                Err(e) => return self.send(&command_error_frame(id, &e)).await,
            }
        }
        self.send(&ServerFrame::Ack { id, item_id: first }).await
    }

    async fn pong(
        &mut self,
        id: Option<CommandId>,
        client_time: f64,
        received: ServerTime,
    ) -> bool {
        let frame = ServerFrame::Pong {
            id,
            client_time,
            server_recv: received,
            server_send: self.state.clock.now(),
        };
        self.send(&frame).await
    }

    /// Handles one text frame; `false` when the socket is gone.
    async fn on_text(&mut self, handle: &RoomHandle, text: &str, received: ServerTime) -> bool {
        self.state.metrics.frame_in();
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err(e) => return self.error(e.id, e.code, e.message).await,
        };
        if let Err(not_until) = self.limiter.check() {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return self
                .send(&ServerFrame::Error {
                    id: frame.id(),
                    code: "rate_limited".into(),
                    message: "too many frames; slow down".into(),
                    retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                })
                .await;
        }
        let user = self.user.id;
        let (id, result) = match frame {
            ClientFrame::Ping { id, client_time } => {
                return self.pong(id, client_time, received).await;
            }
            ClientFrame::Hello { .. } => {
                return self
                    .error(None, "already_joined", "hello was already sent")
                    .await;
            }
            ClientFrame::QueueAdd { id, url } => {
                let media = match super::library::media_to_add(&self.state, &url).await {
                    Ok(media) => media,
                    Err(e) => return self.error(Some(id), e.code(), e.to_string()).await,
                };
                match handle
                    .queue_add(user, crate::rooms::NewItem::Media(media))
                    .await
                {
                    Ok(item_id) => {
                        return self
                            .send(&ServerFrame::Ack {
                                id,
                                item_id: Some(item_id),
                            })
                            .await;
                    }
                    Err(e) => (id, Err(e)),
                }
            }
            ClientFrame::QueueAddUpload { id, upload_id } => {
                let item = super::library::upload_item(&self.state, user, upload_id).await;
                return match item {
                    Ok(item) => match handle.queue_add(user, item).await {
                        Ok(item_id) => {
                            self.send(&ServerFrame::Ack {
                                id,
                                item_id: Some(item_id),
                            })
                            .await
                        }
                        Err(e) => self.send(&command_error_frame(id, &e)).await,
                    },
                    Err(e) => self.error(Some(id), e.code(), e.to_string()).await,
                };
            }
            ClientFrame::QueueAddPlaylist { id, playlist_id } => {
                return self.add_playlist(handle, id, playlist_id).await;
            }
            ClientFrame::Chat { id, text } => match ChatText::parse(&text) {
                Ok(text) => {
                    // Many throwaway users from one address share one allowance (each user
                    // also has the room's own limit).
                    if let Err(wait) = self.state.throttles.chat.check(&self.client.key()) {
                        return self
                            .send(&ServerFrame::Error {
                                id: Some(id),
                                code: "rate_limited".into(),
                                message: "too many chat lines from your address; slow down".into(),
                                retry_after_ms: Some(
                                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                                ),
                            })
                            .await;
                    }
                    (id, handle.command(user, Command::Chat { text }).await)
                }
                Err(e) => {
                    let code = match e {
                        ChatTextError::Empty => "chat_empty",
                        ChatTextError::TooLong => "chat_too_long",
                    };
                    return self.error(Some(id), code, e.to_string()).await;
                }
            },
            ClientFrame::SetName { id, name } => {
                return match super::users::set_name(&self.state, user, &name).await {
                    Ok(name) => {
                        self.user.name = name;
                        self.send(&ServerFrame::Ack { id, item_id: None }).await
                    }
                    Err(e) => self.error(Some(id), e.code(), e.to_string()).await,
                };
            }
            other => {
                let Some((id, command)) = to_command(other) else {
                    return true;
                };
                (id, handle.command(user, command).await)
            }
        };
        match result {
            Ok(()) => self.send(&ServerFrame::Ack { id, item_id: None }).await,
            Err(e) => self.send(&command_error_frame(id, &e)).await,
        }
    }
}

/// The room command a frame asks for; `None` for frames handled elsewhere.
fn to_command(frame: ClientFrame) -> Option<(CommandId, Command)> {
    Some(match frame {
        ClientFrame::Play { id } => (id, Command::Play),
        ClientFrame::Pause { id } => (id, Command::Pause),
        ClientFrame::Seek { id, position } => (id, Command::Seek { position }),
        ClientFrame::Rate { id, rate } => (id, Command::SetRate { rate }),
        ClientFrame::QueueRemove { id, item_id } => (id, Command::QueueRemove { item_id }),
        ClientFrame::QueueMove { id, item_id, index } => {
            (id, Command::QueueMove { item_id, index })
        }
        ClientFrame::Skip { id } => (id, Command::Skip),
        ClientFrame::VoteSkip { id } => (id, Command::VoteSkip),
        ClientFrame::Promote { id, user_id } => (id, Command::Promote { user_id }),
        ClientFrame::Demote { id, user_id } => (id, Command::Demote { user_id }),
        ClientFrame::Kick { id, user_id } => (id, Command::Kick { user_id }),
        ClientFrame::Ban { id, user_id } => (id, Command::Ban { user_id }),
        ClientFrame::Unban { id, user_id } => (id, Command::Unban { user_id }),
        ClientFrame::Mute { id, user_id } => (id, Command::Mute { user_id }),
        ClientFrame::Unmute { id, user_id } => (id, Command::Unmute { user_id }),
        ClientFrame::Duration {
            id,
            item_id,
            duration,
        } => (id, Command::ReportDuration { item_id, duration }),
        ClientFrame::Ready { id, ready } => (id, Command::Ready { ready }),
        ClientFrame::Hello { .. }
        | ClientFrame::Ping { .. }
        | ClientFrame::QueueAdd { .. }
        | ClientFrame::QueueAddUpload { .. }
        | ClientFrame::QueueAddPlaylist { .. }
        | ClientFrame::Chat { .. }
        | ClientFrame::SetName { .. } => return None,
    })
}

fn command_error_frame(id: CommandId, err: &CommandError) -> ServerFrame {
    ServerFrame::Error {
        id: Some(id),
        code: err.code().into(),
        message: err.to_string(),
        retry_after_ms: err
            .retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}
