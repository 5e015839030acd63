//! [pure] ZAB, ZooKeeper's atomic broadcast, as a sans-IO state machine.
//!
//! A [`Peer`] owns no socket, file, clock, thread or random source. The shell (`quorum/`, and
//! `sim/` in the tests) feeds it [`Input`]s with the current time and performs the
//! [`Action`]s it returns, **in order**. The same code therefore runs against real links and a
//! real log, and inside the deterministic simulator.
//!
//! # Phases (Junqueira, Reed, Serafini: "Zab: High-performance broadcast for primary-backup
//! systems", DSN 2011, §IV; ZooKeeper's `FastLeaderElection`, `Leader`, `Learner`)
//!
//! 0. **Election** (§IV.A "Phase 0", ZooKeeper's fast leader election). A looking peer votes
//!    for `(current epoch, last zxid, server id)`, ordered lexicographically, so ties in history
//!    are broken by the higher id. Notifications carry an election round; a higher round
//!    restarts the tally, a better vote in the same round is adopted and re-broadcast. When a
//!    quorum of participants in this round agree with our vote and no better vote arrives for
//!    `finalize_wait_ms`, the vote is decided. A peer that finds a quorum already following or
//!    leading (their notifications say so) joins that leader directly; a candidate that a
//!    quorum in its own round follows takes those notifications as votes for it and leads
//!    (ZooKeeper's checkLeader: "if everyone else thinks I'm the leader, I must be the
//!    leader"). Observers never vote: they ask the participants and join the leader a quorum
//!    of them follows.
//! 1. **Discovery** (§IV.B phase 1). Each learner sends `FollowerInfo` with its accepted epoch.
//!    Once a quorum of participants (the leader included) has, the prospective leader picks
//!    `e = max(accepted epochs) + 1` and sends `LeaderInfo(e)` (NEWEPOCH). A follower accepts
//!    `e` if it is above its accepted epoch (or equal and from the same leader it accepted it
//!    from — `accepted_leader` is persisted, so no follower acknowledges one epoch for two
//!    leaders), persists it and replies `AckEpoch(current epoch, last zxid)`. With a quorum of
//!    acks the leader checks no acker has a more recent history than its own (else it steps
//!    down), persists `current epoch = e` and is `Leading(e)`.
//! 2. **Synchronisation** (§IV.B phase 2; ZooKeeper's `LearnerHandler.syncFollower`). Per
//!    learner the leader sends `Diff` (the learner's last zxid is in the leader's in-memory
//!    history: send what follows), `Trunc(z)` (the learner has records the leader does not:
//!    cut back to the last common zxid, then send what follows) or `Snap` (the learner is
//!    behind the in-memory window: an opaque snapshot produced by the shell, then what
//!    follows), then `NewLeader(e, last zxid)`. A learner persists `current epoch = e` and
//!    acknowledges once everything it received is durable. The leader starts broadcasting —
//!    commits its initial history and sends `UpToDate` — only when a quorum (itself counted
//!    once its own log is durable through the initial history) has acknowledged `NewLeader`.
//! 3. **Broadcast** (§IV.B phase 3). `Proposal` → learners log it and `Ack` cumulatively when
//!    durable; the leader's own durability is its ack. The leader commits the highest zxid
//!    acknowledged by a quorum (`Commit`, cumulative), so commits are strictly in zxid order
//!    and many proposals are in flight (bounded by `outstanding_proposals_max`). Observers
//!    receive `Inform` (the committed record) and never count toward a quorum. When the
//!    32-bit counter of the zxid would pass `counter_max` the leader steps down so that a new
//!    epoch starts (ZooKeeper's `XidRolloverException`).
//!
//! Liveness: the leader pings every tick; a learner that hears nothing from its leader for
//! `sync_limit_ticks` goes back to election, and a leader that has not heard from a quorum of
//! synced followers within `sync_limit_ticks` steps down. Discovery and synchronisation must
//! finish within `init_limit_ticks`.
//!
//! # Links
//!
//! Zab assumes FIFO, reliable links between leader and learners (§III). Election messages may
//! be lost, duplicated or reordered freely. Everything after election travels in
//! [`Message::Link`] with a connection id (chosen by the learner, fresh per attempt) and a
//! per-direction sequence number: a duplicate is ignored, a gap closes the connection (the
//! learner returns to election; the leader forgets the learner), exactly as a TCP reset does
//! in ZooKeeper. So a lossy or reordering network costs liveness, never safety.
//!
//! # Invariants (checked by `sim/` after every step)
//!
//! - At most one leader per epoch (§V, "Primary uniqueness").
//! - Committed prefixes agree: no two servers commit different records at one zxid
//!   (§V, "Agreement", "Total order").
//! - A record committed by a leader is in the history of every later leader (§V,
//!   "Integrity" and "Primary integrity": the new leader's history contains everything
//!   committed before).
//! - Primary order: a leader's records commit in its proposal order, and no record of an
//!   older epoch commits after one of a newer epoch (§V "Local primary order", "Global
//!   primary order"); per server committed zxids strictly increase.
//!
//! # What the shell persists
//!
//! `Append` may complete asynchronously: the shell reports `Input::Durable(z)` when its log is
//! durable through `z`, and may batch fsyncs. `SaveEpochs`, `TruncateLog` and
//! `InstallSnapshot` must be durable before the shell performs the next action (ZooKeeper
//! writes `acceptedEpoch`/`currentEpoch` synchronously before replying, and truncates the
//! log file in place).

