//! `lockstep-loadgen`: opens N WebSocket viewers across M rooms of a running Lockstep server,
//! drives chat and seeks in every room at a chosen rate, and reports how long events take to
//! reach viewers (p50/p99/max) and how much server memory each connection costs.
//!
//! Latency is measured on the machine's monotonic clock (`CLOCK_MONOTONIC`, the same in every
//! process): each driven command carries its send time (in the chat text, or encoded in the seek
//! position), and every viewer that receives the resulting event subtracts it from the time of
//! receipt. Server memory comes from each node's own `/metrics`
//! (`lockstep_process_resident_memory_bytes`), read before the viewers connect and after, while
//! they sit idle.
//!
//! One process may hold at most as many sockets as its open-file limit allows, so
//! `--processes N` runs the viewers in N worker processes (this same binary with `--worker`; the
//! rooms and their drivers stay in this one) and merges their figures; `--source-addresses N`
//! spreads the viewers' connections over 127.0.0.1..N, as each source address has only about
//! 28,000 ephemeral ports towards one server address.
//!
//! Only talks to the given URLs; use it against 127.0.0.1.

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use lockstep_client::Api;
use lockstep_core::ids::RoomId;
use lockstep_core::protocol::ClientFrame;
use serde::Deserialize;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Parser)]
#[command(about = "Load generator for a running Lockstep server")]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Other nodes of the same cluster: each room's viewers are spread over `--url` and these,
    /// and the rooms' drivers too (the rooms are made through `--url`); each node's memory is
    /// read from its own `/metrics`.
    #[arg(long = "node-url")]
    node_urls: Vec<String>,
    /// Viewers (WebSocket connections) in all.
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Rooms to spread them over.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Commands per second, per room, alternating chat lines and seeks. The server's chat limit
    /// (LOCKSTEP_CHAT_RATE_LINES per LOCKSTEP_CHAT_RATE_WINDOW_SECS) and frame limit
    /// (LOCKSTEP_WS_FRAMES_PER_SEC) must allow it: the driver of a room is one user.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Put all of a room's viewers and its driver on one node (room r on node r mod nodes), as a
    /// load balancer that hashes the room's URL would; without it they take turns between the
    /// nodes, as with round robin.
    #[arg(long)]
    room_affinity: bool,
    /// Seconds to drive and measure, after everyone has joined.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds to let idle viewers settle before measuring memory.
    #[arg(long, default_value_t = 3)]
    settle: u64,
    /// WebSocket handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Prefix of the RESULT names (e.g. `1k` gives `RESULT 1k_delivery_latency_p99 ...`).
    #[arg(long)]
    label: Option<String>,
    /// The server's process id, to read its CPU time from `/proc/PID/stat` over the measured
    /// window (same machine only); gives the server CPU per delivery.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Viewers join as users who already exist: each gets its session (one `GET /api/me`) before
    /// the timed joins, so the joins measure what a returning user costs, not making a user.
    #[arg(long)]
    returning: bool,
    /// A reconnect storm: every viewer joins, all drop their connections together, and after
    /// this many seconds (past the server's leave grace, so they are gone from their rooms) all
    /// join again; the joins figure is the second wave's. Implies --returning; one process only.
    #[arg(long)]
    rejoin_after: Option<u64>,
    /// Worker processes to run the viewers in (each holds viewers/N sockets, which must fit in
    /// its open-file limit); 1 runs them in this process.
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Loopback source addresses to spread the viewers' connections over (127.0.0.1 up to
    /// 127.0.0.N); each has about 28,000 ephemeral ports towards one server address.
    #[arg(long, default_value_t = 1)]
    source_addresses: u8,
    /// Runs as a worker of another load generator: viewers from standard input, figures to
    /// standard output.
    #[arg(long, hide = true)]
    worker: bool,
    /// Every viewer also reports its sync quality every this many seconds (`sync_report`, as a
    /// playing web client does every 5 s), its first at a point of its own within the period:
    /// what the room's `sync_quality` answers cost.
    #[arg(long)]
    sync_reports: Option<f64>,
    /// Every viewer also pings as the web client's clock does (`CLOCK` in
    /// `web/public/js/clock.js`): 3 pings 40 ms apart, 5 more 120 ms apart and 24 more 250 ms
    /// apart from its welcome, then one every 2.5 s.
    #[arg(long)]
    clock_pings: bool,
    /// The server's `--metrics-token`, to read its memory from `/metrics`.
    #[arg(long, env = "LOCKSTEP_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: String,
}

