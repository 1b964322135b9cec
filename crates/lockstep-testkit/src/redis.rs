//! A throwaway Redis server on a free loopback port, one per test (so a test can restart its
//! own), stopped when dropped or when the test process ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct Redis {
    port: u16,
    /// The shell that owns the server; its standard input closing stops it.
    guard: Option<Child>,
}

impl Redis {
    /// Starts a server on a free port; panics with what to install when there is no
    /// `redis-server`.
    pub fn start() -> Redis {
        let mut redis = Redis {
            port: super::free_port(),
            guard: None,
        };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        // Nothing on disk: the tests' Redis keeps what the product keeps there only in memory,
        // as a restarted production Redis without persistence would.
        let script = r#"
            redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
                --daemonize no --loglevel warning &
            server=$!
            cat >/dev/null
            kill "$server"
            wait "$server"
        "#;
        let guard = Command::new("/bin/sh")
            .args(["-c", script, "redis-guard"])
            .arg(self.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/bin/sh starts");
        self.guard = Some(guard);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            if Instant::now() > deadline {
                let found = Command::new("sh")
                    .args(["-c", "command -v redis-server"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if found {
                    panic!(
                        "redis-server did not answer on port {} within 20 s",
                        self.port
                    );
                }
                panic!(
                    "redis-server is not installed: install the Debian package `redis-server` \
                     (./scripts/test does)"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when the server answers PING.
    fn answers(&self) -> bool {
        let Ok(mut socket) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        socket.write_all(b"PING\r\n").is_ok()
            && socket.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (everything in it is lost) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }

    /// Stops the server and starts an empty one on the same port, as a restart of a Redis
    /// without persistence does.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
