//! The HTTP surface: routes, shared state, and the request-body reader every handler uses.

pub mod accounts;
mod assets;
pub mod auth;
pub mod client_ip;
pub mod error;
mod ingest;
pub mod listener;
mod members;
mod ops;
mod projects;
mod share_links;
mod sql;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::routing::{delete, get, post};
use axum::Router;
use footfall_engine::Engine;
use footfall_sql::QueryService;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::enrich::Enricher;
use crate::http::error::ApiError;
use crate::metadata::Metadata;
use crate::privacy::VisitorHasher;
use crate::sessions::SessionTracker;

pub struct AppState {
    pub config: Config,
    pub engine: Arc<Engine>,
    pub queries: QueryService,
    pub metadata: Arc<Metadata>,
    pub hasher: VisitorHasher,
    pub sessions: SessionTracker,
    pub enricher: Enricher,
    pub admin_token_hash: String,
    pub metrics: PrometheusHandle,
    pub accounts: Arc<Accounts>,
}

pub fn router(state: Arc<AppState>) -> Router {
    // Browsers post events cross-origin from the sites they measure.
    // The layer sits on the method router itself, with an explicit OPTIONS route under it, so
    // preflights reach it instead of the router's 405 fallback.
    let public_ingest = Router::new().route(
        "/api/event",
        post(ingest::tracker_event)
            .options(|| async { axum::http::StatusCode::NO_CONTENT })
            .layer(CorsLayer::permissive().max_age(std::time::Duration::from_secs(86_400))),
    );
    let router = Router::new()
        .merge(public_ingest)
        .route("/api/v1/events", post(ingest::native_events))
        .route("/api/v1/projects", post(projects::create).get(projects::list))
        .route("/api/v1/projects/{id}/keys", post(projects::create_key).get(projects::list_keys))
        .route("/api/v1/projects/{id}/keys/{key_id}", delete(projects::revoke_key))
        .route("/api/v1/projects/{id}/members", get(members::list))
        .route("/api/v1/projects/{id}/members/{user_id}", axum::routing::put(members::set_role).delete(members::remove))
        .route("/api/v1/projects/{id}/invitations", post(members::invite))
        .route("/api/v1/projects/{id}/settings", get(members::settings).patch(members::update_settings))
        .route("/api/v1/projects/{id}/audit-log", get(members::audit_log))
        .route("/api/v1/projects/{id}/share-links", post(share_links::create).get(share_links::list))
        .route("/api/v1/projects/{id}/share-links/{link_id}", delete(share_links::revoke))
        .route("/api/v1/shared", get(share_links::shared))
        .route("/api/v1/audit-log", get(members::audit_log_all))
        .route("/api/v1/auth/login", post(accounts::login))
        .route("/api/v1/auth/totp", post(accounts::totp))
        .route("/api/v1/auth/totp/enrol", post(accounts::totp_enrol))
        .route("/api/v1/auth/totp/confirm", post(accounts::totp_confirm))
        .route("/api/v1/auth/totp/disable", post(accounts::totp_disable))
        .route("/api/v1/auth/totp/recovery-codes", post(accounts::recovery_codes))
        .route("/api/v1/auth/me", get(accounts::me))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route("/api/v1/auth/sessions", get(accounts::sessions))
        .route("/api/v1/auth/sessions/{id}", delete(accounts::revoke_session))
        .route("/api/v1/auth/password", post(accounts::change_password))
        .route("/api/v1/auth/setup", post(accounts::setup))
        .route("/api/v1/invitations/{token}/accept", post(accounts::accept_invitation))
        .route("/api/v1/sql", post(sql::post_query).get(sql::get_query))
        .route("/api/v1/admin/flush", post(ops::flush))
        .route("/api/v1/admin/compact", post(ops::compact))
        .route("/healthz", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/js/{file}", get(assets::tracker_script));
    let router = match &state.config.site_dir {
        // For trying the tracker on local pages, and for the browser tests: same origin as the API.
        Some(dir) => router.nest_service("/site", tower_http::services::ServeDir::new(dir)),
        None => router,
    };
    router
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .with_state(state)
}

/// Reads a whole body, refusing more than `limit` bytes with 413 (before reading it, when the
/// client declared its length).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                if let Some(timeout) = err.downcast_ref::<listener::BodyTimeout>() {
                    return Err(ApiError::new(
                        axum::http::StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        timeout.to_string(),
                    ));
                }
                source = err.source();
            }
            Err(ApiError::bad_request("bad_body", format!("reading request body: {e}")))
        }
    }
}
