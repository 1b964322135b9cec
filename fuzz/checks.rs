//! What each fuzz target checks, on one input. Shared by the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and by `cargo test`, which replays every input kept in
//! `fuzz/corpus` (`crates/lockstep/tests/api/fuzz_corpus.rs`), so a crash found once stays fixed.

use axum::http::{HeaderMap, HeaderValue};
use axum_extra::extract::cookie::Key;
use lockstep::auth::{SessionCookie, read_session_cookie};
use lockstep::server::tus::{clean_file_name, header_u64, metadata_file_name, require_tus};
use lockstep_core::media::{Media, parse_offset};
use lockstep_core::protocol::parse_client_frame;
use std::sync::OnceLock;

/// The WebSocket frame decoder: any text a client sends.
pub fn protocol_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(frame) = parse_client_frame(text)
    {
        // What parses serialises again and parses to the same frame.
        let again = serde_json::to_string(&frame).expect("client frames serialise");
        assert_eq!(parse_client_frame(&again).ok(), Some(frame));
    }
}

/// The media URL parser: anything pasted into the queue box.
pub fn media_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(offset) = parse_offset(text) {
        assert!(offset.is_finite() && offset >= 0.0);
    }
    if let Ok(media) = Media::parse(text) {
        assert!(media.start.is_finite() && media.start >= 0.0);
        let canonical = media.canonical_url();
        // The stored form parses again (a room re-parses it after a restart).
        assert!(Media::parse(&canonical).is_ok(), "{canonical}");
    }
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| Key::from(&[7u8; 64]))
}

/// The session cookie decoder: any `Cookie` headers (one per line of the input).
pub fn session_cookie(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for part in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append("cookie", value);
        }
    }
    if let SessionCookie::Token(token) = read_session_cookie(&headers, key()) {
        // Only our key can have made it: random bytes never authenticate.
        panic!("forged a session cookie: {token:?}");
    }
}

/// The tus headers of an upload (`Upload-Length`, `Upload-Metadata`, `Tus-Resumable`, one per
/// line of the input) and the file name shown from it.
pub fn tus_headers(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let mut headers = HeaderMap::new();
    for name in ["upload-length", "upload-metadata", "tus-resumable"] {
        if let Some(part) = parts.next()
            && let Ok(value) = HeaderValue::from_bytes(part)
        {
            headers.insert(name, value);
        }
    }
    let _ = require_tus(&headers);
    let _ = header_u64(&headers, "upload-length");
    let shown_ok = |shown: &str| {
        !shown.is_empty()
            && shown.chars().count() <= 200
            && !shown.contains(['/', '\\'])
            && !shown.chars().any(char::is_control)
            && !shown.starts_with('.')
    };
    if let Some(name) = metadata_file_name(&headers) {
        let shown = clean_file_name(&name);
        assert!(shown_ok(&shown), "{shown:?}");
    }
    let shown = clean_file_name(&String::from_utf8_lossy(data));
    assert!(shown_ok(&shown), "{shown:?}");
}
