//! Typed client requests: a RequestHeader's opcode selects the record that follows it.

use super::codec::{JuteError, Reader, Record, Writer};
use super::protocol::OpCode;
use super::records::*;

/// Any create flavour. `ttl` is -1 unless the request was createTTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub op: OpCode,
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(Create),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<Request>),
    MultiRead(Vec<Request>),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    DeleteContainer(String),
    Auth(AuthPacket),
    /// SetWatches and SetWatches2 alike (the former with empty persistent lists).
    SetWatches(SetWatches2),
    Sasl(GetSaslRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// ZooKeeper answers an unknown opcode with UNIMPLEMENTED and keeps the connection.
    UnknownOpCode(i32),
    Malformed(JuteError),
}

impl From<JuteError> for RequestError {
    fn from(error: JuteError) -> Self {
        RequestError::Malformed(error)
    }
}

impl Request {
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(create) => create.op,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Whether the request changes the tree and so goes through the write pipeline.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::DeleteContainer(_)
                | Request::CloseSession
                | Request::Sync(_)
        )
    }

    /// The path a single-path request names, for logs and `cons`.
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(create) => &create.path,
            Request::Delete(request) => &request.path,
            Request::Exists(request) => &request.path,
            Request::GetData(request) => &request.path,
            Request::SetData(request) => &request.path,
            Request::GetAcl(request) => &request.path,
            Request::SetAcl(request) => &request.path,
            Request::GetChildren(request) => &request.path,
            Request::GetChildren2(request) => &request.path,
            Request::Sync(request) => &request.path,
            Request::Check(request) => &request.path,
            Request::CheckWatches(request) => &request.path,
            Request::RemoveWatches(request) => &request.path,
            Request::DeleteContainer(path) => path,
            Request::GetAllChildrenNumber(request) => &request.path,
            Request::AddWatch(request) => &request.path,
            _ => return None,
        })
    }

    /// The `RequestHeader.type` that [`Request::encode`] writes a body for: [`Request::op_code`]
    /// except that SetWatches with persistent watches goes out as SetWatches2 (the decoder
    /// folds both into one variant, and only SetWatches2 carries persistent watches).
    pub fn op_type(&self) -> i32 {
        match self {
            Request::SetWatches(record)
                if !record.persistent_watches.is_empty()
                    || !record.persistent_recursive_watches.is_empty() =>
            {
                OpCode::SetWatches2 as i32
            }
            other => other.op_code() as i32,
        }
    }

    /// Encodes the body that [`Request::decode`]`(self.op_type(), ..)` reads back, so that a
    /// follower can hand a client's request to its leader. The inverse holds for every request
    /// `decode` produces; a value `decode` cannot produce loses what it cannot express:
    ///
    /// - `Create::ttl` travels only when `op` is CreateTtl (decode sets -1 otherwise);
    /// - `DeleteContainer` travels as a DeleteRequest with version -1 (decode reads the path
    ///   only);
    /// - a multi whose ops are not of the kinds a MultiHeader may name (create flavours,
    ///   delete, setData, check, getData, getChildren) encodes, but `decode` refuses it, as
    ///   ZooKeeper does.
    pub fn encode(&self, writer: &mut Writer) {
        match self {
            Request::Create(create) => {
                debug_assert!(matches!(
                    create.op,
                    OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
                ));
                writer.write_string(&create.path);
                writer.write_optional_buffer(create.data.as_deref());
                writer.write_vec(&create.acl, |writer, entry| entry.encode(writer));
                writer.write_i32(create.flags);
                if create.op == OpCode::CreateTtl {
                    writer.write_i64(create.ttl);
                }
            }
            Request::Delete(record) => record.encode(writer),
            Request::Exists(record) => record.encode(writer),
            Request::GetData(record) => record.encode(writer),
            Request::SetData(record) => record.encode(writer),
            Request::GetAcl(record) => record.encode(writer),
            Request::SetAcl(record) => record.encode(writer),
            Request::GetChildren(record) => record.encode(writer),
            Request::GetChildren2(record) => record.encode(writer),
            Request::Sync(record) => record.encode(writer),
            Request::Check(record) => record.encode(writer),
            Request::Multi(ops) | Request::MultiRead(ops) => encode_multi(ops, writer),
            Request::Reconfig(record) => record.encode(writer),
            Request::CheckWatches(record) => record.encode(writer),
            Request::RemoveWatches(record) => record.encode(writer),
            Request::DeleteContainer(path) => DeleteRequest {
                path: path.clone(),
                version: -1,
            }
            .encode(writer),
            Request::Auth(record) => record.encode(writer),
            Request::SetWatches(record) => {
                if self.op_type() == OpCode::SetWatches2 as i32 {
                    record.encode(writer)
                } else {
                    writer.write_i64(record.relative_zxid);
                    writer.write_string_vec(&record.data_watches);
                    writer.write_string_vec(&record.exist_watches);
                    writer.write_string_vec(&record.child_watches);
                }
            }
            Request::Sasl(record) => record.encode(writer),
            Request::GetEphemerals(record) => record.encode(writer),
            Request::GetAllChildrenNumber(record) => record.encode(writer),
            Request::AddWatch(record) => record.encode(writer),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// Decodes the body that follows a RequestHeader of type `op_type`.
    pub fn decode(op_type: i32, reader: &mut Reader<'_>) -> Result<Request, RequestError> {
        let op = OpCode::from_i32(op_type).ok_or(RequestError::UnknownOpCode(op_type))?;
        let request = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                let record = CreateRequest::decode(reader)?;
                Request::Create(Create {
                    op,
                    path: record.path,
                    data: record.data,
                    acl: record.acl,
                    flags: record.flags,
                    ttl: -1,
                })
            }
            OpCode::CreateTtl => {
                let record = CreateTtlRequest::decode(reader)?;
                Request::Create(Create {
                    op,
                    path: record.path,
                    data: record.data,
                    acl: record.acl,
                    flags: record.flags,
                    ttl: record.ttl,
                })
            }
            OpCode::Delete => Request::Delete(DeleteRequest::decode(reader)?),
            OpCode::Exists => Request::Exists(ExistsRequest::decode(reader)?),
            OpCode::GetData => Request::GetData(GetDataRequest::decode(reader)?),
            OpCode::SetData => Request::SetData(SetDataRequest::decode(reader)?),
            OpCode::GetAcl => Request::GetAcl(GetAclRequest::decode(reader)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::decode(reader)?),
            OpCode::GetChildren => Request::GetChildren(GetChildrenRequest::decode(reader)?),
            OpCode::GetChildren2 => Request::GetChildren2(GetChildren2Request::decode(reader)?),
            OpCode::Sync => Request::Sync(SyncRequest::decode(reader)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(CheckVersionRequest::decode(reader)?),
            OpCode::Multi => Request::Multi(decode_multi(reader)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi(reader)?),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest::decode(reader)?),
            OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest::decode(reader)?),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::decode(reader)?),
            OpCode::DeleteContainer => {
                Request::DeleteContainer(DeleteRequest::decode(reader)?.path)
            }
            OpCode::Auth => Request::Auth(AuthPacket::decode(reader)?),
            OpCode::SetWatches => {
                let record = SetWatches::decode(reader)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: record.relative_zxid,
                    data_watches: record.data_watches,
                    exist_watches: record.exist_watches,
                    child_watches: record.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                })
            }
            OpCode::SetWatches2 => Request::SetWatches(SetWatches2::decode(reader)?),
            OpCode::Sasl => Request::Sasl(GetSaslRequest::decode(reader)?),
            OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest::decode(reader)?),
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::decode(reader)?)
            }
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::decode(reader)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(RequestError::UnknownOpCode(op_type))
            }
        };
        Ok(request)
    }
}

