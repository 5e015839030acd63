//! [pure] The dynamic configuration of an ensemble (ZooKeeper's `QuorumVerifier`, majority
//! form `QuorumMaj`): the `server.N` lines and their version, how `/zookeeper/config` and the
//! `zoo.cfg.dynamic.<version>` files show them, and the new configuration a `reconfig`
//! request asks for (PrepRequestProcessor's reconfig case).
//!
//! Text forms, byte for byte as ZooKeeper 3.9 writes them:
//!
//! - `/zookeeper/config` (QuorumMaj.toString): one `server.N=<spec>\n` per member in
//!   ascending id (QuorumMaj keeps a HashMap of Long ids, which iterates small ids in
//!   ascending order), then `version=<lowercase hex, no padding>` without a final newline;
//! - `zoo.cfg.dynamic.<hex>` (QuorumPeerConfig.writeDynamicConfig): the same lines without
//!   the version line (the version is the file name's suffix), joined by `\n`;
//! - a member's spec (QuorumServer.toString): `host:quorumPort:electionPort:participant` or
//!   `:observer`, an IPv6 host in brackets, then `;clientHost:clientPort` when the member's
//!   line has a client part (a bare `;port` shows as `0.0.0.0:port`).

use std::collections::BTreeMap;

use super::{parse_server_line, resolve, ConfigError, QuorumServer};

/// A membership and its version. Version 0 is a configuration nobody has established yet
/// (one read from static `server.N` lines); see Leader.lead and ZOOKEEPER-1783.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicConfig {
    pub version: i64,
    pub servers: BTreeMap<u64, QuorumServer>,
}

/// Why a reconfig request is refused, mapped to ZooKeeper's error codes by prep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconfigError {
    /// KeeperException.BadArgumentsException (a ConfigException of the new configuration,
    /// a malformed joiner, too few voters).
    BadArguments(String),
    /// What Java throws unchecked (NumberFormatException, IllegalArgumentException), which
    /// PrepRequestProcessor's catch-all answers MarshallingError.
    Marshalling(String),
}

/// How ZooKeeper's `QuorumServer.delimitedHostString` writes a host: IPv6 in brackets.
fn delimited_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `QuorumServer.toString`.
pub fn server_spec(server: &QuorumServer) -> String {
    let mut spec = format!(
        "{}:{}:{}:{}",
        delimited_host(&server.host),
        server.quorum_addr.port(),
        server.election_addr.port(),
        if server.observer {
            "observer"
        } else {
            "participant"
        }
    );
    if let (Some(host), Some(addr)) = (&server.client_host, server.client_addr) {
        spec.push_str(&format!(";{}:{}", delimited_host(host), addr.port()));
    }
    spec
}

/// ZooKeeper's `StringUtils.split`: split on `separator`, trim, drop empty pieces.
fn split_trimmed<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    text.split(separator)
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// The member of a `server.N=spec` line, resolved; any ConfigException is BadArguments.
fn parse_member(key: &str, value: &str) -> Result<QuorumServer, ReconfigError> {
    let line = parse_server_line(key, value).map_err(bad_arguments)?;
    let quorum_addr = resolve(key, value, &line.host, line.quorum_port).map_err(bad_arguments)?;
    let election_addr =
        resolve(key, value, &line.host, line.election_port).map_err(bad_arguments)?;
    let client_addr = match &line.client {
        Some((host, port)) => Some(resolve(key, value, host, *port).map_err(bad_arguments)?),
        None => None,
    };
    Ok(QuorumServer {
        id: line.id,
        host: line.host,
        quorum_addr,
        election_addr,
        observer: line.observer,
        client_addr,
        client_host: line.client.map(|(host, _)| host),
    })
}

fn bad_arguments(error: ConfigError) -> ReconfigError {
    ReconfigError::BadArguments(error.to_string())
}

