//! The transaction log over the simulated disk: every fault (crash with and without torn
//! writes, failed fsync, ENOSPC, damage in the middle of synced data), checked against a model
//! of the tree. The rule under test: whatever a sync acknowledged survives recovery, and
//! recovery never invents or half-applies a batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ringkeeper::storage::sim::SimDisk;
use ringkeeper::storage::Storage;
use ringkeeper::tree::{acl, TreeVersion, Txn};
use ringkeeper::txnlog::format::{LogRecord, BLOCK_BYTES};
use ringkeeper::txnlog::recovery::{recover, replay, RecoveryError};
use ringkeeper::txnlog::writer::{LogTail, LogWriter, WriterSettings};

const DIR: &str = "/log";

fn settings(segment_bytes: u64) -> WriterSettings {
    WriterSettings {
        dir: PathBuf::from(DIR),
        segment_bytes,
        batch_bytes_max: 1 << 20,
        batch_records_max: 1000,
        force_sync: true,
        fsync_warning: Duration::from_secs(10),
        prepare_spare_segments: false,
    }
}

/// A seeded stream of transactions that always apply to the model: creates, sets, deletes.
struct Workload {
    rng: u64,
    model: TreeVersion,
    live: Vec<String>,
    next: u64,
}

impl Workload {
    fn new(seed: u64) -> Workload {
        Workload {
            rng: seed | 1,
            model: TreeVersion::new(),
            live: Vec::new(),
            next: 0,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next transaction, applied to the model.
    fn next_record(&mut self) -> LogRecord {
        let zxid = self.model.zxid + 1;
        let choice = self.random() % 10;
        let txn = if self.live.is_empty() || choice < 5 {
            self.next += 1;
            let path = format!("/n{}", self.next);
            self.live.push(path.clone());
            let cversion = self.model.get("/").map_or(0, |root| root.stat.cversion) + 1;
            Txn::Create {
                path,
                data: Some(vec![(self.next % 251) as u8; (self.next % 300) as usize]),
                acl: acl::open_acl(),
                ephemeral_owner: 0,
                parent_cversion: cversion,
            }
        } else if choice < 8 {
            let index = (self.random() as usize) % self.live.len();
            let path = self.live[index].clone();
            let version = self.model.get(&path).map_or(0, |node| node.stat.version) + 1;
            Txn::SetData {
                path,
                data: Some(zxid.to_be_bytes().to_vec()),
                version,
            }
        } else {
            let index = (self.random() as usize) % self.live.len();
            Txn::Delete {
                path: self.live.swap_remove(index),
            }
        };
        let record = LogRecord {
            zxid,
            time_ms: 1_000 + zxid,
            txn,
        };
        let applied = self
            .model
            .apply(record.zxid, record.time_ms, &record.txn, &mut Vec::new());
        assert!(applied.is_ok(), "the workload made an invalid txn");
        record
    }
}

/// Everything a client can observe of a tree, for comparing two trees.
/// Per path: data, version, cversion, mzxid, pzxid.
type Observed = BTreeMap<String, (Option<Vec<u8>>, i32, i32, i64, i64)>;

fn observe(tree: &TreeVersion) -> Observed {
    tree.paths()
        .into_iter()
        .filter_map(|path| {
            let node = tree.get(&path)?;
            let stat = node.to_stat();
            Some((
                path,
                (
                    node.data_vec(),
                    stat.version,
                    stat.cversion,
                    stat.mzxid,
                    stat.pzxid,
                ),
            ))
        })
        .collect()
}

fn recovered_tree(disk: &SimDisk) -> Result<(TreeVersion, LogTail), RecoveryError> {
    let recovered = recover(disk, Path::new(DIR), 0, 1 << 20)?;
    let mut tree = TreeVersion::new();
    let replayed = replay(&mut tree, &recovered.records, BTreeMap::new());
    assert!(replayed.is_ok(), "recovered records must apply");
    Ok((tree, recovered.tail))
}

/// The model tree after exactly `zxid` transactions of the workload with `seed`.
fn model_at(seed: u64, zxid: i64) -> TreeVersion {
    let mut workload = Workload::new(seed);
    while workload.model.zxid < zxid {
        workload.next_record();
    }
    workload.model
}

fn run_batches(disk: &SimDisk, seed: u64, batches: usize, segment_bytes: u64) -> i64 {
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let tail = recover(disk, Path::new(DIR), 0, 1 << 20)
        .map(|recovered| recovered.tail)
        .unwrap_or(LogTail {
            segment: None,
            next_batch: 1,
        });
    let mut writer = match LogWriter::new(storage, settings(segment_bytes), tail) {
        Ok(writer) => writer,
        Err(error) => panic!("writer: {error}"),
    };
    let mut workload = Workload::new(seed);
    let mut durable = 0;
    for batch in 0..batches {
        let size = 1 + (batch * 7 + seed as usize) % 40;
        let records: Vec<LogRecord> = (0..size).map(|_| workload.next_record()).collect();
        if writer.write_batch(&records).is_err() {
            break;
        }
        durable = workload.model.zxid;
    }
    durable
}

#[test]
fn clean_crash_recovers_every_synced_batch() {
    for seed in 1..6 {
        let disk = SimDisk::new(seed);
        let durable = run_batches(&disk, seed, 50, 256 * 1024);
        disk.crash();
        let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tree.zxid, durable, "seed {seed}");
        assert_eq!(
            observe(&tree),
            observe(&model_at(seed, durable)),
            "seed {seed}"
        );
    }
}

#[test]
fn torn_writes_on_crash_lose_only_unsynced_batches() {
    // Writes are synced batch by batch; a torn crash can only damage what follows the last
    // sync. Add an unsynced write at the end to give the crash something to tear.
    for seed in 1..30 {
        let disk = SimDisk::new(seed);
        disk.set_torn_writes(true);
        let durable = run_batches(&disk, seed, 20, 64 * 1024);
        // An unsynced, half-finished batch right at the end of the log.
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        if let Ok(recovered) = recover(&disk, Path::new(DIR), 0, 1 << 20) {
            if let Some((path, offset)) = recovered.tail.segment {
                if let Ok(mut file) = storage.open(&path) {
                    let garbage: Vec<u8> =
                        (0..3 * BLOCK_BYTES).map(|i| (i * 31 + 7) as u8).collect();
                    let _ = file.write_at(offset, &garbage);
                }
            }
        }
        disk.crash();
        match recovered_tree(&disk) {
            Ok((tree, _)) => {
                assert!(tree.zxid >= durable, "seed {seed}: lost synced data");
                assert_eq!(
                    observe(&tree),
                    observe(&model_at(seed, tree.zxid)),
                    "seed {seed}"
                );
            }
            Err(error) => panic!("seed {seed}: recovery refused a torn tail: {error}"),
        }
    }
}

#[test]
fn recovery_then_more_writes_then_recovery() {
    let disk = SimDisk::new(3);
    disk.set_torn_writes(true);
    let first = run_batches(&disk, 3, 10, 64 * 1024);
    disk.crash();
    // The second run continues the same workload from where the log ends.
    let (tree, tail) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, first);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let mut writer = LogWriter::new(storage, settings(64 * 1024), tail)
        .unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(3);
    while workload.model.zxid < first {
        workload.next_record();
    }
    for _ in 0..30 {
        let records: Vec<LogRecord> = (0..5).map(|_| workload.next_record()).collect();
        assert!(writer.write_batch(&records).is_ok());
    }
    disk.crash();
    let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, workload.model.zxid);
    assert_eq!(observe(&tree), observe(&workload.model));
}

