//! `footfall-gen`: writes a deterministic, realistic event stream as native NDJSON (one event per
//! line, in time order) plus `<out>.meta.json` describing it (projects, counts by type, time span).
//! The same file feeds Footfall (through `ingest-bench --ndjson`) and every peer system.
//!
//! With `--parts N` the stream is instead cut into N consecutive files `<out>.partK` (each with its
//! own manifest, written when the part is complete), at most two of them on disk at a time: the
//! generator waits for a consumer to delete part K before it writes part K + 2. That is how
//! `benches/funnel-at-scale.sh` feeds 100 million events (≈ 50 GB of NDJSON) through a disk that
//! could not hold them.

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
    /// Write the stream as this many consecutive part files instead of one (see above).
    #[arg(long, default_value_t = 1)]
    parts: usize,
}

fn part_path(out: &std::path::Path, part: usize) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(format!(".part{part}"));
    PathBuf::from(name)
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
    let parts = args.parts.max(1);
    let mut bytes = 0u64;
    if parts == 1 {
        bytes = write_records(&t, &t.records, &args.out)?.bytes;
    } else {
        let per_part = t.records.len().div_ceil(parts);
        for (part, records) in t.records.chunks(per_part.max(1)).enumerate() {
            // Keep at most two parts on disk: wait until the consumer has taken part - 2.
            if part >= 2 {
                let consumed = part_path(&args.out, part - 2);
                while consumed.exists() {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
            let path = part_path(&args.out, part);
            let written = write_records(&t, records, &path)?;
            bytes += written.bytes;
            let manifest = json!({
                "events": records.len(),
                "seed": args.seed,
                "part": part,
                "parts": parts,
                "projects": t.sites.iter().map(|s| json!({"id": s.id, "domain": s.domain})).collect::<Vec<_>>(),
                "visitors": t.visitors.len(),
                "sessions": t.sessions.len(),
                "pageviews": written.pageviews,
                "bytes": written.bytes,
                "first_timestamp_ms": records.first().map(|r| r.ts),
                "last_timestamp_ms": records.last().map(|r| r.ts),
            });
            // Written last and renamed into place: its presence says the part is complete.
            let manifest_tmp = path.with_extension("meta.tmp");
            std::fs::write(&manifest_tmp, serde_json::to_string_pretty(&manifest)?)?;
            std::fs::rename(&manifest_tmp, manifest_path(&path))?;
            eprintln!("footfall-gen: part {part} of {parts}: {} events -> {}", records.len(), path.display());
        }
    }
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
    if parts > 1 {
        eprintln!("footfall-gen: the parts are {}.part0 ..", args.out.display());
    }
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

struct Written {
    bytes: u64,
    pageviews: u64,
}

fn write_records(t: &traffic::Traffic, records: &[traffic::Record], path: &std::path::Path) -> Result<Written> {
    let mut out =
        BufWriter::with_capacity(1 << 20, File::create(path).with_context(|| format!("creating {}", path.display()))?);
    let mut line = String::with_capacity(2048);
    let mut written = Written { bytes: 0, pageviews: 0 };
    for record in records {
        line.clear();
        render::render(&mut line, t, record);
        line.push('\n');
        written.bytes += line.len() as u64;
        written.pageviews += u64::from(matches!(record.kind, traffic::Kind::Pageview));
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(written)
}
