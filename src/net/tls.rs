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

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use thiserror::Error;
use tracing::{info, warn};

use crate::auth::keystore::{self, StoreType};
use crate::config::tls::StoreSettings;
use crate::config::{ClientAuth, Config};
use crate::jute::records::Id;

use super::{conn, CoreState};

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, Error)]
pub enum TlsSetupError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{key}: {source}")]
    Store {
        key: &'static str,
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
fn store_password(store: &StoreSettings, key: &'static str) -> Result<String, TlsSetupError> {
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

/// A store's bytes, its type and its password.
fn read_store(
    store: &StoreSettings,
    prefix: &'static str,
) -> Result<Option<(Vec<u8>, StoreType, String)>, TlsSetupError> {
    let Some(path) = &store.location else {
        return Ok(None);
    };
    let (location_key, type_key, password_key) = match prefix {
        "keyStore" => (
            "ssl.keyStore.location",
            "ssl.keyStore.type",
            "ssl.keyStore.passwordPath",
        ),
        _ => (
            "ssl.trustStore.location",
            "ssl.trustStore.type",
            "ssl.trustStore.passwordPath",
        ),
    };
    let data = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        key: location_key,
        path: path.display().to_string(),
        source,
    })?;
    let kind = StoreType::from_property_or_file_name(
        store.store_type.as_deref(),
        &path.display().to_string(),
    )
    .map_err(|source| TlsSetupError::Store {
        key: type_key,
        source,
    })?;
    Ok(Some((data, kind, store_password(store, password_key)?)))
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

/// Builds the TLS context of the client ports from the `ssl.*` keys, reading the stores.
pub fn build(config: &Config) -> Result<Arc<TlsContext>, TlsSetupError> {
    let tls = &config.tls;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        for name in names {
            if !provider
                .cipher_suites
                .iter()
                .any(|suite| &java_name(suite) == name)
            {
                warn!("ssl.ciphersuites: {name} is not available; ignored");
            }
        }
        provider
            .cipher_suites
            .retain(|suite| names.contains(&java_name(suite)));
        if provider.cipher_suites.is_empty() {
            return Err(TlsSetupError::Settings(format!(
                "ssl.ciphersuites: none of {names:?} is available"
            )));
        }
    }
    let provider = Arc::new(provider);
    let versions = protocol_versions(&tls.protocols())?;
    let Some((data, kind, password)) = read_store(&tls.key_store, "keyStore")? else {
        return Err(TlsSetupError::Settings(
            "ssl.keyStore.location is required for a TLS client port".into(),
        ));
    };
    let keys = keystore::load_key_store(&data, kind, &password).map_err(|source| {
        TlsSetupError::Store {
            key: "ssl.keyStore.location",
            source,
        }
    })?;
    let verifier = match (tls.client_auth, read_store(&tls.trust_store, "trustStore")?) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, None) => {
            return Err(TlsSetupError::Settings(
                "ssl.trustStore.location is required unless ssl.clientAuth=none".into(),
            ))
        }
        (client_auth, Some((data, kind, password))) => {
            let anchors = keystore::load_trust_store(&data, kind, &password).map_err(|source| {
                TlsSetupError::Store {
                    key: "ssl.trustStore.location",
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
            state.connection_counts.release(remote.ip());
            return;
        }
        None => {
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
    let certificate = webpki::EndEntityCert::try_from(leaf)
        .map_err(|error| format!("client certificate unreadable: {error}"))?;
    let address = ServerName::IpAddress(remote.ip().into());
    if certificate
        .verify_is_valid_for_subject_name(&address)
        .is_ok()
    {
        return Ok(());
    }
    if remote.ip().is_loopback() {
        if let Ok(localhost) = ServerName::try_from("localhost") {
            if certificate
                .verify_is_valid_for_subject_name(&localhost)
                .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(format!(
        "client certificate does not name the client's address {} (ssl.clientHostnameVerification)",
        remote.ip()
    ))
}
