//! [pure] Kerberos principal names and the `auth_to_local` rules that map them to short
//! names, as ZooKeeper's `org.apache.zookeeper.server.auth.KerberosName` (Hadoop's) does,
//! and the SASL authorized id `SaslServerCallbackHandler.handleAuthorizeCallback` derives
//! from them (`kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`).
//!
//! Rules (`zookeeper.security.auth_to_local`, default `DEFAULT`):
//! `DEFAULT` maps `name@<default realm>` (one or two components) to `name`;
//! `RULE:[n:format](match)s/from/to/g` applies to names of n components: `format` builds a
//! string from `$0` (the realm), `$1`, `$2` (the components); it must match `match` (a
//! regular expression, whole string); then `s/from/to/` (first match, all with `g`) rewrites
//! it. The first rule that gives a result wins; a result containing `/` or `@` is an error.
//! The patterns are Java regular expressions; they are compiled with the `regex` crate,
//! which accepts the forms auth_to_local rules use (`.*`, classes, groups, anchors).

use regex::Regex;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KerberosNameError {
    #[error("Malformed Kerberos name: {0}")]
    Malformed(String),
    #[error("Invalid rule: {0}")]
    InvalidRule(String),
    #[error("No rules applied to {0}")]
    NoMatchingRule(String),
    #[error("Non-simple name {0} after auth_to_local rule")]
    NonSimple(String),
    #[error("bad format in username mapping: {0}")]
    BadFormat(String),
}

/// `service[/host]@realm`, or a bare name without realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    pub service: String,
    pub host: Option<String>,
    pub realm: Option<String>,
}

impl KerberosName {
    /// `KerberosName(String)`: the pattern `([^/@]*)(/([^/@]*))?@([^/@]*)`; a name that does
    /// not match is a bare service name unless it contains `@` (then malformed). A name
    /// like `a/b` without a realm is therefore one bare name, as in ZooKeeper.
    pub fn parse(name: &str) -> Result<KerberosName, KerberosNameError> {
        if let Some((before, realm)) = name.split_once('@') {
            if realm.contains('@') || realm.contains('/') {
                return Err(KerberosNameError::Malformed(name.to_string()));
            }
            let (service, host) = match before.split_once('/') {
                Some((service, host)) => {
                    if host.contains('/') {
                        return Err(KerberosNameError::Malformed(name.to_string()));
                    }
                    (service, Some(host.to_string()))
                }
                None => (before, None),
            };
            return Ok(KerberosName {
                service: service.to_string(),
                host,
                realm: Some(realm.to_string()),
            });
        }
        Ok(KerberosName {
            service: name.to_string(),
            host: None,
            realm: None,
        })
    }

    /// `getShortName`: the name itself when it has no realm, else the first rule's result.
    pub fn short_name(&self, rules: &KerberosRules) -> Result<String, KerberosNameError> {
        let Some(realm) = &self.realm else {
            return Ok(self.service.clone());
        };
        let params: Vec<&str> = match &self.host {
            None => vec![realm, &self.service],
            Some(host) => vec![realm, &self.service, host],
        };
        for rule in &rules.rules {
            if let Some(result) = rule.apply(&params, &rules.default_realm)? {
                return Ok(result);
            }
        }
        Err(KerberosNameError::NoMatchingRule(self.to_string()))
    }
}

impl std::fmt::Display for KerberosName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.service)?;
        if let Some(host) = &self.host {
            write!(formatter, "/{host}")?;
        }
        if let Some(realm) = &self.realm {
            write!(formatter, "@{realm}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Custom {
        components: usize,
        format: String,
        matcher: Option<Regex>,
        substitution: Option<(Regex, String, bool)>,
    },
}

/// Java's replacement string syntax (`$1`, `\$`) into the regex crate's (`${1}`, `$$`).
fn java_replacement(to: &str) -> String {
    let mut out = String::with_capacity(to.len());
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl Rule {
    fn apply(
        &self,
        params: &[&str],
        default_realm: &str,
    ) -> Result<Option<String>, KerberosNameError> {
        let result = match self {
            Rule::Default => (default_realm == params[0]).then(|| params[1].to_string()),
            Rule::Custom {
                components,
                format,
                matcher,
                substitution,
            } => {
                if params.len() - 1 != *components {
                    None
                } else {
                    let base = replace_parameters(format, params)?;
                    if matcher.as_ref().is_none_or(|regex| regex.is_match(&base)) {
                        Some(match substitution {
                            None => base,
                            Some((from, to, true)) => from.replace_all(&base, to.as_str()).into(),
                            Some((from, to, false)) => from.replace(&base, to.as_str()).into(),
                        })
                    } else {
                        None
                    }
                }
            }
        };
        if let Some(result) = &result {
            if result.contains('/') || result.contains('@') {
                return Err(KerberosNameError::NonSimple(result.clone()));
            }
        }
        Ok(result)
    }
}

/// `replaceParameters`: `$n` is `params[n]` ($0 the realm); other text is kept.
fn replace_parameters(format: &str, params: &[&str]) -> Result<String, KerberosNameError> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        let index: usize = digits
            .parse()
            .map_err(|_| KerberosNameError::BadFormat(format.to_string()))?;
        let param = params
            .get(index)
            .ok_or_else(|| KerberosNameError::BadFormat(format.to_string()))?;
        out.push_str(param);
    }
    Ok(out)
}

