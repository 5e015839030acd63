//! [pure] x509 identities as ZooKeeper's `X509AuthenticationProvider` makes them: a client
//! certificate that the trust store verified becomes the id `x509:<subject>`, the subject
//! printed as Java's `X500Principal.getName()` prints it (RFC 2253 form, in the JDK's own
//! flavour), and also `super:<subject>` when it equals
//! `zookeeper.X509AuthenticationProvider.superUser`.
//!
//! Java's RFC 2253 form (sun.security.x509.X500Name.getRFC2253Name, AVA.toRFC2253String):
//! - the RDNs in reverse order of the certificate's encoding, joined by `,`; the attributes of
//!   a multi-valued RDN in their encoded order, joined by `+`;
//! - the keywords CN C L ST O OU STREET DC UID for their OIDs, any other attribute type as its
//!   dotted OID (emailAddress is `1.2.840.113549.1.9.1`);
//! - a value whose type is a dotted OID, or whose encoding is not one of the string types
//!   (PrintableString, T61String, IA5String, GeneralString, BMPString, UTF8String), as `#` and
//!   the lowercase hex of its whole DER encoding;
//! - otherwise the value's bytes read as UTF-8, with `, = + < > # ; " \` escaped by a
//!   backslash, NUL as `\00`, and leading or trailing spaces and carriage returns escaped.

use super::der::{oid_to_string, DerError, DerReader, TAG_SEQUENCE, TAG_SET};
use crate::jute::records::Id;

/// `X509AuthenticationProvider.getScheme()`.
pub const SCHEME: &str = "x509";

/// The RFC 2253 keywords Java prints (AVAKeyword entries marked RFC 2253 compliant).
const RFC2253_KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Every keyword Java's X500Principal accepts when parsing a name (AVAKeyword), for
/// `isValid` on ACL ids.
const PARSE_KEYWORDS: &[&str] = &[
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// The subject Name (its whole DER encoding) of a DER X.509 certificate:
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, ... }, ... } (RFC 5280 4.1).
pub fn certificate_subject(certificate: &[u8]) -> Result<&[u8], DerError> {
    let certificate = DerReader::new(certificate).expect(TAG_SEQUENCE)?;
    let tbs = DerReader::new(certificate.content).expect(TAG_SEQUENCE)?;
    let mut fields = DerReader::new(tbs.content);
    if fields.peek_tag() == Some(0xa0) {
        fields.next_element()?;
    }
    fields.next_element()?; // serialNumber
    fields.expect(TAG_SEQUENCE)?; // signature algorithm
    fields.expect(TAG_SEQUENCE)?; // issuer
    fields.expect(TAG_SEQUENCE)?; // validity
    Ok(fields.expect(TAG_SEQUENCE)?.encoded)
}

