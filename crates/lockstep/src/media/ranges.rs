//! Whether a media host lets a browser seek: a file is seeked by asking for the bytes at that
//! place (an HTTP range request). When its host neither answers a range request with
//! `206 Partial Content` nor says `Accept-Ranges: bytes`, Chromium plays the file from its start
//! and cannot seek in it at all (`video.seekable` is empty), even within what it has loaded: a late
//! joiner, a reconnecting viewer and every seek of the room land back at the start, and the sync
//! corrects it again every two seconds, for as long as the item plays. Such an item is refused
//! when it is added, with the reason in the room's chat, rather than played broken.
//!
//! One `GET` with `Range: bytes=0-0` through the media proxy (so the policy applies to it and to
//! every redirect, as to ffprobe's connections), read to its head only. ffprobe cannot tell: it
//! reads a file whose host ignores ranges from its start without a word.

use std::time::Duration;

/// What a host's answer to a range request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranges {
    /// It answered with the part asked for, or says it can.
    Supported,
    /// It answered with the whole file and does not say it can answer ranges.
    Refused,
    /// No telling (an error status, no answer): the item gets the benefit of the doubt.
    Unknown,
}

/// How long the check may take, redirects included.
const TIMEOUT: Duration = Duration::from_secs(8);
/// Redirects followed (each through the proxy): as many as a CDN's signed links take.
const MAX_REDIRECTS: usize = 5;

/// What the answer to `Range: bytes=0-0` says: its status and its `Accept-Ranges` header.
pub fn verdict(status: u16, accept_ranges: Option<&str>) -> Ranges {
    match status {
        206 => Ranges::Supported,
        // A host that says it takes ranges but sent the whole file this once (some do for a
        // request of one byte) is seekable in Chromium: it asks again with a range.
        200 if accept_ranges.is_some_and(|v| {
            v.split(',')
                .any(|unit| unit.trim().eq_ignore_ascii_case("bytes"))
        }) =>
        {
            Ranges::Supported
        }
        200 => Ranges::Refused,
        _ => Ranges::Unknown,
    }
}

/// Asks a media host for parts of a file through the media proxy (so the policy applies to every
/// connection and every redirect, as to ffprobe's). Built once per lookup.
#[derive(Debug, Clone)]
pub struct RangeClient {
    client: reqwest::Client,
}

impl RangeClient {
    /// A client whose every request goes through `proxy` (a media proxy session's URL).
    pub fn new(proxy: &str) -> reqwest::Result<Self> {
        // Redirects are followed here, not by reqwest: it drops `Proxy-Authorization` from a
        // request redirected to another host (a sensitive header), and the proxy then refuses it
        // (407), so a link that redirects (a CDN's signed address) could never be read.
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(proxy)?)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lockstep/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(RangeClient { client })
    }

    /// `GET url` with `Range: range` (`bytes=0-0`), following at most [`MAX_REDIRECTS`]
    /// redirects: the answer, its head read and its body not, and the URL that gave it (`None`
    /// after too many redirects). Each request has [`TIMEOUT`] for its head and body.
    pub async fn get(
        &self,
        url: &reqwest::Url,
        range: &str,
    ) -> reqwest::Result<Option<(reqwest::Response, reqwest::Url)>> {
        let mut at = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let answer = self
                .client
                .get(at.clone())
                .header(reqwest::header::RANGE, range)
                .send()
                .await?;
            if answer.status().is_redirection()
                && let Some(next) = answer
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|to| at.join(to).ok())
                    .filter(|next| matches!(next.scheme(), "http" | "https"))
            {
                at = next;
                continue;
            }
            return Ok(Some((answer, at)));
        }
        Ok(None)
    }
}

/// Asks `url`'s host for its first byte through `client`.
pub async fn check(client: &RangeClient, url: &str) -> Ranges {
    let Ok(url) = reqwest::Url::parse(url) else {
        return Ranges::Unknown;
    };
    // The answer's head is all that is read: dropping it closes the connection mid-body. One
    // deadline for the whole chain, as for a single request.
    match tokio::time::timeout(TIMEOUT, client.get(&url, "bytes=0-0")).await {
        Ok(Ok(Some((answer, _)))) => verdict(
            answer.status().as_u16(),
            answer
                .headers()
                .get(reqwest::header::ACCEPT_RANGES)
                .and_then(|v| v.to_str().ok()),
        ),
        Ok(Ok(None)) | Err(_) => Ranges::Unknown,
        Ok(Err(err)) => {
            tracing::debug!(%url, error = %err, "the range check got no answer");
            Ranges::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_seekable_when_it_answers_a_range_or_says_it_can() {
        assert_eq!(verdict(206, None), Ranges::Supported);
        assert_eq!(verdict(206, Some("none")), Ranges::Supported);
        assert_eq!(verdict(200, Some("bytes")), Ranges::Supported);
        assert_eq!(verdict(200, Some(" Bytes ")), Ranges::Supported);
        assert_eq!(verdict(200, Some("none")), Ranges::Refused);
        assert_eq!(verdict(200, Some("bytesx")), Ranges::Refused);
        assert_eq!(verdict(200, None), Ranges::Refused);
        for status in [301, 403, 404, 405, 416, 500, 503] {
            assert_eq!(verdict(status, None), Ranges::Unknown, "{status}");
        }
    }
}
