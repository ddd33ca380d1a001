//! The mailbox listener against a real Dovecot (Debian's dovecot-imapd and dovecot-pop3d,
//! a private instance on loopback started by scripts/dovecot-test.sh): mail becomes alerts
//! that reach signed-in people within seconds; refused senders are logged and kept out;
//! a mail is removed or flagged only after its alert is stored, and a mail seen again
//! (as after a crash or a dropped connection before it was removed) never makes a
//! second alert.

use crate::backend_tests;
use crate::helpers::*;
use sb_core::alerts::Audience;
use sb_mail::{After, MailboxConfig, Protocol, TlsMode};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Dovecot {
    dir: PathBuf,
    ports: std::collections::HashMap<String, String>,
}

impl Dovecot {
    fn start(tls: bool) -> Dovecot {
        let dir = std::env::temp_dir().join(unique("dovecot"));
        let mut args = vec!["start", dir.to_str().unwrap()];
        if tls {
            args.push("tls");
        }
        let out = harness("dovecot-test.sh", &args);
        let ports = out
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Dovecot { dir, ports }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports[name].parse().unwrap()
    }

    fn deliver(&self, user: &str, mail: &str) {
        let file = self.dir.join(unique("mail"));
        std::fs::write(&file, mail).unwrap();
        harness("dovecot-test.sh", &["deliver", self.dir.to_str().unwrap(), user, file.to_str().unwrap()]);
    }

