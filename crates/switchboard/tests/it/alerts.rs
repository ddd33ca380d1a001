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

/// An Alertmanager v4 webhook payload for one alert (`DiskFull` on db1, fingerprint fixed) in
/// `status`, from the outage that started at `starts_at`. Its labels name the audience.
fn am_payload(status: &str, starts_at: &str) -> Value {
    let labels = json!({
        "alertname": "DiskFull", "instance": "db1", "severity": "warning",
        "switchboard_users": "alice@example.com,bob@example.com",
    });
    let ends_at = if status == "resolved" { "2026-11-26T18:00:00Z" } else { "0001-01-01T00:00:00Z" };
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": status, "receiver": "switchboard",
        "groupLabels": {"alertname": "DiskFull"}, "commonLabels": labels,
        "commonAnnotations": {"summary": "Disk /var on db1 is full"}, "externalURL": "http://am.example.com",
        "truncatedAlerts": 0,
        "alerts": [{
            "status": status, "labels": labels, "annotations": {"summary": "Disk /var on db1 is full"},
            "startsAt": starts_at, "endsAt": ends_at, "generatorURL": "http://prometheus.example.com/graph",
            "fingerprint": "5ce9a2b3c4d5e6f7",
        }],
    })
}

/// Post to the Alertmanager webhook: (alert id, duplicate).
async fn post_am(app: &TestApp, token: &str, payload: Value) -> (i64, bool) {
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/hooks/alertmanager"))
        .bearer_auth(token)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    (v["alert"].as_i64().expect("an alert id"), v["duplicate"].as_bool().unwrap())
}

/// Exactly `n` alert frames, as (id, title): waits for them, then for more that must not come.
async fn alert_frames(ws: &mut Ws, n: usize) -> Vec<(i64, String)> {
    let frame = |f: Value| (f["id"].as_i64().unwrap(), f["title"].as_str().unwrap().to_string());
    let mut got = Vec::new();
    while got.len() < n {
        let f = ws.next_where(is("alert")).await;
        got.push(frame(f.unwrap_or_else(|| panic!("only {} alerts of {n}: {got:?}", got.len()))));
    }
    got.extend(ws.drain(500).await.into_iter().filter(is("alert")).map(frame));
    assert_eq!(got.len(), n, "{got:?}");
    got
}

