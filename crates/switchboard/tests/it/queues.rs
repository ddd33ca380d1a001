use crate::backend_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use sb_service::Settings;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

async fn legacy(app: &TestApp, query: &str) -> (StatusCode, String, String, String) {
    let r = reqwest::Client::new()
        .get(app.url(&format!("/ITFramework/webclient?{query}")))
        .header("origin", "http://pages.example")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let cors =
        r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ctype, cors, r.text().await.unwrap())
}

async fn status(app: &TestApp, id: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/queues/{id}/status"))).send().await.unwrap();
    assert_eq!(r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some("*"));
    let s = r.status();
    (s, r.json().await.unwrap())
}

backend_tests! {
    async fn public_and_legacy_status_follow_expert_presence(app) {
        // No expert of Demo Support signed in: open but nobody ready.
        let (s, v) = status(&app, "support").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!((v["state"].as_str(), v["experts_ready"].as_u64(), v["seekers_waiting"].as_u64()), (Some("busy"), Some(0), Some(0)));
        let (code, ctype, cors, body) = legacy(&app, "getSTStatus=support").await;
        assert_eq!((code, ctype.as_str(), cors.as_str(), body.as_str()), (StatusCode::OK, "text/plain; charset=utf-8", "*", "STATUS_AWAY"));
        assert_eq!(legacy(&app, "getQueueExpertsReady=support").await.3, "0");

        // Judy signs in: available, so ready.
        let judy = app.login("judy").await;
        let mut j = judy.ws().await;
        let (_, v) = status(&app, "support").await;
        assert_eq!((v["state"].as_str(), v["experts_ready"].as_u64(), v["estimated_wait_s"].as_u64()), (Some("open"), Some(1), Some(0)));
        // Pages in the wild name the queue by display name or address, in any case.
        for name in ["support", "SUPPORT", "Demo+Support", "demo%20support", "support@example.com", "Support%40Example.com"] {
            assert_eq!(legacy(&app, &format!("getSTStatus={name}")).await.3, "STATUS_ACTIVE", "{name}");
        }
        let mallory = app.login("mallory").await;
        let mut m = mallory.ws().await;
        assert_eq!(legacy(&app, "getQueueExpertsReady=Demo%20Support").await.3, "2");

        // Do-not-disturb, away, idle and signing out all make an expert not ready.
        j.send(json!({"type": "presence", "state": "dnd"})).await;
        m.send(json!({"type": "idle", "idle": true})).await;
        let mut settled = String::new();
        for _ in 0..100 {
            settled = legacy(&app, "getQueueExpertsReady=support").await.3;
            if settled == "0" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(settled, "0");
        assert_eq!(legacy(&app, "getSTStatus=support").await.3, "STATUS_AWAY");
        j.send(json!({"type": "presence", "state": "available"})).await;
        let _ = j.next_where(|v| v["type"] == "presence" && v["user"] == "judy@example.com" && v["presence"]["state"] == "available").await;
        assert_eq!(legacy(&app, "getQueueExpertsReady=support").await.3, "1");
        drop(j);
        let mut gone = String::new();
        for _ in 0..100 {
            gone = legacy(&app, "getQueueExpertsReady=support").await.3;
            if gone == "0" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(gone, "0", "signing out removes the expert");

        // Unknown queues.
        assert_eq!(legacy(&app, "getSTStatus=nosuch").await.3, "na");
        assert_eq!(legacy(&app, "getQueueExpertsReady=nosuch").await.3, "na");
        let (s, v) = status(&app, "nosuch").await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (code, _, _, _) = legacy(&app, "whatever=1").await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
    }

    async fn administrators_close_disable_and_define_queues(app) {
        let alice = app.login("alice").await;
        let (s, _) = alice.send_json(reqwest::Method::PUT, "/api/v1/queues/support", json!({"display_name": "x"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "users cannot change queues");
        let olivia = app.login("olivia").await; // queue manager
        let (s, q) = olivia.get("/api/v1/queues/support").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(q["members"].as_array().unwrap().len(), 4);
        let members = q["members"].clone();
        let (s, q) = olivia
            .send_json(reqwest::Method::PUT, "/api/v1/queues/support", json!({"display_name": "Demo Support", "closed": true, "members": members}))
            .await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(legacy(&app, "getSTStatus=support").await.3, "STATUS_DND");
        assert_eq!(status(&app, "support").await.1["state"], "closed");
        let (s, _) = olivia
            .send_json(reqwest::Method::PUT, "/api/v1/queues/support", json!({"display_name": "Demo Support", "enabled": false, "members": members}))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(legacy(&app, "getSTStatus=support").await.3, "na", "a disabled queue does not exist publicly");
        assert_eq!(status(&app, "support").await.0, StatusCode::NOT_FOUND);

        // A new queue, named by its own address.
        let admin = app.login("admin").await;
        let (s, q) = admin
            .send_json(
                reqwest::Method::PUT,
                "/api/v1/queues/it-help",
                json!({"display_name": "IT Help", "method": "round_robin", "capacity": 2, "members": [{"address": "carol@example.com"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{q}");
        assert_eq!((q["address"].as_str(), q["method"].as_str()), (Some("it-help@example.com"), Some("round_robin")));
        let carol = app.login("carol").await;
        let _c = carol.ws().await;
        assert_eq!(legacy(&app, "getSTStatus=IT-HELP@example.com").await.3, "STATUS_ACTIVE");
        let (_, list) = alice.get("/api/v1/queues").await;
        assert!(list["queues"].as_array().unwrap().iter().any(|q| q["id"] == "it-help" && q["state"] == "open"));

        // Bad definitions are refused clearly.
        for (body, code) in [
            (json!({"display_name": "X", "method": "telepathy"}), "bad_request"),
            (json!({"display_name": "X", "members": [{"address": "nobody@example.com"}]}), "bad_request"),
            (json!({"display_name": "X", "address": "alice@example.com"}), "conflict"),
            (json!({"display_name": "X", "capacity": 0}), "bad_request"),
            (json!({"display_name": "X", "colour": "red"}), "unknown_field"),
        ] {
            let (s, v) = admin.send_json(reqwest::Method::PUT, "/api/v1/queues/bad", body.clone()).await;
            assert_eq!(v["error"]["code"].as_str(), Some(code), "{body}: {s} {v}");
        }
        let (s, _) = admin.send_json(reqwest::Method::PUT, "/api/v1/queues/Not%20A%20Slug", json!({"display_name": "X"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_apis_are_rate_limited_and_answer_preflights() {
    let app = TestApp::start(Backend::Sqlite, Settings { public_requests_per_minute: 5, ..Default::default() }).await;
    for _ in 0..5 {
        assert_eq!(legacy(&app, "getSTStatus=support").await.0, StatusCode::OK);
    }
    let (code, _, cors, body) = legacy(&app, "getSTStatus=support").await;
    assert_eq!((code, cors.as_str(), body.as_str()), (StatusCode::TOO_MANY_REQUESTS, "*", "rate limited"));
    let r = reqwest::Client::new().get(app.url("/api/v1/queues/support/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    let pre = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/ITFramework/webclient?getSTStatus=support"))
        .header("origin", "http://pages.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    app.finish().await;
}

backend_tests! {
    async fn a_queue_chat_from_request_to_close(app) {
        // Demo Support routes to the longest-idle ready expert.
        let judy = app.login("judy").await;
        let mallory = app.login("mallory").await;
        let mut j = judy.ws_with("presence=none").await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut m = mallory.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;

        let (s, view) = alice.post("/api/v1/queues/support/chats", json!({"question": "VPN fails <b>again</b>"})).await;
        assert_eq!(s, StatusCode::CREATED, "{view}");
        let chat = view["chat"].as_i64().unwrap();
        let conv = view["conversation"].as_i64().unwrap();
        assert_eq!(view["state"], "waiting");

        // Judy has been idle longest: the offer is hers, with the question as typed.
        let offer = j.next_where(is("queue_offer")).await.expect("judy gets the offer");
        assert_eq!((offer["chat"].as_i64(), offer["seeker"].as_str()), (Some(chat), Some("alice@example.com")));
        assert_eq!(offer["question"], "VPN fails <b>again</b>");
        // She declines: it goes to Mallory.
        j.send(json!({"type": "decline", "chat": chat})).await;
        assert_eq!(j.next_where(is("queue_offer_gone")).await.unwrap()["reason"], "declined");
        let offer = m.next_where(is("queue_offer")).await.expect("mallory gets it next");
        assert_eq!(offer["chat"].as_i64(), Some(chat));
        // Judy cannot take what is not hers (anymore).
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
        let (s, v) = mallory.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["state"].as_str(), v["expert"].as_str()), (Some("assigned"), Some("mallory@example.com")));
        let told = a.next_where(|v| v["type"] == "queue_chat" && v["state"] == "assigned").await.expect("seeker told");
        assert_eq!(told["expert"], "mallory@example.com");

        // Now it is a conversation like any other, through the same pipeline.
        m.next_where(|v| v["type"] == "conversation" && v["conversation"]["id"] == conv).await.expect("expert joined");
        m.say(conv, "Hi Alice, let's fix that VPN.", "m-1").await;
        let got = a.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(got["event"]["sender"], "mallory@example.com");
        a.say(conv, "thanks!", "a-1").await;
        m.next_where(|v| v["type"] == "event" && v["event"]["body"] == "thanks!").await.expect("expert hears the seeker");
        let (s, _) = judy.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "other experts cannot read it");

        // Mallory is at capacity (1): the queue shows her busy.
        let (_, st) = status(&app, "support").await;
        assert_eq!((st["experts_ready"].as_u64(), st["seekers_waiting"].as_u64()), (Some(1), Some(0)));

        let (s, _) = mallory.post(&format!("/api/v1/queue-chats/{chat}/end"), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let closed = a.next_where(|v| v["type"] == "queue_chat" && v["state"] == "closed").await;
        assert!(closed.is_some(), "seeker told it closed");
        let (_, st) = status(&app, "support").await;
        assert_eq!(st["experts_ready"].as_u64(), Some(2));

        // Statistics, for queue managers.
        let (s, _) = alice.get("/api/v1/queues/support/stats").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let olivia = app.login("olivia").await;
        let (s, stats) = olivia.get("/api/v1/queues/support/stats").await;
        assert_eq!(s, StatusCode::OK, "{stats}");
        let i = &stats["interval"];
        assert_eq!((i["requested"].as_u64(), i["offered"].as_u64(), i["declined"].as_u64(), i["accepted"].as_u64()), (Some(1), Some(2), Some(1), Some(1)));
        assert!(i["avg_wait_s"].as_f64().is_some() && i["avg_handle_s"].as_f64().is_some());
        assert_eq!(i["service_level"].as_f64(), Some(1.0), "answered within 30 s");
        assert_eq!(stats["realtime"]["signed_in"].as_u64(), Some(2));
        let metrics = app.http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("switchboard_queue_experts_ready{queue=\"support\"} 2"), "{metrics}");
        assert!(metrics.contains("switchboard_queue_events_total{queue=\"support\",event=\"assigned\"} 1"));
    }

    async fn waiting_seekers_see_their_place_and_broadcast_has_one_winner(app) {
        // Demo Sales broadcasts. Two experts, capacity 1 each.
        let frank = app.login("frank").await;
        let grace = app.login("grace").await;
        let mut f = frank.ws_with("presence=none").await;
        let mut g = grace.ws_with("presence=none").await;
        let seekers = ["alice", "bob", "carol"];
        let mut chats = Vec::new();
        let mut sockets = Vec::new();
        for who in seekers {
            let c = app.login(who).await;
            sockets.push(c.ws_with("presence=none").await);
            let (s, v) = c.post("/api/v1/queues/Demo%20Sales/chats", json!({})).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            chats.push(v["chat"].as_i64().unwrap());
        }
        // Both experts are offered the oldest chat; the others wait, second and third.
        assert_eq!(f.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chats[0]));
        assert_eq!(g.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chats[0]));
        let carol_view = sockets[2].next_where(|v| v["type"] == "queue_chat" && v["position"] == 3).await;
        assert!(carol_view.is_some(), "the third seeker learns her place");

        // Racing accepts: exactly one wins.
        let accept_path = format!("/api/v1/queue-chats/{}/accept", chats[0]);
        let (r1, r2) = tokio::join!(frank.post(&accept_path, json!({})), grace.post(&accept_path, json!({})));
        let wins = [r1.0, r2.0].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "{r1:?} {r2:?}");
        let (winner, loser_ws) = if r1.0 == StatusCode::OK { ("frank", &mut g) } else { ("grace", &mut f) };
        assert_eq!(r1.1["expert"].as_str().or(r2.1["expert"].as_str()), Some(format!("{winner}@example.com").as_str()));
        // The loser's offer was withdrawn, and the next chat is offered to them.
        let gone = loser_ws.next_where(|v| v["type"] == "queue_offer_gone" && v["chat"] == chats[0]).await.unwrap();
        assert_eq!(gone["reason"], "taken");
        let next = loser_ws.next_where(is("queue_offer")).await.unwrap();
        assert_eq!(next["chat"].as_i64(), Some(chats[1]));
        // Carol moves up to second.
        assert!(sockets[2].next_where(|v| v["type"] == "queue_chat" && v["position"] == 2).await.is_some());
        // Bob gives up waiting: the offer to the expert is withdrawn at once.
        let bob = app.login("bob").await;
        let (s, _) = bob.post(&format!("/api/v1/queue-chats/{}/end", chats[1]), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let gone = loser_ws.next_where(|v| v["type"] == "queue_offer_gone" && v["chat"] == chats[1]).await.unwrap();
        assert_eq!(gone["reason"], "withdrawn");
        // Strangers see nothing of other people's queue chats.
        let (s, _) = bob.get(&format!("/api/v1/queue-chats/{}", chats[2])).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn offers_time_out_and_go_round_again(app) {
        let admin = app.login("admin").await;
        let (_, q) = admin.get("/api/v1/queues/support").await;
        let (s, _) = admin
            .send_json(
                reqwest::Method::PUT,
                "/api/v1/queues/support",
                json!({"display_name": "Demo Support", "method": "serial", "offer_timeout_s": 1, "members": q["members"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let judy = app.login("judy").await; // priority 0
        let mallory = app.login("mallory").await; // priority 1
        let mut j = judy.ws_with("presence=none").await;
        let mut m = mallory.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "hello?"})).await;
        let chat = v["chat"].as_i64().unwrap();
        assert_eq!(j.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chat));
        // Nobody answers: judy's offer lapses, mallory's too, then judy's again.
        assert_eq!(j.next_where(is("queue_offer_gone")).await.unwrap()["reason"], "timed_out");
        assert_eq!(m.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chat));
        assert_eq!(m.next_where(is("queue_offer_gone")).await.unwrap()["reason"], "timed_out");
        assert_eq!(j.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chat), "offered again, not just once");
        // Judy goes away mid-offer: withdrawn at once, and mallory gets it.
        j.send(json!({"type": "presence", "state": "away"})).await;
        assert_eq!(j.next_where(is("queue_offer_gone")).await.unwrap()["reason"], "withdrawn");
        let offer = m.next_where(is("queue_offer")).await.unwrap();
        assert_eq!(offer["chat"].as_i64(), Some(chat));
        m.send(json!({"type": "accept", "chat": chat})).await;
        let assigned = m.next_where(|v| v["type"] == "queue_chat" && v["state"] == "assigned").await;
        assert!(assigned.is_some());
    }
}

backend_tests! {
    async fn guests_chat_with_a_queue_and_nothing_else(app) {
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        // A visitor on another site: no account, CORS.
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/queues/Demo%20Support/guest"))
            .header("origin", "http://shop.example")
            .json(&json!({"name": "Vera Visitor", "email": "vera@shop.example", "question": "Where is my order?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let v: Value = r.json().await.unwrap();
        let token = v["token"].as_str().unwrap().to_string();
        let chat = v["chat"]["chat"].as_i64().unwrap();
        let conv = v["chat"]["conversation"].as_i64().unwrap();
        assert_eq!(v["guest"]["roles"], json!(["guest"]));
        let guest = Client { app: app.clone(), http: reqwest::Client::new(), token, csrf: String::new() };
        let mut g = guest.ws().await;

        let offer = j.next_where(is("queue_offer")).await.unwrap();
        assert_eq!(offer["seeker_name"], "Vera Visitor");
        j.send(json!({"type": "accept", "chat": chat})).await;
        assert!(g.next_where(|v| v["type"] == "queue_chat" && v["state"] == "assigned").await.is_some());
        g.say(conv, "hello from the shop", "g-1").await;
        assert!(j.next_where(|v| v["type"] == "event" && v["event"]["body"] == "hello from the shop").await.is_some());

        // Nothing else: no directory, no other conversations, no presence stream.
        for path in ["/api/v1/contacts", "/api/v1/users?q=a", "/api/v1/conversations", "/api/v1/queues"] {
            let (s, _) = guest.get(path).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        }
        let (s, _) = guest.post("/api/v1/conversations", json!({"kind": "direct", "members": ["judy@example.com"]})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = guest.post("/api/v1/queues/sales/chats", json!({})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "a guest talks to the queue it joined only");
        let frames = g.drain(200).await;
        assert!(frames.iter().all(|f| f["type"] != "presence"), "{frames:?}");
        // Guests are not in the directory.
        let (_, contacts) = judy.get("/api/v1/contacts").await;
        assert!(!contacts.to_string().contains("Vera Visitor"));
        let (s, _) = guest.post(&format!("/api/v1/queue-chats/{chat}/end"), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        // The post-chat survey counts toward the queue's average.
        let (s, _) = guest.post(&format!("/api/v1/queue-chats/{chat}/survey"), json!({"rating": 9})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/survey"), json!({"rating": 1})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "only the seeker rates");
        let (s, _) = guest.post(&format!("/api/v1/queue-chats/{chat}/survey"), json!({"rating": 4, "comment": "quick <b>help</b>"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let olivia = app.login("olivia").await;
        let (_, stats) = olivia.get("/api/v1/queues/support/stats").await;
        assert_eq!(stats["interval"]["survey_average"].as_f64(), Some(4.0), "{stats}");
    }

    async fn experts_transfer_chats_to_queues_and_people(app) {
        let judy = app.login("judy").await;
        let frank = app.login("frank").await; // Demo Sales
        let mut j = judy.ws_with("presence=none").await;
        let mut f = frank.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "I want to buy"})).await;
        let chat = v["chat"].as_i64().unwrap();
        let conv = v["conversation"].as_i64().unwrap();
        j.next_where(is("queue_offer")).await.unwrap();
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = frank.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({"queue": "sales"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "only the assigned expert transfers");
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({"queue": "Demo Sales"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(a.next_where(|v| v["type"] == "queue_chat" && v["state"] == "waiting" && v["queue"] == "sales").await.is_some());
        let offer = f.next_where(is("queue_offer")).await.unwrap();
        assert_eq!(offer["chat"].as_i64(), Some(chat));
        f.send(json!({"type": "accept", "chat": chat})).await;
        let told = a.next_where(|v| v["type"] == "queue_chat" && v["state"] == "assigned").await.unwrap();
        assert_eq!(told["expert"], "frank@example.com");
        let (_, c) = alice.get(&format!("/api/v1/conversations/{conv}")).await;
        let members: Vec<&str> = c["members"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
        assert!(members.contains(&"frank@example.com") && !members.contains(&"judy@example.com"), "{members:?}");
        // And straight to a person.
        let grace = app.login("grace").await;
        let mut g = grace.ws_with("presence=none").await;
        let (s, _) = frank.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({"expert": "grace@example.com"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(g.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chat));
        let (s, v) = frank.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "frank no longer has it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_sessions_are_limited_per_address() {
    let app = TestApp::start(Backend::Sqlite, Settings { guest_sessions_per_hour: 2, ..Default::default() }).await;
    let judy = app.login("judy").await;
    let _j = judy.ws_with("presence=none").await;
    let http = reqwest::Client::new();
    // Nobody of Demo Sales is signed in: refused clearly, and it costs the visitor nothing.
    for _ in 0..3 {
        let r = http.post(app.url("/api/v1/queues/sales/guest")).json(&json!({"name": "Early"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("No expert of Demo Sales is signed in"), "{v}");
    }
    let alice = app.login("alice").await;
    let (s, _) = alice.post("/api/v1/queues/sales/chats", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    for i in 0..3 {
        let r = http
            .post(app.url("/api/v1/queues/support/guest"))
            .json(&json!({"name": format!("V{i}")}))
            .send()
            .await
            .unwrap();
        let expected = if i < 2 { StatusCode::CREATED } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(r.status(), expected, "guest {i}");
    }
    let r = http.post(app.url("/api/v1/queues/support/guest")).json(&json!({"name": ""})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "bad input is refused before the limit");
    app.finish().await;
}

backend_tests! {
    async fn a_new_session_gets_open_offers_and_chat_states(app) {
        let judy = app.login("judy").await;
        let mut j1 = judy.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "still there?"})).await;
        let chat = v["chat"].as_i64().unwrap();
        assert_eq!(j1.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(chat));
        // Judy opens a second tab: the open offer is there too.
        let mut j2 = judy.ws_with("presence=none").await;
        let offer = j2.next_where(is("queue_offer")).await.expect("offer replayed to the new session");
        assert_eq!((offer["chat"].as_i64(), offer["question"].as_str()), (Some(chat), Some("still there?")));
        // Alice reloads her page: she learns where her chat stands.
        let mut a = alice.ws_with("presence=none").await;
        let view = a.next_where(is("queue_chat")).await.expect("chat state replayed");
        assert_eq!((view["chat"].as_i64(), view["state"].as_str()), (Some(chat), Some("waiting")));
        j2.send(json!({"type": "accept", "chat": chat})).await;
        assert!(a.next_where(|v| v["type"] == "queue_chat" && v["state"] == "assigned").await.is_some());
    }
}

backend_tests! {
    async fn chats_roll_over_when_they_wait_too_long_or_nobody_is_there(app) {
        let admin = app.login("admin").await;
        let (_, q) = admin.get("/api/v1/queues/support").await;
        let put = |body: Value| {
            let admin = admin.clone();
            async move { admin.send_json(reqwest::Method::PUT, "/api/v1/queues/support", body).await }
        };
        let (s, v) = put(json!({"display_name": "Demo Support", "members": q["members"], "overflow_queue": "support"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "not to itself");
        let (s, v) = put(json!({"display_name": "Demo Support", "members": q["members"], "max_wait_s": 1, "overflow_queue": "sales", "no_expert_queue": "sales"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        // Nobody of support signed in; frank of sales is: the chat goes to sales at once.
        let frank = app.login("frank").await;
        let mut f = frank.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "anyone?"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["queue"], "sales");
        let first = v["chat"].as_i64().unwrap();
        assert_eq!(f.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(first));
        f.send(json!({"type": "accept", "chat": first})).await;

        // Judy of support is signed in but busy: after a second of waiting it rolls over.
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        j.send(json!({"type": "presence", "state": "busy"})).await;
        let bob = app.login("bob").await;
        let mut b = bob.ws_with("presence=none").await;
        let grace = app.login("grace").await;
        let mut g = grace.ws_with("presence=none").await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (s, v) = bob.post("/api/v1/queues/support/chats", json!({"question": "slow?"})).await;
        assert_eq!((s, v["queue"].as_str()), (StatusCode::CREATED, Some("support")), "{v}");
        let second = v["chat"].as_i64().unwrap();
        let moved = b.next_where(|v| v["type"] == "queue_chat" && v["queue"] == "sales").await.expect("rolled over");
        assert_eq!(moved["chat"].as_i64(), Some(second));
        assert_eq!(g.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(second));
        let olivia = app.login("olivia").await;
        let (_, stats) = olivia.get("/api/v1/queues/support/stats").await;
        assert_eq!(stats["interval"]["overflowed"].as_u64(), Some(1), "{stats}");
    }
}

/// Requests a receiver got: (lower-case headers, body).
type Received = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

/// A webhook receiver: records each request; answers 500 to the first `fail_first`, then 200.
async fn receiver(fail_first: usize) -> (String, Received) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Received = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let k = sock.read(&mut chunk).await.unwrap_or(0);
                if k == 0 {
                    break (String::new(), String::new());
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let head = text[..i].to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break (head, String::from_utf8_lossy(&buf[i + 4..i + 4 + len]).to_string());
                    }
                }
            };
            let headers: HashMap<String, String> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            seen.lock().unwrap().push((headers, body));
            n += 1;
            let status = if n <= fail_first { "500 Internal Server Error" } else { "200 OK" };
            let _ = sock
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                .await;
        }
    });
    (url, got)
}

backend_tests! {
    async fn webhooks_are_signed_retried_and_logged(app) {
        let olivia = app.login("olivia").await;
        let (s, v) = olivia.post("/api/v1/webhooks", json!({"url": "https://x.example/hook", "queue": "support"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "no TLS in this build");
        let (s, _) = olivia.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:1/x"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "webhooks for every queue are for administrators");
        let (s, _) = olivia.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:1/x", "queue": "sales"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "Olivia manages support, not sales");
        let alice = app.login("alice").await;
        let (s, _) = alice.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:1/x"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        let (url, got) = receiver(1).await;
        let (s, hook) = olivia.post("/api/v1/webhooks", json!({"url": url, "queue": "support"})).await;
        assert_eq!(s, StatusCode::CREATED, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_string();
        let id = hook["id"].as_i64().unwrap();

        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "hook me"})).await;
        let chat = v["chat"].as_i64().unwrap();
        j.next_where(is("queue_offer")).await.unwrap();
        // requested, queued, offered at least; the first delivery fails once and is retried.
        let mut events = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (_, log) = olivia.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
            let items = log["deliveries"].as_array().cloned().unwrap_or_default();
            if items.len() >= 3 && items.iter().all(|d| d["state"] == "delivered") {
                events = items;
                break;
            }
        }
        assert!(events.len() >= 3, "deliveries did not complete");
        assert!(events.iter().any(|d| d["attempts"].as_i64() >= Some(2) && d["last_status"] == 200), "a retried one: {events:?}");
        let kinds: Vec<&str> = events.iter().map(|d| d["event"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"requested") && kinds.contains(&"offered"), "{kinds:?}");
        // Every request is signed with the secret, and names its event.
        let requests = got.lock().unwrap().clone();
        assert!(requests.len() >= 4, "one failure plus the deliveries");
        for (headers, body) in &requests {
            assert_eq!(headers["x-switchboard-signature"], sb_service::webhooks::signature(&secret, body));
            let payload: Value = serde_json::from_str(body).unwrap();
            assert_eq!(payload["event"].as_str(), headers.get("x-switchboard-event").map(|s| s.as_str()));
            assert_eq!((payload["queue"].as_str(), payload["chat"].as_i64()), (Some("support"), Some(chat)));
        }
        let (s, _) = olivia.send_json(reqwest::Method::DELETE, &format!("/api/v1/webhooks/{id}"), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}

backend_tests! {
    async fn experts_pick_from_the_waiting_list_of_a_manual_queue(app) {
        let admin = app.login("admin").await;
        let (_, q) = admin.get("/api/v1/queues/support").await;
        let (s, _) = admin
            .send_json(reqwest::Method::PUT, "/api/v1/queues/support", json!({"display_name": "Demo Support", "method": "manual", "members": q["members"]}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let (_, first) = alice.post("/api/v1/queues/support/chats", json!({"question": "first"})).await;
        let (_, second) = bob.post("/api/v1/queues/support/chats", json!({"question": "second"})).await;
        let frames = j.drain(300).await;
        assert!(frames.iter().all(|f| f["type"] != "queue_offer"), "manual queues offer nothing");
        let (s, list) = judy.get("/api/v1/queues/support/waiting").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let waiting = list["waiting"].as_array().unwrap();
        let questions: Vec<&str> = waiting.iter().map(|w| w["question"].as_str().unwrap()).collect();
        assert_eq!(questions, ["first", "second"], "oldest first");
        assert_eq!(waiting[1]["seeker"], "bob@example.com");
        let (s, _) = alice.get("/api/v1/queues/support/waiting").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "not for seekers");
        // Judy picks the second one.
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{}/accept", second["chat"]), json!({})).await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("assigned")), "{v}");
        let (_, list) = judy.get("/api/v1/queues/support/waiting").await;
        assert_eq!(list["waiting"].as_array().unwrap().len(), 1);
        assert_eq!(list["waiting"][0]["chat"], first["chat"]);
    }
}
