//! One WebSocket connection to a room: protocol v1 (see `docs/protocol.md`).
//!
//! The connection waits for `hello`, joins the room (welcome or resume), then runs one task that
//! `select!`s over the socket, its outgoing side, and shutdown. The room writes its events into
//! the socket itself ([`out`]); the connection's task runs only for what the client sends, for
//! bytes the socket could not take at once, and for the room's other messages (kicks, closes).
//! An idle viewer costs one small future, which is what lets a node hold many of them. Clock
//! pings are answered here, not by the room, so their timestamps are not delayed by the room's
//! work.
//!
//! # Layout
//! - this module: the session: the handshake (`hello`, resume), the connection's life, and how
//!   it ends (which frame and close code).
//! - [`transport`]: the socket: reading, writing through [`out`], pings, a polite close.
//! - [`out`]: the outgoing side that the room and the connection write to, bounded by bytes.
//! - what each frame does is [`crate::rooms::dispatch`]'s, shared with every other front door.

mod out;
mod transport;

use super::client::ClientAddr;
use super::rooms::{Access, door};
use super::upgrade::WsUpgrade;
use crate::auth::CurrentUser;
use crate::bus::{Outbound, Subscription};
use crate::error::ApiError;
use crate::rooms::dispatch::{Dispatch, JoinRefusal};
use crate::rooms::{Joined, Resume, RoomHandle};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use lockstep_core::ids::RoomId;
use lockstep_core::protocol::{
    CLOSE_BAD_DATA, CLOSE_POLICY, CLOSE_RESTART, CLOSE_TOO_BIG, ClientFrame,
    MAX_CLIENT_FRAME_BYTES, PROTOCOL_VERSION, ServerFrame, parse_client_frame,
};
use out::{Io, Out, Ready};
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use transport::{Incoming, READ_BUFFER, Transport};
use tungstenite::protocol::{Role, WebSocketConfig};

/// How long a new connection may take to send `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

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
    let (access, visit) = door(&state, room_id, user.id, client).await?;
    if access == Access::NeedsPassword {
        return Err(ApiError::PasswordRequired);
    }
    let tasks = state.tasks.clone();
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // tungstenite writes only pongs and the close frame, straight through to `Out`.
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_FRAME_BYTES))
        .max_frame_size(Some(MAX_CLIENT_FRAME_BYTES));
    Ok(ws.respond(move |socket| {
        let write_stall = socket.write_stall;
        let stream = Arc::new(socket.stream);
        let out = Arc::new(Out::new(stream.clone()));
        let io = Io::new(stream, socket.read, out.clone(), socket.place);
        // Making the stream awaits nothing: it is async only in name.
        let socket =
            WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).now_or_never();
        let metrics = state.metrics.clone();
        let conn = socket.map(|socket| Connection {
            transport: Transport::new(socket, out, write_stall, metrics),
            dispatch: Dispatch::new(state, user, client),
            visit,
        });
        tasks.track_future(OptionFuture::from(conn.map(|conn| run(conn, room_id))))
    }))
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

struct Connection {
    transport: Transport,
    /// What the frames do; also holds the server's state, which this connection uses too (one
    /// copy of it: an idle connection keeps all of this).
    dispatch: Dispatch,
    /// The join records a visit (none recorded lately).
    visit: bool,
}

/// Keeps the connection gauge right however the connection ends.
struct Gauge(crate::metrics::Metrics);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// A connection's life. Every idle viewer keeps this future, so it is kept small:
/// - an `async` block rather than an `async fn`: the body of an `async fn` moves its arguments
///   into locals, and the future then holds the connection twice;
/// - every step but the `serve` loop is boxed, so that its state takes memory only while it
///   runs, and the loop's own steps likewise (see [`Connection::serve`]).
///
/// The future was 5,136 bytes and is now 1,120 ([`tests::an_idle_connection_is_small`]).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold the connection twice (see above)"
)]
fn run(mut conn: Connection, room_id: RoomId) -> impl Future<Output = ()> {
    async move {
        conn.dispatch.state().metrics.connection_opened();
        let _gauge = Gauge(conn.dispatch.state().metrics.clone());
        let end = match Box::pin(conn.await_hello()).await {
            Err(end) => end,
            Ok(resume) => match Box::pin(conn.join(room_id, resume)).await {
                Err(end) => end,
                Ok((handle, events)) => {
                    let end = conn.serve(&handle, events).await;
                    Box::pin(handle.leave(conn.dispatch.user().id)).await;
                    if let End::Close(frame, _) = &end
                        && matches!(**frame, ServerFrame::Kicked { banned: true, .. })
                    {
                        Box::pin(conn.dispatch.banned_from(room_id)).await;
                    }
                    end
                }
            },
        };
        if let End::Close(frame, code) = end {
            Box::pin(conn.transport.close(*frame, code)).await;
        }
    }
}

