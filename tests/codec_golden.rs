//! Golden tests: the jute codec against bytes that real clients (Kazoo, the C client, the Java
//! client) exchanged with Apache ZooKeeper, captured by `scripts/capture-golden.py` into
//! `tests/golden/*.txt` (one frame per line: `C `/`S ` then the body in hex; `#` comments).
//!
//! For every conversation:
//! - the first client frame is a ConnectRequest and the first server frame a ConnectResponse;
//! - every later client frame is RequestHeader + a body that `Request::decode` accepts;
//! - every later server frame is ReplyHeader + the body that answers the request with the
//!   same xid (xid -1: a WatcherEvent notification), decoded by the helpers below;
//! - every frame is consumed exactly, and re-encoding what was decoded gives the captured
//!   bytes back (clients may send a null ustring where the codec reads an empty one; that
//!   is the only difference tolerated, and only in client frames).
//!
//! Further tests pin down the facts a server must reproduce byte for byte (ConnectResponse
//! layout, the reply to closeSession, failed multi, pings, notifications, AuthFailed, ...).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ringkeeper::jute::records::*;
use ringkeeper::jute::request::{Request, RequestError};
use ringkeeper::jute::{
    ErrorCode, EventType, JuteError, KeeperState, OpCode, Reader, Record, Writer,
};

// ---------------------------------------------------------------------------------------
// Golden files

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
}

#[derive(Debug, Clone)]
struct Frame {
    direction: Direction,
    body: Vec<u8>,
    line: usize,
}

struct Conversation {
    name: String,
    frames: Vec<Frame>,
    comments: Vec<String>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", text.len()));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| format!("{e} at {i}")))
        .collect()
}

fn load(path: &Path) -> Conversation {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut frames = Vec::new();
    let mut comments = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if let Some(comment) = line.strip_prefix('#') {
            comments.push(comment.trim().to_owned());
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (direction, hex) = match line.split_once(' ') {
            Some(("C", hex)) => (Direction::Client, hex),
            Some(("S", hex)) => (Direction::Server, hex),
            _ => panic!("{name}:{line_number}: not `C <hex>` or `S <hex>`"),
        };
        let body = parse_hex(hex).unwrap_or_else(|e| panic!("{name}:{line_number}: {e}"));
        frames.push(Frame {
            direction,
            body,
            line: line_number,
        });
    }
    Conversation {
        name,
        frames,
        comments,
    }
}

fn all_conversations() -> Vec<Conversation> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    let conversations: Vec<Conversation> = paths.iter().map(|path| load(path)).collect();
    // Guard against an empty or half-written capture passing vacuously.
    assert!(
        conversations.len() >= 10,
        "expected the captured golden files, found {}",
        conversations.len()
    );
    for client in ["kazoo-", "cli_mt-", "zkcli-"] {
        assert!(
            conversations.iter().any(|c| c.name.starts_with(client)),
            "no golden file from {client}*"
        );
    }
    conversations
}

// ---------------------------------------------------------------------------------------
// Response decoding (the server side of the protocol, which the codec does not type yet)

/// One result of a multi or multiRead reply: its MultiHeader and the record that follows.
#[derive(Debug, Clone, PartialEq)]
struct MultiResult {
    header: MultiHeader,
    body: Body,
}

/// The record after a ReplyHeader.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    Exists(ExistsResponse),
    GetData(GetDataResponse),
    SetData(SetDataResponse),
    GetAcl(GetAclResponse),
    SetAcl(SetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    Sync(SyncResponse),
    Sasl(SetSaslResponse),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    WhoAmI(WhoAmIResponse),
    /// addWatch answers ErrorResponse(0); a multi's failed op answers ErrorResponse(err).
    Error(ErrorResponse),
    /// Results in order; the terminating MultiHeader is checked while decoding.
    Multi(Vec<MultiResult>),
    Notification(WatcherEvent),
}

impl Body {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Body::Empty => {}
            Body::Create(r) => r.encode(writer),
            Body::Create2(r) => r.encode(writer),
            Body::Exists(r) => r.encode(writer),
            Body::GetData(r) => r.encode(writer),
            Body::SetData(r) => r.encode(writer),
            Body::GetAcl(r) => r.encode(writer),
            Body::SetAcl(r) => r.encode(writer),
            Body::GetChildren(r) => r.encode(writer),
            Body::GetChildren2(r) => r.encode(writer),
            Body::Sync(r) => r.encode(writer),
            Body::Sasl(r) => r.encode(writer),
            Body::GetEphemerals(r) => r.encode(writer),
            Body::GetAllChildrenNumber(r) => r.encode(writer),
            Body::WhoAmI(r) => r.encode(writer),
            Body::Error(r) => r.encode(writer),
            Body::Notification(r) => r.encode(writer),
            Body::Multi(results) => {
                for result in results {
                    result.header.encode(writer);
                    result.body.encode(writer);
                }
                MULTI_DONE.encode(writer);
            }
        }
    }
}

