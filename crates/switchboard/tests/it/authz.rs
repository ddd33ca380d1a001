//! The authorization matrix: every route of `sb_http::ROUTES` × every kind of caller,
//! each answer checked against the route's `Access` column. A route cannot be added without
//! saying who it is for, and a handler that lets the wrong caller through (or keeps the
//! right one out) fails here.
//!
//! The matrix is about the door: paths name the `support` queue where a queue is meant
//! (Olivia manages it, Heidi manages sales, Judy is one of its experts) and ids that do not
//! exist elsewhere, so a caller who passes gets 400/404/409/422, never 401 or 403; bodies
//! are `{}`, which tests that handlers decide who may call before they read the body.

use crate::backend_tests;
use crate::helpers::*;
use sb_http::Access;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Guest,
    Plain,
    Expert,
    ManagerHere,
    ManagerElsewhere,
    Auditor,
    Officer,
    Admin,
    AppWithScope,
    AppWithout,
    Revoked,
}

const EVERYONE: [Who; 12] = [
    Who::Anonymous,
    Who::Guest,
    Who::Plain,
    Who::Expert,
    Who::ManagerHere,
    Who::ManagerElsewhere,
    Who::Auditor,
    Who::Officer,
    Who::Admin,
    Who::AppWithScope,
    Who::AppWithout,
    Who::Revoked,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Through the door: anything but 401 and 403.
    Pass,
    Unauthenticated,
    Forbidden,
}

/// The rule: what `who` gets from a route open to `access`.
fn expect(access: Access, who: Who) -> Expect {
    use Expect::*;
    use Who::*;
    if access == Access::Public {
        return Pass;
    }
    if matches!(who, Anonymous | Revoked) {
        return Unauthenticated;
    }
    let app = matches!(who, AppWithScope | AppWithout);
    let person = !app;
    let account = person && who != Guest;
    let ok = match access {
        Access::Public | Access::Signed => true,
        Access::Person => person,
        Access::User => account,
        Access::Admin => who == Admin,
        Access::Officer => matches!(who, Officer | Admin),
        Access::ArchiveOfficer => who == Officer,
        Access::Auditor => matches!(who, Auditor | Officer | Admin),
        Access::AlertSender => matches!(who, Admin | AppWithScope),
        Access::AlertApp => who == AppWithScope,
        Access::QueueManager => matches!(who, Admin | ManagerHere),
        Access::QueueStaff => matches!(who, Admin | ManagerHere | Expert),
        Access::AnyQueueManager => matches!(who, Admin | ManagerHere | ManagerElsewhere),
    };
    if ok {
        Pass
    } else {
        Forbidden
    }
}

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let parts: Vec<&str> = template.split('/').collect();
    for (i, part) in parts.iter().enumerate().skip(1) {
        out.push('/');
        if part.starts_with('{') {
            out.push_str(match parts[i - 1] {
                "queues" => "support",
                "users" => "bob@example.com",
                "groups" => "engineering",
                _ => "999999",
            });
        } else {
            out.push_str(part);
        }
    }
    out
}

async fn tokens(app: &TestApp) -> Vec<(Who, Option<String>)> {
    let mut out = Vec::new();
    for who in EVERYONE {
        let token = match who {
            Who::Anonymous => None,
            Who::Guest => {
                let r = app
                    .http()
                    .post(app.url("/api/v1/queues/support/guest"))
                    .json(&json!({"name": "Gus Guest", "email": "", "question": "hello"}))
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                Some(v["token"].as_str().unwrap_or_else(|| panic!("a guest token: {v}")).to_string())
            }
            Who::Plain => Some(app.login("alice").await.token),
            Who::Expert => Some(app.login("judy").await.token),
            Who::ManagerHere => Some(app.login("olivia").await.token),
            Who::ManagerElsewhere => Some(app.login("heidi").await.token),
            Who::Auditor => Some(app.login("sybil").await.token),
            Who::Officer => Some(app.login("trent").await.token),
            Who::Admin => Some(app.login("admin").await.token),
            Who::AppWithScope => {
                Some(app.service.create_application("matrix-sender", &["alerts:send".into()]).await.unwrap().0)
            }
            Who::AppWithout => Some(app.service.create_application("matrix-reader", &[]).await.unwrap().0),
            Who::Revoked => {
                let t = app.login("bob").await.token;
                let r = app.http().post(app.url("/api/v1/auth/logout")).bearer_auth(&t).send().await.unwrap();
                assert!(r.status().is_success(), "logout: {}", r.status());
                Some(t)
            }
        };
        out.push((who, token));
    }
    out
}

backend_tests! {
    async fn every_route_admits_exactly_the_callers_it_is_for(app) {
        // An expert of support online, so a guest can ask it.
        let _judy_online = app.login("judy").await.ws().await;
        let callers = tokens(&app).await;
        let mut wrong = Vec::new();
        // Signing out ends the session the rest of the matrix uses: that route goes last.
        let mut routes = sb_http::ROUTES.to_vec();
        routes.sort_by_key(|(_, p, _)| *p == "/api/v1/auth/logout");
        for (method, template, access) in routes {
            for (who, token) in &callers {
                let path = concrete(template);
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut req = app.http().request(m, app.url(&path));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if method != "get" {
                    req = req.json(&json!({}));
                }
                if template == "/api/v1/ws" {
                    req = req
                        .header("connection", "upgrade")
                        .header("upgrade", "websocket")
                        .header("sec-websocket-version", "13")
                        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
                }
                let status = req.send().await.unwrap().status().as_u16();
                let want = expect(access, *who);
                let got = match status {
                    401 => Expect::Unauthenticated,
                    403 => Expect::Forbidden,
                    _ => Expect::Pass,
                };
                // A logout by a token that was never valid is a no-op either way.
                let skip = template == "/api/v1/auth/logout" && matches!(who, Who::Anonymous | Who::Revoked) && status < 500;
                if (got != want && !skip) || status >= 500 {
                    wrong.push(format!("{method} {path} as {who:?}: {status}, expected {want:?} ({access:?})"));
                }
            }
        }
        assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    }
}
