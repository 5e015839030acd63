//! [pure] Quotas, as ZooKeeper keeps them (`Quotas`, `StatsTrack`, `DataTree`'s
//! updateQuotaStat / updateQuotaForPath / setupQuota, `ZooKeeperServer.checkQuota`).
//!
//! A quota on the path `P` is two ordinary znodes written by clients (zkCli's `setquota`):
//! `/zookeeper/quota/P/zookeeper_limits` holds the limits and `/zookeeper/quota/P/zookeeper_stats`
//! the usage, both in StatsTrack's text format (`count=3,bytes=10`, with hard limits
//! `count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=5`). The server's part:
//!
//! - the *quota roots* are the paths `P` that have a limits node; they are derived from the tree
//!   (kept in `TreeVersion::quota_roots`, rebuilt when a snapshot is loaded);
//! - creating the stats node sets its data to the count and bytes of `P`'s subtree counted at
//!   that moment (updateQuotaForPath: `P` itself included);
//! - every create, delete and setData below the deepest quota root `R` containing the path
//!   adds its change of count and bytes to `R`'s stats node (updateQuotaStat: only the
//!   deepest root, so nested roots do not add up). The stats node's data changes but its Stat
//!   (mzxid, version) does not, and no watch fires, as in ZooKeeper;
//! - with `zookeeper.enforceQuota`, prep refuses a create or setData that would take a root
//!   over a hard limit with QuotaExceeded (-125), and logs one over a soft limit.
//!
//! The stats are changed while a transaction is applied, so they are the same after replay and
//! on every ensemble member. One deliberate difference: ZooKeeper recounts every stats node from
//! the tree when it loads a snapshot (setupQuota); ringkeeper keeps the stats the snapshot holds,
//! because a recount at load would make members that loaded different snapshots disagree. The
//! two agree except where incremental stats and a recount differ in ZooKeeper itself (nested
//! roots, a stats node edited by a client).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{path, TreeVersion};

/// Quotas.quotaZookeeper.
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// Quotas.limitNode.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Quotas.statNode.
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// Quotas.limitPath.
pub fn limit_path(root: &str) -> String {
    format!("{QUOTA_PATH}{root}/{LIMIT_NODE}")
}

/// Quotas.statPath.
pub fn stat_path(root: &str) -> String {
    format!("{QUOTA_PATH}{root}/{STAT_NODE}")
}

/// Which of the two quota nodes a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaNode {
    Limits,
    Stats,
}

/// For a node `name` created or deleted under `parent`: the quota root it belongs to, when it
/// is a limits or stats node under `/zookeeper/quota/` (DataTree.createNode's
/// `parentName.startsWith(quotaZookeeper)` with Quotas.trimQuotaPath). A quota node directly
/// under `/zookeeper/quota` would name the empty path, which PathTrie refuses: no root.
pub fn quota_node<'a>(parent: &'a str, name: &str) -> Option<(&'a str, QuotaNode)> {
    let kind = match name {
        LIMIT_NODE => QuotaNode::Limits,
        STAT_NODE => QuotaNode::Stats,
        _ => return None,
    };
    let root = parent.strip_prefix(QUOTA_PATH)?;
    if root.len() > 1 && root.starts_with('/') {
        Some((root, kind))
    } else {
        None
    }
}

/// StatsTrack: key to value, every key optional; a missing key reads as -1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

/// Java's `String.split` result rule: no separator found gives the whole text; otherwise the
/// pieces with the trailing empty ones removed. `runs`: consecutive separators count as one
/// (the regex `[,;]+` of StatsTrack), which leaves only a leading piece possibly empty.
fn java_split(text: &str, separator: impl Fn(char) -> bool, runs: bool) -> Vec<&str> {
    if !text.chars().any(&separator) {
        return vec![text];
    }
    let mut pieces: Vec<&str> = text
        .split(separator)
        .enumerate()
        .filter(|(index, piece)| !runs || *index == 0 || !piece.is_empty())
        .map(|(_, piece)| piece)
        .collect();
    while pieces.last().is_some_and(|piece| piece.is_empty()) {
        pieces.pop();
    }
    pieces
}

