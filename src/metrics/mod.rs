//! Server-wide counters for the four-letter words and `mntr`. Plain atomics: every core and
//! the pipeline update them without locks; readers see a value that is at most slightly stale.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding_requests: AtomicI64,
    /// Requests a leader holds back while its proposal window is full (pipeline/admission).
    pub admission_queue: AtomicI64,
    pub latency_count: AtomicU64,
    pub latency_total_ms: AtomicU64,
    pub latency_min_ms: AtomicU64,
    pub latency_max_ms: AtomicU64,
    pub connections: AtomicUsize,
    pub last_zxid: AtomicI64,
    /// The newest zxid the pipeline has published to the cores (stored before the batches
    /// are sent): a core about to serve a read first catches up to it.
    pub published_zxid: AtomicI64,
    pub node_count: AtomicUsize,
    pub session_count: AtomicUsize,
    pub ephemeral_count: AtomicUsize,
    pub approximate_data_size: AtomicUsize,
    pub watch_count: AtomicUsize,
    /// Group-commit batches and records made durable (mntr: the achieved batch size).
    pub log_batches: AtomicU64,
    pub log_records: AtomicU64,
    /// Log syncs slower than `fsync.warningthresholdms` (ServerStats'
    /// fsync_threshold_exceed_count).
    pub fsync_threshold_exceeded: AtomicU64,
    /// Client TLS handshakes that failed or timed out (ServerStats.incrementAuthFailedCount,
    /// which NettyServerCnxnFactory calls for an unsuccessful handshake).
    pub auth_failed: AtomicU64,
    /// Learner: committed txns whose tree digest differed from the leader's
    /// (ServerMetrics.DIGEST_MISMATCHES_COUNT, `zk_digest_mismatches_count`), and those
    /// compared at all (ringkeeper's own `ringkeeper_digests_compared`: shows the check ran).
    pub digest_mismatches: AtomicU64,
    pub digests_compared: AtomicU64,
    /// ZooTrace's text trace mask (`gtmk`/`stmk`, get/set_trace_mask): which request trace
    /// lines are written when the log level is TRACE. The process's one mask, as ZooKeeper's
    /// is static.
    pub trace_mask: AtomicU64,
    /// Sizes of the frames sent to clients, without their length prefix (BufferStats:
    /// last/min/max_client_response_size; -1 before the first and after `srst`).
    pub response_size_last: AtomicI64,
    pub response_size_min: AtomicI64,
    pub response_size_max: AtomicI64,
    /// Distributions for the Prometheus endpoint, under ZooKeeper's ServerMetrics names:
    /// `readlatency` and `updatelatency` (ms from a request's arrival to its reply; updates are
    /// the requests that go through the write pipeline, as ZooKeeper's FinalRequestProcessor
    /// counts those with a txn header), `fsynctime` (ms per log fdatasync) and
    /// `sync_processor_batch_size` (records per group commit, SyncRequestProcessor's figure).
    /// `proposal_latency` is the leader's: ms from a transaction's proposal to its commit
    /// (ZooKeeper's Leader measures it from the proposal's creation to the quorum's ack).
    pub read_latency_ms: Distribution,
    pub update_latency_ms: Distribution,
    pub fsync_time_ms: Distribution,
    pub log_batch_records: Distribution,
    pub proposal_latency_ms: Distribution,
    /// The server's role in an ensemble and the leader's figures, set by the pipeline.
    pub quorum: QuorumStats,
    /// The client port a reconfig moved the listeners to, 0 while they are on the configured
    /// one (`conf` and the AdminServer's `configuration` show the port the server listens
    /// on, as ZooKeeper's getClientPort asks its connection factory).
    pub moved_client_port: std::sync::atomic::AtomicU16,
    /// Sessions by expiry deadline (wall-clock ms), refreshed by the session owner about once
    /// a second, for `dump`. Admin data only: never touched on the request path.
    session_sets: Mutex<Vec<(i64, Vec<i64>)>>,
}

