//! Storage adapters for the core's [`Store`] port: SQLite (the embedded default, WAL) and
//! PostgreSQL (scale-out).
//!
//! Both run the same SQL through sqlx's `Any` driver: the statements here use only what the
//! two dialects share (`$n` placeholders in order of appearance, `RETURNING`, `ON CONFLICT`,
//! partial indexes, integers for times and flags). What differs — DDL, connection pragmas —
//! lives in the per-backend migrations and in [`SqlStore::connect`].
//!
//! One file per concept of the port, each implementing its trait for [`SqlStore`]:
//! `directory.rs`, `credentials.rs`, `log.rs` (the conversation log), `queues.rs`,
//! `archive.rs`, `alerts.rs`, `compliance.rs`, `webhooks.rs`. This file keeps the
//! connection, the pools, the migrations, the helpers they share and [`Store`] itself;
//! `write.rs` is the write transaction.

mod alerts;
mod archive;
mod compliance;
mod credentials;
mod directory;
mod log;
mod queues;
mod webhooks;
mod write;

pub use write::WriteHealth;
use write::WriteTx;

use async_trait::async_trait;
use sb_core::store::{Store, StoreResult};
use sb_core::StoreError;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
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
