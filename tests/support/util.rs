//! Small helpers shared by the harness and the tests.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde_json::Value;

/// A port that was free a moment ago on 127.0.0.1 (bind to port 0, read it,
/// let it go). Another process may take it in between; [`crate::Server`]
/// retries with a new port when the server reports the address in use.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of the probe listener").port()
}

/// 32 random hex characters.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Today's date in UTC as `YYYY-MM-DD`.
pub fn today_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Every regular file under `root`, recursively (symlinks are not followed).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The files under `root` whose bytes contain `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|path| match fs::read(path) {
            Ok(bytes) => contains(&bytes, needle),
            // A file that vanished (compaction, WAL rotation) cannot leak.
            Err(_) => false,
        })
        .collect()
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The last `lines` lines of a text file (lossy UTF-8), or a note why not.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("<cannot open {}: {e}>", path.display()),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return format!("<cannot seek {}>", path.display());
    }
    let mut buf = Vec::new();
    if let Err(e) = file.read_to_end(&mut buf) {
        return format!("<cannot read {}: {e}>", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An integer from a JSON value that may be a number or a numeric string
/// (Arrow's JSON writer renders some integer types as strings).
pub fn value_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().and_then(|u| i64::try_from(u).ok()))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .unwrap_or_else(|| panic!("expected an integer, got {v}")),
        Value::String(s) => s.trim().parse().unwrap_or_else(|_| panic!("expected an integer, got string {s:?}")),
        other => panic!("expected an integer, got {other}"),
    }
}

/// A float from a JSON value that may be a number or a numeric string
/// (decimals are commonly rendered as strings).
pub fn value_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or_else(|| panic!("expected a number, got {v}")),
        Value::String(s) => s.trim().parse().unwrap_or_else(|_| panic!("expected a number, got string {s:?}")),
        other => panic!("expected a number, got {other}"),
    }
}

/// A string column value; `None` for null or a missing key (Arrow's JSON
/// writer leaves null columns out of the row object).
pub fn value_str(v: &Value) -> Option<&str> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => panic!("expected a string or null, got {other}"),
    }
}