/// The MultiHeader that ends every multi request and reply (MultiResponse.serialize).
const MULTI_DONE: MultiHeader = MultiHeader {
    op_type: -1,
    done: true,
    err: -1,
};

/// The body ZooKeeper's FinalRequestProcessor writes after a successful reply to `op`.
fn decode_success_body(op: OpCode, reader: &mut Reader<'_>) -> Result<Body, String> {
    let body = match op {
        OpCode::Create => Body::Create(CreateResponse::decode(reader).map_err(s)?),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Body::Create2(Create2Response::decode(reader).map_err(s)?)
        }
        OpCode::Exists => Body::Exists(ExistsResponse::decode(reader).map_err(s)?),
        OpCode::GetData | OpCode::Reconfig => {
            Body::GetData(GetDataResponse::decode(reader).map_err(s)?)
        }
        OpCode::SetData => Body::SetData(SetDataResponse::decode(reader).map_err(s)?),
        OpCode::GetAcl => Body::GetAcl(GetAclResponse::decode(reader).map_err(s)?),
        OpCode::SetAcl => Body::SetAcl(SetAclResponse::decode(reader).map_err(s)?),
        OpCode::GetChildren => Body::GetChildren(GetChildrenResponse::decode(reader).map_err(s)?),
        OpCode::GetChildren2 => {
            Body::GetChildren2(GetChildren2Response::decode(reader).map_err(s)?)
        }
        OpCode::Sync => Body::Sync(SyncResponse::decode(reader).map_err(s)?),
        OpCode::Sasl => Body::Sasl(SetSaslResponse::decode(reader).map_err(s)?),
        OpCode::GetEphemerals => {
            Body::GetEphemerals(GetEphemeralsResponse::decode(reader).map_err(s)?)
        }
        OpCode::GetAllChildrenNumber => {
            Body::GetAllChildrenNumber(GetAllChildrenNumberResponse::decode(reader).map_err(s)?)
        }
        OpCode::WhoAmI => Body::WhoAmI(WhoAmIResponse::decode(reader).map_err(s)?),
        OpCode::AddWatch => Body::Error(ErrorResponse::decode(reader).map_err(s)?),
        OpCode::Multi => Body::Multi(decode_multi_results(reader, false)?),
        OpCode::MultiRead => Body::Multi(decode_multi_results(reader, true)?),
        OpCode::Delete
        | OpCode::DeleteContainer
        | OpCode::Ping
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::CloseSession
        | OpCode::Check => Body::Empty,
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            return Err(format!("{op:?} is never a request a client sends"))
        }
    };
    Ok(body)
}

fn s(error: JuteError) -> String {
    error.to_string()
}

/// MultiResponse (ZooKeeper 3.8 MultiResponse.serialize): per result a MultiHeader
/// (type, done=false, err) and the result record chosen by the header's type, then
/// MultiHeader(-1, true, -1).
fn decode_multi_results(
    reader: &mut Reader<'_>,
    read_only: bool,
) -> Result<Vec<MultiResult>, String> {
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::decode(reader).map_err(s)?;
        if header.done {
            if header != MULTI_DONE {
                return Err(format!(
                    "terminating MultiHeader is {header:?}, not (-1, true, -1)"
                ));
            }
            return Ok(results);
        }
        let body = match (read_only, header.op_type) {
            (_, -1) => {
                let error = ErrorResponse::decode(reader).map_err(s)?;
                if error.err != header.err {
                    return Err(format!(
                        "error result {} under a header with err {}",
                        error.err, header.err
                    ));
                }
                Body::Error(error)
            }
            (false, 1) => Body::Create(CreateResponse::decode(reader).map_err(s)?),
            (false, 15) => Body::Create2(Create2Response::decode(reader).map_err(s)?),
            (false, 5) => Body::SetData(SetDataResponse::decode(reader).map_err(s)?),
            (false, 2) | (false, 13) => Body::Empty,
            (true, 4) => Body::GetData(GetDataResponse::decode(reader).map_err(s)?),
            (true, 8) => Body::GetChildren(GetChildrenResponse::decode(reader).map_err(s)?),
            (_, other) => return Err(format!("unexpected result type {other} in a multi reply")),
        };
        if header.op_type != -1 && header.err != 0 {
            return Err(format!("successful result {header:?} has a non-zero err"));
        }
        results.push(MultiResult { header, body });
    }
}

// ---------------------------------------------------------------------------------------
// Request re-encoding (the codec decodes requests; the test checks nothing was lost)

