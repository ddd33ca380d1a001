//! REST handlers under `/api/v1`. Each decodes, calls the service, encodes: no storage
//! calls and no policy here.

use crate::error::ApiError;
use crate::extract::{AdminCaller, AnyUser, ApiJson, ApiQuery, Caller, UserCaller, CSRF_COOKIE, SESSION_COOKIE};
use crate::wire;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sb_core::pipeline::Door;
use sb_core::{ConversationId, ConversationKind, EventId, PresenceState, Role};
use sb_service::Principal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    crate::extract::path_id(raw, "conversation").map(ConversationId)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    address: String,
    password: String,
}

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<Login>,
) -> ApiResult<Response> {
    let (token, session, user) = app.service.login(&req.address, &req.password, peer.ip()).await?;
    let presence = app.service.presence(user.id);
    let max_age = app.service.settings().session_ttl_ms / 1000;
    let body = json!({"token": token, "csrf_token": session.csrf_token, "user": wire::user(&user, Some(&presence))});
    let mut resp = Json(body).into_response();
    let cookies = [
        format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"),
        format!("{CSRF_COOKIE}={}; SameSite=Strict; Path=/; Max-Age={max_age}", session.csrf_token),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

pub async fn logout(State(app): State<AppState>, caller: Caller) -> ApiResult<Response> {
    app.service.logout(&caller.token).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; SameSite=Strict")) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

pub async fn me(State(app): State<AppState>, caller: Caller) -> ApiResult {
    match caller.principal {
        Principal::User { user, session } => {
            let presence = app.service.presence(user.id);
            let groups = app.service.groups_of(user.id).await?;
            let mut v = serde_json::to_value(wire::user(&user, Some(&presence))).unwrap_or_default();
            v["groups"] = json!(groups.iter().map(wire::group).collect::<Vec<_>>());
            v["csrf_token"] = json!(session.csrf_token);
            Ok(Json(v))
        }
        Principal::App(app) => Ok(Json(json!({"application": app.name, "scopes": app.scopes}))),
    }
}

/// Directory users with their live presence, as listed to clients.
fn listed<'a>(app: &AppState, users: impl IntoIterator<Item = &'a sb_core::User>) -> Vec<Value> {
    users
        .into_iter()
        .filter(|u| !u.disabled && !u.is_guest())
        .map(|u| serde_json::to_value(wire::user(u, Some(&app.service.presence(u.id)))).unwrap_or_default())
        .collect()
}

pub async fn contacts(State(app): State<AppState>, caller: UserCaller) -> ApiResult {
    let (groups, ungrouped) = app.service.contacts(&caller.user).await?;
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, members)| json!({"id": g.slug, "name": g.name, "members": listed(&app, members)}))
        .collect();
    Ok(Json(json!({"groups": groups, "ungrouped": listed(&app, &ungrouped)})))
}

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

pub async fn users(State(app): State<AppState>, caller: UserCaller, ApiQuery(q): ApiQuery<UserQuery>) -> ApiResult {
    let users = app.service.users(&caller.user, &q.q, q.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(json!({ "users": listed(&app, &users) })))
}

pub async fn user(State(app): State<AppState>, caller: UserCaller, Path(address): Path<String>) -> ApiResult {
    let u = app.service.user_for(&caller.user, &address).await?;
    let mut one = listed(&app, [&u]);
    one.pop().map(Json).ok_or_else(|| ApiError::not_found("user not found"))
}

pub async fn groups(State(app): State<AppState>, _caller: UserCaller) -> ApiResult {
    let groups = app.service.groups().await?;
    Ok(Json(json!({"groups": groups.iter().map(wire::group).collect::<Vec<_>>()})))
}

