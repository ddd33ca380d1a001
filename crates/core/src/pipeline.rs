//! The one message pipeline.
//!
//! Every door — the web socket, the REST API, later XMPP, the queue relay and alerts —
//! submits messages here before anything is stored or delivered. The pipeline checks the
//! basics (size, emptiness, control characters, membership), then asks the one policy
//! (`policy::Snapshot`), which decides every act between people, not only messages. Only an
//! [`Admission`] reaches the single write path.

use crate::conversation::Conversation;
use crate::directory::User;
use crate::error::CoreError;
use crate::policy::{Act, Admission, Refusal, Snapshot};

/// Where a message came in. Policies may treat doors alike (they should) but logs and
/// metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    WebSocket,
    Rest,
    Xmpp,
    QueueRelay,
    Alert,
}

impl Door {
    pub const ALL: [Door; 5] = [Door::WebSocket, Door::Rest, Door::Xmpp, Door::QueueRelay, Door::Alert];

    pub fn as_str(self) -> &'static str {
        match self {
            Door::WebSocket => "websocket",
            Door::Rest => "rest",
            Door::Xmpp => "xmpp",
            Door::QueueRelay => "queue_relay",
            Door::Alert => "alert",
        }
    }
}

pub struct Submission<'a> {
    pub door: Door,
    pub sender: &'a User,
    pub conversation: &'a Conversation,
    pub body: &'a str,
}

/// Why a message was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It is not a message that can be stored (too large, empty, not a member, …).
    Invalid(CoreError),
    /// The policy refused it (an ethical wall); the crossing is recorded.
    Policy(Refusal),
}

impl From<Refused> for CoreError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Invalid(e) => e,
            Refused::Policy(r) => CoreError::Blocked(r.notice),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    max_message_bytes: usize,
}

impl Pipeline {
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Decide whether a message may be stored and delivered: the basics, then the one
    /// policy ([`Snapshot::admit`]) — the same for every door.
    pub fn admit(&self, policy: &Snapshot, s: &Submission<'_>) -> Result<Admission, Refused> {
        let invalid = |e| Err(Refused::Invalid(e));
        if s.body.len() > self.max_message_bytes {
            return invalid(CoreError::MessageTooLarge { size: s.body.len(), limit: self.max_message_bytes });
        }
        if s.body.trim().is_empty() {
            return invalid(CoreError::Invalid("message body is empty".into()));
        }
        if crate::text::control_char(s.body).is_some() {
            return invalid(CoreError::Invalid("message contains control characters".into()));
        }
        if s.sender.disabled {
            return invalid(CoreError::Forbidden("account is disabled".into()));
        }
        if !s.conversation.is_member(s.sender.id) {
            return invalid(CoreError::Forbidden("you are not a member of this conversation".into()));
        }
        policy.admit(&Act::Message { sender: s.sender.id, conversation: s.conversation }).map_err(Refused::Policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ConversationId, ConversationKind, Member};
    use crate::directory::{Address, Role, UserId};

    fn user(id: i64, name: &str) -> User {
        User {
            id: UserId(id),
            address: Address::parse(&format!("{name}@example.com")).unwrap(),
            display_name: name.into(),
            email: String::new(),
            locale: "en".into(),
            roles: vec![Role::User],
            disabled: false,
        }
    }

    fn direct(a: &User, b: &User) -> Conversation {
        Conversation {
            id: ConversationId(1),
            kind: ConversationKind::Direct,
            title: String::new(),
            created_at: 0,
            members: [a, b].iter().map(|u| Member { id: u.id, address: u.address.clone() }).collect(),
        }
    }

    #[test]
    fn basics_are_checked_before_policies() {
        let (a, b, c) = (user(1, "alice"), user(2, "bob"), user(3, "carol"));
        let conv = direct(&a, &b);
        let p = Pipeline::new(10);
        let open = Snapshot::default();
        let sub = |sender: &User, body: &'static str| {
            p.admit(&open, &Submission { door: Door::Rest, sender, conversation: &conv, body }).map_err(CoreError::from)
        };
        assert!(sub(&a, "hi").is_ok());
        assert_eq!(sub(&a, "0123456789a"), Err(CoreError::MessageTooLarge { size: 11, limit: 10 }));
        assert!(matches!(sub(&a, "  \n"), Err(CoreError::Invalid(_))));
        assert!(matches!(sub(&a, "a\u{0}b"), Err(CoreError::Invalid(_))));
        assert!(matches!(sub(&c, "hi"), Err(CoreError::Forbidden(_))), "non-member refused");
    }
}
