//! The room actor: the one task that changes a live room.
//!
//! It owns the [`Room`] state machine, numbers events, writes each to the store *before* anyone
//! hears of it (so an acknowledged command survives a crash), serialises it once, keeps it in the
//! resume ring and broadcasts it. It also runs the room's timers: the current item ending
//! (autoplay), members' leave grace, and unloading after the room has had no connection for the
//! idle time. If the store fails, the actor stops and tells clients to reconnect: the next actor
//! reloads from the store, so memory and disk never disagree for long.

use super::ring::EventRing;
use super::{
    JoinError, Joined, Msg, NewItem, Resume, RoomEnv, RoomError, RoomHandle, RoomStats, Rooms,
};
use crate::bus::{Outbound, RoomBus};
use crate::media::Resolution;
use crate::store::writer::{WriteError, Written};
use lockstep_core::ids::{ItemId, RoomId, UploadId, UserId};
use lockstep_core::limits::WELCOME_CHAT_LINES;
use lockstep_core::media::Media;
use lockstep_core::permissions::Action;
use lockstep_core::protocol::{ChatLine, ServerFrame, SettingsView, VoteCount, Welcome};
use lockstep_core::queue::{ItemMetadata, ItemSource, ItemStatus, QueueItem};
use lockstep_core::room::{Command, CommandError, Event, MemberView, Room, RoomInit};
use lockstep_core::time::ServerTime;
use rand::Rng;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::oneshot::{self, error::TryRecvError};
use tokio::time::Instant;
use tungstenite::Utf8Bytes;
use uuid::Uuid;

/// Why an actor stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// No connection for the idle time.
    Idle,
    /// The server is shutting down.
    Shutdown,
    /// The owner deleted the room.
    Deleted,
    /// The store failed; reload from it.
    Failed,
}

/// How long after a room is loaded a resuming connection counts as one that was in it before
/// (a restart or a failover): clients come back within their backoff (at most 15 s) after the
/// server's requested delay (1 s).
const RETURNING_WINDOW: Duration = Duration::from_secs(30);

struct Actor {
    id: RoomId,
    epoch: u64,
    epoch_text: String,
    room: Room,
    seq: u64,
    ring: EventRing,
    recent_chat: VecDeque<ChatLine>,
    bus: RoomBus,
    /// Events numbered and stored but not yet written to the viewers: they wait for the end
    /// of the fan-out window (see [`Actor::broadcast`]).
    outgoing: Vec<(u64, Utf8Bytes)>,
    /// When the first of them was published.
    waiting_since: Option<std::time::Instant>,
    /// When the room last wrote to its viewers, and when it writes what waits.
    last_write: Option<Instant>,
    flush_at: Option<Instant>,
    connections: usize,
    idle_since: Option<Instant>,
    /// When this actor loaded the room (see [`RETURNING_WINDOW`]).
    loaded_at: Instant,
    inbox: mpsc::Receiver<Msg>,
    /// For lookups that report back when done.
    me: mpsc::WeakSender<Msg>,
    stats: Arc<RoomStats>,
    rooms: Rooms,
    env: RoomEnv,
    failed: bool,
    /// The commits of visits written behind that may not have come yet (see
    /// [`Actor::visits_committed`]).
    visits_behind: Vec<oneshot::Receiver<Written>>,
}

