//! [pure] The DIGEST-MD5 SASL server (RFC 2831), as Java's `DigestMD5Server` runs it for
//! ZooKeeper: token in, token out; and the client ([`DigestMd5Client`]) a quorum learner
//! authenticates with.
//!
//! ZooKeeper creates it with protocol `zookeeper`, server name `zk-sasl-md5` and no
//! properties (`SecurityUtils.createSaslServer`), so:
//! - step 1 ignores the client's (empty) token and sends
//!   `realm="zk-sasl-md5",nonce="<40 base64 chars>",charset=utf-8,algorithm=md5-sess`
//!   (no `qop` directive: the default, `auth`, is the only one offered);
//! - step 2 checks the digest-response: username present; realm one of ours; the nonce
//!   ours; a cnonce; `nc` 1 when given; qop `auth` when given; `digest-uri`
//!   `zookeeper/zk-sasl-md5` (any case); `response` equal to the expected digest; then sends
//!   `rspauth=<hex>` and is complete. Any other token afterwards is an error.
//!
//! Tokens longer than [`RESPONSE_BYTES_MAX`] are refused (Java's MAX_RESPONSE_LENGTH).
//! The nonce comes from the caller's RNG so that tests are deterministic.

use std::collections::BTreeMap;

use base64::Engine;
use md5::{Digest, Md5};
use rand::RngCore;

use super::SaslError;

/// DigestMD5Server's MAX_RESPONSE_LENGTH.
pub const RESPONSE_BYTES_MAX: usize = 4096;
/// DigestMD5Base's RAW_NONCE_SIZE: 30 random bytes, 40 base64 characters.
const RAW_NONCE_BYTES: usize = 30;

/// Where the server side's passwords come from (SaslServerCallbackHandler): the
/// `user_<name>` options of the JAAS Server section, and the `super` user's password from
/// `zookeeper.SASLAuthenticationProvider.superPassword` when that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCredentials {
    pub users: BTreeMap<String, String>,
    pub super_password: Option<String>,
}

