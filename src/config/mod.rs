//! Configuration: the standard `zoo.cfg` format (Java properties, `key=value`), the command
//! line, and the one typed `Limits` struct every bound of the server comes from.
//!
//! ZooKeeper turns unknown zoo.cfg keys into `zookeeper.`-prefixed system properties, which is
//! how settings such as `extendedTypesEnabled`, `skipACL` or
//! `DigestAuthenticationProvider.superDigest` are commonly given in zoo.cfg; they are read
//! here under the same names, with or without the `zookeeper.` prefix.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub mod dynamic;
pub mod tls;

pub use tls::{ClientAuth, TlsSettings};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    /// An ensemble setting that is missing or inconsistent (ZooKeeper's messages).
    #[error("{0}")]
    Quorum(String),
    /// The JAAS file or a SASL / authentication setting (see `auth`).
    #[error("security settings: {0}")]
    Security(String),
}

/// Every explicit bound of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `jute.maxbuffer`: largest frame accepted from a client, in bytes.
    pub frame_bytes_max: usize,
    /// `maxClientCnxns`: concurrent connections from one IP address; 0 means unlimited.
    pub connections_per_ip_max: usize,
    /// `globalOutstandingLimit`: requests received and not yet answered, server-wide; a core
    /// stops reading from its connections while its share is exhausted.
    pub outstanding_requests_max: usize,
    /// Requests one connection may have outstanding before its reads pause.
    pub outstanding_per_connection_max: usize,
    /// Bytes queued for one connection's socket before the connection is dropped as too slow.
    pub outbound_bytes_per_connection_max: usize,
    /// Write requests the pipeline takes into one batch.
    pub batch_requests_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes_max: crate::jute::frame::DEFAULT_MAX_FRAME_BYTES,
            connections_per_ip_max: 60,
            outstanding_requests_max: 1000,
            outstanding_per_connection_max: 1000,
            outbound_bytes_per_connection_max: 64 << 20,
            batch_requests_max: 1000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_address: SocketAddr,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub limits: Limits,
    /// `4lw.commands.whitelist`; `*` is every command. Default as ZooKeeper: srvr only.
    pub four_letter_words: Vec<String>,
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    /// `readonlymode.enabled` (ZooKeeper reads it as the system property
    /// `-Dreadonlymode.enabled=true`; ringkeeper also from zoo.cfg): an ensemble member that
    /// has lost its quorum serves read-only clients (QuorumPeer's ReadOnlyZooKeeperServer), and
    /// `isro` is allowed whatever `4lw.commands.whitelist` says (FourLetterCommands). No effect
    /// on a standalone server, as in ZooKeeper.
    pub read_only_mode_enabled: bool,
    /// `localSessionsEnabled` (QuorumPeerConfig, default false): in an ensemble, new sessions
    /// are local to the server that made them (LearnerSessionTracker / LeaderSessionTracker).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (default false, as QuorumPeerConfig's): a local session
    /// that creates an ephemeral becomes global first; when false that create fails with
    /// EphemeralOnLocalSession (QuorumZooKeeperServer.checkUpgradeSession).
    pub local_sessions_upgrading_enabled: bool,
    /// `zookeeper.enforceQuota` (ZooKeeperServer.ENFORCE_QUOTA, default false): hard quota
    /// limits refuse creates and setData with QuotaExceeded. A JVM property in ZooKeeper; a
    /// zoo.cfg line `enforceQuota=true` sets the same property there (unknown keys become
    /// `zookeeper.`-prefixed properties), so both are read.
    pub enforce_quota: bool,
    /// `reconfigEnabled` (default false, as ZooKeeper 3.5.3+): the `reconfig` operation.
    pub reconfig_enabled: bool,
    /// `zookeeper.digest.enabled` (ZooKeeperServer.isDigestEnabled, default true; zoo.cfg's
    /// `digest.enabled` sets the same property): a leader sends its tree digest after each
    /// txn with the proposal, and a learner compares its own with it. The tree digest itself
    /// (`hash`, the snapshot header) is kept either way.
    pub digest_enabled: bool,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    /// `preAllocSize` (given in KiB, as in ZooKeeper): size of each log segment.
    pub log_segment_bytes: u64,
    /// `forceSync`: fdatasync every batch. `no` trades durability for speed.
    pub force_sync: bool,
    /// `fsync.warningthresholdms`: a slower fsync is logged with its duration.
    pub fsync_warning_ms: u64,
    /// `snapCount`: transactions between snapshots (each server uses a random threshold
    /// between half and all of it, as ZooKeeper does, so servers do not snapshot together).
    pub snap_count: u64,
    /// `ringkeeper.zxidCounterMax`: the highest zxid counter a leader assigns before it steps
    /// down so that a new epoch starts (ZooKeeper: 0xffffffff, not configurable). Lowering it
    /// exercises the rollover; None keeps the default.
    pub zxid_counter_max: Option<u32>,
    /// `quorum.protocol`: the server-to-server protocol of this ensemble. `ringkeeper` (the
    /// default) is ringkeeper's own (`quorum::wire`); `zookeeper` is Apache ZooKeeper's, so
    /// that this server can sit in an ensemble whose other members are ZooKeeper 3.8/3.9
    /// (`quorum::zookeeper`; only as an observer so far, see README "Mixed ensembles").
    pub quorum_protocol: QuorumProtocol,
    /// `autopurge.snapRetainCount` (at least 3) and `autopurge.purgeInterval` (hours; 0 =
    /// never purge, ZooKeeper's default). When purging is on, it runs after each snapshot.
    pub snap_retain_count: usize,
    pub purge_interval_hours: u64,
    /// Number of cores serving connections; 0 = every available core.
    pub cores: usize,
    /// Every key=value line read, for `conf`.
    pub raw: BTreeMap<String, String>,
    /// Keys that were not recognised (reported at startup, not fatal).
    pub unknown_keys: Vec<String>,
    pub config_path: Option<PathBuf>,
    /// Ensemble membership and timing; `None` when the server runs standalone (see
    /// [`QuorumConfig`] for when that is).
    pub quorum: Option<QuorumConfig>,
    /// `standaloneEnabled` (default true): a configuration with a single participant runs
    /// standalone unless this is false.
    pub standalone_enabled: bool,
    /// `quorumListenOnAllIPs` (default false): bind the quorum and election ports on every
    /// address instead of the address of this server's own `server.N` line.
    pub quorum_listen_on_all_ips: bool,
    /// Remarks about a configuration that ZooKeeper accepts with a warning (an even number
    /// of participants, `peerType` disagreeing with the server line, ...), for the log.
    pub warnings: Vec<String>,
    /// SASL on the client port and authentication enforcement (see `auth`), read by
    /// [`Config::load_security`] from zoo.cfg and the JVM flags deployments pass.
    pub sasl: crate::auth::SaslSettings,
    /// `secureClientPortAddress:secureClientPort`: a second client port that speaks only
    /// TLS (NettyServerCnxnFactory with `secure`). The address defaults to every interface,
    /// as in ZooKeeper.
    pub secure_client_address: Option<SocketAddr>,
    /// `client.portUnification`: the plaintext client port also accepts TLS, told apart by
    /// the first byte (DualModeSslHandler).
    pub port_unification: bool,
    /// The `ssl.*` keys of the client ports.
    pub tls: TlsSettings,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that is `super`.
    pub x509_super_user: Option<String>,
    /// The `-D` system properties of `SERVER_JVMFLAGS` / `JVMFLAGS` / `conf/java.env`, all
    /// of them (the ones ringkeeper reads are also applied as zoo.cfg keys).
    pub system_properties: Vec<(String, String)>,
    /// `sslQuorum`: the quorum and election ports speak TLS (QuorumPeerConfig.sslQuorum):
    /// this member dials its peers with TLS and accepts only TLS (unless `portUnification`).
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum and election ports accept TLS and plaintext, told apart
    /// by the first byte (UnifiedServerSocket), for a rolling change of `sslQuorum`.
    pub quorum_port_unification: bool,
    /// `sslQuorumReloadCertFiles`: a changed quorum key or trust store file is read again
    /// for the next connection, without a restart (QuorumPeer's FileChangeWatcher).
    pub ssl_quorum_reload_cert_files: bool,
    /// The `ssl.quorum.*` keys (QuorumX509Util, prefix `zookeeper.ssl.quorum.`): the same
    /// keys and formats as the client port's, except that the certificate of a connecting
    /// member is also checked against its address by default (shouldVerifyClientHostname).
    pub quorum_tls: TlsSettings,
    /// The `quorum.auth.*` keys.
    pub quorum_auth: crate::auth::quorum::QuorumAuthKeys,
    /// Quorum SASL as loaded by [`Config::load_security`] (None unless
    /// `quorum.auth.enableSasl=true`).
    pub quorum_sasl: Option<crate::auth::quorum::QuorumSasl>,
    /// `dynamicConfigFile`: where the membership was read from, when not from zoo.cfg.
    pub dynamic_config_file: Option<PathBuf>,
    /// The zoo.cfg text as read, for the AdminServer's `initial_configuration`.
    pub config_text: Option<String>,
    /// The AdminServer (`admin.*`, ZooKeeper's JettyAdminServer).
    pub admin: AdminSettings,
    /// The Prometheus endpoint (`metricsProvider.*`, ZooKeeper's PrometheusMetricsProvider).
    pub metrics: MetricsSettings,
}

