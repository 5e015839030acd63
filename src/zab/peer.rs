//! The ZAB state machine of one server. See the module doc of `zab` for the protocol.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{
    counter_of, epoch_of, make_zxid, Action, Config, DurableState, Epoch, Epochs, Input,
    LeaderFigures, Membership, Message, Notification, Packet, PeerState, RejectReason, Role,
    ServerId, Vote, Zxid, EPOCH_ACCEPTED_BEFORE,
};
use crate::txnlog::format::LogRecord;

/// Proposals a learner of a ZooKeeper leader holds unacknowledged (they wait for the log's
/// durability); beyond it the learner drops the connection rather than grow without bound.
const UNACKED_PROPOSALS_MAX: usize = 1 << 20;

/// The zxid of a never-leader's vote while it has no candidate: below every real zxid, and
/// not -1, which FastLeaderElection ignores altogether ("Ignoring notification from member
/// with -1 zxid"), round included: a never-leader in a later round than a looking ZooKeeper
/// server would then never hear its vote (that server answers a lower round only).
pub const NO_VOTE_ZXID: Zxid = -2;

/// Ticks a never-leader (`Config::may_lead = false`) stays in a round without a candidate
/// before it starts the next one (see `tick`).
const NO_CANDIDATE_ROUND_TICKS: u64 = 2;

/// The local history as ZAB sees it: a bounded window of the newest records, plus the
/// durable and committed watermarks.
#[derive(Debug)]
struct LocalLog {
    records: VecDeque<LogRecord>,
    /// The zxid just before `records` (a trimmed record, a snapshot, or 0).
    base_zxid: Zxid,
    durable_zxid: Zxid,
    committed_zxid: Zxid,
    limit: usize,
}

impl LocalLog {
    fn last_zxid(&self) -> Zxid {
        self.records.back().map_or(self.base_zxid, |r| r.zxid)
    }

    fn append(&mut self, record: LogRecord, out: &mut Vec<Action>) {
        assert!(record.zxid > self.last_zxid(), "log zxids must increase");
        self.records.push_back(record.clone());
        out.push(Action::Append(record));
        self.trim();
    }

    fn truncate(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        while self.records.back().is_some_and(|r| r.zxid > zxid) {
            self.records.pop_back();
        }
        if self.records.is_empty() && self.base_zxid > zxid {
            // Below the window: the shell's log knows the exact end; ZAB only needs an upper
            // bound on it, and a learner cut below its window is about to be sent records.
            self.base_zxid = zxid;
        }
        self.durable_zxid = self.durable_zxid.min(zxid);
        self.committed_zxid = self.committed_zxid.min(zxid);
        out.push(Action::TruncateLog { zxid });
    }

    fn install(&mut self, zxid: Zxid, payload: Vec<u8>, out: &mut Vec<Action>) {
        self.records.clear();
        self.base_zxid = zxid;
        self.durable_zxid = zxid;
        self.committed_zxid = self.committed_zxid.min(zxid);
        out.push(Action::InstallSnapshot { zxid, payload });
    }

    /// Commit through `zxid`; false if that is beyond the history (a protocol violation).
    fn commit(&mut self, zxid: Zxid, out: &mut Vec<Action>) -> bool {
        if zxid > self.last_zxid() {
            return false;
        }
        if zxid > self.committed_zxid {
            self.committed_zxid = zxid;
            out.push(Action::CommitUpTo(zxid));
            self.trim();
        }
        true
    }

    fn durable(&mut self, zxid: Zxid) {
        self.durable_zxid = self.durable_zxid.max(zxid.min(self.last_zxid()));
    }

    /// Keep at most `limit` committed records; uncommitted ones always stay.
    fn trim(&mut self) {
        while self.records.len() > self.limit
            && self
                .records
                .front()
                .is_some_and(|r| r.zxid <= self.committed_zxid)
        {
            if let Some(front) = self.records.pop_front() {
                self.base_zxid = front.zxid;
            }
        }
    }

    /// Whether `zxid` is the end of a prefix of the in-memory history.
    fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.base_zxid || self.records.binary_search_by_key(&zxid, |r| r.zxid).is_ok()
    }

    /// The largest zxid ≤ `zxid` in the window (or the base), if `zxid` is not below it.
    fn floor(&self, zxid: Zxid) -> Option<Zxid> {
        if zxid < self.base_zxid {
            return None;
        }
        let below = self.records.partition_point(|r| r.zxid <= zxid);
        Some(if below == 0 {
            self.base_zxid
        } else {
            self.records[below - 1].zxid
        })
    }

    fn after(&self, zxid: Zxid) -> impl Iterator<Item = &LogRecord> {
        let start = self.records.partition_point(|r| r.zxid <= zxid);
        self.records.range(start..)
    }

    fn uncommitted(&self) -> usize {
        self.records.len()
            - self
                .records
                .partition_point(|r| r.zxid <= self.committed_zxid)
    }
}

#[derive(Debug)]
struct Election {
    /// Our vote; None for a peer that may not lead and has not found a candidate yet
    /// (`Config::may_lead`).
    proposal: Option<Vote>,
    /// Votes of looking participants in our round.
    received: BTreeMap<ServerId, Vote>,
    /// Notifications of participants that are following or leading.
    out_of_election: BTreeMap<ServerId, Notification>,
    decide_at_ms: Option<u64>,
    /// FollowerInfo that arrived before this peer decided: a learner that decided first
    /// (finalize waits end at slightly different times) must not wait a tick for its retry.
    /// Taken up if this peer ends up leading, dropped otherwise.
    early_infos: BTreeMap<ServerId, (u64, Packet)>,
    /// When this peer entered the current round.
    round_started_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// FollowerInfo sent, waiting for LeaderInfo.
    Connecting,
    /// AckEpoch sent; receiving the sync.
    Syncing,
    /// NewLeader received; acknowledge once durable through `zxid`.
    AwaitDurable { zxid: Zxid },
    /// NewLeader acknowledged; following the broadcast.
    Broadcast,
}

#[derive(Debug)]
struct Learner {
    /// Connected as an observer (OBSERVERINFO) rather than a follower: fixed per connection,
    /// so a role change by reconfig makes the learner rejoin.
    as_observer: bool,
    vote: Vote,
    round: u64,
    leader: ServerId,
    conn: u64,
    send_seq: u64,
    recv_next: u64,
    phase: LearnerPhase,
    epoch: Option<Epoch>,
    last_heard_ms: u64,
    started_ms: u64,
    acked_zxid: Zxid,
    /// The pending reconfigs of the leader's `Configs` that came ahead of its `Snap`: what
    /// the snapshot's history holds pending (see `sync_one`).
    snap_pending: Option<Vec<Membership>>,
    /// Diff, Trunc or Snap received on this connection.
    sync_begun: bool,
    /// With `Config::ack_each_proposal`: the proposals logged and not acknowledged yet, in
    /// zxid order (each gets its own ACK once durable). Bounded by
    /// [`UNACKED_PROPOSALS_MAX`].
    unacked: VecDeque<Zxid>,
    /// UPTODATE received: the leader is broadcasting and this learner may serve clients.
    up_to_date: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionPhase {
    /// FollowerInfo received; LeaderInfo not yet sent (epoch not chosen).
    Info,
    /// LeaderInfo sent.
    AwaitAckEpoch,
    /// AckEpoch received, sync waits for the epoch quorum.
    AckedEpoch { last_zxid: Zxid },
    /// Synced (or syncing): receives the broadcast. `acked` is set by AckNewLeader.
    Forwarding { acked: Option<Zxid> },
}

#[derive(Debug)]
struct Session {
    conn: u64,
    send_seq: u64,
    recv_next: u64,
    observer: bool,
    accepted_epoch: Epoch,
    last_heard_ms: u64,
    phase: SessionPhase,
    uptodate_sent: bool,
    /// False when the learner said it had accepted this epoch before
    /// ([`EPOCH_ACCEPTED_BEFORE`]): its ACKEPOCH is not counted for the epoch's quorum.
    epoch_ack_counts: bool,
}

#[derive(Debug)]
struct Leader {
    vote: Vote,
    round: u64,
    started_ms: u64,
    /// Chosen once a quorum sent FollowerInfo.
    epoch: Option<Epoch>,
    /// A quorum acknowledged the epoch; `current_epoch` is saved.
    epoch_acked: bool,
    initial_last_zxid: Zxid,
    established: bool,
    sessions: BTreeMap<ServerId, Session>,
}

#[derive(Debug)]
enum State {
    Looking(Election),
    Learning(Learner),
    Leading(Leader),
}

/// What a handler asks the peer to do next.
enum Next {
    Stay,
    Looking,
}

/// One server's ZAB state. Drive it with [`Peer::step`].
#[derive(Debug)]
pub struct Peer {
    config: Config,
    /// The configuration in force (see [`Membership`]).
    active: Membership,
    /// Reconfigs in the log above the commit point, ascending by zxid: until one commits,
    /// every quorum must also be a quorum of it.
    pending: Vec<Membership>,
    /// The configuration in force on the ensemble, newer than `active`, when it does not
    /// list this server: a joiner keeps the configuration it was started with (the members
    /// and itself) as `active` until a reconfig adds it, and learns the real one from a
    /// leader's `Configs` or a member's `Config`. It stands in for `active` in every quorum
    /// this server counts as a candidate and as a leader (see [`quorum_config`]): a joiner
    /// that a pending reconfig makes a candidate must not lead, nor commit, with a quorum of
    /// a configuration only it holds (ZooKeeper's joiner likewise takes the leader's
    /// configuration at NEWLEADER, in Learner.syncWithLeader, and stays a non-voting
    /// participant while it is not in it). Deciding to follow, and the version its
    /// notifications carry, still go by `active`: the leader it follows counts the quorums.
    outside: Option<Membership>,
    epochs: Epochs,
    log: LocalLog,
    round: u64,
    /// Connection ids this peer opens: `now_ms * 1024 + n`, increasing across restarts as
    /// long as the clock does (so the shell's clock must not start from 0 at each start: the
    /// pipeline's starts from the wall clock, `ZabClock` in pipeline/driver/ensemble.rs).
    next_conn: u64,
    role: Option<Role>,
    state: State,
}

impl Peer {
    /// A peer that has not started: the first input must be [`Input::Restart`].
    pub fn new(config: Config) -> Self {
        assert!(config.history_limit > 0 && config.outstanding_proposals_max > 0);
        let limit = config.history_limit;
        Peer {
            active: Membership::of_config(&config),
            pending: Vec::new(),
            outside: None,
            config,
            epochs: Epochs::default(),
            log: LocalLog {
                records: VecDeque::new(),
                base_zxid: 0,
                durable_zxid: 0,
                committed_zxid: 0,
                limit,
            },
            round: 0,
            next_conn: 0,
            role: None,
            state: State::Looking(Election {
                proposal: None,
                received: BTreeMap::new(),
                out_of_election: BTreeMap::new(),
                decide_at_ms: None,
                early_infos: BTreeMap::new(),
                round_started_ms: 0,
            }),
        }
    }

