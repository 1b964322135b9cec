//! `/api/rooms` and `/api/invites`: creating, reading, changing and entering rooms.
//!
//! Access: a public room is open to everyone who is not banned; a password (public or private)
//! must be given once, after which the user is "admitted"; a private room is reachable only
//! through its invite key, and to everyone else it does not exist (404, never 403, so that ids
//! cannot be probed).

use super::client::ClientAddr;
use super::extract::{ApiJson, ApiQuery, path_id};
use crate::auth::{CurrentUser, password};
use crate::error::ApiError;
use crate::rooms::RoomHandle;
use crate::state::AppState;
use crate::store::members::Membership;
use crate::store::rooms::{ListedRoom, RoomRow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use lockstep_core::ids::{RoomId, UserId};
use lockstep_core::invite::{INVITE_KEY_BYTES, InviteKey};
use lockstep_core::names::RoomName;
use lockstep_core::permissions::Role;
use lockstep_core::playback::PlaybackState;
use lockstep_core::protocol::SettingsView;
use lockstep_core::queue::QueueItem;
use lockstep_core::room::CommandError;
use lockstep_core::settings::{RoomSettings, SettingsPatch, Visibility};
use lockstep_core::syncplay::ShortName;
use lockstep_core::time::ServerTime;
use rand::RngCore;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", get(lobby).post(create))
        .route("/rooms/random", get(random))
        .route("/rooms/{id}", get(read).patch(update).delete(delete))
        .route("/rooms/{id}/join", post(join))
        .route("/rooms/{id}/invite", post(regenerate_invite))
        .route("/rooms/{id}/syncplay", get(syncplay).put(set_syncplay_name))
        .route("/rooms/{id}/chat", get(chat_history))
        .route("/rooms/{id}/ws", get(super::ws::upgrade))
        .route("/invites/{key}", get(invite))
        .route("/invites/{key}/join", post(invite_join))
}

/// What is playing, as the lobby and room cards show it.
#[derive(Debug, Clone, Serialize)]
pub struct NowPlaying {
    pub title: String,
    pub thumbnail: Option<String>,
    pub url: String,
}

impl From<&QueueItem> for NowPlaying {
    fn from(item: &QueueItem) -> Self {
        NowPlaying {
            title: item.title.clone(),
            thumbnail: item.thumbnail.clone(),
            url: item.url.clone(),
        }
    }
}

/// A room card: the lobby, "my rooms", "recently visited".
#[derive(Debug, Clone, Serialize)]
pub struct RoomCard {
    pub id: RoomId,
    pub name: String,
    pub has_password: bool,
    pub viewers: usize,
    pub now_playing: Option<NowPlaying>,
}

impl RoomCard {
    pub fn new(room: &ListedRoom, viewers: usize) -> Self {
        RoomCard {
            id: room.id,
            name: room.name.clone(),
            has_password: room.has_password,
            viewers,
            now_playing: room.current.as_ref().map(NowPlaying::from),
        }
    }
}

/// A room as `GET /api/rooms/{id}` describes it.
#[derive(Debug, Serialize)]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    pub owner_id: UserId,
    pub settings: SettingsView,
    pub viewers: usize,
    /// Your role in the room.
    pub role: Role,
    /// False when a password must be given (`POST .../join`) before connecting.
    pub admitted: bool,
    /// The room's invite key, for members who got in; absent otherwise.
    pub invite_key: Option<String>,
    /// Link to share: `/r/{id}` for public rooms, `/i/{invite_key}` for private ones.
    pub link: Option<String>,
    /// What plays, and where, for members who got in (absent otherwise): the page starts loading
    /// the video while its connection opens, and the welcome then says exactly where the room is.
    /// As last saved (the event writer saves each playback change within milliseconds).
    pub current: Option<QueueItem>,
    pub playback: Option<PlaybackState>,
}

/// Whether a user may connect to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    NeedsPassword,
}

/// Decides a user's access to a room, or 404/403.
pub async fn access(
    state: &AppState,
    room: &RoomRow,
    user: UserId,
    client: ClientAddr,
) -> Result<Access, ApiError> {
    if room.owner == user {
        return Ok(Access::Granted);
    }
    let membership = at_the_door(state, room, user, client).await?;
    decide(room, &membership)
}

