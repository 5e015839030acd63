//! [pure] ZooKeeper's DataTree as a snapshot loads it and its log replays onto it: the exact
//! rules of DataTree.processTxn (createNode, deleteNode, setData, setACL, killSession, multi,
//! the NODEEXISTS cversion fix-up) and FileTxnSnapLog.processTransaction (sessions), so that a
//! fuzzy snapshot plus the log after it gives the tree ZooKeeper itself would serve.
//!
//! ZooKeeper's snapshot is fuzzy: it is written while transactions go on being applied, so it
//! may already hold the effect of transactions after its zxid. Replay therefore ignores the
//! failures it causes (a create of a node already there, a delete of one already gone),
//! exactly as ZooKeeper does ("It should be safe to ignore these").
//!
//! The tree digest (DigestCalculator, NodeHashMapImpl, AdHash) is kept as ZooKeeper keeps it,
//! with the node digest of `tree::digest` (the one the live tree keeps too).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::jute::records::Acl;
use crate::tree::digest::node_digest;
use crate::tree::{ttl_owner, NodeKind, NodeStat, CONTAINER_OWNER};

use super::opcode;
use super::txn::{TxnHeader, ZkTxn};

/// A DataNode: data, ACL and StatPersisted (cversion as stored: the number of creates under
/// it, see `tree::Node::to_stat`), and its children's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkNode {
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub stat: NodeStat,
    pub children: BTreeSet<String>,
}

/// The tree, keyed by path ("/" for the root).
#[derive(Debug, Clone, Default)]
pub struct ZkTree {
    nodes: HashMap<String, ZkNode>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    digest: u64,
    /// DataTree.lastProcessedZxid.
    pub last_zxid: i64,
    /// Sessions (FileTxnSnapLog's map): id -> timeout in ms.
    pub sessions: BTreeMap<i64, i32>,
}

/// The parent of `path` ("/" for a child of the root), or None for the root or a path
/// without a slash.
pub fn parent_of(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

fn digest_of(path: &str, node: &ZkNode) -> u64 {
    node_digest(path, node.data.as_deref(), &node.stat)
}

/// Why a txn did not apply (ZooKeeper records the error code and goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    NoNode,
    NodeExists,
}

impl ZkTree {
    /// An empty tree (no root); [`ZkTree::insert_loaded`] fills it from a snapshot.
    pub fn new() -> ZkTree {
        ZkTree::default()
    }

    /// DataTree's constructor: `/`, `/zookeeper`, `/zookeeper/quota` (and `/zookeeper/config`,
    /// 3.5+), all with zero stats; the tree a log replays onto when there is no snapshot.
    pub fn initial() -> ZkTree {
        let open = crate::tree::acl::open_acl();
        let mut tree = ZkTree::new();
        let node = |children: &[&str], acl: Vec<Acl>| ZkNode {
            data: Some(Vec::new()),
            acl,
            stat: NodeStat::default(),
            children: children.iter().map(|name| name.to_string()).collect(),
        };
        tree.put("/".into(), node(&["zookeeper"], open.clone()));
        tree.put(
            "/zookeeper".into(),
            node(&["quota", "config"], open.clone()),
        );
        tree.put("/zookeeper/quota".into(), node(&[], open));
        let mut config = node(&[], crate::tree::acl::read_acl());
        config.stat.aversion = -1;
        tree.put("/zookeeper/config".into(), config);
        tree
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&ZkNode> {
        self.nodes.get(path)
    }

    /// The tree digest (NodeHashMapImpl.getDigest), as Java's signed long.
    pub fn digest(&self) -> i64 {
        self.digest as i64
    }

    /// Every path, parents before children (the order a snapshot is written in).
    pub fn paths_preorder(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            if let Some(node) = self.nodes.get(&path) {
                for child in node.children.iter().rev() {
                    stack.push(if path == "/" {
                        format!("/{child}")
                    } else {
                        format!("{path}/{child}")
                    });
                }
                out.push(path);
            }
        }
        out
    }

