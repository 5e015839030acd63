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
//! - **Digests** (`digest.enabled`, ZooKeeper's TxnDigest): the leader sends its tree digest
//!   after each txn ([`Wire::TxnDigest`]) ahead of the txn's proposal or inform; a learner
//!   compares it with its own tree's after applying the commit (`check_digest`), counts a
//!   mismatch and logs it once per divergence, and goes on, as DataTree.compareDigest does.
//!
//! Sessions are global and owned by the leader (ZooKeeper's LeaderSessionTracker): a
//! learner creates a session id with its server id in the top byte and forwards
//! createSession; touches are reported to the leader; only the leader expires sessions and
//! reaps containers, through transactions every server applies. A session that reconnects
//! to another server is revalidated by the leader, which records the new owner; a write that
//! reaches the leader from a server that no longer owns its session fails with SessionMoved.
//!
//! Here: the peer, its actions, role changes and commits, for every role. The leader's side
//! is in [`leader`], the learner's in [`learner`], synchronisation (TRUNC, SNAP) in [`sync`].

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::quorum::{Forwarded, QuorumDisk, QuorumLinks, Wire};
use crate::zab::{Action, DurableState, Input, Message, Packet, Peer, Role, ServerId, Zxid};

use super::*;
use crate::pipeline::reply::refused_reply;

mod leader;
mod learner;
mod reconfig;
mod sync;

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
    /// The createSession of a local session being made global (see `local_sessions`):
    /// nothing to answer when it commits.
    Upgrade { conn: ConnRef, session_id: i64 },
    Request {
        conn: ConnRef,
        xid: i32,
        request: Request,
        /// Its step must not hold the write before it (see `Step`).
        fenced: bool,
    },
}

/// From a thread streaming a snapshot to a learner: a [`Wire::SnapChunk`] to send at once,
/// or the end of the stream (the ZAB `Snap` carrying the header; None when it failed).
pub(super) type EncodedSnapshot = (ServerId, Option<Wire>);

