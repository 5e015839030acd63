//! [pure] The bodies of the fuzz targets: one function per decoder of untrusted bytes, taking
//! the raw input and checking, besides "never panics", the invariants the decoder promises
//! (decode → encode → decode gives the same value, lengths stay within the input, scans report
//! offsets inside the file).
//!
//! They live in the library, not in `fuzz/`, so that `tests/fuzz_smoke.rs` runs every one of
//! them over its seed corpus and deterministic mutations on stable Rust in the default suite,
//! while `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz, nightly, libFuzzer) only forwards to them.
//! A panic here is a bug in the decoder (or a broken invariant), never in the input: every
//! input must be answered with an error value.
//!
//! Nothing here touches the network, files, DNS or the clock (`zoo_cfg` parses with
//! `Config::parse_without_io`), so a campaign runs at memory speed and is deterministic.

use std::collections::BTreeMap;

use crate::jute::codec::{Reader, Record, Writer};
use crate::jute::frame::FrameDecoder;
use crate::jute::records::*;
use crate::jute::request::Request;

/// A target's body: any bytes in, a panic only for a bug.
pub type TargetBody = fn(&[u8]);

/// Every target, by the name its cargo-fuzz target, seed directory and campaign use.
pub const TARGETS: &[(&str, TargetBody)] = &[
    ("client_frames", client_frames),
    ("connect_request", connect_request),
    ("jute_records", jute_records),
    ("request", request),
    ("quorum_wire", quorum_wire),
    ("zookeeper_quorum", zookeeper_quorum),
    ("txn", txn),
    ("log_segment", log_segment),
    ("log_records", log_records),
    ("snapshot", snapshot),
    ("zoo_cfg", zoo_cfg),
    ("jaas", jaas),
    ("java_properties", java_properties),
    ("four_letter_word", four_letter_word),
    ("admin_request", admin_request),
    ("admin_http", admin_http),
    ("digest_md5", digest_md5),
    ("der_x509", der_x509),
    ("key_store", key_store),
    ("kerberos_name", kerberos_name),
];

/// The target body called `name`.
pub fn target(name: &str) -> Option<TargetBody> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, body)| *body)
}

/// Inputs above this are cut: larger ones only slow a campaign down without reaching new
/// code (the decoders bound their work by the input length anyway).
const INPUT_BYTES_MAX: usize = 1 << 20;

fn bounded(data: &[u8]) -> &[u8] {
    &data[..data.len().min(INPUT_BYTES_MAX)]
}

/// `record` decoded from `bytes` must encode to bytes that decode to the same record, and
/// re-encoding that gives the same bytes (jute reads a null string or buffer as empty, so the
/// first encoding may differ from the input; after one round it is a fixed point).
fn record_round_trip<R: Record + PartialEq + std::fmt::Debug>(record: &R) {
    let encoded = record.to_bytes();
    let again = R::from_bytes(&encoded)
        .unwrap_or_else(|error| panic!("{record:?} encodes to undecodable bytes: {error}"));
    assert_eq!(&again, record, "decode(encode(x)) != x");
    assert_eq!(again.to_bytes(), encoded, "encode is not a fixed point");
}

/// Decodes `bytes` as `R` (the whole slice) and checks the round trip when it decodes.
fn record_case<R: Record + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let mut reader = Reader::new(bytes);
    if let Ok(record) = R::decode(&mut reader) {
        assert!(reader.offset() <= bytes.len());
        record_round_trip(&record);
    }
    if let Ok(record) = R::from_bytes(bytes) {
        record_round_trip(&record);
    }
}

/// The request body after a header of type `op_type`, as the connection decodes it.
fn request_case(op_type: i32, body: &[u8]) {
    let mut reader = Reader::new(body);
    let Ok(request) = Request::decode(op_type, &mut reader) else {
        return;
    };
    assert!(reader.offset() <= body.len());
    let mut writer = Writer::new();
    request.encode(&mut writer);
    let encoded = writer.into_bytes();
    let mut again_reader = Reader::new(&encoded);
    let again = Request::decode(request.op_type(), &mut again_reader)
        .unwrap_or_else(|error| panic!("{request:?} encodes to undecodable bytes: {error:?}"));
    assert_eq!(again_reader.remaining(), 0, "{request:?}: trailing bytes");
    assert_eq!(again, request, "decode(encode(request)) != request");
    // What the request reports about itself must not panic either.
    let _ = (request.path(), request.is_write(), request.op_code());
}

