//! Storage faults (issue 29): the disk under the data directory fills up, the S3 bucket goes away
//! or answers slowly. Acknowledged events are never lost or duplicated; refused ones are never
//! stored; ingest and flushes resume by themselves.
//!
//! The recovery times are printed (`cargo test -p footfall-tests --test e2e storage_faults:: --
//! --nocapture`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use footfall_tests::{json_body, random_token, require_mount, FaultProxy, Server, ServerOpts, Tmpfs};
use serde_json::Value;

use crate::pageview;

/// How long anything the test waits for may take on a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(120);

fn events(prefix: &str, from: usize, n: usize) -> (Vec<String>, Vec<Value>) {
    let paths: Vec<String> = (from..from + n).map(|i| format!("/{prefix}/{i}")).collect();
    let events = paths.iter().map(|p| pageview("faults", &format!("https://example.com{p}"))).collect();
    (paths, events)
}

/// The project `faults` and its ingest and query keys.
fn project(server: &Server) -> (String, String) {
    server.create_project("faults", "example.com");
    (server.create_key("faults", "ingest"), server.create_key("faults", "query"))
}

/// Sends a batch that must be acknowledged, and notes its paths.
fn ingest_acked(server: &Server, key: &str, acked: &mut BTreeSet<String>, prefix: &str, from: usize, n: usize) {
    let (paths, batch) = events(prefix, from, n);
    server.ingest_ok(key, &batch);
    acked.extend(paths);
}

/// Polls `check` until it returns `Some`, panicking with `what` after [`PATIENCE`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?} waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A counter from `/metrics` (0 when not yet reported).
fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").send().and_then(|r| r.text()).expect("GET /metrics");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every stored event of `prefix` is one of `acked`, each exactly once.
fn assert_exactly(server: &Server, query: &str, acked: &BTreeSet<String>, when: &str) {
    let count = server.scalar(query, "SELECT count(*) AS c FROM events");
    let distinct = server.scalar(query, "SELECT count(DISTINCT path) AS c FROM events");
    assert_eq!(count as usize, acked.len(), "{when}: stored events vs acknowledged");
    assert_eq!(distinct as usize, acked.len(), "{when}: distinct paths vs acknowledged (duplicates?)");
    let rows = server.sql(query, "SELECT path FROM events");
    let stored: BTreeSet<String> = rows.iter().filter_map(|r| r["path"].as_str().map(str::to_string)).collect();
    assert!(stored == *acked, "{when}: stored paths differ from the acknowledged ones");
}

fn retry_after(resp: &reqwest::blocking::Response) -> Option<u64> {
    resp.headers().get("retry-after")?.to_str().ok()?.parse().ok()
}

