//! The playback clock.
//!
//! A room's playback is `{paused, position at a server instant, rate}`: the position is exact at
//! `at`, and while playing it advances by `rate` seconds per second of server time. The server never
//! trusts a position from a client; everything is computed from the server clock, and every change
//! first "rebases" the state to the instant of the change so the position is continuous.

use crate::limits::{POSITION_MAX_SECS, RATE_MAX, RATE_MIN};
use crate::time::ServerTime;
use serde::{Deserialize, Serialize};

/// Where playback is, as of a server instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlaybackState {
    /// Whether the video is paused.
    pub paused: bool,
    /// Position in seconds at `at`.
    pub position: f64,
    /// The server instant `position` refers to.
    pub at: ServerTime,
    /// Playback rate, within [`RATE_MIN`]..=[`RATE_MAX`].
    pub rate: f64,
}

/// How long after a play command (or a held room's release) playback starts moving.
///
/// A viewer that hears of a start after it happened is behind by how late it heard plus the time
/// its player takes to start, and closes that by seeking (which, with keyframes seconds apart,
/// decodes seconds of video) or by playing faster for a while. Scheduled this far ahead, a viewer
/// whose messages take up to about 0.2 s (bench-sync's slowest link: 150 ms ±20%), paused where
/// the room paused, starts its player on time, without a seek. Jellyfin's SyncPlay schedules its
/// starts the same way, at least 0.5 s ahead.
pub const START_LEAD_SECS: f64 = 0.3;

/// A rate or position from a client that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlaybackError {
    #[error("the rate must be between {RATE_MIN} and {RATE_MAX}")]
    InvalidRate,
    #[error("the position must be a number of seconds from 0 to {POSITION_MAX_SECS}")]
    InvalidPosition,
}

/// Checks a rate asked for by a client.
pub fn validate_rate(rate: f64) -> Result<f64, PlaybackError> {
    if rate.is_finite() && (RATE_MIN..=RATE_MAX).contains(&rate) {
        Ok(rate)
    } else {
        Err(PlaybackError::InvalidRate)
    }
}

/// Checks a position asked for by a client.
pub fn validate_position(position: f64) -> Result<f64, PlaybackError> {
    if position.is_finite() && (0.0..=POSITION_MAX_SECS).contains(&position) {
        Ok(position)
    } else {
        Err(PlaybackError::InvalidPosition)
    }
}

impl PlaybackState {
    /// Paused at `position`, as of `now`, at normal speed.
    pub fn paused_at(position: f64, now: ServerTime) -> Self {
        PlaybackState {
            paused: true,
            position,
            at: now,
            rate: 1.0,
        }
    }

    /// The position at server time `now`.
    pub fn position_at(&self, now: ServerTime) -> f64 {
        if self.paused {
            return self.position;
        }
        // Before `at` the state does not say anything; hold the position rather than run backwards.
        let elapsed = now.seconds_since(self.at).max(0.0);
        self.position + elapsed * self.rate
    }

    /// The same playback, expressed as of `now`. A start scheduled after `now` stays scheduled.
    pub fn rebased(&self, now: ServerTime) -> Self {
        PlaybackState {
            position: self.position_at(now),
            at: if self.starts_after(now) { self.at } else { now },
            ..*self
        }
    }

    /// Whether the playback is to start moving after `now` (a scheduled start: [`Self::play_from`]).
    pub fn starts_after(&self, now: ServerTime) -> bool {
        !self.paused && self.at > now
    }

    /// Resumes playback at `now` from where it is.
    pub fn play(&self, now: ServerTime) -> Self {
        PlaybackState {
            paused: false,
            ..self.rebased(now)
        }
    }

    /// Resumes playback from where it is at `now`, moving from `start` on (a start scheduled
    /// shortly after the command, so that every viewer hears of it before it happens and starts
    /// on time: [`START_LEAD_SECS`]). Until then the position holds. A `start` before `now` is
    /// `now`.
    pub fn play_from(&self, now: ServerTime, start: ServerTime) -> Self {
        PlaybackState {
            paused: false,
            at: start.max(now),
            ..self.rebased(now)
        }
    }

    /// Pauses at `now` where it is.
    pub fn pause(&self, now: ServerTime) -> Self {
        PlaybackState {
            paused: true,
            ..self.rebased(now)
        }
    }

    /// Jumps to `position` at `now`, keeping paused/playing and the rate.
    pub fn seek(&self, position: f64, now: ServerTime) -> Self {
        PlaybackState {
            position,
            at: now,
            ..*self
        }
    }

    /// Changes the rate at `now`; the position is continuous across the change.
    pub fn with_rate(&self, rate: f64, now: ServerTime) -> Self {
        PlaybackState {
            rate,
            ..self.rebased(now)
        }
    }

