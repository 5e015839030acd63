//! [io] The sockets of ZooKeeper's server-to-server protocol, as [`crate::quorum::QuorumLinks`]:
//! the election port (one connection per pair of servers, QuorumCnxManager's rules) and one
//! connection to the leader's quorum port. Plain threads and blocking sockets, each with a
//! bounded timeout; what the bytes mean is [`super::translate`]'s business.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tracing::{info, warn};

use crate::config::QuorumConfig;
use crate::quorum::{QuorumLinks, Wire};
use crate::zab::{ServerId, Zxid};
use crate::zkformat::model::ZkTree;

use super::settle::FuzzySnap;
use super::snapstream::read_snapshot_stream;
use super::translate::{Effect, Translator};
use super::wire::{kind, read_packet, InitialMessage, QuorumPacket, ELECTION_MESSAGE_BYTES_MAX};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a learner retries the leader's quorum port while it is refused.
const CONNECT_RETRY: Duration = Duration::from_millis(100);
/// How long an accepted election connection may take to send its initial message.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Election messages queued per peer while its connection is being made (older ones are
/// dropped: FLE repeats its notification every tick).
const ELECTION_QUEUE_MAX: usize = 64;
/// Quorum packets queued for the leader connection before sends are refused.
const QUORUM_QUEUE_MAX: usize = 100_000;
/// Learner connections this server keeps open on its quorum port at once (one per learner
/// of the ensemble is what a leader needs; more are refused and logged).
const LEARNER_CONNECTIONS_MAX: usize = 256;
/// The first number of a learner connection (apart from the leader connections').
const LEARNER_TCP_FROM: u64 = 1 << 48;

/// What goes out on a learner connection.
enum Outgoing {
    Packet(QuorumPacket),
    /// Bytes of a snapshot stream, and what to deliver once they are written.
    Raw(Vec<u8>, Option<(ServerId, Wire)>),
}

/// A learner's connection to this server's quorum port (this server leading).
struct LearnerConn {
    queue: Sender<Outgoing>,
    stream: TcpStream,
}

/// One election connection, with a generation so that a reader that ends only clears its own.
struct ElectionConn {
    stream: TcpStream,
    generation: u64,
}

struct Peer {
    queue: Sender<Vec<u8>>,
    conn: Mutex<Option<ElectionConn>>,
}

struct QuorumConn {
    conn: u64,
    queue: Sender<QuorumPacket>,
    stream: Arc<Mutex<Option<TcpStream>>>,
}

struct Shared {
    me: ServerId,
    my_election_address: String,
    election_addrs: BTreeMap<ServerId, SocketAddr>,
    quorum_addrs: BTreeMap<ServerId, SocketAddr>,
    translator: Mutex<Translator>,
    inbound: Sender<(ServerId, Wire)>,
    closed: Sender<ServerId>,
    peers: Mutex<HashMap<ServerId, Arc<Peer>>>,
    quorum: Mutex<Option<QuorumConn>>,
    learners: Mutex<HashMap<u64, LearnerConn>>,
    next_learner_tcp: AtomicU64,
    /// This server's quorum port (None for an observer, which never leads).
    quorum_listen: Option<SocketAddr>,
    generations: AtomicU64,
    stop: AtomicBool,
    /// The quorum connection's read timeout: initLimit ticks, as the learner's socket has
    /// during sync (and the leader pings every half tick after it).
    read_timeout: Duration,
}

/// ZooKeeper's wire for this member's quorum traffic.
pub struct ZkLinks {
    shared: Arc<Shared>,
}

/// The configuration text a ZooKeeper server sends with its notifications and NEWLEADER
/// (QuorumMaj.toString: `server.N=...` lines, then `version=<hex>`).
pub fn config_text(config: &QuorumConfig) -> String {
    let mut text = String::new();
    for (id, server) in &config.servers {
        text.push_str(&format!(
            "server.{id}={}\n",
            crate::config::dynamic::server_spec(server)
        ));
    }
    text.push_str(&format!("version={:x}", config.version));
    text
}

