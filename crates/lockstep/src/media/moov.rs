//! The keyframe times of a linked MP4, read from its `moov` box. A browser seeks by decoding from
//! the keyframe before the point, and a landing plans its seek by those times (`sync.js`), as it
//! does for an upload, whose times ffprobe lists from the server's own copy
//! ([`super::video::keyframes`]). For a link, ffprobe would have to read every packet: the whole
//! file. The `moov`'s sample tables say the same in a few kilobytes to a few megabytes.
//!
//! The file's top-level boxes are walked with range requests through the media proxy
//! ([`super::ranges::RangeClient`]), so the policy applies to each, redirects included. A file
//! made for the web has its `moov` first; a recording's (OBS, phones) comes after the media data.
//! Only the `moov` is read, at most [`MAX_MOOV`] bytes in at most [`MAX_REQUESTS`] requests.
//!
//! mp4parse (Firefox's MP4 parser, written for hostile files) parses it. The times are worked out
//! here, as ffmpeg (Chromium's demuxer for a file) presents them: from the sync samples (`stss`),
//! the decode times (`stts`), the composition offsets (`ctts`) and the edit list. Only the
//! keyframes' times are computed, walking the run-length tables once, never one entry per sample:
//! a table that claims billions of samples in a few bytes costs no more than its bytes.

use super::ranges::RangeClient;
use std::io::Cursor;
use std::time::Duration;

/// Largest `moov` read: a three-hour film's sample tables are about 5 MB.
pub const MAX_MOOV: u64 = 16 * 1024 * 1024;
/// Bytes asked for at each place a box header is looked for: a `moov` first in the file, or a
/// short film's at its end, comes in the same request.
const WINDOW: u64 = 64 * 1024;
/// Range requests one reading may make (a header after `ftyp`, `free`, `mdat`, then the `moov`).
const MAX_REQUESTS: usize = 8;
/// Top-level boxes looked at before giving up.
const MAX_BOXES: usize = 64;
/// How long one reading may take, all its requests together.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Most keyframes kept of one link. Past this many (a keyframe every 0.36 s of a two-hour film),
/// every seek lands near one and there is nothing to plan for: the list is empty, as for a video
/// whose every frame is a keyframe. Kept lower than an upload's
/// ([`super::video::MAX_KEYFRAMES`]): these lists are kept in the database.
pub const MAX_KEYFRAMES: usize = 20_000;

/// Why a link's keyframes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MoovError {
    #[error("the host answered {0} to a range request")]
    Status(u16),
    #[error("the host sent the whole file instead of the range asked for")]
    NoRanges,
    #[error("the host's answer was for another range ({0})")]
    WrongRange(String),
    #[error("a box header is malformed")]
    Malformed,
    #[error("the moov box ends before its size")]
    Truncated,
    #[error("the moov box is {0} bytes, more than are read")]
    TooBig(u64),
    #[error("more than {MAX_REQUESTS} requests would be needed")]
    TooManyRequests,
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("the moov box cannot be parsed: {0}")]
    Parse(String),
    #[error("no answer in time")]
    Timeout,
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// A box's header: its type, the header's length and the box's whole size (`None`: it runs to
/// the end of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    pub header_len: u64,
    pub size: Option<u64>,
}

