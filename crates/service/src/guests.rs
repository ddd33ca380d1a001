//! Guests (website visitors) and the housekeeping of sessions.
//!
//! A guest is an account made for one queue chat. Its rights end with that chat: once the
//! chat is closed, abandoned or overflowed (not when it is kept as an offline message —
//! the seeker writes that message), the guest is *retired*: disabled, its sockets closed,
//! its sessions cut to `guest_linger_ms` (enough to read the transcript and send the
//! post-chat survey, the two things a retired guest may still do). While the chat is open
//! the guest is held to limits of its own: messages per minute and per chat, bytes per chat
//! (a storage quota) and WebSocket connections.
//!
//! Whether a seeker is still there is told to the routing engine here: a seeker with no
//! connection at all (any session of theirs — a signed-in user with the chat open in
//! another tab is still there) is away, and `Router` makes a waiting chat whose seeker
//! stays away for `seeker_grace_ms` leave the line.
//!
//! Guests are never deleted, only retired: the archive, the conversation log and the queue
//! chats' records name them, and e-discovery must still say who wrote what. A retired
//! guest is a row of a few dozen bytes with no session; what a guest chat costs in storage
//! is its messages, bounded by the quota above and by retention.

use crate::{ConnectionHolder, ConnectionPermit, Result, Service, ServiceError};
use sb_core::queue::ChatId;
use sb_core::ratelimit::SlidingWindow;
use sb_core::{CoreError, Millis, User, UserId};
use std::collections::HashMap;
use std::sync::Mutex;

/// What a guest whose chat is over is told when it tries to write or connect.
pub const CHAT_ENDED: &str =
    "this chat has ended: a guest can write only while its chat is open (start a new chat from the page)";

/// A guest made less than this long ago may still be on its way to its chat (the account
/// comes first): pruning leaves it alone.
const NEW_GUEST_MS: Millis = 10 * 60 * 1000;

/// What one pruning round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub sessions_deleted: u64,
    pub guests_retired: u64,
}

/// What a guest has sent in its chat. Kept in memory: after a restart a guest starts
/// counting again (it cannot restart the server, so this bounds what it stores).
#[derive(Debug, Default)]
struct Usage {
    messages: usize,
    bytes: usize,
    last: Millis,
}

pub(crate) struct Guests {
    usage: Mutex<HashMap<UserId, Usage>>,
    rate: Mutex<SlidingWindow>,
}

impl Guests {
    pub(crate) fn new(messages_per_minute: usize) -> Self {
        Self { usage: Mutex::default(), rate: Mutex::new(SlidingWindow::new(messages_per_minute, 60_000)) }
    }

    fn forget(&self, guest: UserId) {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).remove(&guest);
    }
}

impl Service {
    /// A guest writes only while its chat is open. The caller's copy of the user may be
    /// older than the chat's end (a WebSocket keeps the one it opened with): ask the store.
    pub async fn check_guest_active(&self, user: &User) -> Result<()> {
        if !user.is_guest() {
            return Ok(());
        }
        match self.store.user(user.id).await? {
            Some(u) if !u.disabled => Ok(()),
            _ => Err(CoreError::Forbidden(CHAT_ENDED.into()).into()),
        }
    }

    /// Count a guest's message of `bytes` against its limits, or refuse it: over the total
    /// for a chat (403 `limit_reached`), over its storage quota (413 `quota_exceeded`), too
    /// fast (429 `rate_limited`). Others pass untouched.
    pub(crate) fn admit_guest_message(&self, user: &User, bytes: usize) -> Result<()> {
        if !user.is_guest() {
            return Ok(());
        }
        let s = &self.settings;
        let now = self.now();
        let mut usage = self.queues.guests.usage.lock().unwrap_or_else(|e| e.into_inner());
        let u = usage.entry(user.id).or_default();
        if u.messages >= s.guest_messages_per_chat {
            return Err(ServiceError::LimitReached(format!(
                "a guest can send at most {} messages in a chat; this chat has them all",
                s.guest_messages_per_chat
            )));
        }
        if u.bytes + bytes > s.guest_bytes_per_chat {
            return Err(ServiceError::QuotaExceeded(format!(
                "a guest can store at most {} bytes of messages in a chat; {} are used, this message has {}",
                s.guest_bytes_per_chat, u.bytes, bytes
            )));
        }
        self.queues
            .guests
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit(&user.id.0.to_string(), now)
            .map_err(|ms| ServiceError::RateLimited((ms as u64).div_ceil(1000)))?;
        u.messages += 1;
        u.bytes += bytes;
        u.last = now;
        Ok(())
    }

