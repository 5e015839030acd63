//! [io] Loading a server's state at startup (DESIGN.md, "Snapshots and recovery"): map the
//! newest valid snapshot as the tree's base, recover the log after its zxid, replay it. Used
//! by the standalone runtime at start, and by quorum mode at start and after a ZAB
//! truncation, whose records also seed ZAB's in-memory history ([`durable_state`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use crate::snapshot::{list_snapshots, newest_valid, MappedSnapshot};
use crate::storage::Storage;
use crate::tree::TreeVersion;
use crate::zab::{DurableState, Epochs};

use super::format::LogRecord;
use super::recovery::{recover, replay};
use super::writer::LogTail;

/// What a server's disks hold, ready to serve.
#[derive(Debug)]
pub struct LoadedState {
    /// The snapshot (as the base) with the log after it replayed.
    pub tree: TreeVersion,
    /// Sessions open at `tree.zxid`: id → timeout (ms).
    pub sessions: BTreeMap<i64, i32>,
    /// The log records after the snapshot, in zxid order (those replayed onto the tree).
    pub records: Vec<LogRecord>,
    /// The zxid of the snapshot the tree is based on (0 without one).
    pub snapshot_zxid: i64,
    /// Where the log writer resumes.
    pub tail: LogTail,
    /// What recovery repaired or skipped (torn tails cut, snapshots not usable), for the
    /// startup log; the caller logs them.
    pub repairs: Vec<String>,
}

/// Loads the state in `data_dir` (snapshots) and `log_dir` (the log, through `storage`).
///
/// `upto: None` loads everything (a restart). `upto: Some(z)` is used after the log was
/// truncated to `z` (ZAB's TRUNC, already durable): the snapshot is the newest valid one at or
/// below `z`, and a log that still holds a record above `z` is an error, since its tail
/// would not describe the truncated log. Snapshots above `z` are skipped (and reported in
/// `repairs`); whoever truncated removes them (`snapshot::remove_snapshots_above`).
///
/// Errors (as messages for the operator): unreadable or damaged log or snapshot directory, a
/// log that does not continue the snapshot, a record that does not apply.
pub fn load_state(
    storage: &dyn Storage,
    data_dir: &Path,
    log_dir: &Path,
    batch_bytes_max: usize,
    upto: Option<i64>,
) -> Result<LoadedState, String> {
    let mut repairs = Vec::new();
    let started = Instant::now();
    let snapshot = match upto {
        None => {
            let newest = newest_valid(data_dir).map_err(|error| error.to_string())?;
            for rejected in &newest.rejected {
                let message = format!(
                    "snapshot {} is not usable ({}); falling back to an older one",
                    rejected.path.display(),
                    rejected.error
                );
                repairs.push(message);
            }
            newest.snapshot
        }
        Some(limit) => newest_at_or_below(data_dir, limit, &mut repairs)?,
    };
    let (mut tree, snapshot_zxid, snapshot_sessions) = match snapshot {
        Some(snapshot) => {
            let zxid = snapshot.zxid();
            let sessions: BTreeMap<i64, i32> = snapshot
                .sessions()
                .into_iter()
                .map(|record| (record.session_id, record.timeout_ms))
                .collect();
            info!(
                "mapped snapshot {} at zxid {zxid:#x} ({} znodes) in {} ms",
                snapshot.path().display(),
                snapshot.node_count(),
                started.elapsed().as_millis()
            );
            (
                TreeVersion::from_snapshot(Arc::new(snapshot)),
                zxid,
                sessions,
            )
        }
        None => (TreeVersion::new(), 0, BTreeMap::new()),
    };
    let recovering = Instant::now();
    let recovered = recover(storage, log_dir, snapshot_zxid, batch_bytes_max)
        .map_err(|error| error.to_string())?;
    repairs.extend(recovered.repairs);
    if let Some(limit) = upto {
        if let Some(above) = recovered.records.iter().find(|record| record.zxid > limit) {
            return Err(format!(
                "the transaction log in {} holds zxid {:#x}, above {limit:#x}: truncate it before loading up to {limit:#x}",
                log_dir.display(),
                above.zxid
            ));
        }
    }
    let sessions = replay(&mut tree, &recovered.records, snapshot_sessions)
        .map_err(|error| format!("replaying the log: {error}"))?;
    info!(
        "read and replayed {} log records after zxid {snapshot_zxid:#x} in {} ms",
        recovered.records.len(),
        recovering.elapsed().as_millis()
    );
    Ok(LoadedState {
        tree,
        sessions,
        records: recovered.records,
        snapshot_zxid,
        tail: recovered.tail,
        repairs,
    })
}