#[test]
fn failed_fsync_poisons_and_nothing_after_it_is_durable() {
    let disk = SimDisk::new(5);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let mut writer =
        LogWriter::new(storage, settings(1 << 20), tail).unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(5);
    let first: Vec<LogRecord> = (0..10).map(|_| workload.next_record()).collect();
    assert!(writer.write_batch(&first).is_ok());
    let synced = workload.model.zxid;
    disk.fail_next_sync();
    let second: Vec<LogRecord> = (0..10).map(|_| workload.next_record()).collect();
    assert!(
        writer.write_batch(&second).is_err(),
        "the failed sync is reported"
    );
    disk.crash();
    let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, synced);
}

#[test]
fn enospc_is_reported_not_hidden() {
    let disk = SimDisk::new(9);
    disk.set_space_left(Some(3 * BLOCK_BYTES as u64));
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let mut writer =
        LogWriter::new(storage, settings(1 << 20), tail).unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(9);
    let mut failed = false;
    let mut synced = 0;
    for _ in 0..20 {
        let records: Vec<LogRecord> = (0..20).map(|_| workload.next_record()).collect();
        match writer.write_batch(&records) {
            Ok(_) => synced = workload.model.zxid,
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the disk filled up");
    disk.crash();
    let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, synced);
}

#[test]
fn damage_inside_synced_data_refuses_to_start() {
    let disk = SimDisk::new(11);
    run_batches(&disk, 11, 30, 1 << 20);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let path = Path::new(DIR).join("log.0000000000000001");
    let mut file = storage
        .open(&path)
        .unwrap_or_else(|error| panic!("{error}"));
    // Flip a byte in the second batch (block 2): later batches were synced after it.
    assert!(file.write_at(2 * BLOCK_BYTES as u64 + 40, &[0xa5]).is_ok());
    assert!(file.sync_data().is_ok());
    match recovered_tree(&disk) {
        Err(RecoveryError::Corrupt { .. }) => {}
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|(tree, _)| tree.zxid)
        ),
    }
}