impl Pending {
    fn conn(&self) -> ConnRef {
        match self {
            Pending::Connect { conn, .. }
            | Pending::Revalidate { conn, .. }
            | Pending::Upgrade { conn, .. }
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
    /// Snapshots being streamed to learners: the ZAB link, and where the learner's
    /// acknowledgements go (the streaming thread waits on them; dropping the sender stops it).
    transfers: HashMap<ServerId, (u64, Sender<u64>)>,
    pub(super) closed: Receiver<ServerId>,
    clock: ZabClock,
    tick_ms: u64,
    next_tick_ms: u64,
    role: Option<Role>,
    pub(super) serving: bool,
    /// When this server last stopped serving (or started): the election time `mntr` reports
    /// runs from here to serving again.
    looking_since: Option<Instant>,
    /// When the peer last began looking for a leader (None while it has a role): with
    /// `readonlymode.enabled`, the read-only server starts a grace period after it.
    looking_entered: Option<Instant>,
    /// Serving read-only clients without a quorum (ZooKeeper's ReadOnlyZooKeeperServer).
    read_only: bool,
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
    /// The newest of this leader's proposals whose commit went into `proposal_latency`.
    latency_measured_zxid: Zxid,
    /// Syncs forwarded by learners: (learner, request id, zxid to wait for).
    pending_syncs: Vec<(ServerId, u64, Zxid)>,
    /// Learner side: syncs the leader has answered (`Synced`) whose zxid this server has not
    /// applied yet: (zxid, forwarded request id), answered by `commit_up_to` once it has.
    synced_waiting: Vec<(Zxid, u64)>,
    /// The server each session belongs to (ZooKeeper's session owner), for SessionMoved.
    owners: HashMap<i64, ServerId>,
    // Configuration (see `reconfig`).
    /// The configuration in force (QuorumPeer's quorumVerifier).
    active_config: crate::config::dynamic::DynamicConfig,
    /// The newest configuration's version proposed or in force (lastSeenQuorumVerifier).
    last_seen_version: i64,
    /// The leader's configuration, as it sent it before NEWLEADER.
    leader_config: Option<crate::config::dynamic::DynamicConfig>,
    /// Servers a configuration put in force removed, whose links close once the actions of
    /// the step are performed.
    links_to_close: Vec<ServerId>,
    /// The version of the configuration on disk (`dynamicConfigFile`), -1 for none.
    persisted_version: i64,
    /// Where the client port's listeners are (QuorumPeer's myClientAddr): the configured
    /// address at startup, then the one a reconfig moved them to.
    client_address: std::net::SocketAddr,
    // Digests (`digest.enabled`).
    /// The tree digest after each of the newest txns applied here, which a leader sends
    /// ahead of their proposals and informs ([`Wire::TxnDigest`]).
    recent_digests: crate::tree::digest::RecentDigests,
    /// Learner: the leader's digests, compared after each committed txn.
    digest_check: crate::tree::digest::DigestCheck,
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
        let active_config = self.config.quorum.as_ref().map_or(
            crate::config::dynamic::DynamicConfig {
                version: 0,
                servers: Default::default(),
            },
            |quorum| quorum.dynamic(),
        );
        let persisted_version = if self.config.dynamic_config_file.is_some() {
            active_config.version
        } else {
            -1
        };
        let ensemble = Ensemble {
            peer: start.peer,
            me,
            links: start.links,
            disk: start.disk,
            inbound: start.inbound,
            encoded: crossbeam_channel::unbounded(),
            held: HashMap::new(),
            transfers: HashMap::new(),
            closed: start.closed,
            next_tick_ms: clock.now_ms() + start.tick_ms.max(1),
            clock,
            tick_ms: start.tick_ms.max(1),
            role: None,
            serving: false,
            looking_since: Some(Instant::now()),
            looking_entered: Some(Instant::now()),
            read_only: false,
            next_forward_id: 1,
            forwarded: HashMap::new(),
            origins: HashMap::new(),
            unapplied: BTreeMap::new(),
            proposed: BTreeMap::new(),
            latency_measured_zxid: 0,
            pending_syncs: Vec::new(),
            synced_waiting: Vec::new(),
            owners: HashMap::new(),
            last_seen_version: active_config.version,
            active_config,
            leader_config: None,
            links_to_close: Vec::new(),
            persisted_version,
            client_address: self.config.client_address,
            recent_digests: Default::default(),
            digest_check: Default::default(),
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

    /// Whether this member is serving read-only clients now (see `local_sessions`).
    pub(super) fn read_only_serving(&self) -> bool {
        self.ensemble
            .as_ref()
            .is_some_and(|ensemble| ensemble.read_only)
    }

    /// QuorumPeer's LOOKING case: with `readonlymode.enabled`, a member still looking for a
    /// leader `read_only_grace_ms` after it began starts its read-only server.
    fn maybe_serve_read_only(&mut self) {
        if !self.config.read_only_mode_enabled {
            return;
        }
        let grace_ms = crate::pipeline::local::read_only_grace_ms(self.config.tick_time_ms as u64);
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let looking = matches!(ensemble.role, None | Some(Role::Looking));
        let due = ensemble
            .looking_entered
            .is_some_and(|since| since.elapsed().as_millis() as u64 >= grace_ms);
        if ensemble.serving || ensemble.read_only || !looking || !due {
            return;
        }
        ensemble.read_only = true;
        self.stats
            .quorum
            .set_mode(crate::metrics::ServerMode::ReadOnly);
        info!(
            "read-only server started: no quorum after {grace_ms} ms, serving read-only \
             clients at zxid {:#x}",
            self.published.zxid
        );
    }

    /// The read-only server ends when the peer stops looking (ZooKeeper shuts its
    /// ReadOnlyZooKeeperServer down as lookForLeader returns): every connection closes and
    /// the local sessions it gave are gone.
    fn end_read_only(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if !std::mem::replace(&mut ensemble.read_only, false) {
            return;
        }
        let reason = "the read-only server stopped: a leader was found";
        info!("{reason}");
        self.drop_local_sessions();
        self.stats
            .quorum
            .set_mode(crate::metrics::ServerMode::Looking);
        for sender in self.cores.iter() {
            let _ = sender.try_send(CoreBatch {
                steps: Arc::new(Vec::new()),
                replies: vec![(0, CoreReply::CloseAll { reason })],
            });
        }
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
        self.maybe_serve_read_only();
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

    /// Performs the peer's actions, in order.
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.perform_one(action);
        }
        self.close_removed_links();
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
                        Packet::NewLeader { epoch, .. } => {
                            self.send_config_before_new_leader(to, *epoch)
                        }
                        Packet::Proposal(record) | Packet::Inform(record) => {
                            self.send_digest_of(to, record.zxid)
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
                .fetch_max(epoch_start.max(self.batch.zxid()), Ordering::Relaxed);
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
                mode,
                self.batch.zxid()
            );
            self.install_config_on_serving();
        } else {
            self.stop_serving("this server lost its leader or quorum");
        }
    }

    /// Shutdown of a member: what is not committed now is not answered (the clients see
    /// their connections close); what is, is published.
    pub(super) fn quorum_finish(&mut self) {
        let Some(ensemble) = self.ensemble.take() else {
            return;
        };
        if let Some(log) = self.log.take() {
            let _ = log.appends.send(WriterInput::Shutdown);
        }
        ensemble.shutdown();
        self.release();
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
        ensemble.synced_waiting.clear();
        ensemble.held.clear();
        ensemble.transfers.clear();
        self.drop_held();
        // Local sessions live as long as the server that made them serves.
        if !self.read_only_serving() {
            self.drop_local_sessions();
        }
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
        if was_leading && self.batch.zxid() > published_zxid {
            self.batch.abandon((*self.published).clone());
            self.recent_records
                .retain(|record| record.zxid <= published_zxid);
            self.waiting.clear();
        }
        if !self.read_only_serving() {
            self.stats
                .quorum
                .set_mode(crate::metrics::ServerMode::Looking);
        }
        if was_serving {
            info!("stopped serving clients: {reason}");
            for sender in self.cores.iter() {
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
        let looking = matches!(role, Role::Looking);
        if !looking {
            self.end_read_only();
        }
        // Whatever the new role, what was served under the old one ends.
        self.stop_serving("the quorum role changed");
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.role = Some(role);
            if !looking {
                ensemble.looking_entered = None;
            } else if ensemble.looking_entered.is_none() {
                ensemble.looking_entered = Some(Instant::now());
            }
        }
    }

    /// A leader's proposals up to `zxid` are committed: ms from each proposal (its record's
    /// time) to now go into `proposal_latency`, once per proposal.
    fn measure_proposal_latency(&mut self, zxid: Zxid) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let from = ensemble.latency_measured_zxid.saturating_add(1);
        if zxid < from {
            return;
        }
        let now_ms = wall_clock_ms();
        for record in ensemble.proposed.range(from..=zxid).map(|entry| entry.1) {
            let latency_ms = now_ms.saturating_sub(record.time_ms).max(0);
            self.stats.proposal_latency_ms.record(latency_ms as u64);
        }
        ensemble.latency_measured_zxid = zxid;
    }

    /// Everything up to `zxid` is committed: apply what is not applied yet, release what
    /// waits for it, and answer the syncs that wait for it.
    fn commit_up_to(&mut self, zxid: Zxid) {
        self.activate_committed_configs(zxid);
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
            if record.zxid <= self.batch.zxid() {
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
                self.batch.cut_step();
            }
            let result = self.apply_txn(record.zxid, record.time_ms, &record.txn);
            self.check_digest(record.zxid);
            self.after_committed(&record, &result);
        }
        let leading = matches!(
            self.ensemble.as_ref().and_then(|e| e.role),
            Some(Role::Leading { .. })
        );
        // A learner's tree holds only committed transactions; a leader's pending tree runs
        // ahead, and its batches are released up to the commit.
        let release = if leading { zxid } else { self.batch.zxid() };
        if leading {
            self.measure_proposal_latency(zxid);
        }
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
        // Learner: the syncs whose zxid is now applied are answered, after (in the same batch
        // as, or a later one than) the replies to the writes committed before them.
        let applied = self.batch.zxid();
        let ready: Vec<u64> = match self.ensemble.as_mut() {
            Some(ensemble) if !ensemble.synced_waiting.is_empty() => {
                let mut ready = Vec::new();
                ensemble.synced_waiting.retain(|(wait, id)| {
                    if *wait <= applied {
                        ready.push(*id);
                        false
                    } else {
                        true
                    }
                });
                ready
            }
            _ => Vec::new(),
        };
        for id in ready {
            self.answer_sync(id);
        }
    }

