//! Start-up replay. Segments are streamed record by record (never loaded whole), so replay needs
//! memory for the buffer only, not for the WAL.
//!
//! A bad tail in the newest segment is a torn write from a crash: it was never acknowledged (the
//! fsync had not returned), so it is cut off with a warning. A bad record in any older segment, or a
//! damaged segment header, is real corruption and stops start-up with the segment and byte offset.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::ids::SegmentId;
use crate::wal::segment::{self, SegmentEnd, SegmentReader, WalRecord};
use crate::wal::WalError;

pub fn list_segments(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(WalError::io(dir))? {
        let entry = entry.map_err(WalError::io(dir))?;
        if let Some(id) = entry.file_name().to_str().and_then(segment::parse_file_name) {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes the segments whose events are all committed to storage.
pub fn remove_segments_through(dir: &Path, through: SegmentId) -> Result<usize, WalError> {
    let mut removed = 0;
    for (id, path) in list_segments(dir)? {
        if id <= through {
            fs::remove_file(&path).map_err(WalError::io(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A newest segment shorter than its header was being created when the process stopped (or a full
/// disk cut its creation short and removing it failed too): it never held a record, so it is
/// removed rather than reported as damage.
fn remove_unstarted_newest(segments: &mut Vec<(SegmentId, PathBuf)>) -> Result<(), WalError> {
    let Some((id, path)) = segments.last() else { return Ok(()) };
    let header_len = segment::encode_header(*id)?.len() as u64;
    let len = fs::metadata(path).map_err(WalError::io(path))?.len();
    if len < header_len {
        tracing::warn!(segment = %id, len, "removing a WAL segment whose header was never completed");
        fs::remove_file(path).map_err(WalError::io(path))?;
        segments.pop();
    }
    Ok(())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// The newest segment found, whether or not it held records.
    pub last_segment: Option<SegmentId>,
    /// One past the highest event id replayed.
    pub next_event_id: Option<u64>,
    pub records: usize,
    pub events: usize,
}

/// Feeds every record of segments newer than `persisted` to `on_record`, oldest first.
pub fn replay<E>(
    dir: &Path,
    persisted: Option<SegmentId>,
    mut on_record: impl FnMut(SegmentId, WalRecord) -> Result<(), E>,
) -> Result<Result<ReplayOutcome, E>, WalError> {
    let mut segments = list_segments(dir)?;
    remove_unstarted_newest(&mut segments)?;
    let mut outcome = ReplayOutcome { last_segment: segments.last().map(|(id, _)| *id), ..Default::default() };
    let newest = outcome.last_segment;
    for (id, path) in segments {
        if persisted.is_some_and(|p| id <= p) {
            continue;
        }
        let mut reader = SegmentReader::open(&path).map_err(|e| match e {
            WalError::Corrupt { offset, reason, .. } => WalError::Corrupt { segment: id, offset, reason },
            other => other,
        })?;
        while let Some(record) = reader.next_record()? {
            let end = record.first_event_id + record.events.len() as u64;
            outcome.next_event_id = Some(outcome.next_event_id.map_or(end, |n| n.max(end)));
            outcome.records += 1;
            outcome.events += record.events.len();
            if let Err(e) = on_record(id, record) {
                return Ok(Err(e));
            }
        }
        if let Some(SegmentEnd::BadTail { offset, reason }) = reader.end() {
            if Some(id) != newest {
                return Err(WalError::Corrupt { segment: id, offset: *offset, reason: reason.clone() });
            }
            tracing::warn!(segment = %id, offset, reason = %reason, "cutting off a torn WAL tail (never acknowledged)");
            let valid = reader.valid_len();
            let file = OpenOptions::new().write(true).open(&path).map_err(WalError::io(&path))?;
            file.set_len(valid).map_err(WalError::io(&path))?;
            file.sync_all().map_err(WalError::io(&path))?;
        }
    }
    Ok(Ok(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample;
    use std::io::Write;

    fn write(dir: &Path, id: u64, first_ids: &[u64]) -> PathBuf {
        let mut bytes = segment::encode_header(SegmentId(id)).unwrap();
        for &first in first_ids {
            let rec = WalRecord { first_event_id: first, events: vec![sample("p", 1, "s"); 2] };
            segment::encode_record_into(&rec, &mut bytes).unwrap();
        }
        let path = dir.join(segment::file_name(SegmentId(id)));
        fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        path
    }

    fn collect(dir: &Path, persisted: Option<SegmentId>) -> Result<(ReplayOutcome, Vec<u64>), WalError> {
        let mut firsts = Vec::new();
        let outcome = replay::<()>(dir, persisted, |_, r| {
            firsts.push(r.first_event_id);
            Ok(())
        })?
        .unwrap();
        Ok((outcome, firsts))
    }

    #[test]
    fn skips_persisted_segments_and_reports_next_id() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, &[0, 2]);
        write(dir.path(), 2, &[4]);
        write(dir.path(), 3, &[6, 8]);
        let (outcome, firsts) = collect(dir.path(), Some(SegmentId(1))).unwrap();
        assert_eq!(firsts, vec![4, 6, 8]);
        assert_eq!(outcome.next_event_id, Some(10));
        assert_eq!(outcome.last_segment, Some(SegmentId(3)));
        assert_eq!(remove_segments_through(dir.path(), SegmentId(2)).unwrap(), 2);
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn torn_tail_of_newest_segment_is_cut_and_replay_is_then_clean() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, &[0]);
        let path = write(dir.path(), 2, &[2, 4]);
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
        let (_, firsts) = collect(dir.path(), None).unwrap();
        assert_eq!(firsts, vec![0, 2]);
        // Cut off for good: a later segment can follow without this one looking corrupt.
        write(dir.path(), 3, &[4]);
        let (_, firsts) = collect(dir.path(), None).unwrap();
        assert_eq!(firsts, vec![0, 2, 4]);
    }

    #[test]
    fn a_newest_segment_without_a_whole_header_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, &[0]);
        let header = segment::encode_header(SegmentId(2)).unwrap();
        let half = dir.path().join(segment::file_name(SegmentId(2)));
        fs::write(&half, &header[..header.len() - 1]).unwrap();
        let (outcome, firsts) = collect(dir.path(), None).unwrap();
        assert_eq!(firsts, vec![0]);
        assert_eq!(outcome.last_segment, Some(SegmentId(1)));
        assert!(!half.exists());
        // Not so for an older one: that is damage.
        let older = dir.path().join(segment::file_name(SegmentId(0)));
        fs::write(&older, &header[..3]).unwrap();
        assert!(matches!(collect(dir.path(), None), Err(WalError::Corrupt { .. })));
    }

    #[test]
    fn damage_in_an_older_segment_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 1, &[0, 2]);
        write(dir.path(), 2, &[4]);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        match collect(dir.path(), None) {
            Err(WalError::Corrupt { segment, .. }) => assert_eq!(segment, SegmentId(1)),
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}