    pub fn id(&self) -> ServerId {
        self.config.id
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn last_zxid(&self) -> Zxid {
        self.log.last_zxid()
    }

    pub fn committed_zxid(&self) -> Zxid {
        self.log.committed_zxid
    }

    pub fn epochs(&self) -> Epochs {
        self.epochs
    }

    /// The configuration in force on this server.
    pub fn membership(&self) -> &Membership {
        &self.active
    }

    /// Reconfigs logged and not committed (see [`Membership`]).
    pub fn pending_memberships(&self) -> &[Membership] {
        &self.pending
    }

    fn is_participant(&self) -> bool {
        self.active.participants.contains(&self.config.id)
    }

    /// False for a server a committed reconfig removed: it stays out of everything.
    fn is_member(&self) -> bool {
        self.active.is_member(self.config.id)
    }

    /// Participants of the configuration in force and of the pending ones: whose votes count,
    /// and whom election notifications go to.
    fn voters(&self) -> BTreeSet<ServerId> {
        let mut voters = self.active.participants.clone();
        if let Some(outside) = &self.outside {
            voters.extend(outside.participants.iter().copied());
        }
        for membership in &self.pending {
            voters.extend(membership.participants.iter().copied());
        }
        voters
    }

    /// How many more proposals a leader may have in flight before `Input::Write` is rejected
    /// as `Busy` (`outstanding_proposals_max` less the uncommitted ones). The shell asks first
    /// and holds a write back while this is 0, so that Busy is never a client's answer.
    pub fn proposal_room(&self) -> usize {
        self.config
            .outstanding_proposals_max
            .saturating_sub(self.log.uncommitted())
    }

    /// True for a leader that has completed synchronisation and accepts writes.
    pub fn is_broadcasting(&self) -> bool {
        matches!(&self.state, State::Leading(l) if l.established)
    }

    /// True when this server may serve clients: a leader that has established its epoch, or
    /// a learner that has been told UPTODATE by its leader (ZooKeeper starts the learner's
    /// server at UPTODATE).
    pub fn is_serving(&self) -> bool {
        match &self.state {
            State::Leading(l) => l.established,
            State::Learning(l) => l.up_to_date,
            State::Looking(_) => false,
        }
    }

    /// The leader's learner counts (None unless leading).
    pub fn leader_figures(&self) -> Option<LeaderFigures> {
        let State::Leading(leader) = &self.state else {
            return None;
        };
        let mut figures = LeaderFigures {
            learners: leader.sessions.len(),
            ..LeaderFigures::default()
        };
        for session in leader.sessions.values() {
            if matches!(session.phase, SessionPhase::Forwarding { acked: Some(_) }) {
                if session.observer {
                    figures.synced_observers += 1;
                } else {
                    figures.synced_followers += 1;
                }
            }
        }
        Some(figures)
    }

    /// The participants synced with this leader and forwarding (ZooKeeper's
    /// forwardingFollowers that are synced), the leader itself included; empty unless
    /// leading an established epoch. What Leader.isQuorumSynced counts for a reconfig.
    pub fn synced_participants(&self) -> Vec<ServerId> {
        let State::Leading(leader) = &self.state else {
            return Vec::new();
        };
        if !leader.established {
            return Vec::new();
        }
        let mut ids: Vec<ServerId> = leader
            .sessions
            .iter()
            .filter(|(_, session)| {
                !session.observer
                    && matches!(session.phase, SessionPhase::Forwarding { acked: Some(_) })
            })
            .map(|(id, _)| *id)
            .collect();
        ids.push(self.config.id);
        ids.sort_unstable();
        ids
    }

    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(now_ms, input, &mut out);
        out
    }

    pub fn step_into(&mut self, now_ms: u64, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Restart(durable) => self.restart(now_ms, durable, out),
            Input::Tick => self.tick(now_ms, out),
            Input::Wake => {}
            Input::Heard { from, conn } => {
                if let State::Learning(learner) = &mut self.state {
                    if learner.leader == from && learner.conn == conn {
                        learner.last_heard_ms = now_ms;
                    }
                }
            }
            Input::Disconnected(from) => self.disconnected(now_ms, from, out),
            Input::Durable(zxid) => {
                self.log.durable(zxid);
                self.after_durable(now_ms, out);
            }
            Input::Write { txn, time_ms } => self.write(now_ms, txn, time_ms, out),
            Input::Message { from, message } => match message {
                Message::Notification(n) => self.on_notification(now_ms, from, n, out),
                Message::Config(membership) => self.on_config(now_ms, membership, out),
                Message::Link { conn, seq, packet } => {
                    self.on_link(now_ms, from, conn, seq, packet, out)
                }
            },
        }
        if let State::Looking(_) = self.state {
            self.maybe_decide(now_ms, out);
        }
    }

    fn restart(&mut self, now_ms: u64, durable: DurableState, out: &mut Vec<Action>) {
        let mut records: VecDeque<LogRecord> = durable.recent.into();
        let mut base = durable.base_zxid;
        while records.len() > self.config.history_limit {
            if let Some(r) = records.pop_front() {
                base = r.zxid;
            }
        }
        let last = records.back().map_or(base, |r| r.zxid);
        self.epochs = durable.epochs;
        // A reconfig logged after the configuration this server starts with is not known to
        // have committed (ZooKeeper keeps it as zoo.cfg.dynamic.next): pending, not in force.
        let version = self.active.version;
        let mut pending: BTreeMap<Zxid, Membership> = BTreeMap::new();
        for membership in durable
            .reconfigs
            .into_iter()
            .chain(records.iter().filter_map(Membership::of_record))
        {
            if membership.version > version {
                pending.insert(membership.version, membership);
            }
        }
        self.pending = pending.into_values().collect();
        self.log.records = records;
        self.log.base_zxid = base;
        self.log.durable_zxid = last;
        // Commits are not persisted (as in ZooKeeper): the next leader re-commits them.
        self.log.committed_zxid = 0;
        self.next_conn = now_ms.saturating_mul(1024);
        self.role = None;
        self.go_looking(now_ms, out);
    }

    fn set_role(&mut self, role: Role, out: &mut Vec<Action>) {
        if self.role != Some(role) {
            self.role = Some(role);
            out.push(Action::RoleChanged(role));
        }
    }

    fn own_vote(&self) -> Vote {
        Vote {
            leader: self.config.id,
            zxid: self.log.last_zxid(),
            epoch: self.epochs.current_epoch,
        }
    }

