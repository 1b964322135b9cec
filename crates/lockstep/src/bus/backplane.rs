//! Messages every node must see, by topic: in process when there is one node, through Redis
//! pub/sub when there are several (`--redis-url`).
//!
//! A subscriber gets a [`Delivery`]: a message, or [`Delivery::Gap`] when messages may have been
//! lost (the connection to Redis dropped and its topic is subscribed again: Redis pub/sub is at
//! most once, and nothing published while a node is disconnected reaches it). Subscribers therefore treat messages as news that
//! something changed and keep the truth elsewhere (the store), re-reading it after a gap.
//!
//! The Redis side uses one multiplexed RESP3 connection per node through redis-rs's
//! `ConnectionManager`: it reconnects by itself and, with automatic resubscription, subscribes
//! again to every channel after a reconnection (checked here by restarting redis-server).

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// Messages a slow subscriber of a topic may fall behind by (it then sees `Lagged` and
/// re-reads the truth, as after a gap).
const TOPIC_CAPACITY: usize = 1024;
/// Prefix of Lockstep's Redis channels, so that a Redis shared with other software is fine.
const CHANNEL_PREFIX: &str = "lockstep:";

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Message(Bytes),
    /// Messages may have been lost since the last delivery: re-read the truth.
    Gap,
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish to the other nodes: {0}")]
pub struct PublishError(#[from] redis::RedisError);

/// The node's backplane. Cheap to clone.
#[derive(Clone)]
pub struct Backplane {
    inner: Arc<Inner>,
}

struct Inner {
    /// This node, so that it can tell its own messages from the others'.
    node: uuid::Uuid,
    topics: Mutex<HashMap<String, broadcast::Sender<Delivery>>>,
    /// Topics subscribed when the connection to Redis dropped, until they are subscribed again.
    lost: Mutex<HashSet<String>>,
    /// Unset on a single node.
    redis: OnceLock<ConnectionManager>,
}

impl Inner {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Delivery>>> {
        // Only single inserts and lookups happen under this lock: a poisoned map is consistent.
        self.topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes `topic` if no receiver of it is left; true if it did.
    fn forget_if_unused(&self, topic: &str) -> bool {
        let mut topics = self.topics();
        if topics.get(topic).is_some_and(|tx| tx.receiver_count() == 0) {
            topics.remove(topic);
            true
        } else {
            false
        }
    }

    /// Hands a message to the local subscribers of `topic`, if any.
    fn deliver(&self, topic: &str, delivery: Delivery) {
        if let Some(tx) = self.topics().get(topic) {
            let _ = tx.send(delivery);
        }
    }

    fn lost(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Single inserts and removals: a poisoned set is consistent.
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes a push from Redis: a message on one of our channels, or a lost connection.
    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                if let [channel, payload] = push.data.as_slice()
                    && let (Some(channel), Some(payload)) = (bulk(channel), bulk(payload))
                    && let Some(topic) = channel.strip_prefix(CHANNEL_PREFIX.as_bytes())
                    && let Ok(topic) = std::str::from_utf8(topic)
                {
                    self.deliver(topic, Delivery::Message(Bytes::copy_from_slice(payload)));
                }
            }
            PushKind::Disconnection => {
                tracing::warn!("lost the connection to Redis; reconnecting");
                let topics: Vec<String> = self.topics().keys().cloned().collect();
                self.lost().extend(topics);
            }
            // A subscription confirmed: after a reconnection, what was published to its topic
            // while we were away is lost, so tell its subscribers (now, not at the
            // disconnection: what they re-read then could be older than what they missed).
            PushKind::Subscribe => {
                if let Some(channel) = push.data.first().and_then(bulk)
                    && let Some(topic) = channel.strip_prefix(CHANNEL_PREFIX.as_bytes())
                    && let Ok(topic) = std::str::from_utf8(topic)
                    && self.lost().remove(topic)
                {
                    self.deliver(topic, Delivery::Gap);
                }
            }
            _ => {}
        }
    }
}

fn bulk(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        _ => None,
    }
}

impl Backplane {
    /// A single node's backplane: messages go to this process's subscribers only.
    pub fn local() -> Self {
        Backplane {
            inner: Arc::new(Inner {
                node: uuid::Uuid::now_v7(),
                topics: Mutex::new(HashMap::new()),
                lost: Mutex::new(HashSet::new()),
                redis: OnceLock::new(),
            }),
        }
    }

