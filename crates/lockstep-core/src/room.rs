//! The room state machine.
//!
//! A [`Room`] holds everything a live room knows: settings, roles, who is present, the current
//! item and its playback, the upcoming queue, skip votes and chat limits. Members' commands go
//! through [`Room::apply`], presence through [`Room::connect`]/[`Room::disconnect`], and time
//! through [`Room::tick`]; each returns the [`Event`]s that happened, which the server persists,
//! numbers and broadcasts. The room never reads a clock: `now` is always an argument, and
//! [`Room::next_deadline`] says when `tick` next has something to do (an item ending, a member's
//! leave grace running out, a batch of presence changes or of sync reports due).

use crate::chat::{ChatLimiter, ChatText};
use crate::ids::UploadId;
use crate::ids::{ItemId, RoomId, UserId};
use crate::limits::{
    MEMBER_WINDOW, PRESENCE_LINES_MAX_MEMBERS, QUEUE_MAX_ITEMS, REPORTED_DURATION_MAX_SECS,
};
use crate::names::DisplayName;
use crate::permissions::{Action, Role, allowed};
use crate::playback::{
    PlaybackError, PlaybackState, START_LEAD_SECS, validate_position, validate_rate,
};
use crate::queue::{ItemMetadata, ItemStatus, QueueItem, UploadMedia};
use crate::settings::{RoomSettings, SettingsError, SettingsPatch};
use crate::time::ServerTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Server-wide rules every room follows (from configuration).
#[derive(Debug, Clone)]
pub struct RoomRules {
    /// How long a member whose last connection dropped still counts as present, so that a reload
    /// or a network blip does not print "left" and "joined".
    pub leave_grace: Duration,
    /// Chat rate limit: at most `chat_lines` per `chat_window` per user.
    pub chat_lines: usize,
    pub chat_window: Duration,
    /// Joins and leaves are told in one `presence` event at most this often: the first change
    /// after a quiet spell goes out at once, the ones after it wait for the rest of the window.
    /// A room of 5,000 that 2,000 viewers join in a second then sends five frames to each
    /// viewer, not 2,000.
    pub presence_batch: Duration,
}

impl Default for RoomRules {
    fn default() -> Self {
        RoomRules {
            leave_grace: Duration::from_secs(5),
            chat_lines: 5,
            chat_window: Duration::from_secs(5),
            presence_batch: Duration::from_millis(200),
        }
    }
}

/// A member as everyone in the room sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: UserId,
    pub name: DisplayName,
    pub role: Role,
    pub muted: bool,
    /// False while the member's player reports that it is buffering.
    #[serde(default = "ready_by_default")]
    pub ready: bool,
    /// Set while the member's player cannot play the current item at all (refused to this
    /// viewer, or its loads kept failing): the room does not wait for it (`ready` is true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cannot_play: bool,
    /// Set for a member who watches in a desktop player (through the Syncplay door).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop: Option<Desktop>,
}

/// A desktop player in the room (joined through the Syncplay door) and the file it has open:
/// desktop viewers play their own copy, which may not be the room's item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desktop {
    /// The client as it names itself, such as "Syncplay 1.6.9".
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<DesktopFile>,
}

/// The file a desktop player has open, as its client reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesktopFile {
    pub name: String,
    /// Seconds, when the player knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Bytes, when the client tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A member's last sync report: how far their player was from the room's position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemberSync {
    pub user_id: UserId,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Least time between two sync reports of one member; reports are due every 5 s.
pub const SYNC_REPORT_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// Least time between two `sync_quality` events of a room.
pub const SYNC_QUALITY_INTERVAL: Duration = Duration::from_secs(2);
/// What a room's `sync_quality` events may cost: member entries (about 80 bytes each) delivered
/// per second, to all its members together. Every member's player reports every 5 s, and every
/// `sync_quality` goes to every member with the window's reports (up to 100): at 2 s a room of
/// 100 would deliver 5,000 entries a second (400 KB/s), a room of 1,000 ten times that (4 KB/s
/// to each viewer). A bigger room is told less often instead, up to
/// [`SYNC_QUALITY_INTERVAL_MAX`]; its reports are 5 s windows anyway. This saves bandwidth; the
/// server's CPU goes mostly to the reports themselves (bench/RESULTS.md, "Viewers that report
/// their sync quality").
pub const SYNC_QUALITY_ENTRIES_PER_SEC: usize = 2_500;
/// Longest time between two `sync_quality` events of a room whose members report.
pub const SYNC_QUALITY_INTERVAL_MAX: Duration = Duration::from_secs(10);

/// Least time between two `sync_quality` events of a room of `members` present, whose last one
/// held `entries` reports: [`SYNC_QUALITY_INTERVAL`], longer in a room big enough to exceed
/// [`SYNC_QUALITY_ENTRIES_PER_SEC`], at most [`SYNC_QUALITY_INTERVAL_MAX`].
pub fn sync_quality_interval(members: usize, entries: usize) -> Duration {
    let delivered = members.saturating_mul(entries.max(1));
    Duration::from_secs_f64(delivered as f64 / SYNC_QUALITY_ENTRIES_PER_SEC as f64)
        .clamp(SYNC_QUALITY_INTERVAL, SYNC_QUALITY_INTERVAL_MAX)
}
/// A report older than this no longer counts (a viewer that stopped reporting: paused, left).
pub const SYNC_REPORT_FRESH: Duration = Duration::from_secs(15);
/// Largest error a report may state (ms): past this a player is simply not in sync.
pub const SYNC_REPORT_MAX_MS: f64 = 600_000.0;

/// The longest client name kept for a desktop player.
pub const DESKTOP_CLIENT_MAX_CHARS: usize = 64;
/// The longest file name kept for a desktop player (Syncplay's own server keeps 250).
pub const DESKTOP_FILE_NAME_MAX_CHARS: usize = 250;
/// A desktop file whose duration differs from the room item's by more than this is another file.
pub const DESKTOP_MISMATCH_SECS: f64 = 1.0;

fn cut(text: &str, max: usize) -> String {
    text.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

impl Desktop {
    /// What a client reported, made fit to show: names cut to their limits and stripped of
    /// control characters, a duration that is not a plausible length dropped.
    pub fn sanitized(self) -> Desktop {
        Desktop {
            client: cut(&self.client, DESKTOP_CLIENT_MAX_CHARS),
            file: self.file.and_then(|f| {
                let name = cut(&f.name, DESKTOP_FILE_NAME_MAX_CHARS);
                (!name.is_empty()).then(|| DesktopFile {
                    name,
                    duration: f
                        .duration
                        .filter(|d| d.is_finite() && *d > 0.0 && *d <= REPORTED_DURATION_MAX_SECS),
                    size: f.size,
                })
            }),
        }
    }

    /// Whether the desktop's file is not the room's item: both durations are known and differ
    /// by more than [`DESKTOP_MISMATCH_SECS`]. An unknown duration on either side is no
    /// evidence either way.
    pub fn mismatch(&self, item_duration: Option<f64>) -> bool {
        match (self.file.as_ref().and_then(|f| f.duration), item_duration) {
            (Some(mine), Some(room)) => (mine - room).abs() > DESKTOP_MISMATCH_SECS,
            _ => false,
        }
    }
}

fn ready_by_default() -> bool {
    true
}

/// A user's lasting standing in a room, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub moderator: bool,
    pub muted: bool,
    pub banned: bool,
}

