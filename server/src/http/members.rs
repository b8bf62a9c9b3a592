//! A project's people and account settings: members and roles, invitations, settings (two-factor
//! requirement, privacy threshold) and the audit log.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::roles::{Role, MAX_PRIVACY_THRESHOLD};
use crate::accounts::UserId;
use crate::http::accounts::{account_error, json_request};
use crate::http::auth::{authenticate, require_admin, require_role, Caller};
use crate::http::error::ApiError;
use crate::http::AppState;

/// `GET /api/v1/projects/{id}/members`: members with their role, second factor and lock.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    let mut out = Vec::new();
    for (user_id, role) in state.accounts.members(&project).map_err(account_error)? {
        let Some(user) = state.accounts.user(&user_id).map_err(account_error)? else { continue };
        let locked = state.accounts.guard.locked(&user.email);
        out.push(json!({
            "user_id": user.id, "email": user.email, "role": role, "totp_enabled": user.totp.is_some(),
            "locked_for_secs": locked.map(|d| d.as_secs().max(1)),
        }));
    }
    Ok(Json(json!({"members": out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

fn member_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| ApiError::not_found(format!("no member {raw:?}")))
}

/// `PUT /api/v1/projects/{id}/members/{user_id}` `{"role"}` (owners).
pub async fn set_role(
    State(state): State<Arc<AppState>>,
    Path((id, user)): Path<(String, String)>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = <Caller as axum::extract::FromRequestParts<_>>::from_request_parts(&mut parts, &state).await?;
    let project = require_role(&state, &caller.principal, &id, Role::Owner)?;
    let user = member_id(&user)?;
    let change: RoleChange = json_request(&parts, body).await?;
    let address = Some(state.accounts.hash_address(caller.address));
    state
        .accounts
        .set_role(&project, &user, Some(change.role), &caller.principal.actor(), address)
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/projects/{id}/members/{user_id}` (owners).
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path((id, user)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Owner)?;
    let user = member_id(&user)?;
    let address = Some(state.accounts.hash_address(caller.address));
    state.accounts.set_role(&project, &user, None, &caller.principal.actor(), address).map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvitation {
    email: String,
    role: Role,
}

/// `POST /api/v1/projects/{id}/invitations` `{"email", "role"}` (owners) → the link, shown to
/// the inviter (no e-mail is sent: this server has no SMTP delivery yet).
pub async fn invite(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = <Caller as axum::extract::FromRequestParts<_>>::from_request_parts(&mut parts, &state).await?;
    let project = require_role(&state, &caller.principal, &id, Role::Owner)?;
    let inv: NewInvitation = json_request(&parts, body).await?;
    let address = Some(state.accounts.hash_address(caller.address));
    let (token, expires_at) = state
        .accounts
        .invite(&project, &inv.email, inv.role, &caller.principal.actor(), address)
        .map_err(account_error)?;
    let url = format!("{}/invitations/{token}", state.config.public_url);
    Ok((StatusCode::CREATED, Json(json!({"token": token, "url": url, "expires_at": expires_at}))))
}

/// `GET /api/v1/projects/{id}/settings` (viewers and up).
pub async fn settings(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Viewer)?;
    let s = state.accounts.settings(&project).map_err(account_error)?;
    Ok(Json(json!({"require_mfa": s.require_mfa, "privacy_threshold": s.privacy_threshold})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    require_mfa: Option<bool>,
    privacy_threshold: Option<u32>,
}

/// `PATCH /api/v1/projects/{id}/settings`: `privacy_threshold` needs an admin, `require_mfa`
/// an owner.
pub async fn update_settings(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = <Caller as axum::extract::FromRequestParts<_>>::from_request_parts(&mut parts, &state).await?;
    let needed = Role::Admin;
    let project = require_role(&state, &caller.principal, &id, needed)?;
    let change: SettingsChange = json_request(&parts, body).await?;
    let mut s = state.accounts.settings(&project).map_err(account_error)?;
    if let Some(require) = change.require_mfa {
        require_role(&state, &caller.principal, &id, Role::Owner)?;
        s.require_mfa = require;
    }
    if let Some(k) = change.privacy_threshold {
        if !(1..=MAX_PRIVACY_THRESHOLD).contains(&k) {
            return Err(ApiError::bad_request(
                "invalid_threshold",
                format!("privacy_threshold is 1-{MAX_PRIVACY_THRESHOLD} visitors"),
            ));
        }
        s.privacy_threshold = k;
    }
    let address = Some(state.accounts.hash_address(caller.address));
    state.accounts.set_settings(&project, &s, &caller.principal.actor(), address).map_err(account_error)?;
    Ok(Json(json!({"require_mfa": s.require_mfa, "privacy_threshold": s.privacy_threshold})))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    pub limit: Option<usize>,
}

const DEFAULT_AUDIT_ROWS: usize = 1000;

fn audit_json(entries: Vec<(u64, crate::accounts::audit::AuditEntry)>, limit: Option<usize>) -> serde_json::Value {
    let limit = limit.unwrap_or(DEFAULT_AUDIT_ROWS).clamp(1, 100_000);
    let skip = entries.len().saturating_sub(limit);
    let rows: Vec<serde_json::Value> = entries
        .into_iter()
        .skip(skip)
        .rev()
        .map(|(seq, e)| {
            json!({
                "seq": seq, "at": e.at, "actor": e.actor.label(), "action": e.action, "project_id": e.project,
                "user_id": e.user, "target": e.target, "address_hash": e.address, "detail": e.detail,
            })
        })
        .collect();
    json!({"entries": rows})
}

/// `GET /api/v1/projects/{id}/audit-log?limit=N` (owners): newest first.
pub async fn audit_log(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Owner)?;
    let entries = state.accounts.audit_log(Some(&BTreeSet::from([project]))).map_err(account_error)?;
    Ok(Json(audit_json(entries, q.limit)))
}

/// `GET /api/v1/audit-log?limit=N` (admin token): every entry, sign-in failures for unknown
/// e-mails included.
pub async fn audit_log_all(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AuditQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&authenticate(&state, &axum::http::Method::GET, &headers)?)?;
    let entries = state.accounts.audit_log(None).map_err(account_error)?;
    Ok(Json(audit_json(entries, q.limit)))
}
