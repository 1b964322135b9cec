//! Every input kept in `fuzz/corpus` (what the fuzzers found interesting, minimised) and in
//! `fuzz/regressions` (each crash they found, once fixed) replayed through the fuzz targets' own
//! checks, so that `cargo test` keeps every fixed crash fixed without cargo-fuzz (`scripts/fuzz`
//! runs the fuzzers).

#[path = "../../../../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut inputs = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "fuzz/corpus/{target} holds no inputs");
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
