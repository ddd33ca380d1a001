//! The HTTP edge: REST under `/api/v1`, the WebSocket protocol, the web client's assets,
//! health, readiness and metrics. Decoding and encoding only; all decisions are the
//! service's.

pub mod access;
mod alerts;
mod compliance;
pub mod error;
pub mod extract;
mod guard;
mod queues;
mod rest;
mod serve;
pub mod wire;
mod ws;

pub use access::Access;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use sb_service::Service;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// The OpenAPI document, maintained by hand beside the handlers; a test checks that every
/// route is in it.
pub const OPENAPI: &str = include_str!("../openapi.json");

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const APP_CSS: &str = include_str!("../../../web/app.css");
const SDK_JS: &str = include_str!("../../../web/sdk/switchboard.js");
const SDK_CSS: &str = include_str!("../../../web/sdk/switchboard.css");

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
}

/// Every route, as (method, path, who may call it) — the OpenAPI test, the fuzz suite and
/// the authorization matrix walk this list.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("post", "/api/v1/auth/login", Access::Public),
    ("post", "/api/v1/auth/logout", Access::Signed),
    ("get", "/api/v1/me", Access::Signed),
    ("get", "/api/v1/contacts", Access::User),
    ("get", "/api/v1/users", Access::User),
    ("get", "/api/v1/users/{address}", Access::User),
    ("get", "/api/v1/groups", Access::User),
    ("get", "/api/v1/groups/{id}", Access::User),
    ("put", "/api/v1/presence", Access::User),
    ("get", "/api/v1/presence", Access::Public),
    ("get", "/api/v1/conversations", Access::User),
    ("post", "/api/v1/conversations", Access::User),
    ("get", "/api/v1/conversations/{id}", Access::Person),
    ("post", "/api/v1/conversations/{id}/members", Access::User),
    ("delete", "/api/v1/conversations/{id}/members/me", Access::User),
    ("get", "/api/v1/conversations/{id}/messages", Access::Person),
    ("post", "/api/v1/conversations/{id}/messages", Access::Person),
    ("post", "/api/v1/conversations/{id}/read", Access::Person),
    ("get", "/api/v1/queues", Access::User),
    ("get", "/api/v1/queues/{id}", Access::User),
    ("put", "/api/v1/queues/{id}", Access::QueueManager),
    ("get", "/api/v1/queues/{id}/status", Access::Public),
    ("get", "/api/v1/queues/{id}/stats", Access::QueueManager),
    ("get", "/api/v1/queues/{id}/waiting", Access::QueueStaff),
    ("get", "/api/v1/queues/{id}/offline", Access::QueueStaff),
    ("get", "/api/v1/queues/{id}/widget", Access::Public),
    ("post", "/api/v1/queues/{id}/chats", Access::User),
    ("get", "/api/v1/queue-chats/{id}", Access::Person),
    ("post", "/api/v1/queue-chats/{id}/accept", Access::User),
    ("post", "/api/v1/queue-chats/{id}/decline", Access::User),
    ("post", "/api/v1/queue-chats/{id}/end", Access::Person),
    ("post", "/api/v1/queue-chats/{id}/transfer", Access::User),
    ("post", "/api/v1/queue-chats/{id}/wrapup", Access::User),
    ("post", "/api/v1/queue-chats/{id}/invite", Access::User),
    ("post", "/api/v1/queue-chats/{id}/take", Access::User),
    ("post", "/api/v1/queue-chats/{id}/survey", Access::Person),
    ("post", "/api/v1/queues/{id}/guest", Access::Public),
    ("get", "/ITFramework/webclient", Access::Public),
    ("get", "/api/v1/webhooks", Access::AnyQueueManager),
    ("post", "/api/v1/webhooks", Access::AnyQueueManager),
    ("delete", "/api/v1/webhooks/{id}", Access::AnyQueueManager),
    ("get", "/api/v1/webhooks/{id}/deliveries", Access::AnyQueueManager),
    ("get", "/api/v1/alerts", Access::AlertSender),
    ("post", "/api/v1/alerts", Access::AlertSender),
    ("get", "/api/v1/alerts/{id}", Access::AlertSender),
    ("get", "/api/v1/alerts/mailboxes", Access::Admin),
    ("post", "/api/v1/alerts/{id}/ack", Access::User),
    ("post", "/api/v1/hooks/alertmanager", Access::AlertApp),
    ("get", "/api/v1/walls", Access::Officer),
    ("post", "/api/v1/walls", Access::Officer),
    ("put", "/api/v1/walls/{id}", Access::Officer),
    ("get", "/api/v1/compliance/violations", Access::Officer),
    ("get", "/api/v1/audit", Access::Auditor),
    ("get", "/api/v1/disclaimers", Access::Officer),
    ("post", "/api/v1/disclaimers", Access::Officer),
    ("put", "/api/v1/disclaimers/{id}", Access::Officer),
    ("get", "/api/v1/archive/search", Access::ArchiveOfficer),
    ("post", "/api/v1/archive/purge", Access::ArchiveOfficer),
    ("get", "/api/v1/retention", Access::ArchiveOfficer),
    ("put", "/api/v1/retention", Access::ArchiveOfficer),
    ("get", "/api/v1/holds", Access::ArchiveOfficer),
    ("post", "/api/v1/holds", Access::ArchiveOfficer),
    ("post", "/api/v1/holds/{id}/release", Access::ArchiveOfficer),
    ("get", "/api/v1/archive/export", Access::ArchiveOfficer),
    ("get", "/api/v1/archive/conversations/{id}", Access::ArchiveOfficer),
    ("post", "/api/v1/admin/users", Access::Admin),
    ("post", "/api/v1/admin/sessions", Access::Admin),
    ("get", "/api/v1/ws", Access::Person),
    ("get", "/api/v1/openapi.json", Access::Public),
    ("get", "/healthz", Access::Public),
    ("get", "/readyz", Access::Public),
    ("get", "/metrics", Access::Public),
];

