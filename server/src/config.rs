//! Server settings. Each option can come from a flag, the TOML file named by `--config`, or a
//! `FOOTFALL_*` environment variable — in that order of precedence — else its default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use thiserror::Error;

use crate::accounts::AccountsConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("config file {path}: unknown option {key:?}")]
    UnknownKey { path: PathBuf, key: String },
    #[error("option {option}: {message}")]
    Invalid { option: &'static str, message: String },
}

/// `footfall serve` flags. Every option is optional here so the file and environment can fill it.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file (keys as the flags, with '_' for '-').
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8000].
    #[arg(long)]
    pub listen: Option<String>,
    /// Folder for local state: WAL, metadata, admin token [default: ./footfall-data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Where Parquet partitions go: file:///path or s3://bucket/prefix [default: <data-dir>/storage].
    #[arg(long)]
    pub storage: Option<String>,
    /// Flush buffered rows to storage once this much is buffered (e.g. 128MiB).
    #[arg(long)]
    pub flush_bytes: Option<String>,
    /// Flush buffered rows at the latest after this long (seconds, or e.g. 1m) [default: 60].
    #[arg(long)]
    pub flush_age: Option<String>,
    /// How often small files are merged (seconds, or e.g. 5m; 0 turns background compaction off) [default: 60].
    #[arg(long)]
    pub compaction_interval: Option<String>,
    /// Buffered bytes beyond which ingest answers 429 (e.g. 1GiB).
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Proxies whose X-Forwarded-For is believed, comma-separated CIDRs (e.g. 10.0.0.0/8,127.0.0.1/32).
    #[arg(long)]
    pub trusted_proxies: Option<String>,
    /// Largest accepted request body [default: 10MiB].
    #[arg(long)]
    pub max_body_bytes: Option<String>,
    /// Longest a query may run (seconds, or e.g. 2m) [default: 30].
    #[arg(long)]
    pub query_timeout: Option<String>,
    /// Memory all running queries may use together [default: a quarter of the machine's (or the
    /// cgroup's) memory, at least 2GiB].
    #[arg(long)]
    pub query_memory_limit: Option<String>,
    /// Memory for the Parquet footers and page indexes kept between queries [default: 512MiB].
    #[arg(long)]
    pub query_metadata_cache: Option<String>,
    /// Most rows a query may return [default: 1000000].
    #[arg(long)]
    pub query_max_rows: Option<String>,
    /// Longest SQL statement accepted, in bytes [default: 256KiB].
    #[arg(long)]
    pub query_max_sql_bytes: Option<String>,
    /// Most bytes a query's result may hold (as Arrow data, before encoding) [default: 256MiB].
    #[arg(long)]
    pub query_max_result_bytes: Option<String>,
    /// Longest a client may take to send a request's line and headers, and longest an idle
    /// keep-alive connection is kept (seconds, or e.g. 10s) [default: 10].
    #[arg(long)]
    pub header_timeout: Option<String>,
    /// Longest a client may take to send a request's body (seconds, or e.g. 1m) [default: 30].
    #[arg(long)]
    pub body_timeout: Option<String>,
    /// Most connections held open at once; more are answered 503 and closed [default: 4096].
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Serve this folder's static files under /site/ (to try the tracker on local pages).
    #[arg(long)]
    pub site_dir: Option<String>,
    /// A MaxMind-format (.mmdb) country or city database to use instead of the bundled DB-IP Lite country one.
    #[arg(long)]
    pub geoip_database: Option<String>,
    /// Query parameters removed from page URLs before storage, comma-separated [default: a list of secrets such as token, password, email].
    #[arg(long)]
    pub drop_query_params: Option<String>,
    /// The server's address as browsers reach it, for links (setup, invitations, share links);
    /// an https URL also marks the session cookie Secure [default: http://<listen>].
    #[arg(long)]
    pub public_url: Option<String>,
    /// A signed-in session ends after this long without a request (e.g. 12h) [default: 12h].
    #[arg(long)]
    pub session_idle_timeout: Option<String>,
    /// A signed-in session ends this long after sign-in, however active [default: 14d].
    #[arg(long)]
    pub session_lifetime: Option<String>,
    /// How long an invitation link stays valid [default: 7d].
    #[arg(long)]
    pub invitation_ttl: Option<String>,
    /// Sign-in and TOTP attempts allowed per minute per client address and per account [default: 10].
    #[arg(long)]
    pub login_rate_limit: Option<String>,
    /// Consecutive failed sign-ins that lock an account [default: 5].
    #[arg(long)]
    pub login_lock_after: Option<String>,
    /// First lock's length; each further lock doubles it [default: 1m].
    #[arg(long)]
    pub login_lock_delay: Option<String>,
    /// Longest lock [default: 1h].
    #[arg(long)]
    pub login_lock_max: Option<String>,
    /// argon2id memory per password hash (e.g. 64MiB) [default: 19MiB].
    #[arg(long)]
    pub argon2_memory: Option<String>,
    /// argon2id passes per password hash [default: 2].
    #[arg(long)]
    pub argon2_iterations: Option<String>,
}

