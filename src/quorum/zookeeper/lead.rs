//! [pure] The leader's side of ZooKeeper's learner protocol: a ringkeeper **leader** of an
//! ensemble whose learners are Apache ZooKeeper servers (or ringkeeper servers speaking
//! ZooKeeper's wire). One TCP connection per learner on this server's quorum port, each a ZAB
//! link of its own: the packets read from it are numbered 0, 1, 2... for the core, and what
//! the core sends a learner is written to its connection as ZooKeeper's LearnerHandler
//! writes it. The shell ([`super::links`]) moves the bytes.
//!
//! | ZAB core (leader) | ZooKeeper (LearnerHandler, Leader) |
//! | --- | --- |
//! | from FOLLOWERINFO / OBSERVERINFO (zxid = accepted epoch << 32, data = LearnerInfo) | `FollowerInfo` |
//! | `LeaderInfo { epoch }` | LEADERINFO zxid = epoch << 32, data = int 0x10000 |
//! | from ACKEPOCH (zxid = last logged, data = current epoch or -1) | `AckEpoch` (-1: `EPOCH_ACCEPTED_BEFORE`) |
//! | `Diff`, `Trunc`, `Snap` (the stream written after the SNAP packet) | DIFF, TRUNC, SNAP |
//! | `Proposal` | PROPOSAL with the txn as ZooKeeper writes it and the leader's TxnDigest; an observer's are held during its sync (below) |
//! | `NewLeader { epoch, zxid }` | NEWLEADER zxid = epoch << 32, data = the configuration |
//! | from the ACK of NEWLEADER (zxid = epoch << 32) | `AckNewLeader { zxid of the NewLeader }` |
//! | `Commit { zxid }` (cumulative) | one COMMIT per proposal sent on the link, in order (FollowerZooKeeperServer.commit exits on any other) |
//! | `UpToDate { zxid }` | the COMMITs through `zxid`, then UPTODATE; its ACK is dropped |
//! | `Inform` | INFORM (COMMIT of a proposal held for the observer's sync) |
//! | `Ping` | PING; during a sync, when ZooKeeper's learner answers no ping, the link answers for it |
//! | from PING data = (session, timeout)* | `Ping` and `Wire::Touch` |
//! | from REQUEST / REVALIDATE | `Wire::Forward` (createSession, writes and sync with the packet's auth ids; revalidation) |
//! | `Wire::Proposed` | the session and cxid of the txn's header (how the learner finds the request it forwarded) |
//! | `Wire::Synced` | SYNC, after the COMMITs through its zxid (Leader.sendSync queues it behind them) |
//! | `Wire::Revalidated` | REVALIDATE data = session, valid |
//! | `Wire::Rejected` | the connection is closed (ZooKeeper's leader never refuses; a learner that loses it re-elects) |
//!
//! An observer is synced as Leader.startForwarding syncs one: with committed proposals only.
//! ZooKeeper's observer drops a proposal of its sync without a COMMIT at UPTODATE, and one
//! after the last COMMIT ends its sync with an exception (Learner.syncWithLeader). The core
//! sends a learner every record it logged, so the proposals of an observer's sync are held
//! here and sent as PROPOSAL + COMMIT pairs once the core says they committed (an `Inform`
//! of one, or `UpToDate`); those still uncommitted at UPTODATE come later as INFORMs.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::jute::codec::Reader;
use crate::jute::request::Request;
use crate::quorum::{Forwarded, Wire};
use crate::txnlog::format::LogRecord;
use crate::zab::{
    epoch_of, make_zxid, Epoch, Message, Packet, ServerId, Zxid, EPOCH_ACCEPTED_BEFORE,
};
use crate::zkformat::opcode;
use crate::zkformat::txn::{encode_entry, TxnDigest};

use super::translate::Effect;
use super::txn::{entry_of, Origin};
use super::wire::{
    decode_int, decode_revalidate, decode_touches, encode_int, encode_revalidated, kind,
    LearnerInfo, LearnerRequest, QuorumPacket, LEARNER_PROTOCOL_VERSION,
};

/// Origins kept for txns not yet sent to every learner (they are looked up when a proposal or
/// inform is encoded; the oldest go first).
const ORIGINS_MAX: usize = 1 << 16;
/// The first ZAB link id of a learner connection.
const LINK_IDS_FROM: u64 = 1 << 62;
/// Forwarded requests one learner may have unanswered.
const FORWARDS_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected; FOLLOWERINFO not read yet.
    Info,
    /// LEADERINFO sent (or to come): until the core's Diff/Trunc/Snap.
    Epoch,
    /// Diff/Trunc/Snap sent: proposals until NEWLEADER.
    Sync,
    /// NEWLEADER sent: until its ACK.
    NewLeader,
    /// The ACK of NEWLEADER delivered: until UPTODATE.
    AwaitUpToDate,
    Broadcast,
}

