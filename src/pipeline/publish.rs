//! [pure] The publish stage: what a sealed batch becomes for the cores.
//!
//! Ordering: each core receives one [`CoreBatch`] per published batch, through one FIFO
//! channel, so a core fires the watch events of a version, then switches to it, then sends
//! the replies computed in it. A client therefore sees an event before any reply that shows
//! the change, and replies in the order its requests arrived. [`fan_out`] decides which core
//! gets what; the shells send it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::tree::{TreeVersion, WatchTrigger};

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

/// A batch whose replies and versions may be published once `last_zxid` is durable
/// (standalone) or committed (ensemble).
#[derive(Debug)]
pub struct Sealed {
    pub last_zxid: i64,
    pub steps: Vec<Step>,
    /// Transactions of the batch, over all its steps.
    pub txns: u64,
    /// Per core: (transactions of the batch before the reply, the reply).
    pub replies: Vec<Vec<(usize, CoreReply)>>,
    /// Sessions created (with their timeout) or closed by the batch, in order.
    pub session_changes: Vec<(i64, Option<i32>)>,
}

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

    pub fn publish(&self, version: &Arc<TreeVersion>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = version.clone();
        }
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// The newest published version, for readers outside the cores (the AdminServer and the
    /// Prometheus endpoint).
    pub fn latest(&self) -> Option<Arc<TreeVersion>> {
        self.latest.lock().ok().map(|latest| latest.clone())
    }

    /// Connections open on each core.
    pub fn connections_per_core(&self) -> Vec<usize> {
        self.connections
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .collect()
    }

    pub fn is_idle(&self, core: usize) -> bool {
        self.connections
            .get(core)
            .is_some_and(|counter| counter.load(Ordering::SeqCst) == 0)
    }
}

/// The batch each core is sent for `steps` and the cores' `replies`: every core that holds
/// connections gets the steps (its watches and reads need them) and its own replies; a core
/// without connections gets only replies (a close for a connection that just left).
pub fn fan_out(
    steps: Vec<Step>,
    replies: Vec<Vec<(usize, CoreReply)>>,
    presence: Option<&CorePresence>,
) -> Vec<(usize, CoreBatch)> {
    let steps = Arc::new(steps);
    let mut batches = Vec::with_capacity(replies.len());
    for (core, replies) in replies.into_iter().enumerate() {
        if steps.is_empty() && replies.is_empty() {
            continue;
        }
        let idle = presence.is_some_and(|presence| presence.is_idle(core));
        if idle && replies.is_empty() {
            continue;
        }
        batches.push((
            core,
            CoreBatch {
                steps: steps.clone(),
                replies,
            },
        ));
    }
    batches
}
