//! Fan-out of room events to the connections watching the room.
//!
//! In process: one tokio `broadcast` channel per live room. Each event is serialised once, by the
//! room actor, into reference-counted bytes; every connection writes the same bytes to its socket.
//! A broadcast channel keeps one shared ring instead of a queue per connection, which is what
//! keeps an idle viewer cheap. A connection that falls more than the channel's capacity behind
//! gets `Lagged` and asks its room for a fresh snapshot instead of missing events silently.
//!
//! # Layout
//! - this module: a room's fan-out to its connections ([`RoomBus`]).
//! - [`backplane`]: messages every node must see (media job changes): in process on one node,
//!   through Redis between several.

pub mod backplane;

use lockstep_core::ids::UserId;
use std::time::Instant;
use tokio::sync::broadcast;
use tungstenite::Utf8Bytes;

/// Room events a connection may fall behind by before it must resynchronise. The channel
/// allocates all its slots up front (about 100 bytes each), so this is also a fixed cost of every
/// live room. What the slots point to is bounded by bytes too: every event is bounded (a chat
/// line by 1,000 characters, a queue item's URL by 2 KiB and its title by 300 characters, so a
/// frame is at most a few KiB), its bytes are shared with the room's replay ring
/// ([`crate::rooms::ring::RING_MAX_BYTES`]), and the channel holds at most this many of them.
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

/// The sending side of a room's fan-out.
#[derive(Debug, Clone)]
pub struct RoomBus {
    tx: broadcast::Sender<Outbound>,
}

impl RoomBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(ROOM_CHANNEL_CAPACITY);
        RoomBus { tx }
    }

    /// Sends to every subscribed connection; having none is fine.
    pub fn send(&self, message: Outbound) {
        let _ = self.tx.send(message);
    }

    /// A new subscription that sees everything sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Outbound> {
        self.tx.subscribe()
    }
}

impl Default for RoomBus {
    fn default() -> Self {
        Self::new()
    }
}
