//! Roles per project (`project_users`) and each project's account settings.

use std::collections::BTreeMap;

use footfall_engine::ProjectId;
use serde::{Deserialize, Serialize};

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::store::{MEMBERS, SETTINGS, USERS};
use crate::accounts::{AccountError, Accounts, User, UserId};

/// Ordered: each role can do all that the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Dashboards, the Stats API, SQL over the project.
    Viewer,
    /// Settings, keys, share links.
    Admin,
    /// Members and roles, deletion, transfer.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

/// The privacy threshold when a project has not set one.
pub const DEFAULT_PRIVACY_THRESHOLD: u32 = 5;
pub const MAX_PRIVACY_THRESHOLD: u32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectSettings {
    /// Members without a second factor may sign in only to enrol one.
    pub require_mfa: bool,
    /// Shared views fold breakdown rows with fewer visitors than this into "(other)".
    pub privacy_threshold: u32,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self { require_mfa: false, privacy_threshold: DEFAULT_PRIVACY_THRESHOLD }
    }
}

pub(crate) fn member_key(project: &ProjectId, user: &UserId) -> String {
    format!("{project}/{user}")
}

impl Accounts {
    /// The user's role on `project`: instance owners own every project.
    pub fn role(&self, user: &User, project: &ProjectId) -> Result<Option<Role>, AccountError> {
        if user.instance_owner {
            return Ok(Some(Role::Owner));
        }
        Ok(self.store.get(MEMBERS, &member_key(project, &user.id))?)
    }

    /// The user's role on each of `projects` they belong to.
    pub fn roles(&self, user: &User, projects: &[ProjectId]) -> Result<BTreeMap<ProjectId, Role>, AccountError> {
        let mut out = BTreeMap::new();
        for p in projects {
            if let Some(role) = self.role(user, p)? {
                out.insert(p.clone(), role);
            }
        }
        Ok(out)
    }

    /// Members of `project` with an explicit role (instance owners are not listed).
    pub fn members(&self, project: &ProjectId) -> Result<Vec<(UserId, Role)>, AccountError> {
        let rows: Vec<(String, Role)> = self.store.scan(MEMBERS, &format!("{project}/"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, role)| k.rsplit_once('/').and_then(|(_, u)| UserId::parse(u)).map(|u| (u, role)))
            .collect())
    }

    /// Sets a member's role; refuses to leave the project without an owner.
    pub fn set_role(
        &self,
        project: &ProjectId,
        user: &UserId,
        role: Option<Role>,
        actor: &Actor,
        address: Option<String>,
    ) -> Result<(), AccountError> {
        let members = self.members(project)?;
        let current = members.iter().find(|(u, _)| u == user).map(|(_, r)| *r);
        if current.is_none() {
            return Err(AccountError::NotFound(format!("{user} is not a member of {project}")));
        }
        let owners = members.iter().filter(|(_, r)| *r == Role::Owner).count();
        if current == Some(Role::Owner) && role != Some(Role::Owner) && owners <= 1 && !self.has_instance_owner()? {
            return Err(AccountError::Conflict("the project's last owner cannot be removed or demoted".into()));
        }
        self.store.write(|tx| {
            let key = member_key(project, user);
            let action = match role {
                Some(r) => {
                    tx.put(MEMBERS, &key, &r)?;
                    format!("role_changed:{}", r.as_str())
                }
                None => {
                    tx.remove(MEMBERS, &key)?;
                    "member_removed".to_string()
                }
            };
            let entry = AuditEntry::new(actor.clone(), &action).project(project).user(user).address(address);
            tx.append_audit(&entry)?;
            Ok::<_, AccountError>(())
        })
    }

    fn has_instance_owner(&self) -> Result<bool, AccountError> {
        let users: Vec<(String, User)> = self.store.scan(USERS, "")?;
        Ok(users.iter().any(|(_, u)| u.instance_owner))
    }

    pub fn settings(&self, project: &ProjectId) -> Result<ProjectSettings, AccountError> {
        Ok(self.store.get(SETTINGS, project.as_str())?.unwrap_or_default())
    }

    pub fn set_settings(
        &self,
        project: &ProjectId,
        settings: &ProjectSettings,
        actor: &Actor,
        address: Option<String>,
    ) -> Result<(), AccountError> {
        self.store.write(|tx| {
            tx.put(SETTINGS, project.as_str(), settings)?;
            let detail =
                format!("require_mfa={} privacy_threshold={}", settings.require_mfa, settings.privacy_threshold);
            tx.append_audit(
                &AuditEntry::new(actor.clone(), "settings_changed").project(project).address(address).detail(detail),
            )?;
            Ok::<_, AccountError>(())
        })
    }

    /// Whether a project the user belongs to requires a second factor.
    pub fn mfa_required_for(&self, user: &User) -> Result<bool, AccountError> {
        let rows: Vec<(String, ProjectSettings)> = self.store.scan(SETTINGS, "")?;
        for (project, settings) in rows {
            if !settings.require_mfa {
                continue;
            }
            let Ok(project) = ProjectId::new(project) else { continue };
            if self.role(user, &project)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Admin && Role::Admin < Role::Owner);
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
    }
}
