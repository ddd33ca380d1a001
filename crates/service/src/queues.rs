//! Expert queues at run time: the queue definitions from the store, the routing engine
//! (`sb_core::queue::Router`) fed by live presence, and each queue's public status.

use sb_core::queue::{ChatId, QueueChatRecord, QueueDef, QueueEvent, Router};
use sb_core::{Millis, Presence, PresenceState, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// An open queue chat, with what offers show of its seeker (kept to avoid a lookup per offer).
#[derive(Debug, Clone)]
pub(crate) struct OpenChat {
    pub record: QueueChatRecord,
    pub seeker_address: sb_core::Address,
    pub seeker_name: String,
}

/// What a web page may know about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// At least one expert is ready.
    Open,
    /// Open, but no expert is ready.
    Busy,
    /// Closed by an administrator (later: outside business hours).
    Closed,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Open => "open",
            QueueState::Busy => "busy",
            QueueState::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    pub id: String,
    pub state: QueueState,
    pub experts_ready: u32,
    pub seekers_waiting: u32,
    pub estimated_wait_s: u64,
}

/// Assumed handle time until measured statistics exist (issue 3, statistics).
const ASSUMED_HANDLE_S: u64 = 180;

#[derive(Default)]
pub struct Queues {
    defs: RwLock<Arc<Vec<QueueDef>>>,
    pub(crate) router: Mutex<Router>,
    /// Open queue chats (waiting or assigned), by id.
    pub(crate) chats: Mutex<HashMap<ChatId, OpenChat>>,
    /// Engine events caused where no async work can happen (presence changes, under the
    /// presence lock); the queue task carries them out.
    pub(crate) pending: Mutex<Vec<QueueEvent>>,
    pub(crate) wake: tokio::sync::Notify,
    /// Webhooks, as last read from the store.
    pub(crate) webhooks: RwLock<Arc<Vec<sb_core::store::Webhook>>>,
    /// Lifecycle events so far, by (queue, kind), for `/metrics`.
    pub(crate) counters: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

/// An expert is ready for queue chats when signed in and `available`, not idle.
fn readiness(p: &Presence) -> (bool, bool) {
    (p.state != PresenceState::Offline, p.state == PresenceState::Available && !p.idle)
}

impl Queues {
    pub fn defs(&self) -> Arc<Vec<QueueDef>> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Install definitions (from the store) and tell the router who is ready now.
    pub fn install(&self, defs: Vec<QueueDef>, presence_of: impl Fn(UserId) -> Presence, now: Millis) {
        let mut router = self.router.lock().unwrap_or_else(|e| e.into_inner());
        let mut events = Vec::new();
        for def in defs.iter().filter(|d| d.enabled) {
            events.extend(router.configure(def.routing(), now));
            for m in &def.members {
                let (signed_in, available) = readiness(&presence_of(m.user));
                events.extend(router.set_presence(m.user, signed_in, available, now));
            }
        }
        if !events.is_empty() {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).extend(events);
            self.wake.notify_one();
        }
        *self.defs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defs);
    }

    /// A user's aggregate presence changed.
    pub fn presence_changed(&self, user: UserId, presence: &Presence, now: Millis) {
        let is_member = self.defs().iter().any(|d| d.members.iter().any(|m| m.user == user));
        if is_member {
            let (signed_in, available) = readiness(presence);
            let events =
                self.router.lock().unwrap_or_else(|e| e.into_inner()).set_presence(user, signed_in, available, now);
            if !events.is_empty() {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).extend(events);
                self.wake.notify_one();
            }
        }
    }

    /// Find an enabled queue by id, display name or address (any case).
    pub fn find(&self, name: &str) -> Option<QueueDef> {
        self.defs().iter().find(|d| d.enabled && d.answers_to(name)).cloned()
    }

    /// Real-time figures of a queue (by id).
    pub fn realtime(&self, id: &str, now: Millis) -> Option<sb_core::queue::QueueStats> {
        self.router.lock().unwrap_or_else(|e| e.into_inner()).stats(id, now)
    }

    pub fn status(&self, name: &str, now: Millis) -> Option<QueueStatus> {
        let def = self.find(name)?;
        let stats = self.router.lock().unwrap_or_else(|e| e.into_inner()).stats(&def.id, now).unwrap_or_default();
        let state = if def.closed {
            QueueState::Closed
        } else if stats.ready > 0 {
            QueueState::Open
        } else {
            QueueState::Busy
        };
        let slots = u64::from(stats.signed_in.max(1)) * u64::from(def.capacity.max(1));
        let estimated_wait_s = if state == QueueState::Open && stats.waiting == 0 {
            0
        } else {
            (u64::from(stats.waiting) + 1) * ASSUMED_HANDLE_S / slots
        };
        Some(QueueStatus {
            id: def.id,
            state,
            experts_ready: if def.closed { 0 } else { stats.ready },
            seekers_waiting: stats.waiting,
            estimated_wait_s,
        })
    }
}
