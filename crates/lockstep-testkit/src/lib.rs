//! Throwaway services for tests: a PostgreSQL server and Redis servers started from the Debian
//! binaries on free loopback ports, owned by the test process.
//!
//! A user's fresh machine runs none of these services, and the ones this machine runs on their
//! standard ports belong to someone else, so every test process starts its own. Each server is
//! started once per test process and lives until the process ends: it runs under a small shell
//! that waits for its standard input to close (which happens however the test process ends,
//! panics and `exit` included) and then stops the server and removes its data. Tests get their
//! own database on it ([`postgres::Postgres::create_database`]). A Redis server belongs to one
//! test ([`redis::Redis`]), which may restart it.
//!
//! A missing binary is a failure with a message saying what to install, never a silent skip.

pub mod postgres;
pub mod redis;

/// The environment variable that selects the database the integration tests run against:
/// `postgres` for a throwaway PostgreSQL server, anything else (or unset) for SQLite files.
pub const DATABASE_ENV: &str = "LOCKSTEP_TEST_DATABASE";

/// True when the tests of this process run against PostgreSQL ([`DATABASE_ENV`]).
pub fn use_postgres() -> bool {
    std::env::var(DATABASE_ENV).is_ok_and(|v| v == "postgres")
}

/// A free TCP port on 127.0.0.1 for a server that binds it next (bound, read, released).
///
/// Not one the kernel hands out itself: between the release and the server's bind, a port from
/// the ephemeral range can go to another test's outgoing connection or `bind(0)` listener, and
/// the server then fails to start (seen in CI as a reset connection). The ports come from below
/// that range, each at most once per process, starting at a place that depends on the process id
/// so that two test processes seldom meet; one that is taken is passed over.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = (10_000_u32, ephemeral_low().clamp(12_000, 32_768));
    let span = high - low;
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + (start + step) % span).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {low} and {high}")
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}
