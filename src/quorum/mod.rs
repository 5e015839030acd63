//! [io] Quorum mode: the shell around the sans-IO ZAB core ([`crate::zab`]).
//!
//! A server with `server.N=` lines in zoo.cfg runs as a member of an ensemble. The pipeline
//! thread owns the [`crate::zab::Peer`]; this module holds what it needs from the outside
//! world:
//!
//! - [`wire`]: the byte format of everything servers send each other ([`Wire`]);
//! - [`transport`]: TCP links between servers (one for election notifications, one for the
//!   leader–learner traffic), with reconnection and explicit frame limits;
//! - [`epochs`]: the accepted and current epochs, persisted in dataDir.
//!
//! # What travels between servers besides ZAB
//!
//! ZooKeeper's learners hand their clients' writes to the leader (REQUEST), revalidate
//! sessions that move to them (REVALIDATE), report session activity (PING) and ask for
//! `sync` (SYNC). Here those are [`Wire`] variants sent on the same ordered connection as the
//! ZAB link packets, so a learner sees `Proposed` before the proposal it names and `Synced`
//! after every commit that precedes it.

pub mod epochs;
pub mod member;
pub mod transport;
pub mod wire;
pub mod zookeeper;

use crate::jute::records::Id;
use crate::jute::request::Request;
use crate::tree::TreeVersion;
use crate::zab::{Epochs, Message, ServerId, Zxid};

// What the pipeline's ensemble shell needs from the links and the disk. They belong here, with
// the quorum layer that implements them (member.rs), not with the pipeline that uses them.

/// Sends messages to other servers. Never blocks; a message to a server that cannot be
/// reached is dropped (ZAB detects the loss through its link sequence numbers).
pub trait QuorumLinks: Send {
    /// Queues `message` for `to`; false when it was dropped at once (link down, queue full,
    /// too large). A queued message can still be lost with its connection, which ZAB sees.
    fn send(&self, to: ServerId, message: &Wire) -> bool;
    /// The membership changed (a reconfig is in force): links to `members` (id, election
    /// address, quorum address), none any more to `removed`.
    fn set_members(
        &self,
        members: &[(ServerId, std::net::SocketAddr, std::net::SocketAddr)],
        removed: &[ServerId],
    ) {
        let _ = (members, removed);
    }
    /// Whether a learner is sent ZooKeeper's snapshot stream after SNAP
    /// (`quorum.protocol=zookeeper`) rather than ringkeeper's snapshot file.
    fn zookeeper_snapshots(&self) -> bool {
        false
    }
    /// Stops the links (bounded).
    fn shutdown(self: Box<Self>) {}
}

/// What ZAB needs durably from this server's disk, besides the log writer.
pub trait QuorumDisk: Send + Sync {
    /// Persists the epochs (durable before it returns).
    fn save_epochs(&self, epochs: &Epochs) -> Result<(), String>;
    /// Encodes a snapshot of `version` with the open sessions, to send to a learner.
    fn encode_snapshot(
        &self,
        version: &TreeVersion,
        sessions: &[(i64, i32)],
    ) -> Result<Vec<u8>, String>;
    /// Validates and durably stores a snapshot received from the leader; returns its tree
    /// and sessions. `bytes` is either the whole file (the one-message form) or, when it is
    /// exactly a header, the end of a stream of chunks ([`Wire::SnapChunk`]) received before.
    fn install_snapshot(&self, bytes: &[u8]) -> Result<(TreeVersion, Vec<(i64, i32)>), String>;
    /// Writes one chunk of a snapshot streamed by the leader ([`Wire::SnapChunk`]) to a
    /// temporary file in dataDir. A chunk at offset 0 of a newer link starts the file over;
    /// one of an older link is ignored (Ok(false)). Ok(true): written and may be acknowledged.
    /// A chunk out of order on the current link is an error (something was lost).
    fn receive_snapshot_chunk(
        &self,
        conn: u64,
        zxid: Zxid,
        offset: u64,
        bytes: &[u8],
    ) -> Result<bool, String> {
        let _ = (conn, zxid, offset, bytes);
        Err("this disk does not receive streamed snapshots".into())
    }
    /// Removes snapshots holding transactions above `zxid` (after a truncation there).
    fn remove_snapshots_above(&self, zxid: Zxid) -> Result<(), String>;
    /// Rebuilds the tree and sessions from disk with every record up to `zxid` (after the log
    /// was truncated there).
    fn reload(&self, zxid: Zxid) -> Result<(TreeVersion, Vec<(i64, i32)>), String>;
}

