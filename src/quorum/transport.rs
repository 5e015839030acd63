//! [io] TCP links between the servers of an ensemble, on plain threads.
//!
//! Each server runs two transports: one on its election port (notifications) and one on its
//! quorum port (leader–learner traffic and what learners forward). A transport:
//!
//! - **sends** to each other member over one outbound connection of its own (me → peer),
//!   used only for sending. It is dialled lazily, when the first message for that peer is
//!   taken from its queue, and redialled after a failure with capped exponential backoff.
//!   While a link is down (between a failure and the next successful dial) or its queue is
//!   full, messages for it are dropped: ZAB treats a lost link message like a TCP reset (the
//!   sequence numbers of `Message::Link` detect the gap; election notifications are resent).
//! - **receives** on connections it accepts, used only for receiving. So there is exactly one
//!   connection per direction and pair, and no duplicate-connection tie-breaking (ZooKeeper's
//!   `QuorumCnxManager` needs one because it sends and receives on one connection).
//!
//! Per (sender, receiver) pair messages arrive in order while a connection lives. When a
//! member connects again, its previous inbound connection is closed and nothing more is
//! delivered from it, so messages of an old connection never arrive after those of a newer
//! one. Messages queued or in flight when a connection fails may be lost.
//!
//! # Bytes on a connection
//!
//! ```text
//! handshake (dialer → acceptor, once, HANDSHAKE_BYTES = 20)
//!   0  magic             8 bytes  "RKQUORUM"
//!   8  protocol version  u32      1 (PROTOCOL_VERSION)
//!   12 server id         u64      the dialer's id
//! then frames, each
//!   0  body length       u32      at most frame_bytes_max
//!   4  body              wire::encode (version byte, kind byte, fields; see super::wire)
//! ```
//!
//! All integers big-endian. The acceptor closes (with a logged reason, never failing the
//! process) a connection whose handshake does not arrive within `connect_timeout`, is
//! malformed, has another protocol version, or names a server that is not a member (or is
//! this server); and a connection that sends a frame over `frame_bytes_max` or a body that
//! does not decode. The handshake identifies, it does not authenticate: without quorum TLS
//! or SASL ([`LinkSecurity`]), as in ZooKeeper, the quorum ports must be reachable by members
//! only.
//!
//! # Security ([`LinkSecurity`]: sslQuorum, portUnification, quorum.auth.*)
//!
//! - **TLS** (`sslQuorum`): the dialer starts TLS before anything else and the acceptor
//!   takes only TLS; with `portUnification` the acceptor takes both, told apart by the first
//!   byte (0x16, a TLS handshake record, for TLS; the handshake magic `R` otherwise), as
//!   ZooKeeper's UnifiedServerSocket does. Both sides check the other's certificate chain
//!   against the quorum trust store (mutual TLS unless `ssl.quorum.clientAuth` says
//!   otherwise) and its names (see `net::tls::QuorumTls`); the acceptor checks them against
//!   the member the handshake names.
//! - **SASL** (`quorum.auth.*`, see `auth::quorum`): a dialer with
//!   `quorum.auth.learnerRequireSasl=true` sends protocol version 2
//!   ([`PROTOCOL_VERSION_SASL`]), which means that a SASL exchange follows the handshake,
//!   before any frame, in packets (both directions)
//!   ```text
//!   0  status        i8    0 IN_PROGRESS, 1 SUCCESS, -1 ERROR (ZooKeeper's QuorumAuth.Status)
//!   1  token length  u32   at most auth::SASL_TOKEN_BYTES_MAX
//!   5  token
//!   ```
//!   the dialer sending IN_PROGRESS tokens and the acceptor answering each with
//!   IN_PROGRESS (a challenge), SUCCESS (the final token) or ERROR (empty), as
//!   SaslQuorumAuthLearner and SaslQuorumAuthServer exchange QuorumAuthPackets. A version-1
//!   dialer does not authenticate; an acceptor with `quorum.auth.serverRequireSasl=true`
//!   refuses it, and one that fails the exchange. Each refusal is logged with its reason.
//!
//! # Threads (all named, e.g. `quorum-tx-3`)
//!
//! - `<name>-accept`: accepts connections, at most `PENDING_HANDSHAKES_MAX` of them waiting
//!   for their handshake at once;
//! - `<name>-hs`: one per accepted connection until its handshake is read, then it becomes
//!   `<name>-rx-<peer>`, which reads frames and delivers them to `inbound`;
//! - `<name>-tx-<peer>`: one per other member; takes every queued frame, writes them through a
//!   buffer and flushes when the queue is empty (one syscall for a burst of small proposals).
//!
//! [`Transport::shutdown`] closes the listener and every socket (which wakes threads blocked
//! on them), drops the queues, and waits for the threads with a deadline.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError};
use tracing::{debug, info, warn};

use super::{wire, Wire};
use crate::auth::quorum::QuorumSasl;
use crate::net::tls::QuorumTls;
use crate::zab::ServerId;

pub const HANDSHAKE_MAGIC: &[u8; 8] = b"RKQUORUM";
pub const PROTOCOL_VERSION: u32 = 1;
/// Version 1 with a SASL exchange after the handshake (the dialer authenticates).
pub const PROTOCOL_VERSION_SASL: u32 = 2;
/// QuorumAuth.Status.
const AUTH_IN_PROGRESS: i8 = 0;
const AUTH_SUCCESS: i8 = 1;
const AUTH_ERROR: i8 = -1;
/// Packets one side reads in a SASL exchange (DIGEST-MD5 takes 2).
const AUTH_PACKETS_MAX: u32 = crate::auth::quorum::SERVER_STEPS_MAX + 2;
pub const HANDSHAKE_BYTES: usize = 20;
/// Versions 1 and 2 followed by the dialer's own listening address on this port (u16 length,
/// then `ip:port` in ASCII), so that a member that does not know the dialer yet (a server
/// joining by reconfig) can dial back. Sent only with `reconfigEnabled`.
pub const PROTOCOL_VERSION_ADDRESS: u32 = 3;
pub const PROTOCOL_VERSION_SASL_ADDRESS: u32 = 4;
/// Longest announced address (`[v6]:port` is at most 47 bytes).
const ANNOUNCED_ADDRESS_BYTES_MAX: usize = 64;
/// First redial delay after a failure; doubles up to `reconnect_backoff_max`.
const BACKOFF_INITIAL: Duration = Duration::from_millis(10);
/// A write that makes no progress for this long (a peer that stopped reading) closes the
/// link. Per write call, so a large snapshot on a slow but moving link is fine.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Accepted connections still waiting for their handshake; more are closed at once.
const PENDING_HANDSHAKES_MAX: usize = 64;
const WRITE_BUFFER_BYTES: usize = 64 << 10;
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Frames written between two explicit flushes when the queue never runs empty (the buffer
/// also flushes itself whenever it fills).
const BATCH_FRAMES_MAX: usize = 4096;
/// A reader keeps a body buffer this large between frames; a larger one (a snapshot) is
/// released after its frame.
const BODY_BUFFER_KEEP_BYTES: usize = 1 << 20;
/// How often a reader blocked on a full `inbound` channel checks for shutdown.
const DELIVER_POLL: Duration = Duration::from_millis(100);
/// How long shutdown waits for threads beyond `connect_timeout` (a dial in progress).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// Largest frame body sent or accepted (capped at u32::MAX, the frame length's range).
    pub frame_bytes_max: usize,
    /// Frames queued per peer before `send` drops.
    pub queue_frames_max: usize,
    /// Bound on a dial, and on the wait for an accepted connection's handshake.
    pub connect_timeout: Duration,
    /// Longest wait between redials of a failed link.
    pub reconnect_backoff_max: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            frame_bytes_max: 1 << 30,
            queue_frames_max: 100_000,
            // ZooKeeper's cnxTimeout default (QuorumCnxManager).
            connect_timeout: Duration::from_secs(5),
            reconnect_backoff_max: Duration::from_secs(1),
        }
    }
}

