//! Alerts at run time: audiences resolved against the directory and presence, durable
//! delivery records, delivery as messages from the alerts address through the message
//! pipeline (so alerts are archived and policy-checked like any chat), held alerts at
//! sign-in, acknowledgement (button or a reply "ack" from any client), expiry and
//! escalation.
//!
//! The dispatch queue is the store: an alert and a pending delivery per recipient are
//! written before anything is sent. Each delivery's message carries a client id unique to
//! (alert, recipient, round), so re-sending after a restart finds the stored message
//! instead of sending it twice.

use crate::hub::Outbound;
use crate::{Frame, Result, Service, ServiceError};
use sb_core::alerts::{Alert, Audience, Delivery, DeliveryState, DeliveryUpdate, MailIntake, NewAlert, PresenceFilter};
use sb_core::pipeline::{Door, Refused, Submission};
use sb_core::{Address, ConversationId, ConversationKind, CoreError, EventKind, PresenceState, Role, User, UserId};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// An alert as its recipients' clients show it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub priority: &'static str,
    pub ack_required: bool,
    pub created_at: sb_core::Millis,
    pub conversation: i64,
    /// 0: first delivery; 1: a reminder (escalation).
    pub round: i32,
}

/// A mailbox listener's state, for the admin page and `GET /api/v1/alerts/mailboxes`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MailboxStatus {
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// `connecting`, `idle` (IMAP IDLE: mail is taken as it arrives), `polling`, `error`
    /// (retrying after `last_error`), `stopped`.
    pub state: String,
    /// When the mailbox was last searched (or a POP3 poll finished).
    pub last_check: Option<sb_core::Millis>,
    pub last_error: String,
    /// Mails taken since the server started, by outcome.
    pub alerts: u64,
    pub refused: u64,
    pub duplicates: u64,
    /// Connections opened since the server started (POP3: one per poll). One that climbs
    /// fast for IMAP means the server keeps dropping the listener.
    pub connects: u64,
}

/// How long what became of each mail is kept (`mail_intake`).
pub const MAIL_INTAKE_DAYS: i64 = 30;

/// The result of sending.
#[derive(Debug, Clone)]
pub struct Sent {
    pub alert: Alert,
    pub recipients: usize,
    /// An open alert with the same deduplication key was found; nothing new was sent.
    pub duplicate: bool,
}

/// The alerts component's own state.
pub(crate) struct AlertDesk {
    /// The alerts sender, once known.
    pub(crate) sender: Mutex<Option<User>>,
    /// Each configured mailbox listener's state, as it reports it.
    pub(crate) mailboxes: Mutex<std::collections::BTreeMap<String, MailboxStatus>>,
    /// Each recipient's conversation with the alerts sender.
    pub(crate) conversations: Mutex<std::collections::HashMap<UserId, ConversationId>>,
    /// Alerts per source per minute.
    pub(crate) limiter: Mutex<sb_core::ratelimit::SlidingWindow>,
}

impl AlertDesk {
    pub(crate) fn new(alerts_per_minute: usize) -> Self {
        Self {
            sender: Mutex::default(),
            mailboxes: Mutex::default(),
            conversations: Mutex::default(),
            limiter: Mutex::new(sb_core::ratelimit::SlidingWindow::new(alerts_per_minute, 60_000)),
        }
    }
}

