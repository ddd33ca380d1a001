//! Expert queues in storage: queue definitions and their members and managers, queue chats
//! and their lifecycle events (archived in the same transaction), offline messages, surveys
//! and wrap-ups.

use crate::{decode, unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::archive::ArchiveEntry;
use sb_core::queue::{
    ChatId, ChatRecordState, ChatTimes, OverflowAction, QueueChatRecord, QueueDef, QueueEvent, QueueManager,
    QueueMember, RoutingMethod,
};
use sb_core::store::{OfflineChat, QueueStore, StoreResult};
use sb_core::{Address, ConversationId, Millis, StoreError, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

const QUEUE_CHAT_COLS: &str =
    "id, queue_id, seeker_id, conversation_id, question, answers, state, expert_id, requested_at";

/// Structured queue settings are kept as JSON text (same on both backends).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(s).map_err(|e| sqlx::Error::Decode(format!("bad JSON in a queue column: {e}").into()))
}

fn action(r: &AnyRow, action_col: &str, queue_col: &str) -> Result<OverflowAction, sqlx::Error> {
    let a: String = r.try_get(action_col)?;
    let q: Option<String> = r.try_get(queue_col)?;
    OverflowAction::parse(Some(&a).filter(|a| !a.is_empty()).map(String::as_str), q.as_deref())
        .map_err(|e| sqlx::Error::Decode(e.into()))
}

fn queue_chat_from_row(r: &AnyRow) -> Result<QueueChatRecord, sqlx::Error> {
    Ok(QueueChatRecord {
        id: ChatId(r.try_get::<i64, _>("id")? as u64),
        queue: r.try_get("queue_id")?,
        seeker: UserId(r.try_get("seeker_id")?),
        conversation: ConversationId(r.try_get("conversation_id")?),
        question: r.try_get("question")?,
        answers: from_json(&r.try_get::<String, _>("answers")?)?,
        state: {
            let s: String = r.try_get("state")?;
            ChatRecordState::parse(&s).ok_or_else(|| sqlx::Error::Decode(format!("queue chat state {s}").into()))?
        },
        expert: r.try_get::<Option<i64>, _>("expert_id")?.map(UserId),
        requested_at: r.try_get("requested_at")?,
    })
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn save_queue(&self, q: &QueueDef, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO queues (id, display_name, address, description, method, offer_timeout_ms, capacity, daily_cap, \
               max_wait_ms, enabled, closed, welcome, closed_message, show_expert_name, updated_at, overflow_queue, no_expert_queue, \
               overflow_action, no_expert_action, offline_message, hours, form, canned, wrap_up_tags, wrap_up_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, address = excluded.address, \
               description = excluded.description, method = excluded.method, offer_timeout_ms = excluded.offer_timeout_ms, \
               capacity = excluded.capacity, daily_cap = excluded.daily_cap, max_wait_ms = excluded.max_wait_ms, \
               enabled = excluded.enabled, closed = excluded.closed, welcome = excluded.welcome, \
               closed_message = excluded.closed_message, show_expert_name = excluded.show_expert_name, \
               updated_at = excluded.updated_at, overflow_queue = excluded.overflow_queue, \
               no_expert_queue = excluded.no_expert_queue, overflow_action = excluded.overflow_action, \
               no_expert_action = excluded.no_expert_action, offline_message = excluded.offline_message, \
               hours = excluded.hours, form = excluded.form, canned = excluded.canned, \
               wrap_up_tags = excluded.wrap_up_tags, wrap_up_ms = excluded.wrap_up_ms",
        )
        .bind(&q.id)
        .bind(&q.display_name)
        .bind(q.address.as_str())
        .bind(&q.description)
        .bind(q.method.as_str())
        .bind(q.offer_timeout_ms)
        .bind(i64::from(q.capacity))
        .bind(q.daily_cap.map(i64::from))
        .bind(q.max_wait_ms)
        .bind(i64::from(q.enabled))
        .bind(i64::from(q.closed))
        .bind(&q.welcome)
        .bind(&q.closed_message)
        .bind(i64::from(q.show_expert_name))
        .bind(now)
        .bind(q.overflow.queue().map(str::to_string))
        .bind(q.no_expert.queue().map(str::to_string))
        .bind(q.overflow.as_str())
        .bind(q.no_expert.as_str())
        .bind(&q.offline_message)
        .bind(q.hours.as_ref().map(to_json).unwrap_or_default())
        .bind(to_json(&q.form))
        .bind(to_json(&q.canned))
        .bind(to_json(&q.wrap_up_tags))
        .bind(q.wrap_up_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| match unavailable(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("the address {} is taken", q.address)),
            other => other,
        })?;
        sqlx::query("DELETE FROM queue_members WHERE queue_id = $1")
            .bind(&q.id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for m in &q.members {
            sqlx::query("INSERT INTO queue_members (queue_id, user_id, priority, skills) VALUES ($1, $2, $3, $4)")
                .bind(&q.id)
                .bind(m.user.0)
                .bind(i64::from(m.priority))
                .bind(m.skills.join(","))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        sqlx::query("DELETE FROM queue_managers WHERE queue_id = $1")
            .bind(&q.id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for m in &q.managers {
            sqlx::query("INSERT INTO queue_managers (queue_id, user_id) VALUES ($1, $2)")
                .bind(&q.id)
                .bind(m.user.0)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn queues(&self) -> StoreResult<Vec<QueueDef>> {
        let rows = sqlx::query(
            "SELECT id, display_name, address, description, method, offer_timeout_ms, capacity, daily_cap, max_wait_ms, \
               enabled, closed, welcome, closed_message, show_expert_name, overflow_queue, no_expert_queue, \
               overflow_action, no_expert_action, offline_message, hours, form, canned, wrap_up_tags, wrap_up_ms \
             FROM queues ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let members = sqlx::query(
            "SELECT m.queue_id, m.user_id, u.address, m.priority, m.skills FROM queue_members m \
             JOIN users u ON u.id = m.user_id ORDER BY m.queue_id, m.priority, u.address",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut by_queue: HashMap<String, Vec<QueueMember>> = HashMap::new();
        for r in &members {
            let decode_member = || -> Result<(String, QueueMember), sqlx::Error> {
                let address: String = r.try_get("address")?;
                let skills: String = r.try_get("skills")?;
                Ok((
                    r.try_get("queue_id")?,
                    QueueMember {
                        user: UserId(r.try_get("user_id")?),
                        address: Address::parse(&address).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                        priority: r.try_get::<i64, _>("priority")? as i32,
                        skills: skills.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                    },
                ))
            };
            let (q, m) = decode_member().map_err(unavailable)?;
            by_queue.entry(q).or_default().push(m);
        }
        let managers = sqlx::query(
            "SELECT m.queue_id, m.user_id, u.address FROM queue_managers m \
             JOIN users u ON u.id = m.user_id ORDER BY m.queue_id, u.address",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut managers_of: HashMap<String, Vec<QueueManager>> = HashMap::new();
        for r in &managers {
            let decode_manager = || -> Result<(String, QueueManager), sqlx::Error> {
                let address: String = r.try_get("address")?;
                Ok((
                    r.try_get("queue_id")?,
                    QueueManager {
                        user: UserId(r.try_get("user_id")?),
                        address: Address::parse(&address).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                    },
                ))
            };
            let (q, m) = decode_manager().map_err(unavailable)?;
            managers_of.entry(q).or_default().push(m);
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let address: String = r.try_get("address")?;
                let method: String = r.try_get("method")?;
                Ok(QueueDef {
                    members: by_queue.remove(&id).unwrap_or_default(),
                    managers: managers_of.remove(&id).unwrap_or_default(),
                    display_name: r.try_get("display_name")?,
                    address: Address::parse(&address).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                    description: r.try_get("description")?,
                    method: RoutingMethod::parse(&method)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown routing method {method}").into()))?,
                    offer_timeout_ms: r.try_get("offer_timeout_ms")?,
                    capacity: r.try_get::<i64, _>("capacity")? as u32,
                    daily_cap: r.try_get::<Option<i64>, _>("daily_cap")?.map(|v| v as u32),
                    max_wait_ms: r.try_get("max_wait_ms")?,
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                    closed: r.try_get::<i64, _>("closed")? != 0,
                    welcome: r.try_get("welcome")?,
                    closed_message: r.try_get("closed_message")?,
                    show_expert_name: r.try_get::<i64, _>("show_expert_name")? != 0,
                    overflow: action(r, "overflow_action", "overflow_queue")?,
                    no_expert: action(r, "no_expert_action", "no_expert_queue")?,
                    offline_message: r.try_get("offline_message")?,
                    hours: {
                        let h: String = r.try_get("hours")?;
                        if h.is_empty() {
                            None
                        } else {
                            Some(from_json(&h)?)
                        }
                    },
                    form: from_json(&r.try_get::<String, _>("form")?)?,
                    canned: from_json(&r.try_get::<String, _>("canned")?)?,
                    wrap_up_tags: from_json(&r.try_get::<String, _>("wrap_up_tags")?)?,
                    wrap_up_ms: r.try_get("wrap_up_ms")?,
                    id,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn delete_queue(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for table in ["queue_members", "queue_managers"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE queue_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let r =
            sqlx::query("DELETE FROM queues WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn open_queue_chat(
        &self,
        queue: &str,
        title: &str,
        seeker: UserId,
        question: &str,
        answers: &[(String, String)],
        now: Millis,
    ) -> StoreResult<(ConversationId, ChatId)> {
        let mut tx = self.begin_write().await?;
        let conversation: i64 = sqlx::query_scalar(
            "INSERT INTO conversations (kind, title, direct_key, created_at, last_seq) VALUES ('queue', $1, NULL, $2, 0) RETURNING id",
        )
        .bind(title)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at, read_up_to) VALUES ($1, $2, $3, 0)",
        )
        .bind(conversation)
        .bind(seeker.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO queue_chats (queue_id, seeker_id, conversation_id, question, answers, state, requested_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6) RETURNING id",
        )
        .bind(queue)
        .bind(seeker.0)
        .bind(conversation)
        .bind(question)
        .bind(to_json(&answers))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok((ConversationId(conversation), ChatId(id as u64)))
    }

    async fn queue_chat(&self, id: ChatId) -> StoreResult<Option<QueueChatRecord>> {
        let row = sqlx::query(&format!("SELECT {QUEUE_CHAT_COLS} FROM queue_chats WHERE id = $1"))
            .bind(id.0 as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(queue_chat_from_row).transpose().map_err(unavailable)
    }

    async fn open_queue_chats(&self) -> StoreResult<Vec<QueueChatRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {QUEUE_CHAT_COLS} FROM queue_chats WHERE state IN ('queued', 'assigned', 'wrap_up') ORDER BY requested_at"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, queue_chat_from_row)
    }

    async fn queue_history(
        &self,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<(Vec<(String, u64)>, Vec<ChatTimes>)> {
        let counts = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM queue_events WHERE queue_id = $1 AND ts >= $2 AND ts < $3 GROUP BY kind",
        )
        .bind(queue)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get::<i64, _>("n")? as u64)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(unavailable)?;
        let chats = sqlx::query(
            "SELECT requested_at, assigned_at, closed_at, survey_rating FROM queue_chats \
             WHERE queue_id = $1 AND requested_at >= $2 AND requested_at < $3",
        )
        .bind(queue)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| {
            Ok(ChatTimes {
                requested_at: r.try_get("requested_at")?,
                assigned_at: r.try_get("assigned_at")?,
                closed_at: r.try_get("closed_at")?,
                survey_rating: r.try_get::<Option<i64>, _>("survey_rating")?.map(|v| v as u8),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(unavailable)?;
        Ok((counts, chats))
    }

    async fn save_survey(&self, chat: ChatId, rating: u8, comment: &str) -> StoreResult<()> {
        self.exec_one(
            sqlx::query("UPDATE queue_chats SET survey_rating = $1, survey_comment = $2 WHERE id = $3")
                .bind(i64::from(rating))
                .bind(comment)
                .bind(chat.0 as i64),
        )
        .await
    }

    async fn save_wrap_up(&self, chat: ChatId, tags: &[String], note: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE queue_chats SET tags = $1, wrap_note = $2 WHERE id = $3")
            .bind(to_json(&tags))
            .bind(note)
            .bind(chat.0 as i64)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn offline_messages(&self, queue: &str, limit: u32) -> StoreResult<Vec<OfflineChat>> {
        let rows = sqlx::query(&format!(
            "SELECT {QUEUE_CHAT_COLS}, taken_by, taken_at FROM queue_chats WHERE queue_id = $1 AND state = 'offline' \
             ORDER BY requested_at DESC, id DESC LIMIT $2"
        ))
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(OfflineChat {
                    record: queue_chat_from_row(r)?,
                    taken_by: r.try_get::<Option<i64>, _>("taken_by")?.map(UserId),
                    taken_at: r.try_get("taken_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn take_offline(&self, chat: ChatId, expert: UserId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE queue_chats SET taken_by = $1, taken_at = COALESCE(taken_at, $2) \
             WHERE id = $3 AND state = 'offline' AND (taken_by IS NULL OR taken_by = $1)",
        )
        .bind(expert.0)
        .bind(now)
        .bind(chat.0 as i64)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_queue_events(&self, events: &[(String, QueueEvent)], now: Millis) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        // Queue transitions are archived too, with their chat's conversation.
        let chat_ids = events.iter().map(|(_, e)| (e.chat().0 as i64).to_string()).collect::<Vec<_>>().join(",");
        let conversations: HashMap<i64, i64> =
            sqlx::query(&format!("SELECT id, conversation_id FROM queue_chats WHERE id IN ({chat_ids})"))
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?
                .iter()
                .filter_map(|r| Some((r.try_get("id").ok()?, r.try_get("conversation_id").ok()?)))
                .collect();
        let mut archived = Vec::with_capacity(events.len());
        for (queue, e) in events {
            let chat = e.chat().0 as i64;
            sqlx::query(
                "INSERT INTO queue_events (chat_id, queue_id, kind, expert_id, ts) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(chat)
            .bind(queue)
            .bind(e.kind())
            .bind(e.expert().map(|u| u.0))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            archived.push(ArchiveEntry {
                ts: now,
                kind: format!("queue.{}", e.kind()),
                conversation: conversations.get(&chat).copied(),
                conversation_kind: Some("queue".into()),
                event: None,
                actor: None,
                body: String::new(),
                meta: format!(
                    "{{\"chat\":{chat},\"queue\":{},\"expert\":{}}}",
                    serde_json::Value::from(queue.as_str()),
                    e.expert().map_or("null".to_string(), |u| u.0.to_string())
                ),
            });
            if let QueueEvent::Queued { .. } = e {
                // Waiting (again): first arrival, or rolled over from another queue.
                sqlx::query("UPDATE queue_chats SET state = 'queued', queue_id = $1, closed_at = NULL WHERE id = $2")
                    .bind(queue)
                    .bind(chat)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            let update = match e {
                QueueEvent::Assigned { expert, .. } => {
                    Some((ChatRecordState::Assigned, Some(expert.0), Some(now), None))
                }
                QueueEvent::Transferred { to_queue, .. } => {
                    if let Some(q) = to_queue {
                        sqlx::query("UPDATE queue_chats SET queue_id = $1 WHERE id = $2")
                            .bind(q)
                            .bind(chat)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    Some((ChatRecordState::Queued, None, None, None))
                }
                QueueEvent::WrapUp { .. } => Some((ChatRecordState::WrapUp, None, None, None)),
                QueueEvent::Closed { .. } => Some((ChatRecordState::Closed, None, None, Some(now))),
                QueueEvent::Abandoned { .. } => Some((ChatRecordState::Abandoned, None, None, Some(now))),
                QueueEvent::Overflowed { .. } => Some((ChatRecordState::Overflowed, None, None, Some(now))),
                QueueEvent::OfflineMessage { .. } => Some((ChatRecordState::Offline, None, None, Some(now))),
                _ => None,
            };
            if let Some((state, expert, assigned_at, closed_at)) = update {
                sqlx::query(
                    "UPDATE queue_chats SET state = $1, expert_id = COALESCE($2, expert_id), \
                     assigned_at = COALESCE($3, assigned_at), closed_at = COALESCE($4, closed_at) WHERE id = $5",
                )
                .bind(state.as_str())
                .bind(expert)
                .bind(assigned_at)
                .bind(closed_at)
                .bind(chat)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
        }
        self.archive_in(&mut tx, &archived).await?;
        tx.commit().await.map_err(unavailable)
    }
}