    fn put(&mut self, path: String, node: ZkNode) {
        self.digest = self.digest.wrapping_add(digest_of(&path, &node));
        if let NodeKind::Ephemeral(owner) = NodeKind::from_owner(node.stat.ephemeral_owner) {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(path.clone());
        }
        if let Some(old) = self.nodes.insert(path.clone(), node) {
            self.digest = self.digest.wrapping_sub(digest_of(&path, &old));
        }
    }

    fn remove(&mut self, path: &str) -> Option<ZkNode> {
        let node = self.nodes.remove(path)?;
        self.digest = self.digest.wrapping_sub(digest_of(path, &node));
        if let NodeKind::Ephemeral(owner) = NodeKind::from_owner(node.stat.ephemeral_owner) {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        Some(node)
    }

    /// Changes a node in place, keeping the digest (NodeHashMapImpl.preChange/postChange).
    fn change(&mut self, path: &str, f: impl FnOnce(&mut ZkNode)) -> bool {
        let Some(node) = self.nodes.get_mut(path) else {
            return false;
        };
        let before = digest_of(path, node);
        f(node);
        let after = digest_of(path, node);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        true
    }

    /// A node read from a snapshot (DataTree.deserialize): its parent must already be there
    /// (a snapshot lists parents first). The root is the path "" in the file, "/" here.
    pub fn insert_loaded(&mut self, path: &str, mut node: ZkNode) -> Result<(), String> {
        node.children.clear();
        if path.is_empty() || path == "/" {
            self.put("/".into(), node);
            return Ok(());
        }
        let (parent, name) =
            parent_of(path).ok_or_else(|| format!("invalid path {path:?} in the snapshot"))?;
        if !self.nodes.contains_key(parent) {
            return Err(format!(
                "invalid data tree: no parent {parent} of {path} (DataTree.deserialize)"
            ));
        }
        let name = name.to_string();
        // The children set is not part of the digest.
        if let Some(parent) = self.nodes.get_mut(parent) {
            parent.children.insert(name);
        }
        self.put(path.to_string(), node);
        Ok(())
    }

    /// ZooKeeper's sessions of the ephemerals of `owner`.
    pub fn ephemerals_of(&self, owner: i64) -> Vec<String> {
        self.ephemerals
            .get(&owner)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// FileTxnSnapLog.processTransaction + DataTree.processTxn for one logged txn.
    pub fn process(&mut self, header: &TxnHeader, txn: &ZkTxn) {
        match txn {
            ZkTxn::CreateSession { timeout_ms } => {
                self.sessions.insert(header.client_id, *timeout_ms);
            }
            ZkTxn::CloseSession { .. } => {
                self.sessions.remove(&header.client_id);
            }
            _ => {}
        }
        let _ = self.process_one(header, txn);
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
    }

    fn process_one(&mut self, header: &TxnHeader, txn: &ZkTxn) -> Result<(), ReplayError> {
        let zxid = header.zxid;
        let time = header.time_ms;
        let result = match txn {
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
                ..
            } => {
                let owner = if *ephemeral { header.client_id } else { 0 };
                self.create_node(path, data, acl, owner, *parent_cversion, zxid, time)
            }
            ZkTxn::CreateContainer {
                path,
                data,
                acl,
                parent_cversion,
            } => self.create_node(
                path,
                data,
                acl,
                CONTAINER_OWNER,
                *parent_cversion,
                zxid,
                time,
            ),
            ZkTxn::CreateTtl {
                path,
                data,
                acl,
                parent_cversion,
                ttl_ms,
            } => self.create_node(
                path,
                data,
                acl,
                ttl_owner(*ttl_ms),
                *parent_cversion,
                zxid,
                time,
            ),
            ZkTxn::Delete { path } => self.delete_node(path, zxid),
            ZkTxn::SetData {
                path,
                data,
                version,
            } => {
                if self.change(path, |node| {
                    node.data = data.clone();
                    node.stat.mtime = time;
                    node.stat.mzxid = zxid;
                    node.stat.version = *version;
                }) {
                    Ok(())
                } else {
                    Err(ReplayError::NoNode)
                }
            }
            ZkTxn::SetAcl { path, acl, version } => {
                // The ACL is not part of the digest, the aversion is.
                if self.change(path, |node| {
                    node.stat.aversion = *version;
                    node.acl = acl.clone();
                }) {
                    Ok(())
                } else {
                    Err(ReplayError::NoNode)
                }
            }
            ZkTxn::CloseSession { paths } => {
                self.kill_session(header.client_id, zxid, paths.as_deref());
                Ok(())
            }
            ZkTxn::Check { .. } | ZkTxn::Error { .. } | ZkTxn::CreateSession { .. } => Ok(()),
            ZkTxn::Multi { ops } => {
                // A multi with an error sub-txn was rolled back at prep: none of its other
                // sub-txns applies (they are turned into errors).
                let failed = ops.iter().any(|op| matches!(op, ZkTxn::Error { .. }));
                if !failed {
                    for op in ops {
                        let _ = self.process_one(header, op);
                    }
                }
                Ok(())
            }
        };
        // DataTree.processTxn: a create (opcode create only) that finds its node already
        // there still moves the parent's cversion and pzxid forward, which a session closed
        // and a node re-created after the parent was serialized would otherwise lose.
        if let (
            Err(ReplayError::NodeExists),
            ZkTxn::Create {
                op: opcode::CREATE,
                path,
                parent_cversion,
                ..
            },
        ) = (&result, txn)
        {
            if let Some((parent, _)) = parent_of(path) {
                let parent = parent.to_string();
                self.set_cversion_pzxid(&parent, *parent_cversion, zxid);
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<(), ReplayError> {
        let (parent, name) = parent_of(path).ok_or(ReplayError::NoNode)?;
        let parent = parent.to_string();
        let name = name.to_string();
        if !self.nodes.contains_key(&parent) {
            return Err(ReplayError::NoNode);
        }
        if let Some(existing) = self.nodes.get_mut(path) {
            // DataTree.createNode replaces the existing child's ACL before it throws.
            existing.acl = acl.to_vec();
            return Err(ReplayError::NodeExists);
        }
        self.change(&parent, |node| {
            let cversion = if parent_cversion == -1 {
                node.stat.cversion + 1
            } else {
                parent_cversion
            };
            if cversion > node.stat.cversion {
                node.stat.cversion = cversion;
                node.stat.pzxid = zxid;
            }
            node.children.insert(name);
        });
        self.put(
            path.to_string(),
            ZkNode {
                data: data.clone(),
                acl: acl.to_vec(),
                stat: NodeStat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime: time,
                    mtime: time,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: owner,
                },
                children: BTreeSet::new(),
            },
        );
        Ok(())
    }

    fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), ReplayError> {
        let (parent, name) = parent_of(path).ok_or(ReplayError::NoNode)?;
        let parent = parent.to_string();
        let name = name.to_string();
        // "The child might already be deleted during taking fuzzy snapshot, but we still need
        // to update the pzxid here before throw exception for no such child."
        let parent_found = self.change(&parent, |node| {
            node.children.remove(&name);
            if zxid > node.stat.pzxid {
                node.stat.pzxid = zxid;
            }
        });
        if !parent_found {
            return Err(ReplayError::NoNode);
        }
        self.remove(path).map(|_| ()).ok_or(ReplayError::NoNode)
    }

    fn set_cversion_pzxid(&mut self, path: &str, cversion: i32, zxid: i64) {
        self.change(path, |node| {
            let cversion = if cversion == -1 {
                node.stat.cversion + 1
            } else {
                cversion
            };
            if cversion > node.stat.cversion {
                node.stat.cversion = cversion;
                node.stat.pzxid = zxid;
            }
        });
    }

    /// DataTree.killSession: the paths the txn names, then any other ephemeral of the session.
    fn kill_session(&mut self, session: i64, zxid: i64, paths: Option<&[String]>) {
        let mut local: BTreeSet<String> = self.ephemerals.remove(&session).unwrap_or_default();
        if let Some(paths) = paths {
            for path in paths {
                let _ = self.delete_node(path, zxid);
                local.remove(path);
            }
        }
        for path in local {
            let _ = self.delete_node(&path, zxid);
        }
    }

    /// Consumes the tree: every node, parents first.
    pub fn into_nodes(mut self) -> Vec<(String, ZkNode)> {
        let order = self.paths_preorder();
        order
            .into_iter()
            .filter_map(|path| self.nodes.remove(&path).map(|node| (path, node)))
            .collect()
    }
}