impl ServerStats {
    /// The port the client listeners are on: `configured`, or where a reconfig moved them.
    pub fn client_port(&self, configured: u16) -> u16 {
        match self.moved_client_port.load(Ordering::Relaxed) {
            0 => configured,
            moved => moved,
        }
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding_requests: AtomicI64::new(0),
            admission_queue: AtomicI64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_ms: AtomicU64::new(0),
            latency_min_ms: AtomicU64::new(u64::MAX),
            latency_max_ms: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            last_zxid: AtomicI64::new(0),
            published_zxid: AtomicI64::new(0),
            node_count: AtomicUsize::new(0),
            session_count: AtomicUsize::new(0),
            ephemeral_count: AtomicUsize::new(0),
            approximate_data_size: AtomicUsize::new(0),
            watch_count: AtomicUsize::new(0),
            log_batches: AtomicU64::new(0),
            log_records: AtomicU64::new(0),
            fsync_threshold_exceeded: AtomicU64::new(0),
            auth_failed: AtomicU64::new(0),
            digest_mismatches: AtomicU64::new(0),
            digests_compared: AtomicU64::new(0),
            trace_mask: AtomicU64::new(TRACE_MASK_DEFAULT),
            response_size_last: AtomicI64::new(-1),
            response_size_min: AtomicI64::new(-1),
            response_size_max: AtomicI64::new(-1),
            read_latency_ms: Distribution::new(LATENCY_BOUNDS_MS),
            update_latency_ms: Distribution::new(LATENCY_BOUNDS_MS),
            fsync_time_ms: Distribution::new(LATENCY_BOUNDS_MS),
            log_batch_records: Distribution::new(BATCH_BOUNDS),
            proposal_latency_ms: Distribution::new(LATENCY_BOUNDS_MS),
            quorum: QuorumStats::default(),
            moved_client_port: std::sync::atomic::AtomicU16::new(0),
            session_sets: Mutex::new(Vec::new()),
        }
    }
}

impl ServerStats {
    pub fn record_latency(&self, latency_ms: u64) {
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_total_ms
            .fetch_add(latency_ms, Ordering::Relaxed);
        self.latency_min_ms.fetch_min(latency_ms, Ordering::Relaxed);
        self.latency_max_ms.fetch_max(latency_ms, Ordering::Relaxed);
    }

    /// (min, avg, max) in milliseconds, ZooKeeper's "Latency min/avg/max".
    pub fn latency(&self) -> (u64, f64, u64) {
        let count = self.latency_count.load(Ordering::Relaxed);
        if count == 0 {
            return (0, 0.0, 0);
        }
        let total = self.latency_total_ms.load(Ordering::Relaxed);
        (
            self.latency_min_ms.load(Ordering::Relaxed),
            total as f64 / count as f64,
            self.latency_max_ms.load(Ordering::Relaxed),
        )
    }

    /// A request answered `latency_ms` after it arrived; `update` when it went through the
    /// write pipeline.
    pub fn record_request(&self, latency_ms: u64, update: bool) {
        self.record_latency(latency_ms);
        if update {
            self.update_latency_ms.record(latency_ms);
        } else {
            self.read_latency_ms.record(latency_ms);
        }
    }

    /// A group commit of `records` made durable by a sync of `sync_micros`; a sync of more
    /// whole milliseconds than `warning_ms` counts as exceeding the threshold
    /// (FileTxnLog.commit compares milliseconds).
    pub fn record_log_batch(&self, records: usize, sync_micros: u64, warning_ms: u64) {
        if sync_micros / 1000 > warning_ms {
            self.fsync_threshold_exceeded
                .fetch_add(1, Ordering::Relaxed);
        }
        self.log_batches.fetch_add(1, Ordering::Relaxed);
        self.log_records
            .fetch_add(records as u64, Ordering::Relaxed);
        self.log_batch_records.record(records as u64);
        self.fsync_time_ms.record(sync_micros / 1000);
    }

    pub fn set_session_sets(&self, sets: Vec<(i64, Vec<i64>)>) {
        if let Ok(mut guard) = self.session_sets.lock() {
            *guard = sets;
        }
    }

    pub fn session_sets(&self) -> Vec<(i64, Vec<i64>)> {
        self.session_sets
            .lock()
            .map(|guard| guard.clone())
            .unwrap_or_default()
    }

    /// A frame of `size` bytes sent to a client (BufferStats.setLastBufferSize).
    pub fn record_response_size(&self, size: u64) {
        let size = size.min(i64::MAX as u64) as i64;
        self.response_size_last.store(size, Ordering::Relaxed);
        // Only a new extreme writes the shared counter (-1: none yet).
        let min = self.response_size_min.load(Ordering::Relaxed);
        if min < 0 || size < min {
            let _ = self.response_size_min.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |current| (current < 0 || size < current).then_some(size),
            );
        }
        if size > self.response_size_max.load(Ordering::Relaxed) {
            self.response_size_max.fetch_max(size, Ordering::Relaxed);
        }
    }

    /// Whether a trace line of `kind` (a ZooTrace mask bit) is to be written.
    pub fn traces(&self, kind: u64) -> bool {
        self.trace_mask.load(Ordering::Relaxed) & kind != 0
    }

    /// (last, min, max) response sizes; -1 where none was sent since the start or `srst`.
    pub fn response_sizes(&self) -> (i64, i64, i64) {
        (
            self.response_size_last.load(Ordering::Relaxed),
            self.response_size_min.load(Ordering::Relaxed),
            self.response_size_max.load(Ordering::Relaxed),
        )
    }

    /// `srst`: resets the request statistics.
    pub fn reset(&self) {
        self.response_size_last.store(-1, Ordering::Relaxed);
        self.response_size_min.store(-1, Ordering::Relaxed);
        self.response_size_max.store(-1, Ordering::Relaxed);
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency_count.store(0, Ordering::Relaxed);
        self.latency_total_ms.store(0, Ordering::Relaxed);
        self.latency_min_ms.store(u64::MAX, Ordering::Relaxed);
        self.latency_max_ms.store(0, Ordering::Relaxed);
    }
}

