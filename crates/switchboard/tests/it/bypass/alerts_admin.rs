//! Alerts across a wall, and a membership changed with `switchboard admin` while the
//! server runs.

use super::*;

// ------------------------------------------------------------------ 8. alerts

/// The alerts sender (`alerts@example.com`, role service) in a group of its own. There is
/// no REST route for group membership, so as an administrator does beside the server.
async fn alerts_sender_in(app: &TestApp, slug: &str) {
    let address = sb_core::Address::parse("alerts@example.com").unwrap();
    let store = app.service.store();
    if store.user_by_address(&address).await.unwrap().is_none() {
        let new = sb_core::directory::NewUser {
            address,
            display_name: "Alerts".into(),
            email: String::new(),
            locale: "en".into(),
            roles: vec![sb_core::Role::Service],
            password_hash: None,
        };
        store.create_user(new, app.service.now()).await.unwrap();
    }
    group_of(app, slug, &["alerts@example.com"]).await;
}

async fn send_alert(app: &TestApp, token: &str, title: &str, to: &str) -> i64 {
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/alerts"))
        .bearer_auth(token)
        .json(&json!({"title": title, "audience": {"users": [at(to)]}}))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn delivery_state(app: &TestApp, token: &str, id: i64, who: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = reqwest::Client::new()
            .get(app.url(&format!("/api/v1/alerts/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = last["deliveries"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["user"] == at(who).as_str()))
            .map(|d| d["state"].clone());
        if state == Some(json!(want)) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("{who}'s delivery of alert {id} never became {want}: {last}");
}

backend_tests! {
    async fn an_alert_across_a_monitoring_wall_is_delivered_and_recorded(app) {
        let trent = app.login("trent").await;
        let mut t = trent.ws_with("presence=none").await;
        alerts_sender_in(&app, "alerting").await;
        wall(&trent, "alerting", "finance", "monitor").await;
        let token = app.service.create_application("nagios-monitor", &["alerts:send".to_string()]).await.unwrap().0;
        let peggy = app.login("peggy").await;
        let mut p = peggy.ws_with("presence=none").await;

        let id = send_alert(&app, &token, "Disk full on db1", "peggy").await;
        p.next_where(|f| f["type"] == "alert" && f["id"].as_i64() == Some(id)).await.expect("delivered across a monitoring wall");
        delivery_state(&app, &token, id, "peggy", "delivered").await;
        let live = t
            .next_where(|f| f["type"] == "compliance_violation" && f["actor"] == "alerts@example.com")
            .await
            .expect("the crossing is reported to compliance officers");
        assert_eq!((live["action"].as_str(), live["other"].as_str()), (Some("flagged"), Some("peggy@example.com")), "{live}");
        let (_, v) = trent.get("/api/v1/compliance/violations").await;
        assert!(
            v["violations"].as_array().unwrap().iter().any(|x| x["actor"] == "alerts@example.com" && x["other"] == "peggy@example.com" && x["action"] == "flagged"),
            "{v}"
        );
    }

    async fn an_alert_across_a_blocking_wall_is_not_delivered_and_is_recorded(app) {
        let trent = app.login("trent").await;
        let mut t = trent.ws_with("presence=none").await;
        alerts_sender_in(&app, "alerting").await;
        let token = app.service.create_application("nagios-block", &["alerts:send".to_string()]).await.unwrap().0;
        let peggy = app.login("peggy").await;
        let mut p = peggy.ws_with("presence=none").await;
        let mp = Mark::new(&peggy, "peggy").await;
        // Before the wall: delivered (their conversation exists from here on).
        let first = send_alert(&app, &token, "Before the wall", "peggy").await;
        p.next_where(|f| f["type"] == "alert" && f["id"].as_i64() == Some(first)).await.expect("delivered");
        mp.frames(&peggy, &mut p).await;

        wall(&trent, "alerting", "finance", "block").await;

        let second = send_alert(&app, &token, "After the wall", "peggy").await;
        delivery_state(&app, &token, second, "peggy", "failed").await;
        let got = mp.frames(&peggy, &mut p).await;
        let leaked: Vec<&Value> = got
            .iter()
            .filter(|f| (f["type"] == "alert" && f["id"].as_i64() == Some(second)) || f["event"]["body"].as_str().is_some_and(|b| b.contains("After the wall")))
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
        let live = t
            .next_where(|f| f["type"] == "compliance_violation" && f["actor"] == "alerts@example.com")
            .await
            .expect("the blocked alert is reported to compliance officers");
        assert_eq!((live["action"].as_str(), live["other"].as_str()), (Some("blocked"), Some("peggy@example.com")), "{live}");
        let (_, v) = trent.get("/api/v1/compliance/violations").await;
        assert!(
            v["violations"].as_array().unwrap().iter().any(|x| x["actor"] == "alerts@example.com" && x["action"] == "blocked"),
            "{v}"
        );
    }
}

// ------------------------------------------------------------------ 9. the admin command

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_added_with_the_admin_command_walls_at_once() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = crate::e2e::temp_dir();
    let server = crate::e2e::Server::start(&dir, &["--demo"], &[]);
    let token = |v: Value| v["token"].as_str().unwrap().to_string();
    let trent = token(server.login("trent@example.com", "demo").await);
    let alice = token(server.login("alice@example.com", "demo").await);
    let http = reqwest::Client::new();
    let post = |tok: String, path: String, body: Value| {
        let http = http.clone();
        let url = format!("{}{path}", server.base);
        async move {
            let r = http.post(url).bearer_auth(tok).json(&body).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = post(
        trent.clone(),
        "/api/v1/walls".into(),
        json!({"name": "eng / fin", "group_a": "engineering", "group_b": "finance", "mode": "block"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) =
        post(alice.clone(), "/api/v1/conversations".into(), json!({"kind": "direct", "members": ["dave@example.com"]}))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let conv = v["id"].as_i64().unwrap();
    let (s, _) = post(alice.clone(), format!("/api/v1/conversations/{conv}/messages"), json!({"body": "before"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut ws = crate::e2e::ws(&server.addr, &alice).await;
    crate::e2e::next_of(&mut ws, "ready").await;

    let out = std::process::Command::new(BIN)
        .args(["admin", "group", "add-member", "finance", "dave@example.com", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // At once: no waiting for the server to notice.
    let (s, v) = post(
        alice.clone(),
        format!("/api/v1/conversations/{conv}/messages"),
        json!({"body": "right after the command"}),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, Some("blocked")),
        "the message crossed the wall the command just made: {v}"
    );
    ws.send(Message::Text(
        json!({"type": "send", "conversation": conv, "body": "socket, right after", "client_id": "c-1"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if (f["type"] == "ack" && f["client_id"] == "c-1") || (f["type"] == "error" && f["ref"] == "c-1") {
                    break f;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no answer to the send: {other:?}"),
        }
    };
    assert_eq!(answer["code"], "blocked", "{answer}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
