//! A room's settings and the rules for changing them.

use crate::names::RoomName;
use serde::{Deserialize, Serialize};

/// Whether the lobby lists the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed in the lobby; reachable by its id and by "join a random room".
    Public,
    /// Reachable only through its invite link.
    Private,
}

/// Who may do something that a room setting controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    Everyone,
    Moderators,
}

/// Longest chat slow mode: one line per hour.
pub const SLOW_MODE_MAX_SECS: u32 = 3600;

/// What the owner and moderators configure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSettings {
    pub name: RoomName,
    pub visibility: Visibility,
    /// Who may play, pause, seek and change the rate.
    pub playback: Who,
    /// Who may add to the queue and reorder it.
    pub queue: Who,
    /// Whether viewers must vote to skip (moderators can always skip at once).
    pub skip_requires_vote: bool,
    /// Share of members whose vote skips the current item, in (0, 1].
    pub vote_skip_ratio: f64,
    /// Minimum seconds between two chat lines of one viewer; 0 turns slow mode off.
    pub chat_slow_mode_secs: u32,
    /// Pause the room until every member has buffered (as Syncplay and Jellyfin SyncPlay do).
    pub wait_for_everyone: bool,
}

impl RoomSettings {
    /// The settings of a new room: everyone may control playback and the queue, as among friends;
    /// owners of big rooms switch to moderators-only.
    pub fn new(name: RoomName, visibility: Visibility, vote_skip_ratio: f64) -> Self {
        RoomSettings {
            name,
            visibility,
            playback: Who::Everyone,
            queue: Who::Everyone,
            skip_requires_vote: false,
            vote_skip_ratio,
            chat_slow_mode_secs: 0,
            wait_for_everyone: false,
        }
    }
}

/// A change to some settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<Who>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Who>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_requires_vote: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_skip_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_slow_mode_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_everyone: Option<bool>,
}

/// A settings value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SettingsError {
    #[error("vote_skip_ratio must be greater than 0 and at most 1")]
    VoteSkipRatio,
    #[error("chat_slow_mode_secs must be at most {SLOW_MODE_MAX_SECS}")]
    SlowMode,
}

/// Checks a vote-skip share.
pub fn validate_vote_ratio(ratio: f64) -> Result<f64, SettingsError> {
    if ratio.is_finite() && ratio > 0.0 && ratio <= 1.0 {
        Ok(ratio)
    } else {
        Err(SettingsError::VoteSkipRatio)
    }
}

impl SettingsPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == SettingsPatch::default()
    }

    /// The settings with this patch applied, or why it cannot be.
    pub fn apply_to(&self, current: &RoomSettings) -> Result<RoomSettings, SettingsError> {
        let mut next = current.clone();
        if let Some(name) = &self.name {
            next.name = name.clone();
        }
        if let Some(v) = self.visibility {
            next.visibility = v;
        }
        if let Some(w) = self.playback {
            next.playback = w;
        }
        if let Some(w) = self.queue {
            next.queue = w;
        }
        if let Some(b) = self.skip_requires_vote {
            next.skip_requires_vote = b;
        }
        if let Some(r) = self.vote_skip_ratio {
            next.vote_skip_ratio = validate_vote_ratio(r)?;
        }
        if let Some(s) = self.chat_slow_mode_secs {
            if s > SLOW_MODE_MAX_SECS {
                return Err(SettingsError::SlowMode);
            }
            next.chat_slow_mode_secs = s;
        }
        if let Some(b) = self.wait_for_everyone {
            next.wait_for_everyone = b;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_applies_and_validates() {
        let s = RoomSettings::new(RoomName::parse("x").unwrap(), Visibility::Public, 0.5);
        let p: SettingsPatch =
            serde_json::from_str(r#"{"playback":"moderators","vote_skip_ratio":1.0}"#).unwrap();
        let n = p.apply_to(&s).unwrap();
        assert_eq!(n.playback, Who::Moderators);
        assert_eq!(n.vote_skip_ratio, 1.0);
        assert_eq!(n.queue, Who::Everyone);
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let p = SettingsPatch {
                vote_skip_ratio: Some(bad),
                ..Default::default()
            };
            assert_eq!(p.apply_to(&s), Err(SettingsError::VoteSkipRatio));
        }
        let p = SettingsPatch {
            chat_slow_mode_secs: Some(3601),
            ..Default::default()
        };
        assert_eq!(p.apply_to(&s), Err(SettingsError::SlowMode));
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"nope":1}"#).is_err());
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"name":"  "}"#).is_err());
        assert!(SettingsPatch::default().is_empty());
    }
}
