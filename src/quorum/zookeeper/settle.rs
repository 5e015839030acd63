//! [pure] Settling the fuzzy snapshot of a SNAP sync with a ZooKeeper leader before the ZAB
//! core sees it.
//!
//! A ZooKeeper leader serializes its live tree for a SNAP (LearnerHandler.run:
//! `ZKDatabase.serializeSnapshot` after the SNAP packet, whose zxid is the tree's last processed
//! zxid when the walk starts) while it goes on committing and applying transactions. Every
//! transaction that can have reached the tree during the walk was forwarded to the learner
//! (syncFollower calls `startForwarding` before the walk) and its COMMIT (or INFORM, for an
//! observer) queued before the walk ended (Leader.commit sends the COMMIT before the
//! CommitProcessor applies it), and NEWLEADER is queued only after the walk. So the snapshot is
//! exact once every transaction committed between SNAP and NEWLEADER is applied to it with
//! DataTree's tolerant rules (a create of a node the walk already saw, a delete of one it
//! missed), which is what Learner.syncWithLeader does: it applies those commits to its tree in
//! memory (`writeToTxnLog` is false after a SNAP) and takes its snapshot at NEWLEADER.
//!
//! ringkeeper's core applies and replays strictly: a transaction that does not apply is a
//! diverged replica. So the shell holds the packets of a SNAP sync until NEWLEADER, applies the
//! committed ones here to ZooKeeper's tree model ([`ZkTree::process`], the rules of
//! DataTree.processTxn), and hands the core a SNAP at the last committed zxid with the settled
//! tree, followed by what was not absorbed (the proposals still uncommitted, pings, NEWLEADER).
//! The core then logs and replays only transactions after the settled snapshot.

use crate::zab::Zxid;
use crate::zkformat::model::ZkTree;
use crate::zkformat::txn::decode_entry;

use super::translate::continuous;
use super::wire::{kind, QuorumPacket};

/// Bound on the packets held between SNAP and NEWLEADER: a leader's window is what it
/// committed while it walked its tree (ZooKeeper bounds its own queue by the same heap).
const HELD_PACKETS_MAX: usize = 4_000_000;

/// A SNAP sync whose NEWLEADER has not arrived yet.
#[derive(Debug)]
pub struct FuzzySnap {
    zxid: Zxid,
    tree: ZkTree,
    held: Vec<QuorumPacket>,
}

/// The settled sync.
#[derive(Debug)]
pub struct Settled {
    /// The zxid of the settled tree: the SNAP's, or the last one committed before NEWLEADER.
    pub zxid: Zxid,
    pub tree: ZkTree,
    /// The transactions applied to the streamed tree.
    pub absorbed: usize,
    /// The absorbed transactions whose TxnDigest (the leader's tree digest after them) the
    /// settled tree was compared with, and whether the last one matched.
    pub digest_matched: Option<bool>,
    /// The held packets that were not absorbed, in the order they arrived (NEWLEADER last).
    pub rest: Vec<QuorumPacket>,
}

impl FuzzySnap {
    /// After the SNAP packet at `zxid` and its stream, read as `tree`.
    pub fn new(zxid: Zxid, tree: ZkTree) -> FuzzySnap {
        FuzzySnap {
            zxid,
            tree,
            held: Vec::new(),
        }
    }

    /// Holds the next packet of the sync. Ok(true): it ended the window (NEWLEADER, or a
    /// packet no sync has, which the translator then refuses): [`FuzzySnap::settle`] now.
    pub fn hold(&mut self, packet: QuorumPacket) -> Result<bool, String> {
        if self.held.len() >= HELD_PACKETS_MAX {
            return Err(format!(
                "more than {HELD_PACKETS_MAX} packets between SNAP and NEWLEADER"
            ));
        }
        let ends = !matches!(
            packet.kind,
            kind::PROPOSAL | kind::COMMIT | kind::INFORM | kind::PING
        );
        self.held.push(packet);
        Ok(ends)
    }