/// Why playback changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybackCause {
    Play,
    Pause,
    Seek,
    Rate,
    /// "Wait for everyone": the room paused because a member is buffering, or a play is held
    /// until everyone is ready.
    Buffering,
    /// "Wait for everyone": every member is ready again; the held room plays.
    Ready,
}

/// Why the current item changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemChangeCause {
    /// The previous item reached its end.
    Ended,
    /// Someone skipped it.
    Skip,
    /// The vote to skip passed.
    VoteSkip,
    /// Someone removed it from the queue.
    Removed,
    /// It turned out to be unavailable.
    Unavailable,
    /// Something was added while nothing was playing.
    Added,
}

/// What a system chat line reports; clients may localise by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemLine {
    Joined,
    Left,
    NowPlaying,
    Renamed,
    Kicked,
    Banned,
    Promoted,
    Demoted,
    Unavailable,
}

/// A chat line before the store has numbered it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChatLine {
    /// `None` for system lines.
    pub user_id: Option<UserId>,
    /// The author's name at the time, or the subject's name for system lines.
    pub name: Option<String>,
    pub text: String,
    pub system: Option<SystemLine>,
    pub at: ServerTime,
}

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Play, pause, seek or rate change of the current item.
    Playback {
        item_id: Option<ItemId>,
        state: PlaybackState,
        cause: PlaybackCause,
        by: Option<UserId>,
    },
    /// The current item changed; `item` left the upcoming queue if it was in it.
    NowPlaying {
        item: Option<QueueItem>,
        previous: Option<ItemId>,
        state: PlaybackState,
        cause: ItemChangeCause,
        by: Option<UserId>,
    },
    QueueAdded {
        item: QueueItem,
        index: usize,
    },
    QueueRemoved {
        item_id: ItemId,
        by: Option<UserId>,
    },
    QueueMoved {
        item_id: ItemId,
        index: usize,
        /// The whole new order of the upcoming queue, for the store.
        order: Vec<ItemId>,
    },
    /// Title, duration or thumbnail of the current or a queued item changed.
    ItemUpdated {
        item: QueueItem,
    },
    Votes {
        item_id: ItemId,
        votes: usize,
        needed: usize,
    },
    Chat {
        line: NewChatLine,
    },
    /// Who joined and left the member window (the first [`MEMBER_WINDOW`] members in list order)
    /// since the last `Presence`, and how many members there are now. Clients hold the window and
    /// the count; in a room no bigger than the window that is every member.
    Presence {
        joined: Vec<MemberView>,
        left: Vec<UserId>,
        count: usize,
    },
    /// A user came into the room who has not been recorded as visiting it lately (store only:
    /// "rooms I visited", and admission should the room turn private).
    Visited {
        user_id: UserId,
    },
    /// A present member's name, role or mute changed.
    MemberUpdated {
        member: MemberView,
    },
    Settings {
        settings: RoomSettings,
        has_password: bool,
    },
    /// A user's display name changed (store only: also applies outside this room).
    Renamed {
        user_id: UserId,
        name: DisplayName,
    },
    /// A user's standing changed (store only).
    StandingChanged {
        user_id: UserId,
        standing: Standing,
    },
    /// A member was kicked or banned: their connections must be closed.
    Removed {
        user_id: UserId,
        banned: bool,
    },
    /// How well the room keeps in sync: the fresh reports of the members in the window, and the
    /// worst p95 among all fresh reports.
    SyncQuality {
        members: Vec<MemberSync>,
        worst_p95_ms: Option<f64>,
    },
}

impl Event {
    /// Whether members are told about this event (the rest concern only the store or the
    /// server's own connections).
    pub fn is_broadcast(&self) -> bool {
        !matches!(
            self,
            Event::Renamed { .. }
                | Event::StandingChanged { .. }
                | Event::Removed { .. }
                | Event::Visited { .. }
        )
    }

    /// Whether the store writes something for this event. The others are only told, and need
    /// not wait for a commit.
    pub fn is_stored(&self) -> bool {
        !matches!(
            self,
            Event::Renamed { .. }
                | Event::Presence { .. }
                | Event::MemberUpdated { .. }
                | Event::Votes { .. }
                | Event::Removed { .. }
                | Event::SyncQuality { .. }
        )
    }
}

/// Why a command was refused. [`CommandError::code`] is the stable protocol error code.
/// Serialisable, for a command forwarded from another node.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CommandError {
    #[error("you are not allowed to do that in this room")]
    Forbidden,
    #[error("you are muted in this room")]
    Muted,
    #[error("you are banned from this room")]
    Banned,
    #[error("join the room first")]
    NotAMember,
    #[error("nothing is playing")]
    NothingPlaying,
    #[error("no such item in the queue")]
    ItemNotFound,
    #[error("no such member in the room")]
    UserNotFound,
    #[error("the queue is full")]
    QueueFull,
    #[error("too many messages; wait {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    #[error("slow mode is on; wait {} ms", retry_after.as_millis())]
    SlowMode { retry_after: Duration },
    #[error(transparent)]
    Playback(#[from] PlaybackError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("the item's duration is already known")]
    DurationKnown,
    #[error("the duration must be a positive number of seconds")]
    InvalidDuration,
    #[error("a sync report needs 0 <= p50_ms <= p95_ms <= 600000")]
    InvalidSyncReport,
    #[error("the room is restarting; try again")]
    Unavailable,
}

impl CommandError {
    /// The stable code of the protocol's `error` frame.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Forbidden => "forbidden",
            CommandError::Muted => "muted",
            CommandError::Banned => "banned",
            CommandError::NotAMember => "not_joined",
            CommandError::NothingPlaying => "nothing_playing",
            CommandError::ItemNotFound => "item_not_found",
            CommandError::UserNotFound => "user_not_found",
            CommandError::QueueFull => "queue_full",
            CommandError::RateLimited { .. } => "rate_limited",
            CommandError::SlowMode { .. } => "slow_mode",
            CommandError::Playback(PlaybackError::InvalidRate) => "invalid_rate",
            CommandError::Playback(PlaybackError::InvalidPosition) => "invalid_position",
            CommandError::Settings(_) => "invalid_settings",
            CommandError::DurationKnown => "duration_known",
            CommandError::InvalidDuration => "invalid_duration",
            CommandError::InvalidSyncReport => "invalid_sync_report",
            CommandError::Unavailable => "room_unavailable",
        }
    }

    /// How long to wait before trying again, for the limits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CommandError::RateLimited { retry_after } | CommandError::SlowMode { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

/// A member's command (serialisable, for a command forwarded from another node).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    Play,
    Pause,
    Seek {
        position: f64,
    },
    SetRate {
        rate: f64,
    },
    /// The server builds the item (with a fresh id) from a parsed [`crate::media::Media`].
    QueueAdd {
        item: QueueItem,
    },
    QueueRemove {
        item_id: ItemId,
    },
    QueueMove {
        item_id: ItemId,
        index: usize,
    },
    Skip,
    VoteSkip,
    Chat {
        text: ChatText,
    },
    Promote {
        user_id: UserId,
    },
    Demote {
        user_id: UserId,
    },
    Kick {
        user_id: UserId,
    },
    Ban {
        user_id: UserId,
    },
    Unban {
        user_id: UserId,
    },
    Mute {
        user_id: UserId,
    },
    Unmute {
        user_id: UserId,
    },
    /// The player learnt the duration the server could not.
    ReportDuration {
        item_id: ItemId,
        duration: f64,
    },
    /// The member's player is ready to play (false: it is buffering). `cannot_play`: it cannot
    /// play the current item at all, and is not waited for (it counts as ready).
    Ready {
        ready: bool,
        #[serde(default)]
        cannot_play: bool,
    },
    /// The member watches in a desktop player, with this file open. Only the Syncplay door
    /// sends it: it is no frame of the WebSocket protocol.
    Desktop {
        desktop: Desktop,
    },
    /// How far the member's player was from the room's position lately (ms).
    SyncReport {
        p50_ms: f64,
        p95_ms: f64,
    },
}

