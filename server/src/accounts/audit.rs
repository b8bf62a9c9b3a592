//! The audit log: who did what, when, from which (hashed) address. Entries are appended inside
//! the same transaction as the change they record, and never updated or deleted.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use footfall_engine::ProjectId;
use serde::{Deserialize, Serialize};

use crate::accounts::store::{Store, StoreError, SECRETS};
use crate::accounts::{AccountError, Accounts, UserId};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Admin,
    User(UserId),
    Key(String),
    Share(String),
    /// `footfall user add` on the server's machine.
    Cli,
    /// Someone not signed in (a failed sign-in, an invitation being accepted).
    Anonymous,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Self::Admin => "admin".into(),
            Self::User(id) => format!("user:{id}"),
            Self::Key(id) => format!("key:{id}"),
            Self::Share(id) => format!("share:{id}"),
            Self::Cli => "cli".into(),
            Self::Anonymous => "anonymous".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    /// The project the change belongs to; `None` for a user's own account (sign-ins, MFA).
    pub project: Option<ProjectId>,
    /// The user the entry is about (the one signing in, the member whose role changed).
    pub user: Option<UserId>,
    pub target: Option<String>,
    /// Keyed hash of the client address (`Accounts::hash_address`), never the address.
    pub address: Option<String>,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(actor: Actor, action: &str) -> Self {
        Self {
            at: Utc::now(),
            actor,
            action: action.to_string(),
            project: None,
            user: None,
            target: None,
            address: None,
            detail: None,
        }
    }

    pub fn project(mut self, project: &ProjectId) -> Self {
        self.project = Some(project.clone());
        self
    }

    pub fn user(mut self, user: &UserId) -> Self {
        self.user = Some(user.clone());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn address(mut self, hashed: Option<String>) -> Self {
        self.address = hashed;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The key for hashing addresses, made once per data directory.
pub(crate) fn address_key(store: &Store) -> Result<[u8; 32], StoreError> {
    store.write(|tx| {
        if let Some(key) = tx.get::<Vec<u8>>(SECRETS, "address_key")?.and_then(|k| <[u8; 32]>::try_from(k).ok()) {
            return Ok(key);
        }
        let key: [u8; 32] = rand::random();
        tx.put(SECRETS, "address_key", &key.to_vec())?;
        Ok(key)
    })
}

impl Accounts {
    /// Appends one entry on its own (for events that change nothing else, such as a failed
    /// sign-in).
    pub fn audit(&self, entry: AuditEntry) {
        if let Err(e) = self.store.write(|tx| tx.append_audit(&entry)) {
            tracing::error!(error = %e, action = %entry.action, "could not append to the audit log");
        }
    }

    /// The entries `projects`' owners may read: those of the projects, plus account events
    /// (sign-ins, MFA changes) of the projects' members. `None`: every entry (the admin token).
    pub fn audit_log(&self, projects: Option<&BTreeSet<ProjectId>>) -> Result<Vec<(u64, AuditEntry)>, AccountError> {
        let entries: Vec<(u64, AuditEntry)> = self.store.audit_entries()?;
        let Some(projects) = projects else { return Ok(entries) };
        let mut members = BTreeSet::new();
        for project in projects {
            for (user, _) in self.members(project)? {
                members.insert(user);
            }
        }
        Ok(entries
            .into_iter()
            .filter(|(_, e)| match &e.project {
                Some(p) => projects.contains(p),
                None => e.user.as_ref().is_some_and(|u| members.contains(u)),
            })
            .collect())
    }
}

/// The `audit_log` SQL table's rows.
pub fn audit_batch(entries: &[(u64, AuditEntry)]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("project_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("target", DataType::Utf8, true),
        Field::new("address_hash", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, true),
    ]));
    let strings = |f: &dyn Fn(&AuditEntry) -> Option<String>| -> ArrayRef {
        Arc::new(entries.iter().map(|(_, e)| f(e)).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(entries.iter().map(|(seq, _)| *seq).collect::<Vec<u64>>())),
        Arc::new(
            TimestampMillisecondArray::from(entries.iter().map(|(_, e)| e.at.timestamp_millis()).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        strings(&|e| Some(e.actor.label())),
        strings(&|e| Some(e.action.clone())),
        strings(&|e| e.project.as_ref().map(|p| p.to_string())),
        strings(&|e| e.user.as_ref().map(|u| u.to_string())),
        strings(&|e| e.target.clone()),
        strings(&|e| e.address.clone()),
        strings(&|e| e.detail.clone()),
    ];
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_has_one_row_per_entry_and_no_secret_columns() {
        let e = AuditEntry::new(Actor::Admin, "key_created").project(&ProjectId::new("p").unwrap()).target("k1");
        let batch = audit_batch(&[(1, e.clone()), (2, e)]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert!(!names.iter().any(|n| n.contains("password") || n.contains("secret")), "{names:?}");
    }
}