/// How the quorum ports' connections are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptMode {
    #[default]
    Plain,
    /// TLS only (`sslQuorum`).
    Tls,
    /// TLS or plaintext by the first byte (`portUnification`).
    Unified,
}

/// The security of a transport's links (see the module doc).
#[derive(Clone, Default)]
pub struct LinkSecurity {
    /// The quorum TLS stores; needed when dialling with TLS or accepting it.
    pub tls: Option<Arc<QuorumTls>>,
    /// Dial with TLS (`sslQuorum`).
    pub dial_tls: bool,
    pub accept: AcceptMode,
    /// Quorum SASL (`quorum.auth.enableSasl`).
    pub sasl: Option<Arc<QuorumSasl>>,
    /// Every member's host as its `server.N` line gives it: the name its certificate may
    /// carry, and SaslQuorumServerCallbackHandler's authorized hosts.
    pub hosts: BTreeMap<ServerId, String>,
    /// With `reconfigEnabled`: this transport's listening address, announced in the
    /// handshake (protocol versions 3 and 4).
    pub announce: Option<SocketAddr>,
    /// With `reconfigEnabled`: a dialer that is not a member but announces its address is
    /// taken as a peer (a joiner; ZooKeeper's QuorumCnxManager learns a server's address
    /// from its initial message likewise).
    pub accept_joiners: bool,
}

impl LinkSecurity {
    fn hosts(&self) -> Vec<String> {
        self.hosts.values().cloned().collect()
    }
}

/// A link's byte stream: plain TCP, or TLS over it (this side dialled: the TLS client).
enum LinkStream {
    Plain(TcpStream),
    Client(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Server(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl LinkStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            LinkStream::Plain(stream) => stream,
            LinkStream::Client(tls) => &tls.sock,
            LinkStream::Server(tls) => &tls.sock,
        }
    }
}

impl Read for LinkStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            LinkStream::Plain(stream) => stream.read(buffer),
            LinkStream::Client(tls) => tls.read(buffer),
            LinkStream::Server(tls) => tls.read(buffer),
        }
    }
}

impl Write for LinkStream {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        match self {
            LinkStream::Plain(stream) => stream.write(buffer),
            LinkStream::Client(tls) => tls.write(buffer),
            LinkStream::Server(tls) => tls.write(buffer),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LinkStream::Plain(stream) => stream.flush(),
            LinkStream::Client(tls) => tls.flush(),
            LinkStream::Server(tls) => tls.flush(),
        }
    }
}

/// TCP links from this server to the other members and from them to it.
pub struct Transport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    listener: Option<TcpListener>,
    /// Disconnected once every thread of this transport has ended (each holds a sender).
    done: Option<Receiver<()>>,
}

struct Shared {
    name: &'static str,
    me: ServerId,
    limits: TransportLimits,
    frame_bytes_max: usize,
    stop: AtomicBool,
    inbound: Sender<(ServerId, Wire)>,
    /// The current inbound connection of each other member. Members come and go with
    /// reconfigs ([`Transport::set_peer`], [`Transport::remove_peer`]).
    inbound_links: Mutex<BTreeMap<ServerId, Arc<Mutex<InboundLink>>>>,
    /// Each other member's address and send queue (its writer thread holds the receiver).
    queues: Mutex<BTreeMap<ServerId, PeerQueue>>,
    /// Every thread started (joined at shutdown), and the sender each thread holds of `done`
    /// (None once shutdown began).
    threads: Mutex<Vec<JoinHandle<()>>>,
    done_sender: Mutex<Option<Sender<()>>>,
    next_generation: AtomicU64,
    /// Every open socket, so that shutdown can close them all.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_token: AtomicU64,
    pending_handshakes: AtomicUsize,
    /// Told the id of a member whose current inbound connection ended (EOF, error, bad
    /// frame): a learner acts on its leader's connection closing at once, as ZooKeeper's
    /// learner does when its socket fails, instead of waiting syncLimit.
    closed: Mutex<Option<Sender<ServerId>>>,
    security: LinkSecurity,
}

/// A peer's address and the queue its writer thread takes frames from.
type PeerQueue = (SocketAddr, Sender<Vec<u8>>);

#[derive(Default)]
struct InboundLink {
    /// Set (from a transport-wide counter) for each accepted connection from the member; a
    /// reader delivers only while its generation is current.
    generation: u64,
    token: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the links down with it; the data (sockets and
    // counters) stays consistent at every await point.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Registers a socket so that shutdown closes it. Err if shutdown already began (the
    /// caller must not use the socket).
    fn register(&self, stream: &TcpStream) -> io::Result<u64> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        lock(&self.sockets).insert(token, stream.try_clone()?);
        if self.stopped() {
            self.close(token);
            return Err(io::Error::other("transport shutting down"));
        }
        Ok(token)
    }

