//! WebSocket protocol v1: the JSON frames, one type per frame, tagged by `"t"`.
//!
//! `docs/protocol.md` is the reference for people; this module is the reference for programs. The
//! server, the typed test client and the load generator all use these types, and a test parses
//! every example in the document with them, so the three cannot drift apart.

use crate::ids::{ItemId, ListId, RoomId, UploadId, UserId};
#[cfg(doc)]
use crate::limits::{MEMBER_PAGE_MAX, MEMBER_WINDOW};
use crate::playback::PlaybackState;
use crate::queue::QueueItem;
use crate::room::{Event, ItemChangeCause, MemberSync, MemberView, PlaybackCause, SystemLine};
use crate::settings::RoomSettings;
use crate::time::ServerTime;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a client may send, in bytes; larger ones close the connection with 1009.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Close code for a frame over [`MAX_CLIENT_FRAME_BYTES`] (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code when the server restarts and the client should reconnect (RFC 6455 "service restart").
pub const CLOSE_RESTART: u16 = 1012;
/// Close code for a text frame that is not UTF-8 (RFC 6455 "invalid frame payload data").
pub const CLOSE_BAD_DATA: u16 = 1007;
/// Close code when the member was kicked or banned, or the room was deleted (policy violation).
pub const CLOSE_POLICY: u16 = 1008;

/// A command's id, chosen by the client and echoed in the `ack` or `error` that answers it.
pub type CommandId = u64;

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The first frame on a connection. `last_seq` and `epoch` come from the last frames seen on
    /// an earlier connection to the same room, to resume it.
    Hello {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    /// A clock sample; `client_time` is echoed in the `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        client_time: f64,
    },
    Play {
        id: CommandId,
    },
    Pause {
        id: CommandId,
    },
    Seek {
        id: CommandId,
        position: f64,
    },
    Rate {
        id: CommandId,
        rate: f64,
    },
    QueueAdd {
        id: CommandId,
        url: String,
    },
    /// Adds one of my uploads.
    QueueAddUpload {
        id: CommandId,
        upload_id: UploadId,
    },
    /// Adds every item of one of my playlists, in order.
    QueueAddPlaylist {
        id: CommandId,
        playlist_id: ListId,
    },
    QueueRemove {
        id: CommandId,
        item_id: ItemId,
    },
    QueueMove {
        id: CommandId,
        item_id: ItemId,
        index: usize,
    },
    Skip {
        id: CommandId,
    },
    VoteSkip {
        id: CommandId,
    },
    Chat {
        id: CommandId,
        text: String,
    },
    SetName {
        id: CommandId,
        name: String,
    },
    Promote {
        id: CommandId,
        user_id: UserId,
    },
    Demote {
        id: CommandId,
        user_id: UserId,
    },
    Kick {
        id: CommandId,
        user_id: UserId,
    },
    Ban {
        id: CommandId,
        user_id: UserId,
    },
    Unban {
        id: CommandId,
        user_id: UserId,
    },
    Mute {
        id: CommandId,
        user_id: UserId,
    },
    Unmute {
        id: CommandId,
        user_id: UserId,
    },
    /// The player's duration for an item whose duration the server could not learn.
    Duration {
        id: CommandId,
        item_id: ItemId,
        duration: f64,
    },
    /// Whether this viewer's player can play (false while it is buffering). `cannot_play`: it
    /// cannot play the current item at all (refused, or its loads kept failing); such a player
    /// is not waited for, so it counts as ready.
    Ready {
        id: CommandId,
        ready: bool,
        #[serde(default)]
        cannot_play: bool,
    },
    /// How far this viewer's player was from the room's position over the last few seconds:
    /// the median and the 95th percentile of |position - target|, in ms. Without an `id` it is
    /// answered only when refused (an `error` without `id`): a page reports every few seconds
    /// and does nothing with the `ack`.
    SyncReport {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        p50_ms: f64,
        p95_ms: f64,
    },
    /// A page of the member list: at most `limit` members (up to [`MEMBER_PAGE_MAX`]) from
    /// position `offset`. Answered with `members_page`.
    Members {
        id: CommandId,
        #[serde(default)]
        offset: usize,
        limit: usize,
    },
}

