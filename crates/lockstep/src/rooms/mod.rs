//! Live rooms: a registry of room actors and the handles used to talk to them.
//!
//! A room is loaded from the store the first time someone needs it and gets one actor task, the
//! only writer of its state (see [`actor`]). Everyone else holds a [`RoomHandle`] and sends it
//! messages. The registry maps room ids to a once-initialised slot, so concurrent first joins load
//! the room once; its lock is a `std::sync::Mutex` held only for map operations, never across an
//! `.await`. An actor that unloads (idle, deleted, failed) takes its slot out of the map itself,
//! and callers that raced with it retry and load a fresh actor.
//!
//! # Layout
//! - [`actor`]: the room actor.
//! - [`cluster`]: with several nodes, one actor per room on the node holding its lease, relays
//!   elsewhere.
//! - [`dispatch`]: a client's frames, whatever carries them: join, commands, answers.
//! - [`items`]: what a person may put into a queue, checked.
//! - [`presence`]: viewer counts across nodes.
//! - [`ring`]: recent events for resuming clients.

pub mod actor;
pub mod cluster;
pub mod dispatch;
pub mod items;
pub mod presence;
pub mod ring;

use crate::bus::Subscription;
use crate::bus::backplane::{Backplane, Delivery};
use crate::clock::ServerClock;
use crate::media::MediaResolver;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::users::User;
use crate::store::writer::EventWriter;
use lockstep_core::ids::{ItemId, RoomId, UploadId, UserId};
use lockstep_core::media::Media;
use lockstep_core::names::DisplayName;
use lockstep_core::protocol::SettingsView;
use lockstep_core::queue::UploadMedia;
use lockstep_core::room::{Command, CommandError, MemberView, RoomRules};
use lockstep_core::settings::SettingsPatch;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tungstenite::Utf8Bytes;

/// Messages a room's inbox holds before senders wait.
pub(crate) const INBOX: usize = 1024;

/// What every room actor needs from the server.
#[derive(Clone)]
pub struct RoomEnv {
    pub store: Store,
    /// What the other nodes' rooms must hear (renames, uploads), when there are several.
    pub backplane: Backplane,
    pub clock: ServerClock,
    pub metrics: Metrics,
    pub media: Arc<MediaResolver>,
    pub rules: RoomRules,
    /// Events kept for resuming clients.
    pub ring_size: usize,
    /// Events within this time of a room's last write to its viewers go out together at the
    /// window's end (see `actor`).
    pub fanout_window: Duration,
    /// How long a room with no connection keeps running.
    pub idle: Duration,
    /// How long a ban also bars the banned user's addresses (zero: not at all).
    pub bar_addresses_for: Duration,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Tracks actor tasks, so shutdown can wait for them to save.
    pub tasks: TaskTracker,
    /// With several nodes, the fencing token of this actor's lease: every write of the room
    /// first checks that it is still the room's (see [`cluster`]).
    pub fence: Option<i64>,
    /// Writes room events, many rooms per transaction (group commit).
    pub writer: EventWriter,
}

type Slot = Arc<OnceCell<RoomHandle>>;

/// The registry of live rooms. Cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Registry>,
}

struct Registry {
    slots: Mutex<HashMap<RoomId, Slot>>,
    /// Viewers of each room on the other nodes (several nodes only; see [`presence`]).
    remote_viewers: Mutex<HashMap<RoomId, usize>>,
    /// This node's part in a cluster (several nodes only; see [`cluster`]).
    cluster: Option<cluster::Cluster>,
    /// The nodes seen alive at the last presence exchange, and when (several nodes only).
    live_nodes: Mutex<(
        std::collections::HashSet<uuid::Uuid>,
        Option<std::time::Instant>,
    )>,
    env: RoomEnv,
}

/// Why a room could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("no such room")]
    NotFound,
    #[error("the room is restarting; try again")]
    Gone,
    #[error("loading the room failed: {0}")]
    Store(#[from] sqlx::Error),
}

