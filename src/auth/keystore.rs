//! [pure] Key stores and trust stores from their bytes, as ZooKeeper's `X509Util` loads them
//! (`KeyStoreFileType`, `FileKeyStoreLoaderBuilderProvider`): PEM, PKCS12 and JKS. Reading
//! the files is the caller's (net/tls).
//!
//! - The type comes from `ssl.keyStore.type` / `ssl.trustStore.type` (any case), or when
//!   that is unset from the file name: `.pem`, `.jks`, `.p12` / `.pfx` / `.pkcs12`
//!   (KeyStoreFileType.fromFilename). Like Java 9+'s JKS keystore (`keystore.type.compat`),
//!   type JKS also reads a PKCS12 file.
//! - A key store yields one private key and its chain (the first key entry, as Java's
//!   KeyManager picks the first alias that fits); a trust store yields every trusted
//!   certificate, and the first certificate of each key entry (Java's TrustStoreUtil does
//!   the same).
//! - PKCS12 trusted certificates are those keytool marks trusted (the Java trusted-key-usage
//!   attribute), as Java reads them: a PKCS12 file from `openssl pkcs12 -export -nokeys` is
//!   an empty trust store to Java, and so here.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

use super::jks::{self, JksEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unknown store type {0:?} (PEM, PKCS12 or JKS)")]
    UnknownType(String),
    #[error(
        "cannot tell the store type of {0:?} from its name; set the .type key (PEM, PKCS12 or JKS)"
    )]
    UnknownExtension(String),
    #[error("PEM: {0}")]
    Pem(String),
    #[error("PKCS12: {0}")]
    Pkcs12(String),
    #[error("JKS: {0}")]
    Jks(#[from] jks::JksError),
    #[error("no private key in the key store")]
    NoKey,
    #[error("no certificate for the private key in the key store")]
    NoChain,
    #[error("no trusted certificate in the trust store")]
    NoTrustedCertificate,
}

impl StoreType {
    /// `KeyStoreFileType.fromPropertyValueOrFileName`.
    pub fn from_property_or_file_name(
        property: Option<&str>,
        path: &str,
    ) -> Result<StoreType, StoreError> {
        if let Some(value) = property.filter(|value| !value.trim().is_empty()) {
            return match value.trim().to_ascii_uppercase().as_str() {
                "PEM" => Ok(StoreType::Pem),
                "PKCS12" => Ok(StoreType::Pkcs12),
                "JKS" => Ok(StoreType::Jks),
                _ => Err(StoreError::UnknownType(value.to_string())),
            };
        }
        let lower = path.to_ascii_lowercase();
        let extension = lower.rsplit_once('.').map(|(_, extension)| extension);
        match extension {
            Some("pem") => Ok(StoreType::Pem),
            Some("jks") => Ok(StoreType::Jks),
            Some("p12") | Some("pfx") | Some("pkcs12") => Ok(StoreType::Pkcs12),
            _ => Err(StoreError::UnknownExtension(path.to_string())),
        }
    }
}

/// A server's (or client's) own key and certificate chain, end entity first.
#[derive(Debug)]
pub struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// A store's (PKCS#8 key, chain) pairs.
type KeyEntries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// Every (PKCS#8 key, chain) pair and every trusted certificate of a PKCS12 or JKS store.
fn load_binary(
    data: &[u8],
    kind: StoreType,
    password: &str,
) -> Result<(KeyEntries, Vec<Vec<u8>>), StoreError> {
    if kind == StoreType::Jks && jks::is_jks(data) {
        let mut keys = Vec::new();
        let mut trusted = Vec::new();
        for entry in jks::parse(data, password)? {
            match entry {
                JksEntry::PrivateKey { pkcs8, chain, .. } => keys.push((pkcs8, chain)),
                JksEntry::TrustedCertificate { certificate, .. } => trusted.push(certificate),
            }
        }
        return Ok((keys, trusted));
    }
    let store = p12_keystore::KeyStore::from_pkcs12(
        data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|error| StoreError::Pkcs12(error.to_string()))?;
    let mut keys = Vec::new();
    let mut trusted = Vec::new();
    for (_, entry) in store.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => keys.push((
                chain.key().as_der().to_vec(),
                chain
                    .certs()
                    .iter()
                    .map(|cert| cert.as_der().to_vec())
                    .collect(),
            )),
            p12_keystore::KeyStoreEntry::Certificate(cert) => trusted.push(cert.as_der().to_vec()),
            p12_keystore::KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok((keys, trusted))
}

