//! Messages, typing and read markers, invitations and conversation starts across a wall.

use super::*;

// ------------------------------------------------------------------ 1. messages

backend_tests! {
    async fn an_existing_one_to_one_turns_read_only_and_a_group_chat_loses_its_walled_member(app) {
        let trent = app.login("trent").await;
        let (alice, bob, peggy) = (app.login("alice").await, app.login("bob").await, app.login("peggy").await);
        let mut a = alice.ws_with("presence=none").await;
        let mut p = peggy.ws_with("presence=none").await;
        let (ma, mp) = (Mark::new(&alice, "alice").await, Mark::new(&peggy, "peggy").await);
        let direct = alice.direct_with("peggy").await;
        let (s, g) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "plans", "members": ["bob@example.com", "peggy@example.com"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let group = g["id"].as_i64().unwrap();
        // Before the wall, it flows.
        a.say(direct, "before the wall", "a-0").await;
        assert!(p.next_where(|f| f["type"] == "event" && f["event"]["body"] == "before the wall").await.is_some());
        ma.frames(&alice, &mut a).await;
        mp.frames(&peggy, &mut p).await;

        wall(&trent, "engineering", "finance", "block").await;

        // The 1:1 is read-only, both ways, at both doors.
        for (who, c) in [("alice", &alice), ("peggy", &peggy)] {
            let (s, v) = post_message(c, direct, &format!("{who} over REST")).await;
            assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, Some("blocked")), "{who}: {v}");
        }
        let r = ws_send(&mut a, direct, "alice over the socket", "a-1").await;
        assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("blocked")), "{r}");
        let r = ws_send(&mut p, direct, "peggy over the socket", "p-1").await;
        assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("blocked")), "{r}");
        // Peggy joined the group chat last: she left it; alice and bob go on.
        let (_, c) = alice.get(&format!("/api/v1/conversations/{group}")).await;
        let members: Vec<&str> = c["members"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
        assert!(!members.contains(&"peggy@example.com") && members.contains(&"bob@example.com"), "{c}");
        let (s, v) = post_message(&peggy, group, "still here?").await;
        assert!(s.is_client_error(), "peggy writes into the group chat she was walled out of: {s} {v}");
        let (s, v) = post_message(&alice, group, "group goes on").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, _) = peggy.get(&format!("/api/v1/conversations/{group}/messages")).await;
        assert!(s.is_client_error(), "peggy reads the group chat she left: {s}");
        let _ = bob;

        let pf = mp.frames(&peggy, &mut p).await;
        assert!(signals_from(&pf, "alice").is_empty(), "alice reached peggy: {pf:?}");
        let af = ma.frames(&alice, &mut a).await;
        assert!(signals_from(&af, "peggy").is_empty(), "peggy reached alice: {af:?}");
    }
}

// ------------------------------------------------------------------ 2. typing and read markers

/// `walled_off` types and reads in `conv` at both doors; `other` must get none of it.
async fn typing_and_reads_stay_behind_the_wall(
    (me, me_ws, me_mark): (&Client, &mut Ws, &Mark),
    (other, other_ws, other_mark): (&Client, &mut Ws, &Mark),
    conv: i64,
    up_to: i64,
) {
    me_mark.frames(me, me_ws).await;
    other_mark.frames(other, other_ws).await;
    me_ws.send(json!({"type": "typing", "conversation": conv, "active": true})).await;
    me_ws.send(json!({"type": "read", "conversation": conv, "up_to": up_to})).await;
    ws_sync(me_ws).await.unwrap();
    let (s, v) = me.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": up_to})).await;
    assert!(s.is_success() || s.is_client_error(), "{s} {v}");
    let got = other_mark.frames(other, other_ws).await;
    let leaked = signals_from(&got, &me_mark.who);
    assert!(leaked.is_empty(), "{} reached {} across the wall: {leaked:?}", me_mark.who, other_mark.who);
}

