//! Learning about media: YouTube metadata over HTTP, direct URLs through ffprobe.
//!
//! # Layout
//! - [`process`]: the single wrapper for child processes (timeout, kill on drop, capped output).
//! - [`probe`]: ffprobe on a direct media URL.
//! - [`poster`]: a poster frame of a direct media URL, cached on disk.
//! - [`youtube`]: oEmbed and Data API client.
//! - [`video`]: checking uploads, and what each media job runs.
//! - [`jobs`]: the job queue and its workers.
//! - [`files`]: where an upload's files are kept and served.
//! - [`policy`]: which addresses media may be fetched from (SSRF).
//! - [`proxy`]: the proxy every ffprobe connection goes through, applying that policy.
//! - [`ranges`]: whether a file's host lets a browser seek in it.
//! - [`moov`]: the keyframe times of a linked MP4, from its `moov` box.

pub mod files;
pub mod jobs;
pub mod moov;
pub mod policy;
pub mod poster;
pub mod probe;
pub mod process;
pub mod proxy;
pub mod ranges;
pub mod video;
pub mod youtube;

use crate::clock::ServerClock;
use crate::config::Config;
use crate::store::Store;
use lockstep_core::media::{DirectFormat, Media, MediaSource};
use lockstep_core::queue::ItemMetadata;
use policy::MediaPolicy;
use poster::Posters;
use probe::Prober;
use proxy::{MediaProxy, ProxySession};
use ranges::{RangeClient, Ranges};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use youtube::YouTube;

/// Lookups (ffprobe processes, YouTube requests) running at once; more wait their turn, so a burst
/// of additions cannot fork hundreds of processes.
const CONCURRENT_LOOKUPS: usize = 4;

/// What a lookup concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Metadata found (some fields may still be unknown).
    Found(ItemMetadata),
    /// The source says it cannot be played: the item leaves the queue, and the room's chat line
    /// says why with this (so it holds nothing the room should not learn).
    Unavailable(String),
    /// The lookup failed; the item stays playable, its duration unknown until a viewer reports it.
    Unknown(String),
}

/// Looks up metadata for queue items.
#[derive(Debug, Clone)]
pub struct MediaResolver {
    youtube: YouTube,
    prober: Prober,
    posters: Posters,
    permits: Arc<Semaphore>,
    policy: Arc<MediaPolicy>,
    proxy: MediaProxy,
    store: Store,
    clock: ServerClock,
}

impl MediaResolver {
    /// The resolver, with its media proxy (which runs until `shutdown`).
    pub async fn start(
        config: &Config,
        store: Store,
        clock: ServerClock,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(MediaPolicy::new(
            config.allow_private_media,
            config.media_allow_networks.clone(),
        ));
        let proxy = MediaProxy::start(policy.clone(), shutdown).await?;
        Self::new(config, store, clock, policy, proxy)
    }

    fn new(
        config: &Config,
        store: Store,
        clock: ServerClock,
        policy: Arc<MediaPolicy>,
        proxy: MediaProxy,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a default TLS provider; use ring's. Installing it again (several
        // servers in one test process) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(8))
            .user_agent(concat!("lockstep/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(MediaResolver {
            youtube: YouTube::new(
                http,
                config.youtube_oembed_url.clone(),
                config.youtube_api_url.clone(),
                config.youtube_api_key.clone(),
            ),
            prober: Prober {
                program: config.ffprobe.clone(),
                timeout: Duration::from_secs(config.probe_timeout_secs),
                limits: process::Limits {
                    memory_bytes: Some(config.job_memory_bytes),
                    cpu_secs: Some(config.probe_timeout_secs.saturating_mul(2).max(1)),
                    file_bytes: Some(0),
                    priority: process::Priority::Lookup,
                },
            },
            posters: Posters {
                program: config.ffmpeg.clone(),
                store: store.clone(),
                clock,
                timeout: Duration::from_secs(config.probe_timeout_secs.clamp(1, 10)),
                limits: process::Limits {
                    memory_bytes: Some(config.job_memory_bytes),
                    cpu_secs: Some(10),
                    file_bytes: Some(0),
                    // The lookup waits for it (its thumbnail comes with its title).
                    priority: process::Priority::Lookup,
                },
            },
            permits: Arc::new(Semaphore::new(CONCURRENT_LOOKUPS)),
            policy,
            proxy,
            store,
            clock,
        })
    }