/// ZooTrace's mask bits that ringkeeper's trace lines follow: client requests, client pings.
pub const TRACE_CLIENT_REQUEST: u64 = 1 << 1;
pub const TRACE_CLIENT_PING: u64 = 1 << 3;
/// ZooTrace's default: CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING (306).
pub const TRACE_MASK_DEFAULT: u64 = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8);

/// Upper bounds (ms) of the latency buckets: ZooKeeper reports whole milliseconds.
pub const LATENCY_BOUNDS_MS: &[u64] = &[0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
/// Upper bounds of the batch-size buckets (records per group commit; at most
/// LOG_BATCH_RECORDS_MAX, 10,000).
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000];

/// A distribution of whole-number samples kept in fixed buckets with atomics, so that every
/// core records into it without a lock. At most [`DISTRIBUTION_BUCKETS_MAX`] bounds.
#[derive(Debug)]
pub struct Distribution {
    bounds: &'static [u64],
    /// counts[i]: samples <= bounds[i] and > bounds[i-1]; the last slot is +Inf.
    counts: [AtomicU64; DISTRIBUTION_BUCKETS_MAX + 1],
    count: AtomicU64,
    sum: AtomicU64,
}

pub const DISTRIBUTION_BUCKETS_MAX: usize = 16;

/// A consistent-enough copy of a [`Distribution`]: bucket counts are not cumulative.
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: u64,
}

