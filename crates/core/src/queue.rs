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
use crate::directory::{Address, Role, User, UserId};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingMethod {
    /// Offer to every ready expert at once; the first to accept wins.
    Broadcast,
    LongestIdle,
    RoundRobin,
    /// Fewest open chats, then longest idle.
    LeastBusy,
    /// Member priority order (lower first).
    Serial,
    /// No offers: experts pick from the waiting list.
    Manual,
}

impl RoutingMethod {
    pub const ALL: [RoutingMethod; 6] = [
        RoutingMethod::Broadcast,
        RoutingMethod::LongestIdle,
        RoutingMethod::RoundRobin,
        RoutingMethod::LeastBusy,
        RoutingMethod::Serial,
        RoutingMethod::Manual,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingMethod::Broadcast => "broadcast",
            RoutingMethod::LongestIdle => "longest_idle",
            RoutingMethod::RoundRobin => "round_robin",
            RoutingMethod::LeastBusy => "least_busy",
            RoutingMethod::Serial => "serial",
            RoutingMethod::Manual => "manual",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue's slug, e.g. `support`.
    pub id: String,
    pub method: RoutingMethod,
    pub offer_timeout_ms: Millis,
    /// Concurrent chats per expert (open chats plus outstanding offers).
    pub capacity: u32,
    /// Chats per expert per (UTC) day, if limited.
    pub daily_cap: Option<u32>,
    /// A chat waiting longer than this overflows.
    pub max_wait_ms: Option<Millis>,
    /// How long an expert stays in wrap-up after a chat ends (holding the capacity) before
    /// it closes by itself; 0 closes at once.
    pub wrap_up_ms: Millis,
    /// Members with their priority (lower is offered first by `serial`), in roster order.
    pub members: Vec<(UserId, i32)>,
}

impl QueueConfig {
    pub fn new(id: &str, method: RoutingMethod) -> Self {
        Self {
            id: id.to_string(),
            method,
            offer_timeout_ms: 30_000,
            capacity: 1,
            daily_cap: None,
            max_wait_ms: None,
            wrap_up_ms: 0,
            members: Vec::new(),
        }
    }
}

/// A member expert of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMember {
    pub user: UserId,
    pub address: Address,
    /// Lower is offered first by `serial`.
    pub priority: i32,
    pub skills: Vec<String>,
}

/// A queue as administrators define it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    /// Slug, e.g. `support`.
    pub id: String,
    pub display_name: String,
    /// The queue is reachable like a person: `support@<domain>`.
    pub address: Address,
    pub description: String,
    pub method: RoutingMethod,
    pub offer_timeout_ms: Millis,
    pub capacity: u32,
    pub daily_cap: Option<u32>,
    pub max_wait_ms: Option<Millis>,
    /// A disabled queue does not exist for the public (legacy status `na`).
    pub enabled: bool,
    /// Closed by an administrator (status `closed`, legacy `STATUS_DND`).
    pub closed: bool,
    pub welcome: String,
    pub closed_message: String,
    pub show_expert_name: bool,
    pub members: Vec<QueueMember>,
    /// What happens to a chat that waited `max_wait_ms`.
    pub overflow: OverflowAction,
    /// What happens to a request when no expert of the queue is signed in.
    pub no_expert: OverflowAction,
    /// Shown to a seeker whose chat was taken as an offline message.
    pub offline_message: String,
    /// Open only in these hours (always, when `None`).
    pub hours: Option<crate::hours::BusinessHours>,
    /// Pre-chat form fields the seeker fills in.
    pub form: Vec<crate::form::FormField>,
    /// Canned responses for the queue's experts.
    pub canned: Vec<crate::form::Canned>,
    /// Tags an expert may put on a chat when wrapping it up.
    pub wrap_up_tags: Vec<String>,
    /// How long the expert stays in wrap-up after a chat ends; 0 closes at once.
    pub wrap_up_ms: Millis,
    /// Who manages this queue (its settings, members, statistics, waiting list, offline
    /// messages, webhooks) besides administrators. Only administrators change this list.
    pub managers: Vec<QueueManager>,
}

/// A person named as a manager of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueManager {
    pub user: UserId,
    pub address: Address,
}

/// What becomes of a chat nobody can take (waited too long, or nobody signed in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OverflowAction {
    /// Close it with the closed message.
    #[default]
    Close,
    /// Roll it over to another queue (by id), keeping its conversation.
    Queue(String),
    /// Keep the seeker's conversation as an offline message the experts answer later.
    OfflineMessage,
}

