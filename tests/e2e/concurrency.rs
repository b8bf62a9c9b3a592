//! Writers, readers and flushes at once: every query sees a consistent,
//! monotonically growing count bounded by what was acknowledged and sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use footfall_tests::{Server, ServerOpts};
use serde_json::Value;

use crate::pageview;

const WRITERS: usize = 4;
const READERS: usize = 2;
const BATCH: u64 = 50;
const RUN_FOR: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Counters {
    /// Events whose request has been started (acknowledged + in flight).
    sent: AtomicU64,
    /// Events acknowledged with a 200.
    acked: AtomicU64,
    stop: AtomicBool,
}

#[test]
fn concurrent_ingest_and_query() {
    let server = Server::start(ServerOpts::new());
    server.create_project("conc", "example.com");
    let ingest = server.create_key("conc", "ingest");
    let query = server.create_key("conc", "query");
    let counters = Arc::new(Counters::default());

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (api, token, c) = (server.api().clone(), ingest.clone(), counters.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !c.stop.load(Ordering::SeqCst) {
                    let events: Vec<Value> =
                        (0..BATCH).map(|i| pageview("conc", &format!("https://example.com/c/{w}/{}", n + i))).collect();
                    n += BATCH;
                    c.sent.fetch_add(BATCH, Ordering::SeqCst);
                    // 429 (buffer full) is allowed back-pressure: retry.
                    loop {
                        let resp = api.ingest(&token, &events);
                        if resp.status() == 429 {
                            thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                        let status = resp.status();
                        let body = footfall_tests::json_body(resp);
                        assert_eq!(status, 200, "writer {w}: {body}");
                        let outcome = footfall_tests::IngestOutcome::from_body(&body);
                        assert_eq!(outcome.accepted, BATCH, "writer {w}: {outcome:?}");
                        break;
                    }
                    c.acked.fetch_add(BATCH, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (api, token, c) = (server.api().clone(), query.clone(), counters.clone());
            thread::spawn(move || {
                let mut last = 0i64;
                let mut queries = 0u32;
                while !c.stop.load(Ordering::SeqCst) {
                    let floor = c.acked.load(Ordering::SeqCst);
                    // all_pageviews: one synthetic visitor's hundreds of pages a second are, rightly,
                    // a bot by the navigation-speed rule, and `pageviews` hides bots.
                    let table = if queries % 2 == 0 { "events" } else { "all_pageviews" };
                    let got = api.count(&token, table);
                    let ceiling = c.sent.load(Ordering::SeqCst);
                    let got_u = u64::try_from(got).expect("non-negative count");
                    assert!(got >= last, "reader {r}: count went backwards from {last} to {got}");
                    assert!(got_u >= floor, "reader {r}: count {got} < {floor} acknowledged before the query");
                    assert!(
                        got_u <= ceiling,
                        "reader {r}: count {got} > {ceiling} sent (acknowledged + in flight): \
                         double counting?"
                    );
                    last = got;
                    queries += 1;
                }
                queries
            })
        })
        .collect();

    // Flushes racing with everything else: the buffer → file transition must
    // never show a row twice or not at all.
    let flusher = {
        let (api, c) = (server.api().clone(), counters.clone());
        thread::spawn(move || {
            let mut flushes = 0u32;
            while !c.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(400));
                api.flush();
                flushes += 1;
            }
            flushes
        })
    };

    let started = Instant::now();
    while started.elapsed() < RUN_FOR {
        thread::sleep(Duration::from_millis(100));
        if writers.iter().any(thread::JoinHandle::is_finished) || readers.iter().any(thread::JoinHandle::is_finished) {
            break; // a thread died: stop early and report it below
        }
    }
    counters.stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("a writer thread panicked");
    }
    let mut total_queries = 0;
    for r in readers {
        total_queries += r.join().expect("a reader thread panicked");
    }
    let flushes = flusher.join().expect("the flusher thread panicked");

    let acked = counters.acked.load(Ordering::SeqCst);
    assert!(acked > 0, "nothing was acknowledged");
    assert!(total_queries > 0, "no query completed");
    eprintln!("concurrent: {acked} events, {total_queries} queries, {flushes} flushes");
    let final_count = server.count(&query, "events");
    assert_eq!(u64::try_from(final_count).ok(), Some(acked), "final count");
    let distinct = server.scalar(&query, "SELECT count(DISTINCT path) AS c FROM events");
    assert_eq!(u64::try_from(distinct).ok(), Some(acked), "distinct paths");
    server.flush();
    assert_eq!(u64::try_from(server.count(&query, "events")).ok(), Some(acked), "after a final flush");
}