/// A client's byte stream, split into reads at the sizes the first byte picks: frames (bounded
/// by jute.maxbuffer), the ConnectRequest first, then RequestHeader + request bodies, as
/// `net::conn` reads them.
pub fn client_frames(data: &[u8]) {
    let data = bounded(data);
    let Some((&chunking, stream)) = data.split_first() else {
        return;
    };
    // A small frame limit, so the limit check is reached without megabyte inputs.
    let max_frame_bytes = if chunking & 0x80 != 0 { 64 } else { 4096 };
    let chunk_bytes = usize::from(chunking & 0x7f) + 1;
    let mut decoder = FrameDecoder::new(max_frame_bytes);
    let mut first = true;
    let mut consumed = 0usize;
    let mut received = 0usize;
    for chunk in stream.chunks(chunk_bytes) {
        decoder.extend(chunk);
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame.to_vec(),
                Ok(None) => break,
                // The connection is closed with this reason.
                Err(_) => return,
            };
            assert!(frame.len() <= max_frame_bytes, "frame above the limit");
            consumed += 4 + frame.len();
            if first {
                first = false;
                connect_case(&frame);
                continue;
            }
            let mut reader = Reader::new(&frame);
            let Ok(header) = RequestHeader::decode(&mut reader) else {
                continue;
            };
            request_case(header.op_type, &frame[reader.offset()..]);
        }
        received += chunk.len();
        // Every byte received is either in a returned frame or still buffered.
        assert_eq!(decoder.buffered() + consumed, received);
    }
}

fn connect_case(frame: &[u8]) {
    if let Ok((request, read_only_flag)) = crate::net::conn::decode_connect(frame) {
        record_round_trip(&request);
        // The frame without the readOnly byte is the one the old client sent.
        let encoded = request.to_bytes();
        if read_only_flag {
            assert_eq!(encoded.len(), frame.len());
        } else {
            assert_eq!(encoded.len(), frame.len() + 1);
        }
    }
}

/// The first frame of a connection: ConnectRequest, with or without the readOnly byte; also
/// the ConnectResponse a client decodes (ringkeeper's own tools read it).
pub fn connect_request(data: &[u8]) {
    let data = bounded(data);
    connect_case(data);
    record_case::<ConnectResponse>(data);
}

/// Every record of zookeeper.jute: the first byte picks one, the rest is its encoding.
pub fn jute_records(data: &[u8]) {
    let data = bounded(data);
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    macro_rules! pick {
        ($($record:ty),* $(,)?) => {{
            let cases: &[fn(&[u8])] = &[$(record_case::<$record>),*];
            cases[usize::from(selector) % cases.len()](bytes)
        }};
    }
    pick!(
        Id,
        Acl,
        Stat,
        ClientInfo,
        ConnectRequest,
        ConnectResponse,
        SetWatches,
        SetWatches2,
        RequestHeader,
        MultiHeader,
        AuthPacket,
        ReplyHeader,
        GetDataRequest,
        SetDataRequest,
        ReconfigRequest,
        SetDataResponse,
        GetSaslRequest,
        SetSaslRequest,
        SetSaslResponse,
        CreateRequest,
        CreateTtlRequest,
        DeleteRequest,
        GetChildrenRequest,
        GetAllChildrenNumberRequest,
        GetChildren2Request,
        CheckVersionRequest,
        SyncRequest,
        SyncResponse,
        GetAclRequest,
        SetAclRequest,
        SetAclResponse,
        AddWatchRequest,
        WatcherEvent,
        ErrorResponse,
        CreateResponse,
        Create2Response,
        ExistsRequest,
        ExistsResponse,
        GetDataResponse,
        GetChildrenResponse,
        GetAllChildrenNumberResponse,
        GetChildren2Response,
        GetAclResponse,
        CheckWatchesRequest,
        RemoveWatchesRequest,
        GetEphemeralsRequest,
        GetEphemeralsResponse,
        WhoAmIResponse,
    );
}

/// One request frame as the connection decodes it: RequestHeader, then the body of its type.
pub fn request(data: &[u8]) {
    let data = bounded(data);
    let mut reader = Reader::new(data);
    let Ok(header) = RequestHeader::decode(&mut reader) else {
        return;
    };
    record_round_trip(&header);
    request_case(header.op_type, &data[reader.offset()..]);
}

/// A quorum message body (`quorum::wire`): decoding is total; what decodes encodes to a body
/// that decodes to the same message, and is no longer than the input (every length in the
/// body was checked against the input).
pub fn quorum_wire(data: &[u8]) {
    use crate::quorum::wire;
    let data = bounded(data);
    let Ok(message) = wire::decode(data) else {
        return;
    };
    let mut encoded = Vec::new();
    wire::encode(&message, &mut encoded);
    let again = wire::decode(&encoded)
        .unwrap_or_else(|error| panic!("{message:?} encodes to an undecodable body: {error}"));
    assert_eq!(again, message, "decode(encode(message)) != message");
    let mut twice = Vec::new();
    wire::encode(&again, &mut twice);
    assert_eq!(twice, encoded, "encode is not a fixed point");
}

