//! `[[alerts.mailbox]]`: one mailbox whose mail becomes alerts.

use sb_core::alerts::{Audience, Priority};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Imap,
    Pop3,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, POP3S 995). The default.
    #[default]
    Tls,
    /// Plain connection upgraded with STARTTLS (IMAP) or STLS (POP3) before signing in.
    Starttls,
    /// No encryption: the password crosses the network in clear. Loopback and tests only.
    None,
}

/// What happens to a mail once its alert is stored (or it was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum After {
    /// Delete it (IMAP: `\Deleted` and expunge; POP3: `DELE`). The default.
    #[default]
    Delete,
    /// IMAP only: keep it, marked `\Seen` and `$SwitchboardAlert` (or `$SwitchboardRefused`).
    Flag,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MailboxConfig {
    /// Names the mailbox in logs, alert sources (`mail:<name>`) and the admin page.
    pub name: String,
    pub protocol: Protocol,
    pub host: String,
    /// 0: the protocol's port for the TLS mode (IMAP 993/143, POP3 995/110).
    pub port: u16,
    pub tls: TlsMode,
    /// PEM certificates to trust instead of the system's roots (a private CA, a
    /// self-signed server). Empty: the system's roots.
    pub ca_file: String,
    pub user: String,
    pub password: String,
    /// Read the password from this file instead (first line).
    pub password_file: String,
    /// IMAP folder to watch.
    pub folder: String,
    /// Seconds between checks when polling (POP3, or IMAP without IDLE); with IDLE, the
    /// mailbox is also searched this often in case a notification was missed.
    pub poll_interval_s: u64,
    /// Use IMAP IDLE when the server offers it.
    pub idle: bool,
    pub after: After,
    /// Who may send alerts by mail: addresses (`nagios@example.com`), domains
    /// (`@example.com`), or `*` (anyone — the From header is easy to forge; let the mail
    /// server check SPF/DKIM first). Mail from anyone else is refused and logged.
    pub allowed_senders: Vec<String>,
    /// Larger mails are refused (only their beginning is fetched, for the header).
    pub max_mail_bytes: usize,
    /// For mails that do not name an audience (plain-text mails).
    pub audience: Audience,
    pub priority: String,
    pub ttl_s: i64,
    pub ack_required: bool,
    /// `hold` (default) or `drop`: as the alert API's `offline`.
    pub offline: String,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            protocol: Protocol::Imap,
            host: String::new(),
            port: 0,
            tls: TlsMode::Tls,
            ca_file: String::new(),
            user: String::new(),
            password: String::new(),
            password_file: String::new(),
            folder: "INBOX".into(),
            poll_interval_s: 60,
            idle: true,
            after: After::Delete,
            allowed_senders: Vec::new(),
            max_mail_bytes: 1 << 20,
            audience: Audience::default(),
            priority: "normal".into(),
            ttl_s: 3600,
            ack_required: false,
            offline: "hold".into(),
        }
    }
}

impl MailboxConfig {
    pub fn port(&self) -> u16 {
        match (self.port, self.protocol, self.tls) {
            (0, Protocol::Imap, TlsMode::Tls) => 993,
            (0, Protocol::Imap, _) => 143,
            (0, Protocol::Pop3, TlsMode::Tls) => 995,
            (0, Protocol::Pop3, _) => 110,
            (p, _, _) => p,
        }
    }

    /// The alert source of this mailbox's alerts (rate limits, deduplication, lists).
    pub fn source(&self) -> String {
        format!("mail:{}", self.name)
    }

    /// Problems a person must fix before the mailbox can run.
    pub fn validate(&self) -> Result<(), String> {
        let who = format!("alerts.mailbox {:?}", self.name);
        if self.name.trim().is_empty() {
            return Err("alerts.mailbox: every mailbox needs a name".into());
        }
        if self.host.trim().is_empty() || self.user.is_empty() {
            return Err(format!("{who}: host and user are required"));
        }
        if self.password.is_empty() == self.password_file.is_empty() {
            return Err(format!("{who}: give password or password_file (one of them)"));
        }
        if self.protocol == Protocol::Pop3 && self.after == After::Flag {
            return Err(format!("{who}: POP3 has no flags; after must be delete"));
        }
        if self.allowed_senders.is_empty() {
            return Err(format!(
                "{who}: allowed_senders is empty, so every mail would be refused (\"*\" allows anyone)"
            ));
        }
        if self.poll_interval_s == 0 || self.poll_interval_s > 86_400 {
            return Err(format!("{who}: poll_interval_s is 1 to 86400"));
        }
        if Priority::parse(&self.priority).is_none() {
            return Err(format!("{who}: priority is low, normal, high or urgent"));
        }
        if !matches!(self.offline.as_str(), "hold" | "drop") {
            return Err(format!("{who}: offline is hold or drop"));
        }
        if self.max_mail_bytes < 1024 {
            return Err(format!("{who}: max_mail_bytes is at least 1024"));
        }
        self.audience.presence_filter().map_err(|e| format!("{who}: audience: {e}"))?;
        Ok(())
    }

    /// The password, from `password` or the first line of `password_file`.
    pub fn secret(&self) -> Result<String, String> {
        if !self.password.is_empty() {
            return Ok(self.password.clone());
        }
        std::fs::read_to_string(&self.password_file)
            .map(|t| t.lines().next().unwrap_or_default().to_string())
            .map_err(|e| format!("cannot read {}: {e}", self.password_file))
    }

    /// Is mail from `sender` (an address, any case) allowed?
    pub fn allows(&self, sender: &str) -> bool {
        let sender = sender.trim().to_ascii_lowercase();
        let Some((_, domain)) = sender.rsplit_once('@') else { return false };
        self.allowed_senders.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "*" || a == sender || a.strip_prefix('@').or_else(|| a.strip_prefix("*@")).is_some_and(|d| d == domain)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_addresses_domains_and_star() {
        let m = MailboxConfig {
            allowed_senders: vec!["Nagios@Example.com".into(), "@ops.example.com".into()],
            ..Default::default()
        };
        assert!(m.allows("nagios@example.com"));
        assert!(m.allows("NAGIOS@EXAMPLE.COM"));
        assert!(m.allows("cron@ops.example.com"));
        assert!(!m.allows("cron@evil-ops.example.com"));
        assert!(!m.allows("nagios@example.com.evil.org"));
        assert!(!m.allows("mallory@example.com"));
        assert!(!m.allows("no-at-sign"));
        let any = MailboxConfig { allowed_senders: vec!["*".into()], ..Default::default() };
        assert!(any.allows("who@ever.org"));
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = MailboxConfig {
            name: "ops".into(),
            host: "127.0.0.1".into(),
            user: "alerts".into(),
            password: "x".into(),
            allowed_senders: vec!["*".into()],
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.port(), 993);
        let pop = MailboxConfig { protocol: Protocol::Pop3, after: After::Flag, ..ok.clone() };
        assert!(pop.validate().unwrap_err().contains("POP3 has no flags"));
        let open = MailboxConfig { allowed_senders: vec![], ..ok.clone() };
        assert!(open.validate().unwrap_err().contains("allowed_senders"));
        let both = MailboxConfig { password_file: "/x".into(), ..ok };
        assert!(both.validate().unwrap_err().contains("password_file"));
    }
}
