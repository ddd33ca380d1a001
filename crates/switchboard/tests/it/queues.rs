use crate::backend_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use sb_service::Settings;
use serde_json::{json, Value};

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
