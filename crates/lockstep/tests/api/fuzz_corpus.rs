//! Every input kept in `fuzz/corpus` (the seeds, what the fuzzers found interesting, and each
//! crash they found as `regression-*`) replayed through the fuzz targets' own checks, so that
//! `cargo test` keeps every fixed crash fixed without cargo-fuzz (`scripts/fuzz` runs the fuzzers).

#[path = "../../../../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{} holds no inputs", dir.display());
}

#[test]
fn protocol_frames() {
    replay("protocol_frame", checks::protocol_frame);
}

#[test]
fn media_urls() {
    replay("media_url", checks::media_url);
}

#[test]
fn session_cookies() {
    replay("session_cookie", checks::session_cookie);
}

#[test]
fn tus_headers() {
    replay("tus_headers", checks::tus_headers);
}
