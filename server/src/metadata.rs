//! Projects, API keys and visitor-hash salts, in an embedded transactional store (redb) in the
//! data directory. Reads are served from memory; every change is one committed write transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// The Stats API (aggregates only).
    Stats,
    /// The project's admin actions: keys, share links, settings.
    Admin,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Query => "query",
            Self::Stats => "stats",
            Self::Admin => "admin",
        }
    }

    fn token_prefix(self) -> &'static str {
        match self {
            Self::Ingest => "ing",
            Self::Query => "qry",
            Self::Stats => "sts",
            Self::Admin => "adm",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub project: ProjectId,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
    // Keys made before accounts existed have none of the following.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The user who made it (`None`: the admin token). A key never grants more than its creator
    /// still has: `http::auth` checks the creator's role on every use.
    #[serde(default)]
    pub created_by: Option<String>,
    /// Persisted lazily (see `Metadata::persist_key_usage`); the live value is in memory.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a new key should be.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub scope: KeyScope,
    pub name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
}

/// A key's public id: the first 16 hex digits of its token's hash, so keys made before ids
/// existed have one too, and the id says nothing about the token.
pub fn key_id(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
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
    /// Last use of each key (hash → epoch ms), updated on every request without a disk write and
    /// written to the keys' records by `persist_key_usage`.
    key_usage: RwLock<HashMap<String, AtomicI64>>,
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
        Ok(Self {
            db,
            projects: RwLock::new(projects),
            domains: RwLock::new(domains),
            keys: RwLock::new(keys),
            key_usage: RwLock::new(HashMap::new()),
        })
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
        self.create_key_with(project, NewKey { scope, name: None, expires_at: None, created_by: None })
            .map(|(token, _)| token)
    }

    /// Stores a new key; returns its token (shown only this once) and its id.
    pub fn create_key_with(&self, project: &ProjectId, new: NewKey) -> Result<(String, String), MetadataError> {
        if self.project(project.as_str()).is_none() {
            return Err(MetadataError::NoProject(project.to_string()));
        }
        let token = format!("ff_{}_{}", new.scope.token_prefix(), hex::encode(rand::random::<[u8; 24]>()));
        let key = ApiKey {
            project: project.clone(),
            scope: new.scope,
            created_at: Utc::now(),
            name: new.name,
            expires_at: new.expires_at,
            created_by: new.created_by,
            last_used_at: None,
        };
        let hash = hash_token(&token);
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(KEYS).map_err(store_err)?;
            table.insert(hash.as_str(), serde_json::to_vec(&key)?.as_slice()).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        let id = key_id(&hash).to_string();
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(hash, key);
        Ok((token, id))
    }

    /// The unexpired key for `token`; records its use in memory.
    pub fn key(&self, token: &str) -> Option<ApiKey> {
        let hash = hash_token(token);
        let key = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(&hash).cloned()?;
        let now = Utc::now();
        if key.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        let ms = now.timestamp_millis();
        {
            let usage = self.key_usage.read().unwrap_or_else(|p| p.into_inner());
            if let Some(last) = usage.get(&hash) {
                last.store(ms, Ordering::Relaxed);
                return Some(key);
            }
        }
        self.key_usage.write().unwrap_or_else(|p| p.into_inner()).insert(hash, AtomicI64::new(ms));
        Some(key)
    }

    /// A project's keys with their ids, newest first, last use as of now.
    pub fn keys_of(&self, project: &ProjectId) -> Vec<(String, ApiKey)> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let usage = self.key_usage.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, ApiKey)> = keys
            .iter()
            .filter(|(_, k)| &k.project == project)
            .map(|(hash, k)| {
                let mut k = k.clone();
                if let Some(ms) = usage.get(hash).map(|a| a.load(Ordering::Relaxed)) {
                    k.last_used_at = DateTime::from_timestamp_millis(ms).or(k.last_used_at);
                }
                (key_id(hash).to_string(), k)
            })
            .collect();
        out.sort_by(|a, b| b.1.created_at.cmp(&a.1.created_at).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Deletes a project's key by id; returns it, or `None` if the project has no such key.
    pub fn revoke_key(&self, project: &ProjectId, id: &str) -> Result<Option<ApiKey>, MetadataError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let Some(hash) = keys.iter().find(|(h, k)| key_id(h) == id && &k.project == project).map(|(h, _)| h.clone())
        else {
            return Ok(None);
        };
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(KEYS).map_err(store_err)?;
            table.remove(hash.as_str()).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        self.key_usage.write().unwrap_or_else(|p| p.into_inner()).remove(&hash);
        Ok(keys.remove(&hash))
    }

    /// Writes the in-memory last-use times into the keys' records (from housekeeping: one
    /// transaction a minute at most, instead of one per request).
    pub fn persist_key_usage(&self) -> Result<usize, MetadataError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let usage = self.key_usage.read().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        for (hash, last) in usage.iter() {
            let Some(key) = keys.get_mut(hash) else { continue };
            let at = DateTime::from_timestamp_millis(last.load(Ordering::Relaxed));
            if at.is_some() && at != key.last_used_at {
                key.last_used_at = at;
                changed.push((hash.clone(), serde_json::to_vec(key)?));
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(KEYS).map_err(store_err)?;
            for (hash, bytes) in &changed {
                table.insert(hash.as_str(), bytes.as_slice()).map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)?;
        Ok(changed.len())
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
        // Last use is remembered in memory and written lazily; revoking removes the key.
        let site1 = ProjectId::new("site1").unwrap();
        let (id, last) = m.keys_of(&site1).into_iter().next().map(|(id, k)| (id, k.last_used_at)).unwrap();
        assert!(last.is_some());
        assert_eq!(m.persist_key_usage().unwrap(), 1);
        assert_eq!(m.persist_key_usage().unwrap(), 0);
        let expired = m
            .create_key_with(
                &site1,
                NewKey { scope: KeyScope::Stats, name: None, expires_at: Some(Utc::now()), created_by: None },
            )
            .unwrap()
            .0;
        assert!(m.key(&expired).is_none(), "an expired key is refused");
        assert!(m.revoke_key(&ProjectId::new("site2").unwrap(), &id).unwrap().is_none());
        assert_eq!(m.salt_for(day, day).unwrap(), salt);
        // Two days later the salt is gone: visitor ids can no longer be linked to that day.
        let later = day + chrono::Duration::days(2);
        let fresh = m.salt_for(later, later.pred_opt().unwrap()).unwrap();
        assert_ne!(fresh, salt);
        assert_eq!(m.salt_days().unwrap(), vec!["2026-11-27".to_string()]);
        let site1 = ProjectId::new("site1").unwrap();
        let (id, key) = m.keys_of(&site1).into_iter().find(|(_, k)| k.scope == KeyScope::Query).unwrap();
        assert!(key.last_used_at.is_some(), "its last use is listed");
        assert!(m.revoke_key(&site1, &id).unwrap().is_some());
        assert!(m.key(&token).is_none());
    }
}