    /// The vote of a peer that may not lead and has no candidate: a participant other than
    /// itself (ZooKeeper 3.8 drops a notification whose proposed leader is not a voter, and
    /// a never-leader must not propose itself) with a history no server has
    /// ([`NO_VOTE_ZXID`], epoch 0), so that it agrees with no real vote and no receiver
    /// adopts it (FastLeaderElection.totalOrderPredicate prefers any vote of epoch 0 and
    /// zxid ≥ 0).
    fn no_vote(&self) -> Vote {
        let me = self.config.id;
        let leader = self.voters().into_iter().find(|&id| id != me).unwrap_or(me);
        Vote {
            leader,
            zxid: NO_VOTE_ZXID,
            epoch: 0,
        }
    }

    /// Whether a peer that may not lead can vote for `vote`: it names another voter whose
    /// history (epoch, then zxid) is at least as recent as this server's. A candidate behind
    /// this server's log may lack records this server acknowledged (and that a quorum of
    /// acks committed), so this server abstains rather than help elect it.
    fn acceptable_candidate(&self, vote: &Vote) -> bool {
        let own = self.own_vote();
        vote.leader != self.config.id
            && self.voters().contains(&vote.leader)
            && (vote.epoch, vote.zxid) >= (own.epoch, own.zxid)
    }

    /// The vote to take in a new round, given one received: for a peer that may lead, the
    /// better of that vote and its own; for one that may not, that vote if acceptable.
    fn initial_proposal(&self, received: Option<Vote>) -> Option<Vote> {
        if self.config.may_lead {
            let own = self.own_vote();
            Some(match received {
                Some(vote) if vote.order_key() > own.order_key() => vote,
                _ => own,
            })
        } else {
            received.filter(|vote| self.acceptable_candidate(vote))
        }
    }

    fn current_notification(&self) -> Notification {
        match &self.state {
            State::Looking(e) => Notification {
                vote: e.proposal.unwrap_or_else(|| self.no_vote()),
                round: self.round,
                state: PeerState::Looking,
                config_version: self.active.version,
            },
            State::Learning(l) => Notification {
                vote: l.vote,
                round: l.round,
                state: if l.as_observer {
                    PeerState::Observing
                } else {
                    PeerState::Following
                },
                config_version: self.active.version,
            },
            State::Leading(l) => Notification {
                vote: l.vote,
                round: l.round,
                state: PeerState::Leading,
                config_version: self.active.version,
            },
        }
    }

    // ---------------------------------------------------------------- election

    fn go_looking(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        self.round += 1;
        let proposal = self.initial_proposal(None);
        let mut received = BTreeMap::new();
        if let (true, Some(vote)) = (self.is_participant(), proposal) {
            received.insert(self.config.id, vote);
        }

        self.state = State::Looking(Election {
            proposal,
            received,
            out_of_election: BTreeMap::new(),
            decide_at_ms: None,
            early_infos: BTreeMap::new(),
            round_started_ms: now_ms,
        });
        self.set_role(Role::Looking, out);
        self.broadcast_notification(out);
        self.maybe_decide(now_ms, out);
    }

    fn broadcast_notification(&self, out: &mut Vec<Action>) {
        // A server that a committed reconfig removed sends its notifications too (nobody
        // counts them: it is no voter of theirs), so that a member whose configuration is newer
        // answers with it (`on_notification`): a later reconfig may have added it again, and
        // without the answer it would never hear of it and stay out for good (ZooKeeper's
        // removed server likewise keeps sending its notifications, which carry its config
        // version, and learns a newer configuration from the answers).
        let n = self.current_notification();
        for to in self.voters() {
            if to != self.config.id {
                out.push(Action::Send {
                    to,
                    message: Message::Notification(n),
                });
            }
        }
    }

    fn reply_notification(&self, to: ServerId, out: &mut Vec<Action>) {
        out.push(Action::Send {
            to,
            message: Message::Notification(self.current_notification()),
        });
    }

    fn on_notification(
        &mut self,
        now_ms: u64,
        from: ServerId,
        n: Notification,
        out: &mut Vec<Action>,
    ) {
        if n.config_version < self.active.version {
            // The sender runs an older configuration (it missed a reconfig's commit, or is a
            // joiner started before it): tell it the one in force.
            out.push(Action::Send {
                to: from,
                message: Message::Config(self.active.clone()),
            });
        }
        if !self.is_member() {
            return;
        }
        if !self.voters().contains(&from) {
            // Observers never vote, and neither does a server that is not a member yet (a
            // joiner started with the members and itself in its configuration): tell them what
            // we know, so that they find the leader (ZooKeeper's WorkerReceiver answers a
            // non-voter with its current vote). Only once this server knows a leader: a
            // looking server's vote is of no use to a non-voter, and a joiner that votes
            // would answer it back (it counts this server), round after round.
            if n.state == PeerState::Looking && !matches!(self.state, State::Looking(_)) {
                self.reply_notification(from, out);
            }
            return;
        }
        if self.prospective_leader_follows_another(from, &n) {
            // The server this learner chose is following someone else (it answered our
            // FollowerInfo with its notification, see `refuse_follower_info`): it will not
            // lead in this round, so waiting `init_limit_ticks` for its LeaderInfo only delays
            // joining the real leader. ZooKeeper's learner gives up likewise when the chosen
            // server's quorum port refuses the connection (only a leader listens there).
            self.go_looking(now_ms, out);
            return;
        }
        if let State::Leading(leader) = &mut self.state {
            // A participant in a later election round than the one this leadership came from
            // has left it: its followers only send notifications of the leader's round (in
            // reply to lookers). Drop it now rather than after syncLimit ticks without its
            // pings: a leader resumed after a pause (SIGSTOP, a long GC or VM stall) finds the
            // notifications of the election held without it waiting in its socket, together
            // with pings sent before its followers gave up, which would otherwise look fresh.
            // ZooKeeper's leader learns the same from its followers closing their connections
            // (LearnerHandler ends, Leader.lead's tick check sees no quorum of synced followers).
            //
            // Only a synced learner is dropped: one still joining may have sent a notification
            // of a later round just before it decided to follow this leader, and the election
            // and quorum links are separate streams, so that notification can arrive after its
            // FollowerInfo; by the time a learner has acknowledged NEWLEADER, several round
            // trips later, it no longer can.
            let synced = leader.sessions.get(&from).is_some_and(|session| {
                matches!(session.phase, SessionPhase::Forwarding { acked: Some(_) })
            });
            if n.round > leader.round && synced {
                leader.sessions.remove(&from);
                if leader.established
                    && !Self::synced_quorum(
                        leader,
                        self.config.id,
                        quorum_config(&self.active, &self.outside),
                        &self.pending,
                    )
                {
                    // Looking from here on, and this notification is the first of the
                    // election: taken in below.
                    self.go_looking(now_ms, out);
                }
            }
        }
        let observer = !self.is_participant();
        let round = self.round;
        let new_round_proposal = self.initial_proposal(Some(n.vote));
        let adoptable = if self.config.may_lead {
            true
        } else {
            self.acceptable_candidate(&n.vote)
        };
        let zookeeper_leader = self.config.zookeeper_leader;
        let State::Looking(election) = &mut self.state else {
            if n.state == PeerState::Looking {
                self.reply_notification(from, out);
            }
            return;
        };
        match n.state {
            PeerState::Looking if observer => {}
            PeerState::Looking => {
                if n.round > round {
                    self.round = n.round;
                    election.received.clear();
                    election.round_started_ms = now_ms;
                    election.proposal = new_round_proposal;
                    if let Some(vote) = election.proposal {
                        election.received.insert(self.config.id, vote);
                    }
                    election.decide_at_ms = None;
                    self.broadcast_notification(out);
                } else if n.round < round {
                    self.reply_notification(from, out);
                    return;
                } else if adoptable
                    && election
                        .proposal
                        .is_none_or(|proposal| n.vote.order_key() > proposal.order_key())
                {
                    election.proposal = Some(n.vote);
                    election.received.insert(self.config.id, n.vote);
                    election.decide_at_ms = None;
                    self.broadcast_notification(out);
                } else if election.proposal.is_some_and(|proposal| proposal != n.vote) {
                    // (A never-leader with no candidate has nothing to tell: its reply would
                    // only draw the sender's vote back, round after round.)
                    // The sender proposes a worse leader: it may have missed our notification
                    // (sent while it was still following), so tell it ours now rather than at
                    // the next tick.
                    self.reply_notification(from, out);
                }
                let State::Looking(election) = &mut self.state else {
                    return;
                };
                election.received.insert(from, n.vote);
                let Some(proposal) = election.proposal else {
                    return;
                };
                let agreeing: BTreeSet<ServerId> = election
                    .received
                    .iter()
                    .filter(|(_, v)| **v == proposal)
                    .map(|(id, _)| *id)
                    .collect();
                let quorum = if proposal.leader == self.config.id {
                    joint_quorum(
                        quorum_config(&self.active, &self.outside),
                        &self.pending,
                        &agreeing,
                    )
                } else {
                    follow_quorum(&self.active, &self.pending, &proposal, &agreeing)
                };
                if quorum {
                    if election.decide_at_ms.is_none() {
                        election.decide_at_ms = Some(now_ms + self.config.finalize_wait_ms);
                    }
                } else {
                    election.decide_at_ms = None;
                }
            }
            PeerState::Following | PeerState::Leading
                if n.round == round
                    && election.proposal == Some(n.vote)
                    && n.vote.leader == self.config.id =>
            {
                // Participants of our round follow us: they count as votes for us, as in
                // ZooKeeper's lookForLeader (FOLLOWING/LEADING of the same electionEpoch go
                // to recvset; checkLeader: "if everyone else thinks I'm the leader, I must be
                // the leader"). Without it, a candidate whose voters do not all send it their
                // LOOKING notifications (a joiner that only a pending reconfig makes a
                // participant: members that lack the reconfig count it as no voter) stays
                // looking while they wait for it to lead.
                election.received.insert(from, n.vote);
                election.out_of_election.insert(from, n);
                let agreeing: BTreeSet<ServerId> = election
                    .received
                    .iter()
                    .filter(|(_, v)| **v == n.vote)
                    .map(|(id, _)| *id)
                    .collect();
                if joint_quorum(
                    quorum_config(&self.active, &self.outside),
                    &self.pending,
                    &agreeing,
                ) {
                    if election.decide_at_ms.is_none() {
                        election.decide_at_ms = Some(now_ms + self.config.finalize_wait_ms);
                    }
                } else {
                    election.decide_at_ms = None;
                }
            }
            PeerState::Following | PeerState::Leading => {
                election.out_of_election.insert(from, n);
                let vote = n.vote;
                // ZooKeeper's Vote.equals outside LOOKING compares the leader and its epoch
                // only: its followers' votes keep the zxid of the round they joined in.
                let same = |other: &Vote| {
                    if zookeeper_leader {
                        (other.leader, other.epoch) == (vote.leader, vote.epoch)
                    } else {
                        *other == vote
                    }
                };
                let agreeing: BTreeSet<ServerId> = election
                    .out_of_election
                    .iter()
                    .filter(|(_, o)| same(&o.vote))
                    .map(|(id, _)| *id)
                    .collect();
                let leader_says_leading = election
                    .out_of_election
                    .get(&vote.leader)
                    .is_some_and(|o| o.state == PeerState::Leading && same(&o.vote));
                if follow_quorum(&self.active, &self.pending, &vote, &agreeing)
                    && leader_says_leading
                    && vote.leader != self.config.id
                {
                    self.round = self.round.max(n.round);
                    self.follow(now_ms, vote, n.round, out);
                }
            }
            PeerState::Observing => {}
        }
    }

