//! The one way Lockstep runs a child process (ffprobe and ffmpeg).
//!
//! Every run has a timeout after which the child is killed, the child is killed too when the
//! future is dropped (`kill_on_drop`), stdin is closed, and stdout and stderr are read
//! concurrently with a cap so that a chatty child can neither deadlock on a full pipe nor make the
//! server hold unbounded output. A run may carry [`Limits`] on the child's memory, CPU time and
//! file size, set by `prlimit` (util-linux) before it execs the program: our crates forbid
//! `unsafe`, which `setrlimit` between fork and exec would need, and a child that exceeds a limit
//! is stopped by the kernel whatever it does. A run with limits (every media tool's) also runs
//! at a lower CPU priority, under `nice` (coreutils): the lowest for media jobs, a little higher
//! for a link's lookup ([`Priority`]); the rooms' events, the clock pings and the database come
//! first. Failures come back as a [`ProcessError`] written for operators.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Most bytes kept of a child's stdout.
pub const STDOUT_CAP: usize = 4 * 1024 * 1024;
/// Most bytes kept of a child's stderr (its tail is what explains a failure).
pub const STDERR_CAP: usize = 64 * 1024;

/// The program that applies [`Limits`] to a child (util-linux, on every Debian system).
pub const PRLIMIT: &str = "prlimit";

/// The program that lowers a limited child's CPU priority (coreutils), to its [`Priority`].
pub const NICE: &str = "nice";

/// How a limited child's CPU time weighs against the server's (its niceness, under [`NICE`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// The lowest, 19: media jobs, which run for minutes, and the start-up backfills. A transcode
    /// beside the server (a child stays in the server's scheduling group, as the kernel's
    /// autogroup puts one session's processes together) took a quarter of a fan-out's deliveries
    /// and quadrupled their p99 at the server's priority; niced, they were back within 1.5% and
    /// the p99 at 52 ms against 38 ms without it (bench/RESULTS.md, twenty-sixth session).
    #[default]
    Background,
    /// 10: a pasted link's lookup (its ffprobe and its poster frame), short and waited for by a
    /// user within its timeouts (10 s each by default). At 19, beside three processes busy at the
    /// server's priority on 2 cores, ffprobe took 10.0 s of wall-clock time for 0.1 s of CPU, the
    /// whole of its timeout; at 10, 1.0 s; at the server's own, 0.14 s. At 10 it still gets about a
    /// tenth of what a busy server thread gets.
    Lookup,
}

impl Priority {
    /// `nice -n`'s argument.
    pub fn niceness(self) -> &'static str {
        match self {
            Priority::Background => "19",
            Priority::Lookup => "10",
        }
    }
}

/// Resource limits of one child process (`None`: the server's own limit applies), and the
/// priority it runs at when it has any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Address space, bytes (`RLIMIT_AS`).
    pub memory_bytes: Option<u64>,
    /// CPU time, seconds (`RLIMIT_CPU`; the kernel sends SIGXCPU, then kills).
    pub cpu_secs: Option<u64>,
    /// Largest file it may write, bytes (`RLIMIT_FSIZE`; a larger write gets SIGXFSZ).
    pub file_bytes: Option<u64>,
    /// Its CPU priority (only with a limit above).
    pub priority: Priority,
}

impl Limits {
    fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.cpu_secs.is_none() && self.file_bytes.is_none()
    }

    /// `prlimit`'s arguments for these limits, up to and including `--`.
    fn prlimit_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(bytes) = self.memory_bytes {
            args.push(format!("--as={bytes}"));
        }
        if let Some(secs) = self.cpu_secs {
            args.push(format!("--cpu={}", secs.max(1)));
        }
        if let Some(bytes) = self.file_bytes {
            args.push(format!("--fsize={bytes}"));
        }
        args.push("--".to_owned());
        args
    }
}

/// Why a child process did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {program}: {source} (is it installed and on PATH?)")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {timeout:?} and was killed")]
    Timeout { program: PathBuf, timeout: Duration },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("reading the output of {program}: {source}")]
    Io {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} was stopped: the job was cancelled")]
    Cancelled { program: PathBuf },
    #[error("{program} was stopped: {what}")]
    OverLimit {
        program: PathBuf,
        what: &'static str,
    },
}

