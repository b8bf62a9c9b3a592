//! Which pages a data file holds later reports of: a binary fuse filter over the page ids of its
//! rows that are not page views (engagement, vitals, interactions, errors...), stored in the file's
//! index sidecar (`session_index.rs`, version 3).
//!
//! The session views aggregate those reports by `page_id` for the page views they show. A page's
//! reports may arrive hours later, in a new session, with a sender's own timestamp, so neither the
//! session index nor a time range says where they are; without this filter, a query about the last
//! fifty page views read the page ids of the project's whole history. A file whose filter holds
//! none of the wanted pages is skipped.
//!
//! A 16-bit binary fuse filter costs ≈ 18 bits per page and answers "maybe" for a page it does not
//! hold ≈ once in 65,000 lookups (a file is then read for nothing); it never answers "no" for one it
//! holds. Bloom filters of the same size err ten times as often.
//!
//! ```text
//! filter := u32 page count | [seed u64 | segment_length u32 | segment_length_mask u32
//!           | segment_count_length u32 | u32 fingerprint count | fingerprint (u16 LE)*]
//! ```
//! (the bracketed part only when there are pages).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::error::ArrowError;
use thiserror::Error;
use xorf::{BinaryFuse16, Descriptor, Filter};

use crate::event::{columns, EventType};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PageReportsError {
    #[error("page-report filter is malformed: {0}")]
    Malformed(&'static str),
}

/// The key a page id is filtered by.
pub fn page_key(page_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(page_id.as_bytes())
}

/// The [`page_key`]s of `batch`'s rows that report on a page: rows with a page id that are not
/// page views.
pub fn report_keys(batch: &RecordBatch) -> Result<Vec<u64>, ArrowError> {
    let string_column = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| ArrowError::SchemaError(format!("{name} is not a string column")))
    };
    let (kinds, pages) = (string_column(columns::EVENT_TYPE)?, string_column(columns::PAGE_ID)?);
    let pageview = EventType::Pageview.as_str();
    Ok((0..batch.num_rows())
        .filter(|&row| !pages.is_null(row) && (kinds.is_null(row) || kinds.value(row) != pageview))
        .map(|row| page_key(pages.value(row)))
        .collect())
}

/// The pages a file holds reports of (see the module's documentation).
#[derive(Debug, Clone)]
pub struct PageReports {
    pages: u32,
    /// `None` when the file holds no reports.
    filter: Option<BinaryFuse16>,
}

impl PageReports {
    /// The filter of `keys` ([`page_key`]s, in any order, with repeats); `None` when one cannot be
    /// built (the construction is randomised and gives up after many tries), which leaves the file
    /// to be read whenever pages are looked for.
    pub fn from_keys(mut keys: Vec<u64>) -> Option<Self> {
        keys.sort_unstable();
        keys.dedup();
        let pages = u32::try_from(keys.len()).ok()?;
        if keys.is_empty() {
            return Some(Self { pages, filter: None });
        }
        let filter = BinaryFuse16::try_from(&keys).ok()?;
        Some(Self { pages, filter: Some(filter) })
    }

    /// How many distinct pages the filter was built from.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Whether the file may hold a report of any of `keys` ([`page_key`]s).
    pub fn may_hold_any(&self, keys: &[u64]) -> bool {
        self.filter.as_ref().is_some_and(|f| keys.iter().any(|k| f.contains(k)))
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pages.to_le_bytes());
        let Some(filter) = &self.filter else { return };
        let d = &filter.descriptor;
        out.extend_from_slice(&d.seed.to_le_bytes());
        for n in [d.segment_length, d.segment_length_mask, d.segment_count_length] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(filter.fingerprints.len() as u32).to_le_bytes());
        for f in filter.fingerprints.iter() {
            out.extend_from_slice(&f.to_le_bytes());
        }
    }

    /// Reads what [`Self::encode_into`] wrote at the start of `bytes`; returns the rest.
    pub fn decode(bytes: &[u8]) -> Result<(Self, &[u8]), PageReportsError> {
        let mut rest = bytes;
        let pages = take_u32(&mut rest)?;
        if pages == 0 {
            return Ok((Self { pages, filter: None }, rest));
        }
        let seed = u64::from(take_u32(&mut rest)?) | u64::from(take_u32(&mut rest)?) << 32;
        let descriptor = Descriptor {
            seed,
            segment_length: take_u32(&mut rest)?,
            segment_length_mask: take_u32(&mut rest)?,
            segment_count_length: take_u32(&mut rest)?,
        };
        let count = take_u32(&mut rest)? as usize;
        let (head, tail) = rest
            .split_at_checked(count.checked_mul(2).ok_or(PageReportsError::Malformed("fingerprint count"))?)
            .ok_or(PageReportsError::Malformed("fingerprints past the end"))?;
        rest = tail;
        // A lookup indexes one fingerprint in each of three consecutive aligned segments (the
        // mask), the first below the segment count length: fewer fingerprints than that and two
        // segments more would be indexed out of bounds.
        let (len, mask, span) = (
            u64::from(descriptor.segment_length),
            u64::from(descriptor.segment_length_mask),
            u64::from(descriptor.segment_count_length),
        );
        if !len.is_power_of_two() || mask != len - 1 || span % len != 0 || span + 2 * len > count as u64 {
            return Err(PageReportsError::Malformed("descriptor does not fit the fingerprints"));
        }
        let fingerprints = head.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        Ok((Self { pages, filter: Some(BinaryFuse16 { descriptor, fingerprints }) }, rest))
    }
}

