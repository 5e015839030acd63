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
pub mod http;
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
        match start_admin_server(context, &config) {
            Ok((bound, scheme)) => info!(
                "Started AdminServer on {scheme}://{bound}{}",
                config.admin.command_url
            ),
            Err(error) => warn!(
                "Problem starting AdminServer: {error}; serving without it \
                 (admin.enableServer=false turns it off)"
            ),
        }
    }
    Ok(())
}

/// Binds the AdminServer's port and starts its thread; answers the address bound and the
/// scheme served (`http`, `https`, or `http+https` with `admin.portUnification`). The TLS
/// stores are read here: a store that cannot be read leaves the server without an
/// AdminServer, as ZooKeeper's JettyAdminServer constructor failing does ("Failed to load
/// authentication certificates for admin server").
fn start_admin_server(
    context: Arc<AdminContext>,
    config: &Config,
) -> Result<(SocketAddr, &'static str), AdminError> {
    let address = config.admin_address();
    let failed = |reason: String| AdminError {
        address,
        what: "admin.serverPort",
        reason,
    };
    let admin = &config.admin;
    let (transport, scheme) = if admin.force_https || admin.port_unification {
        let tls = crate::net::tls::admin_server_config(config)
            .map_err(|error| failed(format!("HTTPS: {error}")))?;
        // JettyAdminServer: forceHttps wins when both are set (SslConnectionFactory).
        if admin.force_https {
            (http::Transport::Tls(tls), "https")
        } else {
            (http::Transport::Unified(tls), "http+https")
        }
    } else {
        if admin.need_client_auth {
            warn!("admin.needClientAuth has no effect without admin.forceHttps or admin.portUnification");
        }
        (http::Transport::Plain, "http")
    };
    let listener =
        std::net::TcpListener::bind(address).map_err(|error| failed(error.to_string()))?;
    let bound = listener.local_addr().unwrap_or(address);
    let endpoint = Arc::new(commands::Endpoint {
        x509_verifier: crate::net::tls::x509_command_verifier(config),
        context,
        one_at_a_time: std::sync::Mutex::new(()),
    });
    let handler: Arc<http::Handler> = Arc::new(
        move |request: &http::Request, body: &mut dyn std::io::Read, peer: &http::Peer| {
            endpoint.answer(request, body, peer)
        },
    );
    let idle_timeout = std::time::Duration::from_millis(admin.idle_timeout_ms);
    std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || http::serve(listener, transport, idle_timeout, handler))
        .map_err(|error| failed(error.to_string()))?;
    Ok((bound, scheme))
}
