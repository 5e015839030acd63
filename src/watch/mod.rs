//! [pure] The watch registry of one core: which of its connections watch which paths, and in
//! which mode. It mirrors ZooKeeper's two `WatchManager`s (data watches, which also hold
//! exist watches, and child watches) with their modes (STANDARD one-shot, PERSISTENT,
//! PERSISTENT_RECURSIVE), and `DataTree`'s rules for which manager an event goes to.
//!
//! Watches belong to connections, not sessions, exactly as in ZooKeeper: a client re-sends
//! them with SetWatches when it reconnects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::jute::protocol::EventType;
use crate::tree::path;

pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Standard,
    Persistent,
    PersistentRecursive,
}

impl WatchMode {
    fn bit(self) -> u8 {
        match self {
            WatchMode::Standard => 1,
            WatchMode::Persistent => 2,
            WatchMode::PersistentRecursive => 4,
        }
    }
}

/// One of ZooKeeper's two watch managers.
#[derive(Debug, Default)]
pub struct WatchManager {
    table: HashMap<Arc<str>, HashMap<ConnId, u8>>,
    by_conn: HashMap<ConnId, HashSet<Arc<str>>>,
    recursive_count: usize,
}

impl WatchManager {
    pub fn add(&mut self, path: &str, conn: ConnId, mode: WatchMode) {
        let key: Arc<str> = match self.table.get_key_value(path) {
            Some((key, _)) => key.clone(),
            None => Arc::from(path),
        };
        let modes = self
            .table
            .entry(key.clone())
            .or_default()
            .entry(conn)
            .or_insert(0);
        if mode == WatchMode::PersistentRecursive && *modes & mode.bit() == 0 {
            self.recursive_count += 1;
        }
        *modes |= mode.bit();
        self.by_conn.entry(conn).or_default().insert(key);
    }

    /// Removes the given mode, or every mode when `mode` is None; true if anything was removed.
    pub fn remove(&mut self, path: &str, conn: ConnId, mode: Option<WatchMode>) -> bool {
        let Some(watchers) = self.table.get_mut(path) else {
            return false;
        };
        let Some(modes) = watchers.get_mut(&conn) else {
            return false;
        };
        let removing = mode.map_or(0xff, WatchMode::bit) & *modes;
        if removing == 0 {
            return false;
        }
        if removing & WatchMode::PersistentRecursive.bit() != 0 {
            self.recursive_count -= 1;
        }
        *modes &= !removing;
        if *modes == 0 {
            watchers.remove(&conn);
            if watchers.is_empty() {
                self.table.remove(path);
            }
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        true
    }

    pub fn contains(&self, path: &str, conn: ConnId, mode: Option<WatchMode>) -> bool {
        self.table
            .get(path)
            .and_then(|watchers| watchers.get(&conn))
            .is_some_and(|modes| modes & mode.map_or(0xff, WatchMode::bit) != 0)
    }

    /// Fires the watches an event on `path` triggers: every watch on the path itself (one-shot
    /// ones are consumed) and persistent-recursive watches on its ancestors. Connections in
    /// `suppress` are skipped but their one-shot watches are still consumed, as ZooKeeper does.
    pub fn trigger(&mut self, path: &str, suppress: &HashSet<ConnId>) -> HashSet<ConnId> {
        let mut fired = HashSet::new();
        let mut consumed = Vec::new();
        if let Some(watchers) = self.table.get_mut(path) {
            for (conn, modes) in watchers.iter_mut() {
                fired.insert(*conn);
                if *modes & WatchMode::Standard.bit() != 0 {
                    *modes &= !WatchMode::Standard.bit();
                    if *modes == 0 {
                        consumed.push(*conn);
                    }
                }
            }
            for conn in &consumed {
                watchers.remove(conn);
            }
            if watchers.is_empty() {
                self.table.remove(path);
            }
        }
        for conn in consumed {
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
                if paths.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
        if self.recursive_count > 0 {
            for ancestor in path::self_and_ancestors(path).skip(1) {
                if let Some(watchers) = self.table.get(ancestor) {
                    for (conn, modes) in watchers {
                        if modes & WatchMode::PersistentRecursive.bit() != 0 {
                            fired.insert(*conn);
                        }
                    }
                }
            }
        }
        fired.retain(|conn| !suppress.contains(conn));
        fired
    }

    /// Drops every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for path in paths {
            if let Some(watchers) = self.table.get_mut(&path) {
                if let Some(modes) = watchers.remove(&conn) {
                    if modes & WatchMode::PersistentRecursive.bit() != 0 {
                        self.recursive_count -= 1;
                    }
                }
                if watchers.is_empty() {
                    self.table.remove(&path);
                }
            }
        }
    }