/// A visit recorded this recently is not written again when the user comes back (it orders
/// "rooms I visited", where minutes do not matter): a reconnecting viewer's join writes nothing.
pub const VISIT_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// [`access`] from one read of the store (the room, the member row and the address bar
/// together), for the WebSocket upgrade, which reads nothing else; and whether the join is to
/// record a visit (none recorded lately).
pub async fn door(
    state: &AppState,
    room: RoomId,
    user: UserId,
    client: ClientAddr,
) -> Result<(Access, bool), ApiError> {
    let now = state.clock.now();
    let (room, membership, barred) = state
        .store
        .room_door(room, user, &client.key().as_text(), now)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    if room.owner == user {
        return Ok((Access::Granted, true));
    }
    refuse(
        &membership,
        barred.filter(|_| !membership.standing.moderator),
        now,
    )?;
    let visit = membership
        .visited
        .is_none_or(|at| at + VISIT_REFRESH <= now);
    Ok((decide(&room, &membership)?, visit))
}

/// The access of a member who is not the owner and passed the door (no ban).
fn decide(room: &RoomRow, membership: &Membership) -> Result<Access, ApiError> {
    if membership.admitted {
        return Ok(Access::Granted);
    }
    match (room.settings.visibility, &room.password_hash) {
        (Visibility::Private, _) => Err(ApiError::room_not_found()),
        (Visibility::Public, Some(_)) => Ok(Access::NeedsPassword),
        (Visibility::Public, None) => Ok(Access::Granted),
    }
}

/// 403 for a banned user, or when a ban bars the client's address until `barred` (owners and
/// moderators are not asked about address bars).
fn refuse(
    membership: &Membership,
    barred: Option<ServerTime>,
    now: ServerTime,
) -> Result<(), ApiError> {
    if membership.standing.banned {
        return Err(ApiError::Banned);
    }
    if let Some(until) = barred {
        return Err(ApiError::AddressBanned {
            hours: (until - now).as_secs().div_ceil(3600),
        });
    }
    Ok(())
}

/// `user`'s membership of `room`, unless they are banned (403), or a ban bars `client`'s address
/// (403): clearing cookies does not walk a banned user back in. The owner and moderators are
/// exempt from address bars, should they share an address with someone banned.
pub(crate) async fn at_the_door(
    state: &AppState,
    room: &RoomRow,
    user: UserId,
    client: ClientAddr,
) -> Result<Membership, ApiError> {
    let now = state.clock.now();
    let membership = state.store.membership(room.id, user).await?;
    let barred = if room.owner != user && !membership.standing.moderator {
        state
            .store
            .address_barred(room.id, &client.key().as_text(), now)
            .await?
    } else {
        None
    };
    refuse(&membership, barred, now)?;
    Ok(membership)
}