    /// Which addresses media may be fetched from.
    pub fn policy(&self) -> &MediaPolicy {
        &self.policy
    }

    /// Reads the keyframe times of the MP4 at `url` through `client` and keeps them, unless they
    /// are kept already or the proxy refused one of `session`'s connections. A failure is logged:
    /// the item plays, its landings planned as for a file whose keyframes are not known.
    async fn keep_keyframes(&self, client: &RangeClient, url: &str, session: &ProxySession) {
        let name = poster::url_key(url);
        match self.store.has_link_keyframes(&name).await {
            Ok(false) => {}
            Ok(true) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look up a link's keyframes");
                return;
            }
        }
        let times = match moov::keyframes(client, url).await {
            Ok(Some(times)) => times,
            Ok(None) => return,
            Err(err) => {
                tracing::info!(%url, error = %err, "a link's keyframes could not be read");
                return;
            }
        };
        if session.refused().is_some() {
            return;
        }
        let json = video::keyframes_json(&times);
        if let Err(err) = self
            .store
            .save_link_keyframes(&name, &json, self.clock.now())
            .await
        {
            tracing::warn!(error = %err, "cannot keep a link's keyframes");
        }
    }

    pub async fn resolve(&self, media: &Media) -> Resolution {
        // The semaphore is never closed, so acquiring only fails if that changes.
        let Ok(_permit) = self.permits.acquire().await else {
            return Resolution::Unknown("the lookup queue is closed".into());
        };
        match &media.source {
            MediaSource::YouTube { video_id } => self.youtube.lookup(video_id).await,
            MediaSource::Direct { url, .. } => {
                // Every connection ffprobe makes goes through the proxy, which applies the
                // policy; one refused connection (a redirect, an HLS segment) and nothing it
                // read counts.
                let session = self.proxy.session();
                let probed = self.prober.probe(url.as_str(), session.url()).await;
                // A file (not a playlist, whose segments are whole requests) must be seekable,
                // or no one can join it late (see `ranges`). Not a stream without an end (a
                // radio's): it cannot be seeked anywhere, and everyone plays it live. Not once
                // the proxy has refused the link: nothing more is asked of it.
                // The client is built only for such a file, and kept for its keyframes.
                let (ranges, client) = match &probed {
                    Ok(found)
                        if found.format != DirectFormat::Hls
                            && found.duration.is_some()
                            && session.refused().is_none() =>
                    {
                        match RangeClient::new(session.url()) {
                            Ok(client) => {
                                (ranges::check(&client, url.as_str()).await, Some(client))
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "a link's HTTP client could not be built");
                                (Ranges::Unknown, None)
                            }
                        }
                    }
                    _ => (Ranges::Unknown, None),
                };
                if let Some(refused) = session.refused() {
                    // Where it led stays in the log: in the room's chat it would tell anyone
                    // what an internal name resolves to.
                    tracing::info!(%url, %refused, "a media lookup was refused by the policy");
                    return Resolution::Unavailable(
                        "it leads to a place the server may not fetch from".into(),
                    );
                }
                match probed {
                    Ok(_) if ranges == Ranges::Refused => Resolution::Unavailable(
                        "its host does not answer range requests, so no one could seek in it or \
                         join it late (upload the file instead, or serve it from a host that does)"
                            .into(),
                    ),
                    Ok(found) => {
                        // A frame for the queue and the lobby, and the keyframes that landings
                        // plan by (a seekable MP4's), read the same guarded way.
                        let poster = async {
                            match found.has_video {
                                true => {
                                    self.posters
                                        .poster(url.as_str(), session.url(), found.duration)
                                        .await
                                }
                                false => None,
                            }
                        };
                        let keyframes = async {
                            if let (Some(client), Ranges::Supported, DirectFormat::Mp4, true) =
                                (&client, ranges, found.format, found.has_video)
                            {
                                self.keep_keyframes(client, url.as_str(), &session).await
                            }
                        };
                        let (poster, ()) = tokio::join!(poster, keyframes);
                        let thumbnail = poster.filter(|_| session.refused().is_none());
                        Resolution::Found(ItemMetadata {
                            title: found.title,
                            duration: found.duration,
                            thumbnail,
                            format: Some(found.format),
                        })
                    }
                    Err(err) => Resolution::Unknown(err.to_string()),
                }
            }
        }
    }
}