/// Loads a room from the store and starts its actor.
pub(crate) async fn load(rooms: Rooms, env: RoomEnv, id: RoomId) -> Result<RoomHandle, RoomError> {
    let store = &env.store;
    let row = store.room(id).await?.ok_or(RoomError::NotFound)?;
    let mut items = store.queue_items(id).await?;
    let current = row
        .current_item_id
        .and_then(|cid| items.iter().position(|i| i.id == cid))
        .map(|index| items.remove(index));
    let standings = store.standings(id).await?;
    let chat = store
        .chat_lines(id, None, WELCOME_CHAT_LINES as i64)
        .await?;
    let now = env.clock.now();
    // A position past the end of the item is left to the room: its deadline is then due, and it
    // ends the item (autoplay).
    let playback = row.playback_at(now);
    let pending: Vec<QueueItem> = current
        .iter()
        .chain(items.iter())
        .filter(|i| i.status == ItemStatus::Pending)
        .cloned()
        .collect();
    let room = Room::new(
        RoomInit {
            id,
            owner: row.owner,
            settings: row.settings,
            has_password: row.password_hash.is_some(),
            standings,
            current,
            playback,
            queue: items,
        },
        env.rules.clone(),
    );
    let (tx, inbox) = mpsc::channel(super::INBOX);
    let mut epoch: u64 = rand::rng().random();
    let mut seq = 0;
    let mut ring = EventRing::new(env.ring_size, super::ring::RING_MAX_BYTES);
    // With several nodes the numbering continues where the room's last node left it.
    if env.fence.is_some()
        && let Some(cluster) = rooms.inner.cluster.as_ref()
    {
        match cluster.history(id, env.ring_size).await {
            Ok((shared_epoch, history)) => {
                epoch = shared_epoch;
                for (n, frame) in history {
                    ring.push(n, frame.into());
                    seq = n;
                }
            }
            Err(err) => {
                tracing::warn!(room = %id, error = %err, "cannot read the room's history; its viewers start afresh");
            }
        }
    }
    let stats = Arc::new(RoomStats::default());
    let actor = Actor {
        id,
        epoch,
        epoch_text: format!("{epoch:016x}"),
        room,
        seq,
        ring,
        recent_chat: chat.into(),
        bus: RoomBus::new(),
        outgoing: Vec::new(),
        waiting_since: None,
        last_write: None,
        flush_at: None,
        connections: 0,
        idle_since: Some(Instant::now()),
        loaded_at: Instant::now(),
        inbox,
        me: tx.downgrade(),
        stats: stats.clone(),
        rooms,
        env: env.clone(),
        failed: false,
        visits_behind: Vec::new(),
    };
    // Lookups interrupted by a restart or an unload run again; uploads that became playable
    // while the room was not loaded are applied by its first message.
    for item in pending {
        match item.upload_id() {
            Some(upload) => actor.recheck_upload(upload).await,
            None => actor.spawn_lookup(item.id, &item.url),
        }
    }
    env.metrics.room_loaded();
    tracing::debug!(room = %id, "room loaded");
    env.tasks.spawn(actor.run());
    Ok(RoomHandle {
        id,
        epoch,
        tx,
        stats,
    })
}

