//! Who is calling: the admin token or a project's API key, from `Authorization: Bearer ...`.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::metadata::{hash_token, ApiKey, KeyScope, Metadata};

#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    Key(ApiKey),
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

pub fn authenticate(headers: &HeaderMap, admin_token_hash: &str, metadata: &Metadata) -> Result<Principal, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    if bool::from(hash_token(token).as_bytes().ct_eq(admin_token_hash.as_bytes())) {
        return Ok(Principal::Admin);
    }
    metadata.key(token).map(Principal::Key).ok_or_else(ApiError::unauthorized)
}

pub fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Key(_) => Err(ApiError::forbidden("this endpoint needs the admin token")),
    }
}

pub fn require_scope(principal: &Principal, scope: KeyScope) -> Result<(), ApiError> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Key(key) if key.scope == scope => Ok(()),
        Principal::Key(key) => Err(ApiError::forbidden(format!(
            "this {} key cannot be used here; a {} key is needed",
            scope_name(key.scope),
            scope_name(scope)
        ))),
    }
}

fn scope_name(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Ingest => "ingest",
        KeyScope::Query => "query",
    }
}
