//! `switchboard loadtest …`: real clients against a running server, then figures.
//!
//! Accounts are made through the admin API (users without passwords, session tokens issued
//! by the administrator), so no Argon2 work distorts the run. Every run is bounded by
//! `--duration`/`--hold` and stops by itself.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures_util::{stream, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Subcommand)]
pub enum LoadCommand {
    /// Pairs of WebSocket clients message each other; prints throughput and latency.
    Chat(ChatArgs),
    /// Open many signed-in sessions and hold them; prints server memory per session.
    Idle(IdleArgs),
    /// Seekers arrive at queues, experts accept and chat, pages poll the status APIs.
    Queues(crate::loadqueues::QueuesArgs),
    /// The compliance archive on a database of its own: appends/s (sealed and indexed),
    /// chain verification speed, e-discovery search latency over a large archive.
    Archive(crate::loadarchive::ArchiveArgs),
    /// One alert to many signed-in recipients (time to the last delivery), then sustained
    /// alerts/s.
    Alerts(crate::loadalerts::AlertsArgs),
}

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// An administrator's address (makes the test accounts).
    #[arg(long, default_value = "admin@example.com")]
    admin: String,
    /// The administrator's password.
    #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD", default_value = "demo")]
    admin_password: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Clone)]
pub struct ChatArgs {
    #[command(flatten)]
    common: Common,
    /// Pairs of clients (2 × N WebSocket sessions).
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Total messages per second across all clients; without it every client sends its next
    /// message as soon as the last is acknowledged (peak throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

#[derive(Args, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Seconds to hold them open once all are connected.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
}

pub async fn run(cmd: LoadCommand) -> anyhow::Result<()> {
    crate::raise_fd_limit();
    match cmd {
        LoadCommand::Chat(a) => chat(a).await,
        LoadCommand::Idle(a) => idle(a).await,
        LoadCommand::Queues(a) => crate::loadqueues::run(a).await,
        LoadCommand::Archive(a) => crate::loadarchive::run(a).await,
        LoadCommand::Alerts(a) => crate::loadalerts::run(a).await,
    }
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) admin_token: String,
    pub(crate) domain: String,
    pub(crate) run: String,
}

impl Api {
    pub(crate) async fn connect(c: &Common) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(64).build()?;
        let base = c.url.trim_end_matches('/').to_string();
        let resp = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"address": c.admin, "password": c.admin_password}))
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        if !resp.status().is_success() {
            bail!("admin sign-in failed ({}): {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        let v: Value = resp.json().await?;
        let admin_token = v["token"].as_str().context("no token in login answer")?.to_string();
        let domain = c.admin.split('@').nth(1).context("--admin must be an address")?.to_string();
        let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        Ok(Api { http, base, admin_token, domain, run })
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, token, path, body).await
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let resp =
            self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// Make `n` users and a session token for each; returns (address, token).
    async fn accounts(&self, n: usize, progress: &ProgressBar) -> anyhow::Result<Vec<(String, String)>> {
        self.accounts_with(n, "u", &[], progress).await
    }

    /// `n` users named `lt-<run>-<prefix><i>` with these roles, each with a session token.
    pub(crate) async fn accounts_with(
        &self,
        n: usize,
        prefix: &str,
        roles: &[&str],
        progress: &ProgressBar,
    ) -> anyhow::Result<Vec<(String, String)>> {
        progress.set_message(format!("creating {n} test users"));
        let made: Vec<anyhow::Result<(String, String)>> = stream::iter(0..n)
            .map(|i| async move {
                let address = format!("lt-{}-{prefix}{i}@{}", self.run, self.domain);
                self.post(
                    &self.admin_token,
                    "/api/v1/admin/users",
                    json!({"address": address, "display_name": format!("Load {prefix}{i}"), "roles": roles}),
                )
                .await?;
                let v = self.post(&self.admin_token, "/api/v1/admin/sessions", json!({"address": address})).await?;
                let token = v["token"].as_str().context("no token")?.to_string();
                progress.inc(1);
                Ok((address, token))
            })
            .buffered(16)
            .collect()
            .await;
        made.into_iter().collect()
    }

    pub(crate) async fn ws(&self, token: &str) -> anyhow::Result<Ws> {
        let url = format!("{}/api/v1/ws?presence=none", self.base.replacen("http", "ws", 1));
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(req, None, true).await.context("websocket connect")?;
        // Wait for "ready".
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => return Ok(ws),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before ready"),
            }
        }
    }

    async fn server_rss(&self) -> Option<u64> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.ok()?.text().await.ok()?;
        text.lines().find_map(|l| l.strip_prefix("process_resident_memory_bytes ")).and_then(|v| v.trim().parse().ok())
    }
}

