//! Deterministic simulation of a ZAB ensemble (STYLE.md habit 5).
//!
//! One thread, one seeded RNG of its own (xorshift64*), a simulated clock and an event queue
//! ordered by (time, insertion number): the same seed replays exactly. The simulator drives
//! `zab::Peer`s the way the `quorum/` shell will, and performs their actions against:
//!
//! - a **network** that drops, delays, duplicates and reorders messages and partitions
//!   servers (symmetric or one-way), per link mostly FIFO as TCP is;
//! - a **log per server** with a live and a durable list: appends become durable after a
//!   random delay (group commit: everything appended so far), a crash keeps only the durable
//!   prefix; truncation, snapshot installation and epochs are durable at once (the contract
//!   of `zab::Action`);
//! - **crashes and restarts**: a restarted server gets back only what was durable;
//! - **client writes** submitted to whichever server is a broadcasting leader.
//!
//! After every step it checks the invariants of `zab` (module doc there): one leader per
//! epoch; committed prefixes agree (all servers' committed sequences are prefixes of one
//! chain); every committed record of epoch e is the one e's leader proposed; nothing
//! committed is truncated away or missing from a new leader's history; committed zxids
//! strictly increase per server and along the chain (primary order). Then the network heals,
//! crashes stop, and a write submitted after healing must commit within `liveness_bound_ms`.
//!
//! **Reconfiguration** (`Options::reconfigs`): spare servers run from the start as joiners
//! (a configuration listing the members and themselves); now and then the leader is given a
//! reconfig (ZooKeeper's incremental form, checked as PrepRequestProcessor does: none in
//! progress, a synced quorum of the new voters, at least two voters) that adds a spare as a
//! participant or an observer, removes a member, or changes a member's role. A server keeps
//! the configuration its peer has in force as its "dynamic file" for restarts; a server a
//! reconfig removed is restarted by the "operator" as a joiner again. The checker adds: every
//! committed record was durable, when it first committed, on a quorum of each configuration
//! in force when it was proposed (the one before it in the committed chain, and every
//! reconfig committed with it up to and including it).
//!
//! Not modelled: message corruption (the wire encoding has checksums of its own, later),
//! disk faults (covered by `storage::sim`), clock skew between servers (every server sees
//! the same `now`).

// The simulator is test machinery: its own bookkeeping failing is a bug to stop at, with
// the seed, not input to handle.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::tree::Txn;
use crate::txnlog::format::LogRecord;
use crate::zab::{
    epoch_of, Action, Config, DurableState, Epoch, Epochs, Input, Membership, Message, Packet,
    Peer, Role, ServerId, Zxid,
};

/// xorshift64* seeded through splitmix64, so that nearby seeds give unrelated streams.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    pub fn permille(&mut self, permille: u64) -> bool {
        self.next_u64() % 1000 < permille
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub participants: usize,
    pub observers: usize,
    /// Simulated time with faults; afterwards the network heals and crashes stop.
    pub chaos_ms: u64,
    /// After healing, a write must commit within this time.
    pub liveness_bound_ms: u64,
    /// Print every event and action (to replay a failing seed).
    pub trace: bool,
    /// Drive reconfigs during the chaos (see the module doc).
    pub reconfigs: bool,
    /// Servers outside the initial configuration, running as joiners (with `reconfigs`).
    pub spares: usize,
    /// How many participants (the highest ids, which would win ties) never lead
    /// (`Config::may_lead = false`) and acknowledge each proposal
    /// (`Config::ack_each_proposal`), as a ringkeeper follower of a ZooKeeper ensemble.
    pub never_leaders: usize,
}

