//! [io] The pipeline as an ensemble member: the shell that drives the sans-IO ZAB core
//! ([`crate::zab::Peer`]) and performs its actions.
//!
//! The pipeline thread owns the peer, so everything ZAB decides happens in order with the
//! client traffic of this server:
//!
//! - **Leader.** A client write (local, or forwarded by a learner) is prepped against the
//!   pending tree exactly as a standalone server does, then handed to the peer as a
//!   proposal; the peer's `Append` gives its zxid, and the transaction is applied to the
//!   pending tree at once so the next write is prepped against it (ZooKeeper's outstanding
//!   changes). The batch's replies and versions are released when ZAB commits, instead of
//!   when the local log is durable: the leader's own fsync is one ack of the quorum.
//! - **Learner** (follower or observer). Proposals are logged (`Append`) and kept aside;
//!   `CommitUpTo` applies them to the tree in zxid order and publishes each version. Client
//!   writes and `sync` are forwarded to the leader ([`Wire::Forward`]); the leader answers
//!   [`Wire::Proposed`] (sent before the proposal on the same ordered link), and the learner
//!   replies to its client when that zxid commits, from its own tree: the same result as the
//!   leader computed, since the transaction is deterministic.
//! - **Role changes.** On every change of role the server stops serving: every client
//!   connection is closed (ZooKeeper shuts its ZooKeeperServer down likewise) and new ones
//!   are refused until the peer is leading an established epoch or has been told UPTODATE.
//!   A leader that steps down drops what it had applied but not published: the tree goes
//!   back to the last published (committed) version and the dropped records are kept as
//!   logged-but-uncommitted, to be applied if a later leader commits them.
//!
//! Sessions are global and owned by the leader (ZooKeeper's LeaderSessionTracker): a
//! learner creates a session id with its server id in the top byte and forwards
//! createSession; touches are reported to the leader; only the leader expires sessions and
//! reaps containers, through transactions every server applies. A session that reconnects
//! to another server is revalidated by the leader, which records the new owner; a write that
//! reaches the leader from a server that no longer owns its session fails with SessionMoved.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::quorum::{Forwarded, QuorumDisk, QuorumLinks, Wire};
use crate::zab::{Action, DurableState, Input, Message, Packet, Peer, Role, ServerId, Zxid};

use super::*;

/// Everything an ensemble member starts with.
pub struct QuorumStart {
    /// A peer that has not been restarted yet.
    pub peer: Peer,
    pub durable: DurableState,
    pub links: Box<dyn QuorumLinks>,
    pub disk: Arc<dyn QuorumDisk>,
    /// Messages from other servers.
    pub inbound: Receiver<(ServerId, Wire)>,
    /// Servers whose connection to this one closed.
    pub closed: Receiver<ServerId>,
    pub tick_ms: u64,
}

/// A client request a learner forwarded and has not answered yet.
#[derive(Debug)]
enum Pending {
    Connect {
        conn: ConnRef,
        read_only_flag: bool,
        session_id: i64,
        timeout_ms: i32,
    },
    Revalidate {
        conn: ConnRef,
        read_only_flag: bool,
        session_id: i64,
    },
    Request {
        conn: ConnRef,
        xid: i32,
        request: Request,
        /// Its step must not hold the write before it (see `Step`).
        fenced: bool,
    },
}

/// A snapshot encoded for a learner (None when encoding failed).
pub(super) type EncodedSnapshot = (ServerId, Option<Wire>);

impl Pending {
    fn conn(&self) -> ConnRef {
        match self {
            Pending::Connect { conn, .. }
            | Pending::Revalidate { conn, .. }
            | Pending::Request { conn, .. } => *conn,
        }
    }
}

pub(super) struct Ensemble {
    pub(super) peer: Peer,
    me: ServerId,
    links: Box<dyn QuorumLinks>,
    disk: Arc<dyn QuorumDisk>,
    pub(super) inbound: Receiver<(ServerId, Wire)>,
    /// Snapshots for learners, encoded on a background thread: (learner, message).
    pub(super) encoded: (Sender<EncodedSnapshot>, Receiver<EncodedSnapshot>),
    /// Messages to learners that wait for a snapshot being encoded for them (the snapshot's
    /// link sequence number comes before theirs): the number of snapshots pending, and the
    /// messages in order.
    held: HashMap<ServerId, (usize, Vec<Wire>)>,
    pub(super) closed: Receiver<ServerId>,
    clock: ZabClock,
    tick_ms: u64,
    next_tick_ms: u64,
    role: Option<Role>,
    pub(super) serving: bool,
    /// When this server last stopped serving (or started): the election time `mntr` reports
    /// runs from here to serving again.
    looking_since: Option<Instant>,
    // Learner side.
    next_forward_id: u64,
    forwarded: HashMap<u64, Pending>,
    /// zxid → forwarded request id, from `Proposed`.
    origins: HashMap<Zxid, u64>,
    /// Logged records not applied to the tree yet, applied when committed.
    unapplied: BTreeMap<Zxid, LogRecord>,
    // Leader side.
    /// Records this leader proposed and applied to its pending tree, until published.
    proposed: BTreeMap<Zxid, LogRecord>,
    /// Syncs forwarded by learners: (learner, request id, zxid to wait for).
    pending_syncs: Vec<(ServerId, u64, Zxid)>,
    /// The server each session belongs to (ZooKeeper's session owner), for SessionMoved.
    owners: HashMap<i64, ServerId>,
}

