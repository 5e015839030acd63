//! [pure] Between ZAB's messages ([`crate::quorum::Wire`], what the pipeline's ensemble shell
//! and [`crate::zab::Peer`] speak) and ZooKeeper's packets, for a ringkeeper **learner** of a
//! ZooKeeper leader. The shell ([`super::links`]) moves bytes; this decides what they mean.
//!
//! ZAB's link model (a connection id and per-direction sequence numbers) maps onto one TCP
//! connection to the leader's quorum port: the learner's `FollowerInfo` on a fresh ZAB
//! connection opens a fresh TCP connection, and the packets read from it are numbered 0, 1,
//! 2... in order. Where ZooKeeper's Zab 1.0 differs from the ZAB core's packets, this module
//! adapts, so that the core and its simulator stay one:
//!
//! | ZooKeeper (Learner.syncWithLeader, Observer.processPacket) | ZAB core |
//! | --- | --- |
//! | LEADERINFO zxid = newEpoch << 32, data = int 0x10000 | `LeaderInfo { epoch }` |
//! | ACKEPOCH zxid = last zxid, data = int current epoch (-1 if the epoch was accepted before) | from `AckEpoch` |
//! | DIFF zxid = the leader's last zxid | `Diff { zxid: the learner's last zxid }` |
//! | TRUNC zxid, SNAP zxid + stream | `Trunc`, `Snap` (the stream converted to ringkeeper's snapshot by the shell) |
//! | PROPOSAL / COMMIT pairs before NEWLEADER | `Proposal`s; the commits are held and given after `NewLeader` |
//! | NEWLEADER zxid = newEpoch << 32, data = config | `NewLeader { epoch, zxid: the last zxid synced }` |
//! | ACK zxid = newEpoch << 32 (of NEWLEADER, and again after UPTODATE) | from `AckNewLeader` |
//! | UPTODATE zxid = -1 | `UpToDate { zxid: the last commit }` |
//! | INFORM data = txn | `Proposed` (when it answers a forwarded request) then `Inform` |
//! | the TxnDigest after a PROPOSAL's or INFORM's txn | `Wire::TxnDigest` ahead of it (not for the txns a SNAP sync commits before NEWLEADER, see `Link::held_digests`) |
//! | PING zxid = last proposed, answered at once with touches | `Ping` |
//! | SYNC (no id: answers the learner's syncs in order) | `Synced { id, zxid }` |
//! | REVALIDATE data = session, valid | `Revalidated` |
//!
//! A forwarded write is matched to the INFORM (or PROPOSAL) that carries it by its session
//! and cxid in the txn header, as ZooKeeper's CommitProcessor matches it; every request
//! ZooKeeper's leader takes produces a txn, failures included (an error txn).

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::quorum::{Forwarded, Wire};
use crate::txnlog::format::LogRecord;
use crate::zab::{epoch_of, make_zxid, Epoch, Message, Packet, ServerId, Zxid};
use crate::zkformat::opcode;

use super::lead::Lead;
use super::txn::{learner_packet, record_of};
use super::wire::{
    decode_int, decode_revalidated, encode_int, encode_touches, kind, LearnerInfo, QuorumPacket,
    ZkNotification, LEARNER_PROTOCOL_VERSION,
};

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hand a message to the pipeline as if `from` had sent it.
    Deliver(ServerId, Wire),
    /// Tell the pipeline that the connection from `leader` closed.
    Closed(ServerId),
    /// Send a notification body to `to` on the election port.
    Notify { to: ServerId, body: Vec<u8> },
    /// Open TCP connection `conn` (this translator's number, not ZAB's link id) to `leader`'s
    /// quorum port, closing any other, and send `first` on it.
    Connect {
        leader: ServerId,
        conn: u64,
        first: QuorumPacket,
    },
    /// Send a packet on TCP connection `conn`.
    Send { conn: u64, packet: QuorumPacket },
    /// Close TCP connection `conn`.
    Close { conn: u64 },
    /// Send a packet on learner connection `tcp` (this server leading: [`super::lead`]).
    ToLearner { tcp: u64, packet: QuorumPacket },
    /// Send raw bytes (a snapshot stream's) on learner connection `tcp`; once they are
    /// written, deliver `then` (the stream's acknowledgement) as if its learner sent it.
    RawToLearner {
        tcp: u64,
        bytes: Vec<u8>,
        then: Option<(ServerId, Wire)>,
    },
    /// Close learner connection `tcp`.
    CloseLearner { tcp: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// FOLLOWERINFO/OBSERVERINFO sent, nothing received yet.
    Registering,
    /// LEADERINFO received, ACKEPOCH sent.
    Epoch,
    /// DIFF, TRUNC or SNAP received: proposals until NEWLEADER.
    Syncing,
    /// NEWLEADER received: until UPTODATE.
    NewLeader,
    Broadcast,
}

