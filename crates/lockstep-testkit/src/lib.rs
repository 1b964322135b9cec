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

/// A free TCP port on 127.0.0.1 (bound, read, released; the server binds it next).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound address").port()
}
