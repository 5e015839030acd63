//! [pure] Prep: turns a write request into a transaction by validating it against the pending
//! tree (the tree with every earlier, not yet durable transaction applied), as ZooKeeper's
//! `PrepRequestProcessor` does against its outstanding changes. The order of the checks is
//! ZooKeeper's, since it decides which error a client sees when several apply.

use crate::config::dynamic::{DynamicConfig, ReconfigError};
use crate::jute::protocol::{perms, CreateMode, ErrorCode, OpCode};
use crate::jute::records::{Id, ReconfigRequest};
use crate::jute::request::{Create, Request};
use crate::tree::quota::QuotaVerdict;
use crate::tree::{
    acl, path, ttl_owner, NodeKind, TreeVersion, Txn, CONFIG_PATH, CONTAINER_OWNER, TTL_MAX_MS,
};

/// What prep needs to know about the caller and the server.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    pub session_id: i64,
    pub auth: &'a [Id],
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types_enabled: bool,
    /// `zookeeper.skipACL`.
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes, soft ones are logged.
    pub enforce_quota: bool,
    /// Where a reconfig request stands on this server.
    pub reconfig: ReconfigGate<'a>,
}

/// PrepRequestProcessor's reconfig case, by server kind.
#[derive(Debug, Clone, Copy)]
pub enum ReconfigGate<'a> {
    /// `reconfigEnabled` is false: ReconfigDisabled.
    Disabled,
    /// A standalone server with reconfig enabled: Unimplemented (ZooKeeper's cast to
    /// LeaderZooKeeperServer fails: "standalone mode - reconfiguration currently not
    /// supported").
    Standalone,
    /// The ensemble's leader, with what the checks need.
    Leader(&'a ReconfigView),
}

/// The leader's view of the configuration, for the checks of a reconfig request.
#[derive(Debug, Clone)]
pub struct ReconfigView {
    /// The configuration in force (QuorumPeer.getQuorumVerifier).
    pub active: DynamicConfig,
    /// The version of the newest configuration proposed (getLastSeenQuorumVerifier): it
    /// differs from the active one while a reconfig is in progress.
    pub last_seen_version: i64,
    /// Voting members connected and synced with the leader, the leader included
    /// (Leader.isQuorumSynced: the leader and its forwarding followers).
    pub synced: Vec<u64>,
    /// The zxid the reconfig's transaction will get: the new configuration's version.
    pub next_zxid: i64,
    /// `standaloneEnabled`: a new configuration needs at least 2 voters when true.
    pub standalone_enabled: bool,
}

type PrepResult = Result<Txn, ErrorCode>;

fn check_acl(
    tree_acl: &[crate::jute::records::Acl],
    permission: i32,
    context: &PrepContext,
) -> Result<(), ErrorCode> {
    if context.skip_acl || acl::check(tree_acl, permission, context.auth) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// `checkAndIncVersion`: -1 matches any version; the successor of -1 is 0 (ZOOKEEPER-4743).
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(match current.wrapping_add(1) {
        -1 => 0,
        next => next,
    })
}

fn validate_path(path_text: &str) -> Result<(), ErrorCode> {
    path::validate_path(path_text).map_err(|_| ErrorCode::BadArguments)
}

/// `getParentPathAndValidate`: the parent by the last slash, refusing the system nodes.
fn parent_for_delete(path_text: &str) -> Result<&str, ErrorCode> {
    let slash = path_text.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if path_text.contains('\0')
        || matches!(
            path_text,
            "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
        )
    {
        return Err(ErrorCode::BadArguments);
    }
    Ok(if slash == 0 { "/" } else { &path_text[..slash] })
}

