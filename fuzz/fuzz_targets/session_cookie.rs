//! The session cookie decoder: any `Cookie` header.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::session_cookie(data));
