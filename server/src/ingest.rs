//! Turning request bodies into validated incoming events: the native batch format
//! (`POST /api/v1/events`) and Plausible's (`POST /api/event`). Validation is per event, so one bad
//! event is reported by index while the rest of its batch is kept.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use footfall_engine::event::REVENUE_SCALE;
use footfall_engine::{EventType, ProjectId};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;

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
    /// For server-side senders reporting on behalf of a browser; used for the visitor hash only.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TimestampIn {
    EpochMs(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AmountIn {
    Number(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct RevenueIn {
    amount: AmountIn,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct NativeEvent {
    project: String,
    #[serde(rename = "type")]
    event_type: Option<String>,
    timestamp: Option<TimestampIn>,
    url: Option<String>,
    referrer: Option<String>,
    title: Option<String>,
    session_id: Option<String>,
    name: Option<String>,
    props: Option<Value>,
    revenue: Option<RevenueIn>,
    interactive: Option<bool>,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// How the sender framed its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `application/json`: the body must be one JSON document, an array of events or one event.
    Json,
    /// `application/x-ndjson` or unspecified: an array if it starts with `[`, else one event per line.
    Lines,
}

/// Splits a native body into per-event results.
pub fn parse_native(body: &[u8], framing: Framing, now_ms: i64) -> Result<Vec<Result<Incoming, String>>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        return Ok(items.into_iter().map(|raw| parse_one(raw.get(), now_ms)).collect());
    }
    if framing == Framing::Json {
        let one: &RawValue = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        if !one.get().starts_with('{') {
            return Err(BodyError::Json("expected an array of events or one event object".into()));
        }
        return Ok(vec![parse_one(one.get(), now_ms)]);
    }
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(|line| parse_one(line, now_ms)).collect())
}

fn parse_one(json: &str, now_ms: i64) -> Result<Incoming, String> {
    let e: NativeEvent = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let project = ProjectId::new(e.project).map_err(|e| e.to_string())?;
    let event_type = match e.event_type.as_deref() {
        Some("pageview") => EventType::Pageview,
        Some("event") => EventType::Custom,
        Some(other) => return Err(format!("type must be \"pageview\" or \"event\", got {other:?}")),
        None if e.name.as_deref().is_none_or(|n| n == "pageview") => EventType::Pageview,
        None => EventType::Custom,
    };
    let name = match (event_type, e.name) {
        (EventType::Pageview, _) => "pageview".to_string(),
        (EventType::Custom, Some(n)) if !n.trim().is_empty() => n,
        (EventType::Custom, _) => return Err("custom events need a name".into()),
    };
    let timestamp_ms = match e.timestamp {
        None => now_ms,
        Some(TimestampIn::EpochMs(ms)) => ms,
        Some(TimestampIn::Text(s)) => DateTime::parse_from_rfc3339(&s)
            .map_err(|err| format!("timestamp {s:?} is not RFC 3339: {err}"))?
            .timestamp_millis(),
    };
    let ip = e.ip.map(|s| s.parse::<IpAddr>().map_err(|_| format!("ip {s:?} is not an IP address"))).transpose()?;
    let incoming = Incoming {
        project,
        event_type,
        name,
        timestamp_ms,
        url: e.url,
        referrer: e.referrer,
        page_title: e.title,
        session_id: e.session_id,
        props: e.props.map(|p| props_json(&p)).transpose()?,
        revenue: e.revenue.map(parse_revenue).transpose()?,
        interactive: e.interactive.unwrap_or(true),
        ip,
        user_agent: e.user_agent,
    };
    validate(&incoming, now_ms)?;
    Ok(incoming)
}

fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), String> {
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

fn parse_revenue(r: RevenueIn) -> Result<(i128, String), String> {
    let text = match r.amount {
        AmountIn::Number(n) if n.is_finite() => n.to_string(),
        AmountIn::Number(_) => return Err("revenue.amount must be finite".into()),
        AmountIn::Text(s) => s.trim().to_string(),
    };
    let amount = parse_decimal(&text)
        .ok_or_else(|| format!("revenue.amount {text:?} is not a decimal with at most 4 places"))?;
    let currency = r.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("revenue.currency {:?} is not an ISO 4217 code", r.currency));
    }
    Ok((amount, currency))
}

