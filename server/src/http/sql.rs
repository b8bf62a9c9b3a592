//! `POST /api/v1/sql` and `GET /api/v1/sql?q=...`: read-only SQL, confined to the caller's project.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use footfall_sql::{encode_results, ExtraTables, QueryScope, ResultFormat};
use serde::Deserialize;

use crate::accounts::roles::Role;
use crate::accounts::User;
use crate::http::auth::{authenticate, readable_projects, require_scope, share_refused, Principal};
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};
use crate::metadata::KeyScope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    format: Option<String>,
}

pub async fn post_query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, &Method::POST, &headers)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let req: SqlRequest =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    run(&state, &principal, &req.sql, req.format.as_deref()).await
}

pub async fn get_query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, &Method::GET, &headers)?;
    let mut sql = None;
    let mut format = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "q" | "sql" => sql = Some(value.into_owned()),
            "format" => format = Some(value.into_owned()),
            _ => {}
        }
    }
    let sql = sql.ok_or_else(|| ApiError::bad_request("missing_query", "pass the SQL as ?q=..."))?;
    run(&state, &principal, &sql, format.as_deref()).await
}

async fn run(state: &AppState, principal: &Principal, sql: &str, format: Option<&str>) -> Result<Response, ApiError> {
    if !matches!(principal, Principal::User(_)) {
        require_scope(principal, KeyScope::Query)?;
    }
    let format: ResultFormat = match format {
        Some(f) => f
            .parse()
            .map_err(|e: footfall_sql::format::FormatError| ApiError::bad_request("invalid_format", e.to_string()))?,
        None => ResultFormat::Json,
    };
    let scope = match principal {
        Principal::Admin => QueryScope::AllProjects,
        Principal::Key(key) => QueryScope::Project(key.project.clone()),
        Principal::User(signed_in) => user_scope(state, &signed_in.user)?,
        Principal::Share { .. } => return Err(share_refused()),
    };
    let output = state.queries.run(sql, &scope).await?;
    let body =
        encode_results(format, &output.schema, &output.batches).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert("x-footfall-files-scanned", HeaderValue::from(output.files_scanned));
    headers.insert("x-footfall-rows", HeaderValue::from(output.rows));
    headers.insert("x-footfall-elapsed-ms", HeaderValue::from(output.elapsed.as_millis() as u64));
    Ok(response)
}

/// A user reads the projects they have a role on, and `audit_log` for those they own.
fn user_scope(state: &AppState, user: &User) -> Result<QueryScope, ApiError> {
    let roles = readable_projects(state, user)?;
    let projects: BTreeSet<_> = roles.iter().map(|(p, _)| p.clone()).collect();
    let owned: BTreeSet<_> = roles.iter().filter(|(_, r)| *r == Role::Owner).map(|(p, _)| p.clone()).collect();
    let entries = state.accounts.audit_log(Some(&owned)).map_err(crate::http::accounts::account_error)?;
    let batch = crate::accounts::audit::audit_batch(&entries).map_err(|e| ApiError::internal(e.to_string()))?;
    let table: Arc<dyn TableProvider> =
        Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(QueryScope::Projects { projects, tables: ExtraTables(vec![("audit_log".to_string(), table)]) })
}
