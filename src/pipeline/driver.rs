//! [io] The pipeline thread: takes every write, connect and session message the cores send,
//! in batches; preps each write against the pending tree, assigns zxids, applies, and
//! publishes the new tree version with its watch triggers and the replies to every core.
//!
//! Ordering: each core receives one `CoreBatch` per published batch, through one FIFO
//! channel, so a core fires the watch events of a version, then switches to it, then sends
//! the replies computed in it. A client therefore sees an event before any reply that shows
//! the change, and replies in the order its requests arrived.
//!
//! Durability: the tree is in memory until the storage layer lands; the batch boundary here
//! is where the log writer's "durable up to zxid" will gate publication.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::VecDeque;

use crossbeam_channel::{Receiver, Sender};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::jute::protocol::{ErrorCode, OpCode};
use crate::jute::records::*;
use crate::jute::request::Request;
use crate::jute::response::{
    connect_frame, encode_multi, header_frame, record_frame, reply_frame, OpResult,
};
use crate::metrics::ServerStats;
use crate::session::{ConnRef, SessionSecrets, SessionTable};
use crate::tree::acl::AuthIds;
use crate::tree::{NodeKind, TreeVersion, Txn, TxnResult, WatchTrigger};
use crate::txnlog::format::LogRecord;
use crate::txnlog::writer::{WriterEvent, WriterInput};
use crate::zab::RejectReason;

use super::prep::{prep, PrepContext};

mod admission;
mod ensemble;
pub use crate::quorum::{QuorumDisk, QuorumLinks};
pub use ensemble::QuorumStart;

/// How long after a rebase the pipeline returns the freed memory to the OS: time for the cores
/// to move to the rebased version and drop the old ones.
const MEMORY_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// What cores send to the pipeline.
#[derive(Debug)]
pub enum PipelineInput {
    /// A ConnectRequest from a new connection.
    Connect {
        conn: ConnRef,
        request: ConnectRequest,
        /// False for clients that sent no readOnly byte; their answer has none either.
        read_only_flag: bool,
    },
    /// A write request (or sync, which is ordered with writes).
    Write {
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: AuthIds,
        /// A read of this connection waits between this write and its previous one: the
        /// write must not join the step (tree version) that read will be served from.
        fenced: bool,
    },
    /// Sessions that sent anything since the last report.
    Touch {
        sessions: Vec<i64>,
    },
    /// A connection bound to a session closed without closing the session.
    Closed {
        conn: ConnRef,
        session_id: i64,
    },
    /// Take a snapshot now (on demand: SIGUSR1).
    Snapshot,
    Shutdown,
}

/// A run of applied transactions published as one tree version, with the watch triggers they
/// fired. A core fires a step's events, then switches to its version, then sends the replies
/// that follow it, so an event always comes before any data that shows its change, and a read
/// queued behind a write sees at least that write.
///
/// A version per step, not per transaction: each version shares its structure with the one
/// before, so cutting one per transaction made every transaction copy the map nodes on its
/// path (and every core drop them again). A step ends before a write that a read of the same
/// connection waits in front of (`fenced`): that read must see the write before it and not
/// this one (ZooKeeper runs a session's requests in order). Within a
/// step the core switches to the step's version first, then, transaction by transaction, fires
/// its events and sends the replies that follow it, in ZooKeeper's order (the event of
/// transaction n, its reply, the event of n+1, ...); reads queued behind those replies are
/// served once all of the step's events are out, so that no read shows a change before its
/// event.
#[derive(Debug)]
pub struct Step {
    pub version: Arc<TreeVersion>,
    pub triggers: Vec<WatchTrigger>,
    /// Per transaction of the step, in zxid order: the end of its triggers in `triggers`.
    pub trigger_ends: Vec<usize>,
}