backend_tests! {
    async fn alertmanager_repeats_are_deduplicated_but_a_second_outage_reaches_people(app) {
        let token = app_token(&app, &["alerts:send"]).await;
        // alice is signed in; bob is away (his alerts are held for him).
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let (first, second) = ("2026-11-26T15:59:20.716Z", "2026-11-26T16:42:03.5Z");

        // One outage: firing, repeated every repeat_interval, resolved, and resolved again
        // (a retried webhook): one alert and one follow-up.
        let (fired, dup) = post_am(&app, &token, am_payload("firing", first)).await;
        assert!(!dup);
        assert_eq!(post_am(&app, &token, am_payload("firing", first)).await, (fired, true), "a repeat");
        let (resolved, dup) = post_am(&app, &token, am_payload("resolved", first)).await;
        assert!(!dup && resolved != fired, "the follow-up is not a duplicate");
        assert_eq!(post_am(&app, &token, am_payload("resolved", first)).await, (resolved, true), "resolved repeat");

        // The same alert fires again (a new startsAt) within the first one's TTL: a new
        // outage, with its own single follow-up.
        let (refired, dup) = post_am(&app, &token, am_payload("firing", second)).await;
        assert!(!dup && refired != fired, "firing again after resolved is a new alert");
        assert_eq!(post_am(&app, &token, am_payload("firing", second)).await, (refired, true));
        let (re_resolved, dup) = post_am(&app, &token, am_payload("resolved", second)).await;
        assert!(!dup && re_resolved != resolved, "the second outage's resolved is not swallowed");
        assert_eq!(post_am(&app, &token, am_payload("resolved", second)).await, (re_resolved, true));

        // alice got each of the four exactly once, in order.
        let expected = [(fired, "FIRING"), (resolved, "RESOLVED"), (refired, "FIRING"), (re_resolved, "RESOLVED")];
        let got = alert_frames(&mut a, 4).await;
        for ((id, title), (want_id, prefix)) in got.iter().zip(expected) {
            assert_eq!(*id, want_id, "{got:?}");
            assert!(title.starts_with(prefix), "{got:?}");
        }
        // bob signs in and gets the same four, held for him.
        let bob = app.login("bob").await;
        let mut b = bob.ws_with("presence=none").await;
        let mut held: Vec<i64> = alert_frames(&mut b, 4).await.into_iter().map(|(id, _)| id).collect();
        held.sort_unstable();
        let mut want: Vec<i64> = expected.iter().map(|(id, _)| *id).collect();
        want.sort_unstable();
        assert_eq!(held, want);
        for id in want {
            let record = get_alert(&app, &token, id).await;
            assert_eq!(record["deliveries"].as_array().unwrap().len(), 2, "alice and bob only: {record}");
        }
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
    let resolved_id = resolved["id"].as_i64();

    // It fires again: Alertmanager gives the new outage a new startsAt, so it is a new alert,
    // not a duplicate of the first one (still within its TTL).
    harness("alertmanager-test.sh", &["fire", &am, "DiskFull", "critical", "disk /var is full"]);
    let again =
        a.next_where(|f| f["type"] == "alert" && f["id"].as_i64() != Some(id) && f["id"].as_i64() != resolved_id);
    let again = again.await.expect("the second outage reaches alice");
    assert_eq!(again["title"], "FIRING (1): DiskFull: disk /var is full");

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

backend_tests! {
    async fn alertmanager_text_with_escape_codes_is_cleaned_not_refused(app) {
        // Alertmanager does not retry a refused notification: an ANSI escape in an
        // annotation must not lose the alert (every other door refuses control characters).
        let token = app_token(&app, &["alerts:send"]).await;
        let mut payload = am_payload("firing", "2026-11-26T15:59:20.716Z");
        payload["commonAnnotations"]["summary"] = json!("Disk \u{1b}[31mfull\u{1b}[0m\u{0}");
        payload["alerts"][0]["annotations"]["summary"] = json!("Disk \u{1b}[31mfull\u{1b}[0m\u{0}");
        let (id, dup) = post_am(&app, &token, payload).await;
        assert!(!dup);
        let record = get_alert(&app, &token, id).await;
        let (title, body) = (record["title"].as_str().unwrap(), record["body"].as_str().unwrap());
        assert!(title.ends_with("Disk [31mfull[0m"), "{title:?}");
        assert!(!title.contains('\u{1b}') && !body.contains('\u{1b}') && !body.contains('\u{0}'), "{body:?}");
        // Control characters in what becomes the deduplication key (labels, fingerprint).
        let mut odd = am_payload("firing", "2026-11-27T10:00:00Z");
        odd["alerts"][0]["fingerprint"] = json!("fp\u{0}\u{7}");
        odd["alerts"][0]["labels"]["instance"] = json!("db\u{0}1");
        let (odd_id, dup) = post_am(&app, &token, odd.clone()).await;
        assert!(!dup && odd_id != id);
        assert_eq!(post_am(&app, &token, odd).await, (odd_id, true), "and its repeat is recognised");
        // Elsewhere the same text is refused.
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/alerts"))
            .bearer_auth(&token)
            .json(&json!({"title": "Disk \u{1b}[31mfull", "audience": {"users": ["alice@example.com"]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}

backend_tests! {
    async fn messages_are_counted_by_the_door_they_came_through(app) {
        let token = app_token(&app, &["alerts:send"]).await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let (s, sent) = post_alert(&app, &token, json!({"title": "Counted", "audience": {"users": ["alice@example.com"]}})).await;
        assert_eq!(s, StatusCode::CREATED, "{sent}");
        a.next_where(|f| f["type"] == "alert").await.expect("alice alerted");
        let direct = alice.direct_with("bob").await;
        let (s, v) = alice.post(&format!("/api/v1/conversations/{direct}/messages"), json!({"body": "by REST"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        a.say(direct, "by socket", "m-1").await;
        let m = app.http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for (door, n) in [("websocket", 1), ("rest", 1), ("alert", 1), ("queue_relay", 0), ("xmpp", 0)] {
            let line = format!("switchboard_messages_total{{door=\"{door}\"}} {n}\n");
            assert!(m.contains(&line), "{line:?} in\n{m}");
        }
    }
}
