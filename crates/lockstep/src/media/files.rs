//! Where an upload's files live, and the URLs they are served at. One directory per upload,
//! named by its id (never by anything a user typed):
//!
//! ```text
//! uploads/<id>/original.part   while receiving
//! uploads/<id>/original        the whole file, once received
//! uploads/<id>/playable.mp4    the browser-playable copy, when one was needed
//! uploads/<id>/poster.jpg
//! uploads/<id>/keyframes.json  the times of the served video's keyframes (`{"keyframes": [s...]}`)
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
    pub fn keyframes(&self) -> PathBuf {
        self.dir.join("keyframes.json")
    }
    pub fn storyboard_dir(&self) -> PathBuf {
        self.dir.join("storyboard")
    }
    pub fn storyboard_vtt(&self) -> PathBuf {
        self.dir.join("storyboard.vtt")
    }
    /// Where the text subtitles are, `{n}.vtt` for the n-th of the media info's tracks.
    pub fn subtitles_dir(&self) -> PathBuf {
        self.dir.join("subtitles")
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

    /// Bytes of everything made from the upload (all but the original), counted against its
    /// owner's quota.
    pub async fn derived_bytes(&self) -> u64 {
        let mut total = 0;
        let mut dirs = vec![self.dir.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
                continue;
            };
            while let Ok(Some(entry)) = entries.next_entry().await {
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                if meta.is_dir() {
                    dirs.push(entry.path());
                } else if entry.path() != self.original() && entry.path() != self.partial() {
                    total += meta.len();
                }
            }
        }
        total
    }

    /// Deletes what an interrupted job left half-written (names with `.tmp`): a job writes
    /// under a temporary name and renames when done.
    pub async fn remove_temporaries(&self) {
        for dir in [self.dir.clone(), self.dir.join("thumbs")] {
            let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
                continue;
            };
            while let Ok(Some(entry)) = entries.next_entry().await {
                if entry.file_name().to_string_lossy().contains(".tmp") {
                    remove_path(&entry.path()).await;
                }
            }
        }
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

/// Deletes a file or a directory with what is in it; a missing one is fine.
pub async fn remove_path(path: &Path) {
    let removed = match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(_) => return,
    };
    if let Err(err) = removed
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %err, "cannot delete a temporary file");
    }
}
