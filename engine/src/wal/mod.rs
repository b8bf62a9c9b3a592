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
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
