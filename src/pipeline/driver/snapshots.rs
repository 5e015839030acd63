//! [io] The pipeline's snapshot policy: background snapshots of the newest durable version,
//! the rebase of the live tree on a snapshot once it is written, autopurge, and giving the
//! memory a rebase freed back to the OS.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tracing::{info, warn};

use crate::tree::TreeVersion;

use super::Pipeline;

/// How long after a rebase the pipeline returns the freed memory to the OS: time for the cores
/// to move to the rebased version and drop the old ones.
const MEMORY_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// A background snapshot's zxid and file (None when writing it failed).
type SnapshotWritten = (i64, Option<std::path::PathBuf>);

/// Snapshot policy and the durable state a snapshot is taken from.
pub struct Snapshots {
    /// Where snapshots go (dataDir) and where the log lives (dataLogDir), for purging.
    pub data_dir: std::path::PathBuf,
    pub log_dir: std::path::PathBuf,
    /// Transactions between snapshots: snapCount/2 plus a random part of snapCount/2.
    pub threshold: u64,
    /// Purge old snapshots and log segments after each snapshot, keeping this many
    /// snapshots (None: never purge).
    pub retain: Option<usize>,
    /// autopurge.purgeInterval: also purge on this clock, as ZooKeeper does (None: only
    /// after snapshots, when `retain` is set).
    pub purge_every: Option<Duration>,
    next_purge: Option<Instant>,
    /// When to hand the memory a rebase freed back to the OS: a moment after the rebase, once
    /// the cores have moved off the old versions and dropped them.
    release_memory_at: Option<Instant>,
    since_last: u64,
    running: Arc<std::sync::atomic::AtomicBool>,
    /// Each snapshot written in the background reports its zxid and file here, so the live
    /// tree can be rebased on it.
    /// (A failed snapshot reports None.)
    written: (Sender<SnapshotWritten>, Receiver<SnapshotWritten>),
    /// The newest durable version and the sessions open at its zxid.
    durable_version: Arc<TreeVersion>,
    durable_sessions: std::collections::BTreeMap<i64, i32>,
}

impl Snapshots {
    /// The state the next snapshot would be taken from.
    pub(super) fn durable_state(&self) -> crate::pipeline::DurableState {
        crate::pipeline::DurableState {
            version: self.durable_version.clone(),
            sessions: self.durable_sessions.clone(),
        }
    }

    pub fn new(
        data_dir: std::path::PathBuf,
        log_dir: std::path::PathBuf,
        snap_count: u64,
        retain: Option<usize>,
        version: Arc<TreeVersion>,
        sessions: std::collections::BTreeMap<i64, i32>,
    ) -> Snapshots {
        let half = (snap_count / 2).max(1);
        Snapshots {
            data_dir,
            log_dir,
            threshold: half + rand::random::<u64>() % half,
            retain,
            purge_every: None,
            next_purge: None,
            release_memory_at: None,
            since_last: 0,
            running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            written: crossbeam_channel::unbounded(),
            durable_version: version,
            durable_sessions: sessions,
        }
    }

    /// A batch was published: its sessions changes and its newest version (if it cut one)
    /// are the durable state the next snapshot is taken from, and its transactions count
    /// towards it.
    pub(super) fn published(
        &mut self,
        session_changes: &[(i64, Option<i32>)],
        newest: Option<&Arc<TreeVersion>>,
        txns: u64,
    ) {
        for (session_id, change) in session_changes {
            match change {
                Some(timeout_ms) => {
                    self.durable_sessions.insert(*session_id, *timeout_ms);
                }
                None => {
                    self.durable_sessions.remove(session_id);
                }
            }
        }
        if let Some(version) = newest {
            self.durable_version = version.clone();
            self.since_last += txns;
        }
    }
}

impl Snapshots {
    /// The state was replaced (`restore`): it is what the next snapshot holds.
    pub(super) fn restored(
        &mut self,
        version: Arc<TreeVersion>,
        sessions: std::collections::BTreeMap<i64, i32>,
    ) {
        self.durable_version = version;
        self.durable_sessions = sessions;
        self.since_last = 0;
    }
}

impl Pipeline {
    /// autopurge.purgeInterval: purges on its clock, on a background thread.
    pub(super) fn purge_on_clock(&mut self) {
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        let (Some(every), Some(keep)) = (snapshots.purge_every, snapshots.retain) else {
            return;
        };
        let now = Instant::now();
        let due = *snapshots.next_purge.get_or_insert(now + every);
        // Not while a snapshot (which purges when it ends) is being written.
        if now < due || snapshots.running.load(Ordering::SeqCst) {
            return;
        }
        snapshots.next_purge = Some(now + every);
        let data_dir = snapshots.data_dir.clone();
        let log_dir = snapshots.log_dir.clone();
        let spawned = std::thread::Builder::new()
            .name("purge".into())
            .spawn(move || purge(&data_dir, &log_dir, keep));
        if let Err(error) = spawned {
            warn!("could not start the purge thread: {error}");
        }
    }

