//! E-discovery: archive search by keywords, people, groups, kinds and time; whole archived
//! conversations; exports. Compliance officers only (the HTTP edge checks); all audited.

use crate::{Result, Service};
use sb_core::{ConversationId, CoreError, User};
use serde_json::{json, Value};

/// The furthest an e-discovery search pages (a million hits in).
pub const MAX_ARCHIVE_OFFSET: i64 = 1_000_000;

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
