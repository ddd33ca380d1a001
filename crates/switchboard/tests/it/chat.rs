use crate::backend_tests;
use reqwest::StatusCode;
use serde_json::json;

backend_tests! {
    async fn direct_chat_both_ways_in_one_order(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let conv = alice.direct_with("bob").await;
        assert_eq!(bob.direct_with("alice").await, conv, "one direct conversation per pair");
        let mut a = alice.ws().await;
        let mut b = bob.ws().await;
        let mut b2 = bob.ws().await; // a second session of bob's gets everything too

        let e1 = a.say(conv, "hello bob", "a-1").await;
        assert_eq!(e1["sender"], "alice@example.com");
        let got = b.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(got["event"]["body"], "hello bob");
        assert_eq!(got["event"]["id"], e1["id"]);
        let got2 = b2.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(got2["event"]["id"], e1["id"]);

        let e2 = b.say(conv, "hi alice", "b-1").await;
        let got = a.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(got["event"]["body"], "hi alice");
        // Bob's other session sees his own message; the sending session got an ack instead.
        let mine = b2.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(mine["event"]["id"], e2["id"]);

        let (s, h) = alice.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::OK);
        let events = h["events"].as_array().unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "sequence has no gaps");
        let bodies: Vec<&str> = events.iter().filter(|e| e["kind"] == "message").map(|e| e["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["hello bob", "hi alice"]);
        assert!(e2["id"].as_i64() > e1["id"].as_i64());
    }

    async fn presence_reaches_watchers_at_once(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let mut a = alice.ws().await;
        let mut b = bob.ws().await;
        let p = a.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!(p["presence"]["state"], "available");
        b.send(json!({"type": "presence", "state": "dnd", "note": "focus time"})).await;
        let p = a.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!((p["presence"]["state"].as_str(), p["presence"]["note"].as_str()), (Some("dnd"), Some("focus time")));
        b.send(json!({"type": "idle", "idle": true})).await;
        let p = a.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!(p["presence"]["idle"], true);
        let (_, u) = alice.get("/api/v1/users/bob@example.com").await;
        assert_eq!(u["presence"]["state"], "dnd");
        // A newcomer sees bob's state in its first frames.
        let carol = app.login("carol").await;
        let mut c = carol.ws().await;
        let p = c.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!(p["presence"]["state"], "dnd");
        // REST sets every session; closing the socket makes bob offline.
        let (s, _) = bob.send_json(reqwest::Method::PUT, "/api/v1/presence", json!({"state": "busy", "note": "meeting"})).await;
        assert_eq!(s, StatusCode::OK);
        let p = a.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!(p["presence"]["state"], "busy");
        drop(b);
        let p = a.next_where(|v| v["type"] == "presence" && v["user"] == "bob@example.com").await.unwrap();
        assert_eq!(p["presence"]["state"], "offline");
        // A client that opts out of presence gets none.
        let mut quiet = carol.ws_with("presence=none").await;
        let frames = quiet.drain(300).await;
        assert!(frames.iter().all(|f| f["type"] != "presence"), "{frames:?}");
    }

    async fn reconnect_resumes_without_loss_or_duplicates(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let conv = alice.direct_with("bob").await;
        let mut b = bob.ws().await;
        let mut a = alice.ws().await;
        let first = a.say(conv, "one", "r-1").await;
        let seen = b.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        let last_seen = seen["event"]["id"].as_i64().unwrap();
        assert_eq!(last_seen, first["id"].as_i64().unwrap());
        drop(b); // bob goes offline
        for (i, body) in ["two", "three", "four"].iter().enumerate() {
            a.say(conv, body, &format!("r-{}", i + 2)).await;
        }
        let mut b = bob.ws_with(&format!("resume_from={last_seen}")).await;
        a.say(conv, "five", "r-5").await;
        let mut got = Vec::new();
        while got.len() < 4 {
            let v = b.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.expect("missed events");
            got.push(v["event"]["body"].as_str().unwrap().to_string());
        }
        assert_eq!(got, ["two", "three", "four", "five"]);
        let extra = b.drain(300).await;
        assert!(extra.iter().all(|v| v["type"] != "event"), "duplicates: {extra:?}");
    }

    async fn retries_with_the_same_client_id_are_one_message(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let conv = alice.direct_with("bob").await;
        let mut b = bob.ws().await;
        let mut a = alice.ws().await;
        let x = a.say(conv, "once", "dup-1").await;
        let y = a.say(conv, "once", "dup-1").await;
        assert_eq!(x["id"], y["id"]);
        let (s, rest) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "once", "client_id": "dup-1"})).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(rest["id"], x["id"]);
        let frames = b.drain(400).await;
        let n = frames.iter().filter(|v| v["type"] == "event" && v["event"]["kind"] == "message").count();
        assert_eq!(n, 1, "{frames:?}");
    }

    async fn group_chat_invite_leave_and_privacy(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let carol = app.login("carol").await;
        let dave = app.login("dave").await;
        let (s, c) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "Ops", "members": ["bob@example.com", "carol@example.com"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let conv = c["id"].as_i64().unwrap();
        assert_eq!(c["members"].as_array().unwrap().len(), 3);

        let mut d = dave.ws().await;
        let (s, _) = dave.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "outsiders cannot read");
        let (s, _) = dave.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "let me in"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "outsiders cannot write");

        let (s, c) = bob.post(&format!("/api/v1/conversations/{conv}/members"), json!({"address": "dave@example.com"})).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        let joined = d.next_of("conversation").await;
        assert_eq!(joined["conversation"]["id"], conv);
        let mut a = alice.ws().await;
        a.say(conv, "welcome dave", "g-1").await;
        let got = d.next_where(|v| v["type"] == "event" && v["event"]["kind"] == "message").await.unwrap();
        assert_eq!(got["event"]["body"], "welcome dave");

        let r = carol.http.delete(app.url(&format!("/api/v1/conversations/{conv}/members/me"))).bearer_auth(&carol.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (s, _) = carol.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "a member who left cannot read on");
        let (_, c) = alice.get(&format!("/api/v1/conversations/{conv}")).await;
        let members: Vec<&str> = c["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert!(!members.contains(&"carol@example.com") && members.contains(&"dave@example.com"));

        let direct = alice.direct_with("bob").await;
        let (s, v) = alice.post(&format!("/api/v1/conversations/{direct}/members"), json!({"address": "dave@example.com"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    }

    async fn history_pages_and_unread_counts(app) {
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let conv = alice.direct_with("bob").await;
        let mut ids = Vec::new();
        for i in 0..7 {
            let (s, e) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": format!("m{i}")})).await;
            assert_eq!(s, StatusCode::CREATED);
            ids.push(e["id"].as_i64().unwrap());
        }
        let (_, page) = bob.get(&format!("/api/v1/conversations/{conv}/messages?limit=3")).await;
        let bodies: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["m4", "m5", "m6"], "newest page, oldest first");
        let (_, older) = bob.get(&format!("/api/v1/conversations/{conv}/messages?limit=3&before={}", ids[4])).await;
        let bodies: Vec<&str> = older["events"].as_array().unwrap().iter().map(|e| e["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["m1", "m2", "m3"]);

        let (_, list) = bob.get("/api/v1/conversations").await;
        let c = list["conversations"].as_array().unwrap().iter().find(|c| c["id"] == conv).unwrap().clone();
        assert_eq!(c["unread"], 7);
        assert_eq!(c["last_message"]["body"], "m6");
        let (_, list) = alice.get("/api/v1/conversations").await;
        assert_eq!(list["conversations"][0]["unread"], 0, "own messages are not unread");

        let mut a = alice.ws().await;
        let mut b = bob.ws().await;
        b.send(json!({"type": "read", "conversation": conv, "up_to": ids[4]})).await;
        let r = a.next_of("read").await;
        assert_eq!((r["user"].as_str(), r["up_to"].as_i64()), (Some("bob@example.com"), Some(ids[4])));
        let (_, list) = bob.get("/api/v1/conversations").await;
        assert_eq!(list["conversations"][0]["unread"], 2);
        // Markers never move back, nor past the end of the conversation.
        let (_, v) = bob.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": ids[0]})).await;
        assert_eq!(v["read_up_to"], ids[4]);
        let (s, v) = bob.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": 999_999_999})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "refused, not clamped");
        let (_, v) = bob.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": ids[6]})).await;
        assert_eq!(v["read_up_to"], ids[6]);
        let (s, _) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "after"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, list) = bob.get("/api/v1/conversations").await;
        assert_eq!(list["conversations"][0]["unread"], 1, "a new message is unread");
        let (_, v) = bob.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": ids[4]})).await;
        assert!(v["read_up_to"].as_i64() > Some(ids[4]));
        let (_, list) = bob.get("/api/v1/conversations").await;
        assert_eq!(list["conversations"][0]["unread"], 1);

        b.send(json!({"type": "typing", "conversation": conv, "active": true})).await;
        let t = a.next_of("typing").await;
        assert_eq!((t["user"].as_str(), t["active"].as_bool()), (Some("bob@example.com"), Some(true)));
    }
}

backend_tests! {
    async fn concurrent_sends_and_read_markers_all_succeed(app) {
        // Sends race with read markers and with each other; none may fail on a lock.
        let alice = app.login("alice").await;
        let bob = app.login("bob").await;
        let conv = alice.direct_with("bob").await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..120 {
            let (alice, bob) = (alice.clone(), bob.clone());
            tasks.spawn(async move {
                let (s, e) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": format!("m{i}"), "client_id": format!("c{i}")})).await;
                assert_eq!(s, StatusCode::CREATED, "send {i}: {e}");
                let up_to = e["id"].as_i64().unwrap();
                let (s, r) = bob.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": up_to})).await;
                assert_eq!(s, StatusCode::OK, "read {i}: {r}");
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let (_, h) = bob.get(&format!("/api/v1/conversations/{conv}/messages?limit=200")).await;
        let n = h["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "message").count();
        assert_eq!(n, 120);
    }
}