const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "storage",
    "flush_bytes",
    "flush_age",
    "compaction_interval",
    "memory_limit",
    "trusted_proxies",
    "max_body_bytes",
    "query_timeout",
    "query_memory_limit",
    "query_metadata_cache",
    "query_max_rows",
    "query_max_sql_bytes",
    "query_max_result_bytes",
    "header_timeout",
    "body_timeout",
    "max_connections",
    "site_dir",
    "geoip_database",
    "drop_query_params",
    "public_url",
    "session_idle_timeout",
    "session_lifetime",
    "invitation_ttl",
    "login_rate_limit",
    "login_lock_after",
    "login_lock_delay",
    "login_lock_max",
    "argon2_memory",
    "argon2_iterations",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub storage: String,
    pub flush_bytes: usize,
    pub flush_age: Duration,
    /// `None`: no background compaction.
    pub compaction_interval: Option<Duration>,
    pub memory_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub query_timeout: Duration,
    pub query_memory_limit: usize,
    pub query_metadata_cache: usize,
    pub query_max_rows: usize,
    pub query_max_sql_bytes: usize,
    pub query_max_result_bytes: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub site_dir: Option<PathBuf>,
    pub geoip_database: Option<PathBuf>,
    /// `None`: the built-in list of secret-looking parameters.
    pub drop_query_params: Option<Vec<String>>,
    /// Base of the links the server hands out, without a trailing slash.
    pub public_url: String,
    pub accounts: AccountsConfig,
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        Self::resolve_from(args, &file, &env)
    }

    fn resolve_from(
        args: &ServeArgs,
        file: &HashMap<String, String>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let pick = |key: &str, flag: &Option<String>| -> Option<String> {
            flag.clone()
                .or_else(|| file.get(key).cloned())
                .or_else(|| env.get(&format!("FOOTFALL_{}", key.to_ascii_uppercase())).cloned())
        };
        let listen = pick("listen", &args.listen).unwrap_or_else(|| "127.0.0.1:8000".into());
        let listen = listen
            .parse()
            .map_err(|e| ConfigError::Invalid { option: "listen", message: format!("{listen:?}: {e}") })?;
        let data_dir = PathBuf::from(pick("data_dir", &args.data_dir).unwrap_or_else(|| "./footfall-data".into()));
        let storage = match pick("storage", &args.storage) {
            Some(s) => s,
            None => default_storage(&data_dir)?,
        };
        let trusted_proxies =
            pick("trusted_proxies", &args.trusted_proxies).map(|s| parse_cidrs(&s)).transpose()?.unwrap_or_default();
        Ok(Self {
            listen,
            storage,
            flush_bytes: bytes("flush_bytes", pick("flush_bytes", &args.flush_bytes), 128 << 20)?,
            flush_age: duration("flush_age", pick("flush_age", &args.flush_age), Duration::from_secs(60))?,
            compaction_interval: Some(duration(
                "compaction_interval",
                pick("compaction_interval", &args.compaction_interval),
                Duration::from_secs(60),
            )?)
            .filter(|d| !d.is_zero()),
            memory_limit: bytes("memory_limit", pick("memory_limit", &args.memory_limit), 1 << 30)?,
            trusted_proxies,
            max_body_bytes: bytes("max_body_bytes", pick("max_body_bytes", &args.max_body_bytes), 10 << 20)?,
            query_timeout: duration(
                "query_timeout",
                pick("query_timeout", &args.query_timeout),
                Duration::from_secs(30),
            )?,
            query_memory_limit: bytes(
                "query_memory_limit",
                pick("query_memory_limit", &args.query_memory_limit),
                default_query_memory_limit(),
            )?,
            query_metadata_cache: bytes(
                "query_metadata_cache",
                pick("query_metadata_cache", &args.query_metadata_cache),
                512 << 20,
            )?,
            query_max_rows: bytes("query_max_rows", pick("query_max_rows", &args.query_max_rows), 1_000_000)?,
            query_max_sql_bytes: bytes(
                "query_max_sql_bytes",
                pick("query_max_sql_bytes", &args.query_max_sql_bytes),
                256 << 10,
            )?,
            query_max_result_bytes: bytes(
                "query_max_result_bytes",
                pick("query_max_result_bytes", &args.query_max_result_bytes),
                256 << 20,
            )?,
            header_timeout: duration(
                "header_timeout",
                pick("header_timeout", &args.header_timeout),
                Duration::from_secs(10),
            )?,
            body_timeout: duration("body_timeout", pick("body_timeout", &args.body_timeout), Duration::from_secs(30))?,
            max_connections: bytes("max_connections", pick("max_connections", &args.max_connections), 4096)?.max(1),
            site_dir: pick("site_dir", &args.site_dir).map(PathBuf::from),
            geoip_database: pick("geoip_database", &args.geoip_database).map(PathBuf::from),
            drop_query_params: pick("drop_query_params", &args.drop_query_params)
                .map(|list| list.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect()),
            public_url: public_url(pick("public_url", &args.public_url), listen)?,
            accounts: accounts_config(args, &pick)?,
            data_dir,
        })
    }
}