pub async fn group(State(app): State<AppState>, caller: UserCaller, Path(slug): Path<String>) -> ApiResult {
    let (groups, _) = app.service.contacts(&caller.user).await?;
    let (g, members) = groups
        .iter()
        .find(|(g, _)| g.slug == slug.to_lowercase())
        .ok_or_else(|| ApiError::not_found("group not found"))?;
    Ok(Json(json!({"id": g.slug, "name": g.name, "members": listed(&app, members)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    state: String,
    #[serde(default)]
    note: String,
}

pub async fn set_presence(
    State(app): State<AppState>,
    caller: UserCaller,
    ApiJson(req): ApiJson<SetPresence>,
) -> ApiResult {
    let state = PresenceState::parse(&req.state)
        .filter(|s| *s != PresenceState::Offline)
        .ok_or_else(|| ApiError::bad_request("state must be one of available, busy, dnd, away"))?;
    let p = app.service.set_presence_all(&caller.user, state, &req.note);
    Ok(Json(json!(wire::PresenceDto::from(&p))))
}

pub async fn conversations(State(app): State<AppState>, caller: UserCaller) -> ApiResult {
    let list = app.service.conversations_of(&caller.user).await?;
    Ok(Json(json!({"conversations": list.iter().map(wire::summary).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    kind: String,
    #[serde(default)]
    title: String,
    members: Vec<String>,
}

pub async fn create_conversation(
    State(app): State<AppState>,
    caller: UserCaller,
    ApiJson(req): ApiJson<CreateConversation>,
) -> ApiResult<Response> {
    let kind =
        ConversationKind::parse(&req.kind).ok_or_else(|| ApiError::bad_request("kind must be direct or group"))?;
    let c = app.service.create_conversation(&caller.user, kind, &req.title, &req.members).await?;
    Ok((StatusCode::CREATED, Json(json!(wire::conversation(&c)))).into_response())
}

pub async fn conversation(State(app): State<AppState>, caller: AnyUser, Path(id): Path<String>) -> ApiResult {
    let c = app.service.conversation_for(&caller.user, conversation_id(&id)?).await?;
    Ok(Json(json!(wire::conversation(&c))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    address: String,
}

pub async fn invite(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Invite>,
) -> ApiResult {
    let c = app.service.invite(&caller.user, conversation_id(&id)?, &req.address).await?;
    Ok(Json(json!(wire::conversation(&c))))
}

pub async fn leave(State(app): State<AppState>, caller: UserCaller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.service.leave(&caller.user, conversation_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn history(
    State(app): State<AppState>,
    caller: AnyUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult {
    let events = app
        .service
        .history(
            &caller.user,
            conversation_id(&id)?,
            q.before.map(EventId),
            q.after.map(EventId),
            q.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(json!({"events": events.iter().map(wire::event).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    body: String,
    client_id: Option<String>,
}

pub async fn send_message(
    State(app): State<AppState>,
    caller: AnyUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SendMessage>,
) -> ApiResult<Response> {
    let e = app
        .service
        .send_message(&caller.user, None, Door::Rest, conversation_id(&id)?, &req.body, req.client_id)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(wire::event(&e)))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    up_to: i64,
}

pub async fn mark_read(
    State(app): State<AppState>,
    caller: AnyUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MarkRead>,
) -> ApiResult {
    let at = app.service.mark_read(&caller.user, conversation_id(&id)?, EventId(req.up_to)).await?;
    Ok(Json(json!({"read_up_to": at.0})))
}

/// The archive is compliance officers' alone: an administrator who is not one neither makes
/// one over the API nor acts as one through a token (the operator on the server's machine
/// can, with `switchboard admin`, and that is audited).
fn separation_of_duties() -> ApiError {
    ApiError::forbidden(
        "administrators do not grant the compliance officer role or act as compliance officers; \
         use `switchboard admin user roles` on the server",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    address: String,
    display_name: String,
    password: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

pub async fn admin_create_user(
    State(app): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<Response> {
    let roles = req.roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>()?;
    if roles.contains(&Role::ComplianceOfficer) && !admin.has_role(Role::ComplianceOfficer) {
        return Err(separation_of_duties());
    }
    let u = app.service.create_user(&req.address, &req.display_name, req.password.as_deref(), &roles).await?;
    let after = json!({"address": u.address.as_str(), "display_name": u.display_name, "roles": Role::join(&u.roles)});
    app.service.audit(Some(&admin), "user.create", u.address.as_str(), None, Some(after)).await;
    Ok((StatusCode::CREATED, Json(json!(wire::user(&u, None)))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueSession {
    address: String,
}

/// An administrator issues a session token for a user (load tests, service accounts).
pub async fn admin_issue_session(
    State(app): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(req): ApiJson<IssueSession>,
) -> ApiResult<Response> {
    let u = app.service.user_by_address(&req.address).await?;
    if u.has_role(Role::ComplianceOfficer) && !admin.has_role(Role::ComplianceOfficer) {
        return Err(separation_of_duties());
    }
    let (token, session) = app.service.issue_session(u.id).await?;
    tracing::info!(admin = %admin.address, user = %u.address, "administrator issued a session token");
    app.service.audit(Some(&admin), "session.issue", u.address.as_str(), None, None).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "csrf_token": session.csrf_token, "expires_at": session.expires_at})),
    )
        .into_response())
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.service.ready().await {
        Ok(backend) => Json(json!({"status": "ready", "backend": backend})).into_response(),
        Err(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why).into_response(),
    }
}

/// `/metrics` on the main listener: open by default (like most Prometheus exporters),
/// behind the `metrics_token` when one is set, and not here at all when `metrics_listen`
/// gives the metrics a listener of their own.
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if app.service.settings().metrics_listen.is_some() {
        return not_found().await.into_response();
    }
    metrics_answer(&app, &headers)
}

/// `/metrics` on the metrics listener (`metrics_listen`).
pub async fn metrics_only(State(app): State<AppState>, headers: HeaderMap) -> Response {
    metrics_answer(&app, &headers)
}

fn metrics_answer(app: &AppState, headers: &HeaderMap) -> Response {
    if let Some(token) = &app.service.settings().metrics_token {
        // Prometheus sends it as `authorization: { credentials: … }` (type Bearer).
        if !crate::extract::bearer(headers).is_some_and(|t| sb_service::auth::same(&t, token)) {
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "metrics need the scrape bearer token")
                    .into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    (headers, app.service.render_metrics()).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
