//! The archive's storage: records sealed into the chain inside the transaction that stores
//! what they record (so an acknowledged message is archived, whatever happens next), the
//! chain's head kept in a one-row table whose row lock orders writers, full-text indexing,
//! reading back for verification and search.
//! Also e-discovery search, retention policies, legal holds and purging.

use crate::write::WriteTx;
use crate::{decode, unavailable, Backend, SqlStore};
use async_trait::async_trait;
use sb_core::archive::{seal, ArchiveEntry, ArchiveHit, ArchiveQuery, ArchiveRecord};
use sb_core::store::{ArchiveStore, StoreResult};
use sb_core::{Millis, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Used when no key was given: the chain still catches accidents, not a forger.
const UNKEYED: &[u8] = b"switchboard archive without a key";

const ARCHIVE_COLS: &str =
    "id, ts, kind, conversation_id, conversation_kind, event_id, actor, body, meta, content_hash, prev_hash, hash";

fn hit_from_row(r: &AnyRow) -> Result<ArchiveHit, sqlx::Error> {
    Ok(ArchiveHit {
        id: r.try_get("id")?,
        ts: r.try_get("ts")?,
        kind: r.try_get("kind")?,
        conversation: r.try_get("conversation_id")?,
        conversation_kind: r.try_get("conversation_kind")?,
        actor: r.try_get("actor")?,
        snippet: r.try_get::<Option<String>, _>("snip")?.unwrap_or_default(),
    })
}

fn record_from_row(r: &AnyRow) -> Result<ArchiveRecord, sqlx::Error> {
    let body: Option<String> = r.try_get("body")?;
    Ok(ArchiveRecord {
        id: r.try_get("id")?,
        purged: body.is_none(),
        entry: ArchiveEntry {
            ts: r.try_get("ts")?,
            kind: r.try_get("kind")?,
            conversation: r.try_get("conversation_id")?,
            conversation_kind: r.try_get("conversation_kind")?,
            event: r.try_get("event_id")?,
            actor: r.try_get("actor")?,
            body: body.unwrap_or_default(),
            meta: r.try_get("meta")?,
        },
        content_hash: r.try_get("content_hash")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl SqlStore {
    /// The key that seals archive records. Set once, before the store is used; it must
    /// live outside the database (a file in the data folder, by default).
    pub fn set_archive_key(&self, key: Vec<u8>) {
        let _ = self.archive_key.set(key);
    }

    pub(crate) fn archive_key(&self) -> &[u8] {
        match self.archive_key.get() {
            Some(k) => k,
            None => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| tracing::warn!("no archive key set: the archive is chained but not sealed"));
                UNKEYED
            }
        }
    }

    /// Seal and store `entries` at the end of the chain, inside `tx`.
    pub(crate) async fn archive_in(&self, tx: &mut WriteTx, entries: &[ArchiveEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // The head row's lock orders every archiving transaction (on SQLite the write lock
        // already does).
        let head =
            sqlx::query("UPDATE archive_head SET last_id = last_id WHERE singleton = 1 RETURNING last_id, last_hash")
                .fetch_one(&mut **tx)
                .await
                .map_err(unavailable)?;
        let last_id: i64 = head.try_get("last_id").map_err(unavailable)?;
        let last_hash: String = head.try_get("last_hash").map_err(unavailable)?;
        let records = seal(self.archive_key(), (last_id, &last_hash), entries);
        for chunk in records.chunks(400) {
            let rows = (0..chunk.len())
                .map(|i| format!("({})", (1..=12).map(|c| self.ph(i * 12 + c)).collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO archive ({ARCHIVE_COLS}) VALUES {rows}");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let e = &r.entry;
                q = q
                    .bind(r.id)
                    .bind(e.ts)
                    .bind(e.kind.clone())
                    .bind(e.conversation)
                    .bind(e.conversation_kind.clone())
                    .bind(e.event)
                    .bind(e.actor.clone())
                    .bind(e.body.clone())
                    .bind(e.meta.clone())
                    .bind(r.content_hash.clone())
                    .bind(r.prev_hash.clone())
                    .bind(r.hash.clone());
            }
            q.execute(&mut **tx).await.map_err(unavailable)?;
        }
        let last = records.last().expect("not empty");
        sqlx::query("UPDATE archive_head SET last_id = $1, last_hash = $2 WHERE singleton = 1")
            .bind(last.id)
            .bind(last.hash.clone())
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Everyone who was in these conversations, for searching by participant.
    pub(crate) async fn note_participants(&self, tx: &mut WriteTx, conversations: &[i64]) -> StoreResult<()> {
        if conversations.is_empty() {
            return Ok(());
        }
        let list = conversations.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        sqlx::query(&format!(
            "INSERT INTO archive_participants (conversation_id, user_id) \
             SELECT conversation_id, user_id FROM conversation_members WHERE conversation_id IN ({list}) \
             ON CONFLICT DO NOTHING"
        ))
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Archive what happened before the archive existed (events only), once.
    pub async fn backfill_archive(&self) -> StoreResult<u64> {
        let head: i64 = sqlx::query_scalar("SELECT last_id FROM archive_head WHERE singleton = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        if head > 0 {
            return Ok(0);
        }
        let mut after = 0_i64;
        let mut total = 0;
        loop {
            let rows = sqlx::query(
                "SELECT e.id, e.conversation_id, c.kind AS ckind, e.kind, e.actor_address, e.body, e.ts FROM events e \
                 JOIN conversations c ON c.id = e.conversation_id WHERE e.id > $1 ORDER BY e.id LIMIT 2000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            if rows.is_empty() {
                break;
            }
            let mut entries = Vec::with_capacity(rows.len());
            let mut conversations = Vec::new();
            for r in &rows {
                let id: i64 = r.try_get("id").map_err(unavailable)?;
                let conversation: i64 = r.try_get("conversation_id").map_err(unavailable)?;
                after = id;
                conversations.push(conversation);
                entries.push(ArchiveEntry {
                    ts: r.try_get("ts").map_err(unavailable)?,
                    kind: r.try_get("kind").map_err(unavailable)?,
                    conversation: Some(conversation),
                    conversation_kind: Some(r.try_get("ckind").map_err(unavailable)?),
                    event: Some(id),
                    actor: r.try_get("actor_address").map_err(unavailable)?,
                    body: r.try_get("body").map_err(unavailable)?,
                    meta: r#"{"backfilled":true}"#.into(),
                });
            }
            conversations.sort_unstable();
            conversations.dedup();
            let mut tx = self.begin_write().await?;
            self.note_participants(&mut tx, &conversations).await?;
            self.archive_in(&mut tx, &entries).await?;
            tx.commit().await.map_err(unavailable)?;
            total += entries.len() as u64;
        }
        if total > 0 {
            tracing::info!(records = total, "archived the events stored before the archive existed");
        }
        Ok(total)
    }
}

/// FTS5 query text: every keyword quoted (so nothing in it is query syntax), all required.
fn fts5_query(words: &[String]) -> String {
    words.iter().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl ArchiveStore for SqlStore {
    async fn archive(&self, entries: &[ArchiveEntry]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        self.archive_in(&mut tx, entries).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn archive_records(&self, after: i64, limit: i64) -> StoreResult<Vec<ArchiveRecord>> {
        let rows = sqlx::query(&format!("SELECT {ARCHIVE_COLS} FROM archive WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, record_from_row)
    }

    async fn search_archive(&self, q: &ArchiveQuery) -> StoreResult<Vec<ArchiveHit>> {
        // What was archived a moment ago is found too.
        self.index_archive().await?;
        let words: Vec<String> = q.keywords.iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        let mut filters: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = |this: &SqlStore| {
            n += 1;
            this.ph(n)
        };
        enum Bind {
            I(i64),
            S(String),
        }
        let mut binds: Vec<Bind> = Vec::new();
        // With people or a conversation to narrow by, SQLite starts from their records (see
        // `search_narrow`): a common keyword then costs little. Without, the full-text index
        // leads.
        let narrow = q.participant.is_some() || q.group.is_some() || q.conversation.is_some();
        if self.backend == Backend::Sqlite && !words.is_empty() && narrow {
            return self.search_narrow(q, &words).await;
        }
        let (select, from, order) = match (self.backend, words.is_empty()) {
            (_, true) => {
                ("substr(a.body, 1, 240) AS snip".to_string(), "archive a".to_string(), "a.id DESC".to_string())
            }
            (Backend::Sqlite, false) => {
                let p = next(self);
                binds.push(Bind::S(fts5_query(&words)));
                filters.push(format!("archive_fts MATCH {p}"));
                (
                    "snippet(archive_fts, 0, char(2), char(3), '…', 24) AS snip".to_string(),
                    "archive_fts JOIN archive a ON a.id = archive_fts.rowid".to_string(),
                    "archive_fts.rowid DESC".to_string(),
                )
            }
            (Backend::Postgres, false) => {
                let p = next(self);
                binds.push(Bind::S(words.join(" ")));
                filters.push("a.tsv @@ q.query".to_string());
                (
                    "ts_headline('english', a.body, q.query, 'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxWords=24, MinWords=8, MaxFragments=1') AS snip".to_string(),
                    format!("archive a, (SELECT plainto_tsquery('english', {p}) AS query) q"),
                    "a.id DESC".to_string(),
                )
            }
        };
        filters.push("a.body IS NOT NULL AND a.body <> ''".into());
        if let Some(u) = q.participant {
            let p = next(self);
            filters.push(format!(
                "a.conversation_id IN (SELECT conversation_id FROM archive_participants WHERE user_id = {p})"
            ));
            binds.push(Bind::I(u.0));
        }
        if let Some(g) = q.group {
            let p = next(self);
            filters.push(format!(
                "a.conversation_id IN (SELECT ap.conversation_id FROM archive_participants ap \
                 JOIN group_members gm ON gm.user_id = ap.user_id WHERE gm.group_id = {p})"
            ));
            binds.push(Bind::I(g.0));
        }
        if let Some(k) = &q.conversation_kind {
            let p = next(self);
            filters.push(format!("a.conversation_kind = {p}"));
            binds.push(Bind::S(k.clone()));
        }
        if let Some(c) = q.conversation {
            let p = next(self);
            filters.push(format!("a.conversation_id = {p}"));
            binds.push(Bind::I(c));
        }
        if let Some(t) = q.from {
            let p = next(self);
            filters.push(format!("a.ts >= {p}"));
            binds.push(Bind::I(t));
        }
        if let Some(t) = q.to {
            let p = next(self);
            filters.push(format!("a.ts < {p}"));
            binds.push(Bind::I(t));
        }
        let (pl, po) = (next(self), next(self));
        binds.push(Bind::I(q.limit.clamp(1, 1000)));
        binds.push(Bind::I(q.offset.max(0)));
        let sql = format!(
            "SELECT a.id, a.ts, a.kind, a.conversation_id, a.conversation_kind, a.actor, {select} FROM {from} \
             WHERE {} ORDER BY {order} LIMIT {pl} OFFSET {po}",
            filters.join(" AND ")
        );
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::I(v) => query.bind(v),
                Bind::S(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(unavailable)?;
        let hits: Vec<ArchiveHit> =
            rows.iter().map(hit_from_row).collect::<Result<_, sqlx::Error>>().map_err(unavailable)?;
        Ok(hits)
    }

    async fn archived_conversation(&self, conversation: i64) -> StoreResult<(Vec<ArchiveRecord>, Vec<UserId>)> {
        let rows = sqlx::query(&format!("SELECT {ARCHIVE_COLS} FROM archive WHERE conversation_id = $1 ORDER BY id"))
            .bind(conversation)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let records = rows.iter().map(record_from_row).collect::<Result<_, _>>().map_err(unavailable)?;
        let people: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM archive_participants WHERE conversation_id = $1 ORDER BY user_id")
                .bind(conversation)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok((records, people.into_iter().map(UserId).collect()))
    }

    async fn archived_participants(&self, conversation: i64) -> StoreResult<Vec<UserId>> {
        let people: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM archive_participants WHERE conversation_id = $1")
                .bind(conversation)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(people.into_iter().map(UserId).collect())
    }

    async fn retention_policies(&self) -> StoreResult<Vec<(Option<sb_core::GroupId>, i64)>> {
        let rows = sqlx::query("SELECT scope, days FROM retention_policies ORDER BY scope")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let scope: String = r.try_get("scope").ok()?;
                let days: i64 = r.try_get("days").ok()?;
                let group = match scope.as_str() {
                    "*" => None,
                    s => Some(sb_core::GroupId(s.strip_prefix("g:")?.parse().ok()?)),
                };
                Some((group, days))
            })
            .collect())
    }

    async fn set_retention_policies(&self, policies: &[(Option<sb_core::GroupId>, i64)]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM retention_policies").execute(&mut *tx).await.map_err(unavailable)?;
        for (g, days) in policies {
            let scope = g.map_or("*".to_string(), |g| format!("g:{}", g.0));
            sqlx::query("INSERT INTO retention_policies (scope, days) VALUES ($1, $2)")
                .bind(scope)
                .bind(*days)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn legal_holds(&self) -> StoreResult<Vec<sb_core::archive::LegalHold>> {
        let rows = sqlx::query(
            "SELECT id, custodian_id, reason, created_by, created_at, released_at FROM legal_holds ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(sb_core::archive::LegalHold {
                    id: r.try_get("id")?,
                    custodian: sb_core::UserId(r.try_get("custodian_id")?),
                    reason: r.try_get("reason")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    released_at: r.try_get("released_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn create_legal_hold(&self, h: &sb_core::archive::LegalHold) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO legal_holds (custodian_id, reason, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(h.custodian.0)
        .bind(h.reason.clone())
        .bind(h.created_by.clone())
        .bind(h.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(id)
    }

    async fn release_legal_hold(&self, id: i64, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE legal_holds SET released_at = $1 WHERE id = $2 AND released_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// Conversations with archived content older than `before`, not yet purged.
    async fn purge_candidates(&self, before: Millis) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT DISTINCT conversation_id FROM archive WHERE conversation_id IS NOT NULL AND body IS NOT NULL AND ts < $1",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Remove the content of a conversation's records and log events older than `cutoff`.
    /// The archive keeps each record's place and content hash, so the chain still verifies.
    async fn purge(&self, conversation: Option<i64>, cutoff: Millis, now: Millis) -> StoreResult<(u64, u64)> {
        self.index_archive().await?;
        let mut tx = self.begin_write().await?;
        let scope = match conversation {
            Some(_) => "conversation_id = $1",
            None => "conversation_id IS NULL AND $1 = $1",
        };
        let c = conversation.unwrap_or(0);
        if self.backend == Backend::Sqlite {
            sqlx::query(&format!(
                "INSERT INTO archive_fts (archive_fts, rowid, body) SELECT 'delete', id, body FROM archive \
                 WHERE {scope} AND ts < $2 AND body IS NOT NULL AND body <> '' \
                 AND id <= (SELECT last_id FROM archive_fts_head WHERE singleton = 1)"
            ))
            .bind(c)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        let records = sqlx::query(&format!(
            "UPDATE archive SET body = NULL, purged_at = $3 WHERE {scope} AND ts < $2 AND body IS NOT NULL"
        ))
        .bind(c)
        .bind(cutoff)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        let events = match conversation {
            Some(c) => sqlx::query("DELETE FROM events WHERE conversation_id = $1 AND ts < $2")
                .bind(c)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected(),
            None => 0,
        };
        tx.commit().await.map_err(unavailable)?;
        Ok((records, events))
    }
}

impl SqlStore {
    /// SQLite, keywords with people or a conversation to narrow by: the narrowing records'
    /// ids come from an index alone; the full-text index then gives the keyword's records
    /// within that id range; their intersection, newest first, is the result.
    async fn search_narrow(&self, q: &ArchiveQuery, words: &[String]) -> StoreResult<Vec<ArchiveHit>> {
        let mut filters: Vec<String> = Vec::new();
        let mut binds: Vec<i64> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        if let Some(u) = q.participant {
            binds.push(u.0);
            filters.push(format!(
                "a.conversation_id IN (SELECT conversation_id FROM archive_participants WHERE user_id = ${})",
                binds.len()
            ));
        }
        if let Some(g) = q.group {
            binds.push(g.0);
            filters.push(format!(
                "a.conversation_id IN (SELECT ap.conversation_id FROM archive_participants ap \
                 JOIN group_members gm ON gm.user_id = ap.user_id WHERE gm.group_id = ${})",
                binds.len()
            ));
        }
        if let Some(c) = q.conversation {
            binds.push(c);
            filters.push(format!("a.conversation_id = ${}", binds.len()));
        }
        if let Some(t) = q.from {
            binds.push(t);
            filters.push(format!("a.ts >= ${}", binds.len()));
        }
        if let Some(t) = q.to {
            binds.push(t);
            filters.push(format!("a.ts < ${}", binds.len()));
        }
        if let Some(k) = &q.conversation_kind {
            texts.push(k.clone());
            filters.push(format!("a.conversation_kind = ${}", binds.len() + texts.len()));
        }
        // `$n` placeholders in order of binding: integers first, then the kind.
        let sql = format!("SELECT a.id FROM archive a WHERE {} ORDER BY a.id DESC LIMIT 500000", filters.join(" AND "));
        let sql = self.positional(&sql);
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for b in &binds {
            query = query.bind(*b);
        }
        for t in &texts {
            query = query.bind(t.clone());
        }
        let candidates: Vec<i64> = query.fetch_all(&self.pool).await.map_err(unavailable)?;
        let (Some(&hi), Some(&lo)) = (candidates.first(), candidates.last()) else { return Ok(Vec::new()) };
        let matching: std::collections::HashSet<i64> = sqlx::query_scalar::<_, i64>(
            "SELECT rowid FROM archive_fts WHERE archive_fts MATCH $1 AND rowid >= $2 AND rowid <= $3",
        )
        .bind(fts5_query(words))
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
        let page: Vec<i64> = candidates
            .into_iter()
            .filter(|id| matching.contains(id))
            .skip(q.offset.max(0) as usize)
            .take(q.limit.clamp(1, 1000) as usize)
            .collect();
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let ids = page.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!(
            "SELECT a.id, a.ts, a.kind, a.conversation_id, a.conversation_kind, a.actor, \
             snippet(archive_fts, 0, char(2), char(3), '…', 24) AS snip \
             FROM archive_fts JOIN archive a ON a.id = archive_fts.rowid \
             WHERE archive_fts MATCH $1 AND archive_fts.rowid IN ({ids}) ORDER BY a.id DESC"
        ))
        .bind(fts5_query(words))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(hit_from_row).collect::<Result<_, sqlx::Error>>().map_err(unavailable)
    }

    /// `$n` → the backend's placeholder.
    fn positional(&self, sql: &str) -> String {
        if self.backend != Backend::Sqlite {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push('?');
                out.push_str(&n);
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl SqlStore {
    /// SQLite: bring the full-text index up to the archive (records are indexed after they
    /// are committed, in large batches, not inside each message's transaction). Returns the
    /// records looked at. PostgreSQL indexes as it inserts (a generated column).
    pub async fn index_archive(&self) -> StoreResult<u64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        // Nothing new (most seconds): find that out on a reader, without the write lock.
        let behind: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT MAX(id) FROM archive), 0) - (SELECT last_id FROM archive_fts_head WHERE singleton = 1)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        if behind <= 0 {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let from: i64 = sqlx::query_scalar("SELECT last_id FROM archive_fts_head WHERE singleton = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
            let rows = sqlx::query("SELECT id, body FROM archive WHERE id > $1 ORDER BY id LIMIT 4000")
                .bind(from)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
            let Some(last) = rows.last().map(|r| r.try_get::<i64, _>("id")).transpose().map_err(unavailable)? else {
                tx.rollback().await;
                return Ok(total);
            };
            let texts: Vec<(i64, String)> = rows
                .iter()
                .filter_map(|r| Some((r.try_get("id").ok()?, r.try_get::<Option<String>, _>("body").ok()??)))
                .filter(|(_, b): &(i64, String)| !b.is_empty())
                .collect();
            for chunk in texts.chunks(400) {
                let values = (0..chunk.len())
                    .map(|i| format!("({}, {})", self.ph(2 * i + 1), self.ph(2 * i + 2)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!("INSERT INTO archive_fts (rowid, body) VALUES {values}");
                let mut q = sqlx::query(&sql);
                for (id, body) in chunk {
                    q = q.bind(*id).bind(body.clone());
                }
                q.execute(&mut *tx).await.map_err(unavailable)?;
            }
            sqlx::query("UPDATE archive_fts_head SET last_id = $1 WHERE singleton = 1")
                .bind(last)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            total += rows.len() as u64;
            if rows.len() < 4000 {
                return Ok(total);
            }
        }
    }
}
