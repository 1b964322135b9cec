//! The one way Lockstep runs a child process (ffprobe today, ffmpeg next).
//!
//! Every run has a timeout after which the child is killed, the child is killed too when the
//! future is dropped (`kill_on_drop`), stdin is closed, and stdout and stderr are read
//! concurrently with a cap so that a chatty child can neither deadlock on a full pipe nor make the
//! server hold unbounded output. Failures come back as a [`ProcessError`] written for operators.

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

/// Starts `program args...` with piped output and no input; it is killed if dropped.
fn spawn<I, S>(program: &Path, args: I) -> Result<tokio::process::Child, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: program.to_owned(),
            source,
        })
}

/// Runs `program args...` and returns its stdout when it exits with success.
pub async fn run<I, S>(program: &Path, args: I, timeout: Duration) -> Result<Vec<u8>, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = spawn(program, args)?;
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
        return Err(ProcessError::Failed {
            program: program.to_owned(),
            status,
            stderr: stderr_tail(&stderr),
        });
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
    cancel: &CancellationToken,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<String, ProcessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = spawn(program, args)?;
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
    let tail = stderr_tail(&stderr);
    if !status.success() {
        return Err(ProcessError::Failed {
            program: program.to_owned(),
            status,
            stderr: tail,
        });
    }
    Ok(tail)
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
        )
        .await
        .unwrap();
        assert_eq!(out, b"hi\n");
        let err = run(
            Path::new("sh"),
            ["-c", "echo boom >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ProcessError::Failed { stderr, .. } if stderr == "boom"),
            "{err}"
        );
        let err = run(
            Path::new("/nonexistent/tool"),
            ["x"],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }));
    }

    #[tokio::test]
    async fn streams_lines_and_can_be_cancelled() {
        let mut seen = Vec::new();
        let cancel = CancellationToken::new();
        run_streaming(
            Path::new("sh"),
            ["-c", "echo a; echo b"],
            Duration::from_secs(5),
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
        let err = run(Path::new("sleep"), ["30"], Duration::from_millis(200))
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
        )
        .await
        .unwrap();
        assert_eq!(out.len(), STDOUT_CAP);
    }
}
