//! The last room events, kept so that a reconnecting client receives exactly what it missed.

use std::collections::VecDeque;
use tungstenite::Utf8Bytes;

/// The most recent `capacity` serialised events, by sequence number.
#[derive(Debug)]
pub struct EventRing {
    capacity: usize,
    frames: VecDeque<(u64, Utf8Bytes)>,
}

impl EventRing {
    pub fn new(capacity: usize) -> Self {
        EventRing {
            capacity: capacity.max(1),
            frames: VecDeque::new(),
        }
    }

    /// Adds the event numbered `seq` (one more than the last one pushed).
    pub fn push(&mut self, seq: u64, frame: Utf8Bytes) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back((seq, frame));
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
        let mut r = EventRing::new(cap);
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
}
