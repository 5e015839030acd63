//! Encoding of server frames: replies (ReplyHeader then the response record), watch
//! notifications, multi responses (MultiResponse.serialize) and the connect response.

use super::codec::{Record, Writer};
use super::protocol::{xid, ErrorCode, EventType, KeeperState, OpCode};
use super::records::*;

/// A whole reply frame, length prefix included. `body` is written only when `err` is OK,
/// as ZooKeeper sends no response record with an error.
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut writer = Writer::for_frame();
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .encode(&mut writer);
    if err == ErrorCode::Ok {
        body(&mut writer);
    }
    writer.finish_frame()
}

/// The reply to a SASL request: ZooKeeperServer.processSasl sends the SetSASLResponse (zxid
/// 0) with an error too, its token null. The Java client depends on it: while SASL is in
/// progress ClientCnxn reads the token of every reply whatever its error, and a reply without
/// one fails the read and drops the connection before AuthFailed is reported.
pub fn sasl_reply_frame(xid: i32, err: ErrorCode, token: Option<Vec<u8>>) -> Vec<u8> {
    let mut writer = Writer::for_frame();
    ReplyHeader {
        xid,
        zxid: 0,
        err: err.code(),
    }
    .encode(&mut writer);
    SetSaslResponse { token }.encode(&mut writer);
    writer.finish_frame()
}

/// A reply with a header only.
pub fn header_frame(xid: i32, zxid: i64, err: ErrorCode) -> Vec<u8> {
    reply_frame(xid, zxid, err, |_| {})
}

/// A reply whose body is one record.
pub fn record_frame(xid: i32, zxid: i64, record: &impl Record) -> Vec<u8> {
    reply_frame(xid, zxid, ErrorCode::Ok, |writer| record.encode(writer))
}

/// A watch notification (xid -1). `zxid` is the zxid of the change, or -1 for events the
/// server synthesises on SetWatches.
pub fn notification_frame(zxid: i64, event: EventType, path: &str) -> Vec<u8> {
    let mut writer = Writer::for_frame();
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(&mut writer);
    WatcherEvent {
        event_type: event as i32,
        state: KeeperState::SyncConnected as i32,
        path: path.to_string(),
    }
    .encode(&mut writer);
    writer.finish_frame()
}

/// The ConnectResponse frame (no ReplyHeader). A refused session is timeout 0, id 0.
pub fn connect_frame(response: &ConnectResponse) -> Vec<u8> {
    let mut writer = Writer::for_frame();
    response.encode(&mut writer);
    writer.finish_frame()
}

/// One result of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// `create`: the path only (CreateResult(path), type create).
    Create {
        path: String,
    },
    /// create2, createTTL, createContainer: path and stat (type create2).
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    /// ErrorResult. Code Ok marks an op rolled back because a later one failed.
    Error(ErrorCode),
}

/// MultiResponse.serialize: a MultiHeader per result, then its record, then a done header.
pub fn encode_multi(writer: &mut Writer, results: &[OpResult]) {
    for result in results {
        let (op, err) = match result {
            OpResult::Create { .. } => (OpCode::Create, 0),
            OpResult::Create2 { .. } => (OpCode::Create2, 0),
            OpResult::Delete => (OpCode::Delete, 0),
            OpResult::SetData { .. } => (OpCode::SetData, 0),
            OpResult::Check => (OpCode::Check, 0),
            OpResult::GetData { .. } => (OpCode::GetData, 0),
            OpResult::GetChildren { .. } => (OpCode::GetChildren, 0),
            OpResult::Error(code) => (OpCode::Error, code.code()),
        };
        MultiHeader {
            op_type: op as i32,
            done: false,
            err,
        }
        .encode(writer);
        match result {
            OpResult::Create { path } => CreateResponse { path: path.clone() }.encode(writer),
            OpResult::Create2 { path, stat } => Create2Response {
                path: path.clone(),
                stat: stat.clone(),
            }
            .encode(writer),
            OpResult::Delete | OpResult::Check => {}
            OpResult::SetData { stat } => SetDataResponse { stat: stat.clone() }.encode(writer),
            OpResult::GetData { data, stat } => GetDataResponse {
                data: data.clone(),
                stat: stat.clone(),
            }
            .encode(writer),
            OpResult::GetChildren { children } => GetChildrenResponse {
                children: children.clone(),
            }
            .encode(writer),
            OpResult::Error(code) => ErrorResponse { err: code.code() }.encode(writer),
        }
    }
    MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    }
    .encode(writer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::codec::Reader;

    #[test]
    fn error_replies_carry_no_body() {
        let frame = reply_frame(7, 9, ErrorCode::NoNode, |writer| writer.write_i32(1));
        assert_eq!(frame.len(), 4 + 16);
        let header = ReplyHeader::from_bytes(&frame[4..]);
        assert_eq!(
            header,
            Ok(ReplyHeader {
                xid: 7,
                zxid: 9,
                err: -101
            })
        );
    }

    #[test]
    fn multi_response_ends_with_done_header() {
        let mut writer = Writer::new();
        encode_multi(
            &mut writer,
            &[OpResult::Delete, OpResult::Error(ErrorCode::NoNode)],
        );
        let bytes = writer.into_bytes();
        let mut reader = Reader::new(&bytes);
        let first = MultiHeader::decode(&mut reader);
        assert_eq!(
            first,
            Ok(MultiHeader {
                op_type: 2,
                done: false,
                err: 0
            })
        );
        let second = MultiHeader::decode(&mut reader);
        assert_eq!(
            second,
            Ok(MultiHeader {
                op_type: -1,
                done: false,
                err: -101
            })
        );
        assert_eq!(
            ErrorResponse::decode(&mut reader),
            Ok(ErrorResponse { err: -101 })
        );
        assert_eq!(
            MultiHeader::decode(&mut reader),
            Ok(MultiHeader {
                op_type: -1,
                done: true,
                err: -1
            })
        );
        assert!(reader.finish().is_ok());
    }
}