    fn close(&self, token: u64) {
        if let Some(stream) = lock(&self.sockets).remove(&token) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn close_all(&self) {
        for (_, stream) in lock(&self.sockets).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn inbound_link(&self, peer: ServerId) -> Option<Arc<Mutex<InboundLink>>> {
        lock(&self.inbound_links).get(&peer).cloned()
    }

    /// Makes `peer` (at `address`) a peer: its send queue and writer thread, and a slot for
    /// its inbound connection. A peer already known at that address is left as it is; at
    /// another address its writer is replaced.
    fn set_peer(self: &Arc<Self>, peer: ServerId, address: SocketAddr) -> io::Result<()> {
        if peer == self.me || self.stopped() {
            return Ok(());
        }
        let mut queues = lock(&self.queues);
        if queues
            .get(&peer)
            .is_some_and(|(known, _)| *known == address)
        {
            return Ok(());
        }
        let Some(done) = lock(&self.done_sender).clone() else {
            return Ok(());
        };
        let (queue, frames) = crossbeam_channel::bounded(self.limits.queue_frames_max.max(1));
        let thread_shared = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name(format!("{}-tx-{peer}", self.name))
            .spawn(move || {
                run_writer(&thread_shared, peer, address, frames);
                drop(done);
            })?;
        lock(&self.threads).push(handle);
        // Replacing the old queue disconnects the old writer, which closes its link.
        queues.insert(peer, (address, queue));
        lock(&self.inbound_links).entry(peer).or_default();
        Ok(())
    }

    /// Forgets `peer`: its writer stops (closing the outbound link) and its inbound
    /// connection is closed.
    fn remove_peer(&self, peer: ServerId) {
        lock(&self.queues).remove(&peer);
        if let Some(link) = lock(&self.inbound_links).remove(&peer) {
            if let Some(token) = lock(&link).token.take() {
                self.close(token);
            }
        }
    }
}

impl Transport {
    /// Listens on `listen`; delivers every message received from a member to `inbound` as
    /// (sender id, message). Dials members lazily (on first send) and redials after a
    /// failure with capped exponential backoff. `members` may include this server (`me`).
    pub fn start(
        name: &'static str,
        me: ServerId,
        listen: SocketAddr,
        members: BTreeMap<ServerId, SocketAddr>,
        limits: TransportLimits,
        inbound: Sender<(ServerId, Wire)>,
    ) -> io::Result<Transport> {
        let listener = TcpListener::bind(listen)?;
        Transport::start_with_listener(name, me, listener, members, limits, inbound)
    }

    /// [`Transport::start`] on a listener the caller bound (tests bind port 0 for every
    /// member first, so that each knows the others' addresses).
    pub fn start_with_listener(
        name: &'static str,
        me: ServerId,
        listener: TcpListener,
        members: BTreeMap<ServerId, SocketAddr>,
        limits: TransportLimits,
        inbound: Sender<(ServerId, Wire)>,
    ) -> io::Result<Transport> {
        Transport::start_secured(
            name,
            me,
            listener,
            members,
            limits,
            inbound,
            LinkSecurity::default(),
        )
    }

    /// [`Transport::start_with_listener`] with TLS and/or SASL on its links.
    pub fn start_secured(
        name: &'static str,
        me: ServerId,
        listener: TcpListener,
        members: BTreeMap<ServerId, SocketAddr>,
        limits: TransportLimits,
        inbound: Sender<(ServerId, Wire)>,
        security: LinkSecurity,
    ) -> io::Result<Transport> {
        if (security.dial_tls || security.accept != AcceptMode::Plain) && security.tls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "quorum TLS without its key and trust stores",
            ));
        }
        let local_addr = listener.local_addr()?;
        let peers: BTreeMap<ServerId, SocketAddr> =
            members.into_iter().filter(|&(id, _)| id != me).collect();
        let (done_sender, done) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(Shared {
            name,
            me,
            frame_bytes_max: limits.frame_bytes_max.min(u32::MAX as usize),
            limits,
            stop: AtomicBool::new(false),
            inbound,
            inbound_links: Mutex::new(BTreeMap::new()),
            queues: Mutex::new(BTreeMap::new()),
            threads: Mutex::new(Vec::new()),
            done_sender: Mutex::new(Some(done_sender.clone())),
            next_generation: AtomicU64::new(0),
            sockets: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
            pending_handshakes: AtomicUsize::new(0),
            closed: Mutex::new(None),
            security,
        });
        let transport = Transport {
            shared: Arc::clone(&shared),
            local_addr,
            listener: Some(listener.try_clone()?),
            done: Some(done),
        };
        // From here on, an error drops `transport`, which stops what was started.
        for (&peer, &address) in &peers {
            shared.set_peer(peer, address)?;
        }
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || run_acceptor(&thread_shared, listener, done_sender))?;
        lock(&shared.threads).push(handle);
        info!(
            transport = name,
            me,
            %local_addr,
            peers = ?peers,
            "quorum transport listening"
        );
        Ok(transport)
    }

    /// Queues a message for `to` and says whether it was. Never blocks the caller: when the
    /// link is down or its queue is full, the message is dropped (ZAB treats a lost link
    /// message like a TCP reset: the sequence numbers in `Message::Link` detect the gap).
    pub fn send(&self, to: ServerId, message: &Wire) -> bool {
        let queue = lock(&self.shared.queues)
            .get(&to)
            .map(|(_, queue)| queue.clone());
        let Some(queue) = queue else {
            debug!(
                transport = self.shared.name,
                to, "dropping a message to a server that is not another member"
            );
            return false;
        };
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0; 4]);
        wire::encode(message, &mut frame);
        let body_bytes = frame.len() - 4;
        if body_bytes > self.shared.frame_bytes_max {
            warn!(
                transport = self.shared.name,
                to,
                body_bytes,
                frame_bytes_max = self.shared.frame_bytes_max,
                "dropping a message larger than frame_bytes_max"
            );
            return false;
        }
        frame[..4].copy_from_slice(&(body_bytes as u32).to_be_bytes());
        match queue.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                debug!(
                    transport = self.shared.name,
                    to, "dropping a message: the link's queue is full"
                );
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                debug!(
                    transport = self.shared.name,
                    to, "dropping a message: the link's writer has stopped"
                );
                false
            }
        }
    }

    /// From now on, the id of a member whose current inbound connection ends is sent to
    /// `closed` (not when a newer connection of the member replaced it, nor at shutdown).
    pub fn notify_closed(&self, closed: Sender<ServerId>) {
        *lock(&self.shared.closed) = Some(closed);
    }

    /// The actual bound address (for tests that listen on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A member added by a reconfig (or one whose address changed).
    pub fn set_peer(&self, peer: ServerId, address: SocketAddr) -> io::Result<()> {
        self.shared.set_peer(peer, address)
    }

    /// A member a reconfig removed: its links close and nothing more is sent to it.
    pub fn remove_peer(&self, peer: ServerId) {
        self.shared.remove_peer(peer)
    }

    /// Stops every thread and closes every socket. Bounded: threads blocked on a socket are
    /// woken by closing it; a thread still running after `connect_timeout` plus a grace
    /// period (a dial in progress) is left to finish on its own and logged.
    pub fn shutdown(mut self) {
        self.stop();
        let deadline = Instant::now() + self.shared.limits.connect_timeout + SHUTDOWN_GRACE;
        let all_ended = match self.done.take() {
            Some(done) => loop {
                match done.recv_deadline(deadline) {
                    Ok(()) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break true,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break false,
                }
            },
            None => true,
        };
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        if all_ended {
            for handle in threads {
                let _ = handle.join();
            }
        } else {
            warn!(
                transport = self.shared.name,
                "transport threads still running at the shutdown deadline; detaching them"
            );
        }
    }

    /// Signals every thread to stop and wakes those blocked on sockets or queues. Does not
    /// wait. Idempotent.
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(listener) = self.listener.take() {
            // shutdown(2) on a listening socket wakes a blocked accept on Linux; the
            // connection below covers systems where it does not.
            let _ = socket2::SockRef::from(&listener).shutdown(Shutdown::Both);
            let mut wake = self.local_addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(100));
        }
        lock(&self.shared.done_sender).take();
        lock(&self.shared.queues).clear();
        self.shared.close_all();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- sending ----

fn run_writer(shared: &Shared, peer: ServerId, address: SocketAddr, frames: Receiver<Vec<u8>>) {
    let name = shared.name;
    let backoff_max = shared.limits.reconnect_backoff_max.max(BACKOFF_INITIAL);
    let mut backoff = BACKOFF_INITIAL;
    let mut retry_at = Instant::now();
    let mut link: Option<(BufWriter<LinkStream>, u64)> = None;
    let mut dropped: u64 = 0;
    let mut was_up = false;
    while let Ok(frame) = frames.recv() {
        if shared.stopped() {
            break;
        }
        if let Some((writer, token)) = link.as_ref() {
            if closed_by_peer(writer.get_ref().tcp()) {
                // The peer went away (restarted, or died) since the last write: writing would
                // put this frame into a dead socket. Redial now instead.
                info!(transport = name, peer, %address, "link closed by the peer; redialling");
                shared.close(*token);
                link = None;
                retry_at = Instant::now();
            }
        }
        if link.is_none() {
            if Instant::now() < retry_at {
                dropped += 1;
                continue;
            }
            match dial(shared, peer, address) {
                Ok(connected) => {
                    info!(transport = name, peer, %address, dropped_while_down = dropped, "link up");
                    link = Some(connected);
                    backoff = BACKOFF_INITIAL;
                    dropped = 0;
                    was_up = true;
                }
                Err(error) => {
                    if error.kind() == io::ErrorKind::PermissionDenied {
                        warn!(transport = name, peer, %address, %error, "link refused");
                        was_up = false;
                    } else if was_up {
                        warn!(transport = name, peer, %address, %error, "cannot reconnect");
                        was_up = false;
                    } else {
                        debug!(transport = name, peer, %address, %error, "cannot connect");
                    }
                    dropped += 1;
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(backoff_max);
                    continue;
                }
            }
        }
        let Some((writer, token)) = link.as_mut() else {
            continue;
        };
        if let Err(error) = write_batch(writer, frame, &frames) {
            if !shared.stopped() {
                warn!(transport = name, peer, %address, %error, "link down; will redial");
            }
            shared.close(*token);
            link = None;
            dropped += 1;
            retry_at = Instant::now() + backoff;
            backoff = (backoff * 2).min(backoff_max);
        }
    }
    if let Some((_, token)) = link {
        shared.close(token);
    }
    debug!(transport = name, peer, "writer stopped");
}

/// Whether the peer has closed (or reset) a connection this side only writes to: the peer
/// never sends on it, so anything to read means end of stream or an error. One non-blocking
/// peek, no state change.
fn closed_by_peer(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match rustix::net::recv(
        stream,
        &mut byte[..],
        rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT,
    ) {
        Ok((0, _)) => true,
        Ok(_) => false,
        Err(error) => error != rustix::io::Errno::AGAIN && error != rustix::io::Errno::INTR,
    }
}