impl Options {
    pub fn new(seed: u64, participants: usize, observers: usize) -> Self {
        Options {
            seed,
            participants,
            observers,
            chaos_ms: 4_000,
            liveness_bound_ms: 6_000,
            trace: false,
            reconfigs: false,
            spares: 0,
            never_leaders: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub seed: u64,
    pub step: u64,
    pub now_ms: u64,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {} at {} ms: {} (replay: sim::run(Options {{ trace: true, ..Options::new({}, ..) }}))",
            self.seed, self.step, self.now_ms, self.message, self.seed
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub steps: u64,
    pub committed_records: usize,
    pub leaders: usize,
    pub writes_submitted: u64,
    pub writes_acknowledged: u64,
    pub crashes: u64,
    pub snapshots: u64,
    pub truncations: u64,
    pub rollovers: u64,
    pub time_to_commit_after_heal_ms: u64,
    /// Reconfigs submitted to a leader, and those committed.
    pub reconfigs_submitted: u64,
    pub reconfigs_committed: u64,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: ServerId,
        to: ServerId,
        message: Message,
    },
    Tick(ServerId),
    Durable {
        server: ServerId,
        incarnation: u64,
    },
    Crash,
    /// The shell's transport saw the connection from `from` close (a crash, or a spurious
    /// reset of a live connection).
    Disconnected {
        to: ServerId,
        from: ServerId,
    },
    Restart(ServerId),
    Write,
    Reconfig,
    Partition,
    Heal,
    /// End of the run: the liveness deadline.
    End,
}

struct Server {
    config: Config,
    peer: Option<Peer>,
    incarnation: u64,
    /// The live log: every record this server's history holds, from the first zxid (a
    /// snapshot here is the full list of records it stands for).
    log: Vec<LogRecord>,
    durable_len: usize,
    durable_pending: bool,
    epochs: Epochs,
    /// Records of `log` committed in this incarnation.
    applied: usize,
    last_commit: Zxid,
    role: Option<Role>,
}

/// A bug to plant in the simulated ensemble, to show the checker catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    None,
    /// Followers commit every proposal as soon as they receive it, without the leader's
    /// quorum (see `tests/zab_sim.rs`).
    FollowerCommitsOnReceipt,
}

/// [pure] Zab's primary integrity as a leader of `epoch` first leads (its epoch quorum just
/// reached): its `log` must begin with every record of `chain` (what was committed so far)
/// from an epoch before `epoch`. Records committed in a later epoch do not count: a leader
/// can count promises of `epoch` that its quorum made before promising a later one to another
/// leader (late or stale ACKEPOCHs; ZooKeeper's Leader.waitForEpochAck counts them too); it
/// serves and commits only once a quorum acknowledges its NEWLEADER, and a commit of it that
/// disagreed with what was committed would fail the commit checks. Found by the 7+1 sweep,
/// seed 170801: server 6 reached epoch 7's quorum with acks from 3 and 4 sent before they
/// followed server 7 in epoch 8, whose first record was already committed.
pub fn lacks_committed_records(log: &[LogRecord], chain: &[LogRecord], epoch: Epoch) -> bool {
    let before = chain.partition_point(|record| epoch_of(record.zxid) < epoch);
    log.len() < before || log[..before] != chain[..before]
}

pub struct Sim {
    options: Options,
    rng: Rng,
    now_ms: u64,
    step: u64,
    next_event: u64,
    queue: BTreeMap<(u64, u64), Event>,
    servers: BTreeMap<ServerId, Server>,
    // network
    drop_permille: u64,
    duplicate_permille: u64,
    reorder_permille: u64,
    delay_max_ms: u64,
    blocked: BTreeSet<(ServerId, ServerId)>,
    link_last_ms: BTreeMap<(ServerId, ServerId), u64>,
    healed_at_ms: Option<u64>,
    // checker state
    chain: Vec<LogRecord>,
    /// The configuration in force after `chain`.
    chain_membership: Membership,
    proposed: BTreeMap<Zxid, LogRecord>,
    leaders: BTreeMap<Epoch, ServerId>,
    snapshots: Vec<Vec<LogRecord>>,
    next_write: u64,
    first_commit_after_heal_ms: Option<u64>,
    planted: PlantedBug,
    report: Report,
}

pub fn run(options: Options) -> Result<Report, Violation> {
    Sim::new(options, PlantedBug::None).run()
}

