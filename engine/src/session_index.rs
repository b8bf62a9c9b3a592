//! The session index: a sidecar object per data file holding a roaring bitmap of the sessions in the
//! file and one per row group. It is used only for pruning — `session_id = ...` and `IN (...)`
//! lookups skip files and row groups whose bitmaps lack the session's key.
//!
//! Keys are 32-bit hashes of the session id, so a bitmap can say "maybe" for a session it does not
//! hold (the scan then filters the rows), but never "no" for one it does.
//!
//! ```text
//! envelope(magic "FFSESIDX", v1, body)
//! body := u32 row_group_count | bitmap(file) | bitmap(row group)*
//! bitmap := u32 byte length | roaring portable serialization
//! ```

use roaring::RoaringBitmap;
use thiserror::Error;

use crate::envelope::{self, EnvelopeError};

pub const MAGIC: &[u8; 8] = b"FFSESIDX";
pub const FORMAT_VERSION: u16 = 1;

#[derive(Debug, Error)]
pub enum SessionIndexError {
    #[error("session index frame: {0}")]
    Frame(#[from] EnvelopeError),
    #[error("session index body is malformed: {0}")]
    Malformed(String),
}

pub fn session_key(session_id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(session_id.as_bytes()) as u32
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionIndex {
    file: RoaringBitmap,
    row_groups: Vec<RoaringBitmap>,
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
        // Rows are sorted by session id, so their hashed keys arrive in random order. Inserting or
        // OR-ing those into a bitmap shifts its container arrays each time (quadratic in the file's
        // sessions); sorted first, every bitmap is built by appending.
        let mut row_groups = Vec::with_capacity(groups.len());
        let mut all_keys = Vec::new();
        for mut keys in groups {
            keys.sort_unstable();
            keys.dedup();
            row_groups.push(keys.iter().copied().collect::<RoaringBitmap>());
            all_keys.extend_from_slice(&keys);
        }
        all_keys.sort_unstable();
        all_keys.dedup();
        Self { file: all_keys.into_iter().collect(), row_groups }
    }

    pub fn row_group_count(&self) -> usize {
        self.row_groups.len()
    }

    pub fn may_contain_any(&self, keys: &[u32]) -> bool {
        keys.iter().any(|k| self.file.contains(*k))
    }

    /// For each row group, whether it may hold any of `keys`.
    pub fn row_groups_matching(&self, keys: &[u32]) -> Vec<bool> {
        self.row_groups.iter().map(|rg| keys.iter().any(|k| rg.contains(*k))).collect()
    }

    pub fn encode(&self) -> Result<Vec<u8>, SessionIndexError> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.row_groups.len() as u32).to_le_bytes());
        for bitmap in std::iter::once(&self.file).chain(&self.row_groups) {
            let len = bitmap.serialized_size() as u32;
            body.extend_from_slice(&len.to_le_bytes());
            bitmap.serialize_into(&mut body).map_err(|e| SessionIndexError::Malformed(e.to_string()))?;
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
        let mut bitmaps = Vec::with_capacity(groups.min(1 << 16) + 1);
        for _ in 0..=groups {
            let len = take_u32(&mut rest)? as usize;
            let (head, tail) =
                rest.split_at_checked(len).ok_or_else(|| SessionIndexError::Malformed("bitmap past end".into()))?;
            rest = tail;
            bitmaps
                .push(RoaringBitmap::deserialize_from(head).map_err(|e| SessionIndexError::Malformed(e.to_string()))?);
        }
        if !rest.is_empty() {
            return Err(SessionIndexError::Malformed(format!("{} trailing bytes", rest.len())));
        }
        let file = bitmaps.remove(0);
        Ok(Self { file, row_groups: bitmaps })
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