impl Connection {
    fn reconnect_frame(&self, reason: &str) -> End {
        End::close(
            ServerFrame::Reconnect {
                reason: reason.into(),
                retry_after_ms: self.dispatch.state().config.reconnect_after_ms,
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
        let shutdown = self.dispatch.state().shutdown.clone();
        loop {
            let incoming = tokio::select! {
                () = &mut deadline => {
                    return Err(End::close(ServerFrame::error(None, "hello_timeout", "send hello first"), CLOSE_POLICY));
                }
                () = shutdown.cancelled() => return Err(self.reconnect_frame("server_shutdown")),
                incoming = self.transport.next() => incoming,
            };
            let received = self.dispatch.state().clock.now();
            let text = match incoming {
                Incoming::Text(text) => text,
                Incoming::Binary => {
                    self.transport
                        .send(&ServerFrame::error(
                            None,
                            "bad_frame",
                            "frames are JSON text",
                        ))
                        .await;
                    continue;
                }
                Incoming::Control => continue,
                Incoming::TooBig => return Err(Self::too_big()),
                Incoming::BadUtf8 => return Err(Self::bad_utf8()),
                Incoming::Gone => return Err(End::Gone),
            };
            self.dispatch.state().metrics.frame_in();
            let parsed = parse_client_frame(&text);
            // Frames before hello (pings, mostly) count against the connection's frame rate
            // like the rest; hello itself is let through.
            if let Ok(frame) = &parsed
                && !matches!(frame, ClientFrame::Hello { .. })
                && let Some(refused) = self.dispatch.over_rate(frame.id())
            {
                self.transport.send(&refused).await;
                continue;
            }
            let answer = match parsed {
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
                    self.dispatch.pong(id, client_time, received)
                }
                Ok(other) => ServerFrame::error(other.id(), "not_joined", "send hello first"),
                Err(e) => ServerFrame::error(e.id, e.code, e.message),
            };
            self.transport.send(&answer).await;
        }
    }

    /// Joins the room and sends the welcome or the missed events.
    async fn join(
        &mut self,
        room_id: RoomId,
        resume: Option<Resume>,
    ) -> Result<(RoomHandle, Subscription), End> {
        match self.dispatch.join(room_id, resume, self.visit).await {
            Ok((
                handle,
                Joined {
                    events,
                    frames,
                    after_seq,
                },
            )) => {
                // The welcome goes first; the events that came meanwhile follow it, and from
                // then on the room writes its events to the socket itself. The serving loop
                // writes what the socket did not take at once.
                if !self.transport.queue_texts(&frames) {
                    handle.leave(self.dispatch.user().id).await;
                    return Err(End::Gone);
                }
                if events
                    .attach(self.transport.out().clone(), after_seq)
                    .is_err()
                {
                    // More events came during the join than a subscription holds.
                    handle.leave(self.dispatch.user().id).await;
                    return Err(self.reconnect_frame("too_slow"));
                }
                Ok((handle, events))
            }
            Err(JoinRefusal::NoSuchRoom) => Err(End::close(
                ServerFrame::Closed {
                    message: "this room no longer exists".into(),
                },
                CLOSE_POLICY,
            )),
            Err(JoinRefusal::Banned) => Err(End::close(
                ServerFrame::Kicked {
                    banned: true,
                    message: "you are banned from this room".into(),
                },
                CLOSE_POLICY,
            )),
            Err(JoinRefusal::Unavailable) => Err(self.reconnect_frame("room_unavailable")),
        }
    }

    /// What a control message from the room means for this connection; `None` to go on.
    fn on_control(&self, message: Outbound) -> Option<End> {
        match message {
            Outbound::Removed { user_id, banned } if user_id == self.dispatch.user().id => {
                Some(kicked(banned))
            }
            Outbound::Removed { .. } | Outbound::Event { .. } => None,
            Outbound::Closed => Some(room_deleted()),
            Outbound::Reconnect => Some(self.reconnect_frame("room_restarting")),
        }
    }

    /// Serves a joined connection until it ends. `_events` is the room's subscription, attached
    /// to the socket: the connection keeps it (dropping it leaves the room's fan-out).
    async fn serve(&mut self, handle: &RoomHandle, _events: Subscription) -> End {
        // Made once: a `cancelled()` future made on every pass of the loop was 2.7% of the
        // server's CPU under fan-out.
        let shutdown = self.dispatch.state().shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        // Liveness: after half the silence allowed without a frame from the client, ping it
        // (browsers answer WebSocket pings themselves); with nothing by the whole, it is gone.
        // Our web client pings the clock every few seconds, so only dead peers get here.
        let half_silence = self.dispatch.state().config.ws_silence() / 2;
        let silence = tokio::time::sleep(half_silence);
        tokio::pin!(silence);
        let mut pinged = false;
        let out = self.transport.out().clone();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return self.reconnect_frame("server_shutdown"),
                () = &mut silence => {
                    if pinged {
                        tracing::debug!(user = %self.dispatch.user().id, "connection silent; closing it");
                        return End::Gone;
                    }
                    pinged = true;
                    silence.as_mut().reset(tokio::time::Instant::now() + half_silence);
                    self.transport.ping();
                }
                ready = poll_fn(|cx| out.poll_ready(cx)) => match ready {
                    Ready::Control(control) => {
                        if let Some(end) = self.on_control(control) {
                            return end;
                        }
                    }
                    Ready::Broken => return End::Gone,
                    Ready::Overflow => {
                        // Too far behind to be sent everything: it resumes from its last event.
                        tracing::debug!(user = %self.dispatch.user().id, "connection too slow; asking it to reconnect");
                        return self.reconnect_frame("too_slow");
                    }
                    // Boxed, as every step below: the loop's own state is what an idle
                    // connection keeps, and a write's is not needed between writes.
                    Ready::Drain => {
                        if !Box::pin(self.transport.drain()).await {
                            return End::Gone;
                        }
                    }
                },
                incoming = self.transport.next() => {
                    let received = self.dispatch.state().clock.now();
                    pinged = false;
                    silence.as_mut().reset(tokio::time::Instant::now() + half_silence);
                    match incoming {
                        Incoming::Text(text) => {
                            // The command's own event (and any other) goes out with the answer.
                            self.transport.cork();
                            let answer = Box::pin(self.dispatch.text(handle, &text, received)).await;
                            // A connection that cannot take it is seen to next pass.
                            self.transport.answer(answer.as_ref());
                        }
                        Incoming::Binary => {
                            self.transport.queue(&ServerFrame::error(None, "bad_frame", "frames are JSON text"));
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
}

#[cfg(test)]
mod tests {
    /// The size of the future that `f` returns, without making one.
    fn output_size<A, B, F: Future>(_: impl FnOnce(A, B) -> F) -> usize {
        size_of::<F>()
    }

    /// Every idle viewer keeps this future: a step that grows it past this (say an await of a
    /// large future in `serve` that is not boxed) costs memory on every connection of the node.
    #[test]
    fn an_idle_connection_is_small() {
        let size = output_size(super::run);
        eprintln!("connection future: {size} bytes");
        eprintln!(
            "SZ frame={} sleep={} conn={} wfc={} recv={} transport={} dispatch={} incoming={}",
            size_of::<lockstep_core::protocol::ServerFrame>(),
            size_of::<tokio::time::Sleep>(),
            size_of::<super::Connection>(),
            size_of::<tokio_util::sync::WaitForCancellationFutureOwned>(),
            0,
            size_of::<super::Transport>(),
            size_of::<super::Dispatch>(),
            size_of::<super::Incoming>()
        );
        assert!(size <= 1600, "the connection future is {size} bytes");
    }
}
