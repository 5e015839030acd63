//! [pure] What a run counts: latencies per operation (HdrHistogram, nanoseconds), errors by
//! kind with a few samples, and the report (text and JSON).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (60 s); longer ones are clamped to it.
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// Error messages kept for the report, beyond the counts by kind.
const ERROR_SAMPLES_MAX: usize = 10;

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits from 1 ns to 60 s; the bounds are constants, valid by construction.
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).unwrap_or_else(|_| unreachable!())
}

fn latency_ns(latency: Duration) -> u64 {
    (latency.as_nanos() as u64).clamp(1, LATENCY_MAX_NS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Set,
    Create,
    Get,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Set => "set",
            Kind::Create => "create",
            Kind::Get => "get",
        }
    }
}

pub struct Stats {
    histograms: BTreeMap<Kind, Histogram<u64>>,
    /// Time from send to the error, for requests that failed (all phases): tells a request the
    /// server never answered (the client gives up on the connection after 8 of its ticks) from a
    /// connection the server closed.
    failed: Option<Histogram<u64>>,
    pub operations: u64,
    /// Every error, warm-up and window alike (an error is never a warm-up artefact to ignore).
    pub errors: u64,
    pub errors_in_window: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Errors of the load by the server the session was connected to (setup, cleanup and task
    /// failures have none).
    pub errors_by_server: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            histograms: BTreeMap::new(),
            failed: None,
            operations: 0,
            errors: 0,
            errors_in_window: 0,
            errors_by_kind: BTreeMap::new(),
            errors_by_server: BTreeMap::new(),
            error_samples: Vec::new(),
        }
    }

    pub fn record(&mut self, kind: Kind, latency: Duration) {
        let histogram = self.histograms.entry(kind).or_insert_with(new_histogram);
        histogram.saturating_record(latency_ns(latency));
        self.operations += 1;
    }

    /// A request that failed after `latency` (its error is counted by `error`).
    pub fn record_failed(&mut self, latency: Duration) {
        self.failed
            .get_or_insert_with(new_histogram)
            .saturating_record(latency_ns(latency));
    }

    pub fn failed_row(&self, window: Duration) -> Option<LatencyRow> {
        self.failed
            .as_ref()
            .map(|h| LatencyRow::from_histogram("failed", h, window))
    }

    /// `what` names the failure's kind (the client's error variant, or a check that failed);
    /// `server` the address of the session's server.
    pub fn error(&mut self, what: &str, server: Option<&str>, detail: String, in_window: bool) {
        self.errors += 1;
        if let Some(server) = server {
            *self.errors_by_server.entry(server.to_string()).or_insert(0) += 1;
        }
        if in_window {
            self.errors_in_window += 1;
        }
        *self.errors_by_kind.entry(what.to_string()).or_insert(0) += 1;
        if self.error_samples.len() < ERROR_SAMPLES_MAX {
            self.error_samples.push(detail);
        }
    }

    pub fn latency_rows(&self, window: Duration) -> Vec<LatencyRow> {
        self.histograms
            .iter()
            .map(|(kind, h)| LatencyRow::from_histogram(kind.name(), h, window))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub op: String,
    pub count: u64,
    pub ops_per_second: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencyRow {
    fn from_histogram(op: &str, h: &Histogram<u64>, window: Duration) -> LatencyRow {
        let us = |ns: u64| ns as f64 / 1_000.0;
        LatencyRow {
            op: op.to_string(),
            count: h.len(),
            ops_per_second: h.len() as f64 / window.as_secs_f64().max(1e-9),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    pub pid: u32,
    pub cpu_seconds: f64,
}

/// The report; the JSON has exactly these fields (bench/README.md).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generator: &'static str,
    pub client_library: &'static str,
    pub op: String,
    pub read_percent: u32,
    pub servers: Vec<String>,
    pub sessions: usize,
    pub inflight: usize,
    pub value_size: usize,
    pub znodes: usize,
    pub warmup_seconds: f64,
    /// The measured window as the generator timed it (between the two CPU readings).
    pub window_seconds: f64,
    pub setup_seconds: f64,
    pub operations: u64,
    pub ops_per_second: f64,
    pub errors: u64,
    pub errors_in_window: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub errors_by_server: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
    pub connect_failures: u64,
    pub sessions_lost: u64,
    /// Requests still unanswered when the drain bound ran out after the window.
    pub unanswered_at_end: u64,
    pub cleanup_errors: u64,
    pub latencies: Vec<LatencyRow>,
    /// Send-to-error time of the requests that failed, warm-up included (None if none did).
    pub failed_latency: Option<LatencyRow>,
    pub server_cpu: Vec<ProcessCpu>,
    /// Sum over `server_cpu`; None when no --server-pid was given or one could not be read.
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_us_per_op: Option<f64>,
    pub client_cpu_seconds: f64,
    pub client_cpu_us_per_op: Option<f64>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.errors == 0
            && self.connect_failures == 0
            && self.sessions_lost == 0
            && self.unanswered_at_end == 0
            && self.cleanup_errors == 0
            && self.operations > 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "zk-load {} against {}: {} sessions x {} in flight, {} B values, {} znodes ({} on tokio, 1 thread)\n",
            self.op,
            self.servers.join(","),
            self.sessions,
            self.inflight,
            self.value_size,
            self.znodes,
            self.client_library,
        );
        out.push_str(&format!(
            "{:<8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "count", "ops/s", "p50 us", "p99 us", "p99.9 us", "max us", "mean us"
        ));
        for row in &self.latencies {
            out.push_str(&format!(
                "{:<8} {:>10} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}\n",
                row.op,
                row.count,
                row.ops_per_second,
                row.p50_us,
                row.p99_us,
                row.p999_us,
                row.max_us,
                row.mean_us
            ));
        }
        out.push_str(&format!(
            "total: {} ops in {:.2} s = {:.0} ops/s; errors {} ({} in the window) {:?} by server {:?}; connect failures {}; sessions lost {}; unanswered at end {}; cleanup errors {}\n",
            self.operations,
            self.window_seconds,
            self.ops_per_second,
            self.errors,
            self.errors_in_window,
            self.errors_by_kind,
            self.errors_by_server,
            self.connect_failures,
            self.sessions_lost,
            self.unanswered_at_end,
            self.cleanup_errors,
        ));
        match (self.server_cpu_seconds, self.server_cpu_us_per_op) {
            (Some(seconds), Some(per_op)) => out.push_str(&format!(
                "server CPU: {:.3} s over {} process(es) = {:.1} us per op; client CPU {:.3} s = {:.1} us per op\n",
                seconds,
                self.server_cpu.len(),
                per_op,
                self.client_cpu_seconds,
                self.client_cpu_us_per_op.unwrap_or(0.0),
            )),
            _ => out.push_str(&format!(
                "server CPU: not measured (no --server-pid); client CPU {:.3} s\n",
                self.client_cpu_seconds
            )),
        }
        if let Some(row) = &self.failed_latency {
            out.push_str(&format!(
                "failed requests: {}, send to error p50 {:.0} us, p99 {:.0} us, max {:.0} us\n",
                row.count, row.p50_us, row.p99_us, row.max_us
            ));
        }
        for sample in &self.error_samples {
            out.push_str(&format!("  error: {sample}\n"));
        }
        if !self.ok() {
            out.push_str("RUN HAD ERRORS (exit status 3)\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_reported_in_microseconds_per_op() {
        let mut s = Stats::new();
        for i in 1..=1000u64 {
            s.record(Kind::Set, Duration::from_micros(i));
        }
        s.record(Kind::Get, Duration::from_micros(7));
        let rows = s.latency_rows(Duration::from_secs(2));
        assert_eq!(rows.len(), 2);
        let set = rows.iter().find(|r| r.op == "set").unwrap();
        assert_eq!(set.count, 1000);
        assert!((set.ops_per_second - 500.0).abs() < 1e-9);
        assert!((set.p50_us - 500.0).abs() < 1.0, "{}", set.p50_us);
        assert!((set.p99_us - 990.0).abs() < 1.5, "{}", set.p99_us);
        assert_eq!(s.operations, 1001);
    }

    #[test]
    fn errors_are_counted_by_kind_with_bounded_samples() {
        let mut s = Stats::new();
        for i in 0..20 {
            s.error(
                "ConnectionLoss",
                Some("127.0.0.1:1"),
                format!("sample {i}"),
                i % 2 == 0,
            );
        }
        assert_eq!((s.errors, s.errors_in_window), (20, 10));
        assert_eq!(s.errors_by_kind["ConnectionLoss"], 20);
        assert_eq!(s.errors_by_server["127.0.0.1:1"], 20);
        assert_eq!(s.error_samples.len(), ERROR_SAMPLES_MAX);
    }
}
