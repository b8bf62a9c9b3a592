//! Turning request bodies into validated incoming events. Both ingest endpoints speak one wire
//! format ([`wire`]): the native batch endpoint (`POST /api/v1/events`, server-side senders) and the
//! public tracker endpoint (`POST /api/event`, Plausible-compatible and extended with the brief's
//! event types). Validation is per event, so one bad event is reported by index while the rest of its
//! batch is kept.

mod detail;
mod revenue;
mod wire;

use std::net::IpAddr;

use chrono::Utc;
use footfall_engine::event::{
    Context, Engagement, ErrorDetail, ExperimentDetail, FormDetail, Interaction, SearchDetail, Vitals,
};
use footfall_engine::{EventType, ProjectId};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;

pub use detail::{error_fingerprint, normalize_query};

pub const MAX_URL_BYTES: usize = 8 * 1024;
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_SESSION_ID_BYTES: usize = 255;
pub const MAX_TITLE_BYTES: usize = 2 * 1024;
pub const MAX_PROPS: usize = 64;
pub const MAX_PROP_KEY_BYTES: usize = 256;
pub const MAX_PROP_VALUE_BYTES: usize = 2 * 1024;
/// Events dated further ahead than this are refused: a wrong clock, not a real event.
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;
/// 2000-01-01: older timestamps are unit mistakes (seconds sent as milliseconds).
pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;

#[derive(Debug, Error, PartialEq)]
pub enum BodyError {
    #[error("request body is not valid UTF-8")]
    NotUtf8,
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    #[error("request body is empty")]
    Empty,
}

/// The brief's per-event detail, as received (before scrubbing and server-side derivations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    pub engagement: Option<Box<Engagement>>,
    pub vitals: Option<Box<Vitals>>,
    pub interaction: Option<Box<Interaction>>,
    pub error: Option<Box<ErrorDetail>>,
    pub form: Option<Box<FormDetail>>,
    pub search: Option<Box<SearchDetail>>,
    pub experiment: Option<Box<ExperimentDetail>>,
}

/// An event that passed validation, before enrichment and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub project: ProjectId,
    pub event_type: EventType,
    pub name: String,
    pub timestamp_ms: i64,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub page_title: Option<String>,
    pub session_id: Option<String>,
    pub props: Option<String>,
    pub revenue: Option<(i128, String)>,
    pub interactive: bool,
    /// For server-side senders reporting on behalf of a browser; used for enrichment and the visitor
    /// hash only.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// What the browser reported about itself: page_id, screen, viewport, language, timezone and
    /// custom dimensions. The server fills in the rest of the context at ingest.
    pub context: Context,
    pub detail: Detail,
}

/// How the sender framed its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`: the body must be one JSON document, an array of events or one event.
    Json,
    /// `application/x-ndjson` or unspecified: an array if it starts with `[`, else one event per line.
    Lines,
}

/// Splits a native body (`POST /api/v1/events`) into per-event results.
pub fn parse_native(body: &[u8], framing: Framing, now_ms: i64) -> Result<Vec<Result<Incoming, String>>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    let one = |json: &str| wire::parse_native_event(json, now_ms);
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        return Ok(items.into_iter().map(|raw| one(raw.get())).collect());
    }
    if framing == Framing::Json {
        let single: &RawValue = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        if !single.get().starts_with('{') {
            return Err(BodyError::Json("expected an array of events or one event object".into()));
        }
        return Ok(vec![one(single.get())]);
    }
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(one).collect())
}

pub use wire::TrackerEvent;

/// A tracker body (`POST /api/event`): one event object, or an array of them (a beacon sent when
/// the page is hidden carries everything still queued).
pub struct TrackerBody {
    pub events: Vec<Result<TrackerEvent, String>>,
    /// The body was a single object: answer as Plausible does.
    pub single: bool,
}

pub fn parse_tracker(body: &[u8]) -> Result<TrackerBody, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        let events = items.into_iter().map(|raw| wire::parse_tracker_event(raw.get())).collect();
        return Ok(TrackerBody { events, single: false });
    }
    let single: &RawValue = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
    if !single.get().starts_with('{') {
        return Err(BodyError::Json("expected an event object or an array of them".into()));
    }
    Ok(TrackerBody { events: vec![wire::parse_tracker_event(single.get())], single: true })
}

