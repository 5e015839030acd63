//! [pure] The data tree: immutable versions, the transactions that move from one version to
//! the next, and the watch events each transaction implies.
//!
//! A `TreeVersion` is a snapshot base read in place (see `crate::snapshot`) plus a persistent
//! map from path to `Arc<Node>` of the nodes changed since; applying a transaction builds the
//! next version sharing every unchanged node with the previous one, so a version can be
//! handed to every core as an `Arc` and read without locks while the next one is built.
//! Application is deterministic: the same transactions applied to the same version give the
//! same version, which is what the log, recovery and replication rely on.

pub mod acl;
pub mod digest;
pub mod path;
pub mod quota;

use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};

use crate::jute::protocol::{ErrorCode, EventType};
use crate::jute::records::{Acl, Stat};
use crate::snapshot::MappedSnapshot;

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
    /// numChildren. The names are kept by the tree (`TreeVersion::children`), so that a node
    /// read from the snapshot base needs no allocation per child.
    pub child_count: usize,
    /// The node's digest (`digest::node_digest`) as the tree computed it when it stored the
    /// node; None for a node made elsewhere (read from the snapshot base, built by an import).
    /// ZooKeeper's DataNode caches its digest the same way, so that a change costs one CRC
    /// (the new state) rather than two. Only the tree sets it, and only for the node as
    /// stored: a clone that is then modified gets a fresh one when it is stored.
    pub digest_cached: Option<u32>,
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
                .wrapping_sub(self.child_count as i32),
            aversion: self.stat.aversion,
            // Containers and TTL nodes show no owner to clients (DataNode.getClientEphemeralOwner).
            ephemeral_owner: match self.kind() {
                NodeKind::Ephemeral(owner) => owner,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |data| data.len() as i32),
            num_children: self.child_count as i32,
            pzxid: self.stat.pzxid,
        }
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    pub fn data_vec(&self) -> Option<Vec<u8>> {
        self.data.as_ref().map(|data| data.to_vec())
    }

    /// The node's digest at `path`: the cached one, or computed.
    fn digest_at(&self, path: &str) -> u64 {
        match self.digest_cached {
            Some(digest) => u64::from(digest),
            None => digest::node_digest(path, self.data.as_deref(), &self.stat),
        }
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
    /// A committed reconfig: `/zookeeper/config` becomes `data` (the new configuration's
    /// text, `config::dynamic`), with version -1 as ZooKeeper's SetDataTxn of the reconfig
    /// has; every member activates the new configuration when it commits.
    Reconfig {
        data: Vec<u8>,
    },
}

/// What applying one transaction produced for the client that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet {
        stat: Stat,
    },
    AclSet {
        stat: Stat,
    },
    Checked,
    Error(ErrorCode),
    Multi(Vec<TxnResult>),
    SessionCreated,
    SessionClosed,
    /// The new `/zookeeper/config` and its Stat (the reply of a reconfig).
    Reconfigured {
        data: Vec<u8>,
        stat: Stat,
    },
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

/// One consistent, immutable state of the tree: (base, delta, zxid).
///
/// The base is a mapped snapshot read in place (absent for a tree built from scratch). The
/// delta holds every node created or changed since the base, and a tombstone for every base
/// node deleted since: a lookup consults the delta first, then the base. Applying a
/// transaction to a base node copies that node into the delta (copy-on-write). Children are
/// kept by the tree, not the node: the base lists them as a sorted range, the delta as a sorted
/// map of changes per parent, and getChildren merges the two.
#[derive(Debug, Clone)]
pub struct TreeVersion {
    base: Option<Arc<MappedSnapshot>>,
    /// Path to node for nodes changed since the base; `None` is a tombstone hiding a base node.
    nodes: HashMap<Arc<str>, Option<Arc<Node>>>,
    /// Parent path to (child name to present) for the children changed since the base: `true`
    /// for a child present in the delta, `false` for a base child deleted since.
    child_changes: HashMap<Arc<str>, OrdMap<Arc<str>, bool>>,
    node_count: usize,
    /// Sum of path and data lengths of every node (DataTree.approximateDataSize).
    data_size: usize,
    /// Paths of each session's ephemerals (DataTree.ephemerals).
    ephemerals: HashMap<i64, OrdSet<Arc<str>>>,
    containers: OrdSet<Arc<str>>,
    ttls: OrdSet<Arc<str>>,
    /// Paths with a quota (a `zookeeper_limits` node under `/zookeeper/quota`): ZooKeeper's
    /// PathTrie of quotas, see `quota`.
    quota_roots: OrdSet<Arc<str>>,
    /// ZooKeeper's tree digest (`digest`): the sum of every node's digest, mod 2^64.
    digest: u64,
    /// The `hash` history (DataTree.digestLog).
    digest_log: digest::DigestLog,
    /// The zxid of the last transaction applied.
    pub zxid: i64,
}

