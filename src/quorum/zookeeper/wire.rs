//! [pure] Apache ZooKeeper's server-to-server bytes (3.5 to 3.9), as ZooKeeper 3.8 writes
//! them; golden frames captured from a real ensemble are in `tests/golden/zkquorum/`
//! (`scripts/capture-zk-quorum.py`).
//!
//! # Election port (QuorumCnxManager, FastLeaderElection)
//!
//! The connecting server first writes its **initial message**, without a length prefix:
//! `long protocolVersion` (-65536 = V1: one address; -65535 = V2: addresses joined by `|`),
//! `long sid`, `int length`, then `host:port` in UTF-8 (its own election address). A first
//! long ≥ 0 is the sid of a server older than 3.5, with nothing after it. Then each message
//! in either direction is `int length` (1 ..= 512 KiB) followed by that many bytes. Only one
//! connection per pair of servers survives: the one the higher sid opened (a server that
//! receives a connection from a lower sid closes it and connects back; one that opened a
//! connection to a higher sid sees it closed).
//!
//! A **notification** is `int state` (0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING),
//! `long leader`, `long zxid`, `long electionEpoch` (the round), `long peerEpoch`, `int
//! version` (2 since 3.5), `int configLength` and the configuration text (the sender's
//! QuorumVerifier: `server.N=...` lines and `version=<hex>`). Older senders stop after 28
//! bytes (no peerEpoch: it is the zxid's epoch) or 40 (no version, no config).
//!
//! # Quorum port (Leader, Learner, LearnerHandler)
//!
//! A stream of jute `QuorumPacket {int type; long zxid; buffer data; vector<Id> authinfo}`
//! with no length prefix (BinaryOutputArchive.writeRecord); `data` and `authinfo` are -1 when
//! null. After a SNAP packet the leader writes the snapshot itself, outside any packet (see
//! [`super::snapstream`]).

use crate::jute::codec::{JuteError, Reader, Record, Writer};
use crate::jute::records::Id;
use crate::zab::{Notification, PeerState, Vote};

/// `QuorumCnxManager.PROTOCOL_VERSION_V1`: the initial message carries one address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// `QuorumCnxManager.PROTOCOL_VERSION_V2` (3.6+, multiAddress): addresses joined by `|`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// `QuorumCnxManager.PACKETMAXSIZE`: the largest election message accepted.
pub const ELECTION_MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// The address part of an initial message is bounded by `zookeeper.jute.maxbuffer`'s
/// default in ZooKeeper; a few KiB is plenty for `host:port|host:port`.
pub const INITIAL_ADDRESS_BYTES_MAX: usize = 4096;
/// `Notification.CURRENTVERSION`: notifications with the configuration text.
pub const NOTIFICATION_VERSION: i32 = 2;
/// LearnerInfo's and LEADERINFO's protocol version (Zab 1.0).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;
/// A QuorumPacket's data above this is refused (ZooKeeper bounds it by jute.maxbuffer,
/// 1 MiB by default, plus room: a multi near the limit with its txn header and digest).
pub const PACKET_DATA_BYTES_MAX: usize = 0xfffff + 64 * 1024;
/// Auth ids in one packet (a client has a handful).
pub const PACKET_AUTH_IDS_MAX: usize = 1024;

/// `Leader`'s packet types.
pub mod kind {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;

    /// The name LearnerHandler.packetToString prints.
    pub fn name(kind: i32) -> &'static str {
        match kind {
            REQUEST => "REQUEST",
            PROPOSAL => "PROPOSAL",
            ACK => "ACK",
            COMMIT => "COMMIT",
            PING => "PING",
            REVALIDATE => "REVALIDATE",
            SYNC => "SYNC",
            INFORM => "INFORM",
            COMMITANDACTIVATE => "COMMITANDACTIVATE",
            NEWLEADER => "NEWLEADER",
            FOLLOWERINFO => "FOLLOWERINFO",
            UPTODATE => "UPTODATE",
            DIFF => "DIFF",
            TRUNC => "TRUNC",
            SNAP => "SNAP",
            OBSERVERINFO => "OBSERVERINFO",
            LEADERINFO => "LEADERINFO",
            ACKEPOCH => "ACKEPOCH",
            INFORMANDACTIVATE => "INFORMANDACTIVATE",
            _ => "UNKNOWN",
        }
    }
}

/// Why bytes from another server were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed: {0}")]
    Jute(#[from] JuteError),
    #[error("{0}")]
    Invalid(String),
}

