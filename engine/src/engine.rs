//! The engine ties the write path together:
//!
//! ```text
//! append(events) ─▶ WAL group commit (fsync) ─▶ CommitSink: Arrow batches into the buffer ─▶ ack
//! flush()        ─▶ seal WAL segment (freezes buffer) ─▶ encode Parquet + session index per
//!                   partition ─▶ put files ─▶ commit manifest ─▶ {install snapshot, drop frozen rows}
//!                   under one lock ─▶ delete WAL segments the manifest covers
//! snapshot()     ─▶ catalog files + buffered rows, taken under that same lock
//! compact()      ─▶ plan merges (compaction.rs) ─▶ merge + put files ─▶ commit {remove inputs,
//!                   add output} under the flush lock ─▶ delete inputs no snapshot holds any more
//! ```
//!
//! Exactly-once across crashes: a manifest records the newest WAL segment whose events it covers;
//! replay skips those segments. Files written but not committed are invisible (not in the catalog).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use thiserror::Error;

use crate::buffer::{Buffer, PartitionRows};
use crate::catalog::{Catalog, CatalogChange, CatalogError, CatalogFile, CatalogSnapshot};
use crate::compaction::{self, CompactionError, CompactionPolicy};
use crate::event::{self, Event};
use crate::ids::{Day, PartitionKey, ProjectId, SegmentId};
use crate::partition_file::{self, EncodeOptions, PartitionFileError};
use crate::paths::{CatalogObject, DataFilePath};
use crate::wal::replay::{self, remove_segments_through};
use crate::wal::writer::{AppendAck, CommitSink, WalWriter, WalWriterConfig};
use crate::wal::WalError;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("encoding partition: {0}")]
    Encode(#[from] PartitionFileError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("buffer is full ({buffered} bytes buffered, limit {limit}); retry shortly")]
    BufferFull { buffered: usize, limit: usize },
    #[error("{path}: {source}")]
    LocalIo { path: PathBuf, source: std::io::Error },
    #[error("background task failed: {0}")]
    Join(String),
    #[error("compaction: {0}")]
    Compaction(#[from] CompactionError),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub wal_dir: PathBuf,
    /// Flush once this many bytes are buffered.
    pub flush_bytes: usize,
    /// Flush once the oldest unflushed row is this old.
    pub flush_age: Duration,
    /// Appends are refused (back-pressure) while more than this is buffered.
    pub memory_limit: usize,
    pub encode: EncodeOptions,
    pub wal_queue: usize,
    pub wal_segment_bytes: u64,
    /// For storage on the local filesystem: its root. Written files, manifests and their folders are
    /// fsynced there before the WAL segments they replace are deleted (object stores are durable on
    /// a successful put; a local rename is not until synced).
    pub local_storage_root: Option<PathBuf>,
    pub compaction: CompactionPolicy,
}

impl EngineConfig {
    pub fn new(wal_dir: PathBuf) -> Self {
        Self {
            wal_dir,
            flush_bytes: 128 << 20,
            flush_age: Duration::from_secs(60),
            memory_limit: 1 << 30,
            encode: EncodeOptions::default(),
            wal_queue: 4096,
            wal_segment_bytes: 256 << 20,
            local_storage_root: None,
            compaction: CompactionPolicy::default(),
        }
    }
}

struct State {
    catalog: Arc<CatalogSnapshot>,
    buffer: Buffer,
}

struct Shared {
    state: Mutex<State>,
    buffered_bytes: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters more
        // than losing the server, so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_bytes(&self, state: &State) {
        let bytes = state.buffer.bytes();
        self.buffered_bytes.store(bytes, Ordering::Relaxed);
        metrics::gauge!("footfall_buffered_bytes").set(bytes as f64);
    }

    fn insert(&self, first_event_id: u64, events: Vec<Event>) {
        // Grouped by position, not by moving events: an event is about a kilobyte, and a commit
        // spans few partitions (usually one), so a linear search beats hashing a key per event.
        let mut by_partition: Vec<((&ProjectId, Day), Vec<usize>)> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let key = (&e.project, Day::of_millis(e.timestamp_ms));
            match by_partition.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(i),
                None => by_partition.push((key, vec![i])),
            }
        }
        let batches: Vec<_> = by_partition
            .into_iter()
            .filter_map(|((project, day), rows)| {
                let key = PartitionKey { project: project.clone(), day };
                let rows = rows.iter().map(|&i| (first_event_id + i as u64, &events[i]));
                match event::to_record_batch(rows) {
                    Ok(batch) => Some((key, batch)),
                    Err(e) => {
                        // Unreachable for events built by this crate; logged rather than panicking the WAL thread.
                        tracing::error!(error = %e, "converting committed events to Arrow");
                        None
                    }
                }
            })
            .collect();
        let n = batches.iter().map(|(_, b)| b.num_rows() as u64).sum::<u64>();
        let mut state = self.lock();
        for (key, batch) in batches {
            state.buffer.insert(key, batch);
        }
        state.buffer.note_event_ids_through(first_event_id + n);
        self.publish_bytes(&state);
    }
}

