//! Group commit: the task that writes every room's events, many rooms per transaction.
//!
//! A room actor hands its events to the writer and waits; it acknowledges and broadcasts them
//! only once the writer says they are committed, so an acknowledged command is on disk. The
//! writer takes whatever requests are waiting when it finishes a commit and writes them all in
//! the next transaction: at low load a request commits on its own at once; under load the
//! commits grow instead of queueing. Measured on the 2-core machine with 1,000 rooms (see
//! bench/RESULTS.md): one commit per event topped out at about 5,300 acknowledged commands/s,
//! with commands queueing for seconds behind SQLite's single writer.
//!
//! A room has at most one request in flight (its actor waits for each), so batching never
//! reorders one room's events. A batch that fails is retried one request per transaction, so a
//! room whose write is refused fails alone. Rooms written under a fencing token (several nodes)
//! have the check in the same transaction, with their rows locked in room id order so that two
//! nodes' writers cannot deadlock.

use super::{Backend, Store};
use crate::metrics::Metrics;
use lockstep_core::ids::RoomId;
use lockstep_core::room::Event;
use lockstep_core::time::ServerTime;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Requests one writer task takes into a transaction at most. Bounds the transaction's length
/// (and so the wait of the requests behind it).
const MAX_BATCH: usize = 512;

/// Requests waiting for a writer, across all rooms; rooms beyond it wait to hand theirs in.
const QUEUE: usize = 4096;

/// Writer tasks. SQLite has one writer at a time, so one task; PostgreSQL commits several
/// transactions at once, and each costs round trips, so several tasks overlap them.
fn writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }
}

/// Why a room's events were not written.
#[derive(Debug, Clone)]
pub enum WriteError {
    /// The room has a newer writer: its row holds a newer fencing token than the one written
    /// under (checked in the same transaction).
    Fenced,
    /// The database refused or could not be reached.
    Store(Arc<sqlx::Error>),
    /// The writer has stopped (the server is going away).
    Stopped,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Fenced => f.write_str("another node holds the room"),
            WriteError::Store(err) => write!(f, "{err}"),
            WriteError::Stopped => f.write_str("the event writer has stopped"),
        }
    }
}

/// What the writer answers: the events handed in, and for each the id of the chat line it
/// stored (if any), or why nothing was written.
pub type Written = (Vec<Event>, Result<Vec<Option<i64>>, WriteError>);

struct Request {
    room: RoomId,
    fence: Option<i64>,
    events: Vec<Event>,
    now: ServerTime,
    reply: oneshot::Sender<Written>,
}

/// A handle to the event writer; cheap to clone. The writer tasks end when every handle is gone.
#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<Request>,
    /// Tells the writer tasks to finish what is queued and let go of their connections.
    stop: tokio_util::sync::CancellationToken,
    /// Fires when the writer's thread is done.
    stopped: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