/// Open a WebSocket for every account, 64 at a time, in account order.
pub(crate) async fn connect_all(
    api: &Arc<Api>,
    accounts: &[(String, String)],
    pb: &ProgressBar,
) -> Vec<anyhow::Result<Ws>> {
    stream::iter(accounts.iter().map(|(_, token)| token.clone()))
        .map(|token| {
            let (api, pb) = (api.clone(), pb.clone());
            async move {
                let ws = api.ws(&token).await;
                pb.inc(1);
                ws
            }
        })
        .buffered(64)
        .collect()
        .await
}

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) fn bar(json: bool, len: u64) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, what: impl FnOnce() -> String) {
        self.errors.fetch_add(1, Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what());
        }
    }
}

async fn chat(a: ChatArgs) -> anyhow::Result<()> {
    if a.pairs == 0 || a.duration <= 0.0 {
        bail!("--pairs and --duration must be positive");
    }
    let api = Arc::new(Api::connect(&a.common).await?);
    let pb = bar(a.common.json, (a.pairs * 2) as u64);
    let accounts = api.accounts(a.pairs * 2, &pb).await?;
    pb.set_position(0);
    pb.set_message("creating conversations");
    let convs: Vec<anyhow::Result<i64>> = stream::iter(accounts.chunks(2).map(|p| (p[0].clone(), p[1].clone())))
        .map(|(x, y)| {
            let api = api.clone();
            async move {
                let v = api.post(&x.1, "/api/v1/conversations", json!({"kind": "direct", "members": [y.0]})).await?;
                v["id"].as_i64().context("no conversation id")
            }
        })
        .buffered(16)
        .collect()
        .await;
    let convs: Vec<i64> = convs.into_iter().collect::<anyhow::Result<_>>()?;
    pb.set_message("connecting");
    let mut sockets: Vec<Ws> = connect_all(&api, &accounts, &pb).await.into_iter().collect::<anyhow::Result<_>>()?;
    pb.finish_and_clear();

    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs_f64(a.duration);
    let per_client_interval = a.rate.map(|r| Duration::from_secs_f64((a.pairs * 2) as f64 / r.max(0.001)));
    let progress = bar(a.common.json, 0);
    if !a.common.json {
        progress.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ws) in sockets.drain(..).enumerate() {
        let conv = convs[i / 2];
        let counters = counters.clone();
        let pad = "x".repeat(a.size.saturating_sub(24));
        tasks.spawn(client(ws, conv, counters, epoch, deadline, per_client_interval, pad));
    }
    let ticker = {
        let counters = counters.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let secs = epoch.elapsed().as_secs_f64().max(0.001);
                let d = counters.delivered.load(Relaxed);
                progress.set_message(format!(
                    "sent {} delivered {} ({:.0}/s) errors {}",
                    counters.sent.load(Relaxed),
                    d,
                    d as f64 / secs,
                    counters.errors.load(Relaxed)
                ));
                progress.tick();
            }
        })
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(r) = tasks.join_next().await {
        if let Ok(h) = r {
            hist.add(h).ok();
        }
    }
    ticker.abort();
    progress.finish_and_clear();
    let elapsed = a.duration;
    let (sent, delivered, errors) =
        (counters.sent.load(Relaxed), counters.delivered.load(Relaxed), counters.errors.load(Relaxed));
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "test": "chat",
        "pairs": a.pairs,
        "duration_s": elapsed,
        "rate_target": a.rate,
        "sent": sent,
        "acked": counters.acked.load(Relaxed),
        "delivered": delivered,
        "lost": counters.acked.load(Relaxed).saturating_sub(delivered),
        "errors": errors,
        "first_error": counters.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        "delivered_per_s": delivered as f64 / elapsed,
        "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0},
    });
    if a.common.json {
        println!("{report}");
    } else {
        println!(
            "chat: {} pairs for {:.1} s{}",
            a.pairs,
            elapsed,
            a.rate.map(|r| format!(" at {r} msg/s")).unwrap_or_default()
        );
        println!(
            "  sent {sent}, delivered {delivered} ({:.0} msg/s), lost {}, errors {errors}",
            delivered as f64 / elapsed,
            counters.acked.load(Relaxed).saturating_sub(delivered)
        );
        println!(
            "  delivery latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            hist.max() as f64 / 1000.0
        );
    }
    Ok(())
}

