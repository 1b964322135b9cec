//! Typed ids. Rows get UUIDv7 ids (time-ordered, so indexes stay compact); the server generates
//! them and passes them in, so this crate never draws random numbers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// A user, anonymous or not.
    UserId
);
id_type!(
    /// A room.
    RoomId
);
id_type!(
    /// One entry of a room's queue (the same video added twice gets two ids).
    ItemId
);
id_type!(
    /// An uploaded video.
    UploadId
);
id_type!(
    /// A media job (poster, storyboard, thumbnail, make-playable).
    JobId
);
id_type!(
    /// A playlist, or an entry of the library or of a playlist.
    ListId
);
