//! The synthetic traffic: a seeded, deterministic stream of realistic events, rendered to request
//! bodies before the clock starts so that generating and serializing them is never measured.
//!
//! Shape of the stream:
//! - visitors from a fixed pool, each an (IP, user-agent) pair: the server hashes them into
//!   `visitor_id` and assigns sessions itself, as it would for a server-side sender;
//! - sessions of 1–20 pageviews, short ones most likely (weight ∝ k^-1.3, mean ≈ 4), 3–90 s apart,
//!   all inside the last `hours` hours;
//! - ~500 paths with Zipf-like popularity (weight ∝ rank^-1.05); `/blog/*` and `/docs/*` live on
//!   their own hostnames, the rest on the apex or `www.`;
//! - entry referrers: 40 % direct, 30 % search, 10 % Twitter (`t.co`, half with UTM tags), 10 %
//!   newsletter (UTM-tagged, no referrer), 10 % other sites; later pageviews carry the previous page
//!   as referrer, as `document.referrer` does;
//! - after each pageview, an 11 % chance of a custom event with one or two small props;
//! - the whole stream in timestamp order, as a live feed arrives.

use std::fmt::Write as _;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PATH_COUNT: usize = 500;
const ZIPF_EXPONENT: f64 = 1.05;
const SESSION_LENGTH_EXPONENT: f64 = 1.3;
const MAX_SESSION_PAGEVIEWS: usize = 20;
const CUSTOM_EVENT_PROBABILITY: f64 = 0.11;

/// Query strings a landing URL may carry. Index 0 is none.
const QUERIES: &[&str] = &[
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=may-2026",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=june-2026",
    "?utm_source=twitter&utm_medium=social",
    "?utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=web+analytics",
    "?ref=producthunt",
];
const Q_NEWSLETTER_MAY: u8 = 1;
const Q_NEWSLETTER_JUNE: u8 = 2;
const Q_TWITTER: u8 = 3;
const Q_CPC: u8 = 4;
const Q_PRODUCTHUNT: u8 = 5;

const SEARCH_REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.google.co.uk/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
];
const OTHER_REFERRERS: &[&str] = &[
    "https://news.ycombinator.com/",
    "https://news.ycombinator.com/item?id=43912345",
    "https://github.com/footfall/footfall",
    "https://www.reddit.com/r/selfhosted/",
    "https://www.reddit.com/r/webdev/comments/1kq2x7/",
    "https://lobste.rs/s/abc123/footfall",
    "https://www.producthunt.com/",
    "https://dev.to/",
    "https://stackoverflow.com/questions/78123456",
    "https://android-app://com.slack/",
];
const TWITTER_CODES: usize = 40;

const CUSTOM_NAMES: &[&str] = &["signup", "download", "outbound_click", "play_video", "add_to_cart"];

#[derive(Clone, Copy)]
enum Referrer {
    None,
    Search(u8),
    Twitter(u8),
    Other(u8),
    /// The previous page of the same session (path index).
    Internal(u16),
}

#[derive(Clone, Copy)]
enum Kind {
    Pageview,
    /// (name index, props variant)
    Custom(u8, u8),
}

#[derive(Clone, Copy)]
struct Ev {
    ts: i64,
    visitor: u32,
    path: u16,
    query: u8,
    referrer: Referrer,
    kind: Kind,
}

/// The fixed vocabulary: paths, hostnames, user-agents, visitors.
struct Corpus {
    paths: Vec<String>,
    path_cdf: Vec<f64>,
    length_cdf: Vec<f64>,
    user_agents: Vec<String>,
    /// (IP, user-agent index, whether they use the `www.` hostname)
    visitors: Vec<(String, u16, bool)>,
    twitter: Vec<String>,
}