/// The router, built only from rows of [`ROUTES`]: a route cannot be served without its
/// row saying who may call it, and every row must be served — both checked when the router
/// is built, so any test that starts a server fails on a route without its row.
struct Table {
    router: Router<AppState>,
    served: Vec<(&'static str, &'static str)>,
}

impl Table {
    fn new() -> Self {
        Table { router: Router::new(), served: Vec::new() }
    }

    fn route<H: Handler<T, AppState>, T: 'static>(mut self, method: &'static str, path: &'static str, h: H) -> Self {
        assert!(
            ROUTES.iter().any(|(m, p, _)| *m == method && *p == path),
            "{method} {path} has no row in ROUTES: say who may call it (access::Access)"
        );
        let filter = match method {
            "get" => MethodFilter::GET,
            "post" => MethodFilter::POST,
            "put" => MethodFilter::PUT,
            "delete" => MethodFilter::DELETE,
            other => panic!("no such method in ROUTES: {other}"),
        };
        self.router = self.router.route(path, on(filter, h));
        self.served.push((method, path));
        self
    }

    /// A CORS preflight (`OPTIONS`) beside an API route: public, carries no data.
    fn preflight<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, on(MethodFilter::OPTIONS, h));
        self
    }

    /// A file of the web client.
    fn page<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, get(h));
        self
    }

    fn finish(self) -> Router<AppState> {
        for (method, path, _) in ROUTES {
            assert!(self.served.contains(&(*method, *path)), "ROUTES has {method} {path}, which nothing serves");
        }
        self.router
    }
}

