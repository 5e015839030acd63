//! The snapshot format, writer and mapped base, and the tree built on a base: a tree that
//! took a snapshot and was reopened from it behaves exactly like one that never did.

use std::sync::Arc;

use proptest::prelude::*;
use rkyv::util::AlignedVec;

use std::collections::HashMap;

use super::format::{
    self, AclRecord, NodeRecord, SessionRecord, SnapshotBody, SnapshotError, SnapshotView,
    FLAG_DATA_NULL, NODE_COUNT_MAX,
};
use super::{newest_valid, retain, write_snapshot, MappedSnapshot};
use crate::jute::protocol::perms;
use crate::jute::records::{Acl, Id};
use crate::tree::{acl, ttl_owner, TreeVersion, Txn, CONTAINER_OWNER};

fn digest_acl(user: &str) -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "digest".into(),
            id: format!("{user}:hash"),
        },
    }]
}

fn create(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, owner: i64, tree: &TreeVersion) -> Txn {
    let parent = crate::tree::path::split_parent(path).map_or("/", |(parent, _)| parent);
    let parent_cversion = tree.get(parent).map_or(0, |node| node.stat.cversion) + 1;
    Txn::Create {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl,
        ephemeral_owner: owner,
        parent_cversion,
    }
}

fn add(tree: &mut TreeVersion, path: &str, data: Option<&[u8]>, acl: Vec<Acl>, owner: i64) {
    let txn = create(path, data, acl, owner, tree);
    apply(tree, &txn);
}

fn apply(tree: &mut TreeVersion, txn: &Txn) {
    let zxid = tree.zxid + 1;
    let result = tree.apply(zxid, 1_000 + zxid, txn, &mut Vec::new());
    assert!(result.is_ok(), "{txn:?}: {result:?}");
}

/// A tree with every node kind: persistent (null, empty and non-empty data), ephemerals of
/// two sessions, a container, a TTL node, shared and distinct ACLs, a deleted node.
fn every_kind_tree() -> TreeVersion {
    let mut tree = TreeVersion::new();
    type Step<'a> = (&'a str, Option<&'a [u8]>, Vec<Acl>, i64);
    let steps: Vec<Step> = vec![
        ("/app", Some(b"config"), acl::open_acl(), 0),
        ("/app/null", None, acl::open_acl(), 0),
        ("/app/empty", Some(b""), acl::open_acl(), 0),
        (
            "/app/locks",
            Some(b"x"),
            digest_acl("alice"),
            CONTAINER_OWNER,
        ),
        (
            "/app/locks/lock-0000000000",
            Some(b"1"),
            acl::open_acl(),
            0x11,
        ),
        (
            "/app/locks/lock-0000000001",
            Some(b"2"),
            acl::open_acl(),
            0x22,
        ),
        (
            "/app/ttl",
            Some(b"t"),
            digest_acl("alice"),
            ttl_owner(5_000),
        ),
        ("/b", Some(b"b"), digest_acl("bob"), 0),
        ("/a", Some(b"a"), acl::read_acl(), 0x11),
        ("/gone", Some(b"g"), acl::open_acl(), 0),
    ];
    for (path, data, acl, owner) in steps {
        let txn = create(path, data, acl, owner, &tree);
        apply(&mut tree, &txn);
    }
    apply(
        &mut tree,
        &Txn::Delete {
            path: "/gone".into(),
        },
    );
    apply(
        &mut tree,
        &Txn::SetData {
            path: "/app".into(),
            data: Some(b"config2".to_vec()),
            version: 1,
        },
    );
    tree
}

fn sessions() -> Vec<SessionRecord> {
    vec![
        SessionRecord {
            session_id: 0x22,
            timeout_ms: 30_000,
        },
        SessionRecord {
            session_id: 0x11,
            timeout_ms: 4_000,
        },
    ]
}

/// The whole file of `tree`'s zxid and digest with `body`, in memory, aligned like a mapping.
fn file_bytes(tree: &TreeVersion, body: &SnapshotBody) -> AlignedVec {
    let digest = Some(tree.digest() as u64);
    let (header, archive) = format::encode(tree.zxid, digest, body).expect("encode");
    let mut file = AlignedVec::with_capacity(header.len() + archive.len());
    file.extend_from_slice(&header);
    file.extend_from_slice(&archive);
    file
}

/// The model of the snapshot body `encode` streams: built in memory the simple way, with a
/// queue of paths (breadth-first, children sorted, ACLs deduplicated). `sessions` are the sessions live at `tree.zxid`.
fn reference_body(
    tree: &crate::tree::TreeVersion,
    sessions: &[SessionRecord],
) -> Result<SnapshotBody, SnapshotError> {
    let mut body = SnapshotBody {
        sessions: sessions.to_vec(),
        data_size: tree.approximate_data_size() as u64,
        ..SnapshotBody::default()
    };
    body.sessions.sort();
    body.nodes.reserve(tree.node_count());
    // ACL lists by identity first (nodes read from one base share their Arc), then by value.
    let mut acl_by_pointer: HashMap<*const Vec<Acl>, u32> = HashMap::new();
    let mut acl_by_value: HashMap<Vec<AclRecord>, u32> = HashMap::new();
    let mut owners: Vec<Arc<Vec<Acl>>> = Vec::new();
    // The nodes numbered but not yet written, in node order: (path, name, parent index).
    let mut pending: std::collections::VecDeque<(String, String, u32)> = Default::default();
    pending.push_back(("/".to_string(), String::new(), 0));
    // Records are appended in breadth-first order: the record popped is node `index`, and its
    // children are numbered after every node already pending.
    while let Some((path, name, parent)) = pending.pop_front() {
        let index = body.nodes.len();
        let node = tree
            .get(&path)
            .ok_or_else(|| SnapshotError::Structure(format!("{path} vanished")))?;
        let acl = match acl_by_pointer.get(&Arc::as_ptr(&node.acl)) {
            Some(acl) => *acl,
            None => {
                let records: Vec<AclRecord> = node.acl.iter().map(AclRecord::from_acl).collect();
                let next = body.acls.len() as u32;
                let acl = *acl_by_value.entry(records.clone()).or_insert(next);
                if acl == next {
                    body.acls.push(records);
                }
                // The pointer is only a cache key: `owners` keeps each Arc alive (so the
                // address is not reused by another list) until the body is built.
                acl_by_pointer.insert(Arc::as_ptr(&node.acl), acl);
                owners.push(node.acl.clone());
                acl
            }
        };
        let mut children = Vec::with_capacity(node.child_count);
        tree.for_each_child(&path, |name| children.push(name.to_string()));
        let first_child = index + 1 + pending.len();
        if first_child + children.len() > NODE_COUNT_MAX {
            return Err(SnapshotError::TooLarge(first_child + children.len()));
        }
        if node.stat.ephemeral_owner != 0 {
            body.special.push(index as u32);
        }
        body.nodes.push(NodeRecord {
            czxid: node.stat.czxid,
            mzxid: node.stat.mzxid,
            pzxid: node.stat.pzxid,
            ctime: node.stat.ctime,
            mtime: node.stat.mtime,
            ephemeral_owner: node.stat.ephemeral_owner,
            version: node.stat.version,
            cversion: node.stat.cversion,
            aversion: node.stat.aversion,
            acl,
            parent,
            first_child: if children.is_empty() {
                0
            } else {
                first_child as u32
            },
            child_count: children.len() as u32,
            flags: if node.data.is_none() {
                FLAG_DATA_NULL
            } else {
                0
            },
            name,
            data: node.data.as_deref().map(<[u8]>::to_vec).unwrap_or_default(),
        });
        for child in children {
            pending.push_back((crate::tree::path::join(&path, &child), child, index as u32));
        }
    }
    Ok(body)
}