/// Apache ZooKeeper's server-to-server bytes (`quorum::zookeeper`); the first byte picks what
/// the rest is: 0 a QuorumPacket, 1 an election initial message, 2 a notification, 3 the
/// snapshot stream after SNAP, 4 a leader's side of a learner conversation (packets in a row,
/// fed to the translator after a FOLLOWERINFO).
pub fn zookeeper_quorum(data: &[u8]) {
    use crate::quorum::zookeeper::{snapstream, translate, wire};
    let data = bounded(data);
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(Some((packet, used))) = wire::QuorumPacket::decode(body) {
                assert_eq!(
                    packet.encode(),
                    &body[..used],
                    "decode then encode changed bytes"
                );
                let streamed = wire::read_packet(&mut &body[..]).unwrap_or_else(|error| {
                    panic!("the stream reader refused {packet:?}: {error}")
                });
                assert_eq!(streamed, packet);
                if let Some(data) = &packet.data {
                    let _ = crate::quorum::zookeeper::txn::record_of(data);
                    let _ = wire::LearnerInfo::decode(data);
                    let _ = wire::LearnerRequest::decode(data);
                    let _ = wire::decode_touches(data);
                    let _ = wire::decode_revalidated(data);
                }
            } else {
                assert!(wire::read_packet(&mut &body[..]).is_err());
            }
        }
        1 => {
            if let Ok(Some((message, used))) = wire::InitialMessage::decode(body) {
                assert_eq!(
                    message.encode(),
                    &body[..used],
                    "initial message round trip"
                );
            }
        }
        2 => {
            if let Ok(notification) = wire::ZkNotification::decode(body) {
                // FastLeaderElection ignores the version of a 40-byte message, so a version
                // of at most 1 (written without the config) reads back as 0: after one
                // round trip the encoding is a fixed point.
                let once = wire::ZkNotification::decode(&notification.encode())
                    .unwrap_or_else(|error| panic!("{notification:?} re-encodes badly: {error}"));
                let twice = wire::ZkNotification::decode(&once.encode())
                    .unwrap_or_else(|error| panic!("{once:?} re-encodes badly: {error}"));
                assert_eq!(twice, once);
                if notification.version > 1 {
                    assert_eq!(once, notification);
                }
                let _ = notification.to_zab();
            }
        }
        3 => {
            let _ = snapstream::read_snapshot_stream(&mut &body[..], 0);
        }
        _ => {
            use crate::quorum::Wire;
            use crate::zab::{Message, Packet};
            let mut translator = translate::Translator::new(4, true, Vec::new(), 0, 30_000);
            let mut out = Vec::new();
            let info = Wire::Zab(Message::Link {
                conn: 1,
                seq: 0,
                packet: Packet::FollowerInfo {
                    accepted_epoch: 0,
                    observer: true,
                },
            });
            translator.outbound(3, &info, &mut out);
            let mut rest = body;
            while let Ok(Some((packet, used))) = wire::QuorumPacket::decode(rest) {
                rest = &rest[used..];
                let snapshot = (packet.kind == wire::kind::SNAP).then(Vec::new);
                translator.inbound(1, packet, snapshot, &mut out);
                if translator.leader().is_none() {
                    break;
                }
            }
        }
    }
}

/// One transaction as the log and the quorum wire store it (`txnlog::format::decode_txn`).
pub fn txn(data: &[u8]) {
    use crate::txnlog::format::{decode_txn, encode_txn};
    let data = bounded(data);
    let mut reader = Reader::new(data);
    let Ok(txn) = decode_txn(&mut reader) else {
        return;
    };
    assert!(reader.offset() <= data.len());
    let mut writer = Writer::new();
    encode_txn(&mut writer, &txn);
    let encoded = writer.into_bytes();
    let mut again_reader = Reader::new(&encoded);
    let again = decode_txn(&mut again_reader)
        .unwrap_or_else(|error| panic!("{txn:?} encodes to undecodable bytes: {error}"));
    assert_eq!(again_reader.remaining(), 0);
    assert_eq!(again, txn, "decode(encode(txn)) != txn");
}