/// `admin.enableServer` (default true, as ZooKeeper), `admin.serverAddress` (default: the
/// client port's address, so a server on loopback keeps its AdminServer there; ZooKeeper's
/// default is 0.0.0.0), `admin.serverPort` (8080), `admin.commandURL` (`/commands`),
/// `admin.idleTimeout` (ms, 30000); for the `snapshot` command `admin.snapshot.enabled`
/// (true), `admin.rateLimiterIntervalInMS` (300000; ZooKeeper reads it for `snapshot` as
/// microseconds, so one snapshot per 300 ms by default) and
/// `serializeLastProcessedZxid.enabled` (true; false makes `snapshot` answer 500, as in
/// ZooKeeper 3.9); for `restore` `admin.restore.enabled` (true) and `admin.restore.maxBytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    pub enabled: bool,
    pub address: Option<IpAddr>,
    pub port: u16,
    pub command_url: String,
    pub idle_timeout_ms: u64,
    pub snapshot_enabled: bool,
    pub rate_limiter_interval: u64,
    pub serialize_last_processed_zxid: bool,
    /// `admin.restore.enabled` (ZooKeeper's `zookeeper.admin.restore.enabled`, true).
    pub restore_enabled: bool,
    /// `admin.restore.maxBytes` (ringkeeper's; 1 GiB): the largest snapshot `restore`
    /// reads. ZooKeeper streams the request body into a new tree without a bound.
    pub restore_max_bytes: u64,
    /// `admin.forceHttps` (false): the AdminServer speaks only HTTPS, with the
    /// `ssl.quorum.*` key and trust stores (JettyAdminServer's SslConnectionFactory, stores
    /// read through QuorumX509Util).
    pub force_https: bool,
    /// `admin.portUnification` (false): the AdminServer's one port takes HTTPS and plain
    /// HTTP, a first byte 0x16 meaning TLS (Jetty's UnifiedConnectionFactory).
    pub port_unification: bool,
    /// `admin.needClientAuth` (false; ZooKeeper 3.9): an HTTPS client must present a
    /// certificate the `ssl.quorum.` trust store verifies.
    pub need_client_auth: bool,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            address: None,
            port: 8080,
            command_url: "/commands".into(),
            idle_timeout_ms: 30_000,
            snapshot_enabled: true,
            rate_limiter_interval: 300_000,
            serialize_last_processed_zxid: true,
            restore_enabled: true,
            restore_max_bytes: 1 << 30,
            force_https: false,
            port_unification: false,
            need_client_auth: false,
        }
    }
}

/// ZooKeeper's class name of the Prometheus provider, the only one served here.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's default provider: metrics only through `mntr` and the AdminServer.
pub const DEFAULT_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// `metricsProvider.className`: the Prometheus endpoint runs when it names
/// [`PROMETHEUS_PROVIDER`]; `metricsProvider.httpHost` (default: the client port's address;
/// ZooKeeper's is 0.0.0.0), `metricsProvider.httpPort` (7000), `metricsProvider.exportJvmInfo`
/// (accepted; there is no JVM to describe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub prometheus: bool,
    pub host: Option<IpAddr>,
    pub port: u16,
    pub export_jvm_info: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            prometheus: false,
            host: None,
            port: 7000,
            export_jvm_info: true,
        }
    }
}

/// The server's own command-line options (clap parses them, see `cli`); each given one
/// overrides zoo.cfg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOptions {
    pub config: Option<PathBuf>,
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub cores: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time_ms: 2000,
            data_dir: PathBuf::from("data"),
            data_log_dir: PathBuf::from("data"),
            client_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            limits: Limits::default(),
            four_letter_words: vec!["srvr".into()],
            extended_types_enabled: false,
            skip_acl: false,
            read_only_mode_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            enforce_quota: false,
            reconfig_enabled: false,
            digest_enabled: true,
            super_digest: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            log_segment_bytes: 64 << 20,
            snap_count: 100_000,
            zxid_counter_max: None,
            quorum_protocol: QuorumProtocol::Ringkeeper,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            force_sync: true,
            fsync_warning_ms: 1000,
            cores: 0,
            raw: BTreeMap::new(),
            unknown_keys: Vec::new(),
            config_path: None,
            quorum: None,
            standalone_enabled: true,
            quorum_listen_on_all_ips: false,
            warnings: Vec::new(),
            sasl: crate::auth::SaslSettings::default(),
            secure_client_address: None,
            port_unification: false,
            tls: TlsSettings::default(),
            x509_super_user: None,
            system_properties: Vec::new(),
            config_text: None,
            admin: AdminSettings::default(),
            metrics: MetricsSettings::default(),
            ssl_quorum: false,
            quorum_port_unification: false,
            ssl_quorum_reload_cert_files: false,
            quorum_tls: TlsSettings {
                client_hostname_verification: true,
                ..TlsSettings::default()
            },
            quorum_auth: crate::auth::quorum::QuorumAuthKeys::default(),
            quorum_sasl: None,
            dynamic_config_file: None,
        }
    }
}

/// ZooKeeper's built-in authentication providers, which `authProvider.N` lines name
/// (ProviderRegistry loads them; the schemes themselves are always on here).
const BUILT_IN_AUTH_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
];

/// `dynamicConfigFile=<path>` of zoo.cfg (QuorumPeerConfig.parse): the membership lives in
/// that file, and its version is the file name's `.dynamic.<hex>` suffix. As in ZooKeeper, the
/// static file may then hold no `server.`/`group`/`weight` lines, and the dynamic file no
/// `version` line. Returns (path, the file's text, its version).
fn read_dynamic_config_file(text: &str) -> Result<Option<(PathBuf, String, i64)>, ConfigError> {
    let key_value = |line: &str| {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        line.split_once('=')
            .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
    };
    let Some(path) = text
        .lines()
        .filter_map(key_value)
        .filter(|(key, _)| key == "dynamicConfigFile")
        .map(|(_, value)| PathBuf::from(value))
        .next_back()
    else {
        return Ok(None);
    };
    for (key, value) in text.lines().filter_map(key_value) {
        if key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight") {
            return Err(invalid(
                &key,
                &value,
                "must be in the separate dynamic config file (dynamicConfigFile is set)",
            ));
        }
    }
    let dynamic_text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    if let Some((key, value)) = dynamic_text
        .lines()
        .filter_map(key_value)
        .find(|(key, _)| key == "version")
    {
        return Err(invalid(
            &key,
            &value,
            "the dynamic config file must not have a version inside (it is the file name's suffix)",
        ));
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    let version = name
        .as_deref()
        .and_then(dynamic::version_from_filename)
        .unwrap_or(0);
    Ok(Some((path, dynamic_text, version)))
}

/// Keys ZooKeeper knows that the standalone server accepts without acting on them.
const ACCEPTED_KEYS: &[&str] = &[
    // Jetty's HTTP version of the AdminServer's connector: HTTP/1.1 is what is served here.
    "admin.httpVersion",
    // The client's socket class; TLS works with either server factory here.
    "serverCnxnFactory",
    "client.secure",
    // Read by `Config::from_file_with_properties` before the lines are parsed.
    "dynamicConfigFile",
    "electionPortBindRetry",
    "syncEnabled",
];

/// What the TLS layer cannot do, refused at startup rather than at the first handshake.
fn check_tls_settings(config: &Config) -> Result<(), ConfigError> {
    let tls = &config.tls;
    if config.tls.key_store.location.is_none() {
        return Err(invalid(
            "ssl.keyStore.location",
            "",
            "required for secureClientPort or client.portUnification",
        ));
    }
    if tls.client_auth != ClientAuth::None && tls.trust_store.location.is_none() {
        // ZooKeeper falls back to the JVM's default trust store (cacerts) here.
        return Err(invalid(
            "ssl.trustStore.location",
            "",
            "required to verify client certificates unless ssl.clientAuth=none",
        ));
    }
    if tls.auth_provider != "x509" {
        return Err(invalid(
            "ssl.authProvider",
            &tls.auth_provider,
            "only the built-in x509 provider is available",
        ));
    }
    if tls.crl || tls.ocsp {
        return Err(invalid(
            if tls.crl { "ssl.crl" } else { "ssl.ocsp" },
            "true",
            "certificate revocation checking is not implemented",
        ));
    }
    Ok(())
}

/// What quorum TLS needs, refused at startup (ZooKeeper would fall back to the JVM's
/// default stores; a member always verifies the member it dials, so it needs a trust store).
fn check_quorum_tls_settings(config: &Config) -> Result<(), ConfigError> {
    let tls = &config.quorum_tls;
    if tls.key_store.location.is_none() {
        return Err(invalid(
            "ssl.quorum.keyStore.location",
            "",
            "required for sslQuorum or portUnification",
        ));
    }
    if tls.trust_store.location.is_none() {
        return Err(invalid(
            "ssl.quorum.trustStore.location",
            "",
            "required for sslQuorum or portUnification (the members' certificates are \
             verified against it)",
        ));
    }
    if tls.crl || tls.ocsp {
        return Err(invalid(
            if tls.crl {
                "ssl.quorum.crl"
            } else {
                "ssl.quorum.ocsp"
            },
            "true",
            "certificate revocation checking is not implemented",
        ));
    }
    Ok(())
}

/// The server-to-server protocol of an ensemble (`quorum.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuorumProtocol {
    /// ringkeeper's own quorum wire (`quorum::wire`).
    #[default]
    Ringkeeper,
    /// Apache ZooKeeper's: election handshake and notifications, QuorumPackets.
    Zookeeper,
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse::<T>().map_err(|_| ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: "not a number".into(),
    })
}

fn parse_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1"
    )
}

/// Parses `jute.maxbuffer` the way Java's Integer.decode does (decimal, 0x hex, 0 octal).
fn parse_java_int(key: &str, value: &str) -> Result<usize, ConfigError> {
    let text = value.trim();
    let parsed = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        usize::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        usize::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    };
    parsed.ok_or_else(|| ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: "not an integer".into(),
    })
}

/// Java's `Boolean.parseBoolean`, as ZooKeeper reads `admin.enableServer` and the
/// provider's `exportJvmInfo`: `true` in any case, anything else is false.
fn java_boolean(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

fn parse_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not an IP address"))
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// ZooKeeper's `QuorumPeerConfig.parseBoolean`: `true` or `false` in any case, anything else
/// is an error (unlike the lenient [`parse_bool`] the older keys use).
fn parse_strict_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "choose 'true' or 'false'"))
    }
}

/// Reads `dataDir/myid`: `None` when there is no such file.
type MyIdReader = dyn Fn(&Path) -> Result<Option<String>, ConfigError>;

fn read_myid_file(data_dir: &Path) -> Result<Option<String>, ConfigError> {
    let path = data_dir.join("myid");
    if !path.is_file() {
        // ZooKeeper: "standalone server doesn't need myid file".
        return Ok(None);
    }
    std::fs::read_to_string(&path)
        .map(Some)
        .map_err(|source| ConfigError::Read { path, source })
}

