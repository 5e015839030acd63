//! Round trips and ZooKeeper's replay rules, on files written the way ZooKeeper writes them
//! (the formats are in each module's doc). The real server's files are covered by
//! tests/compat/test_zk_migration.py.

use super::log::{read_log, write_log};
use super::model::ZkTree;
use super::opcode::*;
use super::snapshot::{decompress, read_snapshot, write_snapshot};
use super::txn::{TxnDigest, TxnHeader, ZkEntry, ZkTxn};
use crate::tree::acl::open_acl;
use crate::tree::digest::DIGEST_VERSION;

fn header(zxid: i64, op: i32, client_id: i64) -> TxnHeader {
    TxnHeader {
        client_id,
        cxid: 1,
        zxid,
        time_ms: 1_000 + zxid,
        op,
    }
}

fn create(path: &str, parent_cversion: i32, ephemeral: bool) -> ZkTxn {
    ZkTxn::Create {
        op: CREATE,
        path: path.into(),
        data: Some(path.as_bytes().to_vec()),
        acl: open_acl(),
        ephemeral,
        parent_cversion,
    }
}

/// A snapshot written from a tree reads back as the same tree, sessions and digest, and its
/// digest is the tree's (what ZooKeeper compares when it loads an export).
#[test]
fn a_snapshot_round_trips_with_its_digest() {
    let mut tree = ZkTree::initial();
    tree.process(
        &header(1, CREATE_SESSION, 7),
        &ZkTxn::CreateSession { timeout_ms: 30_000 },
    );
    tree.process(&header(2, CREATE, 0), &create("/a", 1, false));
    tree.process(&header(3, CREATE, 7), &create("/a/e", 1, true));
    tree.process(
        &header(4, CREATE_TTL, 0),
        &ZkTxn::CreateTtl {
            path: "/t".into(),
            data: None,
            acl: crate::tree::acl::read_acl(),
            parent_cversion: 2,
            ttl_ms: 5_000,
        },
    );
    let digest = tree.digest();
    // The live tree made of ZooKeeper's state (an import, a SNAP from a ZooKeeper leader)
    // digests it to the same number.
    let (live, _) = super::import::to_ringkeeper(tree.clone());
    assert_eq!(live.digest(), digest);
    assert_eq!(live.digest_recomputed(), digest);
    let sessions = tree.sessions.clone();
    let nodes = tree.clone().into_nodes();
    let bytes = write_snapshot(&nodes, &sessions, 4, digest);
    let read = read_snapshot(&bytes).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(read.tree.digest(), digest);
    assert_eq!(
        read.digest.map(|d| (d.zxid, d.version, d.digest)),
        Some((4, DIGEST_VERSION, digest))
    );
    assert_eq!(read.tree.sessions, sessions);
    assert_eq!(read.tree.clone().into_nodes(), nodes);
    assert_eq!(read.tree.ephemerals_of(7), vec!["/a/e".to_string()]);
    assert_eq!(read.tree.get("/t").and_then(|n| n.data.clone()), None);
    // A damaged byte fails the seal.
    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    assert!(read_snapshot(&damaged).is_err());
    // gzip, as SnapStream writes snapshot.<zxid>.gz.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    assert!(gz.write_all(&bytes).is_ok());
    let gz = gz.finish().unwrap_or_default();
    assert_eq!(decompress("snapshot.4.gz", &gz).ok(), Some(bytes.clone()));
    // snappy-java's stream: magic, version, compatible version, then length-prefixed blocks.
    let mut snappy = b"\x82SNAPPY\x00".to_vec();
    snappy.extend_from_slice(&1i32.to_be_bytes());
    snappy.extend_from_slice(&1i32.to_be_bytes());
    for chunk in bytes.chunks(1000) {
        let block = snap::raw::Encoder::new()
            .compress_vec(chunk)
            .unwrap_or_default();
        snappy.extend_from_slice(&(block.len() as i32).to_be_bytes());
        snappy.extend_from_slice(&block);
    }
    assert_eq!(decompress("snapshot.4.snappy", &snappy).ok(), Some(bytes));
}

/// The log format: records read back, a partial last record ends the file (kill -9), a bad
/// checksum on a complete record is damage.
#[test]
fn a_log_reads_back_and_a_partial_tail_ends_it() {
    let entries = vec![
        ZkEntry {
            header: header(1, CREATE, 0),
            txn: create("/a", 1, false),
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 42,
            }),
        },
        ZkEntry {
            header: header(2, MULTI, 0),
            txn: ZkTxn::Multi {
                ops: vec![
                    create("/a/b", 1, false),
                    ZkTxn::SetData {
                        path: "/a".into(),
                        data: Some(b"x".to_vec()),
                        version: 1,
                    },
                    ZkTxn::Check {
                        path: "/a".into(),
                        version: 1,
                    },
                ],
            },
            digest: None,
        },
        ZkEntry {
            header: header(3, CLOSE_SESSION, 9),
            txn: ZkTxn::CloseSession {
                paths: Some(vec!["/e".into()]),
            },
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 7,
            }),
        },
        ZkEntry {
            header: header(4, CLOSE_SESSION, 9),
            txn: ZkTxn::CloseSession { paths: None },
            digest: None,
        },
    ];
    let bytes = write_log(&entries);
    let read = read_log(&bytes).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(read.entries, entries);
    assert!(read.partial_tail.is_none());
    // Preallocated zeros after the records: the end of the log.
    let mut padded = bytes.clone();
    padded.resize(bytes.len() + 4096, 0);
    let read = read_log(&padded).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(read.entries.len(), 4);
    assert!(read.partial_tail.is_none());
    // The last record cut short.
    let cut = &bytes[..bytes.len() - 3];
    let read = read_log(cut).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(read.entries.len(), 3);
    assert!(read.partial_tail.is_some());
    // A complete record with a wrong checksum.
    let mut damaged = bytes.clone();
    damaged[16 + 12 + 20] ^= 0x40;
    assert!(read_log(&damaged).is_err());
}