    /// A newer configuration in force elsewhere (committed, since a server puts a
    /// configuration in force only at its commit): this server takes part with it from now
    /// on, if it lists this server (a joiner is not removed by a configuration from before it
    /// joined).
    fn on_config(&mut self, now_ms: u64, membership: Membership, out: &mut Vec<Action>) {
        if membership.version <= quorum_config(&self.active, &self.outside).version {
            return;
        }
        let version = membership.version;
        if membership.is_member(self.config.id) {
            self.active = membership;
            self.outside = None;
        } else {
            // A joiner: the ensemble's configuration counts for its quorums from now on.
            self.outside = Some(membership);
            if let State::Learning(_) = self.state {
                // Its leader counts the quorums; the sync's Configs brings the same.
                self.pending.retain(|pending| pending.version > version);
                return;
            }
        }
        self.pending.retain(|pending| pending.version > version);
        self.go_looking(now_ms, out);
    }

    /// Whether `n`, from `from`, says that the server this peer is connecting to as its
    /// leader follows (or observes) another one in our election round or a later one. A
    /// notification of an older round is stale: it was sent before the election we decided in.
    fn prospective_leader_follows_another(&self, from: ServerId, n: &Notification) -> bool {
        let State::Learning(learner) = &self.state else {
            return false;
        };
        learner.phase == LearnerPhase::Connecting
            && from == learner.leader
            && matches!(n.state, PeerState::Following | PeerState::Observing)
            && n.round >= learner.round
    }

    /// Answers a FollowerInfo that reached a server which is not leading with its election
    /// notification (FOLLOWING, with its leader and round), so that the learner learns at once
    /// that it chose wrongly. Happens in a fast-leader-election race: a peer decides for a
    /// candidate after `finalize_wait_ms`, and the candidate, still looking, then adopts a
    /// better vote and follows that one instead.
    fn refuse_follower_info(&self, to: ServerId, out: &mut Vec<Action>) {
        if to != self.config.id {
            self.reply_notification(to, out);
        }
    }

    fn maybe_decide(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let State::Looking(election) = &self.state else {
            return;
        };
        let Some(at) = election.decide_at_ms else {
            return;
        };
        if !self.is_member() {
            return;
        }
        if now_ms < at {
            return;
        }
        let Some(vote) = election.proposal else {
            return;
        };
        let round = self.round;
        if vote.leader == self.config.id {
            assert!(
                self.config.may_lead,
                "a peer that may not lead never votes for itself"
            );
            self.lead(now_ms, vote, round, out);
        } else {
            self.follow(now_ms, vote, round, out);
        }
    }

    fn follow(&mut self, now_ms: u64, vote: Vote, round: u64, out: &mut Vec<Action>) {
        let early_infos = match &mut self.state {
            State::Looking(election) => std::mem::take(&mut election.early_infos),
            _ => BTreeMap::new(),
        };
        let conn = self.fresh_conn();
        let as_observer = !self.is_participant();
        let mut learner = Learner {
            as_observer,
            vote,
            round,
            leader: vote.leader,
            conn,
            send_seq: 0,
            recv_next: 0,
            phase: LearnerPhase::Connecting,
            epoch: None,
            last_heard_ms: now_ms,
            started_ms: now_ms,
            acked_zxid: 0,
            snap_pending: None,
            sync_begun: false,
            unacked: VecDeque::new(),
            up_to_date: false,
        };
        let info = Packet::FollowerInfo {
            accepted_epoch: self.epochs.accepted_epoch,
            observer: as_observer,
        };
        learner_send(&mut learner, info, out);
        self.state = State::Learning(learner);
        // Learners that took this peer for their leader while it was still looking: it is
        // following now, tell them (they would otherwise wait `init_limit_ticks`).
        for from in early_infos.into_keys() {
            if from != vote.leader {
                self.refuse_follower_info(from, out);
            }
        }
    }

    fn lead(&mut self, now_ms: u64, vote: Vote, round: u64, out: &mut Vec<Action>) {
        let early_infos = match &mut self.state {
            State::Looking(election) => std::mem::take(&mut election.early_infos),
            _ => BTreeMap::new(),
        };
        self.state = State::Leading(Leader {
            vote,
            round,
            started_ms: now_ms,
            epoch: None,
            epoch_acked: false,
            initial_last_zxid: 0,
            established: false,
            sessions: BTreeMap::new(),
        });
        // A one-server ensemble has its quorum already.
        self.leader_progress(now_ms, out);
        for (from, (conn, info)) in early_infos {
            if let Next::Looking = self.leader_link(now_ms, from, conn, 0, info, out) {
                self.go_looking(now_ms, out);
                return;
            }
        }
    }

