//! Four-letter words, answered in ZooKeeper's formats (FourLetterCommands and the
//! `*Command` classes) so existing monitoring keeps working. Commands that need every core's
//! connections or watches ask each core through its admin queue; nothing here is on the
//! request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use crate::net::CoreState;

/// The ZooKeeper release whose client-visible behaviour ringkeeper implements; clients read
/// it from `srvr`/`envi` to decide which features to use.
pub const ZOOKEEPER_COMPAT_VERSION: &str = "3.9.3";

pub fn version_string() -> String {
    format!(
        "{ZOOKEEPER_COMPAT_VERSION}-ringkeeper-{}, built on unknown",
        env!("CARGO_PKG_VERSION")
    )
}

/// What one core knows about one of its connections.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: String,
    pub outstanding: usize,
    pub received: u64,
    pub sent: u64,
    pub session_id: i64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub timeout_ms: i32,
    pub last_xid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency_min_ms: u64,
    pub latency_avg_ms: u64,
    pub latency_max_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum AdminKind {
    Connections,
    ResetConnections,
    Watches,
}

#[derive(Debug, Default)]
pub struct AdminAnswer {
    pub connections: Vec<ConnInfo>,
    /// (session id, watched path) pairs of data watches, which is what ZooKeeper's wchs, wchc
    /// and wchp report (DataTree.getWatches uses the data watch manager only).
    pub watches: Vec<(i64, String)>,
    /// Data plus child watches (mntr's zk_watch_count).
    pub watch_count: usize,
}

pub struct AdminQuery {
    pub kind: AdminKind,
    pub reply: async_channel::Sender<AdminAnswer>,
}

/// The admin queues of every core.
#[derive(Clone)]
pub struct AdminHub {
    pub cores: Vec<async_channel::Sender<AdminQuery>>,
}

impl AdminHub {
    async fn ask(&self, kind: AdminKind) -> Vec<AdminAnswer> {
        let mut answers = Vec::with_capacity(self.cores.len());
        for core in &self.cores {
            let (reply, receiver) = async_channel::bounded(1);
            if core.send(AdminQuery { kind, reply }).await.is_ok() {
                if let Ok(answer) = receiver.recv().await {
                    answers.push(answer);
                }
            }
        }
        answers
    }
}

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

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// A UTC time in the format of Java's `Date.toString()`, e.g. `Sun Nov 22 03:02:06 UTC 2026`.
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = epoch_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
        year
    )
}

fn directory_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn open_file_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count())
}

fn max_file_descriptors() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY-free: getrlimit only writes the struct we pass.
    if unsafe_free_getrlimit(&mut limit) {
        limit.rlim_cur
    } else {
        0
    }
}

fn unsafe_free_getrlimit(limit: &mut libc::rlimit) -> bool {
    match std::fs::read_to_string("/proc/self/limits") {
        Ok(text) => {
            for line in text.lines() {
                if line.starts_with("Max open files") {
                    let value = line.split_whitespace().nth(3).and_then(|v| v.parse().ok());
                    if let Some(value) = value {
                        limit.rlim_cur = value;
                        return true;
                    }
                }
            }
            false
        }
        Err(_) => false,
    }
}

fn server_summary(state: &CoreState, out: &mut String) {
    let stats = &state.stats;
    let (min, avg, max) = stats.latency();
    let _ = writeln!(out, "Latency min/avg/max: {min}/{avg:.1}/{max}");
    let _ = writeln!(
        out,
        "Received: {}",
        stats.packets_received.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "Sent: {}", stats.packets_sent.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "Connections: {}",
        stats.connections.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "Outstanding: {}",
        stats.outstanding_requests.load(Ordering::Relaxed).max(0)
    );
    let _ = writeln!(out, "Zxid: {:#x}", state.view().zxid);
    let _ = writeln!(out, "Mode: standalone");
    // ZooKeeper's DataTree keeps the root under two keys ("" and "/") and counts both.
    let _ = writeln!(out, "Node count: {}", state.view().node_count() + 1);
}

fn connection_line(info: &ConnInfo, detailed: bool) -> String {
    let mut line = format!(
        " /{}[1](queued={},recved={},sent={}",
        info.remote, info.outstanding, info.received, info.sent
    );
    if detailed && info.session_id != 0 {
        let _ = write!(
            line,
            ",sid={:#x},lop={},est={},to={},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            info.session_id,
            info.last_op,
            info.established_ms,
            info.timeout_ms,
            info.last_xid,
            info.last_zxid,
            info.last_response_ms,
            info.last_latency_ms,
            info.latency_min_ms,
            info.latency_avg_ms,
            info.latency_max_ms
        );
    }
    line.push(')');
    line
}

