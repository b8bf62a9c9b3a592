//! Server-side sessions: a visitor's events belong to one session until 30 minutes pass without
//! one. The live state is memory only; on start it is rebuilt from the last 30 minutes of stored
//! events (see `main.rs`), so a restart does not split sessions.

use std::collections::HashMap;
use std::sync::Mutex;

use footfall_engine::{ProjectId, ShortId};

use crate::privacy::{parse_hex64, VisitorId};

pub const SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;

/// A session the server started: 62 random bits, stored as a [`ShortId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionId {
    Short(ShortId),
    /// A session started before ids were short (16 hex digits), restored after an upgrade; it
    /// keeps its id so that it is not split in two.
    Hex(u64),
}

impl SessionId {
    fn random() -> Self {
        Self::Short(ShortId::from_bits(rand::random()))
    }

    /// Reads the stored form back; `None` for ids the server did not make (a sender's own).
    pub fn parse(text: &str) -> Option<Self> {
        ShortId::parse(text).map(Self::Short).or_else(|| parse_hex64(text).map(Self::Hex))
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short(id) => id.fmt(f),
            Self::Hex(bits) => write!(f, "{bits:016x}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Live {
    session: SessionId,
    last_seen_ms: i64,
}

/// Live sessions by project, then by visitor. Ids are plain integers so that a lookup (one per
/// event) touches one table slot instead of chasing string keys; visitor ids are keyed hashes, so
/// the fast hasher is not exposed to chosen keys.
type LiveSessions = HashMap<ProjectId, HashMap<VisitorId, Live, FastHash>, FastHash>;
type FastHash = foldhash::fast::RandomState;

#[derive(Default)]
pub struct SessionTracker {
    live: Mutex<LiveSessions>,
}

impl SessionTracker {
    /// The session of `visitor`'s event at `ts_ms`: the current one if it is still open, else a new one.
    pub fn assign(&self, project: &ProjectId, visitor: VisitorId, ts_ms: i64) -> SessionId {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let visitors = match live.get_mut(project) {
            Some(visitors) => visitors,
            None => live.entry(project.clone()).or_default(),
        };
        if let Some(s) = visitors.get_mut(&visitor) {
            if (ts_ms - s.last_seen_ms).abs() <= SESSION_TIMEOUT_MS {
                s.last_seen_ms = s.last_seen_ms.max(ts_ms);
                return s.session;
            }
        }
        let session = SessionId::random();
        visitors.insert(visitor, Live { session, last_seen_ms: ts_ms });
        session
    }

    /// Restores a session seen before a restart; the latest one per visitor wins.
    pub fn restore(&self, project: ProjectId, visitor: VisitorId, session: SessionId, last_seen_ms: i64) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.entry(project).or_default().entry(visitor).or_insert(Live { session, last_seen_ms });
        if last_seen_ms >= entry.last_seen_ms {
            *entry = Live { session, last_seen_ms };
        }
    }

    /// Forgets sessions that ended before `now_ms`, keeping memory bounded by active visitors.
    pub fn expire(&self, now_ms: i64) -> usize {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut expired = 0;
        live.retain(|_, visitors| {
            let before = visitors.len();
            visitors.retain(|_, s| now_ms - s.last_seen_ms <= SESSION_TIMEOUT_MS);
            expired += before - visitors.len();
            !visitors.is_empty()
        });
        expired
    }

    pub fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(n: u64) -> VisitorId {
        VisitorId::parse(&ShortId::from_bits(n << 2).to_string()).unwrap()
    }

    #[test]
    fn thirty_minutes_of_inactivity_ends_a_session() {
        let t = SessionTracker::default();
        let p = ProjectId::new("p").unwrap();
        let s1 = t.assign(&p, visitor(1), 0);
        assert_eq!(t.assign(&p, visitor(1), SESSION_TIMEOUT_MS), s1);
        assert_eq!(t.assign(&p, visitor(1), 2 * SESSION_TIMEOUT_MS), s1);
        let s2 = t.assign(&p, visitor(1), 3 * SESSION_TIMEOUT_MS + 1);
        assert_ne!(s1, s2);
        assert_ne!(t.assign(&p, visitor(2), 3 * SESSION_TIMEOUT_MS), s2);
        assert_eq!(t.expire(10 * SESSION_TIMEOUT_MS), 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn projects_do_not_share_sessions() {
        let t = SessionTracker::default();
        let (p, q) = (ProjectId::new("p").unwrap(), ProjectId::new("q").unwrap());
        assert_ne!(t.assign(&p, visitor(1), 0), t.assign(&q, visitor(1), 0));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn restored_sessions_continue() {
        let t = SessionTracker::default();
        let p = ProjectId::new("p").unwrap();
        let (old, newer) =
            (SessionId::parse("00000000000000aa").unwrap(), SessionId::parse("00000000000000bb").unwrap());
        t.restore(p.clone(), visitor(1), old, 10);
        t.restore(p.clone(), visitor(1), newer, 20);
        assert_eq!(t.assign(&p, visitor(1), 1000), newer);
        assert_eq!(newer.to_string(), "00000000000000bb", "a session from before short ids keeps its id");
        assert_eq!(SessionId::parse("newer"), None);
        let fresh = t.assign(&p, visitor(2), 1000);
        assert_eq!(fresh.to_string().len(), ShortId::LEN);
        assert_eq!(SessionId::parse(&fresh.to_string()), Some(fresh));
    }
}