/// One client: sends to its pair's conversation, measures how long the peer's messages
/// took from send to receipt (both ends share `epoch`, so the body's timestamp is comparable).
async fn client(
    ws: Ws,
    conv: i64,
    counters: Arc<Counters>,
    epoch: Instant,
    deadline: Instant,
    interval: Option<Duration>,
    pad: String,
) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds are valid");
    let (mut tx, mut rx) = ws.split();
    let mut in_flight = 0u32;
    let mut n = 0u64;
    // Each client starts at a random phase of its period: clients ticking in step would
    // send in bursts and measure their own queueing, not the server.
    let period = interval.unwrap_or(Duration::from_secs(3600));
    let phase = period.mul_f64(rand::random::<f64>());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drain_until = deadline + Duration::from_secs(2);
    let send = |n: u64| {
        let t = epoch.elapsed().as_micros();
        json!({"type": "send", "conversation": conv, "body": format!("{t} {pad}"), "client_id": format!("m{n}")})
            .to_string()
    };
    // Closed loop: the first message starts the cycle; each ack sends the next.
    if interval.is_none() {
        if tx.send(Message::Text(send(n).into())).await.is_err() {
            counters.errors.inc_one();
            return hist;
        }
        counters.sent.inc_one();
        n += 1;
        in_flight = 1;
    }
    loop {
        let now = Instant::now();
        // After the deadline: wait for our own acks, and a moment for the peer's last messages.
        if now >= drain_until || (now >= deadline + Duration::from_millis(500) && in_flight == 0) {
            break;
        }
        tokio::select! {
            _ = tick.tick(), if interval.is_some() && now < deadline && in_flight < 32 => {
                if tx.send(Message::Text(send(n).into())).await.is_err() {
                    counters.errors.inc_one();
                    break;
                }
                counters.sent.inc_one();
                n += 1;
                in_flight += 1;
            }
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        counters.error(|| format!("socket: {e}"));
                        break;
                    }
                    None => {
                        counters.error(|| "the server closed the socket".into());
                        break;
                    }
                };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("ack") => {
                        counters.acked.inc_one();
                        in_flight = in_flight.saturating_sub(1);
                        if interval.is_none() && Instant::now() < deadline {
                            if tx.send(Message::Text(send(n).into())).await.is_err() {
                                counters.errors.inc_one();
                                break;
                            }
                            counters.sent.inc_one();
                            n += 1;
                            in_flight += 1;
                        }
                    }
                    Some("event") if v["event"]["kind"] == "message" => {
                        let sent_us: Option<u128> = v["event"]["body"].as_str().and_then(|b| b.split(' ').next()).and_then(|t| t.parse().ok());
                        if let Some(sent_us) = sent_us {
                            let lat = epoch.elapsed().as_micros().saturating_sub(sent_us) as u64;
                            hist.record(lat.max(1)).ok();
                            counters.delivered.inc_one();
                        }
                    }
                    Some("error") => {
                        counters.error(|| v.to_string());
                        in_flight = in_flight.saturating_sub(1);
                        // Keep the closed loop going after a refusal.
                        if interval.is_none() && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            if tx.send(Message::Text(send(n).into())).await.is_err() {
                                break;
                            }
                            counters.sent.inc_one();
                            n += 1;
                            in_flight += 1;
                        }
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(if now < deadline { deadline } else { now + Duration::from_millis(100) })) => {}
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    hist
}

trait IncOne {
    fn inc_one(&self);
}
impl IncOne for AtomicU64 {
    fn inc_one(&self) {
        self.fetch_add(1, Relaxed);
    }
}

async fn idle(a: IdleArgs) -> anyhow::Result<()> {
    if a.sessions == 0 {
        bail!("--sessions must be positive");
    }
    let api = Arc::new(Api::connect(&a.common).await?);
    let pb = bar(a.common.json, a.sessions as u64);
    let accounts = api.accounts(a.sessions, &pb).await?;
    pb.set_position(0);
    pb.set_message("connecting");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = api.server_rss().await.context("the server's /metrics has no process_resident_memory_bytes")?;
    let started = Instant::now();
    let sockets = connect_all(&api, &accounts, &pb).await;
    let connect_s = started.elapsed().as_secs_f64();
    let failed = sockets.iter().filter(|s| s.is_err()).count();
    if let Some(Err(e)) = sockets.iter().find(|s| s.is_err()) {
        pb.println(format!("first connect error: {e:#}"));
    }
    let sockets: Vec<Ws> = sockets.into_iter().filter_map(Result::ok).collect();
    pb.finish_and_clear();
    tokio::time::sleep(Duration::from_secs_f64(a.hold.max(1.0))).await;
    let after = api.server_rss().await.context("no memory figure after connecting")?;
    let open = sockets.len();
    drop(sockets);
    let per = after.saturating_sub(before) as f64 / open.max(1) as f64;
    let report = json!({
        "test": "idle",
        "sessions": open,
        "failed": failed,
        "connect_s": connect_s,
        "server_rss_before_bytes": before,
        "server_rss_after_bytes": after,
        "bytes_per_session": per,
    });
    if a.common.json {
        println!("{report}");
    } else {
        println!("idle: {open} sessions open ({failed} failed) in {connect_s:.1} s");
        println!(
            "  server RSS {:.1} MiB → {:.1} MiB: {:.0} bytes ({:.1} KiB) per session",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            per,
            per / 1024.0
        );
    }
    Ok(())
}
