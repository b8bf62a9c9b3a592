//! Object-store paths as types. Every object Footfall writes is named here and nowhere else.
//!
//! ```text
//! <root>/project=<id>/day=<YYYY-MM-DD>/<file id>.parquet        data (Hive layout)
//! <root>/project=<id>/day=<YYYY-MM-DD>/<file id>.sessions.idx   roaring session index sidecar
//! <root>/_catalog/<version:020>.manifest                          catalog delta
//! <root>/_catalog/<version:020>.checkpoint                        full catalog state
//! ```

use object_store::path::Path;

use crate::ids::{FileId, PartitionKey};

const CATALOG_DIR: &str = "_catalog";

/// Where one data file (and its sidecar) of a partition lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFilePath {
    pub partition: PartitionKey,
    pub file_id: FileId,
}

impl DataFilePath {
    fn dir(&self) -> String {
        format!("project={}/day={}", self.partition.project, self.partition.day)
    }

    pub fn parquet(&self) -> Path {
        Path::from(format!("{}/{}.parquet", self.dir(), self.file_id))
    }

    pub fn session_index(&self) -> Path {
        Path::from(format!("{}/{}.sessions.idx", self.dir(), self.file_id))
    }

    /// The data file a listed object belongs to (its Parquet file or its sidecar); `None` for
    /// anything else, which Footfall never deletes.
    pub fn parse(path: &Path) -> Option<Self> {
        let mut parts = path.parts();
        let project = parts.next()?.as_ref().strip_prefix("project=")?.parse().ok()?;
        let day = parts.next()?.as_ref().strip_prefix("day=")?.parse().ok()?;
        let name = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let name = name.as_ref();
        let stem = name.strip_suffix(".parquet").or_else(|| name.strip_suffix(".sessions.idx"))?;
        Some(Self { partition: PartitionKey { project, day }, file_id: stem.parse().ok()? })
    }
}

/// Kinds of catalog object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogObject {
    Manifest(u64),
    Checkpoint(u64),
}

impl CatalogObject {
    pub fn dir() -> Path {
        Path::from(CATALOG_DIR)
    }

    pub fn path(&self) -> Path {
        match self {
            Self::Manifest(v) => Path::from(format!("{CATALOG_DIR}/{v:020}.manifest")),
            Self::Checkpoint(v) => Path::from(format!("{CATALOG_DIR}/{v:020}.checkpoint")),
        }
    }

    /// Parses a listed path back; unknown objects in the folder are ignored by returning `None`.
    pub fn parse(path: &Path) -> Option<Self> {
        let name = path.filename()?;
        let (stem, ext) = name.split_once('.')?;
        let version = stem.parse::<u64>().ok()?;
        match ext {
            "manifest" => Some(Self::Manifest(version)),
            "checkpoint" => Some(Self::Checkpoint(version)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProjectId;

    #[test]
    fn data_paths_are_hive_style() {
        let p = DataFilePath {
            partition: PartitionKey { project: ProjectId::new("site1").unwrap(), day: "2026-01-02".parse().unwrap() },
            file_id: "0000000000000000000000000000abcd".parse().unwrap(),
        };
        assert_eq!(p.parquet().as_ref(), "project=site1/day=2026-01-02/0000000000000000000000000000abcd.parquet");
        assert!(p.session_index().as_ref().ends_with(".sessions.idx"));
        assert_eq!(DataFilePath::parse(&p.parquet()), Some(p.clone()));
        assert_eq!(DataFilePath::parse(&p.session_index()), Some(p.clone()));
        for other in ["_catalog/00000000000000000001.manifest", "project=site1/day=2026-01-02/notes.txt", "x.parquet"] {
            assert_eq!(DataFilePath::parse(&Path::from(other)), None, "{other}");
        }
    }

    #[test]
    fn catalog_paths_round_trip() {
        for obj in [CatalogObject::Manifest(7), CatalogObject::Checkpoint(100)] {
            assert_eq!(CatalogObject::parse(&obj.path()), Some(obj));
        }
        assert_eq!(CatalogObject::parse(&Path::from("_catalog/tmp.json")), None);
    }
}