impl ZkLinks {
    pub fn start(
        config: &QuorumConfig,
        tick_ms: u64,
        default_timeout_ms: i32,
        inbound: Sender<(ServerId, Wire)>,
        closed: Sender<ServerId>,
    ) -> std::io::Result<ZkLinks> {
        let me = config.my_id;
        let Some(own) = config.servers.get(&me) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("myid {me} has no server.{me} line"),
            ));
        };
        let observer = own.observer;
        let listener = TcpListener::bind(own.election_addr)?;
        // A participant may be elected: its learners connect to its quorum port
        // (ZooKeeper's leader opens it once elected; open from the start here, and a learner
        // that connects while this server is not leading is told so by its notification).
        let quorum_listener = if observer {
            None
        } else {
            Some(TcpListener::bind(own.quorum_addr)?)
        };
        let translator = Translator::new(
            me,
            observer,
            config_text(config).into_bytes(),
            config.version,
            default_timeout_ms,
        );
        let shared = Arc::new(Shared {
            me,
            my_election_address: format!("{}:{}", own.host, own.election_addr.port()),
            election_addrs: config
                .servers
                .iter()
                .map(|(id, server)| (*id, server.election_addr))
                .collect(),
            quorum_addrs: config
                .servers
                .iter()
                .map(|(id, server)| (*id, server.quorum_addr))
                .collect(),
            translator: Mutex::new(translator),
            inbound,
            closed,
            peers: Mutex::new(HashMap::new()),
            quorum: Mutex::new(None),
            learners: Mutex::new(HashMap::new()),
            next_learner_tcp: AtomicU64::new(LEARNER_TCP_FROM),
            quorum_listen: quorum_listener.as_ref().map(|_| own.quorum_addr),
            generations: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            read_timeout: Duration::from_millis(
                tick_ms.saturating_mul(config.init_limit.max(config.sync_limit).max(1)),
            ),
        });
        let accepting = shared.clone();
        std::thread::Builder::new()
            .name("zk-election-accept".into())
            .spawn(move || accept_loop(accepting, listener))?;
        if let Some(quorum_listener) = quorum_listener {
            let accepting = shared.clone();
            std::thread::Builder::new()
                .name("zk-quorum-accept".into())
                .spawn(move || accept_learners(accepting, quorum_listener))?;
        }
        info!(
            "quorum.protocol=zookeeper: Apache ZooKeeper's server-to-server protocol on {} \
             (election) and {} (quorum) as server {me} ({})",
            own.election_addr,
            own.quorum_addr,
            if observer { "observer" } else { "participant" }
        );
        Ok(ZkLinks { shared })
    }
}

impl QuorumLinks for ZkLinks {
    fn send(&self, to: ServerId, message: &Wire) -> bool {
        let mut effects = Vec::new();
        let Ok(mut translator) = self.shared.translator.lock() else {
            return false;
        };
        let sent = translator.outbound(to, message, &mut effects);
        perform(&self.shared, effects);
        sent
    }

    fn zookeeper_snapshots(&self) -> bool {
        true
    }

    fn shutdown(self: Box<Self>) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(mut learners) = self.shared.learners.lock() {
            for (_, learner) in learners.drain() {
                let _ = learner.stream.shutdown(Shutdown::Both);
            }
        }
        if let Some(addr) = self.shared.quorum_listen {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
        if let Ok(mut quorum) = self.shared.quorum.lock() {
            if let Some(conn) = quorum.take() {
                shut(&conn.stream);
            }
        }
        if let Ok(peers) = self.shared.peers.lock() {
            for peer in peers.values() {
                if let Ok(conn) = peer.conn.lock() {
                    if let Some(conn) = conn.as_ref() {
                        let _ = conn.stream.shutdown(Shutdown::Both);
                    }
                }
            }
        }
        // The accept loop wakes on a connection of its own.
        if let Some(addr) = self.shared.election_addrs.get(&self.shared.me) {
            let _ = TcpStream::connect_timeout(addr, Duration::from_millis(200));
        }
    }
}

