//! Chat rules: what a chat line may contain, and how often a user may post.

use crate::ids::UserId;
use crate::limits::CHAT_MAX_CHARS;
use crate::time::ServerTime;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Why a chat line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatTextError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is longer than {CHAT_MAX_CHARS} characters")]
    TooLong,
}

/// The text of a chat line: trimmed, 1..=1000 characters, control characters other than line
/// breaks and tabs removed (`\r\n` becomes `\n`). Always plain text: clients must insert it as
/// text, never as HTML.
/// Deserialising checks it again ([`ChatText::parse`]), so no path makes an unchecked one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ChatText(String);

impl From<ChatText> for String {
    fn from(text: ChatText) -> String {
        text.0
    }
}

impl TryFrom<String> for ChatText {
    type Error = ChatTextError;
    fn try_from(raw: String) -> Result<Self, ChatTextError> {
        ChatText::parse(&raw)
    }
}

impl ChatText {
    pub fn parse(raw: &str) -> Result<Self, ChatTextError> {
        // Count before cleaning too, so a megabyte of control characters is refused cheaply.
        if raw.chars().count() > CHAT_MAX_CHARS * 4 {
            return Err(ChatTextError::TooLong);
        }
        let cleaned: String = raw
            .replace("\r\n", "\n")
            .chars()
            .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
            .collect();
        let text = cleaned.trim();
        if text.is_empty() {
            return Err(ChatTextError::Empty);
        }
        if text.chars().count() > CHAT_MAX_CHARS {
            return Err(ChatTextError::TooLong);
        }
        Ok(ChatText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A sliding-window rate limit per user: at most `lines` in any `window`.
#[derive(Debug, Clone)]
pub struct ChatLimiter {
    lines: usize,
    window: Duration,
    recent: HashMap<UserId, VecDeque<ServerTime>>,
}

impl ChatLimiter {
    pub fn new(lines: usize, window: Duration) -> Self {
        ChatLimiter {
            lines: lines.max(1),
            window,
            recent: HashMap::new(),
        }
    }

    /// Records a line by `user` at `now`, or says how long to wait when over the limit.
    pub fn check(&mut self, user: UserId, now: ServerTime) -> Result<(), Duration> {
        let times = self.recent.entry(user).or_default();
        let horizon = now - self.window;
        while times.front().is_some_and(|&t| t <= horizon) {
            times.pop_front();
        }
        if times.len() >= self.lines {
            // `front` exists: `lines` is at least one.
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + self.window) - now);
        }
        times.push_back(now);
        Ok(())
    }

    /// Drops the history of users who have not posted within the window, so the map does not grow
    /// with every user who ever spoke.
    pub fn forget_idle(&mut self, now: ServerTime) {
        let horizon = now - self.window;
        self.recent
            .retain(|_, times| times.back().is_some_and(|&t| t > horizon));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    #[test]
    fn text_rules() {
        assert_eq!(ChatText::parse("  hi  ").unwrap().as_str(), "hi");
        assert_eq!(ChatText::parse("a\r\nb").unwrap().as_str(), "a\nb");
        assert_eq!(ChatText::parse("a\u{0}b\u{7}").unwrap().as_str(), "ab");
        assert_eq!(ChatText::parse(" \n\t "), Err(ChatTextError::Empty));
        assert_eq!(ChatText::parse("\u{1}"), Err(ChatTextError::Empty));
        assert!(ChatText::parse(&"x".repeat(1000)).is_ok());
        assert_eq!(
            ChatText::parse(&"x".repeat(1001)),
            Err(ChatTextError::TooLong)
        );
        // Characters, not bytes.
        assert!(ChatText::parse(&"é".repeat(1000)).is_ok());
        let html = "<img src=x onerror=alert(1)>";
        assert_eq!(ChatText::parse(html).unwrap().as_str(), html);
    }

    #[test]
    fn limiter_allows_n_per_window_then_says_when() {
        let mut l = ChatLimiter::new(5, Duration::from_secs(5));
        let u = UserId(Uuid::from_u128(1));
        let other = UserId(Uuid::from_u128(2));
        let t0 = ServerTime(10_000_000);
        for i in 0..5 {
            assert!(l.check(u, ServerTime(t0.0 + i * 100_000)).is_ok());
        }
        let wait = l.check(u, ServerTime(t0.0 + 1_000_000)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(4));
        // Others are not affected.
        assert!(l.check(other, ServerTime(t0.0 + 1_000_000)).is_ok());
        // Once the first line leaves the window, one more is allowed.
        assert!(l.check(u, ServerTime(t0.0 + 5_000_001)).is_ok());
        assert!(l.check(u, ServerTime(t0.0 + 5_000_002)).is_err());
        l.forget_idle(ServerTime(t0.0 + 60_000_000));
        assert!(l.recent.is_empty());
    }

    proptest! {
        #[test]
        fn never_more_than_n_in_any_window(gaps in prop::collection::vec(0i64..3_000_000, 1..200)) {
            let mut l = ChatLimiter::new(5, Duration::from_secs(5));
            let u = UserId(Uuid::from_u128(1));
            let mut now = 0i64;
            let mut accepted: Vec<i64> = Vec::new();
            for gap in gaps {
                now += gap;
                if l.check(u, ServerTime(now)).is_ok() {
                    accepted.push(now);
                }
            }
            for (i, &start) in accepted.iter().enumerate() {
                let in_window = accepted[i..].iter().take_while(|&&t| t < start + 5_000_000).count();
                prop_assert!(in_window <= 5);
            }
        }

        #[test]
        fn parsed_text_is_bounded_and_trimmed(raw in any::<String>()) {
            if let Ok(text) = ChatText::parse(&raw) {
                let s = text.as_str();
                prop_assert!(!s.is_empty() && s.chars().count() <= CHAT_MAX_CHARS);
                prop_assert_eq!(s, s.trim());
                prop_assert!(!s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            }
        }
    }
}
