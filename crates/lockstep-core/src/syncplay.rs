//! Syncplay's protocol, as its desktop clients (1.6 and later) speak it: one JSON object per line,
//! each naming its messages (`Hello`, `State`, `Chat`, `Set`, `List`, `TLS`, `Error`). This module
//! reads those lines into typed messages, writes the server's, and keeps one client's side of the
//! conversation: the ping fields Syncplay uses to estimate delays, and the "ignoring on the fly"
//! handshake by which each side skips the other's states until a forced change has been seen.
//!
//! What a client's state means for the room is decided here too ([`Session::on_state`]): a pause
//! or play that differs from the room, or a seek (`doSeek`), becomes a room command; everything
//! else is a position report. No I/O: times are passed in as seconds.

use crate::queue::{ItemSource, QueueItem};
use crate::room::{Desktop, DesktopFile};
use serde_json::{Map, Value, json};

/// Longest line accepted from a client (a `Set` with a long file name is about 1 KiB).
pub const MAX_LINE: usize = 16 * 1024;
/// How often the server sends its state to each client (Syncplay's own server: 1 s).
pub const STATE_INTERVAL_SECS: f64 = 1.0;
/// A client that sends no state for this long is gone (Syncplay's own server: 12.5 s).
pub const SILENT_SECS: f64 = 12.5;
/// The weight of the old average in the round-trip estimate (Syncplay's own: 0.85).
const RTT_AVERAGE_WEIGHT: f64 = 0.85;
/// The version this server says it speaks.
pub const SERVER_VERSION: &str = "1.7.0";

/// Why a line cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("the line is not JSON: {0}")]
    NotJson(String),
    #[error("a line must be a JSON object of messages")]
    NotAnObject,
    #[error("unknown message {0}")]
    Unknown(String),
    #[error("malformed {0} message")]
    Malformed(&'static str),
}

/// The `Hello` a client opens with.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub username: String,
    pub password: Option<String>,
    pub room: String,
    pub version: String,
}

/// Where a client's player is, as it says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayState {
    pub position: f64,
    pub paused: Option<bool>,
    pub do_seek: bool,
}

/// A client's `State` message.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClientState {
    pub play: Option<PlayState>,
    /// Our `latencyCalculation` echoed back (the server time we sent, in seconds).
    pub echoed: Option<f64>,
    /// The client's own timestamp, which we echo back as `clientLatencyCalculation`.
    pub client_stamp: Option<f64>,
    /// The client's round-trip estimate.
    pub client_rtt: f64,
    /// `ignoringOnTheFly.server`: the count of our forced states it has seen.
    pub ignoring_server: Option<u64>,
    /// `ignoringOnTheFly.client`: the count of its own forced changes.
    pub ignoring_client: Option<u64>,
}

/// A `Set` item the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `ready`: the user's ready state.
    Ready(bool),
    /// `file`: what the user's player has open.
    File {
        name: String,
        duration: Option<f64>,
        size: Option<u64>,
    },
    /// `room`: the user asks to move to another room.
    Room(String),
    /// Anything else (`features`, playlists, controller auth): read and ignored.
    Other,
}

/// One message from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Hello(Hello),
    State(ClientState),
    Chat(String),
    Set(Vec<Setting>),
    List,
    /// A `TLS` inquiry (`startTLS: send`).
    Tls,
    Error(String),
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.trim().to_owned())
}

fn parse_hello(v: &Value) -> Result<Hello, LineError> {
    let bad = LineError::Malformed("Hello");
    let username = v.get("username").and_then(text).ok_or(bad.clone())?;
    let room = v
        .get("room")
        .and_then(|r| r.get("name"))
        .and_then(text)
        .ok_or(bad.clone())?;
    let version = v
        .get("realversion")
        .or_else(|| v.get("version"))
        .and_then(text)
        .ok_or(bad.clone())?;
    if username.is_empty() || room.is_empty() || version.is_empty() {
        return Err(bad);
    }
    let password = v
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Ok(Hello {
        username,
        password,
        room,
        version,
    })
}

