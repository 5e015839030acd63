//! [io] Sessions as the pipeline keeps them: new and resumed sessions (ZooKeeper's
//! createSession and reopenSession), expiry, and the reaping of containers and TTL nodes, all
//! through transactions like any write.

use tracing::{info, warn};

use crate::jute::records::*;
use crate::jute::request::Request;
use crate::session::ConnRef;
use crate::tree::{NodeKind, Txn};

use super::super::prep::{prep, PrepContext, ReconfigGate};
use super::super::publish::CoreReply;
use super::super::reply::{connect_reply_frame, refused_reply};
use super::super::PipelineInput;
use super::{admission, server_auth, wall_clock_ms, Pipeline};

impl Pipeline {
    pub(super) fn connect(&mut self, conn: ConnRef, request: ConnectRequest, read_only_flag: bool) {
        let now = self.monotonic_ms();
        let timeout_ms = self.config.negotiate_timeout(request.time_out);
        if self.local_connect(conn, &request, read_only_flag, timeout_ms) {
            return;
        }
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
    pub(super) fn resume_here(
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
    pub(super) fn connected_reply(
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
                // ZooKeeperServer.finishSessionInit: `this instanceof ReadOnlyZooKeeperServer`.
                read_only: self.read_only_serving(),
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

    /// Expires sessions and reaps empty containers and expired TTL nodes.
    pub(super) fn housekeeping(&mut self) {
        self.purge_on_clock();
        self.release_memory_after_rebase();
        // Every member (and a read-only server) expires its own local sessions.
        self.expire_local_sessions();
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
    pub(super) fn expire_session(&mut self, session_id: i64) {
        // An expiry that waited in the admission queue behind the session's own closeSession
        // finds the session gone: nothing is left to close.
        if self.sessions.get(session_id).is_none() {
            return;
        }
        let owner = self
            .sessions
            .get(session_id)
            .and_then(|session| session.owner);
        let ephemerals = self.batch.tree().ephemerals_of(session_id);
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
        for path in self.batch.tree().containers() {
            if let Some(node) = self.batch.tree().get(path) {
                if node.child_count == 0 && node.stat.cversion > 0 {
                    candidates.push(path.to_string());
                }
            }
        }
        for path in self.batch.tree().ttl_nodes() {
            if let Some(node) = self.batch.tree().get(path) {
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
                // Deleting reaped nodes is never refused by a quota.
                enforce_quota: false,
                reconfig: ReconfigGate::Disabled,
            };
            match prep(
                self.batch.tree(),
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
}
