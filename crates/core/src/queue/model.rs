//! What a queue is, as stored and reported: its definition (`QueueDef`, members, managers,
//! overflow actions), chat records, lifecycle events and totals. The engine that routes
//! chats over these is `Router`, in the parent module.

use crate::clock::Millis;
use crate::directory::{Address, Role, User, UserId};

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

/// Where a queue chat stands in its record (stored as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRecordState {
    Queued,
    Assigned,
    WrapUp,
    Closed,
    Abandoned,
    Overflowed,
    /// Kept as an offline message: an expert takes it later.
    Offline,
}

impl ChatRecordState {
    pub const ALL: [ChatRecordState; 7] =
        [Self::Queued, Self::Assigned, Self::WrapUp, Self::Closed, Self::Abandoned, Self::Overflowed, Self::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::WrapUp => "wrap_up",
            Self::Closed => "closed",
            Self::Abandoned => "abandoned",
            Self::Overflowed => "overflowed",
            Self::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still open: waiting, with an expert, or in wrap-up (restored after a restart).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Assigned | Self::WrapUp)
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
    pub state: ChatRecordState,
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
    /// The policy no longer lets this seeker and this expert meet (a wall was made).
    Walled,
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
