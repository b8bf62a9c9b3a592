//! Projects and their API keys.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use footfall_engine::ProjectId;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::audit::AuditEntry;
use crate::accounts::roles::Role;
use crate::http::auth::{readable_projects, require_admin, require_role, Caller, Principal};
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};
use crate::metadata::{KeyScope, MetadataError, NewKey as MetaNewKey, Project};

const MAX_DOMAIN_BYTES: usize = 253;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    id: String,
    domain: String,
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    scope: KeyScope,
    name: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

const MAX_KEY_NAME_CHARS: usize = 100;

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))
}

fn metadata_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::ProjectExists(_) | MetadataError::DomainTaken(..) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        MetadataError::NoProject(_) => ApiError::not_found(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    // The admin token, or a user who owns the instance.
    match &caller.principal {
        Principal::User(s) if s.user.instance_owner => {}
        other => require_admin(other)?,
    }
    let req: NewProject = parse_json(&read_body(body, state.config.max_body_bytes).await?)?;
    let id = ProjectId::new(req.id).map_err(|e| ApiError::bad_request("invalid_project", e.to_string()))?;
    let domain = req.domain.trim().to_ascii_lowercase();
    let domain_ok = !domain.is_empty()
        && domain.len() <= MAX_DOMAIN_BYTES
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    if !domain_ok {
        return Err(ApiError::bad_request("invalid_domain", format!("{:?} is not a domain name", req.domain)));
    }
    let timezone = req.timezone.unwrap_or_else(|| "UTC".into());
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::bad_request("invalid_timezone", format!("{timezone:?} is not an IANA time zone")));
    }
    let project = Project { id, domain, timezone, created_at: Utc::now() };
    let created = state.metadata.create_project(project).map_err(metadata_error)?;
    tracing::info!(project = %created.id, domain = %created.domain, "project created");
    state.accounts.audit(
        AuditEntry::new(caller.principal.actor(), "project_created")
            .project(&created.id)
            .address(Some(state.accounts.hash_address(caller.address))),
    );
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let projects = match &caller.principal {
        Principal::User(s) => {
            let mine: Vec<_> = readable_projects(&state, &s.user)?.into_iter().map(|(p, _)| p).collect();
            state.metadata.projects().into_iter().filter(|p| mine.contains(&p.id)).collect()
        }
        other => {
            require_admin(other)?;
            state.metadata.projects()
        }
    };
    Ok(Json(json!({"projects": projects})))
}

/// `POST /api/v1/projects/{id}/keys`: the admin token, or a project admin (whose keys stop
/// working when they lose that role; see `http::auth`).
pub async fn create_key(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    if let Principal::Key(_) = caller.principal {
        return Err(ApiError::forbidden("keys are made by a signed-in user or with the admin token"));
    }
    let req: NewKey = parse_json(&read_body(body, state.config.max_body_bytes).await?)?;
    let name = req.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_KEY_NAME_CHARS || n.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("a key name is 1-{MAX_KEY_NAME_CHARS} printable characters"),
        ));
    }
    if req.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::bad_request("invalid_expiry", "expires_at is in the past"));
    }
    let created_by = match &caller.principal {
        Principal::User(s) => Some(s.user.id.to_string()),
        _ => None,
    };
    let new = MetaNewKey { scope: req.scope, name: name.clone(), expires_at: req.expires_at, created_by };
    let (token, key_id) = state.metadata.create_key_with(&project, new).map_err(metadata_error)?;
    state.accounts.audit(
        AuditEntry::new(caller.principal.actor(), "key_created")
            .project(&project)
            .target(key_id.clone())
            .address(Some(state.accounts.hash_address(caller.address)))
            .detail(req.scope.as_str()),
    );
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": key_id, "token": token, "project": project, "scope": req.scope, "name": name, "expires_at": req.expires_at}),
        ),
    ))
}

/// `GET /api/v1/projects/{id}/keys`: the project's keys, never their tokens.
pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    let keys: Vec<serde_json::Value> = state
        .metadata
        .keys_of(&project)
        .into_iter()
        .map(|(id, k)| {
            json!({
                "id": id, "scope": k.scope, "name": k.name, "created_at": k.created_at,
                "expires_at": k.expires_at, "last_used_at": k.last_used_at, "created_by": k.created_by,
            })
        })
        .collect();
    Ok(Json(json!({"keys": keys})))
}

/// `DELETE /api/v1/projects/{id}/keys/{key_id}`: takes effect on the key's next request.
pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    Path((id, key_id)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    match state.metadata.revoke_key(&project, &key_id).map_err(metadata_error)? {
        Some(key) => {
            state.accounts.audit(
                AuditEntry::new(caller.principal.actor(), "key_revoked")
                    .project(&project)
                    .target(key_id)
                    .address(Some(state.accounts.hash_address(caller.address)))
                    .detail(key.scope.as_str()),
            );
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found("no such key in this project")),
    }
}
