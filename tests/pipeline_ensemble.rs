//! Three pipelines as an in-process ensemble: the ZAB shell of the pipeline (election,
//! forwarding, commit, sessions, role changes) with real wire encoding between servers, over
//! in-memory links the test can cut, and an in-memory log (every append durable at once).
//! The test plays each server's single core.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};
use ringkeeper::config::Config;
use ringkeeper::jute::codec::{Reader, Record};
use ringkeeper::jute::records::{ConnectRequest, ReplyHeader, SyncRequest};
use ringkeeper::jute::request::{Create, Request};
use ringkeeper::jute::OpCode;
use ringkeeper::metrics::{ServerMode, ServerStats};
use ringkeeper::pipeline::driver::{Pipeline, PipelineStart, QuorumStart};
use ringkeeper::pipeline::{CoreBatch, CoreReply, PipelineInput};
use ringkeeper::quorum::{wire, Wire};
use ringkeeper::quorum::{QuorumDisk, QuorumLinks};
use ringkeeper::session::ConnRef;
use ringkeeper::snapshot::SessionRecord;
use ringkeeper::tree::{acl, TreeVersion};
use ringkeeper::zab::{self, DurableState, Epochs, Peer, ServerId, Zxid};

const WAIT: Duration = Duration::from_secs(20);

/// Links that carry encoded frames between the pipelines; `cut` holds the directed pairs
/// that drop everything.
#[derive(Clone)]
struct Net {
    inboxes: Arc<Vec<Sender<(ServerId, Wire)>>>,
    cut: Arc<Mutex<HashSet<(ServerId, ServerId)>>>,
    /// Forwarded client requests are refused by the links (a full queue), everything else
    /// goes through.
    refuse_forwards: Arc<AtomicBool>,
    /// The leader's tree digests (`Wire::TxnDigest`) arrive changed by one bit.
    tamper_digests: Arc<AtomicBool>,
    /// The next ZAB message this server sends blocks for this long: its pipeline thread
    /// stalls there (as it does in any long synchronous step, e.g. a rebase on a large
    /// snapshot).
    stall: Arc<Mutex<Option<(ServerId, Duration)>>>,
}

struct Links {
    me: ServerId,
    net: Net,
}

impl QuorumLinks for Links {
    fn send(&self, to: ServerId, message: &Wire) -> bool {
        // Only on ZAB traffic (the leader's pings, from its timers): a stall that ends right
        // before the loop's housekeeping, as a rebase or a slow disk call does.
        let stall = self
            .net
            .stall
            .lock()
            .ok()
            .filter(|_| matches!(message, Wire::Zab(_)))
            .and_then(|mut stall| stall.take_if(|(who, _)| *who == self.me));
        if let Some((_, pause)) = stall {
            // The fault itself: a pipeline thread that does not run for `pause`.
            thread::sleep(pause);
        }
        let tampered;
        let message = match message {
            Wire::TxnDigest {
                zxid,
                version,
                digest,
            } if self.net.tamper_digests.load(Ordering::SeqCst) => {
                tampered = Wire::TxnDigest {
                    zxid: *zxid,
                    version: *version,
                    digest: digest ^ 1,
                };
                &tampered
            }
            _ => message,
        };
        if matches!(message, Wire::Forward { .. })
            && self.net.refuse_forwards.load(Ordering::SeqCst)
        {
            return false;
        }
        let cut = self
            .net
            .cut
            .lock()
            .map(|cut| cut.contains(&(self.me, to)))
            .unwrap_or(true);
        if cut || to == 0 || to as usize > self.net.inboxes.len() {
            return false;
        }
        let mut bytes = Vec::new();
        wire::encode(message, &mut bytes);
        let decoded = wire::decode(&bytes).expect("every message decodes");
        assert_eq!(&decoded, message, "wire round trip");
        self.net.inboxes[to as usize - 1]
            .send((self.me, decoded))
            .is_ok()
    }
}

impl Net {
    /// Cuts `id` off from every other server, both ways.
    fn isolate(&self, id: ServerId, servers: u64) {
        let mut cut = self.cut.lock().unwrap();
        for other in 1..=servers {
            if other != id {
                cut.insert((id, other));
                cut.insert((other, id));
            }
        }
    }

    fn heal(&self) {
        self.cut.lock().unwrap().clear();
    }
}

struct MemoryDisk;

impl QuorumDisk for MemoryDisk {
    fn save_epochs(&self, _epochs: &Epochs) -> Result<(), String> {
        Ok(())
    }

