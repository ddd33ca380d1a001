//! Storage adapters for the core's [`Store`] port: SQLite (the embedded default, WAL) and
//! PostgreSQL (scale-out).
//!
//! Both run the same SQL through sqlx's `Any` driver: the statements here use only what the
//! two dialects share (`$n` placeholders in order of appearance, `RETURNING`, `ON CONFLICT`,
//! partial indexes, integers for times and flags). What differs — DDL, connection pragmas —
//! lives in the per-backend migrations and in [`SqlStore::connect`].

mod alerts;
mod archive;
mod compliance;
mod write;

pub use write::WriteHealth;
use write::WriteTx;

use async_trait::async_trait;
use sb_core::archive::{ArchiveEntry, ArchiveRecord};
use sb_core::conversation::{Appended, ConversationSummary, Member};
use sb_core::directory::NewUser;
use sb_core::queue::{
    ChatId, ChatTimes, OverflowAction, QueueChatRecord, QueueDef, QueueEvent, QueueManager, QueueMember, RoutingMethod,
};
use sb_core::store::{Application, AuthSession, OfflineChat, Store, StoreResult, Webhook, WebhookDelivery};
use sb_core::{
    Address, Conversation, ConversationId, ConversationKind, Event, EventId, EventKind, Group, GroupId, Millis,
    NewEvent, Role, StoreError, User, UserId,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_queues.sql")),
    (3, include_str!("../migrations/sqlite/0003_queue_chats.sql")),
    (4, include_str!("../migrations/sqlite/0004_survey.sql")),
    (5, include_str!("../migrations/sqlite/0005_rollover.sql")),
    (6, include_str!("../migrations/sqlite/0006_webhooks.sql")),
    (7, include_str!("../migrations/sqlite/0007_queue_options.sql")),
    (8, include_str!("../migrations/sqlite/0008_archive.sql")),
    (9, include_str!("../migrations/sqlite/0009_compliance.sql")),
    (10, include_str!("../migrations/sqlite/0010_alerts.sql")),
    (11, include_str!("../migrations/sqlite/0011_archive_index.sql")),
    (12, include_str!("../migrations/sqlite/0012_fts_follower.sql")),
    (13, include_str!("../migrations/sqlite/0013_archive_lean_indexes.sql")),
    (14, include_str!("../migrations/sqlite/0014_mail_intake.sql")),
    (15, include_str!("../migrations/sqlite/0015_storage_probe.sql")),
    (16, include_str!("../migrations/sqlite/0016_queue_managers.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_queues.sql")),
    (3, include_str!("../migrations/postgres/0003_queue_chats.sql")),
    (4, include_str!("../migrations/postgres/0004_survey.sql")),
    (5, include_str!("../migrations/postgres/0005_rollover.sql")),
    (6, include_str!("../migrations/postgres/0006_webhooks.sql")),
    (7, include_str!("../migrations/postgres/0007_queue_options.sql")),
    (8, include_str!("../migrations/postgres/0008_archive.sql")),
    (9, include_str!("../migrations/postgres/0009_compliance.sql")),
    (10, include_str!("../migrations/postgres/0010_alerts.sql")),
    (11, include_str!("../migrations/postgres/0011_archive_index.sql")),
    (12, include_str!("../migrations/postgres/0012_fts_follower.sql")),
    (13, include_str!("../migrations/postgres/0013_archive_lean_indexes.sql")),
    (14, include_str!("../migrations/postgres/0014_mail_intake.sql")),
    (15, include_str!("../migrations/postgres/0015_storage_probe.sql")),
    (16, include_str!("../migrations/postgres/0016_queue_managers.sql")),
];

/// What a commit survives on SQLite (PostgreSQL follows its own `synchronous_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit is in the operating system when it returns: it survives the process being
    /// killed (`kill -9`, a crash) and a restart, not the machine losing power.
    /// (`synchronous = NORMAL` in WAL mode: no fsync per commit.)
    #[default]
    Process,
    /// A commit is on disk when it returns (`synchronous = FULL`: one fsync per group commit).
    PowerLoss,
}

