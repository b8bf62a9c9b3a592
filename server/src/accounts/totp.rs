//! Second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, ±1 step of clock skew) and
//! single-use recovery codes.

use chrono::Utc;
use subtle::ConstantTimeEq;
use thiserror::Error;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::accounts::audit::{Actor, AuditEntry};
use crate::accounts::store::USERS;
use crate::accounts::{hash_secret, AccountError, Accounts, TotpRecord, User, UserId};

const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
const ISSUER: &str = "Footfall";
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, Error)]
pub enum TotpError {
    #[error("two-factor sign-in is already enabled")]
    AlreadyEnabled,
    #[error("two-factor sign-in is not enabled")]
    NotEnabled,
    #[error("start enrolment first (POST /api/v1/auth/totp/enrol)")]
    NotEnrolling,
    #[error("the code is wrong, expired or already used")]
    WrongCode,
    #[error("the stored TOTP secret is damaged: {0}")]
    Damaged(String),
    #[error("could not draw the QR code: {0}")]
    Qr(String),
}

/// What enrolment hands the user, once.
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn totp_for(secret_b32: &str) -> Result<TOTP, TotpError> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().map_err(|e| TotpError::Damaged(format!("{e:?}")))?;
    TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP_SECS, bytes).map_err(|e| TotpError::Damaged(e.to_string()))
}

/// The step (`unix time / 30`) whose code `code` is, among now−1, now, now+1 and after
/// `last_step`; `None` if it is none of them or was used already.
pub fn matching_step(secret_b32: &str, code: &str, now_secs: u64, last_step: u64) -> Result<Option<u64>, TotpError> {
    let totp = totp_for(secret_b32)?;
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let current = now_secs / STEP_SECS;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && step > last_step {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

fn otpauth_uri(secret_b32: &str, email: &str) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(ISSUER),
        enc(email),
        enc(ISSUER)
    )
}

fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| TotpError::Qr(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
}

/// A recovery code: 10 base32 characters (50 bits), shown as `XXXXX-XXXXX`.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let raw: String = (0..10).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// Recovery codes are compared without dashes, spaces or case.
fn recovery_hash(code: &str) -> String {
    let canonical: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
    hash_secret(&format!("recovery:{canonical}"))
}

fn now_secs() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// How a second factor was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
}