    /// Run doveadm against this instance; its output.
    fn doveadm(&self, args: &[&str]) -> String {
        let conf = self.dir.join("dovecot.conf");
        let out = std::process::Command::new("doveadm").arg("-c").arg(&conf).args(args).output().expect("doveadm runs");
        assert!(out.status.success(), "doveadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Mails in `user`'s INBOX (with the given search, e.g. `keyword $SwitchboardAlert`).
    fn count(&self, user: &str, search: &[&str]) -> usize {
        let mut args = vec!["search", "-u", user, "mailbox", "INBOX"];
        args.extend_from_slice(search);
        if search.is_empty() {
            args.push("all");
        }
        self.doveadm(&args).lines().filter(|l| !l.trim().is_empty()).count()
    }

    /// Drop every IMAP and POP3 session of this instance (its master's children), as a
    /// network failure would; the master keeps listening on the same ports.
    fn drop_sessions(&self) {
        let pid = std::fs::read_to_string(self.dir.join("run/master.pid"))
            .or_else(|_| {
                let base = std::fs::read_to_string(self.dir.join("base_dir")).unwrap();
                std::fs::read_to_string(PathBuf::from(base.trim()).join("master.pid"))
            })
            .unwrap();
        for name in ["imap", "pop3"] {
            let _ = std::process::Command::new("pkill").args(["-KILL", "-P", pid.trim(), "-x", name]).status();
        }
    }

    /// `doveadm kick`: Dovecot sends `* BYE` to every session of `user` and closes it.
    /// Whether anyone was kicked.
    fn kick(&self, user: &str) -> bool {
        let conf = self.dir.join("dovecot.conf");
        let out = std::process::Command::new("doveadm").arg("-c").arg(&conf).args(["kick", user]).output().unwrap();
        out.status.success()
    }

    fn stop(self) {
        harness("dovecot-test.sh", &["stop", self.dir.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mail(from: &str, id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Monitoring <{from}>\r\nTo: alerts@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}@monitor.example.com>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn mailbox(name: &str, protocol: Protocol, port: u16) -> MailboxConfig {
    MailboxConfig {
        name: name.into(),
        protocol,
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        user: "alerts".into(),
        password: "secret".into(),
        allowed_senders: vec!["@monitor.example.com".into()],
        audience: Audience { groups: vec!["engineering".into()], ..Audience::default() },
        ..MailboxConfig::default()
    }
}

/// Wait until `f` holds (checked every 50 ms, for up to 15 s).
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn until_status(app: &TestApp, name: &str, state: &str) -> sb_service::alerts::MailboxStatus {
    let mut last = None;
    for _ in 0..300 {
        last = app.service.mailboxes().into_iter().find(|m| m.name == name);
        if last.as_ref().is_some_and(|m| m.state == state) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mailbox {name} never reached {state}: {last:?}");
}

async fn alerts_from(app: &TestApp, source: &str) -> usize {
    app.service.alerts_list(Some(source), None, 100).await.unwrap().len()
}

backend_tests! {
    async fn imap_mail_becomes_an_alert_at_once_and_refused_mail_stays_out(app) {
        let dovecot = Dovecot::start(false);
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        // Polling once an hour: only IDLE can bring the mail in within seconds.
        let config = MailboxConfig { poll_interval_s: 3600, ..mailbox("ops", Protocol::Imap, dovecot.port("IMAP_PORT")) };
        let stop = CancellationToken::new();
        sb_mail::spawn(app.service.clone(), vec![config], stop.clone());
        until_status(&app, "ops", "idle").await;

        dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "m1", "Disk full on db1", "/var at 98% <script>alert(1)</script>"));
        let frame = a.next_where(|f| f["type"] == "alert").await.expect("the mail reaches alice within seconds");
        assert_eq!(frame["title"], "Disk full on db1");
        assert_eq!(frame["body"], "/var at 98% <script>alert(1)</script>", "kept as text; the web client escapes it");
        assert_eq!(frame["priority"], "normal");
        let id = frame["id"].as_i64().unwrap();
        let (alert, deliveries) = app.service.alert_with_deliveries(id).await.unwrap();
        assert_eq!(alert.alert.source, "mail:ops");
        assert_eq!(deliveries.len(), 5, "the mailbox's default audience: engineering");
        until("the mail is removed from the server", || dovecot.count("alerts", &[]) == 0).await;

        // A sender not on the allow-list: refused, logged, kept (flagged) on the server.
        dovecot.deliver("alerts", &mail("mallory@evil.example", "m2", "Send money", "now"));
        let mut refused = Vec::new();
        for _ in 0..300 {
            refused = app.service.mail_intakes(Some("ops"), 10).await.unwrap();
            if refused.iter().any(|i| i.outcome == "refused") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = refused.iter().find(|i| i.outcome == "refused").expect("the refusal is recorded");
        assert_eq!((r.sender.as_str(), r.subject.as_str()), ("mallory@evil.example", "Send money"));
        assert!(r.detail.contains("not on the mailbox's allow-list"), "{}", r.detail);
        until("the refused mail is flagged", || dovecot.count("alerts", &["keyword", "$SwitchboardRefused"]) == 1).await;
        assert_eq!(alerts_from(&app, "mail:ops").await, 1, "no alert from a refused sender");

        // An XML body sets audience, priority and acknowledgement.
        let xml = "<alert><title>DB primary down</title><priority>urgent</priority><ack_required>true</ack_required>\
                   <audience><user>alice@example.com</user></audience></alert>";
        dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "m3", "ignored subject", xml));
        let urgent = a.next_where(|f| f["type"] == "alert" && f["title"] == "DB primary down").await.expect("the XML alert");
        assert_eq!((urgent["priority"].as_str(), urgent["ack_required"].as_bool()), (Some("urgent"), Some(true)));
        let (_, deliveries) = app.service.alert_with_deliveries(urgent["id"].as_i64().unwrap()).await.unwrap();
        assert_eq!(deliveries.len(), 1, "only the audience the XML names");

        // The connection drops: the listener reconnects and IDLE picks up the next mail.
        dovecot.drop_sessions();
        tokio::time::sleep(Duration::from_millis(300)).await;
        until_status(&app, "ops", "idle").await;
        dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "m4", "After the drop", "still here"));
        a.next_where(|f| f["type"] == "alert" && f["title"] == "After the drop").await.expect("mail after a dropped connection");

        // The admin API shows the listener and what became of each mail.
        let admin = app.login("admin").await;
        let (status, v): (_, Value) = admin.get("/api/v1/alerts/mailboxes?mailbox=ops").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["mailboxes"][0]["name"], "ops");
        assert_eq!(v["mailboxes"][0]["alerts"], 3, "{v}");
        assert_eq!(v["mailboxes"][0]["refused"], 1, "{v}");
        let outcomes: Vec<&str> = v["mails"].as_array().unwrap().iter().map(|m| m["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes.len(), 4, "{v}");
        let (status, _) = alice.get("/api/v1/alerts/mailboxes").await;
        assert_eq!(status, 403, "administrators only");
        stop.cancel();
        until_status(&app, "ops", "stopped").await;
        dovecot.stop();
    }

    async fn a_mail_seen_again_never_makes_a_second_alert(app) {
        let dovecot = Dovecot::start(false);
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        // Flag mode, polling every second (no IDLE).
        let config = MailboxConfig {
            after: After::Flag,
            idle: false,
            poll_interval_s: 1,
            ..mailbox("flagged", Protocol::Imap, dovecot.port("IMAP_PORT"))
        };
        let stop = CancellationToken::new();
        sb_mail::spawn(app.service.clone(), vec![config], stop.clone());
        until_status(&app, "flagged", "polling").await;
        dovecot.deliver("alerts", &mail("zabbix@monitor.example.com", "f1", "Queue backlog", "42 jobs"));
        a.next_where(|f| f["type"] == "alert" && f["title"] == "Queue backlog").await.expect("the alert");
        until("the mail is flagged as taken", || dovecot.count("alerts", &["keyword", "$SwitchboardAlert"]) == 1).await;
        assert_eq!(dovecot.count("alerts", &["seen"]), 1, "and marked seen");

        // As if the server had stopped after storing the alert but before flagging the mail:
        // the flag goes, the mail is found again — and only flagged again.
        dovecot.doveadm(&["flags", "remove", "-u", "alerts", "$SwitchboardAlert", "mailbox", "INBOX", "all"]);
        assert_eq!(dovecot.count("alerts", &["keyword", "$SwitchboardAlert"]), 0);
        until("the mail is flagged again", || dovecot.count("alerts", &["keyword", "$SwitchboardAlert"]) == 1).await;
        // And the same mail delivered twice (a retrying sender; a POP3 session cut before QUIT).
        dovecot.deliver("alerts", &mail("zabbix@monitor.example.com", "f1", "Queue backlog", "42 jobs"));
        until("the copy is flagged", || dovecot.count("alerts", &["keyword", "$SwitchboardAlert"]) == 2).await;
        let extra: Vec<Value> = a.drain(500).await.into_iter().filter(|f| f["type"] == "alert").collect();
        assert!(extra.is_empty(), "no second alert: {extra:?}");
        assert_eq!(alerts_from(&app, "mail:flagged").await, 1);
        stop.cancel();
        dovecot.stop();
    }
}

backend_tests! {
    async fn a_taken_mail_left_deleted_by_a_kill_is_expunged(app) {
        // The server was killed between flagging a taken mail \Deleted and expunging it: the
        // next connection expunges it (its intake record says it was taken), makes no second
        // alert, and leaves another client's \Deleted mail alone.
        let dovecot = Dovecot::start(false);
        let config = MailboxConfig { idle: false, poll_interval_s: 1, ..mailbox("left", Protocol::Imap, dovecot.port("IMAP_PORT")) };
        // What the killed server did before STORE: read the mail and take it (the alert and
        // the intake record, in one transaction) — then STORE +FLAGS (\Deleted), and no more.
        let taken = mail("nagios@monitor.example.com", "d1", "Taken before the kill", "one");
        let read = sb_mail::message::read_mail(taken.as_bytes(), &config, false, app.service.now());
        let (intake, new) = app.service.take_mail(read.intake, read.alert).await.unwrap();
        assert!(new && intake.outcome == "alert", "{intake:?}");
        dovecot.deliver("alerts", &taken);
        dovecot.doveadm(&["flags", "add", "-u", "alerts", "\\Deleted", "mailbox", "INBOX", "all"]);
        // Another client's mail, deleted by it and not expunged yet: not ours to expunge.
        dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "d2", "Someone else's", "two"));
        dovecot.doveadm(&["flags", "add", "-u", "alerts", "\\Deleted", "mailbox", "INBOX", "header", "Message-ID", "d2@"]);
        assert_eq!(dovecot.count("alerts", &["deleted"]), 2);

        let stop = CancellationToken::new();
        sb_mail::spawn(app.service.clone(), vec![config], stop.clone());
        until("the taken mail is expunged", || dovecot.count("alerts", &[]) == 1).await;
        // A few more rounds: the other client's mail stays, nothing else happens.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(dovecot.count("alerts", &["header", "Message-ID", "d2@"]), 1, "another client's deleted mail is kept");
        assert_eq!(alerts_from(&app, "mail:left").await, 1, "no second alert");
        let status = app.service.mailboxes().into_iter().find(|m| m.name == "left").unwrap();
        assert_eq!((status.state.as_str(), status.alerts, status.connects), ("polling", 0, 1), "{status:?}");
        stop.cancel();
        dovecot.stop();
    }
}

backend_tests! {
    async fn old_intake_records_are_pruned(app) {
        let now = app.service.now();
        let record = |key: &str, at: i64| sb_core::alerts::MailIntake {
            mailbox: "prune".into(), key: key.into(), sender: "a@monitor.example.com".into(), subject: "s".into(),
            outcome: String::new(), alert: None, detail: String::new(), at,
        };
        let month = sb_service::alerts::MAIL_INTAKE_DAYS * 86_400_000;
        let (old, new) = app.service.take_mail(record("id:old", now - month - 60_000), Err("refused for the test".into())).await.unwrap();
        assert!(new && old.outcome == "refused");
        app.service.take_mail(record("id:recent", now - 60_000), Err("refused for the test".into())).await.unwrap();
        assert_eq!(app.service.prune_mail_intake().await.unwrap(), 1);
        let left: Vec<String> = app.service.mail_intakes(Some("prune"), 10).await.unwrap().into_iter().map(|i| i.key).collect();
        assert_eq!(left, vec!["id:recent".to_string()]);
    }
}

/// POP3 with STLS, IMAP over TLS from the first byte, both checking the server's
/// certificate against the mailbox's CA file; a server the CA does not vouch for is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_and_tls_mailboxes() {
    let app = TestApp::start(Backend::Sqlite, Default::default()).await;
    let dovecot = Dovecot::start(true);
    let ca = dovecot.ports["CA"].clone();
    let alice = app.login("alice").await;
    let mut a = alice.ws_with("presence=none").await;
    let pop = MailboxConfig {
        tls: TlsMode::Starttls,
        ca_file: ca.clone(),
        poll_interval_s: 1,
        max_mail_bytes: 4096,
        priority: "high".into(),
        ..mailbox("pop", Protocol::Pop3, dovecot.port("POP3_PORT"))
    };
    let imaps = MailboxConfig {
        tls: TlsMode::Tls,
        ca_file: ca.clone(),
        user: "other".into(),
        ..mailbox("imaps", Protocol::Imap, dovecot.port("IMAPS_PORT"))
    };
    // The system's roots do not include the test's self-signed certificate.
    let untrusted =
        MailboxConfig { tls: TlsMode::Tls, ..mailbox("untrusted", Protocol::Imap, dovecot.port("IMAPS_PORT")) };
    let stop = CancellationToken::new();
    sb_mail::spawn(app.service.clone(), vec![pop, imaps, untrusted], stop.clone());

