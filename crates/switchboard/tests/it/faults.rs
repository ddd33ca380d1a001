//! Storage faults while people send: nothing is acknowledged that was not committed.
//!
//! The real binary, on SQLite in a small tmpfs that fills up, and on PostgreSQL with its
//! connections cut again and again. Messages (WebSocket and REST) and alerts are sent
//! before, during and after the fault; then the server is killed (`kill -9`) and restarted. Every acknowledged message is in the history exactly once and in the
//! archive, whose chain verifies; every accepted alert is stored; everything refused said
//! `unavailable` and went through when sent again with the same client id.
//!
//! Mounting a tmpfs needs root (CI runs as root); the test says so if it cannot.

use crate::e2e::{archive_verify, next_of, temp_dir, ws, Server};
use crate::helpers::{drop_pg_database, fresh_pg_database};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A tmpfs of `mib` MiB, unmounted on drop.
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    pub(crate) fn mount(mib: u32) -> Tmpfs {
        let dir = temp_dir();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }

    /// Write a file until the disk is full.
    pub(crate) fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.flush();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Acked(i64),
    Unavailable,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Send one message over the WebSocket and wait for its ack or its error.
async fn ws_send(socket: &mut Socket, conversation: i64, client_id: &str, body: &str) -> Outcome {
    let frame = json!({"type": "send", "conversation": conversation, "body": body, "client_id": client_id});
    socket.send(Message::Text(frame.to_string().into())).await.unwrap();
    loop {
        let v = next_frame(socket).await;
        match v["type"].as_str() {
            Some("ack") if v["client_id"] == client_id => return Outcome::Acked(v["event"]["id"].as_i64().unwrap()),
            Some("error") if v["ref"] == client_id => {
                assert_eq!(v["code"], "unavailable", "a storage fault is `unavailable`: {v}");
                return Outcome::Unavailable;
            }
            _ => {}
        }
    }
}

