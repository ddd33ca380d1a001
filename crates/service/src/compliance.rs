//! Compliance at run time: ethical walls (the index every check reads, violations, the
//! re-check when walls or groups change) and the audit log.

use crate::hub::Outbound;
use crate::{Frame, Result, Service};
use sb_core::archive::ArchiveEntry;
use sb_core::store::AuditEntry;
use sb_core::walls::{blocked_notice, Violation, Wall, WallIndex, WallMode};
use sb_core::{ConversationId, CoreError, EventKind, Role, User, UserId};
use serde_json::{json, Value};

/// The furthest an e-discovery search pages (a million hits in).
pub const MAX_ARCHIVE_OFFSET: i64 = 1_000_000;

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

/// E-discovery filters as people give them (addresses, slugs).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArchiveFilters<'a> {
    pub keywords: &'a str,
    pub participant: Option<&'a str>,
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub from: Option<sb_core::Millis>,
    pub to: Option<sb_core::Millis>,
}

/// An archived conversation for compliance officers: what it was and everything in it.
#[derive(Debug, Clone)]
pub struct ArchivedConversation {
    pub id: i64,
    pub kind: String,
    pub title: String,
    /// (address, display name)
    pub participants: Vec<(String, String)>,
    pub records: Vec<sb_core::archive::ArchiveRecord>,
}

impl Service {
    /// Turn filters given by name (participant address, group slug) into a query.
    /// Search hits are paged 1 to 200 at a time, from an offset up to this.
    pub async fn archive_query(
        &self,
        f: &ArchiveFilters<'_>,
        limit: i64,
        offset: i64,
    ) -> Result<sb_core::archive::ArchiveQuery> {
        let ArchiveFilters { keywords, participant, group, kind, from, to } = *f;
        let words: Vec<String> = keywords.split_whitespace().map(str::to_string).collect();
        if words.len() > 20 || keywords.len() > 1000 {
            return Err(CoreError::Invalid("at most 20 keywords".into()).into());
        }
        let participant = match participant.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Some(
                self.user_by_address(p).await.map_err(|_| CoreError::Invalid(format!("no such participant: {p}")))?.id,
            ),
            None => None,
        };
        let group = match group.map(str::trim).filter(|g| !g.is_empty()) {
            Some(g) => Some(
                self.store
                    .group(&g.to_lowercase())
                    .await?
                    .ok_or_else(|| CoreError::Invalid(format!("no such group: {g}")))?
                    .id,
            ),
            None => None,
        };
        let kind = kind.map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
        if let Some(k) = &kind {
            if sb_core::ConversationKind::parse(k).is_none() {
                return Err(CoreError::Invalid("kind is direct, group or queue".into()).into());
            }
        }
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(CoreError::Invalid("from must be before to".into()).into());
            }
        }
        // Paging goes forward from 0; an offset past this is a client bug, not a page.
        if !(0..=MAX_ARCHIVE_OFFSET).contains(&offset) {
            return Err(CoreError::Invalid(format!("offset is 0 to {MAX_ARCHIVE_OFFSET}")).into());
        }
        Ok(sb_core::archive::ArchiveQuery {
            keywords: words,
            participant,
            group,
            conversation_kind: kind,
            from,
            to,
            conversation: None,
            limit: limit.clamp(1, 200),
            offset,
        })
    }

    /// E-discovery search (compliance officers; the caller checks the role). Audited.
    pub async fn archive_search(
        &self,
        officer: Option<&User>,
        q: &sb_core::archive::ArchiveQuery,
    ) -> Result<Vec<sb_core::archive::ArchiveHit>> {
        let hits = self.store.search_archive(q).await?;
        self.audit(officer, "archive.search", "archive", None, Some(query_json(q, hits.len()))).await;
        Ok(hits)
    }

    /// A whole archived conversation (compliance officers). Audited.
    pub async fn archived_conversation(
        &self,
        officer: Option<&User>,
        id: i64,
        audit: bool,
    ) -> Result<ArchivedConversation> {
        let (records, people) = self.store.archived_conversation(id).await?;
        if records.is_empty() {
            return Err(CoreError::NotFound("archived conversation").into());
        }
        let conversation = self.store.conversation(ConversationId(id)).await?;
        let mut participants = Vec::new();
        for p in people {
            if let Some(u) = self.store.user(p).await? {
                participants.push((u.address.to_string(), u.display_name));
            }
        }
        if audit {
            self.audit(officer, "archive.read", &format!("conversation {id}"), None, None).await;
        }
        Ok(ArchivedConversation {
            id,
            kind: conversation.as_ref().map_or_else(
                || records[0].entry.conversation_kind.clone().unwrap_or_default(),
                |c| c.kind.as_str().to_string(),
            ),
            title: conversation.map(|c| c.title).unwrap_or_default(),
            participants,
            records,
        })
    }
}

