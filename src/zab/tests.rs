//! Focused tests of the ZAB peer: election order, sync decisions, commit order, rollover.
//! A tiny lossless harness delivers messages in order and makes appends durable at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;

struct Harness {
    now_ms: u64,
    peers: BTreeMap<ServerId, Peer>,
    queue: VecDeque<(ServerId, Input)>,
    /// Every packet sent, in order: (from, to, packet).
    packets: Vec<(ServerId, ServerId, Packet)>,
    actions: Vec<(ServerId, Action)>,
    /// Servers whose appends are not made durable (to hold back their acks).
    slow_disks: Vec<ServerId>,
    /// Servers not running yet: what is sent to them is lost, as when nobody listens.
    down: BTreeSet<ServerId>,
}

fn record(zxid: Zxid) -> LogRecord {
    LogRecord {
        zxid,
        time_ms: 0,
        txn: Txn::Check {
            path: format!("/{zxid:x}"),
        },
    }
}

fn history(epoch: Epoch, zxids: &[Zxid]) -> DurableState {
    DurableState {
        epochs: Epochs {
            accepted_epoch: epoch,
            accepted_leader: None,
            current_epoch: epoch,
        },
        base_zxid: 0,
        recent: zxids.iter().map(|&z| record(z)).collect(),
        reconfigs: Vec::new(),
    }
}

impl Harness {
    fn new(
        participants: &[ServerId],
        states: Vec<DurableState>,
        tweak: impl Fn(&mut Config),
    ) -> Self {
        Harness::with_down(participants, states, &[], tweak)
    }

    /// Like `new`, but the servers in `down` are not started (see `start`).
    fn with_down(
        participants: &[ServerId],
        states: Vec<DurableState>,
        down: &[ServerId],
        tweak: impl Fn(&mut Config),
    ) -> Self {
        let mut h = Harness {
            now_ms: 0,
            peers: BTreeMap::new(),
            queue: VecDeque::new(),
            packets: Vec::new(),
            actions: Vec::new(),
            slow_disks: Vec::new(),
            down: down.iter().copied().collect(),
        };
        for (&id, state) in participants.iter().zip(states) {
            let mut config = Config::new(id, participants, &[]);
            config.tick_ms = 100;
            config.finalize_wait_ms = 50;
            tweak(&mut config);
            h.peers.insert(id, Peer::new(config));
            if !h.down.contains(&id) {
                h.queue.push_back((id, Input::Restart(state)));
            }
        }
        h.run();
        h
    }

    /// Starts a server that was down, with `state`, and delivers what follows.
    fn start(&mut self, id: ServerId, state: DurableState) {
        self.down.remove(&id);
        self.queue.push_back((id, Input::Restart(state)));
        self.run();
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((id, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "harness did not settle");
            if self.down.contains(&id) {
                continue;
            }
            let actions = self
                .peers
                .get_mut(&id)
                .expect("peer")
                .step(self.now_ms, input);
            for action in actions {
                match &action {
                    Action::Send { to, message } => {
                        if let Message::Link { packet, .. } = message {
                            self.packets.push((id, *to, packet.clone()));
                        }
                        self.queue.push_back((
                            *to,
                            Input::Message {
                                from: id,
                                message: message.clone(),
                            },
                        ));
                    }
                    Action::SendSnapshot {
                        to,
                        conn,
                        seq,
                        zxid,
                    } => {
                        let message = Message::snapshot(*conn, *seq, *zxid, Vec::new());
                        if let Message::Link { packet, .. } = &message {
                            self.packets.push((id, *to, packet.clone()));
                        }
                        self.queue
                            .push_back((*to, Input::Message { from: id, message }));
                    }
                    Action::Append(r) if !self.slow_disks.contains(&id) => {
                        self.queue.push_back((id, Input::Durable(r.zxid)))
                    }
                    _ => {}
                }
                self.actions.push((id, action));
            }
        }
    }

