//! Webhooks in storage: subscribers to queue lifecycle events, and the deliveries queued for
//! them.

use super::{StoreResult, Webhook, WebhookDelivery};
use crate::clock::Millis;
use async_trait::async_trait;

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, queue: Option<&str>, url: &str, secret: &str, now: Millis) -> StoreResult<Webhook>;
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn delete_webhook(&self, id: i64) -> StoreResult<()>;
    /// Queue (webhook, event kind, JSON payload) deliveries, due now.
    async fn enqueue_deliveries(&self, deliveries: &[(i64, String, String)], now: Millis) -> StoreResult<()>;
    /// Pending deliveries whose time has come, oldest first.
    async fn due_deliveries(&self, now: Millis, limit: i64) -> StoreResult<Vec<WebhookDelivery>>;
    /// Record an attempt: delivered, or retry at `retry_at`, or (None) failed for good.
    async fn finish_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i64>,
        error: Option<&str>,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> StoreResult<()>;
    async fn deliveries(&self, webhook: i64, limit: i64) -> StoreResult<Vec<WebhookDelivery>>;
}
