//! Queue items: one video in a room's queue, with what the server learnt about it.

use crate::ids::{ItemId, UploadId, UserId};
use crate::media::{DirectFormat, Media, MediaSource};
use crate::names::DisplayName;
use crate::time::ServerTime;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// Where an item plays from, as clients need it to pick a player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ItemSource {
    /// Played with the YouTube IFrame player.
    Youtube { video_id: String },
    /// Played with a `<video>` element (HLS through hls.js where not native).
    Url { format: DirectFormat },
    /// Someone's uploaded video, served by this server (to members of rooms that queue it).
    Upload { upload_id: UploadId },
}

/// How far the server got in learning about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    /// Title and duration are being looked up; the item is playable meanwhile.
    Pending,
    /// Looked up (the duration may still be unknown if the lookup failed).
    Ready,
    /// The source says the video does not exist or cannot be embedded; it is skipped.
    Unavailable,
}

/// One entry of a room's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub id: ItemId,
    #[serde(flatten)]
    pub source: ItemSource,
    /// The URL as stored and shown (YouTube links in canonical form).
    pub url: String,
    pub title: String,
    /// Length in seconds, when known.
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
    /// Where playback starts, in seconds.
    pub start: f64,
    pub added_by: UserId,
    pub added_by_name: String,
    pub added_at: ServerTime,
    pub status: ItemStatus,
}

/// Where browsers fetch an uploaded video.
pub fn upload_video_url(upload_id: UploadId) -> String {
    format!("/media/uploads/{upload_id}/video")
}

/// What the server knows about an uploaded video, for queue items.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadMedia {
    pub upload_id: UploadId,
    pub title: String,
    pub duration: Option<f64>,
    /// URL of its poster image, once made.
    pub poster: Option<String>,
    /// Whether browsers can play it now.
    pub ready: bool,
}

/// What a metadata lookup found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemMetadata {
    pub title: Option<String>,
    pub duration: Option<f64>,
    pub thumbnail: Option<String>,
    /// The direct format, when the probe found out more than the extension said.
    pub format: Option<DirectFormat>,
}

/// A file name without its extension (`My Film.mp4` -> `My Film`), for a title: only a short
/// alphanumeric extension after a non-empty stem counts (`.mp4`, `.m3u8`; not `v1.0-final`).
fn without_extension(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.trim().is_empty()
                && (1..=5).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && ext.chars().any(|c| c.is_ascii_alphabetic()) =>
        {
            stem
        }
        _ => name,
    }
}

impl QueueItem {
    /// A new item for `media`, before any lookup: titled after its URL.
    pub fn new(
        id: ItemId,
        media: &Media,
        added_by: UserId,
        added_by_name: &DisplayName,
        now: ServerTime,
    ) -> Self {
        let (source, title) = match &media.source {
            MediaSource::YouTube { video_id } => (
                ItemSource::Youtube {
                    video_id: video_id.clone(),
                },
                format!("YouTube video {video_id}"),
            ),
            MediaSource::Direct { url, format } => {
                let file = url
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        without_extension(&percent_decode_str(s).decode_utf8_lossy()).to_owned()
                    });
                let title = file.unwrap_or_else(|| url.host_str().unwrap_or("video").to_owned());
                (ItemSource::Url { format: *format }, title)
            }
        };
        QueueItem {
            id,
            source,
            url: media.canonical_url(),
            title,
            duration: None,
            thumbnail: None,
            start: media.start,
            added_by,
            added_by_name: added_by_name.as_str().to_owned(),
            added_at: now,
            status: ItemStatus::Pending,
        }
    }

    /// An item for an uploaded video. `ready` says whether browsers can play it yet; until then
    /// the item waits (`pending`), and a room that reaches it holds until it is ready.
    pub fn for_upload(
        id: ItemId,
        upload: &UploadMedia,
        added_by: UserId,
        added_by_name: &DisplayName,
        now: ServerTime,
    ) -> Self {
        QueueItem {
            id,
            source: ItemSource::Upload {
                upload_id: upload.upload_id,
            },
            url: upload_video_url(upload.upload_id),
            title: upload.title.clone(),
            duration: upload.duration,
            thumbnail: upload.poster.clone(),
            start: 0.0,
            added_by,
            added_by_name: added_by_name.as_str().to_owned(),
            added_at: now,
            status: if upload.ready {
                ItemStatus::Ready
            } else {
                ItemStatus::Pending
            },
        }
    }

    /// The upload this item plays, if any.
    pub fn upload_id(&self) -> Option<UploadId> {
        match self.source {
            ItemSource::Upload { upload_id } => Some(upload_id),
            _ => None,
        }
    }

    /// An upload that browsers cannot play yet.
    pub fn awaits_media(&self) -> bool {
        self.upload_id().is_some() && self.status == ItemStatus::Pending
    }

    /// Merges what a lookup found; an absent field keeps the current value.
    pub fn apply_metadata(&mut self, meta: ItemMetadata) {
        if let Some(title) = meta.title.filter(|t| !t.trim().is_empty()) {
            self.title = title.chars().take(300).collect();
        }
        if let Some(d) = meta.duration.filter(|d| d.is_finite() && *d > 0.0) {
            self.duration = Some(d);
        }
        if meta.thumbnail.is_some() {
            self.thumbnail = meta.thumbnail;
        }
        if let (Some(f), ItemSource::Url { format }) = (meta.format, &mut self.source) {
            *format = f;
        }
        self.status = ItemStatus::Ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn item(raw: &str) -> QueueItem {
        QueueItem::new(
            ItemId(Uuid::from_u128(1)),
            &Media::parse(raw).unwrap(),
            UserId(Uuid::from_u128(2)),
            &DisplayName::parse("Ann").unwrap(),
            ServerTime(0),
        )
    }

    #[test]
    fn placeholder_titles_and_wire_form() {
        assert_eq!(item("https://x.test/films/My%20Film.mp4").title, "My Film");
        assert_eq!(item("https://x.test/live/index.m3u8").title, "index");
        assert_eq!(item("https://x.test/v/part.2").title, "part.2");
        assert_eq!(item("https://x.test/v/.mp4").title, ".mp4");
        assert_eq!(item("https://x.test/v/film").title, "film");
        assert_eq!(item("https://x.test/").title, "x.test");
        assert_eq!(item("https://x.test/a%").title, "a%");
        let yt = item("https://youtu.be/dQw4w9WgXcQ?t=5");
        assert_eq!(yt.start, 5.0);
        let json = serde_json::to_value(&yt).unwrap();
        assert_eq!(json["kind"], "youtube");
        assert_eq!(json["video_id"], "dQw4w9WgXcQ");
        assert_eq!(json["status"], "pending");
        let back: QueueItem = serde_json::from_value(json).unwrap();
        assert_eq!(back, yt);
    }

    #[test]
    fn metadata_merges() {
        let mut it = item("https://x.test/a.mp4");
        it.apply_metadata(ItemMetadata {
            title: Some("  ".into()),
            duration: Some(f64::NAN),
            thumbnail: None,
            format: Some(DirectFormat::Webm),
        });
        assert_eq!(it.title, "a");
        assert_eq!(it.duration, None);
        assert_eq!(
            it.source,
            ItemSource::Url {
                format: DirectFormat::Webm
            }
        );
        assert_eq!(it.status, ItemStatus::Ready);
        it.apply_metadata(ItemMetadata {
            title: Some("Film".into()),
            duration: Some(12.5),
            ..Default::default()
        });
        assert_eq!((it.title.as_str(), it.duration), ("Film", Some(12.5)));
    }
}
