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

/// What became of one mail taken from a mailbox. Kept so that a mail seen again — after a
/// restart, or a connection dropped before the mail was removed or flagged — is not turned
/// into a second alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIntake {
    /// The configured mailbox's name.
    pub mailbox: String,
    /// The mail's identity: `id:<sender> <Message-ID>`, or `sha256:<hash of the mail>`
    /// when it has no Message-ID.
    pub key: String,
    pub sender: String,
    pub subject: String,
    /// `alert` (it became `alert`), `duplicate` (an open alert with its deduplication key
    /// existed: `alert`), or `refused` (why: `detail`).
    pub outcome: String,
    pub alert: Option<i64>,
    pub detail: String,
    pub at: Millis,
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

// ---------------------------------------------------------------- Prometheus Alertmanager

/// Alertmanager's webhook payload, version 4 (fields Switchboard reads; others ignored).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmPayload {
    pub version: String,
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<AmAlert>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub status: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// Where Alertmanager's alerts go: the first route whose labels all match (an empty `match`
/// matches everything). Labels `switchboard_users`, `switchboard_groups`,
/// `switchboard_queues` (comma-separated) add to the audience of any alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AmRoute {
    /// label → exact value.
    #[serde(default, rename = "match")]
    pub matchers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub everyone: bool,
    /// Default: from the `severity` label (critical → urgent, warning → high, info → low).
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub ack_required: bool,
    #[serde(default)]
    pub ttl_s: Option<i64>,
}