impl DigestCredentials {
    fn password(&self, user: &str) -> Option<&str> {
        if user == "super" {
            if let Some(password) = &self.super_password {
                return Some(password);
            }
        }
        self.users.get(user).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Waiting for the client's first (empty) token.
    Start,
    /// The challenge is out; waiting for the digest-response.
    Challenged,
    /// Done (successfully or not): any further token is an error.
    Finished,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStep {
    Challenge(Vec<u8>),
    /// Authenticated: the final token (`rspauth=...`), the authentication id (username) and
    /// the authorization id the client asked for (its `authzid`, else the username).
    Complete {
        token: Vec<u8>,
        authentication_id: String,
        authorization_id: String,
    },
}

#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    realm: String,
    digest_uri: String,
    nonce: String,
    step: Step,
}

/// Java's stringToByte_8859_1 with UTF-8 on: ISO-8859-1 when every character fits, else
/// UTF-8 (RFC 2831 section 2.1.2.1).
fn latin1_or_utf8(text: &str) -> Vec<u8> {
    if text.chars().all(|c| (c as u32) <= 0xff) {
        text.chars().map(|c| c as u32 as u8).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The inputs of one response value (RFC 2831 section 2.1.2.1).
struct ResponseInputs<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a [u8],
    cnonce: &'a [u8],
    authzid: Option<&'a [u8]>,
    digest_uri: &'a str,
}

/// `HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))))` with qop `auth` and nc 1;
/// `method` is `AUTHENTICATE` for the client's response and empty for `rspauth`.
fn response_value(inputs: &ResponseInputs<'_>, method: &str) -> String {
    let mut user_realm_password = Vec::new();
    user_realm_password.extend(latin1_or_utf8(inputs.username));
    user_realm_password.push(b':');
    user_realm_password.extend(latin1_or_utf8(inputs.realm));
    user_realm_password.push(b':');
    user_realm_password.extend(latin1_or_utf8(inputs.password));
    let mut a1 = Md5::digest(&user_realm_password).to_vec();
    a1.push(b':');
    a1.extend_from_slice(inputs.nonce);
    a1.push(b':');
    a1.extend_from_slice(inputs.cnonce);
    if let Some(authzid) = inputs.authzid {
        a1.push(b':');
        a1.extend_from_slice(authzid);
    }
    let hex_a1 = hex(&Md5::digest(&a1));
    let hex_a2 = hex(&Md5::digest(format!("{method}:{}", inputs.digest_uri)));
    let mut kd = Vec::new();
    kd.extend(hex_a1.as_bytes());
    kd.push(b':');
    kd.extend_from_slice(inputs.nonce);
    kd.extend(b":00000001:");
    kd.extend_from_slice(inputs.cnonce);
    kd.extend(b":auth:");
    kd.extend(hex_a2.as_bytes());
    hex(&Md5::digest(&kd))
}

/// Parses `key=value, key="quoted \" value", ...` (RFC 2831 section 7.1, Java's
/// DigestMD5Base.parseDirectives). Keys are returned in lower case; empty list elements are
/// allowed.
pub fn parse_directives(token: &[u8]) -> Result<Vec<(String, Vec<u8>)>, SaslError> {
    let bad = |reason: &str| SaslError::Protocol(format!("DIGEST-MD5: {reason}"));
    let mut directives = Vec::new();
    let mut index = 0;
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\r' | b'\n');
    loop {
        while index < token.len() && (is_space(token[index]) || token[index] == b',') {
            index += 1;
        }
        if index >= token.len() {
            return Ok(directives);
        }
        let key_start = index;
        while index < token.len() && token[index] != b'=' && !is_space(token[index]) {
            if token[index] == b',' {
                return Err(bad("directive without a value"));
            }
            index += 1;
        }
        let key = String::from_utf8_lossy(&token[key_start..index]).to_ascii_lowercase();
        while index < token.len() && is_space(token[index]) {
            index += 1;
        }
        if index >= token.len() || token[index] != b'=' {
            return Err(bad("directive without '='"));
        }
        index += 1;
        while index < token.len() && is_space(token[index]) {
            index += 1;
        }
        let mut value = Vec::new();
        if index < token.len() && token[index] == b'"' {
            index += 1;
            loop {
                match token.get(index) {
                    None => return Err(bad("unterminated quoted string")),
                    Some(b'"') => {
                        index += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(escaped) = token.get(index + 1) else {
                            return Err(bad("unterminated quoted string"));
                        };
                        value.push(*escaped);
                        index += 2;
                    }
                    Some(byte) => {
                        value.push(*byte);
                        index += 1;
                    }
                }
            }
        } else {
            while index < token.len() && token[index] != b',' && !is_space(token[index]) {
                value.push(token[index]);
                index += 1;
            }
        }
        while index < token.len() && is_space(token[index]) {
            index += 1;
        }
        if index < token.len() && token[index] != b',' {
            return Err(bad("expected ',' between directives"));
        }
        directives.push((key, value));
    }
}

/// The directives of a digest-response that may appear at most once (all that the server
/// reads; others, auth-params, are ignored).
const RESPONSE_KEYS: &[&str] = &[
    "username",
    "realm",
    "nonce",
    "cnonce",
    "nc",
    "qop",
    "digest-uri",
    "response",
    "maxbuf",
    "charset",
    "cipher",
    "authzid",
];

fn text(value: &[u8], what: &str) -> Result<String, SaslError> {
    String::from_utf8(value.to_vec())
        .map_err(|_| SaslError::Protocol(format!("DIGEST-MD5: {what} is not UTF-8")))
}

impl DigestMd5Server {
    /// A server for `protocol/server_name` whose realm is `server_name` (Java's default when
    /// no realm property is given). ZooKeeper: `zookeeper`, `zk-sasl-md5`.
    pub fn new(protocol: &str, server_name: &str, rng: &mut impl RngCore) -> DigestMd5Server {
        let mut raw = [0u8; RAW_NONCE_BYTES];
        rng.fill_bytes(&mut raw);
        let nonce = base64::engine::general_purpose::STANDARD.encode(raw);
        DigestMd5Server::with_nonce(protocol, server_name, nonce)
    }

    fn with_nonce(protocol: &str, server_name: &str, nonce: String) -> DigestMd5Server {
        DigestMd5Server {
            realm: server_name.to_string(),
            digest_uri: format!("{protocol}/{server_name}"),
            nonce,
            step: Step::Start,
        }
    }

    /// One step: the client's token in, the next server token (or the outcome) out. An
    /// error ends the exchange; so does success.
    pub fn evaluate(
        &mut self,
        token: &[u8],
        credentials: &DigestCredentials,
    ) -> Result<DigestStep, SaslError> {
        if token.len() > RESPONSE_BYTES_MAX {
            self.step = Step::Finished;
            return Err(SaslError::Protocol(format!(
                "DIGEST-MD5: Invalid digest response length. Got: {} Expected < {RESPONSE_BYTES_MAX}",
                token.len()
            )));
        }
        match self.step {
            Step::Start => {
                // A client's initial response is ignored (no subsequent authentication).
                self.step = Step::Challenged;
                let mut challenge = String::new();
                challenge.push_str("realm=\"");
                challenge.push_str(&quote(&self.realm));
                challenge.push_str("\",nonce=\"");
                challenge.push_str(&quote(&self.nonce));
                challenge.push_str("\",charset=utf-8,algorithm=md5-sess");
                Ok(DigestStep::Challenge(challenge.into_bytes()))
            }
            Step::Challenged => {
                self.step = Step::Finished;
                self.validate(token, credentials)
            }
            Step::Finished => Err(SaslError::Protocol(
                "DIGEST-MD5: Server at illegal state".into(),
            )),
        }
    }

    fn validate(
        &self,
        token: &[u8],
        credentials: &DigestCredentials,
    ) -> Result<DigestStep, SaslError> {
        let violation = |reason: String| {
            SaslError::Protocol(format!(
                "DIGEST-MD5: digest response format violation. {reason}"
            ))
        };
        let mut values: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for (key, value) in parse_directives(token)? {
            if let Some(known) = RESPONSE_KEYS.iter().find(|known| **known == key) {
                if values.insert(known, value).is_some() {
                    return Err(SaslError::Protocol(format!(
                        "DIGEST-MD5: peer sent more than one {key} directive"
                    )));
                }
            }
        }
        if let Some(charset) = values.get("charset") {
            if charset.as_slice() != b"utf-8" {
                return Err(violation("Incompatible charset value".into()));
            }
        }
        if let Some(maxbuf) = values.get("maxbuf") {
            text(maxbuf, "maxbuf")?
                .parse::<i32>()
                .map_err(|_| violation("Invalid maxbuf".into()))?;
        }
        let username = text(
            values
                .get("username")
                .ok_or_else(|| violation("Missing username.".into()))?,
            "username",
        )?;
        let realm = match values.get("realm") {
            Some(realm) => text(realm, "realm")?,
            None => String::new(),
        };
        if realm != self.realm {
            return Err(violation(format!("Nonexistent realm: {realm}")));
        }
        let nonce = values
            .get("nonce")
            .ok_or_else(|| violation("Missing nonce.".into()))?;
        if nonce.as_slice() != self.nonce.as_bytes() {
            return Err(violation("Mismatched nonce.".into()));
        }
        let cnonce = values
            .get("cnonce")
            .ok_or_else(|| violation("Missing cnonce.".into()))?;
        if let Some(count) = values.get("nc") {
            let count = u32::from_str_radix(&text(count, "nc")?, 16).ok();
            if count != Some(1) {
                return Err(violation("Nonce count does not match".into()));
            }
        }
        match values.get("qop").map(|qop| qop.as_slice()) {
            None | Some(b"auth") => {}
            Some(b"auth-int") | Some(b"auth-conf") => {
                return Err(SaslError::Protocol(
                    "DIGEST-MD5: server does not support qop".into(),
                ))
            }
            Some(_) => return Err(violation("Invalid QOP".into())),
        }
        let digest_uri = match values.get("digest-uri") {
            Some(uri) => text(uri, "digest-uri")?,
            None => return Err(violation("Mismatched URI: null".into())),
        };
        if !digest_uri.eq_ignore_ascii_case(&self.digest_uri) {
            return Err(violation(format!(
                "Mismatched URI: {digest_uri}; expecting: {}",
                self.digest_uri
            )));
        }
        let response = values
            .get("response")
            .ok_or_else(|| violation("Missing response.".into()))?;
        let authzid = values.get("authzid").map(Vec::as_slice);
        let authorization_id = match authzid {
            Some(authzid) => text(authzid, "authzid")?,
            None => username.clone(),
        };
        let Some(password) = credentials.password(&username) else {
            return Err(SaslError::Authentication(format!(
                "DIGEST-MD5: cannot acquire password for {username} in realm : {realm}"
            )));
        };
        let inputs = ResponseInputs {
            username: &username,
            realm: &realm,
            password,
            nonce,
            cnonce,
            authzid,
            digest_uri: &digest_uri,
        };
        let expected = response_value(&inputs, "AUTHENTICATE");
        if response.as_slice() != expected.as_bytes() {
            return Err(SaslError::Authentication(
                "DIGEST-MD5: digest response format violation. Mismatched response.".into(),
            ));
        }
        let rspauth = response_value(&inputs, "");
        Ok(DigestStep::Complete {
            token: format!("rspauth={rspauth}").into_bytes(),
            authentication_id: username,
            authorization_id,
        })
    }
}

/// The client's place in its exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientStep {
    /// Waiting for the server's digest-challenge.
    Start,
    /// The digest-response is out; waiting for `rspauth`.
    Responded { rspauth: String },
    /// Done (successfully or not): any further token is an error.
    Finished,
}

/// [pure] The DIGEST-MD5 SASL client (RFC 2831), as Java's `DigestMD5Client` runs it for a
/// ZooKeeper learner (`SecurityUtils.createSaslClient` with the JAAS `QuorumLearner`
/// section's `username` and `password`): no initial response; the challenge in, the
/// digest-response out (qop `auth`, nc 1, charset utf-8, no authzid); then the server's
/// `rspauth` in, checked, and the exchange is complete. The cnonce comes from the caller's
/// RNG so that tests are deterministic.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    username: String,
    password: String,
    digest_uri: String,
    cnonce: String,
    step: ClientStep,
}