/// `X500Principal.getName()` of a DER-encoded Name.
pub fn rfc2253_name(name: &[u8]) -> Result<String, DerError> {
    let name = DerReader::new(name).expect(TAG_SEQUENCE)?;
    let mut rdns = Vec::new();
    let mut reader = DerReader::new(name.content);
    while !reader.is_empty() {
        let set = reader.expect(TAG_SET)?;
        let mut attributes = Vec::new();
        let mut values = DerReader::new(set.content);
        while !values.is_empty() {
            let pair = values.expect(TAG_SEQUENCE)?;
            let mut fields = DerReader::new(pair.content);
            let oid = fields.expect(super::der::TAG_OID)?;
            let value = fields.next_element()?;
            let oid = oid_to_string(oid.content).ok_or(DerError::BadLength)?;
            attributes.push(attribute_string(
                &oid,
                value.tag,
                value.content,
                value.encoded,
            ));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// The subject of a DER certificate as `X509AuthenticationProvider.getClientId` gives it.
pub fn client_id(certificate: &[u8]) -> Result<String, DerError> {
    rfc2253_name(certificate_subject(certificate)?)
}

/// The auth ids a verified client certificate adds to its connection, in the order
/// `X509AuthenticationProvider.handleAuthentication` adds them: `super` first when the subject
/// is the configured super user, then `x509:<subject>`.
pub fn auth_ids(client_id: &str, super_user: Option<&str>) -> Vec<Id> {
    let mut ids = Vec::with_capacity(2);
    if super_user == Some(client_id) {
        ids.push(Id {
            scheme: "super".into(),
            id: client_id.to_string(),
        });
    }
    ids.push(Id {
        scheme: SCHEME.into(),
        id: client_id.to_string(),
    });
    ids
}

fn attribute_string(oid: &str, tag: u8, content: &[u8], encoded: &[u8]) -> String {
    let keyword = RFC2253_KEYWORDS
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, keyword)| *keyword);
    let is_string = matches!(tag, 0x13 | 0x14 | 0x16 | 0x1b | 0x1e | 0x0c);
    match keyword {
        Some(keyword) if is_string => {
            format!(
                "{keyword}={}",
                escape_value(&String::from_utf8_lossy(content))
            )
        }
        _ => {
            let mut text = String::with_capacity(oid.len() + 2 + encoded.len() * 2);
            text.push_str(keyword.unwrap_or(oid));
            text.push_str("=#");
            for byte in encoded {
                text.push_str(&format!("{byte:02x}"));
            }
            text
        }
    }
}

/// AVA.toRFC2253String's escaping of a string value.
fn escape_value(value: &str) -> String {
    const ESCAPED: &str = ",=+<>#;\"\\";
    let mut escaped: Vec<char> = Vec::with_capacity(value.len());
    for c in value.chars() {
        if ESCAPED.contains(c) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.extend(['\\', '0', '0']);
        } else {
            escaped.push(c);
        }
    }
    let is_space = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| is_space(c)).count();
    let trail = escaped.len() - escaped.iter().rev().take_while(|c| is_space(c)).count();
    let mut text = String::with_capacity(escaped.len() + 4);
    for (index, c) in escaped.into_iter().enumerate() {
        if index < lead || index >= trail.max(lead) {
            text.push('\\');
        }
        text.push(c);
    }
    text
}

/// `X509AuthenticationProvider.isValid`: whether `new X500Principal(id)` would accept the id
/// of an x509 ACL. Accepts RFC 2253 and RFC 1779 names: attributes `keyword=value` separated by
/// `,` `;` or `+`, keywords from Java's table (any case) or dotted OIDs (optionally `OID.`),
/// values plain with backslash escapes, quoted, or `#` and an even number of hex digits.
pub fn is_valid_name(name: &str) -> bool {
    if name.trim().is_empty() {
        return true;
    }
    let mut attributes: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = name.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    return false;
                };
                current.push('\\');
                current.push(next);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' | ';' | '+' if !quoted => attributes.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return false;
    }
    attributes.push(current);
    attributes
        .iter()
        .all(|attribute| is_valid_attribute(attribute))
}