    /// Leader: the tree digest after txn `zxid` goes to learner `to` ahead of the txn's
    /// proposal or inform (Leader.propose serializes the request's TxnDigest with the txn),
    /// when this server applied it recently and `digest.enabled`.
    fn send_digest_of(&mut self, to: ServerId, zxid: Zxid) {
        if !self.config.digest_enabled {
            return;
        }
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if let Some(digest) = ensemble.recent_digests.get(zxid) {
            ensemble.send(
                to,
                Wire::TxnDigest {
                    zxid,
                    version: crate::tree::digest::DIGEST_VERSION,
                    digest,
                },
            );
        }
    }

    /// Txn `zxid` was applied at its commit: its digest is kept (to send, should this server
    /// lead), and compared with the leader's (DataTree.processTxn → compareDigest). A
    /// mismatch is counted and reported at ERROR once per divergence, and the server goes on,
    /// as ZooKeeper's does: the digest only detects, the logs and a restart (which syncs the
    /// tree again from the leader) are the operator's.
    fn check_digest(&mut self, zxid: Zxid) {
        use crate::tree::digest::DigestOutcome;
        let tree_digest = self.batch.tree().digest();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        ensemble.recent_digests.record(zxid, tree_digest);
        match ensemble.digest_check.applied(zxid, tree_digest) {
            DigestOutcome::NotCompared => {}
            DigestOutcome::Matched => {
                self.stats.digests_compared.fetch_add(1, Ordering::Relaxed);
            }
            DigestOutcome::Mismatched {
                expected,
                actual,
                first,
            } => {
                self.stats.digests_compared.fetch_add(1, Ordering::Relaxed);
                self.stats.digest_mismatches.fetch_add(1, Ordering::Relaxed);
                if first {
                    error!(
                        "Digest mismatch on txn {zxid:#x}: the leader's tree digest after it \
                         is {expected}, this server's is {actual}; this server's tree differs \
                         from the leader's (counted in zk_digest_mismatches_count, reported \
                         again only after the digests matched once more)"
                    );
                } else {
                    tracing::debug!("digest mismatch on txn {zxid:#x}: {expected} != {actual}");
                }
            }
        }
    }