/// ZAB's clock (`now_ms` of every input): milliseconds, monotonic within a process, and
/// starting from the wall clock, not from 0, so that it goes on increasing across restarts as
/// long as the wall clock does. The peer derives its link connection ids from it
/// (`now_ms * 1024 + n`, zab/peer.rs), and a leader ignores a FollowerInfo whose connection id
/// is not above the one it holds for that server (a duplicate or a stale attempt): with a
/// clock from 0, a member restarted after an uptime of t ms sent ids below those of its
/// previous run, and its leader dropped them until it had noticed the old link close.
#[derive(Debug)]
struct ZabClock {
    origin_ms: u64,
    started: Instant,
}

impl ZabClock {
    fn start() -> ZabClock {
        let origin_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        ZabClock {
            origin_ms,
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin_ms + self.started.elapsed().as_millis() as u64
    }
}

impl Ensemble {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// When the pipeline must wake next for ZAB's timers, on the pipeline's clock.
    pub(super) fn next_timer_ms(&self, pipeline_now_ms: i64) -> i64 {
        let until_tick = self.next_tick_ms.saturating_sub(self.now_ms());
        // While looking, the election's finalize wait is finer than a tick.
        let until = if self.serving {
            until_tick
        } else {
            until_tick.min(20)
        };
        pipeline_now_ms + until as i64
    }

    pub(super) fn shutdown(self: Box<Self>) {
        self.links.shutdown();
    }

    /// Sends to another server, after the snapshot being encoded for it if there is one.
    /// False when the message was dropped at once.
    pub(super) fn send(&mut self, to: ServerId, message: Wire) -> bool {
        match self.held.get_mut(&to) {
            Some((_, queue)) => {
                queue.push(message);
                true
            }
            None => self.links.send(to, &message),
        }
    }

    fn leader_id(&self) -> Option<ServerId> {
        match self.role {
            Some(Role::Following { leader, .. }) | Some(Role::Observing { leader, .. }) => {
                Some(leader)
            }
            _ => None,
        }
    }
}

impl Pipeline {
    /// Makes this pipeline an ensemble member: restarts the peer from what the disk holds.
    pub fn with_ensemble(mut self, start: QuorumStart) -> Pipeline {
        let me = start.peer.id();
        let clock = ZabClock::start();
        let ensemble = Ensemble {
            peer: start.peer,
            me,
            links: start.links,
            disk: start.disk,
            inbound: start.inbound,
            encoded: crossbeam_channel::unbounded(),
            held: HashMap::new(),
            closed: start.closed,
            next_tick_ms: clock.now_ms() + start.tick_ms.max(1),
            clock,
            tick_ms: start.tick_ms.max(1),
            role: None,
            serving: false,
            looking_since: Some(Instant::now()),
            next_forward_id: 1,
            forwarded: HashMap::new(),
            origins: HashMap::new(),
            unapplied: BTreeMap::new(),
            proposed: BTreeMap::new(),
            pending_syncs: Vec::new(),
            owners: HashMap::new(),
        };
        self.ensemble = Some(Box::new(ensemble));
        self.stats
            .quorum
            .set_mode(crate::metrics::ServerMode::Looking);
        self.step_peer(Input::Restart(start.durable));
        self
    }

    /// Some(true) when serving clients as the leader, Some(false) as a learner, None when
    /// not serving (or standalone).
    pub(super) fn quorum_role_for_clients(&self) -> Option<bool> {
        let ensemble = self.ensemble.as_ref()?;
        if !ensemble.serving {
            return None;
        }
        Some(matches!(ensemble.role, Some(Role::Leading { .. })))
    }

    /// Steps the peer and performs what it asks.
    fn step_peer(&mut self, input: Input) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let now = ensemble.now_ms();
        let actions = ensemble.peer.step(now, input);
        self.perform(actions);
    }

    pub(super) fn quorum_closed(&mut self, from: ServerId) {
        self.step_peer(Input::Disconnected(from));
    }

    pub(super) fn quorum_durable(&mut self, zxid: Zxid) {
        self.step_peer(Input::Durable(zxid));
    }

    pub(super) fn quorum_timers(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let now = ensemble.now_ms();
        let input = if now >= ensemble.next_tick_ms {
            ensemble.next_tick_ms = now + ensemble.tick_ms;
            Input::Tick
        } else {
            Input::Wake
        };
        self.step_peer(input);
    }

    /// The leader records which server a session belongs to when it is created or resumed
    /// here.
    pub(super) fn claim_session(&mut self, session_id: i64) {
        if let Some(ensemble) = self.ensemble.as_mut() {
            let me = ensemble.me;
            ensemble.owners.insert(session_id, me);
        }
    }

