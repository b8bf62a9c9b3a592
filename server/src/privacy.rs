//! Visitor identity without storing who the visitor is: `visitor_id` is a keyed BLAKE3 hash of
//! (daily salt, project, IP, user-agent). The salt is random per UTC day and deleted after 48 hours,
//! so yesterday's ids cannot be recomputed from today's traffic, and raw IPs and user-agents never
//! leave this module.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use footfall_engine::{ProjectId, ShortId};

use crate::metadata::{Metadata, MetadataError};

/// A visitor's identity for one day: the first 62 bits of the keyed hash, stored as a [`ShortId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VisitorId(ShortId);

impl VisitorId {
    /// Reads the stored form back; `None` for anything else. Ids stored before the short form
    /// (16 hex digits of the hash's first 64 bits) read back as the same visitor.
    pub fn parse(text: &str) -> Option<Self> {
        ShortId::parse(text).or_else(|| parse_hex64(text).map(ShortId::from_bits)).map(Self)
    }
}

impl std::fmt::Display for VisitorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Exactly 16 lower-case hex digits, the form generated ids were stored in before [`ShortId`].
pub(crate) fn parse_hex64(text: &str) -> Option<u64> {
    let canonical = text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

pub struct VisitorHasher {
    metadata: Arc<Metadata>,
    current: Mutex<Option<(NaiveDate, [u8; 32])>>,
}

impl VisitorHasher {
    pub fn new(metadata: Arc<Metadata>) -> Self {
        Self { metadata, current: Mutex::new(None) }
    }

    fn salt(&self) -> Result<[u8; 32], MetadataError> {
        let today = Utc::now().date_naive();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((day, salt)) = *current {
            if day == today {
                return Ok(salt);
            }
        }
        let keep_from = today.pred_opt().unwrap_or(today);
        let salt = self.metadata.salt_for(today, keep_from)?;
        *current = Some((today, salt));
        Ok(salt)
    }

    /// Rotates the salt if the day changed, deleting expired ones even when no traffic arrives.
    pub fn rotate(&self) -> Result<(), MetadataError> {
        self.salt().map(|_| ())
    }

    pub fn visitor_id(&self, project: &ProjectId, ip: IpAddr, user_agent: &str) -> Result<VisitorId, MetadataError> {
        let salt = self.salt()?;
        let mut hasher = blake3::Hasher::new_keyed(&salt);
        hasher.update(project.as_str().as_bytes());
        hasher.update(&[0]);
        match ip {
            IpAddr::V4(v4) => hasher.update(&v4.octets()),
            IpAddr::V6(v6) => hasher.update(&v6.octets()),
        };
        hasher.update(&[0]);
        hasher.update(user_agent.as_bytes());
        let hash = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        Ok(VisitorId(ShortId::from_bits(u64::from_be_bytes(first))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_id_any_difference_another() {
        let dir = tempfile::tempdir().unwrap();
        let h = VisitorHasher::new(Arc::new(Metadata::open(&dir.path().join("m")).unwrap()));
        let p = ProjectId::new("p").unwrap();
        let q = ProjectId::new("q").unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let a = h.visitor_id(&p, ip, "UA").unwrap();
        assert_eq!(a.to_string().len(), ShortId::LEN);
        assert_eq!(VisitorId::parse(&a.to_string()), Some(a));
        assert_eq!(VisitorId::parse("0123456789ABCDEF"), None);
        assert_eq!(
            VisitorId::parse("0123456789abcdef"),
            VisitorId::parse(&ShortId::from_bits(0x0123_4567_89ab_cdef).to_string())
        );
        assert_eq!(a, h.visitor_id(&p, ip, "UA").unwrap());
        assert_ne!(a, h.visitor_id(&p, ip, "UA2").unwrap());
        assert_ne!(a, h.visitor_id(&q, ip, "UA").unwrap());
        assert_ne!(a, h.visitor_id(&p, "203.0.113.8".parse().unwrap(), "UA").unwrap());
    }
}
