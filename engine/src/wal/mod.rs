//! Write-ahead log: every acknowledged event is in a fsynced segment before its request is answered.
//!
//! - [`segment`]: the on-disk format (versioned, checksummed frames) and a streaming reader.
//! - [`writer`]: the group-commit thread: many requests share one write + fsync.
//! - [`replay`]: reads segments back at start-up, separating a torn tail from real corruption.

pub mod replay;
pub mod segment;
pub mod writer;

use std::path::PathBuf;

use thiserror::Error;

use crate::ids::SegmentId;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("encoding a WAL record: {0}")]
    Encode(#[from] postcard::Error),
    #[error("WAL frame: {0}")]
    Frame(#[from] crate::envelope::EnvelopeError),
    #[error("WAL segment {segment} is corrupt at byte {offset}: {reason}")]
    Corrupt { segment: SegmentId, offset: u64, reason: String },
    #[error("the WAL writer has stopped after an earlier failure")]
    Stopped,
    #[error("the WAL queue is full")]
    QueueFull,
    /// The disk under the WAL is full (or over quota): nothing of the request was acknowledged, and
    /// the writer starts a fresh segment by itself once a write succeeds again.
    #[error("no space left for the write-ahead log ({0}); retry later")]
    NoSpace(String),
    /// Any other failed write or fsync: the same recovery as [`WalError::NoSpace`].
    #[error("the write-ahead log could not be written ({0}); retry later")]
    Unavailable(String),
}

impl WalError {
    /// Whether this is an I/O error saying the filesystem has no room (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::NoSpace(_)) || matches!(self, Self::Io { source, .. } if is_no_space(source))
    }

    /// What the requests of a failed group commit are told: the cause, as a value each can own.
    pub(crate) fn refusal(&self) -> Self {
        if self.is_no_space() {
            Self::NoSpace(self.to_string())
        } else {
            Self::Unavailable(self.to_string())
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}
