//! [pure] The apply stage: validated transactions applied to the pending tree, cut into steps
//! (one published tree version each), with the replies that follow them, until the batch is
//! sealed for publication.
//!
//! The pending tree is the tree every write is prepped against: it holds every transaction
//! applied so far, durable or not (ZooKeeper's outstanding changes). A batch is what is
//! applied between two seals: its records go to the log together, and its steps and replies
//! are published together once the last of them is durable (standalone) or committed
//! (ensemble). The shells decide when to seal; this stage only keeps the order:
//!
//! - a reply is tagged with the number of the batch's transactions applied before it, so a
//!   core sends it after the events and the version of exactly those transactions;
//! - a step is cut when a reply must not see the transactions after it (a `fenced` write) and
//!   at the seal; otherwise consecutive transactions share one version (one copy-on-write of
//!   the map nodes on their paths instead of one per transaction).
//!
//! No sockets, files, clocks or threads: zxids and times are inputs.

use std::sync::Arc;

use crate::tree::{ApplyError, TreeVersion, Txn, TxnResult, WatchTrigger};

use super::publish::{CoreReply, Sealed, Step};

/// The batch being built on top of the pending tree.
#[derive(Debug)]
pub struct Batch {
    /// The pending tree: every transaction applied so far.
    tree: TreeVersion,
    /// The watch triggers of the transactions applied since the last cut.
    triggers: Vec<WatchTrigger>,
    /// Per transaction since the last cut: the end of its triggers in `triggers`.
    trigger_ends: Vec<usize>,
    steps: Vec<Step>,
    /// Transactions were applied since the last cut.
    uncut: bool,
    /// Transactions applied in this batch, over all its steps.
    txns: u64,
    /// Per core, in order: (transactions of the batch before the reply, the reply).
    replies: Vec<Vec<(usize, CoreReply)>>,
    /// Sessions created (with their timeout) or closed by this batch, in order.
    session_changes: Vec<(i64, Option<i32>)>,
}

impl Batch {
    /// An empty batch on `tree` for `cores` cores.
    pub fn new(tree: TreeVersion, cores: usize) -> Batch {
        Batch {
            tree,
            triggers: Vec::new(),
            trigger_ends: Vec::new(),
            steps: Vec::new(),
            uncut: false,
            txns: 0,
            replies: (0..cores).map(|_| Vec::new()).collect(),
            session_changes: Vec::new(),
        }
    }

    /// The pending tree.
    pub fn tree(&self) -> &TreeVersion {
        &self.tree
    }

    /// The zxid of the last transaction applied.
    pub fn zxid(&self) -> i64 {
        self.tree.zxid
    }

    /// The steps cut so far in this batch (not yet sealed).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Applies `txn` at `zxid` to the pending tree. On error the tree may be partly changed:
    /// prep and apply disagree, and the caller must not go on serving from it.
    pub fn apply(&mut self, zxid: i64, time_ms: i64, txn: &Txn) -> Result<TxnResult, ApplyError> {
        let result = self.tree.apply(zxid, time_ms, txn, &mut self.triggers)?;
        match txn {
            Txn::CreateSession {
                session_id,
                timeout_ms,
            } => self.session_changes.push((*session_id, Some(*timeout_ms))),
            Txn::CloseSession { session_id, .. } => self.session_changes.push((*session_id, None)),
            _ => {}
        }
        self.uncut = true;
        self.txns += 1;
        self.trigger_ends.push(self.triggers.len());
        Ok(result)
    }

    /// Queues a reply for a connection on `core`, after the transactions applied so far.
    pub fn reply(&mut self, core: usize, reply: CoreReply) {
        let after_txns = self.txns as usize;
        if let Some(queue) = self.replies.get_mut(core) {
            queue.push((after_txns, reply));
        }
    }

    /// Makes the transactions applied since the last cut one step (one version).
    pub fn cut_step(&mut self) {
        if !std::mem::replace(&mut self.uncut, false) {
            return;
        }
        self.steps.push(Step {
            version: Arc::new(self.tree.clone()),
            triggers: std::mem::take(&mut self.triggers),
            trigger_ends: std::mem::take(&mut self.trigger_ends),
        });
    }

