//! [pure] The data tree: immutable versions, the transactions that move from one version to
//! the next, and the watch events each transaction implies.
//!
//! A `TreeVersion` is a persistent map from path to `Arc<Node>`; applying a transaction builds
//! the next version sharing every unchanged node with the previous one, so a version can be
//! handed to every core as an `Arc` and read without locks while the next one is built.
//! Application is deterministic: the same transactions applied to the same version give the
//! same version, which is what the log, recovery and replication rely on.

pub mod acl;
pub mod path;

use std::sync::Arc;

use imbl::{HashMap, OrdSet};

use crate::jute::protocol::{ErrorCode, EventType};
use crate::jute::records::{Acl, Stat};

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// `EphemeralType` extended types: the high byte 0xff marks an extended owner, and for TTL
/// nodes the low 40 bits hold the TTL in milliseconds.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
pub const TTL_MAX_MS: i64 = 0x0000_00ff_ffff_ffff;

pub fn ttl_owner(ttl_ms: i64) -> i64 {
    EXTENDED_MASK | ttl_ms
}

/// What kind of node an `ephemeralOwner` value denotes (EphemeralType.get).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

impl NodeKind {
    pub fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & EXTENDED_MASK == EXTENDED_MASK && owner & 0x00ff_ff00_0000_0000 == 0 {
            NodeKind::Ttl(owner & TTL_MAX_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }
}

/// The persisted metadata of a node (StatPersisted). `numChildren` and `dataLength` are
/// derived from the node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// None when the node was created or set with null data (distinct from empty).
    pub data: Option<Arc<[u8]>>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: NodeStat,
    pub children: OrdSet<Arc<str>>,
}

impl Node {
    pub fn to_stat(&self) -> Stat {
        Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            // The stored cversion counts creates; clients see creates plus deletes, and every
            // create without a delete is a child still present (DataNode.copyStat).
            cversion: self
                .stat
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(self.children.len() as i32),
            aversion: self.stat.aversion,
            // Containers and TTL nodes show no owner to clients (DataNode.getClientEphemeralOwner).
            ephemeral_owner: match self.kind() {
                NodeKind::Ephemeral(owner) => owner,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |data| data.len() as i32),
            num_children: self.children.len() as i32,
            pzxid: self.stat.pzxid,
        }
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    pub fn data_vec(&self) -> Option<Vec<u8>> {
        self.data.as_ref().map(|data| data.to_vec())
    }
}

/// A transaction: a validated change, as the log records it and every replica applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
    },
    /// A request that failed validation still takes a zxid in ZooKeeper (ErrorTxn).
    Error {
        code: ErrorCode,
    },
    /// All or nothing. A failed multi is recorded as a Multi of Error txns.
    Multi {
        ops: Vec<Txn>,
    },
    CreateSession {
        session_id: i64,
        timeout_ms: i32,
    },
    /// Closes a session and deletes its ephemerals (listed at prep time, in order).
    CloseSession {
        session_id: i64,
        ephemerals: Vec<String>,
    },
}

/// What applying one transaction produced for the client that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    Error(ErrorCode),
    Multi(Vec<TxnResult>),
    SessionCreated,
    SessionClosed,
}

/// A watch trigger: the event type, the path, and the ACL of the node it concerns, so that
/// each core can drop it for connections without READ on that node (ZooKeeper 3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub path: Arc<str>,
    pub event: EventType,
    pub acl: Arc<Vec<Acl>>,
    pub zxid: i64,
    /// Set for NodeDeleted: the paths' child watches are triggered too, once per watcher.
    pub also_child_watches: bool,
}

/// Broken invariant: a validated transaction could not be applied. The server must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction does not apply to the tree at zxid {zxid:#x}: {reason}")]
pub struct ApplyError {
    pub zxid: i64,
    pub reason: String,
}

/// One consistent, immutable state of the tree.
#[derive(Debug, Clone)]
pub struct TreeVersion {
    nodes: HashMap<Arc<str>, Arc<Node>>,
    /// Paths of each session's ephemerals (DataTree.ephemerals).
    ephemerals: HashMap<i64, OrdSet<Arc<str>>>,
    containers: OrdSet<Arc<str>>,
    ttls: OrdSet<Arc<str>>,
    /// The zxid of the last transaction applied.
    pub zxid: i64,
}

impl Default for TreeVersion {
    fn default() -> Self {
        TreeVersion::new()
    }
}

