//! The media pipeline: uploads are checked, then jobs make their poster, storyboard,
//! thumbnails and playable copy.
//!
//! Jobs are rows in the store. Workers (half the cores by default, plus one that runs only quick
//! jobs) take them atomically, the job of the owner who started one least recently first (so one
//! user's many jobs cannot starve everyone else's), run ffmpeg through [`super::process`] under
//! limits on memory, CPU time and output size, and report progress from `-progress pipe:1`.
//! What a job makes counts against its owner's quota; what a failed, cancelled or timed-out job
//! half-made is deleted. A failed run
//! is retried with exponential backoff, then the job stays failed with ffmpeg's error. A running
//! job can be cancelled (its ffmpeg is killed). Jobs that were running when the server stopped
//! are queued again on start. Every change of a job or an upload is stored as a numbered event
//! and announced on the backplane ([`MEDIA_TOPIC`], through Redis to every node when there are
//! several): Server-Sent Events streams, on whichever node, read the owner's new events from the
//! store when told, and a browser that reconnects with `Last-Event-ID` gets exactly what it
//! missed. When an upload becomes playable, the rooms whose
//! queue holds it are told.

use super::files::{UploadFiles, remove_path};
use super::video::{self, Playable, Rejection, commands};
use crate::bus::backplane::Backplane;
use crate::clock::ServerClock;
use crate::rooms::Rooms;
use crate::store::Store;
use crate::store::jobs::{JobKind, JobPayload, JobRow, JobState, MediaChange, MediaEvent};
use crate::store::uploads::{MediaInfo, UploadRow, UploadState};
use anyhow::{Context, anyhow};
use futures_util::FutureExt;
use lockstep_core::ids::{JobId, UploadId, UserId};
use lockstep_core::queue::UploadMedia;
use lockstep_core::time::ServerTime;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// The backplane topic on which every stored media event is announced.
pub const MEDIA_TOPIC: &str = "media";

/// What the backplane carries about a media event: enough for a stream to know it concerns
/// its user; the event itself is read from the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaNotice {
    pub id: i64,
    pub owner: UserId,
    pub subject: String,
}

/// With several nodes: how often a node marks the jobs it runs as alive (and notices those
/// cancelled on another node), and looks for jobs whose node died.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// With several nodes: a running job not marked alive for this long belongs to a node that died
/// (or froze) and is queued again.
const SILENT_JOB: Duration = Duration::from_secs(30);
/// How often idle workers look for jobs whose retry is due.
const POLL: Duration = Duration::from_secs(1);
/// Progress is stored and sent at most this often per job.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Longest wait before a retry.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events kept in the store for resuming streams.
const EVENTS_KEPT: Duration = Duration::from_secs(24 * 3600);
/// Largest poster or thumbnail file (a 720p JPEG is about 100 KB).
const IMAGE_MAX_BYTES: u64 = 16 << 20;
/// Largest storyboard sheet (1600x900 JPEG, about 300 KB); their number is bounded by the
/// track's cues.
const SHEET_MAX_BYTES: u64 = 4 << 20;
/// CPU seconds the check of an upload may take (ffprobe, then decoding its last seconds).
const CHECK_CPU_SECS: u64 = 60;
/// Largest WebVTT file of one subtitle track (a film's is about 100 KiB).
const SUBTITLE_MAX_BYTES: u64 = 4 << 20;
/// Longest an upload's subtitles may take to extract (the upload's check waits for them).
const SUBTITLES_TIMEOUT: Duration = Duration::from_secs(600);

/// CPU seconds every run gets, whatever the video (start-up, probing the input).
const CPU_BASE_SECS: f64 = 60.0;

/// An empty `subtitles` folder: the upload was looked at, and has none to offer (or they could
/// not be extracted). Not made again for a deleted upload (its folder is gone).
async fn mark_no_subtitles(files: &UploadFiles) {
    let _ = tokio::fs::create_dir(files.subtitles_dir()).await;
}

/// What the pipeline needs from configuration.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Where uploads are kept.
    pub root: PathBuf,
    pub workers: usize,
    pub max_attempts: u32,
    /// The wait before the first retry; doubled each time.
    pub retry_base: Duration,
    /// Longest one ffmpeg run may take.
    pub timeout: Duration,
    /// What an upload may be.
    pub media_limits: super::video::MediaLimits,
    /// Address space of one ffmpeg or ffprobe process.
    pub memory_bytes: u64,
    /// Most CPU time of one ffmpeg run.
    pub cpu_secs: u64,
    /// Bytes of uploads and what is made from them one user may keep.
    pub quota_bytes: u64,
    /// Longest upload (s) transcoded for its sparse keyframes ([`video::playable_plan`]; 0:
    /// none).
    pub transcode_sparse_max_secs: f64,
}