impl StatsTrack {
    /// `new StatsTrack(byte[])`: pairs `key=value` split at runs of `,` or `;`; an empty value
    /// is -1. None where ZooKeeper's parser throws (a pair without `=`, a value that is not a
    /// Java long).
    pub fn parse(data: &[u8]) -> Option<StatsTrack> {
        let text = String::from_utf8_lossy(data);
        let mut track = StatsTrack::default();
        if text.is_empty() {
            return Some(track);
        }
        for pair in java_split(&text, |c| c == ',' || c == ';', true) {
            let parts = java_split(pair, |c| c == '=', false);
            let (key, value) = match parts.as_slice() {
                [key, value, ..] => (*key, *value),
                _ => return None,
            };
            let value = if value.is_empty() {
                -1
            } else {
                value.parse::<i64>().ok()?
            };
            track.values.insert(key.to_string(), value);
        }
        Some(track)
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }

    /// count and bytes changed by the given amounts (Java long arithmetic wraps).
    pub fn add(&mut self, count_diff: i64, bytes_diff: i64) {
        self.set(COUNT, self.count().wrapping_add(count_diff));
        self.set(BYTES, self.bytes().wrapping_add(bytes_diff));
    }

    /// A track with only count and bytes (updateQuotaForPath).
    pub fn usage(count: i64, bytes: i64) -> StatsTrack {
        let mut track = StatsTrack::default();
        track.set(COUNT, count);
        track.set(BYTES, bytes);
        track
    }

    /// StatsTrack.toString: `count=C,bytes=B` always first (for old parsers), then, if there
    /// are other keys, a `=` (which old parsers ignore) and `;key=value` for each in sorted order.
    pub fn to_text(&self) -> String {
        let mut text = format!("{COUNT}={},{BYTES}={}", self.count(), self.bytes());
        let mut others = self
            .values
            .iter()
            .filter(|(key, _)| key.as_str() != COUNT && key.as_str() != BYTES)
            .peekable();
        if others.peek().is_some() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text
    }
}

/// What a quota check found (ZooKeeperServer.checkQuota).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaVerdict {
    Within,
    /// Over a soft limit: logged, the write goes ahead.
    SoftExceeded(String),
    /// Over a hard limit: the write fails with QuotaExceeded.
    HardExceeded(String),
}

impl TreeVersion {
    /// getMaxPrefixWithQuota: the deepest quota root that is `path` or one of its ancestors.
    /// The root `/` never has a quota. Costs nothing while no quota exists.
    pub fn quota_root_of(&self, path: &str) -> Option<Arc<str>> {
        if self.quota_roots.is_empty() {
            return None;
        }
        path::self_and_ancestors(path)
            .take_while(|ancestor| *ancestor != "/")
            .find_map(|ancestor| self.quota_roots.get(ancestor).cloned())
    }

    /// The quota roots, sorted (for tests and dumps).
    pub fn quota_roots(&self) -> impl Iterator<Item = &Arc<str>> {
        self.quota_roots.iter()
    }

    /// The StatsTrack held by the node at `path`, if it exists and parses.
    fn stats_track_at(&self, path: &str) -> Option<StatsTrack> {
        let node = self.get(path)?;
        StatsTrack::parse(node.data.as_deref().unwrap_or(&[]))
    }

    /// Sets the data of a quota stats node, leaving its Stat alone and firing no watch, as
    /// DataTree.updateQuotaStat / updateQuotaForPath write `node.data` directly.
    fn set_stats_data(&mut self, stat_path: &str, track: &StatsTrack) {
        let Some(old) = self.get(stat_path) else {
            return;
        };
        let mut node = super::Node::clone(&old);
        let data: Arc<[u8]> = Arc::from(track.to_text().into_bytes());
        self.data_size = self.data_size.saturating_sub(super::data_len(&node)) + data.len();
        node.data = Some(data);
        // Under `/zookeeper/`: its digest is 0 whatever the data (DigestCalculator).
        self.replace(stat_path, &old, node);
    }

