//! Alerts in storage: alerts, their per-recipient deliveries and escalation, and the intake
//! record of each mail taken from a mailbox.

use super::StoreResult;
use crate::clock::Millis;
use crate::directory::UserId;
use async_trait::async_trait;

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Store an alert and a pending delivery for each recipient, in one transaction.
    async fn create_alert(
        &self,
        alert: &crate::alerts::NewAlert,
        recipients: &[UserId],
        now: Millis,
    ) -> StoreResult<crate::alerts::Alert>;
    /// `create_alert` for a mail: the mail's intake record (outcome `alert`, with the new
    /// alert's id) is written in the same transaction, so a stored alert and "this mail is
    /// done" cannot part.
    async fn create_mail_alert(
        &self,
        alert: &crate::alerts::NewAlert,
        recipients: &[UserId],
        intake: &crate::alerts::MailIntake,
        now: Millis,
    ) -> StoreResult<crate::alerts::Alert>;
    /// The intake record of a mail, if it was taken before.
    async fn mail_intake(&self, mailbox: &str, key: &str) -> StoreResult<Option<crate::alerts::MailIntake>>;
    /// Record a mail that did not become a new alert (refused, duplicate). A record already
    /// there is kept.
    async fn record_mail_intake(&self, intake: &crate::alerts::MailIntake) -> StoreResult<()>;
    /// Forget intake records older than `before` (a mail is long gone from its mailbox by
    /// then). Returns how many.
    async fn prune_mail_intake(&self, before: Millis) -> StoreResult<u64>;
    /// Intake records, newest first, optionally of one mailbox.
    async fn mail_intakes(&self, mailbox: Option<&str>, limit: i64) -> StoreResult<Vec<crate::alerts::MailIntake>>;
    /// More recipients for an alert (escalation round `round`); existing ones are kept.
    async fn add_alert_deliveries(&self, alert: i64, recipients: &[UserId], round: i32, now: Millis)
        -> StoreResult<()>;
    async fn alert(&self, id: i64) -> StoreResult<Option<(crate::alerts::Alert, Vec<crate::alerts::Delivery>)>>;
    /// Newest first, ids below `before`, optionally of one source.
    async fn alerts(
        &self,
        source: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<crate::alerts::AlertSummary>>;
    /// An unexpired alert of `source` with this deduplication key.
    async fn open_alert_by_key(&self, source: &str, key: &str, now: Millis) -> StoreResult<Option<i64>>;
    /// Pending deliveries of unexpired alerts, of one user or everyone, oldest first.
    async fn pending_deliveries(
        &self,
        user: Option<UserId>,
        now: Millis,
        limit: i64,
    ) -> StoreResult<Vec<crate::alerts::Delivery>>;
    async fn set_deliveries(&self, updates: &[crate::alerts::DeliveryUpdate], now: Millis) -> StoreResult<()>;
    /// The user read their alerts conversation up to `up_to`: delivered alerts there become
    /// read. Returns those alerts.
    async fn alerts_read(&self, user: UserId, conversation: i64, up_to: i64, now: Millis) -> StoreResult<Vec<i64>>;
    async fn expire_alerts(&self, now: Millis) -> StoreResult<u64>;
    async fn escalations_due(&self, now: Millis) -> StoreResult<Vec<crate::alerts::Alert>>;
    /// False when it was escalated already (by someone else).
    async fn mark_escalated(&self, id: i64, now: Millis) -> StoreResult<bool>;
    async fn latest_unacked_alert(&self, user: UserId) -> StoreResult<Option<i64>>;
}