    dovecot.deliver("alerts", &mail("cron@monitor.example.com", "p1", "Backup failed", "nightly backup: exit 2"));
    let f = a.next_where(|f| f["type"] == "alert" && f["title"] == "Backup failed").await.expect("the POP3 alert");
    assert_eq!(f["priority"], "high", "the mailbox's default priority");
    until("POP3 deleted the mail", || dovecot.count("alerts", &[]) == 0).await;

    // Too large: refused (its headers are read for the record) and deleted.
    let big = mail("cron@monitor.example.com", "p2", "Huge log", &"x".repeat(10_000));
    dovecot.deliver("alerts", &big);
    until("the big mail is deleted", || dovecot.count("alerts", &[]) == 0).await;
    let intakes = app.service.mail_intakes(Some("pop"), 10).await.unwrap();
    let r = intakes.iter().find(|i| i.subject == "Huge log").expect("recorded");
    assert!(r.outcome == "refused" && r.detail.contains("larger than max_mail_bytes"), "{r:?}");

    // The same mail again (POP3 deletions are undone when a session is cut before QUIT).
    dovecot.deliver("alerts", &mail("cron@monitor.example.com", "p1", "Backup failed", "nightly backup: exit 2"));
    until("the copy is deleted", || dovecot.count("alerts", &[]) == 0).await;
    assert_eq!(alerts_from(&app, "mail:pop").await, 1, "one alert for one mail");