fn encode_request(op_type: i32, request: &Request, writer: &mut Writer) {
    match request {
        Request::Create(create) => {
            if create.op == OpCode::CreateTtl {
                CreateTtlRequest {
                    path: create.path.clone(),
                    data: create.data.clone(),
                    acl: create.acl.clone(),
                    flags: create.flags,
                    ttl: create.ttl,
                }
                .encode(writer)
            } else {
                assert_eq!(create.ttl, -1, "only createTTL carries a ttl");
                CreateRequest {
                    path: create.path.clone(),
                    data: create.data.clone(),
                    acl: create.acl.clone(),
                    flags: create.flags,
                }
                .encode(writer)
            }
        }
        Request::Delete(r) => r.encode(writer),
        Request::Exists(r) => r.encode(writer),
        Request::GetData(r) => r.encode(writer),
        Request::SetData(r) => r.encode(writer),
        Request::GetAcl(r) => r.encode(writer),
        Request::SetAcl(r) => r.encode(writer),
        Request::GetChildren(r) => r.encode(writer),
        Request::GetChildren2(r) => r.encode(writer),
        Request::Sync(r) => r.encode(writer),
        Request::Check(r) => r.encode(writer),
        Request::Reconfig(r) => r.encode(writer),
        Request::CheckWatches(r) => r.encode(writer),
        Request::RemoveWatches(r) => r.encode(writer),
        Request::DeleteContainer(path) => writer.write_string(path),
        Request::Auth(r) => r.encode(writer),
        Request::Sasl(r) => r.encode(writer),
        Request::GetEphemerals(r) => r.encode(writer),
        Request::GetAllChildrenNumber(r) => r.encode(writer),
        Request::AddWatch(r) => r.encode(writer),
        Request::SetWatches(r) => {
            if op_type == OpCode::SetWatches as i32 {
                assert!(
                    r.persistent_watches.is_empty() && r.persistent_recursive_watches.is_empty()
                );
                SetWatches {
                    relative_zxid: r.relative_zxid,
                    data_watches: r.data_watches.clone(),
                    exist_watches: r.exist_watches.clone(),
                    child_watches: r.child_watches.clone(),
                }
                .encode(writer)
            } else {
                r.encode(writer)
            }
        }
        Request::Multi(ops) | Request::MultiRead(ops) => {
            for op in ops {
                // Every client writes err -1 in a request's MultiHeader (MultiOperationRecord).
                MultiHeader {
                    op_type: op.op_code() as i32,
                    done: false,
                    err: -1,
                }
                .encode(writer);
                encode_request(op.op_code() as i32, op, writer);
            }
            MULTI_DONE.encode(writer);
        }
        Request::Ping | Request::WhoAmI | Request::CloseSession => {}
    }
}

/// `reencoded` equals `captured`, except that where the capture holds a null length (-1) the
/// re-encoding may hold 0: the codec reads a null ustring or vector as empty, by design.
/// Returns how many such substitutions were needed.
fn equal_up_to_null_lengths(captured: &[u8], reencoded: &[u8]) -> Result<usize, String> {
    if captured.len() != reencoded.len() {
        return Err(format!(
            "length {} re-encoded as {}",
            captured.len(),
            reencoded.len()
        ));
    }
    let mut substitutions = 0;
    let mut i = 0;
    while i < captured.len() {
        if captured[i] == reencoded[i] {
            i += 1;
        } else if captured[i..].starts_with(&[0xff; 4]) && reencoded[i..].starts_with(&[0; 4]) {
            substitutions += 1;
            i += 4;
        } else {
            return Err(format!(
                "byte {i} differs: captured {:02x}, re-encoded {:02x}",
                captured[i], reencoded[i]
            ));
        }
    }
    Ok(substitutions)
}

// ---------------------------------------------------------------------------------------
// Walking a conversation

/// What a client frame asked, remembered under its xid until the reply comes.
#[derive(Debug, Clone)]
enum Pending {
    Known(OpCode, Request),
    /// An opcode ZooKeeper does not define (the unknown-opcode scenario).
    Unknown(i32),
}

#[derive(Debug, Clone)]
enum Event {
    Connect(ConnectRequest),
    Connected(ConnectResponse),
    Request {
        header: RequestHeader,
        request: Option<Request>,
    },
    Reply {
        header: ReplyHeader,
        /// The request answered; None for notifications.
        answers: Option<Pending>,
        body: Body,
    },
}

struct Decoded {
    events: Vec<Event>,
    null_length_substitutions: usize,
}