fn dial(
    shared: &Shared,
    peer: ServerId,
    address: SocketAddr,
) -> io::Result<(BufWriter<LinkStream>, u64)> {
    let stream = TcpStream::connect_timeout(&address, shared.limits.connect_timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_STALL_TIMEOUT))?;
    set_keepalive(&stream);
    let token = shared.register(&stream)?;
    match secure_dialled(shared, peer, address, stream) {
        Ok(writer) => Ok((writer, token)),
        Err(error) => {
            shared.close(token);
            Err(error)
        }
    }
}

/// TLS (when dialling with it), the handshake, and the learner's SASL exchange (when this
/// member requires it of itself) on a new outbound connection.
fn secure_dialled(
    shared: &Shared,
    peer: ServerId,
    address: SocketAddr,
    stream: TcpStream,
) -> io::Result<BufWriter<LinkStream>> {
    let security = &shared.security;
    // The handshakes are bounded like the dial; frames are not (the link only writes).
    stream.set_read_timeout(Some(
        shared.limits.connect_timeout.max(Duration::from_millis(1)),
    ))?;
    let link = match (&security.tls, security.dial_tls) {
        (Some(tls), true) => {
            let configs = tls.configs();
            let connection = rustls::ClientConnection::new(
                configs.client.clone(),
                rustls::pki_types::ServerName::IpAddress(address.ip().into()),
            )
            .map_err(io::Error::other)?;
            let mut tls_stream = rustls::StreamOwned::new(connection, stream);
            while tls_stream.conn.is_handshaking() {
                tls_stream
                    .conn
                    .complete_io(&mut tls_stream.sock)
                    .map_err(|error| refused(format!("TLS handshake: {error}")))?;
            }
            tls.check_peer(
                tls_stream.conn.peer_certificates(),
                address.ip(),
                security.hosts.get(&peer).map(String::as_str),
                false,
            )
            .map_err(|reason| refused(format!("TLS: {reason}")))?;
            LinkStream::Client(Box::new(tls_stream))
        }
        _ => LinkStream::Plain(stream),
    };
    let learner = security
        .sasl
        .as_deref()
        .filter(|sasl| sasl.learner_require_sasl);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, link);
    let version = match (learner.is_some(), security.announce.is_some()) {
        (true, false) => PROTOCOL_VERSION_SASL,
        (false, false) => PROTOCOL_VERSION,
        (true, true) => PROTOCOL_VERSION_SASL_ADDRESS,
        (false, true) => PROTOCOL_VERSION_ADDRESS,
    };
    // Buffered: without SASL it goes out with the first frame, in one segment.
    writer.write_all(&handshake_version(shared.me, version))?;
    if let Some(address) = security.announce {
        let text = address.to_string();
        writer.write_all(&(text.len() as u16).to_be_bytes())?;
        writer.write_all(text.as_bytes())?;
    }
    if let Some(sasl) = learner {
        authenticate_as_learner(&mut writer, sasl)
            .map_err(|reason| refused(format!("quorum SASL: {reason}")))?;
        info!(transport = shared.name, peer, %address, "authenticated to the peer with SASL");
    }
    writer.get_ref().tcp().set_read_timeout(None)?;
    Ok(writer)
}

/// A link refused for its security (TLS, SASL), which the writer always logs.
fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, reason)
}

fn write_auth_packet(out: &mut impl Write, status: i8, token: &[u8]) -> io::Result<()> {
    out.write_all(&[status as u8])?;
    out.write_all(&(token.len() as u32).to_be_bytes())?;
    out.write_all(token)?;
    out.flush()
}

fn read_auth_packet(input: &mut impl Read) -> io::Result<(i8, Vec<u8>)> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > crate::auth::SASL_TOKEN_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("SASL token of {length} bytes is too large"),
        ));
    }
    let mut token = vec![0u8; length];
    input.read_exact(&mut token)?;
    Ok((header[0] as i8, token))
}

/// SaslQuorumAuthLearner.authenticate over a dialled link (its handshake is buffered in
/// `writer` and goes out with the first packet).
fn authenticate_as_learner(
    writer: &mut BufWriter<LinkStream>,
    sasl: &QuorumSasl,
) -> Result<(), String> {
    let mut client = crate::auth::quorum::learner_client(sasl, &mut rand::thread_rng());
    // DIGEST-MD5 has no initial response.
    write_auth_packet(writer, AUTH_IN_PROGRESS, b"").map_err(|error| error.to_string())?;
    for _ in 0..AUTH_PACKETS_MAX {
        let (status, token) =
            read_auth_packet(writer.get_mut()).map_err(|error| format!("reading: {error}"))?;
        match status {
            AUTH_SUCCESS => {
                return match client.evaluate(&token) {
                    Ok(None) if client.is_complete() => Ok(()),
                    Ok(_) => Err("Protocol error: the server ended the exchange early".into()),
                    Err(error) => Err(error.to_string()),
                };
            }
            AUTH_IN_PROGRESS => {
                let response = client
                    .evaluate(&token)
                    .map_err(|error| error.to_string())?
                    .ok_or("Protocol error: nothing to answer the server's challenge with")?;
                write_auth_packet(writer, AUTH_IN_PROGRESS, &response)
                    .map_err(|error| error.to_string())?;
            }
            _ => return Err("Authentication failed against the server (it answered ERROR)".into()),
        }
    }
    Err("too many SASL packets".into())
}

/// Writes `first` and everything else queued, then flushes: many small frames per syscall.
fn write_batch(
    writer: &mut BufWriter<impl Write>,
    first: Vec<u8>,
    frames: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    writer.write_all(&first)?;
    for _ in 1..BATCH_FRAMES_MAX {
        match frames.try_recv() {
            Ok(frame) => writer.write_all(&frame)?,
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
        }
    }
    writer.flush()
}

pub fn handshake(me: ServerId) -> [u8; HANDSHAKE_BYTES] {
    handshake_version(me, PROTOCOL_VERSION)
}

pub fn handshake_version(me: ServerId, version: u32) -> [u8; HANDSHAKE_BYTES] {
    let mut bytes = [0u8; HANDSHAKE_BYTES];
    bytes[0..8].copy_from_slice(HANDSHAKE_MAGIC);
    bytes[8..12].copy_from_slice(&version.to_be_bytes());
    bytes[12..20].copy_from_slice(&me.to_be_bytes());
    bytes
}

/// Detects a peer host that vanished without closing (no FIN, no RST) on an idle link.
fn set_keepalive(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

// ---- receiving ----

/// Decrements the pending-handshake count when the handshake thread ends, however it ends.
struct PendingHandshake<'a>(&'a AtomicUsize);

impl Drop for PendingHandshake<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run_acceptor(shared: &Arc<Shared>, listener: TcpListener, done: Sender<()>) {
    let name = shared.name;
    for accepted in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                warn!(transport = name, %error, "accept failed");
                // Out of descriptors or similar: do not spin on the error.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let remote = stream.peer_addr().ok();
        if shared.pending_handshakes.fetch_add(1, Ordering::SeqCst) >= PENDING_HANDSHAKES_MAX {
            shared.pending_handshakes.fetch_sub(1, Ordering::SeqCst);
            warn!(
                transport = name,
                ?remote,
                "too many connections awaiting their handshake; closing"
            );
            continue;
        }
        let token = match shared.register(&stream) {
            Ok(token) => token,
            Err(_) => {
                shared.pending_handshakes.fetch_sub(1, Ordering::SeqCst);
                break;
            }
        };
        let thread_shared = Arc::clone(shared);
        let thread_done = done.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-hs"))
            .spawn(move || {
                let pending = PendingHandshake(&thread_shared.pending_handshakes);
                let accepted = accept_link(&thread_shared, stream, remote);
                drop(pending);
                match accepted {
                    Some((peer, link, joiner)) => {
                        if let Some(address) = joiner {
                            info!(transport = thread_shared.name, peer, %address, "a server that is not a member connected (a joiner); answering it at its announced address");
                            if let Err(error) = thread_shared.set_peer(peer, address) {
                                warn!(transport = thread_shared.name, peer, %error, "cannot start a link to the joiner");
                            }
                        }
                        start_reader(&thread_shared, peer, link, token, thread_done)
                    }
                    None => thread_shared.close(token),
                }
            });
        if let Err(error) = spawned {
            warn!(transport = name, %error, "cannot start a connection thread; closing");
            shared.close(token);
            shared.pending_handshakes.fetch_sub(1, Ordering::SeqCst);
        }
    }
    debug!(transport = name, "acceptor stopped");
}