/// A multi body: (MultiHeader, op)* terminated by a MultiHeader with done = true
/// (MultiOperationRecord). Like ZooKeeper, the decoder accepts every op type a multi record
/// can carry in both multi and multiRead; an op of the wrong kind is answered with
/// MarshallingError when the request is processed, and the connection stays open.
fn decode_multi(reader: &mut Reader<'_>) -> Result<Vec<Request>, RequestError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::decode(reader)?;
        if header.done {
            return Ok(ops);
        }
        if !matches!(header.op_type, 1 | 2 | 4 | 5 | 8 | 13 | 15 | 19 | 21) {
            return Err(RequestError::Malformed(JuteError::InvalidValue {
                field: "MultiHeader.type",
                value: header.op_type as i64,
            }));
        }
        ops.push(Request::decode(header.op_type, reader)?);
    }
}

/// The inverse of [`decode_multi`]: each op behind a MultiHeader (err -1, as ZooKeeper's
/// client writes it), then the done header (type -1, done, err -1).
fn encode_multi(ops: &[Request], writer: &mut Writer) {
    for op in ops {
        MultiHeader {
            op_type: op.op_type(),
            done: false,
            err: -1,
        }
        .encode(writer);
        op.encode(writer);
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
    use crate::jute::Writer;

    #[test]
    fn multi_body_decodes_until_done_header() {
        let mut writer = Writer::new();
        MultiHeader {
            op_type: 13,
            done: false,
            err: -1,
        }
        .encode(&mut writer);
        CheckVersionRequest {
            path: "/a".into(),
            version: 2,
        }
        .encode(&mut writer);
        MultiHeader {
            op_type: 2,
            done: false,
            err: -1,
        }
        .encode(&mut writer);
        DeleteRequest {
            path: "/a".into(),
            version: -1,
        }
        .encode(&mut writer);
        MultiHeader {
            op_type: -1,
            done: true,
            err: -1,
        }
        .encode(&mut writer);
        let bytes = writer.into_bytes();
        let mut reader = Reader::new(&bytes);
        let request = Request::decode(14, &mut reader);
        assert!(reader.finish().is_ok());
        match request {
            Ok(Request::Multi(ops)) => {
                assert_eq!(ops.len(), 2);
                assert_eq!(ops[0].op_code(), OpCode::Check);
                assert_eq!(ops[1].op_code(), OpCode::Delete);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn multi_bodies_refuse_unknown_op_types_and_missing_done_headers() {
        let mut writer = Writer::new();
        MultiHeader {
            op_type: 4,
            done: false,
            err: -1,
        }
        .encode(&mut writer);
        GetDataRequest {
            path: "/a".into(),
            watch: false,
        }
        .encode(&mut writer);
        let bytes = writer.into_bytes();
        // No done header: truncated.
        assert!(Request::decode(14, &mut Reader::new(&bytes)).is_err());
        let mut writer = Writer::new();
        MultiHeader {
            op_type: 9,
            done: false,
            err: -1,
        }
        .encode(&mut writer);
        let bytes = writer.into_bytes();
        assert!(Request::decode(22, &mut Reader::new(&bytes)).is_err());
    }

    #[test]
    fn unknown_opcode_is_reported_as_such() {
        assert_eq!(
            Request::decode(10, &mut Reader::new(&[])),
            Err(RequestError::UnknownOpCode(10))
        );
    }
}
