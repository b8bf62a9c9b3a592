//! Share links: `POST/GET /api/v1/projects/{id}/share-links`, `DELETE .../share-links/{id}`
//! (project admins), and `GET /api/v1/shared`, what a share token may see about itself.
//! The dashboard's aggregates come through the Stats API, which applies the project's privacy
//! threshold (`stats::privacy_threshold`) to shared views.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::roles::Role;
use crate::http::accounts::{account_error, json_request};
use crate::http::auth::{require_role, Caller, Principal};
use crate::http::error::ApiError;
use crate::http::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewShareLink {
    password: Option<String>,
}

/// `POST /api/v1/projects/{id}/share-links` `{"password"?}` → `{"id", "token", "url"}`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    // An empty body is a link without a password.
    let new: NewShareLink = if parts.headers.get(axum::http::header::CONTENT_TYPE).is_none() {
        let bytes = crate::http::read_body(body, 16).await?;
        if !bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the request as Content-Type: application/json",
            ));
        }
        NewShareLink::default()
    } else {
        json_request(&parts, body).await?
    };
    let password = new.password.filter(|p| !p.is_empty());
    let accounts = state.clone();
    let actor = caller.principal.actor();
    let address = Some(state.accounts.hash_address(caller.address));
    let project_for_task = project.clone();
    // Hashing a password takes argon2's time: off the async threads.
    let (link_id, token) = tokio::task::spawn_blocking(move || {
        accounts.accounts.create_share_link(&project_for_task, password.as_deref(), &actor, address)
    })
    .await
    .map_err(|e| ApiError::internal(format!("creating the share link failed: {e}")))?
    .map_err(account_error)?;
    let url = format!("{}/share/{token}", state.config.public_url);
    Ok((StatusCode::CREATED, Json(json!({"id": link_id, "token": token, "url": url, "project": project}))))
}

/// `GET /api/v1/projects/{id}/share-links`: without tokens.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    let links: Vec<serde_json::Value> = state
        .accounts
        .share_links(&project)
        .map_err(account_error)?
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id, "created_at": l.created_at, "created_by": l.created_by.label(),
                "has_password": l.password_hash.is_some(),
            })
        })
        .collect();
    Ok(Json(json!({"share_links": links})))
}

/// `DELETE /api/v1/projects/{id}/share-links/{link_id}`: the token stops working at once.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Path((id, link)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let project = require_role(&state, &caller.principal, &id, Role::Admin)?;
    let address = Some(state.accounts.hash_address(caller.address));
    if state.accounts.revoke_share_link(&project, &link, &caller.principal.actor(), address).map_err(account_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such share link in this project"))
    }
}

/// `GET /api/v1/shared`: the project a share token opens, and the threshold its views apply.
pub async fn shared(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let Principal::Share { id, project } = caller.principal else {
        return Err(ApiError::bad_request("not_a_share_link", "this endpoint answers share tokens only"));
    };
    let p = state.metadata.project(project.as_str()).ok_or_else(|| ApiError::not_found("the project is gone"))?;
    let settings = state.accounts.settings(&project).map_err(account_error)?;
    Ok(Json(json!({
        "share_link": id, "project": p.id, "domain": p.domain, "timezone": p.timezone,
        "privacy_threshold": settings.privacy_threshold,
    })))
}