/// The key and chain of a key store.
pub fn load_key_store(
    data: &[u8],
    kind: StoreType,
    password: &str,
) -> Result<KeyMaterial, StoreError> {
    if kind == StoreType::Pem {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(data)
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::Pem(error.to_string()))?;
        let key = match PrivateKeyDer::from_pem_slice(data) {
            Ok(key) => key,
            Err(_) if contains(data, b"ENCRYPTED PRIVATE KEY") => {
                return Err(StoreError::Pem(
                    "encrypted PEM private keys are not supported; use an unencrypted key or a PKCS12 store".into(),
                ))
            }
            Err(_) => return Err(StoreError::NoKey),
        };
        if chain.is_empty() {
            return Err(StoreError::NoChain);
        }
        return Ok(KeyMaterial { chain, key });
    }
    let (keys, _) = load_binary(data, kind, password)?;
    let (pkcs8, chain) = keys.into_iter().next().ok_or(StoreError::NoKey)?;
    if chain.is_empty() {
        return Err(StoreError::NoChain);
    }
    Ok(KeyMaterial {
        chain: chain.into_iter().map(CertificateDer::from).collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
    })
}

/// The trusted certificates of a trust store.
pub fn load_trust_store(
    data: &[u8],
    kind: StoreType,
    password: &str,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certificates: Vec<CertificateDer<'static>> = if kind == StoreType::Pem {
        CertificateDer::pem_slice_iter(data)
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::Pem(error.to_string()))?
    } else {
        let (keys, trusted) = load_binary(data, kind, password)?;
        trusted
            .into_iter()
            .chain(
                keys.into_iter()
                    .filter_map(|(_, chain)| chain.into_iter().next()),
            )
            .map(CertificateDer::from)
            .collect()
    };
    if certificates.is_empty() {
        return Err(StoreError::NoTrustedCertificate);
    }
    Ok(certificates)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_JKS: &[u8] = include_bytes!("../../tests/golden/tls/client.jks");
    const CLIENT_P12: &[u8] = include_bytes!("../../tests/golden/tls/client.p12");
    const CLIENT_PEM: &[u8] = include_bytes!("../../tests/golden/tls/client.pem");
    const TRUST_P12: &[u8] = include_bytes!("../../tests/golden/tls/trust.p12");
    const CA_PEM: &[u8] = include_bytes!("../../tests/golden/tls/ca.pem");
    const DN: &str = include_str!("../../tests/golden/tls/client.dn");

    #[test]
    fn the_type_comes_from_the_key_or_the_file_name() {
        let from = StoreType::from_property_or_file_name;
        assert_eq!(from(Some("pkcs12"), "x.jks").unwrap(), StoreType::Pkcs12);
        assert_eq!(from(Some("JKS"), "x").unwrap(), StoreType::Jks);
        assert_eq!(from(None, "/a/b.PEM").unwrap(), StoreType::Pem);
        assert_eq!(from(Some(""), "/a/b.pfx").unwrap(), StoreType::Pkcs12);
        assert_eq!(from(None, "/a/b.p12").unwrap(), StoreType::Pkcs12);
        assert!(matches!(
            from(Some("BCFKS"), "x"),
            Err(StoreError::UnknownType(_))
        ));
        assert!(matches!(
            from(None, "store"),
            Err(StoreError::UnknownExtension(_))
        ));
    }

    fn subject(material: &KeyMaterial) -> String {
        crate::auth::x509::client_id(material.chain[0].as_ref()).unwrap()
    }

    #[test]
    fn the_same_key_loads_from_pem_pkcs12_and_jks() {
        let pem = load_key_store(CLIENT_PEM, StoreType::Pem, "").unwrap();
        let p12 = load_key_store(CLIENT_P12, StoreType::Pkcs12, "p12-pass").unwrap();
        let jks = load_key_store(CLIENT_JKS, StoreType::Jks, "jks-pass").unwrap();
        for material in [&pem, &p12, &jks] {
            assert_eq!(subject(material), DN.trim_end());
        }
        assert_eq!(p12.chain[0], jks.chain[0]);
        // Type JKS reads a PKCS12 file too, as Java 9+ does.
        let compat = load_key_store(CLIENT_P12, StoreType::Jks, "p12-pass").unwrap();
        assert_eq!(compat.chain[0], p12.chain[0]);
    }

    #[test]
    fn trust_stores_yield_their_trusted_certificates() {
        let pem = load_trust_store(CA_PEM, StoreType::Pem, "").unwrap();
        let p12 = load_trust_store(TRUST_P12, StoreType::Pkcs12, "p12-pass").unwrap();
        assert_eq!(pem.len(), 1);
        assert_eq!(pem, p12);
        // The JKS key store holds the CA as a trusted entry besides the client's key.
        let jks = load_trust_store(CLIENT_JKS, StoreType::Jks, "jks-pass").unwrap();
        assert!(jks.contains(&pem[0]));
    }

    #[test]
    fn wrong_passwords_and_garbage_are_errors() {
        assert!(load_key_store(CLIENT_P12, StoreType::Pkcs12, "wrong").is_err());
        assert!(load_key_store(CLIENT_JKS, StoreType::Jks, "wrong").is_err());
        assert!(load_key_store(b"garbage", StoreType::Pkcs12, "").is_err());
        assert!(matches!(
            load_key_store(CA_PEM, StoreType::Pem, ""),
            Err(StoreError::NoKey)
        ));
        assert!(matches!(
            load_trust_store(b"", StoreType::Pem, ""),
            Err(StoreError::NoTrustedCertificate)
        ));
    }
}
