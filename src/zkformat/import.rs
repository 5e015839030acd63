//! [io] Starting on Apache ZooKeeper's files: when ringkeeper has no state of its own (no
//! `snapshot.<16 hex>` in dataDir, no `log.<16 hex>` in dataLogDir) and ZooKeeper's
//! `version-2/` holds a snapshot or a log, the state is loaded as ZooKeeper's own recovery
//! does (FileTxnSnapLog.restore): the newest snapshot that reads cleanly (FileSnap tries up to
//! 100, newest first), then the fuzzy replay of every logged txn after its zxid
//! (fastForwardFromEdits, with the log files FileTxnLog.getLogFiles picks). The tree digest is
//! checked where ZooKeeper wrote one (the snapshot's ZxidDigest once replay reaches its zxid,
//! and each txn's TxnDigest after that); a mismatch refuses the import. Then ringkeeper writes
//! its own snapshot of the result (and, in an ensemble, its epochs from ZooKeeper's
//! `currentEpoch` / `acceptedEpoch`), and its normal recovery starts from that.
//!
//! ZooKeeper's files are only read. The marker file `dataDir/zookeeper-import` records what
//! was imported; while it exists the server also accepts ZooKeeper's session passwords
//! ([`super::password`]), so a client of the Java server resumes its session.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use crate::jute::codec::{Record, Writer};
use crate::jute::records::Acl;
use crate::snapshot::format::{parse_snapshot_name, SessionRecord};
use crate::tree::{Node, TreeVersion};
use crate::txnlog::format::parse_segment_name;

use super::log::{parse_log_name, parse_zxid_name, read_log};
use super::model::ZkTree;
use super::snapshot::{decompress, read_snapshot, ZxidDigest};
use super::txn::TxnDigest;
use crate::tree::digest::DIGEST_VERSION;

/// The marker a successful import leaves in dataDir.
pub const MARKER_FILE: &str = "zookeeper-import";
/// ZooKeeper's subdirectory of dataDir and dataLogDir (FileTxnSnapLog.version).
pub const ZOOKEEPER_SUBDIR: &str = "version-2";
/// FileSnap.deserialize: "we run through 100 snapshots (not all of them)".
const SNAPSHOTS_TRIED_MAX: usize = 100;

/// ZooKeeper's state, loaded and replayed.
#[derive(Debug)]
pub struct ZooKeeperState {
    pub tree: ZkTree,
    /// The snapshot used and its zxid.
    pub snapshot: Option<(PathBuf, i64)>,
    pub logs_read: Vec<PathBuf>,
    pub txns_replayed: usize,
    /// Digests compared (the snapshot's and each txn's), all equal.
    pub digests_checked: usize,
    /// Snapshots skipped, partial log tails: for the operator.
    pub notes: Vec<String>,
    pub current_epoch: Option<i64>,
    pub accepted_epoch: Option<i64>,
}