/// Parses "12.5" into 125000 (scale 4) exactly, without going through floating point.
fn parse_decimal(s: &str) -> Option<i128> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = REVENUE_SCALE as usize;
    if whole.is_empty() && frac.is_empty() || frac.len() > scale || whole.len() > 14 {
        return None;
    }
    if !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_value: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let value = whole * 10i128.pow(scale as u32) + frac_value * 10i128.pow((scale - frac.len()) as u32);
    Some(if negative { -value } else { value })
}

/// Plausible's event body. Field names and their one-letter forms, as its tracker sends them.
#[derive(Debug, Deserialize)]
pub struct PlausibleEvent {
    #[serde(alias = "n")]
    pub name: String,
    #[serde(alias = "u")]
    pub url: String,
    #[serde(alias = "d")]
    pub domain: String,
    #[serde(alias = "r")]
    pub referrer: Option<String>,
    #[serde(alias = "p")]
    pub props: Option<Value>,
    #[serde(rename = "revenue", alias = "$")]
    revenue: Option<Value>,
    #[serde(alias = "i")]
    pub interactive: Option<bool>,
}

pub fn parse_plausible(body: &[u8]) -> Result<PlausibleEvent, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))
}

impl PlausibleEvent {
    /// The domains this event is for: Plausible allows a comma-separated list to send to several sites.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domain.split(',').map(str::trim).filter(|d| !d.is_empty())
    }

    pub fn to_incoming(&self, project: ProjectId, now_ms: i64) -> Result<Incoming, String> {
        let event_type = if self.name == "pageview" { EventType::Pageview } else { EventType::Custom };
        let revenue = match &self.revenue {
            None | Some(Value::Null) => None,
            Some(v) => {
                let r: RevenueIn = serde_json::from_value(v.clone()).map_err(|e| format!("revenue: {e}"))?;
                Some(parse_revenue(r)?)
            }
        };
        let incoming = Incoming {
            project,
            event_type,
            name: self.name.clone(),
            timestamp_ms: now_ms,
            url: Some(self.url.clone()),
            referrer: self.referrer.clone().filter(|r| !r.is_empty()),
            page_title: None,
            session_id: None,
            props: self.props.as_ref().filter(|p| !p.is_null()).map(props_json).transpose()?,
            revenue,
            interactive: self.interactive.unwrap_or(true),
            ip: None,
            user_agent: None,
        };
        if incoming.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        validate(&incoming, now_ms)?;
        Ok(incoming)
    }
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
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.50"), Some(125_000));
        assert_eq!(parse_decimal("-0.0001"), Some(-1));
        assert_eq!(parse_decimal("7"), Some(70_000));
        assert_eq!(parse_decimal("1.23456"), None);
        assert_eq!(parse_decimal("1e3"), None);
        assert_eq!(parse_decimal("."), None);
    }

    #[test]
    fn plausible_short_and_long_names() {
        let e = parse_plausible(br#"{"n":"Signup","u":"https://a.com/x","d":"a.com,b.com","p":"{\"plan\":\"pro\"}","$":{"amount":12.5,"currency":"eur"}}"#).unwrap();
        assert_eq!(e.domains().collect::<Vec<_>>(), vec!["a.com", "b.com"]);
        let incoming = e.to_incoming(ProjectId::new("p").unwrap(), NOW).unwrap();
        assert_eq!(incoming.event_type, EventType::Custom);
        assert_eq!(incoming.props.as_deref(), Some(r#"{"plan":"pro"}"#));
        assert_eq!(incoming.revenue, Some((125_000, "EUR".into())));
        let e = parse_plausible(br#"{"name":"pageview","url":"https://a.com/","domain":"a.com"}"#).unwrap();
        assert_eq!(e.to_incoming(ProjectId::new("p").unwrap(), NOW).unwrap().event_type, EventType::Pageview);
    }
}
