//! JSON wire types (docs/protocol.md). Domain types convert into these at the edge.

use sb_core::conversation::ConversationSummary;
use sb_core::{Conversation, Event, Group, Presence, User};
use sb_service::Frame;
use serde::Serialize;
use serde_json::json;

#[derive(Serialize)]
pub struct PresenceDto<'a> {
    pub state: &'static str,
    pub idle: bool,
    pub note: &'a str,
}

impl<'a> From<&'a Presence> for PresenceDto<'a> {
    fn from(p: &'a Presence) -> Self {
        Self { state: p.state.as_str(), idle: p.idle, note: &p.note }
    }
}

#[derive(Serialize)]
pub struct UserDto<'a> {
    pub address: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    pub locale: &'a str,
    pub roles: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceDto<'a>>,
}

pub fn user<'a>(u: &'a User, presence: Option<&'a Presence>) -> UserDto<'a> {
    UserDto {
        address: u.address.as_str(),
        display_name: &u.display_name,
        email: &u.email,
        locale: &u.locale,
        roles: u.roles.iter().map(|r| r.as_str()).collect(),
        presence: presence.map(PresenceDto::from),
    }
}

#[derive(Serialize)]
pub struct EventDto<'a> {
    pub id: i64,
    pub conversation: i64,
    pub seq: i64,
    pub kind: &'static str,
    pub sender: Option<&'a str>,
    pub body: &'a str,
    pub ts: i64,
    pub client_id: Option<&'a str>,
}

pub fn event(e: &Event) -> EventDto<'_> {
    EventDto {
        id: e.id.0,
        conversation: e.conversation.0,
        seq: e.seq,
        kind: e.kind.as_str(),
        sender: e.actor.as_ref().map(|a| a.address.as_str()),
        body: &e.body,
        ts: e.ts,
        client_id: e.client_id.as_deref(),
    }
}

#[derive(Serialize)]
pub struct ConversationDto<'a> {
    pub id: i64,
    pub kind: &'static str,
    pub title: &'a str,
    pub members: Vec<&'a str>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_up_to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Option<EventDto<'a>>>,
}

pub fn conversation(c: &Conversation) -> ConversationDto<'_> {
    ConversationDto {
        id: c.id.0,
        kind: c.kind.as_str(),
        title: &c.title,
        members: c.members.iter().map(|m| m.address.as_str()).collect(),
        created_at: c.created_at,
        unread: None,
        read_up_to: None,
        last_message: None,
    }
}

pub fn summary(s: &ConversationSummary) -> ConversationDto<'_> {
    ConversationDto {
        unread: Some(s.unread),
        read_up_to: Some(s.read_up_to.0),
        last_message: Some(s.last_event.as_ref().map(event)),
        ..conversation(&s.conversation)
    }
}

#[derive(Serialize)]
pub struct GroupDto<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

pub fn group(g: &Group) -> GroupDto<'_> {
    GroupDto { id: &g.slug, name: &g.name }
}

/// Encode a frame for the WebSocket.
pub fn encode(frame: &Frame) -> String {
    let v = match frame {
        Frame::Event(e) => json!({"type": "event", "event": event(e)}),
        Frame::QueueOffer(o) => json!({
            "type": "queue_offer", "chat": o.chat, "queue": o.queue, "queue_name": o.queue_name,
            "seeker": o.seeker.as_str(), "seeker_name": o.seeker_name, "question": o.question,
            "expires_at": o.expires_at, "conversation": o.conversation.0, "answers": answers(&o.answers),
        }),
        Frame::Alert(a) => json!({
            "type": "alert", "id": a.id, "title": a.title, "body": a.body, "priority": a.priority,
            "ack_required": a.ack_required, "created_at": a.created_at, "conversation": a.conversation, "reminder": a.round > 0,
        }),
        Frame::AlertAcked { id } => json!({"type": "alert_acked", "id": id}),
        Frame::Violation(v) => {
            let mut j = violation(v);
            j["type"] = json!("compliance_violation");
            j
        }
        Frame::QueueOfferGone { chat, reason } => json!({"type": "queue_offer_gone", "chat": chat, "reason": reason}),
        Frame::QueueChat(v) => {
            let mut j = queue_chat(v);
            j["type"] = json!("queue_chat");
            j
        }
        Frame::Ack { client_id, event: e } => json!({"type": "ack", "client_id": client_id, "event": event(e)}),
        Frame::Conversation(c) => json!({"type": "conversation", "conversation": conversation(c)}),
        Frame::Presence { address, presence } => {
            json!({"type": "presence", "user": address.as_str(), "presence": PresenceDto::from(presence)})
        }
        Frame::Typing { conversation, address, active } => {
            json!({"type": "typing", "conversation": conversation.0, "user": address.as_str(), "active": active})
        }
        Frame::Read { conversation, address, up_to } => {
            json!({"type": "read", "conversation": conversation.0, "user": address.as_str(), "up_to": up_to.0})
        }
        Frame::Error { code, message, reference } => {
            json!({"type": "error", "code": code, "message": message, "ref": reference})
        }
        Frame::Closing { reason } => json!({"type": "closing", "reason": reason}),
    };
    v.to_string()
}

/// A queue chat as its seeker sees it.
pub fn queue_chat(v: &sb_service::queue_chats::ChatView) -> serde_json::Value {
    json!({
        "chat": v.chat, "queue": v.queue, "queue_name": v.queue_name, "state": v.state,
        "position": v.position, "estimated_wait_s": v.estimated_wait_s,
        "expert": v.expert.as_ref().map(|a| a.as_str()), "expert_name": v.expert_name, "conversation": v.conversation.0, "message": v.message,
        "question": v.question, "answers": answers(&v.answers), "wrap_up_until": v.wrap_up_until,
    })
}

/// Pre-chat form answers as a JSON object (field name → value).
pub fn answers(a: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(a.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// A wall violation as compliance officers see it.
pub fn violation(v: &sb_service::compliance::ViolationView) -> serde_json::Value {
    let x = &v.violation;
    json!({
        "id": x.id, "ts": x.ts, "wall": x.wall, "wall_name": v.wall_name, "mode": x.mode.as_str(), "action": x.action,
        "actor": v.actor, "other": v.other, "conversation": x.conversation, "detail": x.detail,
    })
}