impl EventWriter {
    /// Starts the writer tasks for `store`, on a thread of their own.
    ///
    /// A commit is a chain of round trips (to sqlx's SQLite thread or to PostgreSQL), and after
    /// each the writer must be polled again. On the server's runtime it waited behind every
    /// ready connection task each time: with 2,000 viewers under load a commit of 360 rooms
    /// took 24 ms, nearly all of it waiting in the run queue, and the writer, not the CPU,
    /// capped the node at about 14,000 commands/s.
    pub fn start(store: Store, metrics: Metrics) -> EventWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let weak = tx.downgrade();
        let stop = tokio_util::sync::CancellationToken::new();
        let (done, stopped) = oneshot::channel();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lockstep-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        // Every write then fails with `Stopped`, and rooms refuse commands.
                        tracing::error!(error = %err, "cannot start the event writer's runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let rx = Arc::new(Mutex::new(rx));
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..writers(store.backend()) {
                        tasks.spawn(run(
                            store.clone(),
                            metrics.clone(),
                            rx.clone(),
                            stopping.clone(),
                        ));
                    }
                    if store.backend() == Backend::Sqlite {
                        tasks.spawn(checkpoints(store, weak, stopping));
                    }
                    while tasks.join_next().await.is_some() {}
                    let _ = done.send(());
                });
            });
        if let Err(err) = thread {
            tracing::error!(error = %err, "cannot start the event writer's thread");
        }
        EventWriter {
            tx,
            stop,
            stopped: Arc::new(Mutex::new(Some(stopped))),
        }
    }

    /// Writes what is already queued, then stops the writer and waits until it has let go of
    /// its database connections (closing the store waits for every connection). Later writes
    /// fail with [`WriteError::Stopped`].
    pub async fn stop(&self) {
        self.stop.cancel();
        let stopped = self.stopped.lock().await.take();
        if let Some(stopped) = stopped {
            let _ = stopped.await;
        }
    }

    /// Writes `events` of `room` (under fencing token `fence`, with several nodes) and waits
    /// until they are committed. Gives the events back with the outcome.
    pub async fn write(
        &self,
        room: RoomId,
        fence: Option<i64>,
        events: Vec<Event>,
        now: ServerTime,
    ) -> Written {
        if events.is_empty() {
            return (events, Ok(Vec::new()));
        }
        let answer = match self.hand_in(room, fence, events, now).await {
            Ok(answer) => answer,
            Err(events) => return (events, Err(WriteError::Stopped)),
        };
        // The writer always answers unless it was dropped mid-batch (the runtime is stopping);
        // the events are lost with the answer then, and so is the process.
        answer
            .await
            .unwrap_or_else(|_| (Vec::new(), Err(WriteError::Stopped)))
    }
}

impl EventWriter {
    /// Hands `events` of `room` to the next commit without waiting for it: for writes little
    /// else orders after (a visit), so that a room that many join at once does not wait for a
    /// commit per join. Lost if the process dies before that commit (a few milliseconds). Gives
    /// the answer, for what must follow the commit (a change of the room's access: a visit
    /// admits); dropping it sends the writer's reply nowhere. None if the writer has stopped.
    pub async fn write_behind(
        &self,
        room: RoomId,
        fence: Option<i64>,
        events: Vec<Event>,
        now: ServerTime,
    ) -> Option<oneshot::Receiver<Written>> {
        if events.is_empty() {
            return None;
        }
        match self.hand_in(room, fence, events, now).await {
            Ok(answer) => Some(answer),
            Err(_) => {
                tracing::warn!(%room, "the event writer has stopped; a visit is not recorded");
                None
            }
        }
    }

    /// Queues a request; gives the answer to wait for, or the events back if the writer stopped.
    async fn hand_in(
        &self,
        room: RoomId,
        fence: Option<i64>,
        events: Vec<Event>,
        now: ServerTime,
    ) -> Result<oneshot::Receiver<Written>, Vec<Event>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            room,
            fence,
            events,
            now,
            reply,
        };
        match self.tx.send(request).await {
            Ok(()) => Ok(answer),
            Err(mpsc::error::SendError(request)) => Err(request.events),
        }
    }
}

/// How often the SQLite WAL is checkpointed. At 20,000 events/s the WAL grows by a few MiB a
/// second; a passive checkpoint runs beside the writer instead of inside one of its commits.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Checkpoints the SQLite WAL every [`CHECKPOINT_EVERY`] while the writer has handles and has
/// not been stopped.
async fn checkpoints(
    store: Store,
    writer: mpsc::WeakSender<Request>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        if writer.upgrade().is_none() {
            return;
        }
        if let Err(err) = store.checkpoint().await {
            tracing::warn!(error = %err, "checkpointing the database failed");
        }
    }
}

/// The connection a writer task keeps between commits (SQLite only). Each SQLite connection has
/// its own page cache, which another connection's commit makes stale: with commits taking any of
/// the pool's connections in turn, every commit read its pages again (`pread` was a sixth of the
/// writer's time). A connection that failed is let go and the next commit takes a fresh one.
struct Held(Option<PoolConnection<Any>>);

