//! Compaction over HTTP: small files of a partition merge into one; every event stays exactly once,
//! queries answer the same before, during and after, and a session lookup still opens one file.

use std::path::Path;

use footfall_tests::{files_under, json_body, value_i64, Server, ServerOpts};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn parquet_files(storage: &Path, project: &str) -> usize {
    files_under(&storage.join(format!("project={project}")))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

fn compact(server: &Server) -> Value {
    let resp = server.post("/api/v1/admin/compact").bearer_auth(server.admin()).send().expect("POST compact");
    let status = resp.status();
    let body = json_body(resp);
    assert_eq!(status, StatusCode::OK, "compact: {body}");
    body
}

#[test]
fn compaction_merges_small_files_keeping_every_event_once() {
    // Background compaction off, so the test decides when it runs.
    let mut server = Server::start(ServerOpts::new().arg("--compaction-interval=0"));
    server.create_project("cmp", "example.com");
    let ingest = server.create_key("cmp", "ingest");
    let query = server.create_key("cmp", "query");

    // Noon three days ago: a day that is over, so its files merge whole.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let noon = (now_ms / 86_400_000 - 3) * 86_400_000 + 12 * 3_600_000;
    for flush in 0..6i64 {
        let events: Vec<Value> = (0..40i64)
            .map(|i| {
                json!({
                    "project": "cmp", "type": "pageview",
                    "url": format!("https://example.com/p/{}", (flush * 40 + i) % 7),
                    "session_id": format!("sess{:02}", i % 12),
                    "timestamp": noon + flush * 60_000 + i,
                })
            })
            .collect();
        server.ingest_ok(&ingest, &events);
        assert_eq!(server.flush(), 1);
    }
    let storage = server.storage_dir();
    assert_eq!(parquet_files(&storage, "cmp"), 6);

    let by_path = "SELECT path, count(*) AS c, count(DISTINCT event_id) AS ids FROM events GROUP BY path ORDER BY path";
    let lookup = "SELECT count(*) AS c FROM events WHERE session_id = 'sess05'";
    let before = server.sql(&query, by_path);
    let (lookup_before, files_before) = server.sql_with_files(&query, lookup);
    assert_eq!(files_before, Some(6), "sess05 has events in every flush");

    // Only the admin may compact.
    let resp = server.post("/api/v1/admin/compact").bearer_auth(&query).send().expect("POST compact");
    assert!(matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{}", resp.status());

    let report = compact(&server);
    assert_eq!(value_i64(&report["merges"]), 1, "{report}");
    assert_eq!(value_i64(&report["files_merged"]), 6, "{report}");
    assert_eq!(value_i64(&report["rows_merged"]), 240, "{report}");
    assert_eq!(server.sql(&query, by_path), before);
    let (lookup_after, files_after) = server.sql_with_files(&query, lookup);
    assert_eq!(lookup_after, lookup_before);
    assert_eq!(files_after, Some(1));

    // The replaced files go once nothing reads them: by the next run at the latest.
    let report = compact(&server);
    assert_eq!(value_i64(&report["merges"]), 0, "{report}");
    assert_eq!(parquet_files(&storage, "cmp"), 1);

    // Restarted, the catalog names the merged file alone.
    server.restart();
    assert_eq!(server.sql(&query, by_path), before);
    assert_eq!(server.count(&query, "events"), 240);
    assert_eq!(parquet_files(&storage, "cmp"), 1);
}
