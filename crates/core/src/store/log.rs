//! The conversation log in storage: conversations and their members, the single write path
//! for events (`append_with`), reading the log back, read markers.

use super::{PolicyRecord, StoreResult};
use crate::clock::Millis;
use crate::conversation::{
    Appended, Conversation, ConversationId, ConversationKind, ConversationSummary, Event, EventId, NewEvent,
};
use crate::directory::UserId;
use async_trait::async_trait;

#[async_trait]
pub trait ConversationLog: Send + Sync {
    /// Create a conversation with its first members. For `Direct`, the pair is unique:
    /// an existing conversation's id is returned instead (with `false`).
    async fn create_conversation(
        &self,
        kind: ConversationKind,
        title: &str,
        members: &[UserId],
        now: Millis,
    ) -> StoreResult<(ConversationId, bool)>;
    /// The direct conversations between `one` and each of `others`, made in one
    /// transaction where missing; with `true` for those made now. For fan-out (alerts).
    async fn direct_conversations(
        &self,
        one: UserId,
        others: &[UserId],
        now: Millis,
    ) -> StoreResult<Vec<(Conversation, bool)>>;
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>>;
    /// Every group chat with its members (in joining order), for re-checking walls.
    async fn group_conversations(&self) -> StoreResult<Vec<Conversation>>;
    /// The single write path of the conversation log: stores the batch in one transaction,
    /// in order, assigning ids and per-conversation sequence numbers, applying membership
    /// changes of `Joined`/`Left`, and answering retries (same actor and client id) with the
    /// stored event. When this returns, the batch is durable.
    async fn append_events(&self, batch: &[NewEvent]) -> StoreResult<Vec<Appended>> {
        Ok(self.append_with(batch, &[]).await?.0)
    }
    /// `append_events`, and what the policy asks to be stored with the batch (flagged
    /// wall crossings, disclaimers shown) in the same transaction. Returns the stored
    /// violations' ids too.
    async fn append_with(&self, batch: &[NewEvent], records: &[PolicyRecord])
        -> StoreResult<(Vec<Appended>, Vec<i64>)>;
    /// Events after `after` in the conversations `user` is a member of, oldest first.
    async fn events_after(&self, user: UserId, after: EventId, limit: i64) -> StoreResult<Vec<Event>>;
    /// A page of a conversation's log, oldest first: the newest `limit` events before
    /// `before`, or the oldest `limit` after `after`.
    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<EventId>,
        after: Option<EventId>,
        limit: i64,
    ) -> StoreResult<Vec<Event>>;
    async fn last_event_id(&self) -> StoreResult<EventId>;
    /// Move a read marker forward (never back); returns the marker now in force.
    async fn mark_read(&self, conversation: ConversationId, user: UserId, up_to: EventId) -> StoreResult<EventId>;
}