/// One server of the ensemble, from its `server.N` line:
/// `host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
/// (ZooKeeper's `QuorumPeer.QuorumServer`). Hosts are resolved when the file is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    pub id: u64,
    /// The host as written (what `conf` prints).
    pub host: String,
    /// Where the leader listens for its learners (the first port).
    pub quorum_addr: SocketAddr,
    /// Where this server listens for election notifications (the second port).
    pub election_addr: SocketAddr,
    pub observer: bool,
    /// The client address of the line's `;[host:]port` part; a bare port means 0.0.0.0.
    pub client_addr: Option<SocketAddr>,
    /// The client host as written (`0.0.0.0` for a bare port), for `conf`.
    pub client_host: Option<String>,
}

/// Ensemble mode. As in ZooKeeper (`QuorumPeerConfig.isDistributed`), a server runs in an
/// ensemble when there is more than one participant, or when `standaloneEnabled=false`; a
/// lone participant line (what HBase writes) otherwise runs standalone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This server's id, from `dataDir/myid`.
    pub my_id: u64,
    /// Every server, participants and observers, by id.
    pub servers: BTreeMap<u64, QuorumServer>,
    /// `initLimit`, in ticks: how long discovery and synchronisation may take.
    pub init_limit: u64,
    /// `syncLimit`, in ticks: how long a learner may be out of touch with its leader.
    pub sync_limit: u64,
    /// The configuration's version: the suffix of the `dynamicConfigFile` it was read from
    /// (`zoo.cfg.dynamic.<hex>`), or 0 for static `server.N` lines (QuorumPeerConfig).
    pub version: i64,
}

impl QuorumConfig {
    /// Ids of the voting members, ascending.
    pub fn participants(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|server| !server.observer)
            .map(|server| server.id)
            .collect()
    }

    /// Ids of the observers, ascending.
    pub fn observers(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|server| server.observer)
            .map(|server| server.id)
            .collect()
    }

    /// The membership and its version (what `/zookeeper/config` shows).
    pub fn dynamic(&self) -> dynamic::DynamicConfig {
        dynamic::DynamicConfig {
            version: self.version,
            servers: self.servers.clone(),
        }
    }

    /// This server's own line (always present: loading checks myid is among the servers).
    pub fn me(&self) -> Option<&QuorumServer> {
        self.servers.get(&self.my_id)
    }

    /// The ZAB core's configuration: membership, `tickTime`, `initLimit`, `syncLimit`; the
    /// other fields keep [`crate::zab::Config::new`]'s defaults.
    pub fn zab_config(&self, tick_ms: u64) -> crate::zab::Config {
        let mut zab = crate::zab::Config::new(self.my_id, &self.participants(), &self.observers());
        zab.tick_ms = tick_ms;
        zab.version = self.version;
        zab.init_limit_ticks = self.init_limit;
        zab.sync_limit_ticks = self.sync_limit;
        zab
    }
}

/// The ensemble keys gathered while reading the file, resolved by [`setup_quorum`] at the end
/// (ZooKeeper reads the whole file before `setupQuorumPeerConfig`, so key order is free).
#[derive(Debug, Default)]
struct QuorumKeys {
    server_lines: BTreeMap<String, String>,
    init_limit: Option<u64>,
    sync_limit: Option<u64>,
    peer_type_observer: Option<bool>,
    hierarchical_keys: Vec<String>,
    client_port_given: bool,
}

/// A `server.N` line taken apart, not yet resolved.
#[derive(Debug)]
struct ServerLine {
    key: String,
    value: String,
    id: u64,
    host: String,
    quorum_port: u16,
    election_port: u16,
    observer: bool,
    client: Option<(String, u16)>,
}

/// ZooKeeper's `ConfigUtils.getHostAndPort`: `[ipv6]:a:b` keeps the bracketed host whole,
/// anything else splits on every colon.
fn host_and_ports(text: &str) -> Option<Vec<String>> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let ports = after.strip_prefix(':')?;
        if ports.is_empty() {
            return None;
        }
        let mut parts = vec![host.to_string()];
        parts.extend(ports.split(':').map(str::to_string));
        Some(parts)
    } else {
        Some(text.split(':').map(str::to_string).collect())
    }
}

fn parse_port(key: &str, value: &str, port: &str) -> Result<u16, ConfigError> {
    match port.trim().parse::<u16>() {
        // Port 0 would bind anywhere, and no peer could find it.
        Ok(0) | Err(_) => Err(invalid(key, value, format!("bad port {:?}", port.trim()))),
        Ok(port) => Ok(port),
    }
}

const SERVER_LINE_FORM: &str =
    "expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";

fn parse_server_line(key: &str, value: &str) -> Result<ServerLine, ConfigError> {
    let id = key
        .strip_prefix("server.")
        .and_then(|id| id.trim().parse::<u64>().ok())
        .ok_or_else(|| invalid(key, value, "the server id is not a number"))?;
    // Java's split drops trailing empty strings, so `host:1:2;` has no client part.
    let mut halves: Vec<&str> = value.split(';').collect();
    while halves.len() > 1 && halves.last().is_some_and(|half| half.is_empty()) {
        halves.pop();
    }
    if halves.len() > 2 {
        return Err(invalid(key, value, SERVER_LINE_FORM));
    }
    let server_part = halves[0].trim();
    if server_part.contains('|') {
        // ZooKeeper: "Multiple address feature is disabled" unless multiAddress.enabled.
        return Err(invalid(
            key,
            value,
            "multiple addresses (multiAddress.enabled) are not supported",
        ));
    }
    let parts = host_and_ports(server_part)
        .filter(|parts| (3..=4).contains(&parts.len()))
        .ok_or_else(|| invalid(key, value, SERVER_LINE_FORM))?;
    let host = parts[0].trim().to_string();
    if host.is_empty() {
        return Err(invalid(key, value, "no host"));
    }
    let quorum_port = parse_port(key, value, &parts[1])?;
    let election_port = parse_port(key, value, &parts[2])?;
    if quorum_port == election_port {
        // QuorumServer: "... and election port must be different!"
        return Err(invalid(
            key,
            value,
            "the quorum and election ports must be different",
        ));
    }
    let observer = match parts.get(3).map(|kind| kind.trim().to_ascii_lowercase()) {
        None => false,
        Some(kind) if kind == "participant" => false,
        Some(kind) if kind == "observer" => true,
        Some(kind) => {
            return Err(invalid(
                key,
                value,
                format!("Unrecognised peertype {kind:?}"),
            ))
        }
    };
    let client = match halves.get(1) {
        None => None,
        Some(client_part) => {
            let parts = host_and_ports(client_part.trim())
                .filter(|parts| (1..=2).contains(&parts.len()))
                .ok_or_else(|| invalid(key, value, SERVER_LINE_FORM))?;
            let (client_host, port) = match parts.as_slice() {
                [port] => ("0.0.0.0".to_string(), port),
                [client_host, port] => (client_host.trim().to_string(), port),
                _ => return Err(invalid(key, value, SERVER_LINE_FORM)),
            };
            Some((client_host, parse_port(key, value, port)?))
        }
    };
    Ok(ServerLine {
        key: key.to_string(),
        value: value.to_string(),
        id,
        host,
        quorum_port,
        election_port,
        observer,
        client,
    })
}

/// How `server.N` hosts become addresses: [`resolve`], or IP literals only where no lookup
/// may happen.
type Resolver = dyn Fn(&str, &str, &str, u16) -> Result<SocketAddr, ConfigError>;

fn resolve_ip_literal(
    key: &str,
    value: &str,
    host: &str,
    port: u16,
) -> Result<SocketAddr, ConfigError> {
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            invalid(
                key,
                value,
                format!("{host:?} is not an IP address (not resolved here)"),
            )
        })
}

/// Resolves `host:port` as Java's `InetSocketAddress` does: the first IPv4 address when there
/// is one (Java prefers IPv4 by default), else the first address.
fn resolve(key: &str, value: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| invalid(key, value, format!("cannot resolve {host:?}: {error}")))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| invalid(key, value, format!("{host:?} resolves to no address")))
}

/// The myid file: ZooKeeper reads its first line as a decimal id. Surrounding whitespace is
/// tolerated here (Java's `Long.parseLong` would refuse `"1 "`).
fn parse_myid(text: &str) -> Result<u64, ConfigError> {
    let first_line = text.lines().next().unwrap_or("").trim();
    first_line
        .parse::<u64>()
        .map_err(|_| invalid("myid", first_line, "serverid is not a number"))
}

