//! `ingest-bench`: how fast Footfall acknowledges events durably, what the server costs in memory
//! while it does, and how small the stored result is.
//!
//! Batch mode (default) pre-generates a seeded, realistic event stream (see `workload.rs`), renders
//! it to NDJSON bodies, then sends them to `POST /api/v1/events` over `--connections` keep-alive
//! connections and measures: acknowledged events per second of wall time, per-request latency,
//! the server's peak RSS; then forces a flush and a compaction and measures bytes of Parquet (and of
//! session index) per stored event, and checks with SQL that every acknowledged event is there.
//!
//! `--beacons` sends single Plausible-style events to `POST /api/event` for `--duration` seconds
//! over many connections instead, as browsers do, through a lean keep-alive client (`http1.rs`) so
//! that the load generator does not take the CPU the server is measured on.

mod http1;
mod server;
mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use crate::server::{cpu_seconds, disk_usage, machine_busy_seconds, memory, DiskUsage, Server, SpawnOptions};

/// Human-readable lines: stdout normally, stderr under --json so stdout stays one JSON line.
macro_rules! say {
    ($json:expr, $($arg:tt)*) => {
        if $json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

#[derive(Parser, Debug)]
#[command(name = "ingest-bench", about = "Ingest benchmark for Footfall")]
struct Args {
    /// The footfall binary to start [default: $CARGO_TARGET_DIR/release/footfall, else target/release/footfall].
    #[arg(long)]
    footfall_bin: Option<PathBuf>,
    /// Use a server that is already running instead of starting one (needs --token).
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// Admin token of the --url server.
    #[arg(long)]
    token: Option<String>,
    /// Pid of the --url server, for RSS and CPU figures.
    #[arg(long, requires = "url")]
    pid: Option<u32>,
    /// Data directory of the --url server (storage assumed at <dir>/storage), for the size figures.
    #[arg(long, requires = "url")]
    data_dir: Option<PathBuf>,
    /// Where to create the temporary data directory of a server started here [default: the system temp dir].
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep the temporary data directory (its path is printed).
    #[arg(long)]
    keep_data: bool,
    /// Measure storage right after the final flush, without first running the server's compaction
    /// (which a running server does every minute anyway).
    #[arg(long)]
    no_compact: bool,
    /// Extra flag for `footfall serve` (repeatable), e.g. --server-arg=--flush-bytes=256MiB.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Project to create and write to.
    #[arg(long, default_value = "bench")]
    project: String,
    /// The project's domain (beacons are sent for it).
    #[arg(long, default_value = "bench.example")]
    domain: String,
    /// Seed of the event generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Events to send (batch mode).
    #[arg(long, default_value_t = 2_000_000)]
    events: usize,
    /// Events per request (batch mode).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Concurrent connections [default: 8, or 64 with --beacons].
    #[arg(long)]
    connections: Option<usize>,
    /// Size of the visitor pool (distinct IP + user-agent pairs).
    #[arg(long, default_value_t = 100_000)]
    visitors: usize,
    /// Events are dated within this many hours before now.
    #[arg(long, default_value_t = 4.0)]
    hours: f64,
    /// Send this NDJSON file (from `footfall-gen`; its `.meta.json` names the projects, which are
    /// created) instead of generating traffic here; sent with the admin token, as it spans projects.
    #[arg(long, conflicts_with = "beacons")]
    ndjson: Option<PathBuf>,
    /// Send single Plausible-style events to /api/event instead of batches.
    #[arg(long)]
    beacons: bool,
    /// How long to send beacons, in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Print the human summary on stderr and one JSON line on stdout.
    #[arg(long)]
    json: bool,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0)]
    progress: f64,
}

