//! Fan-out of room events to the connections watching the room.
//!
//! In process: each live room keeps the list of its subscriptions ([`RoomBus`]). An event is
//! serialised once by the room actor, framed once as a WebSocket message ([`wire`]), and the
//! room writes those same bytes straight into every attached connection's socket
//! ([`Deliver`]): one `write` per viewer per batch of events, from the room's own task, with no
//! task woken per viewer. Only a socket that cannot take the bytes at once queues them, bounded
//! by bytes, and wakes its connection to write the rest; a connection past the bound is told to
//! reconnect and resume (see `server::ws::out`).
//!
//! A subscription starts as a queue: events wait in it while the connection sends its welcome,
//! so that nothing overtakes the welcome, and it is then attached to the socket. Consumers
//! that are not sockets (a cluster node forwarding kicks, tests) keep reading the queue with
//! [`Subscription::recv`]; a queue that falls [`ROOM_CHANNEL_CAPACITY`] events behind is told it
//! lagged and emptied.
//!
//! # Layout
//! - this module: a room's fan-out to its connections ([`RoomBus`]).
//! - [`wire`]: WebSocket framing of the server's messages.
//! - [`backplane`]: messages every node must see (media job changes): in process on one node,
//!   through Redis between several.

pub mod backplane;
pub mod wire;

use bytes::Bytes;
use lockstep_core::ids::UserId;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Instant;
use tungstenite::Utf8Bytes;

/// Room events a queued subscription (one not attached to a socket yet, or a consumer that is
/// not a socket) may fall behind by before it is told it lagged. What the queue points to is
/// bounded by bytes too: every event is bounded (a chat line by 1,000 characters, a queue
/// item's URL by 2 KiB and its title by 300 characters, so a frame is at most a few KiB) and its
/// bytes are shared with the room's replay ring ([`crate::rooms::ring::RING_MAX_BYTES`]).
pub const ROOM_CHANNEL_CAPACITY: usize = 256;

/// What a room tells its connections.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A numbered room event, already serialised.
    Event {
        seq: u64,
        frame: Utf8Bytes,
        /// When the actor published it, for the broadcast latency histogram.
        published: Instant,
    },
    /// The user's connections must close: kicked or banned.
    Removed { user_id: UserId, banned: bool },
    /// The room was deleted.
    Closed,
    /// The room is stopping (server shutdown or a store failure): reconnect to resume.
    Reconnect,
}

/// Where an attached subscription's messages go: a connection's socket.
pub trait Deliver: Send + Sync {
    /// Takes events already framed for the wire (one or more WebSocket messages, in order).
    /// Returns false when the connection takes nothing more (it is closing).
    fn events(&self, wire: &Bytes) -> bool;
    /// Takes a message that is not an event.
    fn control(&self, message: Outbound);
}

/// Why [`Subscription::recv`] gave no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// This many messages were dropped: the consumer fell too far behind.
    Lagged(u64),
    /// The room's bus is gone.
    Closed,
}

/// One subscription's state, shared by the room's bus and the subscriber.
#[derive(Default)]
struct Sink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// Messages not yet read or handed on (only while not attached).
    queue: VecDeque<Outbound>,
    lagged: u64,
    /// The bus is gone.
    closed: bool,
    /// The subscriber is gone: the bus forgets it.
    gone: bool,
    waker: Option<Waker>,
    /// Once attached: where messages go, and the last event the connection has already.
    target: Option<(Arc<dyn Deliver>, u64)>,
}

impl Sink {
    fn lock(&self) -> MutexGuard<'_, SinkState> {
        // Nothing under this lock can panic halfway through a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SinkState {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Queues a message for a subscriber that reads the queue.
    fn enqueue(&mut self, message: Outbound) {
        if self.queue.len() >= ROOM_CHANNEL_CAPACITY {
            // Too far behind to catch up message by message: the reader starts over.
            self.lagged += self.queue.len() as u64 + 1;
            self.queue.clear();
        } else {
            self.queue.push_back(message);
        }
        self.wake();
    }
}

/// A batch of events framed once for every subscriber.
struct Framed<'a> {
    events: &'a [(u64, Utf8Bytes)],
    wire: Option<(Bytes, Vec<usize>)>,
}