impl Accounts {
    /// Hands out a new secret; nothing changes for sign-in until `confirm_totp`.
    pub fn enrol_totp(&self, user: &UserId) -> Result<Enrolment, AccountError> {
        let secret = Secret::Raw(rand::random::<[u8; 20]>().to_vec()).to_encoded().to_string();
        let enrolment = self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            if u.totp.is_some() {
                return Err(TotpError::AlreadyEnabled.into());
            }
            u.totp_pending = Some(secret.clone());
            tx.put(USERS, user.as_str(), &u)?;
            let otpauth_uri = otpauth_uri(&secret, &u.email);
            let qr_svg = qr_svg(&otpauth_uri)?;
            Ok::<_, AccountError>(Enrolment { secret: secret.clone(), otpauth_uri, qr_svg })
        })?;
        Ok(enrolment)
    }

    /// Enables the second factor once the user proves a code; returns the recovery codes.
    pub fn confirm_totp(
        &self,
        user: &UserId,
        code: &str,
        address: Option<String>,
    ) -> Result<Vec<String>, AccountError> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            if u.totp.is_some() {
                return Err(TotpError::AlreadyEnabled.into());
            }
            let secret = u.totp_pending.clone().ok_or(TotpError::NotEnrolling)?;
            let step = matching_step(&secret, code.trim(), now_secs(), 0)?.ok_or(TotpError::WrongCode)?;
            u.totp = Some(TotpRecord { secret, enabled_at: Utc::now(), last_step: step });
            u.totp_pending = None;
            u.recovery_codes = codes.iter().map(|c| recovery_hash(c)).collect();
            tx.put(USERS, user.as_str(), &u)?;
            tx.append_audit(&AuditEntry::new(Actor::User(user.clone()), "mfa_enabled").user(user).address(address))?;
            Ok::<_, AccountError>(())
        })?;
        Ok(codes)
    }

    /// Checks a TOTP code or a recovery code and uses it up. Holding the write transaction
    /// across check and update means two requests racing with one code cannot both pass.
    pub fn check_second_factor(&self, user: &UserId, code: &str) -> Result<Factor, AccountError> {
        let code = code.trim();
        self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            let Some(totp) = u.totp.as_mut() else { return Err(TotpError::NotEnabled.into()) };
            if let Some(step) = matching_step(&totp.secret, code, now_secs(), totp.last_step)? {
                totp.last_step = step;
                tx.put(USERS, user.as_str(), &u)?;
                return Ok(Factor::Totp);
            }
            let hash = recovery_hash(code);
            let before = u.recovery_codes.len();
            u.recovery_codes.retain(|h| !bool::from(h.as_bytes().ct_eq(hash.as_bytes())));
            if u.recovery_codes.len() < before && code.len() <= 32 {
                tx.put(USERS, user.as_str(), &u)?;
                return Ok(Factor::RecoveryCode);
            }
            Err(TotpError::WrongCode.into())
        })
    }

    /// New recovery codes (the old ones stop working), after a current code.
    pub fn regenerate_recovery_codes(
        &self,
        user: &UserId,
        code: &str,
        address: Option<String>,
    ) -> Result<Vec<String>, AccountError> {
        if self.check_second_factor(user, code)? != Factor::Totp {
            return Err(TotpError::WrongCode.into());
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            u.recovery_codes = codes.iter().map(|c| recovery_hash(c)).collect();
            tx.put(USERS, user.as_str(), &u)?;
            tx.append_audit(
                &AuditEntry::new(Actor::User(user.clone()), "recovery_codes_regenerated").user(user).address(address),
            )?;
            Ok::<_, AccountError>(())
        })?;
        Ok(codes)
    }

    /// Turns the second factor off; the caller has checked the password.
    pub fn disable_totp(&self, user: &UserId, code: &str, address: Option<String>) -> Result<(), AccountError> {
        let current = self.user(user)?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
        if self.mfa_required_for(&current)? {
            return Err(AccountError::Conflict(
                "a project you belong to requires two-factor sign-in; it cannot be turned off".into(),
            ));
        }
        if self.check_second_factor(user, code)? != Factor::Totp {
            return Err(TotpError::WrongCode.into());
        }
        self.store.write(|tx| {
            let mut u: User =
                tx.get(USERS, user.as_str())?.ok_or_else(|| AccountError::NotFound("no such user".into()))?;
            u.totp = None;
            u.totp_pending = None;
            u.recovery_codes.clear();
            tx.put(USERS, user.as_str(), &u)?;
            tx.append_audit(&AuditEntry::new(Actor::User(user.clone()), "mfa_disabled").user(user).address(address))?;
            Ok::<_, AccountError>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    #[test]
    fn codes_match_within_one_step_and_only_after_the_last_used() {
        let totp = totp_for(SECRET).unwrap();
        let now = 1_700_000_000u64;
        let step = now / STEP_SECS;
        let code = totp.generate(now);
        assert_eq!(matching_step(SECRET, &code, now, 0).unwrap(), Some(step));
        // Replay: the same step is refused once used.
        assert_eq!(matching_step(SECRET, &code, now, step).unwrap(), None);
        // Clock skew of one step either way.
        assert_eq!(matching_step(SECRET, &totp.generate(now - 30), now, 0).unwrap(), Some(step - 1));
        assert_eq!(matching_step(SECRET, &totp.generate(now + 30), now, 0).unwrap(), Some(step + 1));
        assert_eq!(matching_step(SECRET, &totp.generate(now + 90), now, 0).unwrap(), None);
        assert_eq!(matching_step(SECRET, "12345", now, 0).unwrap(), None);
        assert_eq!(matching_step(SECRET, "abcdef", now, 0).unwrap(), None);
    }

    #[test]
    fn recovery_codes_compare_loosely_and_uri_names_the_issuer() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(recovery_hash(&code), recovery_hash(&code.to_lowercase().replace('-', " ")));
        let uri = otpauth_uri(SECRET, "a@example.com");
        assert!(uri.starts_with("otpauth://totp/Footfall:a%40example%2Ecom?secret="), "{uri}");
        assert!(qr_svg(&uri).unwrap().starts_with("<?xml"));
    }
}