fn finite(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

fn parse_state(v: &Value) -> Result<ClientState, LineError> {
    if !v.is_object() {
        return Err(LineError::Malformed("State"));
    }
    let play = v.get("playstate").map(|p| PlayState {
        position: finite(p.get("position")).unwrap_or(0.0).max(0.0),
        paused: p.get("paused").and_then(Value::as_bool),
        do_seek: p.get("doSeek").and_then(Value::as_bool).unwrap_or(false),
    });
    let ping = v.get("ping");
    let ignoring = v.get("ignoringOnTheFly");
    Ok(ClientState {
        play,
        echoed: finite(ping.and_then(|p| p.get("latencyCalculation"))),
        client_stamp: finite(ping.and_then(|p| p.get("clientLatencyCalculation"))),
        client_rtt: finite(ping.and_then(|p| p.get("clientRtt"))).unwrap_or(0.0),
        ignoring_server: ignoring
            .and_then(|i| i.get("server"))
            .and_then(Value::as_u64),
        ignoring_client: ignoring
            .and_then(|i| i.get("client"))
            .and_then(Value::as_u64),
    })
}

fn parse_set(v: &Value) -> Result<Vec<Setting>, LineError> {
    let map = v.as_object().ok_or(LineError::Malformed("Set"))?;
    Ok(map
        .iter()
        .map(|(key, value)| match key.as_str() {
            "ready" => value
                .get("isReady")
                .and_then(Value::as_bool)
                .map_or(Setting::Other, Setting::Ready),
            "file" => match value.get("name").and_then(text) {
                Some(name) => Setting::File {
                    name,
                    duration: finite(value.get("duration")).filter(|d| *d >= 0.0),
                    size: value.get("size").and_then(Value::as_u64),
                },
                None => Setting::Other,
            },
            "room" => value
                .get("name")
                .and_then(text)
                .map_or(Setting::Other, Setting::Room),
            _ => Setting::Other,
        })
        .collect())
}

/// Reads one line (without its newline). An empty line holds no message.
pub fn parse_line(line: &str) -> Result<Vec<ClientMessage>, LineError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(line).map_err(|e| LineError::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(LineError::NotAnObject);
    };
    map.iter()
        .map(|(name, v)| {
            Ok(match name.as_str() {
                "Hello" => ClientMessage::Hello(parse_hello(v)?),
                "State" => ClientMessage::State(parse_state(v)?),
                "Chat" => ClientMessage::Chat(
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(LineError::Malformed("Chat"))?,
                ),
                "Set" => ClientMessage::Set(parse_set(v)?),
                "List" => ClientMessage::List,
                "TLS" => ClientMessage::Tls,
                "Error" => ClientMessage::Error(
                    v.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                ),
                other => return Err(LineError::Unknown(other.chars().take(40).collect())),
            })
        })
        .collect()
}

/// Writes a server message as one line, ended the way Syncplay's clients (Twisted's
/// `LineReceiver`) expect: `\r\n`. A bare `\n` never completes a line for them.
pub fn line(message: &Value) -> String {
    let mut s = message.to_string();
    s.push_str("\r\n");
    s
}

/// The server's `Hello` in answer to `hello`, for a client now in `room`.
pub fn hello_answer(hello: &Hello, username: &str, room: &str, motd: &str) -> Value {
    json!({"Hello": {
        "username": username,
        "room": {"name": room},
        "version": hello.version,
        "realversion": SERVER_VERSION,
        "motd": motd,
        "features": {
            "isolateRooms": true,
            "readiness": true,
            "managedRooms": false,
            "chat": true,
            "maxChatMessageLength": crate::limits::CHAT_MAX_CHARS,
            "maxUsernameLength": crate::limits::DISPLAY_NAME_MAX,
            "maxRoomNameLength": 64,
            "maxFilenameLength": 250,
        },
    }})
}

/// The room's shared playlist as Syncplay's own server sends it on joining: empty, no index.
/// A client with shared playlists on (the default) opens its own file only once it has seen a
/// `playlistIndex`; without these it never loads the file it was given.
pub fn empty_playlist(room: &str) -> [Value; 2] {
    [
        json!({"Set": {"playlistChange": {"user": room, "files": []}}}),
        json!({"Set": {"playlistIndex": {"user": room, "index": null}}}),
    ]
}

/// An `Error` message.
pub fn error(message: &str) -> Value {
    json!({"Error": {"message": message}})
}

/// A `Chat` message from `username`.
pub fn chat(username: &str, message: &str) -> Value {
    json!({"Chat": {"username": username, "message": message}})
}

/// A `TLS` answer: this server has no TLS (no certificate configured); the client goes on in
/// the clear.
pub fn tls_refused() -> Value {
    json!({"TLS": {"startTLS": "false"}})
}

/// A `TLS` answer: yes. The TLS handshake follows at once, then the client's `Hello`.
pub fn tls_accepted() -> Value {
    json!({"TLS": {"startTLS": "true"}})
}

/// Shortest and longest short Syncplay name a room's owner may choose.
pub const SHORT_NAME_MIN: usize = 3;
pub const SHORT_NAME_MAX: usize = 32;

/// A room's short Syncplay name, which desktop users type as the Syncplay room instead of the
/// invite key: 3-32 lowercase letters, digits, `-` and `_`, starting with a letter or digit, and
/// never the shape of an invite key (24 characters), so the two can never be confused. Names are
/// case-insensitive (kept lowercase), as people type them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ShortName(String);

