//! Compliance rules and records in storage: ethical walls, violations, the audit log,
//! disclaimer rules.

use super::{AuditEntry, StoreResult};
use async_trait::async_trait;

#[async_trait]
pub trait ComplianceStore: Send + Sync {
    async fn walls(&self) -> StoreResult<Vec<crate::walls::Wall>>;
    /// Create (id 0) or update a wall; returns it as stored.
    async fn save_wall(&self, wall: &crate::walls::Wall) -> StoreResult<crate::walls::Wall>;
    /// A refused act's violation and its archive record, in one transaction.
    async fn record_violation(
        &self,
        v: &crate::walls::Violation,
        archived: &crate::archive::ArchiveEntry,
    ) -> StoreResult<i64>;
    async fn violations(&self, limit: i64) -> StoreResult<Vec<crate::walls::Violation>>;
    async fn audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Newest first, ids below `before`.
    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    async fn disclaimers(&self) -> StoreResult<Vec<crate::disclaimers::Disclaimer>>;
    /// Create (id 0) or update a disclaimer rule.
    async fn save_disclaimer(&self, d: &crate::disclaimers::Disclaimer) -> StoreResult<crate::disclaimers::Disclaimer>;
    /// Was this pair-per-day disclaimer shown that day? (Marks are written with the message
    /// that showed it: `PolicyRecord::DisclaimerShown`.)
    async fn disclaimer_seen(&self, rule: i64, pair: &str, day: i64) -> StoreResult<bool>;
}
