//! Signed-in sessions: an opaque random token in a cookie, stored server-side only as its hash,
//! with an idle timeout and an absolute lifetime. A session is `Pending` between a correct
//! password and a correct second factor, and `EnrolOnly` for a member of a project that requires
//! a second factor they do not have yet.

use std::net::IpAddr;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::store::SESSIONS;
use crate::accounts::{hash_secret, new_token, AccountError, Accounts, User, UserId};

pub const COOKIE_NAME: &str = "footfall_session";
/// How long a password-checked sign-in waits for its second factor.
pub const PENDING_LIFETIME_SECS: i64 = 300;
/// `last_seen` is written at most this often: the idle timeout needs no finer clock, and a
/// dashboard's requests then cost no write each.
const TOUCH_EVERY_SECS: i64 = 60;
const MAX_USER_AGENT_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Full,
    Pending,
    EnrolOnly,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// Public id for listing and revoking: a prefix of the token's hash, which says nothing
    /// about the token.
    pub id: String,
    pub user: UserId,
    pub stage: Stage,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub csrf: String,
    pub address: String,
    pub user_agent: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).field("user", &self.user).field("stage", &self.stage).finish()
    }
}

/// A session found for a cookie, with the hash it is stored under.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub hash: String,
    pub session: Session,
}

impl ActiveSession {
    /// Constant-time check of a request's `X-CSRF-Token`.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.session.csrf.as_bytes()))
    }
}

impl Accounts {
    /// Starts a session; returns the token for the cookie (shown to nobody else, stored only as
    /// its hash).
    pub fn start_session(
        &self,
        user: &User,
        stage: Stage,
        address: IpAddr,
        user_agent: &str,
    ) -> Result<(String, Session), AccountError> {
        let token = new_token("ffs_sess");
        let hash = hash_secret(&token);
        let now = Utc::now();
        let lifetime = match stage {
            Stage::Pending => ChronoDuration::seconds(PENDING_LIFETIME_SECS),
            _ => ChronoDuration::from_std(self.config.session_lifetime).unwrap_or(ChronoDuration::days(14)),
        };
        let session = Session {
            id: hash[..16].to_string(),
            user: user.id.clone(),
            stage,
            created_at: now,
            last_seen: now,
            expires_at: now + lifetime,
            csrf: hex::encode(rand::random::<[u8; 24]>()),
            address: self.hash_address(address),
            user_agent: user_agent.chars().take(MAX_USER_AGENT_CHARS).collect(),
        };
        self.store.write(|tx| tx.put(SESSIONS, &hash, &session))?;
        Ok((token, session))
    }

    /// The live session for a cookie token; expired ones are removed on sight.
    pub fn session(&self, token: &str) -> Result<Option<ActiveSession>, AccountError> {
        if token.len() > 128 {
            return Ok(None);
        }
        let hash = hash_secret(token);
        let Some(mut session) = self.store.get::<Session>(SESSIONS, &hash)? else { return Ok(None) };
        let now = Utc::now();
        let idle = ChronoDuration::from_std(self.config.session_idle_timeout).unwrap_or(ChronoDuration::hours(12));
        if now >= session.expires_at || (session.stage != Stage::Pending && now - session.last_seen >= idle) {
            self.store.write(|tx| tx.remove(SESSIONS, &hash))?;
            return Ok(None);
        }
        if (now - session.last_seen).num_seconds() >= TOUCH_EVERY_SECS {
            session.last_seen = now;
            // Only if it still exists: a revocation racing this request must win.
            self.store.write(|tx| {
                if tx.get::<Session>(SESSIONS, &hash)?.is_some() {
                    tx.put(SESSIONS, &hash, &session)?;
                }
                Ok::<_, AccountError>(())
            })?;
        }
        Ok(Some(ActiveSession { hash, session }))
    }

    /// Replaces a session (pending → full, enrol-only → full) with a new token, so a token seen
    /// before the second factor is worth nothing after it.
    pub fn upgrade_session(
        &self,
        old: &ActiveSession,
        user: &User,
        address: IpAddr,
        user_agent: &str,
    ) -> Result<(String, Session), AccountError> {
        self.store.write(|tx| tx.remove(SESSIONS, &old.hash))?;
        self.start_session(user, Stage::Full, address, user_agent)
    }

    pub fn end_session(&self, session: &ActiveSession) -> Result<(), AccountError> {
        self.store.write(|tx| tx.remove(SESSIONS, &session.hash))?;
        Ok(())
    }

    /// The user's live sessions.
    pub fn sessions_of(&self, user: &UserId) -> Result<Vec<(String, Session)>, AccountError> {
        let now = Utc::now();
        let all: Vec<(String, Session)> = self.store.scan(SESSIONS, "")?;
        Ok(all.into_iter().filter(|(_, s)| &s.user == user && s.expires_at > now).collect())
    }

    /// Revokes one of the user's sessions by its public id; `false` if there is none.
    pub fn revoke_session(&self, user: &UserId, id: &str, address: Option<String>) -> Result<bool, AccountError> {
        let found = self.sessions_of(user)?.into_iter().find(|(_, s)| s.id == id);
        let Some((hash, _)) = found else { return Ok(false) };
        self.store.write(|tx| {
            tx.remove(SESSIONS, &hash)?;
            tx.append_audit(
                &AuditEntry::new(Actor::User(user.clone()), "session_revoked").user(user).target(id).address(address),
            )?;
            Ok::<_, AccountError>(())
        })?;
        Ok(true)
    }

    /// Ends every session of the user but `keep` (after a password change, or MFA changes).
    pub(crate) fn revoke_other_sessions(
        &self,
        tx: &crate::accounts::store::Tx,
        user: &UserId,
        keep: Option<&str>,
    ) -> Result<usize, AccountError> {
        let all: Vec<(String, Session)> = tx.scan(SESSIONS, "")?;
        let mut n = 0;
        for (hash, s) in all {
            if &s.user == user && Some(hash.as_str()) != keep {
                tx.remove(SESSIONS, &hash)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Drops expired sessions; called from housekeeping.
    pub fn prune_sessions(&self) -> Result<usize, AccountError> {
        let now = Utc::now();
        let idle = ChronoDuration::from_std(self.config.session_idle_timeout).unwrap_or(ChronoDuration::hours(12));
        let all: Vec<(String, Session)> = self.store.scan(SESSIONS, "")?;
        let dead: Vec<String> = all
            .into_iter()
            .filter(|(_, s)| now >= s.expires_at || (s.stage != Stage::Pending && now - s.last_seen >= idle))
            .map(|(h, _)| h)
            .collect();
        if !dead.is_empty() {
            self.store.write(|tx| {
                for h in &dead {
                    tx.remove(SESSIONS, h)?;
                }
                Ok::<_, AccountError>(())
            })?;
        }
        Ok(dead.len())
    }
}

/// The `Set-Cookie` value for a session token.
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// The session token in a `Cookie` header, if any.
pub fn cookie_token(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == COOKIE_NAME).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_flags_and_parsing() {
        let c = session_cookie("abc", 60, true);
        assert_eq!(c, "footfall_session=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=60; Secure");
        assert!(!session_cookie("abc", 60, false).contains("Secure"));
        assert_eq!(cookie_token("a=1; footfall_session=tok; b=2"), Some("tok"));
        assert_eq!(cookie_token("a=1"), None);
    }
}
