//! The ethical-wall bypass suite: a block wall between two groups means no content or
//! signal passes between a member of one and a member of the other — through any door
//! (REST, WebSocket, queue over plain IM, alerts), at any moment of the change (a wall or a
//! membership made before, while a chat waits in a queue, while an offer is out, after a
//! chat exists) — once the change that made the wall has committed (its REST call returned,
//! its admin command exited).
//!
//! "Nothing arrived" is proved with a marker wherever the server orders it: each person
//! has a direct conversation with `admin@example.com` (in no group, never walled) and
//! marks it read over REST; their own `read` frame comes through the same per-session
//! queue as everything the server queued for them before, so every frame before it is
//! everything that reached them. Only queue routing after a presence change happens on the
//! server's own task; there a bounded wait stands in.
//!
//! Group membership has no REST route: it is changed the way an administrator does beside
//! the server (the store), then the server is told (`reload_policy`), as `compliance.rs`
//! does — and, for the real thing, with `switchboard admin group add-member` against the
//! built binary.

use crate::backend_tests;
use crate::helpers::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

mod alerts_admin;
mod conversations;
mod property;
mod queues;
mod visibility;

// ------------------------------------------------------------------ helpers

fn at(who: &str) -> String {
    if who.contains('@') {
        who.to_string()
    } else {
        format!("{who}@example.com")
    }
}

