//! Queue chats across a wall: transfers, waiting chats, open offers, offline messages, the
//! waiting list, and the relay over plain IM.

use super::*;

// ------------------------------------------------------------------ 3. transfer to a queue

backend_tests! {
    async fn a_transfer_to_a_queue_is_never_offered_to_an_expert_walled_from_the_seeker(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["frank"]).await;
        wall(&trent, "engineering", "ring", "block").await;
        let (judy, frank, alice) = (app.login("judy").await, app.login("frank").await, app.login("alice").await);
        let mut j = judy.ws_with("presence=none").await;
        let mut f = frank.ws_with("presence=none").await; // the only Demo Sales expert signed in
        let mf = Mark::new(&frank, "frank").await;
        let _a = alice.ws_with("presence=none").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "VPN fails"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (chat, conv) = (v["chat"].as_i64().unwrap(), v["conversation"].as_i64().unwrap());
        j.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("judy is offered it");
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        mf.frames(&frank, &mut f).await;

        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({"queue": "sales"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "the transfer itself is allowed (the chat waits in sales): {v}");
        let ff = mf.frames(&frank, &mut f).await;
        assert!(offers_of(&ff, chat).is_empty(), "the walled expert was offered the transferred chat: {ff:?}");
        let (s, v) = frank.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert!(s.is_client_error(), "the walled expert took the chat: {s} {v}");
        f.send(json!({"type": "accept", "chat": chat})).await;
        ws_sync(&mut f).await.unwrap();
        assert_eq!(chat_state(&alice, chat).await, "waiting");
        let (s, _) = frank.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the walled expert is not in the seeker's conversation");
        // It still waits for someone who may take it.
        let grace = app.login("grace").await;
        let mut g = grace.ws_with("presence=none").await;
        g.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("grace is offered it");
    }
}

// ------------------------------------------------------------------ 4. a chat waiting, an offer out