impl Actor {
    async fn run(mut self) {
        let stop = loop {
            let wake = self.next_wake();
            tokio::select! {
                biased;
                () = self.env.shutdown.cancelled() => break Stop::Shutdown,
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break Stop::Idle };
                    let started = std::time::Instant::now();
                    if let Some(stop) = self.handle(msg).await {
                        break stop;
                    }
                    self.env.metrics.actor_busy(started.elapsed().as_secs_f64());
                }
                () = sleep_until(wake) => {
                    if self.flush_at.is_some_and(|at| at <= Instant::now()) {
                        self.flush();
                    }
                    if self.idle_expired() {
                        break Stop::Idle;
                    }
                    let now = self.env.clock.now();
                    let events = self.room.tick(now);
                    self.publish(events, now).await;
                }
            }
            if self.failed {
                break Stop::Failed;
            }
        };
        self.stop(stop).await;
    }

    fn idle_expired(&self) -> bool {
        self.idle_since
            .is_some_and(|since| since.elapsed() >= self.env.idle)
    }

    /// The next instant something is due: a room deadline, the end of the fan-out window, or
    /// the idle unload.
    fn next_wake(&self) -> Option<Instant> {
        let deadline = self
            .room
            .next_deadline()
            .map(|t| self.env.clock.instant_at(t));
        let idle = self.idle_since.map(|since| since + self.env.idle);
        [deadline, idle, self.flush_at].into_iter().flatten().min()
    }

    /// Handles one message; returns `Some` when the actor must stop.
    async fn handle(&mut self, msg: Msg) -> Option<Stop> {
        let now = self.env.clock.now();
        match msg {
            Msg::Join {
                user,
                resume,
                visit,
                reply,
            } => {
                // A resuming connection soon after the room was loaded was in it before a
                // restart or a failover: nobody saw it leave, so it comes back unannounced.
                let returning = resume.is_some() && self.loaded_at.elapsed() < RETURNING_WINDOW;
                let name = user.name.clone();
                let joined = match returning {
                    true => self.room.reconnect(user.id, name, visit, now),
                    false => self.room.connect(user.id, name, visit, now),
                };
                let events = match joined {
                    Ok(events) => events,
                    Err(_) => {
                        let _ = reply.send(Err(JoinError::Banned));
                        return None;
                    }
                };
                self.connections += 1;
                self.idle_since = None;
                if !self.publish(events, now).await {
                    let _ = reply.send(Err(JoinError::Internal));
                    return None;
                }
                // While the room plays an upload, a first visit is committed before the welcome:
                // an upload's files are served to the room's members as the store knows them,
                // and the page asks for the video as soon as it hears what plays. Otherwise its
                // request could come before the commit and be refused (404), and its video never
                // loaded (bench-sync, a room of uploads).
                let plays_upload = self
                    .room
                    .current()
                    .is_some_and(|item| matches!(item.source, ItemSource::Upload { .. }));
                if visit && plays_upload {
                    self.visits_committed().await;
                }
                let frames = match resume.and_then(|r| self.replay(&r, now)) {
                    Some(frames) => frames,
                    None => vec![self.welcome(user.id, now)],
                };
                let joined = Joined {
                    events: self.bus.subscribe(),
                    frames,
                    after_seq: self.seq,
                };
                if reply.send(Ok(joined)).is_err() {
                    // The connection went away while we worked: undo the join.
                    self.leave(user.id, now).await;
                }
            }
            Msg::Leave { user } => self.leave(user, now).await,
            Msg::Members {
                offset,
                limit,
                reply,
            } => {
                let members = self.room.member_page(offset, limit);
                let _ = reply.send((members, self.room.member_count()));
            }
            Msg::Subscribe { reply } => {
                let _ = reply.send(self.bus.subscribe());
            }
            Msg::Command { by, command, reply } => {
                let result = self.apply(by, command, now).await;
                let _ = reply.send(result);
            }
            Msg::QueueAdd { by, what, reply } => {
                let result = self.queue_add(by, what, now).await;
                let _ = reply.send(result);
            }
            Msg::UploadReady { media } => {
                let events = self.room.upload_ready(&media, now);
                self.publish(events, now).await;
            }
            Msg::UploadGone { upload_id } => {
                let events = self.room.upload_gone(upload_id, now);
                self.publish(events, now).await;
            }
            Msg::Settings {
                by,
                patch,
                password_hash,
                reply,
            } => {
                let result = self.update_settings(by, &patch, password_hash, now).await;
                let _ = reply.send(result);
            }
            Msg::Rename { user, name } => {
                let events = self.room.rename(user, name, now);
                self.publish(events, now).await;
            }
            Msg::Resolved {
                item_id,
                resolution,
            } => {
                let events = match resolution {
                    Resolution::Found(meta) => self.room.item_resolved(item_id, meta),
                    Resolution::Unavailable(reason) => {
                        tracing::info!(room = %self.id, item = %item_id, %reason, "media unavailable");
                        self.room.item_unavailable(item_id, Some(&reason), now)
                    }
                    Resolution::Unknown(reason) => {
                        tracing::info!(room = %self.id, item = %item_id, %reason, "media lookup failed; the item stays playable");
                        self.room.item_resolved(item_id, ItemMetadata::default())
                    }
                };
                self.publish(events, now).await;
            }
            Msg::Delete { by, reply } => {
                if !self.room.may(by, Action::Own) {
                    let _ = reply.send(Err(CommandError::Forbidden));
                    return None;
                }
                if !self.still_ours().await {
                    let _ = reply.send(Err(CommandError::Unavailable));
                    return None;
                }
                if let Err(err) = self.env.store.delete_room(self.id).await {
                    tracing::error!(room = %self.id, error = %err, "deleting the room failed");
                    let _ = reply.send(Err(CommandError::Unavailable));
                    self.failed = true;
                    return None;
                }
                let _ = reply.send(Ok(()));
                return Some(Stop::Deleted);
            }
        }
        None
    }

    async fn leave(&mut self, user: UserId, now: ServerTime) {
        self.connections = self.connections.saturating_sub(1);
        if self.connections == 0 {
            self.idle_since = Some(Instant::now());
        }
        let events = self.room.disconnect(user, now);
        self.publish(events, now).await;
    }

    async fn apply(
        &mut self,
        by: UserId,
        command: Command,
        now: ServerTime,
    ) -> Result<(), CommandError> {
        // Banning someone absent writes their standing, which needs a real user: an unknown id
        // is `user_not_found`, not a failed write that restarts the room (any moderator could
        // repeat that to disconnect everyone).
        if let Command::Ban { user_id } = &command
            && !self.room.is_member(*user_id)
        {
            match self.env.store.user(*user_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(CommandError::UserNotFound),
                Err(err) => {
                    tracing::warn!(room = %self.id, error = %err, "cannot look up a user to ban");
                    return Err(CommandError::Unavailable);
                }
            }
        }
        let bars = match &command {
            Command::Ban { user_id } => Some((*user_id, true)),
            Command::Unban { user_id } => Some((*user_id, false)),
            _ => None,
        };
        let events = self.room.apply(by, command, now)?;
        if !self.publish(events, now).await {
            return Err(CommandError::Unavailable);
        }
        if let Some((user, banned)) = bars {
            self.bar_addresses(user, banned, now).await;
        }
        Ok(())
    }

    /// A ban also bars the addresses the user's sessions came from, for a while (their live
    /// connections bar their own addresses as they close); an unban lifts them. A failure here
    /// is logged: the ban itself is stored.
    async fn bar_addresses(&self, user: UserId, banned: bool, now: ServerTime) {
        let store = &self.env.store;
        let result = if !banned {
            store.lift_address_bars(self.id, user).await
        } else if self.env.bar_addresses_for.is_zero() {
            return;
        } else {
            store
                .bar_session_addresses(self.id, user, now + self.env.bar_addresses_for)
                .await
                .map(
                    |n| tracing::info!(room = %self.id, %user, addresses = n, "ban bars addresses"),
                )
        };
        if let Err(err) = result {
            tracing::error!(room = %self.id, %user, error = %err, "cannot update the address bars of a ban");
        }
    }

    async fn queue_add(
        &mut self,
        by: UserId,
        what: NewItem,
        now: ServerTime,
    ) -> Result<ItemId, CommandError> {
        let name = self.room.member(by).ok_or(CommandError::NotAMember)?.name;
        let id = ItemId(Uuid::now_v7());
        let (item, lookup) = match &what {
            NewItem::Media(media) => {
                let item = QueueItem::new(id, media, by, &name, now);
                let url = item.url.clone();
                (item, Some(url))
            }
            NewItem::Upload(upload) => (QueueItem::for_upload(id, upload, by, &name, now), None),
        };
        self.apply(by, Command::QueueAdd { item }, now).await?;
        if let Some(url) = lookup {
            self.spawn_lookup(id, &url);
        }
        if let NewItem::Upload(upload) = &what
            && !upload.ready
        {
            // It may have become playable since it was read, before this room held it.
            self.recheck_upload(upload.upload_id).await;
        }
        Ok(id)
    }

    /// Looks at a pending upload item's upload in the store and tells this room (by its own
    /// inbox) if it became playable or was deleted meanwhile.
    async fn recheck_upload(&self, upload: UploadId) {
        let Some(me) = self.me.upgrade() else { return };
        match self.env.store.upload(upload).await {
            Ok(None) => {
                let _ = me.try_send(Msg::UploadGone { upload_id: upload });
            }
            Ok(Some(row)) if row.playable => {
                let media = row.room_media(None);
                let _ = me.try_send(Msg::UploadReady { media });
            }
            Ok(Some(_)) => {}
            Err(err) => {
                tracing::warn!(room = %self.id, %upload, error = %err, "cannot read an upload")
            }
        }
    }

    async fn update_settings(
        &mut self,
        by: UserId,
        patch: &lockstep_core::settings::SettingsPatch,
        password_hash: Option<Option<String>>,
        now: ServerTime,
    ) -> Result<SettingsView, CommandError> {
        // Check every permission before changing anything, so a refused request changes nothing.
        if password_hash.is_some() && !self.room.may(by, Action::ChangeAccess) {
            return Err(CommandError::Forbidden);
        }
        // A visit admits: whoever came in before the room goes private, or gets a password,
        // stays in, so the visits written behind are committed first.
        self.visits_committed().await;
        let mut events = self.room.update_settings(by, patch, now)?;
        if let Some(hash) = password_hash {
            if let Err(err) = self
                .env
                .store
                .set_password_hash(self.id, hash.as_deref())
                .await
            {
                tracing::error!(room = %self.id, error = %err, "saving the password failed");
                self.failed = true;
                return Err(CommandError::Unavailable);
            }
            events.extend(self.room.set_has_password(by, hash.is_some())?);
        }
        if !self.publish(events, now).await {
            return Err(CommandError::Unavailable);
        }
        Ok(self.settings_view())
    }

    /// Waits until the visits this room wrote behind are committed (or failed: a visit is not
    /// worth failing a command for).
    async fn visits_committed(&mut self) {
        for answer in self.visits_behind.drain(..) {
            let _ = answer.await;
        }
    }

    fn settings_view(&self) -> SettingsView {
        SettingsView {
            settings: self.room.settings().clone(),
            has_password: self.room.has_password(),
        }
    }

    /// Looks up an item's metadata in the background and reports back to this actor.
    fn spawn_lookup(&self, item_id: ItemId, url: &str) {
        let Ok(media) = Media::parse(url) else {
            return;
        };
        let resolver = self.env.media.clone();
        let me = self.me.clone();
        let shutdown = self.env.shutdown.clone();
        self.env.tasks.spawn(async move {
            let resolution = tokio::select! {
                r = resolver.resolve(&media) => r,
                () = shutdown.cancelled() => return,
            };
            if let Some(me) = me.upgrade() {
                let _ = me
                    .send(Msg::Resolved {
                        item_id,
                        resolution,
                    })
                    .await;
            }
        });
    }

    /// Hands numbered events to the viewers, emptying `batch`. The first events after a quiet
    /// spell are written at once; those that come within the fan-out window of the last write
    /// wait for the window's end and go out together. Each write costs a `send` per viewer,
    /// several microseconds of kernel time each, so a busy room (a chat storm) costs per window
    /// rather than per event; a viewer gets them at most the window late.
    fn broadcast(&mut self, batch: &mut Vec<(u64, Utf8Bytes)>) {
        if batch.is_empty() {
            return;
        }
        self.waiting_since
            .get_or_insert_with(std::time::Instant::now);
        self.outgoing.append(batch);
        if self.flush_at.is_some() {
            return;
        }
        let window = self.env.fanout_window;
        match self.last_write {
            Some(last) if !window.is_zero() && last.elapsed() < window => {
                self.flush_at = Some(last + window);
            }
            _ => self.flush(),
        }
    }

    /// Writes the waiting events to every viewer (see [`RoomBus::send_events`]).
    fn flush(&mut self) {
        self.flush_at = None;
        if self.outgoing.is_empty() {
            return;
        }
        let published = self
            .waiting_since
            .take()
            .unwrap_or_else(std::time::Instant::now);
        self.last_write = Some(Instant::now());
        let viewers = self.bus.send_events(&self.outgoing, published);
        let metrics = &self.env.metrics;
        metrics.frames_out((viewers * self.outgoing.len()) as u64);
        if viewers > 0 {
            // One sample per write: how long the oldest event waited for the last viewer.
            metrics.delivered(published.elapsed().as_secs_f64());
        }
        self.outgoing.clear();
    }

    /// Stores, numbers, serialises and broadcasts `events`. Returns false (and marks the actor
    /// failed) when the store refused a write. The events are written by the group commit
    /// ([`EventWriter`](crate::store::writer::EventWriter)) with other rooms' and are heard of
    /// only once committed.
    async fn publish(&mut self, events: Vec<Event>, now: ServerTime) -> bool {
        if events.is_empty() {
            return true;
        }
        // Visits mostly order nothing after them: they go with the next commit, unwaited (split
        // off only when there is one: this is every event's path); what does waits for them
        // (`visits_committed`).
        let events = if events.iter().any(|e| matches!(e, Event::Visited { .. })) {
            let (visits, events): (Vec<Event>, Vec<Event>) = events
                .into_iter()
                .partition(|e| matches!(e, Event::Visited { .. }));
            if let Some(answer) = self
                .env
                .writer
                .write_behind(self.id, self.env.fence, visits, now)
                .await
            {
                // Those already committed are let go of: at most what the writer has queued.
                self.visits_behind
                    .retain_mut(|r| matches!(r.try_recv(), Err(TryRecvError::Empty)));
                self.visits_behind.push(answer);
            }
            if events.is_empty() {
                return true;
            }
            events
        } else {
            events
        };
        // Events the store keeps nothing of (presence, votes, updates) need not wait for a
        // commit: a returning viewer's join into a big room writes nothing.
        let (events, written) = if events.iter().any(Event::is_stored) {
            self.env
                .writer
                .write(self.id, self.env.fence, events, now)
                .await
        } else {
            let none = vec![None; events.len()];
            (events, Ok(none))
        };
        let chat_ids = match written {
            Ok(ids) => ids,
            Err(WriteError::Fenced) => {
                tracing::warn!(room = %self.id, "another node took the room; stopping it here");
                self.failed = true;
                return false;
            }
            Err(err) => {
                tracing::error!(room = %self.id, error = %err, ?events, "storing room events failed; the room will reload");
                self.failed = true;
                return false;
            }
        };
        // Written to the viewers together: one write per viewer for the lot.
        let mut batch = Vec::with_capacity(events.len());
        for (event, chat_id) in events.iter().zip(chat_ids) {
            if let Event::Removed { user_id, banned } = event {
                self.broadcast(&mut batch);
                self.flush();
                self.bus.send(Outbound::Removed {
                    user_id: *user_id,
                    banned: *banned,
                });
            }
            let Some(frame) = ServerFrame::from_event(self.seq + 1, event, chat_id) else {
                continue;
            };
            self.seq += 1;
            if let ServerFrame::Chat { line, .. } = &frame {
                if self.recent_chat.len() == WELCOME_CHAT_LINES {
                    self.recent_chat.pop_front();
                }
                self.recent_chat.push_back(line.clone());
            }
            let text = serialize(&frame);
            if self.env.fence.is_some()
                && let Some(cluster) = self.rooms.inner.cluster.as_ref()
                && let Err(err) = cluster
                    .record(self.id, self.seq, text.as_str(), self.env.ring_size)
                    .await
            {
                // The relays notice the gap in numbers and send their viewers to resume.
                tracing::warn!(room = %self.id, error = %err, "cannot record a room event in Redis");
            }
            self.ring.push(self.seq, text.clone());
            batch.push((self.seq, text));
        }
        self.broadcast(&mut batch);
        self.stats
            .viewers
            .store(self.room.member_count(), Ordering::Relaxed);
        true
    }

    /// With several nodes: whether the room is still ours to write (no node took its lease
    /// since we did), checked before the writes that are not events (the playback saved when
    /// the actor stops, deleting the room; events check in their own transaction). When it is
    /// not, the actor stops without writing: its viewers reconnect and reach the room through
    /// its new node.
    async fn still_ours(&mut self) -> bool {
        let Some(fence) = self.env.fence else {
            return true;
        };
        match self.env.store.room_fence(self.id).await {
            Ok(Some(current)) if current == fence => true,
            Ok(_) => {
                tracing::warn!(room = %self.id, "another node took the room; stopping it here");
                self.failed = true;
                false
            }
            Err(err) => {
                tracing::error!(room = %self.id, error = %err, "cannot check the room's fence; the room will reload");
                self.failed = true;
                false
            }
        }
    }

    /// The frames that bring a client from `resume` to now, if the ring still has them.
    fn replay(&self, resume: &Resume, now: ServerTime) -> Option<Vec<Utf8Bytes>> {
        if resume.epoch != self.epoch_text {
            return None;
        }
        let missed = self.ring.after(resume.last_seq, self.seq)?;
        let mut frames = Vec::with_capacity(missed.len() + 1);
        frames.push(serialize(&ServerFrame::Resumed {
            epoch: self.epoch_text.clone(),
            after_seq: resume.last_seq,
            seq: self.seq,
            server_time: now,
        }));
        frames.extend(missed);
        Some(frames)
    }

    fn welcome(&self, user: UserId, now: ServerTime) -> Utf8Bytes {
        let you = self.room.member(user).unwrap_or_else(|| MemberView {
            user_id: user,
            name: lockstep_core::names::DisplayName::parse("You").expect("a valid literal name"),
            role: self.room.role_of(user),
            muted: false,
            ready: true,
            cannot_play: false,
            desktop: None,
        });
        let (votes, needed) = self.room.votes();
        let (members, member_count) = self.room.member_window();
        serialize(&ServerFrame::Welcome(Box::new(Welcome {
            epoch: self.epoch_text.clone(),
            seq: self.seq,
            server_time: now,
            room_id: self.id,
            owner_id: self.room.owner(),
            settings: self.settings_view(),
            you,
            current: self.room.current().cloned(),
            playback: *self.room.playback(),
            waiting: self.room.waiting(),
            queue: self.room.queue().to_vec(),
            votes: VoteCount { votes, needed },
            members,
            member_count,
            chat: self.recent_chat.iter().cloned().collect(),
        })))
    }

    async fn stop(mut self, why: Stop) {
        let now = self.env.clock.now();
        if why != Stop::Deleted && why != Stop::Failed && self.still_ours().await {
            // Save where playback is. A room that nobody has watched for the idle time is saved
            // paused: it resumes where its last viewer left it, not hours later or past its
            // queue. A room stopped by a shutdown keeps playing, as it would after a crash: its
            // next actor continues where the wall clock says.
            let mut state = self.room.playback_to_store(now);
            if why == Stop::Idle {
                state = state.pause(now);
            }
            let current = self.room.current().map(|i| i.id);
            if let Err(err) = self
                .env
                .store
                .save_playback(self.id, current, &state, now)
                .await
            {
                tracing::error!(room = %self.id, error = %err, "saving playback on unload failed");
            }
        }
        // From here on, new callers load a fresh actor; messages already queued are dropped,
        // which their senders see as "room unavailable" and retry.
        self.rooms.forget_actor(self.id, self.epoch);
        self.inbox.close();
        self.flush();
        match why {
            Stop::Idle => {}
            Stop::Shutdown | Stop::Failed => self.bus.send(Outbound::Reconnect),
            Stop::Deleted => self.bus.send(Outbound::Closed),
        }
        self.env.metrics.room_unloaded();
        tracing::debug!(room = %self.id, reason = ?why, "room stopped");
    }
}

