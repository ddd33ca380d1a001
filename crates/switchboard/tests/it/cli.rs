//! The command line as a new user meets it: flags where they type them, tools that do not
//! invent an installation, plain logs in files, and a last line that says why it stopped.

use crate::e2e::{temp_dir, Server};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn run(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_string()
}

#[tokio::test]
async fn data_dir_and_friends_may_follow_the_subcommand() {
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    // `--data-dir` after the whole subcommand, as people type it.
    let out = run(&["admin", "app", "create", "nagios", "--scope", "alerts:send"], &dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("token: "), "{}", text(&out));
    let out = run(&["archive", "verify"], &dir, &[]);
    assert!(out.status.success() && text(&out).starts_with("archive verified:"), "{}", text(&out));
    let out = run(&["config", "check"], &dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Administrators name a queue's managers from the command line too.
    let out = run(&["admin", "queue", "set", "sales", "--managers", "heidi@example.com,olivia@example.com"], &dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["admin", "queue", "list"], &dir, &[]);
    let sales = text(&out).lines().find(|l| l.starts_with("sales\t")).unwrap_or_default().to_string();
    assert!(sales.ends_with("managers: heidi@example.com olivia@example.com"), "{sales}");
    // Logs written to a pipe carry no colour codes.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let log = server.stderr();
    assert!(log.contains("storage ready"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log that is not a terminal: {log:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn archive_tools_fail_on_a_missing_installation_and_create_nothing() {
    let missing = temp_dir().join("no-such-install");
    for args in [&["archive", "verify"][..], &["archive", "search", "--q", "x"], &["archive", "purge"]] {
        let out = run(args, &missing, &[]);
        assert!(!out.status.success(), "{args:?} on a missing folder: {}", text(&out));
        assert!(last_line(&out).contains("no database at"), "{args:?}: {}", text(&out));
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }

    // An installation whose key is gone: verify fails and makes no new key.
    let dir = temp_dir();
    let mut server = Server::start(&dir, &["--demo"], &[]);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    std::fs::remove_file(dir.join("archive.key")).unwrap();
    let out = run(&["archive", "verify"], &dir, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(last_line(&out).contains("no archive key"), "{}", text(&out));
    assert!(!dir.join("archive.key").exists(), "verify made a new key");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_alert_commands_token_is_not_an_unknown_configuration_key() {
    let dir = temp_dir();
    let out = run(&["config", "check"], &dir, &[("SWITCHBOARD_ALERT_TOKEN", "sb_app_x")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("unknown"), "{}", text(&out));
    let out = run(&["config", "check"], &dir, &[("SWITCHBOARD_SHOE_SIZE", "44")]);
    assert!(text(&out).contains("unknown configuration key \"shoe_size\""), "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn startup_on_a_garbage_database_names_the_cause_last() {
    let dir = temp_dir();
    std::fs::write(dir.join("switchboard.db"), vec![0x5a_u8; 64 * 1024]).unwrap();
    let out = Command::new(BIN).args(["serve", "--http", "127.0.0.1:0", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    let last = last_line(&out);
    assert!(last.contains("switchboard.db") && last.contains("not a database"), "last line: {last}");
    let _ = std::fs::remove_dir_all(dir);
}