    /// The bookkeeping of a node `name` created under `parent` at `path` with `bytes` of data:
    /// a limits node makes a quota root, a stats node gets its root's subtree counted, and the
    /// deepest root containing `path` gets one more node (DataTree.createNode, same order).
    pub(super) fn quota_after_create(&mut self, path: &str, parent: &str, name: &str, bytes: i64) {
        match quota_node(parent, name) {
            Some((root, QuotaNode::Limits)) => {
                self.quota_roots.insert(Arc::from(root));
            }
            Some((root, QuotaNode::Stats)) => self.recount_quota(root),
            None => {}
        }
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, 1, bytes);
        }
    }

    /// The bookkeeping of a deleted node (DataTree.deleteNode): a deleted limits node ends its
    /// quota root; the deepest root containing `path` loses a node and its bytes.
    pub(super) fn quota_after_delete(&mut self, path: &str, parent: &str, name: &str, bytes: i64) {
        if let Some((root, QuotaNode::Limits)) = quota_node(parent, name) {
            self.quota_roots.remove(root);
        }
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, -1, -bytes);
        }
    }

    /// The bookkeeping of a setData that changed the data length by `bytes_diff`.
    pub(super) fn quota_after_set_data(&mut self, path: &str, bytes_diff: i64) {
        if let Some(root) = self.quota_root_of(path) {
            self.add_quota_usage(&root, 0, bytes_diff);
        }
    }

    /// updateQuotaStat. A missing or unreadable stats node is left alone (ZooKeeper logs
    /// "Missing node for stat" for the first and fails the apply for the second; skipping keeps
    /// every member's tree the same either way).
    fn add_quota_usage(&mut self, root: &str, count_diff: i64, bytes_diff: i64) {
        let stat_path = stat_path(root);
        if let Some(mut track) = self.stats_track_at(&stat_path) {
            track.add(count_diff, bytes_diff);
            self.set_stats_data(&stat_path, &track);
        }
    }

    /// updateQuotaForPath: the stats node of `root` set to the count and bytes of the subtree
    /// at `root`, itself included (zero when `root` does not exist).
    fn recount_quota(&mut self, root: &str) {
        let stat_path = stat_path(root);
        if !self.contains(&stat_path) {
            return;
        }
        let (mut count, mut bytes) = (0i64, 0i64);
        if self.contains(root) {
            let mut stack = vec![root.to_string()];
            while let Some(current) = stack.pop() {
                if let Some(node) = self.get(&current) {
                    count += 1;
                    bytes += super::data_len(&node) as i64;
                }
                self.for_each_child(&current, |name| stack.push(path::join(&current, name)));
            }
        }
        self.set_stats_data(&stat_path, &StatsTrack::usage(count, bytes));
    }

    /// The quota roots of a tree read from a snapshot: every path with a limits node under
    /// `/zookeeper/quota` (setupQuota's traversal; the stats are kept as stored, see the
    /// module doc).
    pub(super) fn rebuild_quota_roots(&mut self) {
        let mut stack = vec![QUOTA_PATH.to_string()];
        let mut roots = Vec::new();
        while let Some(current) = stack.pop() {
            self.for_each_child(&current, |name| {
                if let Some((root, QuotaNode::Limits)) = quota_node(&current, name) {
                    roots.push(Arc::<str>::from(root));
                }
                stack.push(path::join(&current, name));
            });
        }
        for root in roots {
            self.quota_roots.insert(root);
        }
    }

    /// ZooKeeperServer.checkQuota for a create (`count_diff` 1) or a setData (`count_diff` 0)
    /// at `path` changing the bytes by `bytes_diff`, against the limits and stats of the
    /// deepest quota root containing `path`. A hard limit, when set, is the one checked;
    /// otherwise the soft limit.
    pub fn check_quota(&self, path: &str, count_diff: i64, bytes_diff: i64) -> QuotaVerdict {
        let Some(root) = self.quota_root_of(path) else {
            return QuotaVerdict::Within;
        };
        // ZooKeeper logs a missing node and lets the write through.
        let Some(limits) = self.stats_track_at(&limit_path(&root)) else {
            return QuotaVerdict::Within;
        };
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return QuotaVerdict::Within;
        }
        let Some(current) = self.stats_track_at(&stat_path(&root)) else {
            return QuotaVerdict::Within;
        };
        let mut soft_messages = Vec::new();
        let checks = [
            (
                check_count,
                "count",
                "Count",
                current.count().wrapping_add(count_diff),
                limits.count_hard_limit(),
                limits.count(),
            ),
            (
                check_bytes,
                "bytes",
                "Byte",
                current.bytes().wrapping_add(bytes_diff),
                limits.byte_hard_limit(),
                limits.bytes(),
            ),
        ];
        for (enabled, current_name, limit_name, new_value, hard, soft) in checks {
            if !enabled {
                continue;
            }
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            if new_value > limit {
                let message = format!(
                    "Quota exceeded: {root} [current {current_name}={new_value}, {}{limit_name}Limit={limit}]",
                    if is_hard { "hard" } else { "soft" }
                );
                if is_hard {
                    return QuotaVerdict::HardExceeded(message);
                }
                soft_messages.push(message);
            }
        }
        if soft_messages.is_empty() {
            QuotaVerdict::Within
        } else {
            QuotaVerdict::SoftExceeded(soft_messages.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{acl, Txn, TxnResult};

    fn create(path: &str, data: &[u8]) -> Txn {
        Txn::Create {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: acl::open_acl(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        }
    }

    fn apply(tree: &mut TreeVersion, txn: &Txn) -> TxnResult {
        let zxid = tree.zxid + 1;
        match tree.apply(zxid, 0, txn, &mut Vec::new()) {
            Ok(result) => result,
            Err(error) => panic!("{error}"),
        }
    }

    fn stats(tree: &TreeVersion, root: &str) -> String {
        let node = tree.get(&stat_path(root));
        let data = node.and_then(|node| node.data_vec()).unwrap_or_default();
        String::from_utf8_lossy(&data).into_owned()
    }

    /// What zkCli's setquota does: the quota directories, the limits node, the stats node.
    fn set_quota(tree: &mut TreeVersion, root: &str, limits: &str) {
        let mut directory = QUOTA_PATH.to_string();
        for name in root.split('/').filter(|name| !name.is_empty()) {
            directory = path::join(&directory, name);
            if !tree.contains(&directory) {
                apply(tree, &create(&directory, b""));
            }
        }
        apply(tree, &create(&limit_path(root), limits.as_bytes()));
        apply(tree, &create(&stat_path(root), b"count=0,bytes=0"));
    }

    #[test]
    fn stats_track_text_is_zookeepers() {
        let parsed = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1");
        let track = parsed.expect("parses");
        assert_eq!((track.count(), track.bytes()), (-1, -1));
        assert_eq!(
            (track.count_hard_limit(), track.byte_hard_limit()),
            (-1, 10)
        );
        assert_eq!(
            track.to_text(),
            "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1"
        );
        assert_eq!(StatsTrack::usage(3, 7).to_text(), "count=3,bytes=7");
        // Missing keys read as -1 and are written back; an empty value between two `=` is -1
        // (a trailing `=` leaves no value at all: Java's split drops trailing empty strings).
        assert_eq!(
            StatsTrack::parse(b"bytes==7").map(|t| t.to_text()),
            Some("count=-1,bytes=-1".into())
        );
        assert_eq!(
            StatsTrack::parse(b"").map(|t| t.count()),
            Some(-1),
            "empty data is an empty track"
        );
        assert_eq!(
            StatsTrack::parse(b"count=2,,;bytes=5,").map(|t| (t.count(), t.bytes())),
            Some((2, 5))
        );
        for bad in [&b"count"[..], b"count=x", b",count=1", b"=", b"bytes="] {
            assert_eq!(StatsTrack::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quota_nodes_are_recognised_only_under_the_quota_path() {
        assert_eq!(
            quota_node("/zookeeper/quota/a/b", LIMIT_NODE),
            Some(("/a/b", QuotaNode::Limits))
        );
        assert_eq!(
            quota_node("/zookeeper/quota/a", STAT_NODE),
            Some(("/a", QuotaNode::Stats))
        );
        assert_eq!(quota_node("/zookeeper/quota", LIMIT_NODE), None);
        assert_eq!(quota_node("/a", LIMIT_NODE), None);
        assert_eq!(quota_node("/zookeeper/quota/a", "other"), None);
    }

    #[test]
    fn stats_follow_creates_deletes_and_set_data_of_the_deepest_root() {
        let mut tree = TreeVersion::new();
        apply(&mut tree, &create("/a", b"12345"));
        apply(&mut tree, &create("/a/x", b"1"));
        set_quota(
            &mut tree,
            "/a",
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3",
        );
        // Counted at the stats node's creation: /a and /a/x.
        assert_eq!(stats(&tree, "/a"), "count=2,bytes=6");
        let stat_before = tree.get(&stat_path("/a")).map(|node| node.stat);
        apply(&mut tree, &create("/a/y", b"abc"));
        assert_eq!(stats(&tree, "/a"), "count=3,bytes=9");
        apply(
            &mut tree,
            &Txn::SetData {
                path: "/a/y".into(),
                data: None,
                version: 1,
            },
        );
        assert_eq!(stats(&tree, "/a"), "count=3,bytes=6");
        apply(
            &mut tree,
            &Txn::Delete {
                path: "/a/x".into(),
            },
        );
        assert_eq!(stats(&tree, "/a"), "count=2,bytes=5");
        // The stats node's Stat does not move (only its data).
        assert_eq!(
            tree.get(&stat_path("/a")).map(|node| node.stat),
            stat_before
        );
        // A nested root takes the changes below it; the outer root no longer sees them.
        set_quota(&mut tree, "/a/y", "count=5,bytes=-1");
        assert_eq!(stats(&tree, "/a/y"), "count=1,bytes=0");
        apply(&mut tree, &create("/a/y/z", b"zz"));
        assert_eq!(stats(&tree, "/a/y"), "count=2,bytes=2");
        assert_eq!(stats(&tree, "/a"), "count=2,bytes=5");
        // Outside any root nothing moves; /ab is not below /a.
        apply(&mut tree, &create("/ab", b"x"));
        assert_eq!(stats(&tree, "/a"), "count=2,bytes=5");
        // Deleting the limits node ends the root.
        apply(
            &mut tree,
            &Txn::Delete {
                path: limit_path("/a/y"),
            },
        );
        assert_eq!(tree.quota_root_of("/a/y/z").as_deref(), Some("/a"));
    }

    #[test]
    fn hard_limits_refuse_and_soft_limits_warn() {
        let mut tree = TreeVersion::new();
        apply(&mut tree, &create("/h", b""));
        set_quota(
            &mut tree,
            "/h",
            "count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=2",
        );
        assert_eq!(tree.check_quota("/h/a", 1, 4), QuotaVerdict::Within);
        apply(&mut tree, &create("/h/a", b"1234"));
        assert!(matches!(
            tree.check_quota("/h/b", 1, 0),
            QuotaVerdict::HardExceeded(ref message)
                if message == "Quota exceeded: /h [current count=3, hardCountLimit=2]"
        ));
        assert!(matches!(
            tree.check_quota("/h/a", 0, 1),
            QuotaVerdict::HardExceeded(_)
        ));
        // A setData of the same length is not checked at all (bytesDiff == 0).
        assert_eq!(tree.check_quota("/h/a", 0, 0), QuotaVerdict::Within);
        apply(&mut tree, &create("/s", b""));
        set_quota(&mut tree, "/s", "count=1,bytes=-1");
        assert!(matches!(
            tree.check_quota("/s/a", 1, 0),
            QuotaVerdict::SoftExceeded(ref message)
                if message == "Quota exceeded: /s [current count=2, softCountLimit=1]"
        ));
        assert_eq!(tree.check_quota("/elsewhere", 1, 100), QuotaVerdict::Within);
    }

    #[test]
    fn quota_roots_are_found_again_by_a_walk_of_the_quota_path() {
        let mut tree = TreeVersion::new();
        apply(&mut tree, &create("/r", b""));
        set_quota(&mut tree, "/r", "count=1,bytes=-1");
        set_quota(&mut tree, "/q/deep", "count=1,bytes=-1");
        let mut rebuilt = tree.clone();
        rebuilt.quota_roots = imbl::OrdSet::new();
        rebuilt.rebuild_quota_roots();
        let roots: Vec<&str> = rebuilt.quota_roots().map(|root| &**root).collect();
        assert_eq!(roots, vec!["/q/deep", "/r"]);
    }

    /// Not a check but a measurement (run with `--ignored --nocapture`): the cost per write
    /// of applying creates and setData with no quota at all (the fast path: one emptiness
    /// check), with a quota elsewhere (an ancestor walk that finds nothing) and with every
    /// write inside a quota root (the stats node rewritten each time).
    #[test]
    #[ignore]
    fn measure_apply_cost_with_and_without_quotas() {
        const WRITES: usize = 20_000;
        let run = |setup: &dyn Fn(&mut TreeVersion)| {
            let mut tree = TreeVersion::new();
            apply(&mut tree, &create("/w", b""));
            apply(&mut tree, &create("/other", b""));
            setup(&mut tree);
            let started = std::time::Instant::now();
            for index in 0..WRITES {
                let path = format!("/w/n{index}");
                apply(&mut tree, &create(&path, b"0123456789"));
                apply(
                    &mut tree,
                    &Txn::SetData {
                        path,
                        data: Some(b"abc".to_vec()),
                        version: 1,
                    },
                );
            }
            started.elapsed().as_nanos() as f64 / (2 * WRITES) as f64
        };
        let none = run(&|_| {});
        let elsewhere = run(&|tree| set_quota(tree, "/other", "count=1,bytes=-1"));
        let inside = run(&|tree| set_quota(tree, "/w", "count=1,bytes=-1"));
        println!(
            "ns per write: no quota {none:.0}, quota elsewhere {elsewhere:.0}, inside a quota {inside:.0}"
        );
    }
}
