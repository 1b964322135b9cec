//! A client's frames, whatever carries them: joining a room, turning protocol v1 frames into room
//! commands, and the one frame that answers each (an `ack`, an `error` or a `pong`).
//!
//! The WebSocket is one front door; a Syncplay socket or another node forwarding its viewers'
//! commands are others. They differ in how bytes arrive and leave (fragments, batching, their
//! own handshake) but must apply the same rules: the same rate limits, checks and room commands.
//! So this module knows nothing of sockets: a front door parses its transport, hands each
//! frame's text here, and writes back what it gets.

use super::{JoinError, Joined, Resume, RoomError, RoomHandle};
use crate::server::client::ClientAddr;
use crate::state::AppState;
use crate::store::users::User;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lockstep_core::chat::{ChatText, ChatTextError};
use lockstep_core::ids::{ListId, RoomId, UserId};
use lockstep_core::limits::MEMBER_PAGE_MAX;
use lockstep_core::protocol::{ClientFrame, CommandId, ServerFrame, parse_client_frame};
use lockstep_core::room::{Command, CommandError};
use lockstep_core::time::ServerTime;
use std::num::NonZeroU32;

/// Why a join did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The room was deleted.
    NoSuchRoom,
    /// The user is banned from it.
    Banned,
    /// The room could not be loaded or kept stopping: try again shortly.
    Unavailable,
}

/// One client's side of a room: who they are, where they connect from, and their frame rate.
pub struct Dispatch {
    state: AppState,
    user: User,
    /// Where the client connects from (chat is limited per address; a ban bars it).
    client: ClientAddr,
    limiter: DefaultDirectRateLimiter,
}

