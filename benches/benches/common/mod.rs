//! Inputs shared by the micro-benchmarks: a request body from `footfall-gen` and stored events built
//! from it, so each hot path is measured on the same realistic traffic the comparison uses.

#![allow(dead_code)] // each bench uses a part

use footfall_benches::traffic::{self, render};
use footfall_engine::event::Event;
use footfall_engine::{EventType, ProjectId};

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

/// `n` stored events of one (project, day) partition, shaped like enriched pageviews: a handful of
/// sessions each with constant visitor, host and referrer, varying paths.
pub fn stored_events(n: usize) -> Vec<Event> {
    let project = ProjectId::new("site1").expect("valid project id");
    (0..n)
        .map(|i| {
            let session = i / 5;
            Event {
                project: project.clone(),
                timestamp_ms: 1_790_812_800_000 + (i as i64) * 997,
                event_type: if i % 10 == 9 { EventType::Custom } else { EventType::Pageview },
                name: if i % 10 == 9 { "signup".into() } else { "pageview".into() },
                session_id: Some(format!("{:016x}", session.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
                visitor_id: Some(format!("{:016x}", (session / 2).wrapping_mul(0xBF58_476D_1CE4_E5B9))),
                hostname: Some("site1.example.com".into()),
                path: Some(format!("/docs/page-{}", (i * 7919) % 300)),
                query_string: None,
                page_title: Some("Docs | Example".into()),
                referrer: (session % 3 == 0).then(|| "https://www.google.com/".to_string()),
                referrer_domain: (session % 3 == 0).then(|| "google.com".to_string()),
                utm_source: (session % 7 == 0).then(|| "newsletter".to_string()),
                utm_medium: (session % 7 == 0).then(|| "email".to_string()),
                utm_campaign: None,
                utm_term: None,
                utm_content: None,
                props: (i % 10 == 9).then(|| r#"{"plan":"pro"}"#.to_string()),
                revenue_amount: None,
                revenue_currency: None,
                interactive: true,
            }
        })
        .collect()
}