fn shut(stream: &Arc<Mutex<Option<TcpStream>>>) {
    if let Ok(stream) = stream.lock() {
        if let Some(stream) = stream.as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Performs the translator's effects, in order (called with the translator locked, so that
/// effects of different calls never interleave; every one of them is non-blocking).
fn perform(shared: &Arc<Shared>, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Deliver(from, wire) => {
                let _ = shared.inbound.send((from, wire));
            }
            Effect::Closed(leader) => {
                let _ = shared.closed.send(leader);
            }
            Effect::Notify { to, body } => election_send(shared, to, body),
            Effect::Connect {
                leader,
                conn,
                first,
            } => connect_leader(shared, leader, conn, first),
            Effect::Send { conn, packet } => {
                if let Ok(quorum) = shared.quorum.lock() {
                    if let Some(current) = quorum.as_ref().filter(|q| q.conn == conn) {
                        if current.queue.try_send(packet).is_err() {
                            warn!("the queue to the leader is full: closing the link");
                            shut(&current.stream);
                        }
                    }
                }
            }
            Effect::Close { conn } => {
                if let Ok(mut quorum) = shared.quorum.lock() {
                    if quorum.as_ref().is_some_and(|q| q.conn == conn) {
                        if let Some(current) = quorum.take() {
                            shut(&current.stream);
                        }
                    }
                }
            }
            Effect::ToLearner { tcp, packet } => to_learner(shared, tcp, Outgoing::Packet(packet)),
            Effect::RawToLearner { tcp, bytes, then } => {
                to_learner(shared, tcp, Outgoing::Raw(bytes, then))
            }
            Effect::CloseLearner { tcp } => {
                if let Ok(mut learners) = shared.learners.lock() {
                    if let Some(learner) = learners.remove(&tcp) {
                        let _ = learner.stream.shutdown(Shutdown::Both);
                    }
                }
            }
        }
    }
}

fn to_learner(shared: &Arc<Shared>, tcp: u64, outgoing: Outgoing) {
    if let Ok(learners) = shared.learners.lock() {
        if let Some(learner) = learners.get(&tcp) {
            if learner.queue.try_send(outgoing).is_err() {
                warn!("the queue to a learner is full: closing its connection");
                let _ = learner.stream.shutdown(Shutdown::Both);
            }
        }
    }
}

// ------------------------------------------------------------------ election port

fn peer_of(shared: &Arc<Shared>, sid: ServerId) -> Option<Arc<Peer>> {
    if sid == shared.me || !shared.election_addrs.contains_key(&sid) {
        return None;
    }
    let mut peers = shared.peers.lock().ok()?;
    if let Some(peer) = peers.get(&sid) {
        return Some(peer.clone());
    }
    let (queue, messages) = crossbeam_channel::bounded(ELECTION_QUEUE_MAX);
    let peer = Arc::new(Peer {
        queue,
        conn: Mutex::new(None),
    });
    peers.insert(sid, peer.clone());
    let sending = shared.clone();
    let sender_peer = peer.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("zk-election-send-{sid}"))
        .spawn(move || send_loop(sending, sid, sender_peer, messages));
    if let Err(error) = spawned {
        warn!("cannot start the election sender to server {sid}: {error}");
    }
    Some(peer)
}

fn election_send(shared: &Arc<Shared>, to: ServerId, body: Vec<u8>) {
    if let Some(peer) = peer_of(shared, to) {
        // A full queue drops this notification: the peer's connection is down, and ZAB
        // sends a fresh one every tick.
        let _ = peer.queue.try_send(body);
    }
}

/// Sends `to`'s queued notifications, connecting as QuorumCnxManager.connectOne does: the
/// higher sid keeps the connection it opens; a lower sid's connection is closed by the other
/// side, which connects back (and [`accept_loop`] keeps that one).
fn send_loop(shared: Arc<Shared>, to: ServerId, peer: Arc<Peer>, messages: Receiver<Vec<u8>>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok(body) = messages.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let stream = current_stream(&peer).or_else(|| dial_election(&shared, to, &peer));
        let Some(mut stream) = stream else {
            continue;
        };
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        if stream.write_all(&frame).is_err() {
            if let Ok(mut conn) = peer.conn.lock() {
                *conn = None;
            }
        }
    }
}

