//! `footfall-gen`: writes a deterministic, realistic event stream as native NDJSON (one event per
//! line, in time order) plus `<out>.meta.json` describing it (projects, counts by type, time span).
//! The same file feeds Footfall (through `ingest-bench --ndjson`) and every peer system.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Parser;
use footfall_benches::ndjson::manifest_path;
use footfall_benches::traffic::{self, render};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "footfall-gen", about = "Deterministic realistic web traffic as Footfall NDJSON")]
struct Args {
    /// Events to write (exactly this many lines).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Projects (sites); the first is the largest.
    #[arg(long, default_value_t = 3)]
    projects: usize,
    /// Days of traffic.
    #[arg(long, default_value_t = 28)]
    days: u32,
    /// First UTC day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-10-01")]
    start_day: String,
    /// Only `pageview` and `event` types (for a server without the event model).
    #[arg(long)]
    core_types_only: bool,
    /// Output NDJSON file.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let start_day = NaiveDate::parse_from_str(&args.start_day, "%Y-%m-%d").context("--start-day")?;
    let start_ms = start_day.and_hms_opt(0, 0, 0).context("midnight")?.and_utc().timestamp_millis();
    let options = traffic::Options {
        events: args.events,
        seed: args.seed,
        projects: args.projects,
        days: args.days,
        start_ms,
        core_types_only: args.core_types_only,
    };
    let t = traffic::generate(&options);
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?,
    );
    let mut line = String::with_capacity(2048);
    let mut bytes = 0u64;
    for record in &t.records {
        line.clear();
        render::render(&mut line, &t, record);
        line.push('\n');
        bytes += line.len() as u64;
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    let counts = traffic::counts(&t);
    let pageviews = counts.iter().find(|(n, _)| *n == "pageview").map_or(0, |c| c.1);
    let manifest = json!({
        "events": t.records.len(),
        "seed": args.seed,
        "days": args.days,
        "start_day": args.start_day,
        "core_types_only": args.core_types_only,
        "projects": t.sites.iter().map(|s| json!({"id": s.id, "domain": s.domain})).collect::<Vec<_>>(),
        "visitors": t.visitors.len(),
        "sessions": t.sessions.len(),
        "pageviews": pageviews,
        "counts": counts.iter().map(|(n, c)| json!({"type": n, "events": c})).collect::<Vec<_>>(),
        "bytes": bytes,
        "first_timestamp_ms": t.records.first().map(|r| r.ts),
        "last_timestamp_ms": t.records.last().map(|r| r.ts),
    });
    std::fs::write(manifest_path(&args.out), serde_json::to_string_pretty(&manifest)?)?;
    eprintln!(
        "footfall-gen: {} events ({} pageviews, {} sessions, {} visitors, {} projects, {} days), {:.1} MiB in {:.1}s -> {}",
        t.records.len(),
        pageviews,
        t.sessions.len(),
        t.visitors.len(),
        t.sites.len(),
        args.days,
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