/// The parsed `auth_to_local` rules with the default realm `DEFAULT` compares against
/// (ZooKeeper: `KerberosUtil.getDefaultRealm()`, "" when there is no Kerberos configuration).
#[derive(Debug, Clone)]
pub struct KerberosRules {
    rules: Vec<Rule>,
    pub default_realm: String,
}

/// Rules longer than this are refused (the property is operator input).
const RULES_TEXT_BYTES_MAX: usize = 64 * 1024;

fn compile(pattern: &str, whole: bool, rules: &str) -> Result<Regex, KerberosNameError> {
    let anchored = if whole {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    Regex::new(&anchored).map_err(|_| KerberosNameError::InvalidRule(rules.to_string()))
}

impl KerberosRules {
    /// `DEFAULT` alone: ZooKeeper's rules when `zookeeper.security.auth_to_local` is unset.
    pub fn default_rule(default_realm: &str) -> KerberosRules {
        KerberosRules {
            rules: vec![Rule::Default],
            default_realm: default_realm.to_string(),
        }
    }

    /// `KerberosName.parseRules`: rules one after another, separated by whitespace.
    pub fn parse(text: &str, default_realm: &str) -> Result<KerberosRules, KerberosNameError> {
        if text.len() > RULES_TEXT_BYTES_MAX {
            return Err(KerberosNameError::InvalidRule("too long".into()));
        }
        let mut rules = Vec::new();
        let mut remaining = text.trim();
        while !remaining.is_empty() {
            let invalid = || KerberosNameError::InvalidRule(remaining.to_string());
            if let Some(rest) = remaining.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                remaining = rest.trim_start();
                continue;
            }
            let rest = remaining.strip_prefix("RULE:[").ok_or_else(invalid)?;
            let (components, rest) = rest.split_once(':').ok_or_else(invalid)?;
            let components: usize = components.parse().map_err(|_| invalid())?;
            let (format, mut rest) = rest.split_once(']').ok_or_else(invalid)?;
            let mut matcher = None;
            if let Some(after) = rest.strip_prefix('(') {
                let (pattern, after) = after.split_once(')').ok_or_else(invalid)?;
                matcher = Some(compile(pattern, true, remaining)?);
                rest = after;
            }
            let mut substitution = None;
            if let Some(after) = rest.strip_prefix("s/") {
                let (from, after) = after.split_once('/').ok_or_else(invalid)?;
                let (to, after) = after.split_once('/').ok_or_else(invalid)?;
                let (global, after) = match after.strip_prefix('g') {
                    Some(after) => (true, after),
                    None => (false, after),
                };
                substitution = Some((
                    compile(from, false, remaining)?,
                    java_replacement(to),
                    global,
                ));
                rest = after;
            }
            rules.push(Rule::Custom {
                components,
                format: format.to_string(),
                matcher,
                substitution,
            });
            remaining = rest.trim_start();
        }
        Ok(KerberosRules {
            rules,
            default_realm: default_realm.to_string(),
        })
    }
}

