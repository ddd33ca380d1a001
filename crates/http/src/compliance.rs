//! Compliance endpoints: ethical walls, violations, the audit log (and, as they land,
//! archive search and export, disclaimers, retention and legal holds).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, UserCaller};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sb_core::{Role, User};
use serde::Deserialize;
use serde_json::{json, Value};

/// Ethical walls, violations and disclaimers: compliance officers and administrators.
pub(crate) fn officer(user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::ComplianceOfficer) || user.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("compliance officers only"))
    }
}

/// The archive (search, read, export), retention, legal holds and purge: compliance
/// officers alone. Separation of duties: an administrator, who can change who is who,
/// cannot read what people wrote or release a hold, unless also named an officer.
pub(crate) fn archive_officer(user: &User) -> Result<(), ApiError> {
    if user.has_role(Role::ComplianceOfficer) {
        Ok(())
    } else {
        Err(ApiError::forbidden("the archive, retention and legal holds are for compliance officers only"))
    }
}

async fn slugs(app: &AppState) -> Result<std::collections::HashMap<i64, String>, ApiError> {
    Ok(app.service.groups().await?.into_iter().map(|g| (g.id.0, g.slug)).collect())
}

fn wall_json(w: &sb_core::walls::Wall, slugs: &std::collections::HashMap<i64, String>) -> Value {
    let slug = |g: sb_core::GroupId| slugs.get(&g.0).cloned().unwrap_or_default();
    sb_service::compliance::wall_json(w, &slug(w.group_a), &slug(w.group_b))
}

