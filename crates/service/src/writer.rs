//! The conversation log's single writer, with group commit.
//!
//! Every stored event goes through one task: it takes whatever requests are waiting (up to
//! a batch limit), stores them in one transaction, and only then answers each request and
//! fans the events out. One writer gives one global order: event ids increase in the order
//! sessions receive them, which is what lets a client resume from "the last id I saw".
//! Group commit keeps durable (fsync'd) commits cheap under load.
//!
//! The writer carries out only admitted acts: a request holds the policy's `Admission`
//! (the only way to make one is `policy::Snapshot::admit`), and the crossings a monitoring
//! wall flagged are stored as violations in the same transaction as the events, as are the
//! disclaimers the request showed. Compliance officers hear of them after the commit, and
//! so do the components that act on stored messages ([`Subscriber`]).

use crate::hub::{Hub, Outbound};
use crate::metrics::Metrics;
use crate::Frame;
use sb_core::conversation::Appended;
use sb_core::conversation::Member;
use sb_core::policy::{Admission, Crossing};
use sb_core::store::prelude::*;
use sb_core::store::PolicyRecord;
use sb_core::walls::Violation;
use sb_core::{Conversation, ConversationId, Event, EventKind, NewEvent, SessionKey, StoreError, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 512;

pub struct WriteRequest {
    pub events: Vec<NewEvent>,
    /// The policy's leave to carry the act out, with what it flagged.
    pub admission: Admission,
    /// Pair-per-day disclaimers shown by these events (`PolicyRecord::DisclaimerShown`).
    pub shown: Vec<PolicyRecord>,
    /// The session that submitted it: it gets an ack, not an echo.
    pub origin: Option<SessionKey>,
    pub reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
}

/// Conversations with their members, kept current by the writer (the only place
/// membership changes are stored), so sending and fan-out need no database read.
#[derive(Default)]
pub struct ConversationCache {
    map: Mutex<HashMap<ConversationId, Arc<Conversation>>>,
    /// Bumped on every membership change; a loader that read the database before a change
    /// must not overwrite the cache with what it read.
    epoch: AtomicU64,
}

impl ConversationCache {
    pub fn get(&self, id: ConversationId) -> Option<Arc<Conversation>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
    /// Insert what was read from the store, unless membership changed since `epoch`.
    pub fn put(&self, conversation: Conversation, epoch: u64) -> Arc<Conversation> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let c = Arc::new(conversation);
        if self.epoch.load(Ordering::SeqCst) == epoch {
            map.insert(c.id, c.clone());
        }
        c
    }
    fn apply(&self, id: ConversationId, kind: EventKind, member: &Member) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(c) = map.get_mut(&id) {
            let mut updated: Conversation = c.as_ref().clone();
            match kind {
                EventKind::Joined if !updated.is_member(member.id) => updated.members.push(member.clone()),
                EventKind::Left => updated.members.retain(|m| m.id != member.id),
                _ => return,
            }
            *c = Arc::new(updated);
        }
    }
}

