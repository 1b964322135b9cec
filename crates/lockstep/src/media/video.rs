//! Uploaded videos: checking that a file is a video, and what each media job runs.
//!
//! Everything goes through [`super::process`]. ffmpeg reports progress on stdout
//! (`-progress pipe:1`): `out_time_us=` lines (microseconds, despite the older `out_time_ms` name)
//! and `progress=end` at the end.

use super::process::{self, Limits, ProcessError};
use crate::store::uploads::{MediaInfo, SubtitleTrack};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Storyboard thumbnails: size and sheet layout.
pub const THUMB_WIDTH: u32 = 160;
pub const THUMB_HEIGHT: u32 = 90;
pub const SHEET_COLUMNS: u32 = 10;
pub const SHEET_ROWS: u32 = 10;

/// What an upload may be, checked from what ffprobe reads in its headers, before anything
/// decodes it. A 1.3 KB file can claim ten million seconds or 16000x16000 frames; its jobs then
/// write gigabytes or allocate them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaLimits {
    pub max_duration_secs: f64,
    /// Width times height of the largest video stream.
    pub max_pixels: u64,
    pub max_fps: f64,
    pub max_streams: usize,
}

/// Why an upload is not accepted as a video. Shown to its owner.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Rejection {
    #[error("the video is {duration:.0} s long; the most this server accepts is {max:.0} s")]
    TooLong { duration: f64, max: f64 },
    #[error(
        "the picture is {width}x{height}; the most this server accepts is {max} pixels a frame"
    )]
    TooManyPixels { width: u64, height: u64, max: u64 },
    #[error("the video has {fps:.0} frames a second; the most this server accepts is {max:.0}")]
    TooManyFrames { fps: f64, max: f64 },
    #[error("the file has {count} streams; the most this server accepts is {max}")]
    TooManyStreams { count: usize, max: usize },
    #[error("the file is empty")]
    Empty,
    #[error("this is not a video file ({0})")]
    NotVideo(String),
    #[error("this is a still image, not a video")]
    Image,
    #[error("the video is damaged or incomplete ({0})")]
    Damaged(String),
    #[error("the video could not be checked: {0}")]
    Tool(String),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    #[serde(default)]
    codec_type: String,
    #[serde(default)]
    codec_name: String,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default)]
    avg_frame_rate: Option<String>,
    #[serde(default)]
    r_frame_rate: Option<String>,
    #[serde(default)]
    pix_fmt: Option<String>,
    #[serde(default)]
    color_transfer: Option<String>,
    #[serde(default)]
    field_order: Option<String>,
    #[serde(default)]
    disposition: Option<Disposition>,
    #[serde(default)]
    index: u32,
    #[serde(default)]
    tags: Option<Tags>,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
    #[serde(default)]
    default: u8,
    #[serde(default)]
    forced: u8,
}

