//! Storage on S3 (an S3 emulator such as moto_server, started by
//! `tests/run.sh`, whose URL is in `FOOTFALL_TEST_S3_ENDPOINT`).

use footfall_tests::{random_token, today_utc, Server, ServerOpts};
use serde_json::Value;

use crate::pageview;

/// The `<Key>` values of an S3 ListObjectsV2 XML answer.
fn keys_of(xml: &str) -> Vec<String> {
    xml.split("<Key>").skip(1).filter_map(|rest| rest.split("</Key>").next()).map(str::to_string).collect()
}

#[test]
fn s3_storage() {
    let endpoint = match std::env::var("FOOTFALL_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e.trim_end_matches('/').to_string(),
        _ => {
            if std::env::var("FOOTFALL_SKIP_S3").is_ok_and(|v| v == "1") {
                eprintln!("s3_storage: skipped (FOOTFALL_SKIP_S3=1)");
                return;
            }
            panic!(
                "s3_storage needs an S3 emulator: run the suite with `bash tests/run.sh` \
                 (it starts moto_server and sets FOOTFALL_TEST_S3_ENDPOINT), or set \
                 FOOTFALL_TEST_S3_ENDPOINT yourself, or FOOTFALL_SKIP_S3=1 to skip"
            );
        }
    };
    let bucket = format!("footfall-e2e-{}", &random_token()[..12]);
    let http = reqwest::blocking::Client::new();
    let resp =
        http.put(format!("{endpoint}/{bucket}")).send().unwrap_or_else(|e| panic!("create bucket at {endpoint}: {e}"));
    assert!(resp.status().is_success(), "create bucket {bucket}: {} {:?}", resp.status(), resp.text());

    let opts = ServerOpts::new()
        .storage(format!("s3://{bucket}/footfall"))
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true");
    let mut server = Server::start(opts);
    server.create_project("site1", "example.com");
    let ingest = server.create_key("site1", "ingest");
    let query = server.create_key("site1", "query");

    let events: Vec<Value> = (0..30).map(|i| pageview("site1", &format!("https://example.com/s3/{}", i % 3))).collect();
    server.ingest_ok(&ingest, &events);
    let sql = "SELECT path, count(*) AS c FROM events GROUP BY path ORDER BY path";
    let buffered = server.sql(&query, sql);
    assert_eq!(buffered.len(), 3, "{buffered:?}");
    assert!(server.flush() >= 1, "flush wrote no file to S3");
    assert_eq!(server.sql(&query, sql), buffered, "answers changed across the flush");

    let list = http
        .get(format!("{endpoint}/{bucket}?list-type=2&prefix=footfall/"))
        .send()
        .and_then(|r| r.text())
        .expect("list the bucket");
    let keys = keys_of(&list);
    let today = today_utc();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let parquet: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            parts.len() == 4
                && parts[0] == "footfall"
                && parts[1] == "project=site1"
                && (parts[2] == format!("day={today}") || parts[2] == format!("day={yesterday}"))
                && parts[3].ends_with(".parquet")
        })
        .collect();
    assert!(!parquet.is_empty(), "no footfall/project=site1/day={today}/*.parquet in the bucket; keys: {keys:?}");

    server.restart();
    assert_eq!(server.sql(&query, sql), buffered, "answers changed across the restart");
    assert_eq!(server.count(&query, "events"), 30);

    // Compaction on S3: two flushes of a day that is over merge into one object; the two they
    // replace are deleted once no query reads them.
    let noon = (chrono::Utc::now().timestamp_millis() / 86_400_000 - 3) * 86_400_000 + 12 * 3_600_000;
    let old_day = chrono::DateTime::from_timestamp_millis(noon).expect("valid time").format("%Y-%m-%d").to_string();
    for flush in 0..2 {
        let events: Vec<Value> = (0..10)
            .map(|i| {
                serde_json::json!({"project": "site1", "type": "pageview", "url": "https://example.com/old",
                    "session_id": format!("old{}", i % 4), "timestamp": noon + flush * 1000 + i})
            })
            .collect();
        server.ingest_ok(&ingest, &events);
        assert_eq!(server.flush(), 1);
    }
    let old_objects = || {
        let list = http
            .get(format!("{endpoint}/{bucket}?list-type=2&prefix=footfall/project=site1/day={old_day}/"))
            .send()
            .and_then(|r| r.text())
            .expect("list the bucket");
        keys_of(&list).into_iter().filter(|k| k.ends_with(".parquet")).count()
    };
    assert_eq!(old_objects(), 2);
    let compact = || {
        let resp = server.post("/api/v1/admin/compact").bearer_auth(server.admin()).send().expect("POST compact");
        assert_eq!(resp.status(), 200);
        footfall_tests::json_body(resp)
    };
    assert_eq!(compact()["files_merged"], 2);
    compact();
    assert_eq!(old_objects(), 1);
    assert_eq!(server.count(&query, "events"), 50);
    assert_eq!(server.scalar(&query, "SELECT count(*) FROM events WHERE session_id = 'old1'"), 6);
}