impl Dispatch {
    pub fn new(state: AppState, user: User, client: ClientAddr) -> Self {
        let per_sec = NonZeroU32::new(state.config.ws_frames_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(state.config.ws_frames_burst).unwrap_or(per_sec);
        Dispatch {
            state,
            user,
            client,
            limiter: RateLimiter::direct_with_clock(
                Quota::per_second(per_sec).allow_burst(burst),
                crate::throttle::clock().clone(),
            ),
        }
    }

    /// The client's user, with the name they last chose.
    /// The server's state, which the connection's own steps use too.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    /// Joins the room: the handle, its events from now on, and the frames to send first (a
    /// welcome, or `resumed` and the missed events). An actor that is unloading answers "gone";
    /// the next `get` loads a fresh one. `visit`: the store has no recent visit of this user
    /// to the room, and the join records one.
    pub async fn join(
        &self,
        room_id: RoomId,
        resume: Option<Resume>,
        visit: bool,
    ) -> Result<(RoomHandle, Joined), JoinRefusal> {
        for _ in 0..3 {
            let handle = match self.state.rooms.get(room_id).await {
                Ok(handle) => handle,
                Err(RoomError::NotFound) => return Err(JoinRefusal::NoSuchRoom),
                Err(err) => {
                    tracing::warn!(room = %room_id, error = %err, "cannot load room");
                    return Err(JoinRefusal::Unavailable);
                }
            };
            match handle.join(self.user.clone(), resume.clone(), visit).await {
                Ok(joined) => return Ok((handle, joined)),
                Err(JoinError::Banned) => return Err(JoinRefusal::Banned),
                Err(JoinError::Gone) => continue,
                Err(JoinError::Internal) => return Err(JoinRefusal::Unavailable),
            }
        }
        Err(JoinRefusal::Unavailable)
    }

    /// The client left `room` after being banned: its address is barred from the room for a
    /// while too (the room's actor bars the addresses of their sessions).
    pub async fn banned_from(&self, room: RoomId) {
        let bar = std::time::Duration::from_secs(self.state.config.ban_address_secs);
        if bar.is_zero() {
            return;
        }
        let until = self.state.clock.now() + bar;
        let addr = self.client.key().as_text();
        let user = self.user.id;
        if let Err(err) = self.state.store.bar_address(room, user, &addr, until).await {
            tracing::error!(%room, error = %err, "cannot bar a banned connection's address");
        }
    }

    /// Tells the room that this member watches in a desktop player, with this file open. Only
    /// the Syncplay door calls it (it is no WebSocket frame); it counts against the same frame
    /// limit.
    pub async fn desktop(
        &self,
        room: &RoomHandle,
        desktop: lockstep_core::room::Desktop,
    ) -> Result<(), CommandError> {
        if let Err(not_until) = self.limiter.check() {
            let wait =
                not_until.wait_time_from(governor::clock::Clock::now(crate::throttle::clock()));
            return Err(CommandError::RateLimited { retry_after: wait });
        }
        room.command(self.user.id, Command::Desktop { desktop })
            .await
    }

    /// The answer to a clock ping received at `received`.
    pub fn pong(
        &self,
        id: Option<CommandId>,
        client_time: f64,
        received: ServerTime,
    ) -> ServerFrame {
        ServerFrame::Pong {
            id,
            client_time,
            server_recv: received,
            server_send: self.state.clock.now(),
        }
    }

    /// The `rate_limited` answer to a frame (`id`) beyond the connection's frame rate, or `None`
    /// to go on. Every frame counts, those before `hello` too.
    pub fn over_rate(&self, id: Option<CommandId>) -> Option<ServerFrame> {
        let not_until = self.limiter.check().err()?;
        let wait = not_until.wait_time_from(governor::clock::Clock::now(crate::throttle::clock()));
        Some(ServerFrame::Error {
            id,
            code: "rate_limited".into(),
            message: "too many frames; slow down".into(),
            retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// Handles one frame's text, received at `received`, from a client in `room`; returns the
    /// frame that answers it, if any: a `sync_report` without `id` is answered only when
    /// refused.
    pub async fn text(
        &mut self,
        room: &RoomHandle,
        text: &str,
        received: ServerTime,
    ) -> Option<ServerFrame> {
        self.state.metrics.frame_in();
        let frame = match parse_client_frame(text) {
            Ok(frame) => frame,
            Err(e) => return Some(ServerFrame::error(e.id, e.code, e.message)),
        };
        if let Some(refused) = self.over_rate(frame.id()) {
            return Some(refused);
        }
        let user = self.user.id;
        let (id, result) = match frame {
            ClientFrame::Ping { id, client_time } => {
                return Some(self.pong(id, client_time, received));
            }
            ClientFrame::Hello { .. } => {
                return Some(ServerFrame::error(
                    None,
                    "already_joined",
                    "hello was already sent",
                ));
            }
            ClientFrame::QueueAdd { id, url } => {
                let media = match super::items::media_to_add(&self.state, &url).await {
                    Ok(media) => media,
                    Err(e) => return Some(ServerFrame::error(Some(id), e.code(), e.to_string())),
                };
                match room.queue_add(user, super::NewItem::Media(media)).await {
                    Ok(item_id) => {
                        return Some(ServerFrame::Ack {
                            id,
                            item_id: Some(item_id),
                        });
                    }
                    Err(e) => (id, Err(e)),
                }
            }
            ClientFrame::QueueAddUpload { id, upload_id } => {
                return Some(
                    match super::items::upload_item(&self.state, user, upload_id).await {
                        Ok(item) => match room.queue_add(user, item).await {
                            Ok(item_id) => ServerFrame::Ack {
                                id,
                                item_id: Some(item_id),
                            },
                            Err(e) => command_error_frame(id, &e),
                        },
                        Err(e) => ServerFrame::error(Some(id), e.code(), e.to_string()),
                    },
                );
            }
            ClientFrame::QueueAddPlaylist { id, playlist_id } => {
                return Some(self.add_playlist(room, id, playlist_id).await);
            }
            ClientFrame::Chat { id, text } => match ChatText::parse(&text) {
                Ok(text) => {
                    // Many throwaway users from one address share one allowance (each user
                    // also has the room's own limit).
                    if let Err(wait) = self.state.throttles.chat.check(&self.client.key()) {
                        return Some(ServerFrame::Error {
                            id: Some(id),
                            code: "rate_limited".into(),
                            message: "too many chat lines from your address; slow down".into(),
                            retry_after_ms: Some(
                                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            ),
                        });
                    }
                    (id, room.command(user, Command::Chat { text }).await)
                }
                Err(e) => {
                    let code = match e {
                        ChatTextError::Empty => "chat_empty",
                        ChatTextError::TooLong => "chat_too_long",
                    };
                    return Some(ServerFrame::error(Some(id), code, e.to_string()));
                }
            },
            ClientFrame::SetName { id, name } => {
                return Some(match super::set_name(&self.state, user, &name).await {
                    Ok(name) => {
                        self.user.name = name;
                        ServerFrame::Ack { id, item_id: None }
                    }
                    Err(e) => ServerFrame::error(Some(id), e.code(), e.to_string()),
                });
            }
            ClientFrame::Play { id } => (id, room.command(user, Command::Play).await),
            ClientFrame::Pause { id } => (id, room.command(user, Command::Pause).await),
            ClientFrame::Seek { id, position } => {
                (id, room.command(user, Command::Seek { position }).await)
            }
            ClientFrame::Rate { id, rate } => {
                (id, room.command(user, Command::SetRate { rate }).await)
            }
            ClientFrame::QueueRemove { id, item_id } => (
                id,
                room.command(user, Command::QueueRemove { item_id }).await,
            ),
            ClientFrame::QueueMove { id, item_id, index } => (
                id,
                room.command(user, Command::QueueMove { item_id, index })
                    .await,
            ),
            ClientFrame::Skip { id } => (id, room.command(user, Command::Skip).await),
            ClientFrame::VoteSkip { id } => (id, room.command(user, Command::VoteSkip).await),
            ClientFrame::Promote { id, user_id } => {
                (id, room.command(user, Command::Promote { user_id }).await)
            }
            ClientFrame::Demote { id, user_id } => {
                (id, room.command(user, Command::Demote { user_id }).await)
            }
            ClientFrame::Kick { id, user_id } => {
                (id, room.command(user, Command::Kick { user_id }).await)
            }
            ClientFrame::Ban { id, user_id } => {
                (id, room.command(user, Command::Ban { user_id }).await)
            }
            ClientFrame::Unban { id, user_id } => {
                (id, room.command(user, Command::Unban { user_id }).await)
            }
            ClientFrame::Mute { id, user_id } => {
                (id, room.command(user, Command::Mute { user_id }).await)
            }
            ClientFrame::Unmute { id, user_id } => {
                (id, room.command(user, Command::Unmute { user_id }).await)
            }
            ClientFrame::Duration {
                id,
                item_id,
                duration,
            } => (
                id,
                room.command(user, Command::ReportDuration { item_id, duration })
                    .await,
            ),
            ClientFrame::Ready {
                id,
                ready,
                cannot_play,
            } => (
                id,
                room.command(user, Command::Ready { ready, cannot_play })
                    .await,
            ),
            ClientFrame::SyncReport { id, p50_ms, p95_ms } => {
                let result = room
                    .command(user, Command::SyncReport { p50_ms, p95_ms })
                    .await;
                return match result {
                    Ok(()) => {
                        // Only reports the room took count: checked, one per member per 2 s.
                        self.state.metrics.sync_report(p50_ms, p95_ms);
                        id.map(|id| ServerFrame::Ack { id, item_id: None })
                    }
                    Err(e) => Some(command_error_frame(id, &e)),
                };
            }
            ClientFrame::Members { id, offset, limit } => {
                return Some(members_page(room, id, offset, limit).await);
            }
        };
        Some(match result {
            Ok(()) => ServerFrame::Ack { id, item_id: None },
            Err(e) => command_error_frame(id, &e),
        })
    }

    /// Adds every entry of one of my playlists, in order; stops at the first refusal (the queue
    /// is full, I may not add).
    async fn add_playlist(
        &self,
        room: &RoomHandle,
        id: CommandId,
        playlist: ListId,
    ) -> ServerFrame {
        let user: UserId = self.user.id;
        let list = match self.state.store.playlist(user, playlist).await {
            Ok(Some(list)) => list,
            Ok(None) => {
                return ServerFrame::error(
                    Some(id),
                    "playlist_not_found",
                    "no such playlist of yours",
                );
            }
            Err(_) => {
                return ServerFrame::error(Some(id), "internal", "the playlist could not be read");
            }
        };
        let mut first = None;
        for entry in &list.items {
            let item = match super::items::new_item(&self.state, user, &entry.item).await {
                Ok(item) => item,
                // A saved entry that cannot be queued (an upload deleted since) is skipped.
                Err(_) => continue,
            };
            match room.queue_add(user, item).await {
                Ok(item_id) => {
                    first.get_or_insert(item_id);
                }
                Err(e) => return command_error_frame(id, &e),
            }
        }
        ServerFrame::Ack { id, item_id: first }
    }
}

/// The answer to `members`: a page of the list, read from the room (wherever it runs).
async fn members_page(
    room: &RoomHandle,
    id: CommandId,
    offset: usize,
    limit: usize,
) -> ServerFrame {
    if !(1..=MEMBER_PAGE_MAX).contains(&limit) {
        return ServerFrame::error(
            Some(id),
            "invalid_page",
            format!("limit must be between 1 and {MEMBER_PAGE_MAX}"),
        );
    }
    match room.members(offset, limit).await {
        Some((members, count)) => ServerFrame::MembersPage {
            id,
            offset,
            count,
            members,
        },
        None => command_error_frame(id, &CommandError::Unavailable),
    }
}

fn command_error_frame(id: impl Into<Option<CommandId>>, err: &CommandError) -> ServerFrame {
    ServerFrame::Error {
        id: id.into(),
        code: err.code().into(),
        message: err.to_string(),
        retry_after_ms: err
            .retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}
