//! A throwaway PostgreSQL server: `initdb` into a temporary folder, `postgres` on a free
//! loopback port with durability off (tests never survive a power cut), one database per test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL server.
pub struct Postgres {
    port: u16,
    bin: PathBuf,
    /// Its data folder (the cluster is in `cluster/` inside).
    data: PathBuf,
    /// The shell that owns the server; its standard input closing stops it. `None` while an
    /// own server is stopped.
    guard: Option<Child>,
    /// An own server ([`Postgres::start_own`]) keeps its data when stopped, until dropped.
    own: bool,
}

/// The server of this test process, started on first use. A server that failed to start fails
/// every test that needs it with the same message, without trying again.
pub fn shared() -> &'static Postgres {
    static SERVER: OnceLock<Result<Postgres, String>> = OnceLock::new();
    match SERVER.get_or_init(Postgres::start) {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

/// Where the PostgreSQL server binaries are: `postgres` on PATH, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian puts them there, off PATH).
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
                // Where the binaries really are: a folder on PATH may hold links to some of
                // them only (initdb and pg_ctl, not pg_isready).
                let real = std::fs::canonicalize(dir.join("postgres"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf));
                return Ok(real.unwrap_or(dir));
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir).ok_or_else(|| {
        "PostgreSQL's server binaries (postgres, initdb) are neither on PATH nor in \
         /usr/lib/postgresql/*/bin: install the Debian package `postgresql` \
         (./scripts/test does)"
            .to_owned()
    })
}

/// True when this process runs as root: `initdb` and `postgres` refuse to, so they run as the
/// `postgres` user instead.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A command run as the user who owns the server (`postgres` when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// A server of the test's own, which it may stop and start again (on the same port, with
    /// the same data); removed when dropped.
    pub fn start_own() -> Postgres {
        Postgres::start_with(true).unwrap_or_else(|e| panic!("{e}"))
    }

    fn start() -> Result<Postgres, String> {
        Postgres::start_with(false)
    }

    fn start_with(own: bool) -> Result<Postgres, String> {
        let bin = bin_dir()?;
        // Not a TempDir: the folder belongs to the server's user and the guard shell removes
        // it once the server has stopped.
        let data = tempfile::Builder::new()
            .prefix("lockstep-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a folder for PostgreSQL: {e}"))?
            .keep();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(
                    "cannot give the PostgreSQL folder to the postgres user (is there \
                            a `postgres` user? install the Debian package `postgresql`)"
                        .to_owned(),
                );
            }
        }
        let cluster = data.join("cluster");
        let out = as_owner(&bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&cluster)
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut server = Postgres {
            port: super::free_port(),
            bin,
            data,
            guard: None,
            own,
        };
        server.launch()?;
        Ok(server)
    }

    /// Starts the server under its guard and waits until it accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        // The guard: start the server, wait for standard input to close (the test process
        // ended, or an own server is stopped), then stop it quickly; the shared server's data
        // goes with it.
        let script = r#"
            "$1/postgres" -D "$2/cluster" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                -c max_connections=1000 -c shared_buffers=64MB \
                >>"$2/log" 2>&1 &
            server=$!
            cat >/dev/null
            kill -INT "$server"
            wait "$server"
            if [ "$4" = remove ]; then rm -rf "$2"; fi
        "#;
        let mut guard = as_owner(Path::new("/bin/sh"));
        guard
            .args(["-c", script, "pg-guard"])
            .arg(&self.bin)
            .arg(&self.data)
            .arg(self.port.to_string())
            .arg(if self.own { "keep" } else { "remove" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.guard = Some(
            guard
                .spawn()
                .map_err(|e| format!("cannot start postgres: {e}"))?,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .args(["-h", "127.0.0.1", "-q", "-p"])
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.data.join("log")).unwrap_or_default();
                return Err(format!("PostgreSQL did not start within 60 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops an own server (fast shutdown) and waits until it has exited; its data stays.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }

    /// Starts a stopped own server again, on the same port with the same data.
    pub fn start_again(&mut self) {
        if self.guard.is_none() {
            self.launch().unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Creates a new empty database and returns its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL on the `postgres` database with psql, panicking with its output when it fails.
    pub fn psql(&self, sql: &str) {
        let mut child = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql starts (Debian package postgresql-client)");
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(sql.as_bytes())
            .expect("psql reads its input");
        let out = child.wait_with_output().expect("psql ends");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Only own servers are ever dropped (the shared one lives in a static).
        self.stop();
        if self.own {
            let _ = Command::new("rm").arg("-rf").arg(&self.data).status();
        }
    }
}

/// A database URL for a test that keeps its data in `dir`: the same database every time it is
/// asked for the same folder (a test that restarts its server finds its data), a new one on
/// the shared server for a new folder.
pub fn database_for(dir: &Path) -> String {
    let file = dir.join(".test-database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    let url = shared().create_database();
    std::fs::write(&file, &url).expect("the test folder is writable");
    url
}
