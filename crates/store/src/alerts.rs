//! Alerts in storage: alerts and their per-recipient delivery records (the dispatch queue),
//! escalation, and the intake record of each mail taken from a mailbox.

use crate::write::WriteTx;
use crate::{unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::alerts::{
    Alert, AlertSummary, Audience, Delivery, DeliveryState, Escalation, MailIntake, NewAlert, Priority,
};
use sb_core::store::{AlertStore, StoreResult};
use sb_core::{Millis, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

const ALERT_COLS: &str =
    "id, source, title, body, priority, audience, ttl_ms, hold_offline, ack_required, escalation, \
                          dedup_key, created_at, expires_at, escalated_at";

const DELIVERY_COLS: &str =
    "alert_id, user_id, state, round, conversation_id, event_id, created_at, delivered_at, read_at, acked_at, detail";

fn alert_from_row(r: &AnyRow) -> Result<Alert, sqlx::Error> {
    let priority: String = r.try_get("priority")?;
    let audience: String = r.try_get("audience")?;
    let escalation: Option<String> = r.try_get("escalation")?;
    let bad = |e: serde_json::Error| sqlx::Error::Decode(e.to_string().into());
    Ok(Alert {
        id: r.try_get("id")?,
        alert: NewAlert {
            source: r.try_get("source")?,
            title: r.try_get("title")?,
            body: r.try_get("body")?,
            priority: Priority::parse(&priority).unwrap_or(Priority::Normal),
            audience: serde_json::from_str::<Audience>(&audience).map_err(bad)?,
            ttl_ms: r.try_get("ttl_ms")?,
            hold_offline: r.try_get::<i64, _>("hold_offline")? != 0,
            ack_required: r.try_get::<i64, _>("ack_required")? != 0,
            escalation: match escalation {
                Some(e) => Some(serde_json::from_str::<Escalation>(&e).map_err(bad)?),
                None => None,
            },
            dedup_key: r.try_get("dedup_key")?,
        },
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        escalated_at: r.try_get("escalated_at")?,
    })
}

const INTAKE_COLS: &str = "mailbox, mail_key, sender, subject, outcome, alert_id, detail, at";

fn intake_from_row(r: &AnyRow) -> Result<MailIntake, sqlx::Error> {
    Ok(MailIntake {
        mailbox: r.try_get("mailbox")?,
        key: r.try_get("mail_key")?,
        sender: r.try_get("sender")?,
        subject: r.try_get("subject")?,
        outcome: r.try_get("outcome")?,
        alert: r.try_get("alert_id")?,
        detail: r.try_get("detail")?,
        at: r.try_get("at")?,
    })
}

fn delivery_from_row(r: &AnyRow) -> Result<Delivery, sqlx::Error> {
    let state: String = r.try_get("state")?;
    Ok(Delivery {
        alert: r.try_get("alert_id")?,
        user: UserId(r.try_get("user_id")?),
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Failed),
        round: r.try_get::<i64, _>("round")? as i32,
        conversation: r.try_get("conversation_id")?,
        event: r.try_get("event_id")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
        read_at: r.try_get("read_at")?,
        acked_at: r.try_get("acked_at")?,
        detail: r.try_get("detail")?,
    })
}

impl SqlStore {
    /// The alert and a pending delivery per recipient, in one transaction.
    /// With `intake`, the mail's intake record (outcome `alert`) joins the transaction.
    async fn create_alert_impl(
        &self,
        a: &NewAlert,
        recipients: &[UserId],
        intake: Option<&MailIntake>,
        now: i64,
    ) -> StoreResult<Alert> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO alerts (source, title, body, priority, audience, ttl_ms, hold_offline, ack_required, escalation, \
             dedup_key, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {ALERT_COLS}"
        ))
        .bind(a.source.clone())
        .bind(a.title.clone())
        .bind(a.body.clone())
        .bind(a.priority.as_str())
        .bind(serde_json::to_string(&a.audience).unwrap_or_default())
        .bind(a.ttl_ms)
        .bind(i64::from(a.hold_offline))
        .bind(i64::from(a.ack_required))
        .bind(a.escalation.as_ref().map(|e| serde_json::to_string(e).unwrap_or_default()))
        .bind(a.dedup_key.clone())
        .bind(now)
        .bind(now + a.ttl_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let alert = alert_from_row(&row).map_err(unavailable)?;
        self.add_deliveries_in(&mut tx, alert.id, recipients, 0, now).await?;
        if let Some(i) = intake {
            let done = MailIntake { outcome: "alert".into(), alert: Some(alert.id), ..i.clone() };
            self.insert_mail_intake(&mut tx, &done).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(alert)
    }

    async fn insert_mail_intake(&self, tx: &mut WriteTx, i: &MailIntake) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO mail_intake (mailbox, mail_key, sender, subject, outcome, alert_id, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(i.mailbox.clone())
        .bind(i.key.clone())
        .bind(i.sender.clone())
        .bind(i.subject.clone())
        .bind(i.outcome.clone())
        .bind(i.alert)
        .bind(i.detail.clone())
        .bind(i.at)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn add_deliveries_in(
        &self,
        tx: &mut WriteTx,
        alert: i64,
        recipients: &[UserId],
        round: i32,
        now: i64,
    ) -> StoreResult<()> {
        for chunk in recipients.chunks(1000) {
            let rows = (0..chunk.len())
                .map(|i| {
                    format!(
                        "({}, {}, 'pending', {}, {})",
                        self.ph(3 * i + 1),
                        self.ph(3 * i + 2),
                        round,
                        self.ph(3 * i + 3)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO alert_deliveries (alert_id, user_id, state, round, created_at) VALUES {rows} ON CONFLICT DO NOTHING"
            );
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q.bind(alert).bind(u.0).bind(now);
            }
            q.execute(&mut **tx).await.map_err(unavailable)?;
        }
        Ok(())
    }
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn create_alert(
        &self,
        a: &sb_core::alerts::NewAlert,
        recipients: &[UserId],
        now: Millis,
    ) -> StoreResult<sb_core::alerts::Alert> {
        self.create_alert_impl(a, recipients, None, now).await
    }

    async fn create_mail_alert(
        &self,
        a: &sb_core::alerts::NewAlert,
        recipients: &[UserId],
        intake: &sb_core::alerts::MailIntake,
        now: Millis,
    ) -> StoreResult<sb_core::alerts::Alert> {
        self.create_alert_impl(a, recipients, Some(intake), now).await
    }

    async fn mail_intake(&self, mailbox: &str, key: &str) -> StoreResult<Option<MailIntake>> {
        let row = sqlx::query(&format!("SELECT {INTAKE_COLS} FROM mail_intake WHERE mailbox = $1 AND mail_key = $2"))
            .bind(mailbox.to_string())
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| intake_from_row(&r)).transpose().map_err(unavailable)
    }

    async fn record_mail_intake(&self, intake: &MailIntake) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        self.insert_mail_intake(&mut tx, intake).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn prune_mail_intake(&self, before: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM mail_intake WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        tx.commit().await.map_err(unavailable)?;
        Ok(n)
    }

    async fn mail_intakes(&self, mailbox: Option<&str>, limit: i64) -> StoreResult<Vec<MailIntake>> {
        let filter = if mailbox.is_some() { "WHERE mailbox = $1" } else { "" };
        let limit_ph = if mailbox.is_some() { "$2" } else { "$1" };
        let sql = format!("SELECT {INTAKE_COLS} FROM mail_intake {filter} ORDER BY at DESC, mail_key LIMIT {limit_ph}");
        let mut q = sqlx::query(&sql);
        if let Some(m) = mailbox {
            q = q.bind(m.to_string());
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(intake_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn add_alert_deliveries(
        &self,
        alert: i64,
        recipients: &[UserId],
        round: i32,
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        self.add_deliveries_in(&mut tx, alert, recipients, round, now).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn alert(&self, id: i64) -> StoreResult<Option<(Alert, Vec<Delivery>)>> {
        let Some(row) = sqlx::query(&format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let alert = alert_from_row(&row).map_err(unavailable)?;
        let rows =
            sqlx::query(&format!("SELECT {DELIVERY_COLS} FROM alert_deliveries WHERE alert_id = $1 ORDER BY user_id"))
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        let deliveries = rows.iter().map(delivery_from_row).collect::<Result<_, _>>().map_err(unavailable)?;
        Ok(Some((alert, deliveries)))
    }

    async fn alerts(&self, source: Option<&str>, before: Option<i64>, limit: i64) -> StoreResult<Vec<AlertSummary>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE id < $1 AND ($2 = '' OR source = $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(source.unwrap_or("").to_string())
        .bind(source.unwrap_or("").to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let alerts: Vec<Alert> = rows.iter().map(alert_from_row).collect::<Result<_, _>>().map_err(unavailable)?;
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = alerts.iter().map(|a| a.id.to_string()).collect::<Vec<_>>().join(",");
        let counts = sqlx::query(&format!(
            "SELECT alert_id, state, COUNT(*) AS n FROM alert_deliveries WHERE alert_id IN ({ids}) GROUP BY alert_id, state"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(alerts
            .into_iter()
            .map(|alert| {
                let counts = counts
                    .iter()
                    .filter(|r| r.try_get::<i64, _>("alert_id").ok() == Some(alert.id))
                    .filter_map(|r| {
                        let state: String = r.try_get("state").ok()?;
                        Some((DeliveryState::parse(&state)?, r.try_get::<i64, _>("n").ok()? as u64))
                    })
                    .collect();
                AlertSummary { alert, counts }
            })
            .collect())
    }

    async fn open_alert_by_key(&self, source: &str, key: &str, now: Millis) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM alerts WHERE source = $1 AND dedup_key = $2 AND expires_at > $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(source.to_string())
        .bind(key.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Pending deliveries of unexpired alerts (for one user, or all), oldest first.
    async fn pending_deliveries(&self, user: Option<UserId>, now: Millis, limit: i64) -> StoreResult<Vec<Delivery>> {
        // Two statements, not one with "(user = 0 OR d.user_id = user)": that form cannot use
        // the (user_id, state) index, and every sign-in scanned all pending deliveries.
        let cols = DELIVERY_COLS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let (who, limit_ph) = if user.is_some() { ("AND d.user_id = $2", "$3") } else { ("", "$2") };
        let sql = format!(
            "SELECT {cols} FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
             WHERE d.state = 'pending' {who} AND a.expires_at > $1 ORDER BY d.alert_id, d.user_id LIMIT {limit_ph}"
        );
        let mut q = sqlx::query(&sql).bind(now);
        if let Some(u) = user {
            q = q.bind(u.0);
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(delivery_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    /// Set deliveries' state (and the matching time), e.g. delivered with their event.
    async fn set_deliveries(&self, updates: &[sb_core::alerts::DeliveryUpdate], now: Millis) -> StoreResult<()> {
        // Grouped by (alert, state, detail): one statement per few hundred people, joining
        // their (user, conversation, event) triples — a fan-out's records in a handful of
        // statements instead of one each.
        let mut groups: Vec<(i64, DeliveryState, &str, Vec<&sb_core::alerts::DeliveryUpdate>)> = Vec::new();
        let mut group_of: std::collections::HashMap<(i64, &str, &str), usize> = std::collections::HashMap::new();
        for u in updates {
            let key = (u.alert, u.state.as_str(), u.detail.as_str());
            match group_of.get(&key) {
                Some(&i) => groups[i].3.push(u),
                None => {
                    group_of.insert(key, groups.len());
                    groups.push((u.alert, u.state, &u.detail, vec![u]));
                }
            }
        }
        if groups.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (alert, state, detail, members) in groups {
            let time_col = match state {
                DeliveryState::Delivered => Some("delivered_at"),
                DeliveryState::Read => Some("read_at"),
                DeliveryState::Acknowledged => Some("acked_at"),
                _ => None,
            };
            for chunk in members.chunks(300) {
                // Placeholders numbered in the order they appear (SQLite binds `?` by position).
                let mut n = 0;
                let mut next = || {
                    n += 1;
                    self.ph(n)
                };
                let state_ph = next();
                let time =
                    time_col.map(|c| format!(", {c} = COALESCE(alert_deliveries.{c}, {})", next())).unwrap_or_default();
                let detail_ph = next();
                let values = chunk
                    .iter()
                    .map(|_| format!("({}, {}, {})", next(), next(), next()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let alert_ph = next();
                let sql = format!(
                    "UPDATE alert_deliveries SET state = {state_ph}{time}, \
                     conversation_id = COALESCE(v.column2, alert_deliveries.conversation_id), \
                     event_id = COALESCE(v.column3, alert_deliveries.event_id), detail = {detail_ph} \
                     FROM (VALUES {values}) AS v WHERE alert_deliveries.alert_id = {alert_ph} AND alert_deliveries.user_id = v.column1"
                );
                let mut q = sqlx::query(&sql).bind(state.as_str());
                if time_col.is_some() {
                    q = q.bind(now);
                }
                q = q.bind(detail.to_string());
                for u in chunk {
                    q = q.bind(u.user.0).bind(u.conversation).bind(u.event);
                }
                q.bind(alert).execute(&mut *tx).await.map_err(unavailable)?;
            }
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Delivered alerts whose message the user has now read (their conversation read up to
    /// `up_to`): marked read. Returns the alerts touched.
    async fn alerts_read(&self, user: UserId, conversation: i64, up_to: i64, now: Millis) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE alert_deliveries SET state = 'read', read_at = $1 WHERE user_id = $2 AND conversation_id = $3 \
             AND event_id <= $4 AND state = 'delivered' RETURNING alert_id",
        )
        .bind(now)
        .bind(user.0)
        .bind(conversation)
        .bind(up_to)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(ids)
    }

    /// Pending deliveries of alerts past their time: expired. Returns how many.
    async fn expire_alerts(&self, now: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE alert_deliveries SET state = 'expired', detail = 'not delivered within the time to live' \
             WHERE state = 'pending' AND alert_id IN (SELECT id FROM alerts WHERE expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        tx.commit().await.map_err(unavailable)?;
        Ok(n)
    }

    /// Alerts due for escalation: acknowledgement asked, not escalated yet, past their
    /// escalation time, and someone has not acknowledged.
    async fn escalations_due(&self, now: Millis) -> StoreResult<Vec<Alert>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE ack_required = 1 AND escalation IS NOT NULL AND escalated_at IS NULL \
             AND expires_at > $1 AND EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = alerts.id \
             AND d.state IN ('pending', 'delivered', 'read'))"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let alerts: Vec<Alert> = rows.iter().map(alert_from_row).collect::<Result<_, _>>().map_err(unavailable)?;
        Ok(alerts
            .into_iter()
            .filter(|a| a.alert.escalation.as_ref().is_some_and(|e| a.created_at + e.after_ms() <= now))
            .collect())
    }

    async fn mark_escalated(&self, id: i64, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE alerts SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        tx.commit().await.map_err(unavailable)?;
        Ok(n == 1)
    }

    /// The user's newest alert that asks for acknowledgement and is not acknowledged.
    async fn latest_unacked_alert(&self, user: UserId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "SELECT d.alert_id FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id WHERE d.user_id = $1 \
             AND a.ack_required = 1 AND d.state IN ('delivered', 'read') ORDER BY d.alert_id DESC LIMIT 1",
        )
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }
}
