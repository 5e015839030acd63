//! Access control as ZooKeeper applies it: the schemes world, auth, digest, ip, sasl, x509 and
//! super, `PrepRequestProcessor.fixupACL` for ACLs that are being set, and
//! `ZooKeeperServer.checkACL` for every permission check.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::jute::records::{Acl, Id};

/// The authenticated identities of one connection (ServerCnxn.authInfo).
pub type AuthIds = Arc<Vec<Id>>;

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: crate::jute::protocol::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// `ZooDefs.Ids.READ_ACL_UNSAFE`.
pub fn read_acl() -> Vec<Acl> {
    vec![Acl {
        perms: crate::jute::protocol::perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`, the
/// user being everything before the first colon (the whole credential when there is none,
/// which ZooKeeper accepts too).
pub fn generate_digest(credential: &str) -> Option<String> {
    let user = credential.split(':').next().unwrap_or(credential);
    let hash = Sha1::digest(credential.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// Whether an id is well formed for its scheme (`AuthenticationProvider.isValid`).
fn is_valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').count() == 2,
        "ip" => parse_ip_pattern(&id.id).is_some(),
        // SASLAuthenticationProvider.isValid: whatever `new KerberosName(id)` accepts.
        "sasl" => crate::auth::kerberos_name::KerberosName::parse(&id.id).is_ok(),
        "x509" => crate::auth::x509::is_valid_name(&id.id),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAcl;

/// `fixupACL`: removes duplicates, rejects an empty list or an invalid id, and expands the
/// `auth` scheme into the caller's authenticated ids.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, InvalidAcl> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            fixed.push(entry.clone());
        } else if id.scheme == "auth" {
            // Every id of a provider whose isAuthenticated() is true counts: digest, sasl
            // and x509; not the connection's ip, nor super (which has no provider).
            let mut expanded = false;
            for caller in auth {
                if is_authenticated_scheme(&caller.scheme) {
                    expanded = true;
                    fixed.push(Acl {
                        perms: entry.perms,
                        id: caller.clone(),
                    });
                }
            }
            if !expanded {
                return Err(InvalidAcl);
            }
        } else if is_valid_id(id) {
            fixed.push(entry.clone());
        } else {
            return Err(InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Schemes whose provider's `isAuthenticated()` is true, which the `auth` scheme expands to.
fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

/// `checkACL`: true when `auth` grants `permission` on a node with `acl`.
pub fn check(acl: &[Acl], permission: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().any(|entry| {
        if entry.perms & permission == 0 {
            return false;
        }
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            return true;
        }
        auth.iter()
            .filter(|caller| caller.scheme == id.scheme)
            .any(|caller| match id.scheme.as_str() {
                // SASLAuthenticationProvider.matches and X509AuthenticationProvider.matches:
                // the same id, as strings (a caller that is super has passed above).
                "digest" | "sasl" | "x509" => caller.id == id.id,
                "ip" => ip_matches(&caller.id, &id.id),
                _ => false,
            })
    })
}

/// An ip ACL expression: an address with an optional prefix length.
fn parse_ip_pattern(pattern: &str) -> Option<(IpAddr, u32)> {
    let (address, bits) = match pattern.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let width = if address.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(width);
    if bits > width {
        return None;
    }
    Some((address, bits))
}

/// `IPAuthenticationProvider.matches`: the client's address within the ACL's prefix.
fn ip_matches(client: &str, pattern: &str) -> bool {
    let Some((network, bits)) = parse_ip_pattern(pattern) else {
        return false;
    };
    let Ok(client) = client.parse::<IpAddr>() else {
        return false;
    };
    match (client, network) {
        (IpAddr::V4(client), IpAddr::V4(network)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(client) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(client), IpAddr::V6(network)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(client) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// The ACL as getACL shows it to a caller without ADMIN: digest hashes masked (ZooKeeper
/// 3.9 FinalRequestProcessor, "user:x").
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme == "digest" {
                let user = entry.id.id.split(':').next().unwrap_or("");
                Acl {
                    perms: entry.perms,
                    id: Id {
                        scheme: "digest".into(),
                        id: format!("{user}:x"),
                    },
                }
            } else {
                entry.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::protocol::perms;

    fn id(scheme: &str, value: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: value.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper_generate_digest() {
        // The example of ZooKeeper's documentation: super:test.
        assert_eq!(
            generate_digest("super:test").as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert!(generate_digest("nocolon").is_some_and(|d| d.starts_with("nocolon:")));
    }

    #[test]
    fn ip_acls_match_by_prefix() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.5", "127.0.0.0/8"));
        assert!(!ip_matches("10.0.0.1", "127.0.0.0/8"));
        assert!(ip_matches("10.0.0.1", "0.0.0.0/0"));
        assert!(!ip_matches("127.0.0.1", "::1"));
        assert!(parse_ip_pattern("127.0.0.1/33").is_none());
    }

    #[test]
    fn check_follows_check_acl() {
        let acl = vec![Acl {
            perms: perms::READ,
            id: id("digest", "u:h"),
        }];
        assert!(check(&acl, perms::READ, &[id("digest", "u:h")]));
        assert!(!check(&acl, perms::WRITE, &[id("digest", "u:h")]));
        assert!(!check(&acl, perms::READ, &[id("ip", "127.0.0.1")]));
        assert!(check(&acl, perms::WRITE, &[id("super", "")]));
        assert!(check(&[], perms::WRITE, &[]));
    }

    #[test]
    fn fixup_expands_auth_and_rejects_invalid_ids() {
        let auth_acl = vec![Acl {
            perms: perms::ALL,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup_acl(&auth_acl, &[id("ip", "127.0.0.1")]),
            Err(InvalidAcl)
        );
        let fixed = fixup_acl(&auth_acl, &[id("ip", "127.0.0.1"), id("digest", "u:h")]);
        assert_eq!(
            fixed,
            Ok(vec![Acl {
                perms: perms::ALL,
                id: id("digest", "u:h")
            }])
        );
        assert_eq!(fixup_acl(&[], &[]), Err(InvalidAcl));
        // An x509 id is authenticated: `auth` expands to it (X509AuthenticationProvider
        // .isAuthenticated), and super is never copied into an ACL.
        let x509 = id("x509", "CN=alice,O=Acme");
        assert_eq!(
            fixup_acl(
                &auth_acl,
                &[
                    id("ip", "127.0.0.1"),
                    id("super", "CN=alice,O=Acme"),
                    x509.clone()
                ]
            ),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: x509.clone()
            }])
        );
        let explicit = vec![Acl {
            perms: perms::READ,
            id: x509.clone(),
        }];
        assert_eq!(fixup_acl(&explicit, &[]), Ok(explicit.clone()));
        assert!(check(&explicit, perms::READ, &[x509]));
        assert!(!check(
            &explicit,
            perms::READ,
            &[id("x509", "CN=bob,O=Acme")]
        ));
        let not_a_name = vec![Acl {
            perms: perms::READ,
            id: id("x509", "alice"),
        }];
        assert_eq!(fixup_acl(&not_a_name, &[]), Err(InvalidAcl));
        let bad = vec![Acl {
            perms: perms::ALL,
            id: id("world", "someone"),
        }];
        assert_eq!(fixup_acl(&bad, &[]), Err(InvalidAcl));
    }

    /// SASLAuthenticationProvider: `sasl:<id>` ACLs are valid when KerberosName accepts the
    /// id, match the same id exactly, and `auth` expands to the caller's sasl id.
    #[test]
    fn sasl_scheme_as_sasl_authentication_provider() {
        let acl = |value: &str| Acl {
            perms: perms::READ,
            id: id("sasl", value),
        };
        assert!(fixup_acl(&[acl("bob")], &[]).is_ok());
        assert!(fixup_acl(&[acl("zk/host@EXAMPLE.COM")], &[]).is_ok());
        assert_eq!(fixup_acl(&[acl("a@b@c")], &[]), Err(InvalidAcl));
        assert!(check(&[acl("bob")], perms::READ, &[id("sasl", "bob")]));
        assert!(!check(&[acl("bob")], perms::READ, &[id("sasl", "bobby")]));
        assert!(!check(&[acl("bob")], perms::READ, &[id("digest", "bob")]));
        let auth_acl = vec![Acl {
            perms: perms::ALL,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup_acl(&auth_acl, &[id("ip", "127.0.0.1"), id("sasl", "bob")]),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: id("sasl", "bob")
            }])
        );
    }
}
