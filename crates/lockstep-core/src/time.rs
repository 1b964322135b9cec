//! Server time: microseconds since the Unix epoch.
//!
//! All playback positions are computed from this clock. Microseconds fit a JSON number exactly
//! (2^53 µs is about 285 years), so browsers can do arithmetic on them without losing precision.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};
use std::time::Duration;

/// An instant on the server clock, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerTime(pub i64);

impl ServerTime {
    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, as stored in the database.
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The instant `ms` milliseconds after the epoch.
    pub fn from_millis(ms: i64) -> Self {
        ServerTime(ms.saturating_mul(1000))
    }

    /// Seconds elapsed from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(self, earlier: ServerTime) -> f64 {
        (self.0 - earlier.0) as f64 / 1_000_000.0
    }

    /// The instant `seconds` after `self`; rounds to the microsecond.
    pub fn plus_seconds(self, seconds: f64) -> ServerTime {
        let us = (seconds * 1_000_000.0).round();
        // Saturate instead of overflowing on absurd inputs (an infinite remaining time, say).
        let us = if us.is_finite() {
            us.clamp(i64::MIN as f64, i64::MAX as f64) as i64
        } else if us > 0.0 {
            i64::MAX
        } else {
            i64::MIN
        };
        ServerTime(self.0.saturating_add(us))
    }
}

impl Add<Duration> for ServerTime {
    type Output = ServerTime;
    fn add(self, rhs: Duration) -> ServerTime {
        ServerTime(
            self.0
                .saturating_add(i64::try_from(rhs.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

impl Sub<Duration> for ServerTime {
    type Output = ServerTime;
    fn sub(self, rhs: Duration) -> ServerTime {
        ServerTime(
            self.0
                .saturating_sub(i64::try_from(rhs.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

impl Sub for ServerTime {
    type Output = Duration;
    /// The time from `rhs` to `self`, zero when `rhs` is later.
    fn sub(self, rhs: ServerTime) -> Duration {
        Duration::from_micros(u64::try_from(self.0 - rhs.0).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_rounds() {
        let t = ServerTime(1_000_000);
        assert_eq!(t.plus_seconds(1.5), ServerTime(2_500_000));
        assert_eq!(t.plus_seconds(f64::INFINITY), ServerTime(i64::MAX));
        assert_eq!(t.seconds_since(ServerTime(0)), 1.0);
        assert_eq!(ServerTime(5) - ServerTime(10), Duration::ZERO);
        assert_eq!(t + Duration::from_millis(2), ServerTime(1_002_000));
        assert_eq!(ServerTime::from_millis(3).millis(), 3);
        assert_eq!(ServerTime(-1).millis(), -1);
    }
}