impl PartialEq for PageReports {
    fn eq(&self, other: &Self) -> bool {
        self.pages == other.pages
            && match (&self.filter, &other.filter) {
                (None, None) => true,
                (Some(a), Some(b)) => a.descriptor == b.descriptor && a.fingerprints == b.fingerprints,
                _ => false,
            }
    }
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, PageReportsError> {
    let (head, tail) = rest.split_at_checked(4).ok_or(PageReportsError::Malformed("truncated"))?;
    *rest = tail;
    Ok(u32::from_le_bytes([head[0], head[1], head[2], head[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prefix: &str, n: usize) -> Vec<u64> {
        (0..n).map(|i| page_key(&format!("{prefix}{i}"))).collect()
    }

    #[test]
    fn holds_every_page_it_was_built_from_and_few_others() {
        for n in [1, 2, 3, 10, 1000, 50_000] {
            let mut built = keys("p", n);
            built.extend(keys("p", n / 2)); // repeats
            let reports = PageReports::from_keys(built).unwrap();
            assert_eq!(reports.pages() as usize, n);
            assert!(keys("p", n).chunks(1).all(|k| reports.may_hold_any(k)), "{n} pages");
            let others = keys("q", 100_000);
            let wrong = others.chunks(1).filter(|k| reports.may_hold_any(k)).count();
            assert!(wrong < 20, "{wrong} of 100,000 other pages matched a filter of {n}");
            assert!(!reports.may_hold_any(&[]));
        }
    }

    #[test]
    fn a_file_without_reports_holds_no_page() {
        let none = PageReports::from_keys(Vec::new()).unwrap();
        assert!(!none.may_hold_any(&keys("p", 100)));
        let mut bytes = Vec::new();
        none.encode_into(&mut bytes);
        assert_eq!(bytes.len(), 4);
        assert_eq!(PageReports::decode(&bytes).unwrap(), (none, &[][..]));
    }

    #[test]
    fn round_trips_and_leaves_what_follows() {
        let reports = PageReports::from_keys(keys("p", 5000)).unwrap();
        let mut bytes = Vec::new();
        reports.encode_into(&mut bytes);
        // ≈ 21 bits per page at this size (18 for large filters).
        assert!(bytes.len() < 5000 * 3, "{} bytes", bytes.len());
        bytes.extend_from_slice(b"next");
        let (decoded, rest) = PageReports::decode(&bytes).unwrap();
        assert_eq!(decoded, reports);
        assert_eq!(rest, b"next");
        assert!(keys("p", 5000).chunks(1).all(|k| decoded.may_hold_any(k)));
    }

    /// The sidecar's checksum catches damage first; this is the second line: whatever decodes can
    /// be looked up without indexing out of bounds.
    #[test]
    fn damaged_filters_are_refused_or_stay_in_bounds() {
        let reports = PageReports::from_keys(keys("p", 100)).unwrap();
        let mut bytes = Vec::new();
        reports.encode_into(&mut bytes);
        assert!(PageReports::decode(&bytes[..bytes.len() - 1]).is_err());
        let probes = keys("q", 10_000);
        let mut refused = 0;
        // The descriptor's segment length, mask and segment count length, then the count.
        for at in 12..28 {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                match PageReports::decode(&bad) {
                    Ok((damaged, _)) => {
                        probes.chunks(1).for_each(|k| {
                            damaged.may_hold_any(k);
                        });
                    }
                    Err(_) => refused += 1,
                }
            }
        }
        assert!(refused > 64, "{refused} of 128 damaged descriptors refused");
    }
}
