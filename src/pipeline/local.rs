//! [pure] The rules of local sessions and read-only mode, as Apache ZooKeeper 3.9 applies them:
//! which requests a read-only server refuses (ReadOnlyRequestProcessor), which requests make a
//! local session global first (QuorumZooKeeperServer.checkUpgradeSession), and how a read-only
//! server answers a ConnectRequest (ZooKeeperServer.processConnectRequest with
//! ReadOnlyZooKeeperServer.validateSession and setLocalSessionFlag).
//!
//! The driver (`driver/sessions.rs`, `driver/ensemble/`) keeps the local sessions and performs
//! what these functions decide.

use crate::jute::protocol::{CreateMode, ErrorCode, OpCode};
use crate::jute::request::Request;
use crate::tree::TxnResult;

/// How long a member looks for a leader before it serves read-only clients: QuorumPeer's
/// LOOKING case starts its ReadOnlyZooKeeperServer after `max(2000, tickTime)` ms ("lower-bound
/// grace period to 2 secs"), if it is still looking then.
pub fn read_only_grace_ms(tick_ms: u64) -> u64 {
    tick_ms.max(2000)
}

/// What a read-only server does with a ConnectRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyConnect {
    /// The client did not ask for a read-only session (or is an old client without the
    /// readOnly byte): the connection is closed ("Refusing session request for not-read-only
    /// client").
    RefuseNotReadOnlyClient,
    /// A global session tries to reconnect: closed ("Refusing global session reconnection in
    /// RO mode"), so that its client goes on looking for a server with a quorum.
    RefuseGlobalSession,
    /// A new session while `localSessionsEnabled` is false: the read-only server's session
    /// tracker would make a global session, which ReadOnlyRequestProcessor refuses; the
    /// connection is closed (ZooKeeper answers the connect with a NotReadOnly reply header the
    /// client cannot read as a ConnectResponse, and the client gives up on that server too).
    RefuseNoLocalSessions,
    /// A new local session, answered with readOnly=true.
    NewLocal,
    /// A reconnect with a session id that is not global: resumed if it is one of this
    /// server's local sessions with the right password, else answered as expired.
    ResumeLocal,
}

pub fn read_only_connect(
    client_asked_read_only: bool,
    session_id: i64,
    is_global_session: bool,
    local_sessions_enabled: bool,
) -> ReadOnlyConnect {
    if !client_asked_read_only {
        ReadOnlyConnect::RefuseNotReadOnlyClient
    } else if session_id == 0 {
        if local_sessions_enabled {
            ReadOnlyConnect::NewLocal
        } else {
            ReadOnlyConnect::RefuseNoLocalSessions
        }
    } else if is_global_session {
        ReadOnlyConnect::RefuseGlobalSession
    } else {
        ReadOnlyConnect::ResumeLocal
    }
}

/// Whether a read-only server answers a request with NotReadOnly (ReadOnlyRequestProcessor:
/// sync, create*, delete*, setData, reconfig, setACL, multi, check). Every other request that
/// reaches the pipeline is a local session's closeSession, which goes through; reads never
/// reach it.
pub fn refused_when_read_only(request: &Request) -> bool {
    !matches!(request, Request::CloseSession)
}

/// Whether a request of a local session needs the session to be global first: a create or
/// create2 of an ephemeral node, alone or inside a multi (checkUpgradeSession looks at
/// exactly these opcodes; a TTL or container node cannot be ephemeral).
pub fn creates_ephemeral(request: &Request) -> bool {
    match request {
        Request::Create(create) => {
            matches!(create.op, OpCode::Create | OpCode::Create2)
                && CreateMode::from_flags(create.flags).is_some_and(|mode| mode.ephemeral)
        }
        Request::Multi(ops) => ops.iter().any(creates_ephemeral),
        _ => false,
    }
}

/// The answer to a request that would upgrade a local session while upgrading is off: the
/// create fails with EphemeralOnLocalSession; in a multi, that op does, the ops before it
/// report Ok (rolled back) and those after RuntimeInconsistency, as any failed multi
/// (observed on ZooKeeper 3.8's leader).
pub fn ephemeral_on_local_session(request: &Request) -> TxnResult {
    match request {
        Request::Multi(ops) => {
            let failing = ops.iter().position(creates_ephemeral).unwrap_or(0);
            TxnResult::Multi(
                (0..ops.len())
                    .map(|index| {
                        TxnResult::Error(match index.cmp(&failing) {
                            std::cmp::Ordering::Less => ErrorCode::Ok,
                            std::cmp::Ordering::Equal => ErrorCode::EphemeralOnLocalSession,
                            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                        })
                    })
                    .collect(),
            )
        }
        _ => TxnResult::Error(ErrorCode::EphemeralOnLocalSession),
    }
}

