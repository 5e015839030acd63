//! [pure] The byte format of everything servers send each other ([`Wire`]), to the byte.
//!
//! A message body is what one transport frame carries (the frame itself is a u32 big-endian
//! length followed by the body; see [`super::transport`]). Every integer is big-endian, as in
//! jute and the transaction log.
//!
//! ```text
//! body
//!   0  format version  u8     1 (FORMAT_VERSION); anything else is refused
//!   1  kind            u8     which message (table below)
//!   2  fields          the kind's fields, in the order listed, nothing after them
//! ```
//!
//! | kind | message | fields after the kind byte |
//! | --- | --- | --- |
//! | 1 | `Zab(Notification)` with config_version 0 | leader u64, zxid i64, epoch u32, round u64, state u8 (0 looking, 1 following, 2 leading, 3 observing) |
//! | 2 | `Zab(Notification)` with config_version ≠ 0 | the fields of kind 1, then config_version i64 (never 0) |
//! | 3 | `Zab(Config)` | membership |
//! | 16 | `Zab(Link(FollowerInfo))` | link, accepted_epoch u32, observer bool |
//! | 17 | `Zab(Link(LeaderInfo))` | link, epoch u32 |
//! | 18 | `Zab(Link(AckEpoch))` | link, current_epoch u32, last_zxid i64 |
//! | 19 | `Zab(Link(Diff))` | link, zxid i64 |
//! | 20 | `Zab(Link(Trunc))` | link, zxid i64 |
//! | 21 | `Zab(Link(Snap))` | link, zxid i64, payload length u32, payload bytes |
//! | 22 | `Zab(Link(Proposal))` | link, record |
//! | 23 | `Zab(Link(NewLeader))` | link, epoch u32, zxid i64 |
//! | 24 | `Zab(Link(AckNewLeader))` | link, zxid i64 |
//! | 25 | `Zab(Link(UpToDate))` | link, zxid i64 |
//! | 26 | `Zab(Link(Ack))` | link, zxid i64 |
//! | 27 | `Zab(Link(Commit))` | link, zxid i64 |
//! | 28 | `Zab(Link(Inform))` | link, record |
//! | 29 | `Zab(Link(Ping))` | link |
//! | 30 | `Zab(Link(Configs))` | link, membership (the active one), count u32, membership × count (the pending ones) |
//! | 48 | `Forward(CreateSession)` | id u64, session_id i64, timeout_ms i32 |
//! | 49 | `Forward(Revalidate)` | id u64, session_id i64, timeout_ms i32 |
//! | 50 | `Forward(Request)` | id u64, session_id i64, xid i32, auth count u32, auth × count (scheme string, id string), op_type i32, body length u32, body (jute, `Request::encode`) |
//! | 64 | `Proposed` | id u64, zxid i64 |
//! | 65 | `Rejected` | id u64 |
//! | 66 | `Synced` | id u64, zxid i64 |
//! | 67 | `Touch` | count u32, session i64 × count |
//! | 68 | `Revalidated` | id u64, valid bool, timeout_ms i32 |
//! | 69 | `SnapChunk` | conn u64, zxid i64, offset u64, length u32, bytes |
//! | 70 | `SnapAck` | conn u64, offset u64 |
//! | 71 | `Config` | version i64, text string (`/zookeeper/config`'s data, see `config::dynamic`) |
//! | 72 | `TxnDigest` | zxid i64, version i32, digest i64 (sent only with `digest.enabled`) |
//!
//! where
//!
//! ```text
//! link    conn u64, seq u64                      (Message::Link's connection id and sequence)
//! record  zxid i64, time_ms i64, txn length u32, txn (crate::txnlog::format::encode_txn, the
//!         same payload the transaction log stores)
//! membership  version i64, count u32, participant u64 × count, count u32, observer u64 × count
//!         (ascending ids; a decoded set is rebuilt, so order and duplicates do not matter)
//! bool    u8, 0 or 1; any other value is refused, so every message has one encoding
//! string  length u32, UTF-8 bytes (strict: invalid UTF-8 is refused)
//! ```
//!
//! Lengths are u32: a body is at most one frame, and frames are u32-length-prefixed. A
//! snapshot payload above `u32::MAX` bytes cannot be expressed; the transport refuses to send
//! any frame above its `frame_bytes_max` (at most `u32::MAX`), so such a body never leaves the
//! server.
//!
//! Decoding is total and bounded: it returns an error (never panics) on unknown versions or
//! kinds, truncation, trailing bytes, out-of-range values and lengths; every length and count
//! is checked against the bytes that remain before anything is allocated, so a body can never
//! make the decoder allocate more than the body's own size (plus the decoded values' fixed
//! overhead). The nested jute decoders (`decode_txn`, `Request::decode`) are bounded the same
//! way and run on exactly their length-prefixed slice.

use thiserror::Error;

use super::{Forwarded, Wire};
use crate::jute::codec::{JuteError, Reader, Writer};
use crate::jute::records::Id;
use crate::jute::request::{Request, RequestError};
use crate::txnlog::format::{decode_txn, encode_txn, LogRecord};
use crate::zab::{Membership, Message, Notification, Packet, PeerState, Vote};

pub const FORMAT_VERSION: u8 = 1;