/// An accepted connection's TLS (per [`AcceptMode`]), handshake and SASL exchange: the
/// dialer's id and the link to read its frames from, or None (logged) when it is refused.
/// The dialer's id, its link, and (for a joiner: a dialer that is not a member) the address
/// it announced.
fn accept_link(
    shared: &Shared,
    stream: TcpStream,
    remote: Option<SocketAddr>,
) -> Option<(ServerId, LinkStream, Option<SocketAddr>)> {
    let name = shared.name;
    let timeout = shared.limits.connect_timeout.max(Duration::from_millis(1));
    if let Err(error) = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
    {
        warn!(transport = name, ?remote, %error, "closing a connection: cannot set its timeouts");
        return None;
    }
    let security = &shared.security;
    let use_tls = match security.accept {
        AcceptMode::Plain => false,
        AcceptMode::Tls => true,
        AcceptMode::Unified => {
            let mut first = [0u8; 1];
            match stream.peek(&mut first) {
                Ok(1) => first[0] == crate::net::tls::TLS_HANDSHAKE_RECORD,
                Ok(_) => return None,
                Err(error) => {
                    if !shared.stopped() {
                        warn!(transport = name, ?remote, %error, "closing a connection: nothing received");
                    }
                    return None;
                }
            }
        }
    };
    let mut link = if use_tls {
        let tls = security.tls.as_ref()?;
        let connection = match rustls::ServerConnection::new(tls.configs().server.clone()) {
            Ok(connection) => connection,
            Err(error) => {
                warn!(transport = name, ?remote, %error, "closing a connection: TLS setup failed");
                return None;
            }
        };
        let mut tls_stream = rustls::StreamOwned::new(connection, stream);
        while tls_stream.conn.is_handshaking() {
            if let Err(error) = tls_stream.conn.complete_io(&mut tls_stream.sock) {
                if !shared.stopped() {
                    warn!(transport = name, ?remote, %error, "refusing a quorum connection: TLS handshake failed");
                }
                return None;
            }
        }
        LinkStream::Server(Box::new(tls_stream))
    } else {
        LinkStream::Plain(stream)
    };
    let (peer, version, joiner) = read_handshake(shared, &mut link, remote)?;
    if let (LinkStream::Server(tls_stream), Some(tls), Some(remote)) =
        (&link, &security.tls, remote)
    {
        if let Err(reason) = tls.check_peer(
            tls_stream.conn.peer_certificates(),
            remote.ip(),
            security.hosts.get(&peer).map(String::as_str),
            true,
        ) {
            warn!(transport = name, ?remote, peer, %reason, "refusing a quorum connection: TLS");
            return None;
        }
    }
    let version = match version {
        PROTOCOL_VERSION_SASL_ADDRESS => PROTOCOL_VERSION_SASL,
        PROTOCOL_VERSION_ADDRESS => PROTOCOL_VERSION,
        other => other,
    };
    match (version, security.sasl.as_deref()) {
        (PROTOCOL_VERSION_SASL, Some(sasl)) => {
            match authenticate_learner(&mut link, sasl, &security.hosts()) {
                Ok(id) => {
                    info!(transport = name, ?remote, peer, user = %id, "quorum learner authenticated with SASL")
                }
                Err(reason) if sasl.server_require_sasl => {
                    warn!(transport = name, ?remote, peer, %reason, "refusing a quorum connection: SASL authentication failed");
                    return None;
                }
                Err(reason) => {
                    // SaslQuorumAuthServer without serverRequireSasl: the learner was told
                    // ERROR and gives up the connection itself.
                    warn!(transport = name, ?remote, peer, %reason, "SASL authentication failed; maintaining the connection (quorum.auth.serverRequireSasl=false)");
                }
            }
        }
        (PROTOCOL_VERSION_SASL, None) => {
            warn!(transport = name, ?remote, peer, "refusing a quorum connection: the peer wants to authenticate with SASL, and quorum.auth.enableSasl is off here");
            return None;
        }
        (_, Some(sasl)) if sasl.server_require_sasl => {
            warn!(transport = name, ?remote, peer, "refusing a quorum connection: learner not trying to authenticate and authentication is required (quorum.auth.serverRequireSasl)");
            return None;
        }
        _ => {}
    }
    if link.tcp().set_read_timeout(None).is_err() {
        return None;
    }
    Some((peer, link, joiner))
}

/// SaslQuorumAuthServer.authenticate: the learner's tokens in, challenges out, until it is
/// authenticated (its id) or not (the reason; the learner was sent ERROR).
fn authenticate_learner(
    link: &mut LinkStream,
    sasl: &QuorumSasl,
    hosts: &[String],
) -> Result<String, String> {
    use crate::auth::quorum::{QuorumAuthServer, ServerReply};
    let mut server = QuorumAuthServer::new(&mut rand::thread_rng());
    for _ in 0..AUTH_PACKETS_MAX {
        let (_, token) = read_auth_packet(link).map_err(|error| format!("reading: {error}"))?;
        match server.evaluate(&token, sasl, hosts) {
            Ok(ServerReply::Challenge(challenge)) => {
                write_auth_packet(link, AUTH_IN_PROGRESS, &challenge)
                    .map_err(|error| error.to_string())?;
            }
            Ok(ServerReply::Success { token, id }) => {
                write_auth_packet(link, AUTH_SUCCESS, &token).map_err(|error| error.to_string())?;
                return Ok(id);
            }
            Err(error) => {
                let _ = write_auth_packet(link, AUTH_ERROR, b"");
                return Err(error.to_string());
            }
        }
    }
    let _ = write_auth_packet(link, AUTH_ERROR, b"");
    Err("too many SASL packets".into())
}

/// The dialer's id and protocol version if its handshake is well formed and names another
/// member, or a joiner (with the address it announced) when joiners are accepted.
fn read_handshake(
    shared: &Shared,
    link: &mut LinkStream,
    remote: Option<SocketAddr>,
) -> Option<(ServerId, u32, Option<SocketAddr>)> {
    let name = shared.name;
    let mut bytes = [0u8; HANDSHAKE_BYTES];
    if let Err(error) = link.read_exact(&mut bytes) {
        if !shared.stopped() {
            warn!(transport = name, ?remote, %error, "closing a connection: no complete handshake");
        }
        return None;
    }
    if &bytes[0..8] != HANDSHAKE_MAGIC {
        warn!(
            transport = name,
            ?remote,
            "closing a connection: malformed handshake (bad magic)"
        );
        return None;
    }
    let version = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !matches!(
        version,
        PROTOCOL_VERSION
            | PROTOCOL_VERSION_SASL
            | PROTOCOL_VERSION_ADDRESS
            | PROTOCOL_VERSION_SASL_ADDRESS
    ) {
        warn!(
            transport = name,
            ?remote,
            version,
            "closing a connection: unsupported protocol version"
        );
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[12..20]);
    let peer = u64::from_be_bytes(id);
    let announced = if matches!(
        version,
        PROTOCOL_VERSION_ADDRESS | PROTOCOL_VERSION_SASL_ADDRESS
    ) {
        let mut length = [0u8; 2];
        if link.read_exact(&mut length).is_err() {
            warn!(
                transport = name,
                ?remote,
                "closing a connection: no announced address"
            );
            return None;
        }
        let length = u16::from_be_bytes(length) as usize;
        if length > ANNOUNCED_ADDRESS_BYTES_MAX {
            warn!(
                transport = name,
                ?remote,
                length,
                "closing a connection: announced address too long"
            );
            return None;
        }
        let mut text = vec![0u8; length];
        if link.read_exact(&mut text).is_err() {
            warn!(
                transport = name,
                ?remote,
                "closing a connection: truncated announced address"
            );
            return None;
        }
        match std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.parse::<SocketAddr>().ok())
        {
            Some(address) => Some(address),
            None => {
                warn!(
                    transport = name,
                    ?remote,
                    "closing a connection: malformed announced address"
                );
                return None;
            }
        }
    } else {
        None
    };
    let member = lock(&shared.inbound_links).contains_key(&peer);
    let joiner = shared.security.accept_joiners && announced.is_some();
    if peer == shared.me || !(member || joiner) {
        warn!(
            transport = name,
            ?remote,
            peer,
            "closing a connection: not from another member"
        );
        return None;
    }
    Some((peer, version, announced.filter(|_| !member)))
}