impl Service {
    /// The alerts sender (`alerts@<domain>`), made on first use.
    pub(crate) async fn alerts_account(&self) -> Result<User> {
        if let Some(u) = self.alerts.sender.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(u);
        }
        let address = Address::parse(&format!("alerts@{}", self.settings.domain))?;
        let user = match self.store.user_by_address(&address).await? {
            Some(u) => u,
            None => {
                let new = sb_core::directory::NewUser {
                    address: address.clone(),
                    display_name: "Alerts".into(),
                    email: String::new(),
                    locale: "en".into(),
                    roles: vec![Role::Service],
                    password_hash: None,
                };
                match self.store.create_user(new, self.now()).await {
                    Ok(u) => u,
                    Err(_) => {
                        self.store.user_by_address(&address).await?.ok_or(CoreError::NotFound("alerts account"))?
                    }
                }
            }
        };
        *self.alerts.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(user.clone());
        Ok(user)
    }

    fn alerts_account_id(&self) -> Option<UserId> {
        self.alerts.sender.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|u| u.id)
    }

    /// Who an audience is now: directory users (not disabled, not guests), by presence.
    pub(crate) async fn resolve_audience(&self, a: &Audience) -> Result<Vec<User>> {
        let filter = a.presence_filter().map_err(CoreError::Invalid)?;
        let mut ids: BTreeSet<UserId> = BTreeSet::new();
        let mut users: Vec<User> = Vec::new();
        let mut add = |u: User, ids: &mut BTreeSet<UserId>| {
            if !u.disabled
                && !u.is_guest()
                && !u.has_role(Role::Queue)
                && !u.has_role(Role::Service)
                && ids.insert(u.id)
            {
                users.push(u);
            }
        };
        if a.everyone {
            for u in self.store.users("", 1_000_000).await? {
                add(u, &mut ids);
            }
        }
        // One query per few hundred people, not one per person: an audience can be
        // thousands of addresses.
        let mut addresses = Vec::with_capacity(a.users.len());
        for raw in &a.users {
            addresses.push(Address::parse(raw).map_err(|_| CoreError::Invalid(format!("no such user: {raw}")))?);
        }
        let lookup = std::time::Instant::now();
        let found = self.store.users_by_addresses(&addresses).await?;
        tracing::debug!(
            people = addresses.len(),
            lookup_ms = lookup.elapsed().as_millis() as u64,
            "audience looked up"
        );
        if found.len() < addresses.len() {
            let known: BTreeSet<&str> = found.iter().map(|u| u.address.as_str()).collect();
            if let Some(missing) = addresses.iter().find(|a| !known.contains(a.as_str())) {
                return Err(CoreError::Invalid(format!("no such user: {missing}")).into());
            }
        }
        let by_address: std::collections::HashMap<String, User> =
            found.into_iter().map(|u| (u.address.as_str().to_string(), u)).collect();
        for a in &addresses {
            if let Some(u) = by_address.get(a.as_str()) {
                add(u.clone(), &mut ids);
            }
        }
        let mut member_ids: Vec<UserId> = Vec::new();
        if !a.groups.is_empty() {
            let memberships = self.store.group_memberships().await?;
            for slug in &a.groups {
                let g = self
                    .store
                    .group(&slug.to_lowercase())
                    .await?
                    .ok_or_else(|| CoreError::Invalid(format!("no such group: {slug}")))?;
                member_ids.extend(memberships.iter().filter(|(gid, _)| *gid == g.id).map(|(_, u)| *u));
            }
        }
        for q in &a.queues {
            let def = self.queues.find(q).ok_or_else(|| CoreError::Invalid(format!("no such queue: {q}")))?;
            member_ids.extend(def.members.iter().map(|m| m.user));
        }
        member_ids.retain(|u| !ids.contains(u));
        member_ids.sort_unstable();
        member_ids.dedup();
        let mut members = self.store.users_by_ids(&member_ids).await?;
        members.sort_by_key(|u| u.id);
        for u in members {
            add(u, &mut ids);
        }
        Ok(users
            .into_iter()
            .filter(|u| {
                let p = self.presence(u.id);
                match filter {
                    PresenceFilter::Any => true,
                    PresenceFilter::Online => p.state != PresenceState::Offline,
                    PresenceFilter::Available => p.state == PresenceState::Available && !p.idle,
                }
            })
            .collect())
    }

    /// Send an alert: stored with a delivery per recipient, then delivered to everyone
    /// online; held (or dropped) for the others.
    pub async fn send_alert(&self, a: NewAlert) -> Result<Sent> {
        self.send_alert_with(a, None).await
    }

    /// A mail from a configured mailbox, turned into an alert by the mailbox listener (or
    /// refused there: `alert` is `Err(reason)`). Idempotent per (mailbox, mail key): a mail
    /// taken before gets its earlier outcome back, so the listener can remove or flag it
    /// again without a second alert. Errors (storage down, rate limited) mean "not taken:
    /// leave the mail where it is and try again later".
    ///
    /// Returns the outcome and whether it is new (`false`: taken before).
    pub async fn take_mail(
        &self,
        intake: MailIntake,
        alert: std::result::Result<NewAlert, String>,
    ) -> Result<(MailIntake, bool)> {
        if let Some(before) = self.store.mail_intake(&intake.mailbox, &intake.key).await? {
            return Ok((before, false));
        }
        let refuse = |detail: String| MailIntake { outcome: "refused".into(), detail, alert: None, ..intake.clone() };
        let outcome = match alert {
            Err(reason) => refuse(reason),
            Ok(a) => match self.send_alert_with(a, Some(&intake)).await {
                Ok(sent) if sent.duplicate => MailIntake {
                    outcome: "duplicate".into(),
                    alert: Some(sent.alert.id),
                    detail: "an open alert has the same deduplication key".into(),
                    ..intake.clone()
                },
                // Stored with the alert, in its transaction.
                Ok(sent) => {
                    return Ok((MailIntake { outcome: "alert".into(), alert: Some(sent.alert.id), ..intake }, true))
                }
                // Refused before anything was stored (after storing, sending does not fail).
                Err(ServiceError::Core(CoreError::Invalid(reason))) => refuse(reason),
                Err(e) => return Err(e),
            },
        };
        if outcome.outcome == "refused" {
            self.metrics.mail_refused.inc();
            tracing::warn!(
                mailbox = %outcome.mailbox, sender = %outcome.sender, subject = %outcome.subject,
                mail = %outcome.key, reason = %outcome.detail, "mail refused"
            );
        }
        self.store.record_mail_intake(&outcome).await?;
        Ok((outcome, true))
    }

    /// What became of a mail taken before, if it was. The listener asks before it expunges
    /// a mail it finds flagged `\Deleted`: only its own are removed.
    pub async fn mail_intake(&self, mailbox: &str, key: &str) -> Result<Option<MailIntake>> {
        Ok(self.store.mail_intake(mailbox, key).await?)
    }

    /// A mailbox listener reports its state.
    pub fn update_mailbox(&self, name: &str, f: impl FnOnce(&mut MailboxStatus)) {
        let mut all = self.alerts.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        let status =
            all.entry(name.to_string()).or_insert_with(|| MailboxStatus { name: name.into(), ..Default::default() });
        f(status);
    }

    pub fn mailboxes(&self) -> Vec<MailboxStatus> {
        self.alerts.mailboxes.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Forget what became of mails taken more than `MAIL_INTAKE_DAYS` ago (hourly). A mail
    /// is needed in the record only until it is deleted or flagged on its server — seconds,
    /// or the next connection after a crash.
    pub async fn prune_mail_intake(&self) -> Result<u64> {
        let before = self.now() - MAIL_INTAKE_DAYS * 86_400_000;
        Ok(self.store.prune_mail_intake(before).await?)
    }

    /// What became of recent mails, newest first.
    pub async fn mail_intakes(&self, mailbox: Option<&str>, limit: i64) -> Result<Vec<MailIntake>> {
        Ok(self.store.mail_intakes(mailbox, limit.clamp(1, 1000)).await?)
    }

    async fn send_alert_with(&self, mut a: NewAlert, mail: Option<&MailIntake>) -> Result<Sent> {
        a.validate().map_err(CoreError::Invalid)?;
        let now = self.now();
        self.alerts
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit(&a.source, now)
            .map_err(|ms| ServiceError::RateLimited((ms as u64).div_ceil(1000)))?;
        if let Some(key) = &a.dedup_key {
            if let Some(id) = self.store.open_alert_by_key(&a.source, key, now).await? {
                let (alert, deliveries) = self.store.alert(id).await?.ok_or(CoreError::NotFound("alert"))?;
                return Ok(Sent { alert, recipients: deliveries.len(), duplicate: true });
            }
        }
        a.title = a.title.trim().to_string();
        let started = std::time::Instant::now();
        let recipients = self.resolve_audience(&a.audience).await?;
        let resolved_ms = started.elapsed().as_millis() as u64;
        if recipients.is_empty() {
            return Err(CoreError::Invalid("nobody in the audience (as filtered by presence)".into()).into());
        }
        let ids: Vec<UserId> = recipients.iter().map(|u| u.id).collect();
        let alert = match mail {
            Some(intake) => self.store.create_mail_alert(&a, &ids, intake, now).await?,
            None => self.store.create_alert(&a, &ids, now).await?,
        };
        self.metrics.alerts_sent.inc();
        let stored_ms = started.elapsed().as_millis() as u64;
        // Stored is accepted: a failure while delivering must not tell the caller to send it
        // again (a second alert). Those not reached stay pending and get it at sign-in.
        if let Err(e) = self.deliver_alert(&alert, &ids, 0).await {
            tracing::error!(alert = alert.id, error = %e, "alert stored, but delivering it failed");
        }
        tracing::debug!(
            alert = alert.id,
            recipients = ids.len(),
            resolved_ms,
            stored_ms,
            delivered_ms = started.elapsed().as_millis() as u64,
            "alert sent"
        );
        Ok(Sent { alert, recipients: ids.len(), duplicate: false })
    }

    /// Deliver an alert (round 0) or a reminder (round 1) to those of `users` who are
    /// online; offline ones stay pending (held) or fail (drop).
    pub(crate) async fn deliver_alert(&self, alert: &Alert, users: &[UserId], round: i32) -> Result<()> {
        let account = self.alerts_account().await?;
        let (online, offline): (Vec<UserId>, Vec<UserId>) =
            users.iter().partition(|u| self.chat.hub.address_of(**u).is_some());
        if !alert.alert.hold_offline && round == 0 && !offline.is_empty() {
            let failed: Vec<DeliveryUpdate> = offline
                .iter()
                .map(|u| DeliveryUpdate {
                    alert: alert.id,
                    user: *u,
                    state: DeliveryState::Failed,
                    conversation: None,
                    event: None,
                    detail: "recipient offline (offline policy: drop)".into(),
                })
                .collect();
            self.store.set_deliveries(&failed, self.now()).await?;
        }
        let mut records = Vec::with_capacity(online.len());
        for chunk in online.chunks(2000) {
            self.deliver_chunk(&account, alert, chunk, round, &mut records).await?;
        }
        // Written once everyone online has it: delivery records are bookkeeping, kept off
        // the path to the last recipient. A crash before this leaves them pending; the
        // re-send at the next sign-in finds the stored messages (by client id) and records
        // them then.
        let delivered = records.iter().filter(|u| u.state == DeliveryState::Delivered).count();
        if !records.is_empty() {
            self.store.set_deliveries(&records, self.now()).await?;
        }
        self.metrics.alert_deliveries.add(delivered as u64);
        Ok(())
    }

    async fn deliver_chunk(
        &self,
        account: &User,
        alert: &Alert,
        users: &[UserId],
        round: i32,
        records: &mut Vec<DeliveryUpdate>,
    ) -> Result<()> {
        let mut events = Vec::with_capacity(users.len() * 2);
        let mut targets: Vec<(UserId, ConversationId)> = Vec::with_capacity(users.len());
        let body = if round == 0 {
            alert.alert.message(alert.id)
        } else {
            format!("[REMINDER] {}", alert.alert.message(alert.id))
        };
        let started = std::time::Instant::now();
        let conversations = self.alerts_conversations(account, users).await?;
        let conversations_ms = started.elapsed().as_millis() as u64;
        let policy = self.policy();
        let mut admission = policy.record_only();
        for (u, c, created) in conversations {
            // The same pipeline and policy as every message: a block is recorded as a
            // violation, a monitoring wall's flag is stored with the alert's message.
            let judged = self
                .chat
                .pipeline
                .admit(&policy, &Submission { door: Door::Alert, sender: account, conversation: &c, body: &body });
            if let Err(e) = judged {
                if let Refused::Policy(r) = &e {
                    self.refused(r).await;
                }
                let e = sb_core::CoreError::from(e);
                records.push(DeliveryUpdate {
                    alert: alert.id,
                    user: u,
                    state: DeliveryState::Failed,
                    conversation: Some(c.id.0),
                    event: None,
                    detail: e.to_string(),
                });
                continue;
            }
            if let Ok(a) = judged {
                admission = admission.and(a);
            }
            if created {
                events.push(self.new_event(c.id, EventKind::Created, Some(account), String::new(), None));
            }
            let mut e = self.new_event(
                c.id,
                EventKind::Message,
                Some(account),
                body.clone(),
                Some(format!("alert-{}-{}-{round}", alert.id, u.0)),
            );
            e.note =
                Some(json!({"alert": alert.id, "priority": alert.alert.priority.as_str(), "round": round}).to_string());
            events.push(e);
            targets.push((u, c.id));
        }
        if events.is_empty() {
            return Ok(());
        }
        let admitted_ms = started.elapsed().as_millis() as u64;
        let stored = self.append(admission, events, None).await?;
        let appended_ms = started.elapsed().as_millis() as u64;
        let message_of: std::collections::HashMap<ConversationId, i64> =
            stored.iter().filter(|e| e.kind == EventKind::Message).map(|e| (e.conversation, e.id.0)).collect();
        self.metrics.messages_through(Door::Alert, message_of.len() as u64);
        for (u, conversation) in targets {
            let Some(event) = message_of.get(&conversation) else { continue };
            let view = AlertView {
                id: alert.id,
                title: alert.alert.title.clone(),
                body: alert.alert.body.clone(),
                priority: alert.alert.priority.as_str(),
                ack_required: alert.alert.ack_required,
                created_at: alert.created_at,
                conversation: conversation.0,
                round,
            };
            self.chat.hub.send_to_users([u], &Outbound::new(Frame::Alert(view)), None);
            if round == 0 {
                records.push(DeliveryUpdate {
                    alert: alert.id,
                    user: u,
                    state: DeliveryState::Delivered,
                    conversation: Some(conversation.0),
                    event: Some(*event),
                    detail: String::new(),
                });
            }
        }
        tracing::debug!(
            alert = alert.id,
            people = users.len(),
            conversations_ms,
            admitted_ms,
            appended_ms,
            sent_ms = started.elapsed().as_millis() as u64,
            "alert chunk delivered"
        );
        Ok(())
    }

    /// The direct conversation between the alerts sender and each of `users` (made on
    /// first use, a few hundred per transaction), with `true` for those made now.
    async fn alerts_conversations(
        &self,
        account: &User,
        users: &[UserId],
    ) -> Result<Vec<(UserId, std::sync::Arc<sb_core::Conversation>, bool)>> {
        let mut out = Vec::with_capacity(users.len());
        let mut missing = Vec::new();
        for u in users {
            let known = self.alerts.conversations.lock().unwrap_or_else(|e| e.into_inner()).get(u).copied();
            match known {
                Some(c) => out.push((*u, self.conversation(c).await?, false)),
                None => missing.push(*u),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let epoch = self.chat.cache.epoch();
        for (c, created) in self.store.direct_conversations(account.id, &missing, self.now()).await? {
            let Some(u) = c.members.iter().map(|m| m.id).find(|id| *id != account.id) else { continue };
            let c = self.chat.cache.put(c, epoch);
            if created {
                self.chat.hub.send_to_users([u], &Outbound::new(Frame::Conversation(c.as_ref().clone())), None);
            }
            self.alerts.conversations.lock().unwrap_or_else(|e| e.into_inner()).insert(u, c.id);
            out.push((u, c, created));
        }
        Ok(out)
    }

    /// A user signed in: their held alerts now.
    pub async fn deliver_held_alerts(&self, user: UserId) {
        let pending = match self.store.pending_deliveries(Some(user), self.now(), 500).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read held alerts");
                return;
            }
        };
        for d in pending {
            if let Ok(Some((alert, _))) = self.store.alert(d.alert).await {
                if let Err(e) = self.deliver_alert(&alert, &[user], 0).await {
                    tracing::error!(error = %e, alert = alert.id, "cannot deliver a held alert");
                }
            }
        }
    }

    /// A recipient acknowledges (the newest open one when `id` is None).
    pub async fn ack_alert(&self, user: &User, id: Option<i64>) -> Result<i64> {
        let id = match id {
            Some(i) => i,
            None => {
                self.store.latest_unacked_alert(user.id).await?.ok_or(CoreError::NotFound("alert to acknowledge"))?
            }
        };
        let (_, deliveries) = self.store.alert(id).await?.ok_or(CoreError::NotFound("alert"))?;
        let mine = deliveries.iter().find(|d| d.user == user.id).ok_or(CoreError::NotFound("alert"))?;
        match mine.state {
            DeliveryState::Acknowledged => return Ok(id),
            DeliveryState::Expired | DeliveryState::Failed => {
                return Err(CoreError::Conflict(format!("the alert is {}", mine.state.as_str())).into())
            }
            _ => {}
        }
        let update = DeliveryUpdate {
            alert: id,
            user: user.id,
            state: DeliveryState::Acknowledged,
            conversation: None,
            event: None,
            detail: String::new(),
        };
        self.store.set_deliveries(&[update], self.now()).await?;
        self.chat.hub.send_to_users([user.id], &Outbound::new(Frame::AlertAcked { id }), None);
        Ok(id)
    }

    /// Replies in a conversation with the alerts sender: "ack" (or "ack <id>") acknowledges.
    pub(crate) async fn alerts_reply(&self, sender: &User, conversation: ConversationId, body: &str) {
        let text = body.trim().to_ascii_lowercase();
        let id = match text.strip_prefix("ack") {
            Some(rest) if rest.trim().is_empty() => None,
            Some(rest) => match rest.trim().trim_start_matches('#').parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => return,
            },
            None => return,
        };
        let reply = match self.ack_alert(sender, id).await {
            Ok(i) => format!("Alert {i} acknowledged. Thank you."),
            Err(e) => format!("Sorry: {e}"),
        };
        if let Ok(account) = self.alerts_account().await {
            let _ = self.send_message(&account, None, Door::Alert, conversation, &reply, None).await;
        }
    }

    /// Does a message concern the alerts sender (a reply to it)?
    pub(crate) fn concerns_alerts(&self, sender: UserId, conversation: &sb_core::Conversation) -> bool {
        conversation.kind == ConversationKind::Direct
            && self.alerts_account_id().is_some_and(|a| a != sender && conversation.members.iter().any(|m| m.id == a))
    }

    /// The alerts conversation was read up to an event: deliveries there are read.
    pub(crate) async fn alerts_read(&self, user: &User, conversation: &sb_core::Conversation, up_to: sb_core::EventId) {
        if self.alerts_account_id().is_some_and(|a| conversation.members.iter().any(|m| m.id == a)) {
            if let Err(e) = self.store.alerts_read(user.id, conversation.id.0, up_to.0, self.now()).await {
                tracing::warn!(error = %e, "cannot mark alerts read");
            }
        }
    }

    /// Time passes: held deliveries expire, unacknowledged alerts escalate.
    pub async fn alerts_tick(&self) -> Result<()> {
        let now = self.now();
        self.store.expire_alerts(now).await?;
        for alert in self.store.escalations_due(now).await? {
            if !self.store.mark_escalated(alert.id, now).await? {
                continue;
            }
            let Some(esc) = alert.alert.escalation.clone() else { continue };
            match esc.audience {
                Some(audience) => {
                    let more: Vec<UserId> = self.resolve_audience(&audience).await?.into_iter().map(|u| u.id).collect();
                    self.store.add_alert_deliveries(alert.id, &more, 1, now).await?;
                    let fresh: Vec<UserId> = self
                        .store
                        .alert(alert.id)
                        .await?
                        .map(|(_, ds)| {
                            ds.into_iter()
                                .filter(|d| d.round == 1 && d.state == DeliveryState::Pending)
                                .map(|d| d.user)
                                .collect()
                        })
                        .unwrap_or_default();
                    self.deliver_alert(&alert, &fresh, 0).await?;
                    tracing::info!(alert = alert.id, recipients = fresh.len(), "alert escalated to a second audience");
                }
                None => {
                    let open: Vec<UserId> = self
                        .store
                        .alert(alert.id)
                        .await?
                        .map(|(_, ds)| {
                            ds.into_iter()
                                .filter(|d| matches!(d.state, DeliveryState::Delivered | DeliveryState::Read))
                                .map(|d| d.user)
                                .collect()
                        })
                        .unwrap_or_default();
                    self.deliver_alert(&alert, &open, 1).await?;
                    tracing::info!(alert = alert.id, recipients = open.len(), "alert re-sent (not acknowledged)");
                }
            }
        }
        Ok(())
    }

    pub async fn alert_with_deliveries(&self, id: i64) -> Result<(Alert, Vec<(Delivery, String)>)> {
        let (alert, deliveries) = self.store.alert(id).await?.ok_or(CoreError::NotFound("alert"))?;
        let mut out = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let who = self.chat.hub.address_of(d.user).map(|a| a.to_string());
            let who = match who {
                Some(w) => w,
                None => self.store.user(d.user).await?.map(|u| u.address.to_string()).unwrap_or_default(),
            };
            out.push((d, who));
        }
        Ok((alert, out))
    }

    pub async fn alerts_list(
        &self,
        source: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<sb_core::alerts::AlertSummary>> {
        Ok(self.store.alerts(source, before, limit.clamp(1, 200)).await?)
    }
}