#[derive(Debug)]
pub enum CoreReply {
    /// A reply frame for a connection; `close` closes the connection after sending it.
    Frame {
        conn_id: u64,
        frame: Vec<u8>,
        close: bool,
    },
    /// The answer to a Connect. `session_id` is 0 when the session was refused, and the
    /// connection closes after the frame.
    Connected {
        conn_id: u64,
        session_id: i64,
        timeout_ms: i32,
        frame: Vec<u8>,
    },
    /// Close a connection (its session moved to another connection, or expired).
    Close { conn_id: u64, reason: &'static str },
    /// Close every client connection of the core: the server stopped serving (an ensemble
    /// member that lost its leader or quorum), as ZooKeeper closes them; clients reconnect
    /// elsewhere.
    CloseAll { reason: &'static str },
}

/// What the pipeline sends to one core per batch: the batch's steps (shared by every core)
/// and this core's replies, each tagged with the number of the batch's transactions (over all
/// its steps) that precede it.
#[derive(Debug)]
pub struct CoreBatch {
    pub steps: Arc<Vec<Step>>,
    pub replies: Vec<(usize, CoreReply)>,
}

/// A batch whose replies and versions may be published once `last_zxid` is durable.
struct Sealed {
    last_zxid: i64,
    steps: Vec<Step>,
    /// Transactions in the steps.
    txns: u64,
    replies: Vec<Vec<(usize, CoreReply)>>,
    /// Sessions created (with their timeout) or closed (None) by the batch, in order.
    session_changes: Vec<(i64, Option<i32>)>,
}

/// A background snapshot's zxid and file (None when writing it failed).
type SnapshotWritten = (i64, Option<std::path::PathBuf>);

/// The pipeline's end of the log writer's channels.
pub struct LogChannels {
    pub appends: Sender<WriterInput>,
    pub events: Receiver<WriterEvent>,
}

/// Snapshot policy and the durable state a snapshot is taken from.
pub struct Snapshots {
    /// Where snapshots go (dataDir) and where the log lives (dataLogDir), for purging.
    pub data_dir: std::path::PathBuf,
    pub log_dir: std::path::PathBuf,
    /// Transactions between snapshots: snapCount/2 plus a random part of snapCount/2.
    pub threshold: u64,
    /// Purge old snapshots and log segments after each snapshot, keeping this many
    /// snapshots (None: never purge).
    pub retain: Option<usize>,
    /// autopurge.purgeInterval: also purge on this clock, as ZooKeeper does (None: only
    /// after snapshots, when `retain` is set).
    pub purge_every: Option<Duration>,
    next_purge: Option<Instant>,
    /// When to hand the memory a rebase freed back to the OS: a moment after the rebase, once
    /// the cores have moved off the old versions and dropped them.
    release_memory_at: Option<Instant>,
    since_last: u64,
    running: Arc<std::sync::atomic::AtomicBool>,
    /// Each snapshot written in the background reports its zxid and file here, so the live
    /// tree can be rebased on it.
    /// (A failed snapshot reports None.)
    written: (Sender<SnapshotWritten>, Receiver<SnapshotWritten>),
    /// The newest durable version and the sessions open at its zxid.
    durable_version: Arc<TreeVersion>,
    durable_sessions: std::collections::BTreeMap<i64, i32>,
}

impl Snapshots {
    pub fn new(
        data_dir: std::path::PathBuf,
        log_dir: std::path::PathBuf,
        snap_count: u64,
        retain: Option<usize>,
        version: Arc<TreeVersion>,
        sessions: std::collections::BTreeMap<i64, i32>,
    ) -> Snapshots {
        let half = (snap_count / 2).max(1);
        Snapshots {
            data_dir,
            log_dir,
            threshold: half + rand::random::<u64>() % half,
            retain,
            purge_every: None,
            next_purge: None,
            release_memory_at: None,
            since_last: 0,
            running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            written: crossbeam_channel::unbounded(),
            durable_version: version,
            durable_sessions: sessions,
        }
    }
}

/// The state the pipeline starts from: the recovered tree, the sessions open in it (id,
/// timeout), and the secrets session passwords derive from.
pub struct PipelineStart {
    pub tree: TreeVersion,
    pub sessions: RecoveredSessions,
    pub secret: SessionSecrets,
    /// Goes into the top byte of the session ids this server creates (`myid` in an ensemble,
    /// 0 standalone), so servers of an ensemble never create the same id.
    pub server_id: u8,
}

/// Sessions that survived a restart (replayed from the log), with their timeouts.
pub type RecoveredSessions = Vec<(i64, i32)>;

/// The sending side of a core's queue. The pipeline never blocks on a core.
pub type CoreSender = async_channel::Sender<CoreBatch>;

/// Which cores hold connections, and the newest published version for a core that held
/// none. The pipeline sends no batch to a core without connections: nothing there waits for
/// a reply or watches a node, and waking an idle executor for every write costs a wake-up
/// and, when it parks again, glommio's process-wide memory barrier (an interrupt on every
/// CPU). A core takes the newest version from here when its first connection arrives.
#[derive(Debug)]
pub struct CorePresence {
    connections: Vec<std::sync::atomic::AtomicUsize>,
    latest: std::sync::Mutex<Arc<TreeVersion>>,
}

impl CorePresence {
    pub fn new(cores: usize, initial: Arc<TreeVersion>) -> CorePresence {
        CorePresence {
            connections: (0..cores)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
            latest: std::sync::Mutex::new(initial),
        }
    }

    /// A connection opened on `core`; when it is the core's only one, the newest published
    /// version (the core was sent no batch while it had none).
    pub fn connection_opened(&self, core: usize) -> Option<Arc<TreeVersion>> {
        let counter = self.connections.get(core)?;
        if counter.fetch_add(1, Ordering::SeqCst) != 0 {
            return None;
        }
        // Pairs with the fence in `is_idle`'s caller: either the pipeline sees this count,
        // or this core sees the version the pipeline stored before looking.
        std::sync::atomic::fence(Ordering::SeqCst);
        self.latest.lock().ok().map(|latest| latest.clone())
    }

    pub fn connection_closed(&self, core: usize) {
        if let Some(counter) = self.connections.get(core) {
            let before = counter.fetch_sub(1, Ordering::SeqCst);
            assert!(
                before > 0,
                "core {core}: a connection closed that never opened"
            );
        }
    }

    fn publish(&self, version: &Arc<TreeVersion>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = version.clone();
        }
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    fn is_idle(&self, core: usize) -> bool {
        self.connections
            .get(core)
            .is_some_and(|counter| counter.load(Ordering::SeqCst) == 0)
    }
}

pub struct Pipeline {
    config: Arc<Config>,
    stats: Arc<ServerStats>,
    tree: TreeVersion,
    sessions: SessionTable,
    cores: Vec<CoreSender>,
    triggers: Vec<WatchTrigger>,
    trigger_ends: Vec<usize>,
    steps: Vec<Step>,
    /// The tree has transactions that no step holds yet (`cut_step` makes one).
    uncut: bool,
    /// Transactions applied since the last seal.
    batch_txns: u64,
    replies: Vec<Vec<(usize, CoreReply)>>,
    /// Records of the batch being built, for the log writer.
    records: Vec<LogRecord>,
    /// Sealed batches waiting for the log writer to make them durable, oldest first.
    waiting: VecDeque<Sealed>,
    /// Every record up to this zxid is durable.
    durable_zxid: i64,
    log: Option<LogChannels>,
    session_changes: Vec<(i64, Option<i32>)>,
    snapshots: Option<Snapshots>,
    snapshot_requested: bool,
    started: Instant,
    next_container_check_ms: i64,
    next_session_dump_ms: i64,
    /// The newest version the cores have been sent.
    published: Arc<TreeVersion>,
    /// Transactions applied to the tree and not yet published, and while a snapshot is being
    /// written, every one after the snapshot's zxid: replayed onto the new snapshot to rebase
    /// the live tree on it (see `rebase`).
    recent_records: VecDeque<LogRecord>,
    /// The zxid of the snapshot being written, whose completion will rebase the tree.
    rebase_from: Option<i64>,
    /// Set when the server is an ensemble member (zoo.cfg has `server.N` lines).
    ensemble: Option<Box<ensemble::Ensemble>>,
    /// A leader's requests waiting for room in ZAB's window (see `admission`).
    admissions: admission::Admissions,
    /// Set by the runtime: cores without connections are sent no batch.
    presence: Option<Arc<CorePresence>>,
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// The super user's identity, used for the server's own requests (container reaping).
fn server_auth() -> Vec<Id> {
    vec![Id {
        scheme: "super".into(),
        id: String::new(),
    }]
}

impl Pipeline {
    /// A pipeline over the recovered state, whose writes are made durable through `log`
    /// (None: in memory, every batch is durable at once — for tests).
    pub fn new(
        config: Arc<Config>,
        stats: Arc<ServerStats>,
        start: PipelineStart,
        cores: Vec<CoreSender>,
        log: Option<LogChannels>,
        snapshots: Option<Snapshots>,
    ) -> Pipeline {
        let PipelineStart {
            tree,
            sessions: recovered_sessions,
            secret,
            server_id,
        } = start;
        let mut sessions = SessionTable::new(
            config.tick_time_ms as i64,
            server_id,
            wall_clock_ms(),
            secret,
        );
        // A recovered session gets a full timeout from now, as ZooKeeper does after a restart;
        // its client reconnects within it or the session expires.
        for (session_id, timeout_ms) in recovered_sessions {
            sessions.add(session_id, timeout_ms, None, 0);
        }
        let core_count = cores.len();
        let durable_zxid = tree.zxid;
        stats.published_zxid.store(tree.zxid, Ordering::SeqCst);
        Pipeline {
            records: Vec::new(),
            waiting: VecDeque::new(),
            durable_zxid,
            log,
            session_changes: Vec::new(),
            snapshots,
            snapshot_requested: false,
            next_container_check_ms: config.container_check_interval_ms as i64,
            next_session_dump_ms: 0,
            published: Arc::new(tree.clone()),
            recent_records: VecDeque::new(),
            rebase_from: None,
            ensemble: None,
            admissions: admission::Admissions::default(),
            presence: None,
            config,
            stats,
            tree,
            sessions,
            cores,
            triggers: Vec::new(),
            trigger_ends: Vec::new(),
            steps: Vec::new(),
            uncut: false,
            batch_txns: 0,
            replies: (0..core_count).map(|_| Vec::new()).collect(),
            started: Instant::now(),
        }
    }

    /// Cores without connections are sent no batch (see `CorePresence`).
    pub fn with_presence(mut self, presence: Arc<CorePresence>) -> Pipeline {
        self.presence = Some(presence);
        self
    }

    fn monotonic_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Runs until Shutdown or until every core has gone.
    ///
    /// Pipelining: a sealed batch goes to the log writer and the loop goes straight back to
    /// prepping the next one; replies and versions of a batch are published when the writer
    /// reports it durable, in batch order. Reads never see a version that is not durable.
    pub fn run(mut self, input: Receiver<PipelineInput>) {
        let batch_max = self.config.limits.batch_requests_max.max(1);
        let never = crossbeam_channel::never();
        let never_inbound = crossbeam_channel::never();
        let never_closed = crossbeam_channel::never();
        let never_encoded = crossbeam_channel::never();
        loop {
            let now = self.monotonic_ms();
            let mut wake_ms = self.next_container_check_ms.min(self.next_session_dump_ms);
            if let Some(deadline) = self.sessions.next_deadline_ms() {
                if self.ensemble.is_none() || self.quorum_role_for_clients() == Some(true) {
                    wake_ms = wake_ms.min(deadline);
                }
            }
            if let Some(ensemble) = &self.ensemble {
                wake_ms = wake_ms.min(ensemble.next_timer_ms(now));
            }
            let wait = Duration::from_millis(wake_ms.saturating_sub(now).clamp(1, 1000) as u64);
            let events = self.log.as_ref().map_or(&never, |log| &log.events);
            let inbound = self
                .ensemble
                .as_ref()
                .map_or(&never_inbound, |ensemble| &ensemble.inbound)
                .clone();
            let closed = self
                .ensemble
                .as_ref()
                .map_or(&never_closed, |ensemble| &ensemble.closed)
                .clone();
            let encoded = self
                .ensemble
                .as_ref()
                .map_or(&never_encoded, |ensemble| &ensemble.encoded.1)
                .clone();
            let mut shutdown = false;
            crossbeam_channel::select! {
                recv(encoded) -> done => {
                    if let Ok((to, message)) = done {
                        self.quorum_snapshot_encoded(to, message);
                    }
                },
                recv(closed) -> from => {
                    if let Ok(from) = from {
                        self.quorum_closed(from);
                    }
                },
                recv(inbound) -> message => {
                    if let Ok((from, message)) = message {
                        self.on_quorum_message(from, message);
                        let mut taken = 1;
                        while taken < batch_max {
                            match inbound.try_recv() {
                                Ok((from, message)) => {
                                    self.on_quorum_message(from, message);
                                    taken += 1;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                },
                recv(input) -> message => match message {
                    Ok(message) => {
                        shutdown |= self.handle(message);
                        let mut taken = 1;
                        while taken < batch_max && !shutdown {
                            match input.try_recv() {
                                Ok(message) => {
                                    shutdown |= self.handle(message);
                                    taken += 1;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Err(_) => shutdown = true,
                },
                recv(events) -> event => match event {
                    Ok(event) => self.on_writer_event(event),
                    Err(_) => self.log_failed("the log writer stopped".into()),
                },
                default(wait) => {}
            }
            self.quorum_timers();
            self.rebase_on_written_snapshot();
            self.housekeeping();
            self.admit_held();
            self.seal();
            self.drain_writer_events();
            self.release();
            if shutdown {
                self.finish();
                break;
            }
        }
        info!("pipeline stopped at zxid {:#x}", self.tree.zxid);
    }

    fn on_writer_event(&mut self, event: WriterEvent) {
        match event {
            WriterEvent::Durable { zxid, records, .. } => {
                self.stats.log_batches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .log_records
                    .fetch_add(records as u64, Ordering::Relaxed);
                if self.ensemble.is_some() {
                    // In an ensemble, durability is ZAB's input; what is released is what
                    // ZAB commits.
                    self.quorum_durable(zxid);
                } else {
                    self.durable_zxid = self.durable_zxid.max(zxid);
                }
            }
            WriterEvent::Failed { reason } => self.log_failed(reason),
        }
    }

    fn drain_writer_events(&mut self) {
        loop {
            let event = match &self.log {
                Some(log) => log.events.try_recv(),
                None => return,
            };
            match event {
                Ok(event) => self.on_writer_event(event),
                Err(_) => return,
            }
        }
    }

    /// The log is poisoned: nothing more may be acknowledged. Stop the server, loudly.
    fn log_failed(&self, reason: String) -> ! {
        error!("{reason}; no write after this point was acknowledged; stopping the server");
        std::process::exit(74);
    }

    /// Ends the current batch: its records go to the log writer, its versions and replies
    /// wait until they are durable.
    fn seal(&mut self) {
        // In an ensemble a learner logs proposals that make no step until they commit.
        self.flush_records();
        self.cut_step();
        let has_replies = self.replies.iter().any(|queue| !queue.is_empty());
        if self.steps.is_empty() && !has_replies {
            return;
        }
        let core_count = self.replies.len();
        self.waiting.push_back(Sealed {
            last_zxid: self.tree.zxid,
            steps: std::mem::take(&mut self.steps),
            txns: std::mem::take(&mut self.batch_txns),
            replies: std::mem::replace(
                &mut self.replies,
                (0..core_count).map(|_| Vec::new()).collect(),
            ),
            session_changes: std::mem::take(&mut self.session_changes),
        });
    }

    /// Hands the records appended since the last call to the log writer.
    fn flush_records(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.records);
        let last = records.last().map_or(0, |record| record.zxid);
        match &self.log {
            Some(log) => {
                if log.appends.send(WriterInput::Append(records)).is_err() {
                    self.log_failed("the log writer stopped".into());
                }
            }
            // In memory (tests): every record is durable at once.
            None if self.ensemble.is_some() => self.quorum_durable(last),
            None => self.durable_zxid = self.tree.zxid,
        }
    }

    /// Publishes every sealed batch that is durable, in order.
    fn release(&mut self) {
        while self
            .waiting
            .front()
            .is_some_and(|sealed| sealed.last_zxid <= self.durable_zxid)
        {
            if let Some(sealed) = self.waiting.pop_front() {
                self.publish(sealed);
            }
        }
        self.maybe_snapshot();
    }

    /// Shutdown: everything sealed is flushed and published before the pipeline stops, so no
    /// client is left waiting on a write that is in fact durable.
    fn finish(&mut self) {
        self.seal();
        if let Some(ensemble) = self.ensemble.take() {
            // What is not committed now is not answered; the clients see the connection close.
            if let Some(log) = self.log.take() {
                let _ = log.appends.send(WriterInput::Shutdown);
            }
            ensemble.shutdown();
            self.release();
            return;
        }
        let Some(log) = self.log.take() else {
            self.release();
            return;
        };
        let _ = log.appends.send(WriterInput::Shutdown);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .waiting
            .back()
            .is_some_and(|sealed| sealed.last_zxid > self.durable_zxid)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.events.recv_timeout(left) {
                Ok(WriterEvent::Durable { zxid, .. }) => {
                    self.durable_zxid = self.durable_zxid.max(zxid)
                }
                Ok(WriterEvent::Failed { reason }) => self.log_failed(reason),
                Err(_) => break,
            }
        }
        self.release();
    }

    /// Publishes the transactions applied since the last step as one version.
    fn cut_step(&mut self) {
        if !std::mem::replace(&mut self.uncut, false) {
            return;
        }
        self.steps.push(Step {
            version: Arc::new(self.tree.clone()),
            triggers: std::mem::take(&mut self.triggers),
            trigger_ends: std::mem::take(&mut self.trigger_ends),
        });
    }

    /// Forgets the transactions applied since the last step (a leader stepping down).
    pub(super) fn drop_uncut(&mut self) {
        self.uncut = false;
        self.triggers.clear();
        self.trigger_ends.clear();
        self.batch_txns = 0;
    }

    fn reply(&mut self, conn: ConnRef, reply: CoreReply) {
        // A reply follows the transactions applied so far in this batch.
        let after_steps = self.batch_txns as usize;
        if let Some(queue) = self.replies.get_mut(conn.core) {
            queue.push((after_steps, reply));
        }
    }

    /// Applies a validated transaction at the next zxid and logs it; in an ensemble, proposes
    /// it (the leader's zxid). Err: the ensemble did not take it (not leading; a full window
    /// is kept away by the admission queue, which callers consult first); nothing was applied.
    fn commit(&mut self, txn: &Txn) -> Result<(i64, TxnResult), RejectReason> {
        if self.ensemble.is_some() {
            return self.propose(txn, None);
        }
        let zxid = self.tree.zxid + 1;
        let time_ms = wall_clock_ms();
        let result = self.apply_txn(zxid, time_ms, txn);
        self.records.push(LogRecord {
            zxid,
            time_ms,
            txn: txn.clone(),
        });
        Ok((zxid, result))
    }

    /// Applies a transaction to the tree at `zxid` as one published step. A transaction that
    /// does not apply is a broken invariant of prep (or, in an ensemble, a diverged replica):
    /// the server stops rather than serve a wrong tree.
    fn apply_txn(&mut self, zxid: i64, time_ms: i64, txn: &Txn) -> TxnResult {
        match self.tree.apply(zxid, time_ms, txn, &mut self.triggers) {
            Ok(result) => {
                if self.snapshots.is_some() {
                    self.recent_records.push_back(LogRecord {
                        zxid,
                        time_ms,
                        txn: txn.clone(),
                    });
                }
                match txn {
                    Txn::CreateSession {
                        session_id,
                        timeout_ms,
                    } => self.session_changes.push((*session_id, Some(*timeout_ms))),
                    Txn::CloseSession { session_id, .. } => {
                        self.session_changes.push((*session_id, None))
                    }
                    _ => {}
                }
                self.uncut = true;
                self.batch_txns += 1;
                self.trigger_ends.push(self.triggers.len());
                result
            }
            Err(broken) => {
                error!("{broken}; stopping the server: prep and apply disagree on {txn:?}");
                std::process::exit(70);
            }
        }
    }

    fn handle(&mut self, message: PipelineInput) -> bool {
        match message {
            PipelineInput::Connect {
                conn,
                request,
                read_only_flag,
            } => self.connect(conn, request, read_only_flag),
            PipelineInput::Write {
                conn,
                session_id,
                xid,
                request,
                auth,
                fenced,
            } => self.write(conn, session_id, xid, request, &auth, fenced),
            PipelineInput::Touch { sessions } => {
                let now = self.monotonic_ms();
                for session in &sessions {
                    self.sessions.touch(*session, now);
                }
                self.quorum_touch(sessions);
            }
            PipelineInput::Closed { conn, session_id } => self.sessions.detach(session_id, conn),
            PipelineInput::Snapshot => self.snapshot_requested = true,
            PipelineInput::Shutdown => return true,
        }
        false
    }

    fn connect(&mut self, conn: ConnRef, request: ConnectRequest, read_only_flag: bool) {
        let now = self.monotonic_ms();
        let timeout_ms = self.config.negotiate_timeout(request.time_out);
        if let Some(leading) = self.quorum_role_for_clients() {
            if !leading {
                self.learner_connect(conn, request, read_only_flag, timeout_ms);
                return;
            }
        } else if self.ensemble.is_some() {
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "not serving: this server has no quorum",
                },
            );
            return;
        }
        if request.session_id == 0 {
            if self.must_hold() {
                self.hold(admission::Held::Client(PipelineInput::Connect {
                    conn,
                    request,
                    read_only_flag,
                }));
                return;
            }
            let session_id = self.sessions.next_id();
            let created = self.commit(&Txn::CreateSession {
                session_id,
                timeout_ms,
            });
            if created.is_err() {
                self.reply(
                    conn,
                    CoreReply::Close {
                        conn_id: conn.conn_id,
                        reason: "the ensemble did not take the new session",
                    },
                );
                return;
            }
            self.sessions.add(session_id, timeout_ms, Some(conn), now);
            self.claim_session(session_id);
            info!("established session {session_id:#x} with negotiated timeout {timeout_ms} ms");
            let reply = self.connected_reply(conn, session_id, timeout_ms, read_only_flag);
            self.reply(conn, reply);
            return;
        }
        if let Some(session_timeout) =
            self.resume_here(conn, &request, now, timeout_ms, read_only_flag)
        {
            self.claim_session(request.session_id);
            let reply =
                self.connected_reply(conn, request.session_id, session_timeout, read_only_flag);
            self.reply(conn, reply);
        }
    }

    /// Takes a session over on this server's connection `conn` after checking its password
    /// (ZooKeeper's reopenSession); its previous connection here is closed either way. Returns
    /// the session's timeout, or None after answering the client with a refusal.
    fn resume_here(
        &mut self,
        conn: ConnRef,
        request: &ConnectRequest,
        now: i64,
        timeout_ms: i32,
        read_only_flag: bool,
    ) -> Option<i32> {
        let (previous, resumed) =
            self.sessions
                .resume(request.session_id, &request.passwd, conn, now);
        if let Some(previous) = previous {
            self.reply(
                previous,
                CoreReply::Close {
                    conn_id: previous.conn_id,
                    reason: "session reconnected on another connection",
                },
            );
        }
        match resumed {
            Ok(()) => Some(
                self.sessions
                    .get(request.session_id)
                    .map_or(timeout_ms, |session| session.timeout_ms),
            ),
            Err(reason) => {
                info!(
                    "refusing to resume session {:#x}: {reason:?}",
                    request.session_id
                );
                let reply = refused_reply(conn, read_only_flag);
                self.reply(conn, reply);
                None
            }
        }
    }

    /// The ConnectResponse for an established or resumed session.
    fn connected_reply(
        &self,
        conn: ConnRef,
        session_id: i64,
        timeout_ms: i32,
        read_only_flag: bool,
    ) -> CoreReply {
        let frame = connect_reply_frame(
            &ConnectResponse {
                protocol_version: 0,
                time_out: timeout_ms,
                session_id,
                passwd: self.sessions.password_for(session_id).to_vec(),
                read_only: false,
            },
            read_only_flag,
        );
        CoreReply::Connected {
            conn_id: conn.conn_id,
            session_id,
            timeout_ms,
            frame,
        }
    }

    fn write(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: &[Id],
        fenced: bool,
    ) {
        let now = self.monotonic_ms();
        match self.quorum_role_for_clients() {
            Some(false) => {
                self.learner_write(conn, session_id, xid, request, auth, fenced);
                return;
            }
            None if self.ensemble.is_some() => {
                self.reply(
                    conn,
                    CoreReply::Close {
                        conn_id: conn.conn_id,
                        reason: "not serving: this server has no quorum",
                    },
                );
                return;
            }
            _ => {}
        }
        // A leader whose window is full holds the request back (unprepped, in order), and
        // takes it up as commits free the window: overload is never an error.
        if self.must_hold() {
            self.hold(admission::Held::Client(PipelineInput::Write {
                conn,
                session_id,
                xid,
                request,
                auth: Arc::new(auth.to_vec()),
                fenced,
            }));
            return;
        }
        // Answers that take no transaction: an expired session, and sync (ordered behind
        // every write before it, which is all a standalone server's sync has to do).
        let immediate = if !self.sessions.touch(session_id, now) {
            Some(header_frame(xid, self.tree.zxid, ErrorCode::SessionExpired))
        } else if let Request::Sync(sync) = &request {
            let response = SyncResponse {
                path: sync.path.clone(),
            };
            Some(record_frame(xid, self.tree.zxid, &response))
        } else {
            None
        };
        if let Some(frame) = immediate {
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
        let context = PrepContext {
            session_id,
            auth,
            extended_types_enabled: self.config.extended_types_enabled,
            skip_acl: self.config.skip_acl,
        };
        let txn = if self.session_moved(session_id, None) {
            Txn::Error {
                code: ErrorCode::SessionMoved,
            }
        } else {
            prep(&self.tree, &request, &context).unwrap_or_else(|code| Txn::Error { code })
        };
        let closing = matches!(txn, Txn::CloseSession { .. });
        if closing {
            self.sessions.set_closing(session_id);
        }
        if fenced {
            self.cut_step();
        }
        let Ok((zxid, result)) = self.commit(&txn) else {
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "the ensemble did not take the write",
                },
            );
            return;
        };
        if closing {
            self.sessions.remove(session_id);
            info!("closed session {session_id:#x} at the client's request");
        }
        let frame = write_reply(xid, zxid, &request, &result);
        self.reply(
            conn,
            CoreReply::Frame {
                conn_id: conn.conn_id,
                frame,
                close: closing,
            },
        );
    }

    /// Expires sessions and reaps empty containers and expired TTL nodes.
    fn housekeeping(&mut self) {
        self.purge_on_clock();
        self.release_memory_after_rebase();
        let now = self.monotonic_ms();
        // In an ensemble only the serving leader expires sessions and reaps nodes.
        let owner_of_sessions =
            self.ensemble.is_none() || self.quorum_role_for_clients() == Some(true);
        let expired = if owner_of_sessions {
            self.sessions.expire(now)
        } else {
            Vec::new()
        };
        for session_id in expired {
            if self.must_hold() {
                self.hold(admission::Held::Expiry { session_id });
            } else {
                self.expire_session(session_id);
            }
        }
        if now >= self.next_session_dump_ms {
            self.next_session_dump_ms = now + 1000;
            // Deadlines are kept on the monotonic clock; dump shows wall-clock times.
            let offset = wall_clock_ms() - now;
            let sets = self
                .sessions
                .sets()
                .into_iter()
                .map(|(deadline, ids)| (deadline + offset, ids))
                .collect();
            self.stats.set_session_sets(sets);
        }
        if now >= self.next_container_check_ms {
            self.next_container_check_ms =
                now + self.config.container_check_interval_ms.max(1) as i64;
            if owner_of_sessions {
                self.reap_containers();
            }
        }
    }

    /// Proposes the closeSession of a session whose timeout passed (already marked closing),
    /// with the ephemerals it owns at this point, and closes its connection here.
    fn expire_session(&mut self, session_id: i64) {
        // An expiry that waited in the admission queue behind the session's own closeSession
        // finds the session gone: nothing is left to close.
        if self.sessions.get(session_id).is_none() {
            return;
        }
        let owner = self
            .sessions
            .get(session_id)
            .and_then(|session| session.owner);
        let ephemerals = self.tree.ephemerals_of(session_id);
        info!(
            "expiring session {session_id:#x} ({} ephemerals)",
            ephemerals.len()
        );
        if self
            .commit(&Txn::CloseSession {
                session_id,
                ephemerals,
            })
            .is_err()
        {
            // Not leading any more (the admission queue keeps Busy away): the session lives
            // on, for whoever leads next to expire.
            warn!("the ensemble did not take the expiry of session {session_id:#x}");
            let now = self.monotonic_ms();
            self.sessions.reopen(session_id, now);
            return;
        }
        self.sessions.remove(session_id);
        if let Some(owner) = owner {
            self.reply(
                owner,
                CoreReply::Close {
                    conn_id: owner.conn_id,
                    reason: "session expired",
                },
            );
        }
    }

    /// ContainerManager: a container whose last child is gone (cversion > 0, no children),
    /// or a childless TTL node not modified within its TTL, is deleted by a deleteContainer
    /// request of the server's own.
    fn reap_containers(&mut self) {
        let now_wall = wall_clock_ms();
        let per_run = ((self.config.container_max_per_minute as u64)
            * self.config.container_check_interval_ms
            / 60_000)
            .max(1) as usize;
        let mut candidates: Vec<String> = Vec::new();
        for path in self.tree.containers() {
            if let Some(node) = self.tree.get(path) {
                if node.child_count == 0 && node.stat.cversion > 0 {
                    candidates.push(path.to_string());
                }
            }
        }
        for path in self.tree.ttl_nodes() {
            if let Some(node) = self.tree.get(path) {
                if let NodeKind::Ttl(ttl_ms) = node.kind() {
                    if node.child_count == 0 && ttl_ms != 0 && now_wall - node.stat.mtime > ttl_ms {
                        candidates.push(path.to_string());
                    }
                }
            }
        }
        let auth = server_auth();
        for path in candidates.into_iter().take(per_run) {
            // A full window skips this round; the next check finds the same candidates.
            if self.must_hold() {
                break;
            }
            let context = PrepContext {
                session_id: 0,
                auth: &auth,
                extended_types_enabled: true,
                skip_acl: true,
            };
            match prep(
                &self.tree,
                &Request::DeleteContainer(path.clone()),
                &context,
            ) {
                Ok(txn) => {
                    if self.commit(&txn).is_ok() {
                        info!("reaped container or expired TTL node {path}");
                    }
                }
                Err(code) => warn!("could not reap {path}: {code:?}"),
            }
        }
    }

    /// autopurge.purgeInterval: purges on its clock, on a background thread.
    fn purge_on_clock(&mut self) {
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        let (Some(every), Some(keep)) = (snapshots.purge_every, snapshots.retain) else {
            return;
        };
        let now = Instant::now();
        let due = *snapshots.next_purge.get_or_insert(now + every);
        // Not while a snapshot (which purges when it ends) is being written.
        if now < due || snapshots.running.load(Ordering::SeqCst) {
            return;
        }
        snapshots.next_purge = Some(now + every);
        let data_dir = snapshots.data_dir.clone();
        let log_dir = snapshots.log_dir.clone();
        let spawned = std::thread::Builder::new()
            .name("purge".into())
            .spawn(move || purge(&data_dir, &log_dir, keep));
        if let Err(error) = spawned {
            warn!("could not start the purge thread: {error}");
        }
    }

    /// Rebases the live tree on a snapshot the background thread finished: the new snapshot,
    /// mapped, becomes the base, and the transactions applied since its zxid are replayed on
    /// it. The heap then holds only what changed since the snapshot; the old versions go once
    /// the cores move to the next one (a step with the rebased version is published for that).
    fn rebase_on_written_snapshot(&mut self) {
        let Some(snapshots) = self.snapshots.as_ref() else {
            return;
        };
        let Ok((zxid, path)) = snapshots.written.1.try_recv() else {
            return;
        };
        if self.rebase_from != Some(zxid) {
            return;
        }
        self.rebase_from = None;
        let Some(path) = path else {
            return;
        };
        let started = Instant::now();
        let mapped = match crate::snapshot::MappedSnapshot::open(&path) {
            Ok(mapped) => mapped,
            Err(error) => {
                warn!("not rebasing on {}: {error}", path.display());
                return;
            }
        };
        let mut tree = TreeVersion::from_snapshot(Arc::new(mapped));
        let mut triggers = Vec::new();
        let mut replayed = 0usize;
        for record in &self.recent_records {
            if record.zxid <= zxid || record.zxid > self.tree.zxid {
                continue;
            }
            if let Err(broken) = tree.apply(record.zxid, record.time_ms, &record.txn, &mut triggers)
            {
                warn!(
                    "not rebasing on {}: replay failed: {broken}",
                    path.display()
                );
                return;
            }
            triggers.clear();
            replayed += 1;
        }
        if tree.zxid != self.tree.zxid || tree.node_count() != self.tree.node_count() {
            warn!(
                "not rebasing on {}: the replayed tree (zxid {:#x}, {} znodes) differs from the live one (zxid {:#x}, {} znodes)",
                path.display(),
                tree.zxid,
                tree.node_count(),
                self.tree.zxid,
                self.tree.node_count()
            );
            return;
        }
        info!(
            "live tree rebased on {} ({replayed} transactions replayed, {} ms)",
            path.display(),
            started.elapsed().as_millis()
        );
        // The rebased tree holds the same transactions: the next step is cut from it.
        self.tree = tree;
        self.uncut = true;
        if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots.release_memory_at = Some(Instant::now() + MEMORY_RELEASE_DELAY);
        }
    }

    /// Returns what the last rebase freed to the OS, once its delay passed.
    fn release_memory_after_rebase(&mut self) {
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        if snapshots
            .release_memory_at
            .is_some_and(|due| Instant::now() >= due)
        {
            snapshots.release_memory_at = None;
            crate::memory::release_memory();
        }
    }

    /// Forgets a rebase in flight (the tree was replaced by other means).
    pub(super) fn cancel_rebase(&mut self) {
        self.rebase_from = None;
        self.recent_records.clear();
    }

    /// Starts a background snapshot of the newest durable version when enough transactions
    /// have been made durable since the last one, or when asked. The version is immutable,
    /// so writes go on while it is written; the snapshot is never fuzzy.
    fn maybe_snapshot(&mut self) {
        let requested = self.snapshot_requested;
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        if !(requested || snapshots.since_last >= snapshots.threshold) {
            return;
        }
        // A request made while a snapshot is being written stays pending: that snapshot may
        // be of a version older than the request.
        if snapshots.running.swap(true, Ordering::SeqCst) {
            return;
        }
        self.snapshot_requested = false;
        snapshots.since_last = 0;
        let version = snapshots.durable_version.clone();
        let written = snapshots.written.0.clone();
        self.rebase_from = Some(version.zxid);
        let sessions: Vec<crate::snapshot::SessionRecord> = snapshots
            .durable_sessions
            .iter()
            .map(|(session_id, timeout_ms)| crate::snapshot::SessionRecord {
                session_id: *session_id,
                timeout_ms: *timeout_ms,
            })
            .collect();
        let data_dir = snapshots.data_dir.clone();
        let log_dir = snapshots.log_dir.clone();
        let retain = snapshots.retain;
        let running = snapshots.running.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                // The snapshot is background work: let the serving threads win the CPU.
                let tid = rustix::thread::gettid();
                if let Err(error) = rustix::process::setpriority_process(Some(tid), 10) {
                    warn!("could not lower the snapshot thread's priority: {error}");
                }
                let started = Instant::now();
                match crate::snapshot::write_snapshot(&data_dir, &version, &sessions) {
                    Ok(path) => {
                        info!(
                            "snapshot {} of {} znodes written in {} ms",
                            path.display(),
                            version.node_count(),
                            started.elapsed().as_millis()
                        );
                        let _ = written.send((version.zxid, Some(path)));
                    }
                    Err(error) => {
                        warn!("snapshot at zxid {:#x} failed: {error}", version.zxid);
                        let _ = written.send((version.zxid, None));
                    }
                }
                if let Some(keep) = retain {
                    purge(&data_dir, &log_dir, keep);
                }
                drop(version);
                crate::memory::release_memory();
                running.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.rebase_from = None;
            warn!("could not start the snapshot thread");
            if let Some(snapshots) = self.snapshots.as_ref() {
                snapshots.running.store(false, Ordering::SeqCst);
            }
        }
    }

    fn publish(&mut self, sealed: Sealed) {
        if let Some(snapshots) = self.snapshots.as_mut() {
            for (session_id, change) in &sealed.session_changes {
                match change {
                    Some(timeout_ms) => {
                        snapshots.durable_sessions.insert(*session_id, *timeout_ms);
                    }
                    None => {
                        snapshots.durable_sessions.remove(session_id);
                    }
                }
            }
            if let Some(step) = sealed.steps.last() {
                snapshots.durable_version = step.version.clone();
                snapshots.since_last += sealed.txns;
            }
        }
        if let Some(step) = sealed.steps.last() {
            let version = &step.version;
            self.stats
                .last_zxid
                .fetch_max(version.zxid, Ordering::Relaxed);
            self.stats
                .node_count
                .store(version.node_count(), Ordering::Relaxed);
            self.stats
                .ephemeral_count
                .store(version.ephemeral_node_count(), Ordering::Relaxed);
        }
        self.stats
            .session_count
            .store(self.sessions.len(), Ordering::Relaxed);
        if let Some(step) = sealed.steps.last() {
            self.published = step.version.clone();
            self.quorum_published(step.version.zxid);
            let keep_after = self.rebase_from.unwrap_or(step.version.zxid);
            while self
                .recent_records
                .front()
                .is_some_and(|record| record.zxid <= keep_after)
            {
                self.recent_records.pop_front();
            }
        }
        if let Some(step) = sealed.steps.last() {
            // Before any core can deliver this batch's events, so that a read on any core
            // after any client saw an event catches up to at least this version.
            self.stats
                .published_zxid
                .store(step.version.zxid, Ordering::SeqCst);
        }
        if let (Some(presence), Some(step)) = (&self.presence, sealed.steps.last()) {
            presence.publish(&step.version);
        }
        let steps = Arc::new(sealed.steps);
        for ((core, sender), replies) in self.cores.iter().enumerate().zip(sealed.replies) {
            if steps.is_empty() && replies.is_empty() {
                continue;
            }
            let idle = self
                .presence
                .as_ref()
                .is_some_and(|presence| presence.is_idle(core));
            if idle && replies.is_empty() {
                continue;
            }
            let batch = CoreBatch {
                steps: steps.clone(),
                replies,
            };
            if sender.try_send(batch).is_err() {
                warn!("core {core} is gone; its batch is dropped");
            }
        }
    }
}

/// A ConnectResponse frame; clients that sent no readOnly byte get none back.
fn connect_reply_frame(response: &ConnectResponse, read_only_flag: bool) -> Vec<u8> {
    let mut frame = connect_frame(response);
    if !read_only_flag {
        // Drop the readOnly byte and shorten the length prefix to match.
        frame.pop();
        let length = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&length.to_be_bytes());
    }
    frame
}

/// The answer to a refused connect: a zero session, after which the connection closes.
fn refused_reply(conn: ConnRef, read_only_flag: bool) -> CoreReply {
    let frame = connect_reply_frame(
        &ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        },
        read_only_flag,
    );
    CoreReply::Connected {
        conn_id: conn.conn_id,
        session_id: 0,
        timeout_ms: 0,
        frame,
    }
}

/// autopurge: keeps the newest `keep` snapshots and removes the log segments no retained
/// snapshot needs (ZooKeeper's PurgeTxnLog).
fn purge(data_dir: &std::path::Path, log_dir: &std::path::Path, keep: usize) {
    match crate::snapshot::retain(data_dir, keep) {
        Ok(Some(oldest)) => {
            let storage = crate::storage::DiskStorage;
            match crate::txnlog::recovery::purge_segments(&storage, log_dir, oldest) {
                Ok(removed) if removed > 0 => {
                    info!("purged {removed} log segments no retained snapshot needs")
                }
                Ok(_) => {}
                Err(error) => warn!("purging log segments failed: {error}"),
            }
        }
        Ok(None) => {}
        Err(error) => warn!("purging snapshots failed: {error}"),
    }
}

/// The reply to a write, from the request and what its transaction produced.
pub fn write_reply(xid: i32, zxid: i64, request: &Request, result: &TxnResult) -> Vec<u8> {
    match (request, result) {
        (_, TxnResult::Error(code)) => header_frame(xid, zxid, *code),
        (Request::Create(create), TxnResult::Created { path, stat }) => {
            if create.op == OpCode::Create {
                record_frame(xid, zxid, &CreateResponse { path: path.clone() })
            } else {
                record_frame(
                    xid,
                    zxid,
                    &Create2Response {
                        path: path.clone(),
                        stat: stat.clone(),
                    },
                )
            }
        }
        (Request::SetData(_), TxnResult::DataSet { stat }) => {
            record_frame(xid, zxid, &SetDataResponse { stat: stat.clone() })
        }
        (Request::SetAcl(_), TxnResult::AclSet { stat }) => {
            record_frame(xid, zxid, &SetAclResponse { stat: stat.clone() })
        }
        (Request::Multi(ops), TxnResult::Multi(results)) if ops.len() == results.len() => {
            let results: Vec<OpResult> = ops
                .iter()
                .zip(results)
                .map(|(op, result)| multi_result(op, result))
                .collect();
            reply_frame(xid, zxid, ErrorCode::Ok, |writer| {
                encode_multi(writer, &results)
            })
        }
        _ => header_frame(xid, zxid, ErrorCode::Ok),
    }
}

fn multi_result(op: &Request, result: &TxnResult) -> OpResult {
    match result {
        // Inside a multi, create2 answers like create (path only); createTTL and
        // createContainer answer with a stat (observed on ZooKeeper; FinalRequestProcessor).
        TxnResult::Created { path, stat } => match op {
            Request::Create(create) if matches!(create.op, OpCode::Create | OpCode::Create2) => {
                OpResult::Create { path: path.clone() }
            }
            _ => OpResult::Create2 {
                path: path.clone(),
                stat: stat.clone(),
            },
        },
        TxnResult::Deleted => OpResult::Delete,
        TxnResult::DataSet { stat } => OpResult::SetData { stat: stat.clone() },
        TxnResult::Checked => OpResult::Check,
        TxnResult::Error(code) => OpResult::Error(*code),
        _ => OpResult::Error(ErrorCode::SystemError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::request::Create;
    use crate::tree::acl;

    const CONN: ConnRef = ConnRef {
        core: 0,
        conn_id: 1,
    };

    fn create(path: &str) -> Request {
        Request::Create(Create {
            op: OpCode::Create,
            path: path.into(),
            data: None,
            acl: acl::open_acl(),
            flags: 0,
            ttl: -1,
        })
    }

    /// A pipeline in memory (every record durable at once) and its one core's queue.
    fn pipeline() -> (Pipeline, async_channel::Receiver<CoreBatch>, i64) {
        let (core, batches) = async_channel::unbounded();
        let mut pipeline = Pipeline::new(
            Arc::new(Config::default()),
            Arc::new(ServerStats::default()),
            PipelineStart {
                tree: TreeVersion::new(),
                sessions: Vec::new(),
                secret: crate::session::SessionSecrets::only([3; 16]),
                server_id: 0,
            },
            vec![core],
            None,
            None,
        );
        pipeline.handle(PipelineInput::Connect {
            conn: CONN,
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: false,
            },
            read_only_flag: true,
        });
        pipeline.seal();
        pipeline.release();
        let session_id = match batches.try_recv().map(|batch| batch.replies) {
            Ok(replies) => match replies.first() {
                Some((_, CoreReply::Connected { session_id, .. })) => *session_id,
                other => panic!("no connect answer: {other:?}"),
            },
            Err(error) => panic!("no batch: {error}"),
        };
        (pipeline, batches, session_id)
    }

    fn write(session_id: i64, xid: i32, path: &str, fenced: bool) -> PipelineInput {
        PipelineInput::Write {
            conn: CONN,
            session_id,
            xid,
            request: create(path),
            auth: Arc::new(Vec::new()),
            fenced,
        }
    }

    /// The xid of each reply and the version of the step it is delivered in (the step of the
    /// transaction it follows), in delivery order.
    fn replies_with_versions(batch: &CoreBatch) -> Vec<(i32, Arc<TreeVersion>)> {
        let step_of_txn: Vec<usize> = batch
            .steps
            .iter()
            .enumerate()
            .flat_map(|(index, step)| std::iter::repeat_n(index, step.trigger_ends.len()))
            .collect();
        batch
            .replies
            .iter()
            .filter_map(|(after, reply)| match reply {
                CoreReply::Frame { frame, .. } => {
                    let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    Some((xid, batch.steps[step_of_txn[after - 1]].version.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Writes that no read waits between share one tree version (one copy-on-write of the
    /// paths they touch, not one per write); the reply of each follows a version holding it.
    #[test]
    fn unfenced_writes_of_a_batch_share_one_version() {
        let (mut pipeline, batches, session_id) = pipeline();
        for (xid, path) in [(1, "/a"), (2, "/b"), (3, "/c")] {
            pipeline.handle(write(session_id, xid, path, false));
        }
        pipeline.seal();
        pipeline.release();
        let batch = batches.try_recv().expect("the batch");
        assert_eq!(batch.steps.len(), 1, "one version for the batch");
        for (xid, version) in replies_with_versions(&batch) {
            assert!(
                version.zxid > i64::from(xid),
                "reply {xid} before its write"
            );
        }
    }

    /// ZooKeeper runs a session's requests in order: a read queued between two writes of one
    /// connection (the core marks the second write `fenced`) must see the first write and not
    /// the second, so the second starts a new version.
    #[test]
    fn a_fenced_write_starts_a_new_version() {
        let (mut pipeline, batches, session_id) = pipeline();
        pipeline.handle(write(session_id, 1, "/a", false));
        pipeline.handle(write(session_id, 2, "/b", true));
        pipeline.seal();
        pipeline.release();
        let batch = batches.try_recv().expect("the batch");
        assert_eq!(batch.steps.len(), 2);
        let replies = replies_with_versions(&batch);
        let (xid, version) = &replies[0];
        assert_eq!(*xid, 1);
        assert!(version.get("/a").is_some(), "the read after /a sees /a");
        assert!(
            version.get("/b").is_none(),
            "and not the write sent after it"
        );
        assert!(replies[1].1.get("/b").is_some());
    }
}