#[derive(Debug)]
struct Link {
    leader: ServerId,
    /// ZAB's link id (renamed by a FollowerInfo retry, see `outbound_link`).
    conn: u64,
    /// The TCP connection's number (stable for its life).
    tcp: u64,
    /// The sequence number of the next packet handed to ZAB.
    next_seq: u64,
    phase: Phase,
    accepted_epoch: Epoch,
    epoch: Epoch,
    /// The learner's last zxid, as its ACKEPOCH said.
    learner_zxid: Zxid,
    /// The last zxid of the history being synced.
    synced_zxid: Zxid,
    /// The highest zxid committed so far on this link.
    committed_zxid: Zxid,
    /// The zxid of the last PROPOSAL or INFORM of the sync (until UPTODATE), 0 before the
    /// first: see [`continuous`].
    last_queued: Zxid,
    /// Forwarded requests by (session, cxid) -> forward id.
    forwarded: HashMap<(i64, i32), u64>,
    /// Forwarded syncs, in the order sent.
    syncs: VecDeque<u64>,
    /// Forwarded revalidations by session, in the order sent: (forward id, timeout).
    revalidations: HashMap<i64, VecDeque<(u64, i32)>>,
    /// The sync is a SNAP: see [`Link::held_digests`].
    snap_sync: bool,
    /// A SNAP sync's PROPOSAL digests (`Wire::TxnDigest`) until NEWLEADER. ZooKeeper's
    /// Learner.syncWithLeader applies the txns committed before NEWLEADER of a SNAP sync
    /// without their digest (`zk.processTxn(hdr, rec)`: they replay over a fuzzy snapshot,
    /// where the tree may differ from the leader's until they are all applied), and logs the
    /// others with theirs, compared once they commit: so a COMMIT before NEWLEADER drops the
    /// digests up to it, and NEWLEADER hands the rest on. An INFORM before NEWLEADER of a
    /// SNAP sync is applied at once without its digest: dropped too.
    held_digests: Vec<(Zxid, Wire)>,
}

/// ZOOKEEPER-4925 (Learner.enforceContinuousProposal): the proposals of a sync follow each
/// other without a gap within an epoch; a gap means the leader's history lost records, and
/// logging what follows would leave a hole in this server's log. A jump to a later epoch
/// cannot be told from a loss and is taken (with a warning), as ZooKeeper does.
pub(super) fn continuous(last_queued: Zxid, zxid: Zxid) -> Result<(), String> {
    if last_queued == 0 || zxid == last_queued + 1 {
        return Ok(());
    }
    if epoch_of(zxid) <= epoch_of(last_queued) {
        return Err(format!(
            "the sync sent proposal {zxid:#x} after {last_queued:#x}, expected {:#x}",
            last_queued + 1
        ));
    }
    tracing::warn!(
        "the sync sent proposal {zxid:#x} of a new epoch after {last_queued:#x}, expected {:#x}",
        last_queued + 1
    );
    Ok(())
}

/// Bounds: requests a learner may have outstanding with its leader.
const FORWARDED_MAX: usize = 1 << 20;

pub struct Translator {
    me: ServerId,
    observer: bool,
    config_text: Vec<u8>,
    config_version: i64,
    link: Option<Link>,
    next_tcp: u64,
    /// Session timeouts, learned from the sessions this server forwards and the session
    /// txns it sees: a PING's touches carry each session's timeout (SessionTrackerImpl
    /// .touchSession uses it for the next expiry).
    timeouts: HashMap<i64, i32>,
    /// The timeout sent for a session not seen yet (the configured maximum: a touch never
    /// shortens a session).
    default_timeout_ms: i32,
    touched: BTreeSet<i64>,
    /// Why the last link was closed by this side, for the log.
    pub last_error: Option<String>,
    /// The leader's side: learners connected to this server's quorum port.
    lead: Lead,
}

impl Translator {
    pub fn new(
        me: ServerId,
        observer: bool,
        config_text: Vec<u8>,
        config_version: i64,
        default_timeout_ms: i32,
    ) -> Translator {
        let config_text_for_lead = config_text.clone();
        Translator {
            me,
            observer,
            config_text,
            config_version,
            link: None,
            next_tcp: 0,
            timeouts: HashMap::new(),
            default_timeout_ms,
            touched: BTreeSet::new(),
            last_error: None,
            lead: Lead::new(config_text_for_lead),
        }
    }

    /// A learner connected to this server's quorum port as connection `tcp`.
    pub fn learner_accepted(&mut self, tcp: u64) {
        self.lead.accepted(tcp);
    }

    /// A packet read from learner connection `tcp`.
    pub fn learner_inbound(&mut self, tcp: u64, packet: QuorumPacket, out: &mut Vec<Effect>) {
        self.lead.inbound(tcp, packet, out);
    }

    /// Learner connection `tcp` closed.
    pub fn learner_closed(&mut self, tcp: u64, out: &mut Vec<Effect>) {
        self.lead.closed(tcp, out);
    }