/// The first bytes on an election connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// [`PROTOCOL_VERSION_V1`], [`PROTOCOL_VERSION_V2`], or the sid itself (a 3.4 server).
    pub protocol_version: i64,
    pub sid: u64,
    /// `host:port` strings (none from a 3.4 server).
    pub addresses: Vec<String>,
}

impl InitialMessage {
    /// What ringkeeper sends: V1 with its one election address, as ZooKeeper does unless
    /// `multiAddress.enabled`.
    pub fn v1(sid: u64, address: &str) -> InitialMessage {
        InitialMessage {
            protocol_version: PROTOCOL_VERSION_V1,
            sid,
            addresses: vec![address.to_string()],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        if self.protocol_version >= 0 {
            writer.write_i64(self.sid as i64);
            return writer.into_bytes();
        }
        writer.write_i64(self.protocol_version);
        writer.write_i64(self.sid as i64);
        let text = self.addresses.join("|");
        writer.write_buffer(text.as_bytes());
        writer.into_bytes()
    }

    /// Decodes an initial message from the start of `bytes`: Ok(None) while more bytes are
    /// needed, else the message and how many bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<Option<(InitialMessage, usize)>, WireError> {
        let mut reader = Reader::new(bytes);
        let Some(first) = incomplete_is_none(reader.read_i64())? else {
            return Ok(None);
        };
        if first >= 0 {
            let message = InitialMessage {
                protocol_version: first,
                sid: first as u64,
                addresses: Vec::new(),
            };
            return Ok(Some((message, 8)));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(WireError::Invalid(format!(
                "unknown election protocol version {first}"
            )));
        }
        let Some(sid) = incomplete_is_none(reader.read_i64())? else {
            return Ok(None);
        };
        if sid < 0 {
            // QuorumPeer.OBSERVER_ID (Long.MAX_VALUE) is the only special id ZooKeeper knows;
            // a negative one is nothing a server sends.
            return Err(WireError::Invalid(format!("negative server id {sid}")));
        }
        let Some(length) = incomplete_is_none(reader.read_i32())? else {
            return Ok(None);
        };
        if length <= 0 || length as usize > INITIAL_ADDRESS_BYTES_MAX {
            return Err(WireError::Invalid(format!(
                "unreasonable address length {length} in the initial message"
            )));
        }
        if reader.remaining() < length as usize {
            return Ok(None);
        }
        let raw = reader.read_fixed(length as usize)?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| WireError::Invalid("the initial message's address is not UTF-8".into()))?;
        let message = InitialMessage {
            protocol_version: first,
            sid: sid as u64,
            addresses: text.split('|').map(str::to_string).collect(),
        };
        Ok(Some((message, 20 + length as usize)))
    }
}

fn incomplete_is_none<T>(result: Result<T, JuteError>) -> Result<Option<T>, WireError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(JuteError::Truncated { .. }) => Ok(None),
        Err(other) => Err(WireError::Jute(other)),
    }
}

/// A FastLeaderElection notification as it travels (inside the length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkNotification {
    pub state: i32,
    pub leader: i64,
    pub zxid: i64,
    /// `electionEpoch`: the round (`logicalclock`).
    pub round: i64,
    pub peer_epoch: i64,
    /// 0 for the 28- and 40-byte forms, else what the sender wrote.
    pub version: i32,
    /// The sender's configuration text (empty when `version` ≤ 1).
    pub config: Vec<u8>,
}

pub const STATE_LOOKING: i32 = 0;
pub const STATE_FOLLOWING: i32 = 1;
pub const STATE_LEADING: i32 = 2;
pub const STATE_OBSERVING: i32 = 3;

