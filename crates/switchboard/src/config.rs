//! Typed, layered configuration: defaults → TOML file → `SWITCHBOARD_…` environment →
//! command-line flags. Unknown keys are warned about; secrets are redacted when shown.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The organisation's domain: users are `name@<domain>`.
    pub domain: String,
    /// Where the SQLite database and other state live.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds.
    pub http: String,
    /// `sqlite://…` or `postgres://…`; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// `human` or `json`.
    pub log_format: String,
    /// A tracing filter, e.g. `info` or `switchboard=debug,info`.
    pub log_level: String,
    /// SQLite only: what an acknowledged message survives. `process` (default): a crash or
    /// `kill -9` of the server; `power`: also the machine losing power (an fsync per
    /// group commit, at a latency cost — see BENCHMARKS.md).
    pub sqlite_durability: String,
    /// Whose presence anonymous web pages may read: `experts` (of enabled queues; default),
    /// `all`, or `none`.
    pub public_presence: String,
    /// The file holding the key that seals the compliance archive (created on first start,
    /// readable by the server only). Default: `<data_dir>/archive.key`. Keep it apart from
    /// database backups: with the key, a forger could re-seal an edited archive.
    pub archive_key_file: String,
    /// A separate listen address serving `/metrics` alone (e.g. `127.0.0.1:9090`, a port
    /// only Prometheus reaches); `/metrics` then leaves the main listener. Empty (default):
    /// `/metrics` is served on the main listener, open to whoever reaches it.
    pub metrics_listen: String,
    /// When set, `/metrics` (wherever it is served) needs `Authorization: Bearer <token>`
    /// (Prometheus: `authorization: { credentials: … }` in the scrape config). Empty
    /// (default): no token. Redacted by `config check`.
    pub metrics_token: String,
    pub limits: Limits,
    pub alertmanager: Alertmanager,
    pub alerts: Alerts,
}

/// `[alerts]`: alert sources the server reaches out to. `[[alerts.mailbox]]`: an IMAP or
/// POP3 mailbox whose mail becomes alerts (see `sb_mail::MailboxConfig` and
/// docs/alerts-mail.md).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Alerts {
    pub mailbox: Vec<sb_mail::MailboxConfig>,
}

/// `[alertmanager]`: where Prometheus Alertmanager's alerts go. Each `[[alertmanager.routes]]`
/// has `match = { label = "value", … }` (empty: everything), `users`, `groups`, `queues`,
/// `everyone`, `priority` (default from the `severity` label), `ack_required`, `ttl_s`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Alertmanager {
    pub routes: Vec<sb_core::alerts::AmRoute>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_body_bytes: usize,
    pub max_connections_per_address: usize,
    /// Failed sign-ins that cost nothing, per account from one client and per client;
    /// then each attempt from there waits `login_delay_base_ms`, doubling per failure up to
    /// `login_delay_max_secs`. The account is never locked for its owner elsewhere.
    pub login_failures_per_address: usize,
    pub login_failures_per_ip: usize,
    pub login_window_secs: i64,
    pub login_delay_base_ms: i64,
    pub login_delay_max_secs: i64,
    pub session_ttl_hours: i64,
    pub session_queue: usize,
    pub max_frames_per_second: u32,
    pub public_requests_per_minute: usize,
    /// Guest (website visitor) chats per client address per hour.
    pub guest_sessions_per_hour: usize,
    /// One guest's messages per minute, messages per chat, bytes per chat (its storage
    /// quota) and WebSocket connections at once.
    pub guest_messages_per_minute: usize,
    pub guest_messages_per_chat: usize,
    pub guest_bytes_per_chat: usize,
    pub guest_connections: usize,
    /// After its chat ended, a guest may still read the transcript and send the survey
    /// this long; it cannot write or connect.
    pub guest_linger_secs: i64,
    /// A waiting queue chat whose seeker has had no connection this long leaves the line.
    pub seeker_grace_secs: i64,
    /// Alerts one source may send per minute.
    pub alerts_per_minute: usize,
    /// Seconds a client may take to send a request's headers, and again its body.
    pub request_read_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            domain: "example.com".into(),
            data_dir: PathBuf::from("./switchboard-data"),
            http: "127.0.0.1:8080".into(),
            database_url: String::new(),
            log_format: "human".into(),
            log_level: "info".into(),
            sqlite_durability: "process".into(),
            public_presence: "experts".into(),
            archive_key_file: String::new(),
            metrics_listen: String::new(),
            metrics_token: String::new(),
            limits: Limits::default(),
            alertmanager: Alertmanager::default(),
            alerts: Alerts::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let s = sb_service::Settings::default();
        Self {
            max_message_bytes: s.max_message_bytes,
            max_body_bytes: s.max_body_bytes,
            max_connections_per_address: s.max_connections_per_address,
            login_failures_per_address: s.login_failures_per_address,
            login_failures_per_ip: s.login_failures_per_ip,
            login_window_secs: s.login_window_ms / 1000,
            login_delay_base_ms: s.login_delay_base_ms,
            login_delay_max_secs: s.login_delay_max_ms / 1000,
            session_ttl_hours: s.session_ttl_ms / 3_600_000,
            session_queue: s.session_queue,
            max_frames_per_second: s.max_frames_per_second,
            public_requests_per_minute: s.public_requests_per_minute,
            guest_sessions_per_hour: s.guest_sessions_per_hour,
            guest_messages_per_minute: s.guest_messages_per_minute,
            guest_messages_per_chat: s.guest_messages_per_chat,
            guest_bytes_per_chat: s.guest_bytes_per_chat,
            guest_connections: s.guest_connections,
            guest_linger_secs: s.guest_linger_ms / 1000,
            seeker_grace_secs: s.seeker_grace_ms / 1000,
            alerts_per_minute: s.alerts_per_minute,
            request_read_timeout_secs: s.request_read_timeout.as_secs(),
        }
    }
}