/// The header at the start of `bytes`: `Ok(None)` when `bytes` holds too little of it (the file
/// ends there, or more must be read).
pub fn box_header(bytes: &[u8]) -> Result<Option<BoxHeader>, MoovError> {
    let (Some(size), Some(kind)) = (bytes.get(0..4), bytes.get(4..8)) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
    let kind = [kind[0], kind[1], kind[2], kind[3]];
    let (header_len, size) = match size {
        0 => (8, None),
        1 => {
            let Some(large) = bytes.get(8..16) else {
                return Ok(None);
            };
            let mut be = [0; 8];
            be.copy_from_slice(large);
            (16, Some(u64::from_be_bytes(be)))
        }
        n => (8, Some(u64::from(n))),
    };
    if size.is_some_and(|s| s < header_len) {
        return Err(MoovError::Malformed);
    }
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// Where a reading gets a file's bytes: the link's host, or a file in memory for the tests.
pub(crate) trait Source {
    /// Up to `len` bytes from `at` (fewer at the end of the file; none past it).
    async fn read(&mut self, at: u64, len: u64) -> Result<Vec<u8>, MoovError>;
    /// The file's length, once an answer has said it.
    fn total(&self) -> Option<u64>;
}

/// The `moov` box of the file `source` reads, walking its top-level boxes; `None` when it has
/// none, or only a fragmented file's (whose samples are described fragment by fragment).
pub(crate) async fn find_moov<S: Source>(source: &mut S) -> Result<Option<Vec<u8>>, MoovError> {
    let mut pos = 0u64;
    for _ in 0..MAX_BOXES {
        let head = source.read(pos, 16).await?;
        let Some(header) = box_header(&head)? else {
            return Ok(None);
        };
        match &header.kind {
            b"moov" => {
                let size = match header.size {
                    Some(size) => size,
                    None => source
                        .total()
                        .and_then(|total| total.checked_sub(pos))
                        .ok_or(MoovError::Truncated)?,
                };
                if size > MAX_MOOV {
                    return Err(MoovError::TooBig(size));
                }
                let moov = source.read(pos, size).await?;
                if (moov.len() as u64) < size {
                    return Err(MoovError::Truncated);
                }
                return Ok(Some(moov));
            }
            // A fragmented file: its `moov` (if one came before) had no samples either.
            b"moof" => return Ok(None),
            _ => match header.size {
                Some(size) => pos = pos.checked_add(size).ok_or(MoovError::Malformed)?,
                None => return Ok(None),
            },
        }
    }
    Ok(None)
}

/// A video track's tables, as the file gives them.
#[derive(Debug, Clone, Default)]
pub struct SampleTables<'a> {
    /// The keyframes' sample numbers (from 1, ascending); `None`: every sample is one.
    pub sync: Option<&'a [u32]>,
    /// Runs of (samples, decode duration of each), in the track's timescale.
    pub decode: &'a [(u32, u32)],
    /// Runs of (samples, composition offset of each); empty: none.
    pub composition: &'a [(u32, i64)],
    /// Ticks per second of the track.
    pub timescale: u64,
    /// The edit list's start in the track (ticks): the composition time shown at 0 s.
    pub media_time: u64,
    /// The edit list's empty edit (s): how long after 0 s the track starts.
    pub empty_secs: f64,
}

/// The keyframes' presentation times (s, ascending) that `tables` describe: `None` when they say
/// nothing usable (no samples, a keyframe past the last sample, keyframes out of order), empty
/// when every sample is a keyframe or there are more than [`MAX_KEYFRAMES`].
pub fn keyframe_times(tables: &SampleTables) -> Option<Vec<f64>> {
    if tables.timescale == 0 || tables.decode.iter().all(|&(count, _)| count == 0) {
        return None;
    }
    // No `stss`: every sample is a keyframe.
    let Some(sync) = tables.sync else {
        return Some(Vec::new());
    };
    let sync = match sync {
        [] => return None,
        s if s.len() > MAX_KEYFRAMES => return Some(Vec::new()),
        s => s,
    };
    // Each run: where it starts (sample number), and the decode time there (ticks).
    let mut decode = tables.decode.iter();
    let (mut run_start, mut run_time, mut run) = (1u64, 0i128, decode.next().copied());
    let mut composition = tables.composition.iter();
    let (mut offset_start, mut offset_run) = (1u64, composition.next().copied());
    let mut times = Vec::with_capacity(sync.len());
    let mut previous = 0u64;
    for &sample in sync {
        let sample = u64::from(sample);
        if sample <= previous {
            return None;
        }
        previous = sample;
        // The decode time: the runs before this sample, then this one's part.
        let dt = loop {
            let (count, delta) = run?;
            let end = run_start + u64::from(count);
            if sample < end {
                break run_time + i128::from(sample - run_start) * i128::from(delta);
            }
            run_time += i128::from(count) * i128::from(delta);
            run_start = end;
            run = decode.next().copied();
        };
        // Its composition offset (none past the table's end, as ffmpeg reads it).
        let offset = loop {
            let Some((count, offset)) = offset_run else {
                break 0;
            };
            let end = offset_start + u64::from(count);
            if sample < end {
                break offset;
            }
            offset_start = end;
            offset_run = composition.next().copied();
        };
        let ticks = dt + i128::from(offset) - i128::from(tables.media_time);
        let time = ticks as f64 / tables.timescale as f64 + tables.empty_secs;
        // Before the start, a keyframe is not shown (ffprobe's list leaves it out too).
        if time.is_finite() && time >= 0.0 {
            times.push(time);
        }
    }
    times.sort_by(f64::total_cmp);
    times.dedup_by(|a, b| (*a - *b).abs() < 0.000_5);
    Some(times)
}