/// The invariants of a scan of `bytes`: offsets inside the file and block-aligned, batches in
/// order, records in zxid order, and re-encoding the kept records gives a segment that scans
/// to the same records.
fn check_scan(bytes: &[u8], scan: &crate::txnlog::format::Scan) {
    use crate::txnlog::format::{Ending, BLOCK_BYTES};
    assert!(scan.valid_end <= bytes.len(), "valid_end past the file");
    assert!(
        scan.valid_end == bytes.len() || scan.valid_end.is_multiple_of(BLOCK_BYTES),
        "valid_end {} is not block-aligned",
        scan.valid_end
    );
    if let Ending::TornTail { at, .. } = &scan.ending {
        assert!(*at >= scan.valid_end.min(*at));
    }
    for pair in scan.records.windows(2) {
        assert!(pair[0].zxid < pair[1].zxid, "records out of zxid order");
    }
    for pair in scan.batches.windows(2) {
        assert!(pair[0].number < pair[1].number, "batches out of order");
        assert!(pair[0].start < pair[1].start);
        assert!(pair[0].first_record <= pair[1].first_record);
    }
    for batch in &scan.batches {
        assert!(batch.start < scan.valid_end.max(1) + BLOCK_BYTES);
        assert!(batch.start.is_multiple_of(BLOCK_BYTES));
        assert!(batch.first_record <= scan.records.len());
    }
    if let (Some((first, last)), Some(record)) = (scan.skipped, scan.records.first()) {
        assert!(
            first <= last && last < record.zxid,
            "skipped records follow kept ones"
        );
    }
}

/// A log segment as found on disk (`txnlog::format::scan_segment`, and `scan_segment_after`
/// with a zxid taken from the input, as recovery calls it).
pub fn log_segment(data: &[u8]) {
    use crate::txnlog::format::{scan_segment, scan_segment_after};
    let data = bounded(data);
    if let Ok(scan) = scan_segment(data) {
        check_scan(data, &scan);
        // Every kept record is above i64::MIN, so scanning after the first kept zxid keeps
        // exactly the ones after it.
        if let Some(first) = scan.records.first() {
            let after = scan_segment_after(data, first.zxid)
                .unwrap_or_else(|error| panic!("scan_after fails where scan did not: {error}"));
            check_scan(data, &after);
            assert_eq!(after.valid_end, scan.valid_end);
            assert_eq!(after.batches.len(), scan.batches.len());
            assert_eq!(after.records.as_slice(), &scan.records[1..]);
        }
    }
}

/// A log segment whose records carry valid checksums: the input is the segment after its
/// header block, and every record met walking it as the scanner does gets its CRC-32C set, so
/// the fuzzer reaches batch ordering, torn tails and payload decoding instead of stopping at
/// checksum mismatches.
pub fn log_records(data: &[u8]) {
    use crate::txnlog::format::{
        encode_segment_header, BLOCK_BYTES, PAYLOAD_BYTES_MAX, RECORD_HEADER_BYTES,
    };
    let data = bounded(data);
    let mut segment = encode_segment_header(1, 0).to_vec();
    segment.resize(BLOCK_BYTES, 0);
    segment.extend_from_slice(data);
    let be_u32 = |bytes: &[u8], at: usize| {
        bytes
            .get(at..at + 4)
            .map(|slice| u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
    };
    let mut position = BLOCK_BYTES;
    while let Some(length) = be_u32(&segment, position) {
        let length = length as usize;
        if length == 0 {
            position = (position + 1).div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
            continue;
        }
        if length > PAYLOAD_BYTES_MAX {
            break;
        }
        let end = position + RECORD_HEADER_BYTES + length;
        if end > segment.len() {
            break;
        }
        let checksum = crc32c::crc32c(&segment[position + 8..end]);
        segment[position + 4..position + 8].copy_from_slice(&checksum.to_be_bytes());
        // The flags word's bit 0 ends a batch; the next batch starts at the next block.
        let last_in_batch = be_u32(&segment, position + 32).is_some_and(|flags| flags & 1 != 0);
        position = end;
        if last_in_batch {
            position = position.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        }
    }
    log_segment(&segment);
}

/// A snapshot file (`snapshot::format::validate`): the first byte chooses between the raw
/// input (header checks) and the input as a body under a header with the right length and
/// checksums (rkyv's validation and `check_structure`); a body that validates is then walked
/// entirely, which must not panic: every node's path looks up to that node.
pub fn snapshot(data: &[u8]) {
    use crate::snapshot::format::{decode_acls, validate, Header, SnapshotView, HEADER_BYTES};
    let data = bounded(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = rkyv::util::AlignedVec::<16>::new();
    if mode & 1 == 0 {
        file.extend_from_slice(rest);
    } else {
        let header = Header {
            zxid: 7,
            // The node count is checked against the archive; take it from the input so both
            // outcomes are reached.
            node_count: u64::from(mode >> 1),
            body_bytes: rest.len() as u64,
            body_checksum: crc32c::crc32c(rest),
            tree_digest: None,
        };
        file.extend_from_slice(&header.encode());
        file.extend_from_slice(rest);
    }
    let Ok((header, body)) = validate(&file) else {
        return;
    };
    assert_eq!(header.body_bytes as usize, file.len() - HEADER_BYTES);
    let acls = decode_acls(body);
    let view = SnapshotView { body, acls: &acls };
    let count = view.node_count();
    assert_eq!(count as u64, header.node_count);
    for index in 0..count as u32 {
        let Some(path) = view.path_of(index) else {
            panic!("validated node {index} has no path");
        };
        assert_eq!(
            view.lookup(&path),
            Some(index),
            "path {path:?} looks up elsewhere"
        );
        assert!(view.node(index).is_some());
        let names: Vec<&str> = view.child_names(index).collect();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]));
        let _ = view.first_child(index);
    }
    assert_eq!(view.iter().count(), count);
    let _ = (view.sessions(), view.special_nodes(), view.data_size());
}