impl ClientFrame {
    /// The command id, for frames that carry one.
    pub fn id(&self) -> Option<CommandId> {
        match self {
            ClientFrame::Hello { .. } => None,
            ClientFrame::Ping { id, .. } | ClientFrame::SyncReport { id, .. } => *id,
            ClientFrame::Play { id }
            | ClientFrame::Pause { id }
            | ClientFrame::Seek { id, .. }
            | ClientFrame::Rate { id, .. }
            | ClientFrame::QueueAdd { id, .. }
            | ClientFrame::QueueAddUpload { id, .. }
            | ClientFrame::QueueAddPlaylist { id, .. }
            | ClientFrame::QueueRemove { id, .. }
            | ClientFrame::QueueMove { id, .. }
            | ClientFrame::Skip { id }
            | ClientFrame::VoteSkip { id }
            | ClientFrame::Chat { id, .. }
            | ClientFrame::SetName { id, .. }
            | ClientFrame::Promote { id, .. }
            | ClientFrame::Demote { id, .. }
            | ClientFrame::Kick { id, .. }
            | ClientFrame::Ban { id, .. }
            | ClientFrame::Unban { id, .. }
            | ClientFrame::Mute { id, .. }
            | ClientFrame::Unmute { id, .. }
            | ClientFrame::Duration { id, .. }
            | ClientFrame::Ready { id, .. }
            | ClientFrame::Members { id, .. } => Some(*id),
        }
    }

    /// Every frame type a client may send, as written in `"t"`.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "ping",
        "play",
        "pause",
        "seek",
        "rate",
        "queue_add",
        "queue_add_upload",
        "queue_add_playlist",
        "queue_remove",
        "queue_move",
        "skip",
        "vote_skip",
        "chat",
        "set_name",
        "promote",
        "demote",
        "kick",
        "ban",
        "unban",
        "mute",
        "unmute",
        "duration",
        "ready",
        "sync_report",
        "members",
    ];
}

/// Why a client frame could not even be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The id of the command, when it could be read.
    pub id: Option<CommandId>,
    /// `unknown_type` or `bad_frame`.
    pub code: &'static str,
    pub message: String,
}

/// Parses a client's text frame, telling an unknown type from a malformed frame and keeping the
/// command id when there is one, so that the error frame can answer it.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(err) => {
            #[derive(Deserialize)]
            struct Probe {
                t: Option<serde_json::Value>,
                id: Option<serde_json::Value>,
            }
            let probe = serde_json::from_str::<Probe>(text).ok();
            let id = probe
                .as_ref()
                .and_then(|p| p.id.as_ref())
                .and_then(serde_json::Value::as_u64);
            let t = probe.as_ref().and_then(|p| p.t.as_ref());
            match t.and_then(serde_json::Value::as_str) {
                Some(t) if !ClientFrame::TYPES.contains(&t) => Err(FrameError {
                    id,
                    code: "unknown_type",
                    message: format!("unknown frame type {t:?}"),
                }),
                _ => Err(FrameError {
                    id,
                    code: "bad_frame",
                    message: format!("malformed frame: {err}"),
                }),
            }
        }
    }
}

/// A room's settings as members see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: RoomSettings,
    pub has_password: bool,
}

/// A chat line as stored and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    /// Increasing within a room; the history endpoint pages by it.
    pub id: i64,
    /// The author; absent on system lines that concern nobody in particular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plain text: insert with `textContent`, never as HTML.
    pub text: String,
    /// Present on system lines (joins, leaves, now playing...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemLine>,
    pub at: ServerTime,
}

/// Skip votes for the current item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteCount {
    pub votes: usize,
    pub needed: usize,
}

