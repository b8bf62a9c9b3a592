//! The brief's event model over HTTP: a tracker beacon (a JSON array of every event type) to
//! `POST /api/event`, server-side enrichment, and the brief's tables read back through SQL.

use footfall_tests::{value_i64, value_str, Server, ServerOpts, UA_CHROME};
use serde_json::{json, Value};

const UA_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const UA_GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn beacon(server: &Server, ua: &str, body: &Value) -> Value {
    let resp = server
        .post("/api/event")
        .header("user-agent", ua)
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .expect("POST /api/event");
    assert_eq!(resp.status(), 202);
    resp.json().expect("JSON answer")
}

fn one_row(server: &Server, token: &str, sql: &str) -> Value {
    let rows = server.sql(token, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.into_iter().next().unwrap_or_default()
}

#[test]
fn every_event_type_reaches_the_brief_tables() {
    let server = Server::start(ServerOpts::new());
    server.create_project("shop", "shop.example");
    let query = server.create_key("shop", "query");
    let d = "shop.example";

    let first = json!([
        {"n": "pageview", "u": "https://shop.example/pricing?utm_source=news&utm_medium=email&gclid=abc123&token=s3cret",
         "d": d, "r": "https://www.google.de/", "title": "Pricing – contact jane@example.com", "page_id": "pg1",
         "screen_width": 1920, "screen_height": 1080, "viewport_width": 1200, "viewport_height": 800,
         "language": "de-DE", "timezone": "Europe/Berlin", "dimensions": {"cd_plan": "pro"}},
        {"type": "vitals", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1",
         "largest_contentful_paint_ms": 1830.4, "cumulative_layout_shift": 0.0712, "interaction_to_next_paint_ms": 96,
         "time_to_first_byte_ms": 210, "first_contentful_paint_ms": 950, "resource_count": 31, "transfer_size_bytes": 512000},
        {"type": "experiment", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1",
         "experiment_id": "pricing-table", "variant_id": "B"},
        {"type": "interaction", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1",
         "interaction_type": "click", "element_selector": "#buy", "element_text": "Buy now", "element_position": {"x": 40.2, "y": 300}},
        {"type": "error", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1", "error_type": "javascript",
         "error_message": "Cannot read properties of undefined (reading 'id')", "error_stack": "TypeError: ...\n at app.js:10:5",
         "source_file": "https://shop.example/app.js?v=3", "line_number": 10, "column_number": 5},
        {"type": "form", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1", "form_event": "start", "form_id": "checkout"},
        {"type": "form", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1", "form_event": "submit", "form_id": "checkout",
         "fields_total": 4, "fields_interacted": 3, "fields_completed": 3, "time_to_first_field_ms": 1500, "time_to_submit_ms": 20000,
         "field_interactions": [{"field_name": "email", "time_spent_ms": 3000, "changes_count": 14}]},
        {"n": "Purchase", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1", "p": {"plan": "pro"},
         "$": {"amount": "49.90", "currency": "EUR"}},
        {"type": "engagement", "d": d, "u": "https://shop.example/pricing", "page_id": "pg1", "time_on_page_ms": 42000,
         "active_time_ms": 30000, "idle_time_ms": 12000, "scroll_percentage": 75, "click_count": 3, "rage_clicks": 0, "copy_events": 1},
        {"type": "teleport", "d": d}
    ]);
    let answer = beacon(&server, UA_CHROME, &first);
    assert_eq!(answer["accepted"], 9, "{answer}");
    assert_eq!(answer["rejected"][0]["index"], 9, "{answer}");

    let second = json!([
        {"n": "pageview", "u": "https://shop.example/search?q=Red+Shoes", "d": d, "page_id": "pg2", "screen_width": 390},
        {"type": "search", "d": d, "u": "https://shop.example/search?q=Red+Shoes", "page_id": "pg2",
         "search_query": "Red  Shoes", "results_count": 12, "search_location": "header"},
        {"type": "search_click", "d": d, "u": "https://shop.example/search?q=Red+Shoes", "page_id": "pg2",
         "search_query": "red shoes", "clicked_position": 2, "clicked_url": "https://shop.example/p/42"}
    ]);
    assert_eq!(beacon(&server, UA_IPHONE, &second)["accepted"], 3);
    let crawl = json!({"n": "pageview", "u": "https://shop.example/", "d": d});
    let resp =
        server.post("/api/event").header("user-agent", UA_GOOGLEBOT).body(crawl.to_string()).send().expect("post");
    assert_eq!(resp.status(), 202);

    // Half flushed, half buffered would be the same: views read both.
    server.flush();

    let pv = one_row(
        &server,
        &query,
        "SELECT page_id, path, query_string, page_title, utm_source, utm_medium, referrer_domain, referrer_category, \
         browser_name, os_name, device_type, screen_width, viewport_height, language, timezone, custom_dimensions, \
         largest_contentful_paint_ms, CAST(cumulative_layout_shift AS VARCHAR) AS cls, time_on_page_ms, active_time_ms, \
         scroll_percentage, click_count, copy_events, had_errors, error_count, experiment_ids, variant_ids, \
         entry_page, exit_page, pages_in_session, is_bot FROM pageviews WHERE page_id = 'pg1'",
    );
    assert_eq!(value_str(&pv["path"]), Some("/pricing"));
    let qs = value_str(&pv["query_string"]).unwrap_or_default();
    assert!(qs.contains("utm_source=news"), "{qs}");
    assert!(!qs.contains("s3cret") && !qs.contains("abc123"), "secrets and click ids are not stored: {qs}");
    let title = value_str(&pv["page_title"]).unwrap_or_default();
    assert!(!title.contains("jane@example.com"), "e-mail addresses are scrubbed: {title}");
    assert_eq!(value_str(&pv["utm_source"]), Some("news"));
    assert_eq!(value_str(&pv["referrer_domain"]), Some("google.de"));
    assert_eq!(value_str(&pv["browser_name"]), Some("Chrome"));
    assert_eq!(value_str(&pv["device_type"]), Some("desktop"));
    assert_eq!(value_i64(&pv["screen_width"]), 1920);
    assert_eq!(value_i64(&pv["viewport_height"]), 800);
    assert_eq!(value_str(&pv["language"]), Some("de-DE"));
    assert_eq!(value_str(&pv["timezone"]), Some("Europe/Berlin"));
    assert_eq!(value_str(&pv["custom_dimensions"]), Some(r#"{"cd_plan":"pro"}"#));
    assert_eq!(value_i64(&pv["largest_contentful_paint_ms"]), 1830);
    assert_eq!(value_str(&pv["cls"]), Some("0.0712"));
    assert_eq!(value_i64(&pv["time_on_page_ms"]), 42000);
    assert_eq!(value_i64(&pv["active_time_ms"]), 30000);
    assert_eq!(value_i64(&pv["scroll_percentage"]), 75);
    assert_eq!(value_i64(&pv["copy_events"]), 1);
    assert_eq!(pv["had_errors"], json!(true));
    assert_eq!(value_i64(&pv["error_count"]), 1);
    assert_eq!(pv["experiment_ids"], json!(["pricing-table"]));
    assert_eq!(pv["variant_ids"], json!(["B"]));
    assert_eq!(pv["is_bot"], json!(false));

    // CSV has no lists: the whole view still exports, each list as its JSON text.
    let resp = server.sql_request(&query, "SELECT * FROM pageviews WHERE page_id = 'pg1'", "csv");
    let status = resp.status();
    let csv = resp.text().expect("csv body");
    assert_eq!(status, reqwest::StatusCode::OK, "{csv}");
    assert!(csv.lines().next().unwrap_or_default().split(',').any(|c| c == "experiment_ids"), "{csv}");
    let row = csv.lines().nth(1).unwrap_or_default();
    assert!(row.contains(r#""[""pricing-table""]""#), "experiment_ids as JSON text: {row}");

    let mobile =
        one_row(&server, &query, "SELECT browser_name, os_name, device_type FROM pageviews WHERE page_id = 'pg2'");
    assert_eq!(value_str(&mobile["device_type"]), Some("mobile"));
    assert_eq!(value_str(&mobile["os_name"]), Some("iOS"));

    let bot = one_row(&server, &query, "SELECT is_bot, bot_type FROM all_pageviews WHERE is_bot");
    assert_eq!(value_str(&bot["bot_type"]), Some("crawler"));
    assert_eq!(server.scalar(&query, "SELECT count(*) FROM pageviews"), 2);

    let err =
        one_row(&server, &query, "SELECT id, error_message, line_number, occurrence_count, browser_name FROM errors");
    assert_eq!(value_str(&err["id"]).map(str::len), Some(16));
    assert_eq!(value_i64(&err["occurrence_count"]), 1);

    let form = one_row(
        &server,
        &query,
        "SELECT status, fields_total, time_to_submit_ms, field_interactions FROM form_interactions",
    );
    assert_eq!(value_str(&form["status"]), Some("submitted"));
    assert_eq!(value_i64(&form["fields_total"]), 4);

    let search =
        one_row(&server, &query, "SELECT normalized_query, clicked_result, clicked_position FROM site_searches");
    assert_eq!(value_str(&search["normalized_query"]), Some("red shoes"));
    assert_eq!(search["clicked_result"], json!(true));
    assert_eq!(value_i64(&search["clicked_position"]), 2);

    let custom = one_row(
        &server,
        &query,
        "SELECT name, event_metadata, CAST(revenue_amount AS VARCHAR) AS revenue FROM custom_events",
    );
    assert_eq!(value_str(&custom["name"]), Some("Purchase"));
    assert_eq!(value_str(&custom["revenue"]), Some("49.9000"));

    let click = one_row(&server, &query, "SELECT element_selector, element_text, element_position FROM interactions");
    assert_eq!(value_str(&click["element_position"]), Some(r#"{"x":40,"y":300}"#));
    assert_eq!(server.scalar(&query, "SELECT count(*) FROM experiment_assignments"), 1);
    assert_eq!(server.scalar(&query, "SELECT count(*) FROM user_paths"), 2);
    assert_eq!(server.scalar(&query, "SELECT count(*) FROM sessions"), 2);
}

#[test]
fn native_batches_take_an_ip_for_geo_and_never_store_it() {
    let server = Server::start(ServerOpts::new());
    server.create_project("geo", "geo.example");
    let ingest = server.create_key("geo", "ingest");
    let query = server.create_key("geo", "query");
    server.ingest_ok(
        &ingest,
        &[json!({"project": "geo", "url": "https://geo.example/", "ip": "8.8.8.8", "user_agent": UA_CHROME})],
    );
    let row = one_row(&server, &query, "SELECT country_code, browser_name FROM events");
    assert_eq!(value_str(&row["country_code"]), Some("US"));
    assert_eq!(value_str(&row["browser_name"]), Some("Chrome"));
    // Without them, the sending server's own address and user-agent are not its visitors'.
    server.ingest_ok(&ingest, &[json!({"project": "geo", "url": "https://geo.example/b"})]);
    let row =
        one_row(&server, &query, "SELECT country_code, browser_name, is_bot FROM all_pageviews WHERE path = '/b'");
    assert_eq!((value_str(&row["country_code"]), value_str(&row["browser_name"])), (None, None));
    assert_eq!(row["is_bot"], json!(false));
}

#[test]
fn the_tracker_is_served_with_caching_headers() {
    let server = Server::start(ServerOpts::new());
    for file in ["footfall.js", "footfall.vitals.js", "footfall.forms.js"] {
        let resp = server.get(&format!("/js/{file}")).send().expect("GET script");
        assert_eq!(resp.status(), 200, "{file}");
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string).expect("ETag");
        assert!(resp.headers()["content-type"].to_str().unwrap_or("").starts_with("text/javascript"));
        assert!(resp.headers()["cache-control"].to_str().unwrap_or("").contains("max-age"));
        assert!(!resp.bytes().expect("body").is_empty());
        let again = server.get(&format!("/js/{file}")).header("if-none-match", &etag).send().expect("GET again");
        assert_eq!(again.status(), 304);
    }
    let missing = server.get("/js/evil.js").send().expect("GET");
    assert_eq!(missing.status(), 404);
    // CORS preflight for the tracker endpoint.
    let preflight = server
        .client()
        .request(reqwest::Method::OPTIONS, server.url("/api/event"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .expect("OPTIONS");
    assert!(preflight.status().is_success(), "preflight answered {}", preflight.status());
    assert!(preflight.headers().contains_key("access-control-allow-origin"));
}
