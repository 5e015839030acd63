//! Property tests for the jute codec: records round-trip through their encoding, and no byte
//! sequence makes a decoder panic (a client's bad frame is that client's error, STYLE.md).

use proptest::collection::vec;
use proptest::prelude::*;

use ringkeeper::jute::frame::{FrameDecoder, FrameError};
use ringkeeper::jute::records::*;
use ringkeeper::jute::request::{Request, RequestError};
use ringkeeper::jute::{OpCode, Reader, Record};

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including multi-byte characters, plus the paths clients actually send.
    prop_oneof!["\\PC{0,12}", "(/[a-z0-9-]{1,6}){0,4}",]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (owner, length, children, pzxid),
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner: owner,
                data_length: length,
                num_children: children,
                pzxid,
            },
        )
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), text(), text()).prop_map(|(perms, scheme, id)| Acl {
        perms,
        id: Id { scheme, id },
    })
}

fn round_trips<R: Record + PartialEq + std::fmt::Debug>(record: &R) -> Result<(), TestCaseError> {
    let bytes = record.to_bytes();
    let decoded = R::from_bytes(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&decoded, record);
    prop_assert_eq!(&decoded.to_bytes(), &bytes);
    // Every proper prefix is a truncated record, never a panic nor a success.
    for cut in 0..bytes.len() {
        prop_assert!(
            R::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {} bytes decoded",
            cut
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn create_requests_round_trip(path in text(), data in proptest::option::of(bytes()), acl in vec(acl(), 0..3), flags in any::<i32>(), ttl in any::<i64>()) {
        round_trips(&CreateRequest { path: path.clone(), data: data.clone(), acl: acl.clone(), flags })?;
        round_trips(&CreateTtlRequest { path, data, acl, flags, ttl })?;
    }

    #[test]
    fn connect_records_round_trip(version in any::<i32>(), zxid in any::<i64>(), timeout in any::<i32>(), session in any::<i64>(), passwd in bytes(), read_only in any::<bool>()) {
        round_trips(&ConnectRequest { protocol_version: version, last_zxid_seen: zxid, time_out: timeout, session_id: session, passwd: passwd.clone(), read_only })?;
        round_trips(&ConnectResponse { protocol_version: version, time_out: timeout, session_id: session, passwd, read_only })?;
    }

    #[test]
    fn response_records_round_trip(path in text(), data in proptest::option::of(bytes()), stat in stat(), acl in vec(acl(), 0..3), children in vec(text(), 0..4), err in any::<i32>(), event_type in any::<i32>(), state in any::<i32>()) {
        round_trips(&ReplyHeader { xid: err, zxid: stat.czxid, err })?;
        round_trips(&Create2Response { path: path.clone(), stat: stat.clone() })?;
        round_trips(&GetDataResponse { data, stat: stat.clone() })?;
        round_trips(&GetAclResponse { acl, stat: stat.clone() })?;
        round_trips(&GetChildren2Response { children: children.clone(), stat })?;
        round_trips(&GetEphemeralsResponse { ephemerals: children })?;
        round_trips(&WatcherEvent { event_type, state, path })?;
        round_trips(&ErrorResponse { err })?;
    }

    #[test]
    fn watch_and_auth_records_round_trip(zxid in any::<i64>(), lists in vec(vec(text(), 0..3), 5), scheme in text(), auth in bytes(), auth_type in any::<i32>()) {
        round_trips(&SetWatches2 {
            relative_zxid: zxid,
            data_watches: lists[0].clone(),
            exist_watches: lists[1].clone(),
            child_watches: lists[2].clone(),
            persistent_watches: lists[3].clone(),
            persistent_recursive_watches: lists[4].clone(),
        })?;
        round_trips(&AuthPacket { auth_type, scheme: scheme.clone(), auth })?;
        round_trips(&WhoAmIResponse { client_info: lists[0].iter().map(|user| ClientInfo { auth_scheme: scheme.clone(), user: user.clone() }).collect() })?;
    }

    /// Whatever follows a RequestHeader, Request::decode returns Ok or Err for every opcode
    /// (known or not) and never reads past the frame.
    #[test]
    fn request_decode_never_panics(op_type in prop_oneof![(-12i32..=110), any::<i32>()], body in vec(any::<u8>(), 0..200)) {
        let mut reader = Reader::new(&body);
        let result = Request::decode(op_type, &mut reader);
        prop_assert!(reader.offset() <= body.len());
        if OpCode::from_i32(op_type).is_none() {
            prop_assert_eq!(result, Err(RequestError::UnknownOpCode(op_type)));
        }
    }

    /// Bodies that start like a real multi (valid headers, then garbage) reach deeper code
    /// than uniformly random bytes do.
    #[test]
    fn multi_decode_never_panics(ops in vec((prop_oneof![Just(1i32), Just(2), Just(4), Just(5), Just(8), Just(13), Just(15), Just(19), Just(21), Just(-1), any::<i32>()], any::<bool>(), vec(any::<u8>(), 0..24)), 0..6)) {
        let mut body = Vec::new();
        for (op_type, done, tail) in &ops {
            body.extend_from_slice(&op_type.to_be_bytes());
            body.push(*done as u8);
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(tail);
        }
        for op in [14, 22] {
            let _ = Request::decode(op, &mut Reader::new(&body));
        }
    }

    /// Any byte stream, cut into arbitrary reads, yields frames whose lengths match their
    /// prefixes, or a framing error; never a panic nor a frame over the limit.
    #[test]
    fn frame_decoder_never_panics(stream in vec(any::<u8>(), 0..300), cuts in vec(1usize..40, 1..20), limit in 0usize..64) {
        let mut decoder = FrameDecoder::new(limit);
        let mut offset = 0;
        let mut cut_index = 0;
        'feed: while offset < stream.len() {
            let step = cuts[cut_index % cuts.len()].min(stream.len() - offset);
            cut_index += 1;
            decoder.extend(&stream[offset..offset + step]);
            offset += step;
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => prop_assert!(frame.len() <= limit),
                    Ok(None) => break,
                    Err(FrameError::NegativeLength { length }) => { prop_assert!(length < 0); break 'feed; }
                    Err(FrameError::TooLarge { length, .. }) => { prop_assert!(length > limit); break 'feed; }
                }
            }
        }
    }

    /// Well-formed frames, however the stream is cut, come back whole and in order.
    #[test]
    fn frame_decoder_reassembles_frames(frames in vec(vec(any::<u8>(), 0..50), 0..8), cuts in vec(1usize..30, 1..10)) {
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend_from_slice(&(frame.len() as i32).to_be_bytes());
            stream.extend_from_slice(frame);
        }
        let mut decoder = FrameDecoder::new(64);
        let mut received = Vec::new();
        let mut offset = 0;
        let mut cut_index = 0;
        while offset < stream.len() {
            let step = cuts[cut_index % cuts.len()].min(stream.len() - offset);
            cut_index += 1;
            decoder.extend(&stream[offset..offset + step]);
            offset += step;
            while let Some(frame) = decoder.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                received.push(frame.to_vec());
            }
        }
        prop_assert_eq!(received, frames);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    /// Every record decoder returns Ok or Err on arbitrary bytes.
    #[test]
    fn record_decoders_never_panic(body in vec(any::<u8>(), 0..120)) {
        let _ = ConnectRequest::from_bytes(&body);
        let _ = ConnectResponse::from_bytes(&body);
        let _ = ReplyHeader::from_bytes(&body);
        let _ = WatcherEvent::from_bytes(&body);
        let _ = GetDataResponse::from_bytes(&body);
        let _ = GetAclResponse::from_bytes(&body);
        let _ = GetChildren2Response::from_bytes(&body);
        let _ = SetWatches2::from_bytes(&body);
        let _ = WhoAmIResponse::from_bytes(&body);
        let _ = MultiHeader::from_bytes(&body);
    }
}