/// What a program's last words say when the machine failed it, not its input: running it again
/// may succeed.
const MACHINE_FAULTS: [&str; 6] = [
    "No space left on device",
    "Cannot allocate memory",
    "Input/output error",
    "Too many open files",
    "Resource temporarily unavailable",
    // ffmpeg's words, and its exit code 255, when a signal stopped it.
    "received signal",
];

impl ProcessError {
    /// Whether running the program again on the same input would fail the same way: it ended
    /// by itself with an error code, not from a signal (a crash, the OOM killer; ffmpeg exits
    /// 255 when it catches one) and without blaming the machine (disk full, memory, I/O).
    pub fn repeats(&self) -> bool {
        match self {
            ProcessError::Failed { status, stderr, .. } => {
                status.code().is_some_and(|code| code != 255)
                    && !MACHINE_FAULTS.iter().any(|fault| stderr.contains(fault))
            }
            _ => false,
        }
    }
}

/// The last lines of a child's stderr, joined: what explains a failure.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(5)
        .collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Reads up to `cap` bytes and drains (discards) the rest, so the child never blocks on the pipe.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Starts `program args...` (under `nice` and `prlimit` when there are limits) with piped output
/// and no input; it is killed if dropped.
fn spawn<I, S>(
    program: &Path,
    args: I,
    limits: &Limits,
) -> Result<tokio::process::Child, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = if limits.is_empty() {
        Command::new(program)
    } else {
        // nice lowers its own priority and execs prlimit, which sets the limits on itself, then
        // execs the program: same process, so kill_on_drop still kills the program.
        let mut command = Command::new(NICE);
        command
            .args(["-n", limits.priority.niceness(), PRLIMIT])
            .args(limits.prlimit_args())
            .arg(program);
        command
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: if limits.is_empty() {
                program.to_owned()
            } else {
                PathBuf::from(NICE)
            },
            source,
        })
}

/// The error for a child that exited without success: a limit it hit, or its own failure; or,
/// when `prlimit` could not execute the program (it says so and exits 126 or 127, as `nice`
/// does), the program's own start failing, as if it had been started directly: a missing
/// ffprobe is the server's fault, not the file's (an upload was refused and deleted as "not a
/// video file" when it was read as ffprobe failing).
fn failure(program: &Path, status: std::process::ExitStatus, stderr: &[u8]) -> ProcessError {
    use std::os::unix::process::ExitStatusExt;
    let tail = stderr_tail(stderr);
    let wrapper_says = |name: &str| tail.starts_with(&format!("{name}: "));
    if matches!(status.code(), Some(126 | 127)) && (wrapper_says(PRLIMIT) || wrapper_says(NICE)) {
        return ProcessError::Spawn {
            program: program.to_owned(),
            source: std::io::Error::new(
                if status.code() == Some(127) {
                    std::io::ErrorKind::NotFound
                } else {
                    std::io::ErrorKind::PermissionDenied
                },
                tail,
            ),
        };
    }
    // SIGXCPU (24) and SIGXFSZ (25) on Linux: the kernel enforcing a limit.
    let what = match status.signal() {
        Some(24) => Some("it used more than its CPU time limit"),
        Some(25) => Some("its output grew past its size limit"),
        _ => None,
    };
    match what {
        Some(what) => ProcessError::OverLimit {
            program: program.to_owned(),
            what,
        },
        None => ProcessError::Failed {
            program: program.to_owned(),
            status,
            stderr: tail,
        },
    }
}

/// Runs `program args...` and returns its stdout when it exits with success.
pub async fn run<I, S>(
    program: &Path,
    args: I,
    timeout: Duration,
    limits: &Limits,
) -> Result<Vec<u8>, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = spawn(program, args, limits)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let out = async {
            match stdout {
                Some(s) => read_capped(s, STDOUT_CAP).await,
                None => Ok(Vec::new()),
            }
        };
        let err = async {
            match stderr {
                Some(s) => read_capped(s, STDERR_CAP).await,
                None => Ok(Vec::new()),
            }
        };
        let (out, err, status) = tokio::join!(out, err, child.wait());
        Ok::<_, std::io::Error>((out?, err?, status?))
    };
    let (stdout, stderr, status) = match tokio::time::timeout(timeout, work).await {
        Err(_) => {
            // Dropping `work` drops the child, which kills it (kill_on_drop).
            return Err(ProcessError::Timeout {
                program: program.to_owned(),
                timeout,
            });
        }
        Ok(Err(source)) => {
            return Err(ProcessError::Io {
                program: program.to_owned(),
                source,
            });
        }
        Ok(Ok(done)) => done,
    };
    if !status.success() {
        return Err(failure(program, status, &stderr));
    }
    Ok(stdout)
}

