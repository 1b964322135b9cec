//! The server clock: wall time in microseconds that never jumps.
//!
//! It reads the system clock once, at start, and advances with the monotonic clock after that,
//! so an NTP step on the host cannot make playback positions jump. It runs on tokio's clock, so
//! tests that pause time (`tokio::time::pause`) move it too.

use lockstep_core::time::ServerTime;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Wall-clock microseconds, advanced by the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct ServerClock {
    base_instant: Instant,
    base: ServerTime,
}

impl ServerClock {
    /// A clock anchored to the system time now.
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        ServerClock {
            base_instant: Instant::now(),
            base: ServerTime(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)),
        }
    }

    /// The current server time.
    pub fn now(&self) -> ServerTime {
        self.base + self.base_instant.elapsed()
    }

    /// The tokio instant at which the server clock reads `t` (now, if `t` has passed).
    pub fn instant_at(&self, t: ServerTime) -> Instant {
        self.base_instant + (t - self.base)
    }
}

impl Default for ServerClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let clock = ServerClock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now().seconds_since(t0), 1.5);
        let target = t0.plus_seconds(3.0);
        assert_eq!(
            clock.instant_at(target) - Instant::now(),
            Duration::from_millis(1500)
        );
    }
}
