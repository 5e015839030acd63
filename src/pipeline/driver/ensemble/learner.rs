//! [io] The learner's side of the ensemble shell (follower or observer): client writes, syncs
//! and new sessions are forwarded to the leader and answered when their zxid commits here
//! (ZooKeeper's FollowerRequestProcessor and CommitProcessor).

use super::*;

impl Pipeline {
    /// Forwards a client's request to the leader; the answer comes when it commits.
    pub(super) fn forward(&mut self, request: Forwarded, pending: Pending) {
        let conn = pending.conn();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let Some(leader) = ensemble.leader_id() else {
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "not serving: no leader",
                },
            );
            return;
        };
        let id = ensemble.next_forward_id;
        ensemble.next_forward_id += 1;
        if ensemble.send(leader, Wire::Forward { id, request }) {
            ensemble.forwarded.insert(id, pending);
        } else {
            // Nothing will ever answer it: the client learns now (connection loss, as when
            // a learner's link to the leader fails) instead of timing out.
            self.reply(
                conn,
                CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "the request could not be forwarded to the leader",
                },
            );
        }
    }

    pub(in crate::pipeline::driver) fn learner_connect(
        &mut self,
        conn: ConnRef,
        request: ConnectRequest,
        read_only_flag: bool,
        timeout_ms: i32,
    ) {
        let now = self.monotonic_ms();
        if request.session_id == 0 {
            let session_id = self.sessions.next_id();
            self.forward(
                Forwarded::CreateSession {
                    session_id,
                    timeout_ms,
                },
                Pending::Connect {
                    conn,
                    read_only_flag,
                    session_id,
                    timeout_ms,
                },
            );
            return;
        }
        // The password is checked here (every server derives it the same way); the leader
        // then says whether the session is alive and makes this server its owner.
        if let Some(session_timeout) =
            self.resume_here(conn, &request, now, timeout_ms, read_only_flag)
        {
            self.forward(
                Forwarded::Revalidate {
                    session_id: request.session_id,
                    timeout_ms: session_timeout,
                },
                Pending::Revalidate {
                    conn,
                    read_only_flag,
                    session_id: request.session_id,
                },
            );
        }
    }

    /// A local session becomes global: its createSession goes to the leader ahead of the
    /// request that needs it, on the same ordered link.
    pub(in crate::pipeline::driver) fn forward_upgrade(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        timeout_ms: i32,
    ) {
        self.forward(
            Forwarded::CreateSession {
                session_id,
                timeout_ms,
            },
            Pending::Upgrade { conn, session_id },
        );
    }

    pub(in crate::pipeline::driver) fn learner_write(
        &mut self,
        conn: ConnRef,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: &[Id],
        fenced: bool,
    ) {
        let now = self.monotonic_ms();
        if !self.session_alive(session_id, now) {
            let frame = header_frame(xid, self.batch.zxid(), ErrorCode::SessionExpired);
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
        self.forward(
            Forwarded::Request {
                session_id,
                xid,
                request: request.clone(),
                auth: auth.to_vec(),
            },
            Pending::Request {
                conn,
                xid,
                request,
                fenced,
            },
        );
    }
}
