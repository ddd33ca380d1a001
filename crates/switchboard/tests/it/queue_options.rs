//! Queue options beyond routing: business hours, pre-chat forms, offline messages, wrap-up
//! with tags and time, conferencing a colleague, canned responses.

use crate::backend_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Replace Demo Support's definition, keeping its members; `extra` is merged in.
async fn set_support(admin: &Client, extra: Value) -> (StatusCode, Value) {
    let (_, q) = admin.get("/api/v1/queues/support").await;
    let mut body = json!({"display_name": "Demo Support", "members": q["members"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    admin.send_json(reqwest::Method::PUT, "/api/v1/queues/support", body).await
}

async fn public_get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = reqwest::Client::new().get(app.url(path)).header("origin", "http://pages.example").send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn today_utc() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()
}

fn every_day() -> Value {
    json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({"day": d, "open": "00:00", "close": "24:00"}))
        .collect::<Vec<_>>())
}

backend_tests! {
    async fn business_hours_close_a_queue_and_forms_are_checked(app) {
        let admin = app.login("admin").await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;

        // Bad schedules are refused with a message that says what is wrong.
        let (s, v) = set_support(&admin, json!({"hours": {"tz": "Mars/Olympus", "weekly": every_day()}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("time zone"), "{v}");
        let (s, v) = set_support(&admin, json!({"hours": {"tz": "UTC", "weekly": [{"day": "monday", "open": "09:00", "close": "17:00"}]}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = set_support(&admin, json!({"form": [{"name": "product", "label": "Product", "kind": "select"}]})).await;
        assert!(s == StatusCode::BAD_REQUEST && v["error"]["message"].as_str().unwrap().contains("options"), "{v}");
        let (s, v) = set_support(&admin, json!({"overflow_action": "queue"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        // Open every day, but today is a holiday: closed, whoever is signed in.
        let closed = json!({"tz": "UTC", "weekly": every_day(), "holidays": [today_utc()]});
        let form = json!([
            {"name": "product", "label": "Product", "kind": "select", "required": true, "options": ["VPN", "Mail"]},
            {"name": "email", "label": "Your e-mail", "kind": "email"}
        ]);
        let (s, v) = set_support(&admin, json!({"hours": closed, "closed_message": "Back on Monday.", "form": form})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["open_now"].as_bool(), v["state"].as_str()), (Some(false), Some("closed")));
        assert_eq!(public_get(&app, "/ITFramework/webclient?getSTStatus=support").await.1, "STATUS_DND");
        assert_eq!(public_get(&app, "/ITFramework/webclient?getQueueExpertsReady=support").await.1, "0");
        let (s, body) = public_get(&app, "/api/v1/queues/Demo%20Support/widget").await;
        assert_eq!(s, StatusCode::OK);
        let w: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((w["state"].as_str(), w["open_now"].as_bool(), w["closed_message"].as_str()), (Some("closed"), Some(false), Some("Back on Monday.")));
        assert_eq!(w["form"][0]["options"], json!(["VPN", "Mail"]));
        let alice = app.login("alice").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "hello?", "answers": {"product": "VPN"}})).await;
        assert_eq!((s, v["error"]["message"].as_str()), (StatusCode::FORBIDDEN, Some("Back on Monday.")));
        let (s, _) = public_get(&app, "/api/v1/queues/nope/widget").await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Open around the clock again: the form's answers are checked, then reach the expert.
        let (s, v) = set_support(&admin, json!({"hours": {"tz": "Europe/Berlin", "weekly": every_day()}, "form": form})).await;
        assert_eq!((s, v["open_now"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
        for (answers, says) in [
            (json!({}), "Product is required"),
            (json!({"product": "Fax"}), "Product must be one of: VPN, Mail"),
            (json!({"product": "VPN", "email": "not-an-address"}), "Your e-mail must be an e-mail address"),
            (json!({"product": "VPN", "shoe": "42"}), "this queue's form has no field \"shoe\""),
        ] {
            let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "q", "answers": answers})).await;
            assert_eq!((s, v["error"]["message"].as_str()), (StatusCode::BAD_REQUEST, Some(says)));
        }
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "q", "answers": {"product": 7}})).await;
        assert!(s.is_client_error(), "answers are text: {v}");
        let (s, v) = alice
            .post("/api/v1/queues/support/chats", json!({"question": "VPN fails", "answers": {"product": "VPN", "email": "alice@example.com"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["answers"], json!({"product": "VPN", "email": "alice@example.com"}));
        let offer = j.next_where(is("queue_offer")).await.expect("judy gets the offer");
        assert_eq!(offer["answers"]["product"], "VPN");
        // Guests fill in the same form.
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/queues/support/guest"))
            .json(&json!({"name": "Visitor", "question": "hi", "answers": {"email": "x@y.z"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "product is required of guests too");
    }

    async fn chats_nobody_can_take_become_offline_messages(app) {
        let admin = app.login("admin").await;
        let (s, v) = set_support(&admin, json!({"no_expert_action": "offline_message", "offline_message": "Leave us a note."})).await;
        assert_eq!((s, v["no_expert_action"].as_str()), (StatusCode::OK, Some("offline_message")), "{v}");

        // Nobody of support is signed in: the chat is kept as an offline message.
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "printer on fire"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!((v["state"].as_str(), v["message"].as_str()), (Some("offline"), Some("Leave us a note.")));
        let chat = v["chat"].as_i64().unwrap();
        let conv = v["conversation"].as_i64().unwrap();
        a.say(conv, "it is the one on floor 3 <script>", "a-1").await;

        // The queue's experts see it, and one of them takes it.
        let (s, _) = app.login("bob").await.get("/api/v1/queues/support/offline").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "not an expert of support");
        let judy = app.login("judy").await;
        let (s, list) = judy.get("/api/v1/queues/support/offline").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let m = &list["messages"][0];
        assert_eq!((m["chat"].as_i64(), m["seeker"].as_str(), m["question"].as_str()), (Some(chat), Some("alice@example.com"), Some("printer on fire")));
        assert!(m["taken_by"].is_null());
        let mut j = judy.ws_with("presence=none").await;
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/take"), json!({})).await;
        assert_eq!((s, v["conversation"].as_i64()), (StatusCode::OK, Some(conv)), "{v}");
        j.next_where(|v| v["type"] == "conversation" && v["conversation"]["id"] == conv).await.expect("judy is in it");
        let (_, history) = judy.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert!(history.to_string().contains("floor 3 <script>"), "{history}");
        j.say(conv, "On my way.", "j-1").await;
        let got = a.next_where(|v| v["type"] == "event" && v["event"]["body"] == "On my way.").await;
        assert!(got.is_some(), "the seeker gets the answer");
        let (s, _) = app.login("mallory").await.post(&format!("/api/v1/queue-chats/{chat}/take"), json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "taken already");
        let (_, list) = judy.get("/api/v1/queues/support/offline").await;
        assert_eq!(list["messages"][0]["taken_by"], "judy@example.com");

        // After max wait, too (judy is signed in but busy, so nobody takes it).
        let (s, _) = set_support(&admin, json!({"max_wait_s": 1, "overflow_action": "offline_message"})).await;
        assert_eq!(s, StatusCode::OK);
        j.send(json!({"type": "presence", "state": "busy"})).await;
        j.next_where(|v| v["type"] == "presence" && v["user"] == "judy@example.com").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "still waiting"})).await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::CREATED, Some("waiting")), "{v}");
        let second = v["chat"].as_i64().unwrap();
        let off = a.next_where(|v| v["type"] == "queue_chat" && v["chat"].as_i64() == Some(second) && v["state"] == "offline").await;
        assert!(off.is_some(), "kept as an offline message after waiting a second");
        // People are told first; the record is written right after.
        let mut listed = 0;
        for _ in 0..100 {
            let (_, list) = judy.get("/api/v1/queues/support/offline").await;
            listed = list["messages"].as_array().unwrap().len();
            if listed == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(listed, 2);
        let olivia = app.login("olivia").await;
        let (_, stats) = olivia.get("/api/v1/queues/support/stats").await;
        assert_eq!(stats["interval"]["overflowed"].as_u64(), Some(2), "{stats}");
    }

    async fn experts_wrap_up_with_tags_and_bring_in_colleagues(app) {
        let admin = app.login("admin").await;
        let canned = json!([{"title": "Greeting", "text": "Hello! How can I help?"}]);
        let (s, v) = set_support(&admin, json!({"wrap_up_s": 1, "wrap_up_tags": ["resolved", "escalated"], "canned": canned, "method": "serial"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["canned"].clone(), v["wrap_up_s"].as_i64()), (canned, Some(1)));

        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "VPN"})).await;
        let chat = v["chat"].as_i64().unwrap();
        let conv = v["conversation"].as_i64().unwrap();
        j.next_where(is("queue_offer")).await.expect("offer");
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK);

        // Judy brings in Mallory: she joins the conversation and can write in it.
        let mallory = app.login("mallory").await;
        let mut m = mallory.ws_with("presence=none").await;
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/invite"), json!({"expert": "nobody@example.com"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = mallory.post(&format!("/api/v1/queue-chats/{chat}/invite"), json!({"expert": "niaj@example.com"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "only the assigned expert invites: {v}");
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/invite"), json!({"expert": "mallory@example.com"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        m.next_where(|v| v["type"] == "conversation" && v["conversation"]["id"] == conv).await.expect("mallory joined");
        m.say(conv, "Mallory here, I know this one.", "m-1").await;
        a.next_where(|v| v["type"] == "event" && v["event"]["sender"] == "mallory@example.com").await.expect("seeker hears her");
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/invite"), json!({"expert": "mallory@example.com"})).await;
        assert_eq!(s, StatusCode::CONFLICT, "already in it");

        // End: judy wraps up (holding her capacity), tags must be the queue's.
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/wrapup"), json!({"tags": ["resolved"]})).await;
        assert_eq!(s, StatusCode::CONFLICT, "not ended yet: {v}");
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/end"), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let w = j.next_where(|v| v["type"] == "queue_chat" && v["state"] == "wrap_up").await.expect("wrap-up");
        assert!(w["wrap_up_until"].as_i64().is_some());
        let (_, st) = admin.get("/api/v1/queues/support/stats").await;
        assert_eq!(st["realtime"]["active_chats"].as_u64(), Some(1), "in wrap-up, still hers: {st}");
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/wrapup"), json!({"tags": ["lost"]})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = mallory.post(&format!("/api/v1/queue-chats/{chat}/wrapup"), json!({"tags": ["resolved"]})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "not hers: {v}");
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/wrapup"), json!({"tags": ["resolved", "escalated"], "note": "reset token"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        j.next_where(|v| v["type"] == "queue_chat" && v["chat"].as_i64() == Some(chat) && v["state"] == "closed").await.expect("closed");
        let (_, st) = admin.get("/api/v1/queues/support/stats").await;
        assert_eq!(st["realtime"]["active_chats"].as_u64(), Some(0), "{st}");

        // Without a wrap-up, the wrap-up time ends it by itself.
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "again"})).await;
        let second = v["chat"].as_i64().unwrap();
        j.next_where(|v| v["type"] == "queue_offer" && v["chat"].as_i64() == Some(second)).await.expect("offer");
        judy.post(&format!("/api/v1/queue-chats/{second}/accept"), json!({})).await;
        let (s, _) = alice.post(&format!("/api/v1/queue-chats/{second}/end"), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "the seeker may end it too");
        j.next_where(|v| v["type"] == "queue_chat" && v["chat"].as_i64() == Some(second) && v["state"] == "wrap_up").await.expect("wrap-up");
        let closed = j.next_where(|v| v["type"] == "queue_chat" && v["chat"].as_i64() == Some(second) && v["state"] == "closed").await;
        assert!(closed.is_some(), "closed when the wrap-up time ran out");
        // Tags can still be given afterwards.
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{second}/wrapup"), json!({"tags": ["resolved"]})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
}

