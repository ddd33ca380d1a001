//! Compliance at run time: managing ethical walls (judged by the policy door, `door`),
//! violations, the audit log and disclaimers. E-discovery is in `ediscovery`, retention and
//! legal holds in `retention`.

use crate::{Result, Service};
use sb_core::store::{AuditEntry, PolicyRecord};
use sb_core::walls::{Violation, Wall, WallMode};
use sb_core::{ConversationId, CoreError, EventKind, User, UserId};
use serde_json::{json, Value};

pub use crate::ediscovery::{ArchiveFilters, ArchivedConversation, ExportFile, MAX_ARCHIVE_OFFSET};
pub use crate::retention::PurgeReport;

/// A violation as compliance officers see it.
#[derive(Debug, Clone)]
pub struct ViolationView {
    pub violation: Violation,
    pub wall_name: String,
    pub actor: String,
    pub other: String,
}

/// The compliance component's own state: the one policy every act is judged by (`door`),
/// swapped whole when walls or memberships change (reloads run one at a time), and the
/// disclaimer rules with the pair-per-day ones already shown.
#[derive(Default)]
pub(crate) struct Compliance {
    pub(crate) policy: std::sync::RwLock<std::sync::Arc<sb_core::policy::Snapshot>>,
    pub(crate) fingerprint: std::sync::Mutex<String>,
    pub(crate) reload: tokio::sync::Mutex<()>,
    pub(crate) disclaimers: std::sync::RwLock<std::sync::Arc<Vec<sb_core::disclaimers::Disclaimer>>>,
    pub(crate) shown: std::sync::Mutex<std::collections::HashSet<(i64, String, i64)>>,
}

impl Service {
    // ------------------------------------------------------------ walls, managed

    /// Recent violations with names, for compliance officers.
    pub async fn violations(&self, limit: i64) -> Result<Vec<ViolationView>> {
        let walls = self.store.walls().await?;
        let mut out = Vec::new();
        for v in self.store.violations(limit.clamp(1, 500)).await? {
            let address = |u: Option<User>| u.map(|u| u.address.to_string()).unwrap_or_default();
            out.push(ViolationView {
                wall_name: walls.iter().find(|w| w.id == v.wall).map(|w| w.name.clone()).unwrap_or_default(),
                actor: address(self.store.user(v.actor).await?),
                other: address(self.store.user(v.other).await?),
                violation: v,
            });
        }
        Ok(out)
    }

    pub async fn walls_list(&self) -> Result<Vec<Wall>> {
        Ok(self.store.walls().await?)
    }

    pub async fn create_wall(
        &self,
        actor: &User,
        name: &str,
        group_a: &str,
        group_b: &str,
        mode: &str,
    ) -> Result<Wall> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::Invalid("a wall's name has 1 to 100 characters".into()).into());
        }
        let mode = WallMode::parse(mode).ok_or_else(|| CoreError::Invalid("mode must be block or monitor".into()))?;
        let a = self
            .store
            .group(&group_a.to_lowercase())
            .await?
            .ok_or_else(|| CoreError::Invalid(format!("no such group: {group_a}")))?;
        let b = self
            .store
            .group(&group_b.to_lowercase())
            .await?
            .ok_or_else(|| CoreError::Invalid(format!("no such group: {group_b}")))?;
        if a.id == b.id {
            return Err(CoreError::Invalid("a wall stands between two different groups".into()).into());
        }
        let now = self.now();
        let wall = self
            .store
            .save_wall(&Wall {
                id: 0,
                name: name.into(),
                group_a: a.id,
                group_b: b.id,
                mode,
                enabled: true,
                created_at: now,
                updated_at: now,
            })
            .await?;
        self.audit(
            Some(actor),
            "wall.create",
            &format!("wall {}", wall.id),
            None,
            Some(wall_json(&wall, &a.slug, &b.slug)),
        )
        .await;
        self.reload_policy().await?;
        Ok(wall)
    }

    pub async fn update_wall(
        &self,
        actor: &User,
        id: i64,
        name: Option<&str>,
        mode: Option<&str>,
        enabled: Option<bool>,
    ) -> Result<Wall> {
        let before = self.store.walls().await?.into_iter().find(|w| w.id == id).ok_or(CoreError::NotFound("wall"))?;
        let mut w = before.clone();
        if let Some(n) = name.map(str::trim) {
            if n.is_empty() || n.chars().count() > 100 {
                return Err(CoreError::Invalid("a wall's name has 1 to 100 characters".into()).into());
            }
            w.name = n.into();
        }
        if let Some(m) = mode {
            w.mode = WallMode::parse(m).ok_or_else(|| CoreError::Invalid("mode must be block or monitor".into()))?;
        }
        if let Some(e) = enabled {
            w.enabled = e;
        }
        w.updated_at = self.now();
        let saved = self.store.save_wall(&w).await?;
        let slug = |g: sb_core::GroupId| async move {
            self.store
                .groups()
                .await
                .ok()
                .and_then(|gs| gs.into_iter().find(|x| x.id == g).map(|x| x.slug))
                .unwrap_or_default()
        };
        let (sa, sb) = (slug(w.group_a).await, slug(w.group_b).await);
        self.audit(
            Some(actor),
            "wall.update",
            &format!("wall {id}"),
            Some(wall_json(&before, &sa, &sb)),
            Some(wall_json(&saved, &sa, &sb)),
        )
        .await;
        self.reload_policy().await?;
        Ok(saved)
    }

    // ------------------------------------------------------------ audit log

    /// Record an administrative action. Failing to write the audit log is logged loudly but
    /// does not undo the action (it already happened).
    pub async fn audit(
        &self,
        actor: Option<&User>,
        action: &str,
        target: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        let entry = AuditEntry {
            id: 0,
            ts: self.now(),
            actor: actor.map(|u| u.address.to_string()),
            action: action.into(),
            target: target.into(),
            before: before.map(|v| v.to_string()),
            after: after.map(|v| v.to_string()),
        };
        if let Err(e) = self.store.audit(&entry).await {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }

    pub async fn audit_log(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(self.store.audit_log(before, limit.clamp(1, 500)).await?)
    }
}