/// What the streaming encoder wrote, validated and read back as a `SnapshotBody`.
fn streamed_body(tree: &TreeVersion, sessions: &[SessionRecord]) -> SnapshotBody {
    let bytes = aligned(&super::encode_snapshot(tree, sessions).expect("encode"));
    let (header, archived) = format::validate(&bytes).expect("the streamed snapshot is valid");
    assert_eq!(header.zxid, tree.zxid);
    assert_eq!(header.node_count as usize, tree.node_count());
    rkyv::deserialize::<SnapshotBody, rkyv::rancor::Error>(archived).expect("deserialize")
}

fn aligned(bytes: &[u8]) -> AlignedVec {
    let mut copy = AlignedVec::with_capacity(bytes.len());
    copy.extend_from_slice(bytes);
    copy
}

/// Everything a client or the server can observe of a tree.
fn observe(tree: &TreeVersion) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "zxid {} nodes {}", tree.zxid, tree.node_count());
    let _ = writeln!(out, "size {}", tree.approximate_data_size());
    for path in tree.paths() {
        let node = tree.get(&path).expect("listed path exists");
        let _ = writeln!(
            out,
            "{path} {:?} {:?} {:?} {:?} {:?} {}",
            node.to_stat(),
            node.data,
            node.acl,
            node.kind(),
            tree.children(&path),
            tree.descendant_count(&path),
        );
    }
    let _ = writeln!(out, "owners {:?}", tree.ephemeral_owners());
    let _ = writeln!(out, "ephemerals {}", tree.ephemeral_node_count());
    let _ = writeln!(
        out,
        "containers {:?}",
        tree.containers().collect::<Vec<_>>()
    );
    let _ = writeln!(out, "ttls {:?}", tree.ttl_nodes().collect::<Vec<_>>());
    let _ = writeln!(
        out,
        "root {:?} {:?}",
        tree.get("").map(|n| n.to_stat()),
        tree.children("")
    );
    out
}

fn reopened(tree: &TreeVersion, dir: &std::path::Path) -> TreeVersion {
    let path = write_snapshot(dir, tree, &sessions()).expect("write");
    let snapshot = MappedSnapshot::open(&path).expect("open");
    TreeVersion::from_snapshot(Arc::new(snapshot))
}

#[test]
fn archived_layouts_are_pinned() {
    // The module doc gives these layouts byte for byte; a change here is a format change
    // (format 3: rkyv's 64-bit relative pointers and lengths).
    use std::mem::{align_of, size_of};
    assert_eq!(size_of::<format::ArchivedSnapshotBody>(), 72);
    assert_eq!(size_of::<format::ArchivedNodeRecord>(), 112);
    assert_eq!(align_of::<format::ArchivedNodeRecord>(), 8);
    assert_eq!(size_of::<format::ArchivedAclRecord>(), 40);
    assert_eq!(size_of::<format::ArchivedSessionRecord>(), 16);
    assert_eq!(std::mem::offset_of!(format::ArchivedSnapshotBody, nodes), 0);
    assert_eq!(std::mem::offset_of!(format::ArchivedSnapshotBody, acls), 16);
    assert_eq!(
        std::mem::offset_of!(format::ArchivedSnapshotBody, data_size),
        64
    );
    assert_eq!(std::mem::offset_of!(format::ArchivedNodeRecord, name), 80);
    assert_eq!(std::mem::offset_of!(format::ArchivedNodeRecord, data), 96);
    assert_eq!(std::mem::offset_of!(format::ArchivedAclRecord, scheme), 8);
}

const GOLDEN_2_PATH: &str = "tests/snapshots/format2.0000000000000020";
const GOLDEN_2: &[u8] = include_bytes!("../../tests/snapshots/format2.0000000000000020");
const GOLDEN_2_DUMP: &str = include_str!("../../tests/snapshots/format2.dump.txt");

fn dump_text(path: &std::path::Path) -> String {
    let mut out = Vec::new();
    let progress = crate::cli::inspect::Progress::new(false);
    let dumped = crate::cli::inspect::dump_snapshot(path, true, &mut out, &progress);
    assert!(dumped.is_ok(), "{dumped:?}");
    String::from_utf8(out).unwrap_or_else(|error| panic!("{error}"))
}