#[test]
fn disk_full_refuses_ingest_and_recovers_by_itself() {
    let mountpoint = tempfile::Builder::new().prefix("footfall-diskfull-").tempdir().expect("temporary folder");
    let Some(disk) = require_mount("disk_full", Tmpfs::mount(mountpoint.path(), "16m")) else { return };
    let data_dir = mountpoint.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("create the data dir on the tmpfs");
    // No flush on its own: the WAL grows until the disk is full. Storage is local, on the same disk.
    let mut server = Server::start(ServerOpts::new().data_dir(&data_dir).flush_age(3600));
    let (ingest, query) = project(&server);

    let mut acked = BTreeSet::new();
    ingest_acked(&server, &ingest, &mut acked, "before", 0, 200);
    assert!(server.flush() >= 1, "a flush while there is room writes a file");

    // Leave about 1.5 MiB, then ingest until the WAL cannot take a batch.
    let filler = disk.fill("filler", 1536 << 10);
    let mut refused = Vec::new();
    let mut n = 0;
    while refused.is_empty() {
        let (paths, batch) = events("fill", n, 200);
        n += 200;
        let resp = server.ingest(&ingest, &batch);
        match resp.status().as_u16() {
            200 => acked.extend(paths),
            507 => {
                assert_eq!(retry_after(&resp), Some(5), "507 without Retry-After");
                let body = json_body(resp);
                assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
                refused.extend(paths);
            }
            other => panic!("ingest on a filling disk answered {other}: {}", resp.text().unwrap_or_default()),
        }
        assert!(n < 200_000, "the disk never filled up (1.5 MiB left, {n} events accepted)");
    }
    // Refused again and again while full; small requests too.
    for i in 0..5 {
        let (paths, batch) = events("refused", i * 1000, if i % 2 == 0 { 1 } else { 200 });
        let resp = server.ingest(&ingest, &batch);
        match resp.status().as_u16() {
            507 => refused.extend(paths),
            // A one-event record can fit into what a refused batch left.
            200 => acked.extend(paths),
            other => panic!("ingest on a full disk answered {other}"),
        }
    }
    assert!(server.healthz().is_success(), "health while the disk is full");
    // The last bytes too, so that nothing at all fits (a flush's file would otherwise, maybe).
    let filler2 = disk.fill("filler2", 0);
    // Queries keep working: files and buffered rows, every acknowledged event exactly once.
    assert_exactly(&server, &query, &acked, "disk full");
    // A flush cannot write its file either: it fails clearly, keeps the rows and the WAL, and the
    // flusher retries it with back-off.
    let resp = server.post("/api/v1/admin/flush").bearer_auth(server.admin()).send().expect("POST flush");
    assert_eq!(resp.status(), 503, "flush on a full disk");
    assert_eq!(json_body(resp)["error"]["code"], "storage_unavailable");
    wait_for("a retried flush failing on the full disk", || {
        (metric(&server, "footfall_flush_failures_total") >= 1.0).then_some(())
    });
    assert_exactly(&server, &query, &acked, "after a failed flush");

    // Space returns: ingest resumes by itself.
    std::fs::remove_file(&filler).expect("delete the filler");
    std::fs::remove_file(&filler2).expect("delete the second filler");
    let freed = Instant::now();
    let mut probe = 0;
    wait_for("ingest to resume after space returned", || {
        let (paths, batch) = events("resumed", probe, 1);
        probe += 1;
        let resp = server.ingest(&ingest, &batch);
        match resp.status().as_u16() {
            200 => {
                acked.extend(paths);
                Some(())
            }
            507 => {
                refused.extend(paths);
                None
            }
            other => panic!("ingest after space returned answered {other}"),
        }
    });
    let resumed = freed.elapsed();
    eprintln!("RECOVERY disk full: first acknowledged ingest {} ms after space was freed", resumed.as_millis());
    ingest_acked(&server, &ingest, &mut acked, "after", 0, 500);
    // The flusher's retry succeeds too: the frozen rows are written and the WAL shrinks.
    wait_for("the retried flush to succeed", || (metric(&server, "footfall_flushes_total") >= 2.0).then_some(()));
    eprintln!("RECOVERY disk full: first successful flush {} ms after space was freed", freed.elapsed().as_millis());
    assert_exactly(&server, &query, &acked, "after recovery");

    // Nothing refused was stored, nothing acknowledged is lost or doubled: across kill -9 (WAL
    // replay over the segments the fault touched) and across a clean restart.
    server.kill9();
    server.restart();
    assert_exactly(&server, &query, &acked, "after kill -9");
    // The stored set is exactly the acknowledged one, so no refused event made it in.
    assert!(refused.iter().all(|p| !acked.contains(p)), "an event was both refused and acknowledged");
    server.flush();
    server.restart();
    assert_exactly(&server, &query, &acked, "after a clean restart");
    drop(server);
    drop(disk);
}

/// The S3 emulator's address, or `None` (skipped) as `s3_storage` decides.
fn s3_endpoint(test: &str) -> Option<String> {
    match std::env::var("FOOTFALL_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e.trim_end_matches('/').to_string()),
        _ if std::env::var("FOOTFALL_SKIP_S3").is_ok_and(|v| v == "1") => {
            eprintln!("{test}: skipped (FOOTFALL_SKIP_S3=1)");
            None
        }
        _ => panic!("{test} needs an S3 emulator: run `bash tests/run.sh`, or set FOOTFALL_TEST_S3_ENDPOINT"),
    }
}

/// A fresh bucket on the emulator, and a server whose S3 traffic goes through a [`FaultProxy`].
fn server_behind_proxy(endpoint: &str, flush_age: u64) -> (FaultProxy, Server) {
    let bucket = format!("footfall-faults-{}", &random_token()[..12]);
    let resp = reqwest::blocking::Client::new().put(format!("{endpoint}/{bucket}")).send().expect("create bucket");
    assert!(resp.status().is_success(), "create bucket {bucket}: {}", resp.status());
    let upstream: SocketAddr = endpoint
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("FOOTFALL_TEST_S3_ENDPOINT {endpoint} is not http://ip:port"));
    let proxy = FaultProxy::start(upstream);
    let opts = ServerOpts::new()
        .storage(format!("s3://{bucket}/footfall"))
        .flush_age(flush_age)
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true");
    (proxy, Server::start(opts))
}

