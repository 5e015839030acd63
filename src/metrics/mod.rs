//! Server-wide counters for the four-letter words and `mntr`. Plain atomics: every core and
//! the pipeline update them without locks; readers see a value that is at most slightly stale.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding_requests: AtomicI64,
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
    /// Sessions by expiry deadline (wall-clock ms), refreshed by the session owner about once
    /// a second, for `dump`. Admin data only: never touched on the request path.
    session_sets: Mutex<Vec<(i64, Vec<i64>)>>,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding_requests: AtomicI64::new(0),
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

    /// `srst`: resets the request statistics.
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency_count.store(0, Ordering::Relaxed);
        self.latency_total_ms.store(0, Ordering::Relaxed);
        self.latency_min_ms.store(u64::MAX, Ordering::Relaxed);
        self.latency_max_ms.store(0, Ordering::Relaxed);
    }
}
