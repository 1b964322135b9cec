//! Fuzzes the tus headers of an upload and the file name shown from them.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tus_headers(data));
