//! Test harness: a real server on 127.0.0.1:0 with its own SQLite file, typed clients, generated
//! media served over local HTTP, and a stand-in for YouTube that answers in YouTube's format.

use axum::Router;
use lockstep::{AppState, Config};
use lockstep_client::Api;
use lockstep_core::ids::RoomId;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Test defaults: no leave grace (leaves are immediate and deterministic), local media allowed,
/// no wait before a new user may upload, and YouTube pointed at a closed local port so that
/// nothing leaves the machine.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.leave_grace_ms = 0;
    config.allow_private_media = true;
    config.youtube_oembed_url = "http://127.0.0.1:9/oembed".parse().unwrap();
    config.youtube_api_url = "http://127.0.0.1:9/youtube/v3/".parse().unwrap();
    config.shutdown_grace_secs = 5;
    // Tests upload as soon as their user exists; the wait is tested on its own (abuse.rs).
    config.upload_min_account_age_secs = 0;
    config.database_url = test_database(dir);
    config
}

/// The database of a test that keeps its data in `dir`: `None` for the SQLite file in it (the
/// default), or its own database on this process's throwaway PostgreSQL server when the suite
/// runs with `LOCKSTEP_TEST_DATABASE=postgres` (the same one again for the same folder, so a
/// test that restarts its server finds its data).
pub fn test_database(dir: &Path) -> Option<String> {
    lockstep_testkit::use_postgres().then(|| lockstep_testkit::postgres::database_for(dir))
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    spawn_in(dir, tweak).await
}

/// A server on an existing data directory (to restart on the same database).
pub async fn spawn_in(dir: Arc<TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = lockstep::build_state(config)
        .await
        .expect("the server starts");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(lockstep::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        state,
        dir,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// A new "browser" with its own cookie jar.
    pub fn api(&self) -> Api {
        Api::new(&self.base).expect("a client")
    }

    /// Shuts down gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the server task")
                .expect("a clean shutdown");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        }
    });
}

/// Starts the real `lockstep` binary on a free port; returns it and its base URL.
pub async fn start_binary(data_dir: &Path) -> (Child, String) {
    start_binary_with(data_dir, &[]).await
}

/// [`start_binary`] with more arguments.
pub async fn start_binary_with(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    start_binary_as(
        Command::new(env!("CARGO_BIN_EXE_lockstep")),
        data_dir,
        extra,
    )
    .await
}

/// [`start_binary_with`] under a wrapper command (`prlimit --nofile=...`, say) that ends with
/// the program to run; `lockstep` is appended to it.
pub async fn start_binary_under(
    wrapper: &[&str],
    data_dir: &Path,
    extra: &[&str],
) -> (Child, String) {
    let mut command = Command::new(wrapper[0]);
    command
        .args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_lockstep"));
    start_binary_as(command, data_dir, extra).await
}

async fn start_binary_as(mut command: Command, data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--leave-grace-ms",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(
            test_database(data_dir)
                .filter(|_| !extra.contains(&"--database-url"))
                .map(|url| vec!["--database-url".to_owned(), url])
                .unwrap_or_default(),
        )
        .args([
            "--allow-private-media",
            "--youtube-oembed-url",
            "http://127.0.0.1:9/oembed",
            "--upload-min-account-age-secs",
            "0",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the lockstep binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["fields"]["address"].as_str()
            {
                return addr.to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server announces its address");
    // Keep draining its logs so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{address}"))
}

/// Peak and current resident memory of a process, in bytes, from `/proc/PID/status`.
pub fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is there");
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
    };
    (kib("VmHWM:") * 1024, kib("VmRSS:") * 1024)
}

/// Creates a public room as `api` and returns its id.
pub async fn public_room(api: &Api) -> RoomId {
    api.create_room(&json!({ "name": "Movie night" }))
        .await
        .unwrap()
}

/// Generated test videos, made once per test run with the real ffmpeg.
pub struct Media {
    pub dir: PathBuf,
}

