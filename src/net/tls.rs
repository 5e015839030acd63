//! [io] TLS on the client ports, as Apache ZooKeeper's NettyServerCnxnFactory serves it:
//!
//! - `secureClientPort`: every connection starts with a TLS handshake (the factory's
//!   `secure` mode);
//! - `client.portUnification=true`: the plaintext client port also takes TLS, told apart by
//!   the first byte, 0x16 (a TLS handshake record) for TLS and anything else for plaintext,
//!   as DualModeSslHandler falls back to plaintext on a first byte that is not a handshake
//!   record. So four-letter words and every plaintext client keep working on that port.
//!
//! rustls does the TLS (futures-rustls over glommio's futures-io stream); after the
//! handshake the connection runs the same read and write loops as a plaintext one, over the
//! TLS stream. The plaintext path is untouched: a plain port's connections never come here.
//!
//! A client certificate the trust store verified becomes the connection's `x509:<subject>`
//! id, and `super` for `X509AuthenticationProvider.superUser` (NettyServerCnxnFactory's
//! CertificateVerifier, X509AuthenticationProvider.handleAuthentication). With
//! `ssl.clientAuth=need` a client without a valid certificate fails the handshake; with
//! `want` one without a certificate is served with no x509 id. A failed or timed-out
//! handshake closes that connection, logged with its reason; no other is disturbed.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use thiserror::Error;
use tracing::{info, warn};

use crate::auth::keystore::{self, StoreType};
use crate::config::tls::{StoreSettings, TlsSettings};
use crate::config::{ClientAuth, Config};
use crate::jute::records::Id;

use super::{conn, CoreState};

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, Error)]
pub enum TlsSetupError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{key}: {source}")]
    Store {
        key: String,
        source: keystore::StoreError,
    },
    #[error("{0}")]
    Settings(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What every core's TLS connections share.
pub struct TlsContext {
    acceptor: futures_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    verify_client_hostname: bool,
    super_user: Option<String>,
}

/// How a listener's connections start.
#[derive(Clone)]
pub enum ListenerKind {
    Plain,
    Secure(Arc<TlsContext>),
    Unified(Arc<TlsContext>),
}

/// The password of a store: the file named by `.passwordPath` (less one trailing newline,
/// as SecretUtils.readSecret reads it) wins over `.password`; none is "".
fn store_password(store: &StoreSettings, key: String) -> Result<String, TlsSetupError> {
    if let Some(path) = &store.password_path {
        let text = std::fs::read_to_string(path).map_err(|source| TlsSetupError::Read {
            key,
            path: path.display().to_string(),
            source,
        })?;
        return Ok(text.strip_suffix('\n').unwrap_or(&text).to_string());
    }
    Ok(store.password.clone().unwrap_or_default())
}

/// A store's bytes, its type and its password. `prefix` is where its keys live: `ssl.` for
/// the client port, `ssl.quorum.` for the quorum (error messages name the key).
fn read_store(
    store: &StoreSettings,
    prefix: &str,
    which: &str,
) -> Result<Option<(Vec<u8>, StoreType, String)>, TlsSetupError> {
    let Some(path) = &store.location else {
        return Ok(None);
    };
    let data = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        key: format!("{prefix}{which}.location"),
        path: path.display().to_string(),
        source,
    })?;
    let kind = StoreType::from_property_or_file_name(
        store.store_type.as_deref(),
        &path.display().to_string(),
    )
    .map_err(|source| TlsSetupError::Store {
        key: format!("{prefix}{which}.type"),
        source,
    })?;
    Ok(Some((
        data,
        kind,
        store_password(store, format!("{prefix}{which}.passwordPath"))?,
    )))
}

/// A cipher suite's Java (IANA) name: rustls prints TLS 1.3 suites as `TLS13_...`.
fn java_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// The rustls protocol versions for `ssl.enabledProtocols` (or `ssl.protocol`). rustls has
/// no TLS 1.0 or 1.1; naming only those is an error, naming them with others a warning.
fn protocol_versions(
    names: &[String],
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    for name in names {
        let found: &[&'static rustls::SupportedProtocolVersion] = match name.as_str() {
            "TLSv1.3" => &[&rustls::version::TLS13],
            "TLSv1.2" => &[&rustls::version::TLS12],
            // SSLContext.getInstance("TLS"): every version the provider has.
            "TLS" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            other => {
                warn!("ssl.enabledProtocols: {other} is not available (TLSv1.2 and TLSv1.3 are); ignored");
                &[]
            }
        };
        for version in found {
            if !versions
                .iter()
                .any(|known| known.version == version.version)
            {
                versions.push(version);
            }
        }
    }
    if versions.is_empty() {
        return Err(TlsSetupError::Settings(format!(
            "ssl.enabledProtocols / ssl.protocol: none of {names:?} is available (TLSv1.2, TLSv1.3)"
        )));
    }
    Ok(versions)
}