impl ZkNotification {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.write_i32(self.state);
        writer.write_i64(self.leader);
        writer.write_i64(self.zxid);
        writer.write_i64(self.round);
        writer.write_i64(self.peer_epoch);
        writer.write_i32(self.version);
        if self.version > 1 {
            writer.write_buffer(&self.config);
        }
        writer.into_bytes()
    }

    /// Decodes one whole message body, with FastLeaderElection's backward-compatible forms
    /// (28 bytes: no peerEpoch, taken from the zxid; 40 bytes: no version).
    pub fn decode(body: &[u8]) -> Result<ZkNotification, WireError> {
        if body.len() < 28 {
            return Err(WireError::Invalid(format!(
                "a notification of {} bytes is too short",
                body.len()
            )));
        }
        let mut reader = Reader::new(body);
        let state = reader.read_i32()?;
        let leader = reader.read_i64()?;
        let zxid = reader.read_i64()?;
        let round = reader.read_i64()?;
        let mut notification = ZkNotification {
            state,
            leader,
            zxid,
            round,
            peer_epoch: ((zxid as u64) >> 32) as i64,
            version: 0,
            config: Vec::new(),
        };
        if body.len() == 28 {
            return Ok(notification);
        }
        notification.peer_epoch = reader.read_i64()?;
        if body.len() == 40 {
            return Ok(notification);
        }
        notification.version = reader.read_i32()?;
        if notification.version > 1 {
            notification.config = reader.read_buffer()?;
        }
        // FastLeaderElection ignores what follows; so do we (a newer sender may add fields).
        Ok(notification)
    }

    /// ZAB's view of it; None for a state ZooKeeper does not know (it drops those too) or a
    /// leader id that is not a server id.
    pub fn to_zab(&self) -> Option<Notification> {
        let state = match self.state {
            STATE_LOOKING => PeerState::Looking,
            STATE_FOLLOWING => PeerState::Following,
            STATE_LEADING => PeerState::Leading,
            STATE_OBSERVING => PeerState::Observing,
            _ => return None,
        };
        if self.leader < 0
            || self.round < 0
            || self.peer_epoch < 0
            || self.peer_epoch > u32::MAX as i64
        {
            return None;
        }
        Some(Notification {
            vote: Vote {
                leader: self.leader as u64,
                zxid: self.zxid,
                epoch: self.peer_epoch as u32,
            },
            round: self.round as u64,
            state,
            // ZooKeeper's configuration is not taken over from its notifications (reconfig in
            // a mixed ensemble is not built): 0, the static configuration's version.
            config_version: 0,
        })
    }

    /// ZooKeeper's form of ZAB's notification, with this server's configuration text.
    pub fn from_zab(notification: &Notification, config: &[u8]) -> ZkNotification {
        ZkNotification {
            state: match notification.state {
                PeerState::Looking => STATE_LOOKING,
                PeerState::Following => STATE_FOLLOWING,
                PeerState::Leading => STATE_LEADING,
                PeerState::Observing => STATE_OBSERVING,
            },
            leader: notification.vote.leader as i64,
            zxid: notification.vote.zxid,
            round: notification.round as i64,
            peer_epoch: i64::from(notification.vote.epoch),
            version: NOTIFICATION_VERSION,
            config: config.to_vec(),
        }
    }
}

/// `QuorumPacket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub kind: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub auth: Option<Vec<Id>>,
}

impl QuorumPacket {
    pub fn new(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket {
            kind,
            zxid,
            data,
            auth: None,
        }
    }

    pub fn encode_into(&self, writer: &mut Writer) {
        writer.write_i32(self.kind);
        writer.write_i64(self.zxid);
        writer.write_optional_buffer(self.data.as_deref());
        match &self.auth {
            None => writer.write_i32(-1),
            Some(ids) => writer.write_vec(ids, |writer, id| id.encode(writer)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.encode_into(&mut writer);
        writer.into_bytes()
    }

    /// Decodes the packet at the start of `bytes`: Ok(None) while it is incomplete, else the
    /// packet and its length. Lengths are checked against the limits before waiting for the
    /// bytes they announce, so a hostile length cannot make a reader buffer without bound.
    pub fn decode(bytes: &[u8]) -> Result<Option<(QuorumPacket, usize)>, WireError> {
        let mut reader = Reader::new(bytes);
        let Some(kind) = incomplete_is_none(reader.read_i32())? else {
            return Ok(None);
        };
        let Some(zxid) = incomplete_is_none(reader.read_i64())? else {
            return Ok(None);
        };
        let Some(length) = incomplete_is_none(reader.read_i32())? else {
            return Ok(None);
        };
        let data = if length < 0 {
            if length != -1 {
                return Err(WireError::Invalid(format!("data length {length}")));
            }
            None
        } else {
            let length = length as usize;
            if length > PACKET_DATA_BYTES_MAX {
                return Err(WireError::Invalid(format!(
                    "a {length}-byte {} packet is above the limit of {PACKET_DATA_BYTES_MAX}",
                    kind::name(kind)
                )));
            }
            let Some(data) = incomplete_is_none(reader.read_fixed(length))? else {
                return Ok(None);
            };
            Some(data.to_vec())
        };
        let Some(count) = incomplete_is_none(reader.read_i32())? else {
            return Ok(None);
        };
        let auth = if count < 0 {
            if count != -1 {
                return Err(WireError::Invalid(format!("authinfo count {count}")));
            }
            None
        } else {
            if count as usize > PACKET_AUTH_IDS_MAX {
                return Err(WireError::Invalid(format!(
                    "{count} auth ids in one packet"
                )));
            }
            let mut ids = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let Some(scheme) = incomplete_is_none(read_bounded_string(&mut reader))? else {
                    return Ok(None);
                };
                let Some(id) = incomplete_is_none(read_bounded_string(&mut reader))? else {
                    return Ok(None);
                };
                ids.push(Id { scheme, id });
            }
            Some(ids)
        };
        let packet = QuorumPacket {
            kind,
            zxid,
            data,
            auth,
        };
        Ok(Some((packet, reader.offset())))
    }
}

/// Why a packet could not be read from a stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
}