/// `QuorumServer.checkAddressDuplicate`: no two members share a quorum or election address.
fn check_duplicate(joiner: &QuorumServer, other: &QuorumServer) -> Result<(), ReconfigError> {
    let mine = [joiner.quorum_addr, joiner.election_addr];
    let theirs = [other.quorum_addr, other.election_addr];
    if mine.iter().any(|address| theirs.contains(address)) {
        return Err(ReconfigError::BadArguments(format!(
            "Server {}'s address is the same as that of server {}",
            joiner.id, other.id
        )));
    }
    Ok(())
}

impl DynamicConfig {
    /// Ids of the voting members.
    pub fn participants(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|server| !server.observer)
            .map(|server| server.id)
            .collect()
    }

    pub fn observers(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|server| server.observer)
            .map(|server| server.id)
            .collect()
    }

    /// The member lines, one a line, without the version.
    fn member_lines(&self) -> Vec<String> {
        self.servers
            .values()
            .map(|server| format!("server.{}={}", server.id, server_spec(server)))
            .collect()
    }

    /// The data of `/zookeeper/config` (QuorumMaj.toString).
    pub fn to_znode_text(&self) -> String {
        let mut text = String::new();
        for line in self.member_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(&format!("version={:x}", self.version));
        text
    }

    /// The content of `zoo.cfg.dynamic.<version>` (writeDynamicConfig: no version line).
    pub fn to_dynamic_file_text(&self) -> String {
        self.member_lines().join("\n")
    }

    /// The client address member `me` must move its listeners to, listening on `listening`:
    /// its line's client address when that differs (QuorumPeer.processReconfig's
    /// `myNewQS.clientAddr != null && !myNewQS.clientAddr.equals(oldClientAddr)`). None when
    /// `me` is no member, its line has no client part (the listeners stay where they are,
    /// as in ZooKeeper), or nothing changes.
    pub fn client_address_change(
        &self,
        me: u64,
        listening: std::net::SocketAddr,
    ) -> Option<std::net::SocketAddr> {
        let wanted = self.servers.get(&me)?.client_addr?;
        (wanted != listening).then_some(wanted)
    }

    /// Whether `ids` holds a majority of this configuration's voters (QuorumMaj.containsQuorum).
    pub fn contains_quorum(&self, ids: &[u64]) -> bool {
        let voters = self.participants();
        let present = voters.iter().filter(|id| ids.contains(id)).count();
        present > voters.len() / 2
    }

    /// The incremental form: `leaving` ids removed, then each `server.N=spec` of `joining`
    /// added or replacing member N. `version` is the new configuration's (the reconfig's
    /// zxid).
    pub fn incremental(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        version: i64,
    ) -> Result<DynamicConfig, ReconfigError> {
        let mut next = self.servers.clone();
        if let Some(leaving) = leaving {
            for id in split_trimmed(leaving, ",") {
                // Long.parseLong's NumberFormatException is not caught as a config error.
                let id: i64 = id.parse().map_err(|_| {
                    ReconfigError::Marshalling(format!("For input string: \"{id}\""))
                })?;
                if let Ok(id) = u64::try_from(id) {
                    next.remove(&id);
                }
            }
        }
        if let Some(joining) = joining {
            for joiner in split_trimmed(joining, ",") {
                let parts = split_trimmed(joiner, "=");
                let [key, spec] = parts.as_slice() else {
                    return Err(ReconfigError::BadArguments(
                        "Wrong format of server string".into(),
                    ));
                };
                let id_text = &key[key.rfind('.').map_or(0, |dot| dot + 1)..];
                let id: u64 = id_text.parse().map_err(|_| {
                    ReconfigError::Marshalling(format!("For input string: \"{id_text}\""))
                })?;
                let member = parse_member(&format!("server.{id}"), spec)
                    .map_err(|_| ReconfigError::BadArguments("Reconfiguration failed".into()))?;
                if member.client_addr.is_none() {
                    return Err(ReconfigError::BadArguments(
                        "Wrong format of server string - each server should have 3 ports specified"
                            .into(),
                    ));
                }
                for other in next.values().filter(|other| other.id != id) {
                    check_duplicate(&member, other).map_err(|_| {
                        ReconfigError::BadArguments("Reconfiguration failed".into())
                    })?;
                }
                next.insert(id, member);
            }
        }
        Ok(DynamicConfig {
            version,
            servers: next,
        })
    }

    /// The non-incremental form: `members` (lines separated by commas or newlines, as
    /// java.util.Properties reads them) is the whole new membership
    /// (QuorumPeerConfig.parseDynamicConfig with QuorumMaj(Properties)).
    pub fn non_incremental(
        members: &str,
        standalone_enabled: bool,
        version: i64,
    ) -> Result<DynamicConfig, ReconfigError> {
        let mut servers = BTreeMap::new();
        for line in members.replace(',', "\n").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let Some(id_text) = key.strip_prefix("server.") else {
                // QuorumMaj(Properties) ignores every other key (and `version`, which the
                // reconfig's zxid replaces).
                continue;
            };
            let id: u64 = id_text.parse().map_err(|_| {
                ReconfigError::Marshalling(format!("For input string: \"{id_text}\""))
            })?;
            // A later line for the same id wins, as in Properties.
            servers.insert(id, parse_member(&format!("server.{id}"), value)?);
        }
        let config = DynamicConfig { version, servers };
        let voters = config.participants().len();
        let observers = config.observers().len();
        // parseDynamicConfig's IllegalArgumentExceptions.
        if voters == 0 && !standalone_enabled {
            return Err(ReconfigError::Marshalling(
                "standaloneEnabled = false then number of participants should be >0".into(),
            ));
        }
        if observers > 0 && (voters == 0 || (voters == 1 && standalone_enabled)) {
            return Err(ReconfigError::Marshalling(
                "Observers w/o participants is an invalid configuration".into(),
            ));
        }
        Ok(config)
    }

    /// PrepRequestProcessor's last check of the new configuration itself.
    pub fn check_voters(&self, standalone_enabled: bool) -> Result<(), ReconfigError> {
        let voters = self.participants().len();
        if standalone_enabled && voters < 2 {
            return Err(ReconfigError::BadArguments(
                "Reconfig failed - new configuration must include at least 2 followers".into(),
            ));
        }
        if voters < 1 {
            return Err(ReconfigError::BadArguments(
                "Reconfig failed - new configuration must include at least 1 follower".into(),
            ));
        }
        Ok(())
    }

    /// Parses the text of `/zookeeper/config` (as [`Self::to_znode_text`] writes it).
    pub fn from_znode_text(text: &str) -> Result<DynamicConfig, ReconfigError> {
        let mut version = 0;
        for line in text.lines() {
            if let Some(hex) = line.trim().strip_prefix("version=") {
                version = i64::from_str_radix(hex.trim(), 16)
                    .map_err(|_| ReconfigError::BadArguments(format!("bad version {hex:?}")))?;
            }
        }
        let mut config = DynamicConfig::non_incremental(text, true, version)?;
        config.version = version;
        Ok(config)
    }
}