impl DigestMd5Client {
    pub fn new(
        protocol: &str,
        server_name: &str,
        username: &str,
        password: &str,
        rng: &mut impl RngCore,
    ) -> DigestMd5Client {
        let mut raw = [0u8; RAW_NONCE_BYTES];
        rng.fill_bytes(&mut raw);
        DigestMd5Client {
            username: username.to_string(),
            password: password.to_string(),
            digest_uri: format!("{protocol}/{server_name}"),
            cnonce: base64::engine::general_purpose::STANDARD.encode(raw),
            step: ClientStep::Start,
        }
    }

    /// Whether the server proved it knows the password too (its `rspauth` checked).
    pub fn is_complete(&self) -> bool {
        self.step == ClientStep::Finished && self.cnonce.is_empty()
    }

    /// One step: the server's token in; the next client token out (None once complete,
    /// when there is nothing more to send). An error ends the exchange.
    pub fn evaluate(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        if challenge.len() > RESPONSE_BYTES_MAX {
            self.step = ClientStep::Finished;
            return Err(SaslError::Protocol(format!(
                "DIGEST-MD5: challenge of {} bytes is larger than {RESPONSE_BYTES_MAX}",
                challenge.len()
            )));
        }
        match std::mem::replace(&mut self.step, ClientStep::Finished) {
            ClientStep::Start => {
                let (token, rspauth) = self.respond(challenge)?;
                self.step = ClientStep::Responded { rspauth };
                Ok(Some(token))
            }
            ClientStep::Responded { rspauth } => {
                let directives = parse_directives(challenge)?;
                let presented = directives
                    .iter()
                    .find(|(key, _)| key == "rspauth")
                    .map(|(_, value)| value.as_slice());
                if presented != Some(rspauth.as_bytes()) {
                    return Err(SaslError::Authentication(
                        "DIGEST-MD5: Mismatched response authentication (rspauth): the server \
                         does not know the password"
                            .into(),
                    ));
                }
                // Complete: the cnonce is spent (is_complete looks at it).
                self.cnonce.clear();
                Ok(None)
            }
            ClientStep::Finished => Err(SaslError::Protocol(
                "DIGEST-MD5: Client at illegal state".into(),
            )),
        }
    }

