//! One writer per room across nodes (with `--redis-url`).
//!
//! A room's actor runs on the node that holds the room's lease in Redis: a key naming the node,
//! with a short time to live that the owner renews every second. Any other node that needs the
//! room runs a *relay* in its place, behind the same [`RoomHandle`], so connections and HTTP
//! handlers cannot tell the difference:
//! - the relay forwards what its viewers ask (join, commands, queue additions, settings...) to
//!   the owner on the room's `requests` topic, and the owner's *door* answers on the asking
//!   node's `replies` topic;
//! - the owner's *mirror* publishes everything the actor tells its connections on the room's
//!   `events` topic, and each relay hands it to its own viewers. A node subscribes only to the
//!   rooms its viewers are in.
//!
//! When the owner dies its lease lapses within [`LEASE_TTL`]. Relays check the owner every
//! second; when it is gone (or a message may have been lost) they tell their viewers to
//! reconnect, and the first node asked for the room again takes the lease and loads it from
//! the store, where everything acknowledged is; the room continues where the wall clock says.
//!
//! Each lease comes with a fencing token (a counter in Redis); the owner records it in the
//! room's row when it takes the room, and every write of an event checks, in its own
//! transaction, that the row still has it, so an owner frozen past its lease stops at its next
//! write instead of overwriting its successor's work.
//!
//! The owner counts the viewers each other node joined; when a node stops appearing in the
//! presence exchange (it died), its viewers leave the room.
//!
//! Resuming across owners: the owner appends every event to the room's capped history stream in
//! Redis and publishes it to the relays in one transaction, before its own connections see it;
//! the room's epoch lives in Redis too. A node that takes the room continues the numbering from
//! the history and fills its resume ring from it, so a viewer whose node died resumes on any
//! node with exactly the events it missed. Only a Redis that lost its data (a restart) makes
//! viewers start again from a fresh welcome.

use super::{JoinError, Joined, Msg, NewItem, Resume, RoomError, RoomHandle, RoomStats, Rooms};
use crate::bus::backplane::{Backplane, Delivery};
use crate::bus::{Outbound, Recv, RoomBus};
use crate::store::users::User;
use lockstep_core::ids::{ItemId, RoomId, UploadId, UserId};
use lockstep_core::media::Media;
use lockstep_core::names::DisplayName;
use lockstep_core::protocol::SettingsView;
use lockstep_core::queue::UploadMedia;
use lockstep_core::room::{Command, CommandError, MemberView};
use lockstep_core::settings::SettingsPatch;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a room's lease lives without renewal: how long a room whose node died stays
/// unavailable.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often the owner renews its leases and relays check their owner.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A ticker of [`CHECK_EVERY`] that does not catch up on ticks it missed.
fn every_check() -> tokio::time::Interval {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check
}

/// How long a relay waits for the owner's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a room's epoch, history and fencing counter stay in Redis after its last event:
/// Redis holds only what live rooms need, not every room ever loaded. (After that a room's
/// viewers get a fresh welcome, and its fencing counter moves past the stored token again.)
const KEPT_IN_REDIS_SECS: u64 = 24 * 3600;
/// How long a relay with no viewers of its node stays.
const RELAY_IDLE: Duration = Duration::from_secs(30);

fn lease_key(room: RoomId) -> String {
    format!("lockstep:room:{room}:owner")
}
fn fence_key(room: RoomId) -> String {
    format!("lockstep:room:{room}:fence")
}
fn epoch_key(room: RoomId) -> String {
    format!("lockstep:room:{room}:epoch")
}
fn history_key(room: RoomId) -> String {
    format!("lockstep:room:{room}:history")
}
fn events_topic(room: RoomId) -> String {
    format!("room:{room}:events")
}
fn requests_topic(room: RoomId) -> String {
    format!("room:{room}:requests")
}
fn replies_topic(node: uuid::Uuid) -> String {
    format!("node:{node}:replies")
}