/// The SQL adapter. Cheap to clone.
#[derive(Clone)]
pub struct SqlStore {
    /// Reads.
    pool: AnyPool,
    /// Writes. On SQLite one connection: SQLite has one writer at a time anyway, and a
    /// connection that always writes keeps its page cache warm (a pooled one would find its
    /// cache invalidated by whichever connection wrote last). On PostgreSQL the same pool.
    writer: AnyPool,
    backend: Backend,
    /// Set by `maintenance` when the WAL has grown large: the writer then checkpoints on its
    /// own connection between batches, which lets the next commit restart the WAL file.
    wal_restart_wanted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Seals archive records (see `archive`).
    archive_key: std::sync::Arc<std::sync::OnceLock<Vec<u8>>>,
    /// Whether writes commit (see `write`).
    health: std::sync::Arc<WriteHealth>,
}

/// WAL frames (4 KiB pages) before the writer takes a checkpoint itself.
const WAL_RESTART_FRAMES: i64 = 16_384;

fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Unavailable(e.to_string()),
    }
}

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
        state: r.try_get("state")?,
        expert: r.try_get::<Option<i64>, _>("expert_id")?.map(UserId),
        requested_at: r.try_get("requested_at")?,
    })
}

const DELIVERY_COLS: &str =
    "id, webhook_id, event, payload, state, attempts, last_status, last_error, next_attempt_at, created_at, delivered_at";

fn delivery_from_row(r: &AnyRow) -> Result<WebhookDelivery, sqlx::Error> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        webhook: r.try_get("webhook_id")?,
        event: r.try_get("event")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn webhook_from_row(r: &AnyRow) -> Result<Webhook, sqlx::Error> {
    Ok(Webhook {
        id: r.try_get("id")?,
        queue: r.try_get("queue_id")?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        created_at: r.try_get("created_at")?,
    })
}

const USER_COLS: &str = "id, address, display_name, email, locale, roles, disabled";
const EVENT_COLS: &str = "id, conversation_id, seq, kind, actor_id, actor_address, body, client_id, ts";

fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    let address: String = r.try_get("address")?;
    Ok(User {
        id: UserId(r.try_get("id")?),
        address: Address::parse(&address).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
        display_name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        locale: r.try_get("locale")?,
        roles: Role::parse_list(&r.try_get::<String, _>("roles")?),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

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

fn app_from_row(r: &AnyRow) -> Result<Application, sqlx::Error> {
    Ok(Application {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scopes: r.try_get::<String, _>("scopes")?.split_whitespace().map(str::to_string).collect(),
        created_at: r.try_get("created_at")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    })
}

fn decode<T>(rows: Vec<AnyRow>, f: fn(&AnyRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect::<Result<_, _>>().map_err(unavailable)
}

impl SqlStore {
    /// Connect with default options and bring the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Durability::default()).await
    }

    /// Connect and bring the schema up to date. `sqlite://path` creates the file.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Unavailable(format!(
                "unsupported database URL (use sqlite://… or postgres://…): {}",
                redact(url)
            ))
        })?;
        let (url, max) = match backend {
            Backend::Sqlite if !url.contains('?') => (format!("{url}?mode=rwc"), 8),
            Backend::Sqlite => (url.to_string(), 8),
            Backend::Postgres => (url.to_string(), 16),
        };
        let open = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                // A ping per checkout is a round trip on the hot path; broken connections
                // surface as errors on use instead, and the pool replaces them.
                .test_before_acquire(false)
                .after_connect(move |conn, _| Box::pin(async move { prepare(conn, backend, durability).await }))
                .connect(&url)
        };
        // One connection first, outside any pool: a pool retries a failing connect until
        // its timeout and then reports only that it timed out, hiding the cause ("file is
        // not a database", "database or disk is full", "password authentication failed").
        {
            let mut first = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
                .await
                .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", redact(&url))))?;
            prepare(&mut first, backend, durability)
                .await
                .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", redact(&url))))?;
            let _ = sqlx::Connection::close(first).await;
        }
        let cannot = |e: sqlx::Error| StoreError::Unavailable(format!("cannot open {}: {e}", redact(&url)));
        let writer = open(if backend == Backend::Sqlite { 1 } else { max }).await.map_err(cannot)?;
        let pool = match backend {
            Backend::Sqlite => open(max).await.map_err(cannot)?,
            Backend::Postgres => writer.clone(),
        };
        let store = Self {
            pool,
            writer,
            backend,
            wal_restart_wanted: Default::default(),
            archive_key: Default::default(),
            health: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await
            .map_err(unavailable)?;
        for (version, sql) in migrations {
            let mut tx = self.begin_write().await?;
            if self.backend == Backend::Postgres {
                // Two processes starting at once (server and admin CLI) must not both migrate.
                tx.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE").await.map_err(unavailable)?;
            }
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            if done.is_some() {
                tx.rollback().await;
                continue;
            }
            for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                tx.execute(stmt).await.map_err(|e| StoreError::Unavailable(format!("migration {version}: {e}")))?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(0_i64)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            tracing::info!(version, backend = ?self.backend, "applied migration");
        }
        Ok(())
    }

    /// Begin a transaction that will write: committed, or nothing of it stays (`write`).
    async fn begin_write(&self) -> StoreResult<WriteTx> {
        let conn = self.writer.acquire().await.map_err(|e| {
            match e {
                // The writer is busy past its timeout: overload, not a fault by itself.
                sqlx::Error::PoolTimedOut => self.health.suspect(),
                _ => self.health.failed(e.to_string()),
            }
            unavailable(e)
        })?;
        WriteTx::begin(conn, self.backend == Backend::Sqlite, self.health.clone()).await.map_err(unavailable)
    }

    /// Whether writes commit: the last storage fault while it lasts.
    pub fn write_health(&self) -> &WriteHealth {
        &self.health
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

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

/// Per-connection settings. SQLite: WAL lets readers run beside the one writer;
/// checkpoints run in `maintenance`, on a reader, so a commit never pays for copying the WAL
/// into the database file.
async fn prepare(conn: &mut sqlx::AnyConnection, backend: Backend, durability: Durability) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute(match durability {
            Durability::Process => "PRAGMA synchronous = NORMAL",
            Durability::PowerLoss => "PRAGMA synchronous = FULL",
        })
        .await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        conn.execute("PRAGMA cache_size = -8192").await?;
        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
    }
    Ok(())
}