    fn encode_snapshot(
        &self,
        version: &TreeVersion,
        sessions: &[(i64, i32)],
    ) -> Result<Vec<u8>, String> {
        ringkeeper::snapshot::encode_snapshot(version, &SessionRecord::from_pairs(sessions))
            .map_err(|e| e.to_string())
    }

    fn install_snapshot(&self, _bytes: &[u8]) -> Result<(TreeVersion, Vec<(i64, i32)>), String> {
        Err("not used in this test".into())
    }

    fn remove_snapshots_above(&self, _zxid: Zxid) -> Result<(), String> {
        Ok(())
    }

    fn reload(&self, _zxid: Zxid) -> Result<(TreeVersion, Vec<(i64, i32)>), String> {
        Err("not used in this test".into())
    }
}

/// One server: its pipeline thread and the test's view of its core.
struct Node {
    id: ServerId,
    input: Sender<PipelineInput>,
    core: async_channel::Receiver<CoreBatch>,
    stats: Arc<ServerStats>,
    version: Option<Arc<TreeVersion>>,
    replies: VecDeque<CoreReply>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Node {
    /// Takes everything the pipeline sent this core.
    fn pump(&mut self) {
        while let Ok(batch) = self.core.try_recv() {
            if let Some(step) = batch.steps.last() {
                self.version = Some(step.version.clone());
            }
            for (_, reply) in batch.replies {
                self.replies.push_back(reply);
            }
        }
    }

    fn next_reply(&mut self) -> CoreReply {
        let deadline = Instant::now() + WAIT;
        loop {
            self.pump();
            if let Some(reply) = self.replies.pop_front() {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "server {} did not reply",
                self.id
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn mode(&self) -> ServerMode {
        self.stats.quorum.mode()
    }

    fn zxid(&mut self) -> i64 {
        self.pump();
        self.version.as_ref().map_or(0, |version| version.zxid)
    }

    fn has(&mut self, path: &str) -> bool {
        self.pump();
        self.version
            .as_ref()
            .is_some_and(|version| version.get(path).is_some())
    }

    fn connect(&mut self, conn_id: u64, session_id: i64, passwd: Vec<u8>) -> CoreReply {
        self.connect_as(conn_id, session_id, passwd, false)
    }

    /// A connect that asks for a read-only session or not (the ConnectRequest's readOnly).
    fn connect_as(
        &mut self,
        conn_id: u64,
        session_id: i64,
        passwd: Vec<u8>,
        read_only: bool,
    ) -> CoreReply {
        self.replies.clear();
        let sent = self.input.send(PipelineInput::Connect {
            conn: ConnRef { core: 0, conn_id },
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 10_000,
                session_id,
                passwd,
                read_only,
            },
            read_only_flag: true,
        });
        assert!(sent.is_ok());
        // Connection-wide closes from earlier role changes concern connections of the past.
        loop {
            match self.next_reply() {
                CoreReply::CloseAll { .. } => {}
                CoreReply::Close { conn_id: id, .. } if id != conn_id => {}
                reply => return reply,
            }
        }
    }

    /// Sends a write without waiting for its answer.
    fn send_write(&mut self, conn_id: u64, session_id: i64, xid: i32, request: Request) {
        let sent = self.input.send(PipelineInput::Write {
            conn: ConnRef { core: 0, conn_id },
            session_id,
            xid,
            request,
            auth: Arc::new(Vec::new()),
            fenced: false,
        });
        assert!(sent.is_ok());
    }

    fn write(&mut self, conn_id: u64, session_id: i64, xid: i32, request: Request) -> ReplyHeader {
        self.send_write(conn_id, session_id, xid, request);
        loop {
            match self.next_reply() {
                CoreReply::Frame { frame, .. } => {
                    let header =
                        ReplyHeader::decode(&mut Reader::new(&frame[4..])).expect("a reply header");
                    if header.xid == xid {
                        return header;
                    }
                }
                CoreReply::Close { reason, .. } | CoreReply::CloseAll { reason } => {
                    panic!("server {} closed the connection: {reason}", self.id)
                }
                CoreReply::Connected { .. } => {}
            }
        }
    }
}

fn create(path: &str) -> Request {
    Request::Create(Create {
        op: OpCode::Create,
        path: path.into(),
        data: Some(b"x".to_vec()),
        acl: acl::open_acl(),
        flags: 0,
        ttl: -1,
    })
}

struct Ensemble {
    nodes: Vec<Node>,
    net: Net,
}

impl Ensemble {
    fn start(servers: u64) -> Ensemble {
        Ensemble::start_with_window(
            servers,
            zab::Config::new(1, &[1], &[]).outstanding_proposals_max,
        )
    }

    /// An ensemble whose leaders may have at most `proposals_max` proposals in flight.
    fn start_with_window(servers: u64, proposals_max: usize) -> Ensemble {
        Ensemble::start_with(servers, proposals_max, Config::default())
    }

    /// An ensemble whose members run with `config` (zoo.cfg settings).
    fn start_with(servers: u64, proposals_max: usize, config: Config) -> Ensemble {
        Ensemble::start_with_sync_limit(servers, proposals_max, config, 4)
    }

    /// As `start_with`, with followers that wait `sync_limit_ticks` ticks (50 ms) for their
    /// leader before they give it up.
    fn start_with_sync_limit(
        servers: u64,
        proposals_max: usize,
        config: Config,
        sync_limit_ticks: u64,
    ) -> Ensemble {
        let config = Arc::new(config);
        let mut inboxes = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..servers {
            let (sender, receiver) = unbounded();
            inboxes.push(sender);
            receivers.push(receiver);
        }
        let net = Net {
            inboxes: Arc::new(inboxes),
            cut: Arc::new(Mutex::new(HashSet::new())),
            refuse_forwards: Arc::new(AtomicBool::new(false)),
            tamper_digests: Arc::new(AtomicBool::new(false)),
            stall: Arc::new(Mutex::new(None)),
        };
        let ids: Vec<ServerId> = (1..=servers).collect();
        let mut nodes = Vec::new();
        for (index, inbound) in receivers.into_iter().enumerate() {
            let id = index as ServerId + 1;
            let mut zab_config = zab::Config::new(id, &ids, &[]);
            zab_config.tick_ms = 50;
            zab_config.init_limit_ticks = 10;
            zab_config.sync_limit_ticks = sync_limit_ticks;
            zab_config.finalize_wait_ms = 50;
            zab_config.outstanding_proposals_max = proposals_max;
            let stats = Arc::new(ServerStats::default());
            let (core_sender, core) = async_channel::unbounded();
            let pipeline = Pipeline::new(
                config.clone(),
                stats.clone(),
                PipelineStart {
                    tree: TreeVersion::new(),
                    sessions: Vec::new(),
                    secret: ringkeeper::session::SessionSecrets::only([7; 16]),
                    server_id: id as u8,
                },
                vec![core_sender],
                None,
                None,
            )
            .with_ensemble(QuorumStart {
                peer: Peer::new(zab_config),
                durable: DurableState {
                    epochs: Epochs::default(),
                    base_zxid: 0,
                    recent: Vec::new(),
                    reconfigs: Vec::new(),
                },
                links: Box::new(Links {
                    me: id,
                    net: net.clone(),
                }),
                disk: Arc::new(MemoryDisk),
                inbound,
                closed: crossbeam_channel::never(),
                tick_ms: 50,
            });
            let (input, input_receiver) = unbounded();
            let thread = thread::spawn(move || pipeline.run(input_receiver));
            nodes.push(Node {
                id,
                input,
                core,
                stats,
                version: None,
                replies: VecDeque::new(),
                thread: Some(thread),
            });
        }
        Ensemble { nodes, net }
    }

    /// Waits until the servers in `among` have one leader and the rest of them follow it.
    fn wait_for_leader(&self, among: &[ServerId]) -> ServerId {
        let deadline = Instant::now() + WAIT;
        loop {
            let modes: Vec<(ServerId, ServerMode)> = among
                .iter()
                .map(|id| (*id, self.nodes[*id as usize - 1].mode()))
                .collect();
            let leaders: Vec<ServerId> = modes
                .iter()
                .filter(|(_, mode)| *mode == ServerMode::Leader)
                .map(|(id, _)| *id)
                .collect();
            let followers = modes
                .iter()
                .filter(|(_, mode)| *mode == ServerMode::Follower)
                .count();
            if leaders.len() == 1 && followers + 1 == among.len() {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {among:?}: {modes:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn node(&mut self, id: ServerId) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    fn wait_for_zxid(&mut self, id: ServerId, zxid: i64) {
        let deadline = Instant::now() + WAIT;
        while self.node(id).zxid() < zxid {
            assert!(
                Instant::now() < deadline,
                "server {id} did not reach zxid {zxid:#x}"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.input.send(PipelineInput::Shutdown);
        }
        for node in &mut self.nodes {
            if let Some(thread) = node.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn session_of(reply: &CoreReply) -> (i64, Vec<u8>) {
    match reply {
        CoreReply::Connected {
            session_id, frame, ..
        } => {
            let response =
                ringkeeper::jute::records::ConnectResponse::decode(&mut Reader::new(&frame[4..]))
                    .expect("a connect response");
            (*session_id, response.passwd)
        }
        other => panic!("expected a connect answer, got {other:?}"),
    }
}

#[test]
fn writes_through_any_server_commit_everywhere_and_survive_the_leader() {
    let mut ensemble = Ensemble::start(3);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // A session made on a follower: forwarded createSession, answered at commit.
    let (session_id, passwd) = session_of(&ensemble.node(follower).connect(1, 0, Vec::new()));
    assert_ne!(session_id, 0);
    assert_eq!(
        (session_id >> 56) as u64,
        follower,
        "the follower's id is in the top byte of its sessions"
    );

    // A write on the follower is answered after it commits, and every server applies it.
    let header = ensemble
        .node(follower)
        .write(1, session_id, 1, create("/a"));
    assert_eq!(header.err, 0, "create through a follower");
    for id in 1..=3 {
        ensemble.wait_for_zxid(id, header.zxid);
        assert!(ensemble.node(id).has("/a"), "server {id} has /a");
    }
    // The leader counts proposal sizes (mntr zk_*_proposal_size); the others do not propose.
    let quorum = &ensemble.node(leader).stats.quorum;
    let sizes = [
        quorum.proposal_bytes_last.load(Ordering::Relaxed),
        quorum.proposal_bytes_min.load(Ordering::Relaxed),
        quorum.proposal_bytes_max.load(Ordering::Relaxed),
    ];
    assert!(sizes.iter().all(|size| *size > 36), "{sizes:?}");
    assert!(sizes[1] <= sizes[0] && sizes[0] <= sizes[2], "{sizes:?}");
    let follower_last = ensemble
        .node(follower)
        .stats
        .quorum
        .proposal_bytes_last
        .load(Ordering::Relaxed);
    assert_eq!(follower_last, -1);
    // A write that fails prep still commits as an error transaction, with its code.
    let header = ensemble
        .node(follower)
        .write(1, session_id, 2, create("/a"));
    assert_eq!(header.err, -110, "NodeExists through a follower");
    // sync through the follower.
    let header = ensemble.node(follower).write(
        1,
        session_id,
        3,
        Request::Sync(SyncRequest { path: "/a".into() }),
    );
    assert_eq!(header.err, 0, "sync through a follower");

    // The session moves to the leader; its old connection on the follower is now refused
    // with SessionMoved (the leader records who holds each session).
    let moved = ensemble.node(leader).connect(3, session_id, passwd.clone());
    assert_eq!(
        session_of(&moved).0,
        session_id,
        "the session resumed on the leader"
    );
    let header = ensemble
        .node(follower)
        .write(1, session_id, 5, create("/moved"));
    assert_eq!(header.err, -118, "SessionMoved through the old server");
    let header = ensemble
        .node(leader)
        .write(3, session_id, 6, create("/held"));
    assert_eq!(header.err, 0, "the new server holds the session");

    // The leader is cut off: the others elect a new one and go on; the old one stops serving.
    ensemble.net.isolate(leader, 3);
    let rest: Vec<ServerId> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = ensemble.wait_for_leader(&rest);
    assert_ne!(new_leader, leader);
    let deadline = Instant::now() + WAIT;
    while ensemble.node(leader).mode() != ServerMode::Looking {
        assert!(Instant::now() < deadline, "the cut-off leader kept serving");
        thread::sleep(Duration::from_millis(5));
    }

    // The session resumes on the new leader with its password, and writes go on.
    let other = ensemble
        .node(new_leader)
        .connect(2, session_id, passwd.clone());
    assert_eq!(session_of(&other).0, session_id, "the session moved");
    let header = ensemble
        .node(new_leader)
        .write(2, session_id, 4, create("/b"));
    assert_eq!(header.err, 0);
    let last = header.zxid;
    assert!(
        zab::epoch_of(last) > zab::epoch_of(1),
        "a new epoch after the election"
    );

    // Healed, the old leader follows and catches up.
    ensemble.net.heal();
    let leader_after = ensemble.wait_for_leader(&[1, 2, 3]);
    assert_eq!(leader_after, new_leader);
    ensemble.wait_for_zxid(leader, last);
    for id in 1..=3 {
        assert!(!ensemble.node(id).has("/moved"), "server {id} has /moved");
        for path in ["/a", "/b", "/held"] {
            assert!(ensemble.node(id).has(path), "server {id} has {path}");
        }
    }
    let zxids: BTreeSet<i64> = (1..=3).map(|id| ensemble.node(id).zxid()).collect();
    assert_eq!(zxids.len(), 1, "every server at the same zxid: {zxids:?}");
}

fn read_only_of(reply: &CoreReply) -> bool {
    match reply {
        CoreReply::Connected { frame, .. } => {
            ringkeeper::jute::records::ConnectResponse::decode(&mut Reader::new(&frame[4..]))
                .expect("a connect response")
                .read_only
        }
        other => panic!("expected a connect answer, got {other:?}"),
    }
}

fn ephemeral(path: &str) -> Request {
    match create(path) {
        Request::Create(mut create) => {
            create.flags = 1;
            Request::Create(create)
        }
        other => other,
    }
}

fn local_sessions_config(upgrading: bool) -> Config {
    Config {
        local_sessions_enabled: true,
        local_sessions_upgrading_enabled: upgrading,
        ..Config::default()
    }
}

/// localSessionsEnabled (LearnerSessionTracker): a follower's new session is its own; the
/// leader does not know it (a resume there is refused), yet its writes go through the leader
/// (LeaderSessionTracker.checkSession takes a session naming another server); its first
/// ephemeral makes it global, after which it resumes on the leader.
#[test]
fn a_local_session_stays_on_its_follower_until_an_ephemeral_upgrades_it() {
    let mut ensemble = Ensemble::start_with(3, 1000, local_sessions_config(true));
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let (session, passwd) = session_of(&ensemble.node(follower).connect(1, 0, Vec::new()));
    assert_eq!(session as u64 >> 56, follower, "the id names its server");
    let header = ensemble
        .node(follower)
        .write(1, session, 1, create("/local"));
    assert_eq!(header.err, 0, "a persistent create of a local session");
    match ensemble.node(leader).connect(2, session, passwd.clone()) {
        CoreReply::Connected { timeout_ms: 0, .. } => {}
        other => panic!("the leader resumed a local session of another server: {other:?}"),
    }
    let header = ensemble
        .node(follower)
        .write(1, session, 2, ephemeral("/local/e"));
    assert_eq!(header.err, 0, "the ephemeral create upgrades the session");
    let zxid = ensemble.node(follower).zxid();
    ensemble.wait_for_zxid(leader, zxid);
    let reply = ensemble.node(leader).connect(3, session, passwd);
    let (resumed, _) = session_of(&reply);
    assert_eq!(resumed, session, "global now: the leader resumes it");
    assert!(
        !matches!(reply, CoreReply::Connected { timeout_ms: 0, .. }),
        "the leader answered the upgraded session as expired"
    );
}

/// localSessionsUpgradingEnabled=false (QuorumZooKeeperServer.checkUpgradeSession): an
/// ephemeral on a local session fails with EphemeralOnLocalSession, on a follower and on the
/// leader, and the session lives on.
#[test]
fn an_ephemeral_on_a_local_session_fails_without_upgrading() {
    let mut ensemble = Ensemble::start_with(3, 1000, local_sessions_config(false));
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    for (conn, id) in [(1, follower), (2, leader)] {
        let (session, _) = session_of(&ensemble.node(id).connect(conn, 0, Vec::new()));
        let header = ensemble
            .node(id)
            .write(conn, session, 1, ephemeral(&format!("/e{id}")));
        assert_eq!(header.err, -120, "EphemeralOnLocalSession on server {id}");
        let header = ensemble
            .node(id)
            .write(conn, session, 2, create(&format!("/p{id}")));
        assert_eq!(header.err, 0);
    }
}

/// readonlymode.enabled (QuorumPeer's LOOKING case): a member cut off from the others serves
/// read-only clients after the grace period, with readOnly=true and a local session, refuses
/// writes with NotReadOnly and clients that did not ask for read-only; once it rejoins, the
/// read-only server ends and its connections close.
#[test]
fn a_cut_off_member_serves_read_only_clients_until_it_rejoins() {
    let config = Config {
        read_only_mode_enabled: true,
        ..local_sessions_config(false)
    };
    let mut ensemble = Ensemble::start_with(3, 1000, config);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let (session, _) = session_of(&ensemble.node(leader).connect(1, 0, Vec::new()));
    assert_eq!(
        ensemble
            .node(leader)
            .write(1, session, 1, create("/before"))
            .err,
        0
    );
    let zxid = ensemble.node(leader).zxid();
    ensemble.wait_for_zxid(follower, zxid);
    ensemble.net.isolate(follower, 3);
    let deadline = Instant::now() + WAIT;
    while ensemble.node(follower).mode() != ServerMode::ReadOnly {
        assert!(
            Instant::now() < deadline,
            "the cut-off member never served read-only"
        );
        thread::sleep(Duration::from_millis(5));
    }
    match ensemble.node(follower).connect_as(2, 0, Vec::new(), false) {
        CoreReply::Close { .. } => {}
        other => panic!("a read-only server took a read-write client: {other:?}"),
    }
    let reply = ensemble.node(follower).connect_as(3, 0, Vec::new(), true);
    assert!(read_only_of(&reply), "the ConnectResponse says readOnly");
    let (ro_session, _) = session_of(&reply);
    assert!(
        ensemble.node(follower).has("/before"),
        "reads see the committed tree"
    );
    let header = ensemble
        .node(follower)
        .write(3, ro_session, 1, create("/during"));
    assert_eq!(header.err, -119, "NotReadOnly");
    ensemble.net.heal();
    let deadline = Instant::now() + WAIT;
    loop {
        ensemble.node(follower).pump();
        let closed = ensemble
            .node(follower)
            .replies
            .iter()
            .any(|reply| matches!(reply, CoreReply::CloseAll { .. }));
        if closed && ensemble.node(follower).mode() == ServerMode::Follower {
            break;
        }
        assert!(Instant::now() < deadline, "the member did not rejoin");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_minority_refuses_clients() {
    let mut ensemble = Ensemble::start(3);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    ensemble.net.isolate(leader, 3);
    let deadline = Instant::now() + WAIT;
    while ensemble.node(leader).mode() != ServerMode::Looking {
        assert!(Instant::now() < deadline, "the cut-off leader kept serving");
        thread::sleep(Duration::from_millis(5));
    }
    match ensemble.node(leader).connect(9, 0, Vec::new()) {
        CoreReply::Close { .. } => {}
        other => panic!("a server without quorum answered a connect: {other:?}"),
    }
}

/// A forwarded request the link refuses at once (a full queue) would never be answered: the
/// learner closes that client's connection instead of leaving it to time out, and the
/// session carries on over a new connection.
#[test]
fn a_request_the_link_cannot_forward_closes_its_connection_instead_of_hanging() {
    let mut ensemble = Ensemble::start(3);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (session_id, passwd) = session_of(&ensemble.node(follower).connect(1, 0, Vec::new()));
    ensemble.net.refuse_forwards.store(true, Ordering::SeqCst);
    let node = ensemble.node(follower);
    node.send_write(1, session_id, 1, create("/lost"));
    loop {
        match node.next_reply() {
            CoreReply::Close { conn_id: 1, reason } => {
                assert!(reason.contains("forwarded"), "{reason}");
                break;
            }
            CoreReply::Frame { .. } => panic!("a reply to a request that never left"),
            _ => {}
        }
    }
    ensemble.net.refuse_forwards.store(false, Ordering::SeqCst);
    match ensemble.node(follower).connect(2, session_id, passwd) {
        CoreReply::Connected { .. } => {}
        other => panic!("the session did not resume: {other:?}"),
    }
    let header = ensemble
        .node(follower)
        .write(2, session_id, 2, create("/after"));
    assert_eq!(header.err, 0);
    assert!(!ensemble.node(leader).has("/lost"));
}

/// Overload is slowed, never refused: with a proposal window of 2, a burst of writes from a
/// leader's own client and from a follower's (forwarded) is answered in full, in each
/// session's order, with no connection closed. Before the admission queue, ZAB's `Busy` for
/// the third proposal closed the client's connection ("the ensemble did not take the write";
/// on the follower, "the leader did not take the request").
#[test]
fn a_full_proposal_window_holds_writes_back_instead_of_refusing_them() {
    let mut ensemble = Ensemble::start_with_window(3, 2);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (on_leader, _) = session_of(&ensemble.node(leader).connect(1, 0, Vec::new()));
    let (on_follower, _) = session_of(&ensemble.node(follower).connect(1, 0, Vec::new()));
    const BURST: i32 = 200;
    for xid in 1..=BURST {
        ensemble
            .node(leader)
            .send_write(1, on_leader, xid, create(&format!("/l{xid}")));
        ensemble
            .node(follower)
            .send_write(1, on_follower, xid, create(&format!("/f{xid}")));
    }
    for id in [leader, follower] {
        let node = ensemble.node(id);
        let mut expected = 1;
        while expected <= BURST {
            match node.next_reply() {
                CoreReply::Frame { frame, .. } => {
                    let header =
                        ReplyHeader::decode(&mut Reader::new(&frame[4..])).expect("a reply header");
                    assert_eq!(
                        header.xid, expected,
                        "server {id}: replies in request order"
                    );
                    assert_eq!(header.err, 0, "server {id}: xid {expected} failed");
                    expected += 1;
                }
                CoreReply::Close { reason, .. } | CoreReply::CloseAll { reason } => {
                    panic!("server {id} closed the connection under load: {reason}")
                }
                CoreReply::Connected { .. } => {}
            }
        }
    }
    let last = ensemble.node(leader).zxid();
    for id in 1..=3 {
        ensemble.wait_for_zxid(id, last);
        assert!(ensemble.node(id).has(&format!("/l{BURST}")));
        assert!(ensemble.node(id).has(&format!("/f{BURST}")));
    }
    assert_eq!(
        ensemble
            .node(leader)
            .stats
            .admission_queue
            .load(Ordering::Relaxed),
        0,
        "nothing is left waiting"
    );
}

/// A sync a follower's client sends behind its own writes is answered after them (ZooKeeper's
/// FIFO client order: Leader.processSync queues the SYNC reply behind the COMMITs, and the
/// follower's CommitProcessor keeps the session's order). The leader answers a forwarded sync
/// from its commit step, before that round's COMMIT packets go out, so the follower receives
/// Synced before the COMMIT of the writes; it answered at once, ahead of the writes' replies
/// (found by tests/ensemble/test_linearizability.py: Kazoo's "xids do not match").
#[test]
fn a_sync_behind_writes_on_a_follower_is_answered_after_them() {
    let mut ensemble = Ensemble::start(3);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (session, _) = session_of(&ensemble.node(follower).connect(1, 0, Vec::new()));
    const ROUNDS: i32 = 50;
    const WRITES: i32 = 3;
    let mut xid = 0;
    for round in 0..ROUNDS {
        let node = ensemble.node(follower);
        for n in 0..WRITES {
            xid += 1;
            node.send_write(1, session, xid, create(&format!("/r{round}-{n}")));
        }
        xid += 1;
        node.send_write(
            1,
            session,
            xid,
            Request::Sync(SyncRequest { path: "/".into() }),
        );
        let mut expected = xid - WRITES;
        while expected <= xid {
            match node.next_reply() {
                CoreReply::Frame { frame, .. } => {
                    let header =
                        ReplyHeader::decode(&mut Reader::new(&frame[4..])).expect("a reply header");
                    assert_eq!(
                        header.xid, expected,
                        "round {round}: replies in request order (the sync is xid {xid})"
                    );
                    assert_eq!(header.err, 0, "xid {expected} failed");
                    expected += 1;
                }
                CoreReply::Close { reason, .. } | CoreReply::CloseAll { reason } => {
                    panic!("the follower closed the connection: {reason}")
                }
                CoreReply::Connected { .. } => {}
            }
        }
    }
}

/// A session whose client keeps being heard is not expired because the session owner's
/// pipeline stalled: the touch reports its core sent meanwhile wait in the pipeline's input,
/// and they are taken in before any expiry is decided. ZooKeeper touches a session on the
/// thread that receives its packet (ZooKeeperServer.touch from the connection, the
/// LearnerHandler for a learner's PING), independently of the request processors, so a
/// stalled commit path expires nobody who is heard. The leader's loop used to pick one ready
/// channel at random and then expire: after a stall longer than the session timeout, with the
/// learners' messages ready too, it expired the session about every other time.
#[test]
fn a_session_heard_during_a_stall_of_its_leaders_pipeline_is_not_expired() {
    const TIMEOUT_MS: i32 = 1000;
    const STALL: Duration = Duration::from_millis(1500);
    const TOUCH_EVERY: Duration = Duration::from_millis(25);
    const ROUNDS: usize = 6;
    // Deadlines are rounded up to the tick (SessionTable::touch, as ZooKeeper's ExpiryQueue):
    // a short tick keeps them near the timeout.
    let config = Config {
        tick_time_ms: 50,
        min_session_timeout_ms: TIMEOUT_MS / 2,
        max_session_timeout_ms: TIMEOUT_MS,
        ..Config::default()
    };
    // The followers keep their stalled leader (10 s): only the session's fate is at stake.
    let mut ensemble = Ensemble::start_with_sync_limit(
        3,
        zab::Config::new(1, &[1], &[]).outstanding_proposals_max,
        config,
        200,
    );
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let (session, _) = session_of(&ensemble.node(leader).connect(1, 0, Vec::new()));
    let mut xid = 0;
    for round in 0..ROUNDS {
        *ensemble.net.stall.lock().unwrap() = Some((leader, STALL));
        // The client is heard all along: its core reports it every TOUCH_EVERY, through the
        // stall and for a while after it.
        let until = Instant::now() + STALL + Duration::from_millis(500);
        let node = ensemble.node(leader);
        while Instant::now() < until {
            let sent = node.input.send(PipelineInput::Touch {
                sessions: vec![session],
            });
            assert!(sent.is_ok());
            thread::sleep(TOUCH_EVERY);
            node.pump();
            for reply in node.replies.drain(..) {
                if let CoreReply::Close { reason, .. } | CoreReply::CloseAll { reason } = reply {
                    panic!("round {round}: the leader closed the session's connection: {reason}");
                }
            }
        }
        assert!(
            ensemble.net.stall.lock().unwrap().is_none(),
            "round {round}: the leader's pipeline never stalled"
        );
        xid += 1;
        let header =
            ensemble
                .node(leader)
                .write(1, session, xid, create(&format!("/heard{round}")));
        assert_eq!(header.err, 0, "round {round}: the session's write failed");
    }
}

fn digest_figures(node: &Node) -> (u64, u64) {
    (
        node.stats.digests_compared.load(Ordering::Relaxed),
        node.stats.digest_mismatches.load(Ordering::Relaxed),
    )
}

/// DataTree.compareDigest on every follower: the leader sends its tree digest after each
/// txn ahead of the proposal; each follower compares it with its own once it applied the
/// commit. The true digests count comparisons and no mismatch; one txn whose digest arrives
/// changed counts exactly one mismatch on each follower, which goes on serving and matches
/// again on the next txn (ZooKeeper logs and carries on). The leader compares nothing.
#[test]
fn followers_compare_the_leaders_digest_after_each_commit() {
    let mut ensemble = Ensemble::start(3);
    let leader = ensemble.wait_for_leader(&[1, 2, 3]);
    let followers: Vec<ServerId> = (1..=3).filter(|id| *id != leader).collect();
    let (session_id, _) = session_of(&ensemble.node(leader).connect(1, 0, Vec::new()));
    let mut last = 0;
    for xid in 1..=5 {
        let header = ensemble
            .node(leader)
            .write(1, session_id, xid, create(&format!("/d{xid}")));
        assert_eq!(header.err, 0);
        last = header.zxid;
    }
    let mut before = Vec::new();
    for &id in &followers {
        ensemble.wait_for_zxid(id, last);
        let (compared, mismatches) = digest_figures(ensemble.node(id));
        assert!(compared >= 5, "server {id} compared {compared} digests");
        assert_eq!(mismatches, 0, "server {id}: true digests never mismatch");
        before.push(compared);
    }
    assert_eq!(digest_figures(ensemble.node(leader)), (0, 0));

    ensemble.net.tamper_digests.store(true, Ordering::SeqCst);
    let header = ensemble
        .node(leader)
        .write(1, session_id, 6, create("/tampered"));
    ensemble.net.tamper_digests.store(false, Ordering::SeqCst);
    assert_eq!(header.err, 0);
    let header = ensemble
        .node(leader)
        .write(1, session_id, 7, create("/after"));
    assert_eq!(header.err, 0);
    for (&id, compared_before) in followers.iter().zip(before) {
        ensemble.wait_for_zxid(id, header.zxid);
        let (compared, mismatches) = digest_figures(ensemble.node(id));
        assert_eq!(
            mismatches, 1,
            "server {id}: one tampered digest, one mismatch"
        );
        assert!(compared >= compared_before + 2, "server {id}: {compared}");
        assert!(ensemble.node(id).has("/after"), "server {id} goes on");
    }
}