impl Held {
    async fn get(&mut self, store: &Store) -> Result<&mut AnyConnection, sqlx::Error> {
        if self.0.is_none() {
            self.0 = Some(store.pool().acquire().await?);
        }
        Ok(self.0.as_deref_mut().expect("just set"))
    }
}

async fn run(
    store: Store,
    metrics: Metrics,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut held = Held(None);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut rx = rx.lock().await;
            // Once stopped, nothing new is taken; what is queued is written, then the writer ends.
            let next = tokio::select! {
                next = rx.recv() => next,
                () = stop.cancelled() => {
                    rx.close();
                    rx.recv().await
                }
            };
            match next {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        commit(&store, &mut held, &metrics, &mut batch).await;
        batch.clear();
    }
}

/// Commits `batch` in one transaction and answers every request; on failure, one transaction
/// per request.
async fn commit(store: &Store, held: &mut Held, metrics: &Metrics, batch: &mut Vec<Request>) {
    // Row locks (fenced rooms on PostgreSQL) in one order on every node.
    batch.sort_unstable_by_key(|r| r.room.0);
    let started = std::time::Instant::now();
    match write_together(store, held, batch).await {
        Ok(outcomes) => {
            metrics.committed(started.elapsed().as_secs_f64(), batch.len());
            for (request, outcome) in batch.drain(..).zip(outcomes) {
                let _ = request.reply.send((request.events, outcome));
            }
        }
        Err(err) if batch.len() == 1 => {
            let request = batch.pop().expect("one request");
            let _ = request
                .reply
                .send((request.events, Err(WriteError::Store(Arc::new(err)))));
        }
        Err(err) => {
            tracing::warn!(error = %err, rooms = batch.len(), "a group commit failed; writing its rooms one by one");
            for request in batch.drain(..) {
                let outcome =
                    match write_together(store, held, std::slice::from_ref(&request)).await {
                        Ok(mut outcomes) => outcomes.pop().expect("one outcome per request"),
                        Err(err) => Err(WriteError::Store(Arc::new(err))),
                    };
                let _ = request.reply.send((request.events, outcome));
            }
        }
    }
}

/// Writes `requests` in one transaction. A fenced request writes nothing and gets
/// [`WriteError::Fenced`]; the others are committed together.
///
/// The two events that dominate a busy room, chat lines and playback changes, are written with
/// one statement per kind for the whole batch; the rest one statement each, in order. Each
/// statement is a round trip to the database (on SQLite, to sqlx's worker thread): per event,
/// that capped the writer at about 10,000 events/s here while the CPU sat half idle.
async fn write_together(
    store: &Store,
    held: &mut Held,
    requests: &[Request],
) -> Result<Vec<Result<Vec<Option<i64>>, WriteError>>, sqlx::Error> {
    let result = write_on(store, held.get(store).await?, requests).await;
    // PostgreSQL keeps its cache in the server, and a connection kept across a restart of the
    // database would fail the first commit after it: each commit takes one from the pool
    // (which checks it first).
    match (&result, store.backend()) {
        (Err(_), _) => {
            if let Some(mut conn) = held.0.take() {
                conn.close_on_drop();
            }
        }
        // Back to the pool.
        (Ok(_), Backend::Postgres) => held.0 = None,
        (Ok(_), Backend::Sqlite) => {}
    }
    result
}

