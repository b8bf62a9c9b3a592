//! People who sign in: users, their sessions and second factor, their roles per project,
//! invitations, share links, sign-in limits and the audit log. `Accounts` is the one service the
//! HTTP layer and the `footfall user add` command talk to; each module adds its part of it.

pub mod audit;
pub mod invitations;
pub mod limits;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod share_links;
pub mod spool;
pub mod store;
pub mod totp;
pub mod users;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::accounts::limits::LoginGuard;
use crate::accounts::store::{Store, StoreError, EMAILS, USERS};
use crate::accounts::users::{PasswordHasher, UserError};

/// A user's id: random, never the e-mail, so an address can change without rewriting references.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(format!("u_{}", hex::encode(rand::random::<[u8; 8]>())))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 18 && s.starts_with("u_") && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

/// A user's second factor once confirmed.
#[derive(Clone, Serialize, Deserialize)]
pub struct TotpRecord {
    /// Base32 secret. Needed to check codes, so it cannot be hashed; it never leaves this record
    /// except once, to the user, at enrolment.
    pub secret: String,
    pub enabled_at: DateTime<Utc>,
    /// The last 30-second step whose code was accepted: a code is good once.
    pub last_step: u64,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    /// May create projects and is an owner of every project (`footfall user add --owner`, the
    /// setup link).
    pub instance_owner: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub totp: Option<TotpRecord>,
    /// A secret handed out by enrolment and not yet proven with a code.
    #[serde(default)]
    pub totp_pending: Option<String>,
    /// blake3 hashes of the unused recovery codes.
    #[serde(default)]
    pub recovery_codes: Vec<String>,
    /// Keyed hashes of the addresses this user last signed in from; an account lock does not
    /// apply to them, so an attacker elsewhere cannot keep the owner out.
    #[serde(default)]
    pub known_addresses: Vec<String>,
}

/// Secrets stay out of logs even when someone debug-prints a user.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("instance_owner", &self.instance_owner)
            .field("totp", &self.totp.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Totp(#[from] totp::TotpError),
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("too many attempts; try again in {0} s")]
    RateLimited(u64),
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
}

/// Settings of the accounts service, from `Config`.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub session_idle_timeout: Duration,
    pub session_lifetime: Duration,
    pub invitation_ttl: Duration,
    pub login_rate_limit: u32,
    pub login_lock_after: u32,
    pub login_lock_delay: Duration,
    pub login_lock_max: Duration,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::from_secs(12 * 3600),
            session_lifetime: Duration::from_secs(14 * 86_400),
            invitation_ttl: Duration::from_secs(7 * 86_400),
            login_rate_limit: 10,
            login_lock_after: 5,
            login_lock_delay: Duration::from_secs(60),
            login_lock_max: Duration::from_secs(3600),
            argon2_memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            argon2_iterations: DEFAULT_ARGON2_ITERATIONS,
        }
    }
}

/// 19 MiB, 2 passes (OWASP's argon2id baseline): 118–192 ms per hash on the 2-core reference
/// machine under load (docs/benchmarks-signin.md).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;

pub struct Accounts {
    pub(crate) store: Store,
    pub(crate) hasher: PasswordHasher,
    pub(crate) config: AccountsConfig,
    pub(crate) guard: LoginGuard,
    pub(crate) share_passwords: share_links::VerifiedPasswords,
    address_key: [u8; 32],
}

