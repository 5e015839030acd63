//! [pure] ZooKeeper's txns (the data of PROPOSAL and INFORM: `TxnHeader`, the record, the
//! `TxnDigest`, as `zkformat::txn` decodes them) as ringkeeper's log records, and a client
//! request as the REQUEST a learner sends.

use crate::jute::codec::Writer;
use crate::jute::protocol::ErrorCode;
use crate::quorum::Forwarded;
use crate::tree::{ttl_owner, Txn, CONTAINER_OWNER};
use crate::txnlog::format::{error_code_from_i32, LogRecord};
use crate::zkformat::opcode;
use crate::zkformat::txn::{decode_entry, ZkEntry, ZkTxn};

use super::wire::LearnerRequest;

/// A txn ringkeeper cannot take as ZooKeeper wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("undecodable txn: {0}")]
    Decode(String),
    #[error("{0}")]
    Unsupported(String),
}

/// One PROPOSAL's or INFORM's data as ringkeeper's log record, with its header (the learner
/// matches `client_id`/`cxid` to the requests it forwarded).
pub fn record_of(data: &[u8]) -> Result<(ZkEntry, LogRecord), TxnError> {
    let entry = decode_entry(data).map_err(|error| TxnError::Decode(error.to_string()))?;
    let txn = convert(entry.header.op, entry.header.client_id, &entry.txn)?;
    let record = LogRecord {
        zxid: entry.header.zxid,
        time_ms: entry.header.time_ms,
        txn,
    };
    Ok((entry, record))
}

/// ZooKeeper's txn of type `op` from session `client_id` as ringkeeper's.
fn convert(op: i32, client_id: i64, txn: &ZkTxn) -> Result<Txn, TxnError> {
    Ok(match txn {
        ZkTxn::Create {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
            ..
        } => Txn::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            ephemeral_owner: if *ephemeral { client_id } else { 0 },
            parent_cversion: *parent_cversion,
        },
        ZkTxn::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => Txn::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            ephemeral_owner: CONTAINER_OWNER,
            parent_cversion: *parent_cversion,
        },
        ZkTxn::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl_ms,
        } => Txn::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            ephemeral_owner: ttl_owner(*ttl_ms),
            parent_cversion: *parent_cversion,
        },
        ZkTxn::Delete { path } => Txn::Delete { path: path.clone() },
        ZkTxn::SetData { path, data, .. } if op == opcode::RECONFIG => Txn::Reconfig {
            data: data.clone().unwrap_or_default(),
        },
        ZkTxn::SetData {
            path,
            data,
            version,
        } => Txn::SetData {
            path: path.clone(),
            data: data.clone(),
            version: *version,
        },
        ZkTxn::SetAcl { path, acl, version } => Txn::SetAcl {
            path: path.clone(),
            acl: acl.clone(),
            version: *version,
        },
        ZkTxn::Check { path, .. } => Txn::Check { path: path.clone() },
        ZkTxn::Error { code } => Txn::Error {
            code: error_code_from_i32(*code).unwrap_or(ErrorCode::SystemError),
        },
        ZkTxn::Multi { ops } => {
            // A multi that failed at prep holds the sub-txns before the failing op as they
            // are, the failing op's error, and RUNTIMEINCONSISTENCY errors after it;
            // DataTree.processTxn applies none of them (the others become ErrorTxn(OK)).
            // ringkeeper records a failed multi as a multi of errors: the same.
            let failed = ops.iter().any(|op| matches!(op, ZkTxn::Error { .. }));
            let mut converted = Vec::with_capacity(ops.len());
            let mut after_failure = false;
            for sub in ops {
                converted.push(match sub {
                    ZkTxn::Error { .. } => {
                        after_failure = true;
                        convert(opcode::ERROR, client_id, sub)?
                    }
                    _ if failed => Txn::Error {
                        code: if after_failure {
                            ErrorCode::RuntimeInconsistency
                        } else {
                            ErrorCode::Ok
                        },
                    },
                    _ => convert(crate::zkformat::txn::op_of(sub), client_id, sub)?,
                });
            }
            Txn::Multi { ops: converted }
        }
        ZkTxn::CreateSession { timeout_ms } => Txn::CreateSession {
            session_id: client_id,
            timeout_ms: *timeout_ms,
        },
        ZkTxn::CloseSession { paths: Some(paths) } => Txn::CloseSession {
            session_id: client_id,
            ephemerals: paths.clone(),
        },
        ZkTxn::CloseSession { paths: None } => {
            // Before 3.6, or with zookeeper.closeSessionTxn.enabled=false, the leader does not
            // list the session's ephemerals in the txn; every server then deletes what its own
            // tree holds. ringkeeper's txn carries the list, so it cannot take this one.
            return Err(TxnError::Unsupported(format!(
                "closeSession of {client_id:#x} without its ephemerals \
                 (zookeeper.closeSessionTxn.enabled=false is not supported)"
            )));
        }
    })
}