/// Takes the lease if nobody holds it; returns the holder (us, if taken) and, when taken, a new
/// fencing token (0 otherwise).
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return {ARGV[1], token}
end
return {redis.call('GET', KEYS[1]) or '', 0}";
/// Extends the lease if we still hold it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0";
/// Gives the lease up if we still hold it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// What a relay asks of a room's owner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Request {
    Join {
        user: UserId,
        name: DisplayName,
        resume: Option<(String, u64)>,
        /// Absent from a node that predates it: record the visit, as it always did.
        #[serde(default = "record_visit")]
        visit: bool,
    },
    Members {
        offset: usize,
        limit: usize,
    },
    Leave {
        user: UserId,
    },
    Command {
        by: UserId,
        command: Command,
    },
    QueueAdd {
        by: UserId,
        what: NewItemWire,
    },
    Settings {
        by: UserId,
        patch: SettingsPatch,
        password_hash: Option<Option<String>>,
    },
    Delete {
        by: UserId,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct RequestEnvelope {
    from: uuid::Uuid,
    req: u64,
    request: Request,
}

/// The owner's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Reply {
    Joined {
        frames: Vec<String>,
        after_seq: u64,
    },
    Banned,
    Done {
        result: Result<(), CommandError>,
    },
    Added {
        result: Result<ItemId, CommandError>,
    },
    Settings {
        result: Result<SettingsView, CommandError>,
    },
    Members {
        members: Vec<MemberView>,
        count: usize,
    },
    Unavailable,
}

fn record_visit() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize)]
struct ReplyEnvelope {
    req: u64,
    reply: Reply,
}

/// What the owner's connections are told, as it crosses to the relays.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireOut {
    Event {
        seq: u64,
        frame: String,
    },
    Removed {
        user_id: UserId,
        banned: bool,
    },
    Closed,
    Reconnect,
    /// The owner's mirror fell behind: some events were not relayed.
    Gap,
}

/// [`NewItem`] as it crosses nodes (the relay's node checked it, as for its own room).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum NewItemWire {
    Media {
        media: Media,
    },
    Upload {
        upload_id: UploadId,
        title: String,
        duration: Option<f64>,
        poster: Option<String>,
        ready: bool,
    },
}

impl NewItemWire {
    fn of(item: &NewItem) -> Self {
        match item {
            NewItem::Media(media) => NewItemWire::Media {
                media: media.clone(),
            },
            NewItem::Upload(m) => NewItemWire::Upload {
                upload_id: m.upload_id,
                title: m.title.clone(),
                duration: m.duration,
                poster: m.poster.clone(),
                ready: m.ready,
            },
        }
    }

    fn into_item(self) -> NewItem {
        match self {
            NewItemWire::Media { media } => NewItem::Media(media),
            NewItemWire::Upload {
                upload_id,
                title,
                duration,
                poster,
                ready,
            } => NewItem::Upload(UploadMedia {
                upload_id,
                title,
                duration,
                poster,
                ready,
            }),
        }
    }
}

/// Who holds a room's lease.
enum Holder {
    /// This node, with the lease's fencing token.
    Us(i64),
    Node(String),
}

