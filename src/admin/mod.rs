//! [io] The operator's HTTP endpoints, each on a thread of its own, away from the cores: the
//! AdminServer (ZooKeeper's JettyAdminServer: `GET <admin.commandURL>/<command>`, JSON) and the
//! Prometheus endpoint (PrometheusMetricsProvider: `GET /metrics`). Both answer from the same
//! counters and rows as the four-letter words (`metrics::ServerStats`, `fourlw`), the newest
//! published tree version and the cores' admin queues.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::Config;
use crate::fourlw::{AdminHub, WordContext};
use crate::metrics::ServerStats;
use crate::pipeline::CorePresence;
use crate::tree::TreeVersion;

pub mod commands;
pub mod prometheus;

/// What both endpoints read.
pub struct AdminContext {
    pub config: Arc<Config>,
    pub stats: Arc<ServerStats>,
    pub hub: AdminHub,
    pub presence: Arc<CorePresence>,
    /// The pipeline, asked for the durable state by the `snapshot` command.
    pub pipeline: crossbeam_channel::Sender<crate::pipeline::PipelineInput>,
    /// The `snapshot` command's rate limit (one per `admin.rateLimiterIntervalInMS`
    /// microseconds, as ZooKeeper's SnapshotCommand reads the key).
    pub snapshot_limiter: std::sync::Mutex<commands::RateLimiter>,
    /// The `restore` command's rate limit (one per `admin.rateLimiterIntervalInMS`
    /// milliseconds, as ZooKeeper's RestoreCommand reads the key).
    pub restore_limiter: std::sync::Mutex<commands::RateLimiter>,
}

impl AdminContext {
    /// The newest published tree version (what a read on a core would see now).
    pub fn view(&self) -> Arc<TreeVersion> {
        self.presence
            .latest()
            .unwrap_or_else(|| Arc::new(TreeVersion::default()))
    }

    pub fn word_context(&self) -> WordContext<'_> {
        WordContext {
            config: &self.config,
            stats: &self.stats,
            admin: &self.hub,
            view: self.view(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} ({what}): {reason}")]
pub struct AdminError {
    pub address: SocketAddr,
    pub what: &'static str,
    pub reason: String,
}

/// Requests waiting for the endpoint's thread, at most (tiny_http's own accept threads read
/// the request heads; one admin thread answers them in turn).
fn bind(address: SocketAddr, what: &'static str) -> Result<tiny_http::Server, AdminError> {
    tiny_http::Server::http(address).map_err(|error| AdminError {
        address,
        what,
        reason: error.to_string(),
    })
}

/// Starts the AdminServer (when `admin.enableServer`) and the Prometheus endpoint (when
/// `metricsProvider.className` names it). The AdminServer failing to bind is logged and the
/// server goes on without it, as ZooKeeper's QuorumPeer does ("Problem starting
/// AdminServer"); the Prometheus endpoint failing to bind stops the start, as ZooKeeper's
/// "Cannot boot MetricsProvider" does.
pub fn start(context: Arc<AdminContext>) -> Result<(), AdminError> {
    let config = context.config.clone();
    if let Some(address) = config.metrics_address() {
        let server = bind(address, "metricsProvider.httpPort")?;
        let bound = server.server_addr().to_ip().unwrap_or(address);
        let metrics_context = context.clone();
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || prometheus::serve(server, metrics_context))
            .map_err(|error| AdminError {
                address,
                what: "metricsProvider.httpPort",
                reason: error.to_string(),
            })?;
        info!(
            "Prometheus metrics on http://{bound}/metrics (exportJvmInfo={} has nothing to export)",
            config.metrics.export_jvm_info
        );
    }
    if config.admin.enabled {
        let address = config.admin_address();
        match bind(address, "admin.serverPort") {
            Ok(server) => {
                let bound = server.server_addr().to_ip().unwrap_or(address);
                let spawned = std::thread::Builder::new()
                    .name("admin-http".into())
                    .spawn(move || commands::serve(server, context));
                match spawned {
                    Ok(_) => info!(
                        "Started AdminServer on http://{bound}{}",
                        config.admin.command_url
                    ),
                    Err(error) => warn!("Problem starting AdminServer: {error}"),
                }
            }
            Err(error) => warn!(
                "Problem starting AdminServer: {error}; serving without it \
                 (admin.enableServer=false turns it off)"
            ),
        }
    }
    Ok(())
}
