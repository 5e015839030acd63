//! After a background snapshot the pipeline rebases its live tree on it: the new snapshot,
//! mapped, becomes the base and only what changed since stays in the heap. The test writes
//! through the pipeline with a small snapCount and checks that the published versions end up
//! based on a recent snapshot with a small delta, and that every znode is still there with
//! its data and version, including those written while the snapshot was being taken.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use ringkeeper::config::Config;
use ringkeeper::jute::records::{ConnectRequest, SetDataRequest};
use ringkeeper::jute::request::{Create, Request};
use ringkeeper::jute::OpCode;
use ringkeeper::metrics::ServerStats;
use ringkeeper::pipeline::driver::{Pipeline, PipelineStart, Snapshots};
use ringkeeper::pipeline::{CoreBatch, CoreReply, PipelineInput};
use ringkeeper::session::ConnRef;
use ringkeeper::tree::{acl, TreeVersion};

const CONN: ConnRef = ConnRef {
    core: 0,
    conn_id: 1,
};
const WAIT: Duration = Duration::from_secs(20);

fn next_batch(core: &async_channel::Receiver<CoreBatch>) -> CoreBatch {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(batch) = core.try_recv() {
            return batch;
        }
        assert!(Instant::now() < deadline, "no batch reached the core");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A standalone pipeline (no log writer) with one core, on its own thread: its input, the
/// core's batches, and the thread (which ends when the input is dropped).
fn spawn_pipeline(
    tree: TreeVersion,
    snapshots: Snapshots,
) -> (
    crossbeam_channel::Sender<PipelineInput>,
    async_channel::Receiver<CoreBatch>,
    thread::JoinHandle<()>,
) {
    let (core_sender, core) = async_channel::unbounded();
    let pipeline = Pipeline::new(
        Arc::new(Config::default()),
        Arc::new(ServerStats::default()),
        PipelineStart {
            tree,
            sessions: Vec::new(),
            secret: ringkeeper::session::SessionSecrets::only([3; 16]),
            server_id: 0,
        },
        vec![core_sender],
        None,
        Some(snapshots),
    );
    let (input, input_receiver) = unbounded();
    let handle = thread::spawn(move || pipeline.run(input_receiver));
    (input, core, handle)
}

#[test]
fn the_live_tree_is_rebased_on_each_new_snapshot() {
    let dir = std::env::temp_dir().join(format!("ringkeeper-rebase-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tree = TreeVersion::new();
    let snapshots = Snapshots::new(
        dir.clone(),
        dir.clone(),
        40,
        None,
        Arc::new(tree.clone()),
        BTreeMap::new(),
    );
    let (input, core, handle) = spawn_pipeline(tree, snapshots);

    input
        .send(PipelineInput::Connect {
            conn: CONN,
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: false,
            },
            read_only_flag: true,
        })
        .unwrap();
    let session_id = loop {
        let batch = next_batch(&core);
        if let Some((_, CoreReply::Connected { session_id, .. })) = batch.replies.first() {
            break *session_id;
        }
    };

    // Creates and sets, one at a time, so that snapshots are taken (and the tree rebased)
    // while writes go on.
    let mut expected: BTreeMap<String, (Vec<u8>, i32)> = BTreeMap::new();
    let mut latest: Option<Arc<TreeVersion>> = None;
    let mut xid = 0;
    for round in 0..6 {
        for i in 0..100 {
            xid += 1;
            let path = format!("/n{i:03}");
            let data = format!("{round}-{i}").into_bytes();
            let request = if round == 0 {
                Request::Create(Create {
                    op: OpCode::Create,
                    path: path.clone(),
                    data: Some(data.clone()),
                    acl: acl::open_acl(),
                    flags: 0,
                    ttl: -1,
                })
            } else {
                Request::SetData(SetDataRequest {
                    path: path.clone(),
                    data: Some(data.clone()),
                    version: -1,
                })
            };
            input
                .send(PipelineInput::Write {
                    conn: CONN,
                    session_id,
                    xid,
                    request,
                    auth: Arc::new(Vec::new()),
                    fenced: false,
                })
                .unwrap();
            expected.insert(path, (data, round));
            // Wait for the reply, keeping the newest version.
            loop {
                let batch = next_batch(&core);
                if let Some(step) = batch.steps.last() {
                    latest = Some(step.version.clone());
                }
                if batch
                    .replies
                    .iter()
                    .any(|(_, reply)| matches!(reply, CoreReply::Frame { .. }))
                {
                    break;
                }
            }
        }
    }
    // Snapshots are written in the background: wait until a published version is based on a
    // snapshot taken after the creates, with a delta smaller than the tree.
    let deadline = Instant::now() + WAIT;
    let rebased = loop {
        while let Ok(batch) = core.try_recv() {
            if let Some(step) = batch.steps.last() {
                latest = Some(step.version.clone());
            }
        }
        let version = latest.clone().expect("a version");
        let base_zxid = version.base().map_or(0, |base| base.zxid());
        if base_zxid > 101 && version.delta_len() < 100 {
            break version;
        }
        // A write nudges the pipeline to publish the rebased version.
        xid += 1;
        input
            .send(PipelineInput::Write {
                conn: CONN,
                session_id,
                xid,
                request: Request::SetData(SetDataRequest {
                    path: "/n000".into(),
                    data: Some(b"nudge".to_vec()),
                    version: -1,
                }),
                auth: Arc::new(Vec::new()),
                fenced: false,
            })
            .unwrap();
        expected.insert("/n000".into(), (b"nudge".to_vec(), -1));
        assert!(
            Instant::now() < deadline,
            "the tree was never rebased: base zxid {base_zxid:#x}, delta {}",
            version.delta_len()
        );
        thread::sleep(Duration::from_millis(20));
    };
    for (path, (data, round)) in &expected {
        let node = rebased
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        if *round >= 0 {
            assert_eq!(node.data.as_deref(), Some(&data[..]), "{path}");
            assert_eq!(node.stat.version, *round, "{path}");
        }
    }
    assert_eq!(
        rebased.node_count(),
        TreeVersion::new().node_count() + 100,
        "the 100 znodes and the initial ones"
    );
    drop(input);
    handle.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// autopurge.purgeInterval: the pipeline purges on its clock, with no snapshot being written,
/// and not before the interval has passed. Keeps the newest `snapRetainCount` snapshots and
/// removes the log segments no retained snapshot needs.
#[test]
fn autopurge_runs_on_its_clock() {
    let dir = std::env::temp_dir().join(format!("ringkeeper-purge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Retention works on names: the files need not be valid to be kept or removed.
    for name in [
        "snapshot.0000000000000005",
        "snapshot.0000000000000020",
        "snapshot.0000000000000035",
        "snapshot.0000000000000040",
        "log.0000000000000001",
        "log.0000000000000010",
        "log.0000000000000030",
    ] {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    let tree = TreeVersion::new();
    let mut snapshots = Snapshots::new(
        dir.clone(),
        dir.clone(),
        1_000_000,
        Some(3),
        Arc::new(tree.clone()),
        BTreeMap::new(),
    );
    let every = Duration::from_millis(300);
    snapshots.purge_every = Some(every);
    let started = Instant::now();
    let (input, _core, handle) = spawn_pipeline(tree, snapshots);
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let deadline = Instant::now() + WAIT;
    // Removing the snapshot comes before removing the segment: wait for both.
    while names().len() > 5 {
        assert!(
            Instant::now() < deadline,
            "no purge happened: {:?}",
            names()
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        started.elapsed() >= every,
        "purged after {:?}, before the interval",
        started.elapsed()
    );
    assert_eq!(
        names(),
        vec![
            "log.0000000000000010",
            "log.0000000000000030",
            "snapshot.0000000000000020",
            "snapshot.0000000000000035",
            "snapshot.0000000000000040",
        ]
    );
    drop(input);
    handle.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
