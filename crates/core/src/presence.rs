//! Presence: per-session state, aggregated per user.
//!
//! A user's presence is the most available state over their sessions
//! (available > busy > dnd > away > offline), `offline` when none. Sessions are opaque keys:
//! a web tab and an XMPP resource are both just a [`SessionKey`], so the XMPP mapping
//! (bare JID = user, full JID = session) needs nothing new here.

use crate::directory::UserId;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceState {
    Available,
    Busy,
    Dnd,
    Away,
    Offline,
}

impl PresenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Available => "available",
            PresenceState::Busy => "busy",
            PresenceState::Dnd => "dnd",
            PresenceState::Away => "away",
            PresenceState::Offline => "offline",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "available" => PresenceState::Available,
            "busy" => PresenceState::Busy,
            "dnd" => PresenceState::Dnd,
            "away" => PresenceState::Away,
            "offline" => PresenceState::Offline,
            _ => return None,
        })
    }
    /// Higher is more available.
    fn rank(self) -> u8 {
        match self {
            PresenceState::Available => 4,
            PresenceState::Busy => 3,
            PresenceState::Dnd => 2,
            PresenceState::Away => 1,
            PresenceState::Offline => 0,
        }
    }
}

pub const MAX_NOTE_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub state: PresenceState,
    pub idle: bool,
    pub note: String,
}

impl Presence {
    pub fn offline() -> Self {
        Self { state: PresenceState::Offline, idle: false, note: String::new() }
    }
    pub fn available() -> Self {
        Self { state: PresenceState::Available, idle: false, note: String::new() }
    }
}

/// One signed-in connection of a user (web tab, XMPP resource, API socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub user: UserId,
    pub session: u64,
}

#[derive(Debug)]
struct SessionPresence {
    presence: Presence,
    /// Logical change counter; the most recent change wins ties.
    changed: u64,
}

/// All sessions' presence, and each user's aggregate. Every mutator returns the user's new
/// aggregate presence when — and only when — it changed, which is what watchers are told.
#[derive(Debug, Default)]
pub struct PresenceBook {
    users: HashMap<UserId, HashMap<u64, SessionPresence>>,
    aggregate: HashMap<UserId, Presence>,
    tick: u64,
}

