//! The invite key: the secret part of a private room's link.
//!
//! 144 random bits (18 bytes), written as 24 URL-safe base64 characters without padding. The
//! server draws the bytes; this module only formats and parses, so a malformed key in a URL is
//! rejected before it reaches the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Random bytes in an invite key: comfortably above the 128 bits the product requires.
pub const INVITE_KEY_BYTES: usize = 18;
/// Length of the key's text form.
pub const INVITE_KEY_CHARS: usize = 24;

/// A room's invite key.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InviteKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an invite key")]
pub struct InviteKeyError;

impl InviteKey {
    /// The key made of these random bytes.
    pub fn from_bytes(bytes: [u8; INVITE_KEY_BYTES]) -> Self {
        InviteKey(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the text form [`InviteKey::from_bytes`] produces.
    pub fn parse(raw: &str) -> Result<Self, InviteKeyError> {
        if raw.len() != INVITE_KEY_CHARS {
            return Err(InviteKeyError);
        }
        match URL_SAFE_NO_PAD.decode(raw) {
            Ok(bytes) if bytes.len() == INVITE_KEY_BYTES => Ok(InviteKey(raw.to_owned())),
            _ => Err(InviteKeyError),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InviteKey {
    // Keys are secrets: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(bytes in any::<[u8; INVITE_KEY_BYTES]>()) {
            let key = InviteKey::from_bytes(bytes);
            prop_assert_eq!(key.as_str().len(), INVITE_KEY_CHARS);
            prop_assert!(key.as_str().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            prop_assert_eq!(InviteKey::parse(key.as_str()).unwrap(), key);
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = InviteKey::parse(&raw);
        }
    }

    #[test]
    fn rejects_malformed_keys() {
        assert!(InviteKey::parse("short").is_err());
        assert!(InviteKey::parse("../../../../etc/passwd1234").is_err());
        assert!(InviteKey::parse("AAAAAAAAAAAAAAAAAAAAAAA+").is_err());
        assert_eq!(
            format!("{:?}", InviteKey::from_bytes([0; 18])),
            "InviteKey(..)"
        );
    }
}
