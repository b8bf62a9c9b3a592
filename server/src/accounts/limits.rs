//! Brute-force limits on sign-in and TOTP: a token bucket per client address and per account,
//! and after repeated failures an account lock whose delay doubles per lock up to a cap.
//!
//! Locks are kept per e-mail whether or not an account exists, so a lock answer does not reveal
//! which addresses are registered. They live in memory: a restart forgets them, which only
//! helps the real user. A lock never applies to addresses the user signed in from before
//! (`User::known_addresses`), so an attacker elsewhere cannot keep the owner out; and it expires
//! on its own after at most `login_lock_max`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::accounts::AccountsConfig;

/// Entries kept for e-mails with failures; beyond this the oldest are dropped (an attacker
/// spraying random e-mails cannot grow memory without bound).
const MAX_TRACKED_ACCOUNTS: usize = 100_000;

#[derive(Debug, Clone, Default)]
struct LockState {
    failures: u32,
    locks: u32,
    locked_until: Option<Instant>,
    last_failure: Option<Instant>,
}

pub struct LoginGuard {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    locks: Mutex<HashMap<String, LockState>>,
    lock_after: u32,
    lock_delay: Duration,
    lock_max: Duration,
}

/// Why an attempt may not go ahead, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RateLimited(Duration),
    Locked(Duration),
}

impl Refusal {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        let d = match self {
            Self::RateLimited(d) | Self::Locked(d) => d,
        };
        (d.as_millis() as u64).div_ceil(1000).max(1)
    }
}

impl LoginGuard {
    pub fn new(config: &AccountsConfig) -> Self {
        let per_minute = NonZeroU32::new(config.login_rate_limit.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute);
        Self {
            by_address: RateLimiter::keyed(quota),
            by_account: RateLimiter::keyed(quota),
            locks: Mutex::new(HashMap::new()),
            lock_after: config.login_lock_after.max(1),
            lock_delay: config.login_lock_delay,
            lock_max: config.login_lock_max.max(config.login_lock_delay),
        }
    }

    /// Takes one attempt from the address's and the account's buckets. `kind` separates the
    /// password and the TOTP buckets of one account.
    pub fn attempt(&self, kind: &str, account: &str, address: IpAddr) -> Result<(), Refusal> {
        let now = DefaultClock::default().now();
        if let Err(not_until) = self.by_address.check_key(&address) {
            return Err(Refusal::RateLimited(not_until.wait_time_from(now)));
        }
        if let Err(not_until) = self.by_account.check_key(&format!("{kind}:{account}")) {
            return Err(Refusal::RateLimited(not_until.wait_time_from(now)));
        }
        Ok(())
    }

    /// The remaining lock of `account`, if locked.
    pub fn locked(&self, account: &str) -> Option<Duration> {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let until = locks.get(account)?.locked_until?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Counts a failure; returns the lock it started, if any.
    pub fn failure(&self, account: &str) -> Option<Duration> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() >= MAX_TRACKED_ACCOUNTS && !locks.contains_key(account) {
            let now = Instant::now();
            locks.retain(|_, s| s.locked_until.is_some_and(|u| u > now));
            if locks.len() >= MAX_TRACKED_ACCOUNTS {
                let oldest = locks.iter().min_by_key(|(_, s)| s.last_failure).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    locks.remove(&k);
                }
            }
        }
        let state = locks.entry(account.to_string()).or_default();
        state.failures += 1;
        state.last_failure = Some(Instant::now());
        if state.failures < self.lock_after {
            return None;
        }
        // 1×, 2×, 4×, … the base delay, never more than the cap.
        let factor = 1u32.checked_shl(state.locks.min(20)).unwrap_or(u32::MAX);
        let delay = self.lock_delay.saturating_mul(factor).min(self.lock_max);
        state.failures = 0;
        state.locks += 1;
        state.locked_until = Some(Instant::now() + delay);
        Some(delay)
    }

    /// A successful sign-in clears the account's failures and lock history.
    pub fn success(&self, account: &str) {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }

    /// Forgets idle buckets; called from housekeeping.
    pub fn prune(&self) {
        self.by_address.retain_recent();
        self.by_account.retain_recent();
        let now = Instant::now();
        let max_age = self.lock_max * 2;
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.last_failure.is_some_and(|t| now.duration_since(t) < max_age));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(lock_after: u32, delay_ms: u64, max_ms: u64) -> LoginGuard {
        LoginGuard::new(&AccountsConfig {
            login_rate_limit: 3,
            login_lock_after: lock_after,
            login_lock_delay: Duration::from_millis(delay_ms),
            login_lock_max: Duration::from_millis(max_ms),
            ..AccountsConfig::default()
        })
    }

    #[test]
    fn lock_delay_doubles_up_to_the_cap_and_expires() {
        let g = guard(2, 100, 250);
        assert_eq!(g.failure("a"), None);
        assert_eq!(g.failure("a"), Some(Duration::from_millis(100)));
        assert!(g.locked("a").is_some());
        assert!(g.locked("b").is_none());
        g.failure("a");
        assert_eq!(g.failure("a"), Some(Duration::from_millis(200)));
        g.failure("a");
        assert_eq!(g.failure("a"), Some(Duration::from_millis(250)), "capped");
        std::thread::sleep(Duration::from_millis(300));
        assert!(g.locked("a").is_none(), "a lock ends on its own");
        g.success("a");
        assert_eq!(g.failure("a"), None);
    }

    #[test]
    fn buckets_per_address_and_per_account() {
        let g = guard(5, 1000, 1000);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            g.attempt("login", "a", ip).unwrap();
        }
        let refused = g.attempt("login", "b", ip).unwrap_err();
        assert!(matches!(refused, Refusal::RateLimited(_)));
        assert!(refused.retry_after_secs() >= 1);
        // Another address still has its bucket, but account "a" has used its own.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(g.attempt("login", "a", other).is_err());
        assert!(g.attempt("totp", "a", other).is_ok());
    }
}
