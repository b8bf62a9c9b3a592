//! Inputs shared by the micro-benchmarks: a request body from `footfall-gen` and stored events built
//! from it, so each hot path is measured on the same realistic traffic the comparison uses.

#![allow(dead_code)] // each bench uses a part

use footfall_benches::traffic::{self, render};
use footfall_engine::event::{Engagement, Event, Vitals};
use footfall_engine::{EventType, ProjectId, ShortId};

/// `n` events of generated traffic as one NDJSON body.
pub fn ndjson_body(n: u64, core_types_only: bool) -> Vec<u8> {
    let options =
        traffic::Options { events: n, seed: 7, projects: 1, days: 1, start_ms: 1_790_812_800_000, core_types_only };
    let t = traffic::generate(&options);
    let mut body = String::new();
    for record in &t.records {
        render::render(&mut body, &t, record);
        body.push('\n');
    }
    body.into_bytes()
}

/// `n` stored events of one (project, day) partition, shaped like enriched traffic: sessions of
/// five events with constant visitor, host, referrer and device, varying paths, a vitals or
/// engagement detail on some events as the tracker sends them.
pub fn stored_events(n: usize) -> Vec<Event> {
    let project = ProjectId::new("site1").expect("valid project id");
    (0..n)
        .map(|i| {
            let session = i / 5;
            let (event_type, name) = match i % 5 {
                0 => (EventType::Pageview, "pageview"),
                1 => (EventType::Engagement, "engagement"),
                2 => (EventType::Vitals, "vitals"),
                3 => (EventType::Pageview, "pageview"),
                _ => (EventType::Custom, "signup"),
            };
            let mut e = Event::new(project.clone(), 1_790_812_800_000 + (i as i64) * 997, event_type, name);
            e.session_id = Some(ShortId::from_bits((session as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_string());
            e.visitor_id =
                Some(ShortId::from_bits((session as u64 / 2).wrapping_mul(0xBF58_476D_1CE4_E5B9)).to_string());
            e.hostname = Some("site1.example.com".into());
            e.path = Some(format!("/docs/page-{}", (i / 2 * 7919) % 300));
            e.page_title = Some("Docs | Example".into());
            if session % 3 == 0 {
                e.referrer = Some("https://www.google.com/".into());
                e.referrer_domain = Some("google.com".into());
            }
            e.context.page_id =
                Some(ShortId::from_bits((i as u64 / 2).wrapping_mul(0x94D0_49BB_1331_11EB)).to_string());
            e.context.country_code = Some(["US", "DE", "GB", "FR"][session % 4].into());
            e.context.device_type = Some(["desktop", "mobile"][session % 2].into());
            e.context.browser_name = Some(["Chrome", "Safari", "Firefox"][session % 3].into());
            match event_type {
                EventType::Vitals => {
                    e.vitals = Some(Box::new(Vitals {
                        largest_contentful_paint_ms: Some(1_200 + (i as i32 * 37) % 3_000),
                        interaction_to_next_paint_ms: Some(80 + (i as i32 * 13) % 400),
                        cumulative_layout_shift: Some((i % 100) as f64 / 1_000.0),
                        ..Vitals::default()
                    }))
                }
                EventType::Engagement => {
                    e.engagement = Some(Box::new(Engagement {
                        time_on_page_ms: Some(5_000 + (i as i64 * 101) % 60_000),
                        scroll_percentage: Some((i % 21) as i32 * 5),
                        ..Engagement::default()
                    }))
                }
                EventType::Custom => e.props = Some(r#"{"plan":"pro"}"#.into()),
                _ => {}
            }
            e
        })
        .collect()
}