backend_tests! {
    async fn a_chat_waiting_when_the_wall_is_made_is_not_offered_to_the_walled_expert(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["judy"]).await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        j.send(json!({"type": "presence", "state": "busy"})).await;
        ws_sync(&mut j).await.unwrap();
        let alice = app.login("alice").await;
        let _a = alice.ws_with("presence=none").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "waiting"})).await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::CREATED, Some("waiting")), "{v}");
        let chat = v["chat"].as_i64().unwrap();

        wall(&trent, "engineering", "ring", "block").await;

        // Judy becomes ready: routing runs on the server's own task, so a bounded wait.
        j.send(json!({"type": "presence", "state": "available"})).await;
        ws_sync(&mut j).await.unwrap();
        let frames = j.drain(800).await;
        assert!(offers_of(&frames, chat).is_empty(), "offered to the expert walled off while it waited: {frames:?}");
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert!(s.is_client_error(), "{s} {v}");
        assert_eq!(chat_state(&alice, chat).await, "waiting");
        // Someone not walled off gets it.
        let mallory = app.login("mallory").await;
        let mut m = mallory.ws_with("presence=none").await;
        m.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("mallory is offered it");
    }

    async fn an_open_offer_is_withdrawn_at_once_when_the_wall_is_made(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["judy"]).await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let mj = Mark::new(&judy, "judy").await;
        let alice = app.login("alice").await;
        let _a = alice.ws_with("presence=none").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "offer me"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (chat, conv) = (v["chat"].as_i64().unwrap(), v["conversation"].as_i64().unwrap());
        j.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("judy is offered it");
        mj.frames(&judy, &mut j).await;

        wall(&trent, "engineering", "ring", "block").await;

        let jf = mj.frames(&judy, &mut j).await;
        assert!(
            jf.iter().any(|f| f["type"] == "queue_offer_gone" && f["chat"].as_i64() == Some(chat)),
            "the offer to the walled expert was not withdrawn when the wall was made: {jf:?}"
        );
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert!(s.is_client_error(), "the walled expert accepted the offer: {s} {v}");
        j.send(json!({"type": "accept", "chat": chat})).await;
        ws_sync(&mut j).await.unwrap();
        assert_eq!(chat_state(&alice, chat).await, "waiting");
        let (s, _) = judy.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let mallory = app.login("mallory").await;
        let mut m = mallory.ws_with("presence=none").await;
        m.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("mallory is offered it");
    }

    async fn over_plain_im_an_offer_out_when_the_wall_is_made_cannot_be_accepted(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["judy"]).await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("client=plain&presence=none").await;
        let judy_q = judy.direct_with("support").await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let alice_q = alice.direct_with("support").await;
        let (s, v) = post_message(&alice, alice_q, "printer on fire").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        from_queue(&mut j, "support", judy_q, |b| b.starts_with("Chat request from Alice Anderson")).await.expect("the offer as a message");

        wall(&trent, "engineering", "ring", "block").await;

        let (s, v) = post_message(&judy, judy_q, "/accept").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let reply = from_queue(&mut j, "support", judy_q, |b| b.starts_with("Sorry") || b.starts_with("You are chatting"))
            .await
            .expect("the queue answers /accept");
        assert!(reply.starts_with("Sorry"), "the walled expert took the chat over plain IM: {reply:?}");
        let (_, list) = judy.get("/api/v1/conversations").await;
        assert!(!list["conversations"].as_array().unwrap().iter().any(|c| c["kind"] == "queue"), "judy is in a queue chat: {list}");
        let told = a.drain(300).await;
        assert!(!told.iter().any(|f| f["event"]["body"].as_str().is_some_and(|b| b.contains("Judy Jones"))), "{told:?}");
    }

    async fn over_plain_im_transfers_respect_the_wall(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["frank", "mallory"]).await;
        wall(&trent, "engineering", "ring", "block").await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("client=plain&presence=none").await;
        let judy_q = judy.direct_with("support").await;
        let alice = app.login("alice").await;
        let _a = alice.ws_with("presence=none").await;
        let alice_q = alice.direct_with("support").await;
        post_message(&alice, alice_q, "VPN fails").await;
        from_queue(&mut j, "support", judy_q, |b| b.starts_with("Chat request from Alice Anderson")).await.expect("offer");
        post_message(&judy, judy_q, "/accept").await;
        from_queue(&mut j, "support", judy_q, |b| b.starts_with("You are chatting with Alice")).await.expect("judy has it");

        let mallory = app.login("mallory").await;
        let mut m = mallory.ws_with("presence=none").await;
        let mm = Mark::new(&mallory, "mallory").await;
        let frank = app.login("frank").await;
        let mut f = frank.ws_with("client=plain&presence=none").await;
        let frank_q = frank.direct_with("sales").await;
        let mf = Mark::new(&frank, "frank").await;
        mm.frames(&mallory, &mut m).await;
        mf.frames(&frank, &mut f).await;

        // To an expert behind the wall: refused.
        post_message(&judy, judy_q, "/transfer mallory@example.com").await;
        let reply = from_queue(&mut j, "support", judy_q, |b| b.starts_with("Sorry") || b.starts_with("Transferred")).await.expect("answer");
        assert!(reply.starts_with("Sorry"), "{reply:?}");
        let got = mm.frames(&mallory, &mut m).await;
        assert!(!got.iter().any(|f| f["type"] == "queue_offer"), "{got:?}");
        // To a queue whose only expert signed in is behind the wall: it waits there, unseen.
        post_message(&judy, judy_q, "/transfer sales").await;
        let reply = from_queue(&mut j, "support", judy_q, |b| b.starts_with("Sorry") || b.starts_with("Transferred")).await.expect("answer");
        assert!(reply.starts_with("Transferred"), "{reply:?}");
        let got = mf.frames(&frank, &mut f).await;
        let offered: Vec<&Value> = got
            .iter()
            .filter(|f| f["type"] == "queue_offer" || f["event"]["body"].as_str().is_some_and(|b| b.contains("Chat request from Alice")))
            .collect();
        assert!(offered.is_empty(), "the walled expert was offered the chat over plain IM: {offered:?}");
        post_message(&frank, frank_q, "/accept").await;
        let reply = from_queue(&mut f, "sales", frank_q, |b| b.starts_with("Sorry") || b.starts_with("You are chatting"))
            .await
            .expect("the queue answers /accept");
        assert!(reply.starts_with("Sorry"), "the walled expert took the chat over plain IM: {reply:?}");
    }
}

// ------------------------------------------------------------------ 5. offline messages, waiting list

