//! The catalog: which data files exist. It is a chain of numbered manifest deltas in
//! `_catalog/`, each written with one create-if-absent put, so a commit is atomic and two writers
//! can never both claim a version. Every [`CHECKPOINT_EVERY`] versions a checkpoint holds the whole
//! state so loading never replays a long chain.
//!
//! A query works on a [`CatalogSnapshot`]: an immutable `Arc` taken at query start. Files are only
//! ever added today; when compaction removes files it must delete them only after the last snapshot
//! naming them is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::envelope::{self, EnvelopeError};
use crate::ids::{Day, FileId, PartitionKey, ProjectId, SegmentId};
use crate::paths::{CatalogObject, DataFilePath};
use crate::session_index::{SessionIndex, SessionIndexError};

pub const MANIFEST_MAGIC: &[u8; 8] = b"FFCATMAN";
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"FFCATCKP";
pub const FORMAT_VERSION: u16 = 1;
pub const CHECKPOINT_EVERY: u64 = 100;

#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("catalog object {path}: {source}")]
    Frame { path: String, source: EnvelopeError },
    #[error("catalog object {path} is not valid JSON: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("session index {path}: {source}")]
    Index { path: String, source: SessionIndexError },
    #[error("catalog version {0} was committed by another writer")]
    Conflict(u64),
    #[error("catalog chain is broken: version {missing} is missing")]
    Gap { missing: u64 },
}

/// What the catalog records about one data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFileMeta {
    pub project: ProjectId,
    pub day: Day,
    pub file_id: FileId,
    pub size_bytes: u64,
    pub rows: u64,
    pub row_groups: usize,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
}

impl DataFileMeta {
    pub fn path(&self) -> DataFilePath {
        DataFilePath { partition: PartitionKey { project: self.project.clone(), day: self.day }, file_id: self.file_id }
    }
}

/// A committed file with its session index, ready for pruning.
#[derive(Debug)]
pub struct CatalogFile {
    pub meta: DataFileMeta,
    pub index: SessionIndex,
}

#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    pub version: u64,
    pub files: Vec<Arc<CatalogFile>>,
    /// Every WAL segment up to this one is fully committed to storage.
    pub wal_persisted_through: Option<SegmentId>,
    /// Event ids below this have been assigned.
    pub next_event_id: u64,
}

/// One commit's worth of change.
#[derive(Debug, Default, Clone)]
pub struct CatalogChange {
    pub added: Vec<(DataFileMeta, SessionIndex)>,
    pub removed: Vec<FileId>,
    pub wal_persisted_through: Option<SegmentId>,
    pub next_event_id: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: u64,
    committed_at_ms: i64,
    added: Vec<DataFileMeta>,
    removed: Vec<FileId>,
    wal_persisted_through: Option<SegmentId>,
    next_event_id: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    version: u64,
    files: Vec<DataFileMeta>,
    wal_persisted_through: Option<SegmentId>,
    next_event_id: u64,
}

/// Reads and writes the manifest chain. It holds no current state of its own: the engine keeps the
/// current snapshot beside its buffer so that installing a commit and dropping the rows it persisted
/// happen under one lock, and no query ever sees a row twice or not at all.
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
}

