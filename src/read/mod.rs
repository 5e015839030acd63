//! [pure] Read requests, served on the connection's core from that core's tree version, with
//! watch registrations going into that core's registry. Results, error codes and the order of
//! checks follow ZooKeeper's `FinalRequestProcessor` and `DataTree`.

use crate::jute::codec::Record;
use crate::jute::protocol::{perms, watcher_type, ErrorCode, EventType};
use crate::jute::records::*;
use crate::jute::request::Request;
use crate::jute::response::{
    encode_multi, header_frame, notification_frame, record_frame, reply_frame, OpResult,
};
use crate::tree::{acl, TreeVersion};
use crate::watch::{ConnId, WatchMode, WatchRegistry};

#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub conn: ConnId,
    pub session_id: i64,
    pub auth: &'a [Id],
    pub skip_acl: bool,
}

impl ReadContext<'_> {
    fn allowed(&self, node_acl: &[Acl], permission: i32) -> bool {
        self.skip_acl || acl::check(node_acl, permission, self.auth)
    }
}

type ReadResult<T> = Result<T, ErrorCode>;

fn get_data(
    tree: &TreeVersion,
    watches: &mut WatchRegistry,
    request: &GetDataRequest,
    context: &ReadContext,
) -> ReadResult<GetDataResponse> {
    let node = tree.get(&request.path).ok_or(ErrorCode::NoNode)?;
    if !context.allowed(&node.acl, perms::READ) {
        return Err(ErrorCode::NoAuth);
    }
    if request.watch {
        watches
            .data
            .add(&request.path, context.conn, WatchMode::Standard);
    }
    Ok(GetDataResponse {
        data: node.data_vec(),
        stat: node.to_stat(),
    })
}

fn get_children(
    tree: &TreeVersion,
    watches: &mut WatchRegistry,
    path: &str,
    watch: bool,
    context: &ReadContext,
) -> ReadResult<(Vec<String>, Stat)> {
    let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
    if !context.allowed(&node.acl, perms::READ) {
        return Err(ErrorCode::NoAuth);
    }
    if watch {
        watches.child.add(path, context.conn, WatchMode::Standard);
    }
    let children = tree.children(path).unwrap_or_default();
    Ok((children, node.to_stat()))
}