/// A snapshot written by the previous release (format 2, 32-bit pointers; made with
/// ringkeeper at commit 281f941 from a few nodes of every kind) is read by the hand-written
/// reader: its `dump-snapshot --data` (every node, Stat, ACL and session) is exactly the one
/// the old build printed, kept beside it. This build still refuses to map it in place.
#[test]
fn format_2_golden_file_decodes_to_its_old_dump() {
    let header_version = u32::from_le_bytes([GOLDEN_2[8], GOLDEN_2[9], GOLDEN_2[10], GOLDEN_2[11]]);
    assert_eq!(header_version, format::FORMAT_VERSION_32_BIT);
    assert!(matches!(
        format::validate(&aligned(GOLDEN_2)),
        Err(SnapshotError::PreviousVersion)
    ));
    let decoded = super::format2::decode(GOLDEN_2);
    let (header, body) = decoded.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(header.zxid, 0x20);
    assert_eq!(body.nodes.len(), 35);
    assert_eq!(
        body.sessions,
        vec![SessionRecord {
            session_id: 0xa2_34b9_44e4_0000,
            timeout_ms: 10_000
        }]
    );
    assert_eq!(
        dump_text(std::path::Path::new(GOLDEN_2_PATH)),
        GOLDEN_2_DUMP
    );
}