/// Latency samples in microseconds.
#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn summary(mut self) -> Value {
        self.0.sort_unstable();
        let pick = |q: f64| -> f64 {
            if self.0.is_empty() {
                return 0.0;
            }
            let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
            self.0[rank - 1] as f64 / 1000.0
        };
        let mean =
            if self.0.is_empty() { 0.0 } else { self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0 };
        json!({
            "requests": self.0.len(),
            "p50_ms": round(pick(0.50), 3),
            "p90_ms": round(pick(0.90), 3),
            "p99_ms": round(pick(0.99), 3),
            "max_ms": round(pick(1.0), 3),
            "mean_ms": round(mean, 3),
        })
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Samples the server's memory while traffic runs; the kernel's `VmHWM` is the authoritative peak,
/// the sampled `VmRSS` maximum is a cross-check.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    max_rss: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    fn start(pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_rss = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let stop = stop.clone();
            let max_rss = max_rss.clone();
            async move {
                let Some(pid) = pid else { return };
                while !stop.load(Ordering::Relaxed) {
                    if let Some((_, rss)) = memory(pid) {
                        max_rss.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { stop, max_rss, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.max_rss.load(Ordering::Relaxed)
    }
}

/// CPU time over the measured interval: the server's, this load generator's, and everything else
/// on the machine (other processes compete for the same cores and spoil the figures).
struct CpuMeter {
    pid: Option<u32>,
    server: Option<f64>,
    client: Option<f64>,
    machine: Option<f64>,
}

struct CpuUse {
    server: Option<f64>,
    client: Option<f64>,
    other: Option<f64>,
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> Self {
        Self {
            pid,
            server: pid.and_then(|p| cpu_seconds(&p.to_string())),
            client: cpu_seconds("self"),
            machine: machine_busy_seconds(),
        }
    }

    fn finish(self) -> CpuUse {
        let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round(b - a, 2));
        let server = delta(self.server, self.pid.and_then(|p| cpu_seconds(&p.to_string())));
        let client = delta(self.client, cpu_seconds("self"));
        let machine = delta(self.machine, machine_busy_seconds());
        // Without the server's pid its CPU would show up as "other", so say nothing then.
        let other = machine
            .filter(|_| server.is_some())
            .map(|m| round((m - server.unwrap_or(0.0) - client.unwrap_or(0.0)).max(0.0), 2));
        CpuUse { server, client, other }
    }
}

impl CpuUse {
    fn print(&self, j: bool, wall: f64) {
        if let (Some(s), Some(c)) = (self.server, self.client) {
            say!(
                j,
                "CPU         server {s:.1} s ({:.2} cores), load generator {c:.1} s ({:.2} cores)",
                s / wall,
                c / wall
            );
        }
        if let Some(o) = self.other {
            say!(j, "            other processes {o:.1} s ({:.2} cores)", o / wall);
            if o / wall > 0.2 {
                say!(
                    j,
                    "WARNING     other processes used {:.2} cores during the measurement: figures are not clean",
                    o / wall
                );
            }
        }
    }
}

fn progress_task(
    every: f64,
    label: &'static str,
    done: Arc<AtomicU64>,
    pid: Option<u32>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if every <= 0.0 {
            return;
        }
        let start = Instant::now();
        let mut last = (start, 0u64);
        loop {
            tokio::time::sleep(Duration::from_secs_f64(every)).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            let n = done.load(Ordering::Relaxed);
            let rate = (n - last.1) as f64 / (now - last.0).as_secs_f64();
            let rss =
                pid.and_then(memory).map_or(String::new(), |(_, rss)| format!(", server RSS {:.0} MiB", mib(rss)));
            eprintln!(
                "  {:>6.1}s  {n:>10} {label}  {rate:>10.0}/s in the last {every}s{rss}",
                (now - start).as_secs_f64()
            );
            last = (now, n);
        }
    })
}

fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(300))
        .build()?)
}

fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
}