impl OverflowAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            OverflowAction::Close => "close",
            OverflowAction::Queue(_) => "queue",
            OverflowAction::OfflineMessage => "offline_message",
        }
    }

    pub fn queue(&self) -> Option<&str> {
        match self {
            OverflowAction::Queue(q) => Some(q),
            _ => None,
        }
    }

    /// From an action name and a queue id; without a name, a given queue means `queue`.
    pub fn parse(action: Option<&str>, queue: Option<&str>) -> Result<Self, String> {
        let queue = queue.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        match (action.map(str::trim).filter(|a| !a.is_empty()), queue) {
            (None, None) | (Some("close"), _) => Ok(OverflowAction::Close),
            (None, Some(q)) | (Some("queue"), Some(q)) => Ok(OverflowAction::Queue(q)),
            (Some("queue"), None) => Err("the action \"queue\" needs a queue".into()),
            (Some("offline_message"), _) => Ok(OverflowAction::OfflineMessage),
            (Some(other), _) => Err(format!("action must be close, queue or offline_message (got {other:?})")),
        }
    }
}

/// Shown to a seeker whose chat became an offline message, unless the queue says otherwise.
pub const DEFAULT_OFFLINE_MESSAGE: &str =
    "Nobody can answer right now. Write your message here and an expert will answer it as soon as possible.";

impl QueueDef {
    /// A queue with the defaults PRODUCT.md gives: offer timeout 30 s, capacity 1.
    pub fn new(id: &str, display_name: &str, address: Address) -> Self {
        Self {
            id: id.to_string(),
            display_name: display_name.to_string(),
            address,
            description: String::new(),
            method: RoutingMethod::LongestIdle,
            offer_timeout_ms: 30_000,
            capacity: 1,
            daily_cap: None,
            max_wait_ms: None,
            enabled: true,
            closed: false,
            welcome: String::new(),
            closed_message: String::new(),
            show_expert_name: true,
            members: Vec::new(),
            overflow: OverflowAction::Close,
            no_expert: OverflowAction::Close,
            offline_message: String::new(),
            hours: None,
            form: Vec::new(),
            canned: Vec::new(),
            wrap_up_tags: Vec::new(),
            wrap_up_ms: 0,
            managers: Vec::new(),
        }
    }

    /// May `user` manage this queue? Administrators, and the managers named for it —
    /// being a manager of one queue is no right over another.
    pub fn managed_by(&self, user: &User) -> bool {
        user.has_role(Role::Admin) || self.managers.iter().any(|m| m.user == user.id)
    }

    /// May `user` see the queue's waiting list and offline messages? Its managers and
    /// its experts.
    pub fn staffed_by(&self, user: &User) -> bool {
        self.managed_by(user) || self.members.iter().any(|m| m.user == user.id)
    }

    /// What the routing engine needs of it.
    pub fn routing(&self) -> QueueConfig {
        QueueConfig {
            id: self.id.clone(),
            method: self.method,
            offer_timeout_ms: self.offer_timeout_ms,
            capacity: self.capacity,
            daily_cap: self.daily_cap,
            max_wait_ms: self.max_wait_ms,
            wrap_up_ms: self.wrap_up_ms,
            members: self.members.iter().map(|m| (m.user, m.priority)).collect(),
        }
    }

    /// Does `name` (an id, display name or address, any case) name this queue?
    pub fn answers_to(&self, name: &str) -> bool {
        let n = name.trim();
        n.eq_ignore_ascii_case(&self.id)
            || n.eq_ignore_ascii_case(&self.display_name)
            || n.eq_ignore_ascii_case(self.address.as_str())
    }
}

/// A queue chat as stored: who asked which queue, where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueChatRecord {
    pub id: ChatId,
    pub queue: String,
    pub seeker: UserId,
    pub conversation: crate::conversation::ConversationId,
    pub question: String,
    /// The pre-chat form's answers, in the form's order.
    pub answers: Vec<(String, String)>,
    /// `queued`, `assigned`, `wrap_up`, `closed`, `abandoned`, `overflowed`, `offline`.
    pub state: String,
    pub expert: Option<UserId>,
    pub requested_at: Millis,
}

impl QueueEvent {
    /// The event's name in the lifecycle (stored and streamed).
    pub fn kind(&self) -> &'static str {
        match self {
            QueueEvent::Requested { .. } => "requested",
            QueueEvent::Queued { .. } => "queued",
            QueueEvent::Offered { .. } => "offered",
            QueueEvent::OfferWithdrawn { .. } => "offer_withdrawn",
            QueueEvent::Declined { .. } => "declined",
            QueueEvent::OfferTimedOut { .. } => "offer_timed_out",
            QueueEvent::Assigned { .. } => "assigned",
            QueueEvent::Transferred { .. } => "transferred",
            QueueEvent::WrapUp { .. } => "wrap_up",
            QueueEvent::Closed { .. } => "closed",
            QueueEvent::Abandoned { .. } => "abandoned",
            QueueEvent::Overflowed { .. } => "overflowed",
            QueueEvent::OfflineMessage { .. } => "offline_message",
            QueueEvent::Invited { .. } => "invited",
        }
    }

    pub fn chat(&self) -> ChatId {
        match self {
            QueueEvent::Requested { chat, .. }
            | QueueEvent::Queued { chat, .. }
            | QueueEvent::Offered { chat, .. }
            | QueueEvent::OfferWithdrawn { chat, .. }
            | QueueEvent::Declined { chat, .. }
            | QueueEvent::OfferTimedOut { chat, .. }
            | QueueEvent::Assigned { chat, .. }
            | QueueEvent::Transferred { chat, .. }
            | QueueEvent::WrapUp { chat, .. }
            | QueueEvent::Closed { chat }
            | QueueEvent::Abandoned { chat }
            | QueueEvent::Overflowed { chat, .. }
            | QueueEvent::OfflineMessage { chat }
            | QueueEvent::Invited { chat, .. } => *chat,
        }
    }

    pub fn expert(&self) -> Option<UserId> {
        match self {
            QueueEvent::Offered { expert, .. }
            | QueueEvent::OfferWithdrawn { expert, .. }
            | QueueEvent::Declined { expert, .. }
            | QueueEvent::OfferTimedOut { expert, .. }
            | QueueEvent::Assigned { expert, .. }
            | QueueEvent::WrapUp { expert, .. }
            | QueueEvent::Invited { expert, .. } => Some(*expert),
            _ => None,
        }
    }
}

