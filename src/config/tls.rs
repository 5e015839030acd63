//! The client port's TLS settings, under the names ZooKeeper's `ClientX509Util` reads
//! (`zookeeper.ssl.*`; in zoo.cfg with or without the `zookeeper.` prefix), and the `-D`
//! system properties deployments pass to zkServer.sh in `SERVER_JVMFLAGS` / `JVMFLAGS`
//! (often set in `conf/java.env`).

use std::path::PathBuf;

use super::ConfigError;

/// `ssl.clientAuth` (X509Util.ClientAuth): unset or empty means NEED, as in ZooKeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    #[default]
    Need,
}

/// `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    pub location: Option<PathBuf>,
    pub password: Option<String>,
    /// `.passwordPath`: a file holding the password; wins over `.password` (X509Util
    /// getPasswordFromConfigPropertyOrFile).
    pub password_path: Option<PathBuf>,
    /// `.type`: PEM, PKCS12 or JKS; unset means "from the file name".
    pub store_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub key_store: StoreSettings,
    pub trust_store: StoreSettings,
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (default TLSv1.3, ZooKeeper's on a JVM that has it).
    pub protocol: String,
    /// `ssl.enabledProtocols`: when unset, only `ssl.protocol` (SSLContextAndOptions).
    pub enabled_protocols: Option<Vec<String>>,
    /// `ssl.ciphersuites`: Java (IANA) names; unset means rustls's defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.hostnameVerification` (default true).
    pub hostname_verification: bool,
    /// `ssl.clientHostnameVerification`: also check a client certificate's names against
    /// the client's address. ZooKeeper's ClientX509Util leaves it off for the client port;
    /// it applies only while `ssl.hostnameVerification` is on.
    pub client_hostname_verification: bool,
    /// `ssl.authProvider`: only ZooKeeper's default, x509, is known.
    pub auth_provider: String,
    /// `ssl.crl` / `ssl.ocsp`: revocation checking, not implemented (refused when on).
    pub crl: bool,
    pub ocsp: bool,
    /// `ringkeeper.ssl.handshakeTimeoutMillis`: a TLS handshake not done by then closes
    /// the connection (Netty's SslHandler default, 10 s).
    pub handshake_timeout_ms: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            key_store: StoreSettings::default(),
            trust_store: StoreSettings::default(),
            client_auth: ClientAuth::Need,
            protocol: "TLSv1.3".into(),
            enabled_protocols: None,
            cipher_suites: None,
            hostname_verification: true,
            client_hostname_verification: false,
            auth_provider: "x509".into(),
            crl: false,
            ocsp: false,
            handshake_timeout_ms: 10_000,
        }
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// Java's `Boolean.parseBoolean`, which ZKConfig.getBoolean uses: "true" in any case is
/// true, anything else false.
fn java_bool(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

impl TlsSettings {
    /// Applies one `ssl.*` key (`bare`: without the `zookeeper.` prefix). Returns false for
    /// a key that is not a client-port TLS key (the caller reports it as unknown).
    pub fn apply(&mut self, bare: &str, key: &str, value: &str) -> Result<bool, ConfigError> {
        let Some(name) = bare.strip_prefix("ssl.") else {
            return Ok(false);
        };
        let path = || Some(PathBuf::from(value));
        match name {
            "keyStore.location" => self.key_store.location = path().filter(|_| !value.is_empty()),
            "keyStore.password" => self.key_store.password = Some(value.to_string()),
            "keyStore.passwordPath" => {
                self.key_store.password_path = path().filter(|_| !value.is_empty())
            }
            "keyStore.type" => self.key_store.store_type = Some(value.to_string()),
            "trustStore.location" => {
                self.trust_store.location = path().filter(|_| !value.is_empty())
            }
            "trustStore.password" => self.trust_store.password = Some(value.to_string()),
            "trustStore.passwordPath" => {
                self.trust_store.password_path = path().filter(|_| !value.is_empty())
            }
            "trustStore.type" => self.trust_store.store_type = Some(value.to_string()),
            "clientAuth" => {
                self.client_auth = match value.trim().to_ascii_uppercase().as_str() {
                    "" | "NEED" => ClientAuth::Need,
                    "WANT" => ClientAuth::Want,
                    "NONE" => ClientAuth::None,
                    _ => return Err(invalid(key, value, "must be none, want or need")),
                }
            }
            "protocol" => self.protocol = value.trim().to_string(),
            "enabledProtocols" => self.enabled_protocols = Some(list(value)),
            "ciphersuites" => self.cipher_suites = Some(list(value)),
            "hostnameVerification" => self.hostname_verification = java_bool(value),
            "clientHostnameVerification" => self.client_hostname_verification = java_bool(value),
            "authProvider" => self.auth_provider = value.trim().to_string(),
            "crl" => self.crl = java_bool(value),
            "ocsp" => self.ocsp = java_bool(value),
            // UnifiedServerSocket's detection timeout (quorum and admin ports); the client
            // port's detection waits for the first byte as Netty's DualModeSslHandler does.
            "handshakeDetectionTimeoutMillis" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The protocols to offer: `enabledProtocols`, else `protocol` alone (SSLContextAndOptions),
    /// except that the default TLSv1.3 also offers TLSv1.2: ZooKeeper 3.8 clients (Java,
    /// Kafka's) default to `ssl.protocol=TLSv1.2` and offer nothing newer, and a server that
    /// refused them would break every mixed deployment.
    pub fn protocols(&self) -> Vec<String> {
        match &self.enabled_protocols {
            Some(protocols) => protocols.clone(),
            None if self.protocol == "TLSv1.3" => vec!["TLSv1.3".into(), "TLSv1.2".into()],
            None => vec![self.protocol.clone()],
        }
    }

    /// Client hostname verification in effect (X509Util.isClientHostnameVerificationEnabled).
    pub fn verifies_client_hostname(&self) -> bool {
        self.hostname_verification && self.client_hostname_verification
    }
}

/// Splits a shell-style flags string on whitespace, honouring single and double quotes (as
/// the shell does when zkServer.sh expands `$SERVER_JVMFLAGS` in a quoted context).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// The `-Dname=value` system properties in a JVM flags string (`-Dname` alone is "").
pub fn system_properties(flags: &str) -> Vec<(String, String)> {
    shell_words(flags)
        .into_iter()
        .filter_map(|word| {
            let property = word.strip_prefix("-D")?;
            let (name, value) = property.split_once('=').unwrap_or((property, ""));
            (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

/// The system properties a zkServer.sh start would give the JVM, in command-line order (a
/// later setting wins): `conf/java.env` (a shell file sourced by zkEnv.sh: the `-D` words of
/// its `SERVER_JVMFLAGS=` / `JVMFLAGS=` assignments, since it cannot be run here), then
/// `SERVER_JVMFLAGS`, then `JVMFLAGS` from the environment (zkServer.sh:
/// `JVMFLAGS="$SERVER_JVMFLAGS $JVMFLAGS"`). The one gatherer of `-D` settings: TLS keys
/// apply them as zoo.cfg keys, and the security settings read them (`auth::properties`).
pub fn jvm_system_properties(
    java_env: Option<&str>,
    server_jvm_flags: Option<&str>,
    jvm_flags: Option<&str>,
) -> Vec<(String, String)> {
    let mut properties = Vec::new();
    if let Some(text) = java_env {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            // `SERVER_JVMFLAGS="-Dx=y $SERVER_JVMFLAGS"`: the words after the assignment.
            let Some((name, words)) = line.split_once('=') else {
                continue;
            };
            if !matches!(
                name.trim_start_matches("export ").trim(),
                "SERVER_JVMFLAGS" | "JVMFLAGS"
            ) {
                continue;
            }
            // The assigned value is one shell word, split again where zkServer.sh expands
            // it unquoted.
            properties.extend(system_properties(&shell_words(words).join(" ")));
        }
    }
    for flags in [server_jvm_flags, jvm_flags].into_iter().flatten() {
        properties.extend(system_properties(flags));
    }
    properties
}

/// Whether a `zookeeper.`-prefixed system property (given here without the prefix) is one
/// of the settings ZooKeeper reads as a system property and ringkeeper reads from zoo.cfg:
/// TLS, authentication providers, port unification, and the properties the README lists.
/// Others (logging, JMX, ...) are the JVM's business and are ignored.
pub fn is_server_property(bare: &str) -> bool {
    // ssl.quorum.* too: QuorumX509Util reads `zookeeper.ssl.quorum.*` system properties.
    bare.starts_with("ssl.")
        || bare.starts_with("authProvider.")
        // The AdminServer is configured as -Dzookeeper.admin.* as often as in zoo.cfg.
        || bare.starts_with("admin.")
        || matches!(
            bare,
            "client.portUnification"
                | "X509AuthenticationProvider.superUser"
                | "DigestAuthenticationProvider.superDigest"
                | "serverCnxnFactory"
                | "skipACL"
                | "extendedTypesEnabled"
                | "enforceQuota"
                | "digest.enabled"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_with_zookeeper_defaults() {
        let mut tls = TlsSettings::default();
        assert_eq!(tls.client_auth, ClientAuth::Need);
        assert_eq!(tls.protocols(), vec!["TLSv1.3", "TLSv1.2"]);
        assert!(!tls.verifies_client_hostname());
        let apply =
            |tls: &mut TlsSettings, key: &str, value: &str| tls.apply(key, key, value).unwrap();
        assert!(apply(&mut tls, "ssl.keyStore.location", "/k.p12"));
        assert!(apply(&mut tls, "ssl.keyStore.passwordPath", "/pw"));
        assert!(apply(&mut tls, "ssl.trustStore.type", "JKS"));
        assert!(apply(&mut tls, "ssl.clientAuth", "want"));
        assert!(apply(&mut tls, "ssl.protocol", "TLSv1.2"));
        assert_eq!(tls.protocols(), vec!["TLSv1.2".to_string()]);
        assert!(apply(&mut tls, "ssl.enabledProtocols", "TLSv1.3, TLSv1.2"));
        assert_eq!(tls.protocols(), vec!["TLSv1.3", "TLSv1.2"]);
        assert!(apply(&mut tls, "ssl.clientHostnameVerification", "true"));
        assert!(tls.verifies_client_hostname());
        assert!(apply(&mut tls, "ssl.hostnameVerification", "no"));
        assert!(!tls.verifies_client_hostname());
        assert_eq!(tls.key_store.location, Some(PathBuf::from("/k.p12")));
        assert_eq!(tls.key_store.password_path, Some(PathBuf::from("/pw")));
        assert_eq!(tls.client_auth, ClientAuth::Want);
        assert!(!apply(&mut tls, "ssl.quorum.keyStore.location", "/q"));
        assert!(!apply(&mut tls, "sslQuorum", "true"));
        assert!(tls
            .apply("ssl.clientAuth", "ssl.clientAuth", "maybe")
            .is_err());
        assert!(apply(&mut tls, "ssl.clientAuth", ""));
        assert_eq!(tls.client_auth, ClientAuth::Need);
    }

    #[test]
    fn system_properties_come_from_jvm_flags_as_the_shell_splits_them() {
        assert_eq!(
            system_properties(
                "-Xmx1g -Dzookeeper.ssl.keyStore.location=/a\\ b.jks '-Dquoted=x y' -Dflag -D"
            ),
            vec![
                (
                    "zookeeper.ssl.keyStore.location".to_string(),
                    "/a b.jks".to_string()
                ),
                ("quoted".to_string(), "x y".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn java_env_then_server_jvmflags_then_jvmflags() {
        let java_env = "# comment -Dignored=1\n\
                        export SERVER_JVMFLAGS=\"-Dzookeeper.ssl.clientAuth=want $SERVER_JVMFLAGS\"\n\
                        JVMFLAGS='-Dzookeeper.client.portUnification=true'\n\
                        CLIENT_JVMFLAGS=-Dzookeeper.client.secure=true\n";
        let properties = jvm_system_properties(
            Some(java_env),
            Some("-Dzookeeper.ssl.clientAuth=none"),
            Some("-Djava.security.auth.login.config=/jaas.conf"),
        );
        assert_eq!(
            properties,
            vec![
                ("zookeeper.ssl.clientAuth".to_string(), "want".to_string()),
                (
                    "zookeeper.client.portUnification".to_string(),
                    "true".to_string()
                ),
                ("zookeeper.ssl.clientAuth".to_string(), "none".to_string()),
                (
                    "java.security.auth.login.config".to_string(),
                    "/jaas.conf".to_string()
                ),
            ]
        );
        assert!(is_server_property("ssl.trustStore.location"));
        assert!(is_server_property("X509AuthenticationProvider.superUser"));
        assert!(is_server_property("ssl.quorum.keyStore.location"));
        assert!(!is_server_property("root.logger"));
    }
}