fn query_json(q: &sb_core::archive::ArchiveQuery, hits: usize) -> Value {
    json!({
        "keywords": q.keywords, "participant": q.participant.map(|u| u.0), "group": q.group.map(|g| g.0),
        "kind": q.conversation_kind, "from": q.from, "to": q.to, "conversation": q.conversation,
        "limit": q.limit, "offset": q.offset, "hits": hits,
    })
}

/// An export file.
#[derive(Debug, Clone)]
pub struct ExportFile {
    pub content_type: &'static str,
    pub file_name: String,
    pub body: String,
}

impl Service {
    /// Export every conversation with a hit for `q` (or `q.conversation` alone), whole, as
    /// `eml` (one RFC 5322 message per conversation; mbox for several), `jsonl`, `csv` or
    /// `xml` (Actiance-style). Compliance officers; audited.
    pub async fn archive_export(
        &self,
        officer: Option<&User>,
        q: &sb_core::archive::ArchiveQuery,
        format: &str,
    ) -> Result<ExportFile> {
        use crate::export;
        if !matches!(format, "eml" | "jsonl" | "csv" | "xml") {
            return Err(CoreError::Invalid("format is eml, jsonl, csv or xml".into()).into());
        }
        let ids: Vec<i64> = match q.conversation {
            Some(c) => vec![c],
            None => {
                let wide = sb_core::archive::ArchiveQuery { limit: 1000, offset: 0, ..q.clone() };
                let mut ids: Vec<i64> = Vec::new();
                for h in self.store.search_archive(&wide).await? {
                    if let Some(c) = h.conversation.filter(|c| !ids.contains(c)) {
                        ids.push(c);
                    }
                }
                ids.truncate(200);
                ids
            }
        };
        let mut conversations = Vec::new();
        for id in &ids {
            let c = match self.archived_conversation(officer, *id, false).await {
                Ok(c) => c,
                Err(_) if q.conversation.is_none() => continue,
                Err(e) => return Err(e),
            };
            let name_of = |a: &Option<String>| {
                a.as_ref().and_then(|a| c.participants.iter().find(|(p, _)| p == a).map(|(_, n)| n.clone()))
            };
            conversations.push(export::ExportConversation {
                id: c.id,
                kind: c.kind.clone(),
                title: c.title.clone(),
                participants: c.participants.clone(),
                records: c
                    .records
                    .iter()
                    .map(|r| export::ExportRecord {
                        id: r.id,
                        ts: r.entry.ts,
                        kind: r.entry.kind.clone(),
                        actor_name: name_of(&r.entry.actor),
                        actor: r.entry.actor.clone(),
                        body: if r.purged { "(purged)".into() } else { r.entry.body.clone() },
                    })
                    .collect(),
            });
        }
        let stamp = self.now() / 1000;
        let domain = self.settings.domain.clone();
        let file = match format {
            "eml" if conversations.len() == 1 => ExportFile {
                content_type: "message/rfc822",
                file_name: format!("switchboard-conversation-{}.eml", conversations[0].id),
                body: export::to_eml(&conversations[0], &domain),
            },
            "eml" => ExportFile {
                content_type: "application/mbox",
                file_name: format!("switchboard-export-{stamp}.mbox"),
                body: export::to_mbox(&conversations, &domain),
            },
            "jsonl" => ExportFile {
                content_type: "application/x-ndjson",
                file_name: format!("switchboard-export-{stamp}.jsonl"),
                body: export::to_jsonl(&conversations),
            },
            "csv" => ExportFile {
                content_type: "text/csv; charset=utf-8",
                file_name: format!("switchboard-export-{stamp}.csv"),
                body: export::to_csv(&conversations),
            },
            _ => ExportFile {
                content_type: "application/xml; charset=utf-8",
                file_name: format!("switchboard-export-{stamp}.xml"),
                body: export::to_actiance_xml(&conversations),
            },
        };
        let mut detail = query_json(q, conversations.len());
        detail["format"] = json!(format);
        detail["conversations"] = json!(conversations.iter().map(|c| c.id).collect::<Vec<_>>());
        self.audit(officer, "archive.export", &file.file_name, None, Some(detail)).await;
        Ok(file)
    }
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

// ---------------------------------------------------------------- retention and legal hold

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
