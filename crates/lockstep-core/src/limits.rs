//! Limits and tuning constants of the product rules, in one place.
//!
//! Limits an operator may want to change (chat rate, ring size, idle time) are configuration of
//! the server and reach the core through [`crate::room::RoomRules`]; the ones here are part of
//! the product's contract and the protocol document quotes them.

/// Longest chat line, in characters (Unicode scalar values).
pub const CHAT_MAX_CHARS: usize = 1000;

/// Longest display name, in visible characters (grapheme clusters).
pub const DISPLAY_NAME_MAX: usize = 32;

/// Longest room name, in visible characters (grapheme clusters).
pub const ROOM_NAME_MAX: usize = 80;

/// Slowest and fastest playback rate a room may be set to.
pub const RATE_MIN: f64 = 0.25;
pub const RATE_MAX: f64 = 2.0;

/// Upcoming items a queue may hold; beyond it `queue_add` answers `queue_full`.
pub const QUEUE_MAX_ITEMS: usize = 500;

/// Chat lines carried in the welcome snapshot; older ones come from the history endpoint.
pub const WELCOME_CHAT_LINES: usize = 100;

/// Join and leave lines are written to the chat only while the room has at most this many
/// members: in a big room they would drown the conversation (and cost one broadcast each).
pub const PRESENCE_LINES_MAX_MEMBERS: usize = 100;

/// Members every client keeps live: the first this many in list order (the owner, then
/// moderators, then viewers, each by arrival). The welcome carries them and `presence` events keep
/// them current; the rest of a bigger room is read a page at a time with `members`, so that a
/// join into a room of thousands costs neither a list of thousands nor a frame to each of them.
pub const MEMBER_WINDOW: usize = 100;

/// Most members one `members` request returns.
pub const MEMBER_PAGE_MAX: usize = 200;

/// Longest duration a viewer may report for an item whose length the server could not learn
/// (about eleven days); anything longer is treated as bad input.
pub const REPORTED_DURATION_MAX_SECS: f64 = 1_000_000.0;

/// Largest position, seek target or start offset (`t=`) accepted, in seconds: the same bound as a
/// reported duration. Larger offsets in a pasted link are ignored; larger seeks are refused.
pub const POSITION_MAX_SECS: f64 = REPORTED_DURATION_MAX_SECS;

/// Longest media URL accepted, in bytes (as pasted, and once normalised: percent-encoding can
/// make it longer, and the stored form must parse again).
pub const MEDIA_URL_MAX_BYTES: usize = 2048;