/// Reads one QuorumPacket from a stream (the quorum port's socket, buffered), field by field,
/// each length checked against the limits before its bytes are read.
pub fn read_packet<R: std::io::Read>(reader: &mut R) -> Result<QuorumPacket, ReadError> {
    fn fixed<R: std::io::Read, const N: usize>(reader: &mut R) -> Result<[u8; N], ReadError> {
        let mut bytes = [0u8; N];
        reader.read_exact(&mut bytes)?;
        Ok(bytes)
    }
    fn bytes<R: std::io::Read>(reader: &mut R, length: i32) -> Result<Vec<u8>, ReadError> {
        if length < 0 || length as usize > PACKET_DATA_BYTES_MAX {
            return Err(WireError::Invalid(format!("field length {length}")).into());
        }
        let mut out = vec![0u8; length as usize];
        reader.read_exact(&mut out)?;
        Ok(out)
    }
    fn string<R: std::io::Read>(reader: &mut R) -> Result<String, ReadError> {
        let length = i32::from_be_bytes(fixed(reader)?);
        String::from_utf8(bytes(reader, length)?)
            .map_err(|_| WireError::Invalid("an auth id is not UTF-8".into()).into())
    }
    let kind = i32::from_be_bytes(fixed(reader)?);
    let zxid = i64::from_be_bytes(fixed(reader)?);
    let length = i32::from_be_bytes(fixed(reader)?);
    let data = if length == -1 {
        None
    } else {
        Some(bytes(reader, length)?)
    };
    let count = i32::from_be_bytes(fixed(reader)?);
    let auth = if count == -1 {
        None
    } else {
        if count < 0 || count as usize > PACKET_AUTH_IDS_MAX {
            return Err(WireError::Invalid(format!("authinfo count {count}")).into());
        }
        let mut ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let scheme = string(reader)?;
            let id = string(reader)?;
            ids.push(Id { scheme, id });
        }
        Some(ids)
    };
    Ok(QuorumPacket {
        kind,
        zxid,
        data,
        auth,
    })
}

/// A string whose length is checked against [`PACKET_DATA_BYTES_MAX`] before its bytes are
/// awaited; invalid UTF-8 is an error as in jute's readString.
fn read_bounded_string(reader: &mut Reader<'_>) -> Result<String, JuteError> {
    let length = reader.read_i32()?;
    if length < 0 || length as usize > PACKET_DATA_BYTES_MAX {
        return Err(JuteError::InvalidValue {
            field: "string length",
            value: i64::from(length),
        });
    }
    let raw = reader.read_fixed(length as usize)?;
    String::from_utf8(raw.to_vec()).map_err(|_| JuteError::InvalidValue {
        field: "utf-8 string",
        value: i64::from(length),
    })
}

/// `LearnerInfo {long serverid; int protocolVersion; long configVersion}`, the data of
/// FOLLOWERINFO and OBSERVERINFO. LearnerHandler also takes the 8- and 12-byte forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sid: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

impl LearnerInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.write_i64(self.sid);
        writer.write_i32(self.protocol_version);
        writer.write_i64(self.config_version);
        writer.into_bytes()
    }

    pub fn decode(data: &[u8]) -> Result<LearnerInfo, WireError> {
        let mut reader = Reader::new(data);
        let sid = reader.read_i64()?;
        let protocol_version = if reader.remaining() >= 4 {
            reader.read_i32()?
        } else {
            0
        };
        let config_version = if reader.remaining() >= 8 {
            reader.read_i64()?
        } else {
            0
        };
        Ok(LearnerInfo {
            sid,
            protocol_version,
            config_version,
        })
    }
}

