//! Webhooks in storage: subscribers to queue lifecycle events, and the deliveries queued for
//! them (pending, retried, delivered or failed).

use crate::{decode, unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::store::{StoreResult, Webhook, WebhookDelivery, WebhookStore};
use sb_core::{Millis, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

const DELIVERY_COLS: &str =
    "id, webhook_id, event, payload, state, attempts, last_status, last_error, next_attempt_at, created_at, delivered_at";

fn delivery_from_row(r: &AnyRow) -> Result<WebhookDelivery, sqlx::Error> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        webhook: r.try_get("webhook_id")?,
        event: r.try_get("event")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn webhook_from_row(r: &AnyRow) -> Result<Webhook, sqlx::Error> {
    Ok(Webhook {
        id: r.try_get("id")?,
        queue: r.try_get("queue_id")?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook(&self, queue: Option<&str>, url: &str, secret: &str, now: Millis) -> StoreResult<Webhook> {
        let row = sqlx::query(
            "INSERT INTO webhooks (queue_id, url, secret, created_at) VALUES ($1, $2, $3, $4) RETURNING id, queue_id, url, secret, created_at",
        )
        .bind(queue.map(str::to_string))
        .bind(url)
        .bind(secret)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(unavailable)?;
        webhook_from_row(&row).map_err(unavailable)
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT id, queue_id, url, secret, created_at FROM webhooks ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, webhook_from_row)
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let r =
            sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn enqueue_deliveries(&self, deliveries: &[(i64, String, String)], now: Millis) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (hook, event, payload) in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
            )
            .bind(*hook)
            .bind(event)
            .bind(payload)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn due_deliveries(&self, now: Millis, limit: i64) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, delivery_from_row)
    }

    async fn finish_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i64>,
        error: Option<&str>,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> StoreResult<()> {
        let state = if delivered {
            "delivered"
        } else if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        self.exec_one(
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
                 next_attempt_at = $4, delivered_at = $5 WHERE id = $6",
            )
            .bind(state)
            .bind(status)
            .bind(error.map(str::to_string))
            .bind(retry_at.unwrap_or(now))
            .bind(delivered.then_some(now))
            .bind(id),
        )
        .await
    }

    async fn deliveries(&self, webhook: i64, limit: i64) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(webhook)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, delivery_from_row)
    }
}