impl Distribution {
    pub fn new(bounds: &'static [u64]) -> Distribution {
        assert!(bounds.len() <= DISTRIBUTION_BUCKETS_MAX, "too many buckets");
        assert!(
            bounds.windows(2).all(|pair| pair[0] < pair[1]),
            "bounds must ascend"
        );
        Distribution {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        let slot = self.bounds.partition_point(|&bound| bound < value);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> DistributionSnapshot {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(slot, &bound)| (bound as f64, self.counts[slot].load(Ordering::Relaxed)))
            .collect();
        buckets.push((
            f64::INFINITY,
            self.counts[self.bounds.len()].load(Ordering::Relaxed),
        ));
        // The count is the sum of the buckets, so that the exposition is consistent even
        // while samples arrive.
        let count = buckets.iter().map(|(_, count)| count).sum();
        DistributionSnapshot {
            buckets,
            count,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// What a server is doing, as `srvr`/`stat` (`Mode:`) and `mntr` (`zk_server_state`) report
/// it. ZooKeeper's `ServerStats.getServerState` gives the serving server's `getState()`:
/// `standalone`, `leader`, `follower`, `observer`; a looking server is not serving and the
/// four-letter words say so instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    Standalone,
    Looking,
    Leader,
    Follower,
    Observer,
    /// An ensemble member without a quorum serving read-only clients
    /// (ReadOnlyZooKeeperServer.getState: `read-only`).
    ReadOnly,
}

impl ServerMode {
    /// ZooKeeper's name for the state (`Mode: leader`, `zk_server_state\tleader`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::Looking => "looking",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::ReadOnly => "read-only",
        }
    }

    /// Whether clients are served (ZooKeeper's `zkServer.isRunning()` for the 4lw).
    pub fn is_serving(self) -> bool {
        self != ServerMode::Looking
    }
}

impl From<ServerMode> for u8 {
    fn from(mode: ServerMode) -> u8 {
        match mode {
            ServerMode::Standalone => 0,
            ServerMode::Looking => 1,
            ServerMode::Leader => 2,
            ServerMode::Follower => 3,
            ServerMode::Observer => 4,
            ServerMode::ReadOnly => 5,
        }
    }
}

impl From<u8> for ServerMode {
    /// An unknown value reads as `Looking` (not serving): only [`QuorumStats::set_mode`]
    /// stores, so it cannot happen, and claiming to serve would be the worse mistake.
    fn from(value: u8) -> ServerMode {
        match value {
            0 => ServerMode::Standalone,
            2 => ServerMode::Leader,
            3 => ServerMode::Follower,
            4 => ServerMode::Observer,
            5 => ServerMode::ReadOnly,
            _ => ServerMode::Looking,
        }
    }
}

/// Ensemble figures for the four-letter words. The pipeline (which owns the ZAB peer) stores
/// them; readers may see them slightly stale. Names follow ZooKeeper's `mntr` gauges
/// (LeaderZooKeeperServer.registerMetrics, QuorumPeer).
#[derive(Debug)]
pub struct QuorumStats {
    /// A [`ServerMode`] as u8; read and written through [`QuorumStats::mode`] and
    /// [`QuorumStats::set_mode`].
    pub mode: AtomicU8,
    /// Leader: learners connected (`zk_learners`, `Leader.getLearners`).
    pub learners: AtomicUsize,
    /// Leader: synced voting followers (`zk_synced_followers`, `getForwardingFollowers`).
    pub synced_followers: AtomicUsize,
    /// Leader: synced followers that do not vote (`zk_synced_non_voting_followers`).
    pub synced_non_voting_followers: AtomicUsize,
    /// Leader: synced observers (`zk_synced_observers`).
    pub synced_observers: AtomicUsize,
    /// Leader: `sync` requests waiting for their commit (`zk_pending_syncs`).
    pub pending_syncs: AtomicUsize,
    /// Voting members of the ensemble (`zk_quorum_size`, `QuorumPeer.getQuorumSize`: the
    /// number of participants, not the majority).
    pub quorum_size: AtomicUsize,
    /// The current leader's server id; 0 = none known.
    pub leader_id: AtomicU64,
    /// How long the last election took, in ms (the last `zk_*_election_time` sample).
    pub election_time_ms: AtomicU64,
    /// Elections completed, and their total, minimum and maximum duration (ZooKeeper's
    /// `election_time` summary: `zk_avg/min/max/cnt/sum_election_time`).
    pub election_count: AtomicU64,
    pub election_time_total_ms: AtomicU64,
    pub election_time_min_ms: AtomicU64,
    pub election_time_max_ms: AtomicU64,
    /// Leader: when it started leading, in ms since the Unix epoch; 0 = not leading
    /// (`zk_leader_uptime` is now minus this).
    pub leader_started_ms: AtomicI64,
    /// Leader: size in bytes of the last, smallest and largest proposal sent; -1 = none yet
    /// (ZooKeeper's `BufferStats`: `Proposal sizes last/min/max` in `stat`,
    /// `zk_last/min/max_proposal_size` in `mntr`).
    pub proposal_bytes_last: AtomicI64,
    pub proposal_bytes_min: AtomicI64,
    pub proposal_bytes_max: AtomicI64,
}

impl Default for QuorumStats {
    fn default() -> Self {
        QuorumStats {
            mode: AtomicU8::new(ServerMode::Standalone.into()),
            learners: AtomicUsize::new(0),
            synced_followers: AtomicUsize::new(0),
            synced_non_voting_followers: AtomicUsize::new(0),
            synced_observers: AtomicUsize::new(0),
            pending_syncs: AtomicUsize::new(0),
            quorum_size: AtomicUsize::new(0),
            leader_id: AtomicU64::new(0),
            election_time_ms: AtomicU64::new(0),
            election_count: AtomicU64::new(0),
            election_time_total_ms: AtomicU64::new(0),
            election_time_min_ms: AtomicU64::new(u64::MAX),
            election_time_max_ms: AtomicU64::new(0),
            leader_started_ms: AtomicI64::new(0),
            proposal_bytes_last: AtomicI64::new(-1),
            proposal_bytes_min: AtomicI64::new(-1),
            proposal_bytes_max: AtomicI64::new(-1),
        }
    }
}

impl QuorumStats {
    pub fn mode(&self) -> ServerMode {
        ServerMode::from(self.mode.load(Ordering::Relaxed))
    }

    pub fn set_mode(&self, mode: ServerMode) {
        self.mode.store(mode.into(), Ordering::Relaxed);
    }

    /// Records a finished election of `duration_ms`.
    pub fn record_election(&self, duration_ms: u64) {
        self.election_time_ms.store(duration_ms, Ordering::Relaxed);
        self.election_count.fetch_add(1, Ordering::Relaxed);
        self.election_time_total_ms
            .fetch_add(duration_ms, Ordering::Relaxed);
        self.election_time_min_ms
            .fetch_min(duration_ms, Ordering::Relaxed);
        self.election_time_max_ms
            .fetch_max(duration_ms, Ordering::Relaxed);
    }

