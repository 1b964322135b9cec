//! Configuration: every setting is a command-line flag and a `LOCKSTEP_*` environment variable
//! (README.md has the table). Defaults run a complete single-node server with no other service.

use crate::throttle::{Rate, Rates};
use clap::{Parser, ValueEnum};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The server's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "lockstep", version, about = "Watch videos together, in sync.")]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "LOCKSTEP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the cookie key and uploads.
    #[arg(long, env = "LOCKSTEP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL. Defaults to the SQLite file `lockstep.db` in the data directory.
    #[arg(long, env = "LOCKSTEP_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis, for several nodes behind one load balancer (`redis://HOST:PORT`): what every node
    /// must hear (media job progress) goes through it. Unset: one node, everything in process.
    #[arg(long, env = "LOCKSTEP_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Where uploads and what jobs make from them are kept. Defaults to `uploads` in the data
    /// directory; with several nodes, a directory every node mounts (the same path on each).
    #[arg(long, env = "LOCKSTEP_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,

    /// The site's public URL (scheme://host[:port]), when behind a proxy or on another name than
    /// the Host header says. Used for the Origin check and to mark cookies Secure over https.
    #[arg(long, env = "LOCKSTEP_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Host names this server answers for, comma-separated (`*.example.com` for subdomains),
    /// besides the public URL's host, `localhost` and IP addresses. A request for any other name
    /// is refused (421): pages that rebind their own name to this server get nothing.
    #[arg(long, env = "LOCKSTEP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Serve `/metrics` on this separate address (say `127.0.0.1:9091`), without a token. By
    /// default `/metrics` is not served at all, unless `--metrics-token` is set.
    #[arg(long, env = "LOCKSTEP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Listen for Syncplay clients (desktop players) on this address, say `0.0.0.0:8999`. Off by
    /// default. The Syncplay room name is a Lockstep room's invite key (docs/syncplay.md).
    #[arg(long, env = "LOCKSTEP_SYNCPLAY_LISTEN")]
    pub syncplay_listen: Option<SocketAddr>,

    /// A PEM certificate chain for Syncplay's TLS upgrade (with `--syncplay-tls-key`). Without
    /// it Syncplay clients are told the server has no TLS and go on in the clear.
    #[arg(
        long,
        env = "LOCKSTEP_SYNCPLAY_TLS_CERT",
        requires = "syncplay_tls_key"
    )]
    pub syncplay_tls_cert: Option<PathBuf>,

    /// The PEM private key of `--syncplay-tls-cert`.
    #[arg(
        long,
        env = "LOCKSTEP_SYNCPLAY_TLS_KEY",
        requires = "syncplay_tls_cert"
    )]
    pub syncplay_tls_key: Option<PathBuf>,

    /// A token that lets `/metrics` be read on the main address with `Authorization: Bearer
    /// <token>`; without it `/metrics` there answers 404.
    #[arg(long, env = "LOCKSTEP_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Key that encrypts and signs session cookies: at least 64 bytes, base64. When absent, one
    /// is generated on first start and kept in `<data dir>/cookie.key`. All nodes of a cluster
    /// need the same key.
    #[arg(long, env = "LOCKSTEP_COOKIE_KEY", hide_env_values = true)]
    pub cookie_key: Option<String>,

    /// How long a session lives without being used, in seconds.
    #[arg(long, env = "LOCKSTEP_SESSION_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// A session token older than this (seconds) is replaced by a new one on its next use.
    /// 0 rotates on every request.
    #[arg(long, env = "LOCKSTEP_SESSION_ROTATE_SECS", default_value_t = 300)]
    pub session_rotate_secs: u64,

    /// How long (seconds) a replaced token is still accepted, so that tabs that sent requests
    /// with the old token at the same time are not logged out.
    #[arg(long, env = "LOCKSTEP_SESSION_GRACE_SECS", default_value_t = 60)]
    pub session_grace_secs: u64,

    /// How long (seconds) a room with no viewers keeps running before it is unloaded.
    #[arg(long, env = "LOCKSTEP_ROOM_IDLE_SECS", default_value_t = 600)]
    pub room_idle_secs: u64,

    /// How long (milliseconds) a viewer whose last tab disconnected still counts as present.
    #[arg(long, env = "LOCKSTEP_LEAVE_GRACE_MS", default_value_t = 5000)]
    pub leave_grace_ms: u64,

    /// Fan-out window (milliseconds): a room's events that come within this time of its last
    /// write to its viewers wait for the window's end and go out together, one write per viewer
    /// (the first event after a quiet spell goes out at once). 0 writes every event at once.
    #[arg(long, env = "LOCKSTEP_FANOUT_WINDOW_MS", default_value_t = 20)]
    pub fanout_window_ms: u64,

    /// Events each room keeps in memory for reconnecting clients to resume from.
    #[arg(long, env = "LOCKSTEP_EVENT_RING", default_value_t = 512)]
    pub event_ring: usize,

    /// Chat rate limit: lines per window, per user.
    #[arg(long, env = "LOCKSTEP_CHAT_RATE_LINES", default_value_t = 5)]
    pub chat_rate_lines: usize,

    /// Chat rate limit: the window, in seconds.
    #[arg(long, env = "LOCKSTEP_CHAT_RATE_WINDOW_SECS", default_value_t = 5)]
    pub chat_rate_window_secs: u64,

    /// Share of a room's members whose votes skip the current item (new rooms' default).
    #[arg(long, env = "LOCKSTEP_VOTE_SKIP_RATIO", default_value_t = 0.5)]
    pub vote_skip_ratio: f64,

    /// Frames per second a WebSocket client may send on average.
    #[arg(long, env = "LOCKSTEP_WS_FRAMES_PER_SEC", default_value_t = 20)]
    pub ws_frames_per_sec: u32,

    /// Frames a WebSocket client may send in a burst.
    #[arg(long, env = "LOCKSTEP_WS_FRAMES_BURST", default_value_t = 60)]
    pub ws_frames_burst: u32,

    /// YouTube Data API key. Without it, titles and thumbnails come from oEmbed and the
    /// duration from the first viewer's player.
    #[arg(long, env = "YOUTUBE_API_KEY", hide_env_values = true)]
    pub youtube_api_key: Option<String>,

    /// YouTube's oEmbed endpoint.
    #[arg(
        long,
        env = "LOCKSTEP_YOUTUBE_OEMBED_URL",
        default_value = "https://www.youtube.com/oembed"
    )]
    pub youtube_oembed_url: Url,

    /// Base URL of the YouTube Data API v3.
    #[arg(
        long,
        env = "LOCKSTEP_YOUTUBE_API_URL",
        default_value = "https://www.googleapis.com/youtube/v3/"
    )]
    pub youtube_api_url: Url,

    /// Where browsers load the YouTube IFrame Player API from.
    #[arg(
        long,
        env = "LOCKSTEP_YOUTUBE_IFRAME_API_URL",
        default_value = "https://www.youtube.com/iframe_api"
    )]
    pub youtube_iframe_api_url: Url,

    /// Where browsers without native HLS (Firefox) load hls.js from.
    #[arg(
        long,
        env = "LOCKSTEP_HLS_JS_URL",
        default_value = "https://cdn.jsdelivr.net/npm/hls.js@1.7.4/dist/hls.min.js"
    )]
    pub hls_js_url: Url,

    /// Subresource Integrity hash of the hls.js file (empty: none, for a self-hosted copy).
    #[arg(
        long,
        env = "LOCKSTEP_HLS_JS_INTEGRITY",
        default_value = "sha384-p9vgU/7IYJWd3I4STrtqxqR/2cAQlhIX7D/HrTnIMEjjcUox165b7se7sxmm3zDg"
    )]
    pub hls_js_integrity: String,

    /// The ffprobe program.
    #[arg(long, env = "LOCKSTEP_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,

    /// The ffmpeg program (media jobs).
    #[arg(long, env = "LOCKSTEP_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// Largest file one upload may be, in bytes (default 4 GiB).
    #[arg(long, env = "LOCKSTEP_UPLOAD_MAX_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// Total bytes of uploads one user may keep (default 20 GiB).
    #[arg(long, env = "LOCKSTEP_UPLOAD_QUOTA_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// Total bytes of uploads started from one client address, whoever started them (so that
    /// throwaway users cannot multiply the per-user quota; default 40 GiB).
    #[arg(long, env = "LOCKSTEP_UPLOAD_QUOTA_PER_ADDRESS_BYTES", default_value_t = 40 * 1024 * 1024 * 1024)]
    pub upload_quota_per_address_bytes: u64,

    /// How long (seconds) a user must have existed before they may upload (a brand-new
    /// anonymous user costs one request; this makes throwaway uploaders wait).
    #[arg(
        long,
        env = "LOCKSTEP_UPLOAD_MIN_ACCOUNT_AGE_SECS",
        default_value_t = 60
    )]
    pub upload_min_account_age_secs: u64,

    /// An upload left unfinished this long (seconds) is deleted.
    #[arg(long, env = "LOCKSTEP_UPLOAD_EXPIRY_SECS", default_value_t = 24 * 3600)]
    pub upload_expiry_secs: u64,

    /// Longest video accepted, in seconds (checked from ffprobe before any job runs).
    #[arg(long, env = "LOCKSTEP_UPLOAD_MAX_DURATION_SECS", default_value_t = 12 * 3600)]
    pub upload_max_duration_secs: u64,

    /// Largest picture accepted, in pixels a frame (width times height; default 4096x2160).
    #[arg(long, env = "LOCKSTEP_UPLOAD_MAX_PIXELS", default_value_t = 4096 * 2160)]
    pub upload_max_pixels: u64,

    /// Highest frame rate accepted, in frames a second.
    #[arg(long, env = "LOCKSTEP_UPLOAD_MAX_FPS", default_value_t = 120)]
    pub upload_max_fps: u32,

    /// Most streams (video, audio, subtitles...) one file may hold.
    #[arg(long, env = "LOCKSTEP_UPLOAD_MAX_STREAMS", default_value_t = 16)]
    pub upload_max_streams: usize,

    /// Longest upload, in seconds, that is transcoded (a keyframe every second) because its
    /// keyframes are sparse, when it could be served as it is or remuxed: every viewer's landing
    /// (a join, a seek, a play) decodes from the keyframe before its point, but a transcode
    /// takes about as long as the video on two cores at 1080p. Longer ones keep their own
    /// keyframes; 0: none is transcoded for that.
    #[arg(
        long,
        env = "LOCKSTEP_UPLOAD_TRANSCODE_SPARSE_MAX_SECS",
        default_value_t = 600
    )]
    pub upload_transcode_sparse_max_secs: u64,

    /// Address space one ffmpeg or ffprobe process may use, in bytes (default 3 GiB; a 4K
    /// transcode needs about 1 GiB here). Applied with prlimit.
    #[arg(long, env = "LOCKSTEP_JOB_MEMORY_BYTES", default_value_t = 3 * 1024 * 1024 * 1024)]
    pub job_memory_bytes: u64,

    /// Most CPU time one ffmpeg run may use, in seconds; each job gets less, by its kind and
    /// the video's length (see docs/security.md).
    #[arg(long, env = "LOCKSTEP_JOB_CPU_SECS", default_value_t = 12 * 3600)]
    pub job_cpu_secs: u64,

    /// Media jobs (ffmpeg) run at once; 0 means half the CPU cores (at least one). One more
    /// worker runs only quick jobs (posters, thumbnails, storyboards), so a long transcode
    /// never makes everyone else's posters wait.
    #[arg(long, env = "LOCKSTEP_JOB_CONCURRENCY", default_value_t = 0)]
    pub job_concurrency: usize,

    /// Attempts a media job gets before it stays failed.
    #[arg(long, env = "LOCKSTEP_JOB_MAX_ATTEMPTS", default_value_t = 3)]
    pub job_max_attempts: u32,

    /// The wait (milliseconds) before a failed media job's first retry; it doubles each time.
    #[arg(long, env = "LOCKSTEP_JOB_RETRY_BASE_MS", default_value_t = 5000)]
    pub job_retry_base_ms: u64,

    /// How long (seconds) one ffmpeg run of a media job may take.
    #[arg(long, env = "LOCKSTEP_JOB_TIMEOUT_SECS", default_value_t = 6 * 3600)]
    pub job_timeout_secs: u64,

    /// How long (seconds) ffprobe may take to read a media URL.
    #[arg(long, env = "LOCKSTEP_PROBE_TIMEOUT_SECS", default_value_t = 10)]
    pub probe_timeout_secs: u64,

    /// Allow media URLs on loopback and private networks (off by default, so that the queue
    /// cannot make the server fetch from its own network).
    #[arg(long, env = "LOCKSTEP_ALLOW_PRIVATE_MEDIA", default_value_t = false)]
    pub allow_private_media: bool,

    /// Private networks media may be fetched from all the same (comma-separated, e.g. a LAN
    /// media server at `192.168.1.0/24`), when `--allow-private-media` is off.
    #[arg(long, env = "LOCKSTEP_MEDIA_ALLOW_NETWORKS", value_delimiter = ',')]
    pub media_allow_networks: Vec<IpNet>,

    /// Log format.
    #[arg(
        long,
        env = "LOCKSTEP_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    /// Proxies (addresses or networks, comma-separated) whose `X-Forwarded-For` is believed:
    /// requests through them are counted by the address they forwarded for. Empty: the
    /// connection's address is the client's (nothing in the request can change it).
    #[arg(long, env = "LOCKSTEP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Room password guesses per client address (`N/s`, `N/min`, `N/h`, `N/day`, or `off`).
    #[arg(
        long,
        env = "LOCKSTEP_LIMIT_PASSWORD_GUESSES",
        default_value = "10/min"
    )]
    pub limit_password_guesses: Rate,

    /// Password guesses per room, from everyone together.
    #[arg(
        long,
        env = "LOCKSTEP_LIMIT_PASSWORD_GUESSES_PER_ROOM",
        default_value = "30/min"
    )]
    pub limit_password_guesses_per_room: Rate,

    /// New (anonymous) users per client address.
    #[arg(long, env = "LOCKSTEP_LIMIT_NEW_USERS", default_value = "100/h")]
    pub limit_new_users: Rate,

    /// Rooms created per client address.
    #[arg(long, env = "LOCKSTEP_LIMIT_ROOMS", default_value = "30/h")]
    pub limit_rooms: Rate,

    /// Uploads started per client address.
    #[arg(long, env = "LOCKSTEP_LIMIT_UPLOADS", default_value = "30/h")]
    pub limit_uploads: Rate,

    /// Chat lines per client address, all its users and rooms together (each user also has the
    /// room's own limit, `--chat-rate-lines`).
    #[arg(long, env = "LOCKSTEP_LIMIT_CHAT", default_value = "60/min")]
    pub limit_chat: Rate,

    /// API, page and media requests per client address (a room page's first load makes about
    /// ten; a WebSocket counts once, when it connects; static files are not counted).
    #[arg(long, env = "LOCKSTEP_LIMIT_REQUESTS", default_value = "1200/min")]
    pub limit_requests: Rate,

    /// Open connections in total; 0 sizes it to the process's open-files limit (less a reserve
    /// for the database, uploads and ffmpeg). Over the cap a connection gets 503.
    #[arg(long, env = "LOCKSTEP_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Open connections from one client address (an IPv6 /64 counts as one); 0: no cap.
    /// Trusted proxies are exempt.
    #[arg(
        long,
        env = "LOCKSTEP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// How long (seconds) a client may take to send a request's headers, and may stay silent
    /// between requests on a kept-alive connection.
    #[arg(long, env = "LOCKSTEP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// How long (seconds) an upload body may send nothing, and a write to a client may make no
    /// progress, before the connection is closed.
    #[arg(long, env = "LOCKSTEP_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// How long (seconds) a room's WebSocket may send nothing before it is dropped: after half of
    /// it the server pings (browsers answer pings themselves, in a hidden tab too), and with
    /// nothing back by the whole the viewer is gone. A phone that lost its network stayed in
    /// People, and held a room waiting for everyone if it was buffering, for the idle timeout.
    #[arg(long, env = "LOCKSTEP_WS_SILENCE_SECS", default_value_t = 30)]
    pub ws_silence_secs: u64,

    /// How long (seconds) a ban also bars the addresses the banned user came from (their
    /// sessions' and live connections'), so that clearing cookies does not walk them back in;
    /// 0: bans bind only the user.
    #[arg(long, env = "LOCKSTEP_BAN_ADDRESS_SECS", default_value_t = 24 * 3600)]
    pub ban_address_secs: u64,

    /// Users made this long ago (seconds) who never did anything (no room, visit, upload, saved
    /// video, playlist or chat line) and have not been back since are deleted.
    #[arg(long, env = "LOCKSTEP_PURGE_IDLE_USERS_SECS", default_value_t = 24 * 3600)]
    pub purge_idle_users_secs: u64,

    /// How long (seconds) a REST request may take.
    #[arg(long, env = "LOCKSTEP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// How long (seconds) shutdown waits for rooms to save and connections to close.
    #[arg(long, env = "LOCKSTEP_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// The delay (milliseconds) clients are told to wait before reconnecting after a shutdown.
    #[arg(long, env = "LOCKSTEP_RECONNECT_AFTER_MS", default_value_t = 1000)]
    pub reconnect_after_ms: u64,
}

