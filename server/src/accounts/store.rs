//! The accounts' records in their own redb file (`accounts.redb` beside `metadata.redb`): users,
//! sessions, project memberships, invitations, share links, per-project settings and the audit
//! log. Every change that touches several records is one write transaction, so a failed request
//! leaves nothing half-written. Records are JSON, as in `metadata.rs`.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// User id → `User`.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Normalised e-mail → user id (JSON string).
pub const EMAILS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_emails");
/// blake3 hash of the session token → `Session`. The token itself is never stored.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `"{project}/{user id}"` → `Role`.
pub const MEMBERS: TableDefinition<&str, &[u8]> = TableDefinition::new("project_users");
/// blake3 hash of the invitation token → `Invitation`.
pub const INVITATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("invitations");
/// blake3 hash of the share token → `ShareLink`.
pub const SHARE_LINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("share_links");
/// Project id → `ProjectSettings`.
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("project_settings");
/// Server-side secrets: the address-hashing key and the setup token's hash.
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("account_secrets");
/// Sequence number → `AuditEntry`. Only ever appended to.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_log");

/// A table of JSON records under string keys.
pub type StrTable = TableDefinition<'static, &'static str, &'static [u8]>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("accounts store: {0}")]
    Db(Box<redb::Error>),
    /// Another process (a running server) holds the store.
    #[error("the accounts store is open in another process")]
    Locked,
    #[error("accounts record is damaged: {0}")]
    Decode(#[from] serde_json::Error),
}

pub(crate) fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

/// One record of a read or write transaction's table.
fn get_in<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match t.get(key).map_err(db_err)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

/// The records under `prefix` of a read or write transaction's table, in key order.
fn scan_in<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<Vec<(String, T)>, StoreError> {
    let mut out = Vec::new();
    for row in t.range(prefix..).map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_string(), serde_json::from_slice(v.value())?));
    }
    Ok(out)
}

pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked),
            Err(e) => return Err(db_err(e)),
        };
        let tx = db.begin_write().map_err(db_err)?;
        for table in [USERS, EMAILS, SESSIONS, MEMBERS, INVITATIONS, SHARE_LINKS, SETTINGS, SECRETS] {
            tx.open_table(table).map_err(db_err)?;
        }
        tx.open_table(AUDIT).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Self { db })
    }

    /// One record, or `None`.
    pub fn get<T: DeserializeOwned>(&self, table: StrTable, key: &str) -> Result<Option<T>, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        get_in(&rx.open_table(table).map_err(db_err)?, key)
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(&self, table: StrTable, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        scan_in(&rx.open_table(table).map_err(db_err)?, prefix)
    }

    pub fn count(&self, table: StrTable) -> Result<u64, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        rx.open_table(table).map_err(db_err)?.len().map_err(db_err)
    }

    /// Audit entries in order of appending.
    pub fn audit_entries<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, StoreError> {
        let rx = self.db.begin_read().map_err(db_err)?;
        let t = rx.open_table(AUDIT).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            out.push((k.value(), serde_json::from_slice(v.value())?));
        }
        Ok(out)
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    pub fn write<R, E: From<StoreError>>(&self, f: impl FnOnce(&Tx) -> Result<R, E>) -> Result<R, E> {
        let tx = Tx { tx: self.db.begin_write().map_err(db_err)? };
        let out = f(&tx)?;
        tx.tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

/// A write transaction with typed helpers.
pub struct Tx {
    tx: WriteTransaction,
}

impl Tx {
    pub fn get<T: DeserializeOwned>(&self, table: StrTable, key: &str) -> Result<Option<T>, StoreError> {
        get_in(&self.tx.open_table(table).map_err(db_err)?, key)
    }

    pub fn put<T: Serialize>(&self, table: StrTable, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value)?;
        let mut t = self.tx.open_table(table).map_err(db_err)?;
        t.insert(key, bytes.as_slice()).map_err(db_err)?;
        Ok(())
    }

    /// Whether there was a record to remove.
    pub fn remove(&self, table: StrTable, key: &str) -> Result<bool, StoreError> {
        let mut t = self.tx.open_table(table).map_err(db_err)?;
        let removed = t.remove(key).map_err(db_err)?.is_some();
        Ok(removed)
    }

    pub fn scan<T: DeserializeOwned>(&self, table: StrTable, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        scan_in(&self.tx.open_table(table).map_err(db_err)?, prefix)
    }

    pub fn count(&self, table: StrTable) -> Result<u64, StoreError> {
        self.tx.open_table(table).map_err(db_err)?.len().map_err(db_err)
    }

    /// Appends one audit entry after the last.
    pub fn append_audit<T: Serialize>(&self, entry: &T) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(entry)?;
        let mut t = self.tx.open_table(AUDIT).map_err(db_err)?;
        let next = t.last().map_err(db_err)?.map_or(1, |(k, _)| k.value() + 1);
        t.insert(next, bytes.as_slice()).map_err(db_err)?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.redb")).unwrap();
        let r: Result<(), StoreError> = store.write(|tx| {
            tx.put(USERS, "u1", &"x")?;
            Err(StoreError::Locked)
        });
        assert!(r.is_err());
        assert!(store.get::<String>(USERS, "u1").unwrap().is_none());
        store.write(|tx| tx.put(MEMBERS, "p1/u1", &"viewer").and_then(|_| tx.put(MEMBERS, "p2/u1", &"owner"))).unwrap();
        let rows: Vec<(String, String)> = store.scan(MEMBERS, "p1/").unwrap();
        assert_eq!(rows, vec![("p1/u1".to_string(), "viewer".to_string())]);
        // A second opener in this process is refused as the server's lock would refuse the CLI.
        assert!(matches!(Store::open(&dir.path().join("a.redb")), Err(StoreError::Locked)));
    }
}
