//! [io] The AdminServer's transport: a small HTTP/1.1 server of its own, over any `Read +
//! Write` stream, so that the one port can speak plain HTTP, HTTPS, or both (JettyAdminServer's
//! ServerConnector with an HttpConnectionFactory, an SslConnectionFactory for
//! `admin.forceHttps`, a UnifiedConnectionFactory for `admin.portUnification`), and so that a
//! command sees the client certificate of its connection (the `x509` scheme).
//!
//! One request per connection (`Connection: close` on every answer; keep-alive is optional in
//! HTTP/1.1). Every part is bounded: the request head ([`HEAD_BYTES_LIMIT`], at most
//! [`HEADER_COUNT_LIMIT`] header lines), the body (its `Content-Length`; a chunked body is
//! refused with 411), the connections served at once ([`CONNECTIONS_LIMIT`], each on a thread
//! of its own; more are closed at once), and every read and write (`admin.idleTimeout`, as
//! Jetty's connector idle timeout). Commands run one at a time, as they did on the one
//! AdminServer thread before.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use crate::net::tls::TLS_HANDSHAKE_RECORD;

/// The largest request head (request line and headers) read, in bytes; a longer one is
/// answered 431.
pub const HEAD_BYTES_LIMIT: usize = 16 * 1024;
/// The most header lines a request may have; more are answered 431.
pub const HEADER_COUNT_LIMIT: usize = 100;
/// Connections served at once; one more is closed as soon as it is accepted.
pub const CONNECTIONS_LIMIT: usize = 32;
/// The most bytes of a request body the server reads and drops, unread by its command,
/// before it answers (so that the client reads the answer rather than a reset).
const DRAIN_BYTES_LIMIT: u64 = 8 << 20;
/// Jetty's SecureRequestCustomizer in JettyAdminServer: `setStsMaxAge(1 day)`,
/// `setStsIncludeSubDomains(true)`, sent on every answer over HTTPS.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=86400; includeSubDomains";

/// How the AdminServer's port takes connections.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP (neither `admin.forceHttps` nor `admin.portUnification`).
    Plain,
    /// `admin.forceHttps`: every connection starts with a TLS handshake.
    Tls(Arc<rustls::ServerConfig>),
    /// `admin.portUnification`: TLS when the first byte is a TLS handshake record, plain
    /// HTTP otherwise.
    Unified(Arc<rustls::ServerConfig>),
}

