//! Counting limiters with an injected clock (failed logins, guest sessions, public APIs),
//! and the one rule for whom a limit per client counts together ([`ClientKey`]).

use crate::clock::Millis;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};

/// Who a limit per client address counts together: an IPv4 address on its own, an IPv6
/// client by its /64 (one subscriber, one host or one data-centre VM usually holds a whole
/// /64 and can use any address in it), and an IPv4-mapped IPv6 address as the IPv4 address
/// it is. Every per-address limit (connections, sign-ins, guest sessions, public APIs) keys
/// on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Growing delays after failures, per key: the first `free` failures cost nothing; from
/// then on each attempt must wait `base_ms` after the last failure, doubling with every
/// further failure up to `max_ms`. A key is forgotten once `window_ms` (or its delay, if
/// longer) has passed since its last failure. Refused attempts are not failures: only
/// what was really tried counts. Memory is bounded like [`SlidingWindow`]'s.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    base_ms: Millis,
    max_ms: Millis,
    window_ms: Millis,
    max_keys: usize,
    /// key → (failures, last failure)
    failures: HashMap<String, (u32, Millis)>,
}

impl Backoff {
    pub fn new(free: usize, base_ms: Millis, max_ms: Millis, window_ms: Millis) -> Self {
        Self {
            free: u32::try_from(free).unwrap_or(u32::MAX),
            base_ms: base_ms.max(1),
            max_ms: max_ms.max(base_ms.max(1)),
            window_ms,
            max_keys: 100_000,
            failures: HashMap::new(),
        }
    }

    /// The wait after `n` failures.
    fn delay(&self, n: u32) -> Millis {
        if n < self.free {
            return 0;
        }
        let doublings = (n - self.free).min(40);
        self.base_ms.saturating_mul(1 << doublings).min(self.max_ms)
    }

    /// `Err(retry_after_ms)` while the key must wait.
    pub fn check(&mut self, key: &str, now: Millis) -> Result<(), Millis> {
        let Some(&(n, last)) = self.failures.get(key) else { return Ok(()) };
        let delay = self.delay(n);
        if now - last >= self.window_ms.max(delay) {
            self.failures.remove(key);
            return Ok(());
        }
        match last + delay - now {
            wait if wait > 0 => Err(wait),
            _ => Ok(()),
        }
    }

    /// Count a failure; returns the wait it brings.
    pub fn fail(&mut self, key: &str, now: Millis) -> Millis {
        let _ = self.check(key, now); // forget a stale count first
        if !self.failures.contains_key(key) && self.failures.len() >= self.max_keys {
            let stalest = self.failures.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.failures.remove(&k);
            }
        }
        let e = self.failures.entry(key.to_string()).or_insert((0, now));
        *e = (e.0.saturating_add(1), now);
        let n = e.0;
        self.delay(n)
    }

    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

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
    fn clients_are_keyed_by_ipv4_address_and_ipv6_64() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(key("::1"), key("::2"), "loopback: one host");
    }

    #[test]
    fn backoff_grows_per_failure_and_forgets() {
        let mut b = Backoff::new(3, 1000, 8000, 60_000);
        for t in [0, 10, 20] {
            assert!(b.check("k", t).is_ok());
            b.fail("k", t);
        }
        assert_eq!(b.check("k", 20), Err(1000), "after the free failures: the base delay");
        assert_eq!(b.check("k", 520), Err(500));
        assert!(b.check("other", 20).is_ok(), "per key");
        assert!(b.check("k", 1020).is_ok());
        assert_eq!(b.fail("k", 1020), 2000, "doubling");
        assert_eq!(b.check("k", 1021), Err(1999));
        assert_eq!(b.fail("k", 3020), 4000);
        assert_eq!(b.fail("k", 7020), 8000);
        assert_eq!(b.fail("k", 15_020), 8000, "up to the longest");
        assert_eq!(b.check("k", 23_019), Err(1));
        assert!(b.check("k", 23_020).is_ok(), "the wait is over");
        assert_eq!(b.fail("k", 23_020), 8000, "remembered within the window: still the longest");
        assert!(b.check("k", 23_020 + 60_000).is_ok());
        assert_eq!(b.fail("k", 23_020 + 60_000), 0, "forgotten after the window: free again");
        b.clear("k");
        assert!(b.failures.is_empty());
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
