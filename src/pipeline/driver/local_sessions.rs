//! [io] Local sessions and the read-only server, as Apache ZooKeeper 3.9 keeps them
//! (LearnerSessionTracker / LeaderSessionTracker with `localSessionsEnabled`,
//! QuorumZooKeeperServer.checkUpgradeSession, ReadOnlyZooKeeperServer); the rules are the pure
//! functions of [`crate::pipeline::local`].
//!
//! - A **local session** lives in this server's `local_sessions` table only: made, touched,
//!   closed and expired here, with no transaction and nothing sent to the leader. Requests of
//!   it go the usual way (a learner forwards them; the leader accepts a session it does not
//!   know when its id names another server, as LeaderSessionTracker.checkSession does).
//!   Another server does not know it, so a client that moves finds its session expired.
//! - Its first create of an ephemeral **upgrades** it: it moves to the global table with the
//!   same id and timeout, and a createSession goes through the leader before the create
//!   (on the link to the leader, which keeps order); with `localSessionsUpgradingEnabled=false`
//!   the create fails with EphemeralOnLocalSession instead.
//! - A **read-only server** (an ensemble member that has looked for a leader for
//!   `read_only_grace_ms` with `readonlymode.enabled`) gives only local sessions, only to
//!   clients that ask for a read-only connection, answers with readOnly=true, and refuses
//!   every write with NotReadOnly; reads are served by the cores from the last committed
//!   tree. Local sessions die when the server stops serving (ZooKeeper's session tracker goes
//!   with its ZooKeeperServer), and every connection of a read-only server closes when it
//!   finds a leader.

use tracing::info;

use crate::jute::protocol::ErrorCode;
use crate::jute::records::{ConnectRequest, Id};
use crate::jute::request::Request;
use crate::jute::response::header_frame;
use crate::pipeline::local::{self, ReadOnlyConnect};
use crate::session::ConnRef;
use crate::tree::Txn;

use super::super::publish::CoreReply;
use super::super::reply::{refused_reply, write_reply};
use super::super::PipelineInput;
use super::{admission, Pipeline};

impl Pipeline {
    /// Whether new sessions are local here: an ensemble member with `localSessionsEnabled`
    /// (a standalone ZooKeeper has only global sessions).
    pub(super) fn local_sessions_on(&self) -> bool {
        self.ensemble.is_some() && self.config.local_sessions_enabled
    }

    /// A session this server may serve: one of its local sessions, or a global one.
    pub(super) fn session_alive(&mut self, session_id: i64, now: i64) -> bool {
        self.local_sessions.touch(session_id, now) || self.sessions.touch(session_id, now)
    }

