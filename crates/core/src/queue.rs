//! Expert queues: the routing engine.
//!
//! A deterministic state machine over every queue and expert. It does no I/O and reads no
//! clock: each call takes `now`, and each returns the [`QueueEvent`]s it caused, in order,
//! for the runtime to store, stream and act on (send offers, open the relayed chat, run an
//! overflow action). Because experts may belong to several queues, capacity is counted
//! across all of them.
//!
//! Lifecycle of a chat: `requested → queued → offered → assigned → wrap_up → closed`, with
//! `declined` / `offer_timed_out` (back to queued and offered again — to the next ready
//! expert, and round again to the same ones when nobody else is left), `abandoned` (the
//! seeker ended it, or had no connection for a grace period while waiting), `overflowed`
//! and `transferred`. Waiting chats are served oldest first.
//!
//! Invariants (checked by the tests): a chat is assigned to at most one expert; an expert's
//! open chats plus outstanding offers never exceed the queue's capacity; an offer exists
//! only to a ready member.

use crate::clock::Millis;
use crate::directory::UserId;
use crate::policy::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod model;
#[cfg(test)]
mod tests;

pub use model::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NoSuchQueue,
    NoSuchChat,
    /// The chat is no longer offered to this expert (taken, withdrawn, timed out).
    NotOffered,
    NotAMember,
    OverCapacity,
    WrongState(&'static str),
    /// The policy keeps this seeker and this expert apart (an ethical wall).
    Walled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    Queued,
    Assigned(UserId),
    WrapUp(UserId),
}

#[derive(Debug, Clone)]
struct Chat {
    queue: String,
    requested_at: Millis,
    state: ChatState,
    /// Outstanding offers: expert → expiry.
    offers: BTreeMap<UserId, Millis>,
    /// Experts that declined or let the offer lapse in this round.
    passed: BTreeSet<UserId>,
    /// Who asked: every expert the chat may reach is one the policy lets meet them.
    seeker: UserId,
    /// In wrap-up: when it closes by itself.
    wrap_up_until: Option<Millis>,
    /// The seeker has no connection: a waiting chat whose seeker is still away at this
    /// moment leaves the line (abandoned).
    seeker_away_until: Option<Millis>,
}

#[derive(Debug, Clone, Default)]
struct Expert {
    signed_in: bool,
    available: bool,
    open: BTreeSet<ChatId>,
    offers: BTreeSet<ChatId>,
    /// When the expert last became free (or came online), for longest-idle.
    idle_since: Millis,
    day: i64,
    today: u32,
}

impl Expert {
    fn ready(&self) -> bool {
        self.signed_in && self.available
    }
    fn load(&self) -> u32 {
        (self.open.len() + self.offers.len()) as u32
    }
}

/// Real-time figures for one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub experts_total: u32,
    pub signed_in: u32,
    /// Could take a chat now.
    pub ready: u32,
    /// Signed in and available, but at capacity.
    pub busy: u32,
    pub waiting: u32,
    pub longest_wait_ms: Millis,
    pub active_chats: u32,
}

#[derive(Debug, Default)]
pub struct Router {
    queues: BTreeMap<String, QueueConfig>,
    experts: BTreeMap<UserId, Expert>,
    chats: BTreeMap<ChatId, Chat>,
    /// Round-robin cursor per queue: the member index last offered.
    cursor: BTreeMap<String, usize>,
    /// The one policy: which seeker may meet which expert (`policy::Act::Meet`).
    policy: Arc<Snapshot>,
}

