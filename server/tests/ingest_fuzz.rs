//! Ingest bodies from an attacker: random JSON documents shaped like native and Plausible events
//! (every known field, with values of every JSON type, nested deep, long, or with look-alike
//! unicode), random bytes and deeply nested arrays — through parsing and then enrichment of every
//! string that survives. Each body must parse into per-event results or a body error; nothing may
//! panic, and one bad event never sinks the others.
//!
//! Case counts follow `PROPTEST_CASES` (the budget here is seconds in CI). Failures are kept in
//! `proptest-regressions/` beside this file.

use std::sync::OnceLock;

use footfall_server::enrich::{EnrichConfig, Enricher};
use footfall_server::ingest::{parse_native, parse_tracker, Framing};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FIELDS: &[&str] = &[
    "project",
    "domain",
    "d",
    "type",
    "name",
    "n",
    "url",
    "u",
    "referrer",
    "r",
    "title",
    "session_id",
    "props",
    "p",
    "revenue",
    "$",
    "interactive",
    "i",
    "ip",
    "user_agent",
    "timestamp",
    "page_id",
    "screen_width",
    "viewport_height",
    "language",
    "timezone",
    "dimensions",
    "time_on_page_ms",
    "scroll_percentage",
    "rage_clicks",
    "largest_contentful_paint_ms",
    "cumulative_layout_shift",
    "interaction_type",
    "element_selector",
    "element_text",
    "element_position",
    "error_type",
    "error_message",
    "error_stack",
    "line_number",
    "form_event",
    "form_id",
    "search_query",
    "experiment_id",
    "variant_id",
    "h",
    "sd",
    "e",
    "v",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "\\PC{0,20}",
        Just("https://example.com/a?utm_source=x&email=a@b.co#f".to_string()),
        Just("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36".to_string()),
        Just("ｅｘａｍｐｌｅ．ｃｏｍ".to_string()),
        Just("\u{202e}\u{0}\u{feff}".to_string()),
        (1usize..200_000).prop_map(|n| "a".repeat(n)),
        Just("1e999".to_string()),
        Just("::ffff:127.0.0.1".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        text().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z$]{1,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn event() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(proptest::sample::select(FIELDS), value(), 0..16).prop_map(|fields| {
        let mut m: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // Often enough a plausible core, so parsing gets past the first checks.
        m.entry("project").or_insert(json!("site1"));
        Value::Object(m)
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(event(), 0..20).prop_map(|events| Value::Array(events).to_string().into_bytes()),
        event().prop_map(|e| e.to_string().into_bytes()),
        proptest::collection::vec(event(), 1..10).prop_map(|events| events
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..512),
        (1usize..100_000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (1usize..100_000)
            .prop_map(|depth| format!("{{\"props\":{}1{}}}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()),
    ]
}

fn enricher() -> &'static Enricher {
    static ENRICHER: OnceLock<Enricher> = OnceLock::new();
    ENRICHER.get_or_init(|| Enricher::new(&EnrichConfig::default()).expect("bundled enrichment data loads"))
}

/// Every string of `v`, for the enrichment calls.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn native_bodies_parse_into_per_event_results(body in body()) {
        for framing in [Framing::Json, Framing::Lines] {
            if let Ok(events) = parse_native(&body, framing, 1_763_978_400_000) {
                // Per-event results: a bad event is an Err beside the others, never the batch's end.
                let _ = events.iter().filter(|e| e.is_ok()).count();
            }
        }
    }

    #[test]
    fn tracker_bodies_parse_into_per_event_results(body in body()) {
        let _ = parse_tracker(&body);
    }

    #[test]
    fn enrichment_takes_any_string(e in event()) {
        let mut all = Vec::new();
        strings(&e, &mut all);
        let enricher = enricher();
        for s in all.iter().take(8) {
            let _ = enricher.client(s);
            if let Some(page) = enricher.page(s) {
                let _ = enricher.referrer(Some(s), &page);
            }
            let _ = enricher.scrub(s);
            let _ = footfall_server::enrich::referrer_domain(s);
        }
    }
}
