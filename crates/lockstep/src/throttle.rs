//! Rate limits on what strangers can make us do: guess room passwords, create users, rooms and
//! uploads, and chat, counted per client address (and per room for password guesses).
//!
//! Each limit is a [`Rate`] from configuration (`10/min`, `30/h`, `off`), enforced with
//! governor's keyed GCRA limiters: a burst of the rate's count, refilled evenly over its period.
//! The per-user rules of the room (chat lines per user, slow mode) live in the core; these bound
//! what many throwaway users from one address can do together.

use crate::metrics::Metrics;
use crate::server::client::ClientKey;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lockstep_core::ids::RoomId;
use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A rate: `count` per `period`, allowing a burst of `count`; or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// `None`: not limited.
    pub limit: Option<(NonZeroU32, Duration)>,
}

impl Rate {
    pub const OFF: Rate = Rate { limit: None };

    pub fn per(count: u32, period: Duration) -> Rate {
        Rate {
            limit: NonZeroU32::new(count)
                .filter(|_| !period.is_zero())
                .map(|n| (n, period)),
        }
    }

    fn quota(self) -> Option<Quota> {
        let (count, period) = self.limit?;
        let every = period / count.get();
        Quota::with_period(every).map(|q| q.allow_burst(count))
    }
}

impl FromStr for Rate {
    type Err = String;

    /// `N/s`, `N/min`, `N/h`, `N/day`; `off` (or `0`) for no limit.
    fn from_str(raw: &str) -> Result<Rate, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") || raw == "0" {
            return Ok(Rate::OFF);
        }
        let (count, unit) = raw
            .split_once('/')
            .ok_or_else(|| format!("{raw:?}: write a rate as N/s, N/min, N/h or N/day, or off"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?}: {count:?} is not a whole number"))?;
        let period = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "day" | "d" => Duration::from_secs(86_400),
            other => {
                return Err(format!(
                    "{raw:?}: unknown period {other:?} (s, min, h, day)"
                ));
            }
        };
        Ok(Rate::per(count, period))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            None => f.write_str("off"),
            Some((n, period)) => match period.as_secs() {
                1 => write!(f, "{n}/s"),
                60 => write!(f, "{n}/min"),
                3600 => write!(f, "{n}/h"),
                86_400 => write!(f, "{n}/day"),
                s => write!(f, "{n}/{s}s"),
            },
        }
    }
}

/// One keyed limit.
pub struct Limit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    /// Its name in the `rate_limited` metric.
    name: &'static str,
    metrics: Option<Metrics>,
}

/// The clock every limiter reads. Making one (`DefaultClock::default()`) identifies the CPU and
/// calibrates: a few microseconds that every WebSocket paid for its frame limiter (3% of the
/// server's CPU while viewers joined); clones share one.
pub fn clock() -> &'static DefaultClock {
    static CLOCK: std::sync::LazyLock<DefaultClock> =
        std::sync::LazyLock::new(DefaultClock::default);
    &CLOCK
}

impl<K: Hash + Eq + Clone> Limit<K> {
    pub fn new(rate: Rate) -> Self {
        Limit {
            limiter: rate
                .quota()
                .map(|quota| RateLimiter::dashmap_with_clock(quota, clock().clone())),
            name: "",
            metrics: None,
        }
    }

    fn counted(mut self, name: &'static str, metrics: &Metrics) -> Self {
        self.name = name;
        self.metrics = Some(metrics.clone());
        self
    }

    /// Takes one from `key`'s allowance, or says how long until there is one.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            if let Some(metrics) = &self.metrics {
                metrics.rate_limited(self.name);
            }
            not_until.wait_time_from(clock().now())
        })
    }

    /// Forgets keys whose allowance is full again (their state says nothing any more).
    fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub password_guesses_per_address: Rate,
    pub password_guesses_per_room: Rate,
    pub new_users_per_address: Rate,
    pub rooms_per_address: Rate,
    pub uploads_per_address: Rate,
    pub chat_per_address: Rate,
    pub requests_per_address: Rate,
}

/// Every rate limit of the server.
pub struct Throttles {
    pub password_guesses_per_address: Limit<ClientKey>,
    pub password_guesses_per_room: Limit<RoomId>,
    pub new_users: Limit<ClientKey>,
    pub rooms: Limit<ClientKey>,
    pub uploads: Limit<ClientKey>,
    pub chat: Limit<ClientKey>,
    /// Every API and media request.
    pub requests: Limit<ClientKey>,
}

impl Throttles {
    /// The limits; refusals are counted in `metrics` (`lockstep_rate_limited_total{limit}`).
    pub fn new(rates: Rates, metrics: &Metrics) -> Self {
        Throttles {
            password_guesses_per_address: Limit::new(rates.password_guesses_per_address)
                .counted("password_guesses", metrics),
            password_guesses_per_room: Limit::new(rates.password_guesses_per_room)
                .counted("password_guesses_per_room", metrics),
            new_users: Limit::new(rates.new_users_per_address).counted("new_users", metrics),
            rooms: Limit::new(rates.rooms_per_address).counted("rooms", metrics),
            uploads: Limit::new(rates.uploads_per_address).counted("uploads", metrics),
            chat: Limit::new(rates.chat_per_address).counted("chat", metrics),
            requests: Limit::new(rates.requests_per_address).counted("requests", metrics),
        }
    }

    /// Drops the state of clients that have been quiet long enough (run every few minutes, so
    /// that addresses seen once do not accumulate).
    pub fn prune(&self) {
        self.password_guesses_per_address.prune();
        self.password_guesses_per_room.prune();
        self.new_users.prune();
        self.rooms.prune();
        self.uploads.prune();
        self.chat.prune();
        self.requests.prune();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn rates_parse_and_print() {
        for (raw, shown) in [
            ("10/min", "10/min"),
            ("30/h", "30/h"),
            (" 5 / s ", "5/s"),
            ("2/day", "2/day"),
            ("off", "off"),
            ("0", "off"),
            ("0/min", "off"),
        ] {
            assert_eq!(raw.parse::<Rate>().unwrap().to_string(), shown, "{raw}");
        }
        for bad in ["ten/min", "10", "10/week", "-1/s", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_limit_allows_its_burst_then_says_when() {
        let limit: Limit<ClientKey> = Limit::new("3/min".parse().unwrap());
        let a = ClientKey::of("192.0.2.1".parse::<IpAddr>().unwrap());
        let b = ClientKey::of("192.0.2.2".parse::<IpAddr>().unwrap());
        for _ in 0..3 {
            limit.check(&a).unwrap();
        }
        let wait = limit.check(&a).unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        limit.check(&b).unwrap();
        let off: Limit<ClientKey> = Limit::new(Rate::OFF);
        for _ in 0..1000 {
            off.check(&a).unwrap();
        }
    }
}