/// Every truncation of the golden file, and a few thousand seeded byte flips (with the
/// checksums recomputed, so that the decoder itself meets the damage), give an error or a
/// valid conversion, never a panic.
#[test]
fn damaged_format_2_files_give_errors_never_panics() {
    for length in 0..GOLDEN_2.len() {
        assert!(
            super::format2::convert(&GOLDEN_2[..length]).is_err(),
            "{length}"
        );
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut converted = 0;
    for round in 0..4000 {
        let mut file = GOLDEN_2.to_vec();
        for _ in 0..1 + round % 3 {
            let at = (next() as usize) % file.len();
            file[at] ^= 1 << (next() % 8);
        }
        let resealed = round % 4 != 0;
        if resealed {
            let body_crc = crc32c::crc32c(&file[format::HEADER_BYTES..]);
            file[40..44].copy_from_slice(&body_crc.to_le_bytes());
            let header_crc = crc32c::crc32c(&file[0..60]);
            file[60..64].copy_from_slice(&header_crc.to_le_bytes());
        }
        if let Ok(done) = super::format2::convert(&file) {
            // Unsealed damage is always caught by a checksum.
            assert!(resealed || file == GOLDEN_2, "round {round}");
            assert!(format::validate(&done.file).is_ok());
            converted += 1;
        }
    }
    // Flips in data bytes and stats still decode: the reader is not refusing everything.
    assert!(converted > 0);
}

/// A data directory holding only the format 2 snapshot (its log purged) starts: recovery
/// converts it to a format 3 snapshot of the same zxid, keeps the original aside
/// byte for byte, and serves the same tree and sessions; a second start maps the converted
/// file without converting again.
#[test]
fn a_data_directory_of_only_a_format_2_snapshot_serves_its_tree() {
    let data = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let log = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let path = data.path().join("snapshot.0000000000000020");
    std::fs::write(&path, GOLDEN_2).unwrap_or_else(|error| panic!("{error}"));
    let storage = crate::storage::DiskStorage;
    let load = || {
        crate::txnlog::load::load_state(&storage, data.path(), log.path(), 4 << 20, None)
            .unwrap_or_else(|error| panic!("{error}"))
    };
    let loaded = load();
    assert_eq!(loaded.snapshot_zxid, 0x20);
    assert_eq!(loaded.tree.zxid, 0x20);
    // The log is empty (purged): recovery starts a new segment after the snapshot.
    let conversions = |repairs: &[String]| {
        repairs
            .iter()
            .filter(|repair| repair.contains("from format 2 to format 3"))
            .count()
    };
    assert_eq!(conversions(&loaded.repairs), 1, "{:?}", loaded.repairs);
    assert_eq!(
        loaded.sessions.iter().collect::<Vec<_>>(),
        vec![(&0xa2_34b9_44e4_0000, &10_000)]
    );
    let aside = data.path().join("snapshot.0000000000000020.format2");
    assert_eq!(std::fs::read(&aside).ok().as_deref(), Some(GOLDEN_2));
    let new = std::fs::read(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(new[8..12], format::FORMAT_VERSION.to_le_bytes());
    // The converted file dumps as the old one did, but for its first line (name, size).
    let dumped = dump_text(&path);
    assert_eq!(
        dumped.split_once('\n').map(|(_, rest)| rest),
        GOLDEN_2_DUMP.split_once('\n').map(|(_, rest)| rest)
    );
    // The recovered tree serves every node of the dump with the same Stat.
    let view_file = aligned(&new);
    let (_, body) = format::validate(&view_file).unwrap_or_else(|error| panic!("{error}"));
    let acls = format::decode_acls(body);
    let view = format::SnapshotView { body, acls: &acls };
    let mut served = 0;
    for (node_path, node) in view.iter() {
        let got = loaded.tree.get(&node_path);
        let got = got.unwrap_or_else(|| panic!("{node_path} not served"));
        assert_eq!(got.stat, node.stat, "{node_path}");
        assert_eq!(got.data, node.data, "{node_path}");
        assert_eq!(got.acl, node.acl, "{node_path}");
        assert!(
            GOLDEN_2_DUMP.contains(&format!("\n{node_path}\n")),
            "{node_path}"
        );
        served += 1;
    }
    assert_eq!(served, 35);
    let again = load();
    assert_eq!(conversions(&again.repairs), 0, "{:?}", again.repairs);
    assert_eq!(again.snapshot_zxid, 0x20);
}

/// Writes a snapshot of `megabytes` MiB of data (nodes of 1 MiB, sharing eight buffers so
/// the test holds 8 MiB whatever the size) and reads it back in place: the header, the
/// validation, and the data of nodes on both sides of the 2 GiB (and, when larger, 4 GiB)
/// marks, compared byte for byte.
fn a_snapshot_of_megabytes_is_written_and_read_back(megabytes: usize) {
    const NODE_BYTES: usize = 1 << 20;
    let buffers: Vec<Arc<[u8]>> = (0..8u8)
        .map(|seed| {
            let bytes: Vec<u8> = (0..NODE_BYTES)
                .map(|at| (at as u8).wrapping_mul(31).wrapping_add(seed))
                .collect();
            Arc::from(bytes)
        })
        .collect();
    let mut tree = TreeVersion::new();
    add(&mut tree, "/big", None, acl::open_acl(), 0);
    let path_of = |index: usize| format!("/big/node-{index:06}");
    for index in 0..megabytes {
        add(&mut tree, &path_of(index), Some(b""), acl::open_acl(), 0);
        assert!(tree.share_data_for_test(&path_of(index), buffers[index % 8].clone()));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let path = write_snapshot(dir.path(), &tree, &sessions()).expect("write");
    let written = started.elapsed();
    let file_bytes = std::fs::metadata(&path).expect("stat").len();
    assert!(file_bytes > (megabytes * NODE_BYTES) as u64, "{file_bytes}");
    let started = std::time::Instant::now();
    let snapshot = Arc::new(MappedSnapshot::open(&path).expect("open"));
    let opened = started.elapsed();
    eprintln!("{file_bytes} bytes: written in {written:?}, mapped and validated in {opened:?}");
    assert_eq!(snapshot.node_count(), tree.node_count());
    let reopened = TreeVersion::from_snapshot(snapshot.clone());
    assert_eq!(
        reopened.approximate_data_size(),
        tree.approximate_data_size()
    );
    // The data is written in node order: node i's data starts about i MiB into the body.
    let mut checked = vec![0, 1, megabytes / 2, megabytes - 2, megabytes - 1];
    checked.extend(
        [2048, 2049, 4096, 4097]
            .into_iter()
            .filter(|i| *i < megabytes),
    );
    for index in checked {
        let node = reopened.get(&path_of(index)).expect("node");
        assert!(
            node.data.as_deref() == Some(&buffers[index % 8][..]),
            "data of node {index} differs"
        );
    }
    assert_eq!(
        reopened.children("/big").map(|children| children.len()),
        Some(megabytes)
    );
}

/// Format 2 stopped at 2 GiB (32-bit relative pointers); format 3 goes past it. About 2.3 GB
/// on disk: a few seconds to write and fsync, and 8 MiB of memory.
#[test]
fn a_snapshot_past_2_gib_is_written_and_read_back() {
    a_snapshot_of_megabytes_is_written_and_read_back(2200);
}

/// Past 4 GiB as well (positions and lengths beyond u32): 4.6 GB on disk, so not in the
/// default suite (`cargo test --release --lib snapshot::tests -- --ignored`).
#[test]
#[ignore]
fn a_snapshot_past_4_gib_is_written_and_read_back() {
    a_snapshot_of_megabytes_is_written_and_read_back(4400);
}

#[test]
fn names_carry_the_zxid_in_hex() {
    assert_eq!(
        format::snapshot_name(0x1_0000_002a),
        "snapshot.000000010000002a"
    );
    assert_eq!(
        format::parse_snapshot_name("snapshot.000000010000002a"),
        Some(0x1_0000_002a)
    );
    assert_eq!(
        format::parse_snapshot_name("snapshot.000000010000002a.tmp"),
        None
    );
    assert_eq!(format::parse_snapshot_name("log.000000010000002a"), None);
}

#[test]
fn every_node_kind_round_trips_through_a_snapshot() {
    let tree = every_kind_tree();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = reopened(&tree, dir.path());
    assert_eq!(observe(&base), observe(&tree));
    // Null data stays distinct from empty data (DataNode keeps null).
    assert!(base.get("/app/null").is_some_and(|n| n.data.is_none()));
    assert!(base
        .get("/app/empty")
        .is_some_and(|n| n.data.as_deref() == Some(&b""[..])));
    assert_eq!(
        base.ephemerals_of(0x11),
        vec!["/a", "/app/locks/lock-0000000000"]
    );
    let snapshot = base.base().expect("based on the snapshot");
    assert_eq!(snapshot.zxid(), tree.zxid);
    assert_eq!(snapshot.node_count(), tree.node_count());
    let mut expected = sessions();
    expected.sort();
    assert_eq!(snapshot.sessions(), expected);
    assert_eq!(base.delta_len(), 0, "opening materialises nothing");
}

#[test]
fn the_streamed_archive_holds_the_models_records() {
    let tree = every_kind_tree();
    let expected = reference_body(&tree, &sessions()).expect("model");
    assert_eq!(streamed_body(&tree, &sessions()), expected);
    // Byte for byte what rkyv's derived serializer makes of the model.
    let streamed = super::encode_snapshot(&tree, &sessions()).expect("encode");
    assert_eq!(&streamed[..], &file_bytes(&tree, &expected)[..]);
    // On a base, with a delta that adds, changes and removes nodes.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut based = reopened(&tree, dir.path());
    add(&mut based, "/app/new", Some(b"n"), digest_acl("carol"), 0);
    add(&mut based, "/c", None, acl::open_acl(), 0);
    add(
        &mut based,
        "/app/a-name-longer-than-inline",
        Some(b"o"),
        acl::open_acl(),
        0,
    );
    apply(
        &mut based,
        &Txn::Delete {
            path: "/app/empty".into(),
        },
    );
    let expected = reference_body(&based, &[]).expect("model");
    assert_eq!(streamed_body(&based, &[]), expected);
    assert_eq!(expected.nodes.len(), based.node_count());
    // Names longer than rkyv's 16 inline bytes are out of line: both kinds are present.
    assert!(expected.nodes.iter().any(|node| node.name.len() > 16));
    assert!(expected
        .nodes
        .iter()
        .any(|node| (1..=16).contains(&node.name.len())));
}

#[test]
fn a_failed_write_while_streaming_is_an_io_error() {
    /// Accepts `budget` bytes, then fails.
    struct Failing {
        budget: usize,
    }
    impl std::io::Write for Failing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.budget == 0 {
                return Err(std::io::Error::other("disk full"));
            }
            let taken = bytes.len().min(self.budget);
            self.budget -= taken;
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let tree = every_kind_tree();
    let full = super::encode_snapshot(&tree, &sessions())
        .expect("encode")
        .len();
    for budget in [0, 10, 64, 100, full - 1] {
        let result = super::encode::stream_snapshot(&tree, &sessions(), Failing { budget });
        assert!(
            matches!(result, Err(super::encode::StreamError::Io(ref error)) if error.to_string() == "disk full"),
            "budget {budget}: {result:?}"
        );
    }
    let whole = super::encode::stream_snapshot(&tree, &sessions(), Failing { budget: full });
    assert!(whole.is_ok(), "{whole:?}");
}

#[test]
fn a_body_beyond_the_format_limit_is_refused_before_anything_overflows() {
    let tree = every_kind_tree();
    let full = super::encode_snapshot(&tree, &sessions())
        .expect("encode")
        .len();
    let refused = super::encode::stream_snapshot_within(&tree, &sessions(), Vec::new(), 200);
    assert!(
        matches!(
            refused,
            Err(super::encode::StreamError::Snapshot(
                SnapshotError::BodyTooLarge(_)
            ))
        ),
        "{refused:?}"
    );
    // The estimate is an upper bound: a limit of a few KiB above the real size passes.
    let accepted =
        super::encode::stream_snapshot_within(&tree, &sessions(), Vec::new(), full + 8192);
    assert!(accepted.is_ok(), "{accepted:?}");
}

#[test]
fn acls_are_stored_once_per_distinct_list() {
    let mut tree = every_kind_tree();
    for index in 0..50 {
        let txn = create(
            &format!("/app/n{index}"),
            Some(b"d"),
            digest_acl("alice"),
            0,
            &tree,
        );
        apply(&mut tree, &txn);
    }
    let body = reference_body(&tree, &[]).expect("body");
    // open, read-only (the config node), alice, bob.
    assert_eq!(body.acls.len(), 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = reopened(&tree, dir.path());
    let (first, second) = (base.get("/app/n1"), base.get("/app/n2"));
    assert!(
        first
            .zip(second)
            .is_some_and(|(a, b)| Arc::ptr_eq(&a.acl, &b.acl)),
        "nodes read from the base share one decoded ACL list"
    );
}

#[test]
fn children_are_contiguous_and_sorted_breadth_first() {
    let tree = every_kind_tree();
    let body = reference_body(&tree, &[]).expect("body");
    let file = file_bytes(&tree, &body);
    let (_, archived) = format::validate(&file).expect("valid");
    let acls = format::decode_acls(archived);
    let view = SnapshotView {
        body: archived,
        acls: &acls,
    };
    let app = view.lookup("/app").expect("/app");
    let names: Vec<&str> = view.child_names(app).collect();
    assert_eq!(names, vec!["empty", "locks", "null", "ttl"]);
    let root: Vec<&str> = view.child_names(0).collect();
    assert_eq!(root, vec!["a", "app", "b", "zookeeper"]);
    // Parents come before their children, and each range is one slice of the node array.
    for (index, record) in body.nodes.iter().enumerate().skip(1) {
        assert!((record.parent as usize) < index);
    }
    let paths: Vec<String> = view.iter().map(|(path, _)| path).collect();
    assert_eq!(&paths[..5], &["/", "/a", "/app", "/b", "/zookeeper"]);
    assert_eq!(view.lookup(""), Some(0));
    assert_eq!(view.lookup("/app/missing"), None);
    // Empty components name no node (ZooKeeper answers NoNode for "//" on reads).
    for path in ["//", "/app//locks", "/app/", "app", "//app"] {
        assert_eq!(view.lookup(path), None, "{path:?}");
    }
    assert_eq!(
        view.path_of(view.lookup("/app/locks/lock-0000000001").expect("lock"))
            .as_deref(),
        Some("/app/locks/lock-0000000001")
    );
}

#[test]
fn damaged_header_and_body_are_rejected_without_panic() {
    let tree = every_kind_tree();
    let body = reference_body(&tree, &sessions()).expect("body");
    let file = file_bytes(&tree, &body);
    assert!(format::validate(&file).is_ok());
    // Every single bit flip, anywhere in the file, is caught (the header and body checksums
    // cover every byte).
    for position in 0..file.len() {
        for bit in [0u8, 3, 7] {
            let mut damaged = aligned(&file);
            damaged[position] ^= 1 << bit;
            assert!(
                format::validate(&damaged).is_err(),
                "flip at {position} bit {bit}"
            );
        }
    }
    // Every truncation, and trailing garbage.
    for length in 0..file.len() {
        assert!(
            format::validate(&aligned(&file[..length])).is_err(),
            "cut at {length}"
        );
    }
    let mut extended = aligned(&file);
    extended.extend_from_slice(&[0; 8]);
    assert!(matches!(
        format::validate(&extended),
        Err(SnapshotError::BodyLength { .. })
    ));
    let mut future = aligned(&file);
    future[8] = format::FORMAT_VERSION as u8 + 1;
    // A version bump without a matching header checksum is damage, not a newer format.
    assert!(matches!(
        format::validate(&future),
        Err(SnapshotError::HeaderChecksum)
    ));
}

#[test]
fn a_newer_format_version_is_refused_by_name() {
    let tree = TreeVersion::new();
    let body = reference_body(&tree, &[]).expect("body");
    let mut file = file_bytes(&tree, &body);
    let newer = format::FORMAT_VERSION + 1;
    file[8..12].copy_from_slice(&newer.to_le_bytes());
    let checksum = crc32c::crc32c(&file[0..60]);
    file[60..64].copy_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        format::validate(&file),
        Err(SnapshotError::UnsupportedVersion(version)) if version == newer
    ));
}

#[test]
fn a_well_checksummed_archive_with_a_broken_tree_is_rejected() {
    let tree = every_kind_tree();
    let good = reference_body(&tree, &[]).expect("body");
    type Breakage = fn(&mut SnapshotBody);
    let breakages: Vec<(&str, Breakage)> = vec![
        ("child range past the end", |body| {
            body.nodes[0].child_count = 1_000
        }),
        ("cycle", |body| {
            let last = body.nodes.len() - 1;
            body.nodes[last].first_child = 1;
            body.nodes[last].child_count = 1;
        }),
        ("unsorted children", |body| body.nodes.swap(1, 2)),
        ("acl out of range", |body| body.nodes[3].acl = 99),
        ("no nodes", |body| body.nodes.clear()),
        ("special not special", |body| body.special[0] = 0),
        ("special out of range", |body| body.special[0] = 9_999),
        ("special missing", |body| {
            body.special.pop();
        }),
        ("special out of order", |body| body.special.swap(0, 1)),
        ("slash in a name", |body| body.nodes[1].name = "a/b".into()),
    ];
    for (what, breakage) in breakages {
        let mut body = good.clone();
        breakage(&mut body);
        let file = file_bytes(&tree, &body);
        assert!(
            matches!(format::validate(&file), Err(SnapshotError::Structure(_))),
            "{what}"
        );
    }
}

#[test]
fn newest_valid_falls_back_past_a_damaged_snapshot_and_retain_keeps_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tree = every_kind_tree();
    let older = write_snapshot(dir.path(), &tree, &[]).expect("write");
    add(&mut tree, "/later", Some(b"l"), acl::open_acl(), 0);
    let newer = write_snapshot(dir.path(), &tree, &[]).expect("write");
    // A leftover temporary file is not a snapshot.
    std::fs::write(dir.path().join("snapshot.00000000000000ff.tmp"), b"junk").expect("write");

    let found = newest_valid(dir.path()).expect("scan");
    assert_eq!(found.snapshot.as_ref().map(|s| s.zxid()), Some(tree.zxid));
    assert!(found.rejected.is_empty());

    let mut bytes = std::fs::read(&newer).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    // Written under a new name: a mapped snapshot is never modified in place.
    std::fs::remove_file(&newer).expect("remove");
    std::fs::write(&newer, &bytes).expect("write");
    let found = newest_valid(dir.path()).expect("scan");
    assert_eq!(
        found.snapshot.as_ref().map(|s| s.path()),
        Some(older.as_path())
    );
    assert_eq!(found.rejected.len(), 1);
    assert!(matches!(
        found.rejected[0].error,
        SnapshotError::BodyChecksum
    ));

    assert_eq!(retain(dir.path(), 1).expect("retain"), Some(tree.zxid));
    assert!(!older.exists() && newer.exists());
    assert_eq!(
        retain(dir.path(), 0).expect("retain"),
        Some(tree.zxid),
        "one is always kept"
    );
    let empty = tempfile::tempdir().expect("tempdir");
    assert_eq!(retain(empty.path(), 3).expect("retain"), None);
    assert!(newest_valid(&empty.path().join("missing"))
        .expect("scan")
        .snapshot
        .is_none());
}

#[test]
fn a_snapshot_is_written_from_a_version_while_the_next_ones_are_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tree = every_kind_tree();
    let version = Arc::new(tree.clone());
    let path = std::path::PathBuf::from(dir.path());
    let writer = std::thread::spawn(move || write_snapshot(&path, &version, &[]));
    for index in 0..200 {
        let txn = create(&format!("/w{index}"), Some(b"w"), acl::open_acl(), 0, &tree);
        apply(&mut tree, &txn);
    }
    let written = writer.join().expect("writer thread").expect("write");
    let snapshot = MappedSnapshot::open(&written).expect("open");
    assert_eq!(snapshot.zxid(), every_kind_tree().zxid);
    assert!(
        snapshot.get("/w0").is_none(),
        "the snapshot is the version it was given"
    );
}

