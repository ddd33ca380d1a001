//! Queues over plain IM: a queue is reachable like a person.
//!
//! Each queue has a directory entry with its address (role `queue`, never signs in). People
//! write to it in an ordinary direct conversation, from any client:
//! - a seeker's first message asks for a chat (the text is the question); once an expert
//!   has it, what the seeker writes there is relayed into the queue chat and the expert's
//!   answers come back from the queue's address;
//! - an expert with no console open gets offers there as messages ("Chat request from Bob
//!   (IT Support): 'VPN fails'. Reply /accept or /decline") and works with `/accept`,
//!   `/decline`, `/transfer <queue|user>`, `/end`; other text is relayed to the seeker.
//!
//! Relayed messages are sent into the queue chat's conversation as their author, through
//! `send_message` — the same pipeline (policy, archive) as every other message.
//!
//! What is relayed where lives in memory: after a restart the queue chats themselves are
//! restored, but plain-IM participants must open the relay again (seekers write again,
//! experts answer in the console or wait for the next offer).

use crate::{Result, Service};
use sb_core::directory::NewUser;
use sb_core::pipeline::Door;
use sb_core::queue::{ChatId, QueueDef};
use sb_core::{ConversationId, ConversationKind, CoreError, Role, User, UserId};
use std::collections::HashMap;

/// A queue chat with at least one participant on plain IM.
#[derive(Debug, Clone)]
pub(crate) struct PlainChat {
    pub chat: ChatId,
    pub queue: String,
    /// The seeker, when they asked by IM: their direct conversation with the queue.
    pub seeker: Option<(UserId, ConversationId)>,
    /// The expert, when they accepted by IM.
    pub expert: Option<(UserId, ConversationId)>,
}

/// Queue accounts and the plain-IM relays.
#[derive(Default)]
pub(crate) struct PlainIm {
    /// Queue account → (queue id, the account).
    pub accounts: HashMap<UserId, (String, User)>,
    /// Queue chat conversation → who is on plain IM in it.
    pub chats: HashMap<ConversationId, PlainChat>,
}

const EXPERT_HELP: &str = "Commands: /accept or /decline an offered chat, /transfer <queue or user> and /end during a chat, /help. Anything else you write during a chat goes to the person you are helping.";