/// Microseconds on the machine's monotonic clock: comparable between processes.
fn now_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

/// One viewer to connect.
#[derive(Clone, Serialize, Deserialize)]
struct ViewerSpec {
    url: String,
    cookie: Option<String>,
    /// Its number among all viewers: picks its source address and latency shard.
    index: usize,
    /// Seconds between its sync reports; none: it sends none.
    #[serde(default)]
    sync_reports: Option<f64>,
    /// It pings as a web client's clock does.
    #[serde(default)]
    clock_pings: bool,
    /// It joins again, as a page that reconnects (its clock pings go steady sooner).
    #[serde(default)]
    rejoin: bool,
}

/// What a worker is told to do, as its first line of input.
#[derive(Serialize, Deserialize)]
struct WorkerPlan {
    viewers: Vec<ViewerSpec>,
    connect_concurrency: usize,
    source_addresses: u8,
}

/// What a worker reports, one JSON line each.
#[derive(Serialize, Deserialize)]
enum WorkerReport {
    /// Every viewer has joined or failed.
    Ready { joined: usize, failed: usize },
    /// The figures of the measured window.
    Figures {
        delivered: u64,
        frames: u64,
        /// The delivery latency histogram, in hdrhistogram's V2 serialisation.
        latency: Vec<u8>,
    },
}

/// The fields of a server frame the load generator looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    t: &'a str,
    #[serde(default, borrow)]
    line: Option<Line<'a>>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    cause: Option<&'a str>,
}

#[derive(Deserialize)]
struct Line<'a> {
    text: &'a str,
}

#[derive(Deserialize)]
struct State {
    position: f64,
}

/// Acknowledgements the drivers received, and how long each took from the command's send.
struct Acks {
    latency: Mutex<Histogram<u64>>,
    acked: AtomicU64,
    refused: AtomicU64,
}

impl Acks {
    fn new() -> Self {
        Acks {
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            ),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

/// Frames any connection received while recording (events, acks, everything): the server's
/// deliveries, for its CPU time per delivery.
static FRAMES_RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The answer to a driver's command.
#[derive(Deserialize)]
struct Reply<'a> {
    t: &'a str,
    #[serde(default)]
    id: Option<u64>,
}

/// Send times kept per driver, by command id modulo this: far more than are ever in flight.
const ACK_SLOTS: usize = 4096;

/// The CPU time (user + system) process `pid` has used, in seconds, from `/proc/PID/stat`.
fn server_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| {
        format!("cannot read /proc/{pid}/stat (is the server on this machine?)")
    })?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .context("unexpected /proc/PID/stat")?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(ticks / clock_ticks_per_sec())
}

/// The kernel's clock ticks per second for `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Seek positions carry the send time modulo this many microseconds (1000 s).
const SEEK_MODULO_US: u64 = 1_000_000_000;

