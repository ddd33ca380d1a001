//! Directory and presence across a wall, the public presence endpoint included.

use super::*;

// ------------------------------------------------------------------ 7. directory and presence

backend_tests! {
    async fn presence_of_someone_walled_off_while_online_goes_dark_at_once(app) {
        let trent = app.login("trent").await;
        let (alice, peggy) = (app.login("alice").await, app.login("peggy").await);
        let mut a = alice.ws().await;
        let mut p = peggy.ws().await;
        let (ma, mp) = (Mark::new(&alice, "alice").await, Mark::new(&peggy, "peggy").await);
        p.send(json!({"type": "presence", "state": "busy"})).await;
        a.next_where(|f| f["type"] == "presence" && f["user"] == "peggy@example.com" && f["presence"]["state"] == "busy")
            .await
            .expect("alice sees peggy before the wall");
        ma.frames(&alice, &mut a).await;
        mp.frames(&peggy, &mut p).await;

        wall(&trent, "engineering", "finance", "block").await;

        for (watcher, ws, mark, other) in [(&alice, &mut a, &ma, "peggy"), (&peggy, &mut p, &mp, "alice")] {
            let got = mark.frames(watcher, ws).await;
            let seen = presence_of(&got, other);
            let last = seen.last().map(|f| f["presence"]["state"].as_str().unwrap_or_default());
            assert_eq!(last, Some("offline"), "{} still sees {other} after the wall: {seen:?}", mark.who);
        }
        // Later changes do not arrive.
        p.send(json!({"type": "presence", "state": "away", "note": "behind the wall"})).await;
        p.send(json!({"type": "idle", "idle": true})).await;
        ws_sync(&mut p).await.unwrap();
        a.send(json!({"type": "presence", "state": "dnd"})).await;
        ws_sync(&mut a).await.unwrap();
        let got = ma.frames(&alice, &mut a).await;
        assert!(presence_of(&got, "peggy").is_empty(), "{got:?}");
        let got = mp.frames(&peggy, &mut p).await;
        assert!(presence_of(&got, "alice").is_empty(), "{got:?}");
        // The directory does not find her.
        let (_, found) = alice.get("/api/v1/users?q=peggy").await;
        assert_eq!(found["users"].as_array().unwrap().len(), 0, "{found}");
        let (s, _) = alice.get("/api/v1/users/peggy@example.com").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, contacts) = alice.get("/api/v1/contacts").await;
        assert!(!contacts.to_string().contains("peggy@example.com"), "{contacts}");
        let (_, finance) = alice.get("/api/v1/groups/finance").await;
        assert!(!finance.to_string().contains("peggy@example.com"), "{finance}");
        // A new session's snapshot leaves her out.
        let mut a2 = alice.ws().await;
        let got = ma.frames(&alice, &mut a2).await;
        assert!(presence_of(&got, "peggy").is_empty(), "{got:?}");
    }

    async fn presence_of_someone_moved_behind_a_wall_while_online_goes_dark_at_once(app) {
        let trent = app.login("trent").await;
        wall(&trent, "engineering", "finance", "block").await;
        let (alice, dave) = (app.login("alice").await, app.login("dave").await);
        let mut a = alice.ws().await;
        let mut d = dave.ws().await;
        let ma = Mark::new(&alice, "alice").await;
        d.send(json!({"type": "presence", "state": "busy"})).await;
        a.next_where(|f| f["type"] == "presence" && f["user"] == "dave@example.com" && f["presence"]["state"] == "busy")
            .await
            .expect("alice sees dave before the move");
        ma.frames(&alice, &mut a).await;

        join_group(&app, "finance", "dave@example.com").await;

        let got = ma.frames(&alice, &mut a).await;
        let seen = presence_of(&got, "dave");
        assert_eq!(seen.last().map(|f| f["presence"]["state"].clone()), Some(json!("offline")), "alice still sees dave: {seen:?}");
        d.send(json!({"type": "presence", "state": "away"})).await;
        ws_sync(&mut d).await.unwrap();
        let got = ma.frames(&alice, &mut a).await;
        assert!(presence_of(&got, "dave").is_empty(), "{got:?}");
        let (_, found) = alice.get("/api/v1/users?q=dave").await;
        assert_eq!(found["users"].as_array().unwrap().len(), 0, "{found}");
    }
}

/// `GET /api/v1/presence?users=…`, with a bearer token or anonymously: the `presence` map.
async fn public_presence(app: &TestApp, token: Option<&str>, users: &str) -> Value {
    let mut req = reqwest::Client::new().get(app.url(&format!("/api/v1/presence?users={users}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["presence"].clone()
}

backend_tests! {
    async fn public_presence_does_not_show_a_walled_expert_to_the_walled_caller(app) {
        let trent = app.login("trent").await;
        wall(&trent, "engineering", "support", "block").await;
        let _j = app.login("judy").await.ws_with("presence=none").await;
        let _f = app.login("frank").await.ws_with("presence=none").await;
        let alice = app.login("alice").await;
        let shown = public_presence(&app, Some(&alice.token), "judy@example.com,frank@example.com").await;
        assert_eq!(shown["frank@example.com"]["state"], "available", "experts are public: {shown}");
        assert!(shown["judy@example.com"].is_null(), "the walled expert's presence, asked by the walled seeker: {shown}");
    }

    async fn public_presence_stays_public_to_anonymous_callers(app) {
        // Decided: walls judge people. An anonymous page is nobody in particular, and what
        // the `public_presence` setting makes public (queue experts, by default) it sees
        // whatever walls stand; a signed-in walled caller does not (the test above).
        let trent = app.login("trent").await;
        wall(&trent, "engineering", "support", "block").await;
        let _j = app.login("judy").await.ws_with("presence=none").await;
        let _f = app.login("frank").await.ws_with("presence=none").await;
        let shown = public_presence(&app, None, "judy@example.com,frank@example.com").await;
        assert_eq!(shown["frank@example.com"]["state"], "available", "experts are public: {shown}");
        assert_eq!(shown["judy@example.com"]["state"], "available", "public to anonymous pages: {shown}");
    }
}
