//! Expert queues in storage: queue definitions, queue chats and their lifecycle events,
//! offline messages, surveys and wrap-ups.

use super::{OfflineChat, StoreResult};
use crate::clock::Millis;
use crate::conversation::ConversationId;
use crate::directory::UserId;
use crate::queue::{ChatId, ChatTimes, QueueChatRecord, QueueDef, QueueEvent};
use async_trait::async_trait;

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Create or replace a queue and its members.
    async fn save_queue(&self, queue: &QueueDef, now: Millis) -> StoreResult<()>;
    async fn queues(&self) -> StoreResult<Vec<QueueDef>>;
    async fn delete_queue(&self, id: &str) -> StoreResult<()>;
    /// Open a queue chat: its `queue` conversation with the seeker as member, and its
    /// record (state `queued`), in one transaction.
    async fn open_queue_chat(
        &self,
        queue: &str,
        title: &str,
        seeker: UserId,
        question: &str,
        answers: &[(String, String)],
        now: Millis,
    ) -> StoreResult<(ConversationId, ChatId)>;
    async fn queue_chat(&self, id: ChatId) -> StoreResult<Option<QueueChatRecord>>;
    /// Queue chats still waiting or assigned (to restore after a restart).
    async fn open_queue_chats(&self) -> StoreResult<Vec<QueueChatRecord>>;
    /// For statistics: lifecycle event counts by kind, and the times of the chats requested,
    /// in `[from, to)`.
    async fn queue_history(
        &self,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<(Vec<(String, u64)>, Vec<ChatTimes>)>;
    /// The seeker's rating (1–5) and comment after a queue chat.
    async fn save_survey(&self, chat: ChatId, rating: u8, comment: &str) -> StoreResult<()>;
    /// The expert's wrap-up of a chat: tags and a note.
    async fn save_wrap_up(&self, chat: ChatId, tags: &[String], note: &str) -> StoreResult<()>;
    /// A queue's offline messages (chats kept for a later answer), newest first.
    async fn offline_messages(&self, queue: &str, limit: u32) -> StoreResult<Vec<OfflineChat>>;
    /// An expert takes an offline message to answer it; false when someone else has it.
    async fn take_offline(&self, chat: ChatId, expert: UserId, now: Millis) -> StoreResult<bool>;
    /// Store lifecycle events and apply them to the chats' records.
    async fn record_queue_events(&self, events: &[(String, QueueEvent)], now: Millis) -> StoreResult<()>;
}