    /// A backplane through the Redis server at `url` (`redis://host:port`; RESP3 is asked for).
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let url = with_resp3(url);
        let client =
            redis::Client::open(url.as_str()).map_err(|e| anyhow::anyhow!("bad Redis URL: {e}"))?;
        let plane = Backplane::local();
        let weak = Arc::downgrade(&plane.inner);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            // Keep trying for as long as Redis is away, at most 2 s apart.
            .set_number_of_retries(usize::MAX)
            .set_max_delay(Duration::from_secs(2))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_push(push);
                }
                Ok::<(), std::convert::Infallible>(())
            });
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {url}: {e}"))?;
        // The push sender holds a weak reference: the connection dies with the backplane.
        let _ = plane.inner.redis.set(manager);
        Ok(plane)
    }

    /// This node's id, unique per process.
    pub fn node(&self) -> uuid::Uuid {
        self.inner.node
    }

    /// The connection to Redis, when there are several nodes (for what is kept there, not
    /// sent: presence).
    pub fn redis_connection(&self) -> Option<ConnectionManager> {
        self.inner.redis.get().cloned()
    }

    /// True when messages cross nodes (Redis).
    pub fn is_shared(&self) -> bool {
        self.inner.redis.get().is_some()
    }

    /// Publishes `payload` on `topic` to every node's subscribers, this node's included.
    pub async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), PublishError> {
        match self.inner.redis.get() {
            None => {
                self.inner.deliver(topic, Delivery::Message(payload));
                Ok(())
            }
            Some(redis) => {
                let mut redis = redis.clone();
                let _: i64 = redis
                    .publish(format!("{CHANNEL_PREFIX}{topic}"), payload.as_ref())
                    .await?;
                Ok(())
            }
        }
    }

    /// Lets go of `rx`, one subscription to `topic`. The last one stops delivering the topic to
    /// this node; until then the others keep theirs (a room that started again on this node
    /// while its last run here was still stopping subscribes to the same topic).
    pub async fn unsubscribe(&self, topic: &str, rx: broadcast::Receiver<Delivery>) {
        drop(rx);
        if !self.inner.forget_if_unused(topic) {
            return;
        }
        let Some(redis) = self.inner.redis.get() else {
            return;
        };
        let mut redis = redis.clone();
        let channel = format!("{CHANNEL_PREFIX}{topic}");
        if let Err(err) = redis.unsubscribe(&channel).await {
            tracing::warn!(%topic, error = %err, "cannot unsubscribe");
        }
        // Subscribed again meanwhile: that SUBSCRIBE may have reached Redis before this
        // UNSUBSCRIBE, which then silenced it. Subscribe once more (it is idempotent) and tell
        // the new subscribers that messages may have been lost, as after a reconnection.
        if self.inner.topics().contains_key(topic) {
            if let Err(err) = redis.subscribe(&channel).await {
                tracing::warn!(%topic, error = %err, "cannot subscribe again");
            }
            self.inner.deliver(topic, Delivery::Gap);
        }
    }

    /// Subscribes to `topic`: everything published on it from now on (on Redis, from the moment
    /// the subscription is confirmed).
    pub async fn subscribe(
        &self,
        topic: &str,
    ) -> Result<broadcast::Receiver<Delivery>, PublishError> {
        let (rx, first) = {
            let mut topics = self.inner.topics();
            match topics.get(topic) {
                Some(tx) => (tx.subscribe(), false),
                None => {
                    let (tx, rx) = broadcast::channel(TOPIC_CAPACITY);
                    topics.insert(topic.to_owned(), tx);
                    (rx, true)
                }
            }
        };
        if first && let Some(redis) = self.inner.redis.get() {
            let mut redis = redis.clone();
            if let Err(err) = redis.subscribe(format!("{CHANNEL_PREFIX}{topic}")).await {
                // Not left in the map: the next subscriber would take it for subscribed.
                drop(rx);
                self.inner.forget_if_unused(topic);
                return Err(err.into());
            }
        }
        Ok(rx)
    }
}

/// Asks for RESP3 (pushes on the same connection) unless the URL already says a protocol.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_backplane_delivers_to_this_process() {
        let plane = Backplane::local();
        let mut rx = plane.subscribe("media").await.unwrap();
        plane
            .publish("media", Bytes::from_static(b"x"))
            .await
            .unwrap();
        plane
            .publish("other", Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            Delivery::Message(Bytes::from_static(b"x"))
        );
        assert!(rx.try_recv().is_err());
    }

    /// Two subscriptions to one topic on one node: letting go of one leaves the other
    /// receiving; letting go of the last removes the topic.
    #[tokio::test]
    async fn unsubscribing_one_subscription_leaves_the_others() {
        let plane = Backplane::local();
        let stopping = plane.subscribe("room").await.unwrap();
        let mut started = plane.subscribe("room").await.unwrap();
        plane.unsubscribe("room", stopping).await;
        plane
            .publish("room", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(
            started.recv().await.unwrap(),
            Delivery::Message(Bytes::from_static(b"x"))
        );
        plane.unsubscribe("room", started).await;
        assert!(plane.inner.topics().is_empty());
    }

    #[test]
    fn resp3_is_asked_for() {
        assert_eq!(with_resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(
            with_resp3("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h?protocol=resp3"),
            "redis://h?protocol=resp3"
        );
    }
}
