//! The runtime side of the one policy door (`sb_core::policy`).
//!
//! The service holds the current [`Snapshot`]; every act between people is judged by it
//! through [`Service::judge`] (a refusal is recorded as a violation before the caller hears
//! of it) or, for look-ups and fan-out, [`Service::may_see`] and [`Service::audience`].
//! When walls or group memberships change, [`Service::reload_policy`] builds the next
//! snapshot and re-judges, before it returns, everything already open: offers and waiting
//! chats (the router), group chats (a walled member leaves), and presence views. 1:1 chats
//! need nothing: their next message, typing or read marker is judged by the new snapshot.

use crate::hub::Outbound;
use crate::{Frame, Result, Service};
use sb_core::policy::{Act, Admission, Crossing, Refusal, Snapshot};
use sb_core::walls::{Violation, WallIndex, WallMode};
use sb_core::{Conversation, CoreError, EventKind, Presence, Role, UserId};
use std::collections::BTreeSet;
use std::sync::Arc;

pub use crate::compliance::ViolationView;

/// Whom a signal (typing, a read marker) may reach, as the policy decided. Only
/// `Service::audience` makes one, and the hub sends signals to nothing else
/// (`Hub::send_signal`).
pub(crate) struct SignalAudience(Vec<UserId>);

impl SignalAudience {
    pub(crate) fn users(&self) -> &[UserId] {
        &self.0
    }
}

impl Service {
    /// The policy as of now.
    pub(crate) fn policy(&self) -> Arc<Snapshot> {
        self.compliance.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Judge an act. A refusal is recorded (violation + archive, one transaction) and
    /// reported before the error returns (the one runtime door).
    pub(crate) async fn judge(&self, act: &Act<'_>) -> Result<Admission> {
        match self.policy().admit(act) {
            Ok(admission) => Ok(admission),
            Err(refusal) => {
                self.refused(&refusal).await;
                Err(CoreError::Blocked(refusal.notice).into())
            }
        }
    }

    /// Judge an act whose carrying out comes later, under its own admission (a transfer:
    /// the next expert joins when they accept). Refusals are recorded as by `judge`.
    pub(crate) async fn check(&self, act: &Act<'_>) -> Result<()> {
        self.judge(act).await.map(|_admitted_later| ())
    }

    /// Record a refused act's crossing and tell compliance officers.
    pub(crate) async fn refused(&self, refusal: &Refusal) {
        let (mut v, archived) = refusal.crossing.record(self.now());
        match self.store.record_violation(&v, &archived).await {
            Ok(id) => v.id = id,
            Err(e) => tracing::error!(error = %e, "cannot record a wall violation"),
        }
        self.report_violation(v, &refusal.crossing).await;
    }

    /// Tell compliance officers (and the log) of a stored violation.
    pub(crate) async fn report_violation(&self, violation: Violation, c: &Crossing) {
        tracing::warn!(wall = c.wall, actor = %c.actor_address, other = %c.other_address, action = %violation.action, what = c.what, "ethical wall");
        let view = ViolationView {
            violation,
            wall_name: c.wall_name.clone(),
            actor: c.actor_address.clone(),
            other: c.other_address.clone(),
        };
        let officers: Vec<UserId> = self
            .store
            .users("", 100_000)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.has_role(Role::ComplianceOfficer) && !u.disabled)
            .map(|u| u.id)
            .collect();
        self.chat.hub.send_to_users(officers, &Outbound::new(Frame::Violation(view)), None);
    }

    /// Whom `actor`'s typing or read marker in `conversation` may reach: the other members
    /// the policy lets see it (`Act::Signal`), and the actor's own sessions when `echo`.
    pub(crate) fn audience(&self, actor: UserId, conversation: &Conversation, echo: bool) -> SignalAudience {
        let policy = self.policy();
        let others = conversation
            .members
            .iter()
            .map(|m| m.id)
            .filter(|u| *u != actor && policy.allows(&Act::Signal { actor, to: *u }));
        SignalAudience(echo.then_some(actor).into_iter().chain(others).collect())
    }

    /// May `viewer` see `other` in the directory and presence?
    pub fn may_see(&self, viewer: UserId, other: UserId) -> bool {
        self.policy().may_see(viewer, other)
    }

