//! [io] Loading a server's state at startup (DESIGN.md, "Snapshots and recovery"): map the
//! newest valid snapshot as the tree's base, recover the log after its zxid, replay it. Used
//! by the standalone runtime at start, and by quorum mode at start and after a ZAB
//! truncation, whose records also seed ZAB's in-memory history (`zab::DurableState::from_history`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use crate::snapshot::{list_snapshots, newest_valid_converting, open_converting, MappedSnapshot};
use crate::storage::Storage;
use crate::tree::TreeVersion;

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
    // The log is recovered on a second thread while the snapshot is validated (both are
    // sequential passes over hundreds of MB at restart), from the zxid the newest candidate
    // snapshot's name gives. Should that snapshot fail validation, the log is recovered
    // again from the one used: recovery's repairs (a torn tail zeroed, an empty last segment
    // removed) do not depend on the zxid.
    let guess = newest_candidate(data_dir, upto);
    let (snapshot, speculative) = std::thread::scope(|scope| {
        let recovering = Instant::now();
        let speculative = std::thread::Builder::new()
            .name("log-recovery".into())
            .spawn_scoped(scope, move || {
                let recovered = recover(storage, log_dir, guess, batch_bytes_max);
                (recovered, recovering.elapsed())
            });
        let snapshot = match upto {
            None => newest_valid_converting(data_dir, storage.is_dry_run())
                .map_err(|error| error.to_string())
                .map(|newest| {
                    repairs.extend(newest.converted);
                    for rejected in &newest.rejected {
                        let message = format!(
                            "snapshot {} is not usable ({}); falling back to an older one",
                            rejected.path.display(),
                            rejected.error
                        );
                        repairs.push(message);
                    }
                    newest.snapshot
                }),
            Some(limit) => newest_at_or_below(data_dir, limit, storage.is_dry_run(), &mut repairs),
        };
        let speculative = match speculative {
            Ok(handle) => handle.join().ok(),
            Err(_) => None,
        };
        (snapshot, speculative)
    });
    let snapshot = snapshot?;
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
            let stored_digest = snapshot.tree_digest().is_some();
            let path = snapshot.path().to_path_buf();
            let digesting = Instant::now();
            let tree = TreeVersion::from_snapshot(Arc::new(snapshot));
            if !stored_digest {
                info!(
                    "snapshot {} carries no tree digest (written before ringkeeper kept one): computed it from its {} znodes in {} ms, once; the next snapshot carries it",
                    path.display(),
                    tree.node_count(),
                    digesting.elapsed().as_millis()
                );
            }
            (tree, zxid, sessions)
        }
        None => (TreeVersion::new(), 0, BTreeMap::new()),
    };
    let (recovered, recovery_time) = match speculative {
        Some((recovered, took)) if guess == snapshot_zxid => (recovered, took),
        _ => {
            let recovering = Instant::now();
            let recovered = recover(storage, log_dir, snapshot_zxid, batch_bytes_max);
            (recovered, recovering.elapsed())
        }
    };
    let recovered = recovered.map_err(|error| error.to_string())?;
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
    let replaying = Instant::now();
    let sessions = replay(&mut tree, &recovered.records, snapshot_sessions)
        .map_err(|error| format!("replaying the log: {error}"))?;
    info!(
        "read the log in {} ms, replayed {} records after zxid {snapshot_zxid:#x} in {} ms",
        recovery_time.as_millis(),
        recovered.records.len(),
        replaying.elapsed().as_millis()
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

/// The zxid of the snapshot recovery will most likely start from: the newest one's (at or
/// below `upto`), from its name; 0 when there is none.
fn newest_candidate(data_dir: &Path, upto: Option<i64>) -> i64 {
    list_snapshots(data_dir)
        .ok()
        .and_then(|snapshots| {
            snapshots
                .into_iter()
                .rev()
                .map(|(zxid, _)| zxid)
                .find(|zxid| upto.is_none_or(|limit| *zxid <= limit))
        })
        .unwrap_or(0)
}

/// The newest valid snapshot at or below `limit`.
fn newest_at_or_below(
    data_dir: &Path,
    limit: i64,
    dry_run: bool,
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
        match open_converting(data_dir, &path, dry_run) {
            Ok((snapshot, converted)) => {
                repairs.extend(converted);
                return Ok(Some(snapshot));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimDisk;
    use crate::tree::Txn;

    /// `records` as one batch in segment 1 of `log` on `disk`, synced.
    fn write_one_segment(disk: &SimDisk, log: &Path, records: &[LogRecord]) {
        use crate::storage::Storage;
        use crate::txnlog::format::BLOCK_BYTES;
        use crate::txnlog::format::{encode_batch, encode_segment_header, segment_name};
        assert!(disk.create_dir_all(log).is_ok());
        let mut segment = encode_segment_header(1, 0).to_vec();
        segment.resize(BLOCK_BYTES, 0);
        encode_batch(&mut segment, 1, records);
        segment.resize(segment.len() + 4 * BLOCK_BYTES, 0);
        let mut file = disk
            .create(&log.join(segment_name(1)), 0)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(file.write_at(0, &segment).is_ok() && file.sync_data().is_ok());
    }

    /// The newest snapshot is damaged: recovery falls back to the older one and replays the
    /// log from there, although the log was first read (speculatively) from the newest one's
    /// zxid.
    #[test]
    fn a_damaged_newest_snapshot_falls_back_and_the_log_is_replayed_from_the_older_one() {
        use crate::snapshot::write_snapshot;
        use crate::tree::acl::open_acl;

        let records: Vec<LogRecord> = (1..=6)
            .map(|zxid| LogRecord {
                zxid,
                time_ms: 1_000 + zxid,
                txn: Txn::Create {
                    path: format!("/n{zxid}"),
                    data: Some(vec![zxid as u8]),
                    acl: open_acl(),
                    ephemeral_owner: 0,
                    parent_cversion: zxid as i32,
                },
            })
            .collect();
        let data = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut tree = TreeVersion::new();
        let mut snapshot_paths = Vec::new();
        for record in &records {
            let applied = tree.apply(record.zxid, record.time_ms, &record.txn, &mut Vec::new());
            assert!(applied.is_ok(), "{applied:?}");
            if record.zxid == 3 || record.zxid == 5 {
                let path = write_snapshot(data.path(), &tree, &[])
                    .unwrap_or_else(|error| panic!("{error}"));
                snapshot_paths.push(path);
            }
        }
        let disk = SimDisk::new(7);
        let log = Path::new("/log");
        write_one_segment(&disk, log, &records);
        // Damage the newest snapshot (a new file under its name: mappings are never
        // modified in place).
        let newest = &snapshot_paths[1];
        let mut bytes = std::fs::read(newest).unwrap_or_else(|error| panic!("{error}"));
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        assert!(std::fs::remove_file(newest).is_ok() && std::fs::write(newest, &bytes).is_ok());

        let state = load_state(&disk, data.path(), log, 1 << 20, None)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(state.snapshot_zxid, 3);
        assert_eq!(
            state.records.iter().map(|r| r.zxid).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert_eq!(state.tree.zxid, 6);
        for zxid in 1..=6u8 {
            let node = state.tree.get(&format!("/n{zxid}"));
            assert_eq!(
                node.and_then(|n| n.data.as_deref().map(<[u8]>::to_vec)),
                Some(vec![zxid])
            );
        }
        assert!(
            state
                .repairs
                .iter()
                .any(|repair| repair.contains("not usable")),
            "{:?}",
            state.repairs
        );
    }

    /// A restart gives the tree digest the server had (the snapshot header's, carried through
    /// the replay of the log after it), and the `hash` history of the replayed txns only (it
    /// is kept in memory, as ZooKeeper's is).
    #[test]
    fn a_restart_from_snapshot_and_log_gives_the_same_digest() {
        use crate::snapshot::write_snapshot;
        use crate::tree::acl::open_acl;

        let data = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut tree = TreeVersion::new();
        let mut records = Vec::new();
        for zxid in 1..=300i64 {
            let txn = match zxid % 5 {
                0 => Txn::SetData {
                    path: format!("/n{}", zxid - 1),
                    data: Some(vec![zxid as u8; 3]),
                    version: 1,
                },
                3 if zxid > 10 => Txn::Delete {
                    path: format!("/n{}", zxid - 2),
                },
                _ => Txn::Create {
                    path: format!("/n{zxid}"),
                    data: Some(vec![zxid as u8]),
                    acl: open_acl(),
                    ephemeral_owner: 0,
                    parent_cversion: tree.get("/").map_or(0, |root| root.stat.cversion) + 1,
                },
            };
            let record = LogRecord {
                zxid,
                time_ms: 5_000 + zxid,
                txn,
            };
            let applied = tree.apply(record.zxid, record.time_ms, &record.txn, &mut Vec::new());
            assert!(applied.is_ok(), "{zxid}: {applied:?}");
            records.push(record);
            if zxid == 200 {
                let written = write_snapshot(data.path(), &tree, &[]);
                assert!(written.is_ok(), "{written:?}");
            }
        }
        assert_eq!(tree.digest(), tree.digest_recomputed());
        let disk = SimDisk::new(3);
        let log = Path::new("/log");
        write_one_segment(&disk, log, &records);

        let state = load_state(&disk, data.path(), log, 1 << 20, None)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((state.snapshot_zxid, state.tree.zxid), (200, 300));
        assert_eq!(state.tree.digest(), tree.digest());
        assert_eq!(state.tree.digest(), state.tree.digest_recomputed());
        let history = |tree: &TreeVersion| -> Vec<(i64, i64)> {
            tree.digest_log()
                .entries()
                .map(|entry| (entry.zxid, entry.digest))
                .collect()
        };
        let before = history(&tree);
        assert_eq!(before.len(), 2);
        assert_eq!(history(&state.tree), before[1..].to_vec());
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
