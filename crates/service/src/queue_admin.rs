//! Queues as the runtime keeps them: definitions reloaded into the routing engine, saving
//! them, public status and the limits of the public queue APIs.

use crate::{auth, one_line, queue_chats, queues, PublicPresence, Result, Service, ServiceError};
use sb_core::directory::{parse_slug, NewUser};
use sb_core::ratelimit::ClientKey;
use sb_core::{Address, CoreError, Presence, Role, User, UserId};
use std::net::IpAddr;
use std::sync::Arc;

impl Service {
    /// Read queue definitions from the store into the routing engine.
    pub async fn reload_queues(&self) -> Result<()> {
        self.reload_webhooks().await?;
        // Walls too: group memberships may have changed beside the server (admin CLI).
        self.reload_policy().await?;
        self.reload_disclaimers().await?;
        let defs = self.store.queues().await?;
        let known = {
            let plain = self.queues.plain.lock().unwrap_or_else(|e| e.into_inner());
            defs.iter().all(|d| plain.accounts.values().any(|(q, u)| q == &d.id && u.address == d.address))
        };
        if !known {
            self.ensure_queue_accounts(&defs).await?;
        }
        let book = self.presence_book();
        self.queues.install(defs, |u| book.get(u), self.now());
        Ok(())
    }

    pub fn queue_defs(&self) -> Arc<Vec<sb_core::queue::QueueDef>> {
        self.queues.defs()
    }

    /// A queue's public status by id, display name or address; `None` for no such
    /// (or a disabled) queue.
    pub fn queue_status(&self, name: &str) -> Option<queues::QueueStatus> {
        self.queues.status(name, self.now())
    }

    /// Create or replace a queue. Members must be directory users.
    pub async fn save_queue(&self, def: sb_core::queue::QueueDef) -> Result<sb_core::queue::QueueDef> {
        parse_slug(&def.id)?;
        one_line("a queue's display name", &def.display_name)?;
        if def.display_name.trim().is_empty() || def.display_name.chars().count() > 100 {
            return Err(CoreError::Invalid("a queue's display name has 1 to 100 characters".into()).into());
        }
        if def.capacity == 0 || def.capacity > 100 || def.offer_timeout_ms < 1000 {
            return Err(CoreError::Invalid("capacity is 1 to 100 and the offer timeout at least 1 s".into()).into());
        }
        for target in [def.overflow.queue(), def.no_expert.queue()].into_iter().flatten() {
            if target == def.id || !self.queues.defs().iter().any(|d| d.id == target) {
                return Err(CoreError::Invalid(format!("no other queue {target} to roll over to")).into());
            }
        }
        if let Some(h) = &def.hours {
            h.validate().map_err(CoreError::Invalid)?;
            if jiff::tz::TimeZone::get(&h.tz).is_err() {
                return Err(CoreError::Invalid(format!("hours: unknown time zone {:?}", h.tz)).into());
            }
        }
        sb_core::form::validate_fields(&def.form).map_err(CoreError::Invalid)?;
        if def.canned.len() > 100
            || def
                .canned
                .iter()
                .any(|c| c.title.trim().is_empty() || c.title.chars().count() > 100 || c.text.chars().count() > 4000)
        {
            return Err(CoreError::Invalid(
                "at most 100 canned responses, each with a title (1–100 characters) and a text of at most 4000".into(),
            )
            .into());
        }
        if def.wrap_up_tags.len() > 50 || def.wrap_up_tags.iter().any(|t| t.trim().is_empty() || t.chars().count() > 50)
        {
            return Err(CoreError::Invalid("at most 50 wrap-up tags of 1 to 50 characters".into()).into());
        }
        if !(0..=3_600_000).contains(&def.wrap_up_ms) {
            return Err(CoreError::Invalid("the wrap-up time is 0 to 3600 s".into()).into());
        }
        if def.offline_message.chars().count() > 2000 {
            return Err(CoreError::Invalid("the offline message has at most 2000 characters".into()).into());
        }
        if self.store.user_by_address(&def.address).await?.is_some_and(|u| !u.has_role(Role::Queue)) {
            return Err(CoreError::Conflict(format!("{} is a user's address", def.address)).into());
        }
        self.store.save_queue(&def, self.now()).await?;
        self.reload_queues().await?;
        Ok(def)
    }