/// Makes this connection the member's current one (closing the previous one) and reads it
/// on a thread named after the member.
fn start_reader(
    shared: &Arc<Shared>,
    peer: ServerId,
    stream: LinkStream,
    token: u64,
    done: Sender<()>,
) {
    let Some(link) = shared.inbound_link(peer) else {
        shared.close(token);
        return;
    };
    let generation = {
        let mut link = lock(&link);
        if let Some(previous) = link.token.replace(token) {
            shared.close(previous);
        }
        link.generation = shared.next_generation.fetch_add(1, Ordering::Relaxed) + 1;
        link.generation
    };
    info!(transport = shared.name, peer, "inbound link up");
    let thread_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("{}-rx-{peer}", shared.name))
        .spawn(move || {
            run_reader(&thread_shared, peer, stream, generation);
            thread_shared.close(token);
            drop(done);
        });
    if let Err(error) = spawned {
        warn!(transport = shared.name, peer, %error, "cannot start a reader thread; closing");
        shared.close(token);
    }
}

fn run_reader(shared: &Shared, peer: ServerId, stream: LinkStream, generation: u64) {
    if read_frames(shared, peer, stream, generation) {
        report_closed(shared, peer, generation);
    }
}

/// Tells whoever asked that the member's current inbound connection ended.
fn report_closed(shared: &Shared, peer: ServerId, generation: u64) {
    if shared.stopped() {
        return;
    }
    let current = shared
        .inbound_link(peer)
        .is_some_and(|link| lock(&link).generation == generation);
    if !current {
        return;
    }
    if let Some(closed) = lock(&shared.closed).as_ref() {
        let _ = closed.try_send(peer);
    }
}

/// Reads and delivers frames until the connection ends; true when it ended by itself (EOF,
/// an error, a bad frame), false when delivery stopped it (superseded, shut down).
fn read_frames(shared: &Shared, peer: ServerId, stream: LinkStream, generation: u64) -> bool {
    let name = shared.name;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut body = Vec::new();
    loop {
        let mut length = [0u8; 4];
        if let Err(error) = reader.read_exact(&mut length) {
            if !shared.stopped() {
                debug!(transport = name, peer, %error, "inbound link closed");
            }
            return true;
        }
        let length = u32::from_be_bytes(length) as usize;
        if length > shared.frame_bytes_max {
            warn!(
                transport = name,
                peer,
                length,
                frame_bytes_max = shared.frame_bytes_max,
                "closing an inbound link: frame over frame_bytes_max"
            );
            return true;
        }
        if let Err(error) = read_body(&mut reader, length, &mut body) {
            if !shared.stopped() {
                debug!(transport = name, peer, %error, "inbound link closed inside a frame");
            }
            return true;
        }
        let message = match wire::decode(&body) {
            Ok(message) => message,
            Err(error) => {
                warn!(transport = name, peer, %error, "closing an inbound link: undecodable message");
                return true;
            }
        };
        if body.capacity() > BODY_BUFFER_KEEP_BYTES {
            body = Vec::new();
        }
        if !deliver(shared, peer, generation, message) {
            return false;
        }
    }
}

