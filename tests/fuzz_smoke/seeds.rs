//! The seed corpora of the fuzz targets, built from real bytes: the frames real clients
//! exchanged with Apache ZooKeeper (tests/golden/*.txt), the TLS fixtures, and files and
//! messages made by the server's own encoders. Each input is laid out as its target reads it
//! (see the target's doc in src/fuzzing.rs: selector bytes, NUL or newline separators).

use std::path::Path;

use base64::Engine as _;
use ringkeeper::jute::codec::{Record, Writer};
use ringkeeper::jute::protocol::{ErrorCode, OpCode};
use ringkeeper::jute::records::*;
use ringkeeper::jute::request::{Create, Request};
use ringkeeper::quorum::{wire, Forwarded, Wire};
use ringkeeper::snapshot::SessionRecord;
use ringkeeper::tree::{acl, TreeVersion, Txn};
use ringkeeper::txnlog::format::{
    encode_batch, encode_segment_header, encode_txn, LogRecord, BLOCK_BYTES,
};
use ringkeeper::zab::{Message, Notification, Packet, PeerState, Vote};

type Corpus = (&'static str, Vec<Vec<u8>>);

/// One golden conversation: (client frames, server frames), bodies without length prefixes.
type Conversation = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn golden(repo: &Path) -> Vec<Conversation> {
    let mut files: Vec<_> = std::fs::read_dir(repo.join("tests").join("golden"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let mut client = Vec::new();
            let mut server = Vec::new();
            for line in text.lines() {
                let (side, hex) = match line.split_once(' ') {
                    Some(pair) => pair,
                    None => continue,
                };
                let Ok(bytes) = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                else {
                    continue;
                };
                match side {
                    "C" => client.push(bytes),
                    "S" => server.push(bytes),
                    _ => {}
                }
            }
            (client, server)
        })
        .collect()
}

fn framed(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        out.extend_from_slice(frame);
    }
    out
}

fn open_acl() -> Vec<Acl> {
    acl::open_acl()
}

fn txns() -> Vec<Txn> {
    vec![
        Txn::Create {
            path: "/app".into(),
            data: Some(b"config".to_vec()),
            acl: open_acl(),
            ephemeral_owner: 0,
            parent_cversion: 1,
        },
        Txn::Create {
            path: "/app/e".into(),
            data: None,
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "digest".into(),
                    id: "bob:hash".into(),
                },
            }],
            ephemeral_owner: 0x0100_0000_0000_0001,
            parent_cversion: 1,
        },
        Txn::SetData {
            path: "/app".into(),
            data: Some(Vec::new()),
            version: 0,
        },
        Txn::SetAcl {
            path: "/app".into(),
            acl: open_acl(),
            version: 0,
        },
        Txn::Check {
            path: "/app".into(),
        },
        Txn::Error {
            code: ErrorCode::NoNode,
        },
        Txn::Multi {
            ops: vec![
                Txn::Delete {
                    path: "/app/e".into(),
                },
                Txn::Error {
                    code: ErrorCode::BadVersion,
                },
            ],
        },
        Txn::CreateSession {
            session_id: 0x0100_0000_0000_0001,
            timeout_ms: 30_000,
        },
        Txn::CloseSession {
            session_id: 0x0100_0000_0000_0001,
            ephemerals: vec!["/app/e".into()],
        },
    ]
}

fn log_records() -> Vec<LogRecord> {
    txns()
        .into_iter()
        .enumerate()
        .map(|(index, txn)| LogRecord {
            zxid: 0x1_0000_0001 + index as i64,
            time_ms: 1_700_000_000_000 + index as i64,
            txn,
        })
        .collect()
}

/// A segment as the log writer lays it out: header block, then batches of 1, 3 and the rest.
fn segment() -> Vec<u8> {
    let records = log_records();
    let mut out = encode_segment_header(records[0].zxid, 1_700_000_000_000).to_vec();
    out.resize(BLOCK_BYTES, 0);
    encode_batch(&mut out, 1, &records[..1]);
    encode_batch(&mut out, 2, &records[1..4]);
    encode_batch(&mut out, 3, &records[4..]);
    out
}

