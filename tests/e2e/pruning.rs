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