impl Service {
    pub(crate) fn plain(&self) -> std::sync::MutexGuard<'_, PlainIm> {
        self.queues.plain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make sure every queue has its directory entry (created on first sight; display name
    /// kept in step).
    pub(crate) async fn ensure_queue_accounts(&self, defs: &[QueueDef]) -> Result<()> {
        let mut accounts = HashMap::new();
        for def in defs {
            let user = match self.store.user_by_address(&def.address).await? {
                Some(u) if u.has_role(Role::Queue) => u,
                Some(_) => continue, // a person has this address: the queue is not reachable by IM
                None => {
                    let new = NewUser {
                        address: def.address.clone(),
                        display_name: def.display_name.clone(),
                        email: String::new(),
                        locale: "en".into(),
                        roles: vec![Role::Queue],
                        password_hash: None,
                    };
                    match self.store.create_user(new, self.now()).await {
                        Ok(u) => u,
                        // Made meanwhile by another path (an admin command beside the server).
                        Err(_) => match self.store.user_by_address(&def.address).await? {
                            Some(u) => u,
                            None => continue,
                        },
                    }
                }
            };
            accounts.insert(user.id, (def.id.clone(), user));
        }
        self.plain().accounts = accounts;
        Ok(())
    }

    /// The queue a directory entry speaks for, if it is a queue's.
    pub(crate) fn queue_of_account(&self, user: UserId) -> Option<String> {
        self.plain().accounts.get(&user).map(|(q, _)| q.clone())
    }

    fn account_of_queue(&self, queue: &str) -> Option<User> {
        self.plain().accounts.values().find(|(q, _)| q == queue).map(|(_, u)| u.clone())
    }

    /// The queue writes to `to` in their direct conversation; returns that conversation.
    pub(crate) async fn queue_says(&self, queue: &str, to: UserId, text: &str) -> Result<ConversationId> {
        let account = self.account_of_queue(queue).ok_or(CoreError::NotFound("queue account"))?;
        let (conversation, created) =
            self.store.create_conversation(ConversationKind::Direct, "", &[account.id, to], self.now()).await?;
        if created {
            let c = self.conversation(conversation).await?;
            let frame = crate::hub::Outbound::new(crate::Frame::Conversation(c.as_ref().clone()));
            self.chat.hub.send_to_users([account.id, to], &frame, None);
        }
        self.send_message(&account, None, Door::QueueRelay, conversation, text, None).await?;
        Ok(conversation)
    }

    /// Someone wrote `body` to a queue's account in `direct`. Answers go back there.
    pub(crate) async fn queue_im(&self, sender: &User, queue: &str, direct: ConversationId, body: &str) {
        let Some(def) = self.queues.defs().iter().find(|d| d.id == queue).cloned() else { return };
        let is_expert = def.members.iter().any(|m| m.user == sender.id);
        let outcome = if is_expert {
            self.expert_im(sender, &def, direct, body.trim()).await
        } else {
            self.seeker_im(sender, &def, direct, body.trim()).await
        };
        if let Err(e) = outcome {
            let _ = self.queue_says(&def.id, sender.id, &format!("Sorry: {e}")).await;
        }
    }

    /// A seeker on plain IM: what the queue relays to and from their direct conversation.
    pub(crate) fn plain_seeker(
        &self,
        conversation: ConversationId,
        chat: ChatId,
        queue: &str,
        seeker: UserId,
        direct: ConversationId,
    ) {
        let relay = PlainChat { chat, queue: queue.to_string(), seeker: Some((seeker, direct)), expert: None };
        self.plain().chats.insert(conversation, relay);
    }

    async fn seeker_im(&self, seeker: &User, def: &QueueDef, direct: ConversationId, text: &str) -> Result<()> {
        let open = self
            .plain()
            .chats
            .iter()
            .find(|(_, p)| p.queue == def.id && p.seeker.is_some_and(|(u, _)| u == seeker.id))
            .map(|(c, p)| (*c, p.chat));
        if let Some((conversation, chat)) = open {
            if text.eq_ignore_ascii_case("/end") || text.eq_ignore_ascii_case("/quit") {
                return self.end_queue_chat(seeker, chat).await;
            }
            self.send_message(seeker, None, Door::QueueRelay, conversation, text, None).await?;
            return Ok(());
        }
        if text.is_empty() || text.starts_with('/') {
            let hint = format!("Write your question to start a chat with {}.", def.display_name);
            self.queue_says(&def.id, seeker.id, &hint).await?;
            return Ok(());
        }
        let view = self.request_queue_chat_from(seeker, &def.id, text, &[], Some(direct)).await?;
        if view.state == "offline" {
            self.plain().chats.remove(&view.conversation);
        }
        let reply = match (view.state, view.position) {
            ("offline", _) => view.message.unwrap_or_default(),
            ("waiting", Some(p)) => {
                let welcome = view.message.map(|m| format!("{m} ")).unwrap_or_default();
                format!("{welcome}You are number {p} in line. Write /end to leave.")
            }
            _ => "An expert is joining you.".into(),
        };
        self.queue_says(&view.queue, seeker.id, &reply).await?;
        Ok(())
    }

    async fn expert_im(&self, expert: &User, def: &QueueDef, direct: ConversationId, text: &str) -> Result<()> {
        let (command, arg) = match text.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (text, ""),
        };
        let current = self.plain_chat_of_expert(expert.id, &def.id);
        match command.to_ascii_lowercase().as_str() {
            "/accept" => {
                let offered = self.route(|r| {
                    let mut offers: Vec<ChatId> = r.offers_of(expert.id);
                    if def.method == sb_core::queue::RoutingMethod::Manual {
                        offers.extend(r.waiting(&def.id));
                    }
                    offers.into_iter().find(|c| {
                        self.queues
                            .chats
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(c)
                            .is_some_and(|o| o.record.queue == def.id)
                    })
                });
                let chat = offered.ok_or_else(|| CoreError::Conflict("no chat is offered to you right now".into()))?;
                let view = self.accept_queue_chat(expert, chat).await?;
                let seeker_name = self.open_chat_seeker(chat).unwrap_or_default();
                self.plain()
                    .chats
                    .entry(view.conversation)
                    .or_insert_with(|| PlainChat { chat, queue: view.queue.clone(), seeker: None, expert: None })
                    .expert = Some((expert.id, direct));
                let question =
                    if view.question.is_empty() { String::new() } else { format!(" Question: '{}'.", view.question) };
                self.queue_says(
                    &view.queue,
                    expert.id,
                    &format!("You are chatting with {seeker_name}.{question} What you write here goes to them; /transfer <queue or user> or /end when done."),
                )
                .await?;
            }
            "/decline" => {
                let chat = self
                    .route(|r| r.offers_of(expert.id))
                    .into_iter()
                    .find(|c| self.open_chat(*c).is_some_and(|o| o.record.queue == def.id))
                    .ok_or_else(|| CoreError::Conflict("no chat is offered to you right now".into()))?;
                self.decline_queue_chat(expert, chat).await?;
                self.queue_says(&def.id, expert.id, "Declined.").await?;
            }
            "/transfer" => {
                let (conversation, chat) =
                    current.ok_or_else(|| CoreError::Conflict("you have no chat to transfer".into()))?;
                if arg.is_empty() {
                    return Err(CoreError::Invalid("say where to: /transfer <queue or user>".into()).into());
                }
                let (to_queue, to_expert) =
                    if self.queues.find(arg).is_some() { (Some(arg), None) } else { (None, Some(arg)) };
                self.transfer_queue_chat(expert, chat, to_queue, to_expert).await?;
                if let Some(p) = self.plain().chats.get_mut(&conversation) {
                    p.expert = None;
                }
                self.queue_says(&def.id, expert.id, &format!("Transferred to {arg}.")).await?;
            }
            "/end" => {
                let (_, chat) = current.ok_or_else(|| CoreError::Conflict("you have no chat to end".into()))?;
                self.end_queue_chat(expert, chat).await?;
                // No wrap-up form on plain IM: done at once.
                if let Ok(events) = self.route(|r| r.finish_wrap_up(chat, expert.id, self.now())) {
                    self.apply_queue_events(events).await;
                }
            }
            "/help" => {
                self.queue_says(&def.id, expert.id, EXPERT_HELP).await?;
            }
            c if c.starts_with('/') => {
                self.queue_says(&def.id, expert.id, &format!("Unknown command {c}. {EXPERT_HELP}")).await?;
            }
            _ => match current {
                Some((conversation, _)) => {
                    self.send_message(expert, None, Door::QueueRelay, conversation, text, None).await?;
                }
                None => {
                    self.queue_says(&def.id, expert.id, &format!("You have no chat open. {EXPERT_HELP}")).await?;
                }
            },
        }
        Ok(())
    }

