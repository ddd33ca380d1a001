//! The session registry: who is connected, and the queues their frames go out on.
//!
//! Each session owns a bounded queue. Fan-out never waits on a socket: a full queue means
//! the client is not reading, and the session is told to close (it can resume later from
//! its last event id, so nothing is lost). No lock is held while anything is sent on a
//! socket; the registry lock covers only map updates and `try_send`s.

use crate::Frame;
use sb_core::{Address, SessionKey, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;

/// A frame on its way to one or more sessions. Edges encode it once and share the text.
#[derive(Debug)]
pub struct Outbound {
    pub frame: Frame,
    encoded: OnceLock<Arc<str>>,
}

impl Outbound {
    pub fn new(frame: Frame) -> Arc<Self> {
        Arc::new(Self { frame, encoded: OnceLock::new() })
    }
    /// The frame's wire text, encoded by `encode` on first use and shared afterwards.
    pub fn encoded(&self, encode: impl FnOnce(&Frame) -> String) -> Arc<str> {
        self.encoded.get_or_init(|| encode(&self.frame).into()).clone()
    }
}

/// The receiving end a connection task reads from.
pub struct SessionHandle {
    pub key: SessionKey,
    pub rx: mpsc::Receiver<Arc<Outbound>>,
    /// Set when the session fell behind and must be closed.
    pub overflowed: Arc<AtomicBool>,
}

struct Entry {
    session: u64,
    tx: mpsc::Sender<Arc<Outbound>>,
    overflowed: Arc<AtomicBool>,
    watches_presence: bool,
    /// Understands queue frames (offers, chat states). Plain IM sessions do not: the queue
    /// talks to them in messages instead.
    console: bool,
}

struct UserEntry {
    address: Address,
    /// The display name, for what others are shown (a guest sees its expert's name).
    name: String,
    sessions: Vec<Entry>,
}

#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<UserId, UserEntry>>,
    next_session: AtomicU64,
}

impl Hub {
    pub fn register(
        &self,
        user: UserId,
        address: &Address,
        name: &str,
        queue: usize,
        watches_presence: bool,
        console: bool,
    ) -> SessionHandle {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(queue);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .entry(user)
            .or_insert_with(|| UserEntry { address: address.clone(), name: name.to_string(), sessions: Vec::new() })
            .sessions
            .push(Entry { session, tx, overflowed: overflowed.clone(), watches_presence, console });
        SessionHandle { key: SessionKey { user, session }, rx, overflowed }
    }

    pub fn unregister(&self, key: SessionKey) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = users.get_mut(&key.user) {
            u.sessions.retain(|s| s.session != key.session);
            if u.sessions.is_empty() {
                users.remove(&key.user);
            }
        }
    }

    /// Has `user` any session now?
    pub fn is_connected(&self, user: UserId) -> bool {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&user)
    }

    /// End every session of `user`: each gets what is queued for it, then its queue closes
    /// (the connection task sees the end and closes the socket). Returns how many.
    pub fn disconnect(&self, user: UserId) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).remove(&user).map_or(0, |u| u.sessions.len())
    }

    /// Has `user` a session that shows queue offers (the web console)?
    pub fn has_console(&self, user: UserId) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
            .is_some_and(|u| u.sessions.iter().any(|s| s.console))
    }

    pub fn address_of(&self, user: UserId) -> Option<Address> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).get(&user).map(|u| u.address.clone())
    }

    /// The display name of a signed-in user.
    pub fn name_of(&self, user: UserId) -> Option<String> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).get(&user).map(|u| u.name.clone())
    }

    /// Send to every session of these users, except `skip`. Returns how many sessions overflowed.
    pub fn send_to_users(
        &self,
        users: impl IntoIterator<Item = UserId>,
        frame: &Arc<Outbound>,
        skip: Option<SessionKey>,
    ) -> usize {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut overflowed = 0;
        for user in users {
            if let Some(u) = map.get(&user) {
                for s in &u.sessions {
                    if skip.is_some_and(|k| k.user == user && k.session == s.session) {
                        continue;
                    }
                    overflowed += usize::from(push(s, frame));
                }
            }
        }
        overflowed
    }

    /// A signal (typing, a read marker) to whom the policy let it reach: the only way a
    /// signal goes out.
    pub(crate) fn send_signal(
        &self,
        audience: &crate::door::SignalAudience,
        frame: &Arc<Outbound>,
        skip: Option<SessionKey>,
    ) -> usize {
        self.send_to_users(audience.users().iter().copied(), frame, skip)
    }

    /// Send to one session. Returns true when the session overflowed.
    pub fn send_to_session(&self, key: SessionKey, frame: &Arc<Outbound>) -> bool {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key.user)
            .and_then(|u| u.sessions.iter().find(|s| s.session == key.session))
            .is_some_and(|s| push(s, frame))
    }

    /// Send to every session that watches presence, of the users `to` allows.
    pub fn send_to_presence_watchers(&self, frame: &Arc<Outbound>, to: impl Fn(UserId) -> bool) -> usize {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut overflowed = 0;
        for (user, u) in map.iter() {
            if !to(*user) {
                continue;
            }
            for s in u.sessions.iter().filter(|s| s.watches_presence) {
                overflowed += usize::from(push(s, frame));
            }
        }
        overflowed
    }

    /// Send to every session (shutdown notice).
    pub fn send_to_all(&self, frame: &Arc<Outbound>) {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        for u in map.values() {
            for s in &u.sessions {
                push(s, frame);
            }
        }
    }
}

/// Queue a frame; on a full queue mark the session overflowed (returns true once).
fn push(s: &Entry, frame: &Arc<Outbound>) -> bool {
    match s.tx.try_send(frame.clone()) {
        Ok(()) => false,
        Err(mpsc::error::TrySendError::Full(_)) => !s.overflowed.swap(true, Ordering::Relaxed),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