/// DataTree's fuzzy-snapshot rules: a create whose node the snapshot already holds moves the
/// parent's cversion and pzxid forward (and replaces its ACL); a delete of a node already
/// gone still moves the parent's pzxid; a multi with an error applies nothing; a closeSession
/// deletes the session's ephemerals.
#[test]
fn replay_follows_zookeepers_rules_for_a_fuzzy_snapshot() {
    let mut tree = ZkTree::initial();
    tree.process(&header(1, CREATE, 0), &create("/p", 1, false));
    tree.process(&header(2, CREATE, 0), &create("/p/c", 1, false));
    // Replaying zxid 2 again (the snapshot already had it), with a later parent cversion.
    tree.process(&header(5, CREATE, 0), &create("/p/c", 3, false));
    let parent = tree.get("/p").map(|n| (n.stat.cversion, n.stat.pzxid));
    assert_eq!(parent, Some((3, 5)));
    tree.process(
        &header(6, DELETE, 0),
        &ZkTxn::Delete {
            path: "/p/gone".into(),
        },
    );
    assert_eq!(tree.get("/p").map(|n| n.stat.pzxid), Some(6));
    tree.process(
        &header(7, MULTI, 0),
        &ZkTxn::Multi {
            ops: vec![create("/never", 2, false), ZkTxn::Error { code: -101 }],
        },
    );
    assert!(tree.get("/never").is_none());
    tree.process(
        &header(8, CREATE_SESSION, 9),
        &ZkTxn::CreateSession { timeout_ms: 10 },
    );
    tree.process(&header(9, CREATE, 9), &create("/p/e1", 4, true));
    tree.process(&header(10, CREATE, 9), &create("/p/e2", 5, true));
    tree.process(
        &header(11, CLOSE_SESSION, 9),
        &ZkTxn::CloseSession {
            paths: Some(vec!["/p/e1".into()]),
        },
    );
    assert!(tree.get("/p/e1").is_none() && tree.get("/p/e2").is_none());
    assert!(tree.sessions.is_empty());
    assert_eq!(tree.last_zxid, 11);
    // The digest kept incrementally equals the digest of the tree rebuilt from scratch.
    let nodes = tree.clone().into_nodes();
    let bytes = write_snapshot(&nodes, &tree.sessions, 11, tree.digest());
    let reread = read_snapshot(&bytes).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(reread.tree.digest(), tree.digest());
}

/// A log that repeats a range of txns (a ZooKeeper 3.8 learner logs again what a DIFF sync had
/// it log) is replayed as ZooKeeper replays it, every txn applied as logged; the repeated
/// txns' digests (of the first pass's tree) are not compared, and the ones after the range
/// are.
#[test]
fn a_log_that_repeats_a_range_is_replayed_and_checked_after_it() {
    let txns = [
        create("/a", 1, false),
        create("/b", 2, false),
        create("/c", 3, false),
    ];
    let mut model = ZkTree::initial();
    let mut first_pass = Vec::new();
    for (index, txn) in txns.iter().enumerate() {
        let header = header(index as i64 + 1, CREATE, 0);
        model.process(&header, txn);
        first_pass.push(ZkEntry {
            header,
            txn: txn.clone(),
            digest: Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: model.digest(),
            }),
        });
    }
    // /a, /b, then /a, /b again, then /c.
    let mut entries = first_pass[..2].to_vec();
    entries.extend_from_slice(&first_pass);
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let zk = dir.path().join("version-2");
    std::fs::create_dir_all(&zk).unwrap_or_else(|error| panic!("{error}"));
    std::fs::write(zk.join("log.1"), write_log(&entries)).unwrap_or_else(|error| panic!("{error}"));
    let state = super::import::load_zookeeper(dir.path(), dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(state.txns_replayed, 5);
    assert_eq!(state.digests_checked, 3, "{:?}", state.notes);
    assert!(
        state.notes.iter().any(|note| note.contains("goes back")),
        "{:?}",
        state.notes
    );
    assert_eq!(state.tree.digest(), model.digest());
    // A wrong digest after the repeated range still refuses the import.
    let mut damaged = entries.clone();
    if let Some(digest) = damaged[4].digest.as_mut() {
        digest.tree_digest ^= 1;
    }
    std::fs::write(zk.join("log.1"), write_log(&damaged)).unwrap_or_else(|error| panic!("{error}"));
    let refused = super::import::load_zookeeper(dir.path(), dir.path());
    assert!(refused.is_err(), "{refused:?}");
}
