//! [pure] Java KeyStore (JKS) files, as `keytool -storetype JKS` writes them and Java's
//! `sun.security.provider.JavaKeyStore` reads them. No maintained Rust reader exists (the
//! `jks` crate is a young single-author project), and the format is small and fixed.
//!
//! The file, all integers big-endian:
//!
//! ```text
//! u32 magic 0xFEEDFEED | u32 version (1 or 2) | u32 entry count
//! entry*: u32 tag | UTF alias | u64 creation time (ms)
//!   tag 1 (private key): u32 length, EncryptedPrivateKeyInfo | u32 chain length,
//!                        chain length x certificate
//!   tag 2 (trusted certificate): certificate
//!   certificate: [version 2: UTF type, "X.509"] u32 length, DER bytes
//! 20 bytes: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || every byte before)
//! ```
//!
//! (UTF = u16 length and modified UTF-8.) A private key is protected with Sun's own
//! algorithm (OID 1.3.6.1.4.1.42.2.17.1.1, `KeyProtector`): the encrypted data is a 20-byte
//! salt, the key XORed with a SHA-1 keystream (`d1 = SHA-1(password || salt)`,
//! `d(n+1) = SHA-1(password || d(n))`) and a 20-byte check `SHA-1(password || plain key)`;
//! the plain key is a PKCS#8 PrivateKeyInfo. Keys and the file share one password here, as
//! ZooKeeper uses the keystore password for both (`KeyManagerFactory.init(ks, password)`).

use sha1::{Digest, Sha1};
use thiserror::Error;

use super::der::{DerReader, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};

pub const MAGIC: u32 = 0xfeed_feed;
const KEY_PROTECTOR_OID: &str = "1.3.6.1.4.1.42.2.17.1.1";
const DIGEST_BYTES: usize = 20;
/// Bounds on what one file may claim, so that a corrupt count or length fails cleanly.
const ENTRIES_MAX: usize = 10_000;
const CHAIN_MAX: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JksError {
    #[error("not a JKS file (magic {0:#010x})")]
    BadMagic(u32),
    #[error("unsupported JKS version {0}")]
    BadVersion(u32),
    #[error("JKS file truncated")]
    Truncated,
    #[error("JKS file claims {0} entries or certificates, beyond the limit")]
    TooMany(usize),
    #[error("unknown JKS entry tag {0}")]
    BadTag(u32),
    #[error("keystore was tampered with, or password was incorrect")]
    BadIntegrity,
    #[error("cannot recover the private key of entry {0:?} (wrong password, or not Sun's key protection)")]
    BadKey(String),
    #[error("unsupported certificate type {0:?}")]
    BadCertificateType(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JksEntry {
    /// A PKCS#8 key and its chain, end entity first.
    PrivateKey {
        alias: String,
        pkcs8: Vec<u8>,
        chain: Vec<Vec<u8>>,
    },
    TrustedCertificate {
        alias: String,
        certificate: Vec<u8>,
    },
}

/// Whether `data` starts like a JKS file.
pub fn is_jks(data: &[u8]) -> bool {
    data.get(..4) == Some(&MAGIC.to_be_bytes())
}

/// Java's password bytes: each UTF-16 unit big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password
        .encode_utf16()
        .flat_map(|unit| unit.to_be_bytes())
        .collect()
}

struct Cursor<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], JksError> {
        let end = self.offset.checked_add(count).ok_or(JksError::Truncated)?;
        let bytes = self.data.get(self.offset..end).ok_or(JksError::Truncated)?;
        self.offset = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, JksError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A Java modified-UTF-8 string; aliases are ASCII in practice, anything else is read
    /// leniently (it is only a name).
    fn utf(&mut self) -> Result<String, JksError> {
        let length = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(length)?).into_owned())
    }

    fn certificate(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::BadCertificateType(kind));
            }
        }
        let length = self.u32()? as usize;
        Ok(self.take(length)?.to_vec())
    }
}

/// Reads a JKS file. With `password` given, the file's integrity digest is checked first
/// (Java skips the check only for a null password, which ZooKeeper never passes) and keys
/// are decrypted with it.
pub fn parse(data: &[u8], password: &str) -> Result<Vec<JksEntry>, JksError> {
    let password = password_bytes(password);
    if data.len() < 12 + DIGEST_BYTES {
        return Err(JksError::Truncated);
    }
    let (body, digest) = data.split_at(data.len() - DIGEST_BYTES);
    let mut cursor = Cursor {
        data: body,
        offset: 0,
    };
    let magic = cursor.u32()?;
    if magic != MAGIC {
        return Err(JksError::BadMagic(magic));
    }
    let version = cursor.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::BadVersion(version));
    }
    let mut hasher = Sha1::new();
    hasher.update(&password);
    hasher.update(b"Mighty Aphrodite");
    hasher.update(body);
    if hasher.finalize().as_slice() != digest {
        return Err(JksError::BadIntegrity);
    }
    let count = cursor.u32()? as usize;
    if count > ENTRIES_MAX {
        return Err(JksError::TooMany(count));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = cursor.u32()?;
        let alias = cursor.utf()?;
        cursor.take(8)?; // creation time
        match tag {
            1 => {
                let length = cursor.u32()? as usize;
                let protected = cursor.take(length)?;
                let chain_length = cursor.u32()? as usize;
                if chain_length > CHAIN_MAX {
                    return Err(JksError::TooMany(chain_length));
                }
                let mut chain = Vec::with_capacity(chain_length);
                for _ in 0..chain_length {
                    chain.push(cursor.certificate(version)?);
                }
                let pkcs8 = recover_key(protected, &password)
                    .ok_or_else(|| JksError::BadKey(alias.clone()))?;
                entries.push(JksEntry::PrivateKey {
                    alias,
                    pkcs8,
                    chain,
                });
            }
            2 => entries.push(JksEntry::TrustedCertificate {
                certificate: cursor.certificate(version)?,
                alias,
            }),
            other => return Err(JksError::BadTag(other)),
        }
    }
    if cursor.offset != body.len() {
        return Err(JksError::Truncated);
    }
    Ok(entries)
}

