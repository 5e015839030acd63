//! [pure] Identities and the ACL schemes' providers (DESIGN.md "Security"): x509 identities
//! from verified client certificates, and the key and trust stores they are verified with.
//! Everything here takes bytes and returns values; the files and sockets are net/tls's.

pub mod der;
pub mod jks;
pub mod keystore;
pub mod x509;
