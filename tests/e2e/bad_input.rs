//! Hostile and malformed input: always a 4xx with the JSON error body (or a
//! per-event rejection), never a 5xx, a hang or a crash.

use std::thread;
use std::time::Duration;

use footfall_tests::{assert_error_body, IngestOutcome, Server, ServerOpts};
use reqwest::blocking::Response;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::pageview;

/// Status and body text; panics on a 5xx.
fn not_5xx(resp: Response, what: &str) -> (StatusCode, String) {
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    assert!(!status.is_server_error(), "{what}: server error {status}: {text:.1000}");
    (status, text)
}

/// A 4xx (of `want`, when given) with the documented JSON error body.
fn assert_client_error(resp: Response, want: Option<StatusCode>, what: &str) {
    let (status, text) = not_5xx(resp, what);
    assert!(status.is_client_error(), "{what}: expected a 4xx, got {status}: {text:.1000}");
    if let Some(want) = want {
        assert_eq!(status, want, "{what}: {text:.1000}");
    }
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: {status} with a non-JSON body ({e}): {text:.1000}"));
    assert_error_body(&body, None);
}

/// Either a 400 with the JSON error body, or a 200 in which exactly the
/// events at `bad` are rejected (with a reason). Returns how many events
/// were accepted.
fn assert_rejected_or_400(resp: Response, bad: &[u64], total: u64, what: &str) -> u64 {
    let (status, text) = not_5xx(resp, what);
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: {status} with a non-JSON body ({e}): {text:.1000}"));
    match status {
        StatusCode::BAD_REQUEST => {
            assert_error_body(&body, None);
            0
        }
        StatusCode::OK => {
            let outcome = IngestOutcome::from_body(&body);
            assert_eq!(outcome.rejected_indices(), bad, "{what}: {outcome:?}");
            assert_eq!(outcome.accepted, total - bad.len() as u64, "{what}: {outcome:?}");
            assert!(
                outcome.rejected.iter().all(|(_, e)| !e.is_empty()),
                "{what}: rejection without a reason: {outcome:?}"
            );
            outcome.accepted
        }
        other => panic!("{what}: expected 400 or 200 with rejections, got {other}: {text:.1000}"),
    }
}