fn public_url(value: Option<String>, listen: SocketAddr) -> Result<String, ConfigError> {
    let Some(value) = value else { return Ok(format!("http://{listen}")) };
    let url = url::Url::parse(value.trim())
        .map_err(|e| ConfigError::Invalid { option: "public_url", message: format!("{value:?}: {e}") })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid { option: "public_url", message: format!("{value:?}: not http(s)") });
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn accounts_config(
    args: &ServeArgs,
    pick: &dyn Fn(&str, &Option<String>) -> Option<String>,
) -> Result<AccountsConfig, ConfigError> {
    let d = AccountsConfig::default();
    let get = |key: &str| {
        let flag = match key {
            "session_idle_timeout" => &args.session_idle_timeout,
            "session_lifetime" => &args.session_lifetime,
            "invitation_ttl" => &args.invitation_ttl,
            "login_rate_limit" => &args.login_rate_limit,
            "login_lock_after" => &args.login_lock_after,
            "login_lock_delay" => &args.login_lock_delay,
            "login_lock_max" => &args.login_lock_max,
            "argon2_memory" => &args.argon2_memory,
            "argon2_iterations" => &args.argon2_iterations,
            _ => &None,
        };
        pick(key, flag)
    };
    let count = |option: &'static str, default: u32| -> Result<u32, ConfigError> {
        match get(option) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| ConfigError::Invalid {
                option,
                message: format!("{v:?}: expected a positive whole number"),
            }),
        }
    };
    let memory = bytes("argon2_memory", get("argon2_memory"), d.argon2_memory_kib as usize * 1024)?;
    let memory_kib = u32::try_from(memory / 1024)
        .ok()
        .filter(|k| *k >= 8)
        .ok_or_else(|| ConfigError::Invalid { option: "argon2_memory", message: "between 8KiB and 4TiB".into() })?;
    Ok(AccountsConfig {
        session_idle_timeout: duration("session_idle_timeout", get("session_idle_timeout"), d.session_idle_timeout)?,
        session_lifetime: duration("session_lifetime", get("session_lifetime"), d.session_lifetime)?,
        invitation_ttl: duration("invitation_ttl", get("invitation_ttl"), d.invitation_ttl)?,
        login_rate_limit: count("login_rate_limit", d.login_rate_limit)?,
        login_lock_after: count("login_lock_after", d.login_lock_after)?,
        login_lock_delay: duration("login_lock_delay", get("login_lock_delay"), d.login_lock_delay)?,
        login_lock_max: duration("login_lock_max", get("login_lock_max"), d.login_lock_max)?,
        argon2_memory_kib: memory_kib,
        argon2_iterations: count("argon2_iterations", d.argon2_iterations)?,
    })
}

fn read_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Toml { path: path.into(), source })?;
    let mut out = HashMap::new();
    for (key, value) in table {
        let key = key.replace('-', "_");
        if !KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownKey { path: path.into(), key });
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(key, value);
    }
    Ok(out)
}

