//! What an attacker with a query key, or with nothing but a socket, can send: statements built
//! to overflow the planner's stack or to allocate gigabytes, and connections that send half a
//! request and wait. Each is refused with a JSON error or dropped, and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use footfall_tests::{assert_error_body, Server, ServerOpts};
use serde_json::{json, Value};

/// Resident memory of a process, in bytes (Linux).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Posts `sql` with the admin token and returns (status, body).
fn post_sql(server: &Server, sql: &str) -> (u16, Value) {
    let resp = server
        .post("/api/v1/sql")
        .bearer_auth(server.admin())
        .json(&json!({ "sql": sql }))
        .timeout(Duration::from_secs(60))
        .send()
        .expect("the server answered");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} with a non-JSON body ({e}): {text:.500}"));
    (status, body)
}

fn assert_refused(server: &Server, sql: &str, naming: &str) {
    let started = Instant::now();
    let (status, body) = post_sql(server, sql);
    assert_eq!(status, 400, "{:.200}: {body}", sql);
    assert_error_body(&body, None);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(naming), "{:.200}: the error does not name {naming}: {message}", sql);
    assert!(started.elapsed() < Duration::from_secs(10), "{:.200}: refused only after {:?}", sql, started.elapsed());
}

#[test]
fn hostile_sql_is_refused_and_the_server_keeps_serving() {
    let server = Server::start(ServerOpts::new().arg("--query-max-result-bytes").arg("64MiB"));
    server.create_project("hsql", "hostile.example");
    let ingest = server.create_key("hsql", "ingest");
    server.ingest_ok(&ingest, &[crate::pageview("hsql", "https://hostile.example/a")]);

    // The statement that aborted the process: thousands of binary operators.
    assert_refused(&server, &format!("SELECT {}", vec!["1"; 100_000].join("+")), "max_expression_depth");
    assert_refused(&server, &format!("SELECT {}", vec!["1"; 30_000].join(" AND ")), "max_expression_depth");
    assert_refused(&server, &format!("SELECT '{}'", "x".repeat(300 << 10)), "max_statement_bytes");
    assert_refused(&server, &format!("SELECT 1 WHERE 1 IN ({})", vec!["1"; 20_000].join(",")), "max_in_list");
    assert_refused(&server, &vec!["SELECT 1"; 1_000].join(" UNION ALL "), "max_set_operations");
    let joins: Vec<String> = (0..100).map(|i| format!("JOIN events e{i} ON true")).collect();
    assert_refused(&server, &format!("SELECT 1 FROM events {}", joins.join(" ")), "max_relations");
    // Memory that escaped the query pool: refused before it is allocated.
    assert_refused(&server, "SELECT length(repeat('x', 2000000000))", "max_function_output_bytes");
    assert_refused(&server, "SELECT repeat('x', 2000000000)", "max_function_output_bytes");
    assert_refused(
        &server,
        "WITH a AS (SELECT repeat('x', 60000000) AS s) SELECT length(s || s || s) FROM a",
        "max_function_output_bytes",
    );
    assert_refused(&server, "SELECT cardinality(range(1, 10000000000))", "max_function_output_bytes");
    // Deep nesting the parser itself refuses.
    let parens = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let (status, body) = post_sql(&server, &parens);
    assert_eq!(status, 400, "{body}");

    // A few at once: none is allowed to allocate, so memory stays flat.
    let pid = server.pid().expect("running");
    let before = rss_bytes(pid);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let api = server.api().clone();
            thread::spawn(move || {
                let resp = api
                    .post("/api/v1/sql")
                    .bearer_auth(api.admin())
                    .json(&json!({"sql": "SELECT length(repeat(repeat('x', 1000), 2000000))"}))
                    .send()
                    .expect("answered");
                resp.status().as_u16()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 400);
    }
    let after = rss_bytes(pid);
    assert!(after < before + (512 << 20), "RSS grew from {before} to {after} bytes");

    // A result too large to hold is refused by size, not only by rows (the server's limit is
    // 64 MiB here; this is 100 MB of text in 1,000 rows).
    let (status, body) = post_sql(&server, "SELECT repeat('x', 100000) AS s FROM generate_series(1, 1000)");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("max_result_bytes"), "{body}");

    // Still serving, with the same answers as before.
    server.assert_healthy();
    assert_eq!(server.scalar(server.admin(), "SELECT count(*) FROM events"), 1);
}