    /// Rebuild the policy from the store (walls, memberships); when it changed, swap it in
    /// and re-judge what is open. Returns when both are done, so an administrator's change
    /// applies before the command that made it returns.
    pub async fn reload_policy(&self) -> Result<()> {
        let _one_at_a_time = self.compliance.reload.lock().await;
        let walls = self.store.walls().await?;
        let memberships = self.store.group_memberships().await?;
        let fingerprint = {
            let enabled: Vec<_> = walls.iter().filter(|w| w.enabled).collect();
            let walled: BTreeSet<i64> = enabled.iter().flat_map(|w| [w.group_a.0, w.group_b.0]).collect();
            let mut f: Vec<String> = enabled
                .iter()
                .map(|w| format!("w{}:{}:{}:{}:{}", w.id, w.group_a.0, w.group_b.0, w.mode.as_str(), w.name))
                .collect();
            f.extend(
                memberships.iter().filter(|(g, _)| walled.contains(&g.0)).map(|(g, u)| format!("m{}:{}", g.0, u.0)),
            );
            f.sort();
            f.join(",")
        };
        {
            let mut last = self.compliance.fingerprint.lock().unwrap_or_else(|e| e.into_inner());
            if *last == fingerprint {
                return Ok(());
            }
            *last = fingerprint;
        }
        let walled_users: Vec<UserId> =
            memberships.iter().map(|(_, u)| *u).collect::<BTreeSet<_>>().into_iter().collect();
        let people = self
            .store
            .users_by_ids(&walled_users)
            .await?
            .into_iter()
            .map(|u| (u.id, u.display_name, u.address.to_string()));
        let version = self.policy().version() + 1;
        let next = Arc::new(Snapshot::new(WallIndex::new(walls, memberships, people), version));
        let before =
            std::mem::replace(&mut *self.compliance.policy.write().unwrap_or_else(|e| e.into_inner()), next.clone());
        tracing::info!(version, "policy changed; re-judging what is open");
        let rejudged = self.rejudge(&before, &next).await;
        if rejudged.is_err() {
            // Not all of it was re-judged (storage failed): the next reload does it again.
            self.compliance.fingerprint.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        rejudged
    }

    /// Apply a new policy to what is already open.
    async fn rejudge(&self, before: &Snapshot, after: &Arc<Snapshot>) -> Result<()> {
        // Offers and waiting chats: withdrawn from walled experts, offered under the new policy.
        let now = self.now();
        let events = self.route(|r| r.set_policy(after.clone(), now));
        self.apply_queue_events(events).await;
        // Presence views: who may now (not) see whom.
        let online: Vec<UserId> = self.presence_book().online().map(|(u, _)| u).collect();
        for (a, b) in after.changed_pairs(before, &online) {
            let visible = after.may_see(a, b);
            for (watcher, subject) in [(a, b), (b, a)] {
                let Some(address) = self.chat.hub.address_of(subject) else { continue };
                let presence = if visible { self.presence(subject) } else { Presence::offline() };
                let frame = Outbound::new(Frame::Presence { address, presence });
                self.chat.hub.send_to_presence_watchers(&frame, |w| w == watcher);
            }
        }
        // Group chats: nobody keeps talking across a blocking wall.
        self.recheck_conversations(after).await
    }

    /// A walled member leaves each group chat (the one who joined last), so nobody keeps
    /// talking across a blocking wall. Walled 1:1 chats stay as they are and become
    /// read-only (the policy refuses every new message, typing and read marker in them).
    async fn recheck_conversations(&self, policy: &Snapshot) -> Result<()> {
        if policy.is_open() {
            return Ok(());
        }
        for c in self.store.group_conversations().await? {
            let mut members: Vec<UserId> = c.members.iter().map(|m| m.id).collect(); // in joining order
            let mut removed = Vec::new();
            loop {
                let walled = members.iter().enumerate().rev().find_map(|(i, m)| {
                    let refusal = members[..i].iter().find_map(|o| {
                        policy
                            .admit(&Act::Observe { viewer: *m, subject: *o })
                            .err()
                            .filter(|r| r.crossing.mode == WallMode::Block)
                    })?;
                    Some((i, refusal.crossing.wall))
                });
                let Some((i, wall)) = walled else { break };
                removed.push((members.remove(i), wall));
            }
            for (user, wall) in removed {
                let Some(u) = self.store.user(user).await? else { continue };
                let mut left = self.new_event(c.id, EventKind::Left, Some(&u), String::new(), None);
                left.note = Some(serde_json::json!({"reason": "ethical wall", "wall": wall}).to_string());
                self.append(policy.record_only(), vec![left], None).await?;
                tracing::info!(conversation = c.id.0, user = %u.address, wall, "walled member removed from a group chat");
                if let Ok(conv) = self.conversation(c.id).await {
                    let frame = Outbound::new(Frame::Conversation(conv.as_ref().clone()));
                    self.chat.hub.send_to_users(conv.members.iter().map(|m| m.id).chain([user]), &frame, None);
                }
            }
        }
        Ok(())
    }
}