#[derive(Deserialize, Default)]
struct Tags {
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl ProbeStream {
    /// Cover art is a video stream of one picture, not the video.
    fn is_picture(&self) -> bool {
        self.disposition
            .as_ref()
            .is_some_and(|d| d.attached_pic != 0)
    }

    /// Frames a second: the average (frames over duration), or ffprobe's guess of the base rate
    /// when there is no average (`0/0`).
    fn fps(&self) -> Option<f64> {
        let rate = |r: &Option<String>| {
            let (n, d) = r.as_deref()?.split_once('/')?;
            let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
            (d > 0.0 && n > 0.0).then_some(n / d)
        };
        rate(&self.avg_frame_rate).or_else(|| rate(&self.r_frame_rate))
    }
}

#[derive(Deserialize)]
struct ProbeFormat {
    #[serde(default)]
    format_name: String,
    duration: Option<String>,
}

/// Reads what ffprobe says about a local file, only as a file (no other protocols).
async fn ffprobe_json(
    ffprobe: &Path,
    file: &Path,
    timeout: Duration,
    limits: &Limits,
) -> Result<Vec<u8>, ProcessError> {
    let args = ffprobe_args(
        &["-print_format", "json", "-show_format", "-show_streams"],
        file,
    );
    process::run(ffprobe, args, timeout, limits).await
}

/// ffprobe's arguments to read `file` with `options`, only as a local file (no other protocol:
/// a file can name URLs for ffprobe to follow), quietly but for errors.
fn ffprobe_args(options: &[&str], file: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["-v", "error", "-protocol_whitelist", "file"]
        .iter()
        .chain(options)
        .chain(&["--"])
        .map(Into::into)
        .collect();
    args.push(file.as_os_str().to_owned());
    args
}

/// Checks that `file` is a whole video within `media_limits` and says what it holds. A
/// truncated file whose index is at the start probes fine, so the last seconds are decoded too
/// (only once the limits passed): a missing end shows up there. The tools run under `limits`.
pub async fn check_upload(
    ffprobe: &Path,
    ffmpeg: &Path,
    file: &Path,
    timeout: Duration,
    media_limits: &MediaLimits,
    limits: &Limits,
) -> Result<MediaInfo, Rejection> {
    let size = tokio::fs::metadata(file)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if size == 0 {
        return Err(Rejection::Empty);
    }
    let json = match ffprobe_json(ffprobe, file, timeout, limits).await {
        Ok(json) => json,
        Err(ProcessError::Failed { stderr, .. }) => {
            return Err(Rejection::NotVideo(short(&stderr)));
        }
        Err(other) => return Err(Rejection::Tool(other.to_string())),
    };
    let probe: Probe = serde_json::from_slice(&json).map_err(|e| Rejection::Tool(e.to_string()))?;
    let info = judge(probe, media_limits)?;
    // Decode the last two seconds; -xerror turns a damaged packet into a failure.
    let mut args: Vec<std::ffi::OsString> = [
        "-v",
        "error",
        "-xerror",
        "-protocol_whitelist",
        "file",
        "-sseof",
        "-2",
        "-i",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(file.as_os_str().to_owned());
    args.extend(["-f", "null", "-"].iter().map(Into::into));
    match process::run(ffmpeg, args, timeout, limits).await {
        Ok(_) => {}
        Err(ProcessError::Failed { stderr, .. }) => return Err(Rejection::Damaged(short(&stderr))),
        Err(other) => return Err(Rejection::Tool(other.to_string())),
    }
    Ok(info)
}

/// The text subtitle tracks of `file` ([`subtitle_tracks`]), read again by ffprobe: for an
/// upload checked before they were kept.
pub async fn subtitle_streams(
    ffprobe: &Path,
    file: &Path,
    timeout: Duration,
    limits: &Limits,
) -> anyhow::Result<Vec<SubtitleTrack>> {
    let json = ffprobe_json(ffprobe, file, timeout, limits).await?;
    let probe: Probe = serde_json::from_slice(&json)?;
    Ok(subtitle_tracks(&probe.streams))
}

/// Most keyframes kept of one video. Past this many (a keyframe every frame or two, as an
/// intra-only stream has), every seek lands on or next to one, there is nothing to plan for, and
/// none are kept: the list is empty, as for a video with none.
pub const MAX_KEYFRAMES: usize = 100_000;

/// The times (s) of the keyframes of `file`'s first video stream, ascending, read from its
/// packets' flags (ffprobe demuxes the file and decodes nothing): what a browser's seek decodes
/// from. Empty when there are more than [`MAX_KEYFRAMES`].
pub async fn keyframes(
    ffprobe: &Path,
    file: &Path,
    timeout: Duration,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Result<Vec<f64>, ProcessError> {
    let args = ffprobe_args(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=print_section=0",
        ],
        file,
    );
    let mut times = Vec::new();
    let mut too_many = false;
    process::run_streaming(ffprobe, args, timeout, limits, cancel, |line| {
        if let Some(t) = keyframe_time(line) {
            if times.len() < MAX_KEYFRAMES {
                times.push(t);
            } else {
                too_many = true;
            }
        }
    })
    .await?;
    if too_many {
        return Ok(Vec::new());
    }
    // Packets come in decoding order; keyframes are presented in it too, but a stream may say
    // otherwise.
    times.sort_by(f64::total_cmp);
    times.dedup_by(|a, b| (*a - *b).abs() < 0.000_5);
    Ok(times)
}

/// The presentation time of a keyframe packet from one line of `-show_entries
/// packet=pts_time,flags -of csv=print_section=0` (`12.345000,K__`); `None` for any other
/// packet, or a time that is missing (`N/A`) or negative (before the start: not shown).
pub fn keyframe_time(line: &str) -> Option<f64> {
    let (time, flags) = line.trim().split_once(',')?;
    if !flags.starts_with('K') {
        return None;
    }
    time.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
}

/// The keyframes file an upload's page reads (`keyframes.json`): times rounded to the
/// millisecond.
pub fn keyframes_json(times: &[f64]) -> String {
    let ms: Vec<f64> = times
        .iter()
        .map(|t| (t * 1000.0).round() / 1000.0)
        .collect();
    serde_json::json!({ "keyframes": ms }).to_string()
}

/// Decides from ffprobe's answer whether the file is a video within the limits.
fn judge(probe: Probe, limits: &MediaLimits) -> Result<MediaInfo, Rejection> {
    let format = probe
        .format
        .ok_or_else(|| Rejection::NotVideo("no container".into()))?;
    let video = probe
        .streams
        .iter()
        .find(|s| s.codec_type == "video" && !s.is_picture())
        .or_else(|| probe.streams.iter().find(|s| s.codec_type == "video"))
        .ok_or_else(|| Rejection::NotVideo("no video stream".into()))?;
    let still = ["png", "mjpeg", "bmp", "gif", "webp", "tiff"].contains(&video.codec_name.as_str());
    if format.format_name.contains("image2")
        || format.format_name.ends_with("_pipe")
        || (still && format.duration.is_none())
    {
        return Err(Rejection::Image);
    }
    let duration = format
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| Rejection::NotVideo("no duration".into()))?;
    if duration > limits.max_duration_secs {
        return Err(Rejection::TooLong {
            duration,
            max: limits.max_duration_secs,
        });
    }
    if probe.streams.len() > limits.max_streams {
        return Err(Rejection::TooManyStreams {
            count: probe.streams.len(),
            max: limits.max_streams,
        });
    }
    // Every picture stream counts, cover art included: each is decoded by some job.
    for stream in probe.streams.iter().filter(|s| s.codec_type == "video") {
        let (width, height) = (
            u64::from(stream.width.unwrap_or(0)),
            u64::from(stream.height.unwrap_or(0)),
        );
        if width * height > limits.max_pixels {
            return Err(Rejection::TooManyPixels {
                width,
                height,
                max: limits.max_pixels,
            });
        }
        if !stream.is_picture()
            && let Some(fps) = stream.fps()
            && fps > limits.max_fps
        {
            return Err(Rejection::TooManyFrames {
                fps,
                max: limits.max_fps,
            });
        }
    }
    let audio = probe.streams.iter().find(|s| s.codec_type == "audio");
    Ok(MediaInfo {
        duration,
        width: video.width.unwrap_or(0),
        height: video.height.unwrap_or(0),
        video_codec: video.codec_name.clone(),
        audio_codec: audio.map(|a| a.codec_name.clone()),
        pixel_format: video.pix_fmt.clone(),
        color_transfer: video
            .color_transfer
            .clone()
            .filter(|t| !t.is_empty() && t != "unknown"),
        field_order: video
            .field_order
            .clone()
            .filter(|f| !f.is_empty() && f != "unknown"),
        subtitles: subtitle_tracks(&probe.streams),
        container: format.format_name,
        keyframe_spacing: None,
    })
}

/// Subtitle codecs ffmpeg converts to WebVTT: text. Pictures of text (Blu-ray's PGS, DVD's
/// VobSub, DVB) cannot be, and are left out.
const TEXT_SUBTITLES: [&str; 6] = ["subrip", "ass", "ssa", "webvtt", "mov_text", "text"];

/// Most subtitle tracks extracted from one upload.
pub const MAX_SUBTITLE_TRACKS: usize = 16;

/// The text subtitle tracks among `streams`, at most [`MAX_SUBTITLE_TRACKS`], their language
/// and title cleaned (the page shows them as text).
fn subtitle_tracks(streams: &[ProbeStream]) -> Vec<SubtitleTrack> {
    streams
        .iter()
        .filter(|s| s.codec_type == "subtitle" && TEXT_SUBTITLES.contains(&s.codec_name.as_str()))
        .take(MAX_SUBTITLE_TRACKS)
        .map(|s| {
            let tags = s.tags.as_ref();
            let disposition = s.disposition.as_ref();
            SubtitleTrack {
                stream: s.index,
                codec: s.codec_name.clone(),
                language: tags
                    .and_then(|t| t.language.as_deref())
                    .filter(|l| {
                        (1..=16).contains(&l.len())
                            && l.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
                            && *l != "und"
                    })
                    .map(str::to_owned),
                title: tags
                    .and_then(|t| t.title.as_deref())
                    .map(|t| {
                        t.chars()
                            .filter(|c| !c.is_control())
                            .take(80)
                            .collect::<String>()
                            .trim()
                            .to_owned()
                    })
                    .filter(|t| !t.is_empty()),
                default: disposition.is_some_and(|d| d.default != 0),
                forced: disposition.is_some_and(|d| d.forced != 0),
            }
        })
        .collect()
}

/// The tool's message without the file path it repeats.
fn short(stderr: &str) -> String {
    stderr
        .rsplit(": ")
        .next()
        .unwrap_or(stderr)
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// The fraction done from one `-progress` line, given the input's duration.
pub fn progress_from_line(line: &str, duration: f64) -> Option<f64> {
    if line.trim() == "progress=end" {
        return Some(1.0);
    }
    let us: f64 = line.strip_prefix("out_time_us=")?.trim().parse().ok()?;
    if duration.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || us < 0.0 {
        return None;
    }
    Some((us / 1e6 / duration).clamp(0.0, 1.0))
}

/// Seconds between storyboard thumbnails: about 150 over the video, from 2 to 10 s apart.
pub fn storyboard_interval(duration: f64) -> f64 {
    (duration / 150.0).ceil().clamp(2.0, 10.0)
}

/// How many thumbnails a storyboard of `duration` holds.
pub fn storyboard_count(duration: f64, interval: f64) -> u32 {
    ((duration / interval).ceil() as u32).max(1)
}

/// How many sheets a storyboard of `duration` fills.
pub fn storyboard_sheets(duration: f64, interval: f64) -> u32 {
    storyboard_count(duration, interval).div_ceil(SHEET_COLUMNS * SHEET_ROWS)
}

/// The file name of storyboard sheet `n` (0-based, as ffmpeg numbers them with -start_number 0).
pub fn sheet_name(n: u32) -> String {
    format!("sheet-{n:03}.jpg")
}

/// The WebVTT track of a storyboard: one cue per thumbnail, pointing into its sheet with a
/// media fragment (`#xywh=x,y,w,h`). `base` is the URL the sheets are under.
pub fn storyboard_vtt(base: &str, duration: f64, interval: f64) -> String {
    let per_sheet = SHEET_COLUMNS * SHEET_ROWS;
    let mut vtt = String::from("WEBVTT\n\n");
    for i in 0..storyboard_count(duration, interval) {
        let start = f64::from(i) * interval;
        let end = (start + interval).min(duration);
        let pos = i % per_sheet;
        let x = (pos % SHEET_COLUMNS) * THUMB_WIDTH;
        let y = (pos / SHEET_COLUMNS) * THUMB_HEIGHT;
        vtt.push_str(&format!(
            "{} --> {}\n{base}/{}#xywh={x},{y},{THUMB_WIDTH},{THUMB_HEIGHT}\n\n",
            vtt_time(start),
            vtt_time(end),
            sheet_name(i / per_sheet)
        ));
    }
    vtt
}

fn vtt_time(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// How an upload becomes playable in browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playable {
    /// Browsers play the file as it is (WebM with VP8/VP9/AV1 and Opus/Vorbis).
    AsIs,
    /// Browser codecs in an MP4/MOV or Matroska container: copy the streams into a fast-start MP4.
    Remux,
    /// A video browsers play with audio they may not (AC-3, DTS, FLAC, Opus...): copy the video
    /// and transcode the audio to AAC, into a fast-start MP4. Seconds of CPU for a film where a
    /// transcode takes about its length (bench/RESULTS.md, twenty-seventh session).
    TranscodeAudio,
    /// Anything else: transcode to H.264 and AAC, with a keyframe every second.
    Transcode,
}

impl Playable {
    /// How the playable job made the copy, as its result tells the owner's page.
    pub fn how(self) -> &'static str {
        match self {
            Playable::AsIs | Playable::Remux => "remuxed",
            Playable::TranscodeAudio => "audio transcoded",
            Playable::Transcode => "transcoded",
        }
    }
}

/// Whether the video is interlaced (ffprobe's field order `tt`, `bb`, `tb` or `bt`): browsers
/// show its two fields woven into one frame, and every moving edge combed. It is transcoded,
/// deinterlaced, never copied ([`Corrections`]).
pub fn interlaced(info: &MediaInfo) -> bool {
    matches!(info.field_order.as_deref(), Some("tt" | "bb" | "tb" | "bt"))
}

/// Whether a seek in the file goes by its index (MP4's sample table, Matroska's cues): exact with
/// ffmpeg's `-ss` before `-i`. MPEG-TS and MPEG-PS (`.ts`, `.m2ts`, `.mts`, `.mpg`, `.vob`) and
/// raw streams have none: ffmpeg jumps to the first keyframe after the time ([`commands::Seek`]).
/// `container` is ffprobe's format name.
pub fn seeks_by_index(container: &str) -> bool {
    !container
        .split(',')
        .any(|name| matches!(name, "mpegts" | "mpeg" | "mpegvideo" | "h264" | "hevc"))
}

/// Whether browsers decode this video stream wherever they play MP4 (and it is not interlaced):
/// H.264 only in 8 bits with 4:2:0 chroma (High 10, 4:2:2 and 4:4:4 are refused by Safari and by
/// the hardware decoders phones use; Jellyfin's web client direct-plays them neither on phones
/// nor, by default, in Safari); VP9 likewise in 8-bit 4:2:0 (profile 0: what yt-dlp gives with
/// AAC audio, in Matroska; Chromium and Firefox ESR play it from an MP4 here, Safari since macOS
/// 11 and iOS 14, where YouTube serves it so); or AV1. A pixel format that was not kept (an
/// upload checked before) is taken as playable, as it was then.
fn copies_into_mp4(info: &MediaInfo) -> bool {
    if interlaced(info) {
        return false;
    }
    match info.video_codec.as_str() {
        "h264" => matches!(
            info.pixel_format.as_deref(),
            None | Some("yuv420p" | "yuvj420p")
        ),
        "vp9" => matches!(info.pixel_format.as_deref(), None | Some("yuv420p")),
        "av1" => true,
        _ => false,
    }
}

/// The HDR transfer a video is in (PQ, `smpte2084`, or HLG, `arib-std-b67`: what phones record
/// "HDR video" in), for the frames made from it to be tone-mapped to SDR: converted to 8-bit
/// BT.709 as they are, its colours come out grey and washed out. `None` for SDR or unknown.
pub fn hdr_transfer(info: &MediaInfo) -> Option<&'static str> {
    match info.color_transfer.as_deref() {
        Some("smpte2084") => Some("smpte2084"),
        Some("arib-std-b67") => Some("arib-std-b67"),
        _ => None,
    }
}

