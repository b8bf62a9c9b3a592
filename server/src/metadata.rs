//! Projects, API keys and visitor-hash salts, in an embedded transactional store (redb) in the
//! data directory. Reads are served from memory; every change is one committed write transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use chrono::{DateTime, NaiveDate, Utc};
use footfall_engine::ProjectId;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use thiserror::Error;

const PROJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("projects");
/// Key: blake3 hash of the token, hex. The token itself is never stored.
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Key: UTC day `YYYY-MM-DD`; value: 32 random bytes.
const SALTS: TableDefinition<&str, &[u8]> = TableDefinition::new("salts");

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("metadata store: {0}")]
    Db(Box<redb::Error>),
    #[error("metadata record is damaged: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("project {0} already exists")]
    ProjectExists(ProjectId),
    #[error("domain {0} already belongs to project {1}")]
    DomainTaken(String, ProjectId),
    #[error("no project {0}")]
    NoProject(String),
}

fn store_err<E: Into<redb::Error>>(e: E) -> MetadataError {
    MetadataError::Db(Box::new(e.into()))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub domain: String,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    Ingest,
    Query,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub project: ProjectId,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
}

pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Domains are matched without a leading `www.` and case-insensitively, as Plausible does.
pub fn normalize_domain(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

pub struct Metadata {
    db: Database,
    projects: RwLock<HashMap<ProjectId, Project>>,
    domains: RwLock<HashMap<String, ProjectId>>,
    keys: RwLock<HashMap<String, ApiKey>>,
}

impl Metadata {
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        let db = Database::create(path).map_err(store_err)?;
        let tx = db.begin_write().map_err(store_err)?;
        {
            tx.open_table(PROJECTS).map_err(store_err)?;
            tx.open_table(KEYS).map_err(store_err)?;
            tx.open_table(SALTS).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;

        let mut projects = HashMap::new();
        let mut keys = HashMap::new();
        {
            let rx = db.begin_read().map_err(store_err)?;
            for row in rx.open_table(PROJECTS).map_err(store_err)?.iter().map_err(store_err)? {
                let (_, v) = row.map_err(store_err)?;
                let p: Project = serde_json::from_slice(v.value())?;
                projects.insert(p.id.clone(), p);
            }
            for row in rx.open_table(KEYS).map_err(store_err)?.iter().map_err(store_err)? {
                let (k, v) = row.map_err(store_err)?;
                keys.insert(k.value().to_string(), serde_json::from_slice(v.value())?);
            }
        }
        let domains = projects.values().map(|p| (normalize_domain(&p.domain), p.id.clone())).collect();
        Ok(Self { db, projects: RwLock::new(projects), domains: RwLock::new(domains), keys: RwLock::new(keys) })
    }

    pub fn create_project(&self, project: Project) -> Result<Project, MetadataError> {
        let mut projects = self.projects.write().unwrap_or_else(|p| p.into_inner());
        let mut domains = self.domains.write().unwrap_or_else(|p| p.into_inner());
        if projects.contains_key(&project.id) {
            return Err(MetadataError::ProjectExists(project.id));
        }
        let domain = normalize_domain(&project.domain);
        if let Some(owner) = domains.get(&domain) {
            return Err(MetadataError::DomainTaken(domain, owner.clone()));
        }
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(PROJECTS).map_err(store_err)?;
            table.insert(project.id.as_str(), serde_json::to_vec(&project)?.as_slice()).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        projects.insert(project.id.clone(), project.clone());
        domains.insert(domain, project.id.clone());
        Ok(project)
    }

    pub fn projects(&self) -> Vec<Project> {
        let mut all: Vec<Project> = self.projects.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn project(&self, id: &str) -> Option<Project> {
        let id = ProjectId::new(id).ok()?;
        self.projects.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Whether `id` names a project; ingest asks this per event, so it copies nothing.
    pub fn has_project(&self, id: &ProjectId) -> bool {
        self.projects.read().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    pub fn project_for_domain(&self, domain: &str) -> Option<ProjectId> {
        self.domains.read().unwrap_or_else(|p| p.into_inner()).get(&normalize_domain(domain)).cloned()
    }

    /// Stores a new key for `project` and returns the token, which is shown only this once.
    pub fn create_key(&self, project: &ProjectId, scope: KeyScope) -> Result<String, MetadataError> {
        if self.project(project.as_str()).is_none() {
            return Err(MetadataError::NoProject(project.to_string()));
        }
        let token = format!(
            "ff_{}_{}",
            match scope {
                KeyScope::Ingest => "ing",
                KeyScope::Query => "qry",
            },
            hex::encode(rand::random::<[u8; 24]>())
        );
        let key = ApiKey { project: project.clone(), scope, created_at: Utc::now() };
        let hash = hash_token(&token);
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(KEYS).map_err(store_err)?;
            table.insert(hash.as_str(), serde_json::to_vec(&key)?.as_slice()).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(hash, key);
        Ok(token)
    }

    pub fn key(&self, token: &str) -> Option<ApiKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(&hash_token(token)).cloned()
    }

    /// The salt of `day`, created on first use; salts of days before `keep_from` are deleted.
    pub fn salt_for(&self, day: NaiveDate, keep_from: NaiveDate) -> Result<[u8; 32], MetadataError> {
        let name = day.format("%Y-%m-%d").to_string();
        let keep = keep_from.format("%Y-%m-%d").to_string();
        let tx = self.db.begin_write().map_err(store_err)?;
        let salt = {
            let mut table = tx.open_table(SALTS).map_err(store_err)?;
            let expired: Vec<String> = table
                .iter()
                .map_err(store_err)?
                .filter_map(|row| row.ok().map(|(k, _)| k.value().to_string()))
                .filter(|d| d.as_str() < keep.as_str())
                .collect();
            for d in expired {
                table.remove(d.as_str()).map_err(store_err)?;
            }
            let existing =
                table.get(name.as_str()).map_err(store_err)?.and_then(|v| <[u8; 32]>::try_from(v.value()).ok());
            match existing {
                Some(salt) => salt,
                None => {
                    let salt: [u8; 32] = rand::random();
                    table.insert(name.as_str(), salt.as_slice()).map_err(store_err)?;
                    salt
                }
            }
        };
        tx.commit().map_err(store_err)?;
        Ok(salt)
    }

    #[cfg(test)]
    pub fn salt_days(&self) -> Result<Vec<String>, MetadataError> {
        let rx = self.db.begin_read().map_err(store_err)?;
        let table = rx.open_table(SALTS).map_err(store_err)?;
        let days =
            table.iter().map_err(store_err)?.filter_map(|r| r.ok().map(|(k, _)| k.value().to_string())).collect();
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str, domain: &str) -> Project {
        Project {
            id: ProjectId::new(id).unwrap(),
            domain: domain.into(),
            timezone: "UTC".into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn projects_keys_and_salts_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let token;
        let salt;
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        {
            let m = Metadata::open(&path).unwrap();
            m.create_project(project("site1", "www.Example.com")).unwrap();
            assert!(matches!(m.create_project(project("site1", "x.com")), Err(MetadataError::ProjectExists(_))));
            assert!(matches!(m.create_project(project("site2", "example.com")), Err(MetadataError::DomainTaken(..))));
            token = m.create_key(&ProjectId::new("site1").unwrap(), KeyScope::Query).unwrap();
            salt = m.salt_for(day, day.pred_opt().unwrap()).unwrap();
        }
        let m = Metadata::open(&path).unwrap();
        assert_eq!(m.project_for_domain("example.com").unwrap().as_str(), "site1");
        assert_eq!(m.key(&token).unwrap().scope, KeyScope::Query);
        assert!(m.key("ff_qry_wrong").is_none());
        assert_eq!(m.salt_for(day, day).unwrap(), salt);
        // Two days later the salt is gone: visitor ids can no longer be linked to that day.
        let later = day + chrono::Duration::days(2);
        let fresh = m.salt_for(later, later.pred_opt().unwrap()).unwrap();
        assert_ne!(fresh, salt);
        assert_eq!(m.salt_days().unwrap(), vec!["2026-11-27".to_string()]);
    }
}
