//! The storage port. Adapters (SQLite, PostgreSQL) live in the `switchboard-store` crate;
//! only the binary chooses one.
//!
//! One trait per concept, one file each: [`DirectoryStore`] (users, groups), [`CredentialStore`]
//! (password hashes, sessions, applications), [`ConversationLog`] (conversations, events,
//! read markers), [`QueueStore`] (queues, queue chats, offline messages), [`ArchiveStore`]
//! (archive, search, retention, legal holds, purging), [`AlertStore`] (alerts, deliveries,
//! mail intake), [`ComplianceStore`] (walls, violations, audit log, disclaimers) and
//! [`WebhookStore`]. [`Store`] is all of them, plus what concerns the adapter as a whole;
//! the runtime holds an `Arc<dyn Store>`.

mod alerts;
mod archive;
mod compliance;
mod credentials;
mod directory;
mod log;
mod queues;
mod webhooks;

pub use alerts::AlertStore;
pub use archive::ArchiveStore;
pub use compliance::ComplianceStore;
pub use credentials::CredentialStore;
pub use directory::DirectoryStore;
pub use log::ConversationLog;
pub use queues::QueueStore;
pub use webhooks::WebhookStore;

use crate::clock::Millis;
use crate::directory::UserId;
use crate::error::StoreError;
use crate::queue::QueueChatRecord;
use async_trait::async_trait;

/// Every storage trait, for callers: `use sb_core::store::prelude::*;` brings their methods
/// into scope (on `Arc<dyn Store>` and on a concrete adapter alike).
pub mod prelude {
    pub use super::{
        AlertStore, ArchiveStore, ComplianceStore, ConversationLog, CredentialStore, DirectoryStore, QueueStore, Store,
        WebhookStore,
    };
}

/// A signed-in session's credential (web cookie or bearer token), stored by token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub token_hash: String,
    pub user: UserId,
    pub csrf_token: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A trusted non-human client with an API token and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Millis,
    pub revoked: bool,
}

/// One administrative action, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: Millis,
    /// The actor's address; `None` for the command line on the server's machine.
    pub actor: Option<String>,
    /// `user.create`, `wall.update`, `archive.search`, …
    pub action: String,
    pub target: String,
    /// JSON, before and after the change (when there is a before/after).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A queue chat kept as an offline message, and who took it to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineChat {
    pub record: QueueChatRecord,
    pub taken_by: Option<UserId>,
    pub taken_at: Option<Millis>,
}

/// A subscriber to queue lifecycle events (all queues when `queue` is None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub queue: Option<String>,
    pub url: String,
    pub secret: String,
    pub created_at: Millis,
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook: i64,
    pub event: String,
    pub payload: String,
    /// `pending`, `delivered`, `failed`.
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Millis,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the policy asks to be stored in the same transaction as the act it admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // a handful per write, never kept
pub enum PolicyRecord {
    /// A monitoring wall crossed: the violation, and its archive record.
    Violation(crate::walls::Violation, crate::archive::ArchiveEntry),
    /// A pair-per-day disclaimer shown (rule, pair key, day number).
    DisclaimerShown { rule: i64, pair: String, day: i64 },
}

/// The whole storage port: every concept's trait, and the adapter's own health.
#[async_trait]
pub trait Store:
    DirectoryStore
    + CredentialStore
    + ConversationLog
    + QueueStore
    + ArchiveStore
    + AlertStore
    + ComplianceStore
    + WebhookStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// Housekeeping the runtime calls about once a second (SQLite: WAL checkpoints, kept
    /// off the commit path; after a write ended without commit, a probe write that tells
    /// whether writes commit again).
    async fn maintenance(&self) -> StoreResult<()>;
    /// Why writes are failing (disk full, I/O error, a cut connection): from a failed
    /// begin, commit or rollback, or a failed probe after a transaction that ended on an
    /// error, until a write commits again; `None` while writes commit. Raw driver text, for
    /// logs and operators, not for the public.
    fn write_fault(&self) -> Option<String>;
    /// Failed begins, commits, rollbacks and probes, since start.
    fn write_failures(&self) -> u64;
}