/// zoo.cfg text (`Config::parse_without_io`: no myid file, no DNS). The first byte picks the
/// myid: none, or 1-9.
pub fn zoo_cfg(data: &[u8]) {
    let data = bounded(data);
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let myid = match selector % 10 {
        0 => None,
        digit => Some(digit.to_string()),
    };
    if let Ok(config) = crate::config::Config::parse_without_io(text, myid.as_deref()) {
        // What the server derives from a parsed configuration must not panic either.
        let _ = config.negotiate_timeout(i32::MAX);
        let _ = config.negotiate_timeout(i32::MIN);
        let _ = config.four_letter_word_enabled("ruok");
        let _ = config.admin_address();
        let _ = config.metrics_address();
        if let Some(quorum) = &config.quorum {
            assert!(quorum.me().is_some(), "a quorum config without this server");
            let _ = quorum.zab_config(config.tick_time_ms as u64);
        }
    }
}

/// A JAAS login configuration file, with `${...}` naming two known properties.
pub fn jaas(data: &[u8]) {
    let data = bounded(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut properties = BTreeMap::new();
    properties.insert("user.home".to_string(), "/home/zk".to_string());
    properties.insert("zookeeper.x".to_string(), "${user.home}".to_string());
    if let Ok(config) = crate::auth::jaas::parse(text, &properties) {
        for name in ["Server", "Client", "QuorumServer", "QuorumLearner"] {
            if let Some(entries) = config.section(name) {
                for entry in entries {
                    let _ = entry.option("user_super");
                }
            }
        }
    }
}

/// The Java system properties a start gathers: `-D` words of JVM flags (shell words with
/// quotes and escapes), `conf/java.env` assignments, and their merge with zoo.cfg keys
/// (`auth::properties::system_properties`). The input is split at NUL bytes into the three
/// sources.
pub fn java_properties(data: &[u8]) {
    use crate::config::tls::{jvm_system_properties, system_properties};
    let data = bounded(data);
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let java_env = parts.next();
    let server_flags = parts.next();
    let flags = parts.next();
    let from_flags = system_properties(server_flags.unwrap_or(""));
    for (name, _) in &from_flags {
        assert!(!name.is_empty(), "a -D option without a name");
    }
    let jvm = jvm_system_properties(java_env, server_flags, flags);
    let mut zoo_cfg = BTreeMap::new();
    for (key, value) in &jvm {
        zoo_cfg.insert(key.clone(), value.clone());
    }
    let merged = crate::auth::properties::system_properties(&jvm, &zoo_cfg);
    assert!(merged.len() <= jvm.len() * 2);
    for key in merged.keys() {
        let _ = crate::auth::properties::is_security_key(key);
        let _ = crate::config::tls::is_server_property(key);
    }
}

/// The first bytes of a client connection: a four-letter word, a TLS handshake, or a frame
/// length (`fourlw::classify_first_bytes`), then framing as the connection goes on.
pub fn four_letter_word(data: &[u8]) {
    use crate::fourlw::{classify_first_bytes, FirstBytes, FOUR_LETTER_WORDS};
    let data = bounded(data);
    match classify_first_bytes(data) {
        FirstBytes::Word(word) => {
            assert!(FOUR_LETTER_WORDS.contains(&word));
            assert_eq!(word.as_bytes(), &data[..4]);
        }
        FirstBytes::TlsHandshake => assert!(data.len() >= 2 && data[0] == 0x16),
        FirstBytes::Frame => {
            let mut decoder = FrameDecoder::new(crate::jute::frame::DEFAULT_MAX_FRAME_BYTES);
            decoder.extend(data);
            while let Ok(Some(_)) = decoder.next_frame() {}
            assert!(decoder.buffered() <= data.len());
        }
    }
}

/// An AdminServer request line and Authorization header: URL routing under a command URL,
/// the command lookup, and the header's scheme/credential split with its digest. The input is
/// `url \n authorization`.
pub fn admin_request(data: &[u8]) {
    use crate::admin::commands::{
        authorization_parts, command_primary_name, query_value, route, AdminPath,
    };
    let data = bounded(data);
    let text = String::from_utf8_lossy(data);
    let (url, authorization) = text.split_once('\n').unwrap_or((&text, ""));
    for command_url in ["/commands", ""] {
        match route(command_url, url) {
            AdminPath::Command(name) => {
                assert!(url.starts_with(&format!("{command_url}/")));
                assert!(!name.contains('?'));
                if let Some(primary) = command_primary_name(name) {
                    assert_eq!(command_primary_name(primary), Some(primary));
                }
            }
            AdminPath::Index => assert!(url.starts_with(command_url)),
            AdminPath::NotFound => {}
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        if let Some(value) = query_value(query, "streaming") {
            assert!(!value.contains('&'));
        }
    }
    if let Some((scheme, credential)) = authorization_parts(authorization) {
        assert!(!scheme.contains(' '));
        if let Some(credential) = credential {
            assert!(!credential.contains(' '));
            let _ = crate::tree::acl::generate_digest(credential);
        }
    }
}

/// The AdminServer's HTTP transport over the bytes a client sent (`admin::http`): the
/// port-unification sniff of the first byte, then the request head (`read_head`: request
/// line, headers, their bounds) and one exchange as `connection` runs it — Content-Length,
/// chunked bodies refused, `Expect: 100-continue`, the body read by the command or drained —
/// over a stream in memory. Checked: the head read stays within [`HEAD_BYTES_LIMIT`] bytes and
/// [`HEADER_COUNT_LIMIT`] headers, a parsed head re-encodes to one that parses the same, the
/// command never reads past Content-Length, and the client gets exactly one answer (after
/// at most one `100 Continue`) whose status matches the head's error.
///
/// [`HEAD_BYTES_LIMIT`]: crate::admin::http::HEAD_BYTES_LIMIT
/// [`HEADER_COUNT_LIMIT`]: crate::admin::http::HEADER_COUNT_LIMIT
pub fn admin_http(data: &[u8]) {
    use crate::admin::http::{
        content_length, encode_response, exchange, read_head, starts_tls, HeadError, Peer, Request,
        Response, HEADER_COUNT_LIMIT, HEAD_BYTES_LIMIT,
    };
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    /// A connection in memory: reads the input, keeps what the server writes.
    struct Wire<'a> {
        input: &'a [u8],
        output: Vec<u8>,
    }
    impl Read for Wire<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buffer)
        }
    }
    impl Write for Wire<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let data = bounded(data);
    // A unified port hands a TLS first byte to rustls (fuzzed upstream), anything else to
    // the plain exchange below; the sniff only looks at that byte.
    assert_eq!(starts_tls(data), data.first() == Some(&0x16));

    // The head alone, as `exchange` reads it first.
    let mut rest = data;
    let head = read_head(&mut rest);
    let consumed = data.len() - rest.len();
    assert!(
        consumed <= HEAD_BYTES_LIMIT,
        "{consumed} bytes of head read"
    );
    match &head {
        Ok(request) => {
            assert!(request.headers.len() <= HEADER_COUNT_LIMIT);
            assert!(!request.method.is_empty() && request.target.starts_with('/'));
            let mut again = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
            for (name, value) in &request.headers {
                assert!(!name.is_empty() && !name.contains([':', ' ', '\t', '\n']));
                assert_eq!(value.trim(), value);
                again.push_str(&format!("{name}: {value}\r\n"));
            }
            again.push_str("\r\n");
            // The re-encoding can be longer than the input (CRLF for a bare LF, ": " for
            // ":", "HTTP/1.1" for "HTTP/1."), so it only has to parse while within the bound
            // (a campaign found a 16,368-byte head that re-encodes past 16 KiB).
            if again.len() > HEAD_BYTES_LIMIT {
                return;
            }
            let reparsed = read_head(&mut again.as_bytes());
            assert_eq!(
                reparsed.ok().as_ref(),
                Some(request),
                "head does not re-parse"
            );
        }
        Err(HeadError::Closed) => assert!(data.is_empty()),
        Err(HeadError::Io(error)) => panic!("reading memory failed: {error}"),
        Err(_) => {}
    }

    // The whole exchange. The command reads the body only on `/commands/restore` (as the
    // real one does; other commands leave it to the drain), at most the input's length.
    // An Arc: the server's Handler type is 'static.
    let seen: Arc<Mutex<Option<(Request, usize)>>> = Arc::new(Mutex::new(None));
    let told = seen.clone();
    let handler = move |request: &Request, body: &mut dyn Read, _: &Peer| {
        let mut read = Vec::new();
        if request.target.starts_with("/commands/restore") {
            let _ = body.take(INPUT_BYTES_MAX as u64 + 1).read_to_end(&mut read);
        }
        if let Ok(mut told) = told.lock() {
            *told = Some((request.clone(), read.len()));
        }
        Response::text(200, "text/plain", format!("{} bytes\n", read.len()))
    };
    let peer = Peer {
        address: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        certificates: None,
        secure: false,
    };
    let mut wire = Wire {
        input: data,
        output: Vec::new(),
    };
    let outcome = exchange(&mut wire, &peer, &handler);
    assert!(outcome.is_ok(), "an exchange in memory failed: {outcome:?}");
    let output = wire.output;
    let seen = seen.lock().ok().and_then(|mut seen| seen.take());
    let continued = b"HTTP/1.1 100 Continue\r\n\r\n";
    let answer = output.strip_prefix(&continued[..]).unwrap_or(&output);
    let status = |answer: &[u8]| -> Option<u16> {
        std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()
    };
    match (&head, &seen) {
        (Err(HeadError::Closed), _) => {
            // Nobody to answer.
            assert!(output.is_empty() && seen.is_none());
            return;
        }
        (Err(error), _) => {
            assert!(seen.is_none());
            let expected = if matches!(error, HeadError::TooLarge) {
                431
            } else {
                400
            };
            assert_eq!(status(answer), Some(expected));
        }
        (Ok(request), Some((given, read))) => {
            assert_eq!(given, request);
            // Only digits, and one value however often it is given (a sign, or two lengths,
            // would let a proxy in front frame the body differently).
            let values: Vec<&str> = request
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
                .flat_map(|(_, value)| value.split(','))
                .map(|value| value.trim_matches([' ', '\t']))
                .collect();
            assert!(
                values
                    .iter()
                    .all(|value| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())),
                "the command ran with Content-Length {values:?}"
            );
            let length = content_length(request)
                .unwrap_or_else(|reason| panic!("the command ran with {reason}"));
            assert!(values.iter().all(|value| value.parse() == Ok(length)));
            assert!(
                *read as u64 <= length,
                "read {read} bytes past Content-Length {length}"
            );
            assert!(*read <= data.len() - consumed);
            let response = Response::text(200, "text/plain", format!("{read} bytes\n"));
            assert_eq!(answer, &encode_response(&response, false)[..]);
        }
        (Ok(_), None) => {
            // Refused before the command: a bad Content-Length or a chunked body.
            assert!(matches!(status(answer), Some(400 | 411)), "{answer:?}");
            assert_eq!(answer.len(), output.len(), "100 Continue before a refusal");
        }
    }
    // One answer: its head ends once, then its body (Content-Length bytes) ends the output.
    let Some(end) = answer.windows(4).position(|window| window == b"\r\n\r\n") else {
        panic!("an answer without the end of its head: {answer:?}");
    };
    let head_text = String::from_utf8_lossy(&answer[..end]);
    let length = head_text
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|value| value.parse::<usize>().ok());
    assert_eq!(length, Some(answer.len() - end - 4), "{head_text}");
}

