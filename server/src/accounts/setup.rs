//! The one-time setup link of a fresh install: while no user exists, each start makes a new
//! token (valid 24 h, stored hashed; the previous one stops working) and logs the link once.
//! Following it creates the first instance owner.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::store::{SECRETS, USERS};
use crate::accounts::{hash_secret, insert_user, new_token, users, AccountError, Accounts, User};

const SETUP_KEY: &str = "setup_token";
pub const SETUP_TTL_HOURS: i64 = 24;

#[derive(Serialize, Deserialize)]
struct SetupToken {
    hash: String,
    expires_at: DateTime<Utc>,
}

impl Accounts {
    /// A new setup token when there is no user yet; `None` otherwise.
    pub fn new_setup_token(&self) -> Result<Option<String>, AccountError> {
        let token = new_token("ffs_setup");
        let record =
            SetupToken { hash: hash_secret(&token), expires_at: Utc::now() + ChronoDuration::hours(SETUP_TTL_HOURS) };
        self.store.write(|tx| {
            if tx.count(USERS)? > 0 {
                tx.remove(SECRETS, SETUP_KEY)?;
                return Ok(None);
            }
            tx.put(SECRETS, SETUP_KEY, &record)?;
            Ok::<_, AccountError>(Some(token))
        })
    }

    /// Creates the first owner with the setup token; refused once any user exists.
    pub fn complete_setup(
        &self,
        token: &str,
        email: &str,
        password_hash: String,
        address: Option<String>,
    ) -> Result<User, AccountError> {
        let email = users::normalize_email(email)?;
        let presented = hash_secret(token);
        self.store.write(|tx| {
            let record: SetupToken = tx
                .get(SECRETS, SETUP_KEY)?
                .ok_or_else(|| AccountError::NotFound("no setup link is open (a user exists already)".into()))?;
            if !bool::from(record.hash.as_bytes().ct_eq(presented.as_bytes())) {
                return Err(AccountError::NotFound("unknown setup token".into()));
            }
            if Utc::now() >= record.expires_at {
                return Err(AccountError::Expired(
                    "the setup link has expired; restart the server for a new one".into(),
                ));
            }
            if tx.count(USERS)? > 0 {
                return Err(AccountError::Conflict("a user exists already".into()));
            }
            let user = insert_user(tx, &email, password_hash, true)?;
            tx.remove(SECRETS, SETUP_KEY)?;
            tx.append_audit(
                &AuditEntry::new(Actor::Anonymous, "user_created").user(&user.id).address(address).detail("setup link"),
            )?;
            Ok(user)
        })
    }
}