impl TreeVersion {
    /// The empty tree of a fresh server: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config` (DataTree's constructor), all with zero stats.
    pub fn new() -> TreeVersion {
        let open = Arc::new(acl::open_acl());
        let empty_node = |acl: Arc<Vec<Acl>>, data: Option<Arc<[u8]>>| Node {
            data,
            acl,
            stat: NodeStat::default(),
            children: OrdSet::new(),
        };
        let mut nodes = HashMap::new();
        let mut root = empty_node(open.clone(), Some(Arc::from(&b""[..])));
        root.children.insert(Arc::from("zookeeper"));
        let mut system = empty_node(open.clone(), Some(Arc::from(&b""[..])));
        system.children.insert(Arc::from("quota"));
        system.children.insert(Arc::from("config"));
        nodes.insert(Arc::from("/"), Arc::new(root));
        nodes.insert(Arc::from("/zookeeper"), Arc::new(system));
        nodes.insert(
            Arc::from("/zookeeper/quota"),
            Arc::new(empty_node(open, Some(Arc::from(&b""[..])))),
        );
        nodes.insert(
            Arc::from("/zookeeper/config"),
            Arc::new(Node {
                // Standalone ZooKeeper shows aversion -1 on the config node.
                stat: NodeStat {
                    aversion: -1,
                    ..NodeStat::default()
                },
                ..empty_node(Arc::new(acl::read_acl()), Some(Arc::from(&b""[..])))
            }),
        );
        TreeVersion {
            nodes,
            ephemerals: HashMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            zxid: 0,
        }
    }

