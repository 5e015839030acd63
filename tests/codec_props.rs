//! Property tests for the jute codec: records round-trip through their encoding, and no byte
//! sequence makes a decoder panic (a client's bad frame is that client's error, STYLE.md).

use proptest::collection::vec;
use proptest::prelude::*;

use ringkeeper::jute::frame::{FrameDecoder, FrameError};
use ringkeeper::jute::records::*;
use ringkeeper::jute::request::{Request, RequestError};
use ringkeeper::jute::{OpCode, Reader, Record, Writer};

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

// ---- Request::encode, the inverse of Request::decode (a follower forwards client requests
// to its leader in the form the client sent them) ----

fn create_op() -> impl Strategy<Value = ringkeeper::jute::request::Create> {
    use ringkeeper::jute::request::Create;
    (
        prop_oneof![
            Just(OpCode::Create),
            Just(OpCode::Create2),
            Just(OpCode::CreateContainer),
            Just(OpCode::CreateTtl)
        ],
        text(),
        proptest::option::of(bytes()),
        vec(acl(), 0..3),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(|(op, path, data, acl, flags, ttl)| Create {
            op,
            path,
            data,
            acl,
            flags,
            // Only createTTL carries a ttl; decode sets -1 for the others.
            ttl: if op == OpCode::CreateTtl { ttl } else { -1 },
        })
}

/// The ops a MultiHeader may name (decode_multi): create flavours, delete, setData, check,
/// getData, getChildren.
fn multi_op() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_op().prop_map(Request::Create),
        (text(), any::<i32>())
            .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
        (text(), proptest::option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| {
            Request::SetData(SetDataRequest {
                path,
                data,
                version,
            })
        }),
        (text(), any::<i32>())
            .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetData(GetDataRequest { path, watch })),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren(GetChildrenRequest { path, watch })),
    ]
}

fn watch_lists() -> impl Strategy<Value = SetWatches2> {
    (any::<i64>(), vec(vec(text(), 0..3), 5), any::<bool>()).prop_map(
        |(zxid, lists, persistent)| SetWatches2 {
            relative_zxid: zxid,
            data_watches: lists[0].clone(),
            exist_watches: lists[1].clone(),
            child_watches: lists[2].clone(),
            // Both with and without persistent watches (SetWatches and SetWatches2 on the wire).
            persistent_watches: if persistent {
                lists[3].clone()
            } else {
                Vec::new()
            },
            persistent_recursive_watches: if persistent {
                lists[4].clone()
            } else {
                Vec::new()
            },
        },
    )
}

