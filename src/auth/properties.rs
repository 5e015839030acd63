//! [pure] The Java system properties the security settings are read from, gathered as a
//! ZooKeeper started by zkServer.sh would see them:
//!
//! 1. `-Dkey=value` options of `conf/java.env` (the file next to zoo.cfg that zkEnv.sh
//!    sources; its `SERVER_JVMFLAGS=` / `JVMFLAGS=` assignments), then of the environment's
//!    `JVMFLAGS` and `SERVER_JVMFLAGS` (a later `-D` of the same key wins, as in Java);
//! 2. every zoo.cfg key `k` as `zookeeper.k` (QuorumPeerConfig.parseProperties turns unknown
//!    keys into system properties, over what the command line set). A key already written
//!    `zookeeper.k` is taken as is, as ringkeeper reads every such key. ringkeeper also takes
//!    `java.security.auth.login.config` (and the other `java.security.` keys) from zoo.cfg
//!    under its own name, where ZooKeeper would only see `zookeeper.java.security...`.

use std::collections::BTreeMap;

/// Largest java.env read.
pub const JAVA_ENV_BYTES_MAX: usize = 256 * 1024;
const FLAGS_MAX: usize = 4096;

/// Splits a shell word list (`a "b c" 'd'`), enough for JVM option strings.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
        if words.len() >= FLAGS_MAX {
            break;
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// The `-Dkey=value` (or `-Dkey`, value "") options of a JVM flag string, in order.
pub fn jvm_system_properties(flags: &str) -> Vec<(String, String)> {
    shell_words(flags)
        .into_iter()
        .filter_map(|word| {
            let definition = word.strip_prefix("-D")?;
            let (key, value) = definition.split_once('=').unwrap_or((definition, ""));
            (!key.is_empty()).then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

/// The JVM flag strings `conf/java.env` assigns to `SERVER_JVMFLAGS` or `JVMFLAGS`
/// (`export` optional; `$VAR` references are left out).
pub fn java_env_flags(text: &str) -> Vec<String> {
    let text = &text[..text.len().min(JAVA_ENV_BYTES_MAX)];
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            let (name, value) = line.split_once('=')?;
            matches!(name.trim(), "SERVER_JVMFLAGS" | "JVMFLAGS").then(|| {
                shell_words(value)
                    .into_iter()
                    .flat_map(|word| {
                        shell_words(&word)
                            .into_iter()
                            .filter(|inner| !inner.starts_with('$'))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .collect()
}

/// The system properties: JVM flag strings in order (later wins), then zoo.cfg keys.
pub fn system_properties(
    jvm_flag_strings: &[String],
    zoo_cfg: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    for flags in jvm_flag_strings {
        for (key, value) in jvm_system_properties(flags) {
            properties.insert(key, value);
        }
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
    fn jvm_flags_give_their_d_options() {
        assert_eq!(
            jvm_system_properties(
                "-Xmx1g -Djava.security.auth.login.config=/etc/zk/jaas.conf \
                 \"-Dzookeeper.superUser=a b\" -Dflag -D=x"
            ),
            vec![
                (
                    "java.security.auth.login.config".to_string(),
                    "/etc/zk/jaas.conf".to_string()
                ),
                ("zookeeper.superUser".to_string(), "a b".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn java_env_assignments_are_read() {
        let text = "# zookeeper env\nexport SERVER_JVMFLAGS=\"$SERVER_JVMFLAGS \
                    -Djava.security.auth.login.config=/j.conf\"\nJVMFLAGS='-Da=1'\nOTHER=-Db=2\n";
        let flags = java_env_flags(text);
        assert_eq!(flags.len(), 2);
        let properties = system_properties(&flags, &BTreeMap::new());
        assert_eq!(
            properties
                .get("java.security.auth.login.config")
                .map(String::as_str),
            Some("/j.conf")
        );
        assert_eq!(properties.get("a").map(String::as_str), Some("1"));
        assert!(!properties.contains_key("b"));
    }

    #[test]
    fn zoo_cfg_keys_win_over_jvm_flags() {
        let mut zoo_cfg = BTreeMap::new();
        zoo_cfg.insert("superUser".to_string(), "cfg".to_string());
        zoo_cfg.insert(
            "zookeeper.allowSaslFailedClients".to_string(),
            "true".to_string(),
        );
        let properties = system_properties(&["-Dzookeeper.superUser=flag".to_string()], &zoo_cfg);
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