    /// Advance time tick by tick until everyone follows or leads (bounded).
    fn settle(&mut self) -> ServerId {
        for _ in 0..50 {
            self.now_ms += 100;
            let ids: Vec<ServerId> = self.peers.keys().copied().collect();
            let ids: Vec<ServerId> = ids
                .into_iter()
                .filter(|id| !self.down.contains(id))
                .collect();
            for id in ids {
                self.queue.push_back((id, Input::Tick));
            }
            self.run();
            if let Some((&leader, _)) = self.peers.iter().find(|(_, p)| p.is_broadcasting()) {
                let all_synced = self.peers.values().all(|p| {
                    matches!(
                        p.role(),
                        Some(Role::Leading { .. }) | Some(Role::Following { .. })
                    )
                });
                if all_synced {
                    return leader;
                }
            }
        }
        panic!("no leader elected");
    }

    fn write(&mut self, leader: ServerId) {
        self.queue.push_back((
            leader,
            Input::Write {
                txn: Txn::Check { path: "/w".into() },
                time_ms: 0,
            },
        ));
        self.run();
    }

    fn sync_packets_to(&self, to: ServerId) -> Vec<Packet> {
        self.packets
            .iter()
            .filter(|(_, t, p)| {
                *t == to
                    && matches!(
                        p,
                        Packet::Diff { .. } | Packet::Trunc { .. } | Packet::Snap { .. }
                    )
            })
            .map(|(_, _, p)| p.clone())
            .collect()
    }

