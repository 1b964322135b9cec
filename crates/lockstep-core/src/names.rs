//! Names people type: display names and room names.
//!
//! Both are trimmed, must contain 1..=max visible characters (grapheme clusters, so an emoji with
//! modifiers counts once), and may not contain control characters or the invisible characters
//! that are used to spoof names (bidirectional overrides, zero-width spaces).

use crate::limits::{DISPLAY_NAME_MAX, ROOM_NAME_MAX};
use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_segmentation::UnicodeSegmentation;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the name contains control or invisible characters")]
    Invisible,
}

/// Characters that render as nothing or reorder text. The zero-width joiner (U+200D) is allowed
/// because emoji sequences need it.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' // zero-width space/non-joiner, LRM/RLM
            | '\u{202A}'..='\u{202E}'                       // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'                       // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'                       // bidi isolates
            | '\u{FEFF}'                                    // byte-order mark
            | '\u{00AD}'                                    // soft hyphen
        )
}

fn parse_name(raw: &str, max: usize) -> Result<String, NameError> {
    let trimmed = raw.trim();
    if trimmed.chars().any(is_forbidden) {
        return Err(NameError::Invisible);
    }
    let visible = trimmed.graphemes(true).count();
    if visible == 0 {
        return Err(NameError::Empty);
    }
    if visible > max {
        return Err(NameError::TooLong { max });
    }
    Ok(trimmed.to_owned())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and trims a name typed by a user.
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                parse_name(raw, $max).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A user's display name: 1-32 visible characters.
    DisplayName,
    DISPLAY_NAME_MAX
);
name_type!(
    /// A room's name: 1-80 visible characters.
    RoomName,
    ROOM_NAME_MAX
);
name_type!(
    /// A playlist's name: 1-80 visible characters.
    ListName,
    ROOM_NAME_MAX
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_accepts_emoji_and_accents() {
        assert_eq!(DisplayName::parse("  Zoë  ").unwrap().as_str(), "Zoë");
        // A family emoji is one grapheme made of several scalars joined by U+200D.
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(DisplayName::parse(family).unwrap().as_str(), family);
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_invisible() {
        assert_eq!(DisplayName::parse("   "), Err(NameError::Empty));
        assert_eq!(DisplayName::parse(""), Err(NameError::Empty));
        assert_eq!(
            DisplayName::parse(&"a".repeat(33)),
            Err(NameError::TooLong { max: 32 })
        );
        assert_eq!(DisplayName::parse("a\u{0007}b"), Err(NameError::Invisible));
        assert_eq!(DisplayName::parse("a\nb"), Err(NameError::Invisible));
        assert_eq!(
            DisplayName::parse("admin\u{202E}nimda"),
            Err(NameError::Invisible)
        );
        assert_eq!(DisplayName::parse("\u{200B}"), Err(NameError::Invisible));
        assert!(RoomName::parse(&"r".repeat(80)).is_ok());
        assert!(RoomName::parse(&"r".repeat(81)).is_err());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<DisplayName>("\"  \"").is_err());
        assert_eq!(
            serde_json::from_str::<DisplayName>("\" Bo \"")
                .unwrap()
                .as_str(),
            "Bo"
        );
    }

    proptest! {
        #[test]
        fn parsed_names_are_trimmed_visible_and_bounded(raw in "\\PC{0,40}") {
            if let Ok(name) = DisplayName::parse(&raw) {
                let s = name.as_str();
                prop_assert_eq!(s, s.trim());
                prop_assert!(!s.chars().any(is_forbidden));
                let n = s.graphemes(true).count();
                prop_assert!((1..=DISPLAY_NAME_MAX).contains(&n));
                // Parsing is idempotent.
                prop_assert_eq!(DisplayName::parse(s).unwrap(), name.clone());
            }
        }

        #[test]
        fn never_panics_on_arbitrary_input(raw in any::<String>()) {
            let _ = DisplayName::parse(&raw);
            let _ = RoomName::parse(&raw);
        }
    }
}