    /// Rebases the live tree on a snapshot the background thread finished: the new snapshot,
    /// mapped, becomes the base, and the transactions applied since its zxid are replayed on
    /// it. The heap then holds only what changed since the snapshot; the old versions go once
    /// the cores move to the next one (a step with the rebased version is published for that).
    pub(super) fn rebase_on_written_snapshot(&mut self) {
        let Some(snapshots) = self.snapshots.as_ref() else {
            return;
        };
        let Ok((zxid, path)) = snapshots.written.1.try_recv() else {
            return;
        };
        if self.rebase_from != Some(zxid) {
            return;
        }
        self.rebase_from = None;
        let Some(path) = path else {
            return;
        };
        let started = Instant::now();
        let mapped = match crate::snapshot::MappedSnapshot::open(&path) {
            Ok(mapped) => mapped,
            Err(error) => {
                warn!("not rebasing on {}: {error}", path.display());
                return;
            }
        };
        let live = self.batch.tree();
        let mut tree = TreeVersion::from_snapshot(Arc::new(mapped));
        let mut triggers = Vec::new();
        let mut replayed = 0usize;
        for record in &self.recent_records {
            if record.zxid <= zxid || record.zxid > live.zxid {
                continue;
            }
            if let Err(broken) = tree.apply(record.zxid, record.time_ms, &record.txn, &mut triggers)
            {
                warn!(
                    "not rebasing on {}: replay failed: {broken}",
                    path.display()
                );
                return;
            }
            triggers.clear();
            replayed += 1;
        }
        if tree.zxid != live.zxid
            || tree.node_count() != live.node_count()
            || tree.digest() != live.digest()
        {
            warn!(
                "not rebasing on {}: the replayed tree (zxid {:#x}, {} znodes, digest {:#x}) differs from the live one (zxid {:#x}, {} znodes, digest {:#x})",
                path.display(),
                tree.zxid,
                tree.node_count(),
                tree.digest(),
                live.zxid,
                live.node_count(),
                live.digest()
            );
            return;
        }
        // The `hash` history is the live tree's: the replay above logged only its tail.
        tree.take_digest_log_of(live);
        info!(
            "live tree rebased on {} ({replayed} transactions replayed, {} ms)",
            path.display(),
            started.elapsed().as_millis()
        );
        // The rebased tree holds the same transactions: the next step is cut from it.
        self.batch.replace_tree(tree);
        if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots.release_memory_at = Some(Instant::now() + MEMORY_RELEASE_DELAY);
        }
    }

    /// Returns what the last rebase freed to the OS, once its delay passed.
    pub(super) fn release_memory_after_rebase(&mut self) {
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        if snapshots
            .release_memory_at
            .is_some_and(|due| Instant::now() >= due)
        {
            snapshots.release_memory_at = None;
            crate::memory::release_memory();
        }
    }

    /// Forgets a rebase in flight (the tree was replaced by other means).
    pub(super) fn cancel_rebase(&mut self) {
        self.rebase_from = None;
        self.recent_records.clear();
    }

    /// Starts a background snapshot of the newest durable version when enough transactions
    /// have been made durable since the last one, or when asked. The version is immutable,
    /// so writes go on while it is written; the snapshot is never fuzzy.
    pub(super) fn maybe_snapshot(&mut self) {
        // A requested snapshot waits until what it must cover is durable here (standalone:
        // reported by the log writer; in an ensemble it is taken of the newest committed
        // version, as before).
        let requested = self
            .snapshot_requested
            .is_some_and(|covering| self.ensemble.is_some() || self.durable_zxid >= covering);
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        if !(requested || snapshots.since_last >= snapshots.threshold) {
            return;
        }
        // A request made while a snapshot is being written stays pending: that snapshot may
        // be of a version older than the request.
        if snapshots.running.swap(true, Ordering::SeqCst) {
            return;
        }
        if requested {
            self.snapshot_requested = None;
        }
        snapshots.since_last = 0;
        let version = snapshots.durable_version.clone();
        let written = snapshots.written.0.clone();
        self.rebase_from = Some(version.zxid);
        let sessions: Vec<crate::snapshot::SessionRecord> = snapshots
            .durable_sessions
            .iter()
            .map(|(session_id, timeout_ms)| crate::snapshot::SessionRecord {
                session_id: *session_id,
                timeout_ms: *timeout_ms,
            })
            .collect();
        let data_dir = snapshots.data_dir.clone();
        let log_dir = snapshots.log_dir.clone();
        let retain = snapshots.retain;
        let running = snapshots.running.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                // The snapshot is background work: let the serving threads win the CPU.
                let tid = rustix::thread::gettid();
                if let Err(error) = rustix::process::setpriority_process(Some(tid), 10) {
                    warn!("could not lower the snapshot thread's priority: {error}");
                }
                let started = Instant::now();
                match crate::snapshot::write_snapshot(&data_dir, &version, &sessions) {
                    Ok(path) => {
                        info!(
                            "snapshot {} of {} znodes written in {} ms",
                            path.display(),
                            version.node_count(),
                            started.elapsed().as_millis()
                        );
                        let _ = written.send((version.zxid, Some(path)));
                    }
                    Err(error) => {
                        warn!("snapshot at zxid {:#x} failed: {error}", version.zxid);
                        let _ = written.send((version.zxid, None));
                    }
                }
                if let Some(keep) = retain {
                    purge(&data_dir, &log_dir, keep);
                }
                drop(version);
                crate::memory::release_memory();
                running.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.rebase_from = None;
            warn!("could not start the snapshot thread");
            if let Some(snapshots) = self.snapshots.as_ref() {
                snapshots.running.store(false, Ordering::SeqCst);
            }
        }
    }
}

/// autopurge: keeps the newest `keep` snapshots and removes the log segments no retained
/// snapshot needs (ZooKeeper's PurgeTxnLog).
fn purge(data_dir: &std::path::Path, log_dir: &std::path::Path, keep: usize) {
    match crate::snapshot::retain(data_dir, keep) {
        Ok(Some(oldest)) => {
            let storage = crate::storage::DiskStorage;
            match crate::txnlog::recovery::purge_segments(&storage, log_dir, oldest) {
                Ok(removed) if removed > 0 => {
                    info!("purged {removed} log segments no retained snapshot needs")
                }
                Ok(_) => {}
                Err(error) => warn!("purging log segments failed: {error}"),
            }
        }
        Ok(None) => {}
        Err(error) => warn!("purging snapshots failed: {error}"),
    }
}
