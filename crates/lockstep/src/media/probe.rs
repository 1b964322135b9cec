//! ffprobe: what a direct media URL holds (duration, container).

use super::process::{self, ProcessError};
use lockstep_core::media::DirectFormat;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// What ffprobe said about a media URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Seconds; `None` for live streams.
    pub duration: Option<f64>,
    pub format: DirectFormat,
    /// The container's title tag, if any.
    pub title: Option<String>,
    pub has_video: bool,
}

/// What ffprobe and ffmpeg may read a media URL with: http(s) and what HLS needs, never local
/// files.
pub const NETWORK_PROTOCOLS: &str = "http,https,tcp,tls,crypto,hls,httpproxy";

/// Runs ffprobe with a timeout and resource limits.
#[derive(Debug, Clone)]
pub struct Prober {
    pub program: PathBuf,
    pub timeout: Duration,
    pub limits: process::Limits,
}

#[derive(Debug, Deserialize)]
struct Output {
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    streams: Vec<Stream>,
}

#[derive(Debug, Deserialize)]
struct Format {
    #[serde(default)]
    format_name: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
}

#[derive(Debug, Deserialize)]
struct Tags {
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Stream {
    #[serde(default)]
    codec_type: String,
}

/// Why a probe gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("ffprobe printed something that is not its JSON: {0}")]
    Output(#[from] serde_json::Error),
    #[error("no audio or video stream found")]
    NoMedia,
}

impl Prober {
    /// Probes `url`, reading only over http(s) (and the protocols HLS needs), never local files,
    /// and only through `proxy` (the media proxy, which checks every connection).
    pub async fn probe(&self, url: &str, proxy: &str) -> Result<ProbeResult, ProbeError> {
        let args = [
            "-v",
            "error",
            "-hide_banner",
            "-protocol_whitelist",
            NETWORK_PROTOCOLS,
            "-http_proxy",
            proxy,
            // Give up on a stalled connection before the overall timeout.
            "-rw_timeout",
            "8000000",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "--",
            url,
        ];
        let stdout = process::run(&self.program, args, self.timeout, &self.limits).await?;
        parse(&stdout)
    }
}

fn parse(stdout: &[u8]) -> Result<ProbeResult, ProbeError> {
    let out: Output = serde_json::from_slice(stdout)?;
    let has_video = out.streams.iter().any(|s| s.codec_type == "video");
    let has_audio = out.streams.iter().any(|s| s.codec_type == "audio");
    if !has_video && !has_audio {
        return Err(ProbeError::NoMedia);
    }
    let format = out.format.as_ref();
    let names = format.map(|f| f.format_name.as_str()).unwrap_or_default();
    let format_kind = if names.contains("hls") {
        DirectFormat::Hls
    } else if names.contains("webm") || names.contains("matroska") {
        DirectFormat::Webm
    } else if names.contains("mp4") || names.contains("mov") {
        DirectFormat::Mp4
    } else {
        DirectFormat::Unknown
    };
    let duration = format
        .and_then(|f| f.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    let title = format
        .and_then(|f| f.tags.as_ref())
        .and_then(|t| t.title.clone())
        .filter(|t| !t.trim().is_empty());
    Ok(ProbeResult {
        duration,
        format: format_kind,
        title,
        has_video,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ffprobe_json() {
        let json = br#"{"streams":[{"codec_type":"video"},{"codec_type":"audio"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"12.480000","tags":{"title":"Film"}}}"#;
        let r = parse(json).unwrap();
        assert_eq!(
            r,
            ProbeResult {
                duration: Some(12.48),
                format: DirectFormat::Mp4,
                title: Some("Film".into()),
                has_video: true
            }
        );
        let live = br#"{"streams":[{"codec_type":"video"}],"format":{"format_name":"hls"}}"#;
        assert_eq!(parse(live).unwrap().duration, None);
        assert_eq!(parse(live).unwrap().format, DirectFormat::Hls);
        let nothing = br#"{"streams":[{"codec_type":"data"}],"format":{"format_name":"tty"}}"#;
        assert!(matches!(parse(nothing), Err(ProbeError::NoMedia)));
        assert!(matches!(parse(b"garbage"), Err(ProbeError::Output(_))));
    }
}