const DAY_MS: Millis = 86_400_000;

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a queue's configuration. Offers to experts no longer members are
    /// withdrawn.
    pub fn configure(&mut self, config: QueueConfig, now: Millis) -> Vec<QueueEvent> {
        for (u, _) in &config.members {
            self.experts.entry(*u).or_default();
        }
        let id = config.id.clone();
        self.queues.insert(id.clone(), config);
        let mut out = Vec::new();
        let members = self.members(&id);
        let stale: Vec<(ChatId, UserId)> = self
            .chats
            .iter()
            .filter(|(_, c)| c.queue == id)
            .flat_map(|(cid, c)| c.offers.keys().filter(|u| !members.contains(u)).map(move |u| (*cid, *u)))
            .collect();
        for (chat, expert) in stale {
            self.withdraw(chat, expert, WithdrawReason::ExpertUnavailable, &mut out);
        }
        self.dispatch(now, &mut out);
        out
    }

    fn members(&self, queue: &str) -> Vec<UserId> {
        self.queues.get(queue).map(|q| q.members.iter().map(|(u, _)| *u).collect()).unwrap_or_default()
    }

    /// An expert's presence: signed in at all, and `available` (ready for chats).
    /// Going unready withdraws their offers at once; becoming ready may bring offers.
    pub fn set_presence(&mut self, expert: UserId, signed_in: bool, available: bool, now: Millis) -> Vec<QueueEvent> {
        let e = self.experts.entry(expert).or_default();
        let was_ready = e.ready();
        e.signed_in = signed_in;
        e.available = available;
        let ready = e.ready();
        if ready && !was_ready && e.open.is_empty() {
            e.idle_since = now;
        }
        let mut out = Vec::new();
        if was_ready && !ready {
            let offered: Vec<ChatId> = e.offers.iter().copied().collect();
            for chat in offered {
                self.withdraw(chat, expert, WithdrawReason::ExpertUnavailable, &mut out);
            }
        }
        self.dispatch(now, &mut out);
        out
    }

    /// The policy changed (walls, memberships): offers it no longer allows are withdrawn
    /// at once, and waiting chats are offered again under it.
    pub fn set_policy(&mut self, policy: Arc<Snapshot>, now: Millis) -> Vec<QueueEvent> {
        self.policy = policy;
        let mut out = Vec::new();
        let walled: Vec<(ChatId, UserId)> = self
            .chats
            .iter()
            .flat_map(|(cid, c)| {
                c.offers.keys().filter(|u| !self.policy.may_meet(c.seeker, **u)).map(move |u| (*cid, *u))
            })
            .collect();
        for (chat, expert) in walled {
            self.withdraw(chat, expert, WithdrawReason::Walled, &mut out);
        }
        self.dispatch(now, &mut out);
        out
    }

    /// The seeker of a chat the router holds.
    pub fn seeker_of(&self, chat: ChatId) -> Option<UserId> {
        self.chats.get(&chat).map(|c| c.seeker)
    }

    /// A seeker asks for a chat. It reaches only experts the policy lets meet `seeker`.
    pub fn request(
        &mut self,
        queue: &str,
        chat: ChatId,
        seeker: UserId,
        now: Millis,
    ) -> Result<Vec<QueueEvent>, RouteError> {
        if !self.queues.contains_key(queue) {
            return Err(RouteError::NoSuchQueue);
        }
        let mut out = vec![QueueEvent::Requested { chat, queue: queue.to_string() }];
        let anyone_signed_in = self.members(queue).iter().any(|u| self.experts.get(u).is_some_and(|e| e.signed_in));
        if !anyone_signed_in {
            out.push(QueueEvent::Overflowed {
                chat,
                queue: queue.to_string(),
                reason: OverflowReason::NoExpertSignedIn,
            });
            return Ok(out);
        }
        self.chats.insert(
            chat,
            Chat {
                queue: queue.to_string(),
                requested_at: now,
                state: ChatState::Queued,
                offers: BTreeMap::new(),
                passed: BTreeSet::new(),
                seeker,
                wrap_up_until: None,
                seeker_away_until: None,
            },
        );
        out.push(QueueEvent::Queued { chat, queue: queue.to_string() });
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// Put back a chat that was open before a restart: waiting (it keeps its place by
    /// `requested_at`), assigned to `expert` (who holds the capacity again), or in wrap-up
    /// (which then runs its full time again).
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        queue: &str,
        chat: ChatId,
        seeker: UserId,
        requested_at: Millis,
        expert: Option<UserId>,
        wrap_up: bool,
        now: Millis,
    ) -> Vec<QueueEvent> {
        let Some(config) = self.queues.get(queue) else { return Vec::new() };
        let wrap_up_until = (wrap_up && expert.is_some()).then_some(now + config.wrap_up_ms);
        let state = match expert {
            Some(e) => {
                self.experts.entry(e).or_default().open.insert(chat);
                if wrap_up {
                    ChatState::WrapUp(e)
                } else {
                    ChatState::Assigned(e)
                }
            }
            None => ChatState::Queued,
        };
        self.chats.insert(
            chat,
            Chat {
                queue: queue.to_string(),
                requested_at,
                state,
                offers: BTreeMap::new(),
                passed: BTreeSet::new(),
                seeker,
                wrap_up_until,
                seeker_away_until: None,
            },
        );
        let mut out = Vec::new();
        self.dispatch(now, &mut out);
        out
    }

    /// An expert takes a chat: one offered to them, or, on a `manual` queue, any waiting
    /// chat of a queue they belong to.
    pub fn accept(&mut self, chat_id: ChatId, expert: UserId, now: Millis) -> Result<Vec<QueueEvent>, RouteError> {
        let chat = self.chats.get(&chat_id).ok_or(RouteError::NoSuchChat)?;
        if chat.state != ChatState::Queued {
            return Err(RouteError::NotOffered);
        }
        let config = self.queues.get(&chat.queue).ok_or(RouteError::NoSuchQueue)?;
        if !self.policy.may_meet(chat.seeker, expert) {
            return Err(RouteError::Walled);
        }
        let offered = chat.offers.contains_key(&expert);
        if !offered {
            if config.method != RoutingMethod::Manual {
                return Err(RouteError::NotOffered);
            }
            if !config.members.iter().any(|(u, _)| *u == expert) {
                return Err(RouteError::NotAMember);
            }
            let e = self.experts.get(&expert).ok_or(RouteError::NotAMember)?;
            if !e.ready() || !self.has_room(e, config, now) {
                return Err(RouteError::OverCapacity);
            }
        }
        let waited = now - chat.requested_at;
        let mut out = Vec::new();
        let others: Vec<UserId> = chat.offers.keys().copied().filter(|u| *u != expert).collect();
        for other in others {
            self.withdraw(chat_id, other, WithdrawReason::TakenByOther, &mut out);
        }
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        chat.offers.clear();
        chat.state = ChatState::Assigned(expert);
        let e = self.experts.entry(expert).or_default();
        e.offers.remove(&chat_id);
        e.open.insert(chat_id);
        let day = now.div_euclid(DAY_MS);
        if e.day != day {
            e.day = day;
            e.today = 0;
        }
        e.today += 1;
        out.push(QueueEvent::Assigned { chat: chat_id, expert, waited_ms: waited });
        self.dispatch(now, &mut out);
        Ok(out)
    }

    pub fn decline(&mut self, chat_id: ChatId, expert: UserId, now: Millis) -> Result<Vec<QueueEvent>, RouteError> {
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        if chat.offers.remove(&expert).is_none() {
            return Err(RouteError::NotOffered);
        }
        chat.passed.insert(expert);
        if let Some(e) = self.experts.get_mut(&expert) {
            e.offers.remove(&chat_id);
        }
        let mut out = vec![QueueEvent::Declined { chat: chat_id, expert }];
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// The seeker left.
    pub fn abandon(&mut self, chat_id: ChatId, now: Millis) -> Result<Vec<QueueEvent>, RouteError> {
        let mut out = Vec::new();
        self.remove_chat(chat_id, &mut out)?;
        out.push(QueueEvent::Abandoned { chat: chat_id });
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// The seeker has no connection any more (closed the page, lost the network, or never
    /// opened one). If the chat is still waiting and the seeker still away at `until`, it
    /// leaves the line at the next [`Router::tick`] from then: abandoned, offered to nobody,
    /// counted nowhere. Until then it keeps its place (a reload is not leaving). Being away
    /// again keeps the first deadline.
    pub fn seeker_away(&mut self, chat_id: ChatId, until: Millis) -> Result<(), RouteError> {
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        chat.seeker_away_until.get_or_insert(until);
        Ok(())
    }

    /// The seeker is connected again: the chat keeps its place.
    pub fn seeker_back(&mut self, chat_id: ChatId) -> Result<(), RouteError> {
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        chat.seeker_away_until = None;
        Ok(())
    }

    /// Is the seeker of this chat away (and until when)?
    pub fn seeker_away_until(&self, chat: ChatId) -> Option<Millis> {
        self.chats.get(&chat)?.seeker_away_until
    }

    /// The conversation ended; the expert wraps up, still holding the capacity, until they
    /// say they are done ([`Router::finish_wrap_up`]) or the queue's wrap-up time has passed
    /// (closed at once when it is 0).
    pub fn end(&mut self, chat_id: ChatId, now: Millis) -> Result<Vec<QueueEvent>, RouteError> {
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        let ChatState::Assigned(expert) = chat.state else { return Err(RouteError::WrongState("not assigned")) };
        let wrap_up_ms = self.queues.get(&chat.queue).map_or(0, |q| q.wrap_up_ms);
        chat.state = ChatState::WrapUp(expert);
        chat.wrap_up_until = Some(now + wrap_up_ms);
        let mut out = vec![QueueEvent::WrapUp { chat: chat_id, expert }];
        if wrap_up_ms <= 0 {
            out.extend(self.close(chat_id, now)?);
        }
        Ok(out)
    }

    /// The expert finished wrapping up: the chat closes and their capacity is free.
    pub fn finish_wrap_up(
        &mut self,
        chat_id: ChatId,
        expert: UserId,
        now: Millis,
    ) -> Result<Vec<QueueEvent>, RouteError> {
        match self.chats.get(&chat_id).map(|c| c.state) {
            Some(ChatState::WrapUp(e)) if e == expert => self.close(chat_id, now),
            Some(_) => Err(RouteError::WrongState("not in wrap-up")),
            None => Err(RouteError::NoSuchChat),
        }
    }

    /// When a chat in wrap-up closes by itself.
    pub fn wrap_up_until(&self, chat: ChatId) -> Option<Millis> {
        self.chats.get(&chat).filter(|c| matches!(c.state, ChatState::WrapUp(_)))?.wrap_up_until
    }

    /// Wrap-up done (or a chat closed in any state): the expert's capacity is free again.
    pub fn close(&mut self, chat_id: ChatId, now: Millis) -> Result<Vec<QueueEvent>, RouteError> {
        let mut out = Vec::new();
        self.remove_chat(chat_id, &mut out)?;
        out.push(QueueEvent::Closed { chat: chat_id });
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// Move an assigned or waiting chat to another queue (it keeps its place by request
    /// time) or straight to an expert (offered to them alone, whatever the queue's method).
    pub fn transfer(
        &mut self,
        chat_id: ChatId,
        to_queue: Option<&str>,
        to_expert: Option<UserId>,
        now: Millis,
    ) -> Result<Vec<QueueEvent>, RouteError> {
        if let Some(q) = to_queue {
            if !self.queues.contains_key(q) {
                return Err(RouteError::NoSuchQueue);
            }
        }
        let chat = self.chats.get(&chat_id).ok_or(RouteError::NoSuchChat)?;
        let target_queue = to_queue.map(str::to_string).unwrap_or_else(|| chat.queue.clone());
        let target_ok = to_expert.is_some_and(|t| {
            self.policy.may_meet(chat.seeker, t)
                && self
                    .queues
                    .get(&target_queue)
                    .is_some_and(|q| self.experts.get(&t).is_some_and(|e| e.ready() && self.has_room(e, q, now)))
        });
        let from = match chat.state {
            ChatState::Assigned(e) | ChatState::WrapUp(e) => Some(e),
            ChatState::Queued => None,
        };
        let mut out = Vec::new();
        let offered: Vec<UserId> = chat.offers.keys().copied().collect();
        for e in offered {
            self.withdraw(chat_id, e, WithdrawReason::ChatGone, &mut out);
        }
        if let Some(e) = from.and_then(|e| self.experts.get_mut(&e)) {
            e.open.remove(&chat_id);
            if e.open.is_empty() {
                e.idle_since = now;
            }
        }
        let chat = self.chats.get_mut(&chat_id).ok_or(RouteError::NoSuchChat)?;
        chat.state = ChatState::Queued;
        chat.passed.clear();
        if let Some(q) = to_queue {
            chat.queue = q.to_string();
        }
        if let Some(u) = from {
            chat.passed.insert(u); // not straight back to the expert who handed it on
        }
        out.push(QueueEvent::Transferred { chat: chat_id, from, to_queue: to_queue.map(str::to_string), to_expert });
        if let Some(target) = to_expert.filter(|_| target_ok) {
            let timeout = self.queues.get(&chat.queue).map_or(30_000, |q| q.offer_timeout_ms);
            {
                chat.offers.insert(target, now + timeout);
                self.experts.entry(target).or_default().offers.insert(chat_id);
                out.push(QueueEvent::Offered { chat: chat_id, expert: target, expires_at: now + timeout });
            }
        }
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// Advance time: lapse offers, overflow chats that waited too long.
    pub fn tick(&mut self, now: Millis) -> Vec<QueueEvent> {
        let mut out = Vec::new();
        let lapsed: Vec<(ChatId, UserId)> = self
            .chats
            .iter()
            .flat_map(|(cid, c)| c.offers.iter().filter(|(_, exp)| **exp <= now).map(move |(u, _)| (*cid, *u)))
            .collect();
        for (chat, expert) in lapsed {
            if let Some(c) = self.chats.get_mut(&chat) {
                c.offers.remove(&expert);
                c.passed.insert(expert);
            }
            if let Some(e) = self.experts.get_mut(&expert) {
                e.offers.remove(&chat);
            }
            out.push(QueueEvent::OfferTimedOut { chat, expert });
        }
        // Seekers gone for good leave the line before anything else becomes of their chats.
        let gone: Vec<ChatId> = self
            .chats
            .iter()
            .filter(|(_, c)| c.state == ChatState::Queued && c.seeker_away_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for chat in gone {
            let _ = self.remove_chat(chat, &mut out);
            out.push(QueueEvent::Abandoned { chat });
        }
        let overdue: Vec<ChatId> = self
            .chats
            .iter()
            .filter(|(_, c)| c.state == ChatState::Queued)
            .filter(|(_, c)| {
                self.queues.get(&c.queue).and_then(|q| q.max_wait_ms).is_some_and(|m| now - c.requested_at >= m)
            })
            .map(|(id, _)| *id)
            .collect();
        for chat in overdue {
            let queue = self.chats.get(&chat).map(|c| c.queue.clone()).unwrap_or_default();
            let _ = self.remove_chat(chat, &mut out);
            out.push(QueueEvent::Overflowed { chat, queue, reason: OverflowReason::MaxWait });
        }
        let wrapped: Vec<ChatId> = self
            .chats
            .iter()
            .filter(|(_, c)| matches!(c.state, ChatState::WrapUp(_)) && c.wrap_up_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for chat in wrapped {
            let _ = self.remove_chat(chat, &mut out);
            out.push(QueueEvent::Closed { chat });
        }
        self.dispatch(now, &mut out);
        out
    }

    /// The earliest moment something will happen by itself (an offer lapses, a chat
    /// overflows, a wrap-up ends): the runtime sleeps until then.
    pub fn next_deadline(&self) -> Option<Millis> {
        let offers = self.chats.values().flat_map(|c| c.offers.values().copied());
        let waits = self
            .chats
            .values()
            .filter(|c| c.state == ChatState::Queued)
            .filter_map(|c| self.queues.get(&c.queue).and_then(|q| q.max_wait_ms).map(|m| c.requested_at + m));
        let wrap_ups =
            self.chats.values().filter(|c| matches!(c.state, ChatState::WrapUp(_))).filter_map(|c| c.wrap_up_until);
        let gone = self.chats.values().filter(|c| c.state == ChatState::Queued).filter_map(|c| c.seeker_away_until);
        offers.chain(waits).chain(wrap_ups).chain(gone).min()
    }

    pub fn state(&self, chat: ChatId) -> Option<ChatState> {
        self.chats.get(&chat).map(|c| c.state)
    }

    /// 1-based place in line of a waiting chat.
    pub fn position(&self, chat_id: ChatId) -> Option<usize> {
        let chat = self.chats.get(&chat_id)?;
        if chat.state != ChatState::Queued {
            return None;
        }
        Some(self.waiting(&chat.queue).iter().position(|c| *c == chat_id)? + 1)
    }

    /// Waiting chats of a queue, oldest first.
    pub fn waiting(&self, queue: &str) -> Vec<ChatId> {
        let mut w: Vec<(Millis, ChatId)> = self
            .chats
            .iter()
            .filter(|(_, c)| c.queue == queue && c.state == ChatState::Queued)
            .map(|(id, c)| (c.requested_at, *id))
            .collect();
        w.sort();
        w.into_iter().map(|(_, id)| id).collect()
    }

    /// When the offer of `chat` to `expert` lapses, if it is open.
    pub fn offer_expiry(&self, chat: ChatId, expert: UserId) -> Option<Millis> {
        self.chats.get(&chat)?.offers.get(&expert).copied()
    }

    pub fn offers_of(&self, expert: UserId) -> Vec<ChatId> {
        self.experts.get(&expert).map(|e| e.offers.iter().copied().collect()).unwrap_or_default()
    }

    pub fn open_chats_of(&self, expert: UserId) -> Vec<ChatId> {
        self.experts.get(&expert).map(|e| e.open.iter().copied().collect()).unwrap_or_default()
    }

    pub fn stats(&self, queue: &str, now: Millis) -> Option<QueueStats> {
        let config = self.queues.get(queue)?;
        let mut s = QueueStats { experts_total: config.members.len() as u32, ..Default::default() };
        for (u, _) in &config.members {
            let Some(e) = self.experts.get(u) else { continue };
            s.signed_in += u32::from(e.signed_in);
            if e.ready() {
                if self.has_room(e, config, now) {
                    s.ready += 1;
                } else {
                    s.busy += 1;
                }
            }
        }
        for c in self.chats.values().filter(|c| c.queue == queue) {
            match c.state {
                ChatState::Queued => {
                    s.waiting += 1;
                    s.longest_wait_ms = s.longest_wait_ms.max(now - c.requested_at);
                }
                _ => s.active_chats += 1,
            }
        }
        Some(s)
    }

    fn has_room(&self, e: &Expert, q: &QueueConfig, now: Millis) -> bool {
        let under_daily = q.daily_cap.is_none_or(|cap| e.day != now.div_euclid(DAY_MS) || e.today < cap);
        e.load() < q.capacity && under_daily
    }

    fn withdraw(&mut self, chat: ChatId, expert: UserId, reason: WithdrawReason, out: &mut Vec<QueueEvent>) {
        let had = self.chats.get_mut(&chat).is_some_and(|c| c.offers.remove(&expert).is_some());
        if let Some(e) = self.experts.get_mut(&expert) {
            e.offers.remove(&chat);
        }
        if had {
            out.push(QueueEvent::OfferWithdrawn { chat, expert, reason });
        }
    }

    fn remove_chat(&mut self, chat_id: ChatId, out: &mut Vec<QueueEvent>) -> Result<(), RouteError> {
        let chat = self.chats.get(&chat_id).ok_or(RouteError::NoSuchChat)?;
        let offered: Vec<UserId> = chat.offers.keys().copied().collect();
        let holder = match chat.state {
            ChatState::Assigned(e) | ChatState::WrapUp(e) => Some(e),
            ChatState::Queued => None,
        };
        for e in offered {
            self.withdraw(chat_id, e, WithdrawReason::ChatGone, out);
        }
        self.chats.remove(&chat_id);
        if let Some(e) = holder.and_then(|e| self.experts.get_mut(&e)) {
            e.open.remove(&chat_id);
            if e.open.is_empty() {
                // 0 is "never idle yet" only before the first chat; the caller's now is
                // not known here, so idle time restarts at the next dispatch.
                e.idle_since = Millis::MIN;
            }
        }
        Ok(())
    }

    /// Offer waiting chats, oldest first, to eligible experts by each queue's method.
    fn dispatch(&mut self, now: Millis, out: &mut Vec<QueueEvent>) {
        // Experts that just became free get their idle clock started now.
        for e in self.experts.values_mut() {
            if e.idle_since == Millis::MIN {
                e.idle_since = now;
            }
        }
        let mut order: Vec<(Millis, ChatId)> = self
            .chats
            .iter()
            .filter(|(_, c)| c.state == ChatState::Queued)
            .map(|(id, c)| (c.requested_at, *id))
            .collect();
        order.sort();
        for (_, chat_id) in order {
            let Some(chat) = self.chats.get(&chat_id) else { continue };
            let Some(config) = self.queues.get(&chat.queue) else { continue };
            if config.method == RoutingMethod::Manual {
                continue;
            }
            if config.method != RoutingMethod::Broadcast && !chat.offers.is_empty() {
                continue; // one offer at a time
            }
            let eligible = |router: &Router, passed: &BTreeSet<UserId>| -> Vec<(usize, UserId, i32)> {
                config
                    .members
                    .iter()
                    .enumerate()
                    .filter(|(_, (u, _))| {
                        !passed.contains(u) && !chat.offers.contains_key(u) && router.policy.may_meet(chat.seeker, *u)
                    })
                    .filter(|(_, (u, _))| {
                        router.experts.get(u).is_some_and(|e| e.ready() && router.has_room(e, config, now))
                    })
                    .map(|(i, (u, p))| (i, *u, *p))
                    .collect()
            };
            let mut candidates = eligible(self, &chat.passed);
            if candidates.is_empty() && !chat.passed.is_empty() && chat.offers.is_empty() {
                // Everyone ready has passed on it: start a new round rather than let it starve.
                candidates = eligible(self, &BTreeSet::new());
                if !candidates.is_empty() {
                    if let Some(c) = self.chats.get_mut(&chat_id) {
                        c.passed.clear();
                    }
                }
            }
            if candidates.is_empty() {
                continue;
            }
            let chosen: Vec<UserId> = match config.method {
                RoutingMethod::Broadcast => candidates.iter().map(|(_, u, _)| *u).collect(),
                RoutingMethod::LongestIdle => candidates
                    .iter()
                    .min_by_key(|(_, u, _)| (self.experts[u].idle_since, *u))
                    .map(|(_, u, _)| *u)
                    .into_iter()
                    .collect(),
                RoutingMethod::LeastBusy => candidates
                    .iter()
                    .min_by_key(|(_, u, _)| (self.experts[u].open.len(), self.experts[u].idle_since, *u))
                    .map(|(_, u, _)| *u)
                    .into_iter()
                    .collect(),
                RoutingMethod::Serial => {
                    candidates.iter().min_by_key(|(i, _, p)| (*p, *i)).map(|(_, u, _)| *u).into_iter().collect()
                }
                RoutingMethod::RoundRobin => {
                    let last = self.cursor.get(&config.id).copied();
                    let next = candidates
                        .iter()
                        .find(|(i, _, _)| last.is_none_or(|l| *i > l))
                        .or_else(|| candidates.first())
                        .map(|(i, u, _)| (*i, *u));
                    if let Some((i, _)) = next {
                        self.cursor.insert(config.id.clone(), i);
                    }
                    next.map(|(_, u)| u).into_iter().collect()
                }
                RoutingMethod::Manual => Vec::new(),
            };
            let expires_at = now + config.offer_timeout_ms;
            for expert in chosen {
                if let Some(c) = self.chats.get_mut(&chat_id) {
                    c.offers.insert(expert, expires_at);
                }
                self.experts.entry(expert).or_default().offers.insert(chat_id);
                out.push(QueueEvent::Offered { chat: chat_id, expert, expires_at });
            }
        }
    }

    /// Check the invariants; tests call this after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (cid, c) in &self.chats {
            let holders = self.experts.iter().filter(|(_, e)| e.open.contains(cid)).count();
            match c.state {
                ChatState::Queued if holders != 0 => return Err(format!("{cid:?} queued but held")),
                ChatState::Assigned(_) | ChatState::WrapUp(_) if holders != 1 => {
                    return Err(format!("{cid:?} held by {holders} experts"))
                }
                _ => {}
            }
            if c.state != ChatState::Queued && !c.offers.is_empty() {
                return Err(format!("{cid:?} assigned with offers open"));
            }
            if !self.queues.contains_key(&c.queue) {
                return Err(format!("{cid:?} in an unknown queue"));
            }
            for u in c.offers.keys() {
                let e = self.experts.get(u).ok_or("offer to unknown expert")?;
                if !e.ready() {
                    return Err(format!("{cid:?} offered to unready {u:?}"));
                }
                if !e.offers.contains(cid) {
                    return Err(format!("{cid:?} offer not mirrored at {u:?}"));
                }
                if !self.policy.may_meet(c.seeker, *u) {
                    return Err(format!("{cid:?} offered to walled {u:?}"));
                }
            }
        }
        for (u, e) in &self.experts {
            let cap = self
                .chats
                .iter()
                .filter(|(cid, _)| e.open.contains(cid) || e.offers.contains(cid))
                .filter_map(|(_, c)| self.queues.get(&c.queue).map(|q| q.capacity))
                .max()
                .unwrap_or(u32::MAX);
            if e.load() > cap {
                return Err(format!("{u:?} over capacity: {} > {cap}", e.load()));
            }
        }
        Ok(())
    }
}