    /// The digest-response to a digest-challenge, and the `rspauth` to expect.
    fn respond(&self, challenge: &[u8]) -> Result<(Vec<u8>, String), SaslError> {
        let violation = |reason: &str| {
            SaslError::Protocol(format!(
                "DIGEST-MD5: digest challenge format violation: {reason}"
            ))
        };
        let mut realm: Option<Vec<u8>> = None;
        let mut nonce: Option<Vec<u8>> = None;
        let mut algorithm: Option<Vec<u8>> = None;
        let mut qop_auth = true;
        for (key, value) in parse_directives(challenge)? {
            let slot = match key.as_str() {
                // Several realms: Java asks its callback; ZooKeeper's sends one. Take the
                // first, as Java's RealmChoiceCallback default does.
                "realm" => {
                    if realm.is_none() {
                        realm = Some(value);
                    }
                    continue;
                }
                "nonce" => &mut nonce,
                "algorithm" => &mut algorithm,
                "qop" => {
                    qop_auth = value
                        .split(|byte| *byte == b',')
                        .any(|item| item.trim_ascii() == b"auth");
                    continue;
                }
                "charset" => {
                    if value != b"utf-8" {
                        return Err(violation("charset must be utf-8"));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(violation(&format!("more than one {key} directive")));
            }
        }
        let nonce = nonce.ok_or_else(|| violation("missing nonce"))?;
        if algorithm.as_deref() != Some(b"md5-sess".as_slice()) {
            return Err(violation("algorithm must be md5-sess"));
        }
        if !qop_auth {
            return Err(SaslError::Protocol(
                "DIGEST-MD5: the server does not offer qop auth".into(),
            ));
        }
        let realm = text(&realm.unwrap_or_default(), "realm")?;
        let nonce_text = text(&nonce, "nonce")?;
        let inputs = ResponseInputs {
            username: &self.username,
            realm: &realm,
            password: &self.password,
            nonce: &nonce,
            cnonce: self.cnonce.as_bytes(),
            authzid: None,
            digest_uri: &self.digest_uri,
        };
        let response = response_value(&inputs, "AUTHENTICATE");
        let rspauth = response_value(&inputs, "");
        let token = format!(
            "charset=utf-8,username=\"{}\",realm=\"{}\",nonce=\"{}\",nc=00000001,\
             cnonce=\"{}\",digest-uri=\"{}\",maxbuf=65536,response={response},qop=auth",
            quote(&self.username),
            quote(&realm),
            quote(&nonce_text),
            quote(&self.cnonce),
            quote(&self.digest_uri),
        );
        Ok((token.into_bytes(), rspauth))
    }
}

/// A quoted-string's content: `"` and `\` escaped.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn credentials() -> DigestCredentials {
        let mut users = BTreeMap::new();
        users.insert("chris".to_string(), "secret".to_string());
        users.insert("bob".to_string(), "bobsecret".to_string());
        DigestCredentials {
            users,
            super_password: None,
        }
    }

