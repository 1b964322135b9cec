//! A WebSocket connection's outgoing side, which its room writes to as well as the connection.
//!
//! The room hands each attached connection its events already framed ([`crate::bus::wire`]);
//! [`Out`] writes them straight into the socket with one non-blocking `write`, from the room's
//! task. Only when the socket cannot take them all at once does the rest wait in a queue, and
//! the connection's task is woken to write it when the socket is writable again. The queue is
//! bounded by bytes ([`MAX_QUEUED`]): a viewer too slow to keep up is not given more memory but
//! told to reconnect and resume from the room's replay ring, once what it is in the middle of
//! receiving is finished (so the stream stays well-formed).
//!
//! Everything written goes through one lock, so messages from the room and from the
//! connection (answers, pings, the welcome, tungstenite's pongs and close replies) never
//! interleave within a frame.
//!
//! [`Io`] is what tungstenite reads the client from: the socket, after what hyper had already
//! read past the HTTP upgrade. What tungstenite writes itself (pongs, close replies) goes
//! through [`Out`] too.

use crate::bus::{Deliver, Outbound};
use crate::server::listen::Place;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes a connection may have waiting for its socket before it counts as too slow. The
/// kernel's socket buffer comes first (several hundred KiB on loopback); this is what the
/// server keeps beyond it, for a viewer whose network stalls for a moment.
pub(super) const MAX_QUEUED: usize = 1024 * 1024;
/// Pieces (batches of messages) a connection may have waiting, whatever their bytes: each costs a
/// slot and a handle besides its shared bytes, so a queue of tiny events is bounded too.
const MAX_PIECES: usize = 4096;
/// Control messages (kicks of anyone in the room, closes) a connection keeps until it reads
/// them; it reads them as soon as it runs, so more than this means it is stuck.
const MAX_CONTROLS: usize = 64;
/// Pieces written in one vectored write when draining the queue.
const MAX_SLICES: usize = 64;

/// What the connection's task must do about its outgoing side.
pub(super) enum Ready {
    /// A message from the room that is not an event.
    Control(Outbound),
    /// The socket failed.
    Broken,
    /// The queue passed [`MAX_QUEUED`]: the client is too slow.
    Overflow,
    /// Bytes wait for the socket.
    Drain,
}

/// A connection's outgoing side.
pub(super) struct Out {
    stream: Arc<TcpStream>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    queued: usize,
    /// The queue's first piece is the rest of a message already partly written.
    head_started: bool,
    overflow: bool,
    broken: bool,
    /// The connection is closing: the room's messages are no longer taken.
    closing: bool,
    /// The connection is waiting for the answer to its client's frame: what comes meanwhile
    /// waits, to go out with the answer in one write (see [`Out::cork`]).
    corked: bool,
    controls: VecDeque<Outbound>,
    waker: Option<Waker>,
}

impl State {
    /// The queue holds more than a connection may keep.
    fn over_bound(&self) -> bool {
        self.queued > MAX_QUEUED || self.queue.len() > MAX_PIECES
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Forgets `n` written bytes from the front of the queue.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(head) = self.queue.front_mut() else {
                break;
            };
            if n < head.len() {
                head.advance(n);
                self.head_started = true;
                return;
            }
            n -= head.len();
            self.queue.pop_front();
            self.head_started = false;
        }
    }
}