    /// Whether the leader and the participants synced with it are a quorum (of the
    /// configuration in force and of each pending one).
    fn synced_quorum(
        leader: &Leader,
        me: ServerId,
        active: &Membership,
        pending: &[Membership],
    ) -> bool {
        let synced: BTreeSet<ServerId> = leader
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.observer && matches!(s.phase, SessionPhase::Forwarding { acked: Some(_) })
            })
            .map(|(id, _)| *id)
            .chain(std::iter::once(me))
            .collect();
        joint_quorum(active, pending, &synced)
    }

    fn fresh_conn(&mut self) -> u64 {
        self.next_conn += 1;
        self.next_conn
    }

    fn disconnected(&mut self, now_ms: u64, from: ServerId, out: &mut Vec<Action>) {
        match &mut self.state {
            State::Learning(learner) if learner.leader == from => self.go_looking(now_ms, out),
            State::Leading(leader) => {
                leader.sessions.remove(&from);
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- timers

    fn tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let tick_ms = self.config.tick_ms;
        let init_ms = self.config.init_limit_ticks * tick_ms;
        let sync_ms = self.config.sync_limit_ticks * tick_ms;
        let me = self.config.id;
        let next = match &mut self.state {
            State::Looking(election) => {
                if !self.config.may_lead
                    && self.active.participants.contains(&me)
                    && election.proposal.is_none()
                    && now_ms.saturating_sub(election.round_started_ms)
                        >= NO_CANDIDATE_ROUND_TICKS * tick_ms
                {
                    // A never-leader that has heard of no candidate it can vote for starts a
                    // new round. ZooKeeper's FastLeaderElection sends its vote only when it
                    // changes, or after a poll of its queue times out, which never happens
                    // while this peer's notifications keep arriving every tick: a lost
                    // notification would leave this peer without the vote for good. A round
                    // above a looking server's makes it send its vote again (and an
                    // established leader answers every LOOKING notification anyway).
                    Next::Looking
                } else {
                    // Notifications may be lost: repeat ours every tick.
                    self.broadcast_notification(out);
                    Next::Stay
                }
            }
            State::Learning(learner) => {
                if learner.phase == LearnerPhase::Connecting {
                    if now_ms.saturating_sub(learner.started_ms) > init_ms {
                        Next::Looking
                    } else {
                        // The FollowerInfo may have been lost: reconnect.
                        self.next_conn += 1;
                        learner.conn = self.next_conn;
                        learner.send_seq = 0;
                        learner.recv_next = 0;
                        let info = Packet::FollowerInfo {
                            accepted_epoch: self.epochs.accepted_epoch,
                            observer: learner.as_observer,
                        };
                        learner_send(learner, info, out);
                        Next::Stay
                    }
                } else {
                    let synced = learner.phase == LearnerPhase::Broadcast;
                    if now_ms.saturating_sub(learner.last_heard_ms) > sync_ms
                        || (!synced && now_ms.saturating_sub(learner.started_ms) > init_ms)
                    {
                        Next::Looking
                    } else {
                        learner_send(learner, Packet::Ping, out);
                        Next::Stay
                    }
                }
            }
            State::Leading(leader) => {
                leader
                    .sessions
                    .retain(|_, s| now_ms.saturating_sub(s.last_heard_ms) <= sync_ms);
                for (&to, session) in leader.sessions.iter_mut() {
                    if session.phase != SessionPhase::Info {
                        session_send(to, session, Packet::Ping, out);
                    }
                }
                if leader.established {
                    if Self::synced_quorum(
                        leader,
                        me,
                        quorum_config(&self.active, &self.outside),
                        &self.pending,
                    ) {
                        Next::Stay
                    } else {
                        Next::Looking
                    }
                } else if now_ms.saturating_sub(leader.started_ms) > init_ms {
                    Next::Looking
                } else {
                    Next::Stay
                }
            }
        };
        if let Next::Looking = next {
            self.go_looking(now_ms, out);
        }
    }

    // ---------------------------------------------------------------- links

    fn on_link(
        &mut self,
        now_ms: u64,
        from: ServerId,
        conn: u64,
        seq: u64,
        packet: Packet,
        out: &mut Vec<Action>,
    ) {
        match &self.state {
            State::Learning(_) => {
                if let Next::Looking = self.learner_link(now_ms, from, conn, seq, packet, out) {
                    self.go_looking(now_ms, out);
                }
            }
            State::Leading(_) => {
                if let Next::Looking = self.leader_link(now_ms, from, conn, seq, packet, out) {
                    self.go_looking(now_ms, out);
                }
            }
            State::Looking(_) => {
                if let (0, Packet::FollowerInfo { .. }) = (seq, &packet) {
                    if let State::Looking(election) = &mut self.state {
                        election.early_infos.insert(from, (conn, packet));
                    }
                }
            }
        }
    }

    fn learner_link(
        &mut self,
        now_ms: u64,
        from: ServerId,
        conn: u64,
        seq: u64,
        packet: Packet,
        out: &mut Vec<Action>,
    ) -> Next {
        let State::Learning(learner) = &mut self.state else {
            return Next::Stay;
        };
        let observer = learner.as_observer;
        if from != learner.leader && seq == 0 && matches!(packet, Packet::FollowerInfo { .. }) {
            // Another server takes this one for its leader; it is not (see
            // `refuse_follower_info`).
            self.refuse_follower_info(from, out);
            return Next::Stay;
        }
        if from != learner.leader || conn != learner.conn || seq < learner.recv_next {
            return Next::Stay;
        }
        if seq > learner.recv_next {
            return Next::Looking; // a gap: the connection is broken
        }
        learner.recv_next += 1;
        learner.last_heard_ms = now_ms;
        match (learner.phase, packet) {
            (_, Packet::Ping) => {}
            (LearnerPhase::Connecting, Packet::LeaderInfo { epoch }) => {
                let accept = if observer || self.config.zookeeper_leader {
                    // An observer takes no part in the epoch's quorum; ZooKeeper's learner
                    // accepts an epoch equal to its accepted one from any leader (and says so
                    // with ACKEPOCH epoch -1, so that the leader does not count it twice).
                    epoch >= self.epochs.accepted_epoch
                } else {
                    epoch > self.epochs.accepted_epoch
                        || (epoch == self.epochs.accepted_epoch
                            && self.epochs.accepted_leader == Some(learner.leader))
                };
                if !accept {
                    return Next::Looking;
                }
                if self.epochs.accepted_epoch != epoch
                    || self.epochs.accepted_leader != Some(learner.leader)
                {
                    self.epochs.accepted_epoch = epoch;
                    self.epochs.accepted_leader = Some(learner.leader);
                    out.push(Action::SaveEpochs(self.epochs));
                }
                learner.epoch = Some(epoch);
                learner.phase = LearnerPhase::Syncing;
                learner.started_ms = now_ms;
                let ack = Packet::AckEpoch {
                    current_epoch: self.epochs.current_epoch,
                    last_zxid: self.log.last_zxid(),
                };
                learner_send(learner, ack, out);
                let leader = learner.leader;
                let role = if observer {
                    Role::Observing { leader, epoch }
                } else {
                    Role::Following { leader, epoch }
                };
                self.set_role(role, out);
            }
            (LearnerPhase::Syncing, Packet::Diff { zxid }) => {
                learner.sync_begun = true;
                if zxid != self.log.last_zxid() {
                    return Next::Looking;
                }
            }
            (LearnerPhase::Syncing, Packet::Trunc { zxid }) => {
                learner.sync_begun = true;
                self.log.truncate(zxid, out);
                self.pending.retain(|membership| membership.version <= zxid);
            }
            (LearnerPhase::Syncing, Packet::Snap { zxid, payload }) => {
                learner.sync_begun = true;
                self.log.install(zxid, payload, out);
                // The reconfigs pending in the snapshot's history are the leader's, from the
                // Configs sent ahead of the Snap (a leader of an earlier release sends none:
                // its Configs before NewLeader says it, if the connection lasts that long).
                let version = quorum_config(&self.active, &self.outside).version;
                self.pending = learner
                    .snap_pending
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|membership| membership.version > version && membership.version <= zxid)
                    .collect();
            }
            (LearnerPhase::Syncing, Packet::Configs { active, pending }) => {
                // A joiner keeps the configuration that lists it until a reconfig adds it.
                if active.version > quorum_config(&self.active, &self.outside).version {
                    if active.is_member(self.config.id) {
                        self.active = active;
                        self.outside = None;
                    } else {
                        self.outside = Some(active);
                    }
                }
                let version = quorum_config(&self.active, &self.outside).version;
                if learner.snap_pending.is_none() && !learner.sync_begun {
                    // Ahead of a Snap: until the snapshot is installed this server's own log
                    // stands, so its own pending reconfigs stay counted, with the leader's.
                    learner.snap_pending = Some(pending.clone());
                    for membership in pending {
                        if membership.version > version
                            && !self.pending.iter().any(|m| m.version == membership.version)
                        {
                            self.pending.push(membership);
                        }
                    }
                    self.pending.sort_by_key(|membership| membership.version);
                } else {
                    self.pending = pending
                        .into_iter()
                        .filter(|membership| membership.version > version)
                        .collect();
                }
            }
            (
                LearnerPhase::Syncing | LearnerPhase::AwaitDurable { .. } | LearnerPhase::Broadcast,
                Packet::Proposal(record),
            ) => {
                if record.zxid <= self.log.last_zxid() {
                    return Next::Looking;
                }
                if self.config.ack_each_proposal && !observer {
                    if learner.unacked.len() >= UNACKED_PROPOSALS_MAX {
                        return Next::Looking;
                    }
                    learner.unacked.push_back(record.zxid);
                }
                self.note_reconfig(&record);
                self.log.append(record, out);
            }
            (LearnerPhase::Syncing, Packet::NewLeader { epoch, zxid }) => {
                if Some(epoch) != learner.epoch || zxid != self.log.last_zxid() {
                    return Next::Looking;
                }
                // current epoch is saved only once the synced history is durable (in
                // learner_durable): a server that restarts with the new current epoch but
                // without the records would out-vote servers that hold committed records
                // (ZooKeeper's Learner.syncWithLeader likewise logs the synced proposals first).
                learner.phase = LearnerPhase::AwaitDurable { zxid };
                self.learner_durable(out);
            }
            (
                LearnerPhase::AwaitDurable { .. } | LearnerPhase::Broadcast,
                packet @ (Packet::UpToDate { zxid } | Packet::Commit { zxid }),
            ) => {
                if !self.log.commit(zxid, out) {
                    return Next::Looking;
                }
                if matches!(packet, Packet::UpToDate { .. }) {
                    learner.up_to_date = true;
                    if self.config.zookeeper_leader {
                        // ZOOKEEPER-1732 (QuorumPeer.updateElectionVote): from here on the
                        // learner's notifications name the new epoch, as the leader's and the
                        // other followers' do, so that a server starting up finds them agree.
                        if let Some(epoch) = learner.epoch {
                            learner.vote.epoch = epoch;
                        }
                    }
                }
                return self.learner_activate();
            }
            (
                LearnerPhase::AwaitDurable { .. } | LearnerPhase::Broadcast,
                Packet::Inform(record),
            ) => {
                if record.zxid > self.log.last_zxid() {
                    self.note_reconfig(&record);
                    self.log.append(record.clone(), out);
                }
                if !self.log.commit(record.zxid, out) {
                    return Next::Looking;
                }
                return self.learner_activate();
            }
            // Anything else is out of protocol: drop the connection.
            _ => return Next::Looking,
        }
        Next::Stay
    }

    /// A record about to be logged: a reconfig above the configuration in force is pending.
    /// One at or below it (resent by a leader in a DIFF after this server put it in force)
    /// is not: counting its older configuration again would ask elections and commits for a
    /// quorum that may no longer exist.
    fn note_reconfig(&mut self, record: &LogRecord) {
        if record.zxid <= quorum_config(&self.active, &self.outside).version
            || self.pending.iter().any(|m| m.version == record.zxid)
        {
            return;
        }
        if let Some(membership) = Membership::of_record(record) {
            self.pending.push(membership);
        }
    }

    /// Reconfigs committed through the commit point come into force; true if any did.
    fn activate_committed(&mut self) -> bool {
        let committed = self.log.committed_zxid;
        let mut changed = false;
        while self
            .pending
            .first()
            .is_some_and(|membership| membership.version <= committed)
        {
            self.active = self.pending.remove(0);
            changed = true;
        }
        if self
            .outside
            .as_ref()
            .is_some_and(|outside| outside.version <= self.active.version)
        {
            self.outside = None;
        }
        changed
    }

    /// After a commit on a learner: a new configuration in force may end this connection
    /// (QuorumPeer.processReconfig's "major change"): the learner left the membership, its
    /// role changed, or its leader is no longer a participant.
    fn learner_activate(&mut self) -> Next {
        if !self.activate_committed() {
            return Next::Stay;
        }
        let State::Learning(learner) = &self.state else {
            return Next::Stay;
        };
        let id = self.config.id;
        let role_changed = if learner.as_observer {
            !self.active.observers.contains(&id) && self.active.participants.contains(&id)
        } else {
            self.active.observers.contains(&id)
        };
        if !self.active.is_member(id)
            || role_changed
            || !self.active.participants.contains(&learner.leader)
        {
            return Next::Looking;
        }
        Next::Stay
    }

    fn learner_durable(&mut self, out: &mut Vec<Action>) {
        let durable = self.log.durable_zxid;
        let State::Learning(learner) = &mut self.state else {
            return;
        };
        let observer = learner.as_observer;
        match learner.phase {
            LearnerPhase::AwaitDurable { zxid } if durable >= zxid => {
                if let Some(epoch) = learner.epoch {
                    if self.epochs.current_epoch != epoch {
                        self.epochs.current_epoch = epoch;
                        out.push(Action::SaveEpochs(self.epochs));
                    }
                }
                learner.phase = LearnerPhase::Broadcast;
                learner.acked_zxid = durable;
                learner_send(learner, Packet::AckNewLeader { zxid: durable }, out);
                if self.config.ack_each_proposal && !observer {
                    Self::ack_each_durable(learner, durable, out);
                }
            }
            LearnerPhase::Broadcast
                if !observer && self.config.ack_each_proposal && durable > learner.acked_zxid =>
            {
                learner.acked_zxid = durable;
                Self::ack_each_durable(learner, durable, out);
            }
            LearnerPhase::Broadcast if !observer && durable > learner.acked_zxid => {
                learner.acked_zxid = durable;
                learner_send(learner, Packet::Ack { zxid: durable }, out);
            }
            _ => {}
        }
    }

    /// One ACK per proposal durable through `durable`, in zxid order, for a ZooKeeper leader
    /// (Leader.processAck counts an ACK for its own zxid only; SendAckRequestProcessor acks
    /// each logged proposal). Committed ones too: the leader's LearnerHandler.SyncLimitCheck
    /// waits for the ACK of every proposal it sent after the NEWLEADER ack and closes the
    /// connection after syncLimit without it, even when a quorum committed it already. (An
    /// ACK of a zxid the leader committed or never tracked is ignored by both.)
    fn ack_each_durable(learner: &mut Learner, durable: Zxid, out: &mut Vec<Action>) {
        while let Some(&zxid) = learner.unacked.front() {
            if zxid > durable {
                break;
            }
            learner.unacked.pop_front();
            learner_send(learner, Packet::Ack { zxid }, out);
        }
    }

    fn after_durable(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        match &self.state {
            State::Learning(_) => self.learner_durable(out),
            State::Leading(_) => self.leader_progress(now_ms, out),
            State::Looking(_) => {}
        }
    }

    fn leader_link(
        &mut self,
        now_ms: u64,
        from: ServerId,
        conn: u64,
        seq: u64,
        packet: Packet,
        out: &mut Vec<Action>,
    ) -> Next {
        let State::Leading(leader) = &mut self.state else {
            return Next::Stay;
        };
        if let Packet::FollowerInfo {
            accepted_epoch,
            observer,
        } = packet
        {
            // Any server may connect, a member or not: one that is not a member yet is a
            // joiner (an observer, or a non-voting follower whose acks count only for the
            // configurations that list it), as ZooKeeper's leader takes them (Leader's
            // nonVotingFollowers), so that a reconfig can find the new members synced.
            let known = leader.sessions.get(&from).is_some_and(|s| s.conn >= conn);
            let _ = observer;
            if seq != 0 || known {
                return Next::Stay;
            }
            let mut session = Session {
                conn,
                send_seq: 0,
                recv_next: 1,
                observer,
                accepted_epoch,
                last_heard_ms: now_ms,
                phase: SessionPhase::Info,
                uptodate_sent: false,
                epoch_ack_counts: true,
            };
            if let Some(epoch) = leader.epoch {
                session_send(from, &mut session, Packet::LeaderInfo { epoch }, out);
                session.phase = SessionPhase::AwaitAckEpoch;
            }
            leader.sessions.insert(from, session);
            self.leader_progress(now_ms, out);
            return Next::Stay;
        }
        let Some(session) = leader.sessions.get_mut(&from) else {
            return Next::Stay;
        };
        if conn != session.conn || seq < session.recv_next {
            return Next::Stay;
        }
        if seq > session.recv_next {
            leader.sessions.remove(&from);
            return Next::Stay;
        }
        session.recv_next += 1;
        session.last_heard_ms = now_ms;
        match (session.phase, packet) {
            (_, Packet::Ping) => {}
            (
                SessionPhase::AwaitAckEpoch,
                Packet::AckEpoch {
                    current_epoch,
                    last_zxid,
                },
            ) => {
                // Zab phase 1: the leader's history must be at least as recent as that of
                // every member of its quorum (ZooKeeper's "Follower is ahead of the leader").
                // A non-voting follower (a joiner) is in no quorum of this leader's.
                let own = (self.epochs.current_epoch, self.log.last_zxid());
                let voter = self.active.participants.contains(&from)
                    || self
                        .outside
                        .as_ref()
                        .is_some_and(|m| m.participants.contains(&from))
                    || self.pending.iter().any(|m| m.participants.contains(&from));
                // ZooKeeper's learner answers an epoch it accepted before with -1
                // (Learner.registerWithLeader): Leader.waitForEpochAck neither compares nor
                // counts such an ack, since the learner may have promised the epoch to
                // another leader.
                let repeated = current_epoch == EPOCH_ACCEPTED_BEFORE;
                if !repeated && !session.observer && voter && (current_epoch, last_zxid) > own {
                    return Next::Looking;
                }
                session.epoch_ack_counts = !repeated;
                session.phase = SessionPhase::AckedEpoch { last_zxid };
                if leader.epoch_acked {
                    self.sync_one(from, out);
                } else {
                    self.leader_progress(now_ms, out);
                }
            }
            (SessionPhase::Forwarding { acked: None }, Packet::AckNewLeader { zxid }) => {
                session.phase = SessionPhase::Forwarding { acked: Some(zxid) };
                self.leader_progress(now_ms, out);
            }
            (
                SessionPhase::Forwarding {
                    acked: Some(previous),
                },
                Packet::Ack { zxid },
            ) => {
                if !session.observer && zxid > previous && zxid <= self.log.last_zxid() {
                    session.phase = SessionPhase::Forwarding { acked: Some(zxid) };
                    self.leader_progress(now_ms, out);
                }
            }
            _ => {
                leader.sessions.remove(&from);
            }
        }
        Next::Stay
    }

    /// Sends learner `id` (in phase AckedEpoch) what it needs to match this leader's history,
    /// then NewLeader (ZooKeeper's `LearnerHandler.syncFollower`).
    fn sync_one(&mut self, id: ServerId, out: &mut Vec<Action>) {
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        let Some(epoch) = leader.epoch else { return };
        let Some(session) = leader.sessions.get_mut(&id) else {
            return;
        };
        let SessionPhase::AckedEpoch {
            last_zxid: learner_zxid,
        } = session.phase
        else {
            return;
        };
        let log = &self.log;
        let last = log.last_zxid();
        let send_from =
            if learner_zxid == last || (learner_zxid < last && log.contains(learner_zxid)) {
                session_send(id, session, Packet::Diff { zxid: learner_zxid }, out);
                learner_zxid
            } else if let Some(common) = log.floor(learner_zxid.min(last)) {
                session_send(id, session, Packet::Trunc { zxid: common }, out);
                common
            } else {
                // Behind the window. While establishing, the snapshot covers the whole initial
                // history (which commits as a whole); afterwards, what is committed.
                let zxid = if leader.established {
                    log.committed_zxid
                } else {
                    last
                };
                // The snapshot may cover reconfigs that are pending (while establishing it
                // covers the whole initial history): tell the learner ahead of it, so that a
                // learner whose connection breaks after the Snap, before the Configs that
                // precedes NewLeader, does not go on without them (it would count quorums of
                // the configuration in force only, and could lead with them).
                if let Some(configs) = configs_packet(&self.active, &self.outside, &self.pending) {
                    session_send(id, session, configs, out);
                }
                out.push(Action::SendSnapshot {
                    to: id,
                    conn: session.conn,
                    seq: session.send_seq,
                    zxid,
                });
                session.send_seq += 1;
                zxid
            };
        for record in log.after(send_from) {
            session_send(id, session, Packet::Proposal(record.clone()), out);
        }
        // Only once a reconfig was ever logged: a member of an earlier release does not know
        // this packet, and an ensemble without reconfig never sends it.
        if let Some(configs) = configs_packet(&self.active, &self.outside, &self.pending) {
            session_send(id, session, configs, out);
        }
        session_send(id, session, Packet::NewLeader { epoch, zxid: last }, out);
        session.phase = SessionPhase::Forwarding { acked: None };
    }

    /// Moves the leader forward: choose the epoch, reach the epoch quorum, establish, commit.
    fn leader_progress(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let me = self.config.id;
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        if leader.epoch.is_none() {
            let infos: Vec<Epoch> = leader
                .sessions
                .values()
                .filter(|s| !s.observer)
                .map(|s| s.accepted_epoch)
                .collect();
            let informed: BTreeSet<ServerId> = leader
                .sessions
                .iter()
                .filter(|(_, s)| !s.observer)
                .map(|(id, _)| *id)
                .chain(std::iter::once(me))
                .collect();
            if !joint_quorum(
                quorum_config(&self.active, &self.outside),
                &self.pending,
                &informed,
            ) {
                return;
            }
            // Epochs come from the network: an exhausted epoch space (a peer claiming the
            // largest epoch) cannot start a new one, so no epoch is proposed.
            let Some(epoch) = infos
                .iter()
                .copied()
                .chain(std::iter::once(self.epochs.accepted_epoch))
                .max()
                .unwrap_or(0)
                .checked_add(1)
            else {
                return;
            };
            leader.epoch = Some(epoch);
            self.epochs.accepted_epoch = epoch;
            self.epochs.accepted_leader = Some(me);
            out.push(Action::SaveEpochs(self.epochs));
            for (&to, session) in leader.sessions.iter_mut() {
                session_send(to, session, Packet::LeaderInfo { epoch }, out);
                session.phase = SessionPhase::AwaitAckEpoch;
            }
        }
        let Some(epoch) = leader.epoch else { return };
        if !leader.epoch_acked {
            let acked: BTreeSet<ServerId> = leader
                .sessions
                .iter()
                .filter(|(_, s)| {
                    !s.observer
                        && s.epoch_ack_counts
                        && matches!(s.phase, SessionPhase::AckedEpoch { .. })
                })
                .map(|(id, _)| *id)
                .chain(std::iter::once(me))
                .collect();
            if !joint_quorum(
                quorum_config(&self.active, &self.outside),
                &self.pending,
                &acked,
            ) {
                return;
            }
            leader.epoch_acked = true;
            leader.initial_last_zxid = self.log.last_zxid();
            self.epochs.current_epoch = epoch;
            out.push(Action::SaveEpochs(self.epochs));
            self.set_role(Role::Leading { epoch }, out);
            let waiting: Vec<ServerId> = match &self.state {
                State::Leading(l) => l
                    .sessions
                    .iter()
                    .filter(|(_, s)| matches!(s.phase, SessionPhase::AckedEpoch { .. }))
                    .map(|(&id, _)| id)
                    .collect(),
                _ => Vec::new(),
            };
            for id in waiting {
                self.sync_one(id, out);
            }
        }
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        if !leader.established {
            if self.log.durable_zxid < leader.initial_last_zxid {
                return;
            }
            if !Self::synced_quorum(
                leader,
                me,
                quorum_config(&self.active, &self.outside),
                &self.pending,
            ) {
                return;
            }
            leader.established = true;
            if self.config.zookeeper_leader {
                // ZOOKEEPER-1732 (Leader.lead: updateElectionVote): once established, the
                // leader's notifications name the new epoch, as its learners' do after
                // UPTODATE, so that a server starting up finds their votes agree.
                leader.vote.epoch = epoch;
            }
        }
        // Commit the highest zxid a quorum has made durable (the leader's durability is its
        // own ack). Acks are cumulative over the leader's history, so this is in zxid order.
        let acks: Vec<(ServerId, Zxid)> = leader
            .sessions
            .iter()
            .filter(|(_, s)| !s.observer)
            .filter_map(|(id, s)| match s.phase {
                SessionPhase::Forwarding { acked } => acked.map(|zxid| (*id, zxid)),
                _ => None,
            })
            .chain(std::iter::once((me, self.log.durable_zxid)))
            .collect();
        let Some(mut commit) = ack_point(quorum_config(&self.active, &self.outside), &acks) else {
            return;
        };
        // From a pending reconfig on, a record commits only when a quorum of the new
        // configuration has it too (ZooKeeper's Proposal with two QuorumVerifiers).
        for membership in &self.pending {
            if membership.version > commit {
                break;
            }
            match ack_point(membership, &acks) {
                Some(point) if point >= membership.version => commit = commit.min(point),
                _ => {
                    commit = self
                        .log
                        .floor(membership.version - 1)
                        .unwrap_or(self.log.committed_zxid);
                    break;
                }
            }
        }
        let previous = self.log.committed_zxid;
        if commit <= previous {
            // Still tell learners that acked NewLeader before establishment.
            self.send_uptodate(out);
            return;
        }
        let informs: Vec<LogRecord> = self
            .log
            .after(previous)
            .take_while(|r| r.zxid <= commit)
            .cloned()
            .collect();
        let committed = self.log.commit(commit, out);
        assert!(committed, "leader commits only its own history");
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        for (&to, session) in leader.sessions.iter_mut() {
            let SessionPhase::Forwarding { acked } = session.phase else {
                continue;
            };
            if session.observer {
                for record in &informs {
                    session_send(to, session, Packet::Inform(record.clone()), out);
                }
            } else if acked.is_some() {
                session_send(to, session, Packet::Commit { zxid: commit }, out);
            }
        }
        self.send_uptodate(out);
        self.leader_activate(now_ms, out);
    }

    /// After a commit on the leader: a reconfig that committed is in force; the learners it
    /// removed are forgotten, and a leader that is no longer a participant steps down so that
    /// the new configuration elects (ZooKeeper designates a successor instead).
    fn leader_activate(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let before = self.active.clone();
        if !self.activate_committed() {
            return;
        }
        if let State::Leading(leader) = &mut self.state {
            let active = &self.active;
            leader
                .sessions
                .retain(|id, _| active.is_member(*id) || !before.is_member(*id));
        }
        if !self.is_participant() {
            self.go_looking(now_ms, out);
        }
    }

    /// UpToDate to every learner that acknowledged NewLeader and has not had it yet. Sent
    /// after the Commit of this round, so it carries the newest committed zxid.
    fn send_uptodate(&mut self, out: &mut Vec<Action>) {
        let committed = self.log.committed_zxid;
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        if !leader.established {
            return;
        }
        for (&to, session) in leader.sessions.iter_mut() {
            if !session.uptodate_sent
                && matches!(session.phase, SessionPhase::Forwarding { acked: Some(_) })
            {
                session.uptodate_sent = true;
                session_send(to, session, Packet::UpToDate { zxid: committed }, out);
            }
        }
    }

    // ---------------------------------------------------------------- writes

    fn write(&mut self, now_ms: u64, txn: crate::tree::Txn, time_ms: i64, out: &mut Vec<Action>) {
        let _ = now_ms;
        let leader_id = match &self.state {
            State::Leading(l) if l.established => None,
            State::Leading(_) => {
                out.push(Action::WriteRejected(RejectReason::Busy));
                return;
            }
            State::Learning(l) if l.phase == LearnerPhase::Broadcast => Some(Some(l.leader)),
            _ => Some(None),
        };
        if let Some(leader) = leader_id {
            out.push(Action::WriteRejected(RejectReason::NotLeader { leader }));
            return;
        }
        if self.log.uncommitted() >= self.config.outstanding_proposals_max {
            out.push(Action::WriteRejected(RejectReason::Busy));
            return;
        }
        let epoch = self.epochs.current_epoch;
        let last = self.log.last_zxid();
        let zxid = if epoch_of(last) == epoch {
            if counter_of(last) >= self.config.counter_max {
                // ZooKeeper: "zxid lower 32 bits have rolled over, forcing re-election, and
                // therefore new epoch start".
                out.push(Action::WriteRejected(RejectReason::ZxidRollover));
                self.go_looking(now_ms, out);
                return;
            }
            last + 1
        } else {
            make_zxid(epoch, 1)
        };
        let record = LogRecord { zxid, time_ms, txn };
        self.note_reconfig(&record);
        self.log.append(record.clone(), out);
        let State::Leading(leader) = &mut self.state else {
            return;
        };
        for (&to, session) in leader.sessions.iter_mut() {
            if !session.observer && matches!(session.phase, SessionPhase::Forwarding { .. }) {
                session_send(to, session, Packet::Proposal(record.clone()), out);
            }
        }
        // A one-server ensemble commits on its own durability.
        self.leader_progress(now_ms, out);
    }
}

