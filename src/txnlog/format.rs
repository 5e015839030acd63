//! [pure] The transaction log format, byte for byte, and its scanner.
//!
//! A log is a sequence of segment files `log.<first zxid, 16 hex digits>` in `dataLogDir`.
//! Every integer is big-endian (as in jute).
//!
//! ```text
//! segment header (32 bytes, at offset 0)
//!   0  magic            8 bytes  "RKTXNLOG"
//!   8  format version   u32      1
//!   12 header length    u32      32
//!   16 first zxid       i64      zxid of the segment's first record (also in the file name)
//!   24 created          i64      wall-clock ms
//! then batches, each starting at a multiple of BLOCK_BYTES (4096):
//!   record (RECORD_HEADER_BYTES = 36 bytes of header, then the payload)
//!   0  payload length   u32      > 0; 0 means "no record here" (see below)
//!   4  checksum         u32      CRC-32C of bytes 8.. of the record (header rest + payload)
//!   8  batch            u64      group-commit batch number, increasing by one per batch
//!   16 zxid             i64
//!   24 time             i64      wall-clock ms of the transaction
//!   32 flags            u32      bit 0: last record of its batch
//!   36 payload          the transaction (encode_txn)
//! ```
//!
//! A batch is written with one write and made durable with one fdatasync, and is padded with
//! zeros to the next block boundary so that a later write never touches a block that holds
//! acknowledged records. Segments are preallocated with zeros, so a zero length at a block
//! boundary is the end of the log; inside a block it is the padding after a batch.
//!
//! Recovery keeps whole batches only: no record of a batch was acknowledged unless the whole
//! batch was synced. A damaged record (bad length or checksum) in the last batch is a torn
//! write: the log is cut after the previous batch. A damaged record followed anywhere by a valid
//! record of a *later* batch means synced data is damaged: the scanner reports corruption and
//! the server refuses to start rather than lose acknowledged writes.

use crate::jute::codec::{JuteError, Reader, Record, Writer};
use crate::jute::protocol::ErrorCode;
use crate::jute::records::Acl;
use crate::tree::Txn;

pub const MAGIC: &[u8; 8] = b"RKTXNLOG";
pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: usize = 32;
pub const RECORD_HEADER_BYTES: usize = 36;
/// Batches start on block boundaries, so each batch is written with O_DIRECT on its own.
pub const BLOCK_BYTES: usize = crate::storage::DIRECT_IO_ALIGNMENT_BYTES;
/// Largest payload accepted when reading: a transaction is bounded by jute.maxbuffer plus
/// its envelope; anything larger is damage, not data.
pub const PAYLOAD_BYTES_MAX: usize = 64 << 20;
const FLAG_LAST_IN_BATCH: u32 = 1;

/// The name of the segment whose first record has `zxid`.
pub fn segment_name(first_zxid: i64) -> String {
    format!("log.{:016x}", first_zxid as u64)
}

/// The first zxid of a segment, from its file name.
pub fn parse_segment_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("log.")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|value| value as i64)
}

pub fn encode_segment_header(first_zxid: i64, created_ms: i64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    header[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_be_bytes());
    header[16..24].copy_from_slice(&first_zxid.to_be_bytes());
    header[24..32].copy_from_slice(&created_ms.to_be_bytes());
    header
}

// ---- transaction payloads ----

const TAG_CREATE: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_SET_DATA: u8 = 3;
const TAG_SET_ACL: u8 = 4;
const TAG_CHECK: u8 = 5;
const TAG_ERROR: u8 = 6;
const TAG_MULTI: u8 = 7;
const TAG_CREATE_SESSION: u8 = 8;
const TAG_CLOSE_SESSION: u8 = 9;
const TAG_RECONFIG: u8 = 10;

pub(crate) fn error_code_from_i32(code: i32) -> Option<ErrorCode> {
    use ErrorCode::*;
    [
        Ok,
        SystemError,
        RuntimeInconsistency,
        DataInconsistency,
        ConnectionLoss,
        MarshallingError,
        Unimplemented,
        OperationTimeout,
        BadArguments,
        UnknownSession,
        NewConfigNoQuorum,
        ReconfigInProgress,
        ApiError,
        NoNode,
        NoAuth,
        BadVersion,
        NoChildrenForEphemerals,
        NodeExists,
        NotEmpty,
        SessionExpired,
        InvalidCallback,
        InvalidAcl,
        AuthFailed,
        SessionMoved,
        NotReadOnly,
        EphemeralOnLocalSession,
        NoWatcher,
        RequestTimeout,
        ReconfigDisabled,
        SessionClosedRequireSaslAuth,
        QuotaExceeded,
        ThrottledOp,
    ]
    .into_iter()
    .find(|candidate| candidate.code() == code)
}

