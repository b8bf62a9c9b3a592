//! The wire format shared by both ingest endpoints: one flat JSON object per event whose field
//! names are the stored column names (see `docs/http-api.md`). Plausible's one-letter names are
//! accepted as aliases so its tracker works unchanged.

use std::net::IpAddr;

use chrono::DateTime;
use footfall_engine::event::Context;
use footfall_engine::{EventType, ProjectId};
use serde::Deserialize;
use serde_json::Value;

use super::detail::{self, Number};
use super::revenue::{parse_revenue, RevenueIn};
use super::{check_len, props_json, validate, Detail, Incoming};

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TimestampIn {
    EpochMs(i64),
    Text(String),
}

/// Every field either endpoint accepts. Numbers are read as `f64` and checked and rounded per
/// field, because browsers report timings as fractional milliseconds.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WireEvent {
    pub project: Option<String>,
    #[serde(alias = "d")]
    pub domain: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    #[serde(alias = "n")]
    pub name: Option<String>,
    timestamp: Option<TimestampIn>,
    #[serde(alias = "u")]
    pub url: Option<String>,
    #[serde(alias = "r")]
    pub referrer: Option<String>,
    pub title: Option<String>,
    pub session_id: Option<String>,
    #[serde(alias = "p")]
    pub props: Option<Value>,
    #[serde(alias = "$")]
    pub revenue: Option<Value>,
    #[serde(alias = "i")]
    pub interactive: Option<bool>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,

    pub page_id: Option<String>,
    pub screen_width: Option<Number>,
    pub screen_height: Option<Number>,
    pub viewport_width: Option<Number>,
    pub viewport_height: Option<Number>,
    pub language: Option<String>,
    pub timezone: Option<String>,
    pub dimensions: Option<Value>,

    // Not `#[serde(flatten)]` into a sub-struct: flattening buffers every field through an
    // intermediate map and would cost the ingest path a large share of its parse time.
    pub time_on_page_ms: Option<Number>,
    pub active_time_ms: Option<Number>,
    pub idle_time_ms: Option<Number>,
    pub scroll_percentage: Option<Number>,
    pub click_count: Option<Number>,
    pub rage_clicks: Option<Number>,
    pub copy_events: Option<Number>,

    pub dom_content_loaded_ms: Option<Number>,
    pub page_load_ms: Option<Number>,
    pub first_paint_ms: Option<Number>,
    pub first_contentful_paint_ms: Option<Number>,
    pub largest_contentful_paint_ms: Option<Number>,
    pub first_input_delay_ms: Option<Number>,
    pub cumulative_layout_shift: Option<Number>,
    pub time_to_first_byte_ms: Option<Number>,
    pub interaction_to_next_paint_ms: Option<Number>,
    pub resource_count: Option<Number>,
    pub transfer_size_bytes: Option<Number>,

    pub interaction_type: Option<String>,
    pub element_selector: Option<String>,
    pub element_text: Option<String>,
    pub element_position: Option<Value>,

    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub error_stack: Option<String>,
    pub source_file: Option<String>,
    pub line_number: Option<Number>,
    pub column_number: Option<Number>,

    pub form_event: Option<String>,
    pub form_id: Option<String>,
    pub form_name: Option<String>,
    pub fields_total: Option<Number>,
    pub fields_interacted: Option<Number>,
    pub fields_completed: Option<Number>,
    pub time_to_first_field_ms: Option<Number>,
    pub time_to_submit_ms: Option<Number>,
    pub field_interactions: Option<Value>,
    pub error_messages: Option<Value>,

    pub search_query: Option<String>,
    pub search_location: Option<String>,
    pub results_count: Option<Number>,
    pub clicked_position: Option<Number>,
    pub clicked_url: Option<String>,

    pub experiment_id: Option<String>,
    pub variant_id: Option<String>,
}