/// Opens a connection and sends only part of a request line.
fn half_request(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(b"POST /api/event HTTP/1.1\r\nHost: x\r\n").expect("write");
    stream
}

fn beacon(server: &Server, n: usize) -> Duration {
    let started = Instant::now();
    let body = json!({"n": "pageview", "u": format!("https://slow.example/b{n}"), "d": "slow.example"});
    let resp = server.plausible(&body, footfall_tests::UA_CHROME, None);
    assert_eq!(resp.status(), 202, "beacon {n}");
    started.elapsed()
}

#[test]
fn slow_and_idle_clients_do_not_hold_the_server() {
    let server = Server::start(
        ServerOpts::new()
            .arg("--header-timeout")
            .arg("3")
            .arg("--body-timeout")
            .arg("3")
            .arg("--max-connections")
            .arg("400"),
    );
    server.create_project("slow", "slow.example");
    let addr = server.base_url().trim_start_matches("http://").to_string();

    // 300 slow-loris connections: beacons are still answered, and promptly.
    let mut loris: Vec<TcpStream> = (0..300).map(|_| half_request(&addr)).collect();
    let slowest = (0..50).map(|n| beacon(&server, n)).max().expect("beacons");
    assert!(slowest < Duration::from_secs(2), "a beacon took {slowest:?} beside 300 slow connections");

    // Over the cap, a connection gets a clear refusal instead of a hang.
    loris.extend((0..99).map(|_| half_request(&addr)));
    let mut refused = TcpStream::connect(&addr).expect("connect");
    refused.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "over the cap: {answer:?}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");

    // The half requests are dropped after the header timeout; the slots come back.
    let started = Instant::now();
    for stream in &mut loris {
        stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let mut buf = [0u8; 256];
        // Closed by the server: EOF, a reset, or hyper's 408 before closing.
        match stream.read(&mut buf) {
            Ok(_) | Err(_) => {}
        }
    }
    assert!(started.elapsed() < Duration::from_secs(15), "half requests held for {:?}", started.elapsed());
    drop(loris);
    thread::sleep(Duration::from_millis(200));
    let slowest = (50..60).map(|n| beacon(&server, n)).max().expect("beacons");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");

    // A body that trickles in slower than the body timeout is answered 408, as JSON.
    let mut slow_body = TcpStream::connect(&addr).expect("connect");
    slow_body
        .write_all(
            b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .expect("write");
    slow_body.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let started = Instant::now();
    let mut response = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let _ = slow_body.write_all(b" ");
        let mut buf = [0u8; 1024];
        match slow_body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "trickled body: {response:?}");
    assert!(response.contains("body_timeout"), "{response}");

    // A client that asks for a large answer and stops reading is cut off after the body timeout,
    // instead of parking the response in the server.
    let query = r#"{"sql": "SELECT repeat('x', 1000) AS s FROM generate_series(1, 60000)"}"#;
    let mut reader = TcpStream::connect(&addr).expect("connect");
    let head = format!(
        "POST /api/v1/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{query}",
        server.admin(),
        query.len()
    );
    reader.write_all(head.as_bytes()).expect("write");
    thread::sleep(Duration::from_secs(8));
    reader.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        received += n;
    }
    assert!(received < 60_000 * 1000, "the whole answer ({received} bytes) waited for a client that did not read");

    // An idle keep-alive connection is closed after the header timeout too.
    let mut idle = TcpStream::connect(&addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    idle.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let started = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&all));
    let held = started.elapsed();
    assert!(held >= Duration::from_secs(2) && held < Duration::from_secs(12), "idle connection held {held:?}");
    server.assert_healthy();
}