/// The ring provider with the cipher suites `<prefix>ciphersuites` allows.
fn crypto_provider(
    tls: &TlsSettings,
    prefix: &str,
) -> Result<Arc<rustls::crypto::CryptoProvider>, TlsSetupError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        for name in names {
            if !provider
                .cipher_suites
                .iter()
                .any(|suite| &java_name(suite) == name)
            {
                warn!("{prefix}ciphersuites: {name} is not available; ignored");
            }
        }
        provider
            .cipher_suites
            .retain(|suite| names.contains(&java_name(suite)));
        if provider.cipher_suites.is_empty() {
            return Err(TlsSetupError::Settings(format!(
                "{prefix}ciphersuites: none of {names:?} is available"
            )));
        }
    }
    Ok(Arc::new(provider))
}

/// Builds the TLS context of the client ports from the `ssl.*` keys, reading the stores.
pub fn build(config: &Config) -> Result<Arc<TlsContext>, TlsSetupError> {
    let tls = &config.tls;
    let provider = crypto_provider(tls, "ssl.")?;
    let versions = protocol_versions(&tls.protocols())?;
    let Some((data, kind, password)) = read_store(&tls.key_store, "ssl.", "keyStore")? else {
        return Err(TlsSetupError::Settings(
            "ssl.keyStore.location is required for a TLS client port".into(),
        ));
    };
    let keys = keystore::load_key_store(&data, kind, &password).map_err(|source| {
        TlsSetupError::Store {
            key: "ssl.keyStore.location".into(),
            source,
        }
    })?;
    let verifier = match (
        tls.client_auth,
        read_store(&tls.trust_store, "ssl.", "trustStore")?,
    ) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, None) => {
            return Err(TlsSetupError::Settings(
                "ssl.trustStore.location is required unless ssl.clientAuth=none".into(),
            ))
        }
        (client_auth, Some((data, kind, password))) => {
            let anchors = keystore::load_trust_store(&data, kind, &password).map_err(|source| {
                TlsSetupError::Store {
                    key: "ssl.trustStore.location".into(),
                    source,
                }
            })?;
            let mut roots = rustls::RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(anchors);
            if ignored > 0 {
                warn!("ssl.trustStore.location: {ignored} certificates could not be used as trust anchors");
            }
            if added == 0 {
                return Err(TlsSetupError::Settings(
                    "ssl.trustStore.location: no usable trusted certificate".into(),
                ));
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if client_auth == ClientAuth::Want {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|error| TlsSetupError::Settings(format!("client verifier: {error}")))?
        }
    };
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(keys.chain, keys.key)?;
    info!(
        "TLS on the client port: protocols {:?}, clientAuth {:?}",
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        tls.client_auth
    );
    Ok(Arc::new(TlsContext {
        acceptor: futures_rustls::TlsAcceptor::from(Arc::new(server)),
        handshake_timeout: Duration::from_millis(tls.handshake_timeout_ms.max(1)),
        verify_client_hostname: tls.verifies_client_hostname(),
        super_user: config.x509_super_user.clone(),
    }))
}

