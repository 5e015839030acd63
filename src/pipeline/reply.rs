//! [pure] Reply frames the pipeline computes: a write's answer from its transaction's result,
//! and the ConnectResponse of an established, resumed or refused session.

use crate::jute::protocol::{ErrorCode, OpCode};
use crate::jute::records::*;
use crate::jute::request::Request;
use crate::jute::response::{
    connect_frame, encode_multi, header_frame, record_frame, reply_frame, OpResult,
};
use crate::session::ConnRef;
use crate::tree::TxnResult;

use super::publish::CoreReply;

/// A ConnectResponse frame; clients that sent no readOnly byte get none back.
pub fn connect_reply_frame(response: &ConnectResponse, read_only_flag: bool) -> Vec<u8> {
    let mut frame = connect_frame(response);
    if !read_only_flag {
        // Drop the readOnly byte and shorten the length prefix to match.
        frame.pop();
        let length = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&length.to_be_bytes());
    }
    frame
}

/// The answer to a refused connect: a zero session, after which the connection closes.
pub fn refused_reply(conn: ConnRef, read_only_flag: bool) -> CoreReply {
    let frame = connect_reply_frame(
        &ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        },
        read_only_flag,
    );
    CoreReply::Connected {
        conn_id: conn.conn_id,
        session_id: 0,
        timeout_ms: 0,
        frame,
    }
}

/// The reply to a write, from the request and what its transaction produced.
pub fn write_reply(xid: i32, zxid: i64, request: &Request, result: &TxnResult) -> Vec<u8> {
    match (request, result) {
        (_, TxnResult::Error(code)) => header_frame(xid, zxid, *code),
        (Request::Create(create), TxnResult::Created { path, stat }) => {
            if create.op == OpCode::Create {
                record_frame(xid, zxid, &CreateResponse { path: path.clone() })
            } else {
                record_frame(
                    xid,
                    zxid,
                    &Create2Response {
                        path: path.clone(),
                        stat: stat.clone(),
                    },
                )
            }
        }
        (Request::SetData(_), TxnResult::DataSet { stat }) => {
            record_frame(xid, zxid, &SetDataResponse { stat: stat.clone() })
        }
        // FinalRequestProcessor: the new configuration's text and the config node's Stat.
        (Request::Reconfig(_), TxnResult::Reconfigured { data, stat }) => record_frame(
            xid,
            zxid,
            &GetDataResponse {
                data: Some(data.clone()),
                stat: stat.clone(),
            },
        ),
        (Request::SetAcl(_), TxnResult::AclSet { stat }) => {
            record_frame(xid, zxid, &SetAclResponse { stat: stat.clone() })
        }
        (Request::Multi(ops), TxnResult::Multi(results)) if ops.len() == results.len() => {
            let results: Vec<OpResult> = ops
                .iter()
                .zip(results)
                .map(|(op, result)| multi_result(op, result))
                .collect();
            reply_frame(xid, zxid, ErrorCode::Ok, |writer| {
                encode_multi(writer, &results)
            })
        }
        _ => header_frame(xid, zxid, ErrorCode::Ok),
    }
}

fn multi_result(op: &Request, result: &TxnResult) -> OpResult {
    match result {
        // Inside a multi, create2 answers like create (path only); createTTL and
        // createContainer answer with a stat (observed on ZooKeeper; FinalRequestProcessor).
        TxnResult::Created { path, stat } => match op {
            Request::Create(create) if matches!(create.op, OpCode::Create | OpCode::Create2) => {
                OpResult::Create { path: path.clone() }
            }
            _ => OpResult::Create2 {
                path: path.clone(),
                stat: stat.clone(),
            },
        },
        TxnResult::Deleted => OpResult::Delete,
        TxnResult::DataSet { stat } => OpResult::SetData { stat: stat.clone() },
        TxnResult::Checked => OpResult::Check,
        TxnResult::Error(code) => OpResult::Error(*code),
        _ => OpResult::Error(ErrorCode::SystemError),
    }
}
