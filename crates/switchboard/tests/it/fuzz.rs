//! Property-based hostile input over every REST route and the WebSocket, on both backends.
//!
//! Requests are generated from the router's own route list (`sb_http::ROUTES`), so a new
//! route is fuzzed without anyone remembering to: hostile path segments, queries and JSON
//! bodies (control characters, odd Unicode, full-text syntax, extreme numbers, wrong
//! types, broken JSON), sent as an anonymous caller, a user, an administrator or a
//! compliance officer. The properties: no answer is a 5xx, and every error is
//! `{"error":{"code","message"}}`. Over the WebSocket: every answer is a JSON frame, every
//! error frame has a code and a message, and the session is still there afterwards.
//!
//! Bounded: a fixed number of cases (`SWITCHBOARD_FUZZ_CASES`, default 2000 per backend)
//! from a fixed seed (`PROPTEST_RNG_SEED=<n>|random` for others; the seed is printed);
//! proptest shrinks a failure.

use crate::backend_tests;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Field names our DTOs use, so generated bodies reach the handlers' checks.
const FIELDS: &[&str] = &[
    "body",
    "client_id",
    "title",
    "kind",
    "members",
    "name",
    "email",
    "question",
    "up_to",
    "state",
    "note",
    "address",
    "display_name",
    "password",
    "roles",
    "audience",
    "users",
    "groups",
    "priority",
    "ttl_s",
    "q",
    "limit",
    "before",
    "after",
    "from",
    "to",
    "participant",
    "group",
    "queue",
    "expert",
    "answers",
    "tags",
    "reason",
    "url",
    "enabled",
    "mode",
    "group_a",
    "group_b",
    "texts",
    "frequency",
    "days",
    "custodian",
    "capacity",
    "method",
    "welcome",
    "dedup_key",
    "ack_required",
    "escalation",
    "offline",
    "conversation",
    "active",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f-\\x9f]{1,4}",
        Just("\u{0}".to_string()),
        Just("a\u{0}b".to_string()),
        Just("\u{202e}evil".to_string()),
        Just("\"*:^()-NEAR OR AND".to_string()),
        Just("' OR 1=1; DROP TABLE events; --".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        Just("x".repeat(70_000)),
        Just("💥".repeat(300)),
        Just(String::new()),
        Just(" ".to_string()),
        Just("alice@example.com".to_string()),
        Just("support".to_string()),
        "[a-z]{1,12}(@example\\.com)?",
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(1.5e300)),
        Just(json!(-0.0)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<i32>().prop_map(|n| json!(n)),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        hostile_string().prop_map(Value::String),
        hostile_number(),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec((prop::sample::select(FIELDS), hostile_value()), 0..6).prop_map(|kv| {
            let m: Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            serde_json::to_vec(&Value::Object(m)).unwrap()
        }),
        1 => hostile_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_string()),
        Just("2".to_string()),
        Just("support".to_string()),
        Just("alice@example.com".to_string()),
        Just("+1".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775808".to_string()),
        Just("%00".to_string()),
        Just("%FF".to_string()),
        Just("%E2%80%AE".to_string()),
        Just("..%2F..%2Fetc".to_string()),
        prop::collection::vec(any::<u8>(), 1..12)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect::<String>()),
        "[a-zA-Z0-9._~-]{1,20}",
    ]
}

/// One generated request: a route, its path filled in, a query, a body, a caller.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    json: bool,
    caller: usize,
}

/// Follow a `$ref` inside the OpenAPI document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(v),
        None => v,
    }
}

/// Values for a documented schema: mostly of its type and hostile, sometimes anything.
fn value_for(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema);
    let typed: BoxedStrategy<Value> = match schema["type"].as_str() {
        Some("string") => hostile_string().prop_map(Value::String).boxed(),
        Some("integer") | Some("number") => hostile_number().boxed(),
        Some("boolean") => any::<bool>().prop_map(Value::Bool).boxed(),
        Some("array") if depth < 3 => {
            prop::collection::vec(value_for(doc, &schema["items"], depth + 1), 0..3).prop_map(Value::Array).boxed()
        }
        Some("object") if depth < 3 => object_for(doc, schema, depth + 1),
        _ => hostile_value().boxed(),
    };
    prop_oneof![6 => typed, 1 => hostile_value()].boxed()
}