    fn commits(&self, id: ServerId) -> Vec<Zxid> {
        self.actions
            .iter()
            .filter_map(|(i, a)| match a {
                Action::CommitUpTo(z) if *i == id => Some(*z),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn zxid_is_epoch_and_counter() {
    let z = make_zxid(7, 42);
    assert_eq!(z, (7i64 << 32) | 42);
    assert_eq!((epoch_of(z), counter_of(z)), (7, 42));
}

/// FastLeaderElection.totalOrderPredicate: epoch first, then zxid, then server id.
#[test]
fn votes_order_by_epoch_then_zxid_then_id() {
    let vote = |leader, zxid, epoch| Vote {
        leader,
        zxid,
        epoch,
    };
    assert!(vote(1, 5, 2).order_key() > vote(3, 9, 1).order_key());
    assert!(vote(1, 9, 1).order_key() > vote(3, 5, 1).order_key());
    assert!(vote(3, 5, 1).order_key() > vote(1, 5, 1).order_key());
}

#[test]
fn election_ties_are_broken_by_the_highest_id() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    assert_eq!(h.settle(), 3);
}

#[test]
fn election_prefers_the_most_recent_history() {
    let e1 = |c| make_zxid(1, c);
    let states = vec![
        history(1, &[e1(1), e1(2), e1(3)]),
        history(1, &[e1(1), e1(2)]),
        history(1, &[e1(1)]),
    ];
    let mut h = Harness::new(&[1, 2, 3], states, |_| {});
    assert_eq!(h.settle(), 1);
    // The new epoch is above every accepted epoch (Zab phase 1).
    assert!(matches!(
        h.peers[&1].role(),
        Some(Role::Leading { epoch: 2 })
    ));
}

/// LearnerHandler.syncFollower: DIFF for a prefix in memory, TRUNC for extra uncommitted
/// records, SNAP for a learner behind the in-memory window.
#[test]
fn sync_chooses_diff_trunc_or_snap() {
    let e1 = |c| make_zxid(1, c);
    let leader_log: Vec<Zxid> = (1..=10).map(e1).collect();
    let states = vec![
        // 1: behind the leader's window of 4 records -> SNAP
        history(1, &[e1(1)]),
        // 2: a prefix in memory -> DIFF
        history(1, &(1..=8).map(e1).collect::<Vec<_>>()),
        // 3: leads (most recent, current epoch 2 with e1 history)
        DurableState {
            epochs: Epochs {
                accepted_epoch: 2,
                accepted_leader: None,
                current_epoch: 2,
            },
            ..history(2, &leader_log)
        },
        // 4: records the leader does not have (never committed) -> TRUNC to e1(10)
        history(1, &(1..=12).map(e1).collect::<Vec<_>>()),
        // 5: identical -> empty DIFF
        history(1, &leader_log),
    ];
    let mut h = Harness::new(&[1, 2, 3, 4, 5], states, |c| c.history_limit = 4);
    assert_eq!(h.settle(), 3);
    assert_eq!(h.sync_packets_to(2), vec![Packet::Diff { zxid: e1(8) }]);
    assert_eq!(h.sync_packets_to(5), vec![Packet::Diff { zxid: e1(10) }]);
    assert_eq!(h.sync_packets_to(4), vec![Packet::Trunc { zxid: e1(10) }]);
    assert_eq!(
        h.sync_packets_to(1),
        vec![Packet::Snap {
            zxid: e1(10),
            payload: Vec::new()
        }]
    );
    for id in [1, 2, 4, 5] {
        assert_eq!(h.peers[&id].last_zxid(), e1(10), "server {id} synced");
    }
    // The initial history commits as a whole once a quorum acknowledged NEWLEADER.
    assert_eq!(h.peers[&3].committed_zxid(), e1(10));
}

/// Zab §IV.B phase 3: pipelined proposals; the leader commits only with a quorum of acks
/// (its own durability counted), strictly in zxid order.
#[test]
fn commits_need_a_quorum_and_follow_zxid_order() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    let epoch = epoch_of(make_zxid(h.peers[&leader].epochs().current_epoch, 0));
    // Both followers' disks stall: five proposals in flight, nothing commits.
    h.slow_disks = vec![1, 2];
    for _ in 0..5 {
        h.write(leader);
    }
    assert_eq!(h.peers[&leader].last_zxid(), make_zxid(epoch, 5));
    assert_eq!(h.peers[&leader].committed_zxid(), 0);
    // One follower reports durability through the third: a quorum of two has 1..=3.
    h.queue.push_back((1, Input::Durable(make_zxid(epoch, 3))));
    h.run();
    assert_eq!(h.peers[&leader].committed_zxid(), make_zxid(epoch, 3));
    h.queue.push_back((2, Input::Durable(make_zxid(epoch, 5))));
    h.run();
    assert_eq!(h.peers[&leader].committed_zxid(), make_zxid(epoch, 5));
    for id in [1, 2, 3] {
        let commits = h.commits(id);
        assert!(commits.windows(2).all(|w| w[0] < w[1]), "{id}: {commits:?}");
    }
    // A follower is told to forward writes.
    let follower = if leader == 1 { 2 } else { 1 };
    let out = h.peers.get_mut(&follower).expect("peer").step(
        h.now_ms,
        Input::Write {
            txn: Txn::Check { path: "/w".into() },
            time_ms: 0,
        },
    );
    assert_eq!(
        out,
        vec![Action::WriteRejected(RejectReason::NotLeader {
            leader: Some(leader)
        })]
    );
}

/// ZooKeeper's XidRolloverException: at the end of the counter the leader steps down and
/// the next leader starts a new epoch.
#[test]
fn counter_overflow_starts_a_new_epoch() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |c| {
        c.counter_max = 3
    });
    let leader = h.settle();
    let epoch = h.peers[&leader].epochs().current_epoch;
    for _ in 0..3 {
        h.write(leader);
    }
    assert_eq!(h.peers[&leader].last_zxid(), make_zxid(epoch, 3));
    h.write(leader);
    assert!(h
        .actions
        .iter()
        .any(|(i, a)| *i == leader && *a == Action::WriteRejected(RejectReason::ZxidRollover)));
    assert_eq!(h.peers[&leader].role(), Some(Role::Looking));
    let next = h.settle();
    let next_epoch = h.peers[&next].epochs().current_epoch;
    assert!(next_epoch > epoch);
    h.write(next);
    assert_eq!(h.peers[&next].last_zxid(), make_zxid(next_epoch, 1));
    // Everything of the old epoch stays committed, then the new epoch's first record.
    assert_eq!(h.peers[&next].committed_zxid(), make_zxid(next_epoch, 1));
}