/// The configuration whose quorums this server counts: the ensemble's (`Peer::outside`)
/// when a joiner has learned one newer than the configuration it started with, else the
/// configuration in force on this server.
/// The configurations a learner is told during its sync (the one in force and the pending
/// ones), once a reconfig was ever logged; None otherwise (a member of an earlier release does
/// not know the packet, and an ensemble without reconfig never sends it).
fn configs_packet(
    active: &Membership,
    outside: &Option<Membership>,
    pending: &[Membership],
) -> Option<Packet> {
    let in_force = quorum_config(active, outside);
    (in_force.version > 0 || !pending.is_empty()).then(|| Packet::Configs {
        active: in_force.clone(),
        pending: pending.to_vec(),
    })
}

fn quorum_config<'a>(active: &'a Membership, outside: &'a Option<Membership>) -> &'a Membership {
    match outside {
        Some(outside) if outside.version > active.version => outside,
        _ => active,
    }
}

/// Whether `ids` is a quorum of the configuration in force and of every pending one.
fn joint_quorum(active: &Membership, pending: &[Membership], ids: &BTreeSet<ServerId>) -> bool {
    active.is_quorum(ids) && pending.iter().all(|membership| membership.is_quorum(ids))
}

/// Whether `ids`, agreeing on `vote` for another server, are enough for this server to
/// follow it: a quorum of the configuration in force and of each pending reconfig that the
/// candidate's epoch has not left behind.
///
/// A pending reconfig logged in an epoch older than the candidate's current epoch is one
/// this server kept from an epoch that did not win (or whose outcome it missed): if it had
/// committed, every leader established since would have it, and so would the candidate's
/// history from the later epoch, where it is then pending or in force on the candidate, and
/// the candidate as leader counts its quorums (discovery, NEWLEADER, commits) itself. The
/// follower's count is not what keeps the history safe (Zab §IV.B: the prospective leader's
/// quorum of epoch acknowledgements, none with a more recent history, does); demanding the
/// old reconfig's quorum here only keeps this server from following a leader the others
/// chose, until initLimit, round after round. A reconfig of the candidate's own epoch (or a
/// later one) is still counted: the candidate may be the leader that proposed it. ZooKeeper's
/// FastLeaderElection counts the last-seen configuration too; its learner then takes the
/// leader's (Learner.syncWithLeader on NEWLEADER), so a stale one does not outlive the sync.
fn follow_quorum(
    active: &Membership,
    pending: &[Membership],
    vote: &Vote,
    ids: &BTreeSet<ServerId>,
) -> bool {
    active.is_quorum(ids)
        && pending
            .iter()
            .filter(|membership| epoch_of(membership.version) >= vote.epoch)
            .all(|membership| membership.is_quorum(ids))
}