fn current_stream(peer: &Peer) -> Option<TcpStream> {
    let conn = peer.conn.lock().ok()?;
    conn.as_ref().and_then(|conn| conn.stream.try_clone().ok())
}

fn dial_election(shared: &Arc<Shared>, to: ServerId, peer: &Arc<Peer>) -> Option<TcpStream> {
    let addr = shared.election_addrs.get(&to)?;
    let mut stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).ok()?;
    let _ = stream.set_nodelay(true);
    let hello = InitialMessage::v1(shared.me, &shared.my_election_address).encode();
    stream.write_all(&hello).ok()?;
    if shared.me > to {
        adopt(shared, to, peer, stream.try_clone().ok()?);
        return Some(stream);
    }
    // The other side closes this connection and connects back: wait (bounded) for it.
    drop(stream);
    for _ in 0..40 {
        if let Some(stream) = current_stream(peer) {
            return Some(stream);
        }
        std::thread::sleep(Duration::from_millis(50)); // polls for the accept thread's work
    }
    None
}

/// Makes `stream` the connection with `sid` and reads its notifications.
fn adopt(shared: &Arc<Shared>, sid: ServerId, peer: &Arc<Peer>, stream: TcpStream) {
    let generation = shared.generations.fetch_add(1, Ordering::SeqCst);
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    if let Ok(mut conn) = peer.conn.lock() {
        if let Some(old) = conn.replace(ElectionConn { stream, generation }) {
            let _ = old.stream.shutdown(Shutdown::Both);
        }
    }
    let reading = shared.clone();
    let reading_peer = peer.clone();
    let _ = std::thread::Builder::new()
        .name(format!("zk-election-recv-{sid}"))
        .spawn(move || {
            read_notifications(&reading, sid, reader);
            if let Ok(mut conn) = reading_peer.conn.lock() {
                if conn.as_ref().is_some_and(|c| c.generation == generation) {
                    *conn = None;
                }
            }
        });
}

fn read_notifications(shared: &Arc<Shared>, from: ServerId, stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    while !shared.stop.load(Ordering::SeqCst) {
        let mut length = [0u8; 4];
        if reader.read_exact(&mut length).is_err() {
            return;
        }
        let length = i32::from_be_bytes(length);
        if length <= 0 || length as usize > ELECTION_MESSAGE_BYTES_MAX {
            warn!("election message of {length} bytes from server {from}: closing");
            return;
        }
        let mut body = vec![0u8; length as usize];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut effects = Vec::new();
        let Ok(mut translator) = shared.translator.lock() else {
            return;
        };
        translator.notification(from, &body, &mut effects);
        perform(shared, effects);
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let handling = shared.clone();
        let _ = std::thread::Builder::new()
            .name("zk-election-handshake".into())
            .spawn(move || handshake(handling, stream));
    }
}

/// QuorumCnxManager.handleConnection: read the initial message; keep a connection from a
/// higher sid, close one from a lower sid and connect back.
fn handshake(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(_) => return,
    };
    let mut bytes = Vec::new();
    let message = loop {
        match InitialMessage::decode(&bytes) {
            Ok(Some((message, used))) if used == bytes.len() => break message,
            Ok(Some(_)) => {
                // The initial message is followed by a notification only after the
                // handshake; anything sent along in the same read is not expected.
                warn!("bytes after an election handshake: closing");
                return;
            }
            Ok(None) => {}
            Err(error) => {
                warn!("election handshake refused: {error}");
                return;
            }
        }
        // Read only what the next field needs, so nothing after the message is consumed.
        let want = match bytes.len() {
            n if n < 8 => 8 - n,
            n if n < 20 => 20 - n,
            _ => {
                let length = i32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
                (20 + length.max(0) as usize)
                    .saturating_sub(bytes.len())
                    .max(1)
            }
        };
        let mut chunk = vec![0u8; want];
        if reader.read_exact(&mut chunk).is_err() {
            return;
        }
        bytes.extend_from_slice(&chunk);
    };
    let _ = stream.set_read_timeout(None);
    let sid = message.sid;
    let Some(peer) = peer_of(&shared, sid) else {
        warn!("election connection from unknown server {sid}: closing");
        return;
    };
    if sid < shared.me {
        drop(stream);
        // Connect back now: the peer has something to tell us (it connected).
        let _ = dial_election(&shared, sid, &peer);
        return;
    }
    adopt(&shared, sid, &peer, stream);
}