/// Makes (once) a directory with `clip2s.mp4` (2 s, H.264/AAC) and `clip3s.webm` (3 s, VP9/Opus)
/// and `notvideo.mp4` (text); tests make other files in it as they need them.
///
/// One per test process, under cargo's `target/tmp`; those of processes no longer running are
/// deleted first. (In the system's temporary directory, one was left behind by every run.)
pub fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("test-media-"))
                    .and_then(|pid| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(format!("test-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ffmpeg = |args: &[&str]| {
            let status = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(args)
                .status()
                .expect("ffmpeg is installed (./scripts/test installs it)");
            assert!(status.success(), "ffmpeg {args:?} failed");
        };
        let mp4 = dir.join("clip2s.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
            "-metadata",
            "title=Test Pattern",
            mp4.to_str().unwrap(),
        ]);
        let webm = dir.join("clip3s.webm");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=160x120:rate=15",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=3",
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "100k",
            "-c:a",
            "libopus",
            "-shortest",
            webm.to_str().unwrap(),
        ]);
        std::fs::write(dir.join("notvideo.mp4"), b"this is just text\n").unwrap();
        Media { dir }
    })
}

/// Serves `app` over HTTP on a free port of `ip`; returns its base URL.
pub async fn serve_on(ip: &str, app: Router) -> String {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Serves `app` over HTTP on a free port of 127.0.0.1; returns its base URL.
pub async fn serve(app: Router) -> String {
    serve_on("127.0.0.1", app).await
}

/// Serves `dir` over HTTP on a free local port (with Range support, as a CDN would).
pub async fn serve_dir(dir: &Path) -> String {
    serve(Router::new().fallback_service(tower_http::services::ServeDir::new(dir))).await
}

/// The test clip as MPEG-TS (an HLS segment, or a live feed served over and over), made once.
pub fn clip_ts() -> PathBuf {
    let ts = media().dir.join("clip-segment.ts");
    if !ts.exists() {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(media().dir.join("clip2s.mp4"))
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(&ts)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    ts
}

/// YouTube's oEmbed answer for a video, as YouTube sends it.
pub fn oembed_body(video_id: &str, title: &str) -> Value {
    json!({
        "title": title,
        "author_name": "Test Channel",
        "author_url": "https://www.youtube.com/@testchannel",
        "type": "video",
        "height": 113,
        "width": 200,
        "version": "1.0",
        "provider_name": "YouTube",
        "provider_url": "https://www.youtube.com/",
        "thumbnail_height": 360,
        "thumbnail_width": 480,
        "thumbnail_url": format!("https://i.ytimg.com/vi/{video_id}/hqdefault.jpg"),
        "html": format!("<iframe width=\"200\" height=\"113\" src=\"https://www.youtube.com/embed/{video_id}?feature=oembed\" frameborder=\"0\" allowfullscreen title=\"{title}\"></iframe>")
    })
}

/// The Data API's `videos.list` answer for one video, as YouTube sends it.
pub fn videos_list_body(video_id: &str, title: &str, iso_duration: &str) -> Value {
    let thumb = |name: &str, w: u32, h: u32| json!({ "url": format!("https://i.ytimg.com/vi/{video_id}/{name}.jpg"), "width": w, "height": h });
    json!({
        "kind": "youtube#videoListResponse",
        "etag": "abc123",
        "items": [{
            "kind": "youtube#video",
            "etag": "def456",
            "id": video_id,
            "snippet": {
                "publishedAt": "2009-10-25T06:57:33Z",
                "channelId": "UCuAXFkgsw1L7xaCfnd5JJOw",
                "title": title,
                "description": "A test video",
                "thumbnails": {
                    "default": thumb("default", 120, 90),
                    "medium": thumb("mqdefault", 320, 180),
                    "high": thumb("hqdefault", 480, 360)
                },
                "channelTitle": "Test Channel",
                "categoryId": "10",
                "liveBroadcastContent": "none",
                "localized": { "title": title, "description": "A test video" }
            },
            "contentDetails": {
                "duration": iso_duration,
                "dimension": "2d",
                "definition": "hd",
                "caption": "false",
                "licensedContent": true,
                "contentRating": {},
                "projection": "rectangular"
            },
            "status": {
                "uploadStatus": "processed",
                "privacyStatus": "public",
                "license": "youtube",
                "embeddable": true,
                "publicStatsViewable": true,
                "madeForKids": false
            }
        }],
        "pageInfo": { "totalResults": 1, "resultsPerPage": 1 }
    })
}
