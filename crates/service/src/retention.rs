//! Retention policies and legal holds, and the purge that applies them (the archive chain
//! still verifies afterwards).

use crate::{Result, Service};
use sb_core::{CoreError, User, UserId};
use serde_json::json;

const DAY_MS: sb_core::Millis = 86_400_000;

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub conversations: u64,
    pub records: u64,
    pub events: u64,
    /// Conversations kept because a participant is under legal hold.
    pub held: u64,
}

impl Service {
    /// Retention policies with group slugs (`None`: everyone).
    pub async fn retention(&self) -> Result<Vec<(Option<String>, i64)>> {
        let groups = self.store.groups().await?;
        Ok(self
            .store
            .retention_policies()
            .await?
            .into_iter()
            .map(|(g, d)| (g.and_then(|g| groups.iter().find(|x| x.id == g).map(|x| x.slug.clone())), d))
            .collect())
    }

    /// Replace the retention policies (compliance officers). Audited.
    pub async fn set_retention(&self, actor: &User, policies: &[(Option<String>, i64)]) -> Result<()> {
        let groups = self.store.groups().await?;
        let mut resolved = Vec::new();
        for (slug, days) in policies {
            if !(1..=36_500).contains(days) {
                return Err(CoreError::Invalid("retention is 1 to 36500 days".into()).into());
            }
            let g = match slug.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    groups
                        .iter()
                        .find(|g| g.slug == s.to_lowercase())
                        .ok_or_else(|| CoreError::Invalid(format!("no such group: {s}")))?
                        .id,
                ),
                None => None,
            };
            if resolved.iter().any(|(x, _)| *x == g) {
                return Err(CoreError::Invalid("one policy per group (and one global)".into()).into());
            }
            resolved.push((g, *days));
        }
        let before = json!(self.retention().await?);
        self.store.set_retention_policies(&resolved).await?;
        self.audit(Some(actor), "retention.update", "retention", Some(before), Some(json!(policies))).await;
        Ok(())
    }

    pub async fn legal_holds(&self) -> Result<Vec<(sb_core::archive::LegalHold, String)>> {
        let mut out = Vec::new();
        for h in self.store.legal_holds().await? {
            let who = self.store.user(h.custodian).await?.map(|u| u.address.to_string()).unwrap_or_default();
            out.push((h, who));
        }
        Ok(out)
    }

    /// Put a custodian under legal hold. Audited.
    pub async fn create_legal_hold(
        &self,
        actor: &User,
        custodian: &str,
        reason: &str,
    ) -> Result<sb_core::archive::LegalHold> {
        let u = self
            .user_by_address(custodian)
            .await
            .map_err(|_| CoreError::Invalid(format!("no such user: {custodian}")))?;
        if reason.chars().count() > 1000 {
            return Err(CoreError::Invalid("the reason has at most 1000 characters".into()).into());
        }
        let mut hold = sb_core::archive::LegalHold {
            id: 0,
            custodian: u.id,
            reason: reason.trim().into(),
            created_by: Some(actor.address.to_string()),
            created_at: self.now(),
            released_at: None,
        };
        hold.id = self.store.create_legal_hold(&hold).await?;
        let after = json!({"custodian": u.address.as_str(), "reason": hold.reason});
        self.audit(Some(actor), "hold.create", &format!("hold {}", hold.id), None, Some(after)).await;
        Ok(hold)
    }

    pub async fn release_legal_hold(&self, actor: &User, id: i64) -> Result<()> {
        if !self.store.release_legal_hold(id, self.now()).await? {
            return Err(CoreError::NotFound("active legal hold").into());
        }
        self.audit(Some(actor), "hold.release", &format!("hold {id}"), None, None).await;
        Ok(())
    }

    /// Purge what the retention policies let go, except what a custodian under legal hold
    /// took part in. The archive keeps every record's place and hash: it still verifies.
    pub async fn purge_expired(&self, actor: Option<&User>) -> Result<PurgeReport> {
        let policies = self.store.retention_policies().await?;
        let Some(shortest) = policies.iter().map(|(_, d)| *d).min() else { return Ok(PurgeReport::default()) };
        let now = self.now();
        let held: std::collections::HashSet<UserId> = self
            .store
            .legal_holds()
            .await?
            .into_iter()
            .filter(|h| h.released_at.is_none())
            .map(|h| h.custodian)
            .collect();
        let mut groups_of: std::collections::HashMap<UserId, Vec<sb_core::GroupId>> = std::collections::HashMap::new();
        for (g, u) in self.store.group_memberships().await? {
            groups_of.entry(u).or_default().push(g);
        }
        let mut report = PurgeReport::default();
        for conversation in self.store.purge_candidates(now - shortest * DAY_MS).await? {
            let people = self.store.archived_participants(conversation).await?;
            if people.iter().any(|p| held.contains(p)) {
                report.held += 1;
                continue;
            }
            let groups: Vec<sb_core::GroupId> =
                people.iter().flat_map(|p| groups_of.get(p).cloned().unwrap_or_default()).collect();
            let Some(days) = sb_core::archive::retention_days(&policies, &groups) else { continue };
            let (records, events) = self.store.purge(Some(conversation), now - days * DAY_MS, now).await?;
            if records + events > 0 {
                report.conversations += 1;
                report.records += records;
                report.events += events;
            }
        }
        // Records outside any conversation (wall attempts): the global policy, and never
        // while anyone is under hold (they may concern a custodian).
        if held.is_empty() {
            if let Some(days) = sb_core::archive::retention_days(&policies, &[]) {
                report.records += self.store.purge(None, now - days * DAY_MS, now).await?.0;
            }
        }
        if report != PurgeReport::default() || actor.is_some() {
            let detail = json!({"conversations": report.conversations, "records": report.records, "events": report.events, "held": report.held});
            self.audit(actor, "archive.purge", "archive", None, Some(detail)).await;
        }
        if report.records > 0 {
            tracing::info!(?report, "purged expired archive content");
        }
        Ok(report)
    }
}
