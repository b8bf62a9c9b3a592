//! Share links: a read-only token for one project's aggregates, optionally behind a password,
//! listed and revocable by the project's admins.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use footfall_engine::ProjectId;
use serde::{Deserialize, Serialize};

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::store::SHARE_LINKS;
use crate::accounts::{hash_secret, new_token, users, AccountError, Accounts};

/// Verified (token, password) pairs kept before argon2 is asked again; a dashboard makes many
/// requests per view.
const MAX_VERIFIED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShareLinkId(pub String);

#[derive(Clone, Serialize, Deserialize)]
pub struct ShareLink {
    pub id: ShareLinkId,
    pub project: ProjectId,
    pub created_at: DateTime<Utc>,
    pub created_by: Actor,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for ShareLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLink").field("id", &self.id).field("project", &self.project).finish_non_exhaustive()
    }
}

/// blake3 of token and password for pairs argon2 already accepted.
#[derive(Default)]
pub struct VerifiedPasswords(Mutex<HashSet<String>>);

/// Why a share token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareAccess {
    Granted(ShareLinkId, ProjectId),
    Unknown,
    PasswordNeeded,
    WrongPassword,
}

impl Accounts {
    pub fn create_share_link(
        &self,
        project: &ProjectId,
        password: Option<&str>,
        actor: &Actor,
        address: Option<String>,
    ) -> Result<(ShareLinkId, String), AccountError> {
        let password_hash = match password {
            Some(p) => {
                users::check_new_password(p)?;
                Some(self.hasher.hash(p)?)
            }
            None => None,
        };
        let token = new_token("ffs_shr");
        let id = ShareLinkId(format!("sl_{}", hex::encode(rand::random::<[u8; 6]>())));
        let link = ShareLink {
            id: id.clone(),
            project: project.clone(),
            created_at: Utc::now(),
            created_by: actor.clone(),
            password_hash,
        };
        self.store.write(|tx| {
            tx.put(SHARE_LINKS, &hash_secret(&token), &link)?;
            tx.append_audit(
                &AuditEntry::new(actor.clone(), "share_link_created")
                    .project(project)
                    .target(id.0.clone())
                    .address(address)
                    .detail(if link.password_hash.is_some() { "with password" } else { "without password" }),
            )?;
            Ok::<_, AccountError>(())
        })?;
        Ok((id, token))
    }

    pub fn share_links(&self, project: &ProjectId) -> Result<Vec<ShareLink>, AccountError> {
        let all: Vec<(String, ShareLink)> = self.store.scan(SHARE_LINKS, "")?;
        let mut links: Vec<ShareLink> = all.into_iter().map(|(_, l)| l).filter(|l| &l.project == project).collect();
        links.sort_by_key(|l| l.created_at);
        Ok(links)
    }

    /// Revokes a link; `false` if the project has no such link.
    pub fn revoke_share_link(
        &self,
        project: &ProjectId,
        id: &str,
        actor: &Actor,
        address: Option<String>,
    ) -> Result<bool, AccountError> {
        self.store.write(|tx| {
            let all: Vec<(String, ShareLink)> = tx.scan(SHARE_LINKS, "")?;
            let Some((hash, link)) = all.into_iter().find(|(_, l)| &l.project == project && l.id.0 == id) else {
                return Ok(false);
            };
            tx.remove(SHARE_LINKS, &hash)?;
            tx.append_audit(
                &AuditEntry::new(actor.clone(), "share_link_revoked")
                    .project(project)
                    .target(link.id.0)
                    .address(address),
            )?;
            Ok::<_, AccountError>(true)
        })
    }

    /// Checks a share token (and its password, when the link has one).
    pub fn share_access(&self, token: &str, password: Option<&str>) -> Result<ShareAccess, AccountError> {
        if !token.starts_with("ffs_shr_") || token.len() > 128 {
            return Ok(ShareAccess::Unknown);
        }
        let hash = hash_secret(token);
        let Some(link) = self.store.get::<ShareLink>(SHARE_LINKS, &hash)? else { return Ok(ShareAccess::Unknown) };
        if let Some(stored) = &link.password_hash {
            let Some(password) = password else { return Ok(ShareAccess::PasswordNeeded) };
            let pair = hash_secret(&format!("{hash}\u{0}{password}"));
            let cached = self.share_passwords.0.lock().unwrap_or_else(|p| p.into_inner()).contains(&pair);
            if !cached {
                if !self.hasher.verify(password, stored) {
                    return Ok(ShareAccess::WrongPassword);
                }
                let mut set = self.share_passwords.0.lock().unwrap_or_else(|p| p.into_inner());
                if set.len() >= MAX_VERIFIED {
                    set.clear();
                }
                set.insert(pair);
            }
        }
        Ok(ShareAccess::Granted(link.id, link.project))
    }
}
