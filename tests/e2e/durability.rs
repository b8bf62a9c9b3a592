//! Acknowledged writes survive `kill -9` (during flushes and compactions too); SIGTERM flushes to
//! parquet.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use footfall_tests::{files_under, today_utc, value_i64, value_str, IngestOutcome, Server, ServerOpts};
use rand::Rng;
use serde_json::Value;

use crate::pageview;

const WRITERS: usize = 3;
const BATCH: usize = 200;
/// Pause between two batches of one writer: paces the traffic so that it is
/// still flowing at the kill (1–2 s in) while the data stays small enough
/// for a cheap final check.
const PACE: Duration = Duration::from_millis(10);
/// Safety cap per writer and round; at [`PACE`] it takes longer than 2 s.
const MAX_BATCHES_PER_ROUND: usize = 250;

/// What one writer saw in one round.
struct WriterReport {
    /// Paths of every acknowledged batch.
    acked: Vec<String>,
    /// Whether the kill (not the cap) ended its traffic.
    interrupted: bool,
}

/// Sends batches until told to stop or the server goes away.
fn writer(api: footfall_tests::Api, token: String, round: usize, t: usize, stop: Arc<AtomicBool>) -> WriterReport {
    let mut acked = Vec::new();
    for b in 0..MAX_BATCHES_PER_ROUND {
        if stop.load(Ordering::SeqCst) {
            return WriterReport { acked, interrupted: true };
        }
        if b > 0 {
            thread::sleep(PACE);
        }
        let paths: Vec<String> = (0..BATCH).map(|i| format!("/k/r{round}t{t}/{}", b * BATCH + i)).collect();
        let events: Vec<Value> = paths.iter().map(|p| pageview("dur", &format!("https://example.com{p}"))).collect();
        let resp = loop {
            match api.try_ingest(&token, &events) {
                // 429 (buffer full) is allowed back-pressure: retry.
                Ok(r) if r.status() == 429 && !stop.load(Ordering::SeqCst) => {
                    thread::sleep(Duration::from_millis(50));
                }
                other => break other,
            }
        };
        let Ok(resp) = resp else {
            // killed mid-request: not acknowledged
            return WriterReport { acked, interrupted: true };
        };
        let status = resp.status();
        if status != 200 {
            let text = resp.text().unwrap_or_default();
            panic!("writer {t}: ingest answered {status}: {text:.500}");
        }
        let Ok(text) = resp.text() else {
            // killed while the body was in flight: not acknowledged
            return WriterReport { acked, interrupted: true };
        };
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("200 with a non-JSON body ({e}): {text:.500}"));
        let outcome = IngestOutcome::from_body(&body);
        assert_eq!(outcome.accepted as usize, BATCH, "a well-formed batch was not fully accepted: {outcome:?}");
        acked.extend(paths);
    }
    WriterReport { acked, interrupted: false }
}

#[test]
fn kill9_durability() {
    // The later rounds also compact every 200 ms, so kills land during merges too.
    let round_opts = [
        ServerOpts::new(),
        ServerOpts::new().flush_age(1).arg("--compaction-interval=0.2"),
        ServerOpts::new().flush_age(1).flush_bytes(64 * 1024).arg("--compaction-interval=0.2"),
    ];
    let mut server = Server::start(round_opts[0].clone());
    server.create_project("dur", "example.com");
    let token = server.create_key("dur", "ingest");
    let mut acked: Vec<String> = Vec::new();

    for (round, opts) in round_opts.iter().enumerate() {
        if round > 0 {
            server.restart_with(opts.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (api, token, stop) = (server.api().clone(), token.clone(), stop.clone());
                thread::spawn(move || writer(api, token, round, t, stop))
            })
            .collect();
        let ms = rand::rng().random_range(1000..2000);
        thread::sleep(Duration::from_millis(ms));
        server.kill9();
        stop.store(true, Ordering::SeqCst);
        let mut interrupted = 0;
        for h in handles {
            let report = h.join().expect("writer thread panicked");
            acked.extend(report.acked);
            interrupted += usize::from(report.interrupted);
        }
        assert!(
            interrupted > 0,
            "round {round}: every writer hit its cap before the kill, so the kill was not \
             mid-traffic (test pacing needs adjusting)"
        );
        eprintln!("kill9 round {round}: {} events acknowledged so far", acked.len());
    }
    assert!(!acked.is_empty(), "no batch was acknowledged at all");

    server.restart();
    let admin = server.admin().to_string();
    let mut stored: BTreeMap<String, i64> = BTreeMap::new();
    for row in server.sql(&admin, "SELECT path, count(*) AS c FROM events GROUP BY path") {
        let path = value_str(&row["path"]).expect("path").to_string();
        stored.insert(path, value_i64(&row["c"]));
    }
    let dups: Vec<_> = stored.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(dups.is_empty(), "events stored more than once: {dups:?}");
    let missing: Vec<_> = acked.iter().filter(|p| !stored.contains_key(*p)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost after kill -9, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked_set.len(), acked.len(), "test bug: duplicate paths sent");
    eprintln!("kill9: {} acknowledged, {} stored (the rest were in flight at a kill)", acked.len(), stored.len());

    // The recovered server still takes and serves writes.
    // (with the key created before the kills: keys are durable too)
    server.ingest_ok(&token, &[pageview("dur", "https://example.com/after")]);
    assert_eq!(server.scalar(&admin, "SELECT count(*) AS c FROM events WHERE path = '/after'"), 1);
}

fn parquet_files(storage: &Path, project: &str) -> Vec<String> {
    let base = storage.join(format!("project={project}"));
    files_under(&base)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| p.strip_prefix(&base).expect("under the project dir").display().to_string())
        .collect()
}

#[test]
fn graceful_shutdown_flushes_to_parquet() {
    let mut server = Server::start(ServerOpts::new());
    server.create_project("grace", "example.com");
    let ingest = server.create_key("grace", "ingest");
    let query = server.create_key("grace", "query");
    let events: Vec<Value> = (0..50).map(|i| pageview("grace", &format!("https://example.com/g/{}", i % 5))).collect();
    server.ingest_ok(&ingest, &events);
    let sql = "SELECT path, count(*) AS c FROM events GROUP BY path ORDER BY path";
    let before = server.sql(&query, sql);
    assert_eq!(before.len(), 5, "{before:?}");

    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0\n{}", server.log_tail(40));

    let files = parquet_files(&server.storage_dir(), "grace");
    assert!(
        !files.is_empty(),
        "no parquet under {}/project=grace after SIGTERM; files: {:?}",
        server.storage_dir().display(),
        files_under(server.data_dir())
    );
    let today = today_utc();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    for f in &files {
        let day = f
            .strip_prefix("day=")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("parquet file {f} is not under day=YYYY-MM-DD/"));
        assert!(day == today || day == yesterday, "parquet file {f}: day partition {day} is not today ({today})");
        assert_eq!(f.matches('/').count(), 1, "expected project=<id>/day=<date>/<file>.parquet, got {f}");
    }

    server.restart();
    assert_eq!(server.sql(&query, sql), before, "answers changed across SIGTERM + restart");
    assert_eq!(server.count(&query, "events"), 50);
}
