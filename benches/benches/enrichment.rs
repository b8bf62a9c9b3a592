//! Cost of enriching one event, piece by piece and whole: what ingest pays per event on top of
//! parsing and storing it.
//!
//! Run: `cargo bench -p footfall-benches --bench enrichment -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use footfall_server::enrich::{EnrichConfig, Enricher};

const UA_CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const UA_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
const PAGE_URL: &str =
    "https://www.example.com/blog/2024/launch?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=EAIaIQobChMI&page=2";
const PAGE_URL_PII: &str =
    "https://www.example.com/account/john.doe@example.com?email=a%40b.com&tel=%2B4915112345678&q=shoes";
const REFERRER: &str = "https://www.google.de/search?q=footfall+analytics";
const TITLE: &str = "Footfall 1.0 is out: privacy-first analytics on Parquet — Footfall Blog";

fn enricher() -> Enricher {
    // Start-up cost, by part: the UA rules dominate (YAML parse + compiling ~1,000 regexes).
    let started = Instant::now();
    let ua = footfall_server::enrich::ua::UaParser::new();
    eprintln!("UaParser::new: {:?} (ok: {})", started.elapsed(), ua.is_ok());
    let started = Instant::now();
    let geo = footfall_server::enrich::geo::GeoLookup::bundled();
    eprintln!("GeoLookup::bundled: {:?} (ok: {})", started.elapsed(), geo.is_ok());
    drop((ua, geo));
    let started = Instant::now();
    let enricher = match Enricher::new(&EnrichConfig::default()) {
        Ok(e) => e,
        Err(e) => panic!("enricher: {e}"),
    };
    eprintln!("Enricher::new (start-up): {:?}", started.elapsed());
    enricher
}

fn enrichment(c: &mut Criterion) {
    let e = enricher();
    let ip: IpAddr = [88, 198, 54, 12].into();

    // A different UA string every iteration, so every parse misses the cache.
    let counter = AtomicU64::new(0);
    c.bench_function("ua_parse_cold", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let ua = format!("{UA_CHROME} Build/{n}");
            black_box(e.uncached_user_agents().parse(black_box(&ua)))
        })
    });
    c.bench_function("ua_parse_warm", |b| b.iter(|| black_box(e.client(black_box(UA_IPHONE)))));
    c.bench_function("geo_lookup", |b| b.iter(|| black_box(e.geo(black_box(ip)))));
    // Page URLs and referrers are cached per distinct string: the plain names measure a hit (the
    // common case: a site repeats its URLs), the `_cold` ones a different string every iteration,
    // so every call parses, scrubs and inserts into the cache (building the string is included).
    c.bench_function("page_url_parse_scrub", |b| b.iter(|| black_box(e.page(black_box(PAGE_URL)))));
    c.bench_function("page_url_parse_scrub_with_pii", |b| b.iter(|| black_box(e.page(black_box(PAGE_URL_PII)))));
    c.bench_function("page_url_parse_scrub_cold", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            black_box(e.page(black_box(&format!("{PAGE_URL}&n={n}"))))
        })
    });
    let page = e.page(PAGE_URL).unwrap_or_default();
    c.bench_function("referrer_classify", |b| b.iter(|| black_box(e.referrer(black_box(Some(REFERRER)), &page))));
    c.bench_function("referrer_classify_cold", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            black_box(e.referrer(black_box(Some(&format!("{REFERRER}&n={n}"))), &page))
        })
    });
    c.bench_function("scrub_clean_title", |b| b.iter(|| black_box(e.scrub(black_box(TITLE)))));
    c.bench_function("whole_event_warm_ua", |b| {
        b.iter(|| {
            let client = e.client(black_box(UA_CHROME));
            let geo = e.geo(black_box(ip));
            let page = e.page(black_box(PAGE_URL)).unwrap_or_default();
            let referrer = e.referrer(black_box(Some(REFERRER)), &page);
            let title = e.scrub(black_box(TITLE));
            black_box((client, geo, page, referrer, title))
        })
    });
    c.bench_function("whole_event_cold_url_caches", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let client = e.client(black_box(UA_CHROME));
            let geo = e.geo(black_box(ip));
            let page = e.page(black_box(&format!("{PAGE_URL}&n={n}"))).unwrap_or_default();
            let referrer = e.referrer(black_box(Some(&format!("{REFERRER}&n={n}"))), &page);
            let title = e.scrub(black_box(TITLE));
            black_box((client, geo, page, referrer, title))
        })
    });
}

criterion_group!(benches, enrichment);
criterion_main!(benches);
