//! Invitations to a project: a link with a random token (stored hashed) and an expiry. Accepting
//! one creates the user and the membership in one transaction and uses the token up.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use footfall_engine::ProjectId;
use serde::{Deserialize, Serialize};

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::roles::{member_key, Role};
use crate::accounts::store::{INVITATIONS, MEMBERS};
use crate::accounts::{hash_secret, insert_user, new_token, users, AccountError, Accounts, User};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub project: ProjectId,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Actor,
}

impl Accounts {
    /// Creates an invitation; returns its token (shown once, to the inviter) and expiry.
    pub fn invite(
        &self,
        project: &ProjectId,
        email: &str,
        role: Role,
        actor: &Actor,
        address: Option<String>,
    ) -> Result<(String, DateTime<Utc>), AccountError> {
        let email = users::normalize_email(email)?;
        let token = new_token("ffs_inv");
        let now = Utc::now();
        let expires_at = now + ChronoDuration::from_std(self.config.invitation_ttl).unwrap_or(ChronoDuration::days(7));
        let invitation = Invitation {
            project: project.clone(),
            email: email.clone(),
            role,
            created_at: now,
            expires_at,
            invited_by: actor.clone(),
        };
        self.store.write(|tx| {
            tx.put(INVITATIONS, &hash_secret(&token), &invitation)?;
            tx.append_audit(
                &AuditEntry::new(actor.clone(), "member_invited")
                    .project(project)
                    .target(email.clone())
                    .address(address)
                    .detail(role.as_str()),
            )?;
            Ok::<_, AccountError>(())
        })?;
        Ok((token, expires_at))
    }

    /// Accepts an invitation. `signed_in`: the caller's user, when they have a session — an
    /// invitation for an existing account is accepted only by that account, signed in, so the
    /// link cannot stand in for its password or second factor. Otherwise the user is created
    /// with `password` (already checked against the policy and hashed by the caller).
    pub fn accept_invitation(
        &self,
        token: &str,
        password_hash: Option<String>,
        signed_in: Option<&User>,
        address: Option<String>,
    ) -> Result<User, AccountError> {
        let hash = hash_secret(token);
        self.store.write(|tx| {
            let inv: Invitation = tx
                .get(INVITATIONS, &hash)?
                .ok_or_else(|| AccountError::NotFound("no such invitation (it may have been used already)".into()))?;
            if Utc::now() >= inv.expires_at {
                tx.remove(INVITATIONS, &hash)?;
                return Err(AccountError::Expired("this invitation has expired; ask for a new one".into()));
            }
            let existing: Option<crate::accounts::UserId> = tx.get(crate::accounts::store::EMAILS, &inv.email)?;
            let user = match (existing, signed_in) {
                (Some(id), Some(me)) if me.id == id => me.clone(),
                (Some(_), _) => {
                    return Err(AccountError::Conflict(
                        "an account with this e-mail exists: sign in as it, then accept the invitation".into(),
                    ))
                }
                (None, _) => {
                    let hash = password_hash
                        .clone()
                        .ok_or_else(|| AccountError::Conflict("a password is needed to create the account".into()))?;
                    insert_user(tx, &inv.email, hash, false)?
                }
            };
            tx.remove(INVITATIONS, &hash)?;
            tx.put(MEMBERS, &member_key(&inv.project, &user.id), &inv.role)?;
            tx.append_audit(
                &AuditEntry::new(Actor::User(user.clone().id), "member_added")
                    .project(&inv.project)
                    .user(&user.id)
                    .address(address.clone())
                    .detail(inv.role.as_str()),
            )?;
            Ok(user)
        })
    }

    /// The invitation for `token` when it is still open (to tell the caller whether a password
    /// is needed before hashing one).
    pub fn invitation(&self, token: &str) -> Result<Option<Invitation>, AccountError> {
        Ok(self.store.get(INVITATIONS, &hash_secret(token))?)
    }
}
