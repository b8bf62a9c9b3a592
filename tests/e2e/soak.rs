//! A soak: beacons, server batches and queries at once for a while, against a server with small
//! memory limits. No 5xx, memory bounded by the configured limits, and afterwards every
//! acknowledged event is stored exactly once.
//!
//! `FOOTFALL_SOAK_SECS` sets the length (CI: 40 s; e.g. 600 for a long run). The figures are
//! printed (`cargo test -p footfall-tests --test e2e soak -- --nocapture`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use footfall_tests::{Api, Server, ServerOpts, UA_CHROME};
use serde_json::{json, Value};

use crate::hostile::rss_bytes;

#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    requests: AtomicU64,
    throttled: AtomicU64,
    queries: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < 20 {
            failures.push(what);
        }
    }
}

fn beacons(api: Api, t: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = json!({"n": "pageview", "u": format!("https://soak.example/b{t}/{n}"), "d": "soak.example"});
        tally.requests.fetch_add(1, Ordering::Relaxed);
        match api.post("/api/event").header("user-agent", UA_CHROME).body(body.to_string()).send() {
            Ok(resp) if resp.status() == 202 => {
                tally.acked.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok(resp) if resp.status() == 429 => {
                tally.throttled.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
            Ok(resp) => tally.fail(format!("beacon: {} {}", resp.status(), resp.text().unwrap_or_default())),
            Err(e) => tally.fail(format!("beacon: {e}")),
        }
    }
}

fn batches(api: Api, token: String, t: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let events: Vec<Value> =
            (0..200).map(|i| crate::pageview("soak", &format!("https://soak.example/n{t}/{n}/{i}"))).collect();
        tally.requests.fetch_add(1, Ordering::Relaxed);
        match api.try_ingest(&token, &events) {
            Ok(resp) if resp.status() == 200 => {
                let body: Value = resp.json().unwrap_or_default();
                let accepted = body["accepted"].as_u64().unwrap_or(0);
                if accepted != 200 {
                    tally.fail(format!("batch accepted {accepted} of 200: {body}"));
                }
                tally.acked.fetch_add(accepted, Ordering::Relaxed);
                n += 1;
            }
            Ok(resp) if resp.status() == 429 => {
                tally.throttled.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
            Ok(resp) => tally.fail(format!("batch: {} {}", resp.status(), resp.text().unwrap_or_default())),
            Err(e) => tally.fail(format!("batch: {e}")),
        }
    }
}

fn queries(api: Api, token: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let statements = [
        "SELECT path, count(*) FROM pageviews GROUP BY path ORDER BY 2 DESC LIMIT 10",
        "SELECT count(DISTINCT visitor_id) FROM events",
        "SELECT count(*) FROM sessions",
        "SELECT * FROM pageviews ORDER BY added_iso DESC LIMIT 50",
        "SELECT date_trunc('minute', added_iso) AS m, count(*) FROM events GROUP BY 1 ORDER BY 1",
        // Refused ones mixed in: they must stay 4xx under load.
        "SELECT length(repeat('x', 2000000000))",
    ];
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let sql = statements[i % statements.len()];
        i += 1;
        match api.sql_request(&token, sql, "json").status().as_u16() {
            200 | 400 => {
                tally.queries.fetch_add(1, Ordering::Relaxed);
            }
            429 => thread::sleep(Duration::from_millis(50)),
            other => tally.fail(format!("query {sql}: {other}")),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn soak_mixed_traffic() {
    let secs: u64 = std::env::var("FOOTFALL_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let server = Server::start(
        ServerOpts::new()
            .flush_age(2)
            .arg("--compaction-interval")
            .arg(std::env::var("FOOTFALL_SOAK_COMPACTION_INTERVAL").unwrap_or_else(|_| "5".into()))
            .arg("--memory-limit")
            .arg("128MiB")
            .arg("--query-memory-limit")
            .arg("512MiB")
            .arg("--query-metadata-cache")
            .arg("64MiB"),
    );
    server.create_project("soak", "soak.example");
    let ingest = server.create_key("soak", "ingest");
    let query = server.create_key("soak", "query");
    let pid = server.pid().expect("running");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    for t in 0..3 {
        let (api, stop, tally) = (server.api().clone(), stop.clone(), tally.clone());
        workers.push(thread::spawn(move || beacons(api, t, stop, tally)));
    }
    for t in 0..2 {
        let (api, token, stop, tally) = (server.api().clone(), ingest.clone(), stop.clone(), tally.clone());
        workers.push(thread::spawn(move || batches(api, token, t, stop, tally)));
    }
    {
        let (api, token, stop, tally) = (server.api().clone(), query.clone(), stop.clone(), tally.clone());
        workers.push(thread::spawn(move || queries(api, token, stop, tally)));
    }

    let started = Instant::now();
    let (mut peak, mut samples, mut sum) = (0u64, 0u64, 0u64);
    while started.elapsed() < Duration::from_secs(secs) {
        let rss = rss_bytes(pid);
        peak = peak.max(rss);
        samples += 1;
        sum += rss;
        thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let elapsed = started.elapsed();

    let failures = tally.failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(failures.is_empty(), "failures under load: {failures:#?}");

    server.flush();
    let acked = tally.acked.load(Ordering::Relaxed) as i64;
    let stored = server.scalar(&query, "SELECT count(*) FROM events");
    let distinct = server.scalar(&query, "SELECT count(DISTINCT path) FROM events");
    eprintln!(
        "soak: {:.0} s, {} requests ({} throttled with 429), {} events acknowledged, {} queries; \
         RSS peak {} MiB, mean {} MiB; stored {} (distinct {})",
        elapsed.as_secs_f64(),
        tally.requests.load(Ordering::Relaxed),
        tally.throttled.load(Ordering::Relaxed),
        acked,
        tally.queries.load(Ordering::Relaxed),
        peak >> 20,
        (sum / samples.max(1)) >> 20,
        stored,
        distinct,
    );
    assert_eq!(stored, acked, "stored events differ from acknowledged ones");
    assert_eq!(distinct, acked, "some acknowledged event is stored twice");
    // The buffer is capped at 128 MiB, queries at 512 MiB and the footer cache at 64 MiB; with
    // enrichment data, the WAL's buffers and allocator slack the process stays under 1.5 GiB.
    assert!(peak < 1536 << 20, "RSS peaked at {} MiB", peak >> 20);
}