mod peer;
#[cfg(test)]
mod tests;

pub use peer::{Peer, NO_VOTE_ZXID};

use crate::tree::Txn;
use crate::txnlog::format::LogRecord;
use std::collections::BTreeSet;

pub type ServerId = u64;
/// `epoch << 32 | counter`, as in ZooKeeper (`ZxidUtils`), and as the log stores it (i64).
pub type Zxid = i64;
pub type Epoch = u32;

/// `Packet::AckEpoch::current_epoch` of a learner that had accepted the leader's epoch before
/// (ZooKeeper's ACKEPOCH with epoch -1): not compared and not counted for the epoch's quorum.
/// Only ZooKeeper's wire produces it (`quorum::zookeeper`); this core's learners never do.
pub const EPOCH_ACCEPTED_BEFORE: Epoch = Epoch::MAX;

pub fn make_zxid(epoch: Epoch, counter: u32) -> Zxid {
    ((u64::from(epoch) << 32) | u64::from(counter)) as Zxid
}

pub fn epoch_of(zxid: Zxid) -> Epoch {
    ((zxid as u64) >> 32) as Epoch
}

pub fn counter_of(zxid: Zxid) -> u32 {
    (zxid as u64 & 0xffff_ffff) as u32
}

/// The membership a server starts with, and timing. ZooKeeper's `tickTime`, `initLimit`,
/// `syncLimit`. `participants`, `observers` and `version` are the configuration in force at
/// start (the dynamic file's, or the static `server.N` lines' with version 0); committed
/// reconfigs replace it at run time (see [`Membership`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: ServerId,
    pub participants: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
    /// The zxid of the reconfig that made this membership (0: static lines). A reconfig
    /// record in the log at or below it is already in force; one above it is not confirmed
    /// (it was logged, its commit is not known) and counts as pending.
    pub version: Zxid,
    pub tick_ms: u64,
    pub init_limit_ticks: u64,
    pub sync_limit_ticks: u64,
    /// How long a looking peer waits, with a quorum for its vote, for a better vote
    /// (ZooKeeper's `finalizeWait`, 200 ms).
    pub finalize_wait_ms: u64,
    /// Committed records kept in memory for DIFF (ZooKeeper's `commitLogCount`, 500); a
    /// learner further behind gets a snapshot.
    pub history_limit: usize,
    /// Proposals the leader keeps in flight before it rejects writes as busy.
    pub outstanding_proposals_max: usize,
    /// Highest zxid counter the leader assigns before stepping down for a new epoch.
    /// `u32::MAX - 1` in production (ZooKeeper steps down at 0xffffffff); small in tests.
    pub counter_max: u32,
    /// Whether this server may be elected leader. False for a participant that can follow
    /// but has no leader side (`quorum.protocol=zookeeper`: a ringkeeper voting follower of
    /// an Apache ZooKeeper ensemble). Such a peer never proposes itself in the election: it
    /// starts with no vote of its own and adopts the best vote it receives for another
    /// participant whose history is at least as recent as its own (it abstains rather than
    /// vote for a candidate behind its log, which could miss records it acknowledged).
    pub may_lead: bool,
    /// A follower sends one ACK per proposal, each once it is durable, in zxid order, rather
    /// than one cumulative ACK per fsync: ZooKeeper's Leader.processAck counts an ACK for its
    /// own zxid only and commits in order, so a cumulative ACK would leave the proposals
    /// before it without this server's vote. (This core's leader takes either.)
    pub ack_each_proposal: bool,
    /// The ensemble speaks Apache ZooKeeper's Zab 1.0 (`quorum.protocol=zookeeper`), which
    /// differs from this core's own protocol in ways both sides follow:
    ///
    /// - a learner accepts an epoch equal to its accepted one from any leader
    ///   (Learner.registerWithLeader answers it with ACKEPOCH epoch -1, which a leader
    ///   neither compares nor counts: [`EPOCH_ACCEPTED_BEFORE`]);
    /// - after UPTODATE a learner's election vote carries the new epoch, and so does the
    ///   leader's once established (ZOOKEEPER-1732, QuorumPeer.updateElectionVote); votes of
    ///   servers out of election agree when they name the same leader and epoch (Vote.equals
    ///   outside LOOKING).
    pub zookeeper_leader: bool,
}

