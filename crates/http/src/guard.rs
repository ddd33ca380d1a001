//! The edge's guard: what every request passes before a handler sees it.
//!
//! - A declared body (`Content-Length`, also with `Expect: 100-continue`) over the limit is
//!   refused at once, before a byte of it is read.
//! - A body is read whole within `Settings::request_read_timeout`, or the request ends with
//!   `408` (headers have the same timeout in `serve`): a slow client holds a task for
//!   seconds, not for ever.
//! - Control characters (`sb_core::text`) in the path, the query or a JSON body are
//!   refused with `400 invalid_text`, whatever the route, so none reaches storage.
//! - Every error the framework answers by itself (a path that is not UTF-8, a missing
//!   body, a method not allowed) is given the API's `{"error":{…}}` shape.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sb_core::text;

/// The one route whose control characters are cleaned by its handler, not refused.
const CLEANED_NOT_REFUSED: &str = "/api/v1/hooks/alertmanager";

pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.service.settings().max_body_bytes;
    let deadline = app.service.settings().request_read_timeout;
    if let Err(e) = check_uri(req.uri()) {
        return e.into_response();
    }
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large().into_response();
    }
    // Whatever the headers say, the body itself knows whether it is empty.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(deadline, to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => return too_large().into_response(),
        Ok(Err(_)) => return ApiError::bad_request("the request body could not be read").into_response(),
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the request body did not arrive within {} ms", deadline.as_millis()),
            )
            .into_response()
        }
    };
    // Alertmanager does not retry a refused notification: its text is cleaned where it
    // becomes an alert (`AmPayload::to_alert`) instead of being refused here.
    if let Some(c) = json_control_char(&bytes).filter(|_| parts.uri.path() != CLEANED_NOT_REFUSED) {
        return invalid_text(c).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Give the framework's own error answers (plain text) under `/api/` the API's JSON shape.
/// (The legacy Queue Manager endpoints answer `text/plain` on purpose.)
pub async fn error_shape(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    if !api {
        return resp;
    }
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let text = to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let message: String = String::from_utf8_lossy(&text).chars().take(300).collect();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if message.trim().is_empty() { status.canonical_reason().unwrap_or("error").into() } else { message };
    let mut resp = ApiError::new(status, code, message).into_response();
    if let Some(v) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server accepts",
    )
}

pub fn invalid_text(c: char) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_text",
        format!("text may not contain control characters (found {})", text::describe(c)),
    )
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Paths and queries are single-line: any control character, percent-encoded or not.
fn check_uri(uri: &axum::http::Uri) -> Result<(), ApiError> {
    for part in [Some(uri.path()), uri.query()].into_iter().flatten() {
        let decoded = percent_decode(part.as_bytes());
        let text = String::from_utf8_lossy(&decoded);
        if let Some(c) = text::line_control_char(&text) {
            return Err(invalid_text(c));
        }
    }
    Ok(())
}

fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// The first forbidden control character (see `sb_core::text`) a JSON text carries, found
/// without parsing it: inside JSON strings control characters can only be escapes
/// (`\u0000`, `\b`, `\f`; a raw one is a syntax error the parser refuses anyway), and DEL
/// and C1 may also be there as they are. A backslash only occurs in strings, so every
/// escape is seen. Not JSON at all? Then the parser refuses it later.
pub fn json_control_char(json: &[u8]) -> Option<char> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'\\' => match json.get(i + 1) {
                Some(b'u') => {
                    let code = json
                        .get(i + 2..i + 6)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    if let Some(c) = code.and_then(char::from_u32).filter(|c| text::forbidden_control(*c)) {
                        return Some(c);
                    }
                    i += 6;
                }
                Some(b'b') => return Some('\u{8}'),
                Some(b'f') => return Some('\u{c}'),
                _ => i += 2,
            },
            0x7f => return Some('\u{7f}'),
            0xc2 if json.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b)) => {
                return char::from_u32(u32::from(json[i + 1]));
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner agrees with decoding the JSON and looking at every string.
    fn decoded_control(json: &str) -> Option<char> {
        fn walk(v: &serde_json::Value) -> Option<char> {
            match v {
                serde_json::Value::String(s) => text::control_char(s),
                serde_json::Value::Array(a) => a.iter().find_map(walk),
                serde_json::Value::Object(o) => o.iter().find_map(|(k, v)| text::control_char(k).or_else(|| walk(v))),
                _ => None,
            }
        }
        walk(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn control_characters_are_found_in_json_without_parsing_it() {
        let cases = [
            r#"{"body":"hello"}"#,
            r#"{"body":"a\u0000b"}"#,
            r#"{"body":"line\nbreak\ttab\r"}"#,
            r#"{"body":"bell\u0007"}"#,
            r#"{"body":"back\\u0000slash"}"#,
            r#"{"body":"\\\u0001"}"#,
            r#"{"body":"form\ffeed"}"#,
            r#"{"body":"back\bspace"}"#,
            "{\"body\":\"del\u{7f}\"}",
            "{\"body\":\"c1\u{85}\"}",
            r#"{"body":"c1 \u0085 escaped"}"#,
            r#"{"body":"é \u00e9 \u2028 \ud83c\udf89"}"#,
            r#"{"k\u0000ey":1}"#,
            r#"["\u001f"]"#,
        ];
        for json in cases {
            assert_eq!(json_control_char(json.as_bytes()), decoded_control(json), "{json}");
        }
    }

    #[test]
    fn percent_decoding_finds_encoded_controls() {
        assert_eq!(percent_decode(b"q=a%00b"), b"q=a\0b");
        assert_eq!(percent_decode(b"q=%"), b"q=%");
        assert_eq!(percent_decode(b"q=%4"), b"q=%4");
        assert_eq!(percent_decode(b"q=%41"), b"q=A");
        assert!(check_uri(&"/api/v1/users?q=a%0Ab".parse().unwrap()).is_err());
        assert!(check_uri(&"/api/v1/users/%00".parse().unwrap()).is_err());
        assert!(check_uri(&"/api/v1/users?q=caf%C3%A9".parse().unwrap()).is_ok());
    }
}