fn write_acl(writer: &mut Writer, acl: &[Acl]) {
    writer.write_vec(acl, |writer, entry| entry.encode(writer));
}

/// The payload of a transaction: a tag byte, then its fields in jute encoding.
///
/// | tag | transaction | fields |
/// | --- | --- | --- |
/// | 1 | Create | path ustring, data buffer (-1 = null), acl vector<ACL>, ephemeralOwner long, parentCVersion int |
/// | 2 | Delete | path |
/// | 3 | SetData | path, data buffer, version int |
/// | 4 | SetAcl | path, acl, aversion int |
/// | 5 | Check | path |
/// | 6 | Error | code int |
/// | 7 | Multi | count int, then each op's payload |
/// | 8 | CreateSession | session long, timeout int |
/// | 9 | CloseSession | session long, ephemerals vector<ustring> |
/// | 10 | Reconfig | data buffer (the new `/zookeeper/config` text) |
pub fn encode_txn(writer: &mut Writer, txn: &Txn) {
    match txn {
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            writer.write_bytes(&[TAG_CREATE]);
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            write_acl(writer, acl);
            writer.write_i64(*ephemeral_owner);
            writer.write_i32(*parent_cversion);
        }
        Txn::Delete { path } => {
            writer.write_bytes(&[TAG_DELETE]);
            writer.write_string(path);
        }
        Txn::SetData {
            path,
            data,
            version,
        } => {
            writer.write_bytes(&[TAG_SET_DATA]);
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            writer.write_i32(*version);
        }
        Txn::SetAcl { path, acl, version } => {
            writer.write_bytes(&[TAG_SET_ACL]);
            writer.write_string(path);
            write_acl(writer, acl);
            writer.write_i32(*version);
        }
        Txn::Check { path } => {
            writer.write_bytes(&[TAG_CHECK]);
            writer.write_string(path);
        }
        Txn::Error { code } => {
            writer.write_bytes(&[TAG_ERROR]);
            writer.write_i32(code.code());
        }
        Txn::Multi { ops } => {
            writer.write_bytes(&[TAG_MULTI]);
            writer.write_i32(ops.len() as i32);
            for op in ops {
                encode_txn(writer, op);
            }
        }
        Txn::CreateSession {
            session_id,
            timeout_ms,
        } => {
            writer.write_bytes(&[TAG_CREATE_SESSION]);
            writer.write_i64(*session_id);
            writer.write_i32(*timeout_ms);
        }
        Txn::CloseSession {
            session_id,
            ephemerals,
        } => {
            writer.write_bytes(&[TAG_CLOSE_SESSION]);
            writer.write_i64(*session_id);
            writer.write_string_vec(ephemerals);
        }
        Txn::Reconfig { data } => {
            writer.write_bytes(&[TAG_RECONFIG]);
            writer.write_optional_buffer(Some(data));
        }
    }
}

/// Multi nesting allowed when decoding (the server writes one level).
const MULTI_DEPTH_MAX: usize = 2;

pub fn decode_txn(reader: &mut Reader<'_>) -> Result<Txn, JuteError> {
    decode_txn_at_depth(reader, 0)
}

