//! Alerts: sent by applications, delivered over IM to an audience, tracked per recipient,
//! held for people who are away, acknowledged (button or a reply), escalated, expired.

use crate::backend_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An application with the alerts:send scope: (token, client).
async fn app_token(app: &TestApp, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    app.service.create_application(&unique("monitor").replace('_', "-"), &scopes).await.unwrap().0
}

async fn post_alert(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new().post(app.url("/api/v1/alerts")).bearer_auth(token).json(&body).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get_alert(app: &TestApp, token: &str, id: i64) -> Value {
    reqwest::Client::new()
        .get(app.url(&format!("/api/v1/alerts/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn state_of(alert: &Value, who: &str) -> String {
    alert["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["user"] == who)
        .map(|d| d["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Poll the alert until `who`'s delivery is in `state` (deliveries are written right after
/// people are told).
async fn until_state(app: &TestApp, token: &str, id: i64, who: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = get_alert(app, token, id).await;
        if state_of(&last, who) == state {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    panic!("{who} never reached {state}: {last}");
}

backend_tests! {
    async fn alerts_reach_people_and_are_tracked_acknowledged_and_escalated(app) {
        let token = app_token(&app, &["alerts:send"]).await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let bob = app.login("bob").await;
        let mut b = bob.ws_with("presence=none").await;

        // Refusals first.
        let weak = app_token(&app, &[]).await;
        let (s, _) = post_alert(&app, &weak, json!({"title": "x", "audience": {"everyone": true}})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the alerts:send scope is needed");
        let (s, _) = alice.post("/api/v1/alerts", json!({"title": "x", "audience": {"everyone": true}})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "users who are not administrators cannot send");
        for (bad, why) in [
            (json!({"title": "x", "audience": {}}), "audience"),
            (json!({"title": "x", "priority": "apocalyptic", "audience": {"everyone": true}}), "priority"),
            (json!({"title": "", "audience": {"everyone": true}}), "title"),
            (json!({"title": "x", "audience": {"groups": ["nowhere"]}}), "group"),
            (json!({"title": "x", "audience": {"everyone": true}, "escalation": {"after_seconds": 5}}), "ack_required"),
        ] {
            let (s, v) = post_alert(&app, &token, bad).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(why), "{why}: {v}");
        }

        // An urgent alert to engineering: alice and bob online, carol, dave and erin away.
        let (s, sent) = post_alert(&app, &token, json!({
            "title": "Disk full on db1", "body": "/var at 99% <b>now</b>", "priority": "urgent",
            "audience": {"groups": ["engineering"]}, "ack_required": true, "dedup_key": "db1:/var",
            "escalation": {"after_seconds": 2, "audience": {"users": ["trent@example.com"]}},
        })).await;
        assert_eq!(s, StatusCode::CREATED, "{sent}");
        assert_eq!((sent["recipients"].as_u64(), sent["duplicate"].as_bool()), (Some(5), Some(false)));
        let id = sent["id"].as_i64().unwrap();
        // First the message from the alerts address (as any chat), then the alert itself.
        let msg = a.next_where(|f| f["type"] == "event" && f["event"]["kind"] == "message" && f["event"]["sender"] == "alerts@example.com").await.expect("as a message");
        assert!(msg["event"]["body"].as_str().unwrap().starts_with("[URGENT] Disk full on db1\n\n/var at 99% <b>now</b>"), "{msg}");
        let frame = a.next_where(|f| f["type"] == "alert").await.expect("alice alerted at once");
        assert_eq!((frame["id"].as_i64(), frame["priority"].as_str(), frame["ack_required"].as_bool()), (Some(id), Some("urgent"), Some(true)));
        let bob_frame = b.next_where(|f| f["type"] == "alert").await.expect("bob alerted");
        let bob_conv = bob_frame["conversation"].as_i64().unwrap();
        let status = until_state(&app, &token, id, "bob@example.com", "delivered").await;
        assert_eq!(state_of(&status, "alice@example.com"), "delivered");
        assert_eq!(state_of(&status, "carol@example.com"), "pending", "held while away");

        // The same key while it is open: the same alert, nothing sent again.
        let (s, dup) = post_alert(&app, &token, json!({"title": "Disk full on db1", "audience": {"groups": ["engineering"]}, "dedup_key": "db1:/var"})).await;
        assert_eq!((s, dup["id"].as_i64(), dup["duplicate"].as_bool()), (StatusCode::OK, Some(id), Some(true)));

        // Carol signs in: the held alert arrives.
        let carol = app.login("carol").await;
        let mut c = carol.ws_with("presence=none").await;
        c.next_where(|f| f["type"] == "alert" && f["id"].as_i64() == Some(id)).await.expect("held alert on sign-in");
        until_state(&app, &token, id, "carol@example.com", "delivered").await;

        // Acknowledged with the button (API), and by replying "ack" from any client.
        let (s, _) = alice.post(&format!("/api/v1/alerts/{id}/ack"), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        b.say(bob_conv, "ACK", "b-ack").await;
        b.next_where(|f| f["type"] == "event" && f["event"]["body"] == format!("Alert {id} acknowledged. Thank you.")).await.expect("confirmed");
        until_state(&app, &token, id, "bob@example.com", "acknowledged").await;
        assert_eq!(state_of(&get_alert(&app, &token, id).await, "alice@example.com"), "acknowledged");
        let (s, _) = app.login("dave").await.post(&format!("/api/v1/alerts/{id}/ack"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "dave acknowledges while still away (from the API)");

        // Not everyone acknowledged within 2 s: it escalates to trent (held until he signs in).
        let escalated = until_state(&app, &token, id, "trent@example.com", "pending").await;
        assert!(escalated["escalated_at"].is_i64());
        let trent = app.login("trent").await;
        let mut t = trent.ws_with("presence=none").await;
        t.next_where(|f| f["type"] == "alert" && f["id"].as_i64() == Some(id)).await.expect("escalated to trent");
        let done = until_state(&app, &token, id, "trent@example.com", "delivered").await;
        let trent_round = done["deliveries"].as_array().unwrap().iter().find(|d| d["user"] == "trent@example.com").unwrap()["round"].as_i64();
        assert_eq!(trent_round, Some(1));

        // Offline policy drop, and expiry of held alerts.
        let (_, dropped) = post_alert(&app, &token, json!({"title": "FYI", "audience": {"users": ["carol@example.com", "erin@example.com"]}, "offline": "drop"})).await;
        let dropped = until_state(&app, &token, dropped["id"].as_i64().unwrap(), "erin@example.com", "failed").await;
        assert_eq!(state_of(&dropped, "carol@example.com"), "delivered");
        let (_, short) = post_alert(&app, &token, json!({"title": "Short-lived", "audience": {"users": ["erin@example.com"]}, "ttl_s": 1})).await;
        until_state(&app, &token, short["id"].as_i64().unwrap(), "erin@example.com", "expired").await;

        // History, and the archive.
        let r = reqwest::Client::new().get(app.url("/api/v1/alerts?limit=10")).bearer_auth(&token).send().await.unwrap();
        let list: Value = r.json().await.unwrap();
        assert_eq!(list["alerts"].as_array().unwrap().len(), 3, "{list}");
        assert_eq!(list["alerts"][2]["deliveries"]["acknowledged"].as_u64(), Some(3));
        let archived = app.service.store().archive_records(0, 100_000).await.unwrap();
        assert!(archived.iter().any(|r| r.entry.actor.as_deref() == Some("alerts@example.com") && r.entry.meta.contains(&format!("\"alert\":{id}"))));
    }
}

/// A real Prometheus Alertmanager (Debian's) posts its webhook to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_reaches_people_with_firing_and_resolved() {
    let routes: Vec<sb_core::alerts::AmRoute> = serde_json::from_value(json!([
        {"match": {"severity": "critical"}, "groups": ["engineering"], "ack_required": true},
        {"users": ["trent@example.com"]}
    ]))
    .unwrap();
    let settings = sb_service::Settings { alertmanager_routes: routes, ..Default::default() };
    let app = TestApp::start(Backend::Sqlite, settings).await;
    let token = app_token(&app, &["alerts:send"]).await;
    let alice = app.login("alice").await;
    let mut a = alice.ws_with("presence=none").await;

    let dir = std::env::temp_dir().join(unique("am"));
    let hook = app.url("/api/v1/hooks/alertmanager");
    let started = harness("alertmanager-test.sh", &["start", dir.to_str().unwrap(), &hook, &token]);
    let am = started.trim().strip_prefix("ALERTMANAGER_URL=").expect("the URL line").to_string();

    harness("alertmanager-test.sh", &["fire", &am, "DiskFull", "critical", "disk /var is full"]);
    let fired = a.next_where(|f| f["type"] == "alert").await;
    let fired = fired.expect("the alert reaches alice within seconds");
    assert_eq!(fired["title"], "FIRING (1): DiskFull: disk /var is full");
    assert_eq!((fired["priority"].as_str(), fired["ack_required"].as_bool()), (Some("urgent"), Some(true)));
    let id = fired["id"].as_i64().unwrap();
    let record = get_alert(&app, &token, id).await;
    assert!(record["source"].as_str().unwrap().starts_with("alertmanager:"), "{record}");
    assert_eq!(record["deliveries"].as_array().unwrap().len(), 5, "engineering: {record}");

    harness("alertmanager-test.sh", &["resolve", &am, "DiskFull", "critical", "disk /var is full"]);
    let resolved = a.next_where(|f| f["type"] == "alert" && f["id"].as_i64() != Some(id)).await;
    let resolved = resolved.expect("the resolved follow-up arrives");
    assert!(resolved["title"].as_str().unwrap().starts_with("RESOLVED: DiskFull"), "{resolved}");
    assert_eq!(resolved["ack_required"], false);

    // The webhook refuses what is not Alertmanager's, or not from an alerts application.
    let r = reqwest::Client::new().post(&hook).bearer_auth(&alice.token).json(&json!({})).send().await.unwrap();
    assert!(r.status().is_client_error());
    let r = reqwest::Client::new()
        .post(&hook)
        .bearer_auth(&token)
        .json(&json!({"version": "3", "groupKey": "x", "status": "firing", "alerts": [{"status": "firing"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    harness("alertmanager-test.sh", &["stop", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(dir);
    app.finish().await;
}
