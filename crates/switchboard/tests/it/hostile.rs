//! Hostile input at every door gets a clear error in the documented shape, never a 5xx:
//! control characters, paths the framework refuses, bodies declared too large, slow
//! clients, broken WebSocket frames, out-of-range numbers.

use crate::backend_tests;
use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sb_service::Settings;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// `(status, error code)` of an answer, asserting the documented error shape.
fn code_of(s: StatusCode, v: &Value) -> (StatusCode, &str) {
    assert!(v["error"]["message"].is_string(), "{s}: not the error shape: {v}");
    (s, v["error"]["code"].as_str().expect("error.code"))
}

backend_tests! {
    async fn control_characters_are_refused_at_every_field(app) {
        let alice = app.login("alice").await;
        let admin = app.login("admin").await;
        let trent = app.login("trent").await;
        let conv = alice.direct_with("bob").await;
        let invalid = (StatusCode::BAD_REQUEST, "invalid_text");
        for nasty in ["nul\u{0}", "bell\u{7}", "esc\u{1b}[31m", "del\u{7f}", "c1\u{85}"] {
            let (s, v) = alice.get(&format!("/api/v1/users?q={}", urlencode(nasty))).await;
            assert_eq!(code_of(s, &v), invalid, "user search {nasty:?}");
            let (s, v) = trent.get(&format!("/api/v1/archive/search?q={}", urlencode(nasty))).await;
            assert_eq!(code_of(s, &v), invalid, "archive search {nasty:?}");
            let (s, v) = alice
                .post("/api/v1/conversations", json!({"kind": "group", "title": nasty, "members": ["bob@example.com"]}))
                .await;
            assert_eq!(code_of(s, &v), invalid, "group title {nasty:?}");
            let (s, v) = alice
                .post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "hi", "client_id": nasty}))
                .await;
            assert_eq!(code_of(s, &v), invalid, "client_id {nasty:?}");
            let (s, v) = admin
                .post(
                    "/api/v1/admin/users",
                    json!({"address": "mallory@example.com", "display_name": nasty, "password": "pw-123456", "roles": []}),
                )
                .await;
            assert_eq!(code_of(s, &v), invalid, "display name {nasty:?}");
            let r = app
                .http()
                .post(app.url("/api/v1/queues/support/guest"))
                .json(&json!({"name": nasty, "email": "", "question": "help"}))
                .send()
                .await
                .unwrap();
            let (s, v) = (r.status(), r.json::<Value>().await.unwrap());
            assert_eq!(code_of(s, &v), invalid, "guest name {nasty:?}");
        }
        // Line breaks are fine in a message, not in a title or a name.
        let (s, _) = alice.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "two\nlines\tok"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, v) = alice
            .post("/api/v1/conversations", json!({"kind": "group", "title": "two\nlines", "members": ["bob@example.com"]}))
            .await;
        assert_eq!(code_of(s, &v), (StatusCode::BAD_REQUEST, "bad_request"), "{v}");
        // The WebSocket door: the refused frame is named.
        let mut ws = alice.ws().await;
        ws.send(json!({"type": "send", "conversation": conv, "body": "a\u{0}b", "client_id": "nul-1"})).await;
        let e = ws.next_of("error").await;
        assert_eq!((e["code"].as_str(), e["ref"].as_str()), (Some("invalid_text"), Some("nul-1")), "{e}");
        ws.say(conv, "still here", "ok-1").await;
    }

    async fn framework_rejections_and_odd_ids_use_the_error_shape(app) {
        let alice = app.login("alice").await;
        let conv = alice.direct_with("bob").await;
        for path in [
            "/api/v1/conversations/%FF",
            "/api/v1/conversations/+1",
            "/api/v1/conversations/01",
            "/api/v1/conversations/-1",
            "/api/v1/conversations/9223372036854775807",
            "/api/v1/conversations/99999999999999999999",
            "/api/v1/queue-chats/%C0%AF",
            "/api/v1/queue-chats/1e3",
        ] {
            let (s, v) = alice.get(path).await;
            assert_eq!(code_of(s, &v), (StatusCode::BAD_REQUEST, "bad_request"), "{path}: {v}");
        }
        let (s, v) = alice.get("/api/v1/users/%FF%FE").await;
        assert!(s.is_client_error(), "{s}");
        code_of(s, &v);
        // Read markers out of range are refused, not clamped.
        for up_to in [i64::MIN, -1, 0, i64::MAX] {
            let (s, v) = alice.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": up_to})).await;
            assert_eq!(code_of(s, &v), (StatusCode::BAD_REQUEST, "bad_request"), "up_to {up_to}");
        }
        let mut ws = alice.ws().await;
        ws.send(json!({"type": "read", "conversation": conv, "up_to": i64::MAX})).await;
        assert_eq!(ws.next_of("error").await["code"], "bad_request");
        let sent = ws.say(conv, "read me", "r-1").await;
        let last = sent["id"].as_i64().unwrap();
        let (s, _) = alice.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": last})).await;
        assert!(s.is_success(), "{s}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Raw HTTP/1.1 over TCP: what the client libraries will not send.
async fn raw(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 4096];
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&buf).contains("}}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_declared_bodies_are_refused_at_once_and_slow_clients_are_cut_off() {
    let settings = Settings { request_read_timeout: Duration::from_secs(1), ..Settings::default() };
    let app = TestApp::start(Backend::Sqlite, settings).await;
    let alice = app.login("alice").await;
    let conv = alice.direct_with("bob").await;
    // Declared too large, with and without Expect: answered before any body is sent.
    for expect in ["Expect: 100-continue\r\n", ""] {
        let req = format!(
            "POST /api/v1/conversations/{conv}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000000\r\n{expect}\r\n",
            alice.token
        );
        let started = Instant::now();
        let answer = raw(app.addr, req.as_bytes(), Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(answer.contains("\"payload_too_large\""), "{answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(1), "answered at once, not after a timeout");
    }
    // A body that trickles in: 408 after the read timeout.
    let req = format!(
        "POST /api/v1/conversations/{conv}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"body\":",
        alice.token
    );
    let answer = raw(app.addr, req.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"request_timeout\""), "{answer}");
    // A connection that never sends a byte is closed after the timeout too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(_)) | Ok(Err(_))), "a silent connection still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early: {:?}", started.elapsed());
    // Headers that never end: the connection is closed after the timeout.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(_)) | Ok(Err(_))), "still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early: {:?}", started.elapsed());
    app.finish().await;
}

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn open_ws(app: &TestApp, token: &str) -> Raw {
    let mut req = format!("ws://{}/api/v1/ws", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            if serde_json::from_str::<Value>(&t).unwrap()["type"] == "ready" {
                return ws;
            }
        }
    }
}

/// The close code the server ends the socket with (None: closed without a close frame).
async fn close_code(ws: &mut Raw) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("the server answered") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_errors_end_with_the_right_close_code() {
    let app = TestApp::start(Backend::Sqlite, Settings::default()).await;
    let alice = app.login("alice").await;
    // Invalid UTF-8 in a text frame: 1007.
    let mut ws = open_ws(&app, &alice.token).await;
    let frame = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));
    // A message over 16 times the message limit: 1009.
    let mut ws = open_ws(&app, &alice.token).await;
    let big = "x".repeat(16 * 64 * 1024 + 8192);
    // The server may close before it has read it all: the send itself may then fail.
    let _ = ws.send(Message::Text(big.into())).await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
    // Reserved bits set without an extension: a protocol error, 1002.
    let mut ws = open_ws(&app, &alice.token).await;
    let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1002));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_frames_are_named_by_their_client_id() {
    let settings = Settings { max_frames_per_second: 5, ..Settings::default() };
    let app = TestApp::start(Backend::Sqlite, settings).await;
    let alice = app.login("alice").await;
    let conv = alice.direct_with("bob").await;
    let mut ws = alice.ws().await;
    for i in 0..12 {
        ws.send(json!({"type": "send", "conversation": conv, "body": "flood", "client_id": format!("f-{i}")})).await;
    }
    let e = ws.next_where(|v| v["type"] == "error" && v["code"] == "rate_limited").await.expect("rate_limited");
    let reference = e["ref"].as_str().expect("the refused frame is named");
    assert!(reference.starts_with("f-"), "{e}");
    app.finish().await;
}
