//! [pure] The JAAS login configuration file, as Java's default `ConfigFile`
//! (`sun.security.provider.ConfigFile`) reads the file named by
//! `java.security.auth.login.config`:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!         user_super="adminsecret"
//!         user_bob="bobsecret";
//!     com.sun.security.auth.module.Krb5LoginModule required
//!         useKeyTab=true keyTab="/etc/zk.keytab" principal="zookeeper/host@REALM";
//! };
//! ```
//!
//! Sections (application names) hold login module entries: a class name, a control flag
//! (`required`, `requisite`, `sufficient`, `optional`, any case), `key=value` options
//! (values quoted with `"` or `'`, or bare words) and `;`. Comments are `//`, `/* */` and `#`
//! to the end of the line. `${name}` in a value is replaced by the property `name`, as
//! ConfigFile expands system properties. A name given twice appends entries to the section.
//! Everything is bounded: the text ([`JAAS_FILE_BYTES_MAX`]), sections, entries, options.

use std::collections::BTreeMap;

use thiserror::Error;

/// Largest JAAS file read (ZooKeeper deployments' files are a few hundred bytes).
pub const JAAS_FILE_BYTES_MAX: usize = 1 << 20;
const SECTIONS_MAX: usize = 1024;
const ENTRIES_PER_SECTION_MAX: usize = 256;
const OPTIONS_PER_ENTRY_MAX: usize = 4096;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JaasError {
    #[error("JAAS file is larger than {JAAS_FILE_BYTES_MAX} bytes")]
    TooLarge,
    #[error("JAAS file line {line}: {reason}")]
    Syntax { line: usize, reason: String },
}

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModuleEntry {
    pub class_name: String,
    /// The control flag in lower case.
    pub flag: String,
    /// Options in the order written; a key given twice keeps its last value (a Java map).
    pub options: BTreeMap<String, String>,
}

impl LoginModuleEntry {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// A parsed JAAS file: application name -> entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasConfig {
    pub sections: BTreeMap<String, Vec<LoginModuleEntry>>,
}