/// Everything needed to bring a room back from the store.
#[derive(Debug, Clone)]
pub struct RoomInit {
    pub id: RoomId,
    pub owner: UserId,
    pub settings: RoomSettings,
    pub has_password: bool,
    pub standings: Vec<(UserId, Standing)>,
    pub current: Option<QueueItem>,
    pub playback: PlaybackState,
    pub queue: Vec<QueueItem>,
}

/// A member who is present (or within the leave grace).
#[derive(Debug, Clone)]
struct Presence {
    name: DisplayName,
    /// Arrival number, for the member list's order.
    arrival: u64,
    connections: u32,
    /// When the last connection closed; the member leaves when the grace runs out.
    leaving_since: Option<ServerTime>,
}

/// A live room.
#[derive(Debug, Clone)]
pub struct Room {
    id: RoomId,
    owner: UserId,
    settings: RoomSettings,
    has_password: bool,
    moderators: BTreeSet<UserId>,
    muted: BTreeSet<UserId>,
    banned: BTreeSet<UserId>,
    members: BTreeMap<UserId, Presence>,
    /// The member list's order: rank (owner, moderators, viewers), then arrival.
    order: BTreeSet<ListKey>,
    arrivals: u64,
    /// The member window as clients hold it (the last `Presence` event and the updates since),
    /// and the count told with it.
    told: BTreeMap<UserId, MemberView>,
    told_count: usize,
    /// When the last `Presence` went out, and whether members changed since.
    presence_at: Option<ServerTime>,
    presence_pending: bool,
    /// Join and leave lines of the batch under way, told with its `Presence`.
    presence_lines: Vec<Event>,
    current: Option<QueueItem>,
    playback: PlaybackState,
    queue: Vec<QueueItem>,
    votes: BTreeSet<UserId>,
    /// Members whose player reported that it is buffering.
    not_ready: BTreeSet<UserId>,
    /// Members whose player reported that it cannot play the current item.
    cannot_play: BTreeSet<UserId>,
    /// Members who watch in a desktop player.
    desktops: BTreeMap<UserId, Desktop>,
    /// Members' last sync reports: `(p50, p95)` and when. The figures are withdrawn (`None`) once
    /// the member's player stops playing the room's video (it buffers, or cannot play it): they
    /// told how it kept up before. When stays, for the reports' rate limit.
    sync: BTreeMap<UserId, (Option<(f64, f64)>, ServerTime)>,
    /// When the last `SyncQuality` went out.
    sync_told_at: Option<ServerTime>,
    /// How many reports the last `SyncQuality` held.
    sync_told_entries: usize,
    /// A report or a withdrawal came within the interval after the last `SyncQuality`: the
    /// next one goes out when that interval ends ([`Room::tick`]), not with whichever report
    /// comes after it (a joiner's first figure waited up to a viewer's 5 s for one).
    sync_pending: bool,
    /// No figure told goes stale before this: a lower bound, so that [`Room::next_deadline`]
    /// (asked after every message) need not look at every report; [`Room::tick`] looks when
    /// it is reached.
    sync_stale_at: Option<ServerTime>,
    /// Paused only because of "wait for everyone": resumes when everyone is ready.
    held: bool,
    chat_limiter: ChatLimiter,
    last_line: HashMap<UserId, ServerTime>,
    rules: RoomRules,
}

type Outcome = Result<Vec<Event>, CommandError>;

/// A member's place in the list: rank (0 owner, 1 moderator, 2 viewer), arrival, id.
type ListKey = (u8, u64, UserId);

fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Moderator => 1,
        Role::Viewer => 2,
    }
}

impl Room {
    /// A room as restored from the store, or freshly created (then with empty lists).
    pub fn new(init: RoomInit, rules: RoomRules) -> Self {
        let mut moderators = BTreeSet::new();
        let mut muted = BTreeSet::new();
        let mut banned = BTreeSet::new();
        for (user, s) in init.standings {
            if s.moderator {
                moderators.insert(user);
            }
            if s.muted {
                muted.insert(user);
            }
            if s.banned {
                banned.insert(user);
            }
        }
        let playback = if init.current.is_some() {
            init.playback
        } else {
            PlaybackState::paused_at(0.0, init.playback.at)
        };
        Room {
            id: init.id,
            owner: init.owner,
            settings: init.settings,
            has_password: init.has_password,
            moderators,
            muted,
            banned,
            members: BTreeMap::new(),
            order: BTreeSet::new(),
            arrivals: 0,
            told: BTreeMap::new(),
            told_count: 0,
            presence_at: None,
            presence_pending: false,
            presence_lines: Vec::new(),
            current: init.current,
            playback,
            queue: init.queue,
            votes: BTreeSet::new(),
            not_ready: BTreeSet::new(),
            cannot_play: BTreeSet::new(),
            desktops: BTreeMap::new(),
            sync: BTreeMap::new(),
            sync_told_at: None,
            sync_told_entries: 0,
            sync_pending: false,
            sync_stale_at: None,
            held: false,
            chat_limiter: ChatLimiter::new(rules.chat_lines, rules.chat_window),
            last_line: HashMap::new(),
            rules,
        }
    }

    // ---- Reading -------------------------------------------------------------------------

