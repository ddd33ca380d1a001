//! Queue chats: a seeker asks a queue, the routing engine offers the chat to experts, an
//! expert accepts and joins the seeker's conversation. From then on it is an ordinary
//! conversation: every message goes through the same pipeline and log as any other.
//!
//! The engine (`sb_core::queue::Router`) decides; this module carries out what it decided:
//! it stores each lifecycle event, tells experts about offers, tells seekers where they
//! stand, and adds the assigned expert to the conversation.

use crate::hub::Outbound;
use crate::queue_views::offline_view;
use crate::{Frame, Result, Service, ServiceError};
use sb_core::conversation::Member;
use sb_core::policy::Act;
use sb_core::queue::{ChatId, ChatRecordState, QueueChatRecord, QueueEvent, RouteError, WithdrawReason};
use sb_core::{Address, ConversationId, CoreError, EventKind, Millis, NewEvent, User, UserId};
use std::collections::BTreeSet;

/// An offer as an expert's client shows it.
#[derive(Debug, Clone)]
pub struct Offer {
    pub chat: i64,
    pub queue: String,
    pub queue_name: String,
    pub seeker: Address,
    pub seeker_name: String,
    pub question: String,
    pub answers: Vec<(String, String)>,
    pub expires_at: Millis,
    pub conversation: ConversationId,
}

/// A chat on a queue's waiting list, as its experts see it.
#[derive(Debug, Clone)]
pub struct WaitingChat {
    pub view: ChatView,
    pub seeker: Address,
    pub seeker_name: String,
    pub question: String,
    pub answers: Vec<(String, String)>,
    pub waited_ms: Millis,
}

/// A queue chat kept as an offline message, as the queue's experts see it.
#[derive(Debug, Clone)]
pub struct OfflineMessage {
    pub record: QueueChatRecord,
    pub seeker: Option<Address>,
    pub seeker_name: String,
    pub taken_by: Option<Address>,
    pub taken_at: Option<Millis>,
}

/// Where a queue chat stands, as the seeker (and the assigned expert) see it.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub chat: i64,
    pub queue: String,
    pub queue_name: String,
    /// `waiting`, `assigned`, `wrap_up`, `closed`, `abandoned`, `overflowed`, `offline`.
    pub state: &'static str,
    pub position: Option<usize>,
    pub estimated_wait_s: Option<u64>,
    /// The expert's address, when assigned and the queue shows names.
    pub expert: Option<Address>,
    /// The expert's display name, likewise: what a guest is shown (never the address).
    pub expert_name: Option<String>,
    pub conversation: ConversationId,
    pub message: Option<String>,
    pub question: String,
    pub answers: Vec<(String, String)>,
    /// In wrap-up: when it closes by itself.
    pub wrap_up_until: Option<Millis>,
}

/// Answered within this long counts toward the service level.
pub(crate) const SERVICE_LEVEL_MS: Millis = 30_000;

fn no_experts(def: &sb_core::queue::QueueDef) -> ServiceError {
    let msg = if def.closed_message.is_empty() {
        format!("No expert of {} is signed in right now. Please try again later.", def.display_name)
    } else {
        def.closed_message.clone()
    };
    CoreError::Conflict(msg).into()
}

fn route_error(e: RouteError) -> ServiceError {
    match e {
        RouteError::NoSuchQueue => CoreError::NotFound("queue").into(),
        RouteError::NoSuchChat => CoreError::NotFound("queue chat").into(),
        RouteError::NotOffered => CoreError::Conflict("this chat is not (or no longer) offered to you".into()).into(),
        RouteError::NotAMember => CoreError::Forbidden("you are not an expert of this queue".into()).into(),
        RouteError::OverCapacity => CoreError::Conflict("you are at your chat capacity".into()).into(),
        RouteError::WrongState(s) => CoreError::Conflict(format!("the chat is {s}")).into(),
        RouteError::Walled => {
            CoreError::Blocked("Chats with this person have been prohibited by your administrator.".into()).into()
        }
    }
}