#[test]
fn base_nodes_are_copied_on_write_and_hidden_by_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tree = reopened(&every_kind_tree(), dir.path());
    apply(
        &mut tree,
        &Txn::Delete {
            path: "/app/null".into(),
        },
    );
    add(&mut tree, "/app/null", Some(b"back"), acl::open_acl(), 0);
    apply(
        &mut tree,
        &Txn::Delete {
            path: "/app/empty".into(),
        },
    );
    add(&mut tree, "/app/aa", None, acl::open_acl(), 0);
    assert_eq!(
        tree.children("/app"),
        Some(vec![
            "aa".into(),
            "locks".into(),
            "null".into(),
            "ttl".into()
        ])
    );
    assert!(tree.get("/app/empty").is_none());
    assert_eq!(
        tree.get("/app/null").and_then(|n| n.data_vec()),
        Some(b"back".to_vec())
    );
    // The base itself is untouched.
    let base = tree.base().expect("base");
    assert!(base.get("/app/empty").is_some());
    assert_eq!(base.children("/app").map(|c| c.len()), Some(4));
}

/// A path of the property test's universe: up to three levels of names a, b, c.
fn universe() -> Vec<String> {
    let names = ["a", "b", "c"];
    let mut paths = Vec::new();
    for first in names {
        paths.push(format!("/{first}"));
        for second in names {
            paths.push(format!("/{first}/{second}"));
            for third in names {
                paths.push(format!("/{first}/{second}/{third}"));
            }
        }
    }
    paths
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        path: usize,
        kind: u8,
        data: Option<Vec<u8>>,
        acl: u8,
    },
    Delete {
        path: usize,
    },
    SetData {
        path: usize,
        data: Option<Vec<u8>>,
    },
    SetAcl {
        path: usize,
        acl: u8,
    },
    Close {
        session: u8,
    },
    Snapshot,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let path = 0..39usize;
    let data = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6));
    prop_oneof![
        4 => (path.clone(), 0..5u8, data.clone(), 0..3u8)
            .prop_map(|(path, kind, data, acl)| Step::Create { path, kind, data, acl }),
        2 => path.clone().prop_map(|path| Step::Delete { path }),
        2 => (path.clone(), data).prop_map(|(path, data)| Step::SetData { path, data }),
        1 => (path, 0..3u8).prop_map(|(path, acl)| Step::SetAcl { path, acl }),
        1 => (1..3u8).prop_map(|session| Step::Close { session }),
        1 => Just(Step::Snapshot),
    ]
}

