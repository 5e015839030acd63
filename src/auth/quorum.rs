//! [pure] Quorum authentication: ZooKeeper's `quorum.auth.*` SASL between ensemble members
//! (QuorumPeerConfig, QuorumAuth, SaslQuorumAuthServer, SaslQuorumAuthLearner,
//! SaslQuorumServerCallbackHandler), as settings and as the two sides' state machines.
//!
//! The member that opens a connection is the *learner* (it proves itself with the JAAS
//! `QuorumLearner` section's `username` / `password`), the member that accepts it the
//! *server* (it checks against the `user_<name>` options of `QuorumServer`), on the election
//! port as on the quorum port, as in ZooKeeper (QuorumCnxManager.startConnection /
//! receiveConnection, Learner.connectToLeader / LearnerHandler). The mechanism is DIGEST-MD5
//! with protocol `zookeeper-quorum` and server name `zk-quorum-sasl-md5`.
//!
//! The rolling-upgrade semantics are ZooKeeper's:
//! - `quorum.auth.enableSasl=false` (default): no SASL at all.
//! - `quorum.auth.learnerRequireSasl=false`: this member's learner side skips SASL
//!   ("Skipping SASL authentication"); `true`: it authenticates, and a failure fails the link.
//! - `quorum.auth.serverRequireSasl=false`: this member accepts a learner that does not try
//!   to authenticate, and keeps one whose authentication failed (the failure is logged; the
//!   learner, told ERROR, gives the connection up itself); `true`: both are refused.
//! - Either `require` without `enableSasl`, or `serverRequireSasl` without
//!   `learnerRequireSasl`, is a configuration error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::digest_md5::{DigestCredentials, DigestMd5Client, DigestMd5Server, DigestStep};
use super::{jaas, AuthConfigError, SaslError};

/// QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME and QUORUM_SERVER_SASL_DIGEST.
pub const QUORUM_PROTOCOL: &str = "zookeeper-quorum";
pub const QUORUM_SERVER_NAME: &str = "zk-quorum-sasl-md5";
/// SaslQuorumAuthServer.MAX_RETRIES: challenges a server sends before it gives up.
pub const SERVER_STEPS_MAX: u32 = 5;

const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
const KERBEROS_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// The `quorum.auth.*` keys of zoo.cfg, with ZooKeeper's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthKeys {
    pub enable_sasl: bool,
    pub learner_require_sasl: bool,
    pub server_require_sasl: bool,
    /// `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`).
    pub learner_login_context: String,
    /// `quorum.auth.server.saslLoginContext` (default `QuorumServer`).
    pub server_login_context: String,
    /// `quorum.auth.kerberos.servicePrincipal` (default `zkquorum/localhost`); only Kerberos
    /// uses it, and Kerberos is not implemented for the quorum.
    pub kerberos_service_principal: String,
}

impl Default for QuorumAuthKeys {
    fn default() -> Self {
        QuorumAuthKeys {
            enable_sasl: false,
            learner_require_sasl: false,
            server_require_sasl: false,
            learner_login_context: "QuorumLearner".into(),
            server_login_context: "QuorumServer".into(),
            kerberos_service_principal: "zkquorum/localhost".into(),
        }
    }
}

impl QuorumAuthKeys {
    /// Applies one key (`Boolean.parseBoolean` for the flags, as QuorumPeerConfig). False
    /// when `key` is not a `quorum.auth.*` key.
    pub fn apply(&mut self, key: &str, value: &str) -> bool {
        let flag = || value.trim().eq_ignore_ascii_case("true");
        match key {
            "quorum.auth.enableSasl" => self.enable_sasl = flag(),
            "quorum.auth.learnerRequireSasl" => self.learner_require_sasl = flag(),
            "quorum.auth.serverRequireSasl" => self.server_require_sasl = flag(),
            "quorum.auth.learner.saslLoginContext" => {
                self.learner_login_context = value.trim().to_string()
            }
            "quorum.auth.server.saslLoginContext" => {
                self.server_login_context = value.trim().to_string()
            }
            "quorum.auth.kerberos.servicePrincipal" => {
                self.kerberos_service_principal = value.trim().to_string()
            }
            _ => return false,
        }
        true
    }

