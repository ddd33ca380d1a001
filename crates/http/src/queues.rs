//! Queue endpoints: management (signed-in users read, admins and queue managers write) and
//! the public status APIs that web pages call from any origin — the JSON one and the
//! legacy Queue Manager one (`/ITFramework/webclient`), which answers `text/plain` exactly.

use crate::error::ApiError;
use crate::extract::{AnyUser, ApiJson, UserCaller};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sb_core::queue::{OverflowAction, QueueDef, QueueMember, RoutingMethod};
use sb_core::{Address, Role};
use sb_service::queues::QueueState;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Public responses may be read by any page (CORS) and must not be cached.
fn public(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// CORS preflight for the public endpoints.
pub async fn preflight() -> Response {
    let mut resp = public(StatusCode::NO_CONTENT.into_response());
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, authorization"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

pub async fn status(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = app.service.admit_public(peer.ip()) {
        return public(ApiError::from(e).into_response());
    }
    public(match app.service.queue_status(&id) {
        Some(s) => Json(json!({
            "id": s.id,
            "state": s.state.as_str(),
            "experts_ready": s.experts_ready,
            "seekers_waiting": s.seekers_waiting,
            "estimated_wait_s": s.estimated_wait_s,
        }))
        .into_response(),
        None => ApiError::not_found("no such queue").into_response(),
    })
}

fn text(status: StatusCode, body: String) -> Response {
    public((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

/// `GET /ITFramework/webclient?getSTStatus=<queue>` → `na` | `STATUS_ACTIVE` | `STATUS_AWAY` |
/// `STATUS_DND`; `?getQueueExpertsReady=<queue>` → a decimal count or `na`. The queue may be
/// named by id, display name or address, in any case.
pub async fn legacy(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = app.service.admit_public(peer.ip()) {
        let mut resp = text(StatusCode::TOO_MANY_REQUESTS, "rate limited".into());
        if let Some(s) = ApiError::from(e).retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        return resp;
    }
    if let Some(name) = q.get("getSTStatus") {
        let answer = match app.service.queue_status(name).map(|s| s.state) {
            None => "na",
            Some(QueueState::Open) => "STATUS_ACTIVE",
            Some(QueueState::Busy) => "STATUS_AWAY",
            Some(QueueState::Closed) => "STATUS_DND",
        };
        return text(StatusCode::OK, answer.into());
    }
    if let Some(name) = q.get("getQueueExpertsReady") {
        let answer = app.service.queue_status(name).map_or("na".to_string(), |s| s.experts_ready.to_string());
        return text(StatusCode::OK, answer);
    }
    text(StatusCode::BAD_REQUEST, "unknown request: use getSTStatus=<queue> or getQueueExpertsReady=<queue>".into())
}

fn queue_json(app: &AppState, d: &QueueDef) -> Value {
    let status = app.service.queue_status(&d.id);
    json!({
        "id": d.id,
        "display_name": d.display_name,
        "address": d.address.as_str(),
        "description": d.description,
        "method": d.method.as_str(),
        "offer_timeout_s": d.offer_timeout_ms / 1000,
        "capacity": d.capacity,
        "daily_cap": d.daily_cap,
        "max_wait_s": d.max_wait_ms.map(|m| m / 1000),
        "enabled": d.enabled,
        "closed": d.closed,
        "welcome": d.welcome,
        "closed_message": d.closed_message,
        "show_expert_name": d.show_expert_name,
        "overflow_action": d.overflow.as_str(),
        "overflow_queue": d.overflow.queue(),
        "no_expert_action": d.no_expert.as_str(),
        "no_expert_queue": d.no_expert.queue(),
        "offline_message": d.offline_message,
        "hours": d.hours,
        "open_now": sb_service::queues::open_now(d, app.service.now()),
        "form": d.form,
        "canned": d.canned,
        "wrap_up_tags": d.wrap_up_tags,
        "wrap_up_s": d.wrap_up_ms / 1000,
        "members": d.members.iter().map(|m| json!({"address": m.address.as_str(), "priority": m.priority, "skills": m.skills})).collect::<Vec<_>>(),
        "managers": d.managers.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        "state": status.as_ref().map(|s| s.state.as_str()),
        "experts_ready": status.as_ref().map(|s| s.experts_ready),
        "seekers_waiting": status.as_ref().map(|s| s.seekers_waiting),
    })
}

pub async fn list(State(app): State<AppState>, caller: UserCaller) -> Json<Value> {
    let defs = app.service.queue_defs();
    // Disabled queues are for the people who manage them.
    Json(json!({
        "queues": defs.iter().filter(|d| d.enabled || d.managed_by(&caller.user)).map(|d| queue_json(&app, d)).collect::<Vec<_>>()
    }))
}

pub async fn get(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = queue_def(&app, &id)
        .filter(|d| d.enabled || d.managed_by(&caller.user))
        .ok_or_else(|| ApiError::not_found("no such queue"))?;
    Ok(Json(queue_json(&app, &d)))
}

/// A queue by the id in a path (any case, surrounding space ignored, as `parse_slug`).
fn queue_def(app: &AppState, raw: &str) -> Option<QueueDef> {
    let id = raw.trim().to_lowercase();
    app.service.queue_defs().iter().find(|d| d.id == id).cloned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDto {
    address: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    skills: Vec<String>,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDto {
    display_name: String,
    /// Defaults to `<id>@<domain>`.
    address: Option<String>,
    #[serde(default)]
    description: String,
    method: Option<String>,
    offer_timeout_s: Option<i64>,
    capacity: Option<u32>,
    daily_cap: Option<u32>,
    max_wait_s: Option<i64>,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    welcome: String,
    #[serde(default)]
    closed_message: String,
    #[serde(default = "default_true")]
    show_expert_name: bool,
    #[serde(default)]
    members: Vec<MemberDto>,
    /// `close`, `queue` or `offline_message`: what becomes of a chat after `max_wait_s`.
    overflow_action: Option<String>,
    /// Queue id chats roll over to after `max_wait_s`.
    overflow_queue: Option<String>,
    /// The same choices, for when no expert of this queue is signed in.
    no_expert_action: Option<String>,
    /// Queue id chats go to when no expert of this one is signed in.
    no_expert_queue: Option<String>,
    #[serde(default)]
    offline_message: String,
    hours: Option<sb_core::hours::BusinessHours>,
    #[serde(default)]
    form: Vec<sb_core::form::FormField>,
    #[serde(default)]
    canned: Vec<sb_core::form::Canned>,
    #[serde(default)]
    wrap_up_tags: Vec<String>,
    #[serde(default)]
    wrap_up_s: i64,
    /// Addresses of the queue's managers (administrators only; kept when absent).
    managers: Option<Vec<String>>,
}

/// Create or replace a queue: administrators create queues and name their managers; a
/// queue's managers change its other settings.
pub async fn put(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    body: Result<ApiJson<QueueDto>, ApiError>,
) -> Result<Response, ApiError> {
    let admin = caller.user.has_role(Role::Admin);
    let current = queue_def(&app, &id);
    match &current {
        None if !admin => return Err(ApiError::forbidden("only administrators create queues")),
        Some(d) if !d.managed_by(&caller.user) => return Err(ApiError::forbidden("you do not manage this queue")),
        _ => {}
    }
    let ApiJson(dto) = body?; // after the door: refused callers learn nothing of the schema
    let id = sb_core::directory::parse_slug(&id)?;
    let address = match &dto.address {
        Some(a) => Address::parse(a)?,
        None => Address::parse(&format!("{id}@{}", app.service.settings().domain))?,
    };
    let mut def = QueueDef::new(&id, dto.display_name.trim(), address);
    if let Some(m) = &dto.method {
        def.method = RoutingMethod::parse(m).ok_or_else(|| {
            ApiError::bad_request("method must be broadcast, longest_idle, round_robin, least_busy, serial or manual")
        })?;
    }
    def.description = dto.description;
    def.offer_timeout_ms = dto.offer_timeout_s.unwrap_or(30) * 1000;
    def.capacity = dto.capacity.unwrap_or(1);
    def.daily_cap = dto.daily_cap;
    def.max_wait_ms = dto.max_wait_s.map(|s| s * 1000);
    def.enabled = dto.enabled;
    def.closed = dto.closed;
    def.welcome = dto.welcome;
    def.closed_message = dto.closed_message;
    def.show_expert_name = dto.show_expert_name;
    def.overflow = OverflowAction::parse(dto.overflow_action.as_deref(), dto.overflow_queue.as_deref())
        .map_err(|e| ApiError::bad_request(format!("overflow_{e}")))?;
    def.no_expert = OverflowAction::parse(dto.no_expert_action.as_deref(), dto.no_expert_queue.as_deref())
        .map_err(|e| ApiError::bad_request(format!("no_expert_{e}")))?;
    def.offline_message = dto.offline_message.trim().to_string();
    def.hours = dto.hours;
    def.form = dto.form;
    def.canned = dto.canned;
    def.wrap_up_tags = dto.wrap_up_tags.iter().map(|t| t.trim().to_string()).collect();
    def.wrap_up_ms = dto.wrap_up_s.saturating_mul(1000);
    for m in dto.members {
        let u = app
            .service
            .user_by_address(&m.address)
            .await
            .map_err(|_| ApiError::bad_request(format!("no such user: {}", m.address)))?;
        def.members.push(QueueMember { user: u.id, address: u.address, priority: m.priority, skills: m.skills });
    }
    let kept = current.as_ref().map(|d| d.managers.clone()).unwrap_or_default();
    def.managers = match dto.managers {
        None => kept,
        Some(list) => {
            let mut named = Vec::new();
            for a in list {
                let u = app
                    .service
                    .user_by_address(&a)
                    .await
                    .map_err(|_| ApiError::bad_request(format!("no such user: {a}")))?;
                if !named.iter().any(|m: &sb_core::queue::QueueManager| m.user == u.id) {
                    named.push(sb_core::queue::QueueManager { user: u.id, address: u.address });
                }
            }
            let same = named.len() == kept.len() && named.iter().all(|m| kept.contains(m));
            if !same && !admin {
                return Err(ApiError::forbidden("only administrators name a queue's managers"));
            }
            named
        }
    };
    let before = app.service.queue_defs().iter().find(|d| d.id == id).map(|d| queue_json(&app, d));
    let existed = before.is_some();
    let saved = app.service.save_queue(def).await?;
    tracing::info!(by = %caller.user.address, queue = %saved.id, "queue saved");
    let after = queue_json(&app, &saved);
    let action = if existed { "queue.update" } else { "queue.create" };
    app.service.audit(Some(&caller.user), action, &format!("queue {}", saved.id), before, Some(after)).await;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(queue_json(&app, &saved))).into_response())
}

fn chat_id(raw: &str) -> Result<sb_core::queue::ChatId, ApiError> {
    crate::extract::path_id(raw, "chat").map(|n| sb_core::queue::ChatId(n as u64))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestChat {
    #[serde(default)]
    question: String,
    /// The queue's pre-chat form: field name → value.
    #[serde(default)]
    answers: BTreeMap<String, String>,
}

fn answer_pairs(a: BTreeMap<String, String>) -> Vec<(String, String)> {
    a.into_iter().collect()
}

/// A signed-in user asks a queue for a chat.
pub async fn request_chat(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RequestChat>,
) -> Result<Response, ApiError> {
    let view = app.service.request_queue_chat(&caller.user, &id, &req.question, &answer_pairs(req.answers)).await?;
    Ok((StatusCode::CREATED, Json(crate::wire::queue_chat(&view))).into_response())
}

pub async fn chat(
    State(app): State<AppState>,
    caller: AnyUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let chat = chat_id(&id)?;
    let view = app
        .service
        .queue_chat_view_for(&caller.user, chat)
        .ok_or_else(|| ApiError::not_found("no such open queue chat"))?;
    Ok(Json(crate::wire::queue_chat(&view)))
}

pub async fn accept(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = app.service.accept_queue_chat(&caller.user, chat_id(&id)?).await?;
    Ok(Json(crate::wire::queue_chat(&view)))
}

pub async fn decline(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.service.decline_queue_chat(&caller.user, chat_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn end(State(app): State<AppState>, caller: AnyUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.service.end_queue_chat(&caller.user, chat_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    queue: Option<String>,
    expert: Option<String>,
}

pub async fn transfer(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Transfer>,
) -> Result<StatusCode, ApiError> {
    app.service.transfer_queue_chat(&caller.user, chat_id(&id)?, req.queue.as_deref(), req.expert.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestChat {
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    answers: BTreeMap<String, String>,
}

/// A website visitor (no account) asks a queue for a chat, from any origin.
pub async fn guest_chat(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Result<ApiJson<GuestChat>, ApiError>,
) -> Response {
    let result = async {
        let ApiJson(req) = body?;
        let answers = answer_pairs(req.answers);
        let (token, guest, view) =
            app.service.guest_chat(&id, &req.name, &req.email, &req.question, &answers, peer.ip()).await?;
        Ok::<_, ApiError>(
            (
                StatusCode::CREATED,
                Json(json!({"token": token, "guest": crate::wire::user(&guest, None), "chat": crate::wire::queue_chat(&view)})),
            )
                .into_response(),
        )
    }
    .await;
    public(result.unwrap_or_else(IntoResponse::into_response))
}

#[derive(Deserialize)]
pub struct StatsQuery {
    /// Interval start, ms since the epoch (default: 24 hours ago).
    from: Option<i64>,
    /// Interval end, ms since the epoch (default: now).
    to: Option<i64>,
}

/// Real-time and cumulative statistics (administrators, queue managers).
pub async fn stats(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    query: Result<crate::extract::ApiQuery<StatsQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let def = queue_def(&app, &id).ok_or_else(|| ApiError::not_found("no such queue"))?;
    if !def.managed_by(&caller.user) {
        return Err(ApiError::forbidden("the queue's managers and administrators only"));
    }
    let crate::extract::ApiQuery(q) = query?; // after the door
    let now = app.service.now();
    let (from, to) = (q.from.unwrap_or(now - 86_400_000), q.to.unwrap_or(now + 1));
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    let (def, rt, t) = app.service.queue_stats(&id, from, to).await?;
    Ok(Json(json!({
        "queue": def.id,
        "realtime": {
            "experts_total": rt.experts_total, "signed_in": rt.signed_in, "ready": rt.ready, "busy": rt.busy,
            "seekers_waiting": rt.waiting, "longest_wait_s": rt.longest_wait_ms / 1000, "active_chats": rt.active_chats,
        },
        "interval": {
            "from": from, "to": to,
            "requested": t.requested, "offered": t.offered, "accepted": t.accepted, "declined": t.declined,
            "offer_timeouts": t.offer_timeouts, "abandoned": t.abandoned, "overflowed": t.overflowed, "transferred": t.transferred,
            "avg_wait_s": t.avg_wait_s, "p90_wait_s": t.p90_wait_s, "avg_handle_s": t.avg_handle_s,
            "service_level": t.service_level, "service_level_threshold_s": t.service_level_threshold_s,
            "survey_average": t.survey_average,
        },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    rating: u8,
    #[serde(default)]
    comment: String,
}

/// The seeker's post-chat survey (guests included, from the widget's origin too).
pub async fn survey(
    State(app): State<AppState>,
    caller: Result<AnyUser, ApiError>,
    Path(id): Path<String>,
    body: Result<ApiJson<Survey>, ApiError>,
) -> Response {
    let result = async {
        let caller = caller?;
        let ApiJson(s) = body?;
        app.service.rate_queue_chat(&caller.user, chat_id(&id)?, s.rating, &s.comment).await?;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    public(result.unwrap_or_else(IntoResponse::into_response))
}

/// Webhooks of one queue are for its managers; webhooks for every queue, administrators'.
fn may_manage_webhooks(app: &AppState, user: &sb_core::User, queue: Option<&str>) -> Result<(), ApiError> {
    // Administrators first: a deleted queue's webhooks stay theirs to clean up.
    let allowed =
        user.has_role(Role::Admin) || queue.and_then(|q| queue_def(app, q)).is_some_and(|d| d.managed_by(user));
    if allowed {
        Ok(())
    } else if queue.is_none() {
        Err(ApiError::forbidden("webhooks for every queue are for administrators"))
    } else {
        Err(ApiError::forbidden("webhooks of a queue are for its managers and administrators"))
    }
}

/// The door to webhooks: administrators and managers of some queue.
fn manages_some_queue(app: &AppState, user: &sb_core::User) -> Result<(), ApiError> {
    if user.has_role(Role::Admin) || app.service.queue_defs().iter().any(|d| d.managed_by(user)) {
        Ok(())
    } else {
        Err(ApiError::forbidden("webhooks are for queue managers and administrators"))
    }
}

/// The webhook, if the caller may manage it (not found otherwise: its existence is not
/// their business).
async fn managed_webhook(app: &AppState, caller: &UserCaller, raw: &str) -> Result<sb_core::store::Webhook, ApiError> {
    manages_some_queue(app, &caller.user)?;
    let id = webhook_id(raw)?;
    let hook = app.service.webhooks().await?.into_iter().find(|h| h.id == id);
    match hook {
        Some(h) if may_manage_webhooks(app, &caller.user, h.queue.as_deref()).is_ok() => Ok(h),
        _ => Err(ApiError::not_found("no such webhook")),
    }
}

fn webhook_json(h: &sb_core::store::Webhook) -> Value {
    json!({"id": h.id, "queue": h.queue, "url": h.url, "created_at": h.created_at})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    /// One queue's events; all queues when absent.
    queue: Option<String>,
}

pub async fn create_webhook(
    State(app): State<AppState>,
    caller: UserCaller,
    body: Result<ApiJson<NewWebhook>, ApiError>,
) -> Result<Response, ApiError> {
    manages_some_queue(&app, &caller.user)?;
    let ApiJson(req) = body?; // after the door: refused callers learn nothing of the schema
    may_manage_webhooks(&app, &caller.user, req.queue.as_deref())?;
    let hook = app.service.create_webhook(req.queue.as_deref(), &req.url).await?;
    app.service
        .audit(Some(&caller.user), "webhook.create", &format!("webhook {}", hook.id), None, Some(webhook_json(&hook)))
        .await;
    let mut v = webhook_json(&hook);
    v["secret"] = json!(hook.secret); // shown once
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn list_webhooks(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    manages_some_queue(&app, &caller.user)?;
    let hooks = app.service.webhooks().await?;
    let mine = hooks.iter().filter(|h| may_manage_webhooks(&app, &caller.user, h.queue.as_deref()).is_ok());
    Ok(Json(json!({"webhooks": mine.map(webhook_json).collect::<Vec<_>>()})))
}

fn webhook_id(raw: &str) -> Result<i64, ApiError> {
    crate::extract::path_id(raw, "webhook")
}

pub async fn delete_webhook(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let hook = managed_webhook(&app, &caller, &id).await?;
    app.service.delete_webhook(hook.id).await?;
    app.service.audit(Some(&caller.user), "webhook.delete", &format!("webhook {id}"), None, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log of one webhook, newest first.
pub async fn deliveries(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hook = managed_webhook(&app, &caller, &id).await?;
    let list = app.service.webhook_deliveries(hook.id, 200).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "event": d.event, "payload": serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
                "state": d.state, "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
                "next_attempt_at": d.next_attempt_at, "created_at": d.created_at, "delivered_at": d.delivered_at,
            })
        })
        .collect();
    Ok(Json(json!({"deliveries": items})))
}

/// A queue's waiting list (its experts and managers).
pub async fn waiting(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = app.service.queue_waiting(&caller.user, &id)?;
    let items: Vec<Value> = list
        .iter()
        .map(|w| {
            let mut v = crate::wire::queue_chat(&w.view);
            v["seeker"] = json!(w.seeker.as_str());
            v["seeker_name"] = json!(w.seeker_name);
            v["question"] = json!(w.question);
            v["answers"] = crate::wire::answers(&w.answers);
            v["waited_s"] = json!(w.waited_ms / 1000);
            v
        })
        .collect();
    Ok(Json(json!({"waiting": items})))
}

/// What the click-to-chat widget needs to draw a queue's button and pre-chat form (public).
pub async fn widget(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = app.service.admit_public(peer.ip()) {
        return public(ApiError::from(e).into_response());
    }
    let (Some(def), Some(status)) = (
        app.service.queue_defs().iter().find(|d| d.enabled && d.answers_to(&id)).cloned(),
        app.service.queue_status(&id),
    ) else {
        return public(ApiError::not_found("no such queue").into_response());
    };
    public(
        Json(json!({
            "id": def.id, "display_name": def.display_name, "welcome": def.welcome,
            "state": status.state.as_str(), "open_now": status.state != QueueState::Closed,
            "closed_message": def.closed_message, "form": def.form,
        }))
        .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapUp {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    note: String,
}

pub async fn wrap_up(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WrapUp>,
) -> Result<StatusCode, ApiError> {
    app.service.wrap_up_queue_chat(&caller.user, chat_id(&id)?, &req.tags, &req.note).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    expert: String,
}

pub async fn invite(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Invite>,
) -> Result<StatusCode, ApiError> {
    app.service.invite_to_queue_chat(&caller.user, chat_id(&id)?, &req.expert).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A queue's offline messages (its experts and managers).
pub async fn offline(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = app.service.offline_messages(&caller.user, &id).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|m| {
            json!({
                "chat": m.record.id.0, "queue": m.record.queue,
                "seeker": m.seeker.as_ref().map(|a| a.as_str()), "seeker_name": m.seeker_name,
                "question": m.record.question, "answers": crate::wire::answers(&m.record.answers),
                "requested_at": m.record.requested_at, "conversation": m.record.conversation.0,
                "taken_by": m.taken_by.as_ref().map(|a| a.as_str()), "taken_at": m.taken_at,
            })
        })
        .collect();
    Ok(Json(json!({"messages": items})))
}

/// An expert takes an offline message to answer it in the seeker's conversation.
pub async fn take(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conversation = app.service.take_offline_message(&caller.user, chat_id(&id)?).await?;
    Ok(Json(json!({"conversation": conversation.0})))
}

#[derive(Deserialize)]
pub struct PresenceQuery {
    /// Comma-separated addresses.
    users: String,
}

/// Public presence for web pages (the SDK's `onPresence`): who is public is the
/// `public_presence` setting's choice; everyone else reads as `null`.
pub async fn public_presence(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    viewer: crate::extract::Viewer,
    q: Result<Query<PresenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        app.service.admit_public(peer.ip())?;
        let Query(q) = q.map_err(|_| ApiError::bad_request("give users=<address>,<address>,…"))?;
        let wanted: Vec<String> =
            q.users.split(',').map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty()).collect();
        let answers = app.service.public_presence(viewer.0.as_ref(), &wanted).await?;
        let map: serde_json::Map<String, Value> = answers
            .into_iter()
            .map(|(user, p)| {
                let v = p.map_or(
                    Value::Null,
                    |p| json!({"state": p.state.as_str(), "idle": p.idle, "sametime": sametime_status(&p)}),
                );
                (user, v)
            })
            .collect();
        Ok::<_, ApiError>(Json(json!({"presence": map})).into_response())
    }
    .await;
    public(result.unwrap_or_else(IntoResponse::into_response))
}

/// PRODUCT.md's mapping to Sametime status names.
fn sametime_status(p: &sb_core::Presence) -> &'static str {
    use sb_core::PresenceState as S;
    match p.state {
        S::Offline => "STATUS_OFFLINE",
        S::Away => "STATUS_AWAY",
        _ if p.idle => "STATUS_AWAY",
        S::Available => "STATUS_ACTIVE",
        S::Busy | S::Dnd => "STATUS_DND",
    }
}