/// Reads a body of `length` bytes into `body`. Memory grows with the bytes actually
/// received, not with the length a peer claims.
fn read_body(reader: &mut impl Read, length: usize, body: &mut Vec<u8>) -> io::Result<()> {
    body.clear();
    if length <= READ_BUFFER_BYTES {
        body.resize(length, 0);
        return reader.read_exact(body);
    }
    reader.take(length as u64).read_to_end(body)?;
    if body.len() < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Hands a message to `inbound` if this connection is still the member's current one.
/// False when the reader should stop (superseded, shut down, or nobody receives).
fn deliver(shared: &Shared, peer: ServerId, generation: u64, message: Wire) -> bool {
    let Some(link) = shared.inbound_link(peer) else {
        return false;
    };
    // Held while handing over, so that a newer connection of the same member cannot deliver
    // in between the check and the send (FIFO across reconnections).
    let link = lock(&link);
    if link.generation != generation {
        return false;
    }
    let mut item = (peer, message);
    loop {
        match shared.inbound.send_timeout(item, DELIVER_POLL) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(back)) => {
                if shared.stopped() {
                    return false;
                }
                item = back;
            }
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::{Message, Packet};
    use crossbeam_channel::Receiver;

    const WAIT: Duration = Duration::from_secs(10);

    type Inbox = Receiver<(ServerId, Wire)>;

    fn limits() -> TransportLimits {
        TransportLimits {
            connect_timeout: Duration::from_secs(2),
            reconnect_backoff_max: Duration::from_millis(50),
            ..TransportLimits::default()
        }
    }

    fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind")
    }

    fn ack(seq: u64) -> Wire {
        Wire::Zab(Message::Link {
            conn: 1,
            seq,
            packet: Packet::Ack { zxid: seq as i64 },
        })
    }

    fn seq_of(message: &Wire) -> u64 {
        match message {
            Wire::Zab(Message::Link { seq, .. }) => *seq,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Starts one transport per listener, ids 1.., all knowing each other (plus `extra`).
    fn ensemble(
        listeners: Vec<TcpListener>,
        extra: &[(ServerId, SocketAddr)],
    ) -> Vec<(Transport, Inbox)> {
        let mut members: BTreeMap<ServerId, SocketAddr> = listeners
            .iter()
            .enumerate()
            .map(|(index, l)| (index as ServerId + 1, l.local_addr().expect("addr")))
            .collect();
        members.extend(extra.iter().copied());
        listeners
            .into_iter()
            .enumerate()
            .map(|(index, l)| {
                let (sender, receiver) = crossbeam_channel::unbounded();
                let transport = Transport::start_with_listener(
                    "test",
                    index as ServerId + 1,
                    l,
                    members.clone(),
                    limits(),
                    sender,
                )
                .expect("start");
                (transport, receiver)
            })
            .collect()
    }

    /// Sends numbered messages from `from` to `to` until one arrives (the link may need a
    /// dial or redial, and messages sent while it is down are dropped by design); returns the
    /// next number to use.
    fn until_linked(
        from: &Transport,
        to: ServerId,
        inbox: &Inbox,
        sender_id: ServerId,
        mut seq: u64,
    ) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "link {sender_id}->{to} never came up"
            );
            from.send(to, &ack(seq));
            seq += 1;
            if let Ok((id, message)) = inbox.recv_timeout(Duration::from_millis(20)) {
                assert_eq!(id, sender_id);
                // Everything after this one arrives in order: drain what is in flight.
                let mut last = seq_of(&message);
                while let Ok((_, message)) = inbox.recv_timeout(Duration::from_millis(100)) {
                    assert!(seq_of(&message) > last);
                    last = seq_of(&message);
                }
                return seq;
            }
        }
    }

    fn expect_in_order(inbox: &Inbox, from: ServerId, range: std::ops::Range<u64>) {
        for expected in range {
            let (id, message) = inbox.recv_timeout(WAIT).expect("message");
            assert_eq!((id, seq_of(&message)), (from, expected));
        }
    }

    /// Zab §III assumes FIFO links between servers: per pair, messages arrive in send order,
    /// and each is attributed to its sender.
    #[test]
    fn three_servers_exchange_messages_in_order() {
        let mut servers = ensemble(vec![listener(), listener(), listener()], &[]);
        for from in 1..=3u64 {
            for to in 1..=3u64 {
                if from != to {
                    let start = until_linked(
                        &servers[from as usize - 1].0,
                        to,
                        &servers[to as usize - 1].1,
                        from,
                        0,
                    );
                    for seq in start..start + 1000 {
                        servers[from as usize - 1].0.send(to, &ack(seq));
                    }
                    expect_in_order(&servers[to as usize - 1].1, from, start..start + 1000);
                }
            }
        }
        // A large message (a snapshot) between small ones keeps its place.
        let snap = Wire::Zab(Message::snapshot(1, 5, 9, vec![7; 3 << 20]));
        servers[0].0.send(2, &ack(1));
        servers[0].0.send(2, &snap);
        servers[0].0.send(2, &ack(2));
        let inbox = &servers[1].1;
        assert_eq!(seq_of(&inbox.recv_timeout(WAIT).expect("first").1), 1);
        assert_eq!(inbox.recv_timeout(WAIT).expect("snap").1, snap);
        assert_eq!(seq_of(&inbox.recv_timeout(WAIT).expect("last").1), 2);
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
    }

    #[test]
    fn sends_to_self_and_non_members_are_dropped() {
        let mut servers = ensemble(vec![listener(), listener()], &[]);
        servers[0].0.send(1, &ack(0));
        servers[0].0.send(9, &ack(0));
        assert!(servers[0]
            .1
            .recv_timeout(Duration::from_millis(100))
            .is_err());
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
    }

    /// A peer that starts after its first messages were sent is dialled again (capped
    /// backoff) and gets what is sent once it is up.
    #[test]
    fn a_peer_that_starts_later_is_redialled() {
        let late = listener();
        let late_addr = late.local_addr().expect("addr");
        drop(late); // Nobody listens there yet: dials are refused.
        let early = listener();
        let early_addr = early.local_addr().expect("addr");
        let members: BTreeMap<ServerId, SocketAddr> = [(1, early_addr), (2, late_addr)].into();
        let (sender, _early_inbox) = crossbeam_channel::unbounded();
        let first =
            Transport::start_with_listener("test", 1, early, members.clone(), limits(), sender)
                .expect("start");
        for seq in 0..5 {
            first.send(2, &ack(seq)); // Dropped: the link cannot come up.
        }
        let (sender, inbox) = crossbeam_channel::unbounded();
        let second =
            Transport::start("test", 2, late_addr, members, limits(), sender).expect("start late");
        let start = until_linked(&first, 2, &inbox, 1, 100);
        for seq in start..start + 100 {
            first.send(2, &ack(seq));
        }
        expect_in_order(&inbox, 1, start..start + 100);
        first.shutdown();
        second.shutdown();
    }

    /// ZooKeeper servers restart and their peers reconnect: a transport restarted on the same
    /// port gets the messages sent after it is back, in order.
    #[test]
    fn a_restarted_peer_is_reconnected() {
        let mut servers = ensemble(vec![listener(), listener()], &[]);
        let start = until_linked(&servers[0].0, 2, &servers[1].1, 1, 0);
        let (second, _) = servers.pop().expect("second");
        let address = second.local_addr();
        second.shutdown();
        let members: BTreeMap<ServerId, SocketAddr> =
            [(1, servers[0].0.local_addr()), (2, address)].into();
        let (sender, inbox) = crossbeam_channel::unbounded();
        let restarted =
            Transport::start("test", 2, address, members, limits(), sender).expect("restart");
        let start = until_linked(&servers[0].0, 2, &inbox, 1, start + 1);
        for seq in start..start + 100 {
            servers[0].0.send(2, &ack(seq));
        }
        expect_in_order(&inbox, 1, start..start + 100);
        // And the other direction, dialled for the first time by the new process.
        let back = until_linked(&restarted, 1, &servers[0].1, 2, 0);
        restarted.send(1, &ack(back));
        expect_in_order(&servers[0].1, 2, back..back + 1);
        restarted.shutdown();
        servers.pop().expect("first").0.shutdown();
    }

    /// Waits until the transport closes `stream` (EOF or reset), within the test deadline.
    fn closed_by_peer(stream: &mut TcpStream) -> bool {
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
        }
    }

    /// A bad connection costs only itself: garbage handshakes, unknown ids, oversized and
    /// undecodable frames close that connection, and the real links keep working.
    #[test]
    fn bad_connections_are_closed_and_other_links_keep_working() {
        // Server 3 is a member that never runs; raw connections speak for it.
        let ghost: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let mut servers = ensemble(vec![listener(), listener()], &[(3, ghost)]);
        let target = servers[0].0.local_addr();
        let mut seq = until_linked(&servers[1].0, 1, &servers[0].1, 2, 0);

        let mut garbage = TcpStream::connect(target).expect("connect");
        garbage.write_all(&[0x55; HANDSHAKE_BYTES]).expect("write");
        assert!(closed_by_peer(&mut garbage), "garbage handshake not closed");

        let mut stranger = TcpStream::connect(target).expect("connect");
        stranger.write_all(&handshake(99)).expect("write");
        let mut frame = Vec::new();
        wire::encode(&ack(0), &mut frame);
        let _ = stranger.write_all(&(frame.len() as u32).to_be_bytes());
        let _ = stranger.write_all(&frame);
        assert!(closed_by_peer(&mut stranger), "non-member not closed");

        let mut impostor = TcpStream::connect(target).expect("connect");
        impostor.write_all(&handshake(1)).expect("write");
        assert!(closed_by_peer(&mut impostor), "own id not refused");

        let mut oversized = TcpStream::connect(target).expect("connect");
        oversized.write_all(&handshake(3)).expect("write");
        oversized
            .write_all(&(u32::MAX).to_be_bytes())
            .expect("write");
        assert!(closed_by_peer(&mut oversized), "oversized frame not closed");

        let mut undecodable = TcpStream::connect(target).expect("connect");
        undecodable.write_all(&handshake(3)).expect("write");
        undecodable.write_all(&[0, 0, 0, 2, 9, 9]).expect("write");
        assert!(
            closed_by_peer(&mut undecodable),
            "undecodable frame not closed"
        );

        // The member's own link never noticed.
        for _ in 0..100 {
            servers[1].0.send(1, &ack(seq));
            seq += 1;
        }
        expect_in_order(&servers[0].1, 2, seq - 100..seq);
        assert!(
            servers[0].1.try_recv().is_err(),
            "something from a refused connection arrived"
        );
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
    }

    /// A well-formed frame from a connection that was replaced by a newer one of the same
    /// member is not delivered after the newer one's messages.
    #[test]
    fn a_newer_connection_of_a_member_replaces_the_older() {
        let ghost: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let mut servers = ensemble(vec![listener()], &[(3, ghost)]);
        let target = servers[0].0.local_addr();
        let frame = |seq: u64| {
            let mut body = Vec::new();
            wire::encode(&ack(seq), &mut body);
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            frame
        };
        let mut old = TcpStream::connect(target).expect("connect");
        old.write_all(&handshake(3)).expect("write");
        old.write_all(&frame(1)).expect("write");
        expect_in_order(&servers[0].1, 3, 1..2);
        let mut new = TcpStream::connect(target).expect("connect");
        new.write_all(&handshake(3)).expect("write");
        new.write_all(&frame(2)).expect("write");
        expect_in_order(&servers[0].1, 3, 2..3);
        assert!(closed_by_peer(&mut old), "the older connection stays open");
        let _ = old.write_all(&frame(3));
        new.write_all(&frame(4)).expect("write");
        expect_in_order(&servers[0].1, 3, 4..5);
        servers.pop().expect("server").0.shutdown();
    }

    fn sasl(password: &str, learner_require: bool, server_require: bool) -> LinkSecurity {
        let mut credentials = crate::auth::digest_md5::DigestCredentials::default();
        credentials
            .users
            .insert("member".into(), "quorum-secret".into());
        LinkSecurity {
            sasl: Some(Arc::new(QuorumSasl {
                learner_require_sasl: learner_require,
                server_require_sasl: server_require,
                server_credentials: credentials,
                learner_username: "member".into(),
                learner_password: password.into(),
                server_login_context: "QuorumServer".into(),
            })),
            ..LinkSecurity::default()
        }
    }

    /// Starts transports 1.. with the given security each, all knowing each other.
    fn secured(securities: Vec<LinkSecurity>) -> Vec<(Transport, Inbox)> {
        let listeners: Vec<TcpListener> = securities.iter().map(|_| listener()).collect();
        let members: BTreeMap<ServerId, SocketAddr> = listeners
            .iter()
            .enumerate()
            .map(|(index, l)| (index as ServerId + 1, l.local_addr().expect("addr")))
            .collect();
        listeners
            .into_iter()
            .zip(securities)
            .enumerate()
            .map(|(index, (l, security))| {
                let (sender, receiver) = crossbeam_channel::unbounded();
                let transport = Transport::start_secured(
                    "test",
                    index as ServerId + 1,
                    l,
                    members.clone(),
                    limits(),
                    sender,
                    security,
                )
                .expect("start");
                (transport, receiver)
            })
            .collect()
    }

    /// Sends from `from` to `to` for `attempts` rounds of 20 ms and reports whether anything
    /// arrived (a bounded wait: what is shown is that nothing does).
    fn anything_arrives(from: &Transport, to: ServerId, inbox: &Inbox) -> bool {
        for seq in 0..25 {
            from.send(to, &ack(seq));
            if inbox.recv_timeout(Duration::from_millis(20)).is_ok() {
                return true;
            }
        }
        false
    }

    /// SaslQuorumAuthServer with quorum.auth.serverRequireSasl=true: a learner with the
    /// right password links, one with a wrong password and one that does not try
    /// (learnerRequireSasl=false) are refused; the good link is not disturbed.
    #[test]
    fn a_server_requiring_sasl_admits_authenticated_learners_only() {
        let mut servers = secured(vec![
            sasl("quorum-secret", true, true),
            sasl("quorum-secret", true, true),
            sasl("wrong", true, true),
            LinkSecurity::default(),
        ]);
        let seq = until_linked(&servers[1].0, 1, &servers[0].1, 2, 0);
        assert!(!anything_arrives(&servers[2].0, 1, &servers[0].1));
        assert!(!anything_arrives(&servers[3].0, 1, &servers[0].1));
        for next in seq..seq + 10 {
            servers[1].0.send(1, &ack(next));
        }
        expect_in_order(&servers[0].1, 2, seq..seq + 10);
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
    }

    /// The rolling upgrade (ZooKeeper's quorum.auth.* steps): a server with
    /// serverRequireSasl=false takes a learner that does not authenticate, and one that
    /// authenticates; a learner that requires SASL of itself gives up a link whose
    /// authentication failed, even to a server that would keep it.
    #[test]
    fn without_server_require_sasl_unauthenticated_learners_are_accepted() {
        let mut servers = secured(vec![
            sasl("quorum-secret", false, false),
            LinkSecurity::default(),
            sasl("quorum-secret", true, false),
            sasl("wrong", true, false),
        ]);
        until_linked(&servers[1].0, 1, &servers[0].1, 2, 0);
        until_linked(&servers[2].0, 1, &servers[0].1, 3, 0);
        assert!(!anything_arrives(&servers[3].0, 1, &servers[0].1));
        // A learner that authenticates, to a member without quorum SASL: refused.
        assert!(!anything_arrives(&servers[2].0, 2, &servers[1].1));
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
    }

    /// CA- and rogue-CA-signed member certificates (for 127.0.0.1) made with `openssl`, as
    /// PEM key stores; None (the test is skipped) without openssl.
    fn certificates() -> Option<std::path::PathBuf> {
        let directory = std::env::temp_dir().join(format!(
            "ringkeeper-quorum-tls-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&directory).ok()?;
        let run = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(&directory)
                .output()
                .is_ok_and(|output| output.status.success())
        };
        std::fs::write(
            directory.join("member.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .ok()?;
        for (who, ca) in [("member", "ca"), ("rogue", "rogue-ca")] {
            let made = run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
            ]) && run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ]) && run(&[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{who}.crt"),
                "-days",
                "2",
                "-extfile",
                "member.ext",
            ]);
            if !made {
                eprintln!("openssl unavailable: skipping");
                return None;
            }
            let key = std::fs::read_to_string(directory.join(format!("{who}.key"))).ok()?;
            let crt = std::fs::read_to_string(directory.join(format!("{who}.crt"))).ok()?;
            std::fs::write(directory.join(format!("{who}-store.pem")), key + &crt).ok()?;
        }
        Some(directory)
    }

    fn tls(
        directory: &std::path::Path,
        store: &str,
        dial_tls: bool,
        accept: AcceptMode,
    ) -> LinkSecurity {
        let mut settings = crate::config::tls::TlsSettings {
            client_hostname_verification: true,
            ..Default::default()
        };
        settings.key_store.location = Some(directory.join(store));
        settings.trust_store.location = Some(directory.join("ca.pem"));
        LinkSecurity {
            tls: Some(Arc::new(QuorumTls::new(&settings, false).expect("stores"))),
            dial_tls,
            accept,
            ..LinkSecurity::default()
        }
    }

    /// sslQuorum with mutual TLS: members with certificates of the quorum CA link; one with a
    /// rogue CA's certificate is refused; with portUnification a plaintext member is taken
    /// too, and without it refused (ZooKeeper's UnifiedServerSocket, rolling sslQuorum).
    #[test]
    fn tls_links_admit_members_of_the_trusted_ca() {
        let Some(directory) = certificates() else {
            return;
        };
        let mut servers = secured(vec![
            tls(&directory, "member-store.pem", true, AcceptMode::Unified),
            tls(&directory, "member-store.pem", true, AcceptMode::Tls),
            LinkSecurity::default(),
            tls(&directory, "rogue-store.pem", true, AcceptMode::Tls),
        ]);
        until_linked(&servers[1].0, 1, &servers[0].1, 2, 0);
        until_linked(&servers[0].0, 2, &servers[1].1, 1, 0);
        until_linked(&servers[2].0, 1, &servers[0].1, 3, 0);
        assert!(!anything_arrives(&servers[3].0, 1, &servers[0].1));
        assert!(!anything_arrives(&servers[2].0, 2, &servers[1].1));
        for (transport, _) in servers.drain(..) {
            transport.shutdown();
        }
        let _ = std::fs::remove_dir_all(&directory);
    }

    /// Shutdown is bounded even with a peer that accepts but never reads (a writer blocked
    /// in write) and a connection that never sends its handshake.
    #[test]
    fn shutdown_is_bounded_with_stuck_peers() {
        let silent = listener(); // Accepts (backlog) but never reads.
        let silent_addr = silent.local_addr().expect("addr");
        let own = listener();
        let own_addr = own.local_addr().expect("addr");
        let members: BTreeMap<ServerId, SocketAddr> = [(1, own_addr), (2, silent_addr)].into();
        let (sender, _inbox) = crossbeam_channel::unbounded();
        let transport = Transport::start_with_listener("test", 1, own, members, limits(), sender)
            .expect("start");
        let big = Wire::Zab(Message::snapshot(1, 1, 1, vec![0; 16 << 20]));
        transport.send(2, &big);
        transport.send(2, &big);
        let _lurker = TcpStream::connect(own_addr).expect("connect");
        let started = Instant::now();
        transport.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            started.elapsed()
        );
        drop(silent);
    }
}
