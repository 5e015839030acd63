//! ZAB's TRUNC and SNAP on the transaction log, over the simulated disk: truncation to a zxid
//! inside a batch, at a batch boundary, in an earlier segment and at the snapshot; a reset;
//! then records of a later epoch appended, recovered and compared with a model of the tree.
//! A crash at every step of a truncation or reset (the disk keeps only what was synced)
//! recovers a valid prefix of the log that holds every durable record at or below the
//! truncation point, and repeating the operation then succeeds (ZooKeeper's learner simply
//! syncs with the leader again after a restart).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ringkeeper::snapshot::{encode_snapshot, install_snapshot, write_snapshot};
use ringkeeper::storage::sim::SimDisk;
use ringkeeper::storage::Storage;
use ringkeeper::tree::{acl, TreeVersion, Txn};
use ringkeeper::txnlog::format::{parse_segment_name, LogRecord};
use ringkeeper::txnlog::load::{load_state, LoadedState};
use ringkeeper::txnlog::recovery::recover;
use ringkeeper::txnlog::writer::{LogTail, LogWriter, WriterInput, WriterSettings};

const LOG: &str = "/log";
const SEGMENT_BYTES: u64 = 32 * 1024;

fn settings() -> WriterSettings {
    WriterSettings {
        dir: PathBuf::from(LOG),
        segment_bytes: SEGMENT_BYTES,
        batch_bytes_max: 1 << 20,
        batch_records_max: 1000,
        force_sync: true,
        fsync_warning: Duration::from_secs(10),
        prepare_spare_segments: false,
    }
}

fn zxid(epoch: i64, counter: i64) -> i64 {
    epoch << 32 | counter
}

/// A seeded stream of transactions that apply to the model: creates, sets, deletes of
/// children of the root, chosen from what the model holds.
struct Workload {
    rng: u64,
    model: TreeVersion,
}