/// The chat log and hub: the message pipeline, the session registry, the conversation
/// cache, and the single writer (its task and how to stop it).
pub(crate) struct ChatLog {
    pub(crate) pipeline: sb_core::pipeline::Pipeline,
    pub(crate) hub: Arc<Hub>,
    pub(crate) cache: Arc<ConversationCache>,
    pub(crate) writer: mpsc::Sender<WriteRequest>,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ChatLog {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        max_message_bytes: usize,
        after: AfterCommit,
    ) -> Self {
        let (hub, cache) = (Arc::new(Hub::default()), Arc::new(ConversationCache::default()));
        let (writer, rx) = mpsc::channel(4096);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store, hub.clone(), cache.clone(), metrics, rx, stop.clone(), after));
        Self {
            pipeline: sb_core::pipeline::Pipeline::new(max_message_bytes),
            hub,
            cache,
            writer,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Store what is queued, then stop the writer.
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    cache: Arc<ConversationCache>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<WriteRequest>,
    stop: CancellationToken,
    after: AfterCommit,
) {
    let AfterCommit { violations, subscriber } = after;
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(64);
    // A monitoring wall is reported once per conversation and wall while the server runs,
    // not at every message.
    let mut reported: std::collections::HashSet<(Option<ConversationId>, i64)> = Default::default();
    loop {
        // On stop, store what is already queued, then end.
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = stop.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        batch.push(first);
        let mut n = batch[0].events.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.events.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let all: Vec<NewEvent> = batch.iter().flat_map(|r| r.events.iter().cloned()).collect();
        let (records, crossings) = policy_records(&mut reported, &batch);
        match store.append_with(&all, &records).await {
            Ok((stored, ids)) => {
                report(&violations, &records, crossings, &ids);
                metrics.append_latency.observe(started.elapsed());
                warm(&store, &cache, &all).await;
                metrics.append_batches.inc();
                let mut stored = stored.into_iter();
                for req in batch.drain(..) {
                    let mine: Vec<Appended> = stored.by_ref().take(req.events.len()).collect();
                    deliver(&hub, &cache, &metrics, subscriber.get(), &mine, req.origin);
                    let _ = req.reply.send(Ok(mine));
                }
            }
            Err(e) if batch.len() > 1 => {
                forget(&mut reported, &crossings);
                // One bad request must not sink the others: store them one by one.
                tracing::warn!(error = %e, size = batch.len(), "group commit failed; retrying one by one");
                for req in batch.drain(..) {
                    let (records, crossings) = policy_records(&mut reported, std::slice::from_ref(&req));
                    let result = store.append_with(&req.events, &records).await;
                    warm(&store, &cache, &req.events).await;
                    match &result {
                        Ok((mine, ids)) => {
                            metrics.append_batches.inc();
                            report(&violations, &records, crossings, ids);
                            deliver(&hub, &cache, &metrics, subscriber.get(), mine, req.origin);
                        }
                        Err(_) => forget(&mut reported, &crossings),
                    }
                    let _ = req.reply.send(result.map(|(mine, _)| mine));
                }
            }
            Err(e) => {
                forget(&mut reported, &crossings);
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// What the requests' admissions ask to be stored with them: flagged crossings not yet
/// reported (marked reported now; a failed commit is logged and the next message flags
/// again) and the disclaimers shown.
fn policy_records(
    reported: &mut std::collections::HashSet<(Option<ConversationId>, i64)>,
    batch: &[WriteRequest],
) -> (Vec<PolicyRecord>, Vec<Crossing>) {
    let mut records = Vec::new();
    let mut crossings = Vec::new();
    for req in batch {
        for c in req.admission.flags() {
            if reported.insert((c.conversation, c.wall)) {
                let (v, archived) = c.record(req.events.first().map_or(0, |e| e.ts));
                records.push(PolicyRecord::Violation(v, archived));
                crossings.push(c.clone());
            }
        }
        records.extend(req.shown.iter().cloned());
    }
    (records, crossings)
}

/// Crossings whose transaction did not commit are not reported yet.
fn forget(reported: &mut std::collections::HashSet<(Option<ConversationId>, i64)>, crossings: &[Crossing]) {
    for c in crossings {
        reported.remove(&(c.conversation, c.wall));
    }
}

/// Tell the compliance side (after the commit) which violations were stored, with ids.
fn report(
    to: &mpsc::UnboundedSender<(Violation, Crossing)>,
    records: &[PolicyRecord],
    crossings: Vec<Crossing>,
    ids: &[i64],
) {
    let stored = records.iter().filter_map(|r| match r {
        PolicyRecord::Violation(v, _) => Some(v.clone()),
        _ => None,
    });
    for ((mut v, c), id) in stored.zip(crossings).zip(ids) {
        v.id = *id;
        let _ = to.send((v, c));
    }
}

/// Make sure every conversation in the batch is cached, so fan-out knows its members.
async fn warm(store: &Arc<dyn Store>, cache: &ConversationCache, events: &[NewEvent]) {
    for e in events {
        if cache.get(e.conversation).is_none() {
            let epoch = cache.epoch();
            match store.conversation(e.conversation).await {
                Ok(Some(c)) => {
                    cache.put(c, epoch);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot load conversation for fan-out"),
            }
        }
    }
}

/// Who hears of what the writer stored, after the commit.
pub(crate) struct AfterCommit {
    /// Compliance: the violations stored with their acts.
    pub violations: mpsc::UnboundedSender<(Violation, Crossing)>,
    /// The component acting on stored messages, once the service exists.
    pub subscriber: Arc<std::sync::OnceLock<Subscriber>>,
}

/// Does a message by this sender in this conversation concern the subscriber?
pub type Wants = Box<dyn Fn(UserId, &Conversation) -> bool + Send + Sync>;

/// A component that acts on stored messages after their commit (queues over plain IM,
/// alert replies): told of every message it `wants`, in commit order.
pub struct Subscriber {
    pub wants: Wants,
    pub tx: mpsc::UnboundedSender<(Event, Arc<Conversation>)>,
}

fn deliver(
    hub: &Hub,
    cache: &ConversationCache,
    metrics: &Metrics,
    subscriber: Option<&Subscriber>,
    stored: &[Appended],
    origin: Option<SessionKey>,
) {
    for a in stored.iter().filter(|a| !a.duplicate) {
        metrics.events_appended.inc();
        let e = &a.event;
        // A member who leaves still hears about it; one who joins hears from now on.
        let ids = |c: Option<Arc<Conversation>>| {
            c.map(|c| c.members.iter().map(|m| m.id).collect::<Vec<UserId>>()).unwrap_or_default()
        };
        let before = ids(cache.get(e.conversation));
        if let (Some(actor), EventKind::Joined | EventKind::Left) = (&e.actor, e.kind) {
            cache.apply(e.conversation, e.kind, actor);
        }
        let mut to = ids(cache.get(e.conversation));
        for u in before {
            if !to.contains(&u) {
                to.push(u);
            }
        }
        let frame = Outbound::new(Frame::Event(e.clone()));
        let overflowed = hub.send_to_users(to, &frame, origin);
        metrics.slow_client_disconnects.add(overflowed as u64);
        if let (Some(sub), EventKind::Message, Some(actor)) = (subscriber, e.kind, &e.actor) {
            if let Some(c) = cache.get(e.conversation).filter(|c| (sub.wants)(actor.id, c)) {
                let _ = sub.tx.send((e.clone(), c));
            }
        }
    }
}