/// The limits of one job's ffmpeg: its output size (per file), CPU time and memory.
pub fn job_limits(
    config: &JobsConfig,
    kind: JobKind,
    plan: Option<Playable>,
    tone_map: bool,
    duration: f64,
    upload_size: u64,
    quota_left: u64,
) -> super::process::Limits {
    let (file_bytes, cpu) = match kind {
        JobKind::Poster | JobKind::Thumbnail => (IMAGE_MAX_BYTES, CPU_BASE_SECS),
        // Keyframes only: about 0.003 CPU-s per second of 1080p here; a tenth leaves room.
        JobKind::Storyboard => (SHEET_MAX_BYTES, CPU_BASE_SECS + duration / 10.0),
        JobKind::Playable => {
            // A copy is about the size of the original; a transcode of a very compressed file
            // may be a few times larger. Either way it must fit what is left of the quota.
            let cap = upload_size.saturating_mul(4).saturating_add(64 << 20);
            let cpu = match plan {
                // Tone-mapping HDR (zscale in 32-bit float) took 1.7 CPU-s per second of 1080p
                // on top of the transcode's 1.1 here; about four times that at 4K.
                Some(Playable::Transcode) if tone_map => CPU_BASE_SECS + 20.0 * duration,
                // veryfast 4K on 2 cores: about 5 CPU-s per second of video.
                Some(Playable::Transcode) => CPU_BASE_SECS + 8.0 * duration,
                // AC-3 5.1 to AAC: 0.04 CPU-s per second of audio here; a quarter leaves room
                // for heavier codecs (DTS-HD, TrueHD).
                Some(Playable::TranscodeAudio) => CPU_BASE_SECS + duration / 4.0,
                _ => CPU_BASE_SECS + duration / 10.0,
            };
            (cap.min(quota_left), cpu)
        }
    };
    super::process::Limits {
        memory_bytes: Some(config.memory_bytes),
        cpu_secs: Some((cpu.ceil() as u64).min(config.cpu_secs).max(1)),
        file_bytes: Some(file_bytes),
        priority: super::process::Priority::Background,
    }
}

/// A job run's failure.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// Retrying cannot help (the thumbnail time is past the end, the upload is gone).
    #[error("{0}")]
    Permanent(String),
    /// ffmpeg gave up on the file with an error of its own ([`ProcessError::repeats`]): a run
    /// on the same file would fail again, so it is not retried (a two-hour film failing at 90%
    /// cost three times its transcode), except a copy, whose retry transcodes.
    ///
    /// [`ProcessError::repeats`]: super::process::ProcessError::repeats
    #[error("{0}")]
    Refused(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The media pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: ServerClock,
    rooms: Rooms,
    config: JobsConfig,
    backplane: Backplane,
    wake: Notify,
    running: Mutex<HashMap<JobId, CancellationToken>>,
}

/// The delay before retry number `attempt` (1 for the first retry).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

