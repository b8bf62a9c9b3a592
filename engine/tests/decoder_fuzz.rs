//! Decoders of every file the engine reads back (WAL segments, index sidecars) fed random
//! structure *inside a valid envelope*: the checksum catches bit flips and truncation (tested
//! beside each format), so what is left to an attacker who can write a file — or to a bug that
//! wrote a wrong one — is a well-framed body that lies about its own lengths and counts. Each must
//! be refused with an error, never a panic or an allocation sized by the lie.
//!
//! Case counts follow `PROPTEST_CASES` (CI's default budget is seconds; raise it for long runs).
//! Failures are kept in `proptest-regressions/` beside this file and re-run first every time.

use std::io::Write;

use footfall_engine::envelope;
use footfall_engine::page_reports::PageReports;
use footfall_engine::session_index::{SessionIndex, FORMAT_VERSION as INDEX_VERSION, MAGIC as INDEX_MAGIC};
use footfall_engine::wal::segment::{
    encode_header, file_name, SegmentReader, FORMAT_VERSION as WAL_VERSION, RECORD_MAGIC,
};
use footfall_engine::SegmentId;
use proptest::prelude::*;

/// Bytes that look like what the decoders expect: little-endian counts and lengths, some huge,
/// some small, mixed with noise.
fn structured_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u32>().prop_map(|n| n.to_le_bytes().to_vec()),
        (0u32..64).prop_map(|n| n.to_le_bytes().to_vec()),
        Just(u32::MAX.to_le_bytes().to_vec()),
        Just(vec![0u8]),
        Just(vec![1u8]),
        proptest::collection::vec(any::<u8>(), 0..32),
    ];
    proptest::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_048))]

    #[test]
    fn index_sidecars_with_lying_bodies_are_refused(body in structured_bytes(), version in 1u16..=INDEX_VERSION) {
        let framed = envelope::encode(INDEX_MAGIC, version, &body).expect("frame");
        // Ok or Err: either is fine, as long as it returns.
        if let Ok(index) = SessionIndex::decode(&framed) {
            let _ = index.encode();
        }
    }

    #[test]
    fn page_report_filters_with_lying_bodies_are_refused(body in structured_bytes()) {
        let _ = PageReports::decode(&body);
    }

    #[test]
    fn wal_segments_with_lying_records_end_at_the_lie(records in proptest::collection::vec(structured_bytes(), 1..6)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = encode_header(SegmentId(7)).expect("header");
        for body in &records {
            bytes.extend(envelope::encode(RECORD_MAGIC, WAL_VERSION, body).expect("frame"));
        }
        let path = dir.path().join(file_name(SegmentId(7)));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&bytes)).expect("write");
        let mut reader = SegmentReader::open(&path).expect("the header is valid");
        let mut read = 0;
        while let Ok(Some(_)) = reader.next_record() {
            read += 1;
            prop_assert!(read <= records.len());
        }
        prop_assert!(reader.end().is_some() || read == records.len());
    }

    #[test]
    fn wal_segment_headers_with_lying_bodies_are_refused(body in structured_bytes()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(SegmentId(9)));
        let framed = envelope::encode(footfall_engine::wal::segment::SEGMENT_MAGIC, WAL_VERSION, &body).expect("frame");
        std::fs::write(&path, framed).expect("write");
        let _ = SegmentReader::open(&path);
    }
}