    /// RFC 2831 section 4: the IMAP example (user chris, password secret).
    #[test]
    fn rfc_2831_example_response_and_rspauth() {
        let mut server =
            DigestMd5Server::with_nonce("imap", "elwood.innosoft.com", "OA6MG9tEQGm2hh".into());
        let challenge = server.evaluate(b"", &credentials()).unwrap();
        assert_eq!(
            challenge,
            DigestStep::Challenge(
                b"realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",charset=utf-8,algorithm=md5-sess"
                    .to_vec()
            )
        );
        let response = b"charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
            nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
            digest-uri=\"imap/elwood.innosoft.com\",\
            response=d388dad90d4bbd760a152321f2143af7,qop=auth";
        match server.evaluate(response, &credentials()).unwrap() {
            DigestStep::Complete {
                token,
                authentication_id,
                authorization_id,
            } => {
                assert_eq!(token, b"rspauth=ea40f60335c427b5527b84dbabcdfffd");
                assert_eq!(authentication_id, "chris");
                assert_eq!(authorization_id, "chris");
            }
            other => panic!("{other:?}"),
        }
        // Complete: a further token is an error (DigestMD5Server's illegal state).
        assert!(server.evaluate(b"", &credentials()).is_err());
    }

    /// What a ZooKeeper client computes (its own implementation of RFC 2831), against ours.
    fn client_response(
        challenge: &[u8],
        user: &str,
        password: &str,
        authzid: Option<&str>,
        uri: &str,
    ) -> Vec<u8> {
        let directives = parse_directives(challenge).unwrap();
        let get = |key: &str| {
            directives
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .unwrap()
        };
        let (realm, nonce) = (get("realm"), get("nonce"));
        let inputs = ResponseInputs {
            username: user,
            realm: &realm,
            password,
            nonce: nonce.as_bytes(),
            cnonce: b"client-nonce",
            authzid: authzid.map(str::as_bytes),
            digest_uri: uri,
        };
        let response = response_value(&inputs, "AUTHENTICATE");
        let mut token = format!(
            "username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"client-nonce\",digest-uri=\"{uri}\",maxbuf=65536,response={response},\
             qop=auth"
        );
        if let Some(authzid) = authzid {
            token.push_str(&format!(",authzid=\"{authzid}\""));
        }
        token.into_bytes()
    }