/// The highest zxid a quorum of `membership`'s participants acknowledged (acks are
/// cumulative), or None without a quorum of acks.
fn ack_point(membership: &Membership, acks: &[(ServerId, Zxid)]) -> Option<Zxid> {
    let mut zxids: Vec<Zxid> = acks
        .iter()
        .filter(|(id, _)| membership.participants.contains(id))
        .map(|(_, zxid)| *zxid)
        .collect();
    let quorum = membership.participants.len() / 2 + 1;
    if zxids.len() < quorum {
        return None;
    }
    zxids.sort_unstable_by(|a, b| b.cmp(a));
    Some(zxids[quorum - 1])
}

fn learner_send(learner: &mut Learner, packet: Packet, out: &mut Vec<Action>) {
    out.push(Action::Send {
        to: learner.leader,
        message: Message::Link {
            conn: learner.conn,
            seq: learner.send_seq,
            packet,
        },
    });
    learner.send_seq += 1;
}

fn session_send(to: ServerId, session: &mut Session, packet: Packet, out: &mut Vec<Action>) {
    out.push(Action::Send {
        to,
        message: Message::Link {
            conn: session.conn,
            seq: session.send_seq,
            packet,
        },
    });
    session.send_seq += 1;
}

#[cfg(test)]
mod quorum_tests {
    use super::*;