    dovecot.deliver("other", &mail("cron@monitor.example.com", "i1", "Cert expiring", "in 5 days"));
    a.next_where(|f| f["type"] == "alert" && f["title"] == "Cert expiring").await.expect("the IMAPS alert");
    until("IMAPS removed the mail", || dovecot.count("other", &[]) == 0).await;

    let bad = until_status(&app, "untrusted", "error").await;
    assert!(bad.last_error.to_lowercase().contains("certificate"), "{}", bad.last_error);
    stop.cancel();
    dovecot.stop();
    app.finish().await;
}

/// A configuration file with one IMAP mailbox, `ops`, on this Dovecot, for alice.
fn ops_config(dir: &std::path::Path, dovecot: &Dovecot) -> PathBuf {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerts.mailbox]]\nname = \"ops\"\nprotocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             user = \"alerts\"\npassword = \"secret\"\nallowed_senders = [\"@monitor.example.com\"]\n\
             audience = {{ users = [\"alice@example.com\"] }}\npriority = \"high\"\n",
            dovecot.port("IMAP_PORT")
        ),
    )
    .unwrap();
    config
}

/// The titles of the alerts the mailbox `ops` made, sorted (as the administrator, signed
/// in once: signing in writes, which a full disk refuses).
async fn titles(server: &crate::e2e::Server) -> Vec<String> {
    let admin = server.login("admin@example.com", "demo").await;
    titles_as(server, admin["token"].as_str().unwrap()).await
}