/// Serves one read request; returns the frames to send, in order (events synthesised by
/// SetWatches come before its reply).
pub fn serve(
    tree: &TreeVersion,
    watches: &mut WatchRegistry,
    xid: i32,
    request: &Request,
    context: &ReadContext,
) -> Vec<Vec<u8>> {
    let zxid = tree.zxid;
    let reply = |result: ReadResult<Vec<u8>>| match result {
        Ok(frame) => frame,
        Err(code) => header_frame(xid, zxid, code),
    };
    let frame = match request {
        Request::Exists(exists) => reply((|| {
            if exists.path.contains('\0') {
                return Err(ErrorCode::BadArguments);
            }
            if let Some(node) = tree.get(&exists.path) {
                if !context.allowed(&node.acl, perms::READ) {
                    return Err(ErrorCode::NoAuth);
                }
            }
            if exists.watch {
                watches
                    .data
                    .add(&exists.path, context.conn, WatchMode::Standard);
            }
            let node = tree.get(&exists.path).ok_or(ErrorCode::NoNode)?;
            Ok(record_frame(
                xid,
                zxid,
                &ExistsResponse {
                    stat: node.to_stat(),
                },
            ))
        })()),
        Request::GetData(get) => {
            reply(get_data(tree, watches, get, context).map(|r| record_frame(xid, zxid, &r)))
        }
        Request::GetChildren(get) => reply(
            get_children(tree, watches, &get.path, get.watch, context)
                .map(|(children, _)| record_frame(xid, zxid, &GetChildrenResponse { children })),
        ),
        Request::GetChildren2(get) => reply(
            get_children(tree, watches, &get.path, get.watch, context).map(|(children, stat)| {
                record_frame(xid, zxid, &GetChildren2Response { children, stat })
            }),
        ),
        Request::GetAcl(get) => reply((|| {
            let node = tree.get(&get.path).ok_or(ErrorCode::NoNode)?;
            if !context.allowed(&node.acl, perms::READ | perms::ADMIN) {
                return Err(ErrorCode::NoAuth);
            }
            let shown = if context.allowed(&node.acl, perms::ADMIN) {
                node.acl.to_vec()
            } else {
                acl::mask_digests(&node.acl)
            };
            Ok(record_frame(
                xid,
                zxid,
                &GetAclResponse {
                    acl: shown,
                    stat: node.to_stat(),
                },
            ))
        })()),
        Request::GetAllChildrenNumber(get) => reply((|| {
            let node = tree.get(&get.path).ok_or(ErrorCode::NoNode)?;
            if !context.allowed(&node.acl, perms::READ) {
                return Err(ErrorCode::NoAuth);
            }
            let total_number = tree.descendant_count(&get.path) as i32;
            Ok(record_frame(
                xid,
                zxid,
                &GetAllChildrenNumberResponse { total_number },
            ))
        })()),
        Request::GetEphemerals(get) => {
            let prefix = get.prefix_path.trim();
            let ephemerals = tree
                .ephemerals_of(context.session_id)
                .into_iter()
                .filter(|path| {
                    prefix.is_empty() || prefix == "/" || path.starts_with(&get.prefix_path)
                })
                .collect();
            record_frame(xid, zxid, &GetEphemeralsResponse { ephemerals })
        }
        Request::MultiRead(ops)
            if ops
                .iter()
                .any(|op| !matches!(op, Request::GetData(_) | Request::GetChildren(_))) =>
        {
            // FinalRequestProcessor has already made the (empty) MultiResponse when it meets
            // the invalid op, so the MarshallingError header is followed by that response.
            let mut writer = crate::jute::codec::Writer::for_frame();
            ReplyHeader {
                xid,
                zxid,
                err: ErrorCode::MarshallingError.code(),
            }
            .encode(&mut writer);
            encode_multi(&mut writer, &[]);
            writer.finish_frame()
        }
        Request::MultiRead(ops) => {
            let results: Vec<OpResult> = ops
                .iter()
                .map(|op| match op {
                    Request::GetData(get) => match get_data(tree, watches, get, context) {
                        Ok(response) => OpResult::GetData {
                            data: response.data,
                            stat: response.stat,
                        },
                        Err(code) => OpResult::Error(code),
                    },
                    Request::GetChildren(get) => {
                        match get_children(tree, watches, &get.path, get.watch, context) {
                            Ok((children, _)) => OpResult::GetChildren { children },
                            Err(code) => OpResult::Error(code),
                        }
                    }
                    _ => OpResult::Error(ErrorCode::Unimplemented),
                })
                .collect();
            reply_frame(xid, zxid, ErrorCode::Ok, |writer| {
                encode_multi(writer, &results)
            })
        }
        Request::AddWatch(add) => {
            let mode = match add.mode {
                crate::jute::protocol::add_watch_mode::PERSISTENT => Some(WatchMode::Persistent),
                crate::jute::protocol::add_watch_mode::PERSISTENT_RECURSIVE => {
                    Some(WatchMode::PersistentRecursive)
                }
                _ => None,
            };
            match mode {
                Some(mode) => {
                    watches.data.add(&add.path, context.conn, mode);
                    if mode == WatchMode::Persistent {
                        watches.child.add(&add.path, context.conn, mode);
                    }
                    record_frame(xid, zxid, &ErrorResponse { err: 0 })
                }
                // WatcherMode.fromZooDef throws; FinalRequestProcessor answers MarshallingError.
                None => header_frame(xid, zxid, ErrorCode::MarshallingError),
            }
        }
        Request::CheckWatches(check) => {
            let found = watch_lookup(
                watches,
                &check.path,
                check.watcher_type,
                context.conn,
                false,
            );
            match found {
                Some(true) => header_frame(xid, zxid, ErrorCode::Ok),
                Some(false) => header_frame(xid, zxid, ErrorCode::NoWatcher),
                None => header_frame(xid, zxid, ErrorCode::MarshallingError),
            }
        }
        Request::RemoveWatches(remove) => {
            let found = watch_lookup(
                watches,
                &remove.path,
                remove.watcher_type,
                context.conn,
                true,
            );
            match found {
                Some(true) => header_frame(xid, zxid, ErrorCode::Ok),
                Some(false) => header_frame(xid, zxid, ErrorCode::NoWatcher),
                None => header_frame(xid, zxid, ErrorCode::MarshallingError),
            }
        }
        Request::SetWatches(set) => {
            let mut frames = set_watches(tree, watches, set, context.conn);
            frames.push(header_frame(xid, zxid, ErrorCode::Ok));
            return frames;
        }
        _ => header_frame(xid, zxid, ErrorCode::Unimplemented),
    };
    vec![frame]
}

