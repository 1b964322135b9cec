//! The last room events, kept so that a reconnecting client receives exactly what it missed.

use std::collections::VecDeque;
use tungstenite::Utf8Bytes;

/// Bytes of events a room keeps for resuming clients, whatever the ring's length: a busy room's
/// large events (long chat lines, queue items with long URLs, up to a few KiB each) would
/// otherwise keep its whole length of them. Ordinary events are a few hundred bytes, so a ring of
/// 512 of them fits well within this.
pub const RING_MAX_BYTES: usize = 256 * 1024;

/// The most recent serialised events, by sequence number: at most `capacity` of them and at
/// most `max_bytes` (the newest is always kept).
#[derive(Debug)]
pub struct EventRing {
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    frames: VecDeque<(u64, Utf8Bytes)>,
}

impl EventRing {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        EventRing {
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            frames: VecDeque::new(),
        }
    }

    /// Adds the event numbered `seq` (one more than the last one pushed), dropping the oldest
    /// ones as the bounds require.
    pub fn push(&mut self, seq: u64, frame: Utf8Bytes) {
        self.bytes += frame.len();
        self.frames.push_back((seq, frame));
        while self.frames.len() > 1
            && (self.frames.len() > self.capacity || self.bytes > self.max_bytes)
        {
            if let Some((_, old)) = self.frames.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The bytes of the events held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The events after `after` up to `latest`, or `None` when some have left the ring (or
    /// `after` is from the future).
    pub fn after(&self, after: u64, latest: u64) -> Option<Vec<Utf8Bytes>> {
        if after > latest {
            return None;
        }
        if after == latest {
            return Some(Vec::new());
        }
        let first = self.frames.front()?.0;
        if after + 1 < first {
            return None;
        }
        Some(
            self.frames
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, f)| f.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: u64, cap: usize) -> EventRing {
        let mut r = EventRing::new(cap, usize::MAX);
        for seq in 1..=n {
            r.push(seq, Utf8Bytes::from(seq.to_string()));
        }
        r
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let r = ring(10, 4); // holds 7..=10
        let got: Vec<String> = r
            .after(7, 10)
            .unwrap()
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(got, ["8", "9", "10"]);
        assert_eq!(r.after(6, 10).unwrap().len(), 4);
        assert!(r.after(5, 10).is_none(), "event 6 left the ring");
        assert_eq!(r.after(10, 10).unwrap().len(), 0);
        assert!(r.after(11, 10).is_none());
        assert_eq!(ring(0, 4).after(0, 0).unwrap().len(), 0);
        assert!(ring(0, 4).after(0, 3).is_none());
    }

    #[test]
    fn holds_at_most_its_bytes_and_always_the_newest() {
        let mut r = EventRing::new(100, 1000);
        for seq in 1..=10 {
            r.push(seq, Utf8Bytes::from("x".repeat(300)));
        }
        assert_eq!(r.bytes(), 900, "three of 300 bytes fit in 1000");
        assert_eq!(r.after(7, 10).unwrap().len(), 3);
        assert!(r.after(6, 10).is_none(), "event 7 left for its bytes");
        r.push(11, Utf8Bytes::from("y".repeat(5000)));
        assert_eq!(
            r.bytes(),
            5000,
            "an event larger than the bound is still kept alone"
        );
        assert_eq!(r.after(10, 11).unwrap().len(), 1);
        assert!(r.after(9, 11).is_none());
        r.push(12, Utf8Bytes::from("z"));
        assert_eq!(r.bytes(), 1, "and leaves with the next one");
    }
}