/// Why a short name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a Syncplay name is 3-32 letters (a-z), digits, '-' or '_', starts with a letter or digit, and is not 24 characters long"
)]
pub struct ShortNameError;

impl ShortName {
    pub fn parse(raw: &str) -> Result<Self, ShortNameError> {
        let name = raw.trim().to_ascii_lowercase();
        let len = name.len();
        let fits = (SHORT_NAME_MIN..=SHORT_NAME_MAX).contains(&len)
            && len != crate::invite::INVITE_KEY_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if fits {
            Ok(ShortName(name))
        } else {
            Err(ShortNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `m:ss` or `h:mm:ss`, as Syncplay prints durations.
pub fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{sec:02}")
    } else {
        format!("{m}:{sec:02}")
    }
}

/// A link a desktop player can open for `item`: the URL of a direct link or a YouTube video
/// (mpv opens both, the latter through yt-dlp). An upload has none: it is served only to the
/// room's members signed in through a browser.
pub fn openable_url(item: &QueueItem) -> Option<&str> {
    match item.source {
        ItemSource::Upload { .. } => None,
        ItemSource::Url { .. } | ItemSource::Youtube { .. } => Some(item.url.as_str())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
    }
}

/// What a desktop viewer is told of the room's item (on joining and whenever it changes): its
/// title, its length and a link to open, since desktop viewers play their own copy.
pub fn now_playing(item: Option<&QueueItem>) -> String {
    let Some(item) = item else {
        return "Nothing is playing in the room yet.".into();
    };
    let mut text = format!("Now playing in the room: {}", item.title);
    if let Some(d) = item.duration {
        text.push_str(&format!(" ({})", clock(d)));
    }
    match openable_url(item) {
        Some(url) => text.push_str(&format!(". Open it: {url}")),
        None => text.push_str(". Open the same file in your player."),
    }
    text
}

/// What a desktop viewer is told when the file it opened is not as long as the room's item
/// (more than [`DESKTOP_MISMATCH_SECS`] apart), or `None` when it matches or either length is
/// unknown.
pub fn mismatch_note(desktop: &Desktop, item: Option<&QueueItem>) -> Option<String> {
    let item = item?;
    if !desktop.mismatch(item.duration) {
        return None;
    }
    let file = desktop.file.as_ref()?;
    Some(format!(
        "Your file {} is {} long but the room's video {} is {}: it may be another file.",
        file.name,
        clock(file.duration.unwrap_or_default()),
        item.title,
        clock(item.duration.unwrap_or_default()),
    ))
}

/// What a client's `Hello` and `Set file` say of its player, as the room shows it.
pub fn desktop(hello: &Hello, file: Option<DesktopFile>) -> Desktop {
    Desktop {
        client: format!("Syncplay {}", hello.version),
        file,
    }
    .sanitized()
}

/// A `Set user` telling that `name` joined (`true`) or left the room.
pub fn user_event(room: &str, name: &str, joined: bool) -> Value {
    let event = if joined {
        json!({"joined": true})
    } else {
        json!({"left": true})
    };
    json!({"Set": {"user": {name: {"room": {"name": room}, "event": event}}}})
}

/// A member in Syncplay's terms: the file a desktop viewer has open (browser viewers have none,
/// so Syncplay compares files only between desktop viewers, as its own server does).
pub fn file_of(desktop: Option<&Desktop>) -> Value {
    match desktop.and_then(|d| d.file.as_ref()) {
        Some(f) => json!({
            "name": f.name,
            "duration": f.duration.unwrap_or(0.0),
            "size": f.size.unwrap_or(0),
        }),
        None => json!({}),
    }
}

/// A `Set user` telling that `name` now has `desktop`'s file open.
pub fn user_file(room: &str, name: &str, desktop: Option<&Desktop>) -> Value {
    json!({"Set": {"user": {name: {"room": {"name": room}, "file": file_of(desktop)}}}})
}

/// What a client's state asks of the room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intent {
    Pause,
    Play,
    Seek(f64),
    /// Nothing of the room: the client's player is not where the room is and must be put back
    /// (a forced jump to the room's position).
    Resync,
}

/// After a client opens a file, Syncplay's client rewinds it to 0 and, ignoring the server's
/// position for a second, reports the rewind as a seek. A seek to the start this soon after a
/// file was opened is that rewind, not its user's: the room stays, the client is put back.
const REWIND_WINDOW_SECS: f64 = 5.0;
/// How near the start a seek must land to be taken for that rewind.
const REWIND_NEAR_START_SECS: f64 = 1.0;
/// Syncplay's client corrects itself only when it is ahead of the room while playing (it
/// rewinds from 4 s ahead), never when behind (unless its user turned fast-forwarding on) nor
/// while paused. A client that reports a position this far from the room's, this many times
/// running, in the same play state, is put back by a forced jump.
const DRIFT_SECS: f64 = 1.5;
const DRIFT_REPORTS: u32 = 2;

/// A change of the client's own that is passed on to the room (a pause, a play, a seek) is
/// acknowledged (`ignoringOnTheFly.client`) with the room's answer, the forced state of the
/// room after it, or at most this long after (seconds), for a change the room made nothing
/// of. Acknowledged with the next periodic state, which could still tell the room from before
/// the change, Syncplay's client took that state as the room's answer and followed it back: a
/// play in mpv was paused again a second later, and the client's report of that paused the room
/// (seen in the browser suite on a busy machine).
const ACK_HOLD_SECS: f64 = 2.0;

/// The room's playback as a Syncplay client is told it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomPlay {
    pub paused: bool,
    /// Where the room is now, in seconds.
    pub position: f64,
}