#[derive(Default)]
struct SendTotals {
    acked: AtomicU64,
    rejected: AtomicU64,
    throttled: AtomicU64,
    failed_requests: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

impl SendTotals {
    fn error(&self, message: String) {
        self.failed_requests.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.first_errors.lock().unwrap();
        if errors.len() < 5 {
            errors.push(message);
        }
    }
}

struct Bench {
    args: Args,
    server: Server,
    ingest_token: String,
    machine: Value,
}

impl Bench {
    /// The project whose rows are counted: all of them when an NDJSON file spans several.
    fn count_scope(&self) -> Option<&str> {
        if self.args.ndjson.is_some() {
            None
        } else {
            Some(&self.args.project)
        }
    }
}

fn machine_info() -> Value {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()).with_memory(MemoryRefreshKind::everything()),
    );
    json!({
        "cpu": sys.cpus().first().map(|c| c.brand().trim().to_string()).unwrap_or_default(),
        "logical_cpus": sys.cpus().len(),
        "memory_bytes": sys.total_memory(),
        "kernel": System::kernel_version(),
        "os": System::long_os_version(),
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let json_out = args.json;
    match run(args).await {
        Ok((report, ok)) => {
            if json_out {
                println!("{report}");
            }
            if !ok {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("ingest-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<(Value, bool)> {
    let machine = machine_info();
    let server = match &args.url {
        Some(url) => Server::external(url, args.token.as_deref().unwrap_or_default(), args.pid, args.data_dir.clone())?,
        None => {
            let binary = args.footfall_bin.clone().unwrap_or_else(|| {
                let target =
                    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
                target.join("release").join("footfall")
            });
            Server::spawn(SpawnOptions {
                binary: &binary,
                temp_parent: args.tmp_dir.as_deref(),
                keep_data: args.keep_data,
                extra_args: &args.server_args,
            })
            .await?
        }
    };
    let ingest_token = match &args.ndjson {
        Some(file) => {
            let manifest = footfall_benches::ndjson::read_manifest(file)?;
            for p in &manifest.projects {
                server.create_project(&p.id, &p.domain).await?;
            }
            server.admin_token.clone()
        }
        None => server.prepare_project(&args.project, &args.domain).await?,
    };
    let mut ctx = Bench { args, server, ingest_token, machine };
    let result = if ctx.args.beacons { run_beacons(&ctx).await } else { run_batches(&ctx).await };
    let stopped = ctx.server.stop(Duration::from_secs(120));
    let (report, ok) = result?;
    if let Err(e) = stopped {
        eprintln!("warning: {e:#}");
    }
    Ok((report, ok))
}

/// What both modes do after the traffic: flush, measure storage, check the count.
struct AfterTraffic {
    flush_secs: f64,
    flush_report: Value,
    /// Seconds and report of the compaction run after the flush (none with --no-compact).
    compaction: Option<(f64, Value)>,
    stored: Option<DiskUsage>,
    count: u64,
    peak_rss_after_flush: Option<u64>,
}

async fn flush_and_check(ctx: &Bench, before: Option<DiskUsage>, count_before: u64) -> Result<AfterTraffic> {
    let started = Instant::now();
    let flush_report = ctx.server.flush().await?;
    let flush_secs = started.elapsed().as_secs_f64();
    // Storage is measured as a running server keeps it: small files merged. The second run deletes
    // the files the first replaced (nothing reads them by then).
    let compaction = if ctx.args.no_compact {
        None
    } else {
        let started = Instant::now();
        match ctx.server.compact().await? {
            Some(report) => {
                ctx.server.compact().await?;
                Some((started.elapsed().as_secs_f64(), report))
            }
            None => None,
        }
    };
    let stored = match (ctx.server.storage_dir(), before) {
        (Some(dir), Some(before)) => Some(disk_usage(&dir)?.minus(before)),
        _ => None,
    };
    let count = ctx.server.count(ctx.count_scope()).await? - count_before;
    let peak_rss_after_flush = ctx.server.pid.and_then(memory).map(|(hwm, _)| hwm);
    Ok(AfterTraffic { flush_secs, flush_report, compaction, stored, count, peak_rss_after_flush })
}

async fn measure_before(ctx: &Bench) -> Result<(Option<DiskUsage>, u64)> {
    // A server of our own is empty; a running one may hold data already, so measure differences.
    if ctx.args.url.is_some() && ctx.server.storage_dir().is_some() {
        ctx.server.flush().await?;
    }
    let disk = ctx.server.storage_dir().map(|d| disk_usage(&d)).transpose()?;
    let count = ctx.server.count(ctx.count_scope()).await?;
    Ok((disk, count))
}

fn storage_json(stored: Option<DiskUsage>, events: u64) -> Value {
    match stored {
        None => Value::Null,
        Some(s) => {
            let per = |b: u64| {
                if events == 0 {
                    0.0
                } else {
                    round(b as f64 / events as f64, 2)
                }
            };
            json!({
                "parquet_bytes": s.parquet_bytes,
                "parquet_files": s.parquet_files,
                "index_bytes": s.index_bytes,
                "index_files": s.index_files,
                "other_bytes": s.other_bytes,
                "bytes_per_event_parquet": per(s.parquet_bytes),
                "bytes_per_event_with_index": per(s.parquet_bytes + s.index_bytes),
            })
        }
    }
}

async fn run_batches(ctx: &Bench) -> Result<(Value, bool)> {
    let args = &ctx.args;
    let j = args.json;
    let connections = args.connections.unwrap_or(8).max(1);
    if args.batch_size == 0 || args.events == 0 {
        bail!("--events and --batch-size must be positive");
    }
    say!(
        j,
        "footfall ingest benchmark: {} events, {} per request, {} connections, seed {}",
        args.ndjson.as_ref().map_or(args.events.to_string(), |f| f.display().to_string()),
        args.batch_size,
        connections,
        args.seed
    );
    say!(j, "server: {} (pid {:?}, data {:?})", ctx.server.base, ctx.server.pid, ctx.server.data_dir);

    let gen_started = Instant::now();
    let work = match &args.ndjson {
        Some(file) => {
            let (file, batch_size) = (file.clone(), args.batch_size);
            tokio::task::spawn_blocking(move || workload::from_ndjson(&file, batch_size))
                .await
                .context("reader panicked")??
        }
        None => {
            let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
            let seed = args.seed;
            let (total, batch_size, visitors, hours, project) =
                (args.events, args.batch_size, args.visitors, args.hours, args.project.clone());
            tokio::task::spawn_blocking(move || {
                workload::generate(seed, total, batch_size, visitors, hours, &project, now_ms)
            })
            .await
            .context("generator panicked")?
        }
    };
    say!(
        j,
        "{} {} events ({} pageviews, {} other, {} sessions) in {} requests, {:.1} MiB of NDJSON ({:.0} B/event), in {:.1}s",
        if args.ndjson.is_some() { "read" } else { "generated" },
        work.events,
        work.pageviews,
        work.custom_events,
        work.sessions,
        work.batches.len(),
        mib(work.body_bytes as u64),
        work.body_bytes as f64 / work.events as f64,
        gen_started.elapsed().as_secs_f64()
    );

    let (disk_before, count_before) = measure_before(ctx).await?;
    let batches = Arc::new(work.batches);
    let next = Arc::new(AtomicUsize::new(0));
    let totals = Arc::new(SendTotals::default());
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let url = format!("{}/api/v1/events", ctx.server.base);

    let cpu = CpuMeter::start(ctx.server.pid);
    let sampler = MemorySampler::start(ctx.server.pid);
    let stop_progress = Arc::new(AtomicBool::new(false));
    let acked_progress = Arc::new(AtomicU64::new(0));
    let progress =
        progress_task(args.progress, "events acked", acked_progress.clone(), ctx.server.pid, stop_progress.clone());

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = http_client()?;
        let (batches, next, totals, latencies, url, token, acked_progress) = (
            batches.clone(),
            next.clone(),
            totals.clone(),
            latencies.clone(),
            url.clone(),
            ctx.ingest_token.clone(),
            acked_progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(batches.len() / connections + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                loop {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(batch.body.clone())
                        .send()
                        .await;
                    let response = match response {
                        Ok(r) => r,
                        Err(e) => {
                            totals.error(format!("request {i}: {e}"));
                            break;
                        }
                    };
                    let status = response.status();
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                        totals.throttled.fetch_add(1, Ordering::Relaxed);
                        let wait = retry_after(&response);
                        let _ = response.bytes().await;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let body = response.bytes().await;
                    let elapsed = sent.elapsed();
                    match body {
                        Ok(body) if status.is_success() => {
                            mine.push(elapsed.as_micros() as u64);
                            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let accepted = v["accepted"].as_u64().unwrap_or(0);
                            let rejected = v["rejected"].as_array().map_or(0, Vec::len) as u64;
                            totals.acked.fetch_add(accepted, Ordering::Relaxed);
                            acked_progress.fetch_add(accepted, Ordering::Relaxed);
                            if rejected > 0 {
                                totals.rejected.fetch_add(rejected, Ordering::Relaxed);
                                if let Some(first) = v["rejected"].get(0) {
                                    totals.error(format!("request {i}: {rejected} rejected, e.g. {first}"));
                                }
                            } else if accepted != batch.events as u64 {
                                totals.error(format!("request {i}: accepted {accepted} of {}: {v}", batch.events));
                            }
                        }
                        Ok(body) => totals.error(format!("request {i}: {status} {}", String::from_utf8_lossy(&body))),
                        Err(e) => totals.error(format!("request {i}: {status}, reading the answer: {e}")),
                    }
                    break;
                }
            }
            latencies.lock().unwrap().0.extend(mine);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed().as_secs_f64();
    stop_progress.store(true, Ordering::Relaxed);
    progress.abort();
    let max_sampled_rss = sampler.finish().await;
    let peak_rss_ingest = ctx.server.pid.and_then(memory).map(|(hwm, _)| hwm);
    let cpu = cpu.finish();
    let wal_bytes = ctx.server.wal_dir().map(|d| disk_usage(&d).map(|u| u.total())).transpose()?;

    let acked = totals.acked.load(Ordering::Relaxed);
    let after = flush_and_check(ctx, disk_before, count_before).await?;
    let latency = std::mem::take(&mut *latencies.lock().unwrap()).summary();
    let events_per_sec = acked as f64 / wall;
    let failed = totals.failed_requests.load(Ordering::Relaxed);
    let count_ok = after.count == acked;
    let errors = totals.first_errors.lock().unwrap().clone();
    let report = json!({
        "mode": "batches",
        "settings": {
            "events": args.events, "ndjson": args.ndjson, "batch_size": args.batch_size, "connections": connections, "seed": args.seed,
            "visitors": args.visitors, "hours": args.hours, "server_args": args.server_args,
        },
        "workload": {
            "events": work.events, "pageviews": work.pageviews, "custom_events": work.custom_events,
            "sessions": work.sessions, "requests": batches.len(), "body_bytes": work.body_bytes,
            "first_timestamp_ms": work.first_ts, "last_timestamp_ms": work.last_ts,
        },
        "acked": acked,
        "rejected": totals.rejected.load(Ordering::Relaxed),
        "failed_requests": failed,
        "throttled_429": totals.throttled.load(Ordering::Relaxed),
        "wall_secs": round(wall, 3),
        "events_per_sec": round(events_per_sec, 0),
        "latency": latency,
        "server": {
            "peak_rss_bytes": peak_rss_ingest,
            "max_sampled_rss_bytes": ctx.server.pid.map(|_| max_sampled_rss),
            "peak_rss_after_flush_bytes": after.peak_rss_after_flush,
            "cpu_secs": cpu.server,
            "wal_bytes_before_flush": wal_bytes,
        },
        "client_cpu_secs": cpu.client,
        "other_cpu_secs": cpu.other,
        "flush": { "secs": round(after.flush_secs, 3), "report": after.flush_report },
        "compaction": after.compaction.as_ref().map(|(secs, report)| json!({ "secs": round(*secs, 3), "report": report })),
        "storage": storage_json(after.stored, after.count),
        "sql_count": after.count,
        "count_ok": count_ok,
        "errors": errors,
        "machine": ctx.machine,
    });

    say!(j, "");
    say!(j, "acked       {acked} events in {wall:.2}s = {events_per_sec:.0} events/s");
    say!(
        j,
        "latency     p50 {} ms, p99 {} ms, max {} ms per request of {} events",
        report["latency"]["p50_ms"],
        report["latency"]["p99_ms"],
        report["latency"]["max_ms"],
        args.batch_size
    );
    say!(
        j,
        "throttled   {} answers 429; {} requests failed; {} events rejected",
        report["throttled_429"],
        failed,
        report["rejected"]
    );
    if let Some(hwm) = peak_rss_ingest {
        say!(
            j,
            "server RSS  peak {:.0} MiB during ingest, {:.0} MiB after flush",
            mib(hwm),
            mib(after.peak_rss_after_flush.unwrap_or(hwm))
        );
    }
    cpu.print(j, wall);
    if let Some(w) = wal_bytes {
        // Only what no flush has covered yet (flushes delete older segments), so no per-event ratio.
        say!(j, "WAL         {:.1} MiB on disk when the traffic ended", mib(w));
    }
    say!(j, "flush       {:.2}s: {}", after.flush_secs, after.flush_report);
    if let Some((secs, report)) = &after.compaction {
        say!(j, "compaction  {secs:.2}s: {report}");
    }
    print_storage(j, after.stored, after.count);
    for e in &errors {
        say!(j, "error       {e}");
    }
    if count_ok {
        say!(j, "count       SQL count(*) = {} = acknowledged", after.count);
    } else {
        say!(j, "MISMATCH    SQL count(*) = {} but {acked} events were acknowledged", after.count);
    }
    Ok((report, count_ok && failed == 0))
}

fn print_storage(j: bool, stored: Option<DiskUsage>, events: u64) {
    if let Some(s) = stored {
        let per = |b: u64| b as f64 / events.max(1) as f64;
        say!(
            j,
            "storage     {:.2} MiB Parquet in {} files = {:.2} B/event; with session index ({:.2} MiB) {:.2} B/event",
            mib(s.parquet_bytes),
            s.parquet_files,
            per(s.parquet_bytes),
            mib(s.index_bytes),
            per(s.parquet_bytes + s.index_bytes)
        );
    }
}

async fn run_beacons(ctx: &Bench) -> Result<(Value, bool)> {
    let args = &ctx.args;
    let j = args.json;
    let connections = args.connections.unwrap_or(64).max(1);
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    say!(
        j,
        "footfall beacon benchmark: POST /api/event for {:.0}s over {} connections, seed {}",
        duration.as_secs_f64(),
        connections,
        args.seed
    );
    say!(j, "server: {} (pid {:?}, data {:?})", ctx.server.base, ctx.server.pid, ctx.server.data_dir);
    let beacons = Arc::new(workload::beacons(args.seed, 8192, &args.domain));
    let (disk_before, count_before) = measure_before(ctx).await?;
    let totals = Arc::new(SendTotals::default());
    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let cpu = CpuMeter::start(ctx.server.pid);
    let sampler = MemorySampler::start(ctx.server.pid);
    let stop_progress = Arc::new(AtomicBool::new(false));
    let done_progress = Arc::new(AtomicU64::new(0));
    let progress =
        progress_task(args.progress, "beacons acked", done_progress.clone(), ctx.server.pid, stop_progress.clone());

    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let mut connection = http1::Connection::new(&ctx.server.base)?;
        let (beacons, totals, latencies, done_progress) =
            (beacons.clone(), totals.clone(), latencies.clone(), done_progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = c * 7919;
            while Instant::now() < deadline {
                i += 1;
                let body = &beacons.bodies[i % beacons.bodies.len()];
                let ua = &beacons.user_agents[(i / 3) % beacons.user_agents.len()];
                let sent = Instant::now();
                let headers = [("content-type", "text/plain"), ("user-agent", ua.as_str())];
                let answer = match connection.post("/api/event", &headers, body).await {
                    Ok(a) => a,
                    Err(e) => {
                        totals.error(format!("beacon: {e}"));
                        continue;
                    }
                };
                let elapsed = sent.elapsed();
                match answer.status {
                    429 => {
                        totals.throttled.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(answer.retry_after()).await;
                    }
                    200..=299 if answer.header("x-footfall-dropped").is_some() => {
                        totals.error("beacon dropped: the server knows no project for the domain".into());
                    }
                    200..=299 => {
                        mine.push(elapsed.as_micros() as u64);
                        totals.acked.fetch_add(1, Ordering::Relaxed);
                        done_progress.fetch_add(1, Ordering::Relaxed);
                    }
                    status => totals.error(format!("beacon: {status} {}", String::from_utf8_lossy(&answer.body))),
                }
            }
            latencies.lock().unwrap().0.extend(mine);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed().as_secs_f64();
    stop_progress.store(true, Ordering::Relaxed);
    progress.abort();
    let max_sampled_rss = sampler.finish().await;
    let peak_rss = ctx.server.pid.and_then(memory).map(|(hwm, _)| hwm);
    let cpu = cpu.finish();
    let acked = totals.acked.load(Ordering::Relaxed);
    let after = flush_and_check(ctx, disk_before, count_before).await?;
    let latency = std::mem::take(&mut *latencies.lock().unwrap()).summary();
    let failed = totals.failed_requests.load(Ordering::Relaxed);
    let errors = totals.first_errors.lock().unwrap().clone();
    let count_ok = after.count == acked;
    let rps = acked as f64 / wall;
    let report = json!({
        "mode": "beacons",
        "settings": { "duration_secs": args.duration, "connections": connections, "seed": args.seed, "server_args": args.server_args },
        "acked": acked,
        "failed_requests": failed,
        "throttled_429": totals.throttled.load(Ordering::Relaxed),
        "wall_secs": round(wall, 3),
        "requests_per_sec": round(rps, 0),
        "latency": latency,
        "server": {
            "peak_rss_bytes": peak_rss,
            "max_sampled_rss_bytes": ctx.server.pid.map(|_| max_sampled_rss),
            "peak_rss_after_flush_bytes": after.peak_rss_after_flush,
            "cpu_secs": cpu.server,
        },
        "client_cpu_secs": cpu.client,
        "other_cpu_secs": cpu.other,
        "flush": { "secs": round(after.flush_secs, 3), "report": after.flush_report },
        "compaction": after.compaction.as_ref().map(|(secs, report)| json!({ "secs": round(*secs, 3), "report": report })),
        "storage": storage_json(after.stored, after.count),
        "sql_count": after.count,
        "count_ok": count_ok,
        "errors": errors,
        "machine": ctx.machine,
    });
    say!(j, "");
    say!(j, "acked       {acked} beacons in {wall:.2}s = {rps:.0} requests/s");
    say!(
        j,
        "latency     p50 {} ms, p99 {} ms, max {} ms",
        report["latency"]["p50_ms"],
        report["latency"]["p99_ms"],
        report["latency"]["max_ms"]
    );
    say!(j, "throttled   {} answers 429; {} requests failed", report["throttled_429"], failed);
    if let Some(hwm) = peak_rss {
        say!(j, "server RSS  peak {:.0} MiB", mib(hwm));
    }
    cpu.print(j, wall);
    print_storage(j, after.stored, after.count);
    for e in &errors {
        say!(j, "error       {e}");
    }
    if count_ok {
        say!(j, "count       SQL count(*) = {} = acknowledged", after.count);
    } else {
        say!(j, "MISMATCH    SQL count(*) = {} but {acked} beacons were acknowledged", after.count);
    }
    Ok((report, count_ok && failed == 0))
}