/// SASL DIGEST-MD5 tokens (RFC 2831): the directive parser, the server's second step (the
/// client's digest-response) and the client's steps (the server's challenge, then its
/// rspauth). The input is split at the first NUL into the client's and the server's token.
pub fn digest_md5(data: &[u8]) {
    use crate::auth::digest_md5::{
        parse_directives, DigestCredentials, DigestMd5Client, DigestMd5Server,
    };
    use rand::SeedableRng;
    let data = bounded(data);
    if let Ok(directives) = parse_directives(data) {
        for (key, _) in &directives {
            assert_eq!(
                key,
                &key.to_ascii_lowercase(),
                "directive keys are lower case"
            );
        }
    }
    let split = data
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(data.len());
    let (response, challenge) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut users = BTreeMap::new();
    users.insert("bob".to_string(), "secret".to_string());
    let credentials = DigestCredentials {
        users,
        super_password: Some("super".to_string()),
    };
    let mut server = DigestMd5Server::new("zookeeper", "zk-sasl-md5", &mut rng);
    if server.evaluate(&[], &credentials).is_ok() {
        let _ = server.evaluate(response, &credentials);
        // A third token is always an error.
        assert!(server.evaluate(response, &credentials).is_err());
    }
    let mut client = DigestMd5Client::new("zookeeper", "zk-sasl-md5", "bob", "secret", &mut rng);
    if client.evaluate(challenge).is_ok() {
        let _ = client.evaluate(response);
        let _ = client.is_complete();
    }
}