// ------------------------------------------------------------------ quorum port

fn connect_leader(shared: &Arc<Shared>, leader: ServerId, conn: u64, first: QuorumPacket) {
    let Some(addr) = shared.quorum_addrs.get(&leader).copied() else {
        // ZAB only follows configured servers; its initLimit ends the attempt.
        warn!("no quorum address for server {leader}");
        return;
    };
    let (queue, packets) = crossbeam_channel::bounded(QUORUM_QUEUE_MAX);
    let stream_slot = Arc::new(Mutex::new(None));
    if let Ok(mut quorum) = shared.quorum.lock() {
        if let Some(old) = quorum.replace(QuorumConn {
            conn,
            queue,
            stream: stream_slot.clone(),
        }) {
            shut(&old.stream);
        }
    }
    let connecting = shared.clone();
    let _ = std::thread::Builder::new()
        .name("zk-learner".into())
        .spawn(move || {
            let outcome = learner_connection(&connecting, addr, conn, first, packets, &stream_slot);
            if let Err(reason) = outcome {
                info!("link {conn} to leader {leader} at {addr} ended: {reason}");
            }
            shut(&stream_slot);
            if let Ok(mut translator) = connecting.translator.lock() {
                let mut effects = Vec::new();
                translator.closed(conn, &mut effects);
                perform(&connecting, effects);
            }
        });
}

/// Connects to the leader's quorum port, retrying every [`CONNECT_RETRY`] for up to the
/// connection's read timeout (initLimit ticks): ZooKeeper's leader opens its port only once
/// it is elected, and a follower that decided first would otherwise find it refused
/// (Learner.connectToLeader likewise retries within initLimit). Gives up when this
/// connection is superseded or the links stop.
fn connect_within(shared: &Arc<Shared>, addr: SocketAddr, conn: u64) -> Result<TcpStream, String> {
    let deadline = std::time::Instant::now() + shared.read_timeout;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT.min(remaining.max(CONNECT_RETRY))) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                let current = shared
                    .quorum
                    .lock()
                    .is_ok_and(|q| q.as_ref().map(|q| q.conn) == Some(conn));
                if !current || shared.stop.load(Ordering::SeqCst) {
                    return Err(format!("superseded while connecting ({error})"));
                }
                if std::time::Instant::now() + CONNECT_RETRY >= deadline {
                    return Err(format!("no connection within initLimit: {error}"));
                }
                // Nothing to await: the leader's listener appears without telling anyone.
                std::thread::sleep(CONNECT_RETRY);
            }
        }
    }
}

