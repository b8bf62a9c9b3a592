//! The Plausible-compatible endpoint `POST /api/event`: fields, dropping of
//! unknown domains, visitor and session ids, `X-Forwarded-For` handling.

use std::collections::BTreeMap;

use footfall_tests::{value_f64, value_str, Server, ServerOpts, UA_CHROME, UA_FIREFOX};
use serde_json::{json, Value};

fn pv(path: &str) -> Value {
    json!({"n": "pageview", "u": format!("https://example.com{path}"), "d": "example.com"})
}

fn assert_accepted(resp: reqwest::blocking::Response, what: &str) {
    let status = resp.status();
    let dropped = resp.headers().get("x-footfall-dropped").map(|v| v.to_str().unwrap_or("?").to_string());
    let text = resp.text().unwrap_or_default();
    assert_eq!(status, 202, "{what}: body {text}");
    assert!(
        dropped.as_deref().is_none_or(|d| d == "0"),
        "{what}: unexpectedly dropped (x-footfall-dropped: {dropped:?})"
    );
}

/// `path` → row, for rows whose path is unique.
fn rows_by_path(server: &Server, token: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for row in server.sql(
        token,
        "SELECT path, event_type, name, visitor_id, session_id, referrer_domain, props, \
         revenue_amount, revenue_currency FROM events",
    ) {
        let path = value_str(&row["path"]).unwrap_or_else(|| panic!("row without a path: {row}")).to_string();
        let previous = out.insert(path.clone(), row);
        assert!(previous.is_none(), "path {path} stored twice");
    }
    out
}

fn visitor(rows: &BTreeMap<String, Value>, path: &str) -> String {
    let row = rows.get(path).unwrap_or_else(|| panic!("no row for {path}: {rows:#?}"));
    let v = value_str(&row["visitor_id"]).unwrap_or_else(|| panic!("no visitor_id for {path}: {row}"));
    assert!(!v.is_empty(), "empty visitor_id for {path}");
    v.to_string()
}

#[test]
fn plausible_api() {
    let server = Server::start(ServerOpts::new());
    server.create_project("plaus", "example.com");
    let query = server.create_key("plaus", "query");

    // JSON with a referrer.
    let mut a = pv("/a");
    a["r"] = json!("https://news.ycombinator.com/");
    assert_accepted(server.plausible(&a, UA_CHROME, None), "pageview /a");

    // The tracker script sends text/plain.
    let resp = server
        .post("/api/event")
        .header("user-agent", UA_CHROME)
        .header("content-type", "text/plain")
        .body(pv("/b").to_string())
        .send()
        .expect("POST /api/event (text/plain)");
    assert_accepted(resp, "text/plain pageview /b");

    // Same IP, another browser.
    assert_accepted(server.plausible(&pv("/c"), UA_FIREFOX, None), "pageview /c");

    // X-Forwarded-For is not trusted by default: same visitor as /a.
    for (path, ip) in [("/x1", "198.51.100.1"), ("/x2", "198.51.100.2")] {
        assert_accepted(server.plausible(&pv(path), UA_CHROME, Some(ip)), &format!("pageview {path} with XFF"));
    }

    // Custom event with props and revenue.
    let purchase = json!({
        "n": "Purchase",
        "u": "https://example.com/checkout",
        "d": "example.com",
        "p": {"plan": "pro"},
        "$": {"amount": "12.50", "currency": "EUR"},
    });
    assert_accepted(server.plausible(&purchase, UA_CHROME, None), "custom event");

    // Unknown domain: accepted on the wire, dropped.
    let mut unknown = pv("/nope");
    unknown["d"] = json!("unknown.example");
    unknown["u"] = json!("https://unknown.example/nope");
    let resp = server.plausible(&unknown, UA_CHROME, None);
    assert_eq!(resp.status(), 202, "unknown domain");
    assert_eq!(
        resp.headers().get("x-footfall-dropped").and_then(|v| v.to_str().ok()),
        Some("1"),
        "unknown domain must be marked with x-footfall-dropped: 1"
    );

    let rows = rows_by_path(&server, &query);
    let paths: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/checkout", "/x1", "/x2"]);
    assert_eq!(server.count(server.admin(), "events"), 6, "dropped event stored?");
    assert_eq!(server.count(&query, "pageviews"), 5);

    let a = &rows["/a"];
    assert_eq!(value_str(&a["event_type"]), Some("pageview"), "{a}");
    assert_eq!(value_str(&a["referrer_domain"]), Some("news.ycombinator.com"), "{a}");

    let checkout = &rows["/checkout"];
    assert_eq!(value_str(&checkout["name"]), Some("Purchase"), "{checkout}");
    let props: Value = match &checkout["props"] {
        Value::String(s) => serde_json::from_str(s).expect("props is JSON text"),
        other => other.clone(),
    };
    assert_eq!(props, json!({"plan": "pro"}), "{checkout}");
    assert!((value_f64(&checkout["revenue_amount"]) - 12.5).abs() < 1e-9, "revenue_amount: {checkout}");
    assert_eq!(value_str(&checkout["revenue_currency"]), Some("EUR"), "{checkout}");

    // Same IP + UA: same visitor and session.
    assert_eq!(visitor(&rows, "/a"), visitor(&rows, "/b"), "same IP+UA");
    assert_eq!(rows["/a"]["session_id"], rows["/b"]["session_id"], "same IP+UA in quick succession is one session");
    assert!(value_str(&rows["/a"]["session_id"]).is_some_and(|s| !s.is_empty()), "session_id is set");
    // Another UA: another visitor.
    assert_ne!(visitor(&rows, "/a"), visitor(&rows, "/c"), "different UA");
    // Untrusted XFF is ignored.
    assert_eq!(visitor(&rows, "/a"), visitor(&rows, "/x1"), "XFF must be ignored");
    assert_eq!(visitor(&rows, "/a"), visitor(&rows, "/x2"), "XFF must be ignored");
}

#[test]
fn plausible_trusted_proxy() {
    let server = Server::start(ServerOpts::new().trusted_proxies("127.0.0.1/32"));
    server.create_project("proxied", "example.com");

    for (path, ip) in [("/x1", "198.51.100.1"), ("/x2", "198.51.100.2"), ("/x3", "198.51.100.1")] {
        assert_accepted(
            server.plausible(&pv(path), UA_CHROME, Some(ip)),
            &format!("pageview {path} via trusted proxy"),
        );
    }
    let rows = rows_by_path(&server, server.admin());
    assert_ne!(visitor(&rows, "/x1"), visitor(&rows, "/x2"), "two client IPs behind a trusted proxy are two visitors");
    assert_eq!(
        visitor(&rows, "/x1"),
        visitor(&rows, "/x3"),
        "the same client IP behind a trusted proxy is one visitor"
    );
}
