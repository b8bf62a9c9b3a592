//! Raw IP addresses and User-Agent strings never reach disk nor a query.

use footfall_tests::{files_containing, files_under, Server, ServerOpts};
use serde_json::json;

const SECRET_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) SecretUA/123";
const SECRET_IP: &str = "203.0.113.77";

fn assert_no_leak(server: &Server, stage: &str) {
    let files = files_under(server.data_dir());
    assert!(!files.is_empty(), "[{stage}] the data dir is empty");
    for needle in ["SecretUA/123", SECRET_IP] {
        let hits = files_containing(server.data_dir(), needle.as_bytes());
        assert!(hits.is_empty(), "[{stage}] {needle:?} is stored in {hits:?} (files scanned: {files:?})");
        let log = std::fs::read(server.log_path()).unwrap_or_default();
        assert!(
            !log.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "[{stage}] {needle:?} appears in the server log {}",
            server.log_path().display()
        );
    }
    // Compressed files could hide bytes from the scan: ask the data too.
    let rows = server.sql(server.admin(), "SELECT * FROM events");
    assert!(!rows.is_empty(), "[{stage}] no rows stored");
    let text = serde_json::to_string(&rows).expect("rows to JSON");
    assert!(
        !text.contains("SecretUA") && !text.contains(SECRET_IP),
        "[{stage}] a raw UA or IP is queryable: {text:.2000}"
    );
}

#[test]
fn privacy_no_raw_ip_or_user_agent_stored() {
    let mut server = Server::start(ServerOpts::new().trusted_proxies("127.0.0.1/32"));
    server.create_project("priv", "example.com");
    let ingest = server.create_key("priv", "ingest");

    let send_both = |server: &Server, n: u32| {
        let body = json!({"n": "pageview", "u": format!("https://example.com/p{n}"), "d": "example.com"});
        let resp = server.plausible(&body, SECRET_UA, Some(SECRET_IP));
        assert_eq!(resp.status(), 202, "plausible pageview");
        let resp = server
            .post("/api/v1/events")
            .bearer_auth(&ingest)
            .header("user-agent", SECRET_UA)
            .header("x-forwarded-for", SECRET_IP)
            .json(&json!([{"project": "priv", "type": "pageview",
                           "url": format!("https://example.com/n{n}")}]))
            .send()
            .expect("POST /api/v1/events");
        assert_eq!(resp.status(), 200, "native pageview");
    };

    // One round that gets flushed to parquet, one that stays in the WAL.
    send_both(&server, 1);
    assert!(server.flush() >= 1, "flush wrote no file");
    send_both(&server, 2);
    assert_eq!(server.count(server.admin(), "events"), 4);
    assert_no_leak(&server, "WAL + parquet");

    server.stop();
    assert_no_leak_offline(&server);
    server.restart();
    assert_no_leak(&server, "after restart");
}

fn assert_no_leak_offline(server: &Server) {
    for needle in ["SecretUA/123", SECRET_IP] {
        let hits = files_containing(server.data_dir(), needle.as_bytes());
        assert!(hits.is_empty(), "[after shutdown] {needle:?} is stored in {hits:?}");
    }
}
