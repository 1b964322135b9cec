//! YouTube metadata: title and thumbnail from oEmbed, or title, thumbnail and duration from the
//! Data API v3 when a key is configured. Both base URLs are configuration, so tests run this
//! client against a local server that answers in YouTube's real format.

use super::Resolution;
use lockstep_core::queue::ItemMetadata;
use serde::Deserialize;
use std::collections::HashMap;
use url::Url;

/// A YouTube metadata client.
#[derive(Debug, Clone)]
pub struct YouTube {
    http: reqwest::Client,
    oembed_url: Url,
    api_url: Url,
    api_key: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OEmbed {
    title: Option<String>,
    thumbnail_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VideoList {
    #[serde(default)]
    items: Vec<Video>,
}

#[derive(Debug, Deserialize)]
struct Video {
    snippet: Option<Snippet>,
    #[serde(rename = "contentDetails")]
    content_details: Option<ContentDetails>,
    status: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Snippet {
    title: Option<String>,
    #[serde(default)]
    thumbnails: HashMap<String, Thumbnail>,
}

#[derive(Debug, Deserialize)]
struct Thumbnail {
    url: String,
}

#[derive(Debug, Deserialize)]
struct ContentDetails {
    duration: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Status {
    embeddable: Option<bool>,
}

/// The thumbnail every video has, used when a lookup gives none.
fn default_thumbnail(video_id: &str) -> String {
    format!("https://i.ytimg.com/vi/{video_id}/hqdefault.jpg")
}

/// Seconds in an ISO 8601 duration such as `PT1H2M3S`; `None` for zero (live streams say `P0D`).
fn parse_duration(iso: &str) -> Option<f64> {
    let d: std::time::Duration = iso8601::duration(iso).ok()?.into();
    let secs = d.as_secs_f64();
    (secs > 0.0).then_some(secs)
}

impl YouTube {
    pub fn new(
        http: reqwest::Client,
        oembed_url: Url,
        api_url: Url,
        api_key: Option<String>,
    ) -> Self {
        YouTube {
            http,
            oembed_url,
            api_url,
            api_key: api_key.filter(|k| !k.trim().is_empty()),
        }
    }

    /// Looks a video up: the Data API when there is a key (falling back to oEmbed if the API
    /// errs, as with an exhausted quota), oEmbed otherwise.
    pub async fn lookup(&self, video_id: &str) -> Resolution {
        if let Some(key) = &self.api_key {
            match self.data_api(video_id, key).await {
                Ok(resolution) => return resolution,
                Err(err) => {
                    tracing::warn!(error = %err, "YouTube Data API failed; falling back to oEmbed");
                }
            }
        }
        self.oembed(video_id).await
    }

    async fn data_api(&self, video_id: &str, key: &str) -> Result<Resolution, reqwest::Error> {
        let url = self
            .api_url
            .join("videos")
            .unwrap_or_else(|_| self.api_url.clone());
        let list: VideoList = self
            .http
            .get(url)
            .query(&[
                ("part", "snippet,contentDetails,status"),
                ("id", video_id),
                ("key", key),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let Some(video) = list.items.into_iter().next() else {
            return Ok(Resolution::Unavailable(
                "the video does not exist or is private".into(),
            ));
        };
        if video.status.and_then(|s| s.embeddable) == Some(false) {
            return Ok(Resolution::Unavailable(
                "the video cannot be embedded".into(),
            ));
        }
        let (title, thumbnail) = match video.snippet {
            Some(mut s) => {
                let thumb = ["high", "medium", "standard", "default"]
                    .iter()
                    .find_map(|k| s.thumbnails.remove(*k))
                    .map(|t| t.url);
                (s.title, thumb)
            }
            None => (None, None),
        };
        Ok(Resolution::Found(ItemMetadata {
            title,
            duration: video
                .content_details
                .and_then(|c| c.duration)
                .and_then(|d| parse_duration(&d)),
            thumbnail: Some(thumbnail.unwrap_or_else(|| default_thumbnail(video_id))),
            format: None,
        }))
    }

    async fn oembed(&self, video_id: &str) -> Resolution {
        let watch = format!("https://www.youtube.com/watch?v={video_id}");
        let response = self
            .http
            .get(self.oembed_url.clone())
            .query(&[("url", watch.as_str()), ("format", "json")])
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(err) => return Resolution::Unknown(format!("oEmbed request failed: {err}")),
        };
        match response.status().as_u16() {
            200 => match response.json::<OEmbed>().await {
                Ok(o) => Resolution::Found(ItemMetadata {
                    title: o.title,
                    duration: None, // oEmbed has none; the first viewer's player reports it
                    thumbnail: Some(
                        o.thumbnail_url
                            .unwrap_or_else(|| default_thumbnail(video_id)),
                    ),
                    format: None,
                }),
                Err(err) => Resolution::Unknown(format!("oEmbed answered oddly: {err}")),
            },
            // YouTube answers 404 for unknown or private videos, 401 when embedding is off,
            // 400 for malformed ids.
            400 | 404 => Resolution::Unavailable("the video does not exist or is private".into()),
            401 | 403 => Resolution::Unavailable("the video cannot be embedded".into()),
            status => Resolution::Unknown(format!("oEmbed answered HTTP {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_duration("PT3M33S"), Some(213.0));
        assert_eq!(parse_duration("PT1H2M3S"), Some(3723.0));
        assert_eq!(parse_duration("P1DT1S"), Some(86401.0));
        assert_eq!(parse_duration("P0D"), None);
        assert_eq!(parse_duration("nonsense"), None);
    }
}