/// A learner whose connection from the leader closes goes back to election at once, without
/// waiting `sync_limit_ticks`; one from another server is ignored; a leader forgets the
/// learner (and, without a quorum left, steps down at its next tick).
#[test]
fn a_closed_leader_connection_starts_an_election_at_once() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    assert_eq!(leader, 3);
    let now = h.now_ms;
    let follower = h.peers.get_mut(&1).expect("peer 1");
    follower.step(now, Input::Disconnected(2));
    assert!(matches!(
        follower.role(),
        Some(Role::Following { leader: 3, .. })
    ));
    let actions = follower.step(now, Input::Disconnected(3));
    assert!(actions.contains(&Action::RoleChanged(Role::Looking)));
    assert_eq!(follower.role(), Some(Role::Looking));

    let leader_peer = h.peers.get_mut(&3).expect("peer 3");
    leader_peer.step(now, Input::Disconnected(1));
    leader_peer.step(now, Input::Disconnected(2));
    assert_eq!(leader_peer.leader_figures().map(|f| f.learners), Some(0));
    let actions = leader_peer.step(now + 100, Input::Tick);
    assert!(actions.contains(&Action::RoleChanged(Role::Looking)));
}

/// Fast leader election's race at formation (the servers start one after another): 1 and 2
/// agree on 2, 1's finalize wait ends first and it follows 2; then 3 starts with a better vote,
/// 2 (still looking) adopts it and follows 3. 1 took a server for its leader that never leads.
/// ZooKeeper's learner gives up at once, since only a leader listens on the quorum port; here
/// 2 answers the FollowerInfo with its FOLLOWING notification and 1 looks again and joins 3,
/// long before `init_limit_ticks`. Without that answer 1 waited the whole initLimit (20 s with
/// go-zookeeper's test-cluster tickTime of 2000 ms) in the Connecting phase.
#[test]
fn a_learner_whose_chosen_leader_follows_another_joins_the_real_leader_at_once() {
    let mut h = Harness::with_down(&[1, 2, 3], vec![DurableState::default(); 3], &[3], |_| {});
    // 1 and 2 agree on 2 and both wait `finalize_wait_ms` (50 ms) for a better vote.
    assert_eq!(h.peers[&1].role(), Some(Role::Looking));
    assert_eq!(h.peers[&2].role(), Some(Role::Looking));
    // 1's wait ends first: it follows 2. Its FollowerInfo is still in flight.
    h.now_ms = 50;
    let held = h.peers.get_mut(&1).expect("peer 1").step(50, Input::Wake);
    assert!(matches!(
        h.peers[&1].role(),
        Some(Role::Looking) | Some(Role::Following { leader: 2, .. })
    ));
    assert!(
        held.iter().any(|a| matches!(
            a,
            Action::Send {
                to: 2,
                message: Message::Link {
                    packet: Packet::FollowerInfo { .. },
                    ..
                }
            }
        )),
        "1 did not decide for 2: {held:?}"
    );
    // 3 starts before 2's wait ends; 2 adopts its vote. Then 1's FollowerInfo reaches 2.
    h.start(3, DurableState::default());
    assert_eq!(h.peers[&2].role(), Some(Role::Looking));
    for action in held {
        if let Action::Send { to, message } = action {
            h.queue.push_back((to, Input::Message { from: 1, message }));
        }
    }
    h.run();
    // 2 and 3 decide at their next wake: 3 leads, 2 follows it. 1 must be following 3 well
    // within initLimit (10 ticks of 100 ms).
    let init_ms = 10 * 100;
    let started = h.now_ms;
    loop {
        h.now_ms += 10;
        for id in [1, 2, 3] {
            let input = if h.now_ms.is_multiple_of(100) {
                Input::Tick
            } else {
                Input::Wake
            };
            h.queue.push_back((id, input));
        }
        h.run();
        let joined = matches!(h.peers[&1].role(), Some(Role::Following { leader: 3, .. }))
            && h.peers[&3].leader_figures().map(|f| f.synced_followers) == Some(2);
        if joined {
            break;
        }
        assert!(
            h.now_ms - started < init_ms / 2,
            "1 has not joined 3 after {} ms: roles {:?}",
            h.now_ms - started,
            h.peers
                .iter()
                .map(|(id, p)| (*id, p.role()))
                .collect::<Vec<_>>()
        );
    }
    assert!(h.peers[&3].is_broadcasting());
}

