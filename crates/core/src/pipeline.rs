//! The one message pipeline.
//!
//! Every door — the web socket, the REST API, later XMPP, the queue relay and alerts —
//! submits messages here before anything is stored or delivered. The pipeline checks the
//! basics (size, emptiness, membership), then asks each [`Policy`] in order. Ethical walls
//! and disclaimers attach as policies; the archive attaches at the single write path
//! (`Store::append_events`), which only admitted messages reach.

use crate::conversation::Conversation;
use crate::directory::User;
use crate::error::CoreError;
use std::sync::Arc;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Deliver, but record a violation (e.g. a wall in `monitor` mode).
    Flag(String),
    /// Refuse; the text is the notice shown to the sender.
    Block(String),
    /// Deliver, after these system notices (e.g. a disclaimer) are added to the conversation.
    Notice(String),
}

pub trait Policy: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self, submission: &Submission<'_>) -> Verdict;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// (policy, reason) for each flag raised.
    pub flags: Vec<(&'static str, String)>,
    /// (policy, text) system notices to store before the message.
    pub notices: Vec<(&'static str, String)>,
}

#[derive(Clone)]
pub struct Pipeline {
    max_message_bytes: usize,
    policies: Vec<Arc<dyn Policy>>,
}

impl Pipeline {
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes, policies: Vec::new() }
    }

    pub fn with_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policies.push(policy);
        self
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Decide whether a message may be stored and delivered.
    pub fn admit(&self, s: &Submission<'_>) -> Result<Admitted, CoreError> {
        if s.body.len() > self.max_message_bytes {
            return Err(CoreError::MessageTooLarge { size: s.body.len(), limit: self.max_message_bytes });
        }
        if s.body.trim().is_empty() {
            return Err(CoreError::Invalid("message body is empty".into()));
        }
        if s.body.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
            return Err(CoreError::Invalid("message contains control characters".into()));
        }
        if s.sender.disabled {
            return Err(CoreError::Forbidden("account is disabled".into()));
        }
        if !s.conversation.is_member(s.sender.id) {
            return Err(CoreError::Forbidden("you are not a member of this conversation".into()));
        }
        let mut admitted = Admitted::default();
        for policy in &self.policies {
            match policy.check(s) {
                Verdict::Allow => {}
                Verdict::Flag(why) => admitted.flags.push((policy.name(), why)),
                Verdict::Notice(text) => admitted.notices.push((policy.name(), text)),
                Verdict::Block(notice) => return Err(CoreError::Blocked(notice)),
            }
        }
        Ok(admitted)
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

    /// A policy of the shape walls and disclaimers will have: it sees who talks to whom.
    struct NoTalkingTo(&'static str);
    impl Policy for NoTalkingTo {
        fn name(&self) -> &'static str {
            "test_wall"
        }
        fn check(&self, s: &Submission<'_>) -> Verdict {
            if s.conversation.members.iter().any(|m| m.address.local() == self.0) && s.sender.address.local() != self.0
            {
                Verdict::Block(format!("Chats with {} have been prohibited by your administrator.", self.0))
            } else {
                Verdict::Allow
            }
        }
    }
    struct FlagWord;
    impl Policy for FlagWord {
        fn name(&self) -> &'static str {
            "test_monitor"
        }
        fn check(&self, s: &Submission<'_>) -> Verdict {
            if s.body.contains("insider") {
                Verdict::Flag("keyword".into())
            } else {
                Verdict::Notice("disclaimer".into())
            }
        }
    }

    #[test]
    fn basics_are_checked_before_policies() {
        let (a, b, c) = (user(1, "alice"), user(2, "bob"), user(3, "carol"));
        let conv = direct(&a, &b);
        let p = Pipeline::new(10);
        let sub = |sender: &User, body: &'static str| {
            p.admit(&Submission { door: Door::Rest, sender, conversation: &conv, body })
        };
        assert!(sub(&a, "hi").is_ok());
        assert_eq!(sub(&a, "0123456789a"), Err(CoreError::MessageTooLarge { size: 11, limit: 10 }));
        assert!(matches!(sub(&a, "  \n"), Err(CoreError::Invalid(_))));
        assert!(matches!(sub(&a, "a\u{0}b"), Err(CoreError::Invalid(_))));
        assert!(matches!(sub(&c, "hi"), Err(CoreError::Forbidden(_))), "non-member refused");
    }

    #[test]
    fn policies_block_flag_and_add_notices_for_every_door() {
        let (a, b) = (user(1, "alice"), user(2, "bob"));
        let conv = direct(&a, &b);
        let p = Pipeline::new(1000).with_policy(Arc::new(FlagWord)).with_policy(Arc::new(NoTalkingTo("bob")));
        for door in [Door::WebSocket, Door::Rest, Door::Xmpp, Door::QueueRelay, Door::Alert] {
            let r = p.admit(&Submission { door, sender: &a, conversation: &conv, body: "insider tip" });
            assert_eq!(r, Err(CoreError::Blocked("Chats with bob have been prohibited by your administrator.".into())));
            let ok = p.admit(&Submission { door, sender: &b, conversation: &conv, body: "insider tip" }).unwrap();
            assert_eq!(ok.flags, vec![("test_monitor", "keyword".to_string())]);
            let ok = p.admit(&Submission { door, sender: &b, conversation: &conv, body: "hello" }).unwrap();
            assert_eq!(ok.notices, vec![("test_monitor", "disclaimer".to_string())]);
        }
    }
}