fn learner_connection(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    conn: u64,
    first: QuorumPacket,
    packets: Receiver<QuorumPacket>,
    slot: &Arc<Mutex<Option<TcpStream>>>,
) -> Result<(), String> {
    let stream = connect_within(shared, addr, conn)?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(shared.read_timeout))
        .map_err(|e| e.to_string())?;
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let writer_stream = stream.try_clone().map_err(|e| e.to_string())?;
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(stream);
    }
    if shared
        .quorum
        .lock()
        .map_or(true, |q| q.as_ref().map(|q| q.conn) != Some(conn))
    {
        return Err("superseded before it connected".into());
    }
    let writing = shared.clone();
    let writer_slot = slot.clone();
    std::thread::Builder::new()
        .name("zk-learner-send".into())
        .spawn(move || {
            let mut out = BufWriter::new(writer_stream);
            let mut send =
                |packet: &QuorumPacket| -> std::io::Result<()> { out.write_all(&packet.encode()) };
            if send(&first).and_then(|_| out.flush()).is_err() {
                shut(&writer_slot);
                return;
            }
            loop {
                let packet = match packets.recv_timeout(Duration::from_millis(500)) {
                    Ok(packet) => packet,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if writing.stop.load(Ordering::SeqCst) {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                };
                let mut result = out.write_all(&packet.encode());
                // Write whatever else is queued before flushing (group the writes).
                while result.is_ok() {
                    match packets.try_recv() {
                        Ok(packet) => result = out.write_all(&packet.encode()),
                        Err(_) => break,
                    }
                }
                if result.and_then(|_| out.flush()).is_err() {
                    shut(&writer_slot);
                    return;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let mut input = BufReader::with_capacity(256 * 1024, reader);
    // A SNAP sync, held from the SNAP to NEWLEADER while its fuzzy tree is settled (see
    // `settle`).
    let mut fuzzy: Option<FuzzySnap> = None;
    loop {
        let packet = read_packet(&mut input).map_err(|e| e.to_string())?;
        let arrived: Vec<(QuorumPacket, Option<Vec<u8>>)> = if packet.kind == kind::SNAP {
            let tree = read_snapshot_stream(&mut input, packet.zxid).map_err(|e| e.to_string())?;
            info!(
                "snapshot from the ZooKeeper leader at {:#x}: {} znodes, {} sessions; \
                 settling it with the commits that follow until NEWLEADER",
                packet.zxid,
                tree.len(),
                tree.sessions.len()
            );
            fuzzy = Some(FuzzySnap::new(packet.zxid, tree));
            continue;
        } else if let Some(sync) = fuzzy.as_mut() {
            if !sync.hold(packet)? {
                continue;
            }
            let Some(sync) = fuzzy.take() else { continue };
            let settled = sync.settle()?;
            let snap = QuorumPacket::new(kind::SNAP, settled.zxid, None);
            let bytes = synced_snapshot(
                shared,
                settled.zxid,
                settled.absorbed,
                settled.digest_matched,
                settled.tree,
            )?;
            std::iter::once((snap, Some(bytes)))
                .chain(settled.rest.into_iter().map(|packet| (packet, None)))
                .collect()
        } else {
            vec![(packet, None)]
        };
        let Ok(mut translator) = shared.translator.lock() else {
            return Err("translator poisoned".into());
        };
        for (packet, snapshot) in arrived {
            let mut effects = Vec::new();
            translator.inbound(conn, packet, snapshot, &mut effects);
            perform(shared, effects);
            if translator.leader().is_none() {
                return Err(translator
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the link closed".into()));
            }
        }
    }
}

/// The settled tree of a SNAP sync as ringkeeper's snapshot; its sessions' timeouts go to
/// the translator (PING touches carry them).
fn synced_snapshot(
    shared: &Shared,
    zxid: Zxid,
    absorbed: usize,
    digest_matched: Option<bool>,
    tree: ZkTree,
) -> Result<Vec<u8>, String> {
    let sessions: Vec<(i64, i32)> = tree
        .sessions
        .iter()
        .map(|(id, timeout)| (*id, *timeout))
        .collect();
    let nodes = tree.len();
    match digest_matched {
        Some(false) => warn!(
            "the settled snapshot at {zxid:#x} does not match the leader's digest of that txn \
             (ZooKeeper's learners log the same and go on)"
        ),
        Some(true) => info!("the settled snapshot at {zxid:#x} matches the leader's digest"),
        None => {}
    }
    let (version, records) = crate::zkformat::import::to_ringkeeper(tree);
    let bytes = crate::snapshot::encode_snapshot(&version, &records)
        .map_err(|e| format!("encoding the leader's snapshot: {e}"))?;
    info!(
        "synced with the ZooKeeper leader at {zxid:#x} ({absorbed} txns committed during its \
         walk applied): {nodes} znodes, {} sessions",
        sessions.len()
    );
    if let Ok(mut translator) = shared.translator.lock() {
        translator.learn_sessions(&sessions);
    }
    Ok(bytes)
}

// ------------------------------------------------------------------ quorum port (leading)

/// Accepts learners on this server's quorum port (Leader.LearnerCnxAcceptor): each
/// connection gets a reader and a writer thread; the translator's leader side
/// ([`super::lead`]) decides what its packets mean.
fn accept_learners(shared: Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let open = shared.learners.lock().map_or(0, |learners| learners.len());
        if open >= LEARNER_CONNECTIONS_MAX {
            warn!(
                "a learner connection from {:?} refused: {LEARNER_CONNECTIONS_MAX} are open",
                stream.peer_addr().ok()
            );
            continue;
        }
        let handling = shared.clone();
        let _ = std::thread::Builder::new()
            .name("zk-learner-handler".into())
            .spawn(move || {
                let tcp = handling.next_learner_tcp.fetch_add(1, Ordering::SeqCst);
                let peer = stream.peer_addr().ok();
                if let Err(reason) = learner_handler(&handling, tcp, stream) {
                    info!("learner connection {tcp} from {peer:?} ended: {reason}");
                }
                if let Ok(mut learners) = handling.learners.lock() {
                    if let Some(learner) = learners.remove(&tcp) {
                        let _ = learner.stream.shutdown(Shutdown::Both);
                    }
                }
                if let Ok(mut translator) = handling.translator.lock() {
                    let mut effects = Vec::new();
                    translator.learner_closed(tcp, &mut effects);
                    perform(&handling, effects);
                }
            });
    }
}

fn learner_handler(shared: &Arc<Shared>, tcp: u64, stream: TcpStream) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    // LearnerHandler reads with the initLimit timeout during the sync and syncLimit after;
    // here one timeout of both (a follower answers the pings this side sends every tick).
    stream
        .set_read_timeout(Some(shared.read_timeout))
        .map_err(|e| e.to_string())?;
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let writer_stream = stream.try_clone().map_err(|e| e.to_string())?;
    let (queue, outgoing) = crossbeam_channel::bounded(QUORUM_QUEUE_MAX);
    if let Ok(mut learners) = shared.learners.lock() {
        learners.insert(tcp, LearnerConn { queue, stream });
    }
    if let Ok(mut translator) = shared.translator.lock() {
        translator.learner_accepted(tcp);
    }
    let writing = shared.clone();
    std::thread::Builder::new()
        .name("zk-learner-write".into())
        .spawn(move || learner_writer(&writing, tcp, writer_stream, outgoing))
        .map_err(|e| e.to_string())?;
    let mut input = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let packet = read_packet(&mut input).map_err(|e| e.to_string())?;
        let Ok(mut translator) = shared.translator.lock() else {
            return Err("translator poisoned".into());
        };
        let mut effects = Vec::new();
        translator.learner_inbound(tcp, packet, &mut effects);
        perform(shared, effects);
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// Writes a learner connection's queue in order, grouping what is queued into one flush; a
/// snapshot chunk is acknowledged to the pipeline once it is written (so that the stream's
/// window bounds what waits here).
fn learner_writer(shared: &Arc<Shared>, tcp: u64, stream: TcpStream, outgoing: Receiver<Outgoing>) {
    let shutdown = stream.try_clone();
    let mut out = BufWriter::with_capacity(256 * 1024, stream);
    let mut after_flush: Vec<(ServerId, Wire)> = Vec::new();
    let fail = |out: BufWriter<TcpStream>| {
        drop(out);
        if let Ok(stream) = &shutdown {
            let _ = stream.shutdown(Shutdown::Both);
        }
    };
    loop {
        let first = match outgoing.recv_timeout(Duration::from_millis(500)) {
            Ok(item) => item,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let gone = shared
                    .learners
                    .lock()
                    .map_or(true, |learners| !learners.contains_key(&tcp));
                if gone || shared.stop.load(Ordering::SeqCst) {
                    return fail(out);
                }
                continue;
            }
            Err(_) => return fail(out),
        };
        let mut item = Some(first);
        let mut result = Ok(());
        while let Some(next) = item.take() {
            result = match next {
                Outgoing::Packet(packet) => out.write_all(&packet.encode()),
                Outgoing::Raw(bytes, then) => {
                    after_flush.extend(then);
                    out.write_all(&bytes)
                }
            };
            if result.is_err() {
                break;
            }
            item = outgoing.try_recv().ok();
        }
        if result.and_then(|_| out.flush()).is_err() {
            return fail(out);
        }
        for (from, wire) in after_flush.drain(..) {
            let _ = shared.inbound.send((from, wire));
        }
    }
}
