//! A visit that goes on across a server restart keeps its session.

use footfall_tests::{value_str, Server, ServerOpts, UA_FIREFOX};
use serde_json::json;

fn sessions_by_path(server: &Server, token: &str) -> Vec<(String, String, String)> {
    server
        .sql(token, "SELECT path, visitor_id, session_id FROM events ORDER BY path")
        .iter()
        .map(|row| {
            let field = |k: &str| value_str(&row[k]).unwrap_or_else(|| panic!("no {k} in {row}")).to_string();
            (field("path"), field("visitor_id"), field("session_id"))
        })
        .collect()
}

#[test]
fn a_visit_continues_across_a_restart() {
    let mut server = Server::start(ServerOpts::new());
    server.create_project("visits", "visits.example");
    let query = server.create_key("visits", "query");
    let page =
        |path: &str| json!({"n": "pageview", "u": format!("https://visits.example{path}"), "d": "visits.example"});
    let resp = server.plausible(&page("/1-before"), UA_FIREFOX, None);
    assert_eq!(resp.status(), 202);

    // A deploy: the server stops (flushing) and starts again a moment later.
    server.restart();
    assert!(
        server.log_tail(200).contains("restored open sessions sessions=1"),
        "the open session was not restored:\n{}",
        server.log_tail(40)
    );
    let resp = server.plausible(&page("/2-after"), UA_FIREFOX, None);
    assert_eq!(resp.status(), 202);

    let rows = sessions_by_path(&server, &query);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, rows[1].1, "the visitor changed across the restart: {rows:?}");
    assert_eq!(rows[0].2, rows[1].2, "the session was split by the restart: {rows:?}");
}
