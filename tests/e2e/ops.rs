//! Health, metrics and the SQL output formats.

use footfall_tests::{json_body, Server, ServerOpts};
use reqwest::blocking::Response;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{custom_event, pageview};

#[test]
fn metrics_and_health() {
    let server = Server::start(ServerOpts::new());
    server.assert_healthy();
    server.create_project("ops", "example.com");
    let ingest = server.create_key("ops", "ingest");
    let query = server.create_key("ops", "query");
    server.ingest_ok(&ingest, &[pageview("ops", "https://example.com/m")]);
    assert_eq!(server.count(&query, "events"), 1);
    assert!(server.flush() >= 1);

    let mut resp = server.get("/metrics").send().expect("GET /metrics");
    if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        eprintln!("/metrics wants a token ({}); retrying as admin", resp.status());
        resp = server.get("/metrics").bearer_auth(server.admin()).send().expect("GET /metrics as admin");
    }
    assert_eq!(resp.status(), StatusCode::OK, "GET /metrics");
    let text = resp.text().expect("metrics body");
    for name in [
        "footfall_events_accepted_total",
        "footfall_wal_fsync_seconds",
        "footfall_flushes_total",
        "footfall_queries_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text:.4000}");
    }
    server.assert_healthy();
}

fn content_type(resp: &Response) -> String {
    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn ok_bytes(resp: Response, want_ct: &str, what: &str) -> Vec<u8> {
    let status = resp.status();
    let ct = content_type(&resp);
    let bytes = resp.bytes().expect("body").to_vec();
    assert_eq!(status, StatusCode::OK, "{what}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(1000)]));
    assert!(ct.starts_with(want_ct), "{what}: content-type {ct:?}, want {want_ct}");
    bytes
}

#[test]
fn sql_formats() {
    let server = Server::start(ServerOpts::new());
    server.create_project("fmt", "example.com");
    let ingest = server.create_key("fmt", "ingest");
    let query = server.create_key("fmt", "query");
    server.ingest_ok(
        &ingest,
        &[
            pageview("fmt", "https://example.com/one"),
            pageview("fmt", "https://example.com/two"),
            custom_event("fmt", "signup", "https://example.com/three", serde_json::json!({"k": "v"})),
        ],
    );
    let sql = "SELECT path, event_type FROM events ORDER BY path";

    let json = ok_bytes(server.sql_request(&query, sql, "json"), "application/json", "json");
    let rows: Vec<Value> = serde_json::from_slice(&json).expect("json format is a JSON array");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["path"], "/one");

    let nd = ok_bytes(server.sql_request(&query, sql, "ndjson"), "application/x-ndjson", "ndjson");
    let lines: Vec<Value> = String::from_utf8(nd)
        .expect("ndjson is UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("each ndjson line is JSON"))
        .collect();
    assert_eq!(lines, rows, "ndjson rows = json rows");

    let csv = ok_bytes(server.sql_request(&query, sql, "csv"), "text/csv", "csv");
    let csv = String::from_utf8(csv).expect("csv is UTF-8");
    let lines: Vec<&str> = csv.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "header + 3 rows: {csv}");
    assert!(lines[0].contains("path") && lines[0].contains("event_type"), "header: {csv}");
    assert!(lines[1].starts_with("/one"), "{csv}");

    let arrow = ok_bytes(server.sql_request(&query, sql, "arrow"), "application/vnd.apache.arrow.stream", "arrow");
    assert!(
        arrow.len() > 8 && arrow[..4] == [0xff, 0xff, 0xff, 0xff],
        "arrow IPC stream must start with the continuation marker: {:?}",
        &arrow[..arrow.len().min(16)]
    );

    let parquet = ok_bytes(server.sql_request(&query, sql, "parquet"), "application/vnd.apache.parquet", "parquet");
    assert!(
        parquet.len() > 8 && parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"),
        "not a parquet file: {:?}",
        &parquet[..parquet.len().min(16)]
    );

    // GET with the query in the URL.
    let resp = server
        .get("/api/v1/sql")
        .bearer_auth(&query)
        .query(&[("q", sql), ("format", "csv")])
        .send()
        .expect("GET /api/v1/sql");
    let get_csv = ok_bytes(resp, "text/csv", "GET csv");
    assert_eq!(String::from_utf8(get_csv).expect("UTF-8"), csv, "GET = POST");
    let resp = server
        .get("/api/v1/sql")
        .bearer_auth(&query)
        .query(&[("q", sql), ("format", "json")])
        .send()
        .expect("GET /api/v1/sql");
    let status = resp.status();
    let body = json_body(resp);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, Value::Array(rows), "GET json = POST json");
}
