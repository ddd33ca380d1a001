use crate::backend_tests;
use crate::helpers::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use sb_service::Settings;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn raw_post(app: &TestApp, token: &str, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .http()
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.expect("errors are JSON"))
}

backend_tests! {
    async fn malformed_requests_get_clear_json_errors(app) {
        let alice = app.login("alice").await;
        let conv = alice.direct_with("bob").await;
        let path = format!("/api/v1/conversations/{conv}/messages");
        let (s, v) = raw_post(&app, &alice.token, &path, "application/json", b"{\"body\": ".to_vec()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
        let (s, v) = raw_post(&app, &alice.token, &path, "application/json", br#"{"body":"hi","colour":"red"}"#.to_vec()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_field")));
        assert!(v["error"]["message"].as_str().unwrap().contains("colour"));
        let (s, v) = raw_post(&app, &alice.token, &path, "application/json", br#"{"body": 5}"#.to_vec()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_json")));
        let (s, v) = raw_post(&app, &alice.token, &path, "text/plain", b"hi".to_vec()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
        let huge = format!("{{\"body\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
        let (s, v) = raw_post(&app, &alice.token, &path, "application/json", huge.into_bytes()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
        let (s, v) = alice.post(&path, json!({"body": "x".repeat(64 * 1024 + 1)})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("message_too_large")));
        let (s, _) = alice.post(&path, json!({"body": "x".repeat(64 * 1024)})).await;
        assert_eq!(s, StatusCode::CREATED, "exactly the limit is fine");
        let (s, v) = alice.post(&path, json!({"body": "   "})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = alice.post("/api/v1/conversations/abc/messages", json!({"body": "x"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = alice.post("/api/v1/conversations", json!({"kind": "direct", "members": ["<script>@example.com"]})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = alice.post("/api/v1/conversations", json!({"kind": "triad", "members": []})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = alice.get("/api/v1/no/such/thing").await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (s, v) = alice.send_json(reqwest::Method::PATCH, "/api/v1/conversations", json!({})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
        let (s, v) = alice.send_json(reqwest::Method::PUT, "/api/v1/presence", json!({"state": "offline"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = alice.get("/api/v1/conversations/1/messages?limit=lots").await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    }

    async fn hostile_text_is_stored_and_returned_verbatim(app) {
        // Escaping is the renderer's job (see the browser test); the API must neither
        // mangle nor "sanitize" text, or the archive would not be faithful.
        let alice = app.login("alice").await;
        let conv = alice.direct_with("bob").await;
        let hostile = "<img src=x onerror=alert(1)> \"'&; DROP TABLE events; -- \u{202e}";
        let (s, e) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": hostile})).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(e["body"], hostile);
        let (_, h) = alice.get(&format!("/api/v1/conversations/{conv}/messages")).await;
        assert_eq!(h["events"].as_array().unwrap().last().unwrap()["body"], hostile);
        let (s, _) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "nul\u{0}byte"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "control characters are refused");
    }

    async fn bad_websocket_frames_get_error_frames_and_the_socket_stays(app) {
        let alice = app.login("alice").await;
        let conv = alice.direct_with("bob").await;
        let mut a = alice.ws().await;
        a.send_raw("this is not json").await;
        let e = a.next_of("error").await;
        assert_eq!(e["code"], "bad_request");
        a.send(json!({"type": "teleport"})).await;
        assert_eq!(a.next_of("error").await["code"], "bad_request");
        a.send(json!({"type": "send", "conversation": conv, "body": "x".repeat(64 * 1024 + 1), "client_id": "big"})).await;
        let e = a.next_of("error").await;
        assert_eq!((e["code"].as_str(), e["ref"].as_str()), (Some("message_too_large"), Some("big")));
        a.send(json!({"type": "send", "conversation": 999999, "body": "hi", "client_id": "nowhere"})).await;
        let e = a.next_of("error").await;
        assert_eq!((e["code"].as_str(), e["ref"].as_str()), (Some("not_found"), Some("nowhere")));
        a.send(json!({"type": "ping", "ref": 7})).await;
        assert_eq!(a.next_of("pong").await["ref"], 7, "still connected");
        a.say(conv, "still works", "ok-1").await;
    }

    async fn websocket_needs_a_valid_session(app) {
        let req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
        // A cookie from another origin is cross-site WebSocket hijacking.
        let alice = app.login("alice").await;
        let mut req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
        req.headers_mut().insert("cookie", format!("sb_session={}", alice.token).parse().unwrap());
        req.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
        let mut req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
        req.headers_mut().insert("cookie", format!("sb_session={}", alice.token).parse().unwrap());
        req.headers_mut().insert("origin", format!("http://{}", app.addr).parse().unwrap());
        assert!(tokio_tungstenite::connect_async(req).await.is_ok(), "same-origin cookie works");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_from_one_address() {
    let app = TestApp::start(Backend::Sqlite, Settings { max_connections_per_address: 3, ..Default::default() }).await;
    let alice = app.login("alice").await;
    let _held = [alice.ws().await, alice.ws().await, alice.ws().await];
    let mut req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", alice.token).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "too_many_connections");
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    drop(_held);
    // Slots free up when sockets close.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {}", alice.token).parse().unwrap());
        if tokio_tungstenite::connect_async(req).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "connection slots are released");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_off_and_loses_nothing() {
    let app = TestApp::start(Backend::Sqlite, Settings { session_queue: 4, ..Default::default() }).await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    let conv = alice.direct_with("bob").await;
    let mut b = bob.ws_with("presence=none").await;
    let start = b.drain(100).await.len();
    let _ = start;
    // Bob stops reading. Alice sends far more than socket buffers and his queue hold.
    let body = "y".repeat(60 * 1024);
    let mut last = 0;
    for i in 0..300 {
        let (s, e) = alice
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                json!({"body": body, "client_id": format!("flood-{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "the sender is never slowed by a slow reader");
        last = e["id"].as_i64().unwrap();
    }
    // Now bob reads: what was queued, then the server's close (1008).
    let mut first_id = None;
    let mut closed_with = None;
    while let Ok(Some(msg)) = tokio::time::timeout(std::time::Duration::from_secs(10), b.inner.next()).await {
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "event" && first_id.is_none() {
                    first_id = v["event"]["id"].as_i64();
                }
            }
            Ok(Message::Close(frame)) => {
                closed_with = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(closed_with, Some(1008), "slow consumer is closed with policy violation");
    let m = app.http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!m.contains("switchboard_slow_client_disconnects_total 0"), "counted in metrics");
    // He reconnects from before the flood and gets every message, in order.
    let mut b = bob.ws_with(&format!("resume_from={}", first_id.unwrap_or(1) - 1)).await;
    let mut ids = Vec::new();
    while ids.last() != Some(&last) {
        let v = b.next_where(|v| v["type"] == "event").await.expect("all messages after resume");
        ids.push(v["event"]["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 300);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    app.finish().await;
}