pub fn wall_json(w: &Wall, group_a: &str, group_b: &str) -> Value {
    json!({
        "id": w.id, "name": w.name, "group_a": group_a, "group_b": group_b, "mode": w.mode.as_str(),
        "enabled": w.enabled, "created_at": w.created_at, "updated_at": w.updated_at,
    })
}

// ---------------------------------------------------------------- disclaimers

impl Service {
    pub(crate) fn disclaimer_rules(&self) -> std::sync::Arc<Vec<sb_core::disclaimers::Disclaimer>> {
        self.compliance.disclaimers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub async fn reload_disclaimers(&self) -> Result<()> {
        let rules = self.store.disclaimers().await?;
        *self.compliance.disclaimers.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(rules);
        Ok(())
    }

    pub async fn disclaimers_list(&self) -> Result<Vec<sb_core::disclaimers::Disclaimer>> {
        Ok(self.store.disclaimers().await?)
    }

    /// Create (id 0) or replace a disclaimer rule. Audited.
    pub async fn save_disclaimer(
        &self,
        actor: &User,
        mut d: sb_core::disclaimers::Disclaimer,
    ) -> Result<sb_core::disclaimers::Disclaimer> {
        d.validate().map_err(CoreError::Invalid)?;
        let now = self.now();
        let before = if d.id == 0 {
            d.created_at = now;
            None
        } else {
            let old = self
                .store
                .disclaimers()
                .await?
                .into_iter()
                .find(|x| x.id == d.id)
                .ok_or(CoreError::NotFound("disclaimer"))?;
            d.created_at = old.created_at;
            Some(disclaimer_audit(&old))
        };
        d.updated_at = now;
        let saved = self.store.save_disclaimer(&d).await?;
        let action = if before.is_some() { "disclaimer.update" } else { "disclaimer.create" };
        self.audit(Some(actor), action, &format!("disclaimer {}", saved.id), before, Some(disclaimer_audit(&saved)))
            .await;
        self.reload_disclaimers().await?;
        Ok(saved)
    }

    async fn parties(&self, people: &[UserId]) -> Result<Vec<sb_core::disclaimers::Party>> {
        let mut out = Vec::with_capacity(people.len());
        for id in people {
            let Some(u) = self.store.user(*id).await? else { continue };
            let groups = self.store.groups_of(u.id).await?.into_iter().map(|g| g.id).collect();
            out.push(sb_core::disclaimers::Party {
                outsider: u.is_guest() || u.address.domain() != self.settings.domain,
                name: u.display_name,
                locale: u.locale,
                groups,
            });
        }
        Ok(out)
    }

    fn today(&self) -> String {
        jiff::Timestamp::from_millisecond(self.now()).map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_default()
    }

    /// Disclaimers for a conversation that starts now between `people` (the initiator
    /// first): system messages to store right after its `created` event.
    pub(crate) async fn starting_disclaimers(
        &self,
        conversation: ConversationId,
        kind: sb_core::ConversationKind,
        people: &[UserId],
        initiator: &str,
    ) -> Result<Vec<sb_core::NewEvent>> {
        let rules = self.disclaimer_rules();
        let rules: Vec<_> = rules
            .iter()
            .filter(|r| r.enabled && r.frequency == sb_core::disclaimers::Frequency::Conversation)
            .collect();
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let parties = self.parties(people).await?;
        let today = self.today();
        Ok(rules
            .into_iter()
            .filter(|r| r.applies(kind.as_str(), &parties))
            .map(|r| self.disclaimer_event(conversation, r, r.render(&parties, initiator, &today)))
            .collect())
    }

    /// Pair-per-day disclaimers due before `sender`'s message in `conversation`: the
    /// notices, and the marks to store in the message's own transaction (so a failed write
    /// loses neither). A mark is claimed in memory first, so two messages of one pair do not
    /// both show it; `unclaim_disclaimers` gives the claims back when the write fails.
    pub(crate) async fn pair_disclaimers(
        &self,
        sender: &User,
        conversation: &sb_core::Conversation,
    ) -> Result<(Vec<sb_core::NewEvent>, Vec<PolicyRecord>)> {
        let rules = self.disclaimer_rules();
        let rules: Vec<_> =
            rules.iter().filter(|r| r.enabled && r.frequency == sb_core::disclaimers::Frequency::PairDay).collect();
        if rules.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let others: Vec<UserId> = conversation.members.iter().map(|m| m.id).filter(|u| *u != sender.id).collect();
        let day = self.now().div_euclid(86_400_000);
        let mut out = Vec::new();
        let mut marks = Vec::new();
        let mut parties_cache: Option<Vec<sb_core::disclaimers::Party>> = None;
        for r in rules {
            if !r.kinds.iter().any(|k| k == conversation.kind.as_str()) {
                continue;
            }
            let mut fresh = Vec::new();
            for o in &others {
                let pair = format!("{}:{}", sender.id.0.min(o.0), sender.id.0.max(o.0));
                let key = (r.id, pair.clone(), day);
                if self.compliance.shown.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
                    continue;
                }
                let pair_parties = self.parties(&[sender.id, *o]).await?;
                if !r.applies(conversation.kind.as_str(), &pair_parties) {
                    continue;
                }
                let seen = self.store.disclaimer_seen(r.id, &pair, day).await?;
                if !self.compliance.shown.lock().unwrap_or_else(|e| e.into_inner()).insert(key) || seen {
                    continue;
                }
                marks.push(PolicyRecord::DisclaimerShown { rule: r.id, pair, day });
                fresh.push(*o);
            }
            if fresh.is_empty() {
                continue;
            }
            let parties = match &parties_cache {
                Some(p) => p.clone(),
                None => {
                    let ids: Vec<UserId> = std::iter::once(sender.id).chain(others.iter().copied()).collect();
                    let p = self.parties(&ids).await?;
                    parties_cache = Some(p.clone());
                    p
                }
            };
            out.push(self.disclaimer_event(
                conversation.id,
                r,
                r.render(&parties, &sender.display_name, &self.today()),
            ));
        }
        Ok((out, marks))
    }

    /// The message these marks came with was not stored: show them again next time.
    pub(crate) fn unclaim_disclaimers(&self, marks: &[PolicyRecord]) {
        let mut shown = self.compliance.shown.lock().unwrap_or_else(|e| e.into_inner());
        for m in marks {
            if let PolicyRecord::DisclaimerShown { rule, pair, day } = m {
                shown.remove(&(*rule, pair.clone(), *day));
            }
        }
    }

    fn disclaimer_event(
        &self,
        conversation: ConversationId,
        rule: &sb_core::disclaimers::Disclaimer,
        text: String,
    ) -> sb_core::NewEvent {
        let mut e = self.new_event(conversation, EventKind::Message, None, text, None);
        e.note = Some(json!({"disclaimer": rule.id, "rule": rule.name}).to_string());
        e
    }
}

fn disclaimer_audit(d: &sb_core::disclaimers::Disclaimer) -> Value {
    json!({
        "id": d.id, "name": d.name, "kinds": d.kinds, "audience": format!("{:?}", d.audience),
        "frequency": d.frequency.as_str(), "texts": d.texts, "fallback": d.fallback, "enabled": d.enabled,
    })
}