fn decode_txn_at_depth(reader: &mut Reader<'_>, depth: usize) -> Result<Txn, JuteError> {
    let tag = reader.read_byte()?;
    let invalid = |field: &'static str, value: i64| JuteError::InvalidValue { field, value };
    Ok(match tag {
        TAG_CREATE => Txn::Create {
            path: reader.read_string()?,
            data: reader.read_optional_buffer()?,
            acl: reader.read_vec(12, Acl::decode)?,
            ephemeral_owner: reader.read_i64()?,
            parent_cversion: reader.read_i32()?,
        },
        TAG_DELETE => Txn::Delete {
            path: reader.read_string()?,
        },
        TAG_SET_DATA => Txn::SetData {
            path: reader.read_string()?,
            data: reader.read_optional_buffer()?,
            version: reader.read_i32()?,
        },
        TAG_SET_ACL => Txn::SetAcl {
            path: reader.read_string()?,
            acl: reader.read_vec(12, Acl::decode)?,
            version: reader.read_i32()?,
        },
        TAG_CHECK => Txn::Check {
            path: reader.read_string()?,
        },
        TAG_ERROR => {
            let code = reader.read_i32()?;
            Txn::Error {
                code: error_code_from_i32(code).ok_or(invalid("error code", code as i64))?,
            }
        }
        TAG_MULTI => {
            if depth >= MULTI_DEPTH_MAX {
                return Err(invalid("multi nesting", depth as i64));
            }
            let count = reader.read_i32()?;
            if count < 0 || count as usize > reader.remaining() {
                return Err(invalid("multi op count", count as i64));
            }
            let mut ops = Vec::with_capacity(count as usize);
            for _ in 0..count {
                ops.push(decode_txn_at_depth(reader, depth + 1)?);
            }
            Txn::Multi { ops }
        }
        TAG_CREATE_SESSION => Txn::CreateSession {
            session_id: reader.read_i64()?,
            timeout_ms: reader.read_i32()?,
        },
        TAG_CLOSE_SESSION => Txn::CloseSession {
            session_id: reader.read_i64()?,
            ephemerals: reader.read_string_vec()?,
        },
        TAG_RECONFIG => Txn::Reconfig {
            data: reader
                .read_optional_buffer()?
                .ok_or(invalid("reconfig data", -1))?,
        },
        other => return Err(invalid("transaction tag", other as i64)),
    })
}

// ---- records ----

/// One logged transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub zxid: i64,
    pub time_ms: i64,
    pub txn: Txn,
}

/// Appends one batch (records in zxid order) to `out`, padded to the next block boundary.
/// `out` must start at a block boundary of the segment (or right after the header, which the
/// caller pads to the first block).
pub fn encode_batch(out: &mut Vec<u8>, batch: u64, records: &[LogRecord]) {
    for (index, record) in records.iter().enumerate() {
        let mut payload = Writer::new();
        encode_txn(&mut payload, &record.txn);
        let payload = payload.into_bytes();
        let flags = if index + 1 == records.len() {
            FLAG_LAST_IN_BATCH
        } else {
            0
        };
        let start = out.len();
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&batch.to_be_bytes());
        out.extend_from_slice(&record.zxid.to_be_bytes());
        out.extend_from_slice(&record.time_ms.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&payload);
        let checksum = crc32c::crc32c(&out[start + 8..]);
        out[start + 4..start + 8].copy_from_slice(&checksum.to_be_bytes());
    }
    let padded = out.len().div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    out.resize(padded, 0);
}

/// What scanning one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub first_zxid: i64,
    /// Records of complete batches, in order (those above `decode_after`).
    pub records: Vec<LogRecord>,
    /// First and last zxid of the records of complete batches that were checked but not
    /// decoded (`scan_segment_after`); they all precede `records`.
    pub skipped: Option<(i64, i64)>,
    /// The offset just past the last complete batch (block-aligned): where appending resumes.
    pub valid_end: usize,
    /// The number of the last complete batch (0 when there is none).
    pub last_batch: u64,
    /// Where each complete batch is, in order (truncation cuts at these).
    pub batches: Vec<BatchExtent>,
    pub ending: Ending,
}

/// One complete batch of a scanned segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchExtent {
    pub number: u64,
    /// Offset of its first record (block-aligned).
    pub start: usize,
    /// Index of its first record in [`Scan::records`].
    pub first_record: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Zeros after the last complete batch: a clean end.
    Clean,
    /// A damaged or incomplete last batch, cut off at `valid_end`.
    TornTail { at: usize, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("not a transaction log segment: {0}")]
    BadHeader(String),
    #[error("damaged record at offset {at} is followed by a synced batch: {reason}")]
    Corrupt { at: usize, reason: String },
}

struct Parsed {
    zxid: i64,
    /// None when the record was checked but not decoded (`scan_segment_after`).
    record: Option<LogRecord>,
    batch: u64,
    last_in_batch: bool,
    end: usize,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|slice| slice.try_into().ok())
        .map(u32::from_be_bytes)
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|slice| slice.try_into().ok())
        .map(u64::from_be_bytes)
}

