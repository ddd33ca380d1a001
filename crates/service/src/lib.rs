//! Switchboard's runtime: the [`Service`] every door (HTTP, WebSocket, later XMPP, the
//! queue relay, alerts) calls into.
//!
//! It owns the session registry ([`hub::Hub`]), live presence, the conversation log's single
//! writer, sign-in and rate limits, and metrics. It knows nothing of HTTP or JSON framing:
//! it hands edges domain [`Frame`]s and errors, and each edge encodes them its own way.

pub mod alerts;
pub mod auth;
pub mod compliance;
pub mod demo;
mod door;
pub mod ediscovery;
mod error;
pub mod export;
pub mod guests;
pub mod hub;
pub mod metrics;
mod queue_admin;
pub mod queue_chats;
mod queue_im;
mod queue_offline;
mod queue_stats;
mod queue_views;
pub mod queues;
pub mod retention;
mod settings;
mod signin;
mod tasks;
pub mod webhooks;
mod writer;

use hub::{Outbound, SessionHandle};
use metrics::Metrics;
use sb_core::conversation::{ConversationSummary, Member};
use sb_core::directory::NewUser;
use sb_core::pipeline::{Door, Refused, Submission};
use sb_core::policy::{Act, Admission};
use sb_core::ratelimit::ClientKey;
use sb_core::store::prelude::*;
use sb_core::store::{Application, AuthSession};
use sb_core::{
    Address, Clock, Conversation, ConversationId, ConversationKind, CoreError, Event, EventId, EventKind, Group,
    Millis, NewEvent, Presence, PresenceBook, PresenceState, Role, SessionKey, StoreError, User, UserId,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use writer::WriteRequest;

pub(crate) use error::one_line;
pub use error::{Result, ServiceError};
pub use settings::{PublicPresence, Settings};

/// The system clock.
pub struct SystemClock;
impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
    }
}

/// What the service sends to sessions. Edges encode it.
#[derive(Debug, Clone)]
pub enum Frame {
    Event(Event),
    /// To an expert: a queue chat is offered to you.
    QueueOffer(queue_chats::Offer),
    /// To an expert: that offer is no longer yours (`taken`, `withdrawn`, `timed_out`, `declined`).
    QueueOfferGone {
        chat: i64,
        reason: &'static str,
    },
    /// To a seeker (and the assigned expert): where a queue chat stands.
    QueueChat(queue_chats::ChatView),
    /// To a recipient: an alert (or a reminder of one).
    Alert(alerts::AlertView),
    /// To a recipient: they acknowledged this alert (from another session or by reply).
    AlertAcked {
        id: i64,
    },
    /// To compliance officers: an ethical wall was crossed (blocked or flagged).
    Violation(compliance::ViolationView),
    Ack {
        client_id: Option<String>,
        event: Event,
    },
    Conversation(Conversation),
    Presence {
        address: Address,
        presence: Presence,
    },
    Typing {
        conversation: ConversationId,
        address: Address,
        active: bool,
    },
    Read {
        conversation: ConversationId,
        address: Address,
        up_to: EventId,
    },
    /// A refusal addressed to one session (`reference` = the client's id for the frame).
    Error {
        code: &'static str,
        message: String,
        reference: Option<String>,
    },
    Closing {
        reason: String,
    },
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    User { user: User, session: AuthSession },
    App(Application),
}

/// Whom an open connection is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ConnectionHolder {
    /// A client address (an IPv6 client by its /64).
    Client(ClientKey),
    /// A guest, whatever its address.
    Guest(UserId),
}

/// Holding one counts as one open connection (of a client address, or of a guest).
pub struct ConnectionPermit {
    holder: ConnectionHolder,
    counts: Arc<Mutex<HashMap<ConnectionHolder, usize>>>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.holder) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.holder);
            }
        }
    }
}