/// Hide a password in a database URL before it is shown anywhere.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
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

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn maintenance(&self) -> StoreResult<()> {
        // A write ended without commit, or writes are failing: try a tiny one, so readiness
        // reports the fault while it lasts and clears by itself once writes commit again.
        if self.health.take_suspect() || self.health.fault().is_some() {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO storage_probe (id, at) VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET at = storage_probe.at + 1",
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                self.health.failed(e.to_string());
                unavailable(e)
            })?;
            tx.commit().await.map_err(unavailable)?;
        }
        if self.backend == Backend::Sqlite {
            // The full-text index follows the archive, in large batches off the commit path.
            self.index_archive().await?;
            // PASSIVE on a reader: copy the WAL into the database without blocking the
            // writer. Under steady writing this never lets the WAL file restart (new frames
            // arrive while it copies), so past a size the writer finishes the job itself.
            let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&self.pool).await.map_err(unavailable)?;
            let frames: i64 = row.try_get(1).unwrap_or(0);
            if frames > WAL_RESTART_FRAMES {
                self.wal_restart_wanted.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn write_fault(&self) -> Option<String> {
        self.health.fault()
    }

    fn write_failures(&self) -> u64 {
        self.health.failures()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_user(&self, u: NewUser, now: Millis) -> StoreResult<User> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (address, display_name, email, locale, roles, password_hash, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING {USER_COLS}"
        ))
        .bind(u.address.as_str())
        .bind(&u.display_name)
        .bind(&u.email)
        .bind(&u.locale)
        .bind(Role::join(&u.roles))
        .bind(u.password_hash)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match unavailable(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user {} already exists", u.address)),
            other => other,
        })?;
        user_from_row(&row).map_err(unavailable)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose().map_err(unavailable)
    }

    async fn user_by_address(&self, address: &Address) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE address = $1"))
            .bind(address.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose().map_err(unavailable)
    }

    async fn users(&self, query: &str, limit: i64) -> StoreResult<Vec<User>> {
        let needle: String = query.to_lowercase().chars().filter(|c| !matches!(c, '%' | '_' | '\\')).collect();
        let pattern = format!("%{needle}%");
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE address LIKE $1 OR lower(display_name) LIKE $2 ORDER BY display_name, address LIMIT $3"
        ))
        .bind(&pattern)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, user_from_row)
    }

    async fn users_by_addresses(&self, addresses: &[Address]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(500) {
            let list = (1..=chunk.len()).map(|i| self.ph(i)).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {USER_COLS} FROM users WHERE address IN ({list})");
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q.bind(a.as_str());
            }
            out.extend(decode(q.fetch_all(&self.pool).await.map_err(unavailable)?, user_from_row)?);
        }
        Ok(out)
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            // Ids are integers: inlined, one statement for both dialects.
            let list = chunk.iter().map(|u| u.0.to_string()).collect::<Vec<_>>().join(",");
            let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id IN ({list})"))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            out.extend(decode(rows, user_from_row)?);
        }
        Ok(out)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(unavailable)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let h: Option<Option<String>> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(h.flatten())
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<String>) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(id.0)).await
    }

    async fn set_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET roles = $1 WHERE id = $2").bind(Role::join(roles)).bind(id.0)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2").bind(i64::from(disabled)).bind(id.0))
            .await
    }

    async fn create_group(&self, slug: &str, name: &str) -> StoreResult<Group> {
        let id: i64 = sqlx::query_scalar("INSERT INTO directory_groups (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(slug)
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(|e| match unavailable(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("group {slug} already exists")),
                other => other,
            })?;
        Ok(Group { id: GroupId(id), slug: slug.to_string(), name: name.to_string() })
    }

    async fn groups(&self) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query("SELECT id, slug, name FROM directory_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, group_from_row)
    }

    async fn group(&self, slug: &str) -> StoreResult<Option<Group>> {
        let row = sqlx::query("SELECT id, slug, name FROM directory_groups WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(group_from_row).transpose().map_err(unavailable)
    }

    async fn delete_group(&self, id: GroupId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM directory_groups WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn group_memberships(&self) -> StoreResult<Vec<(GroupId, UserId)>> {
        let rows = sqlx::query("SELECT group_id, user_id FROM group_members")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| Ok((GroupId(r.try_get("group_id")?), UserId(r.try_get("user_id")?))))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.id, g.slug, g.name FROM directory_groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, group_from_row)
    }

    async fn create_session(&self, s: AuthSession) -> StoreResult<()> {
        sqlx::query("INSERT INTO auth_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.token_hash)
            .bind(s.user.0)
            .bind(&s.csrf_token)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<AuthSession>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.expires_at FROM auth_sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 \
             AND (u.disabled = 0 OR u.roles = 'guest')",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            Ok(AuthSession {
                token_hash: r.try_get("token_hash")?,
                user: UserId(r.try_get("user_id")?),
                csrf_token: r.try_get("csrf_token")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
        .map_err(unavailable)
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn end_sessions_of(&self, user: UserId, at: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE auth_sessions SET expires_at = $1 WHERE user_id = $2 AND expires_at > $1")
            .bind(at)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn prune_sessions(&self, now: Millis) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(r.rows_affected())
    }

    async fn retire_finished_guests(&self, created_before: Millis, now: Millis) -> StoreResult<Vec<UserId>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE users SET disabled = 1 WHERE roles = 'guest' AND disabled = 0 AND ( \
               (NOT EXISTS (SELECT 1 FROM queue_chats q WHERE q.seeker_id = users.id \
                            AND q.state IN ('queued', 'assigned', 'wrap_up', 'offline')) \
                AND (EXISTS (SELECT 1 FROM queue_chats q WHERE q.seeker_id = users.id) OR created_at < $1)) \
               OR (created_at < $1 AND NOT EXISTS (SELECT 1 FROM auth_sessions s \
                                                   WHERE s.user_id = users.id AND s.expires_at > $2))) \
             RETURNING id",
        )
        .bind(created_before)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        if !ids.is_empty() {
            // Ids we just read; inlined, one statement for both dialects.
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(&format!("DELETE FROM auth_sessions WHERE user_id IN ({list})"))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn create_application(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[String],
        now: Millis,
    ) -> StoreResult<Application> {
        let row = sqlx::query(
            "INSERT INTO applications (name, token_hash, scopes, created_at, revoked) VALUES ($1, $2, $3, $4, 0) \
             RETURNING id, name, scopes, created_at, revoked",
        )
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join(" "))
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match unavailable(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("application {name} already exists")),
            other => other,
        })?;
        app_from_row(&row).map_err(unavailable)
    }

    async fn application(&self, token_hash: &str) -> StoreResult<Option<Application>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked FROM applications WHERE token_hash = $1 AND revoked = 0",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(app_from_row).transpose().map_err(unavailable)
    }

    async fn applications(&self) -> StoreResult<Vec<Application>> {
        let rows = sqlx::query("SELECT id, name, scopes, created_at, revoked FROM applications ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, app_from_row)
    }

    async fn revoke_application(&self, name: &str) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE applications SET revoked = 1 WHERE name = $1").bind(name)).await
    }

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

    async fn create_webhook(&self, queue: Option<&str>, url: &str, secret: &str, now: Millis) -> StoreResult<Webhook> {
        let row = sqlx::query(
            "INSERT INTO webhooks (queue_id, url, secret, created_at) VALUES ($1, $2, $3, $4) RETURNING id, queue_id, url, secret, created_at",
        )
        .bind(queue.map(str::to_string))
        .bind(url)
        .bind(secret)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(unavailable)?;
        webhook_from_row(&row).map_err(unavailable)
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT id, queue_id, url, secret, created_at FROM webhooks ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, webhook_from_row)
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let r =
            sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn enqueue_deliveries(&self, deliveries: &[(i64, String, String)], now: Millis) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (hook, event, payload) in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
            )
            .bind(*hook)
            .bind(event)
            .bind(payload)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn due_deliveries(&self, now: Millis, limit: i64) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, delivery_from_row)
    }

    async fn finish_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i64>,
        error: Option<&str>,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> StoreResult<()> {
        let state = if delivered {
            "delivered"
        } else if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        self.exec_one(
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
                 next_attempt_at = $4, delivered_at = $5 WHERE id = $6",
            )
            .bind(state)
            .bind(status)
            .bind(error.map(str::to_string))
            .bind(retry_at.unwrap_or(now))
            .bind(delivered.then_some(now))
            .bind(id),
        )
        .await
    }

    async fn deliveries(&self, webhook: i64, limit: i64) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(webhook)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, delivery_from_row)
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
                QueueEvent::Assigned { expert, .. } => Some(("assigned", Some(expert.0), Some(now), None)),
                QueueEvent::Transferred { to_queue, .. } => {
                    if let Some(q) = to_queue {
                        sqlx::query("UPDATE queue_chats SET queue_id = $1 WHERE id = $2")
                            .bind(q)
                            .bind(chat)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    Some(("queued", None, None, None))
                }
                QueueEvent::WrapUp { .. } => Some(("wrap_up", None, None, None)),
                QueueEvent::Closed { .. } => Some(("closed", None, None, Some(now))),
                QueueEvent::Abandoned { .. } => Some(("abandoned", None, None, Some(now))),
                QueueEvent::Overflowed { .. } => Some(("overflowed", None, None, Some(now))),
                QueueEvent::OfflineMessage { .. } => Some(("offline", None, None, Some(now))),
                _ => None,
            };
            if let Some((state, expert, assigned_at, closed_at)) = update {
                sqlx::query(
                    "UPDATE queue_chats SET state = $1, expert_id = COALESCE($2, expert_id), \
                     assigned_at = COALESCE($3, assigned_at), closed_at = COALESCE($4, closed_at) WHERE id = $5",
                )
                .bind(state)
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

    async fn search_archive(
        &self,
        q: &sb_core::archive::ArchiveQuery,
    ) -> StoreResult<Vec<sb_core::archive::ArchiveHit>> {
        self.search_archive_impl(q).await
    }

    async fn archived_conversation(&self, conversation: i64) -> StoreResult<(Vec<ArchiveRecord>, Vec<UserId>)> {
        let (records, people) = self.archived_conversation_impl(conversation).await?;
        Ok((records, people.into_iter().map(UserId).collect()))
    }

    async fn disclaimers(&self) -> StoreResult<Vec<sb_core::disclaimers::Disclaimer>> {
        self.disclaimers_impl().await
    }

    async fn save_disclaimer(
        &self,
        d: &sb_core::disclaimers::Disclaimer,
    ) -> StoreResult<sb_core::disclaimers::Disclaimer> {
        self.save_disclaimer_impl(d).await
    }

    async fn disclaimer_seen(&self, rule: i64, pair: &str, day: i64) -> StoreResult<bool> {
        self.disclaimer_seen_impl(rule, pair, day).await
    }

    async fn create_alert(
        &self,
        a: &sb_core::alerts::NewAlert,
        recipients: &[UserId],
        now: Millis,
    ) -> StoreResult<sb_core::alerts::Alert> {
        self.create_alert_impl(a, recipients, None, now).await
    }

    async fn create_mail_alert(
        &self,
        a: &sb_core::alerts::NewAlert,
        recipients: &[UserId],
        intake: &sb_core::alerts::MailIntake,
        now: Millis,
    ) -> StoreResult<sb_core::alerts::Alert> {
        self.create_alert_impl(a, recipients, Some(intake), now).await
    }

    async fn mail_intake(&self, mailbox: &str, key: &str) -> StoreResult<Option<sb_core::alerts::MailIntake>> {
        self.mail_intake_impl(mailbox, key).await
    }

    async fn record_mail_intake(&self, intake: &sb_core::alerts::MailIntake) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        self.insert_mail_intake(&mut tx, intake).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn prune_mail_intake(&self, before: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM mail_intake WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        tx.commit().await.map_err(unavailable)?;
        Ok(n)
    }

    async fn mail_intakes(&self, mailbox: Option<&str>, limit: i64) -> StoreResult<Vec<sb_core::alerts::MailIntake>> {
        self.mail_intakes_impl(mailbox, limit).await
    }

    async fn add_alert_deliveries(
        &self,
        alert: i64,
        recipients: &[UserId],
        round: i32,
        now: Millis,
    ) -> StoreResult<()> {
        self.add_deliveries_impl(alert, recipients, round, now).await
    }

    async fn alert(&self, id: i64) -> StoreResult<Option<(sb_core::alerts::Alert, Vec<sb_core::alerts::Delivery>)>> {
        self.alert_impl(id).await
    }

    async fn alerts(
        &self,
        source: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<sb_core::alerts::AlertSummary>> {
        self.alerts_impl(source, before, limit).await
    }

    async fn open_alert_by_key(&self, source: &str, key: &str, now: Millis) -> StoreResult<Option<i64>> {
        self.open_alert_by_key_impl(source, key, now).await
    }

    async fn pending_deliveries(
        &self,
        user: Option<UserId>,
        now: Millis,
        limit: i64,
    ) -> StoreResult<Vec<sb_core::alerts::Delivery>> {
        self.pending_deliveries_impl(user, now, limit).await
    }

    async fn set_deliveries(&self, updates: &[sb_core::alerts::DeliveryUpdate], now: Millis) -> StoreResult<()> {
        self.set_deliveries_impl(updates, now).await
    }

    async fn alerts_read(&self, user: UserId, conversation: i64, up_to: i64, now: Millis) -> StoreResult<Vec<i64>> {
        self.alerts_read_impl(user, conversation, up_to, now).await
    }

    async fn expire_alerts(&self, now: Millis) -> StoreResult<u64> {
        self.expire_alerts_impl(now).await
    }

    async fn escalations_due(&self, now: Millis) -> StoreResult<Vec<sb_core::alerts::Alert>> {
        self.escalations_due_impl(now).await
    }

    async fn mark_escalated(&self, id: i64, now: Millis) -> StoreResult<bool> {
        self.mark_escalated_impl(id, now).await
    }

    async fn latest_unacked_alert(&self, user: UserId) -> StoreResult<Option<i64>> {
        self.latest_unacked_impl(user).await
    }

    async fn retention_policies(&self) -> StoreResult<Vec<(Option<GroupId>, i64)>> {
        self.retention_impl().await
    }

    async fn set_retention_policies(&self, policies: &[(Option<GroupId>, i64)]) -> StoreResult<()> {
        self.set_retention_impl(policies).await
    }

    async fn legal_holds(&self) -> StoreResult<Vec<sb_core::archive::LegalHold>> {
        self.holds_impl().await
    }

    async fn create_legal_hold(&self, hold: &sb_core::archive::LegalHold) -> StoreResult<i64> {
        self.create_hold_impl(hold).await
    }

    async fn release_legal_hold(&self, id: i64, now: Millis) -> StoreResult<bool> {
        self.release_hold_impl(id, now).await
    }

    async fn purge_candidates(&self, before: Millis) -> StoreResult<Vec<i64>> {
        self.purge_candidates_impl(before).await
    }

    async fn archived_participants(&self, conversation: i64) -> StoreResult<Vec<UserId>> {
        Ok(self.participants_impl(conversation).await?.into_iter().map(UserId).collect())
    }

    async fn purge(&self, conversation: Option<i64>, cutoff: Millis, now: Millis) -> StoreResult<(u64, u64)> {
        self.purge_conversation_impl(conversation, cutoff, now).await
    }

    async fn walls(&self) -> StoreResult<Vec<sb_core::walls::Wall>> {
        self.walls_impl().await
    }

    async fn save_wall(&self, wall: &sb_core::walls::Wall) -> StoreResult<sb_core::walls::Wall> {
        self.save_wall_impl(wall).await
    }

    async fn record_violation(&self, v: &sb_core::walls::Violation, archived: &ArchiveEntry) -> StoreResult<i64> {
        self.record_violation_impl(v, archived).await
    }

    async fn violations(&self, limit: i64) -> StoreResult<Vec<sb_core::walls::Violation>> {
        self.violations_impl(limit).await
    }

    async fn audit(&self, entry: &sb_core::store::AuditEntry) -> StoreResult<()> {
        self.audit_impl(entry).await
    }

    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<sb_core::store::AuditEntry>> {
        self.audit_log_impl(before, limit).await
    }

    async fn archive(&self, entries: &[ArchiveEntry]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        self.archive_in(&mut tx, entries).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn archive_records(&self, after: i64, limit: i64) -> StoreResult<Vec<ArchiveRecord>> {
        let rows =
            sqlx::query(&format!("SELECT {} FROM archive WHERE id > $1 ORDER BY id LIMIT $2", archive::ARCHIVE_COLS))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        decode(rows, archive::record_from_row)
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

fn group_from_row(r: &AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group { id: GroupId(r.try_get("id")?), slug: r.try_get("slug")?, name: r.try_get("name")? })
}

impl SqlStore {
    /// The n-th (1-based) bind parameter of a generated statement. SQLite gets anonymous
    /// `?`: sqlx resolves every named parameter by a linear scan of the statement's names,
    /// which makes a batch statement with hundreds of `$n` quadratic.
    fn ph(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    async fn exec_one<'q>(&self, q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>) -> StoreResult<()> {
        let r = q.execute(&self.writer).await.map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact("postgres://sb:secret@db:5432/sb"), "postgres://sb:***@db:5432/sb");
        assert_eq!(redact("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(redact("sqlite://data/sb.db"), "sqlite://data/sb.db");
    }
}