/// What a forwarded request's answer goes back as.
#[derive(Debug, Clone, Copy)]
enum Forward {
    /// A write or createSession: its txn's header carries `origin`.
    Txn(Origin),
    Sync,
    Revalidate(i64),
}

#[derive(Debug)]
struct LearnerLink {
    sid: Option<ServerId>,
    /// The ZAB link id (this translator's numbering, increasing).
    conn: u64,
    /// The sequence number of the next packet handed to the core.
    next_seq: u64,
    observer: bool,
    phase: Phase,
    epoch: Epoch,
    /// The zxid of the core's NewLeader (what the ACK of NEWLEADER acknowledges).
    newleader_zxid: Zxid,
    /// A follower's proposals sent and not committed yet, in order.
    proposed: VecDeque<Zxid>,
    /// An observer's sync proposals, held until they commit (see the module's notes).
    held: Vec<(LogRecord, Option<TxnDigest>)>,
    /// The digest the core sent ahead of the next proposal or inform.
    digest: Option<(Zxid, TxnDigest)>,
    /// The highest zxid this learner knows committed (COMMITs, INFORMs, UPTODATE).
    committed: Zxid,
    last_proposed: Zxid,
    /// A follower's COMMITs held between NEWLEADER and UPTODATE (see `Packet::Commit`).
    commit_held: Zxid,
    /// SYNC answers waiting for the COMMITs through their zxid.
    syncs: VecDeque<Zxid>,
    forwards: HashMap<u64, Forward>,
}

/// The leader's side: every learner connection.
#[derive(Debug)]
pub struct Lead {
    config_text: Vec<u8>,
    next_conn: u64,
    next_forward: u64,
    links: BTreeMap<u64, LearnerLink>,
    /// The current connection of each learner.
    by_sid: HashMap<ServerId, u64>,
    origins: BTreeMap<Zxid, Origin>,
}

impl Lead {
    pub fn new(config_text: Vec<u8>) -> Lead {
        Lead {
            config_text,
            // Above the core's own link ids (it numbers its learner links from its clock).
            next_conn: LINK_IDS_FROM,
            next_forward: 0,
            links: BTreeMap::new(),
            by_sid: HashMap::new(),
            origins: BTreeMap::new(),
        }
    }

    /// Whether `message` to `to` is for a learner connected to this server.
    pub fn handles(&self, to: ServerId, message: &Wire) -> bool {
        let Some(link) = self.by_sid.get(&to).and_then(|tcp| self.links.get(tcp)) else {
            return false;
        };
        match message {
            Wire::Zab(Message::Link { conn, .. }) => *conn == link.conn,
            Wire::SnapChunk { conn, .. } => *conn == link.conn,
            Wire::Proposed { .. }
            | Wire::Rejected { .. }
            | Wire::Synced { .. }
            | Wire::Revalidated { .. }
            | Wire::TxnDigest { .. }
            | Wire::Config { .. } => true,
            _ => false,
        }
    }

    /// A new connection on the quorum port.
    pub fn accepted(&mut self, tcp: u64) {
        self.next_conn += 1;
        self.links.insert(
            tcp,
            LearnerLink {
                sid: None,
                conn: self.next_conn,
                next_seq: 0,
                observer: false,
                phase: Phase::Info,
                epoch: 0,
                newleader_zxid: 0,
                proposed: VecDeque::new(),
                held: Vec::new(),
                digest: None,
                committed: 0,
                commit_held: 0,
                last_proposed: 0,
                syncs: VecDeque::new(),
                forwards: HashMap::new(),
            },
        );
    }

    /// Connection `tcp` closed.
    pub fn closed(&mut self, tcp: u64, out: &mut Vec<Effect>) {
        if let Some(link) = self.links.remove(&tcp) {
            if let Some(sid) = link.sid {
                if self.by_sid.get(&sid) == Some(&tcp) {
                    self.by_sid.remove(&sid);
                    out.push(Effect::Closed(sid));
                }
            }
        }
    }

    fn fail(&mut self, tcp: u64, reason: String, out: &mut Vec<Effect>) {
        let who = self
            .links
            .get(&tcp)
            .and_then(|link| link.sid)
            .map_or_else(|| "a learner".to_string(), |sid| format!("server {sid}"));
        tracing::warn!("closing the connection of {who}: {reason}");
        out.push(Effect::CloseLearner { tcp });
        self.closed(tcp, out);
    }

