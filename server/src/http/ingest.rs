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

use crate::enrich::PageFields;
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

/// Enrichment, identity and scrubbing: the only place IP and user-agent are used, and the last
/// step before the WAL, so nothing unscrubbed can be stored.
/// Who sent the request: a visitor's browser, or a server reporting on behalf of visitors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    Browser,
    Server,
}

fn to_event(
    state: &AppState,
    sender: Sender,
    incoming: Incoming,
    request_ip: IpAddr,
    request_ua: &str,
) -> Result<Event, String> {
    let enricher = &state.enricher;
    let page = match incoming.url.as_deref() {
        Some(url) => match enricher.page(url) {
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
    // A server's own address and user-agent say nothing about its visitors: from a server, only
    // an event's own `ip` and `user_agent` are enriched (the hash still needs something stable).
    let (client, geo) = match sender {
        Sender::Browser => (enricher.client(ua), enricher.geo(ip)),
        Sender::Server => (
            incoming.user_agent.as_deref().map(|ua| enricher.client(ua)).unwrap_or_default(),
            incoming.ip.map(|ip| enricher.geo(ip)).unwrap_or_default(),
        ),
    };
    let referrer = enricher.referrer(incoming.referrer.as_deref(), &page);
    let session_id = match incoming.session_id {
        Some(s) => s,
        None => state.sessions.assign(&incoming.project, visitor_id, incoming.timestamp_ms).to_string(),
    };
    let (revenue_amount, revenue_currency) = match incoming.revenue {
        Some((amount, currency)) => (Some(amount), Some(currency)),
        None => (None, None),
    };
    let scrub = |text: Option<String>| text.map(|t| enricher.scrub(&t).into_owned());
    let scrub_url = |text: Option<String>| {
        text.map(|t| match enricher.page(&t) {
            // URLs lose dropped parameters and click ids as page URLs do, then PII.
            Some(p) => rebuild_url(&p),
            None => enricher.scrub(&t).into_owned(),
        })
    };

    let mut context = incoming.context;
    if context.page_id.is_none() && incoming.event_type == EventType::Pageview {
        // Server-side senders may not track pages; a page view is still one page.
        context.page_id = Some(footfall_engine::ShortId::from_bits(rand::random()).to_string());
    }
    context.referrer_category = Some(referrer.category.to_string());
    context.click_id_type = page.click_id_type.clone();
    context.country_code = geo.country_code;
    context.region = geo.region;
    context.city = geo.city;
    context.device_type = client.device_type.clone();
    context.browser_name = client.browser_name.clone();
    context.browser_version = client.browser_version.clone();
    context.os_name = client.os_name.clone();
    context.os_version = client.os_version.clone();
    context.is_bot = Some(client.is_bot);
    context.bot_type = client.bot_type.clone();
    context.is_spam = Some(referrer.is_spam);
    context.spam_score = Some(referrer.spam_score);
    context.custom_dimensions = scrub(context.custom_dimensions);

    let detail = incoming.detail;
    let mut error = detail.error;
    if let Some(e) = error.as_deref_mut() {
        e.error_message = scrub(e.error_message.take());
        e.error_stack = scrub(e.error_stack.take());
        e.source_file = scrub_url(e.source_file.take());
        e.error_fingerprint = Some(ingest::error_fingerprint(e));
    }
    let mut interaction = detail.interaction;
    if let Some(i) = interaction.as_deref_mut() {
        i.element_text = scrub(i.element_text.take());
        i.element_selector = scrub(i.element_selector.take());
    }
    let mut search = detail.search;
    if let Some(s) = search.as_deref_mut() {
        s.search_query = scrub(s.search_query.take());
        s.normalized_query = s.search_query.as_deref().map(ingest::normalize_query);
        s.clicked_url = scrub_url(s.clicked_url.take());
    }
    let mut form = detail.form;
    if let Some(f) = form.as_deref_mut() {
        f.error_messages =
            f.error_messages.take().map(|m| m.into_iter().map(|t| enricher.scrub(&t).into_owned()).collect());
    }
    let referrer_url = scrub_url(incoming.referrer);
    let mut event = Event::new(incoming.project, incoming.timestamp_ms, incoming.event_type, incoming.name);
    event.session_id = Some(session_id);
    event.visitor_id = Some(visitor_id.to_string());
    event.hostname = page.hostname;
    event.path = page.path;
    event.query_string = page.query_string;
    event.page_title = scrub(incoming.page_title);
    event.referrer = referrer_url;
    event.referrer_domain = referrer.domain;
    event.utm_source = page.utm_source;
    event.utm_medium = page.utm_medium;
    event.utm_campaign = page.utm_campaign;
    event.utm_term = page.utm_term;
    event.utm_content = page.utm_content;
    event.props = scrub(incoming.props);
    event.revenue_amount = revenue_amount;
    event.revenue_currency = revenue_currency;
    event.interactive = incoming.interactive;
    event.context = context;
    event.engagement = detail.engagement;
    event.vitals = detail.vitals;
    event.interaction = interaction;
    event.error = error;
    event.form = form;
    event.search = search;
    event.experiment = detail.experiment;
    Ok(event)
}

/// A URL as stored: scheme, host and port, and the parser's cleaned path and query. Credentials
/// and the fragment are dropped.
fn rebuild_url(page: &PageFields) -> String {
    let scheme = if page.scheme.is_empty() { "https" } else { page.scheme };
    let port = page.port.map(|p| format!(":{p}")).unwrap_or_default();
    let host = page.hostname.as_deref().unwrap_or("");
    let mut out = format!("{scheme}://{host}{port}{}", page.path.as_deref().unwrap_or("/"));
    if let Some(q) = &page.query_string {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// One durable append of a request's accepted events (none: no WAL write), counted in the metrics.
async fn append_counted(state: &AppState, events: Vec<Event>, rejected: usize) -> Result<usize, ApiError> {
    let accepted = events.len();
    if !events.is_empty() {
        state.engine.append(events).await?;
    }
    metrics::counter!("footfall_events_accepted_total").increment(accepted as u64);
    metrics::counter!("footfall_events_rejected_total").increment(rejected as u64);
    Ok(accepted)
}

/// `POST /api/v1/events`: a batch, answered once every accepted event is durable.
pub async fn native_events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = authenticate(&state, &axum::http::Method::POST, &headers)?;
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
            if !state.metadata.has_project(&incoming.project) {
                return Err(format!("no project {}", incoming.project));
            }
            to_event(&state, Sender::Server, incoming, ip, &ua)
        });
        match checked {
            Ok(event) => events.push(event),
            Err(error) => rejected.push(json!({"index": index, "error": error})),
        }
    }
    let accepted = append_counted(&state, events, rejected.len()).await?;
    Ok(Json(json!({"accepted": accepted, "rejected": rejected})))
}