/// The node's part in the cluster.
pub(super) struct Cluster {
    redis: ConnectionManager,
    backplane: Backplane,
    next_req: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

impl Cluster {
    pub(super) fn new(backplane: &Backplane) -> Option<Cluster> {
        Some(Cluster {
            redis: backplane.redis_connection()?,
            backplane: backplane.clone(),
            next_req: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn node(&self) -> String {
        self.backplane.node().to_string()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        // Single inserts and removals only: a poisoned map is consistent.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn acquire(&self, room: RoomId) -> redis::RedisResult<Option<Holder>> {
        let (holder, token): (String, i64) = redis::Script::new(ACQUIRE)
            .key(lease_key(room))
            .key(fence_key(room))
            .arg(self.node())
            .arg(LEASE_TTL.as_millis() as u64)
            .arg(KEPT_IN_REDIS_SECS)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(if holder.is_empty() {
            None
        } else if holder == self.node() && token > 0 {
            Some(Holder::Us(token))
        } else if holder == self.node() {
            // Ours already (a second look while loading): no new token.
            None
        } else {
            Some(Holder::Node(holder))
        })
    }

    async fn renew(&self, room: RoomId) -> redis::RedisResult<bool> {
        let renewed: i64 = redis::Script::new(RENEW)
            .key(lease_key(room))
            .arg(self.node())
            .arg(LEASE_TTL.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(renewed == 1)
    }

    async fn release(&self, room: RoomId) {
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(lease_key(room))
            .arg(self.node())
            .invoke_async(&mut self.redis.clone())
            .await;
        if let Err(err) = released {
            tracing::warn!(%room, error = %err, "cannot release a room's lease");
        }
    }

    /// The room's epoch and its last events (oldest first, at most `keep`), for an owner that
    /// takes the room: numbering continues where the last owner left it. A room new to this
    /// Redis (or a Redis that restarted) gets a new epoch and no history.
    pub(super) async fn history(
        &self,
        room: RoomId,
        keep: usize,
    ) -> redis::RedisResult<(u64, Vec<(u64, String)>)> {
        let mut redis = self.redis.clone();
        let fresh: u64 = rand::random::<u64>() >> 1;
        let _: bool = redis::cmd("SET")
            .arg(epoch_key(room))
            .arg(fresh)
            .arg("NX")
            .arg("EX")
            .arg(KEPT_IN_REDIS_SECS)
            .query_async::<Option<String>>(&mut redis)
            .await
            .map(|r| r.is_some())?;
        let epoch: u64 = redis::cmd("GET")
            .arg(epoch_key(room))
            .query_async(&mut redis)
            .await?;
        let entries: redis::Value = redis::cmd("XREVRANGE")
            .arg(history_key(room))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(keep)
            .query_async(&mut redis)
            .await?;
        let mut events = Vec::new();
        if let redis::Value::Array(entries) = entries {
            for entry in entries {
                let redis::Value::Array(parts) = entry else {
                    continue;
                };
                let Some(redis::Value::Array(fields)) = parts.get(1) else {
                    continue;
                };
                let mut seq = None;
                let mut frame = None;
                for pair in fields.chunks(2) {
                    if let [redis::Value::BulkString(k), redis::Value::BulkString(v)] = pair {
                        match k.as_slice() {
                            b"seq" => {
                                seq = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok())
                            }
                            b"frame" => frame = String::from_utf8(v.clone()).ok(),
                            _ => {}
                        }
                    }
                }
                if let (Some(seq), Some(frame)) = (seq, frame) {
                    events.push((seq, frame));
                }
            }
        }
        events.reverse();
        Ok((epoch, events))
    }

    /// Appends an event to the room's history (capped at `keep`) and sends it to the relays, in
    /// one transaction: a viewer that resumes on any node finds in the history everything the
    /// relays were sent.
    pub(super) async fn record(
        &self,
        room: RoomId,
        seq: u64,
        frame: &str,
        keep: usize,
    ) -> redis::RedisResult<()> {
        let wire = serde_json::to_string(&WireOut::Event {
            seq,
            frame: frame.to_owned(),
        })
        .unwrap_or_default();
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(history_key(room))
            .arg("MAXLEN")
            .arg("~")
            .arg(keep)
            .arg("*")
            .arg("seq")
            .arg(seq)
            .arg("frame")
            .arg(frame)
            .ignore()
            .cmd("PUBLISH")
            .arg(format!("lockstep:{}", events_topic(room)))
            .arg(wire)
            .ignore()
            .expire(history_key(room), KEPT_IN_REDIS_SECS as i64)
            .ignore()
            .expire(epoch_key(room), KEPT_IN_REDIS_SECS as i64)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    async fn holder(&self, room: RoomId) -> redis::RedisResult<Option<String>> {
        redis::cmd("GET")
            .arg(lease_key(room))
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Sends a request to whoever owns `room` (only the owner listens on its requests topic);
    /// the answer, if one is awaited, comes on the returned channel, under the returned number
    /// (see [`Cluster::forget`]).
    async fn send(
        &self,
        room: RoomId,
        request: Request,
        awaited: bool,
    ) -> Option<(u64, oneshot::Receiver<Reply>)> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let answer = awaited.then(|| {
            let (tx, rx) = oneshot::channel();
            self.pending().insert(req, tx);
            rx
        });
        let envelope = RequestEnvelope {
            from: self.backplane.node(),
            req,
            request,
        };
        let sent = match serde_json::to_vec(&envelope) {
            Ok(payload) => self
                .backplane
                .publish(&requests_topic(room), payload.into())
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            self.pending().remove(&req);
            return None;
        }
        answer.map(|rx| (req, rx))
    }

    /// Stops waiting for the answer to request `req` (it did not come in time): an owner that
    /// died never answers, and its waiters must not stay in the map.
    fn forget(&self, req: u64) {
        self.pending().remove(&req);
    }

    /// Hands an answer from an owner to whoever waits for it.
    fn answered(&self, envelope: ReplyEnvelope) {
        if let Some(waiting) = self.pending().remove(&envelope.req) {
            let _ = waiting.send(envelope.reply);
        }
    }
}

impl Rooms {
    /// Starts listening for the answers of other nodes' rooms (several nodes only).
    pub(super) async fn listen_for_replies(&self) -> anyhow::Result<()> {
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return Ok(());
        };
        let mut replies = cluster
            .backplane
            .subscribe(&replies_topic(cluster.backplane.node()))
            .await?;
        let rooms = self.clone();
        let shutdown = self.inner.env.shutdown.clone();
        self.inner.env.tasks.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    d = replies.recv() => d,
                    () = shutdown.cancelled() => return,
                };
                let Some(cluster) = rooms.inner.cluster.as_ref() else {
                    return;
                };
                match delivery {
                    Ok(Delivery::Message(bytes)) => {
                        if let Ok(envelope) = serde_json::from_slice::<ReplyEnvelope>(&bytes) {
                            cluster.answered(envelope);
                        }
                    }
                    // A lost answer times out at the relay.
                    Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }

    /// With several nodes: the room's actor if this node takes (or holds) its lease, else a
    /// relay to the node that holds it.
    pub(super) async fn open_shared(&self, id: RoomId) -> Result<RoomHandle, RoomError> {
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return super::actor::load(self.clone(), self.inner.env.clone(), id).await;
        };
        // A relay for a room that does not exist would wait for an owner that never comes.
        if self.inner.env.store.room(id).await?.is_none() {
            return Err(RoomError::NotFound);
        }
        let holder = cluster.acquire(id).await.map_err(|e| {
            tracing::warn!(room = %id, error = %e, "cannot reach Redis for a room's lease");
            RoomError::Gone
        })?;
        match holder {
            Some(Holder::Us(token)) => {
                // Writes of a previous holder (frozen past its lease) are refused from now on.
                let token = match self.take_fence(cluster, id, token).await {
                    Some(token) => token,
                    None => {
                        cluster.release(id).await;
                        return Err(RoomError::Gone);
                    }
                };
                // The actor stops when this node loses the lease.
                let mut env = self.inner.env.clone();
                let lost = env.shutdown.child_token();
                env.shutdown = lost.clone();
                env.fence = Some(token);
                let handle = match super::actor::load(self.clone(), env, id).await {
                    Ok(handle) => handle,
                    Err(err) => {
                        cluster.release(id).await;
                        return Err(err);
                    }
                };
                self.start_owner(handle.clone(), lost).await?;
                Ok(handle)
            }
            Some(Holder::Node(owner)) => Ok(self.start_relay(id, owner).await?),
            // The lease lapsed between our two looks: the caller tries again.
            None => Err(RoomError::Gone),
        }
    }

    /// Records this node's fencing token in the room's row. A Redis that lost its data counts
    /// tokens from 1 again, below what the row holds: then the counter moves past the row's
    /// token (we hold the lease, so nobody else takes one meanwhile) and that one is used.
    async fn take_fence(&self, cluster: &Cluster, id: RoomId, token: i64) -> Option<i64> {
        let store = &self.inner.env.store;
        if store.take_room_fence(id, token).await.ok()? {
            return Some(token);
        }
        let recorded = store.room_fence(id).await.ok()??;
        let next = recorded + 1;
        let _: () = redis::cmd("SET")
            .arg(fence_key(id))
            .arg(next)
            .query_async(&mut cluster.redis.clone())
            .await
            .ok()?;
        tracing::info!(room = %id, token = next, "fencing tokens start again above the room's last one");
        store.take_room_fence(id, next).await.ok()?.then_some(next)
    }

    /// The owner's side: renews the lease, answers the relays, mirrors events to them.
    async fn start_owner(
        &self,
        handle: RoomHandle,
        lost: CancellationToken,
    ) -> Result<(), RoomError> {
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return Ok(());
        };
        let id = handle.id;
        let unavailable = |e: crate::bus::backplane::PublishError| {
            tracing::warn!(room = %id, error = %e, "cannot subscribe to a room's requests");
            RoomError::Gone
        };
        let mut requests = cluster
            .backplane
            .subscribe(&requests_topic(id))
            .await
            .map_err(unavailable)?;
        let Some(mut outbound) = handle.subscribe().await else {
            return Err(RoomError::Gone);
        };
        let tasks = &self.inner.env.tasks;
        // The mirror: what the actor tells its connections besides events (removals, the room
        // closing or restarting), to the relays.
        let backplane = cluster.backplane.clone();
        tasks.spawn(async move {
            loop {
                let wire = match outbound.recv().await {
                    // Recorded and sent by the actor itself, before its own connections see it.
                    Ok(Outbound::Event { .. }) => continue,
                    Ok(Outbound::Removed { user_id, banned }) => {
                        WireOut::Removed { user_id, banned }
                    }
                    Ok(Outbound::Closed) => WireOut::Closed,
                    Ok(Outbound::Reconnect) => WireOut::Reconnect,
                    Err(Recv::Lagged(_)) => WireOut::Gap,
                    Err(Recv::Closed) => return,
                };
                if let Ok(payload) = serde_json::to_vec(&wire)
                    && let Err(err) = backplane.publish(&events_topic(id), payload.into()).await
                {
                    tracing::warn!(room = %id, error = %err, "cannot relay a room event");
                }
            }
        });
        // The lease keeper, a task of its own: the door below answers one relay request at a
        // time and each answer waits for the actor (a join, a command's commit), so a queue of
        // relayed joins could hold a renewal past the lease's life. Measured: in
        // `scripts/bench-scale` (100,000 viewers, a room's viewers spread over 6 nodes) nodes
        // lost leases while the door renewed them, and stopped those rooms.
        {
            let rooms = self.clone();
            let handle = handle.clone();
            let lost = lost.clone();
            tasks.spawn(async move {
                let Some(cluster) = rooms.inner.cluster.as_ref() else {
                    return;
                };
                let mut check = every_check();
                loop {
                    check.tick().await;
                    if handle.tx.is_closed() {
                        break;
                    }
                    match cluster.renew(id).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(room = %id, "lost the room's lease; stopping it here");
                            lost.cancel();
                            break;
                        }
                        // Redis away: keep running; if it stays away past the lease another
                        // node may take the room, and the renewal then fails.
                        Err(err) => {
                            tracing::warn!(room = %id, error = %err, "cannot renew a room's lease");
                        }
                    }
                }
                cluster.release(id).await;
            });
        }
        // The door: answers the relays' requests, and lets go of the viewers of dead nodes. It
        // stops at once when the lease is lost (a room started again here meanwhile subscribes
        // to the same topic, and keeps it: unsubscribing lets go of this door's receiver only).
        let rooms = self.clone();
        tasks.spawn(async move {
            let Some(cluster) = rooms.inner.cluster.as_ref() else {
                return;
            };
            let mut check = every_check();
            let mut remote = RemoteViewers::default();
            loop {
                tokio::select! {
                    () = lost.cancelled() => break,
                    _ = check.tick() => {
                        if handle.tx.is_closed() {
                            break;
                        }
                        for user in remote.of_dead_nodes(&rooms) {
                            handle.leave(user).await;
                        }
                    }
                    delivery = requests.recv() => match delivery {
                        Ok(Delivery::Message(bytes)) => {
                            match serde_json::from_slice::<RequestEnvelope>(&bytes) {
                                Ok(envelope) => {
                                    answer(cluster, &handle, &mut remote, envelope).await;
                                }
                                Err(err) => {
                                    if let Some((from, envelope)) = unreadable(&bytes) {
                                        tracing::warn!(room = %id, error = %err, "a relayed request this node cannot read (a newer node's?): answered as unavailable");
                                        reply_to(cluster, from, &envelope).await;
                                    }
                                }
                            }
                        }
                        Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
            cluster
                .backplane
                .unsubscribe(&requests_topic(id), requests)
                .await;
        });
        Ok(())
    }

    /// A relay to the room's owner on another node, behind a [`RoomHandle`].
    async fn start_relay(&self, id: RoomId, owner: String) -> Result<RoomHandle, RoomError> {
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return Err(RoomError::Gone);
        };
        let events = cluster
            .backplane
            .subscribe(&events_topic(id))
            .await
            .map_err(|e| {
                tracing::warn!(room = %id, error = %e, "cannot subscribe to a room's events");
                RoomError::Gone
            })?;
        let (tx, inbox) = mpsc::channel(super::INBOX);
        let epoch: u64 = rand::random();
        let handle = RoomHandle {
            id,
            epoch,
            tx,
            stats: Arc::new(RoomStats::default()),
        };
        let relay = Relay {
            id,
            epoch,
            owner,
            rooms: self.clone(),
            bus: RoomBus::new(),
            inbox,
            events,
            connections: 0,
            last_seq: None,
        };
        self.inner.env.tasks.spawn(relay.run());
        tracing::debug!(room = %id, "relaying the room to its owner");
        Ok(handle)
    }
}

/// The viewers each other node has joined to a room this node owns: when a node dies, its
/// viewers never leave by themselves.
#[derive(Default)]
struct RemoteViewers {
    by_node: HashMap<uuid::Uuid, (HashMap<UserId, usize>, std::time::Instant)>,
}

impl RemoteViewers {
    fn joined(&mut self, node: uuid::Uuid, user: UserId) {
        let (users, _) = self
            .by_node
            .entry(node)
            .or_insert_with(|| (HashMap::new(), std::time::Instant::now()));
        *users.entry(user).or_default() += 1;
    }