impl Config {
    pub fn new(id: ServerId, participants: &[ServerId], observers: &[ServerId]) -> Self {
        Config {
            id,
            participants: participants.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
            version: 0,
            tick_ms: 2000,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_wait_ms: 200,
            history_limit: 500,
            outstanding_proposals_max: 1000,
            counter_max: u32::MAX - 1,
            may_lead: true,
            ack_each_proposal: false,
            zookeeper_leader: false,
        }
    }

    pub fn quorum(&self) -> usize {
        self.participants.len() / 2 + 1
    }

    pub fn is_observer(&self) -> bool {
        self.observers.contains(&self.id)
    }

    /// Every server except this one.
    pub fn others(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.participants
            .iter()
            .chain(self.observers.iter())
            .copied()
            .filter(move |&id| id != self.id)
    }
}

/// Who votes and who observes in one configuration, and the zxid of the reconfig that made
/// it (ZooKeeper's QuorumVerifier, majority form QuorumMaj).
///
/// # Reconfiguration (Shraer, Reed, Malkhi, Junqueira: "Dynamic Reconfiguration of
/// Primary/Backup Clusters", USENIX ATC 2012; ZooKeeper's Leader.propose and
/// Proposal.addQuorumVerifier, QuorumPeer.processReconfig)
///
/// A reconfig is a record in the log ([`Txn::Reconfig`], whose data is the new
/// `/zookeeper/config` text). From the moment a server logs it until it commits, the record
/// is *pending*, and every quorum this server counts (votes in an election, the epoch
/// acknowledgements, NEWLEADER acknowledgements, acks of every proposal from the reconfig on,
/// the liveness check of a leader) must be a quorum of the configuration in force **and** of
/// each pending one — with one exception: a server deciding to *follow* another no longer
/// counts a pending reconfig from an epoch older than the candidate's (one left over from an
/// epoch that did not win; the leader still counts every quorum it needs itself, see
/// `follow_quorum` in `peer`). When the reconfig commits, its configuration is in force on that server
/// (every member activates it at the same zxid: ZooKeeper's COMMITANDACTIVATE and
/// INFORMANDACTIVATE). Then:
///
/// - a learner whose role changed (observer ↔ participant) rejoins in its new role, and one
///   whose leader is no longer a participant looks for a new leader;
/// - a server that is no longer a member stops: it looks for no leader, votes for nobody and
///   serves nobody until it is restarted with a configuration that lists it;
/// - a leader that is not a participant of the new configuration steps down after the
///   commit, and the new configuration elects (ZooKeeper designates a successor instead);
/// - a leader forgets the learners that were removed.
///
/// A server that is not a member of the leader's configuration yet (a joiner, started with a
/// configuration listing the members and itself) finds the leader through the members'
/// answers to its election notifications and connects to it: as an observer, or as a
/// non-voting follower whose acks count only for configurations that list it. Once it has
/// learned the ensemble's configuration (the leader's `Configs`, a member's `Config`), that
/// one, not the one it was started with, is what it counts as a candidate and as a leader: a
/// joiner that a pending reconfig makes a candidate leads only with a quorum of the real
/// configuration (and of the pending one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub version: Zxid,
    pub participants: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
}

