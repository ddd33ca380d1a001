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
    app.service.reload_walls().await.unwrap();
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