/// `KeyProtector.recover`: the PKCS#8 key inside an EncryptedPrivateKeyInfo protected with
/// Sun's algorithm, or None when the algorithm differs or the check digest does not match.
fn recover_key(encrypted_info: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    let info = DerReader::new(encrypted_info).expect(TAG_SEQUENCE).ok()?;
    let mut fields = DerReader::new(info.content);
    let algorithm = fields.expect(TAG_SEQUENCE).ok()?;
    let oid = DerReader::new(algorithm.content).expect(TAG_OID).ok()?;
    if super::der::oid_to_string(oid.content)?.as_str() != KEY_PROTECTOR_OID {
        return None;
    }
    let protected = fields.expect(TAG_OCTET_STRING).ok()?.content;
    if protected.len() < 2 * DIGEST_BYTES {
        return None;
    }
    let (salt, rest) = protected.split_at(DIGEST_BYTES);
    let (cipher, check) = rest.split_at(rest.len() - DIGEST_BYTES);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut block: Vec<u8> = salt.to_vec();
    for chunk in cipher.chunks(DIGEST_BYTES) {
        let mut hasher = Sha1::new();
        hasher.update(password);
        hasher.update(&block);
        block = hasher.finalize().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(byte, key)| byte ^ key));
    }
    let mut hasher = Sha1::new();
    hasher.update(password);
    hasher.update(&plain);
    (hasher.finalize().as_slice() == check).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keytool -genkeypair -keyalg RSA -storetype JKS, then -importcert of the CA
    /// (tests/golden/tls/README.md says how these were made). Password "jks-pass".
    const KEYSTORE: &[u8] = include_bytes!("../../tests/golden/tls/client.jks");
    const PASSWORD: &str = "jks-pass";

    #[test]
    fn keytool_keystore_yields_its_key_chain_and_trusted_ca() {
        let entries = parse(KEYSTORE, PASSWORD).unwrap();
        let key = entries
            .iter()
            .find_map(|entry| match entry {
                JksEntry::PrivateKey { pkcs8, chain, .. } => Some((pkcs8, chain)),
                _ => None,
            })
            .expect("a private key entry");
        // A PKCS#8 PrivateKeyInfo is a SEQUENCE; the chain starts with the client cert.
        assert_eq!(key.0[0], 0x30);
        assert!(!key.1.is_empty());
        let subject = crate::auth::x509::client_id(&key.1[0]).unwrap();
        assert_eq!(
            subject,
            include_str!("../../tests/golden/tls/client.dn").trim_end()
        );
        assert!(entries
            .iter()
            .any(|entry| matches!(entry, JksEntry::TrustedCertificate { .. })));
    }

    #[test]
    fn wrong_password_fails_the_integrity_check() {
        assert_eq!(parse(KEYSTORE, "wrong"), Err(JksError::BadIntegrity));
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        assert_eq!(parse(b"short", PASSWORD), Err(JksError::Truncated));
        let mut bad_magic = KEYSTORE.to_vec();
        bad_magic[0] = 0;
        assert!(matches!(
            parse(&bad_magic, PASSWORD),
            Err(JksError::BadMagic(_))
        ));
        // Every truncation, and a flipped byte anywhere, is refused cleanly.
        for cut in (0..KEYSTORE.len()).step_by(97) {
            assert!(parse(&KEYSTORE[..cut], PASSWORD).is_err());
        }
        let mut flipped = KEYSTORE.to_vec();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert_eq!(parse(&flipped, PASSWORD), Err(JksError::BadIntegrity));
    }

    #[test]
    fn key_protector_round_trip_and_wrong_password() {
        // Protect a fake key the way KeyProtector.protect does and recover it.
        let password = password_bytes("pw");
        let plain = b"0123456789abcdefghijklmnopqrstuvwxyz-plain-key".to_vec();
        let salt = [7u8; 20];
        let mut cipher = Vec::new();
        let mut block = salt.to_vec();
        for chunk in plain.chunks(20) {
            let mut hasher = Sha1::new();
            hasher.update(&password);
            hasher.update(&block);
            block = hasher.finalize().to_vec();
            cipher.extend(chunk.iter().zip(&block).map(|(b, k)| b ^ k));
        }
        let mut hasher = Sha1::new();
        hasher.update(&password);
        hasher.update(&plain);
        let check = hasher.finalize();
        let mut protected = salt.to_vec();
        protected.extend(cipher);
        protected.extend(check);
        // EncryptedPrivateKeyInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING }
        let oid = [
            0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01,
        ];
        let mut algorithm = vec![0x30, (oid.len() + 2) as u8];
        algorithm.extend(oid);
        algorithm.extend([0x05, 0x00]);
        let mut body = algorithm;
        body.extend([0x04, protected.len() as u8]);
        body.extend(protected);
        let mut info = vec![0x30, body.len() as u8];
        info.extend(body);
        assert_eq!(recover_key(&info, &password), Some(plain));
        assert_eq!(recover_key(&info, &password_bytes("other")), None);
    }
}
