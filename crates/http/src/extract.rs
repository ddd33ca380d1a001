//! Extractors: who is calling (bearer token or session cookie with CSRF), and JSON / query
//! bodies whose rejections use the API's error shape.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use sb_core::store::AuthSession;
use sb_core::{Role, User};
use sb_service::{auth, Principal};
use serde::de::DeserializeOwned;

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_COOKIE: &str = "sb_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Any authenticated caller: a user or an application.
pub struct Caller {
    pub principal: Principal,
    pub token: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, via_cookie) = match bearer(&parts.headers) {
            Some(t) => (t, false),
            None => (cookie(&parts.headers, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?, true),
        };
        let principal = state.service.authenticate(&token).await?;
        if via_cookie && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            let ok = matches!(&principal, Principal::User { session, .. } if auth::same(sent, &session.csrf_token));
            if !ok {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "cookie-authenticated requests that change state need the X-CSRF-Token header",
                ));
            }
        }
        Ok(Caller { principal, token })
    }
}

/// Who is looking at a public route, if anyone: a signed-in user's look-ups are judged by
/// the policy like any other (a walled person's presence is not shown to them). A missing or
/// bad token is an anonymous look, never an error.
pub struct Viewer(pub Option<User>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = match Caller::from_request_parts(parts, state).await {
            Ok(Caller { principal: Principal::User { user, .. }, .. }) => Some(user),
            _ => None,
        };
        Ok(Viewer(user))
    }
}

/// A signed-in user, guests included (applications are refused). For the few endpoints a
/// guest may use: their queue chat and its conversation.
pub struct AnyUser {
    pub user: User,
    pub session: AuthSession,
    pub token: String,
}

impl FromRequestParts<AppState> for AnyUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller { principal: Principal::User { user, session }, token } => Ok(AnyUser { user, session, token }),
            Caller { principal: Principal::App(_), .. } => {
                Err(ApiError::forbidden("this endpoint is for signed-in users, not applications"))
            }
        }
    }
}

/// A signed-in user with an account (applications and guests are refused).
pub struct UserCaller {
    pub user: User,
    pub session: AuthSession,
    pub token: String,
}

impl FromRequestParts<AppState> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AnyUser { user, session, token } = AnyUser::from_request_parts(parts, state).await?;
        if user.is_guest() {
            return Err(ApiError::forbidden("guests can use their queue chat only"));
        }
        Ok(UserCaller { user, session, token })
    }
}

/// A signed-in administrator.
pub struct AdminCaller(pub User);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = UserCaller::from_request_parts(parts, state).await?;
        if !caller.user.has_role(Role::Admin) {
            return Err(ApiError::forbidden("administrators only"));
        }
        Ok(AdminCaller(caller.user))
    }
}

/// `axum::Json` with the API's error shape on rejection.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state).await.map(|j| ApiJson(j.0)).map_err(ApiError::from)
    }
}

/// `axum::extract::Query` with the API's error shape on rejection.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(ApiError::from)
    }
}

/// A numeric id from a path segment, strictly: 1 to 18 ASCII digits, no sign, no leading
/// zero, above 0 (`+1`, `01`, `-1`, `1e3`, `9223372036854775808` are refused, not read as
/// something near). `what` names it in the error.
pub fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    let digits_only = !raw.is_empty() && raw.len() <= 18 && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<i64>() {
        Ok(n) if digits_only && n > 0 && !raw.starts_with('0') => Ok(n),
        _ => Err(ApiError::bad_request(format!("invalid {what} id {:?}", raw.chars().take(40).collect::<String>()))),
    }
}

#[cfg(test)]
mod tests {
    use super::path_id;

    #[test]
    fn path_ids_are_plain_positive_decimals() {
        assert_eq!(path_id("1", "x").unwrap(), 1);
        assert_eq!(path_id("123456789012345678", "x").unwrap(), 123_456_789_012_345_678);
        for bad in ["", "0", "+1", "-1", "01", "1e3", " 1", "1 ", "9223372036854775807", "9223372036854775808", "१"] {
            assert!(path_id(bad, "x").is_err(), "{bad:?} accepted");
        }
    }
}