/// Serialises a frame. Our frames are plain data (no maps with non-string keys, no failing
/// `Serialize` impls), so this cannot fail.
fn serialize(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).expect("server frames always serialise"))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::Outbound;
    use crate::bus::Recv;
    use crate::clock::ServerClock;
    use crate::config::Config;
    use crate::media::MediaResolver;
    use crate::metrics::Metrics;
    use crate::rooms::{RoomEnv, Rooms};
    use crate::store::rooms::tests::{room_row, user};
    use crate::store::testing::store;
    use lockstep_core::chat::ChatText;
    use lockstep_core::protocol::ServerFrame;
    use lockstep_core::room::{Command, RoomRules};
    use lockstep_core::settings::Visibility;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told() {
        let (store, dir) = store().await;
        let owner = user(&store).await;
        let room = room_row(owner.id, Visibility::Public);
        store.create_room(&room).await.unwrap();
        let rooms = Rooms::new(RoomEnv {
            store: store.clone(),
            backplane: crate::bus::backplane::Backplane::local(),
            clock: ServerClock::new(),
            metrics: Metrics::new(),
            media: Arc::new(
                MediaResolver::start(
                    &Config::with_data_dir(dir.path()),
                    store.clone(),
                    ServerClock::new(),
                    Default::default(),
                )
                .await
                .unwrap(),
            ),
            rules: RoomRules {
                leave_grace: Duration::ZERO,
                chat_lines: 10_000,
                chat_window: Duration::from_secs(5),
                presence_batch: Duration::ZERO,
            },
            ring_size: 512,
            fanout_window: Duration::ZERO,
            idle: Duration::from_secs(600),
            bar_addresses_for: Duration::from_secs(3600),
            shutdown: Default::default(),
            tasks: Default::default(),
            fence: None,
            writer: crate::store::writer::EventWriter::start(store.clone(), Metrics::new()),
        });
        let handle = rooms.get(room.id).await.unwrap();
        let mut slow = handle.join(owner.clone(), None, true).await.unwrap().events;
        // More events than a queued subscription holds, while `slow` reads nothing.
        let events = crate::bus::ROOM_CHANNEL_CAPACITY + 44;
        for n in 0..events {
            let text = ChatText::parse(&format!("line {n}")).unwrap();
            handle
                .command(owner.id, Command::Chat { text })
                .await
                .unwrap();
        }
        assert!(matches!(slow.recv().await, Err(Recv::Lagged(_))));
        // A connection that lagged before it attached starts over (it reconnects and resumes);
        // the room goes on for everyone else.
        let mut live = handle.subscribe().await.unwrap();
        handle
            .command(
                owner.id,
                Command::Chat {
                    text: ChatText::parse("after").unwrap(),
                },
            )
            .await
            .unwrap();
        let Ok(Outbound::Event { seq, frame, .. }) = live.recv().await else {
            panic!("an event")
        };
        assert_eq!(
            seq as usize,
            events + 3,
            "joined + join line + every chat line"
        );
        let ServerFrame::Chat { line, .. } = serde_json::from_str(frame.as_str()).unwrap() else {
            panic!("a chat line")
        };
        assert_eq!(line.text, "after");
    }
}