    /// Applies every transaction committed before NEWLEADER to the streamed tree, in zxid
    /// order, as ZooKeeper's learner does.
    pub fn settle(self) -> Result<Settled, String> {
        let FuzzySnap {
            zxid,
            mut tree,
            held,
        } = self;
        let committed = held
            .iter()
            .filter(|packet| packet.kind == kind::COMMIT || packet.kind == kind::INFORM)
            .map(|packet| packet.zxid)
            .max()
            .unwrap_or(zxid);
        let mut absorbed = 0;
        let mut digest_matched = None;
        let mut last_queued: Zxid = 0;
        let mut rest = Vec::with_capacity(held.len());
        for packet in held {
            match packet.kind {
                kind::PROPOSAL | kind::INFORM if packet.zxid <= committed => {
                    let data = packet.data.as_deref().ok_or_else(|| {
                        format!(
                            "{} {:#x} without data",
                            kind::name(packet.kind),
                            packet.zxid
                        )
                    })?;
                    let entry = decode_entry(data).map_err(|error| {
                        format!("{} {:#x}: {error}", kind::name(packet.kind), packet.zxid)
                    })?;
                    if entry.header.zxid != packet.zxid {
                        return Err(format!(
                            "{} zxid {:#x} carries txn {:#x}",
                            kind::name(packet.kind),
                            packet.zxid,
                            entry.header.zxid
                        ));
                    }
                    continuous(last_queued, packet.zxid)?;
                    last_queued = packet.zxid;
                    tree.process(&entry.header, &entry.txn);
                    absorbed += 1;
                    if let Some(digest) = entry
                        .digest
                        .filter(|digest| digest.version == crate::tree::digest::DIGEST_VERSION)
                    {
                        digest_matched = Some(digest.tree_digest == tree.digest());
                    }
                }
                kind::COMMIT if packet.zxid <= committed => {
                    if packet.zxid > last_queued && packet.zxid > zxid {
                        return Err(format!("COMMIT {:#x} of nothing proposed", packet.zxid));
                    }
                }
                _ => {
                    if packet.kind == kind::PROPOSAL {
                        continuous(last_queued, packet.zxid)?;
                        last_queued = packet.zxid;
                    }
                    rest.push(packet);
                }
            }
        }
        let zxid = zxid.max(committed);
        tree.last_zxid = zxid;
        Ok(Settled {
            zxid,
            tree,
            absorbed,
            digest_matched,
            rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zkformat::opcode;
    use crate::zkformat::txn::{encode_entry, TxnHeader, ZkEntry, ZkTxn};

    fn header(zxid: Zxid, op: i32) -> TxnHeader {
        TxnHeader {
            client_id: 7,
            cxid: zxid as i32,
            zxid,
            time_ms: 1_000 + zxid,
            op,
        }
    }

    fn create(zxid: Zxid, path: &str, data: &[u8], parent_cversion: i32) -> (TxnHeader, ZkTxn) {
        (
            header(zxid, opcode::CREATE),
            ZkTxn::Create {
                op: opcode::CREATE,
                path: path.into(),
                data: Some(data.to_vec()),
                acl: crate::tree::acl::open_acl(),
                ephemeral: false,
                parent_cversion,
            },
        )
    }

    fn delete(zxid: Zxid, path: &str) -> (TxnHeader, ZkTxn) {
        (
            header(zxid, opcode::DELETE),
            ZkTxn::Delete { path: path.into() },
        )
    }

    fn set_data(zxid: Zxid, path: &str, data: &[u8], version: i32) -> (TxnHeader, ZkTxn) {
        (
            header(zxid, opcode::SET_DATA),
            ZkTxn::SetData {
                path: path.into(),
                data: Some(data.to_vec()),
                version,
            },
        )
    }

    fn proposal(kind_of: i32, txn: &(TxnHeader, ZkTxn), digest: Option<i64>) -> QuorumPacket {
        let entry = ZkEntry {
            header: txn.0,
            txn: txn.1.clone(),
            digest: digest.map(|tree_digest| crate::zkformat::txn::TxnDigest {
                version: crate::tree::digest::DIGEST_VERSION,
                tree_digest,
            }),
        };
        QuorumPacket::new(kind_of, txn.0.zxid, Some(encode_entry(&entry)))
    }

    fn commit(zxid: Zxid) -> QuorumPacket {
        QuorumPacket::new(kind::COMMIT, zxid, None)
    }

    /// The leader's tree as it moves through `txns` from `base`.
    fn leader_tree(base: &ZkTree, txns: &[&(TxnHeader, ZkTxn)]) -> ZkTree {
        let mut tree = base.clone();
        for (header, txn) in txns {
            tree.process(header, txn);
        }
        tree
    }

    #[test]
    fn commits_before_newleader_are_applied_to_a_fuzzy_walk_with_zookeepers_tolerance() {
        // The leader's tree at the SNAP's zxid 0x10: /a and /b.
        let mut base = ZkTree::initial();
        base.process(
            &create(0x0f, "/a", b"a", 0).0,
            &create(0x0f, "/a", b"a", 0).1,
        );
        base.process(
            &create(0x10, "/b", b"b", 1).0,
            &create(0x10, "/b", b"b", 1).1,
        );
        let create_c = create(0x11, "/c", b"c", 2);
        let delete_a = delete(0x12, "/a");
        let set_b = set_data(0x13, "/b", b"b2", 1);
        let create_d = create(0x14, "/d", b"d", 4);
        let committed = [&create_c, &delete_a, &set_b];
        let settled_leader = leader_tree(&base, &committed);
        // The walk saw /c created and /a deleted, but not /b's new data: replaying the create
        // finds /c (NodeExists) and the delete misses /a (NoNode), both taken as ZooKeeper
        // takes them.
        let walked = leader_tree(&base, &[&create_c, &delete_a]);
        assert_ne!(walked.digest(), settled_leader.digest());

        let mut sync = FuzzySnap::new(0x10, walked);
        let packets = [
            proposal(kind::PROPOSAL, &create_c, None),
            commit(0x11),
            proposal(kind::PROPOSAL, &delete_a, None),
            QuorumPacket::new(kind::PING, 0x12, None),
            commit(0x12),
            proposal(kind::PROPOSAL, &set_b, Some(settled_leader.digest())),
            commit(0x13),
            proposal(kind::PROPOSAL, &create_d, None),
        ];
        for packet in packets {
            assert!(!sync.hold(packet).expect("held"));
        }
        assert!(sync
            .hold(QuorumPacket::new(kind::NEWLEADER, 1 << 32, None))
            .expect("held"));
        let settled = sync.settle().expect("settled");

        assert_eq!(settled.zxid, 0x13);
        assert_eq!(settled.absorbed, 3);
        assert_eq!(settled.digest_matched, Some(true));
        assert_eq!(settled.tree.digest(), settled_leader.digest());
        assert!(settled.tree.get("/a").is_none());
        assert_eq!(
            settled.tree.get("/b").and_then(|node| node.data.clone()),
            Some(b"b2".to_vec())
        );
        let rest: Vec<(i32, Zxid)> = settled
            .rest
            .iter()
            .map(|packet| (packet.kind, packet.zxid))
            .collect();
        assert_eq!(
            rest,
            vec![
                (kind::PING, 0x12),
                (kind::PROPOSAL, 0x14),
                (kind::NEWLEADER, 1 << 32)
            ]
        );
    }

    #[test]
    fn an_exact_walk_with_nothing_committed_is_handed_on_unchanged() {
        let mut base = ZkTree::initial();
        let create_a = create(0x05, "/a", b"a", 0);
        base.process(&create_a.0, &create_a.1);
        let digest = base.digest();
        let mut sync = FuzzySnap::new(0x05, base);
        let create_b = create(0x06, "/b", b"b", 1);
        assert!(!sync
            .hold(proposal(kind::PROPOSAL, &create_b, None))
            .expect("held"));
        assert!(sync
            .hold(QuorumPacket::new(kind::NEWLEADER, 1 << 32, None))
            .expect("held"));
        let settled = sync.settle().expect("settled");
        assert_eq!(settled.zxid, 0x05);
        assert_eq!(settled.absorbed, 0);
        assert_eq!(settled.digest_matched, None);
        assert_eq!(settled.tree.digest(), digest);
        assert_eq!(settled.rest.len(), 2);
    }

    #[test]
    fn a_gap_in_the_committed_proposals_or_a_commit_of_nothing_is_refused() {
        let create_a = create(0x06, "/a", b"a", 0);
        let create_b = create(0x08, "/b", b"b", 1);
        let mut sync = FuzzySnap::new(0x05, ZkTree::initial());
        for packet in [
            proposal(kind::PROPOSAL, &create_a, None),
            proposal(kind::PROPOSAL, &create_b, None),
            commit(0x08),
        ] {
            sync.hold(packet).expect("held");
        }
        let error = sync.settle().expect_err("a gap");
        assert!(error.contains("expected 0x7"), "{error}");

        let mut sync = FuzzySnap::new(0x05, ZkTree::initial());
        sync.hold(commit(0x07)).expect("held");
        let error = sync.settle().expect_err("nothing proposed");
        assert!(error.contains("of nothing proposed"), "{error}");
    }
}
