//! Four-letter words, answered in ZooKeeper's formats (FourLetterCommands and the
//! `*Command` classes) so existing monitoring keeps working. Commands that need every core's
//! connections or watches ask each core through its admin queue; nothing here is on the
//! request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::dynamic::server_spec;
use crate::config::Config;
use crate::metrics::{ServerMode, ServerStats};
use crate::tree::TreeVersion;

/// What a four-letter word is answered from: the server's settings and counters, the asking
/// core's tree version, and every core's admin queue (for connections and watches). The core
/// that took the connection builds it; this module knows nothing of cores.
pub struct WordContext<'a> {
    pub config: &'a Config,
    pub stats: &'a ServerStats,
    pub admin: &'a AdminHub,
    pub view: Arc<TreeVersion>,
}

/// The words the client port answers (FourLetterCommands' table).
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "dump", "wchs", "wchc",
    "wchp", "dirs", "isro", "gtmk", "stmk", "hash",
];

/// What the first four bytes of a client connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes<'a> {
    /// A TLS ClientHello record (content type 22, major version 3) on a plaintext port.
    TlsHandshake,
    /// A four-letter word, which takes the place of the first frame's length
    /// (NIOServerCnxn.checkFourLetterWord): the connection is answered and closed.
    Word(&'a str),
    /// Anything else is the first frame's length.
    Frame,
}

