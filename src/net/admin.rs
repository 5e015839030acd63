//! [io] A core's side of the admin queries behind the four-letter words that need every core
//! (`cons`, `crst`, `wchs`/`wchc`/`wchp`, `mntr`'s watch count): it reads its own connections
//! and watch registry and answers on the query's channel.

use std::rc::Rc;

use crate::fourlw::{AdminAnswer, AdminKind, AdminQuery, ConnInfo};

use super::CoreState;

/// Answers admin queries for one core.
pub async fn admin_loop(state: Rc<CoreState>, queries: async_channel::Receiver<AdminQuery>) {
    while let Ok(query) = queries.recv().await {
        let mut answer = AdminAnswer::default();
        match query.kind {
            AdminKind::Connections => {
                for conn in state.conns.borrow().values() {
                    let stats = &conn.stats;
                    let count = stats.latency_count.get();
                    answer.connections.push(ConnInfo {
                        remote: conn.remote.to_string(),
                        outstanding: conn.outstanding(),
                        received: stats.received.get(),
                        sent: stats.sent.get(),
                        session_id: conn.session_id.get(),
                        last_op: stats.last_op.get(),
                        established_ms: stats.established_ms.get(),
                        timeout_ms: conn.timeout_ms.get(),
                        last_xid: stats.last_xid.get(),
                        last_zxid: stats.last_zxid.get(),
                        last_response_ms: stats.last_response_ms.get(),
                        last_latency_ms: stats.last_latency_ms.get(),
                        latency_min_ms: stats.latency_min_ms.get(),
                        latency_avg_ms: stats
                            .latency_total_ms
                            .get()
                            .checked_div(count)
                            .unwrap_or(0),
                        latency_max_ms: stats.latency_max_ms.get(),
                    });
                }
            }
            AdminKind::ResetConnections => {
                for conn in state.conns.borrow().values() {
                    let stats = &conn.stats;
                    stats.received.set(0);
                    stats.sent.set(0);
                    stats.latency_count.set(0);
                    stats.latency_total_ms.set(0);
                    stats.latency_min_ms.set(0);
                    stats.latency_max_ms.set(0);
                }
            }
            AdminKind::Watches => {
                let watches = state.watches.borrow();
                let conns = state.conns.borrow();
                for (conn_id, paths) in watches.data.paths_by_conn() {
                    let session = conns.get(&conn_id).map_or(0, |conn| conn.session_id.get());
                    for path in paths {
                        answer.watches.push((session, path.to_string()));
                    }
                }
                answer.watch_count = watches.data.watch_count() + watches.child.watch_count();
            }
        }
        let _ = query.reply.send(answer).await;
    }
}