/// Where a txn came from, for its `TxnHeader`: the session and the client's xid. A ZooKeeper
/// learner matches a PROPOSAL's or INFORM's header to the request it forwarded
/// (CommitProcessor: same session, same cxid); a txn whose origin the leader does not know
/// (one of its own clients') gets the session its record names, else 0.
pub type Origin = (i64, i32);

/// ringkeeper's log record as ZooKeeper's txn (`TxnHeader`, the record, and the leader's
/// `TxnDigest` when it has one): what a ringkeeper leader sends ZooKeeper's learners in
/// PROPOSAL and INFORM. The inverse of [`record_of`] for every txn a leader proposes.
pub fn entry_of(
    record: &LogRecord,
    origin: Option<Origin>,
    digest: Option<crate::zkformat::txn::TxnDigest>,
) -> Result<ZkEntry, TxnError> {
    let (op, txn) = zk_txn(&record.txn)?;
    // The header's session owns what the txn creates as ephemeral, opens or closes
    // (DataTree.processTxn takes the owner from the header).
    let client_id = session_of(&record.txn)
        .or(origin.map(|(session, _)| session))
        .unwrap_or(0);
    let cxid = origin
        .filter(|(session, _)| *session == client_id)
        .map_or(0, |(_, cxid)| cxid);
    Ok(ZkEntry {
        header: crate::zkformat::txn::TxnHeader {
            client_id,
            cxid,
            zxid: record.zxid,
            time_ms: record.time_ms,
            op,
        },
        txn,
        digest,
    })
}

/// The session a txn itself names, if any.
fn session_of(txn: &Txn) -> Option<i64> {
    match txn {
        Txn::Create {
            ephemeral_owner, ..
        } => match crate::tree::NodeKind::from_owner(*ephemeral_owner) {
            crate::tree::NodeKind::Ephemeral(owner) => Some(owner),
            _ => None,
        },
        Txn::CreateSession { session_id, .. } | Txn::CloseSession { session_id, .. } => {
            Some(*session_id)
        }
        Txn::Multi { ops } => ops.iter().find_map(session_of),
        _ => None,
    }
}

