//! A deterministic generator of realistic web traffic in Footfall's native NDJSON ingest format
//! (`docs/http-api.md`, spec §1–2): several projects over many days, visitors who come back for
//! 1–30 sessions, sessions of 1–20 pageviews over Zipf-distributed paths, and on each page the
//! events a real tracker sends — engagement, web vitals, clicks, errors, forms, site search,
//! custom events with props and revenue, experiment exposures.
//!
//! Generation has two passes so that memory stays small at 100 million events: the first builds
//! the structure (visitors, sessions, pages) and one compact record per event; after sorting by
//! time (a live feed arrives in time order) the second renders each record, deriving its field
//! values from a per-page seed, so the same seed always yields byte-identical output.

pub mod render;
pub mod rng;
pub mod site;
pub mod vocab;

use rng::{Rng, Weighted};
use site::Site;
use vocab::Device;

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub events: u64,
    pub seed: u64,
    pub projects: usize,
    pub days: u32,
    /// Epoch milliseconds of 00:00 UTC of the first day.
    pub start_ms: i64,
    /// Only `pageview` and `event` types, for servers that predate the event model.
    pub core_types_only: bool,
}

/// What an event record is; its field values are derived at render time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pageview,
    Engagement,
    Vitals,
    Interaction(u8),
    Error(u8),
    Custom(u8),
    Form(FormStep),
    Search,
    SearchClick,
    Experiment(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormStep {
    Start,
    Submit,
    Abandon,
    Error,
}

/// One visitor: a device and network, fixed for all their sessions.
pub struct Visitor {
    pub project: u8,
    pub client: u8,
    pub version: u8,
    pub country: u8,
    pub ip: [u8; 4],
}

pub struct Session {
    pub visitor: u32,
    pub id: u64,
    pub source: u8,
}

pub struct Page {
    pub session: u32,
    pub path: u16,
    /// The previous page of the session (`u16::MAX` for the landing page).
    pub prev_path: u16,
    pub id: u64,
    pub ts: i64,
    pub dwell_ms: i64,
    /// Interactions on the page (clicks etc.), so engagement's click_count agrees with them.
    pub clicks: u8,
}

#[derive(Clone, Copy)]
pub struct Record {
    pub ts: i64,
    pub page: u32,
    pub kind: Kind,
}

pub struct Traffic {
    pub sites: Vec<Site>,
    pub visitors: Vec<Visitor>,
    pub sessions: Vec<Session>,
    pub pages: Vec<Page>,
    pub records: Vec<Record>,
    pub options: Options,
}

const MAX_SESSIONS: usize = 30;
const MAX_PAGEVIEWS: usize = 20;

/// Builds every record of the traffic, sorted by time.
pub fn generate(options: &Options) -> Traffic {
    let mut rng = Rng::new(options.seed);
    let projects = options.projects.clamp(1, 200);
    let sites: Vec<Site> = (0..projects).map(|i| Site::new(i, &mut Rng::derive(options.seed, i as u64))).collect();
    // Project sizes fall off like real sites do: the first is the biggest.
    let project_weights = Weighted::zipf(projects, 0.8);
    let clients = Weighted::new(vocab::CLIENTS.iter().map(|c| c.weight));
    let countries = Weighted::new(vocab::COUNTRIES.iter().map(|c| c.weight));
    let sources = Weighted::new(vocab::SOURCES.iter().map(|s| s.weight));
    // Most visitors come once; a few are regulars (mean ≈ 2 sessions).
    let session_counts = Weighted::zipf(MAX_SESSIONS, 1.8);
    // Bounces are the commonest session (≈ 40%), long visits rare.
    let session_lengths = Weighted::zipf(MAX_PAGEVIEWS, 1.3);
    let hours = Weighted::new(HOUR_WEIGHTS.iter().copied());
    // A few recurring errors make most of the noise, as in any real error tracker.
    let errors = Weighted::zipf(vocab::ERRORS.len(), 1.2);
    let days = options.days.max(1) as i64;

    let mut t = Traffic {
        sites,
        visitors: Vec::new(),
        sessions: Vec::new(),
        pages: Vec::new(),
        records: Vec::with_capacity(options.events as usize + 256),
        options: options.clone(),
    };
    while (t.records.len() as u64) < options.events {
        let visitor = t.visitors.len() as u32;
        let country = countries.sample(&mut rng);
        let prefix = *rng.pick(vocab::COUNTRIES[country].prefixes);
        let client = clients.sample(&mut rng);
        t.visitors.push(Visitor {
            project: project_weights.sample(&mut rng) as u8,
            client: client as u8,
            version: rng.below(vocab::CLIENTS[client].versions.len() as u64) as u8,
            country: country as u8,
            ip: [prefix.0, prefix.1, rng.below(256) as u8, 1 + rng.below(254) as u8],
        });
        let is_bot = vocab::CLIENTS[client].device == Device::Bot;
        let mut day = rng.below(days as u64) as i64;
        for n in 0..session_counts.sample(&mut rng) + 1 {
            if n > 0 {
                // Returning visitors come back after a few days on average.
                day += 1 + rng.lognormal(2.0, 1.0) as i64;
            }
            if day >= days {
                break;
            }
            let start =
                options.start_ms + day * DAY_MS + hours.sample(&mut rng) as i64 * 3_600_000 + rng.range(0, 3_600_000);
            let source = if n > 0 && rng.chance(0.5) { 0 } else { sources.sample(&mut rng) as u8 };
            let pageviews = session_lengths.sample(&mut rng) + 1;
            add_session(&mut t, &errors, &mut rng, visitor, start, source, pageviews, is_bot);
        }
    }
    t.records.truncate(options.events as usize);
    // Stable: events of one page keep their order when timestamps tie.
    t.records.sort_by_key(|r| r.ts);
    t
}

/// Relative traffic per UTC hour (a European/US mix: a morning rise, an evening peak).
const HOUR_WEIGHTS: [f64; 24] = [
    2.0, 1.5, 1.2, 1.0, 1.0, 1.3, 2.0, 3.0, 4.2, 5.0, 5.4, 5.6, 5.6, 5.8, 6.0, 6.2, 6.0, 5.8, 5.9, 6.2, 6.0, 5.0, 3.8,
    2.8,
];

#[allow(clippy::too_many_arguments)]
fn add_session(
    t: &mut Traffic,
    errors: &Weighted,
    rng: &mut Rng,
    visitor: u32,
    start: i64,
    source: u8,
    pageviews: usize,
    is_bot: bool,
) {
    let project = t.visitors[visitor as usize].project as usize;
    let site = &t.sites[project];
    let session = t.sessions.len() as u32;
    t.sessions.push(Session { visitor, id: rng.next_u64(), source });
    let core_only = t.options.core_types_only;
    let mut ts = start;
    let mut path = site.landing(rng);
    let mut prev = u16::MAX;
    let exposed = !is_bot && rng.chance(0.25);
    let mut out: Vec<(i64, Kind)> = Vec::new();
    for k in 0..pageviews {
        if k > 0 {
            prev = path;
            path = site.next(path, rng);
        }
        let dwell_ms = (rng.lognormal(25_000.0, 1.1) as i64).clamp(1_500, 900_000);
        let clicks = if is_bot || core_only { 0 } else { rng.poisson(1.5).min(20) as u8 };
        let page = t.pages.len() as u32;
        t.pages.push(Page { session, path, prev_path: prev, id: rng.next_u64(), ts, dwell_ms, clicks });
        out.clear();
        out.push((ts, Kind::Pageview));
        let within = |rng: &mut Rng| ts + rng.range(300, dwell_ms);
        if !is_bot && !core_only {
            if k == 0 && exposed {
                out.push((ts + 50, Kind::Experiment(rng.below(2) as u8)));
            }
            for _ in 0..clicks {
                let what = if rng.chance(0.03) {
                    1
                } else if rng.chance(0.02) {
                    2
                } else {
                    0
                };
                out.push((within(rng), Kind::Interaction(what)));
            }
            if rng.chance(0.02) {
                out.push((within(rng), Kind::Error(errors.sample(rng) as u8)));
            }
            if site.has_form(path) && rng.chance(0.6) {
                let started = ts + rng.range(2_000, 20_000);
                out.push((started, Kind::Form(FormStep::Start)));
                let end = started + rng.range(5_000, 120_000);
                if rng.chance(0.15) {
                    out.push((end - 2_000, Kind::Form(FormStep::Error)));
                }
                out.push((end, Kind::Form(if rng.chance(0.65) { FormStep::Submit } else { FormStep::Abandon })));
            }
            if site.is_search(path) {
                out.push((ts + 200, Kind::Search));
                if rng.chance(0.5) {
                    out.push((within(rng), Kind::SearchClick));
                }
            }
            if rng.chance(0.9) {
                out.push((ts + dwell_ms, Kind::Engagement));
            }
            if rng.chance(0.7) {
                out.push((ts + dwell_ms, Kind::Vitals));
            }
        }
        if !is_bot {
            if let Some(custom) = site.custom_event(path, rng) {
                out.push((within(rng), Kind::Custom(custom)));
            }
        }
        t.records.extend(out.iter().map(|&(ts, kind)| Record { ts, page, kind }));
        ts += dwell_ms + rng.range(200, 3_000);
    }
}

/// Counts by event type, for the manifest written beside the NDJSON.
pub fn counts(t: &Traffic) -> Vec<(&'static str, u64)> {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for r in &t.records {
        let name = render::type_name(r.kind);
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(core_types_only: bool) -> Options {
        Options { events: 5_000, seed: 3, projects: 2, days: 7, start_ms: 1_790_812_800_000, core_types_only }
    }

    fn lines(t: &Traffic) -> Vec<String> {
        t.records
            .iter()
            .map(|r| {
                let mut line = String::new();
                render::render(&mut line, t, r);
                line
            })
            .collect()
    }

    #[test]
    fn same_seed_same_lines_exact_count_in_time_order() {
        let (a, b) = (generate(&options(false)), generate(&options(false)));
        assert_eq!(a.records.len(), 5_000);
        assert_eq!(lines(&a), lines(&b));
        assert!(a.records.windows(2).all(|w| w[0].ts <= w[1].ts));
        let other = generate(&Options { seed: 4, ..options(false) });
        assert_ne!(lines(&a), lines(&other));
    }

    #[test]
    fn every_line_is_json_with_the_fields_its_type_needs() {
        let t = generate(&options(false));
        let end = t.options.start_ms + 7 * DAY_MS + DAY_MS;
        for line in lines(&t) {
            let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
            assert!(v["project"].as_str().is_some_and(|p| p.starts_with("site")));
            assert!(v["url"].as_str().is_some_and(|u| u.starts_with("https://")));
            assert!(v["session_id"].is_string() && v["page_id"].is_string());
            assert!((t.options.start_ms..end).contains(&v["timestamp"].as_i64().expect("timestamp")));
            match v["type"].as_str().expect("type") {
                "event" => assert!(v["name"].is_string()),
                "vitals" => assert!(v["largest_contentful_paint_ms"].is_i64()),
                "error" => assert!(v["error_message"].is_string()),
                "form" => assert!(v["form_event"].is_string()),
                _ => {}
            }
        }
    }

    #[test]
    fn core_types_only_sends_pageviews_and_custom_events() {
        let t = generate(&options(true));
        assert!(t.records.iter().all(|r| matches!(r.kind, Kind::Pageview | Kind::Custom(_))));
    }
}