fn acl_of(choice: u8) -> Vec<Acl> {
    match choice {
        0 => acl::open_acl(),
        1 => acl::read_acl(),
        _ => digest_acl("carol"),
    }
}

/// The transaction a step means in `tree`, or None when it does not apply there (prep
/// would have refused it).
fn txn_for(step: &Step, tree: &TreeVersion, paths: &[String]) -> Option<Txn> {
    match step {
        Step::Create {
            path,
            kind,
            data,
            acl,
        } => {
            let path = &paths[*path];
            let parent = crate::tree::path::split_parent(path)?.0;
            let parent_node = tree.get(parent)?;
            // Ephemerals cannot have children (prep refuses NoChildrenForEphemerals).
            if tree.contains(path)
                || matches!(parent_node.kind(), crate::tree::NodeKind::Ephemeral(_))
            {
                return None;
            }
            let owner = match kind {
                0 | 1 => 0,
                2 => CONTAINER_OWNER,
                3 => ttl_owner(1_000),
                _ => 1 + i64::from(*kind % 2),
            };
            let owner = if *kind == 1 { 2 } else { owner };
            Some(create(path, data.as_deref(), acl_of(*acl), owner, tree))
        }
        Step::Delete { path } => {
            let node = tree.get(&paths[*path])?;
            (node.child_count == 0).then(|| Txn::Delete {
                path: paths[*path].clone(),
            })
        }
        Step::SetData { path, data } => {
            let node = tree.get(&paths[*path])?;
            Some(Txn::SetData {
                path: paths[*path].clone(),
                data: data.clone(),
                version: node.stat.version + 1,
            })
        }
        Step::SetAcl { path, acl } => {
            let node = tree.get(&paths[*path])?;
            Some(Txn::SetAcl {
                path: paths[*path].clone(),
                acl: acl_of(*acl),
                version: node.stat.aversion + 1,
            })
        }
        Step::Close { session } => Some(Txn::CloseSession {
            session_id: i64::from(*session),
            ephemerals: tree.ephemerals_of(i64::from(*session)),
        }),
        Step::Snapshot => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Snapshot anywhere (possibly several times, each time from a tree already built on a
    /// base), reopen, go on: every observable equals the tree that never snapshotted.
    #[test]
    fn snapshotting_and_reopening_changes_nothing_observable(
        steps in proptest::collection::vec(step_strategy(), 1..80)
    ) {
        let paths = universe();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut plain = TreeVersion::new();
        let mut based = TreeVersion::new();
        for step in &steps {
            if let Step::Snapshot = step {
                // The streamed archive holds exactly the model's records, for a tree with a
                // base and a delta as for a plain one.
                prop_assert_eq!(streamed_body(&based, &sessions()), reference_body(&based, &sessions()).expect("model"));
                prop_assert_eq!(streamed_body(&plain, &[]), reference_body(&plain, &[]).expect("model"));
                based = reopened(&based, dir.path());
                prop_assert_eq!(observe(&based), observe(&plain));
                continue;
            }
            let Some(txn) = txn_for(step, &plain, &paths) else { continue };
            let zxid = plain.zxid + 1;
            let mut plain_triggers = Vec::new();
            let mut based_triggers = Vec::new();
            let expected = plain.apply(zxid, zxid * 10, &txn, &mut plain_triggers);
            let actual = based.apply(zxid, zxid * 10, &txn, &mut based_triggers);
            prop_assert_eq!(actual, expected);
            prop_assert_eq!(based_triggers, plain_triggers);
        }
        prop_assert_eq!(observe(&based), observe(&plain));
    }
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture in release"]
fn measure_open_of_a_million_nodes() {
    // 1,000 parents of 1,000 children each, 100 bytes of data per node.
    let mut tree = TreeVersion::new();
    let data = vec![7u8; 100];
    let started = std::time::Instant::now();
    for parent in 0..1_000 {
        let path = format!("/p{parent:04}");
        let txn = create(&path, Some(&data), acl::open_acl(), 0, &tree);
        apply(&mut tree, &txn);
        for child in 0..999 {
            let txn = create(
                &format!("{path}/c{child:04}"),
                Some(&data),
                acl::open_acl(),
                0,
                &tree,
            );
            apply(&mut tree, &txn);
        }
    }
    eprintln!(
        "built {} nodes in {:?}",
        tree.node_count(),
        started.elapsed()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let body = reference_body(&tree, &[]).expect("body");
    eprintln!("build_body {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let encoded = format::encode(tree.zxid, Some(tree.digest() as u64), &body).expect("encode");
    eprintln!("encode (rkyv + crc) {:?}", started.elapsed());
    drop((body, encoded));
    let started = std::time::Instant::now();
    let path = write_snapshot(dir.path(), &tree, &[]).expect("write");
    eprintln!("write_snapshot {:?}", started.elapsed());
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "file {} bytes ({} per node)",
        bytes,
        bytes / tree.node_count() as u64
    );
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let snapshot = MappedSnapshot::open(&path).expect("open");
        let opened = started.elapsed();
        let based = TreeVersion::from_snapshot(Arc::new(snapshot));
        eprintln!(
            "open {:?}, open + from_snapshot {:?}",
            opened,
            started.elapsed()
        );
        let started = std::time::Instant::now();
        let mut found = 0;
        for index in 0..100_000 {
            let path = format!("/p{:04}/c{:04}", index % 1_000, index % 999);
            found += usize::from(based.get(&path).is_some());
        }
        eprintln!("100k base lookups {:?} ({found} found)", started.elapsed());
        let again = tempfile::tempdir().expect("tempdir");
        let started = std::time::Instant::now();
        write_snapshot(again.path(), &based, &[]).expect("write");
        eprintln!(
            "write_snapshot of the tree based on it {:?}",
            started.elapsed()
        );
    }
}

/// ZAB's SNAP: the leader's `encode_snapshot` bytes, installed by a learner, give the
/// learner exactly the leader's tree and sessions (ZooKeeper's `Learner.syncWithLeader`
/// deserialises the leader's snapshot into its DataTree).
#[test]
fn installed_snapshot_bytes_give_the_same_tree() {
    let tree = every_kind_tree();
    let bytes = super::encode_snapshot(&tree, &sessions()).expect("encode");
    let source = tempfile::tempdir().expect("tempdir");
    let written = write_snapshot(source.path(), &tree, &sessions()).expect("write");
    assert_eq!(
        std::fs::read(&written).expect("read"),
        bytes,
        "encode_snapshot gives exactly the bytes write_snapshot writes"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // A newer snapshot of a replaced history is removed; an older one stays.
    let mut newer_tree = tree.clone();
    add(&mut newer_tree, "/diverged", None, acl::open_acl(), 0);
    let newer = write_snapshot(dir.path(), &newer_tree, &[]).expect("write");
    let mut older_tree = TreeVersion::new();
    add(&mut older_tree, "/old", None, acl::open_acl(), 0);
    let older = write_snapshot(dir.path(), &older_tree, &[]).expect("write");
    let path = super::install_snapshot(dir.path(), &bytes).expect("install");
    assert_eq!(path, dir.path().join(format::snapshot_name(tree.zxid)));
    assert!(!newer.exists() && older.exists());
    let snapshot = MappedSnapshot::open(&path).expect("open");
    let mut expected = sessions();
    expected.sort();
    assert_eq!(snapshot.sessions(), expected);
    let installed = TreeVersion::from_snapshot(Arc::new(snapshot));
    assert_eq!(observe(&installed), observe(&tree));
    let found = newest_valid(dir.path()).expect("scan");
    assert_eq!(found.snapshot.map(|s| s.zxid()), Some(tree.zxid));
}

#[test]
fn damaged_snapshot_bytes_are_refused_and_nothing_is_written() {
    let tree = every_kind_tree();
    let bytes = super::encode_snapshot(&tree, &sessions()).expect("encode");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut newer_tree = tree.clone();
    add(&mut newer_tree, "/kept", None, acl::open_acl(), 0);
    let newer = write_snapshot(dir.path(), &newer_tree, &[]).expect("write");
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let mut cases: Vec<Vec<u8>> = vec![Vec::new(), bytes[..bytes.len() - 1].to_vec()];
    let mut extended = bytes.clone();
    extended.push(0);
    cases.push(extended);
    for at in [
        0,
        9,
        17,
        61,
        format::HEADER_BYTES + 3,
        bytes.len() / 2,
        bytes.len() - 2,
    ] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        cases.push(flipped);
    }
    for case in cases {
        assert!(super::install_snapshot(dir.path(), &case).is_err());
        assert_eq!(listing(), before, "a refused snapshot changes nothing");
    }
    assert!(newer.exists());
}

/// A snapshot streamed in chunks (ZAB's SNAP as `Wire::SnapChunk`s) is written to dataDir as
/// it comes and installed from the header alone: the same tree as the snapshot in one piece.
/// A chunk of an older link is ignored, one that leaves a gap ends the reception, and a
/// stream cut short does not install.
#[test]
fn a_snapshot_received_in_chunks_installs_as_the_whole_file_would() {
    use super::{ChunkOutcome, SnapshotReception};
    let tree = every_kind_tree();
    let file = super::encode_snapshot(&tree, &sessions()).expect("encode");
    let mut stream = file.clone();
    stream[..format::HEADER_BYTES].fill(0); // the stream carries a zeroed header
    let header = &file[..format::HEADER_BYTES];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reception = None;
    let chunk_bytes = 100;
    for (index, chunk) in stream.chunks(chunk_bytes).enumerate() {
        let offset = (index * chunk_bytes) as u64;
        let outcome =
            SnapshotReception::chunk(&mut reception, dir.path(), 7, tree.zxid, offset, chunk);
        assert_eq!(
            outcome.expect("chunk"),
            ChunkOutcome::Written(offset + chunk.len() as u64)
        );
        // A chunk of an older link, even at offset 0, changes nothing.
        let stale = SnapshotReception::chunk(&mut reception, dir.path(), 6, tree.zxid, 0, b"x");
        assert_eq!(stale.expect("stale"), ChunkOutcome::Stale);
    }
    let installed = reception
        .take()
        .expect("reception")
        .finish(header)
        .expect("finish");
    assert_eq!(
        installed.path(),
        dir.path().join(format::snapshot_name(tree.zxid))
    );
    assert!(!dir.path().join(super::writer::RECEIVING_NAME).exists());
    let reopened = TreeVersion::from_snapshot(Arc::new(installed));
    assert_eq!(reopened.paths(), tree.paths());
    for path in tree.paths() {
        let node = |tree: &TreeVersion| {
            tree.get(&path)
                .map(|node| (node.to_stat(), node.data_vec(), node.acl.clone()))
        };
        assert_eq!(node(&reopened), node(&tree), "{path}");
    }
    // A gap: the reception ends with an error and nothing is installed.
    let other = tempfile::tempdir().expect("tempdir");
    let mut reception = None;
    SnapshotReception::chunk(
        &mut reception,
        other.path(),
        8,
        tree.zxid,
        0,
        &stream[..100],
    )
    .expect("first");
    let gap = SnapshotReception::chunk(
        &mut reception,
        other.path(),
        8,
        tree.zxid,
        200,
        &stream[200..300],
    );
    assert!(gap.is_err() && reception.is_none(), "{gap:?}");
    // Cut short: finish refuses it (the header's body length is not what arrived).
    let mut reception = None;
    SnapshotReception::chunk(
        &mut reception,
        other.path(),
        9,
        tree.zxid,
        0,
        &stream[..300],
    )
    .expect("first");
    let short = reception.take().expect("reception").finish(header);
    assert!(
        matches!(short, Err(SnapshotError::BodyLength { .. })),
        "{:?}",
        short.err()
    );
    // Damaged on the way: the body checksum in the header catches it.
    let mut damaged = stream.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let mut reception = None;
    SnapshotReception::chunk(&mut reception, other.path(), 10, tree.zxid, 0, &damaged)
        .expect("whole");
    let refused = reception.take().expect("reception").finish(header);
    assert!(
        matches!(refused, Err(SnapshotError::BodyChecksum)),
        "{:?}",
        refused.err()
    );
    assert!(super::list_snapshots(other.path())
        .expect("list")
        .is_empty());
}
