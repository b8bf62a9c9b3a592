//! Ingest endpoints. Both build stored events the same way ([`to_event`]): URL and referrer fields,
//! the visitor hash (the only use of IP and user-agent), and the session; then one durable append.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use footfall_engine::{Event, EventType};
use serde_json::json;

use crate::enrich::{page_fields, referrer_domain};
use crate::http::auth::{authenticate, require_scope, Principal};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::http::{read_body, AppState};
use crate::ingest::{self, BodyError, Incoming};
use crate::metadata::KeyScope;

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::bad_request("invalid_body", e.to_string())
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn to_event(state: &AppState, incoming: Incoming, request_ip: IpAddr, request_ua: &str) -> Result<Event, String> {
    let page = match incoming.url.as_deref() {
        Some(url) => match page_fields(url) {
            Some(fields) => Some(fields),
            None if incoming.event_type == EventType::Pageview => {
                return Err("url must be an absolute http(s) URL".into())
            }
            None => None,
        },
        None => None,
    }
    .unwrap_or_default();
    let ip = incoming.ip.unwrap_or(request_ip);
    let ua = incoming.user_agent.as_deref().unwrap_or(request_ua);
    let visitor_id = state.hasher.visitor_id(&incoming.project, ip, ua).map_err(|e| e.to_string())?;
    let session_id = match incoming.session_id {
        Some(s) => s,
        None => state.sessions.assign(&incoming.project, &visitor_id, incoming.timestamp_ms),
    };
    let referrer_domain = incoming.referrer.as_deref().and_then(referrer_domain);
    let (revenue_amount, revenue_currency) = match incoming.revenue {
        Some((amount, currency)) => (Some(amount), Some(currency)),
        None => (None, None),
    };
    Ok(Event {
        project: incoming.project,
        timestamp_ms: incoming.timestamp_ms,
        event_type: incoming.event_type,
        name: incoming.name,
        session_id: Some(session_id),
        visitor_id: Some(visitor_id),
        hostname: page.hostname,
        path: page.path,
        query_string: page.query_string,
        page_title: incoming.page_title,
        referrer: incoming.referrer,
        referrer_domain,
        utm_source: page.utm_source,
        utm_medium: page.utm_medium,
        utm_campaign: page.utm_campaign,
        utm_term: page.utm_term,
        utm_content: page.utm_content,
        props: incoming.props,
        revenue_amount,
        revenue_currency,
        interactive: incoming.interactive,
    })
}

/// `POST /api/v1/events`: a batch, answered once every accepted event is durable.
pub async fn native_events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = authenticate(&headers, &state.admin_token_hash, &state.metadata)?;
    require_scope(&principal, KeyScope::Ingest)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let now = ingest::now_ms();
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/json"));
    let framing = if is_json { ingest::Framing::Json } else { ingest::Framing::Lines };
    let parsed = ingest::parse_native(&bytes, framing, now)?;
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let ua = user_agent(&headers);

    let mut events = Vec::with_capacity(parsed.len());
    let mut rejected = Vec::new();
    for (index, item) in parsed.into_iter().enumerate() {
        let checked = item.and_then(|incoming| {
            match &principal {
                Principal::Key(key) if key.project != incoming.project => {
                    return Err(format!("this key may not write to project {}", incoming.project))
                }
                _ => {}
            }
            if state.metadata.project(incoming.project.as_str()).is_none() {
                return Err(format!("no project {}", incoming.project));
            }
            to_event(&state, incoming, ip, &ua)
        });
        match checked {
            Ok(event) => events.push(event),
            Err(error) => rejected.push(json!({"index": index, "error": error})),
        }
    }
    let accepted = events.len();
    if !events.is_empty() {
        state.engine.append(events).await?;
    }
    metrics::counter!("footfall_events_accepted_total").increment(accepted as u64);
    metrics::counter!("footfall_events_rejected_total").increment(rejected.len() as u64);
    Ok(Json(json!({"accepted": accepted, "rejected": rejected})))
}

/// `POST /api/event`: Plausible's endpoint, so existing trackers can point here unchanged.
pub async fn plausible_event(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let event = ingest::parse_plausible(&bytes)?;
    let projects: Vec<_> = event.domains().filter_map(|d| state.metadata.project_for_domain(d)).collect();
    if projects.is_empty() {
        metrics::counter!("footfall_events_dropped_total").increment(1);
        return Ok((StatusCode::ACCEPTED, [("x-footfall-dropped", "1")], "ok").into_response());
    }
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let ua = user_agent(&headers);
    let now = ingest::now_ms();
    let mut events = Vec::with_capacity(projects.len());
    for project in projects {
        let incoming = event.to_incoming(project, now);
        let built = incoming.and_then(|i| to_event(&state, i, ip, &ua));
        match built {
            Ok(e) => events.push(e),
            Err(message) => {
                metrics::counter!("footfall_events_rejected_total").increment(1);
                return Err(ApiError::bad_request("invalid_event", message));
            }
        }
    }
    let n = events.len() as u64;
    state.engine.append(events).await?;
    metrics::counter!("footfall_events_accepted_total").increment(n);
    Ok((StatusCode::ACCEPTED, "ok").into_response())
}