    /// The latest chat of `queue` the expert works on plain IM: (its conversation, its id).
    fn plain_chat_of_expert(&self, expert: UserId, queue: &str) -> Option<(ConversationId, ChatId)> {
        self.plain()
            .chats
            .iter()
            .filter(|(_, p)| p.queue == queue && p.expert.is_some_and(|(u, _)| u == expert))
            .map(|(c, p)| (*c, p.chat))
            .max_by_key(|(_, chat)| *chat)
    }

    fn open_chat_seeker(&self, chat: ChatId) -> Option<String> {
        self.open_chat(chat).map(|o| o.seeker_name)
    }

    /// A message was stored in a queue chat's conversation: participants on plain IM other
    /// than its author get it from the queue's address.
    pub(crate) async fn mirror_to_plain(&self, sender: &User, conversation: ConversationId, body: &str) {
        let Some(p) = self.plain().chats.get(&conversation).cloned() else { return };
        for (user, _) in [p.seeker, p.expert].into_iter().flatten() {
            if user != sender.id {
                let _ = self.queue_says(&p.queue, user, &format!("{}: {body}", sender.display_name)).await;
            }
        }
    }

    /// Lifecycle news for plain-IM participants (the console shows it from queue frames).
    pub(crate) async fn tell_plain(&self, chat: ChatId, conversation: ConversationId, news: PlainNews) {
        let Some(p) = self.plain().chats.get(&conversation).cloned() else { return };
        if p.chat != chat {
            return;
        }
        match news {
            PlainNews::Assigned { expert_name } => {
                if let Some((seeker, _)) = p.seeker {
                    let who = expert_name.unwrap_or_else(|| "An expert".into());
                    let _ = self.queue_says(&p.queue, seeker, &format!("{who} is here to help you.")).await;
                }
            }
            PlainNews::Ended => {
                self.plain().chats.remove(&conversation);
                for (user, _) in [p.seeker, p.expert].into_iter().flatten() {
                    let _ = self.queue_says(&p.queue, user, "The chat has ended. Thank you!").await;
                }
            }
        }
    }