impl Catalog {
    /// Loads the newest state: the latest checkpoint, then every later manifest in order.
    pub async fn load(store: Arc<dyn ObjectStore>) -> Result<(Self, CatalogSnapshot), CatalogError> {
        let listed: Vec<_> = store.list(Some(&CatalogObject::dir())).try_collect().await?;
        let objects: Vec<CatalogObject> = listed.iter().filter_map(|m| CatalogObject::parse(&m.location)).collect();
        let checkpoint = objects
            .iter()
            .filter_map(|o| match o {
                CatalogObject::Checkpoint(v) => Some(*v),
                CatalogObject::Manifest(_) => None,
            })
            .max();
        let mut manifests: Vec<u64> = objects
            .iter()
            .filter_map(|o| match o {
                CatalogObject::Manifest(v) if checkpoint.is_none_or(|c| *v > c) => Some(*v),
                _ => None,
            })
            .collect();
        manifests.sort_unstable();

        let mut files: BTreeMap<FileId, DataFileMeta> = BTreeMap::new();
        let mut version = 0;
        let mut wal_persisted_through = None;
        let mut next_event_id = 0;
        if let Some(v) = checkpoint {
            let ckp: Checkpoint = read_object(&store, CatalogObject::Checkpoint(v), CHECKPOINT_MAGIC).await?;
            version = ckp.version;
            wal_persisted_through = ckp.wal_persisted_through;
            next_event_id = ckp.next_event_id;
            files.extend(ckp.files.into_iter().map(|f| (f.file_id, f)));
        }
        for v in manifests {
            if v != version + 1 {
                return Err(CatalogError::Gap { missing: version + 1 });
            }
            let m: Manifest = read_object(&store, CatalogObject::Manifest(v), MANIFEST_MAGIC).await?;
            for id in &m.removed {
                files.remove(id);
            }
            files.extend(m.added.into_iter().map(|f| (f.file_id, f)));
            version = m.version;
            wal_persisted_through = m.wal_persisted_through.or(wal_persisted_through);
            next_event_id = next_event_id.max(m.next_event_id);
        }

        let loaded: Vec<Arc<CatalogFile>> = futures::stream::iter(files.into_values())
            .map(|meta| {
                let store = store.clone();
                async move {
                    let path = meta.path().session_index();
                    let bytes = store.get(&path).await?.bytes().await?;
                    let index = SessionIndex::decode(&bytes)
                        .map_err(|source| CatalogError::Index { path: path.to_string(), source })?;
                    Ok::<_, CatalogError>(Arc::new(CatalogFile { meta, index }))
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        tracing::info!(version, files = loaded.len(), "catalog loaded");
        let snapshot = CatalogSnapshot { version, files: loaded, wal_persisted_through, next_event_id };
        Ok((Self { store }, snapshot))
    }

    /// Commits `change` on top of `base` as the next version and returns the new snapshot (which the
    /// caller installs). Data files and their indexes must already be written.
    pub async fn commit(
        &self,
        base: &CatalogSnapshot,
        change: CatalogChange,
    ) -> Result<Arc<CatalogSnapshot>, CatalogError> {
        let version = base.version + 1;
        let manifest = Manifest {
            version,
            committed_at_ms: chrono::Utc::now().timestamp_millis(),
            added: change.added.iter().map(|(m, _)| m.clone()).collect(),
            removed: change.removed.clone(),
            wal_persisted_through: change.wal_persisted_through.or(base.wal_persisted_through),
            next_event_id: change.next_event_id.max(base.next_event_id),
        };
        let object = CatalogObject::Manifest(version);
        let bytes = encode_object(&manifest, MANIFEST_MAGIC, object)?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&object.path(), PutPayload::from(bytes), opts).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Err(CatalogError::Conflict(version)),
            Err(e) => return Err(e.into()),
        }

        let next = applied(base, change);
        if version.is_multiple_of(CHECKPOINT_EVERY) {
            // A failed checkpoint costs only load time: the manifests remain the source of truth.
            if let Err(e) = self.write_checkpoint(&next).await {
                tracing::warn!(error = %e, version, "writing catalog checkpoint failed");
            }
        }
        Ok(next)
    }

    /// Whether the manifest of `version` is the one committing `change` writes (it names the same
    /// added and removed files; file ids are random, so no other commit does): for a commit whose
    /// put failed or whose answer was lost, which may have landed all the same. `None`: there is no
    /// manifest of that version.
    pub async fn manifest_is(&self, version: u64, change: &CatalogChange) -> Result<Option<bool>, CatalogError> {
        match read_object::<Manifest>(&self.store, CatalogObject::Manifest(version), MANIFEST_MAGIC).await {
            Ok(m) => {
                let added = m.added.iter().map(|f| f.file_id).eq(change.added.iter().map(|(f, _)| f.file_id));
                Ok(Some(added && m.removed == change.removed))
            }
            Err(CatalogError::Store(object_store::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The snapshot committing `change` on `base` made, for a commit found landed by
    /// [`Catalog::manifest_is`] (nothing is written).
    pub fn adopt(&self, base: &CatalogSnapshot, change: CatalogChange) -> Arc<CatalogSnapshot> {
        applied(base, change)
    }

    async fn write_checkpoint(&self, snapshot: &CatalogSnapshot) -> Result<(), CatalogError> {
        let ckp = Checkpoint {
            version: snapshot.version,
            files: snapshot.files.iter().map(|f| f.meta.clone()).collect(),
            wal_persisted_through: snapshot.wal_persisted_through,
            next_event_id: snapshot.next_event_id,
        };
        let object = CatalogObject::Checkpoint(snapshot.version);
        let bytes = encode_object(&ckp, CHECKPOINT_MAGIC, object)?;
        self.store.put(&object.path(), PutPayload::from(bytes)).await?;
        Ok(())
    }
}

/// `base` with `change` applied as the next version: what its manifest records, in memory.
fn applied(base: &CatalogSnapshot, change: CatalogChange) -> Arc<CatalogSnapshot> {
    let mut files: Vec<Arc<CatalogFile>> =
        base.files.iter().filter(|f| !change.removed.contains(&f.meta.file_id)).cloned().collect();
    files.extend(change.added.into_iter().map(|(meta, index)| Arc::new(CatalogFile { meta, index })));
    Arc::new(CatalogSnapshot {
        version: base.version + 1,
        files,
        wal_persisted_through: change.wal_persisted_through.or(base.wal_persisted_through),
        next_event_id: change.next_event_id.max(base.next_event_id),
    })
}

fn encode_object<T: Serialize>(value: &T, magic: &[u8; 8], object: CatalogObject) -> Result<Vec<u8>, CatalogError> {
    let path = object.path().to_string();
    let json = serde_json::to_vec(value).map_err(|source| CatalogError::Json { path: path.clone(), source })?;
    envelope::encode(magic, FORMAT_VERSION, &json).map_err(|source| CatalogError::Frame { path, source })
}

async fn read_object<T: for<'de> Deserialize<'de>>(
    store: &Arc<dyn ObjectStore>,
    object: CatalogObject,
    magic: &[u8; 8],
) -> Result<T, CatalogError> {
    let path = object.path();
    let bytes = store.get(&path).await?.bytes().await?;
    let frame = envelope::decode(magic, FORMAT_VERSION, &bytes)
        .map_err(|source| CatalogError::Frame { path: path.to_string(), source })?;
    serde_json::from_slice(frame.body).map_err(|source| CatalogError::Json { path: path.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn meta(project: &str) -> (DataFileMeta, SessionIndex) {
        let meta = DataFileMeta {
            project: ProjectId::new(project).unwrap(),
            day: "2026-11-25".parse().unwrap(),
            file_id: FileId::generate(),
            size_bytes: 10,
            rows: 1,
            row_groups: 1,
            min_ts_ms: 0,
            max_ts_ms: 0,
        };
        (meta, SessionIndex::from_row_groups(vec![vec![Some("s")]]))
    }

    async fn put_index(store: &Arc<dyn ObjectStore>, m: &(DataFileMeta, SessionIndex)) {
        store.put(&m.0.path().session_index(), PutPayload::from(m.1.encode().unwrap())).await.unwrap();
    }

    #[tokio::test]
    async fn commits_survive_reload_through_checkpoints() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (catalog, first) = Catalog::load(store.clone()).await.unwrap();
        let mut current = Arc::new(first);
        let mut ids = Vec::new();
        for i in 0..(CHECKPOINT_EVERY + 5) {
            let m = meta("p");
            put_index(&store, &m).await;
            ids.push(m.0.file_id);
            let removed = if i == 3 { vec![ids[0]] } else { vec![] };
            current = catalog
                .commit(
                    &current,
                    CatalogChange {
                        added: vec![m],
                        removed,
                        wal_persisted_through: Some(SegmentId(i)),
                        next_event_id: i * 10,
                    },
                )
                .await
                .unwrap();
        }
        let (_, reloaded) = Catalog::load(store.clone()).await.unwrap();
        assert_eq!(reloaded.version, CHECKPOINT_EVERY + 5);
        assert_eq!(reloaded.files.len(), current.files.len());
        assert_eq!(reloaded.files.len() as u64, CHECKPOINT_EVERY + 4);
        assert_eq!(reloaded.wal_persisted_through, Some(SegmentId(CHECKPOINT_EVERY + 4)));
        assert!(!reloaded.files.iter().any(|f| f.meta.file_id == ids[0]));
    }

    #[tokio::test]
    async fn a_second_writer_cannot_claim_the_same_version() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (a, base_a) = Catalog::load(store.clone()).await.unwrap();
        let (b, base_b) = Catalog::load(store.clone()).await.unwrap();
        a.commit(&base_a, CatalogChange::default()).await.unwrap();
        assert!(matches!(b.commit(&base_b, CatalogChange::default()).await, Err(CatalogError::Conflict(1))));
    }

    #[tokio::test]
    async fn damaged_manifest_is_reported() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (catalog, base) = Catalog::load(store.clone()).await.unwrap();
        catalog.commit(&base, CatalogChange::default()).await.unwrap();
        let path = CatalogObject::Manifest(1).path();
        let mut bytes = store.get(&path).await.unwrap().bytes().await.unwrap().to_vec();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        store.put(&path, PutPayload::from(bytes)).await.unwrap();
        assert!(matches!(Catalog::load(store).await, Err(CatalogError::Frame { .. })));
    }
}
