//! [pure] ZooKeeper's txn records (zookeeper.jute, module `org.apache.zookeeper.txn`) as one
//! log entry holds them: `TxnHeader`, then the record of its type, then (3.6+) a `TxnDigest`.
//! Decoding follows SerializeUtils.deserializeTxn, including its fallbacks: a create without
//! `parentCVersion` is a 3.3-era `CreateTxnV0` (parentCVersion -1, fixed up on replay), and a
//! closeSession without `CloseSessionTxn` (before 3.6, or with closeSessionTxn disabled)
//! carries no path list.

use crate::jute::codec::{Reader, Record, Writer};
use crate::jute::records::Acl;

use super::opcode::*;
use super::FormatError;

/// `TxnHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
    pub op: i32,
}

/// One txn record. `op` keeps the opcode where two share a record (create/create2,
/// delete/deleteContainer, setData/reconfig), since replay treats them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkTxn {
    /// `CreateTxn` (create, create2); `ephemeral` makes the header's client id the owner.
    Create {
        op: i32,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral: bool,
        parent_cversion: i32,
    },
    /// `CreateContainerTxn`.
    CreateContainer {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
    },
    /// `CreateTTLTxn`.
    CreateTtl {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
        ttl_ms: i64,
    },
    /// `DeleteTxn` (delete, deleteContainer).
    Delete { path: String },
    /// `SetDataTxn` (setData, reconfig); `version` is the node's new version.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// `SetACLTxn`; `version` is the new aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// `CheckVersionTxn`: changes nothing.
    Check { path: String, version: i32 },
    /// `ErrorTxn`.
    Error { code: i32 },
    /// `MultiTxn`: each sub-txn with its own opcode.
    Multi { ops: Vec<ZkTxn> },
    /// `CreateSessionTxn`.
    CreateSession { timeout_ms: i32 },
    /// `CloseSessionTxn`, or no record at all (`paths: None`).
    CloseSession { paths: Option<Vec<String>> },
}

/// `TxnDigest`: the tree digest after this txn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    pub tree_digest: i64,
}

/// One decoded log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkEntry {
    pub header: TxnHeader,
    pub txn: ZkTxn,
    pub digest: Option<TxnDigest>,
}

/// The bytes of a `TxnDigest` (int + long).
const TXN_DIGEST_BYTES: usize = 12;

fn read_acl(reader: &mut Reader<'_>) -> Result<Vec<Acl>, FormatError> {
    Ok(reader.read_vec(12, Acl::decode)?)
}

fn write_acl(writer: &mut Writer, acl: &[Acl]) {
    writer.write_vec(acl, |writer, entry| entry.encode(writer));
}

/// Decodes the record of type `op` (not multi, not the session txns).
fn decode_record(op: i32, reader: &mut Reader<'_>) -> Result<ZkTxn, FormatError> {
    Ok(match op {
        CREATE | CREATE2 => {
            let path = reader.read_string()?;
            let data = reader.read_optional_buffer()?;
            let acl = read_acl(reader)?;
            let ephemeral = reader.read_bool()?;
            // CreateTxnV0 ends here (SerializeUtils: "perhaps this is a V0 Create").
            let parent_cversion = if reader.remaining() >= 4 {
                reader.read_i32()?
            } else {
                -1
            };
            ZkTxn::Create {
                op,
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            }
        }
        CREATE_CONTAINER => ZkTxn::CreateContainer {
            path: reader.read_string()?,
            data: reader.read_optional_buffer()?,
            acl: read_acl(reader)?,
            parent_cversion: reader.read_i32()?,
        },
        CREATE_TTL => ZkTxn::CreateTtl {
            path: reader.read_string()?,
            data: reader.read_optional_buffer()?,
            acl: read_acl(reader)?,
            parent_cversion: reader.read_i32()?,
            ttl_ms: reader.read_i64()?,
        },
        DELETE | DELETE_CONTAINER => ZkTxn::Delete {
            path: reader.read_string()?,
        },
        SET_DATA | RECONFIG => ZkTxn::SetData {
            path: reader.read_string()?,
            data: reader.read_optional_buffer()?,
            version: reader.read_i32()?,
        },
        SET_ACL => ZkTxn::SetAcl {
            path: reader.read_string()?,
            acl: read_acl(reader)?,
            version: reader.read_i32()?,
        },
        CHECK => ZkTxn::Check {
            path: reader.read_string()?,
            version: reader.read_i32()?,
        },
        ERROR => ZkTxn::Error {
            code: reader.read_i32()?,
        },
        other => {
            return Err(FormatError::Invalid(format!(
                "unsupported txn type {other}"
            )))
        }
    })
}