impl Out {
    pub(super) fn new(stream: Arc<TcpStream>) -> Self {
        Out {
            stream,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock panics halfway through a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `wire` (whole messages) now if the socket takes it, else queues it behind what
    /// waits. False when the connection takes nothing more.
    pub(super) fn push(&self, wire: Bytes) -> bool {
        let mut state = self.lock();
        self.push_shared(&mut state, &wire)
    }

    /// As [`Out::push`], taking the bytes by reference: the room's bytes, shared by every
    /// viewer, are cloned (a reference count) only when they must wait.
    fn push_shared(&self, state: &mut State, wire: &Bytes) -> bool {
        if state.broken || state.overflow {
            return false;
        }
        let len = wire.len();
        if len == 0 {
            // Never queued: an empty piece would never be written away.
            return true;
        }
        if state.queue.is_empty() && !state.corked {
            match self.stream.try_write(wire) {
                Ok(n) if n == len => return true,
                Ok(n) => {
                    state.head_started = n > 0;
                    state.queue.push_back(wire.slice(n..));
                    state.queued += len - n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    state.queue.push_back(wire.clone());
                    state.queued += len;
                }
                Err(_) => {
                    state.broken = true;
                    state.wake();
                    return false;
                }
            }
        } else {
            state.queue.push_back(wire.clone());
            state.queued += len;
        }
        if state.over_bound() {
            state.overflow = true;
        }
        if !state.corked || state.overflow {
            state.wake();
        }
        true
    }

    /// Holds what is written until [`Out::uncork`]: while a client's command is with its room,
    /// the room's events (the command's own among them) wait and go out in the same write as
    /// the answer, one `send` instead of two.
    pub(super) fn cork(&self) {
        self.lock().corked = true;
    }

    /// Queues `answer` behind what waited and writes as much as the socket takes at once; the
    /// connection's task writes the rest (it is woken for it).
    pub(super) fn uncork(&self, answer: Bytes) {
        let mut state = self.lock();
        state.corked = false;
        if state.broken || state.overflow {
            return;
        }
        if !answer.is_empty() {
            state.queued += answer.len();
            state.queue.push_back(answer);
            if state.over_bound() {
                state.overflow = true;
                state.wake();
                return;
            }
        }
        if state.queue.is_empty() {
            return;
        }
        self.write_now(&mut state);
        if !state.queue.is_empty() {
            state.wake();
        }
    }

    /// One vectored write of the queue, as much as the socket takes without waiting.
    fn write_now(&self, state: &mut State) {
        let slices: Vec<IoSlice<'_>> = state
            .queue
            .iter()
            .take(MAX_SLICES)
            .map(|piece| IoSlice::new(piece))
            .collect();
        let written = self.stream.try_write_vectored(&slices);
        drop(slices);
        match written {
            Ok(n) => state.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                state.broken = true;
                state.wake();
            }
        }
    }

    /// What the connection must do next; registers it to be woken otherwise.
    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Ready> {
        let mut state = self.lock();
        if let Some(control) = state.controls.pop_front() {
            return Poll::Ready(Ready::Control(control));
        }
        if state.broken {
            return Poll::Ready(Ready::Broken);
        }
        if state.overflow {
            return Poll::Ready(Ready::Overflow);
        }
        if !state.queue.is_empty() && !state.corked {
            return Poll::Ready(Ready::Drain);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Writes what waits, as the socket takes it, until nothing does, or until the connection
    /// has something more pressing to do (the queue overflowed, or a control message came):
    /// the serving loop then sees it at once instead of after the socket drains.
    pub(super) async fn drain(&self) -> io::Result<()> {
        loop {
            {
                let mut state = self.lock();
                if state.broken {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                if state.queue.is_empty() || state.overflow || !state.controls.is_empty() {
                    return Ok(());
                }
                let before = state.queued;
                self.write_now(&mut state);
                if state.broken {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                if state.queued < before {
                    continue;
                }
            }
            // Until the socket is writable, or the room has news for the connection.
            poll_fn(|cx| {
                {
                    let mut state = self.lock();
                    if state.overflow || state.broken || !state.controls.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    state.waker = Some(cx.waker().clone());
                }
                self.stream.poll_write_ready(cx)
            })
            .await?;
        }
    }

    /// Takes the connection's last message (the frame that says why it closes; the close frame
    /// follows): the room's messages are no longer taken, and when the queue overflowed, what
    /// has not begun to be written is dropped first (the client resumes from its last event).
    pub(super) fn finish(&self, last: Bytes) {
        let mut state = self.lock();
        state.closing = true;
        if state.overflow {
            let keep = usize::from(state.head_started);
            state.queue.truncate(keep);
            state.queued = state.queue.front().map_or(0, Bytes::len);
            state.overflow = false;
        }
        self.push_shared(&mut state, &last);
    }
}

impl Deliver for Out {
    fn events(&self, wire: &Bytes) -> bool {
        let mut state = self.lock();
        if state.closing {
            return false;
        }
        self.push_shared(&mut state, wire)
    }

    fn control(&self, message: Outbound) {
        let mut state = self.lock();
        if state.closing {
            return;
        }
        if state.controls.len() < MAX_CONTROLS {
            state.controls.push_back(message);
        } else {
            state.broken = true;
        }
        state.wake();
    }
}

/// What tungstenite reads from and writes its own frames to.
pub(super) struct Io {
    stream: Arc<TcpStream>,
    /// What hyper read past the upgrade request, read first.
    prefix: Bytes,
    out: Arc<Out>,
    /// The connection's place in the counts, given back when the socket closes.
    _place: Place,
}

impl Io {
    pub(super) fn new(stream: Arc<TcpStream>, prefix: Bytes, out: Arc<Out>, place: Place) -> Self {
        Io {
            stream,
            // Copied: the slice would keep hyper's whole read buffer alive.
            prefix: Bytes::copy_from_slice(&prefix),
            out,
            _place: place,
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = buf.remaining().min(this.prefix.len());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            if this.prefix.is_empty() {
                // An empty slice still keeps hyper's whole read buffer alive.
                this.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            match this.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.out.push(Bytes::copy_from_slice(buf)) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
    }

    /// The connection's task writes what is queued (see [`Out::drain`]).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::wire;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Arc::new(server), client)
    }

    /// Reads whole frames from `bytes`: their payloads, and whether the bytes ended on a frame's
    /// end.
    fn frames(bytes: &[u8]) -> (Vec<Vec<u8>>, bool) {
        let mut cursor = std::io::Cursor::new(bytes);
        let mut payloads = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let Some((_, len)) =
                tungstenite::protocol::frame::FrameHeader::parse(&mut cursor).unwrap()
            else {
                return (payloads, false);
            };
            let start = cursor.position() as usize;
            let end = start + len as usize;
            if end > bytes.len() {
                return (payloads, false);
            }
            payloads.push(bytes[start..end].to_vec());
            cursor.set_position(end as u64);
        }
        (payloads, true)
    }

    #[tokio::test]
    async fn a_reader_gets_the_messages_in_order_when_the_socket_is_writable() {
        let (server, mut client) = pair().await;
        let out = Out::new(server);
        for i in 0..100 {
            assert!(out.events(&wire::text(&format!("event {i}"))));
        }
        out.drain().await.unwrap();
        drop(out);
        let mut bytes = Vec::new();
        client.read_to_end(&mut bytes).await.unwrap();
        let (payloads, whole) = frames(&bytes);
        assert!(whole);
        let expected: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("event {i}").into_bytes())
            .collect();
        assert_eq!(payloads, expected);
    }

    #[tokio::test]
    async fn events_held_while_a_command_is_answered_go_out_with_the_answer() {
        let (server, mut client) = pair().await;
        let out = Out::new(server);
        out.cork();
        assert!(out.events(&wire::text("event")));
        let mut byte = [0u8; 1];
        assert_eq!(
            client.try_read(&mut byte).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing is written while corked"
        );
        out.uncork(wire::text("answer"));
        assert!(out.lock().queue.is_empty(), "one write took both");
        drop(out);
        let mut bytes = Vec::new();
        client.read_to_end(&mut bytes).await.unwrap();
        assert_eq!(frames(&bytes).0, [b"event".to_vec(), b"answer".to_vec()]);
    }

    #[tokio::test]
    async fn nothing_empty_is_ever_queued() {
        let (server, _client) = pair().await;
        let out = Out::new(server);
        out.cork();
        assert!(out.push(Bytes::new()));
        out.uncork(Bytes::new());
        assert!(out.lock().queue.is_empty());
        // An empty piece in the queue would make the connection drain forever.
        out.drain().await.unwrap();
    }

    /// A client that stops reading fills the socket, then the queue up to its bound; the
    /// connection is then told, takes nothing more from the room, and its last frames follow
    /// whole messages only.
    #[tokio::test]
    async fn a_client_that_stops_reading_overflows_the_bound_and_still_gets_whole_frames() {
        let (server, mut client) = pair().await;
        let out = Out::new(server);
        let line = "x".repeat(10_000);
        let message = wire::text(&line);
        let mut pushed = 0usize;
        while out.events(&message) {
            pushed += 1;
            assert!(pushed < 100_000, "the bound never applied");
        }
        let ready = poll_fn(|cx| Poll::Ready(out.poll_ready(cx))).await;
        assert!(matches!(ready, Poll::Ready(Ready::Overflow)));
        let queued = out.lock().queued;
        assert!(
            queued <= MAX_QUEUED + message.len(),
            "{queued} bytes queued"
        );
        out.finish(wire::texts(["bye"]));
        assert!(
            !out.events(&message),
            "a closing connection takes no events"
        );
        let reader = tokio::spawn(async move {
            let mut bytes = Vec::new();
            client.read_to_end(&mut bytes).await.unwrap();
            bytes
        });
        out.drain().await.unwrap();
        drop(out);
        let bytes = reader.await.unwrap();
        let (payloads, whole) = frames(&bytes);
        assert!(whole, "the stream ends on a frame's end");
        assert_eq!(payloads.last().unwrap(), b"bye");
        assert!(
            payloads[..payloads.len() - 1]
                .iter()
                .all(|p| *p == line.as_bytes())
        );
        assert!(payloads.len() < pushed, "unstarted messages were dropped");
    }
}
