//! The tus 1.0 protocol's headers: pure parsing of what a client sends, and the headers every
//! answer carries. Kept apart from the upload handlers so that they can be tested and fuzzed on
//! their own (`fuzz/fuzz_targets/tus_headers.rs`).

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The one protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";

/// Adds the headers every tus answer carries.
pub fn tus_headers(headers: &mut HeaderMap) {
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
}

/// Refuses a request without `Tus-Resumable: 1.0.0` (412).
pub fn require_tus(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(ApiError::PreconditionFailed(format!(
            "send Tus-Resumable: {TUS_VERSION}"
        ))),
    }
}

/// A header holding a number of bytes (`Upload-Length`, `Upload-Offset`); 400 otherwise.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("the {name} header must be a number of bytes")))
}

/// A file name fit to show: the last path component, no control characters, at most 200
/// characters ("video" when nothing is left).
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    // Leading dots and spaces in any mix (" . .x" would otherwise keep its dot).
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let name: String = trimmed.chars().take(200).collect();
    if name.is_empty() {
        "video".to_owned()
    } else {
        name
    }
}

/// The `filename` of `Upload-Metadata` (comma-separated `key base64value` pairs).
pub fn metadata_file_name(headers: &HeaderMap) -> Option<String> {
    let meta = headers.get("upload-metadata")?.to_str().ok()?;
    meta.split(',').find_map(|pair| {
        let mut it = pair.trim().splitn(2, ' ');
        (it.next()? == "filename")
            .then(|| it.next())
            .flatten()
            .and_then(|b64| STANDARD.decode(b64.trim()).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(
            clean_file_name("C:\\\\Users\\\\me\\\\holiday.mp4"),
            "holiday.mp4"
        );
        assert_eq!(clean_file_name("a\u{0}b\nc.mp4"), "abc.mp4");
        assert_eq!(clean_file_name("..."), "video");
        assert_eq!(clean_file_name(""), "video");
        assert_eq!(clean_file_name(".hidden.mp4"), "hidden.mp4");
        assert_eq!(clean_file_name(&"x".repeat(300)).len(), 200);
        // Found by fuzzing (fuzz/regressions/tus_headers): dots behind spaces.
        assert_eq!(clean_file_name("\t . .\t02"), "02");
        assert_eq!(clean_file_name(" . "), "video");
    }

    #[test]
    fn headers_are_parsed_or_refused() {
        let mut h = HeaderMap::new();
        assert!(require_tus(&h).is_err());
        h.insert("tus-resumable", HeaderValue::from_static("1.0.0"));
        assert!(require_tus(&h).is_ok());
        h.insert("upload-length", HeaderValue::from_static(" 42 "));
        assert_eq!(header_u64(&h, "upload-length").unwrap(), 42);
        h.insert("upload-length", HeaderValue::from_static("-1"));
        assert!(header_u64(&h, "upload-length").is_err());
        h.insert(
            "upload-metadata",
            HeaderValue::from_static("filetype dmlkZW8vbXA0,filename aG9saWRheS5tcDQ="),
        );
        assert_eq!(metadata_file_name(&h).as_deref(), Some("holiday.mp4"));
        h.insert("upload-metadata", HeaderValue::from_static("filename !!!"));
        assert_eq!(metadata_file_name(&h), None);
    }
}