/// One client's side of the conversation.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Forced states we sent that the client has not acknowledged: its states are stale until
    /// it has.
    server_ignoring: u64,
    /// The client's own count of forced changes, echoed back once.
    client_ignoring: u64,
    /// When its last change was passed on to the room, until the room's answer is sent (see
    /// [`ACK_HOLD_SECS`]).
    awaiting_room: Option<f64>,
    /// The client's last timestamp and when it arrived (seconds), echoed back with the time
    /// it waited here.
    client_stamp: Option<(f64, f64)>,
    rtt: f64,
    average_rtt: f64,
    forward_delay: f64,
    /// When the client last sent a state.
    pub last_heard: f64,
    /// When the client last opened a file (see [`REWIND_WINDOW_SECS`]).
    opened_file: Option<f64>,
    /// Reports in a row away from the room (see [`DRIFT_SECS`]).
    drift: u32,
    /// |position - room| of the steady reports (playing, no seek) since [`Session::take_errors`],
    /// in ms: the desktop viewer's sync quality, which the door reports for it.
    errors: Vec<f64>,
}

impl Session {
    pub fn new(now: f64) -> Self {
        Session {
            last_heard: now,
            ..Session::default()
        }
    }

    /// The desktop viewer's sync error since the last call: `(p50, p95)` in ms over its steady
    /// reports (one a second while playing), or `None` with fewer than 3.
    pub fn take_errors(&mut self) -> Option<(f64, f64)> {
        let mut errors = std::mem::take(&mut self.errors);
        if errors.len() < 3 {
            return None;
        }
        errors.sort_by(f64::total_cmp);
        let at = |q: f64| errors[((q * errors.len() as f64) as usize).min(errors.len() - 1)];
        Some((at(0.5), at(0.95)))
    }

    /// The client's player opened a file at `now` (its `Set file`).
    pub fn file_opened(&mut self, now: f64) {
        self.opened_file = Some(now);
    }

    /// The one-way delay from the client to us, as Syncplay estimates it (seconds).
    pub fn forward_delay(&self) -> f64 {
        self.forward_delay
    }

    /// The round trip of the last ping (seconds).
    pub fn rtt(&self) -> f64 {
        self.rtt
    }

    fn ping(&mut self, echoed: f64, client_rtt: f64, now: f64) {
        let rtt = now - echoed;
        if !(0.0..60.0).contains(&rtt) || client_rtt < 0.0 {
            return;
        }
        self.rtt = rtt;
        self.average_rtt = if self.average_rtt == 0.0 {
            rtt
        } else {
            self.average_rtt * RTT_AVERAGE_WEIGHT + rtt * (1.0 - RTT_AVERAGE_WEIGHT)
        };
        self.forward_delay = if client_rtt < rtt {
            self.average_rtt / 2.0 + (rtt - client_rtt)
        } else {
            self.average_rtt / 2.0
        };
    }

