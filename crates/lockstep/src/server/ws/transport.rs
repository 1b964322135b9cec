//! The WebSocket transport of a connection: reading frames, writing text as fragments, writing
//! a room's waiting events in one go, pings, and closing politely. It knows nothing of rooms or
//! of the protocol's frames beyond serialising them.

use crate::bus::Outbound;
use crate::metrics::Metrics;
use crate::server::upgrade::Socket;
use futures_util::{SinkExt, StreamExt};
use lockstep_core::protocol::{CLOSE_BAD_DATA, CLOSE_TOO_BIG, ServerFrame};
use std::time::Duration;
use tokio::sync::broadcast;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tungstenite::{Bytes, Message};

/// How long one write to a client may take before the connection is dropped as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// tungstenite's read buffer per connection, which is also how much one read takes from the
/// socket. Its default, 128 KiB, is far too much: clients send frames of a few hundred bytes (a
/// larger one takes a few reads, or grows the buffer as needed). Measured with lockstep-loadgen:
/// 4 KiB read buffer and 4 KiB fragments cost 15.5 KiB per idle connection, 1 KiB and 2 KiB cost
/// 10.9 KiB; with the smaller connection future, 256 bytes and 1 KiB cost 5.6 KiB.
pub(super) const READ_BUFFER: usize = 256;
/// Outgoing bytes a connection may have queued before it counts as stuck.
pub(super) const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Messages longer than this go out as fragments of this size. tungstenite's write buffer keeps
/// the capacity of the largest frame it wrote, so this is what an idle connection keeps, instead
/// of the size of its welcome. It is also the write buffer's size: a batch of events goes out in
/// writes of about this much.
pub(super) const FRAGMENT: usize = 1024;
/// How long the server waits for the client's reply to its close frame before dropping the
/// socket. Dropping a socket with unread input makes the kernel send a reset, which can destroy
/// the close frame (and its code) before the client reads it, as with an oversized frame whose
/// payload was never read.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Room events a connection writes in one go when several are already waiting.
const BATCH: usize = 32;

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

/// One WebSocket.
pub(super) struct Transport {
    socket: Socket,
    metrics: Metrics,
}

impl Transport {
    pub(super) fn new(socket: Socket, metrics: Metrics) -> Self {
        Transport { socket, metrics }
    }

    /// The next thing the client sent.
    pub(super) async fn next(&mut self) -> Incoming {
        classify(self.socket.next().await)
    }

    /// Sends a frame's text; `false` when the socket is gone or stuck.
    pub(super) async fn send_text(&mut self, text: Utf8Bytes) -> bool {
        let send = async {
            feed_message(&mut self.socket, text).await?;
            self.socket.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(())) => {
                self.metrics.frame_out();
                true
            }
            _ => false,
        }
    }

    /// Sends a frame; `false` when the socket is gone or stuck.
    pub(super) async fn send(&mut self, frame: &ServerFrame) -> bool {
        match serde_json::to_string(frame) {
            Ok(text) => self.send_text(text.into()).await,
            Err(_) => false,
        }
    }

    /// As [`Transport::send`], taking the frame.
    pub(super) async fn send_owned(&mut self, frame: ServerFrame) -> bool {
        self.send(&frame).await
    }

    /// Sends a WebSocket ping (browsers answer it themselves); `false` when the socket is gone.
    pub(super) async fn ping(&mut self) -> bool {
        let ping = self.socket.send(Message::Ping(Bytes::new()));
        matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(())))
    }

    /// Writes `first` and the events already waiting behind it (up to [`BATCH`], skipping those
    /// numbered up to `skip_through`, which the client has) with a single
    /// flush, so that a busy room costs one write per batch rather than one per event. A control
    /// message met while draining ends the batch and is returned for the caller to act on.
    /// `Err` when the socket is gone or stuck.
    pub(super) async fn send_events(
        &mut self,
        first: Utf8Bytes,
        published: std::time::Instant,
        events: &mut broadcast::Receiver<Outbound>,
        skip_through: u64,
    ) -> Result<Option<Outbound>, ()> {
        self.write_batch(None, Some((first, published)), events, skip_through)
            .await
    }

    /// Sends the answer to a client's frame and, in the same write, the room's events already
    /// waiting (a command's own event is usually among them: one write instead of two). As
    /// [`Transport::send_events`] otherwise.
    pub(super) async fn send_answer(
        &mut self,
        answer: ServerFrame,
        events: &mut broadcast::Receiver<Outbound>,
        skip_through: u64,
    ) -> Result<Option<Outbound>, ()> {
        let Ok(text) = serde_json::to_string(&answer) else {
            return Err(());
        };
        self.write_batch(Some(text.into()), None, events, skip_through)
            .await
    }

    async fn write_batch(
        &mut self,
        answer: Option<Utf8Bytes>,
        first: Option<(Utf8Bytes, std::time::Instant)>,
        events: &mut broadcast::Receiver<Outbound>,
        skip_through: u64,
    ) -> Result<Option<Outbound>, ()> {
        // Counted, not collected: no allocation per write. The latency histogram takes one
        // sample per write, of the batch's oldest event (the one that waited longest), instead
        // of a lock per delivery.
        let mut frames = u64::from(answer.is_some());
        let mut oldest = first.as_ref().map(|(_, published)| *published);
        let mut pending = None;
        let write = async {
            if let Some(answer) = answer {
                feed_message(&mut self.socket, answer).await?;
            }
            let mut events_sent = 0;
            if let Some((first, _)) = first {
                feed_message(&mut self.socket, first).await?;
                events_sent += 1;
            }
            while events_sent < BATCH {
                match events.try_recv() {
                    Ok(Outbound::Event { seq, .. }) if seq <= skip_through => {}
                    Ok(Outbound::Event {
                        frame, published, ..
                    }) => {
                        feed_message(&mut self.socket, frame).await?;
                        events_sent += 1;
                        oldest.get_or_insert(published);
                    }
                    Ok(other) => {
                        pending = Some(other);
                        break;
                    }
                    // Empty, or lagged: the next `recv` reports the lag.
                    Err(_) => break,
                }
            }
            frames += events_sent as u64;
            self.socket.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            _ => return Err(()),
        }
        self.metrics.frames_out(frames);
        if let Some(oldest) = oldest {
            self.metrics.delivered(oldest.elapsed().as_secs_f64());
        }
        Ok(pending)
    }

    /// Sends `frame`, then a close with `code`, and lingers until the client answers the close.
    pub(super) async fn close(&mut self, frame: ServerFrame, code: u16) {
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
}