/// Whether `dir` holds any file ringkeeper writes: then ZooKeeper's files are not looked at.
pub fn has_own_state(data_dir: &Path, log_dir: &Path) -> std::io::Result<bool> {
    let names = |dir: &Path| -> std::io::Result<Vec<String>> {
        match fs::read_dir(dir) {
            Ok(entries) => Ok(entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
                .collect()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    };
    Ok(names(data_dir)?
        .iter()
        .any(|name| parse_snapshot_name(name).is_some())
        || names(log_dir)?
            .iter()
            .any(|name| parse_segment_name(name).is_some()))
}

/// ZooKeeper's files of `prefix` in `dir`, by zxid ascending.
fn list_zk_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot list {}: {error}", dir.display())),
    };
    let mut files: Vec<(i64, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            parse_zxid_name(&name, prefix).map(|zxid| (zxid, entry.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Whether ZooKeeper's directories hold anything to import.
pub fn has_zookeeper_files(data_dir: &Path, log_dir: &Path) -> Result<bool, String> {
    Ok(
        !list_zk_files(&data_dir.join(ZOOKEEPER_SUBDIR), "snapshot")?.is_empty()
            || !list_zk_files(&log_dir.join(ZOOKEEPER_SUBDIR), "log")?.is_empty(),
    )
}

fn read_epoch(dir: &Path, name: &str) -> Result<Option<i64>, String> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{} does not hold a number", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Loads ZooKeeper's state from `data_dir/version-2` (snapshots, epochs) and
/// `log_dir/version-2` (logs), as FileTxnSnapLog.restore would.
pub fn load_zookeeper(data_dir: &Path, log_dir: &Path) -> Result<ZooKeeperState, String> {
    let snap_dir = data_dir.join(ZOOKEEPER_SUBDIR);
    let zk_log_dir = log_dir.join(ZOOKEEPER_SUBDIR);
    let mut notes = Vec::new();
    let mut loaded = None;
    for (zxid, path) in list_zk_files(&snap_dir, "snapshot")?
        .into_iter()
        .rev()
        .take(SNAPSHOTS_TRIED_MAX)
    {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("")
            .to_owned();
        let parsed = fs::read(&path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| decompress(&name, &bytes).map_err(|error| error.to_string()))
            .and_then(|bytes| read_snapshot(&bytes).map_err(|error| error.to_string()));
        match parsed {
            Ok(snapshot) => {
                loaded = Some((path, zxid, snapshot));
                break;
            }
            Err(error) => {
                let note = format!(
                    "ZooKeeper snapshot {} is not usable: {error}",
                    path.display()
                );
                warn!("{note}");
                notes.push(note);
            }
        }
    }
    let (mut tree, snapshot, snapshot_digest) = match loaded {
        Some((path, zxid, snapshot)) => {
            let mut tree = snapshot.tree;
            tree.last_zxid = zxid;
            // DataTree.deserializeZxidDigest: an empty digest (zxid 0) or one older than the
            // snapshot's zxid is not compared.
            let digest = snapshot
                .digest
                .filter(|digest| digest.zxid > 0 && digest.zxid >= zxid);
            (tree, Some((path, zxid)), digest)
        }
        None => {
            notes.push(
                "no usable ZooKeeper snapshot: the log is replayed onto an empty tree".into(),
            );
            (ZkTree::initial(), None, None)
        }
    };
    let snapshot_zxid = snapshot.as_ref().map_or(0, |(_, zxid)| *zxid);
    let mut digests = DigestCheck::new(snapshot.is_some(), snapshot_digest);
    digests.after(snapshot_zxid, tree.digest(), None, &mut notes)?;
    // FileTxnLog.getLogFiles: from the newest log starting at or before the first zxid
    // wanted, every later one.
    let wanted = snapshot_zxid + 1;
    let logs = list_zk_files(&zk_log_dir, "log")?;
    let first = logs
        .iter()
        .rposition(|(zxid, _)| *zxid <= wanted)
        .unwrap_or(0);
    let mut logs_read = Vec::new();
    let mut txns_replayed = 0;
    let mut highest = snapshot_zxid;
    let mut going_back = false;
    for (_, path) in logs.into_iter().skip(first) {
        let bytes =
            fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let file = read_log(&bytes)
            .map_err(|error| format!("ZooKeeper log {} is damaged: {error}", path.display()))?;
        if let Some(tail) = &file.partial_tail {
            let note = format!(
                "ZooKeeper log {} ends with {tail} (ignored, as ZooKeeper does)",
                path.display()
            );
            warn!("{note}");
            notes.push(note);
        }
        for entry in file.entries {
            if entry.header.zxid < wanted {
                continue;
            }
            // A log can repeat a range of txns (a ZooKeeper 3.8 learner logs again what a
            // DIFF sync had it log already). FileTxnSnapLog.fastForwardFromEdits reports the
            // step back and applies every txn as logged; so does this. A repeated txn's digest
            // describes the tree of the first pass, so digests are compared again only once
            // the log passes the highest zxid before the step back.
            let again = highest != 0 && entry.header.zxid <= highest;
            if again && !going_back {
                let note = format!(
                    "ZooKeeper log {} goes back from zxid {highest:#x} to {:#x}: its txns are applied again as ZooKeeper does, their digests compared once the log passes {highest:#x}",
                    path.display(),
                    entry.header.zxid
                );
                warn!("{note}");
                notes.push(note);
            }
            going_back = again;
            if !again {
                highest = entry.header.zxid;
            }
            tree.process(&entry.header, &entry.txn);
            txns_replayed += 1;
            let logged = if again { None } else { entry.digest };
            digests.after(entry.header.zxid, tree.digest(), logged, &mut notes)?;
        }
        logs_read.push(path);
    }
    let digests_checked = digests.finish(&mut notes);
    Ok(ZooKeeperState {
        tree,
        snapshot,
        logs_read,
        txns_replayed,
        digests_checked,
        notes,
        current_epoch: read_epoch(&snap_dir, "currentEpoch")?,
        accepted_epoch: read_epoch(&snap_dir, "acceptedEpoch")?,
    })
}

/// The tree-digest checks of a replay. ZooKeeper compares its snapshot's ZxidDigest once replay
/// reaches that zxid, and each txn's TxnDigest from then on (DataTree.compareSnapshotDigests,
/// compareDigest), but only logs a mismatch; an import refuses a tree that differs, so the
/// checks allow exactly what ZooKeeper's own writing of a fuzzy snapshot can produce:
///
/// - Txns up to the snapshot digest's zxid are not compared: the nodes of a fuzzy snapshot
///   are serialized while txns apply, and the tree only settles once replay reaches the zxid
///   whose digest the snapshot ends with.
/// - That digest can lag the nodes by one txn: DataTree.processTxn changes the nodes before it
///   records the digest of the txn (logZxidDigest), and the snapshot thread reads the recorded
///   digest when its walk ends, which can fall in between (the newest node is the last one
///   the walk writes). So a mismatch there is not a refusal yet: the next txn's digest, which
///   the tree must match since txns apply one at a time, decides.
/// - After that, every txn digest must match.
/// - A snapshot without a usable digest (ZooKeeper writes an empty one when it has recorded
///   none, e.g. while its own replay never settled) says nothing of where its fuzzy range
///   ends: txn digests are compared, a mismatch is allowed until the first match, and every
///   one after must match.
#[derive(Debug)]
struct DigestCheck {
    /// The snapshot's digest, until replay reaches its zxid.
    pending: Option<ZxidDigest>,
    /// The snapshot's digest did not match at its zxid: (zxid, the tree's, the snapshot's).
    lagging: Option<(i64, i64, i64)>,
    /// Whether a mismatch refuses the import (false while a snapshot's fuzzy range may last).
    strict: bool,
    /// Txn digests that did not match before the tree settled (no snapshot digest).
    unsettled_mismatches: usize,
    checked: usize,
}

impl DigestCheck {
    /// `from_snapshot`: whether replay starts on a (fuzzy) snapshot rather than the empty tree.
    fn new(from_snapshot: bool, snapshot_digest: Option<ZxidDigest>) -> DigestCheck {
        let pending = snapshot_digest.filter(|digest| digest.version == DIGEST_VERSION);
        DigestCheck {
            strict: !from_snapshot || pending.is_some(),
            pending,
            lagging: None,
            unsettled_mismatches: 0,
            checked: 0,
        }
    }

    /// After the snapshot is loaded (`zxid` is its zxid, no txn digest) and after each txn.
    fn after(
        &mut self,
        zxid: i64,
        tree_digest: i64,
        txn_digest: Option<TxnDigest>,
        notes: &mut Vec<String>,
    ) -> Result<(), String> {
        let txn_digest = txn_digest.filter(|digest| digest.version == DIGEST_VERSION);
        if let Some((lagging_zxid, ours, theirs)) = self.lagging.take() {
            match txn_digest {
                Some(digest) if digest.tree_digest == tree_digest => {
                    self.checked += 1;
                    let note = format!(
                        "ZooKeeper's snapshot digest at zxid {lagging_zxid:#x} ({theirs:#x}) lags its nodes ({ours:#x}) by one txn, as a snapshot written while that txn applied does; the log's digest at zxid {zxid:#x} matches"
                    );
                    info!("{note}");
                    notes.push(note);
                }
                Some(digest) => {
                    return Err(format!(
                        "the tree digest at zxid {lagging_zxid:#x} is {ours:#x}, the snapshot says {theirs:#x}, and after zxid {zxid:#x} it is {tree_digest:#x}, ZooKeeper's log says {:#x}: refusing to import a tree that differs from ZooKeeper's",
                        digest.tree_digest
                    ));
                }
                None => {
                    let note = format!(
                        "the tree digest at zxid {lagging_zxid:#x} is {ours:#x}, the snapshot says {theirs:#x}, and the txn after it ({zxid:#x}) has no digest to settle it: not checked"
                    );
                    warn!("{note}");
                    notes.push(note);
                }
            }
            return Ok(());
        }
        if let Some(pending) = self.pending {
            if zxid < pending.zxid {
                return Ok(());
            }
            self.pending = None;
            if zxid == pending.zxid {
                if tree_digest == pending.digest {
                    self.checked += 1;
                } else {
                    self.lagging = Some((zxid, tree_digest, pending.digest));
                    return Ok(());
                }
            } else {
                let note = format!(
                    "the log has no txn of the snapshot digest's zxid {:#x}: compared from zxid {zxid:#x} on",
                    pending.zxid
                );
                warn!("{note}");
                notes.push(note);
            }
        }
        if let Some(digest) = txn_digest {
            if digest.tree_digest == tree_digest {
                self.checked += 1;
                self.strict = true;
            } else if self.strict {
                return Err(format!(
                    "the tree digest after zxid {zxid:#x} is {tree_digest:#x}, ZooKeeper's log says {:#x}: refusing to import a tree that differs from ZooKeeper's",
                    digest.tree_digest
                ));
            } else {
                self.unsettled_mismatches += 1;
            }
        }
        Ok(())
    }

    /// The number of digests compared (all equal); what could not be checked goes to `notes`.
    fn finish(self, notes: &mut Vec<String>) -> usize {
        let mut note = |text: String| {
            warn!("{text}");
            notes.push(text);
        };
        if let Some(digest) = self.pending {
            note(format!(
                "the log does not reach the snapshot digest's zxid {:#x}: digest not compared",
                digest.zxid
            ));
        }
        if let Some((zxid, ours, theirs)) = self.lagging {
            note(format!(
                "the tree digest at zxid {zxid:#x} is {ours:#x}, the snapshot says {theirs:#x}, and the log ends there: a snapshot written while the next txn applied, whose record this log lacks; not checked"
            ));
        }
        if self.unsettled_mismatches > 0 {
            if self.strict {
                note(format!(
                    "{} txn digests in the snapshot's fuzzy range did not match before the tree settled (the snapshot has no digest of its own)",
                    self.unsettled_mismatches
                ));
            } else {
                note(format!(
                    "none of the {} txn digests after the snapshot matched, and the snapshot has no digest of its own: the tree is not checked against ZooKeeper's digests",
                    self.unsettled_mismatches
                ));
            }
        }
        self.checked
    }
}

/// ringkeeper's tree and sessions of ZooKeeper's state.
pub fn to_ringkeeper(tree: ZkTree) -> (TreeVersion, Vec<SessionRecord>) {
    let zxid = tree.last_zxid;
    let sessions: Vec<(i64, i32)> = tree
        .sessions
        .iter()
        .map(|(id, timeout)| (*id, *timeout))
        .collect();
    // Most nodes share an ACL: one Arc per distinct ACL (keyed by its jute encoding), as
    // ReferenceCountedACLCache does.
    let mut acls: HashMap<Vec<u8>, Arc<Vec<Acl>>> = HashMap::new();
    let nodes: Vec<(String, Node)> = tree
        .into_nodes()
        .into_iter()
        .map(|(path, node)| {
            let mut key = Writer::new();
            key.write_vec(&node.acl, |writer, entry| entry.encode(writer));
            let acl = acls
                .entry(key.into_bytes())
                .or_insert_with(|| Arc::new(node.acl))
                .clone();
            let converted = Node {
                data: node.data.map(|data| Arc::from(data.into_boxed_slice())),
                acl,
                stat: node.stat,
                child_count: node.children.len(),
                digest_cached: None,
            };
            (path, converted)
        })
        .collect();
    (
        TreeVersion::from_nodes(zxid, nodes),
        SessionRecord::from_pairs(&sessions),
    )
}

/// What [`import_at_startup`] did, for the caller (it also logs it).
#[derive(Debug)]
pub struct ImportOutcome {
    pub zxid: i64,
    pub node_count: usize,
    pub session_count: usize,
    pub current_epoch: Option<i64>,
    pub accepted_epoch: Option<i64>,
}

fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}

/// The startup decision: imports ZooKeeper's state when ringkeeper has none of its own and
/// ZooKeeper's directories hold some. Returns None when there was nothing to import.
pub fn import_at_startup(data_dir: &Path, log_dir: &Path) -> Result<Option<ImportOutcome>, String> {
    if has_own_state(data_dir, log_dir).map_err(|error| error.to_string())? {
        if has_zookeeper_files(data_dir, log_dir)? {
            info!(
                "ZooKeeper's files in {}/{ZOOKEEPER_SUBDIR} are not read: ringkeeper has state of its own",
                data_dir.display()
            );
        }
        return Ok(None);
    }
    if !has_zookeeper_files(data_dir, log_dir)? {
        return Ok(None);
    }
    let started = Instant::now();
    warn!(
        "no ringkeeper state, but Apache ZooKeeper's files in {}/{ZOOKEEPER_SUBDIR} and {}/{ZOOKEEPER_SUBDIR}: importing them (they are only read)",
        data_dir.display(),
        log_dir.display()
    );
    let state = load_zookeeper(data_dir, log_dir)
        .map_err(|error| format!("importing Apache ZooKeeper's data: {error}"))?;
    let zxid = state.tree.last_zxid;
    let node_count = state.tree.len();
    let session_count = state.tree.sessions.len();
    let snapshot_text = match &state.snapshot {
        Some((path, zxid)) => format!("{} (zxid {zxid:#x})", path.display()),
        None => "none".into(),
    };
    let logs_text: Vec<String> = state
        .logs_read
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let mut marker = format!(
        "# ringkeeper imported Apache ZooKeeper's state; while this file exists ZooKeeper's session passwords are accepted\nsnapshot={snapshot_text}\nlogs={}\ntxnsReplayed={}\nzxid={zxid:#x}\nnodes={node_count}\nsessions={session_count}\ndigestsChecked={}\ncurrentEpoch={}\nacceptedEpoch={}\n",
        logs_text.join(","),
        state.txns_replayed,
        state.digests_checked,
        state.current_epoch.map_or("none".into(), |epoch| epoch.to_string()),
        state.accepted_epoch.map_or("none".into(), |epoch| epoch.to_string()),
    );
    for note in &state.notes {
        marker.push_str(&format!("note={note}\n"));
    }
    fs::create_dir_all(data_dir).map_err(|error| error.to_string())?;
    write_durably(data_dir, MARKER_FILE, marker.as_bytes())
        .map_err(|error| format!("writing {}: {error}", data_dir.join(MARKER_FILE).display()))?;
    let current_epoch = state.current_epoch;
    let accepted_epoch = state.accepted_epoch;
    let txns = state.txns_replayed;
    let digests = state.digests_checked;
    let (tree, sessions) = to_ringkeeper(state.tree);
    let path = crate::snapshot::write_snapshot(data_dir, &tree, &sessions)
        .map_err(|error| format!("writing ringkeeper's snapshot of the imported state: {error}"))?;
    warn!(
        "imported Apache ZooKeeper's state: snapshot {snapshot_text}, {txns} txns replayed from {} log files, zxid {zxid:#x}, {node_count} znodes, {session_count} sessions, {digests} digests checked; wrote {} in {} ms",
        logs_text.len(),
        path.display(),
        started.elapsed().as_millis()
    );
    Ok(Some(ImportOutcome {
        zxid,
        node_count,
        session_count,
        current_epoch,
        accepted_epoch,
    }))
}

/// Whether this dataDir's state came from ZooKeeper (its sessions' passwords are ZooKeeper's).
pub fn was_imported(data_dir: &Path) -> bool {
    data_dir.join(MARKER_FILE).exists()
}

/// The log files of a ZooKeeper log directory (for the inspection tools).
pub fn is_log_name(name: &str) -> bool {
    parse_log_name(name).is_some()
}

/// A quorum member's epochs after an import: ZooKeeper's `acceptedEpoch` / `currentEpoch`
/// (QuorumPeer), or the epoch of the last zxid where a file is missing, unless ringkeeper's
/// own epochs file already exists.
pub fn write_quorum_epochs(
    storage: &dyn crate::storage::Storage,
    data_dir: &Path,
    imported: &ImportOutcome,
) -> Result<(), String> {
    if data_dir.join(crate::quorum::epochs::EPOCHS_FILE).exists() {
        return Ok(());
    }
    let zxid_epoch = imported.zxid >> 32;
    let to_epoch = |value: i64| -> Result<u32, String> {
        u32::try_from(value).map_err(|_| format!("ZooKeeper epoch {value} is out of range"))
    };
    let current = to_epoch(imported.current_epoch.unwrap_or(zxid_epoch).max(zxid_epoch))?;
    let accepted = to_epoch(
        imported
            .accepted_epoch
            .unwrap_or(i64::from(current))
            .max(i64::from(current)),
    )?;
    let epochs = crate::zab::Epochs {
        accepted_epoch: accepted,
        accepted_leader: None,
        current_epoch: current,
    };
    crate::quorum::epochs::save(storage, data_dir, &epochs).map_err(|error| error.to_string())?;
    warn!("ensemble epochs from ZooKeeper: acceptedEpoch {accepted}, currentEpoch {current}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_digest(zxid: i64, digest: i64) -> Option<ZxidDigest> {
        Some(ZxidDigest {
            zxid,
            version: DIGEST_VERSION,
            digest,
        })
    }

    fn logged(tree_digest: i64) -> Option<TxnDigest> {
        Some(TxnDigest {
            version: DIGEST_VERSION,
            tree_digest,
        })
    }

    #[test]
    fn a_snapshot_digest_one_txn_behind_its_nodes_is_settled_by_the_next_txn() {
        // The snapshot is at zxid 10 with the digest of zxid 10, but its nodes already hold
        // txn 11 (the tree's digest is txn 11's).
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(true, snapshot_digest(10, 100));
        check.after(10, 111, None, &mut notes).unwrap();
        check.after(11, 111, logged(111), &mut notes).unwrap();
        check.after(12, 112, logged(112), &mut notes).unwrap();
        assert_eq!(check.finish(&mut notes), 2);
        assert!(notes[0].contains("lags its nodes"), "{notes:?}");
    }

    #[test]
    fn a_snapshot_digest_mismatch_the_next_txn_does_not_settle_refuses() {
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(true, snapshot_digest(10, 100));
        check.after(10, 111, None, &mut notes).unwrap();
        let error = check.after(11, 111, logged(222), &mut notes).unwrap_err();
        assert!(error.contains("refusing"), "{error}");
    }

    #[test]
    fn txns_before_the_snapshot_digest_are_not_compared_and_every_one_after_is() {
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(true, snapshot_digest(12, 120));
        check.after(10, 1, None, &mut notes).unwrap();
        check.after(11, 2, logged(3), &mut notes).unwrap(); // fuzzy range
        check.after(12, 120, logged(120), &mut notes).unwrap();
        check.after(13, 130, logged(130), &mut notes).unwrap();
        let error = check.after(14, 140, logged(141), &mut notes).unwrap_err();
        assert!(error.contains("after zxid 0xe"), "{error}");
    }

    #[test]
    fn without_a_snapshot_digest_mismatches_are_allowed_until_the_first_match() {
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(true, None);
        check.after(10, 1, None, &mut notes).unwrap();
        check.after(11, 2, logged(3), &mut notes).unwrap();
        check.after(12, 4, logged(4), &mut notes).unwrap();
        assert!(check.after(13, 5, logged(6), &mut notes).is_err());
        let mut never = DigestCheck::new(true, None);
        never.after(11, 2, logged(3), &mut notes).unwrap();
        assert_eq!(never.finish(&mut notes), 0);
        assert!(notes.last().unwrap().contains("not checked"), "{notes:?}");
    }

    #[test]
    fn a_log_replayed_onto_the_empty_tree_is_compared_from_its_first_txn() {
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(false, None);
        check.after(0, 1, None, &mut notes).unwrap();
        assert!(check.after(1, 2, logged(3), &mut notes).is_err());
    }

    #[test]
    fn a_log_that_ends_at_a_lagging_snapshot_digest_is_noted_not_refused() {
        let mut notes = Vec::new();
        let mut check = DigestCheck::new(true, snapshot_digest(10, 100));
        check.after(10, 111, None, &mut notes).unwrap();
        assert_eq!(check.finish(&mut notes), 0);
        assert!(notes[0].contains("log ends there"), "{notes:?}");
    }
}
