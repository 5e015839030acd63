//! [io] The pipeline thread: the shells around the pure stages.
//!
//! The thread takes every write, connect and session message the cores send, in batches,
//! and runs each through the stages: prep ([`super::prep`]: validate against the pending
//! tree, ACLs, the transaction), apply ([`super::apply`]: the pending tree, cut into steps,
//! with the replies that follow them) and publish ([`super::publish`]: the per-core batches).
//! What differs between roles is when a sealed batch may be published and where its zxids
//! come from, and that lives in the shells, the way ZooKeeper's roles are processor chains:
//!
//! - standalone ([`standalone`]): zxids are local; a batch is published once the log writer
//!   reports it durable (PrepRequestProcessor → SyncRequestProcessor → FinalRequestProcessor);
//! - ensemble ([`ensemble`]): the leader's zxids come from ZAB, a batch is published when ZAB
//!   commits it, and learners forward writes (ProposalRequestProcessor / CommitProcessor,
//!   FollowerRequestProcessor);
//! - both: sessions ([`sessions`]), snapshots and rebases ([`snapshots`]), and the leader's
//!   admission queue ([`admission`]).
//!
//! One thread, no stage thread: several batches are in flight at once (prep of batch n+1
//! while batch n is being fsynced and acknowledged), each sealed batch waiting in order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::jute::protocol::ErrorCode;
use crate::jute::records::*;
use crate::jute::request::Request;
use crate::jute::response::{header_frame, record_frame};
use crate::metrics::ServerStats;
use crate::quorum::Wire;
use crate::session::{ConnRef, SessionSecrets, SessionTable};
use crate::tree::{TreeVersion, Txn, TxnResult};
use crate::txnlog::format::LogRecord;
use crate::txnlog::writer::{AfterDurable, WriterEvent, WriterInput};
use crate::zab::{RejectReason, ServerId};

use super::apply::Batch;
use super::prep::{prep_noting, PrepContext};
use super::publish::{fan_out, CoreBatch, CorePresence, CoreReply, Sealed, Step};
use super::reply::write_reply;
use super::PipelineInput;

mod admission;
mod ensemble;
mod local_sessions;
mod sessions;
mod snapshots;
mod standalone;
pub use crate::quorum::{QuorumDisk, QuorumLinks};
pub use ensemble::QuorumStart;
pub use snapshots::Snapshots;