pub fn router(service: Arc<Service>) -> Router {
    let max_body = service.settings().max_body_bytes;
    let state = AppState { service };
    let api = Table::new()
        .route("post", "/api/v1/auth/login", rest::login)
        .route("post", "/api/v1/auth/logout", rest::logout)
        .route("get", "/api/v1/me", rest::me)
        .route("get", "/api/v1/contacts", rest::contacts)
        .route("get", "/api/v1/users", rest::users)
        .route("get", "/api/v1/users/{address}", rest::user)
        .route("get", "/api/v1/groups", rest::groups)
        .route("get", "/api/v1/groups/{id}", rest::group)
        .route("put", "/api/v1/presence", rest::set_presence)
        .route("get", "/api/v1/presence", queues::public_presence)
        .route("get", "/api/v1/conversations", rest::conversations)
        .route("post", "/api/v1/conversations", rest::create_conversation)
        .route("get", "/api/v1/conversations/{id}", rest::conversation)
        .route("post", "/api/v1/conversations/{id}/members", rest::invite)
        .route("delete", "/api/v1/conversations/{id}/members/me", rest::leave)
        .route("get", "/api/v1/conversations/{id}/messages", rest::history)
        .route("post", "/api/v1/conversations/{id}/messages", rest::send_message)
        .route("post", "/api/v1/conversations/{id}/read", rest::mark_read)
        .route("get", "/api/v1/queues", queues::list)
        .route("get", "/api/v1/queues/{id}", queues::get)
        .route("put", "/api/v1/queues/{id}", queues::put)
        .route("get", "/api/v1/queues/{id}/status", queues::status)
        .route("get", "/api/v1/queues/{id}/stats", queues::stats)
        .route("get", "/api/v1/queues/{id}/waiting", queues::waiting)
        .route("get", "/api/v1/queues/{id}/offline", queues::offline)
        .route("get", "/api/v1/queues/{id}/widget", queues::widget)
        .route("post", "/api/v1/queues/{id}/chats", queues::request_chat)
        .route("get", "/api/v1/queue-chats/{id}", queues::chat)
        .route("post", "/api/v1/queue-chats/{id}/accept", queues::accept)
        .route("post", "/api/v1/queue-chats/{id}/decline", queues::decline)
        .route("post", "/api/v1/queue-chats/{id}/end", queues::end)
        .route("post", "/api/v1/queue-chats/{id}/transfer", queues::transfer)
        .route("post", "/api/v1/queue-chats/{id}/wrapup", queues::wrap_up)
        .route("post", "/api/v1/queue-chats/{id}/invite", queues::invite)
        .route("post", "/api/v1/queue-chats/{id}/take", queues::take)
        .route("post", "/api/v1/queue-chats/{id}/survey", queues::survey)
        .route("post", "/api/v1/queues/{id}/guest", queues::guest_chat)
        .route("get", "/ITFramework/webclient", queues::legacy)
        .route("get", "/api/v1/webhooks", queues::list_webhooks)
        .route("post", "/api/v1/webhooks", queues::create_webhook)
        .route("delete", "/api/v1/webhooks/{id}", queues::delete_webhook)
        .route("get", "/api/v1/webhooks/{id}/deliveries", queues::deliveries)
        .route("get", "/api/v1/alerts", alerts::list)
        .route("post", "/api/v1/alerts", alerts::send)
        .route("get", "/api/v1/alerts/{id}", alerts::get)
        .route("get", "/api/v1/alerts/mailboxes", alerts::mailboxes)
        .route("post", "/api/v1/alerts/{id}/ack", alerts::ack)
        .route("post", "/api/v1/hooks/alertmanager", alerts::alertmanager)
        .route("get", "/api/v1/walls", compliance::walls)
        .route("post", "/api/v1/walls", compliance::create_wall)
        .route("put", "/api/v1/walls/{id}", compliance::update_wall)
        .route("get", "/api/v1/compliance/violations", compliance::violations)
        .route("get", "/api/v1/audit", compliance::audit)
        .route("get", "/api/v1/disclaimers", compliance::disclaimers)
        .route("post", "/api/v1/disclaimers", compliance::create_disclaimer)
        .route("put", "/api/v1/disclaimers/{id}", compliance::update_disclaimer)
        .route("get", "/api/v1/archive/search", compliance::search)
        .route("post", "/api/v1/archive/purge", compliance::purge)
        .route("get", "/api/v1/retention", compliance::retention)
        .route("put", "/api/v1/retention", compliance::set_retention)
        .route("get", "/api/v1/holds", compliance::holds)
        .route("post", "/api/v1/holds", compliance::create_hold)
        .route("post", "/api/v1/holds/{id}/release", compliance::release_hold)
        .route("get", "/api/v1/archive/export", compliance::export)
        .route("get", "/api/v1/archive/conversations/{id}", compliance::archived_conversation)
        .route("post", "/api/v1/admin/users", rest::admin_create_user)
        .route("post", "/api/v1/admin/sessions", rest::admin_issue_session)
        .route("get", "/api/v1/ws", ws::upgrade)
        .route("get", "/api/v1/openapi.json", openapi)
        .route("get", "/healthz", rest::healthz)
        .route("get", "/readyz", rest::readyz)
        .route("get", "/metrics", rest::metrics)
        // Not API routes: CORS preflights and the web client's files.
        .preflight("/api/v1/presence", queues::preflight)
        .preflight("/api/v1/queues/{id}/status", queues::preflight)
        .preflight("/api/v1/queues/{id}/widget", queues::preflight)
        .preflight("/api/v1/queue-chats/{id}/survey", queues::preflight)
        .preflight("/api/v1/queues/{id}/guest", queues::preflight)
        .preflight("/ITFramework/webclient", queues::preflight)
        .page("/", index)
        .page("/assets/app.js", app_js)
        .page("/assets/app.css", app_css)
        .page("/sdk/switchboard.js", sdk_js)
        .page("/sdk/switchboard.css", sdk_css)
        .finish()
        .fallback(rest::not_found)
        .method_not_allowed_fallback(method_not_allowed);
    api.layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn(guard::error_shape))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .with_state(state)
}

