//! `TestApp`: the real server on port 0, with its own database (a fresh SQLite file or a
//! fresh PostgreSQL database), and typed clients for HTTP and WebSocket.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sb_core::store::prelude::*;
use sb_service::{demo, Service, Settings, SystemClock};
use sb_store::SqlStore;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run a test body against both backends: `backend_tests! { async fn name(app) { … } }`.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::start($crate::helpers::Backend::Sqlite, Default::default()).await;
                    body(app.clone()).await;
                    app.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::helpers::TestApp::start($crate::helpers::Backend::Postgres, Default::default()).await;
                    body(app.clone()).await;
                    app.finish().await;
                }
            }
        )*
    };
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

/// Create a fresh PostgreSQL database and return its URL.
pub async fn fresh_pg_database() -> (String, String) {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let name = unique("sb_test");
    let pool = sqlx::AnyPool::connect(PG_ADMIN_URL).await.expect("PostgreSQL on 127.0.0.1:5432 (see RECIPES.md)");
    pool.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    pool.close().await;
    (format!("postgres://postgres@127.0.0.1:5432/{name}"), name)
}

pub async fn drop_pg_database(name: &str) {
    use sqlx::Executor;
    if let Ok(pool) = sqlx::AnyPool::connect(PG_ADMIN_URL).await {
        let _ = pool.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
        pool.close().await;
    }
}

#[derive(Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub service: Arc<Service>,
    store: Arc<SqlStore>,
    stop: Arc<tokio::sync::Notify>,
    done: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    cleanup: Arc<(Option<PathBuf>, Option<String>)>,
}

impl TestApp {
    pub async fn start(backend: Backend, settings: Settings) -> TestApp {
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("sbtest"));
                std::fs::create_dir_all(&dir).unwrap();
                (format!("sqlite://{}", dir.join("sb.db").display()), (Some(dir), None))
            }
            Backend::Postgres => {
                let (url, name) = fresh_pg_database().await;
                (url, (None, Some(name)))
            }
        };
        let store = Arc::new(SqlStore::connect(&url).await.expect("store"));
        store.set_archive_key(b"integration test archive key".to_vec());
        let service = Service::start(store.clone() as Arc<dyn Store>, settings, Arc::new(SystemClock));
        demo::seed(&service).await.expect("demo seed");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(tokio::sync::Notify::new());
        let s = stop.clone();
        let handle = tokio::spawn({
            let service = service.clone();
            async move {
                sb_http::serve(listener, service, async move { s.notified().await }).await.unwrap();
            }
        });
        TestApp {
            addr,
            base: format!("http://{addr}"),
            service,
            store,
            stop,
            done: Arc::new(tokio::sync::Mutex::new(Some(handle))),
            cleanup: Arc::new(cleanup),
        }
    }

    pub async fn finish(self) {
        self.stop.notify_one();
        if let Some(h) = self.done.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        self.store.close().await;
        if let Some(dir) = &self.cleanup.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = &self.cleanup.1 {
            drop_pg_database(name).await;
        }
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(20)).build().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sign in with the demo password; returns a bearer client.
    pub async fn login(&self, name: &str) -> Client {
        let http = self.http();
        let resp = http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"address": format!("{name}@example.com"), "password": "demo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "login {name}");
        let v: Value = resp.json().await.unwrap();
        Client {
            app: self.clone(),
            http,
            token: v["token"].as_str().unwrap().to_string(),
            csrf: v["csrf_token"].as_str().unwrap().to_string(),
        }
    }
}

/// A signed-in user over HTTP with a bearer token.
#[derive(Clone)]
pub struct Client {
    pub app: TestApp,
    pub http: reqwest::Client,
    pub token: String,
    pub csrf: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.app.url(path)).bearer_auth(&self.token).send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r =
            self.http.request(method, self.app.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    pub async fn direct_with(&self, other: &str) -> i64 {
        let (s, v) = self
            .post("/api/v1/conversations", json!({"kind": "direct", "members": [format!("{other}@example.com")]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with("").await
    }

    /// Open the WebSocket with extra query text (e.g. `resume_from=7`), wait for `ready`.
    pub async fn ws_with(&self, query: &str) -> Ws {
        let url = format!("ws://{}/api/v1/ws?{query}", self.app.addr);
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {}", self.token).parse().unwrap());
        let (inner, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await.expect("ws connect");
        let mut ws = Ws { inner, seen: Vec::new() };
        let ready = ws.next_of("ready").await;
        assert!(ready["last_event"].is_i64());
        ws
    }
}

pub struct Ws {
    pub inner: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// Frames read while looking for another type.
    pub seen: Vec<Value>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.inner.send(Message::Text(text.to_string().into())).await.unwrap();
    }

    /// The next JSON frame, or None on close or after 10 s.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.inner.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Some(serde_json::from_str(&t).expect("server frames are JSON"))
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Read until a frame of this type arrives (others are kept in `seen`). Panics after 10 s.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        self.next_where(|v| v["type"] == kind).await.unwrap_or_else(|| panic!("no {kind} frame"))
    }

    pub async fn next_where(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = tokio::time::timeout_at(deadline, self.next()).await.ok().flatten()?;
            if pred(&v) {
                return Some(v);
            }
            self.seen.push(v);
        }
    }

    /// Send a chat message and wait for its ack; returns the stored event.
    pub async fn say(&mut self, conversation: i64, body: &str, client_id: &str) -> Value {
        self.send(json!({"type": "send", "conversation": conversation, "body": body, "client_id": client_id})).await;
        let ack = self
            .next_where(|v| {
                (v["type"] == "ack" || v["type"] == "error") && v["client_id"] == client_id || v["ref"] == client_id
            })
            .await
            .expect("ack");
        assert_eq!(ack["type"], "ack", "{ack}");
        ack["event"].clone()
    }

    /// Frames that arrive within `ms` milliseconds.
    pub async fn drain(&mut self, ms: u64) -> Vec<Value> {
        let mut out = std::mem::take(&mut self.seen);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.inner.next()).await {
            if let Message::Text(t) = m {
                out.push(serde_json::from_str(&t).unwrap());
            }
        }
        out
    }
}

/// Run one of the test harness scripts (scripts/*-test.sh); its stdout.
pub fn harness(script: &str, args: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(script);
    let out = std::process::Command::new("bash").arg(&path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A frame predicate: frames of this `type`.
pub fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}
