//! Media jobs: rows taken atomically by workers, with their progress and their change events.

use super::{Backend, Store, flag, parse_id, parse_json, to_json};
use lockstep_core::ids::{JobId, UploadId, UserId};
use lockstep_core::time::ServerTime;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a job makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// One frame as the video's poster image.
    Poster,
    /// Thumbnails every few seconds tiled into sprite sheets, and a WebVTT track pointing into them.
    Storyboard,
    /// One frame at a time the user picked.
    Thumbnail,
    /// A copy browsers can play: remuxed to fast-start MP4, or transcoded.
    Playable,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Poster => "poster",
            JobKind::Storyboard => "storyboard",
            JobKind::Thumbnail => "thumbnail",
            JobKind::Playable => "playable",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "poster" => JobKind::Poster,
            "storyboard" => JobKind::Storyboard,
            "thumbnail" => JobKind::Thumbnail,
            "playable" => JobKind::Playable,
            other => return Err(sqlx::Error::Decode(format!("job kind {other:?}").into())),
        })
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => return Err(sqlx::Error::Decode(format!("job state {other:?}").into())),
        })
    }

    /// Done, failed or cancelled: nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// What a job needs beyond its upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobPayload {
    /// For thumbnails: the time of the frame, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}

/// A job as stored and as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: JobId,
    pub upload_id: UploadId,
    pub owner: UserId,
    pub kind: JobKind,
    pub payload: JobPayload,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    /// 0 to 1.
    pub progress: f64,
    pub error: Option<String>,
    /// What it made: URLs of its files.
    pub result: Option<serde_json::Value>,
    pub run_after: ServerTime,
    pub created: ServerTime,
    pub updated: ServerTime,
}

const COLUMNS: &str = "id, upload_id, owner_id, kind, payload, state, attempts, max_attempts, progress, \
                       error, result, run_after_ms, created_ms, updated_ms";

fn from_row(r: &AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: parse_id(&r.try_get::<String, _>("id")?)?,
        upload_id: parse_id(&r.try_get::<String, _>("upload_id")?)?,
        owner: parse_id(&r.try_get::<String, _>("owner_id")?)?,
        kind: JobKind::parse(&r.try_get::<String, _>("kind")?)?,
        payload: parse_json(&r.try_get::<String, _>("payload")?)?,
        state: JobState::parse(&r.try_get::<String, _>("state")?)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(r.try_get::<i64, _>("max_attempts")?).unwrap_or(1),
        progress: r.try_get("progress")?,
        error: r.try_get("error")?,
        result: r
            .try_get::<Option<String>, _>("result")?
            .map(|s| parse_json(&s))
            .transpose()?,
        run_after: ServerTime::from_millis(r.try_get("run_after_ms")?),
        created: ServerTime::from_millis(r.try_get("created_ms")?),
        updated: ServerTime::from_millis(r.try_get("updated_ms")?),
    })
}

/// What changed: a job, or an upload (uploads share the stream so a page sees both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MediaChange {
    Job(JobRow),
    Upload(super::uploads::UploadRow),
}

impl MediaChange {
    pub fn owner(&self) -> UserId {
        match self {
            MediaChange::Job(j) => j.owner,
            MediaChange::Upload(u) => u.owner,
        }
    }

    /// The job or upload id the change is about.
    pub fn subject(&self) -> String {
        match self {
            MediaChange::Job(j) => j.id.to_string(),
            MediaChange::Upload(u) => u.id.to_string(),
        }
    }
}

/// A numbered change, for Server-Sent Events (`id:` is the number).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaEvent {
    pub id: i64,
    pub change: MediaChange,
}

impl Store {
    pub async fn insert_job(&self, job: &JobRow) -> Result<(), sqlx::Error> {
        Self::insert_job_on(&mut *self.pool().acquire().await?, job).await
    }