pub(crate) fn parse_native_event(json: &str, now_ms: i64) -> Result<Incoming, String> {
    let wire: WireEvent = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let project = match wire.project.as_deref() {
        Some(p) => ProjectId::new(p).map_err(|e| e.to_string())?,
        None => return Err("missing field `project`".into()),
    };
    let timestamp_ms = match &wire.timestamp {
        None => now_ms,
        Some(TimestampIn::EpochMs(ms)) => *ms,
        Some(TimestampIn::Text(s)) => DateTime::parse_from_rfc3339(s)
            .map_err(|err| format!("timestamp {s:?} is not RFC 3339: {err}"))?
            .timestamp_millis(),
    };
    let ip = wire
        .ip
        .as_deref()
        .map(|s| s.parse::<IpAddr>().map_err(|_| format!("ip {s:?} is not an IP address")))
        .transpose()?;
    let session_id = wire.session_id.clone();
    let user_agent = wire.user_agent.clone();
    let mut incoming = to_incoming(wire, project, timestamp_ms, now_ms)?;
    incoming.ip = ip;
    incoming.session_id = session_id;
    incoming.user_agent = user_agent;
    check_len("user_agent", &incoming.user_agent, super::MAX_URL_BYTES)?;
    if incoming.session_id.as_deref().is_some_and(str::is_empty) {
        return Err("session_id must not be empty".into());
    }
    check_len("session_id", &incoming.session_id, super::MAX_SESSION_ID_BYTES)?;
    Ok(incoming)
}

/// An event from the public tracker endpoint, whose project is chosen by its domain.
#[derive(Debug, Clone)]
pub struct TrackerEvent {
    wire: WireEvent,
}

pub(crate) fn parse_tracker_event(json: &str) -> Result<TrackerEvent, String> {
    let wire: WireEvent = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if wire.domain.as_deref().is_none_or(|d| d.trim().is_empty()) {
        return Err("missing field `domain`".into());
    }
    Ok(TrackerEvent { wire })
}

impl TrackerEvent {
    /// The domains this event is for: Plausible allows a comma-separated list to send to several sites.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.wire.domain.as_deref().unwrap_or("").split(',').map(str::trim).filter(|d| !d.is_empty())
    }

    /// The browser cannot vouch for a time, a session, an address or a user-agent: the server's
    /// clock and the connection supply those, so any such fields sent here are ignored.
    pub fn to_incoming(&self, project: ProjectId, now_ms: i64) -> Result<Incoming, String> {
        to_incoming(self.wire.clone(), project, now_ms, now_ms)
    }
}

fn to_incoming(mut wire: WireEvent, project: ProjectId, timestamp_ms: i64, now_ms: i64) -> Result<Incoming, String> {
    let event_type = match wire.event_type.as_deref() {
        Some(t) => EventType::parse(t).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(EventType::as_str).collect();
            format!("type must be one of {}, got {t:?}", known.join(", "))
        })?,
        None if wire.name.as_deref().is_none_or(|n| n == "pageview") => EventType::Pageview,
        None => EventType::Custom,
    };
    let name = match (event_type, wire.name.take()) {
        (EventType::Custom, Some(n)) if !n.trim().is_empty() => n,
        (EventType::Custom, _) => return Err("custom events need a name".into()),
        (other, _) => other.as_str().to_string(),
    };
    let revenue = match wire.revenue.take() {
        None | Some(Value::Null) => None,
        Some(v) => {
            let r: RevenueIn = serde_json::from_value(v).map_err(|e| format!("revenue: {e}"))?;
            Some(parse_revenue(r)?)
        }
    };
    let context = Context {
        page_id: wire.page_id.take().map(detail::page_id).transpose()?,
        screen_width: detail::int32("screen_width", wire.screen_width, 0, 100_000)?,
        screen_height: detail::int32("screen_height", wire.screen_height, 0, 100_000)?,
        viewport_width: detail::int32("viewport_width", wire.viewport_width, 0, 100_000)?,
        viewport_height: detail::int32("viewport_height", wire.viewport_height, 0, 100_000)?,
        language: detail::short_text("language", wire.language.take(), 35)?,
        timezone: detail::short_text("timezone", wire.timezone.take(), 64)?,
        custom_dimensions: wire
            .dimensions
            .take()
            .filter(|d| !d.is_null())
            .map(|d| props_json(&d).map_err(|e| e.replace("props", "dimensions")))
            .transpose()?,
        ..Default::default()
    };
    let detail: Detail = detail::from_wire(&mut wire)?;
    let incoming = Incoming {
        project,
        event_type,
        name,
        timestamp_ms,
        url: wire.url,
        referrer: wire.referrer.filter(|r| !r.is_empty()),
        page_title: wire.title.filter(|t| !t.is_empty()),
        session_id: None,
        props: wire.props.filter(|p| !p.is_null()).map(|p| props_json(&p)).transpose()?,
        revenue,
        interactive: wire.interactive.unwrap_or(true),
        ip: None,
        user_agent: None,
        context,
        detail,
    };
    validate(&incoming, now_ms)?;
    Ok(incoming)
}
