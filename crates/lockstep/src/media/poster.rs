//! Poster frames for direct links: one frame that ffmpeg reads from the URL (through the media
//! proxy, like ffprobe), scaled down to a JPEG and cached on disk under a hash of the URL, so the
//! queue and the lobby show a picture of the video rather than a black square.
//!
//! The cache is bounded by count: past [`CACHE_FILES`] the oldest quarter goes. ffmpeg writes the
//! JPEG to its stdout (it may not create files: its file-size limit is 0), and only a complete,
//! bounded picture is written, through a temporary file and a rename.

use super::probe::NETWORK_PROTOCOLS;
use super::process::{self, Limits};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Posters kept on disk (about 15 KB each at 320 px wide).
pub const CACHE_FILES: usize = 4_000;
/// Largest poster accepted from ffmpeg.
const MAX_BYTES: usize = 512 * 1024;
/// Width of a poster in pixels (the queue shows 80-96 px, the lobby's cards about 300).
const WIDTH: u32 = 320;
/// Where in the video the frame is taken: a tenth of the way in, at most this far (a title card
/// or black at 0 s is common; seeking far costs time on slow servers).
const MAX_AT_SECS: f64 = 10.0;

/// Makes and keeps posters.
#[derive(Debug, Clone)]
pub struct Posters {
    pub program: PathBuf,
    pub dir: PathBuf,
    pub timeout: Duration,
    pub limits: Limits,
}

/// The cache name of `url`'s poster: 32 hex digits of its SHA-256, then `.jpg`.
pub fn file_name(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let mut name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    name.push_str(".jpg");
    name
}

/// Whether `name` is a name [`file_name`] gives (so nothing else is ever served from the cache).
pub fn is_file_name(name: &str) -> bool {
    name.strip_suffix(".jpg").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The URL the web client loads a poster from.
pub fn url_path(name: &str) -> String {
    format!("/media/posters/{name}")
}

/// When to take the frame in a video of `duration` seconds (unknown or live: the start).
pub fn frame_at(duration: Option<f64>) -> f64 {
    duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map_or(0.0, |d| (d / 10.0).min(MAX_AT_SECS))
}

/// Whether `bytes` look like a whole JPEG (start and end markers).
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() > 4 && bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9])
}

impl Posters {
    /// The path of a cached poster.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The poster of `url` (its URL path), from the cache or made now by ffmpeg reading through
    /// `proxy`; `None` when no frame could be had in time.
    pub async fn poster(&self, url: &str, proxy: &str, duration: Option<f64>) -> Option<String> {
        let name = file_name(url);
        let path = self.path(&name);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Some(url_path(&name));
        }
        match self.make(url, proxy, frame_at(duration)).await {
            Ok(jpeg) => match self.store(&name, &jpeg).await {
                Ok(()) => Some(url_path(&name)),
                Err(err) => {
                    tracing::warn!(error = %err, "could not keep a poster frame");
                    None
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "no poster frame");
                None
            }
        }
    }

    async fn make(&self, url: &str, proxy: &str, at: f64) -> anyhow::Result<Vec<u8>> {
        let at = format!("{at:.3}");
        let scale = format!("scale={WIDTH}:-2");
        let args = [
            "-v",
            "error",
            "-nostdin",
            "-hide_banner",
            "-protocol_whitelist",
            NETWORK_PROTOCOLS,
            "-http_proxy",
            proxy,
            "-rw_timeout",
            "5000000",
            "-ss",
            &at,
            "-i",
            url,
            "-frames:v",
            "1",
            "-an",
            "-vf",
            &scale,
            "-q:v",
            "5",
            "-f",
            "mjpeg",
            "pipe:1",
        ];
        let jpeg = process::run(&self.program, args, self.timeout, &self.limits).await?;
        anyhow::ensure!(
            is_jpeg(&jpeg),
            "ffmpeg gave no picture ({} bytes)",
            jpeg.len()
        );
        anyhow::ensure!(
            jpeg.len() <= MAX_BYTES,
            "the picture is too large ({} bytes)",
            jpeg.len()
        );
        Ok(jpeg)
    }

    async fn store(&self, name: &str, jpeg: &[u8]) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        prune(&self.dir, CACHE_FILES).await;
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, jpeg).await?;
        tokio::fs::rename(&tmp, self.path(name)).await
    }
}

/// Keeps at most `max` - 1 posters in `dir` (room for the next): the oldest quarter goes when
/// it is full.
async fn prune(dir: &Path, max: usize) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    let mut files = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        if let Ok(meta) = entry.metadata().await {
            files.push((meta.modified().ok(), entry.path()));
        }
    }
    if files.len() < max {
        return;
    }
    files.sort();
    for (_, path) in files.iter().take(max / 4 + files.len() + 1 - max) {
        let _ = tokio::fs::remove_file(path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hashes_and_nothing_else_passes() {
        let name = file_name("https://example.com/film.mp4");
        assert_eq!(name.len(), 36);
        assert!(is_file_name(&name));
        assert_ne!(name, file_name("https://example.com/film2.mp4"));
        for bad in [
            "../etc/passwd",
            "0123456789abcdef0123456789abcdef.png",
            "0123456789ABCDEF0123456789ABCDEF.jpg",
            "0123456789abcdef0123456789abcde.jpg",
            "0123456789abcdef0123456789abcdeg.jpg",
            "",
        ] {
            assert!(!is_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_frame_is_taken_early_but_not_at_zero() {
        assert_eq!(frame_at(None), 0.0);
        assert_eq!(frame_at(Some(f64::NAN)), 0.0);
        assert_eq!(frame_at(Some(20.0)), 2.0);
        assert_eq!(frame_at(Some(7200.0)), MAX_AT_SECS);
    }

    #[tokio::test]
    async fn the_cache_drops_its_oldest_quarter_when_full() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..8 {
            let path = dir.path().join(format!("{i}.jpg"));
            std::fs::write(&path, b"x").unwrap();
            let at = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
        prune(dir.path(), 8).await;
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["3.jpg", "4.jpg", "5.jpg", "6.jpg", "7.jpg"]);
        prune(dir.path(), 8).await;
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    }
}
