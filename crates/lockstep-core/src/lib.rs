//! Lockstep's pure logic: everything that decides what a room does, with no I/O.
//!
//! Nothing in this crate reads a clock, touches the network or the disk, or draws random numbers:
//! the current server time and freshly generated ids are passed in by the caller. That keeps every
//! rule here testable exhaustively (unit tests and proptest) and lets the server crate own all I/O.
//!
//! # Layout
//! - [`time`]: server time in microseconds, the one clock positions are computed from.
//! - [`ids`]: typed ids of users, rooms and queue items.
//! - [`names`]: validated display and room names.
//! - [`invite`]: the unguessable invite key of a room.
//! - [`media`]: parsing what a user pastes into the queue box (YouTube links, direct media URLs).
//! - [`playback`]: the playback clock `{paused, position at a server instant, rate}`.
//! - [`chat`]: chat text rules and the per-user rate limit.
//! - [`permissions`]: roles and who may do what.
//! - [`settings`]: a room's settings and their validation.
//! - [`queue`]: queue items.
//! - [`room`]: the room state machine: commands in, events out.
//! - [`protocol`]: the JSON frames of WebSocket protocol v1 (see `docs/protocol.md`).
//! - [`syncplay`]: Syncplay's protocol, for desktop players joining a room.
//! - [`limits`]: tuning constants that several modules share.

pub mod chat;
pub mod ids;
pub mod invite;
pub mod limits;
pub mod media;
pub mod names;
pub mod permissions;
pub mod playback;
pub mod protocol;
pub mod queue;
pub mod room;
pub mod settings;
pub mod syncplay;
pub mod time;
