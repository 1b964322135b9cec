//! Room passwords, hashed with argon2id.
//!
//! Hashing is deliberately slow and takes 19 MiB per run, so it must never run unbounded: an
//! outside test sent 200 wrong passwords at once and the server, then hashing on tokio's
//! blocking pool (up to 512 threads), went from 129 MiB to 6.2 GiB and stayed there. Here a
//! fixed set of threads, one per core, does all hashing, and each hashes into one block of
//! memory it allocated once and reuses (argon2's `hash_password_into_with_memory`): letting
//! argon2 allocate per run still left about 57 MiB per thread in malloc's arenas (measured).
//! A short queue in front of the threads holds the requests that wait; when it is full the
//! answer is "busy" (503) at once, rather than more memory or an ever longer wait. Guesses are
//! also rate-limited per client address and per room before they get here (`server::rooms`).

use anyhow::Context;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Longest password accepted, in characters.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Checks waiting per hashing thread before more are refused as busy.
const QUEUE_PER_THREAD: usize = 8;

/// Most memory a stored hash may ask for (its `m=`, in KiB). Ours use argon2's default, 19 MiB;
/// a hash edited into the database asking for more is refused rather than allocated.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be 1 to {PASSWORD_MAX_CHARS} characters")]
    Length,
}

/// Why a hash or a check did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting; try again in a moment")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Checks a password someone wants to set.
pub fn validate(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n == 0 || n > PASSWORD_MAX_CHARS {
        return Err(PasswordError::Length);
    }
    Ok(())
}

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<anyhow::Result<String>>,
    },
    Verify {
        phc: String,
        password: String,
        reply: oneshot::Sender<bool>,
    },
}

/// The password hashing threads. Cheap to clone; the threads stop when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Passwords {
    jobs: SyncSender<Job>,
}

impl Passwords {
    /// Starts `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel(threads * QUEUE_PER_THREAD);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&queue))
                .context("cannot start a password hashing thread")?;
        }
        Ok(Passwords { jobs })
    }

    /// One thread per core.
    pub fn per_core() -> anyhow::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => {
                HashError::Failed(anyhow::anyhow!("the password threads stopped"))
            }
        })
    }

    /// The argon2id PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        let hashed = answer.await.context("the hashing thread went away")?;
        Ok(hashed?)
    }

    /// Whether `password` matches `phc`. A malformed stored hash never matches.
    pub async fn verify(&self, phc: String, password: String) -> Result<bool, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify {
            phc,
            password,
            reply,
        })?;
        Ok(answer.await.context("the hashing thread went away")?)
    }
}

/// A hashing thread: takes jobs until every sender is gone.
fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        let job = {
            // A thread that panicked while holding the lock left the receiver intact.
            let queue = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(memory.hash(password.as_bytes()));
            }
            Job::Verify {
                phc,
                password,
                reply,
            } => {
                let matches = memory.verify(&phc, password.as_bytes()).unwrap_or_else(|err| {
                    tracing::error!(error = %err, "a stored room password hash cannot be checked");
                    false
                });
                let _ = reply.send(matches);
            }
        }
    }
}

/// One thread's argon2 memory, allocated on first use and reused for every later run.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }

    /// The argon2id PHC string of `password` with a fresh salt and argon2's default parameters.
    fn hash(&mut self, password: &[u8]) -> anyhow::Result<String> {
        let params = Params::DEFAULT;
        let salt = argon2::password_hash::generate_salt();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon
            .hash_password_into_with_memory(password, &salt, &mut out, self.blocks(&params))
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|e| anyhow::anyhow!("encoding argon2 parameters: {e}"))?,
            salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("the salt: {e}"))?),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("the output: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` hashes to the PHC string `phc` (compared in constant time).
    fn verify(&mut self, phc: &str, password: &[u8]) -> anyhow::Result<bool> {
        let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("malformed hash: {e}"))?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            anyhow::bail!("the hash has no salt or output");
        };
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
            .map_err(|e| anyhow::anyhow!("algorithm: {e}"))?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| anyhow::anyhow!("version: {e}"))?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("parameters: {e}"))?;
        anyhow::ensure!(
            params.m_cost() <= MAX_M_COST_KIB,
            "the hash asks for {} KiB of memory",
            params.m_cost()
        );
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        argon
            .hash_password_into_with_memory(password, salt.as_ref(), &mut out, self.blocks(&params))
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        let computed = Output::new(&out).map_err(|e| anyhow::anyhow!("the output: {e}"))?;
        Ok(&computed == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let passwords = Passwords::new(2).unwrap();
        let a = passwords.hash("hunter2".into()).await.unwrap();
        let b = passwords.hash("hunter2".into()).await.unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(passwords.verify(a.clone(), "hunter2".into()).await.unwrap());
        assert!(!passwords.verify(a, "hunter3".into()).await.unwrap());
        assert!(
            !passwords
                .verify("garbage".into(), "x".into())
                .await
                .unwrap()
        );
        assert_eq!(validate(""), Err(PasswordError::Length));
        assert!(validate(&"x".repeat(128)).is_ok());
        assert!(validate(&"x".repeat(129)).is_err());
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::default();
        // Ours verify with argon2's verifier, and argon2's (as stored before) with ours.
        let ours = memory.hash(b"hunter2").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"hunter2", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"hunter2")
            .unwrap()
            .to_string();
        assert!(memory.verify(&theirs, b"hunter2").unwrap());
        assert!(!memory.verify(&theirs, b"hunter3").unwrap());
        assert!(
            memory
                .verify(
                    "$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                    b"x"
                )
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let passwords = Passwords::new(1).unwrap();
        let phc = passwords.hash("pw".into()).await.unwrap();
        let checks: Vec<_> = (0..40)
            .map(|_| {
                let passwords = passwords.clone();
                let phc = phc.clone();
                tokio::spawn(async move { passwords.verify(phc, "wrong".into()).await })
            })
            .collect();
        let mut busy = 0;
        let mut checked = 0;
        for check in checks {
            match check.await.unwrap() {
                Ok(false) => checked += 1,
                Err(HashError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        // One running, QUEUE_PER_THREAD waiting: the rest are refused, nothing more is held.
        assert!(checked >= QUEUE_PER_THREAD, "{checked} checked");
        assert!(busy > 0, "some were refused");
        assert_eq!(busy + checked, 40);
    }
}