/// The version a `zoo.cfg.dynamic.<hex>` file name carries (QuorumPeerConfig
/// .getVersionFromFilename: the part after the last `.dynamic.`).
pub fn version_from_filename(name: &str) -> Option<i64> {
    let (_, hex) = name.rsplit_once(".dynamic.")?;
    i64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> DynamicConfig {
        DynamicConfig::non_incremental(
            "server.1=127.0.0.1:2001:3001;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002:participant;4002\n\
             server.3=[::1]:2003:3003:observer",
            true,
            0x100000000,
        )
        .unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn znode_text_is_quorum_maj_to_string() {
        assert_eq!(
            three().to_znode_text(),
            "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002:participant;0.0.0.0:4002\n\
             server.3=[::1]:2003:3003:observer\n\
             version=100000000"
        );
        assert_eq!(
            three().to_dynamic_file_text(),
            "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n\
             server.2=127.0.0.1:2002:3002:participant;0.0.0.0:4002\n\
             server.3=[::1]:2003:3003:observer"
        );
        let parsed = DynamicConfig::from_znode_text(&three().to_znode_text());
        assert_eq!(parsed, Ok(three()));
    }

    #[test]
    fn incremental_removes_then_adds_and_checks_joiners() {
        let config = three();
        let next = config
            .incremental(
                Some("server.4=127.0.0.1:2004:3004:participant;127.0.0.1:4004"),
                Some("3, 9"),
                7,
            )
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(next.participants(), vec![1, 2, 4]);
        assert_eq!(next.version, 7);
        // no client part
        assert!(matches!(
            config.incremental(Some("server.4=127.0.0.1:2004:3004"), None, 7),
            Err(ReconfigError::BadArguments(_))
        ));
        assert!(matches!(
            config.incremental(Some("server.4"), None, 7),
            Err(ReconfigError::BadArguments(_))
        ));
        assert!(matches!(
            config.incremental(Some("server.4=garbage;1"), None, 7),
            Err(ReconfigError::BadArguments(_))
        ));
        // the address of another member
        assert!(matches!(
            config.incremental(Some("server.4=127.0.0.1:2001:3009;4009"), None, 7),
            Err(ReconfigError::BadArguments(_))
        ));
        assert!(matches!(
            config.incremental(None, Some("x"), 7),
            Err(ReconfigError::Marshalling(_))
        ));
        // a member that changes role or client port replaces its line
        let changed = config
            .incremental(Some("server.3=[::1]:2003:3003:participant;5003"), None, 8)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(changed.participants(), vec![1, 2, 3]);
    }

    #[test]
    fn a_member_moves_its_client_port_only_when_its_line_names_another() {
        let config = three();
        let at = |text: &str| text.parse().unwrap_or_else(|error| panic!("{error:?}"));
        // Member 1 listens where its line says: nothing to do.
        assert_eq!(config.client_address_change(1, at("127.0.0.1:4001")), None);
        // Its line names another port (or host) than the listeners have: move there.
        assert_eq!(
            config.client_address_change(1, at("127.0.0.1:2181")),
            Some(at("127.0.0.1:4001"))
        );
        // A bare `;port` is the wildcard address.
        assert_eq!(
            config.client_address_change(2, at("127.0.0.1:4002")),
            Some(at("0.0.0.0:4002"))
        );
        // No client part (member 3), or not a member (9): the listeners stay.
        assert_eq!(config.client_address_change(3, at("127.0.0.1:2181")), None);
        assert_eq!(config.client_address_change(9, at("127.0.0.1:2181")), None);
        // A reconfig that moves member 1's client port.
        let moved = config
            .incremental(
                Some("server.1=127.0.0.1:2001:3001:participant;127.0.0.1:5001"),
                None,
                9,
            )
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            moved.client_address_change(1, at("127.0.0.1:4001")),
            Some(at("127.0.0.1:5001"))
        );
        assert!(moved
            .to_dynamic_file_text()
            .contains("server.1=127.0.0.1:2001:3001:participant;127.0.0.1:5001"));
    }

    #[test]
    fn voters_and_quorums() {
        let config = three();
        assert!(config.contains_quorum(&[1, 2]));
        assert!(!config.contains_quorum(&[1, 3]));
        let one = config
            .incremental(None, Some("2"), 9)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert!(matches!(
            one.check_voters(true),
            Err(ReconfigError::BadArguments(_))
        ));
        assert_eq!(one.check_voters(false), Ok(()));
        assert!(matches!(
            DynamicConfig::non_incremental("server.1=a b c", true, 1),
            Err(ReconfigError::BadArguments(_))
        ));
        assert!(matches!(
            DynamicConfig::non_incremental("server.x=127.0.0.1:1:2", true, 1),
            Err(ReconfigError::Marshalling(_))
        ));
    }

    #[test]
    fn versions_come_from_file_names() {
        assert_eq!(
            version_from_filename("/etc/zk/zoo.cfg.dynamic.100000000"),
            Some(0x100000000)
        );
        assert_eq!(version_from_filename("zoo.cfg"), None);
    }
}