    /// Offers to an expert with no console open arrive as a message from the queue.
    pub(crate) async fn offer_by_im(&self, expert: UserId, chat: ChatId) {
        let Some(open) = self.open_chat(chat) else { return };
        let Some(def) = self.queues.defs().iter().find(|d| d.id == open.record.queue).cloned() else { return };
        let mut text = format!("Chat request from {} ({})", open.seeker_name, def.display_name);
        if !open.record.question.is_empty() {
            text.push_str(&format!(": '{}'", open.record.question));
        }
        text.push('.');
        for (name, value) in &open.record.answers {
            let label = def.form.iter().find(|f| &f.name == name).map_or(name.as_str(), |f| f.label.as_str());
            text.push_str(&format!(" {label}: {value}."));
        }
        text.push_str(" Reply /accept or /decline.");
        let _ = self.queue_says(&def.id, expert, &text).await;
    }

    /// Does a message from `sender` in `conversation` need the queue's attention? (Cheap: no
    /// I/O, asked for every message.)
    pub(crate) fn concerns_queue_im(&self, sender: UserId, conversation: &sb_core::Conversation) -> bool {
        let plain = self.plain();
        match conversation.kind {
            ConversationKind::Direct => {
                !plain.accounts.contains_key(&sender)
                    && conversation.members.iter().any(|m| plain.accounts.contains_key(&m.id))
            }
            ConversationKind::Queue => plain.chats.contains_key(&conversation.id),
            ConversationKind::Group => false,
        }
    }

    /// After a message in a direct conversation or a queue chat: the queue's part in it.
    pub(crate) async fn after_message(&self, sender: &User, conversation: &sb_core::Conversation, body: &str) {
        if self.concerns_alerts(sender.id, conversation) {
            self.alerts_reply(sender, conversation.id, body).await;
            return;
        }
        match conversation.kind {
            ConversationKind::Direct => {
                if self.queue_of_account(sender.id).is_some() {
                    return; // the queue itself speaking
                }
                let queue = conversation.members.iter().find_map(|m| self.queue_of_account(m.id));
                if let Some(queue) = queue {
                    self.queue_im(sender, &queue, conversation.id, body).await;
                }
            }
            ConversationKind::Queue => self.mirror_to_plain(sender, conversation.id, body).await,
            ConversationKind::Group => {}
        }
    }
}

/// What plain-IM participants are told about a chat.
pub(crate) enum PlainNews {
    Assigned { expert_name: Option<String> },
    Ended,
}
