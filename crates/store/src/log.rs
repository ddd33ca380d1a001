//! The conversation log in storage: conversations and their members, the single write path
//! for events (`append_with`: ids, sequence numbers, membership changes, retries, the
//! archive, in one transaction), reading the log back, read markers.

use crate::{decode, unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::archive::ArchiveEntry;
use sb_core::conversation::{Appended, ConversationSummary, Member};
use sb_core::store::{ConversationLog, StoreResult};
use sb_core::{
    Address, Conversation, ConversationId, ConversationKind, Event, EventId, EventKind, Millis, NewEvent, StoreError,
    UserId,
};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

const EVENT_COLS: &str = "id, conversation_id, seq, kind, actor_id, actor_address, body, client_id, ts";

fn event_from_row(r: &AnyRow) -> Result<Event, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let actor_id: Option<i64> = r.try_get("actor_id")?;
    let actor_address: Option<String> = r.try_get("actor_address")?;
    let actor = match (actor_id, actor_address) {
        (Some(id), Some(a)) => Some(Member {
            id: UserId(id),
            address: Address::parse(&a).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
        }),
        _ => None,
    };
    Ok(Event {
        id: EventId(r.try_get("id")?),
        conversation: ConversationId(r.try_get("conversation_id")?),
        seq: r.try_get("seq")?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown event kind {kind}").into()))?,
        actor,
        body: r.try_get("body")?,
        client_id: r.try_get("client_id")?,
        ts: r.try_get("ts")?,
    })
}

fn conversation_from_row(r: &AnyRow, members: Vec<Member>) -> Result<Conversation, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    Ok(Conversation {
        id: ConversationId(r.try_get("id")?),
        kind: ConversationKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind}").into()))?,
        title: r.try_get("title")?,
        created_at: r.try_get("created_at")?,
        members,
    })
}

impl SqlStore {
    async fn members_of(&self, ids: &[i64]) -> StoreResult<HashMap<i64, Vec<Member>>> {
        let mut out: HashMap<i64, Vec<Member>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        // Ids are integers we produced; inlining them keeps one statement for both dialects.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!(
            "SELECT m.conversation_id, u.id, u.address FROM conversation_members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id IN ({list}) ORDER BY m.joined_at, u.id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        for r in rows {
            let cid: i64 = r.try_get("conversation_id").map_err(unavailable)?;
            let address: String = r.try_get("address").map_err(unavailable)?;
            let address = Address::parse(&address).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            out.entry(cid).or_default().push(Member { id: UserId(r.try_get("id").map_err(unavailable)?), address });
        }
        Ok(out)
    }
}

