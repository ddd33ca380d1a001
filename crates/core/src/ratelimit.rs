//! Counting limiters with an injected clock (failed logins, guest sessions, public APIs).

use crate::clock::Millis;
use std::collections::{HashMap, VecDeque};

/// At most `max` hits per key within any `window_ms`. Memory is bounded by `max_keys`:
/// when full, the key whose newest hit is oldest is forgotten.
#[derive(Debug)]
pub struct SlidingWindow {
    max: usize,
    window_ms: Millis,
    max_keys: usize,
    hits: HashMap<String, VecDeque<Millis>>,
}

impl SlidingWindow {
    pub fn new(max: usize, window_ms: Millis) -> Self {
        Self { max, window_ms, max_keys: 100_000, hits: HashMap::new() }
    }

    /// `Err(retry_after_ms)` when the key is over its limit now.
    pub fn check(&mut self, key: &str, now: Millis) -> Result<(), Millis> {
        let Some(q) = self.hits.get_mut(key) else { return Ok(()) };
        while q.front().is_some_and(|&t| t <= now - self.window_ms) {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front().unwrap_or(&now);
            return Err((oldest + self.window_ms - now).max(1));
        }
        Ok(())
    }

    pub fn record(&mut self, key: &str, now: Millis) {
        if !self.hits.contains_key(key) && self.hits.len() >= self.max_keys {
            self.evict_stalest();
        }
        let q = self.hits.entry(key.to_string()).or_default();
        q.push_back(now);
        while q.len() > self.max {
            q.pop_front();
        }
    }

    /// Check and record in one step.
    pub fn hit(&mut self, key: &str, now: Millis) -> Result<(), Millis> {
        self.check(key, now)?;
        self.record(key, now);
        Ok(())
    }

    pub fn clear(&mut self, key: &str) {
        self.hits.remove(key);
    }

    fn evict_stalest(&mut self) {
        let stalest = self.hits.iter().min_by_key(|(_, q)| q.back().copied().unwrap_or(0)).map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            self.hits.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_window_and_recovers() {
        let mut w = SlidingWindow::new(3, 1000);
        for t in [0, 10, 20] {
            assert!(w.hit("k", t).is_ok());
        }
        assert_eq!(w.hit("k", 30), Err(970));
        assert!(w.hit("other", 30).is_ok());
        assert!(w.hit("k", 1000).is_ok(), "first hit left the window");
        w.clear("k");
        assert!(w.check("k", 1001).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let mut w = SlidingWindow::new(1, 1000);
        w.max_keys = 2;
        w.record("a", 1);
        w.record("b", 2);
        w.record("c", 3);
        assert_eq!(w.hits.len(), 2);
        assert!(w.check("a", 4).is_ok(), "the stalest key was forgotten");
    }
}
