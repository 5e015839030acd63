//! [pure] Self-describing znode values and the shared per-key write history that lets every
//! answer be checked.
//!
//! A value written by the generator is a function of (key index, sequence number) only:
//!
//! ```text
//! offset 0..4    key index, u32 big-endian
//! offset 4..12   sequence number, u64 big-endian (0 = the value written at pre-population)
//! offset 12..16  check word: the low 32 bits of mix(key, seq)
//! offset 16..    filler: byte i = byte (i % 8) of mix(key, seq), xor (i as u8)
//! ```
//!
//! so a value read back can be recomputed from its own header and compared byte for byte: a
//! server that returns a torn, truncated, mixed-up or invented value fails the comparison.
//! Sequence numbers are drawn from one counter per key shared by every session, so two writes
//! never carry the same value.

use std::sync::atomic::{AtomicU64, Ordering};

/// The smallest value that holds the header.
pub const VALUE_HEADER_BYTES: usize = 16;

/// SplitMix64's finaliser: a cheap bijective mix so that filler differs per (key, seq).
pub fn mix(key: u32, seq: u64) -> u64 {
    let mut z = seq
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((key as u64) << 1 | 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends the value for (key, seq) of `size_bytes` bytes to `out`.
pub fn encode_value(key: u32, seq: u64, size_bytes: usize, out: &mut Vec<u8>) {
    assert!(size_bytes >= VALUE_HEADER_BYTES, "value size below header");
    let mixed = mix(key, seq);
    out.reserve(size_bytes);
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(mixed as u32).to_be_bytes());
    let pattern = mixed.to_le_bytes();
    for index in VALUE_HEADER_BYTES..size_bytes {
        out.push(pattern[index % 8] ^ (index as u8));
    }
}

pub fn value_for(key: u32, seq: u64, size_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_bytes);
    encode_value(key, seq, size_bytes, &mut out);
    out
}

/// Why a value read back is not one the generator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    Null,
    WrongLength { expected: usize, actual: usize },
    WrongKey { expected: u32, actual: u32 },
    Corrupt,
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::Null => write!(f, "null data"),
            ValueError::WrongLength { expected, actual } => {
                write!(f, "data length {actual}, expected {expected}")
            }
            ValueError::WrongKey { expected, actual } => {
                write!(f, "value of key {actual} returned for key {expected}")
            }
            ValueError::Corrupt => write!(f, "value bytes differ from any value written"),
        }
    }
}

/// Decodes and fully checks a value read for `key`; returns its sequence number.
pub fn decode_value(key: u32, data: Option<&[u8]>, size_bytes: usize) -> Result<u64, ValueError> {
    let data = data.ok_or(ValueError::Null)?;
    if data.len() != size_bytes {
        return Err(ValueError::WrongLength {
            expected: size_bytes,
            actual: data.len(),
        });
    }
    let actual_key = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if actual_key != key {
        return Err(ValueError::WrongKey {
            expected: key,
            actual: actual_key,
        });
    }
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&data[4..12]);
    let seq = u64::from_be_bytes(seq_bytes);
    let mixed = mix(key, seq);
    if data[12..16] != (mixed as u32).to_be_bytes() {
        return Err(ValueError::Corrupt);
    }
    let pattern = mixed.to_le_bytes();
    let filler_ok = data[VALUE_HEADER_BYTES..]
        .iter()
        .enumerate()
        .all(|(offset, byte)| {
            let index = offset + VALUE_HEADER_BYTES;
            *byte == pattern[index % 8] ^ (index as u8)
        });
    if !filler_ok {
        return Err(ValueError::Corrupt);
    }
    Ok(seq)
}

/// The latest acknowledged write of a key, in the server's order: the znode version the
/// server reported for it, and the sequence number the generator wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acked {
    pub version: u32,
    pub seq: u32,
}

impl Acked {
    /// Version in the high half so that `fetch_max` orders by the server's version: writes
    /// from different sessions may be applied in a different order than their sequence
    /// numbers were drawn, and the znode version is the server's order.
    fn pack(self) -> u64 {
        (self.version as u64) << 32 | self.seq as u64
    }

    fn unpack(packed: u64) -> Acked {
        Acked {
            version: (packed >> 32) as u32,
            seq: packed as u32,
        }
    }
}

/// Shared write history of every key: issued sequence numbers and the latest acknowledged
/// write. Updated lock-free from all generator threads.
#[derive(Debug)]
pub struct KeyTable {
    next_seq: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
}

impl KeyTable {
    /// Every key starts pre-populated with sequence 0 at znode version 0.
    pub fn new(key_count: usize) -> KeyTable {
        KeyTable {
            next_seq: (0..key_count).map(|_| AtomicU64::new(1)).collect(),
            acked: (0..key_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.next_seq.len()
    }

    /// A fresh sequence number for a write of `key`. Sequence numbers stay below 2^32 so that
    /// they pack beside the version; a run would need four billion writes of one key to wrap.
    pub fn issue(&self, key: u32) -> u64 {
        let seq = self.next_seq[key as usize].fetch_add(1, Ordering::Relaxed);
        assert!(
            seq < u32::MAX as u64,
            "sequence space of key {key} exhausted"
        );
        seq
    }

    /// One past the highest sequence number issued so far for `key`.
    pub fn issued(&self, key: u32) -> u64 {
        self.next_seq[key as usize].load(Ordering::Acquire)
    }

    pub fn acked(&self, key: u32) -> Acked {
        Acked::unpack(self.acked[key as usize].load(Ordering::Acquire))
    }

    /// Records that the server acknowledged the write of `seq` to `key` as znode `version`.
    pub fn acknowledge(&self, key: u32, version: i32, seq: u64) {
        let acked = Acked {
            version: version.max(0) as u32,
            seq: seq as u32,
        };
        self.acked[key as usize].fetch_max(acked.pack(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trips_and_names_its_sequence() {
        for size in [16, 17, 100, 1024] {
            let value = value_for(7, 123_456, size);
            assert_eq!(value.len(), size);
            assert_eq!(decode_value(7, Some(&value), size), Ok(123_456));
        }
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let value = value_for(3, 9, 64);
        for index in 4..value.len() {
            let mut damaged = value.clone();
            damaged[index] ^= 0x40;
            assert!(
                decode_value(3, Some(&damaged), 64).is_err(),
                "flip at {index} went unnoticed"
            );
        }
    }

    #[test]
    fn value_of_another_key_or_length_or_null_is_rejected() {
        let value = value_for(3, 9, 64);
        assert_eq!(
            decode_value(4, Some(&value), 64),
            Err(ValueError::WrongKey {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            decode_value(3, Some(&value[..63]), 64),
            Err(ValueError::WrongLength {
                expected: 64,
                actual: 63
            })
        );
        assert_eq!(decode_value(3, None, 64), Err(ValueError::Null));
        assert_eq!(
            decode_value(3, Some(&[0u8; 64]), 64),
            Err(ValueError::WrongKey {
                expected: 3,
                actual: 0
            })
        );
    }

    #[test]
    fn acknowledgements_are_ordered_by_server_version_not_sequence() {
        let table = KeyTable::new(2);
        let first = table.issue(1);
        let second = table.issue(1);
        assert_eq!((first, second), (1, 2));
        // The server applied the later-drawn sequence first.
        table.acknowledge(1, 2, first);
        table.acknowledge(1, 1, second);
        assert_eq!(table.acked(1), Acked { version: 2, seq: 1 });
        assert_eq!(table.acked(0), Acked { version: 0, seq: 0 });
        assert_eq!(table.issued(1), 3);
    }
}