/// The full state of a room, sent after `hello` when the connection cannot resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Identifies this run of the room; resuming needs the same epoch.
    pub epoch: String,
    /// The sequence number of the last event included in this snapshot.
    pub seq: u64,
    pub server_time: ServerTime,
    pub room_id: RoomId,
    pub owner_id: UserId,
    pub settings: SettingsView,
    pub you: MemberView,
    pub current: Option<QueueItem>,
    pub playback: PlaybackState,
    /// True while "wait for everyone" holds the room paused until every member is ready.
    #[serde(default)]
    pub waiting: bool,
    pub queue: Vec<QueueItem>,
    pub votes: VoteCount,
    /// The member window: the first [`MEMBER_WINDOW`] members in list order (owner, moderators,
    /// viewers, each by arrival), as `presence` events keep it. Every member in a smaller room.
    pub members: Vec<MemberView>,
    /// How many members are present.
    #[serde(default)]
    pub member_count: usize,
    /// The last chat lines, oldest first (at most 100).
    pub chat: Vec<ChatLine>,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Box<Welcome>),
    /// The connection resumed: the events after `after_seq` up to `seq` follow, in order.
    Resumed {
        epoch: String,
        after_seq: u64,
        seq: u64,
        server_time: ServerTime,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        client_time: f64,
        /// When the server read the ping.
        server_recv: ServerTime,
        /// When the server wrote the pong.
        server_send: ServerTime,
    },
    Ack {
        id: CommandId,
        /// The new item's id, for `queue_add`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<ItemId>,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// This member was kicked or banned; the server closes the connection next.
    Kicked {
        banned: bool,
        message: String,
    },
    /// The room was deleted; the server closes the connection next.
    Closed {
        message: String,
    },
    /// The server is going away: reconnect after the delay (with `last_seq` to resume).
    Reconnect {
        reason: String,
        retry_after_ms: u64,
    },
    /// The answer to `members`: the members from position `offset` of the list now, and how many
    /// there are. A snapshot: only the member window is kept current by events.
    MembersPage {
        id: CommandId,
        offset: usize,
        count: usize,
        members: Vec<MemberView>,
    },

    // ---- Room events: each has the room's next sequence number. ----
    Playback {
        seq: u64,
        item_id: Option<ItemId>,
        state: PlaybackState,
        cause: PlaybackCause,
        by: Option<UserId>,
    },
    NowPlaying {
        seq: u64,
        item: Option<QueueItem>,
        previous: Option<ItemId>,
        state: PlaybackState,
        cause: ItemChangeCause,
        by: Option<UserId>,
    },
    QueueAdded {
        seq: u64,
        item: QueueItem,
        index: usize,
    },
    QueueRemoved {
        seq: u64,
        item_id: ItemId,
        by: Option<UserId>,
    },
    QueueMoved {
        seq: u64,
        item_id: ItemId,
        index: usize,
    },
    ItemUpdated {
        seq: u64,
        item: QueueItem,
    },
    Votes {
        seq: u64,
        item_id: ItemId,
        votes: usize,
        needed: usize,
    },
    Chat {
        seq: u64,
        line: ChatLine,
    },
    /// Who entered (`joined`) and left the member window since the last `presence`, and the
    /// member count. At most one every 200 ms: joins and leaves in between come together.
    Presence {
        seq: u64,
        joined: Vec<MemberView>,
        left: Vec<UserId>,
        count: usize,
    },
    MemberUpdated {
        seq: u64,
        member: MemberView,
    },
    Settings {
        seq: u64,
        settings: SettingsView,
    },
    SyncQuality {
        seq: u64,
        members: Vec<MemberSync>,
        worst_p95_ms: Option<f64>,
    },
}