impl Membership {
    pub fn of_config(config: &Config) -> Membership {
        Membership {
            version: config.version,
            participants: config.participants.clone(),
            observers: config.observers.clone(),
        }
    }

    /// Whether `ids` holds a majority of the participants (QuorumMaj.containsQuorum).
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let present = ids
            .into_iter()
            .filter(|id| self.participants.contains(id))
            .count();
        present > self.participants.len() / 2
    }

    pub fn is_member(&self, id: ServerId) -> bool {
        self.participants.contains(&id) || self.observers.contains(&id)
    }

    /// The membership a reconfig record asks for: the `server.N=...` lines of its data (as
    /// `/zookeeper/config` shows them: `host:port:port:participant|observer[;client]`), with
    /// the record's zxid as version. None for any other record, or data without a member.
    pub fn of_record(record: &LogRecord) -> Option<Membership> {
        let Txn::Reconfig { data } = &record.txn else {
            return None;
        };
        let text = std::str::from_utf8(data).ok()?;
        let mut membership = Membership {
            version: record.zxid,
            ..Membership::default()
        };
        for line in text.lines() {
            let Some((key, spec)) = line.trim().split_once('=') else {
                continue;
            };
            let Some(id) = key.trim().strip_prefix("server.") else {
                continue;
            };
            let Ok(id) = id.trim().parse::<ServerId>() else {
                continue;
            };
            let quorum_part = spec.split(';').next().unwrap_or("").trim();
            if quorum_part.ends_with(":observer") {
                membership.observers.insert(id);
            } else {
                membership.participants.insert(id);
            }
        }
        if membership.participants.is_empty() {
            return None;
        }
        Some(membership)
    }
}

/// The epochs a server persists (ZooKeeper's `acceptedEpoch` and `currentEpoch` files, plus
/// the leader the accepted epoch came from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epochs {
    pub accepted_epoch: Epoch,
    pub accepted_leader: Option<ServerId>,
    pub current_epoch: Epoch,
}

/// What a server recovered from its disk at (re)start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableState {
    pub epochs: Epochs,
    /// The zxid of the newest record (or snapshot) not in `recent`; 0 for an empty history.
    pub base_zxid: Zxid,
    /// The newest durable log records, in zxid order; at most `history_limit` are kept.
    pub recent: Vec<LogRecord>,
    /// The configurations of every reconfig record in the durable log after the snapshot,
    /// `recent` or not: those above the configuration the server starts with are pending
    /// (a reconfig may fall out of the window before it commits).
    pub reconfigs: Vec<Membership>,
}

impl DurableState {
    /// What ZAB starts from ([`Input::Restart`]): the epochs, and the newest `history_limit`
    /// of the records recovered after the snapshot at `snapshot_zxid` (ZooKeeper's
    /// committedLog, for DIFF). `base_zxid` is the zxid just before the first of them: the
    /// previous record's, or the snapshot's when every record after the snapshot is kept.
    pub fn from_history(
        records: &[LogRecord],
        snapshot_zxid: Zxid,
        epochs: Epochs,
        history_limit: usize,
    ) -> DurableState {
        let first_kept = records.len().saturating_sub(history_limit);
        let base_zxid = match first_kept.checked_sub(1) {
            Some(previous) => records
                .get(previous)
                .map_or(snapshot_zxid, |record| record.zxid),
            None => snapshot_zxid,
        };
        DurableState {
            epochs,
            base_zxid,
            recent: records[first_kept..].to_vec(),
            reconfigs: records.iter().filter_map(Membership::of_record).collect(),
        }
    }
}

#[cfg(test)]
mod durable_state_tests {
    use super::*;
    use crate::tree::Txn;

    fn records(zxids: &[i64]) -> Vec<LogRecord> {
        zxids
            .iter()
            .map(|zxid| LogRecord {
                zxid: *zxid,
                time_ms: 0,
                txn: Txn::Check { path: "/".into() },
            })
            .collect()
    }