    /// A state from the client, received at `now` (seconds), while the room is at `room`:
    /// what it asks of the room, if anything.
    pub fn on_state(&mut self, state: &ClientState, room: RoomPlay, now: f64) -> Option<Intent> {
        self.last_heard = now;
        if let Some(seen) = state.ignoring_server
            && seen == self.server_ignoring
        {
            self.server_ignoring = 0;
        }
        if let Some(count) = state.ignoring_client {
            self.client_ignoring = count;
        }
        if let Some(stamp) = state.client_stamp {
            self.client_stamp = Some((stamp, now));
        }
        if let Some(echoed) = state.echoed {
            self.ping(echoed, state.client_rtt, now);
        }
        if self.server_ignoring > 0 {
            return None; // from before our last forced state reached it
        }
        let play = state.play?;
        let position = match play.paused {
            // A playing player was ahead by the time the state took to arrive.
            Some(false) => play.position + self.forward_delay,
            _ => play.position,
        };
        let rewinding = play.do_seek
            && play.position < REWIND_NEAR_START_SECS
            && room.position >= REWIND_NEAR_START_SECS
            && self
                .opened_file
                .is_some_and(|at| (0.0..REWIND_WINDOW_SECS).contains(&(now - at)));
        if play.paused == Some(false) && !room.paused && !play.do_seek && self.errors.len() < 64 {
            self.errors.push((position - room.position).abs() * 1000.0);
        }
        let drifted = play.paused == Some(room.paused)
            && !play.do_seek
            && (position - room.position).abs() > DRIFT_SECS;
        self.drift = if drifted { self.drift + 1 } else { 0 };
        if self.drift >= DRIFT_REPORTS {
            self.drift = 0;
            return Some(Intent::Resync);
        }
        let intent = match play.paused {
            _ if rewinding => Some(Intent::Resync),
            Some(true) if !room.paused => Some(Intent::Pause),
            Some(false) if room.paused => Some(Intent::Play),
            _ if play.do_seek => Some(Intent::Seek(position)),
            _ => None,
        };
        if matches!(intent, Some(Intent::Pause | Intent::Play | Intent::Seek(_))) {
            self.awaiting_room = Some(now);
        }
        intent
    }