const WORDS: &[&str] = &[
    "analytics",
    "privacy",
    "cookies",
    "gdpr",
    "dashboards",
    "retention",
    "funnels",
    "goals",
    "events",
    "sessions",
    "bounce",
    "referrers",
    "campaigns",
    "utm",
    "self-hosting",
    "parquet",
    "s3",
    "sql",
    "exports",
    "api",
    "tracker",
    "script",
    "performance",
    "pricing",
    "teams",
    "alerts",
    "reports",
    "realtime",
    "segments",
    "revenue",
];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn cdf(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for v in &mut out {
        *v /= acc;
    }
    out
}

fn sample(cdf: &[f64], rng: &mut StdRng) -> usize {
    let u: f64 = rng.random();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

impl Corpus {
    fn new(rng: &mut StdRng, visitor_count: usize) -> Self {
        let mut paths: Vec<String> = [
            "/",
            "/pricing",
            "/features",
            "/docs",
            "/blog",
            "/signup",
            "/login",
            "/about",
            "/contact",
            "/changelog",
            "/integrations",
            "/customers",
            "/security",
            "/privacy",
            "/terms",
            "/jobs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seen: std::collections::HashSet<String> = paths.iter().cloned().collect();
        while paths.len() < PATH_COUNT {
            let path = match rng.random_range(0..10) {
                0..=3 => format!("/blog/{}-{}-{}", pick(rng, WORDS), pick(rng, WORDS), rng.random_range(2019..2027)),
                4..=7 => format!("/docs/{}/{}", pick(rng, WORDS), pick(rng, WORDS)),
                8 => format!("/integrations/{}", pick(rng, WORDS)),
                _ => format!("/customers/{}-{}", pick(rng, WORDS), rng.random_range(1..100)),
            };
            if seen.insert(path.clone()) {
                paths.push(path);
            }
        }
        let path_cdf = cdf((0..PATH_COUNT).map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF_EXPONENT)));
        let length_cdf = cdf((1..=MAX_SESSION_PAGEVIEWS).map(|k| 1.0 / (k as f64).powf(SESSION_LENGTH_EXPONENT)));

        let mut user_agents = Vec::new();
        for v in 118..138 {
            user_agents.push(format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"));
            user_agents.push(format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"));
            user_agents.push(format!("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36"));
            user_agents.push(format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0"));
        }
        for v in 120..140 {
            user_agents.push(format!("Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"));
            user_agents
                .push(format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"));
        }
        for v in 15..19 {
            for minor in 0..5 {
                user_agents.push(format!("Mozilla/5.0 (iPhone; CPU iPhone OS {v}_{minor} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.{minor} Mobile/15E148 Safari/604.1"));
                user_agents.push(format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.{minor} Safari/605.1.15"));
            }
        }

        let visitors = (0..visitor_count)
            .map(|_| {
                let ip = if rng.random_bool(0.15) {
                    format!("2001:db8:{:x}:{:x}::{:x}", rng.random::<u16>(), rng.random::<u16>(), rng.random::<u16>())
                } else {
                    format!(
                        "{}.{}.{}.{}",
                        rng.random_range(1..224u8),
                        rng.random::<u8>(),
                        rng.random::<u8>(),
                        rng.random_range(1..255u8)
                    )
                };
                (ip, rng.random_range(0..user_agents.len()) as u16, rng.random_bool(0.1))
            })
            .collect();
        let twitter = (0..TWITTER_CODES)
            .map(|_| {
                let code: String = (0..10)
                    .map(|_| {
                        let c = rng.random_range(0..62u8);
                        (match c {
                            0..=9 => b'0' + c,
                            10..=35 => b'a' + c - 10,
                            _ => b'A' + c - 36,
                        }) as char
                    })
                    .collect();
                format!("https://t.co/{code}")
            })
            .collect();
        Self { paths, path_cdf, length_cdf, user_agents, visitors, twitter }
    }

    fn host(&self, path: u16, visitor: u32) -> &'static str {
        let p = &self.paths[path as usize];
        if p.starts_with("/blog/") {
            "blog.bench.example"
        } else if p.starts_with("/docs/") {
            "docs.bench.example"
        } else if self.visitors[visitor as usize].2 {
            "www.bench.example"
        } else {
            "bench.example"
        }
    }
}

/// One request body and how many events it holds.
pub struct Batch {
    pub body: Bytes,
    pub events: usize,
}

pub struct Workload {
    pub batches: Vec<Batch>,
    pub events: usize,
    pub body_bytes: usize,
    pub sessions: usize,
    pub pageviews: usize,
    pub custom_events: usize,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// The events of a `footfall-gen` NDJSON file as bodies of `batch_size` events.
pub fn from_ndjson(path: &std::path::Path, batch_size: usize) -> anyhow::Result<Workload> {
    let manifest = footfall_benches::ndjson::read_manifest(path)?;
    let bodies = footfall_benches::ndjson::read_bodies(path, batch_size)?;
    let events: usize = bodies.iter().map(|b| b.events).sum();
    if events as u64 != manifest.events {
        anyhow::bail!("{} holds {events} events but its manifest says {}", path.display(), manifest.events);
    }
    Ok(Workload {
        events,
        body_bytes: bodies.iter().map(|b| b.bytes.len()).sum(),
        sessions: manifest.sessions as usize,
        pageviews: manifest.pageviews as usize,
        custom_events: events - manifest.pageviews as usize,
        first_ts: manifest.first_timestamp_ms.unwrap_or(0),
        last_ts: manifest.last_timestamp_ms.unwrap_or(0),
        batches: bodies.into_iter().map(|b| Batch { body: b.bytes, events: b.events }).collect(),
    })
}

/// Generates `total` events and renders them as NDJSON bodies of `batch_size` events.
pub fn generate(
    seed: u64,
    total: usize,
    batch_size: usize,
    visitor_count: usize,
    hours: f64,
    project: &str,
    now_ms: i64,
) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let corpus = Corpus::new(&mut rng, visitor_count.max(1));
    let mut events: Vec<Ev> = Vec::with_capacity(total + MAX_SESSION_PAGEVIEWS * 2);
    let window_ms = (hours * 3_600_000.0) as i64;
    // Sessions last at most 20 × 90 s = 30 min; start them early enough to end in the past.
    let latest_start = now_ms - 35 * 60_000;
    let earliest_start = (now_ms - window_ms).min(latest_start - 1);
    let mut sessions = 0;
    while events.len() < total {
        sessions += 1;
        let visitor = rng.random_range(0..corpus.visitors.len()) as u32;
        let pageviews = sample(&corpus.length_cdf, &mut rng) + 1;
        let mut ts = rng.random_range(earliest_start..latest_start);
        let (mut referrer, query) = match rng.random_range(0..100) {
            0..=39 => (Referrer::None, 0),
            40..=69 => {
                let q = if rng.random_bool(0.05) { Q_CPC } else { 0 };
                (Referrer::Search(rng.random_range(0..SEARCH_REFERRERS.len()) as u8), q)
            }
            70..=79 => {
                let q = if rng.random_bool(0.5) { Q_TWITTER } else { 0 };
                (Referrer::Twitter(rng.random_range(0..TWITTER_CODES) as u8), q)
            }
            80..=89 => (Referrer::None, if rng.random_bool(0.5) { Q_NEWSLETTER_MAY } else { Q_NEWSLETTER_JUNE }),
            _ => {
                let r = rng.random_range(0..OTHER_REFERRERS.len()) as u8;
                let q = if OTHER_REFERRERS[r as usize].contains("producthunt") { Q_PRODUCTHUNT } else { 0 };
                (Referrer::Other(r), q)
            }
        };
        let mut query = query;
        for _ in 0..pageviews {
            let path = sample(&corpus.path_cdf, &mut rng) as u16;
            events.push(Ev { ts, visitor, path, query, referrer, kind: Kind::Pageview });
            if rng.random_bool(CUSTOM_EVENT_PROBABILITY) {
                ts += rng.random_range(1_000..20_000);
                let name = rng.random_range(0..CUSTOM_NAMES.len()) as u8;
                let variant = rng.random_range(0..8u8);
                events.push(Ev { ts, visitor, path, query, referrer, kind: Kind::Custom(name, variant) });
            }
            ts += rng.random_range(3_000..90_000).min(latest_start + 30 * 60_000 - ts).max(1);
            referrer = Referrer::Internal(path);
            query = 0;
        }
    }
    events.truncate(total);
    events.sort_by_key(|e| e.ts);

    let pageviews = events.iter().filter(|e| matches!(e.kind, Kind::Pageview)).count();
    let mut batches = Vec::with_capacity(total.div_ceil(batch_size.max(1)));
    let mut body_bytes = 0;
    let mut buf = String::new();
    for chunk in events.chunks(batch_size.max(1)) {
        buf.clear();
        for e in chunk {
            render(&mut buf, &corpus, project, e);
            buf.push('\n');
        }
        body_bytes += buf.len();
        batches.push(Batch { body: Bytes::from(buf.clone().into_bytes()), events: chunk.len() });
    }
    Workload {
        first_ts: events.first().map_or(0, |e| e.ts),
        last_ts: events.last().map_or(0, |e| e.ts),
        batches,
        events: events.len(),
        body_bytes,
        sessions,
        pageviews,
        custom_events: events.len() - pageviews,
    }
}

/// Appends `s` as a JSON string literal. Everything generated here is plain ASCII, but escape
/// properly anyway so the generator can never produce a body the server should reject.
fn json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

fn render(buf: &mut String, corpus: &Corpus, project: &str, e: &Ev) {
    let path = &corpus.paths[e.path as usize];
    let host = corpus.host(e.path, e.visitor);
    let (ip, ua, _) = &corpus.visitors[e.visitor as usize];
    buf.push_str("{\"project\":");
    json_str(buf, project);
    match e.kind {
        Kind::Pageview => buf.push_str(",\"type\":\"pageview\""),
        Kind::Custom(name, _) => {
            buf.push_str(",\"type\":\"event\",\"name\":");
            json_str(buf, CUSTOM_NAMES[name as usize]);
        }
    }
    let _ = write!(buf, ",\"timestamp\":{},\"url\":", e.ts);
    json_str(buf, &format!("https://{host}{path}{}", QUERIES[e.query as usize]));
    let referrer = match e.referrer {
        Referrer::None => None,
        Referrer::Search(i) => Some(SEARCH_REFERRERS[i as usize].to_string()),
        Referrer::Twitter(i) => Some(corpus.twitter[i as usize].clone()),
        Referrer::Other(i) => Some(OTHER_REFERRERS[i as usize].to_string()),
        Referrer::Internal(prev) => {
            Some(format!("https://{}{}", corpus.host(prev, e.visitor), corpus.paths[prev as usize]))
        }
    };
    if let Some(r) = referrer {
        buf.push_str(",\"referrer\":");
        json_str(buf, &r);
    }
    if let Kind::Custom(name, variant) = e.kind {
        buf.push_str(",\"props\":");
        buf.push_str(&props(name, variant));
    }
    buf.push_str(",\"ip\":");
    json_str(buf, ip);
    buf.push_str(",\"user_agent\":");
    json_str(buf, &corpus.user_agents[*ua as usize]);
    buf.push('}');
}

fn props(name: u8, variant: u8) -> String {
    let v = variant as usize;
    match CUSTOM_NAMES[name as usize] {
        "signup" => format!(r#"{{"plan":"{}"}}"#, ["free", "pro", "team", "free"][v % 4]),
        "download" => {
            format!(r#"{{"file":"{}"}}"#, ["whitepaper.pdf", "footfall-linux-amd64.tar.gz", "pricing.pdf"][v % 3])
        }
        "outbound_click" => format!(
            r#"{{"url":"{}"}}"#,
            ["https://github.com/footfall/footfall", "https://docs.rs/", "https://twitter.com/footfall"][v % 3]
        ),
        "play_video" => format!(r#"{{"video":"{}","seconds":{}}}"#, ["intro", "demo", "webinar"][v % 3], 5 + v * 7),
        _ => format!(r#"{{"sku":"SKU-{}","price":{}.99}}"#, 1000 + v, 9 + v * 10),
    }
}

/// Plausible-style beacon bodies (`POST /api/event`) and user-agents to send them with.
pub struct Beacons {
    pub bodies: Vec<Bytes>,
    pub user_agents: Vec<String>,
}

pub fn beacons(seed: u64, count: usize, domain: &str) -> Beacons {
    let mut rng = StdRng::seed_from_u64(seed);
    let corpus = Corpus::new(&mut rng, 1);
    let bodies = (0..count.max(1))
        .map(|_| {
            let path = sample(&corpus.path_cdf, &mut rng);
            let mut body = String::from("{\"n\":");
            let custom = rng.random_bool(CUSTOM_EVENT_PROBABILITY);
            json_str(&mut body, if custom { pick(&mut rng, CUSTOM_NAMES) } else { "pageview" });
            body.push_str(",\"u\":");
            json_str(&mut body, &format!("https://{domain}{}", corpus.paths[path]));
            body.push_str(",\"d\":");
            json_str(&mut body, domain);
            match rng.random_range(0..10) {
                0..=2 => {
                    body.push_str(",\"r\":");
                    json_str(&mut body, pick(&mut rng, SEARCH_REFERRERS));
                }
                3 => {
                    body.push_str(",\"r\":");
                    json_str(&mut body, pick(&mut rng, OTHER_REFERRERS));
                }
                _ => {}
            }
            body.push('}');
            Bytes::from(body.into_bytes())
        })
        .collect();
    Beacons { bodies, user_agents: corpus.user_agents }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    #[test]
    fn same_seed_same_bodies_and_exact_count() {
        let a = generate(7, 2_345, 1000, 500, 4.0, "bench", NOW);
        let b = generate(7, 2_345, 1000, 500, 4.0, "bench", NOW);
        assert_eq!(a.events, 2_345);
        assert_eq!(a.batches.iter().map(|b| b.events).collect::<Vec<_>>(), vec![1000, 1000, 345]);
        assert!(a.batches.iter().zip(&b.batches).all(|(x, y)| x.body == y.body));
        let c = generate(8, 2_345, 1000, 500, 4.0, "bench", NOW);
        assert!(a.batches[0].body != c.batches[0].body);
    }

    #[test]
    fn every_line_is_a_valid_event_in_the_window() {
        let w = generate(42, 5_000, 700, 1_000, 4.0, "bench", NOW);
        let mut custom = 0;
        let mut last = i64::MIN;
        for batch in &w.batches {
            let text = std::str::from_utf8(&batch.body).unwrap();
            assert_eq!(text.lines().count(), batch.events);
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["project"], "bench");
                let ts = v["timestamp"].as_i64().unwrap();
                assert!((NOW - 4 * 3_600_000..NOW).contains(&ts), "{ts}");
                assert!(ts >= last, "stream is in timestamp order");
                last = ts;
                assert!(v["url"].as_str().unwrap().starts_with("https://"));
                assert!(v["ip"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
                if v["type"] == "event" {
                    custom += 1;
                    assert!(v["name"].is_string() && v["props"].is_object());
                }
            }
        }
        assert_eq!(w.custom_events, custom);
        let share = custom as f64 / w.events as f64;
        assert!((0.05..0.15).contains(&share), "custom share {share}");
    }

    #[test]
    fn beacon_bodies_parse() {
        let b = beacons(1, 100, "bench.example");
        for body in &b.bodies {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["d"], "bench.example");
            assert!(v["u"].as_str().unwrap().starts_with("https://bench.example/"));
        }
    }
}
