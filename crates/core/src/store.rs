//! The storage port. Adapters (SQLite, PostgreSQL) live in the `switchboard-store` crate;
//! only the binary chooses one.

use crate::clock::Millis;
use crate::conversation::{
    Appended, Conversation, ConversationId, ConversationKind, ConversationSummary, Event, EventId, NewEvent,
};
use crate::directory::{Address, Group, GroupId, NewUser, Role, User, UserId};
use crate::error::StoreError;
use crate::queue::{ChatId, ChatTimes, QueueChatRecord, QueueDef, QueueEvent};
use async_trait::async_trait;

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
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

    // --- directory ---
    async fn create_user(&self, user: NewUser, now: Millis) -> StoreResult<User>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_address(&self, address: &Address) -> StoreResult<Option<User>>;
    async fn users(&self, query: &str, limit: i64) -> StoreResult<Vec<User>>;
    /// The users with these addresses (those that exist), in any order.
    async fn users_by_addresses(&self, addresses: &[Address]) -> StoreResult<Vec<User>>;
    /// The users with these ids (those that exist), in any order.
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: Option<String>) -> StoreResult<()>;
    async fn set_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()>;
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()>;

    async fn create_group(&self, slug: &str, name: &str) -> StoreResult<Group>;
    async fn groups(&self) -> StoreResult<Vec<Group>>;
    async fn group(&self, slug: &str) -> StoreResult<Option<Group>>;
    async fn delete_group(&self, id: GroupId) -> StoreResult<()>;
    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    /// Every (group, user) pair, for the directory-by-group view.
    async fn group_memberships(&self) -> StoreResult<Vec<(GroupId, UserId)>>;
    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>>;

    // --- credentials ---
    async fn create_session(&self, session: AuthSession) -> StoreResult<()>;
    /// A live session: not expired by `now`, of a user not disabled — or of a retired guest
    /// (its chat is over; the runtime lets it read and rate, nothing more).
    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<AuthSession>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()>;
    /// Make a user's sessions end at `at` at the latest (those that would live longer).
    async fn end_sessions_of(&self, user: UserId, at: Millis) -> StoreResult<()>;
    /// Delete the sessions that expired by `now`; returns how many.
    async fn prune_sessions(&self, now: Millis) -> StoreResult<u64>;
    /// Retire, in one transaction, the guests that are done: disabled, their sessions
    /// deleted. Done is: every queue chat of theirs is over (closed, abandoned, overflowed
    /// — an offline message is not), or — for guests made before `created_before` — they
    /// never got a chat, or have no session left at `now`. Guests are never deleted: the
    /// archive and the chats' records name them. Returns the guests retired.
    async fn retire_finished_guests(&self, created_before: Millis, now: Millis) -> StoreResult<Vec<UserId>>;
    async fn create_application(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[String],
        now: Millis,
    ) -> StoreResult<Application>;
    async fn application(&self, token_hash: &str) -> StoreResult<Option<Application>>;
    async fn applications(&self) -> StoreResult<Vec<Application>>;
    async fn revoke_application(&self, name: &str) -> StoreResult<()>;

    // --- conversations ---
    /// Create a conversation with its first members. For `Direct`, the pair is unique:
    /// an existing conversation's id is returned instead (with `false`).
    async fn create_conversation(
        &self,
        kind: ConversationKind,
        title: &str,
        members: &[UserId],
        now: Millis,
    ) -> StoreResult<(ConversationId, bool)>;
    /// The direct conversations between `one` and each of `others`, made in one
    /// transaction where missing; with `true` for those made now. For fan-out (alerts).
    async fn direct_conversations(
        &self,
        one: UserId,
        others: &[UserId],
        now: Millis,
    ) -> StoreResult<Vec<(Conversation, bool)>>;
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>>;

    /// The single write path of the conversation log: stores the batch in one transaction,
    /// in order, assigning ids and per-conversation sequence numbers, applying membership
    /// changes of `Joined`/`Left`, and answering retries (same actor and client id) with the
    /// stored event. When this returns, the batch is durable.
    async fn append_events(&self, batch: &[NewEvent]) -> StoreResult<Vec<Appended>> {
        Ok(self.append_with(batch, &[]).await?.0)
    }
    /// `append_events`, and what the policy asks to be stored with the batch (flagged
    /// wall crossings, disclaimers shown) in the same transaction. Returns the stored
    /// violations' ids too.
    async fn append_with(&self, batch: &[NewEvent], records: &[PolicyRecord])
        -> StoreResult<(Vec<Appended>, Vec<i64>)>;
    /// Events after `after` in the conversations `user` is a member of, oldest first.
    async fn events_after(&self, user: UserId, after: EventId, limit: i64) -> StoreResult<Vec<Event>>;
    /// A page of a conversation's log, oldest first: the newest `limit` events before
    /// `before`, or the oldest `limit` after `after`.
    async fn history(
        &self,
        conversation: ConversationId,
        before: Option<EventId>,
        after: Option<EventId>,
        limit: i64,
    ) -> StoreResult<Vec<Event>>;
    async fn last_event_id(&self) -> StoreResult<EventId>;
    // --- queues ---
    /// Create or replace a queue and its members.
    async fn save_queue(&self, queue: &QueueDef, now: Millis) -> StoreResult<()>;
    async fn queues(&self) -> StoreResult<Vec<QueueDef>>;
    async fn delete_queue(&self, id: &str) -> StoreResult<()>;
    /// Open a queue chat: its `queue` conversation with the seeker as member, and its
    /// record (state `queued`), in one transaction.
    async fn open_queue_chat(
        &self,
        queue: &str,
        title: &str,
        seeker: UserId,
        question: &str,
        answers: &[(String, String)],
        now: Millis,
    ) -> StoreResult<(ConversationId, ChatId)>;
    async fn queue_chat(&self, id: ChatId) -> StoreResult<Option<QueueChatRecord>>;
    /// Queue chats still waiting or assigned (to restore after a restart).
    async fn open_queue_chats(&self) -> StoreResult<Vec<QueueChatRecord>>;
    /// For statistics: lifecycle event counts by kind, and the times of the chats requested,
    /// in `[from, to)`.
    async fn queue_history(
        &self,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<(Vec<(String, u64)>, Vec<ChatTimes>)>;
    /// The seeker's rating (1–5) and comment after a queue chat.
    async fn save_survey(&self, chat: ChatId, rating: u8, comment: &str) -> StoreResult<()>;
    /// The expert's wrap-up of a chat: tags and a note.
    async fn save_wrap_up(&self, chat: ChatId, tags: &[String], note: &str) -> StoreResult<()>;
    /// A queue's offline messages (chats kept for a later answer), newest first.
    async fn offline_messages(&self, queue: &str, limit: u32) -> StoreResult<Vec<OfflineChat>>;
    /// An expert takes an offline message to answer it; false when someone else has it.
    async fn take_offline(&self, chat: ChatId, expert: UserId, now: Millis) -> StoreResult<bool>;
    /// Append records to the compliance archive (what is not a conversation event: wall
    /// attempts, …). Conversation events and queue transitions are archived by the calls
    /// that store them, in the same transaction.
    async fn archive(&self, entries: &[crate::archive::ArchiveEntry]) -> StoreResult<()>;
    /// Archive records after `after`, in id order (for verification and export).
    async fn archive_records(&self, after: i64, limit: i64) -> StoreResult<Vec<crate::archive::ArchiveRecord>>;
    // --- alerts ---
    /// Store an alert and a pending delivery for each recipient, in one transaction.
    async fn create_alert(
        &self,
        alert: &crate::alerts::NewAlert,
        recipients: &[UserId],
        now: Millis,
    ) -> StoreResult<crate::alerts::Alert>;
    /// `create_alert` for a mail: the mail's intake record (outcome `alert`, with the new
    /// alert's id) is written in the same transaction, so a stored alert and "this mail is
    /// done" cannot part.
    async fn create_mail_alert(
        &self,
        alert: &crate::alerts::NewAlert,
        recipients: &[UserId],
        intake: &crate::alerts::MailIntake,
        now: Millis,
    ) -> StoreResult<crate::alerts::Alert>;
    /// The intake record of a mail, if it was taken before.
    async fn mail_intake(&self, mailbox: &str, key: &str) -> StoreResult<Option<crate::alerts::MailIntake>>;
    /// Record a mail that did not become a new alert (refused, duplicate). A record already
    /// there is kept.
    async fn record_mail_intake(&self, intake: &crate::alerts::MailIntake) -> StoreResult<()>;
    /// Forget intake records older than `before` (a mail is long gone from its mailbox by
    /// then). Returns how many.
    async fn prune_mail_intake(&self, before: Millis) -> StoreResult<u64>;
    /// Intake records, newest first, optionally of one mailbox.
    async fn mail_intakes(&self, mailbox: Option<&str>, limit: i64) -> StoreResult<Vec<crate::alerts::MailIntake>>;
    /// More recipients for an alert (escalation round `round`); existing ones are kept.
    async fn add_alert_deliveries(&self, alert: i64, recipients: &[UserId], round: i32, now: Millis)
        -> StoreResult<()>;
    async fn alert(&self, id: i64) -> StoreResult<Option<(crate::alerts::Alert, Vec<crate::alerts::Delivery>)>>;
    /// Newest first, ids below `before`, optionally of one source.
    async fn alerts(
        &self,
        source: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<crate::alerts::AlertSummary>>;
    /// An unexpired alert of `source` with this deduplication key.
    async fn open_alert_by_key(&self, source: &str, key: &str, now: Millis) -> StoreResult<Option<i64>>;
    /// Pending deliveries of unexpired alerts, of one user or everyone, oldest first.
    async fn pending_deliveries(
        &self,
        user: Option<UserId>,
        now: Millis,
        limit: i64,
    ) -> StoreResult<Vec<crate::alerts::Delivery>>;
    async fn set_deliveries(&self, updates: &[crate::alerts::DeliveryUpdate], now: Millis) -> StoreResult<()>;
    /// The user read their alerts conversation up to `up_to`: delivered alerts there become
    /// read. Returns those alerts.
    async fn alerts_read(&self, user: UserId, conversation: i64, up_to: i64, now: Millis) -> StoreResult<Vec<i64>>;
    async fn expire_alerts(&self, now: Millis) -> StoreResult<u64>;
    async fn escalations_due(&self, now: Millis) -> StoreResult<Vec<crate::alerts::Alert>>;
    /// False when it was escalated already (by someone else).
    async fn mark_escalated(&self, id: i64, now: Millis) -> StoreResult<bool>;
    async fn latest_unacked_alert(&self, user: UserId) -> StoreResult<Option<i64>>;

    // --- compliance ---
    /// Retention policies: (group, or None for everyone; days).
    async fn retention_policies(&self) -> StoreResult<Vec<(Option<GroupId>, i64)>>;
    async fn set_retention_policies(&self, policies: &[(Option<GroupId>, i64)]) -> StoreResult<()>;
    /// Every legal hold, newest first.
    async fn legal_holds(&self) -> StoreResult<Vec<crate::archive::LegalHold>>;
    async fn create_legal_hold(&self, hold: &crate::archive::LegalHold) -> StoreResult<i64>;
    /// False when there is no such active hold.
    async fn release_legal_hold(&self, id: i64, now: Millis) -> StoreResult<bool>;
    /// Conversations with unpurged archived content older than `before`.
    async fn purge_candidates(&self, before: Millis) -> StoreResult<Vec<i64>>;
    /// Everyone who took part in an archived conversation.
    async fn archived_participants(&self, conversation: i64) -> StoreResult<Vec<UserId>>;
    /// Purge content older than `cutoff` of a conversation (or, with `None`, of the records
    /// that belong to no conversation): archive bodies go (their hashes stay), log events
    /// are deleted. Returns (archive records purged, events deleted).
    async fn purge(&self, conversation: Option<i64>, cutoff: Millis, now: Millis) -> StoreResult<(u64, u64)>;
    async fn disclaimers(&self) -> StoreResult<Vec<crate::disclaimers::Disclaimer>>;
    /// Create (id 0) or update a disclaimer rule.
    async fn save_disclaimer(&self, d: &crate::disclaimers::Disclaimer) -> StoreResult<crate::disclaimers::Disclaimer>;
    /// Was this pair-per-day disclaimer shown that day? (Marks are written with the message
    /// that showed it: `PolicyRecord::DisclaimerShown`.)
    async fn disclaimer_seen(&self, rule: i64, pair: &str, day: i64) -> StoreResult<bool>;
    /// E-discovery: archived records with text matching the query, newest first.
    async fn search_archive(
        &self,
        query: &crate::archive::ArchiveQuery,
    ) -> StoreResult<Vec<crate::archive::ArchiveHit>>;
    /// One conversation as archived (oldest first), and everyone who took part in it.
    async fn archived_conversation(
        &self,
        conversation: i64,
    ) -> StoreResult<(Vec<crate::archive::ArchiveRecord>, Vec<UserId>)>;
    /// Every group chat with its members (in joining order), for re-checking walls.
    async fn group_conversations(&self) -> StoreResult<Vec<Conversation>>;
    async fn walls(&self) -> StoreResult<Vec<crate::walls::Wall>>;
    /// Create (id 0) or update a wall; returns it as stored.
    async fn save_wall(&self, wall: &crate::walls::Wall) -> StoreResult<crate::walls::Wall>;
    /// A refused act's violation and its archive record, in one transaction.
    async fn record_violation(
        &self,
        v: &crate::walls::Violation,
        archived: &crate::archive::ArchiveEntry,
    ) -> StoreResult<i64>;
    async fn violations(&self, limit: i64) -> StoreResult<Vec<crate::walls::Violation>>;
    async fn audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Newest first, ids below `before`.
    async fn audit_log(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// Store lifecycle events and apply them to the chats' records.
    async fn record_queue_events(&self, events: &[(String, QueueEvent)], now: Millis) -> StoreResult<()>;

    // --- webhooks ---
    async fn create_webhook(&self, queue: Option<&str>, url: &str, secret: &str, now: Millis) -> StoreResult<Webhook>;
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn delete_webhook(&self, id: i64) -> StoreResult<()>;
    /// Queue (webhook, event kind, JSON payload) deliveries, due now.
    async fn enqueue_deliveries(&self, deliveries: &[(i64, String, String)], now: Millis) -> StoreResult<()>;
    /// Pending deliveries whose time has come, oldest first.
    async fn due_deliveries(&self, now: Millis, limit: i64) -> StoreResult<Vec<WebhookDelivery>>;
    /// Record an attempt: delivered, or retry at `retry_at`, or (None) failed for good.
    async fn finish_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i64>,
        error: Option<&str>,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> StoreResult<()>;
    async fn deliveries(&self, webhook: i64, limit: i64) -> StoreResult<Vec<WebhookDelivery>>;

    /// Move a read marker forward (never back); returns the marker now in force.
    async fn mark_read(&self, conversation: ConversationId, user: UserId, up_to: EventId) -> StoreResult<EventId>;
}