fn default_storage(data_dir: &Path) -> Result<String, ConfigError> {
    let dir = data_dir.join("storage");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ConfigError::Invalid { option: "data_dir", message: format!("{}: {e}", dir.display()) })?;
    let abs = dir
        .canonicalize()
        .map_err(|e| ConfigError::Invalid { option: "data_dir", message: format!("{}: {e}", dir.display()) })?;
    url::Url::from_directory_path(&abs)
        .map(|u| u.to_string())
        .map_err(|_| ConfigError::Invalid { option: "data_dir", message: format!("{} is not absolute", abs.display()) })
}

fn bytes(option: &'static str, value: Option<String>, default: usize) -> Result<usize, ConfigError> {
    let Some(value) = value else { return Ok(default) };
    let trimmed = value.trim();
    if let Ok(n) = trimmed.parse::<usize>() {
        return Ok(n);
    }
    trimmed
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64() as usize)
        .map_err(|e| ConfigError::Invalid { option, message: format!("{value:?}: {e}") })
}

/// The query pool when none is set: a quarter of the memory the process may use (the machine's,
/// or its cgroup's limit when lower), never under 2 GiB. The pool can fill before the process
/// holds that much: DataFusion counts a buffer shared by several batches (a Utf8View page buffer,
/// an aggregate's emission handed on in slices) once per batch. Sorts and hash-join build sides
/// get compacted batches (`footfall_sql::compact_batches`), which brought the `sessions` view over
/// a project of 5M events back under a 2 GiB pool, but other buffering operators still count so; a
/// quarter of the machine leaves them room where there is room.
fn default_query_memory_limit() -> usize {
    const FLOOR: usize = 2 << 30;
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let machine = read("/proc/meminfo").and_then(|m| mem_total(&m));
    // cgroup v2, then v1; "max" or a huge v1 number means no limit of its own.
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .into_iter()
        .find_map(|p| read(p).and_then(|v| v.trim().parse::<usize>().ok()));
    let usable = match (machine, cgroup) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    };
    usable.map_or(FLOOR, |bytes| (bytes / 4).max(FLOOR))
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn duration(option: &'static str, value: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(value) = value else { return Ok(default) };
    let trimmed = value.trim();
    if let Ok(secs) = trimmed.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(trimmed).map_err(|e| ConfigError::Invalid { option, message: format!("{value:?}: {e}") })
}

fn parse_cidrs(s: &str) -> Result<Vec<IpNet>, ConfigError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|e| ConfigError::Invalid { option: "trusted_proxies", message: format!("{p:?}: {e}") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_env() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_string_lossy().to_string();
        let args = ServeArgs { listen: Some("127.0.0.1:1".into()), data_dir: Some(data_dir), ..Default::default() };
        let file = HashMap::from([
            ("listen".to_string(), "127.0.0.1:2".to_string()),
            ("flush_age".to_string(), "5s".to_string()),
        ]);
        let env = HashMap::from([
            ("FOOTFALL_LISTEN".to_string(), "127.0.0.1:3".to_string()),
            ("FOOTFALL_FLUSH_AGE".to_string(), "9".to_string()),
            ("FOOTFALL_MEMORY_LIMIT".to_string(), "64MiB".to_string()),
            ("FOOTFALL_TRUSTED_PROXIES".to_string(), "10.0.0.0/8, 127.0.0.1".to_string()),
        ]);
        let c = Config::resolve_from(&args, &file, &env).unwrap();
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.flush_age, Duration::from_secs(5));
        assert_eq!(c.memory_limit, 64 << 20);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.storage.starts_with("file:///"));
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let args = ServeArgs {
            data_dir: Some(dir.path().to_string_lossy().to_string()),
            flush_bytes: Some("lots".into()),
            ..Default::default()
        };
        let err = Config::resolve_from(&args, &HashMap::new(), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("flush_bytes"), "{err}");
    }

    #[test]
    fn query_pool_defaults_to_a_quarter_of_memory_but_at_least_2_gib() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        let pool = default_query_memory_limit();
        assert!(pool >= 2 << 30, "{pool}");
        if let Some(total) = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_total(&m)) {
            assert!(pool <= (total / 4).max(2 << 30), "{pool} of {total}");
        }
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9\"\nflush-age = 3\ntrusted_proxies = [\"10.0.0.0/8\"]\n").unwrap();
        let map = read_file(&path).unwrap();
        assert_eq!(map["flush_age"], "3");
        assert_eq!(map["trusted_proxies"], "10.0.0.0/8");
        std::fs::write(&path, "lisen = 1\n").unwrap();
        assert!(matches!(read_file(&path), Err(ConfigError::UnknownKey { .. })));
    }
}
