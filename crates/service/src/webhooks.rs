//! Webhooks for queue lifecycle events: HMAC-signed JSON POSTs, retried with exponential
//! backoff, every attempt in a delivery log. Deliveries are stored first (so a restart
//! loses none) and sent by a background task.

use crate::{auth, Result, Service};
use hmac::{Hmac, Mac};
use sb_core::queue::QueueEvent;
use sb_core::store::Webhook;
use sb_core::{CoreError, Millis};
use sha2::Sha256;

/// Attempts before a delivery is marked failed.
pub const MAX_ATTEMPTS: i64 = 8;

/// `sha256=<hex>` of HMAC-SHA256(secret, body): what `X-Switchboard-Signature` carries.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Backoff after the n-th failed attempt (1-based): 1 s, 2 s, 4 s, … at most an hour.
pub fn backoff_ms(attempt: i64) -> Millis {
    1000 * (1i64 << (attempt.clamp(1, 13) - 1)).min(3600)
}

/// The webhooks component's own state: the hooks as last read, and the HTTP client that
/// delivers to them (its own task sends what is due, a few times a second).
pub(crate) struct Webhooks {
    pub(crate) client: reqwest::Client,
    pub(crate) list: std::sync::RwLock<std::sync::Arc<Vec<sb_core::store::Webhook>>>,
}

impl Webhooks {
    pub(crate) fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client, list: Default::default() }
    }
}

impl Service {
    /// Subscribe `url` to the lifecycle events of one queue (or all). The secret that signs
    /// the deliveries is returned once.
    pub async fn create_webhook(&self, queue: Option<&str>, url: &str) -> Result<Webhook> {
        let url = url.trim();
        if !url.starts_with("http://") || url.len() > 2000 || url.contains(char::is_whitespace) {
            return Err(CoreError::Invalid(
                "a webhook URL is http://host[:port]/path (this build sends no TLS; put a TLS proxy in front for https)".into(),
            )
            .into());
        }
        let queue = match queue {
            Some(q) => Some(self.queues.find(q).ok_or(CoreError::Invalid(format!("no such queue: {q}")))?.id),
            None => None,
        };
        let hook = self.store.create_webhook(queue.as_deref(), url, &auth::new_token("whsec_"), self.now()).await?;
        self.reload_webhooks().await?;
        Ok(hook)
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.store.webhooks().await?)
    }

    /// A webhook's delivery log, newest first.
    pub async fn webhook_deliveries(&self, id: i64, limit: i64) -> Result<Vec<sb_core::store::WebhookDelivery>> {
        Ok(self.store.deliveries(id, limit).await?)
    }

    pub async fn delete_webhook(&self, id: i64) -> Result<()> {
        self.store.delete_webhook(id).await?;
        self.reload_webhooks().await
    }

    pub(crate) async fn reload_webhooks(&self) -> Result<()> {
        let hooks = self.store.webhooks().await?;
        *self.webhooks.list.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(hooks);
        Ok(())
    }

    /// Queue a delivery of each event to each webhook that wants it.
    pub(crate) async fn enqueue_webhooks(&self, events: &[(String, QueueEvent)], now: Millis) {
        let hooks = self.webhooks.list.read().unwrap_or_else(|e| e.into_inner()).clone();
        if hooks.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (queue, e) in events {
            let expert = e.expert().and_then(|u| self.chat.hub.address_of(u)).map(|a| a.to_string());
            let payload = serde_json::json!({
                "event": e.kind(), "queue": queue, "chat": e.chat().0, "expert": expert, "at": now,
            })
            .to_string();
            for h in hooks.iter().filter(|h| h.queue.as_deref().is_none_or(|q| q == queue)) {
                out.push((h.id, e.kind().to_string(), payload.clone()));
            }
        }
        if let Err(err) = self.store.enqueue_deliveries(&out, now).await {
            tracing::error!(error = %err, "cannot queue webhook deliveries");
        }
    }

    /// Send what is due; called by the background task a few times a second.
    pub(crate) async fn deliver_webhooks(&self) {
        let now = self.now();
        let due = match self.store.due_deliveries(now, 50).await {
            Ok(d) => d,
            Err(e) => return tracing::warn!(error = %e, "cannot read webhook deliveries"),
        };
        if due.is_empty() {
            return;
        }
        let hooks = self.webhooks.list.read().unwrap_or_else(|e| e.into_inner()).clone();
        let sends = due.into_iter().map(|d| {
            let hook = hooks.iter().find(|h| h.id == d.webhook).cloned();
            async move {
                let Some(hook) = hook else { return (d, None, Some("webhook deleted".to_string())) };
                let result = self
                    .webhooks
                    .client
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .header("x-switchboard-event", &d.event)
                    .header("x-switchboard-delivery", d.id.to_string())
                    .header("x-switchboard-signature", signature(&hook.secret, &d.payload))
                    .body(d.payload.clone())
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().is_success() => (d, Some(i64::from(r.status().as_u16())), None),
                    Ok(r) => {
                        let status = i64::from(r.status().as_u16());
                        (d, Some(status), Some(format!("HTTP {status}")))
                    }
                    Err(e) => (d, None, Some(e.to_string())),
                }
            }
        });
        for (d, status, error) in futures_util::future::join_all(sends).await {
            let attempt = d.attempts + 1;
            let retry_at = (error.is_some() && attempt < MAX_ATTEMPTS).then(|| self.now() + backoff_ms(attempt));
            if let Err(e) =
                self.store.finish_delivery(d.id, error.is_none(), status, error.as_deref(), retry_at, self.now()).await
            {
                tracing::warn!(error = %e, "cannot record a webhook attempt");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_backoff() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!((backoff_ms(1), backoff_ms(2), backoff_ms(3)), (1000, 2000, 4000));
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