/// The pipeline's end of the log writer's channels.
pub struct LogChannels {
    pub appends: Sender<WriterInput>,
    pub events: Receiver<WriterEvent>,
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

/// The client port's listeners, as the pipeline can move them: a reconfig that changes this
/// member's client address moves them (QuorumPeer.processReconfig calls
/// ServerCnxnFactory.reconfigure). The runtime, which owns the listeners, implements it; the
/// pipeline only decides when.
pub trait ClientListeners: Send {
    /// Every core listens on `to` instead of `from`, or (on an error) every core keeps
    /// listening on `from`. Client connections already accepted stay up either way.
    fn move_to(&self, from: std::net::SocketAddr, to: std::net::SocketAddr) -> std::io::Result<()>;
}

/// How often a standalone pipeline with nothing else to do looks at the log writer's reports
/// while batches are out: the writer publishes them itself, so the reports only feed
/// snapshots and statistics, and need not wake the pipeline for every sync.
const DURABLE_REPORT_POLL: Duration = Duration::from_millis(10);

/// A sealed batch waiting to be durable (standalone) or committed (ensemble): the pipeline's
/// own record of it, and what the cores get of it.
struct Waiting {
    last_zxid: i64,
    /// The version of its last step (None when it cut none).
    newest: Option<Arc<TreeVersion>>,
    txns: u64,
    session_changes: Vec<(i64, Option<i32>)>,
    /// None once handed to the log writer, which delivers it itself after the sync.
    delivery: Option<Delivery>,
}

/// What the cores get of a published batch, with the shared state they read before it: the
/// publish stage's output and everything needed to send it, from whichever thread publishes
/// (the pipeline, or the standalone server's log writer right after its sync).
struct Delivery {
    steps: Vec<Step>,
    replies: Vec<Vec<(usize, CoreReply)>>,
    stats: Arc<ServerStats>,
    presence: Option<Arc<CorePresence>>,
    cores: Arc<[CoreSender]>,
}

impl Delivery {
    fn deliver(self) {
        if let Some(step) = self.steps.last() {
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
            // Before any core can deliver this batch's events, so that a read on any core
            // after any client saw an event catches up to at least this version.
            self.stats
                .published_zxid
                .store(version.zxid, Ordering::SeqCst);
            if let Some(presence) = &self.presence {
                presence.publish(version);
            }
        }
        for (core, batch) in fan_out(self.steps, self.replies, self.presence.as_deref()) {
            let sent = self
                .cores
                .get(core)
                .is_some_and(|sender| sender.try_send(batch).is_ok());
            if !sent {
                warn!("core {core} is gone; its batch is dropped");
            }
        }
    }
}

pub struct Pipeline {
    config: Arc<Config>,
    stats: Arc<ServerStats>,
    /// The apply stage: the pending tree and the batch being built on it.
    batch: Batch,
    sessions: SessionTable,
    /// This server's local sessions (see `sessions.rs`): ensemble members only.
    local_sessions: SessionTable,
    cores: Arc<[CoreSender]>,
    /// Records of the batch being built, for the log writer.
    records: Vec<LogRecord>,
    /// Sealed batches waiting to be durable (standalone) or committed (ensemble), oldest first.
    waiting: VecDeque<Waiting>,
    /// Every record up to this zxid is durable.
    durable_zxid: i64,
    log: Option<LogChannels>,
    snapshots: Option<Snapshots>,
    /// A snapshot asked for (SIGUSR1), with the zxid it must cover: the newest transaction
    /// when it was asked, which a client may already have had acknowledged (the log writer
    /// answers clients before it reports the sync to this thread).
    snapshot_requested: Option<i64>,
    /// `DurableState` requests and the zxid each must cover (see `handle`).
    durable_state_asked: Vec<(
        i64,
        crossbeam_channel::Sender<Option<crate::pipeline::DurableState>>,
    )>,
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
    /// Set by the runtime: how a reconfig moves the client port (None in tests: it stays).
    client_listeners: Option<Box<dyn ClientListeners>>,
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
        // Local sessions (an ensemble's `localSessionsEnabled`, and every session a read-only
        // server gives) are kept apart: no transaction makes or ends them, and no other server
        // knows them. Their passwords derive from the same secret; their ids come from the
        // global table's counter, so the two never overlap.
        let local_sessions = SessionTable::new(
            config.tick_time_ms as i64,
            server_id,
            wall_clock_ms(),
            secret.clone(),
        );
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
            snapshots,
            snapshot_requested: None,
            durable_state_asked: Vec::new(),
            next_container_check_ms: config.container_check_interval_ms as i64,
            next_session_dump_ms: 0,
            published: Arc::new(tree.clone()),
            recent_records: VecDeque::new(),
            rebase_from: None,
            ensemble: None,
            admissions: admission::Admissions::default(),
            presence: None,
            client_listeners: None,
            config,
            stats,
            batch: Batch::new(tree, core_count),
            sessions,
            local_sessions,
            cores: cores.into(),
            started: Instant::now(),
        }
    }

    /// Cores without connections are sent no batch (see `CorePresence`).
    pub fn with_presence(mut self, presence: Arc<CorePresence>) -> Pipeline {
        self.presence = Some(presence);
        self
    }

    /// A reconfig that changes this member's client address moves `listeners`.
    pub fn with_client_listeners(mut self, listeners: Box<dyn ClientListeners>) -> Pipeline {
        self.client_listeners = Some(listeners);
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
            if let Some(deadline) = self.local_sessions.next_deadline_ms() {
                wake_ms = wake_ms.min(deadline);
            }
            if let Some(ensemble) = &self.ensemble {
                wake_ms = wake_ms.min(ensemble.next_timer_ms(now));
            }
            let mut wait = Duration::from_millis(wake_ms.saturating_sub(now).clamp(1, 1000) as u64);
            // The writer publishes standalone batches itself: its reports are read on the way
            // round (`drain_writer_events`), and at least every DURABLE_REPORT_POLL while
            // batches are out, instead of waking the pipeline for every sync.
            let events = if self.writer_publishes() {
                if !self.waiting.is_empty() {
                    wait = wait.min(DURABLE_REPORT_POLL);
                }
                &never
            } else {
                self.log.as_ref().map_or(&never, |log| &log.events)
            };
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
            shutdown |= self.take_in_reports_before_expiry(&input, &inbound);
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
        info!("pipeline stopped at zxid {:#x}", self.batch.zxid());
    }

    /// When a session deadline has passed, takes in everything already queued on the client
    /// and quorum channels (at most what is there now) before `housekeeping` decides expiries:
    /// they hold the cores' touch reports and the learners' pings of sessions that were heard.
    /// The select above takes one ready channel per round, so after a stall of this thread
    /// (a long rebase, a slow disk call) it could expire a session whose report was waiting
    /// in the other one. ZooKeeper touches a session on the thread that receives its packet
    /// (ZooKeeperServer.touch, LearnerHandler on a PING), independently of the request
    /// processors, so a received ping always counts; this keeps that rule. Returns whether a
    /// Shutdown was among the inputs taken.
    fn take_in_reports_before_expiry(
        &mut self,
        input: &Receiver<PipelineInput>,
        inbound: &Receiver<(ServerId, Wire)>,
    ) -> bool {
        let now = self.monotonic_ms();
        let due = |deadline: Option<i64>| deadline.is_some_and(|deadline| deadline <= now);
        if !due(self.sessions.next_deadline_ms()) && !due(self.local_sessions.next_deadline_ms()) {
            return false;
        }
        let mut shutdown = false;
        for _ in 0..inbound.len() {
            match inbound.try_recv() {
                Ok((from, message)) => self.on_quorum_message(from, message),
                Err(_) => break,
            }
        }
        for _ in 0..input.len() {
            match input.try_recv() {
                Ok(message) => shutdown |= self.handle(message),
                Err(_) => break,
            }
        }
        shutdown
    }

    fn on_writer_event(&mut self, event: WriterEvent) {
        match event {
            WriterEvent::Durable {
                zxid,
                records,
                sync_micros,
            } => {
                self.stats
                    .record_log_batch(records, sync_micros, self.config.fsync_warning_ms);
                if self.ensemble.is_some() {
                    // In an ensemble, durability is ZAB's input; what is released is what
                    // ZAB commits.
                    self.quorum_durable(zxid);
                } else {
                    self.standalone_durable(zxid);
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
    /// wait until they are durable (standalone) or committed (ensemble).
    fn seal(&mut self) {
        // In an ensemble a learner logs proposals that make no step until they commit.
        if !self.writer_publishes() {
            self.flush_records();
        }
        let Some(sealed) = self.batch.seal() else {
            // (Standalone records always come with a step; nothing is left behind anyway.)
            self.flush_records();
            return;
        };
        let Sealed {
            last_zxid,
            steps,
            txns,
            replies,
            session_changes,
        } = sealed;
        let newest = steps.last().map(|step| step.version.clone());
        let delivery = self.hand_to_writer(Delivery {
            steps,
            replies,
            stats: self.stats.clone(),
            presence: self.presence.clone(),
            cores: self.cores.clone(),
        });
        self.waiting.push_back(Waiting {
            last_zxid,
            newest,
            txns,
            session_changes,
            delivery,
        });
    }

    /// True when the log writer publishes the batches itself: a standalone server with a log.
    fn writer_publishes(&self) -> bool {
        self.ensemble.is_none() && self.log.is_some()
    }

    /// Standalone: the delivery goes to the log writer, to be sent to the cores right after
    /// the sync that makes it durable (one thread hand-off fewer per batch than through the
    /// pipeline). Every batch goes that way, so the cores get them in order. Returns the
    /// delivery when the pipeline publishes it itself.
    fn hand_to_writer(&mut self, delivery: Delivery) -> Option<Delivery> {
        if !self.writer_publishes() {
            return Some(delivery);
        }
        let records = std::mem::take(&mut self.records);
        let log = self.log.as_ref()?;
        let work = AfterDurable(Box::new(move || delivery.deliver()));
        if log
            .appends
            .send(WriterInput::AppendThen(records, work))
            .is_err()
        {
            self.log_failed("the log writer stopped".into());
        }
        None
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
            None => self.standalone_durable(last),
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
        self.answer_durable_state();
        self.maybe_snapshot();
    }

    /// Answers the `DurableState` requests whose transactions are all durable and published.
    fn answer_durable_state(&mut self) {
        if self.durable_state_asked.is_empty() {
            return;
        }
        let durable = self.durable_zxid;
        let published_all = self
            .waiting
            .front()
            .is_none_or(|sealed| sealed.last_zxid > durable);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.durable_state_asked)
            .into_iter()
            .partition(|(covering, _)| published_all && *covering <= durable);
        self.durable_state_asked = waiting;
        for (_, reply) in ready {
            let _ = reply.send(self.snapshots.as_ref().map(|s| s.durable_state()));
        }
    }

    /// Shutdown: everything sealed is flushed and published before the pipeline stops, so no
    /// client is left waiting on a write that is in fact durable.
    fn finish(&mut self) {
        self.seal();
        if self.ensemble.is_some() {
            self.quorum_finish();
        } else {
            self.standalone_finish();
        }
    }

    /// Queues a reply to `conn`, after the transactions applied so far in this batch.
    fn reply(&mut self, conn: ConnRef, reply: CoreReply) {
        self.batch.reply(conn.core, reply);
    }

    /// Applies a validated transaction at the next zxid and logs it; in an ensemble, proposes
    /// it (the leader's zxid). Err: the ensemble did not take it (not leading; a full window
    /// is kept away by the admission queue, which callers consult first); nothing was applied.
    fn commit(&mut self, txn: &Txn) -> Result<(i64, TxnResult), RejectReason> {
        if self.ensemble.is_some() {
            return self.propose(txn, None);
        }
        Ok(self.standalone_commit(txn))
    }

    /// Applies a transaction to the pending tree at `zxid` (the apply stage). A transaction
    /// that does not apply is a broken invariant of prep (or, in an ensemble, a diverged
    /// replica): the server stops rather than serve a wrong tree.
    fn apply_txn(&mut self, zxid: i64, time_ms: i64, txn: &Txn) -> TxnResult {
        match self.batch.apply(zxid, time_ms, txn) {
            Ok(result) => {
                if self.snapshots.is_some() {
                    self.recent_records.push_back(LogRecord {
                        zxid,
                        time_ms,
                        txn: txn.clone(),
                    });
                }
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
            PipelineInput::Touch { mut sessions } => {
                let now = self.monotonic_ms();
                // A local session's activity is this server's business only; the global ones
                // are reported to the leader.
                sessions.retain(|session| !self.local_sessions.touch(*session, now));
                for session in &sessions {
                    self.sessions.touch(*session, now);
                }
                self.quorum_touch(sessions);
            }
            PipelineInput::Closed { conn, session_id } => {
                self.sessions.detach(session_id, conn);
                self.local_sessions.detach(session_id, conn);
            }
            PipelineInput::Snapshot => {
                let covering = self.batch.zxid().max(self.snapshot_requested.unwrap_or(0));
                self.snapshot_requested = Some(covering);
            }
            PipelineInput::Restore(restore) => {
                let crate::pipeline::Restore {
                    tree,
                    sessions,
                    reply,
                } = *restore;
                let outcome = self.restore(tree, sessions);
                let _ = reply.send(outcome);
            }
            PipelineInput::DurableState(reply) => {
                // Standalone, the log writer answers clients before it reports the sync here:
                // the state waits until every transaction made so far is durable and
                // published, so it holds every write acknowledged before it was asked for.
                if self.ensemble.is_some() {
                    let _ = reply.send(self.snapshots.as_ref().map(|s| s.durable_state()));
                } else {
                    self.durable_state_asked.push((self.batch.zxid(), reply));
                    self.answer_durable_state();
                }
            }
            PipelineInput::Shutdown => return true,
        }
        false
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
        if self.read_only_serving() {
            self.read_only_write(conn, session_id, xid, &request);
            return;
        }
        let request = if self.local_sessions.get(session_id).is_some() {
            match self.local_write(conn, session_id, xid, request, auth, fenced) {
                Some(request) => request,
                None => return,
            }
        } else {
            request
        };
        self.write_global(conn, session_id, xid, request, auth, fenced, now)
    }

    /// A write of a global session (or of a local one that needs nothing of its own).
    #[allow(clippy::too_many_arguments)]
    fn write_global(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: &[Id],
        fenced: bool,
        now: i64,
    ) {
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
        let immediate = if !self.session_alive(session_id, now) {
            Some(header_frame(
                xid,
                self.batch.zxid(),
                ErrorCode::SessionExpired,
            ))
        } else if let Request::Sync(sync) = &request {
            let response = SyncResponse {
                path: sync.path.clone(),
            };
            Some(record_frame(xid, self.batch.zxid(), &response))
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
        let view = self.reconfig_view(&request);
        let context = PrepContext {
            session_id,
            auth,
            extended_types_enabled: self.config.extended_types_enabled,
            skip_acl: self.config.skip_acl,
            enforce_quota: self.config.enforce_quota,
            reconfig: self.reconfig_gate(view.as_ref()),
        };
        let local = self.local_sessions.get(session_id).is_some();
        let txn = if !local && self.session_moved(session_id, None) {
            Txn::Error {
                code: ErrorCode::SessionMoved,
            }
        } else {
            let mut notes = Vec::new();
            let prepared = prep_noting(self.batch.tree(), &request, &context, &mut notes);
            for note in notes {
                warn!("{note}");
            }
            prepared.unwrap_or_else(|code| Txn::Error { code })
        };
        let closing = matches!(txn, Txn::CloseSession { .. });
        if closing {
            self.sessions.set_closing(session_id);
        }
        if fenced {
            self.batch.cut_step();
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

    /// Publishes a durable (or committed) batch: the durable state a snapshot is taken from,
    /// the statistics, and, unless the log writer did already, the batch of every core.
    fn publish(&mut self, waiting: Waiting) {
        let Waiting {
            newest,
            txns,
            session_changes,
            delivery,
            ..
        } = waiting;
        if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots.published(&session_changes, newest.as_ref(), txns);
        }
        self.stats.session_count.store(
            self.sessions.len() + self.local_sessions.len(),
            Ordering::Relaxed,
        );
        if let Some(version) = &newest {
            self.published = version.clone();
            self.quorum_published(version.zxid);
            let keep_after = self.rebase_from.unwrap_or(version.zxid);
            while self
                .recent_records
                .front()
                .is_some_and(|record| record.zxid <= keep_after)
            {
                self.recent_records.pop_front();
            }
        }
        if let Some(delivery) = delivery {
            delivery.deliver();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::protocol::OpCode;
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
