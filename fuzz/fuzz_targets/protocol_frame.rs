//! The WebSocket frame decoder: any text a client sends.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::protocol_frame(data));