/// A leader paused for longer than syncLimit (SIGSTOP, a GC or VM stall) is resumed with its
/// followers' notifications of the election they held without it waiting in its socket: it
/// drops each synced follower heard in a later round at once and, without a quorum, starts
/// looking then, not syncLimit ticks later (the pings queued before its followers gave up
/// would look fresh). ZooKeeper's leader learns it from its followers' closed connections.
#[test]
fn a_leader_hearing_its_followers_in_a_later_election_steps_down_at_once() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    assert_eq!(leader, 3);
    let now = h.now_ms;
    let mut to_leader = Vec::new();
    for id in [1, 2] {
        let actions = h
            .peers
            .get_mut(&id)
            .expect("peer")
            .step(now, Input::Disconnected(3));
        to_leader.extend(actions.into_iter().filter_map(|action| match action {
            Action::Send {
                to: 3,
                message: message @ Message::Notification(_),
            } => Some((id, message)),
            _ => None,
        }));
    }
    assert_eq!(
        to_leader.len(),
        2,
        "each follower tells the old leader it looks"
    );
    let leader_peer = h.peers.get_mut(&3).expect("peer 3");
    let (from, message) = to_leader[0].clone();
    leader_peer.step(now, Input::Message { from, message });
    assert!(
        matches!(leader_peer.role(), Some(Role::Leading { .. })),
        "one follower left: the leader and the other are still a quorum"
    );
    assert_eq!(leader_peer.leader_figures().map(|f| f.learners), Some(1));
    let (from, message) = to_leader[1].clone();
    let actions = leader_peer.step(now, Input::Message { from, message });
    assert!(
        actions.contains(&Action::RoleChanged(Role::Looking)),
        "no quorum left: looking at once, without waiting for a tick"
    );
}

// ---------------------------------------------------------------- reconfiguration

/// The data of a reconfig record for these members (as `/zookeeper/config` shows them).
fn reconfig_txn(participants: &[ServerId], observers: &[ServerId]) -> Txn {
    let mut text = String::new();
    for id in participants {
        text.push_str(&format!(
            "server.{id}=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n",
            2000 + id,
            3000 + id,
            4000 + id
        ));
    }
    for id in observers {
        text.push_str(&format!(
            "server.{id}=127.0.0.1:{}:{}:observer;127.0.0.1:{}\n",
            2000 + id,
            3000 + id,
            4000 + id
        ));
    }
    text.push_str("version=0");
    Txn::Reconfig {
        data: text.into_bytes(),
    }
}

impl Harness {
    /// Starts server `id` as a joiner: its configuration lists `participants` and
    /// `observers` (itself among them), which the others' does not.
    fn add_joiner(&mut self, id: ServerId, participants: &[ServerId], observers: &[ServerId]) {
        let mut config = Config::new(id, participants, observers);
        config.tick_ms = 100;
        config.finalize_wait_ms = 50;
        self.peers.insert(id, Peer::new(config));
        self.queue
            .push_back((id, Input::Restart(DurableState::default())));
        self.run();
    }

    fn propose(&mut self, leader: ServerId, txn: Txn) -> Zxid {
        self.queue
            .push_back((leader, Input::Write { txn, time_ms: 0 }));
        self.run();
        self.peers[&leader].last_zxid()
    }

    /// Ticks until `done` holds (bounded).
    fn tick_until(&mut self, what: &str, done: impl Fn(&Harness) -> bool) {
        for _ in 0..100 {
            if done(self) {
                return;
            }
            self.now_ms += 100;
            let ids: Vec<ServerId> = self
                .peers
                .keys()
                .copied()
                .filter(|id| !self.down.contains(id))
                .collect();
            for id in ids {
                self.queue.push_back((id, Input::Tick));
            }
            self.run();
        }
        panic!("timed out waiting for {what}");
    }

    fn leader(&self) -> Option<ServerId> {
        self.peers
            .iter()
            .find(|(_, p)| p.is_broadcasting())
            .map(|(&id, _)| id)
    }
}