/// DER as the x509 identity code reads it: an element walk (nested to a bounded depth), the
/// subject of a certificate, its RFC 2253 form and OIDs.
pub fn der_x509(data: &[u8]) {
    use crate::auth::der::{oid_to_string, DerReader};
    use crate::auth::x509;
    let data = bounded(data);
    fn walk(bytes: &[u8], depth: usize) {
        let mut reader = DerReader::new(bytes);
        let mut elements = 0usize;
        while !reader.is_empty() {
            let Ok(element) = reader.next_element() else {
                return;
            };
            elements += 1;
            assert!(elements <= bytes.len(), "more elements than bytes");
            assert!(element.content.len() < element.encoded.len());
            if element.tag == 0x06 {
                let _ = oid_to_string(element.content);
            }
            // Constructed elements (bit 6) hold elements.
            if element.tag & 0x20 != 0 && depth < 16 {
                walk(element.content, depth + 1);
            }
        }
    }
    walk(data, 0);
    if let Ok(subject) = x509::certificate_subject(data) {
        assert!(subject.len() <= data.len());
        if let Ok(name) = x509::client_id(data) {
            let _ = x509::is_valid_name(&name);
            let ids = x509::auth_ids(&name, Some(&name));
            assert!(!ids.is_empty());
        }
    }
    if let Ok(name) = x509::rfc2253_name(data) {
        let _ = x509::is_valid_name(&name);
    }
}

