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
//!
//! Between members: [`DigestCheck`] is a learner's comparison of its tree with the digests its
//! leader sends (DataTree.compareDigest), [`RecentDigests`] what a leader has to send.

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

/// The leader's digest of its tree after one txn (ZooKeeper's `TxnDigest`, which every
/// PROPOSAL and INFORM of a 3.6+ leader carries, and ringkeeper's leader sends as
/// `quorum::Wire::TxnDigest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    /// As Java's signed long.
    pub digest: i64,
}

/// What [`DigestCheck::applied`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOutcome {
    /// No digest for this txn (the leader sent none, or of another digest version).
    NotCompared,
    Matched,
    /// The tree after the txn differs from the leader's. `first` is true for the first
    /// mismatch of a divergence (after a match, a state reset or at start): the one to log.
    Mismatched {
        expected: i64,
        actual: i64,
        first: bool,
    },
}

/// Digests a learner keeps from the time it receives a proposal to the time it applies it:
/// at most this many (a leader sends one per proposal and the proposal window is far
/// smaller; beyond it the oldest are dropped, which only leaves those txns unchecked).
pub const EXPECTED_DIGESTS_MAX: usize = 16_384;

/// A learner's comparison of its tree with its leader's after each committed txn
/// (DataTree.processTxn → compareDigest): the leader's digests by zxid, taken out as the txns
/// are applied. A mismatch is counted each time (ServerMetrics.DIGEST_MISMATCHES_COUNT) and
/// reported once per divergence: DataTree logs only its first mismatch (firstMismatchTxn);
/// here the report comes again after the trees matched once more or the state was replaced.
/// A digest of another version than [`DIGEST_VERSION`] is not compared (compareDigest:
/// "Digest version not the same"). Pure: the caller counts and logs.
#[derive(Debug, Default)]
pub struct DigestCheck {
    expected: std::collections::BTreeMap<i64, TxnDigest>,
    diverged: bool,
}

impl DigestCheck {
    /// The leader's digest after txn `zxid` (received ahead of the txn or with it).
    pub fn expect(&mut self, zxid: i64, digest: TxnDigest) {
        self.expected.insert(zxid, digest);
        while self.expected.len() > EXPECTED_DIGESTS_MAX {
            self.expected.pop_first();
        }
    }

    /// Txn `zxid` was applied and left the tree at `tree_digest`. Expectations at or below
    /// `zxid` are used up (a txn below it that was not applied cannot be checked any more).
    pub fn applied(&mut self, zxid: i64, tree_digest: i64) -> DigestOutcome {
        let expected = self.expected.remove(&zxid);
        self.expected = self.expected.split_off(&zxid.saturating_add(1));
        let Some(expected) = expected else {
            return DigestOutcome::NotCompared;
        };
        if expected.version != DIGEST_VERSION {
            return DigestOutcome::NotCompared;
        }
        if expected.digest == tree_digest {
            self.diverged = false;
            return DigestOutcome::Matched;
        }
        let first = !std::mem::replace(&mut self.diverged, true);
        DigestOutcome::Mismatched {
            expected: expected.digest,
            actual: tree_digest,
            first,
        }
    }

    /// TRUNC to `zxid`: the txns above it are gone, and so are their digests (a later leader
    /// sends its own).
    pub fn truncated(&mut self, zxid: i64) {
        let _ = self.expected.split_off(&zxid.saturating_add(1));
    }

    /// The tree was replaced by a snapshot through `zxid` (SNAP, or a reload): what it held
    /// is gone, and with it any divergence; digests of the txns after it stay.
    pub fn replaced(&mut self, zxid: i64) {
        self.expected = self.expected.split_off(&zxid.saturating_add(1));
        self.diverged = false;
    }

    /// Digests waiting for their txn.
    pub fn waiting(&self) -> usize {
        self.expected.len()
    }
}

/// The tree digest after each of the newest txns this server applied (as leader at
/// proposal time, as learner at commit), for the digests a leader sends with the proposals
/// and informs of a sync or of broadcast. Zxids only increase, except after a TRUNC or a
/// reload, where a zxid at or below the newest replaces everything from it on.
#[derive(Debug, Default)]
pub struct RecentDigests {
    entries: std::collections::VecDeque<(i64, i64)>,
}

/// The digests [`RecentDigests`] keeps: above ZAB's in-memory history (`history_limit`,
/// 500 by default) plus a full proposal window, so that every record a DIFF sends has one.
pub const RECENT_DIGESTS_MAX: usize = 4_096;

