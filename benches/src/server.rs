//! The server under test: either a `footfall serve` child started here on a free loopback port with
//! a fresh data directory, or one already running (`--url`). Also the small HTTP helpers the bench
//! needs around the measured traffic (project, key, flush, SQL) and process statistics from /proc.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub struct Server {
    pub base: String,
    pub admin_token: String,
    pub pid: Option<u32>,
    pub data_dir: Option<PathBuf>,
    child: Option<Child>,
    log_path: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

pub struct SpawnOptions<'a> {
    pub binary: &'a Path,
    pub temp_parent: Option<&'a Path>,
    pub keep_data: bool,
    pub extra_args: &'a [String],
}

fn control_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(600)).build()?)
}

impl Server {
    pub fn external(url: &str, admin_token: &str, pid: Option<u32>, data_dir: Option<PathBuf>) -> Result<Self> {
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            admin_token: admin_token.to_string(),
            pid,
            data_dir,
            child: None,
            log_path: None,
            _temp: None,
            http: control_client()?,
        })
    }

    pub async fn spawn(opts: SpawnOptions<'_>) -> Result<Self> {
        if !opts.binary.is_file() {
            bail!(
                "footfall binary not found at {} (build it with `cargo build --release -p footfall-server`, or pass --footfall-bin)",
                opts.binary.display()
            );
        }
        let temp = match opts.temp_parent {
            Some(parent) => tempfile::Builder::new().prefix("footfall-bench-").tempdir_in(parent)?,
            None => tempfile::Builder::new().prefix("footfall-bench-").tempdir()?,
        };
        let data_dir = temp.path().join("data");
        let log_path = temp.path().join("footfall.log");
        // A free port: bind :0, read it, release it. The server binds it again right away.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let admin_token = format!("bench-admin-{:032x}", rand::random::<u128>());
        let log = File::create(&log_path)?;
        let child = Command::new(opts.binary)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(opts.extra_args)
            .env("FOOTFALL_ADMIN_TOKEN", &admin_token)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", opts.binary.display()))?;
        let mut server = Self {
            base: format!("http://127.0.0.1:{port}"),
            admin_token,
            pid: Some(child.id()),
            data_dir: Some(data_dir),
            child: Some(child),
            log_path: Some(log_path),
            _temp: None,
            http: control_client()?,
        };
        if opts.keep_data {
            eprintln!("keeping the data directory {}", temp.keep().display());
        } else {
            server._temp = Some(temp);
        }
        server.wait_healthy(Duration::from_secs(60)).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("footfall exited during start-up ({status}):\n{}", self.log_tail());
                }
            }
            if let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("footfall did not become healthy within {timeout:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log_path else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn storage_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join("storage"))
    }

    pub fn wal_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join("wal"))
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<(reqwest::StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Creates the project; an existing one is fine.
    pub async fn create_project(&self, project: &str, domain: &str) -> Result<()> {
        let (status, body) = self.admin_post("/api/v1/projects", json!({"id": project, "domain": domain})).await?;
        if !(status.is_success() || status == reqwest::StatusCode::CONFLICT) {
            bail!("creating project {project}: {status} {body}");
        }
        Ok(())
    }

    /// Creates the project (an existing one is fine) and an ingest key for it.
    pub async fn prepare_project(&self, project: &str, domain: &str) -> Result<String> {
        self.create_project(project, domain).await?;
        let (status, body) =
            self.admin_post(&format!("/api/v1/projects/{project}/keys"), json!({"scope": "ingest"})).await?;
        if !status.is_success() {
            bail!("creating an ingest key: {status} {body}");
        }
        body["token"].as_str().map(str::to_string).context("key response without a token")
    }

    pub async fn flush(&self) -> Result<Value> {
        let (status, body) = self.admin_post("/api/v1/admin/flush", json!({})).await?;
        if !status.is_success() {
            bail!("flush: {status} {body}");
        }
        Ok(body)
    }

    /// Runs the server's compaction now; `None` from a server that predates it.
    pub async fn compact(&self) -> Result<Option<Value>> {
        let (status, body) = self.admin_post("/api/v1/admin/compact", json!({})).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("compact: {status} {body}");
        }
        Ok(Some(body))
    }

    /// Stored events of one project, or of all.
    pub async fn count(&self, project: Option<&str>) -> Result<u64> {
        let sql = match project {
            Some(p) => format!("SELECT count(*) AS n FROM events WHERE project_id = '{}'", p.replace('\'', "''")),
            None => "SELECT count(*) AS n FROM events".to_string(),
        };
        let (status, body) = self.admin_post("/api/v1/sql", json!({ "sql": sql })).await?;
        if !status.is_success() {
            bail!("count query: {status} {body}");
        }
        body.get(0).and_then(|row| row["n"].as_u64()).with_context(|| format!("unexpected SQL answer {body}"))
    }

    /// Stops a server started here: SIGTERM (graceful shutdown flushes), then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("footfall exited with {status}:\n{}", self.log_tail());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        bail!("footfall did not stop within {grace:?} of SIGTERM; killed")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Peak and current resident set of a process, in bytes (`VmHWM`, `VmRSS` of /proc/<pid>/status).
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// User + system CPU seconds a process has used so far ("self" for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks.max(1.0))
}

/// CPU seconds the whole machine has spent busy (all CPUs, from /proc/stat): with the server's and
/// this process's own CPU time it shows how much else ran during a measurement.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = v.iter().take(8).sum::<f64>() - v.get(3)? - v.get(4)?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(busy / ticks.max(1.0))
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DiskUsage {
    pub parquet_bytes: u64,
    pub parquet_files: u64,
    pub index_bytes: u64,
    pub index_files: u64,
    pub other_bytes: u64,
}

/// Sizes of the files under `dir`, by kind.
pub fn disk_usage(dir: &Path) -> Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    if !dir.exists() {
        return Ok(usage);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".parquet") {
                usage.parquet_bytes += meta.len();
                usage.parquet_files += 1;
            } else if name.ends_with(".sessions.idx") {
                usage.index_bytes += meta.len();
                usage.index_files += 1;
            } else {
                usage.other_bytes += meta.len();
            }
        }
    }
    Ok(usage)
}

impl DiskUsage {
    pub fn minus(self, before: DiskUsage) -> DiskUsage {
        DiskUsage {
            parquet_bytes: self.parquet_bytes.saturating_sub(before.parquet_bytes),
            parquet_files: self.parquet_files.saturating_sub(before.parquet_files),
            index_bytes: self.index_bytes.saturating_sub(before.index_bytes),
            index_files: self.index_files.saturating_sub(before.index_files),
            other_bytes: self.other_bytes.saturating_sub(before.other_bytes),
        }
    }

    pub fn total(&self) -> u64 {
        self.parquet_bytes + self.index_bytes + self.other_bytes
    }
}