pub fn run_with_bug(options: Options, bug: PlantedBug) -> Result<Report, Violation> {
    Sim::new(options, bug).run()
}

impl Sim {
    pub fn new(options: Options, planted: PlantedBug) -> Self {
        let mut rng = Rng::new(options.seed);
        let participants: Vec<ServerId> = (1..=options.participants as u64).collect();
        let observers: Vec<ServerId> = (0..options.observers as u64)
            .map(|i| options.participants as u64 + 1 + i)
            .collect();
        // Small windows and counters so that SNAP and rollovers happen in short runs.
        let history_limit = rng.range(4, 64) as usize;
        let counter_max = if rng.permille(300) {
            rng.range(3, 40) as u32
        } else {
            u32::MAX - 1
        };
        let outstanding = rng.range(2, 50) as usize;
        let spares: Vec<ServerId> = if options.reconfigs {
            let first = (options.participants + options.observers) as u64 + 1;
            (first..first + options.spares as u64).collect()
        } else {
            Vec::new()
        };
        let initial = Membership {
            version: 0,
            participants: participants.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
        };
        let mut servers = BTreeMap::new();
        for &id in participants
            .iter()
            .chain(observers.iter())
            .chain(spares.iter())
        {
            let mut config = Config::new(id, &participants, &observers);
            if spares.contains(&id) {
                // A joiner: the members and itself.
                if rng.permille(500) {
                    config.participants.insert(id);
                } else {
                    config.observers.insert(id);
                }
            }
            config.tick_ms = 50;
            config.init_limit_ticks = 10;
            config.sync_limit_ticks = 5;
            config.finalize_wait_ms = 20;
            config.history_limit = history_limit;
            config.counter_max = counter_max;
            config.outstanding_proposals_max = outstanding;
            let never_leader_from = options.participants.saturating_sub(options.never_leaders);
            if participants.iter().position(|&p| p == id) >= Some(never_leader_from) {
                config.may_lead = false;
                config.ack_each_proposal = true;
            }
            servers.insert(
                id,
                Server {
                    config,
                    peer: None,
                    incarnation: 0,
                    log: Vec::new(),
                    durable_len: 0,
                    durable_pending: false,
                    epochs: Epochs::default(),
                    applied: 0,
                    last_commit: 0,
                    role: None,
                },
            );
        }
        let drop_permille = rng.range(0, 60);
        let duplicate_permille = rng.range(0, 40);
        let reorder_permille = rng.range(0, 20);
        let delay_max_ms = rng.range(2, 40);
        Sim {
            options,
            rng,
            now_ms: 0,
            step: 0,
            next_event: 0,
            queue: BTreeMap::new(),
            servers,
            drop_permille,
            duplicate_permille,
            reorder_permille,
            delay_max_ms,
            blocked: BTreeSet::new(),
            link_last_ms: BTreeMap::new(),
            healed_at_ms: None,
            chain: Vec::new(),
            chain_membership: initial,
            proposed: BTreeMap::new(),
            leaders: BTreeMap::new(),
            snapshots: Vec::new(),
            next_write: 0,
            first_commit_after_heal_ms: None,
            planted,
            report: Report::default(),
        }
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.next_event += 1;
        self.queue.insert((at_ms, self.next_event), event);
    }

    fn violation(&self, message: String) -> Violation {
        Violation {
            seed: self.options.seed,
            step: self.step,
            now_ms: self.now_ms,
            message,
        }
    }