/// Serve until `shutdown` completes, then stop accepting and drain: HTTP requests finish,
/// sessions are told and closed, the log writer flushes.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(service.clone());
    let svc = service.clone();
    // Sessions hold their connections open; close them so the server can drain.
    let header_timeout = service.settings().request_read_timeout;
    serve::run(listener, app, header_timeout, shutdown, move || svc.shutdown_token().cancel()).await;
    service.shut_down().await;
    Ok(())
}

/// Serve `/metrics` alone on `listener` (the `metrics_listen` setting: a port that only
/// Prometheus reaches, e.g. 127.0.0.1:9090) until `shutdown`; the `metrics_token`, when
/// set, is asked there too. Everything else there is 404.
pub async fn serve_metrics(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = service.settings().request_read_timeout;
    let app = Router::new()
        .route("/metrics", get(rest::metrics_only))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .with_state(AppState { service });
    serve::run(listener, app, header_timeout, shutdown, || {}).await;
    Ok(())
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let started = Instant::now();
    // The route template, not the raw path: ids in paths would make logs unsearchable.
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "-".into());
    let span = tracing::info_span!("http", id = NEXT_ID.fetch_add(1, Ordering::Relaxed), method = %req.method(), route);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    span.in_scope(|| tracing::debug!(status, elapsed_us = started.elapsed().as_micros() as u64, "request"));
    state.service.metrics().http_response(status, started.elapsed());
    error::ensure_retry_after(&mut resp);
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Defence in depth for hostile chat text: no inline script, no foreign origins.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn app_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], APP_JS)
        .into_response()
}

/// The embeddable SDK is loaded by pages of other origins.
async fn sdk_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SDK_JS,
    )
        .into_response()
}

async fn sdk_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SDK_CSS,
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], APP_CSS).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        for (method, path, _) in ROUTES {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} is missing from openapi.json");
        }
        let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len(), "openapi.json documents routes the server does not have");
    }
}