impl ServerFrame {
    /// Every frame type the server sends, as written in `"t"`.
    pub const TYPES: &'static [&'static str] = &[
        "welcome",
        "resumed",
        "pong",
        "ack",
        "error",
        "kicked",
        "closed",
        "reconnect",
        "members_page",
        "playback",
        "now_playing",
        "queue_added",
        "queue_removed",
        "queue_moved",
        "item_updated",
        "votes",
        "chat",
        "presence",
        "member_updated",
        "settings",
        "sync_quality",
    ];

    /// The frame's `"t"`. Exhaustive on purpose: a new frame type does not compile until it is
    /// named here, and the protocol document's test then asks for an example of it.
    pub fn tag(&self) -> &'static str {
        match self {
            ServerFrame::Welcome(_) => "welcome",
            ServerFrame::Resumed { .. } => "resumed",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Kicked { .. } => "kicked",
            ServerFrame::Closed { .. } => "closed",
            ServerFrame::Reconnect { .. } => "reconnect",
            ServerFrame::MembersPage { .. } => "members_page",
            ServerFrame::Playback { .. } => "playback",
            ServerFrame::NowPlaying { .. } => "now_playing",
            ServerFrame::QueueAdded { .. } => "queue_added",
            ServerFrame::QueueRemoved { .. } => "queue_removed",
            ServerFrame::QueueMoved { .. } => "queue_moved",
            ServerFrame::ItemUpdated { .. } => "item_updated",
            ServerFrame::Votes { .. } => "votes",
            ServerFrame::Chat { .. } => "chat",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::MemberUpdated { .. } => "member_updated",
            ServerFrame::Settings { .. } => "settings",
            ServerFrame::SyncQuality { .. } => "sync_quality",
        }
    }

    /// The sequence number of a room event; `None` for the other frames.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerFrame::Playback { seq, .. }
            | ServerFrame::NowPlaying { seq, .. }
            | ServerFrame::QueueAdded { seq, .. }
            | ServerFrame::QueueRemoved { seq, .. }
            | ServerFrame::QueueMoved { seq, .. }
            | ServerFrame::ItemUpdated { seq, .. }
            | ServerFrame::Votes { seq, .. }
            | ServerFrame::Chat { seq, .. }
            | ServerFrame::Presence { seq, .. }
            | ServerFrame::MemberUpdated { seq, .. }
            | ServerFrame::Settings { seq, .. }
            | ServerFrame::SyncQuality { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// An error frame.
    pub fn error(id: Option<CommandId>, code: &str, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            id,
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The frame that tells members about `event`, numbered `seq`; `chat_id` is the stored id of
    /// a chat line. `None` for events members are not told about.
    pub fn from_event(seq: u64, event: &Event, chat_id: Option<i64>) -> Option<ServerFrame> {
        Some(match event.clone() {
            Event::Playback {
                item_id,
                state,
                cause,
                by,
            } => ServerFrame::Playback {
                seq,
                item_id,
                state,
                cause,
                by,
            },
            Event::NowPlaying {
                item,
                previous,
                state,
                cause,
                by,
            } => ServerFrame::NowPlaying {
                seq,
                item,
                previous,
                state,
                cause,
                by,
            },
            Event::QueueAdded { item, index } => ServerFrame::QueueAdded { seq, item, index },
            Event::QueueRemoved { item_id, by } => ServerFrame::QueueRemoved { seq, item_id, by },
            Event::QueueMoved { item_id, index, .. } => ServerFrame::QueueMoved {
                seq,
                item_id,
                index,
            },
            Event::ItemUpdated { item } => ServerFrame::ItemUpdated { seq, item },
            Event::Votes {
                item_id,
                votes,
                needed,
            } => ServerFrame::Votes {
                seq,
                item_id,
                votes,
                needed,
            },
            Event::Chat { line } => ServerFrame::Chat {
                seq,
                line: ChatLine {
                    id: chat_id.unwrap_or_default(),
                    user_id: line.user_id,
                    name: line.name,
                    text: line.text,
                    system: line.system,
                    at: line.at,
                },
            },
            Event::Presence {
                joined,
                left,
                count,
            } => ServerFrame::Presence {
                seq,
                joined,
                left,
                count,
            },
            Event::MemberUpdated { member } => ServerFrame::MemberUpdated { seq, member },
            Event::Settings {
                settings,
                has_password,
            } => ServerFrame::Settings {
                seq,
                settings: SettingsView {
                    settings,
                    has_password,
                },
            },
            Event::SyncQuality {
                members,
                worst_p95_ms,
            } => ServerFrame::SyncQuality {
                seq,
                members,
                worst_p95_ms,
            },
            Event::Renamed { .. }
            | Event::StandingChanged { .. }
            | Event::Removed { .. }
            | Event::Visited { .. } => {
                return None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_keep_the_id_and_tell_unknown_from_malformed() {
        let e = parse_client_frame(r#"{"t":"dance","id":7}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("unknown_type", Some(7)));
        let e = parse_client_frame(r#"{"t":"seek","id":8,"position":"soon"}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("bad_frame", Some(8)));
        let e = parse_client_frame("not json").unwrap_err();
        assert_eq!((e.code, e.id), ("bad_frame", None));
        let e = parse_client_frame(r#"{"id":1}"#).unwrap_err();
        assert_eq!(e.code, "bad_frame");
        let e = parse_client_frame(r#"[1,2]"#).unwrap_err();
        assert_eq!(e.code, "bad_frame");
        let f = parse_client_frame(r#"{"t":"seek","id":9,"position":12.5}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Seek {
                id: 9,
                position: 12.5
            }
        );
        assert_eq!(f.id(), Some(9));
        // A sync report may leave out its id (it is then answered only when refused).
        let f = parse_client_frame(r#"{"t":"sync_report","p50_ms":3,"p95_ms":9}"#).unwrap();
        assert_eq!(f.id(), None);
    }

    #[test]
    fn every_client_type_is_listed() {
        // A frame of each type, built from the enum, must carry one of the listed tags.
        let u = UserId(uuid::Uuid::nil());
        let i = ItemId(uuid::Uuid::nil());
        let frames = [
            ClientFrame::Hello {
                v: 1,
                last_seq: None,
                epoch: None,
            },
            ClientFrame::Ping {
                id: None,
                client_time: 0.0,
            },
            ClientFrame::Play { id: 1 },
            ClientFrame::Pause { id: 1 },
            ClientFrame::Seek {
                id: 1,
                position: 0.0,
            },
            ClientFrame::Rate { id: 1, rate: 1.0 },
            ClientFrame::QueueAdd {
                id: 1,
                url: String::new(),
            },
            ClientFrame::QueueAddUpload {
                id: 1,
                upload_id: UploadId(uuid::Uuid::nil()),
            },
            ClientFrame::QueueAddPlaylist {
                id: 1,
                playlist_id: ListId(uuid::Uuid::nil()),
            },
            ClientFrame::QueueRemove { id: 1, item_id: i },
            ClientFrame::QueueMove {
                id: 1,
                item_id: i,
                index: 0,
            },
            ClientFrame::Skip { id: 1 },
            ClientFrame::VoteSkip { id: 1 },
            ClientFrame::Chat {
                id: 1,
                text: String::new(),
            },
            ClientFrame::SetName {
                id: 1,
                name: String::new(),
            },
            ClientFrame::Promote { id: 1, user_id: u },
            ClientFrame::Demote { id: 1, user_id: u },
            ClientFrame::Kick { id: 1, user_id: u },
            ClientFrame::Ban { id: 1, user_id: u },
            ClientFrame::Unban { id: 1, user_id: u },
            ClientFrame::Mute { id: 1, user_id: u },
            ClientFrame::Unmute { id: 1, user_id: u },
            ClientFrame::Duration {
                id: 1,
                item_id: i,
                duration: 1.0,
            },
            ClientFrame::Ready {
                id: 1,
                ready: false,
                cannot_play: false,
            },
            ClientFrame::SyncReport {
                id: Some(1),
                p50_ms: 3.0,
                p95_ms: 9.0,
            },
            ClientFrame::Members {
                id: 1,
                offset: 0,
                limit: 100,
            },
        ];
        assert_eq!(frames.len(), ClientFrame::TYPES.len());
        for (f, t) in frames.iter().zip(ClientFrame::TYPES) {
            assert_eq!(serde_json::to_value(f).unwrap()["t"], *t);
        }
    }
}
