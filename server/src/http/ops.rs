//! Operational endpoints: health, Prometheus metrics, forced flush and compaction, and the JSON
//! fallbacks.

use std::any::Any;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::auth::{authenticate, require_admin};
use crate::http::error::ApiError;
use crate::http::AppState;

pub async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "buffered_bytes": state.engine.buffered_bytes(),
        "live_sessions": state.sessions.len(),
    }))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render())
}

pub async fn flush(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&authenticate(&state, &axum::http::Method::POST, &headers)?)?;
    // Spawned, so a client hanging up cannot cancel a flush between its catalog commit and
    // installing that commit in memory.
    let engine = state.engine.clone();
    let report = tokio::spawn(async move { engine.flush().await })
        .await
        .map_err(|e| ApiError::internal(format!("flush task failed: {e}")))??;
    Ok(Json(json!(report)))
}

pub async fn compact(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&authenticate(&state, &axum::http::Method::POST, &headers)?)?;
    // Spawned for the same reason as a flush: a commit must never be cut off halfway.
    let engine = state.engine.clone();
    let report = tokio::spawn(async move { engine.compact().await })
        .await
        .map_err(|e| ApiError::internal(format!("compaction task failed: {e}")))??;
    Ok(Json(json!(report)))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
}

pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit a bug handling this request").into_response()
}