    pub fn run(mut self) -> Result<Report, Violation> {
        let ids: Vec<ServerId> = self.servers.keys().copied().collect();
        for &id in &ids {
            let offset = self.rng.range(0, 49);
            self.schedule(offset, Event::Restart(id));
            self.schedule(offset + 1, Event::Tick(id));
        }
        let chaos = self.options.chaos_ms;
        let write_at = self.rng.range(10, 200);
        self.schedule(write_at, Event::Write);
        if self.options.reconfigs {
            let reconfig_at = self.rng.range(100, 600);
            self.schedule(reconfig_at, Event::Reconfig);
        }
        let crash_at = self.rng.range(100, 1000);
        self.schedule(crash_at, Event::Crash);
        let partition_at = self.rng.range(100, 1000);
        self.schedule(partition_at, Event::Partition);
        self.schedule(chaos, Event::Heal);
        self.schedule(chaos + self.options.liveness_bound_ms, Event::End);
        while let Some(((at_ms, _), event)) = self.queue.pop_first() {
            self.now_ms = at_ms;
            self.step += 1;
            if self.options.trace {
                eprintln!("[{} @{}ms] {:?}", self.step, at_ms, event);
            }
            if let Event::End = event {
                break;
            }
            self.handle(event)?;
        }
        self.report.steps = self.step;
        self.report.committed_records = self.chain.len();
        self.report.leaders = self.leaders.len();
        let healed = self.healed_at_ms.unwrap_or(chaos);
        let bound_ms = self.options.liveness_bound_ms;
        let Some(at) = self.first_commit_after_heal_ms else {
            let message = format!(
                "liveness: no write after healing at {healed} ms committed in {bound_ms} ms"
            );
            return Err(self.violation(message));
        };
        self.report.time_to_commit_after_heal_ms = at - healed;
        Ok(self.report)
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { from, to, message } => {
                if self.servers[&to].peer.is_some() {
                    self.input(to, Input::Message { from, message })?;
                }
            }
            Event::Tick(id) => {
                let tick_ms = self.servers[&id].config.tick_ms;
                self.schedule(self.now_ms + tick_ms, Event::Tick(id));
                if self.servers[&id].peer.is_some() {
                    self.input(id, Input::Tick)?;
                }
            }
            Event::Durable {
                server,
                incarnation,
            } => {
                let s = self.servers.get_mut(&server).expect("server");
                if s.incarnation != incarnation || s.peer.is_none() {
                    return Ok(());
                }
                s.durable_pending = false;
                s.durable_len = s.log.len();
                if let Some(last) = s.log.last() {
                    let zxid = last.zxid;
                    self.input(server, Input::Durable(zxid))?;
                }
            }
            Event::Crash => {
                if self.healed_at_ms.is_some() {
                    return Ok(());
                }
                let alive: Vec<ServerId> = self
                    .servers
                    .iter()
                    .filter(|(_, s)| s.peer.is_some())
                    .map(|(&id, _)| id)
                    .collect();
                if !alive.is_empty() {
                    let id = alive[self.rng.range(0, alive.len() as u64 - 1) as usize];
                    let s = self.servers.get_mut(&id).expect("server");
                    s.peer = None;
                    s.incarnation += 1;
                    s.log.truncate(s.durable_len);
                    s.durable_pending = false;
                    s.role = None;
                    self.report.crashes += 1;
                    let down = self.rng.range(20, 1500);
                    self.schedule(self.now_ms + down, Event::Restart(id));
                    // The others' transports see the crashed server's connections close.
                    for &other in &alive {
                        if other != id {
                            let delay = self.rng.range(0, 50);
                            self.schedule(
                                self.now_ms + delay,
                                Event::Disconnected {
                                    to: other,
                                    from: id,
                                },
                            );
                        }
                    }
                    // Now and then a live connection is reset too.
                    if alive.len() >= 2 && self.rng.range(0, 3) == 0 {
                        let to = alive[self.rng.range(0, alive.len() as u64 - 1) as usize];
                        let from = alive[self.rng.range(0, alive.len() as u64 - 1) as usize];
                        if to != from && to != id && from != id {
                            self.schedule(self.now_ms + 1, Event::Disconnected { to, from });
                        }
                    }
                }
                let next = self.rng.range(100, 1500);
                self.schedule(self.now_ms + next, Event::Crash);
            }
            Event::Disconnected { to, from } => {
                if self.servers[&to].peer.is_some() {
                    self.input(to, Input::Disconnected(from))?;
                }
            }
            Event::Restart(id) => {
                let joiner_as_participant = self.rng.permille(500);
                let newest = self.chain_membership.clone();
                let s = self.servers.get_mut(&id).expect("server");
                if s.peer.is_some() {
                    return Ok(());
                }
                let listed =
                    s.config.participants.contains(&id) || s.config.observers.contains(&id);
                if !listed {
                    // Removed by a reconfig: the operator starts it again as a joiner, with the
                    // configuration in force and itself (static lines: version 0).
                    s.config.participants = newest.participants.clone();
                    s.config.observers = newest.observers.clone();
                    s.config.version = 0;
                    if joiner_as_participant {
                        s.config.participants.insert(id);
                    } else {
                        s.config.observers.insert(id);
                    }
                }
                let limit = s.config.history_limit;
                let start = s.log.len().saturating_sub(limit);
                let durable = DurableState {
                    epochs: s.epochs,
                    base_zxid: if start == 0 { 0 } else { s.log[start - 1].zxid },
                    recent: s.log[start..].to_vec(),
                    reconfigs: s.log.iter().filter_map(Membership::of_record).collect(),
                };
                s.peer = Some(Peer::new(s.config.clone()));
                s.applied = 0;
                s.last_commit = 0;
                self.input(id, Input::Restart(durable))?;
            }
            Event::Write => {
                let interval = self.rng.range(2, 40);
                self.schedule(self.now_ms + interval, Event::Write);
                let leaders: Vec<ServerId> = self
                    .servers
                    .iter()
                    .filter(|(_, s)| s.peer.as_ref().is_some_and(|p| p.is_broadcasting()))
                    .map(|(&id, _)| id)
                    .collect();
                if leaders.is_empty() {
                    return Ok(());
                }
                let id = leaders[self.rng.range(0, leaders.len() as u64 - 1) as usize];
                self.next_write += 1;
                self.report.writes_submitted += 1;
                let txn = Txn::SetData {
                    path: "/sim".to_string(),
                    data: Some(format!("{}:{}", self.next_write, self.now_ms).into_bytes()),
                    version: -1,
                };
                let time_ms = self.now_ms as i64;
                self.input(id, Input::Write { txn, time_ms })?;
            }
            Event::Reconfig => {
                if self.healed_at_ms.is_some() {
                    return Ok(());
                }
                let next = self.rng.range(150, 900);
                self.schedule(self.now_ms + next, Event::Reconfig);
                self.submit_reconfig()?;
            }
            Event::Partition => {
                if self.healed_at_ms.is_some() {
                    return Ok(());
                }
                self.blocked.clear();
                if self.rng.permille(700) {
                    let ids: Vec<ServerId> = self.servers.keys().copied().collect();
                    let one_way = self.rng.permille(300);
                    let side: Vec<bool> = ids.iter().map(|_| self.rng.permille(500)).collect();
                    for (i, &a) in ids.iter().enumerate() {
                        for (j, &b) in ids.iter().enumerate() {
                            if side[i] && !side[j] {
                                self.blocked.insert((a, b));
                                if !one_way {
                                    self.blocked.insert((b, a));
                                }
                            }
                        }
                    }
                }
                let next = self.rng.range(200, 1500);
                self.schedule(self.now_ms + next, Event::Partition);
            }
            Event::Heal => {
                self.healed_at_ms = Some(self.now_ms);
                self.blocked.clear();
                self.drop_permille = 0;
                self.reorder_permille = 0;
                let down: Vec<ServerId> = self
                    .servers
                    .iter()
                    .filter(|(_, s)| s.peer.is_none())
                    .map(|(&id, _)| id)
                    .collect();
                for id in down {
                    self.schedule(self.now_ms, Event::Restart(id));
                }
            }
            Event::End => {}
        }
        Ok(())
    }

    fn input(&mut self, id: ServerId, input: Input) -> Result<(), Violation> {
        let now = self.now_ms;
        let planted = self.planted;
        let s = self.servers.get_mut(&id).expect("server");
        let Some(peer) = s.peer.as_mut() else {
            return Ok(());
        };
        let mut actions = peer.step(now, input.clone());
        if planted == PlantedBug::FollowerCommitsOnReceipt {
            if let Input::Message {
                message:
                    Message::Link {
                        packet: Packet::Proposal(record),
                        ..
                    },
                ..
            } = &input
            {
                if matches!(peer.role(), Some(Role::Following { .. })) {
                    actions.push(Action::CommitUpTo(record.zxid));
                }
            }
        }
        if self.options.trace {
            if let Input::Tick = input {
                eprintln!(
                    "    {id}: state {:?} {:?} last {:#x} committed {:#x} in force {:#x} {:?} pending {:?}",
                    peer.role(),
                    peer.epochs(),
                    peer.last_zxid(),
                    peer.committed_zxid(),
                    peer.membership().version,
                    peer.membership().participants,
                    peer.pending_memberships()
                        .iter()
                        .map(|m| (m.version, m.participants.clone()))
                        .collect::<Vec<_>>()
                );
            }
            for action in &actions {
                eprintln!("    {id}: {action:?}");
            }
        }
        for action in actions {
            self.perform(id, action)?;
        }
        // The shell keeps the configuration in force on disk (the dynamic file): a restart
        // starts from it.
        let s = self.servers.get_mut(&id).expect("server");
        if let Some(peer) = s.peer.as_ref() {
            let membership = peer.membership();
            if membership.version != s.config.version
                || membership.participants != s.config.participants
                || membership.observers != s.config.observers
            {
                if self.options.trace {
                    eprintln!(
                        "    {id}: configuration in force {membership:?}, pending {:?}",
                        peer.pending_memberships()
                    );
                }
                s.config.participants = membership.participants.clone();
                s.config.observers = membership.observers.clone();
                s.config.version = membership.version;
            }
        }
        Ok(())
    }

    /// Gives the broadcasting leader a reconfig, if it takes one now (PrepRequestProcessor's
    /// checks: none in progress, at least two voters, a synced quorum of the new voters).
    fn submit_reconfig(&mut self) -> Result<(), Violation> {
        let Some((&id, leader)) = self
            .servers
            .iter()
            .find(|(_, s)| s.peer.as_ref().is_some_and(|p| p.is_broadcasting()))
        else {
            return Ok(());
        };
        let peer = leader.peer.as_ref().expect("peer");
        if !peer.pending_memberships().is_empty() {
            return Ok(());
        }
        let mut next = peer.membership().clone();
        let synced = peer.synced_participants();
        let all: Vec<ServerId> = self.servers.keys().copied().collect();
        let candidate = all[self.rng.range(0, all.len() as u64 - 1) as usize];
        let change = self.rng.range(0, 2);
        if !next.is_member(candidate) {
            // A joiner (connected or not) is added.
            if change == 0 {
                next.observers.insert(candidate);
            } else {
                next.participants.insert(candidate);
            }
        } else if change == 0 {
            next.participants.remove(&candidate);
            next.observers.remove(&candidate);
        } else if next.participants.remove(&candidate) {
            next.observers.insert(candidate);
        } else {
            next.observers.remove(&candidate);
            next.participants.insert(candidate);
        }
        if next.participants.len() < 2 || !next.is_quorum(&synced) {
            return Ok(());
        }
        let mut text = String::new();
        for server in next.participants.union(&next.observers) {
            let role = if next.observers.contains(server) {
                "observer"
            } else {
                "participant"
            };
            text.push_str(&format!(
                "server.{server}=127.0.0.1:{}:{}:{role}\n",
                2000 + server,
                3000 + server
            ));
        }
        text.push_str("version=0");
        self.report.reconfigs_submitted += 1;
        let txn = Txn::Reconfig {
            data: text.into_bytes(),
        };
        let time_ms = self.now_ms as i64;
        self.input(id, Input::Write { txn, time_ms })
    }

    fn perform(&mut self, id: ServerId, action: Action) -> Result<(), Violation> {
        match action {
            Action::Send { to, message } => self.send(id, to, message),
            Action::SendSnapshot {
                to,
                conn,
                seq,
                zxid,
            } => {
                let s = &self.servers[&id];
                let records: Vec<LogRecord> =
                    s.log.iter().filter(|r| r.zxid <= zxid).cloned().collect();
                if records.last().map_or(0, |r| r.zxid) != zxid {
                    return Err(self.violation(format!(
                        "{id} snapshots through {zxid:#x}, which its log does not end a prefix at"
                    )));
                }
                self.snapshots.push(records);
                let payload = ((self.snapshots.len() - 1) as u64).to_be_bytes().to_vec();
                self.report.snapshots += 1;
                self.send(id, to, Message::snapshot(conn, seq, zxid, payload));
            }
            Action::Append(record) => {
                let leading = matches!(self.servers[&id].role, Some(Role::Leading { .. }));
                let last = self.servers[&id].log.last().map_or(0, |r| r.zxid);
                if last >= record.zxid {
                    return Err(
                        self.violation(format!("{id} appends {:#x} after {last:#x}", record.zxid))
                    );
                }
                let s = self.servers.get_mut(&id).expect("server");
                s.log.push(record.clone());
                if !s.durable_pending {
                    s.durable_pending = true;
                    let incarnation = s.incarnation;
                    let delay = self.rng.range(1, 30);
                    self.schedule(
                        self.now_ms + delay,
                        Event::Durable {
                            server: id,
                            incarnation,
                        },
                    );
                }
                let leader_of_epoch = self.leaders.get(&epoch_of(record.zxid)) == Some(&id);
                if leading && leader_of_epoch && !self.proposed.contains_key(&record.zxid) {
                    self.proposed.insert(record.zxid, record);
                }
            }
            Action::TruncateLog { zxid } => {
                self.report.truncations += 1;
                let s = &self.servers[&id];
                let keep = s.log.partition_point(|r| r.zxid <= zxid);
                if keep < s.applied {
                    return Err(self.violation(format!(
                        "{id} truncates to {zxid:#x}, below what it committed"
                    )));
                }
                for (i, record) in s.log.iter().enumerate().skip(keep) {
                    if self.chain.get(i) == Some(record) {
                        return Err(self.violation(format!(
                            "{id} truncates committed record {:#x}",
                            record.zxid
                        )));
                    }
                }
                let s = self.servers.get_mut(&id).expect("server");
                s.log.truncate(keep);
                s.durable_len = s.durable_len.min(keep);
            }
            Action::InstallSnapshot { zxid, payload } => {
                let index = payload
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| self.violation("bad snapshot payload".into()))?;
                let records = self.snapshots[index as usize].clone();
                let s = &self.servers[&id];
                if records.last().map_or(0, |r| r.zxid) != zxid
                    || records.len() < s.applied
                    || records[..s.applied] != s.log[..s.applied]
                {
                    return Err(self.violation(format!(
                        "{id} installs a snapshot through {zxid:#x} that disagrees with what it committed"
                    )));
                }
                let s = self.servers.get_mut(&id).expect("server");
                s.durable_len = records.len();
                s.log = records;
            }
            Action::SaveEpochs(epochs) => {
                let s = self.servers.get_mut(&id).expect("server");
                if epochs.accepted_epoch < s.epochs.accepted_epoch
                    || epochs.current_epoch < s.epochs.current_epoch
                {
                    return Err(self.violation(format!("{id} saves decreasing epochs {epochs:?}")));
                }
                s.epochs = epochs;
            }
            Action::CommitUpTo(zxid) => self.commit(id, zxid)?,
            Action::RoleChanged(role) => {
                self.servers.get_mut(&id).expect("server").role = Some(role);
                if let Role::Leading { epoch } = role {
                    if !self.servers[&id].config.may_lead {
                        return Err(self
                            .violation(format!("{id}, which may not lead, leads epoch {epoch}")));
                    }
                    if let Some(&other) = self.leaders.get(&epoch) {
                        if other != id {
                            return Err(self.violation(format!(
                                "two leaders in epoch {epoch}: {other} and {id}"
                            )));
                        }
                    }
                    self.leaders.insert(epoch, id);
                    if lacks_committed_records(&self.servers[&id].log, &self.chain, epoch) {
                        return Err(self.violation(format!(
                            "new leader {id} of epoch {epoch} lacks committed records"
                        )));
                    }
                }
            }
            Action::WriteRejected(reason) => {
                if reason == crate::zab::RejectReason::ZxidRollover {
                    self.report.rollovers += 1;
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, id: ServerId, zxid: Zxid) -> Result<(), Violation> {
        let broadcasting = self.servers[&id]
            .peer
            .as_ref()
            .is_some_and(|p| p.is_broadcasting());
        let s = &self.servers[&id];
        if zxid <= s.last_commit {
            return Err(
                self.violation(format!("{id} commits {zxid:#x} after {:#x}", s.last_commit))
            );
        }
        let mut applied = s.applied;
        let mut new_records = Vec::new();
        // The configurations a record committed in this step had to be acknowledged by.
        let mut in_force = vec![self.chain_membership.clone()];
        while applied < s.log.len() && s.log[applied].zxid <= zxid {
            new_records.push((applied, s.log[applied].clone()));
            applied += 1;
        }
        if applied == 0 || s.log[applied - 1].zxid != zxid {
            return Err(self.violation(format!("{id} commits {zxid:#x}, which is not in its log")));
        }
        for (index, record) in new_records {
            match self.chain.get(index) {
                Some(existing) if *existing == record => {}
                Some(existing) => {
                    return Err(self.violation(format!(
                        "{id} commits {:#x} at position {index} where {:#x} was committed",
                        record.zxid, existing.zxid
                    )))
                }
                None => {
                    if let Some(last) = self.chain.last() {
                        if last.zxid >= record.zxid {
                            return Err(self.violation(format!(
                                "commit order: {:#x} after {:#x}",
                                record.zxid, last.zxid
                            )));
                        }
                    }
                    if self.proposed.get(&record.zxid) != Some(&record) {
                        return Err(self.violation(format!(
                            "{id} commits {:#x}, which the leader of epoch {} did not propose",
                            record.zxid,
                            epoch_of(record.zxid)
                        )));
                    }
                    let reconfig = Membership::of_record(&record);
                    if let Some(membership) = &reconfig {
                        in_force.push(membership.clone());
                    }
                    let holders: BTreeSet<ServerId> = self
                        .servers
                        .iter()
                        .filter(|(_, s)| s.log[..s.durable_len].contains(&record))
                        .map(|(&id, _)| id)
                        .collect();
                    for membership in &in_force {
                        if !membership.is_quorum(&holders) {
                            return Err(self.violation(format!(
                                "{id} commits {:#x}, durable only on {holders:?}, not on a quorum of configuration {:#x} {:?}",
                                record.zxid, membership.version, membership.participants
                            )));
                        }
                    }
                    if let Some(membership) = reconfig {
                        self.chain_membership = membership;
                        self.report.reconfigs_committed += 1;
                    }
                    self.chain.push(record.clone());
                }
            }
            if broadcasting {
                self.report.writes_acknowledged += 1;
                if let Some(healed) = self.healed_at_ms {
                    if record.time_ms as u64 >= healed && self.first_commit_after_heal_ms.is_none()
                    {
                        self.first_commit_after_heal_ms = Some(self.now_ms);
                    }
                }
            }
        }
        let s = self.servers.get_mut(&id).expect("server");
        s.applied = applied;
        s.last_commit = zxid;
        Ok(())
    }

    fn send(&mut self, from: ServerId, to: ServerId, message: Message) {
        if self.blocked.contains(&(from, to)) || self.rng.permille(self.drop_permille) {
            return;
        }
        let copies = if self.rng.permille(self.duplicate_permille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = self.now_ms + self.rng.range(1, self.delay_max_ms);
            let last = self.link_last_ms.entry((from, to)).or_insert(0);
            if !self.rng.permille(self.reorder_permille) {
                at = at.max(*last);
            }
            *last = (*last).max(at);
            self.schedule(
                at,
                Event::Deliver {
                    from,
                    to,
                    message: message.clone(),
                },
            );
        }
    }
}