const KIND_NOTIFICATION: u8 = 1;
/// A notification with its sender's configuration version (see `zab::Notification`).
const KIND_NOTIFICATION_VERSIONED: u8 = 2;
/// `zab::Message::Config`: a configuration in force, for a server that runs an older one.
const KIND_MEMBERSHIP: u8 = 3;
const KIND_FOLLOWER_INFO: u8 = 16;
const KIND_LEADER_INFO: u8 = 17;
const KIND_ACK_EPOCH: u8 = 18;
const KIND_DIFF: u8 = 19;
const KIND_TRUNC: u8 = 20;
const KIND_SNAP: u8 = 21;
const KIND_PROPOSAL: u8 = 22;
const KIND_NEW_LEADER: u8 = 23;
const KIND_ACK_NEW_LEADER: u8 = 24;
const KIND_UP_TO_DATE: u8 = 25;
const KIND_ACK: u8 = 26;
const KIND_COMMIT: u8 = 27;
const KIND_INFORM: u8 = 28;
const KIND_PING: u8 = 29;
/// Sent only once a reconfig was logged (see `zab::Packet::Configs`).
const KIND_CONFIGS: u8 = 30;
const KIND_FORWARD_CREATE_SESSION: u8 = 48;
const KIND_FORWARD_REVALIDATE: u8 = 49;
const KIND_FORWARD_REQUEST: u8 = 50;
const KIND_PROPOSED: u8 = 64;
const KIND_REJECTED: u8 = 65;
const KIND_SYNCED: u8 = 66;
const KIND_TOUCH: u8 = 67;
const KIND_REVALIDATED: u8 = 68;
const KIND_SNAP_CHUNK: u8 = 69;
const KIND_SNAP_ACK: u8 = 70;
const KIND_CONFIG: u8 = 71;
/// Sent only with `digest.enabled` (see `Wire::TxnDigest`).
const KIND_TXN_DIGEST: u8 = 72;

/// Why a body could not be decoded. The transport closes the connection it came on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated: needed {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{trailing} trailing bytes after the message")]
    TrailingBytes { trailing: usize },
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("{field}: length {length} needs more than the {available} bytes left")]
    BadLength {
        field: &'static str,
        length: u64,
        available: usize,
    },
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: u64 },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("transaction: {0}")]
    Txn(JuteError),
    #[error("forwarded request: {0:?}")]
    Request(RequestError),
}

// ---- encoding ----

fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