/// A joiner finds the leader through the members' answers to its notifications and syncs as
/// a non-voting follower (ZooKeeper: "the leader allows the new server to connect as a
/// non-voting follower"); the reconfig that adds it commits and every server puts the new
/// configuration in force at that zxid; from then on its acks count and the quorum is 3 of 4.
#[test]
fn a_joiner_syncs_before_it_is_added_and_votes_after() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    h.add_joiner(4, &[1, 2, 3, 4], &[]);
    h.tick_until("the joiner to follow", |h| {
        matches!(h.peers[&4].role(), Some(Role::Following { .. }))
    });
    assert!(h.peers[&leader].synced_participants().contains(&4));
    let zxid = h.propose(leader, reconfig_txn(&[1, 2, 3, 4], &[]));
    for (id, peer) in &h.peers {
        assert_eq!(peer.membership().version, zxid, "server {id}");
        assert_eq!(
            peer.membership().participants,
            [1, 2, 3, 4].into_iter().collect(),
            "server {id}"
        );
        assert!(peer.pending_memberships().is_empty());
    }
    // Two followers that do not ack: 2 of 4 is no quorum any more.
    let followers: Vec<ServerId> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    h.slow_disks = followers.clone();
    let held = h.propose(leader, Txn::Check { path: "/w".into() });
    assert!(!h.commits(leader).contains(&held));
    // The joiner's ack makes the quorum (leader, joiner, one follower).
    h.slow_disks = vec![followers[1]];
    h.queue.push_back((followers[0], Input::Durable(held)));
    h.run();
    assert!(h.commits(leader).contains(&held));
}

/// ZooKeeper's Proposal with two QuorumVerifiers: a reconfig (and what follows it) commits
/// only with a quorum of the old configuration and of the new one.
#[test]
fn a_reconfig_needs_a_quorum_of_the_new_configuration_too() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    h.add_joiner(4, &[1, 2, 3, 4], &[]);
    h.add_joiner(5, &[1, 2, 3, 5], &[]);
    h.tick_until("the joiners to follow", |h| {
        [4, 5]
            .iter()
            .all(|id| matches!(h.peers[id].role(), Some(Role::Following { .. })))
    });
    let removed = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap_or(1);
    let stays = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader && id != removed)
        .unwrap_or(2);
    let mut next = vec![leader, stays, 4, 5];
    next.sort_unstable();
    h.slow_disks = vec![4, 5];
    let zxid = h.propose(leader, reconfig_txn(&next, &[]));
    // The old quorum (all of 1, 2, 3) has it; the new one (3 of 4) has only two.
    assert!(!h.commits(leader).contains(&zxid));
    assert_eq!(h.peers[&leader].pending_memberships().len(), 1);
    h.slow_disks.clear();
    h.queue.push_back((4, Input::Durable(zxid)));
    h.run();
    assert!(h.commits(leader).contains(&zxid));
    assert_eq!(h.peers[&leader].membership().version, zxid);
    // The removed follower took no part any more once it saw the commit.
    h.tick_until("the removed server to stop", |h| {
        matches!(h.peers[&removed].role(), Some(Role::Looking))
    });
    assert!(!h.peers[&removed].is_serving());
}

/// A leader that the reconfig leaves out commits it, then steps down; the new configuration
/// elects among its participants (ZooKeeper designates a successor instead).
#[test]
fn a_removed_leader_steps_down_and_the_new_configuration_elects() {
    let mut h = Harness::new(&[1, 2, 3], vec![DurableState::default(); 3], |_| {});
    let leader = h.settle();
    let rest: Vec<ServerId> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let zxid = h.propose(leader, reconfig_txn(&rest, &[leader]));
    assert!(h.commits(leader).contains(&zxid));
    h.tick_until("a leader of the new configuration", |h| {
        h.leader().is_some_and(|id| rest.contains(&id))
            && matches!(h.peers[&leader].role(), Some(Role::Observing { .. }))
    });
    let next = h.leader().unwrap_or(0);
    let write = h.propose(
        next,
        Txn::Check {
            path: "/after".into(),
        },
    );
    assert!(h.commits(next).contains(&write));
}