pub(crate) fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.len() > max => Err(format!("{field} is {} bytes; the limit is {max}", v.len())),
        _ => Ok(()),
    }
}

fn validate(e: &Incoming, now_ms: i64) -> Result<(), String> {
    check_len("url", &e.url, MAX_URL_BYTES)?;
    check_len("referrer", &e.referrer, MAX_URL_BYTES)?;
    check_len("title", &e.page_title, MAX_TITLE_BYTES)?;
    check_len("session_id", &e.session_id, MAX_SESSION_ID_BYTES)?;
    check_len("user_agent", &e.user_agent, MAX_URL_BYTES)?;
    if e.name.len() > MAX_NAME_BYTES {
        return Err(format!("name is {} bytes; the limit is {MAX_NAME_BYTES}", e.name.len()));
    }
    if e.session_id.as_deref().is_some_and(str::is_empty) {
        return Err("session_id must not be empty".into());
    }
    if e.timestamp_ms < MIN_TIMESTAMP_MS {
        return Err("timestamp is before 2000-01-01 (seconds sent as milliseconds?)".into());
    }
    if e.timestamp_ms > now_ms + MAX_FUTURE_MS {
        return Err("timestamp is more than a day in the future".into());
    }
    if e.event_type == EventType::Pageview && e.url.is_none() {
        return Err("pageviews need a url".into());
    }
    Ok(())
}