    /// Stores a new job on `conn` (the pool, or a transaction the job is part of).
    pub(crate) async fn insert_job_on(
        conn: &mut sqlx::AnyConnection,
        job: &JobRow,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO jobs (id, upload_id, owner_id, kind, payload, state, attempts, max_attempts, \
             progress, run_after_ms, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $8, $9, $9)",
        )
        .bind(job.id.to_string())
        .bind(job.upload_id.to_string())
        .bind(job.owner.to_string())
        .bind(job.kind.as_str())
        .bind(to_json(&job.payload)?)
        .bind(job.state.as_str())
        .bind(i64::from(job.max_attempts))
        .bind(job.run_after.millis())
        .bind(job.created.millis())
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn job(&self, id: JobId) -> Result<Option<JobRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub async fn jobs_of(&self, owner: UserId) -> Result<Vec<JobRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE owner_id = $1 ORDER BY created_ms DESC, id LIMIT 500"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    pub async fn jobs_of_upload(&self, upload: UploadId) -> Result<Vec<JobRow>, sqlx::Error> {
        let sql =
            format!("SELECT {COLUMNS} FROM jobs WHERE upload_id = $1 ORDER BY created_ms, id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(upload.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Takes a queued job that is due, marking it running, in one statement (so two workers
    /// never take the same job). Fair share: the job of the owner with the fewest running, then
    /// of the owner who started a run least recently, then the oldest: one user's hundred jobs
    /// take turns with everyone else's instead of going first. `quick_only` takes only posters,
    /// thumbnails and storyboards (a worker kept for them, so a long transcode starves nobody).
    pub async fn claim_job(
        &self,
        now: ServerTime,
        quick_only: bool,
    ) -> Result<Option<JobRow>, sqlx::Error> {
        let kinds = if quick_only {
            "AND j.kind IN ('poster', 'thumbnail', 'storyboard')"
        } else {
            ""
        };
        // On PostgreSQL, workers of several nodes claim at once: the chosen row is locked and
        // rows another worker is taking are passed over, so each takes a different job at once
        // rather than all waiting on the first one (and the losers finding it gone and coming
        // back empty-handed). SQLite has one writer at a time, which serialises claims.
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF j SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_ms = $1, \
             started_ms = $1 \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.run_after_ms <= $1 {kinds} \
                         ORDER BY (SELECT COUNT(*) FROM jobs r WHERE r.owner_id = j.owner_id AND r.state = 'running'), \
                                  (SELECT COALESCE(MAX(t.started_ms), 0) FROM jobs t WHERE t.owner_id = j.owner_id), \
                                  j.run_after_ms, j.created_ms LIMIT 1 {lock}) \
             AND state = 'queued' RETURNING {COLUMNS}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.millis())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Jobs of `owner` not yet finished (queued or running).
    pub async fn unfinished_jobs_of(&self, owner: UserId) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE owner_id = $1 AND state IN ('queued', 'running')",
        )
        .bind(owner.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Updates a running job's progress (ignored once the job is no longer running).
    pub async fn set_job_progress(
        &self,
        id: JobId,
        progress: f64,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET progress = $1, updated_ms = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(progress)
        .bind(now.millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records how a run ended: `state` done (with `result`), queued again (retry at
    /// `run_after`), failed or cancelled (with `error`). Only a running job changes, so a job
    /// cancelled meanwhile stays cancelled.
    pub async fn end_job_run(
        &self,
        id: JobId,
        state: JobState,
        error: Option<&str>,
        result: Option<&serde_json::Value>,
        run_after: ServerTime,
        now: ServerTime,
    ) -> Result<bool, sqlx::Error> {
        let progress = if state == JobState::Done { 1.0 } else { 0.0 };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, error = $2, result = $3, run_after_ms = $4, progress = $5, \
             updated_ms = $6 WHERE id = $7 AND state = 'running'",
        )
        .bind(state.as_str())
        .bind(error.map(str::to_owned))
        .bind(result.map(to_json).transpose()?)
        .bind(run_after.millis())
        .bind(progress)
        .bind(now.millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a make-playable job's success and marks its upload playable, in one transaction:
    /// a stop between two writes would leave the job done and the upload never playable, since
    /// nothing runs a done job again. False (and nothing written) if the job was no longer
    /// running.
    pub async fn end_playable_job(
        &self,
        id: JobId,
        upload: UploadId,
        result: &serde_json::Value,
        now: ServerTime,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', error = NULL, result = $1, run_after_ms = $2, progress = 1, \
             updated_ms = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(to_json(result)?)
        .bind(now.millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE uploads SET playable = $1, updated_ms = $2 WHERE id = $3")
            .bind(flag(true))
            .bind(now.millis())
            .bind(upload.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels a job that has not finished. Returns false when it had.
    pub async fn cancel_job(&self, id: JobId, now: ServerTime) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', updated_ms = $1 WHERE id = $2 AND state IN ('queued', 'running')",
        )
        .bind(now.millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A failed or cancelled job is queued again with all its attempts; false if it was neither.
    pub async fn retry_job(&self, id: JobId, now: ServerTime) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, progress = 0, error = NULL, result = NULL, \
             run_after_ms = $1, updated_ms = $1 WHERE id = $2 AND state IN ('failed', 'cancelled')",
        )
        .bind(now.millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues again the running jobs whose node stopped (their attempt counts): on one node all
    /// of them (`silent_since` in the future), with several those whose node has not touched
    /// them since `silent_since` (running nodes touch theirs every few seconds; see
    /// [`Self::touch_jobs`]).
    pub async fn requeue_interrupted_jobs(
        &self,
        now: ServerTime,
        silent_since: ServerTime,
    ) -> Result<Vec<JobId>, sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after_ms = $1, progress = 0, updated_ms = $1 \
             WHERE state = 'running' AND updated_ms < $2 RETURNING id",
        )
        .bind(now.millis())
        .bind(silent_since.millis())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| parse_id(&r.try_get::<String, _>("id")?))
        .collect()
    }

    /// Marks the jobs this node runs as alive (now), and returns those among them that are still
    /// running: the others were cancelled, on this node or on another.
    pub async fn touch_jobs(
        &self,
        ids: &[JobId],
        now: ServerTime,
    ) -> Result<Vec<JobId>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|n| format!("${}", n + 2)).collect();
        let sql = format!(
            "UPDATE jobs SET updated_ms = $1 WHERE state = 'running' AND id IN ({}) RETURNING id",
            marks.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.millis());
        for id in ids {
            query = query.bind(id.to_string());
        }
        query
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| parse_id(&r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Stores a change as a numbered event, and returns the event.
    pub async fn record_media_event(
        &self,
        change: MediaChange,
        now: ServerTime,
    ) -> Result<MediaEvent, sqlx::Error> {
        let mut tx = self.begin().await?;
        if self.backend() == Backend::Postgres {
            // Streams read an owner's events by id (`media_events_after`), so for one owner the
            // ids must become visible in their order. Numbers from an identity column do not
            // (a transaction may commit after a later number's); taking the owner's row lock
            // first makes one owner's events commit one after another, in number order, on
            // every node. SQLite has one writer: already so.
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(change.owner().to_string())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO job_events (job_id, owner_id, data, at_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(change.subject())
        .bind(change.owner().to_string())
        .bind(to_json(&change)?)
        .bind(now.millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(MediaEvent {
            id: row.try_get("id")?,
            change,
        })
    }

    /// The events of `owner` (about one job or upload, if given) after event `after`, oldest first.
    pub async fn media_events_after(
        &self,
        owner: UserId,
        subject: Option<&str>,
        after: i64,
    ) -> Result<Vec<MediaEvent>, sqlx::Error> {
        let rows = match subject {
            Some(subject) => {
                sqlx::query("SELECT id, data FROM job_events WHERE job_id = $1 AND owner_id = $2 AND id > $3 ORDER BY id LIMIT 5000")
                    .bind(subject.to_owned())
                    .bind(owner.to_string())
                    .bind(after)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT id, data FROM job_events WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT 5000")
                    .bind(owner.to_string())
                    .bind(after)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(MediaEvent {
                    id: r.try_get("id")?,
                    change: parse_json(&r.try_get::<String, _>("data")?)?,
                })
            })
            .collect()
    }

    /// The newest event id (0 when none), where a fresh stream starts.
    pub async fn last_job_event_id(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM job_events")
            .fetch_one(self.pool())
            .await?;
        row.try_get("id")
    }

    /// Forgets events older than `before` (a browser away that long gets a fresh list).
    pub async fn prune_job_events(&self, before: ServerTime) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM job_events WHERE at_ms < $1")
            .bind(before.millis())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;
    use crate::store::uploads::{UploadRow, UploadState};
    use crate::store::users::User;
    use lockstep_core::names::DisplayName;
    use uuid::Uuid;

    async fn user_with_upload(s: &Store, name: &str) -> (UserId, UploadId) {
        let user = User {
            id: UserId(Uuid::now_v7()),
            name: DisplayName::parse(name).unwrap(),
        };
        s.create_user(&user, ServerTime(0)).await.unwrap();
        let upload = UploadRow {
            id: UploadId(Uuid::now_v7()),
            owner: user.id,
            file_name: "v.mp4".into(),
            size: 1,
            received: 1,
            state: UploadState::Ready,
            error: None,
            media: None,
            playable: true,
            created: ServerTime(0),
            updated: ServerTime(0),
        };
        s.create_upload(&upload, None).await.unwrap();
        (user.id, upload.id)
    }

    /// A job queued at `at_ms`, not stored.
    fn queued(owner: UserId, upload: UploadId, kind: JobKind, at_ms: i64) -> JobRow {
        let at = ServerTime::from_millis(at_ms);
        JobRow {
            id: JobId(Uuid::now_v7()),
            upload_id: upload,
            owner,
            kind,
            payload: JobPayload::default(),
            state: JobState::Queued,
            attempts: 0,
            max_attempts: 3,
            progress: 0.0,
            error: None,
            result: None,
            run_after: at,
            created: at,
            updated: at,
        }
    }

    async fn job(s: &Store, owner: UserId, upload: UploadId, kind: JobKind, at_ms: i64) -> JobId {
        let row = queued(owner, upload, kind, at_ms);
        s.insert_job(&row).await.unwrap();
        row.id
    }

    #[tokio::test]
    async fn owners_take_turns_and_the_quick_lane_skips_transcodes() {
        let (s, _dir) = store().await;
        let (ann, ann_up) = user_with_upload(&s, "Ann").await;
        let (bob, bob_up) = user_with_upload(&s, "Bob").await;
        // Ann queued five thumbnails first; Bob one poster a moment later.
        let mut anns = Vec::new();
        for n in 0..5 {
            anns.push(job(&s, ann, ann_up, JobKind::Thumbnail, n).await);
        }
        let bobs = job(&s, bob, bob_up, JobKind::Poster, 10).await;
        let now = ServerTime::from_millis(100);
        let first = s.claim_job(now, false).await.unwrap().unwrap();
        assert_eq!(first.id, anns[0], "the oldest job first");
        // Ann has one running: Bob's goes next, before Ann's four older ones.
        let second = s.claim_job(now, false).await.unwrap().unwrap();
        assert_eq!(second.id, bobs);
        // Then Ann's, in order.
        let third = s.claim_job(now, false).await.unwrap().unwrap();
        assert_eq!(third.id, anns[1]);
        // The quick lane takes no playable job.
        let (carl, carl_up) = user_with_upload(&s, "Carl").await;
        job(&s, carl, carl_up, JobKind::Playable, 20).await;
        let quick = s.claim_job(now, true).await.unwrap().unwrap();
        assert_eq!(quick.kind, JobKind::Thumbnail);
        assert_eq!(s.unfinished_jobs_of(ann).await.unwrap(), 5);
    }

    /// Workers of two nodes (two stores, eight workers) claiming at once take every job exactly
    /// once: on PostgreSQL through `FOR UPDATE SKIP LOCKED`, on SQLite through its one writer.
    #[tokio::test]
    async fn workers_of_several_nodes_never_take_the_same_job() {
        let (s, dir) = store().await;
        let other = crate::store::testing::reopen(&dir).await;
        let mut queued = std::collections::HashSet::new();
        for n in 0..6 {
            let (owner, upload) = user_with_upload(&s, &format!("User {n}")).await;
            for k in 0..10 {
                queued.insert(job(&s, owner, upload, JobKind::Thumbnail, k).await);
            }
        }
        let now = ServerTime::from_millis(1_000);
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let store = if w % 2 == 0 { s.clone() } else { other.clone() };
                tokio::spawn(async move {
                    let mut taken = Vec::new();
                    loop {
                        match store.claim_job(now, false).await {
                            Ok(Some(job)) => taken.push(job.id),
                            Ok(None) => break taken,
                            // SQLite may report a busy database under contention: retry.
                            Err(e) if e.to_string().contains("locked") => {}
                            Err(e) => panic!("claiming failed: {e}"),
                        }
                    }
                })
            })
            .collect();
        let mut taken = Vec::new();
        for worker in workers {
            taken.extend(worker.await.unwrap());
        }
        let distinct: std::collections::HashSet<_> = taken.iter().copied().collect();
        assert_eq!(taken.len(), distinct.len(), "a job was taken twice");
        assert_eq!(distinct, queued, "every job was taken");
    }

    /// With several nodes, only jobs nobody has marked alive recently are queued again; a job
    /// cancelled meanwhile is not among those a node marks alive (it stops it).
    #[tokio::test]
    async fn only_jobs_left_silent_are_resumed_and_cancels_are_noticed() {
        let (s, _dir) = store().await;
        let (owner, upload) = user_with_upload(&s, "Ann").await;
        let alive = job(&s, owner, upload, JobKind::Thumbnail, 0).await;
        let silent = job(&s, owner, upload, JobKind::Thumbnail, 1).await;
        let cancelled = job(&s, owner, upload, JobKind::Thumbnail, 2).await;
        for _ in 0..3 {
            s.claim_job(ServerTime::from_millis(10), false)
                .await
                .unwrap()
                .unwrap();
        }
        s.cancel_job(cancelled, ServerTime::from_millis(20))
            .await
            .unwrap();
        let still = s
            .touch_jobs(&[alive, cancelled], ServerTime::from_millis(40_000))
            .await
            .unwrap();
        assert_eq!(still, vec![alive]);
        let resumed = s
            .requeue_interrupted_jobs(
                ServerTime::from_millis(45_000),
                ServerTime::from_millis(15_000),
            )
            .await
            .unwrap();
        assert_eq!(resumed, vec![silent]);
        assert_eq!(
            s.job(alive).await.unwrap().unwrap().state,
            JobState::Running
        );
        assert_eq!(
            s.job(silent).await.unwrap().unwrap().state,
            JobState::Queued
        );
    }

    /// On PostgreSQL a job another node is in the middle of taking (its row locked) is passed
    /// over at once: the claim neither waits for that node nor comes back empty.
    #[tokio::test]
    async fn a_job_being_taken_elsewhere_is_passed_over_without_waiting() {
        let (s, _dir) = store().await;
        if s.backend() != Backend::Postgres {
            return; // SQLite has no row locks: one writer at a time.
        }
        let (owner, upload) = user_with_upload(&s, "Ann").await;
        let first = job(&s, owner, upload, JobKind::Thumbnail, 0).await;
        let second = job(&s, owner, upload, JobKind::Thumbnail, 1).await;
        let mut other_node = s.begin().await.unwrap();
        sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(first.to_string())
            .fetch_one(&mut *other_node)
            .await
            .unwrap();
        let claimed = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            s.claim_job(ServerTime::from_millis(100), false),
        )
        .await
        .expect("the claim does not wait for the other node's lock")
        .unwrap();
        assert_eq!(claimed.map(|j| j.id), Some(second));
        other_node.rollback().await.unwrap();
    }

    /// An upload still being checked, not playable, with its owner.
    async fn user_with_unchecked_upload(s: &Store, name: &str) -> (UserId, UploadId) {
        let (owner, upload) = user_with_upload(s, name).await;
        sqlx::query("UPDATE uploads SET state = 'probing', playable = $1 WHERE id = $2")
            .bind(flag(false))
            .bind(upload.to_string())
            .execute(s.pool())
            .await
            .unwrap();
        (owner, upload)
    }

    fn media() -> crate::store::uploads::MediaInfo {
        crate::store::uploads::MediaInfo {
            duration: 2.0,
            width: 320,
            height: 240,
            video_codec: "hevc".into(),
            audio_codec: None,
            container: "matroska,webm".into(),
            pixel_format: None,
            color_transfer: None,
            field_order: None,
            subtitles: Vec::new(),
            keyframe_spacing: None,
        }
    }

    /// A make-playable job's end marks its upload playable in the same write, and only a
    /// running job's end does: a job cancelled meanwhile leaves the upload as it was.
    #[tokio::test]
    async fn a_playable_job_ends_with_its_upload_marked_playable() {
        let (s, _dir) = store().await;
        let (owner, upload) = user_with_unchecked_upload(&s, "Ann").await;
        let cancelled = job(&s, owner, upload, JobKind::Playable, 0).await;
        s.claim_job(ServerTime::from_millis(10), false)
            .await
            .unwrap()
            .unwrap();
        s.cancel_job(cancelled, ServerTime::from_millis(20))
            .await
            .unwrap();
        let made = serde_json::json!({ "video": "/media/x/video" });
        let now = ServerTime::from_millis(30);
        assert!(
            !s.end_playable_job(cancelled, upload, &made, now)
                .await
                .unwrap()
        );
        assert!(!s.upload(upload).await.unwrap().unwrap().playable);
        assert_eq!(
            s.job(cancelled).await.unwrap().unwrap().state,
            JobState::Cancelled
        );

        let running = job(&s, owner, upload, JobKind::Playable, 40).await;
        s.claim_job(ServerTime::from_millis(50), false)
            .await
            .unwrap()
            .unwrap();
        let now = ServerTime::from_millis(60);
        assert!(
            s.end_playable_job(running, upload, &made, now)
                .await
                .unwrap()
        );
        let ended = s.job(running).await.unwrap().unwrap();
        assert_eq!(ended.state, JobState::Done);
        assert_eq!(ended.result, Some(made));
        assert!((ended.progress - 1.0).abs() < f64::EPSILON);
        let marked = s.upload(upload).await.unwrap().unwrap();
        assert!(marked.playable);
        assert_eq!(marked.updated, now);
    }

    /// A checked upload turns ready together with its jobs, or not at all: a job that cannot
    /// be stored leaves the upload being checked (it is checked again on the next start).
    #[tokio::test]
    async fn a_checked_upload_is_ready_with_all_its_jobs_or_still_being_checked() {
        let (s, _dir) = store().await;
        let (owner, upload) = user_with_unchecked_upload(&s, "Ann").await;
        let new = |kind| queued(owner, upload, kind, 0);
        let poster = new(JobKind::Poster);
        // The same job twice: the second insert breaks its primary key.
        let broken = [new(JobKind::Playable), poster.clone(), poster];
        let now = ServerTime::from_millis(10);
        assert!(
            s.upload_checked(upload, &media(), false, &broken, now)
                .await
                .is_err()
        );
        let row = s.upload(upload).await.unwrap().unwrap();
        assert_eq!(row.state, UploadState::Probing);
        assert_eq!(row.media, None);
        assert!(s.jobs_of_upload(upload).await.unwrap().is_empty());

        let jobs = [
            new(JobKind::Playable),
            new(JobKind::Poster),
            new(JobKind::Storyboard),
        ];
        s.upload_checked(upload, &media(), false, &jobs, now)
            .await
            .unwrap();
        let row = s.upload(upload).await.unwrap().unwrap();
        assert_eq!(row.state, UploadState::Ready);
        assert_eq!(row.media, Some(media()));
        assert!(!row.playable);
        let mut stored: Vec<JobKind> = s
            .jobs_of_upload(upload)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.kind)
            .collect();
        stored.sort_by_key(|k| k.as_str());
        assert_eq!(
            stored,
            [JobKind::Playable, JobKind::Poster, JobKind::Storyboard]
        );
    }

    /// The repair migration marks playable the uploads an old version left with their playable
    /// copy made but unmarked, and no other.
    #[tokio::test]
    async fn the_repair_marks_uploads_whose_playable_copy_was_made() {
        let (s, _dir) = store().await;
        let (owner, made) = user_with_unchecked_upload(&s, "Ann").await;
        let (_, making) = user_with_unchecked_upload(&s, "Bob").await;
        for (upload, state) in [(made, "done"), (making, "running")] {
            job(&s, owner, upload, JobKind::Playable, 0).await;
            sqlx::query("UPDATE jobs SET state = $1 WHERE upload_id = $2")
                .bind(state)
                .bind(upload.to_string())
                .execute(s.pool())
                .await
                .unwrap();
            sqlx::query("UPDATE uploads SET state = 'ready' WHERE id = $1")
                .bind(upload.to_string())
                .execute(s.pool())
                .await
                .unwrap();
        }
        let repair = match s.backend() {
            Backend::Sqlite => include_str!("../../migrations/sqlite/0007_playable_repair.sql"),
            Backend::Postgres => include_str!("../../migrations/postgres/0007_playable_repair.sql"),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(repair))
            .execute(s.pool())
            .await
            .unwrap();
        assert!(s.upload(made).await.unwrap().unwrap().playable);
        assert!(!s.upload(making).await.unwrap().unwrap().playable);
    }
}
