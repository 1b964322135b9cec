//! Where an upload's files live, and the URLs they are served at. One directory per upload,
//! named by its id (never by anything a user typed):
//!
//! ```text
//! uploads/<id>/original.part   while receiving
//! uploads/<id>/original        the whole file, once received
//! uploads/<id>/playable.mp4    the browser-playable copy, when one was needed
//! uploads/<id>/poster.jpg
//! uploads/<id>/storyboard/sheet-NNN.jpg and uploads/<id>/storyboard.vtt
//! uploads/<id>/thumbs/<job id>.jpg
//! ```

use lockstep_core::ids::{JobId, UploadId};
use std::path::{Path, PathBuf};

/// The files of one upload.
#[derive(Debug, Clone)]
pub struct UploadFiles {
    pub dir: PathBuf,
    id: UploadId,
}

impl UploadFiles {
    pub fn new(root: &Path, id: UploadId) -> Self {
        UploadFiles {
            dir: root.join(id.to_string()),
            id,
        }
    }
    pub fn partial(&self) -> PathBuf {
        self.dir.join("original.part")
    }
    pub fn original(&self) -> PathBuf {
        self.dir.join("original")
    }
    pub fn playable(&self) -> PathBuf {
        self.dir.join("playable.mp4")
    }
    pub fn poster(&self) -> PathBuf {
        self.dir.join("poster.jpg")
    }
    pub fn storyboard_dir(&self) -> PathBuf {
        self.dir.join("storyboard")
    }
    pub fn storyboard_vtt(&self) -> PathBuf {
        self.dir.join("storyboard.vtt")
    }
    pub fn thumbnail(&self, job: JobId) -> PathBuf {
        self.dir.join("thumbs").join(format!("{job}.jpg"))
    }

    /// The URL under which this upload's files are served.
    pub fn url_base(&self) -> String {
        format!("/media/uploads/{}", self.id)
    }
    pub fn poster_url(&self) -> String {
        format!("{}/poster.jpg", self.url_base())
    }
    pub fn storyboard_base_url(&self) -> String {
        format!("{}/storyboard", self.url_base())
    }
    pub fn storyboard_vtt_url(&self) -> String {
        format!("{}/storyboard.vtt", self.url_base())
    }
    pub fn thumbnail_url(&self, job: JobId) -> String {
        format!("{}/thumbs/{job}.jpg", self.url_base())
    }

    /// Deletes every file of the upload.
    pub async fn remove(&self) {
        if let Err(err) = tokio::fs::remove_dir_all(&self.dir).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot delete an upload's files");
        }
    }
}
