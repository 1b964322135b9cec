//! Poster frames for direct links: one frame that ffmpeg reads from the URL (through the media
//! proxy, like ffprobe), scaled down to a JPEG and kept in the store under a hash of the URL, so
//! the queue and the lobby show a picture of the video rather than a black square, from any node.
//!
//! ffmpeg writes the JPEG to its stdout (it may not create files: its file-size limit is 0), and
//! only a complete, bounded picture is kept; the store keeps the newest few thousand.

use super::probe::NETWORK_PROTOCOLS;
use super::process::{self, Limits};
use crate::clock::ServerClock;
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

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
    pub store: Store,
    pub clock: ServerClock,
    pub timeout: Duration,
    pub limits: Limits,
}

/// The name `url`'s poster and keyframes are kept under: 32 hex digits of its SHA-256.
pub fn url_key(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache name of `url`'s poster: [`url_key`], then `.jpg`.
pub fn file_name(url: &str) -> String {
    let mut name = url_key(url);
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
    /// The poster of `url` (its URL path), from the store or made now by ffmpeg reading through
    /// `proxy`; `None` when no frame could be had in time.
    pub async fn poster(&self, url: &str, proxy: &str, duration: Option<f64>) -> Option<String> {
        let name = file_name(url);
        match self.store.has_poster(&name).await {
            Ok(true) => return Some(url_path(&name)),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot look up a poster frame");
                return None;
            }
        }
        let jpeg = match self.make(url, proxy, frame_at(duration)).await {
            Ok(jpeg) => jpeg,
            Err(err) => {
                tracing::debug!(error = %err, "no poster frame");
                return None;
            }
        };
        match self.store.save_poster(&name, &jpeg, self.clock.now()).await {
            Ok(()) => Some(url_path(&name)),
            Err(err) => {
                tracing::warn!(error = %err, "could not keep a poster frame");
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
}