fn snapshot_file() -> Vec<u8> {
    let mut tree = TreeVersion::new();
    let steps: Vec<Txn> = vec![
        Txn::CreateSession {
            session_id: 0x0100_0000_0000_0001,
            timeout_ms: 30_000,
        },
        txns()[0].clone(),
        txns()[1].clone(),
        Txn::Create {
            path: "/app/b".into(),
            data: Some(vec![0; 3]),
            acl: open_acl(),
            ephemeral_owner: 0,
            parent_cversion: 2,
        },
        Txn::Create {
            path: "/zk".into(),
            data: None,
            acl: open_acl(),
            ephemeral_owner: 0,
            parent_cversion: 2,
        },
    ];
    for (index, txn) in steps.iter().enumerate() {
        let zxid = index as i64 + 1;
        tree.apply(zxid, 1_000 + zxid, txn, &mut Vec::new())
            .unwrap_or_else(|error| panic!("{txn:?}: {error:?}"));
    }
    let sessions = SessionRecord::from_pairs(&[(0x0100_0000_0000_0001, 30_000)]);
    ringkeeper::snapshot::writer::encode_snapshot(&tree, &sessions).unwrap()
}

fn wire_messages() -> Vec<Wire> {
    let records = log_records();
    let link = |packet| {
        Wire::Zab(Message::Link {
            conn: 7,
            seq: 3,
            packet,
        })
    };
    vec![
        Wire::Zab(Message::Notification(Notification {
            vote: Vote {
                leader: 3,
                zxid: 0x1_0000_0005,
                epoch: 1,
            },
            round: 2,
            state: PeerState::Looking,
            config_version: 0,
        })),
        link(Packet::FollowerInfo {
            accepted_epoch: 1,
            observer: false,
        }),
        link(Packet::LeaderInfo { epoch: 2 }),
        link(Packet::AckEpoch {
            current_epoch: 1,
            last_zxid: 0x1_0000_0005,
        }),
        link(Packet::Diff { zxid: 5 }),
        link(Packet::Trunc { zxid: 4 }),
        link(Packet::Snap {
            zxid: 9,
            payload: vec![1, 2, 3],
        }),
        link(Packet::Proposal(records[0].clone())),
        link(Packet::Proposal(records[6].clone())),
        link(Packet::NewLeader { epoch: 2, zxid: 9 }),
        link(Packet::AckNewLeader { zxid: 9 }),
        link(Packet::UpToDate { zxid: 9 }),
        link(Packet::Ack { zxid: 10 }),
        link(Packet::Commit { zxid: 10 }),
        link(Packet::Inform(records[8].clone())),
        link(Packet::Ping),
        Wire::Forward {
            id: 1,
            request: Forwarded::CreateSession {
                session_id: 0x0300_0000_0000_0001,
                timeout_ms: 30_000,
            },
        },
        Wire::Forward {
            id: 2,
            request: Forwarded::Revalidate {
                session_id: 0x0300_0000_0000_0001,
                timeout_ms: 4_000,
            },
        },
        Wire::Forward {
            id: 3,
            request: Forwarded::Request {
                session_id: 77,
                xid: 5,
                request: Request::Create(Create {
                    op: OpCode::Create2,
                    path: "/a".into(),
                    data: Some(b"x".to_vec()),
                    acl: open_acl(),
                    flags: 0,
                    ttl: -1,
                }),
                auth: vec![Id {
                    scheme: "digest".into(),
                    id: "bob:hash".into(),
                }],
            },
        },
        Wire::Forward {
            id: 4,
            request: Forwarded::Request {
                session_id: 77,
                xid: 6,
                request: Request::Multi(vec![
                    Request::Check(CheckVersionRequest {
                        path: "/a".into(),
                        version: 1,
                    }),
                    Request::Delete(DeleteRequest {
                        path: "/a".into(),
                        version: -1,
                    }),
                ]),
                auth: Vec::new(),
            },
        },
        Wire::Proposed { id: 3, zxid: 11 },
        Wire::Rejected { id: 4 },
        Wire::Synced { id: 5, zxid: 12 },
        Wire::Touch {
            sessions: vec![1, 2, 3],
        },
        Wire::Revalidated {
            id: 2,
            valid: true,
            timeout_ms: 4_000,
        },
    ]
}

