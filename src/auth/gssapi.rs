//! The GSSAPI (Kerberos V5) SASL server mechanism (RFC 4752), as Java's `GssKrb5Server`
//! runs it for ZooKeeper, on MIT krb5's GSS-API through the `libgssapi` crate.
//!
//! Not pure: accepting a context reads the keytab (and MIT's replay cache). The SASL
//! framing around the context is kept to what GssKrb5Server does:
//! 1. tokens go to `gss_accept_sec_context` until the context is established; the last
//!    output token (or an empty one) goes back;
//! 2. the client then sends an empty token; the server answers with the wrapped (integrity
//!    only) 4 bytes: the security layers it offers (1 = none, the only one) and its
//!    maximum buffer (65536);
//! 3. the client's wrapped answer names the layer it chose (must be "none") and, after 4
//!    bytes, an optional authorization id; the exchange is complete with no final token.
//!
//! The peer's principal (`client@REALM`) is the authentication id.

use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};

use super::{GssapiStep, SaslError};

const NO_SECURITY_LAYER: u8 = 1;
const MAX_BUFFER_BYTES: u32 = 65536;

/// The server's acceptor credential for its principal, from the keytab (`KRB5_KTNAME`, set
/// from the JAAS `keyTab` when the settings are loaded).
#[derive(Clone)]
pub struct GssapiAcceptor {
    credential: Cred,
}

impl std::fmt::Debug for GssapiAcceptor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("GssapiAcceptor")
    }
}

fn gss_error(what: &str, error: impl std::fmt::Display) -> SaslError {
    SaslError::Authentication(format!("GSSAPI: {what}: {error}"))
}

impl GssapiAcceptor {
    /// Acquires the accept credential for `principal` (e.g. `zookeeper/host@REALM`).
    pub fn acquire(principal: &str) -> Result<GssapiAcceptor, SaslError> {
        let name = Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|error| gss_error("bad principal", error))?;
        let mechanisms =
            OidSet::singleton(GSS_MECH_KRB5).map_err(|error| gss_error("oid set", error))?;
        let credential = Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechanisms))
            .map_err(|error| {
                gss_error(
                    &format!("cannot acquire credentials for {principal}"),
                    error,
                )
            })?;
        Ok(GssapiAcceptor { credential })
    }
}

enum Stage {
    Accepting,
    /// Context established; waiting for the client's empty token.
    Established,
    /// Security layer offer sent; waiting for the client's wrapped choice.
    Offered,
    Finished,
}

pub struct GssapiServer {
    context: ServerCtx,
    stage: Stage,
    peer: String,
}

impl GssapiServer {
    pub fn new(acceptor: &GssapiAcceptor) -> GssapiServer {
        GssapiServer {
            context: ServerCtx::new(Some(acceptor.credential.clone())),
            stage: Stage::Accepting,
            peer: String::new(),
        }
    }

    pub fn evaluate(&mut self, token: &[u8]) -> Result<GssapiStep, SaslError> {
        match self.stage {
            Stage::Accepting => {
                let output = self.context.step(token, None).map_err(|error| {
                    self.stage = Stage::Finished;
                    gss_error("accept_sec_context", error)
                })?;
                let output = output.map(|buffer| buffer.to_vec()).unwrap_or_default();
                if self.context.is_complete() {
                    let name = self
                        .context
                        .source_name()
                        .and_then(|name| name.display_name())
                        .map_err(|error| gss_error("source name", error))?;
                    self.peer = String::from_utf8(name.to_vec()).map_err(|_| {
                        SaslError::Protocol("GSSAPI: peer name is not UTF-8".into())
                    })?;
                    self.stage = Stage::Established;
                }
                Ok(GssapiStep::Challenge(output))
            }
            Stage::Established => {
                if !token.is_empty() {
                    self.stage = Stage::Finished;
                    return Err(SaslError::Protocol(
                        "GSSAPI: Handshake expecting no response data from server".into(),
                    ));
                }
                let mut offer = [0u8; 4];
                offer[0] = NO_SECURITY_LAYER;
                offer[1..].copy_from_slice(&MAX_BUFFER_BYTES.to_be_bytes()[1..]);
                let wrapped = self
                    .context
                    .wrap(false, &offer)
                    .map_err(|error| gss_error("wrap", error))?;
                self.stage = Stage::Offered;
                Ok(GssapiStep::Challenge(wrapped.to_vec()))
            }
            Stage::Offered => {
                self.stage = Stage::Finished;
                let choice = self
                    .context
                    .unwrap(token)
                    .map_err(|error| gss_error("unwrap", error))?;
                let choice: &[u8] = &choice;
                if choice.len() < 4 {
                    return Err(SaslError::Protocol(
                        "GSSAPI: security layer choice shorter than 4 bytes".into(),
                    ));
                }
                if choice[0] & NO_SECURITY_LAYER == 0 {
                    return Err(SaslError::Protocol(
                        "GSSAPI: Client selected unsupported protection".into(),
                    ));
                }
                let authorization_id = if choice.len() > 4 {
                    String::from_utf8(choice[4..].to_vec()).map_err(|_| {
                        SaslError::Protocol("GSSAPI: authorization id is not UTF-8".into())
                    })?
                } else {
                    self.peer.clone()
                };
                Ok(GssapiStep::Complete {
                    authentication_id: self.peer.clone(),
                    authorization_id,
                })
            }
            Stage::Finished => Err(SaslError::Protocol(
                "GSSAPI: authentication already finished".into(),
            )),
        }
    }
}