impl Config {
    /// The configuration with every default, storing under `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Config::parse_from(["lockstep"]);
        config.data_dir = data_dir.into();
        config
    }

    /// The database URL to connect to.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("lockstep.db").display()
            )
        })
    }

    pub fn room_idle(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub fn ws_silence(&self) -> Duration {
        Duration::from_secs(self.ws_silence_secs.max(2))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Where uploads and what is made from them are kept.
    pub fn uploads_dir(&self) -> PathBuf {
        self.media_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads"))
    }

    /// The rate limits, as configured.
    pub fn rates(&self) -> Rates {
        Rates {
            password_guesses_per_address: self.limit_password_guesses,
            password_guesses_per_room: self.limit_password_guesses_per_room,
            new_users_per_address: self.limit_new_users,
            rooms_per_address: self.limit_rooms,
            uploads_per_address: self.limit_uploads,
            chat_per_address: self.limit_chat,
            requests_per_address: self.limit_requests,
        }
    }

    /// What an upload may be.
    pub fn media_limits(&self) -> crate::media::video::MediaLimits {
        crate::media::video::MediaLimits {
            max_duration_secs: self.upload_max_duration_secs as f64,
            max_pixels: self.upload_max_pixels,
            max_fps: f64::from(self.upload_max_fps),
            max_streams: self.upload_max_streams,
        }
    }

    /// Media jobs that run at once.
    pub fn job_workers(&self) -> usize {
        if self.job_concurrency > 0 {
            return self.job_concurrency;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores / 2).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_a_local_server() {
        let c = Config::parse_from(["lockstep"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/lockstep.db?mode=rwc");
        assert_eq!(c.room_idle(), Duration::from_secs(600));
        assert_eq!(c.ws_silence(), Duration::from_secs(30));
        assert_eq!(c.chat_rate_lines, 5);
        assert!(!c.allow_private_media);
    }

    #[test]
    fn the_readme_lists_every_setting() {
        use clap::CommandFactory;
        let readme = include_str!("../../../README.md");
        for arg in Config::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            assert!(
                readme.contains(&format!("`--{long}`")),
                "--{long} is not in README.md"
            );
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    readme.contains(&format!("`{env}`")),
                    "{env} is not in README.md"
                );
            }
        }
    }

    #[test]
    fn flags_override() {
        let c = Config::parse_from([
            "lockstep",
            "--listen",
            "0.0.0.0:9000",
            "--room-idle-secs",
            "5",
            "--log-format",
            "json",
        ]);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.room_idle_secs, 5);
        assert_eq!(c.log_format, LogFormat::Json);
    }
}
