//! What the cores send to the pipeline.

use crate::jute::records::ConnectRequest;
use crate::jute::request::Request;
use crate::session::ConnRef;
use crate::tree::acl::AuthIds;

/// A consistent durable state: what a snapshot taken now would hold.
#[derive(Debug, Clone)]
pub struct DurableState {
    pub version: std::sync::Arc<crate::tree::TreeVersion>,
    /// Session id to timeout (ms).
    pub sessions: std::collections::BTreeMap<i64, i32>,
}

/// The AdminServer's `restore`: a tree and its sessions that replace the server's state.
#[derive(Debug)]
pub struct Restore {
    pub tree: crate::tree::TreeVersion,
    pub sessions: Vec<crate::snapshot::SessionRecord>,
    /// The zxid the restored state was given (see `Pipeline::restore`), or why it was not
    /// restored.
    pub reply: crossbeam_channel::Sender<Result<i64, String>>,
}

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
    /// The newest durable tree version and the sessions open at it (the AdminServer's
    /// `snapshot` command); None when this server keeps no snapshots.
    DurableState(crossbeam_channel::Sender<Option<DurableState>>),
    /// Replace the state (the AdminServer's `restore`).
    Restore(Box<Restore>),
    Shutdown,
}
