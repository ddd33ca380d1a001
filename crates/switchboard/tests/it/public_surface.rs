//! The public surface against an anonymous attacker: a guest's rights end with its chat,
//! guests are limited (messages, bytes, sockets), ghost chats leave the line, guests and
//! expired sessions are pruned, limits per client group IPv6 by /64, failed sign-ins slow
//! the attacker without locking out the owner, `/metrics` can be closed, and every 429
//! says when to come back.

use crate::helpers::*;
use reqwest::StatusCode;
use sb_service::{Service, ServiceError, Settings};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::MaybeTlsStream;

/// Run a test body on both backends with these settings:
/// `with_settings! { settings_expr; async fn name(app) { … } }`.
macro_rules! with_settings {
    ($settings:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = TestApp::start(Backend::Sqlite, $settings).await;
                    body(app.clone()).await;
                    app.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = TestApp::start(Backend::Postgres, $settings).await;
                    body(app.clone()).await;
                    app.finish().await;
                }
            }
        )*
    };
}

/// A website visitor with its chat.
struct Guest {
    token: String,
    chat: i64,
    conversation: i64,
}

/// `POST /api/v1/queues/{queue}/guest` from `from` (a loopback address).
async fn ask_as_guest(app: &TestApp, queue: &str, name: &str, from: Option<&str>) -> reqwest::Response {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(ip) = from {
        b = b.local_address(ip.parse::<IpAddr>().unwrap());
    }
    b.build()
        .unwrap()
        .post(app.url(&format!("/api/v1/queues/{queue}/guest")))
        .json(&json!({"name": name, "question": "help me"}))
        .send()
        .await
        .unwrap()
}

async fn guest(app: &TestApp, name: &str) -> Guest {
    let r = ask_as_guest(app, "support", name, None).await;
    assert_eq!(r.status(), StatusCode::CREATED, "guest {name}");
    let v: Value = r.json().await.unwrap();
    Guest {
        token: v["token"].as_str().unwrap().to_string(),
        chat: v["chat"]["chat"].as_i64().unwrap(),
        conversation: v["chat"]["conversation"].as_i64().unwrap(),
    }
}

/// An answer: status, `Retry-After` (seconds), JSON body (Null when not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    async fn of(r: reqwest::Response) -> Answer {
        let status = r.status();
        let retry_after =
            r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().expect("Retry-After in seconds"));
        Answer { status, retry_after, body: r.json().await.unwrap_or(Value::Null) }
    }
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    /// A 429 that says when to come back (at least a second).
    fn assert_limited(&self, what: &str) {
        assert_eq!(self.status, StatusCode::TOO_MANY_REQUESTS, "{what}: {:?}", self.body);
        assert!(self.retry_after.is_some_and(|s| s >= 1), "{what}: a 429 without Retry-After");
    }
}

