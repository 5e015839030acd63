//! [pure] Latency and outcome accounting. Each generator thread owns a `Stats`; they are
//! merged at the end, so recording never takes a lock.
//!
//! Latencies are recorded in nanoseconds into HdrHistograms with 3 significant digits
//! (relative error below 0.1%) up to one hour; a larger value is clamped to the top.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::verify::VerifyError;

const HIGHEST_TRACKABLE_NS: u64 = 3_600_000_000_000;
/// At most this many verification error messages are kept for the report.
const VERIFICATION_SAMPLES_MAX: usize = 10;

/// What one latency sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Get,
    Set,
    Create,
    GetChildren,
    Multi,
    /// ephemeral-churn: connect, create an ephemeral, close the session.
    ChurnCycle,
    /// watch-fanout: from the write being sent until every watcher has its event.
    Fanout,
    /// watch-fanout: one watcher's notification delay after the write was sent.
    Notification,
    /// session-storm: one session's connect (TCP connect to ConnectResponse).
    Connect,
    /// session-storm: from the first connect of a round until all sessions are connected.
    StormRound,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Create => "create",
            OpKind::GetChildren => "get-children",
            OpKind::Multi => "multi",
            OpKind::ChurnCycle => "churn-cycle",
            OpKind::Fanout => "fanout",
            OpKind::Notification => "notification",
            OpKind::Connect => "connect",
            OpKind::StormRound => "storm-round",
        }
    }

    /// Whether the kind counts towards the run's operations per second. Per-watcher
    /// notifications and per-session connects are parts of a fanout or storm round.
    pub fn counts_as_operation(self) -> bool {
        !matches!(self, OpKind::Notification | OpKind::Connect)
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant figures over [1 ns, 1 h] is a valid configuration.
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_NS, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

#[derive(Debug, Clone)]
pub struct Stats {
    histograms: BTreeMap<OpKind, Histogram<u64>>,
    /// Error replies by ZooKeeper error code, counted in the measured window.
    pub errors_by_code: BTreeMap<i32, u64>,
    pub verification_errors: u64,
    pub verification_samples: Vec<String>,
    pub sessions_lost: u64,
    pub connect_failures: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            histograms: BTreeMap::new(),
            errors_by_code: BTreeMap::new(),
            verification_errors: 0,
            verification_samples: Vec::new(),
            sessions_lost: 0,
            connect_failures: 0,
        }
    }

    pub fn record(&mut self, kind: OpKind, latency: Duration) {
        let nanos = (latency.as_nanos() as u64).clamp(1, HIGHEST_TRACKABLE_NS);
        self.histograms
            .entry(kind)
            .or_insert_with(new_histogram)
            .saturating_record(nanos);
    }

    pub fn error(&mut self, code: i32) {
        *self.errors_by_code.entry(code).or_insert(0) += 1;
    }

    pub fn verification_error(&mut self, context: &str, error: &VerifyError) {
        self.verification_errors += 1;
        if self.verification_samples.len() < VERIFICATION_SAMPLES_MAX {
            self.verification_samples
                .push(format!("{context}: {error}"));
        }
    }

    #[cfg(test)]
    pub fn count(&self, kind: OpKind) -> u64 {
        self.histograms.get(&kind).map_or(0, |h| h.len())
    }

    pub fn merge(&mut self, other: &Stats) {
        for (kind, histogram) in &other.histograms {
            let mine = self.histograms.entry(*kind).or_insert_with(new_histogram);
            // Same bounds on both sides, so adding cannot fail; saturate if it ever did.
            if mine.add(histogram).is_err() {
                for value in histogram.iter_recorded() {
                    mine.saturating_record_n(value.value_iterated_to(), value.count_at_value());
                }
            }
        }
        for (code, count) in &other.errors_by_code {
            *self.errors_by_code.entry(*code).or_insert(0) += count;
        }
        self.verification_errors += other.verification_errors;
        for sample in &other.verification_samples {
            if self.verification_samples.len() < VERIFICATION_SAMPLES_MAX {
                self.verification_samples.push(sample.clone());
            }
        }
        self.sessions_lost += other.sessions_lost;
        self.connect_failures += other.connect_failures;
    }

    /// The report of a run whose measured window lasted `window`.
    pub fn summary(&self, window: Duration) -> Summary {
        let seconds = window.as_secs_f64().max(1e-9);
        let latencies: Vec<KindSummary> = self
            .histograms
            .iter()
            .map(|(kind, h)| KindSummary {
                op: kind.name().to_owned(),
                count: h.len(),
                ops_per_second: h.len() as f64 / seconds,
                mean_us: h.mean() / 1e3,
                p50_us: h.value_at_quantile(0.50) as f64 / 1e3,
                p90_us: h.value_at_quantile(0.90) as f64 / 1e3,
                p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
                p999_us: h.value_at_quantile(0.999) as f64 / 1e3,
                max_us: h.max() as f64 / 1e3,
                cdf_us: cdf_points(h),
            })
            .collect();
        let operations: u64 = self
            .histograms
            .iter()
            .filter(|(kind, _)| kind.counts_as_operation())
            .map(|(_, h)| h.len())
            .sum();
        Summary {
            window_seconds: seconds,
            operations,
            ops_per_second: operations as f64 / seconds,
            errors: self.errors_by_code.values().sum(),
            errors_by_code: self
                .errors_by_code
                .iter()
                .map(|(code, count)| (format!("{code} ({})", error_name(*code)), *count))
                .collect(),
            verification_errors: self.verification_errors,
            verification_samples: self.verification_samples.clone(),
            sessions_lost: self.sessions_lost,
            connect_failures: self.connect_failures,
            latencies,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub op: String,
    pub count: u64,
    pub ops_per_second: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// The latency distribution as (quantile, latency in us) at the fixed quantiles of
    /// `CDF_QUANTILES`, for plotting a CDF (scripts/bench_vs_zookeeper.py).
    pub cdf_us: Vec<(f64, f64)>,
}

/// Tail quantiles reported in `cdf_us` after every percent 0.00 .. 0.99; 1.0 is the maximum.
/// A fixed list keeps the report's size bounded whatever the sample count.
pub const CDF_TAIL_QUANTILES: [f64; 9] = [
    0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999, 0.99995, 0.99999, 1.0,
];

/// (quantile, latency in microseconds) at 0.00, 0.01 .. 0.99 and `CDF_TAIL_QUANTILES`.
pub fn cdf_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    (0..100)
        .map(|percent| f64::from(percent) / 100.0)
        .chain(CDF_TAIL_QUANTILES)
        .map(|quantile| {
            let value_ns = if quantile >= 1.0 {
                histogram.max()
            } else {
                histogram.value_at_quantile(quantile)
            };
            (quantile, value_ns as f64 / 1e3)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub window_seconds: f64,
    /// Successful, verified operations completed in the window.
    pub operations: u64,
    pub ops_per_second: f64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub verification_errors: u64,
    pub verification_samples: Vec<String>,
    pub sessions_lost: u64,
    pub connect_failures: u64,
    pub latencies: Vec<KindSummary>,
}

impl Summary {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<14} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
            "op", "count", "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "mean us"
        ));
        for kind in &self.latencies {
            out.push_str(&format!(
                "{:<14} {:>10} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1}\n",
                kind.op,
                kind.count,
                kind.ops_per_second,
                kind.p50_us,
                kind.p90_us,
                kind.p99_us,
                kind.p999_us,
                kind.max_us,
                kind.mean_us
            ));
        }
        out.push_str(&format!(
            "total: {} ops in {:.2} s = {:.0} ops/s; errors {}; verification_errors {}; sessions lost {}; connect failures {}\n",
            self.operations,
            self.window_seconds,
            self.ops_per_second,
            self.errors,
            self.verification_errors,
            self.sessions_lost,
            self.connect_failures
        ));
        for (code, count) in &self.errors_by_code {
            out.push_str(&format!("  error {code}: {count}\n"));
        }
        for sample in &self.verification_samples {
            out.push_str(&format!("  verification: {sample}\n"));
        }
        if self.verification_errors > 0 {
            out.push_str("INVALID RUN: the server returned answers that fail verification\n");
        }
        out
    }
}

