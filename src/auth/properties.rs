//! [pure] The Java system properties the security settings are read from, gathered as a
//! ZooKeeper started by zkServer.sh would see them:
//!
//! 1. `-Dkey=value` options of `conf/java.env` (the file next to zoo.cfg that zkEnv.sh
//!    sources; its `SERVER_JVMFLAGS=` / `JVMFLAGS=` assignments), then of the environment's
//!    `SERVER_JVMFLAGS` and `JVMFLAGS`, as zkServer.sh puts them on the java command line (a
//!    later `-D` of the same key wins, as in Java); gathered once, by
//!    `config::tls::jvm_system_properties`;
//! 2. every zoo.cfg key `k` as `zookeeper.k` (QuorumPeerConfig.parseProperties turns unknown
//!    keys into system properties, over what the command line set). A key already written
//!    `zookeeper.k` is taken as is, as ringkeeper reads every such key. ringkeeper also takes
//!    `java.security.auth.login.config` (and the other `java.security.` keys) from zoo.cfg
//!    under its own name, where ZooKeeper would only see `zookeeper.java.security...`.

use std::collections::BTreeMap;

/// The system properties: the `-D` options in the order the JVM gets them (a later one
/// wins; gathered by `config::tls::jvm_system_properties`), then zoo.cfg keys.
pub fn system_properties(
    jvm_properties: &[(String, String)],
    zoo_cfg: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    for (key, value) in jvm_properties {
        properties.insert(key.clone(), value.clone());
    }
    for (key, value) in zoo_cfg {
        if key.starts_with("zookeeper.") || key.starts_with("java.security.") {
            properties.insert(key.clone(), value.clone());
        } else {
            properties.insert(format!("zookeeper.{key}"), value.clone());
        }
    }
    properties
}

/// zoo.cfg keys the security settings consume (not reported as unknown).
pub fn is_security_key(key: &str) -> bool {
    let bare = key.strip_prefix("zookeeper.").unwrap_or(key);
    bare.starts_with("authProvider.")
        || bare.starts_with("superUser")
        || bare.starts_with("java.security.")
        || matches!(
            bare,
            "sasl.serverconfig"
                | "SASLAuthenticationProvider.superPassword"
                | "allowSaslFailedClients"
                | "sessionRequireClientSASLAuth"
                | "enforce.auth.enabled"
                | "enforce.auth.schemes"
                | "kerberos.removeHostFromPrincipal"
                | "kerberos.removeRealmFromPrincipal"
                | "security.auth_to_local"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_cfg_keys_win_over_jvm_flags() {
        let mut zoo_cfg = BTreeMap::new();
        zoo_cfg.insert("superUser".to_string(), "cfg".to_string());
        zoo_cfg.insert(
            "zookeeper.allowSaslFailedClients".to_string(),
            "true".to_string(),
        );
        let flags = [("zookeeper.superUser".to_string(), "flag".to_string())];
        let properties = system_properties(&flags, &zoo_cfg);
        assert_eq!(
            properties.get("zookeeper.superUser").map(String::as_str),
            Some("cfg")
        );
        assert_eq!(
            properties
                .get("zookeeper.allowSaslFailedClients")
                .map(String::as_str),
            Some("true")
        );
        assert!(is_security_key("authProvider.1"));
        assert!(is_security_key(
            "zookeeper.kerberos.removeHostFromPrincipal"
        ));
        assert!(!is_security_key("tickTime"));
    }
}
