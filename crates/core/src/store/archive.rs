//! The compliance archive in storage: appending and reading records, e-discovery search,
//! retention policies, legal holds and purging.

use super::StoreResult;
use crate::clock::Millis;
use crate::directory::{GroupId, UserId};
use async_trait::async_trait;

#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Append records to the compliance archive (what is not a conversation event: wall
    /// attempts, …). Conversation events and queue transitions are archived by the calls
    /// that store them, in the same transaction.
    async fn archive(&self, entries: &[crate::archive::ArchiveEntry]) -> StoreResult<()>;
    /// Archive records after `after`, in id order (for verification and export).
    async fn archive_records(&self, after: i64, limit: i64) -> StoreResult<Vec<crate::archive::ArchiveRecord>>;
    /// E-discovery: archived records with text matching the query, newest first.
    async fn search_archive(
        &self,
        query: &crate::archive::ArchiveQuery,
    ) -> StoreResult<Vec<crate::archive::ArchiveHit>>;
    /// One conversation as archived (oldest first), and everyone who took part in it.
    async fn archived_conversation(
        &self,
        conversation: i64,
    ) -> StoreResult<(Vec<crate::archive::ArchiveRecord>, Vec<UserId>)>;
    /// Everyone who took part in an archived conversation.
    async fn archived_participants(&self, conversation: i64) -> StoreResult<Vec<UserId>>;
    /// Retention policies: (group, or None for everyone; days).
    async fn retention_policies(&self) -> StoreResult<Vec<(Option<GroupId>, i64)>>;
    async fn set_retention_policies(&self, policies: &[(Option<GroupId>, i64)]) -> StoreResult<()>;
    /// Every legal hold, newest first.
    async fn legal_holds(&self) -> StoreResult<Vec<crate::archive::LegalHold>>;
    async fn create_legal_hold(&self, hold: &crate::archive::LegalHold) -> StoreResult<i64>;
    /// False when there is no such active hold.
    async fn release_legal_hold(&self, id: i64, now: Millis) -> StoreResult<bool>;
    /// Conversations with unpurged archived content older than `before`.
    async fn purge_candidates(&self, before: Millis) -> StoreResult<Vec<i64>>;
    /// Purge content older than `cutoff` of a conversation (or, with `None`, of the records
    /// that belong to no conversation): archive bodies go (their hashes stay), log events
    /// are deleted. Returns (archive records purged, events deleted).
    async fn purge(&self, conversation: Option<i64>, cutoff: Millis, now: Millis) -> StoreResult<(u64, u64)>;
}
