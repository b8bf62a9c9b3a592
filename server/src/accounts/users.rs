//! E-mail addresses, the password policy and password hashing (argon2id).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_BYTES: usize = 254;
const MAX_LOCAL_BYTES: usize = 64;
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Hashing cost grows with the input, so a huge "password" is refused before it reaches argon2.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The most common passwords of eight characters or more (from zxcvbn's frequency list, MIT).
static COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    #[error("the e-mail address is empty")]
    EmptyEmail,
    #[error("the e-mail address is longer than {MAX_EMAIL_BYTES} bytes")]
    EmailTooLong,
    #[error("{0:?} is not an e-mail address this server accepts (ASCII local@domain.tld)")]
    InvalidEmail(String),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("this password is among the most common ones; choose another")]
    PasswordTooCommon,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The canonical form of an e-mail address: trimmed, NFKC-folded (full-width letters and other
/// compatibility look-alikes become ASCII) and lower-cased, so `ＡＬＩＣＥ@Example.com` and
/// `alice@example.com` are one account. Anything not plain ASCII afterwards is refused: mixed
/// scripts (a Cyrillic `а` for a Latin `a`) would otherwise make a second account that reads the
/// same as the first.
pub fn normalize_email(raw: &str) -> Result<String, UserError> {
    if raw.len() > MAX_EMAIL_BYTES * 4 {
        return Err(UserError::EmailTooLong);
    }
    let email: String = raw.trim().nfkc().collect::<String>().to_lowercase();
    if email.is_empty() {
        return Err(UserError::EmptyEmail);
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(UserError::EmailTooLong);
    }
    let invalid = || UserError::InvalidEmail(email.chars().take(80).collect());
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_BYTES
        && local.bytes().all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err(invalid())
    }
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
}

/// The length cap alone: checked on every password that is about to be hashed or verified.
pub fn check_password_size(password: &str) -> Result<(), UserError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::PasswordTooLong);
    }
    Ok(())
}

/// Whether a new password may be set: long enough, not huge, and not a common one.
pub fn check_new_password(password: &str) -> Result<(), UserError> {
    check_password_size(password)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort);
    }
    if common_passwords().contains(password.to_lowercase().as_str()) {
        return Err(UserError::PasswordTooCommon);
    }
    Ok(())
}

/// argon2id with a configured cost. The parameters are written into each PHC string, and
/// verification reads them from there, so raising the cost later keeps old hashes working.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password at the current cost, verified when an e-mail is unknown so
    /// that a wrong e-mail takes as long as a wrong password.
    dummy: String,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, UserError> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|e| UserError::Hash(e.to_string()))?;
        let mut hasher = Self { params, dummy: String::new() };
        hasher.dummy = hasher.hash(&hex::encode(rand::random::<[u8; 16]>()))?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, password: &str) -> Result<String, UserError> {
        check_password_size(password)?;
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| UserError::Hash(e.to_string()))?;
        let hash =
            self.argon2().hash_password(password.as_bytes(), &salt).map_err(|e| UserError::Hash(e.to_string()))?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches `stored`; a damaged hash never matches.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        if check_password_size(password).is_err() {
            return false;
        }
        match PasswordHash::new(stored) {
            Ok(parsed) => self.argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification, for an unknown e-mail.
    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_addresses_fold_to_one_and_tricks_are_refused() {
        assert_eq!(normalize_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        // Full-width letters and at sign.
        assert_eq!(normalize_email("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ").unwrap(), "alice@example.com");
        // Cyrillic 'а' stays non-ASCII: refused rather than a second "alice".
        assert!(matches!(normalize_email("\u{430}lice@example.com"), Err(UserError::InvalidEmail(_))));
        assert!(matches!(normalize_email(""), Err(UserError::EmptyEmail)));
        assert!(matches!(normalize_email("no-at-sign"), Err(UserError::InvalidEmail(_))));
        assert!(matches!(normalize_email("a@b"), Err(UserError::InvalidEmail(_))));
        assert!(matches!(normalize_email("a b@example.com"), Err(UserError::InvalidEmail(_))));
        assert!(matches!(normalize_email(&format!("{}@example.com", "a".repeat(300))), Err(UserError::EmailTooLong)));
        assert!(matches!(normalize_email(&format!("{}@example.com", "a".repeat(65))), Err(UserError::InvalidEmail(_))));
    }

    #[test]
    fn password_policy() {
        assert_eq!(check_new_password("short"), Err(UserError::PasswordTooShort));
        assert_eq!(check_new_password("password1"), Err(UserError::PasswordTooCommon));
        assert_eq!(check_new_password("PASSWORD1"), Err(UserError::PasswordTooCommon));
        assert_eq!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)), Err(UserError::PasswordTooLong));
        assert!(check_new_password("correct horse battery").is_ok());
        assert!(common_passwords().len() > 10_000);
    }

    #[test]
    fn hashes_record_their_parameters_and_verify() {
        let hasher = PasswordHasher::new(1024, 1).unwrap();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery", &hash));
        assert!(!hasher.verify("correct horse batterx", &hash));
        assert!(!hasher.verify("x", "not a hash"));
        // A hash made at another cost still verifies: the cost comes from the string.
        let stronger = PasswordHasher::new(2048, 2).unwrap();
        assert!(stronger.verify("correct horse battery", &hash));
    }
}