    /// QuorumPeerConfig.parseProperties's checks, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enable_sasl && self.server_require_sasl {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable \
                        quorum.auth.serverRequireSasl"
                .into());
        }
        if !self.enable_sasl && self.learner_require_sasl {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable \
                        quorum.auth.learnerRequireSasl"
                .into());
        }
        // A member that requires SASL of its learners but would not authenticate itself
        // could never join the quorum it guards.
        if !self.learner_require_sasl && self.server_require_sasl {
            return Err(
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable \
                        quorum.auth.serverRequireSasl"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Quorum SASL as loaded at startup (only when `quorum.auth.enableSasl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSasl {
    pub learner_require_sasl: bool,
    pub server_require_sasl: bool,
    /// The `user_<name>` options of the server login context.
    pub server_credentials: DigestCredentials,
    /// `username` and `password` of the learner login context.
    pub learner_username: String,
    pub learner_password: String,
    pub server_login_context: String,
}

fn section<'a>(
    jaas: &'a jaas::JaasConfig,
    name: &str,
) -> Result<&'a [jaas::LoginModuleEntry], AuthConfigError> {
    let entries = jaas.section(name).unwrap_or_default();
    if entries.is_empty() {
        // SaslQuorumAuthServer / SaslQuorumAuthLearner's constructors.
        return Err(AuthConfigError::Invalid(format!(
            "SASL-authentication failed because the specified JAAS configuration section \
             '{name}' could not be found."
        )));
    }
    if entries
        .iter()
        .any(|entry| entry.class_name == KERBEROS_LOGIN_MODULE)
    {
        return Err(AuthConfigError::Invalid(format!(
            "JAAS section '{name}': Kerberos (Krb5LoginModule) quorum authentication is not \
             implemented; use DigestLoginModule"
        )));
    }
    if !entries
        .iter()
        .any(|entry| entry.class_name == DIGEST_LOGIN_MODULE)
    {
        tracing::warn!(
            "JAAS section {name:?} has no DigestLoginModule entry; using its options for \
             DIGEST-MD5"
        );
    }
    Ok(entries)
}

