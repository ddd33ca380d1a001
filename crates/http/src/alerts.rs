//! Alert endpoints: applications (scope `alerts:send`) and administrators send; recipients
//! acknowledge; administrators and sending applications read alerts and their deliveries.

use crate::error::ApiError;
use crate::extract::{AdminCaller, ApiJson, ApiQuery, Caller, UserCaller};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sb_core::alerts::{Audience, Escalation, NewAlert, Priority};
use sb_core::Role;
use sb_service::Principal;
use serde::Deserialize;
use serde_json::{json, Value};

pub const SCOPE: &str = "alerts:send";

/// Who is sending: `app:<name>` or `user:<address>` (administrators).
fn source(caller: &Caller) -> Result<String, ApiError> {
    match &caller.principal {
        Principal::App(app) if app.scopes.iter().any(|s| s == SCOPE) => Ok(format!("app:{}", app.name)),
        Principal::App(_) => Err(ApiError::forbidden("this application lacks the alerts:send scope")),
        Principal::User { user, .. } if user.has_role(Role::Admin) => Ok(format!("user:{}", user.address)),
        Principal::User { .. } => Err(ApiError::forbidden("administrators and applications with alerts:send only")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDto {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default = "normal")]
    pub priority: String,
    pub audience: Audience,
    /// Seconds (default one hour).
    #[serde(default = "hour")]
    pub ttl_s: i64,
    /// `hold` (default): offline recipients get it when they sign in within the TTL;
    /// `drop`: only those online now.
    #[serde(default = "hold")]
    pub offline: String,
    #[serde(default)]
    pub ack_required: bool,
    pub escalation: Option<Escalation>,
    pub dedup_key: Option<String>,
}

fn normal() -> String {
    "normal".into()
}
fn hour() -> i64 {
    3600
}
fn hold() -> String {
    "hold".into()
}

impl AlertDto {
    pub fn into_alert(self, source: String) -> Result<NewAlert, ApiError> {
        let priority = Priority::parse(&self.priority)
            .ok_or_else(|| ApiError::bad_request("priority is low, normal, high or urgent"))?;
        let hold_offline = match self.offline.as_str() {
            "hold" => true,
            "drop" => false,
            _ => return Err(ApiError::bad_request("offline is hold or drop")),
        };
        Ok(NewAlert {
            source,
            title: self.title,
            body: self.body,
            priority,
            audience: self.audience,
            ttl_ms: self.ttl_s.saturating_mul(1000),
            hold_offline,
            ack_required: self.ack_required,
            escalation: self.escalation,
            dedup_key: self.dedup_key.map(|k| k.trim().to_string()),
        })
    }
}

pub fn alert_json(a: &sb_core::alerts::Alert) -> Value {
    let x = &a.alert;
    json!({
        "id": a.id, "source": x.source, "title": x.title, "body": x.body, "priority": x.priority.as_str(),
        "audience": x.audience, "ttl_s": x.ttl_ms / 1000, "offline": if x.hold_offline { "hold" } else { "drop" },
        "ack_required": x.ack_required, "escalation": x.escalation, "dedup_key": x.dedup_key,
        "created_at": a.created_at, "expires_at": a.expires_at, "escalated_at": a.escalated_at,
    })
}

pub async fn send(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<AlertDto>, ApiError>,
) -> Result<Response, ApiError> {
    let source = source(&caller)?;
    let ApiJson(dto) = body?; // after the door: refused callers learn nothing of the schema
    let sent = app.service.send_alert(dto.into_alert(source)?).await?;
    let mut v = alert_json(&sent.alert);
    v["recipients"] = json!(sent.recipients);
    v["duplicate"] = json!(sent.duplicate);
    let status = if sent.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(v)).into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    source: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let own = source(&caller)?;
    // Applications see their own alerts; administrators everyone's.
    let only = if own.starts_with("app:") { Some(own) } else { q.source.clone() };
    let list = app.service.alerts_list(only.as_deref(), q.before, q.limit.unwrap_or(50)).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|s| {
            let mut v = alert_json(&s.alert);
            v["deliveries"] =
                Value::Object(s.counts.iter().map(|(st, n)| (st.as_str().to_string(), json!(n))).collect());
            v
        })
        .collect();
    let next = items.last().and_then(|v| v["id"].as_i64()).filter(|_| items.len() as i64 == q.limit.unwrap_or(50));
    Ok(Json(json!({"alerts": items, "next_before": next})))
}

pub async fn get(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let own = source(&caller)?;
    let id = crate::extract::path_id(&id, "alert")?;
    let (alert, deliveries) = app.service.alert_with_deliveries(id).await?;
    // An application sees what it sent, directly or as Alertmanager's webhook.
    if let Some(name) = own.strip_prefix("app:") {
        if alert.alert.source != own && alert.alert.source != format!("alertmanager:{name}") {
            return Err(ApiError::not_found("no such alert"));
        }
    }
    let mut v = alert_json(&alert);
    v["deliveries"] = json!(deliveries
        .iter()
        .map(|(d, who)| json!({
            "user": who, "state": d.state.as_str(), "round": d.round, "created_at": d.created_at,
            "delivered_at": d.delivered_at, "read_at": d.read_at, "acknowledged_at": d.acked_at, "detail": d.detail,
        }))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

pub async fn ack(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = crate::extract::path_id(&id, "alert")?;
    let id = app.service.ack_alert(&caller.user, Some(id)).await?;
    Ok(Json(json!({"id": id, "state": "acknowledged"})))
}

/// Prometheus Alertmanager's webhook (version 4), as it sends it, with an application's
/// bearer token (scope alerts:send). Labels pick the audience through the configured routes.
pub async fn alertmanager(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<sb_core::alerts::AmPayload>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let source = match &caller.principal {
        Principal::App(a) if a.scopes.iter().any(|s| s == SCOPE) => format!("alertmanager:{}", a.name),
        _ => return Err(ApiError::forbidden("an application token with the alerts:send scope is needed")),
    };
    let ApiJson(payload) = body?; // after the door: refused callers learn nothing of the schema
    let alert =
        payload.to_alert(&app.service.settings().alertmanager_routes, &source).map_err(ApiError::bad_request)?;
    let sent = app.service.send_alert(alert).await?;
    tracing::info!(alert = sent.alert.id, status = %payload.status, group = %payload.group_key, duplicate = sent.duplicate, "alertmanager notification");
    Ok(Json(json!({"alert": sent.alert.id, "recipients": sent.recipients, "duplicate": sent.duplicate})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxQuery {
    mailbox: Option<String>,
    limit: Option<i64>,
}

/// The mailbox listeners' state and what became of recent mails (administrators).
pub async fn mailboxes(
    State(app): State<AppState>,
    _admin: AdminCaller,
    ApiQuery(q): ApiQuery<MailboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let mails: Vec<Value> = app
        .service
        .mail_intakes(q.mailbox.as_deref(), q.limit.unwrap_or(50))
        .await?
        .iter()
        .map(|i| {
            json!({
                "mailbox": i.mailbox, "key": i.key, "sender": i.sender, "subject": i.subject,
                "outcome": i.outcome, "alert": i.alert, "detail": i.detail, "at": i.at,
            })
        })
        .collect();
    Ok(Json(json!({"mailboxes": app.service.mailboxes(), "mails": mails})))
}