/// The filters that tone-map frames in `transfer` (an HDR transfer, [`hdr_transfer`]) to
/// 8-bit BT.709: to linear light, BT.2020 to BT.709 primaries, Hable's curve, back to BT.709's
/// transfer in TV range (zimg's `zscale` and ffmpeg's `tonemap`, as Jellyfin does in software).
/// The input's transfer, primaries and matrix are named rather than read from the frames, which
/// may not carry them. At 1080p this more than doubles a transcode's CPU time (bench/RESULTS.md,
/// twenty-seventh session).
pub fn tone_map_filter(transfer: &str) -> String {
    format!(
        "zscale=tin={transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,\
         zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    )
}

/// What the frames of a video need when they are made anew (a transcode, the poster, the
/// storyboard): tone-mapping from HDR, deinterlacing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Corrections {
    /// The HDR transfer to tone-map from ([`hdr_transfer`]).
    pub tone_map: Option<&'static str>,
    /// The video is interlaced ([`interlaced`]).
    pub deinterlace: bool,
}

/// Deinterlaces the frames flagged interlaced, one frame out per frame in: `bwdif`, which
/// interpolates each missing line from both neighbouring fields (yadif's successor in ffmpeg).
/// A 1080i transcode took 6.2 CPU-s for 10 s of video with it, 5.8 without (docs/architecture.md).
pub const DEINTERLACE: &str = "bwdif=mode=send_frame:deint=interlaced";

/// Deinterlaces frames that are not next to each other (the storyboard decodes only keyframes,
/// seconds apart, where `bwdif` would weave unrelated pictures): the top field alone, its lines
/// doubled.
pub const DEINTERLACE_ALONE: &str = "field=type=top,scale=iw:ih*2";

impl Corrections {
    /// What `info`'s frames need.
    pub fn of(info: &MediaInfo) -> Self {
        Corrections {
            tone_map: hdr_transfer(info),
            deinterlace: interlaced(info),
        }
    }

    /// HDR.
    pub fn hdr(transfer: &'static str) -> Self {
        Corrections {
            tone_map: Some(transfer),
            ..Corrections::default()
        }
    }

    /// `filter` after the deinterlacing `first` (when the video needs it), joined as one chain.
    fn after_deinterlacing(&self, first: &str, filter: String) -> String {
        if self.deinterlace {
            format!("{first},{filter}")
        } else {
            filter
        }
    }
}

/// Decides, from what ffprobe found, how the upload becomes playable. A file that could be
/// served as it is or copied is transcoded all the same when its keyframes lie more than
/// [`MAX_KEYFRAME_SPACING`] apart over more than a tenth of it ([`keyframe_spacing`]), if it
/// lasts at most `sparse_max_secs` (0: never): a viewer's landing (a join, a seek, a play)
/// decodes from the keyframe before its point, but the transcode is waited for before the upload
/// plays (on two cores, 1080p at 1.0-1.7 times the video's speed, 720p at 2.4: bench/RESULTS.md,
/// twenty-sixth session), and a longer video is better played at once with its own keyframes.
pub fn playable_plan(info: &MediaInfo, sparse_max_secs: f64) -> Playable {
    let audio = info.audio_codec.as_deref();
    // ffprobe names Matroska and WebM alike (`matroska,webm`).
    let matroska = info.container.contains("matroska") || info.container.contains("webm");
    let mp4 = info.container.contains("mp4") || info.container.contains("mov");
    let web_video = ["vp8", "vp9", "av1"].contains(&info.video_codec.as_str());
    let kept = if matroska && web_video && matches!(audio, None | Some("opus" | "vorbis")) {
        Playable::AsIs
    } else if (mp4 || matroska) && copies_into_mp4(info) {
        if matches!(audio, None | Some("aac" | "mp3")) {
            Playable::Remux
        } else {
            Playable::TranscodeAudio
        }
    } else {
        return Playable::Transcode;
    };
    match info.keyframe_spacing {
        Some(spacing) if spacing > MAX_KEYFRAME_SPACING && info.duration <= sparse_max_secs => {
            Playable::Transcode
        }
        _ => kept,
    }
}