    /// Forgets the transactions applied since the last cut (a leader stepping down).
    pub fn drop_uncut(&mut self) {
        self.uncut = false;
        self.triggers.clear();
        self.trigger_ends.clear();
        self.txns = 0;
    }

    /// The tree was replaced (a rebase on a snapshot, a SNAP from the leader): the next step
    /// is cut from `tree`, so the cores move to it.
    pub fn replace_tree(&mut self, tree: TreeVersion) {
        self.tree = tree;
        self.uncut = true;
    }

    /// Drops everything of this batch and goes back to `tree` (the last published version):
    /// a leader that steps down answers nothing it had not published.
    pub fn abandon(&mut self, tree: TreeVersion) {
        self.tree = tree;
        self.steps.clear();
        self.drop_uncut();
        self.session_changes.clear();
        for queue in &mut self.replies {
            queue.clear();
        }
    }

    /// Ends the batch: None when it has neither a step nor a reply.
    pub fn seal(&mut self) -> Option<Sealed> {
        self.cut_step();
        let has_replies = self.replies.iter().any(|queue| !queue.is_empty());
        if self.steps.is_empty() && !has_replies {
            return None;
        }
        let cores = self.replies.len();
        Some(Sealed {
            last_zxid: self.tree.zxid,
            steps: std::mem::take(&mut self.steps),
            txns: std::mem::take(&mut self.txns),
            replies: std::mem::replace(&mut self.replies, (0..cores).map(|_| Vec::new()).collect()),
            session_changes: std::mem::take(&mut self.session_changes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl;

    fn create(path: &str) -> Txn {
        Txn::Create {
            path: path.into(),
            data: None,
            acl: acl::open_acl(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        }
    }

    fn frame(xid: i32) -> CoreReply {
        CoreReply::Frame {
            conn_id: 1,
            frame: xid.to_be_bytes().to_vec(),
            close: false,
        }
    }

    #[test]
    fn a_reply_counts_the_transactions_applied_before_it() {
        let mut batch = Batch::new(TreeVersion::new(), 2);
        batch.apply(1, 0, &create("/a")).expect("applies");
        batch.reply(1, frame(1));
        batch.apply(2, 0, &create("/b")).expect("applies");
        batch.reply(1, frame(2));
        batch.reply(0, frame(3));
        let sealed = batch.seal().expect("a batch");
        assert_eq!(sealed.last_zxid, 2);
        assert_eq!(sealed.txns, 2);
        assert_eq!(sealed.steps.len(), 1, "no cut inside: one version");
        let after: Vec<usize> = sealed.replies[1].iter().map(|(after, _)| *after).collect();
        assert_eq!(after, vec![1, 2]);
        assert_eq!(sealed.replies[0][0].0, 2);
        assert_eq!(
            sealed.steps[0].trigger_ends.len(),
            2,
            "one end per transaction"
        );
    }

    #[test]
    fn a_cut_makes_a_version_without_the_transactions_after_it() {
        let mut batch = Batch::new(TreeVersion::new(), 1);
        batch.apply(1, 0, &create("/a")).expect("applies");
        batch.cut_step();
        batch.apply(2, 0, &create("/b")).expect("applies");
        let sealed = batch.seal().expect("a batch");
        assert_eq!(sealed.steps.len(), 2);
        assert!(sealed.steps[0].version.get("/a").is_some());
        assert!(sealed.steps[0].version.get("/b").is_none());
        assert!(sealed.steps[1].version.get("/b").is_some());
        assert!(batch.seal().is_none(), "nothing left after a seal");
    }

    #[test]
    fn abandoning_goes_back_to_the_given_tree_and_answers_nothing() {
        let mut batch = Batch::new(TreeVersion::new(), 1);
        batch.apply(1, 0, &create("/a")).expect("applies");
        batch.reply(0, frame(1));
        batch.abandon(TreeVersion::new());
        assert_eq!(batch.zxid(), 0);
        assert!(batch.seal().is_none());
    }
}
