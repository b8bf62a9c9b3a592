//! Server-side sessions: a visitor's events belong to one session until 30 minutes pass without
//! one. The live state is memory only; on start it is rebuilt from the last 30 minutes of stored
//! events (see `main.rs`), so a restart does not split sessions.

use std::collections::HashMap;
use std::sync::Mutex;

use footfall_engine::ProjectId;

pub const SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone)]
struct Live {
    session_id: String,
    last_seen_ms: i64,
}

#[derive(Default)]
pub struct SessionTracker {
    live: Mutex<HashMap<(ProjectId, String), Live>>,
}

impl SessionTracker {
    /// The session of `visitor`'s event at `ts_ms`: the current one if it is still open, else a new one.
    pub fn assign(&self, project: &ProjectId, visitor: &str, ts_ms: i64) -> String {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let key = (project.clone(), visitor.to_string());
        if let Some(s) = live.get_mut(&key) {
            if (ts_ms - s.last_seen_ms).abs() <= SESSION_TIMEOUT_MS {
                s.last_seen_ms = s.last_seen_ms.max(ts_ms);
                return s.session_id.clone();
            }
        }
        let session_id = hex::encode(rand::random::<[u8; 8]>());
        live.insert(key, Live { session_id: session_id.clone(), last_seen_ms: ts_ms });
        session_id
    }

    /// Restores a session seen before a restart; the latest one per visitor wins.
    pub fn restore(&self, project: ProjectId, visitor: String, session_id: String, last_seen_ms: i64) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.entry((project, visitor)).or_insert(Live { session_id: session_id.clone(), last_seen_ms });
        if last_seen_ms >= entry.last_seen_ms {
            *entry = Live { session_id, last_seen_ms };
        }
    }

    /// Forgets sessions that ended before `now_ms`, keeping memory bounded by active visitors.
    pub fn expire(&self, now_ms: i64) -> usize {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let before = live.len();
        live.retain(|_, s| now_ms - s.last_seen_ms <= SESSION_TIMEOUT_MS);
        before - live.len()
    }

    pub fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_minutes_of_inactivity_ends_a_session() {
        let t = SessionTracker::default();
        let p = ProjectId::new("p").unwrap();
        let s1 = t.assign(&p, "v", 0);
        assert_eq!(t.assign(&p, "v", SESSION_TIMEOUT_MS), s1);
        assert_eq!(t.assign(&p, "v", 2 * SESSION_TIMEOUT_MS), s1);
        let s2 = t.assign(&p, "v", 3 * SESSION_TIMEOUT_MS + 1);
        assert_ne!(s1, s2);
        assert_ne!(t.assign(&p, "w", 3 * SESSION_TIMEOUT_MS), s2);
        assert_eq!(t.expire(10 * SESSION_TIMEOUT_MS), 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn restored_sessions_continue() {
        let t = SessionTracker::default();
        let p = ProjectId::new("p").unwrap();
        t.restore(p.clone(), "v".into(), "old".into(), 10);
        t.restore(p.clone(), "v".into(), "newer".into(), 20);
        assert_eq!(t.assign(&p, "v", 1000), "newer");
    }
}