backend_tests! {
    async fn typing_and_read_markers_stop_at_a_wall_made_after_the_one_to_one(app) {
        let trent = app.login("trent").await;
        let (alice, peggy) = (app.login("alice").await, app.login("peggy").await);
        let mut a = alice.ws_with("presence=none").await;
        let mut a2 = alice.ws_with("presence=none").await;
        let mut p = peggy.ws_with("presence=none").await;
        let (ma, mp) = (Mark::new(&alice, "alice").await, Mark::new(&peggy, "peggy").await);
        let direct = alice.direct_with("peggy").await;
        let hello = a.say(direct, "hello", "a-0").await["id"].as_i64().unwrap();

        // Before the wall both reach the other (so the checks below can see them).
        ma.frames(&alice, &mut a).await;
        mp.frames(&peggy, &mut p).await;
        a.send(json!({"type": "typing", "conversation": direct, "active": true})).await;
        ws_sync(&mut a).await.unwrap();
        peggy.post(&format!("/api/v1/conversations/{direct}/read"), json!({"up_to": hello})).await;
        let pf = mp.frames(&peggy, &mut p).await;
        assert!(pf.iter().any(|f| f["type"] == "typing" && f["user"] == "alice@example.com"), "{pf:?}");
        let af = ma.frames(&alice, &mut a).await;
        assert!(af.iter().any(|f| f["type"] == "read" && f["user"] == "peggy@example.com"), "{af:?}");

        wall(&trent, "engineering", "finance", "block").await;

        typing_and_reads_stay_behind_the_wall((&alice, &mut a, &ma), (&peggy, &mut p, &mp), direct, hello).await;
        typing_and_reads_stay_behind_the_wall((&peggy, &mut p, &mp), (&alice, &mut a, &ma), direct, hello).await;
        // Alice's other session gets nothing of peggy either (its own read markers may come).
        let other_tab = ma.frames(&alice, &mut a2).await;
        assert!(signals_from(&other_tab, "peggy").is_empty(), "{other_tab:?}");
    }

    async fn typing_and_read_markers_stop_when_a_membership_change_walls_a_pair(app) {
        let trent = app.login("trent").await;
        wall(&trent, "engineering", "finance", "block").await;
        let (alice, dave) = (app.login("alice").await, app.login("dave").await);
        let mut a = alice.ws_with("presence=none").await;
        let mut d = dave.ws_with("presence=none").await;
        let (ma, md) = (Mark::new(&alice, "alice").await, Mark::new(&dave, "dave").await);
        let direct = alice.direct_with("dave").await;
        let hello = a.say(direct, "hello dave", "a-0").await["id"].as_i64().unwrap();

        join_group(&app, "finance", "dave@example.com").await;

        let (s, v) = post_message(&alice, direct, "after the move").await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, Some("blocked")), "{v}");
        typing_and_reads_stay_behind_the_wall((&alice, &mut a, &ma), (&dave, &mut d, &md), direct, hello).await;
        typing_and_reads_stay_behind_the_wall((&dave, &mut d, &md), (&alice, &mut a, &ma), direct, hello).await;
    }
}

// ------------------------------------------------------------------ 6. invite, create, conference, transfer

backend_tests! {
    async fn invites_creations_conferences_and_transfers_to_an_expert_are_refused_across_a_wall(app) {
        let trent = app.login("trent").await;
        group_of(&app, "ring", &["mallory"]).await;
        let (alice, bob, judy) = (app.login("alice").await, app.login("bob").await, app.login("judy").await);
        let mut j = judy.ws_with("presence=none").await;
        let _a = alice.ws_with("presence=none").await;
        let (_, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "help"})).await;
        let (chat, conv) = (v["chat"].as_i64().unwrap(), v["conversation"].as_i64().unwrap());
        j.next_where(|f| f["type"] == "queue_offer" && f["chat"].as_i64() == Some(chat)).await.expect("offer");
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{chat}/accept"), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        let (_, g) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "g", "members": ["bob@example.com"]})).await;
        let group = g["id"].as_i64().unwrap();
        let mallory = app.login("mallory").await;
        let mut m = mallory.ws_with("presence=none").await;
        let mm = Mark::new(&mallory, "mallory").await;
        mm.frames(&mallory, &mut m).await;

        // Made after the queue chat and the group chat exist.
        wall(&trent, "engineering", "ring", "block").await;

        let refused = |what: &str, s: StatusCode, v: &Value| {
            assert_eq!((s, code(v)), (StatusCode::FORBIDDEN, Some("blocked")), "{what}: {v}");
        };
        let (s, v) = alice.post("/api/v1/conversations", json!({"kind": "direct", "members": ["mallory@example.com"]})).await;
        refused("alice starts a 1:1", s, &v);
        let (s, v) = mallory.post("/api/v1/conversations", json!({"kind": "direct", "members": ["alice@example.com"]})).await;
        refused("mallory starts a 1:1", s, &v);
        let (s, v) = alice.post("/api/v1/conversations", json!({"kind": "group", "title": "t", "members": ["bob@example.com", "mallory@example.com"]})).await;
        refused("a group chat with both", s, &v);
        let (s, v) = bob.post(&format!("/api/v1/conversations/{group}/members"), json!({"address": "mallory@example.com"})).await;
        refused("invite into a group chat", s, &v);
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/invite"), json!({"expert": "mallory@example.com"})).await;
        refused("conference the walled expert in", s, &v);
        let (s, v) = judy.post(&format!("/api/v1/queue-chats/{chat}/transfer"), json!({"expert": "mallory@example.com"})).await;
        refused("transfer to the walled expert", s, &v);

        let got = mm.frames(&mallory, &mut m).await;
        assert!(
            !got.iter().any(|f| f["type"] == "queue_offer" || (f["type"] == "conversation" && f["conversation"]["id"].as_i64() == Some(conv))),
            "{got:?}"
        );
        assert!(signals_from(&got, "alice").is_empty(), "{got:?}");
        let (s, _) = mallory.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, c) = alice.get(&format!("/api/v1/conversations/{conv}")).await;
        assert!(!c["members"].to_string().contains("mallory"), "{c}");
    }
}