/// Latency samples, sharded so that thousands of viewers do not fight over one lock.
struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
    recording: std::sync::atomic::AtomicBool,
    delivered: AtomicU64,
    acks: Acks,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            shards: (0..32)
                .map(|_| {
                    Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"))
                })
                .collect(),
            recording: std::sync::atomic::AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            acks: Acks::new(),
        }
    }

    fn record(&self, shard: usize, micros: u64) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let mut h = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = h.record(micros.max(1));
    }

    fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    fn ack(&self, micros: Option<u64>) {
        if !self.recording() {
            return;
        }
        match micros {
            Some(us) => {
                self.acks.acked.fetch_add(1, Ordering::Relaxed);
                let mut h = self
                    .acks
                    .latency
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = h.record(us.max(1));
            }
            None => {
                self.acks.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        for shard in &self.shards {
            let h = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = all.add(&*h);
        }
        all
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.worker {
        runtime.block_on(worker())
    } else {
        runtime.block_on(run(args))
    }
}

/// Each node's resident memory, in the order of `nodes`.
async fn nodes_rss(probe: &Api, nodes: &[&str]) -> anyhow::Result<Vec<u64>> {
    let mut rss = Vec::with_capacity(nodes.len());
    for node in nodes {
        rss.push(server_rss(&probe.rebased(node)).await?);
    }
    Ok(rss)
}

async fn server_rss(api: &Api) -> anyhow::Result<u64> {
    let text = api.get_text("/metrics").await;
    // With a wrong or missing token the server answers 404 JSON, which the parse below reports.
    text.lines()
        .find_map(|l| l.strip_prefix("lockstep_process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .context("the server's /metrics has no lockstep_process_resident_memory_bytes")
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.rooms == 0 || args.viewers < args.rooms {
        bail!("need at least one viewer per room");
    }
    if args.rejoin_after.is_some() && args.processes > 1 {
        bail!("--rejoin-after runs in one process");
    }
    let returning = args.returning || args.rejoin_after.is_some();
    let probe = Api::new(&args.url)?
        .with_header("authorization", &format!("Bearer {}", args.metrics_token));
    probe
        .get("/healthz")
        .await
        .with_context(|| format!("is a server running at {}?", args.url))?;

    // Rooms, each with a driver viewer that will send the commands.
    eprintln!("creating {} rooms", args.rooms);
    let mut rooms = Vec::new();
    for r in 0..args.rooms {
        let host = Api::new(&args.url)?;
        let room = host
            .create_room(&serde_json::json!({ "name": format!("loadgen {r}") }))
            .await?;
        rooms.push((host, room));
    }

    // Sessions made ahead, for returning viewers.
    let mut cookies: Vec<Option<String>> = vec![None; args.viewers];
    if returning {
        eprintln!("making {} users ahead of the joins", args.viewers);
        let made: Vec<anyhow::Result<Option<String>>> = futures_util::stream::iter(0..args.viewers)
            .map(|_| {
                let url = args.url.clone();
                async move {
                    let api = Api::new(&url)?;
                    api.get("/api/me").await?;
                    Ok(api.cookie_header())
                }
            })
            .buffered(args.connect_concurrency)
            .collect()
            .await;
        for (slot, cookie) in cookies.iter_mut().zip(made) {
            *slot = cookie?;
        }
    }

    // Viewers, each room's taking turns between the nodes (its session is good on every node).
    let nodes: Vec<&str> = std::iter::once(args.url.as_str())
        .chain(args.node_urls.iter().map(String::as_str))
        .collect();
    let mut per_node = vec![0usize; nodes.len()];
    let specs: Vec<ViewerSpec> = (0..args.viewers)
        .map(|v| {
            let (host, room) = &rooms[v % args.rooms];
            let node = if args.room_affinity {
                (v % args.rooms) % nodes.len()
            } else {
                (v / args.rooms) % nodes.len()
            };
            per_node[node] += 1;
            ViewerSpec {
                url: host.rebased(nodes[node]).ws_url(*room),
                cookie: cookies[v].take(),
                index: v,
                sync_reports: args.sync_reports,
                clock_pings: args.clock_pings,
                rejoin: false,
            }
        })
        .collect();
    let rss_before = nodes_rss(&probe, &nodes).await?;
    eprintln!(
        "connecting {} viewers from {} process(es)",
        args.viewers, args.processes
    );
    let latencies = Arc::new(Latencies::new());
    let mut join_cpu_before = args.server_pid.map(server_cpu_secs).transpose()?;
    let mut connect_started = Instant::now();
    let (mut viewers, (connected, failed)) = if args.processes <= 1 {
        // A page that reconnects keeps its clock: see `clock_ping_delay`.
        let again = args.rejoin_after.map(|after| {
            let specs = specs.iter().cloned();
            (
                after,
                specs
                    .map(|s| ViewerSpec { rejoin: true, ..s })
                    .collect::<Vec<_>>(),
            )
        });
        let (mut handles, mut joined, mut failed) = connect_viewers(
            specs,
            args.connect_concurrency,
            args.source_addresses,
            latencies.clone(),
        )
        .await;
        if let Some((after, specs)) = again {
            eprintln!(
                "first wave: {joined} joined, {failed} failed, in {:.1} s ({:.0} joins/s); all leave, and rejoin in {after} s",
                connect_started.elapsed().as_secs_f64(),
                joined as f64 / connect_started.elapsed().as_secs_f64()
            );
            for handle in handles {
                handle.abort();
            }
            tokio::time::sleep(Duration::from_secs(after)).await;
            join_cpu_before = args.server_pid.map(server_cpu_secs).transpose()?;
            connect_started = Instant::now();
            (handles, joined, failed) = connect_viewers(
                specs,
                args.connect_concurrency,
                args.source_addresses,
                latencies.clone(),
            )
            .await;
        }
        (Viewers::Here(handles), (joined, failed))
    } else {
        let mut workers = Workers::start(&args, specs).await?;
        let counts = workers.ready().await?;
        (Viewers::Workers(workers), counts)
    };
    let connect_secs = connect_started.elapsed().as_secs_f64();
    // The server's CPU per join over the joins (one node: the server's pid).
    let join_cpu = join_cpu_before
        .zip(args.server_pid.map(server_cpu_secs).transpose()?)
        .map(|(before, after)| after - before);
    eprintln!(
        "{connected} joined, {failed} failed, in {connect_secs:.1} s; settling {} s",
        args.settle
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let rss_idle = nodes_rss(&probe, &nodes).await?;

    // Drive every room and measure.
    eprintln!(
        "driving {} commands/s in each room for {} s",
        args.rate, args.duration
    );
    let sent = Arc::new(AtomicU64::new(0));
    let mut drivers = Vec::new();
    // The drivers join as the viewers did, so many handshakes at a time, and each says when it
    // has joined and sent its room's first item (or failed).
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let started = Arc::new(AtomicUsize::new(0));
    for (r, (host, room)) in rooms.iter().enumerate() {
        // The drivers take turns between the nodes too, so that no node holds them all (with
        // --room-affinity this is their room's node).
        let host = host.rebased(nodes[r % nodes.len()]);
        let (room, sent, latencies) = (*room, sent.clone(), latencies.clone());
        let (gate, started) = (gate.clone(), started.clone());
        let rate = args.rate;
        drivers.push(tokio::spawn(async move {
            let signalled = std::sync::atomic::AtomicBool::new(false);
            let start = Start {
                gate,
                started: &started,
                signalled: &signalled,
            };
            if let Err(err) = drive(host, room, rate, &sent, latencies, start).await {
                if !signalled.swap(true, Ordering::Relaxed) {
                    started.fetch_add(1, Ordering::Relaxed);
                }
                eprintln!("driver of room {room}: {err:#}");
            }
        }));
    }
    while started.load(Ordering::Relaxed) < rooms.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the first items settle before recording.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = args.server_pid.map(server_cpu_secs).transpose()?;
    viewers.record(true).await?;
    latencies.recording.store(true, Ordering::Relaxed);
    let measure_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    latencies.recording.store(false, Ordering::Relaxed);
    viewers.record(false).await?;
    let measured_secs = measure_started.elapsed().as_secs_f64();
    let cpu_after = args.server_pid.map(server_cpu_secs).transpose()?;
    let rss_busy: u64 = nodes_rss(&probe, &nodes).await?.iter().sum();
    for d in drivers {
        d.abort();
    }
    let sent = sent.load(Ordering::Relaxed);
    let mut h = latencies.merged();
    let mut delivered = latencies.delivered.load(Ordering::Relaxed);
    let mut frames = FRAMES_RECEIVED.load(Ordering::Relaxed);
    for (w_delivered, w_frames, w_latency) in viewers.finish().await? {
        delivered += w_delivered;
        frames += w_frames;
        h.add(&w_latency).context("merging a worker's latencies")?;
    }

    // Memory per viewer, node by node (each node's own viewers), and in all.
    let rss_grown: Vec<u64> = rss_idle
        .iter()
        .zip(&rss_before)
        .map(|(idle, before)| idle.saturating_sub(*before))
        .collect();
    let per_conn = rss_grown.iter().sum::<u64>() as f64 / connected.max(1) as f64;
    let rss_idle_total: u64 = rss_idle.iter().sum();
    let rss_before_total: u64 = rss_before.iter().sum();
    if nodes.len() > 1 {
        for (n, node) in nodes.iter().enumerate() {
            println!(
                "node {n} ({node}): {} viewers, RSS {:.1} MiB before, {:.1} MiB idle: {:.2} KiB per viewer",
                per_node[n],
                rss_before[n] as f64 / 1048576.0,
                rss_idle[n] as f64 / 1048576.0,
                rss_grown[n] as f64 / 1024.0 / per_node[n].max(1) as f64
            );
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "viewers {connected} (failed {failed}), rooms {}, {:.0} viewers per room",
        args.rooms,
        args.viewers as f64 / args.rooms as f64
    );
    println!(
        "connect: {connect_secs:.1} s ({:.0} joins/s)",
        connected as f64 / connect_secs
    );
    println!(
        "server RSS: {:.1} MiB before, {:.1} MiB with idle viewers, {:.1} MiB while driven",
        rss_before_total as f64 / 1048576.0,
        rss_idle_total as f64 / 1048576.0,
        rss_busy as f64 / 1048576.0
    );
    println!(
        "deliveries measured: {delivered} in {measured_secs:.1} s ({:.0}/s)",
        delivered as f64 / measured_secs
    );
    println!(
        "delivery latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    );
    println!("commands sent: {sent}");
    let acked = latencies.acks.acked.load(Ordering::Relaxed);
    let refused = latencies.acks.refused.load(Ordering::Relaxed);
    let acks = latencies
        .acks
        .latency
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    println!(
        "commands acknowledged: {acked} in {measured_secs:.1} s ({:.0}/s), refused {refused}; \
         ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        acked as f64 / measured_secs,
        ms(acks.value_at_quantile(0.5)),
        ms(acks.value_at_quantile(0.99)),
        ms(acks.max())
    );
    let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    if let Some(cpu) = cpu {
        println!(
            "server CPU: {cpu:.2} s over {measured_secs:.1} s ({:.2} cores); {frames} frames \
             received by all connections: {:.2} us per frame",
            cpu / measured_secs,
            cpu * 1e6 / frames.max(1) as f64
        );
    }
    let p = args.label.map(|l| format!("{l}_")).unwrap_or_default();
    let mut results = vec![
        ("viewers", connected as f64, "count", 0),
        (
            "delivery_latency_p50",
            ms(h.value_at_quantile(0.5)),
            "ms",
            2,
        ),
        (
            "delivery_latency_p99",
            ms(h.value_at_quantile(0.99)),
            "ms",
            2,
        ),
        ("delivery_latency_max", ms(h.max()), "ms", 2),
        (
            "deliveries_per_sec",
            delivered as f64 / measured_secs,
            "1/s",
            0,
        ),
        ("server_rss_per_connection", per_conn / 1024.0, "KiB", 1),
        ("joins_per_sec", connected as f64 / connect_secs, "1/s", 0),
        ("acked_per_sec", acked as f64 / measured_secs, "1/s", 0),
        ("ack_latency_p50", ms(acks.value_at_quantile(0.5)), "ms", 2),
        ("ack_latency_p99", ms(acks.value_at_quantile(0.99)), "ms", 2),
        ("refused", refused as f64, "count", 0),
    ];
    if let Some(cpu) = join_cpu.filter(|_| connected > 0) {
        println!(
            "server CPU while joining: {cpu:.2} s, {:.0} us per join",
            cpu * 1e6 / connected as f64
        );
        results.push(("server_cpu_per_join", cpu * 1e6 / connected as f64, "us", 0));
    }
    if let Some(cpu) = cpu.filter(|_| frames > 0) {
        results.push((
            "server_cpu_per_delivery",
            cpu * 1e6 / frames.max(1) as f64,
            "us",
            2,
        ));
        results.push(("server_cores", cpu / measured_secs, "cores", 2));
    }
    if nodes.len() > 1 {
        let worst = rss_grown
            .iter()
            .zip(&per_node)
            .map(|(grown, viewers)| *grown as f64 / 1024.0 / (*viewers).max(1) as f64)
            .fold(0.0, f64::max);
        results.push(("server_rss_per_connection_worst_node", worst, "KiB", 1));
    }
    for (name, value, unit, decimals) in results {
        println!("RESULT {p}{name} {value:.decimals$} {unit}");
    }
    Ok(())
}

/// Starts the viewers, `concurrency` handshakes at a time, and waits until each has joined or
/// failed: their tasks, how many joined and how many failed.
async fn connect_viewers(
    specs: Vec<ViewerSpec>,
    concurrency: usize,
    source_addresses: u8,
    latencies: Arc<Latencies>,
) -> (Vec<tokio::task::JoinHandle<()>>, usize, usize) {
    let count = specs.len();
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let handles = specs
        .into_iter()
        .map(|spec| {
            // 127.0.0.1 up to 127.0.0.N, in turn; none given: the system picks.
            let source = (source_addresses > 1).then(|| {
                IpAddr::V4(Ipv4Addr::new(
                    127,
                    0,
                    0,
                    1 + (spec.index % usize::from(source_addresses)) as u8,
                ))
            });
            let (latencies, joined, failed, gate) = (
                latencies.clone(),
                joined.clone(),
                failed.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.ok();
                let v = spec.index;
                if let Err(err) = viewer(spec, source, latencies, joined, permit).await
                    && failed.fetch_add(1, Ordering::Relaxed) < 5
                {
                    eprintln!("viewer {v}: {err:#}");
                }
            })
        })
        .collect();
    while joined.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (
        handles,
        joined.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

/// Where the viewers run.
enum Viewers {
    Here(Vec<tokio::task::JoinHandle<()>>),
    Workers(Workers),
}

impl Viewers {
    /// Starts or stops the workers' recording (viewers here share this process's flag).
    async fn record(&mut self, on: bool) -> anyhow::Result<()> {
        match self {
            Viewers::Here(_) => Ok(()),
            Viewers::Workers(w) => w.tell(if on { "record" } else { "stop" }).await,
        }
    }

    /// Ends the viewers; the workers' figures (deliveries, frames, latencies), if any.
    async fn finish(self) -> anyhow::Result<Vec<(u64, u64, Histogram<u64>)>> {
        match self {
            Viewers::Here(handles) => {
                for h in handles {
                    h.abort();
                }
                Ok(Vec::new())
            }
            Viewers::Workers(w) => w.figures().await,
        }
    }
}

/// Worker processes, each running a share of the viewers.
struct Workers {
    children: Vec<Worker>,
}

struct Worker {
    child: tokio::process::Child,
    input: tokio::process::ChildStdin,
    output: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    async fn report(&mut self) -> anyhow::Result<WorkerReport> {
        let line = self
            .output
            .next_line()
            .await?
            .context("a worker ended without its figures")?;
        serde_json::from_str(&line).context("a worker's report")
    }
}

impl Workers {
    /// Starts `args.processes` workers and gives each its share of `specs`.
    async fn start(args: &Args, specs: Vec<ViewerSpec>) -> anyhow::Result<Workers> {
        let exe = std::env::current_exe()?;
        let share = specs.len().div_ceil(args.processes);
        let mut specs = specs.into_iter().peekable();
        let mut children = Vec::new();
        while specs.peek().is_some() {
            let mut child = tokio::process::Command::new(&exe)
                .args(["--worker", "--url", &args.url])
                .env("LOCKSTEP_METRICS_TOKEN", &args.metrics_token)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a worker")?;
            let mut input = child.stdin.take().context("a worker's input")?;
            let output = BufReader::new(child.stdout.take().context("a worker's output")?).lines();
            let plan = WorkerPlan {
                viewers: specs.by_ref().take(share).collect(),
                connect_concurrency: args.connect_concurrency.div_ceil(args.processes),
                source_addresses: args.source_addresses,
            };
            let mut line = serde_json::to_vec(&plan)?;
            line.push(b'\n');
            input.write_all(&line).await?;
            input.flush().await?;
            children.push(Worker {
                child,
                input,
                output,
            });
        }
        Ok(Workers { children })
    }

    /// Waits until every worker's viewers have joined or failed: (joined, failed) in all.
    async fn ready(&mut self) -> anyhow::Result<(usize, usize)> {
        let (mut joined, mut failed) = (0, 0);
        for w in &mut self.children {
            match w.report().await? {
                WorkerReport::Ready {
                    joined: j,
                    failed: f,
                } => {
                    joined += j;
                    failed += f;
                }
                WorkerReport::Figures { .. } => bail!("a worker sent figures before it was ready"),
            }
        }
        Ok((joined, failed))
    }

    async fn tell(&mut self, command: &str) -> anyhow::Result<()> {
        for w in &mut self.children {
            w.input.write_all(format!("{command}\n").as_bytes()).await?;
            w.input.flush().await?;
        }
        Ok(())
    }

    /// Each worker's figures of the measured window; the workers end.
    async fn figures(mut self) -> anyhow::Result<Vec<(u64, u64, Histogram<u64>)>> {
        let mut all = Vec::new();
        for w in &mut self.children {
            match w.report().await? {
                WorkerReport::Figures {
                    delivered,
                    frames,
                    latency,
                } => {
                    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                        .deserialize(&mut latency.as_slice())
                        .map_err(|e| anyhow::anyhow!("a worker's histogram: {e:?}"))?;
                    all.push((delivered, frames, h));
                }
                WorkerReport::Ready { .. } => bail!("a worker was ready twice"),
            }
        }
        for w in &mut self.children {
            let _ = w.child.wait().await;
        }
        Ok(all)
    }
}

/// A worker: connects the viewers of its plan (the first line of standard input), says when
/// they are in, records between `record` and `stop`, then prints its figures and ends.
async fn worker() -> anyhow::Result<()> {
    use hdrhistogram::serialization::Serializer;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let plan: WorkerPlan = serde_json::from_str(
        &input
            .next_line()
            .await?
            .context("a worker needs its plan on standard input")?,
    )?;
    let latencies = Arc::new(Latencies::new());
    let (handles, joined, failed) = connect_viewers(
        plan.viewers,
        plan.connect_concurrency,
        plan.source_addresses,
        latencies.clone(),
    )
    .await;
    let say = |report: &WorkerReport| -> anyhow::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, report)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    say(&WorkerReport::Ready { joined, failed })?;
    while let Some(line) = input.next_line().await? {
        match line.trim() {
            "record" => latencies.recording.store(true, Ordering::Relaxed),
            "stop" => break,
            other => bail!("a worker was told {other:?}"),
        }
    }
    latencies.recording.store(false, Ordering::Relaxed);
    for h in handles {
        h.abort();
    }
    let mut latency = Vec::new();
    hdrhistogram::serialization::V2Serializer::new()
        .serialize(&latencies.merged(), &mut latency)
        .map_err(|e| anyhow::anyhow!("serialising the histogram: {e:?}"))?;
    say(&WorkerReport::Figures {
        delivered: latencies.delivered.load(Ordering::Relaxed),
        frames: FRAMES_RECEIVED.load(Ordering::Relaxed),
        latency,
    })
}

/// How long a viewer waits after its `sent`-th ping, as the web client's clock does
/// (`ClockEstimator.nextPingDelay` in `web/public/js/clock.js`): a burst and a warm-up, then
/// steady; on a reconnection steady from the fourth, as a page whose clock the first pongs agree
/// with.
fn clock_ping_delay(sent: u32, rejoin: bool) -> Duration {
    Duration::from_millis(match sent {
        0..3 => 40,
        3 => 120,
        4..=8 if !rejoin => 120,
        9..=32 if !rejoin => 250,
        _ => 2500,
    })
}

/// One viewer: joins, then measures every driven event it receives until aborted.
async fn viewer(
    spec: ViewerSpec,
    source: Option<IpAddr>,
    latencies: Arc<Latencies>,
    joined: Arc<AtomicUsize>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> anyhow::Result<()> {
    let (index, reports, pings, rejoin) =
        (spec.index, spec.sync_reports, spec.clock_pings, spec.rejoin);
    let mut request = spec.url.as_str().into_client_request()?;
    if let Some(cookie) = spec.cookie {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    let host = request.uri().host().context("no host")?.to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let server = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .context("the server's name has no address")?;
    let socket = match server {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding to {source}"))?;
    }
    let stream = socket.connect(server).await.context("connect")?;
    stream.set_nodelay(true)?;
    // Small buffers: ten thousand of these live in this process too.
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    let hello = serde_json::to_string(&ClientFrame::Hello {
        v: 1,
        last_seq: None,
        epoch: None,
    })?;
    ws.send(Message::text(hello)).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with("{\"t\":\"welcome\"") => {}
        other => bail!("expected a welcome, got {other:?}"),
    }
    drop(permit);
    joined.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let send = async move {
        let start = tokio::time::Instant::now();
        let period = reports.filter(|p| *p > 0.0).map(Duration::from_secs_f64);
        // Reports spread over the period by the viewer's number, as real viewers' are; pings
        // from the welcome on.
        let mut next_report = period.map(|p| start + p.mul_f64((index as f64 * 0.618_034).fract()));
        let mut next_ping = pings.then_some(start);
        let (mut reported, mut pinged) = (0u64, 0u32);
        loop {
            let frame = match (next_report, next_ping, period) {
                (Some(at), ping, Some(period)) if ping.is_none_or(|p| at <= p) => {
                    tokio::time::sleep_until(at).await;
                    next_report = Some(at + period);
                    reported += 1;
                    // Figures as a web client's: a few ms, varying; without an id, as it sends
                    // them (a report is answered only when refused).
                    let p50_ms = ((index as u64 + reported) % 7) as f64 * 0.7;
                    ClientFrame::SyncReport {
                        id: None,
                        p50_ms,
                        p95_ms: p50_ms + 4.3,
                    }
                }
                (_, Some(at), _) => {
                    tokio::time::sleep_until(at).await;
                    pinged += 1;
                    next_ping = Some(at + clock_ping_delay(pinged, rejoin));
                    ClientFrame::Ping {
                        id: None,
                        client_time: now_us() as f64 / 1000.0,
                    }
                }
                _ => return std::future::pending().await,
            };
            sink.send(Message::text(serde_json::to_string(&frame)?))
                .await?;
        }
    };
    let receive = async move {
        while let Some(msg) = stream.next().await {
            let Message::Text(text) = msg? else { continue };
            if latencies.recording() {
                FRAMES_RECEIVED.fetch_add(1, Ordering::Relaxed);
            }
            let now_us = now_us();
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                continue;
            };
            let sent_us = match (frame.t, &frame.line, &frame.state, frame.cause) {
                ("chat", Some(line), _, _) => line
                    .text
                    .strip_prefix("lg:")
                    .and_then(|t| t.parse::<u64>().ok()),
                ("playback", _, Some(state), Some("seek")) => {
                    let sent_mod = (state.position * 1e6).round() as u64;
                    let now_mod = now_us % SEEK_MODULO_US;
                    Some(now_us - ((now_mod + SEEK_MODULO_US - sent_mod) % SEEK_MODULO_US))
                }
                _ => None,
            };
            if let Some(sent) = sent_us
                && now_us >= sent
            {
                latencies.record(index, now_us - sent);
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        done = send => done,
        done = receive => done,
    }
}

/// Sends `rate` commands per second to `room`, alternating chat lines and seeks, each carrying
/// its send time, until aborted; counts them in `sent`.
/// How a driver joins: within the handshakes allowed at once, counting itself in `started` once
/// it has sent its room's first item.
struct Start<'a> {
    gate: Arc<Semaphore>,
    started: &'a AtomicUsize,
    signalled: &'a std::sync::atomic::AtomicBool,
}

async fn drive(
    host: Api,
    room: RoomId,
    rate: f64,
    sent: &AtomicU64,
    latencies: Arc<Latencies>,
    start: Start<'_>,
) -> anyhow::Result<()> {
    let permit = start.gate.acquire().await.ok();
    if host.cookie_header().is_none() {
        host.get("/api/me").await?;
    }
    let mut request = host.ws_url(room).into_client_request()?;
    if let Some(cookie) = host.cookie_header() {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    let (mut sink, mut stream) = ws.split();
    // When each command went out (microseconds since `epoch`), by id modulo the slots: the
    // acknowledgement names the id.
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..ACK_SLOTS).map(|_| AtomicU64::new(0)).collect());
    // The driver receives every event too: it reads them (or the server would find it stuck)
    // and times the acknowledgements of its own commands.
    let reader = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                if !latencies.recording() {
                    continue;
                }
                FRAMES_RECEIVED.fetch_add(1, Ordering::Relaxed);
                let Ok(reply) = serde_json::from_str::<Reply>(&text) else {
                    continue;
                };
                let Some(id) = reply.id.filter(|&id| id > 0) else {
                    continue;
                };
                match reply.t {
                    "ack" => {
                        let at = sent_at[(id % ACK_SLOTS as u64) as usize].load(Ordering::Relaxed);
                        let now = now_us();
                        latencies.ack((at > 0 && now >= at).then(|| now - at));
                    }
                    "error" => latencies.ack(None),
                    _ => {}
                }
            }
        })
    };
    let send =
        |frame: &ClientFrame| Message::text(serde_json::to_string(frame).unwrap_or_default());
    sink.send(send(&ClientFrame::Hello {
        v: 1,
        last_seq: None,
        epoch: None,
    }))
    .await?;
    // Something to seek in; its duration stays unknown (nothing to look it up from offline), so
    // it never ends under the load.
    sink.send(send(&ClientFrame::QueueAdd {
        id: 0,
        url: "https://www.youtube.com/watch?v=aqz-KE-bpKQ".into(),
    }))
    .await?;
    drop(permit);
    if !start.signalled.swap(true, Ordering::Relaxed) {
        start.started.fetch_add(1, Ordering::Relaxed);
    }
    // Rooms do not act in lockstep with each other: spread the drivers over the period (by a
    // phase taken from the room id), or every room's events would arrive as one burst.
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let phase = (room.0.as_u128() % 1000) as f64 / 1000.0;
    tokio::time::sleep(period.mul_f64(phase)).await;
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let result = loop {
        every.tick().await;
        let now_us = now_us();
        let id = n + 1;
        sent_at[(id % ACK_SLOTS as u64) as usize].store(now_us, Ordering::Relaxed);
        let frame = if n.is_multiple_of(2) {
            ClientFrame::Chat {
                id,
                text: format!("lg:{now_us}"),
            }
        } else {
            let position = (now_us % SEEK_MODULO_US) as f64 / 1e6;
            ClientFrame::Seek { id, position }
        };
        if let Err(err) = sink.send(send(&frame)).await {
            break Err(err.into());
        }
        n += 1;
        sent.fetch_add(1, Ordering::Relaxed);
        if reader.is_finished() {
            break Err(anyhow::anyhow!("the server closed the driver's connection"));
        }
    };
    reader.abort();
    result
}
