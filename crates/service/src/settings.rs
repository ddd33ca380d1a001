//! Runtime limits and policies: what the binary configures, with the defaults PRODUCT.md
//! and the issues ask for.

use sb_core::Millis;

/// Runtime limits and policies. Defaults are what PRODUCT.md and the issues ask for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub domain: String,
    pub max_message_bytes: usize,
    /// Largest HTTP request body accepted.
    pub max_body_bytes: usize,
    pub session_ttl_ms: Millis,
    /// Failed sign-ins that cost nothing: per account from one client address, and per
    /// client address over all accounts. After them each further attempt waits, from
    /// `login_delay_base_ms` doubling per failure up to `login_delay_max_ms` — the attacker's
    /// address slows down; the account is never locked for everyone else.
    pub login_failures_per_address: usize,
    pub login_failures_per_ip: usize,
    /// Failures are forgotten this long after the last one.
    pub login_window_ms: Millis,
    pub login_delay_base_ms: Millis,
    pub login_delay_max_ms: Millis,
    /// Frames queued per session before it counts as not reading and is closed.
    pub session_queue: usize,
    pub max_connections_per_address: usize,
    /// Client frames per second a WebSocket session may send before frames are refused.
    pub max_frames_per_second: u32,
    /// Requests per minute per client address to the public, unauthenticated APIs
    /// (queue status, the legacy Queue Manager endpoints).
    pub public_requests_per_minute: usize,
    /// Guest (website visitor) sessions per client address per hour.
    pub guest_sessions_per_hour: usize,
    /// Messages one guest may send per minute, and in its chat in all.
    pub guest_messages_per_minute: usize,
    pub guest_messages_per_chat: usize,
    /// Bytes of message text one guest may store in its chat (its storage quota).
    pub guest_bytes_per_chat: usize,
    /// WebSocket connections one guest may hold at once.
    pub guest_connections: usize,
    /// After its chat ended, a guest's session lives this long more, to read the transcript
    /// and send the survey; it cannot write or connect any more.
    pub guest_linger_ms: Millis,
    /// A waiting queue chat whose seeker has had no connection for this long leaves the
    /// line (abandoned): it is offered to nobody and counted nowhere.
    pub seeker_grace_ms: Millis,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// When set, `/metrics` is served on this address alone (see `sb_http::serve_metrics`),
    /// not on the main listener. Unset (the default): open on the main listener.
    pub metrics_listen: Option<String>,
    pub max_members: usize,
    /// Whose presence anonymous web pages may read (`GET /api/v1/presence`, the SDK's
    /// `onPresence`).
    pub public_presence: PublicPresence,
    /// Alerts one source (application, mailbox, webhook) may send per minute.
    pub alerts_per_minute: usize,
    /// Where Prometheus Alertmanager's alerts go (first match wins).
    pub alertmanager_routes: Vec<sb_core::alerts::AmRoute>,
    /// The longest a client may take to send a request's headers, and again its body.
    pub request_read_timeout: std::time::Duration,
}

/// Whose presence is public (for web pages, without signing in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicPresence {
    /// Nobody's.
    None,
    /// The experts of enabled queues: they face the public anyway (the default).
    #[default]
    Experts,
    /// Everyone in the directory (an intranet where every page's reader is an employee).
    All,
}

impl PublicPresence {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "experts" => Some(Self::Experts),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            domain: "example.com".into(),
            max_message_bytes: 64 * 1024,
            max_body_bytes: 1024 * 1024,
            session_ttl_ms: 14 * 24 * 3600 * 1000,
            login_failures_per_address: 5,
            login_failures_per_ip: 50,
            login_window_ms: 15 * 60 * 1000,
            login_delay_base_ms: 1000,
            login_delay_max_ms: 15 * 60 * 1000,
            session_queue: 512,
            max_connections_per_address: 256,
            max_frames_per_second: 200,
            public_requests_per_minute: 600,
            guest_sessions_per_hour: 20,
            guest_messages_per_minute: 30,
            guest_messages_per_chat: 500,
            guest_bytes_per_chat: 256 * 1024,
            guest_connections: 3,
            guest_linger_ms: 30 * 60 * 1000,
            seeker_grace_ms: 60_000,
            metrics_token: None,
            metrics_listen: None,
            max_members: 500,
            public_presence: PublicPresence::Experts,
            alerts_per_minute: 120,
            alertmanager_routes: Vec::new(),
            request_read_timeout: std::time::Duration::from_secs(10),
        }
    }
}