/// Every variant Request::decode produces.
fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        multi_op(),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::Exists(ExistsRequest { path, watch })),
        text().prop_map(|path| Request::GetAcl(GetAclRequest { path })),
        (text(), vec(acl(), 0..3), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren2(GetChildren2Request { path, watch })),
        text().prop_map(|path| Request::Sync(SyncRequest { path })),
        Just(Request::Ping),
        vec(multi_op(), 0..4).prop_map(Request::Multi),
        vec(multi_op(), 0..4).prop_map(Request::MultiRead),
        (text(), text(), text(), any::<i64>()).prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| Request::Reconfig(
                ReconfigRequest {
                    joining_servers,
                    leaving_servers,
                    new_members,
                    cur_config_id
                }
            )
        ),
        (text(), any::<i32>()).prop_map(|(path, watcher_type)| Request::CheckWatches(
            CheckWatchesRequest { path, watcher_type }
        )),
        (text(), any::<i32>()).prop_map(|(path, watcher_type)| Request::RemoveWatches(
            RemoveWatchesRequest { path, watcher_type }
        )),
        text().prop_map(Request::DeleteContainer),
        (any::<i32>(), text(), bytes()).prop_map(|(auth_type, scheme, auth)| Request::Auth(
            AuthPacket {
                auth_type,
                scheme,
                auth
            }
        )),
        watch_lists().prop_map(Request::SetWatches),
        bytes().prop_map(|token| Request::Sasl(GetSaslRequest { token })),
        text().prop_map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        text().prop_map(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        (text(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// decode(op_type, encode(r)) == r for every variant decode produces, consuming the whole
    /// body; and every proper prefix of a body with fields is refused, never a panic.
    #[test]
    fn requests_round_trip_through_encode(request in any_request()) {
        let mut writer = Writer::new();
        request.encode(&mut writer);
        let body = writer.into_bytes();
        let mut reader = Reader::new(&body);
        let decoded = Request::decode(request.op_type(), &mut reader);
        prop_assert_eq!(reader.finish(), Ok(()));
        prop_assert_eq!(decoded, Ok(request.clone()));
        for cut in 0..body.len() {
            let mut reader = Reader::new(&body[..cut]);
            let shorter = Request::decode(request.op_type(), &mut reader);
            prop_assert!(shorter.is_err() || reader.finish().is_err(), "prefix of {} bytes decoded", cut);
        }
    }
}

/// One hand-built example per opcode decode accepts, so that a new variant without an
/// encoding fails here even if the generator above is not extended.
#[test]
fn every_opcode_decode_accepts_has_an_encoding_that_round_trips() {
    use ringkeeper::jute::request::Create;
    for op_type in -12i32..=110 {
        let Some(op) = OpCode::from_i32(op_type) else {
            continue;
        };
        let request = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Request::Create(Create {
                    op,
                    path: "/a".into(),
                    data: Some(b"x".to_vec()),
                    acl: vec![Acl {
                        perms: 31,
                        id: Id {
                            scheme: "world".into(),
                            id: "anyone".into(),
                        },
                    }],
                    flags: 1,
                    ttl: if op == OpCode::CreateTtl { 500 } else { -1 },
                })
            }
            OpCode::Delete => Request::Delete(DeleteRequest {
                path: "/a".into(),
                version: 3,
            }),
            OpCode::Exists => Request::Exists(ExistsRequest {
                path: "/a".into(),
                watch: true,
            }),
            OpCode::GetData => Request::GetData(GetDataRequest {
                path: "/a".into(),
                watch: true,
            }),
            OpCode::SetData => Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: None,
                version: -1,
            }),
            OpCode::GetAcl => Request::GetAcl(GetAclRequest { path: "/a".into() }),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest {
                path: "/a".into(),
                acl: vec![],
                version: 2,
            }),
            OpCode::GetChildren => Request::GetChildren(GetChildrenRequest {
                path: "/".into(),
                watch: false,
            }),
            OpCode::GetChildren2 => Request::GetChildren2(GetChildren2Request {
                path: "/".into(),
                watch: true,
            }),
            OpCode::Sync => Request::Sync(SyncRequest { path: "/".into() }),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 7,
            }),
            OpCode::Multi => Request::Multi(vec![
                Request::Check(CheckVersionRequest {
                    path: "/a".into(),
                    version: 7,
                }),
                Request::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
            ]),
            OpCode::MultiRead => Request::MultiRead(vec![Request::GetData(GetDataRequest {
                path: "/a".into(),
                watch: false,
            })]),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest {
                joining_servers: "server.4=h:1:2".into(),
                leaving_servers: "".into(),
                new_members: "".into(),
                cur_config_id: -1,
            }),
            OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest {
                path: "/a".into(),
                watcher_type: 1,
            }),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest {
                path: "/a".into(),
                watcher_type: 3,
            }),
            OpCode::DeleteContainer => Request::DeleteContainer("/c".into()),
            OpCode::Auth => Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: b"u:p".to_vec(),
            }),
            OpCode::SetWatches | OpCode::SetWatches2 => Request::SetWatches(SetWatches2 {
                relative_zxid: 5,
                data_watches: vec!["/a".into()],
                exist_watches: vec![],
                child_watches: vec!["/".into()],
                persistent_watches: if op == OpCode::SetWatches2 {
                    vec!["/p".into()]
                } else {
                    vec![]
                },
                persistent_recursive_watches: vec![],
            }),
            OpCode::Sasl => Request::Sasl(GetSaslRequest { token: vec![1, 2] }),
            OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: "/e".into(),
            }),
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/".into() })
            }
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest {
                path: "/a".into(),
                mode: 1,
            }),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => continue,
        };
        assert_eq!(request.op_type(), op_type, "{op:?}");
        let mut writer = Writer::new();
        request.encode(&mut writer);
        let body = writer.into_bytes();
        let mut reader = Reader::new(&body);
        assert_eq!(Request::decode(op_type, &mut reader), Ok(request), "{op:?}");
        assert_eq!(reader.finish(), Ok(()), "{op:?}");
    }
}