async fn titles_as(server: &crate::e2e::Server, admin: &str) -> Vec<String> {
    let v = server.call(admin, "/api/v1/alerts?source=mail:ops", None).await;
    let mut t: Vec<String> =
        v["alerts"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap().to_string()).collect();
    t.sort();
    t
}

/// The binary with `[[alerts.mailbox]]` in its configuration file: mail becomes alerts; the
/// server is killed (-9), mail arrives while it is down, and after a restart that mail
/// becomes an alert too — once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_mail_across_a_kill() {
    use crate::e2e::Server;
    use std::process::Command;
    let dovecot = Dovecot::start(false);
    let dir = std::env::temp_dir().join(unique("sbmail"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = ops_config(&dir, &dovecot);
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && shown.contains("[[alerts.mailbox]]"), "{shown}");
    assert!(!shown.contains("secret"), "the password is redacted: {shown}");

    let start = || Server::start(&dir, &["--demo", "--config", config.to_str().unwrap()], &[]);

    let mut server = start();
    dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "k1", "Before the kill", "one"));
    until("the first mail is taken", || dovecot.count("alerts", &[]) == 0).await;
    assert_eq!(titles(&server).await, vec!["Before the kill"]);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "k2", "While it was down", "two"));
    let server = start();
    until("the mail sent while down is taken", || dovecot.count("alerts", &[]) == 0).await;
    assert_eq!(titles(&server).await, vec!["Before the kill", "While it was down"], "nothing lost, nothing twice");
    drop(server); // killed
    dovecot.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The disk under the server's database fills while mail arrives: the mail stays in the