    /// Answers a connect that local sessions or read-only mode decide; false when the usual
    /// (global) path is to take it.
    pub(super) fn local_connect(
        &mut self,
        conn: ConnRef,
        request: &ConnectRequest,
        read_only_flag: bool,
        timeout_ms: i32,
    ) -> bool {
        if self.read_only_serving() {
            let is_global = self.sessions.get(request.session_id).is_some();
            let decision = local::read_only_connect(
                request.read_only,
                request.session_id,
                is_global,
                self.config.local_sessions_enabled,
            );
            let reason = match decision {
                ReadOnlyConnect::NewLocal => {
                    self.new_local_session(conn, read_only_flag, timeout_ms);
                    return true;
                }
                ReadOnlyConnect::ResumeLocal => {
                    self.resume_local_session(conn, request, read_only_flag, timeout_ms);
                    return true;
                }
                ReadOnlyConnect::RefuseNotReadOnlyClient => {
                    "read-only server: refusing a session for a client that did not ask for \
                     a read-only one"
                }
                ReadOnlyConnect::RefuseGlobalSession => {
                    "read-only server: refusing the reconnection of a global session"
                }
                ReadOnlyConnect::RefuseNoLocalSessions => {
                    "read-only server: new sessions need localSessionsEnabled=true"
                }
            };
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason,
                },
            );
            return true;
        }
        if !self.local_sessions_on() || self.quorum_role_for_clients().is_none() {
            return false;
        }
        if request.session_id == 0 {
            self.new_local_session(conn, read_only_flag, timeout_ms);
            return true;
        }
        if self.local_sessions.get(request.session_id).is_some() {
            self.resume_local_session(conn, request, read_only_flag, timeout_ms);
            return true;
        }
        false
    }

    fn new_local_session(&mut self, conn: ConnRef, read_only_flag: bool, timeout_ms: i32) {
        let now = self.monotonic_ms();
        let session_id = self.sessions.next_id();
        self.local_sessions
            .add(session_id, timeout_ms, Some(conn), now);
        info!(
            "established local session {session_id:#x} with negotiated timeout {timeout_ms} ms{}",
            if self.read_only_serving() {
                " (read-only)"
            } else {
                ""
            }
        );
        let reply = self.connected_reply(conn, session_id, timeout_ms, read_only_flag);
        self.reply(conn, reply);
    }

    fn resume_local_session(
        &mut self,
        conn: ConnRef,
        request: &ConnectRequest,
        read_only_flag: bool,
        timeout_ms: i32,
    ) {
        let now = self.monotonic_ms();
        let (previous, resumed) =
            self.local_sessions
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
            Ok(()) => {
                let timeout_ms = self
                    .local_sessions
                    .get(request.session_id)
                    .map_or(timeout_ms, |session| session.timeout_ms);
                let reply =
                    self.connected_reply(conn, request.session_id, timeout_ms, read_only_flag);
                self.reply(conn, reply);
            }
            Err(reason) => {
                info!(
                    "refusing to resume local session {:#x}: {reason:?}",
                    request.session_id
                );
                let reply = refused_reply(conn, read_only_flag);
                self.reply(conn, reply);
            }
        }
    }

    /// A write of a local session while serving with a quorum. Returns the request when it is
    /// to go the usual way (the session was upgraded first, or needs nothing); None once it
    /// is answered or held.
    pub(super) fn local_write(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: &[Id],
        fenced: bool,
    ) -> Option<Request> {
        let now = self.monotonic_ms();
        let answer = |pipeline: &mut Pipeline, code: ErrorCode, close: bool| {
            let frame = header_frame(xid, pipeline.batch.zxid(), code);
            pipeline.reply(
                conn,
                CoreReply::Frame {
                    conn_id: conn.conn_id,
                    frame,
                    close,
                },
            );
        };
        if !self.local_sessions.touch(session_id, now) {
            answer(self, ErrorCode::SessionExpired, false);
            return None;
        }
        if matches!(request, Request::CloseSession) {
            self.local_sessions.remove(session_id);
            info!("closed local session {session_id:#x} at the client's request");
            answer(self, ErrorCode::Ok, true);
            return None;
        }
        if !local::creates_ephemeral(&request) {
            return Some(request);
        }
        if !self.config.local_sessions_upgrading_enabled {
            let result = local::ephemeral_on_local_session(&request);
            let frame = write_reply(xid, self.batch.zxid(), &request, &result);
            self.reply(
                conn,
                CoreReply::Frame {
                    conn_id: conn.conn_id,
                    frame,
                    close: false,
                },
            );
            return None;
        }
        let leading = self.quorum_role_for_clients() == Some(true);
        // The leader's createSession is a proposal like any other: a full window holds the
        // write back whole, to be upgraded when it is taken up again.
        if leading && self.must_hold() {
            self.hold(admission::Held::Client(PipelineInput::Write {
                conn,
                session_id,
                xid,
                request,
                auth: std::sync::Arc::new(auth.to_vec()),
                fenced,
            }));
            return None;
        }
        let Some(session) = self.local_sessions.remove(session_id) else {
            return Some(request);
        };
        let timeout_ms = session.timeout_ms;
        info!("upgrading local session {session_id:#x} to a global session");
        // The session is global from now on for this server's requests, before its
        // createSession commits (ZooKeeper's "upgrading" state): the create that follows is
        // forwarded or proposed after it, in order.
        self.sessions.add(session_id, timeout_ms, Some(conn), now);
        if leading {
            let created = self.commit(&Txn::CreateSession {
                session_id,
                timeout_ms,
            });
            if created.is_err() {
                self.sessions.remove(session_id);
                self.reply(
                    conn,
                    CoreReply::Close {
                        conn_id: conn.conn_id,
                        reason: "the ensemble did not take the session's upgrade",
                    },
                );
                return None;
            }
            self.claim_session(session_id);
        } else {
            self.forward_upgrade(conn, session_id, timeout_ms);
        }
        Some(request)
    }

    /// A write while serving read-only: NotReadOnly, except a local session's closeSession
    /// (ReadOnlyRequestProcessor).
    pub(super) fn read_only_write(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: &Request,
    ) {
        let now = self.monotonic_ms();
        let (code, close) = if !self.local_sessions.touch(session_id, now) {
            (ErrorCode::SessionExpired, false)
        } else if local::refused_when_read_only(request) {
            (ErrorCode::NotReadOnly, false)
        } else {
            self.local_sessions.remove(session_id);
            info!("closed local session {session_id:#x} at the client's request");
            (ErrorCode::Ok, true)
        };
        let frame = header_frame(xid, self.batch.zxid(), code);
        self.reply(
            conn,
            CoreReply::Frame {
                conn_id: conn.conn_id,
                frame,
                close,
            },
        );
    }

    /// Expires this server's local sessions whose timeout passed: removed, and their
    /// connections closed (they own no ephemerals, so no transaction is needed).
    pub(super) fn expire_local_sessions(&mut self) {
        let now = self.monotonic_ms();
        for session_id in self.local_sessions.expire(now) {
            let Some(session) = self.local_sessions.remove(session_id) else {
                continue;
            };
            info!("expiring local session {session_id:#x}");
            if let Some(owner) = session.owner {
                self.reply(
                    owner,
                    CoreReply::Close {
                        conn_id: owner.conn_id,
                        reason: "session expired",
                    },
                );
            }
        }
    }

    /// Forgets every local session: the server stopped serving (or its read-only server
    /// ended), and the connections they had are closed with it.
    pub(super) fn drop_local_sessions(&mut self) {
        if self.local_sessions.is_empty() {
            return;
        }
        info!(
            "dropping {} local sessions: this server stopped serving",
            self.local_sessions.len()
        );
        self.local_sessions.clear();
    }
}