/// The room with this id, if it exists and `user` may see it.
async fn visible_room(
    state: &AppState,
    raw_id: &str,
    user: UserId,
    client: ClientAddr,
) -> Result<(RoomRow, Access), ApiError> {
    let id: RoomId = path_id(raw_id, ApiError::room_not_found)?;
    let room = state
        .store
        .room(id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    let access = access(state, &room, user, client).await?;
    Ok((room, access))
}

async fn room_view(
    state: &AppState,
    room: &RoomRow,
    user: UserId,
    access: Access,
) -> Result<RoomView, ApiError> {
    let role = if room.owner == user {
        Role::Owner
    } else if state
        .store
        .membership(room.id, user)
        .await?
        .standing
        .moderator
    {
        Role::Moderator
    } else {
        Role::Viewer
    };
    let admitted = access == Access::Granted;
    let current = match room.current_item_id {
        Some(item) if admitted => state.store.queue_item(room.id, item).await?,
        _ => None,
    };
    let link = match room.settings.visibility {
        Visibility::Public => Some(format!("/r/{}", room.id)),
        Visibility::Private => admitted.then(|| format!("/i/{}", room.invite_key.as_str())),
    };
    Ok(RoomView {
        id: room.id,
        name: room.settings.name.to_string(),
        owner_id: room.owner,
        settings: SettingsView {
            settings: room.settings.clone(),
            has_password: room.password_hash.is_some(),
        },
        viewers: state.rooms.viewers(room.id),
        role,
        admitted,
        invite_key: admitted.then(|| room.invite_key.as_str().to_owned()),
        link,
        playback: admitted.then(|| room.playback_at(state.clock.now())),
        current,
    })
}

fn new_invite_key() -> InviteKey {
    let mut bytes = [0u8; INVITE_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    InviteKey::from_bytes(bytes)
}

/// Maps a room actor's refusal to the HTTP error.
fn command_error(err: CommandError) -> ApiError {
    match err {
        CommandError::Forbidden => {
            ApiError::Forbidden("only the owner or a moderator may do that".into())
        }
        CommandError::Settings(e) => ApiError::invalid("invalid_settings", e.to_string()),
        CommandError::Unavailable => ApiError::ShuttingDown,
        other => ApiError::invalid(other.code(), other.to_string()),
    }
}

async fn live_room(state: &AppState, id: RoomId) -> Result<RoomHandle, ApiError> {
    state.rooms.get(id).await.map_err(|e| match e {
        crate::rooms::RoomError::NotFound => ApiError::room_not_found(),
        crate::rooms::RoomError::Gone => ApiError::ShuttingDown,
        crate::rooms::RoomError::Store(e) => ApiError::from(e),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    name: RoomName,
    #[serde(default = "public")]
    visibility: Visibility,
    #[serde(default)]
    password: Option<String>,
}

fn public() -> Visibility {
    Visibility::Public
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    ApiJson(body): ApiJson<CreateRoom>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .throttles
        .rooms
        .check(&client.key())
        .map_err(|wait| ApiError::rate_limited("too_many_rooms", "new rooms", wait))?;
    let password_hash = match body.password {
        Some(p) => {
            password::validate(&p)
                .map_err(|e| ApiError::invalid("invalid_password", e.to_string()))?;
            Some(state.passwords.hash(p).await?)
        }
        None => None,
    };
    let now = state.clock.now();
    let room = RoomRow {
        id: RoomId(Uuid::now_v7()),
        owner: user.id,
        settings: RoomSettings::new(body.name, body.visibility, state.config.vote_skip_ratio),
        password_hash,
        invite_key: new_invite_key(),
        current_item_id: None,
        paused: true,
        position: 0.0,
        rate: 1.0,
        created: now,
        active: now,
    };
    state.store.create_room(&room).await?;
    tracing::info!(room = %room.id, owner = %user.id, "room created");
    let view = room_view(&state, &room, user.id, Access::Granted).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn read(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let (room, access) = visible_room(&state, &id, user.id, client).await?;
    Ok(Json(room_view(&state, &room, user.id, access).await?))
}

/// `PATCH /api/rooms/{id}`: any settings fields, plus `password` (a string sets it, `null`
/// clears it; owner only).
async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Json<RoomView>, ApiError> {
    let (room, _) = visible_room(&state, &id, user.id, client).await?;
    let Some(fields) = body.as_object_mut() else {
        return Err(ApiError::invalid("invalid_input", "expected a JSON object"));
    };
    let password_hash = match fields.remove("password") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(p)) => {
            password::validate(&p)
                .map_err(|e| ApiError::invalid("invalid_password", e.to_string()))?;
            Some(Some(state.passwords.hash(p).await?))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_password",
                "password must be a string or null",
            ));
        }
    };
    let patch: SettingsPatch = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid("invalid_settings", e.to_string()))?;
    let going_private = room.settings.visibility == Visibility::Public
        && patch.visibility == Some(Visibility::Private);
    live_room(&state, room.id)
        .await?
        .update_settings(user.id, patch, password_hash)
        .await
        .map_err(command_error)?;
    if going_private {
        // A public room shows its invite key to anyone who opens it; going private must not
        // leave that key admitting strangers. Those already admitted stay admitted.
        state
            .store
            .set_invite_key(room.id, &new_invite_key())
            .await?;
        tracing::info!(room = %room.id, "room made private: invite key replaced");
    }
    let room = state
        .store
        .room(room.id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    Ok(Json(
        room_view(&state, &room, user.id, Access::Granted).await?,
    ))
}

async fn delete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (room, _) = visible_room(&state, &id, user.id, client).await?;
    if room.owner != user.id {
        return Err(ApiError::Forbidden(
            "only the owner may delete the room".into(),
        ));
    }
    live_room(&state, room.id)
        .await?
        .delete(user.id)
        .await
        .map_err(command_error)?;
    tracing::info!(room = %room.id, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    #[serde(default)]
    password: Option<String>,
}

/// Admits `user` to `room`, checking the password when there is one. Every guess counts against
/// the client's address and the room (both rate-limited) before argon2 runs.
pub(crate) async fn admit(
    state: &AppState,
    room: &RoomRow,
    user: UserId,
    given: Option<String>,
    client: ClientAddr,
) -> Result<(), ApiError> {
    if let Some(hash) = &room.password_hash
        && room.owner != user
        && !state.store.membership(room.id, user).await?.admitted
    {
        let given = given.ok_or(ApiError::PasswordRequired)?;
        let throttles = &state.throttles;
        let limited = |wait| ApiError::rate_limited("too_many_guesses", "password guesses", wait);
        throttles
            .password_guesses_per_address
            .check(&client.key())
            .map_err(limited)?;
        throttles
            .password_guesses_per_room
            .check(&room.id)
            .map_err(|wait| ApiError::RateLimited {
                code: "too_many_guesses",
                message: "too many password guesses for this room".into(),
                retry_after: wait,
            })?;
        if !state.passwords.verify(hash.clone(), given).await? {
            tracing::info!(room = %room.id, user = %user, %client, "wrong room password");
            return Err(ApiError::WrongPassword);
        }
    }
    state.store.admit(room.id, user, state.clock.now()).await?;
    Ok(())
}

/// Admits `user` (checking the password) and describes the room as they now see it: what both
/// ways in (`/rooms/{id}/join`, `/invites/{key}/join`) answer.
async fn enter(
    state: &AppState,
    room: &RoomRow,
    user: UserId,
    password: Option<String>,
    client: ClientAddr,
) -> Result<Json<RoomView>, ApiError> {
    admit(state, room, user, password, client).await?;
    Ok(Json(room_view(state, room, user, Access::Granted).await?))
}

async fn join(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
    body: Option<ApiJson<JoinBody>>,
) -> Result<Json<RoomView>, ApiError> {
    let (room, _) = visible_room(&state, &id, user.id, client).await?;
    enter(
        &state,
        &room,
        user.id,
        body.and_then(|b| b.0.password),
        client,
    )
    .await
}

async fn regenerate_invite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (room, _) = visible_room(&state, &id, user.id, client).await?;
    if room.owner != user.id {
        return Err(ApiError::Forbidden(
            "only the owner may regenerate the invite link".into(),
        ));
    }
    let key = new_invite_key();
    state.store.set_invite_key(room.id, &key).await?;
    tracing::info!(room = %room.id, "invite key regenerated");
    Ok(Json(serde_json::json!({
        "invite_key": key.as_str(),
        "link": format!("/i/{}", key.as_str()),
    })))
}