    /// (count, avg, min, max, sum) of election durations in ms; zeros before the first.
    pub fn election_summary(&self) -> (u64, f64, u64, u64, u64) {
        let count = self.election_count.load(Ordering::Relaxed);
        if count == 0 {
            return (0, 0.0, 0, 0, 0);
        }
        let total = self.election_time_total_ms.load(Ordering::Relaxed);
        (
            count,
            total as f64 / count as f64,
            self.election_time_min_ms.load(Ordering::Relaxed),
            self.election_time_max_ms.load(Ordering::Relaxed),
            total,
        )
    }

    /// Records the size of a proposal the leader sent.
    pub fn record_proposal_bytes(&self, bytes: i64) {
        self.proposal_bytes_last.store(bytes, Ordering::Relaxed);
        let _ = self
            .proposal_bytes_min
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |min| {
                (min < 0 || bytes < min).then_some(bytes)
            });
        self.proposal_bytes_max.fetch_max(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_sizes_keep_the_last_the_smallest_and_the_largest_until_reset() {
        let stats = ServerStats::default();
        assert_eq!(stats.response_sizes(), (-1, -1, -1));
        for size in [16, 4, 300, 20] {
            stats.record_response_size(size);
        }
        assert_eq!(stats.response_sizes(), (20, 4, 300));
        stats.reset();
        assert_eq!(stats.response_sizes(), (-1, -1, -1));
        stats.record_response_size(7);
        assert_eq!(stats.response_sizes(), (7, 7, 7));
    }

    #[test]
    fn syncs_over_the_warning_threshold_are_counted_in_whole_milliseconds() {
        let stats = ServerStats::default();
        stats.record_log_batch(3, 999, 0); // 0 ms: not over a 0 ms threshold
        stats.record_log_batch(3, 1_000, 0);
        stats.record_log_batch(1, 1_000_999, 1000);
        stats.record_log_batch(1, 1_001_000, 1000);
        assert_eq!(stats.fsync_threshold_exceeded.load(Ordering::Relaxed), 2);
        assert_eq!(stats.log_records.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn distribution_buckets_are_upper_bounds_and_the_count_their_sum() {
        let distribution = Distribution::new(&[1, 10]);
        for value in [0, 1, 2, 10, 11, 500] {
            distribution.record(value);
        }
        let snapshot = distribution.snapshot();
        assert_eq!(
            snapshot.buckets,
            vec![(1.0, 2), (10.0, 2), (f64::INFINITY, 2)]
        );
        assert_eq!((snapshot.count, snapshot.sum), (6, 524));
    }

    #[test]
    fn server_mode_round_trips_through_u8_and_defaults_to_standalone() {
        let stats = ServerStats::default();
        assert_eq!(stats.quorum.mode(), ServerMode::Standalone);
        for mode in [
            ServerMode::Standalone,
            ServerMode::Looking,
            ServerMode::Leader,
            ServerMode::Follower,
            ServerMode::Observer,
            ServerMode::ReadOnly,
        ] {
            assert_eq!(ServerMode::from(u8::from(mode)), mode);
            stats.quorum.set_mode(mode);
            assert_eq!(stats.quorum.mode(), mode);
            assert_eq!(mode.is_serving(), mode != ServerMode::Looking);
        }
        assert_eq!(ServerMode::from(200), ServerMode::Looking);
        assert_eq!(ServerMode::Follower.as_str(), "follower");
        assert_eq!(ServerMode::ReadOnly.as_str(), "read-only");
    }

    #[test]
    fn election_and_proposal_figures_summarise_like_zookeeper() {
        let quorum = QuorumStats::default();
        assert_eq!(quorum.election_summary(), (0, 0.0, 0, 0, 0));
        quorum.record_election(300);
        quorum.record_election(100);
        assert_eq!(quorum.election_summary(), (2, 200.0, 100, 300, 400));
        assert_eq!(quorum.election_time_ms.load(Ordering::Relaxed), 100);
        // BufferStats starts at -1/-1/-1.
        assert_eq!(quorum.proposal_bytes_min.load(Ordering::Relaxed), -1);
        quorum.record_proposal_bytes(50);
        quorum.record_proposal_bytes(20);
        quorum.record_proposal_bytes(80);
        let figures = [
            quorum.proposal_bytes_last.load(Ordering::Relaxed),
            quorum.proposal_bytes_min.load(Ordering::Relaxed),
            quorum.proposal_bytes_max.load(Ordering::Relaxed),
        ];
        assert_eq!(figures, [80, 20, 80]);
    }
}