    #[test]
    fn durable_state_keeps_the_newest_records_and_the_zxid_before_them() {
        let epochs = Epochs {
            accepted_epoch: 2,
            accepted_leader: Some(1),
            current_epoch: 2,
        };
        let state = DurableState::from_history(&records(&[11, 12, 13, 14]), 10, epochs, 2);
        assert_eq!(state.epochs, epochs);
        assert_eq!(state.base_zxid, 12);
        assert_eq!(
            state.recent.iter().map(|r| r.zxid).collect::<Vec<_>>(),
            vec![13, 14]
        );
        let all = DurableState::from_history(&records(&[11, 12]), 10, epochs, 5);
        assert_eq!((all.base_zxid, all.recent.len()), (10, 2));
        let none = DurableState::from_history(&records(&[]), 10, epochs, 5);
        assert_eq!((none.base_zxid, none.recent.len()), (10, 0));
        let zero = DurableState::from_history(&records(&[1, 2]), 0, epochs, 0);
        assert_eq!((zero.base_zxid, zero.recent.len()), (2, 0));
    }
}

/// A vote: who should lead, and the history that candidate has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// The candidate's current epoch (ZooKeeper's `peerEpoch`).
    pub epoch: Epoch,
}

impl Vote {
    /// ZooKeeper's `FastLeaderElection.totalOrderPredicate`: epoch, then zxid, then id.
    pub fn order_key(&self) -> (Epoch, Zxid, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    pub vote: Vote,
    /// Election round (ZooKeeper's `electionEpoch` / `logicalclock`).
    pub round: u64,
    pub state: PeerState,
    /// The version of the sender's configuration in force: a member with a newer one answers
    /// with it ([`Message::Config`]), as ZooKeeper's notifications carry the sender's
    /// QuorumVerifier and a receiver adopts a newer one.
    pub config_version: Zxid,
}

/// Everything one server sends another.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Notification(Notification),
    /// The configuration in force on the sender (committed), to a server whose notification
    /// showed an older one. Adopted if it lists the receiver.
    Config(Membership),
    /// A packet on a leader–learner connection (see "Links" in the module doc).
    Link {
        conn: u64,
        seq: u64,
        packet: Packet,
    },
}

/// ZooKeeper's quorum packets (`Leader.FOLLOWERINFO` …), with the data each carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Learner → leader, first packet of a connection (FOLLOWERINFO / OBSERVERINFO).
    FollowerInfo {
        accepted_epoch: Epoch,
        observer: bool,
    },
    /// Leader → learner: the new epoch (LEADERINFO, Zab's NEWEPOCH).
    LeaderInfo {
        epoch: Epoch,
    },
    /// Learner → leader (ACKEPOCH).
    AckEpoch {
        current_epoch: Epoch,
        last_zxid: Zxid,
    },
    /// Leader → learner: your history is a prefix of mine; records after `zxid` follow.
    Diff {
        zxid: Zxid,
    },
    /// Leader → learner: drop every record above `zxid`; records after it follow.
    Trunc {
        zxid: Zxid,
    },
    /// Leader → learner: replace your state with this snapshot through `zxid`. `payload` is
    /// opaque to ZAB: the shell fills it when it performs [`Action::SendSnapshot`].
    Snap {
        zxid: Zxid,
        payload: Vec<u8>,
    },
    Proposal(LogRecord),
    /// Leader → learner, before NewLeader, once a reconfig has ever been logged: the
    /// configuration in force on the leader and the pending ones (reconfigs in the history
    /// just sent, not committed). A learner synced by SNAP has not seen the reconfig records
    /// the snapshot covers; this tells it. Sent ahead of a `Snap` too, so that a learner
    /// whose connection breaks between the two still knows what the snapshot holds pending.
    Configs {
        active: Membership,
        pending: Vec<Membership>,
    },
    /// Leader → learner: your history now equals mine through `zxid`; adopt `epoch`.
    NewLeader {
        epoch: Epoch,
        zxid: Zxid,
    },
    /// Learner → leader: durable through `zxid`, current epoch saved (ACK of NEWLEADER).
    AckNewLeader {
        zxid: Zxid,
    },
    /// Leader → learner: broadcast has started; committed through `zxid`.
    UpToDate {
        zxid: Zxid,
    },
    /// Follower → leader: durable through `zxid` (cumulative).
    Ack {
        zxid: Zxid,
    },
    /// Leader → follower: committed through `zxid` (cumulative).
    Commit {
        zxid: Zxid,
    },
    /// Leader → observer: this record is committed.
    Inform(LogRecord),
    /// Both ways: liveness.
    Ping,
}