    /// The node at `path`. The empty path is the root, as in ZooKeeper's DataTree, which
    /// keys the root under "" as well as "/" (so `exists("")` finds it).
    pub fn get(&self, path: &str) -> Option<&Arc<Node>> {
        if path.is_empty() {
            return self.nodes.get("/");
        }
        self.nodes.get(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Children names in sorted order.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.get(path)
            .map(|node| node.children.iter().map(|name| name.to_string()).collect())
    }

    /// getAllChildrenNumber: every descendant of `path` (ZooKeeper counts the `/zookeeper`
    /// subtree too when asked about the root).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(current) = stack.pop() {
            if let Some(node) = self.get(&current) {
                count += node.children.len();
                for child in node.children.iter() {
                    stack.push(path::join(&current, child));
                }
            }
        }
        count
    }

    pub fn ephemerals_of(&self, session_id: i64) -> Vec<String> {
        self.ephemerals
            .get(&session_id)
            .map(|paths| paths.iter().map(|path| path.to_string()).collect())
            .unwrap_or_default()
    }

    /// Sessions that own at least one ephemeral, with their counts (for `dump`).
    pub fn ephemeral_owners(&self) -> Vec<(i64, Vec<String>)> {
        let mut owners: Vec<(i64, Vec<String>)> = self
            .ephemerals
            .iter()
            .map(|(session, paths)| (*session, paths.iter().map(|p| p.to_string()).collect()))
            .collect();
        owners.sort();
        owners
    }

    pub fn ephemeral_node_count(&self) -> usize {
        self.ephemerals.values().map(|paths| paths.len()).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &Arc<str>> {
        self.containers.iter()
    }

    pub fn ttl_nodes(&self) -> impl Iterator<Item = &Arc<str>> {
        self.ttls.iter()
    }

    /// Total bytes of paths and data (mntr's approximate_data_size).
    pub fn approximate_data_size(&self) -> usize {
        self.nodes
            .iter()
            .map(|(path, node)| path.len() + node.data.as_ref().map_or(0, |data| data.len()))
            .sum()
    }

    /// Every path, sorted (for dumps and tests).
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.nodes.keys().map(|path| path.to_string()).collect();
        paths.sort();
        paths
    }

    /// Applies `txn` at `zxid` with wall-clock `time_ms`, returning the result for the
    /// client and appending the watch triggers it implies. On error `self` may be partially
    /// changed; callers apply to a clone they discard on error.
    pub fn apply(
        &mut self,
        zxid: i64,
        time_ms: i64,
        txn: &Txn,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<TxnResult, ApplyError> {
        let result = self.apply_inner(zxid, time_ms, txn, triggers)?;
        self.zxid = zxid;
        Ok(result)
    }

    fn apply_inner(
        &mut self,
        zxid: i64,
        time_ms: i64,
        txn: &Txn,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<TxnResult, ApplyError> {
        let fail = |reason: String| ApplyError { zxid, reason };
        match txn {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                let (parent_path, name) =
                    path::split_parent(path).ok_or_else(|| fail(format!("create of {path}")))?;
                if self.nodes.contains_key(path.as_str()) {
                    return Err(fail(format!("create of existing {path}")));
                }
                let parent = self
                    .nodes
                    .get(parent_path)
                    .ok_or_else(|| fail(format!("create of {path} without parent")))?;
                let mut parent = Node::clone(parent);
                parent.children.insert(Arc::from(name));
                if *parent_cversion > parent.stat.cversion {
                    parent.stat.cversion = *parent_cversion;
                    parent.stat.pzxid = zxid;
                }
                let parent_acl = parent.acl.clone();
                // Most nodes carry their parent's ACL (typically OPEN_ACL_UNSAFE everywhere):
                // share it rather than store a copy per node (ZooKeeper's
                // ReferenceCountedACLCache serves the same purpose).
                let node_acl = if **acl == *parent_acl {
                    parent_acl.clone()
                } else {
                    Arc::new(acl.clone())
                };
                let node = Node {
                    data: data.as_deref().map(Arc::from),
                    acl: node_acl,
                    stat: NodeStat {
                        czxid: zxid,
                        mzxid: zxid,
                        pzxid: zxid,
                        ctime: time_ms,
                        mtime: time_ms,
                        version: 0,
                        cversion: 0,
                        aversion: 0,
                        ephemeral_owner: *ephemeral_owner,
                    },
                    children: OrdSet::new(),
                };
                let stat = node.to_stat();
                let key: Arc<str> = Arc::from(path.as_str());
                match node.kind() {
                    NodeKind::Container => {
                        self.containers.insert(key.clone());
                    }
                    NodeKind::Ttl(_) => {
                        self.ttls.insert(key.clone());
                    }
                    NodeKind::Ephemeral(owner) => {
                        self.ephemerals
                            .entry(owner)
                            .or_default()
                            .insert(key.clone());
                    }
                    NodeKind::Persistent => {}
                }
                let node_acl = node.acl.clone();
                self.nodes.insert(key.clone(), Arc::new(node));
                self.nodes.insert(Arc::from(parent_path), Arc::new(parent));
                triggers.push(WatchTrigger {
                    path: key,
                    event: EventType::NodeCreated,
                    acl: node_acl,
                    zxid,
                    also_child_watches: false,
                });
                triggers.push(WatchTrigger {
                    path: Arc::from(parent_path),
                    event: EventType::NodeChildrenChanged,
                    acl: parent_acl,
                    zxid,
                    also_child_watches: false,
                });
                Ok(TxnResult::Created {
                    path: path.clone(),
                    stat,
                })
            }
            Txn::Delete { path } => {
                self.delete(zxid, path, triggers)?;
                Ok(TxnResult::Deleted)
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                let node = self
                    .nodes
                    .get(path.as_str())
                    .ok_or_else(|| fail(format!("setData of missing {path}")))?;
                let mut node = Node::clone(node);
                node.data = data.as_deref().map(Arc::from);
                node.stat.version = *version;
                node.stat.mzxid = zxid;
                node.stat.mtime = time_ms;
                let stat = node.to_stat();
                triggers.push(WatchTrigger {
                    path: Arc::from(path.as_str()),
                    event: EventType::NodeDataChanged,
                    acl: node.acl.clone(),
                    zxid,
                    also_child_watches: false,
                });
                self.nodes.insert(Arc::from(path.as_str()), Arc::new(node));
                Ok(TxnResult::DataSet { stat })
            }
            Txn::SetAcl { path, acl, version } => {
                let node = self
                    .nodes
                    .get(path.as_str())
                    .ok_or_else(|| fail(format!("setACL of missing {path}")))?;
                let mut node = Node::clone(node);
                node.acl = Arc::new(acl.clone());
                node.stat.aversion = *version;
                let stat = node.to_stat();
                self.nodes.insert(Arc::from(path.as_str()), Arc::new(node));
                Ok(TxnResult::AclSet { stat })
            }
            Txn::Check { .. } => Ok(TxnResult::Checked),
            Txn::Error { code } => Ok(TxnResult::Error(*code)),
            Txn::Multi { ops } => {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    results.push(self.apply_inner(zxid, time_ms, op, triggers)?);
                }
                Ok(TxnResult::Multi(results))
            }
            Txn::CreateSession { .. } => Ok(TxnResult::SessionCreated),
            Txn::CloseSession {
                session_id,
                ephemerals,
            } => {
                for path in ephemerals {
                    // The list was taken at prep time; a node deleted since then by an
                    // earlier transaction of the same batch is simply gone.
                    if self.nodes.contains_key(path.as_str()) {
                        self.delete(zxid, path, triggers)?;
                    }
                }
                self.ephemerals.remove(session_id);
                Ok(TxnResult::SessionClosed)
            }
        }
    }

    fn delete(
        &mut self,
        zxid: i64,
        path: &str,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<(), ApplyError> {
        let fail = |reason: String| ApplyError { zxid, reason };
        let (parent_path, name) =
            path::split_parent(path).ok_or_else(|| fail(format!("delete of {path}")))?;
        let node = self
            .nodes
            .remove(path)
            .ok_or_else(|| fail(format!("delete of missing {path}")))?;
        if !node.children.is_empty() {
            return Err(fail(format!("delete of {path} with children")));
        }
        let parent = self
            .nodes
            .get(parent_path)
            .ok_or_else(|| fail(format!("delete of {path} without parent")))?;
        let mut parent = Node::clone(parent);
        parent.children.remove(name);
        // DataTree.deleteNode: the parent's pzxid moves forward, its cversion does not.
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        self.nodes.insert(Arc::from(parent_path), Arc::new(parent));
        match node.kind() {
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Ephemeral(owner) => {
                if let Some(paths) = self.ephemerals.get_mut(&owner) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            NodeKind::Persistent => {}
        }
        triggers.push(WatchTrigger {
            path: Arc::from(path),
            event: EventType::NodeDeleted,
            acl: node.acl.clone(),
            zxid,
            also_child_watches: true,
        });
        triggers.push(WatchTrigger {
            path: Arc::from(parent_path),
            event: EventType::NodeChildrenChanged,
            acl: parent_acl,
            zxid,
            also_child_watches: false,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, parent_cversion: i32) -> Txn {
        Txn::Create {
            path: path.into(),
            data: Some(b"x".to_vec()),
            acl: acl::open_acl(),
            ephemeral_owner: 0,
            parent_cversion,
        }
    }

    #[test]
    fn fresh_tree_has_the_system_nodes() {
        let tree = TreeVersion::new();
        assert_eq!(
            tree.paths(),
            vec!["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
        );
        assert_eq!(tree.descendant_count("/"), 3);
        assert_eq!(tree.get("/").map(|n| n.to_stat().num_children), Some(1));
    }

    #[test]
    fn create_and_delete_move_parent_stat_like_data_tree() {
        let mut tree = TreeVersion::new();
        let mut triggers = Vec::new();
        let result = tree.apply(5, 1000, &create("/a", 1), &mut triggers);
        assert!(matches!(result, Ok(TxnResult::Created { .. })));
        let root = tree.get("/").map(|n| n.to_stat());
        assert_eq!(
            root.map(|s| (s.cversion, s.pzxid, s.num_children)),
            Some((0, 5, 2)) // visible cversion = creates * 2 - children
        );
        let node = tree.get("/a").map(|n| n.to_stat());
        assert_eq!(
            node.map(|s| (s.czxid, s.mzxid, s.pzxid, s.ctime, s.data_length)),
            Some((5, 5, 5, 1000, 1))
        );
        assert_eq!(triggers.len(), 2);
        assert_eq!(triggers[0].event, EventType::NodeCreated);
        assert_eq!(&*triggers[1].path, "/");

        let before = tree.clone();
        tree.apply(6, 1001, &Txn::Delete { path: "/a".into() }, &mut triggers)
            .ok();
        let root = tree.get("/").map(|n| n.to_stat());
        // Deleting a child advances pzxid but not cversion.
        assert_eq!(
            root.map(|s| (s.cversion, s.pzxid, s.num_children)),
            Some((1, 6, 1))
        );
        // The previous version is untouched.
        assert!(before.get("/a").is_some());
        assert_eq!(tree.zxid, 6);
    }

    #[test]
    fn ephemerals_are_indexed_by_owner_and_removed_on_close() {
        let mut tree = TreeVersion::new();
        let mut triggers = Vec::new();
        let txn = Txn::Create {
            path: "/e".into(),
            data: None,
            acl: acl::open_acl(),
            ephemeral_owner: 42,
            parent_cversion: 1,
        };
        assert!(tree.apply(1, 0, &txn, &mut triggers).is_ok());
        assert_eq!(tree.ephemerals_of(42), vec!["/e".to_string()]);
        assert_eq!(tree.get("/e").map(|n| n.to_stat().data_length), Some(0));
        let close = Txn::CloseSession {
            session_id: 42,
            ephemerals: vec!["/e".into()],
        };
        assert!(tree.apply(2, 0, &close, &mut triggers).is_ok());
        assert!(tree.get("/e").is_none());
        assert!(tree.ephemerals_of(42).is_empty());
    }

    #[test]
    fn node_kinds_decode_ephemeral_owner() {
        assert_eq!(NodeKind::from_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::from_owner(CONTAINER_OWNER), NodeKind::Container);
        assert_eq!(NodeKind::from_owner(ttl_owner(5000)), NodeKind::Ttl(5000));
        assert_eq!(
            NodeKind::from_owner(0x0123_4567_89ab_cdef),
            NodeKind::Ephemeral(0x0123_4567_89ab_cdef)
        );
    }

    #[test]
    fn applying_to_an_invalid_state_is_an_error_not_a_panic() {
        let mut tree = TreeVersion::new();
        let mut triggers = Vec::new();
        assert!(tree
            .apply(
                1,
                0,
                &Txn::Delete {
                    path: "/nope".into()
                },
                &mut triggers
            )
            .is_err());
        assert!(tree.apply(1, 0, &create("/a/b", 1), &mut triggers).is_err());
    }
}
