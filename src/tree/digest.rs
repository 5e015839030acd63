//! [pure] ZooKeeper's tree digest (DigestCalculator, NodeHashMapImpl) and the history of it
//! that the `hash` command shows (DataTree.logZxidDigest, getDigestLog).
//!
//! The digest of a node is a CRC-32 over its path ("" for the root), its data (nothing for
//! null data) and 60 bytes of its StatPersisted, big-endian: czxid, mzxid, pzxid, ctime,
//! mtime (i64 each), version, cversion (as stored: the number of creates), aversion (i32
//! each), ephemeralOwner (i64). Nodes under `/zookeeper/` count 0 (DigestCalculator skips
//! ZooDefs.ZOOKEEPER_NODE_SUBTREE); `/zookeeper` itself counts. The tree digest is the sum of
//! the node digests modulo 2^64 (NodeHashMapImpl's AdHash), kept incrementally: a change
//! subtracts the node's old digest and adds its new one.
//!
//! The history: after every transaction (not a multi's sub-transactions; session and error
//! transactions too) whose zxid is a multiple of [`DIGEST_LOG_INTERVAL`], (zxid, digest) is
//! appended; at most [`DIGEST_LOG_LIMIT`] entries are kept, the oldest dropped first. It lives
//! in memory only, as ZooKeeper's does.

use imbl::Vector;

use super::NodeStat;

/// DigestCalculator.DIGEST_VERSION.
pub const DIGEST_VERSION: i32 = 2;
/// DataTree.DIGEST_LOG_INTERVAL: an entry every 128 zxids (0x80).
pub const DIGEST_LOG_INTERVAL: i64 = 128;
/// DataTree.DIGEST_LOG_LIMIT: the entries kept.
pub const DIGEST_LOG_LIMIT: usize = 1024;

/// DigestCalculator.calculateDigest: 0 for nodes under `/zookeeper/`.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &NodeStat) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut fields = [0u8; 60];
    let mut at = 0;
    for value in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
        fields[at..at + 8].copy_from_slice(&value.to_be_bytes());
        at += 8;
    }
    for value in [stat.version, stat.cversion, stat.aversion] {
        fields[at..at + 4].copy_from_slice(&value.to_be_bytes());
        at += 4;
    }
    fields[at..at + 8].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    if let Some(data) = data {
        crc.update(data);
    }
    crc.update(&fields);
    u64::from(crc.finalize())
}

/// DataTree.ZxidDigest: the tree digest after the transaction `zxid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    /// As Java's signed long.
    pub digest: i64,
    pub digest_version: i32,
}

/// DataTree.digestLog: a persistent list, so that every tree version carries its own
/// history at the cost of a pointer copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestLog {
    entries: Vector<ZxidDigest>,
}

impl DigestLog {
    /// DataTree.logZxidDigest after the transaction `zxid` left the tree at `digest`.
    pub fn record(&mut self, zxid: i64, digest: u64) {
        if zxid % DIGEST_LOG_INTERVAL != 0 {
            return;
        }
        self.entries.push_back(ZxidDigest {
            zxid,
            digest: digest as i64,
            digest_version: DIGEST_VERSION,
        });
        while self.entries.len() > DIGEST_LOG_LIMIT {
            self.entries.pop_front();
        }
    }

