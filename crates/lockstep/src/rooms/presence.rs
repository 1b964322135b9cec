//! Viewer counts across nodes, for the lobby and room cards: every node publishes how many
//! viewers each of its rooms has, as one entry in Redis that expires unless renewed, and reads
//! the other nodes' entries. A node that dies stops renewing, and its viewers drop out of every
//! count within [`ENTRY_TTL`]. On a single node there is nothing to do: counts are local.
//!
//! The same exchange tells which nodes are alive: a room's owner removes the viewers that joined
//! through a node that is no longer (see [`super::cluster`]).
//!
//! An entry per node rather than a counter per room: a counter would be left wrong forever by a
//! node that dies between an increment and its decrement.

use super::Rooms;
use lockstep_core::ids::RoomId;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::time::Duration;

/// How often a node publishes its counts and reads the others'.
pub const EVERY: Duration = Duration::from_secs(2);
/// How long an entry lives without being renewed.
pub const ENTRY_TTL: Duration = Duration::from_secs(10);
/// The sorted set of nodes (by when they last published).
const NODES_KEY: &str = "lockstep:nodes";

fn entry_key(node: uuid::Uuid) -> String {
    format!("lockstep:presence:{node}")
}

/// What a node learns from the others at each exchange.
pub(super) struct Others {
    /// Viewers of each room on the other live nodes.
    pub viewers: HashMap<RoomId, usize>,
    /// The live nodes (this one included).
    pub nodes: std::collections::HashSet<uuid::Uuid>,
}

/// Publishes this node's counts, then returns the sum of the other live nodes' counts.
pub(super) async fn exchange(
    redis: &mut ConnectionManager,
    node: uuid::Uuid,
    mine: &[(RoomId, usize)],
    now_ms: i64,
) -> redis::RedisResult<Others> {
    let entry: HashMap<String, usize> = mine.iter().map(|(r, n)| (r.to_string(), *n)).collect();
    let entry = serde_json::to_string(&entry).unwrap_or_else(|_| "{}".to_owned());
    let ttl = ENTRY_TTL.as_millis() as i64;
    let _: () = redis::pipe()
        .set_ex(entry_key(node), entry, ENTRY_TTL.as_secs())
        .ignore()
        .zadd(NODES_KEY, node.to_string(), now_ms)
        .ignore()
        .zrembyscore(NODES_KEY, "-inf", now_ms - ttl)
        .ignore()
        .query_async(redis)
        .await?;
    let nodes: Vec<String> = redis.zrangebyscore(NODES_KEY, now_ms - ttl, "+inf").await?;
    let live = nodes.iter().filter_map(|n| n.parse().ok()).collect();
    let others: Vec<String> = nodes
        .into_iter()
        .filter(|n| *n != node.to_string())
        .map(|n| format!("lockstep:presence:{n}"))
        .collect();
    let mut counts = HashMap::new();
    if others.is_empty() {
        return Ok(Others {
            viewers: counts,
            nodes: live,
        });
    }
    let entries: Vec<Option<String>> = redis.mget(&others).await?;
    for entry in entries.into_iter().flatten() {
        let Ok(entry) = serde_json::from_str::<HashMap<String, usize>>(&entry) else {
            continue;
        };
        for (room, n) in entry {
            if let Ok(room) = room.parse::<RoomId>() {
                *counts.entry(room).or_default() += n;
            }
        }
    }
    Ok(Others {
        viewers: counts,
        nodes: live,
    })
}

impl Rooms {
    /// With several nodes: keeps this node's viewer counts in Redis and the other nodes' here,
    /// until shutdown.
    pub(super) fn start_presence(&self) {
        let env = &self.inner.env;
        let Some(mut redis) = env.backplane.redis_connection() else {
            return;
        };
        let rooms = self.clone();
        let node = env.backplane.node();
        let shutdown = env.shutdown.clone();
        let clock = env.clock;
        env.tasks.spawn(async move {
            let mut every = tokio::time::interval(EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                let mine = rooms.local_viewers();
                match exchange(&mut redis, node, &mine, clock.now().millis()).await {
                    Ok(others) => {
                        rooms.set_remote_viewers(others.viewers);
                        rooms.set_live_nodes(others.nodes);
                    }
                    // Keep the last counts: they expire with Redis' entries anyway.
                    Err(err) => tracing::warn!(error = %err, "cannot exchange viewer counts"),
                }
            }
            // Leaving: this node's viewers are no longer anywhere.
            let _: redis::RedisResult<()> = redis::pipe()
                .del(entry_key(node))
                .ignore()
                .zrem(NODES_KEY, node.to_string())
                .ignore()
                .query_async(&mut redis)
                .await;
        });
    }
}