fn decode_conversation(conversation: &Conversation) -> Result<Decoded, String> {
    let name = &conversation.name;
    let mut events = Vec::new();
    let mut pending: HashMap<i32, Pending> = HashMap::new();
    let mut seen_connect = false;
    let mut seen_connected = false;
    let mut null_length_substitutions = 0;
    for frame in &conversation.frames {
        let at = format!("{name}:{}", frame.line);
        match frame.direction {
            Direction::Client if !seen_connect => {
                seen_connect = true;
                let connect = ConnectRequest::from_bytes(&frame.body)
                    .map_err(|e| format!("{at}: ConnectRequest: {e}"))?;
                if connect.to_bytes() != frame.body {
                    return Err(format!("{at}: ConnectRequest does not re-encode exactly"));
                }
                events.push(Event::Connect(connect));
            }
            Direction::Server if !seen_connected => {
                if !seen_connect {
                    return Err(format!("{at}: server spoke before the ConnectRequest"));
                }
                seen_connected = true;
                let response = ConnectResponse::from_bytes(&frame.body)
                    .map_err(|e| format!("{at}: ConnectResponse: {e}"))?;
                if response.to_bytes() != frame.body {
                    return Err(format!("{at}: ConnectResponse does not re-encode exactly"));
                }
                events.push(Event::Connected(response));
            }
            Direction::Client => {
                let mut reader = Reader::new(&frame.body);
                let header = RequestHeader::decode(&mut reader)
                    .map_err(|e| format!("{at}: RequestHeader: {e}"))?;
                let decoded = Request::decode(header.op_type, &mut reader);
                let request = match decoded {
                    Ok(request) => {
                        reader
                            .finish()
                            .map_err(|e| format!("{at}: {:?} request: {e}", header))?;
                        let mut writer = Writer::new();
                        header.encode(&mut writer);
                        encode_request(header.op_type, &request, &mut writer);
                        null_length_substitutions +=
                            equal_up_to_null_lengths(&frame.body, &writer.into_bytes())
                                .map_err(|e| format!("{at}: request does not re-encode: {e}"))?;
                        let op = OpCode::from_i32(header.op_type).expect("decoded, so known");
                        pending.insert(header.xid, Pending::Known(op, request.clone()));
                        Some(request)
                    }
                    Err(RequestError::UnknownOpCode(op_type)) => {
                        pending.insert(header.xid, Pending::Unknown(op_type));
                        None
                    }
                    Err(error) => return Err(format!("{at}: {header:?}: {error:?}")),
                };
                events.push(Event::Request { header, request });
            }
            Direction::Server => {
                let mut reader = Reader::new(&frame.body);
                let header = ReplyHeader::decode(&mut reader)
                    .map_err(|e| format!("{at}: ReplyHeader: {e}"))?;
                let (answers, body) = if header.xid == -1 {
                    let event = WatcherEvent::decode(&mut reader)
                        .map_err(|e| format!("{at}: WatcherEvent: {e}"))?;
                    (None, Body::Notification(event))
                } else {
                    let asked = pending.remove(&header.xid).ok_or_else(|| {
                        format!("{at}: reply to xid {} that no request carried", header.xid)
                    })?;
                    let body = match (&asked, header.err) {
                        (Pending::Known(op, _), 0) => decode_success_body(*op, &mut reader)
                            .map_err(|e| format!("{at}: {op:?} reply: {e}"))?,
                        // Every error reply in the captures is a bare ReplyHeader; a failed
                        // multi is not an error reply (its err is 0, see the facts below).
                        _ => Body::Empty,
                    };
                    (Some(asked), body)
                };
                reader
                    .finish()
                    .map_err(|e| format!("{at}: reply {header:?} answering {answers:?}: {e}"))?;
                let mut writer = Writer::new();
                header.encode(&mut writer);
                body.encode(&mut writer);
                if writer.into_bytes() != frame.body {
                    return Err(format!("{at}: reply {header:?} does not re-encode exactly"));
                }
                events.push(Event::Reply {
                    header,
                    answers,
                    body,
                });
            }
        }
    }
    if !seen_connect || !seen_connected {
        return Err(format!("{name}: no connect handshake"));
    }
    Ok(Decoded {
        events,
        null_length_substitutions,
    })
}

fn decode_all() -> Vec<(Conversation, Decoded)> {
    let mut failures = Vec::new();
    let mut decoded = Vec::new();
    for conversation in all_conversations() {
        match decode_conversation(&conversation) {
            Ok(result) => decoded.push((conversation, result)),
            Err(error) => failures.push(error),
        }
    }
    assert!(
        failures.is_empty(),
        "golden frames that do not decode:\n{}",
        failures.join("\n")
    );
    decoded
}

/// Replies in every conversation, with the request they answer.
fn replies(decoded: &[(Conversation, Decoded)]) -> Vec<(&str, &ReplyHeader, &Pending, &Body)> {
    let mut out = Vec::new();
    for (conversation, result) in decoded {
        for event in &result.events {
            if let Event::Reply {
                header,
                answers: Some(asked),
                body,
            } = event
            {
                out.push((conversation.name.as_str(), header, asked, body));
            }
        }
    }
    out
}

