//! Integration tests: the real server on 127.0.0.1:0, spoken to over real HTTP and WebSocket.

mod abuse;
mod bad_input;
mod bombs;
mod cluster;
mod connections;
mod crash;
mod exposure;
mod fuzz_corpus;
mod helpers;
mod library;
mod media;
mod members;
mod moderation;
mod persistence;
mod protocol_doc;
mod resume;
mod rooms;
mod ssrf;
mod sync;
mod syncplay;
mod uploads;
mod users;
