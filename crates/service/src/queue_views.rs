//! Where a queue chat stands, as its seeker and expert see it.

use crate::queue_chats::ChatView;
use crate::Service;
use sb_core::queue::{ChatId, ChatRecordState, QueueChatRecord};
use sb_core::User;

impl Service {
    /// The chat as `user` (its seeker or expert) may see it; `None` for anyone else.
    pub fn queue_chat_view_for(&self, user: &User, chat: ChatId) -> Option<ChatView> {
        let r = self.chat_record(chat)?;
        (r.seeker == user.id || r.expert == Some(user.id)).then(|| self.queue_chat_view(chat)).flatten()
    }

    /// The chat as its seeker sees it now.
    pub fn queue_chat_view(&self, chat: ChatId) -> Option<ChatView> {
        let record = self.chat_record(chat)?;
        let def = self.queues.defs().iter().find(|d| d.id == record.queue).cloned();
        let (position, routing_state, wrap_up_until) =
            self.route(|r| (r.position(chat), r.state(chat), r.wrap_up_until(chat)));
        use sb_core::queue::ChatState;
        let state = match (routing_state, record.state) {
            (Some(ChatState::Queued), _) => "waiting",
            (Some(ChatState::Assigned(_)), _) => "assigned",
            (Some(ChatState::WrapUp(_)), _) => "wrap_up",
            (None, ChatRecordState::Abandoned) => "abandoned",
            (None, ChatRecordState::Overflowed) => "overflowed",
            (None, ChatRecordState::Offline) => "offline",
            (None, _) => "closed",
        };
        if state == "offline" {
            return def.map(|d| offline_view(&d, &record));
        }
        let estimated_wait_s = position.map(|p| {
            let status = self.queues.status(&record.queue, self.now());
            let slots = status.map_or(1, |s| u64::from(s.experts_ready.max(1)));
            (p as u64).saturating_sub(1) * 180 / slots
        });
        let show = def.as_ref().is_none_or(|d| d.show_expert_name);
        let shown = record.expert.filter(|_| show && state == "assigned");
        let expert = shown.and_then(|u| self.chat.hub.address_of(u));
        let expert_name = shown.and_then(|u| self.chat.hub.name_of(u));
        let message = match state {
            "overflowed" => def.as_ref().map(|d| d.closed_message.clone()).filter(|m| !m.is_empty()),
            "waiting" => def.as_ref().map(|d| d.welcome.clone()).filter(|m| !m.is_empty()),
            _ => None,
        };
        Some(ChatView {
            chat: chat.0 as i64,
            queue: record.queue.clone(),
            queue_name: def.map(|d| d.display_name).unwrap_or_default(),
            state,
            position,
            estimated_wait_s,
            expert,
            expert_name,
            conversation: record.conversation,
            message,
            question: record.question.clone(),
            answers: record.answers.clone(),
            wrap_up_until,
        })
    }
}

/// A chat kept as an offline message, as its seeker sees it.
pub(crate) fn offline_view(def: &sb_core::queue::QueueDef, record: &QueueChatRecord) -> ChatView {
    let message = if def.offline_message.is_empty() {
        sb_core::queue::DEFAULT_OFFLINE_MESSAGE.to_string()
    } else {
        def.offline_message.clone()
    };
    ChatView {
        chat: record.id.0 as i64,
        queue: def.id.clone(),
        queue_name: def.display_name.clone(),
        state: "offline",
        position: None,
        estimated_wait_s: None,
        expert: None,
        expert_name: None,
        conversation: record.conversation,
        message: Some(message),
        question: record.question.clone(),
        answers: record.answers.clone(),
        wrap_up_until: None,
    }
}