/// An object with some of the schema's properties (every one half the time).
fn object_for(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let props: Vec<(String, BoxedStrategy<Value>)> = schema["properties"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), value_for(doc, v, depth))).collect())
        .unwrap_or_default();
    if props.is_empty() {
        return hostile_value().boxed();
    }
    let (names, values): (Vec<String>, Vec<BoxedStrategy<Value>>) = props.into_iter().unzip();
    (values, prop::collection::vec(any::<bool>(), names.len()))
        .prop_map(move |(values, keep)| {
            let m: Map<String, Value> = names
                .iter()
                .zip(values)
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|((k, v), _)| (k.clone(), v))
                .collect();
            Value::Object(m)
        })
        .boxed()
}

/// Requests for one route, shaped by its OpenAPI description (query parameters, body).
fn requests_for(doc: &Value, method: &'static str, template: &'static str) -> BoxedStrategy<Case> {
    let op = &doc["paths"][template][method];
    let query: Vec<(String, BoxedStrategy<Value>)> = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| resolve(doc, p))
                .filter(|p| p["in"] == "query")
                .map(|p| (p["name"].as_str().unwrap_or("q").to_string(), value_for(doc, &p["schema"], 2)))
                .collect()
        })
        .unwrap_or_default();
    let (names, values): (Vec<String>, Vec<BoxedStrategy<Value>>) = query.into_iter().unzip();
    let query = (values, prop::collection::vec(any::<bool>(), names.len())).prop_map(move |(values, keep)| {
        names
            .iter()
            .zip(values)
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|((k, v), _)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                // URLs stay under what clients send (reqwest refuses a 200 kB one).
                let text: String = text.chars().take(300).collect();
                format!("{k}={}", text.bytes().map(|b| format!("%{b:02X}")).collect::<String>())
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let body = if schema.is_null() {
        body().boxed()
    } else {
        prop_oneof![
            8 => value_for(doc, schema, 0).prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => body(),
        ]
        .boxed()
    };
    (prop::collection::vec(path_segment(), 3), query, body, prop::bool::weighted(0.9), 0..4usize)
        .prop_map(move |(segments, query, body, json, caller)| {
            let mut path = String::new();
            let mut segments = segments.into_iter();
            for part in template.split('/').skip(1) {
                path.push('/');
                if part.starts_with('{') {
                    path.push_str(&segments.next().unwrap_or_default());
                } else {
                    path.push_str(part);
                }
            }
            if !query.is_empty() {
                path = format!("{path}?{query}");
            }
            Case { method, path, body, json, caller }
        })
        .boxed()
}

/// Every route of the router, each equally likely.
fn case() -> impl Strategy<Value = Case> {
    let doc: Value = serde_json::from_str(sb_http::OPENAPI).expect("the OpenAPI document");
    let routes: Vec<BoxedStrategy<Case>> = sb_http::ROUTES
        .iter()
        // Signing out ends the session the rest of the run uses; the WebSocket has its own part.
        .filter(|(_, p, _)| *p != "/api/v1/auth/logout" && *p != "/api/v1/ws")
        .map(|(m, p, _)| requests_for(&doc, m, p))
        .collect();
    proptest::strategy::Union::new(routes)
}

fn runner() -> TestRunner {
    let cases = std::env::var("SWITCHBOARD_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    // A fixed seed by default, so a run is repeatable (CI, bisecting); any other seed with
    // PROPTEST_RNG_SEED=<n>, or a fresh one with PROPTEST_RNG_SEED=random.
    let seed = match std::env::var("PROPTEST_RNG_SEED").ok().as_deref() {
        Some("random") => rand::random(),
        Some(v) => v.parse().expect("PROPTEST_RNG_SEED is a number or `random`"),
        None => 0x5eed_5b0a_4d00_0010,
    };
    eprintln!("fuzz: {cases} cases, PROPTEST_RNG_SEED={seed}");
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    })
}

/// Every error is `{"error":{"code":string,"message":string}}`.
fn error_shaped(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|v| v["error"]["code"].is_string() && v["error"]["message"].is_string())
}

