//! Roles and who may do what in a room. Enforced on the server; clients only use it to grey out
//! controls.

use crate::settings::{RoomSettings, Who};
use serde::{Deserialize, Serialize};

/// A member's standing in a room, from the least to the most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Moderator,
    Owner,
}

/// Something a member may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Play, pause, seek, change the rate.
    ControlPlayback,
    /// Add to the queue.
    AddToQueue,
    /// Reorder the queue.
    MoveInQueue,
    /// Remove an item; `own` when the member added it.
    RemoveFromQueue { own: bool },
    /// Skip the current item at once, without a vote.
    Skip,
    /// Vote to skip the current item.
    VoteSkip,
    /// Change the room's settings.
    ChangeSettings,
    /// Set or clear the room's password, or make it public or private.
    ChangeAccess,
    /// Promote a viewer to moderator or demote a moderator.
    ManageModerators,
    /// Kick, ban or mute a member holding `target`.
    Moderate { target: Role },
    /// Delete the room, regenerate its invite key.
    Own,
}

fn by_setting(role: Role, who: Who) -> bool {
    match who {
        Who::Everyone => true,
        Who::Moderators => role >= Role::Moderator,
    }
}

/// Whether a member with `role` may do `action` under `settings`.
pub fn allowed(role: Role, settings: &RoomSettings, action: Action) -> bool {
    let moderator = role >= Role::Moderator;
    match action {
        Action::ControlPlayback => by_setting(role, settings.playback),
        Action::AddToQueue | Action::MoveInQueue => by_setting(role, settings.queue),
        // Taking back one's own addition is fine as long as one may still use the queue.
        Action::RemoveFromQueue { own } => moderator || (own && by_setting(role, settings.queue)),
        Action::Skip => {
            moderator || (!settings.skip_requires_vote && by_setting(role, settings.playback))
        }
        Action::VoteSkip => true,
        Action::ChangeSettings => moderator,
        Action::ChangeAccess | Action::ManageModerators | Action::Own => role == Role::Owner,
        // A moderator cannot act on another moderator or the owner; nobody on the owner.
        Action::Moderate { target } => moderator && role > target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RoomName;
    use crate::settings::Visibility;

    fn settings(playback: Who, queue: Who, vote: bool) -> RoomSettings {
        RoomSettings {
            playback,
            queue,
            skip_requires_vote: vote,
            ..RoomSettings::new(RoomName::parse("r").unwrap(), Visibility::Public, 0.5)
        }
    }

    /// The whole matrix, written out so that a change to a rule shows up as a changed row.
    #[test]
    fn matrix() {
        use Action::*;
        use Role::*;
        let open = settings(Who::Everyone, Who::Everyone, false);
        let closed = settings(Who::Moderators, Who::Moderators, true);
        let rows: &[(Action, [bool; 3], [bool; 3])] = &[
            // action                         open: viewer, mod, owner    closed: viewer, mod, owner
            (ControlPlayback, [true, true, true], [false, true, true]),
            (AddToQueue, [true, true, true], [false, true, true]),
            (MoveInQueue, [true, true, true], [false, true, true]),
            (
                RemoveFromQueue { own: true },
                [true, true, true],
                [false, true, true],
            ),
            (
                RemoveFromQueue { own: false },
                [false, true, true],
                [false, true, true],
            ),
            (Skip, [true, true, true], [false, true, true]),
            (VoteSkip, [true, true, true], [true, true, true]),
            (ChangeSettings, [false, true, true], [false, true, true]),
            (ChangeAccess, [false, false, true], [false, false, true]),
            (ManageModerators, [false, false, true], [false, false, true]),
            (Own, [false, false, true], [false, false, true]),
            (
                Moderate { target: Viewer },
                [false, true, true],
                [false, true, true],
            ),
            (
                Moderate { target: Moderator },
                [false, false, true],
                [false, false, true],
            ),
            (
                Moderate { target: Owner },
                [false, false, false],
                [false, false, false],
            ),
        ];
        for (action, open_row, closed_row) in rows {
            for (i, role) in [Viewer, Moderator, Owner].into_iter().enumerate() {
                assert_eq!(
                    allowed(role, &open, *action),
                    open_row[i],
                    "open {action:?} {role:?}"
                );
                assert_eq!(
                    allowed(role, &closed, *action),
                    closed_row[i],
                    "closed {action:?} {role:?}"
                );
            }
        }
        // Skip needs both: playback control and no vote requirement.
        let vote_only = settings(Who::Everyone, Who::Everyone, true);
        assert!(!allowed(Viewer, &vote_only, Skip));
        let mods_play = settings(Who::Moderators, Who::Everyone, false);
        assert!(!allowed(Viewer, &mods_play, Skip));
    }
}
