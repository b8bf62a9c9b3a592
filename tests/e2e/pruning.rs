//! Point lookups by `session_id` read only the files that can hold it.

use footfall_tests::{Server, ServerOpts};
use serde_json::{json, Value};

use crate::pageview;

const SESSIONS: u32 = 20;

fn events_in(session: u32) -> u32 {
    session % 3 + 1
}

#[test]
fn session_lookup_prunes_files() {
    let server = Server::start(ServerOpts::new());
    server.create_project("prune", "example.com");
    let ingest = server.create_key("prune", "ingest");
    let query = server.create_key("prune", "query");

    // One flush per session, so that each session lands in a file of its own.
    for s in 1..=SESSIONS {
        let events: Vec<Value> = (0..events_in(s))
            .map(|i| {
                let mut e = pageview("prune", &format!("https://example.com/s/{s}/{i}"));
                e["session_id"] = json!(format!("s-{s}"));
                e
            })
            .collect();
        server.ingest_ok(&ingest, &events);
        let written = server.flush();
        assert!(written >= 1, "flush after session s-{s} wrote no file");
    }

    let lookup = |sql: &str| -> (i64, u64) {
        let (rows, files) = server.sql_with_files(&query, sql);
        assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
        let c = footfall_tests::value_i64(&rows[0]["c"]);
        let files = files.unwrap_or_else(|| panic!("{sql}: no x-footfall-files-scanned header"));
        (c, files)
    };

    let total: u32 = (1..=SESSIONS).map(events_in).sum();
    let (count, files) = lookup("SELECT count(*) AS c FROM events");
    assert_eq!(count, i64::from(total));
    assert!(
        files >= u64::from(SESSIONS),
        "a full scan read {files} files, expected at least {SESSIONS} (one per flush)"
    );

    let (count, files) = lookup("SELECT count(*) AS c FROM events WHERE session_id = 's-7'");
    assert_eq!(count, i64::from(events_in(7)), "s-7");
    assert_eq!(files, 1, "session_id = 's-7' should read exactly one file");

    let (count, files) = lookup("SELECT count(*) AS c FROM events WHERE session_id IN ('s-3', 's-9')");
    assert_eq!(count, i64::from(events_in(3) + events_in(9)), "s-3 + s-9");
    assert_eq!(files, 2, "session_id IN ('s-3','s-9') should read exactly two files");

    // Longer lists stay an IN list through DataFusion's simplifier (short
    // ones become an OR of equalities): both shapes must prune.
    let (count, files) =
        lookup("SELECT count(*) AS c FROM events WHERE session_id IN ('s-1', 's-2', 's-4', 's-5', 's-6')");
    assert_eq!(count, i64::from([1, 2, 4, 5, 6].into_iter().map(events_in).sum::<u32>()), "five sessions");
    assert_eq!(files, 5, "a five-session IN list should read exactly five files");

    let (count, files) = lookup("SELECT count(*) AS c FROM events WHERE session_id = 's-99'");
    assert_eq!(count, 0, "s-99");
    assert_eq!(files, 0, "a session in no file should read no file");
}

