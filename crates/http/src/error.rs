//! The HTTP edge's one error mapping: every failure becomes
//! `{"error":{"code","message"}}` with its status. Internal details are logged, never sent.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sb_core::{CoreError, StoreError};
use sb_service::ServiceError;

/// `Retry-After` for a connection refused over a limit: one of the client's own must
/// close first, which a client cannot know; a few seconds is a fair guess.
pub const CONNECTION_RETRY_S: u64 = 5;

/// `Retry-After` for a 429 whose source named no time (a last resort: every source here
/// names one; the contract is that no 429 leaves without it).
pub const DEFAULT_RETRY_S: u64 = 1;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: send a bearer token or the session cookie",
        )
    }
}

/// Status, stable code and client-safe message for a service error. Shared by REST
/// responses and WebSocket error frames.
pub fn classify(e: &ServiceError) -> (StatusCode, &'static str, String) {
    use StatusCode as S;
    match e {
        ServiceError::Core(c) => match c {
            CoreError::Invalid(m) => (S::BAD_REQUEST, "bad_request", m.clone()),
            CoreError::NotFound(what) => (S::NOT_FOUND, "not_found", format!("{what} not found")),
            CoreError::Forbidden(m) => (S::FORBIDDEN, "forbidden", m.clone()),
            CoreError::Conflict(m) => (S::CONFLICT, "conflict", m.clone()),
            CoreError::MessageTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "message_too_large", c.to_string()),
            CoreError::Blocked(notice) => (S::FORBIDDEN, "blocked", notice.clone()),
            CoreError::Store(StoreError::NotFound) => (S::NOT_FOUND, "not_found", "not found".into()),
            CoreError::Store(StoreError::Conflict(m)) => (S::CONFLICT, "conflict", m.clone()),
            CoreError::Store(StoreError::Unavailable(m)) => {
                tracing::error!(error = %m, "storage failure");
                (S::SERVICE_UNAVAILABLE, "unavailable", "storage is unavailable; try again".into())
            }
        },
        ServiceError::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated", e.to_string()),
        ServiceError::BadCredentials => (S::UNAUTHORIZED, "bad_credentials", e.to_string()),
        ServiceError::RateLimited(_) => (S::TOO_MANY_REQUESTS, "rate_limited", e.to_string()),
        ServiceError::TooManyConnections(_) | ServiceError::TooManyGuestConnections(_) => {
            (S::TOO_MANY_REQUESTS, "too_many_connections", e.to_string())
        }
        ServiceError::LimitReached(m) => (S::FORBIDDEN, "limit_reached", m.clone()),
        ServiceError::QuotaExceeded(m) => (S::PAYLOAD_TOO_LARGE, "quota_exceeded", m.clone()),
        ServiceError::ShuttingDown => (S::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code, message) = classify(&e);
        let retry_after = match e {
            ServiceError::RateLimited(s) => Some(s.max(1)),
            ServiceError::TooManyConnections(_) | ServiceError::TooManyGuestConnections(_) => Some(CONNECTION_RETRY_S),
            _ => None,
        };
        Self { status, code, message, retry_after }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ServiceError::Core(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let text = r.body_text();
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server accepts",
            ),
            JsonRejection::JsonDataError(_) if text.contains("unknown field") => {
                Self::new(StatusCode::BAD_REQUEST, "unknown_field", clean(&text))
            }
            JsonRejection::JsonDataError(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_json", clean(&text))
            }
            JsonRejection::JsonSyntaxError(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_json", clean(&text)),
            _ => Self::new(r.status(), "bad_request", clean(&text)),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(clean(&r.body_text()))
    }
}

/// Serde's messages are fine for clients; cut them to a sane length.
fn clean(text: &str) -> String {
    text.chars().take(300).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut resp = (self.status, axum::Json(body)).into_response();
        // A 429 without its own wait gets the default from `ensure_retry_after`, which every
        // response passes (the one mechanism for all 429s, whoever made them).
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// Every 429 says when to come back: a response of any kind (JSON, the legacy
/// `text/plain`, one the framework made) that has no `Retry-After` gets the default.
pub fn ensure_retry_after(resp: &mut Response) {
    if resp.status() == StatusCode::TOO_MANY_REQUESTS && !resp.headers().contains_key(header::RETRY_AFTER) {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(DEFAULT_RETRY_S));
    }
}