/// checkWatches and removeWatches (DataTree.containsWatcher / removeWatch). None for an
/// unknown watcher type, which ZooKeeper answers with MarshallingError (WatcherType.fromInt
/// throws).
fn watch_lookup(
    watches: &mut WatchRegistry,
    path: &str,
    kind: i32,
    conn: ConnId,
    remove: bool,
) -> Option<bool> {
    let standard = Some(WatchMode::Standard);
    let persistent = Some(WatchMode::Persistent);
    let recursive = Some(WatchMode::PersistentRecursive);
    Some(match (kind, remove) {
        (watcher_type::CHILDREN, false) => watches.child.contains(path, conn, standard),
        (watcher_type::CHILDREN, true) => watches.child.remove(path, conn, standard),
        (watcher_type::DATA, false) => watches.data.contains(path, conn, standard),
        (watcher_type::DATA, true) => watches.data.remove(path, conn, standard),
        (watcher_type::PERSISTENT, false) => watches.data.contains(path, conn, persistent),
        (watcher_type::PERSISTENT, true) => {
            let child = watches.child.remove(path, conn, persistent);
            watches.data.remove(path, conn, persistent) | child
        }
        (watcher_type::PERSISTENT_RECURSIVE, false) => watches.data.contains(path, conn, recursive),
        (watcher_type::PERSISTENT_RECURSIVE, true) => watches.data.remove(path, conn, recursive),
        (watcher_type::ANY, false) => {
            watches.child.contains(path, conn, None) || watches.data.contains(path, conn, None)
        }
        (watcher_type::ANY, true) => {
            let child = watches.child.remove(path, conn, None);
            watches.data.remove(path, conn, None) | child
        }
        _ => return None,
    })
}