    fn membership(version: Zxid, participants: &[ServerId]) -> Membership {
        Membership {
            version,
            participants: participants.iter().copied().collect(),
            observers: BTreeSet::new(),
        }
    }

    fn ids(ids: &[ServerId]) -> BTreeSet<ServerId> {
        ids.iter().copied().collect()
    }

    /// A follower does not wait for the quorum of a reconfig left over from an epoch older
    /// than its candidate's, but does for one of the candidate's epoch (the candidate may
    /// be the leader that proposed it); the candidate's own count is the joint one.
    #[test]
    fn a_follower_counts_only_the_pending_reconfigs_its_candidate_has_not_left_behind() {
        let active = membership(0, &[1, 2, 3]);
        let stale = [membership(make_zxid(1, 8), &[1, 2])];
        let agreeing = ids(&[2, 3]);
        let candidate = |epoch| Vote {
            leader: 2,
            zxid: make_zxid(epoch, 15),
            epoch,
        };
        assert!(!joint_quorum(&active, &stale, &agreeing));
        assert!(follow_quorum(&active, &stale, &candidate(4), &agreeing));
        assert!(!follow_quorum(&active, &stale, &candidate(1), &agreeing));
        assert!(!follow_quorum(&active, &stale, &candidate(4), &ids(&[3])));
    }

    /// A joiner that learned the ensemble's configuration counts its quorums, not those of
    /// the configuration it was started with (the members and itself).
    #[test]
    fn a_joiner_counts_the_ensembles_configuration_once_it_knows_it() {
        let own = membership(0, &[2, 3, 5]);
        let ensemble = Some(membership(make_zxid(1, 4), &[2, 3]));
        assert!(own.is_quorum(&ids(&[3, 5])));
        assert!(!quorum_config(&own, &ensemble).is_quorum(&ids(&[3, 5])));
        assert!(quorum_config(&own, &ensemble).is_quorum(&ids(&[2, 3])));
        let older = Some(membership(0, &[2, 3]));
        assert_eq!(quorum_config(&own, &older), &own);
        assert_eq!(quorum_config(&own, &None), &own);
    }
}
