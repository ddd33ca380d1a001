//! Process metrics in the Prometheus text exposition format.
//!
//! A handful of counters, gauges and fixed-bucket histograms on atomics: hot paths pay one
//! relaxed atomic add. Labels are bounded (door, outcome), never per user or conversation.

use sb_core::pipeline::Door;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);
impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);
impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Latency histogram in seconds with fixed buckets from 100 µs to 10 s.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0];

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: Default::default(), sum_us: AtomicU64::new(0), count: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// `{door="…"}` for a door's series.
fn door_label(door: Door) -> &'static str {
    match door {
        Door::WebSocket => "{door=\"websocket\"}",
        Door::Rest => "{door=\"rest\"}",
        Door::Xmpp => "{door=\"xmpp\"}",
        Door::QueueRelay => "{door=\"queue_relay\"}",
        Door::Alert => "{door=\"alert\"}",
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: [Counter; 5],
    pub http_latency: Histogram,
    pub ws_connections: Gauge,
    pub ws_rejected: Counter,
    pub slow_client_disconnects: Counter,
    /// Messages accepted, by the door they came through (`Door::ALL` order).
    pub messages: [Counter; 5],
    pub messages_refused: Counter,
    pub events_appended: Counter,
    pub append_batches: Counter,
    pub append_latency: Histogram,
    pub message_latency: Histogram,
    pub logins_ok: Counter,
    pub logins_failed: Counter,
    pub logins_limited: Counter,
    pub presence_changes: Counter,
    pub users_online: Gauge,
    pub alerts_sent: Counter,
    pub alert_deliveries: Counter,
    pub mail_refused: Counter,
}

impl Metrics {
    /// `n` messages accepted through `door`.
    pub fn messages_through(&self, door: Door, n: u64) {
        self.messages[door as usize].add(n);
    }

    /// Count one HTTP response by status class (1xx … 5xx).
    pub fn http_response(&self, status: u16, elapsed: std::time::Duration) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.http_requests[i].inc();
        self.http_latency.observe(elapsed);
    }

    pub fn render(&self, backend: &str) -> String {
        let mut o = String::with_capacity(8192);
        let counter = |o: &mut String, name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        let classes: Vec<(String, u64)> =
            (1..=5).map(|c| (format!("{{code=\"{c}xx\"}}"), self.http_requests[c - 1].get())).collect();
        let classes: Vec<(&str, u64)> = classes.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(&mut o, "switchboard_http_requests_total", "HTTP responses by status class.", &classes);
        counter(
            &mut o,
            "switchboard_ws_rejected_total",
            "WebSocket connections refused (limits, auth).",
            &[("", self.ws_rejected.get())],
        );
        counter(
            &mut o,
            "switchboard_slow_client_disconnects_total",
            "Sessions closed because they did not read their frames.",
            &[("", self.slow_client_disconnects.get())],
        );
        counter(
            &mut o,
            "switchboard_messages_total",
            "Chat messages accepted, by door.",
            &Door::ALL.map(|d| (door_label(d), self.messages[d as usize].get())),
        );
        counter(
            &mut o,
            "switchboard_messages_refused_total",
            "Chat messages refused by the pipeline.",
            &[("", self.messages_refused.get())],
        );
        counter(&mut o, "switchboard_alerts_total", "Alerts accepted.", &[("", self.alerts_sent.get())]);
        counter(
            &mut o,
            "switchboard_alert_deliveries_total",
            "Alert messages delivered to recipients.",
            &[("", self.alert_deliveries.get())],
        );
        counter(
            &mut o,
            "switchboard_mail_refused_total",
            "Mails from alert mailboxes refused (sender not allowed, unreadable, no audience).",
            &[("", self.mail_refused.get())],
        );
        counter(
            &mut o,
            "switchboard_events_appended_total",
            "Conversation events stored.",
            &[("", self.events_appended.get())],
        );
        counter(
            &mut o,
            "switchboard_append_batches_total",
            "Group commits of the conversation log.",
            &[("", self.append_batches.get())],
        );
        counter(
            &mut o,
            "switchboard_logins_total",
            "Password sign-in attempts by outcome.",
            &[
                ("{outcome=\"ok\"}", self.logins_ok.get()),
                ("{outcome=\"failed\"}", self.logins_failed.get()),
                ("{outcome=\"rate_limited\"}", self.logins_limited.get()),
            ],
        );
        counter(
            &mut o,
            "switchboard_presence_changes_total",
            "Aggregated presence changes.",
            &[("", self.presence_changes.get())],
        );
        let gauge = |o: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(&mut o, "switchboard_ws_connections", "Open WebSocket sessions.", self.ws_connections.get());
        gauge(&mut o, "switchboard_users_online", "Users with at least one session.", self.users_online.get());
        if let Some(rss) = resident_memory_bytes() {
            gauge(&mut o, "process_resident_memory_bytes", "Resident memory size in bytes.", rss as i64);
        }
        let _ = writeln!(o, "# HELP switchboard_info Build and backend information.\n# TYPE switchboard_info gauge");
        let _ = writeln!(o, "switchboard_info{{version=\"{}\",backend=\"{backend}\"}} 1", env!("CARGO_PKG_VERSION"));
        self.http_latency.render(&mut o, "switchboard_http_request_duration_seconds", "HTTP request latency.");
        self.append_latency.render(
            &mut o,
            "switchboard_append_duration_seconds",
            "Group-commit latency of the conversation log.",
        );
        self.message_latency.render(
            &mut o,
            "switchboard_message_duration_seconds",
            "Message latency from submission to stored and delivered.",
        );
        o
    }
}

/// The storage's write health: a gauge while writes fail, and a count of failed writes.
pub fn render_storage(o: &mut String, fault: bool, failures: u64) {
    let _ = writeln!(
        o,
        "# HELP switchboard_storage_write_fault 1 while writes to storage fail (disk full, I/O error, connection cut).\n\
         # TYPE switchboard_storage_write_fault gauge\nswitchboard_storage_write_fault {}",
        u8::from(fault)
    );
    let _ = writeln!(
        o,
        "# HELP switchboard_storage_write_failures_total Write transactions that did not commit because of a storage fault.\n\
         # TYPE switchboard_storage_write_failures_total counter\nswitchboard_storage_write_failures_total {failures}"
    );
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