impl Rooms {
    pub fn new(env: RoomEnv) -> Self {
        Rooms {
            inner: Arc::new(Registry {
                slots: Mutex::new(HashMap::new()),
                remote_viewers: Mutex::new(HashMap::new()),
                cluster: cluster::Cluster::new(&env.backplane),
                live_nodes: Mutex::new((std::collections::HashSet::new(), None)),
                env,
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Slot>> {
        // A panic while holding this lock leaves the map itself consistent (every operation on
        // it is a single insert or remove), so a poisoned lock is safe to keep using.
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live room, loading it from the store if needed.
    pub async fn get(&self, id: RoomId) -> Result<RoomHandle, RoomError> {
        for _ in 0..5 {
            let slot = self.slots().entry(id).or_default().clone();
            let loaded = slot.get_or_try_init(|| self.open_shared(id)).await;
            match loaded {
                Ok(handle) if !handle.tx.is_closed() => return Ok(handle.clone()),
                // An actor that is stopping: drop its slot and load afresh.
                Ok(_) => self.forget_slot(id, &slot),
                Err(err) => {
                    self.forget_slot(id, &slot);
                    return Err(err);
                }
            }
        }
        Err(RoomError::Gone)
    }

    /// The event writer the rooms write through (the server stops it before closing the store).
    pub fn writer(&self) -> &EventWriter {
        &self.inner.env.writer
    }

    /// The room if it is live; never loads.
    pub fn loaded(&self, id: RoomId) -> Option<RoomHandle> {
        self.slots()
            .get(&id)
            .and_then(|slot| slot.get().cloned())
            .filter(|h| !h.tx.is_closed())
    }

    /// Every live room.
    pub fn all_loaded(&self) -> Vec<RoomHandle> {
        self.slots()
            .values()
            .filter_map(|slot| slot.get().cloned())
            .collect()
    }

    /// Every room that has viewers, on this node or (with several nodes) on others, with how
    /// many.
    pub fn with_viewers(&self) -> Vec<(RoomId, usize)> {
        let mut all: HashMap<RoomId, usize> = self.remote_viewers().clone();
        for (id, n) in self.local_viewers() {
            *all.entry(id).or_default() += n;
        }
        all.into_iter().filter(|(_, n)| *n > 0).collect()
    }

    /// Viewers present in the room right now, on every node.
    pub fn viewers(&self, id: RoomId) -> usize {
        let here = self.loaded(id).map_or(0, |h| h.viewers());
        here + self.remote_viewers().get(&id).copied().unwrap_or(0)
    }

    /// This node's rooms that have viewers, with how many.
    fn local_viewers(&self) -> Vec<(RoomId, usize)> {
        self.slots()
            .iter()
            .filter_map(|(id, slot)| slot.get().map(|h| (*id, h.viewers())))
            .filter(|(_, viewers)| *viewers > 0)
            .collect()
    }

    fn remote_viewers(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, usize>> {
        // Replaced whole, never left half-written: a poisoned lock is safe to keep using.
        self.inner
            .remote_viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_remote_viewers(&self, counts: HashMap<RoomId, usize>) {
        *self.remote_viewers() = counts;
    }

    fn set_live_nodes(&self, nodes: std::collections::HashSet<uuid::Uuid>) {
        *self
            .inner
            .live_nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (nodes, Some(std::time::Instant::now()));
    }

    /// Whether `node` was alive at the last presence exchange (`None`: no exchange yet, or the
    /// last one is too old to say).
    pub(super) fn node_alive(&self, node: uuid::Uuid) -> Option<bool> {
        let guard = self
            .inner
            .live_nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (nodes, at) = &*guard;
        at.filter(|t| t.elapsed() < presence::ENTRY_TTL)
            .map(|_| nodes.contains(&node))
    }

    fn forget_slot(&self, id: RoomId, slot: &Slot) {
        let mut slots = self.slots();
        if slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&id);
        }
    }

    /// Called by an actor that stops: removes its slot unless a newer actor took it over.
    pub(crate) fn forget_actor(&self, id: RoomId, epoch: u64) {
        let mut slots = self.slots();
        let mine = slots
            .get(&id)
            .and_then(|s| s.get())
            .is_some_and(|h| h.epoch == epoch);
        if mine {
            slots.remove(&id);
        }
    }

    /// The live rooms whose queue holds `upload` (all live rooms if the store cannot say).
    async fn loaded_with_upload(&self, upload: UploadId) -> Vec<RoomHandle> {
        match self.inner.env.store.rooms_with_upload(upload).await {
            Ok(ids) => ids.into_iter().filter_map(|id| self.loaded(id)).collect(),
            Err(err) => {
                tracing::warn!(%upload, error = %err, "cannot read the rooms of an upload; telling every room");
                self.all_loaded()
            }
        }
    }

    /// Tells the live rooms that queue an upload, on every node, that it is playable. (A room
    /// that queues it while this runs checks the upload itself once the item is stored.)
    pub async fn upload_ready(&self, media: &UploadMedia) {
        self.apply(RoomNotice::UploadReady {
            media: media.into(),
        })
        .await;
    }

    /// Tells the live rooms that queue an upload, on every node, that it will never play.
    pub async fn upload_gone(&self, upload_id: UploadId) {
        self.apply(RoomNotice::UploadGone { upload_id }).await;
    }

    /// Tells every live room, on every node, that `user` renamed themselves.
    pub async fn rename_everywhere(&self, user: UserId, name: &DisplayName) {
        self.apply(RoomNotice::Renamed {
            user,
            name: name.clone(),
        })
        .await;
    }

    /// Applies a notice to this node's rooms at once, then tells the other nodes.
    async fn apply(&self, notice: RoomNotice) {
        self.apply_here(&notice).await;
        let backplane = &self.inner.env.backplane;
        if !backplane.is_shared() {
            return;
        }
        let envelope = NoticeEnvelope {
            from: backplane.node(),
            notice,
        };
        match serde_json::to_vec(&envelope) {
            Ok(payload) => {
                if let Err(err) = backplane.publish(ROOMS_TOPIC, payload.into()).await {
                    tracing::warn!(error = %err, "cannot tell the other nodes' rooms");
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot encode a room notice"),
        }
    }

    async fn apply_here(&self, notice: &RoomNotice) {
        match notice {
            RoomNotice::UploadReady { media } => {
                let media = UploadMedia::from(media.clone());
                for handle in self.loaded_with_upload(media.upload_id).await {
                    let media = media.clone();
                    let _ = handle.tx.send(Msg::UploadReady { media }).await;
                }
            }
            RoomNotice::UploadGone { upload_id } => {
                let upload_id = *upload_id;
                for handle in self.loaded_with_upload(upload_id).await {
                    let _ = handle.tx.send(Msg::UploadGone { upload_id }).await;
                }
            }
            RoomNotice::Renamed { user, name } => {
                for handle in self.all_loaded() {
                    handle.rename(*user, name.clone()).await;
                }
            }
        }
    }

    /// Applies to this node's rooms what other nodes announce, until shutdown. Subscribed
    /// before it returns, so nothing announced after start-up is missed (but for a lost
    /// connection to Redis: pub/sub keeps nothing).
    pub async fn listen_to_other_nodes(&self) -> anyhow::Result<()> {
        let backplane = self.inner.env.backplane.clone();
        if !backplane.is_shared() {
            return Ok(());
        }
        self.start_presence();
        self.listen_for_replies().await?;
        let mut notices = backplane.subscribe(ROOMS_TOPIC).await?;
        let rooms = self.clone();
        let shutdown = self.inner.env.shutdown.clone();
        self.inner.env.tasks.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    d = notices.recv() => d,
                    () = shutdown.cancelled() => return,
                };
                match delivery {
                    Ok(Delivery::Message(bytes)) => {
                        match serde_json::from_slice::<NoticeEnvelope>(&bytes) {
                            Ok(envelope) if envelope.from != backplane.node() => {
                                rooms.apply_here(&envelope.notice).await;
                            }
                            Ok(_) => {}
                            Err(err) => {
                                tracing::warn!(error = %err, "a room notice we cannot read")
                            }
                        }
                    }
                    Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::warn!("room notices from other nodes may have been lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }
}

/// The backplane topic on which a node tells the other nodes' rooms what changed outside any
/// room: an upload became playable or will never play, a user renamed themselves.
pub const ROOMS_TOPIC: &str = "rooms";

/// What changed outside the rooms that rooms must hear.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RoomNotice {
    UploadReady { media: UploadMediaWire },
    UploadGone { upload_id: UploadId },
    Renamed { user: UserId, name: DisplayName },
}

/// A notice and the node it comes from (a node has applied its own already).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct NoticeEnvelope {
    from: uuid::Uuid,
    notice: RoomNotice,
}

/// [`UploadMedia`] as it crosses nodes (the core type carries no serde: it is not protocol).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct UploadMediaWire {
    upload_id: UploadId,
    title: String,
    duration: Option<f64>,
    poster: Option<String>,
    ready: bool,
}

impl From<&UploadMedia> for UploadMediaWire {
    fn from(m: &UploadMedia) -> Self {
        UploadMediaWire {
            upload_id: m.upload_id,
            title: m.title.clone(),
            duration: m.duration,
            poster: m.poster.clone(),
            ready: m.ready,
        }
    }
}

impl From<UploadMediaWire> for UploadMedia {
    fn from(m: UploadMediaWire) -> Self {
        UploadMedia {
            upload_id: m.upload_id,
            title: m.title,
            duration: m.duration,
            poster: m.poster,
            ready: m.ready,
        }
    }
}

/// Validates and applies a new display name for `user`, everywhere they are.
pub async fn set_name(
    state: &crate::state::AppState,
    user: UserId,
    raw: &str,
) -> Result<DisplayName, crate::error::ApiError> {
    let name = DisplayName::parse(raw)
        .map_err(|e| crate::error::ApiError::invalid("invalid_name", e.to_string()))?;
    state.store.rename_user(user, &name).await?;
    state.rooms.rename_everywhere(user, &name).await;
    Ok(name)
}

/// Where a reconnecting client left off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub epoch: String,
    pub last_seq: u64,
}

/// What a connection gets when it joins.
#[derive(Debug)]
pub struct Joined {
    /// The room's events from this point on (queued until the connection attaches it).
    pub events: Subscription,
    /// Frames to send first: a welcome, or `resumed` and the missed events.
    pub frames: Vec<Utf8Bytes>,
    /// The frames bring the client to this event; events up to it that `events` also carries
    /// are to be skipped (a room on another node may relay some after its answer).
    pub after_seq: u64,
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("you are banned from this room")]
    Banned,
    #[error("the room is restarting; try again")]
    Gone,
    #[error("the room could not save the join")]
    Internal,
}

/// A message to a room actor.
pub(crate) enum Msg {
    Join {
        user: User,
        resume: Option<Resume>,
        /// The store has no recent visit of this user to the room: record one.
        visit: bool,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    /// A page of the member list: `(members, count)`.
    Members {
        offset: usize,
        limit: usize,
        reply: oneshot::Sender<(Vec<MemberView>, usize)>,
    },
    Leave {
        user: UserId,
    },
    Command {
        by: UserId,
        command: Command,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    QueueAdd {
        by: UserId,
        what: NewItem,
        reply: oneshot::Sender<Result<ItemId, CommandError>>,
    },
    UploadReady {
        media: UploadMedia,
    },
    UploadGone {
        upload_id: UploadId,
    },
    Settings {
        by: UserId,
        patch: SettingsPatch,
        /// `Some(None)` clears the password, `Some(Some(hash))` sets it.
        password_hash: Option<Option<String>>,
        reply: oneshot::Sender<Result<SettingsView, CommandError>>,
    },
    Rename {
        user: UserId,
        name: DisplayName,
    },
    Resolved {
        item_id: ItemId,
        resolution: crate::media::Resolution,
    },
    Delete {
        by: UserId,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Everything the room tells its connections from now on (the cluster's mirror).
    Subscribe {
        reply: oneshot::Sender<Subscription>,
    },
}

/// What is being added to a queue.
#[derive(Debug, Clone)]
pub enum NewItem {
    /// A link (YouTube or a direct media URL); looked up in the background.
    Media(Media),
    /// One of the adder's uploads.
    Upload(UploadMedia),
}

/// Counters a room shares with the rest of the server without a message round trip.
#[derive(Debug, Default)]
pub struct RoomStats {
    viewers: AtomicUsize,
}

/// A way to talk to a live room.
#[derive(Clone)]
pub struct RoomHandle {
    pub id: RoomId,
    epoch: u64,
    tx: mpsc::Sender<Msg>,
    stats: Arc<RoomStats>,
}

impl RoomHandle {
    /// Distinct users present.
    pub fn viewers(&self) -> usize {
        self.stats.viewers.load(Ordering::Relaxed)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Joins `user`; `visit`: the store has no recent visit of theirs to this room.
    pub async fn join(
        &self,
        user: User,
        resume: Option<Resume>,
        visit: bool,
    ) -> Result<Joined, JoinError> {
        self.ask(|reply| Msg::Join {
            user,
            resume,
            visit,
            reply,
        })
        .await
        .unwrap_or(Err(JoinError::Gone))
    }

    /// Everything the room tells its connections from now on.
    pub(crate) async fn subscribe(&self) -> Option<Subscription> {
        self.ask(|reply| Msg::Subscribe { reply }).await
    }

    /// At most `limit` members from position `offset` of the room's list, and the member count.
    pub async fn members(&self, offset: usize, limit: usize) -> Option<(Vec<MemberView>, usize)> {
        self.ask(|reply| Msg::Members {
            offset,
            limit,
            reply,
        })
        .await
    }

    pub async fn leave(&self, user: UserId) {
        let _ = self.tx.send(Msg::Leave { user }).await;
    }

    pub async fn command(&self, by: UserId, command: Command) -> Result<(), CommandError> {
        self.ask(|reply| Msg::Command { by, command, reply })
            .await
            .unwrap_or(Err(CommandError::Unavailable))
    }

    pub async fn queue_add(&self, by: UserId, what: NewItem) -> Result<ItemId, CommandError> {
        self.ask(|reply| Msg::QueueAdd { by, what, reply })
            .await
            .unwrap_or(Err(CommandError::Unavailable))
    }

    pub async fn update_settings(
        &self,
        by: UserId,
        patch: SettingsPatch,
        password_hash: Option<Option<String>>,
    ) -> Result<SettingsView, CommandError> {
        self.ask(|reply| Msg::Settings {
            by,
            patch,
            password_hash,
            reply,
        })
        .await
        .unwrap_or(Err(CommandError::Unavailable))
    }

    pub async fn rename(&self, user: UserId, name: DisplayName) {
        let _ = self.tx.send(Msg::Rename { user, name }).await;
    }

    pub async fn delete(&self, by: UserId) -> Result<(), CommandError> {
        self.ask(|reply| Msg::Delete { by, reply })
            .await
            .unwrap_or(Err(CommandError::Unavailable))
    }
}