/// Runs `program args...`, handing each line of its stdout to `on_line` as it comes (ffmpeg's
/// `-progress pipe:1`), until it exits, the timeout passes or `cancel` fires (then it is
/// killed). Returns the tail of stderr on success too (warnings).
pub async fn run_streaming<I, S>(
    program: &Path,
    args: I,
    timeout: Duration,
    limits: &Limits,
    cancel: &CancellationToken,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<String, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = spawn(program, args, limits)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let io_error = |source| ProcessError::Io {
        program: program.to_owned(),
        source,
    };
    let work = async {
        let lines = async {
            if let Some(out) = stdout {
                let mut lines = BufReader::new(out).lines();
                while let Some(line) = lines.next_line().await? {
                    on_line(&line);
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let err = async {
            match stderr {
                Some(s) => read_capped(s, STDERR_CAP).await,
                None => Ok(Vec::new()),
            }
        };
        let (lines, err, status) = tokio::join!(lines, err, child.wait());
        lines?;
        Ok::<_, std::io::Error>((err?, status?))
    };
    let (stderr, status) = tokio::select! {
        done = tokio::time::timeout(timeout, work) => match done {
            Err(_) => {
                return Err(ProcessError::Timeout {
                    program: program.to_owned(),
                    timeout,
                })
            }
            Ok(Err(source)) => return Err(io_error(source)),
            Ok(Ok(done)) => done,
        },
        // Dropping `work` drops the child, which kills it.
        () = cancel.cancelled() => return Err(ProcessError::Cancelled { program: program.to_owned() }),
    };
    if !status.success() {
        return Err(failure(program, status, &stderr));
    }
    Ok(stderr_tail(&stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_and_reports_failures() {
        let out = run(
            Path::new("sh"),
            ["-c", "echo hi; echo noise >&2"],
            Duration::from_secs(5),
            &Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(out, b"hi\n");
        let err = run(
            Path::new("sh"),
            ["-c", "echo boom >&2; exit 3"],
            Duration::from_secs(5),
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ProcessError::Failed { stderr, .. } if stderr == "boom"),
            "{err}"
        );
        assert!(err.repeats(), "its own error exit would come again");
        let err = run(
            Path::new("/nonexistent/tool"),
            ["x"],
            Duration::from_secs(5),
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }));
        // The same under limits (nice and prlimit start, the program does not), and for a file
        // that is not a program.
        let limited = Limits {
            cpu_secs: Some(10),
            ..Limits::default()
        };
        for missing in ["/nonexistent/tool", "/etc/passwd"] {
            let err = run(Path::new(missing), ["x"], Duration::from_secs(5), &limited)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ProcessError::Spawn { program, .. } if program == Path::new(missing)),
                "{err}"
            );
        }
        // A program's own exit 127 with its own words stays its failure.
        let err = run(
            Path::new("sh"),
            ["-c", "echo 'sh: nope' >&2; exit 127"],
            Duration::from_secs(5),
            &limited,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Failed { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_failure_repeats_unless_a_signal_or_the_machine_caused_it() {
        let fails = |script: &'static str| async move {
            run(
                Path::new("sh"),
                ["-c", script],
                Duration::from_secs(5),
                &Limits::default(),
            )
            .await
            .unwrap_err()
        };
        let repeats = fails("echo 'Invalid data found when processing input' >&2; exit 1").await;
        assert!(repeats.repeats(), "{repeats}");
        for transient in [
            "echo 'Segmentation fault' >&2; kill -SEGV $$",
            "kill -KILL $$",
            "echo 'Exiting normally, received signal 15.' >&2; exit 255",
            "echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 1",
            "echo 'Error reading header: Input/output error' >&2; exit 1",
            "echo 'Cannot allocate memory' >&2; exit 1",
        ] {
            let err = fails(transient).await;
            assert!(!err.repeats(), "{transient}: {err}");
        }
        let timeout = run(
            Path::new("sleep"),
            ["5"],
            Duration::from_millis(50),
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(!timeout.repeats(), "{timeout}");
    }

    #[tokio::test]
    async fn streams_lines_and_can_be_cancelled() {
        let mut seen = Vec::new();
        let cancel = CancellationToken::new();
        run_streaming(
            Path::new("sh"),
            ["-c", "echo a; echo b"],
            Duration::from_secs(5),
            &Limits::default(),
            &cancel,
            |l| seen.push(l.to_owned()),
        )
        .await
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        let cancel2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel2.cancel();
        });
        let err = run_streaming(
            Path::new("sleep"),
            ["30"],
            Duration::from_secs(60),
            &Limits::default(),
            &cancel,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Cancelled { .. }), "{err}");
    }

    #[tokio::test]
    async fn kills_on_timeout() {
        let started = std::time::Instant::now();
        let err = run(
            Path::new("sleep"),
            ["30"],
            Duration::from_millis(200),
            &Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }));
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_flood_of_output_neither_deadlocks_nor_grows_unbounded() {
        // 10 MB on stderr and stdout: both pipes must be drained while the child runs.
        let out = run(
            Path::new("sh"),
            [
                "-c",
                "head -c 10000000 /dev/zero >&2; head -c 10000000 /dev/zero",
            ],
            Duration::from_secs(20),
            &Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.len(), STDOUT_CAP);
    }

    #[tokio::test]
    async fn limits_stop_a_child_that_writes_too_much_or_takes_too_much_memory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("big");
        let script = format!("head -c 10000000 /dev/zero > {}", out.display());
        let err = run(
            Path::new("sh"),
            ["-c", script.as_str()],
            Duration::from_secs(20),
            &Limits {
                file_bytes: Some(1_000_000),
                ..Limits::default()
            },
        )
        .await
        .unwrap_err();
        // The shell reports the write failing (its own process got SIGXFSZ's default: it dies,
        // or, with the signal handled, the write returns EFBIG).
        assert!(
            matches!(
                err,
                ProcessError::Failed { .. } | ProcessError::OverLimit { .. }
            ),
            "{err}"
        );
        assert!(std::fs::metadata(&out).map_or(0, |m| m.len()) <= 1_000_000);
        // 64 MiB of address space is too little to allocate 200 MB.
        let err = run(
            Path::new("python3"),
            ["-c", "b = bytearray(200_000_000)"],
            Duration::from_secs(20),
            &Limits {
                memory_bytes: Some(64 << 20),
                ..Limits::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Failed { .. }), "{err}");
        // Within its limits it runs as usual.
        let fine = run(
            Path::new("sh"),
            ["-c", "echo ok"],
            Duration::from_secs(20),
            &Limits {
                memory_bytes: Some(256 << 20),
                cpu_secs: Some(10),
                file_bytes: Some(1 << 20),
                ..Limits::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(fine, b"ok\n");
    }

    #[tokio::test]
    async fn a_limited_child_runs_at_its_priority_and_an_unlimited_one_as_the_server() {
        let niceness = |limits: Limits| async move {
            let out = run(
                Path::new("sh"),
                ["-c", "cut -d' ' -f19 /proc/self/stat"],
                Duration::from_secs(20),
                &limits,
            )
            .await
            .unwrap();
            String::from_utf8(out)
                .unwrap()
                .trim()
                .parse::<i32>()
                .unwrap()
        };
        let own = niceness(Limits::default()).await;
        let limited = |priority| Limits {
            cpu_secs: Some(10),
            priority,
            ..Limits::default()
        };
        assert_eq!(
            niceness(limited(Priority::Background)).await,
            19,
            "own {own}"
        );
        assert_eq!(niceness(limited(Priority::Lookup)).await, 10, "own {own}");
        // A priority alone is no limit: the child runs as the server.
        let alone = Limits {
            priority: Priority::Lookup,
            ..Limits::default()
        };
        assert_eq!(niceness(alone).await, own);
        // /proc/self/stat's 19th field: `(comm)` holds no space for the test binary.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let ours: i32 = stat.split(' ').nth(18).unwrap().parse().unwrap();
        assert_eq!(own, ours);
    }
}