    fn exchange(
        user: &str,
        password: &str,
        authzid: Option<&str>,
        uri: &str,
    ) -> Result<DigestStep, SaslError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut server = DigestMd5Server::new("zookeeper", "zk-sasl-md5", &mut rng);
        let DigestStep::Challenge(challenge) = server.evaluate(b"", &credentials())? else {
            panic!("expected a challenge");
        };
        let text = String::from_utf8(challenge.clone()).unwrap();
        assert!(text.starts_with("realm=\"zk-sasl-md5\",nonce=\""), "{text}");
        assert!(
            text.ends_with("\",charset=utf-8,algorithm=md5-sess"),
            "{text}"
        );
        server.evaluate(
            &client_response(&challenge, user, password, authzid, uri),
            &credentials(),
        )
    }

    #[test]
    fn zookeeper_exchange_right_and_wrong_passwords() {
        match exchange("bob", "bobsecret", None, "zookeeper/zk-sasl-md5").unwrap() {
            DigestStep::Complete {
                authentication_id,
                authorization_id,
                ..
            } => assert_eq!(
                (authentication_id.as_str(), authorization_id.as_str()),
                ("bob", "bob")
            ),
            other => panic!("{other:?}"),
        }
        // The digest-uri is compared without regard to case.
        assert!(exchange("bob", "bobsecret", Some("carol"), "ZooKeeper/ZK-SASL-MD5").is_ok());
        assert!(matches!(
            exchange("bob", "wrong", None, "zookeeper/zk-sasl-md5"),
            Err(SaslError::Authentication(_))
        ));
        assert!(matches!(
            exchange("nobody", "x", None, "zookeeper/zk-sasl-md5"),
            Err(SaslError::Authentication(_))
        ));
        assert!(exchange("bob", "bobsecret", None, "zookeeper/elsewhere").is_err());
    }

    #[test]
    fn authzid_is_reported() {
        match exchange("bob", "bobsecret", Some("carol"), "zookeeper/zk-sasl-md5").unwrap() {
            DigestStep::Complete {
                authorization_id, ..
            } => assert_eq!(authorization_id, "carol"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_and_oversized_responses_are_errors_not_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for token in [
            b"username".to_vec(),
            b"username=\"bob".to_vec(),
            b"username=bob,username=bob".to_vec(),
            b"username=bob x=y".to_vec(),
            b"realm=\"zk-sasl-md5\"".to_vec(),
            vec![0xff; 100],
            vec![b'a'; RESPONSE_BYTES_MAX + 1],
        ] {
            let mut server = DigestMd5Server::new("zookeeper", "zk-sasl-md5", &mut rng);
            if token.len() <= RESPONSE_BYTES_MAX {
                server.evaluate(b"", &credentials()).unwrap();
            }
            assert!(
                server.evaluate(&token, &credentials()).is_err(),
                "{token:?}"
            );
        }
    }

    #[test]
    fn super_password_property_overrides_a_super_user_line() {
        let mut credentials = credentials();
        credentials.users.insert("super".into(), "file".into());
        assert_eq!(credentials.password("super"), Some("file"));
        credentials.super_password = Some("property".into());
        assert_eq!(credentials.password("super"), Some("property"));
    }

    /// The learner's client against the server, as a ZooKeeper learner and quorum server run
    /// them (SaslQuorumAuthLearner / SaslQuorumAuthServer, `zookeeper-quorum/zk-quorum-sasl-md5`).
    fn client_against_server(user: &str, password: &str) -> Result<String, SaslError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut server = DigestMd5Server::new("zookeeper-quorum", "zk-quorum-sasl-md5", &mut rng);
        let mut client = DigestMd5Client::new(
            "zookeeper-quorum",
            "zk-quorum-sasl-md5",
            user,
            password,
            &mut rng,
        );
        let DigestStep::Challenge(challenge) = server.evaluate(b"", &credentials())? else {
            panic!("expected a challenge");
        };
        let response = client.evaluate(&challenge)?.expect("a digest-response");
        assert!(!client.is_complete());
        match server.evaluate(&response, &credentials())? {
            DigestStep::Complete {
                token,
                authentication_id,
                authorization_id,
            } => {
                assert_eq!(authentication_id, authorization_id);
                assert_eq!(client.evaluate(&token)?, None);
                assert!(client.is_complete());
                // Complete: a further token is an error.
                assert!(client.evaluate(&token).is_err());
                Ok(authentication_id)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_authenticates_to_the_server_with_the_right_password_only() {
        assert_eq!(client_against_server("bob", "bobsecret").unwrap(), "bob");
        assert!(matches!(
            client_against_server("bob", "wrong"),
            Err(SaslError::Authentication(_))
        ));
        assert!(matches!(
            client_against_server("nobody", "bobsecret"),
            Err(SaslError::Authentication(_))
        ));
    }

    /// RFC 2831 section 4's example, from the client's side (its cnonce fixed).
    #[test]
    fn client_computes_the_rfc_2831_example() {
        let mut client = DigestMd5Client {
            username: "chris".into(),
            password: "secret".into(),
            digest_uri: "imap/elwood.innosoft.com".into(),
            cnonce: "OA6MHXh6VqTrRk".into(),
            step: ClientStep::Start,
        };
        let challenge = b"realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",\
            algorithm=md5-sess,charset=utf-8";
        let response = String::from_utf8(client.evaluate(challenge).unwrap().unwrap()).unwrap();
        assert!(
            response.contains("response=d388dad90d4bbd760a152321f2143af7"),
            "{response}"
        );
        // A server that does not know the password cannot produce rspauth.
        assert!(matches!(
            client.evaluate(b"rspauth=00000000000000000000000000000000"),
            Err(SaslError::Authentication(_))
        ));
        assert!(!client.is_complete());
        let mut client = DigestMd5Client {
            step: ClientStep::Start,
            cnonce: "OA6MHXh6VqTrRk".into(),
            ..client
        };
        client.evaluate(challenge).unwrap();
        assert_eq!(
            client
                .evaluate(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
                .unwrap(),
            None
        );
        assert!(client.is_complete());
    }

    #[test]
    fn client_refuses_malformed_challenges() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for challenge in [
            b"realm=\"r\",algorithm=md5-sess".to_vec(),
            b"realm=\"r\",nonce=\"n\"".to_vec(),
            b"realm=\"r\",nonce=\"n\",nonce=\"m\",algorithm=md5-sess".to_vec(),
            b"nonce=\"n\",algorithm=md5-sess,qop=auth-conf".to_vec(),
            b"nonce=\"n\",algorithm=md5-sess,charset=latin1".to_vec(),
            b"nonce=\"n".to_vec(),
            vec![b'a'; RESPONSE_BYTES_MAX + 1],
        ] {
            let mut client = DigestMd5Client::new("p", "s", "u", "pw", &mut rng);
            assert!(client.evaluate(&challenge).is_err(), "{challenge:?}");
        }
    }

    #[test]
    fn directives_parse_quoted_escapes_and_spaces() {
        let parsed = parse_directives(b" a = \"x\\\"y\" , ,B=tok ,c=\"\"").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("a".to_string(), b"x\"y".to_vec()),
                ("b".to_string(), b"tok".to_vec()),
                ("c".to_string(), b"".to_vec()),
            ]
        );
        assert_eq!(latin1_or_utf8("caf\u{e9}"), b"caf\xe9".to_vec());
        assert_eq!(latin1_or_utf8("\u{263a}"), "\u{263a}".as_bytes().to_vec());
    }
}
