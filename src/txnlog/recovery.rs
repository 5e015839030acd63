//! [io] Recovery of the transaction log: read every segment in order, keep whole batches,
//! cut a torn tail (and zero it on disk so it can never be mistaken for data), and refuse to
//! start when synced data is damaged or zxids have a gap, rather than lose acknowledged writes.

use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing::warn;

use crate::storage::Storage;

use super::format::{
    parse_segment_name, scan_segment_after, Ending, LogRecord, ScanError, BLOCK_BYTES,
};
use super::writer::LogTail;

#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error("cannot read the transaction log in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("transaction log segment {path} is damaged: {source}; refusing to start (acknowledged writes would be lost)")]
    Corrupt { path: PathBuf, source: ScanError },
    #[error("transaction log is not contiguous at {path}: {reason}; refusing to start")]
    Gap { path: PathBuf, reason: String },
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// Records with zxid greater than the snapshot's, in order.
    pub records: Vec<LogRecord>,
    /// Where the writer resumes.
    pub tail: LogTail,
    /// The last zxid in the log (0 when empty).
    pub last_zxid: i64,
    /// What was repaired, for the startup log.
    pub repairs: Vec<String>,
}

/// Reads a segment only as far as its log goes: a preallocated segment is mostly zeros, and
/// restart time must grow with the log, not with `preAllocSize`. The prefix read doubles
/// until its scan ends cleanly (a zero block) inside it or the file ends; anything else (a
/// torn or damaged end) is thus decided on the whole file, exactly as a full read would.
/// Records at or below `decode_after` are checked but not decoded.
fn read_and_scan(
    storage: &dyn Storage,
    path: &Path,
    decode_after: i64,
) -> Result<(Vec<u8>, Result<super::format::Scan, ScanError>), RecoveryError> {
    read_used_prefix(storage, path, decode_after).map_err(io_error(path))
}

/// [`read_and_scan`] for the writer's truncation too (TRUNC from a leader): the log is written
/// with O_DIRECT, so a whole 64 MiB segment is a cold read of hundreds of milliseconds that a
/// learner would spend before it can follow its new leader.
pub(crate) fn read_used_prefix(
    storage: &dyn Storage,
    path: &Path,
    decode_after: i64,
) -> std::io::Result<(Vec<u8>, Result<super::format::Scan, ScanError>)> {
    let mut bytes = storage.read_at(path, 0, FIRST_READ_BYTES)?;
    let mut complete = bytes.len() < FIRST_READ_BYTES;
    loop {
        let scan = scan_segment_after(&bytes, decode_after);
        let clean_inside = matches!(&scan, Ok(scan) if scan.ending == Ending::Clean
            && scan.valid_end + BLOCK_BYTES <= bytes.len());
        if complete || clean_inside {
            return Ok((bytes, scan));
        }
        let wanted = bytes.len();
        let more = storage.read_at(path, bytes.len() as u64, wanted)?;
        complete = more.len() < wanted;
        bytes.extend_from_slice(&more);
    }
}

/// The first prefix of a segment that recovery reads.
const FIRST_READ_BYTES: usize = 4 << 20;