    /// A packet read from learner connection `tcp`.
    pub fn inbound(&mut self, tcp: u64, packet: QuorumPacket, out: &mut Vec<Effect>) {
        let Some(link) = self.links.get_mut(&tcp) else {
            return;
        };
        let mut zab: Vec<Packet> = Vec::new();
        let mut wires: Vec<Wire> = Vec::new();
        match (link.phase, packet.kind) {
            (Phase::Info, kind::FOLLOWERINFO | kind::OBSERVERINFO) => {
                let info = match packet.data.as_deref().map(LearnerInfo::decode) {
                    Some(Ok(info)) => info,
                    Some(Err(error)) => {
                        return self.fail(tcp, format!("LearnerInfo: {error}"), out)
                    }
                    None => return self.fail(tcp, "FOLLOWERINFO without LearnerInfo".into(), out),
                };
                // LearnerHandler refuses learners older than Zab 1.0 (protocol 0x10000).
                if info.protocol_version < LEARNER_PROTOCOL_VERSION {
                    return self.fail(
                        tcp,
                        format!(
                            "learner protocol version {:#x} is before Zab 1.0",
                            info.protocol_version
                        ),
                        out,
                    );
                }
                let Ok(sid) = ServerId::try_from(info.sid) else {
                    return self.fail(tcp, format!("learner sid {}", info.sid), out);
                };
                link.sid = Some(sid);
                link.observer = packet.kind == kind::OBSERVERINFO;
                link.phase = Phase::Epoch;
                let observer = link.observer;
                if let Some(old) = self.by_sid.insert(sid, tcp) {
                    if old != tcp {
                        // A learner that reconnects replaces its older connection.
                        self.links.remove(&old);
                        out.push(Effect::CloseLearner { tcp: old });
                    }
                }
                zab.push(Packet::FollowerInfo {
                    accepted_epoch: epoch_of(packet.zxid),
                    observer,
                });
            }
            (Phase::Info, other) => {
                return self.fail(
                    tcp,
                    format!("{} before FOLLOWERINFO", kind::name(other)),
                    out,
                )
            }
            (Phase::Epoch, kind::ACKEPOCH) => {
                let epoch = match decode_int(packet.data.as_deref()) {
                    Ok(epoch) => epoch,
                    Err(error) => return self.fail(tcp, format!("ACKEPOCH: {error}"), out),
                };
                let current_epoch = if epoch == -1 {
                    EPOCH_ACCEPTED_BEFORE
                } else {
                    match Epoch::try_from(epoch) {
                        Ok(epoch) if epoch != EPOCH_ACCEPTED_BEFORE => epoch,
                        _ => return self.fail(tcp, format!("ACKEPOCH epoch {epoch}"), out),
                    }
                };
                zab.push(Packet::AckEpoch {
                    current_epoch,
                    last_zxid: packet.zxid,
                });
            }
            (Phase::NewLeader, kind::ACK) => {
                // The proposals a follower logs at NEWLEADER may be acknowledged before
                // NEWLEADER itself; its ACK covers them.
                if packet.zxid == make_zxid(link.epoch, 0) {
                    link.phase = Phase::AwaitUpToDate;
                    zab.push(Packet::AckNewLeader {
                        zxid: link.newleader_zxid,
                    });
                }
            }
            (Phase::AwaitUpToDate | Phase::Broadcast, kind::ACK) => {
                // The ACK of UPTODATE carries the epoch's zxid: nothing to count.
                if packet.zxid != make_zxid(link.epoch, 0) && !link.observer {
                    zab.push(Packet::Ack { zxid: packet.zxid });
                }
            }
            (Phase::Broadcast, kind::PING) => {
                let touches = match decode_touches(packet.data.as_deref().unwrap_or(&[])) {
                    Ok(touches) => touches,
                    Err(error) => return self.fail(tcp, format!("PING: {error}"), out),
                };
                zab.push(Packet::Ping);
                if !touches.is_empty() {
                    wires.push(Wire::Touch {
                        sessions: touches.into_iter().map(|(session, _)| session).collect(),
                    });
                }
            }
            (_, kind::PING) => {}
            (_, kind::REQUEST) => {
                if link.forwards.len() >= FORWARDS_MAX {
                    return self.fail(tcp, "too many requests outstanding".into(), out);
                }
                let request = match forwarded_request(&packet) {
                    Ok(request) => request,
                    Err(error) => return self.fail(tcp, format!("REQUEST: {error}"), out),
                };
                self.next_forward += 1;
                let id = self.next_forward;
                let forward = match &request {
                    Forwarded::CreateSession { session_id, .. } => Forward::Txn((*session_id, 0)),
                    Forwarded::Request {
                        request: Request::Sync(_),
                        ..
                    } => Forward::Sync,
                    Forwarded::Request {
                        session_id, xid, ..
                    } => Forward::Txn((*session_id, *xid)),
                    Forwarded::Revalidate { session_id, .. } => Forward::Revalidate(*session_id),
                };
                link.forwards.insert(id, forward);
                wires.push(Wire::Forward { id, request });
            }
            (_, kind::REVALIDATE) => {
                let (session_id, timeout_ms) =
                    match decode_revalidate(packet.data.as_deref().unwrap_or(&[])) {
                        Ok(revalidate) => revalidate,
                        Err(error) => return self.fail(tcp, format!("REVALIDATE: {error}"), out),
                    };
                self.next_forward += 1;
                let id = self.next_forward;
                link.forwards.insert(id, Forward::Revalidate(session_id));
                wires.push(Wire::Forward {
                    id,
                    request: Forwarded::Revalidate {
                        session_id,
                        timeout_ms,
                    },
                });
            }
            (phase, other) => {
                return self.fail(
                    tcp,
                    format!("unexpected {} in phase {phase:?}", kind::name(other)),
                    out,
                )
            }
        }
        let Some(link) = self.links.get_mut(&tcp) else {
            return;
        };
        let Some(sid) = link.sid else { return };
        for packet in zab {
            let seq = link.next_seq;
            link.next_seq += 1;
            out.push(Effect::Deliver(
                sid,
                Wire::Zab(Message::Link {
                    conn: link.conn,
                    seq,
                    packet,
                }),
            ));
        }
        for wire in wires {
            out.push(Effect::Deliver(sid, wire));
        }
    }

