//! Renders one event record as a line of native NDJSON (spec §2). Field values that are not part of
//! the traffic's structure (vitals, scroll depth, element positions...) are drawn from a generator
//! seeded by the page and the record, so rendering is deterministic in any order.

use footfall_engine::ShortId;
use std::fmt::Write as _;

use super::rng::{Rng, Weighted};
use super::site::{CUSTOM_EVENTS, CUSTOM_PURCHASE, CUSTOM_SIGNUP};
use super::vocab::{self, Device};
use super::{FormStep, Kind, Record, Traffic};

pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Pageview => "pageview",
        Kind::Engagement => "engagement",
        Kind::Vitals => "vitals",
        Kind::Interaction(_) => "interaction",
        Kind::Error(_) => "error",
        Kind::Custom(_) => "event",
        Kind::Form(_) => "form",
        Kind::Search => "search",
        Kind::SearchClick => "search_click",
        Kind::Experiment(_) => "experiment",
    }
}

/// A minimal JSON object writer: the generator writes tens of millions of lines, and building
/// `serde_json::Value`s for each would dominate its run time.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        json_str(self.out, value);
    }

    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    fn num(&mut self, key: &str, value: f64, decimals: usize) {
        self.key(key);
        let _ = write!(self.out, "{value:.decimals$}");
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    fn close(self) {
        self.out.push('}');
    }
}

pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const DESKTOP_SCREENS: &[(i64, i64)] = &[(1920, 1080), (1536, 864), (2560, 1440), (1440, 900), (1366, 768)];
const MOBILE_SCREENS: &[(i64, i64)] = &[(390, 844), (393, 873), (412, 915), (375, 667), (360, 800)];
const TABLET_SCREENS: &[(i64, i64)] = &[(820, 1180), (768, 1024), (800, 1280)];
const PLANS: &[&str] = &[r#"{"plan":"free"}"#, r#"{"plan":"pro"}"#, r#"{"plan":"team"}"#];
const FORM_ERRORS: &[&str] = &[r#"["Please enter a valid email address"]"#, r#"["This field is required"]"#];
const EXPERIMENTS: &[(&str, [&str; 2])] = &[
    ("pricing-page-v2", ["control", "annual-first"]),
    ("checkout-one-step", ["control", "one-step"]),
    ("hero-copy", ["control", "benefit-led"]),
];

/// Renders `record` (one line, without the newline) into `out`.
pub fn render(out: &mut String, t: &Traffic, record: &Record) {
    let page = &t.pages[record.page as usize];
    let session = &t.sessions[page.session as usize];
    let visitor = &t.visitors[session.visitor as usize];
    let site = &t.sites[visitor.project as usize];
    let client = &vocab::CLIENTS[visitor.client as usize];
    let country = &vocab::COUNTRIES[visitor.country as usize];
    let source = &vocab::SOURCES[session.source as usize];
    let landing = page.prev_path == u16::MAX;
    let path = &site.paths[page.path as usize];
    let mut rng = Rng::derive(page.id, record.ts as u64 ^ kind_tag(record.kind));

    let mut o = Obj::open(out);
    o.str("project", &site.id);
    o.str("type", type_name(record.kind));
    o.int("timestamp", record.ts);
    let query = if landing { source.query } else { "" };
    o.str("url", &format!("https://{}{}{}", site.domain, path, query));
    o.str("session_id", &ShortId::from_bits(session.id).to_string());
    if !t.options.core_types_only {
        o.str("page_id", &ShortId::from_bits(page.id).to_string());
    }
    o.str("ip", &format!("{}.{}.{}.{}", visitor.ip[0], visitor.ip[1], visitor.ip[2], visitor.ip[3]));
    let version = client.versions[visitor.version as usize];
    o.str("user_agent", &client.template.replace("{v}", version));
    match record.kind {
        Kind::Pageview => {
            let referrer = if landing {
                source.referrer.map(str::to_string)
            } else {
                Some(format!("https://{}{}", site.domain, site.paths[page.prev_path as usize]))
            };
            if let Some(r) = referrer {
                o.str("referrer", &r);
            }
            o.str("title", &site.titles[page.path as usize]);
            if !t.options.core_types_only {
                pageview_context(&mut o, t, session.visitor, client.device, country);
            }
        }
        Kind::Custom(event) => {
            o.str("name", CUSTOM_EVENTS[event as usize]);
            if let Some(r) = source.referrer.filter(|_| landing) {
                o.str("referrer", r);
            }
            custom_fields(&mut o, event, &mut rng);
        }
        Kind::Engagement => {
            let time = page.dwell_ms;
            let active = (time as f64 * (0.25 + 0.7 * rng.unit())) as i64;
            o.int("time_on_page_ms", time);
            o.int("active_time_ms", active);
            o.int("idle_time_ms", time - active);
            o.int("scroll_percentage", ((rng.unit().sqrt() * 100.0) as i64 / 5 * 5).min(100));
            o.int("click_count", page.clicks as i64);
            o.int("rage_clicks", if rng.chance(0.03) { 1 + rng.below(3) as i64 } else { 0 });
            o.int("copy_events", if rng.chance(0.05) { 1 } else { 0 });
        }
        Kind::Vitals => vitals(&mut o, path, client.device, &mut rng),
        Kind::Interaction(what) => {
            let (selector, text) = *rng.pick(vocab::CLICK_TARGETS);
            o.str("interaction_type", ["click", "rage_click", "copy"][what as usize % 3]);
            o.str("element_selector", selector);
            if !text.is_empty() {
                o.str("element_text", text);
            }
            o.raw("element_position", &format!("{{\"x\":{},\"y\":{}}}", rng.below(1400), rng.below(3000)));
        }
        Kind::Error(which) => {
            let e = &vocab::ERRORS[which as usize];
            o.str("error_type", e.error_type);
            o.str("error_message", e.message);
            if !e.source_file.is_empty() {
                o.str(
                    "error_stack",
                    &format!(
                        "{}\n    at render (https://{}{}:{}:{})\n    at commitRoot (https://{}/assets/vendor.0c3b9f.js:1:88412)",
                        e.message, site.domain, e.source_file, e.line, e.column, site.domain
                    ),
                );
                o.str("source_file", &format!("https://{}{}", site.domain, e.source_file));
                o.int("line_number", e.line as i64);
                o.int("column_number", e.column as i64);
            }
        }
        Kind::Form(step) => form_fields(&mut o, path, step, &mut rng),
        Kind::Search | Kind::SearchClick => {
            let terms = Weighted::zipf(vocab::SEARCH_TERMS.len(), 1.0);
            let mut term_rng = Rng::derive(page.id, 7);
            let term = vocab::SEARCH_TERMS[terms.sample(&mut term_rng)];
            // Some people type capitals and stray spaces: normalization has something to do.
            let query = if term_rng.chance(0.2) { format!(" {} ", term.to_uppercase()) } else { term.to_string() };
            o.str("search_query", &query);
            if record.kind == Kind::Search {
                o.int("results_count", if term_rng.chance(0.1) { 0 } else { 1 + term_rng.below(60) as i64 });
                o.str("search_location", if term_rng.chance(0.7) { "header" } else { "page" });
            } else {
                let position = 1 + rng.below(10) as i64;
                o.int("clicked_position", position);
                o.str("clicked_url", &format!("https://{}{}", site.domain, site.paths[20 + position as usize]));
            }
        }
        Kind::Experiment(variant) => {
            let (id, variants) = EXPERIMENTS[visitor.project as usize % EXPERIMENTS.len()];
            o.str("experiment_id", id);
            o.str("variant_id", variants[variant as usize % 2]);
        }
    }
    o.close();
}

fn kind_tag(kind: Kind) -> u64 {
    match kind {
        Kind::Pageview => 1,
        Kind::Engagement => 2,
        Kind::Vitals => 3,
        Kind::Interaction(w) => 4 + ((w as u64) << 8),
        Kind::Error(w) => 5 + ((w as u64) << 8),
        Kind::Custom(w) => 6 + ((w as u64) << 8),
        Kind::Form(s) => 7 + ((s as u64) << 8),
        Kind::Search => 8,
        Kind::SearchClick => 9,
        Kind::Experiment(w) => 10 + ((w as u64) << 8),
    }
}

/// Screen, viewport, language, time zone and custom dimensions: fixed per visitor.
fn pageview_context(o: &mut Obj, t: &Traffic, visitor: u32, device: Device, country: &vocab::Country) {
    let mut rng = Rng::derive(t.options.seed ^ 0x5C12_EE11, visitor as u64);
    let screens = match device {
        Device::Mobile => MOBILE_SCREENS,
        Device::Tablet => TABLET_SCREENS,
        Device::Desktop | Device::Bot => DESKTOP_SCREENS,
    };
    let (w, h) = *rng.pick(screens);
    o.int("screen_width", w);
    o.int("screen_height", h);
    let chrome = if device == Device::Desktop { (rng.below(200) as i64, 80 + rng.below(60) as i64) } else { (0, 120) };
    o.int("viewport_width", w - chrome.0);
    o.int("viewport_height", h - chrome.1);
    o.str("language", if rng.chance(0.15) { "en-US" } else { country.language });
    o.str("timezone", country.timezone);
    if rng.chance(0.3) {
        o.raw(
            "dimensions",
            if rng.chance(0.3) { r#"{"cd_user_type":"premium"}"# } else { r#"{"cd_user_type":"free"}"# },
        );
    }
}

fn custom_fields(o: &mut Obj, event: u8, rng: &mut Rng) {
    match event {
        CUSTOM_SIGNUP => o.raw("props", PLANS[rng.below(PLANS.len() as u64) as usize]),
        CUSTOM_PURCHASE => {
            let cents = 990 + rng.below(20_000) as i64;
            o.raw("props", &format!(r#"{{"items":{},"coupon":{}}}"#, 1 + rng.below(4), rng.chance(0.2)));
            o.raw(
                "revenue",
                &format!(
                    r#"{{"amount":"{}.{:02}","currency":"{}"}}"#,
                    cents / 100,
                    cents % 100,
                    if rng.chance(0.7) { "EUR" } else { "USD" }
                ),
            );
        }
        _ => {
            let props = [
                r#"{"file":"whitepaper.pdf"}"#,
                r#"{"url":"https://github.com/footfall/footfall"}"#,
                r#"{"video":"intro","seconds":42}"#,
                r#"{"list":"weekly"}"#,
                r#"{"sku":"SKU-1042","price":49.9}"#,
            ];
            o.raw("props", props[(event as usize + rng.below(2) as usize) % props.len()]);
        }
    }
}

fn vitals(o: &mut Obj, path: &str, device: Device, rng: &mut Rng) {
    let slow = if device == Device::Desktop { 1.0 } else { 1.7 };
    let heavy = if path.starts_with("/products") || path == "/" { 1.4 } else { 1.0 };
    let ttfb = rng.lognormal(280.0 * slow, 0.6);
    let fcp = ttfb + rng.lognormal(700.0 * slow * heavy, 0.5);
    let lcp = fcp + rng.lognormal(500.0 * slow * heavy, 0.8);
    let dcl = fcp + rng.lognormal(200.0, 0.5);
    let cls = if rng.chance(0.45) { 0.0 } else { (rng.lognormal(0.04 * heavy, 1.2) * 10_000.0).round() / 10_000.0 };
    o.int("dom_content_loaded_ms", dcl as i64);
    o.int("page_load_ms", (lcp + rng.lognormal(400.0, 0.6)) as i64);
    o.int("first_paint_ms", (fcp * 0.95) as i64);
    o.int("first_contentful_paint_ms", fcp as i64);
    o.int("largest_contentful_paint_ms", lcp as i64);
    o.int("first_input_delay_ms", rng.lognormal(12.0 * slow, 0.9) as i64);
    o.num("cumulative_layout_shift", cls.min(3.0), 4);
    o.int("time_to_first_byte_ms", ttfb as i64);
    o.int("interaction_to_next_paint_ms", rng.lognormal(140.0 * slow, 0.7) as i64);
    o.int("resource_count", 15 + rng.below(120) as i64);
    o.int("transfer_size_bytes", rng.lognormal(900_000.0 * heavy, 0.6) as i64);
}

fn form_fields(o: &mut Obj, path: &str, step: FormStep, rng: &mut Rng) {
    let (id, name, fields): (&str, &str, &[&str]) = match path {
        "/signup" => ("signup-form", "Sign up", &["email", "password", "company"]),
        "/checkout" => ("checkout-form", "Checkout", &["email", "name", "address", "city", "zip", "card"]),
        _ => ("contact-form", "Contact us", &["name", "email", "message"]),
    };
    o.str(
        "form_event",
        match step {
            FormStep::Start => "start",
            FormStep::Submit => "submit",
            FormStep::Abandon => "abandon",
            FormStep::Error => "error",
        },
    );
    o.str("form_id", id);
    o.str("form_name", name);
    let total = fields.len() as i64;
    let touched = match step {
        FormStep::Start => 1,
        FormStep::Submit => total,
        FormStep::Abandon | FormStep::Error => 1 + rng.below(total as u64) as i64,
    };
    o.int("fields_total", total);
    o.int("fields_interacted", touched);
    o.int("fields_completed", if step == FormStep::Submit { total } else { touched - 1 });
    o.int("time_to_first_field_ms", rng.range(800, 9_000));
    if step == FormStep::Submit {
        o.int("time_to_submit_ms", rng.range(8_000, 180_000));
    }
    if step != FormStep::Start {
        let mut list = String::from("[");
        for (i, f) in fields.iter().take(touched as usize).enumerate() {
            if i > 0 {
                list.push(',');
            }
            let _ = write!(
                list,
                r#"{{"field_name":"{f}","time_spent_ms":{},"changes_count":{}}}"#,
                rng.range(500, 30_000),
                1 + rng.below(4)
            );
        }
        list.push(']');
        o.raw("field_interactions", &list);
    }
    if step == FormStep::Error {
        o.raw("error_messages", FORM_ERRORS[rng.below(FORM_ERRORS.len() as u64) as usize]);
    }
}