/// Two addresses that cannot both be bound: the same port on the same address, or on an
/// address and the wildcard.
fn addresses_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Decides standalone or ensemble and fills `config.quorum`, following
/// `QuorumPeerConfig.setupQuorumPeerConfig` (parseDynamicConfig, setupMyId, setupClientPort,
/// setupPeerType, checkValidity) and `QuorumPeer`'s "My id N not in the peer list".
fn setup_quorum(
    config: &mut Config,
    keys: QuorumKeys,
    myid_text: Option<String>,
    resolve: &Resolver,
) -> Result<(), ConfigError> {
    let mut lines: BTreeMap<u64, ServerLine> = BTreeMap::new();
    for (key, value) in &keys.server_lines {
        let line = parse_server_line(key, value)?;
        if let Some(earlier) = lines.get(&line.id) {
            return Err(invalid(
                key,
                value,
                format!("server id {} is also given by {}", line.id, earlier.key),
            ));
        }
        lines.insert(line.id, line);
    }
    // ZooKeeper reads myid whenever the file exists, standalone included.
    let my_id = myid_text.as_deref().map(parse_myid).transpose()?;
    let participants = lines.values().filter(|line| !line.observer).count();
    let observers = lines.len() - participants;
    if participants == 0 {
        if !config.standalone_enabled {
            return Err(ConfigError::Quorum(
                "standaloneEnabled=false needs at least one participant server.N line".into(),
            ));
        }
        if observers > 0 {
            return Err(ConfigError::Quorum(
                "observers without participants is an invalid configuration".into(),
            ));
        }
    } else if participants == 1 && config.standalone_enabled {
        if observers > 0 {
            return Err(ConfigError::Quorum(
                "observers without a quorum is an invalid configuration (a single participant \
                 runs standalone unless standaloneEnabled=false)"
                    .into(),
            ));
        }
        config.warnings.push(
            "only one server specified: running standalone (set standaloneEnabled=false for a \
             one-server ensemble)"
                .into(),
        );
    }
    let distributed = participants > 1 || (participants == 1 && !config.standalone_enabled);
    if !distributed {
        if !keys.hierarchical_keys.is_empty() {
            config.warnings.push(format!(
                "hierarchical quorum keys ignored in standalone mode: {}",
                keys.hierarchical_keys.join(", ")
            ));
        }
        return Ok(());
    }
    if let Some(key) = keys.hierarchical_keys.first() {
        // Weighted or grouped quorums change what a majority is; silently counting plain
        // majorities instead would be unsafe.
        return Err(invalid(
            key,
            "",
            "hierarchical quorums (group./weight.) are not supported",
        ));
    }
    if participants <= 2 {
        config
            .warnings
            .push("No server failure will be tolerated. You need at least 3 servers.".into());
    } else if participants % 2 == 0 {
        config
            .warnings
            .push("Non-optimal configuration, consider an odd number of servers.".into());
    }
    // checkValidity: both limits are required in quorum mode, and 0 counts as unset.
    let init_limit = keys
        .init_limit
        .filter(|limit| *limit > 0)
        .ok_or_else(|| ConfigError::Quorum("initLimit is not set".into()))?;
    let sync_limit = keys
        .sync_limit
        .filter(|limit| *limit > 0)
        .ok_or_else(|| ConfigError::Quorum("syncLimit is not set".into()))?;
    let my_id = my_id.ok_or_else(|| {
        ConfigError::Quorum(format!(
            "myid file is missing ({})",
            config.data_dir.join("myid").display()
        ))
    })?;
    if !lines.contains_key(&my_id) {
        return Err(ConfigError::Quorum(format!(
            "My id {my_id} not in the peer list"
        )));
    }
    let mut servers = BTreeMap::new();
    for line in lines.values() {
        let quorum_addr = resolve(&line.key, &line.value, &line.host, line.quorum_port)?;
        let election_addr = resolve(&line.key, &line.value, &line.host, line.election_port)?;
        let client_addr = match &line.client {
            Some((host, port)) => Some(resolve(&line.key, &line.value, host, *port)?),
            None => None,
        };
        servers.insert(
            line.id,
            QuorumServer {
                id: line.id,
                host: line.host.clone(),
                quorum_addr,
                election_addr,
                observer: line.observer,
                client_addr,
                client_host: line.client.as_ref().map(|(host, _)| host.clone()),
            },
        );
    }
    // setupClientPort: the own line's client address wins, and must agree with clientPort
    // (and clientPortAddress) when both are given.
    if let Some(own_client) = servers.get(&my_id).and_then(|own| own.client_addr) {
        if keys.client_port_given {
            let explicit = config.client_address;
            let differs = if explicit.ip().is_unspecified() {
                explicit.port() != own_client.port()
            } else {
                explicit != own_client
            };
            if differs {
                return Err(ConfigError::Quorum(format!(
                    "client address for this server (id = {my_id}) is {explicit} in clientPort/clientPortAddress but {own_client} in server.{my_id}"
                )));
            }
        }
        config.client_address = own_client;
    }
    check_address_clashes(&servers, my_id, config.client_address)?;
    // setupPeerType: ZooKeeper (3.5 to 3.9) warns and takes the servers list's word.
    if let (Some(observer_by_key), Some(own)) = (keys.peer_type_observer, servers.get(&my_id)) {
        if observer_by_key != own.observer {
            let name = |observer: bool| if observer { "observer" } else { "participant" };
            config.warnings.push(format!(
                "Peer type from servers list ({}) doesn't match peerType ({}). Defaulting to servers list.",
                name(own.observer),
                name(observer_by_key)
            ));
        }
    }
    config.quorum = Some(QuorumConfig {
        my_id,
        servers,
        init_limit,
        sync_limit,
        version: 0,
    });
    Ok(())
}

/// Every address a server listens on must be free of the others: within one server no two of
/// its ports may clash (its wildcard client port included), and no two servers may name the
/// same address and port. (ZooKeeper checks only the quorum and election ports of one line
/// at load, and the rest when a reconfig adds a server; a clash here fails at bind anyway.)
fn check_address_clashes(
    servers: &BTreeMap<u64, QuorumServer>,
    my_id: u64,
    my_client: SocketAddr,
) -> Result<(), ConfigError> {
    let mut all: Vec<(String, SocketAddr)> = Vec::new();
    for server in servers.values() {
        let mut own = vec![
            (
                format!("quorum port of server.{}", server.id),
                server.quorum_addr,
            ),
            (
                format!("election port of server.{}", server.id),
                server.election_addr,
            ),
        ];
        let client = if server.id == my_id {
            Some(my_client)
        } else {
            server.client_addr
        };
        if let Some(client) = client {
            own.push((format!("client port of server.{}", server.id), client));
        }
        for (index, (name, address)) in own.iter().enumerate() {
            for (other_name, other) in &own[index + 1..] {
                if addresses_clash(*address, *other) {
                    return Err(ConfigError::Quorum(format!(
                        "{name} ({address}) conflicts with the {other_name} ({other})"
                    )));
                }
            }
            for (other_name, other) in &all {
                if !address.ip().is_unspecified() && address == other {
                    return Err(ConfigError::Quorum(format!(
                        "{name} ({address}) conflicts with the {other_name} ({other})"
                    )));
                }
            }
        }
        all.extend(own);
    }
    Ok(())
}