/// ZooKeeper's opcode and record of a ringkeeper txn (PrepRequestProcessor's choices: a
/// create of an ephemeral or persistent node is `create`, a container `createContainer`, a
/// TTL node `createTTL`; a failed request an `ErrorTxn`).
fn zk_txn(txn: &Txn) -> Result<(i32, ZkTxn), TxnError> {
    use crate::tree::NodeKind;
    Ok(match txn {
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => match NodeKind::from_owner(*ephemeral_owner) {
            NodeKind::Container => (
                opcode::CREATE_CONTAINER,
                ZkTxn::CreateContainer {
                    path: path.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    parent_cversion: *parent_cversion,
                },
            ),
            NodeKind::Ttl(ttl_ms) => (
                opcode::CREATE_TTL,
                ZkTxn::CreateTtl {
                    path: path.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    parent_cversion: *parent_cversion,
                    ttl_ms,
                },
            ),
            kind => (
                opcode::CREATE,
                ZkTxn::Create {
                    op: opcode::CREATE,
                    path: path.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    ephemeral: matches!(kind, NodeKind::Ephemeral(_)),
                    parent_cversion: *parent_cversion,
                },
            ),
        },
        Txn::Delete { path } => (opcode::DELETE, ZkTxn::Delete { path: path.clone() }),
        Txn::SetData {
            path,
            data,
            version,
        } => (
            opcode::SET_DATA,
            ZkTxn::SetData {
                path: path.clone(),
                data: data.clone(),
                version: *version,
            },
        ),
        Txn::SetAcl { path, acl, version } => (
            opcode::SET_ACL,
            ZkTxn::SetAcl {
                path: path.clone(),
                acl: acl.clone(),
                version: *version,
            },
        ),
        // CheckVersionTxn's version changes nothing on replay (DataTree.processTxn reads the
        // path only); ringkeeper's record does not keep it.
        Txn::Check { path } => (
            opcode::CHECK,
            ZkTxn::Check {
                path: path.clone(),
                version: -1,
            },
        ),
        Txn::Error { code } => (opcode::ERROR, ZkTxn::Error { code: code.code() }),
        Txn::Multi { ops } => {
            // A failed multi is a multi of errors here; ZooKeeper's keeps the sub-txns before
            // the failing one, which DataTree.processTxn turns into ErrorTxn(OK) without
            // applying them: the same results, the same tree.
            let mut converted = Vec::with_capacity(ops.len());
            for sub in ops {
                if matches!(
                    sub,
                    Txn::Multi { .. }
                        | Txn::CreateSession { .. }
                        | Txn::CloseSession { .. }
                        | Txn::Reconfig { .. }
                ) {
                    return Err(TxnError::Unsupported(
                        "a multi holding a session, reconfig or multi txn".into(),
                    ));
                }
                converted.push(zk_txn(sub)?.1);
            }
            (opcode::MULTI, ZkTxn::Multi { ops: converted })
        }
        Txn::CreateSession { timeout_ms, .. } => (
            opcode::CREATE_SESSION,
            ZkTxn::CreateSession {
                timeout_ms: *timeout_ms,
            },
        ),
        Txn::CloseSession { ephemerals, .. } => (
            opcode::CLOSE_SESSION,
            ZkTxn::CloseSession {
                paths: Some(ephemerals.clone()),
            },
        ),
        Txn::Reconfig { .. } => {
            return Err(TxnError::Unsupported(
                "reconfig in a mixed ensemble is not supported".into(),
            ))
        }
    })
}