/// Props must be a flat object of scalars; stored as compact JSON text.
pub fn props_json(value: &Value) -> Result<String, String> {
    let map: &Map<String, Value> = match value {
        Value::Object(m) => m,
        // Plausible allows props as a JSON-encoded string.
        Value::String(s) => {
            let parsed: Value = serde_json::from_str(s).map_err(|_| "props must be a JSON object".to_string())?;
            return props_json(&parsed);
        }
        _ => return Err("props must be a JSON object".into()),
    };
    if map.len() > MAX_PROPS {
        return Err(format!("props has {} keys; the limit is {MAX_PROPS}", map.len()));
    }
    for (key, v) in map {
        if key.len() > MAX_PROP_KEY_BYTES {
            return Err(format!("props key of {} bytes; the limit is {MAX_PROP_KEY_BYTES}", key.len()));
        }
        match v {
            Value::String(s) if s.len() > MAX_PROP_VALUE_BYTES => {
                return Err(format!("props.{key} is {} bytes; the limit is {MAX_PROP_VALUE_BYTES}", s.len()))
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("props.{key} must be a string, number, boolean or null"))
            }
            _ => {}
        }
    }
    serde_json::to_string(map).map_err(|e| e.to_string())
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn array_and_ndjson_give_per_event_results() {
        let body = br#"[{"project":"p","url":"https://a.com/"},{"project":"p","type":"event"},{"project":"p","type":"event","name":"signup","props":{"plan":"pro"},"timestamp":"2025-11-24T10:00:00Z"}]"#;
        let out = parse_native(body, Framing::Json, NOW).unwrap();
        assert!(out[0].is_ok());
        assert!(out[1].as_ref().unwrap_err().contains("name"));
        let e = out[2].as_ref().unwrap();
        assert_eq!(e.event_type, EventType::Custom);
        assert_eq!(e.props.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(e.timestamp_ms, 1_763_978_400_000);

        let nd = b"{\"project\":\"p\",\"url\":\"https://a.com/\"}\n\nnot json\n{\"project\":\"p\",\"url\":\"https://a.com/\",\"timestamp\":1763978400000}\n";
        let out = parse_native(nd, Framing::Lines, NOW).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out[0].is_ok() && out[1].is_err() && out[2].is_ok());
    }

    #[test]
    fn wrong_types_and_limits_are_per_event_errors() {
        for bad in [
            r#"{"project":"p","url":"https://a.com/","timestamp":true}"#,
            r#"{"project":"p","url":5}"#,
            r#"{"project":"P!","url":"https://a.com/"}"#,
            r#"{"project":"p","url":"https://a.com/","props":{"a":{"b":1}}}"#,
            r#"{"project":"p","url":"https://a.com/","props":[1]}"#,
            r#"{"project":"p","url":"https://a.com/","timestamp":1000}"#,
            r#"{"project":"p","url":"https://a.com/","type":"click"}"#,
            r#"{"url":"https://a.com/"}"#,
            r#"{"project":"p","url":"https://a.com/","page_id":"has space"}"#,
            r#"{"project":"p","url":"https://a.com/","dimensions":{"a":[1]}}"#,
            r#"{"project":"p","url":"https://a.com/","revenue":{"amount":"1.23456","currency":"EUR"}}"#,
            r#"{"project":"p","url":"https://a.com/","revenue":{"amount":"1","currency":"euro"}}"#,
            r#"{"project":"p","url":"https://a.com/","ip":"nope"}"#,
        ] {
            let out = parse_native(bad.as_bytes(), Framing::Json, NOW).unwrap();
            assert!(out[0].is_err(), "{bad} accepted");
        }
        let long = format!(r#"{{"project":"p","url":"https://a.com/{}"}}"#, "x".repeat(MAX_URL_BYTES));
        assert!(parse_native(long.as_bytes(), Framing::Lines, NOW).unwrap()[0].is_err());
    }

    #[test]
    fn bodies_that_are_not_json_or_utf8_are_refused_whole() {
        assert!(parse_native(b"[1,", Framing::Lines, NOW).unwrap_err().to_string().contains("JSON"));
        assert!(parse_native(b"{not json}", Framing::Json, NOW).is_err());
        assert!(parse_native(b"\"just a string\"", Framing::Json, NOW).is_err());
        assert_eq!(parse_native(b"{not json}", Framing::Lines, NOW).unwrap().len(), 1);
        assert_eq!(parse_native(&[0xff, 0xfe], Framing::Json, NOW), Err(BodyError::NotUtf8));
        assert_eq!(parse_native(b"  ", Framing::Json, NOW), Err(BodyError::Empty));
        assert!(parse_native(b"[]", Framing::Json, NOW).unwrap().is_empty());
    }

    #[test]
    fn tracker_bodies_take_plausible_names_arrays_and_the_brief_types() {
        let body = parse_tracker(br#"{"n":"Signup","u":"https://a.com/x","d":"a.com,b.com","p":"{\"plan\":\"pro\"}","$":{"amount":12.5,"currency":"eur"}}"#).unwrap();
        assert!(body.single);
        let e = body.events[0].as_ref().unwrap();
        assert_eq!(e.domains().collect::<Vec<_>>(), vec!["a.com", "b.com"]);
        let incoming = e.to_incoming(ProjectId::new("p").unwrap(), NOW).unwrap();
        assert_eq!(incoming.event_type, EventType::Custom);
        assert_eq!(incoming.props.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(incoming.revenue, Some((125_000, "EUR".into())));

        let body = parse_tracker(
            br#"[{"name":"pageview","url":"https://a.com/","domain":"a.com","page_id":"ab12","screen_width":1920,"language":"de-DE"},
                 {"type":"engagement","domain":"a.com","url":"https://a.com/","page_id":"ab12","active_time_ms":5000.7,"scroll_percentage":80},
                 {"type":"teleport","domain":"a.com"},
                 {"type":"error","domain":"a.com","page_id":"ab12","error_message":"x is undefined","line_number":3},
                 {"url":"https://a.com/"}]"#,
        )
        .unwrap();
        assert!(!body.single);
        let p = ProjectId::new("p").unwrap();
        let all: Vec<_> = body
            .events
            .iter()
            .map(|e| e.as_ref().map_err(Clone::clone).and_then(|e| e.to_incoming(p.clone(), NOW)))
            .collect();
        let pv = all[0].as_ref().unwrap();
        assert_eq!((pv.event_type, pv.context.page_id.as_deref()), (EventType::Pageview, Some("ab12")));
        assert_eq!((pv.context.screen_width, pv.context.language.as_deref()), (Some(1920), Some("de-DE")));
        let eng = all[1].as_ref().unwrap().detail.engagement.as_ref().unwrap();
        assert_eq!((eng.active_time_ms, eng.scroll_percentage), (Some(5001), Some(80)));
        assert!(all[2].as_ref().unwrap_err().contains("type must be one of"));
        let err = all[3].as_ref().unwrap().detail.error.as_ref().unwrap();
        assert_eq!(err.error_type.as_deref(), Some("javascript"));
        assert!(all[4].as_ref().unwrap_err().contains("domain"));
    }
}
