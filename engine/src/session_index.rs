//! The session index: a sidecar object per data file holding a roaring bitmap of the sessions in the
//! file and one per row group. It is used only for pruning — `session_id = ...` and `IN (...)`
//! lookups skip files and row groups whose bitmaps lack the session's key.
//!
//! Keys are 32-bit hashes of the session id, so a bitmap can say "maybe" for a session it does not
//! hold (the scan then filters the rows), but never "no" for one it does.
//!
//! Since version 3 the sidecar also holds the file's [`PageReports`] filter, for the session views'
//! page metrics.
//!
//! ```text
//! envelope(magic "FFSESIDX", v3, body)
//! body := u32 row_group_count | bitmap(row group)* | u8 has page reports | [page reports]
//! bitmap := u32 byte length | roaring portable serialization
//! ```
//!
//! The file's bitmap is the union of its row groups', computed on load (version 1 stored it too,
//! which doubled the index of the usual one-row-group file: random 32-bit keys are sparse, so a
//! roaring bitmap spends ≈ 10 bytes per session). Versions 1 and 2 are still read; their files have
//! no page-report filter, so they are read whenever pages are looked for.

use roaring::{MultiOps, RoaringBitmap};
use thiserror::Error;

use crate::envelope::{self, EnvelopeError};
use crate::page_reports::{PageReports, PageReportsError};

pub const MAGIC: &[u8; 8] = b"FFSESIDX";
pub const FORMAT_VERSION: u16 = 3;