impl RecentDigests {
    pub fn record(&mut self, zxid: i64, digest: i64) {
        while self.entries.back().is_some_and(|(last, _)| *last >= zxid) {
            self.entries.pop_back();
        }
        self.entries.push_back((zxid, digest));
        while self.entries.len() > RECENT_DIGESTS_MAX {
            self.entries.pop_front();
        }
    }

    /// The tree digest after txn `zxid`, if it is among the newest kept.
    pub fn get(&self, zxid: i64) -> Option<i64> {
        self.entries
            .binary_search_by_key(&zxid, |(at, _)| *at)
            .ok()
            .map(|index| self.entries[index].1)
    }
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

    fn leaders(digest: i64) -> TxnDigest {
        TxnDigest {
            version: DIGEST_VERSION,
            digest,
        }
    }

    /// DataTree.compareDigest: a txn whose digest equals the tree's after it counts no
    /// mismatch; a tampered one counts one, reported (logged) at the first of a divergence
    /// only, and again once the trees matched in between.
    #[test]
    fn a_tampered_digest_is_one_mismatch_and_a_correct_one_none() {
        let mut tree = TreeVersion::new();
        let mut check = DigestCheck::default();
        let txn = create(&tree, "/a", b"alpha", 0);
        apply(&mut tree, &txn);
        check.expect(tree.zxid, leaders(tree.digest()));
        assert_eq!(
            check.applied(tree.zxid, tree.digest()),
            DigestOutcome::Matched
        );
        let txn = create(&tree, "/b", b"beta", 0);
        apply(&mut tree, &txn);
        check.expect(tree.zxid, leaders(tree.digest() ^ 1));
        assert_eq!(
            check.applied(tree.zxid, tree.digest()),
            DigestOutcome::Mismatched {
                expected: tree.digest() ^ 1,
                actual: tree.digest(),
                first: true
            }
        );
        // Still diverged: counted, not reported again.
        check.expect(tree.zxid + 1, leaders(7));
        assert!(matches!(
            check.applied(tree.zxid + 1, 8),
            DigestOutcome::Mismatched { first: false, .. }
        ));
        check.expect(tree.zxid + 2, leaders(9));
        assert_eq!(check.applied(tree.zxid + 2, 9), DigestOutcome::Matched);
        check.expect(tree.zxid + 3, leaders(9));
        assert!(matches!(
            check.applied(tree.zxid + 3, 10),
            DigestOutcome::Mismatched { first: true, .. }
        ));
        assert_eq!(check.waiting(), 0);
    }

    /// No digest, another digest version (compareDigest skips it), or an expectation used up
    /// by a later txn: nothing is compared.
    #[test]
    fn txns_without_a_digest_of_our_version_are_not_compared() {
        let mut check = DigestCheck::default();
        assert_eq!(check.applied(5, 1), DigestOutcome::NotCompared);
        check.expect(
            6,
            TxnDigest {
                version: DIGEST_VERSION + 1,
                digest: 2,
            },
        );
        assert_eq!(check.applied(6, 1), DigestOutcome::NotCompared);
        check.expect(7, leaders(1));
        check.expect(8, leaders(1));
        check.expect(9, leaders(3));
        assert_eq!(check.applied(8, 1), DigestOutcome::Matched);
        assert_eq!(check.waiting(), 1, "7 was used up by 8, 9 waits");
        check.truncated(8);
        assert_eq!(check.waiting(), 0, "a TRUNC drops the digests above it");
        check.expect(10, leaders(1));
        check.expect(11, leaders(1));
        check.replaced(10);
        assert_eq!(check.waiting(), 1, "a snapshot through 10 keeps 11's");
        for zxid in 0..(EXPECTED_DIGESTS_MAX as i64 + 10) {
            check.expect(100 + zxid, leaders(zxid));
        }
        assert_eq!(check.waiting(), EXPECTED_DIGESTS_MAX);
    }

    #[test]
    fn recent_digests_keep_the_newest_and_a_truncation_replaces_the_tail() {
        let mut recent = RecentDigests::default();
        for zxid in 1..=(RECENT_DIGESTS_MAX as i64 + 5) {
            recent.record(zxid, zxid * 10);
        }
        assert_eq!(recent.get(5), None, "the oldest are dropped");
        assert_eq!(recent.get(6), Some(60));
        recent.record(100, -1);
        assert_eq!(
            recent.get(100),
            Some(-1),
            "a re-applied zxid replaces its digest"
        );
        assert_eq!(recent.get(101), None, "and everything after it");
        assert_eq!(recent.get(99), Some(990));
    }
}