impl CommitSink for Shared {
    fn committed(&self, first_event_id: u64, events: Vec<Event>) {
        self.insert(first_event_id, events);
    }

    fn sealed(&self, sealed: SegmentId) {
        self.lock().buffer.freeze(sealed);
    }
}

/// A consistent view for one query: committed files plus buffered rows, never overlapping, of the
/// projects the caller may see (files and rows of other projects are not in it at all).
pub struct Snapshot {
    pub catalog_version: u64,
    pub files: Vec<Arc<CatalogFile>>,
    pub buffered: Vec<PartitionRows>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CompactionReport {
    pub merges: usize,
    pub files_merged: usize,
    pub rows_merged: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Files of earlier merges deleted now that no query holds them.
    pub files_deleted: usize,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FlushReport {
    pub files_written: usize,
    pub rows_written: u64,
    pub bytes_written: u64,
    pub wal_segments_removed: usize,
}

impl FlushReport {
    fn plus(self, other: Self) -> Self {
        Self {
            files_written: self.files_written + other.files_written,
            rows_written: self.rows_written + other.rows_written,
            bytes_written: self.bytes_written + other.bytes_written,
            wal_segments_removed: self.wal_segments_removed + other.wal_segments_removed,
        }
    }
}

/// A catalog commit whose files are written but which is not known to have landed: its manifest
/// put failed, or its answer was lost (a timeout, a dropped connection), so the manifest may exist
/// all the same. It is retried as it is, the same files under the same ids, until it is known to
/// have landed: a manifest found naming its files is this commit, so rows are never committed
/// twice and files never written twice. Lives in the flush lock, which every commit holds.
struct PendingCommit {
    change: CatalogChange,
    /// For a flush: the newest WAL segment its rows came from (frozen rows dropped and segments
    /// deleted through it once committed). `None` for a compaction.
    sealed_through: Option<SegmentId>,
    /// The catalog version the last attempt tried to write.
    tried: Option<u64>,
    report: FlushReport,
}

pub struct Engine {
    config: EngineConfig,
    store: Arc<dyn ObjectStore>,
    catalog: Catalog,
    shared: Arc<Shared>,
    wal: WalWriter,
    /// One flush or commit at a time; holds a commit left in doubt by a failed attempt.
    flush_lock: tokio::sync::Mutex<Option<PendingCommit>>,
    /// Held for a whole compaction (one at a time); holds the files merges removed from the
    /// catalog that may still be read by a query's snapshot.
    retired: tokio::sync::Mutex<Vec<Arc<CatalogFile>>>,
}

impl Engine {
    /// Opens the engine: loads the catalog, replays the WAL beyond what it covers, starts the writer.
    pub async fn open(config: EngineConfig, store: Arc<dyn ObjectStore>) -> Result<Self, EngineError> {
        std::fs::create_dir_all(&config.wal_dir)
            .map_err(|source| EngineError::LocalIo { path: config.wal_dir.clone(), source })?;
        let (catalog, snapshot) = Catalog::load(store.clone()).await?;
        remove_unreferenced_files(&store, &snapshot).await?;
        if let Some(persisted) = snapshot.wal_persisted_through {
            remove_segments_through(&config.wal_dir, persisted)?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State { catalog: Arc::new(snapshot), buffer: Buffer::default() }),
            buffered_bytes: AtomicUsize::new(0),
        });
        let (persisted, catalog_next_id) = {
            let state = shared.lock();
            (state.catalog.wal_persisted_through, state.catalog.next_event_id)
        };
        let started = Instant::now();
        let wal_dir = config.wal_dir.clone();
        let replay_shared = shared.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            replay::replay::<std::convert::Infallible>(&wal_dir, persisted, |_, record| {
                replay_shared.insert(record.first_event_id, record.events);
                Ok(())
            })
        })
        .await
        .map_err(|e| EngineError::Join(e.to_string()))??
        .unwrap_or_else(|never| match never {});
        let next_event_id = outcome.next_event_id.unwrap_or(0).max(catalog_next_id);
        shared.lock().buffer.note_event_ids_through(next_event_id);
        tracing::info!(
            records = outcome.records,
            events = outcome.events,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "WAL replayed"
        );
        // Past the catalog's coverage too: with every segment deleted (a flush that committed while
        // no new segment could be started), numbering again from 1 would put new events in
        // segments the next replay skips as already persisted.
        let first_segment = outcome.last_segment.max(persisted).map_or(SegmentId(1), SegmentId::next);
        let wal_config = WalWriterConfig {
            dir: config.wal_dir.clone(),
            segment_max_bytes: config.wal_segment_bytes,
            queue_capacity: config.wal_queue,
            max_group_events: 256 * 1024,
        };
        let wal = WalWriter::start(wal_config, first_segment, next_event_id, shared.clone())?;
        Ok(Self {
            config,
            store,
            catalog,
            shared,
            wal,
            flush_lock: tokio::sync::Mutex::new(None),
            retired: tokio::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Makes `events` durable. Resolves only after they are fsynced in the WAL and visible to queries.
    pub async fn append(&self, events: Vec<Event>) -> Result<AppendAck, EngineError> {
        let buffered = self.shared.buffered_bytes.load(Ordering::Relaxed);
        if buffered >= self.config.memory_limit {
            return Err(EngineError::BufferFull { buffered, limit: self.config.memory_limit });
        }
        Ok(self.wal.append(events).await?)
    }

    /// A consistent view of the projects `visible` admits.
    pub fn snapshot(&self, visible: impl Fn(&ProjectId) -> bool) -> Snapshot {
        let state = self.shared.lock();
        let files = state.catalog.files.iter().filter(|f| visible(&f.meta.project)).cloned().collect();
        Snapshot { catalog_version: state.catalog.version, files, buffered: state.buffer.rows(visible) }
    }

    pub fn buffered_bytes(&self) -> usize {
        self.shared.buffered_bytes.load(Ordering::Relaxed)
    }

    /// Whether a flush is due by size, age, memory pressure or an earlier failed flush.
    pub fn flush_due(&self) -> bool {
        let state = self.shared.lock();
        state.buffer.has_frozen()
            || state.buffer.active_bytes() >= self.config.flush_bytes
            || state.buffer.bytes() >= self.config.memory_limit / 2
            || state.buffer.active_age().is_some_and(|age| age >= self.config.flush_age)
    }

    /// Writes everything buffered so far to storage and commits it.
    pub async fn flush(&self) -> Result<FlushReport, EngineError> {
        let mut flushing = self.flush_lock.lock().await;
        self.flush_holding(&mut flushing).await
    }

    /// The flush itself; the caller holds `flush_lock` and passes what it guards.
    async fn flush_holding(&self, pending: &mut Option<PendingCommit>) -> Result<FlushReport, EngineError> {
        let started = Instant::now();
        // A commit an earlier attempt left in doubt goes first: the catalog is one chain, and its
        // rows are the oldest frozen ones.
        let earlier = self.finish_pending(pending).await?.unwrap_or_default();
        let sealed = self.wal.seal().await?;
        let frozen = self.shared.lock().buffer.frozen();
        let Some((sealed_through, next_event_id, partitions)) = frozen else {
            // Nothing was buffered: the sealed segments hold only events committed earlier.
            let removed = remove_segments_through(&self.config.wal_dir, sealed)?;
            return Ok(earlier.plus(FlushReport { wal_segments_removed: removed, ..Default::default() }));
        };

        let opts = self.config.encode;
        // Every object this attempt puts, so a failed attempt can take them back: on a full local
        // disk each retry would otherwise leave more orphans, using up the space it waits for.
        let attempted: Mutex<Vec<object_store::path::Path>> = Mutex::new(Vec::new());
        let attempted_ref = &attempted;
        let written: Result<Vec<_>, EngineError> = futures::stream::iter(partitions)
            .map(|(key, batches)| {
                let store = self.store.clone();
                async move {
                    let encoded = tokio::task::spawn_blocking(move || partition_file::encode(&key, &batches, opts))
                        .await
                        .map_err(|e| EngineError::Join(e.to_string()))??;
                    let path = encoded.meta.path();
                    attempted_ref
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend([path.parquet(), path.session_index()]);
                    store.put(&path.parquet(), PutPayload::from(encoded.parquet)).await?;
                    let index_bytes = encoded
                        .index
                        .encode()
                        .map_err(|e| EngineError::Join(format!("encoding session index: {e}")))?;
                    store.put(&path.session_index(), PutPayload::from(index_bytes)).await?;
                    Ok::<_, EngineError>((encoded.meta, encoded.index))
                }
            })
            .buffer_unordered(2)
            .try_collect()
            .await;
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                // Not named by any manifest: no commit was tried. Best effort and bounded: what
                // stays (the store is down) is deleted at the next start.
                self.delete_quietly(attempted.into_inner().unwrap_or_else(|p| p.into_inner())).await;
                return Err(e);
            }
        };

        let report = FlushReport {
            files_written: written.len(),
            rows_written: written.iter().map(|(m, _)| m.rows).sum(),
            bytes_written: written.iter().map(|(m, _)| m.size_bytes).sum(),
            wal_segments_removed: 0,
        };
        let change = CatalogChange {
            added: written,
            removed: Vec::new(),
            wal_persisted_through: Some(sealed_through),
            next_event_id,
        };
        *pending = Some(PendingCommit { change, sealed_through: Some(sealed_through), tried: None, report });
        let report = self.finish_pending(pending).await?.unwrap_or_default();
        metrics::counter!("footfall_flushes_total").increment(1);
        metrics::counter!("footfall_files_written_total").increment(report.files_written as u64);
        metrics::counter!("footfall_rows_flushed_total").increment(report.rows_written);
        metrics::histogram!("footfall_flush_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(
            files = report.files_written,
            rows = report.rows_written,
            bytes = report.bytes_written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed"
        );
        Ok(earlier.plus(report))
    }

    /// Commits the pending commit, if any: confirms an earlier attempt that landed after all, or
    /// writes the manifest (again) on the current catalog. Then installs it, drops the frozen rows
    /// it persisted and deletes their WAL segments. On failure it stays pending.
    async fn finish_pending(&self, slot: &mut Option<PendingCommit>) -> Result<Option<FlushReport>, EngineError> {
        let Some(mut pending) = slot.take() else { return Ok(None) };
        if let Err(e) = self.commit_pending(&mut pending).await {
            *slot = Some(pending);
            return Err(e);
        }
        let removed = match pending.sealed_through {
            Some(sealed) => remove_segments_through(&self.config.wal_dir, sealed)?,
            None => 0,
        };
        Ok(Some(FlushReport { wal_segments_removed: removed, ..pending.report }))
    }

    async fn commit_pending(&self, pending: &mut PendingCommit) -> Result<(), EngineError> {
        let base = self.shared.lock().catalog.clone();
        let version = base.version + 1;
        // Another commit since the last try (a compaction) took a version: then the last try did
        // not land (it would have made that commit conflict). Otherwise look.
        let landed =
            pending.tried == Some(version) && self.catalog.manifest_is(version, &pending.change).await? == Some(true);
        let next = if landed {
            tracing::info!(version, "a catalog commit whose answer was lost had landed; adopting it");
            self.catalog.adopt(&base, pending.change.clone())
        } else {
            pending.tried = Some(version);
            self.catalog.commit(&base, pending.change.clone()).await?
        };
        // Files and manifest durable before the WAL segments they replace are deleted.
        let mut paths: Vec<_> =
            pending.change.added.iter().flat_map(|(m, _)| [m.path().parquet(), m.path().session_index()]).collect();
        paths.push(CatalogObject::Manifest(next.version).path());
        self.sync_local_storage(paths).await?;
        let mut state = self.shared.lock();
        state.catalog = next;
        if let Some(sealed) = pending.sealed_through {
            state.buffer.drop_frozen_through(sealed);
        }
        self.shared.publish_bytes(&state);
        Ok(())
    }

    /// Deletes objects, ignoring failures, within a bounded time.
    async fn delete_quietly(&self, paths: Vec<object_store::path::Path>) {
        let deletes = futures::stream::iter(paths)
            .map(|path| {
                let store = self.store.clone();
                async move {
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => tracing::debug!(error = %e, %path, "deleting an uncommitted file failed"),
                    }
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>();
        if tokio::time::timeout(Duration::from_secs(10), deletes).await.is_err() {
            tracing::debug!("deleting uncommitted files timed out; the next start deletes them");
        }
    }

    /// Flushes when due, forever; a failed flush is retried with back-off, its rows kept buffered.
    pub async fn run_flusher(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(250);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            // Decide under the lock: otherwise a flush already running (say, an admin flush) has
            // frozen rows that look due here, and this task would queue behind it and then flush
            // whatever arrived meanwhile, taking rows the next explicit flush was meant to write.
            let Ok(mut flushing) = self.flush_lock.try_lock() else {
                continue;
            };
            if flushing.is_none() && !self.flush_due() {
                backoff = Duration::from_millis(250);
                continue;
            }
            match self.flush_holding(&mut flushing).await {
                Ok(_) => backoff = Duration::from_millis(250),
                Err(e) => {
                    metrics::counter!("footfall_flush_failures_total").increment(1);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "flush failed");
                }
            }
        }
    }

    /// Runs the merges the compaction policy asks for now, one at a time, then deletes the files
    /// earlier merges replaced that no query snapshot holds any more.
    pub async fn compact(&self) -> Result<CompactionReport, EngineError> {
        let mut retired = self.retired.lock().await;
        let started = Instant::now();
        let files = self.shared.lock().catalog.files.clone();
        let plans = compaction::plan(&files, &self.config.compaction, chrono::Utc::now().timestamp_millis());
        drop(files);
        let mut report = CompactionReport::default();
        for plan in plans {
            let merged = compaction::merge(&self.store, &plan.partition, &plan.inputs, self.config.encode).await?;
            let path = merged.meta.path();
            self.store.put(&path.parquet(), PutPayload::from(merged.parquet)).await?;
            let index_bytes =
                merged.index.encode().map_err(|e| EngineError::Join(format!("encoding session index: {e}")))?;
            self.store.put(&path.session_index(), PutPayload::from(index_bytes)).await?;
            // The merged file must be durable before a manifest names it instead of its inputs.
            self.sync_local_storage(vec![path.parquet(), path.session_index()]).await?;

            let (bytes_before, bytes_after, rows) =
                (plan.inputs.iter().map(|f| f.meta.size_bytes).sum::<u64>(), merged.meta.size_bytes, merged.meta.rows);
            debug_assert_eq!(rows, plan.rows());
            {
                let mut pending = self.flush_lock.lock().await;
                // One chain: a flush's commit left in doubt is settled before this one.
                self.finish_pending(&mut pending).await?;
                let base = self.shared.lock().catalog.clone();
                // Only compaction removes files and it runs one at a time, so the inputs are still
                // there; checked anyway, since committing without them would duplicate their rows.
                let present = plan.inputs.iter().all(|input| base.files.iter().any(|f| Arc::ptr_eq(f, input)));
                if !present {
                    tracing::warn!(partition = ?plan.partition, "compaction inputs changed underneath; merge dropped");
                    continue;
                }
                let change = CatalogChange {
                    added: vec![(merged.meta, merged.index)],
                    removed: plan.inputs.iter().map(|f| f.meta.file_id).collect(),
                    wal_persisted_through: None,
                    next_event_id: 0,
                };
                // If its answer is lost it stays pending and the next flush settles it; its inputs
                // are then not retired here but deleted at the next start.
                *pending =
                    Some(PendingCommit { change, sealed_through: None, tried: None, report: Default::default() });
                self.finish_pending(&mut pending).await?;
            }
            report.merges += 1;
            report.files_merged += plan.inputs.len();
            report.rows_merged += rows;
            report.bytes_before += bytes_before;
            report.bytes_after += bytes_after;
            retired.extend(plan.inputs);
        }

        // A retired file still named by a query's snapshot has a second owner; it waits for the
        // next run.
        let (free, held): (Vec<_>, Vec<_>) = retired.drain(..).partition(|f| Arc::strong_count(f) == 1);
        *retired = held;
        for file in free {
            let path = file.meta.path();
            for object in [path.parquet(), path.session_index()] {
                match self.store.delete(&object).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        // Left for the next open, which deletes files no catalog version names.
                        tracing::warn!(error = %e, %object, "deleting a compacted file failed");
                    }
                }
            }
            report.files_deleted += 1;
        }
        if report.merges > 0 || report.files_deleted > 0 {
            metrics::counter!("footfall_compactions_total").increment(report.merges as u64);
            metrics::counter!("footfall_files_compacted_total").increment(report.files_merged as u64);
            tracing::info!(
                merges = report.merges,
                files = report.files_merged,
                rows = report.rows_merged,
                bytes_before = report.bytes_before,
                bytes_after = report.bytes_after,
                deleted = report.files_deleted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compacted"
            );
        }
        Ok(report)
    }

    /// Compacts every `interval`, forever; a failed run is logged and retried next time (its
    /// inputs stay in the catalog, so nothing is lost).
    pub async fn run_compactor(self: Arc<Self>, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.compact().await {
                metrics::counter!("footfall_compaction_failures_total").increment(1);
                tracing::error!(error = %e, "compaction failed");
            }
        }
    }

    async fn sync_local_storage(&self, paths: Vec<object_store::path::Path>) -> Result<(), EngineError> {
        let Some(root) = self.config.local_storage_root.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || sync_local(&root, &paths))
            .await
            .map_err(|e| EngineError::Join(e.to_string()))?
            .map_err(|source| EngineError::LocalIo { path: PathBuf::from("storage fsync"), source })
    }

    /// Flushes everything and stops the WAL writer.
    pub async fn shutdown(&self) -> Result<FlushReport, EngineError> {
        let report = self.flush().await?;
        self.wal.shutdown();
        Ok(report)
    }
}