fn split_list(s: Option<&String>) -> Vec<String> {
    s.map(|v| v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

impl AmPayload {
    /// The alert this notification becomes. Firing groups dedupe on the group and the
    /// outages firing in it (Alertmanager repeats itself every `repeat_interval`); a resolved
    /// notification is a follow-up, once per outage (see `dedup_key`).
    pub fn to_alert(&self, routes: &[AmRoute], source: &str) -> Result<NewAlert, String> {
        if self.version != "4" {
            return Err(format!("Alertmanager webhook version {:?} is not supported (4 is)", self.version));
        }
        if self.alerts.is_empty() {
            return Err("the notification has no alerts".into());
        }
        let labels = &self.common_labels;
        let route = routes
            .iter()
            .find(|r| r.matchers.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .cloned()
            .unwrap_or_default();
        let mut audience = Audience {
            users: route.users.clone(),
            groups: route.groups.clone(),
            queues: route.queues.clone(),
            everyone: route.everyone,
            presence: None,
        };
        audience.users.extend(split_list(labels.get("switchboard_users")));
        audience.groups.extend(split_list(labels.get("switchboard_groups")));
        audience.queues.extend(split_list(labels.get("switchboard_queues")));
        if audience.is_empty() {
            return Err("no Alertmanager route matches these labels and they name no audience".into());
        }
        let resolved = self.status == "resolved";
        let priority = match (resolved, route.priority.as_deref(), labels.get("severity").map(String::as_str)) {
            (true, _, _) => Priority::Normal,
            (false, Some(p), _) => {
                Priority::parse(p).ok_or_else(|| format!("route priority {p:?} is not a priority"))?
            }
            (false, None, Some("critical" | "page" | "urgent")) => Priority::Urgent,
            (false, None, Some("warning" | "high")) => Priority::High,
            (false, None, Some("info" | "low")) => Priority::Low,
            _ => Priority::Normal,
        };
        let name =
            self.group_labels.get("alertname").or(labels.get("alertname")).cloned().unwrap_or_else(|| "alert".into());
        let firing = self.alerts.iter().filter(|a| a.status == "firing").count();
        let summary = self.common_annotations.get("summary").cloned();
        let title = match (resolved, &summary) {
            (true, Some(s)) => format!("RESOLVED: {name}: {s}"),
            (true, None) => format!("RESOLVED: {name}"),
            (false, Some(s)) => format!("FIRING ({firing}): {name}: {s}"),
            (false, None) => format!("FIRING ({firing}): {name}"),
        };
        let mut body = String::new();
        for a in &self.alerts {
            let what = a.annotations.get("summary").or(a.annotations.get("description")).cloned().unwrap_or_default();
            let labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with("switchboard_"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            body.push_str(&format!("• [{}] {what} ({})\n", a.status, labels.join(", ")));
        }
        if !self.external_url.is_empty() {
            body.push_str(&format!("\nAlertmanager: {}", self.external_url));
        }
        let dedup_key = crate::text::without_controls(&self.dedup_key());
        // Annotations may carry escape codes: cleaned, not refused (see `text::without_controls`).
        let (title, body) = (crate::text::without_controls(&title), crate::text::without_controls(&body));
        Ok(NewAlert {
            source: source.to_string(),
            title: title.chars().take(MAX_TITLE).collect(),
            body: body.chars().take(MAX_BODY).collect(),
            priority,
            audience,
            ttl_ms: route.ttl_s.unwrap_or(4 * 3600).clamp(1, MAX_TTL_MS / 1000) * 1000,
            hold_offline: true,
            ack_required: route.ack_required && !resolved,
            escalation: None,
            dedup_key: Some(dedup_key),
        })
    }
}

impl AmPayload {
    /// What makes two notifications the same: the group, the status, and the outages the
    /// notification is about — its firing alerts (or, when the group is resolved, its
    /// resolved ones).
    ///
    /// An outage is one alert's fingerprint *and* its `startsAt`. The fingerprint alone is a
    /// hash of the label set, the same for every outage of that alert: keyed on it, an alert
    /// that fires again after it was resolved matched the first outage's still-open alert and
    /// was dropped as a duplicate, and the second "resolved" matched the first one's. Every
    /// notification about one outage — Alertmanager's repeats every `repeat_interval`, a
    /// webhook retried after a timeout — carries the same `startsAt` (Alertmanager keeps the
    /// earliest start while it merges updates of an active alert), and an alert that fires
    /// again after it resolved starts anew with a later one. So repeats stay duplicates, and
    /// firing → resolved → firing again reaches people again, with its own single resolved
    /// follow-up. (Alertmanager's `groupKey` plus status alone would be even coarser: the
    /// same for every outage of the group.)
    fn dedup_key(&self) -> String {
        let about = if self.status == "resolved" { "resolved" } else { "firing" };
        let mut outages: Vec<String> = self.alerts.iter().filter(|a| a.status == about).map(AmAlert::outage).collect();
        outages.sort_unstable();
        let key = format!("am:{}:{}:{}", self.group_key, self.status, outages.join(","));
        if key.len() > 200 {
            // Long groups: keep it within the limit, still specific to the group and outages.
            use sha2::{Digest, Sha256};
            format!("am:{:x}", Sha256::digest(key.as_bytes()))
        } else {
            key
        }
    }
}

impl AmAlert {
    /// One outage of this alert: `<fingerprint>@<startsAt>`. A payload without
    /// fingerprints (older Alertmanagers) has the label set stand in: it is what they hash.
    fn outage(&self) -> String {
        let who = if self.fingerprint.is_empty() {
            self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
        } else {
            self.fingerprint.clone()
        };
        format!("{who}@{}", self.starts_at)
    }
}

#[cfg(test)]
mod alertmanager_tests {
    use super::*;

    const FIRING: &str = include_str!("../../../tests/fixtures/alertmanager-firing.json");
    const RESOLVED: &str = include_str!("../../../tests/fixtures/alertmanager-resolved.json");

    fn routes() -> Vec<AmRoute> {
        vec![
            AmRoute {
                matchers: [("severity".to_string(), "critical".to_string())].into(),
                groups: vec!["ops".into()],
                ack_required: true,
                ..Default::default()
            },
            AmRoute { users: vec!["oncall@example.com".into()], ..Default::default() },
        ]
    }

    #[test]
    fn real_payloads_become_alerts_and_follow_ups() {
        let p: AmPayload = serde_json::from_str(FIRING).unwrap();
        let a = p.to_alert(&routes(), "alertmanager").unwrap();
        assert_eq!(a.title, "FIRING (1): DiskFull: Disk /var on db1 is 97% full");
        assert_eq!((a.priority, a.ack_required), (Priority::Urgent, true));
        assert_eq!(a.audience.groups, ["ops"]);
        assert!(a.body.contains("alertname=DiskFull, severity=critical"), "{}", a.body);
        let r: AmPayload = serde_json::from_str(RESOLVED).unwrap();
        let f = r.to_alert(&routes(), "alertmanager").unwrap();
        assert!(f.title.starts_with("RESOLVED: DiskFull"), "{}", f.title);
        assert_eq!((f.priority, f.ack_required), (Priority::Normal, false));
        assert_ne!(a.dedup_key, f.dedup_key, "the follow-up is not a duplicate");
        // The same firing group again (Alertmanager repeats): the same key.
        assert_eq!(p.to_alert(&routes(), "x").unwrap().dedup_key, a.dedup_key);
    }

    /// The same outage repeated is a duplicate; the same alert firing again after it was
    /// resolved (a later startsAt) is a new outage, with its own resolved follow-up.
    #[test]
    fn one_outage_is_one_alert_and_one_follow_up() {
        let key = |json: &str, starts_at: &str| {
            let mut p: AmPayload = serde_json::from_str(json).unwrap();
            p.alerts[0].starts_at = starts_at.into();
            p.to_alert(&routes(), "am").unwrap().dedup_key.unwrap()
        };
        let (first, second) = ("2026-11-26T15:59:20.716Z", "2026-11-26T16:30:05.102Z");
        assert_eq!(key(FIRING, first), key(FIRING, first), "repeat_interval: the same outage");
        assert_eq!(key(RESOLVED, first), key(RESOLVED, first), "a resolved repeat: the same follow-up");
        assert_ne!(key(FIRING, first), key(RESOLVED, first));
        assert_ne!(key(FIRING, first), key(FIRING, second), "firing again after resolved: a new outage");
        assert_ne!(key(RESOLVED, first), key(RESOLVED, second), "the second outage's follow-up");
        // Without fingerprints, the label set identifies the alert.
        let mut p: AmPayload = serde_json::from_str(FIRING).unwrap();
        p.alerts[0].fingerprint.clear();
        let mut other = p.clone();
        other.alerts[0].labels.insert("instance".into(), "db2".into());
        assert_ne!(p.to_alert(&routes(), "am").unwrap().dedup_key, other.to_alert(&routes(), "am").unwrap().dedup_key);
        // A group too large for the key's limit is hashed, still one key per outage set.
        let mut big: AmPayload = serde_json::from_str(FIRING).unwrap();
        big.alerts = (0..20).map(|i| AmAlert { fingerprint: format!("{i:016x}"), ..big.alerts[0].clone() }).collect();
        let hashed = big.to_alert(&routes(), "am").unwrap().dedup_key.unwrap();
        assert!(hashed.len() <= 200 && hashed.starts_with("am:"), "{hashed}");
        big.alerts[3].starts_at = second.into();
        assert_ne!(big.to_alert(&routes(), "am").unwrap().dedup_key.unwrap(), hashed);
    }

    #[test]
    fn labels_can_name_the_audience_and_nothing_matching_is_an_error() {
        let mut p: AmPayload = serde_json::from_str(FIRING).unwrap();
        p.common_labels.insert("severity".into(), "info".into());
        p.common_labels.insert("switchboard_users".into(), "alice@example.com, bob@example.com".into());
        let a = p.to_alert(&[], "am").unwrap();
        assert_eq!((a.audience.users.len(), a.priority), (2, Priority::Low));
        p.common_labels.remove("switchboard_users");
        assert!(p.to_alert(&[], "am").unwrap_err().contains("no Alertmanager route"));
        p.version = "3".into();
        assert!(p.to_alert(&routes(), "am").is_err());
    }
}
