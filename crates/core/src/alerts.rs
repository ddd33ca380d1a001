//! Alerts: messages from other systems (monitoring, mailboxes, scripts) to an audience,
//! delivered over IM, tracked per recipient, optionally acknowledged and escalated.
//!
//! This module holds the rules — what an alert is, who its audience is, when a delivery
//! expires or an alert escalates. The runtime resolves audiences against the directory and
//! presence, stores alerts with one delivery record per recipient, and delivers them as
//! messages from the alerts address through the message pipeline.

use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "normal" => Some(Priority::Normal),
            "high" => Some(Priority::High),
            "urgent" | "critical" => Some(Priority::Urgent),
            _ => None,
        }
    }
}

/// Which of the audience receive it, by presence at sending time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresenceFilter {
    /// Everyone (offline people per the offline policy).
    #[default]
    Any,
    /// Only people signed in now.
    Online,
    /// Only people signed in and `available`.
    Available,
}

impl PresenceFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceFilter::Any => "any",
            PresenceFilter::Online => "online",
            PresenceFilter::Available => "available",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "any" => Some(Self::Any),
            "online" => Some(Self::Online),
            "available" => Some(Self::Available),
            _ => None,
        }
    }
}

/// Who an alert is for, as given (addresses, group slugs, queue ids).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The experts of these queues.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Everyone in the directory.
    #[serde(default)]
    pub everyone: bool,
    /// `any` (default), `online`, `available`.
    #[serde(default)]
    pub presence: Option<String>,
}

impl Audience {
    pub fn is_empty(&self) -> bool {
        !self.everyone && self.users.is_empty() && self.groups.is_empty() && self.queues.is_empty()
    }
    pub fn presence_filter(&self) -> Result<PresenceFilter, String> {
        match self.presence.as_deref() {
            None => Ok(PresenceFilter::Any),
            Some(p) => PresenceFilter::parse(p).ok_or_else(|| "presence is any, online or available".to_string()),
        }
    }
}

impl Escalation {
    pub fn after_ms(&self) -> Millis {
        match (self.after_minutes, self.after_seconds) {
            (_, Some(s)) => Millis::from(s) * 1000,
            (Some(m), None) => Millis::from(m) * 60_000,
            (None, None) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Not acknowledged by everyone within this many minutes (or `after_seconds`)…
    #[serde(default)]
    pub after_minutes: Option<u32>,
    #[serde(default)]
    pub after_seconds: Option<u32>,
    /// …re-send to those who have not acknowledged, or (when given) alert this audience.
    #[serde(default)]
    pub audience: Option<Audience>,
}

/// An alert as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub source: String,
    pub title: String,
    pub body: String,
    pub priority: Priority,
    pub audience: Audience,
    /// How long it may wait for offline recipients (and stays open).
    pub ttl_ms: Millis,
    /// Hold for offline recipients until they sign in within the TTL (`true`), or drop.
    pub hold_offline: bool,
    pub ack_required: bool,
    pub escalation: Option<Escalation>,
    pub dedup_key: Option<String>,
}

pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 16_000;
pub const MAX_TTL_MS: Millis = 7 * 86_400_000;

impl NewAlert {
    pub fn validate(&self) -> Result<(), String> {
        if self.title.trim().is_empty() || self.title.chars().count() > MAX_TITLE {
            return Err(format!("the title has 1 to {MAX_TITLE} characters"));
        }
        if self.body.chars().count() > MAX_BODY {
            return Err(format!("the body has at most {MAX_BODY} characters"));
        }
        if self.audience.is_empty() {
            return Err("the audience is empty: give users, groups, queues or everyone".into());
        }
        self.audience.presence_filter()?;
        if !(1_000..=MAX_TTL_MS).contains(&self.ttl_ms) {
            return Err("the ttl is 1 s to 7 days".into());
        }
        if let Some(e) = &self.escalation {
            if !self.ack_required {
                return Err("escalation needs ack_required".into());
            }
            match (e.after_minutes, e.after_seconds) {
                (Some(m), None) if (1..=24 * 60).contains(&m) => {}
                (None, Some(s)) if (1..=24 * 3600).contains(&s) => {}
                _ => return Err("escalation: give after_minutes (1 to 1440) or after_seconds (1 to 86400)".into()),
            }
            if let Some(a) = &e.audience {
                if a.is_empty() {
                    return Err("the escalation audience is empty".into());
                }
                a.presence_filter()?;
            }
        }
        if self.dedup_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
            return Err("the dedup key has 1 to 200 characters".into());
        }
        Ok(())
    }