/// KeeperException.Code names for the report.
pub fn error_name(code: i32) -> &'static str {
    match code {
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -12 => "UnknownSession",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -124 => "SessionClosedRequireSaslAuth",
        -125 => "QuotaExceeded",
        -127 => "Throttled",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_recorded_latencies() {
        let mut stats = Stats::new();
        for micros in 1..=1000u64 {
            stats.record(OpKind::Get, Duration::from_micros(micros));
        }
        let summary = stats.summary(Duration::from_secs(2));
        let get = &summary.latencies[0];
        assert_eq!(get.op, "get");
        assert_eq!(get.count, 1000);
        assert_eq!(summary.operations, 1000);
        assert!((summary.ops_per_second - 500.0).abs() < 1e-9);
        // 3 significant digits: within 0.1% of the exact order statistic.
        assert!((get.p50_us - 500.0).abs() <= 0.5, "{}", get.p50_us);
        assert!((get.p90_us - 900.0).abs() <= 0.9, "{}", get.p90_us);
        assert!((get.p99_us - 990.0).abs() <= 1.0, "{}", get.p99_us);
        assert!((get.p999_us - 999.0).abs() <= 1.0, "{}", get.p999_us);
        assert!((get.max_us - 1000.0).abs() <= 1.0, "{}", get.max_us);
        // The CDF: every percent, then the tail, ending at the maximum; never decreasing.
        assert_eq!(get.cdf_us.len(), 100 + CDF_TAIL_QUANTILES.len());
        assert_eq!(get.cdf_us[0].0, 0.0);
        assert!(
            (get.cdf_us[50].1 - 500.0).abs() <= 0.5,
            "{:?}",
            get.cdf_us[50]
        );
        assert_eq!(get.cdf_us.last().map(|p| p.1), Some(get.max_us));
        assert!(get
            .cdf_us
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn merge_adds_counts_errors_and_keeps_bounded_samples() {
        let mut left = Stats::new();
        let mut right = Stats::new();
        left.record(OpKind::Set, Duration::from_micros(10));
        right.record(OpKind::Set, Duration::from_micros(30));
        right.record(OpKind::Get, Duration::from_micros(5));
        left.error(-101);
        right.error(-101);
        right.error(-110);
        for _ in 0..8 {
            left.verification_error("get", &VerifyError::Stat("x"));
            right.verification_error("get", &VerifyError::Stat("y"));
        }
        left.merge(&right);
        assert_eq!(left.count(OpKind::Set), 2);
        assert_eq!(left.count(OpKind::Get), 1);
        assert_eq!(left.errors_by_code.get(&-101), Some(&2));
        assert_eq!(left.errors_by_code.get(&-110), Some(&1));
        assert_eq!(left.verification_errors, 16);
        assert_eq!(left.verification_samples.len(), VERIFICATION_SAMPLES_MAX);
        let summary = left.summary(Duration::from_secs(1));
        assert_eq!(summary.errors, 3);
        assert!(summary.errors_by_code.contains_key("-101 (NoNode)"));
    }

    #[test]
    fn parts_of_rounds_do_not_count_as_operations() {
        let mut stats = Stats::new();
        stats.record(OpKind::Fanout, Duration::from_millis(1));
        for _ in 0..10 {
            stats.record(OpKind::Notification, Duration::from_micros(500));
        }
        assert_eq!(stats.summary(Duration::from_secs(1)).operations, 1);
    }

    #[test]
    fn huge_and_zero_latencies_are_clamped_not_lost() {
        let mut stats = Stats::new();
        stats.record(OpKind::Get, Duration::ZERO);
        stats.record(OpKind::Get, Duration::from_secs(10_000));
        assert_eq!(stats.count(OpKind::Get), 2);
    }
}