    pub fn watch_count(&self) -> usize {
        self.table.values().map(|watchers| watchers.len()).sum()
    }

    pub fn path_count(&self) -> usize {
        self.table.len()
    }

    pub fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Paths watched by each connection (wchc).
    pub fn paths_by_conn(&self) -> impl Iterator<Item = (ConnId, Vec<Arc<str>>)> + '_ {
        self.by_conn
            .iter()
            .map(|(conn, paths)| (*conn, paths.iter().cloned().collect()))
    }

    /// Connections watching each path (wchp).
    pub fn conns_by_path(&self) -> impl Iterator<Item = (Arc<str>, Vec<ConnId>)> + '_ {
        self.table
            .iter()
            .map(|(path, watchers)| (path.clone(), watchers.keys().copied().collect()))
    }
}

/// Data and child watches of one core.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    pub data: WatchManager,
    pub child: WatchManager,
}

impl WatchRegistry {
    /// The connections an event notifies (DataTree's triggerWatch calls): data watches for
    /// created, changed and deleted; child watches for children changed; for deleted, the
    /// path's child watches too, each connection notified once.
    pub fn fire(&mut self, path: &str, event: EventType) -> HashSet<ConnId> {
        let none = HashSet::new();
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => self.data.trigger(path, &none),
            EventType::NodeChildrenChanged => self.child.trigger(path, &none),
            EventType::NodeDeleted => {
                let mut fired = self.data.trigger(path, &none);
                let children = self.child.trigger(path, &fired);
                fired.extend(children);
                fired
            }
            _ => HashSet::new(),
        }
    }

    pub fn remove_conn(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once() {
        let mut registry = WatchRegistry::default();
        registry.data.add("/a", 1, WatchMode::Standard);
        assert_eq!(
            registry.fire("/a", EventType::NodeDataChanged),
            HashSet::from([1])
        );
        assert!(registry.fire("/a", EventType::NodeDataChanged).is_empty());
        assert_eq!(registry.data.watch_count(), 0);
        assert_eq!(registry.data.conn_count(), 0);
    }

    #[test]
    fn persistent_watches_stay_and_recursive_ones_see_descendants() {
        let mut registry = WatchRegistry::default();
        registry.data.add("/a", 1, WatchMode::PersistentRecursive);
        registry.data.add("/a/b", 2, WatchMode::Persistent);
        registry.child.add("/a/b", 2, WatchMode::Persistent);
        for _ in 0..2 {
            assert_eq!(
                registry.fire("/a/b", EventType::NodeDataChanged),
                HashSet::from([1, 2])
            );
        }
        assert_eq!(
            registry.fire("/a/b/c", EventType::NodeCreated),
            HashSet::from([1])
        );
        // Recursive watches live only in the data manager: no child events.
        assert!(registry
            .fire("/a", EventType::NodeChildrenChanged)
            .is_empty());
        assert_eq!(
            registry.fire("/a/b", EventType::NodeChildrenChanged),
            HashSet::from([2])
        );
    }

    #[test]
    fn delete_notifies_data_and_child_watchers_once_each() {
        let mut registry = WatchRegistry::default();
        registry.data.add("/a", 1, WatchMode::Standard);
        registry.child.add("/a", 1, WatchMode::Standard);
        registry.child.add("/a", 2, WatchMode::Standard);
        assert_eq!(
            registry.fire("/a", EventType::NodeDeleted),
            HashSet::from([1, 2])
        );
        assert_eq!(
            registry.child.watch_count(),
            0,
            "suppressed watches are consumed"
        );
    }

    #[test]
    fn removal_by_mode_and_by_connection() {
        let mut registry = WatchRegistry::default();
        registry.data.add("/a", 1, WatchMode::Standard);
        registry.data.add("/a", 1, WatchMode::PersistentRecursive);
        assert!(!registry.data.remove("/a", 1, Some(WatchMode::Persistent)));
        assert!(registry.data.remove("/a", 1, Some(WatchMode::Standard)));
        assert!(registry.data.contains("/a", 1, None));
        registry.remove_conn(1);
        assert!(!registry.data.contains("/a", 1, None));
        assert!(registry.fire("/a/x", EventType::NodeCreated).is_empty());
    }
}