/// A message between two servers.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    /// ZAB's own traffic: election notifications and leader–learner link packets.
    Zab(Message),
    /// Learner → leader: a client's request for the leader to prepare and propose
    /// (ZooKeeper's REQUEST, REVALIDATE). `id` is the learner's, unique per learner process.
    Forward { id: u64, request: Forwarded },
    /// Leader → learner: the transaction of your forwarded request `id` was proposed at
    /// `zxid`; answer your client when `zxid` commits. Sent before the proposal itself.
    Proposed { id: u64, zxid: Zxid },
    /// Leader → learner: your forwarded request `id` was not proposed (the leader is not
    /// broadcasting any more; a full proposal window only holds a request back, see
    /// `pipeline/driver/admission.rs`). The learner drops the client's connection, as a
    /// ZooKeeper server that loses its leader does.
    Rejected { id: u64 },
    /// Leader → learner: your `sync` `id` is answered; every write committed before the
    /// leader received it is at or below `zxid` (ZooKeeper's SYNC). Sent after the commit of
    /// `zxid` on the same connection.
    Synced { id: u64, zxid: Zxid },
    /// Learner → leader: sessions connected to this learner that were active since the last
    /// report (ZooKeeper's PING with session touches).
    Touch { sessions: Vec<i64> },
    /// Leader → learner: the answer to a forwarded `Revalidate`: whether the session is
    /// alive (it now belongs to the learner), and its timeout.
    Revalidated {
        id: u64,
        valid: bool,
        timeout_ms: i32,
    },
    /// Leader → learner: bytes `offset..offset + bytes.len()` of the snapshot file at `zxid`
    /// that the leader is streaming on ZAB link `conn`, its header zeroed (the real header
    /// is the payload of the ZAB `Snap` that ends the stream). A SNAP is a stream of bounded
    /// chunks rather than one message (compare ZOOKEEPER-3500): neither side holds the whole
    /// snapshot in memory. See `pipeline/driver/ensemble/leader.rs`.
    SnapChunk {
        conn: u64,
        zxid: Zxid,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Learner → leader: the snapshot streamed on link `conn` is written through `offset`;
    /// the leader keeps at most a bounded window of bytes beyond the last acknowledgement in
    /// flight.
    SnapAck { conn: u64, offset: u64 },
    /// Leader → learner, before NEWLEADER: the configuration in force on the leader (its
    /// version, and the text of `/zookeeper/config`), which the learner adopts when it is
    /// newer than its own (ZooKeeper sends its last-seen QuorumVerifier with NEWLEADER).
    Config { version: i64, text: String },
    /// Leader → learner, ahead of the `Proposal` or `Inform` of `zxid` on the same link: the
    /// leader's tree digest after that txn (ZooKeeper's TxnDigest, which its proposals carry
    /// since 3.6), which the learner compares with its own once it has applied the txn
    /// (DataTree.compareDigest). Sent only with `digest.enabled` (a member of an earlier
    /// release does not know this message and closes the link). A learner of a ZooKeeper
    /// leader is handed the same, from the PROPOSAL's own digest.
    TxnDigest {
        zxid: Zxid,
        version: i32,
        digest: i64,
    },
}

/// What a learner forwards to its leader.
#[derive(Debug, Clone, PartialEq)]
pub enum Forwarded {
    /// A new client session with an id the learner chose (its server id is in the top byte).
    CreateSession { session_id: i64, timeout_ms: i32 },
    /// A client reconnected to the learner with an existing session whose password the
    /// learner checked.
    Revalidate { session_id: i64, timeout_ms: i32 },
    /// A write request or a sync, with the identities the client authenticated as.
    Request {
        session_id: i64,
        xid: i32,
        request: Request,
        auth: Vec<Id>,
    },
}