impl Jobs {
    pub fn new(
        store: Store,
        clock: ServerClock,
        rooms: Rooms,
        backplane: Backplane,
        config: JobsConfig,
    ) -> Self {
        Jobs {
            inner: Arc::new(Inner {
                store,
                clock,
                rooms,
                config,
                backplane,
                wake: Notify::new(),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &JobsConfig {
        &self.inner.config
    }

    pub fn files(&self, upload: UploadId) -> UploadFiles {
        UploadFiles::new(&self.inner.config.root, upload)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, CancellationToken>> {
        // The map is only inserted into and removed from; a poisoned lock leaves it usable.
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a change and announces it to every node's streams.
    pub async fn publish(&self, change: MediaChange) -> anyhow::Result<MediaEvent> {
        let event = self
            .inner
            .store
            .record_media_event(change, self.inner.clock.now())
            .await
            .context("storing a media event")?;
        let notice = MediaNotice {
            id: event.id,
            owner: event.change.owner(),
            subject: event.change.subject(),
        };
        let payload = serde_json::to_vec(&notice).context("encoding a media notice")?;
        if let Err(err) = self
            .inner
            .backplane
            .publish(MEDIA_TOPIC, payload.into())
            .await
        {
            // Stored all the same: streams catch up at the owner's next event, or when the
            // browser reconnects with Last-Event-ID.
            tracing::warn!(error = %err, "cannot announce a media event");
        }
        Ok(event)
    }

    async fn publish_job(&self, id: JobId) {
        match self.inner.store.job(id).await {
            Ok(Some(job)) => {
                if let Err(err) = self.publish(MediaChange::Job(job)).await {
                    tracing::warn!(error = %err, "cannot publish a job change");
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read a job"),
        }
    }

    async fn publish_upload(&self, id: UploadId) {
        match self.inner.store.upload(id).await {
            Ok(Some(upload)) => {
                if let Err(err) = self.publish(MediaChange::Upload(upload)).await {
                    tracing::warn!(error = %err, "cannot publish an upload change");
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read an upload"),
        }
    }

    /// Queues a job for `upload`.
    pub async fn enqueue(
        &self,
        upload: &UploadRow,
        kind: JobKind,
        payload: JobPayload,
    ) -> anyhow::Result<JobRow> {
        let job = self.new_job(upload, kind, payload);
        self.inner.store.insert_job(&job).await?;
        self.queued(&job).await?;
        Ok(job)
    }

    /// A job for `upload`, queued to run now, not stored yet.
    fn new_job(&self, upload: &UploadRow, kind: JobKind, payload: JobPayload) -> JobRow {
        let now = self.inner.clock.now();
        JobRow {
            id: JobId(Uuid::now_v7()),
            upload_id: upload.id,
            owner: upload.owner,
            kind,
            payload,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: self.inner.config.max_attempts.max(1),
            progress: 0.0,
            error: None,
            result: None,
            run_after: now,
            created: now,
            updated: now,
        }
    }

    /// A stored new job: tells its owner's streams and wakes a worker.
    async fn queued(&self, job: &JobRow) -> anyhow::Result<()> {
        self.publish(MediaChange::Job(job.clone())).await?;
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Cancels a job; a running one has its ffmpeg killed. Returns false if it had finished.
    pub async fn cancel(&self, id: JobId) -> anyhow::Result<bool> {
        let cancelled = self
            .inner
            .store
            .cancel_job(id, self.inner.clock.now())
            .await?;
        if let Some(token) = self.running().get(&id) {
            token.cancel();
        }
        if cancelled {
            self.publish_job(id).await;
        }
        Ok(cancelled)
    }

    /// Runs a failed or cancelled job again, from its first attempt. Returns false if it was
    /// neither.
    pub async fn retry(&self, id: JobId) -> anyhow::Result<bool> {
        let retried = self
            .inner
            .store
            .retry_job(id, self.inner.clock.now())
            .await?;
        if retried {
            self.publish_job(id).await;
            self.inner.wake.notify_one();
        }
        Ok(retried)
    }

    /// Starts the workers and the upkeep; first requeues jobs a stop interrupted and re-checks
    /// uploads that were being probed.
    pub async fn start(
        &self,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let now = self.inner.clock.now();
        if self.inner.backplane.is_shared() {
            // Other nodes are running jobs and checking uploads in the same media directory:
            // only jobs whose node went silent are ours to resume, here and by the heartbeat.
            self.requeue_silent_jobs().await;
            let jobs = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { jobs.heartbeat(shutdown).await });
        } else {
            let all = now + Duration::from_secs(1);
            for id in self.inner.store.requeue_interrupted_jobs(now, all).await? {
                tracing::info!(job = %id, "resuming a job interrupted by the last stop");
                self.publish_job(id).await;
            }
            for id in self.inner.store.uploads_probing().await? {
                let jobs = self.clone();
                tasks.spawn(async move { jobs.check_upload(id).await });
            }
            self.remove_temporaries().await;
        }
        for _ in 0..self.inner.config.workers.max(1) {
            let jobs = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { jobs.worker(shutdown, false).await });
        }
        let jobs = self.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move { jobs.worker(stop, true).await });
        let jobs = self.clone();
        tasks.spawn(async move {
            jobs.extract_missing_subtitles(&shutdown).await;
            jobs.list_missing_keyframes(shutdown).await;
        });
        Ok(())
    }

    /// The limits of a look at an upload's file (ffprobe, or ffmpeg reading it to no output).
    fn probe_limits(&self) -> super::process::Limits {
        super::process::Limits {
            memory_bytes: Some(self.inner.config.memory_bytes),
            cpu_secs: Some(CHECK_CPU_SECS),
            file_bytes: Some(0),
            priority: super::process::Priority::Background,
        }
    }

    /// The uploads in the media directory whose folder lacks `made` (a file or folder a later
    /// version makes): the start-up backfills' work.
    async fn uploads_without(
        &self,
        made: fn(&UploadFiles) -> PathBuf,
    ) -> Vec<(UploadId, UploadFiles)> {
        let mut missing = Vec::new();
        let Ok(mut dirs) = tokio::fs::read_dir(&self.inner.config.root).await else {
            return missing;
        };
        while let Ok(Some(entry)) = dirs.next_entry().await {
            let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let files = self.files(id);
            if !tokio::fs::try_exists(made(&files)).await.unwrap_or(true) {
                missing.push((id, files));
            }
        }
        missing
    }

    /// Lists the keyframes of the playable uploads that have none (made before they were
    /// listed), one at a time in the background: their pages then plan their landings by them.
    /// Idempotent, so nodes sharing the media directory may each do it.
    async fn list_missing_keyframes(self, shutdown: CancellationToken) {
        let limits = self.probe_limits();
        let mut listed = 0;
        for (id, files) in self.uploads_without(UploadFiles::keyframes).await {
            if shutdown.is_cancelled() {
                return;
            }
            // What the upload is served as: its playable copy, or the original once playable.
            let video = if tokio::fs::try_exists(files.playable())
                .await
                .unwrap_or(false)
            {
                files.playable()
            } else {
                match self.inner.store.upload(id).await {
                    Ok(Some(upload)) if upload.playable => files.original(),
                    _ => continue,
                }
            };
            self.save_keyframes(&files, &video, &limits, &shutdown)
                .await;
            listed += 1;
        }
        if listed > 0 {
            tracing::info!(
                uploads = listed,
                "listed the keyframes of uploads made before they were"
            );
        }
    }

    /// Queues again the jobs whose node has not marked them alive for [`SILENT_JOB`].
    async fn requeue_silent_jobs(&self) {
        let now = self.inner.clock.now();
        match self
            .inner
            .store
            .requeue_interrupted_jobs(now, now - SILENT_JOB)
            .await
        {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(job = %id, "resuming a job whose node went silent");
                    self.publish_job(id).await;
                }
                self.inner.wake.notify_one();
            }
            Err(err) => tracing::error!(error = %err, "cannot look for silent jobs"),
        }
    }

    /// With several nodes: marks the jobs this node runs as alive, stops those cancelled on
    /// another node (their ffmpeg is killed), and resumes jobs whose node died.
    async fn heartbeat(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(HEARTBEAT);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let mine: Vec<JobId> = self.running().keys().copied().collect();
            match self
                .inner
                .store
                .touch_jobs(&mine, self.inner.clock.now())
                .await
            {
                Ok(alive) => {
                    for id in mine.iter().filter(|id| !alive.contains(id)) {
                        if let Some(token) = self.running().get(id) {
                            tracing::info!(job = %id, "the job was cancelled elsewhere; stopping it");
                            token.cancel();
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot mark running jobs alive"),
            }
            self.requeue_silent_jobs().await;
        }
    }

    /// Deletes what jobs interrupted by the last stop half-wrote (no job runs yet).
    async fn remove_temporaries(&self) {
        let Ok(mut uploads) = tokio::fs::read_dir(&self.inner.config.root).await else {
            return;
        };
        while let Ok(Some(entry)) = uploads.next_entry().await {
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                self.files(id).remove_temporaries().await;
            }
        }
    }

    /// A worker: takes due jobs (only quick ones if `quick_only`) and runs them.
    async fn worker(self, shutdown: CancellationToken, quick_only: bool) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match self
                .inner
                .store
                .claim_job(self.inner.clock.now(), quick_only)
                .await
            {
                Ok(Some(job)) => {
                    tokio::select! {
                        () = self.run(job) => {}
                        // Stopping: the job stays `running` in the store and is requeued on start.
                        () = shutdown.cancelled() => return,
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        () = self.inner.wake.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot take a job");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Runs every job that is due, one after the other, until none is left (tests use this
    /// instead of waiting for the workers).
    pub async fn run_pending_jobs(&self) -> anyhow::Result<usize> {
        let mut ran = 0;
        while let Some(job) = self
            .inner
            .store
            .claim_job(self.inner.clock.now(), false)
            .await?
        {
            self.run(job).await;
            ran += 1;
        }
        Ok(ran)
    }

    async fn run(&self, job: JobRow) {
        let cancel = CancellationToken::new();
        self.running().insert(job.id, cancel.clone());
        self.publish_job(job.id).await;
        let outcome = AssertUnwindSafe(self.execute(&job, &cancel))
            .catch_unwind()
            .await;
        self.running().remove(&job.id);
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let ended = match outcome {
            // The upload becomes playable with the job's end, in the same transaction.
            Ok(Ok(result)) if job.kind == JobKind::Playable => {
                store
                    .end_playable_job(job.id, job.upload_id, &result, now)
                    .await
            }
            Ok(Ok(result)) => {
                store
                    .end_job_run(job.id, JobState::Done, None, Some(&result), now, now)
                    .await
            }
            Ok(Err(RunError::Cancelled)) => Ok(false), // already marked cancelled
            Ok(Err(RunError::Permanent(error) | RunError::Refused(error))) => {
                store
                    .end_job_run(job.id, JobState::Failed, Some(&error), None, now, now)
                    .await
            }
            Ok(Err(RunError::Other(error))) => self.failed(&job, &format!("{error:#}"), now).await,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                tracing::error!(job = %job.id, panic = what, "a media job panicked");
                self.failed(&job, "internal error", now).await
            }
        };
        if let Err(err) = ended {
            tracing::error!(job = %job.id, error = %err, "cannot record the end of a job");
        }
        // What the upload's jobs made counts against its owner's quota.
        let made = self.files(job.upload_id).derived_bytes().await;
        if let Err(err) = store.set_derived_bytes(job.upload_id, made).await {
            tracing::warn!(upload = %job.upload_id, error = %err, "cannot record what jobs made");
        }
        self.publish_job(job.id).await;
        if job.kind == JobKind::Playable {
            match store.job(job.id).await {
                Ok(Some(JobRow {
                    state: JobState::Done,
                    ..
                })) => self.announce_playable(job.upload_id).await,
                // It will never play: rooms waiting for it move on.
                Ok(Some(JobRow {
                    state: JobState::Failed | JobState::Cancelled,
                    ..
                })) => self.inner.rooms.upload_gone(job.upload_id).await,
                _ => {}
            }
        }
    }

    /// A failed run: retry after a backoff while attempts are left, else stay failed.
    async fn failed(
        &self,
        job: &JobRow,
        error: &str,
        now: ServerTime,
    ) -> Result<bool, sqlx::Error> {
        tracing::warn!(job = %job.id, kind = job.kind.as_str(), attempt = job.attempts, error, "media job failed");
        let store = &self.inner.store;
        if job.attempts < job.max_attempts {
            let at = now + backoff(self.inner.config.retry_base, job.attempts);
            store
                .end_job_run(job.id, JobState::Queued, Some(error), None, at, now)
                .await
        } else {
            store
                .end_job_run(job.id, JobState::Failed, Some(error), None, now, now)
                .await
        }
    }

    /// Runs one job; returns what it made.
    async fn execute(
        &self,
        job: &JobRow,
        cancel: &CancellationToken,
    ) -> Result<serde_json::Value, RunError> {
        let upload = self
            .inner
            .store
            .upload(job.upload_id)
            .await
            .map_err(|e| RunError::Other(e.into()))?
            .ok_or_else(|| RunError::Permanent("the upload was deleted".into()))?;
        let media = upload
            .media
            .clone()
            .ok_or_else(|| RunError::Permanent("the upload has not been checked".into()))?;
        let files = self.files(upload.id);
        let input = files.original();
        let cfg = &self.inner.config;
        let plan = (job.kind == JobKind::Playable).then(|| {
            let plan = video::playable_plan(&media, cfg.transcode_sparse_max_secs);
            // A copy whose last run failed is transcoded on this one: ffmpeg may refuse to put
            // streams as they are into an MP4 (a Matroska file's H.264 without what an MP4
            // needs, say) where decoding them works. A stop's interruption leaves no error.
            match plan {
                Playable::Remux | Playable::TranscodeAudio if job.error.is_some() => {
                    Playable::Transcode
                }
                plan => plan,
            }
        });
        let used = self
            .inner
            .store
            .upload_bytes_of(upload.owner)
            .await
            .map_err(|e| RunError::Other(e.into()))?;
        // The upload itself is in `used`, and so is what its earlier jobs made.
        let quota_left = cfg.quota_bytes.saturating_sub(used);
        if job.kind == JobKind::Playable && quota_left == 0 {
            return Err(RunError::Permanent(
                "no room left in your upload quota for a playable copy; delete something and retry"
                    .into(),
            ));
        }
        let fix = video::Corrections::of(&media);
        let limits = job_limits(
            cfg,
            job.kind,
            plan,
            fix.tone_map.is_some(),
            media.duration,
            upload.size,
            quota_left,
        );
        // Where the job writes until it succeeds; deleted if it does not.
        let tmp = match job.kind {
            JobKind::Poster => files.dir.join("poster.tmp.jpg"),
            JobKind::Thumbnail => files.thumbnail(job.id).with_extension("tmp.jpg"),
            JobKind::Storyboard => files.dir.join("storyboard.tmp"),
            JobKind::Playable => files.dir.join("playable.tmp.mp4"),
        };
        let (progress_tx, progress_rx) = watch::channel(0.0f64);
        let reporter = tokio::spawn(self.clone().report_progress(job.id, progress_rx));
        let duration = media.duration;
        let result = async {
            match job.kind {
                JobKind::Poster => {
                    let at = (duration * 0.1).min(10.0);
                    self.frame(&input, &tmp, at, 720, &media, &limits, cancel, &progress_tx).await?;
                    tokio::fs::rename(&tmp, files.poster()).await.context("saving the poster")?;
                    Ok(serde_json::json!({ "poster": files.poster_url() }))
                }
                JobKind::Thumbnail => {
                    let at = job.payload.at.unwrap_or(0.0);
                    if !(0.0..duration).contains(&at) {
                        return Err(RunError::Permanent(format!("{at} s is past the end of the video ({duration:.1} s)")));
                    }
                    let out = files.thumbnail(job.id);
                    tokio::fs::create_dir_all(out.parent().unwrap_or(&files.dir)).await.context("thumbnail folder")?;
                    self.frame(&input, &tmp, at, 360, &media, &limits, cancel, &progress_tx).await?;
                    tokio::fs::rename(&tmp, &out).await.context("saving the thumbnail")?;
                    Ok(serde_json::json!({ "thumbnail": files.thumbnail_url(job.id), "at": at }))
                }
                JobKind::Storyboard => {
                    let interval = video::storyboard_interval(duration);
                    let _ = tokio::fs::remove_dir_all(&tmp).await;
                    tokio::fs::create_dir_all(&tmp).await.context("storyboard folder")?;
                    self.ffmpeg(commands::storyboard(&input, &tmp, interval, duration, &fix), duration, &limits, cancel, &progress_tx).await?;
                    let _ = tokio::fs::remove_dir_all(files.storyboard_dir()).await;
                    tokio::fs::rename(&tmp, files.storyboard_dir()).await.context("saving the storyboard")?;
                    let vtt = video::storyboard_vtt(&files.storyboard_base_url(), duration, interval);
                    tokio::fs::write(files.storyboard_vtt(), vtt).await.context("writing the storyboard track")?;
                    Ok(serde_json::json!({
                        "vtt": files.storyboard_vtt_url(),
                        "interval": interval,
                        "thumbnails": video::storyboard_count(duration, interval),
                    }))
                }
                JobKind::Playable => {
                    let plan = plan.unwrap_or(Playable::Transcode);
                    let made = self.ffmpeg(commands::playable(&input, &tmp, plan, &fix), duration, &limits, cancel, &progress_tx).await;
                    match made {
                        // A refused copy is transcoded on the retry (`plan` above).
                        Err(RunError::Refused(error))
                            if matches!(plan, Playable::Remux | Playable::TranscodeAudio) =>
                        {
                            return Err(RunError::Other(anyhow!(error)));
                        }
                        made => made?,
                    }
                    tokio::fs::rename(&tmp, files.playable()).await.context("saving the playable copy")?;
                    self.save_keyframes(&files, &files.playable(), &limits, cancel).await;
                    Ok(serde_json::json!({ "video": format!("{}/video", files.url_base()), "how": plan.how() }))
                }
            }
        }
        .await;
        reporter.abort();
        if result.is_err() {
            // Cancelled, failed, timed out or over a limit: nothing half-written stays.
            super::files::remove_path(&tmp).await;
        }
        result
    }

    /// Lists the keyframes of `video`, the file the upload is served as, into its
    /// `keyframes.json`, for the pages' landings to plan their seeks by. Without it they plan
    /// for the seek time they learnt on average: a failure here is logged, not the job's.
    async fn save_keyframes(
        &self,
        files: &UploadFiles,
        video: &std::path::Path,
        limits: &super::process::Limits,
        cancel: &CancellationToken,
    ) {
        if let Some(times) = self.list_keyframes(video, limits, cancel).await {
            self.write_keyframes(files, &times).await;
        }
    }

    /// The keyframe times of `video` ([`video::keyframes`]), or None, logged, when ffprobe
    /// could not list them.
    async fn list_keyframes(
        &self,
        video: &std::path::Path,
        limits: &super::process::Limits,
        cancel: &CancellationToken,
    ) -> Option<Vec<f64>> {
        let cfg = &self.inner.config;
        match video::keyframes(&cfg.ffprobe, video, cfg.timeout, limits, cancel).await {
            Ok(times) => Some(times),
            Err(err) => {
                tracing::warn!(video = %video.display(), error = %err, "cannot list an upload's keyframes");
                None
            }
        }
    }

    /// Writes `times` as the upload's `keyframes.json`, even when empty (so many that every
    /// seek lands next to one): the start-up backfill lists only uploads without the file.
    async fn write_keyframes(&self, files: &UploadFiles, times: &[f64]) {
        let written = async {
            // Named for this run: the backfill at start-up may list the same file meanwhile.
            let tmp = files
                .dir
                .join(format!("keyframes.{}.tmp.json", Uuid::now_v7()));
            tokio::fs::write(&tmp, video::keyframes_json(times))
                .await
                .context("writing the keyframes")?;
            tokio::fs::rename(&tmp, files.keyframes())
                .await
                .context("saving the keyframes")
        };
        if let Err(err) = written.await {
            tracing::warn!(dir = %files.dir.display(), error = %format!("{err:#}"), "cannot save an upload's keyframes");
        }
    }

    /// One frame of `input` (whose media info is `media`) at `at` into `out`
    /// ([`commands::frame`]): seeked quickly by the file's index, or near the time and decoded up
    /// to it in a file without one ([`video::seeks_by_index`]); and, when that decoded nothing
    /// (an MPEG-TS whose last keyframe is before the place seeked to has none to jump to: ffmpeg
    /// says "Output file is empty" and succeeds), decoded from the start.
    #[allow(clippy::too_many_arguments)]
    async fn frame(
        &self,
        input: &std::path::Path,
        out: &std::path::Path,
        at: f64,
        height: u32,
        media: &MediaInfo,
        limits: &super::process::Limits,
        cancel: &CancellationToken,
        progress: &watch::Sender<f64>,
    ) -> Result<(), RunError> {
        let fix = video::Corrections::of(media);
        let first = if video::seeks_by_index(&media.container) {
            commands::Seek::Quick
        } else {
            commands::Seek::Near {
                window: commands::near_window(media.keyframe_spacing),
            }
        };
        let mut tried = Vec::new();
        for seek in [first, commands::Seek::Decoded] {
            let args = commands::frame(input, out, at, height, &fix, seek);
            // Near a time within its window is decoded from the start already.
            if tried.contains(&args) {
                continue;
            }
            self.ffmpeg(args.clone(), media.duration, limits, cancel, progress)
                .await?;
            if tokio::fs::try_exists(out).await.unwrap_or(false) {
                return Ok(());
            }
            tracing::info!(input = %input.display(), at, ?seek, "ffmpeg made no frame");
            tried.push(args);
        }
        Err(RunError::Permanent(format!(
            "the video has no picture to show at {at:.1} s"
        )))
    }

    async fn ffmpeg(
        &self,
        args: Vec<String>,
        duration: f64,
        limits: &super::process::Limits,
        cancel: &CancellationToken,
        progress: &watch::Sender<f64>,
    ) -> Result<(), RunError> {
        let cfg = &self.inner.config;
        video::run_ffmpeg(
            &cfg.ffmpeg,
            args,
            duration,
            cfg.timeout,
            limits,
            cancel,
            |p| {
                let _ = progress.send(p);
            },
        )
        .await
        .map_err(|e| match e {
            super::process::ProcessError::Cancelled { .. } => RunError::Cancelled,
            // Running it again would hit the same limit.
            e @ super::process::ProcessError::OverLimit { .. } => {
                RunError::Permanent(e.to_string())
            }
            e if e.repeats() => RunError::Refused(e.to_string()),
            other => RunError::Other(anyhow!(other)),
        })
    }

    /// Stores and sends a job's progress, at most every PROGRESS_EVERY.
    async fn report_progress(self, job: JobId, mut progress: watch::Receiver<f64>) {
        let mut last = 0.0;
        while progress.changed().await.is_ok() {
            let p = *progress.borrow_and_update();
            if p - last < 0.01 && p < 1.0 {
                continue;
            }
            last = p;
            if self
                .inner
                .store
                .set_job_progress(job, p, self.inner.clock.now())
                .await
                .is_ok()
            {
                self.publish_job(job).await;
            }
            tokio::time::sleep(PROGRESS_EVERY).await;
        }
    }

    // ---- Uploads --------------------------------------------------------------------------

    /// The whole file arrived: check it, then start its jobs (in the background).
    pub fn upload_complete(&self, tasks: &TaskTracker, upload: UploadId) {
        let jobs = self.clone();
        tasks.spawn(async move { jobs.check_upload(upload).await });
    }

    async fn check_upload(&self, id: UploadId) {
        if let Err(err) = self.try_check_upload(id).await {
            tracing::error!(upload = %id, error = %format!("{err:#}"), "checking an upload failed");
        }
    }

    async fn try_check_upload(&self, id: UploadId) -> anyhow::Result<()> {
        let store = &self.inner.store;
        let Some(upload) = store.upload(id).await? else {
            return Ok(());
        };
        let files = self.files(id);
        store
            .set_upload_state(id, UploadState::Probing, None, None, self.inner.clock.now())
            .await?;
        self.publish_upload(id).await;
        let cfg = &self.inner.config;
        let limits = self.probe_limits();
        match video::check_upload(
            &cfg.ffprobe,
            &cfg.ffmpeg,
            &files.original(),
            Duration::from_secs(60),
            &cfg.media_limits,
            &limits,
        )
        .await
        {
            Err(Rejection::Tool(error)) => {
                // Our tools failed, not the file: leave it to be checked again on the next start.
                anyhow::bail!("the video tools failed: {error}");
            }
            Err(rejection) => {
                tracing::info!(upload = %id, reason = %rejection, "upload rejected");
                files.remove().await;
                store
                    .set_upload_state(
                        id,
                        UploadState::Rejected,
                        Some(&rejection.to_string()),
                        None,
                        self.inner.clock.now(),
                    )
                    .await?;
                self.publish_upload(id).await;
            }
            Ok(mut media) => {
                // A file that could be served as it is or remuxed keeps its keyframes only if
                // they are close enough together (`playable_plan`): they are listed first. So
                // are those of a file without an index (MPEG-TS, MPEG-PS), always transcoded:
                // its frames are made by seeking back past their spacing (`Jobs::frame`).
                let original = if video::playable_plan(&media, 0.0) == Playable::Transcode
                    && video::seeks_by_index(&media.container)
                {
                    None
                } else {
                    self.list_keyframes(&files.original(), &limits, &CancellationToken::new())
                        .await
                };
                media.keyframe_spacing = original
                    .as_deref()
                    .and_then(|times| video::keyframe_spacing(times, media.duration));
                if media.subtitles.is_empty() || !self.extract_subtitles(&files, &media).await {
                    media.subtitles.clear();
                    mark_no_subtitles(&files).await;
                }
                let as_is =
                    video::playable_plan(&media, cfg.transcode_sparse_max_secs) == Playable::AsIs;
                if as_is && let Some(times) = &original {
                    // Served as uploaded: its keyframes are the original's.
                    self.write_keyframes(&files, times).await;
                }
                let kinds: &[JobKind] = if as_is {
                    &[JobKind::Poster, JobKind::Storyboard]
                } else {
                    &[JobKind::Playable, JobKind::Poster, JobKind::Storyboard]
                };
                let jobs: Vec<JobRow> = kinds
                    .iter()
                    .map(|&kind| self.new_job(&upload, kind, JobPayload::default()))
                    .collect();
                store
                    .upload_checked(id, &media, as_is, &jobs, self.inner.clock.now())
                    .await?;
                if as_is {
                    self.announce_playable(id).await;
                } else {
                    self.publish_upload(id).await;
                }
                for job in &jobs {
                    self.queued(job).await?;
                }
            }
        }
        Ok(())
    }

    /// Extracts the upload's text subtitles to WebVTT ([`commands::subtitles`]) for the room's
    /// player, and puts them in place; false, logged, when ffmpeg could not (the upload plays
    /// without).
    async fn extract_subtitles(&self, files: &UploadFiles, media: &MediaInfo) -> bool {
        match self.make_subtitles(files, media).await {
            Some(made) => self.place_subtitles(files, &made).await,
            None => false,
        }
    }

    /// The subtitles made into a temporary folder ([`Jobs::place_subtitles`] puts it in place),
    /// or None, logged.
    async fn make_subtitles(&self, files: &UploadFiles, media: &MediaInfo) -> Option<PathBuf> {
        let cfg = &self.inner.config;
        let tmp = files.dir.join("subtitles.tmp");
        remove_path(&tmp).await;
        let made = async {
            tokio::fs::create_dir(&tmp)
                .await
                .context("subtitles folder")?;
            let limits = super::process::Limits {
                memory_bytes: Some(cfg.memory_bytes),
                // The file is demuxed, nothing decoded: I/O more than CPU.
                cpu_secs: Some(CHECK_CPU_SECS + (media.duration / 100.0) as u64),
                file_bytes: Some(SUBTITLE_MAX_BYTES),
                priority: super::process::Priority::Background,
            };
            let args = commands::subtitles(&files.original(), &tmp, &media.subtitles);
            video::run_ffmpeg(
                &cfg.ffmpeg,
                args,
                media.duration,
                // Reading the largest upload through (4 GiB) takes a minute at 70 MB/s.
                cfg.timeout.min(SUBTITLES_TIMEOUT),
                &limits,
                &CancellationToken::new(),
                |_| {},
            )
            .await
            .map_err(anyhow::Error::from)
        };
        match made.await {
            Ok(()) => Some(tmp),
            Err(err) => {
                tracing::warn!(dir = %files.dir.display(), error = %format!("{err:#}"), "cannot extract an upload's subtitles");
                remove_path(&tmp).await;
                None
            }
        }
    }

    /// Puts `made` in place as the upload's subtitles folder; false, logged, when it cannot.
    async fn place_subtitles(&self, files: &UploadFiles, made: &std::path::Path) -> bool {
        remove_path(&files.subtitles_dir()).await;
        match tokio::fs::rename(made, files.subtitles_dir()).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(dir = %files.dir.display(), error = %err, "cannot save an upload's subtitles");
                remove_path(made).await;
                false
            }
        }
    }

    /// Extracts the subtitles of the uploads checked before they were (theirs is the only
    /// upload folder without a `subtitles` folder: one is made, empty, for an upload that has
    /// none), one at a time in the background. Idempotent, so nodes sharing the media directory
    /// may each do it.
    async fn extract_missing_subtitles(&self, shutdown: &CancellationToken) {
        let cfg = &self.inner.config;
        let limits = self.probe_limits();
        let mut found = 0;
        for (id, files) in self.uploads_without(UploadFiles::subtitles_dir).await {
            if shutdown.is_cancelled() {
                return;
            }
            let Ok(Some(upload)) = self.inner.store.upload(id).await else {
                continue;
            };
            let (UploadState::Ready, Some(mut media)) = (upload.state, upload.media) else {
                continue;
            };
            let tracks = match video::subtitle_streams(
                &cfg.ffprobe,
                &files.original(),
                Duration::from_secs(60),
                &limits,
            )
            .await
            {
                Ok(tracks) => tracks,
                Err(err) => {
                    tracing::warn!(upload = %id, error = %format!("{err:#}"), "cannot read an upload's subtitle tracks");
                    continue;
                }
            };
            if tracks.is_empty() {
                mark_no_subtitles(&files).await;
                continue;
            }
            media.subtitles = tracks;
            // Listed once made, in place once listed: a stop in between leaves no folder, and
            // the next start makes them again.
            let Some(made) = self.make_subtitles(&files, &media).await else {
                mark_no_subtitles(&files).await;
                continue;
            };
            match self.inner.store.set_upload_media(id, &media).await {
                Ok(true) => {
                    if self.place_subtitles(&files, &made).await {
                        found += 1;
                    }
                }
                Ok(false) => remove_path(&made).await,
                Err(err) => {
                    tracing::warn!(upload = %id, error = %err, "cannot record an upload's subtitles");
                    remove_path(&made).await;
                }
            }
        }
        if found > 0 {
            tracing::info!(
                uploads = found,
                "extracted the subtitles of uploads checked before they were"
            );
        }
    }

    /// What rooms need to know about a playable upload.
    pub async fn upload_media(&self, upload: &UploadRow) -> UploadMedia {
        let files = self.files(upload.id);
        let poster = tokio::fs::try_exists(files.poster())
            .await
            .unwrap_or(false)
            .then(|| files.poster_url());
        upload.room_media(poster)
    }

    /// The upload was marked playable: tell its owner's streams and the rooms that queue it.
    async fn announce_playable(&self, id: UploadId) {
        let store = &self.inner.store;
        self.publish_upload(id).await;
        let Ok(Some(upload)) = store.upload(id).await else {
            return;
        };
        let media = self.upload_media(&upload).await;
        // The stored items first (rooms not loaded), then the live rooms, which write the same.
        if let Err(err) = store.mark_upload_items_ready(&media).await {
            tracing::error!(upload = %id, error = %err, "cannot mark queue items ready");
        }
        self.inner.rooms.upload_ready(&media).await;
    }

    /// Deletes uploads left unfinished since before `before`, with their files.
    pub async fn expire_stale_uploads(&self, before: ServerTime) -> anyhow::Result<usize> {
        let stale = self.inner.store.stale_uploads(before).await?;
        for id in &stale {
            tracing::info!(upload = %id, "deleting an upload that was never finished");
            self.files(*id).remove().await;
            self.inner.store.delete_upload(*id).await?;
        }
        self.inner
            .store
            .prune_job_events(self.inner.clock.now() - EVENTS_KEPT)
            .await?;
        Ok(stale.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(20));
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