/// The whole answer to a four-letter word, sent before the connection closes.
pub async fn answer(state: &Rc<CoreState>, word: &str, _conn_id: u64) -> String {
    let config = &state.config;
    if !config.four_letter_word_enabled(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" => {
            let _ = writeln!(out, "Zookeeper version: {}", version_string());
            server_summary(state, &mut out);
        }
        "stat" => {
            let _ = writeln!(out, "Zookeeper version: {}", version_string());
            out.push_str("Clients:\n");
            for answer in state.admin.ask(AdminKind::Connections).await {
                for info in answer.connections {
                    out.push_str(&connection_line(&info, false));
                    out.push('\n');
                }
            }
            out.push('\n');
            server_summary(state, &mut out);
        }
        "cons" => {
            for answer in state.admin.ask(AdminKind::Connections).await {
                for info in answer.connections {
                    out.push_str(&connection_line(&info, true));
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        "crst" => {
            state.admin.ask(AdminKind::ResetConnections).await;
            out.push_str("Connection stats reset.\n");
        }
        "srst" => {
            state.stats.reset();
            out.push_str("Server stats reset.\n");
        }
        "conf" => {
            let _ = writeln!(out, "clientPort={}", config.client_address.port());
            let _ = writeln!(out, "secureClientPort=-1");
            let _ = writeln!(out, "dataDir={}", config.data_dir.display());
            let _ = writeln!(out, "dataDirSize={}", directory_size(&config.data_dir));
            let _ = writeln!(out, "dataLogDir={}", config.data_log_dir.display());
            let _ = writeln!(out, "dataLogSize={}", directory_size(&config.data_log_dir));
            let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
            let _ = writeln!(
                out,
                "maxClientCnxns={}",
                config.limits.connections_per_ip_max
            );
            let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout_ms);
            let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout_ms);
            let _ = writeln!(out, "clientPortListenBacklog=-1");
            let _ = writeln!(out, "serverId=0");
        }
        "envi" => {
            out.push_str("Environment:\n");
            let _ = writeln!(out, "zookeeper.version={}", version_string());
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            let _ = writeln!(out, "host.name={host}");
            let _ = writeln!(out, "ringkeeper.version={}", env!("CARGO_PKG_VERSION"));
            let _ = writeln!(out, "os.name=Linux");
            let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let _ = writeln!(out, "os.version={}", release.trim());
            let _ = writeln!(
                out,
                "user.name={}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            let _ = writeln!(
                out,
                "user.home={}",
                std::env::var("HOME").unwrap_or_else(|_| "unknown".into())
            );
            let _ = writeln!(
                out,
                "user.dir={}",
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            );
        }
        "wchs" | "wchc" | "wchp" => {
            let mut by_session: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            let mut by_path: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for answer in state.admin.ask(AdminKind::Watches).await {
                for (session, path) in answer.watches {
                    by_session.entry(session).or_default().push(path.clone());
                    by_path.entry(path).or_default().push(session);
                }
            }
            match word {
                "wchs" => {
                    let total: usize = by_session.values().map(|paths| paths.len()).sum();
                    let _ = writeln!(
                        out,
                        "{} connections watching {} paths",
                        by_session.len(),
                        by_path.len()
                    );
                    let _ = writeln!(out, "Total watches:{total}");
                }
                "wchc" => {
                    for (session, mut paths) in by_session {
                        paths.sort();
                        paths.dedup();
                        let _ = writeln!(out, "{session:#x}");
                        for path in paths {
                            let _ = writeln!(out, "\t{path}");
                        }
                    }
                    out.push('\n');
                }
                _ => {
                    for (path, mut sessions) in by_path {
                        sessions.sort();
                        sessions.dedup();
                        let _ = writeln!(out, "{path}");
                        for session in sessions {
                            let _ = writeln!(out, "\t{session:#x}");
                        }
                    }
                    out.push('\n');
                }
            }
        }
        "dump" => {
            let view = state.view();
            out.push_str("SessionTracker dump:\n");
            let sets = state.stats.session_sets();
            let total: usize = sets.iter().map(|(_, ids)| ids.len()).sum();
            let _ = writeln!(out, "Session Sets ({})/({total}):", sets.len());
            for (deadline_ms, ids) in sets {
                let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(deadline_ms));
                for id in ids {
                    let _ = writeln!(out, "\t{id:#x}");
                }
            }
            out.push_str("ephemeral nodes dump:\n");
            let owners = view.ephemeral_owners();
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
            for (session, paths) in owners {
                let _ = writeln!(out, "{session:#x}:");
                for path in paths {
                    let _ = writeln!(out, "\t{path}");
                }
            }
            out.push_str("Connections dump:\n");
            let answers = state.admin.ask(AdminKind::Connections).await;
            // ZooKeeper groups connections by the tick their idle timeout falls in.
            let tick_ms = config.tick_time_ms.max(1) as i64;
            let now_ms = wall_clock_ms();
            let mut by_deadline: BTreeMap<i64, Vec<ConnInfo>> = BTreeMap::new();
            for info in answers.into_iter().flat_map(|answer| answer.connections) {
                let deadline =
                    (now_ms + info.timeout_ms.max(0) as i64) / tick_ms * tick_ms + tick_ms;
                by_deadline.entry(deadline).or_default().push(info);
            }
            let count: usize = by_deadline.values().map(Vec::len).sum();
            let _ = writeln!(out, "Connections Sets ({})/({count}):", by_deadline.len());
            for (deadline, infos) in by_deadline {
                let _ = writeln!(out, "{} expire at {}:", infos.len(), java_date(deadline));
                for info in infos {
                    let _ = writeln!(
                        out,
                        "\tip: /{} sessionId: {:#x}",
                        info.remote, info.session_id
                    );
                }
            }
        }
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", directory_size(&config.data_dir));
            let _ = writeln!(out, "logdir_size: {}", directory_size(&config.data_log_dir));
        }
        "mntr" => {
            let stats = &state.stats;
            let view = state.view();
            let (min, avg, max) = stats.latency();
            let watch_total: usize = state
                .admin
                .ask(AdminKind::Watches)
                .await
                .iter()
                .map(|answer| answer.watch_count)
                .sum();
            let rows: Vec<(&str, String)> = vec![
                ("zk_version", version_string()),
                ("zk_server_state", "standalone".into()),
                (
                    "zk_ephemerals_count",
                    view.ephemeral_node_count().to_string(),
                ),
                (
                    "zk_num_alive_connections",
                    stats.connections.load(Ordering::Relaxed).to_string(),
                ),
                ("zk_avg_latency", format!("{avg:.1}")),
                (
                    "zk_outstanding_requests",
                    stats
                        .outstanding_requests
                        .load(Ordering::Relaxed)
                        .max(0)
                        .to_string(),
                ),
                ("zk_znode_count", (view.node_count() + 1).to_string()),
                (
                    "zk_global_sessions",
                    stats.session_count.load(Ordering::Relaxed).to_string(),
                ),
                ("zk_local_sessions", "0".into()),
                (
                    "zk_packets_sent",
                    stats.packets_sent.load(Ordering::Relaxed).to_string(),
                ),
                (
                    "zk_packets_received",
                    stats.packets_received.load(Ordering::Relaxed).to_string(),
                ),
                ("zk_watch_count", watch_total.to_string()),
                ("zk_min_latency", min.to_string()),
                ("zk_max_latency", max.to_string()),
                (
                    "zk_approximate_data_size",
                    view.approximate_data_size().to_string(),
                ),
                (
                    "zk_open_file_descriptor_count",
                    open_file_descriptors().to_string(),
                ),
                (
                    "zk_max_file_descriptor_count",
                    max_file_descriptors().to_string(),
                ),
                ("zk_uptime", stats.started.elapsed().as_millis().to_string()),
                ("zk_last_zxid", format!("{:#x}", view.zxid)),
                // ringkeeper's own: group commits done and records they carried (their ratio
                // is the achieved batch size).
                (
                    "ringkeeper_txnlog_batches",
                    stats.log_batches.load(Ordering::Relaxed).to_string(),
                ),
                (
                    "ringkeeper_txnlog_records",
                    stats.log_records.load(Ordering::Relaxed).to_string(),
                ),
            ];
            for (key, value) in rows {
                let _ = writeln!(out, "{key}\t{value}");
            }
        }
        _ => {
            let _ = writeln!(out, "{word} is not supported by this server.");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_date_matches_date_to_string() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-22T03:02:06Z, as printed by ZooKeeper's dump.
        assert_eq!(java_date(1_795_316_526_000), "Sun Nov 22 03:02:06 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
