//! Conversations and their ordered event log.

use crate::clock::Millis;
use crate::directory::{Address, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(pub i64);

/// Global, strictly increasing in the order events were stored. A client that remembers
/// the highest id it has seen can resume from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    Direct,
    Group,
    /// A seeker's chat with a queue; the assigned expert joins it.
    Queue,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
            ConversationKind::Queue => "queue",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(ConversationKind::Direct),
            "group" => Some(ConversationKind::Group),
            "queue" => Some(ConversationKind::Queue),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: UserId,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub title: String,
    pub created_at: Millis,
    pub members: Vec<Member>,
}

impl Conversation {
    pub fn is_member(&self, user: UserId) -> bool {
        self.members.iter().any(|m| m.id == user)
    }
}

/// A conversation as one participant sees it in their list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub unread: i64,
    pub read_up_to: EventId,
    pub last_event: Option<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Joined,
    Left,
    Message,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Joined => "joined",
            EventKind::Left => "left",
            EventKind::Message => "message",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => EventKind::Created,
            "joined" => EventKind::Joined,
            "left" => EventKind::Left,
            "message" => EventKind::Message,
            _ => return None,
        })
    }
}

/// An event about to be stored. `Joined` and `Left` also change the membership, in the
/// same transaction as the event is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub conversation: ConversationId,
    pub kind: EventKind,
    /// The acting user (the sender of a message, the member who joined or left).
    pub actor: Option<Member>,
    pub body: String,
    /// The sender's id for this message; a second message with the same sender and
    /// client id is the same message (an idempotent retry).
    pub client_id: Option<String>,
    pub ts: Millis,
    /// What the archive keeps beside the event (JSON, e.g. the disclaimer rule that fired);
    /// not part of the conversation log.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub conversation: ConversationId,
    /// Position in its conversation: 1, 2, 3, … without gaps.
    pub seq: i64,
    pub kind: EventKind,
    pub actor: Option<Member>,
    pub body: String,
    pub client_id: Option<String>,
    pub ts: Millis,
}

/// What storing one [`NewEvent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event: Event,
    /// True when the event was already stored (same sender and client id): nothing new
    /// happened and nothing is to be delivered again.
    pub duplicate: bool,
}