    /// A WebSocket of `user`: a guest's only while its chat is open, and at most
    /// `guest_connections` at once. `None` for everyone else (no per-user limit).
    pub fn admit_guest_socket(&self, user: &User) -> Result<Option<ConnectionPermit>> {
        if !user.is_guest() {
            return Ok(None);
        }
        if user.disabled {
            return Err(CoreError::Forbidden(CHAT_ENDED.into()).into());
        }
        let limit = self.settings.guest_connections;
        self.admit(ConnectionHolder::Guest(user.id), limit)
            .map(Some)
            .ok_or(ServiceError::TooManyGuestConnections(limit))
    }

    /// The chat of guest `user` is over: retire it (see the module's documentation).
    pub(crate) async fn retire_guest(&self, user: UserId) {
        let guest = match self.store.user(user).await {
            Ok(Some(u)) if u.is_guest() && !u.disabled => u,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, guest = user.0, "cannot retire a guest (it will be at the next pruning)");
                return;
            }
        };
        let until = self.now() + self.settings.guest_linger_ms;
        if let Err(e) = self.store.set_disabled(guest.id, true).await {
            tracing::warn!(error = %e, guest = user.0, "cannot retire a guest (it will be at the next pruning)");
            return;
        }
        if let Err(e) = self.store.end_sessions_of(guest.id, until).await {
            tracing::warn!(error = %e, guest = user.0, "cannot shorten a retired guest's sessions");
        }
        self.queues.guests.forget(guest.id);
        // Its sockets get what is queued for them (the chat's last state), then close.
        self.chat.hub.disconnect(guest.id);
    }

    /// Housekeeping, about hourly: delete expired sessions, and retire the guests that are
    /// done but were not retired when their chats ended (chats that ended before an
    /// upgrade, a failed store write then; offline messages whose seeker's session has
    /// expired). Archive records, conversations and queue chats are never touched.
    pub async fn prune_sessions_and_guests(&self) -> Result<PruneReport> {
        let now = self.now();
        let retired = self.store.retire_finished_guests(now - NEW_GUEST_MS, now).await?;
        for guest in &retired {
            self.queues.guests.forget(*guest);
            self.chat.hub.disconnect(*guest);
        }
        let sessions_deleted = self.store.prune_sessions(now).await?;
        // Counts of guests nobody has heard of for a session's lifetime.
        let ttl = self.settings.session_ttl_ms;
        self.queues.guests.usage.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, u| now - u.last < ttl);
        if sessions_deleted > 0 || !retired.is_empty() {
            tracing::info!(sessions_deleted, guests_retired = retired.len(), "pruned sessions and guests");
        }
        Ok(PruneReport { sessions_deleted, guests_retired: retired.len() as u64 })
    }

    // ------------------------------------------------------------ is the seeker there?

    fn chats_sought_by(&self, user: UserId) -> Vec<ChatId> {
        self.queues
            .chats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|c| c.record.seeker == user)
            .map(|c| c.record.id)
            .collect()
    }

    /// A session of `user` opened (it is registered already): their waiting chats keep
    /// their place.
    pub(crate) fn seeker_connected(&self, user: UserId) {
        let chats = self.chats_sought_by(user);
        if !chats.is_empty() {
            self.route(|r| {
                for c in &chats {
                    let _ = r.seeker_back(*c);
                }
            });
        }
    }

    /// A session of `user` closed (it is unregistered already): if it was their last, their
    /// waiting chats leave the line unless they are back within the grace period.
    pub(crate) fn seeker_disconnected(&self, user: UserId) {
        let chats = self.chats_sought_by(user);
        if !chats.is_empty() {
            let until = self.now() + self.settings.seeker_grace_ms;
            // Looked at under the router's lock: a session that opens meanwhile tells the
            // router after it registered, so it is seen here or undoes this after.
            self.route(|r| {
                if !self.chat.hub.is_connected(user) {
                    for c in &chats {
                        let _ = r.seeker_away(*c, until);
                    }
                }
            });
        }
    }

    /// In the router's lock, right after `chat` was put in line: a seeker without any
    /// connection now is away from now on (a visitor who asked and never connected).
    pub(crate) fn seeker_away_unless_connected(&self, router: &mut sb_core::queue::Router, user: UserId, chat: ChatId) {
        if !self.chat.hub.is_connected(user) {
            let _ = router.seeker_away(chat, self.now() + self.settings.seeker_grace_ms);
        }
    }
}
