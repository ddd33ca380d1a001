//! End-to-end tests of the built binary: start it, wait for it, kill it.

use crate::helpers::{drop_pg_database, fresh_pg_database, unique};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard serve`; killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) addr: String,
    /// The server's stderr, read as it comes (a full pipe would stall the server).
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub(crate) fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--http", "127.0.0.1:0", "--data-dir"]).arg(dir).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start switchboard");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Server { child, base: format!("http://{addr}"), addr, log }
    }

    /// What the server wrote to stderr so far (call after it exited for all of it).
    pub(crate) fn stderr(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(50)); // the reader thread catches up
        self.log.lock().unwrap().clone()
    }

    pub(crate) async fn login(&self, who: &str, password: &str) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"address": who, "password": password}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "login {who}: {}", r.status());
        r.json().await.unwrap()
    }

    /// A signed-in request: `body` None for GET, Some for a JSON POST; the answer's JSON.
    pub(crate) async fn call(&self, token: &str, path: &str, body: Option<Value>) -> Value {
        let http = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let req = match body {
            Some(b) => http.post(url).json(&b),
            None => http.get(url),
        };
        req.bearer_auth(token).send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(unique("sbe2e"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig}");
}

/// The exit status, which must come within `limit` of `since`.
async fn exit_within(child: &mut Child, since: Instant, limit: Duration) -> std::process::ExitStatus {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(since.elapsed() < limit, "still running {limit:?} after the signal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn ws(
    addr: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{addr}/api/v1/ws").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

pub(crate) async fn next_of(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    kind: &str,
) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {kind} frame: {other:?}"),
        }
    }
}

/// A message acknowledged over the WebSocket is in the history after `kill -9` and restart.
async fn acknowledged_message_survives_kill_9(extra: &[&str]) {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &[&["--demo"], extra].concat(), &[]);
    let alice = server.login("alice@example.com", "demo").await;
    let token = alice["token"].as_str().unwrap().to_string();
    let conv = server
        .call(&token, "/api/v1/conversations", Some(json!({"kind": "direct", "members": ["bob@example.com"]})))
        .await;
    let conv = conv["id"].as_i64().unwrap();
    let mut socket = ws(&server.addr, &token).await;
    next_of(&mut socket, "ready").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        socket.send(Message::Text(json!({"type": "send", "conversation": conv, "body": format!("durable {i}"), "client_id": format!("k{i}")}).to_string().into())).await.unwrap();
    }
    while acked.len() < 20 {
        let ack = next_of(&mut socket, "ack").await;
        acked.push(ack["event"]["id"].as_i64().unwrap());
    }
    // The moment the last ack is read: SIGKILL, no chance to flush anything.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Every acknowledged message is in the archive, and the chain holds.
    let db_url = match extra {
        ["--database-url", url] => url.to_string(),
        _ => format!("sqlite://{}", dir.join("switchboard.db").display()),
    };
    let archived: Vec<i64> = {
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&db_url).await.unwrap();
        let ids =
            sqlx::query_scalar("SELECT event_id FROM archive WHERE kind = 'message'").fetch_all(&db).await.unwrap();
        db.close().await;
        ids
    };
    for id in &acked {
        assert!(archived.contains(id), "acknowledged message {id} not archived after kill -9");
    }
    let (ok, out) = archive_verify(&dir, extra);
    assert!(ok && out.starts_with("archive verified:"), "{out}");

    let server = Server::start(&dir, extra, &[]);
    let token = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let h = server.call(&token, &format!("/api/v1/conversations/{conv}/messages?limit=100"), None).await;
    let stored: Vec<i64> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged message {id} lost after kill -9");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// `switchboard archive verify` on a data folder: (exit 0?, its output).
pub(crate) fn archive_verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(["archive", "--data-dir"]).arg(dir).args(extra).arg("verify").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Direct edits to the archive's tables, behind the server's back, are each caught.
#[tokio::test]
async fn archive_verify_catches_edits_behind_the_servers_back() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    let alice = server.login("alice@example.com", "demo").await;
    let token = alice["token"].as_str().unwrap().to_string();
    let conv = server
        .call(&token, "/api/v1/conversations", Some(json!({"kind": "direct", "members": ["bob@example.com"]})))
        .await["id"]
        .as_i64()
        .unwrap();
    for i in 0..8 {
        let sent = server
            .call(&token, &format!("/api/v1/conversations/{conv}/messages"), Some(json!({"body": format!("note {i}")})))
            .await;
        assert!(sent["id"].is_i64(), "{sent}");
    }
    signal(&server.child, "-TERM");
    exit_within(&mut server.child, Instant::now(), Duration::from_secs(10)).await;
    let (ok, out) = archive_verify(&dir, &[]);
    assert!(ok, "{out}");
    let records: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(records >= 9, "created + 8 messages: {out}");
    // Compliance officers' command line: search and export.
    let cli = |args: &[&str]| {
        let out = Command::new(BIN).args(["archive", "--data-dir"]).arg(&dir).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let found = cli(&["search", "--q", "note", "--participant", "alice@example.com", "--limit", "3"]);
    assert_eq!(found.lines().count(), 3, "{found}");
    assert!(found.lines().all(|l| l.contains("[note]") && l.contains("alice@example.com")), "{found}");
    let csv = cli(&["export", "--format", "csv", "--conversation", &conv.to_string()]);
    assert!(csv.starts_with("conversation,conversation_kind,") && csv.contains("note 7"), "{csv}");

    let tamper = |name: &'static str, sql: &'static [&'static str], expect: &'static str| {
        let copy = dir.with_file_name(format!("{}-{name}", dir.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir_all(&copy).unwrap();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
        }
        async move {
            sqlx::any::install_default_drivers();
            let db =
                sqlx::AnyPool::connect(&format!("sqlite://{}", copy.join("switchboard.db").display())).await.unwrap();
            for stmt in sql {
                sqlx::query(stmt).execute(&db).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
            }
            db.close().await;
            let (ok, out) = archive_verify(&copy, &[]);
            assert!(!ok, "{name}: not caught: {out}");
            assert!(out.contains(expect), "{name}: {out}");
            let _ = std::fs::remove_dir_all(&copy);
        }
    };
    tamper("changed", &["UPDATE archive SET body = 'note 3, edited' WHERE body = 'note 3'"], "was changed").await;
    tamper("removed", &["DELETE FROM archive WHERE body = 'note 4'"], "was removed").await;
    tamper(
        "inserted",
        &["INSERT INTO archive (id, ts, kind, conversation_id, conversation_kind, event_id, actor, body, meta, content_hash, prev_hash, hash) \
           SELECT id + 1000, ts, kind, conversation_id, conversation_kind, event_id, actor, 'forged', meta, content_hash, hash, hash FROM archive \
           WHERE id = (SELECT MAX(id) FROM archive)",
          "UPDATE archive SET id = (SELECT MAX(id) FROM archive WHERE id < 1000) + 1 WHERE id > 1000"],
        "record",
    )
    .await;
    tamper(
        "reordered",
        &[
            "UPDATE archive SET id = -1 WHERE body = 'note 5'",
            "UPDATE archive SET id = (SELECT id FROM archive WHERE body = 'note 6') - 1 WHERE body = 'note 6'",
            "UPDATE archive SET id = (SELECT id FROM archive WHERE body = 'note 6') + 1 WHERE id = -1",
        ],
        "record",
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn kill_9_loses_nothing_acknowledged_sqlite() {
    acknowledged_message_survives_kill_9(&[]).await;
}

#[tokio::test]
async fn kill_9_loses_nothing_acknowledged_postgres() {
    let (url, name) = fresh_pg_database().await;
    acknowledged_message_survives_kill_9(&["--database-url", &url]).await;
    drop_pg_database(&name).await;
}

#[tokio::test]
async fn sigterm_tells_clients_and_exits_zero_within_ten_seconds() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    let token = server.login("bob@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let mut socket = ws(&server.addr, &token).await;
    next_of(&mut socket, "ready").await;
    let started = Instant::now();
    signal(&server.child, "-TERM");
    let closing = next_of(&mut socket, "closing").await;
    assert_eq!(closing["reason"], "server shutting down");
    let status = exit_within(&mut server.child, started, Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    let log = server.stderr();
    assert!(log.contains("stopped"), "{log}");
    // Nothing stale: the same folder starts again at once.
    let again = Server::start(&dir, &[], &[]);
    again.login("bob@example.com", "demo").await;
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn first_run_creates_an_admin_and_healthcheck_reports_ready() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &[], &[("SWITCHBOARD_ADMIN_PASSWORD", "s3cret-admin")]);
    server.login("admin@example.com", "s3cret-admin").await;
    let ok = Command::new(BIN).args(["healthcheck", "--url", &server.base]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // `admin` works beside the running server, and the server sees the change at once.
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["user", "add", "nina@example.com", "--name", "Nina N", "--password", "nina-pw", "--role", "expert"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let nina = server.login("nina@example.com", "nina-pw").await;
    assert_eq!(nina["user"]["roles"], json!(["user", "expert"]));
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["user", "disable", "nina@example.com"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(nina["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "a disabled user's sessions end");
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["app", "create", "nagios", "--scope", "alerts:send"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text.lines().find_map(|l| l.strip_prefix("token: ")).expect("token printed");
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["application"], "nagios");
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let down = Command::new(BIN).args(["healthcheck", "--url", &server.base]).output().unwrap();
    assert!(!down.status.success(), "healthcheck fails when the server is down");

    // Without the variable, a one-time password is printed once.
    let dir2 = temp_dir();
    let mut fresh = Server::start(&dir2, &[], &[]);
    fresh.child.kill().unwrap();
    let _ = fresh.child.wait();
    let log = fresh.stderr();
    let password = log
        .lines()
        .find_map(|l| l.split("one-time password").nth(1))
        .map(|p| p.trim().to_string())
        .expect("password printed");
    let again = Server::start(&dir2, &[], &[]);
    again.login("admin@example.com", &password).await;
    drop(again);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(dir2);
}

#[tokio::test]
async fn config_check_validates_and_redacts() {
    let dir = temp_dir();
    let file = dir.join("sb.toml");
    std::fs::write(
        &file,
        "domain = \"corp.example\"\ndatabase_url = \"postgres://sb:hunter2@db/sb\"\nshoe_size = 44\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["config", "check", "--config"]).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("corp.example") && stdout.contains("sb:***@db") && !stdout.contains("hunter2"), "{stdout}");
    assert!(stderr.contains("shoe_size"), "unknown keys are warned about: {stderr}");
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&file)
        .env("SWITCHBOARD_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let dir = temp_dir();
    let server = Server::start(&dir, &["--demo"], &[]);
    let token = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let mut socket = ws(&server.addr, &token).await;
    next_of(&mut socket, "ready").await;
    let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/test.sh (Debian package prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("switchboard_ws_connections 1"));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_closed_log_stream_does_not_stop_the_server() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    drop(server.child.stderr.take()); // whoever read the logs went away
    server.login("alice@example.com", "demo").await;
    let ready = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert!(ready.status().is_success());
    // Shutting down logs several lines into the closed pipe; it must still exit cleanly.
    signal(&server.child, "-TERM");
    let status = exit_within(&mut server.child, Instant::now(), Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?} with a closed stderr");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Poll the legacy status until it answers `want` (the server reloads queues every 2 s).
async fn legacy_until(base: &str, query: &str, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..80 {
        got = reqwest::get(format!("{base}/ITFramework/webclient?{query}")).await.unwrap().text().await.unwrap();
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test]
async fn admin_manages_queues_beside_the_running_server() {
    let dir = temp_dir();
    let server = Server::start(&dir, &["--demo"], &[]);
    let admin = |args: &[&str]| {
        let out = Command::new(BIN).args(["admin", "--data-dir"]).arg(&dir).arg("queue").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    admin(&["add", "helpdesk", "--name", "Help Desk", "--method", "serial", "--member", "carol@example.com"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=Help%20Desk", "STATUS_AWAY").await, "STATUS_AWAY");
    admin(&["set", "helpdesk", "--closed", "true"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "STATUS_DND").await, "STATUS_DND");
    admin(&["set", "helpdesk", "--closed", "false"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "STATUS_AWAY").await, "STATUS_AWAY");
    // Business hours with no open span: closed whatever the time.
    admin(&["set", "helpdesk", "--hours", r#"{"tz":"Europe/Berlin","weekly":[]}"#, "--no-expert", "offline_message"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "STATUS_DND").await, "STATUS_DND");
    admin(&["set", "helpdesk", "--hours", "none", "--wrap-up-tags", "solved, escalated", "--wrap-up", "30"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "STATUS_AWAY").await, "STATUS_AWAY");
    admin(&["set", "helpdesk", "--closed", "true"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "STATUS_DND").await, "STATUS_DND");
    let refused = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["queue", "set", "helpdesk", "--overflow", "queue:nowhere"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no other queue nowhere"), "{refused:?}");
    admin(&["add-member", "helpdesk", "dave@example.com", "--priority", "2"]);
    let list = admin(&["list"]);
    assert!(
        list.contains("helpdesk\tHelp Desk\thelpdesk@example.com\tserial\tclosed\tcarol@example.com dave@example.com"),
        "{list}"
    );
    admin(&["remove", "helpdesk"]);
    assert_eq!(legacy_until(&server.base, "getSTStatus=helpdesk", "na").await, "na");
    let bad = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["queue", "add", "x", "--method", "psychic"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown routing method"));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn queue_load_test_loses_no_chat() {
    let dir = temp_dir();
    let server = Server::start(&dir, &["--demo"], &[("SWITCHBOARD_LIMITS__PUBLIC_REQUESTS_PER_MINUTE", "100000")]);
    let out = Command::new(BIN)
        .args(["loadtest", "queues", "--url", &server.base, "--queues", "2", "--experts", "4", "--seekers", "4"])
        .args(["--arrival-rate", "10", "--api-rps", "20", "--duration", "2", "--handle-ms", "50", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["requested"].as_u64().unwrap() >= 15, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["assigned"], report["requested"], "{report}");
    assert_eq!(report["request_errors"], 0, "{report}");
    assert_eq!(report["status_api"]["errors"], 0, "{report}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn waiting_queue_chats_survive_a_restart() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    let judy = server.login("judy@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let mut j = ws(&server.addr, &judy).await;
    next_of(&mut j, "ready").await;
    // Judy is signed in but busy: the chat waits.
    j.send(Message::Text(json!({"type": "presence", "state": "busy"}).to_string().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let v = server.call(&alice, "/api/v1/queues/support/chats", Some(json!({"question": "after the crash?"}))).await;
    assert_eq!(v["state"], "waiting", "{v}");
    let chat = v["chat"].as_i64().unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(j);

    let server = Server::start(&dir, &[], &[]);
    let alice = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let view = server.call(&alice, &format!("/api/v1/queue-chats/{chat}"), None).await;
    assert_eq!(view["state"], "waiting", "restored: {view}");
    let judy = server.login("judy@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let mut j = ws(&server.addr, &judy).await;
    let offer = next_of(&mut j, "queue_offer").await;
    assert_eq!((offer["chat"].as_i64(), offer["question"].as_str()), (Some(chat), Some("after the crash?")));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// `kill -9` as soon as the first recipient has the alert, while (or just after) it fans out
/// to the others: after the restart every recipient has it exactly once — those who were
/// away, or whose delivery was cut off, get it when they reconnect. `switchboard alert send`
/// is the sender.
#[tokio::test]
async fn a_restart_mid_fan_out_loses_and_duplicates_no_alert() {
    let dir = temp_dir();
    let env = [("SWITCHBOARD_LIMITS__MAX_CONNECTIONS_PER_ADDRESS", "2000")];
    let mut server = Server::start(&dir, &["--demo"], &env);
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["app", "create", "pager", "--scope", "alerts:send"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).split_whitespace().last().unwrap().to_string();
    let admin = server.login("admin@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let mut people = Vec::new();
    for i in 0..60 {
        let address = format!("r{i}@example.com");
        server
            .call(&admin, "/api/v1/admin/users", Some(json!({"address": address, "display_name": format!("R {i}")})))
            .await;
        let t = server.call(&admin, "/api/v1/admin/sessions", Some(json!({"address": address}))).await;
        people.push((address, t["token"].as_str().unwrap().to_string()));
    }
    let mut sockets = Vec::new();
    for (_, t) in &people[..40] {
        let mut s = ws(&server.addr, t).await;
        next_of(&mut s, "ready").await;
        sockets.push(s);
    }
    // Send (by the command line), and kill the server while it fans out.
    let to: Vec<String> = people.iter().flat_map(|(a, _)| ["--to".to_string(), a.clone()]).collect();
    let sender = Command::new(BIN)
        .args(["alert", "send", "--url", &server.base, "--title", "restart test", "--priority", "urgent"])
        .args(&to)
        .env("SWITCHBOARD_ALERT_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first frames reaching a recipient mean the fan-out is under way.
    next_of(&mut sockets[0], "event").await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = sender.wait_with_output();
    drop(sockets);

    let server = Server::start(&dir, &[], &env);
    let stored = {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/alerts", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["alerts"].as_array().unwrap().len()
    };
    assert_eq!(stored, 1, "the alert was stored before anything was sent");
    // Everyone signs in again; held deliveries go out; each history holds it once.
    let mut sockets = Vec::new();
    for (_, t) in &people {
        let mut s = ws(&server.addr, t).await;
        next_of(&mut s, "ready").await;
        sockets.push(s);
    }
    for (address, t) in &people {
        let mut copies = 0;
        for _ in 0..100 {
            let list = server.call(t, "/api/v1/conversations", None).await;
            copies = 0;
            for c in list["conversations"].as_array().unwrap() {
                let h = server.call(t, &format!("/api/v1/conversations/{}/messages?limit=100", c["id"]), None).await;
                copies += h["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["body"].as_str().is_some_and(|b| b.starts_with("[URGENT] restart test")))
                    .count();
            }
            if copies > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(copies, 1, "{address} has the alert {copies} times");
    }
    drop(sockets);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