    /// A message the core or the pipeline sends learner `to` (see [`Lead::handles`]).
    pub fn outbound(&mut self, to: ServerId, message: &Wire, out: &mut Vec<Effect>) -> bool {
        let Some(&tcp) = self.by_sid.get(&to) else {
            return false;
        };
        match message {
            Wire::Zab(Message::Link { packet, .. }) => self.link_packet(tcp, packet, out),
            Wire::SnapChunk {
                conn,
                zxid,
                offset,
                bytes,
            } => {
                // The pipeline streams ZooKeeper's snapshot (`QuorumLinks::zookeeper_snapshots`)
                // in chunks: the SNAP packet goes ahead of the first.
                if *offset == 0 {
                    out.push(Effect::ToLearner {
                        tcp,
                        packet: QuorumPacket::new(kind::SNAP, *zxid, None),
                    });
                }
                out.push(Effect::RawToLearner {
                    tcp,
                    bytes: bytes.clone(),
                    then: Some((
                        to,
                        Wire::SnapAck {
                            conn: *conn,
                            offset: offset + bytes.len() as u64,
                        },
                    )),
                });
                true
            }
            Wire::TxnDigest {
                zxid,
                version,
                digest,
            } => {
                if let Some(link) = self.links.get_mut(&tcp) {
                    link.digest = Some((
                        *zxid,
                        TxnDigest {
                            version: *version,
                            tree_digest: *digest,
                        },
                    ));
                }
                true
            }
            Wire::Proposed { id, zxid } => {
                if let Some(link) = self.links.get_mut(&tcp) {
                    if let Some(Forward::Txn(origin)) = link.forwards.remove(id) {
                        self.origins.insert(*zxid, origin);
                        while self.origins.len() > ORIGINS_MAX {
                            self.origins.pop_first();
                        }
                    }
                }
                true
            }
            Wire::Rejected { .. } => {
                self.fail(tcp, "the leader stopped taking requests".into(), out);
                true
            }
            Wire::Synced { id, zxid } => {
                let Some(link) = self.links.get_mut(&tcp) else {
                    return false;
                };
                link.forwards.remove(id);
                link.syncs.push_back(*zxid);
                flush_syncs(tcp, link, out);
                true
            }
            Wire::Revalidated { id, valid, .. } => {
                let Some(link) = self.links.get_mut(&tcp) else {
                    return false;
                };
                if let Some(Forward::Revalidate(session)) = link.forwards.remove(id) {
                    out.push(Effect::ToLearner {
                        tcp,
                        packet: QuorumPacket::new(
                            kind::REVALIDATE,
                            -1,
                            Some(encode_revalidated(session, *valid)),
                        ),
                    });
                }
                true
            }
            // Reconfig is not supported in a mixed ensemble.
            Wire::Config { .. } => true,
            _ => false,
        }
    }

