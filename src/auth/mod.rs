//! Security: SASL on the client port (ZooKeeper's `GetSASLRequest` / `SetSASLResponse`
//! exchange, opcode 102), the JAAS file it is configured from, and the mapping of an
//! authenticated principal to the `sasl:` ACL id.
//!
//! - [`jaas`] [pure]: the JAAS login configuration file.
//! - [`digest_md5`] [pure]: the DIGEST-MD5 server, token in, token out.
//! - [`gssapi`]: the GSSAPI (Kerberos) server on MIT krb5 (reads the keytab); in a build
//!   without the `kerberos` feature, a stand-in that refuses a Kerberos login at startup.
//! - [`quorum`] [pure]: quorum authentication (`quorum.auth.*`): settings and the learner
//!   and server sides of the DIGEST-MD5 exchange between ensemble members.
//! - [`kerberos_name`] [pure]: KerberosName, auth_to_local rules, the authorized id.
//! - [`properties`] [pure]: system properties as ZooKeeper sees them (zoo.cfg keys and the
//!   `-D` options of `SERVER_JVMFLAGS` / `JVMFLAGS` / `conf/java.env`).
//! - [`x509`], [`der`] [pure]: x509 identities from verified client certificates, in Java's
//!   RFC 2253 form; [`keystore`], [`jks`] [pure]: the key and trust stores (PEM, PKCS12,
//!   JKS) they are verified with. The files and sockets are net/tls's.
//!
//! As in ZooKeeper (`ServerCnxnFactory.configureSaslLogin`, `SecurityUtils.createSaslServer`)
//! the server offers one mechanism: GSSAPI when its JAAS `Server` section logs in with
//! Kerberos (`Krb5LoginModule` with a `principal`), DIGEST-MD5 otherwise, none when there is no
//! such section. ZooKeeperServer.processSasl then adds `sasl:<authorized id>` to the
//! connection, and `super` when the id is a `zookeeper.superUser`.

pub mod der;
pub mod digest_md5;
#[cfg(feature = "kerberos")]
pub mod gssapi;
#[cfg(not(feature = "kerberos"))]
#[path = "gssapi_unavailable.rs"]
pub mod gssapi;
pub mod jaas;
pub mod jks;
pub mod kerberos_name;
pub mod keystore;
pub mod properties;
pub mod quorum;
pub mod x509;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::RngCore;
use thiserror::Error;

use digest_md5::{DigestCredentials, DigestMd5Server, DigestStep};
use gssapi::{GssapiAcceptor, GssapiServer};
use kerberos_name::{KerberosRules, PrincipalMapping};

/// A failed SASL exchange (Java's SaslException). Either way the client gets AuthFailed (or
/// SessionClosedRequireSaslAuth) and its connection is closed, unless
/// `zookeeper.allowSaslFailedClients` lets it stay.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The client broke the protocol (a malformed or unexpected token).
    #[error("{0}")]
    Protocol(String),
    /// Wrong credentials, unknown user, a rejected ticket.
    #[error("{0}")]
    Authentication(String),
    #[error("SASL token of {0} bytes is larger than {SASL_TOKEN_BYTES_MAX}")]
    TokenTooLarge(usize),
    #[error("more than {SASL_STEPS_MAX} SASL tokens on one connection")]
    TooManySteps,
}

#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Jaas {
        path: PathBuf,
        source: jaas::JaasError,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Largest SASL token taken from a client: a Kerberos AP-REQ carrying a large PAC fits;
/// DIGEST-MD5 refuses more than 4096 bytes itself.
pub const SASL_TOKEN_BYTES_MAX: usize = 64 * 1024;
/// SASL tokens one connection may send (DIGEST-MD5 takes 2, GSSAPI 3 or 4): a flood of
/// tokens ends that connection's exchange, and nothing else.
pub const SASL_STEPS_MAX: u32 = 16;

/// ZooKeeper's `SecurityUtils.createSaslServer(subject, "zookeeper", "zk-sasl-md5", ...)`.
pub const DIGEST_PROTOCOL: &str = "zookeeper";
pub const DIGEST_SERVER_NAME: &str = "zk-sasl-md5";

const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
const KERBEROS_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";
const SASL_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
const X509_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// What one GSSAPI step produced (with the `kerberos` feature or without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GssapiStep {
    Challenge(Vec<u8>),
    Complete {
        authentication_id: String,
        authorization_id: String,
    },
}

/// The mechanism the server offers.
#[derive(Debug, Clone)]
pub enum Mechanism {
    DigestMd5(DigestCredentials),
    Gssapi {
        principal: String,
        acceptor: GssapiAcceptor,
    },
}