impl Accounts {
    /// Opens (or creates) `accounts.redb` at `path`. `StoreError::Locked` when a running server
    /// has it.
    pub fn open(path: &Path, config: AccountsConfig) -> Result<Self, AccountError> {
        let store = Store::open(path)?;
        let hasher = PasswordHasher::new(config.argon2_memory_kib, config.argon2_iterations)?;
        let address_key = audit::address_key(&store)?;
        let guard = LoginGuard::new(&config);
        Ok(Self { store, hasher, config, guard, share_passwords: Default::default(), address_key })
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub fn guard(&self) -> &LoginGuard {
        &self.guard
    }

    pub fn config(&self) -> &AccountsConfig {
        &self.config
    }

    /// A keyed hash of a client address: stable enough to tell "same address as before", useless
    /// for recovering the address without the server's key.
    pub fn hash_address(&self, address: std::net::IpAddr) -> String {
        let hash = blake3::keyed_hash(&self.address_key, address.to_string().as_bytes());
        hex::encode(&hash.as_bytes()[..12])
    }

    pub fn user(&self, id: &UserId) -> Result<Option<User>, AccountError> {
        Ok(self.store.get(USERS, id.as_str())?)
    }

    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, AccountError> {
        let Some(id) = self.store.get::<UserId>(EMAILS, email)? else { return Ok(None) };
        self.user(&id)
    }

    pub fn user_count(&self) -> Result<u64, AccountError> {
        Ok(self.store.count(USERS)?)
    }

    /// Creates a user whose password is already hashed (the CLI hashes before handing a request
    /// to a running server, so the password itself is never written down).
    pub fn create_user_hashed(
        &self,
        email: &str,
        password_hash: String,
        instance_owner: bool,
        actor: &audit::Actor,
    ) -> Result<User, AccountError> {
        let email = users::normalize_email(email)?;
        self.store.write(|tx| {
            let user = insert_user(tx, &email, password_hash, instance_owner)?;
            tx.append_audit(
                &audit::AuditEntry::new(actor.clone(), "user_created").user(&user.id).detail(if instance_owner {
                    "instance owner"
                } else {
                    "user"
                }),
            )?;
            Ok(user)
        })
    }

    /// Remembers an address the user signed in from (the last few), so a lock does not apply
    /// there.
    pub fn remember_address(&self, user: &UserId, address_hash: &str) -> Result<(), AccountError> {
        const KEEP: usize = 10;
        self.store.write(|tx| {
            let Some(mut u) = tx.get::<User>(USERS, user.as_str())? else { return Ok(()) };
            if u.known_addresses.iter().any(|a| a == address_hash) {
                return Ok(());
            }
            u.known_addresses.push(address_hash.to_string());
            if u.known_addresses.len() > KEEP {
                let extra = u.known_addresses.len() - KEEP;
                u.known_addresses.drain(..extra);
            }
            tx.put(USERS, user.as_str(), &u)?;
            Ok::<_, AccountError>(())
        })
    }

    /// Sets a new password hash and ends every other session of the user, in one transaction.
    pub fn change_password(
        &self,
        user: &UserId,
        new_hash: String,
        keep_session: Option<&str>,
        address: Option<String>,
    ) -> Result<usize, AccountError> {
        self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            u.password_hash = new_hash;
            tx.put(USERS, user.as_str(), &u)?;
            let ended = self.revoke_other_sessions(tx, user, keep_session)?;
            tx.append_audit(
                &audit::AuditEntry::new(audit::Actor::User(user.clone()), "password_changed")
                    .user(user)
                    .address(address)
                    .detail(format!("{ended} other sessions ended")),
            )?;
            Ok(ended)
        })
    }

    /// Checks the policy, hashes, and creates the user.
    pub fn create_user(
        &self,
        email: &str,
        password: &str,
        instance_owner: bool,
        actor: &audit::Actor,
    ) -> Result<User, AccountError> {
        users::normalize_email(email)?;
        users::check_new_password(password)?;
        let hash = self.hasher.hash(password)?;
        self.create_user_hashed(email, hash, instance_owner, actor)
    }
}

/// Inserts a user inside a transaction, refusing an e-mail already taken.
pub(crate) fn insert_user(
    tx: &store::Tx,
    email: &str,
    password_hash: String,
    instance_owner: bool,
) -> Result<User, AccountError> {
    if tx.get::<UserId>(EMAILS, email)?.is_some() {
        return Err(AccountError::EmailTaken);
    }
    let user = User {
        id: UserId::generate(),
        email: email.to_string(),
        password_hash,
        instance_owner,
        created_at: Utc::now(),
        totp: None,
        totp_pending: None,
        recovery_codes: Vec::new(),
        known_addresses: Vec::new(),
    };
    tx.put(USERS, user.id.as_str(), &user)?;
    tx.put(EMAILS, email, &user.id)?;
    Ok(user)
}

/// The blake3 hash of a token, hex — the same as API keys use.
pub fn hash_secret(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// A new random token with a readable prefix saying what it is.
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(rand::random::<[u8; 24]>()))
}