    /// A website visitor asks a queue for a chat: a guest account and session, bound to
    /// this one chat. Limited per client address.
    pub async fn guest_chat(
        &self,
        queue: &str,
        name: &str,
        email: &str,
        question: &str,
        answers: &[(String, String)],
        ip: IpAddr,
    ) -> Result<(String, User, queue_chats::ChatView)> {
        let name = name.trim();
        one_line("a name", name)?;
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::Invalid("a name has 1 to 100 characters".into()).into());
        }
        if email.chars().count() > 254 {
            return Err(CoreError::Invalid("the email address is too long".into()).into());
        }
        let def = self.answering_queue(queue)?;
        self.check_request(&def, question, answers)?;
        self.queues
            .guest_limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit(&ClientKey::of(ip).to_string(), self.now())
            .map_err(|ms| ServiceError::RateLimited((ms as u64).div_ceil(1000)))?;
        let address = Address::parse(&format!(
            "guest-{}@guest.{}",
            &auth::new_token("")[..12].to_lowercase().replace(['_', '-'], "x"),
            self.settings.domain
        ))?;
        let guest = self
            .store
            .create_user(
                NewUser {
                    address,
                    display_name: name.to_string(),
                    email: email.trim().to_string(),
                    locale: "en".into(),
                    roles: vec![Role::Guest],
                    password_hash: None,
                },
                self.now(),
            )
            .await?;
        let (token, _) = self.issue_session(guest.id).await?;
        match self.request_queue_chat(&guest, &def.id, question, answers).await {
            Ok(view) => Ok((token, guest, view)),
            Err(e) => {
                // The guest exists only for this chat (its token was never handed out).
                let _ = self.store.set_disabled(guest.id, true).await;
                let _ = self.store.delete_sessions_of(guest.id).await;
                Err(e)
            }
        }
    }

    /// Count one public (unauthenticated) request from `ip`.
    /// Presence of these users as anonymous web pages may see it (`None`: unknown, or not
    /// public by the `public_presence` setting). At most 50 per call. A signed-in `viewer`
    /// sees no more than the policy lets them (`Act::Observe`): nobody behind a blocking wall.
    pub async fn public_presence(
        &self,
        viewer: Option<&User>,
        addresses: &[String],
    ) -> Result<Vec<(String, Option<Presence>)>> {
        let policy = self.policy();
        if addresses.len() > 50 {
            return Err(CoreError::Invalid("at most 50 users per request".into()).into());
        }
        let experts: Vec<(Address, UserId)> = match self.settings.public_presence {
            PublicPresence::Experts => self
                .queues
                .defs()
                .iter()
                .filter(|d| d.enabled)
                .flat_map(|d| d.members.iter().map(|m| (m.address.clone(), m.user)))
                .collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(addresses.len());
        for raw in addresses {
            let id = match (self.settings.public_presence, Address::parse(raw)) {
                (_, Err(_)) | (PublicPresence::None, _) => None,
                (PublicPresence::Experts, Ok(a)) => experts.iter().find(|(e, _)| *e == a).map(|(_, u)| *u),
                (PublicPresence::All, Ok(a)) => {
                    self.store.user_by_address(&a).await?.filter(|u| !u.disabled && !u.is_guest()).map(|u| u.id)
                }
            };
            let id = id.filter(|u| viewer.is_none_or(|v| policy.may_see(v.id, *u)));
            out.push((raw.clone(), id.map(|u| self.presence(u))));
        }
        Ok(out)
    }

    pub fn admit_public(&self, ip: IpAddr) -> Result<()> {
        let mut limiter = self.queues.public_limiter.lock().unwrap_or_else(|e| e.into_inner());
        limiter
            .hit(&ClientKey::of(ip).to_string(), self.now())
            .map_err(|ms| ServiceError::RateLimited((ms as u64).div_ceil(1000)))
    }
}
