//! The one framing shared by every on-disk format Footfall writes (WAL segment headers and records,
//! session-index sidecars, catalog manifests): magic bytes, a format version, a CRC32 and a length.
//!
//! ```text
//! magic (8 bytes) | version (u16 LE) | crc32 of body (u32 LE) | body length (u32 LE) | body
//! ```
//!
//! A reader can tell "not our file" (magic), "written by a newer Footfall" (version) and "damaged"
//! (checksum or length) apart, which is what lets WAL replay separate a torn tail from real corruption.

use thiserror::Error;

pub const HEADER_LEN: usize = 8 + 2 + 4 + 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("bad magic bytes: expected {expected:?}, found {found:?}")]
    BadMagic { expected: [u8; 8], found: [u8; 8] },
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("body of {0} bytes is larger than the format allows")]
    TooLarge(usize),
}

/// Frames `body` and appends it to `out`.
pub fn encode_into(magic: &[u8; 8], version: u16, body: &[u8], out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
    let len = u32::try_from(body.len()).map_err(|_| EnvelopeError::TooLarge(body.len()))?;
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Frames a body that was written in place: `frame` is `HEADER_LEN` bytes of room for the header,
/// then the body. Saves copying a large body (a WAL record) out of a scratch buffer.
pub fn seal_in_place(magic: &[u8; 8], version: u16, frame: &mut [u8]) -> Result<(), EnvelopeError> {
    let available = frame.len();
    let (header, body) =
        frame.split_at_mut_checked(HEADER_LEN).ok_or(EnvelopeError::Truncated { needed: HEADER_LEN, available })?;
    let len = u32::try_from(body.len()).map_err(|_| EnvelopeError::TooLarge(body.len()))?;
    header[..8].copy_from_slice(magic);
    header[8..10].copy_from_slice(&version.to_le_bytes());
    header[10..14].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    header[14..18].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

pub fn encode(magic: &[u8; 8], version: u16, body: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::new();
    encode_into(magic, version, body, &mut out)?;
    Ok(out)
}

/// A decoded frame: the version it was written with, its body, and how many bytes it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub version: u16,
    pub body: &'a [u8],
    pub consumed: usize,
}

/// Decodes one frame from the start of `bytes`, checking magic, version and checksum.
pub fn decode<'a>(magic: &[u8; 8], max_version: u16, bytes: &'a [u8]) -> Result<Frame<'a>, EnvelopeError> {
    if bytes.len() < HEADER_LEN {
        return Err(EnvelopeError::Truncated { needed: HEADER_LEN, available: bytes.len() });
    }
    let mut found = [0u8; 8];
    found.copy_from_slice(&bytes[..8]);
    if &found != magic {
        return Err(EnvelopeError::BadMagic { expected: *magic, found });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version == 0 || version > max_version {
        return Err(EnvelopeError::UnsupportedVersion { found: version, supported: max_version });
    }
    let stored = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    let len = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]) as usize;
    let end = HEADER_LEN.checked_add(len).ok_or(EnvelopeError::TooLarge(len))?;
    if bytes.len() < end {
        return Err(EnvelopeError::Truncated { needed: end, available: bytes.len() });
    }
    let body = &bytes[HEADER_LEN..end];
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(EnvelopeError::ChecksumMismatch { stored, computed });
    }
    Ok(Frame { version, body, consumed: end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAGIC: &[u8; 8] = b"FFTEST\0\x01";

    proptest! {
        #[test]
        fn round_trips(body in proptest::collection::vec(any::<u8>(), 0..4096), version in 1u16..=3) {
            let framed = encode(MAGIC, version, &body).unwrap();
            let frame = decode(MAGIC, 3, &framed).unwrap();
            prop_assert_eq!(frame.body, &body[..]);
            prop_assert_eq!(frame.version, version);
            prop_assert_eq!(frame.consumed, framed.len());
        }

        #[test]
        fn any_single_bit_flip_is_detected(body in proptest::collection::vec(any::<u8>(), 1..512), bit in 0usize..4096) {
            let mut framed = encode(MAGIC, 1, &body).unwrap();
            let bit = bit % (framed.len() * 8);
            framed[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(MAGIC, 1, &framed).is_err());
        }

        #[test]
        fn every_truncation_is_reported_as_truncated(body in proptest::collection::vec(any::<u8>(), 0..256), cut in 0usize..300) {
            let framed = encode(MAGIC, 1, &body).unwrap();
            let cut = cut % framed.len();
            let is_truncated = matches!(decode(MAGIC, 1, &framed[..cut]), Err(EnvelopeError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }

    #[test]
    fn rejects_newer_versions() {
        let framed = encode(MAGIC, 9, b"x").unwrap();
        assert_eq!(decode(MAGIC, 1, &framed), Err(EnvelopeError::UnsupportedVersion { found: 9, supported: 1 }));
    }
}