    pub fn id(&self) -> RoomId {
        self.id
    }
    pub fn owner(&self) -> UserId {
        self.owner
    }
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }
    pub fn has_password(&self) -> bool {
        self.has_password
    }
    pub fn current(&self) -> Option<&QueueItem> {
        self.current.as_ref()
    }
    pub fn playback(&self) -> &PlaybackState {
        &self.playback
    }
    pub fn queue(&self) -> &[QueueItem] {
        &self.queue
    }

    /// The role `user` holds here, whether present or not.
    pub fn role_of(&self, user: UserId) -> Role {
        if user == self.owner {
            Role::Owner
        } else if self.moderators.contains(&user) {
            Role::Moderator
        } else {
            Role::Viewer
        }
    }

    pub fn is_banned(&self, user: UserId) -> bool {
        self.banned.contains(&user)
    }

    pub fn is_member(&self, user: UserId) -> bool {
        self.members.contains_key(&user)
    }

    /// How many distinct users are present (several tabs of one user count once).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Every present member, in list order.
    pub fn members(&self) -> Vec<MemberView> {
        self.member_page(0, usize::MAX)
    }

    /// At most `limit` members from position `offset` of the list (the owner, then moderators,
    /// then viewers, each by arrival).
    pub fn member_page(&self, offset: usize, limit: usize) -> Vec<MemberView> {
        self.order
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|&(_, _, id)| self.member(id))
            .collect()
    }

    /// The member window as clients hold it since the last `Presence` event (for the welcome:
    /// the events after it change exactly this), and the member count now (which a `Presence`
    /// replaces rather than changes).
    pub fn member_window(&self) -> (Vec<MemberView>, usize) {
        (self.told.values().cloned().collect(), self.members.len())
    }

    pub fn member(&self, user: UserId) -> Option<MemberView> {
        self.members.get(&user).map(|p| self.view(user, &p.name))
    }

    fn view(&self, user_id: UserId, name: &DisplayName) -> MemberView {
        MemberView {
            user_id,
            name: name.clone(),
            role: self.role_of(user_id),
            muted: self.muted.contains(&user_id),
            ready: !self.not_ready.contains(&user_id),
            cannot_play: self.cannot_play.contains(&user_id),
            desktop: self.desktops.get(&user_id).cloned(),
        }
    }

    /// Whether the room is held paused until every member is ready ("wait for everyone").
    pub fn waiting(&self) -> bool {
        self.held
    }

    /// Skip votes for the current item: `(votes, needed)`.
    pub fn votes(&self) -> (usize, usize) {
        (self.votes.len(), self.votes_needed())
    }

    fn votes_needed(&self) -> usize {
        let members = self.members.len().max(1) as f64;
        ((self.settings.vote_skip_ratio * members).ceil() as usize).max(1)
    }

    /// The earliest instant at which [`Room::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<ServerTime> {
        let ending = self
            .current
            .as_ref()
            .and_then(|item| item.duration)
            .and_then(|d| self.playback.ends_at(d));
        let leaving = self
            .members
            .values()
            .filter_map(|p| p.leaving_since)
            .min()
            .map(|t| t + self.rules.leave_grace);
        [ending, leaving, self.presence_due(), self.sync_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the next `SyncQuality` is due: a pending one once the room's interval since the last
    /// is up; otherwise when the oldest report in it goes stale (a member who stops reporting, a
    /// room that pauses: its figures drop out then, not with whichever report comes next).
    fn sync_due(&self) -> Option<ServerTime> {
        let interval = sync_quality_interval(self.member_count(), self.sync_told_entries);
        let next = self.sync_told_at.map_or(ServerTime(0), |at| at + interval);
        if self.sync_pending {
            return Some(next);
        }
        self.sync_stale_at.map(|stale| stale.max(next))
    }

    /// When the oldest figure goes stale, exactly.
    fn sync_goes_stale(&self) -> Option<ServerTime> {
        self.sync
            .values()
            .filter(|(figures, _)| figures.is_some())
            .map(|&(_, at)| at + SYNC_REPORT_FRESH)
            .min()
    }

    /// When the pending presence change may go out.
    fn presence_due(&self) -> Option<ServerTime> {
        if !self.presence_pending {
            return None;
        }
        Some(match self.presence_at {
            Some(at) => at + self.rules.presence_batch,
            None => ServerTime(0),
        })
    }

    /// The playback state to store when the room goes to sleep: rebased to `now`, so that it
    /// resumes from where it was rather than jumping by the time it spent unloaded.
    pub fn playback_to_store(&self, now: ServerTime) -> PlaybackState {
        let mut state = self.playback.rebased(now);
        if let Some(d) = self.current.as_ref().and_then(|i| i.duration) {
            state.position = state.position.min(d);
        }
        state
    }

    // ---- Presence ------------------------------------------------------------------------

    /// A connection of `user` joined. The first one makes them a member. `visit`: the store
    /// has no recent visit of theirs to record (a [`Event::Visited`] is then among the events).
    pub fn connect(
        &mut self,
        user: UserId,
        name: DisplayName,
        visit: bool,
        now: ServerTime,
    ) -> Outcome {
        self.connect_with(user, name, visit, true, now)
    }

    /// A connection of `user` that was in this room when it was last running elsewhere (before a
    /// restart or a failover to this node): they are a member again like after [`Room::connect`],
    /// but with no join line, since the others never saw them leave.
    pub fn reconnect(
        &mut self,
        user: UserId,
        name: DisplayName,
        visit: bool,
        now: ServerTime,
    ) -> Outcome {
        self.connect_with(user, name, visit, false, now)
    }

    fn connect_with(
        &mut self,
        user: UserId,
        name: DisplayName,
        visit: bool,
        announce: bool,
        now: ServerTime,
    ) -> Outcome {
        if self.banned.contains(&user) {
            return Err(CommandError::Banned);
        }
        let mut events = Vec::new();
        if visit {
            events.push(Event::Visited { user_id: user });
        }
        if let Some(p) = self.members.get_mut(&user) {
            p.connections += 1;
            p.leaving_since = None;
            return Ok(events);
        }
        self.arrivals += 1;
        let arrival = self.arrivals;
        self.members.insert(
            user,
            Presence {
                name: name.clone(),
                arrival,
                connections: 1,
                leaving_since: None,
            },
        );
        self.order.insert((rank(self.role_of(user)), arrival, user));
        self.presence_pending = true;
        if announce && self.members.len() <= PRESENCE_LINES_MAX_MEMBERS {
            self.presence_lines.push(system_line(
                SystemLine::Joined,
                Some(user),
                name.as_str(),
                format!("{name} joined"),
                now,
            ));
        }
        events.extend(self.presence(now));
        // A new member raises the bar for a pending vote; it can only fall on a leave.
        events.extend(self.votes_event());
        Ok(events)
    }

    /// A connection of `user` closed. The member leaves once the grace runs out with no
    /// connection left (at once when the grace is zero).
    pub fn disconnect(&mut self, user: UserId, now: ServerTime) -> Vec<Event> {
        let Some(p) = self.members.get_mut(&user) else {
            return Vec::new(); // kicked or banned already
        };
        p.connections = p.connections.saturating_sub(1);
        if p.connections > 0 {
            return Vec::new();
        }
        p.leaving_since = Some(now);
        if self.rules.leave_grace.is_zero() {
            self.leave(user, now)
        } else {
            Vec::new()
        }
    }

    fn leave(&mut self, user: UserId, now: ServerTime) -> Vec<Event> {
        let Some(p) = self.forget(user) else {
            return Vec::new();
        };
        if self.members.len() < PRESENCE_LINES_MAX_MEMBERS {
            self.presence_lines.push(system_line(
                SystemLine::Left,
                Some(user),
                p.name.as_str(),
                format!("{} left", p.name),
                now,
            ));
        }
        let mut events = self.presence(now);
        events.extend(self.recheck_votes(now));
        events.extend(self.recheck_hold(now));
        events
    }

    // ---- Time ----------------------------------------------------------------------------

    /// Does what is due at `now`: members whose grace ran out leave; an item that reached its end
    /// gives way to the next.
    pub fn tick(&mut self, now: ServerTime) -> Vec<Event> {
        let mut events = Vec::new();
        let gone: Vec<UserId> = self
            .members
            .iter()
            .filter(|(_, p)| {
                p.leaving_since
                    .is_some_and(|t| t + self.rules.leave_grace <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for user in gone {
            events.extend(self.leave(user, now));
        }
        if let Some(end) = self
            .current
            .as_ref()
            .and_then(|i| i.duration)
            .and_then(|d| self.playback.ends_at(d))
            && end <= now
        {
            events.extend(self.advance(ItemChangeCause::Ended, None, now));
        }
        events.extend(self.presence(now));
        // The bound is reached: whether a figure has gone stale (its member may have reported
        // again since, and then nothing changed).
        if self.sync_stale_at.is_some_and(|at| at <= now) {
            self.sync_stale_at = self.sync_goes_stale();
        }
        if self.sync_due().is_some_and(|due| due <= now) {
            events.extend(self.sync_quality(now));
        }
        self.chat_limiter.forget_idle(now);
        let slow = Duration::from_secs(u64::from(self.settings.chat_slow_mode_secs));
        self.last_line.retain(|_, t| *t + slow > now);
        events
    }

    /// Removes a member who left or was removed (with their vote and buffering state).
    fn forget(&mut self, user: UserId) -> Option<Presence> {
        let p = self.members.remove(&user)?;
        self.order
            .remove(&(rank(self.role_of(user)), p.arrival, user));
        self.votes.remove(&user);
        self.not_ready.remove(&user);
        self.cannot_play.remove(&user);
        self.desktops.remove(&user);
        self.sync.remove(&user);
        self.presence_pending = true;
        Some(p)
    }

    /// Moves a present member to the place of their new role in the list (`was`: their old
    /// role), which can change who is in the member window.
    fn reorder(&mut self, user: UserId, was: Role) {
        if let Some(arrival) = self.members.get(&user).map(|p| p.arrival) {
            self.order.remove(&(rank(was), arrival, user));
            self.order.insert((rank(self.role_of(user)), arrival, user));
            self.presence_pending = true;
        }
    }

    /// The `Presence` event, when members changed and the last one is at least
    /// [`RoomRules::presence_batch`] old: who entered and left the member window since, and the
    /// count (nothing when the change cancelled out: someone joined and left in one batch); then
    /// the batch's join and leave lines. They go out together, so that each viewer is woken once
    /// per batch rather than once per join for the line and once per batch for the presence.
    fn presence(&mut self, now: ServerTime) -> Vec<Event> {
        if self.presence_due().is_none_or(|due| due > now) {
            return Vec::new();
        }
        self.presence_pending = false;
        let mut events: Vec<Event> = self.presence_change(now).into_iter().collect();
        events.append(&mut self.presence_lines);
        events
    }

    fn presence_change(&mut self, now: ServerTime) -> Option<Event> {
        let window: BTreeMap<UserId, MemberView> = self
            .order
            .iter()
            .take(MEMBER_WINDOW)
            .filter_map(|&(_, _, id)| self.member(id).map(|view| (id, view)))
            .collect();
        let left: Vec<UserId> = self
            .told
            .keys()
            .filter(|id| !window.contains_key(id))
            .copied()
            .collect();
        // Newcomers to the window, and members who left and came back changed within one batch.
        let joined: Vec<MemberView> = window
            .values()
            .filter(|view| self.told.get(&view.user_id) != Some(view))
            .cloned()
            .collect();
        let count = self.members.len();
        if joined.is_empty() && left.is_empty() && count == self.told_count {
            return None;
        }
        self.told = window;
        self.told_count = count;
        self.presence_at = Some(now);
        Some(Event::Presence {
            joined,
            left,
            count,
        })
    }

    // ---- Commands ------------------------------------------------------------------------

    /// Applies a present member's command.
    pub fn apply(&mut self, by: UserId, command: Command, now: ServerTime) -> Outcome {
        if !self.members.contains_key(&by) {
            return Err(CommandError::NotAMember);
        }
        let role = self.role_of(by);
        let may = |action| {
            if allowed(role, &self.settings, action) {
                Ok(())
            } else {
                Err(CommandError::Forbidden)
            }
        };
        match command {
            Command::Play | Command::Pause => {
                may(Action::ControlPlayback)?;
                let item_id = self.current_id()?;
                let pause = command == Command::Pause;
                if pause && self.held {
                    // A pause while held: the room stays paused, but no longer waits to play.
                    self.held = false;
                    let state = self.playback;
                    return Ok(self.set_playback(item_id, state, PlaybackCause::Pause, by));
                }
                if self.playback.paused == pause {
                    return Ok(Vec::new());
                }
                if !pause && self.must_wait() {
                    // Held until everyone is ready; `recheck_hold` starts it then.
                    self.held = true;
                    let state = self.playback;
                    return Ok(self.set_playback(item_id, state, PlaybackCause::Buffering, by));
                }
                let (state, cause) = if pause {
                    (self.paused_now(now), PlaybackCause::Pause)
                } else {
                    (self.started(now), PlaybackCause::Play)
                };
                Ok(self.set_playback(item_id, state, cause, by))
            }
            Command::Seek { position } => {
                may(Action::ControlPlayback)?;
                let mut position = validate_position(position)?;
                let item_id = self.current_id()?;
                if let Some(d) = self.current.as_ref().and_then(|i| i.duration) {
                    position = position.min(d);
                }
                let state = self.playback.seek(position, now);
                Ok(self.set_playback(item_id, state, PlaybackCause::Seek, by))
            }
            Command::SetRate { rate } => {
                may(Action::ControlPlayback)?;
                let rate = validate_rate(rate)?;
                let item_id = self.current_id()?;
                if rate == self.playback.rate {
                    return Ok(Vec::new());
                }
                let state = self.playback.with_rate(rate, now);
                Ok(self.set_playback(item_id, state, PlaybackCause::Rate, by))
            }
            Command::QueueAdd { item } => {
                may(Action::AddToQueue)?;
                if self.current.is_none() {
                    self.current = Some(item);
                    return Ok(self.start_current(None, ItemChangeCause::Added, Some(by), now));
                }
                if self.queue.len() >= QUEUE_MAX_ITEMS {
                    return Err(CommandError::QueueFull);
                }
                self.queue.push(item.clone());
                Ok(vec![Event::QueueAdded {
                    index: self.queue.len() - 1,
                    item,
                }])
            }
            Command::QueueRemove { item_id } => {
                if let Some(current) = &self.current
                    && current.id == item_id
                {
                    may(Action::RemoveFromQueue {
                        own: current.added_by == by,
                    })?;
                    return Ok(self.advance(ItemChangeCause::Removed, Some(by), now));
                }
                let index = self.index_of(item_id)?;
                may(Action::RemoveFromQueue {
                    own: self.queue[index].added_by == by,
                })?;
                self.queue.remove(index);
                Ok(vec![Event::QueueRemoved {
                    item_id,
                    by: Some(by),
                }])
            }
            Command::QueueMove { item_id, index } => {
                may(Action::MoveInQueue)?;
                let from = self.index_of(item_id)?;
                let to = index.min(self.queue.len() - 1);
                if from == to {
                    return Ok(Vec::new());
                }
                let item = self.queue.remove(from);
                self.queue.insert(to, item);
                Ok(vec![Event::QueueMoved {
                    item_id,
                    index: to,
                    order: self.queue.iter().map(|i| i.id).collect(),
                }])
            }
            Command::Skip => {
                may(Action::Skip)?;
                self.current_id()?;
                Ok(self.advance(ItemChangeCause::Skip, Some(by), now))
            }
            Command::VoteSkip => {
                let item_id = self.current_id()?;
                if !self.votes.insert(by) {
                    return Ok(Vec::new());
                }
                let (votes, needed) = self.votes();
                let mut events = vec![Event::Votes {
                    item_id,
                    votes,
                    needed,
                }];
                events.extend(self.recheck_votes(now));
                Ok(events)
            }
            Command::Chat { text } => {
                if self.muted.contains(&by) {
                    return Err(CommandError::Muted);
                }
                let slow = Duration::from_secs(u64::from(self.settings.chat_slow_mode_secs));
                if !slow.is_zero()
                    && role < Role::Moderator
                    && let Some(&last) = self.last_line.get(&by)
                    && last + slow > now
                {
                    return Err(CommandError::SlowMode {
                        retry_after: (last + slow) - now,
                    });
                }
                self.chat_limiter
                    .check(by, now)
                    .map_err(|retry_after| CommandError::RateLimited { retry_after })?;
                self.last_line.insert(by, now);
                let name = self.members[&by].name.to_string();
                Ok(vec![Event::Chat {
                    line: NewChatLine {
                        user_id: Some(by),
                        name: Some(name),
                        text: text.into_string(),
                        system: None,
                        at: now,
                    },
                }])
            }
            Command::Promote { user_id } | Command::Demote { user_id } => {
                may(Action::ManageModerators)?;
                let promote = matches!(command, Command::Promote { .. });
                self.set_moderator(user_id, promote, now)
            }
            Command::Kick { user_id } | Command::Ban { user_id } => {
                let ban = matches!(command, Command::Ban { .. });
                if !ban && !self.members.contains_key(&user_id) {
                    return Err(CommandError::UserNotFound);
                }
                may(Action::Moderate {
                    target: self.role_of(user_id),
                })?;
                Ok(self.remove_member(by, user_id, ban, now))
            }
            Command::Unban { user_id } => {
                may(Action::Moderate {
                    target: Role::Viewer,
                })?;
                if !self.banned.remove(&user_id) {
                    return Ok(Vec::new());
                }
                Ok(vec![self.standing_event(user_id)])
            }
            Command::Mute { user_id } | Command::Unmute { user_id } => {
                let mute = matches!(command, Command::Mute { .. });
                // Muting is for someone in the room; unmuting also works on the absent.
                if mute && !self.members.contains_key(&user_id) {
                    return Err(CommandError::UserNotFound);
                }
                may(Action::Moderate {
                    target: self.role_of(user_id),
                })?;
                let changed = if mute {
                    self.muted.insert(user_id)
                } else {
                    self.muted.remove(&user_id)
                };
                if !changed {
                    return Ok(Vec::new());
                }
                let mut events = vec![self.standing_event(user_id)];
                events.extend(self.member_updated(user_id));
                Ok(events)
            }
            Command::Ready { ready, cannot_play } => {
                // A player that cannot play is not waited for: it is ready.
                let changed = if ready || cannot_play {
                    self.not_ready.remove(&by)
                } else {
                    self.not_ready.insert(by)
                };
                let changed = changed
                    | if cannot_play {
                        self.cannot_play.insert(by)
                    } else {
                        self.cannot_play.remove(&by)
                    };
                if !changed {
                    return Ok(Vec::new());
                }
                // Its last report no longer tells how it keeps up: a player that buffers or
                // cannot play showed its last offset, and counted in the room's spread, for the
                // report's 15 s.
                let withdrawn = !self.plays_the_video(by)
                    && self
                        .sync
                        .get_mut(&by)
                        .and_then(|(figures, _)| figures.take())
                        .is_some();
                // Readiness flips often (everyone buffers when a video starts): it is told only
                // of members in the window, the ones clients hold. A member who enters the
                // window later comes with it in their `presence`.
                let mut events: Vec<Event> = if self.told.contains_key(&by) {
                    self.member_updated(by).into_iter().collect()
                } else {
                    Vec::new()
                };
                events.extend(self.recheck_hold(now));
                if withdrawn {
                    events.extend(self.sync_quality(now));
                }
                Ok(events)
            }
            Command::Desktop { desktop } => {
                let desktop = desktop.sanitized();
                if self.desktops.get(&by) == Some(&desktop) {
                    return Ok(Vec::new());
                }
                self.desktops.insert(by, desktop);
                // Told like readiness: to clients holding the member; others see it when the
                // member enters their window.
                Ok(if self.told.contains_key(&by) {
                    self.member_updated(by).into_iter().collect()
                } else {
                    Vec::new()
                })
            }
            Command::SyncReport { p50_ms, p95_ms } => {
                if !(p50_ms.is_finite()
                    && p95_ms.is_finite()
                    && 0.0 <= p50_ms
                    && p50_ms <= p95_ms
                    && p95_ms <= SYNC_REPORT_MAX_MS)
                {
                    return Err(CommandError::InvalidSyncReport);
                }
                if let Some(&(_, at)) = self.sync.get(&by)
                    && now < at + SYNC_REPORT_MIN_INTERVAL
                {
                    return Err(CommandError::RateLimited {
                        retry_after: (at + SYNC_REPORT_MIN_INTERVAL) - now,
                    });
                }
                // One whose player is not playing the room's video (a report sent before it said
                // so is on its way) counts from its next report once it plays.
                let figures = self.plays_the_video(by).then_some((p50_ms, p95_ms));
                self.sync.insert(by, (figures, now));
                if figures.is_some() {
                    self.sync_stale_at.get_or_insert(now + SYNC_REPORT_FRESH);
                }
                Ok(self.sync_quality(now).into_iter().collect())
            }
            Command::ReportDuration { item_id, duration } => {
                let item = self.item_mut(item_id)?;
                if item.duration.is_some() {
                    return Err(CommandError::DurationKnown);
                }
                if !(duration.is_finite()
                    && duration > 0.0
                    && duration <= REPORTED_DURATION_MAX_SECS)
                {
                    return Err(CommandError::InvalidDuration);
                }
                item.duration = Some(duration);
                let mut events = vec![Event::ItemUpdated { item: item.clone() }];
                events.extend(self.clamp_to_end());
                Ok(events)
            }
        }
    }

    /// Changes settings for `by`, who need not be present (the REST API calls this).
    pub fn update_settings(
        &mut self,
        by: UserId,
        patch: &SettingsPatch,
        now: ServerTime,
    ) -> Outcome {
        let role = self.role_of(by);
        if !allowed(role, &self.settings, Action::ChangeSettings)
            || (patch.visibility.is_some() && !allowed(role, &self.settings, Action::ChangeAccess))
        {
            return Err(CommandError::Forbidden);
        }
        let next = patch.apply_to(&self.settings)?;
        if next == self.settings {
            return Ok(Vec::new());
        }
        self.settings = next;
        let mut events = vec![self.settings_event()];
        events.extend(self.votes_event());
        events.extend(self.recheck_votes(now));
        events.extend(self.recheck_hold(now));
        Ok(events)
    }

    /// Sets or clears the password (the owner only; hashing happens at the edge).
    pub fn set_has_password(&mut self, by: UserId, has_password: bool) -> Outcome {
        if !allowed(self.role_of(by), &self.settings, Action::ChangeAccess) {
            return Err(CommandError::Forbidden);
        }
        self.has_password = has_password;
        Ok(vec![self.settings_event()])
    }

    /// Whether `by` may do `action` here.
    pub fn may(&self, by: UserId, action: Action) -> bool {
        allowed(self.role_of(by), &self.settings, action)
    }

    /// A user renamed themselves (here, or elsewhere while present here).
    pub fn rename(&mut self, user: UserId, name: DisplayName, now: ServerTime) -> Vec<Event> {
        let Some(p) = self.members.get_mut(&user) else {
            return Vec::new();
        };
        if p.name == name {
            return Vec::new();
        }
        let old = std::mem::replace(&mut p.name, name.clone());
        let mut events = vec![Event::Renamed {
            user_id: user,
            name: name.clone(),
        }];
        events.extend(self.member_updated(user));
        if self.members.len() <= PRESENCE_LINES_MAX_MEMBERS {
            events.push(system_line(
                SystemLine::Renamed,
                Some(user),
                name.as_str(),
                format!("{old} is now {name}"),
                now,
            ));
        }
        events
    }

    /// A metadata lookup for `item_id` finished.
    pub fn item_resolved(&mut self, item_id: ItemId, meta: ItemMetadata) -> Vec<Event> {
        let Ok(item) = self.item_mut(item_id) else {
            return Vec::new(); // removed meanwhile
        };
        item.apply_metadata(meta);
        let mut events = vec![Event::ItemUpdated { item: item.clone() }];
        events.extend(self.clamp_to_end());
        events
    }

    /// Once the current item's duration is known, a room paused beyond it (the server's clock ran
    /// on while nobody knew where the video ends) is put at the end. A playing one needs nothing:
    /// its end is due, and the next `tick` moves on.
    fn clamp_to_end(&mut self) -> Option<Event> {
        let item = self.current.as_ref()?;
        let end = item.duration?;
        if !self.playback.paused || self.playback.position <= end {
            return None;
        }
        self.playback.position = end;
        Some(Event::Playback {
            item_id: Some(item.id),
            state: self.playback,
            cause: PlaybackCause::Seek,
            by: None,
        })
    }

    /// An upload became playable: its items are ready (and a room held for it plays).
    pub fn upload_ready(&mut self, media: &UploadMedia, now: ServerTime) -> Vec<Event> {
        let mut events = Vec::new();
        for item in self.current.iter_mut().chain(self.queue.iter_mut()) {
            if item.upload_id() == Some(media.upload_id) && item.status != ItemStatus::Ready {
                item.status = ItemStatus::Ready;
                item.duration = media.duration.or(item.duration);
                item.thumbnail = media.poster.clone().or(item.thumbnail.take());
                events.push(Event::ItemUpdated { item: item.clone() });
            }
        }
        events.extend(self.recheck_hold(now));
        events
    }

    /// An upload can never be played (its playable copy failed for good, or its owner deleted it):
    /// its items leave the queue as unavailable ones do.
    pub fn upload_gone(&mut self, upload_id: UploadId, now: ServerTime) -> Vec<Event> {
        // The upcoming ones first, so that the room does not advance onto one of them.
        let items: Vec<ItemId> = self
            .queue
            .iter()
            .chain(self.current.iter())
            .filter(|i| i.upload_id() == Some(upload_id))
            .map(|i| i.id)
            .collect();
        items
            .into_iter()
            .flat_map(|id| self.item_unavailable(id, None, now))
            .collect()
    }

    /// The ids of the uploads this room's items play.
    pub fn upload_ids(&self) -> Vec<UploadId> {
        self.current
            .iter()
            .chain(self.queue.iter())
            .filter_map(QueueItem::upload_id)
            .collect()
    }

    /// The source says `item_id` cannot be played: it leaves the queue (or gives way if current).
    /// `why`, when given, ends the room's chat line: it is shown to everyone in the room, so it must
    /// say nothing the server learnt that the room should not (an address a name resolved to).
    pub fn item_unavailable(
        &mut self,
        item_id: ItemId,
        why: Option<&str>,
        now: ServerTime,
    ) -> Vec<Event> {
        let (title, was_current) = match &self.current {
            Some(c) if c.id == item_id => (c.title.clone(), true),
            _ => match self.index_of(item_id) {
                Ok(i) => (self.queue[i].title.clone(), false),
                Err(_) => return Vec::new(),
            },
        };
        let mut events = vec![system_line(
            SystemLine::Unavailable,
            None,
            &title,
            match why {
                Some(why) => format!("{title} is unavailable and was removed: {why}"),
                None => format!("{title} is unavailable and was removed"),
            },
            now,
        )];
        if was_current {
            events.extend(self.advance(ItemChangeCause::Unavailable, None, now));
        } else {
            self.queue.retain(|i| i.id != item_id);
            events.push(Event::QueueRemoved { item_id, by: None });
        }
        events
    }

    // ---- Helpers -------------------------------------------------------------------------

    fn current_id(&self) -> Result<ItemId, CommandError> {
        self.current
            .as_ref()
            .map(|i| i.id)
            .ok_or(CommandError::NothingPlaying)
    }

    fn index_of(&self, item_id: ItemId) -> Result<usize, CommandError> {
        self.queue
            .iter()
            .position(|i| i.id == item_id)
            .ok_or(CommandError::ItemNotFound)
    }

    fn item_mut(&mut self, item_id: ItemId) -> Result<&mut QueueItem, CommandError> {
        if let Some(c) = self.current.as_mut().filter(|c| c.id == item_id) {
            return Ok(c);
        }
        self.queue
            .iter_mut()
            .find(|i| i.id == item_id)
            .ok_or(CommandError::ItemNotFound)
    }

    fn set_playback(
        &mut self,
        item_id: ItemId,
        state: PlaybackState,
        cause: PlaybackCause,
        by: UserId,
    ) -> Vec<Event> {
        self.playback = state;
        vec![Event::Playback {
            item_id: Some(item_id),
            state,
            cause,
            by: Some(by),
        }]
    }

    /// Ends the current item and starts the next one in the queue (or nothing).
    fn advance(
        &mut self,
        cause: ItemChangeCause,
        by: Option<UserId>,
        now: ServerTime,
    ) -> Vec<Event> {
        let previous = self.current.take().map(|i| i.id);
        self.current = (!self.queue.is_empty()).then(|| self.queue.remove(0));
        self.start_current(previous, cause, by, now)
    }

    /// Starts `self.current` from its start offset, keeping the rate.
    fn start_current(
        &mut self,
        previous: Option<ItemId>,
        cause: ItemChangeCause,
        by: Option<UserId>,
        now: ServerTime,
    ) -> Vec<Event> {
        self.votes.clear();
        self.held = false;
        self.playback = match &self.current {
            Some(item) => PlaybackState {
                paused: false,
                position: item.start,
                at: now,
                rate: self.playback.rate,
            },
            None => PlaybackState {
                rate: self.playback.rate,
                ..PlaybackState::paused_at(0.0, now)
            },
        };
        let mut events = vec![Event::NowPlaying {
            item: self.current.clone(),
            previous,
            state: self.playback,
            cause,
            by,
        }];
        if let Some(item) = &self.current {
            events.push(system_line(
                SystemLine::NowPlaying,
                None,
                &item.title,
                format!("Now playing: {}", item.title),
                now,
            ));
        }
        // A new item: no one has said they cannot play it (their pages say so again if so).
        for user in std::mem::take(&mut self.cannot_play) {
            if self.told.contains_key(&user) {
                events.extend(self.member_updated(user));
            }
        }
        events.extend(self.recheck_hold(now));
        events
    }

    /// The playback resumed by a command at `now`: it starts moving [`START_LEAD_SECS`] later,
    /// from where it is, so that every viewer starts on time.
    fn started(&self, now: ServerTime) -> PlaybackState {
        self.playback
            .play_from(now, now.plus_seconds(START_LEAD_SECS))
    }

    /// The playback paused at `now`, never past the end of the item.
    fn paused_now(&self, now: ServerTime) -> PlaybackState {
        let mut state = self.playback.pause(now);
        if let Some(d) = self.current.as_ref().and_then(|i| i.duration) {
            state.position = state.position.min(d);
        }
        state
    }

    /// Whether the room must hold instead of playing: "wait for everyone" with a member
    /// buffering, or a current item that is an upload not playable yet.
    fn must_wait(&self) -> bool {
        (self.settings.wait_for_everyone && !self.not_ready.is_empty())
            || self.current.as_ref().is_some_and(QueueItem::awaits_media)
    }

    /// Applies "wait for everyone": pauses a playing room while a member is buffering, and
    /// resumes a held one when no member is (or the setting was turned off).
    fn recheck_hold(&mut self, now: ServerTime) -> Vec<Event> {
        let Some(item_id) = self.current.as_ref().map(|i| i.id) else {
            self.held = false;
            return Vec::new();
        };
        if self.must_wait() && !self.playback.paused {
            self.held = true;
            let state = self.paused_now(now);
            self.playback = state;
            return vec![Event::Playback {
                item_id: Some(item_id),
                state,
                cause: PlaybackCause::Buffering,
                by: None,
            }];
        }
        if self.held && !self.must_wait() {
            self.held = false;
            let state = self.started(now);
            self.playback = state;
            return vec![Event::Playback {
                item_id: Some(item_id),
                state,
                cause: PlaybackCause::Ready,
                by: None,
            }];
        }
        Vec::new()
    }

    /// The vote count, when a vote is under way.
    fn votes_event(&self) -> Option<Event> {
        let item_id = self.current.as_ref()?.id;
        (!self.votes.is_empty()).then(|| {
            let (votes, needed) = self.votes();
            Event::Votes {
                item_id,
                votes,
                needed,
            }
        })
    }

    /// Skips when the votes now reach the threshold (after a vote, a leave or a settings change).
    fn recheck_votes(&mut self, now: ServerTime) -> Vec<Event> {
        if self.current.is_some() && !self.votes.is_empty() {
            let (votes, needed) = self.votes();
            if votes >= needed {
                return self.advance(ItemChangeCause::VoteSkip, None, now);
            }
        }
        Vec::new()
    }

    fn settings_event(&self) -> Event {
        Event::Settings {
            settings: self.settings.clone(),
            has_password: self.has_password,
        }
    }

    fn standing_event(&self, user_id: UserId) -> Event {
        Event::StandingChanged {
            user_id,
            standing: Standing {
                moderator: self.moderators.contains(&user_id),
                muted: self.muted.contains(&user_id),
                banned: self.banned.contains(&user_id),
            },
        }
    }

    /// Whether `user`'s player plays the room's video as far as the room knows: it said neither
    /// that it buffers nor that it cannot play it. A desktop viewer's readiness is its user's
    /// choice in Syncplay (which it plays on with), not buffering.
    fn plays_the_video(&self, user: UserId) -> bool {
        !self.cannot_play.contains(&user)
            && (!self.not_ready.contains(&user) || self.desktops.contains_key(&user))
    }

    /// The room's sync quality, unless one went out less than [`sync_quality_interval`] ago
    /// (reports come every few seconds from each viewer: a big room's would otherwise be a
    /// flood); it then goes out when that interval ends. The members in the window with fresh
    /// reports, and the worst fresh p95 of all.
    fn sync_quality(&mut self, now: ServerTime) -> Option<Event> {
        let interval = sync_quality_interval(self.member_count(), self.sync_told_entries);
        if self.sync_told_at.is_some_and(|at| now < at + interval) {
            self.sync_pending = true;
            return None;
        }
        self.sync_pending = false;
        let fresh = |at: ServerTime| now < at + SYNC_REPORT_FRESH;
        self.sync.retain(|_, (_, at)| fresh(*at));
        self.sync_stale_at = self.sync_goes_stale();
        let worst_p95_ms = self
            .sync
            .values()
            .filter_map(|(figures, _)| figures.map(|(_, p95)| p95))
            .reduce(f64::max);
        let members: Vec<MemberSync> = self
            .told
            .keys()
            .filter_map(|user_id| {
                self.sync
                    .get(user_id)
                    .and_then(|&(figures, _)| figures)
                    .map(|(p50_ms, p95_ms)| MemberSync {
                        user_id: *user_id,
                        p50_ms,
                        p95_ms,
                    })
            })
            .collect();
        self.sync_told_at = Some(now);
        self.sync_told_entries = members.len();
        Some(Event::SyncQuality {
            members,
            worst_p95_ms,
        })
    }

    /// Tells everyone that a present member's name, role, mute or readiness changed (clients
    /// that do not hold the member ignore it).
    fn member_updated(&mut self, user: UserId) -> Option<Event> {
        let member = self.member(user)?;
        if let Some(told) = self.told.get_mut(&user) {
            *told = member.clone();
        }
        Some(Event::MemberUpdated { member })
    }

    fn set_moderator(&mut self, user: UserId, promote: bool, now: ServerTime) -> Outcome {
        if user == self.owner {
            return Ok(Vec::new());
        }
        if promote && !self.members.contains_key(&user) {
            return Err(CommandError::UserNotFound);
        }
        let was = self.role_of(user);
        let changed = if promote {
            self.moderators.insert(user)
        } else {
            self.moderators.remove(&user)
        };
        if !changed {
            return Ok(Vec::new());
        }
        self.reorder(user, was);
        let mut events = vec![self.standing_event(user)];
        if let Some(member) = self.member(user) {
            let updated = self.member_updated(user);
            let (kind, verb) = if promote {
                (SystemLine::Promoted, "is now a moderator")
            } else {
                (SystemLine::Demoted, "is no longer a moderator")
            };
            events.push(system_line(
                kind,
                Some(user),
                member.name.as_str(),
                format!("{} {verb}", member.name),
                now,
            ));
            events.extend(updated);
        }
        events.extend(self.presence(now));
        Ok(events)
    }

    fn remove_member(
        &mut self,
        by: UserId,
        user: UserId,
        ban: bool,
        now: ServerTime,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if ban && self.banned.insert(user) {
            // A banned moderator loses the role with the access.
            let was = self.role_of(user);
            self.moderators.remove(&user);
            self.reorder(user, was);
            events.push(self.standing_event(user));
        }
        if let Some(p) = self.forget(user) {
            let by_name = self
                .members
                .get(&by)
                .map(|m| m.name.to_string())
                .unwrap_or_default();
            let (kind, verb) = if ban {
                (SystemLine::Banned, "was banned by")
            } else {
                (SystemLine::Kicked, "was removed by")
            };
            events.push(Event::Removed {
                user_id: user,
                banned: ban,
            });
            events.extend(self.presence(now));
            events.push(system_line(
                kind,
                Some(user),
                p.name.as_str(),
                format!("{} {verb} {by_name}", p.name),
                now,
            ));
            events.extend(self.recheck_votes(now));
            events.extend(self.recheck_hold(now));
        }
        events
    }
}

fn system_line(
    kind: SystemLine,
    user_id: Option<UserId>,
    name: &str,
    text: String,
    at: ServerTime,
) -> Event {
    Event::Chat {
        line: NewChatLine {
            user_id,
            name: Some(name.to_owned()),
            text,
            system: Some(kind),
            at,
        },
    }
}

#[cfg(test)]
mod tests;