    /// Whether a write for `session_id` arriving from `from` (None: this server) must fail
    /// with SessionMoved. A session without a known owner (after an election) is claimed by
    /// the first server that sends its traffic, as ZooKeeper's session tracker does.
    pub(super) fn session_moved(&mut self, session_id: i64, from: Option<ServerId>) -> bool {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return false;
        };
        let from = from.unwrap_or(ensemble.me);
        match ensemble.owners.get(&session_id) {
            Some(owner) => *owner != from,
            None => {
                ensemble.owners.insert(session_id, from);
                false
            }
        }
    }

    /// A learner reports its clients' activity to the leader.
    pub(super) fn quorum_touch(&mut self, sessions: Vec<i64>) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if !ensemble.serving || sessions.is_empty() {
            return;
        }
        if let Some(leader) = ensemble.leader_id() {
            ensemble.send(leader, Wire::Touch { sessions });
        }
    }

    /// A version up to `zxid` was sent to the cores: the leader forgets its proposals up to
    /// it.
    pub(super) fn quorum_published(&mut self, zxid: Zxid) {
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.proposed = ensemble.proposed.split_off(&(zxid + 1));
        }
    }

    /// A leader proposes a prepped transaction: the peer assigns its zxid, the pending tree
    /// takes it at once. `origin` is the learner and request id to tell (`Proposed`).
    pub(super) fn propose(
        &mut self,
        txn: &Txn,
        origin: Option<(ServerId, u64)>,
    ) -> Result<(i64, TxnResult), RejectReason> {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return Err(RejectReason::NotLeader { leader: None });
        };
        let now = ensemble.now_ms();
        let time_ms = wall_clock_ms();
        let mut actions = ensemble.peer.step(
            now,
            Input::Write {
                txn: txn.clone(),
                time_ms,
            },
        );
        let own = actions
            .iter()
            .position(|action| matches!(action, Action::Append(_)));
        let record = match own.map(|index| actions.remove(index)) {
            Some(Action::Append(record)) => record,
            _ => {
                let reason = actions
                    .iter()
                    .find_map(|action| match action {
                        Action::WriteRejected(reason) => Some(*reason),
                        _ => None,
                    })
                    .unwrap_or(RejectReason::Busy);
                self.perform(actions);
                return Err(reason);
            }
        };
        let zxid = record.zxid;
        // ZooKeeper's proposal sizes (mntr zk_last/min/max_proposal_size) are the serialized
        // transaction; ours is the record as logged and sent: header and encoded transaction.
        let mut payload = crate::jute::codec::Writer::new();
        crate::txnlog::format::encode_txn(&mut payload, &record.txn);
        self.stats.quorum.record_proposal_bytes(
            (crate::txnlog::format::RECORD_HEADER_BYTES + payload.len()) as i64,
        );
        let result = self.apply_txn(zxid, record.time_ms, &record.txn);
        if let Some(ensemble) = self.ensemble.as_mut() {
            if let Some((to, id)) = origin {
                ensemble.send(to, Wire::Proposed { id, zxid });
            }
            ensemble.proposed.insert(zxid, record.clone());
        }
        self.records.push(record);
        self.perform(actions);
        Ok((zxid, result))
    }

    /// Performs the peer's actions, in order.
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.perform_one(action);
        }
        self.after_actions();
    }

    fn perform_one(&mut self, action: Action) {
        match action {
            Action::Send { to, message } => {
                if let Message::Link { packet, .. } = &message {
                    match packet {
                        Packet::Diff { zxid } => {
                            info!("Sending DIFF to server {to} after zxid {zxid:#x}")
                        }
                        Packet::Trunc { zxid } => {
                            info!("Sending TRUNC to server {to} back to zxid {zxid:#x}")
                        }
                        _ => {}
                    }
                }
                if let Some(ensemble) = self.ensemble.as_mut() {
                    ensemble.send(to, Wire::Zab(message));
                }
            }
            Action::SendSnapshot {
                to,
                conn,
                seq,
                zxid,
            } => self.send_snapshot(to, conn, seq, zxid),
            Action::Append(record) => {
                if let Some(ensemble) = self.ensemble.as_mut() {
                    ensemble.unapplied.insert(record.zxid, record.clone());
                }
                self.records.push(record);
            }
            Action::TruncateLog { zxid } => self.truncate_log(zxid),
            Action::InstallSnapshot { zxid, payload } => self.install_snapshot(zxid, &payload),
            Action::SaveEpochs(epochs) => {
                let saved = match self.ensemble.as_ref() {
                    Some(ensemble) => ensemble.disk.save_epochs(&epochs),
                    None => Ok(()),
                };
                if let Err(reason) = saved {
                    self.log_failed(format!("saving the epochs {epochs:?} failed: {reason}"));
                }
            }
            Action::CommitUpTo(zxid) => self.commit_up_to(zxid),
            Action::RoleChanged(role) => self.role_changed(role),
            Action::WriteRejected(_) => {}
        }
    }

    /// After each step: serve or stop serving, and refresh the figures `mntr` reports.
    fn after_actions(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let serving = ensemble.peer.is_serving();
        if let Some(figures) = ensemble.peer.leader_figures() {
            let quorum = &self.stats.quorum;
            quorum.learners.store(figures.learners, Ordering::Relaxed);
            quorum
                .synced_followers
                .store(figures.synced_followers, Ordering::Relaxed);
            quorum
                .synced_observers
                .store(figures.synced_observers, Ordering::Relaxed);
            quorum
                .pending_syncs
                .store(ensemble.pending_syncs.len(), Ordering::Relaxed);
        }
        if serving == ensemble.serving {
            return;
        }
        if serving {
            ensemble.serving = true;
            let role = ensemble.role;
            let mode = match role {
                Some(Role::Leading { .. }) => crate::metrics::ServerMode::Leader,
                Some(Role::Observing { .. }) => crate::metrics::ServerMode::Observer,
                _ => crate::metrics::ServerMode::Follower,
            };
            self.stats.quorum.set_mode(mode);
            // As ZooKeeper's lastProcessedZxid after synchronisation, the zxid reported shows
            // the new epoch even before its first transaction.
            let epoch_start = crate::zab::make_zxid(ensemble.peer.epochs().current_epoch, 0);
            self.stats
                .last_zxid
                .fetch_max(epoch_start.max(self.tree.zxid), Ordering::Relaxed);
            if let Some(since) = ensemble.looking_since.take() {
                self.stats
                    .quorum
                    .record_election(since.elapsed().as_millis() as u64);
            }
            if let Some(Role::Leading { .. }) = role {
                self.stats
                    .quorum
                    .leader_started_ms
                    .store(wall_clock_ms(), Ordering::Relaxed);
                // A new leader gives every session a full timeout from now, as ZooKeeper's
                // leader does when it starts its session tracker; owners are unknown until
                // each session's server speaks for it.
                ensemble.owners.clear();
                let now = self.monotonic_ms();
                let ids: Vec<i64> = self.sessions.iter().map(|session| session.id).collect();
                for id in ids {
                    self.sessions.touch(id, now);
                }
            }
            info!(
                "serving clients as {:?} at zxid {:#x}",
                mode, self.tree.zxid
            );
        } else {
            self.stop_serving("this server lost its leader or quorum");
        }
    }

    /// Leaves the serving state: every client connection closes, pending forwarded requests
    /// are forgotten, and a leader drops what it applied but did not publish.
    fn stop_serving(&mut self, reason: &'static str) {
        // What is committed goes out first; only what is not is dropped.
        self.release();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let was_serving = std::mem::replace(&mut ensemble.serving, false);
        if was_serving {
            ensemble.looking_since = Some(Instant::now());
        }
        self.stats
            .quorum
            .leader_started_ms
            .store(0, Ordering::Relaxed);
        ensemble.forwarded.clear();
        ensemble.origins.clear();
        ensemble.pending_syncs.clear();
        ensemble.held.clear();
        self.drop_held();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        // Everything applied to the pending tree beyond what the cores were sent is dropped;
        // its records are logged, so they wait with the other uncommitted ones.
        let was_leading = matches!(ensemble.role, Some(Role::Leading { .. }));
        let proposed = std::mem::take(&mut ensemble.proposed);
        let published_zxid = self.published.zxid;
        for (zxid, record) in proposed {
            if zxid > published_zxid {
                ensemble.unapplied.insert(zxid, record);
            }
        }
        if was_leading && self.tree.zxid > published_zxid {
            self.tree = (*self.published).clone();
            self.recent_records
                .retain(|record| record.zxid <= published_zxid);
            self.waiting.clear();
            self.steps.clear();
            self.drop_uncut();
            self.session_changes.clear();
            for queue in &mut self.replies {
                queue.clear();
            }
        }
        self.stats
            .quorum
            .set_mode(crate::metrics::ServerMode::Looking);
        if was_serving {
            info!("stopped serving clients: {reason}");
            for sender in &self.cores {
                let _ = sender.try_send(CoreBatch {
                    steps: Arc::new(Vec::new()),
                    replies: vec![(0, CoreReply::CloseAll { reason })],
                });
            }
        }
    }

    fn role_changed(&mut self, role: Role) {
        info!("quorum role: {role:?}");
        let leader = match role {
            Role::Following { leader, .. } | Role::Observing { leader, .. } => leader,
            Role::Leading { .. } => self.ensemble.as_ref().map_or(0, |e| e.me),
            Role::Looking => 0,
        };
        self.stats.quorum.leader_id.store(leader, Ordering::Relaxed);
        // Whatever the new role, what was served under the old one ends.
        self.stop_serving("the quorum role changed");
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.role = Some(role);
        }
    }

    /// Everything up to `zxid` is committed: apply what is not applied yet, release what
    /// waits for it, and answer the syncs that wait for it.
    fn commit_up_to(&mut self, zxid: Zxid) {
        loop {
            let Some(ensemble) = self.ensemble.as_mut() else {
                return;
            };
            let Some(entry) = ensemble.unapplied.first_entry() else {
                break;
            };
            if *entry.key() > zxid {
                break;
            }
            let record = entry.remove();
            if record.zxid <= self.tree.zxid {
                continue;
            }
            let fenced = self.ensemble.as_ref().is_some_and(|ensemble| {
                ensemble
                    .origins
                    .get(&record.zxid)
                    .and_then(|id| ensemble.forwarded.get(id))
                    .is_some_and(|pending| matches!(pending, Pending::Request { fenced: true, .. }))
            });
            if fenced {
                self.cut_step();
            }
            let result = self.apply_txn(record.zxid, record.time_ms, &record.txn);
            self.after_committed(&record, &result);
        }
        let leading = matches!(
            self.ensemble.as_ref().and_then(|e| e.role),
            Some(Role::Leading { .. })
        );
        // A learner's tree holds only committed transactions; a leader's pending tree runs
        // ahead, and its batches are released up to the commit.
        let release = if leading { zxid } else { self.tree.zxid };
        self.durable_zxid = self.durable_zxid.max(release);
        if let Some(ensemble) = self.ensemble.as_mut() {
            let mut answered = Vec::new();
            ensemble.pending_syncs.retain(|(to, id, wait)| {
                if *wait <= zxid {
                    answered.push((*to, *id));
                    false
                } else {
                    true
                }
            });
            for (to, id) in answered {
                ensemble.send(to, Wire::Synced { id, zxid });
            }
        }
    }

    /// A committed transaction was applied on a learner: keep the session table in step and
    /// answer the client whose request it was.
    fn after_committed(&mut self, record: &LogRecord, result: &TxnResult) {
        let now = self.monotonic_ms();
        let pending = self.ensemble.as_mut().and_then(|ensemble| {
            let id = ensemble.origins.remove(&record.zxid)?;
            ensemble.forwarded.remove(&id)
        });
        match &record.txn {
            Txn::CreateSession {
                session_id,
                timeout_ms,
            } => {
                let owner = match &pending {
                    Some(Pending::Connect {
                        conn,
                        session_id: s,
                        ..
                    }) if s == session_id => Some(*conn),
                    _ => None,
                };
                if self.sessions.get(*session_id).is_none() {
                    self.sessions.add(*session_id, *timeout_ms, owner, now);
                }
            }
            Txn::CloseSession { session_id, .. } => {
                if let Some(session) = self.sessions.remove(*session_id) {
                    let asked = matches!(&pending, Some(Pending::Request { .. }));
                    if let (Some(owner), false) = (session.owner, asked) {
                        self.reply(
                            owner,
                            CoreReply::Close {
                                conn_id: owner.conn_id,
                                reason: "session expired",
                            },
                        );
                    }
                }
            }
            _ => {}
        }
        match pending {
            Some(Pending::Connect {
                conn,
                read_only_flag,
                session_id,
                timeout_ms,
            }) => {
                info!(
                    "established session {session_id:#x} with negotiated timeout {timeout_ms} ms"
                );
                let reply = self.connected_reply(conn, session_id, timeout_ms, read_only_flag);
                self.reply(conn, reply);
            }
            Some(Pending::Request {
                conn, xid, request, ..
            }) => {
                let frame = write_reply(xid, record.zxid, &request, result);
                let close = matches!(request, Request::CloseSession)
                    && matches!(record.txn, Txn::CloseSession { .. });
                self.reply(
                    conn,
                    CoreReply::Frame {
                        conn_id: conn.conn_id,
                        frame,
                        close,
                    },
                );
            }
            Some(Pending::Revalidate { conn, .. }) => self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "the leader answered out of protocol",
                },
            ),
            None => {}
        }
    }

    /// Forwards a client's request to the leader; the answer comes when it commits.
    fn forward(&mut self, request: Forwarded, pending: Pending) {
        let conn = pending.conn();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let Some(leader) = ensemble.leader_id() else {
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "not serving: no leader",
                },
            );
            return;
        };
        let id = ensemble.next_forward_id;
        ensemble.next_forward_id += 1;
        if ensemble.send(leader, Wire::Forward { id, request }) {
            ensemble.forwarded.insert(id, pending);
        } else {
            // Nothing will ever answer it: the client learns now (connection loss, as when
            // a learner's link to the leader fails) instead of timing out.
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "the request could not be forwarded to the leader",
                },
            );
        }
    }

    pub(super) fn learner_connect(
        &mut self,
        conn: ConnRef,
        request: ConnectRequest,
        read_only_flag: bool,
        timeout_ms: i32,
    ) {
        let now = self.monotonic_ms();
        if request.session_id == 0 {
            let session_id = self.sessions.next_id();
            self.forward(
                Forwarded::CreateSession {
                    session_id,
                    timeout_ms,
                },
                Pending::Connect {
                    conn,
                    read_only_flag,
                    session_id,
                    timeout_ms,
                },
            );
            return;
        }
        // The password is checked here (every server derives it the same way); the leader
        // then says whether the session is alive and makes this server its owner.
        if let Some(session_timeout) =
            self.resume_here(conn, &request, now, timeout_ms, read_only_flag)
        {
            self.forward(
                Forwarded::Revalidate {
                    session_id: request.session_id,
                    timeout_ms: session_timeout,
                },
                Pending::Revalidate {
                    conn,
                    read_only_flag,
                    session_id: request.session_id,
                },
            );
        }
    }

    pub(super) fn learner_write(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: &[Id],
        fenced: bool,
    ) {
        let now = self.monotonic_ms();
        if !self.sessions.touch(session_id, now) {
            let frame = header_frame(xid, self.tree.zxid, ErrorCode::SessionExpired);
            self.reply(
                conn,
                CoreReply::Frame {
                    conn_id: conn.conn_id,
                    frame,
                    close: false,
                },
            );
            return;
        }
        self.forward(
            Forwarded::Request {
                session_id,
                xid,
                request: request.clone(),
                auth: auth.to_vec(),
            },
            Pending::Request {
                conn,
                xid,
                request,
                fenced,
            },
        );
    }

    /// A message from another server.
    pub(super) fn on_quorum_message(&mut self, from: ServerId, message: Wire) {
        match message {
            Wire::Zab(message) => {
                if self.ensemble.as_ref().is_some_and(|e| !e.serving) {
                    tracing::debug!(target: "ringkeeper::election", "from {from}: {message:?}");
                }
                self.step_peer(Input::Message { from, message })
            }
            Wire::Forward { id, request } => self.leader_forwarded(from, id, request),
            Wire::Touch { sessions } => {
                if self.quorum_role_for_clients() == Some(true) {
                    let now = self.monotonic_ms();
                    for session in sessions {
                        self.sessions.touch(session, now);
                    }
                }
            }
            Wire::Proposed { id, zxid } => {
                if let Some(ensemble) = self.ensemble.as_mut() {
                    if ensemble.leader_id() == Some(from) && ensemble.forwarded.contains_key(&id) {
                        ensemble.origins.insert(zxid, id);
                    }
                }
            }
            Wire::Rejected { id } => {
                let pending = self
                    .ensemble
                    .as_mut()
                    .and_then(|ensemble| ensemble.forwarded.remove(&id));
                if let Some(pending) = pending {
                    let conn = pending.conn();
                    self.reply(
                        conn,
                        CoreReply::Close {
                            conn_id: conn.conn_id,
                            reason: "the leader did not take the request",
                        },
                    );
                }
            }
            Wire::Synced { id, .. } => {
                let pending = self
                    .ensemble
                    .as_mut()
                    .and_then(|ensemble| ensemble.forwarded.remove(&id));
                if let Some(Pending::Request {
                    conn,
                    xid,
                    request: Request::Sync(sync),
                    ..
                }) = pending
                {
                    let frame = record_frame(
                        xid,
                        self.tree.zxid,
                        &SyncResponse {
                            path: sync.path.clone(),
                        },
                    );
                    self.reply(
                        conn,
                        CoreReply::Frame {
                            conn_id: conn.conn_id,
                            frame,
                            close: false,
                        },
                    );
                }
            }
            Wire::Revalidated {
                id,
                valid,
                timeout_ms,
            } => {
                let pending = self
                    .ensemble
                    .as_mut()
                    .and_then(|ensemble| ensemble.forwarded.remove(&id));
                if let Some(Pending::Revalidate {
                    conn,
                    read_only_flag,
                    session_id,
                }) = pending
                {
                    if valid {
                        let reply =
                            self.connected_reply(conn, session_id, timeout_ms, read_only_flag);
                        self.reply(conn, reply);
                    } else {
                        info!("the leader says session {session_id:#x} is gone");
                        self.sessions.detach(session_id, conn);
                        let reply = refused_reply(conn, read_only_flag);
                        self.reply(conn, reply);
                    }
                }
            }
        }
    }

    /// The leader takes a learner's forwarded request.
    pub(super) fn leader_forwarded(&mut self, from: ServerId, id: u64, request: Forwarded) {
        if self.quorum_role_for_clients() != Some(true) {
            if let Some(ensemble) = self.ensemble.as_mut() {
                ensemble.send(from, Wire::Rejected { id });
            }
            return;
        }
        // A full window holds the request back, in order with every other proposal; a
        // revalidation proposes nothing and is answered at once.
        if !matches!(request, Forwarded::Revalidate { .. }) && self.must_hold() {
            self.hold(super::admission::Held::Forwarded { from, id, request });
            return;
        }
        let now = self.monotonic_ms();
        let rejected = match request {
            Forwarded::CreateSession {
                session_id,
                timeout_ms,
            } => {
                let txn = Txn::CreateSession {
                    session_id,
                    timeout_ms,
                };
                match self.propose(&txn, Some((from, id))) {
                    Ok(_) => {
                        self.sessions.add(session_id, timeout_ms, None, now);
                        if let Some(ensemble) = self.ensemble.as_mut() {
                            ensemble.owners.insert(session_id, from);
                        }
                        false
                    }
                    Err(_) => true,
                }
            }
            Forwarded::Revalidate {
                session_id,
                timeout_ms,
            } => {
                let valid = self.sessions.touch(session_id, now);
                let timeout_ms = self
                    .sessions
                    .get(session_id)
                    .map_or(timeout_ms, |session| session.timeout_ms);
                if let Some(ensemble) = self.ensemble.as_mut() {
                    if valid {
                        ensemble.owners.insert(session_id, from);
                    }
                    ensemble.send(
                        from,
                        Wire::Revalidated {
                            id,
                            valid,
                            timeout_ms,
                        },
                    );
                }
                false
            }
            Forwarded::Request {
                session_id,
                request,
                auth,
                ..
            } => {
                if let Request::Sync(_) = request {
                    let last = self.tree.zxid;
                    if let Some(ensemble) = self.ensemble.as_mut() {
                        let committed = ensemble.peer.committed_zxid();
                        if last <= committed {
                            ensemble.send(
                                from,
                                Wire::Synced {
                                    id,
                                    zxid: committed,
                                },
                            );
                        } else {
                            ensemble.pending_syncs.push((from, id, last));
                        }
                    }
                    return;
                }
                let txn = if !self.sessions.touch(session_id, now) {
                    Txn::Error {
                        code: ErrorCode::SessionExpired,
                    }
                } else if self.session_moved(session_id, Some(from)) {
                    Txn::Error {
                        code: ErrorCode::SessionMoved,
                    }
                } else {
                    let context = PrepContext {
                        session_id,
                        auth: &auth,
                        extended_types_enabled: self.config.extended_types_enabled,
                        skip_acl: self.config.skip_acl,
                    };
                    prep(&self.tree, &request, &context).unwrap_or_else(|code| Txn::Error { code })
                };
                let closing = matches!(txn, Txn::CloseSession { .. });
                if closing {
                    self.sessions.set_closing(session_id);
                }
                match self.propose(&txn, Some((from, id))) {
                    Ok(_) => {
                        if closing {
                            self.sessions.remove(session_id);
                            info!("closed session {session_id:#x} at the client's request");
                        }
                        false
                    }
                    Err(_) => true,
                }
            }
        };
        if rejected {
            if let Some(ensemble) = self.ensemble.as_mut() {
                ensemble.send(from, Wire::Rejected { id });
            }
        }
    }

    /// The tree at `zxid`, replayed from the published version and the proposals after it
    /// (None when `zxid` is not between the two).
    fn version_at(&self, zxid: Zxid) -> Option<TreeVersion> {
        let ensemble = self.ensemble.as_ref()?;
        if zxid < self.published.zxid || zxid > self.tree.zxid {
            return None;
        }
        let mut tree = (*self.published).clone();
        let mut triggers = Vec::new();
        for record in ensemble
            .proposed
            .range(self.published.zxid + 1..=zxid)
            .map(|(_, record)| record)
        {
            if tree
                .apply(record.zxid, record.time_ms, &record.txn, &mut triggers)
                .is_err()
            {
                return None;
            }
            triggers.clear();
        }
        (tree.zxid == zxid).then_some(tree)
    }

    /// The leader sends a learner a snapshot of its history through `zxid`.
    fn send_snapshot(&mut self, to: ServerId, conn: u64, seq: u64, zxid: Zxid) {
        let version = if self.tree.zxid == zxid {
            Some(Arc::new(self.tree.clone()))
        } else if self.published.zxid == zxid {
            Some(self.published.clone())
        } else {
            self.waiting
                .iter()
                .flat_map(|sealed| sealed.steps.iter())
                .chain(self.steps.iter())
                .find(|step| step.version.zxid == zxid)
                .map(|step| step.version.clone())
        };
        // Versions are cut per step, not per transaction: a zxid inside a step is rebuilt
        // from the newest published version and the proposals after it, which the leader
        // keeps until they are published.
        let version = version.or_else(|| self.version_at(zxid).map(Arc::new));
        let Some(version) = version else {
            warn!("no tree version at zxid {zxid:#x} to send to server {to}; it will retry");
            return;
        };
        let sessions: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|session| (session.id, session.timeout_ms))
            .collect();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        // Encoded on a thread of its own: the leader's writes go on meanwhile, and whatever
        // else is sent to this learner waits behind the snapshot (its sequence number is
        // before theirs).
        ensemble.held.entry(to).or_insert((0, Vec::new())).0 += 1;
        let disk = ensemble.disk.clone();
        let done = ensemble.encoded.0.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-send".into())
            .spawn(move || {
                let started = Instant::now();
                let message = match disk.encode_snapshot(&version, &sessions) {
                    Ok(payload) => {
                        info!(
                            "sending server {to} a snapshot at zxid {zxid:#x} ({} bytes, encoded in {} ms)",
                            payload.len(),
                            started.elapsed().as_millis()
                        );
                        Some(Wire::Zab(Message::snapshot(conn, seq, zxid, payload)))
                    }
                    Err(reason) => {
                        warn!("encoding a snapshot for server {to} failed: {reason}");
                        None
                    }
                };
                let _ = done.send((to, message));
            });
        if let Err(error) = spawned {
            warn!("could not start a thread to encode a snapshot for server {to}: {error}");
            let _ = ensemble.encoded.0.send((to, None));
        }
    }

    /// A snapshot for a learner is encoded: it goes out, then what waited behind it.
    pub(super) fn quorum_snapshot_encoded(&mut self, to: ServerId, message: Option<Wire>) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let Some((pending, _)) = ensemble.held.get_mut(&to) else {
            return; // the leadership it was for has ended
        };
        if let Some(message) = message {
            ensemble.links.send(to, &message);
        }
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            if let Some((_, queue)) = ensemble.held.remove(&to) {
                for message in queue {
                    ensemble.links.send(to, &message);
                }
            }
        }
    }

    /// TRUNC: the log loses every record above `zxid`, durably, before anything else.
    fn truncate_log(&mut self, zxid: Zxid) {
        self.flush_records();
        self.cut_log(zxid, "truncating", |done| WriterInput::Truncate {
            zxid,
            done,
        });
        info!("log truncated after zxid {zxid:#x} (TRUNC from the leader)");
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.unapplied = {
                let mut kept = std::mem::take(&mut ensemble.unapplied);
                let _ = kept.split_off(&(zxid + 1));
                kept
            };
            ensemble.origins.retain(|origin, _| *origin <= zxid);
        }
        if let Some(ensemble) = self.ensemble.as_ref() {
            if let Err(reason) = ensemble.disk.remove_snapshots_above(zxid) {
                self.log_failed(format!("removing snapshots above zxid {zxid:#x}: {reason}"));
            }
        }
        if self.tree.zxid > zxid {
            // Only after a restart can the tree hold records that were never committed (the
            // whole log is replayed, as ZooKeeper does); rebuild it from the truncated log.
            let reloaded = match self.ensemble.as_ref() {
                Some(ensemble) => ensemble.disk.reload(zxid),
                None => return,
            };
            match reloaded {
                Ok((tree, sessions)) => self.replace_state(tree, sessions),
                Err(reason) => {
                    self.log_failed(format!("reloading the tree after a truncation: {reason}"))
                }
            }
        }
    }

    /// Has the log writer truncate or reset the log, waits until that is durable (a failure
    /// stops the server), then takes the durability reports it made before, capped at `zxid`.
    fn cut_log(
        &mut self,
        zxid: Zxid,
        what: &str,
        command: impl FnOnce(Sender<Result<(), String>>) -> WriterInput,
    ) {
        let Some(log) = self.log.as_ref() else {
            return;
        };
        let (done, result) = crossbeam_channel::bounded(1);
        if log.appends.send(command(done)).is_err() {
            self.log_failed("the log writer stopped".into());
        }
        match result.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => self.log_failed(format!("{what} the log failed: {reason}")),
            Err(_) => self.log_failed("the log writer stopped".into()),
        }
        self.drain_durable_after_cut(zxid);
    }

    /// The writer reports durability of records that a truncation or reset may have just
    /// removed; they were all reported before the writer answered, so take them now, capped.
    fn drain_durable_after_cut(&mut self, cap: Zxid) {
        let mut durable = None;
        if let Some(log) = self.log.as_ref() {
            while let Ok(event) = log.events.try_recv() {
                match event {
                    WriterEvent::Durable { zxid, .. } => {
                        durable = Some(durable.unwrap_or(zxid).max(zxid))
                    }
                    WriterEvent::Failed { reason } => self.log_failed(reason),
                }
            }
        }
        if let Some(zxid) = durable {
            self.quorum_durable(zxid.min(cap));
        }
    }

    /// SNAP: the leader's snapshot replaces this server's state and log. The log is reset
    /// first: a crash in between leaves an older state with no log after it (this server then
    /// just holds less history), never the new snapshot followed by records of the history it
    /// replaced.
    fn install_snapshot(&mut self, zxid: Zxid, payload: &[u8]) {
        self.flush_records();
        self.cut_log(zxid, "resetting", |done| WriterInput::Reset { done });
        let installed = match self.ensemble.as_ref() {
            Some(ensemble) => ensemble.disk.install_snapshot(payload),
            None => return,
        };
        let (tree, sessions) = match installed {
            Ok(state) => state,
            Err(reason) => {
                self.log_failed(format!(
                    "installing the leader's snapshot at zxid {zxid:#x} failed: {reason}"
                ));
            }
        };
        info!(
            "installed the leader's snapshot at zxid {zxid:#x} ({} znodes)",
            tree.node_count()
        );
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.unapplied.clear();
            ensemble.origins.clear();
        }
        self.replace_state(tree, sessions);
    }

    /// Replaces the tree and the session table (after SNAP or a reload); the cores get the
    /// new tree as a step of their next batch.
    fn replace_state(&mut self, tree: TreeVersion, sessions: Vec<(i64, i32)>) {
        self.cancel_rebase();
        let now = self.monotonic_ms();
        let known: Vec<i64> = self.sessions.iter().map(|session| session.id).collect();
        for id in known {
            self.sessions.remove(id);
        }
        for (id, timeout_ms) in sessions {
            self.sessions.add(id, timeout_ms, None, now);
        }
        self.tree = tree;
        self.uncut = true;
        self.durable_zxid = self.durable_zxid.max(self.tree.zxid);
    }
}

#[cfg(test)]
mod clock_tests {
    use super::ZabClock;

    #[test]
    fn the_zab_clock_goes_on_increasing_across_a_restart() {
        // A run of 50 ms, then a restart: every reading of the new run (and so every link
        // connection id the restarted peer derives from it) is above the old run's last.
        let first = ZabClock::start();
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
        while std::time::Instant::now() < deadline {
            std::thread::yield_now(); // the clock must advance: nothing to await
        }
        let last_of_first_run = first.now_ms();
        let second = ZabClock::start();
        assert!(second.now_ms() >= last_of_first_run);
        assert!(
            last_of_first_run >= 50,
            "the clock starts from the wall clock, not from 0"
        );
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(second.now_ms() + 1000 >= wall_ms && second.now_ms() <= wall_ms + 1000);
    }
}