/// Everything SASL on the client port needs, read once at startup.
#[derive(Debug, Clone)]
pub struct SaslSettings {
    /// None: no JAAS `Server` section, so no SASL server (a SASL request is answered OK with
    /// a null token, as ZooKeeper's processSasl does when `cnxn.zooKeeperSaslServer` is null).
    pub mechanism: Option<Mechanism>,
    pub mapping: PrincipalMapping,
    /// `zookeeper.superUser` and `zookeeper.superUser.<anything>` (isSaslSuperUser).
    pub super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_failed_clients: bool,
    /// AuthenticationHelper: `Some(schemes)` when `zookeeper.enforce.auth.enabled` (or
    /// `zookeeper.sessionRequireClientSASLAuth`, which means `sasl`) refuses requests from a
    /// connection without an id of one of these schemes.
    pub enforce_schemes: Option<Vec<String>>,
}

impl Default for SaslSettings {
    fn default() -> Self {
        SaslSettings {
            mechanism: None,
            mapping: PrincipalMapping {
                rules: KerberosRules::default_rule(""),
                remove_host: false,
                remove_realm: false,
            },
            super_users: Vec::new(),
            allow_failed_clients: false,
            enforce_schemes: None,
        }
    }
}

impl SaslSettings {
    /// AuthenticationHelper.isSaslAuthRequired.
    pub fn sasl_auth_required(&self) -> bool {
        self.enforce_schemes
            .as_ref()
            .is_some_and(|schemes| schemes.iter().any(|scheme| scheme == "sasl"))
    }

    /// AuthenticationHelper.enforceAuthentication: may a connection with these ids send
    /// requests other than auth and sasl?
    pub fn admits(&self, ids: &[crate::jute::records::Id]) -> bool {
        match &self.enforce_schemes {
            None => true,
            Some(schemes) => ids.iter().any(|id| schemes.contains(&id.scheme)),
        }
    }

    fn is_super_user(&self, id: &str) -> bool {
        !id.is_empty() && self.super_users.iter().any(|user| user == id)
    }
}