/// Deletes data files no catalog version names: outputs of a flush or merge that crashed before
/// committing, and inputs of a merge that committed but crashed before deleting them. Run at open,
/// before anything writes, so no file in flight can be mistaken for one.
async fn remove_unreferenced_files(
    store: &Arc<dyn ObjectStore>,
    snapshot: &CatalogSnapshot,
) -> Result<(), EngineError> {
    let live: std::collections::HashSet<_> = snapshot.files.iter().map(|f| f.meta.file_id).collect();
    let listed: Vec<_> = store.list(None).try_collect().await?;
    let mut removed = 0usize;
    for object in listed {
        let Some(data_file) = DataFilePath::parse(&object.location) else { continue };
        if live.contains(&data_file.file_id) {
            continue;
        }
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if removed > 0 {
        tracing::info!(removed, "deleted data files no catalog version names");
    }
    Ok(())
}

/// fsyncs each file and then each distinct parent folder, so renames into place are durable too.
fn sync_local(root: &std::path::Path, paths: &[object_store::path::Path]) -> std::io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for path in paths {
        let full = root.join(path.as_ref());
        std::fs::File::open(&full)?.sync_all()?;
        if let Some(parent) = full.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for dir in dirs {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample;
    use arrow::array::RecordBatch;
    use object_store::local::LocalFileSystem;

    fn rows(s: &Snapshot) -> (u64, usize) {
        let files = s.files.iter().map(|f| f.meta.rows).sum();
        let buffered = s.buffered.iter().flat_map(|(_, b)| b).map(RecordBatch::num_rows).sum();
        (files, buffered)
    }

    async fn open(dir: &std::path::Path) -> Engine {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.join("storage")).unwrap());
        let mut config = EngineConfig::new(dir.join("wal"));
        config.local_storage_root = Some(dir.join("storage"));
        Engine::open(config, store).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_move_from_wal_to_files_exactly_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let day = 1_764_000_000_000;
        {
            let engine = open(dir.path()).await;
            let ack = engine.append(vec![sample("a", day, "s1"), sample("b", day, "s2")]).await.unwrap();
            assert_eq!(ack.count, 2);
            assert_eq!(rows(&engine.snapshot(|_| true)), (0, 2));
            assert_eq!(rows(&engine.snapshot(|p| p.as_str() == "a")), (0, 1));
            let report = engine.flush().await.unwrap();
            assert_eq!(report.files_written, 2);
            assert_eq!(rows(&engine.snapshot(|_| true)), (2, 0));
            assert_eq!(rows(&engine.snapshot(|p| p.as_str() == "a")), (1, 0));
            engine.append(vec![sample("a", day + 1, "s1")]).await.unwrap();
            // Dropped without shutdown: the last event lives only in the WAL.
        }
        let engine = open(dir.path()).await;
        assert_eq!(rows(&engine.snapshot(|_| true)), (2, 1));
        engine.flush().await.unwrap();
        let engine = {
            drop(engine);
            open(dir.path()).await
        };
        assert_eq!(rows(&engine.snapshot(|_| true)), (3, 0));
        // Only the fresh segment of the last open and of the last seal remain.
        assert!(replay::list_segments(&dir.path().join("wal")).unwrap().len() <= 2);
    }

    fn data_files(dir: &std::path::Path) -> usize {
        walk(&dir.join("storage")).iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count()
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_replaces_files_once_no_snapshot_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let yesterday = chrono::Utc::now().timestamp_millis() - 36 * 3600 * 1000;
        let day_start = Day::of_millis(yesterday).start_millis();
        let engine = open(dir.path()).await;
        for flush in 0..5i64 {
            let events: Vec<_> =
                (0..20).map(|i| sample("a", day_start + flush * 60_000 + i, &format!("s{}", i % 3))).collect();
            engine.append(events).await.unwrap();
            engine.flush().await.unwrap();
        }
        assert_eq!(engine.snapshot(|_| true).files.len(), 5);

        // A query that started before the merge keeps reading the old files.
        let before = engine.snapshot(|_| true);
        let report = engine.compact().await.unwrap();
        assert_eq!((report.merges, report.files_merged, report.rows_merged), (1, 5, 100));
        assert_eq!(report.files_deleted, 0, "the old files are still being read");
        let after = engine.snapshot(|_| true);
        assert_eq!(after.files.len(), 1);
        assert_eq!(rows(&after), (100, 0));
        assert_eq!(data_files(dir.path()), 6);
        drop(before);
        assert_eq!(engine.compact().await.unwrap().files_deleted, 5);
        assert_eq!(data_files(dir.path()), 1);
        assert_eq!(engine.compact().await.unwrap().merges, 0, "nothing left to merge");

        // Reopened, the catalog names the merged file alone; a file no version names is removed.
        drop((engine, after));
        let stray = dir.path().join("storage/project=a").join(format!("day={}", Day::of_millis(yesterday)));
        std::fs::write(stray.join(format!("{}.parquet", crate::ids::FileId::generate())), b"not committed").unwrap();
        assert_eq!(data_files(dir.path()), 2);
        let engine = open(dir.path()).await;
        assert_eq!(rows(&engine.snapshot(|_| true)), (100, 0));
        assert_eq!(data_files(dir.path()), 1);
    }

    /// A local store whose puts can fail: data files refused, a manifest refused, or a manifest
    /// written with its answer lost (the bucket took it, the connection dropped).
    #[derive(Debug, Default)]
    struct FaultyPlan {
        refuse_data: AtomicBool,
        refuse_manifest: AtomicBool,
        lose_manifest_answer: AtomicBool,
    }

    #[derive(Debug)]
    struct FaultyStore {
        inner: LocalFileSystem,
        plan: Arc<FaultyPlan>,
    }

    impl std::fmt::Display for FaultyStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "FaultyStore({})", self.inner)
        }
    }

    fn injected() -> object_store::Error {
        object_store::Error::Generic { store: "FaultyStore", source: "injected failure".into() }
    }

    use futures::stream::BoxStream;
    use object_store::path::Path as ObjectPath;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions, PutOptions,
        PutResult,
    };
    use std::sync::atomic::AtomicBool;

    #[async_trait::async_trait]
    impl ObjectStore for FaultyStore {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let manifest = location.as_ref().contains("_catalog/");
            if manifest && self.plan.refuse_manifest.load(Ordering::SeqCst)
                || !manifest && self.plan.refuse_data.load(Ordering::SeqCst)
            {
                return Err(injected());
            }
            let result = self.inner.put_opts(location, payload, opts).await?;
            if manifest && self.plan.lose_manifest_answer.load(Ordering::SeqCst) {
                return Err(injected());
            }
            Ok(result)
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    async fn open_faulty(dir: &std::path::Path) -> (Engine, Arc<FaultyPlan>) {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let plan = Arc::new(FaultyPlan::default());
        let inner = LocalFileSystem::new_with_prefix(dir.join("storage")).unwrap();
        let store = Arc::new(FaultyStore { inner, plan: plan.clone() });
        let mut config = EngineConfig::new(dir.join("wal"));
        config.local_storage_root = Some(dir.join("storage"));
        (Engine::open(config, store).await.unwrap(), plan)
    }

    fn manifests(dir: &std::path::Path) -> usize {
        walk(&dir.join("storage/_catalog")).len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_whose_answer_was_lost_is_adopted_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let day = 1_764_000_000_000;
        let (engine, plan) = open_faulty(dir.path()).await;
        engine.append(vec![sample("a", day, "s1"), sample("a", day + 1, "s2")]).await.unwrap();
        plan.lose_manifest_answer.store(true, Ordering::SeqCst);
        assert!(engine.flush().await.is_err());
        // Not installed: the rows are still served from the buffer, once.
        assert_eq!(rows(&engine.snapshot(|_| true)), (0, 2));
        engine.append(vec![sample("a", day + 2, "s3")]).await.unwrap();

        plan.lose_manifest_answer.store(false, Ordering::SeqCst);
        let report = engine.flush().await.unwrap();
        assert_eq!(report.rows_written, 3, "the landed commit's rows plus the newer one");
        assert_eq!(rows(&engine.snapshot(|_| true)), (3, 0));
        assert_eq!(manifests(dir.path()), 2, "the lost commit was not written again");
        assert_eq!(data_files(dir.path()), 2);
        drop(engine);
        let engine = open(dir.path()).await;
        assert_eq!(rows(&engine.snapshot(|_| true)), (3, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_commit_is_retried_with_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let day = 1_764_000_000_000;
        let (engine, plan) = open_faulty(dir.path()).await;
        engine.append(vec![sample("a", day, "s1")]).await.unwrap();
        plan.refuse_manifest.store(true, Ordering::SeqCst);
        assert!(engine.flush().await.is_err());
        assert!(engine.flush().await.is_err());
        assert_eq!(rows(&engine.snapshot(|_| true)), (0, 1));
        assert_eq!(data_files(dir.path()), 1, "retries reuse the written file");
        plan.refuse_manifest.store(false, Ordering::SeqCst);
        engine.flush().await.unwrap();
        assert_eq!(rows(&engine.snapshot(|_| true)), (1, 0));
        // Version 1 is the retried commit; version 2 the (empty) flush of what came after it.
        assert_eq!((manifests(dir.path()), data_files(dir.path())), (2, 1));
        drop(engine);
        let engine = open(dir.path()).await;
        assert_eq!(rows(&engine.snapshot(|_| true)), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_data_put_leaves_no_file_and_keeps_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let day = 1_764_000_000_000;
        let (engine, plan) = open_faulty(dir.path()).await;
        engine.append(vec![sample("a", day, "s1"), sample("b", day, "s2")]).await.unwrap();
        plan.refuse_data.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(engine.flush().await.is_err());
        }
        assert_eq!(data_files(dir.path()), 0, "a failed attempt takes its files back");
        assert_eq!(rows(&engine.snapshot(|_| true)), (0, 2));
        // A crash now: the WAL still has both events.
        drop(engine);
        let (engine, _) = open_faulty(dir.path()).await;
        assert_eq!(rows(&engine.snapshot(|_| true)), (0, 2));
        engine.flush().await.unwrap();
        assert_eq!(rows(&engine.snapshot(|_| true)), (2, 0));
    }

    #[tokio::test]
    async fn buffer_limit_is_back_pressure() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mut config = EngineConfig::new(dir.path().join("wal"));
        config.memory_limit = 1;
        let engine = Engine::open(config, store).await.unwrap();
        engine.append(vec![sample("a", 0, "s")]).await.unwrap();
        assert!(matches!(engine.append(vec![sample("a", 0, "s")]).await, Err(EngineError::BufferFull { .. })));
    }
}