/// [pure] Classifies the first four bytes a client sent (fewer bytes: a frame, since neither
/// a word nor a TLS record header can be recognised yet; the caller waits for four).
pub fn classify_first_bytes(head: &[u8]) -> FirstBytes<'_> {
    if head.len() < 4 {
        return FirstBytes::Frame;
    }
    if head[0] == crate::net::tls::TLS_HANDSHAKE_RECORD && head[1] == 0x03 {
        return FirstBytes::TlsHandshake;
    }
    match std::str::from_utf8(&head[..4]) {
        Ok(word) if FOUR_LETTER_WORDS.contains(&word) => FirstBytes::Word(word),
        _ => FirstBytes::Frame,
    }
}

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
    pub async fn ask(&self, kind: AdminKind) -> Vec<AdminAnswer> {
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

pub fn wall_clock_ms() -> i64 {
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

pub fn directory_size(path: &std::path::Path) -> u64 {
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

pub fn open_file_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count())
}

pub fn max_file_descriptors() -> u64 {
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

fn server_summary(state: &WordContext, out: &mut String) {
    let view = &state.view;
    // ZooKeeper's DataTree keeps the root under two keys ("" and "/") and counts both.
    // In an ensemble the zxid shows the epoch from synchronisation on, before its first
    // transaction, as ZooKeeper's lastProcessedZxid does.
    let zxid = view.zxid.max(state.stats.last_zxid.load(Ordering::Relaxed));
    out.push_str(&server_summary_text(
        state.stats,
        zxid,
        view.node_count() + 1,
    ));
}

/// The lines `srvr` and `stat` share, from `Latency min/avg/max` to `Node count` (ZooKeeper's
/// `ServerStats.toString` and `StatCommand`), with a leader's `Proposal sizes last/min/max`.
pub fn server_summary_text(stats: &ServerStats, zxid: i64, node_count: usize) -> String {
    let mut out = String::new();
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
    let _ = writeln!(out, "Zxid: {zxid:#x}");
    let mode = stats.quorum.mode();
    let _ = writeln!(out, "Mode: {}", mode.as_str());
    let _ = writeln!(out, "Node count: {node_count}");
    if mode == ServerMode::Leader {
        let quorum = &stats.quorum;
        let _ = writeln!(
            out,
            "Proposal sizes last/min/max: {}/{}/{}",
            quorum.proposal_bytes_last.load(Ordering::Relaxed),
            quorum.proposal_bytes_min.load(Ordering::Relaxed),
            quorum.proposal_bytes_max.load(Ordering::Relaxed)
        );
    }
    out
}

/// ZooKeeper's `AbstractFourLetterCommand.ZK_NOT_SERVING`.
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// The answer of a word while the server is not serving (looking for a leader), or `None`
/// when the word answers as usual. ZooKeeper 3.9.3: the commands that check
/// `isZKServerRunning()` (stat, srvr, mntr, cons, crst, srst, conf, dump, dirs, wchs, wchc,
/// wchp) print ZK_NOT_SERVING; hash prints it without the newline; isro prints `null`; ruok
/// (imok) and envi do not check.
/// Checked against a 3.8.0 ensemble that lost its quorum.
pub fn not_serving_answer(word: &str) -> Option<String> {
    match word {
        "srvr" | "stat" | "mntr" | "cons" | "crst" | "srst" | "conf" | "dump" | "dirs" | "wchs"
        | "wchc" | "wchp" => Some(format!("{ZK_NOT_SERVING}\n")),
        "isro" => Some("null".into()),
        // DigestCommand prints it without a newline.
        "hash" => Some(ZK_NOT_SERVING.into()),
        _ => None,
    }
}

/// `conf` (ZooKeeperServer.dumpConf, and QuorumZooKeeperServer.dumpConf in an ensemble: the
/// limits, ports, `peerType` as LearnerType's ordinal (0 participant, 1 observer) and the
/// membership, which ends without a newline after `version=0`, as ZooKeeper's does).
///
/// `client_port` is the port the listeners are on ([`ServerStats::client_port`]). The
/// membership is the one of zoo.cfg, not the configuration in force.
pub fn conf_text(
    config: &Config,
    client_port: u16,
    data_dir_bytes: u64,
    data_log_bytes: u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={client_port}");
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", config.data_dir.display());
    let _ = writeln!(out, "dataDirSize={data_dir_bytes}");
    let _ = writeln!(out, "dataLogDir={}", config.data_log_dir.display());
    let _ = writeln!(out, "dataLogSize={data_log_bytes}");
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(
        out,
        "maxClientCnxns={}",
        config.limits.connections_per_ip_max
    );
    let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout_ms);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let Some(quorum) = &config.quorum else {
        let _ = writeln!(out, "serverId=0");
        return out;
    };
    let _ = writeln!(out, "serverId={}", quorum.my_id);
    let _ = writeln!(out, "initLimit={}", quorum.init_limit);
    let _ = writeln!(out, "syncLimit={}", quorum.sync_limit);
    let _ = writeln!(out, "electionAlg=3");
    if let Some(me) = quorum.me() {
        let _ = writeln!(out, "electionPort={}", me.election_addr.port());
        let _ = writeln!(out, "quorumPort={}", me.quorum_addr.port());
        let _ = writeln!(out, "peerType={}", u8::from(me.observer));
    }
    out.push_str("membership: \n");
    for server in quorum.servers.values() {
        let _ = writeln!(out, "server.{}={}", server.id, server_spec(server));
    }
    out.push_str("version=0");
    out
}

/// `zk_server_state`, and in an ensemble `zk_peer_state` (QuorumPeer.getDetailedPeerState:
/// a serving member is past synchronisation, so `... - broadcast`) and an observer's
/// `zk_observer_master_id` (its leader: ringkeeper has no observer masters).
pub fn state_rows(stats: &ServerStats) -> Vec<(&'static str, String)> {
    let quorum = &stats.quorum;
    let mode = quorum.mode();
    let mut rows = vec![("zk_server_state", mode.as_str().to_string())];
    let peer_state = match mode {
        ServerMode::Leader => "leading - broadcast",
        ServerMode::Follower => "following - broadcast",
        ServerMode::Observer => "observing - broadcast",
        ServerMode::Standalone | ServerMode::Looking | ServerMode::ReadOnly => return rows,
    };
    rows.push(("zk_peer_state", peer_state.into()));
    if mode == ServerMode::Observer {
        rows.push((
            "zk_observer_master_id",
            quorum.leader_id.load(Ordering::Relaxed).to_string(),
        ));
    }
    rows
}

/// The ensemble gauges of `mntr`: `zk_quorum_size` and the election-time summary for every
/// member; on a leader, LeaderZooKeeperServer's gauges in their registration order; on a
/// follower, `zk_synced_observers` (3.9's FollowerZooKeeperServer; always 0 here, as
/// ringkeeper's followers are not observer masters). Nothing in standalone mode.
pub fn quorum_rows(stats: &ServerStats, now_ms: i64) -> Vec<(&'static str, String)> {
    let quorum = &stats.quorum;
    let load = |value: &std::sync::atomic::AtomicUsize| value.load(Ordering::Relaxed).to_string();
    let mode = quorum.mode();
    if matches!(
        mode,
        ServerMode::Standalone | ServerMode::Looking | ServerMode::ReadOnly
    ) {
        return Vec::new();
    }
    let mut rows = vec![("zk_quorum_size", load(&quorum.quorum_size))];
    match mode {
        ServerMode::Leader => {
            let started_ms = quorum.leader_started_ms.load(Ordering::Relaxed);
            let uptime_ms = if started_ms > 0 {
                (now_ms - started_ms).max(0)
            } else {
                0
            };
            rows.extend([
                ("zk_learners", load(&quorum.learners)),
                ("zk_synced_followers", load(&quorum.synced_followers)),
                (
                    "zk_synced_non_voting_followers",
                    load(&quorum.synced_non_voting_followers),
                ),
                ("zk_synced_observers", load(&quorum.synced_observers)),
                ("zk_pending_syncs", load(&quorum.pending_syncs)),
                ("zk_leader_uptime", uptime_ms.to_string()),
                (
                    "zk_last_proposal_size",
                    quorum
                        .proposal_bytes_last
                        .load(Ordering::Relaxed)
                        .to_string(),
                ),
                (
                    "zk_max_proposal_size",
                    quorum
                        .proposal_bytes_max
                        .load(Ordering::Relaxed)
                        .to_string(),
                ),
                (
                    "zk_min_proposal_size",
                    quorum
                        .proposal_bytes_min
                        .load(Ordering::Relaxed)
                        .to_string(),
                ),
            ]);
        }
        ServerMode::Follower => rows.push(("zk_synced_observers", "0".into())),
        _ => {}
    }
    let (count, avg, min, max, sum) = quorum.election_summary();
    // AvgMinMaxCounter: avg as a Java double, the rest as longs.
    rows.extend([
        ("zk_avg_election_time", format!("{avg:?}")),
        ("zk_min_election_time", min.to_string()),
        ("zk_max_election_time", max.to_string()),
        ("zk_cnt_election_time", count.to_string()),
        ("zk_sum_election_time", sum.to_string()),
    ]);
    rows
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

/// The rows of `mntr` (key, value as ZooKeeper prints it), in ZooKeeper's order: the
/// AdminServer's `monitor` and the Prometheus endpoint read the same rows, so the three agree.
pub async fn monitor_rows(state: &WordContext<'_>) -> Vec<(&'static str, String)> {
    let stats = &state.stats;
    let view = &state.view;
    let (min, avg, max) = stats.latency();
    let watch_total: usize = state
        .admin
        .ask(AdminKind::Watches)
        .await
        .iter()
        .map(|answer| answer.watch_count)
        .sum();
    let mut rows: Vec<(&'static str, String)> = vec![
        ("zk_version", version_string()),
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
        (
            "zk_admission_queue",
            stats.admission_queue.load(Ordering::Relaxed).to_string(),
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
        (
            "zk_auth_failed_count",
            stats.auth_failed.load(Ordering::Relaxed).to_string(),
        ),
        (
            "zk_last_client_response_size",
            stats.response_sizes().0.to_string(),
        ),
        (
            "zk_max_client_response_size",
            stats.response_sizes().2.to_string(),
        ),
        (
            "zk_min_client_response_size",
            stats.response_sizes().1.to_string(),
        ),
        // ServerMetrics.DIGEST_MISMATCHES_COUNT: committed txns after which a learner's tree
        // digest differed from the one its leader sent with the proposal
        // (DataTree.compareDigest; see pipeline/driver/ensemble/mod.rs).
        (
            "zk_digest_mismatches_count",
            stats.digest_mismatches.load(Ordering::Relaxed).to_string(),
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
        // ringkeeper's own: the txns whose digest a learner compared with its leader's (a
        // zk_digest_mismatches_count of 0 means something only when this is not).
        (
            "ringkeeper_digests_compared",
            stats.digests_compared.load(Ordering::Relaxed).to_string(),
        ),
    ];
    // ZooKeeper prints its dumpMonitorValues (version, states) before the metrics.
    for (index, row) in state_rows(stats).into_iter().enumerate() {
        rows.insert(1 + index, row);
    }
    // The quorum rows go before ringkeeper's own (the last three).
    let ringkeeper_rows = rows.len() - 3;
    rows.splice(
        ringkeeper_rows..ringkeeper_rows,
        quorum_rows(stats, wall_clock_ms()),
    );
    rows
}

/// `envi` (ZooKeeper's Environment.list, without the java.* keys).
pub fn environment_rows() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        ("zookeeper.version", version_string()),
        ("host.name", host),
        ("ringkeeper.version", env!("CARGO_PKG_VERSION").to_string()),
        ("os.name", "Linux".to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", release.trim().to_string()),
        (
            "user.name",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        ),
        (
            "user.home",
            std::env::var("HOME").unwrap_or_else(|_| "unknown".into()),
        ),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// The whole answer to a four-letter word, sent before the connection closes.
/// `stmk` with its argument: sets the trace mask and answers it (SetTraceMaskCommand).
pub fn set_trace_mask(state: &WordContext<'_>, mask: i64) -> String {
    if !state.config.four_letter_word_enabled("stmk") {
        return "stmk is not executed because it is not in the whitelist.\n".into();
    }
    state.stats.trace_mask.store(mask as u64, Ordering::Relaxed);
    format!("{mask}")
}

pub async fn answer(state: &WordContext<'_>, word: &str) -> String {
    let config = state.config;
    if !config.four_letter_word_enabled(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if !state.stats.quorum.mode().is_serving() {
        if let Some(text) = not_serving_answer(word) {
            return text;
        }
    }
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        // IsroCommand: `ro` while a ReadOnlyZooKeeperServer serves.
        "isro" if state.stats.quorum.mode() == ServerMode::ReadOnly => out.push_str("ro"),
        "isro" => out.push_str("rw"),
        // DigestCommand: the digest history of the tree this core serves.
        "hash" => out.push_str(&crate::tree::digest::digest_log_text(
            state.view.digest_log(),
        )),
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
        "conf" => out.push_str(&conf_text(
            config,
            state.stats.client_port(config.client_address.port()),
            directory_size(&config.data_dir),
            directory_size(&config.data_log_dir),
        )),
        "envi" => {
            out.push_str("Environment:\n");
            for (key, value) in environment_rows() {
                let _ = writeln!(out, "{key}={value}");
            }
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
            let view = &state.view;
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
            for (key, value) in monitor_rows(state).await {
                let _ = writeln!(out, "{key}\t{value}");
            }
        }
        // TraceMaskCommand: the mask in decimal, no newline.
        "gtmk" => {
            let _ = write!(out, "{}", state.stats.trace_mask.load(Ordering::Relaxed));
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

    fn ensemble_config(myid: &str) -> Config {
        let text = "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent/rk\n\
            server.1=127.0.0.1:42881:43881\nserver.2=127.0.0.1:42882:43882\n\
            server.3=127.0.0.1:42883:43883:participant;127.0.0.1:42183\n\
            server.4=[::1]:42884:43884:observer;42184\n";
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let text = text.replace("/nonexistent/rk", &dir.path().display().to_string());
        std::fs::write(dir.path().join("myid"), myid).unwrap_or_else(|error| panic!("{error}"));
        Config::from_properties(&text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn srvr_mode_line_follows_the_server_mode() {
        let stats = ServerStats::default();
        let text = server_summary_text(&stats, 0x1_0000_0000, 5);
        assert!(
            text.contains("Zxid: 0x100000000\nMode: standalone\nNode count: 5\n"),
            "{text}"
        );
        assert!(!text.contains("Proposal sizes"));
        stats.quorum.set_mode(ServerMode::Follower);
        assert!(server_summary_text(&stats, 0, 5).contains("\nMode: follower\n"));
        stats.quorum.set_mode(ServerMode::Observer);
        assert!(server_summary_text(&stats, 0, 5).contains("\nMode: observer\n"));
        // A leader adds its proposal sizes (StatCommand), -1/-1/-1 before the first.
        stats.quorum.set_mode(ServerMode::Leader);
        let text = server_summary_text(&stats, 0, 5);
        assert!(
            text.ends_with("Mode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_looking_server_is_not_serving() {
        let expected = format!("{ZK_NOT_SERVING}\n");
        for word in [
            "srvr", "stat", "mntr", "cons", "crst", "srst", "conf", "dump", "dirs", "wchs", "wchc",
            "wchp",
        ] {
            assert_eq!(
                not_serving_answer(word).as_deref(),
                Some(expected.as_str()),
                "{word}"
            );
        }
        assert_eq!(not_serving_answer("isro").as_deref(), Some("null"));
        // DigestCommand: pw.print, no newline.
        assert_eq!(not_serving_answer("hash").as_deref(), Some(ZK_NOT_SERVING));
        assert_eq!(not_serving_answer("ruok"), None);
        assert_eq!(not_serving_answer("envi"), None);
        assert_eq!(
            expected,
            "This ZooKeeper instance is not currently serving requests\n"
        );
    }

    #[test]
    fn mntr_state_rows_in_each_mode() {
        let stats = ServerStats::default();
        assert_eq!(
            state_rows(&stats),
            vec![("zk_server_state", "standalone".to_string())]
        );
        assert!(quorum_rows(&stats, 0).is_empty());
        stats.quorum.set_mode(ServerMode::Follower);
        stats.quorum.quorum_size.store(3, Ordering::Relaxed);
        stats.quorum.record_election(497);
        assert_eq!(
            state_rows(&stats),
            vec![
                ("zk_server_state", "follower".to_string()),
                ("zk_peer_state", "following - broadcast".to_string()),
            ]
        );
        let keys: Vec<String> = quorum_rows(&stats, 0)
            .into_iter()
            .map(|(key, value)| format!("{key}\t{value}"))
            .collect();
        assert_eq!(
            keys,
            [
                "zk_quorum_size\t3",
                "zk_synced_observers\t0",
                "zk_avg_election_time\t497.0",
                "zk_min_election_time\t497",
                "zk_max_election_time\t497",
                "zk_cnt_election_time\t1",
                "zk_sum_election_time\t497",
            ]
        );
        stats.quorum.set_mode(ServerMode::Observer);
        stats.quorum.leader_id.store(3, Ordering::Relaxed);
        assert_eq!(
            state_rows(&stats)[1..],
            [
                ("zk_peer_state", "observing - broadcast".to_string()),
                ("zk_observer_master_id", "3".to_string()),
            ]
        );
    }

    #[test]
    fn mntr_leader_rows_carry_the_leader_gauges() {
        let stats = ServerStats::default();
        let quorum = &stats.quorum;
        quorum.set_mode(ServerMode::Leader);
        quorum.quorum_size.store(3, Ordering::Relaxed);
        quorum.learners.store(3, Ordering::Relaxed);
        quorum.synced_followers.store(2, Ordering::Relaxed);
        quorum.synced_observers.store(1, Ordering::Relaxed);
        quorum.pending_syncs.store(4, Ordering::Relaxed);
        quorum.leader_started_ms.store(1_000, Ordering::Relaxed);
        quorum.record_proposal_bytes(120);
        let rows: Vec<String> = quorum_rows(&stats, 47_020)
            .into_iter()
            .map(|(key, value)| format!("{key}\t{value}"))
            .collect();
        assert_eq!(
            rows[..10],
            [
                "zk_quorum_size\t3",
                "zk_learners\t3",
                "zk_synced_followers\t2",
                "zk_synced_non_voting_followers\t0",
                "zk_synced_observers\t1",
                "zk_pending_syncs\t4",
                "zk_leader_uptime\t46020",
                "zk_last_proposal_size\t120",
                "zk_max_proposal_size\t120",
                "zk_min_proposal_size\t120",
            ]
        );
        assert_eq!(rows[10], "zk_avg_election_time\t0.0");
        assert_eq!(
            state_rows(&stats)[1],
            ("zk_peer_state", "leading - broadcast".to_string())
        );
    }

    #[test]
    fn conf_in_standalone_and_ensemble_modes() {
        let standalone = conf_text(&Config::default(), 2181, 1, 2);
        assert!(
            standalone.ends_with("clientPortListenBacklog=-1\nserverId=0\n"),
            "{standalone}"
        );
        assert!(!standalone.contains("initLimit"));
        // As a 3.8.0 ensemble answers (server 3 of three, plus an IPv6 observer here).
        let config = ensemble_config("3\n");
        let text = conf_text(&config, config.client_address.port(), 613, 613);
        let expected_tail = "clientPortListenBacklog=-1\nserverId=3\ninitLimit=10\nsyncLimit=5\n\
            electionAlg=3\nelectionPort=43883\nquorumPort=42883\npeerType=0\nmembership: \n\
            server.1=127.0.0.1:42881:43881:participant\n\
            server.2=127.0.0.1:42882:43882:participant\n\
            server.3=127.0.0.1:42883:43883:participant;127.0.0.1:42183\n\
            server.4=[::1]:42884:43884:observer;0.0.0.0:42184\nversion=0";
        assert!(text.ends_with(expected_tail), "{text}");
        assert!(text.starts_with("clientPort=42183\n"), "{text}");
        let observer = conf_text(&ensemble_config("4"), 42184, 0, 0);
        assert!(observer.contains("\nserverId=4\n"), "{observer}");
        assert!(observer.contains("\nelectionPort=43884\nquorumPort=42884\npeerType=1\n"));
    }
}