#[test]
fn bucket_outage_keeps_every_event_and_flushes_once_back() {
    let Some(endpoint) = s3_endpoint("bucket_outage") else { return };
    let (proxy, mut server) = server_behind_proxy(&endpoint, 2);
    let (ingest, query) = project(&server);
    let mut acked = BTreeSet::new();

    ingest_acked(&server, &ingest, &mut acked, "stored", 0, 300);
    assert!(server.flush() >= 1);

    // Outage in the middle of a flush: the bucket slows down, a flush starts, the bucket goes.
    ingest_acked(&server, &ingest, &mut acked, "midflush", 0, 300);
    proxy.slow(Duration::from_millis(400));
    let flusher = {
        let api = server.api().clone();
        thread::spawn(move || {
            api.post("/api/v1/admin/flush").bearer_auth(api.admin()).send().map(|r| r.status().as_u16())
        })
    };
    thread::sleep(Duration::from_millis(1500));
    proxy.down();
    let down_at = Instant::now();
    let status = flusher.join().expect("flush thread").expect("the flush request is answered");
    assert!(status == 503 || status == 200, "flush cut by the outage answered {status}");

    // Ingest goes on: acknowledgements come from the WAL.
    for b in 0..5 {
        let (paths, batch) = events("during", b * 100, 100);
        let started = Instant::now();
        server.ingest_ok(&ingest, &batch);
        assert!(started.elapsed() < Duration::from_secs(5), "ingest waited for the bucket");
        acked.extend(paths);
    }
    // A query that reads stored data answers a clear 503 within a bounded time.
    let started = Instant::now();
    let resp = server.sql_request(&query, "SELECT count(DISTINCT path) AS c FROM events", "json");
    let took = started.elapsed();
    let (status, retry) = (resp.status(), retry_after(&resp));
    let body = json_body(resp);
    assert_eq!(status, 503, "query over the unavailable bucket: {body}");
    assert_eq!(retry, Some(5));
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    assert!(took < Duration::from_secs(25), "the query took {took:?} to fail");
    eprintln!("bucket down: a query over stored data failed in {} ms", took.as_millis());
    // Flushes fail and are retried with back-off; an explicit one fails clearly.
    let failures = wait_for("the flusher to retry", || {
        let n = metric(&server, "footfall_flush_failures_total");
        (n >= 2.0).then_some(n)
    });
    let resp = server.post("/api/v1/admin/flush").bearer_auth(server.admin()).send().expect("POST flush");
    assert_eq!(resp.status(), 503);
    assert_eq!(json_body(resp)["error"]["code"], "storage_unavailable");
    assert!(std::fs::read_to_string(server.log_path()).unwrap_or_default().contains("flush failed"));
    eprintln!("bucket down for {} ms: {failures} failed flushes", down_at.elapsed().as_millis());

    // The bucket returns: the next retry flushes everything, exactly once.
    let flushes_before = metric(&server, "footfall_flushes_total");
    proxy.up();
    let back = Instant::now();
    wait_for("a successful flush after the bucket came back", || {
        (metric(&server, "footfall_flushes_total") > flushes_before).then_some(())
    });
    eprintln!(
        "RECOVERY bucket outage: first successful flush {} ms after the bucket came back",
        back.elapsed().as_millis()
    );
    wait_for("the buffer to drain", || {
        let health = json_body(server.get("/healthz").send().expect("GET /healthz"));
        (health["buffered_bytes"].as_u64() == Some(0)).then_some(())
    });
    assert_exactly(&server, &query, &acked, "bucket back");
    server.kill9();
    server.restart();
    assert_exactly(&server, &query, &acked, "after kill -9");
    server.restart();
    assert_exactly(&server, &query, &acked, "after a clean restart");
}

#[test]
fn slow_bucket_does_not_slow_ingest() {
    let Some(endpoint) = s3_endpoint("slow_bucket") else { return };
    let (proxy, mut server) = server_behind_proxy(&endpoint, 1);
    let (ingest, query) = project(&server);
    let mut acked = BTreeSet::new();
    ingest_acked(&server, &ingest, &mut acked, "warm", 0, 100);

    // Each chunk of S3 traffic now waits a second: a flush takes several.
    proxy.slow(Duration::from_secs(1));
    let flush = {
        let api = server.api().clone();
        thread::spawn(move || {
            let started = Instant::now();
            let status = api.post("/api/v1/admin/flush").bearer_auth(api.admin()).send().map(|r| r.status().as_u16());
            (status, started.elapsed())
        })
    };
    let mut slowest = Duration::ZERO;
    for b in 0..20 {
        let (paths, batch) = events("slow", b * 50, 50);
        let started = Instant::now();
        server.ingest_ok(&ingest, &batch);
        slowest = slowest.max(started.elapsed());
        acked.extend(paths);
        thread::sleep(Duration::from_millis(100));
    }
    let (status, flush_took) = flush.join().expect("flush thread");
    eprintln!(
        "slow bucket: slowest ingest ack {} ms while a flush took {} ms",
        slowest.as_millis(),
        flush_took.as_millis()
    );
    assert!(flush_took > Duration::from_secs(4), "the bucket was not slow ({flush_took:?})");
    assert!(slowest < Duration::from_secs(3), "an ingest ack took {slowest:?} behind a slow bucket");
    assert_eq!(status.expect("flush answered"), 200);

    proxy.up();
    server.flush();
    assert_exactly(&server, &query, &acked, "slow bucket");
    server.restart();
    assert_exactly(&server, &query, &acked, "after restart");
}