impl Config {
    /// Reads a zoo.cfg file. Relative data directories are taken relative to the working
    /// directory, as ZooKeeper does.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        // With its `dynamicConfigFile`, if it names one.
        Config::from_file_with_properties(path, Vec::new())
    }

    /// Parses zoo.cfg text. In ZooKeeper's way, `dataDir/myid` is read when it exists
    /// (`QuorumPeerConfig.setupMyId`), and `server.N` hosts are resolved in quorum mode.
    pub fn from_properties(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &read_myid_file)
    }

    /// [`Config::from_file`] with the JVM's system properties: those `zookeeper.`-prefixed
    /// ones that ZooKeeper reads as properties and ringkeeper as zoo.cfg keys
    /// ([`tls::is_server_property`]) count as zoo.cfg lines before the file's own, so the
    /// file wins, as in ZooKeeper (QuorumPeerConfig sets its keys as system properties over
    /// the JVM's).
    pub fn from_file_with_properties(
        path: &Path,
        properties: Vec<(String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut lines = String::new();
        for (name, value) in &properties {
            if let Some(bare) = name.strip_prefix("zookeeper.") {
                if tls::is_server_property(bare) {
                    lines.push_str(&format!("{name}={value}\n"));
                }
            } else if name == "readonlymode.enabled" {
                // QuorumPeer reads it as `Boolean.getBoolean("readonlymode.enabled")`, a
                // system property without the `zookeeper.` prefix.
                lines.push_str(&format!("{name}={value}\n"));
            }
        }
        lines.push_str(&text);
        let dynamic_file = read_dynamic_config_file(&text)?;
        if let Some((_, dynamic_text, _)) = &dynamic_file {
            lines.push('\n');
            lines.push_str(dynamic_text);
            lines.push('\n');
        }
        let mut config = Config::from_properties(&lines)?;
        if let (Some(quorum), Some((_, _, version))) = (config.quorum.as_mut(), &dynamic_file) {
            quorum.version = *version;
        }
        config.dynamic_config_file = dynamic_file.map(|(path, _, _)| path);
        config.config_path = Some(path.to_path_buf());
        config.config_text = Some(text);
        config.system_properties = properties;
        Ok(config)
    }

    /// [`Config::from_properties`] with the reading of `dataDir/myid` given, so the tests
    /// need no files: `read_myid(data_dir)` returns the file's text, or `None` when there
    /// is no such file.
    fn parse(text: &str, read_myid: &MyIdReader) -> Result<Config, ConfigError> {
        Config::parse_with(text, read_myid, &resolve)
    }

    /// [pure] zoo.cfg text parsed with `dataDir/myid` read as `myid` and the `server.N` hosts
    /// taken as IP literals only (any other host is refused, not looked up): the fuzz target
    /// (`crate::fuzzing::zoo_cfg`) must not touch files or DNS.
    #[doc(hidden)]
    pub fn parse_without_io(text: &str, myid: Option<&str>) -> Result<Config, ConfigError> {
        let myid = myid.map(str::to_string);
        Config::parse_with(text, &move |_| Ok(myid.clone()), &resolve_ip_literal)
    }

    fn parse_with(
        text: &str,
        read_myid: &MyIdReader,
        resolve: &Resolver,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut quorum_keys = QuorumKeys::default();
        let mut client_port: Option<u16> = None;
        let mut client_ip: Option<IpAddr> = None;
        let mut min_timeout: Option<i32> = None;
        let mut max_timeout: Option<i32> = None;
        let mut data_log_dir: Option<PathBuf> = None;
        let mut secure_port: Option<u16> = None;
        let mut secure_ip: Option<IpAddr> = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                config.unknown_keys.push(line.to_string());
                continue;
            };
            let key = key.trim();
            let value = value.trim();
            config.raw.insert(key.to_string(), value.to_string());
            let bare = key.strip_prefix("zookeeper.").unwrap_or(key);
            match bare {
                "tickTime" => config.tick_time_ms = parse_number(key, value)?,
                "dataDir" => config.data_dir = PathBuf::from(value),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => client_port = Some(parse_number(key, value)?),
                "clientPortAddress" => {
                    client_ip = Some(value.parse().map_err(|_| ConfigError::Invalid {
                        key: key.into(),
                        value: value.into(),
                        reason: "not an IP address".into(),
                    })?)
                }
                "secureClientPort" => secure_port = Some(parse_number(key, value)?),
                "secureClientPortAddress" => {
                    secure_ip = Some(value.parse().map_err(|_| ConfigError::Invalid {
                        key: key.into(),
                        value: value.into(),
                        reason: "not an IP address".into(),
                    })?)
                }
                "client.portUnification" => {
                    config.port_unification = value.trim().eq_ignore_ascii_case("true")
                }
                "X509AuthenticationProvider.superUser" => {
                    config.x509_super_user = Some(value.to_string())
                }
                _ if bare.starts_with("authProvider.") => {
                    if !BUILT_IN_AUTH_PROVIDERS.contains(&value) {
                        config.warnings.push(format!(
                            "{key}={value}: not one of ZooKeeper's built-in providers; ignored"
                        ));
                    }
                }
                "sslQuorum" => config.ssl_quorum = value.trim().eq_ignore_ascii_case("true"),
                "portUnification" => {
                    config.quorum_port_unification = value.trim().eq_ignore_ascii_case("true")
                }
                "sslQuorumReloadCertFiles" => {
                    config.ssl_quorum_reload_cert_files = value.trim().eq_ignore_ascii_case("true")
                }
                // QuorumX509Util: the client port's keys under `ssl.quorum.`.
                _ if bare.starts_with("ssl.quorum.") => {
                    let client_form = format!("ssl.{}", &bare["ssl.quorum.".len()..]);
                    if !config.quorum_tls.apply(&client_form, key, value)? {
                        config.unknown_keys.push(key.to_string());
                    }
                }
                _ if bare.starts_with("ssl.") && config.tls.apply(bare, key, value)? => {}
                _ if config.quorum_auth.apply(bare, value) => {}
                // QuorumCnxManager's connection-handling thread pool: threads are per
                // connection here.
                "quorum.cnxn.threads.size" => {}
                "maxClientCnxns" => {
                    config.limits.connections_per_ip_max = parse_number(key, value)?
                }
                "minSessionTimeout" => min_timeout = Some(parse_number(key, value)?),
                "maxSessionTimeout" => max_timeout = Some(parse_number(key, value)?),
                "globalOutstandingLimit" => {
                    config.limits.outstanding_requests_max = parse_number(key, value)?
                }
                "jute.maxbuffer" => config.limits.frame_bytes_max = parse_java_int(key, value)?,
                "4lw.commands.whitelist" => {
                    config.four_letter_words = value
                        .split(',')
                        .map(|word| word.trim().to_string())
                        .filter(|word| !word.is_empty())
                        .collect()
                }
                "extendedTypesEnabled" => config.extended_types_enabled = parse_bool(value),
                "skipACL" => config.skip_acl = parse_bool(value),
                // `zookeeper.readonlymode.enabled` too: the bare key is stripped of the prefix.
                "readonlymode.enabled" => config.read_only_mode_enabled = parse_bool(value),
                "localSessionsEnabled" => config.local_sessions_enabled = parse_bool(value),
                "localSessionsUpgradingEnabled" => {
                    config.local_sessions_upgrading_enabled = parse_bool(value)
                }
                // Boolean.parseBoolean: only "true", in any case.
                "enforceQuota" => config.enforce_quota = value.eq_ignore_ascii_case("true"),
                "reconfigEnabled" => config.reconfig_enabled = java_boolean(value),
                // Boolean.parseBoolean(System.getProperty("zookeeper.digest.enabled", "true")).
                "digest.enabled" => config.digest_enabled = java_boolean(value),
                "DigestAuthenticationProvider.superDigest" => {
                    config.super_digest = Some(value.to_string())
                }
                "znode.container.checkIntervalMs" => {
                    config.container_check_interval_ms = parse_number(key, value)?
                }
                "znode.container.maxPerMinute" => {
                    config.container_max_per_minute = parse_number(key, value)?
                }
                "ringkeeper.cores" => config.cores = parse_number(key, value)?,
                "preAllocSize" => {
                    let kib: u64 = parse_number(key, value)?;
                    config.log_segment_bytes = kib.max(64) * 1024;
                }
                "snapCount" => config.snap_count = parse_number::<u64>(key, value)?.max(2),
                "quorum.protocol" => {
                    config.quorum_protocol = match value.trim() {
                        "ringkeeper" => QuorumProtocol::Ringkeeper,
                        "zookeeper" => QuorumProtocol::Zookeeper,
                        _ => return Err(invalid(key, value, "not ringkeeper or zookeeper")),
                    }
                }
                "ringkeeper.zxidCounterMax" => {
                    config.zxid_counter_max = Some(parse_number::<u32>(key, value)?.max(2))
                }
                "autopurge.snapRetainCount" => {
                    config.snap_retain_count = parse_number::<usize>(key, value)?.max(3)
                }
                "autopurge.purgeInterval" => {
                    config.purge_interval_hours = parse_number(key, value)?
                }
                "forceSync" => config.force_sync = !value.trim().eq_ignore_ascii_case("no"),
                "fsync.warningthresholdms" => config.fsync_warning_ms = parse_number(key, value)?,
                "initLimit" => quorum_keys.init_limit = Some(parse_number(key, value)?),
                "syncLimit" => quorum_keys.sync_limit = Some(parse_number(key, value)?),
                "standaloneEnabled" => config.standalone_enabled = parse_strict_bool(key, value)?,
                "quorumListenOnAllIPs" => {
                    config.quorum_listen_on_all_ips = parse_strict_bool(key, value)?
                }
                "peerType" => {
                    quorum_keys.peer_type_observer =
                        Some(match value.to_ascii_lowercase().as_str() {
                            "observer" => true,
                            "participant" => false,
                            _ => return Err(invalid(key, value, "Unrecognised peertype")),
                        })
                }
                // QuorumPeerConfig: "Only 3 is supported" (fast leader election).
                "electionAlg" => {
                    if parse_number::<u32>(key, value)? != 3 {
                        return Err(invalid(
                            key,
                            value,
                            "only 3 (fast leader election) is supported",
                        ));
                    }
                }
                "admin.enableServer" => config.admin.enabled = java_boolean(value),
                "admin.serverAddress" => config.admin.address = Some(parse_ip(key, value)?),
                "admin.serverPort" => config.admin.port = parse_number(key, value)?,
                "admin.commandURL" => {
                    if !value.starts_with('/') {
                        return Err(invalid(key, value, "must start with /"));
                    }
                    config.admin.command_url = value.trim_end_matches('/').to_string();
                }
                "admin.idleTimeout" => config.admin.idle_timeout_ms = parse_number(key, value)?,
                "admin.snapshot.enabled" => config.admin.snapshot_enabled = java_boolean(value),
                "admin.rateLimiterIntervalInMS" => {
                    config.admin.rate_limiter_interval = parse_number(key, value)?
                }
                "admin.restore.enabled" => config.admin.restore_enabled = java_boolean(value),
                "admin.forceHttps" => config.admin.force_https = java_boolean(value),
                "admin.portUnification" => config.admin.port_unification = java_boolean(value),
                "admin.needClientAuth" => config.admin.need_client_auth = java_boolean(value),
                "admin.restore.maxBytes" => {
                    config.admin.restore_max_bytes = parse_number(key, value)?
                }
                "serializeLastProcessedZxid.enabled" => {
                    config.admin.serialize_last_processed_zxid = java_boolean(value)
                }
                "metricsProvider.className" => {
                    config.metrics.prometheus = match value {
                        PROMETHEUS_PROVIDER => true,
                        DEFAULT_METRICS_PROVIDER => false,
                        other => {
                            config.warnings.push(format!(
                                "metricsProvider.className={other} is not available; \
                                 only {PROMETHEUS_PROVIDER} is (metrics stay on mntr and the AdminServer)"
                            ));
                            false
                        }
                    }
                }
                "metricsProvider.httpHost" => config.metrics.host = Some(parse_ip(key, value)?),
                "metricsProvider.httpPort" => config.metrics.port = parse_number(key, value)?,
                "metricsProvider.exportJvmInfo" => {
                    config.metrics.export_jvm_info = java_boolean(value)
                }
                other if ACCEPTED_KEYS.contains(&other) => {}
                _ if key.starts_with("server.") => {
                    // java.util.Properties: the last line with a key wins.
                    quorum_keys
                        .server_lines
                        .insert(key.to_string(), value.to_string());
                }
                _ if key.starts_with("group") || key.starts_with("weight") => {
                    quorum_keys.hierarchical_keys.push(key.to_string())
                }
                _ if crate::auth::properties::is_security_key(key) => {}
                _ => config.unknown_keys.push(key.to_string()),
            }
        }
        if config.tick_time_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "tickTime".into(),
                value: "0".into(),
                reason: "must be positive".into(),
            });
        }
        // The defaults are 2 and 20 ticks (ZooKeeperServer); a tickTime whose 20 ticks do not
        // fit an int is refused rather than wrapped (found by the zoo_cfg fuzz target).
        let ticks = |count: i32| {
            i32::try_from(config.tick_time_ms)
                .ok()
                .and_then(|tick| tick.checked_mul(count))
                .ok_or_else(|| ConfigError::Invalid {
                    key: "tickTime".into(),
                    value: config.tick_time_ms.to_string(),
                    reason: format!("{count} ticks overflow an int"),
                })
        };
        config.min_session_timeout_ms = match min_timeout.filter(|timeout| *timeout > 0) {
            Some(timeout) => timeout,
            None => ticks(2)?,
        };
        config.max_session_timeout_ms = match max_timeout.filter(|timeout| *timeout > 0) {
            Some(timeout) => timeout,
            None => ticks(20)?,
        };
        if config.min_session_timeout_ms > config.max_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "minSessionTimeout".into(),
                value: config.min_session_timeout_ms.to_string(),
                reason: "must not exceed maxSessionTimeout".into(),
            });
        }
        config.data_log_dir = data_log_dir.unwrap_or_else(|| config.data_dir.clone());
        config.client_address = SocketAddr::new(
            client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            client_port.unwrap_or(2181),
        );
        quorum_keys.client_port_given = client_port.is_some();
        config.secure_client_address = secure_port.map(|port| {
            SocketAddr::new(secure_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
        });
        if config.uses_tls() {
            check_tls_settings(&config)?;
        }
        let myid_text = read_myid(&config.data_dir)?;
        setup_quorum(&mut config, quorum_keys, myid_text, resolve)?;
        if config.quorum.is_some() {
            if config.ssl_quorum || config.quorum_port_unification {
                check_quorum_tls_settings(&config)?;
            }
            config.quorum_auth.validate().map_err(|reason| {
                invalid(
                    "quorum.auth.enableSasl",
                    &config.quorum_auth.enable_sasl.to_string(),
                    reason,
                )
            })?;
        }
        Ok(config)
    }

    /// Reads the security settings (`auth::load`) from the system properties ZooKeeper would
    /// see: the `-D` options of `conf/java.env` next to zoo.cfg and of the environment's
    /// `SERVER_JVMFLAGS` and `JVMFLAGS` (`system_properties`), then this zoo.cfg's keys.
    pub fn load_security(&mut self) -> Result<(), ConfigError> {
        let system_properties =
            crate::auth::properties::system_properties(&self.system_properties, &self.raw);
        let krb5_config = std::env::var_os("KRB5_CONFIG").map(PathBuf::from);
        let read_file = |path: &Path| -> std::io::Result<String> {
            let metadata = std::fs::metadata(path)?;
            if metadata.len() > crate::auth::jaas::JAAS_FILE_BYTES_MAX as u64 {
                return Err(std::io::Error::other("file too large"));
            }
            std::fs::read_to_string(path)
        };
        self.sasl = crate::auth::load(&system_properties, krb5_config.as_deref(), &read_file)
            .map_err(|error| ConfigError::Security(error.to_string()))?;
        if self.quorum.is_some() {
            self.quorum_sasl =
                crate::auth::quorum::load(&self.quorum_auth, &system_properties, &read_file)
                    .map_err(|error| ConfigError::Security(format!("quorum SASL: {error}")))?;
        }
        Ok(())
    }

    /// Whether a client port speaks TLS (a secure port, or port unification).
    pub fn uses_tls(&self) -> bool {
        self.secure_client_address.is_some() || self.port_unification
    }

    /// Whether a four-letter word is enabled by `4lw.commands.whitelist`.
    /// `isro` is enabled besides whenever read-only mode is (FourLetterCommands: Kazoo and the
    /// Java client ask it to find a read-write server).
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        (word == "isro" && self.read_only_mode_enabled)
            || self
                .four_letter_words
                .iter()
                .any(|allowed| allowed == "*" || allowed == word)
    }

    /// The session timeout a client gets: its request clamped to [min, max].
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }

    /// Parses the command line: `--config FILE`, `--port N`, `--bind ADDR`, `--data-dir DIR`,
    /// `--cores N`. Without `--config`, the defaults serve 127.0.0.1:2181 with data in ./data.
    /// The configuration the command line asks for: zoo.cfg (with the JVM flags deployments
    /// pass) when one is named, else standalone on 127.0.0.1:2181 with `./data`; then each
    /// option given overrides it.
    pub fn from_options(options: &ServerOptions) -> Result<Config, ConfigError> {
        let config_path = options.config.clone();
        let mut config = match &config_path {
            Some(path) => {
                // zkEnv.sh sources java.env from the configuration directory.
                let java_env = path
                    .parent()
                    .map(|dir| dir.join("java.env"))
                    .and_then(|file| std::fs::read_to_string(file).ok());
                let server_flags = std::env::var("SERVER_JVMFLAGS").ok();
                let flags = std::env::var("JVMFLAGS").ok();
                let properties = tls::jvm_system_properties(
                    java_env.as_deref(),
                    server_flags.as_deref(),
                    flags.as_deref(),
                );
                Config::from_file_with_properties(path, properties)?
            }
            None => Config {
                client_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
                ..Config::default()
            },
        };
        if let Some(port) = options.port {
            config.client_address.set_port(port);
        }
        if let Some(ip) = options.bind {
            config.client_address.set_ip(ip);
        }
        if let Some(dir) = &options.data_dir {
            config.data_dir = dir.clone();
            config.data_log_dir = dir.clone();
        }
        if let Some(cores) = options.cores {
            config.cores = cores;
        }
        config.load_security()?;
        Ok(config)
    }
}

