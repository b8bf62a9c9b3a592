//! Projects and their API keys (admin only).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use footfall_engine::ProjectId;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::{authenticate, require_admin};
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};
use crate::metadata::{KeyScope, MetadataError, Project};

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
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
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
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    require_admin(&authenticate(&headers, &state.admin_token_hash, &state.metadata)?)?;
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
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&authenticate(&headers, &state.admin_token_hash, &state.metadata)?)?;
    Ok(Json(json!({"projects": state.metadata.projects()})))
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_admin(&authenticate(&headers, &state.admin_token_hash, &state.metadata)?)?;
    let req: NewKey = parse_json(&read_body(body, state.config.max_body_bytes).await?)?;
    let project = state.metadata.project(&id).ok_or_else(|| ApiError::not_found(format!("no project {id:?}")))?;
    let token = state.metadata.create_key(&project.id, req.scope).map_err(metadata_error)?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "project": project.id, "scope": req.scope}))))
}