/// How the SASL callback handler turns an authenticated principal into the `sasl:` id.
#[derive(Debug, Clone)]
pub struct PrincipalMapping {
    pub rules: KerberosRules,
    /// `zookeeper.kerberos.removeHostFromPrincipal`
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`
    pub remove_realm: bool,
}

impl PrincipalMapping {
    /// `SaslServerCallbackHandler.handleAuthorizeCallback`: the short name of the
    /// authentication id, then `/host` and `@realm` unless removed. When the rules give no
    /// name (ZooKeeper logs the IOException and leaves the authorized id unset), the result is
    /// the authorization id the client asked for (`AuthorizeCallback.getAuthorizedID`).
    /// `Err` when the authentication id is malformed (the handler's IllegalArgumentException,
    /// which fails the exchange).
    pub fn authorized_id(
        &self,
        authentication_id: &str,
        authorization_id: &str,
    ) -> Result<String, KerberosNameError> {
        let name = KerberosName::parse(authentication_id)?;
        let Ok(short) = name.short_name(&self.rules) else {
            return Ok(authorization_id.to_string());
        };
        let mut id = short;
        if let (false, Some(host)) = (self.remove_host, &name.host) {
            id.push('/');
            id.push_str(host);
        }
        if let (false, Some(realm)) = (self.remove_realm, &name.realm) {
            id.push('@');
            id.push_str(realm);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> KerberosRules {
        KerberosRules::parse(text, "EXAMPLE.COM").unwrap()
    }

    fn short(name: &str, text: &str) -> Result<String, KerberosNameError> {
        KerberosName::parse(name).unwrap().short_name(&rules(text))
    }

    #[test]
    fn names_parse_as_zookeeper_does() {
        let name = KerberosName::parse("zookeeper/host.example.com@EXAMPLE.COM").unwrap();
        assert_eq!(name.service, "zookeeper");
        assert_eq!(name.host.as_deref(), Some("host.example.com"));
        assert_eq!(name.realm.as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(name.to_string(), "zookeeper/host.example.com@EXAMPLE.COM");
        // No realm: one bare name, even with a slash.
        let bare = KerberosName::parse("a/b").unwrap();
        assert_eq!(
            (bare.service.as_str(), bare.host, bare.realm),
            ("a/b", None, None)
        );
        assert!(KerberosName::parse("a@b@c").is_err());
        assert!(KerberosName::parse("a/b/c@R").is_err());
        assert_eq!(KerberosName::parse("@R").unwrap().service, "");
    }

    #[test]
    fn default_rule_strips_the_default_realm_only() {
        assert_eq!(short("bob@EXAMPLE.COM", "DEFAULT").unwrap(), "bob");
        assert_eq!(short("zk/host@EXAMPLE.COM", "DEFAULT").unwrap(), "zk");
        assert_eq!(short("bob", "DEFAULT").unwrap(), "bob");
        assert!(matches!(
            short("bob@OTHER.ORG", "DEFAULT"),
            Err(KerberosNameError::NoMatchingRule(_))
        ));
    }

    #[test]
    fn custom_rules_as_hadoop_documents_them() {
        let text = "RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*//\n RULE:[2:$1](zk)s/zk/zookeeper/ DEFAULT";
        assert_eq!(short("alice@OTHER.ORG", text).unwrap(), "alice");
        assert_eq!(short("zk/h@ANY", text).unwrap(), "zookeeper");
        assert_eq!(short("x/h@EXAMPLE.COM", text).unwrap(), "x");
        assert!(short("x/h@ANY", text).is_err());
        // g replaces every match; a result with @ or / is an error, not a name.
        assert_eq!(short("a.b.c@R", "RULE:[1:$1]s/\\./_/g").unwrap(), "a_b_c");
        assert_eq!(short("a.b.c@R", "RULE:[1:$1]s/\\./_/").unwrap(), "a_b.c");
        assert!(matches!(
            short("a@R", "RULE:[1:$1@$0]"),
            Err(KerberosNameError::NonSimple(_))
        ));
        // Java replacement groups.
        assert_eq!(
            short("ab@R", "RULE:[1:$1](a.)s/(a)(b)/$2$1/").unwrap(),
            "ba"
        );
        for bad in [
            "RULE:[x:$1]",
            "RULE:[1:$1",
            "NOPE",
            "RULE:[1:$1](",
            "RULE:[1:$1]s/a/",
        ] {
            assert!(KerberosRules::parse(bad, "R").is_err(), "{bad}");
        }
        assert!(short("a@R", "RULE:[1:$5]").is_err());
    }

    #[test]
    fn authorized_id_follows_the_callback_handler() {
        let mapping = |remove_host, remove_realm| PrincipalMapping {
            rules: rules("DEFAULT"),
            remove_host,
            remove_realm,
        };
        let principal = "client/host.example.com@EXAMPLE.COM";
        assert_eq!(
            mapping(false, false)
                .authorized_id(principal, principal)
                .unwrap(),
            principal
        );
        assert_eq!(
            mapping(true, false)
                .authorized_id(principal, principal)
                .unwrap(),
            "client@EXAMPLE.COM"
        );
        assert_eq!(
            mapping(true, true)
                .authorized_id(principal, principal)
                .unwrap(),
            "client"
        );
        // DIGEST-MD5 users are bare names.
        assert_eq!(
            mapping(false, false).authorized_id("bob", "bob").unwrap(),
            "bob"
        );
        // No rule applies: the requested authorization id is kept.
        assert_eq!(
            mapping(true, true)
                .authorized_id("bob@OTHER", "carol")
                .unwrap(),
            "carol"
        );
        assert!(mapping(true, true).authorized_id("a@b@c", "a").is_err());
    }
}