/// The data of a learner's REQUEST (Learner.request): `long sessionId, int cxid, int type`,
/// then the client's request record as it came (no length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerRequest {
    pub session_id: i64,
    pub cxid: i32,
    pub op: i32,
    pub body: Vec<u8>,
}

impl LearnerRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.write_i64(self.session_id);
        writer.write_i32(self.cxid);
        writer.write_i32(self.op);
        writer.write_bytes(&self.body);
        writer.into_bytes()
    }

    pub fn decode(data: &[u8]) -> Result<LearnerRequest, WireError> {
        let mut reader = Reader::new(data);
        let session_id = reader.read_i64()?;
        let cxid = reader.read_i32()?;
        let op = reader.read_i32()?;
        Ok(LearnerRequest {
            session_id,
            cxid,
            op,
            body: data[16..].to_vec(),
        })
    }
}

/// The data of a learner's PING reply (Learner.ping): `(long session, int timeout)` pairs
/// until the end, the sessions active since the last ping.
pub fn encode_touches(touches: &[(i64, i32)]) -> Vec<u8> {
    let mut writer = Writer::new();
    for (session, timeout_ms) in touches {
        writer.write_i64(*session);
        writer.write_i32(*timeout_ms);
    }
    writer.into_bytes()
}

pub fn decode_touches(data: &[u8]) -> Result<Vec<(i64, i32)>, WireError> {
    if !data.len().is_multiple_of(12) {
        return Err(WireError::Invalid(format!(
            "touch data of {} bytes is not whole (session, timeout) pairs",
            data.len()
        )));
    }
    let mut reader = Reader::new(data);
    let mut touches = Vec::with_capacity(data.len() / 12);
    while reader.remaining() > 0 {
        touches.push((reader.read_i64()?, reader.read_i32()?));
    }
    Ok(touches)
}

/// A learner's REVALIDATE data: `long session, int timeout`.
pub fn encode_revalidate(session_id: i64, timeout_ms: i32) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.write_i64(session_id);
    writer.write_i32(timeout_ms);
    writer.into_bytes()
}

/// A learner's REVALIDATE data as the leader reads it (LearnerHandler: `long session, int
/// timeout`).
pub fn decode_revalidate(data: &[u8]) -> Result<(i64, i32), WireError> {
    let mut reader = Reader::new(data);
    Ok((reader.read_i64()?, reader.read_i32()?))
}

/// The leader's REVALIDATE answer: `long session, boolean valid`.
pub fn decode_revalidated(data: &[u8]) -> Result<(i64, bool), WireError> {
    let mut reader = Reader::new(data);
    Ok((reader.read_i64()?, reader.read_bool()?))
}

pub fn encode_revalidated(session_id: i64, valid: bool) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.write_i64(session_id);
    writer.write_bool(valid);
    writer.into_bytes()
}