/// Java's Boolean.parseBoolean / Boolean.getBoolean: "true" in any case, nothing else.
fn java_bool(properties: &BTreeMap<String, String>, key: &str) -> bool {
    properties
        .get(key)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// The default realm, as Java's Kerberos configuration finds it: `java.security.krb5.realm`,
/// else `default_realm` in `[libdefaults]` of the krb5.conf (`java.security.krb5.conf`,
/// else `$KRB5_CONFIG`, the file MIT krb5 reads, else /etc/krb5.conf). "" when none
/// (KerberosName's fallback without a Kerberos configuration).
fn default_realm(
    properties: &BTreeMap<String, String>,
    krb5_config_env: Option<&Path>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> String {
    if let Some(realm) = properties.get("java.security.krb5.realm") {
        return realm.clone();
    }
    let path = properties
        .get("java.security.krb5.conf")
        .map(PathBuf::from)
        .or_else(|| krb5_config_env.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/etc/krb5.conf"));
    read_file(&path)
        .ok()
        .and_then(|text| krb5_default_realm(&text))
        .unwrap_or_default()
}

/// `default_realm = X` in the `[libdefaults]` section of a krb5.conf.
pub fn krb5_default_realm(text: &str) -> Option<String> {
    let mut in_libdefaults = false;
    for line in text.lines().take(100_000) {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
            continue;
        }
        if !in_libdefaults {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "default_realm" {
                return Some(value.trim().to_string());
            }
        }
    }
    None
}

/// Schemes with a server authentication provider (ProviderRegistry): ip and digest always,
/// plus those `zookeeper.authProvider.*` names. ringkeeper's ACLs know `sasl` whatever
/// authProvider says (see README); this list only decides what `enforce.auth.schemes` may
/// name, as AuthenticationHelper.validateConfiguredProperties checks.
fn provider_schemes(properties: &BTreeMap<String, String>) -> Vec<String> {
    let mut schemes = vec!["ip".to_string(), "digest".to_string()];
    for (key, value) in properties {
        if key.starts_with("zookeeper.authProvider.") {
            match value.trim() {
                SASL_PROVIDER_CLASS => schemes.push("sasl".into()),
                X509_PROVIDER_CLASS => schemes.push("x509".into()),
                _ => {}
            }
        }
    }
    schemes
}

/// Reads the settings from system properties (see [`properties`]). `read_file` reads the
/// JAAS file and krb5.conf; `krb5_config_env` is `$KRB5_CONFIG`. When the JAAS section logs
/// in with Kerberos, the acceptor credential is acquired here, so a keytab without the
/// principal stops startup as ZooKeeper's Login does.
pub fn load(
    properties: &BTreeMap<String, String>,
    krb5_config_env: Option<&Path>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<SaslSettings, AuthConfigError> {
    let realm = default_realm(properties, krb5_config_env, read_file);
    let rules_text = properties
        .get("zookeeper.security.auth_to_local")
        .map(String::as_str)
        .unwrap_or("DEFAULT");
    let rules = KerberosRules::parse(rules_text, &realm).map_err(|error| {
        AuthConfigError::Invalid(format!("zookeeper.security.auth_to_local: {error}"))
    })?;
    let mut settings = SaslSettings {
        mapping: PrincipalMapping {
            rules,
            remove_host: java_bool(properties, "zookeeper.kerberos.removeHostFromPrincipal"),
            remove_realm: java_bool(properties, "zookeeper.kerberos.removeRealmFromPrincipal"),
        },
        super_users: properties
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix("zookeeper.superUser")
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
            .map(|(_, value)| value.clone())
            .collect(),
        allow_failed_clients: java_bool(properties, "zookeeper.allowSaslFailedClients"),
        ..SaslSettings::default()
    };
    // AuthenticationHelper.initConfigurations.
    if java_bool(properties, "zookeeper.sessionRequireClientSASLAuth") {
        settings.enforce_schemes = Some(vec!["sasl".into()]);
    } else if java_bool(properties, "zookeeper.enforce.auth.enabled") {
        settings.enforce_schemes = Some(
            properties
                .get("zookeeper.enforce.auth.schemes")
                .map(|schemes| {
                    schemes
                        .split(',')
                        .map(|scheme| scheme.trim().to_string())
                        .collect()
                })
                .unwrap_or_default(),
        );
    }
    if let Some(schemes) = &settings.enforce_schemes {
        if schemes.is_empty() {
            return Err(AuthConfigError::Invalid(
                "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be  \
                 configured."
                    .into(),
            ));
        }
        let available = provider_schemes(properties);
        for scheme in schemes {
            // sessionRequireClientSASLAuth alone needs no authProvider line in ringkeeper:
            // the sasl scheme is built in.
            if !available.contains(scheme) && scheme != "sasl" {
                return Err(AuthConfigError::Invalid(format!(
                    "Authentication scheme {scheme} is not available."
                )));
            }
        }
    }
    let Some(jaas_path) = properties.get("java.security.auth.login.config") else {
        return Ok(settings);
    };
    let jaas_path = PathBuf::from(jaas_path);
    let text = read_file(&jaas_path).map_err(|source| AuthConfigError::Read {
        path: jaas_path.clone(),
        source,
    })?;
    let jaas = jaas::parse(&text, properties).map_err(|source| AuthConfigError::Jaas {
        path: jaas_path.clone(),
        source,
    })?;
    let section_name = properties
        .get("zookeeper.sasl.serverconfig")
        .map(String::as_str)
        .unwrap_or("Server");
    let Some(section) = jaas.section(section_name) else {
        // configureSaslLogin: no section, no SASL (the file itself was readable).
        tracing::warn!(
            "no JAAS section {section_name:?} in {}: SASL is off",
            jaas_path.display()
        );
        return Ok(settings);
    };
    // SaslServerCallbackHandler: `user_<name>` options of every entry of the section.
    let mut credentials = DigestCredentials {
        super_password: properties
            .get("zookeeper.SASLAuthenticationProvider.superPassword")
            .cloned(),
        ..DigestCredentials::default()
    };
    for entry in section {
        for (key, value) in &entry.options {
            if let Some(user) = key.strip_prefix("user_") {
                credentials.users.insert(user.to_string(), value.clone());
            }
        }
    }
    let kerberos = section.iter().find(|entry| {
        entry.class_name == KERBEROS_LOGIN_MODULE && entry.option("principal").is_some()
    });
    settings.mechanism = Some(match kerberos {
        Some(entry) => {
            let principal = entry.option("principal").unwrap_or_default().to_string();
            if java_bool_option(entry.option("useKeyTab")) {
                if let Some(keytab) = entry.option("keyTab") {
                    // MIT's acceptor reads the keytab named by KRB5_KTNAME. Set once, at
                    // startup, before any thread that could read the environment exists.
                    std::env::set_var("KRB5_KTNAME", format!("FILE:{keytab}"));
                }
            }
            let acceptor = GssapiAcceptor::acquire(&principal).map_err(|error| {
                AuthConfigError::Invalid(format!(
                    "Could not configure server because SASL configuration did not allow the \
                     ZooKeeper server to authenticate itself properly: {error}"
                ))
            })?;
            Mechanism::Gssapi {
                principal,
                acceptor,
            }
        }
        None => {
            if !section
                .iter()
                .any(|entry| entry.class_name == DIGEST_LOGIN_MODULE)
            {
                tracing::warn!(
                    "JAAS section {section_name:?} has no DigestLoginModule or Krb5LoginModule \
                     entry; offering DIGEST-MD5 with its user_ options"
                );
            }
            Mechanism::DigestMd5(credentials)
        }
    });
    Ok(settings)
}

fn java_bool_option(value: Option<&str>) -> bool {
    value.is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// The SASL exchange of one connection.
pub struct SaslSession {
    mechanism: SessionMechanism,
    steps: u32,
}

enum SessionMechanism {
    Digest(DigestMd5Server),
    Gssapi(Box<GssapiServer>),
}

/// What one SASL request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslOutcome {
    /// The SetSASLResponse token; None is jute's null buffer.
    pub token: Option<Vec<u8>>,
    /// Set when the exchange completed: the id for `sasl:<id>`, and whether it is super.
    pub authorized: Option<(String, bool)>,
}

impl SaslSession {
    /// A new exchange for a connection; None when the server has no SASL mechanism.
    pub fn start(settings: &SaslSettings, rng: &mut impl RngCore) -> Option<SaslSession> {
        let mechanism = match settings.mechanism.as_ref()? {
            Mechanism::DigestMd5(_) => SessionMechanism::Digest(DigestMd5Server::new(
                DIGEST_PROTOCOL,
                DIGEST_SERVER_NAME,
                rng,
            )),
            Mechanism::Gssapi { acceptor, .. } => {
                SessionMechanism::Gssapi(Box::new(GssapiServer::new(acceptor)))
            }
        };
        Some(SaslSession {
            mechanism,
            steps: 0,
        })
    }

    /// `saslServer.evaluateResponse(token)`, then, once complete, the authorized id
    /// (SaslServerCallbackHandler's AuthorizeCallback) and whether it is a super user.
    pub fn evaluate(
        &mut self,
        token: &[u8],
        settings: &SaslSettings,
    ) -> Result<SaslOutcome, SaslError> {
        self.steps += 1;
        if self.steps > SASL_STEPS_MAX {
            return Err(SaslError::TooManySteps);
        }
        if token.len() > SASL_TOKEN_BYTES_MAX {
            return Err(SaslError::TokenTooLarge(token.len()));
        }
        let (token, ids) = match &mut self.mechanism {
            SessionMechanism::Digest(server) => {
                let credentials = match &settings.mechanism {
                    Some(Mechanism::DigestMd5(credentials)) => credentials,
                    _ => return Err(SaslError::Protocol("DIGEST-MD5 is not configured".into())),
                };
                match server.evaluate(token, credentials)? {
                    DigestStep::Challenge(challenge) => (Some(challenge), None),
                    DigestStep::Complete {
                        token,
                        authentication_id,
                        authorization_id,
                    } => (Some(token), Some((authentication_id, authorization_id))),
                }
            }
            SessionMechanism::Gssapi(server) => match server.evaluate(token)? {
                GssapiStep::Challenge(challenge) => (Some(challenge), None),
                GssapiStep::Complete {
                    authentication_id,
                    authorization_id,
                } => (None, Some((authentication_id, authorization_id))),
            },
        };
        let authorized = match ids {
            None => None,
            Some((authentication_id, authorization_id)) => {
                let id = settings
                    .mapping
                    .authorized_id(&authentication_id, &authorization_id)
                    .map_err(|error| SaslError::Authentication(error.to_string()))?;
                let super_user = settings.is_super_user(&id);
                Some((id, super_user))
            }
        };
        Ok(SaslOutcome { token, authorized })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn files(jaas: &'static str) -> impl Fn(&Path) -> std::io::Result<String> {
        move |path: &Path| {
            if path == Path::new("/conf/jaas.conf") {
                Ok(jaas.to_string())
            } else if path == Path::new("/conf/krb5.conf") {
                Ok("[libdefaults]\n default_realm = EXAMPLE.COM\n[realms]\n".to_string())
            } else {
                Err(std::io::Error::from(std::io::ErrorKind::NotFound))
            }
        }
    }

    const DIGEST_JAAS: &str = "Server { org.apache.zookeeper.server.auth.DigestLoginModule \
        required user_bob=\"bobsecret\" user_admin=\"adminsecret\"; };";

    #[test]
    fn no_jaas_file_means_no_sasl_and_no_enforcement() {
        let settings = load(&properties(&[]), None, &files(DIGEST_JAAS)).unwrap();
        assert!(settings.mechanism.is_none());
        assert!(settings.admits(&[]));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(SaslSession::start(&settings, &mut rng).is_none());
    }

    #[test]
    fn digest_users_super_users_and_kerberos_rules_are_read() {
        let settings = load(
            &properties(&[
                ("java.security.auth.login.config", "/conf/jaas.conf"),
                ("java.security.krb5.conf", "/conf/krb5.conf"),
                ("zookeeper.superUser", "admin"),
                ("zookeeper.superUser.2", "root"),
                ("zookeeper.superUserX", "not-this"),
                ("zookeeper.kerberos.removeRealmFromPrincipal", "TRUE"),
            ]),
            None,
            &files(DIGEST_JAAS),
        )
        .unwrap();
        match &settings.mechanism {
            Some(Mechanism::DigestMd5(credentials)) => {
                assert_eq!(
                    credentials.users.get("bob").map(String::as_str),
                    Some("bobsecret")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(settings.super_users, vec!["admin", "root"]);
        assert_eq!(settings.mapping.rules.default_realm, "EXAMPLE.COM");
        assert!(settings.mapping.remove_realm && !settings.mapping.remove_host);
    }

    #[test]
    fn a_missing_section_is_no_sasl_but_a_missing_file_is_an_error() {
        let other_section = load(
            &properties(&[
                ("java.security.auth.login.config", "/conf/jaas.conf"),
                ("zookeeper.sasl.serverconfig", "ZkServer"),
            ]),
            None,
            &files(DIGEST_JAAS),
        )
        .unwrap();
        assert!(other_section.mechanism.is_none());
        assert!(load(
            &properties(&[("java.security.auth.login.config", "/nope")]),
            None,
            &files(DIGEST_JAAS),
        )
        .is_err());
        assert!(load(
            &properties(&[("java.security.auth.login.config", "/conf/jaas.conf")]),
            None,
            &files("Server { broken"),
        )
        .is_err());
    }

    #[test]
    fn enforcement_follows_authentication_helper() {
        let load_with =
            |pairs: &[(&str, &str)]| load(&properties(pairs), None, &files(DIGEST_JAAS));
        let required = load_with(&[("zookeeper.sessionRequireClientSASLAuth", "true")]).unwrap();
        assert!(required.sasl_auth_required());
        let sasl_id = crate::jute::records::Id {
            scheme: "sasl".into(),
            id: "bob".into(),
        };
        assert!(required.admits(std::slice::from_ref(&sasl_id)));
        assert!(!required.admits(&[]));
        assert!(load_with(&[("zookeeper.enforce.auth.enabled", "true")]).is_err());
        assert!(load_with(&[
            ("zookeeper.enforce.auth.enabled", "true"),
            ("zookeeper.enforce.auth.schemes", "x509"),
        ])
        .is_err());
        let digest = load_with(&[
            ("zookeeper.enforce.auth.enabled", "true"),
            ("zookeeper.enforce.auth.schemes", "digest, sasl"),
        ])
        .unwrap();
        assert_eq!(
            digest.enforce_schemes,
            Some(vec!["digest".to_string(), "sasl".to_string()])
        );
        assert!(digest.sasl_auth_required());
    }

    #[test]
    fn session_bounds_steps_and_token_size() {
        let settings = load(
            &properties(&[("java.security.auth.login.config", "/conf/jaas.conf")]),
            None,
            &files(DIGEST_JAAS),
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut session = SaslSession::start(&settings, &mut rng).unwrap();
        assert!(matches!(
            session.evaluate(&vec![0; SASL_TOKEN_BYTES_MAX + 1], &settings),
            Err(SaslError::TokenTooLarge(_))
        ));
        let mut session = SaslSession::start(&settings, &mut rng).unwrap();
        let outcome = session.evaluate(b"", &settings).unwrap();
        assert!(outcome.token.is_some() && outcome.authorized.is_none());
        for _ in 1..SASL_STEPS_MAX {
            assert!(session.evaluate(b"", &settings).is_err());
        }
        assert_eq!(
            session.evaluate(b"", &settings),
            Err(SaslError::TooManySteps)
        );
    }

    #[test]
    fn krb5_conf_default_realm() {
        assert_eq!(
            krb5_default_realm(
                "[realms]\ndefault_realm = NO\n[libdefaults]\n  default_realm=A.B\n"
            ),
            Some("A.B".into())
        );
        assert_eq!(krb5_default_realm("[libdefaults]\n"), None);
    }
}