/// `SWITCHBOARD_*` variables that are not configuration keys: read by a command or a tool
/// on their own (the config file's path, the first admin's password, the alert command's
/// token, the log filter, the browser tests' binary).
const NOT_CONFIG_KEYS: &[&str] = &["CONFIG", "ADMIN_PASSWORD", "TOKEN", "ALERT_TOKEN", "LOG", "BIN"];

/// Values given on the command line (the last layer). Global: they may come before or
/// after the subcommand (`switchboard archive verify --data-dir X`).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data folder (default ./switchboard-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address, e.g. 127.0.0.1:8080 (port 0 picks a free one).
    #[arg(long, global = true)]
    pub http: Option<String>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// The organisation's domain.
    #[arg(long, global = true)]
    pub domain: Option<String>,
    /// Log format: human or json.
    #[arg(long, global = true)]
    pub log_format: Option<String>,
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<(Config, Vec<String>)> {
        let mut table = toml::Table::try_from(Config::default()).context("defaults")?;
        if let Some(path) = &o.config {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            let file: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
            merge(&mut table, file);
        }
        for (key, value) in std::env::vars() {
            let Some(name) = key.strip_prefix("SWITCHBOARD_") else { continue };
            if NOT_CONFIG_KEYS.contains(&name) {
                continue;
            }
            let path: Vec<String> = name.split("__").map(|p| p.to_lowercase()).collect();
            set_path(&mut table, &path, parse_env_value(&value));
        }
        let flags: [(&str, Option<String>); 5] = [
            ("data_dir", o.data_dir.as_ref().map(|p| p.display().to_string())),
            ("http", o.http.clone()),
            ("database_url", o.database_url.clone()),
            ("domain", o.domain.clone()),
            ("log_format", o.log_format.clone()),
        ];
        for (k, v) in flags {
            if let Some(v) = v {
                table.insert(k.into(), toml::Value::String(v));
            }
        }
        let mut unknown = Vec::new();
        let config: Config =
            serde_ignored::deserialize(toml::Value::Table(table), |path| unknown.push(path.to_string()))
                .context("invalid configuration")?;
        config.validate()?;
        Ok((config, unknown))
    }

    fn validate(&self) -> anyhow::Result<()> {
        sb_core::Address::parse(&format!("admin@{}", self.domain))
            .map_err(|_| anyhow::anyhow!("domain {:?} is not a host name", self.domain))?;
        if !matches!(self.log_format.as_str(), "human" | "json") {
            bail!("log_format must be human or json, not {:?}", self.log_format);
        }
        if sb_service::PublicPresence::parse(&self.public_presence).is_none() {
            bail!("public_presence must be experts, all or none, not {:?}", self.public_presence);
        }
        if !matches!(self.sqlite_durability.as_str(), "process" | "power") {
            bail!("sqlite_durability must be process or power, not {:?}", self.sqlite_durability);
        }
        if !self.database_url.is_empty() && sb_store::Backend::of_url(&self.database_url).is_none() {
            bail!("database_url must start with sqlite:// or postgres://");
        }
        if self.limits.max_message_bytes == 0 || self.limits.max_message_bytes > self.limits.max_body_bytes {
            bail!("limits.max_message_bytes must be between 1 and limits.max_body_bytes");
        }
        if self.limits.guest_connections == 0 || self.limits.guest_messages_per_chat == 0 {
            bail!("limits.guest_connections and limits.guest_messages_per_chat must be at least 1");
        }
        if self.limits.seeker_grace_secs < 1 || self.limits.login_delay_max_secs < 1 {
            bail!("limits.seeker_grace_secs and limits.login_delay_max_secs must be at least 1");
        }
        if !self.metrics_listen.is_empty() && self.metrics_listen == self.http && !self.http.ends_with(":0") {
            bail!("metrics_listen must differ from http (it is a listener of its own)");
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &self.alerts.mailbox {
            m.validate().map_err(anyhow::Error::msg)?;
            if !names.insert(m.name.as_str()) {
                bail!("alerts.mailbox: two mailboxes are named {:?}", m.name);
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("switchboard.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn durability(&self) -> sb_store::Durability {
        match self.sqlite_durability.as_str() {
            "power" => sb_store::Durability::PowerLoss,
            _ => sb_store::Durability::Process,
        }
    }

    pub fn settings(&self) -> sb_service::Settings {
        let l = &self.limits;
        sb_service::Settings {
            domain: self.domain.clone(),
            max_message_bytes: l.max_message_bytes,
            max_body_bytes: l.max_body_bytes,
            session_ttl_ms: l.session_ttl_hours * 3_600_000,
            login_failures_per_address: l.login_failures_per_address,
            login_failures_per_ip: l.login_failures_per_ip,
            login_window_ms: l.login_window_secs * 1000,
            login_delay_base_ms: l.login_delay_base_ms.max(1),
            login_delay_max_ms: l.login_delay_max_secs * 1000,
            session_queue: l.session_queue,
            max_connections_per_address: l.max_connections_per_address,
            max_frames_per_second: l.max_frames_per_second,
            public_requests_per_minute: l.public_requests_per_minute,
            guest_sessions_per_hour: l.guest_sessions_per_hour,
            guest_messages_per_minute: l.guest_messages_per_minute,
            guest_messages_per_chat: l.guest_messages_per_chat,
            guest_bytes_per_chat: l.guest_bytes_per_chat,
            guest_connections: l.guest_connections,
            guest_linger_ms: l.guest_linger_secs * 1000,
            seeker_grace_ms: l.seeker_grace_secs * 1000,
            metrics_listen: Some(self.metrics_listen.clone()).filter(|a| !a.is_empty()),
            metrics_token: Some(self.metrics_token.clone()).filter(|t| !t.is_empty()),
            alerts_per_minute: l.alerts_per_minute,
            request_read_timeout: std::time::Duration::from_secs(l.request_read_timeout_secs.max(1)),
            public_presence: sb_service::PublicPresence::parse(&self.public_presence).unwrap_or_default(),
            alertmanager_routes: self.alertmanager.routes.clone(),
            ..sb_service::Settings::default()
        }
    }

    /// The configuration as TOML with secrets redacted.
    pub fn render_redacted(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = sb_store::redact(&self.database_url());
        if !shown.metrics_token.is_empty() {
            shown.metrics_token = "***".into();
        }
        for m in &mut shown.alerts.mailbox {
            if !m.password.is_empty() {
                m.password = "***".into();
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }

    /// The archive key: read from `archive_key_file`, or made (32 random bytes, hex, mode
    /// 0600) when the file does not exist yet.
    pub fn archive_key(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.archive_key_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = hex::decode(text.trim()).with_context(|| format!("{} is not a hex key", path.display()))?;
                if key.len() < 16 {
                    bail!("{} holds a key shorter than 16 bytes", path.display());
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let key: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut f = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
                std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(key)).as_bytes())?;
                tracing::info!(file = %path.display(), "created the archive key");
                Ok(key.to_vec())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read the archive key {}", path.display())),
        }
    }

    /// The archive key, which must already exist (tools that only read the archive never
    /// make one: a new key would "verify" nothing).
    pub fn existing_archive_key(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.archive_key_path();
        if !path.exists() {
            bail!(
                "no archive key at {} (is --data-dir or archive_key_file right? the server makes it on first start)",
                path.display()
            );
        }
        self.archive_key()
    }

    fn archive_key_path(&self) -> PathBuf {
        if self.archive_key_file.is_empty() {
            self.data_dir.join("archive.key")
        } else {
            PathBuf::from(&self.archive_key_file)
        }
    }

    /// For tools that work on an existing installation: fail, creating nothing, when the
    /// SQLite database is not there.
    pub fn ensure_existing_database(&self) -> anyhow::Result<()> {
        let url = self.database_url();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if !path.is_file() {
                bail!("no database at {} (is --data-dir or --database-url right?)", path.display());
            }
        }
        Ok(())
    }

    pub fn ensure_data_dir(&self) -> anyhow::Result<()> {
        if self.database_url.is_empty() || self.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&self.data_dir)
                .with_context(|| format!("cannot create data folder {}", self.data_dir.display()))?;
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

/// Numbers and booleans from the environment become TOML numbers and booleans.
fn parse_env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

pub fn describe_source(o: &Overrides) -> String {
    match &o.config {
        Some(p) => format!("defaults, {}, environment, flags", Path::new(p).display()),
        None => "defaults, environment, flags".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_and_unknown_keys_are_reported() {
        let dir = std::env::temp_dir().join(format!("sbcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "domain = \"corp.example\"\nhttp = \"127.0.0.1:9000\"\nbogus = 1\n[limits]\nmax_message_bytes = 1000\n",
        )
        .unwrap();
        let o = Overrides { config: Some(file), http: Some("127.0.0.1:0".into()), ..Default::default() };
        let (c, unknown) = Config::load(&o).unwrap();
        assert_eq!(c.domain, "corp.example");
        assert_eq!(c.http, "127.0.0.1:0", "flags win over the file");
        assert_eq!(c.limits.max_message_bytes, 1000);
        assert_eq!(unknown, vec!["bogus".to_string()]);
        let shown = Config { database_url: "postgres://u:secret@h/db".into(), ..c }.render_redacted();
        assert!(shown.contains("u:***@h") && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn metrics_settings_and_their_token_is_redacted() {
        let c = Config::default();
        assert_eq!((c.settings().metrics_listen, c.settings().metrics_token), (None, None), "open by default");
        let c = Config { metrics_listen: "127.0.0.1:9090".into(), metrics_token: "s3cret".into(), ..Config::default() };
        assert!(c.validate().is_ok());
        let s = c.settings();
        assert_eq!((s.metrics_listen.as_deref(), s.metrics_token.as_deref()), (Some("127.0.0.1:9090"), Some("s3cret")));
        let shown = c.render_redacted();
        assert!(shown.contains("metrics_token = \"***\"") && !shown.contains("s3cret"), "{shown}");
        let same = Config { metrics_listen: "127.0.0.1:8080".into(), ..Config::default() };
        assert!(same.validate().unwrap_err().to_string().contains("metrics_listen"));
        let d = Config::default().settings();
        let defaults = sb_service::Settings::default();
        assert_eq!(
            (d.guest_sessions_per_hour, d.guest_bytes_per_chat, d.seeker_grace_ms, d.login_delay_max_ms),
            (
                defaults.guest_sessions_per_hour,
                defaults.guest_bytes_per_chat,
                defaults.seeker_grace_ms,
                defaults.login_delay_max_ms
            ),
            "the limits' defaults are the service's"
        );
    }

    #[test]
    fn durability_is_validated() {
        let c = Config { sqlite_durability: "power".into(), ..Config::default() };
        assert!(c.validate().is_ok());
        assert_eq!(c.durability(), sb_store::Durability::PowerLoss);
        assert_eq!(Config::default().durability(), sb_store::Durability::Process);
        let bad = Config { sqlite_durability: "maybe".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("sqlite_durability"));
        let bad = Config { public_presence: "everyone".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("public_presence"));
    }

    #[test]
    fn env_values_are_typed() {
        assert_eq!(parse_env_value("42"), toml::Value::Integer(42));
        assert_eq!(parse_env_value("x"), toml::Value::String("x".into()));
        let mut t = toml::Table::new();
        set_path(&mut t, &["limits".into(), "max_body_bytes".into()], toml::Value::Integer(5));
        assert_eq!(t["limits"]["max_body_bytes"].as_integer(), Some(5));
    }
}