impl Workload {
    fn new(seed: u64, model: TreeVersion) -> Workload {
        Workload {
            rng: seed | 1,
            model,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn record(&mut self, zxid: i64) -> LogRecord {
        // The workload's own nodes (not /zookeeper).
        let live: Vec<String> = self
            .model
            .children("/")
            .unwrap_or_default()
            .into_iter()
            .filter(|name| name.starts_with('n'))
            .collect();
        let choice = self.random() % 10;
        let txn = if live.is_empty() || choice < 5 {
            let cversion = self.model.get("/").map_or(0, |root| root.stat.cversion) + 1;
            Txn::Create {
                path: format!("/n{zxid:x}"),
                data: Some(vec![(zxid % 251) as u8; (zxid % 300) as usize]),
                acl: acl::open_acl(),
                ephemeral_owner: 0,
                parent_cversion: cversion,
            }
        } else {
            let path = format!("/{}", live[(self.random() as usize) % live.len()]);
            if choice < 8 {
                let version = self.model.get(&path).map_or(0, |node| node.stat.version) + 1;
                Txn::SetData {
                    path,
                    data: Some(zxid.to_be_bytes().to_vec()),
                    version,
                }
            } else {
                Txn::Delete { path }
            }
        };
        let record = LogRecord {
            zxid,
            time_ms: 1_000 + (zxid & 0xffff),
            txn,
        };
        let applied = self
            .model
            .apply(record.zxid, record.time_ms, &record.txn, &mut Vec::new());
        assert!(applied.is_ok(), "the workload made an invalid txn");
        record
    }
}

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

fn replayed(base: TreeVersion, records: &[LogRecord]) -> TreeVersion {
    let mut tree = base;
    for record in records {
        let applied = tree.apply(record.zxid, record.time_ms, &record.txn, &mut Vec::new());
        assert!(applied.is_ok(), "model replay");
    }
    tree
}

fn writer(disk: &SimDisk, tail: LogTail) -> LogWriter {
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    LogWriter::new(storage, settings(), tail).unwrap_or_else(|error| panic!("writer: {error}"))
}

fn load(disk: &SimDisk, data_dir: &Path, upto: Option<i64>) -> Result<LoadedState, String> {
    load_state(disk, data_dir, Path::new(LOG), 1 << 20, upto)
}

fn segment_firsts(disk: &SimDisk) -> Vec<i64> {
    let mut firsts: Vec<i64> = disk
        .list(Path::new(LOG))
        .unwrap_or_default()
        .iter()
        .filter_map(|name| parse_segment_name(name))
        .collect();
    firsts.sort();
    firsts
}

/// Epoch 1: `batches` batches of varied size, durable. Returns every record and the zxid
/// ending each batch.
fn epoch_one(disk: &SimDisk, seed: u64, batches: usize) -> (Vec<LogRecord>, Vec<i64>) {
    let mut log = writer(
        disk,
        LogTail {
            segment: None,
            next_batch: 1,
        },
    );
    let mut workload = Workload::new(seed, TreeVersion::new());
    let mut records = Vec::new();
    let mut batch_ends = Vec::new();
    let mut counter = 0;
    for batch in 0..batches {
        let size = 1 + (batch * 7 + seed as usize) % 13;
        let batch_records: Vec<LogRecord> = (0..size)
            .map(|_| {
                counter += 1;
                workload.record(zxid(1, counter))
            })
            .collect();
        assert!(log.write_batch(&batch_records).is_ok());
        records.extend(batch_records);
        batch_ends.push(zxid(1, counter));
    }
    (records, batch_ends)
}

/// The truncation points the tests use: (name, zxid).
fn truncation_points(disk: &SimDisk, batch_ends: &[i64]) -> Vec<(&'static str, i64)> {
    let firsts = segment_firsts(disk);
    assert!(firsts.len() >= 3, "several segments: {firsts:?}");
    let middle = batch_ends.len() / 2;
    let mut inside = batch_ends[middle] - 1;
    let mut index = middle;
    while inside <= batch_ends[index - 1] {
        // A batch of one record has no inside: take a later batch.
        index += 1;
        inside = batch_ends[index] - 1;
    }
    vec![
        ("inside a batch", inside),
        ("at a batch boundary", batch_ends[middle]),
        ("in an earlier segment", firsts[1] + 2),
        ("at a segment's first record", firsts[2]),
        ("the last record", *batch_ends.last().unwrap_or(&0)),
        ("before every record", 0),
    ]
}

/// After truncation to `z`: append epoch-2 records, crash, recover and compare with the
/// model (records ≤ z, then the new ones).
fn continue_and_check(
    disk: &SimDisk,
    data_dir: &Path,
    base: TreeVersion,
    kept: &[LogRecord],
    z: i64,
    label: &str,
) {
    // The truncated log loads up to z, and its tail is where the next epoch continues.
    let loaded = load(disk, data_dir, Some(z)).unwrap_or_else(|error| panic!("{label}: {error}"));
    assert_eq!(loaded.records, kept, "{label}: the truncated log");
    let model = replayed(base.clone(), kept);
    assert_eq!(observe(&loaded.tree), observe(&model), "{label}");
    let mut log = writer(disk, loaded.tail);
    let mut workload = Workload::new(99, model);
    let mut expected = kept.to_vec();
    let mut counter = 0;
    for batch in 0..12 {
        let records: Vec<LogRecord> = (0..1 + batch % 5)
            .map(|_| {
                counter += 1;
                workload.record(zxid(2, counter))
            })
            .collect();
        assert!(log.write_batch(&records).is_ok(), "{label}");
        expected.extend(records);
    }
    drop(log);
    disk.crash();
    let loaded = load(disk, data_dir, None).unwrap_or_else(|error| panic!("{label}: {error}"));
    assert_eq!(
        loaded.records, expected,
        "{label}: recovered after new epoch"
    );
    assert_eq!(loaded.tree.zxid, workload.model.zxid, "{label}");
    assert_eq!(observe(&loaded.tree), observe(&workload.model), "{label}");
}

#[test]
fn truncation_keeps_exactly_the_records_at_or_below_the_zxid() {
    let data_dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let probe = SimDisk::new(1);
    let (_, batch_ends) = epoch_one(&probe, 1, 60);
    for (label, z) in truncation_points(&probe, &batch_ends) {
        let disk = SimDisk::new(1);
        let (records, _) = epoch_one(&disk, 1, 60);
        let kept: Vec<LogRecord> = records.iter().filter(|r| r.zxid <= z).cloned().collect();
        let loaded = load(&disk, data_dir.path(), None).unwrap_or_else(|error| panic!("{error}"));
        if kept.len() < records.len() {
            assert!(
                load(&disk, data_dir.path(), Some(z)).is_err(),
                "{label}: loading up to z before truncating is refused"
            );
        }
        let mut log = writer(&disk, loaded.tail);
        assert!(log.truncate(z).is_ok(), "{label}");
        drop(log);
        disk.crash();
        continue_and_check(&disk, data_dir.path(), TreeVersion::new(), &kept, z, label);
    }
}

#[test]
fn truncation_to_the_snapshot_drops_every_later_record() {
    let disk = SimDisk::new(2);
    let (records, _) = epoch_one(&disk, 2, 60);
    let data_dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let snapshot_zxid = records[records.len() / 2].zxid;
    let (covered, after): (Vec<LogRecord>, Vec<LogRecord>) = records
        .iter()
        .cloned()
        .partition(|record| record.zxid <= snapshot_zxid);
    let at_snapshot = replayed(TreeVersion::new(), &covered);
    assert!(write_snapshot(data_dir.path(), &at_snapshot, &[]).is_ok());
    let loaded = load(&disk, data_dir.path(), None).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(loaded.snapshot_zxid, snapshot_zxid);
    assert_eq!(loaded.records, after);
    let mut log = writer(&disk, loaded.tail);
    assert!(log.truncate(snapshot_zxid).is_ok());
    drop(log);
    disk.crash();
    let based = load(&disk, data_dir.path(), Some(snapshot_zxid))
        .unwrap_or_else(|error| panic!("{error}"))
        .tree;
    continue_and_check(
        &disk,
        data_dir.path(),
        based,
        &[],
        snapshot_zxid,
        "at the snapshot",
    );
}

/// The same operation through the writer thread: appends queued before the Truncate are
/// written first; appends after it continue the truncated log (with a spare segment being
/// prepared in the background).
#[test]
fn truncate_through_the_writer_thread_is_ordered_with_appends() {
    let disk = SimDisk::new(3);
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let mut config = settings();
    config.prepare_spare_segments = true;
    let (input, receiver) = crossbeam_channel::unbounded();
    let (events_sender, events) = crossbeam_channel::unbounded();
    // A writer's files belong to the thread that opens them (StorageFile is not Send).
    let thread = std::thread::spawn(move || {
        let tail = LogTail {
            segment: None,
            next_batch: 1,
        };
        let log = LogWriter::new(storage, config, tail).unwrap_or_else(|error| panic!("{error}"));
        log.run(receiver, events_sender)
    });
    let mut workload = Workload::new(3, TreeVersion::new());
    let records: Vec<LogRecord> = (1..=200).map(|n| workload.record(zxid(1, n))).collect();
    for chunk in records.chunks(7) {
        assert!(input.send(WriterInput::Append(chunk.to_vec())).is_ok());
    }
    let z = zxid(1, 150);
    let (done, answer) = crossbeam_channel::bounded(1);
    assert!(input.send(WriterInput::Truncate { zxid: z, done }).is_ok());
    assert_eq!(answer.recv_timeout(Duration::from_secs(30)), Ok(Ok(())));
    let kept: Vec<LogRecord> = records[..150].to_vec();
    let mut model = Workload::new(4, replayed(TreeVersion::new(), &kept));
    let new: Vec<LogRecord> = (1..=30).map(|n| model.record(zxid(2, n))).collect();
    assert!(input.send(WriterInput::Append(new.clone())).is_ok());
    assert!(input.send(WriterInput::Shutdown).is_ok());
    assert!(thread.join().is_ok());
    let durable: Vec<i64> = events
        .try_iter()
        .map(|event| match event {
            ringkeeper::txnlog::writer::WriterEvent::Durable { zxid, .. } => zxid,
            ringkeeper::txnlog::writer::WriterEvent::Failed { reason } => panic!("{reason}"),
        })
        .collect();
    assert_eq!(durable.last(), Some(&zxid(2, 30)));
    assert!(durable.contains(&zxid(1, 200)), "queued appends came first");
    disk.crash();
    let data_dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let loaded = load(&disk, data_dir.path(), None).unwrap_or_else(|error| panic!("{error}"));
    let mut expected = kept;
    expected.extend(new);
    assert_eq!(loaded.records, expected);
    assert_eq!(observe(&loaded.tree), observe(&model.model));
}

/// A truncation that fails (here: the disk stops mid-way) reports Err on `done` and
/// poisons the writer, as a failed sync does.
#[test]
fn failed_truncation_poisons_the_writer() {
    let disk = SimDisk::new(5);
    let (records, _) = epoch_one(&disk, 5, 30);
    let tail = recover(&disk, Path::new(LOG), 0, 1 << 20)
        .map(|recovered| recovered.tail)
        .unwrap_or_else(|error| panic!("{error}"));
    let (input, receiver) = crossbeam_channel::unbounded();
    let (events_sender, events) = crossbeam_channel::unbounded();
    let thread_disk = disk.clone();
    let thread =
        std::thread::spawn(move || writer(&thread_disk, tail).run(receiver, events_sender));
    disk.fail_after_operations(Some(1));
    let (done, answer) = crossbeam_channel::bounded(1);
    let z = records[5].zxid;
    assert!(input.send(WriterInput::Truncate { zxid: z, done }).is_ok());
    assert!(matches!(
        answer.recv_timeout(Duration::from_secs(30)),
        Ok(Err(_))
    ));
    assert!(thread.join().is_ok(), "the writer stopped");
    assert!(events.try_iter().any(|event| matches!(
        event,
        ringkeeper::txnlog::writer::WriterEvent::Failed { .. }
    )));
}

/// Checks that `recovered` is a prefix of `history` holding every record at or below `z`.
fn assert_valid_prefix(recovered: &[LogRecord], history: &[LogRecord], z: i64, label: &str) {
    assert!(
        recovered.len() <= history.len() && recovered == &history[..recovered.len()],
        "{label}: recovered a log that is not a prefix of the old one"
    );
    let at_or_below = history.iter().filter(|record| record.zxid <= z).count();
    assert!(
        recovered.len() >= at_or_below,
        "{label}: lost records at or below the truncation point"
    );
}

#[test]
fn crash_at_every_step_of_a_truncation_recovers_a_valid_prefix() {
    let data_dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let probe = SimDisk::new(7);
    let (_, batch_ends) = epoch_one(&probe, 7, 60);
    for torn in [false, true] {
        for (label, z) in truncation_points(&probe, &batch_ends) {
            let mut operations = 0;
            loop {
                let label = format!("{label}, torn {torn}, {operations} operations");
                let disk = SimDisk::new(7 + operations);
                let (records, _) = epoch_one(&disk, 7, 60);
                disk.set_torn_writes(torn);
                let tail = recover(&disk, Path::new(LOG), 0, 1 << 20)
                    .map(|recovered| recovered.tail)
                    .unwrap_or_else(|error| panic!("{error}"));
                let mut log = writer(&disk, tail);
                disk.fail_after_operations(Some(operations));
                let finished = log.truncate(z).is_ok();
                drop(log);
                disk.fail_after_operations(None);
                disk.crash();
                let kept: Vec<LogRecord> =
                    records.iter().filter(|r| r.zxid <= z).cloned().collect();
                let loaded = load(&disk, data_dir.path(), None)
                    .unwrap_or_else(|error| panic!("{label}: recovery refused: {error}"));
                assert_valid_prefix(&loaded.records, &records, z, &label);
                assert_eq!(
                    observe(&loaded.tree),
                    observe(&replayed(TreeVersion::new(), &loaded.records)),
                    "{label}"
                );
                if finished {
                    assert_eq!(loaded.records, kept, "{label}: a finished truncation");
                    // Every truncation that changes the log has several durable steps, and
                    // each was interrupted once above.
                    assert!(
                        kept.len() == records.len() || operations >= 2,
                        "{label}: too few steps were crashed"
                    );
                    break;
                }
                // ZAB truncates again after the restart; that must succeed and continue.
                let mut log = writer(&disk, loaded.tail);
                assert!(log.truncate(z).is_ok(), "{label}: the repeated truncation");
                drop(log);
                disk.crash();
                continue_and_check(&disk, data_dir.path(), TreeVersion::new(), &kept, z, &label);
                operations += 1;
                assert!(operations < 200, "{label}: the truncation never finishes");
            }
        }
    }
}

/// SNAP: the log is reset, the leader's snapshot installed, the leader's later records
/// appended; recovery gives the leader's tree. A crash at every step of the reset leaves a
/// prefix of the old log, which recovery accepts.
#[test]
fn reset_then_snapshot_then_append_recovers_the_leaders_state() {
    let mut operations = 0;
    loop {
        let disk = SimDisk::new(11 + operations);
        let (records, _) = epoch_one(&disk, 11, 60);
        let data_dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let tail = recover(&disk, Path::new(LOG), 0, 1 << 20)
            .map(|recovered| recovered.tail)
            .unwrap_or_else(|error| panic!("{error}"));
        let mut log = writer(&disk, tail);
        // Let the writer prepare nothing in the background, but leave a spare as a server
        // would have one.
        let storage: &dyn Storage = &disk;
        let spare = Path::new(LOG).join(ringkeeper::txnlog::writer::SPARE_SEGMENT);
        assert!(storage.create(&spare, SEGMENT_BYTES).is_ok());
        assert!(storage.sync_dir(Path::new(LOG)).is_ok());
        disk.fail_after_operations(Some(operations));
        let finished = log.reset().is_ok();
        disk.fail_after_operations(None);
        if !finished {
            drop(log);
            disk.crash();
            let loaded = load(&disk, data_dir.path(), None)
                .unwrap_or_else(|error| panic!("{operations}: recovery refused: {error}"));
            assert_valid_prefix(&loaded.records, &records, 0, &format!("{operations}"));
            operations += 1;
            assert!(operations < 200);
            continue;
        }
        assert!(
            storage.list(Path::new(LOG)).unwrap_or_default().is_empty(),
            "every segment and the spare are gone"
        );
        // The leader's history: another workload; its snapshot at zxid (1, 40).
        let mut leader = Workload::new(12, TreeVersion::new());
        for counter in 1..=40 {
            leader.record(zxid(1, counter));
        }
        let bytes = encode_snapshot(&leader.model, &[]).unwrap_or_else(|error| panic!("{error}"));
        assert!(install_snapshot(data_dir.path(), &bytes).is_ok());
        let mut counter = 40;
        let mut after = Vec::new();
        for batch in 0..20 {
            let records: Vec<LogRecord> = (0..1 + batch % 6)
                .map(|_| {
                    counter += 1;
                    leader.record(zxid(1, counter))
                })
                .collect();
            assert!(log.write_batch(&records).is_ok());
            after.extend(records);
        }
        drop(log);
        disk.crash();
        let loaded = load(&disk, data_dir.path(), None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(loaded.snapshot_zxid, zxid(1, 40));
        assert_eq!(loaded.records, after);
        assert_eq!(observe(&loaded.tree), observe(&leader.model));
        assert!(operations >= 3, "the reset has several steps");
        break;
    }
}

/// A storage that counts the bytes read through it, and remembers the files created, over
/// the simulated disk.
struct CountingReads {
    disk: SimDisk,
    read_bytes: std::sync::atomic::AtomicU64,
    created: std::sync::Mutex<Vec<PathBuf>>,
}

impl CountingReads {
    fn count(&self, bytes: &[u8]) {
        self.read_bytes
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Storage for CountingReads {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.disk.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.disk.list(dir)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = self.disk.read(path)?;
        self.count(&bytes);
        Ok(bytes)
    }
    fn read_at(&self, path: &Path, offset: u64, length: usize) -> std::io::Result<Vec<u8>> {
        let bytes = self.disk.read_at(path, offset, length)?;
        self.count(&bytes);
        Ok(bytes)
    }
    fn create(
        &self,
        path: &Path,
        preallocate_bytes: u64,
    ) -> std::io::Result<Box<dyn ringkeeper::storage::StorageFile>> {
        if let Ok(mut created) = self.created.lock() {
            created.push(path.to_path_buf());
        }
        self.disk.create(path, preallocate_bytes)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn ringkeeper::storage::StorageFile>> {
        self.disk.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.disk.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.disk.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.disk.sync_dir(dir)
    }
}

/// A learner's TRUNC reads only the used part of a preallocated segment, as recovery does: the
/// log is written with O_DIRECT, so the rest (zeros, 64 MiB by default) is a cold read of
/// hundreds of milliseconds before the learner can follow its new leader (issue 16). The
/// truncated segment keeps its preallocated size, so later appends allocate nothing.
#[test]
fn truncation_reads_only_the_used_prefix_of_a_preallocated_segment() {
    // Four times recovery's first read (4 MiB), which is all that needs reading here.
    const BIG_SEGMENT_BYTES: u64 = 16 << 20;
    let counting = Arc::new(CountingReads {
        disk: SimDisk::new(7),
        read_bytes: std::sync::atomic::AtomicU64::new(0),
        created: std::sync::Mutex::new(Vec::new()),
    });
    let storage: Arc<dyn Storage> = counting.clone();
    let big = WriterSettings {
        segment_bytes: BIG_SEGMENT_BYTES,
        ..settings()
    };
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let mut log =
        LogWriter::new(storage.clone(), big, tail).unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(7, TreeVersion::new());
    for batch in 0..10 {
        let records: Vec<LogRecord> = (1..=5)
            .map(|i| workload.record(zxid(1, batch * 5 + i)))
            .collect();
        log.write_batch(&records)
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let segment = Path::new(LOG).join(ringkeeper::txnlog::format::segment_name(zxid(1, 1)));
    counting
        .read_bytes
        .store(0, std::sync::atomic::Ordering::SeqCst);
    assert!(log.truncate(zxid(1, 23)).is_ok());
    let read = counting
        .read_bytes
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        read < BIG_SEGMENT_BYTES / 2,
        "the truncation read {read} bytes of a {BIG_SEGMENT_BYTES}-byte segment"
    );
    let length = counting
        .disk
        .open(&segment)
        .and_then(|file| file.len())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(length, BIG_SEGMENT_BYTES, "the preallocation is kept");
    drop(log);
    let recovered = recover(&counting.disk, Path::new(LOG), 0, 1 << 20)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(recovered.last_zxid, zxid(1, 23));
}

/// A TRUNC takes the prepared spare segment for the rewritten one rather than creating (on a
/// real disk: zero-filling and syncing) a whole segment while the learner waits (issue 16),
/// and a new spare is prepared after it.
#[test]
fn truncation_uses_the_prepared_spare_segment() {
    let counting = Arc::new(CountingReads {
        disk: SimDisk::new(8),
        read_bytes: std::sync::atomic::AtomicU64::new(0),
        created: std::sync::Mutex::new(Vec::new()),
    });
    let storage: Arc<dyn Storage> = counting.clone();
    let spares = WriterSettings {
        prepare_spare_segments: true,
        ..settings()
    };
    let tail = LogTail {
        segment: None,
        next_batch: 1,
    };
    let mut log =
        LogWriter::new(storage.clone(), spares, tail).unwrap_or_else(|error| panic!("{error}"));
    let mut workload = Workload::new(8, TreeVersion::new());
    for batch in 0..4 {
        let records: Vec<LogRecord> = (1..=5)
            .map(|i| workload.record(zxid(1, batch * 5 + i)))
            .collect();
        log.write_batch(&records)
            .unwrap_or_else(|error| panic!("{error}"));
    }
    // The first roll-over started preparing a spare on a thread of its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !log.spare_ready() {
        assert!(std::time::Instant::now() < deadline, "no spare within 10 s");
        std::thread::yield_now();
    }
    assert!(log.truncate(zxid(1, 12)).is_ok());
    let created = counting
        .created
        .lock()
        .map(|created| created.clone())
        .unwrap_or_default();
    assert!(
        !created
            .iter()
            .any(|path| path.to_string_lossy().ends_with(".truncate")),
        "the truncation created a segment: {created:?}"
    );
    drop(log);
    let recovered = recover(&counting.disk, Path::new(LOG), 0, 1 << 20)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(recovered.last_zxid, zxid(1, 12));
    assert_eq!(recovered.records.len(), 12);
}
