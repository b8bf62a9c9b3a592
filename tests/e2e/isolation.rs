//! Project isolation of query keys, forbidden SQL, and auth on every route.

use footfall_tests::{
    assert_error_body, json_body, value_str, Server, ServerOpts, ERROR_CODE_FORBIDDEN, ERROR_CODE_UNAUTHORIZED,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::pageview;

const FORBIDDEN_SQL: &[&str] = &[
    "CREATE TABLE x AS SELECT 1",
    "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    "COPY (SELECT 1) TO '/tmp/x.csv'",
    "INSERT INTO events VALUES (1)",
    "DROP TABLE events",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SET datafusion.execution.batch_size = 1",
    "SELECT 1; SELECT 2",
    "CREATE VIEW v AS SELECT * FROM events",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/y.csv'",
];

fn assert_status_code(resp: reqwest::blocking::Response, status: StatusCode, code: &str, what: &str) {
    let got = resp.status();
    let body = json_body(resp);
    assert_eq!(got, status, "{what}: body {body}");
    assert_error_body(&body, Some(code));
}

#[test]
fn isolation_and_forbidden() {
    let server = Server::start(ServerOpts::new());
    server.create_project("a", "a.example");
    server.create_project("b", "b.example");
    let a_ingest = server.create_key("a", "ingest");
    let a_query = server.create_key("a", "query");
    let b_ingest = server.create_key("b", "ingest");
    let b_query = server.create_key("b", "query");

    let a_events: Vec<Value> = (0..3).map(|i| pageview("a", &format!("https://a.example/{i}"))).collect();
    let b_events: Vec<Value> = (0..5).map(|i| pageview("b", &format!("https://b.example/{i}"))).collect();
    server.ingest_ok(&a_ingest, &a_events);
    server.ingest_ok(&b_ingest, &b_events);

    // Flush half-way so that confinement is checked over buffer + files.
    for stage in ["buffered", "flushed"] {
        assert_eq!(server.count(&a_query, "events"), 3, "[{stage}]");
        assert_eq!(server.count(&b_query, "events"), 5, "[{stage}]");
        assert_eq!(server.count(server.admin(), "events"), 8, "[{stage}]");
        let leaks: &[(&str, i64)] = &[
            ("SELECT count(*) AS c FROM events WHERE project_id = 'b'", 0),
            ("SELECT count(*) AS c FROM (SELECT * FROM events) t", 3),
            (
                "SELECT count(*) AS c FROM (SELECT project_id FROM events \
                 UNION ALL SELECT project_id FROM pageviews) u WHERE project_id = 'b'",
                0,
            ),
            (
                "SELECT count(*) AS c FROM (SELECT project_id FROM events \
                 UNION SELECT project_id FROM pageviews) u",
                1,
            ),
            ("WITH x AS (SELECT * FROM events) SELECT count(*) AS c FROM x", 3),
            (
                "SELECT count(*) AS c FROM events \
                 WHERE project_id IN (SELECT project_id FROM pageviews)",
                3,
            ),
            ("SELECT count(*) AS c FROM events e JOIN pageviews p ON e.event_id = p.event_id", 3),
            (
                "SELECT count(*) AS c FROM events WHERE EXISTS \
                 (SELECT 1 FROM events i WHERE i.project_id = 'b')",
                0,
            ),
            ("SELECT count(DISTINCT project_id) AS c FROM events", 1),
        ];
        for (sql, want) in leaks {
            assert_eq!(server.scalar(&a_query, sql), *want, "[{stage}] {sql}");
        }
        let rows = server.sql(&a_query, "SELECT * FROM events WHERE project_id = 'b'");
        assert!(rows.is_empty(), "[{stage}] a's key sees b's rows: {rows:?}");
        let rows = server.sql(&a_query, "SELECT DISTINCT project_id FROM events");
        assert_eq!(rows, vec![json!({"project_id": "a"})], "[{stage}]");

        // A qualified name must not reach around the confinement: either an
        // error or a's rows only.
        for sql in ["SELECT project_id FROM datafusion.public.events", "SELECT project_id FROM public.events"] {
            let resp = server.sql_request(&a_query, sql, "json");
            let status = resp.status();
            let body = json_body(resp);
            if status == StatusCode::OK {
                let rows = body.as_array().expect("rows");
                assert!(rows.iter().all(|r| r["project_id"] == "a"), "[{stage}] {sql} leaks other projects: {body}");
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "[{stage}] {sql}: {body}");
                assert_error_body(&body, None);
            }
        }
        if stage == "buffered" {
            assert!(server.flush() >= 2, "one file per project at least");
        }
    }

    // Forbidden statements, for a project key and for the admin alike.
    let copy_targets: Vec<(&str, bool)> =
        ["/tmp/x.csv", "/tmp/y.csv"].into_iter().map(|p| (p, std::path::Path::new(p).exists())).collect();
    for token in [a_query.as_str(), server.admin()] {
        for sql in FORBIDDEN_SQL {
            let resp = server.sql_request(token, sql, "json");
            let status = resp.status();
            let text = resp.text().expect("body");
            assert!(!text.contains("root:x:0:0"), "{sql} leaked /etc/passwd: {text:.500}");
            let body: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{sql}: non-JSON {status} ({e}): {text:.500}"));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{sql} must be refused: {body}");
            assert_error_body(&body, None);
        }
    }
    for (path, existed) in &copy_targets {
        assert!(*existed || !std::path::Path::new(path).exists(), "a refused COPY still wrote {path}");
    }
    // Nothing was dropped or replaced.
    assert_eq!(server.count(server.admin(), "events"), 8);

    // Auth.
    assert_status_code(
        server.sql_request(&a_ingest, "SELECT 1", "json"),
        StatusCode::FORBIDDEN,
        ERROR_CODE_FORBIDDEN,
        "ingest key querying",
    );
    let resp = server.ingest(&a_query, &[pageview("a", "https://a.example/q")]);
    assert_status_code(resp, StatusCode::FORBIDDEN, ERROR_CODE_FORBIDDEN, "query key ingesting");
    let resp = server
        .post("/api/v1/sql")
        .json(&json!({"sql": "SELECT 1", "format": "json"}))
        .send()
        .expect("POST /api/v1/sql");
    assert_status_code(resp, StatusCode::UNAUTHORIZED, ERROR_CODE_UNAUTHORIZED, "SQL without a token");
    let resp = server
        .post("/api/v1/events")
        .json(&[pageview("a", "https://a.example/anon")])
        .send()
        .expect("POST /api/v1/events");
    assert_status_code(resp, StatusCode::UNAUTHORIZED, ERROR_CODE_UNAUTHORIZED, "ingest without a token");
    assert_status_code(
        server.sql_request("not-a-real-token", "SELECT 1", "json"),
        StatusCode::UNAUTHORIZED,
        ERROR_CODE_UNAUTHORIZED,
        "SQL with a bogus token",
    );
    let resp = server
        .post("/api/v1/projects")
        .json(&json!({"id": "c", "domain": "c.example", "timezone": "UTC"}))
        .send()
        .expect("POST /api/v1/projects");
    assert_status_code(resp, StatusCode::UNAUTHORIZED, ERROR_CODE_UNAUTHORIZED, "create project without a token");
    for token in [&a_query, &a_ingest] {
        let resp = server
            .post("/api/v1/projects")
            .bearer_auth(token)
            .json(&json!({"id": "c", "domain": "c.example", "timezone": "UTC"}))
            .send()
            .expect("POST /api/v1/projects");
        let status = resp.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
            "a project key must not create projects: {status}"
        );
        let resp = server
            .post("/api/v1/projects/b/keys")
            .bearer_auth(token)
            .json(&json!({"scope": "query"}))
            .send()
            .expect("POST /api/v1/projects/b/keys");
        let status = resp.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
            "a project key must not mint keys: {status}"
        );
        let resp = server.post("/api/v1/admin/flush").bearer_auth(token).send().expect("POST /api/v1/admin/flush");
        let status = resp.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
            "a project key must not flush: {status}"
        );
    }
    // Duplicate project.
    let resp = server
        .post("/api/v1/projects")
        .bearer_auth(server.admin())
        .json(&json!({"id": "a", "domain": "a2.example", "timezone": "UTC"}))
        .send()
        .expect("POST /api/v1/projects");
    let status = resp.status();
    let body = json_body(resp);
    assert_eq!(status, StatusCode::CONFLICT, "duplicate project: {body}");
    assert_error_body(&body, None);
    let list =
        json_body(server.get("/api/v1/projects").bearer_auth(server.admin()).send().expect("GET /api/v1/projects"));
    let mut ids: Vec<&str> = list["projects"]
        .as_array()
        .unwrap_or_else(|| panic!("no projects array: {list}"))
        .iter()
        .filter_map(|p| value_str(&p["id"]))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"], "{list}");

    // a's ingest key smuggling an event into b: that event alone is rejected.
    let batch = vec![
        pageview("a", "https://a.example/ok-1"),
        pageview("b", "https://b.example/smuggled"),
        pageview("a", "https://a.example/ok-2"),
    ];
    let outcome = server.ingest_outcome(&a_ingest, &batch);
    assert_eq!(outcome.accepted, 2, "{outcome:?}");
    assert_eq!(outcome.rejected_indices(), vec![1], "{outcome:?}");
    assert!(!outcome.rejected[0].1.is_empty(), "rejection without a reason");
    assert_eq!(
        server.scalar(server.admin(), "SELECT count(*) AS c FROM events WHERE path = '/smuggled'"),
        0,
        "the event for b sent with a's ingest key was stored"
    );
    assert_eq!(server.count(&b_query, "events"), 5);
    assert_eq!(server.count(&a_query, "events"), 5);
}