/// A length that does not fit u32 is written as u32::MAX: the body is then over 4 GiB, above
/// any frame limit, and the transport refuses to send it (see the module doc).
fn put_length(out: &mut Vec<u8>, length: usize) {
    put_u32(out, u32::try_from(length).unwrap_or(u32::MAX));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_record(out: &mut Vec<u8>, record: &LogRecord) {
    put_i64(out, record.zxid);
    put_i64(out, record.time_ms);
    let mut txn = Writer::new();
    encode_txn(&mut txn, &record.txn);
    put_bytes(out, &txn.into_bytes());
}

fn put_membership(out: &mut Vec<u8>, membership: &Membership) {
    put_i64(out, membership.version);
    for ids in [&membership.participants, &membership.observers] {
        put_u32(out, ids.len() as u32);
        for id in ids {
            put_u64(out, *id);
        }
    }
}

fn put_link(out: &mut Vec<u8>, kind: u8, conn: u64, seq: u64) {
    put_u8(out, kind);
    put_u64(out, conn);
    put_u64(out, seq);
}

fn state_code(state: PeerState) -> u8 {
    match state {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

/// Appends the body of `message` to `out` (without a frame length).
pub fn encode(message: &Wire, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    match message {
        Wire::Zab(Message::Notification(notification)) => {
            // Kind 1 while the configuration was never reconfigured (what a member of an
            // earlier release reads), kind 2 with the configuration's version after.
            let versioned = notification.config_version != 0;
            put_u8(
                out,
                if versioned {
                    KIND_NOTIFICATION_VERSIONED
                } else {
                    KIND_NOTIFICATION
                },
            );
            put_u64(out, notification.vote.leader);
            put_i64(out, notification.vote.zxid);
            put_u32(out, notification.vote.epoch);
            put_u64(out, notification.round);
            put_u8(out, state_code(notification.state));
            if versioned {
                put_i64(out, notification.config_version);
            }
        }
        Wire::Zab(Message::Config(membership)) => {
            put_u8(out, KIND_MEMBERSHIP);
            put_membership(out, membership);
        }
        Wire::Zab(Message::Link { conn, seq, packet }) => {
            let (conn, seq) = (*conn, *seq);
            match packet {
                Packet::FollowerInfo {
                    accepted_epoch,
                    observer,
                } => {
                    put_link(out, KIND_FOLLOWER_INFO, conn, seq);
                    put_u32(out, *accepted_epoch);
                    put_bool(out, *observer);
                }
                Packet::LeaderInfo { epoch } => {
                    put_link(out, KIND_LEADER_INFO, conn, seq);
                    put_u32(out, *epoch);
                }
                Packet::AckEpoch {
                    current_epoch,
                    last_zxid,
                } => {
                    put_link(out, KIND_ACK_EPOCH, conn, seq);
                    put_u32(out, *current_epoch);
                    put_i64(out, *last_zxid);
                }
                Packet::Diff { zxid } => {
                    put_link(out, KIND_DIFF, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::Trunc { zxid } => {
                    put_link(out, KIND_TRUNC, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::Snap { zxid, payload } => {
                    put_link(out, KIND_SNAP, conn, seq);
                    put_i64(out, *zxid);
                    put_bytes(out, payload);
                }
                Packet::Proposal(record) => {
                    put_link(out, KIND_PROPOSAL, conn, seq);
                    put_record(out, record);
                }
                Packet::NewLeader { epoch, zxid } => {
                    put_link(out, KIND_NEW_LEADER, conn, seq);
                    put_u32(out, *epoch);
                    put_i64(out, *zxid);
                }
                Packet::AckNewLeader { zxid } => {
                    put_link(out, KIND_ACK_NEW_LEADER, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::UpToDate { zxid } => {
                    put_link(out, KIND_UP_TO_DATE, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::Ack { zxid } => {
                    put_link(out, KIND_ACK, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::Commit { zxid } => {
                    put_link(out, KIND_COMMIT, conn, seq);
                    put_i64(out, *zxid);
                }
                Packet::Inform(record) => {
                    put_link(out, KIND_INFORM, conn, seq);
                    put_record(out, record);
                }
                Packet::Ping => put_link(out, KIND_PING, conn, seq),
                Packet::Configs { active, pending } => {
                    put_link(out, KIND_CONFIGS, conn, seq);
                    put_membership(out, active);
                    put_u32(out, pending.len() as u32);
                    for membership in pending {
                        put_membership(out, membership);
                    }
                }
            }
        }
        Wire::Forward { id, request } => match request {
            Forwarded::CreateSession {
                session_id,
                timeout_ms,
            } => {
                put_u8(out, KIND_FORWARD_CREATE_SESSION);
                put_u64(out, *id);
                put_i64(out, *session_id);
                put_i32(out, *timeout_ms);
            }
            Forwarded::Revalidate {
                session_id,
                timeout_ms,
            } => {
                put_u8(out, KIND_FORWARD_REVALIDATE);
                put_u64(out, *id);
                put_i64(out, *session_id);
                put_i32(out, *timeout_ms);
            }
            Forwarded::Request {
                session_id,
                xid,
                request,
                auth,
            } => {
                put_u8(out, KIND_FORWARD_REQUEST);
                put_u64(out, *id);
                put_i64(out, *session_id);
                put_i32(out, *xid);
                put_length(out, auth.len());
                for identity in auth {
                    put_bytes(out, identity.scheme.as_bytes());
                    put_bytes(out, identity.id.as_bytes());
                }
                put_i32(out, request.op_type());
                let mut body = Writer::new();
                request.encode(&mut body);
                put_bytes(out, &body.into_bytes());
            }
        },
        Wire::Proposed { id, zxid } => {
            put_u8(out, KIND_PROPOSED);
            put_u64(out, *id);
            put_i64(out, *zxid);
        }
        Wire::Rejected { id } => {
            put_u8(out, KIND_REJECTED);
            put_u64(out, *id);
        }
        Wire::Synced { id, zxid } => {
            put_u8(out, KIND_SYNCED);
            put_u64(out, *id);
            put_i64(out, *zxid);
        }
        Wire::Touch { sessions } => {
            put_u8(out, KIND_TOUCH);
            put_length(out, sessions.len());
            for session in sessions {
                put_i64(out, *session);
            }
        }
        Wire::Revalidated {
            id,
            valid,
            timeout_ms,
        } => {
            put_u8(out, KIND_REVALIDATED);
            put_u64(out, *id);
            put_bool(out, *valid);
            put_i32(out, *timeout_ms);
        }
        Wire::SnapChunk {
            conn,
            zxid,
            offset,
            bytes,
        } => {
            put_u8(out, KIND_SNAP_CHUNK);
            put_u64(out, *conn);
            put_i64(out, *zxid);
            put_u64(out, *offset);
            put_bytes(out, bytes);
        }
        Wire::SnapAck { conn, offset } => {
            put_u8(out, KIND_SNAP_ACK);
            put_u64(out, *conn);
            put_u64(out, *offset);
        }
        Wire::Config { version, text } => {
            put_u8(out, KIND_CONFIG);
            put_i64(out, *version);
            put_bytes(out, text.as_bytes());
        }
        Wire::TxnDigest {
            zxid,
            version,
            digest,
        } => {
            put_u8(out, KIND_TXN_DIGEST);
            put_i64(out, *zxid);
            put_i32(out, *version);
            put_i64(out, *digest);
        }
    }
}

// ---- decoding ----

struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], WireError> {
        let available = self.remaining();
        if count > available {
            return Err(WireError::Truncated {
                offset: self.offset,
                needed: count,
                available,
            });
        }
        let slice = &self.bytes[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(WireError::InvalidValue {
                field,
                value: u64::from(other),
            }),
        }
    }

    fn membership(&mut self) -> Result<Membership, WireError> {
        let version = self.i64()?;
        let mut membership = Membership {
            version,
            ..Membership::default()
        };
        for observers in [false, true] {
            let count = self.count("membership ids", 8)?;
            for _ in 0..count {
                let id = self.u64()?;
                if observers {
                    membership.observers.insert(id);
                } else {
                    membership.participants.insert(id);
                }
            }
        }
        Ok(membership)
    }

    /// A u32 count of elements at least `element_bytes_min` long each, checked against the
    /// bytes left before the caller allocates for it.
    fn count(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize, WireError> {
        let count = self.u32()?;
        let available = self.remaining();
        let needed = (count as usize).checked_mul(element_bytes_min.max(1));
        match needed {
            Some(needed) if needed <= available => Ok(count as usize),
            _ => Err(WireError::BadLength {
                field,
                length: u64::from(count),
                available,
            }),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let length = self.count(field, 1)?;
        self.take(length)
    }

    fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| WireError::InvalidUtf8 { field })
    }

    fn record(&mut self) -> Result<LogRecord, WireError> {
        let zxid = self.i64()?;
        let time_ms = self.i64()?;
        let bytes = self.bytes("txn")?;
        let mut reader = Reader::new(bytes);
        let txn = decode_txn(&mut reader).map_err(WireError::Txn)?;
        reader.finish().map_err(WireError::Txn)?;
        Ok(LogRecord { zxid, time_ms, txn })
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(WireError::TrailingBytes { trailing }),
        }
    }
}

fn state_from_code(code: u8) -> Result<PeerState, WireError> {
    Ok(match code {
        0 => PeerState::Looking,
        1 => PeerState::Following,
        2 => PeerState::Leading,
        3 => PeerState::Observing,
        other => {
            return Err(WireError::InvalidValue {
                field: "notification state",
                value: u64::from(other),
            })
        }
    })
}

/// Decodes one body, which must hold exactly one message.
pub fn decode(bytes: &[u8]) -> Result<Wire, WireError> {
    let mut cursor = Cursor { bytes, offset: 0 };
    let version = cursor.u8()?;
    if version != FORMAT_VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let kind = cursor.u8()?;
    let message = match kind {
        KIND_NOTIFICATION | KIND_NOTIFICATION_VERSIONED => {
            let vote = Vote {
                leader: cursor.u64()?,
                zxid: cursor.i64()?,
                epoch: cursor.u32()?,
            };
            let round = cursor.u64()?;
            let state = state_from_code(cursor.u8()?)?;
            let config_version = if kind == KIND_NOTIFICATION_VERSIONED {
                let version = cursor.i64()?;
                if version == 0 {
                    // One encoding per message: version 0 is kind 1.
                    return Err(WireError::InvalidValue {
                        field: "notification config version",
                        value: 0,
                    });
                }
                version
            } else {
                0
            };
            Wire::Zab(Message::Notification(Notification {
                vote,
                round,
                state,
                config_version,
            }))
        }
        KIND_MEMBERSHIP => Wire::Zab(Message::Config(cursor.membership()?)),
        KIND_FOLLOWER_INFO..=KIND_CONFIGS => {
            let conn = cursor.u64()?;
            let seq = cursor.u64()?;
            let packet = decode_packet(kind, &mut cursor)?;
            Wire::Zab(Message::Link { conn, seq, packet })
        }
        KIND_FORWARD_CREATE_SESSION => Wire::Forward {
            id: cursor.u64()?,
            request: Forwarded::CreateSession {
                session_id: cursor.i64()?,
                timeout_ms: cursor.i32()?,
            },
        },
        KIND_FORWARD_REVALIDATE => Wire::Forward {
            id: cursor.u64()?,
            request: Forwarded::Revalidate {
                session_id: cursor.i64()?,
                timeout_ms: cursor.i32()?,
            },
        },
        KIND_FORWARD_REQUEST => {
            let id = cursor.u64()?;
            let session_id = cursor.i64()?;
            let xid = cursor.i32()?;
            // An identity is at least two empty strings: 8 bytes.
            let count = cursor.count("auth count", 8)?;
            let mut auth = Vec::with_capacity(count);
            for _ in 0..count {
                auth.push(Id {
                    scheme: cursor.string("auth scheme")?,
                    id: cursor.string("auth id")?,
                });
            }
            let op_type = cursor.i32()?;
            let body = cursor.bytes("request body")?;
            let mut reader = Reader::new(body);
            let request = Request::decode(op_type, &mut reader).map_err(WireError::Request)?;
            reader
                .finish()
                .map_err(|error| WireError::Request(RequestError::Malformed(error)))?;
            Wire::Forward {
                id,
                request: Forwarded::Request {
                    session_id,
                    xid,
                    request,
                    auth,
                },
            }
        }
        KIND_PROPOSED => Wire::Proposed {
            id: cursor.u64()?,
            zxid: cursor.i64()?,
        },
        KIND_REJECTED => Wire::Rejected { id: cursor.u64()? },
        KIND_SYNCED => Wire::Synced {
            id: cursor.u64()?,
            zxid: cursor.i64()?,
        },
        KIND_TOUCH => {
            let count = cursor.count("touch count", 8)?;
            let mut sessions = Vec::with_capacity(count);
            for _ in 0..count {
                sessions.push(cursor.i64()?);
            }
            Wire::Touch { sessions }
        }
        KIND_REVALIDATED => Wire::Revalidated {
            id: cursor.u64()?,
            valid: cursor.bool("revalidated valid")?,
            timeout_ms: cursor.i32()?,
        },
        KIND_SNAP_CHUNK => Wire::SnapChunk {
            conn: cursor.u64()?,
            zxid: cursor.i64()?,
            offset: cursor.u64()?,
            bytes: cursor.bytes("snapshot chunk")?.to_vec(),
        },
        KIND_SNAP_ACK => Wire::SnapAck {
            conn: cursor.u64()?,
            offset: cursor.u64()?,
        },
        KIND_CONFIG => Wire::Config {
            version: cursor.i64()?,
            text: cursor.string("config text")?,
        },
        KIND_TXN_DIGEST => Wire::TxnDigest {
            zxid: cursor.i64()?,
            version: cursor.i32()?,
            digest: cursor.i64()?,
        },
        other => return Err(WireError::UnknownKind(other)),
    };
    cursor.finish()?;
    Ok(message)
}

fn decode_packet(kind: u8, cursor: &mut Cursor<'_>) -> Result<Packet, WireError> {
    Ok(match kind {
        KIND_FOLLOWER_INFO => Packet::FollowerInfo {
            accepted_epoch: cursor.u32()?,
            observer: cursor.bool("follower info observer")?,
        },
        KIND_LEADER_INFO => Packet::LeaderInfo {
            epoch: cursor.u32()?,
        },
        KIND_ACK_EPOCH => Packet::AckEpoch {
            current_epoch: cursor.u32()?,
            last_zxid: cursor.i64()?,
        },
        KIND_DIFF => Packet::Diff {
            zxid: cursor.i64()?,
        },
        KIND_TRUNC => Packet::Trunc {
            zxid: cursor.i64()?,
        },
        KIND_SNAP => Packet::Snap {
            zxid: cursor.i64()?,
            payload: cursor.bytes("snapshot payload")?.to_vec(),
        },
        KIND_PROPOSAL => Packet::Proposal(cursor.record()?),
        KIND_NEW_LEADER => Packet::NewLeader {
            epoch: cursor.u32()?,
            zxid: cursor.i64()?,
        },
        KIND_ACK_NEW_LEADER => Packet::AckNewLeader {
            zxid: cursor.i64()?,
        },
        KIND_UP_TO_DATE => Packet::UpToDate {
            zxid: cursor.i64()?,
        },
        KIND_ACK => Packet::Ack {
            zxid: cursor.i64()?,
        },
        KIND_COMMIT => Packet::Commit {
            zxid: cursor.i64()?,
        },
        KIND_INFORM => Packet::Inform(cursor.record()?),
        KIND_PING => Packet::Ping,
        KIND_CONFIGS => {
            let active = cursor.membership()?;
            // A membership is at least its version and two counts.
            let count = cursor.count("pending configurations", 16)?;
            let mut pending = Vec::with_capacity(count);
            for _ in 0..count {
                pending.push(cursor.membership()?);
            }
            Packet::Configs { active, pending }
        }
        other => return Err(WireError::UnknownKind(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::protocol::{ErrorCode, OpCode};
    use crate::jute::records::{Acl, CheckVersionRequest, DeleteRequest, SetDataRequest};
    use crate::jute::request::Create;
    use crate::tree::Txn;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn encoded(message: &Wire) -> Vec<u8> {
        let mut out = Vec::new();
        encode(message, &mut out);
        out
    }

    fn link(packet: Packet) -> Wire {
        Wire::Zab(Message::Link {
            conn: 0x0102_0304_0506_0708,
            seq: u64::MAX,
            packet,
        })
    }

    fn create_txn() -> Txn {
        Txn::Create {
            path: "/app/é".into(),
            data: Some(b"value".to_vec()),
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            ephemeral_owner: 0x0100_0000_0000_0001,
            parent_cversion: 3,
        }
    }

    /// One example of every variant of Wire, Message and Packet, and of every Forwarded.
    fn examples() -> Vec<Wire> {
        let record = LogRecord {
            zxid: 0x0000_0002_0000_0005,
            time_ms: 1_700_000_000_000,
            txn: Txn::Multi {
                ops: vec![
                    create_txn(),
                    Txn::SetData {
                        path: "/a".into(),
                        data: None,
                        version: 2,
                    },
                    Txn::Error {
                        code: ErrorCode::NoNode,
                    },
                ],
            },
        };
        let mut messages = vec![
            Wire::Zab(Message::Notification(Notification {
                vote: Vote {
                    leader: 3,
                    zxid: -1,
                    epoch: u32::MAX,
                },
                round: 42,
                state: PeerState::Looking,
                config_version: 0,
            })),
            link(Packet::FollowerInfo {
                accepted_epoch: 7,
                observer: true,
            }),
            link(Packet::LeaderInfo { epoch: 8 }),
            link(Packet::AckEpoch {
                current_epoch: 7,
                last_zxid: 0x0000_0007_0000_0010,
            }),
            link(Packet::Diff { zxid: 5 }),
            link(Packet::Trunc { zxid: 4 }),
            link(Packet::Snap {
                zxid: 9,
                payload: (0..=255u8).collect(),
            }),
            link(Packet::Snap {
                zxid: 9,
                payload: Vec::new(),
            }),
            link(Packet::Proposal(record.clone())),
            link(Packet::NewLeader { epoch: 8, zxid: 9 }),
            link(Packet::AckNewLeader { zxid: 9 }),
            link(Packet::UpToDate { zxid: 9 }),
            link(Packet::Ack { zxid: 10 }),
            link(Packet::Commit { zxid: 10 }),
            link(Packet::Inform(LogRecord {
                zxid: 11,
                time_ms: 0,
                txn: Txn::CloseSession {
                    session_id: -5,
                    ephemerals: vec!["/e1".into(), "/e2".into()],
                },
            })),
            link(Packet::Ping),
            Wire::Forward {
                id: 1,
                request: Forwarded::CreateSession {
                    session_id: 0x0300_0000_0000_0001,
                    timeout_ms: 30_000,
                },
            },
            Wire::Forward {
                id: 2,
                request: Forwarded::Revalidate {
                    session_id: 0x0300_0000_0000_0001,
                    timeout_ms: 4_000,
                },
            },
            Wire::Forward {
                id: 3,
                request: Forwarded::Request {
                    session_id: 77,
                    xid: -8,
                    request: Request::Create(Create {
                        op: OpCode::CreateTtl,
                        path: "/t".into(),
                        data: None,
                        acl: vec![],
                        flags: 5,
                        ttl: 1000,
                    }),
                    auth: vec![
                        Id {
                            scheme: "ip".into(),
                            id: "127.0.0.1".into(),
                        },
                        Id {
                            scheme: "digest".into(),
                            id: "u:hash".into(),
                        },
                    ],
                },
            },
            Wire::Forward {
                id: 4,
                request: Forwarded::Request {
                    session_id: 77,
                    xid: 9,
                    request: Request::Multi(vec![
                        Request::Check(CheckVersionRequest {
                            path: "/a".into(),
                            version: 1,
                        }),
                        Request::SetData(SetDataRequest {
                            path: "/a".into(),
                            data: Some(vec![]),
                            version: 1,
                        }),
                        Request::Delete(DeleteRequest {
                            path: "/b".into(),
                            version: -1,
                        }),
                    ]),
                    auth: vec![],
                },
            },
            Wire::Forward {
                id: 5,
                request: Forwarded::Request {
                    session_id: 77,
                    xid: 10,
                    request: Request::CloseSession,
                    auth: vec![],
                },
            },
            Wire::Proposed { id: 3, zxid: 12 },
            Wire::Rejected { id: 4 },
            Wire::Synced { id: 6, zxid: 13 },
            Wire::Config {
                version: 0x100000000,
                text: "server.1=127.0.0.1:1:2:participant\nversion=100000000".into(),
            },
            Wire::TxnDigest {
                zxid: 0x1_0000_0003,
                version: 2,
                digest: -5,
            },
            Wire::Touch {
                sessions: vec![1, -1, i64::MAX],
            },
            Wire::Touch { sessions: vec![] },
            Wire::Revalidated {
                id: 2,
                valid: true,
                timeout_ms: 4_000,
            },
            Wire::SnapChunk {
                conn: 9,
                zxid: 0x1_0000_0002,
                offset: 1 << 33,
                bytes: vec![1, 2, 3],
            },
            Wire::SnapAck {
                conn: 9,
                offset: (1 << 33) + 3,
            },
        ];
        for state in [
            PeerState::Following,
            PeerState::Leading,
            PeerState::Observing,
        ] {
            messages.push(Wire::Zab(Message::Notification(Notification {
                vote: Vote {
                    leader: 1,
                    zxid: 2,
                    epoch: 3,
                },
                round: 4,
                state,
                config_version: 0,
            })));
        }
        messages
    }

    #[test]
    fn every_variant_round_trips() {
        for message in examples() {
            let bytes = encoded(&message);
            assert_eq!(decode(&bytes), Ok(message.clone()), "{message:?}");
        }
    }

    #[test]
    fn encode_appends_to_what_out_already_holds() {
        let mut out = vec![0xaa];
        encode(&Wire::Rejected { id: 1 }, &mut out);
        assert_eq!(out[0], 0xaa);
        assert_eq!(decode(&out[1..]), Ok(Wire::Rejected { id: 1 }));
    }

    /// The layout the module doc promises, checked byte for byte on two messages.
    #[test]
    fn layout_matches_the_module_doc() {
        let notification = Wire::Zab(Message::Notification(Notification {
            vote: Vote {
                leader: 2,
                zxid: 0x0000_0001_0000_0003,
                epoch: 1,
            },
            round: 5,
            state: PeerState::Leading,
            config_version: 0,
        }));
        let mut expected = vec![1, 1];
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&0x0000_0001_0000_0003i64.to_be_bytes());
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&5u64.to_be_bytes());
        expected.push(2);
        assert_eq!(encoded(&notification), expected);

        let ack = Wire::Zab(Message::Link {
            conn: 7,
            seq: 8,
            packet: Packet::Ack { zxid: 9 },
        });
        let mut expected = vec![1, 26];
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&8u64.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        assert_eq!(encoded(&ack), expected);

        let digest = Wire::TxnDigest {
            zxid: 0x1_0000_0003,
            version: 2,
            digest: -2,
        };
        let mut expected = vec![1, 72];
        expected.extend_from_slice(&0x1_0000_0003i64.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&(-2i64).to_be_bytes());
        assert_eq!(encoded(&digest), expected);

        let snap = link(Packet::Snap {
            zxid: 1,
            payload: vec![0xde, 0xad],
        });
        let bytes = encoded(&snap);
        assert_eq!(&bytes[..2], &[1, 21]);
        assert_eq!(&bytes[26..30], &2u32.to_be_bytes());
        assert_eq!(&bytes[30..], &[0xde, 0xad]);
    }

    #[test]
    fn every_truncation_is_refused() {
        for message in examples() {
            let bytes = encoded(&message);
            for cut in 0..bytes.len() {
                assert!(
                    decode(&bytes[..cut]).is_err(),
                    "{cut}-byte prefix of {message:?} decoded"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_unknown_versions_and_kinds_are_refused() {
        let mut bytes = encoded(&Wire::Rejected { id: 1 });
        bytes.push(0);
        assert_eq!(
            decode(&bytes),
            Err(WireError::TrailingBytes { trailing: 1 })
        );
        assert_eq!(decode(&[2, 65]), Err(WireError::UnknownVersion(2)));
        for kind in 0..=u8::MAX {
            let known = [1u8, 2, 3]
                .iter()
                .chain(&[16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
                .chain(&[48, 49, 50, 64, 65, 66, 67, 68, 69, 70, 71, 72])
                .any(|&k| k == kind);
            if !known {
                assert_eq!(
                    decode(&[1, kind, 0, 0, 0, 0]),
                    Err(WireError::UnknownKind(kind))
                );
            }
        }
    }

    #[test]
    fn non_canonical_bools_and_states_are_refused() {
        let mut bytes = encoded(&Wire::Revalidated {
            id: 1,
            valid: true,
            timeout_ms: 2,
        });
        bytes[10] = 2;
        assert!(matches!(
            decode(&bytes),
            Err(WireError::InvalidValue { value: 2, .. })
        ));
        let mut bytes = encoded(&examples()[0]);
        let last = bytes.len() - 1;
        bytes[last] = 4;
        assert!(matches!(
            decode(&bytes),
            Err(WireError::InvalidValue { value: 4, .. })
        ));
    }

    /// A length or count larger than what is left is refused before anything is allocated.
    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        // Snap claiming a 4 GiB payload in a 30-byte body.
        let mut bytes = vec![1, KIND_SNAP];
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&1i64.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode(&bytes),
            Err(WireError::BadLength {
                field: "snapshot payload",
                ..
            })
        ));
        // Touch with u32::MAX sessions.
        let mut bytes = vec![1, KIND_TOUCH];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&[0; 16]);
        assert!(matches!(
            decode(&bytes),
            Err(WireError::BadLength {
                field: "touch count",
                ..
            })
        ));
        // A forwarded request with u32::MAX identities.
        let mut bytes = vec![1, KIND_FORWARD_REQUEST];
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        assert!(matches!(
            decode(&bytes),
            Err(WireError::BadLength {
                field: "auth count",
                ..
            })
        ));
    }

    #[test]
    fn invalid_utf8_in_identities_and_bad_nested_bodies_are_refused() {
        let message = Wire::Forward {
            id: 1,
            request: Forwarded::Request {
                session_id: 1,
                xid: 1,
                request: Request::Sync(crate::jute::records::SyncRequest { path: "/".into() }),
                auth: vec![Id {
                    scheme: "ip".into(),
                    id: "x".into(),
                }],
            },
        };
        let bytes = encoded(&message);
        // The scheme "ip" starts after version, kind, id, session, xid, count, length.
        let scheme_at = 2 + 8 + 8 + 4 + 4 + 4;
        let mut bad = bytes.clone();
        bad[scheme_at] = 0xff;
        assert_eq!(
            decode(&bad),
            Err(WireError::InvalidUtf8 {
                field: "auth scheme"
            })
        );
        // An unknown opcode inside a forwarded request.
        let op_at = scheme_at + 2 + 4 + 1;
        let mut bad = bytes.clone();
        bad[op_at..op_at + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            decode(&bad),
            Err(WireError::Request(RequestError::UnknownOpCode(10)))
        );
        // A proposal whose txn has an unknown tag.
        let mut bad = encoded(&link(Packet::Proposal(LogRecord {
            zxid: 1,
            time_ms: 1,
            txn: Txn::Delete { path: "/a".into() },
        })));
        bad[2 + 16 + 16 + 4] = 99;
        assert!(matches!(decode(&bad), Err(WireError::Txn(_))));
    }

    fn txn() -> impl Strategy<Value = Txn> + Clone {
        let leaf = prop_oneof![
            (
                "\\PC{0,8}",
                proptest::option::of(vec(any::<u8>(), 0..16)),
                any::<i64>(),
                any::<i32>()
            )
                .prop_map(|(path, data, ephemeral_owner, parent_cversion)| {
                    Txn::Create {
                        path,
                        data,
                        acl: vec![],
                        ephemeral_owner,
                        parent_cversion,
                    }
                }),
            "\\PC{0,8}".prop_map(|path| Txn::Delete { path }),
            (
                "\\PC{0,8}",
                proptest::option::of(vec(any::<u8>(), 0..16)),
                any::<i32>()
            )
                .prop_map(|(path, data, version)| Txn::SetData {
                    path,
                    data,
                    version
                }),
            (any::<i64>(), any::<i32>()).prop_map(|(session_id, timeout_ms)| {
                Txn::CreateSession {
                    session_id,
                    timeout_ms,
                }
            }),
            (any::<i64>(), vec("\\PC{0,6}", 0..3)).prop_map(|(session_id, ephemerals)| {
                Txn::CloseSession {
                    session_id,
                    ephemerals,
                }
            }),
        ];
        prop_oneof![
            3 => leaf.clone(),
            1 => vec(leaf, 0..3).prop_map(|ops| Txn::Multi { ops }),
        ]
    }

    fn packet() -> impl Strategy<Value = Packet> {
        let record = (any::<i64>(), any::<i64>(), txn())
            .prop_map(|(zxid, time_ms, txn)| LogRecord { zxid, time_ms, txn });
        prop_oneof![
            (any::<u32>(), any::<bool>()).prop_map(|(accepted_epoch, observer)| {
                Packet::FollowerInfo {
                    accepted_epoch,
                    observer,
                }
            }),
            any::<u32>().prop_map(|epoch| Packet::LeaderInfo { epoch }),
            (any::<u32>(), any::<i64>()).prop_map(|(current_epoch, last_zxid)| {
                Packet::AckEpoch {
                    current_epoch,
                    last_zxid,
                }
            }),
            any::<i64>().prop_map(|zxid| Packet::Diff { zxid }),
            any::<i64>().prop_map(|zxid| Packet::Trunc { zxid }),
            (any::<i64>(), vec(any::<u8>(), 0..64))
                .prop_map(|(zxid, payload)| Packet::Snap { zxid, payload }),
            record.clone().prop_map(Packet::Proposal),
            (any::<u32>(), any::<i64>())
                .prop_map(|(epoch, zxid)| Packet::NewLeader { epoch, zxid }),
            any::<i64>().prop_map(|zxid| Packet::AckNewLeader { zxid }),
            any::<i64>().prop_map(|zxid| Packet::UpToDate { zxid }),
            any::<i64>().prop_map(|zxid| Packet::Ack { zxid }),
            any::<i64>().prop_map(|zxid| Packet::Commit { zxid }),
            record.prop_map(Packet::Inform),
            Just(Packet::Ping),
            (
                any::<i64>(),
                proptest::collection::btree_set(any::<u64>(), 0..4),
                proptest::collection::btree_set(any::<u64>(), 0..3),
            )
                .prop_map(|(version, participants, observers)| {
                    let active = Membership {
                        version,
                        participants,
                        observers,
                    };
                    Packet::Configs {
                        pending: vec![active.clone()],
                        active,
                    }
                }),
        ]
    }

    fn wire() -> impl Strategy<Value = Wire> {
        let state = prop_oneof![
            Just(PeerState::Looking),
            Just(PeerState::Following),
            Just(PeerState::Leading),
            Just(PeerState::Observing),
        ];
        let identity = ("\\PC{0,6}", "\\PC{0,10}").prop_map(|(scheme, id)| Id { scheme, id });
        let request = prop_oneof![
            "(/[a-z]{1,4}){1,3}"
                .prop_map(|path| Request::Delete(DeleteRequest { path, version: -1 })),
            (
                "(/[a-z]{1,4}){1,3}",
                proptest::option::of(vec(any::<u8>(), 0..16)),
                any::<i32>()
            )
                .prop_map(|(path, data, version)| Request::SetData(SetDataRequest {
                    path,
                    data,
                    version
                })),
            Just(Request::CloseSession),
        ];
        prop_oneof![
            (
                any::<u64>(),
                any::<i64>(),
                any::<u32>(),
                any::<u64>(),
                state
            )
                .prop_map(|(leader, zxid, epoch, round, state)| Wire::Zab(
                    Message::Notification(Notification {
                        vote: Vote {
                            leader,
                            zxid,
                            epoch
                        },
                        round,
                        state,
                        config_version: 0,
                    })
                )),
            (any::<u64>(), any::<u64>(), packet())
                .prop_map(|(conn, seq, packet)| Wire::Zab(Message::Link { conn, seq, packet })),
            (any::<u64>(), any::<i64>(), any::<i32>(), any::<bool>()).prop_map(
                |(id, session_id, timeout_ms, revalidate)| Wire::Forward {
                    id,
                    request: if revalidate {
                        Forwarded::Revalidate {
                            session_id,
                            timeout_ms,
                        }
                    } else {
                        Forwarded::CreateSession {
                            session_id,
                            timeout_ms,
                        }
                    },
                }
            ),
            (
                any::<u64>(),
                any::<i64>(),
                any::<i32>(),
                request,
                vec(identity, 0..3)
            )
                .prop_map(|(id, session_id, xid, request, auth)| Wire::Forward {
                    id,
                    request: Forwarded::Request {
                        session_id,
                        xid,
                        request,
                        auth
                    },
                }),
            (any::<u64>(), any::<i64>()).prop_map(|(id, zxid)| Wire::Proposed { id, zxid }),
            any::<u64>().prop_map(|id| Wire::Rejected { id }),
            (any::<u64>(), any::<i64>()).prop_map(|(id, zxid)| Wire::Synced { id, zxid }),
            vec(any::<i64>(), 0..8).prop_map(|sessions| Wire::Touch { sessions }),
            (any::<i64>(), ".{0,40}").prop_map(|(version, text)| Wire::Config { version, text }),
            (any::<i64>(), any::<i32>(), any::<i64>()).prop_map(|(zxid, version, digest)| {
                Wire::TxnDigest {
                    zxid,
                    version,
                    digest,
                }
            }),
            (any::<u64>(), any::<bool>(), any::<i32>()).prop_map(|(id, valid, timeout_ms)| {
                Wire::Revalidated {
                    id,
                    valid,
                    timeout_ms,
                }
            }),
            (
                any::<u64>(),
                any::<i64>(),
                any::<u64>(),
                vec(any::<u8>(), 0..16)
            )
                .prop_map(|(conn, zxid, offset, bytes)| Wire::SnapChunk {
                    conn,
                    zxid,
                    offset,
                    bytes
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(conn, offset)| Wire::SnapAck { conn, offset }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn generated_messages_round_trip_and_their_prefixes_are_refused(message in wire()) {
            let bytes = encoded(&message);
            prop_assert_eq!(decode(&bytes), Ok(message));
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
        }

        /// Arbitrary bytes, and bytes that start like a real message of a random kind, decode
        /// to Ok or Err, never a panic.
        #[test]
        fn random_bytes_never_panic(kind in any::<u8>(), body in vec(any::<u8>(), 0..200)) {
            let _ = decode(&body);
            let mut framed = vec![FORMAT_VERSION, kind];
            framed.extend_from_slice(&body);
            let _ = decode(&framed);
        }

        /// Valid encodings with one byte changed: deeper than random bytes reach.
        #[test]
        fn mutated_messages_never_panic(message in wire(), index in any::<usize>(), value in any::<u8>()) {
            let mut bytes = encoded(&message);
            let index = index % bytes.len();
            bytes[index] = value;
            let _ = decode(&bytes);
        }
    }
}