impl Default for TreeVersion {
    fn default() -> Self {
        TreeVersion::new()
    }
}

/// The empty path names the root, as in ZooKeeper's DataTree, which keys the root under ""
/// as well as "/" (so `exists("")` finds it).
/// Where a node lives: see [`TreeVersion::source`].
pub(crate) enum NodeSource<'a> {
    Delta(&'a Arc<Node>),
    Base(&'a Arc<MappedSnapshot>, u32),
}

fn normalize(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn data_len(node: &Node) -> usize {
    node.data.as_ref().map_or(0, |data| data.len())
}

/// ZooDefs.CONFIG_NODE.
pub const CONFIG_PATH: &str = "/zookeeper/config";

impl TreeVersion {
    /// The empty tree of a fresh server: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config` (DataTree's constructor), all with zero stats.
    pub fn new() -> TreeVersion {
        let open = Arc::new(acl::open_acl());
        let empty_node = |acl: Arc<Vec<Acl>>, child_count: usize| Node {
            data: Some(Arc::from(&b""[..])),
            acl,
            stat: NodeStat::default(),
            child_count,
            digest_cached: None,
        };
        let mut tree = TreeVersion {
            base: None,
            nodes: HashMap::new(),
            child_changes: HashMap::new(),
            node_count: 0,
            data_size: 0,
            ephemerals: HashMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            quota_roots: OrdSet::new(),
            digest: 0,
            digest_log: digest::DigestLog::default(),
            zxid: 0,
        };
        tree.insert_new("/", empty_node(open.clone(), 1));
        tree.insert_new("/zookeeper", empty_node(open.clone(), 2));
        tree.insert_new("/zookeeper/quota", empty_node(open, 0));
        tree.insert_new(
            "/zookeeper/config",
            Node {
                // Standalone ZooKeeper shows aversion -1 on the config node.
                stat: NodeStat {
                    aversion: -1,
                    ..NodeStat::default()
                },
                ..empty_node(Arc::new(acl::read_acl()), 0)
            },
        );
        tree
    }

    /// A tree of exactly `nodes` (each with its `child_count` set), at `zxid`: the state of
    /// another server's files (`zkformat::import`, Apache ZooKeeper's snapshot and log). Every
    /// node but the root must have its parent among `nodes`; the caller checked that.
    pub fn from_nodes(zxid: i64, nodes: impl IntoIterator<Item = (String, Node)>) -> TreeVersion {
        let mut tree = TreeVersion {
            base: None,
            nodes: HashMap::new(),
            child_changes: HashMap::new(),
            node_count: 0,
            data_size: 0,
            ephemerals: HashMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            quota_roots: OrdSet::new(),
            digest: 0,
            digest_log: digest::DigestLog::default(),
            zxid,
        };
        for (path, node) in nodes {
            tree.insert_new(&path, node);
        }
        // ZooKeeper's quota limits nodes come along with its tree (DataTree.setupQuota).
        tree.rebuild_quota_roots();
        tree
    }

    /// Sets `/zookeeper/config` to `data` as ZooKeeper's `ZKDatabase.initConfigInZKDatabase`
    /// and the reconfig's SetDataTxn do: mzxid `zxid` (the configuration's version at
    /// startup), mtime `time_ms`, version -1. No zxid is taken and no watch fires: a member
    /// does this on its own tree when it starts serving (the node is not replicated by a
    /// transaction then, but derived from the configuration in force). None when the node
    /// is missing.
    pub fn set_config_node(&mut self, data: &[u8], zxid: i64, time_ms: i64) -> Option<Stat> {
        let old = self.get(CONFIG_PATH)?;
        let mut node = Node::clone(&old);
        self.data_size = self.data_size.saturating_sub(data_len(&node));
        node.data = Some(Arc::from(data));
        self.data_size += data_len(&node);
        node.stat.version = -1;
        node.stat.mzxid = zxid;
        node.stat.mtime = time_ms;
        let stat = node.to_stat();
        self.replace(CONFIG_PATH, &old, node);
        Some(stat)
    }

    /// The tree as of `snapshot`, read in place: the delta is empty and the derived indexes
    /// (ephemerals by session, containers, TTL nodes) come from the snapshot's list of special
    /// nodes, and the tree digest from its header, so no node is materialised. The digest
    /// history starts empty (it is kept in memory only, as ZooKeeper's is); the log replayed
    /// after the snapshot fills it.
    pub fn from_snapshot(snapshot: Arc<MappedSnapshot>) -> TreeVersion {
        let view = snapshot.view();
        let mut tree = TreeVersion {
            base: None,
            nodes: HashMap::new(),
            child_changes: HashMap::new(),
            node_count: view.node_count(),
            data_size: view.data_size() as usize,
            ephemerals: HashMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            quota_roots: OrdSet::new(),
            digest: 0,
            digest_log: digest::DigestLog::default(),
            zxid: snapshot.zxid(),
        };
        for (path, owner) in view.special_nodes() {
            tree.index_kind(Arc::from(path), NodeKind::from_owner(owner));
        }
        let stored_digest = snapshot.tree_digest();
        tree.base = Some(snapshot);
        tree.rebuild_quota_roots();
        // The header carries the digest, so the load stays O(1) in the tree's size; a
        // snapshot written before it was kept costs one pass over its nodes, here, once
        // (the caller says so: `snapshot.tree_digest()` is None).
        tree.digest = match stored_digest {
            Some(digest) => digest,
            None => tree.digest_recomputed() as u64,
        };
        tree
    }

    /// The snapshot this version is based on, if any.
    pub fn base(&self) -> Option<&Arc<MappedSnapshot>> {
        self.base.as_ref()
    }

    /// Number of nodes changed since the base (tombstones included).
    pub fn delta_len(&self) -> usize {
        self.nodes.len()
    }

    /// Inserts a node known to be absent, with its parent link (the parent's count is the
    /// caller's). Used to build the fresh tree and by create.
    fn insert_new(&mut self, path: &str, mut node: Node) -> Arc<str> {
        let key: Arc<str> = Arc::from(path);
        self.store_digest(path, &mut node);
        if let Some((parent, name)) = path::split_parent(path) {
            self.child_changes
                .entry(Arc::from(parent))
                .or_default()
                .insert(Arc::from(name), true);
        }
        self.index_kind(key.clone(), node.kind());
        self.node_count += 1;
        self.data_size += path.len() + data_len(&node);
        self.nodes.insert(key.clone(), Some(Arc::new(node)));
        key
    }

    fn index_kind(&mut self, key: Arc<str>, kind: NodeKind) {
        match kind {
            NodeKind::Container => {
                self.containers.insert(key);
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(key);
            }
            NodeKind::Ephemeral(owner) => {
                self.ephemerals.entry(owner).or_default().insert(key);
            }
            NodeKind::Persistent => {}
        }
    }

    /// Tests only: gives the existing node at `path` the data `data`, shared with whatever
    /// else holds it, so that a test can build a tree of gigabytes of data in megabytes of
    /// memory (a snapshot past 2 GiB). The stat is left alone; the data size is kept exact.
    #[cfg(test)]
    pub(crate) fn share_data_for_test(&mut self, path: &str, data: Arc<[u8]>) -> bool {
        let Some(old) = self.get(path) else {
            return false;
        };
        let mut node = (*old).clone();
        self.data_size = self.data_size - data_len(&node) + data.len();
        node.data = Some(data);
        self.replace(path, &old, node);
        true
    }

    /// Replaces the existing node `old` at `path` by `node` (copy-on-write for a base node).
    fn replace(&mut self, path: &str, old: &Node, mut node: Node) {
        // NodeHashMapImpl.preChange / postChange.
        self.digest = self.digest.wrapping_sub(old.digest_at(path));
        self.store_digest(path, &mut node);
        self.nodes.insert(Arc::from(path), Some(Arc::new(node)));
    }

    /// Adds the digest of `node`, about to be stored at `path`, to the tree's, and caches it
    /// in the node.
    fn store_digest(&mut self, path: &str, node: &mut Node) {
        let node_digest = digest::node_digest(path, node.data.as_deref(), &node.stat);
        // A CRC-32: always within u32.
        node.digest_cached = u32::try_from(node_digest).ok();
        self.digest = self.digest.wrapping_add(node_digest);
    }

    /// ZooKeeper's tree digest (NodeHashMapImpl.getDigest), as Java's signed long.
    pub fn digest(&self) -> i64 {
        self.digest as i64
    }

    /// The `hash` history: (zxid, digest) after every transaction whose zxid is a multiple
    /// of 128, the newest 1024 (DataTree.getDigestLog).
    pub fn digest_log(&self) -> &digest::DigestLog {
        &self.digest_log
    }

    /// Takes the `hash` history of `other`, a version of the same transactions (a live tree
    /// rebased on its own snapshot keeps the history it had).
    pub fn take_digest_log_of(&mut self, other: &TreeVersion) {
        self.digest_log = other.digest_log.clone();
    }

    /// The digest of every node, summed: what [`Self::digest`] must equal (O(n); tests and
    /// the load of a snapshot that does not carry its digest).
    pub fn digest_recomputed(&self) -> i64 {
        let mut sum: u64 = 0;
        let mut stack = vec!["/".to_string()];
        while let Some(current) = stack.pop() {
            if let Some(node) = self.get(&current) {
                sum = sum.wrapping_add(digest::node_digest(
                    &current,
                    node.data.as_deref(),
                    &node.stat,
                ));
            }
            self.for_each_child(&current, |name| stack.push(path::join(&current, name)));
        }
        sum as i64
    }

    fn base_contains(&self, path: &str) -> bool {
        self.base
            .as_ref()
            .is_some_and(|base| base.view().lookup(path).is_some())
    }

    /// Whether a node exists at `path`, without materialising it.
    pub fn contains(&self, path: &str) -> bool {
        let path = normalize(path);
        match self.nodes.get(path) {
            Some(node) => node.is_some(),
            None => self.base_contains(path),
        }
    }

    /// The node at `path`. The empty path is the root. A node of the base is materialised
    /// for the call (its data copied, its ACL shared).
    pub fn get(&self, path: &str) -> Option<Arc<Node>> {
        let path = normalize(path);
        match self.nodes.get(path) {
            Some(node) => node.clone(),
            None => {
                let view = self.base.as_ref()?.view();
                view.node(view.lookup(path)?).map(Arc::new)
            }
        }
    }

    /// Where the node at `path` lives: in the delta (a node changed since the base) or in the
    /// base, by its index there (read in place, without materialising it). For the snapshot
    /// encoder.
    ///
    /// `base_index`: the node's index in the base, when the caller knows it (from
    /// [`Self::for_each_child_at`]); a node not changed in the delta is then found without a
    /// lookup from the root.
    pub(crate) fn source_at(&self, path: &str, base_index: Option<u32>) -> Option<NodeSource<'_>> {
        let path = normalize(path);
        if let (Some(index), false) = (base_index, self.nodes.contains_key(path)) {
            let base = self.base.as_ref()?;
            return Some(NodeSource::Base(base, index));
        }
        match self.nodes.get(path) {
            Some(node) => node.as_ref().map(NodeSource::Delta),
            None => {
                let base = self.base.as_ref()?;
                let index = base.view().lookup(path)?;
                Some(NodeSource::Base(base, index))
            }
        }
    }

    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Calls `visit` with the name of every child of `path`, in sorted order: the base's range
    /// and the delta's changes merged.
    pub(crate) fn for_each_child(&self, path: &str, mut visit: impl FnMut(&str)) {
        self.for_each_child_at(path, None, |name, _| visit(name));
    }

    /// [`Self::for_each_child`] for the snapshot encoder, which walks every node and must not
    /// look each one up from the root: `base_index` is the node's index in the base when the
    /// caller knows it (None: looked up), and `visit` gets, with each name, the child's index
    /// in the base when the name comes from the base's own child list unchanged (the node may
    /// still have been modified in the delta, which the caller checks first).
    pub(crate) fn for_each_child_at(
        &self,
        path: &str,
        base_index: Option<u32>,
        mut visit: impl FnMut(&str, Option<u32>),
    ) {
        let changes = self.child_changes.get(path);
        let mut changes = changes.into_iter().flat_map(|map| map.iter()).peekable();
        if let Some(base) = &self.base {
            let view = base.view();
            if let Some(index) = base_index.or_else(|| view.lookup(path)) {
                let first_child = view.first_child(index);
                for (position, name) in view.child_names(index).enumerate() {
                    while let Some((changed, present)) =
                        changes.next_if(|(changed, _)| changed.as_ref() < name)
                    {
                        if *present {
                            visit(changed, None);
                        }
                    }
                    match changes.next_if(|(changed, _)| changed.as_ref() == name) {
                        Some((_, present)) => {
                            if *present {
                                visit(name, None);
                            }
                        }
                        None => visit(
                            name,
                            first_child.and_then(|first| first.checked_add(position as u32)),
                        ),
                    }
                }
            }
        }
        for (changed, present) in changes {
            if *present {
                visit(changed, None);
            }
        }
    }

    /// Children names in sorted order.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let path = normalize(path);
        let node = self.get(path)?;
        let mut names = Vec::with_capacity(node.child_count);
        self.for_each_child(path, |name| names.push(name.to_string()));
        Some(names)
    }

    /// getAllChildrenNumber: every descendant of `path` (ZooKeeper counts the `/zookeeper`
    /// subtree too when asked about the root).
    pub fn descendant_count(&self, path: &str) -> usize {
        let path = normalize(path);
        if !self.contains(path) {
            return 0;
        }
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(current) = stack.pop() {
            self.for_each_child(&current, |name| {
                count += 1;
                stack.push(path::join(&current, name));
            });
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
        self.data_size
    }

    /// Every path, sorted (for dumps and tests).
    pub fn paths(&self) -> Vec<String> {
        let mut paths = Vec::with_capacity(self.node_count);
        let mut stack = vec!["/".to_string()];
        while let Some(current) = stack.pop() {
            self.for_each_child(&current, |name| stack.push(path::join(&current, name)));
            paths.push(current);
        }
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
        // DataTree.processTxn: once per transaction (a multi's sub-transactions are applied
        // by apply_inner), whatever it was (session and error transactions too).
        self.digest_log.record(zxid, self.digest);
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
                if self.contains(path) {
                    return Err(fail(format!("create of existing {path}")));
                }
                let old_parent = self
                    .get(parent_path)
                    .ok_or_else(|| fail(format!("create of {path} without parent")))?;
                let mut parent = Node::clone(&old_parent);
                parent.child_count += 1;
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
                    child_count: 0,
                    digest_cached: None,
                };
                let stat = node.to_stat();
                let node_acl = node.acl.clone();
                let key = self.insert_new(path, node);
                self.replace(parent_path, &old_parent, parent);
                let bytes = data.as_ref().map_or(0, |data| data.len() as i64);
                self.quota_after_create(path, parent_path, name, bytes);
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
                let old = self
                    .get(path)
                    .ok_or_else(|| fail(format!("setData of missing {path}")))?;
                let mut node = Node::clone(&old);
                let old_len = data_len(&node);
                self.data_size = self.data_size.saturating_sub(old_len);
                node.data = data.as_deref().map(Arc::from);
                let new_len = data_len(&node);
                self.data_size += new_len;
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
                self.replace(path, &old, node);
                self.quota_after_set_data(path, new_len as i64 - old_len as i64);
                Ok(TxnResult::DataSet { stat })
            }
            Txn::SetAcl { path, acl, version } => {
                let old = self
                    .get(path)
                    .ok_or_else(|| fail(format!("setACL of missing {path}")))?;
                let mut node = Node::clone(&old);
                node.acl = Arc::new(acl.clone());
                // The ACL is not part of the digest; the aversion is.
                node.stat.aversion = *version;
                let stat = node.to_stat();
                self.replace(path, &old, node);
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
            Txn::Reconfig { data } => {
                let stat = self
                    .set_config_node(data, zxid, time_ms)
                    .ok_or_else(|| fail(format!("reconfig without {CONFIG_PATH}")))?;
                let acl = self.get(CONFIG_PATH).map(|node| node.acl.clone());
                triggers.push(WatchTrigger {
                    path: Arc::from(CONFIG_PATH),
                    event: EventType::NodeDataChanged,
                    acl: acl.unwrap_or_else(|| Arc::new(acl::read_acl())),
                    zxid,
                    also_child_watches: false,
                });
                Ok(TxnResult::Reconfigured {
                    data: data.clone(),
                    stat,
                })
            }
            Txn::CloseSession {
                session_id,
                ephemerals,
            } => {
                for path in ephemerals {
                    // The list was taken at prep time; a node deleted since then by an
                    // earlier transaction of the same batch is simply gone.
                    if self.contains(path) {
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
            .get(path)
            .ok_or_else(|| fail(format!("delete of missing {path}")))?;
        if node.child_count != 0 {
            return Err(fail(format!("delete of {path} with children")));
        }
        let old_parent = self
            .get(parent_path)
            .ok_or_else(|| fail(format!("delete of {path} without parent")))?;
        let mut parent = Node::clone(&old_parent);
        parent.child_count = parent.child_count.saturating_sub(1);
        // DataTree.deleteNode: the parent's pzxid moves forward, its cversion does not.
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        self.replace(parent_path, &old_parent, parent);
        self.digest = self.digest.wrapping_sub(node.digest_at(path));
        // A base node stays hidden behind a tombstone; a node born in the delta just goes.
        let in_base = self.base_contains(path);
        if in_base {
            self.nodes.insert(Arc::from(path), None);
        } else {
            self.nodes.remove(path);
        }
        let parent_key: Arc<str> = Arc::from(parent_path);
        let changes = self.child_changes.entry(parent_key.clone()).or_default();
        if in_base {
            changes.insert(Arc::from(name), false);
        } else {
            changes.remove(name);
            if changes.is_empty() {
                self.child_changes.remove(&parent_key);
            }
        }
        self.node_count = self.node_count.saturating_sub(1);
        self.data_size = self.data_size.saturating_sub(path.len() + data_len(&node));
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
        self.quota_after_delete(path, parent_path, name, data_len(&node) as i64);
        triggers.push(WatchTrigger {
            path: Arc::from(path),
            event: EventType::NodeDeleted,
            acl: node.acl.clone(),
            zxid,
            also_child_watches: true,
        });
        triggers.push(WatchTrigger {
            path: parent_key,
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
