//! Native ingest (`POST /api/v1/events`) read back with SQL, across the
//! buffer → file transition and a restart.

use chrono::{Duration, Utc};
use footfall_tests::{value_i64, value_str, Server, ServerOpts};
use serde_json::{json, Value};

use crate::{custom_event, pageview};

/// Digits of a rendered timestamp, e.g. `2024-05-01T12:34:56Z` → `20240501123456`.
fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `props` is JSON text; parse it (tolerating a server that renders it as
/// a JSON object already).
fn props_of(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|e| panic!("props is not JSON text ({e}): {s:?}")),
        other => other.clone(),
    }
}

#[test]
fn ingest_native_then_sql() {
    let mut server = Server::start(ServerOpts::new());
    server.create_project("site1", "example.com");
    let ingest = server.create_key("site1", "ingest");
    let query = server.create_key("site1", "query");

    let rfc_ts = Utc::now() - Duration::hours(1);
    let ms_ts = Utc::now() - Duration::hours(2);

    // A JSON array.
    let mut first = pageview("site1", "https://example.com/pricing?utm_source=news&utm_medium=email");
    first["referrer"] = json!("https://news.ycombinator.com/item?id=1");
    first["session_id"] = json!("sess-a");
    let mut ts_rfc = pageview("site1", "https://example.com/ts-rfc");
    ts_rfc["timestamp"] = json!(rfc_ts.to_rfc3339());
    let mut ts_ms = pageview("site1", "https://example.com/ts-ms");
    ts_ms["timestamp"] = json!(ms_ts.timestamp_millis());
    let batch = vec![
        first,
        pageview("site1", "https://example.com/"),
        custom_event("site1", "signup", "https://example.com/signup", json!({"plan": "pro", "seats": 3})),
        ts_rfc,
        ts_ms,
    ];
    server.ingest_ok(&ingest, &batch);

    // NDJSON.
    let ndjson = vec![
        pageview("site1", "https://example.com/blog/post-1"),
        custom_event("site1", "click", "https://example.com/blog/post-1", json!({"target": "cta"})),
    ];
    let resp = server.ingest_ndjson(&ingest, &ndjson);
    assert_eq!(resp.status(), 200, "NDJSON ingest: {:?}", resp.text());
    let outcome = footfall_tests::IngestOutcome::from_body(
        &serde_json::from_str::<Value>(&resp.text().expect("NDJSON ingest body")).expect("NDJSON ingest body is JSON"),
    );
    assert_eq!(outcome.accepted, 2, "NDJSON: {outcome:?}");
    assert!(outcome.rejected.is_empty(), "NDJSON: {outcome:?}");

    let expected_min = |ts: chrono::DateTime<Utc>| ts.format("%Y%m%d%H%M").to_string();
    let check = |server: &Server, stage: &str| -> Value {
        let snap = snapshot(server, &query);
        assert_eq!(snap["events"], json!(7), "[{stage}] {snap:#}");
        assert_eq!(snap["pageviews"], json!(5), "[{stage}] {snap:#}");
        assert_eq!(
            snap["pageview_types"],
            json!(["pageview"]),
            "[{stage}] the pageviews table must hold pageviews only"
        );
        assert_eq!(
            snap["paths"],
            json!([["/", 1], ["/blog/post-1", 2], ["/pricing", 1], ["/signup", 1], ["/ts-ms", 1], ["/ts-rfc", 1]]),
            "[{stage}] paths (each exactly once)"
        );
        assert_eq!(
            snap["pricing"],
            json!({
                "hostname": "example.com",
                "path": "/pricing",
                "query_string": "utm_source=news&utm_medium=email",
                "utm_source": "news",
                "utm_medium": "email",
                "referrer_domain": "news.ycombinator.com",
                "session_id": "sess-a",
            }),
            "[{stage}] parsed fields of the /pricing pageview"
        );
        assert_eq!(
            snap["custom"],
            json!([
                ["click", {"target": "cta"}],
                ["signup", {"plan": "pro", "seats": 3}]
            ]),
            "[{stage}] custom events with their props"
        );
        let rfc = snap["ts"]["/ts-rfc"].as_str().unwrap_or_default().to_string();
        let ms = snap["ts"]["/ts-ms"].as_str().unwrap_or_default().to_string();
        assert!(
            digits(&rfc).starts_with(&expected_min(rfc_ts)),
            "[{stage}] RFC3339 timestamp {} stored as {rfc:?}",
            rfc_ts.to_rfc3339()
        );
        assert!(
            digits(&ms).starts_with(&expected_min(ms_ts)),
            "[{stage}] epoch-ms timestamp {} stored as {ms:?}",
            ms_ts.timestamp_millis()
        );
        snap
    };

    // Read-your-writes straight from the buffer.
    let before = check(&server, "buffered");
    let written = server.flush();
    assert!(written >= 1, "flush wrote no file");
    let after_flush = check(&server, "after flush");
    assert_eq!(before, after_flush, "answers changed across the flush");
    // A second flush has nothing to write and must not duplicate anything.
    server.flush();
    check(&server, "after second flush");

    server.restart();
    let after_restart = check(&server, "after restart");
    assert_eq!(before, after_restart, "answers changed across the restart");
}

/// Every answer the test checks, as one comparable value.
fn snapshot(server: &Server, token: &str) -> Value {
    let events = server.count(token, "events");
    let pageviews = server.count(token, "pageviews");
    let pageview_types: Vec<Value> = server
        .sql(token, "SELECT DISTINCT event_type FROM events WHERE event_id IN (SELECT event_id FROM pageviews)")
        .iter()
        .map(|r| r["event_type"].clone())
        .collect();
    let paths: Vec<Value> = server
        .sql(token, "SELECT path, count(*) AS c FROM events GROUP BY path ORDER BY path")
        .iter()
        .map(|r| json!([r["path"], value_i64(&r["c"])]))
        .collect();
    let pricing_rows = server.sql(
        token,
        "SELECT hostname, path, query_string, utm_source, utm_medium, \
         referrer_domain, session_id FROM events WHERE path = '/pricing'",
    );
    assert_eq!(pricing_rows.len(), 1, "one /pricing row: {pricing_rows:?}");
    let r = &pricing_rows[0];
    let pricing = json!({
        "hostname": r["hostname"],
        "path": r["path"],
        "query_string": r["query_string"],
        "utm_source": r["utm_source"],
        "utm_medium": r["utm_medium"],
        "referrer_domain": r["referrer_domain"],
        "session_id": r["session_id"],
    });
    let custom: Vec<Value> = server
        .sql(token, "SELECT name, props FROM events WHERE event_type <> 'pageview' ORDER BY name")
        .iter()
        .map(|r| json!([r["name"], props_of(&r["props"])]))
        .collect();
    let mut ts = serde_json::Map::new();
    for r in server.sql(
        token,
        "SELECT path, CAST(added_iso AS VARCHAR) AS t FROM events \
         WHERE path IN ('/ts-rfc', '/ts-ms')",
    ) {
        let path = value_str(&r["path"]).expect("path").to_string();
        ts.insert(path, r["t"].clone());
    }
    json!({
        "events": events,
        "pageviews": pageviews,
        "pageview_types": pageview_types,
        "paths": paths,
        "pricing": pricing,
        "custom": custom,
        "ts": ts,
    })
}
