//! `lockstep-loadgen`: opens N WebSocket viewers across M rooms of a running Lockstep server,
//! drives chat and seeks in every room at a chosen rate, and reports how long events take to
//! reach viewers (p50/p99/max) and how much server memory each connection costs.
//!
//! Latency is measured inside this one process, on one monotonic clock: each driven command
//! carries its send time (in the chat text, or encoded in the seek position), and every viewer
//! that receives the resulting event subtracts it from the time of receipt. Server memory comes
//! from the server's own `/metrics` (`lockstep_process_resident_memory_bytes`), read before the
//! viewers connect and after, while they sit idle.
//!
//! Only talks to the given URL; use it against 127.0.0.1.

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use lockstep_client::Api;
use lockstep_core::ids::RoomId;
use lockstep_core::protocol::ClientFrame;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// Other nodes of the same cluster: each room's viewers are spread over `--url` and these
    /// (the rooms are made, driven and measured through `--url`).
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
    /// The server's `--metrics-token`, to read its memory from `/metrics`.
    #[arg(long, env = "LOCKSTEP_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: String,
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
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
    let epoch = Instant::now();
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
    let rss_before = server_rss(&probe).await?;

    // Sessions made ahead, for returning viewers.
    let mut cookies: Vec<Option<String>> = vec![None; args.viewers];
    if args.returning {
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

    // Viewers.
    eprintln!("connecting {} viewers", args.viewers);
    let latencies = Arc::new(Latencies::new());
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let connect_started = Instant::now();
    let mut viewers = Vec::with_capacity(args.viewers);
    let nodes: Vec<&str> = std::iter::once(args.url.as_str())
        .chain(args.node_urls.iter().map(String::as_str))
        .collect();
    for v in 0..args.viewers {
        let (host, room) = &rooms[v % args.rooms];
        // The room's viewers take turns between the nodes (its session is good on every node).
        let node = nodes[(v / args.rooms) % nodes.len()];
        let url = host.rebased(node).ws_url(*room);
        let cookie = cookies[v].take();
        let (latencies, joined, failed, gate) = (
            latencies.clone(),
            joined.clone(),
            failed.clone(),
            gate.clone(),
        );
        viewers.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            match viewer(&url, cookie, v, epoch, latencies, joined.clone(), permit).await {
                Ok(()) => {}
                Err(err) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("viewer {v}: {err:#}");
                    }
                }
            }
        }));
    }
    while joined.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < args.viewers {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = joined.load(Ordering::Relaxed);
    eprintln!(
        "{connected} joined, {} failed, in {connect_secs:.1} s; settling {} s",
        failed.load(Ordering::Relaxed),
        args.settle
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let rss_idle = server_rss(&probe).await?;

    // Drive every room and measure.
    eprintln!(
        "driving {} commands/s in each room for {} s",
        args.rate, args.duration
    );
    let sent = Arc::new(AtomicU64::new(0));
    let mut drivers = Vec::new();
    for (host, room) in &rooms {
        let (host, room, sent, latencies) = (host.clone(), *room, sent.clone(), latencies.clone());
        let rate = args.rate;
        drivers.push(tokio::spawn(async move {
            if let Err(err) = drive(host, room, rate, epoch, &sent, latencies).await {
                eprintln!("driver of room {room}: {err:#}");
            }
        }));
    }
    // Let the drivers join and send their first item before recording.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = args.server_pid.map(server_cpu_secs).transpose()?;
    latencies.recording.store(true, Ordering::Relaxed);
    let measure_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    latencies.recording.store(false, Ordering::Relaxed);
    let measured_secs = measure_started.elapsed().as_secs_f64();
    let cpu_after = args.server_pid.map(server_cpu_secs).transpose()?;
    let rss_busy = server_rss(&probe).await?;
    for d in drivers {
        d.abort();
    }
    let sent = sent.load(Ordering::Relaxed);
    for v in viewers {
        v.abort();
    }

    let h = latencies.merged();
    let delivered = latencies.delivered.load(Ordering::Relaxed);
    let per_conn = (rss_idle.saturating_sub(rss_before)) as f64 / connected.max(1) as f64;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "viewers {connected} (failed {}), rooms {}, {:.0} viewers per room",
        failed.load(Ordering::Relaxed),
        args.rooms,
        args.viewers as f64 / args.rooms as f64
    );
    println!(
        "connect: {connect_secs:.1} s ({:.0} joins/s)",
        connected as f64 / connect_secs
    );
    println!(
        "server RSS: {:.1} MiB before, {:.1} MiB with idle viewers, {:.1} MiB while driven",
        rss_before as f64 / 1048576.0,
        rss_idle as f64 / 1048576.0,
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
    let frames = FRAMES_RECEIVED.load(Ordering::Relaxed);
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
    if let Some(cpu) = cpu.filter(|_| frames > 0) {
        results.push((
            "server_cpu_per_delivery",
            cpu * 1e6 / frames.max(1) as f64,
            "us",
            2,
        ));
        results.push(("server_cores", cpu / measured_secs, "cores", 2));
    }
    for (name, value, unit, decimals) in results {
        println!("RESULT {p}{name} {value:.decimals$} {unit}");
    }
    Ok(())
}

/// One viewer: joins, then measures every driven event it receives until aborted.
async fn viewer(
    url: &str,
    cookie: Option<String>,
    index: usize,
    epoch: Instant,
    latencies: Arc<Latencies>,
    joined: Arc<AtomicUsize>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    // Small buffers: ten thousand of these live in this process too.
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("connect")?;
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
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        if latencies.recording() {
            FRAMES_RECEIVED.fetch_add(1, Ordering::Relaxed);
        }
        let now_us = epoch.elapsed().as_micros() as u64;
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
    Ok(())
}

/// Sends `rate` commands per second to `room`, alternating chat lines and seeks, each carrying
/// its send time, until aborted; counts them in `sent`.
async fn drive(
    host: Api,
    room: RoomId,
    rate: f64,
    epoch: Instant,
    sent: &AtomicU64,
    latencies: Arc<Latencies>,
) -> anyhow::Result<()> {
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
                        let now = epoch.elapsed().as_micros() as u64;
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
        let now_us = epoch.elapsed().as_micros() as u64;
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
