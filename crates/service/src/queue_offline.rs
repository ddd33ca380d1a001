//! Offline messages: queue chats nobody could take, kept for the queue's experts, who see
//! them (not a seeker they are walled from) and take one to answer it.

use crate::hub::Outbound;
use crate::queue_chats::OfflineMessage;
use crate::{Frame, Result, Service};
use sb_core::policy::Act;
use sb_core::queue::{ChatId, ChatRecordState};
use sb_core::{ConversationId, CoreError, EventKind, User};

impl Service {
    /// A queue's offline messages, newest first (its experts and managers).
    pub async fn offline_messages(&self, user: &User, queue: &str) -> Result<Vec<OfflineMessage>> {
        let def = self.queues.find(queue).ok_or(CoreError::NotFound("queue"))?;
        if !def.staffed_by(user) {
            return Err(
                CoreError::Forbidden("only the queue's experts and managers see its offline messages".into()).into()
            );
        }
        let mut out = Vec::new();
        let policy = self.policy();
        for o in self.store.offline_messages(&def.id, 200).await? {
            // Nobody sees a seeker they are walled from (`Act::Observe`).
            if !policy.may_see(user.id, o.record.seeker) {
                continue;
            }
            let seeker = self.store.user(o.record.seeker).await?;
            let taken_by = match o.taken_by {
                Some(u) => self.store.user(u).await?.map(|u| u.address),
                None => None,
            };
            out.push(OfflineMessage {
                seeker: seeker.as_ref().map(|u| u.address.clone()),
                seeker_name: seeker.map(|u| u.display_name).unwrap_or_default(),
                taken_by,
                taken_at: o.taken_at,
                record: o.record,
            });
        }
        Ok(out)
    }

    /// An expert of the queue takes an offline message to answer it: they join the seeker's
    /// conversation. Nobody else can take it after them.
    pub async fn take_offline_message(&self, expert: &User, chat: ChatId) -> Result<ConversationId> {
        let record = self
            .store
            .queue_chat(chat)
            .await?
            .filter(|r| r.state == ChatRecordState::Offline)
            .ok_or(CoreError::NotFound("offline message"))?;
        let def = self.queues.defs().iter().find(|d| d.id == record.queue).cloned();
        if !def.is_some_and(|d| d.staffed_by(expert)) {
            return Err(CoreError::Forbidden("you are not an expert of this queue".into()).into());
        }
        let admission = self.judge(&Act::Meet { seeker: record.seeker, expert: expert.id }).await?;
        if !self.store.take_offline(chat, expert.id, self.now()).await? {
            return Err(CoreError::Conflict("another expert has taken this message".into()).into());
        }
        let conversation = self.conversation(record.conversation).await?;
        if !conversation.members.iter().any(|m| m.id == expert.id) {
            let joined = self.new_event(record.conversation, EventKind::Joined, Some(expert), String::new(), None);
            self.append(admission, vec![joined], None).await?;
        }
        if let Ok(c) = self.conversation(record.conversation).await {
            let frame = Outbound::new(Frame::Conversation(c.as_ref().clone()));
            self.chat.hub.send_to_users(c.members.iter().map(|m| m.id), &frame, None);
        }
        Ok(record.conversation)
    }
}