#[test]
fn segments_roll_over_and_recover_in_order() {
    let disk = SimDisk::new(13);
    let durable = run_batches(&disk, 13, 200, 32 * 1024);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let segments = storage.list(Path::new(DIR)).unwrap_or_default();
    assert!(segments.len() > 3, "small segments roll over: {segments:?}");
    disk.crash();
    let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, durable);
    assert_eq!(observe(&tree), observe(&model_at(13, durable)));
}

#[test]
fn prepared_spare_segments_are_used_and_ignored_by_recovery() {
    let disk = SimDisk::new(17);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let mut config = settings(32 * 1024);
    config.prepare_spare_segments = true;
    let mut writer =
        LogWriter::new(storage.clone(), config, tail).unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(17);
    for batch in 0..150 {
        let records: Vec<LogRecord> = (0..1 + batch % 30)
            .map(|_| workload.next_record())
            .collect();
        assert!(writer.write_batch(&records).is_ok());
    }
    drop(writer);
    disk.crash();
    let (tree, _) = recovered_tree(&disk).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tree.zxid, workload.model.zxid);
    assert_eq!(observe(&tree), observe(&workload.model));
}

/// The standalone server publishes a batch from the writer's thread (`AppendThen`): the work
/// runs once its records are synced, before the writer reports them durable, and never after a
/// failed sync, so no reply leaves for a write the log did not keep.
#[test]
fn work_after_an_append_runs_after_its_sync_and_never_after_a_failed_one() {
    use ringkeeper::txnlog::writer::{AfterDurable, WriterEvent, WriterInput};
    const WAIT: Duration = Duration::from_secs(10);
    let disk = SimDisk::new(6);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let (appends, input) = crossbeam_channel::unbounded();
    let (events_sender, events) = crossbeam_channel::unbounded();
    // A writer's files belong to the thread that opens them.
    let thread = std::thread::spawn(move || {
        let writer = LogWriter::new(storage, settings(1 << 20), tail)
            .unwrap_or_else(|error| panic!("{error}"));
        writer.run(input, events_sender)
    });
    let (ran_sender, ran) = crossbeam_channel::unbounded();
    let mut workload = Workload::new(6);
    let work = |label: &'static str| {
        let ran_sender = ran_sender.clone();
        AfterDurable(Box::new(move || {
            let _ = ran_sender.send(label);
        }))
    };

    let first: Vec<LogRecord> = (0..3).map(|_| workload.next_record()).collect();
    let first_zxid = workload.model.zxid;
    assert!(appends
        .send(WriterInput::AppendThen(first, work("first")))
        .is_ok());
    assert_eq!(ran.recv_timeout(WAIT), Ok("first"));
    match events.recv_timeout(WAIT) {
        Ok(WriterEvent::Durable { zxid, .. }) => assert_eq!(zxid, first_zxid),
        other => panic!("expected durable, got {other:?}"),
    }
    // Work with no records of its own runs once what came before is durable.
    assert!(appends
        .send(WriterInput::AppendThen(Vec::new(), work("empty")))
        .is_ok());
    assert_eq!(ran.recv_timeout(WAIT), Ok("empty"));

    disk.fail_next_sync();
    let second: Vec<LogRecord> = (0..3).map(|_| workload.next_record()).collect();
    assert!(appends
        .send(WriterInput::AppendThen(second, work("second")))
        .is_ok());
    match events.recv_timeout(WAIT) {
        Ok(WriterEvent::Failed { .. }) => {}
        other => panic!("expected the failure, got {other:?}"),
    }
    assert!(thread.join().is_ok(), "the writer stops after the failure");
    assert!(
        ran.try_recv().is_err(),
        "work after a failed sync must not run"
    );
}