    /// When the position reaches `duration`, if playing; `None` when paused.
    pub fn ends_at(&self, duration: f64) -> Option<ServerTime> {
        if self.paused {
            return None;
        }
        let remaining = ((duration - self.position) / self.rate).max(0.0);
        Some(self.at.plus_seconds(remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS: f64 = 1e-6;

    fn t(s: f64) -> ServerTime {
        ServerTime(0).plus_seconds(s)
    }

    #[test]
    fn plays_pauses_seeks() {
        let p = PlaybackState::paused_at(10.0, t(0.0));
        assert_eq!(p.position_at(t(100.0)), 10.0);
        let p = p.play(t(1.0));
        assert!((p.position_at(t(3.0)) - 12.0).abs() < EPS);
        let p = p.with_rate(2.0, t(3.0));
        assert!((p.position_at(t(4.0)) - 14.0).abs() < EPS);
        let p = p.pause(t(5.0));
        assert!((p.position_at(t(50.0)) - 16.0).abs() < EPS);
        let p = p.seek(3.0, t(6.0));
        assert!(p.paused);
        assert_eq!(p.position_at(t(60.0)), 3.0);
    }

    #[test]
    fn a_scheduled_start_holds_until_its_instant_and_stays_scheduled() {
        let p = PlaybackState::paused_at(10.0, t(0.0)).play_from(t(1.0), t(1.3));
        assert!(!p.paused);
        assert!(p.starts_after(t(1.2)) && !p.starts_after(t(1.3)));
        assert_eq!(p.position_at(t(1.0)), 10.0);
        assert_eq!(p.position_at(t(1.3)), 10.0);
        assert!((p.position_at(t(2.3)) - 11.0).abs() < EPS);
        // A rate change before the start keeps it: the position still moves from 1.3 s on.
        let faster = p.with_rate(2.0, t(1.1));
        assert_eq!(faster.at, t(1.3));
        assert!((faster.position_at(t(2.3)) - 12.0).abs() < EPS);
        // A pause before the start pauses where the room waits; a seek moves at once.
        let paused = p.pause(t(1.2));
        assert!(paused.paused);
        assert_eq!(paused.position_at(t(5.0)), 10.0);
        let sought = p.seek(40.0, t(1.2));
        assert!((sought.position_at(t(2.2)) - 41.0).abs() < EPS);
        // Playing again before the start changes nothing; a start in the past is now.
        assert_eq!(p.play(t(1.2)), p);
        assert_eq!(
            PlaybackState::paused_at(5.0, t(0.0))
                .play_from(t(2.0), t(1.0))
                .at,
            t(2.0)
        );
        // The end is reached the item's length after the start.
        assert_eq!(p.ends_at(20.0), Some(t(11.3)));
    }

    #[test]
    fn ends_at_accounts_for_rate() {
        let p = PlaybackState::paused_at(10.0, t(0.0));
        assert_eq!(p.ends_at(20.0), None);
        let p = p.play(t(0.0)).with_rate(2.0, t(0.0));
        assert_eq!(p.ends_at(20.0), Some(t(5.0)));
        // Already past the end: ends at once.
        assert_eq!(p.seek(30.0, t(1.0)).ends_at(20.0), Some(t(1.0)));
    }

    #[test]
    fn validation() {
        assert_eq!(validate_rate(0.25), Ok(0.25));
        assert_eq!(validate_rate(2.0), Ok(2.0));
        assert!(validate_rate(0.2).is_err());
        assert!(validate_rate(2.01).is_err());
        assert!(validate_rate(f64::NAN).is_err());
        assert!(validate_position(-0.1).is_err());
        assert!(validate_position(f64::INFINITY).is_err());
        assert_eq!(validate_position(0.0), Ok(0.0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Play,
        PlayFrom(u32),
        Pause,
        Seek(f64),
        Rate(f64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Play),
            (0u32..1_000_000).prop_map(Op::PlayFrom),
            Just(Op::Pause),
            (0.0..10_000.0f64).prop_map(Op::Seek),
            (RATE_MIN..=RATE_MAX).prop_map(Op::Rate),
        ]
    }

    proptest! {
        /// Between two commands the position moves at exactly `rate` (or not at all when paused),
        /// play/pause/rate changes never make it jump, and it never runs backwards on its own.
        #[test]
        fn clock_is_continuous_and_monotone(
            ops in prop::collection::vec((op(), 0u32..5_000_000), 1..40),
        ) {
            let mut now = ServerTime(1_700_000_000_000_000);
            let mut p = PlaybackState::paused_at(0.0, now);
            for (op, gap_us) in ops {
                let before = p.position_at(now);
                let next = match op {
                    Op::Play => p.play(now),
                    Op::PlayFrom(lead_us) => p.play_from(now, ServerTime(now.0 + i64::from(lead_us))),
                    Op::Pause => p.pause(now),
                    Op::Seek(pos) => p.seek(pos, now),
                    Op::Rate(r) => p.with_rate(r, now),
                };
                let after = next.position_at(now);
                match op {
                    Op::Seek(pos) => prop_assert_eq!(after, pos),
                    _ => prop_assert!((after - before).abs() < EPS, "{op:?} jumped {before} -> {after}"),
                }
                p = next;
                let later = ServerTime(now.0 + i64::from(gap_us));
                let advanced = p.position_at(later) - p.position_at(now);
                // A scheduled start moves from its instant on.
                let expected = if p.paused { 0.0 } else { later.seconds_since(now.max(p.at)).max(0.0) * p.rate };
                prop_assert!((advanced - expected).abs() < EPS);
                prop_assert!(advanced >= 0.0);
                // Rebasing never changes where playback is.
                prop_assert!((p.rebased(later).position_at(later) - p.position_at(later)).abs() < EPS);
                now = later;
            }
        }

        #[test]
        fn playback_reaches_duration_at_ends_at(
            position in 0.0..1000.0f64,
            extra in 0.0..1000.0f64,
            rate in RATE_MIN..=RATE_MAX,
        ) {
            let now = ServerTime(1_000_000);
            let p = PlaybackState::paused_at(position, now).with_rate(rate, now).play(now);
            let duration = position + extra;
            let end = p.ends_at(duration).unwrap();
            // The instant is rounded to the microsecond: within one µs of rate.
            prop_assert!((p.position_at(end) - duration).abs() < 1e-5);
        }
    }
}