fn op_of(asked: &Pending) -> Option<OpCode> {
    match asked {
        Pending::Known(op, _) => Some(*op),
        Pending::Unknown(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Tests: every frame decodes and re-encodes

#[test]
fn every_golden_frame_decodes_exactly_and_reencodes_to_the_captured_bytes() {
    let decoded = decode_all();
    let frames: usize = decoded.iter().map(|(c, _)| c.frames.len()).sum();
    assert!(frames > 300, "only {frames} frames in the golden files");
    // The null-for-empty-string substitutions come from Kazoo only (its write_string sends
    // -1 for ""); the C and Java clients send what the codec writes back.
    for (conversation, result) in &decoded {
        if !conversation.name.starts_with("kazoo-") {
            assert_eq!(result.null_length_substitutions, 0, "{}", conversation.name);
        }
    }
}

#[test]
fn every_request_is_answered_once_in_xid_order() {
    // ZooKeeper answers a session's requests in the order it sent them (FIFO per session),
    // and a reply never comes without a request.
    for (conversation, result) in decode_all() {
        let mut outstanding: Vec<i32> = Vec::new();
        for event in &result.events {
            match event {
                Event::Request { header, .. } => outstanding.push(header.xid),
                Event::Reply {
                    header,
                    answers: Some(_),
                    ..
                } => {
                    let position = outstanding
                        .iter()
                        .position(|xid| *xid == header.xid)
                        .expect("pending");
                    // Pings (-2) and auth (-4) are answered in order too, but as their own
                    // lanes; ordinary xids must be answered strictly first-in first-out.
                    if header.xid > 0 {
                        let first_ordinary = outstanding.iter().position(|xid| *xid > 0);
                        assert_eq!(
                            Some(position),
                            first_ordinary,
                            "{}: xid {} answered out of order ({outstanding:?})",
                            conversation.name,
                            header.xid
                        );
                    }
                    outstanding.remove(position);
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests: facts the server must reproduce

#[test]
fn connect_response_is_protocol_0_with_the_granted_timeout_a_16_byte_password_and_a_read_only_byte()
{
    for (conversation, result) in decode_all() {
        let Some(Event::Connect(request)) = result.events.first() else {
            panic!(
                "{}: first event is not the ConnectRequest",
                conversation.name
            );
        };
        let Some(Event::Connected(response)) = result
            .events
            .iter()
            .find(|e| matches!(e, Event::Connected(_)))
        else {
            panic!("{}: no ConnectResponse", conversation.name);
        };
        let raw = &conversation
            .frames
            .iter()
            .find(|f| f.direction == Direction::Server)
            .unwrap()
            .body;
        // protocolVersion(4) timeOut(4) sessionId(8) passwd(4+16) readOnly(1) = 37 bytes.
        assert_eq!(raw.len(), 37, "{}", conversation.name);
        assert_eq!(response.protocol_version, 0, "{}", conversation.name);
        assert_eq!(response.passwd.len(), 16, "{}", conversation.name);
        assert!(!response.read_only, "{}", conversation.name);
        assert_ne!(response.session_id, 0, "{}", conversation.name);
        // The client asks 0 for a new session and a zero-filled 16-byte password; it gets
        // its timeout back unchanged when within [2, 20] ticks (tickTime 2000, max 40000).
        assert_eq!(request.protocol_version, 0);
        assert_eq!(
            response.time_out,
            request.time_out.clamp(4000, 40000),
            "{}",
            conversation.name
        );
        if request.session_id == 0 {
            assert_eq!(request.passwd, vec![0; 16], "{}", conversation.name);
            assert_eq!(request.last_zxid_seen, 0, "{}", conversation.name);
        } else {
            // A resumed session: same id and password come back.
            assert_eq!(
                response.session_id, request.session_id,
                "{}",
                conversation.name
            );
            assert_eq!(response.passwd, request.passwd, "{}", conversation.name);
        }
    }
}

#[test]
fn close_session_reply_is_a_bare_header_with_a_fresh_zxid() {
    let decoded = decode_all();
    let mut closes = 0;
    for (conversation, result) in &decoded {
        let mut highest_zxid = 0;
        for event in &result.events {
            if let Event::Reply {
                header,
                answers,
                body,
            } = event
            {
                if matches!(answers, Some(Pending::Known(OpCode::CloseSession, _))) {
                    closes += 1;
                    assert_eq!(header.err, 0, "{}", conversation.name);
                    assert_eq!(*body, Body::Empty, "{}", conversation.name);
                    // closeSession is a transaction: its zxid is new.
                    assert!(
                        header.zxid > highest_zxid,
                        "{}: close zxid {} <= {}",
                        conversation.name,
                        header.zxid,
                        highest_zxid
                    );
                }
                highest_zxid = highest_zxid.max(header.zxid);
            }
        }
    }
    assert!(closes >= 10, "only {closes} closeSession replies captured");
}

#[test]
fn error_replies_are_a_bare_reply_header() {
    let decoded = decode_all();
    let mut errors = 0;
    for (name, header, asked, body) in replies(&decoded) {
        if header.err != 0 {
            errors += 1;
            assert_eq!(*body, Body::Empty, "{name}: {asked:?}");
        }
    }
    assert!(errors >= 20, "only {errors} error replies captured");
}

#[test]
fn reads_carry_the_last_committed_zxid_and_failed_writes_consume_a_new_one() {
    // FinalRequestProcessor answers a read with zks.getZKDatabase().getDataTreeLastProcessedZxid();
    // a write that fails in PrepRequestProcessor still becomes an error transaction (a zxid).
    let decoded = decode_all();
    let (mut reads, mut failed_writes) = (0, 0);
    for (conversation, result) in &decoded {
        let mut last_zxid = 0;
        for event in &result.events {
            let Event::Reply {
                header,
                answers: Some(asked),
                ..
            } = event
            else {
                continue;
            };
            let Some(op) = op_of(asked) else { continue };
            match op {
                OpCode::GetData
                | OpCode::Exists
                | OpCode::GetChildren
                | OpCode::GetChildren2
                | OpCode::GetAcl => {
                    if last_zxid == 0 {
                        continue; // nothing seen yet on this connection to compare with
                    }
                    reads += 1;
                    // Only one session writes at a time in these scenarios.
                    assert_eq!(
                        header.zxid, last_zxid,
                        "{}: {op:?} reply zxid",
                        conversation.name
                    );
                }
                OpCode::Create | OpCode::SetData | OpCode::Delete | OpCode::SetAcl
                    if header.err != 0 && last_zxid > 0 =>
                {
                    // A write rejected by a check in PrepRequestProcessor (BadVersion,
                    // NoNode, NodeExists, NotEmpty, NoAuth, InvalidACL) still gets a zxid.
                    failed_writes += 1;
                    assert_eq!(
                        header.zxid,
                        last_zxid + 1,
                        "{}: failed {op:?} err {}",
                        conversation.name,
                        header.err
                    );
                }
                _ => {}
            }
            if header.zxid > 0 {
                last_zxid = header.zxid;
            }
        }
    }
    assert!(
        reads >= 20 && failed_writes >= 8,
        "reads {reads}, failed writes {failed_writes}"
    );
}

#[test]
fn ping_reply_is_xid_minus_2_with_the_last_zxid_and_no_body() {
    let decoded = decode_all();
    let conversation = decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-ping")
        .expect("kazoo-ping");
    let mut pings = 0;
    let mut last_zxid = None;
    for event in &conversation.1.events {
        match event {
            Event::Request { header, .. } if header.op_type == OpCode::Ping as i32 => {
                assert_eq!(header.xid, -2);
            }
            Event::Reply {
                header,
                body,
                answers,
            } if header.xid == -2 => {
                pings += 1;
                assert!(matches!(
                    answers,
                    Some(Pending::Known(OpCode::Ping, Request::Ping))
                ));
                assert_eq!(header.err, 0);
                assert_eq!(*body, Body::Empty);
                assert!(header.zxid > 0);
                // No transaction happens between pings: the zxid does not move.
                assert!(last_zxid.is_none_or(|z| z == header.zxid));
                last_zxid = Some(header.zxid);
            }
            _ => {}
        }
    }
    assert!(
        pings >= 2,
        "only {pings} pings in a 6 s idle session with a 4 s timeout"
    );
}

#[test]
fn notifications_are_xid_minus_1_zxid_minus_1_and_precede_the_reply_that_caused_them() {
    let decoded = decode_all();
    let conversation = &decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-watches")
        .expect("kazoo-watches");
    let mut notifications = Vec::new();
    for (index, event) in conversation.1.events.iter().enumerate() {
        if let Event::Reply {
            header,
            body: Body::Notification(event),
            ..
        } = event
        {
            assert_eq!((header.xid, header.zxid, header.err), (-1, -1, 0));
            assert_eq!(event.state, KeeperState::SyncConnected as i32);
            // The notification comes before the reply to the write that fired it.
            let next_reply = conversation.1.events[index + 1..]
                .iter()
                .find_map(|e| match e {
                    Event::Reply {
                        answers: Some(asked),
                        ..
                    } => op_of(asked),
                    _ => None,
                })
                .expect("a reply follows");
            assert!(
                matches!(
                    next_reply,
                    OpCode::Create | OpCode::SetData | OpCode::Delete
                ),
                "{next_reply:?}"
            );
            notifications.push((event.event_type, event.path.clone()));
        }
    }
    let created = EventType::NodeCreated as i32;
    let changed = EventType::NodeDataChanged as i32;
    let children = EventType::NodeChildrenChanged as i32;
    let deleted = EventType::NodeDeleted as i32;
    // One-shot watches: exists→NodeCreated, getData→NodeDataChanged,
    // getChildren→NodeChildrenChanged, getData+getChildren on one node→a single NodeDeleted
    // (and the parent's child watch was already used up). Then the persistent watch on /w and
    // the persistent-recursive one on / report every change below them, each once.
    let expected: Vec<(i32, &str)> = vec![
        (created, "/w"),
        (changed, "/w"),
        (children, "/w"),
        (deleted, "/w/child"),
        (created, "/w/p"),
        (children, "/w"),
        (changed, "/w/p"),
        (changed, "/w"),
        (deleted, "/w/p"),
        (children, "/w"),
    ];
    let actual: Vec<(i32, &str)> = notifications
        .iter()
        .map(|(t, p)| (*t, p.as_str()))
        .collect();
    assert_eq!(actual, expected);
    // The exact bytes of the NodeCreated notification for /w.
    let raw = conversation
        .0
        .frames
        .iter()
        .find(|f| f.direction == Direction::Server && f.body.starts_with(&[0xff; 4]))
        .unwrap();
    let mut expected_bytes = Vec::new();
    expected_bytes.extend_from_slice(&(-1i32).to_be_bytes()); // xid
    expected_bytes.extend_from_slice(&(-1i64).to_be_bytes()); // zxid
    expected_bytes.extend_from_slice(&0i32.to_be_bytes()); // err
    expected_bytes.extend_from_slice(&1i32.to_be_bytes()); // NodeCreated
    expected_bytes.extend_from_slice(&3i32.to_be_bytes()); // SyncConnected
    expected_bytes.extend_from_slice(&2i32.to_be_bytes()); // path length
    expected_bytes.extend_from_slice(b"/w");
    assert_eq!(raw.body, expected_bytes);
}

#[test]
fn failed_multi_has_err_0_and_a_zxid_and_reports_each_op() {
    // ZooKeeper 3.8: the ReplyHeader of a failed multi says OK; the results say what failed:
    // ops before the failure ErrorResult(0), the failing op its code, later ops
    // RuntimeInconsistency (-2). The error transaction still consumes a zxid.
    let decoded = decode_all();
    let (conversation, result) = decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-multi")
        .expect("kazoo-multi");
    let multis: Vec<(&ReplyHeader, &Vec<Request>, &Vec<MultiResult>)> = result
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Reply {
                header,
                answers: Some(Pending::Known(OpCode::Multi, Request::Multi(ops))),
                body: Body::Multi(results),
            } => Some((header, ops, results)),
            _ => None,
        })
        .collect();
    // The fifth multi (create2/container/TTL ops) has its own test below.
    assert_eq!(multis.len(), 5, "{}", conversation.name);
    let error_codes = |results: &Vec<MultiResult>| -> Vec<i32> {
        results
            .iter()
            .map(|r| match &r.body {
                Body::Error(e) => e.err,
                _ => 1, // a success result
            })
            .collect()
    };
    for (header, ops, results) in &multis {
        assert_eq!(header.err, 0);
        assert_eq!(ops.len(), results.len());
    }
    // Success: create, create (ephemeral), setData, check, delete.
    let (ok_header, _, ok) = multis[0];
    let types: Vec<i32> = ok.iter().map(|r| r.header.op_type).collect();
    assert_eq!(types, vec![1, 1, 5, 13, 2]);
    assert!(matches!(&ok[0].body, Body::Create(c) if c.path == "/multi/a"));
    assert!(ok_header.zxid > 0);
    // Fails at op 3 (check with a wrong version).
    let (failed_header, _, failed) = multis[1];
    assert_eq!(
        error_codes(failed),
        vec![
            0,
            0,
            ErrorCode::BadVersion.code(),
            ErrorCode::RuntimeInconsistency.code()
        ]
    );
    assert!(failed.iter().all(|r| r.header.op_type == -1));
    assert_eq!(failed_header.zxid, ok_header.zxid + 1);
    // Fails at op 1 (delete of a missing node).
    let (_, _, first_failed) = multis[2];
    assert_eq!(
        error_codes(first_failed),
        vec![
            ErrorCode::NoNode.code(),
            ErrorCode::RuntimeInconsistency.code()
        ]
    );
    // Empty multi: just the done header; it still gets its own zxid.
    let (empty_header, empty_ops, empty) = multis[3];
    assert!(empty_ops.is_empty() && empty.is_empty());
    assert_eq!(empty_header.err, 0);
}

#[test]
fn create2_inside_multi_answers_a_create_result_but_container_and_ttl_answer_create2() {
    // ZooKeeper 3.8 quirk: a create2 op (15) inside multi is answered with a type-1 result
    // (path only), while createContainer (19) and createTTL (21) come back as type 15 with
    // a Stat.
    let decoded = decode_all();
    let (_, result) = decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-multi")
        .expect("kazoo-multi");
    let found = result.events.iter().find_map(|e| match e {
        Event::Reply {
            answers: Some(Pending::Known(OpCode::Multi, Request::Multi(ops))),
            body: Body::Multi(results),
            ..
        } if ops.iter().map(|op| op.op_code()).collect::<Vec<_>>()
            == [OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl] =>
        {
            Some(results.clone())
        }
        _ => None,
    });
    let results = found.expect("the create2/container/TTL multi");
    let types: Vec<i32> = results.iter().map(|r| r.header.op_type).collect();
    assert_eq!(types, vec![1, 15, 15]);
}

#[test]
fn multi_read_answers_each_op_and_failures_do_not_abort_the_rest() {
    let decoded = decode_all();
    let (_, result) = decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-multi")
        .expect("kazoo-multi");
    let (header, results) = result
        .events
        .iter()
        .find_map(|e| match e {
            Event::Reply {
                header,
                answers: Some(Pending::Known(OpCode::MultiRead, _)),
                body: Body::Multi(results),
            } => Some((header, results)),
            _ => None,
        })
        .expect("a multiRead reply");
    assert_eq!(header.err, 0);
    let types: Vec<(i32, i32)> = results
        .iter()
        .map(|r| (r.header.op_type, r.header.err))
        .collect();
    // getData, getChildren on /multi; both on a missing node: NoNode each, no -2 after them.
    assert_eq!(types, vec![(4, 0), (8, 0), (-1, -101), (-1, -101)]);
}

#[test]
fn failed_auth_is_a_bare_auth_failed_reply_then_the_server_closes() {
    // ZooKeeperServer.processPacket: ReplyHeader(xid -4, zxid 0, AUTHFAILED) and the
    // connection is closed; no WatcherEvent(AuthFailed) is sent.
    let conversations = all_conversations();
    let conversation = conversations
        .iter()
        .find(|c| c.name == "kazoo-auth-failed")
        .expect("kazoo-auth-failed");
    let decoded = decode_conversation(conversation).expect("decodes");
    let last_reply = decoded.events.iter().rev().find_map(|e| match e {
        Event::Reply { header, body, .. } => Some((header.clone(), body.clone())),
        _ => None,
    });
    let (header, body) = last_reply.expect("a reply");
    assert_eq!(
        (header.xid, header.zxid, header.err),
        (-4, 0, ErrorCode::AuthFailed.code())
    );
    assert_eq!(body, Body::Empty);
    assert!(conversation
        .comments
        .iter()
        .any(|c| c == "server closed the connection first"));
    assert!(!decoded.events.iter().any(|e| matches!(
        e,
        Event::Reply {
            body: Body::Notification(_),
            ..
        }
    )));
}

#[test]
fn successful_auth_reply_is_xid_minus_4_zxid_0() {
    let decoded = decode_all();
    let mut auths = 0;
    for (name, header, asked, body) in replies(&decoded) {
        if matches!(asked, Pending::Known(OpCode::Auth, _)) && header.err == 0 {
            auths += 1;
            assert_eq!((header.xid, header.zxid), (-4, 0), "{name}");
            assert_eq!(*body, Body::Empty);
        }
    }
    assert!(auths >= 3, "only {auths} successful addauth replies");
}

#[test]
fn unknown_opcode_is_answered_unimplemented_with_zxid_minus_1_then_closed() {
    let conversations = all_conversations();
    let conversation = conversations
        .iter()
        .find(|c| c.name == "kazoo-unknown-opcode")
        .expect("kazoo-unknown-opcode");
    let decoded = decode_conversation(conversation).expect("decodes");
    let reply = decoded.events.iter().find_map(|e| match e {
        Event::Reply {
            header,
            answers: Some(Pending::Unknown(10)),
            body,
        } => Some((header.clone(), body.clone())),
        _ => None,
    });
    let (header, body) = reply.expect("the reply to opcode 10");
    assert_eq!(
        (header.zxid, header.err),
        (-1, ErrorCode::Unimplemented.code())
    );
    assert_eq!(body, Body::Empty);
    assert!(conversation
        .comments
        .iter()
        .any(|c| c == "server closed the connection first"));
}

#[test]
fn null_data_and_empty_data_stay_distinct_on_the_wire() {
    // CreateRequest.data of length -1 is stored as null: getData answers -1, not 0; the
    // Stat's dataLength is 0 either way.
    let decoded = decode_all();
    let mut null_creates = 0;
    let mut null_reads = 0;
    for (_, result) in &decoded {
        for event in &result.events {
            match event {
                Event::Request {
                    request: Some(Request::Create(create)),
                    ..
                } if create.data.is_none() => null_creates += 1,
                Event::Reply {
                    body: Body::GetData(response),
                    ..
                } if response.data.is_none() => {
                    null_reads += 1;
                    assert_eq!(response.stat.data_length, 0);
                }
                _ => {}
            }
        }
    }
    assert!(null_creates >= 1, "no create with null data captured");
    assert!(null_reads >= 1, "no getData answered with null data");
}

#[test]
fn add_watch_answers_error_response_zero_and_sync_echoes_the_path() {
    let decoded = decode_all();
    let (mut add_watches, mut syncs) = (0, 0);
    for (name, header, asked, body) in replies(&decoded) {
        match asked {
            Pending::Known(OpCode::AddWatch, _) if header.err == 0 => {
                add_watches += 1;
                assert_eq!(*body, Body::Error(ErrorResponse { err: 0 }), "{name}");
            }
            Pending::Known(OpCode::Sync, Request::Sync(request)) if header.err == 0 => {
                syncs += 1;
                assert_eq!(
                    *body,
                    Body::Sync(SyncResponse {
                        path: request.path.clone()
                    }),
                    "{name}"
                );
            }
            _ => {}
        }
    }
    assert!(
        add_watches >= 2 && syncs >= 2,
        "addWatch {add_watches}, sync {syncs}"
    );
}

#[test]
fn who_am_i_lists_the_ip_identity_then_added_digest_ids() {
    let decoded = decode_all();
    let (_, result) = decoded
        .iter()
        .find(|(c, _)| c.name == "kazoo-extras")
        .expect("kazoo-extras");
    let answers: Vec<Vec<(String, String)>> = result
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Reply {
                body: Body::WhoAmI(who),
                ..
            } => Some(
                who.client_info
                    .iter()
                    .map(|i| (i.auth_scheme.clone(), i.user.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], vec![("ip".to_owned(), "127.0.0.1".to_owned())]);
    assert!(
        answers[1].contains(&("digest".to_owned(), "carol".to_owned())),
        "{:?}",
        answers[1]
    );
}