/// A reconfig logged but not known to have committed when the server stopped is pending
/// after a restart, not in force (ZooKeeper keeps it as zoo.cfg.dynamic.next).
#[test]
fn a_logged_reconfig_is_pending_after_a_restart() {
    let reconfig = LogRecord {
        zxid: make_zxid(1, 2),
        time_ms: 0,
        txn: reconfig_txn(&[1, 2], &[3]),
    };
    let mut state = history(1, &[make_zxid(1, 1)]);
    state.recent.push(reconfig.clone());
    state.reconfigs = vec![Membership::of_record(&reconfig).unwrap_or_default()];
    let mut peer = Peer::new(Config::new(1, &[1, 2, 3], &[]));
    peer.step(0, Input::Restart(state.clone()));
    assert_eq!(peer.membership().version, 0);
    assert_eq!(peer.pending_memberships().len(), 1);
    assert_eq!(
        peer.pending_memberships()[0].observers,
        [3].into_iter().collect()
    );
    // With the configuration that reconfig made in force (its dynamic file), nothing is.
    let mut config = Config::new(1, &[1, 2], &[3]);
    config.version = reconfig.zxid;
    let mut peer = Peer::new(config);
    peer.step(0, Input::Restart(state));
    assert!(peer.pending_memberships().is_empty());
}

// ------------------------------------------------------------------ a participant that never leads

/// Server `never` may not lead (`Config::may_lead = false`) and acknowledges each proposal
/// (`Config::ack_each_proposal`), as a ringkeeper follower of a ZooKeeper ensemble does.
fn never_leader(never: ServerId) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        if config.id == never {
            config.may_lead = false;
            config.ack_each_proposal = true;
        }
    }
}

/// The votes server `id` sent in its election notifications.
fn votes_sent_by(h: &Harness, id: ServerId) -> Vec<Vote> {
    h.actions
        .iter()
        .filter_map(|(from, action)| match action {
            Action::Send {
                message: Message::Notification(n),
                ..
            } if *from == id => Some(n.vote),
            _ => None,
        })
        .collect()
}

/// FastLeaderElection with a never-leader: server 3 would win on its id (equal histories),
/// but it never proposes itself, and never sends a notification naming itself (ZooKeeper
/// 3.8 drops notifications whose proposed leader is not a voter, and takes any vote naming
/// a voter at face value); it votes for the best candidate it hears of and follows it.
#[test]
fn a_never_leader_is_not_elected_and_votes_for_the_best_other_candidate() {
    let mut h = Harness::new(
        &[1, 2, 3],
        vec![DurableState::default(); 3],
        never_leader(3),
    );
    assert_eq!(h.settle(), 2);
    assert!(matches!(
        h.peers[&3].role(),
        Some(Role::Following { leader: 2, .. })
    ));
    let votes = votes_sent_by(&h, 3);
    assert!(!votes.is_empty());
    assert!(votes.iter().all(|vote| vote.leader != 3), "{votes:?}");
    // Its "no vote" names another participant with a history nobody has, which no server
    // adopts; its real vote is server 2's.
    assert!(votes.iter().any(|vote| vote.leader == 2 && vote.zxid >= 0));
    // Not -1: ZooKeeper ignores a notification with zxid -1, its round included.
    assert!(votes
        .iter()
        .filter(|vote| vote.zxid < 0)
        .all(|vote| vote.leader != 3 && vote.epoch == 0 && vote.zxid == NO_VOTE_ZXID));
    assert_ne!(NO_VOTE_ZXID, -1);
}

/// A never-leader abstains rather than vote for a candidate behind its own log: with server
/// 1 down, server 2 (behind) cannot be elected by server 3 (which holds records 2 lacks,
/// perhaps committed by 1 and 3's acks). Once server 1, as recent as 3, is back, 3 votes
/// for it.
#[test]
fn a_never_leader_abstains_from_a_candidate_behind_its_log() {
    let e1 = |c| make_zxid(1, c);
    let states = vec![
        history(1, &[e1(1), e1(2), e1(3)]),
        history(1, &[e1(1)]),
        history(1, &[e1(1), e1(2), e1(3)]),
    ];
    let mut h = Harness::with_down(&[1, 2, 3], states.clone(), &[1], never_leader(3));
    for _ in 0..30 {
        h.now_ms += 100;
        for id in [2, 3] {
            h.queue.push_back((id, Input::Tick));
        }
        h.run();
    }
    assert!(h.peers.values().all(|peer| !peer.is_broadcasting()));
    assert_eq!(h.peers[&3].role(), Some(Role::Looking));
    assert!(votes_sent_by(&h, 3)
        .iter()
        .all(|vote| vote.leader != 2 || vote.zxid < 0));
    // Without a candidate it starts a new round every few ticks (ZooKeeper's election
    // repeats a vote only when it changes, or when its queue stays empty, so a lost one
    // would not come again while this peer keeps sending).
    let last_round = h
        .actions
        .iter()
        .filter_map(|(from, action)| match action {
            Action::Send {
                message: Message::Notification(n),
                ..
            } if *from == 3 => Some(n.round),
            _ => None,
        })
        .max();
    assert!(last_round >= Some(5), "{last_round:?}");
    h.start(1, states[0].clone());
    assert_eq!(h.settle(), 1);
    assert!(matches!(
        h.peers[&3].role(),
        Some(Role::Following { leader: 1, .. })
    ));
    assert_eq!(h.peers[&2].last_zxid(), e1(3));
}

