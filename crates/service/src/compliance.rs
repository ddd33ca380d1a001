//! Compliance at run time: ethical walls (the index every check reads, violations, the
//! re-check when walls or groups change), the audit log and disclaimers. E-discovery is in
//! `ediscovery`, retention and legal holds in `retention`.

use crate::hub::Outbound;
use crate::{Frame, Result, Service};
use sb_core::archive::ArchiveEntry;
use sb_core::store::AuditEntry;
use sb_core::walls::{blocked_notice, Violation, Wall, WallIndex, WallMode};
use sb_core::{ConversationId, CoreError, EventKind, Role, User, UserId};
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

impl Service {
    pub(crate) fn wall_index(&self) -> std::sync::Arc<WallIndex> {
        self.walls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuild the wall index from the store; when it changed, check existing
    /// conversations again.
    pub async fn reload_walls(&self) -> Result<()> {
        let walls = self.store.walls().await?;
        let memberships = self.store.group_memberships().await?;
        let fingerprint = {
            let mut f: Vec<String> = walls
                .iter()
                .filter(|w| w.enabled)
                .map(|w| format!("w{}:{}:{}:{}", w.id, w.group_a.0, w.group_b.0, w.mode.as_str()))
                .collect();
            let walled: std::collections::BTreeSet<i64> =
                walls.iter().filter(|w| w.enabled).flat_map(|w| [w.group_a.0, w.group_b.0]).collect();
            f.extend(
                memberships.iter().filter(|(g, _)| walled.contains(&g.0)).map(|(g, u)| format!("m{}:{}", g.0, u.0)),
            );
            f.sort();
            f.join(",")
        };
        let changed = {
            let mut last = self.walls_fingerprint.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *last != fingerprint;
            *last = fingerprint;
            changed
        };
        if !changed {
            return Ok(());
        }
        let walled_users: std::collections::BTreeSet<UserId> = memberships.iter().map(|(_, u)| *u).collect();
        let mut names = Vec::new();
        for u in walled_users {
            if let Some(user) = self.store.user(u).await? {
                names.push((u, user.display_name));
            }
        }
        let index = WallIndex::new(walls, memberships, names);
        *self.walls.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(index);
        self.recheck_conversations().await
    }

    /// After walls or groups changed: a walled member leaves each group chat (the one who
    /// joined last), so nobody keeps talking across a blocking wall. Walled 1:1 chats stay
    /// as they are and become read-only (the message pipeline refuses every new message).
    async fn recheck_conversations(&self) -> Result<()> {
        let index = self.wall_index();
        if index.is_empty() {
            return Ok(());
        }
        for c in self.store.group_conversations().await? {
            let mut members: Vec<UserId> = c.members.iter().map(|m| m.id).collect(); // in joining order
            let mut removed = Vec::new();
            loop {
                let walled = members.iter().enumerate().rev().find_map(|(i, m)| {
                    let w = members[..i]
                        .iter()
                        .find_map(|o| index.between(*m, *o).filter(|w| w.mode == WallMode::Block))?;
                    Some((i, w.clone()))
                });
                let Some((i, wall)) = walled else { break };
                removed.push((members.remove(i), wall));
            }
            for (user, wall) in removed {
                let Some(u) = self.store.user(user).await? else { continue };
                let mut left = self.new_event(c.id, EventKind::Left, Some(&u), String::new(), None);
                left.note = Some(json!({"reason": "ethical wall", "wall": wall.id}).to_string());
                self.append(vec![left], None).await?;
                tracing::info!(conversation = c.id.0, user = %u.address, wall = wall.id, "walled member removed from a group chat");
                if let Ok(conv) = self.conversation(c.id).await {
                    let frame = Outbound::new(Frame::Conversation(conv.as_ref().clone()));
                    self.hub.send_to_users(conv.members.iter().map(|m| m.id).chain([user]), &frame, None);
                }
            }
        }
        Ok(())
    }

    /// Walls between `actor` and `others` when a conversation is started or someone is
    /// added: a blocking wall refuses (recorded, archived, the actor told who); a monitoring
    /// wall lets it go ahead and is recorded and reported.
    /// `subject`: who would meet `others` (the actor, or the person they add).
    pub(crate) async fn check_walls(
        &self,
        actor: &User,
        subject: UserId,
        others: &[UserId],
        conversation: Option<ConversationId>,
        what: &str,
    ) -> Result<()> {
        let index = self.wall_index();
        if index.is_empty() {
            return Ok(());
        }
        let crossings: Vec<(UserId, Wall)> =
            index.among(subject, others.iter().copied()).into_iter().map(|(o, w)| (o, w.clone())).collect();
        for (other, wall) in &crossings {
            let blocked = wall.mode == WallMode::Block;
            self.wall_violation(actor, *other, wall, conversation, blocked, what).await;
            if blocked {
                let notice = if subject == actor.id {
                    blocked_notice(&index.name_of(*other))
                } else {
                    format!(
                        "Chats between {} and {} have been prohibited by your administrator.",
                        index.name_of(subject),
                        index.name_of(*other)
                    )
                };
                return Err(CoreError::Blocked(notice).into());
            }
        }
        Ok(())
    }

    /// Every pair among `people` (a new group chat): refused if any pair is walled (block).
    pub(crate) async fn check_walls_among(&self, actor: &User, people: &[UserId], what: &str) -> Result<()> {
        self.check_walls(actor, actor.id, people, None, what).await?;
        let index = self.wall_index();
        if index.is_empty() {
            return Ok(());
        }
        for (i, a) in people.iter().enumerate() {
            for b in &people[i + 1..] {
                if let Some(w) = index.between(*a, *b).cloned() {
                    let blocked = w.mode == WallMode::Block;
                    self.wall_violation(actor, *b, &w, None, blocked, &format!("{what} (between two members)")).await;
                    if blocked {
                        let names = format!("{} and {}", index.name_of(*a), index.name_of(*b));
                        return Err(CoreError::Blocked(format!(
                            "Chats between {names} have been prohibited by your administrator."
                        ))
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    /// A message met a wall in the pipeline (refused, or flagged): record it. Flags are
    /// recorded once per conversation and wall while the server runs.
    pub(crate) async fn message_met_wall(&self, sender: &User, conversation: &sb_core::Conversation, blocked: bool) {
        let index = self.wall_index();
        let crossings: Vec<(UserId, Wall)> = index
            .among(sender.id, conversation.members.iter().map(|m| m.id))
            .into_iter()
            .map(|(o, w)| (o, w.clone()))
            .collect();
        let Some((other, wall)) = crossings.into_iter().find(|(_, w)| (w.mode == WallMode::Block) == blocked) else {
            return;
        };
        if !blocked {
            let first = self.flagged.lock().unwrap_or_else(|e| e.into_inner()).insert((conversation.id, wall.id));
            if !first {
                return;
            }
        }
        self.wall_violation(sender, other, &wall, Some(conversation.id), blocked, "message").await;
    }

    async fn wall_violation(
        &self,
        actor: &User,
        other: UserId,
        wall: &Wall,
        conversation: Option<ConversationId>,
        blocked: bool,
        what: &str,
    ) {
        let now = self.now();
        let mut v = Violation {
            id: 0,
            ts: now,
            wall: wall.id,
            mode: wall.mode,
            action: if blocked { "blocked" } else { "flagged" }.into(),
            actor: actor.id,
            other,
            conversation: conversation.map(|c| c.0),
            detail: what.to_string(),
        };
        match self.store.record_violation(&v).await {
            Ok(id) => v.id = id,
            Err(e) => tracing::error!(error = %e, "cannot record a wall violation"),
        }
        let other_address =
            self.store.user(other).await.ok().flatten().map(|u| u.address.to_string()).unwrap_or_default();
        let entry = ArchiveEntry {
            ts: now,
            kind: format!("wall.{}", v.action),
            conversation: conversation.map(|c| c.0),
            conversation_kind: None,
            event: None,
            actor: Some(actor.address.to_string()),
            body: String::new(),
            meta: json!({"wall": wall.id, "wall_name": wall.name, "mode": wall.mode.as_str(), "other": other_address, "what": what})
                .to_string(),
        };
        if let Err(e) = self.store.archive(&[entry]).await {
            tracing::error!(error = %e, "cannot archive a wall violation");
        }
        tracing::warn!(wall = wall.id, actor = %actor.address, other = %other_address, action = %v.action, what, "ethical wall");
        let view = ViolationView {
            violation: v,
            wall_name: wall.name.clone(),
            actor: actor.address.to_string(),
            other: other_address,
        };
        let officers: Vec<UserId> = self
            .store
            .users("", 100_000)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.has_role(Role::ComplianceOfficer) && !u.disabled)
            .map(|u| u.id)
            .collect();
        self.hub.send_to_users(officers, &Outbound::new(Frame::Violation(view)), None);
    }

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

    /// Experts of a queue that `seeker` is walled off from (block): routing skips them.
    pub(crate) fn walled_experts(
        &self,
        def: &sb_core::queue::QueueDef,
        seeker: UserId,
    ) -> std::collections::BTreeSet<UserId> {
        let index = self.wall_index();
        def.members.iter().map(|m| m.user).filter(|e| !index.visible(seeker, *e)).collect()
    }

    /// May `viewer` see `other` in the directory and presence?
    pub fn visible_to(&self, viewer: UserId, other: UserId) -> bool {
        self.wall_index().visible(viewer, other)
    }

    // ------------------------------------------------------------ walls, managed

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
        self.reload_walls().await?;
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
        self.reload_walls().await?;
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
        self.disclaimers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub async fn reload_disclaimers(&self) -> Result<()> {
        let rules = self.store.disclaimers().await?;
        *self.disclaimers.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(rules);
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

    /// Pair-per-day disclaimers due before `sender`'s message in `conversation`.
    pub(crate) async fn pair_disclaimers(
        &self,
        sender: &User,
        conversation: &sb_core::Conversation,
    ) -> Result<Vec<sb_core::NewEvent>> {
        let rules = self.disclaimer_rules();
        let rules: Vec<_> =
            rules.iter().filter(|r| r.enabled && r.frequency == sb_core::disclaimers::Frequency::PairDay).collect();
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let others: Vec<UserId> = conversation.members.iter().map(|m| m.id).filter(|u| *u != sender.id).collect();
        let day = self.now().div_euclid(86_400_000);
        let mut out = Vec::new();
        let mut parties_cache: Option<Vec<sb_core::disclaimers::Party>> = None;
        for r in rules {
            if !r.kinds.iter().any(|k| k == conversation.kind.as_str()) {
                continue;
            }
            let mut fresh = Vec::new();
            for o in &others {
                let pair = format!("{}:{}", sender.id.0.min(o.0), sender.id.0.max(o.0));
                let key = (r.id, pair.clone(), day);
                if self.disclaimers_shown.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
                    continue;
                }
                let pair_parties = self.parties(&[sender.id, *o]).await?;
                if !r.applies(conversation.kind.as_str(), &pair_parties) {
                    continue;
                }
                let newly = self.store.disclaimer_shown(r.id, &pair, day).await?;
                self.disclaimers_shown.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
                if newly {
                    fresh.push(*o);
                }
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
        Ok(out)
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