/// Key and trust stores as `ssl.keyStore.location` names them: the first byte picks PEM, JKS
/// (whose integrity digest is set over the rest with the password, so the entries are
/// reached) or raw JKS. PKCS#12 goes to the p12-keystore crate, whose key derivation runs as
/// many iterations as the file asks (a key store is the operator's file, not a peer's
/// input), so it is not fuzzed here.
pub fn key_store(data: &[u8]) {
    use crate::auth::keystore::{load_key_store, load_trust_store, StoreType};
    use sha1::{Digest, Sha1};
    let data = bounded(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let password = "jks-pass";
    let file = match mode % 3 {
        0 => {
            let _ = load_key_store(rest, StoreType::Pem, password);
            let _ = load_trust_store(rest, StoreType::Pem, password);
            return;
        }
        1 => {
            let mut hasher = Sha1::new();
            let password_bytes: Vec<u8> = password
                .encode_utf16()
                .flat_map(|unit| unit.to_be_bytes())
                .collect();
            hasher.update(&password_bytes);
            hasher.update(b"Mighty Aphrodite");
            hasher.update(rest);
            let mut file = rest.to_vec();
            file.extend_from_slice(&hasher.finalize());
            file
        }
        _ => rest.to_vec(),
    };
    if let Ok(entries) = crate::auth::jks::parse(&file, password) {
        assert!(entries.len() <= file.len());
    }
    let _ = load_key_store(&file, StoreType::Jks, password);
    let _ = load_trust_store(&file, StoreType::Jks, password);
}

/// `kerberos.*` auth_to_local rules and principal names (`auth::kerberos_name`). The input is
/// `rules \n principal`.
pub fn kerberos_name(data: &[u8]) {
    use crate::auth::kerberos_name::{KerberosName, KerberosRules};
    let data = bounded(data);
    let text = String::from_utf8_lossy(data);
    let (rules, principal) = text.rsplit_once('\n').unwrap_or(("DEFAULT", &text));
    let Ok(name) = KerberosName::parse(principal) else {
        return;
    };
    // Display gives the principal back; it parses to the same name.
    let shown = name.to_string();
    let again = KerberosName::parse(&shown)
        .unwrap_or_else(|error| panic!("{shown:?} (from {principal:?}) does not parse: {error}"));
    assert_eq!(again.to_string(), shown);
    if let Ok(rules) = KerberosRules::parse(rules, "EXAMPLE.COM") {
        let _ = name.short_name(&rules);
    }
    let _ = name.short_name(&KerberosRules::default_rule("EXAMPLE.COM"));
}