/// Runs one accepted connection of a TLS or unified listener to its end. The connection's
/// maxClientCnxns slot is released here when it ends before `conn::run` takes it over.
pub async fn serve(
    state: Rc<CoreState>,
    stream: super::readiness::Stream,
    remote: SocketAddr,
    kind: ListenerKind,
) {
    let tls = match kind {
        ListenerKind::Plain => return conn::run(state, stream, remote, Vec::new()).await,
        ListenerKind::Secure(tls) => tls,
        ListenerKind::Unified(tls) => {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(1) if first[0] == TLS_HANDSHAKE_RECORD => tls,
                // Plaintext (or the end of the stream, which the read loop sees).
                Ok(_) => return conn::run(state, stream, remote, Vec::new()).await,
                Err(error) => {
                    info!("closing connection from {remote}: read error: {error}");
                    state.connection_counts.release(remote.ip());
                    return;
                }
            }
        }
    };
    let handshake = tls.acceptor.accept(stream);
    let timeout = tls.handshake_timeout;
    let outcome = futures_lite::future::or(async { Some(handshake.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    let stream = match outcome {
        Some(Ok(stream)) => stream,
        Some(Err(error)) => {
            info!("closing connection from {remote}: TLS handshake failed: {error}");
            state.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
            state.connection_counts.release(remote.ip());
            return;
        }
        None => {
            state.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
            info!(
                "closing connection from {remote}: TLS handshake not done within {} ms",
                timeout.as_millis()
            );
            state.connection_counts.release(remote.ip());
            return;
        }
    };
    let identities = match identities(stream.get_ref().1.peer_certificates(), remote, &tls) {
        Ok(identities) => identities,
        Err(reason) => {
            info!("closing connection from {remote}: {reason}");
            state.connection_counts.release(remote.ip());
            return;
        }
    };
    conn::run(state, stream, remote, identities).await
}

/// The auth ids of a verified peer chain (none without a client certificate).
fn identities(
    chain: Option<&[CertificateDer<'static>]>,
    remote: SocketAddr,
    tls: &TlsContext,
) -> Result<Vec<Id>, String> {
    let Some(leaf) = chain.and_then(|chain| chain.first()) else {
        return Ok(Vec::new());
    };
    if tls.verify_client_hostname {
        verify_client_hostname(leaf, remote)?;
    }
    let subject = crate::auth::x509::client_id(leaf.as_ref())
        .map_err(|error| format!("client certificate subject unreadable: {error}"))?;
    Ok(crate::auth::x509::auth_ids(
        &subject,
        tls.super_user.as_deref(),
    ))
}

/// ZKTrustManager's client hostname check: the certificate must name the client's address
/// (an IP SAN), or, for a loopback client, `localhost` (ZooKeeper falls back to the reverse
/// lookup of the address, which for loopback is localhost).
fn verify_client_hostname(leaf: &CertificateDer<'_>, remote: SocketAddr) -> Result<(), String> {
    if certificate_names(leaf, remote.ip(), None)? {
        return Ok(());
    }
    Err(format!(
        "client certificate does not name the client's address {} (ssl.clientHostnameVerification)",
        remote.ip()
    ))
}

/// Whether a certificate names `address` (an IP SAN), `host` (a DNS SAN; ZooKeeper's
/// fallback is the reverse lookup of the address, here the host the configuration gives for
/// it), or, for a loopback address, `localhost`. Err when the certificate cannot be read.
pub fn certificate_names(
    leaf: &CertificateDer<'_>,
    address: IpAddr,
    host: Option<&str>,
) -> Result<bool, String> {
    let certificate = webpki::EndEntityCert::try_from(leaf)
        .map_err(|error| format!("certificate unreadable: {error}"))?;
    let valid_for =
        |name: &ServerName<'_>| certificate.verify_is_valid_for_subject_name(name).is_ok();
    if valid_for(&ServerName::IpAddress(address.into())) {
        return Ok(true);
    }
    let mut names: Vec<&str> = host.into_iter().collect();
    if address.is_loopback() {
        names.push("localhost");
    }
    Ok(names
        .into_iter()
        .any(|name| ServerName::try_from(name).is_ok_and(|server_name| valid_for(&server_name))))
}

// ---- the quorum and election ports ----

/// One reading of the quorum stores: the rustls configurations of the connections this
/// member accepts (`server`) and dials (`client`).
pub struct QuorumTlsConfigs {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

/// TLS on the quorum and election ports, as ZooKeeper's QuorumX509Util configures it from
/// the `ssl.quorum.*` keys: this member's key store is both its server and its client
/// certificate (mutual TLS); a peer's chain must end at the quorum trust store, both ways;
/// with `ssl.quorum.hostnameVerification` (default true) the certificate of the member
/// dialled must name its address, and (QuorumX509Util.shouldVerifyClientHostname) so must
/// that of a member that connects. rustls checks the chain during the handshake; the names
/// are checked by the links after it ([`QuorumTls::check_peer`]), since the member a
/// connection speaks for is known only then.
///
/// With `sslQuorumReloadCertFiles` the store files are looked at before each new
/// connection and read again when one changed (ZooKeeper watches them with a
/// FileChangeWatcher); connections already up keep their session. A store that fails to
/// load keeps the previous reading, logged.
pub struct QuorumTls {
    settings: TlsSettings,
    reload: bool,
    current: std::sync::Mutex<(Vec<Option<std::time::SystemTime>>, Arc<QuorumTlsConfigs>)>,
}

/// Verifies a server's chain against the trust store and leaves its names to
/// [`QuorumTls::check_peer`] (which knows every name the member may present).
#[derive(Debug)]
struct ChainVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl rustls::client::danger::ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError;
        // webpki checks the chain before the name: a name error means the chain is good.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

const QUORUM: &str = "ssl.quorum.";

/// The key store under `prefix` (`ssl.` or `ssl.quorum.`), required.
fn load_keys(
    tls: &TlsSettings,
    prefix: &str,
    needed_for: &str,
) -> Result<keystore::KeyMaterial, TlsSetupError> {
    let Some((data, kind, password)) = read_store(&tls.key_store, prefix, "keyStore")? else {
        return Err(TlsSetupError::Settings(format!(
            "{prefix}keyStore.location is required for {needed_for}"
        )));
    };
    keystore::load_key_store(&data, kind, &password).map_err(|source| TlsSetupError::Store {
        key: format!("{prefix}keyStore.location"),
        source,
    })
}

/// The trust anchors of the trust store under `prefix`, required, with at least one usable.
fn load_roots(
    tls: &TlsSettings,
    prefix: &str,
    needed_for: &str,
) -> Result<rustls::RootCertStore, TlsSetupError> {
    let Some((data, kind, password)) = read_store(&tls.trust_store, prefix, "trustStore")? else {
        return Err(TlsSetupError::Settings(format!(
            "{prefix}trustStore.location is required for {needed_for}"
        )));
    };
    let anchors = keystore::load_trust_store(&data, kind, &password).map_err(|source| {
        TlsSetupError::Store {
            key: format!("{prefix}trustStore.location"),
            source,
        }
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(anchors);
    if ignored > 0 {
        warn!("{prefix}trustStore.location: {ignored} certificates could not be used as trust anchors");
    }
    if added == 0 {
        return Err(TlsSetupError::Settings(format!(
            "{prefix}trustStore.location: no usable trusted certificate"
        )));
    }
    Ok(roots)
}

fn build_quorum_configs(tls: &TlsSettings) -> Result<QuorumTlsConfigs, TlsSetupError> {
    let provider = crypto_provider(tls, QUORUM)?;
    let versions = protocol_versions(&tls.protocols())?;
    let keys = load_keys(tls, QUORUM, "quorum TLS")?;
    let roots = load_roots(tls, QUORUM, "quorum TLS")?;
    let roots = Arc::new(roots);
    let client_verifier = match tls.client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        client_auth => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
            let builder = if client_auth == ClientAuth::Want {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|error| {
                TlsSetupError::Settings(format!("quorum client verifier: {error}"))
            })?
        }
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(keys.chain.clone(), keys.key.clone_key())?;
    // A dialled link is only written to by the dialer, which detects the peer going away by
    // peeking at it (transport.rs closed_by_peer): nothing may arrive on it after the
    // handshake, so no TLS 1.3 session tickets.
    server.send_tls13_tickets = 0;
    let server_verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|error| TlsSetupError::Settings(format!("quorum server verifier: {error}")))?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainVerifier {
            inner: server_verifier,
        }))
        .with_client_auth_cert(keys.chain, keys.key)?;
    Ok(QuorumTlsConfigs {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

fn store_files(tls: &TlsSettings) -> Vec<std::path::PathBuf> {
    [&tls.key_store, &tls.trust_store]
        .into_iter()
        .flat_map(|store| [store.location.clone(), store.password_path.clone()])
        .flatten()
        .collect()
}

fn modification_times(files: &[std::path::PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    files
        .iter()
        .map(|file| std::fs::metadata(file).and_then(|m| m.modified()).ok())
        .collect()
}

impl QuorumTls {
    /// Reads the quorum stores (`ssl.quorum.*`); `reload` is `sslQuorumReloadCertFiles`.
    pub fn new(tls: &TlsSettings, reload: bool) -> Result<QuorumTls, TlsSetupError> {
        let times = modification_times(&store_files(tls));
        let configs = Arc::new(build_quorum_configs(tls)?);
        info!(
            "TLS on the quorum and election ports: protocols {:?}, clientAuth {:?}, \
             hostnameVerification {}, reload {reload}",
            tls.protocols(),
            tls.client_auth,
            tls.hostname_verification
        );
        Ok(QuorumTls {
            settings: tls.clone(),
            reload,
            current: std::sync::Mutex::new((times, configs)),
        })
    }

    /// The configurations for a new connection (read again first if a store file changed
    /// and reloading is on).
    pub fn configs(&self) -> Arc<QuorumTlsConfigs> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.reload {
            let times = modification_times(&store_files(&self.settings));
            if times != current.0 {
                match build_quorum_configs(&self.settings) {
                    Ok(configs) => {
                        info!("quorum TLS: a store file changed; certificates reloaded");
                        *current = (times, Arc::new(configs));
                    }
                    Err(error) => {
                        warn!("quorum TLS: a store file changed but cannot be loaded ({error}); keeping the previous certificates");
                        current.0 = times;
                    }
                }
            }
        }
        current.1.clone()
    }

    /// The checks after a handshake: a certificate where `ssl.quorum.clientAuth` asks for one
    /// (a dialled member always presents one), and, with hostname verification, one that
    /// names the peer's address or its configured host. `accepted`: the peer connected to
    /// this member (the client-hostname rule applies).
    pub fn check_peer(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
        address: IpAddr,
        host: Option<&str>,
        accepted: bool,
    ) -> Result<(), String> {
        let leaf = chain.and_then(|chain| chain.first());
        let Some(leaf) = leaf else {
            if accepted && self.settings.client_auth != ClientAuth::Need {
                return Ok(());
            }
            return Err("the peer presented no certificate".into());
        };
        let verify = if accepted {
            self.settings.verifies_client_hostname()
        } else {
            self.settings.hostname_verification
        };
        if !verify || certificate_names(leaf, address, host)? {
            return Ok(());
        }
        Err(format!(
            "the peer's certificate names neither its address {address}{} (ssl.quorum.hostnameVerification)",
            host.map(|host| format!(" nor {host}")).unwrap_or_default()
        ))
    }
}

// ---- the AdminServer ----

/// The rustls configuration of the AdminServer's HTTPS (`admin.forceHttps` or
/// `admin.portUnification`), as JettyAdminServer builds its SslContextFactory: the key store
/// and trust store of the `ssl.quorum.*` keys (QuorumX509Util), and, with
/// `admin.needClientAuth`, a client certificate that trust store verifies is required
/// (setNeedClientAuth). Without it no certificate is asked for (Jetty's wantClientAuth is
/// false). Jetty takes its protocols and cipher suites from the JVM's defaults, not from
/// `ssl.quorum.enabledProtocols` / `ciphersuites`; so does this (rustls's TLS 1.2 and 1.3).
/// ZooKeeper loads the trust store even when no client certificate is asked for and fails
/// without one; here it is read only when `admin.needClientAuth` needs it.
pub fn admin_server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let tls = &config.quorum_tls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let keys = load_keys(tls, QUORUM, "the AdminServer's HTTPS")?;
    let verifier = if config.admin.need_client_auth {
        let roots = load_roots(tls, QUORUM, "admin.needClientAuth")?;
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|error| TlsSetupError::Settings(format!("admin client verifier: {error}")))?
    } else {
        WebPkiClientVerifier::no_client_auth()
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(keys.chain, keys.key)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// What the `x509` scheme of an AdminServer command's `Authorization` header checks the
/// connection's certificate chain against: X509AuthenticationProvider's own trust manager,
/// built from the client port's `ssl.trustStore.*` keys (ClientX509Util), not from the
/// stores the AdminServer's TLS used. None (ZooKeeper: "No trust manager available", the
/// scheme authenticates nobody) when there is no such trust store or it cannot be read.
pub fn x509_command_verifier(
    config: &Config,
) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    config.tls.trust_store.location.as_ref()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match load_roots(&config.tls, "ssl.", "the x509 scheme") {
        Ok(roots) => roots,
        Err(error) => {
            warn!("AdminServer: the x509 scheme authenticates nobody: {error}");
            return None;
        }
    };
    match WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build() {
        Ok(verifier) => Some(verifier),
        Err(error) => {
            warn!("AdminServer: the x509 scheme authenticates nobody: {error}");
            None
        }
    }
}

/// The auth ids of the `x509` scheme for an AdminServer command
/// (X509AuthenticationProvider.handleAuthentication(HttpServletRequest)): the chain the
/// connection presented, checked again against `verifier`; its subject as `x509:<subject>`,
/// and `super` for `X509AuthenticationProvider.superUser`. Empty when there is no chain or
/// it does not verify.
pub fn x509_command_ids(
    chain: Option<&[CertificateDer<'static>]>,
    verifier: Option<&dyn rustls::server::danger::ClientCertVerifier>,
    super_user: Option<&str>,
) -> Vec<Id> {
    let Some((leaf, intermediates)) = chain.and_then(|chain| chain.split_first()) else {
        return Vec::new();
    };
    let Some(verifier) = verifier else {
        return Vec::new();
    };
    let now = rustls::pki_types::UnixTime::now();
    if let Err(error) = verifier.verify_client_cert(leaf, intermediates, now) {
        warn!("AdminServer: x509: the client certificate is not trusted: {error}");
        return Vec::new();
    }
    match crate::auth::x509::client_id(leaf.as_ref()) {
        Ok(subject) => crate::auth::x509::auth_ids(&subject, super_user),
        Err(error) => {
            warn!("AdminServer: x509: client certificate subject unreadable: {error}");
            Vec::new()
        }
    }
}