fn from_queue(text: &'static str) -> impl Fn(&Value) -> bool {
    move |v| {
        v["type"] == "event"
            && v["event"]["sender"] == "support@example.com"
            && v["event"]["body"].as_str().is_some_and(|b| b.contains(text))
    }
}

backend_tests! {
    async fn seekers_and_experts_use_a_queue_from_plain_im(app) {
        // Judy works from a plain IM client: no console, so offers come as messages.
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none&client=plain").await;
        let bob = app.login("bob").await;
        let mut b = bob.ws_with("presence=none").await;

        // The queue is reachable like a person: Bob writes to its address.
        let (s, v) = bob.post("/api/v1/conversations", json!({"kind": "direct", "members": ["support@example.com"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let bob_direct = v["id"].as_i64().unwrap();
        b.say(bob_direct, "VPN fails", "b-1").await;
        b.next_where(from_queue("You are number 1 in line")).await.expect("bob told his place");

        let offer = j.next_where(from_queue("Chat request from Bob Brown (Demo Support): 'VPN fails'. Reply /accept or /decline.")).await;
        let judy_direct = offer.expect("judy gets the offer as a message")["event"]["conversation"].as_i64().unwrap();
        j.say(judy_direct, "/frobnicate", "j-0").await;
        j.next_where(from_queue("Unknown command /frobnicate")).await.expect("help for a wrong command");
        j.say(judy_direct, "/accept", "j-1").await;
        j.next_where(from_queue("You are chatting with Bob Brown")).await.expect("judy has the chat");
        b.next_where(from_queue("Judy Jones is here to help you.")).await.expect("bob told");

        // Relayed both ways, and kept in the queue chat as their own words.
        j.say(judy_direct, "Please reconnect <b>now</b>", "j-2").await;
        b.next_where(from_queue("Judy Jones: Please reconnect <b>now</b>")).await.expect("relayed to bob");
        b.say(bob_direct, "works now, thanks", "b-2").await;
        j.next_where(from_queue("Bob Brown: works now, thanks")).await.expect("relayed to judy");
        let (_, chats) = bob.get("/api/v1/conversations").await;
        let queue_conv = chats["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "queue")
            .expect("bob's queue chat")["id"]
            .as_i64()
            .unwrap();
        let (_, history) = judy.get(&format!("/api/v1/conversations/{queue_conv}/messages")).await;
        let said: Vec<(String, String)> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "message")
            .map(|e| (e["sender"].as_str().unwrap_or("").to_string(), e["body"].as_str().unwrap().to_string()))
            .collect();
        assert!(said.contains(&("judy@example.com".into(), "Please reconnect <b>now</b>".into())), "{said:?}");
        assert!(said.contains(&("bob@example.com".into(), "works now, thanks".into())), "{said:?}");

        j.say(judy_direct, "/end", "j-3").await;
        b.next_where(from_queue("The chat has ended")).await.expect("bob told it ended");
        j.next_where(from_queue("The chat has ended")).await.expect("judy told it ended");
        j.say(judy_direct, "hello?", "j-4").await;
        j.next_where(from_queue("You have no chat open")).await.expect("nothing to relay to");
    }
}

backend_tests! {
    async fn web_pages_read_the_presence_of_experts_only(app) {
        let get = |q: &'static str| {
            let app = app.clone();
            async move {
                let r = reqwest::Client::new().get(app.url(&format!("/api/v1/presence?{q}"))).send().await.unwrap();
                assert_eq!(r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some("*"));
                let s = r.status();
                (s, r.json::<Value>().await.unwrap())
            }
        };
        let (s, v) = get("users=judy@example.com,BOB@example.com,not-an-address").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["presence"]["judy@example.com"], json!({"state": "offline", "idle": false, "sametime": "STATUS_OFFLINE"}));
        assert!(v["presence"]["bob@example.com"].is_null(), "not an expert: not public");
        assert!(v["presence"]["not-an-address"].is_null());
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let (_, v) = get("users=judy@example.com").await;
        assert_eq!(v["presence"]["judy@example.com"]["sametime"], "STATUS_ACTIVE");
        j.send(json!({"type": "presence", "state": "busy", "note": "in a meeting"})).await;
        let mut seen = Value::Null;
        for _ in 0..100 {
            seen = get("users=judy@example.com").await.1;
            if seen["presence"]["judy@example.com"]["state"] == "busy" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(seen["presence"]["judy@example.com"], json!({"state": "busy", "idle": false, "sametime": "STATUS_DND"}), "no note");
        let many = (0..51).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>().join(",");
        let r = reqwest::Client::new().get(app.url(&format!("/api/v1/presence?users={many}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let (s, _) = get("who=judy").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}