/// What a learner sends its leader for a forwarded client request: REQUEST (createSession,
/// writes, sync) or REVALIDATE. Returns the packet kind, its data and its auth ids.
pub fn learner_packet(forwarded: &Forwarded) -> (i32, Vec<u8>, Vec<crate::jute::records::Id>) {
    use super::wire::{encode_revalidate, kind};
    match forwarded {
        Forwarded::CreateSession {
            session_id,
            timeout_ms,
        } => {
            // ZooKeeperServer.createSession: cxid 0, the timeout as the whole request.
            let request = LearnerRequest {
                session_id: *session_id,
                cxid: 0,
                op: opcode::CREATE_SESSION,
                body: timeout_ms.to_be_bytes().to_vec(),
            };
            (kind::REQUEST, request.encode(), Vec::new())
        }
        Forwarded::Revalidate {
            session_id,
            timeout_ms,
        } => (
            kind::REVALIDATE,
            encode_revalidate(*session_id, *timeout_ms),
            Vec::new(),
        ),
        Forwarded::Request {
            session_id,
            xid,
            request,
            auth,
        } => {
            let mut body = Writer::new();
            request.encode(&mut body);
            let request = LearnerRequest {
                session_id: *session_id,
                cxid: *xid,
                op: request.op_type(),
                body: body.into_bytes(),
            };
            (kind::REQUEST, request.encode(), auth.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::records::{Acl, Id};
    use crate::zkformat::txn::{encode_entry, TxnHeader};

    fn entry(op: i32, txn: ZkTxn) -> Vec<u8> {
        encode_entry(&ZkEntry {
            header: TxnHeader {
                client_id: 0x0400_0000_0000_1234,
                cxid: 7,
                zxid: 0x1_0000_0008,
                time_ms: 1_700_000_000_000,
                op,
            },
            txn,
            digest: None,
        })
    }

    fn open() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    #[test]
    fn an_ephemeral_create_is_owned_by_the_header_session() {
        let bytes = entry(
            opcode::CREATE,
            ZkTxn::Create {
                op: opcode::CREATE,
                path: "/e".into(),
                data: Some(b"x".to_vec()),
                acl: open(),
                ephemeral: true,
                parent_cversion: 3,
            },
        );
        let (entry, record) = record_of(&bytes).unwrap();
        assert_eq!((entry.header.cxid, record.zxid), (7, 0x1_0000_0008));
        assert_eq!(
            record.txn,
            Txn::Create {
                path: "/e".into(),
                data: Some(b"x".to_vec()),
                acl: open(),
                ephemeral_owner: 0x0400_0000_0000_1234,
                parent_cversion: 3,
            }
        );
    }

    #[test]
    fn containers_ttl_nodes_sessions_and_errors_convert() {
        let container = entry(
            opcode::CREATE_CONTAINER,
            ZkTxn::CreateContainer {
                path: "/c".into(),
                data: None,
                acl: open(),
                parent_cversion: 1,
            },
        );
        assert!(matches!(
            record_of(&container).unwrap().1.txn,
            Txn::Create {
                ephemeral_owner: CONTAINER_OWNER,
                ..
            }
        ));
        let ttl = entry(
            opcode::CREATE_TTL,
            ZkTxn::CreateTtl {
                path: "/t".into(),
                data: None,
                acl: open(),
                parent_cversion: 1,
                ttl_ms: 5000,
            },
        );
        let owner = ttl_owner(5000);
        assert!(matches!(
            record_of(&ttl).unwrap().1.txn,
            Txn::Create { ephemeral_owner, .. } if ephemeral_owner == owner
        ));
        let session = entry(
            opcode::CREATE_SESSION,
            ZkTxn::CreateSession { timeout_ms: 10_000 },
        );
        assert_eq!(
            record_of(&session).unwrap().1.txn,
            Txn::CreateSession {
                session_id: 0x0400_0000_0000_1234,
                timeout_ms: 10_000
            }
        );
        let error = entry(opcode::ERROR, ZkTxn::Error { code: -110 });
        assert_eq!(
            record_of(&error).unwrap().1.txn,
            Txn::Error {
                code: ErrorCode::NodeExists
            }
        );
        let bare_close = entry(opcode::CLOSE_SESSION, ZkTxn::CloseSession { paths: None });
        assert!(matches!(
            record_of(&bare_close),
            Err(TxnError::Unsupported(_))
        ));
    }

    #[test]
    fn a_forwarded_create_is_a_request_with_the_client_record() {
        use crate::jute::protocol::OpCode;
        use crate::jute::request::{Create, Request};
        let forwarded = Forwarded::Request {
            session_id: 0x0400_0000_0000_1234,
            xid: 1,
            request: Request::Create(Create {
                op: OpCode::Create,
                path: "/golden/from-observer-0".into(),
                data: Some(b"hey".to_vec()),
                acl: open(),
                flags: 0,
                ttl: -1,
            }),
            auth: vec![Id {
                scheme: "ip".into(),
                id: "127.0.0.1".into(),
            }],
        };
        let (kind, data, auth) = learner_packet(&forwarded);
        assert_eq!(kind, super::super::wire::kind::REQUEST);
        assert_eq!(auth.len(), 1);
        // The bytes scripts/capture-zk-quorum.py sent, which ZooKeeper 3.8 took.
        let golden = "0400000000001234000000010000000100000017\
                      2f676f6c64656e2f66726f6d2d6f627365727665722d3000000003686579\
                      000000010000001f00000005776f726c6400000006616e796f6e6500000000";
        assert_eq!(hex(&data), golden);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod leader_tests {
    use super::*;
    use crate::tree::acl::open_acl as open;
    use crate::zkformat::txn::encode_entry;

    /// Every txn a leader proposes comes back unchanged through ZooKeeper's bytes.
    #[test]
    fn a_leaders_records_round_trip_through_zookeepers_txns() {
        let session = 0x0300_0000_0000_0007;
        let create = |owner| Txn::Create {
            path: "/n".into(),
            data: Some(b"d".to_vec()),
            acl: open(),
            ephemeral_owner: owner,
            parent_cversion: 4,
        };
        let txns = vec![
            create(0),
            create(session),
            create(CONTAINER_OWNER),
            create(ttl_owner(5_000)),
            Txn::Delete { path: "/n".into() },
            Txn::SetData {
                path: "/n".into(),
                data: None,
                version: 3,
            },
            Txn::SetAcl {
                path: "/n".into(),
                acl: open(),
                version: 2,
            },
            Txn::Error {
                code: ErrorCode::NoNode,
            },
            Txn::Multi {
                ops: vec![create(session), Txn::Check { path: "/n".into() }],
            },
            Txn::Multi {
                ops: vec![
                    Txn::Error {
                        code: ErrorCode::Ok,
                    },
                    Txn::Error {
                        code: ErrorCode::BadVersion,
                    },
                    Txn::Error {
                        code: ErrorCode::RuntimeInconsistency,
                    },
                ],
            },
            Txn::CreateSession {
                session_id: session,
                timeout_ms: 10_000,
            },
            Txn::CloseSession {
                session_id: session,
                ephemerals: vec!["/e".into()],
            },
        ];
        for (index, txn) in txns.into_iter().enumerate() {
            let record = LogRecord {
                zxid: 0x2_0000_0001 + index as i64,
                time_ms: 1_700_000_000_000,
                txn,
            };
            let entry = entry_of(&record, Some((session, 9)), None).unwrap();
            let (decoded, back) = record_of(&encode_entry(&entry)).unwrap();
            assert_eq!(back, record, "txn {index}");
            assert_eq!(decoded.header.zxid, record.zxid);
        }
    }

    #[test]
    fn the_header_session_is_the_txns_own_and_the_cxid_only_its_requests() {
        let record = LogRecord {
            zxid: 0x2_0000_0001,
            time_ms: 0,
            txn: Txn::CreateSession {
                session_id: 0x11,
                timeout_ms: 4_000,
            },
        };
        // An origin of another session (the leader's own client's) does not lend its cxid.
        let entry = entry_of(&record, Some((0x22, 5)), None).unwrap();
        assert_eq!((entry.header.client_id, entry.header.cxid), (0x11, 0));
        let delete = LogRecord {
            zxid: 0x2_0000_0002,
            time_ms: 0,
            txn: Txn::Delete { path: "/d".into() },
        };
        let entry = entry_of(&delete, Some((0x22, 5)), None).unwrap();
        assert_eq!((entry.header.client_id, entry.header.cxid), (0x22, 5));
        let entry = entry_of(&delete, None, None).unwrap();
        assert_eq!((entry.header.client_id, entry.header.cxid), (0, 0));
        let reconfig = LogRecord {
            zxid: 0x2_0000_0003,
            time_ms: 0,
            txn: Txn::Reconfig { data: Vec::new() },
        };
        assert!(matches!(
            entry_of(&reconfig, None, None),
            Err(TxnError::Unsupported(_))
        ));
    }
}