/// Parses the record at `at`; Err describes the damage.
/// Parses the record at `at`, checking its length and checksum; decodes its transaction only
/// when its zxid is above `decode_after`.
fn parse_record(bytes: &[u8], at: usize, decode_after: i64) -> Result<Parsed, String> {
    let length = be_u32(bytes, at).ok_or("truncated length")? as usize;
    if length == 0 || length > PAYLOAD_BYTES_MAX {
        return Err(format!("implausible payload length {length}"));
    }
    let end = at
        .checked_add(RECORD_HEADER_BYTES + length)
        .filter(|end| *end <= bytes.len())
        .ok_or("record runs past the end of the segment")?;
    let checksum = be_u32(bytes, at + 4).ok_or("truncated checksum")?;
    if crc32c::crc32c(&bytes[at + 8..end]) != checksum {
        return Err("checksum mismatch".into());
    }
    let batch = be_u64(bytes, at + 8).ok_or("truncated batch")?;
    let zxid = be_u64(bytes, at + 16).ok_or("truncated zxid")? as i64;
    let time_ms = be_u64(bytes, at + 24).ok_or("truncated time")? as i64;
    let flags = be_u32(bytes, at + 32).ok_or("truncated flags")?;
    let record = if zxid > decode_after {
        let mut reader = Reader::new(&bytes[at + RECORD_HEADER_BYTES..end]);
        let txn =
            decode_txn(&mut reader).map_err(|error| format!("undecodable payload: {error}"))?;
        reader
            .finish()
            .map_err(|error| format!("payload has {error}"))?;
        Some(LogRecord { zxid, time_ms, txn })
    } else {
        None
    };
    Ok(Parsed {
        zxid,
        record,
        batch,
        last_in_batch: flags & FLAG_LAST_IN_BATCH != 0,
        end,
    })
}

/// Scans one segment. Checks the header, whole batches, increasing batch numbers and zxids.
pub fn scan_segment(bytes: &[u8]) -> Result<Scan, ScanError> {
    scan_segment_after(bytes, i64::MIN)
}