/// Decodes one log entry (the bytes inside a record's buffer).
pub fn decode_entry(bytes: &[u8]) -> Result<ZkEntry, FormatError> {
    let mut reader = Reader::new(bytes);
    let header = TxnHeader {
        client_id: reader.read_i64()?,
        cxid: reader.read_i32()?,
        zxid: reader.read_i64()?,
        time_ms: reader.read_i64()?,
        op: reader.read_i32()?,
    };
    let txn = match header.op {
        CREATE_SESSION => ZkTxn::CreateSession {
            timeout_ms: reader.read_i32()?,
        },
        CLOSE_SESSION => {
            // A CloseSessionTxn is a vector; without one, what follows (if anything) is the
            // 12-byte TxnDigest.
            let mut attempt = reader.clone();
            match attempt.read_string_vec() {
                Ok(paths)
                    if attempt.remaining() == 0 || attempt.remaining() == TXN_DIGEST_BYTES =>
                {
                    reader = attempt;
                    ZkTxn::CloseSession { paths: Some(paths) }
                }
                _ if reader.remaining() == 0 || reader.remaining() == TXN_DIGEST_BYTES => {
                    ZkTxn::CloseSession { paths: None }
                }
                _ => {
                    return Err(FormatError::Invalid(
                        "closeSession txn is neither a CloseSessionTxn nor empty".into(),
                    ))
                }
            }
        }
        MULTI => {
            let subs = reader.read_vec(8, |reader| {
                let op = reader.read_i32()?;
                let data = reader.read_buffer()?;
                Ok((op, data))
            })?;
            let mut ops = Vec::with_capacity(subs.len());
            for (op, data) in subs {
                let mut sub = Reader::new(&data);
                ops.push(decode_record(op, &mut sub)?);
            }
            ZkTxn::Multi { ops }
        }
        op => decode_record(op, &mut reader)?,
    };
    let digest = if reader.remaining() >= TXN_DIGEST_BYTES {
        Some(TxnDigest {
            version: reader.read_i32()?,
            tree_digest: reader.read_i64()?,
        })
    } else {
        None
    };
    Ok(ZkEntry {
        header,
        txn,
        digest,
    })
}

/// The opcode a txn is logged under (for a multi's sub-txns).
pub fn op_of(txn: &ZkTxn) -> i32 {
    match txn {
        ZkTxn::Create { op, .. } => *op,
        ZkTxn::CreateContainer { .. } => CREATE_CONTAINER,
        ZkTxn::CreateTtl { .. } => CREATE_TTL,
        ZkTxn::Delete { .. } => DELETE,
        ZkTxn::SetData { .. } => SET_DATA,
        ZkTxn::SetAcl { .. } => SET_ACL,
        ZkTxn::Check { .. } => CHECK,
        ZkTxn::Error { .. } => ERROR,
        ZkTxn::Multi { .. } => MULTI,
        ZkTxn::CreateSession { .. } => CREATE_SESSION,
        ZkTxn::CloseSession { .. } => CLOSE_SESSION,
    }
}

fn encode_record(writer: &mut Writer, txn: &ZkTxn) {
    match txn {
        ZkTxn::Create {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
            ..
        } => {
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            write_acl(writer, acl);
            writer.write_bool(*ephemeral);
            writer.write_i32(*parent_cversion);
        }
        ZkTxn::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => {
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            write_acl(writer, acl);
            writer.write_i32(*parent_cversion);
        }
        ZkTxn::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl_ms,
        } => {
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            write_acl(writer, acl);
            writer.write_i32(*parent_cversion);
            writer.write_i64(*ttl_ms);
        }
        ZkTxn::Delete { path } => writer.write_string(path),
        ZkTxn::SetData {
            path,
            data,
            version,
        } => {
            writer.write_string(path);
            writer.write_optional_buffer(data.as_deref());
            writer.write_i32(*version);
        }
        ZkTxn::SetAcl { path, acl, version } => {
            writer.write_string(path);
            write_acl(writer, acl);
            writer.write_i32(*version);
        }
        ZkTxn::Check { path, version } => {
            writer.write_string(path);
            writer.write_i32(*version);
        }
        ZkTxn::Error { code } => writer.write_i32(*code),
        ZkTxn::Multi { ops } => {
            writer.write_i32(ops.len() as i32);
            for op in ops {
                let mut sub = Writer::new();
                encode_record(&mut sub, op);
                writer.write_i32(op_of(op));
                writer.write_buffer(&sub.into_bytes());
            }
        }
        ZkTxn::CreateSession { timeout_ms } => writer.write_i32(*timeout_ms),
        ZkTxn::CloseSession { paths } => {
            if let Some(paths) = paths {
                writer.write_string_vec(paths);
            }
        }
    }
}

/// Encodes one log entry, as ZooKeeper's Util.marshallTxnEntry does (used by the tests, which
/// write logs the way ZooKeeper does).
pub fn encode_entry(entry: &ZkEntry) -> Vec<u8> {
    let mut writer = Writer::new();
    let header = &entry.header;
    writer.write_i64(header.client_id);
    writer.write_i32(header.cxid);
    writer.write_i64(header.zxid);
    writer.write_i64(header.time_ms);
    writer.write_i32(header.op);
    encode_record(&mut writer, &entry.txn);
    if let Some(digest) = entry.digest {
        writer.write_i32(digest.version);
        writer.write_i64(digest.tree_digest);
    }
    writer.into_bytes()
}