    /// The message recipients read (from the alerts address).
    pub fn message(&self, id: i64) -> String {
        let tag = match self.priority {
            Priority::Low => "",
            Priority::Normal => "",
            Priority::High => "[HIGH] ",
            Priority::Urgent => "[URGENT] ",
        };
        let mut m = format!("{tag}{}", self.title.trim());
        if !self.body.trim().is_empty() {
            m.push_str("\n\n");
            m.push_str(self.body.trim());
        }
        if self.ack_required {
            m.push_str(&format!("\n\n(alert {id}: reply \"ack\" to acknowledge)"));
        }
        m
    }
}

/// A recipient's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Read,
    Acknowledged,
    Expired,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Acknowledged => "acknowledged",
            DeliveryState::Expired => "expired",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Read, Self::Acknowledged, Self::Expired, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
    /// Still to be delivered or acknowledged?
    pub fn open(self) -> bool {
        matches!(self, Self::Pending | Self::Delivered | Self::Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> NewAlert {
        NewAlert {
            source: "app:grafana".into(),
            title: "Disk full".into(),
            body: "/var at 99%".into(),
            priority: Priority::Urgent,
            audience: Audience { groups: vec!["ops".into()], ..Default::default() },
            ttl_ms: 3_600_000,
            hold_offline: true,
            ack_required: true,
            escalation: Some(Escalation { after_minutes: Some(5), after_seconds: None, audience: None }),
            dedup_key: Some("disk:/var".into()),
        }
    }

    #[test]
    fn alerts_are_checked() {
        alert().validate().unwrap();
        assert!(NewAlert { title: " ".into(), ..alert() }.validate().is_err());
        assert!(NewAlert { audience: Audience::default(), ..alert() }.validate().unwrap_err().contains("audience"));
        assert!(NewAlert { ack_required: false, ..alert() }.validate().unwrap_err().contains("ack_required"));
        assert!(NewAlert { ttl_ms: 10 * 86_400_000, ..alert() }.validate().is_err());
        let a = Audience { users: vec!["x@y.z".into()], presence: Some("sometimes".into()), ..Default::default() };
        assert!(NewAlert { audience: a, ..alert() }.validate().is_err());
        assert_eq!(alert().message(7), "[URGENT] Disk full\n\n/var at 99%\n\n(alert 7: reply \"ack\" to acknowledge)");
        assert_eq!(Priority::parse("CRITICAL"), Some(Priority::Urgent));
        assert!(DeliveryState::Read.open() && !DeliveryState::Expired.open());
    }
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub alert: NewAlert,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub escalated_at: Option<Millis>,
}

/// One recipient's delivery record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub alert: i64,
    pub user: crate::directory::UserId,
    pub state: DeliveryState,
    /// 0: the first audience; 1: added by escalation.
    pub round: i32,
    pub conversation: Option<i64>,
    pub event: Option<i64>,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
    pub read_at: Option<Millis>,
    pub acked_at: Option<Millis>,
    pub detail: String,
}

/// An alert with its delivery counts, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSummary {
    pub alert: Alert,
    /// (state, count)
    pub counts: Vec<(DeliveryState, u64)>,
}

/// A change to one delivery record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub alert: i64,
    pub user: crate::directory::UserId,
    pub state: DeliveryState,
    pub conversation: Option<i64>,
    pub event: Option<i64>,
    pub detail: String,
}