/// How desktop players join a room through the Syncplay door, as `GET /api/rooms/{id}/syncplay`
/// tells its admitted members.
#[derive(Debug, Serialize)]
struct SyncplayView {
    /// Whether this server listens for Syncplay clients at all (`--syncplay-listen`).
    enabled: bool,
    /// The port it listens on; the host is the site's.
    port: Option<u16>,
    /// The Syncplay room name that always works: the room's invite key.
    room: String,
    /// The room's short Syncplay name, if the owner chose one.
    short_name: Option<ShortName>,
}

async fn syncplay_view(state: &AppState, room: &RoomRow) -> Result<SyncplayView, ApiError> {
    Ok(SyncplayView {
        enabled: state.config.syncplay_listen.is_some(),
        port: state.config.syncplay_listen.map(|a| a.port()),
        room: room.invite_key.as_str().to_owned(),
        short_name: state.store.syncplay_name(room.id).await?,
    })
}

/// `GET /api/rooms/{id}/syncplay`: for members who got in (it tells the invite key).
async fn syncplay(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<SyncplayView>, ApiError> {
    let (room, access) = visible_room(&state, &id, user.id, client).await?;
    if access != Access::Granted {
        return Err(ApiError::Forbidden("give the room's password first".into()));
    }
    Ok(Json(syncplay_view(&state, &room).await?))
}

/// `PUT /api/rooms/{id}/syncplay` with `{"short_name": "movienight"}` (or `null` to give it
/// up): the owner's short Syncplay name for the room. A private room's name is guessable where
/// its invite key is not, so a private room needs a password first (the door asks Syncplay
/// users for it).
async fn set_syncplay_name(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<SyncplayView>, ApiError> {
    let (room, _) = visible_room(&state, &id, user.id, client).await?;
    if room.owner != user.id {
        return Err(ApiError::Forbidden(
            "only the owner may choose the room's Syncplay name".into(),
        ));
    }
    let name = match body.get("short_name") {
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(raw)) => Some(
            ShortName::parse(raw)
                .map_err(|e| ApiError::invalid("invalid_syncplay_name", e.to_string()))?,
        ),
        _ => {
            return Err(ApiError::invalid(
                "invalid_input",
                "expected {\"short_name\": a name or null}",
            ));
        }
    };
    if name.is_some()
        && room.settings.visibility == Visibility::Private
        && room.password_hash.is_none()
    {
        return Err(ApiError::Clash {
            code: "password_required",
            message: "a private room needs a password before it gets a short Syncplay name: the name can be guessed, the invite key cannot".into(),
        });
    }
    if !state
        .store
        .set_syncplay_name(room.id, name.as_ref())
        .await?
    {
        return Err(ApiError::Clash {
            code: "syncplay_name_taken",
            message: "another room has that Syncplay name".into(),
        });
    }
    tracing::info!(room = %room.id, name = ?name.as_ref().map(ShortName::as_str), "Syncplay name set");
    Ok(Json(syncplay_view(&state, &room).await?))
}

async fn room_by_invite(state: &AppState, raw: &str) -> Result<RoomRow, ApiError> {
    let not_found = || ApiError::not_found("invite_not_found", "this invite link is not valid");
    let key = InviteKey::parse(raw).map_err(|_| not_found())?;
    state
        .store
        .room_by_invite(&key)
        .await?
        .ok_or_else(not_found)
}

/// What an invite link leads to, before joining.
#[derive(Debug, Serialize)]
struct InviteView {
    room_id: RoomId,
    name: String,
    has_password: bool,
    admitted: bool,
}

async fn invite(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(key): Path<String>,
) -> Result<Json<InviteView>, ApiError> {
    let room = room_by_invite(&state, &key).await?;
    let membership = at_the_door(&state, &room, user.id, client).await?;
    Ok(Json(InviteView {
        room_id: room.id,
        name: room.settings.name.to_string(),
        has_password: room.password_hash.is_some(),
        admitted: membership.admitted || room.owner == user.id,
    }))
}

async fn invite_join(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(key): Path<String>,
    body: Option<ApiJson<JoinBody>>,
) -> Result<Json<RoomView>, ApiError> {
    let room = room_by_invite(&state, &key).await?;
    at_the_door(&state, &room, user.id, client).await?;
    enter(
        &state,
        &room,
        user.id,
        body.and_then(|b| b.0.password),
        client,
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// Most lines a history page returns.
const HISTORY_PAGE_MAX: i64 = 200;

async fn chat_history(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (room, access) = visible_room(&state, &id, user.id, client).await?;
    if access == Access::NeedsPassword {
        return Err(ApiError::PasswordRequired);
    }
    let limit = q.limit.unwrap_or(50).clamp(1, HISTORY_PAGE_MAX);
    let mut lines = state.store.chat_lines(room.id, q.before, limit + 1).await?;
    let has_more = lines.len() as i64 > limit;
    if has_more {
        lines.remove(0);
    }
    Ok(Json(
        serde_json::json!({ "lines": lines, "has_more": has_more }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LobbyQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Public rooms without viewers the lobby lists after the busy ones: the most recently active.
const LOBBY_WINDOW: i64 = 500;

/// The lobby: every public room with viewers, busiest first, then the most recently active
/// empty ones. Busy rooms come from the live registry whatever their age, so no number of new
/// empty rooms can push them out (an outside test pushed a real room out with 520 in 0.4 s).
async fn public_cards(state: &AppState) -> Result<Vec<RoomCard>, ApiError> {
    let live: std::collections::HashMap<RoomId, usize> =
        state.rooms.with_viewers().into_iter().collect();
    let ids: Vec<RoomId> = live.keys().copied().collect();
    let mut cards: Vec<RoomCard> = state
        .store
        .public_rooms_among(&ids)
        .await?
        .iter()
        .map(|r| RoomCard::new(r, live.get(&r.id).copied().unwrap_or(0)))
        .collect();
    cards.sort_by(|a, b| b.viewers.cmp(&a.viewers).then_with(|| a.name.cmp(&b.name)));
    let recent = state.store.public_rooms(LOBBY_WINDOW).await?;
    cards.extend(
        recent
            .iter()
            .filter(|r| !live.contains_key(&r.id))
            .map(|r| RoomCard::new(r, 0)),
    );
    Ok(cards)
}

async fn lobby(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LobbyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cards = public_cards(&state).await?;
    let total = cards.len();
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    let page: Vec<RoomCard> = cards
        .into_iter()
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .collect();
    Ok(Json(serde_json::json!({ "rooms": page, "total": total })))
}

/// `GET /api/rooms/random`: a public room without a password, preferring rooms with viewers.
async fn random(State(state): State<AppState>) -> Result<Json<RoomCard>, ApiError> {
    let open: Vec<RoomCard> = public_cards(&state)
        .await?
        .into_iter()
        .filter(|c| !c.has_password)
        .collect();
    let busy: Vec<&RoomCard> = open.iter().filter(|c| c.viewers > 0).collect();
    let pool: Vec<&RoomCard> = if busy.is_empty() {
        open.iter().collect()
    } else {
        busy
    };
    let choice = pool
        .choose(&mut rand::rng())
        .ok_or_else(|| ApiError::not_found("no_rooms", "there is no open public room right now"))?;
    Ok(Json((*choice).clone()))
}