    /// Oldest first (DataTree.getDigestLog).
    pub fn entries(&self) -> impl Iterator<Item = &ZxidDigest> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The 4lw `hash` (command.DigestCommand): one line per entry, the zxid in hex without
/// `0x`, then the digest in decimal (Java's `Long.toHexString(zxid) + ": " + digest`).
pub fn digest_log_text(log: &DigestLog) -> String {
    let mut out = String::new();
    for entry in log.entries() {
        out.push_str(&format!("{:x}: {}\n", entry.zxid as u64, entry.digest));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::jute::protocol::ErrorCode;
    use crate::tree::{acl, TreeVersion, Txn};
    use crate::zkformat::model::ZkTree;

    fn create(tree: &TreeVersion, path: &str, data: &[u8], owner: i64) -> Txn {
        let parent = crate::tree::path::split_parent(path).map_or("/", |(parent, _)| parent);
        Txn::Create {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: acl::open_acl(),
            ephemeral_owner: owner,
            parent_cversion: tree.get(parent).map_or(0, |node| node.stat.cversion) + 1,
        }
    }

    /// Applies `txn` at the next zxid and checks the incremental digest against a full pass.
    fn apply(tree: &mut TreeVersion, txn: &Txn) {
        let zxid = tree.zxid + 1;
        let applied = tree.apply(zxid, 1_000 + zxid, txn, &mut Vec::new());
        assert!(applied.is_ok(), "{txn:?}: {applied:?}");
        assert_eq!(
            tree.digest(),
            tree.digest_recomputed(),
            "incremental digest after {txn:?} at zxid {zxid:#x}"
        );
    }

    /// ZooKeeper's empty DataTree (`/`, `/zookeeper`, its quota and config children) has the
    /// digest 0x51c6d660: what the first txn of a fresh ZooKeeper's log starts from (its
    /// createSession carries it).
    #[test]
    fn the_empty_tree_has_zookeepers_digest() {
        assert_eq!(TreeVersion::new().digest(), 0x51c6_d660);
        assert_eq!(ZkTree::initial().digest(), 0x51c6_d660);
        assert_eq!(TreeVersion::new().digest_recomputed(), 0x51c6_d660);
    }

    /// Create, setData, setACL, delete, multi, ephemerals closed with their session, the
    /// system nodes: after each transaction the kept digest is the sum over the tree.
    #[test]
    fn every_transaction_keeps_the_digest_equal_to_a_full_pass() {
        let mut tree = TreeVersion::new();
        apply(
            &mut tree,
            &Txn::CreateSession {
                session_id: 7,
                timeout_ms: 30_000,
            },
        );
        let empty = tree.digest();
        let txn = create(&tree, "/a", b"alpha", 0);
        apply(&mut tree, &txn);
        assert_ne!(tree.digest(), empty, "a create changes the digest");
        let txn = create(&tree, "/a/b", b"", 0);
        apply(&mut tree, &txn);
        let txn = create(&tree, "/a/e", b"eph", 7);
        apply(&mut tree, &txn);
        let before_set = tree.digest();
        apply(
            &mut tree,
            &Txn::SetData {
                path: "/a/b".into(),
                data: None,
                version: 1,
            },
        );
        assert_ne!(
            tree.digest(),
            before_set,
            "null data and a new mzxid change it"
        );
        let before_acl = tree.digest();
        apply(
            &mut tree,
            &Txn::SetAcl {
                path: "/a".into(),
                acl: acl::read_acl(),
                version: 1,
            },
        );
        assert_ne!(tree.digest(), before_acl, "the aversion is digested");
        let ops = vec![
            create(&tree, "/m", b"1", 0),
            Txn::SetData {
                path: "/a".into(),
                data: Some(b"beta".to_vec()),
                version: 1,
            },
            Txn::Delete {
                path: "/a/b".into(),
            },
        ];
        apply(&mut tree, &Txn::Multi { ops });
        // A failed multi is a Multi of errors: nothing changes.
        let before_failed = tree.digest();
        apply(
            &mut tree,
            &Txn::Multi {
                ops: vec![
                    Txn::Error {
                        code: ErrorCode::Ok,
                    },
                    Txn::Error {
                        code: ErrorCode::NoNode,
                    },
                ],
            },
        );
        assert_eq!(tree.digest(), before_failed);
        apply(
            &mut tree,
            &Txn::CloseSession {
                session_id: 7,
                ephemerals: vec!["/a/e".into()],
            },
        );
        apply(&mut tree, &Txn::Delete { path: "/m".into() });
        // Under /zookeeper/ nothing counts: the config node's data does not change it.
        let before_config = tree.digest();
        apply(
            &mut tree,
            &Txn::Reconfig {
                data: b"server.1=127.0.0.1:2888:3888".to_vec(),
            },
        );
        assert_eq!(tree.digest(), before_config);
    }

    /// DataTree.logZxidDigest: an entry after each txn whose zxid is a multiple of 128,
    /// whatever the txn (a session or an error txn too), one per multi, with the digest
    /// after the whole txn.
    #[test]
    fn the_history_has_an_entry_every_128_zxids() {
        let mut tree = TreeVersion::new();
        let mut digests_at = Vec::new();
        for zxid in 1..=400i64 {
            let txn = match zxid {
                128 => Txn::CreateSession {
                    session_id: 9,
                    timeout_ms: 4_000,
                },
                256 => Txn::Multi {
                    ops: vec![
                        create(&tree, "/multi", b"", 0),
                        create(&tree, "/multi/child", b"c", 0),
                    ],
                },
                384 => Txn::Error {
                    code: ErrorCode::NodeExists,
                },
                _ if zxid % 3 == 0 => Txn::SetData {
                    path: "/n1".into(),
                    data: Some(zxid.to_be_bytes().to_vec()),
                    version: (zxid / 3) as i32,
                },
                _ => create(&tree, &format!("/n{zxid}"), b"d", 0),
            };
            apply(&mut tree, &txn);
            if zxid % DIGEST_LOG_INTERVAL == 0 {
                digests_at.push((zxid, tree.digest()));
            }
        }
        let logged: Vec<(i64, i64)> = tree
            .digest_log()
            .entries()
            .map(|entry| (entry.zxid, entry.digest))
            .collect();
        assert_eq!(logged, digests_at);
        assert_eq!(
            logged.iter().map(|(zxid, _)| *zxid).collect::<Vec<_>>(),
            vec![128, 256, 384]
        );
        assert!(tree
            .digest_log()
            .entries()
            .all(|entry| entry.digest_version == DIGEST_VERSION));
        // The 4lw text (DigestCommand): hex zxid, decimal digest.
        let text = digest_log_text(tree.digest_log());
        let first = format!("80: {}", digests_at[0].1);
        assert_eq!(text.lines().next(), Some(first.as_str()));
        assert_eq!(text.lines().count(), 3);
        assert!(text
            .lines()
            .nth(1)
            .is_some_and(|line| line.starts_with("100: ")));
    }

    /// DIGEST_LOG_LIMIT: the newest 1024 entries are kept, the oldest dropped first; a tree
    /// version keeps the history it had when a later one moved on.
    #[test]
    fn the_history_keeps_the_newest_1024_entries() {
        let mut log = DigestLog::default();
        for step in 1..=1030i64 {
            log.record(step * DIGEST_LOG_INTERVAL - 1, 1);
            log.record(step * DIGEST_LOG_INTERVAL, step as u64);
        }
        assert_eq!(log.len(), DIGEST_LOG_LIMIT);
        let first = log.entries().next().copied();
        assert_eq!(
            first.map(|entry| (entry.zxid, entry.digest)),
            Some((7 * 128, 7))
        );
        let last = log.entries().last().copied();
        assert_eq!(last.map(|entry| entry.zxid), Some(1030 * 128));

        // Through the tree: error txns (no node changes) up to 1025 entries.
        let mut tree = TreeVersion::new();
        let error = Txn::Error {
            code: ErrorCode::BadVersion,
        };
        for zxid in 1..=(1025 * DIGEST_LOG_INTERVAL) {
            let applied = tree.apply(zxid, 0, &error, &mut Vec::new());
            assert!(applied.is_ok());
        }
        let earlier = tree.clone();
        assert_eq!(tree.digest_log().len(), DIGEST_LOG_LIMIT);
        assert_eq!(
            tree.digest_log().entries().next().map(|e| e.zxid),
            Some(256)
        );
        let txn = create(&tree, "/late", b"", 0);
        apply(&mut tree, &txn);
        for zxid in tree.zxid + 1..=(1026 * DIGEST_LOG_INTERVAL) {
            assert!(tree.apply(zxid, 0, &error, &mut Vec::new()).is_ok());
        }
        assert_eq!(
            tree.digest_log().entries().next().map(|e| e.zxid),
            Some(384)
        );
        assert_eq!(
            tree.digest_log().entries().last().map(|e| e.digest),
            Some(tree.digest())
        );
        assert_eq!(
            earlier.digest_log().entries().next().map(|e| e.zxid),
            Some(256)
        );
    }

    /// The snapshot header carries the digest: a tree reopened from its snapshot has the
    /// digest without a pass over the nodes, and changes of nodes read from the base (no
    /// cached digest) keep it right. A header without one (written before) is digested
    /// once at load, to the same value.
    #[test]
    fn a_snapshot_carries_the_digest_and_its_base_nodes_keep_it() {
        let mut tree = TreeVersion::new();
        for index in 0..50 {
            let txn = create(
                &tree,
                &format!("/n{index}"),
                format!("{index}").as_bytes(),
                0,
            );
            apply(&mut tree, &txn);
        }
        let txn = create(&tree, "/n3/child", b"c", 0);
        apply(&mut tree, &txn);
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let path = crate::snapshot::write_snapshot(dir.path(), &tree, &[])
            .unwrap_or_else(|error| panic!("{error}"));
        let snapshot =
            crate::snapshot::MappedSnapshot::open(&path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(snapshot.tree_digest(), Some(tree.digest() as u64));
        let mut reopened = TreeVersion::from_snapshot(Arc::new(snapshot));
        assert_eq!(reopened.digest(), tree.digest());
        assert!(
            reopened.digest_log().is_empty(),
            "the history is in memory only"
        );
        let changes = [
            Txn::SetData {
                path: "/n7".into(),
                data: Some(b"changed".to_vec()),
                version: 1,
            },
            Txn::Delete {
                path: "/n3/child".into(),
            },
            Txn::Delete { path: "/n9".into() },
            Txn::SetAcl {
                path: "/n11".into(),
                acl: acl::read_acl(),
                version: 1,
            },
        ];
        for txn in changes
            .iter()
            .chain([create(&tree, "/n3/new", b"n", 0)].iter())
        {
            apply(&mut tree, txn);
            apply(&mut reopened, txn);
            assert_eq!(reopened.digest(), tree.digest(), "{txn:?}");
        }

        // The same file with the digest bytes zeroed (as an older writer left them).
        let mut bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{error}"));
        bytes[44..60].fill(0);
        let checksum = crc32c::crc32c(&bytes[0..60]);
        bytes[60..64].copy_from_slice(&checksum.to_le_bytes());
        let old = dir.path().join("snapshot.old");
        assert!(std::fs::write(&old, &bytes).is_ok());
        let snapshot =
            crate::snapshot::MappedSnapshot::open(&old).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(snapshot.tree_digest(), None);
        let loaded = TreeVersion::from_snapshot(Arc::new(snapshot));
        assert_eq!(loaded.digest(), loaded.digest_recomputed());
        assert_eq!(loaded.zxid, 51);
    }
}