/// Whether `next` may follow `previous`: the next counter of the same epoch, or the first of a
/// later epoch (zxid = epoch << 32 | counter).
pub fn zxid_follows(previous: i64, next: i64) -> bool {
    next == previous + 1 || ((next >> 32) > (previous >> 32) && next & 0xffff_ffff == 1)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Recovers the log in `dir`, returning the records after `snapshot_zxid`.
/// `batch_bytes_max` bounds how far a torn batch can reach, for zeroing it.
pub fn recover(
    storage: &dyn Storage,
    dir: &Path,
    snapshot_zxid: i64,
    batch_bytes_max: usize,
) -> Result<Recovered, RecoveryError> {
    storage.create_dir_all(dir).map_err(io_error(dir))?;
    let mut segments: Vec<(i64, String)> = storage
        .list(dir)
        .map_err(io_error(dir))?
        .into_iter()
        .filter_map(|name| parse_segment_name(&name).map(|zxid| (zxid, name)))
        .collect();
    segments.sort();
    let mut recovered = Recovered {
        records: Vec::new(),
        tail: LogTail {
            segment: None,
            next_batch: 1,
        },
        last_zxid: 0,
        repairs: Vec::new(),
    };
    let mut previous_zxid: Option<i64> = None;
    let mut previous_batch: Option<u64> = None;
    let count = segments.len();
    // Segments wholly covered by the snapshot are not read: the first one read is the last
    // whose first zxid is at most snapshot + 1 (it holds the record after the snapshot).
    let first_needed = if snapshot_zxid > 0 {
        segments
            .iter()
            .rposition(|(first_zxid, _)| *first_zxid <= snapshot_zxid + 1)
            .unwrap_or(0)
    } else {
        0
    };
    for (index, (_, name)) in segments.iter().enumerate().skip(first_needed) {
        let path = dir.join(name);
        let is_last = index + 1 == count;
        let (bytes, scanned) = read_and_scan(storage, &path, snapshot_zxid)?;
        let scan = match scanned {
            Ok(scan) => scan,
            Err(ScanError::BadHeader(reason)) if is_last && bytes.iter().all(|byte| *byte == 0) => {
                // Created but its header never reached the disk before a crash: no batch
                // was ever written to it.
                recovered.repairs.push(format!(
                    "removed empty segment {} ({reason})",
                    path.display()
                ));
                storage.remove(&path).map_err(io_error(&path))?;
                storage.sync_dir(dir).map_err(io_error(dir))?;
                continue;
            }
            Err(source) => return Err(RecoveryError::Corrupt { path, source }),
        };
        if let (Some(last), Some(first)) = (previous_batch, scan.records.first()) {
            let _ = first;
            if scan.last_batch != 0 && scan.last_batch <= last {
                return Err(RecoveryError::Gap {
                    path,
                    reason: format!("batch {} after batch {last}", scan.last_batch),
                });
            }
        }
        // Records the snapshot covers (checked, not decoded) only need to increase: within
        // the segment the scan checked it, across segments it is checked here.
        if let Some((first, last)) = scan.skipped {
            if let Some(previous) = previous_zxid.filter(|previous| first <= *previous) {
                return Err(RecoveryError::Gap {
                    path,
                    reason: format!("zxid {first:#x} after {previous:#x}"),
                });
            }
            previous_zxid = Some(last);
        }
        for record in &scan.records {
            // Records the snapshot covers only need to increase; from the snapshot on, the
            // log must continue it without a gap.
            if let Some(previous) = previous_zxid {
                let reference = previous.max(snapshot_zxid);
                let follows = if record.zxid <= snapshot_zxid {
                    record.zxid > previous
                } else {
                    zxid_follows(reference, record.zxid)
                };
                if !follows {
                    return Err(RecoveryError::Gap {
                        path,
                        reason: format!("zxid {:#x} after {reference:#x}", record.zxid),
                    });
                }
            }
            previous_zxid = Some(record.zxid);
        }
        if let Ending::TornTail { at, reason } = &scan.ending {
            if !is_last {
                return Err(RecoveryError::Corrupt {
                    path,
                    source: ScanError::Corrupt {
                        at: *at,
                        reason: format!("{reason}, and later segments exist"),
                    },
                });
            }
            // Zero what the torn batch may have left, so it can never be read as data.
            let end = (scan.valid_end + batch_bytes_max + BLOCK_BYTES).min(bytes.len());
            if end > scan.valid_end {
                let mut file = storage.open(&path).map_err(io_error(&path))?;
                file.write_at(scan.valid_end as u64, &vec![0u8; end - scan.valid_end])
                    .map_err(io_error(&path))?;
                file.sync_data().map_err(io_error(&path))?;
            }
            let message = format!(
                "cut a torn tail of {} at offset {at} ({reason}); appending resumes at {}",
                path.display(),
                scan.valid_end
            );
            warn!("{message}");
            recovered.repairs.push(message);
        }
        if scan.last_batch != 0 {
            previous_batch = Some(scan.last_batch);
        }
        recovered.tail.segment = Some((path.clone(), scan.valid_end as u64));
        recovered.records.extend(
            scan.records
                .into_iter()
                .filter(|record| record.zxid > snapshot_zxid),
        );
    }
    if let Some(batch) = previous_batch {
        recovered.tail.next_batch = batch + 1;
    }
    recovered.last_zxid = previous_zxid.unwrap_or(0);
    if recovered.last_zxid < snapshot_zxid {
        // The log ends before the snapshot (its later segments were removed by hand): new
        // records start a new segment that continues the snapshot.
        recovered.repairs.push(format!(
            "the log ends at {:#x}, before the snapshot at {snapshot_zxid:#x}; a new segment continues from the snapshot",
            recovered.last_zxid
        ));
        recovered.tail.segment = None;
    }
    if let (Some(first), true) = (recovered.records.first(), snapshot_zxid > 0) {
        if !zxid_follows(snapshot_zxid, first.zxid) {
            return Err(RecoveryError::Gap {
                path: dir.to_path_buf(),
                reason: format!(
                    "the snapshot ends at {snapshot_zxid:#x} but the log resumes at {:#x}",
                    first.zxid
                ),
            });
        }
    }
    Ok(recovered)
}

/// Replays recovered records onto `tree`, returning the sessions still open at the end
/// (id, timeout). A record that does not apply means the log and the tree disagree: recovery
/// refuses rather than serve a wrong tree.
pub fn replay(
    tree: &mut crate::tree::TreeVersion,
    records: &[LogRecord],
    mut sessions: std::collections::BTreeMap<i64, i32>,
) -> Result<std::collections::BTreeMap<i64, i32>, crate::tree::ApplyError> {
    use crate::tree::Txn;
    let mut ignored = Vec::new();
    for record in records {
        tree.apply(record.zxid, record.time_ms, &record.txn, &mut ignored)?;
        ignored.clear();
        match &record.txn {
            Txn::CreateSession {
                session_id,
                timeout_ms,
            } => {
                sessions.insert(*session_id, *timeout_ms);
            }
            Txn::CloseSession { session_id, .. } => {
                sessions.remove(session_id);
            }
            _ => {}
        }
    }
    Ok(sessions)
}

/// Removes the log segments whose records are all at or below `keep_after_zxid` (covered by
/// the oldest retained snapshot). The newest segment is never removed. Returns how many were.
pub fn purge_segments(
    storage: &dyn Storage,
    dir: &Path,
    keep_after_zxid: i64,
) -> std::io::Result<usize> {
    let mut segments: Vec<(i64, String)> = storage
        .list(dir)?
        .into_iter()
        .filter_map(|name| parse_segment_name(&name).map(|zxid| (zxid, name)))
        .collect();
    segments.sort();
    let mut removed = 0;
    for pair in segments.windows(2) {
        // Segment i holds zxids below the first zxid of segment i + 1.
        if pair[1].0 <= keep_after_zxid + 1 {
            storage.remove(&dir.join(&pair[0].1))?;
            removed += 1;
        }
    }
    if removed > 0 {
        storage.sync_dir(dir)?;
    }
    Ok(removed)
}