/// [`scan_segment`], with the records at or below `decode_after` (those a snapshot covers)
/// checked exactly as the others (length, checksum, batch and zxid order) but neither decoded
/// nor kept: only their zxid range is reported, in [`Scan::skipped`]. Recovery reads the
/// segment that holds the snapshot's zxid this way; decoding what it would drop was most of a
/// restart's time.
pub fn scan_segment_after(bytes: &[u8], decode_after: i64) -> Result<Scan, ScanError> {
    if bytes.len() < SEGMENT_HEADER_BYTES || &bytes[0..8] != MAGIC {
        return Err(ScanError::BadHeader("bad magic".into()));
    }
    let version = be_u32(bytes, 8).unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(ScanError::BadHeader(format!(
            "format version {version}, this server reads {FORMAT_VERSION}"
        )));
    }
    let first_zxid = be_u64(bytes, 16).unwrap_or(0) as i64;
    let mut scan = Scan {
        first_zxid,
        records: Vec::new(),
        skipped: None,
        valid_end: BLOCK_BYTES.min(bytes.len()),
        last_batch: 0,
        batches: Vec::new(),
        ending: Ending::Clean,
    };
    let mut position = BLOCK_BYTES;
    let mut batch_start = position;
    let mut pending: Vec<LogRecord> = Vec::new();
    // First and last zxid of the pending batch's records that were not decoded.
    let mut pending_skipped: Option<(i64, i64)> = None;
    let mut pending_batch: Option<u64> = None;
    let mut last_zxid = i64::MIN;
    let damage = loop {
        if position + 4 > bytes.len() {
            break pending_batch.map(|_| "batch incomplete at the end of the segment".to_string());
        }
        if be_u32(bytes, position) == Some(0) {
            if position.is_multiple_of(BLOCK_BYTES) {
                break pending_batch
                    .map(|_| "batch incomplete before the end of the log".to_string());
            }
            position = position.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
            continue;
        }
        let parsed = match parse_record(bytes, position, decode_after) {
            Ok(parsed) => parsed,
            Err(reason) => break Some(reason),
        };
        // A batch numbered u64::MAX has no successor (found by the log_records fuzz target:
        // `last_batch + 1` overflowed); anything after it is damage.
        let Some(expected_batch) = pending_batch.or(scan.last_batch.checked_add(1)) else {
            break Some("a batch follows batch u64::MAX".to_string());
        };
        if parsed.batch != expected_batch && !(scan.last_batch == 0 && pending_batch.is_none()) {
            break Some(format!(
                "batch {} where batch {expected_batch} was expected",
                parsed.batch
            ));
        }
        if parsed.zxid <= last_zxid {
            break Some(format!(
                "zxid {:#x} does not follow {last_zxid:#x}",
                parsed.zxid
            ));
        }
        last_zxid = parsed.zxid;
        if pending_batch.is_none() {
            batch_start = position;
        }
        pending_batch = Some(parsed.batch);
        match parsed.record {
            Some(record) => pending.push(record),
            None => {
                let first = pending_skipped.map_or(parsed.zxid, |(first, _)| first);
                pending_skipped = Some((first, parsed.zxid));
            }
        }
        position = parsed.end;
        if parsed.last_in_batch {
            scan.batches.push(BatchExtent {
                number: parsed.batch,
                start: batch_start,
                first_record: scan.records.len(),
            });
            scan.records.append(&mut pending);
            if let Some((first, last)) = pending_skipped.take() {
                scan.skipped = Some(scan.skipped.map_or((first, last), |(kept, _)| (kept, last)));
            }
            scan.last_batch = parsed.batch;
            pending_batch = None;
            position = position.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
            scan.valid_end = position.min(bytes.len());
        }
    };
    if let Some(reason) = damage {
        // Is there a valid record of a later batch anywhere after the damage? Then the
        // damaged batch had been synced before it: refuse.
        let damaged_batch = pending_batch.unwrap_or(scan.last_batch.saturating_add(1));
        let mut probe = position.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        while probe + RECORD_HEADER_BYTES <= bytes.len() {
            if let Ok(parsed) = parse_record(bytes, probe, i64::MAX) {
                if parsed.batch > damaged_batch {
                    return Err(ScanError::Corrupt {
                        at: position,
                        reason,
                    });
                }
            }
            probe += BLOCK_BYTES;
        }
        scan.ending = Ending::TornTail {
            at: position,
            reason,
        };
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::open_acl;

    fn record(zxid: i64) -> LogRecord {
        LogRecord {
            zxid,
            time_ms: 1000 + zxid,
            txn: Txn::Create {
                path: format!("/n{zxid}"),
                data: Some(vec![7; 10]),
                acl: open_acl(),
                ephemeral_owner: 0,
                parent_cversion: zxid as i32,
            },
        }
    }

    fn segment(batches: &[&[i64]]) -> Vec<u8> {
        let mut bytes = encode_segment_header(1, 0).to_vec();
        bytes.resize(BLOCK_BYTES, 0);
        for (index, zxids) in batches.iter().enumerate() {
            let records: Vec<LogRecord> = zxids.iter().map(|zxid| record(*zxid)).collect();
            encode_batch(&mut bytes, index as u64 + 1, &records);
        }
        bytes.resize(bytes.len() + 4 * BLOCK_BYTES, 0);
        bytes
    }

    #[test]
    fn every_transaction_kind_round_trips() {
        let txns = vec![
            record(1).txn,
            Txn::Delete { path: "/a".into() },
            Txn::SetData {
                path: "/a".into(),
                data: None,
                version: 3,
            },
            Txn::SetAcl {
                path: "/a".into(),
                acl: open_acl(),
                version: 2,
            },
            Txn::Check { path: "/a".into() },
            Txn::Reconfig {
                data: b"server.1=127.0.0.1:1:2:participant\nversion=100000001".to_vec(),
            },
            Txn::Error {
                code: ErrorCode::NodeExists,
            },
            Txn::Multi {
                ops: vec![
                    Txn::Error {
                        code: ErrorCode::Ok,
                    },
                    Txn::Delete { path: "/b".into() },
                ],
            },
            Txn::CreateSession {
                session_id: 0x100,
                timeout_ms: 4000,
            },
            Txn::CloseSession {
                session_id: 0x100,
                ephemerals: vec!["/e".into()],
            },
        ];
        for txn in txns {
            let mut writer = Writer::new();
            encode_txn(&mut writer, &txn);
            let bytes = writer.into_bytes();
            let mut reader = Reader::new(&bytes);
            assert_eq!(decode_txn(&mut reader).as_ref(), Ok(&txn));
            assert!(reader.finish().is_ok());
        }
    }

    #[test]
    fn clean_segment_scans_every_batch() {
        let bytes = segment(&[&[1, 2, 3], &[4], &[5, 6]]);
        let scan = scan_segment(&bytes);
        let scan = scan.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(scan.ending, Ending::Clean);
        assert_eq!(
            scan.records.iter().map(|r| r.zxid).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(scan.last_batch, 3);
        assert_eq!(scan.valid_end % BLOCK_BYTES, 0);
    }

    #[test]
    fn records_a_snapshot_covers_are_checked_but_not_decoded() {
        let bytes = segment(&[&[1, 2, 3], &[4], &[5, 6]]);
        let full = scan_segment(&bytes).unwrap_or_else(|error| panic!("{error}"));
        for (after, skipped, kept) in [
            (0, None, vec![1, 2, 3, 4, 5, 6]),
            (2, Some((1, 2)), vec![3, 4, 5, 6]),
            (4, Some((1, 4)), vec![5, 6]),
            (9, Some((1, 6)), vec![]),
        ] {
            let scan = scan_segment_after(&bytes, after).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(scan.skipped, skipped, "after {after}");
            assert_eq!(
                scan.records.iter().map(|r| r.zxid).collect::<Vec<_>>(),
                kept,
                "after {after}"
            );
            assert_eq!(
                (scan.valid_end, scan.last_batch, scan.ending.clone()),
                (full.valid_end, full.last_batch, full.ending.clone())
            );
        }
        // Damage in a skipped record is found all the same.
        let mut damaged = bytes.clone();
        damaged[BLOCK_BYTES + RECORD_HEADER_BYTES + 20] ^= 0x01; // batch 1's first record
        assert!(matches!(
            scan_segment_after(&damaged, 9),
            Err(ScanError::Corrupt { .. })
        ));
        // A torn skipped batch is cut whole, and its records are not reported as skipped.
        let mut torn = segment(&[&[1, 2], &[3, 4, 5]]);
        torn[2 * BLOCK_BYTES + RECORD_HEADER_BYTES + 100] ^= 0xff;
        let scan = scan_segment_after(&torn, 9).unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(scan.ending, Ending::TornTail { .. }));
        assert_eq!(scan.skipped, Some((1, 2)));
    }

    #[test]
    fn torn_last_batch_is_cut_whole() {
        let mut bytes = segment(&[&[1, 2], &[3, 4, 5]]);
        // Damage the middle record of the last batch.
        let second_batch = 2 * BLOCK_BYTES;
        let second_record = second_batch + RECORD_HEADER_BYTES + 60;
        bytes[second_record + 40] ^= 0xff;
        let scan = scan_segment(&bytes).unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(scan.ending, Ending::TornTail { .. }));
        assert_eq!(
            scan.records.iter().map(|r| r.zxid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(scan.valid_end, second_batch);
    }

    #[test]
    fn damage_before_a_later_batch_is_corruption() {
        let mut bytes = segment(&[&[1], &[2], &[3]]);
        bytes[2 * BLOCK_BYTES + 20] ^= 0x01; // batch 2's record
        assert!(matches!(
            scan_segment(&bytes),
            Err(ScanError::Corrupt { .. })
        ));
    }

    #[test]
    fn truncated_file_is_a_torn_tail() {
        let bytes = segment(&[&[1, 2], &[3]]);
        let cut = &bytes[..2 * BLOCK_BYTES + 50];
        let scan = scan_segment(cut).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(scan.records.len(), 2);
        assert!(matches!(scan.ending, Ending::TornTail { .. }));
    }

    #[test]
    fn segment_names_carry_the_first_zxid() {
        assert_eq!(segment_name(0x1_0000_0002), "log.0000000100000002");
        assert_eq!(
            parse_segment_name("log.0000000100000002"),
            Some(0x1_0000_0002)
        );
        assert_eq!(parse_segment_name("log.12"), None);
        assert_eq!(parse_segment_name("snapshot.1"), None);
    }
}