/// ZooKeeperServer.checkQuota, when `enforceQuota` is on: a hard limit refuses the write with
/// QuotaExceeded; a soft one lets it through. Either is noted for the log. `quota_tree` is
/// the tree whose quota stats are checked (see [`prep_multi`]).
fn check_quota(
    quota_tree: &TreeVersion,
    path_text: &str,
    count_diff: i64,
    bytes_diff: i64,
    context: &PrepContext,
    notes: &mut Vec<String>,
) -> Result<(), ErrorCode> {
    if !context.enforce_quota {
        return Ok(());
    }
    match quota_tree.check_quota(path_text, count_diff, bytes_diff) {
        QuotaVerdict::Within => Ok(()),
        QuotaVerdict::SoftExceeded(message) => {
            notes.push(message);
            Ok(())
        }
        QuotaVerdict::HardExceeded(message) => {
            notes.push(message);
            Err(ErrorCode::QuotaExceeded)
        }
    }
}

fn data_bytes(data: &Option<Vec<u8>>) -> i64 {
    data.as_ref().map_or(0, |data| data.len() as i64)
}

fn prep_create(
    tree: &TreeVersion,
    quota_tree: &TreeVersion,
    create: &Create,
    context: &PrepContext,
    notes: &mut Vec<String>,
) -> PrepResult {
    let mode = CreateMode::from_flags(create.flags).ok_or(ErrorCode::BadArguments)?;
    // validateCreateRequest
    if mode.ttl && !context.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    if mode.ttl {
        if create.ttl <= 0 || create.ttl > TTL_MAX_MS {
            return Err(ErrorCode::BadArguments);
        }
    } else if create.ttl >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    // validatePathForCreate
    let slash = create.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if create.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = if slash == 0 {
        "/"
    } else {
        &create.path[..slash]
    };
    let fixed_acl = acl::fixup_acl(&create.acl, context.auth).map_err(|_| ErrorCode::InvalidAcl)?;
    let parent = tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    check_acl(&parent.acl, perms::CREATE, context)?;
    let parent_cversion = parent.stat.cversion;
    let mut path_text = create.path.clone();
    if mode.sequential {
        path_text.push_str(&format!("{parent_cversion:010}"));
    }
    validate_path(&path_text)?;
    if tree.get(&path_text).is_some() || path_text == "/" {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(parent.kind(), NodeKind::Ephemeral(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    check_quota(
        quota_tree,
        &path_text,
        1,
        data_bytes(&create.data),
        context,
        notes,
    )?;
    let ephemeral_owner = if create.op == OpCode::CreateContainer || mode.container {
        CONTAINER_OWNER
    } else if mode.ttl {
        ttl_owner(create.ttl)
    } else if mode.ephemeral {
        context.session_id
    } else {
        0
    };
    Ok(Txn::Create {
        path: path_text,
        data: create.data.clone(),
        acl: fixed_acl,
        ephemeral_owner,
        parent_cversion: parent_cversion.wrapping_add(1),
    })
}

/// Validates one write request. Only write requests are given to prep.
pub fn prep(tree: &TreeVersion, request: &Request, context: &PrepContext) -> PrepResult {
    prep_noting(tree, request, context, &mut Vec::new())
}

/// [`prep`], appending to `notes` what the shell is to log: the quota limits the request
/// exceeds (ZooKeeper logs them from checkQuota, soft and hard alike).
pub fn prep_noting(
    tree: &TreeVersion,
    request: &Request,
    context: &PrepContext,
    notes: &mut Vec<String>,
) -> PrepResult {
    prep_op(tree, tree, request, context, notes)
}

fn prep_op(
    tree: &TreeVersion,
    quota_tree: &TreeVersion,
    request: &Request,
    context: &PrepContext,
    notes: &mut Vec<String>,
) -> PrepResult {
    match request {
        Request::Create(create) => prep_create(tree, quota_tree, create, context, notes),
        Request::Delete(delete) => {
            let parent_path = parent_for_delete(&delete.path)?;
            let parent = tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
            check_acl(&parent.acl, perms::DELETE, context)?;
            let node = tree.get(&delete.path).ok_or(ErrorCode::NoNode)?;
            next_version(node.stat.version, delete.version)?;
            if node.child_count != 0 {
                return Err(ErrorCode::NotEmpty);
            }
            Ok(Txn::Delete {
                path: delete.path.clone(),
            })
        }
        Request::DeleteContainer(path_text) => {
            parent_for_delete(path_text)?;
            let node = tree.get(path_text).ok_or(ErrorCode::NoNode)?;
            if node.child_count != 0 {
                return Err(ErrorCode::NotEmpty);
            }
            if matches!(node.kind(), NodeKind::Ephemeral(_)) {
                return Err(ErrorCode::BadVersion);
            }
            Ok(Txn::Delete {
                path: path_text.clone(),
            })
        }
        Request::SetData(set) => {
            validate_path(&set.path)?;
            let node = tree.get(&set.path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::WRITE, context)?;
            let old_bytes = node.data.as_ref().map_or(0, |data| data.len() as i64);
            check_quota(
                quota_tree,
                &set.path,
                0,
                data_bytes(&set.data) - old_bytes,
                context,
                notes,
            )?;
            let version = next_version(node.stat.version, set.version)?;
            Ok(Txn::SetData {
                path: set.path.clone(),
                data: set.data.clone(),
                version,
            })
        }
        Request::SetAcl(set) => {
            validate_path(&set.path)?;
            let fixed =
                acl::fixup_acl(&set.acl, context.auth).map_err(|_| ErrorCode::InvalidAcl)?;
            let node = tree.get(&set.path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::ADMIN, context)?;
            let version = next_version(node.stat.aversion, set.version)?;
            Ok(Txn::SetAcl {
                path: set.path.clone(),
                acl: fixed,
                version,
            })
        }
        Request::Check(check) => {
            validate_path(&check.path)?;
            let node = tree.get(&check.path).ok_or(ErrorCode::NoNode)?;
            check_acl(&node.acl, perms::READ, context)?;
            next_version(node.stat.version, check.version)?;
            Ok(Txn::Check {
                path: check.path.clone(),
            })
        }
        Request::CloseSession => Ok(Txn::CloseSession {
            session_id: context.session_id,
            ephemerals: tree.ephemerals_of(context.session_id),
        }),
        Request::Reconfig(reconfig) => prep_reconfig(tree, reconfig, context),
        // A read op inside a multi fails the whole request (ZooKeeper's prep throws, and the
        // error transaction still takes a zxid).
        Request::Multi(ops) if ops.iter().any(|op| !op.is_write()) => {
            Err(ErrorCode::MarshallingError)
        }
        Request::Multi(ops) => Ok(prep_multi(tree, ops, context, notes)),
        _ => Err(ErrorCode::Unimplemented),
    }
}

/// An empty string is what a null ustring decodes to: the field was not given.
fn given(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// PrepRequestProcessor's reconfig case, check by check in ZooKeeper's order (the ACL of
/// `/zookeeper/config` comes last, after the quorum check).
fn prep_reconfig(
    tree: &TreeVersion,
    request: &ReconfigRequest,
    context: &PrepContext,
) -> PrepResult {
    let view = match context.reconfig {
        ReconfigGate::Disabled => return Err(ErrorCode::ReconfigDisabled),
        ReconfigGate::Standalone => return Err(ErrorCode::Unimplemented),
        ReconfigGate::Leader(view) => view,
    };
    if view.last_seen_version != view.active.version {
        return Err(ErrorCode::ReconfigInProgress);
    }
    if request.cur_config_id != -1 && request.cur_config_id != view.last_seen_version {
        return Err(ErrorCode::BadVersion);
    }
    let next = match given(&request.new_members) {
        Some(members) => {
            DynamicConfig::non_incremental(members, view.standalone_enabled, view.next_zxid)
        }
        None => view.active.incremental(
            given(&request.joining_servers),
            given(&request.leaving_servers),
            view.next_zxid,
        ),
    }
    .and_then(|next| next.check_voters(view.standalone_enabled).map(|()| next))
    .map_err(|error| match error {
        ReconfigError::BadArguments(_) => ErrorCode::BadArguments,
        ReconfigError::Marshalling(_) => ErrorCode::MarshallingError,
    })?;
    if !next.contains_quorum(&view.synced) {
        return Err(ErrorCode::NewConfigNoQuorum);
    }
    let node = tree.get(CONFIG_PATH).ok_or(ErrorCode::NoNode)?;
    check_acl(&node.acl, perms::WRITE, context)?;
    if moves_a_quorum_address(&view.active, &next) {
        // Joining, leaving, role and client address changes are carried out; a member that
        // stays with another host, quorum or election address is not (its quorum and election
        // listeners would have to move, and ZooKeeper restarts leader election for it).
        return Err(ErrorCode::Unimplemented);
    }
    Ok(Txn::Reconfig {
        data: next.to_znode_text().into_bytes(),
    })
}

/// Whether a member of both configurations has another host, quorum or election address in
/// `next` (its role and its client address may change: the member moves its client port when
/// the reconfig comes into force).
fn moves_a_quorum_address(active: &DynamicConfig, next: &DynamicConfig) -> bool {
    next.servers.iter().any(|(id, new)| {
        active.servers.get(id).is_some_and(|old| {
            (&old.host, old.quorum_addr, old.election_addr)
                != (&new.host, new.quorum_addr, new.election_addr)
        })
    })
}

/// A multi is validated op by op against a scratch copy of the tree that has the earlier
/// ops applied, so `create /a; create /a/b` works. On the first failure the result is a
/// Multi of errors: Ok (rolled back) before it, its code, RuntimeInconsistency after
/// (PrepRequestProcessor plus DataTree.processTxn for multi).
///
/// Quotas are checked against `tree`, the state before the multi, not the scratch copy:
/// ZooKeeperServer.checkQuota reads the DataTree, which none of the multi's ops has reached
/// while the multi is prepped, so two creates that each fit pass together.
fn prep_multi(
    tree: &TreeVersion,
    ops: &[Request],
    context: &PrepContext,
    notes: &mut Vec<String>,
) -> Txn {
    let mut scratch = tree.clone();
    let mut txns = Vec::with_capacity(ops.len());
    let mut triggers = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let prepared = prep_op(&scratch, tree, op, context, notes).and_then(|txn| {
            // The zxid and time do not matter for validation of later ops.
            scratch
                .apply(scratch.zxid, 0, &txn, &mut triggers)
                .map(|_| txn)
                .map_err(|_| ErrorCode::SystemError)
        });
        match prepared {
            Ok(txn) => txns.push(txn),
            Err(code) => {
                let mut failed = Vec::with_capacity(ops.len());
                failed.extend((0..index).map(|_| Txn::Error {
                    code: ErrorCode::Ok,
                }));
                failed.push(Txn::Error { code });
                failed.extend((index + 1..ops.len()).map(|_| Txn::Error {
                    code: ErrorCode::RuntimeInconsistency,
                }));
                return Txn::Multi { ops: failed };
            }
        }
    }
    Txn::Multi { ops: txns }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::records::{Acl, CheckVersionRequest, DeleteRequest, SetDataRequest};

    fn context(auth: &[Id]) -> PrepContext<'_> {
        PrepContext {
            session_id: 7,
            auth,
            extended_types_enabled: true,
            skip_acl: false,
            enforce_quota: true,
            reconfig: ReconfigGate::Disabled,
        }
    }

    fn create(path: &str, flags: i32) -> Request {
        Request::Create(Create {
            op: OpCode::Create,
            path: path.into(),
            data: Some(vec![]),
            acl: acl::open_acl(),
            flags,
            ttl: -1,
        })
    }

    fn apply(tree: &mut TreeVersion, request: &Request) -> Result<(), ErrorCode> {
        let txn = prep(tree, request, &context(&[]))?;
        let zxid = tree.zxid + 1;
        tree.apply(zxid, 0, &txn, &mut Vec::new())
            .map(|_| ())
            .map_err(|_| ErrorCode::SystemError)
    }

    #[test]
    fn create_errors_follow_prep_request_processor_order() {
        let mut tree = TreeVersion::new();
        assert_eq!(apply(&mut tree, &create("/a/b", 0)), Err(ErrorCode::NoNode));
        assert_eq!(apply(&mut tree, &create("/a/", 0)), Err(ErrorCode::NoNode));
        assert_eq!(
            apply(&mut tree, &create("a", 0)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            apply(&mut tree, &create("/a", 9)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(apply(&mut tree, &create("/a", 0)), Ok(()));
        assert_eq!(
            apply(&mut tree, &create("/a", 0)),
            Err(ErrorCode::NodeExists)
        );
        assert_eq!(
            apply(&mut tree, &create("/a/", 0)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(apply(&mut tree, &create("/e", 1)), Ok(()));
        assert_eq!(
            apply(&mut tree, &create("/e/x", 0)),
            Err(ErrorCode::NoChildrenForEphemerals)
        );
        let no_acl = Request::Create(Create {
            op: OpCode::Create,
            path: "/n".into(),
            data: None,
            acl: vec![],
            flags: 0,
            ttl: -1,
        });
        assert_eq!(apply(&mut tree, &no_acl), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn sequential_names_use_the_parent_cversion() {
        let mut tree = TreeVersion::new();
        assert_eq!(apply(&mut tree, &create("/q", 0)), Ok(()));
        assert_eq!(apply(&mut tree, &create("/q/x", 0)), Ok(()));
        let txn = prep(&tree, &create("/q/s-", 2), &context(&[]));
        assert!(matches!(txn, Ok(Txn::Create { ref path, .. }) if path == "/q/s-0000000001"));
    }

    #[test]
    fn versions_are_checked_and_wrap_to_zero() {
        assert_eq!(next_version(3, 3), Ok(4));
        assert_eq!(next_version(3, -1), Ok(4));
        assert_eq!(next_version(3, 2), Err(ErrorCode::BadVersion));
        assert_eq!(next_version(-2, -1), Ok(0));
    }

    #[test]
    fn delete_refuses_system_nodes_and_checks_version_before_children() {
        let mut tree = TreeVersion::new();
        let delete = |path: &str, version| {
            Request::Delete(DeleteRequest {
                path: path.into(),
                version,
            })
        };
        assert_eq!(
            apply(&mut tree, &delete("/zookeeper", -1)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            apply(&mut tree, &delete("/", -1)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(apply(&mut tree, &create("/p", 0)), Ok(()));
        assert_eq!(apply(&mut tree, &create("/p/c", 0)), Ok(()));
        assert_eq!(
            apply(&mut tree, &delete("/p", 5)),
            Err(ErrorCode::BadVersion)
        );
        assert_eq!(apply(&mut tree, &delete("/p", 0)), Err(ErrorCode::NotEmpty));
    }

    #[test]
    fn failed_multi_reports_rolled_back_failed_and_inconsistent_ops() {
        let tree = TreeVersion::new();
        let ops = vec![
            create("/m", 0),
            create("/m/child", 0),
            Request::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 5,
            }),
            Request::SetData(SetDataRequest {
                path: "/m".into(),
                data: None,
                version: -1,
            }),
        ];
        let txn = prep(&tree, &Request::Multi(ops), &context(&[]));
        let codes: Vec<ErrorCode> = match txn {
            Ok(Txn::Multi { ops }) => ops
                .iter()
                .filter_map(|op| match op {
                    Txn::Error { code } => Some(*code),
                    _ => None,
                })
                .collect(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            codes,
            vec![
                ErrorCode::Ok,
                ErrorCode::Ok,
                ErrorCode::BadVersion,
                ErrorCode::RuntimeInconsistency
            ]
        );
    }

    fn reconfig_view() -> ReconfigView {
        let active = DynamicConfig::non_incremental(
            "server.1=127.0.0.1:2001:3001;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002;127.0.0.1:4002\n\
             server.3=127.0.0.1:2003:3003;127.0.0.1:4003",
            true,
            0x100000000,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        ReconfigView {
            last_seen_version: active.version,
            active,
            synced: vec![1, 2, 3],
            next_zxid: 0x100000005,
            standalone_enabled: true,
        }
    }

    fn reconfig(joining: &str, leaving: &str, members: &str, config_id: i64) -> Request {
        Request::Reconfig(ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: members.into(),
            cur_config_id: config_id,
        })
    }

    /// PrepRequestProcessor's reconfig checks, in its order: disabled, standalone, in
    /// progress, curConfigId, the new configuration, voters, the synced quorum, the ACL.
    #[test]
    fn reconfig_checks_follow_prep_request_processor_order() {
        let tree = TreeVersion::new();
        let super_id = [Id {
            scheme: "super".into(),
            id: String::new(),
        }];
        let view = reconfig_view();
        let run = |request: &Request, gate: ReconfigGate, auth: &[Id]| {
            let context = PrepContext {
                reconfig: gate,
                ..context(auth)
            };
            prep(&tree, request, &context)
        };
        let leave = reconfig("", "3", "", -1);
        assert_eq!(
            run(&leave, ReconfigGate::Disabled, &super_id),
            Err(ErrorCode::ReconfigDisabled)
        );
        assert_eq!(
            run(&leave, ReconfigGate::Standalone, &super_id),
            Err(ErrorCode::Unimplemented)
        );
        let in_progress = ReconfigView {
            last_seen_version: 0x100000003,
            ..view.clone()
        };
        assert_eq!(
            run(
                &reconfig("", "x", "", 99),
                ReconfigGate::Leader(&in_progress),
                &[]
            ),
            Err(ErrorCode::ReconfigInProgress)
        );
        let gate = ReconfigGate::Leader(&view);
        assert_eq!(
            run(&reconfig("", "x", "", 99), gate, &[]),
            Err(ErrorCode::BadVersion)
        );
        assert_eq!(
            run(&reconfig("", "x", "", 0x100000000), gate, &[]),
            Err(ErrorCode::MarshallingError)
        );
        assert_eq!(
            run(&reconfig("", "2,3", "", -1), gate, &[]),
            Err(ErrorCode::BadArguments)
        );
        let no_quorum = ReconfigView {
            synced: vec![1],
            ..view.clone()
        };
        assert_eq!(
            run(&leave, ReconfigGate::Leader(&no_quorum), &[]),
            Err(ErrorCode::NewConfigNoQuorum)
        );
        // Everything else holds: the ACL of /zookeeper/config (world READ) is last.
        assert_eq!(run(&leave, gate, &[]), Err(ErrorCode::NoAuth));
        // A membership change is a Reconfig txn whose text carries the reconfig's zxid as
        // version, and so is keeping the membership or moving a member's client port;
        // moving its quorum or election address (or host) is not implemented.
        match run(&leave, gate, &super_id) {
            Ok(Txn::Reconfig { data }) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                assert!(!text.contains("server.3="), "{text}");
                assert!(text.ends_with("\nversion=100000005"), "{text}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let moved = reconfig(
            "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4999",
            "",
            "",
            -1,
        );
        match run(&moved, gate, &super_id) {
            Ok(Txn::Reconfig { data }) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                assert!(
                    text.contains("server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4999\n"),
                    "{text}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        for quorum_moved in [
            "server.2=127.0.0.1:2999:3002:participant;127.0.0.1:4002",
            "server.2=127.0.0.1:2002:3999:participant;127.0.0.1:4002",
            "server.2=localhost:2002:3002:participant;127.0.0.1:4002",
        ] {
            assert_eq!(
                run(&reconfig(quorum_moved, "", "", -1), gate, &super_id),
                Err(ErrorCode::Unimplemented),
                "{quorum_moved}"
            );
        }
        let observes = reconfig(
            "server.3=127.0.0.1:2003:3003:observer;127.0.0.1:4003",
            "",
            "",
            -1,
        );
        assert!(matches!(
            run(&observes, gate, &super_id),
            Ok(Txn::Reconfig { .. })
        ));
        let same = view.active.to_dynamic_file_text().replace('\n', ",");
        match run(&reconfig("", "", &same, -1), gate, &super_id) {
            Ok(Txn::Reconfig { data }) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                assert!(text.ends_with("\nversion=100000005"), "{text}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let skip = PrepContext {
            skip_acl: true,
            reconfig: gate,
            ..context(&[])
        };
        let rejoin = reconfig(
            "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002",
            "",
            "",
            -1,
        );
        assert!(matches!(
            prep(&tree, &rejoin, &skip),
            Ok(Txn::Reconfig { .. })
        ));
    }

    #[test]
    fn acl_checks_use_the_callers_ids() {
        let mut tree = TreeVersion::new();
        let digest = acl::generate_digest("u:p").unwrap_or_default();
        let restricted = Request::Create(Create {
            op: OpCode::Create,
            path: "/r".into(),
            data: None,
            acl: vec![Acl {
                perms: perms::READ,
                id: Id {
                    scheme: "digest".into(),
                    id: digest,
                },
            }],
            flags: 0,
            ttl: -1,
        });
        assert_eq!(apply(&mut tree, &restricted), Ok(()));
        let set = Request::SetData(SetDataRequest {
            path: "/r".into(),
            data: None,
            version: -1,
        });
        assert_eq!(apply(&mut tree, &set), Err(ErrorCode::NoAuth));
        let super_id = [Id {
            scheme: "super".into(),
            id: String::new(),
        }];
        assert!(prep(&tree, &set, &context(&super_id)).is_ok());
    }

    #[test]
    fn enforced_hard_quota_refuses_create_and_set_data_checked_before_the_multi() {
        let mut tree = TreeVersion::new();
        for path in ["/h", "/zookeeper/quota/h"] {
            assert_eq!(apply(&mut tree, &create(path, 0)), Ok(()));
        }
        let create_with = |path: &str, data: &[u8]| {
            Request::Create(Create {
                op: OpCode::Create,
                path: path.into(),
                data: Some(data.to_vec()),
                acl: acl::open_acl(),
                flags: 0,
                ttl: -1,
            })
        };
        let limits = create_with(
            "/zookeeper/quota/h/zookeeper_limits",
            b"count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=3",
        );
        assert_eq!(apply(&mut tree, &limits), Ok(()));
        let stats = create_with("/zookeeper/quota/h/zookeeper_stats", b"count=0,bytes=0");
        assert_eq!(apply(&mut tree, &stats), Ok(()));
        assert_eq!(apply(&mut tree, &create("/h/a", 0)), Ok(()));
        // Two creates that each fit (count 2 + 1 <= 3) pass together in one multi.
        let multi = Request::Multi(vec![create("/h/b", 0), create("/h/c", 0)]);
        assert!(matches!(
            prep(&tree, &multi, &context(&[])),
            Ok(Txn::Multi { ref ops }) if ops.iter().all(|op| matches!(op, Txn::Create { .. }))
        ));
        assert_eq!(apply(&mut tree, &create("/h/b", 0)), Ok(()));
        assert_eq!(
            apply(&mut tree, &create("/h/c", 0)),
            Err(ErrorCode::QuotaExceeded)
        );
        let set = |data: &[u8]| {
            Request::SetData(SetDataRequest {
                path: "/h/a".into(),
                data: Some(data.to_vec()),
                version: -1,
            })
        };
        assert_eq!(apply(&mut tree, &set(b"1234")), Ok(()));
        assert_eq!(
            apply(&mut tree, &set(b"12345")),
            Err(ErrorCode::QuotaExceeded)
        );
        let mut notes = Vec::new();
        let off = PrepContext {
            enforce_quota: false,
            ..context(&[])
        };
        assert!(prep_noting(&tree, &set(b"12345"), &off, &mut notes).is_ok());
        assert!(
            notes.is_empty(),
            "nothing checked, nothing noted when not enforced"
        );
        assert!(prep_noting(&tree, &create("/h/c", 0), &context(&[]), &mut notes).is_err());
        assert_eq!(
            notes,
            vec!["Quota exceeded: /h [current count=4, hardCountLimit=3]".to_string()]
        );
    }
}
