//! `docs/protocol.md` is checked against the code: every example parses with the real frame
//! types, every frame type has an example, every error code is listed.

use lockstep_core::protocol::{ClientFrame, ServerFrame, parse_client_frame};
use std::collections::BTreeSet;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md exists")
}

/// The fenced blocks whose info string is `json <kind>`.
fn blocks(doc: &str, kind: &str) -> Vec<String> {
    let fence = format!("```json {kind}");
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n"));
        }
    }
    out
}

#[test]
fn every_client_example_parses_and_every_client_type_has_one() {
    let mut seen = BTreeSet::new();
    for block in blocks(&doc(), "client") {
        let frame = parse_client_frame(&block).unwrap_or_else(|e| panic!("{block}\n{e:?}"));
        let t = serde_json::to_value(&frame).unwrap()["t"]
            .as_str()
            .unwrap()
            .to_owned();
        seen.insert(t);
    }
    let all: BTreeSet<String> = ClientFrame::TYPES.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "client frames without an example: {missing:?}"
    );
}

#[test]
fn every_server_example_parses_and_every_server_type_has_one() {
    let mut seen = BTreeSet::new();
    for block in blocks(&doc(), "server") {
        let frame: ServerFrame =
            serde_json::from_str(&block).unwrap_or_else(|e| panic!("{block}\n{e}"));
        // Round-trips: what the doc shows is what the server writes.
        let again: ServerFrame =
            serde_json::from_str(&serde_json::to_string(&frame).unwrap()).unwrap();
        assert_eq!(again, frame);
        seen.insert(frame.tag().to_owned());
    }
    let all: BTreeSet<String> = ServerFrame::TYPES.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "server frames without an example: {missing:?}"
    );
}

#[test]
fn every_error_code_is_documented() {
    let doc = doc();
    let codes = [
        // Frame level (server/ws.rs, protocol.rs)
        "bad_frame",
        "unknown_type",
        "unsupported_version",
        "not_joined",
        "already_joined",
        "hello_timeout",
        "frame_too_big",
        "rate_limited",
        "invalid_media_url",
        "chat_empty",
        "chat_too_long",
        "invalid_name",
        // Room commands (lockstep_core::room::CommandError::code)
        "forbidden",
        "muted",
        "banned",
        "nothing_playing",
        "item_not_found",
        "user_not_found",
        "queue_full",
        "slow_mode",
        "invalid_rate",
        "invalid_position",
        "invalid_settings",
        "duration_known",
        "invalid_duration",
        "room_unavailable",
    ];
    for code in codes {
        assert!(
            doc.contains(&format!("`{code}`")),
            "error code {code} is not documented"
        );
    }
}
