//! Compliance in storage: ethical walls, violations (and the policy records kept with an
//! act), the audit log, disclaimer rules.

use crate::write::WriteTx;
use crate::{unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::archive::ArchiveEntry;
use sb_core::store::{AuditEntry, ComplianceStore, PolicyRecord, StoreResult};
use sb_core::walls::{Violation, Wall, WallMode};
use sb_core::{GroupId, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

fn wall_from_row(r: &AnyRow) -> Result<Wall, sqlx::Error> {
    let mode: String = r.try_get("mode")?;
    Ok(Wall {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        group_a: GroupId(r.try_get("group_a")?),
        group_b: GroupId(r.try_get("group_b")?),
        mode: WallMode::parse(&mode).ok_or_else(|| sqlx::Error::Decode(format!("wall mode {mode}").into()))?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn violation_from_row(r: &AnyRow) -> Result<Violation, sqlx::Error> {
    let mode: String = r.try_get("mode")?;
    Ok(Violation {
        id: r.try_get("id")?,
        ts: r.try_get("ts")?,
        wall: r.try_get("wall_id")?,
        mode: WallMode::parse(&mode).unwrap_or(WallMode::Monitor),
        action: r.try_get("action")?,
        actor: UserId(r.try_get("actor_id")?),
        other: UserId(r.try_get("other_id")?),
        conversation: r.try_get("conversation_id")?,
        detail: r.try_get("detail")?,
    })
}

fn audit_from_row(r: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        ts: r.try_get("ts")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        before: r.try_get("before_json")?,
        after: r.try_get("after_json")?,
    })
}

const WALL_COLS: &str = "id, name, group_a, group_b, mode, enabled, created_at, updated_at";

fn audience_str(a: &sb_core::disclaimers::Audience) -> String {
    use sb_core::disclaimers::Audience;
    match a {
        Audience::All => "all".into(),
        Audience::Guests => "guests".into(),
        Audience::Group(g) => format!("group:{}", g.0),
    }
}

fn disclaimer_from_row(r: &AnyRow) -> Result<sb_core::disclaimers::Disclaimer, sqlx::Error> {
    use sb_core::disclaimers::{Audience, Disclaimer, Frequency};
    let audience: String = r.try_get("audience")?;
    let frequency: String = r.try_get("frequency")?;
    let texts: String = r.try_get("texts")?;
    let kinds: String = r.try_get("kinds")?;
    Ok(Disclaimer {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kinds: kinds.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
        audience: match audience.as_str() {
            "guests" => Audience::Guests,
            a => match a.strip_prefix("group:").and_then(|g| g.parse().ok()) {
                Some(g) => Audience::Group(GroupId(g)),
                None => Audience::All,
            },
        },
        frequency: Frequency::parse(&frequency).unwrap_or(Frequency::Conversation),
        texts: serde_json::from_str(&texts).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
        fallback: r.try_get("fallback")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const DISCLAIMER_COLS: &str = "id, name, kinds, audience, frequency, texts, fallback, enabled, created_at, updated_at";

impl SqlStore {
    async fn violation_in(&self, tx: &mut WriteTx, v: &Violation) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO wall_violations (ts, wall_id, mode, action, actor_id, other_id, conversation_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(v.ts)
        .bind(v.wall)
        .bind(v.mode.as_str())
        .bind(v.action.clone())
        .bind(v.actor.0)
        .bind(v.other.0)
        .bind(v.conversation)
        .bind(v.detail.clone())
        .fetch_one(&mut **tx)
        .await
        .map_err(unavailable)
    }

    /// Policy records inside the act's transaction; the ids of the violations stored.
    pub(crate) async fn policy_records_in(&self, tx: &mut WriteTx, records: &[PolicyRecord]) -> StoreResult<Vec<i64>> {
        let mut ids = Vec::new();
        for r in records {
            match r {
                PolicyRecord::Violation(v, archived) => {
                    ids.push(self.violation_in(tx, v).await?);
                    self.archive_in(tx, std::slice::from_ref(archived)).await?;
                }
                PolicyRecord::DisclaimerShown { rule, pair, day } => {
                    sqlx::query(
                        "INSERT INTO disclaimer_shown (rule_id, pair_key, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(*rule)
                    .bind(pair.clone())
                    .bind(*day)
                    .execute(&mut **tx)
                    .await
                    .map_err(unavailable)?;
                }
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl ComplianceStore for SqlStore {
    async fn walls(&self) -> StoreResult<Vec<Wall>> {
        let rows = sqlx::query(&format!("SELECT {WALL_COLS} FROM walls ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(wall_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn save_wall(&self, w: &Wall) -> StoreResult<Wall> {
        let mut tx = self.begin_write().await?;
        let row = if w.id == 0 {
            sqlx::query(&format!(
                "INSERT INTO walls (name, group_a, group_b, mode, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WALL_COLS}"
            ))
            .bind(w.name.clone())
            .bind(w.group_a.0)
            .bind(w.group_b.0)
            .bind(w.mode.as_str())
            .bind(i64::from(w.enabled))
            .bind(w.created_at)
            .bind(w.updated_at)
            .fetch_one(&mut *tx)
            .await
        } else {
            sqlx::query(&format!(
                "UPDATE walls SET name = $1, mode = $2, enabled = $3, updated_at = $4 WHERE id = $5 RETURNING {WALL_COLS}"
            ))
            .bind(w.name.clone())
            .bind(w.mode.as_str())
            .bind(i64::from(w.enabled))
            .bind(w.updated_at)
            .bind(w.id)
            .fetch_one(&mut *tx)
            .await
        }
        .map_err(unavailable)?;
        let wall = wall_from_row(&row).map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(wall)
    }

    async fn record_violation(&self, v: &Violation, archived: &ArchiveEntry) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id = self.violation_in(&mut tx, v).await?;
        self.archive_in(&mut tx, std::slice::from_ref(archived)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(id)
    }

    async fn violations(&self, limit: i64) -> StoreResult<Vec<Violation>> {
        let rows = sqlx::query(
            "SELECT id, ts, wall_id, mode, action, actor_id, other_id, conversation_id, detail FROM wall_violations \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(violation_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn audit(&self, e: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_log (ts, actor, action, target, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.ts)
        .bind(e.actor.clone())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(e.before.clone())
        .bind(e.after.clone())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, ts, actor, action, target, before_json, after_json FROM audit_log WHERE id < $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn disclaimers(&self) -> StoreResult<Vec<sb_core::disclaimers::Disclaimer>> {
        let rows = sqlx::query(&format!("SELECT {DISCLAIMER_COLS} FROM disclaimers ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(disclaimer_from_row).collect::<Result<_, _>>().map_err(unavailable)
    }

    async fn save_disclaimer(
        &self,
        d: &sb_core::disclaimers::Disclaimer,
    ) -> StoreResult<sb_core::disclaimers::Disclaimer> {
        let texts = serde_json::to_string(&d.texts).unwrap_or_default();
        let mut tx = self.begin_write().await?;
        let sql = if d.id == 0 {
            format!(
                "INSERT INTO disclaimers (name, kinds, audience, frequency, texts, fallback, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {DISCLAIMER_COLS}"
            )
        } else {
            format!(
                "UPDATE disclaimers SET name = $1, kinds = $2, audience = $3, frequency = $4, texts = $5, fallback = $6, \
                 enabled = $7, created_at = created_at + 0 * $8, updated_at = $9 WHERE id = $10 RETURNING {DISCLAIMER_COLS}"
            )
        };
        let mut q = sqlx::query(&sql)
            .bind(d.name.clone())
            .bind(d.kinds.join(","))
            .bind(audience_str(&d.audience))
            .bind(d.frequency.as_str())
            .bind(texts)
            .bind(d.fallback.clone())
            .bind(i64::from(d.enabled))
            .bind(d.created_at)
            .bind(d.updated_at);
        if d.id != 0 {
            q = q.bind(d.id);
        }
        let row = q.fetch_one(&mut *tx).await.map_err(unavailable)?;
        let saved = disclaimer_from_row(&row).map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(saved)
    }

    /// Was (rule, pair, day) shown?
    async fn disclaimer_seen(&self, rule: i64, pair: &str, day: i64) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM disclaimer_shown WHERE rule_id = $1 AND pair_key = $2 AND day = $3",
        )
        .bind(rule)
        .bind(pair.to_string())
        .bind(day)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(n > 0)
    }
}