/// Reads the two login contexts from the JAAS file (`java.security.auth.login.config` in
/// `properties`). None when `quorum.auth.enableSasl` is off.
pub fn load(
    keys: &QuorumAuthKeys,
    properties: &BTreeMap<String, String>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Option<QuorumSasl>, AuthConfigError> {
    keys.validate().map_err(AuthConfigError::Invalid)?;
    if !keys.enable_sasl {
        return Ok(None);
    }
    let Some(path) = properties.get("java.security.auth.login.config") else {
        return Err(AuthConfigError::Invalid(
            "quorum.auth.enableSasl=true needs a JAAS file (java.security.auth.login.config) \
             with the quorum login contexts"
                .into(),
        ));
    };
    let path = PathBuf::from(path);
    let text = read_file(&path).map_err(|source| AuthConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let jaas = jaas::parse(&text, properties).map_err(|source| AuthConfigError::Jaas {
        path: path.clone(),
        source,
    })?;
    let mut server_credentials = DigestCredentials::default();
    for entry in section(&jaas, &keys.server_login_context)? {
        for (key, value) in &entry.options {
            if let Some(user) = key.strip_prefix("user_") {
                server_credentials
                    .users
                    .insert(user.to_string(), value.clone());
            }
        }
    }
    let learner = section(&jaas, &keys.learner_login_context)?;
    let option = |name: &str| learner.iter().find_map(|entry| entry.option(name));
    let (Some(username), Some(password)) = (option("username"), option("password")) else {
        return Err(AuthConfigError::Invalid(format!(
            "JAAS section '{}' needs username and password options",
            keys.learner_login_context
        )));
    };
    Ok(Some(QuorumSasl {
        learner_require_sasl: keys.learner_require_sasl,
        server_require_sasl: keys.server_require_sasl,
        server_credentials,
        learner_username: username.to_string(),
        learner_password: password.to_string(),
        server_login_context: keys.server_login_context.clone(),
    }))
}

/// SaslQuorumServerCallbackHandler.handleAuthorizeCallback: the authorization id must be the
/// authentication id, and an id of the form `service/host@REALM` must name one of the
/// ensemble's hosts (`authorized_hosts`, QuorumPeer's authzHosts).
pub fn authorize(
    authentication_id: &str,
    authorization_id: &str,
    authorized_hosts: &[String],
) -> Result<(), String> {
    if authentication_id != authorization_id {
        return Err(format!(
            "authorization id {authorization_id:?} is not the authentication id \
             {authentication_id:?}"
        ));
    }
    let components: Vec<&str> = authorization_id.split(['/', '@']).collect();
    if components.len() == 3 && !authorized_hosts.iter().any(|host| host == components[1]) {
        return Err(format!(
            "SASL authorization completed, {} is not authorized to connect",
            components[1]
        ));
    }
    Ok(())
}

/// What the server side sends after a learner's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    /// IN_PROGRESS with this challenge.
    Challenge(Vec<u8>),
    /// SUCCESS with this final token: the learner authenticated as `id`.
    Success { token: Vec<u8>, id: String },
}

/// The server side of one connection's exchange (SaslQuorumAuthServer.authenticate).
pub struct QuorumAuthServer {
    digest: DigestMd5Server,
    steps: u32,
}

impl QuorumAuthServer {
    pub fn new(rng: &mut impl RngCore) -> QuorumAuthServer {
        QuorumAuthServer {
            digest: DigestMd5Server::new(QUORUM_PROTOCOL, QUORUM_SERVER_NAME, rng),
            steps: 0,
        }
    }

    /// One learner token in, the reply out; an error is the end (ERROR to the learner).
    pub fn evaluate(
        &mut self,
        token: &[u8],
        sasl: &QuorumSasl,
        authorized_hosts: &[String],
    ) -> Result<ServerReply, SaslError> {
        self.steps += 1;
        if self.steps > SERVER_STEPS_MAX + 1 {
            return Err(SaslError::TooManySteps);
        }
        match self.digest.evaluate(token, &sasl.server_credentials)? {
            DigestStep::Challenge(challenge) => Ok(ServerReply::Challenge(challenge)),
            DigestStep::Complete {
                token,
                authentication_id,
                authorization_id,
            } => {
                authorize(&authentication_id, &authorization_id, authorized_hosts)
                    .map_err(SaslError::Authentication)?;
                Ok(ServerReply::Success {
                    token,
                    id: authentication_id,
                })
            }
        }
    }
}

/// The learner side of one connection's exchange (SaslQuorumAuthLearner.authenticate).
pub fn learner_client(sasl: &QuorumSasl, rng: &mut impl RngCore) -> DigestMd5Client {
    DigestMd5Client::new(
        QUORUM_PROTOCOL,
        QUORUM_SERVER_NAME,
        &sasl.learner_username,
        &sasl.learner_password,
        rng,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const JAAS: &str = "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule \
        required user_test=\"secret\"; };\n\
        QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required \
        username=\"test\" password=\"secret\"; };\n\
        Wrong { org.apache.zookeeper.server.auth.DigestLoginModule required \
        username=\"test\" password=\"guess\"; };\n\
        Krb { com.sun.security.auth.module.Krb5LoginModule required principal=\"zkquorum/h@R\"; };";

    fn files(path: &Path) -> std::io::Result<String> {
        if path == Path::new("/jaas.conf") {
            Ok(JAAS.to_string())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    fn properties() -> BTreeMap<String, String> {
        [(
            "java.security.auth.login.config".to_string(),
            "/jaas.conf".to_string(),
        )]
        .into()
    }

    fn keys(pairs: &[(&str, &str)]) -> QuorumAuthKeys {
        let mut keys = QuorumAuthKeys::default();
        for (key, value) in pairs {
            assert!(keys.apply(key, value), "{key}");
        }
        keys
    }

    /// QuorumPeerConfig refuses the combinations that could never form a quorum.
    #[test]
    fn require_flags_need_enable_sasl_and_learner_before_server() {
        assert!(keys(&[("quorum.auth.serverRequireSasl", "true")])
            .validate()
            .is_err());
        assert!(keys(&[("quorum.auth.learnerRequireSasl", "true")])
            .validate()
            .is_err());
        assert!(keys(&[
            ("quorum.auth.enableSasl", "true"),
            ("quorum.auth.serverRequireSasl", "true")
        ])
        .validate()
        .is_err());
        assert!(keys(&[
            ("quorum.auth.enableSasl", "TRUE"),
            ("quorum.auth.learnerRequireSasl", "true"),
            ("quorum.auth.serverRequireSasl", "true")
        ])
        .validate()
        .is_ok());
        assert!(!QuorumAuthKeys::default().apply("quorum.cnxn.threads.size", "20"));
    }

    #[test]
    fn login_contexts_are_read_and_must_exist() {
        let off = load(&QuorumAuthKeys::default(), &properties(), &files).unwrap();
        assert!(off.is_none());
        let on = keys(&[("quorum.auth.enableSasl", "true")]);
        let sasl = load(&on, &properties(), &files).unwrap().unwrap();
        assert_eq!(sasl.learner_username, "test");
        assert_eq!(sasl.learner_password, "secret");
        assert_eq!(
            sasl.server_credentials
                .users
                .get("test")
                .map(String::as_str),
            Some("secret")
        );
        let mut missing = on.clone();
        missing.server_login_context = "Nope".into();
        assert!(load(&missing, &properties(), &files).is_err());
        let mut kerberos = on.clone();
        kerberos.server_login_context = "Krb".into();
        assert!(load(&kerberos, &properties(), &files).is_err());
        assert!(load(&on, &BTreeMap::new(), &files).is_err());
    }

    fn exchange(learner_context: &str) -> Result<String, SaslError> {
        let mut on = keys(&[("quorum.auth.enableSasl", "true")]);
        let server_sasl = load(&on, &properties(), &files).unwrap().unwrap();
        on.learner_login_context = learner_context.into();
        let learner_sasl = load(&on, &properties(), &files).unwrap().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut server = QuorumAuthServer::new(&mut rng);
        let mut learner = learner_client(&learner_sasl, &mut rng);
        let hosts = vec!["127.0.0.1".to_string()];
        let ServerReply::Challenge(challenge) = server.evaluate(b"", &server_sasl, &hosts)? else {
            panic!("expected a challenge");
        };
        let response = learner.evaluate(&challenge)?.expect("response");
        match server.evaluate(&response, &server_sasl, &hosts)? {
            ServerReply::Success { token, id } => {
                assert_eq!(learner.evaluate(&token)?, None);
                assert!(learner.is_complete());
                Ok(id)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_learner_with_the_right_password_is_authenticated_and_a_wrong_one_refused() {
        assert_eq!(exchange("QuorumLearner").unwrap(), "test");
        assert!(matches!(
            exchange("Wrong"),
            Err(SaslError::Authentication(_))
        ));
    }

    #[test]
    fn authorization_follows_the_callback_handler() {
        let hosts = vec!["zk1.example".to_string()];
        assert!(authorize("test", "test", &hosts).is_ok());
        assert!(authorize("test", "other", &hosts).is_err());
        assert!(authorize("zkquorum/zk1.example@R", "zkquorum/zk1.example@R", &hosts).is_ok());
        assert!(authorize("zkquorum/evil@R", "zkquorum/evil@R", &hosts).is_err());
    }

    #[test]
    fn the_server_gives_up_after_its_retries() {
        let sasl = load(
            &keys(&[("quorum.auth.enableSasl", "true")]),
            &properties(),
            &files,
        )
        .unwrap()
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut server = QuorumAuthServer::new(&mut rng);
        assert!(server.evaluate(b"", &sasl, &[]).is_ok());
        for _ in 0..SERVER_STEPS_MAX + 2 {
            assert!(server.evaluate(b"", &sasl, &[]).is_err());
        }
    }
}
