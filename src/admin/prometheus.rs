//! The Prometheus endpoint (`GET /metrics`), as ZooKeeper's PrometheusMetricsProvider exposes
//! its metrics: ZooKeeper's names (the `mntr` keys without `zk_`), gauges for its gauges, and
//! for its summaries (`readlatency`, `updatelatency`, `fsynctime`, `proposal_latency`,
//! `sync_processor_batch_size`, `election_time`) the same `_sum` and `_count` series, as
//! histograms: the prometheus-client crate has no summary type, and buckets let
//! `histogram_quantile` stand in for the Java client's quantile lines. ringkeeper's own series
//! carry the `ringkeeper_` prefix. The text is encoded by prometheus-client, from the rows
//! `mntr` prints and the counters in `metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tracing::warn;

use super::AdminContext;
use crate::metrics::DistributionSnapshot;

/// The `mntr` rows that are not numbers or that ZooKeeper does not export as metrics
/// (`zk_version`, the states, the hex zxid), and ringkeeper's own rows, exported below
/// under their own names and types.
const NOT_GAUGES: &[&str] = &[
    "zk_version",
    "zk_server_state",
    "zk_peer_state",
    "zk_last_zxid",
    "zk_observer_master_id",
    "ringkeeper_txnlog_batches",
    "ringkeeper_txnlog_records",
    "ringkeeper_digests_compared",
    // The election-time summary's figures: exported as the election_time histogram's
    // _sum and _count below, as ZooKeeper's summary is.
    "zk_avg_election_time",
    "zk_min_election_time",
    "zk_max_election_time",
    "zk_cnt_election_time",
    "zk_sum_election_time",
    "zk_admission_queue",
];

struct ServerCollector {
    context: Arc<AdminContext>,
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ServerCollector")
    }
}

/// A histogram from a [`DistributionSnapshot`].
#[derive(Debug)]
struct ConstHistogram(DistributionSnapshot);

impl EncodeMetric for ConstHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum as f64,
            self.0.count,
            &self.0.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    snapshot: DistributionSnapshot,
) -> Result<(), std::fmt::Error> {
    ConstHistogram(snapshot).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Histogram,
    )?)
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let context = &self.context;
        let stats = &context.stats;
        let word_context = context.word_context();
        let rows = futures_lite::future::block_on(crate::fourlw::monitor_rows(&word_context));
        for (key, value) in &rows {
            if NOT_GAUGES.contains(key) {
                continue;
            }
            let Ok(number) = value.parse::<f64>() else {
                continue;
            };
            let name = key.strip_prefix("zk_").unwrap_or(key);
            // ZooKeeper's help text is the metric's name.
            gauge(&mut encoder, name, name, number)?;
        }
        histogram(
            &mut encoder,
            "readlatency",
            "readlatency",
            stats.read_latency_ms.snapshot(),
        )?;
        histogram(
            &mut encoder,
            "updatelatency",
            "updatelatency",
            stats.update_latency_ms.snapshot(),
        )?;
        histogram(
            &mut encoder,
            "fsynctime",
            "fsynctime",
            stats.fsync_time_ms.snapshot(),
        )?;
        histogram(
            &mut encoder,
            "proposal_latency",
            "proposal_latency",
            stats.proposal_latency_ms.snapshot(),
        )?;
        histogram(
            &mut encoder,
            "sync_processor_batch_size",
            "sync_processor_batch_size",
            stats.log_batch_records.snapshot(),
        )?;
        let (count, _, _, _, sum) = stats.quorum.election_summary();
        ConstHistogram(DistributionSnapshot {
            buckets: vec![(f64::INFINITY, count)],
            count,
            sum,
        })
        .encode(encoder.encode_descriptor(
            "election_time",
            "election_time",
            None,
            MetricType::Histogram,
        )?)?;
        // ringkeeper's own. The group commits as a histogram of their sizes: its _count is
        // the number of fdatasyncs, its _sum the transactions they made durable (counters
        // would be encoded with OpenMetrics' _total, which the Prometheus text format that
        // `promtool check metrics` reads does not pair with their HELP line).
        histogram(
            &mut encoder,
            "ringkeeper_txnlog_batch_records",
            "Transactions per group commit (one fdatasync each)",
            stats.log_batch_records.snapshot(),
        )?;
        gauge(
            &mut encoder,
            "ringkeeper_admission_queue",
            "Requests a leader holds while its proposal window is full",
            stats
                .admission_queue
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        )?;
        gauge(
            &mut encoder,
            "ringkeeper_digests_compared",
            "Committed txns whose tree digest this learner compared with its leader's",
            stats
                .digests_compared
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        )?;
        let per_core = context.presence.connections_per_core();
        gauge(
            &mut encoder,
            "ringkeeper_cores",
            "Cores serving client connections",
            per_core.len() as f64,
        )?;
        let mut family = encoder.encode_descriptor(
            "ringkeeper_core_connections",
            "Client connections open on each core",
            None,
            MetricType::Gauge,
        )?;
        for (core, connections) in per_core.iter().enumerate() {
            let labels = [("core", core.to_string())];
            ConstGauge::new(*connections as f64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The registry of one server: a collector that reads the counters at each scrape.
pub fn registry(context: Arc<AdminContext>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ServerCollector { context }));
    registry
}

/// The exposition text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        warn!("encoding the metrics: {error}");
    }
    text
}

/// The endpoint's loop: `/metrics` (and `/`, as the Java client's servlet context answers
/// there too) on this thread.
pub fn serve(server: tiny_http::Server, context: Arc<AdminContext>) {
    let registry = registry(context);
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let reply = if path == "/metrics" && *request.method() == tiny_http::Method::Get {
            let header = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
            );
            let mut reply = tiny_http::Response::from_string(render(&registry));
            if let Ok(header) = header {
                reply = reply.with_header(header);
            }
            reply
        } else {
            tiny_http::Response::from_string("not found\n").with_status_code(404)
        };
        if let Err(error) = request.respond(reply) {
            warn!("metrics endpoint: answering {path}: {error}");
        }
    }
}