/// The server id a session id carries in its top byte (SessionTrackerImpl
/// .initializeNextSessionId; LeaderSessionTracker.getServerIdFromSessionId).
pub fn server_id_of_session(session_id: i64) -> u64 {
    (session_id as u64) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::request::Create;
    use crate::jute::request::Request;
    use crate::tree::acl;

    fn create(op: OpCode, flags: i32) -> Request {
        Request::Create(Create {
            op,
            path: "/a".into(),
            data: None,
            acl: acl::open_acl(),
            flags,
            ttl: -1,
        })
    }

    #[test]
    fn the_read_only_grace_period_is_at_least_two_seconds() {
        assert_eq!(read_only_grace_ms(200), 2000);
        assert_eq!(read_only_grace_ms(3000), 3000);
    }

    #[test]
    fn a_read_only_server_gives_only_local_sessions_to_read_only_clients() {
        use ReadOnlyConnect::*;
        assert_eq!(
            read_only_connect(false, 0, false, true),
            RefuseNotReadOnlyClient
        );
        assert_eq!(
            read_only_connect(false, 7, false, true),
            RefuseNotReadOnlyClient
        );
        assert_eq!(read_only_connect(true, 0, false, true), NewLocal);
        assert_eq!(
            read_only_connect(true, 0, false, false),
            RefuseNoLocalSessions
        );
        assert_eq!(read_only_connect(true, 7, true, true), RefuseGlobalSession);
        assert_eq!(read_only_connect(true, 7, false, true), ResumeLocal);
    }

    #[test]
    fn only_a_local_close_session_passes_a_read_only_server() {
        assert!(!refused_when_read_only(&Request::CloseSession));
        assert!(refused_when_read_only(&create(OpCode::Create, 0)));
        assert!(refused_when_read_only(&Request::Multi(Vec::new())));
        assert!(refused_when_read_only(&Request::Sync(
            crate::jute::records::SyncRequest { path: "/".into() }
        )));
    }

    #[test]
    fn ephemeral_creates_alone_or_in_a_multi_upgrade_a_local_session() {
        assert!(creates_ephemeral(&create(OpCode::Create, 1)));
        assert!(creates_ephemeral(&create(OpCode::Create2, 3)));
        assert!(!creates_ephemeral(&create(OpCode::Create, 0)));
        assert!(!creates_ephemeral(&create(OpCode::Create, 2)));
        assert!(!creates_ephemeral(&create(OpCode::CreateContainer, 4)));
        assert!(creates_ephemeral(&Request::Multi(vec![
            create(OpCode::Create, 0),
            create(OpCode::Create, 1),
        ])));
        assert!(!creates_ephemeral(&Request::Multi(vec![create(
            OpCode::Create,
            0
        )])));
        assert!(!creates_ephemeral(&Request::CloseSession));
    }

    #[test]
    fn a_multi_with_an_ephemeral_fails_at_that_op_without_upgrading() {
        let multi = Request::Multi(vec![
            create(OpCode::Create, 0),
            create(OpCode::Create, 1),
            create(OpCode::Create, 0),
        ]);
        let codes: Vec<ErrorCode> = match ephemeral_on_local_session(&multi) {
            TxnResult::Multi(results) => results
                .into_iter()
                .map(|result| match result {
                    TxnResult::Error(code) => code,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            codes,
            [
                ErrorCode::Ok,
                ErrorCode::EphemeralOnLocalSession,
                ErrorCode::RuntimeInconsistency
            ]
        );
        assert!(matches!(
            ephemeral_on_local_session(&create(OpCode::Create2, 1)),
            TxnResult::Error(ErrorCode::EphemeralOnLocalSession)
        ));
    }

    #[test]
    fn a_session_id_carries_its_server_in_the_top_byte() {
        assert_eq!(server_id_of_session(0x0300_0001_2345_0000), 3);
        assert_eq!(server_id_of_session(0x0100_0089_a320_0000), 1);
    }
}