/// The newest valid snapshot at or below `limit`.
fn newest_at_or_below(
    data_dir: &Path,
    limit: i64,
    repairs: &mut Vec<String>,
) -> Result<Option<MappedSnapshot>, String> {
    for (zxid, path) in list_snapshots(data_dir)
        .map_err(|error| error.to_string())?
        .into_iter()
        .rev()
    {
        if zxid > limit {
            repairs.push(format!(
                "snapshot {} is above {limit:#x}: not used",
                path.display()
            ));
            continue;
        }
        match MappedSnapshot::open(&path) {
            Ok(snapshot) => return Ok(Some(snapshot)),
            Err(error) => {
                let message = format!(
                    "snapshot {} is not usable ({error}); falling back to an older one",
                    path.display()
                );
                repairs.push(message);
            }
        }
    }
    Ok(None)
}

/// What ZAB starts from ([`crate::zab::Input::Restart`]): the epochs, and the newest
/// `history_limit` records of `loaded` (ZooKeeper's committedLog, for DIFF). `base_zxid` is
/// the zxid just before the first of them: the previous record's, or the snapshot's when every
/// record after the snapshot is kept.
pub fn durable_state(loaded: &LoadedState, epochs: Epochs, history_limit: usize) -> DurableState {
    let first_kept = loaded.records.len().saturating_sub(history_limit);
    let base_zxid = match first_kept.checked_sub(1) {
        Some(previous) => loaded
            .records
            .get(previous)
            .map_or(loaded.snapshot_zxid, |record| record.zxid),
        None => loaded.snapshot_zxid,
    };
    DurableState {
        epochs,
        base_zxid,
        recent: loaded.records[first_kept..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimDisk;
    use crate::tree::Txn;

    fn loaded(snapshot_zxid: i64, zxids: &[i64]) -> LoadedState {
        LoadedState {
            tree: TreeVersion::new(),
            sessions: BTreeMap::new(),
            records: zxids
                .iter()
                .map(|zxid| LogRecord {
                    zxid: *zxid,
                    time_ms: 0,
                    txn: Txn::Check { path: "/".into() },
                })
                .collect(),
            snapshot_zxid,
            tail: LogTail {
                segment: None,
                next_batch: 1,
            },
            repairs: Vec::new(),
        }
    }

    #[test]
    fn durable_state_keeps_the_newest_records_and_the_zxid_before_them() {
        let epochs = Epochs {
            accepted_epoch: 2,
            accepted_leader: Some(1),
            current_epoch: 2,
        };
        let state = durable_state(&loaded(10, &[11, 12, 13, 14]), epochs, 2);
        assert_eq!(state.epochs, epochs);
        assert_eq!(state.base_zxid, 12);
        assert_eq!(
            state.recent.iter().map(|r| r.zxid).collect::<Vec<_>>(),
            vec![13, 14]
        );
        let all = durable_state(&loaded(10, &[11, 12]), epochs, 5);
        assert_eq!((all.base_zxid, all.recent.len()), (10, 2));
        let none = durable_state(&loaded(10, &[]), epochs, 5);
        assert_eq!((none.base_zxid, none.recent.len()), (10, 0));
        let zero = durable_state(&loaded(0, &[1, 2]), epochs, 0);
        assert_eq!((zero.base_zxid, zero.recent.len()), (2, 0));
    }

    #[test]
    fn an_empty_server_loads_an_empty_tree() {
        let disk = SimDisk::new(1);
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let state = load_state(&disk, dir.path(), Path::new("/log"), 1 << 20, None)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((state.tree.zxid, state.snapshot_zxid), (0, 0));
        assert!(state.records.is_empty() && state.sessions.is_empty());
        assert_eq!(state.tail.segment, None);
    }
}
