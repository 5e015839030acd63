//! The GSSAPI (Kerberos) mechanism in a build without the `kerberos` feature: the same types
//! as `gssapi.rs`, and a JAAS `Server` section that logs in with Kerberos stops the server at
//! startup with a message that says how to build it in. The feature needs MIT krb5's headers
//! and libclang at build time (Debian: libkrb5-dev, libclang-dev), which a plain
//! `cargo run --release` on a fresh machine does not have; DIGEST-MD5 needs neither.

use super::{GssapiStep, SaslError};

/// Never made: [`GssapiAcceptor::acquire`] always fails in this build.
#[derive(Clone, Debug)]
pub struct GssapiAcceptor {
    _never: (),
}

impl GssapiAcceptor {
    pub fn acquire(principal: &str) -> Result<GssapiAcceptor, SaslError> {
        Err(SaslError::Authentication(format!(
            "the JAAS Server section logs in with Kerberos as {principal}, but this build of \
             ringkeeper has no GSSAPI: build it with `cargo build --release --features \
             kerberos` (needs Debian's libkrb5-dev and libclang-dev)"
        )))
    }
}

/// Never made, since no acceptor can be.
pub struct GssapiServer {
    _never: (),
}

impl GssapiServer {
    pub fn new(_acceptor: &GssapiAcceptor) -> GssapiServer {
        GssapiServer { _never: () }
    }

    pub fn evaluate(&mut self, _token: &[u8]) -> Result<GssapiStep, SaslError> {
        Err(SaslError::Protocol(
            "GSSAPI is not in this build (feature kerberos)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kerberos_login_without_the_feature_names_the_build_option() {
        let refused = GssapiAcceptor::acquire("zookeeper/localhost@EXAMPLE.COM");
        assert!(matches!(
            refused,
            Err(SaslError::Authentication(message)) if message.contains("--features kerberos")
        ));
    }
}