    fn link_packet(&mut self, tcp: u64, packet: &Packet, out: &mut Vec<Effect>) -> bool {
        let Some(link) = self.links.get_mut(&tcp) else {
            return false;
        };
        let send = |out: &mut Vec<Effect>, packet: QuorumPacket| {
            out.push(Effect::ToLearner { tcp, packet });
        };
        match packet {
            Packet::LeaderInfo { epoch } => {
                link.epoch = *epoch;
                send(
                    out,
                    QuorumPacket::new(
                        kind::LEADERINFO,
                        make_zxid(*epoch, 0),
                        Some(encode_int(LEARNER_PROTOCOL_VERSION)),
                    ),
                );
            }
            Packet::Diff { zxid } => {
                link.phase = Phase::Sync;
                link.committed = *zxid;
                send(out, QuorumPacket::new(kind::DIFF, *zxid, None));
            }
            Packet::Trunc { zxid } => {
                link.phase = Phase::Sync;
                link.committed = *zxid;
                send(out, QuorumPacket::new(kind::TRUNC, *zxid, None));
            }
            Packet::Snap { zxid, .. } => {
                // The stream went out in chunks ahead of this (`Wire::SnapChunk`).
                link.phase = Phase::Sync;
                link.committed = *zxid;
            }
            Packet::Proposal(record) => {
                let digest = take_digest(link, record.zxid);
                if link.observer {
                    // Held until committed: see the module's notes.
                    link.held.push((record.clone(), digest));
                    return true;
                }
                let data = match self.txn_bytes(record, digest) {
                    Ok(data) => data,
                    Err(error) => {
                        self.fail(tcp, error, out);
                        return true;
                    }
                };
                let Some(link) = self.links.get_mut(&tcp) else {
                    return true;
                };
                link.proposed.push_back(record.zxid);
                link.last_proposed = link.last_proposed.max(record.zxid);
                send(
                    out,
                    QuorumPacket::new(kind::PROPOSAL, record.zxid, Some(data)),
                );
            }
            Packet::Configs { .. } => {}
            Packet::NewLeader { epoch, zxid } => {
                link.phase = Phase::NewLeader;
                link.epoch = *epoch;
                link.newleader_zxid = *zxid;
                let config = self.config_text.clone();
                send(
                    out,
                    QuorumPacket::new(kind::NEWLEADER, make_zxid(*epoch, 0), Some(config)),
                );
            }
            Packet::Commit { zxid } => {
                if !link.observer && matches!(link.phase, Phase::NewLeader | Phase::AwaitUpToDate) {
                    // A follower logs its sync's proposals at NEWLEADER and forgets them
                    // (Learner.syncWithLeader): a COMMIT before UPTODATE finds none and ends
                    // its sync with a NullPointerException (3.8). Held until UPTODATE.
                    link.commit_held = link.commit_held.max(*zxid);
                } else {
                    self.commit_through(tcp, *zxid, out);
                }
            }
            Packet::UpToDate { zxid } => {
                let observer = link.observer;
                let through = link.commit_held.max(*zxid);
                if observer {
                    // An observer takes COMMITs until UPTODATE and ignores them after.
                    self.commit_through(tcp, through, out);
                }
                let Some(link) = self.links.get_mut(&tcp) else {
                    return true;
                };
                // Those of an observer's sync proposals still uncommitted come as INFORMs.
                link.held.clear();
                link.phase = Phase::Broadcast;
                out.push(Effect::ToLearner {
                    tcp,
                    packet: QuorumPacket::new(kind::UPTODATE, -1, None),
                });
                if !observer {
                    // After UPTODATE the follower has logged every proposal it was sent, and
                    // commits them in order (FollowerZooKeeperServer.commit).
                    self.commit_through(tcp, through, out);
                }
                if let Some(link) = self.links.get_mut(&tcp) {
                    flush_syncs(tcp, link, out);
                }
            }
            Packet::Inform(record) => {
                let digest = take_digest(link, record.zxid);
                if link.held.iter().any(|(held, _)| held.zxid == record.zxid) {
                    self.commit_through(tcp, record.zxid, out);
                    return true;
                }
                // Sync proposals before an informed record committed before it.
                if let Some(last) = link.held.last().map(|(held, _)| held.zxid) {
                    self.commit_through(tcp, last, out);
                }
                let data = match self.txn_bytes(record, digest) {
                    Ok(data) => data,
                    Err(error) => {
                        self.fail(tcp, error, out);
                        return true;
                    }
                };
                let Some(link) = self.links.get_mut(&tcp) else {
                    return true;
                };
                link.committed = link.committed.max(record.zxid);
                link.last_proposed = link.last_proposed.max(record.zxid);
                send(
                    out,
                    QuorumPacket::new(kind::INFORM, record.zxid, Some(data)),
                );
                flush_syncs(tcp, link, out);
            }
            Packet::Ping => match link.phase {
                Phase::Broadcast => {
                    send(out, QuorumPacket::new(kind::PING, link.last_proposed, None))
                }
                // Learner.syncWithLeader answers no ping: the connection being up is what
                // the leader hears of it until then (LearnerHandler reads it with the
                // initLimit timeout meanwhile; so does the shell).
                Phase::Epoch | Phase::Sync | Phase::NewLeader | Phase::AwaitUpToDate => {
                    if let Some(sid) = link.sid {
                        let seq = link.next_seq;
                        link.next_seq += 1;
                        out.push(Effect::Deliver(
                            sid,
                            Wire::Zab(Message::Link {
                                conn: link.conn,
                                seq,
                                packet: Packet::Ping,
                            }),
                        ));
                    }
                }
                Phase::Info => {}
            },
            // A learner's packets: not the leader's to send.
            Packet::FollowerInfo { .. }
            | Packet::AckEpoch { .. }
            | Packet::AckNewLeader { .. }
            | Packet::Ack { .. } => return false,
        }
        true
    }