/// The runtime, composed of components, each with its own state (and tasks, `tasks`):
/// the chat log and hub (`writer::ChatLog`), presence (the book), sign-in
/// (`signin::SignIn`), the queue desk (`queues::Queues`: queues, queue chats, queues over
/// IM, guests), compliance (`compliance::Compliance`: the policy and disclaimers), alerts
/// with mail intake (`alerts::AlertDesk`) and webhooks (`webhooks::Webhooks`). Its methods
/// live in one file per concern.
pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    metrics: Arc<Metrics>,
    chat: writer::ChatLog,
    presence: Mutex<PresenceBook>,
    signin: signin::SignIn,
    queues: queues::Queues,
    compliance: compliance::Compliance,
    alerts: alerts::AlertDesk,
    webhooks: webhooks::Webhooks,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The components' background tasks (`tasks::spawn`), aborted at shutdown.
    background: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Service {
    /// Start the service: its components, the writer, and every component's tasks. Must
    /// be called inside a tokio runtime.
    pub fn start(store: Arc<dyn Store>, settings: Settings, clock: Arc<dyn Clock>) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let (violations_tx, violations_rx) = mpsc::unbounded_channel();
        let after_commit: Arc<std::sync::OnceLock<writer::Subscriber>> = Arc::default();
        let chat = writer::ChatLog::start(
            store.clone(),
            metrics.clone(),
            settings.max_message_bytes,
            writer::AfterCommit { violations: violations_tx, subscriber: after_commit.clone() },
        );
        let service = Arc::new(Self {
            chat,
            presence: Mutex::new(PresenceBook::new()),
            signin: signin::SignIn::new(&settings),
            queues: queues::Queues::new(&settings),
            compliance: compliance::Compliance::default(),
            alerts: alerts::AlertDesk::new(settings.alerts_per_minute),
            webhooks: webhooks::Webhooks::new(),
            store,
            clock,
            settings,
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            background: Mutex::new(Vec::new()),
        });
        let handles = tasks::spawn(&service, violations_rx, &after_commit);
        *service.background.lock().unwrap_or_else(|e| e.into_inner()) = handles;
        service
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }
    /// Cancelled when the server begins to shut down; every session task watches it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
    /// Session tasks register here so shutdown can wait for them.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Tell every session the server is going away, wait (bounded by the caller) for
    /// sessions to finish their in-flight work, then let the writer store what is queued
    /// and stop.
    pub async fn shut_down(&self) {
        self.chat.hub.send_to_all(&Outbound::new(Frame::Closing { reason: "server shutting down".into() }));
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.chat.stop().await;
        for task in self.background.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    pub fn render_metrics(&self) -> String {
        self.metrics.users_online.set(self.presence_book().online_users() as i64);
        let mut out = self.metrics.render(self.store.backend());
        metrics::render_storage(&mut out, self.store.write_fault().is_some(), self.store.write_failures());
        self.render_queue_metrics(&mut out);
        out
    }

    fn presence_book(&self) -> std::sync::MutexGuard<'_, PresenceBook> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---------------------------------------------------------------- directory

    pub async fn user_by_address(&self, raw: &str) -> Result<User> {
        let a = Address::parse(raw)?;
        self.store.user_by_address(&a).await?.ok_or(CoreError::NotFound("user").into())
    }

    /// Directory search (name or address contains `query`).
    /// Directory search as `viewer` sees it (nobody behind a blocking wall).
    pub async fn users(&self, viewer: &User, query: &str, limit: i64) -> Result<Vec<User>> {
        let policy = self.policy();
        Ok(self.store.users(query, limit).await?.into_iter().filter(|u| policy.may_see(viewer.id, u.id)).collect())
    }

    /// A user by address, as `viewer` may see them (not found behind a blocking wall).
    pub async fn user_for(&self, viewer: &User, address: &str) -> Result<User> {
        let u = self.user_by_address(address).await?;
        if !self.may_see(viewer.id, u.id) {
            return Err(CoreError::NotFound("user").into());
        }
        Ok(u)
    }

    pub async fn groups(&self) -> Result<Vec<Group>> {
        Ok(self.store.groups().await?)
    }

    pub async fn groups_of(&self, user: UserId) -> Result<Vec<Group>> {
        Ok(self.store.groups_of(user).await?)
    }

    /// Readiness: the store answers, and writes commit (a full disk, say, makes the server
    /// not ready until a write commits again; `Store::maintenance` probes each second).
    /// The `Err` is for anyone to read: what kind of fault, never the driver's text (which
    /// can name hosts, users and paths; it is in the log).
    pub async fn ready(&self) -> std::result::Result<&'static str, &'static str> {
        if let Err(e) = self.store.ping().await {
            tracing::warn!(error = %e, "not ready: storage does not answer");
            return Err("storage is not reachable");
        }
        if let Some(fault) = self.store.write_fault() {
            let lower = fault.to_lowercase();
            return Err(if lower.contains("full") || lower.contains("no space") {
                "storage cannot write: the disk is full"
            } else {
                "storage cannot write (the server's log says why)"
            });
        }
        Ok(self.store.backend())
    }

    pub fn presence(&self, user: UserId) -> Presence {
        self.presence_book().get(user)
    }

    /// Groups with their members, and the users in no group.
    pub async fn contacts(&self, viewer: &User) -> Result<(Vec<(Group, Vec<User>)>, Vec<User>)> {
        let policy = self.policy();
        let mut users = self.store.users("", 100_000).await?;
        users.retain(|u| policy.may_see(viewer.id, u.id) && !u.has_role(Role::Queue));
        let groups = self.store.groups().await?;
        let memberships = self.store.group_memberships().await?;
        let by_id: HashMap<UserId, &User> =
            users.iter().filter(|u| !u.disabled && !u.is_guest()).map(|u| (u.id, u)).collect();
        let mut grouped: HashMap<i64, Vec<User>> = HashMap::new();
        let mut in_some_group = std::collections::HashSet::new();
        for (g, u) in memberships {
            if let Some(user) = by_id.get(&u) {
                grouped.entry(g.0).or_default().push((*user).clone());
                in_some_group.insert(u);
            }
        }
        let out = groups
            .into_iter()
            .map(|g| {
                let mut members = grouped.remove(&g.id.0).unwrap_or_default();
                members.sort_by(|a, b| a.display_name.cmp(&b.display_name));
                (g, members)
            })
            .collect();
        let ungrouped =
            users.into_iter().filter(|u| !u.disabled && !u.is_guest() && !in_some_group.contains(&u.id)).collect();
        Ok((out, ungrouped))
    }

    // ---------------------------------------------------------------- sessions & presence

    /// A live connection of `user` starts; its presence is `available`. A presence watcher
    /// also gets everyone's presence as of now: taken under the same lock as registration,
    /// so every change after the snapshot arrives as a frame, and none before it does.
    /// `console`: the client shows queue offers and chat states (the web client); a plain
    /// IM client gets them as messages from the queue instead.
    pub fn open_session(
        &self,
        user: &User,
        watches_presence: bool,
        console: bool,
    ) -> (SessionHandle, Vec<(Address, Presence)>) {
        let mut book = self.presence_book();
        let handle = self.chat.hub.register(
            user.id,
            &user.address,
            &user.display_name,
            self.settings.session_queue,
            watches_presence,
            console,
        );
        self.metrics.ws_connections.inc();
        let change = book.connect(handle.key);
        let snapshot = if watches_presence {
            let policy = self.policy();
            book.online()
                .filter(|(u, _)| policy.may_see(user.id, *u))
                .filter_map(|(u, p)| Some((self.chat.hub.address_of(u)?, p.clone())))
                .collect()
        } else {
            Vec::new()
        };
        self.publish_presence(user.id, &user.address, change);
        drop(book);
        self.seeker_connected(user.id);
        (handle, snapshot)
    }

    pub fn close_session(&self, key: SessionKey, address: &Address) {
        self.chat.hub.unregister(key);
        self.metrics.ws_connections.dec();
        let mut book = self.presence_book();
        let change = book.disconnect(key);
        self.publish_presence(key.user, address, change);
        drop(book);
        self.seeker_disconnected(key.user);
    }

    pub fn set_presence(&self, key: SessionKey, address: &Address, state: PresenceState, note: &str) {
        let mut book = self.presence_book();
        let change = book.set(key, state, note);
        self.publish_presence(key.user, address, change);
    }

    pub fn set_idle(&self, key: SessionKey, address: &Address, idle: bool) {
        let mut book = self.presence_book();
        let change = book.set_idle(key, idle);
        self.publish_presence(key.user, address, change);
    }

    pub fn set_presence_all(&self, user: &User, state: PresenceState, note: &str) -> Presence {
        let mut book = self.presence_book();
        let change = book.set_all(user.id, state, note);
        self.publish_presence(user.id, &user.address, change);
        book.get(user.id)
    }

    /// Called with the presence lock held, so watchers see changes in the order they happened.
    fn publish_presence(&self, user: UserId, address: &Address, change: Option<Presence>) {
        if let Some(presence) = change {
            self.metrics.presence_changes.inc();
            self.queues.presence_changed(user, &presence, self.now());
            let frame = Outbound::new(Frame::Presence { address: address.clone(), presence });
            // Nobody sees the presence of someone behind a blocking wall (`Act::Observe`).
            let policy = self.policy();
            let overflowed = if policy.is_open() {
                self.chat.hub.send_to_presence_watchers(&frame, |_| true)
            } else {
                self.chat.hub.send_to_presence_watchers(&frame, |watcher| policy.may_see(watcher, user))
            };
            self.metrics.slow_client_disconnects.add(overflowed as u64);
        }
    }

    // ---------------------------------------------------------------- conversations

    /// A conversation the caller belongs to.
    pub async fn conversation_for(&self, user: &User, id: ConversationId) -> Result<Arc<Conversation>> {
        let c = self.conversation(id).await?;
        if !c.is_member(user.id) {
            // Not a member looks the same as not there: ids are not secrets, but contents are.
            return Err(CoreError::NotFound("conversation").into());
        }
        Ok(c)
    }

    async fn conversation(&self, id: ConversationId) -> Result<Arc<Conversation>> {
        if let Some(c) = self.chat.cache.get(id) {
            return Ok(c);
        }
        let epoch = self.chat.cache.epoch();
        let c = self.store.conversation(id).await?.ok_or(CoreError::NotFound("conversation"))?;
        Ok(self.chat.cache.put(c, epoch))
    }

    pub async fn conversations_of(&self, user: &User) -> Result<Vec<ConversationSummary>> {
        Ok(self.store.conversations_of(user.id).await?)
    }

    pub async fn create_conversation(
        &self,
        actor: &User,
        kind: ConversationKind,
        title: &str,
        members: &[String],
    ) -> Result<Conversation> {
        let mut users: Vec<User> = vec![actor.clone()];
        for raw in members {
            let u = self.user_by_address(raw).await.map_err(|_| CoreError::Invalid(format!("no such user: {raw}")))?;
            if u.disabled {
                return Err(CoreError::Invalid(format!("{} cannot receive messages", u.address)).into());
            }
            if !users.iter().any(|x| x.id == u.id) {
                users.push(u);
            }
        }
        let title = title.trim();
        one_line("a title", title)?;
        match kind {
            ConversationKind::Direct if users.len() != 2 => {
                return Err(CoreError::Invalid("a direct chat is with exactly one other user".into()).into())
            }
            ConversationKind::Group if title.chars().count() > 200 => {
                return Err(CoreError::Invalid("a title has at most 200 characters".into()).into())
            }
            _ if users.len() > self.settings.max_members => {
                return Err(CoreError::Invalid(format!("at most {} members", self.settings.max_members)).into())
            }
            _ => {}
        }
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        let admission =
            self.judge(&Act::GatherAll { actor: actor.id, people: &ids, what: "start a conversation" }).await?;
        let (id, created) = self.store.create_conversation(kind, title, &ids, self.now()).await?;
        let conversation = self.conversation(id).await?;
        if created {
            let frame = Outbound::new(Frame::Conversation(conversation.as_ref().clone()));
            self.chat.hub.send_to_users(ids.iter().copied(), &frame, None);
            let mut events = vec![self.new_event(id, EventKind::Created, Some(actor), String::new(), None)];
            events.extend(self.starting_disclaimers(id, kind, &ids, &actor.display_name).await?);
            self.append(admission, events, None).await?;
        }
        Ok(conversation.as_ref().clone())
    }

    pub async fn invite(&self, actor: &User, id: ConversationId, address: &str) -> Result<Conversation> {
        let c = self.conversation_for(actor, id).await?;
        if c.kind != ConversationKind::Group {
            return Err(CoreError::Invalid("members can be added to group chats only".into()).into());
        }
        let invitee = self.user_by_address(address).await?;
        if c.is_member(invitee.id) {
            return Err(CoreError::Conflict(format!("{} is already a member", invitee.address)).into());
        }
        if c.members.len() >= self.settings.max_members {
            return Err(CoreError::Invalid(format!("at most {} members", self.settings.max_members)).into());
        }
        let members: Vec<UserId> = c.members.iter().map(|m| m.id).collect();
        let admission = self
            .judge(&Act::Gather {
                actor: actor.id,
                subject: invitee.id,
                others: &members,
                conversation: Some(id),
                what: "add to a group chat",
            })
            .await?;
        let by = actor.address.to_string();
        self.append(admission, vec![self.new_event(id, EventKind::Joined, Some(&invitee), by, None)], None).await?;
        let updated = self.conversation(id).await?;
        let frame = Outbound::new(Frame::Conversation(updated.as_ref().clone()));
        self.chat.hub.send_to_users(updated.members.iter().map(|m| m.id), &frame, None);
        Ok(updated.as_ref().clone())
    }

    pub async fn leave(&self, actor: &User, id: ConversationId) -> Result<()> {
        let c = self.conversation_for(actor, id).await?;
        if c.kind != ConversationKind::Group {
            return Err(CoreError::Invalid("you can leave group chats only".into()).into());
        }
        // Leaving reaches nobody new.
        let left = self.new_event(id, EventKind::Left, Some(actor), String::new(), None);
        self.append(self.policy().record_only(), vec![left], None).await?;
        let updated = self.conversation(id).await?;
        let frame = Outbound::new(Frame::Conversation(updated.as_ref().clone()));
        self.chat.hub.send_to_users(updated.members.iter().map(|m| m.id), &frame, None);
        Ok(())
    }

    /// The one way a chat message enters the system, from any door.
    pub async fn send_message(
        &self,
        sender: &User,
        origin: Option<SessionKey>,
        door: Door,
        id: ConversationId,
        body: &str,
        client_id: Option<String>,
    ) -> Result<Event> {
        let started = Instant::now();
        if let Some(cid) = &client_id {
            one_line("client_id", cid)?;
            if cid.is_empty() || cid.len() > 64 {
                return Err(CoreError::Invalid("client_id must have 1 to 64 characters".into()).into());
            }
        }
        if let Some(c) = sb_core::text::control_char(body) {
            return Err(CoreError::Invalid(format!(
                "a message may not contain control characters (found {})",
                sb_core::text::describe(c)
            ))
            .into());
        }
        let conversation = self.conversation_for(sender, id).await?;
        if sender.is_guest() && conversation.kind != ConversationKind::Queue {
            return Err(CoreError::Forbidden("guests can only write in their queue chat".into()).into());
        }
        self.check_guest_active(sender).await?;
        let policy = self.policy();
        let admission =
            match self.chat.pipeline.admit(&policy, &Submission { door, sender, conversation: &conversation, body }) {
                Ok(a) => a,
                Err(refused) => {
                    self.metrics.messages_refused.inc();
                    if let Refused::Policy(r) = &refused {
                        self.refused(r).await;
                    }
                    return Err(CoreError::from(refused).into());
                }
            };
        // Guests are held to their own limits (rate, messages and bytes per chat).
        self.admit_guest_message(sender, body.len())?;
        let (mut events, shown) = self.pair_disclaimers(sender, &conversation).await?;
        events.push(self.new_event(id, EventKind::Message, Some(sender), body.to_string(), client_id));
        let stored = match self.append_showing(admission, events, shown.clone(), origin).await {
            Ok(stored) => stored,
            Err(e) => {
                self.unclaim_disclaimers(&shown);
                return Err(e);
            }
        };
        let event =
            stored.into_iter().last().ok_or(CoreError::Store(StoreError::Unavailable("nothing stored".into())))?;
        self.metrics.messages_through(door, 1);
        self.metrics.message_latency.observe(started.elapsed());
        Ok(event)
    }

    pub async fn history(
        &self,
        user: &User,
        id: ConversationId,
        before: Option<EventId>,
        after: Option<EventId>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        self.conversation_for(user, id).await?;
        Ok(self.store.history(id, before, after, limit.clamp(1, 200)).await?)
    }

    /// Events the user missed after `after`, in pages.
    pub async fn events_after(&self, user: &User, after: EventId, limit: i64) -> Result<Vec<Event>> {
        Ok(self.store.events_after(user.id, after, limit).await?)
    }

    pub async fn last_event_id(&self) -> Result<EventId> {
        Ok(self.store.last_event_id().await?)
    }

    pub async fn typing(
        &self,
        user: &User,
        origin: Option<SessionKey>,
        id: ConversationId,
        active: bool,
    ) -> Result<()> {
        let c = self.conversation_for(user, id).await?;
        let frame = Outbound::new(Frame::Typing { conversation: id, address: user.address.clone(), active });
        // Only to those the policy lets see it (`Act::Signal`): never across a blocking wall.
        self.chat.hub.send_signal(&self.audience(user.id, &c, false), &frame, origin);
        Ok(())
    }

    pub async fn mark_read(&self, user: &User, id: ConversationId, up_to: EventId) -> Result<EventId> {
        let c = self.conversation_for(user, id).await?;
        self.check_guest_active(user).await?;
        // A marker past the end would swallow messages not yet sent; one below the first
        // event means nothing. Refused, not clamped: the client has a bug to see.
        let last = self.store.history(id, None, None, 1).await?.last().map(|e| e.id).unwrap_or_default();
        if up_to.0 < 1 || up_to > last {
            return Err(CoreError::Invalid(format!(
                "read marker {} is not an event of this conversation (1 to {})",
                up_to.0, last.0
            ))
            .into());
        }
        let now_at = self.store.mark_read(id, user.id, up_to).await?;
        self.alerts_read(user, &c, now_at).await;
        let frame = Outbound::new(Frame::Read { conversation: id, address: user.address.clone(), up_to: now_at });
        // The reader's own sessions, and those the policy lets see it (`Act::Signal`).
        self.chat.hub.send_signal(&self.audience(user.id, &c, true), &frame, None);
        Ok(now_at)
    }

    fn new_event(
        &self,
        conversation: ConversationId,
        kind: EventKind,
        actor: Option<&User>,
        body: String,
        client_id: Option<String>,
    ) -> NewEvent {
        NewEvent {
            conversation,
            kind,
            actor: actor.map(|u| Member { id: u.id, address: u.address.clone() }),
            body,
            client_id,
            ts: self.now(),
            note: None,
        }
    }

    /// Hand events to the log writer without waiting for the commit (their order among
    /// everything else the writer stores is kept).
    /// The writer carries out only what the policy admitted.
    async fn append_queued(&self, admission: Admission, events: Vec<NewEvent>) -> Result<()> {
        let (reply, _) = oneshot::channel();
        let request = WriteRequest { events, admission, shown: Vec::new(), origin: None, reply };
        self.chat.writer.send(request).await.map_err(|_| ServiceError::ShuttingDown)
    }

    async fn append(
        &self,
        admission: Admission,
        events: Vec<NewEvent>,
        origin: Option<SessionKey>,
    ) -> Result<Vec<Event>> {
        self.append_showing(admission, events, Vec::new(), origin).await
    }

    /// `append`, with the pair-per-day disclaimers these events show, marked in the same
    /// transaction.
    async fn append_showing(
        &self,
        admission: Admission,
        events: Vec<NewEvent>,
        shown: Vec<sb_core::store::PolicyRecord>,
        origin: Option<SessionKey>,
    ) -> Result<Vec<Event>> {
        let (reply, rx) = oneshot::channel();
        let request = WriteRequest { events, admission, shown, origin, reply };
        self.chat.writer.send(request).await.map_err(|_| ServiceError::ShuttingDown)?;
        let stored = rx.await.map_err(|_| ServiceError::ShuttingDown)??;
        Ok(stored.into_iter().map(|a| a.event).collect())
    }

    // ---------------------------------------------------------------- administration

    /// Apply what administrators changed in the database beside the server (`switchboard
    /// admin`): the policy (walls, group memberships — re-judged at once), disclaimers,
    /// webhooks and queues. Returns when it is applied.
    pub async fn apply_changes(&self) -> Result<()> {
        self.reload_queues().await
    }

    pub async fn create_user(
        &self,
        address: &str,
        display_name: &str,
        password: Option<&str>,
        roles: &[Role],
    ) -> Result<User> {
        let address = Address::parse(address)?;
        let display_name = display_name.trim();
        one_line("a display name", display_name)?;
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(CoreError::Invalid("a display name has 1 to 100 characters".into()).into());
        }
        let password_hash = match password {
            Some(p) if p.len() < 4 => {
                return Err(CoreError::Invalid("a password has at least 4 characters".into()).into())
            }
            Some(p) => {
                let p = p.to_string();
                Some(self.argon2(move || auth::hash_password(&p)).await.unwrap_or_default())
            }
            None => None,
        };
        let mut roles = roles.to_vec();
        if !roles.contains(&Role::User) {
            roles.push(Role::User);
        }
        roles.sort();
        let user = NewUser {
            email: address.as_str().to_string(),
            address,
            display_name: display_name.to_string(),
            locale: "en".into(),
            roles,
            password_hash,
        };
        Ok(self.store.create_user(user, self.now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_match_the_brief() {
        let s = Settings::default();
        assert_eq!(s.max_message_bytes, 65536);
        assert!(s.login_failures_per_address <= 10);
    }
}