    /// Answers the client of forwarded sync `id` (on a learner), if it is still waiting.
    fn answer_sync(&mut self, id: u64) {
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
                self.batch.zxid(),
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
                    })
                    | Some(Pending::Upgrade {
                        conn,
                        session_id: s,
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
            Some(Pending::Upgrade { session_id, .. }) => {
                info!("local session {session_id:#x} is global now");
            }
            None => {}
        }
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
            Wire::Config { version, text } => self.config_from_leader(from, version, &text),
            Wire::TxnDigest {
                zxid,
                version,
                digest,
            } => {
                if let (true, Some(ensemble)) = (self.config.digest_enabled, self.ensemble.as_mut())
                {
                    ensemble
                        .digest_check
                        .expect(zxid, crate::tree::digest::TxnDigest { version, digest });
                }
            }
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
            Wire::Synced { id, zxid } => {
                // `zxid` is the leader's commit point, at or above every write it had taken
                // before the sync, this session's forwarded writes included. The leader sends
                // Synced from its own commit step, which runs before the peer's COMMIT
                // packets of that round are sent, so it can arrive here before the COMMIT
                // of the writes it follows. Answered at once, the sync reply would overtake
                // the replies to this session's earlier writes (Kazoo: "xids do not match")
                // and the read pipelined after it would miss them. ZooKeeper's leader queues
                // the SYNC reply behind its COMMITs (Leader.processSync / sendSync) and the
                // follower's CommitProcessor keeps each session's order; here the reply waits
                // until this server has applied `zxid` (commit_up_to answers it then).
                let applied = self.batch.zxid();
                if zxid <= applied {
                    self.answer_sync(id);
                } else if let Some(ensemble) = self.ensemble.as_mut() {
                    if ensemble.forwarded.contains_key(&id) {
                        ensemble.synced_waiting.push((zxid, id));
                    }
                }
            }
            Wire::SnapChunk {
                conn,
                zxid,
                offset,
                bytes,
            } => self.snapshot_chunk_received(from, conn, zxid, offset, &bytes),
            Wire::SnapAck { conn, offset } => {
                if let Some(ensemble) = self.ensemble.as_mut() {
                    if let Some((transfer_conn, credits)) = ensemble.transfers.get(&from) {
                        if *transfer_conn == conn {
                            let _ = credits.send(offset);
                        }
                    }
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