fn is_valid_attribute(attribute: &str) -> bool {
    let Some((keyword, value)) = attribute.split_once('=') else {
        return false;
    };
    let keyword = keyword.trim();
    let oid = keyword
        .strip_prefix("OID.")
        .or_else(|| keyword.strip_prefix("oid."))
        .unwrap_or(keyword);
    let is_oid = !oid.is_empty()
        && oid.split('.').count() >= 2
        && oid
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    let is_keyword = PARSE_KEYWORDS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(keyword));
    if !is_oid && !is_keyword {
        return false;
    }
    let value = value.trim();
    match value.strip_prefix('#') {
        Some(hex) => {
            !hex.is_empty() && hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One attribute: (OID content, value tag, value content).
    type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

    /// A Name of RDNs, each a one-attribute SET, or several for a multi-valued RDN.
    fn name(rdns: &[&[Attribute]]) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            assert!(content.len() < 128);
            let mut out = vec![tag, content.len() as u8];
            out.extend_from_slice(content);
            out
        }
        let mut sequence = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn.iter() {
                let mut pair = tlv(0x06, oid);
                pair.extend(tlv(*tag, value));
                set.extend(tlv(0x30, &pair));
            }
            sequence.extend(tlv(0x31, &set));
        }
        tlv(0x30, &sequence)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];

    #[test]
    fn rdns_print_in_reverse_order_with_rfc2253_keywords() {
        // openssl's "/C=US/O=Acme/CN=alice" is encoded C, O, CN; Java prints CN first.
        let der = name(&[
            &[(C, 0x13, b"US")],
            &[(O, 0x0c, b"Acme")],
            &[(CN, 0x0c, b"alice")],
        ]);
        assert_eq!(rfc2253_name(&der).unwrap(), "CN=alice,O=Acme,C=US");
        let dc = name(&[&[(DC, 0x16, b"org")], &[(DC, 0x16, b"example")]]);
        assert_eq!(rfc2253_name(&dc).unwrap(), "DC=example,DC=org");
        assert_eq!(rfc2253_name(&name(&[])).unwrap(), "");
    }

    #[test]
    fn other_attribute_types_print_as_oid_and_hex_der() {
        // As X500Principal.getName() prints emailAddress (an IA5String).
        let der = name(&[&[(EMAIL, 0x16, b"a@b")], &[(CN, 0x0c, b"x")]]);
        assert_eq!(
            rfc2253_name(&der).unwrap(),
            "CN=x,1.2.840.113549.1.9.1=#1603614062"
        );
        // A known keyword with a value that is not a string type: hex too.
        let der = name(&[&[(CN, 0x04, b"\x01")]]);
        assert_eq!(rfc2253_name(&der).unwrap(), "CN=#040101");
    }

    #[test]
    fn multi_valued_rdns_join_with_plus_in_encoded_order() {
        let der = name(&[&[(OU, 0x0c, b"eng"), (CN, 0x0c, b"bob")]]);
        assert_eq!(rfc2253_name(&der).unwrap(), "OU=eng+CN=bob");
    }

    #[test]
    fn special_characters_are_escaped_as_java_escapes_them() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(
            escape_value("a=b+c<d>e#f;g\"h\\i"),
            "a\\=b\\+c\\<d\\>e\\#f\\;g\\\"h\\\\i"
        );
        assert_eq!(escape_value(" lead"), "\\ lead");
        assert_eq!(escape_value("trail "), "trail\\ ");
        assert_eq!(escape_value("  "), "\\ \\ ");
        assert_eq!(escape_value("nul\0"), "nul\\00");
        assert_eq!(escape_value("Zürich"), "Zürich");
        assert_eq!(escape_value("mid space"), "mid space");
    }

    #[test]
    fn super_user_gets_super_before_x509() {
        let ids = auth_ids("CN=admin", Some("CN=admin"));
        assert_eq!(ids.len(), 2);
        assert_eq!(
            (ids[0].scheme.as_str(), ids[0].id.as_str()),
            ("super", "CN=admin")
        );
        assert_eq!(
            (ids[1].scheme.as_str(), ids[1].id.as_str()),
            ("x509", "CN=admin")
        );
        let ids = auth_ids("CN=alice", Some("CN=admin"));
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].scheme, "x509");
        assert_eq!(auth_ids("CN=alice", None).len(), 1);
    }

    #[test]
    fn acl_ids_are_valid_when_x500principal_would_parse_them() {
        for valid in [
            "CN=alice,O=Acme,C=US",
            "cn=alice; o=Acme",
            "CN=a\\,b,OU=x+CN=y",
            "CN=\"quoted, with comma\"",
            "1.2.840.113549.1.9.1=#1603614062,CN=x",
            "OID.2.5.4.3=alice",
            "EMAILADDRESS=a@b,SERIALNUMBER=1",
            "",
        ] {
            assert!(is_valid_name(valid), "{valid:?} should be valid");
        }
        for invalid in [
            "alice",
            "CN=alice,",
            "FOO=bar",
            "CN=\"unterminated",
            "CN=x\\",
            "1.2=#abc",
        ] {
            assert!(!is_valid_name(invalid), "{invalid:?} should be invalid");
        }
    }

    #[test]
    fn truncated_names_are_errors_not_panics() {
        let der = name(&[&[(CN, 0x0c, b"alice")]]);
        for cut in 0..der.len() {
            let _ = rfc2253_name(&der[..cut]);
        }
        assert!(rfc2253_name(&der[..der.len() - 1]).is_err());
        assert!(certificate_subject(&[0x30, 0x00]).is_err());
    }
}
