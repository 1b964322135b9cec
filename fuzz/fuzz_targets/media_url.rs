//! The media URL parser: anything pasted into the queue box.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::media_url(data));
