//! [pure] One of ZooKeeper's transaction log files, `version-2/log.<first zxid in hex>`
//! (FileTxnLog), byte for byte:
//!
//! ```text
//! FileHeader   int magic "ZKLG" (0x5a4b4c47), int version 2, long dbid
//! then records, each:
//!   long   crc      Adler-32 of the entry bytes
//!   buffer entry    int length, then TxnHeader + txn record [+ TxnDigest] (see txn.rs)
//!   byte   EOR      'B' (0x42)
//! ```
//!
//! The file is preallocated with zeros, so a zero length is the end of the log
//! (Util.readTxnBytes: "we define EOF to be an empty transaction"). A record cut short (the
//! file ends inside it, or its end-of-record byte is not 'B': "Last transaction was partial")
//! also ends the file, and ZooKeeper goes on with the next file. A complete record whose
//! checksum does not match is damage: ZooKeeper refuses to start ("CRC check failed"), and so
//! does the import.

use crate::jute::codec::Reader;

use super::txn::{decode_entry, encode_entry, ZkEntry};
use super::{adler32, FormatError};

pub const LOG_MAGIC: i32 = 0x5a4b_4c47;
pub const LOG_VERSION: i32 = 2;
pub const FILE_HEADER_BYTES: usize = 16;
const END_OF_RECORD: u8 = b'B';

/// What a log file holds, and how it ended.
#[derive(Debug)]
pub struct ZkLogFile {
    pub entries: Vec<ZkEntry>,
    /// Why reading stopped before the end of the file, when it was not the zero padding of a
    /// preallocated file (a partial last record, e.g. after kill -9).
    pub partial_tail: Option<String>,
}

/// The first zxid of a log file from its name (`log.<hex>`, Util.getZxidFromName).
pub fn parse_log_name(name: &str) -> Option<i64> {
    parse_zxid_name(name, "log")
}

/// `<prefix>.<hex>[.<suffix>]` (Util.getZxidFromName splits at dots).
pub fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|zxid| zxid as i64)
}

/// Reads every record of a log file.
pub fn read_log(bytes: &[u8]) -> Result<ZkLogFile, FormatError> {
    let mut reader = Reader::new(bytes);
    let magic = reader.read_i32()?;
    if magic != LOG_MAGIC {
        return Err(FormatError::BadMagic {
            kind: "transaction log",
            found: magic,
        });
    }
    let version = reader.read_i32()?;
    if version != LOG_VERSION {
        return Err(FormatError::BadVersion {
            kind: "transaction log",
            version,
        });
    }
    let _dbid = reader.read_i64()?;
    let mut entries = Vec::new();
    let mut partial_tail = None;
    let mut position = FILE_HEADER_BYTES;
    while position < bytes.len() {
        let mut reader = Reader::new(&bytes[position..]);
        let partial = || Some(format!("a partial record at offset {position}"));
        let Ok(crc) = reader.read_i64() else {
            partial_tail = partial();
            break;
        };
        let length = match reader.read_i32() {
            Ok(0) => break,
            Ok(length) if length > 0 => length as usize,
            Ok(length) => {
                partial_tail = Some(format!("length {length} at offset {position}"));
                break;
            }
            Err(_) => {
                partial_tail = partial();
                break;
            }
        };
        let start = position + 12;
        if bytes.len() - start < length + 1 {
            partial_tail = partial();
            break;
        }
        let entry_bytes = &bytes[start..start + length];
        let end = bytes[start + length];
        if end != END_OF_RECORD {
            partial_tail = Some(format!(
                "a partial record at offset {position} (end-of-record byte {end:#x})"
            ));
            break;
        }
        let computed = adler32(entry_bytes);
        if computed != crc {
            return Err(FormatError::Checksum {
                what: "log record",
                stored: crc,
                computed,
            });
        }
        entries.push(decode_entry(entry_bytes)?);
        position = start + length + 1;
    }
    Ok(ZkLogFile {
        entries,
        partial_tail,
    })
}

/// A log file of `entries`, as FileTxnLog writes it (without preallocation): for the tests,
/// which write logs the way ZooKeeper does.
pub fn write_log(entries: &[ZkEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&LOG_MAGIC.to_be_bytes());
    out.extend_from_slice(&LOG_VERSION.to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes());
    for entry in entries {
        let bytes = encode_entry(entry);
        out.extend_from_slice(&adler32(&bytes).to_be_bytes());
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out.push(END_OF_RECORD);
    }
    out
}