/// One stored queue chat's times, for cumulative statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatTimes {
    pub requested_at: Millis,
    pub assigned_at: Option<Millis>,
    pub closed_at: Option<Millis>,
    /// The seeker's post-chat rating, 1–5.
    pub survey_rating: Option<u8>,
}

/// Cumulative figures for a queue over an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueTotals {
    pub requested: u64,
    pub offered: u64,
    pub accepted: u64,
    pub declined: u64,
    pub offer_timeouts: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub transferred: u64,
    pub avg_wait_s: Option<f64>,
    pub p90_wait_s: Option<f64>,
    pub avg_handle_s: Option<f64>,
    /// Share of chats requested in the interval that were answered within the threshold.
    pub service_level: Option<f64>,
    pub service_level_threshold_s: i64,
    /// Average post-chat rating (1–5) of the chats that were rated.
    pub survey_average: Option<f64>,
}

impl QueueTotals {
    /// `counts`: lifecycle event kind → how many in the interval; `chats`: the chats requested
    /// in the interval.
    pub fn compute(counts: &[(String, u64)], chats: &[ChatTimes], threshold_ms: Millis) -> Self {
        let count = |k: &str| counts.iter().filter(|(kind, _)| kind == k).map(|(_, n)| *n).sum::<u64>();
        let mut waits: Vec<Millis> = chats.iter().filter_map(|c| Some(c.assigned_at? - c.requested_at)).collect();
        waits.sort_unstable();
        let handles: Vec<Millis> = chats.iter().filter_map(|c| Some(c.closed_at? - c.assigned_at?)).collect();
        let avg = |v: &[Millis]| (!v.is_empty()).then(|| v.iter().sum::<Millis>() as f64 / v.len() as f64 / 1000.0);
        let p90 = (!waits.is_empty()).then(|| {
            let i = ((waits.len() as f64 * 0.9).ceil() as usize).clamp(1, waits.len()) - 1;
            waits[i] as f64 / 1000.0
        });
        let answered_in_time = waits.iter().filter(|w| **w <= threshold_ms).count();
        QueueTotals {
            requested: count("requested"),
            offered: count("offered"),
            accepted: count("assigned"),
            declined: count("declined"),
            offer_timeouts: count("offer_timed_out"),
            abandoned: count("abandoned"),
            overflowed: count("overflowed"),
            transferred: count("transferred"),
            avg_wait_s: avg(&waits),
            p90_wait_s: p90,
            avg_handle_s: avg(&handles),
            service_level: (!chats.is_empty()).then(|| answered_in_time as f64 / chats.len() as f64),
            service_level_threshold_s: threshold_ms / 1000,
            survey_average: {
                let rated: Vec<f64> = chats.iter().filter_map(|c| c.survey_rating.map(f64::from)).collect();
                (!rated.is_empty()).then(|| rated.iter().sum::<f64>() / rated.len() as f64)
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowReason {
    MaxWait,
    NoExpertSignedIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    /// Another expert accepted (broadcast).
    TakenByOther,
    /// The expert stopped being ready (went away, busy, offline, left the queue).
    ExpertUnavailable,
    /// The seeker left or the chat moved on.
    ChatGone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    Requested {
        chat: ChatId,
        queue: String,
    },
    Queued {
        chat: ChatId,
        queue: String,
    },
    Offered {
        chat: ChatId,
        expert: UserId,
        expires_at: Millis,
    },
    OfferWithdrawn {
        chat: ChatId,
        expert: UserId,
        reason: WithdrawReason,
    },
    Declined {
        chat: ChatId,
        expert: UserId,
    },
    OfferTimedOut {
        chat: ChatId,
        expert: UserId,
    },
    Assigned {
        chat: ChatId,
        expert: UserId,
        waited_ms: Millis,
    },
    Transferred {
        chat: ChatId,
        from: Option<UserId>,
        to_queue: Option<String>,
        to_expert: Option<UserId>,
    },
    WrapUp {
        chat: ChatId,
        expert: UserId,
    },
    Closed {
        chat: ChatId,
    },
    Abandoned {
        chat: ChatId,
    },
    Overflowed {
        chat: ChatId,
        queue: String,
        reason: OverflowReason,
    },
    /// Not from the engine: the runtime kept an overflowed chat as an offline message.
    OfflineMessage {
        chat: ChatId,
    },
    /// Not from the engine: the assigned expert brought a colleague into the chat.
    Invited {
        chat: ChatId,
        expert: UserId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NoSuchQueue,
    NoSuchChat,
    /// The chat is no longer offered to this expert (taken, withdrawn, timed out).
    NotOffered,
    NotAMember,
    OverCapacity,
    WrongState(&'static str),
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
    /// Experts this chat must never reach (ethical walls), given by the runtime.
    excluded: BTreeSet<UserId>,
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

    /// A seeker asks for a chat. `excluded`: experts walled off from this seeker.
    pub fn request(
        &mut self,
        queue: &str,
        chat: ChatId,
        excluded: BTreeSet<UserId>,
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
                excluded,
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
    pub fn restore(
        &mut self,
        queue: &str,
        chat: ChatId,
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
                excluded: BTreeSet::new(),
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
        let offered = chat.offers.contains_key(&expert);
        if !offered {
            if config.method != RoutingMethod::Manual {
                return Err(RouteError::NotOffered);
            }
            if !config.members.iter().any(|(u, _)| *u == expert) {
                return Err(RouteError::NotAMember);
            }
            if chat.excluded.contains(&expert) {
                return Err(RouteError::NotOffered);
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
            !chat.excluded.contains(&t)
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
                        !passed.contains(u) && !chat.excluded.contains(u) && !chat.offers.contains_key(u)
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
                if c.excluded.contains(u) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use QueueEvent as E;

    const A: UserId = UserId(1);
    const B: UserId = UserId(2);
    const C: UserId = UserId(3);

    fn queue(method: RoutingMethod, members: &[(UserId, i32)]) -> QueueConfig {
        QueueConfig { members: members.to_vec(), ..QueueConfig::new("support", method) }
    }

    fn router(method: RoutingMethod, members: &[(UserId, i32)]) -> Router {
        let mut r = Router::new();
        r.configure(queue(method, members), 0);
        r
    }

    fn offers(events: &[QueueEvent]) -> Vec<(ChatId, UserId)> {
        events
            .iter()
            .filter_map(|e| if let E::Offered { chat, expert, .. } = e { Some((*chat, *expert)) } else { None })
            .collect()
    }

    fn online(r: &mut Router, experts: &[UserId], now: Millis) {
        for e in experts {
            r.set_presence(*e, true, true, now);
            r.check_invariants().unwrap();
        }
    }

    #[test]
    fn broadcast_offers_everyone_and_the_first_accept_wins() {
        let mut r = router(RoutingMethod::Broadcast, &[(A, 0), (B, 0), (C, 0)]);
        online(&mut r, &[A, B, C], 0);
        let ev = r.request("support", ChatId(1), BTreeSet::new(), 10).unwrap();
        assert_eq!(offers(&ev).len(), 3);
        let ev = r.accept(ChatId(1), B, 20).unwrap();
        let withdrawn: Vec<UserId> = ev
            .iter()
            .filter_map(|e| {
                if let E::OfferWithdrawn { expert, reason: WithdrawReason::TakenByOther, .. } = e {
                    Some(*expert)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(withdrawn, vec![A, C]);
        assert!(ev.contains(&E::Assigned { chat: ChatId(1), expert: B, waited_ms: 10 }));
        assert_eq!(r.accept(ChatId(1), A, 21), Err(RouteError::NotOffered), "a chat is assigned once");
        r.check_invariants().unwrap();
    }

    #[test]
    fn longest_idle_picks_who_waited_longest() {
        let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
        r.set_presence(B, true, true, 0);
        r.set_presence(A, true, true, 5);
        let ev = r.request("support", ChatId(1), BTreeSet::new(), 10).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
        r.accept(ChatId(1), B, 11).unwrap();
        r.end(ChatId(1), 30).unwrap(); // no wrap-up time: closed at once; B idle since 30, A since 5
        let ev = r.request("support", ChatId(2), BTreeSet::new(), 40).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(2), A)]);
    }

    #[test]
    fn round_robin_rotates_through_members() {
        let mut r = router(RoutingMethod::RoundRobin, &[(A, 0), (B, 0), (C, 0)]);
        for q in r.queues.values_mut() {
            q.capacity = 5;
        }
        online(&mut r, &[A, B, C], 0);
        let mut got = Vec::new();
        for i in 1..=6 {
            let ev = r.request("support", ChatId(i), BTreeSet::new(), i as Millis).unwrap();
            let (_, who) = offers(&ev)[0];
            r.accept(ChatId(i), who, i as Millis).unwrap();
            got.push(who);
        }
        assert_eq!(got, vec![A, B, C, A, B, C]);
    }

    #[test]
    fn least_busy_prefers_fewest_open_chats() {
        let mut r = router(RoutingMethod::LeastBusy, &[(A, 0), (B, 0)]);
        for q in r.queues.values_mut() {
            q.capacity = 3;
        }
        r.set_presence(A, true, true, 0);
        r.set_presence(B, true, true, 1);
        let first = offers(&r.request("support", ChatId(1), BTreeSet::new(), 2).unwrap());
        assert_eq!(first, vec![(ChatId(1), A)], "tie on load: longest idle");
        r.accept(ChatId(1), A, 3).unwrap();
        let second = offers(&r.request("support", ChatId(2), BTreeSet::new(), 4).unwrap());
        assert_eq!(second, vec![(ChatId(2), B)]);
        r.accept(ChatId(2), B, 5).unwrap();
        r.close(ChatId(2), 6).unwrap();
        let third = offers(&r.request("support", ChatId(3), BTreeSet::new(), 7).unwrap());
        assert_eq!(third, vec![(ChatId(3), B)], "B has 0 open, A has 1");
    }

    #[test]
    fn serial_follows_priority_and_falls_through_on_decline() {
        let mut r = router(RoutingMethod::Serial, &[(A, 2), (B, 1), (C, 3)]);
        online(&mut r, &[A, B, C], 0);
        let ev = r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
        let ev = r.decline(ChatId(1), B, 2).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), A)]);
        let ev = r.decline(ChatId(1), A, 3).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), C)]);
        // Everyone declined: a new round starts with the first again — never only once.
        let ev = r.decline(ChatId(1), C, 4).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
        r.check_invariants().unwrap();
    }

    #[test]
    fn manual_queues_offer_nothing_and_experts_pick_oldest_or_any() {
        let mut r = router(RoutingMethod::Manual, &[(A, 0), (B, 0)]);
        online(&mut r, &[A, B], 0);
        assert!(offers(&r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap()).is_empty());
        r.request("support", ChatId(2), BTreeSet::new(), 2).unwrap();
        assert_eq!(r.waiting("support"), vec![ChatId(1), ChatId(2)]);
        assert_eq!(r.accept(ChatId(2), UserId(99), 3), Err(RouteError::NotAMember));
        r.accept(ChatId(2), A, 3).unwrap();
        assert_eq!(r.accept(ChatId(1), A, 4), Err(RouteError::OverCapacity), "capacity 1");
        r.accept(ChatId(1), B, 4).unwrap();
        r.check_invariants().unwrap();
    }

    #[test]
    fn timed_out_offers_move_on_as_often_as_needed() {
        let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
        online(&mut r, &[A, B], 0);
        let ev = r.request("support", ChatId(1), BTreeSet::new(), 0).unwrap();
        let mut who = offers(&ev)[0].1;
        let mut seen = Vec::new();
        let mut now = 0;
        for _ in 0..10 {
            now += 30_000;
            assert_eq!(r.next_deadline(), Some(now));
            let ev = r.tick(now);
            assert!(ev.contains(&E::OfferTimedOut { chat: ChatId(1), expert: who }));
            who = offers(&ev)[0].1;
            seen.push(who);
            r.check_invariants().unwrap();
        }
        assert!(seen.contains(&A) && seen.contains(&B), "alternates: {seen:?}");
        r.accept(ChatId(1), who, now + 1).unwrap();
    }

    #[test]
    fn going_away_withdraws_offers_at_once_and_reoffers() {
        let mut r = router(RoutingMethod::Serial, &[(A, 0), (B, 1)]);
        online(&mut r, &[A, B], 0);
        r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap();
        assert_eq!(r.offers_of(A), vec![ChatId(1)]);
        let ev = r.set_presence(A, true, false, 2); // away
        assert_eq!(ev[0], E::OfferWithdrawn { chat: ChatId(1), expert: A, reason: WithdrawReason::ExpertUnavailable });
        assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
        let ev = r.set_presence(B, false, false, 3); // offline
        assert!(offers(&ev).is_empty());
        assert_eq!(r.state(ChatId(1)), Some(ChatState::Queued));
        let ev = r.set_presence(A, true, true, 4);
        assert_eq!(offers(&ev), vec![(ChatId(1), A)], "back and ready: offered again");
    }

    #[test]
    fn walls_no_experts_and_max_wait_overflow() {
        let mut r = router(RoutingMethod::Broadcast, &[(A, 0), (B, 0)]);
        let ev = r.request("support", ChatId(1), BTreeSet::new(), 0).unwrap();
        assert_eq!(
            ev.last(),
            Some(&E::Overflowed { chat: ChatId(1), queue: "support".into(), reason: OverflowReason::NoExpertSignedIn })
        );
        online(&mut r, &[A, B], 0);
        let ev = r.request("support", ChatId(2), [A].into_iter().collect(), 1).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(2), B)], "walled expert skipped");
        for q in r.queues.values_mut() {
            q.max_wait_ms = Some(60_000);
        }
        r.decline(ChatId(2), B, 2).unwrap();
        let ev = r.tick(60_001);
        assert!(ev.contains(&E::Overflowed {
            chat: ChatId(2),
            queue: "support".into(),
            reason: OverflowReason::MaxWait
        }));
        assert_eq!(r.state(ChatId(2)), None);
        assert_eq!(r.request("nope", ChatId(3), BTreeSet::new(), 0), Err(RouteError::NoSuchQueue));
    }

    #[test]
    fn oldest_waiting_chat_is_served_first_with_positions() {
        let mut r = router(RoutingMethod::LongestIdle, &[(A, 0)]);
        r.set_presence(A, true, true, 0);
        r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap();
        r.request("support", ChatId(2), BTreeSet::new(), 2).unwrap();
        r.request("support", ChatId(3), BTreeSet::new(), 3).unwrap();
        assert_eq!((r.position(ChatId(2)), r.position(ChatId(3))), (Some(2), Some(3)));
        r.accept(ChatId(1), A, 4).unwrap();
        assert_eq!(r.position(ChatId(2)), Some(1));
        let s = r.stats("support", 10).unwrap();
        assert_eq!((s.experts_total, s.signed_in, s.ready, s.busy, s.waiting, s.active_chats), (1, 1, 0, 1, 2, 1));
        assert_eq!(s.longest_wait_ms, 8);
        let ev = r.end(ChatId(1), 12).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(2), A)], "the older of the two");
    }

    #[test]
    fn seekers_who_left_leave_the_line_after_the_grace() {
        // A is signed in but not available: three chats wait.
        let mut r = router(RoutingMethod::LongestIdle, &[(A, 0)]);
        r.set_presence(A, true, false, 0);
        for c in 1..=3 {
            r.request("support", ChatId(c), BTreeSet::new(), c as Millis).unwrap();
        }
        assert_eq!(r.seeker_away(ChatId(9), 100), Err(RouteError::NoSuchChat));
        // The second seeker goes at 10 (a grace of 1 s); the first goes and comes back (a reload).
        r.seeker_away(ChatId(2), 1010).unwrap();
        r.seeker_away(ChatId(1), 1500).unwrap();
        r.seeker_back(ChatId(1)).unwrap();
        assert_eq!(r.next_deadline(), Some(1010));
        assert!(r.tick(1009).is_empty(), "within the grace it keeps its place");
        assert_eq!(r.position(ChatId(3)), Some(3));
        assert_eq!(r.stats("support", 1009).unwrap().waiting, 3);
        assert_eq!(r.tick(1010), vec![E::Abandoned { chat: ChatId(2) }]);
        r.check_invariants().unwrap();
        assert_eq!(r.state(ChatId(2)), None);
        assert_eq!((r.position(ChatId(1)), r.position(ChatId(3))), (Some(1), Some(2)), "counted nowhere");
        assert_eq!(r.stats("support", 1010).unwrap().waiting, 2);
        assert_eq!(r.seeker_away_until(ChatId(1)), None);

        // Away again keeps the first deadline.
        r.seeker_away(ChatId(3), 2000).unwrap();
        r.seeker_away(ChatId(3), 9000).unwrap();
        assert_eq!(r.seeker_away_until(ChatId(3)), Some(2000));
        // A ghost's open offer is withdrawn when it leaves; the next chat is offered.
        r.seeker_away(ChatId(1), 3000).unwrap();
        let ev = r.set_presence(A, true, true, 1500);
        assert_eq!(offers(&ev), vec![(ChatId(1), A)]);
        assert_eq!(r.tick(2000), vec![E::Abandoned { chat: ChatId(3) }], "never offered: nobody was free");
        let ev = r.tick(3000);
        assert_eq!(
            ev,
            vec![
                E::OfferWithdrawn { chat: ChatId(1), expert: A, reason: WithdrawReason::ChatGone },
                E::Abandoned { chat: ChatId(1) },
            ]
        );
        r.check_invariants().unwrap();
        assert!(r.waiting("support").is_empty());
        assert_eq!(r.next_deadline(), None);

        // An assigned chat is the expert's to end: the seeker being away does not.
        let ev = r.request("support", ChatId(4), BTreeSet::new(), 3100).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(4), A)]);
        r.accept(ChatId(4), A, 3150).unwrap();
        r.seeker_away(ChatId(4), 3200).unwrap();
        assert!(r.tick(4000).is_empty());
        assert_eq!(r.state(ChatId(4)), Some(ChatState::Assigned(A)));
    }

    #[test]
    fn transfer_to_queue_and_to_expert() {
        let mut r = router(RoutingMethod::Serial, &[(A, 0), (B, 1)]);
        let mut sales = queue(RoutingMethod::Serial, &[(C, 0)]);
        sales.id = "sales".into();
        r.configure(sales, 0);
        online(&mut r, &[A, B, C], 0);
        r.request("support", ChatId(1), BTreeSet::new(), 0).unwrap();
        r.accept(ChatId(1), A, 1).unwrap();
        let ev = r.transfer(ChatId(1), None, Some(B), 2).unwrap();
        assert!(ev.contains(&E::Transferred { chat: ChatId(1), from: Some(A), to_queue: None, to_expert: Some(B) }));
        assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
        assert!(r.open_chats_of(A).is_empty(), "A's capacity is free");
        r.accept(ChatId(1), B, 3).unwrap();
        let ev = r.transfer(ChatId(1), Some("sales"), None, 4).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(1), C)]);
        assert_eq!(r.transfer(ChatId(1), Some("nope"), None, 5), Err(RouteError::NoSuchQueue));
        r.check_invariants().unwrap();
    }

    #[test]
    fn capacity_is_shared_across_queues_and_daily_caps_hold() {
        let mut r = router(RoutingMethod::Broadcast, &[(A, 0)]);
        let mut sales = queue(RoutingMethod::Broadcast, &[(A, 0)]);
        sales.id = "sales".into();
        sales.daily_cap = Some(2);
        r.configure(sales, 0);
        r.set_presence(A, true, true, 0);
        r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap();
        let ev = r.request("sales", ChatId(2), BTreeSet::new(), 2).unwrap();
        assert!(offers(&ev).is_empty(), "A's one slot is taken by the support offer");
        r.accept(ChatId(1), A, 3).unwrap();
        r.close(ChatId(1), 4).unwrap();
        assert_eq!(r.offers_of(A), vec![ChatId(2)]);
        r.accept(ChatId(2), A, 5).unwrap();
        r.close(ChatId(2), 6).unwrap();
        // Two chats today (one per queue): the sales cap of 2 counts them both.
        let ev = r.request("sales", ChatId(3), BTreeSet::new(), 7).unwrap();
        assert!(offers(&ev).is_empty(), "daily cap of 2 reached in sales");
        let ev = r.request("support", ChatId(4), BTreeSet::new(), 8).unwrap();
        assert_eq!(offers(&ev), vec![(ChatId(4), A)], "support has no daily cap");
        r.accept(ChatId(4), A, 9).unwrap();
        r.close(ChatId(4), 10).unwrap();
        let ev = r.tick(DAY_MS + 1);
        assert_eq!(offers(&ev), vec![(ChatId(3), A)], "a new day");
    }

    #[test]
    fn restored_chats_keep_their_place_and_their_expert() {
        let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
        online(&mut r, &[A, B], 100);
        assert!(offers(&r.restore("support", ChatId(7), 5, Some(A), false, 100)).is_empty());
        assert_eq!(r.open_chats_of(A), vec![ChatId(7)]);
        r.request("support", ChatId(8), BTreeSet::new(), 110).unwrap();
        let ev = r.restore("support", ChatId(6), 1, None, false, 120);
        assert!(offers(&ev).is_empty(), "B holds an offer for 8 already");
        assert_eq!(r.position(ChatId(6)), Some(1), "requested earlier than 8: first in line");
        r.check_invariants().unwrap();
        assert!(r.restore("nope", ChatId(9), 0, None, false, 0).is_empty());
    }

    #[test]
    fn totals_compute_waits_handle_times_and_service_level() {
        let counts = vec![
            ("requested".to_string(), 4),
            ("offered".to_string(), 6),
            ("assigned".to_string(), 3),
            ("abandoned".to_string(), 1),
        ];
        let chats = [
            ChatTimes { requested_at: 0, assigned_at: Some(10_000), closed_at: Some(70_000), survey_rating: Some(5) },
            ChatTimes { requested_at: 0, assigned_at: Some(20_000), closed_at: Some(140_000), survey_rating: Some(2) },
            ChatTimes { requested_at: 0, assigned_at: Some(45_000), closed_at: None, survey_rating: None },
            ChatTimes { requested_at: 0, assigned_at: None, closed_at: Some(5_000), survey_rating: None },
        ];
        let t = QueueTotals::compute(&counts, &chats, 30_000);
        assert_eq!((t.requested, t.offered, t.accepted, t.abandoned, t.overflowed), (4, 6, 3, 1, 0));
        assert_eq!(t.avg_wait_s, Some(25.0));
        assert_eq!(t.p90_wait_s, Some(45.0));
        assert_eq!(t.avg_handle_s, Some(90.0));
        assert_eq!(t.service_level, Some(0.5), "2 of 4 answered within 30 s");
        assert_eq!(t.survey_average, Some(3.5));
        let empty = QueueTotals::compute(&[], &[], 30_000);
        assert_eq!((empty.avg_wait_s, empty.service_level), (None, None));
    }

    #[test]
    fn wrap_up_holds_capacity_until_done_or_timed_out() {
        let mut q = queue(RoutingMethod::Serial, &[(A, 0)]);
        q.wrap_up_ms = 60_000;
        let mut r = Router::new();
        r.configure(q, 0);
        r.set_presence(A, true, true, 0);
        r.request("support", ChatId(1), BTreeSet::new(), 1).unwrap();
        r.accept(ChatId(1), A, 2).unwrap();
        r.request("support", ChatId(2), BTreeSet::new(), 3).unwrap();
        assert_eq!(r.end(ChatId(1), 10).unwrap(), vec![E::WrapUp { chat: ChatId(1), expert: A }]);
        assert_eq!(r.wrap_up_until(ChatId(1)), Some(60_010));
        assert!(r.offers_of(A).is_empty(), "wrap-up holds the capacity");
        assert_eq!(r.next_deadline(), Some(60_010));
        assert_eq!(r.finish_wrap_up(ChatId(1), B, 20), Err(RouteError::WrongState("not in wrap-up")));
        let ev = r.finish_wrap_up(ChatId(1), A, 20).unwrap();
        assert_eq!(ev[0], E::Closed { chat: ChatId(1) });
        assert_eq!(offers(&ev), vec![(ChatId(2), A)], "free again: the next chat is offered");
        r.accept(ChatId(2), A, 21).unwrap();
        r.end(ChatId(2), 30).unwrap();
        assert!(r.tick(60_029).is_empty());
        assert_eq!(r.tick(60_030), vec![E::Closed { chat: ChatId(2) }], "wrap-up time over");
        r.check_invariants().unwrap();
    }

    /// Hours of simulated traffic with every method, checked after every step.
    #[test]
    fn hours_of_random_traffic_keep_every_invariant() {
        let mut seed: u64 = 0x5eed_cafe;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for method in RoutingMethod::ALL {
            let experts: Vec<UserId> = (1..=8).map(UserId).collect();
            let mut r = Router::new();
            let mut q = queue(method, &experts.iter().map(|u| (*u, (u.0 % 3) as i32)).collect::<Vec<_>>());
            q.capacity = 2;
            q.wrap_up_ms = 5_000;
            q.max_wait_ms = Some(15 * 60_000);
            r.configure(q, 0);
            let (mut now, mut next_chat, mut assigned) = (0, 1u64, 0u32);
            while now < 6 * 3_600_000 {
                now += 1 + rnd(20_000) as Millis;
                let events = match rnd(10) {
                    0..=2 => {
                        next_chat += 1;
                        r.request("support", ChatId(next_chat), BTreeSet::new(), now).unwrap()
                    }
                    3 => {
                        let e = experts[rnd(8) as usize];
                        r.set_presence(e, rnd(5) != 0, rnd(3) != 0, now)
                    }
                    4 | 5 => {
                        // Racing accepts: every expert with an offer (and, on manual queues,
                        // anyone) tries the same chat; exactly one may win.
                        let waiting = r.waiting("support");
                        let mut evs = Vec::new();
                        if let Some(chat) = waiting.first() {
                            let winners = experts
                                .iter()
                                .filter(|e| r.accept(*chat, **e, now).map(|ev| evs.extend(ev)).is_ok())
                                .count();
                            assert!(winners <= 1, "{method:?}: {winners} experts won {chat:?}");
                        }
                        evs
                    }
                    6 => {
                        let e = experts[rnd(8) as usize];
                        match r.offers_of(e).first() {
                            Some(c) => r.decline(*c, e, now).unwrap(),
                            None => Vec::new(),
                        }
                    }
                    7 => {
                        let e = experts[rnd(8) as usize];
                        match r.open_chats_of(e).first() {
                            Some(c) if r.state(*c) == Some(ChatState::Assigned(e)) => r.end(*c, now).unwrap(),
                            Some(c) => r.finish_wrap_up(*c, e, now).unwrap(),
                            None => Vec::new(),
                        }
                    }
                    8 => {
                        let e = experts[rnd(8) as usize];
                        match r.open_chats_of(e).first() {
                            Some(c) => r.close(*c, now).unwrap(),
                            None => Vec::new(),
                        }
                    }
                    _ => {
                        // Seekers come and go; those away for a minute leave the line.
                        let waiting = r.waiting("support");
                        if let Some(c) = waiting.get(rnd(waiting.len().max(1) as u64) as usize) {
                            match rnd(2) {
                                0 => r.seeker_away(*c, now + 60_000).unwrap(),
                                _ => r.seeker_back(*c).unwrap(),
                            }
                        }
                        r.tick(now)
                    }
                };
                assigned += events.iter().filter(|e| matches!(e, E::Assigned { .. })).count() as u32;
                r.check_invariants().unwrap_or_else(|e| panic!("{method:?} at {now}: {e}"));
            }
            assert!(assigned > 100, "{method:?}: only {assigned} chats assigned");
        }
    }
}