    /// The `State` to send at `now`: the room's playback, `do_seek` when the client must jump
    /// to it, `forced` for a change the client must follow (its states are ignored until it
    /// acknowledges), `set_by` who made the change.
    pub fn state(
        &mut self,
        room: RoomPlay,
        do_seek: bool,
        forced: bool,
        set_by: Option<&str>,
        now: f64,
    ) -> Value {
        let mut ping = Map::new();
        ping.insert("latencyCalculation".into(), json!(now));
        ping.insert("serverRtt".into(), json!(self.rtt));
        if let Some((stamp, arrived)) = self.client_stamp.take() {
            ping.insert(
                "clientLatencyCalculation".into(),
                json!(stamp + (now - arrived)),
            );
        }
        if forced {
            self.server_ignoring += 1;
            self.awaiting_room = None;
        }
        // Its change is acknowledged with the room after it (see ACK_HOLD_SECS).
        if self
            .awaiting_room
            .is_some_and(|at| !(0.0..ACK_HOLD_SECS).contains(&(now - at)))
        {
            self.awaiting_room = None;
        }
        let acknowledged = self.client_ignoring > 0 && self.awaiting_room.is_none();
        let mut state = json!({
            "ping": ping,
            "playstate": {
                "position": room.position.max(0.0),
                "paused": room.paused,
                "doSeek": do_seek,
                "setBy": set_by,
            },
        });
        if self.server_ignoring > 0 || acknowledged {
            let mut ignoring = Map::new();
            if self.server_ignoring > 0 {
                ignoring.insert("server".into(), json!(self.server_ignoring));
            }
            if acknowledged {
                ignoring.insert("client".into(), json!(self.client_ignoring));
                self.client_ignoring = 0;
            }
            state["ignoringOnTheFly"] = Value::Object(ignoring);
        }
        json!({ "State": state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(url: &str, duration: Option<f64>) -> QueueItem {
        let media = crate::media::Media::parse(url).unwrap();
        let mut it = QueueItem::new(
            crate::ids::ItemId(uuid::Uuid::from_u128(1)),
            &media,
            crate::ids::UserId(uuid::Uuid::from_u128(2)),
            &crate::names::DisplayName::parse("ann").unwrap(),
            crate::time::ServerTime(0),
        );
        it.title = "Big Buck Bunny".into();
        it.duration = duration;
        it
    }

    #[test]
    fn short_names_are_plain_lowercase_and_never_an_invite_keys_shape() {
        assert_eq!(
            ShortName::parse(" Movie-Night_2 ").unwrap().as_str(),
            "movie-night_2"
        );
        for bad in [
            "ab",
            "-abc",
            "_abc",
            "movie night",
            "café",
            "a/b",
            "",
            &"a".repeat(33),
            &"a".repeat(24),
        ] {
            assert_eq!(ShortName::parse(bad), Err(ShortNameError), "{bad:?}");
        }
        assert!(ShortName::parse(&"a".repeat(32)).is_ok());
        assert!(ShortName::parse(&"a".repeat(23)).is_ok());
    }

    #[test]
    fn the_rooms_item_is_told_with_its_length_and_a_link_a_player_can_open() {
        assert_eq!(
            now_playing(Some(&item("https://cdn.test/bbb.mp4", Some(596.5)))),
            "Now playing in the room: Big Buck Bunny (9:56). Open it: https://cdn.test/bbb.mp4"
        );
        let yt = item("https://youtu.be/dQw4w9WgXcQ", Some(3723.0));
        assert!(
            now_playing(Some(&yt))
                .contains("(1:02:03). Open it: https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
            "{}",
            now_playing(Some(&yt))
        );
        let mut upload = item("https://cdn.test/x.mp4", None);
        upload.source = ItemSource::Upload {
            upload_id: crate::ids::UploadId(uuid::Uuid::from_u128(3)),
        };
        upload.url = crate::queue::upload_video_url(crate::ids::UploadId(uuid::Uuid::from_u128(3)));
        assert_eq!(openable_url(&upload), None);
        assert_eq!(
            now_playing(Some(&upload)),
            "Now playing in the room: Big Buck Bunny. Open the same file in your player."
        );
        assert_eq!(now_playing(None), "Nothing is playing in the room yet.");
    }

    #[test]
    fn a_desktop_file_of_another_length_is_pointed_out() {
        let hello = Hello {
            username: "ann".into(),
            password: None,
            room: "r".into(),
            version: "1.6.9".into(),
        };
        let file = |d: Option<f64>| DesktopFile {
            name: "film.mkv".into(),
            duration: d,
            size: Some(5),
        };
        let d = desktop(&hello, Some(file(Some(590.0))));
        assert_eq!(d.client, "Syncplay 1.6.9");
        let it = item("https://cdn.test/bbb.mp4", Some(596.5));
        assert_eq!(
            mismatch_note(&d, Some(&it)).unwrap(),
            "Your file film.mkv is 9:50 long but the room's video Big Buck Bunny is 9:56: it may be another file."
        );
        assert_eq!(
            mismatch_note(&desktop(&hello, Some(file(Some(596.0)))), Some(&it)),
            None
        );
        assert_eq!(
            mismatch_note(&desktop(&hello, Some(file(None))), Some(&it)),
            None
        );
        assert_eq!(mismatch_note(&d, None), None);
        assert_eq!(file_of(Some(&d))["duration"], 590.0);
        assert_eq!(file_of(None), json!({}));
        assert_eq!(
            user_event("r", "bob", true),
            json!({"Set": {"user": {"bob": {"room": {"name": "r"}, "event": {"joined": true}}}}})
        );
    }

    #[test]
    fn a_hello_as_syncplay_1_6_sends_it() {
        let line = r#"{"Hello": {"username": "ann", "password": "pw", "room": {"name": "abc"}, "version": "1.2.255", "realversion": "1.6.9", "features": {"sharedPlaylists": true}}}"#;
        assert_eq!(
            parse_line(line).unwrap(),
            vec![ClientMessage::Hello(Hello {
                username: "ann".into(),
                password: Some("pw".into()),
                room: "abc".into(),
                version: "1.6.9".into(),
            })]
        );
        for bad in [
            r#"{"Hello": {"room": {"name": "abc"}, "version": "1.6.9"}}"#,
            r#"{"Hello": {"username": " ", "room": {"name": "abc"}, "version": "1.6.9"}}"#,
            r#"{"Hello": {"username": "ann", "version": "1.6.9"}}"#,
            r#"{"Hello": "hi"}"#,
        ] {
            assert_eq!(parse_line(bad), Err(LineError::Malformed("Hello")), "{bad}");
        }
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert!(matches!(parse_line("{"), Err(LineError::NotJson(_))));
        assert_eq!(parse_line("[1]"), Err(LineError::NotAnObject));
        assert_eq!(
            parse_line(r#"{"Launch": {}}"#),
            Err(LineError::Unknown("Launch".into()))
        );
        assert_eq!(
            parse_line(r#"{"Chat": 5}"#),
            Err(LineError::Malformed("Chat"))
        );
        assert_eq!(parse_line("   "), Ok(vec![]));
        // Nonsense numbers are read as nothing, not as positions.
        let ClientMessage::State(s) = &parse_line(
            r#"{"State": {"playstate": {"position": "x", "paused": 3}, "ping": {"latencyCalculation": "soon"}}}"#,
        )
        .unwrap()[0] else {
            panic!()
        };
        assert_eq!(s.play.unwrap().position, 0.0);
        assert_eq!(s.play.unwrap().paused, None);
    }

    #[test]
    fn settings_that_matter_are_read() {
        let line = r#"{"Set": {"ready": {"isReady": true, "manuallyInitiated": true}, "file": {"name": "film.mkv", "duration": 5400.5, "size": 123}, "features": {"x": 1}}}"#;
        let [ClientMessage::Set(items)] = &parse_line(line).unwrap()[..] else {
            panic!()
        };
        assert!(items.contains(&Setting::Ready(true)));
        assert!(items.contains(&Setting::File {
            name: "film.mkv".into(),
            duration: Some(5400.5),
            size: Some(123)
        }));
        assert!(items.contains(&Setting::Other));
    }

    fn client_state(position: f64, paused: bool, do_seek: bool) -> ClientState {
        ClientState {
            play: Some(PlayState {
                position,
                paused: Some(paused),
                do_seek,
            }),
            ..ClientState::default()
        }
    }

    const PLAYING: RoomPlay = RoomPlay {
        paused: false,
        position: 10.0,
    };

    #[test]
    fn a_client_that_pauses_plays_or_seeks_asks_the_room_otherwise_it_reports() {
        let mut s = Session::new(0.0);
        assert_eq!(
            s.on_state(&client_state(10.0, false, false), PLAYING, 1.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(10.0, true, false), PLAYING, 1.0),
            Some(Intent::Pause)
        );
        let paused = RoomPlay {
            paused: true,
            ..PLAYING
        };
        assert_eq!(
            s.on_state(&client_state(10.0, false, false), paused, 1.0),
            Some(Intent::Play)
        );
        assert_eq!(
            s.on_state(&client_state(42.0, true, true), paused, 1.0),
            Some(Intent::Seek(42.0))
        );
    }

    #[test]
    fn a_client_left_elsewhere_than_the_room_is_put_back() {
        let mut s = Session::new(0.0);
        let paused_room = RoomPlay {
            paused: true,
            position: 45.0,
        };
        // Near enough, or once: nothing.
        assert_eq!(
            s.on_state(&client_state(45.5, true, false), paused_room, 1.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(30.0, true, false), paused_room, 2.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(45.0, true, false), paused_room, 3.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(30.0, true, false), paused_room, 4.0),
            None
        );
        // Twice running: put back.
        assert_eq!(
            s.on_state(&client_state(30.0, true, false), paused_room, 5.0),
            Some(Intent::Resync)
        );
        // Playing, likewise: behind (Syncplay's client never catches up by itself) or ahead.
        assert_eq!(
            s.on_state(&client_state(5.0, false, false), PLAYING, 6.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(5.0, false, false), PLAYING, 7.0),
            Some(Intent::Resync)
        );
        assert_eq!(
            s.on_state(&client_state(10.5, false, false), PLAYING, 8.0),
            None
        );
        assert_eq!(
            s.on_state(&client_state(10.5, false, false), PLAYING, 9.0),
            None
        );
    }

    #[test]
    fn a_desktop_viewers_sync_error_comes_from_its_steady_reports() {
        let mut s = Session::new(0.0);
        assert_eq!(s.take_errors(), None);
        for (i, at) in [10.01, 9.98, 10.2, 10.0].into_iter().enumerate() {
            s.on_state(&client_state(at, false, false), PLAYING, i as f64);
        }
        // Seeks and paused reports are not steady.
        s.on_state(&client_state(50.0, false, true), PLAYING, 5.0);
        s.on_state(&client_state(3.0, true, false), PLAYING, 6.0);
        let (p50, p95) = s.take_errors().unwrap();
        assert!((p50 - 20.0).abs() < 1e-6, "{p50}");
        assert!((p95 - 200.0).abs() < 1e-6, "{p95}");
        assert_eq!(s.take_errors(), None, "taken");
    }

    #[test]
    fn the_rewind_of_a_file_just_opened_does_not_move_the_room() {
        let mut s = Session::new(0.0);
        s.file_opened(10.0);
        // Syncplay's client rewinds a file it opens and reports it as a seek: the client is put
        // back where the room is, whatever its pause state says.
        assert_eq!(
            s.on_state(&client_state(0.0, true, true), PLAYING, 11.0),
            Some(Intent::Resync)
        );
        // A seek elsewhere is its user's.
        assert_eq!(
            s.on_state(&client_state(30.0, false, true), PLAYING, 11.5),
            Some(Intent::Seek(30.0))
        );
        // So is a seek to the start once the window has passed, or when the room is there.
        assert_eq!(
            s.on_state(&client_state(0.0, false, true), PLAYING, 16.0),
            Some(Intent::Seek(0.0))
        );
        s.file_opened(20.0);
        let at_start = RoomPlay {
            paused: false,
            position: 0.5,
        };
        assert_eq!(
            s.on_state(&client_state(0.0, false, true), at_start, 21.0),
            Some(Intent::Seek(0.0))
        );
    }

    #[test]
    fn after_a_forced_state_the_clients_states_count_once_it_has_seen_it() {
        let mut s = Session::new(0.0);
        let sent = s.state(PLAYING, true, true, Some("bob"), 5.0);
        assert_eq!(sent["State"]["ignoringOnTheFly"]["server"], 1);
        assert_eq!(sent["State"]["playstate"]["doSeek"], true);
        // A state from before it arrived: stale, ignored.
        let mut stale = client_state(3.0, false, true);
        assert_eq!(s.on_state(&stale, PLAYING, 5.1), None);
        // It acknowledges: from now on its states count.
        stale.ignoring_server = Some(1);
        assert_eq!(s.on_state(&stale, PLAYING, 5.2), Some(Intent::Seek(3.0)));
        let next = s.state(PLAYING, false, false, None, 6.0);
        assert!(next["State"].get("ignoringOnTheFly").is_none());
    }

    #[test]
    fn the_clients_own_change_count_is_echoed_once() {
        let mut s = Session::new(0.0);
        // A state that asks nothing of the room: echoed with the next state.
        let mut st = client_state(10.0, false, false);
        st.ignoring_client = Some(2);
        assert_eq!(s.on_state(&st, PLAYING, 1.0), None);
        let sent = s.state(PLAYING, false, false, None, 1.5);
        assert_eq!(sent["State"]["ignoringOnTheFly"]["client"], 2);
        let again = s.state(PLAYING, false, false, None, 2.5);
        assert!(again["State"].get("ignoringOnTheFly").is_none());
    }

    #[test]
    fn the_clients_change_is_acknowledged_with_the_room_after_it() {
        let paused = RoomPlay {
            paused: true,
            position: 45.0,
        };
        let playing = RoomPlay {
            paused: false,
            position: 45.0,
        };
        let mut s = Session::new(0.0);
        // Its user plays while the room is paused: the room is asked to play.
        let mut st = client_state(45.0, false, false);
        st.ignoring_client = Some(1);
        assert_eq!(s.on_state(&st, paused, 20.0), Some(Intent::Play));
        // A periodic state before the room's answer tells the room as it was: not acknowledged,
        // so the client does not follow it (it did, and paused again).
        let early = s.state(paused, false, false, Some("desk"), 20.5);
        assert!(early["State"].get("ignoringOnTheFly").is_none(), "{early}");
        // The room's answer, forced, acknowledges it.
        let answer = s.state(playing, false, true, Some("desk"), 20.6);
        assert_eq!(answer["State"]["ignoringOnTheFly"]["client"], 1);
        assert_eq!(answer["State"]["playstate"]["paused"], false);
        // A change the room makes nothing of is acknowledged after ACK_HOLD_SECS all the same.
        st.ignoring_client = Some(2);
        st.ignoring_server = Some(1);
        assert_eq!(s.on_state(&st, paused, 30.0), Some(Intent::Play));
        let held = s.state(paused, false, false, None, 30.0 + ACK_HOLD_SECS / 2.0);
        assert!(held["State"].get("ignoringOnTheFly").is_none(), "{held}");
        let late = s.state(paused, false, false, None, 30.0 + ACK_HOLD_SECS);
        assert_eq!(late["State"]["ignoringOnTheFly"]["client"], 2);
    }

    #[test]
    fn pings_give_the_round_trip_and_a_playing_clients_seek_lands_ahead_by_the_delay() {
        let mut s = Session::new(0.0);
        let sent = s.state(PLAYING, false, false, None, 100.0);
        assert_eq!(sent["State"]["ping"]["latencyCalculation"], 100.0);
        let st = ClientState {
            echoed: Some(100.0),
            client_stamp: Some(7.0),
            client_rtt: 0.2,
            play: Some(PlayState {
                position: 50.0,
                paused: Some(false),
                do_seek: true,
            }),
            ..ClientState::default()
        };
        let intent = s.on_state(&st, PLAYING, 100.2);
        assert!((s.rtt() - 0.2).abs() < 1e-9);
        assert!((s.forward_delay() - 0.1).abs() < 1e-9);
        let Some(Intent::Seek(at)) = intent else {
            panic!("{intent:?}")
        };
        assert!((at - 50.1).abs() < 1e-9);
        // Its timestamp comes back with the time it waited here.
        let back = s.state(PLAYING, false, false, None, 100.5);
        let echoed = back["State"]["ping"]["clientLatencyCalculation"]
            .as_f64()
            .unwrap();
        assert!((echoed - 7.3).abs() < 1e-9);
        // Clock nonsense is ignored.
        let mut odd = st;
        odd.echoed = Some(1e12);
        s.on_state(&odd, PLAYING, 101.0);
        assert!((s.rtt() - 0.2).abs() < 1e-9);
    }
}
