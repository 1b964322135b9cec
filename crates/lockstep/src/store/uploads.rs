//! Uploads: a file being received (tus), probed, and then ready or rejected.

use super::{Store, flag, get_flag, parse_id, parse_json, to_json};
use lockstep_core::ids::{UploadId, UserId};
use lockstep_core::time::ServerTime;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Bytes are arriving (or the client went away and may resume).
    Receiving,
    /// Complete; ffprobe is checking it.
    Probing,
    /// A video: jobs make its poster, storyboard and, if needed, a playable copy.
    Ready,
    /// Not a video (or a broken one); the file was deleted.
    Rejected,
}

impl UploadState {
    fn as_str(self) -> &'static str {
        match self {
            UploadState::Receiving => "receiving",
            UploadState::Probing => "probing",
            UploadState::Ready => "ready",
            UploadState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "receiving" => UploadState::Receiving,
            "probing" => UploadState::Probing,
            "ready" => UploadState::Ready,
            "rejected" => UploadState::Rejected,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("upload state {other:?}").into(),
                ));
            }
        })
    }
}

/// What ffprobe found in an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub duration: f64,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    /// The video's pixel format as ffprobe names it (`yuv420p`, `yuv420p10le`); absent for an
    /// upload checked before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_format: Option<String>,
    /// The video's transfer characteristics as ffprobe names them (`bt709`; `smpte2084` and
    /// `arib-std-b67` are HDR); absent when the file does not say, or for an upload checked
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_transfer: Option<String>,
    /// How the video's fields are ordered, as ffprobe names it: `progressive`, or `tt`, `bb`,
    /// `tb`, `bt` for interlaced video (TV recordings, DVDs, camcorders); absent when the file
    /// does not say, or for an upload checked before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_order: Option<String>,
    /// The text subtitle tracks extracted to WebVTT for the room's player
    /// ([`crate::media::video::subtitle_tracks`]); empty when there are none, or for an upload
    /// checked before they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<SubtitleTrack>,
    /// ffprobe's format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// How far apart (s) the keyframes are over most of the video
    /// ([`crate::media::video::keyframe_spacing`]), for a file that could be served as it is or
    /// remuxed; absent when not listed (a file to be transcoded anyway, one checked before it was
    /// listed, or one ffprobe could not list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_spacing: Option<f64>,
}

/// A text subtitle track of an upload, as its file names it; served as WebVTT at
/// `/media/uploads/{id}/subtitles/{n}.vtt`, `n` its place in [`MediaInfo::subtitles`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    /// The stream's index in the file (what ffmpeg maps it by).
    pub stream: u32,
    /// ffprobe's codec name (`subrip`, `ass`, `mov_text`...).
    pub codec: String,
    /// Its language tag (ISO 639-2 in Matroska and MP4: `eng`, `fre`), letters and '-' only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Its title (`English (SDH)`), without control characters, at most 80 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Marked default (to be shown unless the viewer chose otherwise) or forced (foreign
    /// dialogue only).
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub forced: bool,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRow {
    pub id: UploadId,
    pub owner: UserId,
    pub file_name: String,
    pub size: u64,
    pub received: u64,
    pub state: UploadState,
    pub error: Option<String>,
    pub media: Option<MediaInfo>,
    pub playable: bool,
    pub created: ServerTime,
    pub updated: ServerTime,
}

impl UploadRow {
    /// What rooms show of this upload (`poster`: its URL, once made).
    pub fn room_media(&self, poster: Option<String>) -> lockstep_core::queue::UploadMedia {
        lockstep_core::queue::UploadMedia {
            upload_id: self.id,
            title: self.file_name.clone(),
            duration: self.media.as_ref().map(|m| m.duration),
            poster,
            ready: self.playable,
        }
    }
}

const COLUMNS: &str = "id, owner_id, file_name, size, received, state, error, media, playable, created_ms, updated_ms";

fn from_row(r: &AnyRow) -> Result<UploadRow, sqlx::Error> {
    Ok(UploadRow {
        id: parse_id(&r.try_get::<String, _>("id")?)?,
        owner: parse_id(&r.try_get::<String, _>("owner_id")?)?,
        file_name: r.try_get("file_name")?,
        size: u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
        received: u64::try_from(r.try_get::<i64, _>("received")?).unwrap_or(0),
        state: UploadState::parse(&r.try_get::<String, _>("state")?)?,
        error: r.try_get("error")?,
        media: r
            .try_get::<Option<String>, _>("media")?
            .map(|m| parse_json(&m))
            .transpose()?,
        playable: get_flag(r, "playable")?,
        created: ServerTime::from_millis(r.try_get("created_ms")?),
        updated: ServerTime::from_millis(r.try_get("updated_ms")?),
    })
}

fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// A new upload, started from the client address key `client_addr`.
    pub async fn create_upload(
        &self,
        u: &UploadRow,
        client_addr: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO uploads (id, owner_id, file_name, size, received, state, playable, created_ms, updated_ms, client_addr) \
             VALUES ($1, $2, $3, $4, 0, $5, 0, $6, $6, $7)",
        )
        .bind(u.id.to_string())
        .bind(u.owner.to_string())
        .bind(u.file_name.as_str())
        .bind(big(u.size))
        .bind(u.state.as_str())
        .bind(u.created.millis())
        .bind(client_addr)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn upload(&self, id: UploadId) -> Result<Option<UploadRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub async fn uploads_of(&self, owner: UserId) -> Result<Vec<UploadRow>, sqlx::Error> {
        let sql =
            format!("SELECT {COLUMNS} FROM uploads WHERE owner_id = $1 ORDER BY created_ms DESC");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Bytes `owner`'s uploads take: each at its declared size (unfinished ones too) plus what
    /// its jobs made.
    /// (PostgreSQL sums BIGINTs into NUMERIC, which the Any driver cannot read: hence the cast.)
    pub async fn upload_bytes_of(&self, owner: UserId) -> Result<u64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size + derived_bytes), 0) AS BIGINT) AS total FROM uploads \
             WHERE owner_id = $1 AND state <> 'rejected'",
        )
        .bind(owner.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("total")?).unwrap_or(0))
    }

    /// Bytes the uploads started from the address key `addr` take, whoever started them.
    pub async fn upload_bytes_from(&self, addr: &str) -> Result<u64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size + derived_bytes), 0) AS BIGINT) AS total FROM uploads \
             WHERE client_addr = $1 AND state <> 'rejected'",
        )
        .bind(addr)
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("total")?).unwrap_or(0))
    }

    /// Records how many bytes the jobs made from an upload.
    pub async fn set_derived_bytes(&self, id: UploadId, bytes: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE uploads SET derived_bytes = $1 WHERE id = $2")
            .bind(big(bytes))
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_upload_received(
        &self,
        id: UploadId,
        received: u64,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE uploads SET received = $1, updated_ms = $2 WHERE id = $3")
            .bind(big(received))
            .bind(now.millis())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_upload_state(
        &self,
        id: UploadId,
        state: UploadState,
        error: Option<&str>,
        media: Option<&MediaInfo>,
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE uploads SET state = $1, error = $2, media = $3, updated_ms = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(error.map(str::to_owned))
        .bind(media.map(to_json).transpose()?)
        .bind(now.millis())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces the media info of a checked upload (one that is `ready`); false when there is
    /// no such upload.
    pub async fn set_upload_media(
        &self,
        id: UploadId,
        media: &MediaInfo,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE uploads SET media = $1 WHERE id = $2 AND state = $3")
            .bind(to_json(media)?)
            .bind(id.to_string())
            .bind(UploadState::Ready.as_str())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An upload passed its check: ready with its media info, playable as uploaded or not, and
    /// the jobs that make what it needs, all in one transaction. A stop between separate writes
    /// could leave it ready without the jobs, which nothing would queue again.
    pub async fn upload_checked(
        &self,
        id: UploadId,
        media: &MediaInfo,
        playable: bool,
        jobs: &[super::jobs::JobRow],
        now: ServerTime,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE uploads SET state = $1, error = NULL, media = $2, playable = $3, updated_ms = $4 \
             WHERE id = $5",
        )
        .bind(UploadState::Ready.as_str())
        .bind(to_json(media)?)
        .bind(flag(playable))
        .bind(now.millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        for job in jobs {
            Self::insert_job_on(&mut tx, job).await?;
        }
        tx.commit().await
    }

    pub async fn delete_upload(&self, id: UploadId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Uploads still receiving whose last byte came before `before`: abandoned.
    pub async fn stale_uploads(&self, before: ServerTime) -> Result<Vec<UploadId>, sqlx::Error> {
        sqlx::query("SELECT id FROM uploads WHERE state = 'receiving' AND updated_ms < $1")
            .bind(before.millis())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| parse_id(&r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Uploads that were being probed when the server stopped.
    pub async fn uploads_probing(&self) -> Result<Vec<UploadId>, sqlx::Error> {
        sqlx::query("SELECT id FROM uploads WHERE state = 'probing'")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| parse_id(&r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Whether `user` may fetch the upload's files: its owner, or a member (not banned) of a room
    /// whose queue holds it.
    pub async fn upload_visible_to(
        &self,
        upload: &UploadRow,
        user: UserId,
    ) -> Result<bool, sqlx::Error> {
        if upload.owner == user {
            return Ok(true);
        }
        let row = sqlx::query(
            "SELECT 1 AS ok FROM queue_items q JOIN rooms r ON r.id = q.room_id \
             LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
             WHERE q.upload_id = $1 AND (r.owner_id = $2 OR \
               ((m.visited_ms IS NOT NULL OR m.admitted_ms IS NOT NULL) AND m.banned = 0)) \
             LIMIT 1",
        )
        .bind(upload.id.to_string())
        .bind(user.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Whether a public room's queue holds the upload: the lobby shows such a room's current
    /// video, poster included, to everyone.
    pub async fn upload_in_public_room(&self, upload: UploadId) -> Result<bool, sqlx::Error> {
        let row = sqlx::query(
            "SELECT 1 AS ok FROM queue_items q JOIN rooms r ON r.id = q.room_id \
             WHERE q.upload_id = $1 AND r.visibility = 'public' LIMIT 1",
        )
        .bind(upload.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Rooms whose queue holds the upload.
    pub async fn rooms_with_upload(
        &self,
        upload: UploadId,
    ) -> Result<Vec<lockstep_core::ids::RoomId>, sqlx::Error> {
        sqlx::query("SELECT DISTINCT room_id FROM queue_items WHERE upload_id = $1")
            .bind(upload.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| parse_id(&r.try_get::<String, _>("room_id")?))
            .collect()
    }
}