    /// COMMITs (an observer: PROPOSAL + COMMIT of its held sync proposals) through `zxid`.
    fn commit_through(&mut self, tcp: u64, zxid: Zxid, out: &mut Vec<Effect>) {
        let Some(link) = self.links.get_mut(&tcp) else {
            return;
        };
        if link.observer {
            let ready = link.held.partition_point(|(record, _)| record.zxid <= zxid);
            let held: Vec<(LogRecord, Option<TxnDigest>)> = link.held.drain(..ready).collect();
            for (record, digest) in held {
                let data = match self.txn_bytes(&record, digest) {
                    Ok(data) => data,
                    Err(error) => return self.fail(tcp, error, out),
                };
                out.push(Effect::ToLearner {
                    tcp,
                    packet: QuorumPacket::new(kind::PROPOSAL, record.zxid, Some(data)),
                });
                out.push(Effect::ToLearner {
                    tcp,
                    packet: QuorumPacket::new(kind::COMMIT, record.zxid, None),
                });
            }
        } else {
            while let Some(&next) = link.proposed.front() {
                if next > zxid {
                    break;
                }
                link.proposed.pop_front();
                out.push(Effect::ToLearner {
                    tcp,
                    packet: QuorumPacket::new(kind::COMMIT, next, None),
                });
            }
        }
        let Some(link) = self.links.get_mut(&tcp) else {
            return;
        };
        link.committed = link.committed.max(zxid);
        flush_syncs(tcp, link, out);
    }

    /// A record as ZooKeeper's txn bytes, with its header's origin and the leader's digest.
    fn txn_bytes(&self, record: &LogRecord, digest: Option<TxnDigest>) -> Result<Vec<u8>, String> {
        let origin = self.origins.get(&record.zxid).copied();
        let entry = entry_of(record, origin, digest)
            .map_err(|error| format!("txn {:#x}: {error}", record.zxid))?;
        Ok(encode_entry(&entry))
    }
}

fn take_digest(link: &mut LearnerLink, zxid: Zxid) -> Option<TxnDigest> {
    match link.digest {
        Some((at, digest)) if at == zxid => {
            link.digest = None;
            Some(digest)
        }
        _ => None,
    }
}

/// SYNC answers whose zxid this learner has had the COMMITs of.
fn flush_syncs(tcp: u64, link: &mut LearnerLink, out: &mut Vec<Effect>) {
    if link.phase != Phase::Broadcast {
        return;
    }
    while link
        .syncs
        .front()
        .is_some_and(|zxid| *zxid <= link.committed)
    {
        link.syncs.pop_front();
        out.push(Effect::ToLearner {
            tcp,
            packet: QuorumPacket::new(kind::SYNC, 0, None),
        });
    }
}