impl Framed<'_> {
    /// The wire bytes of the events numbered after `skip_through`, if any.
    fn after(&mut self, skip_through: u64) -> Option<Bytes> {
        let first = self
            .events
            .iter()
            .position(|(seq, _)| *seq > skip_through)?;
        let (wire, offsets) = self.wire.get_or_insert_with(|| {
            let mut offsets = Vec::with_capacity(self.events.len());
            let mut buf = bytes::BytesMut::new();
            for (_, text) in self.events {
                offsets.push(buf.len());
                wire::push_text(&mut buf, text.as_str());
            }
            (buf.freeze(), offsets)
        });
        Some(if first == 0 {
            wire.clone()
        } else {
            wire.slice(offsets[first]..)
        })
    }
}

/// The sending side of a room's fan-out; clones share the subscribers.
#[derive(Clone, Default)]
pub struct RoomBus {
    hub: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    sinks: Mutex<Vec<Arc<Sink>>>,
}

impl Hub {
    fn sinks(&self) -> MutexGuard<'_, Vec<Arc<Sink>>> {
        // Only pushes and `retain` happen under this lock.
        self.sinks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for sink in self.sinks().drain(..) {
            let mut state = sink.lock();
            state.closed = true;
            if let Some((target, _)) = &state.target {
                target.control(Outbound::Reconnect);
            }
            state.wake();
        }
    }
}

impl std::fmt::Debug for RoomBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomBus")
            .field("subscribers", &self.hub.sinks().len())
            .finish()
    }
}

impl RoomBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends one message to every subscriber; having none is fine.
    pub fn send(&self, message: Outbound) {
        match message {
            Outbound::Event {
                seq,
                frame,
                published,
            } => {
                self.send_events(&[(seq, frame)], published);
            }
            other => self.hub.sinks().retain(|sink| {
                let mut state = sink.lock();
                if state.gone {
                    return false;
                }
                match &state.target {
                    Some((target, _)) => target.control(other.clone()),
                    None => state.enqueue(other.clone()),
                }
                true
            }),
        }
    }

    /// Sends numbered events, in order, to every subscriber: an attached one gets them framed
    /// in one piece (one write), skipping those it has. Returns how many connections were
    /// handed the events.
    pub fn send_events(&self, events: &[(u64, Utf8Bytes)], published: Instant) -> usize {
        let mut framed = Framed { events, wire: None };
        let mut delivered = 0;
        self.hub.sinks().retain(|sink| {
            let mut state = sink.lock();
            if state.gone {
                return false;
            }
            match &state.target {
                Some((target, skip_through)) => {
                    if let Some(wire) = framed.after(*skip_through)
                        && target.events(&wire)
                    {
                        delivered += 1;
                    }
                }
                None => {
                    for (seq, frame) in events {
                        state.enqueue(Outbound::Event {
                            seq: *seq,
                            frame: frame.clone(),
                            published,
                        });
                    }
                }
            }
            true
        });
        delivered
    }

    /// A new subscription that sees everything sent from now on.
    pub fn subscribe(&self) -> Subscription {
        let sink = Arc::new(Sink::default());
        let mut sinks = self.hub.sinks();
        // Subscribers that left while the room was quiet are forgotten here too.
        sinks.retain(|sink| !sink.lock().gone);
        sinks.push(sink.clone());
        Subscription { sink }
    }

    /// How many subscriptions the bus holds.
    pub fn subscribers(&self) -> usize {
        self.hub.sinks().len()
    }
}

/// The receiving side of a room's fan-out. Dropping it unsubscribes.
pub struct Subscription {
    sink: Arc<Sink>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.sink.lock();
        state.gone = true;
        state.target = None;
        state.queue.clear();
    }
}

