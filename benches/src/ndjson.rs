//! Reading a generated NDJSON file (and the manifest beside it) back as request bodies, so the
//! ingest benchmark sends exactly the rows every other system is loaded with.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Deserialize;

/// What `footfall-gen` writes to `<file>.meta.json`.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub events: u64,
    pub seed: u64,
    pub projects: Vec<ManifestProject>,
    pub pageviews: u64,
    pub sessions: u64,
    pub first_timestamp_ms: Option<i64>,
    pub last_timestamp_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ManifestProject {
    pub id: String,
    pub domain: String,
}

pub fn manifest_path(ndjson: &Path) -> PathBuf {
    let mut name = ndjson.as_os_str().to_owned();
    name.push(".meta.json");
    PathBuf::from(name)
}

pub fn read_manifest(ndjson: &Path) -> Result<Manifest> {
    let path = manifest_path(ndjson);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One request body of whole lines and how many events it holds.
pub struct Body {
    pub bytes: Bytes,
    pub events: usize,
}

/// Splits the file into bodies of `batch_size` lines (the last may be shorter).
///
/// The file is memory-mapped, not read: at 100 million events it is ~50 GB, more than this
/// machine's memory, and the bodies are slices of the mapping that the kernel pages in (and out)
/// as requests send them.
pub fn read_bodies(path: &Path, batch_size: usize) -> Result<Vec<Body>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: the generator's output is not modified while a benchmark reads it; a concurrent
    // writer would only garble request bodies, which the server then rejects and the run reports.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
    let data = Bytes::from_owner(map);
    let mut bodies = Vec::new();
    let (mut start, mut lines) = (0, 0);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            lines += 1;
            if lines == batch_size.max(1) {
                bodies.push(Body { bytes: data.slice(start..i + 1), events: lines });
                start = i + 1;
                lines = 0;
            }
        }
    }
    if start < data.len() {
        let tail = data.slice(start..);
        let events = tail.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        if events > 0 {
            bodies.push(Body { bytes: tail, events });
        }
    }
    Ok(bodies)
}