    fn left(&mut self, node: uuid::Uuid, user: UserId) {
        if let Some((users, _)) = self.by_node.get_mut(&node)
            && let Some(n) = users.get_mut(&user)
        {
            *n -= 1;
            if *n == 0 {
                users.remove(&user);
            }
        }
    }

    /// Takes out the connections of nodes that are no longer alive (a node is given the
    /// presence entry's lifetime after its first join to show up).
    fn of_dead_nodes(&mut self, rooms: &Rooms) -> Vec<UserId> {
        let dead: Vec<uuid::Uuid> = self
            .by_node
            .iter()
            .filter(|(node, (_, since))| {
                since.elapsed() > super::presence::ENTRY_TTL
                    && rooms.node_alive(**node) == Some(false)
            })
            .map(|(node, _)| *node)
            .collect();
        let mut users = Vec::new();
        for node in dead {
            if let Some((joined, _)) = self.by_node.remove(&node) {
                tracing::warn!(%node, viewers = joined.len(), "a node died; its viewers leave the room");
                for (user, n) in joined {
                    users.extend(std::iter::repeat_n(user, n));
                }
            }
        }
        users
    }
}

/// Answers one relayed request with the local actor, on the asking node's replies topic.
async fn answer(
    cluster: &Cluster,
    handle: &RoomHandle,
    remote: &mut RemoteViewers,
    envelope: RequestEnvelope,
) {
    let from = envelope.from;
    let reply = match envelope.request {
        Request::Join {
            user,
            name,
            resume,
            visit,
        } => {
            let resume = resume.map(|(epoch, last_seq)| Resume { epoch, last_seq });
            match handle.join(User { id: user, name }, resume, visit).await {
                Ok(joined) => {
                    remote.joined(from, user);
                    joined_reply(joined)
                }
                Err(JoinError::Banned) => Reply::Banned,
                Err(JoinError::Gone | JoinError::Internal) => Reply::Unavailable,
            }
        }
        Request::Members { offset, limit } => match handle.members(offset, limit).await {
            Some((members, count)) => Reply::Members { members, count },
            None => Reply::Unavailable,
        },
        Request::Leave { user } => {
            remote.left(from, user);
            handle.leave(user).await;
            return;
        }
        Request::Command { by, command } => Reply::Done {
            result: handle.command(by, command).await,
        },
        Request::QueueAdd { by, what } => Reply::Added {
            result: handle.queue_add(by, what.into_item()).await,
        },
        Request::Settings {
            by,
            patch,
            password_hash,
        } => Reply::Settings {
            result: handle.update_settings(by, patch, password_hash).await,
        },
        Request::Delete { by } => Reply::Done {
            result: handle.delete(by).await,
        },
    };
    let envelope = ReplyEnvelope {
        req: envelope.req,
        reply,
    };
    reply_to(cluster, from, &envelope).await;
}

/// Publishes an answer on the asking node's replies topic.
async fn reply_to(cluster: &Cluster, from: uuid::Uuid, envelope: &ReplyEnvelope) {
    if let Ok(payload) = serde_json::to_vec(envelope)
        && let Err(err) = cluster
            .backplane
            .publish(&replies_topic(from), payload.into())
            .await
    {
        tracing::warn!(error = %err, "cannot answer a relayed request");
    }
}

/// The answer to a request this node cannot read but can tell who asked: one from a newer
/// node during a rolling upgrade (a command or request kind added since). It is told at once
/// that the room cannot do that here (`room_unavailable`), instead of waiting out its 5 s and
/// sending its viewer to reconnect.
fn unreadable(bytes: &[u8]) -> Option<(uuid::Uuid, ReplyEnvelope)> {
    #[derive(Deserialize)]
    struct Asker {
        from: uuid::Uuid,
        req: u64,
    }
    let asker: Asker = serde_json::from_slice(bytes).ok()?;
    Some((
        asker.from,
        ReplyEnvelope {
            req: asker.req,
            reply: Reply::Unavailable,
        },
    ))
}

fn joined_reply(joined: Joined) -> Reply {
    Reply::Joined {
        frames: joined
            .frames
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect(),
        after_seq: joined.after_seq,
    }
}

/// What a relay does with the owner's answer (`None`: none came in time).
type Respond = Box<dyn FnOnce(Option<Reply>) + Send>;

/// A room on another node, as this node's connections see it.
struct Relay {
    id: RoomId,
    epoch: u64,
    owner: String,
    rooms: Rooms,
    /// This node's viewers of the room.
    bus: RoomBus,
    inbox: mpsc::Receiver<Msg>,
    events: broadcast::Receiver<Delivery>,
    connections: usize,
    /// The last event relayed: a jump means some were lost on the way.
    last_seq: Option<u64>,
}

impl Relay {
    async fn run(mut self) {
        let mut check = every_check();
        let mut idle_since = Some(tokio::time::Instant::now());
        let shutdown = self.rooms.inner.env.shutdown.clone();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.bus.send(Outbound::Reconnect);
                    break;
                }
                _ = check.tick() => {
                    if idle_since.is_some_and(|t| t.elapsed() >= RELAY_IDLE) {
                        break;
                    }
                    let Some(cluster) = self.rooms.inner.cluster.as_ref() else { break };
                    match cluster.holder(self.id).await {
                        Ok(Some(holder)) if holder == self.owner => {}
                        // The owner is gone or another node took over: start again from a
                        // fresh look (the viewers reconnect and resume).
                        Ok(_) => {
                            tracing::info!(room = %self.id, "the room's owner changed; reconnecting its viewers here");
                            self.bus.send(Outbound::Reconnect);
                            break;
                        }
                        Err(err) => tracing::warn!(room = %self.id, error = %err, "cannot check a room's owner"),
                    }
                }
                delivery = self.events.recv() => match delivery {
                    Ok(Delivery::Message(bytes)) => {
                        match serde_json::from_slice::<WireOut>(&bytes) {
                            Ok(WireOut::Event { seq, frame }) => {
                                if self.last_seq.is_some_and(|last| seq > last + 1) {
                                    // Lost on the way: the viewers resume from the history.
                                    self.bus.send(Outbound::Reconnect);
                                    break;
                                }
                                self.last_seq = Some(seq);
                                self.bus.send(Outbound::Event {
                                    seq,
                                    frame: frame.into(),
                                    published: std::time::Instant::now(),
                                });
                            }
                            Ok(WireOut::Removed { user_id, banned }) => {
                                self.bus.send(Outbound::Removed { user_id, banned });
                            }
                            Ok(WireOut::Closed) => {
                                self.bus.send(Outbound::Closed);
                                break;
                            }
                            Ok(WireOut::Reconnect | WireOut::Gap) => {
                                self.bus.send(Outbound::Reconnect);
                                break;
                            }
                            Err(err) => tracing::warn!(room = %self.id, error = %err, "a relayed event we cannot read"),
                        }
                    }
                    // Events may have been lost: the viewers reconnect and resume.
                    Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.bus.send(Outbound::Reconnect);
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break };
                    match &msg {
                        Msg::Join { .. } => {
                            self.connections += 1;
                            idle_since = None;
                        }
                        Msg::Leave { .. } => {
                            self.connections = self.connections.saturating_sub(1);
                            if self.connections == 0 {
                                idle_since = Some(tokio::time::Instant::now());
                            }
                        }
                        _ => {}
                    }
                    self.forward(msg).await;
                }
            }
        }
        self.rooms.forget_actor(self.id, self.epoch);
        self.inbox.close();
        if let Some(cluster) = self.rooms.inner.cluster.as_ref() {
            cluster
                .backplane
                .unsubscribe(&events_topic(self.id), self.events)
                .await;
        }
    }

    /// Sends one message on to the owner; the answer is awaited aside, so that events keep
    /// flowing meanwhile (requests leave in the order they came).
    async fn forward(&mut self, msg: Msg) {
        let Some(cluster) = self.rooms.inner.cluster.as_ref() else {
            return;
        };
        let (request, respond): (Request, Respond) = match msg {
            Msg::Join {
                user,
                resume,
                visit,
                reply,
            } => {
                // Subscribed before asking: what happens after the welcome is not missed (what
                // happened before it is skipped by number).
                let events = self.bus.subscribe();
                (
                    Request::Join {
                        user: user.id,
                        name: user.name,
                        resume: resume.map(|r| (r.epoch, r.last_seq)),
                        visit,
                    },
                    Box::new(move |answer| {
                        let _ = reply.send(match answer {
                            Some(Reply::Joined { frames, after_seq }) => Ok(Joined {
                                events,
                                frames: frames.into_iter().map(Into::into).collect(),
                                after_seq,
                            }),
                            Some(Reply::Banned) => Err(JoinError::Banned),
                            _ => Err(JoinError::Gone),
                        });
                    }),
                )
            }
            Msg::Members {
                offset,
                limit,
                reply,
            } => (
                Request::Members { offset, limit },
                Box::new(move |answer| {
                    if let Some(Reply::Members { members, count }) = answer {
                        let _ = reply.send((members, count));
                    }
                }),
            ),
            Msg::Leave { user } => {
                cluster.send(self.id, Request::Leave { user }, false).await;
                return;
            }
            Msg::Command { by, command, reply } => (
                Request::Command { by, command },
                Box::new(move |answer| {
                    let _ = reply.send(match answer {
                        Some(Reply::Done { result }) => result,
                        _ => Err(CommandError::Unavailable),
                    });
                }),
            ),
            Msg::QueueAdd { by, what, reply } => (
                Request::QueueAdd {
                    by,
                    what: NewItemWire::of(&what),
                },
                Box::new(move |answer| {
                    let _ = reply.send(match answer {
                        Some(Reply::Added { result }) => result,
                        _ => Err(CommandError::Unavailable),
                    });
                }),
            ),
            Msg::Settings {
                by,
                patch,
                password_hash,
                reply,
            } => (
                Request::Settings {
                    by,
                    patch,
                    password_hash,
                },
                Box::new(move |answer| {
                    let _ = reply.send(match answer {
                        Some(Reply::Settings { result }) => result,
                        _ => Err(CommandError::Unavailable),
                    });
                }),
            ),
            Msg::Delete { by, reply } => (
                Request::Delete { by },
                Box::new(move |answer| {
                    let _ = reply.send(match answer {
                        Some(Reply::Done { result }) => result,
                        _ => Err(CommandError::Unavailable),
                    });
                }),
            ),
            Msg::Subscribe { reply } => {
                let _ = reply.send(self.bus.subscribe());
                return;
            }
            // Renames and uploads reach the owner's node on the backplane's rooms topic; media
            // lookups run where the actor is.
            Msg::Rename { .. }
            | Msg::UploadReady { .. }
            | Msg::UploadGone { .. }
            | Msg::Resolved { .. } => return,
        };
        let answer = cluster.send(self.id, request, true).await;
        let rooms = self.rooms.clone();
        tokio::spawn(async move {
            let reply = match answer {
                Some((req, rx)) => match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
                    Ok(reply) => reply.ok(),
                    Err(_) => {
                        if let Some(cluster) = rooms.inner.cluster.as_ref() {
                            cluster.forget(req);
                        }
                        None
                    }
                },
                None => None,
            };
            respond(reply);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newer node's command this node does not know is answered as unavailable, to the node
    /// and request that asked; the asking relay turns that into `room_unavailable` at once.
    #[test]
    fn a_request_this_node_cannot_read_is_answered_as_unavailable() {
        let from = uuid::Uuid::now_v7();
        let by = UserId(uuid::Uuid::now_v7());
        let known = serde_json::to_value(RequestEnvelope {
            from,
            req: 7,
            request: Request::Command {
                by,
                command: Command::Play,
            },
        })
        .unwrap();
        let mut newer = known.clone();
        newer["request"]["command"] = serde_json::json!({ "Teleport": { "to": 12.5 } });
        let bytes = serde_json::to_vec(&newer).unwrap();
        assert!(serde_json::from_slice::<RequestEnvelope>(&bytes).is_err());
        let (to, envelope) = unreadable(&bytes).expect("who asked is known");
        assert_eq!((to, envelope.req), (from, 7));
        assert!(matches!(envelope.reply, Reply::Unavailable));
        // What the asking node reads back.
        let read: ReplyEnvelope =
            serde_json::from_slice(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert!(matches!(read.reply, Reply::Unavailable));
        // Not even who asked: nothing to answer.
        assert!(unreadable(b"{\"req\": 1}").is_none());
        assert!(unreadable(b"not json").is_none());
    }
}