/// The keyframe times of the first video track in `moov` (a whole `moov` box), as
/// [`keyframe_times`] gives them; `None` without a video track or usable tables.
pub fn keyframes_of_moov(moov: &[u8]) -> Result<Option<Vec<f64>>, MoovError> {
    let context = mp4parse::read_mp4(&mut Cursor::new(moov))
        .map_err(|err| MoovError::Parse(format!("{err:?}")))?;
    let Some(track) = context
        .tracks
        .iter()
        .find(|t| t.track_type == mp4parse::TrackType::Video)
    else {
        return Ok(None);
    };
    let (Some(timescale), Some(stts)) = (track.timescale, track.stts.as_ref()) else {
        return Ok(None);
    };
    let decode: Vec<(u32, u32)> = stts
        .samples
        .iter()
        .map(|s| (s.sample_count, s.sample_delta))
        .collect();
    let composition: Vec<(u32, i64)> = track.ctts.as_ref().map_or_else(Vec::new, |ctts| {
        ctts.samples
            .iter()
            .map(|o| {
                let offset = match o.time_offset {
                    mp4parse::TimeOffsetVersion::Version0(v) => i64::from(v),
                    mp4parse::TimeOffsetVersion::Version1(v) => i64::from(v),
                };
                (o.sample_count, offset)
            })
            .collect()
    });
    let empty_secs = match (track.empty_duration, context.timescale) {
        (Some(empty), Some(scale)) if scale.0 > 0 => empty.0 as f64 / scale.0 as f64,
        _ => 0.0,
    };
    let tables = SampleTables {
        sync: track.stss.as_ref().map(|s| s.samples.as_slice()),
        decode: &decode,
        composition: &composition,
        timescale: timescale.0,
        media_time: track.media_time.map_or(0, |t| t.0),
        empty_secs,
    };
    Ok(keyframe_times(&tables))
}

/// A link's bytes, read through the media proxy: one window of the file at a time.
struct Remote<'a> {
    client: &'a RangeClient,
    url: reqwest::Url,
    window: Vec<u8>,
    window_at: u64,
    total: Option<u64>,
    requests: usize,
}

/// The start and the total of a `Content-Range: bytes a-b/total` (total `*`: unknown).
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

impl Source for Remote<'_> {
    async fn read(&mut self, at: u64, len: u64) -> Result<Vec<u8>, MoovError> {
        let in_window = at >= self.window_at
            && at - self.window_at <= self.window.len() as u64
            && (at - self.window_at + len <= self.window.len() as u64
                || self
                    .total
                    .is_some_and(|t| self.window_at + self.window.len() as u64 >= t));
        if !in_window {
            if self.total.is_some_and(|t| at >= t) {
                return Ok(Vec::new());
            }
            if self.requests == MAX_REQUESTS {
                return Err(MoovError::TooManyRequests);
            }
            self.requests += 1;
            let want = len.max(WINDOW);
            let range = format!("bytes={at}-{}", at + want - 1);
            let (mut answer, url) = self
                .client
                .get(&self.url, &range)
                .await?
                .ok_or(MoovError::TooManyRedirects)?;
            // Later requests go where the redirects led (a CDN's signed address).
            self.url = url;
            match answer.status().as_u16() {
                206 => {}
                416 => return Ok(Vec::new()),
                200 => return Err(MoovError::NoRanges),
                other => return Err(MoovError::Status(other)),
            }
            let header = answer
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Some((start, total)) = content_range(header) else {
                return Err(MoovError::WrongRange(header.chars().take(80).collect()));
            };
            if start != at {
                return Err(MoovError::WrongRange(header.chars().take(80).collect()));
            }
            self.total = total.or(self.total);
            let mut bytes = Vec::new();
            // Only what was asked for is kept, whatever the host sends.
            while let Some(chunk) = answer.chunk().await? {
                let room = (want as usize).saturating_sub(bytes.len());
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() as u64 >= want {
                    break;
                }
            }
            self.window = bytes;
            self.window_at = at;
        }
        let from = (at - self.window_at) as usize;
        let to = (from as u64 + len).min(self.window.len() as u64) as usize;
        Ok(self.window[from..to].to_vec())
    }

    fn total(&self) -> Option<u64> {
        self.total
    }
}