/// DataTree.setWatches: re-registers a reconnecting client's watches, and instead fires at
/// once the ones whose change it missed since `relative_zxid`.
fn set_watches(
    tree: &TreeVersion,
    watches: &mut WatchRegistry,
    set: &SetWatches2,
    conn: ConnId,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut event = |event: EventType, path: &str| frames.push(notification_frame(-1, event, path));
    for path in &set.data_watches {
        match tree.get(path) {
            None => event(EventType::NodeDeleted, path),
            Some(node) if node.stat.mzxid > set.relative_zxid => {
                event(EventType::NodeDataChanged, path)
            }
            Some(_) => watches.data.add(path, conn, WatchMode::Standard),
        }
    }
    for path in &set.exist_watches {
        match tree.get(path) {
            Some(_) => event(EventType::NodeCreated, path),
            None => watches.data.add(path, conn, WatchMode::Standard),
        }
    }
    for path in &set.child_watches {
        match tree.get(path) {
            None => event(EventType::NodeDeleted, path),
            Some(node) if node.stat.pzxid > set.relative_zxid => {
                event(EventType::NodeChildrenChanged, path)
            }
            Some(_) => watches.child.add(path, conn, WatchMode::Standard),
        }
    }
    for path in &set.persistent_watches {
        watches.child.add(path, conn, WatchMode::Persistent);
        watches.data.add(path, conn, WatchMode::Persistent);
    }
    for path in &set.persistent_recursive_watches {
        watches.data.add(path, conn, WatchMode::PersistentRecursive);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::codec::Reader;
    use crate::tree::Txn;

    fn tree_with(paths: &[&str]) -> TreeVersion {
        let mut tree = TreeVersion::new();
        for (index, path) in paths.iter().enumerate() {
            let txn = Txn::Create {
                path: path.to_string(),
                data: Some(b"v".to_vec()),
                acl: acl::open_acl(),
                ephemeral_owner: 0,
                parent_cversion: 1 + index as i32,
            };
            let applied = tree.apply(index as i64 + 1, 0, &txn, &mut Vec::new());
            assert!(applied.is_ok());
        }
        tree
    }

    fn header(frame: &[u8]) -> ReplyHeader {
        ReplyHeader::decode(&mut Reader::new(&frame[4..])).unwrap_or_default()
    }

    const CONTEXT: ReadContext<'static> = ReadContext {
        conn: 1,
        session_id: 5,
        auth: &[],
        skip_acl: false,
    };

    #[test]
    fn exists_on_a_missing_node_registers_the_watch_then_fails() {
        let tree = tree_with(&[]);
        let mut watches = WatchRegistry::default();
        let request = Request::Exists(ExistsRequest {
            path: "/x".into(),
            watch: true,
        });
        let frames = serve(&tree, &mut watches, 3, &request, &CONTEXT);
        assert_eq!(header(&frames[0]).err, ErrorCode::NoNode.code());
        assert!(watches.data.contains("/x", 1, Some(WatchMode::Standard)));
    }

    #[test]
    fn get_data_on_a_missing_node_registers_nothing() {
        let tree = tree_with(&[]);
        let mut watches = WatchRegistry::default();
        let request = Request::GetData(GetDataRequest {
            path: "/x".into(),
            watch: true,
        });
        let frames = serve(&tree, &mut watches, 3, &request, &CONTEXT);
        assert_eq!(header(&frames[0]).err, ErrorCode::NoNode.code());
        assert_eq!(watches.data.watch_count(), 0);
    }

    #[test]
    fn set_watches_fires_missed_changes_and_registers_the_rest() {
        let tree = tree_with(&["/a", "/b"]);
        let mut watches = WatchRegistry::default();
        let request = Request::SetWatches(SetWatches2 {
            relative_zxid: 1,
            data_watches: vec!["/a".into(), "/b".into(), "/gone".into()],
            exist_watches: vec!["/a".into(), "/absent".into()],
            child_watches: vec![],
            persistent_watches: vec![],
            persistent_recursive_watches: vec!["/".into()],
        });
        let frames = serve(&tree, &mut watches, -8, &request, &CONTEXT);
        // /b changed after zxid 1, /gone is gone, /a exists: three events, then the reply.
        assert_eq!(frames.len(), 4);
        assert!(watches.data.contains("/a", 1, Some(WatchMode::Standard)));
        assert!(watches
            .data
            .contains("/absent", 1, Some(WatchMode::Standard)));
        assert!(watches
            .data
            .contains("/", 1, Some(WatchMode::PersistentRecursive)));
        assert_eq!(header(&frames[3]).xid, -8);
    }

    #[test]
    fn remove_watches_reports_no_watcher() {
        let tree = tree_with(&["/a"]);
        let mut watches = WatchRegistry::default();
        let remove = Request::RemoveWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: watcher_type::DATA,
        });
        let frames = serve(&tree, &mut watches, 4, &remove, &CONTEXT);
        assert_eq!(header(&frames[0]).err, ErrorCode::NoWatcher.code());
        watches.data.add("/a", 1, WatchMode::Standard);
        let frames = serve(&tree, &mut watches, 4, &remove, &CONTEXT);
        assert_eq!(header(&frames[0]).err, 0);
    }
}