#[derive(Debug, Error)]
pub enum SessionIndexError {
    #[error("session index frame: {0}")]
    Frame(#[from] EnvelopeError),
    #[error("session index body is malformed: {0}")]
    Malformed(String),
    #[error(transparent)]
    PageReports(#[from] PageReportsError),
}

pub fn session_key(session_id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(session_id.as_bytes()) as u32
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionIndex {
    /// The union of `row_groups`, kept only when there are several (otherwise it is the one).
    file: Option<RoaringBitmap>,
    row_groups: Vec<RoaringBitmap>,
    /// `None` for files indexed before version 3, or whose filter could not be built.
    page_reports: Option<PageReports>,
}

impl SessionIndex {
    /// Builds the index from each row group's session ids (nulls are skipped).
    pub fn from_row_groups<'a, G, I>(groups: G) -> Self
    where
        G: IntoIterator<Item = I>,
        I: IntoIterator<Item = Option<&'a str>>,
    {
        Self::from_row_group_keys(
            groups.into_iter().map(|group| group.into_iter().flatten().map(session_key).collect()).collect(),
        )
    }

    /// Builds the index from each row group's [`session_key`]s, in any order and with repeats.
    pub fn from_row_group_keys(groups: Vec<Vec<u32>>) -> Self {
        // Rows are sorted by (kind and) session id, so their hashed keys arrive in random order. Inserting or
        // OR-ing those into a bitmap shifts its container arrays each time (quadratic in the file's
        // sessions); sorted first, every bitmap is built by appending.
        let row_groups = groups
            .into_iter()
            .map(|mut keys| {
                keys.sort_unstable();
                keys.dedup();
                keys.into_iter().collect::<RoaringBitmap>()
            })
            .collect();
        Self::from_bitmaps(row_groups)
    }

    fn from_bitmaps(row_groups: Vec<RoaringBitmap>) -> Self {
        let file = (row_groups.len() > 1).then(|| row_groups.iter().union());
        Self { file, row_groups, page_reports: None }
    }

    /// The index with the file's page-report filter.
    pub fn with_page_reports(self, page_reports: Option<PageReports>) -> Self {
        Self { page_reports, ..self }
    }

    /// The file's page-report filter, if its index has one.
    pub fn page_reports(&self) -> Option<&PageReports> {
        self.page_reports.as_ref()
    }

    /// Whether the file may hold reports of any of the pages `keys` ([`page_key`]s) stand for: yes
    /// when its index has no filter.
    ///
    /// [`page_key`]: crate::page_reports::page_key
    pub fn may_hold_reports_of(&self, keys: &[u64]) -> bool {
        self.page_reports.as_ref().is_none_or(|reports| reports.may_hold_any(keys))
    }

    fn file(&self) -> Option<&RoaringBitmap> {
        self.file.as_ref().or(self.row_groups.first())
    }

    pub fn row_group_count(&self) -> usize {
        self.row_groups.len()
    }

    pub fn may_contain_any(&self, keys: &[u32]) -> bool {
        self.file().is_some_and(|file| keys.iter().any(|k| file.contains(*k)))
    }

    /// For each row group, whether it may hold any of `keys`.
    pub fn row_groups_matching(&self, keys: &[u32]) -> Vec<bool> {
        self.row_groups.iter().map(|rg| keys.iter().any(|k| rg.contains(*k))).collect()
    }

    /// [`Self::may_contain_any`] for many keys at once (thousands of sessions): one bitmap
    /// intersection test instead of a lookup per key.
    pub fn may_contain_any_of(&self, keys: &RoaringBitmap) -> bool {
        self.file().is_some_and(|file| !file.is_disjoint(keys))
    }

    /// [`Self::row_groups_matching`] for many keys at once.
    pub fn row_groups_matching_any_of(&self, keys: &RoaringBitmap) -> Vec<bool> {
        self.row_groups.iter().map(|rg| !rg.is_disjoint(keys)).collect()
    }

    pub fn encode(&self) -> Result<Vec<u8>, SessionIndexError> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.row_groups.len() as u32).to_le_bytes());
        for bitmap in &self.row_groups {
            let len = bitmap.serialized_size() as u32;
            body.extend_from_slice(&len.to_le_bytes());
            bitmap.serialize_into(&mut body).map_err(|e| SessionIndexError::Malformed(e.to_string()))?;
        }
        body.push(u8::from(self.page_reports.is_some()));
        if let Some(reports) = &self.page_reports {
            reports.encode_into(&mut body);
        }
        Ok(envelope::encode(MAGIC, FORMAT_VERSION, &body)?)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SessionIndexError> {
        let frame = envelope::decode(MAGIC, FORMAT_VERSION, bytes)?;
        let mut rest = frame.body;
        let take_u32 = |rest: &mut &[u8]| -> Result<u32, SessionIndexError> {
            let (head, tail) =
                rest.split_at_checked(4).ok_or_else(|| SessionIndexError::Malformed("truncated".into()))?;
            *rest = tail;
            Ok(u32::from_le_bytes([head[0], head[1], head[2], head[3]]))
        };
        let groups = take_u32(&mut rest)? as usize;
        // Version 1 stored the file's bitmap first.
        let stored = groups + usize::from(frame.version == 1);
        let mut bitmaps = Vec::with_capacity(stored.min(1 << 16));
        for _ in 0..stored {
            let len = take_u32(&mut rest)? as usize;
            let (head, tail) =
                rest.split_at_checked(len).ok_or_else(|| SessionIndexError::Malformed("bitmap past end".into()))?;
            rest = tail;
            bitmaps
                .push(RoaringBitmap::deserialize_from(head).map_err(|e| SessionIndexError::Malformed(e.to_string()))?);
        }
        let mut page_reports = None;
        if frame.version >= 3 {
            let (&has, tail) = rest.split_first().ok_or_else(|| SessionIndexError::Malformed("truncated".into()))?;
            rest = tail;
            match has {
                0 => {}
                1 => {
                    let (reports, tail) = PageReports::decode(rest)?;
                    page_reports = Some(reports);
                    rest = tail;
                }
                other => return Err(SessionIndexError::Malformed(format!("page-report flag {other}"))),
            }
        }
        if !rest.is_empty() {
            return Err(SessionIndexError::Malformed(format!("{} trailing bytes", rest.len())));
        }
        if frame.version == 1 {
            bitmaps.remove(0);
        }
        Ok(Self::from_bitmaps(bitmaps).with_page_reports(page_reports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index() -> SessionIndex {
        SessionIndex::from_row_groups(vec![vec![Some("a"), Some("b"), None], vec![Some("c")], vec![]])
    }

    #[test]
    fn answers_membership_per_file_and_row_group() {
        let idx = index();
        assert!(idx.may_contain_any(&[session_key("c")]));
        assert!(!idx.may_contain_any(&[session_key("zzz")]));
        assert_eq!(idx.row_groups_matching(&[session_key("b")]), vec![true, false, false]);
        assert_eq!(idx.row_groups_matching(&[session_key("a"), session_key("c")]), vec![true, true, false]);
        let many: RoaringBitmap = (0..10_000).map(|i| session_key(&format!("other-{i}"))).collect();
        assert!(!idx.may_contain_any_of(&many));
        let with_c = many.clone() | RoaringBitmap::from_iter([session_key("c")]);
        assert!(idx.may_contain_any_of(&with_c));
        assert_eq!(idx.row_groups_matching_any_of(&with_c), idx.row_groups_matching(&[session_key("c")]));
    }

    #[test]
    fn version_1_indexes_are_still_read() {
        // v1 body: row group count, the file's bitmap, then each row group's.
        let groups: Vec<RoaringBitmap> = vec![[1u32, 5].into_iter().collect(), [9u32].into_iter().collect()];
        let file: RoaringBitmap = groups.iter().union();
        let mut body = (groups.len() as u32).to_le_bytes().to_vec();
        for bitmap in std::iter::once(&file).chain(&groups) {
            body.extend_from_slice(&(bitmap.serialized_size() as u32).to_le_bytes());
            bitmap.serialize_into(&mut body).unwrap();
        }
        let decoded = SessionIndex::decode(&envelope::encode(MAGIC, 1, &body).unwrap()).unwrap();
        assert_eq!(decoded, SessionIndex::from_bitmaps(groups));
        assert_eq!(decoded.row_groups_matching(&[9]), vec![false, true]);
        assert!(decoded.may_contain_any(&[5]));
    }

    #[test]
    fn page_reports_round_trip_and_older_indexes_have_none() {
        use crate::page_reports::page_key;
        let keys: Vec<u64> = (0..500).map(|i| page_key(&format!("page{i}"))).collect();
        let with = index().with_page_reports(PageReports::from_keys(keys.clone()));
        let decoded = SessionIndex::decode(&with.encode().unwrap()).unwrap();
        assert_eq!(decoded, with);
        assert!(decoded.may_hold_reports_of(&keys[7..8]));
        assert!(!decoded.may_hold_reports_of(&[page_key("elsewhere")]));
        assert_eq!(decoded.row_groups_matching(&[session_key("b")]), vec![true, false, false]);

        // Version 2: the row groups' bitmaps alone; every page may be there.
        let mut body = (index().row_groups.len() as u32).to_le_bytes().to_vec();
        for bitmap in &index().row_groups {
            body.extend_from_slice(&(bitmap.serialized_size() as u32).to_le_bytes());
            bitmap.serialize_into(&mut body).unwrap();
        }
        let v2 = SessionIndex::decode(&envelope::encode(MAGIC, 2, &body).unwrap()).unwrap();
        assert_eq!(v2, index());
        assert!(v2.page_reports().is_none());
        assert!(v2.may_hold_reports_of(&[page_key("elsewhere")]));
    }

    #[test]
    fn a_single_row_group_is_stored_once() {
        let one = SessionIndex::from_row_groups(vec![(0..1000)
            .map(|i| Some(format!("s{i}")))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_deref())
            .collect::<Vec<_>>()]);
        let two = SessionIndex::from_row_group_keys(vec![one.row_groups[0].iter().collect(), vec![]]);
        assert!(one.may_contain_any(&[session_key("s7")]));
        assert!(!one.may_contain_any(&[session_key("t7")]));
        // The second, empty group costs a few bytes; a stored file bitmap would double the size.
        let (a, b) = (one.encode().unwrap().len(), two.encode().unwrap().len());
        assert!(b < a + 64, "{a} vs {b}");
    }

    #[test]
    fn corruption_is_detected() {
        let mut bytes = index().encode().unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        assert!(SessionIndex::decode(&bytes).is_err());
        assert!(SessionIndex::decode(&bytes[..n / 2]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(groups in proptest::collection::vec(proptest::collection::vec("[a-z0-9]{1,12}", 0..50), 0..8)) {
            let idx = SessionIndex::from_row_groups(groups.iter().map(|g| g.iter().map(|s| Some(s.as_str()))));
            let decoded = SessionIndex::decode(&idx.encode().unwrap()).unwrap();
            prop_assert_eq!(&decoded, &idx);
            for (i, g) in groups.iter().enumerate() {
                for s in g {
                    prop_assert!(decoded.row_groups_matching(&[session_key(s)])[i]);
                }
            }
        }
    }
}
