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
    /// Closed by an administrator, or outside business hours.
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

/// The queue desk's own state: queues, the router, open queue chats, queues over plain
/// IM, guests and the public APIs' limits. Its own task advances queue time (`Service::start`).
pub struct Queues {
    defs: RwLock<Arc<Vec<QueueDef>>>,
    pub(crate) router: Mutex<Router>,
    /// Open queue chats (waiting or assigned), by id.
    pub(crate) chats: Mutex<HashMap<ChatId, OpenChat>>,
    /// Engine events caused where no async work can happen (presence changes, under the
    /// presence lock); the queue task carries them out.
    pub(crate) pending: Mutex<Vec<QueueEvent>>,
    pub(crate) wake: tokio::sync::Notify,
    /// Queue accounts and plain-IM relays.
    pub(crate) plain: Mutex<crate::queue_im::PlainIm>,
    /// Lifecycle events so far, by (queue, kind), for `/metrics`.
    pub(crate) counters: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
    /// Guests' messages and bytes.
    pub(crate) guests: crate::guests::Guests,
    /// Requests per client to the public queue APIs; guest sessions per client.
    pub(crate) public_limiter: Mutex<sb_core::ratelimit::SlidingWindow>,
    pub(crate) guest_limiter: Mutex<sb_core::ratelimit::SlidingWindow>,
}

/// An expert is ready for queue chats when signed in and `available`, not idle.
fn readiness(p: &Presence) -> (bool, bool) {
    (p.state != PresenceState::Offline, p.state == PresenceState::Available && !p.idle)
}

impl Queues {
    pub(crate) fn new(settings: &crate::Settings) -> Self {
        use sb_core::ratelimit::SlidingWindow;
        Self {
            defs: Default::default(),
            router: Default::default(),
            chats: Default::default(),
            pending: Default::default(),
            wake: Default::default(),
            plain: Default::default(),
            counters: Default::default(),
            guests: crate::guests::Guests::new(settings.guest_messages_per_minute),
            public_limiter: Mutex::new(SlidingWindow::new(settings.public_requests_per_minute, 60_000)),
            guest_limiter: Mutex::new(SlidingWindow::new(settings.guest_sessions_per_hour, 3_600_000)),
        }
    }

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
        let closed = !open_now(&def, now);
        let state = if closed {
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
            experts_ready: if closed { 0 } else { stats.ready },
            seekers_waiting: stats.waiting,
            estimated_wait_s,
        })
    }
}

/// Is the queue taking chats at `now`: not closed by an administrator, and within its
/// business hours (in its time zone)?
pub fn open_now(def: &QueueDef, now: Millis) -> bool {
    !def.closed && def.hours.as_ref().is_none_or(|h| local_time(&h.tz, now).is_some_and(|t| h.is_open(t)))
}

/// `now` in the time zone `tz` (IANA name); `None` for an unknown zone.
pub fn local_time(tz: &str, now: Millis) -> Option<sb_core::hours::LocalTime> {
    let zone = jiff::tz::TimeZone::get(tz).ok()?;
    let dt = jiff::Timestamp::from_millisecond(now).ok()?.to_zoned(zone).datetime();
    Some(sb_core::hours::LocalTime {
        year: dt.year(),
        month: dt.month(),
        day: dt.day(),
        weekday: dt.weekday().to_monday_zero_offset() as u8,
        minute: dt.hour() as u16 * 60 + dt.minute() as u16,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sb_core::hours::{BusinessHours, Span};

    #[test]
    fn business_hours_follow_the_queue_time_zone() {
        // 2026-11-26 is a Thursday; 08:30 UTC is 09:30 in Berlin (CET, UTC+1) and 03:30 in New York.
        let now = jiff::Timestamp::from_second(1_795_681_800).unwrap().as_millisecond();
        assert_eq!(jiff::Timestamp::from_millisecond(now).unwrap().to_string(), "2026-11-26T08:30:00Z");
        let t = local_time("Europe/Berlin", now).unwrap();
        assert_eq!((t.weekday, t.minute, t.day), (3, 9 * 60 + 30, 26));
        let mut def = QueueDef::new("support", "Support", sb_core::Address::parse("support@example.com").unwrap());
        let thu = |tz: &str| BusinessHours {
            tz: tz.into(),
            weekly: vec![Span { day: "thu".into(), open: "09:00".into(), close: "17:00".into() }],
            holidays: vec![],
        };
        def.hours = Some(thu("Europe/Berlin"));
        assert!(open_now(&def, now));
        def.hours = Some(thu("America/New_York"));
        assert!(!open_now(&def, now), "still night in New York");
        def.hours = Some(BusinessHours { holidays: vec!["2026-11-26".into()], ..thu("Europe/Berlin") });
        assert!(!open_now(&def, now), "holiday");
        def.hours = Some(thu("Mars/Olympus_Mons"));
        assert!(!open_now(&def, now), "an unknown zone never opens");
        def.hours = None;
        def.closed = true;
        assert!(!open_now(&def, now));
        assert!(local_time("Nowhere/Else", now).is_none());
    }
}