    /// The leader of the current link, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.link.as_ref().map(|link| link.leader)
    }

    /// Sessions and their timeouts (from a snapshot the shell installed).
    pub fn learn_sessions(&mut self, sessions: &[(i64, i32)]) {
        for (id, timeout) in sessions {
            self.timeouts.insert(*id, *timeout);
        }
    }

    /// A message the pipeline sends `to`. Returns false when it cannot be sent (no link).
    pub fn outbound(&mut self, to: ServerId, message: &Wire, out: &mut Vec<Effect>) -> bool {
        if self.lead.handles(to, message) {
            return self.lead.outbound(to, message, out);
        }
        match message {
            Wire::Zab(Message::Notification(notification)) => {
                let body = ZkNotification::from_zab(notification, &self.config_text).encode();
                out.push(Effect::Notify { to, body });
                true
            }
            Wire::Zab(Message::Link { conn, packet, .. }) => {
                self.outbound_link(to, *conn, packet, out)
            }
            Wire::Forward { id, request } => self.forward(to, *id, request, out),
            Wire::Touch { sessions } => {
                self.touched.extend(sessions.iter().copied());
                true
            }
            // ringkeeper's own extensions (streamed snapshots, configuration messages) and the
            // leader's side: nothing a ZooKeeper leader understands.
            _ => false,
        }
    }

    fn outbound_link(
        &mut self,
        to: ServerId,
        conn: u64,
        packet: &Packet,
        out: &mut Vec<Effect>,
    ) -> bool {
        match packet {
            Packet::FollowerInfo {
                accepted_epoch,
                observer,
            } => {
                if let Some(link) = &mut self.link {
                    if link.leader == to && link.phase == Phase::Registering && link.next_seq == 0 {
                        // ZAB retries its FollowerInfo every tick while the leader has not
                        // answered; ZooKeeper's leader answers LEADERINFO only once it has a
                        // quorum for the epoch. Keep the TCP connection and its place in the
                        // leader's queue: the retry only renames the link.
                        link.conn = conn;
                        link.accepted_epoch = *accepted_epoch;
                        return true;
                    }
                    out.push(Effect::Close { conn: link.tcp });
                }
                self.next_tcp += 1;
                let tcp = self.next_tcp;
                let info = LearnerInfo {
                    sid: self.me as i64,
                    protocol_version: LEARNER_PROTOCOL_VERSION,
                    config_version: self.config_version,
                };
                let first = QuorumPacket::new(
                    if *observer {
                        kind::OBSERVERINFO
                    } else {
                        kind::FOLLOWERINFO
                    },
                    make_zxid(*accepted_epoch, 0),
                    Some(info.encode()),
                );
                self.link = Some(Link {
                    leader: to,
                    conn,
                    tcp,
                    next_seq: 0,
                    phase: Phase::Registering,
                    accepted_epoch: *accepted_epoch,
                    epoch: 0,
                    learner_zxid: 0,
                    synced_zxid: 0,
                    committed_zxid: 0,
                    last_queued: 0,
                    forwarded: HashMap::new(),
                    syncs: VecDeque::new(),
                    revalidations: HashMap::new(),
                    snap_sync: false,
                    held_digests: Vec::new(),
                });
                out.push(Effect::Connect {
                    leader: to,
                    conn: tcp,
                    first,
                });
                true
            }
            _ => {
                let Some(link) = &mut self.link else {
                    return false;
                };
                if link.leader != to || link.conn != conn {
                    return false;
                }
                let packet = match packet {
                    Packet::AckEpoch {
                        current_epoch,
                        last_zxid,
                    } => {
                        link.learner_zxid = *last_zxid;
                        link.synced_zxid = *last_zxid;
                        // Learner.registerWithLeader: -1 says "this epoch was accepted before,
                        // do not count this as an ack of it".
                        let epoch_field = if link.epoch == link.accepted_epoch {
                            -1
                        } else {
                            *current_epoch as i32
                        };
                        QuorumPacket::new(kind::ACKEPOCH, *last_zxid, Some(encode_int(epoch_field)))
                    }
                    Packet::AckNewLeader { .. } => {
                        QuorumPacket::new(kind::ACK, make_zxid(link.epoch, 0), None)
                    }
                    Packet::Ack { zxid } => QuorumPacket::new(kind::ACK, *zxid, None),
                    // The learner's own pings: ZooKeeper's learner only answers the leader's
                    // (see `inbound`), which carries the touches.
                    Packet::Ping => return true,
                    _ => return false,
                };
                out.push(Effect::Send {
                    conn: link.tcp,
                    packet,
                });
                true
            }
        }
    }

    fn forward(
        &mut self,
        to: ServerId,
        id: u64,
        request: &Forwarded,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(link) = &mut self.link else {
            return false;
        };
        if link.leader != to || link.forwarded.len() >= FORWARDED_MAX {
            return false;
        }
        match request {
            Forwarded::CreateSession {
                session_id,
                timeout_ms,
            } => {
                self.timeouts.insert(*session_id, *timeout_ms);
                link.forwarded.insert((*session_id, 0), id);
            }
            Forwarded::Revalidate {
                session_id,
                timeout_ms,
            } => {
                self.timeouts.insert(*session_id, *timeout_ms);
                link.revalidations
                    .entry(*session_id)
                    .or_default()
                    .push_back((id, *timeout_ms));
            }
            Forwarded::Request {
                session_id,
                xid,
                request,
                ..
            } => {
                if request.op_type() == crate::jute::protocol::OpCode::Sync as i32 {
                    link.syncs.push_back(id);
                } else {
                    link.forwarded.insert((*session_id, *xid), id);
                }
            }
        }
        let (packet_kind, data, auth) = learner_packet(request);
        let packet = QuorumPacket {
            kind: packet_kind,
            zxid: -1,
            data: Some(data),
            auth: Some(auth),
        };
        out.push(Effect::Send {
            conn: link.tcp,
            packet,
        });
        true
    }

    /// A notification from `from` on the election port.
    pub fn notification(&mut self, from: ServerId, body: &[u8], out: &mut Vec<Effect>) {
        match ZkNotification::decode(body) {
            Ok(notification) => {
                if let Some(zab) = notification.to_zab() {
                    out.push(Effect::Deliver(from, Wire::Zab(Message::Notification(zab))));
                }
            }
            Err(error) => {
                tracing::warn!("notification from server {from} dropped: {error}");
            }
        }
    }

    /// Link `conn` closed (EOF, error, or the shell gave up connecting).
    pub fn closed(&mut self, conn: u64, out: &mut Vec<Effect>) {
        if let Some(link) = &self.link {
            if link.tcp == conn {
                out.push(Effect::Closed(link.leader));
                self.link = None;
            }
        }
    }

    fn fail(&mut self, reason: String, out: &mut Vec<Effect>) {
        tracing::warn!("closing the link to the leader: {reason}");
        if let Some(link) = self.link.take() {
            out.push(Effect::Close { conn: link.tcp });
            out.push(Effect::Closed(link.leader));
        }
        self.last_error = Some(reason);
    }

    /// A packet read from link `conn`; `snapshot` is the converted stream after a SNAP.
    pub fn inbound(
        &mut self,
        conn: u64,
        packet: QuorumPacket,
        snapshot: Option<Vec<u8>>,
        out: &mut Vec<Effect>,
    ) {
        let Some(link) = &mut self.link else {
            return;
        };
        if link.tcp != conn {
            return;
        }
        let leader = link.leader;
        let zab_conn = link.conn;
        let mut zab: Vec<Packet> = Vec::new();
        let mut wires: Vec<Wire> = Vec::new();
        match (link.phase, packet.kind) {
            (phase, kind::PING) if phase != Phase::Broadcast => {
                // Learner.syncWithLeader ignores pings until UPTODATE, and the leader takes
                // nothing but the ACK of NEWLEADER as the learner's next packet after the
                // sync (LearnerHandler: "Next packet was supposed to be an ACK"): a ping
                // answered while the synced state is still being made durable ends the sync.
                zab.push(Packet::Ping);
            }
            (_, kind::PING) => {
                let touches: Vec<(i64, i32)> = std::mem::take(&mut self.touched)
                    .into_iter()
                    .map(|session| {
                        let timeout = self.timeouts.get(&session).copied();
                        (session, timeout.unwrap_or(self.default_timeout_ms))
                    })
                    .collect();
                let reply = QuorumPacket {
                    kind: kind::PING,
                    zxid: packet.zxid,
                    data: Some(encode_touches(&touches)),
                    auth: packet.auth.clone(),
                };
                out.push(Effect::Send {
                    conn,
                    packet: reply,
                });
                zab.push(Packet::Ping);
            }
            (Phase::Registering, kind::LEADERINFO) => {
                if let Err(error) = decode_int(packet.data.as_deref()) {
                    return self.fail(format!("LEADERINFO: {error}"), out);
                }
                link.epoch = epoch_of(packet.zxid);
                link.phase = Phase::Epoch;
                zab.push(Packet::LeaderInfo { epoch: link.epoch });
            }
            (Phase::Epoch, kind::DIFF) => {
                link.phase = Phase::Syncing;
                link.committed_zxid = link.learner_zxid;
                zab.push(Packet::Diff {
                    zxid: link.learner_zxid,
                });
            }
            (Phase::Epoch, kind::TRUNC) => {
                link.phase = Phase::Syncing;
                link.synced_zxid = packet.zxid;
                link.committed_zxid = packet.zxid;
                zab.push(Packet::Trunc { zxid: packet.zxid });
            }
            (Phase::Epoch, kind::SNAP) => {
                let Some(payload) = snapshot else {
                    return self.fail("SNAP without its snapshot".into(), out);
                };
                link.phase = Phase::Syncing;
                link.snap_sync = true;
                link.synced_zxid = packet.zxid;
                link.committed_zxid = packet.zxid;
                zab.push(Packet::Snap {
                    zxid: packet.zxid,
                    payload,
                });
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, kind::PROPOSAL) => {
                let (record, digest) = match self.txn_of(&packet, &mut wires) {
                    Ok(record) => record,
                    Err(error) => return self.fail(error, out),
                };
                let Some(link) = &mut self.link else { return };
                if link.phase != Phase::Broadcast {
                    if let Err(error) = continuous(link.last_queued, record.zxid) {
                        return self.fail(error, out);
                    }
                    link.last_queued = record.zxid;
                }
                if let Some(digest) = digest {
                    if link.snap_sync && link.phase == Phase::Syncing {
                        link.held_digests.push((record.zxid, digest));
                    } else {
                        wires.push(digest);
                    }
                }
                link.synced_zxid = link.synced_zxid.max(record.zxid);
                zab.push(Packet::Proposal(record));
            }
            (Phase::Syncing, kind::COMMIT) => {
                // ZAB's learner takes commits only after NEWLEADER: held until then.
                if packet.zxid > link.synced_zxid {
                    return self.fail(
                        format!("COMMIT {:#x} of nothing proposed", packet.zxid),
                        out,
                    );
                }
                link.committed_zxid = link.committed_zxid.max(packet.zxid);
                link.held_digests.retain(|(zxid, _)| *zxid > packet.zxid);
            }
            (Phase::NewLeader | Phase::Broadcast, kind::COMMIT) => {
                link.committed_zxid = link.committed_zxid.max(packet.zxid);
                zab.push(Packet::Commit { zxid: packet.zxid });
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, kind::INFORM) => {
                let syncing = link.phase == Phase::Syncing;
                let (record, digest) = match self.txn_of(&packet, &mut wires) {
                    Ok(record) => record,
                    Err(error) => return self.fail(error, out),
                };
                let Some(link) = &mut self.link else { return };
                if link.phase != Phase::Broadcast {
                    if let Err(error) = continuous(link.last_queued, record.zxid) {
                        return self.fail(error, out);
                    }
                    link.last_queued = record.zxid;
                }
                if let Some(digest) = digest {
                    if !(syncing && link.snap_sync) {
                        wires.push(digest);
                    }
                }
                link.synced_zxid = link.synced_zxid.max(record.zxid);
                link.committed_zxid = link.committed_zxid.max(record.zxid);
                if syncing {
                    // Learner.syncWithLeader takes an INFORM before NEWLEADER as a committed
                    // proposal.
                    zab.push(Packet::Proposal(record));
                } else {
                    zab.push(Packet::Inform(record));
                }
            }
            (Phase::Syncing, kind::NEWLEADER) => {
                link.phase = Phase::NewLeader;
                wires.extend(link.held_digests.drain(..).map(|(_, digest)| digest));
                link.epoch = epoch_of(packet.zxid);
                zab.push(Packet::NewLeader {
                    epoch: link.epoch,
                    zxid: link.synced_zxid,
                });
                zab.push(Packet::Commit {
                    zxid: link.committed_zxid,
                });
            }
            (Phase::NewLeader, kind::UPTODATE) => {
                link.phase = Phase::Broadcast;
                zab.push(Packet::UpToDate {
                    zxid: link.committed_zxid,
                });
                // Learner.syncWithLeader acknowledges UPTODATE with the new epoch's zxid.
                out.push(Effect::Send {
                    conn,
                    packet: QuorumPacket::new(kind::ACK, make_zxid(link.epoch, 0), None),
                });
            }
            (Phase::NewLeader | Phase::Broadcast, kind::SYNC) => {
                let Some(id) = link.syncs.pop_front() else {
                    return self.fail("SYNC answers no sync".into(), out);
                };
                wires.push(Wire::Synced {
                    id,
                    zxid: link.committed_zxid,
                });
            }
            (_, kind::REVALIDATE) => {
                let (session, valid) =
                    match decode_revalidated(packet.data.as_deref().unwrap_or(&[])) {
                        Ok(answer) => answer,
                        Err(error) => return self.fail(format!("REVALIDATE: {error}"), out),
                    };
                let pending = link
                    .revalidations
                    .get_mut(&session)
                    .and_then(|queue| queue.pop_front());
                if let Some((id, timeout_ms)) = pending {
                    wires.push(Wire::Revalidated {
                        id,
                        valid,
                        timeout_ms,
                    });
                }
                if link
                    .revalidations
                    .get(&session)
                    .is_some_and(VecDeque::is_empty)
                {
                    link.revalidations.remove(&session);
                }
            }
            (_, kind::COMMITANDACTIVATE | kind::INFORMANDACTIVATE) => {
                return self.fail(
                    "a reconfig committed by the ZooKeeper leader: membership changes are \
                     not supported in a mixed ensemble"
                        .into(),
                    out,
                );
            }
            (phase, other) => {
                return self.fail(
                    format!("unexpected {} in phase {phase:?}", kind::name(other)),
                    out,
                );
            }
        }
        let Some(link) = &mut self.link else { return };
        for wire in wires {
            out.push(Effect::Deliver(leader, wire));
        }
        for packet in zab {
            let seq = link.next_seq;
            link.next_seq += 1;
            out.push(Effect::Deliver(
                leader,
                Wire::Zab(Message::Link {
                    conn: zab_conn,
                    seq,
                    packet,
                }),
            ));
        }
    }

    /// The record of a PROPOSAL or INFORM, and its digest as a `Wire::TxnDigest` when it
    /// carries one; a forwarded request it answers goes to `wires` (`Proposed`, ahead of the
    /// record).
    fn txn_of(
        &mut self,
        packet: &QuorumPacket,
        wires: &mut Vec<Wire>,
    ) -> Result<(LogRecord, Option<Wire>), String> {
        let data = packet
            .data
            .as_deref()
            .ok_or_else(|| format!("{} without data", kind::name(packet.kind)))?;
        let (entry, record) =
            record_of(data).map_err(|error| format!("{}: {error}", kind::name(packet.kind)))?;
        if packet.kind == kind::PROPOSAL || packet.kind == kind::INFORM {
            // The packet's zxid is the txn's (Leader.propose, sendObserverPacket).
            if packet.zxid != entry.header.zxid {
                return Err(format!(
                    "{} zxid {:#x} carries txn {:#x}",
                    kind::name(packet.kind),
                    packet.zxid,
                    entry.header.zxid
                ));
            }
        }
        match entry.header.op {
            opcode::CREATE_SESSION => {
                if let crate::tree::Txn::CreateSession { timeout_ms, .. } = &record.txn {
                    self.timeouts.insert(entry.header.client_id, *timeout_ms);
                }
            }
            opcode::CLOSE_SESSION => {
                self.timeouts.remove(&entry.header.client_id);
            }
            _ => {}
        }
        if let Some(link) = &mut self.link {
            if let Some(id) = link
                .forwarded
                .remove(&(entry.header.client_id, entry.header.cxid))
            {
                wires.push(Wire::Proposed {
                    id,
                    zxid: record.zxid,
                });
            }
        }
        // Leader.propose serializes the request's TxnDigest after the txn (3.6+, with
        // zookeeper.digest.enabled): the leader's tree digest after this txn.
        let digest = entry.digest.map(|digest| Wire::TxnDigest {
            zxid: record.zxid,
            version: digest.version,
            digest: digest.tree_digest,
        });
        Ok((record, digest))
    }

    /// Whether this translator plays an observer.
    pub fn is_observer(&self) -> bool {
        self.observer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_packets(effects: &[Effect]) -> Vec<Packet> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Deliver(_, Wire::Zab(Message::Link { packet, .. })) => Some(packet.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent(effects: &[Effect]) -> Vec<QuorumPacket> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Send { packet, .. } => Some(packet.clone()),
                Effect::Connect { first, .. } => Some(first.clone()),
                _ => None,
            })
            .collect()
    }

    fn register(translator: &mut Translator, out: &mut Vec<Effect>) {
        let info = Wire::Zab(Message::Link {
            conn: 7,
            seq: 0,
            packet: Packet::FollowerInfo {
                accepted_epoch: 0,
                observer: true,
            },
        });
        assert!(translator.outbound(3, &info, out));
    }

    #[test]
    fn a_diff_sync_holds_commits_until_newleader_and_numbers_packets_in_order() {
        let mut translator = Translator::new(4, true, b"version=0".to_vec(), 0, 40_000);
        let mut out = Vec::new();
        register(&mut translator, &mut out);
        let first = sent(&out);
        assert_eq!(first[0].kind, kind::OBSERVERINFO);
        // A retry of FollowerInfo while the leader has not answered renames the link only.
        out.clear();
        let retry = Wire::Zab(Message::Link {
            conn: 8,
            seq: 0,
            packet: Packet::FollowerInfo {
                accepted_epoch: 0,
                observer: true,
            },
        });
        assert!(translator.outbound(3, &retry, &mut out));
        assert!(out.is_empty());
        translator.inbound(
            1,
            QuorumPacket::new(kind::LEADERINFO, 0x1_0000_0000, Some(encode_int(0x10000))),
            None,
            &mut out,
        );
        assert_eq!(link_packets(&out), vec![Packet::LeaderInfo { epoch: 1 }]);
        out.clear();
        let ack = Wire::Zab(Message::Link {
            conn: 8,
            seq: 1,
            packet: Packet::AckEpoch {
                current_epoch: 0,
                last_zxid: 0x1_0000_0002,
            },
        });
        assert!(translator.outbound(3, &ack, &mut out));
        let ackepoch = &sent(&out)[0];
        assert_eq!(
            (ackepoch.kind, ackepoch.zxid),
            (kind::ACKEPOCH, 0x1_0000_0002)
        );
        assert_eq!(ackepoch.data.as_deref(), Some(&0i32.to_be_bytes()[..]));
        out.clear();
        translator.inbound(
            1,
            QuorumPacket::new(kind::DIFF, 0x1_0000_0002, None),
            None,
            &mut out,
        );
        translator.inbound(
            1,
            QuorumPacket::new(kind::NEWLEADER, 0x1_0000_0000, None),
            None,
            &mut out,
        );
        translator.inbound(
            1,
            QuorumPacket::new(kind::UPTODATE, -1, None),
            None,
            &mut out,
        );
        assert_eq!(
            link_packets(&out),
            vec![
                Packet::Diff {
                    zxid: 0x1_0000_0002
                },
                Packet::NewLeader {
                    epoch: 1,
                    zxid: 0x1_0000_0002
                },
                Packet::Commit {
                    zxid: 0x1_0000_0002
                },
                Packet::UpToDate {
                    zxid: 0x1_0000_0002
                },
            ]
        );
        let seqs: Vec<u64> = out
            .iter()
            .filter_map(|effect| match effect {
                Effect::Deliver(_, Wire::Zab(Message::Link { seq, conn, .. })) => {
                    assert_eq!(*conn, 8);
                    Some(*seq)
                }
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        // UPTODATE is acknowledged with the epoch's zxid, as Learner.syncWithLeader does.
        assert!(sent(&out)
            .iter()
            .any(|p| p.kind == kind::ACK && p.zxid == 0x1_0000_0000));
        // A leader's PING is answered at once with the touches and their timeouts.
        out.clear();
        translator.outbound(
            3,
            &Wire::Touch {
                sessions: vec![0x55],
            },
            &mut out,
        );
        translator.inbound(
            1,
            QuorumPacket::new(kind::PING, 0x1_0000_0002, None),
            None,
            &mut out,
        );
        let ping = &sent(&out)[0];
        assert_eq!(ping.kind, kind::PING);
        assert_eq!(
            super::super::wire::decode_touches(ping.data.as_deref().unwrap()).unwrap(),
            vec![(0x55, 40_000)]
        );
    }

    /// A ZooKeeper PROPOSAL (or INFORM) of a delete at `zxid`.
    fn proposal(kind: i32, zxid: Zxid) -> QuorumPacket {
        use crate::zkformat::txn::{encode_entry, TxnHeader, ZkEntry, ZkTxn};
        let data = encode_entry(&ZkEntry {
            header: TxnHeader {
                client_id: 0x55,
                cxid: 1,
                zxid,
                time_ms: 0,
                op: opcode::DELETE,
            },
            txn: ZkTxn::Delete {
                path: format!("/{zxid:x}"),
            },
            digest: None,
        });
        QuorumPacket::new(kind, zxid, Some(data))
    }

    /// A ZooKeeper PROPOSAL (or INFORM) of a delete at `zxid` with its TxnDigest.
    fn proposal_with_digest(kind: i32, zxid: Zxid, tree_digest: i64) -> QuorumPacket {
        use crate::zkformat::txn::{decode_entry, encode_entry, TxnDigest};
        let mut packet = proposal(kind, zxid);
        let mut entry = decode_entry(packet.data.as_deref().unwrap()).unwrap();
        entry.digest = Some(TxnDigest {
            version: 2,
            tree_digest,
        });
        packet.data = Some(encode_entry(&entry));
        packet
    }

    /// What the translator delivered, digests and ZAB packets, as (what, zxid) in order.
    fn delivered(effects: &[Effect]) -> Vec<(&'static str, Zxid)> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Deliver(_, Wire::TxnDigest { zxid, digest, .. }) => {
                    assert_eq!(*digest, *zxid * 10);
                    Some(("digest", *zxid))
                }
                Effect::Deliver(_, Wire::Zab(Message::Link { packet, .. })) => match packet {
                    Packet::Proposal(record) => Some(("proposal", record.zxid)),
                    Packet::NewLeader { .. } => Some(("newleader", 0)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// A PROPOSAL's TxnDigest goes to the pipeline as `Wire::TxnDigest`, ahead of the
    /// proposal. In a SNAP sync, Learner.syncWithLeader applies the txns committed before
    /// NEWLEADER without their digest (they replay over a fuzzy snapshot): their digests are
    /// dropped, and those of the proposals not committed by NEWLEADER are handed on with it.
    #[test]
    fn proposal_digests_are_delivered_ahead_and_a_snap_syncs_committed_ones_are_not() {
        let mut translator = Translator::new(3, false, Vec::new(), 0, 40_000);
        let mut out = Vec::new();
        let info = Wire::Zab(Message::Link {
            conn: 9,
            seq: 0,
            packet: Packet::FollowerInfo {
                accepted_epoch: 1,
                observer: false,
            },
        });
        assert!(translator.outbound(1, &info, &mut out));
        translator.inbound(
            1,
            QuorumPacket::new(kind::LEADERINFO, 0x2_0000_0000, Some(encode_int(0x10000))),
            None,
            &mut out,
        );
        let ack = Wire::Zab(Message::Link {
            conn: 9,
            seq: 1,
            packet: Packet::AckEpoch {
                current_epoch: 1,
                last_zxid: 0,
            },
        });
        assert!(translator.outbound(1, &ack, &mut out));
        out.clear();
        translator.inbound(
            1,
            QuorumPacket::new(kind::SNAP, 0x1_0000_0004, None),
            Some(Vec::new()),
            &mut out,
        );
        for zxid in [0x1_0000_0005, 0x1_0000_0006] {
            translator.inbound(
                1,
                proposal_with_digest(kind::PROPOSAL, zxid, zxid * 10),
                None,
                &mut out,
            );
        }
        translator.inbound(
            1,
            QuorumPacket::new(kind::COMMIT, 0x1_0000_0005, None),
            None,
            &mut out,
        );
        translator.inbound(
            1,
            QuorumPacket::new(kind::NEWLEADER, 0x2_0000_0000, None),
            None,
            &mut out,
        );
        translator.inbound(
            1,
            QuorumPacket::new(kind::UPTODATE, -1, None),
            None,
            &mut out,
        );
        translator.inbound(
            1,
            proposal_with_digest(kind::PROPOSAL, 0x2_0000_0001, 0x2_0000_0001 * 10),
            None,
            &mut out,
        );
        assert_eq!(
            delivered(&out),
            vec![
                ("proposal", 0x1_0000_0005),
                ("proposal", 0x1_0000_0006),
                ("digest", 0x1_0000_0006),
                ("newleader", 0),
                ("digest", 0x2_0000_0001),
                ("proposal", 0x2_0000_0001),
            ]
        );
    }

    /// Learner.registerWithLeader and syncWithLeader as a follower: FOLLOWERINFO with the
    /// accepted epoch, ACKEPOCH -1 for an epoch accepted before, each ZAB ACK as an ACK of its
    /// zxid (one per proposal), and ZOOKEEPER-4925's gap check on the sync's proposals.
    #[test]
    fn a_follower_registers_acks_each_proposal_and_refuses_a_gap_in_the_sync() {
        let mut translator = Translator::new(3, false, Vec::new(), 0, 40_000);
        let mut out = Vec::new();
        let info = Wire::Zab(Message::Link {
            conn: 9,
            seq: 0,
            packet: Packet::FollowerInfo {
                accepted_epoch: 2,
                observer: false,
            },
        });
        assert!(translator.outbound(1, &info, &mut out));
        let first = &sent(&out)[0];
        assert_eq!(
            (first.kind, first.zxid),
            (kind::FOLLOWERINFO, 0x2_0000_0000)
        );
        let learner = LearnerInfo::decode(first.data.as_deref().unwrap()).unwrap();
        assert_eq!(
            (learner.sid, learner.protocol_version),
            (3, LEARNER_PROTOCOL_VERSION)
        );
        // LEADERINFO of the epoch already accepted: ACKEPOCH says -1.
        translator.inbound(
            1,
            QuorumPacket::new(kind::LEADERINFO, 0x2_0000_0000, Some(encode_int(0x10000))),
            None,
            &mut out,
        );
        out.clear();
        let ack = Wire::Zab(Message::Link {
            conn: 9,
            seq: 1,
            packet: Packet::AckEpoch {
                current_epoch: 1,
                last_zxid: 0x1_0000_0004,
            },
        });
        assert!(translator.outbound(1, &ack, &mut out));
        let ackepoch = &sent(&out)[0];
        assert_eq!(
            (ackepoch.kind, ackepoch.zxid),
            (kind::ACKEPOCH, 0x1_0000_0004)
        );
        assert_eq!(ackepoch.data.as_deref(), Some(&(-1i32).to_be_bytes()[..]));
        translator.inbound(
            1,
            QuorumPacket::new(kind::DIFF, 0x1_0000_0006, None),
            None,
            &mut out,
        );
        translator.inbound(1, proposal(kind::PROPOSAL, 0x1_0000_0005), None, &mut out);
        translator.inbound(1, proposal(kind::PROPOSAL, 0x1_0000_0006), None, &mut out);
        // A proposal of a new epoch may follow without a gap check.
        translator.inbound(1, proposal(kind::PROPOSAL, 0x2_0000_0001), None, &mut out);
        assert_eq!(translator.leader(), Some(1));
        out.clear();
        for zxid in [0x1_0000_0005, 0x1_0000_0006] {
            let ack = Wire::Zab(Message::Link {
                conn: 9,
                seq: 2,
                packet: Packet::Ack { zxid },
            });
            assert!(translator.outbound(1, &ack, &mut out));
        }
        let acks: Vec<(i32, Zxid)> = sent(&out).iter().map(|p| (p.kind, p.zxid)).collect();
        assert_eq!(
            acks,
            vec![(kind::ACK, 0x1_0000_0005), (kind::ACK, 0x1_0000_0006)]
        );
        // A gap within an epoch during the sync closes the link.
        out.clear();
        translator.inbound(1, proposal(kind::PROPOSAL, 0x2_0000_0003), None, &mut out);
        assert!(out.contains(&Effect::Closed(1)), "{out:?}");
        assert_eq!(translator.leader(), None);
    }

    #[test]
    fn a_packet_out_of_protocol_closes_the_link() {
        let mut translator = Translator::new(4, true, Vec::new(), 0, 40_000);
        let mut out = Vec::new();
        register(&mut translator, &mut out);
        out.clear();
        translator.inbound(
            1,
            QuorumPacket::new(kind::UPTODATE, -1, None),
            None,
            &mut out,
        );
        assert_eq!(out, vec![Effect::Close { conn: 1 }, Effect::Closed(3)]);
        assert_eq!(translator.leader(), None);
    }
}