impl JaasConfig {
    pub fn section(&self, name: &str) -> Option<&[LoginModuleEntry]> {
        self.sections.get(name).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Symbol(char),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

fn is_word_char(c: char) -> bool {
    // StreamTokenizer's word characters plus those ConfigFile adds ($ _ - * .) and what
    // class names, paths and principals need when left unquoted.
    c.is_alphanumeric() || matches!(c, '$' | '_' | '-' | '*' | '.' | '/' | '@' | ':' | '\\')
}

impl<'a> Lexer<'a> {
    fn error(&self, reason: impl Into<String>) -> JaasError {
        JaasError::Syntax {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn skip_space_and_comments(&mut self) -> Result<(), JaasError> {
        loop {
            match self.chars.peek().copied() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                Some('/') => {
                    let mut lookahead = self.chars.clone();
                    lookahead.next();
                    match lookahead.next() {
                        Some('/') => {
                            while let Some(c) = self.bump() {
                                if c == '\n' {
                                    break;
                                }
                            }
                        }
                        Some('*') => {
                            self.bump();
                            self.bump();
                            let mut previous = '\0';
                            loop {
                                match self.bump() {
                                    Some('/') if previous == '*' => break,
                                    Some(c) => previous = c,
                                    None => return Err(self.error("unterminated /* comment")),
                                }
                            }
                        }
                        _ => return Ok(()),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn next_token(&mut self) -> Result<Option<Token>, JaasError> {
        self.skip_space_and_comments()?;
        let Some(c) = self.chars.peek().copied() else {
            return Ok(None);
        };
        if c == '"' || c == '\'' {
            self.bump();
            let mut text = String::new();
            loop {
                match self.bump() {
                    Some('\\') => match self.bump() {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some(other) => text.push(other),
                        None => return Err(self.error("unterminated quoted string")),
                    },
                    Some(end) if end == c => break,
                    Some(other) => text.push(other),
                    None => return Err(self.error("unterminated quoted string")),
                }
            }
            return Ok(Some(Token::Quoted(text)));
        }
        if is_word_char(c) {
            let mut word = String::new();
            while let Some(c) = self.chars.peek().copied() {
                if !is_word_char(c) {
                    break;
                }
                word.push(c);
                self.bump();
            }
            return Ok(Some(Token::Word(word)));
        }
        self.bump();
        Ok(Some(Token::Symbol(c)))
    }
}

/// Replaces `${name}` with `properties[name]` (ConfigFile's property expansion).
fn expand(
    value: &str,
    properties: &BTreeMap<String, String>,
    line: usize,
) -> Result<String, JaasError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(JaasError::Syntax {
                line,
                reason: format!("unterminated ${{ in {value:?}"),
            });
        };
        let name = &after[..end];
        match properties.get(name) {
            Some(replacement) => out.push_str(replacement),
            None => {
                return Err(JaasError::Syntax {
                    line,
                    reason: format!("property {name:?} in {value:?} is not defined"),
                })
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a JAAS file. `properties` are the system properties `${...}` may name.
pub fn parse(text: &str, properties: &BTreeMap<String, String>) -> Result<JaasConfig, JaasError> {
    if text.len() > JAAS_FILE_BYTES_MAX {
        return Err(JaasError::TooLarge);
    }
    let mut lexer = Lexer {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut config = JaasConfig::default();
    let mut section_count = 0usize;
    loop {
        let name = match lexer.next_token()? {
            None => break,
            Some(Token::Word(name)) | Some(Token::Quoted(name)) => name,
            Some(Token::Symbol(c)) => {
                return Err(lexer.error(format!("expected an application name, found {c:?}")))
            }
        };
        section_count += 1;
        if section_count > SECTIONS_MAX {
            return Err(lexer.error(format!("more than {SECTIONS_MAX} sections")));
        }
        if lexer.next_token()? != Some(Token::Symbol('{')) {
            return Err(lexer.error(format!("expected '{{' after {name:?}")));
        }
        let mut entries = Vec::new();
        loop {
            let class_name = match lexer.next_token()? {
                Some(Token::Symbol('}')) => break,
                Some(Token::Word(class_name)) => class_name,
                other => {
                    return Err(lexer.error(format!(
                        "expected a login module class or '}}' in {name:?}, found {other:?}"
                    )))
                }
            };
            if entries.len() >= ENTRIES_PER_SECTION_MAX {
                return Err(lexer.error(format!("more than {ENTRIES_PER_SECTION_MAX} entries")));
            }
            let flag = match lexer.next_token()? {
                Some(Token::Word(flag))
                    if ["required", "requisite", "sufficient", "optional"]
                        .contains(&flag.to_ascii_lowercase().as_str()) =>
                {
                    flag.to_ascii_lowercase()
                }
                other => {
                    return Err(lexer.error(format!(
                        "{class_name}: expected a control flag (required, requisite, \
                         sufficient, optional), found {other:?}"
                    )))
                }
            };
            let mut options = BTreeMap::new();
            loop {
                let key = match lexer.next_token()? {
                    Some(Token::Symbol(';')) => break,
                    Some(Token::Word(key)) => key,
                    other => {
                        return Err(lexer.error(format!(
                            "{class_name}: expected an option or ';', found {other:?}"
                        )))
                    }
                };
                if lexer.next_token()? != Some(Token::Symbol('=')) {
                    return Err(lexer.error(format!("{class_name}: expected '=' after {key}")));
                }
                let value = match lexer.next_token()? {
                    Some(Token::Word(value)) | Some(Token::Quoted(value)) => value,
                    other => {
                        return Err(lexer.error(format!(
                            "{class_name}: expected a value for {key}, found {other:?}"
                        )))
                    }
                };
                if options.len() >= OPTIONS_PER_ENTRY_MAX {
                    return Err(lexer.error(format!("more than {OPTIONS_PER_ENTRY_MAX} options")));
                }
                options.insert(key, expand(&value, properties, lexer.line)?);
            }
            entries.push(LoginModuleEntry {
                class_name,
                flag,
                options,
            });
        }
        if lexer.next_token()? != Some(Token::Symbol(';')) {
            return Err(lexer.error(format!("expected ';' after the '}}' of {name:?}")));
        }
        config.sections.entry(name).or_default().extend(entries);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> JaasConfig {
        parse(text, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn zookeeper_server_section_with_digest_users_and_kerberos() {
        let config = parse_ok(
            r#"
            // the ZooKeeper admin guide's example
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="adminsecret"
                user_bob="bob\"secret";
                com.sun.security.auth.module.Krb5LoginModule Required
                    useKeyTab=true keyTab='/etc/zk.keytab'
                    storeKey=true principal="zookeeper/localhost@EXAMPLE.COM";
            };
            /* a client section */ Client {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                username="bob" password="bobsecret"; # trailing comment
            };
            "#,
        );
        let server = config.section("Server").unwrap();
        assert_eq!(server.len(), 2);
        assert_eq!(
            server[0].class_name,
            "org.apache.zookeeper.server.auth.DigestLoginModule"
        );
        assert_eq!(server[0].flag, "required");
        assert_eq!(server[0].option("user_super"), Some("adminsecret"));
        assert_eq!(server[0].option("user_bob"), Some("bob\"secret"));
        assert_eq!(server[1].flag, "required");
        assert_eq!(server[1].option("useKeyTab"), Some("true"));
        assert_eq!(server[1].option("keyTab"), Some("/etc/zk.keytab"));
        assert_eq!(
            server[1].option("principal"),
            Some("zookeeper/localhost@EXAMPLE.COM")
        );
        assert_eq!(
            config.section("Client").unwrap()[0].option("username"),
            Some("bob")
        );
        assert!(config.section("Missing").is_none());
    }

    #[test]
    fn properties_are_expanded_and_repeated_sections_append() {
        let mut properties = BTreeMap::new();
        properties.insert("user.home".to_string(), "/home/zk".to_string());
        let config = parse(
            "A { x.Y required keyTab=\"${user.home}/zk.keytab\"; };\nA { x.Z optional; };",
            &properties,
        )
        .unwrap();
        let section = config.section("A").unwrap();
        assert_eq!(section.len(), 2);
        assert_eq!(section[0].option("keyTab"), Some("/home/zk/zk.keytab"));
        assert_eq!(section[1].flag, "optional");
        assert!(parse("A { x.Y required k=\"${nope}\"; };", &BTreeMap::new()).is_err());
    }

    #[test]
    fn malformed_files_are_errors_with_a_line_not_panics() {
        for text in [
            "Server {",
            "Server { a.B required",
            "Server { a.B mandatory; };",
            "Server { a.B required k; };",
            "Server { a.B required k=; };",
            "Server { a.B required k=\"unterminated; };",
            "Server { a.B required; }",
            "{ };",
            "Server { a.B required; }; /* open",
        ] {
            assert!(parse(text, &BTreeMap::new()).is_err(), "{text:?}");
        }
        match parse("A {\n\n b.C bad; };", &BTreeMap::new()) {
            Err(JaasError::Syntax { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let huge = "x".repeat(JAAS_FILE_BYTES_MAX + 1);
        assert_eq!(parse(&huge, &BTreeMap::new()), Err(JaasError::TooLarge));
    }
}
