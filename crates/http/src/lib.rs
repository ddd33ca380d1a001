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
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
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

pub fn router(service: Arc<Service>) -> Router {
    let max_body = service.settings().max_body_bytes;
    let state = AppState { service };
    let api = Router::new()
        .route("/api/v1/auth/login", post(rest::login))
        .route("/api/v1/auth/logout", post(rest::logout))
        .route("/api/v1/me", get(rest::me))
        .route("/api/v1/contacts", get(rest::contacts))
        .route("/api/v1/users", get(rest::users))
        .route("/api/v1/users/{address}", get(rest::user))
        .route("/api/v1/groups", get(rest::groups))
        .route("/api/v1/groups/{id}", get(rest::group))
        .route("/api/v1/presence", put(rest::set_presence).get(queues::public_presence).options(queues::preflight))
        .route("/api/v1/conversations", get(rest::conversations).post(rest::create_conversation))
        .route("/api/v1/conversations/{id}", get(rest::conversation))
        .route("/api/v1/conversations/{id}/members", post(rest::invite))
        .route("/api/v1/conversations/{id}/members/me", delete(rest::leave))
        .route("/api/v1/conversations/{id}/messages", get(rest::history).post(rest::send_message))
        .route("/api/v1/conversations/{id}/read", post(rest::mark_read))
        .route("/api/v1/queues", get(queues::list))
        .route("/api/v1/queues/{id}", get(queues::get).put(queues::put))
        .route("/api/v1/queues/{id}/status", get(queues::status).options(queues::preflight))
        .route("/api/v1/queues/{id}/stats", get(queues::stats))
        .route("/api/v1/queues/{id}/waiting", get(queues::waiting))
        .route("/api/v1/queues/{id}/offline", get(queues::offline))
        .route("/api/v1/queues/{id}/widget", get(queues::widget).options(queues::preflight))
        .route("/api/v1/queues/{id}/chats", post(queues::request_chat))
        .route("/api/v1/queue-chats/{id}", get(queues::chat))
        .route("/api/v1/queue-chats/{id}/accept", post(queues::accept))
        .route("/api/v1/queue-chats/{id}/decline", post(queues::decline))
        .route("/api/v1/queue-chats/{id}/end", post(queues::end))
        .route("/api/v1/queue-chats/{id}/transfer", post(queues::transfer))
        .route("/api/v1/queue-chats/{id}/wrapup", post(queues::wrap_up))
        .route("/api/v1/queue-chats/{id}/invite", post(queues::invite))
        .route("/api/v1/queue-chats/{id}/take", post(queues::take))
        .route("/api/v1/queue-chats/{id}/survey", post(queues::survey).options(queues::preflight))
        .route("/api/v1/queues/{id}/guest", post(queues::guest_chat).options(queues::preflight))
        .route("/ITFramework/webclient", get(queues::legacy).options(queues::preflight))
        .route("/api/v1/webhooks", get(queues::list_webhooks).post(queues::create_webhook))
        .route("/api/v1/webhooks/{id}", delete(queues::delete_webhook))
        .route("/api/v1/webhooks/{id}/deliveries", get(queues::deliveries))
        .route("/api/v1/alerts", get(alerts::list).post(alerts::send))
        .route("/api/v1/alerts/{id}", get(alerts::get))
        .route("/api/v1/alerts/mailboxes", get(alerts::mailboxes))
        .route("/api/v1/alerts/{id}/ack", post(alerts::ack))
        .route("/api/v1/hooks/alertmanager", post(alerts::alertmanager))
        .route("/api/v1/walls", get(compliance::walls).post(compliance::create_wall))
        .route("/api/v1/walls/{id}", put(compliance::update_wall))
        .route("/api/v1/compliance/violations", get(compliance::violations))
        .route("/api/v1/audit", get(compliance::audit))
        .route("/api/v1/disclaimers", get(compliance::disclaimers).post(compliance::create_disclaimer))
        .route("/api/v1/disclaimers/{id}", put(compliance::update_disclaimer))
        .route("/api/v1/archive/search", get(compliance::search))
        .route("/api/v1/archive/purge", post(compliance::purge))
        .route("/api/v1/retention", get(compliance::retention).put(compliance::set_retention))
        .route("/api/v1/holds", get(compliance::holds).post(compliance::create_hold))
        .route("/api/v1/holds/{id}/release", post(compliance::release_hold))
        .route("/api/v1/archive/export", get(compliance::export))
        .route("/api/v1/archive/conversations/{id}", get(compliance::archived_conversation))
        .route("/api/v1/admin/users", post(rest::admin_create_user))
        .route("/api/v1/admin/sessions", post(rest::admin_issue_session))
        .route("/api/v1/ws", get(ws::upgrade))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(rest::healthz))
        .route("/readyz", get(rest::readyz))
        .route("/metrics", get(rest::metrics))
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/sdk/switchboard.js", get(sdk_js))
        .route("/sdk/switchboard.css", get(sdk_css))
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
