//! Configuration: the standard `zoo.cfg` format (Java properties, `key=value`), the command
//! line, and the one typed `Limits` struct every bound of the server comes from.
//!
//! ZooKeeper turns unknown zoo.cfg keys into `zookeeper.`-prefixed system properties, which is
//! how settings such as `extendedTypesEnabled`, `skipACL` or
//! `DigestAuthenticationProvider.superDigest` are commonly given in zoo.cfg; they are read
//! here under the same names, with or without the `zookeeper.` prefix.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

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
            super_digest: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            log_segment_bytes: 64 << 20,
            snap_count: 100_000,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            force_sync: true,
            fsync_warning_ms: 1000,
            cores: 0,
            raw: BTreeMap::new(),
            unknown_keys: Vec::new(),
            config_path: None,
        }
    }
}

/// Keys ZooKeeper knows that the standalone server accepts without acting on them.
const ACCEPTED_KEYS: &[&str] = &[
    "initLimit",
    "syncLimit",
    "admin.enableServer",
    "admin.serverPort",
    "admin.serverAddress",
    "standaloneEnabled",
    "reconfigEnabled",
    "metricsProvider.className",
    "secureClientPort",
    "dynamicConfigFile",
    "electionPortBindRetry",
    "quorumListenOnAllIPs",
    "syncEnabled",
];

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

impl Config {
    /// Reads a zoo.cfg file. Relative data directories are taken relative to the working
    /// directory, as ZooKeeper does.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_properties(&text)?;
        config.config_path = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn from_properties(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut client_port: Option<u16> = None;
        let mut client_ip: Option<IpAddr> = None;
        let mut min_timeout: Option<i32> = None;
        let mut max_timeout: Option<i32> = None;
        let mut data_log_dir: Option<PathBuf> = None;
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
                "autopurge.snapRetainCount" => {
                    config.snap_retain_count = parse_number::<usize>(key, value)?.max(3)
                }
                "autopurge.purgeInterval" => {
                    config.purge_interval_hours = parse_number(key, value)?
                }
                "forceSync" => config.force_sync = !value.trim().eq_ignore_ascii_case("no"),
                "fsync.warningthresholdms" => config.fsync_warning_ms = parse_number(key, value)?,
                other if ACCEPTED_KEYS.contains(&other) => {}
                other
                    if other.starts_with("server.")
                        || other.starts_with("group.")
                        || other.starts_with("weight.") => {}
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
        config.min_session_timeout_ms = min_timeout
            .filter(|timeout| *timeout > 0)
            .unwrap_or(2 * config.tick_time_ms as i32);
        config.max_session_timeout_ms = max_timeout
            .filter(|timeout| *timeout > 0)
            .unwrap_or(20 * config.tick_time_ms as i32);
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
        Ok(config)
    }

    /// Whether a four-letter word is enabled by `4lw.commands.whitelist`.
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words
            .iter()
            .any(|allowed| allowed == "*" || allowed == word)
    }

    /// The session timeout a client gets: its request clamped to [min, max].
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        requested_ms.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }

    /// Parses the command line: `--config FILE`, `--port N`, `--bind ADDR`, `--data-dir DIR`,
    /// `--cores N`. Without `--config`, the defaults serve 127.0.0.1:2181 with data in ./data.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut config_path: Option<PathBuf> = None;
        let mut overrides: Vec<(String, String)> = Vec::new();
        let mut index = 0;
        while index < args.len() {
            let flag = args[index].as_str();
            let value = || {
                args.get(index + 1)
                    .cloned()
                    .ok_or_else(|| ConfigError::Usage(format!("{flag} needs a value")))
            };
            match flag {
                "--config" | "-c" => config_path = Some(PathBuf::from(value()?)),
                "--port" => overrides.push(("port".into(), value()?)),
                "--bind" => overrides.push(("bind".into(), value()?)),
                "--data-dir" => overrides.push(("data-dir".into(), value()?)),
                "--cores" => overrides.push(("cores".into(), value()?)),
                "--help" | "-h" => return Err(ConfigError::Usage(USAGE.into())),
                other => {
                    // `ringkeeper path/to/zoo.cfg`, as zkServer.sh passes it.
                    if !other.starts_with('-') && config_path.is_none() {
                        config_path = Some(PathBuf::from(other));
                        index += 1;
                        continue;
                    }
                    return Err(ConfigError::Usage(format!(
                        "unknown argument {other}\n{USAGE}"
                    )));
                }
            }
            index += 2;
        }
        let mut config = match &config_path {
            Some(path) => Config::from_file(path)?,
            None => Config {
                client_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
                ..Config::default()
            },
        };
        for (key, value) in overrides {
            match key.as_str() {
                "port" => config
                    .client_address
                    .set_port(parse_number("--port", &value)?),
                "bind" => config.client_address.set_ip(value.parse().map_err(|_| {
                    ConfigError::Invalid {
                        key: "--bind".into(),
                        value: value.clone(),
                        reason: "not an IP address".into(),
                    }
                })?),
                "data-dir" => {
                    config.data_dir = PathBuf::from(&value);
                    config.data_log_dir = PathBuf::from(&value);
                }
                "cores" => config.cores = parse_number("--cores", &value)?,
                _ => {}
            }
        }
        Ok(config)
    }
}

pub const USAGE: &str =
    "usage: ringkeeper [--config zoo.cfg] [--port N] [--bind ADDR] [--data-dir DIR] [--cores N]
  Without --config: standalone on 127.0.0.1:2181, data under ./data.";

#[cfg(test)]
mod tests {
    use super::*;

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
        let config = Config::from_args(&[]).map_err(|e| e.to_string());
        let config = config.unwrap_or_default();
        assert_eq!(config.client_address.to_string(), "127.0.0.1:2181");
        assert_eq!(config.data_dir, PathBuf::from("data"));
        let args: Vec<String> = ["--port", "3000", "--cores", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let config = Config::from_args(&args).unwrap_or_default();
        assert_eq!(config.client_address.port(), 3000);
        assert_eq!(config.cores, 2);
    }
}