#[async_trait]
impl ConversationLog for SqlStore {
    async fn create_conversation(
        &self,
        kind: ConversationKind,
        title: &str,
        members: &[UserId],
        now: Millis,
    ) -> StoreResult<(ConversationId, bool)> {
        let direct_key = match (kind, members) {
            (ConversationKind::Direct, [a, b]) => Some(format!("{}:{}", a.0.min(b.0), a.0.max(b.0))),
            (ConversationKind::Direct, _) => {
                return Err(StoreError::Conflict("a direct conversation has exactly two members".into()))
            }
            _ => None,
        };
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO conversations (kind, title, direct_key, created_at, last_seq) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(kind.as_str())
        .bind(title)
        .bind(direct_key.clone())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(id) = id else {
            let existing: i64 = sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = $1")
                .bind(direct_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
            return Ok((ConversationId(existing), false));
        };
        for m in members {
            sqlx::query("INSERT INTO conversation_members (conversation_id, user_id, joined_at, read_up_to) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(m.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok((ConversationId(id), true))
    }

    async fn direct_conversations(
        &self,
        one: UserId,
        others: &[UserId],
        now: Millis,
    ) -> StoreResult<Vec<(Conversation, bool)>> {
        let key = |o: &UserId| format!("{}:{}", one.0.min(o.0), one.0.max(o.0));
        let mut out = Vec::with_capacity(others.len());
        for chunk in others.chunks(500) {
            let mut tx = self.begin_write().await?;
            let rows = (0..chunk.len())
                .map(|i| format!("('direct', '', {}, {}, 0)", self.ph(2 * i + 1), self.ph(2 * i + 2)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO conversations (kind, title, direct_key, created_at, last_seq) VALUES {rows} \
                 ON CONFLICT DO NOTHING RETURNING id"
            );
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for o in chunk {
                q = q.bind(key(o)).bind(now);
            }
            let created: std::collections::HashSet<i64> =
                q.fetch_all(&mut *tx).await.map_err(unavailable)?.into_iter().collect();
            // Every pair's conversation, made now or before.
            let keys = (1..=chunk.len()).map(|i| self.ph(i)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT id, kind, title, created_at, direct_key FROM conversations WHERE direct_key IN ({keys})"
            );
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q.bind(key(o));
            }
            let found = q.fetch_all(&mut *tx).await.map_err(unavailable)?;
            if !created.is_empty() {
                let by_key: HashMap<String, UserId> = chunk.iter().map(|o| (key(o), *o)).collect();
                let mut pairs = Vec::with_capacity(created.len() * 2);
                for r in &found {
                    let id: i64 = r.try_get("id").map_err(unavailable)?;
                    let k: String = r.try_get("direct_key").map_err(unavailable)?;
                    if let (true, Some(o)) = (created.contains(&id), by_key.get(&k)) {
                        pairs.push((id, one.0));
                        pairs.push((id, o.0));
                    }
                }
                let values = pairs.iter().map(|(c, u)| format!("({c}, {u}, {now}, 0)")).collect::<Vec<_>>().join(", ");
                sqlx::query(&format!(
                    "INSERT INTO conversation_members (conversation_id, user_id, joined_at, read_up_to) VALUES {values} \
                     ON CONFLICT DO NOTHING"
                ))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)?;
            let ids: Vec<i64> = found.iter().filter_map(|r| r.try_get("id").ok()).collect();
            let mut members = self.members_of(&ids).await?;
            for r in &found {
                let id: i64 = r.try_get("id").map_err(unavailable)?;
                let c = conversation_from_row(r, members.remove(&id).unwrap_or_default()).map_err(unavailable)?;
                out.push((c, created.contains(&id)));
            }
        }
        Ok(out)
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let Some(row) = sqlx::query("SELECT id, kind, title, created_at FROM conversations WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut members = self.members_of(&[id.0]).await?;
        conversation_from_row(&row, members.remove(&id.0).unwrap_or_default()).map(Some).map_err(unavailable)
    }

    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        let rows = sqlx::query(
            "SELECT c.id, c.kind, c.title, c.created_at, m.read_up_to, \
               (SELECT COUNT(*) FROM events e WHERE e.conversation_id = c.id AND e.id > m.read_up_to \
                  AND e.kind = 'message' AND (e.actor_id IS NULL OR e.actor_id <> $1)) AS unread, \
               (SELECT MAX(e.id) FROM events e WHERE e.conversation_id = c.id AND e.kind = 'message') AS last_id \
             FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id \
             WHERE m.user_id = $2 ORDER BY c.id",
        )
        .bind(user.0)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>().map_err(unavailable)?;
        let mut members = self.members_of(&ids).await?;
        let last_ids: Vec<i64> =
            rows.iter().filter_map(|r| r.try_get::<Option<i64>, _>("last_id").ok().flatten()).collect();
        let mut last: HashMap<i64, Event> = HashMap::new();
        if !last_ids.is_empty() {
            let list = last_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let evs = sqlx::query(&format!("SELECT {EVENT_COLS} FROM events WHERE id IN ({list})"))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            for e in decode(evs, event_from_row)? {
                last.insert(e.conversation.0, e);
            }
        }
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                Ok(ConversationSummary {
                    conversation: conversation_from_row(r, members.remove(&id).unwrap_or_default())?,
                    unread: r.try_get("unread")?,
                    read_up_to: EventId(r.try_get("read_up_to")?),
                    last_event: last.remove(&id),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn group_conversations(&self) -> StoreResult<Vec<Conversation>> {
        let rows =
            sqlx::query("SELECT id, kind, title, created_at FROM conversations WHERE kind = 'group' ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.try_get("id").ok()).collect();
        let mut members = self.members_of(&ids).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                conversation_from_row(r, members.remove(&id).unwrap_or_default())
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn append_with(
        &self,
        batch: &[NewEvent],
        records: &[sb_core::store::PolicyRecord],
    ) -> StoreResult<(Vec<Appended>, Vec<i64>)> {
        if batch.is_empty() && records.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // A batch costs a fixed handful of statements, not a few per event: the writer's
        // throughput is bound by the database's work, not by round trips.
        let mut tx = self.begin_write().await?;

        // 1. Retries: events whose (actor, client id) is already stored, or earlier in this batch.
        let keys: Vec<(i64, &str)> =
            batch.iter().filter_map(|e| Some((e.actor.as_ref()?.id.0, e.client_id.as_deref()?))).collect();
        let mut stored: HashMap<(i64, String), Event> = HashMap::new();
        if !keys.is_empty() {
            let values = (0..keys.len())
                .map(|i| format!("({}, {})", self.ph(2 * i + 1), self.ph(2 * i + 2)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {EVENT_COLS} FROM events WHERE client_id IS NOT NULL AND (actor_id, client_id) IN (VALUES {values})"
            );
            let mut q = sqlx::query(&sql);
            for (actor, client_id) in &keys {
                q = q.bind(*actor).bind(client_id.to_string());
            }
            for e in decode(q.fetch_all(&mut *tx).await.map_err(unavailable)?, event_from_row)? {
                if let (Some(a), Some(c)) = (&e.actor, &e.client_id) {
                    stored.insert((a.id.0, c.clone()), e);
                }
            }
        }
        enum Slot {
            Stored(Event),
            New(usize),    // index into `fresh`
            SameAs(usize), // index into `fresh` of an earlier copy in this batch
        }
        let mut slots = Vec::with_capacity(batch.len());
        let mut fresh: Vec<&NewEvent> = Vec::with_capacity(batch.len());
        let mut first_copy: HashMap<(i64, &str), usize> = HashMap::new();
        for e in batch {
            let key = e.actor.as_ref().zip(e.client_id.as_deref()).map(|(a, c)| (a.id.0, c));
            if let Some((a, c)) = key {
                if let Some(ev) = stored.get(&(a, c.to_string())) {
                    slots.push(Slot::Stored(ev.clone()));
                    continue;
                }
                if let Some(&i) = first_copy.get(&(a, c)) {
                    slots.push(Slot::SameAs(i));
                    continue;
                }
                first_copy.insert((a, c), fresh.len());
            }
            slots.push(Slot::New(fresh.len()));
            fresh.push(e);
        }

        // 2. Sequence numbers: reserve a range per conversation in one statement.
        let mut per_conversation: Vec<(i64, i64)> = Vec::new();
        let mut index_of: HashMap<i64, usize> = HashMap::new();
        for e in &fresh {
            let c = e.conversation.0;
            match index_of.get(&c) {
                Some(&i) => per_conversation[i].1 += 1,
                None => {
                    index_of.insert(c, per_conversation.len());
                    per_conversation.push((c, 1));
                }
            }
        }
        let mut next_seq: HashMap<i64, i64> = HashMap::new();
        let mut kinds: HashMap<i64, String> = HashMap::new();
        if !per_conversation.is_empty() {
            let n = per_conversation.len();
            // A join with the counts (not `CASE id WHEN …`, which is evaluated branch by
            // branch for every row: quadratic in a fan-out to thousands of conversations).
            let values = (0..n)
                .map(|i| format!("({}, {})", self.ph(2 * i + 1), self.ph(2 * i + 2)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE conversations SET last_seq = conversations.last_seq + v.column2 FROM (VALUES {values}) AS v \
                 WHERE conversations.id = v.column1 RETURNING conversations.id, conversations.last_seq, conversations.kind"
            );
            let mut q = sqlx::query(&sql);
            for (c, count) in &per_conversation {
                q = q.bind(*c).bind(*count);
            }
            for r in q.fetch_all(&mut *tx).await.map_err(unavailable)? {
                let id: i64 = r.try_get("id").map_err(unavailable)?;
                let last: i64 = r.try_get("last_seq").map_err(unavailable)?;
                let count = index_of.get(&id).map_or(0, |&i| per_conversation[i].1);
                next_seq.insert(id, last - count + 1);
                kinds.insert(id, r.try_get("kind").map_err(unavailable)?);
            }
            if next_seq.len() != n {
                return Err(StoreError::NotFound); // a conversation of the batch does not exist
            }
        }
        let seqs: Vec<i64> = fresh
            .iter()
            .map(|e| {
                let s = next_seq.get_mut(&e.conversation.0).expect("reserved above");
                *s += 1;
                *s - 1
            })
            .collect();

        // 3. The events, in one statement.
        let mut ids: HashMap<(i64, i64), i64> = HashMap::new();
        if !fresh.is_empty() {
            let rows = (0..fresh.len())
                .map(|i| format!("({})", (1..=8).map(|c| self.ph(i * 8 + c)).collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO events (conversation_id, seq, kind, actor_id, actor_address, body, client_id, ts) VALUES {rows} \
                 RETURNING id, conversation_id, seq"
            );
            let mut q = sqlx::query(&sql);
            for (e, seq) in fresh.iter().zip(&seqs) {
                q = q
                    .bind(e.conversation.0)
                    .bind(*seq)
                    .bind(e.kind.as_str())
                    .bind(e.actor.as_ref().map(|a| a.id.0))
                    .bind(e.actor.as_ref().map(|a| a.address.as_str().to_string()))
                    .bind(e.body.clone())
                    .bind(e.client_id.clone())
                    .bind(e.ts);
            }
            for r in q.fetch_all(&mut *tx).await.map_err(unavailable)? {
                let key = (r.try_get("conversation_id").map_err(unavailable)?, r.try_get("seq").map_err(unavailable)?);
                ids.insert(key, r.try_get("id").map_err(unavailable)?);
            }
        }
        let events: Vec<Event> = fresh
            .iter()
            .zip(&seqs)
            .map(|(e, seq)| Event {
                id: EventId(ids.get(&(e.conversation.0, *seq)).copied().unwrap_or_default()),
                conversation: e.conversation,
                seq: *seq,
                kind: e.kind,
                actor: e.actor.clone(),
                body: e.body.clone(),
                client_id: e.client_id.clone(),
                ts: e.ts,
            })
            .collect();

        // 4. Membership changes (rare), in batch order.
        for ev in &events {
            match (ev.kind, &ev.actor) {
                (EventKind::Joined, Some(actor)) => {
                    sqlx::query(
                        "INSERT INTO conversation_members (conversation_id, user_id, joined_at, read_up_to) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(ev.conversation.0)
                    .bind(actor.id.0)
                    .bind(ev.ts)
                    .bind(ev.id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                (EventKind::Left, Some(actor)) => {
                    sqlx::query("DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2")
                        .bind(ev.conversation.0)
                        .bind(actor.id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                _ => {}
            }
        }

        // 5. The archive, in the same transaction: what is acknowledged is archived.
        let mut joined: Vec<i64> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Created | EventKind::Joined))
            .map(|e| e.conversation.0)
            .collect();
        joined.sort_unstable();
        joined.dedup();
        self.note_participants(&mut tx, &joined).await?;
        let entries: Vec<ArchiveEntry> = events
            .iter()
            .zip(&fresh)
            .map(|(e, new)| ArchiveEntry {
                ts: e.ts,
                kind: e.kind.as_str().to_string(),
                conversation: Some(e.conversation.0),
                conversation_kind: kinds.get(&e.conversation.0).cloned(),
                event: Some(e.id.0),
                actor: e.actor.as_ref().map(|a| a.address.as_str().to_string()),
                body: e.body.clone(),
                meta: new.note.clone().unwrap_or_default(),
            })
            .collect();
        self.archive_in(&mut tx, &entries).await?;
        // 6. What the policy asks to be kept with the act (rare): its flagged crossings
        //    and the disclaimers it showed.
        let violations = self.policy_records_in(&mut tx, records).await?;
        tx.commit().await.map_err(unavailable)?;
        if self.wal_restart_wanted.swap(false, std::sync::atomic::Ordering::Relaxed) {
            // Mostly copied already by `maintenance`; what is left is small.
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_all(&self.writer).await.map_err(unavailable)?;
        }
        let appended = slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Stored(event) => Appended { event, duplicate: true },
                Slot::New(i) => Appended { event: events[i].clone(), duplicate: false },
                Slot::SameAs(i) => Appended { event: events[i].clone(), duplicate: true },
            })
            .collect();
        Ok((appended, violations))
    }

    async fn events_after(&self, user: UserId, after: EventId, limit: i64) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE conversation_id IN \
             (SELECT conversation_id FROM conversation_members WHERE user_id = $1) AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(user.0)
        .bind(after.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, event_from_row)
    }

    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<EventId>,
        after: Option<EventId>,
        limit: i64,
    ) -> StoreResult<Vec<Event>> {
        let sql = match (before, after) {
            (_, Some(_)) => format!(
                "SELECT {EVENT_COLS} FROM events WHERE conversation_id = $1 AND id > $2 ORDER BY id ASC LIMIT $3"
            ),
            (Some(_), None) => format!(
                "SELECT {EVENT_COLS} FROM events WHERE conversation_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ),
            (None, None) => {
                format!("SELECT {EVENT_COLS} FROM events WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2")
            }
        };
        let mut q = sqlx::query(&sql).bind(conversation.0);
        if let Some(pivot) = after.or(before) {
            q = q.bind(pivot.0);
        }
        let q = q.bind(limit);
        let mut events = decode(q.fetch_all(&self.pool).await.map_err(unavailable)?, event_from_row)?;
        if after.is_none() {
            events.reverse();
        }
        Ok(events)
    }

    async fn last_event_id(&self) -> StoreResult<EventId> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM events").fetch_one(&self.pool).await.map_err(unavailable)?;
        Ok(EventId(id.unwrap_or(0)))
    }

    async fn mark_read(&self, conversation: ConversationId, user: UserId, up_to: EventId) -> StoreResult<EventId> {
        let v: Option<i64> = sqlx::query_scalar(
            "UPDATE conversation_members SET read_up_to = CASE WHEN read_up_to < $1 THEN $2 ELSE read_up_to END \
             WHERE conversation_id = $3 AND user_id = $4 RETURNING read_up_to",
        )
        .bind(up_to.0)
        .bind(up_to.0)
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(&self.writer)
        .await
        .map_err(unavailable)?;
        v.map(EventId).ok_or(StoreError::NotFound)
    }
}