/// The keyframe times of the MP4 at `url`, read through `client`: `Ok(None)` when it has no
/// `moov` with usable tables (a fragmented file, one with no video).
pub async fn keyframes(client: &RangeClient, url: &str) -> Result<Option<Vec<f64>>, MoovError> {
    let url = reqwest::Url::parse(url).map_err(|_| MoovError::Malformed)?;
    let mut remote = Remote {
        client,
        url,
        window: Vec::new(),
        window_at: 0,
        total: None,
        requests: 0,
    };
    let moov = tokio::time::timeout(TIMEOUT, find_moov(&mut remote))
        .await
        .map_err(|_| MoovError::Timeout)??;
    match moov {
        Some(moov) => keyframes_of_moov(&moov),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A file in memory, counting the reads that would be requests.
    struct Memory {
        bytes: Vec<u8>,
        reads: usize,
    }

    impl Source for Memory {
        async fn read(&mut self, at: u64, len: u64) -> Result<Vec<u8>, MoovError> {
            self.reads += 1;
            let from = (at as usize).min(self.bytes.len());
            let to = (at.saturating_add(len) as usize).min(self.bytes.len());
            Ok(self.bytes[from..to].to_vec())
        }
        fn total(&self) -> Option<u64> {
            Some(self.bytes.len() as u64)
        }
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn large(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = 1u32.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn box_headers_are_read_in_their_three_sizes() {
        assert_eq!(box_header(&[0, 0, 0]).unwrap(), None);
        let h = box_header(&boxed(b"ftyp", &[1, 2, 3])).unwrap().unwrap();
        assert_eq!((h.kind, h.header_len, h.size), (*b"ftyp", 8, Some(11)));
        let h = box_header(&large(b"mdat", &[0; 5])).unwrap().unwrap();
        assert_eq!((h.kind, h.header_len, h.size), (*b"mdat", 16, Some(21)));
        // A large size whose 64 bits have not all come yet.
        assert_eq!(box_header(&large(b"mdat", &[])[..12]).unwrap(), None);
        let h = box_header(&[0, 0, 0, 0, b'm', b'd', b'a', b't'])
            .unwrap()
            .unwrap();
        assert_eq!(h.size, None);
        // Smaller than its own header.
        assert!(box_header(&[0, 0, 0, 7, b'f', b'r', b'e', b'e']).is_err());
        assert!(
            box_header(
                &large(b"mdat", &[])[..8]
                    .iter()
                    .chain(&[0u8; 8])
                    .copied()
                    .collect::<Vec<_>>()
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn the_moov_is_found_first_or_after_the_media_data() {
        let moov = boxed(b"moov", b"the sample tables");
        let first = [
            boxed(b"ftyp", b"isom"),
            moov.clone(),
            large(b"mdat", &[7; 1000]),
        ]
        .concat();
        let mut memory = Memory {
            bytes: first,
            reads: 0,
        };
        assert_eq!(find_moov(&mut memory).await.unwrap(), Some(moov.clone()));
        let last = [
            boxed(b"ftyp", b"isom"),
            boxed(b"free", b""),
            large(b"mdat", &[7; 1000]),
            moov.clone(),
        ]
        .concat();
        let mut memory = Memory {
            bytes: last,
            reads: 0,
        };
        assert_eq!(find_moov(&mut memory).await.unwrap(), Some(moov.clone()));
        // A moov that runs to the end of the file (size 0).
        let mut open = moov.clone();
        open[..4].copy_from_slice(&[0; 4]);
        let mut memory = Memory {
            bytes: [boxed(b"ftyp", b"isom"), open.clone()].concat(),
            reads: 0,
        };
        assert_eq!(find_moov(&mut memory).await.unwrap(), Some(open));
    }

    #[tokio::test]
    async fn files_without_a_whole_moov_give_none_or_an_error() {
        // No moov at all; media data to the end of the file; a fragmented file.
        for bytes in [
            [boxed(b"ftyp", b"isom"), boxed(b"mdat", &[1; 10])].concat(),
            [
                boxed(b"ftyp", b"isom"),
                vec![0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2],
            ]
            .concat(),
            [
                boxed(b"ftyp", b"isom"),
                boxed(b"moof", b""),
                boxed(b"moov", b""),
            ]
            .concat(),
            Vec::new(),
        ] {
            let mut memory = Memory { bytes, reads: 0 };
            assert_eq!(find_moov(&mut memory).await.unwrap(), None);
        }
        // A moov cut short, one too big to read, a box smaller than its header.
        let mut cut = boxed(b"moov", &[0; 100]);
        cut.truncate(50);
        let mut memory = Memory {
            bytes: cut,
            reads: 0,
        };
        assert!(matches!(
            find_moov(&mut memory).await,
            Err(MoovError::Truncated)
        ));
        let mut huge = large(b"moov", &[]);
        huge[8..16].copy_from_slice(&(MAX_MOOV + 1).to_be_bytes());
        let mut memory = Memory {
            bytes: huge,
            reads: 0,
        };
        assert!(matches!(
            find_moov(&mut memory).await,
            Err(MoovError::TooBig(_))
        ));
        let mut memory = Memory {
            bytes: vec![0, 0, 0, 3, b'f', b'r', b'e', b'e'],
            reads: 0,
        };
        assert!(matches!(
            find_moov(&mut memory).await,
            Err(MoovError::Malformed)
        ));
        // Thousands of empty boxes: the walk stops after MAX_BOXES.
        let mut memory = Memory {
            bytes: boxed(b"free", b"").repeat(10_000),
            reads: 0,
        };
        assert_eq!(find_moov(&mut memory).await.unwrap(), None);
        assert_eq!(memory.reads, MAX_BOXES);
    }

    /// The keyframes' times worked out one sample at a time, as the tables define them.
    fn by_sample(t: &SampleTables) -> Option<Vec<f64>> {
        let mut decode = Vec::new();
        let mut dt = 0i128;
        for &(count, delta) in t.decode {
            for _ in 0..count {
                decode.push(dt);
                dt += i128::from(delta);
            }
        }
        let offsets: Vec<i64> = t
            .composition
            .iter()
            .flat_map(|&(c, o)| std::iter::repeat_n(o, c as usize))
            .collect();
        let mut times = Vec::new();
        for &n in t.sync.unwrap() {
            let i = n as usize - 1;
            let ticks = *decode.get(i)? + i128::from(offsets.get(i).copied().unwrap_or(0))
                - i128::from(t.media_time);
            let time = ticks as f64 / t.timescale as f64 + t.empty_secs;
            if time >= 0.0 {
                times.push(time);
            }
        }
        times.sort_by(f64::total_cmp);
        times.dedup_by(|a, b| (*a - *b).abs() < 0.000_5);
        Some(times)
    }

    #[test]
    fn keyframe_times_follow_decode_times_offsets_and_the_edit_list() {
        // x264 at 30 fps in a 15360 timescale, B-frames: the first frame shown 1024 ticks in, cut
        // by the edit list; a keyframe every 300 frames.
        let sync = [1, 301, 601];
        let tables = SampleTables {
            sync: Some(&sync),
            decode: &[(900, 512)],
            composition: &[(1, 1024), (1, 2560), (1, 1024), (897, 1024)],
            timescale: 15360,
            media_time: 1024,
            empty_secs: 0.0,
        };
        assert_eq!(keyframe_times(&tables), Some(vec![0.0, 10.0, 20.0]));
        // An empty edit of 1.5 s before the track.
        let later = SampleTables {
            empty_secs: 1.5,
            ..tables.clone()
        };
        assert_eq!(keyframe_times(&later), Some(vec![1.5, 11.5, 21.5]));
        // No stss: every frame is a keyframe, nothing to plan by.
        assert_eq!(
            keyframe_times(&SampleTables {
                sync: None,
                ..tables.clone()
            }),
            Some(vec![])
        );
        // Nothing usable: no samples, a keyframe past them, out of order, no timescale.
        assert_eq!(
            keyframe_times(&SampleTables {
                decode: &[],
                ..tables.clone()
            }),
            None
        );
        assert_eq!(
            keyframe_times(&SampleTables {
                sync: Some(&[1, 901]),
                ..tables.clone()
            }),
            None
        );
        assert_eq!(
            keyframe_times(&SampleTables {
                sync: Some(&[301, 1]),
                ..tables.clone()
            }),
            None
        );
        assert_eq!(
            keyframe_times(&SampleTables {
                sync: Some(&[1, 1]),
                ..tables.clone()
            }),
            None
        );
        assert_eq!(
            keyframe_times(&SampleTables {
                timescale: 0,
                ..tables.clone()
            }),
            None
        );
        assert_eq!(
            keyframe_times(&SampleTables {
                sync: Some(&[]),
                ..tables.clone()
            }),
            None
        );
        // Too many to be worth a list.
        let many: Vec<u32> = (1..=MAX_KEYFRAMES as u32 + 1).collect();
        let dense = SampleTables {
            sync: Some(&many),
            decode: &[(u32::MAX, 1)],
            ..tables.clone()
        };
        assert_eq!(keyframe_times(&dense), Some(vec![]));
    }

    #[test]
    fn tables_claiming_billions_of_samples_cost_only_their_keyframes() {
        let sync = [1, 4_000_000_000];
        let tables = SampleTables {
            sync: Some(&sync),
            decode: &[(u32::MAX, u32::MAX)],
            composition: &[(u32::MAX, i64::from(i32::MIN))],
            timescale: 1,
            media_time: 0,
            empty_secs: 0.0,
        };
        let times = keyframe_times(&tables).unwrap();
        assert_eq!(times.len(), 1, "the first is before the start: {times:?}");
        assert!(times[0].is_finite() && times[0] > 1e18);
    }

    #[test]
    fn keyframe_times_match_a_sample_by_sample_reading() {
        let mut rng = StdRng::seed_from_u64(14);
        for case in 0..2_000 {
            let runs = rng.random_range(1..6);
            let decode: Vec<(u32, u32)> = (0..runs)
                .map(|_| (rng.random_range(0..40), rng.random_range(0..3000)))
                .collect();
            let samples: u32 = decode.iter().map(|r| r.0).sum();
            let composition: Vec<(u32, i64)> = (0..rng.random_range(0..8))
                .map(|_| (rng.random_range(0..30), rng.random_range(-2000..4000)))
                .collect();
            let mut sync: Vec<u32> = (1..=samples + 2).filter(|_| rng.random_bool(0.2)).collect();
            sync.dedup();
            let tables = SampleTables {
                sync: Some(&sync),
                decode: &decode,
                composition: &composition,
                timescale: rng.random_range(1..90_000),
                media_time: rng.random_range(0..3000),
                empty_secs: if rng.random_bool(0.2) { 0.5 } else { 0.0 },
            };
            let expected = if samples == 0 || sync.is_empty() {
                None
            } else {
                by_sample(&tables)
            };
            assert_eq!(keyframe_times(&tables), expected, "case {case}: {tables:?}");
        }
    }

    #[test]
    fn content_ranges_are_read() {
        assert_eq!(
            content_range("bytes 0-65535/6008488"),
            Some((0, Some(6_008_488)))
        );
        assert_eq!(content_range("bytes 100-199/*"), Some((100, None)));
        for bad in [
            "",
            "bytes */100",
            "items 0-1/2",
            "bytes 0-1/x",
            "bytes a-1/2",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_moov_that_is_not_one_is_an_error_not_a_panic() {
        for bytes in [
            boxed(b"moov", &[0xFF; 64]),
            boxed(b"moov", &boxed(b"trak", &[1; 40])),
            Vec::new(),
            vec![1, 2, 3],
        ] {
            let _ = keyframes_of_moov(&bytes);
        }
    }
}