impl Subscription {
    /// The next message in the queue (for a subscription that is not attached).
    pub async fn recv(&mut self) -> Result<Outbound, Recv> {
        poll_fn(|cx| {
            let mut state = self.sink.lock();
            if state.lagged > 0 {
                return Poll::Ready(Err(Recv::Lagged(std::mem::take(&mut state.lagged))));
            }
            if let Some(message) = state.queue.pop_front() {
                return Poll::Ready(Ok(message));
            }
            if state.closed {
                return Poll::Ready(Err(Recv::Closed));
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// From now on, hands every message to `target` as it is sent, beginning with what waits
    /// in the queue; events numbered up to `skip_through` (which the connection has) are
    /// skipped. Fails when the queue lagged (the connection must start over).
    pub fn attach(&self, target: Arc<dyn Deliver>, skip_through: u64) -> Result<(), Recv> {
        let mut state = self.sink.lock();
        if state.lagged > 0 {
            return Err(Recv::Lagged(state.lagged));
        }
        let mut events = Vec::new();
        for message in std::mem::take(&mut state.queue) {
            match message {
                Outbound::Event { seq, frame, .. } => {
                    if seq > skip_through {
                        events.push(frame);
                    }
                }
                control => {
                    if !events.is_empty() {
                        target.events(&wire::texts(events.iter().map(Utf8Bytes::as_str)));
                        events.clear();
                    }
                    target.control(control);
                }
            }
        }
        if !events.is_empty() {
            target.events(&wire::texts(events.iter().map(Utf8Bytes::as_str)));
        }
        if state.closed {
            target.control(Outbound::Reconnect);
        }
        state.target = Some((target, skip_through));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's side as the bus sees it: what it was handed, in order.
    #[derive(Default)]
    struct Recorder {
        got: Mutex<Vec<String>>,
    }

    impl Recorder {
        fn got(&self) -> Vec<String> {
            self.got.lock().unwrap().clone()
        }
    }

    impl Deliver for Recorder {
        fn events(&self, wire: &Bytes) -> bool {
            // Payloads of the framed messages (all short: a two-byte header each).
            let mut rest = &wire[..];
            let mut got = self.got.lock().unwrap();
            while !rest.is_empty() {
                let len = usize::from(rest[1]);
                got.push(String::from_utf8(rest[2..2 + len].to_vec()).unwrap());
                rest = &rest[2 + len..];
            }
            true
        }

        fn control(&self, message: Outbound) {
            self.got.lock().unwrap().push(format!("{message:?}"));
        }
    }

    fn event(seq: u64) -> (u64, Utf8Bytes) {
        (seq, Utf8Bytes::from(format!("e{seq}")))
    }

    #[test]
    fn what_waits_before_attaching_follows_in_order_without_what_the_client_has() {
        let bus = RoomBus::new();
        let sub = bus.subscribe();
        bus.send_events(&[event(1), event(2)], Instant::now());
        bus.send_events(&[event(3)], Instant::now());
        let recorder = Arc::new(Recorder::default());
        sub.attach(recorder.clone(), 2).unwrap();
        assert_eq!(recorder.got(), ["e3"]);
        // Live events, a batch sliced where the client's number falls, controls in order.
        bus.send_events(&[event(4), event(5)], Instant::now());
        bus.send(Outbound::Closed);
        assert_eq!(recorder.got(), ["e3", "e4", "e5", "Closed"]);
    }

    #[test]
    fn a_batch_is_cut_after_the_last_event_the_client_has() {
        let bus = RoomBus::new();
        let sub = bus.subscribe();
        let recorder = Arc::new(Recorder::default());
        sub.attach(recorder.clone(), 5).unwrap();
        bus.send_events(&[event(4), event(5), event(6), event(7)], Instant::now());
        bus.send_events(&[event(3)], Instant::now());
        assert_eq!(recorder.got(), ["e6", "e7"]);
    }

    #[tokio::test]
    async fn a_queue_that_falls_behind_is_told_once_and_cannot_attach() {
        let bus = RoomBus::new();
        let mut sub = bus.subscribe();
        for seq in 1..=(ROOM_CHANNEL_CAPACITY as u64 + 10) {
            bus.send_events(&[event(seq)], Instant::now());
        }
        assert!(
            sub.attach(Arc::new(Recorder::default()), 0).is_err(),
            "a lagged queue cannot attach"
        );
        assert!(matches!(sub.recv().await, Err(Recv::Lagged(_))));
        // Then it reads on from what came after.
        bus.send(Outbound::Reconnect);
        let Ok(message) = sub.recv().await else {
            panic!("a message")
        };
        assert!(matches!(
            message,
            Outbound::Event { .. } | Outbound::Reconnect
        ));
    }

    #[tokio::test]
    async fn dropping_a_subscription_leaves_and_dropping_the_bus_closes() {
        let bus = RoomBus::new();
        let mut queued = bus.subscribe();
        let attached = bus.subscribe();
        let recorder = Arc::new(Recorder::default());
        attached.attach(recorder.clone(), 0).unwrap();
        let gone = bus.subscribe();
        drop(gone);
        bus.send_events(&[event(1)], Instant::now());
        assert_eq!(bus.subscribers(), 2);
        drop(bus);
        assert!(matches!(
            queued.recv().await,
            Ok(Outbound::Event { seq: 1, .. })
        ));
        assert_eq!(queued.recv().await.unwrap_err(), Recv::Closed);
        assert_eq!(recorder.got(), ["e1", "Reconnect"]);
    }
}
