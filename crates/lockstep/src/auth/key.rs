//! The key that encrypts and authenticates session cookies.
//!
//! Taken from configuration (base64, at least 64 bytes) or, when absent, generated on first start
//! and written to `<data dir>/cookie.key` with owner-only permissions, so that restarts keep
//! everyone signed in. No key is compiled into the binary.

use anyhow::{Context, bail};
use axum_extra::extract::cookie::Key;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::io::Write;
use std::path::Path;

/// Bytes the cookie key is made of.
pub const KEY_BYTES: usize = 64;

/// The cookie key from `configured` (base64) or from the key file in `data_dir`.
pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Key> {
    if let Some(text) = configured {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .context("LOCKSTEP_COOKIE_KEY is not valid base64")?;
        return key_from(&bytes).context("LOCKSTEP_COOKIE_KEY");
    }
    let path = data_dir.join("cookie.key");
    match std::fs::read(&path) {
        Ok(bytes) => key_from(&bytes).with_context(|| format!("{}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            write_private(&path, key.master())
                .with_context(|| format!("cannot write the cookie key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new cookie key");
            Ok(key)
        }
        Err(err) => {
            Err(err).with_context(|| format!("cannot read the cookie key {}", path.display()))
        }
    }
}

fn key_from(bytes: &[u8]) -> anyhow::Result<Key> {
    if bytes.len() < KEY_BYTES {
        bail!(
            "a cookie key needs at least {KEY_BYTES} bytes, this one has {}",
            bytes.len()
        );
    }
    Key::try_from(bytes).context("unusable cookie key")
}

/// Writes a file readable only by its owner, atomically (temporary file, then rename).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(None, dir.path()).unwrap();
        let b = load_or_create(None, dir.path()).unwrap();
        assert_eq!(a.master(), b.master());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("cookie.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn configured_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = STANDARD.encode([7u8; 64]);
        let key = load_or_create(Some(&good), dir.path()).unwrap();
        assert_eq!(key.master(), &[7u8; 64]);
        assert!(!dir.path().join("cookie.key").exists());
        let short = STANDARD.encode([7u8; 32]);
        assert!(load_or_create(Some(&short), dir.path()).is_err());
        assert!(load_or_create(Some("not base64!"), dir.path()).is_err());
    }
}
