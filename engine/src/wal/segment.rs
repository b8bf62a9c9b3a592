//! WAL segment format.
//!
//! ```text
//! segment := header-frame record-frame*
//! header-frame := envelope(magic "FFWALSEG", v1, postcard(SegmentHeader))
//! record-frame := envelope(magic "FFWALREC", v1, postcard(WalRecord))
//! ```
//! Each record is one group commit: the id of its first event and the events in order, so event ids
//! are implied and replay reproduces them exactly.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::envelope::{self, HEADER_LEN};
use crate::event::Event;
use crate::ids::SegmentId;
use crate::wal::WalError;

pub const SEGMENT_MAGIC: &[u8; 8] = b"FFWALSEG";
pub const RECORD_MAGIC: &[u8; 8] = b"FFWALREC";
/// v2: the brief's event model (detail groups). v1 records no longer decode.
pub const FORMAT_VERSION: u16 = 2;
/// Upper bound on one record, so a damaged length field cannot make replay allocate gigabytes.
pub const MAX_RECORD_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub segment: SegmentId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalRecord {
    pub first_event_id: u64,
    pub events: Vec<Event>,
}

pub fn file_name(segment: SegmentId) -> String {
    format!("{segment}.wal")
}

pub fn parse_file_name(name: &str) -> Option<SegmentId> {
    let stem = name.strip_suffix(".wal")?;
    (stem.len() == 20).then(|| stem.parse().ok().map(SegmentId)).flatten()
}

pub fn encode_header(segment: SegmentId) -> Result<Vec<u8>, WalError> {
    let body = postcard::to_stdvec(&SegmentHeader { segment })?;
    Ok(envelope::encode(SEGMENT_MAGIC, FORMAT_VERSION, &body)?)
}

/// Appends one framed record to `out`. The body is serialized straight into `out`, so a writer
/// that reuses `out` stops allocating once it has seen its largest group commit.
pub fn encode_record_into(record: &WalRecord, out: &mut Vec<u8>) -> Result<(), WalError> {
    let start = out.len();
    out.resize(start + envelope::HEADER_LEN, 0);
    let sealed = postcard::to_extend(record, AppendTo(out))
        .map_err(WalError::from)
        .and_then(|AppendTo(out)| Ok(envelope::seal_in_place(RECORD_MAGIC, FORMAT_VERSION, &mut out[start..])?));
    if sealed.is_err() {
        out.truncate(start);
    }
    sealed
}

/// Lets postcard append to a borrowed buffer (its `to_extend` takes the writer by value).
struct AppendTo<'a>(&'a mut Vec<u8>);

impl Extend<u8> for AppendTo<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

/// What reading a segment ended with.
#[derive(Debug, PartialEq)]
pub enum SegmentEnd {
    /// Every byte was a valid record.
    Clean,
    /// The bytes after `offset` are not a complete valid record (a torn write or damage).
    BadTail { offset: u64, reason: String },
}