/// `POST /api/event`: the tracker's endpoint, and Plausible's, so existing trackers can point here
/// unchanged. One event object (answered as Plausible does: `202 ok`), or an array of them (a beacon
/// at page hide), answered like a native batch.
pub async fn tracker_event(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let body = ingest::parse_tracker(&bytes)?;
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let ua = user_agent(&headers);
    let now = ingest::now_ms();
    let mut events = Vec::with_capacity(body.events.len());
    let mut rejected = Vec::new();
    let mut dropped = 0usize;
    for (index, item) in body.events.into_iter().enumerate() {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                rejected.push(json!({"index": index, "error": error}));
                continue;
            }
        };
        let projects: Vec<_> = event.domains().filter_map(|d| state.metadata.project_for_domain(d)).collect();
        if projects.is_empty() {
            dropped += 1;
            continue;
        }
        for project in projects {
            match event.to_incoming(project, now).and_then(|i| to_event(&state, Sender::Browser, i, ip, &ua)) {
                Ok(e) => events.push(e),
                Err(error) => rejected.push(json!({"index": index, "error": error})),
            }
        }
    }
    let accepted = append_counted(&state, events, rejected.len()).await?;
    metrics::counter!("footfall_events_dropped_total").increment(dropped as u64);
    if body.single {
        if let Some(error) = rejected.first().and_then(|r| r["error"].as_str()) {
            return Err(ApiError::bad_request("invalid_event", error.to_string()));
        }
        if dropped > 0 {
            return Ok((StatusCode::ACCEPTED, [("x-footfall-dropped", "1")], "ok").into_response());
        }
        return Ok((StatusCode::ACCEPTED, "ok").into_response());
    }
    let answer = json!({"accepted": accepted, "rejected": rejected, "dropped": dropped});
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_urls_keep_their_port_and_lose_credentials_and_fragments() {
        let page = crate::enrich::page_fields("http://u:pw@127.0.0.1:8080/a/b?q=1&token=x#frag").unwrap_or_default();
        assert_eq!(rebuild_url(&page), "http://127.0.0.1:8080/a/b?q=1");
        let page = crate::enrich::page_fields("https://shop.example/p/42").unwrap_or_default();
        assert_eq!(rebuild_url(&page), "https://shop.example/p/42");
    }
}