impl Message {
    /// The snapshot message an [`Action::SendSnapshot`] asks the shell to send.
    pub fn snapshot(conn: u64, seq: u64, zxid: Zxid, payload: Vec<u8>) -> Message {
        Message::Link {
            conn,
            seq,
            packet: Packet::Snap { zxid, payload },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Looking,
    Following {
        leader: ServerId,
        epoch: Epoch,
    },
    /// Reported once a quorum has acknowledged the new epoch.
    Leading {
        epoch: Epoch,
    },
    Observing {
        leader: ServerId,
        epoch: Epoch,
    },
}

/// A leader's view of its learners, for `mntr` (ZooKeeper's `zk_learners`, `zk_synced_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderFigures {
    /// Learners connected to the leader.
    pub learners: usize,
    /// Followers that acknowledged NEWLEADER (they count toward the quorum).
    pub synced_followers: usize,
    /// Observers that acknowledged NEWLEADER.
    pub synced_observers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Forward the request to `leader` (None: no leader known yet; retry later).
    NotLeader { leader: Option<ServerId> },
    /// The leader is still synchronising or has too many proposals in flight.
    Busy,
    /// The zxid counter is exhausted; the leader steps down and a new epoch starts.
    ZxidRollover,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Message {
        from: ServerId,
        message: Message,
    },
    /// Call every `tick_ms` (more often is harmless).
    Tick,
    /// The connection from this server closed (the shell's transport saw EOF or an error):
    /// a learner whose leader it is goes back to election at once, and a leader forgets the
    /// learner, as ZooKeeper's learner and LearnerHandler do when their socket fails. Safety
    /// never depends on it; it only shortens failure detection below `sync_limit_ticks`.
    Disconnected(ServerId),
    /// Nothing happened but time passed: lets the timers that are finer than a tick fire (the
    /// election's `finalize_wait_ms`). The shell sends it between ticks.
    Wake,
    /// The leader's link `conn` carried traffic outside ZAB: a chunk of the snapshot it
    /// streams before the `Snap` packet (`Wire::SnapChunk`). While that stream lasts the
    /// leader's own packets (pings included) queue behind it, so a learner counts the chunks
    /// as hearing from its leader; otherwise a snapshot taking longer than `sync_limit_ticks`
    /// to stream would send it back to election. The whole sync is still bounded by
    /// `init_limit_ticks`, as ZooKeeper's Learner bounds it by initLimit.
    Heard {
        from: ServerId,
        conn: u64,
    },
    /// The local log is durable through this zxid.
    Durable(Zxid),
    /// A client write, already prepared into a transaction (leader only).
    Write {
        txn: Txn,
        time_ms: i64,
    },
    /// The server (re)started with what its disk holds.
    Restart(DurableState),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send {
        to: ServerId,
        message: Message,
    },
    /// Send `to` the message [`Message::snapshot`]`(conn, seq, zxid, payload)` where payload
    /// is a snapshot of this server's history through `zxid`.
    SendSnapshot {
        to: ServerId,
        conn: u64,
        seq: u64,
        zxid: Zxid,
    },
    /// Append to the log; report durability with [`Input::Durable`].
    Append(LogRecord),
    /// Drop every log record above `zxid` (durably, before the next action).
    TruncateLog {
        zxid: Zxid,
    },
    /// Replace state and log with this snapshot through `zxid` (durably, before the next
    /// action).
    InstallSnapshot {
        zxid: Zxid,
        payload: Vec<u8>,
    },
    /// Persist the epochs (durably, before the next action).
    SaveEpochs(Epochs),
    /// Every record through `zxid` is committed: apply it, answer its client.
    CommitUpTo(Zxid),
    RoleChanged(Role),
    WriteRejected(RejectReason),
}