fn pem_to_der(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END CERTIFICATE") {
            inside = false;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .unwrap(),
            );
        } else if inside {
            body.push_str(line.trim());
        }
    }
    out
}

fn with_prefix(prefix: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![prefix];
    out.extend_from_slice(bytes);
    out
}

/// The corpora of every target.
pub fn all(repo: &Path) -> Vec<Corpus> {
    let conversations = golden(repo);
    let tls = repo.join("tests").join("golden").join("tls");
    let read = |name: &str| std::fs::read(tls.join(name)).unwrap();

    let mut client_frames = Vec::new();
    let mut connect_request = Vec::new();
    let mut request = Vec::new();
    for (client, server) in &conversations {
        // Whole conversations, in reads of 8 bytes and of 128 bytes.
        let stream = framed(client);
        client_frames.push(with_prefix(7, &stream));
        client_frames.push(with_prefix(0x7f, &stream));
        if let Some(first) = client.first() {
            connect_request.push(first.clone());
        }
        if let Some(first) = server.first() {
            connect_request.push(first.clone());
        }
        request.extend(client.iter().skip(1).cloned());
    }
    request.sort();
    request.dedup();
    connect_request.sort();
    connect_request.dedup();

    // Every record with default fields, then a few with values, behind their selector (the
    // index in fuzzing::jute_records' list).
    let defaults: Vec<Vec<u8>> = vec![
        Id::default().to_bytes(),
        Acl::default().to_bytes(),
        Stat::default().to_bytes(),
        ClientInfo::default().to_bytes(),
        ConnectRequest::default().to_bytes(),
        ConnectResponse::default().to_bytes(),
        SetWatches::default().to_bytes(),
        SetWatches2::default().to_bytes(),
        RequestHeader::default().to_bytes(),
        MultiHeader::default().to_bytes(),
        AuthPacket::default().to_bytes(),
        ReplyHeader::default().to_bytes(),
        GetDataRequest::default().to_bytes(),
        SetDataRequest::default().to_bytes(),
        ReconfigRequest::default().to_bytes(),
        SetDataResponse::default().to_bytes(),
        GetSaslRequest::default().to_bytes(),
        SetSaslRequest::default().to_bytes(),
        SetSaslResponse::default().to_bytes(),
        CreateRequest::default().to_bytes(),
        CreateTtlRequest::default().to_bytes(),
        DeleteRequest::default().to_bytes(),
        GetChildrenRequest::default().to_bytes(),
        GetAllChildrenNumberRequest::default().to_bytes(),
        GetChildren2Request::default().to_bytes(),
        CheckVersionRequest::default().to_bytes(),
        SyncRequest::default().to_bytes(),
        SyncResponse::default().to_bytes(),
        GetAclRequest::default().to_bytes(),
        SetAclRequest::default().to_bytes(),
        SetAclResponse::default().to_bytes(),
        AddWatchRequest::default().to_bytes(),
        WatcherEvent::default().to_bytes(),
        ErrorResponse::default().to_bytes(),
        CreateResponse::default().to_bytes(),
        Create2Response::default().to_bytes(),
        ExistsRequest::default().to_bytes(),
        ExistsResponse::default().to_bytes(),
        GetDataResponse::default().to_bytes(),
        GetChildrenResponse::default().to_bytes(),
        GetAllChildrenNumberResponse::default().to_bytes(),
        GetChildren2Response::default().to_bytes(),
        GetAclResponse::default().to_bytes(),
        CheckWatchesRequest::default().to_bytes(),
        RemoveWatchesRequest::default().to_bytes(),
        GetEphemeralsRequest::default().to_bytes(),
        GetEphemeralsResponse::default().to_bytes(),
        WhoAmIResponse::default().to_bytes(),
    ];
    let mut jute_records: Vec<Vec<u8>> = defaults
        .iter()
        .enumerate()
        .map(|(index, bytes)| with_prefix(index as u8, bytes))
        .collect();
    let acl_response = GetAclResponse {
        acl: open_acl(),
        stat: Stat::default(),
    };
    jute_records.push(with_prefix(42, &acl_response.to_bytes()));
    let watches = SetWatches2 {
        relative_zxid: 5,
        data_watches: vec!["/a".into(), "/b".into()],
        exist_watches: vec!["/c".into()],
        child_watches: Vec::new(),
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
    };
    jute_records.push(with_prefix(7, &watches.to_bytes()));
    for (client, server) in conversations.iter().take(4) {
        if let Some(first) = client.first() {
            jute_records.push(with_prefix(4, first));
        }
        if let Some(first) = server.first() {
            jute_records.push(with_prefix(5, first));
        }
    }

    let quorum_wire: Vec<Vec<u8>> = wire_messages()
        .iter()
        .map(|message| {
            let mut out = Vec::new();
            wire::encode(message, &mut out);
            out
        })
        .collect();

    let txn: Vec<Vec<u8>> = txns()
        .iter()
        .map(|txn| {
            let mut writer = Writer::new();
            encode_txn(&mut writer, txn);
            writer.into_bytes()
        })
        .collect();

    let segment = segment();
    // A torn tail: the last batch cut in the middle of its record.
    let torn = segment[..segment.len() - BLOCK_BYTES + 40].to_vec();
    let log_segment = vec![segment.clone(), torn.clone()];
    // log_records takes the segment after its header block; trailing zeros add nothing.
    let strip = |bytes: &[u8]| {
        let body = &bytes[BLOCK_BYTES..];
        let end = body
            .iter()
            .rposition(|byte| *byte != 0)
            .map_or(0, |at| at + 1);
        body[..end].to_vec()
    };
    let log_records = vec![strip(&segment), strip(&torn)];

    let snapshot = snapshot_file();
    let body = &snapshot[ringkeeper::snapshot::format::HEADER_BYTES..];
    // The header's node count (bytes 24..32, little-endian): the fix-up mode takes it from
    // the selector byte.
    let node_count = u8::try_from(u64::from_le_bytes(snapshot[24..32].try_into().unwrap()))
        .expect("a small snapshot");
    let snapshot_corpus = vec![
        with_prefix(0, &snapshot),
        with_prefix(1 | (node_count << 1), body),
    ];

    let zoo_cfg = vec![
        with_prefix(0, b"tickTime=2000\ndataDir=/tmp/zk\nclientPort=2181\n"),
        with_prefix(
            2,
            b"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zk\nclientPort=2181\n\
              admin.enableServer=false\n4lw.commands.whitelist=ruok, srvr, mntr\n\
              server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889;127.0.0.1:2182\n\
              server.3=[::1]:2890:3890:observer;2183\npeerType=participant\n",
        ),
        with_prefix(
            0,
            b"# TLS and SASL\ndataDir=/tmp/zk\nsecureClientPort=2281\nclientPortAddress=127.0.0.1\n\
              serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
              ssl.keyStore.location=/k.jks\nssl.keyStore.password=pw\nssl.clientAuth=need\nssl.trustStore.location=/t.p12\n\
              authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
              minSessionTimeout=100\nmaxSessionTimeout=100000\nmaxClientCnxns=60\n\
              jute.maxbuffer=1048575\nsnapCount=100000\nautopurge.snapRetainCount=3\n\
              metricsProvider.httpPort=7000\nextendedTypesEnabled=true\n",
        ),
    ];

    let jaas = vec![
        b"Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_admin=\"adminsecret\"\n    user_bob=\"bobsecret\";\n};\n".to_vec(),
        b"// comment\nServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required user_super=\"a\\\"b\";\n  com.sun.security.auth.module.Krb5LoginModule Required useKeyTab=true keyTab='/etc/zk.keytab' principal=\"zookeeper/localhost@EXAMPLE.COM\";\n};\n/* c */ QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_test=\"${user.home}\"; };\nQuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required username=\"test\" password=\"test\"; }; # end\n".to_vec(),
    ];

    let java_properties = vec![
        b"SERVER_JVMFLAGS=\"-Djava.security.auth.login.config=/etc/jaas.conf $SERVER_JVMFLAGS\"\n# c\nJVMFLAGS='-Dzookeeper.x=1'\n\0-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider -Xmx1g\0-Dzookeeper.ssl.keyStore.location=\"/a b.jks\" -Dflag".to_vec(),
        b"\0-Da=b\\ c -D'q=r s' -D\"t=u\\\"v\"\0".to_vec(),
    ];

    let mut four_letter_word: Vec<Vec<u8>> = ringkeeper::fourlw::FOUR_LETTER_WORDS
        .iter()
        .map(|word| word.as_bytes().to_vec())
        .collect();
    four_letter_word.push(vec![0x16, 0x03, 0x01, 0x02, 0x00]);
    if let Some((client, _)) = conversations.first() {
        four_letter_word.push(framed(client));
    }

    let admin_request = vec![
        b"/commands/ruok\n".to_vec(),
        b"/commands\n".to_vec(),
        b"/commands/\n".to_vec(),
        b"/commands/snapshot?streaming=true\ndigest super:secret".to_vec(),
        b"/commands/restore\nip".to_vec(),
        b"/commands/stat/x\na b c".to_vec(),
    ];

    // Request heads as clients send them: curl's GET and its POST with `Expect:
    // 100-continue`, Prometheus's scrape, a browser's, HTTP/1.0 with bare LFs, then a body
    // a command reads, a chunked body, a bad Content-Length, a TLS ClientHello's first bytes
    // (port unification), garbage, and heads past the bounds (header count, head bytes).
    let admin_http = {
        let mut seeds: Vec<Vec<u8>> = vec![
            b"GET /commands/ruok HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".to_vec(),
            b"POST /commands/restore HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nAuthorization: digest super:secret\r\nContent-Type: application/octet-stream\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\nsnapshot....".to_vec(),
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nUser-Agent: Prometheus/2.45.0\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n".to_vec(),
            b"GET /commands HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive\r\nsec-ch-ua: \"Chromium\";v=\"120\"\r\nUpgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: a=b\r\n\r\n".to_vec(),
            b"GET /commands/snapshot?streaming=true HTTP/1.0\nAuthorization: x509\n\n".to_vec(),
            b"POST /commands/restore HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello, and more than the body".to_vec(),
            b"POST /commands/stat HTTP/1.1\r\nContent-Length: 4\r\n\r\nleft".to_vec(),
            b"POST /commands/restore HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            b"POST /commands/restore HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
            b"POST /commands/restore HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nshort".to_vec(),
            b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03".to_vec(),
            b"GET /commands/ruok HTTP/1.1\r\nHost localhost\r\n\r\n".to_vec(),
            b"GET commands HTTP/2\r\n\r\n".to_vec(),
            b"\xff\xfe GET / HTTP/1.1\r\n\r\n".to_vec(),
            b"GET /commands/ruok HTTP/1.1\r\nHost: a".to_vec(),
        ];
        let mut many = b"GET /commands/ruok HTTP/1.1\r\n".to_vec();
        for index in 0..=100 {
            many.extend_from_slice(format!("X-H{index}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        seeds.push(many);
        let mut long = b"GET /commands/ruok HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(16 * 1024 + 10, b'a');
        long.extend_from_slice(b"\r\n\r\n");
        seeds.push(long);
        seeds
    };

    // A real exchange: the server's challenge, the client's response to it, the rspauth.
    let digest_md5 = {
        use rand::SeedableRng;
        use ringkeeper::auth::digest_md5::{
            DigestCredentials, DigestMd5Client, DigestMd5Server, DigestStep,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut users = std::collections::BTreeMap::new();
        users.insert("bob".to_string(), "secret".to_string());
        let credentials = DigestCredentials {
            users,
            super_password: None,
        };
        let mut server = DigestMd5Server::new("zookeeper", "zk-sasl-md5", &mut rng);
        let mut client =
            DigestMd5Client::new("zookeeper", "zk-sasl-md5", "bob", "secret", &mut rng);
        let DigestStep::Challenge(challenge) = server.evaluate(&[], &credentials).unwrap() else {
            panic!("no challenge");
        };
        let response = client.evaluate(&challenge).unwrap().unwrap();
        let mut seeds = vec![[&response[..], &[0], &challenge[..]].concat()];
        if let Ok(DigestStep::Complete { token, .. }) = server.evaluate(&response, &credentials) {
            seeds.push([&response[..], &[0], &token[..]].concat());
        }
        seeds
    };

    let mut der_x509 = pem_to_der(&String::from_utf8(read("client.crt")).unwrap());
    der_x509.extend(pem_to_der(&String::from_utf8(read("ca.pem")).unwrap()));

    let jks = read("client.jks");
    let key_store = vec![
        with_prefix(0, &read("client.pem")),
        with_prefix(1, &jks[..jks.len() - 20]),
        with_prefix(2, &jks),
    ];

    let kerberos_name = vec![
        b"RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*//\n RULE:[2:$1](zk)s/zk/zookeeper/ DEFAULT\nzk/host@EXAMPLE.COM".to_vec(),
        b"DEFAULT\nalice@EXAMPLE.COM".to_vec(),
        b"RULE:[2:$1;$2](^.*;admin$)s/;admin$///L\nbob/admin@OTHER.ORG".to_vec(),
    ];

    // Apache ZooKeeper's server-to-server frames captured by scripts/capture-zk-quorum.py, with
    // the selector byte of `fuzzing::zookeeper_quorum`.
    let mut zookeeper_quorum = Vec::new();
    let mut zk_dir: Vec<_> = std::fs::read_dir(repo.join("tests").join("golden").join("zkquorum"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    zk_dir.sort();
    for path in zk_dir {
        let text = std::fs::read_to_string(&path).unwrap();
        let election = path.file_name().is_some_and(|name| name == "election.txt");
        let mut leader_side = vec![4u8];
        let mut note = "";
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                note = comment;
                continue;
            }
            let Some((side, hex)) = line.split_once(' ') else {
                continue;
            };
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let selector = match (election, side) {
                (true, _) if note.contains("handshake") => 1,
                (true, _) => 2,
                (false, "R") => 3,
                _ => 0,
            };
            if zookeeper_quorum.len() < 24 || selector == 3 {
                zookeeper_quorum.push(with_prefix(selector, &bytes));
            }
            if !election && side == "Z" {
                leader_side.extend_from_slice(&bytes);
            }
        }
        if !election {
            zookeeper_quorum.push(leader_side);
        }
    }

    vec![
        ("client_frames", client_frames),
        ("connect_request", connect_request),
        ("jute_records", jute_records),
        ("request", request),
        ("quorum_wire", quorum_wire),
        ("zookeeper_quorum", zookeeper_quorum),
        ("txn", txn),
        ("log_segment", log_segment),
        ("log_records", log_records),
        ("snapshot", snapshot_corpus),
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
    ]
}