async fn write_on(
    store: &Store,
    conn: &mut AnyConnection,
    requests: &[Request],
) -> Result<Vec<Result<Vec<Option<i64>>, WriteError>>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let mut outcomes: Vec<Result<Vec<Option<i64>>, WriteError>> =
        Vec::with_capacity(requests.len());
    // (request, event) of each chat line, and the playback each room ends the batch with.
    let mut lines = Vec::new();
    let mut playbacks = Vec::new();
    for (r, request) in requests.iter().enumerate() {
        // Several nodes: the room must still hold the token it is written under. Its row stays
        // locked (PostgreSQL) until the commit; the batch is in room id order, so two nodes'
        // writers lock rows in one order.
        if let Some(fence) = request.fence
            && Store::room_fence_locked(&mut tx, store.backend(), request.room).await?
                != Some(fence)
        {
            outcomes.push(Err(WriteError::Fenced));
            continue;
        }
        outcomes.push(Ok(vec![None; request.events.len()]));
        // Later playback changes overwrite the same columns of the room's row: only the last
        // of them is written, and only if no now-playing change (which writes them too, with
        // the queue) comes after it.
        let last_playback = request
            .events
            .iter()
            .rposition(|e| matches!(e, Event::Playback { .. } | Event::NowPlaying { .. }));
        for (e, event) in request.events.iter().enumerate() {
            match event {
                Event::Chat { line } => lines.push((r, e, line)),
                Event::Playback { item_id, state, .. } => {
                    if Some(e) == last_playback {
                        playbacks.push((request.room, *item_id, *state, request.now));
                    }
                }
                _ => {
                    Store::persist_on(&mut tx, request.room, event, request.now).await?;
                }
            }
        }
    }
    let mut rest = &lines[..];
    while !rest.is_empty() {
        let (chunk, more) = rest.split_at(chunk_len(rest.len()));
        let ids = Store::insert_chat_lines_on(
            &mut tx,
            store.backend(),
            chunk.iter().map(|(r, _, line)| (requests[*r].room, *line)),
        )
        .await?;
        for ((r, e, _), id) in chunk.iter().zip(ids) {
            if let Ok(ids) = &mut outcomes[*r] {
                ids[*e] = Some(id);
            }
        }
        rest = more;
    }
    let mut rest = &playbacks[..];
    while !rest.is_empty() {
        let (chunk, more) = rest.split_at(chunk_len(rest.len()));
        Store::save_playbacks_on(&mut tx, store.backend(), chunk).await?;
        rest = more;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// How many of `n` rows the next multi-row statement takes: the largest power of two that fits,
/// up to 256. So a batch needs at most a few statements, and each connection caches at most
/// nine statement texts per kind instead of one per batch size.
fn chunk_len(n: usize) -> usize {
    1 << n.min(256).ilog2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::tests::{room_row, user};
    use crate::store::testing::store;
    use lockstep_core::playback::PlaybackState;
    use lockstep_core::room::{NewChatLine, PlaybackCause};
    use lockstep_core::settings::Visibility;

    fn chat(text: String) -> Event {
        Event::Chat {
            line: NewChatLine {
                user_id: None,
                name: None,
                text,
                system: None,
                at: ServerTime(1),
            },
        }
    }

    fn seek(position: f64) -> Event {
        Event::Playback {
            item_id: None,
            state: PlaybackState::paused_at(position, ServerTime::from_millis(5)),
            cause: PlaybackCause::Seek,
            by: None,
        }
    }

    /// Many rooms at once (so batches form): every line is stored once with the id the writer
    /// gave for it, in each room's order, and each room's row holds its last playback.
    #[tokio::test]
    async fn concurrent_rooms_commit_together_with_their_own_ids_and_last_playback() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let writer = EventWriter::start(s.clone(), Metrics::new());
        let mut rooms = Vec::new();
        for _ in 0..40 {
            let room = room_row(owner.id, Visibility::Public);
            s.create_room(&room).await.unwrap();
            rooms.push(room.id);
        }
        let tasks: Vec<_> = rooms
            .iter()
            .map(|&room| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for n in 0..10 {
                        let events = vec![
                            chat(format!("{room} {n} a")),
                            seek(n as f64),
                            chat(format!("{room} {n} b")),
                            seek(n as f64 + 0.5),
                        ];
                        let (events, written) = writer
                            .write(room, None, events, ServerTime::from_millis(5))
                            .await;
                        let written = written.unwrap();
                        assert_eq!(events.len(), written.len());
                        assert!(written[1].is_none() && written[3].is_none());
                        ids.push((written[0].unwrap(), format!("{room} {n} a")));
                        ids.push((written[2].unwrap(), format!("{room} {n} b")));
                    }
                    ids
                })
            })
            .collect();
        for (room, task) in rooms.iter().zip(tasks) {
            let ids = task.await.unwrap();
            let stored = s.chat_lines(*room, None, 100).await.unwrap();
            assert_eq!(stored.len(), 20);
            for (line, (id, text)) in stored.iter().zip(&ids) {
                assert_eq!((line.id, &line.text), (*id, text));
            }
            let row = s.room(*room).await.unwrap().unwrap();
            assert_eq!(row.position, 9.5, "the room's last seek");
        }
    }

    /// One room's write fails in a batch: the others are committed all the same.
    #[tokio::test]
    async fn a_room_whose_write_fails_fails_alone() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let writer = EventWriter::start(s.clone(), Metrics::new());
        let good = room_row(owner.id, Visibility::Public);
        s.create_room(&good).await.unwrap();
        // Never created: its chat line breaks the foreign key.
        let missing = room_row(owner.id, Visibility::Public);
        let mut tasks = Vec::new();
        for n in 0..30 {
            let writer = writer.clone();
            let room = if n % 3 == 0 { missing.id } else { good.id };
            tasks.push(tokio::spawn(async move {
                let events = vec![chat(format!("line {n}"))];
                (
                    room,
                    writer.write(room, None, events, ServerTime(1)).await.1,
                )
            }));
        }
        let mut written = 0;
        for task in tasks {
            let (room, outcome) = task.await.unwrap();
            if room == missing.id {
                assert!(matches!(outcome, Err(WriteError::Store(_))), "{outcome:?}");
            } else {
                outcome.unwrap();
                written += 1;
            }
        }
        assert_eq!(
            s.chat_lines(good.id, None, 100).await.unwrap().len(),
            written
        );
    }

    /// A room whose fencing token is not the one it is written under writes nothing; a room
    /// beside it in the same batch does.
    #[tokio::test]
    async fn a_fenced_room_writes_nothing_and_its_batch_goes_on() {
        let (s, _dir) = store().await;
        let owner = user(&s).await;
        let writer = EventWriter::start(s.clone(), Metrics::new());
        let ours = room_row(owner.id, Visibility::Public);
        let lost = room_row(owner.id, Visibility::Public);
        for room in [&ours, &lost] {
            s.create_room(room).await.unwrap();
            assert!(s.take_room_fence(room.id, 1).await.unwrap());
        }
        assert!(s.take_room_fence(lost.id, 2).await.unwrap());
        assert!(
            !s.take_room_fence(lost.id, 2).await.unwrap(),
            "only newer tokens"
        );
        let (a, b) = tokio::join!(
            writer.write(ours.id, Some(1), vec![chat("ours".into())], ServerTime(1)),
            writer.write(lost.id, Some(1), vec![chat("lost".into())], ServerTime(1)),
        );
        assert!(a.1.is_ok());
        assert!(matches!(b.1, Err(WriteError::Fenced)));
        assert_eq!(s.chat_lines(ours.id, None, 10).await.unwrap().len(), 1);
        assert!(s.chat_lines(lost.id, None, 10).await.unwrap().is_empty());
    }

    #[test]
    fn chunks_are_powers_of_two_up_to_256() {
        let sizes: Vec<usize> = [1, 2, 3, 255, 256, 300, 1000]
            .iter()
            .map(|&n| chunk_len(n))
            .collect();
        assert_eq!(sizes, [1, 2, 2, 128, 256, 256, 256]);
    }
}
