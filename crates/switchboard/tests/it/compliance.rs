//! Compliance: ethical walls (and every way around them), violations, the audit log, the
//! archive seen from the API.

use crate::backend_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const PROHIBITED_PEGGY: &str = "Chats with Peggy Parker have been prohibited by your administrator.";

async fn wall(officer: &Client, a: &str, b: &str, mode: &str) -> Value {
    let (s, v) = officer
        .post("/api/v1/walls", json!({"name": format!("{a} / {b}"), "group_a": a, "group_b": b, "mode": mode}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn direct(c: &Client, with: &str) -> (StatusCode, Value) {
    c.post("/api/v1/conversations", json!({"kind": "direct", "members": [with]})).await
}

/// Move a user into a group, as an administrator would beside the server, and let the
/// server notice.
async fn join_group(app: &TestApp, slug: &str, who: &str) {
    let store = app.service.store();
    let g = store.group(slug).await.unwrap().unwrap();
    let u = store.user_by_address(&sb_core::Address::parse(who).unwrap()).await.unwrap().unwrap();
    store.add_group_member(g.id, u.id).await.unwrap();
    app.service.reload_policy().await.unwrap();
}

backend_tests! {
    async fn a_blocking_wall_holds_against_every_way_around_it(app) {
        let trent = app.login("trent").await;
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        // Before the wall: alice, bob and dave share a group chat; alice and dave a 1:1.
        let (_, group) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "plans", "members": ["bob@example.com", "dave@example.com"]})).await;
        let group = group["id"].as_i64().unwrap();
        let (_, with_dave) = direct(&alice, "dave@example.com").await;
        let with_dave = with_dave["id"].as_i64().unwrap();

        let (s, _) = alice.post("/api/v1/walls", json!({"name": "x", "group_a": "engineering", "group_b": "finance", "mode": "block"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only compliance officers build walls");
        let w = wall(&trent, "engineering", "finance", "block").await;
        assert_eq!((w["group_a"].as_str(), w["mode"].as_str(), w["enabled"].as_bool()), (Some("engineering"), Some("block"), Some(true)));

        // Starting a chat, under any spelling of the address.
        for address in ["peggy@example.com", "PEGGY@EXAMPLE.COM", " Peggy@Example.com "] {
            let (s, v) = direct(&alice, address).await;
            assert_eq!((s, v["error"]["code"].as_str(), v["error"]["message"].as_str()), (StatusCode::FORBIDDEN, Some("blocked"), Some(PROHIBITED_PEGGY)), "{address}");
        }
        // Look-alikes are other (non-existent) people, never Peggy.
        for address in ["peggy@exаmple.com", "ｐeggy@example.com", "peggy@example.com\u{200b}"] {
            let (s, v) = direct(&alice, address).await;
            assert!(s.is_client_error() && s != StatusCode::FORBIDDEN, "{address}: {s} {v}");
        }
        // A group chat with her, or adding her to one, by anyone on this side.
        let (s, v) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "t", "members": ["bob@example.com", "peggy@example.com"]})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("blocked")));
        let (s, v) = bob.post(&format!("/api/v1/conversations/{group}/members"), json!({"address": "peggy@example.com"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("blocked")), "{v}");
        // Peggy cannot reach across either.
        let peggy = app.login("peggy").await;
        let (s, _) = direct(&peggy, "alice@example.com").await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // She is invisible to alice: directory, look-up, contacts, presence.
        let (_, found) = alice.get("/api/v1/users?q=peggy").await;
        assert_eq!(found["users"].as_array().unwrap().len(), 0, "{found}");
        let (s, _) = alice.get("/api/v1/users/peggy@example.com").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, contacts) = alice.get("/api/v1/contacts").await;
        assert!(!contacts.to_string().contains("peggy@example.com"), "{contacts}");
        let (_, contacts) = trent.get("/api/v1/contacts").await;
        assert!(contacts.to_string().contains("peggy@example.com"), "others still see her");
        let mut a = alice.ws().await;
        let mut p = peggy.ws().await;
        p.send(json!({"type": "presence", "state": "busy"})).await;
        let seen = a.drain(400).await;
        assert!(!seen.iter().any(|f| f["type"] == "presence" && f["user"] == "peggy@example.com"), "{seen:?}");

        // Through a queue: with a wall to support too, no support expert is offered alice's chat.
        wall(&trent, "engineering", "support", "block").await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "help"})).await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::CREATED, Some("waiting")), "{v}");
        let frames = j.drain(600).await;
        assert!(!frames.iter().any(|f| f["type"] == "queue_offer"), "walled expert offered the chat: {frames:?}");

        // A group membership change mid-conversation: dave moves into finance.
        a.say(with_dave, "before the move", "a-1").await;
        join_group(&app, "finance", "dave@example.com").await;
        let (s, v) = alice.post(&format!("/api/v1/conversations/{with_dave}/messages"), json!({"body": "after the move"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("blocked")), "the 1:1 is read-only now: {v}");
        a.send(json!({"type": "send", "conversation": with_dave, "body": "by the other door", "client_id": "a-2"})).await;
        let err = a.next_where(|f| f["type"] == "error" && f["ref"] == "a-2").await.expect("refused on the WebSocket too");
        assert_eq!(err["code"], "blocked");
        // … and he left the group chat he shared with alice and bob.
        let (_, c) = bob.get(&format!("/api/v1/conversations/{group}")).await;
        let members: Vec<&str> = c["members"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
        assert!(!members.contains(&"dave@example.com") && members.contains(&"alice@example.com"), "{c}");

        // Every attempt was recorded and archived.
        let (s, v) = trent.get("/api/v1/compliance/violations").await;
        assert_eq!(s, StatusCode::OK);
        let blocked = v["violations"].as_array().unwrap().iter().filter(|x| x["action"] == "blocked").count();
        assert!(blocked >= 7, "{v}");
        let (s, _) = alice.get("/api/v1/compliance/violations").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let archived = app.service.store().archive_records(0, 10_000).await.unwrap();
        assert!(archived.iter().filter(|r| r.entry.kind == "wall.blocked").count() >= 7);
        assert!(!archived.iter().any(|r| r.entry.body == "after the move" || r.entry.body == "by the other door"), "refused text is not stored as a message");
    }

    async fn a_monitoring_wall_lets_chats_through_and_reports_them(app) {
        let trent = app.login("trent").await;
        let mut t = trent.ws_with("presence=none").await;
        let w = wall(&trent, "legal", "sales", "monitor").await;
        let victor = app.login("victor").await;
        let (s, conv) = direct(&victor, "frank@example.com").await;
        assert_eq!(s, StatusCode::CREATED, "{conv}");
        let live = t.next_where(|f| f["type"] == "compliance_violation").await.expect("officer told at once");
        assert_eq!((live["action"].as_str(), live["actor"].as_str(), live["other"].as_str()), (Some("flagged"), Some("victor@example.com"), Some("frank@example.com")));
        let conv = conv["id"].as_i64().unwrap();
        let (s, _) = victor.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "the deal"})).await;
        assert_eq!(s, StatusCode::CREATED, "monitor lets it through");
        t.next_where(|f| f["type"] == "compliance_violation" && f["detail"] == "message").await.expect("the first message is reported");
        victor.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "again"})).await;
        let (_, v) = trent.get("/api/v1/compliance/violations").await;
        assert_eq!(v["violations"].as_array().unwrap().len(), 2, "a conversation is reported once per wall: {v}");

        // Disabled, never deleted.
        let id = w["id"].as_i64().unwrap();
        let (s, v) = trent.send_json(reqwest::Method::PUT, &format!("/api/v1/walls/{id}"), json!({"enabled": false})).await;
        assert_eq!((s, v["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
        let (_, all) = trent.get("/api/v1/walls").await;
        assert_eq!(all["walls"][0]["enabled"], false);
        let (s, _) = direct(&victor, "grace@example.com").await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, v) = trent.get("/api/v1/compliance/violations").await;
        assert_eq!(v["violations"].as_array().unwrap().len(), 2);
        let (s, v) = trent.send_json(reqwest::Method::PUT, &format!("/api/v1/walls/{id}"), json!({"mode": "sideways"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = trent.post("/api/v1/walls", json!({"name": "w", "group_a": "legal", "group_b": "legal", "mode": "block"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = trent.post("/api/v1/walls", json!({"name": "w", "group_a": "legal", "group_b": "nowhere", "mode": "block"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        // Every change is in the audit log, which auditors read.
        let sybil = app.login("sybil").await;
        let (s, log) = sybil.get("/api/v1/audit").await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
        assert_eq!(&actions[..2], ["wall.update", "wall.create"], "{log}");
        let update = &log["entries"][0];
        assert_eq!((update["actor"].as_str(), update["before"]["enabled"].as_bool(), update["after"]["enabled"].as_bool()), (Some("trent@example.com"), Some(true), Some(false)));
        let (s, _) = victor.get("/api/v1/audit").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

/// GET as a compliance officer, the raw answer: (status, content type, body).
async fn raw(c: &Client, path: &str) -> (StatusCode, String, String) {
    let r = c.http.get(c.app.url(path)).bearer_auth(&c.token).send().await.unwrap();
    let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status(), ctype, r.text().await.unwrap())
}

backend_tests! {
    async fn compliance_officers_find_and_export_conversations(app) {
        let alice = app.login("alice").await;
        let (_, c) = direct(&alice, "bob@example.com").await;
        let conv = c["id"].as_i64().unwrap();
        for body in ["The quarterly forecasts look grim", "lunch?", "<img src=x onerror=alert(1)> forecast, \"quoted\""] {
            let (s, _) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": body})).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let carol = app.login("carol").await;
        let (_, other) = direct(&carol, "dave@example.com").await;
        carol.post(&format!("/api/v1/conversations/{}/messages", other["id"]), json!({"body": "forecast from carol"})).await;

        let trent = app.login("trent").await;
        let (s, _) = alice.get("/api/v1/archive/search?q=forecast").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "compliance officers only");
        // Keywords are stemmed ("forecasts" ~ "forecast") and narrowed by participant.
        let (s, v) = trent.get("/api/v1/archive/search?q=forecast&participant=alice@example.com").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let hits = v["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 2, "{v}");
        assert!(hits.iter().all(|h| h["conversation"].as_i64() == Some(conv) && h["actor"] == "alice@example.com"));
        let marked: Vec<&str> = hits[1]["snippet"].as_array().unwrap().iter().filter(|s| s["hit"] == true).filter_map(|s| s["text"].as_str()).collect();
        assert_eq!(marked, ["forecasts"], "{}", hits[1]);
        let (_, v) = trent.get("/api/v1/archive/search?q=forecast").await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 3);
        let (_, v) = trent.get("/api/v1/archive/search?q=forecast&group=engineering&kind=direct").await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 3);
        let (_, v) = trent.get("/api/v1/archive/search?q=forecast&group=finance").await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 0);
        let (_, v) = trent.get("/api/v1/archive/search?q=forecast&kind=group").await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 0);
        let future = 4_000_000_000_000_i64;
        let (_, v) = trent.get(&format!("/api/v1/archive/search?q=forecast&from={future}")).await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 0);
        let (_, v) = trent.get("/api/v1/archive/search?q=forecast&limit=1").await;
        assert_eq!((v["hits"].as_array().unwrap().len(), v["next_offset"].as_i64()), (1, Some(1)));
        let (_, v) = trent.get("/api/v1/archive/search?q=%22forecast%20OR%20*").await;
        assert!(v["hits"].is_array(), "query syntax in keywords is just text: {v}");
        let (s, _) = trent.get("/api/v1/archive/search?participant=nobody@example.com").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, v) = trent.get(&format!("/api/v1/archive/conversations/{conv}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["conversation"]["participants"].as_array().unwrap().len(), 2);
        assert_eq!(v["records"].as_array().unwrap().iter().filter(|r| r["kind"] == "message").count(), 3);

        // Exports, read back with real parsers.
        let (s, ctype, eml) = raw(&trent, &format!("/api/v1/archive/export?format=eml&conversation={conv}")).await;
        assert_eq!((s, ctype.as_str()), (StatusCode::OK, "message/rfc822"));
        let m = mail_parser::MessageParser::default().parse(eml.as_bytes()).expect("RFC 5322");
        assert_eq!(m.from().and_then(|a| a.first()).and_then(|a| a.address()), Some("alice@example.com"));
        let text = m.body_text(0).unwrap();
        assert!(text.contains("The quarterly forecasts look grim") && text.contains("<img src=x onerror=alert(1)>"), "{text}");
        let (_, ctype, mbox) = raw(&trent, "/api/v1/archive/export?format=eml&q=forecast").await;
        assert_eq!(ctype, "application/mbox");
        let n = mail_parser::mailbox::mbox::MessageIterator::new(mbox.as_bytes()).filter(|m| m.is_ok()).count();
        assert_eq!(n, 2, "one message per conversation");
        let (_, _, csv) = raw(&trent, "/api/v1/archive/export?format=csv&q=forecast").await;
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let bodies: Vec<String> = reader.records().map(|r| r.unwrap().get(8).unwrap().to_string()).collect();
        assert!(bodies.contains(&"<img src=x onerror=alert(1)> forecast, \"quoted\"".to_string()), "{bodies:?}");
        let (_, _, jsonl) = raw(&trent, "/api/v1/archive/export?format=jsonl&participant=carol@example.com").await;
        let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.iter().any(|l| l["body"] == "forecast from carol"));
        assert!(lines.iter().all(|l| l["conversation"] == other["id"]));
        let (_, _, xml) = raw(&trent, &format!("/api/v1/archive/export?format=xml&conversation={conv}")).await;
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let contents: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("Content")).filter_map(|n| n.text()).collect();
        assert!(contents.contains(&"lunch?"), "{contents:?}");
        let (s, _, _) = raw(&trent, "/api/v1/archive/export?format=pdf").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // Every search and export is in the audit log.
        let (_, log) = app.login("sybil").await.get("/api/v1/audit?limit=500").await;
        let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
        assert!(actions.iter().filter(|a| **a == "archive.search").count() >= 8, "{actions:?}");
        assert!(actions.iter().filter(|a| **a == "archive.export").count() >= 5, "{actions:?}");
    }
}

/// System messages (no sender) in a conversation's history, as `who` reads it.
async fn notices(who: &Client, conversation: i64) -> Vec<String> {
    let (_, h) = who.get(&format!("/api/v1/conversations/{conversation}/messages")).await;
    h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message" && e["sender"].is_null())
        .map(|e| e["body"].as_str().unwrap().to_string())
        .collect()
}

backend_tests! {
    async fn disclaimers_are_shown_by_kind_audience_frequency_and_language(app) {
        // Jonas reads German.
        app.service
            .store()
            .create_user(
                sb_core::directory::NewUser {
                    address: sb_core::Address::parse("jonas@example.com").unwrap(),
                    display_name: "Jonas Jäger".into(),
                    email: String::new(),
                    locale: "de-AT".into(),
                    roles: vec![sb_core::Role::User],
                    password_hash: None,
                },
                0,
            )
            .await
            .unwrap();
        let trent = app.login("trent").await;
        let rule = json!({"name": "recorded", "kinds": ["direct"], "texts": {"en": "Chats between {participants} are recorded.", "de": "Dieser Chat wird aufgezeichnet."}, "fallback": "en"});
        let (s, _) = app.login("alice").await.post("/api/v1/disclaimers", rule.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = trent.post("/api/v1/disclaimers", json!({"name": "x", "kinds": ["email"], "texts": {"en": "x"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = trent.post("/api/v1/disclaimers", json!({"name": "x", "kinds": ["direct"], "texts": {"en": "x"}, "fallback": "fr"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, created) = trent.post("/api/v1/disclaimers", rule).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");

        // A new 1:1 with Jonas: one notice, in both readers' languages.
        let alice = app.login("alice").await;
        let (_, c) = direct(&alice, "jonas@example.com").await;
        let conv = c["id"].as_i64().unwrap();
        assert_eq!(notices(&alice, conv).await, ["Chats between Alice Anderson, Jonas Jäger are recorded.\n\nDieser Chat wird aufgezeichnet."]);
        // Not for group chats (the rule is for 1:1 only), not again in the same conversation.
        let (_, g) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "g", "members": ["bob@example.com"]})).await;
        assert!(notices(&alice, g["id"].as_i64().unwrap()).await.is_empty());
        let (_, again) = direct(&alice, "jonas@example.com").await;
        assert_eq!(again["id"].as_i64(), Some(conv));
        assert_eq!(notices(&alice, conv).await.len(), 1);

        // Once per pair per day, for group chats with finance people.
        let (s, v) = trent.post("/api/v1/disclaimers", json!({"name": "finance", "kinds": ["group"], "audience": "group:finance", "frequency": "pair_day", "texts": {"en": "Finance is listening, {sender}."}})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (_, fg) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "budget", "members": ["peggy@example.com"]})).await;
        let fg = fg["id"].as_i64().unwrap();
        for body in ["numbers?", "more numbers?"] {
            let (s, _) = alice.post(&format!("/api/v1/conversations/{fg}/messages"), json!({"body": body})).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        assert_eq!(notices(&alice, fg).await, ["Finance is listening, Alice Anderson."], "once for the pair today");
        let (_, gg) = alice.get(&format!("/api/v1/conversations/{}", g["id"])).await;
        assert!(gg["id"].is_i64());
        alice.post(&format!("/api/v1/conversations/{}/messages", g["id"]), json!({"body": "no finance here"})).await;
        assert!(notices(&alice, g["id"].as_i64().unwrap()).await.is_empty(), "audience: no finance member");

        // Guests in queue chats.
        let (s, _) = trent.post("/api/v1/disclaimers", json!({"name": "guests", "kinds": ["queue"], "audience": "guests", "texts": {"en": "Visitors: this chat is recorded."}})).await;
        assert_eq!(s, StatusCode::CREATED);
        let judy = app.login("judy").await;
        let _j = judy.ws_with("presence=none").await;
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/queues/support/guest"))
            .json(&json!({"name": "Visitor", "question": "hello"}))
            .send()
            .await
            .unwrap();
        let g: Value = r.json().await.unwrap();
        let guest = Client { app: app.clone(), http: app.http(), token: g["token"].as_str().unwrap().into(), csrf: String::new() };
        let conv = g["chat"]["conversation"].as_i64().unwrap();
        let mut shown = Vec::new();
        for _ in 0..50 {
            shown = notices(&guest, conv).await;
            if !shown.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(shown, ["Visitors: this chat is recorded."]);

        // Archived with the rule that fired; changes audited.
        let archived = app.service.store().archive_records(0, 10_000).await.unwrap();
        let with_rule = archived.iter().filter(|r| r.entry.meta.contains("\"disclaimer\"")).count();
        assert_eq!(with_rule, 3, "{archived:?}");
        let id = created["id"].as_i64().unwrap();
        let (s, v) = trent.send_json(reqwest::Method::PUT, &format!("/api/v1/disclaimers/{id}"), json!({"name": "recorded", "kinds": ["direct"], "texts": {"en": "x"}, "enabled": false})).await;
        assert_eq!((s, v["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
        let (_, log) = app.login("sybil").await.get("/api/v1/audit").await;
        assert_eq!(log["entries"][0]["action"], "disclaimer.update");
    }
}

backend_tests! {
    async fn retention_purges_what_expired_and_holds_keep_the_rest(app) {
        let alice = app.login("alice").await;
        let (_, ab) = direct(&alice, "bob@example.com").await;
        let (_, ac) = direct(&alice, "carol@example.com").await;
        let (ab, ac) = (ab["id"].as_i64().unwrap(), ac["id"].as_i64().unwrap());
        // Messages from 40 days ago, stored as they were then, and one from today.
        let store = app.service.store();
        let me = sb_core::conversation::Member { id: app.service.user_by_address("alice@example.com").await.unwrap().id, address: sb_core::Address::parse("alice@example.com").unwrap() };
        let old = app.service.now() - 40 * 86_400_000;
        let msg = |c: i64, body: &str, ts: i64| sb_core::NewEvent {
            conversation: sb_core::ConversationId(c),
            kind: sb_core::EventKind::Message,
            actor: Some(me.clone()),
            body: body.into(),
            client_id: None,
            ts,
            note: None,
        };
        store.append_events(&[msg(ab, "ancient plan alpha", old), msg(ac, "ancient plan beta", old)]).await.unwrap();
        alice.post(&format!("/api/v1/conversations/{ab}/messages"), json!({"body": "fresh plan gamma"})).await;

        let trent = app.login("trent").await;
        for bad in [json!({"policies": [{"days": 0}]}), json!({"policies": [{"group": "nowhere", "days": 5}]}), json!({"policies": [{"days": 5}, {"days": 6}]})] {
            let (s, v) = trent.send_json(reqwest::Method::PUT, "/api/v1/retention", bad).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        }
        let (s, _) = alice.send_json(reqwest::Method::PUT, "/api/v1/retention", json!({"policies": [{"days": 1}]})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = trent.send_json(reqwest::Method::PUT, "/api/v1/retention", json!({"policies": [{"days": 30}, {"group": "legal", "days": 3650}]})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, hold) = trent.post("/api/v1/holds", json!({"custodian": "carol@example.com", "reason": "case 42"})).await;
        assert_eq!(s, StatusCode::CREATED, "{hold}");

        let (s, r) = trent.post("/api/v1/archive/purge", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!((r["conversations"].as_u64(), r["held"].as_u64()), (Some(1), Some(1)), "{r}");
        assert!(r["records"].as_u64().unwrap() >= 1 && r["events"].as_u64().unwrap() >= 1);
        // Gone from search, the archive body and the history; the rest stays.
        let (_, v) = trent.get("/api/v1/archive/search?q=ancient").await;
        let bodies: Vec<String> = v["hits"].as_array().unwrap().iter().map(|h| h["snippet"].to_string()).collect();
        assert_eq!(bodies.len(), 1, "only carol's (held) remains: {v}");
        assert!(bodies[0].contains("beta"));
        let (_, conv) = trent.get(&format!("/api/v1/archive/conversations/{ab}")).await;
        let records = conv["records"].as_array().unwrap();
        assert!(records.iter().any(|r| r["body"].is_null()), "purged record kept its place");
        assert!(records.iter().any(|r| r["body"] == "fresh plan gamma"));
        let (_, h) = alice.get(&format!("/api/v1/conversations/{ab}/messages")).await;
        assert!(!h.to_string().contains("ancient plan alpha") && h.to_string().contains("fresh plan gamma"), "{h}");
        // The chain still verifies.
        let records = store.archive_records(0, 100_000).await.unwrap();
        let mut v = sb_core::archive::Verifier::new(b"integration test archive key");
        for rec in &records {
            v.check(rec).unwrap_or_else(|t| panic!("{t}"));
        }
        assert!(v.purged >= 1);

        // Released: carol's goes too on the next run.
        let id = hold["id"].as_i64().unwrap();
        let (s, v) = trent.post(&format!("/api/v1/holds/{id}/release"), json!({})).await;
        assert_eq!((s, v["released_at"].is_i64()), (StatusCode::OK, true), "{v}");
        let (s, _) = trent.post(&format!("/api/v1/holds/{id}/release"), json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "not active any more");
        let (_, r) = trent.post("/api/v1/archive/purge", json!({})).await;
        assert_eq!(r["conversations"].as_u64(), Some(1), "{r}");
        let (_, v) = trent.get("/api/v1/archive/search?q=ancient").await;
        assert_eq!(v["hits"].as_array().unwrap().len(), 0);
        let (_, log) = app.login("sybil").await.get("/api/v1/audit").await;
        let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
        for a in ["retention.update", "hold.create", "hold.release", "archive.purge"] {
            assert!(actions.contains(&a), "{a}: {actions:?}");
        }
    }
}