/// A 4-byte int as LEADERINFO (protocol version) and ACKEPOCH (current epoch, or -1 when
/// the learner had accepted this epoch already) carry it.
pub fn encode_int(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

pub fn decode_int(data: Option<&[u8]>) -> Result<i32, WireError> {
    let data = data.ok_or_else(|| WireError::Invalid("the packet has no data".into()))?;
    let mut reader = Reader::new(data);
    Ok(reader.read_i32()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn initial_message_v1_is_version_sid_and_address() {
        let bytes = InitialMessage::v1(4, "127.0.0.1:3888").encode();
        assert_eq!(&bytes[..8], &PROTOCOL_VERSION_V1.to_be_bytes());
        assert_eq!(&bytes[8..16], &4i64.to_be_bytes());
        assert_eq!(&bytes[16..20], &14i32.to_be_bytes());
        let (message, used) = InitialMessage::decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(message.addresses, vec!["127.0.0.1:3888".to_string()]);
        // Every shorter prefix is incomplete, not an error.
        for cut in 0..bytes.len() {
            assert_eq!(
                InitialMessage::decode(&bytes[..cut]).unwrap(),
                None,
                "{cut}"
            );
        }
    }

    #[test]
    fn initial_message_of_a_34_server_is_its_sid() {
        let (message, used) = InitialMessage::decode(&7i64.to_be_bytes())
            .unwrap()
            .unwrap();
        assert_eq!((message.sid, used), (7, 8));
        assert!(message.addresses.is_empty());
    }

    #[test]
    fn initial_message_with_an_unknown_version_or_huge_address_is_refused() {
        assert!(InitialMessage::decode(&(-3i64).to_be_bytes()).is_err());
        let mut bytes = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
        bytes.extend_from_slice(&1i64.to_be_bytes());
        bytes.extend_from_slice(&(1i32 << 20).to_be_bytes());
        assert!(InitialMessage::decode(&bytes).is_err());
    }

    #[test]
    fn notification_short_forms_decode_as_fast_leader_election_reads_them() {
        let full = ZkNotification {
            state: STATE_LEADING,
            leader: 3,
            zxid: 0x1_0000_0005,
            round: 2,
            peer_epoch: 1,
            version: 2,
            config: b"version=0".to_vec(),
        };
        let bytes = full.encode();
        assert_eq!(ZkNotification::decode(&bytes).unwrap(), full);
        let forty = ZkNotification::decode(&bytes[..40]).unwrap();
        assert_eq!((forty.peer_epoch, forty.version), (1, 0));
        let short = ZkNotification::decode(&bytes[..28]).unwrap();
        assert_eq!(short.peer_epoch, 1, "the epoch of the zxid");
        assert!(ZkNotification::decode(&bytes[..27]).is_err());
        let zab = full.to_zab().unwrap();
        assert_eq!(zab.state, PeerState::Leading);
        assert_eq!(ZkNotification::from_zab(&zab, b"version=0"), full);
    }

    #[test]
    fn quorum_packet_null_fields_are_minus_one() {
        let packet = QuorumPacket::new(kind::UPTODATE, -1, None);
        assert_eq!(
            packet.encode(),
            [
                0, 0, 0, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
    }

    #[test]
    fn quorum_packet_with_a_huge_length_is_refused_before_its_bytes_arrive() {
        let mut bytes = kind::PROPOSAL.to_be_bytes().to_vec();
        bytes.extend_from_slice(&0i64.to_be_bytes());
        bytes.extend_from_slice(&(0x7fff_ffffi32).to_be_bytes());
        assert!(QuorumPacket::decode(&bytes).is_err());
    }

    fn arbitrary_packet() -> impl Strategy<Value = QuorumPacket> {
        (
            any::<i32>(),
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            proptest::option::of(proptest::collection::vec(
                ("[a-z]{0,8}", "[ -~]{0,16}"),
                0..3,
            )),
        )
            .prop_map(|(kind, zxid, data, auth)| QuorumPacket {
                kind,
                zxid,
                data,
                auth: auth.map(|ids| {
                    ids.into_iter()
                        .map(|(scheme, id)| Id { scheme, id })
                        .collect()
                }),
            })
    }

    proptest! {
        #[test]
        fn quorum_packets_round_trip_and_any_prefix_is_incomplete(packet in arbitrary_packet()) {
            let bytes = packet.encode();
            let (decoded, used) = QuorumPacket::decode(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(&decoded, &packet);
            for cut in 0..bytes.len() {
                prop_assert_eq!(QuorumPacket::decode(&bytes[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn notifications_round_trip(state in 0i32..4, leader in 0i64..1000, zxid in any::<i64>(),
                                    round in 0i64..1_000_000, epoch in 0i64..=(u32::MAX as i64),
                                    config in proptest::collection::vec(any::<u8>(), 0..64)) {
            let n = ZkNotification { state, leader, zxid, round, peer_epoch: epoch, version: 2, config };
            prop_assert_eq!(ZkNotification::decode(&n.encode()).unwrap(), n.clone());
            let zab = n.to_zab().unwrap();
            prop_assert_eq!(ZkNotification::from_zab(&zab, &n.config), n);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = QuorumPacket::decode(&bytes);
            let _ = InitialMessage::decode(&bytes);
            let _ = ZkNotification::decode(&bytes);
            let _ = LearnerInfo::decode(&bytes);
            let _ = LearnerRequest::decode(&bytes);
            let _ = decode_touches(&bytes);
            let _ = decode_revalidated(&bytes);
            if let Ok(Some((packet, used))) = QuorumPacket::decode(&bytes) {
                prop_assert_eq!(packet.encode(), bytes[..used].to_vec());
                let streamed = read_packet(&mut &bytes[..]).unwrap();
                prop_assert_eq!(streamed, packet);
            } else {
                prop_assert!(read_packet(&mut &bytes[..]).is_err());
            }
        }
    }
}
