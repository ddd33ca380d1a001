//! The archive's storage: records sealed into the chain inside the transaction that stores
//! what they record (so an acknowledged message is archived, whatever happens next), the
//! chain's head kept in a one-row table whose row lock orders writers, full-text indexing,
//! reading back for verification and search.

use crate::{unavailable, Backend, SqlStore};
use sb_core::archive::{seal, ArchiveEntry, ArchiveRecord};
use sb_core::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

type StoreResult<T> = Result<T, StoreError>;

/// Used when no key was given: the chain still catches accidents, not a forger.
const UNKEYED: &[u8] = b"switchboard archive without a key";

pub(crate) const ARCHIVE_COLS: &str =
    "id, ts, kind, conversation_id, conversation_kind, event_id, actor, body, meta, content_hash, prev_hash, hash";

pub(crate) fn record_from_row(r: &AnyRow) -> Result<ArchiveRecord, sqlx::Error> {
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
    pub(crate) async fn archive_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        entries: &[ArchiveEntry],
    ) -> StoreResult<()> {
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
            if self.backend == Backend::Sqlite {
                let indexed: Vec<&ArchiveRecord> = chunk.iter().filter(|r| !r.entry.body.is_empty()).collect();
                if !indexed.is_empty() {
                    let rows = (0..indexed.len())
                        .map(|i| format!("({}, {})", self.ph(2 * i + 1), self.ph(2 * i + 2)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!("INSERT INTO archive_fts (rowid, body) VALUES {rows}");
                    let mut q = sqlx::query(&sql);
                    for r in indexed {
                        q = q.bind(r.id).bind(r.entry.body.clone());
                    }
                    q.execute(&mut **tx).await.map_err(unavailable)?;
                }
            }
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
    pub(crate) async fn note_participants(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        conversations: &[i64],
    ) -> StoreResult<()> {
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