/// The address the AdminServer listens on.
impl Config {
    pub fn admin_address(&self) -> SocketAddr {
        SocketAddr::new(
            self.admin.address.unwrap_or(self.client_address.ip()),
            self.admin.port,
        )
    }

    /// The address of the Prometheus endpoint, when it is configured.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.prometheus.then(|| {
            SocketAddr::new(
                self.metrics.host.unwrap_or(self.client_address.ip()),
                self.metrics.port,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QuorumPeerConfig with `dynamicConfigFile`: the members come from that file, the version
    /// from its name; static server lines beside it, or a version inside it, are refused.
    #[test]
    fn dynamic_config_file_holds_the_members_and_names_the_version() {
        let dir = std::env::temp_dir().join(format!("ringkeeper-dynamic-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), "2\n").unwrap();
        let dynamic = dir.join("zoo.cfg.dynamic.100000003");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n\
             server.3=127.0.0.1:2003:3003:observer;127.0.0.1:4003",
        )
        .unwrap();
        let static_path = dir.join("zoo.cfg");
        let base = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\ndynamicConfigFile={}\n",
            data.display(),
            dynamic.display()
        );
        std::fs::write(&static_path, &base).unwrap();
        let config = Config::from_file(&static_path).unwrap();
        let quorum = config.quorum.clone().unwrap();
        assert_eq!(quorum.version, 0x100000003);
        assert_eq!(quorum.participants(), vec![1, 2]);
        assert_eq!(quorum.observers(), vec![3]);
        assert_eq!(config.client_address, addr("127.0.0.1:4002"));
        assert_eq!(
            config.dynamic_config_file.as_deref(),
            Some(dynamic.as_path())
        );
        std::fs::write(
            &static_path,
            format!("{base}server.4=127.0.0.1:2004:3004;4004\n"),
        )
        .unwrap();
        assert!(Config::from_file(&static_path).is_err());
        std::fs::write(&static_path, &base).unwrap();
        std::fs::write(&dynamic, "server.1=127.0.0.1:2001:3001\nversion=5\n").unwrap();
        assert!(Config::from_file(&static_path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_keys_are_read_as_zookeeper_reads_them() {
        let config = Config::from_properties(
            "dataDir=/tmp/x\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
             ssl.keyStore.location=/k.p12\nzookeeper.ssl.trustStore.location=/t.jks\n\
             ssl.clientAuth=want\nclient.portUnification=true\n\
             X509AuthenticationProvider.superUser=CN=admin\n\
             authProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
             authProvider.2=com.example.Mine\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
        )
        .unwrap();
        assert_eq!(config.secure_client_address, Some(addr("127.0.0.1:2281")));
        assert!(config.port_unification && config.uses_tls());
        assert_eq!(config.tls.client_auth, ClientAuth::Want);
        assert_eq!(
            config.tls.trust_store.location,
            Some(PathBuf::from("/t.jks"))
        );
        assert_eq!(config.x509_super_user.as_deref(), Some("CN=admin"));
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        // ZooKeeper binds the secure port on every interface unless told otherwise.
        let all = Config::from_properties(
            "dataDir=/tmp/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n",
        )
        .unwrap();
        assert_eq!(all.secure_client_address, Some(addr("0.0.0.0:2281")));
        // What the TLS layer cannot do is refused at startup.
        for bad in [
            "secureClientPort=2281\n",
            "secureClientPort=2281\nssl.keyStore.location=/k.pem\n",
            "client.portUnification=true\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\nssl.crl=true\n",
            "secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\nssl.authProvider=mine\n",
            "ssl.clientAuth=sometimes\n",
        ] {
            assert!(
                Config::from_properties(&format!("dataDir=/tmp/x\n{bad}")).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn jvm_system_properties_apply_under_zoo_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zoo.cfg");
        std::fs::write(
            &path,
            format!(
                "dataDir={}\nsecureClientPort=2281\nssl.clientAuth=none\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let properties = vec![
            (
                "zookeeper.ssl.keyStore.location".to_string(),
                "/k.p12".to_string(),
            ),
            ("zookeeper.ssl.clientAuth".to_string(), "want".to_string()),
            ("zookeeper.root.logger".to_string(), "INFO".to_string()),
            (
                "java.security.auth.login.config".to_string(),
                "/j".to_string(),
            ),
        ];
        let config = Config::from_file_with_properties(&path, properties).unwrap();
        assert_eq!(config.tls.key_store.location, Some(PathBuf::from("/k.p12")));
        // zoo.cfg's own line wins; properties ringkeeper does not read are kept, not applied.
        assert_eq!(config.tls.client_auth, ClientAuth::None);
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        assert_eq!(config.system_properties.len(), 4);
    }

    #[test]
    fn read_only_mode_comes_from_the_bare_system_property_and_zoo_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, "localSessionsEnabled=true\n").unwrap();
        let config = Config::from_file_with_properties(&path, Vec::new()).unwrap();
        assert!(!config.read_only_mode_enabled);
        assert!(config.local_sessions_enabled && !config.local_sessions_upgrading_enabled);
        // QuorumPeer: Boolean.getBoolean("readonlymode.enabled"), no `zookeeper.` prefix.
        let properties = vec![("readonlymode.enabled".to_string(), "true".to_string())];
        let config = Config::from_file_with_properties(&path, properties).unwrap();
        assert!(config.read_only_mode_enabled);
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        let config = Config::from_properties(
            "readonlymode.enabled=true\nlocalSessionsUpgradingEnabled=true\n",
        )
        .unwrap();
        assert!(config.read_only_mode_enabled && config.local_sessions_upgrading_enabled);
    }

    #[test]
    fn enforce_quota_is_read_as_zookeeper_reads_it() {
        let read = |text: &str| Config::from_properties(text).map(|config| config.enforce_quota);
        assert!(matches!(read("tickTime=1000"), Ok(false)));
        assert!(matches!(read("enforceQuota=TRUE"), Ok(true)));
        assert!(matches!(read("zookeeper.enforceQuota=true"), Ok(true)));
        // Boolean.parseBoolean("yes") is false.
        assert!(matches!(read("enforceQuota=yes"), Ok(false)));
        assert!(tls::is_server_property("enforceQuota"));
    }

    #[test]
    fn digest_enabled_is_read_as_zookeeper_reads_it() {
        let read = |text: &str| Config::from_properties(text).map(|config| config.digest_enabled);
        assert!(matches!(read("tickTime=1000"), Ok(true)));
        assert!(matches!(read("digest.enabled=false"), Ok(false)));
        assert!(matches!(read("zookeeper.digest.enabled=FALSE"), Ok(false)));
        // Boolean.parseBoolean("yes") is false.
        assert!(matches!(read("digest.enabled=yes"), Ok(false)));
        assert!(matches!(read("digest.enabled=True"), Ok(true)));
        assert!(tls::is_server_property("digest.enabled"));
    }

    #[test]
    fn zoo_cfg_keys_are_read_with_zookeeper_defaults() {
        let config = Config::from_properties(
            "# comment\ntickTime=1000\ndataDir=/tmp/zk\nclientPort=2182\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=ruok, srvr\nextendedTypesEnabled=true\njute.maxbuffer=0x10000\n\
             zookeeper.skipACL=yes\nmystery=1\ninitLimit=5\nserver.1=a:1:2\n",
        );
        let config = match config {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(config.tick_time_ms, 1000);
        assert_eq!(config.min_session_timeout_ms, 2000);
        assert_eq!(config.max_session_timeout_ms, 20000);
        assert_eq!(
            config.client_address,
            "127.0.0.1:2182".parse().unwrap_or(config.client_address)
        );
        assert_eq!(config.client_address.port(), 2182);
        assert_eq!(config.data_log_dir, PathBuf::from("/tmp/zk"));
        assert!(config.four_letter_word_enabled("ruok"));
        assert!(!config.four_letter_word_enabled("stat"));
        assert!(config.extended_types_enabled && config.skip_acl);
        assert_eq!(config.limits.frame_bytes_max, 0x10000);
        assert_eq!(config.unknown_keys, vec!["mystery".to_string()]);
        assert_eq!(config.negotiate_timeout(100), 2000);
        assert_eq!(config.negotiate_timeout(100_000), 20000);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        assert!(Config::from_properties("tickTime=abc").is_err());
        assert!(Config::from_properties("tickTime=0").is_err());
        assert!(Config::from_properties("clientPortAddress=nowhere").is_err());
        assert!(Config::from_properties("minSessionTimeout=9000\nmaxSessionTimeout=100").is_err());
    }

    #[test]
    fn command_line_defaults_to_loopback_2181_and_data() {
        let config = Config::from_options(&ServerOptions::default()).map_err(|e| e.to_string());
        let config = config.unwrap_or_default();
        assert_eq!(config.client_address.to_string(), "127.0.0.1:2181");
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.admin_address().to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics_address(), None);
        let options = ServerOptions {
            port: Some(3000),
            cores: Some(2),
            ..ServerOptions::default()
        };
        let config = Config::from_options(&options).unwrap_or_default();
        assert_eq!(config.client_address.port(), 3000);
        assert_eq!(config.cores, 2);
    }

    #[test]
    fn admin_and_metrics_keys_as_zookeeper_reads_them() {
        let config = Config::from_properties(
            "clientPortAddress=127.0.0.1\nclientPort=2181\nadmin.serverPort=18080\n\
             admin.commandURL=/cmds/\nzookeeper.admin.enableServer=false\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort=17000\nmetricsProvider.exportJvmInfo=false\n",
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(!config.admin.enabled);
        assert_eq!(config.admin.command_url, "/cmds");
        assert!(!config.admin.force_https && !config.admin.port_unification);
        let https = Config::from_properties(
            "clientPort=2181\nadmin.forceHttps=true\nzookeeper.admin.portUnification=TRUE\nadmin.needClientAuth=yes\n",
        )
        .unwrap();
        // Java's Boolean.parseBoolean: only "true", in any case.
        assert!(https.admin.force_https && https.admin.port_unification);
        assert!(!https.admin.need_client_auth);
        assert!(!https
            .unknown_keys
            .iter()
            .any(|key| key.starts_with("admin.")));
        assert_eq!(config.admin_address().to_string(), "127.0.0.1:18080");
        assert_eq!(
            config.metrics_address().map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:17000")
        );
        assert!(!config.metrics.export_jvm_info);
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        assert!(Config::from_properties("admin.serverPort=http").is_err());
        assert!(Config::from_properties("admin.commandURL=commands").is_err());
    }

    // ---- Ensemble configuration (QuorumPeerConfig, QuorumPeer.QuorumServer, ZooKeeper 3.9.3)

    const ENSEMBLE: &str = "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent/rk\n\
        server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:participant\n\
        server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183\n";

    fn with_myid(text: &str, myid: Option<&str>) -> Result<Config, ConfigError> {
        let myid = myid.map(str::to_string);
        Config::parse(text, &move |_: &Path| Ok(myid.clone()))
    }

    fn ok(text: &str, myid: Option<&str>) -> Config {
        match with_myid(text, myid) {
            Ok(config) => config,
            Err(error) => panic!("{error}\n{text}"),
        }
    }

    fn error(text: &str, myid: Option<&str>) -> String {
        match with_myid(text, myid) {
            Ok(config) => panic!("accepted: {text}\n{:?}", config.quorum),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn quorum_protocol_chooses_the_server_to_server_wire() {
        let default = ok(ENSEMBLE, Some("3\n"));
        assert_eq!(default.quorum_protocol, QuorumProtocol::Ringkeeper);
        let zookeeper = ok(
            &format!("{ENSEMBLE}quorum.protocol=zookeeper\n"),
            Some("3\n"),
        );
        assert_eq!(zookeeper.quorum_protocol, QuorumProtocol::Zookeeper);
        assert!(
            zookeeper.unknown_keys.is_empty(),
            "{:?}",
            zookeeper.unknown_keys
        );
        let wrong = error(&format!("{ENSEMBLE}quorum.protocol=zab\n"), Some("3\n"));
        assert!(wrong.contains("quorum.protocol"), "{wrong}");
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("bad address in test: {text}"))
    }

    /// QuorumPeerConfig's sslQuorum / portUnification / quorum.auth.* keys and QuorumX509Util's
    /// ssl.quorum.* (client-port formats; client hostname verification on by default).
    #[test]
    fn quorum_security_keys_are_read_and_checked() {
        let secure = format!(
            "{ENSEMBLE}sslQuorum=true\nportUnification=true\nsslQuorumReloadCertFiles=true\n\
             ssl.quorum.keyStore.location=/k.pem\nzookeeper.ssl.quorum.trustStore.location=/t.jks\n\
             ssl.quorum.clientAuth=want\nssl.quorum.enabledProtocols=TLSv1.2\n\
             quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
             quorum.auth.serverRequireSasl=true\nquorum.auth.server.saslLoginContext=QS\n\
             quorum.cnxn.threads.size=20\n"
        );
        let config = ok(&secure, Some("1\n"));
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        assert!(config.ssl_quorum && config.quorum_port_unification);
        assert!(config.ssl_quorum_reload_cert_files);
        assert_eq!(
            config.quorum_tls.trust_store.location,
            Some(PathBuf::from("/t.jks"))
        );
        assert_eq!(config.quorum_tls.client_auth, ClientAuth::Want);
        assert_eq!(config.quorum_tls.protocols(), vec!["TLSv1.2".to_string()]);
        assert!(config.quorum_tls.verifies_client_hostname());
        // The client port's settings are untouched.
        assert_eq!(config.tls.client_auth, ClientAuth::Need);
        assert!(config.tls.key_store.location.is_none());
        assert!(config.quorum_auth.server_require_sasl);
        assert_eq!(config.quorum_auth.server_login_context, "QS");
        assert_eq!(config.quorum_auth.learner_login_context, "QuorumLearner");
        for bad in [
            "sslQuorum=true\n",
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n",
            "portUnification=true\nssl.quorum.keyStore.location=/k\nssl.quorum.trustStore.location=/t\nssl.quorum.crl=true\n",
            "quorum.auth.serverRequireSasl=true\n",
            "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
        ] {
            error(&format!("{ENSEMBLE}{bad}"), Some("1\n"));
        }
        let unknown = ok(&format!("{ENSEMBLE}ssl.quorum.mystery=1\n"), Some("1\n"));
        assert_eq!(unknown.unknown_keys, vec!["ssl.quorum.mystery".to_string()]);
    }

    #[test]
    fn every_server_line_form_is_read() {
        let config = ok(ENSEMBLE, Some("2\n"));
        let quorum = config.quorum.clone().unwrap_or_else(|| panic!("no quorum"));
        assert_eq!(quorum.my_id, 2);
        assert_eq!((quorum.init_limit, quorum.sync_limit), (10, 5));
        assert_eq!(quorum.participants(), vec![1, 2]);
        assert_eq!(quorum.observers(), vec![3]);
        let one = &quorum.servers[&1];
        assert_eq!(one.host, "127.0.0.1");
        assert_eq!(one.quorum_addr, addr("127.0.0.1:2888"));
        assert_eq!(one.election_addr, addr("127.0.0.1:3888"));
        assert!(!one.observer && one.client_addr.is_none());
        let three = &quorum.servers[&3];
        assert!(three.observer);
        assert_eq!(three.client_addr, Some(addr("127.0.0.1:2183")));
        // A bare client port means every address (QuorumServer: "0.0.0.0").
        let config = ok(
            &ENSEMBLE.replace("2889:3889:participant", "2889:3889;2182"),
            Some("1"),
        );
        let two = &config.quorum.unwrap_or_else(|| panic!("no quorum")).servers[&2];
        assert_eq!(two.client_addr, Some(addr("0.0.0.0:2182")));
        assert_eq!(two.client_host.as_deref(), Some("0.0.0.0"));
        // The type is case-insensitive; `host:1:2;` (empty client part) has no client.
        let config = ok(
            &ENSEMBLE.replace(":observer;127.0.0.1:2183", ":OBSERVER;"),
            Some("1"),
        );
        let three = &config.quorum.unwrap_or_else(|| panic!("no quorum")).servers[&3];
        assert!(three.observer && three.client_addr.is_none());
    }

    #[test]
    fn ipv6_hosts_are_bracketed_and_hostnames_resolved() {
        let text = "initLimit=5\nsyncLimit=2\nserver.1=[::1]:2888:3888;[::1]:2181\n\
                    server.2=localhost:2889:3889\n";
        let config = ok(text, Some("1"));
        let quorum = config.quorum.unwrap_or_else(|| panic!("no quorum"));
        assert_eq!(quorum.servers[&1].quorum_addr, addr("[::1]:2888"));
        assert_eq!(quorum.servers[&1].host, "::1");
        assert_eq!(config.client_address, addr("[::1]:2181"));
        assert_eq!(quorum.servers[&2].host, "localhost");
        assert!(quorum.servers[&2].quorum_addr.ip().is_loopback());
        assert_eq!(quorum.servers[&2].quorum_addr.port(), 2889);
    }

    #[test]
    fn unresolvable_host_is_an_error_naming_the_line() {
        let text = ENSEMBLE.replace("server.2=127.0.0.1", "server.2=no-such-host.invalid");
        let message = error(&text, Some("1"));
        assert!(message.contains("server.2"), "{message}");
        assert!(message.contains("no-such-host.invalid"), "{message}");
    }

    #[test]
    fn standalone_unless_more_than_one_participant_or_standalone_disabled() {
        // No server lines; one participant line (HBase's form): standalone, as ZooKeeper 3.5+.
        assert!(ok("dataDir=/x", None).quorum.is_none());
        let single = "initLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:3888\n";
        let config = ok(single, None);
        assert!(config.quorum.is_none());
        assert_eq!(config.warnings.len(), 1);
        // Lines of a standalone server are checked but not resolved.
        assert!(ok("server.1=unresolvable.invalid:1:2", None)
            .quorum
            .is_none());
        // standaloneEnabled=false turns one participant into a one-server ensemble.
        let config = ok(&format!("standaloneEnabled=false\n{single}"), Some("1"));
        let quorum = config.quorum.unwrap_or_else(|| panic!("no quorum"));
        assert_eq!(quorum.participants(), vec![1]);
        assert!(!config.standalone_enabled);
        // ... and with no server line at all it is an error.
        assert!(error("standaloneEnabled=false", None).contains("participant"));
        // Observers need a quorum.
        let observers_only = "server.1=127.0.0.1:2888:3888:observer";
        assert!(error(observers_only, Some("1")).contains("observers"));
        let lone_with_observer = format!("{single}server.2=127.0.0.1:2889:3889:observer\n");
        assert!(error(&lone_with_observer, Some("1")).contains("observers"));
        // ZooKeeper's parseBoolean is strict for these keys.
        assert!(error("standaloneEnabled=yes", None).contains("standaloneEnabled"));
        assert!(ok("quorumListenOnAllIPs=TRUE", None).quorum_listen_on_all_ips);
        assert!(error("quorumListenOnAllIPs=1", None).contains("quorumListenOnAllIPs"));
    }

    #[test]
    fn myid_is_required_parsed_and_listed_in_quorum_mode() {
        assert!(error(ENSEMBLE, None).contains("myid file is missing"));
        assert!(error(ENSEMBLE, Some("two")).contains("not a number"));
        assert!(error(ENSEMBLE, Some("")).contains("not a number"));
        assert!(error(ENSEMBLE, Some("-1")).contains("not a number"));
        assert!(error(ENSEMBLE, Some("7")).contains("My id 7 not in the peer list"));
        // The first line only; surrounding whitespace is tolerated.
        let config = ok(ENSEMBLE, Some(" 3 \nsomething else\n"));
        assert_eq!(config.quorum.map(|quorum| quorum.my_id), Some(3));
        // ZooKeeper reads an existing myid file in standalone mode too, and fails on garbage.
        assert!(error("dataDir=/x", Some("x")).contains("not a number"));
        assert!(ok("dataDir=/x", Some("4")).quorum.is_none());
    }

    #[test]
    fn myid_is_read_from_the_data_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let text = ENSEMBLE.replace("/nonexistent/rk", &dir.path().display().to_string());
        assert!(Config::from_properties(&text).is_err());
        std::fs::write(dir.path().join("myid"), "1\n").unwrap_or_else(|error| panic!("{error}"));
        let config = Config::from_properties(&text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.quorum.map(|quorum| quorum.my_id), Some(1));
    }

    #[test]
    fn init_and_sync_limits_are_required_in_quorum_mode() {
        // ZooKeeper has no default: checkValidity fails with "initLimit is not set".
        let without_init = ENSEMBLE.replace("initLimit=10\n", "");
        assert!(error(&without_init, Some("1")).contains("initLimit is not set"));
        let zero_sync = ENSEMBLE.replace("syncLimit=5", "syncLimit=0");
        assert!(error(&zero_sync, Some("1")).contains("syncLimit is not set"));
        assert!(
            error(&ENSEMBLE.replace("syncLimit=5", "syncLimit=x"), Some("1")).contains("syncLimit")
        );
        // Standalone does not need them.
        assert!(ok("tickTime=100", None).quorum.is_none());
    }

    #[test]
    fn malformed_server_lines_are_errors() {
        let cases = [
            ("server.x=127.0.0.1:1:2", "not a number"),
            ("server.4=127.0.0.1:2900", "expected host"),
            ("server.4=127.0.0.1:2900:3900:observer:5", "expected host"),
            (
                "server.4=127.0.0.1:2900:3900:voter",
                "Unrecognised peertype",
            ),
            ("server.4=127.0.0.1:2900:2900", "must be different"),
            ("server.4=127.0.0.1:0:3900", "bad port"),
            ("server.4=127.0.0.1:70000:3900", "bad port"),
            ("server.4=127.0.0.1:http:3900", "bad port"),
            ("server.4=127.0.0.1:2900:3900;a:b:2181", "expected host"),
            ("server.4=127.0.0.1:2900:3900;2181;2182", "expected host"),
            ("server.4=127.0.0.1:2900:3900;x", "bad port"),
            ("server.4=[::1:2900:3900", "expected host"),
            ("server.4=a:1:2|b:1:2", "multiple addresses"),
            ("server.4=:2900:3900", "no host"),
            ("server.01=127.0.0.1:2900:3900", "also given by"),
        ];
        for (line, expected) in cases {
            let message = error(&format!("{ENSEMBLE}{line}\n"), Some("1"));
            assert!(message.contains(expected), "{line}: {message}");
            if !line.starts_with("server.01") {
                assert!(message.contains("server."), "{line}: {message}");
            }
        }
        // The same key twice: the last one wins, as in java.util.Properties.
        let config = ok(
            &format!("{ENSEMBLE}server.2=127.0.0.1:2999:3999\n"),
            Some("1"),
        );
        let quorum = config.quorum.unwrap_or_else(|| panic!("no quorum"));
        assert_eq!(quorum.servers[&2].quorum_addr.port(), 2999);
    }

    #[test]
    fn duplicate_ports_are_errors() {
        let same_quorum_port = ENSEMBLE.replace("2889:3889", "2888:3889");
        assert!(error(&same_quorum_port, Some("1")).contains("conflicts"));
        let election_on_other_quorum = ENSEMBLE.replace("2889:3889", "2889:2888");
        assert!(error(&election_on_other_quorum, Some("1")).contains("conflicts"));
        // Own client port (clientPort, on every address) on its own quorum port.
        let client_on_quorum = format!("{ENSEMBLE}clientPort=2888\n");
        assert!(error(&client_on_quorum, Some("1")).contains("conflicts"));
        // Another server's client address on someone's election port.
        let client_on_election = ENSEMBLE.replace("127.0.0.1:2183", "127.0.0.1:3888");
        assert!(error(&client_on_election, Some("1")).contains("conflicts"));
        // Distinct hosts may share ports: the usual ensemble of three machines.
        let three_hosts = "initLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:3888\n\
                           server.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n";
        assert!(ok(three_hosts, Some("2")).quorum.is_some());
    }

    #[test]
    fn own_client_port_comes_from_the_server_line() {
        // No clientPort: the line's client address is used (QuorumPeerConfig.setupClientPort).
        let config = ok(ENSEMBLE, Some("3"));
        assert_eq!(config.client_address, addr("127.0.0.1:2183"));
        // clientPort on every address with the same port agrees; a different port does not.
        let agreeing = ok(&format!("{ENSEMBLE}clientPort=2183\n"), Some("3"));
        assert_eq!(agreeing.client_address, addr("127.0.0.1:2183"));
        let disagreeing = format!("{ENSEMBLE}clientPort=2184\n");
        assert!(error(&disagreeing, Some("3")).contains("client address"));
        let other_ip = format!("{ENSEMBLE}clientPort=2183\nclientPortAddress=127.0.0.2\n");
        assert!(error(&other_ip, Some("3")).contains("client address"));
        // Servers whose line has no client part keep clientPort.
        let config = ok(&format!("{ENSEMBLE}clientPort=2182\n"), Some("1"));
        assert_eq!(config.client_address.port(), 2182);
    }

    #[test]
    fn peer_type_disagreeing_with_the_server_line_is_a_warning() {
        // ZooKeeper 3.9.3 QuorumPeerConfig.setupPeerType: warns, the servers list wins.
        let config = ok(&format!("{ENSEMBLE}peerType=observer\n"), Some("1"));
        let quorum = config.quorum.unwrap_or_else(|| panic!("no quorum"));
        assert!(!quorum.servers[&1].observer);
        assert!(
            config.warnings.iter().any(|w| w.contains("Peer type")),
            "{:?}",
            config.warnings
        );
        let config = ok(&format!("{ENSEMBLE}peerType=observer\n"), Some("3"));
        assert!(!config.warnings.iter().any(|w| w.contains("Peer type")));
        assert!(error("peerType=witness", None).contains("Unrecognised peertype"));
    }

    #[test]
    fn even_ensembles_and_pairs_get_zookeepers_remarks_not_errors() {
        let config = ok(ENSEMBLE, Some("1"));
        assert!(config
            .warnings
            .iter()
            .any(|w| w.contains("No server failure will be tolerated")));
        let four = "initLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2881:3881\n\
                    server.2=127.0.0.1:2882:3882\nserver.3=127.0.0.1:2883:3883\n\
                    server.4=127.0.0.1:2884:3884\n";
        let config = ok(four, Some("4"));
        assert!(config.warnings.iter().any(|w| w.contains("odd number")));
    }

    #[test]
    fn other_quorum_keys() {
        assert!(error("electionAlg=1", None).contains("electionAlg"));
        assert!(ok("electionAlg=3", None).unknown_keys.is_empty());
        // Weighted/grouped quorums are refused in an ensemble, ignored standalone.
        let grouped = format!("{ENSEMBLE}group.1=1:2:3\n");
        assert!(error(&grouped, Some("1")).contains("hierarchical"));
        assert!(ok("weight.1=2", None)
            .warnings
            .iter()
            .any(|w| w.contains("hierarchical")));
    }

    #[test]
    fn zab_config_carries_membership_and_limits() {
        let quorum = ok(ENSEMBLE, Some("3"))
            .quorum
            .unwrap_or_else(|| panic!("no quorum"));
        let zab = quorum.zab_config(500);
        assert_eq!(zab.id, 3);
        assert_eq!(
            zab.participants.iter().copied().collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(zab.observers.iter().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(
            (zab.tick_ms, zab.init_limit_ticks, zab.sync_limit_ticks),
            (500, 10, 5)
        );
        assert!(zab.is_observer());
        assert_eq!(quorum.me().map(|me| me.id), Some(3));
    }
}