/// The connection a request came on.
pub struct Peer {
    pub address: SocketAddr,
    /// The client's certificate chain, leaf first, as the TLS handshake verified it (only
    /// with `admin.needClientAuth`, the only case in which one is asked for).
    pub certificates: Option<Vec<CertificateDer<'static>>>,
    /// Whether the request came over TLS.
    pub secure: bool,
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// An answer.
pub struct Response {
    pub status: u16,
    /// Headers besides Content-Length and Connection, which are added here.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the connection closed before a request")]
    Closed,
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    #[error("request head larger than {HEAD_BYTES_LIMIT} bytes or {HEADER_COUNT_LIMIT} headers")]
    TooLarge,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// [pure] The status line's reason phrase for the statuses the AdminServer answers with.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Reads one request head (up to and including the empty line), bounded by
/// [`HEAD_BYTES_LIMIT`] and [`HEADER_COUNT_LIMIT`]. Lines end in CRLF or a bare LF
/// (RFC 9112 section 2.2 lets a server take either).
pub fn read_head(reader: &mut impl BufRead) -> Result<Request, HeadError> {
    let mut used = 0usize;
    let mut line = Vec::new();
    let mut next_line = |reader: &mut dyn BufRead, line: &mut Vec<u8>| -> Result<(), HeadError> {
        line.clear();
        let remaining = HEAD_BYTES_LIMIT.saturating_sub(used) as u64;
        let read = reader.take(remaining).read_until(b'\n', line)?;
        used += read;
        if line.last() != Some(&b'\n') {
            return Err(if read == 0 && used == 0 {
                HeadError::Closed
            } else if used >= HEAD_BYTES_LIMIT {
                HeadError::TooLarge
            } else {
                HeadError::Malformed("the head ends before its empty line")
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(())
    };
    next_line(reader, &mut line)?;
    let request_line =
        std::str::from_utf8(&line).map_err(|_| HeadError::Malformed("request line not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "request line is not <method> <target> <version>",
        ));
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed(
            "request line is not <method> <target> <version>",
        ));
    }
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        next_line(reader, &mut line)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == HEADER_COUNT_LIMIT {
            return Err(HeadError::TooLarge);
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| HeadError::Malformed("header not UTF-8"))?;
        let Some((name, value)) = text.split_once(':') else {
            return Err(HeadError::Malformed("header without a colon"));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(HeadError::Malformed("bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method,
        target,
        headers,
    })
}

/// [pure] The bytes of an answer: status line, headers, `Content-Length`,
/// `Connection: close`, the HSTS header over TLS, then the body.
pub fn encode_response(response: &Response, secure: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        // A header a command made must not split the head.
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if secure {
        head.push_str(&format!(
            "Strict-Transport-Security: {STRICT_TRANSPORT_SECURITY}\r\n"
        ));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

/// [pure] The body's length from every `Content-Length` header (0 without one). RFC 9110
/// section 8.6: the value is digits only (no sign, no spaces inside); a header repeated, or a
/// comma-separated list, is taken only when every value is the same (RFC 9112 section 6.3),
/// since a server and a proxy in front of it that picked different ones would frame the body
/// differently.
pub fn content_length(request: &Request) -> Result<u64, &'static str> {
    let mut length = None;
    let values = request
        .headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("Content-Length"))
        .flat_map(|(_, value)| value.split(','));
    for value in values {
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err("bad Content-Length: not a number of bytes");
        }
        let value: u64 = value.parse().map_err(|_| "bad Content-Length: too large")?;
        if length.is_some_and(|seen| seen != value) {
            return Err("bad Content-Length: values differ");
        }
        length = Some(value);
    }
    Ok(length.unwrap_or(0))
}

/// What answers a request: the head, its body (`Content-Length` bytes at most) and the
/// connection it came on.
pub type Handler = dyn Fn(&Request, &mut dyn Read, &Peer) -> Response + Send + Sync;

/// One request and its answer over `stream` (the fuzz target `admin_http` drives it over
/// bytes in memory, as a connection's would be).
pub(crate) fn exchange<S: Read + Write>(
    stream: S,
    peer: &Peer,
    handler: &Handler,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let request = match read_head(&mut reader) {
        Ok(request) => request,
        Err(HeadError::Closed) => return Ok(()),
        Err(HeadError::Io(error)) => return Err(error),
        Err(error) => {
            info!("AdminServer: {} sent a bad request: {error}", peer.address);
            let status = if matches!(error, HeadError::TooLarge) {
                431
            } else {
                400
            };
            let response = Response::text(status, "text/plain", format!("{error}\n"));
            return write_response(reader.get_mut(), &response, peer.secure);
        }
    };
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|value| !value.eq_ignore_ascii_case("identity"));
    let length = match content_length(&request) {
        Ok(length) => length,
        Err(reason) => {
            info!("AdminServer: {} sent a bad request: {reason}", peer.address);
            let response = Response::text(400, "text/plain", format!("{reason}\n"));
            return write_response(reader.get_mut(), &response, peer.secure);
        }
    };
    if chunked {
        let response = Response::text(
            411,
            "text/plain",
            "a chunked request body is not taken; send Content-Length\n",
        );
        return write_response(reader.get_mut(), &response, peer.secure);
    }
    if length > 0
        && request
            .header("Expect")
            .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        // curl waits for this (or a second) before it sends a body.
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        reader.get_mut().flush()?;
    }
    let mut body = (&mut reader).take(length);
    let response = handler(&request, &mut body, peer);
    // What the command left unread, so the client gets the answer rather than a reset.
    let unread = body.limit();
    if unread > 0 && unread <= DRAIN_BYTES_LIMIT {
        std::io::copy(&mut body, &mut std::io::sink())?;
    }
    write_response(reader.get_mut(), &response, peer.secure)
}

fn write_response(
    stream: &mut impl Write,
    response: &Response,
    secure: bool,
) -> std::io::Result<()> {
    stream.write_all(&encode_response(response, secure))?;
    stream.flush()
}

/// [pure] Whether a connection on a port-unified AdminServer (`admin.portUnification`) is
/// TLS, by the first bytes it sent (none: it closed before a byte, and is served as plain
/// HTTP, which reads the close). ZooKeeper's UnifiedConnectionFactory looks at the first byte
/// the same way: a TLS record of type handshake (0x16).
pub(crate) fn starts_tls(first: &[u8]) -> bool {
    first.first() == Some(&TLS_HANDSHAKE_RECORD)
}

/// Counts a connection in while it is served.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One accepted connection to its end: the TLS handshake where the transport asks for one,
/// then one request.
fn connection(stream: TcpStream, address: SocketAddr, transport: &Transport, handler: &Handler) {
    let tls = match transport {
        Transport::Plain => None,
        Transport::Tls(config) => Some(config.clone()),
        Transport::Unified(config) => {
            let mut first = [0u8; 1];
            match stream.peek(&mut first) {
                Ok(read) if starts_tls(first.get(..read).unwrap_or(&[])) => Some(config.clone()),
                Ok(_) => None,
                Err(error) => {
                    info!("AdminServer: closing connection from {address}: {error}");
                    return;
                }
            }
        }
    };
    let outcome = match tls {
        None => {
            let peer = Peer {
                address,
                certificates: None,
                secure: false,
            };
            exchange(&stream, &peer, handler)
        }
        Some(config) => {
            let mut session = match rustls::ServerConnection::new(config) {
                Ok(session) => session,
                Err(error) => {
                    warn!("AdminServer: TLS session for {address}: {error}");
                    return;
                }
            };
            let mut socket = &stream;
            while session.is_handshaking() {
                if let Err(error) = session.complete_io(&mut socket) {
                    // A plain HTTP request on an HTTPS-only port ends here too.
                    info!("AdminServer: closing connection from {address}: TLS handshake failed: {error}");
                    // Send the alert rustls queued, if it can.
                    let _ = session.write_tls(&mut socket);
                    return;
                }
            }
            let peer = Peer {
                address,
                certificates: session.peer_certificates().map(|chain| chain.to_vec()),
                secure: true,
            };
            let mut tls = rustls::StreamOwned::new(session, socket);
            let outcome = exchange(&mut tls, &peer, handler);
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
            outcome
        }
    };
    if let Err(error) = outcome {
        info!("AdminServer: connection from {address}: {error}");
    }
}

/// Accepts connections on `listener` and serves each on a thread of its own, at most
/// [`CONNECTIONS_LIMIT`] at once; `idle_timeout` bounds every read and write.
pub fn serve(
    listener: TcpListener,
    transport: Transport,
    idle_timeout: Duration,
    handler: Arc<Handler>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let transport = Arc::new(transport);
    for accepted in listener.incoming() {
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                warn!("AdminServer: accept: {error}");
                // Out of descriptors, most likely: give the served ones time to end rather
                // than spin on the error.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let address = match stream.peer_addr() {
            Ok(address) => address,
            Err(_) => continue,
        };
        if active.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS_LIMIT {
            active.fetch_sub(1, Ordering::SeqCst);
            info!("AdminServer: closing connection from {address}: {CONNECTIONS_LIMIT} connections already served");
            continue;
        }
        let slot = Slot(active.clone());
        let timeout = Some(idle_timeout.max(Duration::from_millis(1)));
        if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let transport = transport.clone();
        let handler = handler.clone();
        let spawned = std::thread::Builder::new()
            .name("admin-conn".into())
            .spawn(move || {
                let _slot = slot;
                connection(stream, address, &transport, &*handler);
            });
        if let Err(error) = spawned {
            warn!("AdminServer: cannot start a thread for {address}: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_read_with_its_headers() {
        let mut input: &[u8] =
            b"GET /commands/ruok?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: x509\r\n\r\nrest";
        let request = read_head(&mut input).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/commands/ruok?x=1");
        assert_eq!(request.header("authorization"), Some("x509"));
        assert_eq!(input, b"rest");
    }

    /// Port unification: a TLS handshake record goes to rustls, anything else (nothing
    /// included) is served as plain HTTP.
    #[test]
    fn a_tls_first_byte_picks_tls_on_a_unified_port() {
        assert!(starts_tls(&[0x16, 0x03, 0x01]));
        assert!(!starts_tls(b"GET / HTTP/1.1\r\n"));
        assert!(!starts_tls(&[0x17, 0x03, 0x03]));
        assert!(!starts_tls(&[]));
    }

    #[test]
    fn bare_line_feeds_end_lines_too() {
        let mut input: &[u8] = b"POST /c HTTP/1.0\nContent-Length: 3\n\nabc";
        let request = read_head(&mut input).unwrap();
        assert_eq!(request.header("Content-Length"), Some("3"));
    }

    #[test]
    fn bad_and_oversized_heads_are_refused() {
        let mut closed: &[u8] = b"";
        assert!(matches!(read_head(&mut closed), Err(HeadError::Closed)));
        let mut garbage: &[u8] = b"\x16\x03\x01\x00\x05hello\r\n\r\n";
        assert!(matches!(
            read_head(&mut garbage),
            Err(HeadError::Malformed(_))
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(HEAD_BYTES_LIMIT));
        assert!(matches!(
            read_head(&mut long.as_bytes()),
            Err(HeadError::TooLarge)
        ));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(HEADER_COUNT_LIMIT + 1)
        );
        assert!(matches!(
            read_head(&mut many.as_bytes()),
            Err(HeadError::TooLarge)
        ));
        let mut truncated: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n";
        assert!(matches!(
            read_head(&mut truncated),
            Err(HeadError::Malformed(_))
        ));
    }

    /// RFC 9110 section 8.6 and RFC 9112 section 6.3: digits only, and one length however
    /// often it is sent.
    #[test]
    fn content_length_is_digits_and_one_value() {
        let with = |values: &[&str]| Request {
            method: "POST".into(),
            target: "/commands/restore".into(),
            headers: values
                .iter()
                .map(|value| ("content-length".to_string(), value.to_string()))
                .collect(),
        };
        assert_eq!(content_length(&with(&[])), Ok(0));
        assert_eq!(content_length(&with(&["5"])), Ok(5));
        assert_eq!(content_length(&with(&["5", "5"])), Ok(5));
        assert_eq!(content_length(&with(&["5, 5"])), Ok(5));
        for bad in [
            &["+5"][..],
            &["-5"],
            &["5 5"],
            &[""],
            &["0x5"],
            &["5", "6"],
            &["5,6"],
            &["5,"],
            &["99999999999999999999999"],
        ] {
            assert!(content_length(&with(bad)).is_err(), "{bad:?} taken");
        }
    }

    /// A refused length is answered 400 before the command runs.
    #[test]
    fn a_signed_or_doubled_content_length_is_refused() {
        for head in [
            "POST /commands/restore HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
            "POST /commands/restore HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 1\r\n\r\nabc",
        ] {
            let mut wire = std::io::Cursor::new(head.as_bytes().to_vec());
            // An Arc: the server's Handler type is 'static.
            let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let told = ran.clone();
            let handler = move |_: &Request, _: &mut dyn Read, _: &Peer| {
                told.store(true, std::sync::atomic::Ordering::SeqCst);
                Response::text(200, "text/plain", "ran\n")
            };
            let peer = Peer {
                address: SocketAddr::from(([127, 0, 0, 1], 1)),
                certificates: None,
                secure: false,
            };
            // The cursor reads and writes at one position: the answer lands after what the
            // server's buffered reader took.
            exchange(&mut wire, &peer, &handler).unwrap();
            let written = String::from_utf8_lossy(wire.get_ref()).into_owned();
            assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "{head}");
            assert!(written.contains("HTTP/1.1 400 Bad Request"), "{written}");
        }
    }

    #[test]
    fn an_answer_has_its_length_and_closes_and_hsts_over_tls() {
        let response = Response::text(403, "application/json", "{}");
        let text = String::from_utf8(encode_response(&response, true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
        assert!(text.contains("Strict-Transport-Security: max-age=86400; includeSubDomains"));
        let plain = String::from_utf8(encode_response(&response, false)).unwrap();
        assert!(!plain.contains("Strict-Transport-Security"));
    }
}