backend_tests! {
    async fn offline_messages_of_walled_seekers_are_hidden_from_the_walled_expert_and_cannot_be_taken(app) {
        let trent = app.login("trent").await;
        let admin = app.login("admin").await;
        set_support(&admin, json!({"no_expert_action": "offline_message", "offline_message": "Leave us a note."})).await;
        group_of(&app, "ring", &["judy"]).await;
        // Nobody of support signed in: chats are kept as offline messages.
        let alice = app.login("alice").await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "before the wall"})).await;
        assert_eq!((s, v["state"].as_str()), (StatusCode::CREATED, Some("offline")), "{v}");
        let before = v["chat"].as_i64().unwrap();

        wall(&trent, "engineering", "ring", "block").await;

        let carol = app.login("carol").await;
        let (_, v) = carol.post("/api/v1/queues/support/chats", json!({"question": "after the wall"})).await;
        assert_eq!(v["state"], "offline", "{v}");
        let after = v["chat"].as_i64().unwrap();
        // Over plain IM too.
        let bob = app.login("bob").await;
        let mut b = bob.ws_with("presence=none").await;
        let bob_q = bob.direct_with("support").await;
        post_message(&bob, bob_q, "by plain IM").await;
        from_queue(&mut b, "support", bob_q, |t| t.contains("Leave us a note.")).await.expect("kept as an offline message");
        let peggy = app.login("peggy").await;
        let (_, v) = peggy.post("/api/v1/queues/support/chats", json!({"question": "from finance"})).await;
        assert_eq!(v["state"], "offline", "{v}");

        let seekers = |list: &Value| -> Vec<String> {
            list["messages"].as_array().unwrap().iter().filter_map(|m| m["seeker"].as_str().map(str::to_string)).collect()
        };
        let (s, list) = app.login("mallory").await.get("/api/v1/queues/support/offline").await;
        assert_eq!(s, StatusCode::OK);
        let all = seekers(&list);
        for who in ["alice", "carol", "bob", "peggy"] {
            assert!(all.contains(&at(who)), "{who} missing for an expert not walled off: {all:?}");
        }
        let judy = app.login("judy").await;
        let (s, list) = judy.get("/api/v1/queues/support/offline").await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let shown = seekers(&list);
        assert_eq!(shown, [at("peggy")], "the walled expert sees walled seekers' offline messages: {list}");
        for chat in [before, after] {
            let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/take"), json!({})).await;
            assert!(s.is_client_error(), "the walled expert took offline message {chat}: {s} {v}");
        }
        let (s, v) = app.login("mallory").await.post(&format!("/api/v1/queue-chats/{before}/take"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn the_waiting_list_hides_walled_seekers_from_walled_experts_and_managers(app) {
        let trent = app.login("trent").await;
        let admin = app.login("admin").await;
        set_support(&admin, json!({"method": "manual"})).await;
        group_of(&app, "ring", &["judy", "olivia"]).await; // olivia: an expert and the manager
        let judy = app.login("judy").await;
        let _j = judy.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let _a = alice.ws_with("presence=none").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "waiting before"})).await;
        assert_eq!(v["state"], "waiting", "{v}");
        let before = v["chat"].as_i64().unwrap();

        wall(&trent, "engineering", "ring", "block").await;

        let bob = app.login("bob").await;
        let _b = bob.ws_with("presence=none").await;
        let (_, v) = bob.post("/api/v1/queues/support/chats", json!({"question": "waiting after"})).await;
        let after = v["chat"].as_i64().unwrap();
        let peggy = app.login("peggy").await;
        let _p = peggy.ws_with("presence=none").await;
        let (_, v) = peggy.post("/api/v1/queues/support/chats", json!({"question": "finance"})).await;
        let control = v["chat"].as_i64().unwrap();

        let chats = |list: &Value| -> Vec<i64> {
            list["waiting"].as_array().unwrap().iter().filter_map(|w| w["chat"].as_i64()).collect()
        };
        let (_, list) = app.login("mallory").await.get("/api/v1/queues/support/waiting").await;
        assert_eq!(chats(&list), [before, after, control], "{list}");
        for who in ["judy", "olivia"] {
            let (s, list) = app.login(who).await.get("/api/v1/queues/support/waiting").await;
            assert_eq!(s, StatusCode::OK, "{list}");
            assert_eq!(chats(&list), [control], "{who} sees walled seekers waiting: {list}");
        }
        for chat in [before, after] {
            let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
            assert!(s.is_client_error(), "the walled expert picked chat {chat}: {s} {v}");
        }
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{control}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

// ------------------------------------------------------------------ queue over IM: the relay

backend_tests! {
    async fn over_plain_im_the_relay_stops_at_a_wall_made_after_the_chat_was_assigned(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["judy"]).await;
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let mj = Mark::new(&judy, "judy").await;
        let alice = app.login("alice").await;
        let mut a = alice.ws_with("presence=none").await;
        let ma = Mark::new(&alice, "alice").await;
        let alice_q = alice.direct_with("support").await;
        post_message(&alice, alice_q, "VPN fails").await;
        let offer = j.next_of("queue_offer").await;
        let (chat, conv) = (offer["chat"].as_i64().unwrap(), offer["conversation"].as_i64().unwrap());
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        from_queue(&mut a, "support", alice_q, |b| b.contains("Judy Jones is here to help you.")).await.expect("assigned");
        post_message(&alice, alice_q, "relayed before").await;
        j.next_where(|f| f["type"] == "event" && f["event"]["body"] == "relayed before").await.expect("the relay works");
        mj.frames(&judy, &mut j).await;

        wall(&trent, "engineering", "ring", "block").await;

        let (s, v) = post_message(&alice, alice_q, "relayed after").await;
        assert_eq!(s, StatusCode::CREATED, "her message to the queue's address itself is hers: {v}");
        let reply = from_queue(&mut a, "support", alice_q, |b| b.starts_with("Sorry")).await;
        assert!(reply.is_some(), "the queue tells her it did not go through");
        let got = mj.frames(&judy, &mut j).await;
        assert!(signals_from(&got, "alice").is_empty() && !got.iter().any(|f| f.to_string().contains("relayed after")), "{got:?}");
        // The expert's side, both doors.
        let (s, v) = post_message(&judy, conv, "still there?").await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, Some("blocked")), "{v}");
        let r = ws_send(&mut j, conv, "still there? (socket)", "j-1").await;
        assert_eq!(r["code"], "blocked", "{r}");
        let got = ma.frames(&alice, &mut a).await;
        assert!(!got.iter().any(|f| f.to_string().contains("still there?")), "{got:?}");
    }
}