backend_tests! {
    async fn no_request_gets_a_5xx_and_every_error_has_the_documented_shape(app) {
        let tokens: Vec<Option<String>> = vec![
            None,
            Some(app.login("alice").await.token),
            Some(app.login("admin").await.token),
            Some(app.login("trent").await.token),
        ];
        app.login("alice").await.direct_with("bob").await;
        let http = app.http();
        let base = app.base.clone();
        let rt = tokio::runtime::Handle::current();
        let statuses = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new()));
        let seen = statuses.clone();
        tokio::task::spawn_blocking(move || {
            runner()
                .run(&case(), |c| {
                    let method = reqwest::Method::from_bytes(c.method.to_uppercase().as_bytes()).unwrap();
                    let mut req = http.request(method, format!("{base}{}", c.path));
                    if let Some(t) = &tokens[c.caller] {
                        req = req.bearer_auth(t);
                    }
                    if c.method != "get" {
                        // Over the body limit the server answers 413 before reading, and may
                        // close while the client still writes: keep bodies under it.
                        if c.body.len() > 1_000_000 {
                            return Ok(());
                        }
                        let ct = if c.json { "application/json" } else { "text/plain" };
                        req = req.header("content-type", ct).body(c.body.clone());
                    }
                    let (status, text) = rt.block_on(async {
                        let r = req.send().await.expect("the server answers");
                        (r.status(), r.text().await.unwrap_or_default())
                    });
                    *seen.lock().unwrap().entry(status.as_u16()).or_default() += 1;
                    let shown = |s: &str| s.chars().take(300).collect::<String>();
                    prop_assert!(status.as_u16() < 500, "{} {} → {status} {}", c.method, shown(&c.path), shown(&text));
                    // The legacy Queue Manager endpoint answers text/plain, as its clients expect.
                    if status.as_u16() >= 400 && c.path.starts_with("/api/") {
                        prop_assert!(
                            error_shaped(&text),
                            "{} {} → {status}, not the error shape: {}",
                            c.method,
                            shown(&c.path),
                            shown(&text)
                        );
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
        // What the cases reached (a run that only ever saw 401s would prove little).
        let statuses = statuses.lock().unwrap().clone();
        eprintln!("fuzz: answers by status {statuses:?}");
        assert!(statuses.range(200..300).map(|(_, n)| n).sum::<u32>() > 0, "no case got past the checks: {statuses:?}");
    }

    async fn no_websocket_frame_breaks_the_session(app) {
        let alice = app.login("alice").await;
        let conv = alice.direct_with("bob").await;
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let frames = prop::collection::vec(
                (
                    prop::sample::select(vec!["send", "presence", "idle", "typing", "read", "accept", "decline", "end_chat", "ping", "bogus"]),
                    prop::collection::vec((prop::sample::select(FIELDS), hostile_value()), 0..4),
                    any::<bool>(),
                ),
                1..6,
            );
            let mut runner = runner();
            let config = Config { cases: (runner.config().cases / 5).max(20), ..runner.config().clone() };
            runner = TestRunner::new(config);
            runner
                .run(&frames, |frames| {
                    rt.block_on(async {
                        let mut ws = alice.ws().await;
                        for (kind, fields, with_conversation) in &frames {
                            let mut m: Map<String, Value> =
                                fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                            m.insert("type".into(), json!(kind));
                            if *with_conversation {
                                m.insert("conversation".into(), json!(conv));
                            }
                            ws.send(Value::Object(m)).await;
                        }
                        ws.send(json!({"type": "ping", "ref": "alive"})).await;
                        let mut seen = Vec::new();
                        loop {
                            let Some(f) = ws.next().await else {
                                return Err(TestCaseError::fail(format!("session ended after {frames:?}; saw {seen:?}")));
                            };
                            if f["type"] == "error" && !(f["code"].is_string() && f["message"].is_string()) {
                                return Err(TestCaseError::fail(format!("error frame without code/message: {f}")));
                            }
                            if f["type"] == "pong" && f["ref"] == "alive" {
                                return Ok(());
                            }
                            seen.push(f);
                        }
                    })
                })
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    }
}