/// A learner's REQUEST as the forwarded request the pipeline's leader takes
/// (Learner.request: session, cxid, type, the client's record; createSession carries the
/// timeout; the packet's auth ids are the client's).
fn forwarded_request(packet: &QuorumPacket) -> Result<Forwarded, String> {
    let data = packet.data.as_deref().ok_or("no data")?;
    let request = LearnerRequest::decode(data).map_err(|error| error.to_string())?;
    if request.op == opcode::CREATE_SESSION {
        let timeout_ms = decode_int(Some(&request.body)).map_err(|error| error.to_string())?;
        return Ok(Forwarded::CreateSession {
            session_id: request.session_id,
            timeout_ms,
        });
    }
    let mut reader = Reader::new(&request.body);
    let decoded = Request::decode(request.op, &mut reader).map_err(|error| format!("{error:?}"))?;
    Ok(Forwarded::Request {
        session_id: request.session_id,
        xid: request.cxid,
        request: decoded,
        auth: packet.auth.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Txn;

    fn sent(effects: &[Effect]) -> Vec<(i32, i64)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::ToLearner { packet, .. } => Some((packet.kind, packet.zxid)),
                _ => None,
            })
            .collect()
    }

    fn delivered(effects: &[Effect]) -> Vec<Packet> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Deliver(_, Wire::Zab(Message::Link { packet, .. })) => Some(packet.clone()),
                _ => None,
            })
            .collect()
    }

    fn record(zxid: Zxid) -> LogRecord {
        LogRecord {
            zxid,
            time_ms: 1,
            txn: Txn::Delete {
                path: format!("/{zxid:x}"),
            },
        }
    }

    fn link(conn: u64, packet: Packet) -> Wire {
        Wire::Zab(Message::Link {
            conn,
            seq: 0,
            packet,
        })
    }

    /// A learner `sid` registered on connection 9 and told epoch 2: returns its link id.
    fn registered(lead: &mut Lead, sid: ServerId, observer: bool, out: &mut Vec<Effect>) -> u64 {
        lead.accepted(9);
        let info = LearnerInfo {
            sid: sid as i64,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: 0,
        };
        let kind = if observer {
            kind::OBSERVERINFO
        } else {
            kind::FOLLOWERINFO
        };
        lead.inbound(
            9,
            QuorumPacket::new(kind, make_zxid(1, 0), Some(info.encode())),
            out,
        );
        let conn = match out.first() {
            Some(Effect::Deliver(from, Wire::Zab(Message::Link { conn, seq, packet }))) => {
                assert_eq!((*from, *seq), (sid, 0));
                assert_eq!(
                    *packet,
                    Packet::FollowerInfo {
                        accepted_epoch: 1,
                        observer
                    }
                );
                *conn
            }
            other => panic!("{other:?}"),
        };
        assert!(lead.handles(sid, &link(conn, Packet::LeaderInfo { epoch: 2 })));
        assert!(!lead.handles(sid, &link(conn + 1, Packet::Ping)));
        assert!(lead.outbound(sid, &link(conn, Packet::LeaderInfo { epoch: 2 }), out));
        // ACKEPOCH -1: the learner had accepted epoch 2 before.
        lead.inbound(
            9,
            QuorumPacket::new(kind::ACKEPOCH, make_zxid(1, 5), Some(encode_int(-1))),
            out,
        );
        assert_eq!(
            delivered(out).last(),
            Some(&Packet::AckEpoch {
                current_epoch: EPOCH_ACCEPTED_BEFORE,
                last_zxid: make_zxid(1, 5)
            })
        );
        conn
    }

    /// The core's DIFF sync of a learner at zxid 1:5 with two proposals (returned), then
    /// NEWLEADER, and `then`; sent to `sid` on link `conn`.
    fn sync_two(
        lead: &mut Lead,
        sid: ServerId,
        conn: u64,
        then: Packet,
        out: &mut Vec<Effect>,
    ) -> (Zxid, Zxid) {
        let (a, b) = (make_zxid(1, 6), make_zxid(1, 7));
        for packet in [
            Packet::Diff {
                zxid: make_zxid(1, 5),
            },
            Packet::Proposal(record(a)),
            Packet::Proposal(record(b)),
            Packet::NewLeader { epoch: 2, zxid: b },
            then,
        ] {
            assert!(lead.outbound(sid, &link(conn, packet), out));
        }
        (a, b)
    }

    #[test]
    fn a_follower_gets_one_commit_per_proposal_after_uptodate_and_sync_after_its_commits() {
        let mut lead = Lead::new(b"version=0".to_vec());
        let mut out = Vec::new();
        let conn = registered(&mut lead, 1, false, &mut out);
        assert_eq!(sent(&out), vec![(kind::LEADERINFO, make_zxid(2, 0))]);
        out.clear();
        // A commit between NEWLEADER and UPTODATE is held (3.8's follower NPEs on it).
        let commit = Packet::Commit {
            zxid: make_zxid(1, 6),
        };
        let (a, b) = sync_two(&mut lead, 1, conn, commit, &mut out);
        assert_eq!(
            sent(&out),
            vec![
                (kind::DIFF, make_zxid(1, 5)),
                (kind::PROPOSAL, a),
                (kind::PROPOSAL, b),
                (kind::NEWLEADER, make_zxid(2, 0)),
            ]
        );
        out.clear();
        // A proposal's ACK before the ACK of NEWLEADER is covered by it; NEWLEADER's ACK
        // acknowledges the history it closed.
        lead.inbound(9, QuorumPacket::new(kind::ACK, a, None), &mut out);
        assert!(delivered(&out).is_empty());
        lead.inbound(
            9,
            QuorumPacket::new(kind::ACK, make_zxid(2, 0), None),
            &mut out,
        );
        assert_eq!(delivered(&out), vec![Packet::AckNewLeader { zxid: b }]);
        out.clear();
        // A sync answered at the leader's commit point waits for the COMMITs before it.
        assert!(lead.outbound(1, &Wire::Synced { id: 1, zxid: b }, &mut out));
        assert!(sent(&out).is_empty());
        assert!(lead.outbound(1, &link(conn, Packet::UpToDate { zxid: a }), &mut out));
        assert_eq!(
            sent(&out),
            vec![(kind::UPTODATE, -1), (kind::COMMIT, a)],
            "UPTODATE first, then each commit once"
        );
        out.clear();
        assert!(lead.outbound(1, &link(conn, Packet::Commit { zxid: b }), &mut out));
        assert_eq!(sent(&out), vec![(kind::COMMIT, b), (kind::SYNC, 0)]);
        out.clear();
        // The ACK of UPTODATE carries the epoch's zxid: nothing for the core to count.
        lead.inbound(
            9,
            QuorumPacket::new(kind::ACK, make_zxid(2, 0), None),
            &mut out,
        );
        lead.inbound(9, QuorumPacket::new(kind::ACK, b, None), &mut out);
        assert_eq!(delivered(&out), vec![Packet::Ack { zxid: b }]);
    }

    #[test]
    fn an_observer_is_synced_with_committed_proposals_only() {
        let mut lead = Lead::new(b"version=0".to_vec());
        let mut out = Vec::new();
        let conn = registered(&mut lead, 4, true, &mut out);
        out.clear();
        let uptodate = Packet::UpToDate {
            zxid: make_zxid(1, 6),
        };
        let (a, b) = sync_two(&mut lead, 4, conn, uptodate, &mut out);
        assert_eq!(
            sent(&out),
            vec![
                (kind::DIFF, make_zxid(1, 5)),
                (kind::NEWLEADER, make_zxid(2, 0)),
                (kind::PROPOSAL, a),
                (kind::COMMIT, a),
                (kind::UPTODATE, -1),
            ]
        );
        out.clear();
        // The proposal still uncommitted at UPTODATE comes as an INFORM once it commits.
        assert!(lead.outbound(4, &link(conn, Packet::Inform(record(b))), &mut out));
        assert_eq!(sent(&out), vec![(kind::INFORM, b)]);
    }

    #[test]
    fn forwarded_requests_name_their_session_and_cxid_in_the_txn_header() {
        use crate::jute::codec::Writer;
        use crate::jute::records::DeleteRequest;
        use crate::jute::request::Request;
        let mut lead = Lead::new(b"version=0".to_vec());
        let mut out = Vec::new();
        let conn = registered(&mut lead, 1, false, &mut out);
        out.clear();
        let mut body = Writer::new();
        Request::Delete(DeleteRequest {
            path: "/x".into(),
            version: -1,
        })
        .encode(&mut body);
        let request = LearnerRequest {
            session_id: 0x0100_0000_0000_0001,
            cxid: 42,
            op: opcode::DELETE,
            body: body.into_bytes(),
        };
        lead.inbound(
            9,
            QuorumPacket::new(kind::REQUEST, -1, Some(request.encode())),
            &mut out,
        );
        let id = match out.as_slice() {
            [Effect::Deliver(1, Wire::Forward { id, request })] => {
                assert!(matches!(
                    request,
                    Forwarded::Request {
                        session_id: 0x0100_0000_0000_0001,
                        xid: 42,
                        ..
                    }
                ));
                *id
            }
            other => panic!("{other:?}"),
        };
        out.clear();
        let zxid = make_zxid(2, 1);
        for wire in [
            Wire::Proposed { id, zxid },
            link(
                conn,
                Packet::Diff {
                    zxid: make_zxid(1, 5),
                },
            ),
            link(conn, Packet::Proposal(record(zxid))),
        ] {
            assert!(lead.outbound(1, &wire, &mut out));
        }
        let data = out
            .iter()
            .find_map(|effect| match effect {
                Effect::ToLearner { packet, .. } if packet.kind == kind::PROPOSAL => {
                    packet.data.clone()
                }
                _ => None,
            })
            .expect("a proposal");
        let entry = crate::zkformat::txn::decode_entry(&data).expect("ZooKeeper's txn");
        assert_eq!(
            (entry.header.client_id, entry.header.cxid, entry.header.zxid),
            (0x0100_0000_0000_0001, 42, zxid)
        );
    }
}