/// Streams the records of one segment without loading it whole.
pub struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    pub segment: SegmentId,
    end: Option<SegmentEnd>,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<Self, WalError> {
        let file = File::open(path).map_err(WalError::io(path))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN];
        let corrupt = |reason: String| WalError::Corrupt { segment: SegmentId(0), offset: 0, reason };
        reader.read_exact(&mut header).map_err(|e| corrupt(format!("{} has no header: {e}", path.display())))?;
        let len = u32::from_le_bytes([header[14], header[15], header[16], header[17]]) as usize;
        if len > 1024 {
            return Err(corrupt(format!("{} header length {len}", path.display())));
        }
        let mut frame = header.to_vec();
        frame.resize(HEADER_LEN + len, 0);
        reader.read_exact(&mut frame[HEADER_LEN..]).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        let decoded = envelope::decode(SEGMENT_MAGIC, FORMAT_VERSION, &frame).map_err(|e| corrupt(e.to_string()))?;
        if decoded.version != FORMAT_VERSION {
            // Not damage: an older build's log. Its events cannot be read as today's, so say so.
            return Err(corrupt(format!(
                "{} is WAL format v{}; this build reads v{FORMAT_VERSION}: start the older Footfall once to flush it",
                path.display(),
                decoded.version
            )));
        }
        let header: SegmentHeader = postcard::from_bytes(decoded.body).map_err(|e| corrupt(e.to_string()))?;
        Ok(Self { path: path.to_path_buf(), reader, offset: frame.len() as u64, segment: header.segment, end: None })
    }

    /// The next record, or `None` at the end; after `None`, [`Self::end`] says how it ended.
    pub fn next_record(&mut self) -> Result<Option<WalRecord>, WalError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        let got = read_up_to(&mut self.reader, &mut header).map_err(WalError::io(&self.path))?;
        if got == 0 {
            self.end = Some(SegmentEnd::Clean);
            return Ok(None);
        }
        if got < HEADER_LEN {
            return self.bad_tail(format!("{got} bytes of a record header"));
        }
        let len = u32::from_le_bytes([header[14], header[15], header[16], header[17]]) as usize;
        if len > MAX_RECORD_BYTES {
            return self.bad_tail(format!("record length {len} exceeds the limit"));
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + len);
        frame.extend_from_slice(&header);
        frame.resize(HEADER_LEN + len, 0);
        let got = read_up_to(&mut self.reader, &mut frame[HEADER_LEN..]).map_err(WalError::io(&self.path))?;
        if got < len {
            return self.bad_tail(format!("record body cut short: {got} of {len} bytes"));
        }
        // Whether a bad record is a torn tail or corruption depends on where it lies (see replay).
        let decoded = match envelope::decode(RECORD_MAGIC, FORMAT_VERSION, &frame) {
            Ok(d) => d,
            Err(e) => return self.bad_tail(e.to_string()),
        };
        let record: WalRecord = match postcard::from_bytes(decoded.body) {
            Ok(r) => r,
            Err(e) => return self.bad_tail(format!("undecodable record: {e}")),
        };
        self.offset += frame.len() as u64;
        Ok(Some(record))
    }

    fn bad_tail(&mut self, reason: String) -> Result<Option<WalRecord>, WalError> {
        self.end = Some(SegmentEnd::BadTail { offset: self.offset, reason });
        Ok(None)
    }

    pub fn end(&self) -> Option<&SegmentEnd> {
        self.end.as_ref()
    }

    /// Byte offset just past the last valid record.
    pub fn valid_len(&self) -> u64 {
        self.offset
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample;
    use proptest::prelude::*;
    use std::io::Write;

    fn write_segment(dir: &Path, records: &[WalRecord]) -> (PathBuf, Vec<u8>) {
        let mut bytes = encode_header(SegmentId(3)).unwrap();
        for r in records {
            encode_record_into(r, &mut bytes).unwrap();
        }
        let path = dir.join(file_name(SegmentId(3)));
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        (path, bytes)
    }

    fn records(n: usize) -> Vec<WalRecord> {
        (0..n)
            .map(|i| WalRecord {
                first_event_id: i as u64 * 10,
                events: (0..3).map(|j| sample("p", 1_000 + j, &format!("s{i}"))).collect(),
            })
            .collect()
    }

    fn read_all(path: &Path) -> (Vec<WalRecord>, SegmentEnd) {
        let mut reader = SegmentReader::open(path).unwrap();
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r);
        }
        (out, reader.end().cloned().unwrap())
    }

    impl Clone for SegmentEnd {
        fn clone(&self) -> Self {
            match self {
                Self::Clean => Self::Clean,
                Self::BadTail { offset, reason } => Self::BadTail { offset: *offset, reason: reason.clone() },
            }
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&file_name(SegmentId(42))), Some(SegmentId(42)));
        assert_eq!(parse_file_name("42.wal"), None);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(5);
        let (path, _) = write_segment(dir.path(), &recs);
        let (read, end) = read_all(&path);
        assert_eq!(read, recs);
        assert_eq!(end, SegmentEnd::Clean);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Cutting the file anywhere after the header loses only the records that were cut.
        #[test]
        fn torn_tail_keeps_every_complete_record(cut in 0usize..10_000) {
            let dir = tempfile::tempdir().unwrap();
            let recs = records(4);
            let (path, bytes) = write_segment(dir.path(), &recs);
            let header_len = encode_header(SegmentId(3)).unwrap().len();
            let cut = header_len + cut % (bytes.len() - header_len);
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let (read, _) = read_all(&path);
            prop_assert!(read.len() <= recs.len());
            prop_assert_eq!(&recs[..read.len()], &read[..]);
            let mut complete = encode_header(SegmentId(3)).unwrap();
            let mut whole = 0;
            for r in &recs {
                encode_record_into(r, &mut complete).unwrap();
                if complete.len() <= cut { whole += 1; }
            }
            prop_assert_eq!(read.len(), whole);
        }

        /// A flipped byte inside a record stops reading there; nothing damaged is ever returned.
        #[test]
        fn flipped_byte_never_yields_a_damaged_record(pos in 0usize..10_000) {
            let dir = tempfile::tempdir().unwrap();
            let recs = records(4);
            let (path, mut bytes) = write_segment(dir.path(), &recs);
            let header_len = encode_header(SegmentId(3)).unwrap().len();
            let pos = header_len + pos % (bytes.len() - header_len);
            bytes[pos] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();
            let (read, end) = read_all(&path);
            let is_bad_tail = matches!(end, SegmentEnd::BadTail { .. });
            prop_assert!(is_bad_tail);
            prop_assert_eq!(&recs[..read.len()], &read[..]);
        }
    }

    #[test]
    fn damaged_header_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = write_segment(dir.path(), &records(1));
        bytes[2] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(SegmentReader::open(&path), Err(WalError::Corrupt { .. })));
    }
}
