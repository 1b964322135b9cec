//! What a person may put into a room's queue, checked: a pasted link (parsed, and refused when it
//! points at a private or local address), one of their uploads (ready), or a saved library or
//! playlist entry. Shared by every front door (the WebSocket's frames, the library's HTTP API).

use crate::error::ApiError;
use crate::rooms::NewItem;
use crate::state::AppState;
use crate::store::library::MediaRef;
use crate::store::uploads::UploadState;
use lockstep_core::ids::{UploadId, UserId};
use lockstep_core::media::{Media, MediaSource};

/// The queue item a saved reference becomes, for `user` to add. Uploads must be theirs and
/// checked; links are checked like pasted ones.
pub async fn new_item(
    state: &AppState,
    user: UserId,
    item: &MediaRef,
) -> Result<NewItem, ApiError> {
    if let Some(upload_id) = item.upload_id {
        return upload_item(state, user, upload_id).await;
    }
    Ok(NewItem::Media(media_to_add(state, &item.url).await?))
}

/// A pasted link, parsed and checked against the media address policy: a direct URL whose host
/// is, or resolves to, a private or local address (this machine's included) is refused here,
/// with a clear message. The media proxy checks every connection again when it is fetched.
pub async fn media_to_add(state: &AppState, raw: &str) -> Result<Media, ApiError> {
    let media =
        Media::parse(raw).map_err(|e| ApiError::invalid("invalid_media_url", e.to_string()))?;
    if let MediaSource::Direct { url, .. } = &media.source
        && let Err(refused) = state.media.policy().check_url(url).await
    {
        return Err(ApiError::invalid(
            "invalid_media_url",
            format!("media on private or local addresses cannot be added: {refused}"),
        ));
    }
    Ok(media)
}

/// The queue item for one of `user`'s uploads.
pub async fn upload_item(
    state: &AppState,
    user: UserId,
    upload_id: UploadId,
) -> Result<NewItem, ApiError> {
    let not_found = || ApiError::not_found("upload_not_found", "no such upload of yours");
    let upload = state.store.upload(upload_id).await?.ok_or_else(not_found)?;
    if upload.owner != user {
        return Err(not_found());
    }
    if upload.state != UploadState::Ready {
        return Err(ApiError::invalid(
            "upload_not_ready",
            "this upload is still being received or checked, or was rejected",
        ));
    }
    Ok(NewItem::Upload(state.jobs.upload_media(&upload).await))
}