/// mailbox (nothing is deleted that was not stored), the listener reports the fault, and
/// once space is free every mail becomes one alert — also after a `kill -9` and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_mail_and_alerts_it_once_space_is_back() {
    use crate::e2e::Server;
    let dovecot = Dovecot::start(false);
    let disk = crate::faults::Tmpfs::mount(24);
    let etc = std::env::temp_dir().join(unique("sbmailcfg"));
    std::fs::create_dir_all(&etc).unwrap();
    let config = ops_config(&etc, &dovecot);
    let start = || Server::start(&disk.0, &["--demo", "--config", config.to_str().unwrap()], &[]);
    let mut server = start();
    let admin = server.login("admin@example.com", "demo").await["token"].as_str().unwrap().to_string();
    dovecot.deliver("alerts", &mail("nagios@monitor.example.com", "f1", "Before the disk filled", "one"));
    until("the first mail is taken", || dovecot.count("alerts", &[]) == 0).await;

    let filler = disk.fill();
    // Mail keeps coming until storing one fails (the WAL may still have room for a few:
    // what is stored there is durable, and is taken); each mail is large.
    let big = "x".repeat(60_000);
    let mut sent = vec!["Before the disk filled".to_string()];
    let mut reported = String::new();
    'mail: for batch in 0..10 {
        for i in 0..10 {
            let subject = format!("While full {batch}-{i}");
            dovecot.deliver("alerts", &mail("nagios@monitor.example.com", &subject.replace(' ', "-"), &subject, &big));
            sent.push(subject);
        }
        // Each mail of the batch is taken, or the listener says why it could not be.
        for _ in 0..100 {
            let v = server.call(&admin, "/api/v1/alerts/mailboxes", None).await;
            reported = v["mailboxes"][0]["last_error"].as_str().unwrap_or_default().to_string();
            if !reported.is_empty() {
                break 'mail;
            }
            if dovecot.count("alerts", &[]) == 0 {
                continue 'mail;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("batch {batch} neither taken nor refused");
    }
    assert!(!reported.is_empty(), "the disk never filled up for the server");
    // What could not be stored is still in the mailbox: nothing deleted that was not stored.
    let stored = titles_as(&server, &admin).await.len();
    // (A mail stored just before the failure may still carry \Deleted, not yet expunged.)
    assert_eq!(dovecot.count("alerts", &["undeleted"]), sent.len() - stored, "{reported}");
    assert!(stored < sent.len(), "{reported}");

    std::fs::remove_file(filler).unwrap();
    until("every mail is taken once space is back", || dovecot.count("alerts", &[]) == 0).await;
    let mut want = sent;
    want.sort();
    assert_eq!(titles(&server).await, want);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = start();
    assert_eq!(titles(&server).await, want, "nothing lost, nothing twice, after kill -9");
    drop(server);
    dovecot.stop();
    let _ = std::fs::remove_dir_all(&etc);
}

/// A server that keeps ending the session with `BYE` (Dovecot kicks it each time it is
/// back): the listener backs off — 1 s, 2 s, 4 s … — as for any other connection error,
/// instead of reconnecting every second; the reason is shown; once the server lets it stay,
/// it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_saying_bye_is_backed_off() {
    let app = TestApp::start(Backend::Sqlite, Default::default()).await;
    let dovecot = Dovecot::start(false);
    let config = MailboxConfig { poll_interval_s: 3600, ..mailbox("bye", Protocol::Imap, dovecot.port("IMAP_PORT")) };
    let stop = CancellationToken::new();
    sb_mail::spawn(app.service.clone(), vec![config], stop.clone());
    until_status(&app, "bye", "idle").await;

    let status = || app.service.mailboxes().into_iter().find(|m| m.name == "bye").unwrap();
    let (started, mut kicks, mut reasons) = (std::time::Instant::now(), 0, Vec::new());
    while started.elapsed() < Duration::from_secs(6) {
        if dovecot.kick("alerts") {
            kicks += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            reasons.push(status().last_error);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Connected at 0 s, then after waits of 1 s and 2 s (the next is 4 s later, at 7 s).
    // Without backoff it would have been every second: 6 or 7 connections.
    let connects = status().connects;
    assert!((2..=4).contains(&connects), "{connects} connections in 6 s ({kicks} kicked)");
    assert!(reasons.iter().any(|r| r.contains("BYE")), "the server's reason is shown: {reasons:?}");

    // The server lets it stay: it is back, idle, within the current wait.
    let back = until_status(&app, "bye", "idle").await;
    assert!(back.last_error.is_empty(), "{back:?}");
    stop.cancel();
    dovecot.stop();
    app.finish().await;
}