impl PresenceBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, user: UserId) -> Presence {
        self.aggregate.get(&user).cloned().unwrap_or_else(Presence::offline)
    }

    /// Every user who is not offline, with their aggregate presence.
    pub fn online(&self) -> impl Iterator<Item = (UserId, &Presence)> {
        self.aggregate.iter().map(|(u, p)| (*u, p))
    }

    pub fn online_users(&self) -> usize {
        self.aggregate.len()
    }

    pub fn sessions(&self) -> usize {
        self.users.values().map(HashMap::len).sum()
    }

    /// A new session starts `available`.
    pub fn connect(&mut self, key: SessionKey) -> Option<Presence> {
        self.put(key, Presence::available())
    }

    pub fn disconnect(&mut self, key: SessionKey) -> Option<Presence> {
        if let Some(sessions) = self.users.get_mut(&key.user) {
            sessions.remove(&key.session);
            if sessions.is_empty() {
                self.users.remove(&key.user);
            }
        }
        self.recompute(key.user)
    }

    /// Set a session's state and note. `Offline` is not a state a session can choose;
    /// it is treated as `away` (the XMPP `unavailable` of a still-connected session is a
    /// disconnect, handled by the caller).
    pub fn set(&mut self, key: SessionKey, state: PresenceState, note: &str) -> Option<Presence> {
        let state = if state == PresenceState::Offline { PresenceState::Away } else { state };
        let idle = self.session(key).map(|p| p.idle).unwrap_or(false);
        let note: String = note.chars().take(MAX_NOTE_CHARS).collect();
        self.put(key, Presence { state, idle, note })
    }

    pub fn set_idle(&mut self, key: SessionKey, idle: bool) -> Option<Presence> {
        let mut p = self.session(key)?.clone();
        p.idle = idle;
        self.put(key, p)
    }

    /// Set state and note on every session of a user (the REST "set my presence").
    pub fn set_all(&mut self, user: UserId, state: PresenceState, note: &str) -> Option<Presence> {
        let keys: Vec<u64> = self.users.get(&user).map(|s| s.keys().copied().collect()).unwrap_or_default();
        let mut last = None;
        for session in keys {
            if let Some(p) = self.set(SessionKey { user, session }, state, note) {
                last = Some(p);
            }
        }
        last
    }

    fn session(&self, key: SessionKey) -> Option<&Presence> {
        self.users.get(&key.user)?.get(&key.session).map(|s| &s.presence)
    }

    fn put(&mut self, key: SessionKey, presence: Presence) -> Option<Presence> {
        self.tick += 1;
        let changed = self.tick;
        self.users.entry(key.user).or_default().insert(key.session, SessionPresence { presence, changed });
        self.recompute(key.user)
    }

    fn recompute(&mut self, user: UserId) -> Option<Presence> {
        let best = self.users.get(&user).and_then(|sessions| {
            sessions
                .values()
                .max_by_key(|s| (s.presence.state.rank(), !s.presence.idle, s.changed))
                .map(|s| s.presence.clone())
        });
        let new = best.unwrap_or_else(Presence::offline);
        let old = self.get(user);
        if new.state == PresenceState::Offline {
            self.aggregate.remove(&user);
        } else {
            self.aggregate.insert(user, new.clone());
        }
        (old != new).then_some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceState::*;

    const U: UserId = UserId(1);
    fn s(n: u64) -> SessionKey {
        SessionKey { user: U, session: n }
    }

    #[test]
    fn aggregate_is_most_available_session() {
        let mut book = PresenceBook::new();
        assert_eq!(book.get(U).state, Offline);
        assert_eq!(book.connect(s(1)).unwrap().state, Available);
        assert_eq!(book.set(s(1), Away, "lunch").unwrap().note, "lunch");
        // A second session, available, wins over the away one.
        assert_eq!(book.connect(s(2)).unwrap().state, Available);
        // Busy on the second: the first is away, so busy is the best.
        assert_eq!(book.set(s(2), Busy, "").unwrap().state, Busy);
        assert_eq!(book.set(s(1), Dnd, "").map(|p| p.state), None, "busy still wins over dnd");
        assert_eq!(book.disconnect(s(2)).unwrap().state, Dnd);
        assert_eq!(book.disconnect(s(1)).unwrap().state, Offline);
        assert_eq!(book.online_users(), 0);
        assert_eq!(book.sessions(), 0);
    }

    #[test]
    fn unchanged_aggregate_reports_nothing() {
        let mut book = PresenceBook::new();
        book.connect(s(1));
        assert_eq!(book.connect(s(2)), None, "second available session changes nothing");
        assert_eq!(book.set(s(2), Available, ""), None);
        assert_eq!(book.disconnect(s(2)), None);
    }

    #[test]
    fn idle_ranks_below_active_and_notes_are_bounded() {
        let mut book = PresenceBook::new();
        book.connect(s(1));
        let p = book.set_idle(s(1), true).unwrap();
        assert!(p.idle);
        book.connect(s(2));
        assert!(!book.get(U).idle, "an active session hides the idle one");
        assert_eq!(book.set_idle(s(9), true), None, "unknown session is ignored");
        let long = "x".repeat(500);
        assert_eq!(book.set(s(2), Available, &long).unwrap().note.chars().count(), MAX_NOTE_CHARS);
    }

    #[test]
    fn offline_is_not_choosable_and_set_all_touches_every_session() {
        let mut book = PresenceBook::new();
        book.connect(s(1));
        book.connect(s(2));
        assert_eq!(book.set(s(1), Offline, "").map(|p| p.state), None);
        let p = book.set_all(U, Dnd, "focus").unwrap();
        assert_eq!((p.state, p.note.as_str()), (Dnd, "focus"));
        assert_eq!(book.set_all(UserId(99), Dnd, ""), None);
    }
}
