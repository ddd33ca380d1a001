use crate::backend_tests;
use reqwest::StatusCode;
use serde_json::{json, Value};

backend_tests! {
    async fn sign_in_me_and_logout(app) {
        let http = app.http();
        let wrong = http.post(app.url("/api/v1/auth/login")).json(&json!({"address": "alice@example.com", "password": "nope"})).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let v: Value = wrong.json().await.unwrap();
        assert_eq!(v["error"]["code"], "bad_credentials");
        let unknown = http.post(app.url("/api/v1/auth/login")).json(&json!({"address": "nobody@example.com", "password": "demo"})).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED, "unknown users look like wrong passwords");

        // Addresses are case-insensitive.
        let ok = http.post(app.url("/api/v1/auth/login")).json(&json!({"address": "Alice@Example.COM", "password": "demo"})).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let v: Value = ok.json().await.unwrap();
        let token = v["token"].as_str().unwrap().to_string();
        assert_eq!(v["user"]["address"], "alice@example.com");

        let me: Value = http.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["display_name"], "Alice Anderson");
        assert_eq!(me["groups"][0]["id"], "engineering");

        let none = reqwest::Client::new().get(app.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        let forged = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth("sbs_forged").send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

        let out = http.post(app.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let after = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "token is dead after logout");
    }

    async fn cookie_sessions_need_csrf_for_changes(app) {
        let alice = app.login("alice").await;
        // The login set the HttpOnly cookie in this client's jar; no bearer from here on.
        let me = alice.http.get(app.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK, "GET works on the cookie alone");
        let body = json!({"kind": "direct", "members": ["bob@example.com"]});
        let no_csrf = alice.http.post(app.url("/api/v1/conversations")).json(&body).send().await.unwrap();
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
        let v: Value = no_csrf.json().await.unwrap();
        assert_eq!(v["error"]["code"], "csrf_failed");
        let bad = alice.http.post(app.url("/api/v1/conversations")).header("x-csrf-token", "wrong").json(&body).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::FORBIDDEN);
        let good = alice.http.post(app.url("/api/v1/conversations")).header("x-csrf-token", &alice.csrf).json(&body).send().await.unwrap();
        assert_eq!(good.status(), StatusCode::CREATED);
    }

    async fn failed_sign_ins_are_rate_limited(app) {
        let http = app.http();
        for _ in 0..5 {
            let r = http.post(app.url("/api/v1/auth/login")).json(&json!({"address": "bob@example.com", "password": "guess"})).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let r = http.post(app.url("/api/v1/auth/login")).json(&json!({"address": "bob@example.com", "password": "demo"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
        assert!(r.headers().get("retry-after").is_some());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        // Other accounts are not locked by bob's attacker.
        app.login("carol").await;
    }

    async fn directory_by_group_with_presence(app) {
        let alice = app.login("alice").await;
        let (s, v) = alice.get("/api/v1/contacts").await;
        assert_eq!(s, StatusCode::OK);
        let groups = v["groups"].as_array().unwrap();
        assert!(groups.len() >= 4);
        let people: usize = groups.iter().map(|g| g["members"].as_array().unwrap().len()).sum();
        assert!(people >= 20, "{people} people in groups");
        let eng = groups.iter().find(|g| g["id"] == "engineering").unwrap();
        let bob = eng["members"].as_array().unwrap().iter().find(|m| m["address"] == "bob@example.com").unwrap();
        assert_eq!(bob["presence"]["state"], "offline");

        let (s, v) = alice.get("/api/v1/users?q=car").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["users"][0]["address"], "carol@example.com");
        let (s, v) = alice.get("/api/v1/users/BOB@example.com").await;
        assert_eq!((s, v["display_name"].as_str()), (StatusCode::OK, Some("Bob Brown")));
        let (s, v) = alice.get("/api/v1/users/nobody@example.com").await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (s, v) = alice.get("/api/v1/groups/legal").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["members"].as_array().unwrap().len(), 4);
    }

    async fn admin_api_is_for_admins(app) {
        let alice = app.login("alice").await;
        let (s, v) = alice.post("/api/v1/admin/users", json!({"address": "zed@example.com", "display_name": "Zed"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
        let admin = app.login("admin").await;
        let (s, v) = admin.post("/api/v1/admin/users", json!({"address": "Zed@Example.com", "display_name": "Zed", "password": "zedzed", "roles": ["expert"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["address"], "zed@example.com");
        assert_eq!(v["roles"], json!(["user", "expert"]));
        let (s, v) = admin.post("/api/v1/admin/users", json!({"address": "zed@example.com", "display_name": "Zed"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
        let (s, v) = admin.post("/api/v1/admin/users", json!({"address": "x@example.com", "display_name": "X", "roles": ["emperor"]})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        let (s, v) = admin.post("/api/v1/admin/sessions", json!({"address": "zed@example.com"})).await;
        assert_eq!(s, StatusCode::CREATED);
        let token = v["token"].as_str().unwrap();
        let me: Value = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["address"], "zed@example.com");
    }

    async fn application_tokens_carry_scopes(app) {
        let (token, _) = app.service.create_application("grafana", &["alerts:send".to_string()]).await.unwrap();
        let me: Value = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["application"], "grafana");
        assert_eq!(me["scopes"], json!(["alerts:send"]));
        let r = reqwest::Client::new().get(app.url("/api/v1/conversations")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "applications do not chat as users");
        app.service.store().revoke_application("grafana").await.unwrap();
        let r = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    async fn health_readiness_metrics_and_openapi(app) {
        let http = app.http();
        assert_eq!(http.get(app.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
        let ready: Value = http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        let m = http.get(app.url("/metrics")).send().await.unwrap();
        assert!(m.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = m.text().await.unwrap();
        for name in ["switchboard_http_requests_total", "switchboard_ws_connections", "process_resident_memory_bytes", "switchboard_message_duration_seconds_bucket"] {
            assert!(text.contains(name), "{name} missing from /metrics");
        }
        let doc: Value = http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(doc["paths"]["/api/v1/conversations"].is_object());
        let page = http.get(app.url("/")).send().await.unwrap();
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    }
}