/// A time filter on `pageviews` computes only the sessions with a page view in range, whole: a
/// session that began the day before still shows its first page elsewhere and its length.
#[test]
fn time_filters_on_pageviews_compute_whole_sessions_in_range() {
    const DAY_MS: i64 = 86_400_000;
    let server = Server::start(ServerOpts::new());
    server.create_project("days", "example.com");
    let ingest = server.create_key("days", "ingest");
    let query = server.create_key("days", "query");

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock after 1970");
    let first_day = now_ms - now_ms % DAY_MS - 5 * DAY_MS;
    let page = |ts: i64, session: &str, path: &str| {
        let mut e = pageview("days", &format!("https://example.com{path}"));
        e["session_id"] = json!(session);
        e["timestamp"] = json!(ts);
        e["page_id"] = json!(format!("{session}{}", path.replace('/', "_")));
        e
    };
    for day in 0..5 {
        let start = first_day + day * DAY_MS;
        let mut events: Vec<Value> = (0..3)
            .flat_map(|s| (0..=s).map(move |p| (s, p)))
            .map(|(s, p)| {
                page(start + 10 * 3_600_000 + s * 600_000 + p * 60_000, &format!("d{day}s{s}"), &format!("/p{p}"))
            })
            .collect();
        if day == 4 {
            // A report on the first page of the fourth day, a day late and in a session of its own.
            let mut late = page(start + 9 * 3_600_000, "late", "/p0");
            late["type"] = json!("engagement");
            late["page_id"] = json!("d3s0_p0");
            late["time_on_page_ms"] = json!(90_000);
            events.push(late);
        }
        if day == 2 {
            // 23:58, 23:59 and, on the next day, 00:01.
            for (i, at) in [-120_000, -60_000, 60_000].into_iter().enumerate() {
                events.push(page(start + DAY_MS + at, "night", &format!("/n{i}")));
            }
        }
        server.ingest_ok(&ingest, &events);
        server.flush();
    }

    let day3 = |offset: i64| {
        format!("arrow_cast({}, 'Timestamp(Millisecond, Some(\"UTC\"))')", first_day + (3 + offset) * DAY_MS)
    };
    let columns = "session_id, path, entry_page, exit_page, pages_in_session, time_on_page_ms, session_duration_ms";
    let scoped = format!(
        "SELECT {columns} FROM pageviews WHERE added_iso >= {} AND added_iso < {} ORDER BY session_id, added_iso",
        day3(0),
        day3(1)
    );
    // The same comparison on the time as text, which the scoping does not recognise.
    let text = |offset: i64| {
        let secs = (first_day + (3 + offset) * DAY_MS) / 1000;
        format!("to_char(arrow_cast({secs}, 'Timestamp(Second, Some(\"UTC\"))'), '%Y-%m-%dT%H:%M:%S')")
    };
    let whole = format!(
        "SELECT {columns} FROM pageviews WHERE to_char(added_iso, '%Y-%m-%dT%H:%M:%S') >= {} \
         AND to_char(added_iso, '%Y-%m-%dT%H:%M:%S') < {} ORDER BY session_id, added_iso",
        text(0),
        text(1)
    );
    let (rows, scoped_files) = server.sql_with_files(&query, &scoped);
    let (whole_rows, whole_files) = server.sql_with_files(&query, &whole);
    assert_eq!(rows, whole_rows);
    assert_eq!(rows.len(), 7, "six pages of the day's sessions and the night's last: {rows:?}");
    let night = rows.iter().find(|r| r["session_id"] == "night").expect("the night session's last page");
    assert_eq!(night["path"], "/n2");
    assert_eq!(night["entry_page"], false);
    assert_eq!(night["exit_page"], true);
    assert_eq!(night["pages_in_session"], 3);
    assert_eq!(night["session_duration_ms"], 180_000);

    let first = rows.iter().find(|r| r["session_id"] == "d3s0").expect("the day's first page");
    assert_eq!(first["time_on_page_ms"], 90_000, "reported the next day");

    // The day's sessions are listed and looked up in the session index: the page views' scan
    // opens the two files that hold them, and the page metrics' scans the one that holds a
    // report of their pages.
    let (scoped_files, whole_files) = (scoped_files.expect("files scanned"), whole_files.expect("files scanned"));
    assert!(scoped_files < whole_files, "{scoped_files} files scanned, {whole_files} without the scoping");

    // The latest page views with no time filter: a recent range that holds enough is computed;
    // the reference sorts on an expression of the time, which leaves the view whole.
    let latest = format!("SELECT {columns} FROM pageviews ORDER BY added_iso DESC, session_id LIMIT 4");
    let reference =
        format!("SELECT {columns} FROM pageviews ORDER BY CAST(added_iso AS BIGINT) DESC, session_id LIMIT 4");
    let (rows, _) = server.sql_with_files(&query, &latest);
    assert_eq!(rows, server.sql_with_files(&query, &reference).0);
    let pages: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["session_id"].as_str().unwrap_or(""), r["path"].as_str().unwrap_or(""))).collect();
    assert_eq!(pages, [("d4s2", "/p2"), ("d4s2", "/p1"), ("d4s2", "/p0"), ("d4s1", "/p1")]);
    assert_eq!(rows[0]["exit_page"], true);
    assert_eq!(rows[2]["entry_page"], true);
    assert_eq!(rows[2]["pages_in_session"], 3);
}