pub async fn walls(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    officer(&caller.user)?;
    let slugs = slugs(&app).await?;
    let walls = app.service.walls_list().await?;
    Ok(Json(json!({"walls": walls.iter().map(|w| wall_json(w, &slugs)).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWall {
    name: String,
    group_a: String,
    group_b: String,
    mode: String,
}

pub async fn create_wall(
    State(app): State<AppState>,
    caller: UserCaller,
    body: Result<ApiJson<NewWall>, ApiError>,
) -> Result<Response, ApiError> {
    officer(&caller.user)?;
    let ApiJson(w) = body?; // after the door: refused callers learn nothing of the schema
    let wall = app.service.create_wall(&caller.user, &w.name, &w.group_a, &w.group_b, &w.mode).await?;
    let slugs = slugs(&app).await?;
    Ok((StatusCode::CREATED, Json(wall_json(&wall, &slugs))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallChange {
    name: Option<String>,
    mode: Option<String>,
    enabled: Option<bool>,
}

pub async fn update_wall(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    body: Result<ApiJson<WallChange>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    officer(&caller.user)?;
    let ApiJson(c) = body?; // after the door: refused callers learn nothing of the schema
    let id = crate::extract::path_id(&id, "wall")?;
    let wall = app.service.update_wall(&caller.user, id, c.name.as_deref(), c.mode.as_deref(), c.enabled).await?;
    let slugs = slugs(&app).await?;
    Ok(Json(wall_json(&wall, &slugs)))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
    before: Option<i64>,
}

pub async fn violations(
    State(app): State<AppState>,
    caller: UserCaller,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Json<Value>, ApiError> {
    officer(&caller.user)?;
    let list = app.service.violations(q.limit.unwrap_or(100)).await?;
    Ok(Json(json!({"violations": list.iter().map(crate::wire::violation).collect::<Vec<_>>()})))
}

/// The audit log: auditors, administrators and compliance officers.
pub async fn audit(
    State(app): State<AppState>,
    caller: UserCaller,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Json<Value>, ApiError> {
    let u = &caller.user;
    if !(u.has_role(Role::Auditor) || u.has_role(Role::Admin) || u.has_role(Role::ComplianceOfficer)) {
        return Err(ApiError::forbidden("auditors only"));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let entries = app.service.audit_log(q.before, limit).await?;
    let parse =
        |s: &Option<String>| s.as_deref().map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::String(t.into())));
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(json!({
        "entries": entries.iter().map(|e| json!({
            "id": e.id, "ts": e.ts, "actor": e.actor, "action": e.action, "target": e.target,
            "before": parse(&e.before), "after": parse(&e.after),
        })).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    participant: Option<String>,
    group: Option<String>,
    kind: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Export only: one conversation.
    conversation: Option<i64>,
    /// Export only: eml, jsonl, csv, xml.
    format: Option<String>,
}

async fn archive_query(
    app: &AppState,
    s: &SearchQuery,
    limit: i64,
) -> Result<sb_core::archive::ArchiveQuery, ApiError> {
    let filters = sb_service::compliance::ArchiveFilters {
        keywords: &s.q,
        participant: s.participant.as_deref(),
        group: s.group.as_deref(),
        kind: s.kind.as_deref(),
        from: s.from,
        to: s.to,
    };
    let mut q = app.service.archive_query(&filters, s.limit.unwrap_or(limit), s.offset.unwrap_or(0)).await?;
    q.conversation = s.conversation;
    Ok(q)
}

/// E-discovery search (compliance officers; audited).
pub async fn search(
    State(app): State<AppState>,
    caller: UserCaller,
    query: Result<ApiQuery<SearchQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let ApiQuery(s) = query?; // after the door
    let q = archive_query(&app, &s, 50).await?;
    let hits = app.service.archive_search(Some(&caller.user), &q).await?;
    let next = (hits.len() as i64 == q.limit).then_some(q.offset + q.limit);
    Ok(Json(json!({
        "hits": hits.iter().map(|h| json!({
            "id": h.id, "ts": h.ts, "kind": h.kind, "conversation": h.conversation,
            "conversation_kind": h.conversation_kind, "actor": h.actor,
            "snippet": sb_core::archive::snippet_segments(&h.snippet).into_iter()
                .map(|(text, hit)| json!({"text": text, "hit": hit})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "next_offset": next,
    })))
}

/// One archived conversation, whole (compliance officers; audited).
pub async fn archived_conversation(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let id = crate::extract::path_id(&id, "conversation")?;
    let c = app.service.archived_conversation(Some(&caller.user), id, true).await?;
    Ok(Json(json!({
        "conversation": {
            "id": c.id, "kind": c.kind, "title": c.title,
            "participants": c.participants.iter().map(|(a, n)| json!({"address": a, "display_name": n})).collect::<Vec<_>>(),
        },
        "records": c.records.iter().map(|r| json!({
            "id": r.id, "ts": r.entry.ts, "kind": r.entry.kind, "actor": r.entry.actor,
            "body": if r.purged { Value::Null } else { Value::String(r.entry.body.clone()) },
            "meta": serde_json::from_str::<Value>(&r.entry.meta).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
    })))
}

/// Export a result set (or one conversation) as a file (compliance officers; audited).
pub async fn export(
    State(app): State<AppState>,
    caller: UserCaller,
    query: Result<ApiQuery<SearchQuery>, ApiError>,
) -> Result<Response, ApiError> {
    archive_officer(&caller.user)?;
    let ApiQuery(s) = query?; // after the door
    let q = archive_query(&app, &s, 1000).await?;
    let format = s.format.as_deref().unwrap_or("jsonl");
    let file = app.service.archive_export(Some(&caller.user), &q, format).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, file.content_type.to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", file.file_name)),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        file.body,
    )
        .into_response())
}

fn disclaimer_json(d: &sb_core::disclaimers::Disclaimer, slugs: &std::collections::HashMap<i64, String>) -> Value {
    use sb_core::disclaimers::Audience;
    let audience = match &d.audience {
        Audience::All => "all".to_string(),
        Audience::Guests => "guests".to_string(),
        Audience::Group(g) => format!("group:{}", slugs.get(&g.0).cloned().unwrap_or_default()),
    };
    json!({
        "id": d.id, "name": d.name, "kinds": d.kinds, "audience": audience, "frequency": d.frequency.as_str(),
        "texts": d.texts, "fallback": d.fallback, "enabled": d.enabled, "created_at": d.created_at, "updated_at": d.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclaimerDto {
    name: String,
    kinds: Vec<String>,
    #[serde(default = "all")]
    audience: String,
    #[serde(default = "per_conversation")]
    frequency: String,
    texts: std::collections::BTreeMap<String, String>,
    fallback: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn all() -> String {
    "all".into()
}
fn per_conversation() -> String {
    "conversation".into()
}
fn yes() -> bool {
    true
}

async fn disclaimer_from(
    app: &AppState,
    id: i64,
    d: DisclaimerDto,
) -> Result<sb_core::disclaimers::Disclaimer, ApiError> {
    use sb_core::disclaimers::{Audience, Disclaimer, Frequency};
    let audience = match d.audience.as_str() {
        "all" => Audience::All,
        "guests" => Audience::Guests,
        other => match other.strip_prefix("group:") {
            Some(slug) => {
                let groups = app.service.groups().await?;
                let g = groups
                    .iter()
                    .find(|g| g.slug == slug.to_lowercase())
                    .ok_or_else(|| ApiError::bad_request(format!("no such group: {slug}")))?;
                Audience::Group(g.id)
            }
            None => return Err(ApiError::bad_request("audience is all, guests or group:<slug>")),
        },
    };
    let frequency =
        Frequency::parse(&d.frequency).ok_or_else(|| ApiError::bad_request("frequency is conversation or pair_day"))?;
    let fallback = d.fallback.or_else(|| d.texts.keys().next().cloned()).unwrap_or_default();
    Ok(Disclaimer {
        id,
        name: d.name.trim().to_string(),
        kinds: d.kinds,
        audience,
        frequency,
        texts: d.texts,
        fallback,
        enabled: d.enabled,
        created_at: 0,
        updated_at: 0,
    })
}

pub async fn disclaimers(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    officer(&caller.user)?;
    let slugs = slugs(&app).await?;
    let list = app.service.disclaimers_list().await?;
    Ok(Json(json!({"disclaimers": list.iter().map(|d| disclaimer_json(d, &slugs)).collect::<Vec<_>>()})))
}

pub async fn create_disclaimer(
    State(app): State<AppState>,
    caller: UserCaller,
    body: Result<ApiJson<DisclaimerDto>, ApiError>,
) -> Result<Response, ApiError> {
    officer(&caller.user)?;
    let ApiJson(d) = body?; // after the door: refused callers learn nothing of the schema
    let d = disclaimer_from(&app, 0, d).await?;
    let saved = app.service.save_disclaimer(&caller.user, d).await?;
    let slugs = slugs(&app).await?;
    Ok((StatusCode::CREATED, Json(disclaimer_json(&saved, &slugs))).into_response())
}

pub async fn update_disclaimer(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    body: Result<ApiJson<DisclaimerDto>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    officer(&caller.user)?;
    let ApiJson(d) = body?; // after the door: refused callers learn nothing of the schema
    let id = crate::extract::path_id(&id, "disclaimer")?;
    let d = disclaimer_from(&app, id, d).await?;
    let saved = app.service.save_disclaimer(&caller.user, d).await?;
    let slugs = slugs(&app).await?;
    Ok(Json(disclaimer_json(&saved, &slugs)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    group: Option<String>,
    days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    policies: Vec<Policy>,
}

pub async fn retention(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let list = app.service.retention().await?;
    Ok(Json(json!({"policies": list.iter().map(|(g, d)| json!({"group": g, "days": d})).collect::<Vec<_>>()})))
}

pub async fn set_retention(
    State(app): State<AppState>,
    caller: UserCaller,
    body: Result<ApiJson<Retention>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let ApiJson(r) = body?; // after the door: refused callers learn nothing of the schema
    let policies: Vec<(Option<String>, i64)> = r.policies.into_iter().map(|p| (p.group, p.days)).collect();
    app.service.set_retention(&caller.user, &policies).await?;
    retention(State(app), caller).await
}

fn hold_json(h: &sb_core::archive::LegalHold, custodian: &str) -> Value {
    json!({
        "id": h.id, "custodian": custodian, "reason": h.reason, "created_by": h.created_by,
        "created_at": h.created_at, "released_at": h.released_at,
    })
}

pub async fn holds(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let list = app.service.legal_holds().await?;
    Ok(Json(json!({"holds": list.iter().map(|(h, c)| hold_json(h, c)).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    custodian: String,
    #[serde(default)]
    reason: String,
}

pub async fn create_hold(
    State(app): State<AppState>,
    caller: UserCaller,
    body: Result<ApiJson<NewHold>, ApiError>,
) -> Result<Response, ApiError> {
    archive_officer(&caller.user)?;
    let ApiJson(h) = body?; // after the door: refused callers learn nothing of the schema
    let hold = app.service.create_legal_hold(&caller.user, &h.custodian, &h.reason).await?;
    let custodian = app.service.user_by_address(&h.custodian).await?.address.to_string();
    Ok((StatusCode::CREATED, Json(hold_json(&hold, &custodian))).into_response())
}

pub async fn release_hold(
    State(app): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let id = crate::extract::path_id(&id, "hold")?;
    app.service.release_legal_hold(&caller.user, id).await?;
    let list = app.service.legal_holds().await?;
    let (h, c) = list.iter().find(|(h, _)| h.id == id).ok_or_else(|| ApiError::not_found("no such hold"))?;
    Ok(Json(hold_json(h, c)))
}

/// Run the retention purge now (it also runs by itself about hourly).
pub async fn purge(State(app): State<AppState>, caller: UserCaller) -> Result<Json<Value>, ApiError> {
    archive_officer(&caller.user)?;
    let r = app.service.purge_expired(Some(&caller.user)).await?;
    Ok(Json(json!({"conversations": r.conversations, "records": r.records, "events": r.events, "held": r.held})))
}
