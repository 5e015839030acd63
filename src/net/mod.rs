//! [io] Connections on one core: the accept loop, each connection's read loop and write
//! loop, the per-connection FIFO that keeps replies in request order, and the dispatcher
//! that applies the pipeline's batches (watch events, then the new tree version, then
//! replies).
//!
//! Per-connection ordering (ZooKeeper guarantees FIFO order per session): a read that arrives
//! while a write of the same connection is in the pipeline waits behind it and is served
//! from the version that contains that write. Reads with nothing ahead of them are served at
//! once from the core's current version, without a lock and without leaving the core.

pub mod admin;
pub mod conn;
pub mod readiness;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::config::Config;
use crate::fourlw::AdminHub;
use crate::metrics::ServerStats;
use crate::pipeline::{CoreBatch, CorePresence, CoreReply, PipelineInput};
use crate::tree::{acl, TreeVersion};
use crate::watch::WatchRegistry;

use conn::Conn;

/// Connections per client address, shared by every core (checked on accept only).
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionCounts {
    /// Counts a new connection from `ip`; false if that would exceed `limit` (0 = unlimited).
    pub fn admit(&self, ip: IpAddr, limit: usize) -> bool {
        let Ok(mut counts) = self.counts.lock() else {
            return true;
        };
        let count = counts.entry(ip).or_insert(0);
        if limit != 0 && *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    pub fn release(&self, ip: IpAddr) {
        if let Ok(mut counts) = self.counts.lock() {
            if let Some(count) = counts.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

/// What every core shares with the others (cloned into each).
#[derive(Clone)]
pub struct CoreShared {
    pub config: Arc<Config>,
    pub stats: Arc<ServerStats>,
    pub pipeline: crossbeam_channel::Sender<PipelineInput>,
    pub connection_counts: Arc<ConnectionCounts>,
    pub admin: AdminHub,
    pub core_count: usize,
    pub presence: Arc<CorePresence>,
}

/// How long a core waits for a batch the pipeline has announced but not yet delivered.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Everything a core needs, shared by its tasks (one thread: Rc and RefCell, no locks).
pub struct CoreState {
    pub core: usize,
    pub config: Arc<Config>,
    pub stats: Arc<ServerStats>,
    pub pipeline: crossbeam_channel::Sender<PipelineInput>,
    pub view: RefCell<Arc<TreeVersion>>,
    pub watches: RefCell<WatchRegistry>,
    pub conns: RefCell<HashMap<u64, Rc<Conn>>>,
    pub touched: RefCell<HashSet<i64>>,
    pub connection_counts: Arc<ConnectionCounts>,
    pub admin: AdminHub,
    presence: Arc<CorePresence>,
    next_conn_id: Cell<u64>,
    /// Requests received on this core and not yet answered, and this core's share of
    /// `globalOutstandingLimit`; connections pause reading while the share is used up.
    outstanding: Cell<usize>,
    outstanding_share: usize,
    capacity_freed: event_listener::Event,
    /// Connections whose reading is paused for backpressure (their sessions are touched).
    paused_connections: Cell<usize>,
    /// Connections with a read at the front of their queue that waits for a newer view.
    reads_waiting: RefCell<Vec<Rc<Conn>>>,
    /// This core's batch queue (also drained by its dispatcher task), for catching up.
    batches: async_channel::Receiver<CoreBatch>,
}

impl CoreState {
    pub fn new(
        core: usize,
        shared: CoreShared,
        initial: Arc<TreeVersion>,
        batches: async_channel::Receiver<CoreBatch>,
    ) -> CoreState {
        let CoreShared {
            config,
            stats,
            pipeline,
            connection_counts,
            admin,
            core_count,
            presence,
        } = shared;
        let outstanding_share = (config.limits.outstanding_requests_max / core_count.max(1)).max(1);
        CoreState {
            batches,
            outstanding: Cell::new(0),
            paused_connections: Cell::new(0),
            reads_waiting: RefCell::new(Vec::new()),
            outstanding_share,
            capacity_freed: event_listener::Event::new(),
            core,
            config,
            stats,
            pipeline,
            view: RefCell::new(initial),
            watches: RefCell::new(WatchRegistry::default()),
            conns: RefCell::new(HashMap::new()),
            touched: RefCell::new(HashSet::new()),
            connection_counts,
            admin,
            presence,
            next_conn_id: Cell::new(1),
        }
    }

    /// Connection ids are unique server-wide: the core number in the top 16 bits.
    pub fn allocate_conn_id(&self) -> u64 {
        let id = self.next_conn_id.get();
        self.next_conn_id.set(id + 1);
        ((self.core as u64) << 48) | id
    }

    pub fn request_started(&self) {
        self.outstanding.set(self.outstanding.get() + 1);
        self.stats
            .outstanding_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn requests_finished(&self, count: usize) {
        if count == 0 {
            return;
        }
        let before = self.outstanding.get();
        // Every finished request was started on this core: the count is exact, or the
        // limit would leak capacity until the core stops reading altogether.
        assert!(
            before >= count,
            "core {}: {count} requests finished, {before} outstanding",
            self.core
        );
        self.outstanding.set(before - count);
        self.stats
            .outstanding_requests
            .fetch_sub(count as i64, std::sync::atomic::Ordering::Relaxed);
        // Paused connections resume together once a quarter of the share is free again,
        // not at every freed slot: waking every paused connection for each reply would cost
        // O(paused connections) per request under overload.
        let resume_at = self.outstanding_share - (self.outstanding_share / 4).max(1);
        if before > resume_at && self.outstanding.get() <= resume_at {
            self.capacity_freed.notify(usize::MAX);
        }
    }

    /// Whether this core's share of the global outstanding limit has room.
    pub fn has_capacity(&self) -> bool {
        self.outstanding.get() < self.outstanding_share
    }

    /// Waits while this core's share of the global outstanding limit is used up, or until
    /// `conn` closes (a closed connection must leave its read loop, or its own outstanding
    /// requests would never be given back).
    pub async fn wait_for_capacity(&self, conn: &Conn) {
        while !self.has_capacity() && !conn.is_closed() {
            let freed = self.capacity_freed.listen();
            let closed = conn.on_close();
            if self.has_capacity() || conn.is_closed() {
                break;
            }
            futures_lite::future::or(freed, closed).await;
        }
    }

    /// A read queued with no write ahead of it waits for the view to reach what was
    /// published when it arrived; it is served at the end of the step that brings it.
    pub fn wait_for_view(&self, conn: &Rc<Conn>) {
        if !conn.serve_ready_reads(self) {
            return;
        }
        let mut waiting = self.reads_waiting.borrow_mut();
        if !waiting.iter().any(|other| Rc::ptr_eq(other, conn)) {
            waiting.push(conn.clone());
        }
    }

    pub fn connection_paused(&self, paused: bool) {
        let count = self.paused_connections.get();
        self.paused_connections
            .set(if paused { count + 1 } else { count - 1 });
    }

    pub fn view(&self) -> Arc<TreeVersion> {
        self.view.borrow().clone()
    }

    /// A connection opened on this core: a core that had none catches up with the newest
    /// published version (it was sent no batch meanwhile).
    pub fn connection_opened(&self) {
        if let Some(latest) = self.presence.connection_opened(self.core) {
            if latest.zxid > self.view.borrow().zxid {
                *self.view.borrow_mut() = latest;
            }
        }
    }

    pub fn connection_closed(&self) {
        self.presence.connection_closed(self.core);
    }

    pub fn send_to_pipeline(&self, input: PipelineInput) {
        if self.pipeline.send(input).is_err() {
            warn!("the pipeline has stopped; request dropped");
        }
    }

    /// Applies one batch from the pipeline, step by step. A step's version becomes the view
    /// first; then, transaction by transaction, its watch events go out and the replies that
    /// follow it, in ZooKeeper's order; then the reads those replies released are served,
    /// from the step's version, after every event of it. Nothing else runs on this core
    /// meanwhile, so no read anywhere sees the version before its events are sent.
    pub fn apply_batch(&self, batch: CoreBatch) {
        let mut replies = batch.replies.into_iter().peekable();
        let mut answered: Vec<Rc<Conn>> = Vec::new();
        let mut deliver_through = |txns_done: usize, state: &CoreState, answered: &mut Vec<_>| {
            while let Some((_, reply)) = replies.next_if(|(after, _)| *after <= txns_done) {
                if let Some(conn) = state.deliver(reply) {
                    answered.push(conn);
                }
            }
        };
        // A released read is served once the view is as new as what was published when it
        // arrived (another core may already have answered a later write of this batch), and
        // before the step holding its connection's next write (which starts a step: fenced).
        let serve_reads = |answered: &mut Vec<Rc<Conn>>, state: &CoreState| {
            let waiting = std::mem::take(&mut *state.reads_waiting.borrow_mut());
            for conn in waiting.into_iter().chain(answered.drain(..)) {
                if conn.is_closed() || !conn.serve_ready_reads(state) {
                    continue;
                }
                let mut still = state.reads_waiting.borrow_mut();
                if !still.iter().any(|other| Rc::ptr_eq(other, &conn)) {
                    still.push(conn);
                }
            }
        };
        let mut txns_done = 0;
        deliver_through(txns_done, self, &mut answered);
        serve_reads(&mut answered, self);
        for step in batch.steps.iter() {
            // A core that took a newer version when its first connection opened (it was
            // sent no batch while idle) never goes back to an older one.
            if step.version.zxid >= self.view.borrow().zxid {
                *self.view.borrow_mut() = step.version.clone();
            }
            let mut start = 0;
            for &end in &step.trigger_ends {
                self.fire(step.triggers.get(start..end).unwrap_or_default());
                start = end;
                txns_done += 1;
                deliver_through(txns_done, self, &mut answered);
            }
            serve_reads(&mut answered, self);
        }
        deliver_through(usize::MAX, self, &mut answered);
        serve_reads(&mut answered, self);
    }

    /// Sends the notifications of one step's triggers to the watching connections.
    fn fire(&self, triggers: &[crate::tree::WatchTrigger]) {
        if triggers.is_empty() {
            return;
        }
        let mut watches = self.watches.borrow_mut();
        let conns = self.conns.borrow();
        for trigger in triggers {
            let fired = watches.fire(&trigger.path, trigger.event);
            for conn_id in fired {
                let Some(conn) = conns.get(&conn_id) else {
                    continue;
                };
                // ZooKeeper 3.9 delivers an event only to a watcher that may read the node
                // (NIOServerCnxn.process with the znode's ACL).
                let auth = conn.auth();
                if !self.config.skip_acl
                    && !acl::check(&trigger.acl, crate::jute::protocol::perms::READ, &auth)
                {
                    continue;
                }
                conn.send(crate::jute::response::notification_frame(
                    trigger.zxid,
                    trigger.event,
                    &trigger.path,
                ));
            }
        }
    }

    /// Delivers one reply; a write's reply returns its connection, whose queued reads are
    /// served once the events of the step are out.
    fn deliver(&self, reply: CoreReply) -> Option<Rc<Conn>> {
        match reply {
            CoreReply::Frame {
                conn_id,
                frame,
                close,
            } => {
                let conn = self.conns.borrow().get(&conn_id).cloned();
                if let Some(conn) = &conn {
                    conn.complete_write(self, frame);
                    if close {
                        conn.close("session closed by the client");
                    }
                }
                return conn;
            }
            CoreReply::Connected {
                conn_id,
                session_id,
                timeout_ms,
                frame,
            } => {
                // A connection that went away while its session was being made leaves the
                // session to expire, as in ZooKeeper.
                let conn = self.conns.borrow().get(&conn_id).cloned();
                if let Some(conn) = conn {
                    conn.connected(self, session_id, timeout_ms, frame);
                }
            }
            CoreReply::Close { conn_id, reason } => {
                let conn = self.conns.borrow().get(&conn_id).cloned();
                if let Some(conn) = conn {
                    conn.close(reason);
                }
            }
            CoreReply::CloseAll { reason } => {
                let conns: Vec<Rc<Conn>> = self.conns.borrow().values().cloned().collect();
                for conn in conns {
                    conn.close(reason);
                }
            }
        }
        None
    }

    /// Brings this core's view up to the newest published version before a read, so that no
    /// client reads older data than an event another client has already received (a
    /// standalone ZooKeeper has one tree; here each core has its view). The batches are
    /// applied in full: events before data, as always.
    pub fn catch_up(&self) {
        let target = self
            .stats
            .published_zxid
            .load(std::sync::atomic::Ordering::SeqCst);
        if self.view.borrow().zxid >= target {
            return;
        }
        let deadline = std::time::Instant::now() + CATCH_UP_WAIT;
        while self.view.borrow().zxid < target {
            match self.batches.try_recv() {
                Ok(batch) => self.apply_batch(batch),
                Err(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                Err(_) => {
                    warn!(
                        "core {} could not catch up to zxid {target:#x} within {:?}",
                        self.core, CATCH_UP_WAIT
                    );
                    return;
                }
            }
        }
    }

    /// Sends the sessions touched since the last report to the session owner.
    pub fn report_touches(&self) {
        if self.paused_connections.get() > 0 {
            // A paused connection's pings are not read; it has requests in the pipeline that
            // will free it, so its session is alive (ZooKeeper's throttled connections
            // likewise keep their sessions).
            let mut touched = self.touched.borrow_mut();
            for conn in self.conns.borrow().values() {
                let session_id = conn.session_id.get();
                if conn.is_paused() && session_id != 0 {
                    touched.insert(session_id);
                }
            }
        }
        let sessions: Vec<i64> = self.touched.borrow_mut().drain().collect();
        if !sessions.is_empty() {
            self.send_to_pipeline(PipelineInput::Touch { sessions });
        }
    }

    pub fn watch_count(&self) -> usize {
        let watches = self.watches.borrow();
        watches.data.watch_count() + watches.child.watch_count()
    }
}

/// How often a core reports touched sessions to the session owner. Well below the minimum
/// session timeout (2 ticks), so a live client is never expired for want of a report.
pub fn touch_report_interval(config: &Config) -> Duration {
    Duration::from_millis((config.tick_time_ms as u64 / 4).clamp(10, 250))
}

/// Accept loop of one core, for one listener (the plaintext or unified client port, or the
/// secure one): the connections its own listener (SO_REUSEPORT) accepts, served on this core.
/// The sockets are driven by readiness (`readiness`), never by an io_uring request, so that
/// they close with the process however it ends.
///
/// `moves` brings the sockets of a new client address (a reconfig moved this member's client
/// port, ZooKeeper's ServerCnxnFactory.reconfigure): the loop goes on with a listener on the
/// new socket, and the old listening socket closes. Connections accepted on the old one stay
/// up, as NIOServerCnxnFactory.reconfigure leaves them (it closes only the server socket).
pub async fn accept_loop(
    state: Rc<CoreState>,
    mut listener: readiness::Listener,
    kind: tls::ListenerKind,
    moves: Option<async_channel::Receiver<socket2::Socket>>,
) {
    enum Next {
        Accepted(std::io::Result<(readiness::Stream, std::net::SocketAddr)>),
        Moved(socket2::Socket),
    }
    loop {
        let accepted = async { Next::Accepted(listener.accept().await) };
        let next = match &moves {
            // Dropping an unfinished accept loses nothing: it is one non-blocking accept4
            // per wakeup, and the connection it did not take stays in the backlog.
            Some(moves) => {
                let moved = async {
                    match moves.recv().await {
                        Ok(socket) => Next::Moved(socket),
                        // The runtime dropped the sender: no move will come.
                        Err(_) => std::future::pending().await,
                    }
                };
                futures_lite::future::or(accepted, moved).await
            }
            None => accepted.await,
        };
        let next = match next {
            Next::Accepted(accepted) => accepted,
            Next::Moved(socket) => {
                match listener.adopt(socket) {
                    Ok(moved) => {
                        let from = listener.local_addr().ok();
                        listener = moved;
                        info!(
                            "core {}: accepting clients on {:?} instead of {from:?}",
                            state.core,
                            listener.local_addr().ok()
                        );
                    }
                    Err(error) => error!(
                        "core {}: cannot accept clients on the new client address: {error}; \
                         still on {:?}",
                        state.core,
                        listener.local_addr().ok()
                    ),
                }
                continue;
            }
        };
        let (stream, remote) = match next {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE, ENOBUFS and the like: the connection waits in the backlog.
                warn!("accept failed on core {}: {error}", state.core);
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !state
            .connection_counts
            .admit(remote.ip(), state.config.limits.connections_per_ip_max)
        {
            info!(
                "too many connections from {} (maxClientCnxns = {}); closing the new one",
                remote.ip(),
                state.config.limits.connections_per_ip_max
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        // conn::run frees the connection's slot (before the socket closes), or tls::serve
        // when the connection ends before it gets there.
        match &kind {
            tls::ListenerKind::Plain => {
                glommio::spawn_local(conn::run(state, stream, remote, Vec::new())).detach();
            }
            _ => {
                glommio::spawn_local(tls::serve(state, stream, remote, kind.clone())).detach();
            }
        }
    }
}