/// A learner of a ZooKeeper leader sends one ACK per proposal, each only once its log is
/// durable through it, in zxid order (Leader.processAck counts an ACK for its own zxid and
/// commits in order; SendAckRequestProcessor acks each logged proposal after the flush).
#[test]
fn a_learner_of_a_zookeeper_leader_acks_each_proposal_once_durable() {
    let mut h = Harness::new(
        &[1, 2, 3],
        vec![DurableState::default(); 3],
        never_leader(3),
    );
    let leader = h.settle();
    assert_eq!(leader, 2);
    let epoch = h.peers[&leader].epochs().current_epoch;
    // Server 1's disk stalls, so every commit needs server 3's acks; so does server 3's.
    h.slow_disks = vec![1, 3];
    let acks_before = h.packets.len();
    for _ in 0..3 {
        h.write(leader);
    }
    let acks_from_3 = |h: &Harness| -> Vec<Zxid> {
        h.packets[acks_before..]
            .iter()
            .filter_map(|(from, _, packet)| match packet {
                Packet::Ack { zxid } if *from == 3 => Some(*zxid),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        acks_from_3(&h),
        Vec::<Zxid>::new(),
        "nothing durable, nothing acked"
    );
    assert_eq!(h.peers[&leader].committed_zxid(), 0);
    h.queue.push_back((3, Input::Durable(make_zxid(epoch, 2))));
    h.run();
    assert_eq!(
        acks_from_3(&h),
        vec![make_zxid(epoch, 1), make_zxid(epoch, 2)]
    );
    assert_eq!(h.peers[&leader].committed_zxid(), make_zxid(epoch, 2));
    h.queue.push_back((3, Input::Durable(make_zxid(epoch, 3))));
    h.run();
    assert_eq!(
        acks_from_3(&h),
        vec![
            make_zxid(epoch, 1),
            make_zxid(epoch, 2),
            make_zxid(epoch, 3)
        ]
    );
    assert_eq!(h.peers[&leader].committed_zxid(), make_zxid(epoch, 3));
    // A proposal that commits without this server's ACK (server 1's disk is back) is still
    // acknowledged once durable: ZooKeeper's LearnerHandler waits for the ACK of each.
    h.slow_disks = vec![3];
    h.queue.push_back((1, Input::Durable(make_zxid(epoch, 3))));
    h.write(leader);
    assert_eq!(h.peers[&leader].committed_zxid(), make_zxid(epoch, 4));
    assert_eq!(acks_from_3(&h).len(), 3);
    h.queue.push_back((3, Input::Durable(make_zxid(epoch, 4))));
    h.run();
    assert_eq!(acks_from_3(&h).last(), Some(&make_zxid(epoch, 4)));
    // A ringkeeper learner acknowledges cumulatively: server 1 sent one ACK for 1..=3.
    let acks_from_1: Vec<Zxid> = h.packets[acks_before..]
        .iter()
        .filter_map(|(from, _, packet)| match packet {
            Packet::Ack { zxid } if *from == 1 => Some(*zxid),
            _ => None,
        })
        .collect();
    assert_eq!(acks_from_1, vec![make_zxid(epoch, 3), make_zxid(epoch, 4)]);
}