/// Keyframes further apart than this (s), over more than a tenth of a video, are sparse: a
/// landing decodes up to that much video before its seek is done. In bench-sync (480x270),
/// twelve late joiners' time from their video loaded to within 20 ms had a p90 of 1.53 s on an
/// upload with a keyframe every 10 s, kept, and 0.71 s on the same upload transcoded (two runs
/// each, bench/RESULTS.md, twenty-sixth session); a Chromium page decoded 17 ms of seek per second
/// of 480x270 video, 50 ms at 720p, idle. Phones and streaming encoders put one every 1-2 s.
pub const MAX_KEYFRAME_SPACING: f64 = 3.0;

/// The share of a video's time [`keyframe_spacing`] covers.
const SPACING_SHARE: f64 = 0.9;

/// How far apart the keyframes of a video of `duration` s are over most of it: the least
/// spacing such that [`SPACING_SHARE`] of its time lies between keyframes at most that far apart
/// (s). Time, not keyframes, is weighted, as a landing falls anywhere in the video: a scene cut's
/// extra keyframes shorten a few gaps without making the long ones any shorter. The stretch
/// before the first keyframe and the one after the last count as gaps. `None` when no keyframe
/// is known (none listed, or more than [`MAX_KEYFRAMES`]: every seek lands next to one).
pub fn keyframe_spacing(keyframes: &[f64], duration: f64) -> Option<f64> {
    let mut times: Vec<f64> = keyframes
        .iter()
        .copied()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .collect();
    if times.is_empty() || !duration.is_finite() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let end = duration.max(times[times.len() - 1]);
    let mut gaps: Vec<f64> = std::iter::once(times[0])
        .chain(times.windows(2).map(|w| w[1] - w[0]))
        .chain(std::iter::once(end - times[times.len() - 1]))
        .filter(|g| *g > 0.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let total: f64 = gaps.iter().sum();
    let mut covered = 0.0;
    for gap in &gaps {
        covered += gap;
        if covered >= SPACING_SHARE * total - 1e-9 {
            return Some(*gap);
        }
    }
    gaps.last().copied()
}

/// The arguments of each job's ffmpeg run (after `ffmpeg -v error -y -nostdin`).
pub mod commands {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// How [`frame`] gets to its time.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Seek {
        /// The input is seeked (`-ss` before `-i`): the demuxer jumps to the keyframe before the
        /// time by the file's index and decodes from there ([`seeks_by_index`]).
        Quick,
        /// For a file without an index: the input is seeked `window` seconds before the time
        /// ([`near_window`]), then decoded up to it. Seeked to the time itself, MPEG-TS and
        /// MPEG-PS jump to the first keyframe after it (a thumbnail asked at 3 s showed 10 s), or
        /// past the last keyframe, where nothing is decoded at all.
        Near { window: f64 },
        /// Everything is decoded from the start up to the time (`-ss` after `-i`): exact in any
        /// file, and as slow as the time is far in.
        Decoded,
    }

    /// How far before its time [`Seek::Near`] seeks at least: more than the keyframe spacing of
    /// encoders' defaults (x264's and x265's 250 frames are 10.4 s at 24 frames a second;
    /// broadcasts and camcorders put one every 0.5-2 s).
    pub const NEAR_WINDOW: f64 = 12.0;

    /// How far before its time [`Seek::Near`] seeks at most: 30 s of 1080p H.264 decode in
    /// about 4 CPU-s here, of 4K HEVC in well under a thumbnail's 60.
    pub const MAX_NEAR_WINDOW: f64 = 30.0;

    /// How far before its time [`Seek::Near`] seeks in a video whose keyframes are
    /// `keyframe_spacing` apart ([`super::keyframe_spacing`], measured when the upload was
    /// checked): a quarter and a second more than that, so that a keyframe lies in between, and
    /// [`NEAR_WINDOW`] at least (and when not measured). A screen recording at 15 frames a second
    /// with x264's 250 frames has one every 16.7 s: [`NEAR_WINDOW`] alone then gave the next
    /// keyframe's picture. Keyframes more than [`MAX_NEAR_WINDOW`] apart still do.
    pub fn near_window(keyframe_spacing: Option<f64>) -> f64 {
        keyframe_spacing
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(NEAR_WINDOW, |s| {
                (s * 1.25 + 1.0).clamp(NEAR_WINDOW, MAX_NEAR_WINDOW)
            })
    }

    /// One frame at `at` seconds, scaled. Scaled first, so that an HDR frame is tone-mapped
    /// (`fix`) at the size it is kept at; an interlaced one is deinterlaced before.
    pub fn frame(
        input: &Path,
        out: &Path,
        at: f64,
        height: u32,
        fix: &Corrections,
        seek: Seek,
    ) -> Vec<String> {
        // -ss before -i seeks the input; after it, skips decoded frames (counted from where the
        // input was seeked to).
        let (seeked, skipped) = match seek {
            Seek::Quick => (Some(at), None),
            Seek::Near { window } if at > window => (Some(at - window), Some(window)),
            Seek::Near { .. } | Seek::Decoded => (None, Some(at)),
        };
        let ss = |t: Option<f64>| {
            t.into_iter()
                .flat_map(|t| ["-ss".to_owned(), format!("{t:.3}")])
        };
        let mut a: Vec<String> = ss(seeked)
            .chain(strings(&["-protocol_whitelist", "file", "-i"]))
            .chain([input.display().to_string()])
            .chain(ss(skipped))
            .collect();
        a.extend(strings(&["-frames:v", "1", "-vf"]));
        let scaled = match fix.tone_map {
            Some(transfer) => format!("scale=-2:{height},{}", tone_map_filter(transfer)),
            None => format!("scale=-2:{height}"),
        };
        a.push(fix.after_deinterlacing(DEINTERLACE, scaled));
        a.extend(strings(&["-q:v", "3"]));
        a.push(out.display().to_string());
        a
    }

    /// The storyboard: only keyframes are decoded (`-skip_frame nokey`, about a hundred times
    /// faster than decoding everything), one picked per interval, scaled, tiled into sheets.
    /// The last keyframe is repeated to the end (`tpad`, then `trim` at `duration`), so that
    /// there is a thumbnail for every cue of [`storyboard_vtt`], however sparse the keyframes.
    /// An HDR video's thumbnails are tone-mapped (`fix`) once scaled.
    pub fn storyboard(
        input: &Path,
        dir: &Path,
        interval: f64,
        duration: f64,
        fix: &Corrections,
    ) -> Vec<String> {
        // However the input's timestamps lie, no more sheets than the track has cues for.
        let sheets = storyboard_sheets(duration, interval);
        let mut a = strings(&["-skip_frame", "nokey", "-protocol_whitelist", "file", "-i"]);
        a.push(input.display().to_string());
        a.extend(strings(&["-an", "-sn", "-vf"]));
        let tone_map = fix
            .tone_map
            .map(|transfer| format!("{},", tone_map_filter(transfer)))
            .unwrap_or_default();
        a.push(fix.after_deinterlacing(DEINTERLACE_ALONE, format!(
            "tpad=stop_mode=clone:stop_duration={duration},fps=1/{interval},trim=end={duration},scale={THUMB_WIDTH}:{THUMB_HEIGHT}:force_original_aspect_ratio=decrease,\
             {tone_map}pad={THUMB_WIDTH}:{THUMB_HEIGHT}:(ow-iw)/2:(oh-ih)/2,tile={SHEET_COLUMNS}x{SHEET_ROWS}"
        )));
        a.extend(strings(&["-frames:v"]));
        a.push(sheets.to_string());
        a.extend(strings(&[
            "-fps_mode",
            "vfr",
            "-q:v",
            "5",
            "-start_number",
            "0",
            "-progress",
            "pipe:1",
            "-nostats",
        ]));
        a.push(dir.join("sheet-%03d.jpg").display().to_string());
        a
    }

    /// The text subtitle `tracks` as WebVTT, `dir/{n}.vtt` for the n-th: one run, as the file
    /// is read through once for them all (their packets are spread over the whole file).
    pub fn subtitles(input: &Path, dir: &Path, tracks: &[SubtitleTrack]) -> Vec<String> {
        let mut a = strings(&["-protocol_whitelist", "file", "-i"]);
        a.push(input.display().to_string());
        for (n, track) in tracks.iter().enumerate() {
            a.push("-map".into());
            a.push(format!("0:{}", track.stream));
            a.extend(strings(&["-c:s", "webvtt", "-f", "webvtt"]));
            a.push(dir.join(format!("{n}.vtt")).display().to_string());
        }
        a
    }

    /// How audio is transcoded: AAC in stereo. Browsers mix down to the speakers anyway, 128k is
    /// thin for 5.1, and ffmpeg's AAC encoder refuses a layout it cannot name: AAC in 5.1(side)
    /// read back from Matroska is "6 channels", and failed every attempt of a transcode.
    const AUDIO_TO_AAC: &[&str] = &["-c:a", "aac", "-b:a", "128k", "-ac", "2"];

    /// A browser-playable MP4: streams copied, or transcoded.
    ///
    /// A transcode puts a keyframe every second (x264 puts one every 250 frames, 8-10 s): a
    /// browser seeks by decoding from the keyframe before the point, and a viewer's landing (a
    /// join, a play, a seek) seeks paused within the buffer, timed to a few tens of ms. In
    /// headless Chromium on an idle machine such a seek took 7 ms just after a keyframe and 21 ms
    /// a second after one (480x270), but 171 ms 9.5 s after one, and 462 ms 8 s after one at
    /// 720p (bench/RESULTS.md). Remuxed uploads keep their own keyframes.
    ///
    /// A transcode of an HDR video is tone-mapped (`fix`) to SDR BT.709; a copy keeps the video
    /// as it is, and the browser maps it.
    pub fn playable(input: &Path, out: &Path, plan: Playable, fix: &Corrections) -> Vec<String> {
        let mut a = strings(&["-protocol_whitelist", "file", "-i"]);
        a.push(input.display().to_string());
        match plan {
            Playable::Remux | Playable::AsIs => {
                a.extend(strings(&["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"]))
            }
            Playable::TranscodeAudio => {
                a.extend(strings(&[
                    "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy",
                ]));
                a.extend(strings(AUDIO_TO_AAC));
            }
            Playable::Transcode => {
                a.extend(strings(&[
                    "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264",
                ]));
                a.extend(strings(&[
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                ]));
                let filters: Vec<String> = [
                    fix.deinterlace.then(|| DEINTERLACE.to_owned()),
                    fix.tone_map.map(tone_map_filter),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !filters.is_empty() {
                    a.push("-vf".into());
                    a.push(filters.join(","));
                }
                if fix.tone_map.is_some() {
                    a.extend(strings(&[
                        "-color_primaries",
                        "bt709",
                        "-color_trc",
                        "bt709",
                    ]));
                    a.extend(strings(&["-colorspace", "bt709"]));
                }
                a.extend(strings(&["-force_key_frames", "expr:gte(t,n_forced*1)"]));
                a.extend(strings(AUDIO_TO_AAC));
            }
        }
        a.extend(strings(&[
            "-movflags",
            "+faststart",
            "-progress",
            "pipe:1",
            "-nostats",
            "-f",
            "mp4",
        ]));
        a.push(out.display().to_string());
        a
    }
}

/// Runs ffmpeg for a job under `limits`, reporting progress (0..1) as it goes.
pub async fn run_ffmpeg(
    ffmpeg: &Path,
    args: Vec<String>,
    duration: f64,
    timeout: Duration,
    limits: &Limits,
    cancel: &CancellationToken,
    mut progress: impl FnMut(f64) + Send,
) -> Result<(), ProcessError> {
    let mut full = vec![
        "-v".to_owned(),
        "error".to_owned(),
        "-y".to_owned(),
        "-nostdin".to_owned(),
    ];
    full.extend(args);
    process::run_streaming(ffmpeg, full, timeout, limits, cancel, |line| {
        if let Some(p) = progress_from_line(line, duration) {
            progress(p);
        }
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_reads_only_files_and_options_come_before_the_file() {
        let args = ffprobe_args(&["-show_format"], Path::new("/up/-x"));
        let want = [
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-show_format",
            "--",
            "/up/-x",
        ];
        assert_eq!(args, want.map(std::ffi::OsString::from));
    }

    /// A stand-in for ffprobe that prints `lines` keyframe packets (and a frame between each).
    fn fake_ffprobe(dir: &Path, lines: usize) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("ffprobe");
        let script =
            format!("#!/bin/sh\nseq 0 $(({lines} - 1)) | sed 's/$/.5,___/; p; s/.5,___/.0,K__/'\n");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A missing ffprobe is the server's fault, not the file's: the upload is left to be checked
    /// again (it was refused and deleted as "not a video file" when prlimit's failure to start
    /// it was read as ffprobe's own).
    #[tokio::test]
    async fn a_missing_ffprobe_does_not_make_a_file_not_a_video() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upload");
        std::fs::write(&file, b"whatever").unwrap();
        let err = check_upload(
            Path::new("/nonexistent/ffprobe"),
            Path::new("ffmpeg"),
            &file,
            Duration::from_secs(10),
            &limits(),
            &Limits {
                cpu_secs: Some(10),
                ..Limits::default()
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Rejection::Tool(why) if why.contains("/nonexistent/ffprobe")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn keyframes_beyond_the_most_kept_leave_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let list = |n| {
            let ffprobe = fake_ffprobe(dir.path(), n);
            async move {
                keyframes(
                    &ffprobe,
                    Path::new("video"),
                    Duration::from_secs(30),
                    &Limits::default(),
                    &CancellationToken::new(),
                )
                .await
                .unwrap()
            }
        };
        let kept = list(3).await;
        assert_eq!(kept, [0.0, 1.0, 2.0]);
        assert_eq!(list(MAX_KEYFRAMES).await.len(), MAX_KEYFRAMES);
        assert!(list(MAX_KEYFRAMES + 1).await.is_empty());
    }

    #[test]
    fn keyframe_lines() {
        assert_eq!(keyframe_time("0.000000,K__"), Some(0.0));
        assert_eq!(keyframe_time("10.010000,K_\n"), Some(10.01));
        assert_eq!(keyframe_time("10.043367,___"), None);
        assert_eq!(keyframe_time("N/A,K__"), None);
        assert_eq!(keyframe_time("-0.040000,K__"), None);
        assert_eq!(keyframe_time("12.5"), None);
        assert_eq!(keyframe_time(""), None);
        assert_eq!(
            keyframes_json(&[0.0, 9.999_6, 20.020_02]),
            r#"{"keyframes":[0.0,10.0,20.02]}"#
        );
    }

    #[test]
    fn progress_lines() {
        assert_eq!(progress_from_line("out_time_us=5000000", 10.0), Some(0.5));
        assert_eq!(progress_from_line("out_time_us=50000000", 10.0), Some(1.0));
        assert_eq!(progress_from_line("progress=end", 10.0), Some(1.0));
        assert_eq!(progress_from_line("progress=continue", 10.0), None);
        assert_eq!(progress_from_line("out_time_us=N/A", 10.0), None);
        assert_eq!(progress_from_line("frame=12", 10.0), None);
    }

    #[test]
    fn storyboard_layout_and_vtt() {
        assert_eq!(storyboard_interval(60.0), 2.0);
        assert_eq!(storyboard_interval(600.0), 4.0);
        assert_eq!(storyboard_interval(36_000.0), 10.0);
        assert_eq!(storyboard_count(600.0, 4.0), 150);
        let vtt = storyboard_vtt("/media/uploads/u/storyboard", 600.0, 4.0);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n/media/uploads/u/storyboard/sheet-000.jpg#xywh=0,0,160,90\n"));
        // Thumbnail 11 is on the second row; thumbnail 100 starts the second sheet.
        assert!(vtt.contains("00:00:44.000 --> 00:00:48.000\n/media/uploads/u/storyboard/sheet-000.jpg#xywh=160,90,160,90"));
        assert!(vtt.contains("00:06:40.000 --> 00:06:44.000\n/media/uploads/u/storyboard/sheet-001.jpg#xywh=0,0,160,90"));
        assert_eq!(vtt.matches("-->").count(), 150);
        // The last cue ends at the duration.
        let short = storyboard_vtt("b", 5.0, 2.0);
        assert!(short.contains("00:00:04.000 --> 00:00:05.000"));
        // ffmpeg writes no more sheets than the cues need, whatever the input's timestamps say.
        assert_eq!(storyboard_sheets(600.0, 4.0), 2);
        assert_eq!(storyboard_sheets(43_200.0, 10.0), 44);
        let args = commands::storyboard(
            Path::new("in"),
            Path::new("out"),
            4.0,
            600.0,
            &Corrections::default(),
        );
        let at = args.iter().position(|a| a == "-frames:v").unwrap();
        assert_eq!(args[at + 1], "2");
    }

    fn limits() -> MediaLimits {
        MediaLimits {
            max_duration_secs: 43_200.0,
            max_pixels: 4096 * 2160,
            max_fps: 120.0,
            max_streams: 16,
        }
    }

    fn judged(json: &str) -> Result<MediaInfo, Rejection> {
        judge(serde_json::from_str(json).unwrap(), &limits())
    }

    #[test]
    fn text_subtitle_tracks_are_kept_with_their_language_and_title_cleaned() {
        let info = judged(r#"{"streams":[
            {"index":0,"codec_type":"video","codec_name":"h264","width":640,"height":360,"avg_frame_rate":"25/1"},
            {"index":1,"codec_type":"subtitle","codec_name":"subrip","tags":{"language":"eng","title":"English (SDH)"}},
            {"index":2,"codec_type":"subtitle","codec_name":"hdmv_pgs_subtitle","tags":{"language":"eng"}},
            {"index":3,"codec_type":"subtitle","codec_name":"ass","tags":{"language":"fre\"><script>","title":"  Fran\u0007çais  "},"disposition":{"default":1,"forced":1}},
            {"index":4,"codec_type":"subtitle","codec_name":"mov_text","tags":{"language":"und"}}
        ],"format":{"format_name":"matroska,webm","duration":"10.0"}}"#)
        .unwrap();
        let track = |stream, codec: &str, language: Option<&str>, title: Option<&str>, flag| {
            SubtitleTrack {
                stream,
                codec: codec.into(),
                language: language.map(Into::into),
                title: title.map(Into::into),
                default: flag,
                forced: flag,
            }
        };
        // Pictures of text (PGS) cannot become WebVTT; a language that is not one is dropped.
        assert_eq!(
            info.subtitles,
            [
                track(1, "subrip", Some("eng"), Some("English (SDH)"), false),
                track(3, "ass", None, Some("Français"), true),
                track(4, "mov_text", None, None, false),
            ]
        );
        let many: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"index":{i},"codec_type":"subtitle","codec_name":"subrip"}}"#))
            .collect();
        let json = format!(
            r#"{{"streams":[{{"index":99,"codec_type":"video","codec_name":"h264","width":64,"height":36}},{}],"format":{{"format_name":"matroska,webm","duration":"1.0"}}}}"#,
            many[..20].join(",")
        );
        let roomy = MediaLimits {
            max_streams: 40,
            ..limits()
        };
        let info_many = judge(serde_json::from_str(&json).unwrap(), &roomy).unwrap();
        assert_eq!(info_many.subtitles.len(), MAX_SUBTITLE_TRACKS);
        // One run, each track mapped by its stream to its own file.
        let args = commands::subtitles(Path::new("in"), Path::new("subs"), &info.subtitles);
        let maps: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-map")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(maps, ["0:1", "0:3", "0:4"]);
        assert_eq!(args.last().map(String::as_str), Some("subs/2.vtt"));
    }

    #[test]
    fn media_bombs_are_refused_from_their_headers() {
        let ok = judged(
            r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"avg_frame_rate":"30000/1001","r_frame_rate":"30000/1001"},{"codec_type":"audio","codec_name":"aac"}],"format":{"format_name":"mov,mp4","duration":"600.0"}}"#,
        )
        .unwrap();
        assert_eq!((ok.width, ok.height, ok.duration), (1920, 1080, 600.0));
        // Two frames ten million seconds apart (the outside test's 1.3 KB MKV).
        assert!(matches!(
            judged(
                r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":64,"height":64,"avg_frame_rate":"1/5000000"}],"format":{"format_name":"matroska,webm","duration":"10000000.0"}}"#
            ),
            Err(Rejection::TooLong { .. })
        ));
        // 16000x16000 frames in 0.7 MB.
        assert!(matches!(
            judged(
                r#"{"streams":[{"codec_type":"video","codec_name":"ffv1","width":16000,"height":16000,"avg_frame_rate":"1/1"}],"format":{"format_name":"matroska,webm","duration":"2.0"}}"#
            ),
            Err(Rejection::TooManyPixels {
                width: 16000,
                height: 16000,
                ..
            })
        ));
        assert!(matches!(
            judged(
                r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":64,"height":64,"avg_frame_rate":"0/0","r_frame_rate":"1000/1"}],"format":{"format_name":"matroska,webm","duration":"2.0"}}"#
            ),
            Err(Rejection::TooManyFrames { .. })
        ));
        let many = format!(
            r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","width":64,"height":64}}{}],"format":{{"format_name":"matroska,webm","duration":"2.0"}}}}"#,
            r#",{"codec_type":"audio","codec_name":"opus"}"#.repeat(40)
        );
        assert!(matches!(
            judged(&many),
            Err(Rejection::TooManyStreams { count: 41, .. })
        ));
        // Cover art is not the video, and its rate does not count; its size does.
        let art = judged(r#"{"streams":[{"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"r_frame_rate":"90000/1","disposition":{"attached_pic":1}},{"codec_type":"video","codec_name":"h264","width":640,"height":360,"avg_frame_rate":"25/1"}],"format":{"format_name":"mov,mp4","duration":"10.0"}}"#).unwrap();
        assert_eq!((art.width, art.video_codec.as_str()), (640, "h264"));
    }

    #[test]
    fn hdr_frames_are_tone_mapped_where_they_are_made_anew() {
        let info = |transfer: Option<&str>| MediaInfo {
            duration: 1.0,
            width: 1,
            height: 1,
            video_codec: "hevc".into(),
            audio_codec: None,
            pixel_format: Some("yuv420p10le".into()),
            color_transfer: transfer.map(Into::into),
            field_order: None,
            subtitles: Vec::new(),
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            keyframe_spacing: None,
        };
        assert_eq!(hdr_transfer(&info(Some("smpte2084"))), Some("smpte2084"));
        assert_eq!(
            hdr_transfer(&info(Some("arib-std-b67"))),
            Some("arib-std-b67")
        );
        for sdr in [Some("bt709"), Some("smpte170m"), Some("bt2020-10"), None] {
            assert_eq!(hdr_transfer(&info(sdr)), None, "{sdr:?}");
        }
        let (input, out) = (Path::new("in"), Path::new("out"));
        let filter = |args: &[String]| {
            args.iter()
                .position(|a| a == "-vf")
                .map(|i| args[i + 1].clone())
        };
        let transcode = commands::playable(
            input,
            out,
            Playable::Transcode,
            &Corrections::hdr("arib-std-b67"),
        );
        let vf = filter(&transcode).expect("a transcode of HDR is filtered");
        assert!(vf.starts_with("zscale=tin=arib-std-b67:"), "{vf}");
        assert!(vf.ends_with("format=yuv420p"), "{vf}");
        assert!(transcode.windows(2).any(|w| w == ["-color_trc", "bt709"]));
        assert_eq!(
            filter(&commands::playable(
                input,
                out,
                Playable::Transcode,
                &Corrections::default()
            )),
            None
        );
        // A copy keeps the video as it is: the browser maps it.
        for plan in [Playable::Remux, Playable::TranscodeAudio] {
            assert_eq!(
                filter(&commands::playable(
                    input,
                    out,
                    plan,
                    &Corrections::hdr("smpte2084")
                )),
                None
            );
        }
        let poster = filter(&commands::frame(
            input,
            out,
            1.0,
            360,
            &Corrections::hdr("smpte2084"),
            commands::Seek::Quick,
        ))
        .unwrap();
        assert!(
            poster.starts_with("scale=-2:360,zscale=tin=smpte2084:"),
            "{poster}"
        );
        let sdr = filter(&commands::frame(
            input,
            out,
            1.0,
            360,
            &Corrections::default(),
            commands::Seek::Quick,
        ))
        .unwrap();
        assert_eq!(sdr, "scale=-2:360");
        let sheets = filter(&commands::storyboard(
            input,
            out,
            4.0,
            60.0,
            &Corrections::hdr("smpte2084"),
        ))
        .unwrap();
        assert!(
            sheets.contains(":force_original_aspect_ratio=decrease,zscale=tin=smpte2084:"),
            "{sheets}"
        );
        assert!(sheets.contains("format=yuv420p,pad="), "{sheets}");
    }

    #[test]
    fn interlaced_video_is_transcoded_and_deinterlaced_where_frames_are_made_anew() {
        let info = |container: &str, video: &str, field_order: Option<&str>| MediaInfo {
            duration: 1.0,
            width: 1920,
            height: 1080,
            video_codec: video.into(),
            audio_codec: Some("aac".into()),
            pixel_format: Some("yuv420p".into()),
            color_transfer: None,
            field_order: field_order.map(Into::into),
            subtitles: Vec::new(),
            container: container.into(),
            keyframe_spacing: None,
        };
        let mp4 = "mov,mp4,m4a,3gp,3g2,mj2";
        for order in ["tt", "bb", "tb", "bt"] {
            let interlaced = info(mp4, "h264", Some(order));
            assert_eq!(
                playable_plan(&interlaced, 600.0),
                Playable::Transcode,
                "{order}"
            );
            assert!(Corrections::of(&interlaced).deinterlace, "{order}");
        }
        for progressive in [Some("progressive"), None] {
            let plain = info(mp4, "h264", progressive);
            assert_eq!(playable_plan(&plain, 600.0), Playable::Remux);
            assert_eq!(Corrections::of(&plain), Corrections::default());
        }
        // A DVD's MPEG-2 was transcoded already: now deinterlaced too.
        assert!(Corrections::of(&info("mpeg", "mpeg2video", Some("tt"))).deinterlace);

        let (input, out) = (Path::new("in"), Path::new("out"));
        let filter = |args: &[String]| {
            let vf: Vec<&String> = args
                .windows(2)
                .filter(|w| w[0] == "-vf")
                .map(|w| &w[1])
                .collect();
            assert!(vf.len() <= 1, "one filter chain: {args:?}");
            vf.first().map(|f| f.to_string())
        };
        let fix = Corrections {
            deinterlace: true,
            ..Corrections::default()
        };
        let both = Corrections {
            deinterlace: true,
            ..Corrections::hdr("smpte2084")
        };
        assert_eq!(
            filter(&commands::playable(input, out, Playable::Transcode, &fix)).as_deref(),
            Some(DEINTERLACE)
        );
        let hdr = filter(&commands::playable(input, out, Playable::Transcode, &both)).unwrap();
        assert!(
            hdr.starts_with(&format!("{DEINTERLACE},zscale=tin=smpte2084:")),
            "{hdr}"
        );
        // Deinterlaced at full height, before the poster is scaled.
        assert_eq!(
            filter(&commands::frame(
                input,
                out,
                1.0,
                720,
                &fix,
                commands::Seek::Quick
            ))
            .as_deref(),
            Some(format!("{DEINTERLACE},scale=-2:720").as_str())
        );
        // The storyboard's keyframes are seconds apart: a field alone, not bwdif.
        let sheets = filter(&commands::storyboard(input, out, 4.0, 60.0, &fix)).unwrap();
        assert!(
            sheets.starts_with(&format!("{DEINTERLACE_ALONE},tpad=")),
            "{sheets}"
        );
    }

    #[test]
    fn a_frame_is_seeked_in_the_input_or_decoded_up_to_its_time() {
        let (input, out) = (Path::new("in.ts"), Path::new("out.jpg"));
        let quick = commands::frame(
            input,
            out,
            3.0,
            360,
            &Corrections::default(),
            commands::Seek::Quick,
        );
        assert_eq!(quick[..4], ["-ss", "3.000", "-protocol_whitelist", "file"]);
        let decoded = commands::frame(
            input,
            out,
            3.0,
            360,
            &Corrections::default(),
            commands::Seek::Decoded,
        );
        let at = |args: &[String], what: &str| args.iter().position(|a| a == what).unwrap();
        assert!(at(&decoded, "-i") < at(&decoded, "-ss"), "{decoded:?}");
        assert_eq!(decoded[at(&decoded, "-ss") + 1], "3.000");
        // Near: within its window from the start, decoded as a whole; further in, the input
        // seeked to the window before the time and the rest decoded.
        let near = |t, window| {
            commands::frame(
                input,
                out,
                t,
                360,
                &Corrections::default(),
                commands::Seek::Near { window },
            )
        };
        assert_eq!(near(3.0, commands::NEAR_WINDOW), decoded);
        let far = near(100.0, commands::NEAR_WINDOW);
        assert_eq!(far[..2], ["-ss", "88.000"]);
        let i = at(&far, "-i");
        assert_eq!(far[i + 2..i + 4], ["-ss", "12.000"], "{far:?}");
        let wide = near(100.0, 21.0);
        assert_eq!(wide[..2], ["-ss", "79.000"]);
        let i = at(&wide, "-i");
        assert_eq!(wide[i + 2..i + 4], ["-ss", "21.000"], "{wide:?}");
    }

    #[test]
    fn a_near_seek_reaches_back_past_the_keyframe_spacing() {
        use commands::{MAX_NEAR_WINDOW, NEAR_WINDOW, near_window};
        // Not measured, or nonsense: the default.
        for spacing in [
            None,
            Some(f64::NAN),
            Some(-1.0),
            Some(0.0),
            Some(f64::INFINITY),
        ] {
            assert_eq!(near_window(spacing), NEAR_WINDOW, "{spacing:?}");
        }
        // Dense keyframes keep the default; sparse ones get a quarter and a second more.
        assert_eq!(near_window(Some(1.0)), NEAR_WINDOW);
        assert_eq!(near_window(Some(8.0)), NEAR_WINDOW);
        assert!((near_window(Some(10.4)) - 14.0).abs() < 1e-9);
        assert_eq!(near_window(Some(16.0)), 21.0);
        assert!(near_window(Some(250.0 / 15.0)) > 250.0 / 15.0);
        // Bounded by what a thumbnail's CPU allows.
        assert_eq!(near_window(Some(100.0)), MAX_NEAR_WINDOW);
    }

    #[test]
    fn only_mpeg_streams_and_raw_video_are_seeked_without_an_index() {
        for container in [
            "mov,mp4,m4a,3gp,3g2,mj2",
            "matroska,webm",
            "avi",
            "flv",
            "ogg",
        ] {
            assert!(seeks_by_index(container), "{container}");
        }
        for container in ["mpegts", "mpeg", "mpegvideo", "h264", "hevc"] {
            assert!(!seeks_by_index(container), "{container}");
        }
    }

    #[test]
    fn playable_plans() {
        let info = |container: &str, video: &str, audio: Option<&str>| MediaInfo {
            duration: 1.0,
            width: 1,
            height: 1,
            video_codec: video.into(),
            audio_codec: audio.map(Into::into),
            pixel_format: None,
            color_transfer: None,
            field_order: None,
            subtitles: Vec::new(),
            container: container.into(),
            keyframe_spacing: None,
        };
        assert_eq!(
            playable_plan(&info("matroska,webm", "vp9", Some("opus")), 600.0),
            Playable::AsIs
        );
        assert_eq!(
            playable_plan(&info("mov,mp4,m4a,3gp,3g2,mj2", "h264", Some("aac")), 600.0),
            Playable::Remux
        );
        assert_eq!(
            playable_plan(&info("mov,mp4,m4a,3gp,3g2,mj2", "h264", None), 600.0),
            Playable::Remux
        );
        assert_eq!(
            playable_plan(&info("mov,mp4,m4a,3gp,3g2,mj2", "hevc", Some("aac")), 600.0),
            Playable::Transcode
        );
        assert_eq!(
            playable_plan(&info("avi", "mpeg4", Some("mp3")), 600.0),
            Playable::Transcode
        );
        // Matroska with H.264 (OBS recordings, films): copied into an MP4, the audio transcoded
        // to AAC when browsers may not play it.
        let mkv = "matroska,webm";
        assert_eq!(
            playable_plan(&info(mkv, "h264", Some("aac")), 600.0),
            Playable::Remux
        );
        assert_eq!(
            playable_plan(&info(mkv, "av1", Some("mp3")), 600.0),
            Playable::Remux
        );
        for audio in [
            "ac3",
            "eac3",
            "dts",
            "flac",
            "truehd",
            "opus",
            "vorbis",
            "pcm_s16le",
        ] {
            assert_eq!(
                playable_plan(&info(mkv, "h264", Some(audio)), 600.0),
                Playable::TranscodeAudio,
                "{audio}"
            );
        }
        assert_eq!(
            playable_plan(&info("mov,mp4,m4a,3gp,3g2,mj2", "h264", Some("ac3")), 600.0),
            Playable::TranscodeAudio
        );
        // VP9 with AAC (yt-dlp's Matroska) is copied into an MP4; with AC-3, its audio
        // transcoded; in 10 bits (profile 2), transcoded.
        assert_eq!(
            playable_plan(&info(mkv, "vp9", Some("aac")), 600.0),
            Playable::Remux
        );
        assert_eq!(
            playable_plan(&info(mkv, "vp9", Some("ac3")), 600.0),
            Playable::TranscodeAudio
        );
        assert_eq!(
            playable_plan(
                &MediaInfo {
                    pixel_format: Some("yuv420p10le".into()),
                    ..info(mkv, "vp9", Some("aac"))
                },
                600.0
            ),
            Playable::Transcode
        );
        assert_eq!(
            playable_plan(&info(mkv, "vp8", Some("aac")), 600.0),
            Playable::Transcode
        );
        assert_eq!(
            playable_plan(&info("mpegts", "h264", Some("aac")), 600.0),
            Playable::Transcode
        );
        // H.264 in 10 bits or with more chroma is transcoded to 8-bit 4:2:0, whatever the
        // container; an upload whose pixel format was not kept is copied, as it was before.
        let pixels = |container: &str, audio: Option<&str>, format: Option<&str>| MediaInfo {
            pixel_format: format.map(Into::into),
            ..info(container, "h264", audio)
        };
        for format in ["yuv420p10le", "yuv422p", "yuv444p", "yuv420p10be", "gbrp"] {
            for container in ["mov,mp4,m4a,3gp,3g2,mj2", mkv] {
                for audio in [Some("aac"), Some("ac3"), None] {
                    assert_eq!(
                        playable_plan(&pixels(container, audio, Some(format)), 600.0),
                        Playable::Transcode,
                        "{format} {container} {audio:?}"
                    );
                }
            }
        }
        for (format, plan) in [
            (Some("yuv420p"), Playable::Remux),
            (Some("yuvj420p"), Playable::Remux),
            (None, Playable::Remux),
        ] {
            assert_eq!(
                playable_plan(
                    &pixels("mov,mp4,m4a,3gp,3g2,mj2", Some("aac"), format),
                    600.0
                ),
                plan,
                "{format:?}"
            );
        }
        assert_eq!(
            playable_plan(
                &MediaInfo {
                    pixel_format: Some("yuv420p10le".into()),
                    ..info(mkv, "av1", Some("opus"))
                },
                600.0
            ),
            Playable::AsIs
        );
        assert_eq!(Playable::TranscodeAudio.how(), "audio transcoded");
        assert_eq!(Playable::Remux.how(), "remuxed");
        assert_eq!(Playable::Transcode.how(), "transcoded");
        // Keyframes too far apart: transcoded rather than served as they are, unless the video
        // is longer than the setting (0: all are); a file whose keyframes were not listed keeps
        // them.
        let spaced = |container: &str, video: &str, audio: Option<&str>, spacing| MediaInfo {
            keyframe_spacing: spacing,
            ..info(container, video, audio)
        };
        let mp4 = "mov,mp4,m4a,3gp,3g2,mj2";
        for (file, kept) in [
            (
                spaced("matroska,webm", "vp9", Some("opus"), Some(10.0)),
                Playable::AsIs,
            ),
            (
                spaced(mp4, "h264", Some("aac"), Some(10.0)),
                Playable::Remux,
            ),
            (
                spaced("matroska,webm", "h264", Some("ac3"), Some(10.0)),
                Playable::TranscodeAudio,
            ),
        ] {
            assert_eq!(playable_plan(&file, 600.0), Playable::Transcode, "{file:?}");
            assert_eq!(playable_plan(&file, 1.0), Playable::Transcode, "{file:?}");
            assert_eq!(playable_plan(&file, 0.5), kept, "{file:?}");
            assert_eq!(playable_plan(&file, 0.0), kept, "{file:?}");
            let unlisted = MediaInfo {
                keyframe_spacing: None,
                ..file.clone()
            };
            assert_eq!(playable_plan(&unlisted, 600.0), kept, "{file:?}");
        }
        assert_eq!(
            playable_plan(&spaced(mp4, "h264", None, Some(3.0)), 600.0),
            Playable::Remux
        );
        assert_eq!(
            playable_plan(&spaced(mp4, "hevc", None, Some(1.0)), 600.0),
            Playable::Transcode
        );
    }

    #[test]
    fn keyframe_spacing_weighs_time_not_keyframes() {
        let every = |step: f64, end: f64| -> Vec<f64> {
            (0..)
                .map(|i| f64::from(i) * step)
                .take_while(|t| *t < end)
                .collect()
        };
        assert_eq!(keyframe_spacing(&every(1.0, 60.0), 60.0), Some(1.0));
        assert_eq!(keyframe_spacing(&every(2.0, 7.0), 7.0), Some(2.0));
        // One keyframe at the start, as a browser's recording may have.
        assert_eq!(keyframe_spacing(&[0.0], 95.5), Some(95.5));
        // x264's default with scene cuts: most keyframes close together, most of the time
        // between keyframes 10 s apart.
        let mut cuts = every(10.0, 100.0);
        cuts.extend((0..30).map(|i| 50.0 + f64::from(i) * 0.2));
        assert_eq!(keyframe_spacing(&cuts, 100.0), Some(10.0));
        // A long gap over less than a tenth of the video does not count.
        let mut one_gap = every(1.0, 95.0);
        one_gap.push(100.0);
        assert_eq!(keyframe_spacing(&one_gap, 101.0), Some(1.0));
        // The stretch before the first keyframe counts; times out of order or duplicated do not
        // matter; nothing known is None.
        assert_eq!(keyframe_spacing(&[30.0, 20.0, 20.0], 40.0), Some(20.0));
        assert_eq!(keyframe_spacing(&[], 40.0), None);
        assert_eq!(keyframe_spacing(&[f64::NAN], 40.0), None);
        // A keyframe listed past the duration ffprobe gave: the gap up to it counts.
        assert_eq!(keyframe_spacing(&[0.0, 12.0], 10.0), Some(12.0));
    }
}