async fn next_frame(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// POST `body` to `path`: the id of what was stored (2xx), or None for `503 unavailable`
/// (anything else fails the test).
async fn post_stored(base: &str, token: &str, path: &str, body: Value) -> Option<i64> {
    let r = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    match status {
        200 | 201 => Some(v["id"].as_i64().unwrap()),
        503 => {
            assert_eq!(v["error"]["code"], "unavailable", "{v}");
            None
        }
        s => panic!("POST {path}: {s} {v}"),
    }
}

/// Send one message over REST: 201 or 503 `unavailable`.
async fn rest_send(base: &str, token: &str, conversation: i64, client_id: &str, body: &str) -> Outcome {
    let path = format!("/api/v1/conversations/{conversation}/messages");
    match post_stored(base, token, &path, json!({"body": body, "client_id": client_id})).await {
        Some(id) => Outcome::Acked(id),
        None => Outcome::Unavailable,
    }
}

/// Send an alert to bob: its id when accepted, None when refused as unavailable.
async fn send_alert(base: &str, token: &str, title: &str) -> Option<i64> {
    let body = json!({"title": title, "audience": {"users": ["bob@example.com"]}, "dedup_key": title});
    post_stored(base, token, "/api/v1/alerts", body).await
}

async fn readyz(base: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

async fn wait_ready(base: &str, want: u16, within: Duration) -> String {
    let since = Instant::now();
    loop {
        let (status, body) = readyz(base).await;
        if status == want {
            return body;
        }
        assert!(since.elapsed() < within, "/readyz still {status} after {within:?}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The fault a scenario causes.
enum Fault<'a> {
    /// The tmpfs holding the SQLite database fills up (and is freed again).
    DiskFull(&'a Tmpfs),
    /// Every connection of the server to this PostgreSQL database is cut, every few sends.
    ConnectionsCut(&'a str),
}

impl Fault<'_> {
    async fn connections_cut(db: &str) {
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
    }
}

#[tokio::test]
async fn a_full_disk_acknowledges_nothing_it_did_not_store() {
    let disk = Tmpfs::mount(24);
    let dir = disk.0.clone();
    survive(&dir, &[], Fault::DiskFull(&disk)).await;
}

#[tokio::test]
async fn cut_database_connections_acknowledge_nothing_they_did_not_store() {
    let (url, name) = fresh_pg_database().await;
    let dir = temp_dir();
    survive(&dir, &["--database-url", &url], Fault::ConnectionsCut(&name)).await;
    drop_pg_database(&name).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Send before, during and after `fault`; kill -9; restart; check everything acknowledged.
async fn survive(dir: &Path, extra: &[&str], fault: Fault<'_>) {
    sqlx::any::install_default_drivers();
    let mut server = Server::start(dir, &[&["--demo"], extra].concat(), &[]);
    let alice = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let admin = server.login("admin@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let conv = server
        .call(&alice, "/api/v1/conversations", Some(json!({"kind": "direct", "members": ["bob@example.com"]})))
        .await["id"]
        .as_i64()
        .unwrap();
    let mut socket = ws(&server.addr, &alice).await;
    next_of(&mut socket, "ready").await;
    // Large enough that the WAL must grow for each batch.
    let body = |i: usize| format!("message {i} {}", "x".repeat(3000));

    let mut outcome: HashMap<String, Outcome> = HashMap::new();
    let mut alerts: Vec<i64> = Vec::new();
    for i in 0..20 {
        let id = format!("before-{i}");
        let o = ws_send(&mut socket, conv, &id, &body(i)).await;
        assert!(matches!(o, Outcome::Acked(_)), "{id}: {o:?}");
        outcome.insert(id, o);
    }
    alerts.push(send_alert(&server.base, &admin, "before").await.expect("alert before the disk fills"));

    // The fault comes. Keep sending by both doors until refusals come, and past them.
    let filler = match fault {
        Fault::DiskFull(disk) => Some(disk.fill()),
        Fault::ConnectionsCut(_) => None,
    };
    let mut refused = 0;
    for i in 0..300 {
        if let Fault::ConnectionsCut(db) = fault {
            if i % 4 == 0 {
                Fault::connections_cut(db).await;
            }
        }
        let id = format!("full-{i}");
        let o = if i % 3 == 0 {
            rest_send(&server.base, &alice, conv, &id, &body(i)).await
        } else {
            ws_send(&mut socket, conv, &id, &body(i)).await
        };
        if o == Outcome::Unavailable {
            refused += 1;
        }
        outcome.insert(id, o);
        if i % 20 == 0 {
            if let Some(a) = send_alert(&server.base, &admin, &format!("full-{i}")).await {
                alerts.push(a);
            }
        }
        if refused >= 40 {
            break;
        }
    }
    assert!(refused > 0, "the fault never reached the server");
    assert!(metric(&server.base, "switchboard_storage_write_failures_total").await >= 1.0);
    if let Some(filler) = filler {
        let why = wait_ready(&server.base, 503, Duration::from_secs(5)).await;
        assert!(why.contains("full") || why.contains("disk"), "readiness names the fault: {why}");
        assert_eq!(metric(&server.base, "switchboard_storage_write_fault").await, 1.0);
        // Space comes back.
        std::fs::remove_file(filler).unwrap();
    }
    // The server recovers by itself.
    wait_ready(&server.base, 200, Duration::from_secs(10)).await;
    assert_eq!(metric(&server.base, "switchboard_storage_write_fault").await, 0.0);
    // What was refused goes through when sent again with the same client id.
    let again: Vec<String> =
        outcome.iter().filter(|(_, o)| **o == Outcome::Unavailable).map(|(k, _)| k.clone()).collect();
    for id in again {
        let i: usize = id.trim_start_matches("full-").parse().unwrap();
        let o = ws_send(&mut socket, conv, &id, &body(i)).await;
        assert!(matches!(o, Outcome::Acked(_)), "{id} after space was freed: {o:?}");
        outcome.insert(id, o);
    }
    for i in 0..20 {
        let id = format!("after-{i}");
        let o = rest_send(&server.base, &alice, conv, &id, &body(i)).await;
        assert!(matches!(o, Outcome::Acked(_)), "{id}: {o:?}");
        outcome.insert(id, o);
    }
    alerts.push(send_alert(&server.base, &admin, "after").await.expect("alert after space was freed"));

    // kill -9, restart: every acknowledged message once, in the history and the archive.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let archived: Vec<i64> = {
        let url = match extra {
            ["--database-url", url] => url.to_string(),
            _ => format!("sqlite://{}", dir.join("switchboard.db").display()),
        };
        let db = sqlx::AnyPool::connect(&url).await.unwrap();
        let ids =
            sqlx::query_scalar("SELECT event_id FROM archive WHERE kind = 'message'").fetch_all(&db).await.unwrap();
        db.close().await;
        ids
    };
    let (ok, out) = archive_verify(dir, extra);
    assert!(ok && out.starts_with("archive verified:"), "{out}");

    let server = Server::start(dir, extra, &[]);
    let alice = server.login("alice@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let admin = server.login("admin@example.com", "demo").await["token"].as_str().unwrap().to_string();
    let h = server.call(&alice, &format!("/api/v1/conversations/{conv}/messages?limit=1000"), None).await;
    let mut stored: HashMap<String, Vec<i64>> = HashMap::new();
    for e in h["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "message") {
        stored.entry(e["client_id"].as_str().unwrap().to_string()).or_default().push(e["id"].as_i64().unwrap());
    }
    for (client_id, o) in &outcome {
        let Outcome::Acked(id) = o else { panic!("{client_id} was never acknowledged") };
        assert_eq!(stored.get(client_id), Some(&vec![*id]), "{client_id}: acknowledged as {id}, stored once");
        assert!(archived.contains(id), "{client_id} ({id}) is not in the archive");
    }
    assert_eq!(stored.len(), outcome.len(), "nothing stored that was not acknowledged");
    for a in alerts {
        let v = server.call(&admin, &format!("/api/v1/alerts/{a}"), None).await;
        assert_eq!(v["id"], a, "accepted alert {a} was lost: {v}");
    }
}

#[tokio::test]
async fn startup_on_a_full_disk_names_the_cause_last() {
    let disk = Tmpfs::mount(1);
    // The archive key is there (a first start made it): the database is what cannot be
    // written.
    std::fs::write(disk.0.join("archive.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    let _filler = disk.fill();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--demo", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(&disk.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && (last.contains("full") || last.contains("No space")), "last line: {last}");
}
