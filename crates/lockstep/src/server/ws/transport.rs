//! The WebSocket transport of a connection: reading frames (tungstenite), writing text through
//! the connection's outgoing side ([`Out`], which its room writes to as well), pings, and
//! closing politely. It knows nothing of rooms or of the protocol's frames beyond serialising
//! them.

use super::out::{Io, Out};
use crate::bus::wire;
use crate::metrics::Metrics;
use futures_util::{SinkExt, StreamExt};
use lockstep_core::protocol::{CLOSE_BAD_DATA, CLOSE_TOO_BIG, ServerFrame};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Utf8Bytes;
use tungstenite::protocol::frame::coding::CloseCode;

/// tungstenite's read buffer per connection, which is also how much one read takes from the
/// socket. Its default, 128 KiB, is far too much: clients send frames of a few hundred bytes (a
/// larger one takes a few reads, or grows the buffer as needed). Measured with lockstep-loadgen:
/// 4 KiB read buffer and 4 KiB fragments cost 15.5 KiB per idle connection, 1 KiB and 2 KiB cost
/// 10.9 KiB; with the smaller connection future, 256 bytes and 1 KiB cost 5.6 KiB.
pub(super) const READ_BUFFER: usize = 256;
/// How long the server waits for the client's reply to its close frame before dropping the
/// socket. Dropping a socket with unread input makes the kernel send a reset, which can destroy
/// the close frame (and its code) before the client reads it, as with an oversized frame whose
/// payload was never read.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What reading the socket gave.
pub(super) enum Incoming {
    Text(Utf8Bytes),
    Binary,
    /// Control frames (ping/pong) that tungstenite answers itself.
    Control,
    TooBig,
    /// A text frame that is not UTF-8: tungstenite stops reading after it.
    BadUtf8,
    Gone,
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

fn serialize(frame: &ServerFrame) -> Option<String> {
    serde_json::to_string(frame).ok()
}

/// One WebSocket.
pub(super) struct Transport {
    socket: WebSocketStream<Io>,
    out: Arc<Out>,
    /// How long queued bytes may wait for the socket before the client counts as gone.
    write_stall: Duration,
    /// Counts the frames this connection writes itself (the room counts its events).
    metrics: Metrics,
}

impl Transport {
    pub(super) fn new(
        socket: WebSocketStream<Io>,
        out: Arc<Out>,
        write_stall: Duration,
        metrics: Metrics,
    ) -> Self {
        Transport {
            socket,
            out,
            write_stall,
            metrics,
        }
    }

    /// The outgoing side, for the room to write to.
    pub(super) fn out(&self) -> &Arc<Out> {
        &self.out
    }

    /// The next thing the client sent.
    pub(super) async fn next(&mut self) -> Incoming {
        classify(self.socket.next().await)
    }

    /// Writes what waits for the socket; `false` when the socket is gone or stalled.
    pub(super) async fn drain(&self) -> bool {
        matches!(
            tokio::time::timeout(self.write_stall, self.out.drain()).await,
            Ok(Ok(()))
        )
    }

    /// Queues text messages, in one write when the socket takes it; `false` when the
    /// connection takes nothing more. The serving loop writes what waits.
    pub(super) fn queue_texts(&self, texts: &[Utf8Bytes]) -> bool {
        self.metrics.frames_out(texts.len() as u64);
        self.out
            .push(wire::texts(texts.iter().map(Utf8Bytes::as_str)))
    }

    /// Holds the room's events until [`Transport::answer`] (see [`Out::cork`]).
    pub(super) fn cork(&self) {
        self.out.cork();
    }

    /// Sends the answer to a client's frame, if it has one, together with the events held
    /// since [`Transport::cork`].
    pub(super) fn answer(&self, frame: Option<&ServerFrame>) {
        let answer = frame
            .and_then(serialize)
            .map(|text| wire::text(&text))
            .unwrap_or_default();
        if !answer.is_empty() {
            self.metrics.frame_out();
        }
        self.out.uncork(answer);
    }

    /// Queues a frame (as [`Transport::queue_texts`]).
    pub(super) fn queue(&self, frame: &ServerFrame) -> bool {
        match serialize(frame) {
            Some(text) => {
                self.metrics.frame_out();
                self.out.push(wire::text(&text))
            }
            None => false,
        }
    }

    /// Sends a frame and waits until the socket has it; `false` when the socket is gone or
    /// stalled. For the handshake, before the serving loop writes what waits.
    pub(super) async fn send(&self, frame: &ServerFrame) -> bool {
        self.queue(frame) && self.drain().await
    }

    /// Queues a WebSocket ping (browsers answer it themselves).
    pub(super) fn ping(&self) -> bool {
        self.out.push(wire::ping())
    }

    /// Sends `frame`, then a close with `code`, and lingers until the client answers the close.
    /// What the room sent before is written first (whole messages only: see [`Out::finish`]).
    pub(super) async fn close(&mut self, frame: ServerFrame, code: u16) {
        let reason = match &frame {
            ServerFrame::Error { code, .. } => code.clone(),
            ServerFrame::Kicked { .. } => "kicked".into(),
            ServerFrame::Closed { .. } => "room deleted".into(),
            ServerFrame::Reconnect { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        if let Some(text) = serialize(&frame) {
            self.metrics.frame_out();
            self.out.finish(wire::text(&text));
        }
        // Through tungstenite, which then knows that the server began the close.
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }));
        if self.socket.send(close).await.is_err() || !self.drain().await {
            return;
        }
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
}