/// Set a user's presence over REST (applied before the answer comes).
async fn presence(who: &Client, state: &str) {
    let (s, v) = who.send_json(reqwest::Method::PUT, "/api/v1/presence", json!({"state": state})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn say_rest(app: &TestApp, token: &str, conversation: i64, body: &str) -> Answer {
    let r = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(token)
        .json(&json!({"body": body}))
        .send()
        .await
        .unwrap();
    Answer::of(r).await
}

/// Open the WebSocket with `token`, from `from` (a loopback address) when given; the refusal's
/// status, Retry-After and body otherwise.
async fn ws_from(app: &TestApp, token: &str, from: Option<&str>) -> Result<Ws, Answer> {
    let mut req = format!("ws://{}/api/v1/ws?presence=none", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{}:0", from.unwrap_or("127.0.0.1")).parse().unwrap()).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    match tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await {
        Ok((inner, _)) => {
            let mut ws = Ws { inner, seen: Vec::new() };
            ws.next_of("ready").await;
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(Answer {
            status: StatusCode::from_u16(resp.status().as_u16()).unwrap(),
            retry_after: resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap()),
            body: serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap_or(Value::Null),
        }),
        Err(e) => panic!("ws connect: {e}"),
    }
}

/// Read until the server closes the socket; false when it is still open after 10 s.
async fn closed_by_server(ws: &mut Ws) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.inner.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                ws.seen.push(serde_json::from_str(&t).unwrap());
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

// ------------------------------------------------------------------------ 1. guest rights

crate::backend_tests! {
    async fn a_guests_rights_end_with_its_chat(app) {
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        let g = guest(&app, "Gina Guest").await;
        let mut gw = ws_from(&app, &g.token, None).await.expect("the guest connects while its chat is open");
        assert_eq!(j.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(g.chat));
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{}/accept", g.chat), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(say_rest(&app, &g.token, g.conversation, "my VPN fails").await.status, StatusCode::CREATED);

        // Judy ends the chat: the guest is told, then its socket is closed.
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{}/end", g.chat), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        gw.next_where(|v| v["type"] == "queue_chat" && v["state"] == "closed").await.expect("told the chat closed");
        assert!(closed_by_server(&mut gw).await, "the guest's socket is closed when its chat ends");

        // The token no longer writes, nor connects; the survey still goes through.
        let a = say_rest(&app, &g.token, g.conversation, "still here? 1/954").await;
        assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "forbidden"), "{:?}", a.body);
        assert!(a.message().contains("ended"), "a clear message: {}", a.message());
        let refused = ws_from(&app, &g.token, None).await.err().expect("no new socket after the chat ended");
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        assert!(refused.message().contains("ended"), "{:?}", refused.body);
        let r = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/queue-chats/{}/survey", g.chat)))
            .bearer_auth(&g.token)
            .json(&json!({"rating": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "the post-chat survey is still possible");
        // Judy got nothing after the end.
        let after: Vec<Value> = j.drain(300).await.into_iter().filter(|v| v["type"] == "event" && v["event"]["body"] == "still here? 1/954").collect();
        assert!(after.is_empty(), "{after:?}");

        // A guest that gives up while waiting is done too.
        presence(&judy, "busy").await;
        let h = guest(&app, "Hal Guest").await;
        let r = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/queue-chats/{}/end", h.chat)))
            .bearer_auth(&h.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let a = say_rest(&app, &h.token, h.conversation, "hello?").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{:?}", a.body);
    }
}

// ------------------------------------------------------------------------ 2. guest limits

with_settings! {
    Settings { guest_messages_per_minute: 1000, guest_messages_per_chat: 6, guest_bytes_per_chat: 3000, guest_connections: 2, ..Default::default() };
    async fn guests_are_held_to_their_message_byte_and_socket_limits(app) {
        let judy = app.login("judy").await;
        let _j = judy.ws_with("presence=none").await;
        // Busy: the chats wait, as the attacker's did.
        presence(&judy, "busy").await;

        // Messages per chat.
        let a = guest(&app, "Counting Guest").await;
        for i in 0..6 {
            assert_eq!(say_rest(&app, &a.token, a.conversation, &format!("m{i}")).await.status, StatusCode::CREATED, "message {i}");
        }
        let over = say_rest(&app, &a.token, a.conversation, "m6").await;
        assert_eq!((over.status, over.code()), (StatusCode::FORBIDDEN, "limit_reached"), "{:?}", over.body);
        assert!(over.message().contains('6'), "{}", over.message());
        // Over the WebSocket too: the same door.
        let mut aw = ws_from(&app, &a.token, None).await.unwrap();
        aw.send(json!({"type": "send", "conversation": a.conversation, "body": "m7", "client_id": "c7"})).await;
        let e = aw.next_where(|v| v["type"] == "error" && v["ref"] == "c7").await.expect("refused");
        assert_eq!(e["code"], "limit_reached", "{e}");

        // Bytes per chat: the storage quota.
        let b = guest(&app, "Bulky Guest").await;
        assert_eq!(say_rest(&app, &b.token, b.conversation, &"x".repeat(2000)).await.status, StatusCode::CREATED);
        let big = say_rest(&app, &b.token, b.conversation, &"y".repeat(1500)).await;
        assert_eq!((big.status, big.code()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"), "{:?}", big.body);
        assert!(big.message().contains("3000"), "{}", big.message());
        assert_eq!(say_rest(&app, &b.token, b.conversation, &"z".repeat(900)).await.status, StatusCode::CREATED, "what still fits is taken");

        // Sockets per guest.
        let c = guest(&app, "Socket Guest").await;
        let _c1 = ws_from(&app, &c.token, None).await.unwrap();
        let _c2 = ws_from(&app, &c.token, Some("127.0.0.2")).await.unwrap();
        let third = ws_from(&app, &c.token, Some("127.0.0.3")).await.err().expect("a third socket is refused");
        third.assert_limited("sockets per guest");
        assert_eq!(third.code(), "too_many_connections");
        // Nobody else is held to a guest's limit.
        let alice = app.login("alice").await;
        let _held = [alice.ws().await, alice.ws().await, alice.ws().await];
    }
}

with_settings! {
    Settings { guest_messages_per_minute: 5, ..Default::default() };
    async fn a_guest_sends_at_a_human_pace(app) {
        let judy = app.login("judy").await;
        let _j = judy.ws_with("presence=none").await;
        let g = guest(&app, "Fast Guest").await;
        for i in 0..5 {
            assert_eq!(say_rest(&app, &g.token, g.conversation, &format!("m{i}")).await.status, StatusCode::CREATED, "message {i}");
        }
        let a = say_rest(&app, &g.token, g.conversation, "too fast").await;
        a.assert_limited("messages per minute");
        assert_eq!(a.code(), "rate_limited");
        // Judy's own messages in the same chat are not a guest's.
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{}/accept", g.chat), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        for i in 0..8 {
            let (s, _) = judy.post(&format!("/api/v1/conversations/{}/messages", g.conversation), json!({"body": format!("j{i}")})).await;
            assert_eq!(s, StatusCode::CREATED);
        }
    }
}

// ------------------------------------------------------------------------ 3. ghost chats

with_settings! {
    Settings { seeker_grace_ms: 1000, ..Default::default() };
    async fn waiting_chats_whose_seeker_left_leave_the_line(app) {
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;
        presence(&judy, "busy").await;

        // Alice asks with two tabs open, then closes one: she is still there.
        let alice = app.login("alice").await;
        let mut a1 = alice.ws().await;
        let _a2 = alice.ws().await;
        let (s, v) = alice.post("/api/v1/queues/support/chats", json!({"question": "two tabs"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let alice_chat = v["chat"].as_i64().unwrap();
        a1.inner.close(None).await.unwrap();
        assert!(closed_by_server(&mut a1).await);

        // A ghost: a guest that never connects. Then a real visitor, third in line.
        let ghost = guest(&app, "Ghost").await;
        let real = guest(&app, "Real Visitor").await;
        let mut rw = ws_from(&app, &real.token, None).await.unwrap();
        let first = rw.next_where(|v| v["type"] == "queue_chat").await.unwrap();
        assert_eq!(first["position"].as_u64(), Some(3), "{first}");

        // The ghost leaves the line after the grace period; the visitor moves up.
        let moved = rw.next_where(|v| v["type"] == "queue_chat" && v["position"] == 2).await.expect("the ghost left the line");
        assert_eq!(moved["chat"].as_i64(), Some(real.chat));
        let r = reqwest::Client::new().get(app.url("/api/v1/queues/support/status")).send().await.unwrap();
        let status: Value = r.json().await.unwrap();
        assert_eq!(status["seekers_waiting"].as_u64(), Some(2), "{status}");
        let (s, v) = alice.get(&format!("/api/v1/queue-chats/{alice_chat}")).await;
        assert_eq!((s, v["state"].as_str(), v["position"].as_u64()), (StatusCode::OK, Some("waiting"), Some(1)), "alice, with a tab open, kept her place: {v}");
        let ghost_view = reqwest::Client::new().get(app.url(&format!("/api/v1/queue-chats/{}", ghost.chat))).bearer_auth(&ghost.token).send().await.unwrap();
        assert_eq!(ghost_view.status(), StatusCode::NOT_FOUND, "the ghost's chat is over");

        // Alice closes her last tab: she leaves the line too.
        drop(_a2);
        let moved = rw.next_where(|v| v["type"] == "queue_chat" && v["position"] == 1).await.expect("alice left the line");
        assert_eq!(moved["chat"].as_i64(), Some(real.chat));

        // Judy is free: the visitor who is there gets the offer, never a ghost.
        presence(&judy, "available").await;
        let offer = j.next_where(is("queue_offer")).await.unwrap();
        assert_eq!(offer["chat"].as_i64(), Some(real.chat));
        let olivia = app.login("olivia").await;
        let (_, stats) = olivia.get("/api/v1/queues/support/stats").await;
        assert_eq!(stats["interval"]["abandoned"].as_u64(), Some(2), "{stats}");
        assert!(j.drain(300).await.iter().all(|v| v["type"] != "queue_offer" || v["chat"].as_i64() == Some(real.chat)));
    }
}

// ------------------------------------------------------------------------ 4. pruning

crate::backend_tests! {
    async fn guests_and_expired_sessions_are_pruned(app) {
        use sb_core::store::AuthSession;
        let store = app.service.store().clone();
        let now = app.service.now();
        let judy = app.login("judy").await;
        let mut j = judy.ws_with("presence=none").await;

        // A guest whose chat is over, and one still waiting.
        let done = guest(&app, "Done Guest").await;
        assert_eq!(j.next_where(is("queue_offer")).await.unwrap()["chat"].as_i64(), Some(done.chat));
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{}/accept", done.chat), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(say_rest(&app, &done.token, done.conversation, "thanks").await.status, StatusCode::CREATED);
        let (s, _) = judy.post(&format!("/api/v1/queue-chats/{}/end", done.chat), json!({})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let waiting = guest(&app, "Waiting Guest").await;
        // A guest from before this release: its chat closed, its session never ended.
        let old = guest(&app, "Old Guest").await;
        let old_user = store.queue_chat(sb_core::queue::ChatId(old.chat as u64)).await.unwrap().unwrap().seeker;
        let r = reqwest::Client::new().post(app.url(&format!("/api/v1/queue-chats/{}/end", old.chat))).bearer_auth(&old.token).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        store.set_disabled(old_user, false).await.unwrap();
        let old_hash = sb_service::auth::token_hash(&old.token);
        store.delete_sessions_of(old_user).await.unwrap();
        store.create_session(AuthSession { token_hash: old_hash.clone(), user: old_user, csrf_token: "x".into(), created_at: now - 7_200_000, expires_at: now + 86_400_000 }).await.unwrap();

        // An expired session of alice beside her live one.
        let alice = app.login("alice").await;
        let alice_id = app.service.user_by_address("alice@example.com").await.unwrap().id;
        store.create_session(AuthSession { token_hash: "expired-hash".into(), user: alice_id, csrf_token: "x".into(), created_at: now - 3_600_000, expires_at: now - 1000 }).await.unwrap();
        assert!(store.session("expired-hash", 0).await.unwrap().is_some());

        let archived = store.archive_records(0, 100_000).await.unwrap().len();
        let report = app.service.prune_sessions_and_guests().await.unwrap();
        assert_eq!(store.archive_records(0, 100_000).await.unwrap().len(), archived, "the archive keeps everything");
        assert!(report.sessions_deleted >= 1, "{report:?}");
        assert_eq!(report.guests_retired, 1, "the old guest: {report:?}");

        assert!(store.session("expired-hash", 0).await.unwrap().is_none(), "the expired session is gone");
        assert_eq!(alice.get("/api/v1/me").await.0, StatusCode::OK, "a live session stays");
        assert!(store.session(&old_hash, 0).await.unwrap().is_none(), "the old guest's session is gone");
        let old_row = store.user(old_user).await.unwrap().expect("the guest stays: the archive names it");
        assert!(old_row.disabled);
        let r = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(&old.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // The waiting guest is untouched.
        assert_eq!(say_rest(&app, &waiting.token, waiting.conversation, "still waiting").await.status, StatusCode::CREATED);
        // The chats keep their records.
        assert!(store.queue_chat(sb_core::queue::ChatId(done.chat as u64)).await.unwrap().is_some());
        // Nothing left to do the second time.
        let again = app.service.prune_sessions_and_guests().await.unwrap();
        assert_eq!(again.guests_retired, 0, "{again:?}");
    }
}

// ------------------------------------------------------------------------ 5. IPv6 by /64

async fn public_hits(service: &Service, ip: &str, n: usize) -> Vec<bool> {
    (0..n).map(|_| service.admit_public(ip.parse().unwrap()).is_ok()).collect()
}

with_settings! {
    Settings { max_connections_per_address: 2, guest_sessions_per_hour: 2, public_requests_per_minute: 3, login_failures_per_address: 2, ..Default::default() };
    async fn limits_per_client_group_ipv6_by_64(app) {
        let s = app.service.clone();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        // One /64: 2001:db8:1:2::/64. Another: 2001:db8:1:3::/64.
        let (a, b, c, other) = ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:9", "2001:db8:1:2::abcd", "2001:db8:1:3::1");

        // Connections.
        let _p1 = s.admit_connection(ip(a)).unwrap();
        let _p2 = s.admit_connection(ip(b)).unwrap();
        assert!(matches!(s.admit_connection(ip(c)), Err(ServiceError::TooManyConnections(2))), "a third address of the same /64");
        let _p3 = s.admit_connection(ip(other)).expect("another /64 is another client");

        // Public APIs.
        assert_eq!(public_hits(&s, a, 2).await, [true, true]);
        assert_eq!(public_hits(&s, b, 2).await, [true, false]);
        assert_eq!(public_hits(&s, other, 1).await, [true]);

        // Guest sessions.
        let _judy = app.login("judy").await.ws().await;
        assert!(s.guest_chat("support", "G1", "", "", &[], ip(a)).await.is_ok());
        assert!(s.guest_chat("support", "G2", "", "", &[], ip(b)).await.is_ok());
        assert!(matches!(s.guest_chat("support", "G3", "", "", &[], ip(c)).await, Err(ServiceError::RateLimited(_))));
        assert!(s.guest_chat("support", "G4", "", "", &[], ip(other)).await.is_ok());

        // Sign-in failures.
        for _ in 0..2 {
            assert!(matches!(s.login("bob@example.com", "guess", ip(a)).await, Err(ServiceError::BadCredentials)));
        }
        assert!(matches!(s.login("bob@example.com", "demo", ip(c)).await, Err(ServiceError::RateLimited(_))), "the same /64 waits");
        assert!(s.login("bob@example.com", "demo", ip(other)).await.is_ok(), "another /64 signs in");

        // IPv4 stays per address; an IPv4-mapped IPv6 address is that IPv4 address.
        assert_eq!(public_hits(&s, "192.0.2.1", 3).await, [true, true, true]);
        assert_eq!(public_hits(&s, "::ffff:192.0.2.1", 1).await, [false]);
        assert_eq!(public_hits(&s, "192.0.2.2", 1).await, [true]);
    }
}

// ------------------------------------------------------------------------ 6. sign-in delays

async fn login_from(app: &TestApp, from: &str, address: &str, password: &str) -> Answer {
    let http = reqwest::Client::builder().local_address(from.parse::<IpAddr>().unwrap()).build().unwrap();
    let r = http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"address": address, "password": password}))
        .send()
        .await
        .unwrap();
    Answer::of(r).await
}

with_settings! {
    Settings { login_failures_per_address: 3, login_failures_per_ip: 6, login_delay_base_ms: 1000, ..Default::default() };
    async fn failed_sign_ins_slow_the_attacker_not_the_owner(app) {
        let attacker = "127.0.0.2";
        for _ in 0..3 {
            assert_eq!(login_from(&app, attacker, "bob@example.com", "guess").await.status, StatusCode::UNAUTHORIZED);
        }
        // The attacker's address waits, even with the right password…
        let wait = login_from(&app, attacker, "bob@example.com", "demo").await;
        wait.assert_limited("after the free failures");
        assert_eq!((wait.code(), wait.retry_after), ("rate_limited", Some(1)));
        // …while Bob signs in from his own address at once.
        assert_eq!(login_from(&app, "127.0.0.1", "bob@example.com", "demo").await.status, StatusCode::OK, "the owner is not locked out");
        // Each further failure doubles the wait.
        tokio::time::sleep(Duration::from_millis(1000 * wait.retry_after.unwrap())).await;
        assert_eq!(login_from(&app, attacker, "bob@example.com", "guess").await.status, StatusCode::UNAUTHORIZED);
        let longer = login_from(&app, attacker, "bob@example.com", "guess").await;
        longer.assert_limited("after another failure");
        assert_eq!(longer.retry_after, Some(2), "the delay grows");

        // One address trying many accounts slows down for all of them, and for it alone.
        let sprayer = "127.0.0.3";
        for who in ["carol", "dave", "erin", "frank", "grace", "heidi"] {
            assert_eq!(login_from(&app, sprayer, &format!("{who}@example.com"), "guess").await.status, StatusCode::UNAUTHORIZED, "{who}");
        }
        login_from(&app, sprayer, "ivan@example.com", "demo").await.assert_limited("per address");
        assert_eq!(login_from(&app, "127.0.0.1", "ivan@example.com", "demo").await.status, StatusCode::OK);
        assert_eq!(login_from(&app, "127.0.0.4", "carol@example.com", "demo").await.status, StatusCode::OK);
    }
}

// ------------------------------------------------------------------------ 7. /metrics

with_settings! {
    Settings { metrics_token: Some("scrape-secret".into()), ..Default::default() };
    async fn metrics_need_the_bearer_token_when_one_is_set(app) {
        let http = reqwest::Client::new();
        let none = http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(none.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
        let wrong = http.get(app.url("/metrics")).bearer_auth("scrape-secreT").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let alice = app.login("alice").await;
        let session = http.get(app.url("/metrics")).bearer_auth(&alice.token).send().await.unwrap();
        assert_eq!(session.status(), StatusCode::UNAUTHORIZED, "a user's session is not the scrape token");
        let ok = http.get(app.url("/metrics")).bearer_auth("scrape-secret").send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.text().await.unwrap().contains("switchboard_http_requests_total"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let settings = Settings { metrics_listen: Some("127.0.0.1:0".into()), ..Default::default() };
    let app = TestApp::start(Backend::Sqlite, settings).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let s = stop.clone();
    let server = tokio::spawn(sb_http::serve_metrics(listener, app.service.clone(), async move { s.notified().await }));
    let http = reqwest::Client::new();
    let main = http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND, "not on the main listener");
    let own = http.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("switchboard_ws_connections"));
    for path in ["/api/v1/me", "/", "/healthz"] {
        let r = http.get(format!("http://{addr}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}: only /metrics there");
    }
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    app.finish().await;
}

/// The binary: `metrics_listen` and `metrics_token` from the environment; the metrics
/// address is the second line on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_metrics_where_configured() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(unique("sbmetrics"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("SWITCHBOARD_METRICS_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_METRICS_TOKEN", "from-env")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_line = || lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let (first, second) = (next_line(), next_line());
    let main = first.strip_prefix("listening http://").map(str::to_string);
    let metrics = second.strip_prefix("metrics http://").map(str::to_string);
    let (Some(main), Some(metrics)) = (main, metrics) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("expected the listening and metrics lines, got {first:?} and {second:?}");
    };
    let http = reqwest::Client::new();
    let on_main = http.get(format!("http://{main}/metrics")).bearer_auth("from-env").send().await.unwrap().status();
    let no_token = http.get(format!("http://{metrics}/metrics")).send().await.unwrap().status();
    let with_token =
        http.get(format!("http://{metrics}/metrics")).bearer_auth("from-env").send().await.unwrap().status();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((on_main, no_token, with_token), (StatusCode::NOT_FOUND, StatusCode::UNAUTHORIZED, StatusCode::OK));
}

// ------------------------------------------------------------------------ 8. Retry-After

with_settings! {
    Settings {
        public_requests_per_minute: 2,
        guest_sessions_per_hour: 1,
        max_connections_per_address: 2,
        login_failures_per_address: 1,
        alerts_per_minute: 1,
        guest_messages_per_minute: 2,
        guest_connections: 1,
        ..Default::default()
    };
    async fn every_429_says_when_to_come_back(app) {
        let http = reqwest::Client::new();
        // Sign-in failures.
        assert_eq!(login_from(&app, "127.0.0.2", "bob@example.com", "guess").await.status, StatusCode::UNAUTHORIZED);
        login_from(&app, "127.0.0.2", "bob@example.com", "guess").await.assert_limited("sign-in");

        // The public APIs, JSON and legacy text/plain (one budget per client).
        let public = ["/api/v1/queues/support/status", "/api/v1/queues/support/status"];
        for path in public {
            assert_eq!(http.get(app.url(path)).send().await.unwrap().status(), StatusCode::OK);
        }
        for path in [
            "/api/v1/queues/support/status",
            "/api/v1/queues/support/widget",
            "/api/v1/presence?users=judy@example.com",
            "/ITFramework/webclient?getSTStatus=support",
            "/ITFramework/webclient?getQueueExpertsReady=support",
        ] {
            Answer::of(http.get(app.url(path)).send().await.unwrap()).await.assert_limited(path);
        }

        // Guest sessions per address, messages per guest, sockets per guest.
        let judy = app.login("judy").await;
        let _j = ws_from(&app, &judy.token, Some("127.0.0.5")).await.unwrap();
        let g = Answer::of(ask_as_guest(&app, "support", "First", Some("127.0.0.6")).await).await;
        assert_eq!(g.status, StatusCode::CREATED, "{:?}", g.body);
        Answer::of(ask_as_guest(&app, "support", "Second", Some("127.0.0.6")).await).await.assert_limited("guest sessions");
        let (token, conversation) = (g.body["token"].as_str().unwrap().to_string(), g.body["chat"]["conversation"].as_i64().unwrap());
        for i in 0..2 {
            assert_eq!(say_rest(&app, &token, conversation, &format!("m{i}")).await.status, StatusCode::CREATED);
        }
        say_rest(&app, &token, conversation, "m2").await.assert_limited("guest messages");
        let _g1 = ws_from(&app, &token, Some("127.0.0.6")).await.unwrap();
        ws_from(&app, &token, Some("127.0.0.7")).await.err().expect("one socket per guest").assert_limited("guest sockets");

        // Connections per address.
        let alice = app.login("alice").await;
        let _a = [ws_from(&app, &alice.token, Some("127.0.0.8")).await.unwrap(), ws_from(&app, &alice.token, Some("127.0.0.8")).await.unwrap()];
        ws_from(&app, &alice.token, Some("127.0.0.8")).await.err().expect("two per address").assert_limited("connections per address");

        // Alerts per source.
        let (app_token, _) = app.service.create_application("limited-sender", &["alerts:send".to_string()]).await.unwrap();
        let alert = json!({"title": "disk full", "audience": {"users": ["alice@example.com"]}});
        let first = Answer::of(http.post(app.url("/api/v1/alerts")).bearer_auth(&app_token).json(&alert).send().await.unwrap()).await;
        assert!(first.status.is_success(), "{:?}", first.body);
        Answer::of(http.post(app.url("/api/v1/alerts")).bearer_auth(&app_token).json(&alert).send().await.unwrap()).await.assert_limited("alerts");
    }
}