impl Service {
    pub(crate) fn route<T>(&self, f: impl FnOnce(&mut sb_core::queue::Router) -> T) -> T {
        let mut router = self.queues.router.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut router)
    }

    pub(crate) fn chat_record(&self, chat: ChatId) -> Option<QueueChatRecord> {
        self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).get(&chat).map(|c| c.record.clone())
    }

    pub(crate) fn open_chat(&self, chat: ChatId) -> Option<crate::queues::OpenChat> {
        self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).get(&chat).cloned()
    }

    fn update_chat(&self, chat: ChatId, f: impl FnOnce(&mut QueueChatRecord)) {
        if let Some(c) = self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&chat) {
            f(&mut c.record);
        }
    }

    /// A signed-in user asks a queue for a chat (`question`: the pre-chat text; `answers`:
    /// the queue's pre-chat form).
    pub async fn request_queue_chat(
        &self,
        seeker: &User,
        queue: &str,
        question: &str,
        answers: &[(String, String)],
    ) -> Result<ChatView> {
        self.request_queue_chat_from(seeker, queue, question, answers, None).await
    }

    /// `request_queue_chat`; `plain`: the seeker's direct conversation with the queue when
    /// they asked over plain IM — registered before the chat is routed, so an expert who
    /// accepts at once finds the seeker there to tell.
    pub(crate) async fn request_queue_chat_from(
        &self,
        seeker: &User,
        queue: &str,
        question: &str,
        answers: &[(String, String)],
        plain: Option<ConversationId>,
    ) -> Result<ChatView> {
        let def = self.answering_queue(queue)?;
        let answers = self.check_request(&def, question, answers)?;
        let now = self.now();
        let (conversation, chat) =
            self.store.open_queue_chat(&def.id, &def.display_name, seeker.id, question, &answers, now).await?;
        // The conversation's first event is queued to the log writer but not waited for: the
        // expert's `joined` comes later through the same writer, so the order holds, and the
        // offer need not wait for a commit.
        let mut opening = vec![self.new_event(conversation, EventKind::Created, Some(seeker), String::new(), None)];
        opening.extend(
            self.starting_disclaimers(
                conversation,
                sb_core::ConversationKind::Queue,
                &[seeker.id],
                &seeker.display_name,
            )
            .await?,
        );
        // The seeker alone: nobody is reached yet (experts are, when the router offers).
        self.append_queued(self.policy().record_only(), opening).await?;
        let record = QueueChatRecord {
            id: chat,
            queue: def.id.clone(),
            seeker: seeker.id,
            conversation,
            question: question.to_string(),
            answers,
            state: ChatRecordState::Queued,
            expert: None,
            requested_at: now,
        };
        let open = crate::queues::OpenChat {
            record: record.clone(),
            seeker_address: seeker.address.clone(),
            seeker_name: seeker.display_name.clone(),
        };
        self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).insert(chat, open);
        if let Some(direct) = plain {
            self.plain_seeker(conversation, chat, &def.id, seeker.id, direct);
        }
        let routed = self.route_request(&def, &record, seeker.id, now).await;
        if routed.is_err() && plain.is_some() {
            self.plain().chats.remove(&conversation);
        }
        routed
    }

    /// Hand a new chat to the router and say where it stands.
    async fn route_request(
        &self,
        def: &sb_core::queue::QueueDef,
        record: &QueueChatRecord,
        seeker: UserId,
        now: Millis,
    ) -> Result<ChatView> {
        let chat = record.id;
        // The router offers the chat only to experts the policy lets meet the seeker.
        let events = self
            .route(|r| {
                let events = r.request(&def.id, chat, seeker, now)?;
                // A seeker with no connection (yet) is away: back when they connect.
                self.seeker_away_unless_connected(r, seeker, chat);
                Ok(events)
            })
            .map_err(route_error)?;
        self.apply_queue_events(events).await;
        if let Some(view) = self.queue_chat_view(chat) {
            return Ok(view);
        }
        // Gone already: kept as an offline message, or the last expert signed out between
        // the check above and now.
        match self.store.queue_chat(chat).await? {
            Some(r) if r.state == ChatRecordState::Offline => Ok(offline_view(def, record)),
            _ => Err(no_experts(def)),
        }
    }

    /// Is the queue open, and are the question and the form's answers acceptable? Returns
    /// the answers as they are kept. Checked before anything is created.
    pub(crate) fn check_request(
        &self,
        def: &sb_core::queue::QueueDef,
        question: &str,
        answers: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        if !crate::queues::open_now(def, self.now()) {
            let msg = if def.closed_message.is_empty() {
                format!("{} is closed.", def.display_name)
            } else {
                def.closed_message.clone()
            };
            return Err(CoreError::Forbidden(msg).into());
        }
        if question.chars().count() > 2000 {
            return Err(CoreError::Invalid("the question has at most 2000 characters".into()).into());
        }
        Ok(sb_core::form::check_answers(&def.form, answers).map_err(CoreError::Invalid)?)
    }

    /// The queue that will take a chat asked of `name`: itself when one of its experts is
    /// signed in, else what its "no expert" action says — another queue (followed up to
    /// three times), or itself when it takes offline messages. Refused early, before any
    /// account or conversation is made, when nobody could answer.
    pub(crate) fn answering_queue(&self, name: &str) -> Result<sb_core::queue::QueueDef> {
        use sb_core::queue::OverflowAction;
        let asked = self.queues.find(name).ok_or(CoreError::NotFound("queue"))?;
        let mut def = asked.clone();
        for _ in 0..4 {
            if !crate::queues::open_now(&def, self.now()) {
                return Ok(def); // the caller refuses with the closed message
            }
            if self.queues.realtime(&def.id, self.now()).is_some_and(|s| s.signed_in > 0) {
                return Ok(def);
            }
            match &def.no_expert {
                OverflowAction::OfflineMessage => return Ok(def),
                OverflowAction::Queue(q) => match self.queues.find(q) {
                    Some(next) if next.id != asked.id => def = next,
                    _ => break,
                },
                OverflowAction::Close => break,
            }
        }
        Err(no_experts(&asked))
    }

    pub async fn accept_queue_chat(&self, expert: &User, chat: ChatId) -> Result<ChatView> {
        // Judged here too, so a walled expert's attempt is recorded (the router refuses it
        // anyway: it asks the same policy).
        if let Some(seeker) = self.route(|r| r.seeker_of(chat)) {
            self.check(&Act::Meet { seeker, expert: expert.id }).await?;
        }
        let now = self.now();
        let events = self.route(|r| r.accept(chat, expert.id, now)).map_err(route_error)?;
        self.apply_queue_events(events).await;
        self.queue_chat_view(chat).ok_or(CoreError::NotFound("queue chat").into())
    }

    pub async fn decline_queue_chat(&self, expert: &User, chat: ChatId) -> Result<()> {
        let now = self.now();
        let events = self.route(|r| r.decline(chat, expert.id, now)).map_err(route_error)?;
        self.apply_queue_events(events).await;
        Ok(())
    }

    /// The assigned expert hands the chat on: to another queue (it keeps its place by request
    /// time) or to an expert directly. The expert leaves the conversation; the next one joins
    /// when they accept.
    pub async fn transfer_queue_chat(
        &self,
        expert: &User,
        chat: ChatId,
        to_queue: Option<&str>,
        to_expert: Option<&str>,
    ) -> Result<()> {
        if !self.route(|r| r.open_chats_of(expert.id).contains(&chat)) {
            return Err(CoreError::NotFound("queue chat").into());
        }
        let queue = match to_queue {
            Some(q) => Some(self.queues.find(q).ok_or(CoreError::Invalid(format!("no such queue: {q}")))?.id),
            None => None,
        };
        let target = match to_expert {
            Some(a) => {
                Some(self.user_by_address(a).await.map_err(|_| CoreError::Invalid(format!("no such user: {a}")))?)
            }
            None => None,
        };
        if queue.is_none() && target.is_none() {
            return Err(CoreError::Invalid("transfer to a queue or an expert".into()).into());
        }
        if let (Some(t), Some(record)) = (&target, self.chat_record(chat)) {
            self.check(&Act::Gather {
                actor: expert.id,
                subject: t.id,
                others: &[record.seeker],
                conversation: Some(record.conversation),
                what: "transfer a queue chat",
            })
            .await?;
        }
        let now = self.now();
        let events = self
            .route(|r| r.transfer(chat, queue.as_deref(), target.as_ref().map(|u| u.id), now))
            .map_err(route_error)?;
        if let Some(record) = self.chat_record(chat) {
            let left = self.new_event(record.conversation, EventKind::Left, Some(expert), String::new(), None);
            self.append(self.policy().record_only(), vec![left], None).await?;
        }
        self.apply_queue_events(events).await;
        Ok(())
    }

    /// The seeker leaves (abandoned while waiting, closed once assigned) or the expert ends it.
    pub async fn end_queue_chat(&self, user: &User, chat: ChatId) -> Result<()> {
        let record = self.chat_record(chat).ok_or(CoreError::NotFound("queue chat"))?;
        let is_expert = self.route(|r| r.open_chats_of(user.id).contains(&chat));
        if record.seeker != user.id && !is_expert {
            return Err(CoreError::NotFound("queue chat").into());
        }
        let now = self.now();
        let events = self
            .route(|r| match r.state(chat) {
                Some(sb_core::queue::ChatState::Queued) => r.abandon(chat, now),
                Some(sb_core::queue::ChatState::Assigned(_)) => r.end(chat, now),
                // Ending again in wrap-up: the expert is done.
                Some(sb_core::queue::ChatState::WrapUp(e)) if e == user.id => r.finish_wrap_up(chat, e, now),
                Some(sb_core::queue::ChatState::WrapUp(_)) => Ok(Vec::new()),
                _ => r.close(chat, now),
            })
            .map_err(route_error)?;
        self.apply_queue_events(events).await;
        Ok(())
    }

    /// Advance queue time: lapsed offers, overflows. The runtime calls it a few times a second.
    pub async fn queue_tick(&self) {
        let now = self.now();
        let mut events: Vec<QueueEvent> =
            std::mem::take(&mut *self.queues.pending.lock().unwrap_or_else(|e| e.into_inner()));
        events.extend(self.route(|r| r.tick(now)));
        self.apply_queue_events(events).await;
    }

    /// Carry out what the engine decided, in order: tell people first, then store the
    /// lifecycle events in one transaction (they are the record, not on the way to anyone).
    pub(crate) async fn apply_queue_events(&self, events: Vec<QueueEvent>) {
        if events.is_empty() {
            return;
        }
        let now = self.now();
        let mut queues_touched: BTreeSet<String> = BTreeSet::new();
        let mut to_store: Vec<(String, QueueEvent)> = Vec::with_capacity(events.len());
        let mut pending: std::collections::VecDeque<QueueEvent> = events.into();
        while let Some(e) = pending.pop_front() {
            let Some(open) = self.open_chat(e.chat()) else { continue };
            let record = &open.record;
            queues_touched.insert(record.queue.clone());
            *self
                .queues
                .counters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((record.queue.clone(), e.kind()))
                .or_insert(0) += 1;
            match &e {
                QueueEvent::Offered { expert, expires_at, .. } => {
                    let offer = Offer {
                        chat: record.id.0 as i64,
                        queue: record.queue.clone(),
                        queue_name: self.queues.find(&record.queue).map(|d| d.display_name).unwrap_or_default(),
                        seeker: open.seeker_address.clone(),
                        seeker_name: open.seeker_name.clone(),
                        question: record.question.clone(),
                        answers: record.answers.clone(),
                        expires_at: *expires_at,
                        conversation: record.conversation,
                    };
                    self.chat.hub.send_to_users([*expert], &Outbound::new(Frame::QueueOffer(offer)), None);
                    if !self.chat.hub.has_console(*expert) {
                        self.offer_by_im(*expert, record.id).await;
                    }
                }
                QueueEvent::OfferWithdrawn { expert, reason, .. } => {
                    let reason = if *reason == WithdrawReason::TakenByOther { "taken" } else { "withdrawn" };
                    self.offer_gone(*expert, record.id, reason);
                    if !self.chat.hub.has_console(*expert) {
                        let text = format!("The request from {} is no longer open ({reason}).", open.seeker_name);
                        let _ = self.queue_says(&record.queue, *expert, &text).await;
                    }
                }
                QueueEvent::Declined { expert, .. } => self.offer_gone(*expert, record.id, "declined"),
                QueueEvent::OfferTimedOut { expert, .. } => {
                    self.offer_gone(*expert, record.id, "timed_out");
                    if !self.chat.hub.has_console(*expert) {
                        let text = format!("The request from {} timed out; it goes to someone else.", open.seeker_name);
                        let _ = self.queue_says(&record.queue, *expert, &text).await;
                    }
                }
                QueueEvent::Assigned { expert, .. } => {
                    self.update_chat(record.id, |c| {
                        c.state = ChatRecordState::Assigned;
                        c.expert = Some(*expert);
                    });
                    // The expert just accepted, so they are online and the hub knows them.
                    let address = match self.chat.hub.address_of(*expert) {
                        Some(a) => Some(a),
                        None => self.store.user(*expert).await.ok().flatten().map(|u| u.address),
                    };
                    // The router decided under the same policy; judged again at the join.
                    let admitted = self.policy().admit(&Act::Meet { seeker: record.seeker, expert: *expert });
                    if let Err(refusal) = &admitted {
                        tracing::error!(chat = record.id.0, notice = %refusal.notice, "an assigned expert is walled from the seeker");
                    }
                    if let (Some(address), Ok(admission)) = (address, admitted) {
                        let joined = NewEvent {
                            conversation: record.conversation,
                            kind: EventKind::Joined,
                            actor: Some(Member { id: *expert, address }),
                            body: String::new(),
                            client_id: None,
                            ts: now,
                            note: None,
                        };
                        if let Err(err) = self.append(admission, vec![joined], None).await {
                            tracing::error!(error = %err, "cannot add the expert to the queue chat");
                        }
                        if let Ok(c) = self.conversation(record.conversation).await {
                            let frame = Outbound::new(Frame::Conversation(c.as_ref().clone()));
                            self.chat.hub.send_to_users(c.members.iter().map(|m| m.id), &frame, None);
                        }
                    }
                    self.tell_participants(record.id);
                    let show = self.queues.find(&record.queue).is_none_or(|d| d.show_expert_name);
                    let expert_name = match show {
                        true => self.store.user(*expert).await.ok().flatten().map(|u| u.display_name),
                        false => None,
                    };
                    let news = crate::queue_im::PlainNews::Assigned { expert_name };
                    self.tell_plain(record.id, record.conversation, news).await;
                }
                QueueEvent::Transferred { to_queue, .. } => {
                    self.update_chat(record.id, |c| {
                        c.state = ChatRecordState::Queued;
                        c.expert = None;
                        if let Some(q) = to_queue {
                            c.queue = q.clone();
                        }
                    });
                    if let Some(q) = to_queue {
                        queues_touched.insert(q.clone());
                    }
                    self.tell_participants(record.id);
                }
                QueueEvent::Overflowed { reason: sb_core::queue::OverflowReason::MaxWait, .. }
                    if self.rollover_target(&record.queue).is_some() =>
                {
                    // Rolled over: the chat waits in the next queue, keeping its conversation.
                    let target = self.rollover_target(&record.queue).expect("checked");
                    self.update_chat(record.id, |c| c.queue = target.clone());
                    queues_touched.insert(target.clone());
                    let more = self
                        .route(|r| {
                            let more = r.request(&target, record.id, record.seeker, now);
                            self.seeker_away_unless_connected(r, record.seeker, record.id);
                            more
                        })
                        .unwrap_or_default();
                    to_store.push((record.queue.clone(), e));
                    for follow in more {
                        pending.push_back(follow);
                    }
                    continue;
                }
                QueueEvent::Overflowed { reason, .. } if self.takes_offline_messages(&record.queue, *reason) => {
                    pending.push_front(QueueEvent::OfflineMessage { chat: record.id });
                }
                QueueEvent::OfflineMessage { .. } => {
                    // The seeker stays in the conversation and may write on; the queue's
                    // experts find it among the offline messages and answer it there.
                    self.update_chat(record.id, |c| c.state = ChatRecordState::Offline);
                    self.tell_participants(record.id);
                    self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.id);
                }
                QueueEvent::WrapUp { .. } => {
                    self.update_chat(record.id, |c| c.state = ChatRecordState::WrapUp);
                    // Without a wrap-up time it closed at once: `closed` tells them.
                    if matches!(self.route(|r| r.state(record.id)), Some(sb_core::queue::ChatState::WrapUp(_))) {
                        self.tell_participants(record.id);
                    }
                }
                QueueEvent::Closed { .. } | QueueEvent::Abandoned { .. } | QueueEvent::Overflowed { .. } => {
                    let state = match e {
                        QueueEvent::Closed { .. } => ChatRecordState::Closed,
                        QueueEvent::Abandoned { .. } => ChatRecordState::Abandoned,
                        _ => ChatRecordState::Overflowed,
                    };
                    self.update_chat(record.id, |c| c.state = state);
                    self.tell_participants(record.id);
                    self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.id);
                    self.tell_plain(record.id, record.conversation, crate::queue_im::PlainNews::Ended).await;
                    // A guest's rights end with its chat (after it was told the chat's end).
                    self.retire_guest(record.seeker).await;
                }
                _ => {}
            }
            to_store.push((record.queue.clone(), e));
        }
        // Everyone still waiting in a touched queue learns their (new) place in line.
        for queue in queues_touched {
            for chat in self.route(|r| r.waiting(&queue)) {
                self.tell_participants(chat);
            }
        }
        if let Err(err) = self.store.record_queue_events(&to_store, now).await {
            tracing::error!(error = %err, "cannot store queue events");
        }
        self.enqueue_webhooks(&to_store, now).await;
    }

    /// After a restart: put every queue chat that was waiting or assigned back where it was.
    pub async fn restore_queue_chats(&self) -> Result<usize> {
        let open = self.store.open_queue_chats().await?;
        let now = self.now();
        let mut events = Vec::new();
        let mut restored = 0;
        for record in open {
            let Some(seeker) = self.store.user(record.seeker).await? else { continue };
            let expert = record.expert.filter(|_| record.state != ChatRecordState::Queued);
            let chat = record.id;
            let queue = record.queue.clone();
            let requested_at = record.requested_at;
            let open =
                crate::queues::OpenChat { record, seeker_address: seeker.address, seeker_name: seeker.display_name };
            let wrap_up = open.record.state == ChatRecordState::WrapUp;
            self.queues.chats.lock().unwrap_or_else(|e| e.into_inner()).insert(chat, open);
            events.extend(self.route(|r| {
                let events = r.restore(&queue, chat, seeker.id, requested_at, expert, wrap_up, now);
                // Nobody is connected to a server that just started: seekers have the grace
                // period to come back.
                self.seeker_away_unless_connected(r, seeker.id, chat);
                events
            }));
            restored += 1;
        }
        self.apply_queue_events(events).await;
        Ok(restored)
    }

    /// A new session of `user` gets the queue state the user's other sessions already
    /// have: open offers (experts) and where their queue chats stand (seekers, experts).
    pub fn replay_queue_state(&self, key: sb_core::SessionKey, user: &User) {
        let offers = self.route(|r| r.offers_of(user.id));
        for chat in offers {
            let Some(open) = self.open_chat(chat) else { continue };
            let expires_at = self.route(|r| r.offer_expiry(chat, user.id)).unwrap_or_default();
            let offer = Offer {
                chat: chat.0 as i64,
                queue: open.record.queue.clone(),
                queue_name: self.queues.find(&open.record.queue).map(|d| d.display_name).unwrap_or_default(),
                seeker: open.seeker_address.clone(),
                seeker_name: open.seeker_name.clone(),
                question: open.record.question.clone(),
                answers: open.record.answers.clone(),
                expires_at,
                conversation: open.record.conversation,
            };
            self.chat.hub.send_to_session(key, &Outbound::new(Frame::QueueOffer(offer)));
        }
        let mine: Vec<ChatId> = self
            .queues
            .chats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|c| c.record.seeker == user.id || c.record.expert == Some(user.id))
            .map(|c| c.record.id)
            .collect();
        for chat in mine {
            if let Some(view) = self.queue_chat_view(chat) {
                self.chat.hub.send_to_session(key, &Outbound::new(Frame::QueueChat(view)));
            }
        }
    }

    /// The waiting list of a queue, oldest first, for its experts and managers (on a
    /// `manual` queue experts pick from it with accept).
    pub fn queue_waiting(&self, user: &User, queue: &str) -> Result<Vec<WaitingChat>> {
        let def = self.queues.find(queue).ok_or(CoreError::NotFound("queue"))?;
        if !def.staffed_by(user) {
            return Err(
                CoreError::Forbidden("only the queue's experts and managers see its waiting list".into()).into()
            );
        }
        let now = self.now();
        let policy = self.policy();
        Ok(self
            .route(|r| r.waiting(&def.id))
            .into_iter()
            .filter_map(|chat| {
                let open = self.open_chat(chat)?;
                // Nobody sees a seeker they are walled from (`Act::Observe`).
                if !policy.may_see(user.id, open.record.seeker) {
                    return None;
                }
                let view = self.queue_chat_view(chat)?;
                Some(WaitingChat {
                    view,
                    seeker: open.seeker_address,
                    seeker_name: open.seeker_name,
                    question: open.record.question,
                    answers: open.record.answers,
                    waited_ms: now - open.record.requested_at,
                })
            })
            .collect())
    }

    /// The seeker rates a chat (1–5) with an optional comment, once it was assigned.
    pub async fn rate_queue_chat(&self, seeker: &User, chat: ChatId, rating: u8, comment: &str) -> Result<()> {
        if !(1..=5).contains(&rating) {
            return Err(CoreError::Invalid("the rating is 1 to 5".into()).into());
        }
        if comment.chars().count() > 2000 {
            return Err(CoreError::Invalid("the comment has at most 2000 characters".into()).into());
        }
        let record = self
            .store
            .queue_chat(chat)
            .await?
            .filter(|r| r.seeker == seeker.id)
            .ok_or(CoreError::NotFound("queue chat"))?;
        if record.expert.is_none() {
            return Err(CoreError::Conflict("only a chat that reached an expert can be rated".into()).into());
        }
        Ok(self.store.save_survey(chat, rating, comment.trim()).await?)
    }

    /// The expert's wrap-up: tags (from the queue's list) and a note. Ends the wrap-up time;
    /// allowed again later, to correct it.
    pub async fn wrap_up_queue_chat(&self, expert: &User, chat: ChatId, tags: &[String], note: &str) -> Result<()> {
        if note.chars().count() > 2000 {
            return Err(CoreError::Invalid("the note has at most 2000 characters".into()).into());
        }
        let record = match self.chat_record(chat) {
            Some(r) => Some(r),
            None => self.store.queue_chat(chat).await?,
        };
        let record = record.filter(|r| r.expert == Some(expert.id)).ok_or(CoreError::NotFound("queue chat"))?;
        let def = self.queues.defs().iter().find(|d| d.id == record.queue).cloned();
        let allowed = def.map(|d| d.wrap_up_tags).unwrap_or_default();
        let mut kept: Vec<String> = Vec::new();
        for t in tags {
            let t = t.trim();
            if !allowed.iter().any(|a| a == t) {
                return Err(CoreError::Invalid(format!("{t:?} is not one of this queue's wrap-up tags")).into());
            }
            if !kept.iter().any(|k| k == t) {
                kept.push(t.to_string());
            }
        }
        let now = self.now();
        match self.route(|r| r.state(chat)) {
            Some(sb_core::queue::ChatState::Assigned(_)) => {
                return Err(CoreError::Conflict("end the chat before wrapping it up".into()).into())
            }
            Some(sb_core::queue::ChatState::Queued) => return Err(CoreError::NotFound("queue chat").into()),
            _ => {}
        }
        self.store.save_wrap_up(chat, &kept, note.trim()).await?;
        if let Ok(events) = self.route(|r| r.finish_wrap_up(chat, expert.id, now)) {
            self.apply_queue_events(events).await;
        }
        Ok(())
    }

    /// The assigned expert brings a colleague into the chat (a conference): the colleague
    /// joins the seeker's conversation. The chat stays the first expert's.
    pub async fn invite_to_queue_chat(&self, expert: &User, chat: ChatId, colleague: &str) -> Result<()> {
        let record = self.chat_record(chat).ok_or(CoreError::NotFound("queue chat"))?;
        if self.route(|r| r.state(chat)) != Some(sb_core::queue::ChatState::Assigned(expert.id)) {
            return Err(CoreError::NotFound("queue chat").into());
        }
        let other = self
            .user_by_address(colleague)
            .await
            .map_err(|_| CoreError::Invalid(format!("no such user: {colleague}")))?;
        if other.is_guest() || other.disabled {
            return Err(CoreError::Invalid(format!("{} cannot be invited", other.address)).into());
        }
        let conversation = self.conversation(record.conversation).await?;
        if conversation.members.iter().any(|m| m.id == other.id) {
            return Err(CoreError::Conflict(format!("{} is already in this chat", other.address)).into());
        }
        let members: Vec<UserId> = conversation.members.iter().map(|m| m.id).collect();
        let admission = self
            .judge(&Act::Gather {
                actor: expert.id,
                subject: other.id,
                others: &members,
                conversation: Some(record.conversation),
                what: "invite to a queue chat",
            })
            .await?;
        let joined = self.new_event(record.conversation, EventKind::Joined, Some(&other), String::new(), None);
        self.append(admission, vec![joined], None).await?;
        if let Ok(c) = self.conversation(record.conversation).await {
            let frame = Outbound::new(Frame::Conversation(c.as_ref().clone()));
            self.chat.hub.send_to_users(c.members.iter().map(|m| m.id), &frame, None);
        }
        self.apply_queue_events(vec![QueueEvent::Invited { chat, expert: other.id }]).await;
        Ok(())
    }

    /// Where chats that waited too long in `queue` roll over to, if anywhere ready.
    fn rollover_target(&self, queue: &str) -> Option<String> {
        let def = self.queues.defs().iter().find(|d| d.id == queue).cloned()?;
        let target = self.queues.find(def.overflow.queue()?)?;
        let ready = self.queues.realtime(&target.id, self.now()).is_some_and(|s| s.signed_in > 0);
        (ready && crate::queues::open_now(&target, self.now()) && target.id != def.id).then_some(target.id)
    }

    /// Does `queue` keep chats that overflowed for `reason` as offline messages?
    fn takes_offline_messages(&self, queue: &str, reason: sb_core::queue::OverflowReason) -> bool {
        use sb_core::queue::{OverflowAction, OverflowReason};
        self.queues.defs().iter().find(|d| d.id == queue).is_some_and(|d| {
            let action = if reason == OverflowReason::MaxWait { &d.overflow } else { &d.no_expert };
            *action == OverflowAction::OfflineMessage
        })
    }

    fn offer_gone(&self, expert: UserId, chat: ChatId, reason: &'static str) {
        self.chat.hub.send_to_users(
            [expert],
            &Outbound::new(Frame::QueueOfferGone { chat: chat.0 as i64, reason }),
            None,
        );
    }

    fn tell_participants(&self, chat: ChatId) {
        let Some(record) = self.chat_record(chat) else { return };
        let Some(view) = self.queue_chat_view(chat) else { return };
        let to: Vec<UserId> = std::iter::once(record.seeker).chain(record.expert).collect();
        self.chat.hub.send_to_users(to, &Outbound::new(Frame::QueueChat(view)), None);
    }
}