/// Sends a body over the limit over a raw socket (the server may answer
/// 413 and close before reading it all, which ordinary clients can report as
/// a broken pipe); a few attempts are allowed for a reset before the answer.
fn assert_too_large(server: &Server, path: &str, token: Option<&str>, body: &[u8]) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let mut last_err = None;
    for _ in 0..3 {
        match server.post_raw(path, &headers, body.to_vec()) {
            Ok(resp) => {
                let text = resp.text();
                assert_eq!(resp.status, 413, "{path}: 20 MB body: {text:.1000}");
                let body: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{path}: 413 with a non-JSON body ({e}): {text:.1000}"));
                assert_error_body(&body, None);
                return;
            }
            Err(e) => {
                last_err = Some(e);
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    panic!("{path}: 20 MB body: no HTTP answer in 3 attempts (want 413): {last_err:?}");
}

fn nested(depth: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

#[test]
fn bad_input_is_rejected_cleanly() {
    let server = Server::start(ServerOpts::new());
    server.create_project("bad", "example.com");
    let ingest = server.create_key("bad", "ingest");
    let query = server.create_key("bad", "query");
    let good = |n: u32| pageview("bad", &format!("https://example.com/good/{n}"));
    let mut accepted: u64 = 0;

    // Malformed JSON. Sent as application/json, the body must be JSON (NDJSON
    // is announced with application/x-ndjson), so these are a 400 for the
    // whole request, not per-line rejections.
    for body in [&b"[{\"project\": "[..], b"{not json}", b"[1, 2,", b"\"just a string\"", b"[null]"] {
        let resp = server.ingest_raw(&ingest, "application/json", body.to_vec());
        let what = format!("malformed JSON {:?}", String::from_utf8_lossy(body));
        if body == b"[null]" {
            accepted += assert_rejected_or_400(resp, &[0], 1, &what);
        } else {
            assert_client_error(resp, Some(StatusCode::BAD_REQUEST), &what);
        }
    }

    // Wrong types, each next to a good event.
    for (field, value) in [
        ("timestamp", json!(true)),
        ("url", json!(5)),
        ("type", json!(["pageview"])),
        ("props", json!("not an object")),
        ("session_id", json!({"x": 1})),
        ("timestamp", json!("yesterday-ish")),
        ("timestamp", json!(1e300)),
    ] {
        let mut bad = good(100);
        bad[field] = value.clone();
        let resp = server.ingest(&ingest, &[good(1), bad]);
        accepted += assert_rejected_or_400(resp, &[1], 2, &format!("{field}: {value}"));
    }

    // Invalid UTF-8, as a JSON array and as NDJSON.
    let mut body = br#"[{"project":"bad","type":"pageview","url":"https://example.com/"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#""}]"#);
    let resp = server.ingest_raw(&ingest, "application/json", body.clone());
    assert_client_error(resp, Some(StatusCode::BAD_REQUEST), "invalid UTF-8 (JSON)");
    let mut nd = good(2).to_string().into_bytes();
    nd.push(b'\n');
    nd.extend_from_slice(&body[1..body.len() - 1]);
    nd.push(b'\n');
    let resp = server.ingest_raw(&ingest, "application/x-ndjson", nd);
    accepted += assert_rejected_or_400(resp, &[1], 2, "invalid UTF-8 (NDJSON line 2)");

    // Deep nesting: 100 levels is rejected; 100 000 must not blow the stack.
    let mut deep = good(3);
    deep["props"] = nested(100);
    let resp = server.ingest(&ingest, &[deep]);
    accepted += assert_rejected_or_400(resp, &[0], 1, "100-deep props");
    let mut body = br#"[{"project":"bad","type":"event","name":"x","url":"https://example.com/","props":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.extend_from_slice(b"}]");
    let resp = server.ingest_raw(&ingest, "application/json", body);
    accepted += assert_rejected_or_400(resp, &[0], 1, "100 000-deep props");
    server.assert_healthy();

    // Too large.
    let event = good(4).to_string();
    let mut big = String::from("[");
    while big.len() < 20 * 1024 * 1024 {
        big.push_str(&event);
        big.push(',');
    }
    big.push_str(&event);
    big.push(']');
    assert_too_large(&server, "/api/v1/events", Some(&ingest), big.as_bytes());
    assert_too_large(&server, "/api/event", None, big.as_bytes());
    drop(big);

    // A 200 KB URL: that event is rejected, its neighbour accepted.
    let huge_url = format!("https://example.com/{}", "a".repeat(200 * 1024));
    let outcome = server.ingest_outcome(&ingest, &[good(5), pageview("bad", &huge_url)]);
    assert_eq!(outcome.accepted, 1, "200 KB url: {outcome:?}");
    assert_eq!(outcome.rejected_indices(), vec![1], "200 KB url: {outcome:?}");
    accepted += 1;

    // Unknown keys: ignored or rejected, never a 5xx.
    let mut odd = good(6);
    odd["color"] = json!("blue");
    odd["nested"] = json!({"deeper": [1, 2, 3]});
    let (status, text) = not_5xx(server.ingest(&ingest, &[odd]), "unknown keys");
    if status == StatusCode::OK {
        let body: Value = serde_json::from_str(&text).expect("JSON");
        accepted += IngestOutcome::from_body(&body).accepted;
    } else {
        assert!(status.is_client_error(), "unknown keys: {status} {text}");
    }

    // Empty batch.
    let outcome = server.ingest_outcome(&ingest, &[]);
    assert_eq!(outcome, IngestOutcome { accepted: 0, rejected: vec![] }, "empty array");

    // Empty body, a bare object, an odd content type: no 5xx.
    for (ct, body) in [
        ("application/json", Vec::new()),
        ("application/x-ndjson", Vec::new()),
        ("application/xml", b"<events/>".to_vec()),
    ] {
        let (status, text) = not_5xx(server.ingest_raw(&ingest, ct, body), &format!("{ct} body"));
        if status == StatusCode::OK {
            let body: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(IngestOutcome::from_body(&body).accepted, 0, "{ct}: {text}");
        }
    }
    let (status, text) =
        not_5xx(server.ingest_raw(&ingest, "application/json", good(7).to_string().into_bytes()), "a bare object");
    if status == StatusCode::OK {
        let body: Value = serde_json::from_str(&text).expect("JSON");
        accepted += IngestOutcome::from_body(&body).accepted;
    }

    // One bad event among good ones.
    let mut bad = good(102);
    bad["type"] = json!("bogus-type");
    let batch = vec![good(8), good(9), bad, good(10)];
    let outcome = server.ingest_outcome(&ingest, &batch);
    assert_eq!(outcome.accepted, 3, "{outcome:?}");
    assert_eq!(outcome.rejected_indices(), vec![2], "{outcome:?}");
    assert!(!outcome.rejected[0].1.is_empty(), "rejection without a reason");
    accepted += 3;

    // Plausible endpoint.
    for body in
        [&b"{not json"[..], b"{}", b"{\"n\":\"pageview\"}", b"{\"n\":5,\"u\":[],\"d\":{}}", b"\"pageview\"", b"42"]
    {
        let resp = server
            .post("/api/event")
            .header("user-agent", footfall_tests::UA_CHROME)
            .header("content-type", "text/plain")
            .body(body.to_vec())
            .send()
            .expect("POST /api/event");
        assert_client_error(
            resp,
            Some(StatusCode::BAD_REQUEST),
            &format!("plausible {:?}", String::from_utf8_lossy(body)),
        );
    }

    // SQL.
    let sql_errors = [
        "SELEC 1",
        "SELECT * FROM no_such_table",
        "SELECT no_such_column FROM events",
        "SELECT count(* FROM events",
        "",
    ];
    for sql in sql_errors {
        assert_client_error(
            server.sql_request(&query, sql, "json"),
            Some(StatusCode::BAD_REQUEST),
            &format!("SQL {sql:?}"),
        );
    }
    assert_client_error(server.sql_request(&query, "SELECT 1", "xml"), Some(StatusCode::BAD_REQUEST), "unknown format");
    let resp = server
        .post("/api/v1/sql")
        .bearer_auth(&query)
        .header("content-type", "application/json")
        .body("{\"sql\": ")
        .send()
        .expect("POST /api/v1/sql");
    assert_client_error(resp, None, "malformed SQL request");
    let resp = server
        .post("/api/v1/sql")
        .bearer_auth(&query)
        .json(&json!({"format": "json"}))
        .send()
        .expect("POST /api/v1/sql");
    assert_client_error(resp, None, "SQL request without sql");

    // Still alive, and the good events all landed.
    server.assert_healthy();
    assert_eq!(server.count(&query, "events") as u64, accepted);
}