async fn wall(officer: &Client, a: &str, b: &str, mode: &str) -> i64 {
    let (s, v) = officer
        .post("/api/v1/walls", json!({"name": format!("{a} / {b}"), "group_a": a, "group_b": b, "mode": mode}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn set_wall(officer: &Client, id: i64, enabled: bool) -> Result<(), String> {
    let (s, v) =
        officer.send_json(reqwest::Method::PUT, &format!("/api/v1/walls/{id}"), json!({"enabled": enabled})).await;
    if s != StatusCode::OK {
        return Err(format!("PUT wall {id} enabled={enabled}: {s} {v}"));
    }
    Ok(())
}

async fn user_id(app: &TestApp, who: &str) -> sb_core::UserId {
    let a = sb_core::Address::parse(&at(who)).unwrap();
    app.service.store().user_by_address(&a).await.unwrap().unwrap_or_else(|| panic!("no user {who}")).id
}

/// A new directory group with these members, made as an administrator does beside the
/// server; the server is told.
async fn group_of(app: &TestApp, slug: &str, members: &[&str]) -> sb_core::GroupId {
    let store = app.service.store();
    let g = store.create_group(slug, slug).await.unwrap();
    for m in members {
        store.add_group_member(g.id, user_id(app, m).await).await.unwrap();
    }
    app.service.reload_policy().await.unwrap();
    g.id
}

/// Move a user into a group, as an administrator does beside the server; the server is told.
async fn join_group(app: &TestApp, slug: &str, who: &str) {
    let store = app.service.store();
    let g = store.group(slug).await.unwrap().unwrap();
    store.add_group_member(g.id, user_id(app, who).await).await.unwrap();
    app.service.reload_policy().await.unwrap();
}

/// Replace Demo Support's definition, keeping its members; `extra` is merged in.
async fn set_support(admin: &Client, extra: Value) {
    let (_, q) = admin.get("/api/v1/queues/support").await;
    let mut body = json!({"display_name": "Demo Support", "members": q["members"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, v) = admin.send_json(reqwest::Method::PUT, "/api/v1/queues/support", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// A person's marker: their direct conversation with the administrator (never walled).
struct Mark {
    who: String,
    conv: i64,
    up_to: i64,
}

impl Mark {
    async fn new(c: &Client, who: &str) -> Mark {
        let conv = c.direct_with("admin").await;
        let (_, h) = c.get(&format!("/api/v1/conversations/{conv}/messages?limit=1")).await;
        let up_to = h["events"].as_array().and_then(|e| e.last()).and_then(|e| e["id"].as_i64()).expect("an event");
        Mark { who: at(who), conv, up_to }
    }

    /// Every frame `ws` got before the marker, which the server queued after everything
    /// already done (frames kept in `ws.seen` included).
    async fn try_frames(&self, c: &Client, ws: &mut Ws) -> Result<Vec<Value>, String> {
        let (s, v) = c.post(&format!("/api/v1/conversations/{}/read", self.conv), json!({"up_to": self.up_to})).await;
        if s != StatusCode::OK {
            return Err(format!("marker for {}: {s} {v}", self.who));
        }
        let mut out = std::mem::take(&mut ws.seen);
        loop {
            let Some(f) = ws.next().await else {
                return Err(format!("no marker frame for {} (socket closed or silent 10 s); saw {out:?}", self.who));
            };
            if f["type"] == "read" && f["conversation"] == self.conv && f["user"] == self.who.as_str() {
                return Ok(out);
            }
            out.push(f);
        }
    }

    async fn frames(&self, c: &Client, ws: &mut Ws) -> Vec<Value> {
        self.try_frames(c, ws).await.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Message events, typing and read frames that came from `from`.
fn signals_from<'a>(frames: &'a [Value], from: &str) -> Vec<&'a Value> {
    let from = at(from);
    frames
        .iter()
        .filter(|f| match f["type"].as_str() {
            Some("event") => f["event"]["kind"] == "message" && f["event"]["sender"] == from.as_str(),
            Some("typing") | Some("read") => f["user"] == from.as_str(),
            _ => false,
        })
        .collect()
}

fn presence_of<'a>(frames: &'a [Value], who: &str) -> Vec<&'a Value> {
    let who = at(who);
    frames.iter().filter(|f| f["type"] == "presence" && f["user"] == who.as_str()).collect()
}

fn offers_of(frames: &[Value], chat: i64) -> Vec<&Value> {
    frames.iter().filter(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).collect()
}

/// Send over the WebSocket; the `ack` or the `error` for it.
async fn ws_send(ws: &mut Ws, conversation: i64, body: &str, client_id: &str) -> Value {
    ws.send(json!({"type": "send", "conversation": conversation, "body": body, "client_id": client_id})).await;
    ws.next_where(|v| {
        (v["type"] == "ack" && v["client_id"] == client_id) || (v["type"] == "error" && v["ref"] == client_id)
    })
    .await
    .expect("an ack or an error")
}

/// Every frame this session sent before now has been handled (ping → pong, in order).
async fn ws_sync(ws: &mut Ws) -> Result<(), String> {
    let r = unique("sync");
    ws.send(json!({"type": "ping", "ref": r})).await;
    ws.next_where(|v| v["type"] == "pong" && v["ref"] == r.as_str())
        .await
        .map(|_| ())
        .ok_or_else(|| "no pong".to_string())
}

async fn post_message(c: &Client, conversation: i64, body: &str) -> (StatusCode, Value) {
    c.post(&format!("/api/v1/conversations/{conversation}/messages"), json!({"body": body})).await
}

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

/// A message from `queue`'s address in `conversation` matching `pred`, waited for.
async fn from_queue(ws: &mut Ws, queue: &str, conversation: i64, pred: impl Fn(&str) -> bool) -> Option<String> {
    let queue = at(queue);
    ws.next_where(|f| {
        f["type"] == "event"
            && f["event"]["kind"] == "message"
            && f["event"]["sender"] == queue.as_str()
            && f["event"]["conversation"].as_i64() == Some(conversation)
            && pred(f["event"]["body"].as_str().unwrap_or_default())
    })
    .await
    .map(|f| f["event"]["body"].as_str().unwrap_or_default().to_string())
}

async fn chat_state(seeker: &Client, chat: i64) -> String {
    let (_, v) = seeker.get(&format!("/api/v1/queue-chats/{chat}")).await;
    v["state"].as_str().unwrap_or("?").to_string()
}
